//! Fourth attack round on the cross-chain protocols (issue 14): fraud
//! evidence, the deposit lock's price, and Byzantine validators of an
//! external chain.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r4 -- --ignored`.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::transfer;
use gridledger_ledger::TxStatus;
use gridledger_xchain::bob::{Fraud, FraudEvidence, PostNt};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest};
use gridledger_xchain::{CctRecord, Side, SideState};

/// Ticks until `nt` is in a block of its chain that the BoB holds as final;
/// returns the block's height and the transaction's Merkle proof.
fn landed(
    m: &mut BobMbs,
    nt: &gridledger_ledger::SignedTransaction,
) -> (gridledger_core::Height, gridledger_core::merkle::MerkleProof) {
    let chain = nt.tx.chain_id;
    for _ in 0..200 {
        if let Some(p) = m.external(chain).unwrap().tx_proof(&nt.hash()).unwrap() {
            m.wait_final(chain, p.0).unwrap();
            return p;
        }
        m.tick().unwrap();
    }
    panic!("transaction {} never landed", nt.hash());
}

/// The receiver of `rec` pays its side honestly, posts it and proves it.
fn receiver_pays_and_proves(m: &mut BobMbs, rec: &CctRecord) {
    let r = receiver();
    let id = rec.terms.id();
    let nt_r = m.native_tx(rec, Side::Receiver, &r).unwrap();
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let (height, proof) = landed(m, &nt_r);
    let pt = gridledger_xchain::bob::ProofTx { cct: id, side: Side::Receiver, nt: nt_r, height, proof };
    m.bob_ok(&m.bob_call(&r, "prove", &pt, Amount::ZERO)).unwrap();
}

/// Drives a CCT to its end as an honest BoB node does: CCT_V once both
/// deadlines passed, then ticks (the harness's relayer closes sub-situation 2).
fn settle(m: &mut BobMbs, id: gridledger_core::Hash32) -> CctRecord {
    settle_within(m, id, 300)
}

/// A fee-bumped NT counts as fraud. The sender posts NT_s (gas price 1) to
/// the BoB as Algorithm 5.1 asks; its wallet then re-signs the same payment
/// with the same nonce and a higher fee — what any wallet does with a
/// transfer stuck in a busy mempool — and that version lands on chain i:
/// the receiver is paid exactly IN_s (x_i from sender_i to receiver_i,
/// nonce above the floor, in the window). `fraud` with
/// `FraudEvidence::NonceTaken` only asks for "another transaction of the
/// payer with NT's nonce" in a final block; it never asks whether that
/// transaction is itself a valid NT for the side. The receiver (who gains
/// x_B by it) — or the harness's own honest BoB node, whose
/// `fraud_evidence` builds exactly this evidence — proves "fraud", and the
/// sender's side is `Penalised`: it paid x_i natively AND loses x_B of its
/// deposit to the receiver (atomicity: "delivers xor pays" is broken).
///
/// Expected: `fraud` refuses evidence whose "other" transaction pays the
/// side's instruction at or above the floor (`NotFraud`), and the sender
/// proves that transaction; its side ends `Proved`. Observed: the fraud
/// transaction succeeds, the side ends `Penalised`, and the sender's proof
/// of its landed payment is refused (`AlreadySettled`).
#[test]
fn a_fee_bumped_nt_is_punished_as_fraud_although_it_paid_the_instruction() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r) = (sender(), receiver());
    let (id, rec) = open_cct(&mut m, &request(700, 4401));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, &rec);
    // The sender's NT as posted to the BoB (gas price 1) ...
    let posted = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: posted.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    // ... and the fee-bumped copy its wallet re-signed, which lands.
    let (chain, _payer, to, amount) = rec.instruction(Side::Sender);
    let bumped =
        m.external(chain).unwrap().sign(&s, transfer(&s, chain, posted.tx.nonce, to, Amount(amount), Amount(2)));
    assert_ne!(bumped.hash(), posted.hash());
    let paid_before = m.external(I).unwrap().account(&r.address()).balance.0;
    m.external_mut(I).unwrap().submit(&bumped).unwrap();
    let (height, proof) = landed(&mut m, &bumped);
    assert_eq!(
        m.external(I).unwrap().account(&r.address()).balance.0,
        paid_before + rec.x_i,
        "the receiver was paid x_i on chain i, exactly IN_s"
    );
    // The receiver (or a BoB node) proves "fraud" with the landed payment.
    let fraud = Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: FraudEvidence::NonceTaken { other: bumped.clone(), proof: proof.clone() },
    };
    let tx = m.bob_call(&r, "fraud", &fraud, Amount::ZERO);
    let f = bob_only(&mut m, &tx);
    // The sender proves its landed payment.
    let pt = gridledger_xchain::bob::ProofTx { cct: id, side: Side::Sender, nt: bumped, height, proof };
    let tx = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    let p = bob_only(&mut m, &tx);
    let end = settle(&mut m, id);
    assert!(
        matches!(end.sender, SideState::Proved { .. }),
        "the sender paid IN_s on chain i but its side ended {:?} (fraud: {:?}; its proof: {:?}; sender deposit {:?})",
        end.sender,
        f.status,
        p.status,
        m.deposit(&s.address())
    );
}

