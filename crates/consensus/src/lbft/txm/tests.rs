//! π^τ: one test per branch of Algorithm 4.1; TBG's schedule (Algorithm
//! 4.2) and Theorem 4.2's RB bound as a property; the baselines.

use std::sync::Arc;

use gridledger_core::ed25519::EdKeyPair as KeyPair;
use gridledger_core::Hash32;
use proptest::prelude::*;

use super::*;

const N: u32 = 10;
const TAU: u32 = 4;
const GENESIS: Hash32 = Hash32([7u8; 32]);

fn tbg_cfg() -> TbgConfig {
    TbgConfig { tau: TAU, groups: 2, kappa: 2, batch: 100, max_stored: 1000 }
}

fn cfg(me: u32) -> PiTauConfig {
    PiTauConfig { replicas: N, me, theta: Theta::ALWAYS, genesis: GENESIS, max_pending: 8, tbg: tbg_cfg() }
}

fn client(name: &str) -> KeyPair {
    KeyPair::from_seed(name)
}

/// The recipients of a transaction with `dn` by `k`, sent at epoch 1.
fn recipients(k: &KeyPair, dn: u64, prev: &Hash32) -> Vec<u32> {
    array_function(&nonce_value(dn, &k.public(), prev), N, TAU)
}

/// A replica that is at position `t` of the array of `k`'s first transaction at epoch 1.
fn replica_at(k: &KeyPair, t: usize) -> PiTau {
    PiTau::new(cfg(recipients(k, 0, &GENESIS)[t])).unwrap()
}

fn non_recipient(k: &KeyPair) -> PiTau {
    let a = recipients(k, 0, &GENESIS);
    PiTau::new(cfg((0..N).find(|r| !a.contains(r)).unwrap())).unwrap()
}

fn unchanged(p: &PiTau, bucketed: usize, pending: usize) {
    assert_eq!((p.bucketed(), p.pending()), (bucketed, pending), "a refused transaction changes nothing");
}

fn invalid(o: Outcome) -> Invalid {
    match o {
        Outcome::Rejected(Rejection::Invalid(i)) => i,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn line_02_rule1_bad_signature_is_invalid() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let mut tx = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2);
    tx.request = b"tampered".to_vec();
    assert_eq!(invalid(p.receive(tx)), Invalid::BadSignature);
    unchanged(&p, 0, 0);
}

#[test]
fn line_02_rule1_oversized_request_and_bad_future_epoch_are_invalid() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let big = LbftTx::sign(&k, 1, vec![0; MAX_REQUEST + 1], 0, 2);
    assert!(matches!(invalid(p.receive(big)), Invalid::RequestTooLarge { .. }));
    let same = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 1);
    assert_eq!(invalid(p.receive(same)), Invalid::NextEpochNotAfter { epoch: 1, next_epoch: 1 });
    unchanged(&p, 0, 0);
    assert_eq!(p.stats().signature_checks, 0, "structure is checked before the signature");
}

#[test]
fn a_signature_checked_by_the_caller_is_not_checked_again_and_its_verdict_holds() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let good = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2);
    // The caller's verdict is used: a refused verdict refuses, with the
    // same reason, and changes nothing.
    assert_eq!(invalid(p.receive_checked(good.clone(), false)), Invalid::BadSignature);
    unchanged(&p, 0, 0);
    // Rule-1's structural checks still run on a checked transaction.
    let same = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 1);
    assert_eq!(invalid(p.receive_checked(same, true)), Invalid::NextEpochNotAfter { epoch: 1, next_epoch: 1 });
    assert!(matches!(p.receive_checked(good, true), Outcome::Stored { .. }));
    assert_eq!(p.bucketed(), 1);
    // The baselines' source likewise.
    let mut hsm = PolicySource::new(HsmBatcher::new(0, N, 10, 100, 1));
    let tx = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2);
    let at = Placement { epoch: 1, slot: hsm_space(&tx.client, 1, N) };
    assert_eq!(hsm.admit_checked(tx.clone(), at, false), Err(Rejection::Invalid(Invalid::BadSignature)));
    assert_eq!(hsm.policy().stored(), 0);
    hsm.admit_checked(tx, at, true).unwrap();
    assert_eq!(hsm.policy().stored(), 1);
}

#[test]
fn situation_2_valid_is_stored_in_its_array_position() {
    let k = client("a");
    for t in 0..TAU as usize {
        let mut p = replica_at(&k, t);
        let o = p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2));
        assert_eq!(o, Outcome::Stored { slot: t as u32 });
        unchanged(&p, 1, 0);
    }
}

