//! CCTE (thesis §5.4, Algorithm 5.1) over an embedded BoB-MBS: the
//! properties of §5.3.3 / Theorems 5.1–5.3 and the refusals of issue item 9.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::transfer;
use gridledger_ledger::{Seal, TxStatus};
use gridledger_xchain::bob::{self, CctArgs, CctV, Claim, PostNt, Relay};
use gridledger_xchain::mbs::{Behaviour, MbsError, MbsSpec};
use gridledger_xchain::{CctRecord, Finality, Side, SideState, XchainError};

/// The BoB keeps the latest κ_i headers of each chain — more on a small
/// κ_i, whose relay cap `MAX_RATE_RATIO` needs `2 · cap + k` of them
/// (attack R15-3): 16 on κ = 16, 8 on κ = 4.
#[test]
fn bob_keeps_only_the_latest_kappa_headers_of_each_chain() {
    for (kappa, window) in [(16u32, 16u64), (4, 8)] {
        let dir = tempfile::tempdir().unwrap();
        let spec = MbsSpec { kappa, ..MbsSpec::default() };
        assert_eq!(spec.kept_headers(), window);
        let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
        m.ticks(window + 6).unwrap();
        for c in m.chain_ids() {
            let h = m.external(c).unwrap().height();
            assert_eq!(m.bob_tip(c), h, "the relayer keeps the BoB at the chain's tip");
            let kept: Vec<u64> = (0..=h)
                .filter(|x| m.bob_record::<gridledger_ledger::BlockHeader>(&bob::keys::header(c, *x)).is_some())
                .collect();
            assert_eq!(kept, ((h - window + 1)..=h).collect::<Vec<_>>(), "the latest {window} headers of chain {c}");
        }
    }
}

#[test]
fn honest_ccte_exchanges_in_two_phases_and_settles_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let before = |m: &gridledger_xchain::BobMbs, c, a| m.external(c).unwrap().account(&a).balance.0;
    let (s_i, r_i, s_j, r_j) = (
        before(&m, ci, s.address()),
        before(&m, ci, r.address()),
        before(&m, cj, s.address()),
        before(&m, cj, r.address()),
    );
    let rep = m.swap(&request_between(ci, cj, 1_000, 1), Behaviour::Honest).unwrap();
    assert_eq!(rep.exchange_phases, 2, "CCT, then both native transfers");
    assert!(matches!(rep.record.sender, SideState::Proved { .. }));
    assert!(matches!(rep.record.receiver, SideState::Proved { .. }));
    assert!(rep.record.complete && !rep.record.verified, "Situation 1: no CCT_V needed");
    // Equal weights and equal pool balances: 1 Token_j = 1 Token_i = 1 Token_B.
    assert_eq!((rep.x_i, rep.x_b), (1_000, 1_000));
    let fee = gridledger_ledger::devnet::TRANSFER_GAS as u128;
    assert_eq!(before(&m, ci, s.address()), s_i - 1_000 - fee);
    assert_eq!(before(&m, ci, r.address()), r_i + 1_000);
    assert_eq!(before(&m, cj, r.address()), r_j - 1_000 - fee);
    assert_eq!(before(&m, cj, s.address()), s_j + 1_000);
    // Both deposits are free again, none lost.
    for who in [s.address(), r.address()] {
        let d = m.deposit(&who);
        assert_eq!((d.free, d.locked), (DEPOSIT, 0));
    }
}

fn proved_nt(s: &SideState) -> gridledger_core::Hash32 {
    match s {
        SideState::Proved { nt, .. } => *nt,
        other => panic!("not proved: {other:?}"),
    }
}
fn proved_h(s: &SideState) -> u64 {
    match s {
        SideState::Proved { height, .. } => *height,
        other => panic!("not proved: {other:?}"),
    }
}

#[test]
fn withholding_sender_pays_x_b_of_its_deposit_to_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let r_j = m.external(cj).unwrap().account(&r.address()).balance.0;
    let rep = m.swap(&request_between(ci, cj, 500, 2), Behaviour::Withhold(Side::Sender)).unwrap();
    assert!(rep.record.complete);
    assert_eq!(rep.record.sender, SideState::Penalised);
    assert!(matches!(rep.record.receiver, SideState::Proved { .. }));
    // The receiver paid x_j on chain j and got x_B Token_B instead of x_i Token_i.
    let fee = gridledger_ledger::devnet::TRANSFER_GAS as u128;
    assert_eq!(m.external(cj).unwrap().account(&r.address()).balance.0, r_j - 500 - fee);
    assert_eq!(m.deposit(&s.address()).free, DEPOSIT - rep.x_b);
    assert_eq!(m.deposit(&r.address()).free, DEPOSIT + rep.x_b);
    assert_eq!(m.deposit(&s.address()).locked + m.deposit(&r.address()).locked, 0);
    assert!(rep.bytes.cct_v > 0, "Situation 2 needed CCT_V");
}

#[test]
fn withholding_receiver_pays_x_b_of_its_deposit_to_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let rep = m.swap(&request_between(ci, cj, 300, 3), Behaviour::Withhold(Side::Receiver)).unwrap();
    assert_eq!(rep.record.receiver, SideState::Penalised);
    assert_eq!(m.deposit(&sender().address()).free, DEPOSIT + rep.x_b);
    assert_eq!(m.deposit(&receiver().address()).free, DEPOSIT - rep.x_b);
}

#[test]
fn censorship_past_the_deadline_still_completes_through_the_bob_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s_i = m.external(ci).unwrap().account(&receiver().address()).balance.0;
    // Chain i delays NT_s by 40 epochs, far past the deadline e_i + κ̄ + κ_i.
    let rep = m.swap(&request_between(ci, cj, 700, 4), Behaviour::Censor { side: Side::Sender, delay: 40 }).unwrap();
    assert!(rep.record.complete && rep.record.verified, "CCT_V ran, then the forwarded NT was proved");
    assert!(matches!(rep.record.sender, SideState::Proved { .. }), "sub-situation 2, no penalty");
    assert!(matches!(rep.record.receiver, SideState::Proved { .. }));
    assert_eq!(m.external(ci).unwrap().account(&receiver().address()).balance.0, s_i + 700);
    assert_eq!(m.deposit(&sender().address()).free, DEPOSIT);
}

