//! Attack round 3 on the leaderless BFT (`consensus::lbft`): the fixes of
//! rounds 1-2 (sync answers per peer and tick, the agreement's replay of
//! recorded votes after a restart, π^τ's κ window and per-client bound).
//! Each finding is a test that fails on the code it was written against,
//! ignored so the suite stays green; what held up passes.
//!
//! - [1]: a sync record's certificates are never checked, and the adopted
//!   copy is the lowest sender's: a Byzantine replica's forged
//!   certificates enter a correct replica's delivered log (the node then
//!   cannot open its store again: `gridledger-node`'s `attack_lbft_r3`);
//! - [2]: π^τ holds `DN_c + 1` transactions for long-past epochs for
//!   ever (they can never be batched): throw-away keys fill the undecided
//!   area of every replica for good;
//! - [4]: a restarted replica rebuilds its duplicate window with the
//!   suppressed duplicates listed too, and delivers a repeated transaction
//!   in another epoch than the replicas that ran through.
//!
//! ([3] and [5] are the node's, in `gridledger-node`'s `attack_lbft_r3`.)
//!
//! Fixed since, and no longer ignored: [1] (a sync record is adopted only
//! in a copy whose certificates verify), [2] (π^τ refuses and expires
//! undecided transactions outside the TBG window) and [4] (the duplicate
//! window is rebuilt from the delivered transactions only).
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r3`.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::{
    echo_statement, Batch, CertifiedBatch, Config, DeliveredEpoch, Durable, Fault, KeyUse, Message, PersistOp, Replica,
    SimCrypto, ThresholdCrypto,
};
use gridledger_core::Hash32;

mod common;

use common::lbft::Keys;

const N: usize = 4;
const SEED: u64 = 3;

const KEYS: Keys = Keys { seed: SEED, n: N, instance: Hash32([0x3c; 32]) };

/// Epoch `epoch` as the correct replicas delivered it: proposers 0..3
/// accepted, each batch with its genuine certificate.
fn genuine_epoch(epoch: u64) -> DeliveredEpoch<SimSig> {
    let batches = (0..3u32)
        .map(|p| {
            let batch = Batch::new(vec![format!("tx e{epoch} p{p}").into_bytes()]);
            let digest = batch.digest(&KEYS.instance, epoch, p);
            CertifiedBatch { proposer: p, digest, sig: KEYS.certify(epoch, p, &digest), batch }
        })
        .collect();
    DeliveredEpoch { epoch, batches }
}

/// The same epoch with the same batches and digests (so the same
/// decision) but certificates that are garbage.
fn forged_epoch(epoch: u64) -> DeliveredEpoch<SimSig> {
    let mut d = genuine_epoch(epoch);
    for b in &mut d.batches {
        b.sig = SimSig { tag: Hash32([0xee; 32]) };
    }
    d
}

fn cert_ok(epoch: u64, b: &CertifiedBatch<SimSig>) -> bool {
    KEYS.crypto(0).verify(KeyUse::Cert, &echo_statement(&KEYS.instance, epoch, b.proposer, &b.digest), &b.sig)
}

fn lagging(me: u32) -> Replica<SimCrypto> {
    Replica::new(Config::new(N, me, KEYS.instance), KEYS.crypto(me), Durable::default())
}

// ---- [1] sync records adopted with forged certificates ---------------------------

/// [1] `on_sync` checks a record's digests but never its certificates, and
/// `adopt_synced` takes the record of the lowest-numbered sender among the
/// `f + 1` that reported the same decision. A Byzantine replica 0 answers
/// a lagging correct replica's `SyncRequest` with the true decision and
/// batches but garbage certificates; one correct replica's genuine record
/// completes the `f + 1`, and the lagging replica delivers — and writes to
/// its delivered log ([`PersistOp::Delivered`]) — the Byzantine copy.
/// Consequences: it serves certificates that do not verify to every peer
/// that fetches or syncs from it (they refuse them and blame it,
/// `Fault::BadCertificate`), and a node keeps the record on disk: the
/// node's `restore` refuses a stored epoch whose certificate does not hold
/// ("the certificate of proposer … does not hold"), so that validator can
/// never open its store again — one Byzantine validator permanently takes
/// down every correct validator that ever caught up through it.
///
/// What should happen: a sync record's certificates are checked (or the
/// record of a sender whose certificates verify is the one kept).
#[test]
fn synced_record_with_forged_certificates_is_not_adopted() {
    let mut r = lagging(3);
    let _ = r.start();
    let s0 = r.handle_message(0, Message::Sync { delivered: forged_epoch(0) });
    assert!(s0.delivered.is_empty(), "one record alone is not adopted");
    let s1 = r.handle_message(1, Message::Sync { delivered: genuine_epoch(0) });
    assert_eq!(s1.delivered.len(), 1, "f + 1 = 2 replicas reported the same decision: epoch 0 is adopted");
    assert!(
        s1.faults.iter().any(|f| matches!(f, Fault::BadCertificate { from: 0, epoch: 0, .. })),
        "the forged record is its sender's fault: {:?}",
        s1.faults
    );
    let persisted: Vec<&DeliveredEpoch<SimSig>> = s1
        .persist
        .iter()
        .filter_map(|op| match op {
            PersistOp::Delivered(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(persisted.len(), 1);
    let bad: Vec<u32> = persisted[0].batches.iter().filter(|b| !cert_ok(0, b)).map(|b| b.proposer).collect();
    assert!(bad.is_empty(), "the adopted (and persisted) epoch 0 carries forged certificates for proposers {bad:?}");

    // What the forged copy does to a peer that fetches a batch from it.
    let mut peer = lagging(2);
    let _ = peer.start();
    let fetched = r.handle_message(2, Message::Fetch { epoch: 0, proposer: 1 });
    let mut refused = Vec::new();
    for (_, m) in fetched.messages {
        let s = peer.handle_message(3, m);
        refused.extend(s.faults.into_iter().filter(|f| matches!(f, Fault::BadCertificate { .. })));
    }
    assert!(refused.is_empty(), "the correct replica serves a certificate its peer refuses: {refused:?}");
}

/// Control: the same two records in the other order (the correct sender
/// first) give a delivered epoch whose certificates verify.
#[test]
fn synced_record_from_correct_sender_first_is_sound() {
    let mut r = lagging(3);
    let _ = r.start();
    let _ = r.handle_message(0, Message::Sync { delivered: genuine_epoch(0) });
    let s = r.handle_message(1, Message::Sync { delivered: forged_epoch(0) });
    let d = s
        .persist
        .iter()
        .find_map(|op| match op {
            PersistOp::Delivered(d) => Some(d.clone()),
            _ => None,
        })
        .expect("adopted");
    assert!(d.batches.iter().all(|b| cert_ok(0, b)));
}

// ---- [2] π^τ: undecided transactions that can never be batched are held for good -----

use gridledger_consensus::lbft::txm::{LbftTx, Outcome, PiTau, PiTauConfig, Rejection, TbgConfig, Theta, Undecided};
use gridledger_core::ed25519::EdKeyPair;

fn pi_tau(max_pending: usize) -> PiTau {
    let tbg = TbgConfig { tau: 4, groups: 2, kappa: 2, batch: 100, max_stored: 1_000 };
    PiTau::new(PiTauConfig { replicas: 10, me: 0, theta: Theta::ALWAYS, genesis: Hash32([7; 32]), max_pending, tbg })
        .expect("valid configuration")
}

/// Delivers empty blocks for epochs `from..to`.
fn pass_epochs(p: &mut PiTau, from: u64, to: u64) {
    for e in from..to {
        let _ = p.on_block(e, Hash32([(e % 251) as u8; 32]), &[]);
    }
}

/// [2] Round 2 bounded one client to `κ + 1` undecided transactions and
/// put branch (a) (`DN_c = known + 1`, `AwaitingLastDelivery`) under
/// Situation 1's κ window — but only for `e_c` ahead of the local epoch.
/// An `e_c` long in the *past* is held too, and held for ever: nothing
/// ever expires an undecided transaction, and re-examination on each
/// block holds it again while its client's `DN_c = 0` never comes. Such a
/// transaction can never be batched either (its TBG bucket was consulted
/// long ago: `StoreError::Stale`). So `⌈max_pending / (κ + 1)⌉` throw-away
/// keys (free to make), each signing `κ + 1` transactions with `DN_c = 1`
/// for old epochs, once, fill every replica's undecided area for good —
/// each replica they are sent to — and every honest client's undecided
/// transaction (one sent for the next epoch, or before its previous one
/// is delivered) is refused with `PendingFull` from then on, epochs later.
///
/// What should happen: an undecided transaction that can no longer be
/// batched (an `e_c` older than the TBG window) is refused, and held ones
/// expire once their epoch falls out of it.
///
/// (After the fix the attack's transactions for epochs 10.. are refused on
/// arrival, [`Rejection::OutsideWindow`]; the area is filled instead with
/// transactions for epochs still inside the window, 45.., which are held,
/// and must expire once their epochs leave it.)
#[test]
fn stale_undecided_transactions_do_not_hold_the_area_for_ever() {
    let max_pending = 64;
    let mut p = pi_tau(max_pending);
    pass_epochs(&mut p, 1, 50);
    let per_key = p.max_pending_per_client() as u64;
    let keys: Vec<EdKeyPair> =
        (0..(max_pending as u64).div_ceil(per_key)).map(|k| EdKeyPair::from_seed(&format!("throw-away-{k}"))).collect();
    for key in &keys {
        for e in 10..10 + per_key {
            let out = p.receive(LbftTx::sign(key, e, b"x".to_vec(), 1, e + 1));
            assert_eq!(
                out,
                Outcome::Rejected(Rejection::OutsideWindow { epoch: e, local: 50 }),
                "DN_c = 1 for epoch {e} at local epoch 50 can never be batched"
            );
        }
    }
    assert_eq!(p.pending(), 0);
    let mut held = 0;
    for key in &keys {
        for e in 45..45 + per_key {
            if let Outcome::Pending(_) = p.receive(LbftTx::sign(key, e, b"x".to_vec(), 1, e + 1)) {
                held += 1;
            }
        }
    }
    assert_eq!(held, max_pending, "transactions with DN_c = 1 for epochs 45.. at local epoch 50 are held");
    // A thousand epochs later they are gone.
    pass_epochs(&mut p, 50, 1_050);
    let honest = EdKeyPair::from_seed("honest");
    let e_n = p.local_epoch();
    let out = p.receive(LbftTx::sign(&honest, e_n + 1, b"pay 5 Wh".to_vec(), 0, e_n + 2));
    assert_eq!(
        out,
        Outcome::Pending(Undecided::AwaitingEpoch),
        "at local epoch {e_n}, {} undecided transactions signed for epochs 10..13 still hold the area",
        p.pending()
    );
}

/// Held up: one key alone holds at most `κ + 1` undecided transactions,
/// whatever epochs and delivery numbers it signs.
#[test]
fn one_key_holds_at_most_kappa_plus_one() {
    let mut p = pi_tau(64);
    pass_epochs(&mut p, 1, 50);
    let key = EdKeyPair::from_seed("greedy");
    let mut held = 0;
    for e in 0..200u64 {
        if let Outcome::Pending(_) = p.receive(LbftTx::sign(&key, e, b"x".to_vec(), 1, e + 1)) {
            held += 1;
        }
    }
    assert_eq!(held, p.max_pending_per_client());
    let out = p.receive(LbftTx::sign(&key, 51, b"y".to_vec(), 1, 52));
    assert!(
        matches!(
            out,
            Outcome::Rejected(Rejection::ClientPendingFull { .. }) | Outcome::Rejected(Rejection::ClientPending)
        ),
        "{out:?}"
    );
}

// ---- [4] duplicate suppression after a restart ----------------------------------------

/// Epoch `epoch` with one batch of `txs` from each of proposers 0..3, each
/// with its genuine certificate (the sync path checks them).
fn epoch_with(epoch: u64, txs: &[&[u8]]) -> DeliveredEpoch<SimSig> {
    let batches = (0..3u32)
        .map(|p| {
            let mut v: Vec<Vec<u8>> = txs.iter().map(|t| t.to_vec()).collect();
            v.push(format!("filler e{epoch} p{p}").into_bytes());
            let batch = Batch::new(v);
            let digest = batch.digest(&KEYS.instance, epoch, p);
            CertifiedBatch { proposer: p, digest, sig: KEYS.certify(epoch, p, &digest), batch }
        })
        .collect();
    DeliveredEpoch { epoch, batches }
}

/// Feeds `d` to `r` as sync records from replicas 1 and 2 (`f + 1`) and
/// returns the delivered transactions of that epoch.
fn sync_in(r: &mut Replica<SimCrypto>, d: &DeliveredEpoch<SimSig>) -> Vec<Vec<u8>> {
    let _ = r.handle_message(1, Message::Sync { delivered: d.clone() });
    let s = r.handle_message(2, Message::Sync { delivered: d.clone() });
    assert_eq!(s.delivered.len(), 1, "epoch {} adopted", d.epoch);
    s.delivered[0].txs.to_vec()
}

/// [4] Duplicate suppression keeps the ids of the last `dedup_epochs`
/// epochs in a set, each id listed under the epoch that *delivered* it;
/// an epoch leaving the window removes its ids from the set. A restarted
/// replica rebuilds the window from its delivered log, but lists every
/// transaction of every batch under its epoch — also the duplicates that
/// were removed at delivery. A transaction delivered in epoch `a` and
/// repeated (suppressed) in epoch `b > a` so stays in the restarted
/// replica's window until `b` leaves it, and at the others only until `a`
/// leaves it: sent again in between, it is delivered by the replicas that
/// ran through and suppressed by the restarted one — and the next copy the
/// other way round. The correct replicas' delivered sequences differ
/// (agreement on an epoch's transactions fails; the same transaction is
/// delivered in different epochs). A client triggers it by sending one
/// signed transaction to two validators, and again later. (A node's
/// nonces keep the second execution out of its blocks, so the block
/// hashes still agree; the consensus layer's promise does not hold.)
///
/// Here `dedup_epochs = 4`: `X` delivered in epoch 0, a duplicate in
/// epoch 1, sent again in 5 and in 6. The replica that ran through
/// delivers `X` in epoch 5 (epoch 0 has left its window) and suppresses it
/// in 6; the replica restored after epoch 4 suppresses it in 5 (epoch 1 is
/// still in its window, holding `X`) and delivers it in 6.
#[test]
fn restarted_replica_suppresses_duplicates_like_the_others() {
    let x: &[u8] = b"X: pay 5 Wh";
    let epochs: Vec<DeliveredEpoch<SimSig>> = vec![
        epoch_with(0, &[x]),
        epoch_with(1, &[x]),
        epoch_with(2, &[]),
        epoch_with(3, &[]),
        epoch_with(4, &[]),
        epoch_with(5, &[x]),
        epoch_with(6, &[x]),
    ];
    let cfg = || {
        let mut c = Config::new(N, 3, KEYS.instance);
        c.dedup_epochs = 4;
        c.retain = 4;
        c
    };
    // Ran through every epoch.
    let mut live = Replica::new(cfg(), KEYS.crypto(3), Durable::default());
    let _ = live.start();
    let mut live_out = Vec::new();
    for d in &epochs {
        live_out.push(sync_in(&mut live, d));
    }
    // Restarted after epoch 4, from its delivered log.
    let durable = Durable { delivered: epochs[..5].to_vec(), ..Durable::default() };
    let mut restarted = Replica::new(cfg(), KEYS.crypto(3), durable);
    let _ = restarted.start();
    let r5 = sync_in(&mut restarted, &epochs[5]);
    let r6 = sync_in(&mut restarted, &epochs[6]);
    assert!(live_out[5].contains(&x.to_vec()), "X left the window and is delivered again in epoch 5");
    let has_x = |txs: &[Vec<u8>]| txs.contains(&x.to_vec());
    assert_eq!(
        (has_x(&r5), has_x(&r6)),
        (has_x(&live_out[5]), has_x(&live_out[6])),
        "X delivered in (epoch 5, epoch 6): restarted replica left, the replica that ran through right"
    );
}