#[test]
fn one_transaction_per_client_epoch_and_delivery_number_the_first_is_kept() {
    // Slot 0 (group 0): consulted at e_c + κ = 3.
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let first = LbftTx::sign(&k, 1, b"first".to_vec(), 0, 2);
    assert_eq!(p.receive(first.clone()), Outcome::Stored { slot: 0 });
    let second = LbftTx::sign(&k, 1, b"second".to_vec(), 0, 2);
    assert_eq!(p.receive(second.clone()), Outcome::Rejected(Rejection::ClientHeld { kept: first.id() }));
    unchanged(&p, 1, 0);
    assert!(p.next_batch(1).is_empty() && p.next_batch(2).is_empty());
    let batch = p.next_batch(3);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].id(), first.id(), "the first received is the one batched");
    // Batched, it no longer holds the place; another copy for the same
    // (DN_c, e_c) lands in the same, consulted, bucket: stale.
    assert_eq!(p.receive(second), Outcome::Rejected(Rejection::Store(StoreError::Stale { consulted: 3 })));
}

#[test]
fn line_20_non_recipient_discards() {
    let k = client("a");
    let mut p = non_recipient(&k);
    assert_eq!(p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2)), Outcome::Rejected(Rejection::NotRecipient));
    unchanged(&p, 0, 0);
}

#[test]
fn situation_2_wrong_delivery_number_is_invalid() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let o = p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 3, 2));
    assert_eq!(invalid(o), Invalid::DeliveryNumberMismatch { expected: 0, got: 3 });
    unchanged(&p, 0, 0);
}

fn ineligible_epoch(k: &KeyPair, theta: Theta, from: u64) -> u64 {
    (from..).find(|&e| !theta.eligible(&k.public(), e)).unwrap()
}

#[test]
fn situation_2_rule4_ineligible_is_invalid() {
    let k = client("a");
    let theta = Theta::from_ppm(1).unwrap();
    let mut c = cfg(0);
    c.theta = theta;
    let mut p = PiTau::new(c).unwrap();
    assert!(!theta.eligible(&k.public(), 1));
    let o = p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2));
    assert_eq!(invalid(o), Invalid::NotEligible { epoch: 1 });
    unchanged(&p, 0, 0);
}

fn advance(p: &mut PiTau, to: u64) {
    for e in p.local_epoch()..to {
        p.on_block(e, Hash32([e as u8; 32]), &[]);
    }
    assert_eq!(p.local_epoch(), to.max(1));
}

#[test]
fn situation_1_too_far_ahead_is_invalid() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    // κ = 2, e_n = 1: e_c = 3 is κ ahead.
    let o = p.receive(LbftTx::sign(&k, 3, b"r".to_vec(), 0, 4));
    assert_eq!(invalid(o), Invalid::EpochTooFarAhead { epoch: 3, local: 1 });
    unchanged(&p, 0, 0);
}

#[test]
fn situation_1_within_skew_is_undecided_then_line_18_decides_it() {
    let k = client("a");
    // The array depends on h^(e_c−1) = h^(1), the hash `advance` gives epoch 1.
    let h1 = Hash32([1u8; 32]);
    let me = recipients(&k, 0, &h1)[1];
    let mut p = PiTau::new(cfg(me)).unwrap();
    let tx = LbftTx::sign(&k, 2, b"r".to_vec(), 0, 3);
    assert_eq!(p.receive(tx), Outcome::Pending(Undecided::AwaitingEpoch));
    unchanged(&p, 0, 1);
    let out = p.on_block(1, h1, &[]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1, Outcome::Stored { slot: 1 });
    unchanged(&p, 1, 0);
}

/// Delivers `tx` in a block of epoch `e` (hash `[e; 32]`).
fn deliver(p: &mut PiTau, e: u64, txs: &[LbftTx]) -> Vec<(Hash32, Outcome)> {
    let txs: Vec<Arc<LbftTx>> = txs.iter().cloned().map(Arc::new).collect();
    p.on_block(e, Hash32([e as u8; 32]), &txs)
}

#[test]
fn line_03a_awaiting_last_delivery_then_line_17_decides_it() {
    let k = client("b");
    let first = LbftTx::sign(&k, 1, b"one".to_vec(), 0, 2);
    // The second transaction (DN 1) at epoch 2 uses h^(1).
    let h1 = Hash32([1u8; 32]);
    let me = recipients(&k, 1, &h1)[0];
    let mut p = PiTau::new(cfg(me)).unwrap();
    advance(&mut p, 1);
    let second = LbftTx::sign(&k, 2, b"two".to_vec(), 1, 3);
    assert_eq!(p.receive(second), Outcome::Pending(Undecided::AwaitingLastDelivery));
    unchanged(&p, 0, 1);
    // Block 1 delivers the first one: e_n = 2 = e_c, DN^(e_n) = 1 = DN_c.
    let out = deliver(&mut p, 1, &[first]);
    assert_eq!(out[0].1, Outcome::Stored { slot: 0 });
    assert_eq!(p.delivered_count(&k.public()), 1);
    unchanged(&p, 1, 0);
}