#[test]
fn probabilistic_chains_need_k_confirmations() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 3 }, ..MbsSpec::default() };
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let rep = m.swap(&request_between(ci, cj, 100, 5), Behaviour::Honest).unwrap();
    assert!(rep.record.complete);
    let h = proved_h(&rep.record.sender);
    assert!(m.bob_tip(ci) >= h + 3);
}

#[test]
fn external_chains_store_nothing_about_other_chains_and_run_no_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    m.swap(&request_between(ci, cj, 1_000, 6), Behaviour::Honest).unwrap();
    m.swap(&request_between(ci, cj, 10, 7), Behaviour::Withhold(Side::Receiver)).unwrap();
    for c in m.chain_ids() {
        let chain = m.external(c).unwrap().chain();
        // Independence (§5.2.1): only accounts, no contract storage at all.
        assert!(chain.state().iter().all(|(k, _)| k[0] == 0x01), "chain {c} stores non-account state");
        // Script-minimum (Theorem 5.1): no contract is deployed there.
        assert_eq!(chain.registry().list().count(), 0);
    }
}

#[test]
fn a_native_transaction_is_byte_for_byte_an_ordinary_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let rep = m.swap(&request_between(ci, cj, 1_000, 8), Behaviour::Honest).unwrap();
    let block = m.external(ci).unwrap().chain().block(proved_h(&rep.record.sender)).unwrap().unwrap();
    let nt = block.txs.iter().find(|t| t.hash() == proved_nt(&rep.record.sender)).unwrap();
    // An ordinary transfer of chain i: signed in its signing domain, as every transfer there is,
    // with the deadline any payment that must not land late may carry (attack R12-4: the last
    // height at which its landing can still be proved, `BobConfig::nt_valid_until`).
    let valid_until = m.config.nt_valid_until(&rep.record, Side::Sender).unwrap();
    assert_eq!(nt.tx.kind.valid_until(), Some(valid_until));
    let ordinary = gridledger_ledger::devnet::transfer_until(
        &sender(),
        ci,
        nt.tx.nonce,
        (receiver().address(), Amount(rep.x_i), valid_until),
        Amount(1),
    );
    let ordinary = m.external(ci).unwrap().sign(&sender(), ordinary);
    assert_eq!(nt.to_bytes(), ordinary.to_bytes());
    let receipt = m.external(ci).unwrap().receipt(&nt.hash()).unwrap().unwrap();
    assert_eq!(receipt.events.len(), 1);
    assert_eq!(receipt.events[0].name, "transfer");
}

// ------------------------------------------------------------ bad input

#[test]
fn headers_without_validator_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let [ci, cj] = chains2(&m);
    m.tick().unwrap();
    // Chain i seals its next block; the relayer has not shipped it yet.
    let block = m.external_mut(ci).unwrap().tick().unwrap();
    let h = block.header.height;
    let sealed = m.external(ci).unwrap().sealed_header(h).unwrap().unwrap();
    let relayer = m.relayer.clone();

    let mut unsigned = sealed.clone();
    unsigned.seal = Seal::Genesis;
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![unsigned] }, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::Unsigned(h));

    // Signed, but by keys that are not chain i's validators.
    let mut forged = sealed.clone();
    let outsider = gridledger_core::crypto::KeyPair::from_seed("outsider");
    if let Seal::Quorum { signatures, .. } = &mut forged.seal {
        signatures[0].1 = outsider.sign(&forged.header.hash());
    }
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![forged] }, Amount::ZERO);
    let before = m.bob_contract_state();
    let r = bob_only(&mut m, &tx);
    assert!(matches!(&r.status, TxStatus::Reverted(s) if s.contains("is not signed by chain")), "{:?}", r.status);
    assert_eq!(m.bob_contract_state(), before);

    // A header whose content was altered after signing.
    let mut altered = sealed.clone();
    altered.header.tx_root = gridledger_core::Hash32([7; 32]);
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![altered] }, Amount::ZERO);
    let r = bob_only(&mut m, &tx);
    assert!(matches!(&r.status, TxStatus::Reverted(s) if s.contains("is not signed by chain")), "{:?}", r.status);

    // A header relayed as another chain's.
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: cj, headers: vec![sealed.clone()] }, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::WrongChain { expected: cj, got: ci });

    // The genuine header is accepted.
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![sealed] }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    assert_eq!(m.bob_tip(ci), h);
}

#[test]
fn a_probabilistic_header_proposed_out_of_turn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 2 }, kappa: 8, ..MbsSpec::default() };
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
    let [ci, _] = chains2(&m);
    m.tick().unwrap();
    let block = m.external_mut(ci).unwrap().tick().unwrap();
    let h = block.header.height;
    let sealed = m.external(ci).unwrap().sealed_header(h).unwrap().unwrap();
    let n = m.spec.validators as u64;
    // The same header, proposed and signed by a validator whose turn it is not.
    let other = (h + 1) % n;
    let key = gridledger_core::crypto::KeyPair::from_seed(&format!("gridledger-xchain-{ci}-validator-{other}"));
    let mut out_of_turn = sealed.clone();
    out_of_turn.header.proposer = key.public();
    out_of_turn.seal = Seal::Single { signature: key.sign(&out_of_turn.header.hash()) };
    let relayer = m.relayer.clone();
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![out_of_turn] }, Amount::ZERO);
    let reason = format!("proposed out of turn: height {h} belongs to validator {}", h % n);
    assert_refused(&mut m, &tx, XchainError::BadSeal { chain: ci, height: h, reason });
    // The scheduled proposer's header is accepted.
    let tx = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers: vec![sealed] }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    assert_eq!(m.bob_tip(ci), h);
}

