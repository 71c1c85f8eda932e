//! Attacks on the cross-chain protocols (issue 14, item 9 and beyond).
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and failed on the code it was written against. Each is fixed
//! and runs with the suite.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::merkle::MerkleTree;
use gridledger_core::{Amount, Height};
use gridledger_ledger::devnet::transfer;
use gridledger_ledger::state::account_key;
use gridledger_ledger::{BlockHeader, Seal, StateRead, TxStatus};
use gridledger_xchain::bob::{self, CctV, Claim, Fraud, FraudEvidence, PostNt, Relay};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::{CctRecord, Finality, SealedHeader, Side, SideState, XchainError};

/// Ticks until the BoB holds both chains' deadlines of `rec`.
fn past_deadlines(m: &mut BobMbs, rec: &CctRecord) {
    while m.bob_tip(rec.terms.chain_i) < rec.deadline_i || m.bob_tip(rec.terms.chain_j) < rec.deadline_j {
        m.tick().unwrap();
    }
}

/// Balance evidence for `side` of `id` from the payer's account at chain
/// `chain`'s current height (what a BoB node can build for sub-situation 3).
fn balance_fraud(m: &BobMbs, id: gridledger_core::Hash32, side: Side, payer: &KeyPair, chain: u32) -> Fraud {
    let c = m.external(chain).unwrap();
    let (height, proof) = c.state_proof(&account_key(&payer.address()));
    let account = c.chain().state().get(&account_key(&payer.address())).map(|v| borsh::from_slice(&v).unwrap());
    Fraud { cct: id, side, height, evidence: FraudEvidence::Balance { account, proof } }
}

// ---------------------------------------------------------------------------
// Finding 1: one native transaction posted for two CCTs.
//
// The sender opens two CCTs with identical instructions (same parties,
// chains and x_j; only the salt differs) and posts the SAME NT_s to both.
// It lands once and is proved for CCT A. For CCT B it can never be proved
// (NtAlreadyUsed), but because it is *posted*, CCT_V treats B's sender side
// as sub-situation 2 (no penalty), and neither fraud evidence applies: the
// payer's nonce is past NT's (Balance → NotFraud) and no *other* transaction
// holds its nonce (NonceTaken → NotFraud).
//
// Expected: after the deadline the sender of CCT B, who paid the receiver
// nothing for B, is penalised (x_B to the receiver) and B completes.
// Observed: B stays open forever — sender Pending, `complete == false`; the
// receiver paid x_j twice on chain j, received x_i once, gets no
// compensation, and both parties' κ̄·x_B locks of B are frozen for good.
// ---------------------------------------------------------------------------
#[test]
fn one_nt_posted_for_two_ccts_leaves_the_second_unsettled_forever() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id_a, rec_a) = open_cct(&mut m, &request_between(ci, cj, 1_000, 101));
    // B names the sender's nonce A names (signed by hand: the wallet would
    // refuse it), the receiver's next one (exact since attack R10-1).
    let terms_b = gridledger_xchain::CctTerms {
        nonce_i: rec_a.terms.nonce_i,
        ..m.terms(&request_between(ci, cj, 1_000, 102)).unwrap()
    };
    m.bob_ok(&m.cct_tx(&s, &receiver(), terms_b.clone())).unwrap();
    let id_b = terms_b.id();
    let rec_b = m.cct(&id_b).unwrap();
    assert_eq!(rec_a.instruction(Side::Sender), rec_b.instruction(Side::Sender));
    m.wait_native_window(&rec_a).unwrap();
    m.wait_native_window(&rec_b).unwrap();
    // Receiver pays both honestly.
    receiver_pays_and_proves(&mut m, id_a, &rec_a);
    receiver_pays_and_proves(&mut m, id_b, &rec_b);
    // Sender: one NT, posted to both CCTs, sent once.
    let nt = m.native_tx(&rec_a, Side::Sender, &s).unwrap();
    m.external_mut(ci).unwrap().submit(&nt).unwrap();
    for id in [id_a, id_b] {
        let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO);
        m.bob_ok(&post).unwrap();
    }
    let pt = loop {
        if let Some(pt) = m.proof_for(id_a, Side::Sender, &nt).unwrap() {
            break pt;
        }
        m.tick().unwrap();
    };
    m.wait_final(ci, pt.height).unwrap();
    m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    assert!(m.cct(&id_a).unwrap().complete, "CCT A settles normally");

    // CCT B: deadline, CCT_V, then everything an honest BoB node can do.
    past_deadlines(&mut m, &rec_b);
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id_b }, Amount::ZERO)).unwrap();
    let mut pt_b = pt.clone();
    pt_b.cct = id_b;
    let _ = m.bob_exec(&m.bob_call(&relayer, "prove", &pt_b, Amount::ZERO)).unwrap();
    let f = balance_fraud(&m, id_b, Side::Sender, &s, ci);
    m.wait_final(ci, f.height).unwrap();
    let _ = m.bob_exec(&m.bob_call(&relayer, "fraud", &f, Amount::ZERO)).unwrap();
    // The forwarding window of a posted deadline NT ends at its deadline
    // (`valid_until + k`, attack R14-1): tick until it closed.
    for _ in 0..200 {
        if m.cct(&id_b).unwrap().complete {
            break;
        }
        m.tick().unwrap();
    }

    let b = m.cct(&id_b).unwrap();
    // Observed: sender Pending, complete false, receiver's lock still held.
    assert_eq!(
        b.sender,
        SideState::Penalised,
        "the sender paid nothing for CCT B and must lose x_B to the receiver (observed {:?}, complete={}, receiver locked {})",
        b.sender,
        b.complete,
        m.deposit(&receiver().address()).locked
    );
    assert!(b.complete, "CCT B must settle");
}

