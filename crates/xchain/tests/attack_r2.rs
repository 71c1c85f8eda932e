//! Second attack round on the cross-chain protocols (issue 14).
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r2 -- --ignored`.

mod common;

use common::*;
use gridledger_core::{Amount, Hash32};
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::{CctRecord, Side, SideState};

/// Drives `id` to its end as the BoB nodes do: CCT_V once both deadlines
/// passed, then ticks (the harness's relayer sends the closing CCT_V).
fn settle(m: &mut BobMbs, id: Hash32) -> CctRecord {
    settle_within(m, id, 200)
}

// ---------------------------------------------------------------------------
// Finding R2-1: a relay outage followed by one batch penalises an honest payer.
//
// The BoB keeps κ_i headers per chain and a relay may carry up to
// MAX_RELAY_BATCH (64) headers, more than κ_i (16 by default). The sender
// pays NT_s honestly inside the window (after e_i + κ̄) and posts it on the
// BoB at once. Then chain i's headers reach the BoB late: the relayers are
// down, or delay on purpose, for 40 epochs, and then ship the 40 headers in
// one relay transaction. Inside that one transaction the header holding
// NT_s is stored and dropped again (it is more than κ_i below the new tip),
// so no BoB block ever has it: `prove` is refused with StaleHeader from the
// first moment a proof could be sent. The stored tip jumped past deadline_i
// as well, CCT_V opens sub-situation 2, and since the landed NT can never
// be proved, the forwarding deadline closes it as withheld.
//
// Expected: an honest payer whose NT landed in its window and was posted
// in time is never penalised (atomicity): either the BoB refuses to advance
// a chain's tip by more than κ_i per block / keeps the headers a posted NT
// needs, or deadlines do not run on headers nobody could prove against.
// Observed: the sender's side ends `Penalised`; the receiver got x_i on
// chain i AND x_B of the sender's deposit.
// ---------------------------------------------------------------------------
#[test]
fn relay_outage_then_one_batch_penalises_an_honest_payer() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request(1_000, 301));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    // The sender pays honestly on chain i and posts NT_s (BoB block only).
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    m.external_mut(I).unwrap().submit(&nt).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO);
    let r = bob_only(&mut m, &post);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success, "NT_s posted before the deadline");
    // Chain i makes 40 blocks while no header of it reaches the BoB.
    for _ in 0..40 {
        m.external_mut(I).unwrap().tick().unwrap();
    }
    let (nt_height, _) = m.external(I).unwrap().tx_proof(&nt.hash()).unwrap().expect("NT_s landed");
    assert!(nt_height > rec.e_i + m.config.kappa_bar, "NT_s landed inside the window");
    // The relayer resumes. Fix: the BoB stores at most (κ_i − k)/2 headers
    // of a chain per block, so the tip can no longer jump past NT_s's
    // header in one block; the relayers catch up over several blocks.
    let tip_before = m.bob_tip(I);
    m.tick().unwrap();
    let tip_i = m.bob_tip(I);
    let cap = gridledger_xchain::bob::relay_per_block(m.spec.kappa, 0);
    assert_eq!(tip_i, tip_before + cap, "one block stores at most (κ_i − k)/2 headers");
    assert!(nt_height <= tip_i && nt_height > tip_i - m.spec.kept_headers(), "NT_s's header is stored and kept");
    // The sender proves at the first moment it can.
    let pt = m.proof_for(id, Side::Sender, &nt).unwrap().unwrap();
    let first_try = m.bob_exec(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    let done = settle(&mut m, id);
    assert!(done.complete, "the CCT settles");
    assert!(
        matches!(done.sender, SideState::Proved { .. }),
        "the honest sender paid x_i in its window and posted NT_s in time, yet its side is {:?} \
         (its first proof, right after the relay: {:?}; NT at height {nt_height}, stored tip {tip_i}, κ_i {})",
        done.sender,
        first_try.status,
        m.spec.kappa
    );
}

/// The fix of R2-1/R2-2: a relay that would store more than
/// `relay_per_block` headers of a chain in one BoB block is refused with a
/// typed error and changes nothing.
#[test]
fn a_relay_longer_than_the_per_block_cap_is_refused() {
    use gridledger_xchain::bob::{relay_per_block, Relay};
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let cap = relay_per_block(m.spec.kappa, 0);
    for _ in 0..cap + 1 {
        m.external_mut(I).unwrap().tick().unwrap();
    }
    let from = m.bob_tip(I) + 1;
    let headers: Vec<_> =
        (from..=from + cap).map(|h| m.external(I).unwrap().sealed_header(h).unwrap().unwrap()).collect();
    let relayer = m.relayer.clone();
    let relay = m.bob_call(&relayer, "relay", &Relay { chain: I, headers: headers.clone() }, Amount::ZERO);
    assert_refused(&mut m, &relay, XchainError::RelayTooFast { chain: I, max: cap, already: 0 });
    // Exactly `cap` are stored.
    let ok =
        m.bob_call(&relayer, "relay", &Relay { chain: I, headers: headers[..cap as usize].to_vec() }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &ok).status, gridledger_ledger::TxStatus::Success);
    assert_eq!(m.bob_tip(I), from - 1 + cap);
}

// ---------------------------------------------------------------------------
// Finding R2-2: the same relay batch burns a Π_CCTC lock for good.
//
// Same root cause as R2-1, on the claim protocol: a user locks Token_i in
// TPK_Addr_i (an ordinary transfer), the relayers deliver chain i's next
// 40 headers in one relay, and the header holding the lock is stored and
// dropped inside that one transaction. `claim` is refused (StaleHeader) at
// the first moment it can be sent and forever after; nothing else refunds
// a transfer to TPK_Addr_i, so the user's tokens are locked for good.
// (A user who simply claims more than κ_i epochs late loses them the same
// way: the BoB keeps no older header and offers no other proof path.)
//
// Expected: a lock that landed on chain i can be claimed at least once the
// BoB has stored its header (or the relay keeps every header a BoB block
// could still need); no coin is lost to a relayer's timing.
// Observed: the claim is refused, nothing is minted, the transfer's amount
// stays in TPK_Addr_i with no way to get it back.
// (Since fixed twice over: the relay cap keeps the header claimable, and a
// lock claimed after the BoB dropped its header is refunded to its sender
// on chains with a group account — `refund_lock`, tests/cctc_refund.rs.)
// ---------------------------------------------------------------------------
#[test]
fn relay_batch_makes_a_cctc_lock_unclaimable() {
    use gridledger_xchain::bob::{keys, Claim};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let user = sender();
    let amount = 5_000u128;
    let tpk = m.config.tpk_address(I);
    let before = m.external(I).unwrap().account(&user.address()).balance.0;
    let nt = m.native_transfer(I, &user, tpk, amount).unwrap();
    m.external_mut(I).unwrap().submit(&nt).unwrap();
    for _ in 0..40 {
        m.external_mut(I).unwrap().tick().unwrap();
    }
    let (height, proof) = m.external(I).unwrap().tx_proof(&nt.hash()).unwrap().expect("lock landed");
    assert!(m.external(I).unwrap().account(&user.address()).balance.0 < before - amount + 1, "the lock left the user");
    m.tick().unwrap(); // the relayer ships the 40 headers in one relay
    let claim = m.bob_call(&user, "claim", &Claim { chain: I, height, nt, proof }, Amount::ZERO);
    let r = m.bob_exec(&claim).unwrap();
    let minted: u128 = m.bob_record(&keys::wrapped(I, &user.address())).unwrap_or(0);
    assert_eq!(
        minted,
        amount,
        "the user locked {amount} in TPK_Addr_{I} at height {height} and claimed at the first chance; \
         claim: {:?}, stored tip {}, κ_i {}",
        r.status,
        m.bob_tip(I),
        m.spec.kappa
    );
}

// ---------------------------------------------------------------------------
// Finding R2-3: S_MUE strands every deposit when nobody is honest.
//
// S_MUE shares forfeited deposits among the participants whose slots were
// all stored; when there are none (every registered participant withheld,
// e.g. all of them were censored by their chains past the deadline, or
// Token_B deposits of a process nobody completed) the share is 0 and the
// forfeits stay in the BoB contract's account. No method pays them out:
// not the participants, not a treasury, not the BoB validators. (The
// remainder of `forfeited / honest` is stranded the same way, in smaller
// amounts, documented as a decision.)
//
// Expected: coin is conserved across every penalty path — every unit of a
// deposit ends with someone who can spend it (here: back to the payers, or
// to a named beneficiary), so the BoB contract holds no deposit once the
// process is finished.
// Observed: the contract keeps all 6 deposits for good.
// ---------------------------------------------------------------------------
#[test]
fn smue_strands_all_deposits_when_every_participant_withholds() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::ccdi::CcdiApp;
    use gridledger_xchain::ccdi_run::{CcdiAttack, CcdiUser, UserBehaviour};
    use gridledger_xchain::mbs::FIRST_EXTERNAL;
    const D: u128 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec { chains: 3, ccdi: true, kappa: 4, ..MbsSpec::fixed_ids() }).unwrap();
    let us: Vec<CcdiUser> = (0..6)
        .map(|x| {
            let key = dev_key(x);
            let chain = FIRST_EXTERNAL + (x as u32 / 2);
            let item = m.create_item(chain, &key, &format!("hero-{x}"), 10 + x as u64).unwrap();
            CcdiUser { key, chain, item, behaviour: UserBehaviour::Withhold }
        })
        .collect();
    let contract = gridledger_ledger::contract_address(gridledger_xchain::BOB_CONTRACT_ID);
    let held_before = m.bob.account(&contract).balance.0;
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), D, 1, 77).unwrap();
    assert!(rep.record.finished, "the outcome is fixed");
    assert_eq!(rep.eliminated, 6, "all six withheld");
    let held_after = m.bob.account(&contract).balance.0;
    // Fix: the six forfeits nobody honest can receive are burned, accounted.
    let burned = m.bob.account(&gridledger_xchain::ccdi::FORFEIT_SINK).balance.0;
    assert_eq!(burned, 6 * D, "all six forfeits are burned");
    assert_eq!(
        held_after,
        held_before,
        "after the process is finished no deposit may stay unowned in the BoB contract \
         (before {held_before}, after {held_after}: {} deposits of {D} stranded)",
        (held_after - held_before) / D
    );
}

// ---------------------------------------------------------------------------
// Finding R2-4: one validator's block time makes an honest NT `BeforeCct`.
//
// SC_MPV's freshness check refuses an NT whose block time is not after the
// BoB block that stored the CCT; its doc comment assumes block times agree
// "to within the κ̄ blocks an honest payer waits after e_*". But e_* is the
// BoB's *stored* tip: when the relayers lag κ̄ + 1 blocks behind chain i
// (here: 3 of chain i's blocks not yet relayed when the CCT executes) the
// chain is already past e_i + κ̄, and the honest payer (following the
// harness's own `wait_native_window`) sends NT_s at once. The ledger accepts
// any block time after the parent's, so the one validator scheduled for the
// next height — no collusion — stamps its block `parent + 1 ms`, i.e. still
// before the BoB block (made 30 s after chain i's last block). The k blocks
// on top are made honestly by the next validators in turn.
//
// Expected: an honest NT sent after the CCT executed, in a block that is
// valid on its chain (scheduled proposer, time after its parent) and final,
// is accepted by SC_MPV.
// Observed: `prove` is refused with BeforeCct; the payer can never prove it
// (a second payment would pay twice) and is penalised at the forwarding
// deadline (as in R2-1). A Byzantine leader can so penalise any payer of
// its chain whenever the relayers lag.
//
// Fix: SC_MPV judges "after the CCT" by the payer's nonce against the floor
// the terms bind (`CctTerms::nonce_i`), never by block times.
// ---------------------------------------------------------------------------
#[test]
fn one_leader_stamps_an_honest_nt_before_the_cct() {
    use gridledger_core::crypto::KeyPair;
    use gridledger_core::merkle::MerkleTree;
    use gridledger_core::Height;
    use gridledger_ledger::{BlockHeader, Seal};
    use gridledger_xchain::bob::{ProofTx, Relay};
    use gridledger_xchain::{Finality, SealedHeader};
    let dir = tempfile::tempdir().unwrap();
    let k = 2u64;
    let spec = MbsSpec { finality: Finality::Probabilistic { k: k as u32 }, kappa: 8, ..MbsSpec::fixed_ids() };
    let mut m = setup(dir.path(), spec);
    let s = sender();
    // Relayers lag: chain i makes 3 blocks the BoB does not see yet; the BoB
    // makes one block meanwhile (its blocks and chain i's are not in lockstep).
    for _ in 0..3 {
        m.external_mut(I).unwrap().tick().unwrap();
    }
    m.bob.tick().unwrap();
    let req = request(1_000, 401);
    let terms = m.terms(&req).unwrap();
    let cct = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    let r = bob_only(&mut m, &cct);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success);
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    let chain_h = m.external(I).unwrap().height();
    assert!(chain_h > rec.e_i + m.config.kappa_bar, "chain i is already past e_i + κ̄: the payer sends at once");
    // The honest payer's NT, sent right after the CCT executed.
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    // Chain i's next blocks: the scheduled leader of chain_h + 1 stamps its
    // block parent + 1 ms; the next k leaders build on it normally.
    let reg = m.config.chains.iter().find(|c| c.chain_id == I).unwrap().clone();
    let n = reg.validators.len();
    let key_of = |h: Height| -> KeyPair {
        let want = reg.leader(h).unwrap();
        (0..n)
            .map(|x| KeyPair::from_seed(&format!("gridledger-xchain-{I}-validator-{x}")))
            .find(|kp| kp.public() == *want)
            .expect("validator key")
    };
    let mut headers: Vec<SealedHeader> =
        (rec.e_i + 1..=chain_h).map(|h| m.external(I).unwrap().sealed_header(h).unwrap().unwrap()).collect();
    let top = headers.last().unwrap().header.clone();
    let mut parent = top.clone();
    for d in 0..=k {
        let h = chain_h + 1 + d;
        let leader = key_of(h);
        let (tx_root, tx_count) = if d == 0 { (MerkleTree::new(&[nt.hash()]).root(), 1) } else { (top.tx_root, 0) };
        let header = BlockHeader {
            chain_id: I,
            height: h,
            parent: parent.hash(),
            timestamp: if d == 0 { parent.timestamp + 1 } else { parent.timestamp + 15_000 },
            proposer: leader.public(),
            tx_root,
            receipt_root: top.receipt_root,
            state_root: top.state_root,
            gas_used: 0,
            tx_count,
        };
        let signature = leader.sign(&header.hash());
        parent = header.clone();
        headers.push(SealedHeader { header, seal: Seal::Single { signature } });
    }
    let nt_block = headers.iter().find(|sh| sh.header.height == chain_h + 1).unwrap().header.clone();
    assert!(nt_block.timestamp > top.timestamp, "the block is valid on its chain: after its parent");
    // The relayer ships them over as many BoB blocks as the per-block cap needs.
    let relayer = m.relayer.clone();
    let cap = gridledger_xchain::bob::relay_per_block(m.spec.kappa, k as u32) as usize;
    for batch in headers.chunks(cap) {
        let relay = m.bob_call(&relayer, "relay", &Relay { chain: I, headers: batch.to_vec() }, Amount::ZERO);
        let rr = bob_only(&mut m, &relay);
        assert_eq!(rr.status, gridledger_ledger::TxStatus::Success, "the scheduled leaders' headers are accepted");
    }
    assert_eq!(m.bob_tip(I), chain_h + 1 + k);
    let proof = MerkleTree::new(&[nt.hash()]).proof(0).unwrap();
    let pt = ProofTx { cct: id, side: Side::Sender, nt, height: chain_h + 1, proof };
    let prove = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    let r = bob_only(&mut m, &prove);
    assert_eq!(
        r.status,
        gridledger_ledger::TxStatus::Success,
        "an honest NT sent after the CCT, in a valid final block, must be accepted \
         (NT block time {}, CCT stored at {})",
        nt_block.timestamp,
        rec.stored_at
    );
}

// ---------------------------------------------------------------------------
// Finding R2-7: SC_AMM liquidity can never leave the pool.
//
// `provide` moves Token_B (the call's value) or claimed Token_i into the
// pool and records the provider's share (`lp` key), but the BoB contract
// has no method that gives a share back: the pool only prices CCTs, so
// every unit ever provided is held by the BoB contract for good. Coin is
// not conserved for liquidity providers (their balances fall by what they
// provided and nothing they can call raises them again).
//
// Expected: a provider can take back its share of the pool (Token_B to its
// account, Token_i as claimed tokens it can redeem), at least the amount it
// provided while no CCT has used the pool.
// Observed: every plausible method is refused (`bob has no method ...`) and
// the provided Token_B stays in the contract.
// ---------------------------------------------------------------------------
#[test]
fn provided_liquidity_can_be_taken_back() {
    use gridledger_xchain::bob::WithdrawLiquidity;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::fixed_ids()).unwrap();
    let lp = provider();
    // Large against the calls' fees (a few 10^5), small against the provider's balance.
    let amount = 1_000_000_000u128;
    let before = m.bob.account(&lp.address()).balance.0;
    // A join brings every token of the pool (attack R6-5).
    for c in m.chain_ids() {
        m.provide_liquidity(&lp, c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&lp, amount).unwrap();
    // Fix: `withdraw_liquidity` burns LP shares (the opening join mints one
    // per unit of Token_B, `LOCKED_SHARES` of them locked for ever).
    let shares = amount - gridledger_xchain::bob::LOCKED_SHARES;
    let tx = m.bob_call(&lp, "withdraw_liquidity", &WithdrawLiquidity { shares }, Amount::ZERO);
    let answers = m.bob_exec(&tx).unwrap().status;
    let after = m.bob.account(&lp.address()).balance.0;
    // Fees of the six calls aside (far below `amount`).
    assert!(
        after + amount / 2 > before,
        "the provider's {amount} Token_B must be retrievable (balance {before} → {after}; {answers:?})"
    );
}

// ---------------------------------------------------------------------------
// Finding R2-8: a release order replays on another BoB instance's chain.
//
// SC_BG's release statement binds only (purpose, chain id, sequence,
// order): not the BoB instance that recorded the order nor the genesis of
// the chain it pays on. Two BoB-MBS deployments whose committees share a
// threshold key (every development MBS does: `BobCommittee::dev` with the
// default seed; in production a committee reusing its key for a second BoB
// or a test network) and whose external chains share an id accept each
// other's release orders: a user burns its own claimed tokens on BoB A and
// the signed order, replayed on chain 101 of deployment B at B's next
// sequence number, pays out of B's TPK_Addr_i — other users' locked coin.
//
// Expected: a release signed for one BoB instance / chain instance is
// refused on another (BadThresholdSignature or a typed foreign-instance
// error), and B's TPK_Addr_i keeps its coin.
// Observed: the replay succeeds and pays the attacker from B's TPK_Addr_i.
// ---------------------------------------------------------------------------
#[test]
fn a_release_order_replays_on_another_bob_instance() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_ledger::{TxKind, TxStatus};
    use gridledger_xchain::bob::Claim;
    use gridledger_xchain::scbg::Release;
    fn lock_and_claim(m: &mut BobMbs, who: &gridledger_core::crypto::KeyPair, amount: u128) {
        let tpk = m.config.tpk_address(I);
        let nt = m.native_transfer(I, who, tpk, amount).unwrap();
        m.external_mut(I).unwrap().submit(&nt).unwrap();
        m.tick().unwrap();
        let (height, proof) = m.external(I).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
        m.wait_final(I, height).unwrap();
        let claim = m.bob_call(who, "claim", &Claim { chain: I, height, nt, proof }, Amount::ZERO);
        m.bob_ok(&claim).unwrap();
    }
    let spec = || MbsSpec { ccdi: true, ..MbsSpec::fixed_ids() };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = BobMbs::open(da.path(), spec()).unwrap();
    let mut b = BobMbs::open(db.path(), spec()).unwrap();
    let (attacker, victim) = (dev_key(2), dev_key(3));
    // Deployment B: the victim locks 50,000 in TPK_Addr_i and claims it.
    lock_and_claim(&mut b, &victim, 50_000);
    let tpk_b = b.config.tpk_address(I);
    assert_eq!(b.external(I).unwrap().account(&tpk_b).balance.0, 50_000);
    // Deployment A: the attacker locks, claims and redeems 40,000 of its own.
    lock_and_claim(&mut a, &attacker, 40_000);
    a.redeem(&attacker, I, 40_000, attacker.address()).unwrap();
    let signed = a.release_tx(I, 0).unwrap();
    let TxKind::Call { args, .. } = &signed.tx.kind else { panic!("a call") };
    let rel: Release = borsh::from_slice(args).unwrap();
    // Replayed on B's chain i (B's first release: sequence 0).
    let before = b.external(I).unwrap().account(&attacker.address()).balance.0;
    let replay = b.sc_bg_call(I, &attacker, "release", &rel).unwrap();
    let h = b.external_mut(I).unwrap().submit(&replay).unwrap();
    b.external_mut(I).unwrap().tick().unwrap();
    let r = b.external(I).unwrap().receipt(&h).unwrap().unwrap();
    let after = b.external(I).unwrap().account(&attacker.address()).balance.0;
    assert!(
        matches!(r.status, TxStatus::Reverted(_)) && b.external(I).unwrap().account(&tpk_b).balance.0 == 50_000,
        "a release signed for BoB A must not pay on deployment B (status {:?}; attacker {before} → {after}; \
         B's TPK_Addr_i now {})",
        r.status,
        b.external(I).unwrap().account(&tpk_b).balance.0
    );
}

/// The refusals of `provide` and `withdraw_liquidity` (attack R6-5: a
/// join brings every token pro rata, a withdrawal takes every token pro
/// rata): a join without every token, with an unknown token, with a token
/// twice, with Token_B not the attached value, with more than one's claimed
/// tokens; a withdrawal of zero or more than one's shares, by a caller
/// with no shares, with attached value; each changes nothing. Then a
/// quarter of the shares takes a quarter of every token's balance.
#[test]
fn withdraw_liquidity_refuses_bad_requests_and_pays_proportionally() {
    use gridledger_xchain::bob::{keys, Provide, WithdrawLiquidity, LOCKED_SHARES};
    use gridledger_xchain::mbs::BOB_CHAIN;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::fixed_ids()).unwrap();
    let lp = provider();
    let amount = 1_000_000u128;
    let chains = m.chain_ids();
    for c in &chains {
        m.provide_liquidity(&lp, *c, amount).unwrap();
    }
    let join =
        |m: &BobMbs, amounts: Vec<(u32, u128)>, value| m.bob_call(&lp, "provide", &Provide { amounts }, Amount(value));
    let mut all: Vec<(u32, u128)> = chains.iter().map(|c| (*c, amount)).collect();
    all.push((BOB_CHAIN, amount));
    // Refused joins (the pool is not open yet; nothing changes).
    let tx = join(&m, all[1..].to_vec(), amount);
    assert_refused(&mut m, &tx, XchainError::JoinMissingToken(all[0].0));
    let mut unknown = all.clone();
    unknown.push((999, 1));
    let tx = join(&m, unknown, amount);
    assert_refused(&mut m, &tx, XchainError::UnknownToken(999));
    let mut twice = all.clone();
    twice.push(all[0]);
    let tx = join(&m, twice, amount);
    assert_refused(&mut m, &tx, XchainError::BadTerms(format!("token {} named twice in a join", all[0].0)));
    let mut more = all.clone();
    more[0].1 = amount + 1;
    let tx = join(&m, more, amount);
    assert_refused(&mut m, &tx, XchainError::Insufficient { what: "claimed tokens", have: amount, need: amount + 1 });
    let tx = join(&m, all.clone(), amount - 1);
    let before = m.bob_contract_state();
    assert!(matches!(bob_only(&mut m, &tx).status, gridledger_ledger::TxStatus::Reverted(_)), "value ≠ Token_B");
    assert_eq!(m.bob_contract_state(), before);
    // The opening join.
    let tx = join(&m, all.clone(), amount);
    assert_eq!(bob_only(&mut m, &tx).status, gridledger_ledger::TxStatus::Success);
    let mine = amount - LOCKED_SHARES;
    assert_eq!(m.bob_record::<u128>(&keys::lp(&lp.address())), Some(mine));
    assert_eq!(m.bob_record::<u128>(&keys::lp_total()), Some(amount));
    let w = |m: &BobMbs, who: &gridledger_core::crypto::KeyPair, shares, value| {
        m.bob_call(who, "withdraw_liquidity", &WithdrawLiquidity { shares }, Amount(value))
    };
    let tx = w(&m, &lp, 0, 0);
    assert_refused(&mut m, &tx, XchainError::ZeroAmount);
    let tx = w(&m, &lp, mine + 1, 0);
    assert_refused(&mut m, &tx, XchainError::Insufficient { what: "LP shares", have: mine, need: mine + 1 });
    let tx = w(&m, &sender(), 1, 0);
    assert_refused(&mut m, &tx, XchainError::Insufficient { what: "LP shares", have: 0, need: 1 });
    let tx = w(&m, &lp, 1, 5);
    let before = m.bob_contract_state();
    assert!(matches!(bob_only(&mut m, &tx).status, gridledger_ledger::TxStatus::Reverted(_)), "value refused");
    assert_eq!(m.bob_contract_state(), before);
    // A quarter of the supply takes a quarter of every token.
    let bal = m.bob.account(&lp.address()).balance.0;
    let tx = w(&m, &lp, amount / 4, 0);
    let r = bob_only(&mut m, &tx);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success);
    let fee = r.fee.0;
    let expect = amount / 4;
    assert_eq!(m.bob.account(&lp.address()).balance.0 + fee, bal + expect);
    assert_eq!(m.bob_record::<u128>(&keys::lp(&lp.address())).unwrap(), mine - amount / 4);
    assert_eq!(m.bob_record::<u128>(&keys::lp_total()).unwrap(), amount - amount / 4);
    for (t, _) in &all {
        assert_eq!(m.bob_record::<u128>(&keys::pool(*t)).unwrap(), amount - expect, "token {t}");
        if *t != BOB_CHAIN {
            assert_eq!(m.bob_record::<u128>(&keys::wrapped(*t, &lp.address())).unwrap(), expect, "token {t}");
        }
    }
}