#[test]
fn forged_early_and_stale_merkle_proofs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { kappa: 8, ..MbsSpec::default() };
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let req = request_between(ci, cj, 200, 9);
    let (id, rec) = open_cct(&mut m, &req);
    let s = sender();

    // NT_r sent at once, before the window e_j + κ̄ has passed. (The
    // receiver may pay again with a later nonce; the sender, whose NT must
    // carry the terms' nonce, could not: an early NT_s spends it.)
    let r = receiver();
    let early = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&early).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Receiver, &early).unwrap().unwrap();
    let tx = m.bob_call(&r, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::TooEarly { height: pt.height, after: rec.e_j + 2 });

    // NT_s in the valid window.
    m.wait_native_window(&rec).unwrap();
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    m.external_mut(ci).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Sender, &nt).unwrap().unwrap();

    // Forged: a sibling flipped (or a wrong leaf count).
    let mut forged = pt.clone();
    if let Some(sib) = forged.proof.siblings.first_mut() {
        sib.0[0] ^= 1;
    } else {
        forged.proof.leaf_count += 1;
    }
    let tx = m.bob_call(&s, "prove", &forged, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::BadMerkleProof { chain: ci, height: pt.height });

    // Another transaction's proof presented for NT_s (a re-send of it with
    // another fee, which never landed).
    let mut wrong_nt = pt.clone();
    wrong_nt.nt = transfer(&s, ci, nt.tx.nonce, receiver().address(), Amount(rec.x_i), Amount(2));
    wrong_nt.nt = m.external(ci).unwrap().sign(&s, wrong_nt.nt);
    let tx = m.bob_call(&s, "prove", &wrong_nt, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::BadMerkleProof { chain: ci, height: pt.height });

    // A proof for a header the BoB has not got yet.
    let mut future = pt.clone();
    future.height = m.bob_tip(ci) + 5;
    let tx = m.bob_call(&s, "prove", &future, Amount::ZERO);
    let tip = m.bob_tip(ci);
    assert_refused(&mut m, &tx, XchainError::UnknownHeader { chain: ci, height: future.height, tip });

    // Stale: κ_i = 8 epochs later the header is no longer kept.
    m.ticks(9).unwrap();
    let tip = m.bob_tip(ci);
    let tx = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::StaleHeader { chain: ci, height: pt.height, oldest_kept: tip - 8 });
}

#[test]
fn double_claims_and_replayed_evidence_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let req = request_between(ci, cj, 50, 10);
    let (id, rec) = open_cct(&mut m, &req);
    m.wait_native_window(&rec).unwrap();
    let s = sender();
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    m.external_mut(ci).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Sender, &nt).unwrap().unwrap();
    let ok = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &ok).status, TxStatus::Success);
    // The same proof again.
    let again = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadySettled("sender"));

    // The same NT as evidence for a second CCT with identical instructions.
    let req2 = request_between(ci, cj, 50, 11);
    let (id2, rec2) = open_cct(&mut m, &req2);
    assert_eq!(rec2.instruction(Side::Sender), rec.instruction(Side::Sender));
    let mut replay = pt.clone();
    replay.cct = id2;
    let tx = m.bob_call(&s, "prove", &replay, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::NtAlreadyUsed(nt.hash()));

    // Π_CCTC: a lock transfer claimed twice.
    let p = provider();
    let tpk = m.config.tpk_address(ci);
    let lock = m.native_transfer(ci, &p, tpk, 10).unwrap();
    m.external_mut(ci).unwrap().submit(&lock).unwrap();
    m.tick().unwrap();
    let (height, proof) = m.external(ci).unwrap().tx_proof(&lock.hash()).unwrap().unwrap();
    let claim = Claim { chain: ci, height, nt: lock.clone(), proof };
    // Someone else cannot claim the provider's lock.
    let thief = m.bob_call(&s, "claim", &claim, Amount::ZERO);
    assert_refused(&mut m, &thief, XchainError::NotClaimant);
    let c1 = m.bob_call(&p, "claim", &claim, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &c1).status, TxStatus::Success);
    let c2 = m.bob_call(&p, "claim", &claim, Amount::ZERO);
    assert_refused(&mut m, &c2, XchainError::AlreadyClaimed(lock.hash()));
}

#[test]
fn deadlines_are_enforced_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 80, 12));
    let relayer = m.relayer.clone();
    // CCT_V before the deadline is discarded (ln 30).
    let early = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    let tip = m.bob_tip(ci);
    assert_refused(&mut m, &early, XchainError::DeadlineNotReached { chain: ci, tip, deadline: rec.deadline_i });
    // After the deadline a copy of NT_s can no longer be posted to the BoB.
    while m.bob_tip(ci) < rec.deadline_i || m.bob_tip(cj) < rec.deadline_j {
        m.tick().unwrap();
    }
    let nt = m.native_tx(&rec, Side::Sender, &sender()).unwrap();
    let post = m.bob_call(&sender(), "post_nt", &PostNt { cct: id, side: Side::Sender, nt }, Amount::ZERO);
    let tip = m.bob_tip(ci);
    assert_refused(&mut m, &post, XchainError::DeadlineExpired { chain: ci, tip, deadline: rec.deadline_i });
    // CCT_V now settles it: both withheld, both penalised, deposits unchanged net.
    let v = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &v).status, TxStatus::Success);
    let again = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadyComplete);
}