/// The penalty unit x_B is not part of what the receiver signs. SC_T prices
/// `x_B` (the Token_B worth of `x_j`, ln 04) from SC_AMM's Token_B pool
/// when the CCT executes, and locks κ̄·x_B of each deposit; x_B is all a
/// receiver who paid NT_r gets if the sender withholds (ln 24–25). The
/// terms bound `x_i` (`min_x_i`/`max_x_i`), but nothing bounds `x_B`, and
/// `x_i` does not depend on the Token_B pool. A sender who holds the Token_B
/// pool's LP shares (or an accomplice who does) puts three transactions in
/// one BoB block: `withdraw_liquidity` of all but one unit of Token_B, the
/// CCT, `provide` back. The CCT prices x_B at 1 instead of 700, locks 2;
/// the sender withholds NT_s, keeps x_j it received on chain j, and loses 1
/// Token_B.
///
/// Expected: the CCT executes only with the x_B (or deposit lock) the
/// receiver agreed to — e.g. the terms bound x_B as they bound x_i, and a
/// CCT priced outside is refused — so a withholding sender pays the
/// receiver the Token_B worth of x_j. Observed: x_B = 1, the receiver paid
/// 700 Token_j and is compensated with 1 Token_B.
#[test]
fn the_sender_shrinks_the_penalty_by_draining_the_token_b_pool_around_its_cct() {
    use gridledger_xchain::amm;
    use gridledger_xchain::bob::{keys, Provide, WithdrawLiquidity, LOCKED_SHARES};
    use gridledger_xchain::mbs::BOB_CHAIN;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::fixed_ids()).unwrap();
    let (s, r) = (sender(), receiver());
    // The sender is the pool's liquidity provider (since R6-5 one share is
    // a part of every token; it drains and refills all of them).
    for c in m.chain_ids() {
        m.provide_liquidity(&s, c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&s, LIQUIDITY).unwrap();
    let refill_amounts: Vec<(u32, u128)> =
        m.config.weights.iter().map(|(t, _)| (*t, LIQUIDITY - LOCKED_SHARES)).collect();
    m.deposit_token_b(&s, DEPOSIT).unwrap();
    m.deposit_token_b(&r, DEPOSIT).unwrap();
    let req = request(700, 4402);
    let terms = m.terms(&req).unwrap();
    m.check_floors(&terms).unwrap();
    // What the receiver sees when it signs: x_B for x_j at today's pool.
    let weight = |t| m.config.weights.iter().find(|(c, _)| *c == t).unwrap().1;
    let pool = |m: &BobMbs, t| m.bob_record::<u128>(&keys::pool(t)).unwrap_or(0);
    let agreed_x_b =
        amm::amount_in_for(700, (BOB_CHAIN, pool(&m, BOB_CHAIN), weight(BOB_CHAIN)), (J, pool(&m, J), weight(J)))
            .unwrap();
    let cct = m.cct_tx(&s, &r, terms.clone());
    // One BoB block: drain, CCT, refill (the sender's consecutive nonces).
    let n = m.bob.next_nonce(&s.address());
    let domain = m.bob.domain();
    let drain = gridledger_xchain::mbs::bob_call_signed(
        &s,
        BOB_CHAIN,
        &domain,
        n,
        "withdraw_liquidity",
        &WithdrawLiquidity { shares: LIQUIDITY - LOCKED_SHARES },
        Amount::ZERO,
    );
    let cct = {
        // Re-sign the CCT with the next nonce after the drain.
        let gridledger_ledger::TxKind::Call { args, .. } = &cct.tx.kind else { unreachable!() };
        let a: gridledger_xchain::bob::CctArgs = borsh::from_slice(args).unwrap();
        gridledger_xchain::mbs::bob_call_signed(&s, BOB_CHAIN, &domain, n + 1, "cct", &a, Amount::ZERO)
    };
    let refill = gridledger_xchain::mbs::bob_call_signed(
        &s,
        BOB_CHAIN,
        &domain,
        n + 2,
        "provide",
        &Provide { amounts: refill_amounts },
        Amount(LIQUIDITY - LOCKED_SHARES),
    );
    for tx in [&drain, &cct, &refill] {
        m.bob.submit(tx).unwrap();
    }
    m.bob.tick().unwrap();
    for tx in [&drain, &cct, &refill] {
        assert_eq!(m.bob.receipt(&tx.hash()).unwrap().unwrap().status, TxStatus::Success);
    }
    assert_eq!(pool(&m, BOB_CHAIN), LIQUIDITY, "the pool is back as it was");
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    // The receiver pays honestly; the sender withholds.
    m.wait_native_window(&rec).unwrap();
    let total = |m: &BobMbs| {
        let d = m.deposit(&r.address());
        d.free + d.locked
    };
    let r_before = total(&m);
    receiver_pays_and_proves(&mut m, &rec);
    let end = settle(&mut m, id);
    assert_eq!(end.sender, SideState::Penalised, "the sender withheld");
    let compensation = total(&m) - r_before;
    assert!(
        compensation >= agreed_x_b,
        "the receiver paid x_j = 700 Token_j and got {compensation} Token_B for the sender's default \
         (x_B at signing {agreed_x_b}, x_B at execution {}, lock {})",
        rec.x_b,
        rec.lock
    );
}