#[test]
fn line_04b_before_last_future_epoch_is_invalid() {
    let k = client("b");
    // The first transaction promises nothing before epoch 5.
    let first = LbftTx::sign(&k, 1, b"one".to_vec(), 0, 5);
    let mut p = PiTau::new(cfg(0)).unwrap();
    deliver(&mut p, 1, &[first]);
    let o = p.receive(LbftTx::sign(&k, 2, b"two".to_vec(), 1, 6));
    assert_eq!(invalid(o), Invalid::BeforeFutureEpoch { epoch: 2, last_next_epoch: 5 });
    unchanged(&p, 0, 0);
}

#[test]
fn situation_3_rule4_ineligible_is_invalid() {
    let k = client("c");
    let theta = Theta::from_ppm(1).unwrap();
    let e = ineligible_epoch(&k, theta, 1);
    let mut c = cfg(0);
    c.theta = theta;
    let mut p = PiTau::new(c).unwrap();
    advance(&mut p, e + 1);
    let o = p.receive(LbftTx::sign(&k, e, b"r".to_vec(), 0, e + 1));
    assert_eq!(invalid(o), Invalid::NotEligible { epoch: e });
    unchanged(&p, 0, 0);
}

/// Line 22 for a bucketed transaction (attack r16 [1]): the same request
/// re-signed for epoch 2 with delivery number 0 is valid on arrival and
/// bucketed; the block delivering the epoch-1 copy uses delivery number 0
/// and deletes it (the delivered request: `AlreadyDelivered`); a different
/// request for the same delivery number is deleted as conflicting.
#[test]
fn line_22_a_delivery_deletes_the_bucketed_transactions_whose_number_it_used() {
    let h1 = Hash32([1u8; 32]);
    for (request, why) in [
        (b"one".to_vec(), Rejection::AlreadyDelivered),
        (b"other".to_vec(), Rejection::Invalid(Invalid::ConflictsWithDelivered { dn: 0 })),
    ] {
        let k = client("re-signing");
        let first = LbftTx::sign(&k, 1, b"one".to_vec(), 0, 2);
        let mut p = PiTau::new(cfg(recipients(&k, 0, &h1)[0])).unwrap();
        advance(&mut p, 2);
        let retry = LbftTx::sign(&k, 2, request, 0, 3);
        let id = retry.id();
        assert_eq!(p.receive(retry), Outcome::Stored { slot: 0 });
        let out = deliver(&mut p, 2, &[first]);
        assert_eq!(out, vec![(id, Outcome::Rejected(why))]);
        assert!(!p.holds(&id));
        unchanged(&p, 0, 0);
        assert_eq!(p.stats().deleted, 1);
        assert!((3..=12).all(|e| p.next_batch(e).is_empty()), "never batched");
    }
}

/// Execution: of the transactions a block delivers, each `(client, DN_c)`
/// executes once, the earliest delivered; the others are refused with why.
#[test]
fn a_block_executes_one_transaction_per_client_delivery_number_the_earliest() {
    let k = client("equivocating");
    let mut p = PiTau::new(cfg(0)).unwrap();
    let a = Arc::new(LbftTx::sign(&k, 1, b"pay A".to_vec(), 0, 2));
    let b = Arc::new(LbftTx::sign(&k, 1, b"pay B".to_vec(), 0, 2));
    let again = Arc::new(LbftTx::sign(&k, 2, b"pay A".to_vec(), 0, 3));
    let ahead = Arc::new(LbftTx::sign(&k, 1, b"pay C".to_vec(), 5, 2));
    let applied = p.apply_block(1, Hash32([1u8; 32]), &[a, b, again, ahead]);
    assert_eq!(
        applied.executed,
        vec![
            Ok(()),
            Err(Rejection::Invalid(Invalid::ConflictsWithDelivered { dn: 0 })),
            Err(Rejection::AlreadyDelivered),
            Err(Rejection::Invalid(Invalid::DeliveryNumberMismatch { expected: 1, got: 5 })),
        ]
    );
    assert_eq!(p.delivered_count(&k.public()), 1);
    assert_eq!(p.stats().not_executed, 3);
}

#[test]
fn situation_3_condition_1_same_request_is_deleted_as_delivered() {
    let k = client("d");
    let first = LbftTx::sign(&k, 1, b"one".to_vec(), 0, 2);
    let mut p = PiTau::new(cfg(0)).unwrap();
    deliver(&mut p, 1, std::slice::from_ref(&first));
    advance(&mut p, 3);
    assert_eq!(p.receive(first), Outcome::Rejected(Rejection::AlreadyDelivered));
    unchanged(&p, 0, 0);
}