#[test]
fn invalid_ccts_are_discarded_without_any_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let req = request_between(ci, cj, 100, 13);

    // The receiver never agreed: signature by someone else.
    let terms = m.terms(&req).unwrap();
    let bad_sig = gridledger_core::crypto::KeyPair::from_seed("mallory").sign(&terms.digest(m.bob.chain_id()));
    let tx = m.bob_call(&s, "cct", &CctArgs { terms: terms.clone(), receiver_sig: bad_sig }, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::BadReceiverSignature);

    // Submitted by someone other than the sender of the terms.
    let tx = m.cct_tx(&r, &r, terms.clone());
    assert_refused(&mut m, &tx, XchainError::NotSender);

    // A payer account other than the signer's own (attack R3-1).
    let mut other = terms.clone();
    other.sender_j = r.address();
    let tx = m.cct_tx(&s, &r, other);
    assert_refused(&mut m, &tx, XchainError::NotSender);
    let mut other = terms.clone();
    other.receiver_j = s.address();
    let tx = m.cct_tx(&s, &r, other);
    assert_refused(
        &mut m,
        &tx,
        XchainError::BadTerms("the receiver pays NT_r from the address of the key that signs".into()),
    );
    let mut lock = terms.clone();
    lock.receiver_i = m.config.tpk_address(lock.chain_i);
    let tx = m.cct_tx(&s, &r, lock);
    assert_refused(&mut m, &tx, XchainError::BadTerms("a payment to TPK_Addr is a Pi_CCTC lock, not an NT".into()));

    // Expired terms.
    let mut old = terms.clone();
    old.expires_at = 1;
    let tx = m.cct_tx(&s, &r, old);
    let now = m.bob.height() + 1;
    assert_refused(&mut m, &tx, XchainError::CctExpired { expires_at: 1, now });

    // Deposits too small for κ̄ · x_B (ln 05, ln 09).
    let mut big = terms.clone();
    big.x_j = DEPOSIT;
    // Bounds around its price (open bounds are refused first, attack R7-4).
    big.max_x_i = 2 * DEPOSIT;
    let tx = m.cct_tx(&s, &r, big);
    // Three tokens: Token_B's weight is 333,334 ppm, the others' 333,333, so
    // x_B = ⌈x_j · w_j / w_B⌉ on equal balances.
    let x_b = gridledger_xchain::amm::amount_in_for(
        DEPOSIT,
        (m.bob.chain_id(), LIQUIDITY, 333_334),
        (cj, LIQUIDITY, 333_333),
    )
    .unwrap();
    assert_eq!(x_b, 999_998);
    assert_refused(&mut m, &tx, XchainError::InsufficientDeposit { who: "sender", needed: 2 * x_b, free: DEPOSIT });

    // Outside the agreed rate bounds.
    let mut tight = terms.clone();
    tight.min_x_i = 1;
    tight.max_x_i = 99;
    let tx = m.cct_tx(&s, &r, tight);
    assert_refused(&mut m, &tx, XchainError::RateOutOfBounds { x_i: 100, min: 1, max: 99 });

    // An unregistered chain.
    let mut nowhere = terms.clone();
    nowhere.chain_j = 999;
    let tx = m.cct_tx(&s, &r, nowhere);
    assert_refused(&mut m, &tx, XchainError::UnknownChain(999));

    // The valid CCT executes once; the same terms again are a duplicate.
    let tx = m.cct_tx(&s, &r, terms.clone());
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.cct_tx(&s, &r, terms.clone());
    assert_refused(&mut m, &tx, XchainError::DuplicateCct(terms.id()));

    // A native transaction that does not match IN_s.
    let rec = m.cct(&terms.id()).unwrap();
    let wrong =
        m.external(ci).unwrap().sign(&s, transfer(&s, ci, 0, receiver().address(), Amount(rec.x_i + 1), Amount(1)));
    let post =
        m.bob_call(&s, "post_nt", &PostNt { cct: terms.id(), side: Side::Sender, nt: wrong.clone() }, Amount::ZERO);
    let before = m.bob_contract_state();
    let r = bob_only(&mut m, &post);
    assert!(
        matches!(&r.status, TxStatus::Reverted(x) if x.contains("does not match the instruction")),
        "{:?}",
        r.status
    );
    assert_eq!(m.bob_contract_state(), before);
    // The right NT posted once; a second copy is refused.
    let right = m.external(ci).unwrap().sign(&s, transfer(&s, ci, 0, receiver().address(), Amount(rec.x_i), Amount(1)));
    let post =
        m.bob_call(&s, "post_nt", &PostNt { cct: terms.id(), side: Side::Sender, nt: right.clone() }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &post).status, TxStatus::Success);
    let again = m.bob_call(&s, "post_nt", &PostNt { cct: terms.id(), side: Side::Sender, nt: right }, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadyPosted("sender"));
    // Untouched deposits apart from the one valid CCT's lock.
    let d = m.deposit(&s.address());
    assert_eq!(d.free + d.locked, DEPOSIT);
}

#[test]
fn an_underfunded_posted_native_transaction_is_settled_by_a_balance_fraud_proof() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let r_j = m.external(cj).unwrap().account(&receiver().address()).balance.0;
    let rep = m.swap(&request_between(ci, cj, 400, 14), Behaviour::Underfund(Side::Sender)).unwrap();
    assert!(rep.record.complete && rep.record.verified);
    assert_eq!(rep.record.sender, SideState::Penalised, "sub-situation 3");
    assert!(matches!(rep.record.receiver, SideState::Proved { .. }));
    assert!(rep.bytes.fraud > 0);
    assert_eq!(m.deposit(&receiver().address()).free, DEPOSIT + rep.x_b);
    assert_eq!(m.deposit(&sender().address()).free, DEPOSIT - rep.x_b);
    let fee = gridledger_ledger::devnet::TRANSFER_GAS as u128;
    assert_eq!(m.external(cj).unwrap().account(&receiver().address()).balance.0, r_j - 400 - fee);
}

#[test]
fn a_spent_nonce_is_settled_by_a_conflicting_transaction_proof() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let rep = m.swap(&request_between(ci, cj, 400, 15), Behaviour::DoubleSpend(Side::Receiver)).unwrap();
    assert_eq!(rep.record.receiver, SideState::Penalised);
    assert!(matches!(rep.record.sender, SideState::Proved { .. }));
    assert_eq!(m.deposit(&sender().address()).free, DEPOSIT + rep.x_b);
}