fn replicas(
    root: &std::path::Path,
    spec: &MbsSpec,
) -> (Vec<gridledger_xchain::replica::Replica>, gridledger_xchain::headers::ChainRegistration) {
    use gridledger_xchain::mbs::{open_chain, Role};
    let rs = (0..spec.validators)
        .map(|v| {
            let (c, _) = open_chain(&root.join(format!("v{v}")), spec, Role::External(0)).expect("open");
            gridledger_xchain::replica::Replica::new(c, v).expect("validator")
        })
        .collect();
    let (full, _) = open_chain(&root.join("full"), spec, Role::External(0)).unwrap();
    (rs, full.registration(spec.kappa).unwrap())
}

/// One Byzantine leader ends an external chain for good. A block's
/// timestamp is the leader's choice (`Replica::propose(not_before)`), and
/// the honest replicas' `vote` re-executes the proposal, whose only time
/// rule is "after the parent": nothing bounds it from above (no clock
/// skew limit). The scheduled leader of height 1 — one validator of four —
/// stamps its block `u64::MAX − 1`; the three honest validators vote for it,
/// the seal is valid (the BoB's `check_next` takes it too) and every
/// replica commits it. From then on every honest leader's `propose`
/// computes `parent + EPOCH_MS` and overflows: a panic in a debug build
/// (the validator process dies), a wrapped timestamp that is not after the
/// parent in a release build. No block can ever follow: the chain — and
/// with it every CCTE, Π_CCTC lock and CCDI item on it — is stuck, by one
/// faulty validator of 3f + 1.
///
/// Expected: honest replicas refuse to vote for a proposal stamped
/// implausibly far ahead (e.g. more than a bounded skew past their own
/// clock or the parent), or, having committed it, the chain still makes its
/// next block. Observed: 3 of 4 votes and a valid seal for the block at
/// `u64::MAX − 1`; the next leader's `propose` panics ("attempt to add with
/// overflow").
#[test]
fn one_leader_stamping_the_end_of_time_halts_the_chain() {
    use gridledger_ledger::Seal;
    use gridledger_xchain::SealedHeader;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::fixed_ids();
    let (mut rs, reg) = replicas(dir.path(), &spec);
    let leader = rs[0].leader_of(1);
    let mut block = rs[leader].propose(u64::MAX - 1).unwrap();
    let quorum = rs[0].quorum();
    let votes: Vec<_> = rs.iter().filter_map(|r| r.vote(&block).ok()).take(quorum).collect();
    let voted = votes.len();
    if voted == quorum {
        block.seal = Seal::Quorum { view: 0, signatures: votes };
        let sh = SealedHeader { header: block.header.clone(), seal: block.seal.clone() };
        assert!(reg.check_next(0, &reg.anchor_hash, &sh).is_ok(), "the BoB would take the header too");
        for r in rs.iter_mut() {
            r.commit(&block).unwrap();
        }
    }
    let next_leader = rs[0].leader_of(2);
    let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rs[next_leader].propose(0).map(|_| ())));
    let next_ok = matches!(next, Ok(Ok(())));
    assert!(
        voted < quorum || next_ok,
        "{voted} honest votes for a block stamped {}; the next honest leader's proposal: {}",
        block.header.timestamp,
        match next {
            Ok(r) => format!("{r:?}"),
            Err(_) => "panicked".into(),
        }
    );
}

/// Deadlines run on a lagging BoB view; the forwarding window closes before
/// the honest NT's header can arrive. SC_T sets `deadline_* = e_* + κ̄ + κ_*`
/// from `e_*`, the tip the BoB has *stored* for a chain when the CCT
/// executes — not the chain's real height — and CCT_V sets the forwarding
/// deadline `t_* + κ̄ + κ_*` from the stored tip again. The relay cap (at
/// most `(κ − k)/2` = 8 headers a block, attack R2-1/R2-2) makes a BoB that
/// fell behind catch up at 8 − 1 = 7 headers a block. The relayers
/// (Byzantine relayers withholding headers, issue item 6) kept chain j's
/// headers back for 60 epochs and chain i's for 20, and an honest CCTE
/// starts then: each party pays at once — on the real chains, 20 and 60
/// heights above `e_i` and `e_j` — and posts its NT. Both stored tips pass
/// their deadlines within three BoB blocks, CCT_V opens sub-situation 2,
/// and chain j's forwarding deadline (stored tip then, plus 18) comes
/// before the stored tip reaches the block holding NT_r: the BoB node's
/// closing CCT_V penalises the receiver, who paid x_j promptly. (With both
/// chains 60 behind, both honest sides end `Penalised`.)
///
/// Expected: both honest sides end `Proved` (atomicity: a payer who paid
/// and posted inside the window is never penalised, whatever the relayers'
/// lag — e.g. deadlines count from when the BoB has caught up, or the
/// forwarding window lasts until the posted NT's block can be stored).
/// Observed: sender `Proved`, receiver `Penalised` (e_j 9, deadline_j 27,
/// forward_j 59, NT_r at about 70): the sender got x_j on chain j and x_B
/// of the receiver's deposit.
#[test]
fn an_honest_receiver_is_penalised_when_the_relay_of_its_chain_lags() {
    use gridledger_xchain::mbs::Behaviour;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    // The relayers withhold chain j's headers for 60 epochs, chain i's
    // for the last 20 of them.
    for e in 0..60 {
        if e >= 40 {
            m.external_mut(I).unwrap().tick().unwrap();
        }
        m.external_mut(J).unwrap().tick().unwrap();
    }
    let lag = m.external(J).unwrap().height() - m.bob_tip(J);
    assert!(lag >= 60, "the BoB is {lag} headers behind chain j");
    let r_deposit = m.deposit(&receiver().address());
    let got_j = m.external(J).unwrap().account(&sender().address()).balance.0;
    let rep = m.swap(&request(700, 4404), Behaviour::Honest).unwrap();
    assert_eq!(
        m.external(J).unwrap().account(&sender().address()).balance.0,
        got_j + 700,
        "the receiver paid NT_r on chain j"
    );
    assert!(
        matches!(rep.record.sender, SideState::Proved { .. })
            && matches!(rep.record.receiver, SideState::Proved { .. }),
        "two honest parties; sides ended sender {:?}, receiver {:?} (e_j {}, deadline_j {}, forward_j {}); \
         receiver's deposit {r_deposit:?} -> {:?}",
        rep.record.sender,
        rep.record.receiver,
        rep.record.e_j,
        rep.record.deadline_j,
        rep.record.forward_j,
        m.deposit(&receiver().address())
    );
}