// ---------------------------------------------------------------------------
// Finding 2: a posted NT that can never land, with the payer solvent.
//
// The sender posts an NT_s with a nonce gap (its next nonce + 5): it is a
// correctly signed transfer matching IN_s, so `post_nt` stores it, but no
// chain will ever execute it. The sender keeps its balance, so Balance
// evidence is refused (NotFraud: balance covers NT), and no other
// transaction ever takes that nonce, so NonceTaken has nothing to show.
// (The same works with an NT whose gas price or gas limit the chain never
// accepts.)
//
// Expected: after the deadline and CCT_V a posted NT that did not land can
// be resolved (penalty to its payer), so the honest receiver is compensated.
// Observed: the sender side stays Pending forever; the receiver paid x_j on
// chain j and receives neither x_i nor x_B; its lock stays frozen.
// ---------------------------------------------------------------------------
#[test]
fn posted_nt_with_a_nonce_gap_is_never_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 1_000, 201));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let (chain, _, to, amount) = rec.instruction(Side::Sender);
    // Since attack R8-5 the sender's NT must carry the terms' nonce, so a
    // nonce gap is refused at `post_nt`; the unlandable NT is one with a
    // gas price below the chain's minimum instead.
    let gap = m.external(chain).unwrap().next_nonce(&s.address()) + 5;
    let gapped = m.external(chain).unwrap().sign(&s, transfer(&s, chain, gap, to, Amount(amount), Amount(1)));
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: gapped }, Amount::ZERO);
    let refusal = XchainError::NonceNotAgreed { chain, nonce: gap, agreed: rec.terms.nonce_i };
    assert_eq!(m.bob_exec(&post).unwrap().status, TxStatus::Reverted(refusal.as_revert()));
    let nt =
        m.external(chain).unwrap().sign(&s, transfer(&s, chain, rec.terms.nonce_i, to, Amount(amount), Amount::ZERO));
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    past_deadlines(&mut m, &rec);
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
    // The BoB node forwards the posted NT (sub-situation 2) for a long while.
    // No fraud evidence shows while it is open (once the forwarding
    // deadline closed it, the sender's driver voids the nonce: attack R11-3).
    for _ in 0..30 {
        let _ = m.external_mut(chain).unwrap().submit(&nt);
        m.tick().unwrap();
        let now = m.cct(&id).unwrap();
        if !now.complete {
            assert!(m.fraud_evidence(id, &now, Side::Sender, &nt).unwrap().is_none());
        }
    }
    assert!(m.external(chain).unwrap().tx_proof(&nt.hash()).unwrap().is_none(), "NT_s never lands");
    let f = balance_fraud(&m, id, Side::Sender, &s, ci);
    m.wait_final(ci, f.height).unwrap();
    let r = m.bob_exec(&m.bob_call(&relayer, "fraud", &f, Amount::ZERO)).unwrap();
    let rec = m.cct(&id).unwrap();
    assert_eq!(
        rec.sender,
        SideState::Penalised,
        "a posted NT that can never land must cost its payer x_B (observed {:?}, fraud receipt {:?}, complete={})",
        rec.sender,
        r.status,
        rec.complete
    );
}