#[test]
fn fraud_proofs_against_a_payable_transaction_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 60, 16));
    let s = sender();
    // The sender posts NT_s to the BoB (and nowhere else) while funded.
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let relayer = m.relayer.clone();
    let key = gridledger_ledger::state::account_key(&s.address());
    let (height, proof) = m.external(ci).unwrap().state_proof(&key);
    let account = Some(m.external(ci).unwrap().account(&s.address()));
    let fraud = bob::Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: bob::FraudEvidence::Balance { account, proof: proof.clone() },
    };
    // Before CCT_V: refused.
    let tx = m.bob_call(&relayer, "fraud", &fraud, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::NotVerified);
    while m.bob_tip(ci) < rec.deadline_i || m.bob_tip(cj) < rec.deadline_j {
        m.tick().unwrap();
    }
    let v = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &v).status, TxStatus::Success);
    // Evidence from a header before the deadline proves nothing (the payer
    // could still fund its account then; attack R5-7).
    let early = fraud.height;
    assert!(early < rec.deadline_i);
    let tx = m.bob_call(&relayer, "fraud", &fraud, Amount::ZERO);
    assert_refused(
        &mut m,
        &tx,
        XchainError::EvidenceBeforeDeadline { chain: ci, height: early, deadline: rec.deadline_i },
    );
    // The sender's account covers NT_s: no fraud.
    let (height, proof) = m.external(ci).unwrap().state_proof(&key);
    let acc = m.external(ci).unwrap().account(&s.address());
    let honest = bob::Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: bob::FraudEvidence::Balance { account: Some(acc), proof: proof.clone() },
    };
    let tx = m.bob_call(&relayer, "fraud", &honest, Amount::ZERO);
    let before = m.bob_contract_state();
    let r = bob_only(&mut m, &tx);
    assert!(matches!(&r.status, TxStatus::Reverted(x) if x.contains("no fraud")), "{:?}", r.status);
    assert_eq!(m.bob_contract_state(), before);
    // A lie about the balance does not verify against the state root.
    let mut poor = acc;
    poor.balance = Amount(0);
    let lie = bob::Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: bob::FraudEvidence::Balance { account: Some(poor), proof },
    };
    let tx = m.bob_call(&relayer, "fraud", &lie, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::BadStateProof { chain: ci, height });
    // Evidence for the receiver's side, whose NT was never posted.
    let mut unposted = lie.clone();
    unposted.side = Side::Receiver;
    let tx = m.bob_call(&relayer, "fraud", &unposted, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::AlreadySettled("receiver"));
}

/// A fee-bumped re-send of NT (same nonce, same payment, higher fee) that
/// lands is the payment, not fraud (attack R4-1): `NonceTaken` evidence
/// naming it is refused with `NotFraud` and changes nothing, an honest BoB
/// node builds no such evidence, and the payer proves the re-send.
#[test]
fn a_fee_bumped_resend_of_nt_is_no_fraud_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 60, 17));
    m.wait_native_window(&rec).unwrap();
    let s = sender();
    let posted = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: posted.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let (chain, _, to, amount) = rec.instruction(Side::Sender);
    let bumped =
        m.external(chain).unwrap().sign(&s, transfer(&s, chain, posted.tx.nonce, to, Amount(amount), Amount(3)));
    m.external_mut(ci).unwrap().submit(&bumped).unwrap();
    let (height, proof) = loop {
        if let Some(p) = m.external(ci).unwrap().tx_proof(&bumped.hash()).unwrap() {
            m.wait_final(ci, p.0).unwrap();
            break p;
        }
        m.tick().unwrap();
    };
    let rec = m.cct(&id).unwrap();
    assert!(m.fraud_evidence(id, &rec, Side::Sender, &posted).unwrap().is_none(), "an honest node sees no fraud");
    let fraud = bob::Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: bob::FraudEvidence::NonceTaken { other: bumped.clone(), proof: proof.clone() },
    };
    let tx = m.bob_call(&receiver(), "fraud", &fraud, Amount::ZERO);
    assert_refused(
        &mut m,
        &tx,
        XchainError::NotFraud("the transaction with NT's nonce pays the instruction; prove it instead".into()),
    );
    let pt = bob::ProofTx { cct: id, side: Side::Sender, nt: bumped, height, proof };
    m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    assert!(matches!(m.cct(&id).unwrap().sender, SideState::Proved { .. }));
}

// ------------------------------------------------------------ HTLC baseline

#[test]
fn htlc_baseline_swaps_in_four_sequential_phases_over_the_same_chains() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { htlc_baseline: true, ..MbsSpec::default() };
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let r_i = m.external(ci).unwrap().account(&r.address()).balance.0;
    let s_j = m.external(cj).unwrap().account(&s.address()).balance.0;
    let rep = m.htlc_swap(&request_between(ci, cj, 1_000, 20), 900, None).unwrap();
    assert_eq!(rep.phases, 4);
    assert!(rep.sender_received && rep.receiver_received);
    // Each party received the other's tokens and paid one claim fee.
    let fee_of = |m: &gridledger_xchain::BobMbs, c, who: gridledger_core::Address| {
        let chain = m.external(c).unwrap().chain();
        (1..=chain.tip().height)
            .flat_map(|h| chain.store().receipts(h).unwrap().unwrap_or_default())
            .filter(|rc| rc.sender == who)
            .map(|rc| rc.fee.0)
            .sum::<u128>()
    };
    assert_eq!(m.external(ci).unwrap().account(&r.address()).balance.0 + fee_of(&m, ci, r.address()), r_i + 900);
    assert_eq!(m.external(cj).unwrap().account(&s.address()).balance.0 + fee_of(&m, cj, s.address()), s_j + 1_000);
    // The baseline needs a contract on every external chain (no script-minimum).
    assert_eq!(m.external(ci).unwrap().chain().registry().list().count(), 1);
}

#[test]
fn htlc_baseline_refunds_when_the_receiver_walks_away() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { htlc_baseline: true, ..MbsSpec::default() };
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
    let [ci, cj] = chains2(&m);
    let rep = m.htlc_swap(&request_between(ci, cj, 1_000, 21), 900, Some(Side::Receiver)).unwrap();
    assert_eq!(rep.refunds, 1);
    assert!(!rep.sender_received && !rep.receiver_received);
    assert!(rep.epochs > 6, "the sender waited for its time-lock");
}

// ---------------------------------------------------- seeded atomicity sweep