/// Replay across deployments, one level below the terms. Round 3 bound the
/// receiver's signature on CCT terms and every group statement to the
/// deployment (the BoB's genesis), because "chain and contract ids are the
/// same constants in every deployment" (`BobConfig::deployment`). But the
/// transactions themselves still name only a chain id — 100 for every BoB,
/// 101, 102, … for every deployment's external chains — and their
/// signature binds nothing else: a transaction a user signs on one
/// deployment executes on any other deployment where the user's key has the
/// same nonce. Two deployments A and B (distinct geneses); the sender does
/// a CCTE on A, paying NT_s (700 Token_101 to the receiver, its first
/// transaction on A's chain 101). Anyone — the receiver — submits the same
/// bytes to B's chain 101, where the sender's key also has nonce 0: B
/// includes it and the sender pays the receiver 700 again, on a deployment
/// it never agreed anything on. The same holds for every BoB transaction
/// (`redeem` to a third party, `withdraw_liquidity`, `deposit`, …).
///
/// Expected: a transaction signed for one deployment's chain is refused by
/// another deployment's chain with the same id (e.g. the signed digest binds
/// the chain's genesis, or chain ids are unique per deployment). Observed:
/// B's chain 101 includes the replayed NT_s and moves 700 from the sender
/// to the receiver.
///
/// Fixed: chain ids are per deployment ([`MbsSpec::chain_base`]), so B's
/// first external chain has its own id and refuses A's transaction.
#[test]
fn an_nt_signed_on_one_deployment_pays_again_on_another() {
    use gridledger_xchain::mbs::Behaviour;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Two deployments of one shape, each with its own (derived) chain ids.
    let mut a = setup(da.path(), MbsSpec::default());
    let mut b = BobMbs::open(db.path(), MbsSpec::default()).unwrap();
    let (ia, ib) = (a.chain_ids()[0], b.chain_ids()[0]);
    assert_ne!(ia, ib, "each deployment has its own chain ids");
    assert_ne!(a.bob.chain_id(), b.bob.chain_id(), "each deployment's BoB has its own chain id");
    assert_ne!(
        a.external(ia).unwrap().chain().genesis().hash(),
        b.external(ib).unwrap().chain().genesis().hash(),
        "two deployments: A's first external chain and B's are different chains"
    );
    let (s, r) = (sender(), receiver());
    let req = SwapRequest { chain_i: ia, chain_j: a.chain_ids()[1], ..request(700, 4405) };
    let rep = a.swap(&req, Behaviour::Honest).unwrap();
    let SideState::Proved { nt, height } = rep.record.sender else { panic!("NT_s proved on A") };
    let block = a.external(ia).unwrap().chain().block(height).unwrap().unwrap();
    let nt_s = block.txs.into_iter().find(|t| t.hash() == nt).unwrap();
    assert_eq!(nt_s.sender(), s.address());
    // The receiver replays it on deployment B.
    let before = (
        b.external(ib).unwrap().account(&s.address()).balance.0,
        b.external(ib).unwrap().account(&r.address()).balance.0,
    );
    let admitted = b.external_mut(ib).unwrap().submit(&nt_s);
    b.tick().unwrap();
    let after = (
        b.external(ib).unwrap().account(&s.address()).balance.0,
        b.external(ib).unwrap().account(&r.address()).balance.0,
    );
    assert!(admitted.is_err(), "B's chain refuses a transaction signed for A's chain: {admitted:?}");
    assert_eq!(
        after, before,
        "deployment B executed the sender's NT signed on deployment A (admitted: {admitted:?}); sender {} -> {}, \
         receiver {} -> {}",
        before.0, after.0, before.1, after.1
    );
}