// ---------------------------------------------------------------------------
// Finding 3: one validator of a probabilistic chain forges k confirmations.
//
// The embedded probabilistic chain has a leader schedule (height mod n), but
// the BoB only checks that a header's proposer is *some* validator. So one
// Byzantine validator (1 of 4) signs a private branch alone: a block holding
// a transfer to TPK_Addr_i that the sender never made on the real chain
// (it exceeds the sender's real balance), plus k blocks on top. A relayer
// ships it before the honest header; the BoB adopts it, and Π_CCTC mints
// the forged amount as Token_i on the BoB.
//
// Expected: a header proposed out of turn (not by validators[height mod n])
// is refused with BadSeal, so a fork needs more than one validator.
// Observed: the forged branch is accepted and the claim mints 10^15 Token_i.
// ---------------------------------------------------------------------------
#[test]
fn one_validator_forges_a_probabilistic_fork_and_mints_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let k = 2u32;
    let spec = MbsSpec { finality: Finality::Probabilistic { k }, kappa: 8, ..MbsSpec::default() };
    let mut m = BobMbs::open(dir.path(), spec).unwrap();
    let [ci, _] = chains2(&m);
    m.ticks(3).unwrap();
    let s = sender();
    let tpk = m.config.tpk_address(ci);
    let forged_amount: u128 = 1_000_000_000_000_000; // more than the sender's real balance
    let real = m.external(ci).unwrap().account(&s.address()).balance.0;
    assert!(forged_amount > real);
    let forged_nt = m.native_transfer(ci, &s, tpk, forged_amount).unwrap();

    let n = m.spec.validators as u64;
    let tip = m.bob_tip(ci);
    let tip_header = m.external(ci).unwrap().sealed_header(tip).unwrap().unwrap().header;
    // The Byzantine validator: the one NOT scheduled for height tip+1.
    let byz_index = (tip + 2) % n;
    assert_ne!(byz_index, (tip + 1) % n);
    let byz = KeyPair::from_seed(&format!("gridledger-xchain-{ci}-validator-{byz_index}"));
    assert!(m.config.chains.iter().any(|c| c.chain_id == ci && c.validators.contains(&byz.public())));

    let mut headers = Vec::new();
    let mut parent = tip_header.hash();
    for d in 0..=(k as Height) {
        let (tx_root, tx_count) = if d == 0 {
            (MerkleTree::new(&[forged_nt.hash()]).root(), 1)
        } else {
            (tip_header.tx_root, tip_header.tx_count)
        };
        let header = BlockHeader {
            chain_id: ci,
            height: tip + 1 + d,
            parent,
            timestamp: tip_header.timestamp + 15_000 * (d + 1),
            proposer: byz.public(),
            tx_root,
            receipt_root: tip_header.receipt_root,
            state_root: tip_header.state_root,
            gas_used: 0,
            tx_count,
        };
        parent = header.hash();
        let signature = byz.sign(&header.hash());
        headers.push(SealedHeader { header, seal: Seal::Single { signature } });
    }
    let relayer = m.relayer.clone();
    let relay = m.bob_call(&relayer, "relay", &Relay { chain: ci, headers }, Amount::ZERO);
    let r = bob_only(&mut m, &relay);
    let proof = MerkleTree::new(&[forged_nt.hash()]).proof(0).unwrap();
    let claim = m.bob_call(&s, "claim", &Claim { chain: ci, height: tip + 1, nt: forged_nt, proof }, Amount::ZERO);
    let c = bob_only(&mut m, &claim);
    let minted: u128 = m.bob_record(&bob::keys::wrapped(ci, &s.address())).unwrap_or(0);
    assert!(
        matches!(r.status, TxStatus::Reverted(_)) && minted == 0,
        "a fork signed by one validator out of turn must be refused (relay {:?}, claim {:?}, minted {minted})",
        r.status,
        c.status
    );
}