/// Seeded runs over every behaviour (withholding users, censoring chains,
/// underfunded and double-spent native transactions): each CCTE settles,
/// Token_B is conserved across the two deposits, and each side either
/// delivered its tokens on its chain or paid x_B to the counterparty — never
/// neither, never both (atomicity, Theorem 5.2). More seeds with
/// `XCHAIN_SEEDS=n`.
#[test]
fn seeded_sweep_every_side_delivers_or_pays_its_deposit() {
    let seeds: u64 = std::env::var("XCHAIN_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);
    for seed in 0..seeds {
        // SplitMix64: the sweep's only randomness, fixed by the seed.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let side = if next() % 2 == 0 { Side::Sender } else { Side::Receiver };
        let behaviour = match next() % 6 {
            0 => Behaviour::Honest,
            1 => Behaviour::Withhold(side),
            2 => Behaviour::Censor { side, delay: 5 + next() % 40 },
            3 => Behaviour::Underfund(side),
            4 => Behaviour::PostUnlandable(side),
            _ => Behaviour::DoubleSpend(side),
        };
        let x_j = 1 + (next() % 5_000) as u128;
        let dir = tempfile::tempdir().unwrap();
        let mut m = setup(dir.path(), MbsSpec::default());
        let [ci, cj] = chains2(&m);
        let (s, r) = (sender(), receiver());
        let got_i = m.external(ci).unwrap().account(&r.address()).balance.0;
        let got_j = m.external(cj).unwrap().account(&s.address()).balance.0;
        let rep = m
            .swap(&request_between(ci, cj, x_j, seed), behaviour)
            .unwrap_or_else(|e| panic!("seed {seed} {behaviour:?}: {e}"));
        let ctx = format!("seed {seed}, {behaviour:?}, x_j {x_j}: {:?}", rep.record);
        assert!(rep.record.complete, "{ctx}");
        let (ds, dr) = (m.deposit(&s.address()), m.deposit(&r.address()));
        assert_eq!(ds.free + ds.locked + dr.free + dr.locked, 2 * DEPOSIT, "Token_B conserved: {ctx}");
        assert_eq!(ds.locked + dr.locked, 0, "no deposit left locked: {ctx}");
        let delivered_i = m.external(ci).unwrap().account(&r.address()).balance.0 == got_i + rep.x_i;
        let delivered_j = m.external(cj).unwrap().account(&s.address()).balance.0 == got_j + x_j;
        let penalised = |st: SideState| st == SideState::Penalised;
        assert!(delivered_i != penalised(rep.record.sender), "sender side delivers xor pays: {ctx}");
        assert!(delivered_j != penalised(rep.record.receiver), "receiver side delivers xor pays: {ctx}");
        let net_s = ds.free as i128 - DEPOSIT as i128;
        let expect =
            rep.x_b as i128 * (i128::from(penalised(rep.record.receiver)) - i128::from(penalised(rep.record.sender)));
        assert_eq!(net_s, expect, "deposits move by x_B per default: {ctx}");
    }
}

// ------------------------------------------- sub-situation 2's deadline

/// The receiver pays NT_r on chain j and proves it.
fn receiver_pays_and_proves(m: &mut gridledger_xchain::BobMbs, id: gridledger_core::Hash32, rec: &CctRecord) {
    let [_, cj] = chains2(m);
    let r = receiver();
    let nt = m.native_tx(rec, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Receiver, &nt).unwrap().expect("NT_r included");
    m.wait_final(cj, pt.height).unwrap();
    m.bob_ok(&m.bob_call(&r, "prove", &pt, Amount::ZERO)).unwrap();
}

#[test]
fn a_posted_nt_that_never_lands_is_penalised_at_the_forwarding_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 500, 31));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    // NT_s with the terms' nonce but a gas price below the chain's minimum:
    // correctly signed, matches IN_s, never executable. (A nonce gap is
    // refused at `post_nt`: the sender's NT carries the terms' nonce.)
    let (chain, _, to, amount) = rec.instruction(Side::Sender);
    let nt =
        m.external(chain).unwrap().sign(&s, transfer(&s, chain, rec.terms.nonce_i, to, Amount(amount), Amount::ZERO));
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO))
        .unwrap();
    while m.bob_tip(ci) < rec.deadline_i || m.bob_tip(cj) < rec.deadline_j {
        m.tick().unwrap();
    }
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
    let rec = m.cct(&id).unwrap();
    assert!(rec.verified && rec.sender == SideState::Pending, "sub-situation 2: posted, so not penalised yet");
    assert!(rec.forward_i >= rec.deadline_i + m.config.kappa_bar + m.spec.kappa as u64);
    assert_eq!(m.forwarding(), vec![id]);
    assert_eq!(m.bob_record::<bool>(&bob::keys::forwarding(&id)), Some(true));
    // A second CCT_V inside the forwarding window is refused and changes nothing.
    let early = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    let tip = m.bob_tip(ci);
    assert_refused(&mut m, &early, XchainError::ForwardingOpen { chain: ci, tip, deadline: rec.forward_i });
    // The BoB node closes it once chain i's stored tip reaches the deadline.
    // Meanwhile it sends the NT the chain never takes at once, then after
    // a back-off that doubles, at most FORWARD_MAX_SENDS times.
    let mut guard = 0;
    let mut send_epochs = Vec::new();
    while !m.cct(&id).unwrap().complete {
        assert!(m.bob_tip(ci) < rec.forward_i + 2, "closed late (tip {}, deadline {})", m.bob_tip(ci), rec.forward_i);
        let (epoch, sent) = (m.epoch, m.forward_sends(&nt.hash()).sent);
        m.tick().unwrap();
        if m.forward_sends(&nt.hash()).sent > sent {
            send_epochs.push(epoch);
        }
        guard += 1;
        assert!(guard < 100);
    }
    use gridledger_xchain::mbs::{FORWARD_FIRST_BACKOFF, FORWARD_MAX_SENDS};
    let gaps: Vec<u64> = send_epochs.windows(2).map(|w| w[1] - w[0]).collect();
    let expected: Vec<u64> = (0..FORWARD_MAX_SENDS - 1).map(|k| FORWARD_FIRST_BACKOFF << k).collect();
    assert!(guard > FORWARD_MAX_SENDS as u64 * 2, "{guard} epochs of forwarding");
    assert_eq!(gaps, expected, "sends at epochs {send_epochs:?} over {guard} epochs");
    assert!(m.bob_tip(ci) >= rec.forward_i, "closed before the forwarding deadline");
    let done = m.cct(&id).unwrap();
    assert_eq!(done.sender, SideState::Penalised);
    assert!(matches!(done.receiver, SideState::Proved { .. }));
    assert_eq!(m.watch.iter().filter(|w| w.cct == id).count(), 1, "one closing CCT_V");
    assert!(m.bob_record::<bool>(&bob::keys::forwarding(&id)).is_none() && m.forwarding().is_empty());
    // The withholder's x_B went to the honest receiver; both locks are released.
    let (ds, dr) = (m.deposit(&s.address()), m.deposit(&receiver().address()));
    assert_eq!((ds.free, ds.locked), (DEPOSIT - done.x_b, 0));
    assert_eq!((dr.free, dr.locked), (DEPOSIT + done.x_b, 0));
    let again = m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadyComplete);
}