/// The receiver signs any price. `BobMbs::terms` — what `swap`, the demo
/// and the seeded sweeps have the receiver sign, as does `xchain swap
/// --processes` — leaves the bounds on `x_i` fully open (`min_x_i` 1,
/// `max_x_i` `u128::MAX`), so the pool's price when the CCT executes is
/// whatever it is then. A sender that holds the Token_i pool's LP shares
/// puts `withdraw_liquidity` (all but one unit), its CCT and `provide`
/// back in one BoB block: `x_i` is priced at 1. Both sides then pay and
/// prove honestly — nothing is penalised — and the receiver has paid 700
/// Token_j for 1 Token_i (it saw a 1:1 pool when it signed).
///
/// Expected: the terms a participant signs through the library bound the
/// price near the one it was shown (e.g. `terms` sets `min_x_i`/`max_x_i`
/// from the pool with a tolerance), so a CCT priced far off is refused
/// (`RateOutOfBounds`) and nothing changes. Observed: the CCT executes at
/// x_i = 1 and completes.
#[test]
fn the_terms_the_library_signs_accept_any_price() {
    use gridledger_xchain::bob::{Provide, WithdrawLiquidity, LOCKED_SHARES};
    use gridledger_xchain::mbs::{bob_call_signed, BOB_CHAIN};
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::fixed_ids()).unwrap();
    let (s, r) = (sender(), receiver());
    // The sender is the pool's liquidity provider (since R6-5 one share is
    // a part of every token).
    for c in m.chain_ids() {
        m.provide_liquidity(&s, c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&s, LIQUIDITY).unwrap();
    let refill_amounts: Vec<(u32, u128)> =
        m.config.weights.iter().map(|(t, _)| (*t, LIQUIDITY - LOCKED_SHARES)).collect();
    m.deposit_token_b(&s, DEPOSIT).unwrap();
    m.deposit_token_b(&r, DEPOSIT).unwrap();
    let terms = m.terms(&request(700, 4406)).unwrap();
    // Fixed (R4-6): the terms bound x_i around the quote (1:1 pool, 1 %
    // slippage) instead of the open [1, u128::MAX] the attack found.
    assert!(terms.min_x_i >= 690 && terms.max_x_i <= 710, "what the receiver signs: {terms:?}");
    let receiver_sig = r.sign(&terms.digest(BOB_CHAIN));
    let n = m.bob.next_nonce(&s.address());
    let domain = m.bob.domain();
    let txs = [
        bob_call_signed(
            &s,
            BOB_CHAIN,
            &domain,
            n,
            "withdraw_liquidity",
            &WithdrawLiquidity { shares: LIQUIDITY - LOCKED_SHARES },
            Amount::ZERO,
        ),
        bob_call_signed(
            &s,
            BOB_CHAIN,
            &domain,
            n + 1,
            "cct",
            &gridledger_xchain::bob::CctArgs { terms: terms.clone(), receiver_sig },
            Amount::ZERO,
        ),
        bob_call_signed(
            &s,
            BOB_CHAIN,
            &domain,
            n + 2,
            "provide",
            &Provide { amounts: refill_amounts },
            Amount(LIQUIDITY - LOCKED_SHARES),
        ),
    ];
    for tx in &txs {
        m.bob.submit(tx).unwrap();
    }
    m.bob.tick().unwrap();
    let status: Vec<_> = txs.iter().map(|t| m.bob.receipt(&t.hash()).unwrap().unwrap().status).collect();
    let rec = m.cct(&terms.id());
    if let Some(rec) = &rec {
        // Both parties then follow the protocol.
        m.wait_native_window(rec).unwrap();
        receiver_pays_and_proves(&mut m, rec);
        let nt_s = m.native_tx(rec, Side::Sender, &s).unwrap();
        m.external_mut(I).unwrap().submit(&nt_s).unwrap();
        let (height, proof) = landed(&mut m, &nt_s);
        let pt = gridledger_xchain::bob::ProofTx { cct: terms.id(), side: Side::Sender, nt: nt_s, height, proof };
        m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    }
    let end = m.cct(&terms.id());
    assert!(
        end.as_ref().is_none_or(|e| e.x_i * 2 >= 700),
        "the receiver, shown a 1:1 pool, paid 700 Token_j for {:?} Token_i (drain/cct/refill: {status:?}; complete {:?})",
        end.as_ref().map(|e| e.x_i),
        end.as_ref().map(|e| e.complete)
    );
}