// ---------------------------------------------------------------------------
// Finding 4: an old payment counts as the NT of a newer CCT when the BoB's
// view of the chain lags.
//
// SC_MPV's "NT came after the CCT" check (ln 16 (ii): e' > e_i + κ̄) uses
// e_i = the BoB's *stored* tip of chain i when the CCT executed. If the
// relayers are more than κ̄ blocks behind (κ̄ = 2), an ordinary payment the
// sender made to the receiver *before* the CCT existed — here for something
// else, at a height above the stale e_i + κ̄ — is accepted as NT_s.
//
// Expected: a transaction included before the CCT executed (its block was
// produced before the CCT; the payer's nonce was already spent) is refused
// (TooEarly), so the receiver is paid anew or the sender penalised.
// Observed: `prove` accepts the old payment, the CCT completes, and the
// receiver paid x_j for nothing new.
// ---------------------------------------------------------------------------
#[test]
fn a_payment_older_than_the_cct_is_accepted_when_the_bob_lags() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let req = request_between(ci, cj, 1_000, 401);
    let stale_tip = m.bob_tip(ci);
    // Chain i advances without relaying; at stale_tip + 4 the sender pays
    // the receiver 1,000 for something unrelated.
    for _ in 0..3 {
        m.external_mut(ci).unwrap().tick().unwrap();
    }
    let old = m.native_transfer(ci, &s, receiver().address(), 1_000).unwrap();
    m.external_mut(ci).unwrap().submit(&old).unwrap();
    m.external_mut(ci).unwrap().tick().unwrap();
    let (old_h, _) = m.external(ci).unwrap().tx_proof(&old.hash()).unwrap().expect("old payment included");
    assert!(old_h > stale_tip + m.config.kappa_bar);
    // The parties agree on the terms now (the fix: they bind the payers'
    // next nonces), and the CCT executes while the BoB still holds the
    // stale tip of chain i.
    let terms = m.terms(&req).unwrap();
    let cct = m.cct_tx(&s, &receiver(), terms.clone());
    assert_eq!(bob_only(&mut m, &cct).status, TxStatus::Success);
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    assert_eq!(rec.e_i, stale_tip);
    assert_eq!(rec.instruction(Side::Sender).3, 1_000, "equal pool: x_i = x_j");
    // Relays catch up; the sender offers its old payment as NT_s.
    m.ticks(2).unwrap();
    let pt = m.proof_for(id, Side::Sender, &old).unwrap().unwrap();
    m.wait_final(ci, pt.height).unwrap();
    let r = m.bob_exec(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    let rec = m.cct(&id).unwrap();
    let refusal = XchainError::BeforeCct { chain: ci, nonce: old.tx.nonce, floor: terms.nonce_i };
    assert!(
        r.status == TxStatus::Reverted(refusal.as_revert()) && rec.sender == SideState::Pending,
        "a payment included before the CCT executed must not count as NT_s (prove {:?}, sender {:?})",
        r.status,
        rec.sender
    );
}

// ---------------------------------------------------------------------------
// Finding 5: a withholding sender escapes the penalty by posting an old,
// already executed payment as its NT_s.
//
// Before the CCT the sender paid the receiver x_i on chain i for something
// else. For the CCT it pays nothing; it posts that old transfer (it matches
// IN_s byte for byte) with `post_nt`. `prove` refuses it (TooEarly), but
// CCT_V sees a posted NT and leaves the side pending (sub-situation 2), and
// no fraud evidence exists: the nonce is past NT's (Balance → NotFraud) and
// the only transaction with that nonce is NT itself (NonceTaken → NotFraud).
//
// Expected: a withholding sender loses x_B of its deposit to the receiver
// (sub-situation 1 / 3); `post_nt` of a transaction that already executed
// before the CCT is refused or resolvable.
// Observed: the sender side stays Pending forever, no penalty; the receiver
// paid x_j and gets neither x_i nor x_B.
// ---------------------------------------------------------------------------
#[test]
fn a_withholder_posts_an_old_payment_and_escapes_the_penalty() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    // An ordinary earlier payment of 1,000 from the sender to the receiver.
    let old = m.native_transfer(ci, &s, receiver().address(), 1_000).unwrap();
    m.external_mut(ci).unwrap().submit(&old).unwrap();
    m.tick().unwrap();
    assert!(m.external(ci).unwrap().tx_proof(&old.hash()).unwrap().is_some());
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 1_000, 501));
    assert_eq!(rec.instruction(Side::Sender).3, 1_000, "equal pool: x_i = x_j");
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    // The sender withholds, posting the old transfer instead. Fix: its
    // nonce is below the floor the terms bound, so the post is refused and
    // the side counts as withheld (sub-situation 1).
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: old.clone() }, Amount::ZERO);
    let refusal = XchainError::BeforeCct { chain: ci, nonce: old.tx.nonce, floor: rec.terms.nonce_i };
    assert_eq!(m.bob_exec(&post).unwrap().status, TxStatus::Reverted(refusal.as_revert()));
    past_deadlines(&mut m, &rec);
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
    let f = balance_fraud(&m, id, Side::Sender, &s, ci);
    let r = m.bob_exec(&m.bob_call(&relayer, "fraud", &f, Amount::ZERO)).unwrap();
    m.ticks(20).unwrap();
    let rec = m.cct(&id).unwrap();
    assert_eq!(
        rec.sender,
        SideState::Penalised,
        "a sender that paid nothing for the CCT must lose x_B (observed {:?}, fraud {:?}, complete={}, sender free deposit {})",
        rec.sender,
        r.status,
        rec.complete,
        m.deposit(&s.address()).free
    );
}