#[test]
fn situation_3_condition_1_different_request_is_invalid() {
    let k = client("d");
    let first = LbftTx::sign(&k, 1, b"one".to_vec(), 0, 2);
    let mut p = PiTau::new(cfg(0)).unwrap();
    deliver(&mut p, 1, &[first]);
    advance(&mut p, 3);
    let o = p.receive(LbftTx::sign(&k, 1, b"other".to_vec(), 0, 2));
    assert_eq!(invalid(o), Invalid::ConflictsWithDelivered { dn: 0 });
    unchanged(&p, 0, 0);
}

#[test]
fn situation_3_condition_2_late_but_matching_is_valid() {
    let k = client("e");
    let mut p = replica_at(&k, 2);
    advance(&mut p, 2);
    // e_n = 2 > e_c = 1; bucket set 1 + κ − 1 = 2, first group consulted at 3.
    assert_eq!(p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2)), Outcome::Stored { slot: 2 });
}

#[test]
fn situation_3_condition_3_delivery_number_ahead_is_invalid() {
    let k = client("e");
    let mut p = PiTau::new(cfg(0)).unwrap();
    advance(&mut p, 3);
    let o = p.receive(LbftTx::sign(&k, 1, b"r".to_vec(), 2, 2));
    assert_eq!(invalid(o), Invalid::DeliveryNumberMismatch { expected: 0, got: 2 });
    unchanged(&p, 0, 0);
}

#[test]
fn line_22_delivered_and_broadcast_transactions_leave_the_buckets() {
    let k = client("f");
    // Another client with a replica in both first groups (slot < g = 2).
    let ak = recipients(&k, 0, &GENESIS);
    let (j, me) = (0..)
        .find_map(|i| {
            let j = client(&format!("g{i}"));
            let aj = recipients(&j, 0, &GENESIS);
            let me = (0..N).find(|r| ak[..2].contains(r) && aj[..2].contains(r))?;
            Some((j, me))
        })
        .unwrap();
    let mut p = PiTau::new(cfg(me)).unwrap();
    let tk = LbftTx::sign(&k, 1, b"k".to_vec(), 0, 2);
    let tj = LbftTx::sign(&j, 1, b"j".to_vec(), 0, 2);
    assert!(matches!(p.receive(tk.clone()), Outcome::Stored { .. }));
    assert!(matches!(p.receive(tj.clone()), Outcome::Stored { .. }));
    assert_eq!(p.bucketed(), 2);
    // tk is delivered (by someone else's batch) before this replica's turn.
    deliver(&mut p, 1, std::slice::from_ref(&tk));
    assert!(!p.holds(&tk.id()) && p.holds(&tj.id()));
    advance(&mut p, 3);
    // First group consulted at e_c + κ = 3: only tj is broadcast, and leaves.
    let batch = p.next_batch(3);
    assert_eq!(batch.iter().map(|t| t.id()).collect::<Vec<_>>(), vec![tj.id()]);
    assert_eq!(p.bucketed(), 0);
}

#[test]
fn a_copy_already_held_is_a_duplicate() {
    let k = client("a");
    let mut p = replica_at(&k, 0);
    let tx = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2);
    assert!(matches!(p.receive(tx.clone()), Outcome::Stored { .. }));
    assert_eq!(p.receive(tx), Outcome::Rejected(Rejection::Duplicate));
    unchanged(&p, 1, 0);
}

#[test]
fn the_undecided_area_is_bounded() {
    let mut p = PiTau::new(cfg(0)).unwrap();
    for i in 0..8 {
        let k = client(&format!("p{i}"));
        assert!(matches!(p.receive(LbftTx::sign(&k, 2, b"r".to_vec(), 0, 3)), Outcome::Pending(_)));
    }
    let k = client("p-last");
    assert_eq!(
        p.receive(LbftTx::sign(&k, 2, b"r".to_vec(), 0, 3)),
        Outcome::Rejected(Rejection::PendingFull { max: 8 })
    );
    unchanged(&p, 0, 8);
}

#[test]
fn line_03a_takes_situation_1s_kappa_window() {
    // κ = 2, e_n = 1: a DN + 1 transaction for e_c = 2 waits; for
    // e_c = 3 = e_n + κ it is invalid, as it would be once its predecessor
    // is delivered.
    let k = client("b");
    let mut p = PiTau::new(cfg(0)).unwrap();
    assert_eq!(
        p.receive(LbftTx::sign(&k, 2, b"two".to_vec(), 1, 3)),
        Outcome::Pending(Undecided::AwaitingLastDelivery)
    );
    let o = p.receive(LbftTx::sign(&k, 3, b"three".to_vec(), 1, 4));
    assert_eq!(invalid(o), Invalid::EpochTooFarAhead { epoch: 3, local: 1 });
    unchanged(&p, 0, 1);
}