#[test]
fn swap_closes_an_unlandable_posted_nt_at_the_forwarding_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let rep = m.swap(&request_between(ci, cj, 300, 33), Behaviour::PostUnlandable(Side::Receiver)).unwrap();
    assert!(rep.record.complete && rep.record.verified);
    assert_eq!(rep.record.receiver, SideState::Penalised, "closed as withheld");
    assert!(matches!(rep.record.sender, SideState::Proved { .. }));
    assert!(rep.bytes.cct_v > 0 && rep.gas.get("cct_v").copied().unwrap_or(0) > 0);
    assert_eq!(rep.settlement_phases, 5, "proof, CCT_V, the closing CCT_V (+ the CCT and NTs)");
    assert_eq!(m.deposit(&sender().address()).free, DEPOSIT + rep.x_b);
}

/// SC_MPV's freshness rule: the terms bind each payer's next nonce on its
/// chain when the exchange was agreed, and a transfer below it — a payment
/// the sender had already made — is refused as NT_s with `BeforeCct`, at
/// `post_nt` and at `prove`, even when the relayers lag so far behind that
/// the payment's block is above `e_i + κ̄` (the epoch check alone would
/// take it).
#[test]
fn a_payment_made_before_the_terms_is_refused_by_the_nonce_floor() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let req = request_between(ci, cj, 700, 32);
    let early_terms = m.terms(&req).unwrap();
    // Chain i runs κ̄ + 2 blocks ahead of what the relayers delivered; the
    // sender pays the receiver 700 there before the exchange is agreed.
    for _ in 0..3 {
        m.external_mut(ci).unwrap().tick().unwrap();
    }
    let old = m.native_transfer(ci, &s, receiver().address(), 700).unwrap();
    m.external_mut(ci).unwrap().submit(&old).unwrap();
    m.external_mut(ci).unwrap().tick().unwrap();
    // Terms drawn up before that payment no longer pass the receiver's check.
    assert!(matches!(
        m.check_floors(&early_terms),
        Err(MbsError::StaleFloor { chain, floor, next })
            if chain == ci && floor == old.tx.nonce && next == old.tx.nonce + 1
    ));
    // The terms the receiver signs now bind the sender's next nonce.
    let terms = m.terms(&req).unwrap();
    m.check_floors(&terms).unwrap();
    assert_eq!(terms.nonce_i, old.tx.nonce + 1);
    let cct = m.cct_tx(&s, &receiver(), terms.clone());
    assert_eq!(bob_only(&mut m, &cct).status, TxStatus::Success);
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    assert_eq!(rec.instruction(Side::Sender).3, 700, "equal pool: x_i = x_j");
    m.ticks(2).unwrap();
    let pt = m.proof_for(id, Side::Sender, &old).unwrap().unwrap();
    assert!(pt.height > rec.e_i + m.config.kappa_bar, "the epoch check alone would accept it");
    m.wait_final(ci, pt.height).unwrap();
    let refusal = XchainError::BeforeCct { chain: ci, nonce: old.tx.nonce, floor: terms.nonce_i };
    let prove = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &prove, refusal.clone());
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: old.clone() }, Amount::ZERO);
    assert_refused(&mut m, &post, refusal);
    assert_eq!(m.cct(&id).unwrap().sender, SideState::Pending);
    // NT_s carries exactly the terms' nonce (attack R8-5): a payment signed
    // after the agreement but with a later nonce, because the sender sent
    // something else first, does not count either — the sender's side is
    // left to the deadline (withheld, the sender's fault).
    let other = m.native_transfer(ci, &s, provider().address(), 5).unwrap();
    assert_eq!(other.tx.nonce, terms.nonce_i);
    m.external_mut(ci).unwrap().submit(&other).unwrap();
    let late = m.native_transfer(ci, &s, receiver().address(), 700).unwrap();
    assert!(rec.pays_instruction(Side::Sender, &m.native_tx(&rec, Side::Sender, &s).unwrap()));
    assert!(!rec.pays_instruction(Side::Sender, &late));
    m.external_mut(ci).unwrap().submit(&late).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Sender, &late).unwrap().unwrap();
    m.wait_final(ci, pt.height).unwrap();
    let refusal = XchainError::NonceNotAgreed { chain: ci, nonce: terms.nonce_i + 1, agreed: terms.nonce_i };
    let prove = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &prove, refusal.clone());
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: late.clone() }, Amount::ZERO);
    assert_refused(&mut m, &post, refusal);
    assert_eq!(m.cct(&id).unwrap().sender, SideState::Pending);
    assert_eq!(m.find_payment(&rec, Side::Sender).unwrap(), None, "no transfer pays NT_s");
}

/// The honest sender's NT_s carries the terms' nonce and proves its side
/// (attack R8-5: SC_MPV takes that nonce only).
#[test]
fn the_senders_nt_carries_the_terms_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let req = request_between(ci, cj, 600, 34);
    let terms = m.try_terms(&req).unwrap();
    assert_eq!(terms.nonce_i, m.external(ci).unwrap().next_nonce(&s.address()));
    let (id, rec) = open_cct(&mut m, &req);
    assert_eq!(rec.terms.nonce_i, terms.nonce_i);
    m.wait_native_window(&rec).unwrap();
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    assert_eq!(nt.tx.nonce, terms.nonce_i);
    m.external_mut(ci).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let pt = m.proof_for(id, Side::Sender, &nt).unwrap().unwrap();
    m.wait_final(ci, pt.height).unwrap();
    m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    assert_eq!(m.cct(&id).unwrap().sender, SideState::Proved { nt: nt.hash(), height: pt.height });
}

/// Parties do not agree on terms while the BoB's stored tip of a chain
/// lags the chain (attack R4-4): `check_view` refuses with `BobLagging`;
/// once the relays caught up it passes.
#[test]
fn terms_are_not_agreed_while_the_bob_lags_a_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    for _ in 0..10 {
        m.external_mut(cj).unwrap().tick().unwrap();
    }
    let err = m.check_view(&[ci, cj]).unwrap_err();
    assert!(matches!(err, MbsError::BobLagging { chain, .. } if chain == cj), "{err}");
    m.wait_caught_up(&[ci, cj]).unwrap();
    m.check_view(&[ci, cj]).unwrap();
}