/// One Π_CCTC lock mints on two BoBs. `TPK_Addr_i` is derived from the
/// group key and the chain id alone (`threshold::tpk_address`), and
/// `claim` checks only that the transfer pays that address and is in a
/// final header of chain i. The threshold module promises that nothing the
/// group signs for one deployment counts on another "even where a
/// committee reuses its key for a second BoB"; a second BoB instance B
/// (its own genesis) run by the same committee and following the same
/// external chains has the very same `TPK_Addr_i`. A user locks 700 once on
/// chain i, claims on A, relays chain i's headers to B (anyone may) and
/// claims the same transfer on B: 1,400 Token_i minted against 700 locked.
///
/// Expected: a lock counts on one deployment only — B refuses it (e.g.
/// `TPK_Addr_i` binds the deployment, or the lock names it), nothing
/// changes on B. Observed: B mints 700 Token_i for the transfer A already
/// minted.
#[test]
fn one_lock_mints_on_two_bobs_of_one_committee() {
    use gridledger_core::crypto::KeyPair;
    use gridledger_ledger::state::{contract_key, StateRead};
    use gridledger_ledger::{Allocation, ContractRegistry, Genesis};
    use gridledger_xchain::bob::{keys, Claim, Relay};
    use gridledger_xchain::mbs::{bob_call_signed, relay_tx, BOB_CHAIN};
    use gridledger_xchain::{BobContract, EmbeddedChain, Finality, BOB_CONTRACT_ID};
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = BobMbs::open(da.path(), MbsSpec::fixed_ids()).unwrap();
    let u = gridledger_ledger::devnet::dev_key(3);
    // B: another BoB instance of the same committee, following A's external chains.
    let keys_b: Vec<KeyPair> = (0..4).map(|i| KeyPair::from_seed(&format!("second-bob-validator-{i}"))).collect();
    let relayer = a.relayer.clone();
    let genesis = Genesis {
        chain_id: BOB_CHAIN,
        timestamp: a.bob.chain().genesis().timestamp + 1,
        state_buckets_log2: 10,
        allocations: [relayer.address(), u.address()]
            .into_iter()
            .map(|address| Allocation { address, balance: Amount(1_000_000_000_000) })
            .collect(),
        validators: keys_b.iter().map(|k| k.public()).collect(),
    };
    let mut cfg = a.config.clone();
    cfg.deployment = genesis.hash();
    assert_ne!(cfg.deployment, a.config.deployment, "two deployments");
    let mut registry = ContractRegistry::new();
    registry.register(BOB_CONTRACT_ID, std::sync::Arc::new(BobContract::new(cfg.clone()).unwrap()));
    let mut b = EmbeddedChain::open(db.path(), genesis, registry, keys_b, Finality::Deterministic).unwrap();
    assert_ne!(cfg.tpk_address(I), a.config.tpk_address(I), "TPK_Addr_i binds the deployment");
    // The lock, once, on chain i; claimed on A.
    let lock = a.native_transfer(I, &u, a.config.tpk_address(I), 700).unwrap();
    a.external_mut(I).unwrap().submit(&lock).unwrap();
    let (height, proof) = landed(&mut a, &lock);
    let claim = Claim { chain: I, height, nt: lock.clone(), proof };
    a.bob_ok(&a.bob_call(&u, "claim", &claim, Amount::ZERO)).unwrap();
    let minted_a: u128 = a.bob_record(&keys::wrapped(I, &u.address())).unwrap();
    assert_eq!(minted_a, 700);
    // Chain i's headers reach B (at most 8 a block), then the same claim.
    let tip = a.external(I).unwrap().height();
    let mut next = 1;
    while next <= tip {
        let end = (next + 7).min(tip);
        let headers = (next..=end).map(|h| a.external(I).unwrap().sealed_header(h).unwrap().unwrap()).collect();
        let tx =
            relay_tx(&relayer, BOB_CHAIN, &b.domain(), b.next_nonce(&relayer.address()), &Relay { chain: I, headers });
        b.submit(&tx).unwrap();
        b.tick().unwrap();
        next = end + 1;
    }
    let tx = bob_call_signed(&u, BOB_CHAIN, &b.domain(), b.next_nonce(&u.address()), "claim", &claim, Amount::ZERO);
    b.submit(&tx).unwrap();
    b.tick().unwrap();
    let status = b.receipt(&tx.hash()).unwrap().unwrap().status;
    let minted_b: u128 = b
        .chain()
        .state()
        .get(&contract_key(BOB_CONTRACT_ID, &keys::wrapped(I, &u.address())))
        .map(|v| borsh::from_slice(&v).unwrap())
        .unwrap_or(0);
    assert_eq!(
        minted_b, 0,
        "one lock of 700 on chain {I} minted on A and again on B (B's claim: {status:?}); A {minted_a}, B {minted_b}"
    );
}