// ---------------------------------------------------------------------------
// Finding 6 (baseline): anyone runs the lock/mint/claim baseline's step 3 on
// a subset of a process's minted items.
//
// `lmc_run` takes any list of minted locks of a process from any caller.
// A stranger runs it on user 0's item alone (no battle); user 0's item is
// released unchanged, and the honest run over all three minted items is
// then refused (UnknownLock), so users 1 and 2 never battle user 0 and
// their items stay locked until someone runs them separately.
//
// Expected: step 3 runs once on the process's full set of minted items
// (or only at the participants' request); a partial run is refused.
// Observed: the partial run succeeds and the full run is refused, so the
// baseline's outcome is whatever the first caller chooses; the
// side-by-side comparison runs against a baseline without this check.
// ---------------------------------------------------------------------------
#[test]
fn a_stranger_runs_the_baseline_on_a_subset_of_the_minted_items() {
    use gridledger_ledger::devnet::{call, dev_key};
    use gridledger_xchain::ccdi::CcdiCct;
    use gridledger_xchain::lmc::{LmcRun, LMC_ID};
    use gridledger_xchain::scbg::Lock;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { chains: 3, kappa: 4, lmc_baseline: true, ..MbsSpec::default() };
    let mut m = BobMbs::open(dir.path(), spec).unwrap();
    let chains = m.chain_ids();
    let process = gridledger_core::Hash32([7u8; 32]);
    let mut locks = Vec::new();
    for (x, chain) in chains.iter().enumerate() {
        let key = dev_key(x);
        let item = m.lmc_create_item(*chain, &key, &format!("p{x}"), 7 * x as u64 + 3).unwrap();
        let data = m.lmc_item(*chain, item).unwrap().data;
        let nonce = m.external(*chain).unwrap().next_nonce(&key.address());
        let args = borsh::to_vec(&Lock { process, item, data }).unwrap();
        let tx = m
            .external(*chain)
            .unwrap()
            .sign(&key, call(&key, *chain, nonce, LMC_ID, "lock", args, Amount::ZERO, 200_000));
        m.external_mut(*chain).unwrap().submit(&tx).unwrap();
        locks.push((key, *chain, item, tx));
    }
    m.tick().unwrap();
    let mut ids = Vec::new();
    for (key, chain, _, tx) in &locks {
        let (height, receipt, proof) = m.external(*chain).unwrap().receipt_proof(&tx.hash()).unwrap().unwrap();
        m.wait_final(*chain, height).unwrap();
        ids.push(gridledger_core::Hash32(receipt.output.clone().try_into().unwrap()));
        let cct = CcdiCct { process, chain: *chain, height, lock_tx: tx.clone(), receipt, proof };
        m.bob_ok(&m.bob_call(key, "lmc_mint", &cct, Amount::ZERO)).unwrap();
    }
    let stranger = dev_key(6);
    let partial = LmcRun { process, locks: vec![ids[0]], rollback: false };
    let p = m.bob_exec(&m.bob_call(&stranger, "lmc_run", &partial, Amount::ZERO)).unwrap();
    // A participant runs the full set (attack r26 [1]: only participants may).
    let full = LmcRun { process, locks: ids.clone(), rollback: false };
    let f = m.bob_exec(&m.bob_call(&locks[0].0, "lmc_run", &full, Amount::ZERO)).unwrap();
    assert!(
        matches!(p.status, TxStatus::Reverted(_)) && f.status == TxStatus::Success,
        "a partial step 3 by a stranger must be refused and the full run succeed (partial {:?}, full {:?})",
        p.status,
        f.status
    );
}