/// `prove_relayed` (attack R5-2): an NT whose header the BoB no longer
/// keeps is proved against the accumulator of relayed headers; a forged
/// header, a wrong path, a wrong transaction proof or an unrelayed height
/// is refused with a typed error and changes nothing.
#[test]
fn an_nt_whose_header_is_no_longer_kept_is_proved_by_its_accumulator_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 500, 41));
    m.wait_native_window(&rec).unwrap();
    let r = receiver();
    let nt = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt).unwrap();
    let pt = loop {
        if let Some(pt) = m.proof_for(id, Side::Receiver, &nt).unwrap() {
            break pt;
        }
        m.tick().unwrap();
    };
    while pt.height + m.spec.kept_headers() > m.bob_tip(cj) {
        m.tick().unwrap();
    }
    let (header, path) = m.header_path(cj, pt.height).unwrap();
    let call = |m: &gridledger_xchain::BobMbs, a: &bob::ProveRelayed| m.bob_call(&r, "prove_relayed", a, Amount::ZERO);
    let good = bob::ProveRelayed { pt: pt.clone(), header: header.clone(), header_proof: path.clone() };
    // A forged header (another transaction root) is not in the accumulator.
    let mut forged = good.clone();
    forged.header.tx_root = gridledger_core::Hash32([7; 32]);
    let tx = call(&m, &forged);
    assert_refused(&mut m, &tx, XchainError::BadHeaderProof { chain: cj, height: pt.height });
    // The real header under another height, or with a wrong path.
    let mut moved = good.clone();
    moved.pt.height += 1;
    let tx = call(&m, &moved);
    assert_refused(&mut m, &tx, XchainError::BadHeaderProof { chain: cj, height: pt.height + 1 });
    let mut short = good.clone();
    short.header_proof.pop();
    let tx = call(&m, &short);
    assert_refused(&mut m, &tx, XchainError::BadHeaderProof { chain: cj, height: pt.height });
    // A transaction proof that does not show NT under the header.
    let mut wrong = good.clone();
    wrong.pt.proof.leaf_count += 1;
    let tx = call(&m, &wrong);
    assert_refused(&mut m, &tx, XchainError::BadMerkleProof { chain: cj, height: pt.height });
    // A height the BoB has not relayed.
    let tip = m.bob_tip(cj);
    let mut ahead = good.clone();
    ahead.pt.height = tip + 1;
    let tx = call(&m, &ahead);
    assert_refused(&mut m, &tx, XchainError::UnknownHeader { chain: cj, height: tip + 1, tip });
    // The real one proves the receiver's side; a replay is refused.
    let tx = call(&m, &good);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    assert!(matches!(m.cct(&id).unwrap().receiver, SideState::Proved { height, .. } if height == pt.height));
    let tx = call(&m, &good);
    assert_refused(&mut m, &tx, XchainError::AlreadySettled("receiver"));
}

/// The receiver's floor on the penalty unit (attack R5-3): the terms the
/// library builds carry `min_x_b` = the quoted `x_B` less the slippage; a
/// CCT whose `x_B` (at the pools' reference balances) is below the floor
/// the receiver signed is refused with `PenaltyOutOfBounds` and changes
/// nothing.
#[test]
fn a_cct_priced_below_the_receivers_penalty_floor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let req = request_between(ci, cj, 1_000, 51);
    let quoted = m.quote(1_000, m.bob.chain_id(), cj).unwrap();
    let mut terms = m.terms(&req).unwrap();
    assert!(terms.min_x_b <= quoted && terms.min_x_b * 100 >= quoted * 98, "{} vs {quoted}", terms.min_x_b);
    terms.min_x_b = quoted + 1;
    let tx = m.cct_tx(&sender(), &receiver(), terms);
    assert_refused(&mut m, &tx, XchainError::PenaltyOutOfBounds { x_b: quoted, min: quoted + 1 });
}

/// The receiver's wallet signs one set of terms per sender nonce (attack
/// R8-5) and gives the nonce back once their CCT is complete and the nonce
/// spent (attack R11-3): after an exchange whose sender withheld, the
/// sender's driver spends the unspent nonce with a void, the next exchange
/// names the nonce after it and settles, and the withheld one is given
/// back once the void landed; while an open CCT holds the nonce, `swap` is
/// refused by the wallet.
#[test]
fn the_wallet_gives_a_sender_nonce_back_once_its_cct_completes() {
    use gridledger_xchain::wallet::WalletError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let first = m.swap(&request_between(ci, cj, 300, 40), Behaviour::Withhold(Side::Sender)).unwrap();
    assert_eq!(first.record.sender, SideState::Penalised);
    let n = first.record.terms.nonce_i;
    let second = m.swap(&request_between(ci, cj, 300, 41), Behaviour::Honest).unwrap();
    assert_eq!(second.record.terms.nonce_i, n + 1, "the withheld nonce is voided, never named again");
    assert!(m.wallet.entry(ci, &sender().address(), n).unwrap().is_none(), "the void spent it: given back");
    assert!(matches!(second.record.sender, SideState::Proved { .. }));
    assert!(matches!(second.record.receiver, SideState::Proved { .. }));
    // An open CCT signed through the wallet holds the sender's next nonce.
    let terms = m.try_terms(&request_between(ci, cj, 300, 42)).unwrap();
    m.bob_ok(&m.wallet_cct_tx(&sender(), &receiver(), terms.clone()).unwrap()).unwrap();
    // The terms builder skips it (attack R10-5); terms naming it are refused.
    let next = m.try_terms(&request_between(ci, cj, 300, 43)).unwrap();
    assert_eq!(next.nonce_i, terms.nonce_i + 1, "the builder names the sender's next nonce not held");
    let same = gridledger_xchain::CctTerms { nonce_i: terms.nonce_i, ..next };
    match m.wallet_cct_tx(&sender(), &receiver(), same) {
        Err(MbsError::Wallet(WalletError::NonceAlreadyAgreed { nonce, other, .. })) => {
            assert_eq!((nonce, other), (terms.nonce_i, Some(terms.id())));
        }
        got => panic!("a second set of terms on nonce {}: {:?}", terms.nonce_i, got.map(|_| ())),
    }
}