/// The HTLC baseline's secret is public. An HTLC swap is atomic only while
/// the preimage is the sender's secret until it claims on chain j.
/// `BobMbs::htlc_swap` derives it as `hash_parts("…/dev-preimage/v1",
/// salt)`, and the salt is part of the `SwapRequest` both parties share, so
/// the receiver knows the preimage before anything is locked: once the
/// sender's lock on chain i is final (phase 1), the receiver can claim x_i
/// at once and never lock x_j on chain j — the sender loses x_i and gets
/// nothing. The baseline the comparisons run (issue item 5) is not the
/// atomic swap it stands for.
///
/// Here the honest swap runs, and the preimage the sender reveals on chain
/// j (its `htlc_claimed` event) is compared with what anyone could compute
/// from the request beforehand.
///
/// Expected: a preimage nobody but the sender can compute before it claims
/// (e.g. drawn from a CSPRNG per swap, kept by the sender). Observed: it is
/// exactly the public function of the salt.
#[test]
fn the_htlc_baselines_preimage_is_computable_from_the_request() {
    use gridledger_core::codec::{hash_parts, Tag};
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec { htlc_baseline: true, ..MbsSpec::fixed_ids() }).unwrap();
    let req = request(500, 4407);
    // What the receiver computes from the request, before the swap starts.
    let guessed = hex_of(&hash_parts(Tag("gridledger/htlc/dev-preimage/v1"), &[&req.salt.to_le_bytes()]).0);
    let rep = m.htlc_swap(&req, 500, None).unwrap();
    assert!(rep.sender_received && rep.receiver_received);
    let c = m.external(J).unwrap();
    let mut revealed = None;
    for h in 1..=c.height() {
        for tx in c.chain().block(h).unwrap().unwrap().txs {
            let Some(r) = c.receipt(&tx.hash()).unwrap() else { continue };
            for e in r.events.iter().filter(|e| e.name == "htlc_claimed") {
                revealed = e.attributes.iter().find(|(k, _)| k == "preimage").map(|(_, v)| v.clone());
            }
        }
    }
    let revealed = revealed.expect("the sender's claim on chain j reveals the preimage");
    assert_ne!(revealed, guessed, "the receiver knew the hashlock's preimage before the sender locked");
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `ShareCollector` stops refusing once it has combined. Its contract: "A
/// share from a non-member, one that does not verify, or a second one from
/// the same member is refused with a typed error and changes nothing." After
/// the 2f+1-th valid share `add` returns `Ok(Some(signature))` for
/// *anything*: a share under index 99 of a 4-member committee, a garbage
/// share for a member, a member's second share — a relay that counts
/// accepted shares (or logs who contributed) is told they were good.
///
/// Expected: those shares are refused with `NotAMember`, `InvalidShare`
/// and `DuplicateShare` as before the signature existed (the signature
/// stays available). Observed: `Ok(Some(_))` for each.
#[test]
fn the_share_collector_accepts_anything_once_it_has_combined() {
    use gridledger_core::Hash32;
    use gridledger_threshold::ThresholdError;
    use gridledger_xchain::threshold::{BobCommittee, Instance, ShareCollector, Statement};
    let c = BobCommittee::dev(4, 5).unwrap();
    let st = Statement {
        instance: Instance { bob: Hash32([1; 32]), bob_contract: 1, target: Hash32([2; 32]) },
        purpose: "release".into(),
        chain: 101,
        sequence: 0,
        payload: vec![1, 2, 3],
    };
    let other = Statement { sequence: 1, ..st.clone() };
    let mut col = ShareCollector::new(&c.set, &st);
    for i in 0..3 {
        col.add(i, c.sign_share(i, &st).unwrap()).unwrap();
    }
    let non_member = col.add(99, c.sign_share(0, &st).unwrap());
    let invalid = col.add(3, c.sign_share(3, &other).unwrap());
    let duplicate = col.add(0, c.sign_share(0, &st).unwrap());
    assert!(
        matches!(non_member, Err(ThresholdError::NotAMember { .. }))
            && invalid == Err(ThresholdError::InvalidShare(3))
            && duplicate == Err(ThresholdError::DuplicateShare(0)),
        "after combining: non-member {non_member:?}, invalid {invalid:?}, duplicate {duplicate:?}"
    );
}

/// A torn vote-log line swallows the next, handed-out vote.
/// `Replica::with_vote_log` documents that "a torn last line (crash
/// mid-append) was never handed out" and skips it — but it leaves it in the
/// file without its newline, and the next vote is appended right after it.
/// The two run together into one line of three fields, which the next load
/// skips as well: the vote that *was* handed out is forgotten. Sequence: the
/// process dies mid-append of a vote at height 1 (torn, never sent);
/// restarted, it votes for block A at height 1 (logged after the torn
/// bytes, sent); restarted again, it votes for block B at height 1 — two
/// commit votes of one honest validator at one height, the equivocation the
/// log exists to prevent (with f such validators, two conflicting blocks
/// can seal).
///
/// Expected: after the second restart the vote for B is refused
/// (`AlreadyVoted`). Observed: it is signed.
#[test]
fn a_torn_vote_log_line_makes_an_honest_validator_vote_twice() {
    use gridledger_xchain::mbs::{open_chain, Role};
    use gridledger_xchain::replica::Replica;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::fixed_ids();
    let (mut rs, _) = replicas(dir.path(), &spec);
    let leader = rs[0].leader_of(1);
    let a = rs[leader].propose(0).unwrap();
    let b = rs[leader].propose(a.header.timestamp + 1_000).unwrap();
    assert_ne!(a.hash(), b.hash());
    // A validator other than the leader runs with a vote log; its first append died half-way.
    let v = if leader == 1 { 2 } else { 1 };
    let vdir = dir.path().join(format!("v{v}"));
    let log = vdir.join("votes.log");
    std::fs::File::create(&log).unwrap().write_all(format!("1 {}", a.hash()).split_at(20).0.as_bytes()).unwrap();
    drop(rs);
    let open = || {
        let (c, _) = open_chain(&vdir, &spec, Role::External(0)).unwrap();
        Replica::new(c, v).unwrap().with_vote_log(&log).unwrap()
    };
    // Restart: the vote for A is handed out.
    open().vote(&a).unwrap();
    // Restart again: a vote for B at the same height.
    let second = open().vote(&b);
    assert!(
        second.is_err(),
        "validator {v} signed commit votes for two blocks at height 1 (log now {:?})",
        std::fs::read_to_string(&log).unwrap()
    );
}