#[test]
fn one_client_holds_at_most_kappa_plus_one_undecided() {
    // e_n = 21: a client whose DN 0 is not delivered here sends DN 1 for
    // each of the past epochs inside the TBG window, 15..=20 (no κ window
    // below e_n). It holds κ + 1 of them; the rest are refused with a typed
    // reason, and another client still gets its transaction held.
    let mut p = PiTau::new(PiTauConfig { max_pending: 64, ..cfg(0) }).unwrap();
    for e in 1..=20 {
        deliver(&mut p, e, &[]);
    }
    let max = p.max_pending_per_client();
    assert_eq!(max, 3, "κ + 1");
    assert_eq!(p.tbg_window(), 6, "κ(2G − 1)");
    let m = client("flooder");
    // Older epochs can never be batched: refused, not held.
    let o = p.receive(LbftTx::sign(&m, 14, b"x".to_vec(), 1, 15));
    assert_eq!(o, Outcome::Rejected(Rejection::OutsideWindow { epoch: 14, local: 21 }));
    let outs: Vec<Outcome> = (15..=20u64).map(|e| p.receive(LbftTx::sign(&m, e, b"x".to_vec(), 1, e + 1))).collect();
    let held = outs.iter().filter(|o| matches!(o, Outcome::Pending(Undecided::AwaitingLastDelivery))).count();
    assert_eq!(held, max, "{outs:?}");
    assert!(outs[max..].iter().all(|o| *o == Outcome::Rejected(Rejection::ClientPendingFull { max })), "{outs:?}");
    assert_eq!(p.pending(), max);
    // Re-examined on the next block: still at most κ + 1 (epoch 15 is
    // now outside the window: that one expires).
    deliver(&mut p, 21, &[]);
    assert_eq!(p.pending(), max - 1);
    deliver(&mut p, 22, &[]);
    deliver(&mut p, 23, &[]);
    assert_eq!(p.pending(), 0, "all three expired once their epochs left the window");
    let honest = client("honest");
    assert_eq!(
        p.receive(LbftTx::sign(&honest, 25, b"pay".to_vec(), 0, 26)),
        Outcome::Pending(Undecided::AwaitingEpoch)
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut c = cfg(N);
    assert!(matches!(PiTau::new(c), Err(PiTauConfigError::Me { .. })));
    c.me = 0;
    c.tbg.tau = N + 1;
    c.tbg.groups = 1;
    assert!(matches!(PiTau::new(c), Err(PiTauConfigError::TauAboveN { .. })));
    for (tau, groups, kappa, batch, want) in [
        (0, 1, 2, 1, TbgConfigError::ZeroTau),
        (4, 5, 2, 1, TbgConfigError::Groups { groups: 5, tau: 4 }),
        (4, 0, 2, 1, TbgConfigError::Groups { groups: 0, tau: 4 }),
        (4, 2, 3, 1, TbgConfigError::Kappa(3)),
        (4, 2, 2, 0, TbgConfigError::ZeroBatch),
    ] {
        let t = TbgConfig { tau, groups, kappa, batch, max_stored: 10 };
        assert_eq!(TbgBatcher::<u64>::new(t).err(), Some(want));
    }
}

// ---- TBG (Algorithm 4.2) ----

fn tbg(tau: u32, groups: u32, kappa: u32, batch: usize) -> TbgBatcher<u64> {
    TbgBatcher::new(TbgConfig { tau, groups, kappa, batch, max_stored: 10_000 }).unwrap()
}

#[test]
fn tbg_groups_are_consulted_on_the_2kappa_stride() {
    // τ = 12, G = 3: g = 4; κ = 2; e_c = 10.
    let mut b = tbg(12, 3, 2, 100);
    for t in 0..12u32 {
        b.store(Placement { epoch: 10, slot: t }, u64::from(t)).unwrap();
    }
    let mut seen = Vec::new();
    for e in 10..=25 {
        let batch = b.next_batch(e);
        if !batch.is_empty() {
            seen.push((e, batch));
        }
    }
    // First group at e_c + κ = 12, second at e_c + 3κ = 16, third at e_c + 5κ = 20.
    assert_eq!(seen, vec![(12, vec![0, 1, 2, 3]), (16, vec![4, 5, 6, 7]), (20, vec![8, 9, 10, 11])]);
    assert_eq!(b.stored(), 0);
}

#[test]
fn tbg_group_size_is_the_ceiling_and_the_last_group_holds_the_rest() {
    let c = TbgConfig { tau: 10, groups: 4, kappa: 1, batch: 1, max_stored: 1 };
    assert_eq!(c.group_size(), 3);
    assert_eq!((0..10).map(|t| c.group_of(t)).collect::<Vec<_>>(), vec![0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    assert_eq!(c.rb_bound(), 3);
    assert_eq!(c.consult_epoch(5, 9), 5 + 1 + 2 * 3);
}

#[test]
fn tbg_batch_is_bounded_by_b_and_the_surplus_is_refused_on_store() {
    // τ = 4, G = 2, κ = 1, B = 3: buckets 0 and 1 of e_c = 1 are both
    // consulted at local epoch 2, together at most B.
    let mut b = tbg(4, 2, 1, 3);
    for i in 0..3u64 {
        b.store(Placement { epoch: 1, slot: (i % 2) as u32 }, i).unwrap();
    }
    assert_eq!(b.due(2), 3);
    for i in 3..5u64 {
        assert_eq!(
            b.store(Placement { epoch: 1, slot: (i % 2) as u32 }, i),
            Err(StoreError::BatchFull { consulted: 2, batch: 3 })
        );
    }
    // Another consultation epoch (bucket 2, group 1: local epoch 4) has room.
    b.store(Placement { epoch: 1, slot: 2 }, 9).unwrap();
    // A delivered transaction frees its place in the batch.
    assert!(b.delivered(&0));
    assert_eq!(b.due(2), 2);
    b.store(Placement { epoch: 1, slot: 1 }, 3).unwrap();
    let mut batch = b.next_batch(2);
    batch.sort_unstable();
    assert_eq!(batch, vec![1, 2, 3], "every stored transaction is batched, none cut");
    assert_eq!(b.stored(), 1);
    assert_eq!(b.next_batch(4), vec![9]);
    assert_eq!(b.stored(), 0);
}

#[test]
fn tbg_refuses_stale_duplicate_out_of_range_and_full_and_changes_nothing() {
    let mut b = TbgBatcher::new(TbgConfig { tau: 4, groups: 2, kappa: 2, batch: 10, max_stored: 2 }).unwrap();
    b.store(Placement { epoch: 5, slot: 0 }, 1).unwrap();
    assert_eq!(b.store(Placement { epoch: 5, slot: 0 }, 1), Err(StoreError::Duplicate));
    assert_eq!(b.store(Placement { epoch: 5, slot: 4 }, 2), Err(StoreError::SlotOutOfRange { slot: 4, slots: 4 }));
    b.store(Placement { epoch: 5, slot: 3 }, 2).unwrap();
    assert_eq!(b.store(Placement { epoch: 6, slot: 0 }, 3), Err(StoreError::Full { max: 2 }));
    assert_eq!(b.stored(), 2);
    assert_eq!(b.next_batch(7), vec![1]);
    // Group 0 of e_c = 5 was consulted at 7: too late for another.
    assert_eq!(b.store(Placement { epoch: 5, slot: 1 }, 4), Err(StoreError::Stale { consulted: 7 }));
    assert!(b.next_batch(7).is_empty(), "a repeated epoch yields nothing");
    assert_eq!(b.stored(), 1);
    assert!(b.holds(&2) && !b.holds(&1));
}

#[test]
fn tbg_delivered_transactions_are_never_batched() {
    let mut b = tbg(2, 1, 1, 10);
    for i in 0..4u64 {
        b.store(Placement { epoch: 1, slot: (i % 2) as u32 }, i).unwrap();
    }
    assert!(b.delivered(&2));
    assert!(!b.delivered(&2));
    let mut got = b.next_batch(2);
    got.sort_unstable();
    assert_eq!(got, vec![0, 1, 3]);
}

/// A replica that skipped local epochs (a catch-up) batches the groups due
/// at them at its next batch (attack r16 [3]); the sets are freed after.
#[test]
fn tbg_groups_due_at_skipped_epochs_are_batched_at_the_next_call() {
    let mut b = tbg(4, 2, 2, 10);
    assert!(b.next_batch(1).is_empty());
    b.end_epoch(1);
    b.store(Placement { epoch: 1, slot: 3 }, 9).unwrap();
    b.store(Placement { epoch: 1, slot: 0 }, 8).unwrap();
    // Jump far past every consult epoch of e_c = 1 (κ = 2: 3 and 7):
    // the older consultation first.
    assert_eq!(b.next_batch(20), vec![8, 9]);
    b.end_epoch(20);
    assert_eq!(b.stored(), 0);
    assert!(!b.holds(&9));
}

/// The groups due at skipped epochs and at the current one together exceed
/// B: the batch is cut at B, the rest carried to the next batch, first in
/// line; a carried transaction that is delivered meanwhile is not batched.
#[test]
fn tbg_a_catch_up_batch_is_cut_at_b_and_the_rest_carried() {
    // τ = 2 in two groups, κ = 1, B = 3.
    let mut b = tbg(2, 2, 1, 3);
    assert!(b.next_batch(1).is_empty());
    b.end_epoch(1);
    for i in 0..3u64 {
        // e_c = 1, slot 0: consulted at 2; slot 1 at 4.
        b.store(Placement { epoch: 1, slot: 0 }, i).unwrap();
        b.store(Placement { epoch: 1, slot: 1 }, 10 + i).unwrap();
    }
    assert_eq!(b.stored(), 6);
    // Local epochs 2 to 4 skipped: the batch of 5 holds both groups.
    assert_eq!(b.next_batch(5), vec![0, 1, 2]);
    b.end_epoch(5);
    assert_eq!(b.stored(), 3, "the rest is held");
    assert!((10..13).all(|i| b.holds(&i) && b.carried(&i)));
    assert!(b.delivered(&11));
    assert_eq!(b.next_batch(6), vec![10, 12]);
    b.end_epoch(6);
    assert_eq!(b.stored(), 0);
    assert!(!b.carried(&10));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Theorem 4.2 under M^AS scheduling: once a group's broadcast of a
    /// transaction is certified, no later group broadcasts it, so the
    /// broadcasts from that group on number at most max{g, τ − g(G−1)};
    /// and no replica broadcasts it twice.
    #[test]
    fn theorem_4_2_rb_bound(
        tau in 1u32..16, groups_pick in 0u32..16, kappa in 1u32..=2,
        // Per replica: its lag behind the global epoch per step (0..κ).
        lags in proptest::collection::vec(proptest::collection::vec(0u32..2, 40), 16),
        // Per replica: whether its broadcast gets certified (it survives to its certificate).
        survives in proptest::collection::vec(any::<bool>(), 16),
        // Per replica: extra delay before it learns of a certificate (0 ..= max allowed).
        learn_delay in proptest::collection::vec(0u64..4, 16),
        e_c in 3u64..6,
    ) {
        let groups = 1 + groups_pick % tau;
        let cfg = TbgConfig { tau, groups, kappa, batch: 50, max_stored: 1000 };
        let k = u64::from(kappa);
        let mut reps: Vec<TbgBatcher<u64>> = (0..tau).map(|_| TbgBatcher::new(cfg).unwrap()).collect();
        for (t, r) in reps.iter_mut().enumerate() {
            r.store(Placement { epoch: e_c, slot: t as u32 }, 42).unwrap();
            // Noise in neighbouring buckets.
            r.store(Placement { epoch: e_c, slot: t as u32 }, 1000 + t as u64).unwrap();
        }
        let mut local: Vec<u64> = vec![1; tau as usize];
        // (replica, its local epoch at broadcast, group)
        let mut broadcasts: Vec<(usize, u64, u32)> = Vec::new();
        // Local epoch (in the learner's terms) from which each replica knows of the first certificate.
        let mut learn_at: Vec<Option<u64>> = vec![None; tau as usize];
        let mut delivered = vec![false; tau as usize];
        for g_epoch in 2..(e_c + 2 * k * u64::from(groups) + 6) {
            for n in 0..tau as usize {
                let lag = u64::from(lags[n][(g_epoch as usize) % 40]).min(k - 1);
                let target = g_epoch.saturating_sub(lag).max(local[n]);
                while local[n] < target {
                    local[n] += 1;
                    if let Some(at) = learn_at[n] {
                        if local[n] >= at && !delivered[n] {
                            reps[n].delivered(&42);
                            delivered[n] = true;
                        }
                    }
                    let batch = reps[n].next_batch(local[n]);
                    reps[n].end_epoch(local[n]);
                    if batch.contains(&42) {
                        broadcasts.push((n, local[n], cfg.group_of(n as u32)));
                        if survives[n] {
                            // Certificate known to every replica by its local e_b + 3κ − 3
                            // (three flows, each within the rubber band κ − 1), or earlier.
                            let worst = local[n] + 3 * k - 3;
                            for (m, l) in learn_at.iter_mut().enumerate() {
                                let at = worst.saturating_sub(learn_delay[m].min(3 * k - 3));
                                *l = Some(l.map_or(at, |x: u64| x.min(at)));
                            }
                        }
                    }
                }
            }
        }
        let mut who: Vec<usize> = broadcasts.iter().map(|b| b.0).collect();
        who.sort_unstable();
        who.dedup();
        prop_assert_eq!(who.len(), broadcasts.len(), "no replica broadcasts twice");
        if let Some(first) = broadcasts.iter().filter(|b| survives[b.0]).map(|b| b.2).min() {
            let after = broadcasts.iter().filter(|b| b.2 >= first).count() as u32;
            prop_assert!(after <= cfg.rb_bound(), "{} broadcasts from group {} on, bound {}", after, first, cfg.rb_bound());
        }
    }
}

// ---- baselines ----

#[test]
fn hsm_rotates_spaces_and_keeps_until_delivered() {
    let mut h: HsmBatcher<u64> = HsmBatcher::new(1, 4, 2, 100, 9);
    for i in 0..5u64 {
        h.store(Placement { epoch: 0, slot: 2 }, i).unwrap();
    }
    h.store(Placement { epoch: 0, slot: 3 }, 99).unwrap();
    // Replica 1 manages space (1 + e) mod 4: space 2 at e = 1.
    assert_eq!(HsmBatcher::<u64>::managed(1, 1, 4), 2);
    let b1 = h.next_batch(1);
    assert_eq!(b1.len(), 2, "random selection of B from the space");
    assert!(b1.iter().all(|x| *x < 5));
    assert_eq!(h.stored(), 6, "HSM keeps broadcast transactions until delivered");
    assert_eq!(h.next_batch(2), vec![99]);
    for x in &b1 {
        assert!(h.delivered(x));
    }
    assert_eq!(h.space_len(2), 3);
    assert_eq!(h.store(Placement { epoch: 0, slot: 4 }, 7), Err(StoreError::SlotOutOfRange { slot: 4, slots: 4 }));
    assert_eq!(h.store(Placement { epoch: 0, slot: 3 }, 99), Err(StoreError::Duplicate));
}

#[test]
fn hsm_timestamp_malleability_reaches_every_space() {
    // The TM attack: one client, N timestamps, every space.
    let k = client("tm");
    let mut spaces: Vec<u32> = (0..200u64).map(|ts| hsm_space(&k.public(), ts, 7)).collect();
    spaces.sort_unstable();
    spaces.dedup();
    assert_eq!(spaces, (0..7).collect::<Vec<_>>());
}

#[test]
fn random_selection_draws_b_distinct_and_is_seeded() {
    let mk = || {
        let mut r: RandomBatcher<u64> = RandomBatcher::new(10, 1000, 3);
        for i in 0..100u64 {
            r.store(Placement { epoch: 0, slot: 0 }, i).unwrap();
        }
        r
    };
    let (mut a, mut b) = (mk(), mk());
    let x = a.next_batch(1);
    assert_eq!(x, b.next_batch(1), "same seed, same batch");
    let mut d = x.clone();
    d.sort_unstable();
    d.dedup();
    assert_eq!(d.len(), 10);
    assert_eq!(a.stored(), 100);
    let mut full: RandomBatcher<u64> = RandomBatcher::new(1, 1, 0);
    full.store(Placement { epoch: 0, slot: 0 }, 1).unwrap();
    assert_eq!(full.store(Placement { epoch: 0, slot: 0 }, 2), Err(StoreError::Full { max: 1 }));
}

/// The control for `theorem_4_2_rb_bound`: without learning of the first
/// group's certificate, every group broadcasts and the bound is exceeded —
/// the property checks something the delivery report provides.
#[test]
fn theorem_4_2_bound_rests_on_delivery_reports() {
    let cfg = TbgConfig { tau: 12, groups: 3, kappa: 2, batch: 50, max_stored: 100 };
    let count = |report: bool| -> u32 {
        let mut broadcasts = 0;
        for t in 0..12u32 {
            let mut b = TbgBatcher::new(cfg).unwrap();
            b.store(Placement { epoch: 3, slot: t }, 42).unwrap();
            for e in 1..30 {
                // The first group broadcasts at 5 and is certified; others hear of it by 8.
                if report && e == 8 {
                    b.delivered(&42);
                }
                if b.next_batch(e).contains(&42) {
                    broadcasts += 1;
                }
                b.end_epoch(e);
            }
        }
        broadcasts
    };
    assert_eq!(count(true), cfg.rb_bound());
    assert_eq!(count(false), 12);
}

#[test]
fn baselines_serve_p_abc_through_the_same_source() {
    let k = client("hsm");
    let n = 4;
    let mut src = PolicySource::new(HsmBatcher::<Admitted>::new(0, n, 10, 100, 1));
    // Replica 0 manages space e mod 4; the client picks a timestamp landing in space 1 (TM-style).
    let ts = (0..).find(|&ts| hsm_space(&k.public(), ts, n) == 1).unwrap();
    let tx = LbftTx::sign(&k, 1, b"r".to_vec(), 0, 2);
    src.admit(tx.clone(), Placement { epoch: 1, slot: hsm_space(&k.public(), ts, n) }).unwrap();
    let mut bad = tx.clone();
    bad.request = b"x".to_vec();
    assert_eq!(src.admit(bad, Placement { epoch: 1, slot: 1 }), Err(Rejection::Invalid(Invalid::BadSignature)));
    assert_eq!(src.admit(tx.clone(), Placement { epoch: 1, slot: 1 }), Err(Rejection::Store(StoreError::Duplicate)));
    assert_eq!(src.policy().stored(), 1);
    let b = src.next_batch(1);
    assert_eq!(b.len(), 1);
    assert_eq!(*b[0], tx);
    src.delivered(1, Hash32::ZERO, &b);
    assert_eq!(src.policy().stored(), 0);
    // And π^τ + TBG through the same trait.
    let mut p: Box<dyn BatchSource<Tx = Arc<LbftTx>>> = Box::new(PiTau::new(cfg(0)).unwrap());
    assert!(p.next_batch(1).is_empty());
}