/// Sub-situation 3 aborts on probabilistic chains. In `BobMbs::swap` the BoB
/// node signs its fraud-proof transaction with the relayer's next nonce,
/// then `wait_final`s the evidence's header — which on a chain with k > 0
/// confirmations ticks epochs in which the same relayer sends relay
/// transactions with those nonces — and then submits the stale-nonce fraud
/// proof: the BoB's mempool refuses it ("nonce too low") and `swap` fails.
/// So every underfunded (or double-spent) posted NT on a probabilistic
/// chain ends the exchange with an error instead of the penalty: `xchain
/// swap --attack underfund-sender --probabilistic 3` exits 1 the same way.
/// The deterministic seeded sweep never sees it (`wait_final` returns at
/// once there).
///
/// Expected: the swap completes, the underfunding (or double-spending)
/// sender `Penalised`, the receiver compensated (as with deterministic
/// chains). Observed: `Err("nonce too low: expected at least 75, got 69")`
/// for `Underfund`, the same for `DoubleSpend`; the CCT is left open.
#[test]
fn an_underfunded_nt_on_a_probabilistic_chain_aborts_the_swap() {
    use gridledger_xchain::mbs::Behaviour;
    use gridledger_xchain::Finality;
    let mut outcomes = Vec::new();
    for (n, behaviour) in
        [Behaviour::Underfund(Side::Sender), Behaviour::DoubleSpend(Side::Sender)].into_iter().enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let spec = MbsSpec { finality: Finality::Probabilistic { k: 3 }, ..MbsSpec::fixed_ids() };
        let mut m = setup(dir.path(), spec);
        let got = m.swap(&request(700, 4408 + n as u64), behaviour);
        outcomes.push((behaviour, got.map(|r| r.record.sender).map_err(|e| e.to_string())));
    }
    assert!(
        outcomes.iter().all(|(_, o)| *o == Ok(SideState::Penalised)),
        "a posted NT that can never land, on a probabilistic chain: {outcomes:?}"
    );
}

/// An SC_BG lock whose CCT cannot be stored in time is locked for good.
/// Π_CCTC coin locks got a way back in round 2 (`refund_lock`, proved
/// against the header accumulator once the BoB dropped the header); SC_BG
/// item locks have none: an item leaves SC_BG only by a settlement the
/// committee signs, and BoB nodes derive settlements only from what SC_C
/// stored — a stored slot or a Case 2* late item, both of which need
/// `ccdi_cct`'s receipt proof against a header the BoB still keeps (κ_i
/// epochs). SC_BG accepts a lock for a process at any time, and SC_C
/// refuses CCTs before the process's start (`RegistrationClosed`). A
/// participant who registers and locks its item at once, while
/// registration is open for more than κ_i epochs, can never get its CCT
/// stored: before `start` SC_C refuses it, after `start` the header is
/// gone (`StaleHeader`). The same holds for any lock whose CCT nobody sent
/// within κ_i epochs (an offline user, a relay outage). The item stays
/// owned by `TPK_Addr_i` forever, and its owner's deposit is forfeited.
///
/// Expected: a locked item always comes back (e.g. a late-lock path like
/// `refund_lock` for SC_BG locks, or SC_BG refusing locks the process
/// cannot take yet). Observed: 60 epochs after the deadline the item is
/// still locked, SC_C refuses its CCT as stale, and no settlement names it.
#[test]
fn an_item_locked_before_its_process_starts_is_stranded_for_good() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::ccdi::{CcdiApp, CcdiTerms, Slot};
    use gridledger_xchain::scbg::Lock;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec { ccdi: true, kappa: 4, ..MbsSpec::fixed_ids() }).unwrap();
    let (u, w) = (dev_key(0), dev_key(1));
    let item_u = m.create_item(I, &u, "early", 5).unwrap();
    m.create_item(J, &w, "rival", 7).unwrap();
    let terms = CcdiTerms {
        app: CcdiApp::Battle,
        slots: vec![
            Slot { chain: I, owner: u.address(), participant: u.address() },
            Slot { chain: J, owner: w.address(), participant: w.address() },
        ],
        deposit: 10_000,
        kappa: 1,
        // Registration open well beyond the headers the BoB keeps (κ_i,
        // or `kept_headers` on a small κ_i since attack R15-3: 8 here).
        start: m.bob.height() + 8 + m.spec.kept_headers(),
        salt: 4409,
    };
    let id = terms.id();
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "ccdi_open", &terms, Amount::ZERO)).unwrap();
    m.bob_ok(&m.bob_call(&u, "ccdi_register", &id, Amount(10_000))).unwrap();
    // u locks its item right away; SC_BG takes it.
    let data = m.item(I, item_u).unwrap().data;
    let lock = m.sc_bg_call(I, &u, "lock", &Lock { process: id, item: item_u, data }).unwrap();
    assert_eq!(m.chain_run(I, &lock).unwrap().status, TxStatus::Success);
    let early = m.ccdi_cct_for(id, &lock).unwrap().expect("the lock is in a block");
    let tx = m.bob_call(&u, "ccdi_cct", &early, Amount::ZERO);
    let before_start = bob_only(&mut m, &tx);
    // Run well past the start and the deadline; then u (or any relay node) sends the CCT.
    m.ticks(20).unwrap();
    let cct = m.ccdi_cct_for(id, &lock).unwrap().unwrap();
    let tx = m.bob_call(&u, "ccdi_cct", &cct, Amount::ZERO);
    let after_start = bob_only(&mut m, &tx);
    m.bob_ok(&m.bob_call(&relayer, "ccdi_finish", &id, Amount::ZERO)).unwrap();
    m.ticks(60).unwrap();
    let named = m
        .ccdi_settlements(&id)
        .iter()
        .any(|s| s.entries.iter().any(|(l, _)| Some(*l) == m.item(I, item_u).unwrap().lock));
    let now = m.item(I, item_u).unwrap();
    assert!(
        now.lock.is_none() && now.owner == u.address(),
        "u's item is still locked by SC_BG (owner {}, lock {:?}); its CCT before start: {:?}, after: {:?}; \
         a settlement names it: {named}",
        now.owner,
        now.lock,
        before_start.status,
        after_start.status
    );
}
