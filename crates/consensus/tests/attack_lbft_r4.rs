//! Attack round 4 on the leaderless BFT (`consensus::lbft`): the fixes of
//! round 3 (sync records adopted only in a copy whose certificates verify,
//! the duplicate window rebuilt from the delivered transactions with
//! `Durable::suppressed`). Each finding is a test that fails on the code it
//! was written against, ignored so the suite stays green; what held up
//! passes.
//!
//! - [1]: a restarted replica whose store holds no recorded duplicate
//!   positions (a node's store written before `lbft/suppressed/<e>` was
//!   kept) replays the duplicate rule over the delivered log it is given —
//!   the last `retain` epochs, which is all a node's `restore` reads — as
//!   if nothing came before it, and delivers a repeated transaction in
//!   another epoch than the replicas that ran through.
//!
//! - [2]: a `Cert` message is verified (a threshold-signature check, two
//!   pairings with BLS) every time it arrives until a certificate of that
//!   proposer is accepted: one Byzantine replica streaming `Cert`s with
//!   garbage signatures for a proposer of any epoch in the window makes a
//!   correct replica verify one certificate per message, without bound;
//!   a replayed genuine `Certified` is verified again each time too.
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r4`.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::{
    Batch, CertifiedBatch, Config, DeliveredEpoch, Durable, Fault, Message, Replica, RestoreError, SimCrypto,
};
mod common;

use common::lbft::{Counting, Keys};
use gridledger_core::Hash32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const N: usize = 4;
const SEED: u64 = 4;

const KEYS: Keys = Keys { seed: SEED, n: N, instance: Hash32([0x4d; 32]) };

/// Epoch `epoch` with one batch from each of proposers 0..3: `txs` plus a
/// filler unique to the batch, each batch with its genuine certificate.
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
/// returns the delivered transactions of that epoch and their suppressed
/// positions.
fn sync_in(r: &mut Replica<SimCrypto>, d: &DeliveredEpoch<SimSig>) -> (Vec<Vec<u8>>, Vec<u32>) {
    let _ = r.handle_message(1, Message::Sync { delivered: d.clone() });
    let s = r.handle_message(2, Message::Sync { delivered: d.clone() });
    assert_eq!(s.delivered.len(), 1, "epoch {} adopted", d.epoch);
    (s.delivered[0].txs.to_vec(), s.delivered[0].suppressed.clone())
}

/// As a node configures it: the duplicate window is the retained log.
fn cfg() -> Config {
    let mut c = Config::new(N, 3, KEYS.instance);
    c.dedup_epochs = 4;
    c.retain = 4;
    c
}

// ---- [1] older store: duplicate window replayed from a truncated log -------------

/// [1] `Replica::new` rebuilds the duplicate window from
/// `Durable::suppressed` where every epoch of the window has its recorded
/// positions; otherwise it applies the duplicate rule again "from the
/// start of the log" — exact only if the log reaches back to epoch 0. A
/// node's `restore` passes the last `retain_epochs` delivered epochs (and
/// sets `dedup_epochs = retain`), and a store written before
/// `lbft/suppressed/<e>` was kept has no positions at all: the first
/// restored epoch is screened against an empty window, so a transaction it
/// suppressed at delivery (a duplicate of one delivered just before the
/// restored log starts) is counted as delivered there.
///
/// Here (`dedup_epochs = retain = 4`): `X` delivered in epoch 0 and
/// repeated (suppressed) in epoch 1; the replica restarts after epoch 4
/// from epochs 1..=4, as a node's `restore` reads them. The replica that
/// ran through delivers `X` again in epoch 5 (epoch 0 left its window);
/// the restarted one counts `X` as delivered in epoch 1 and suppresses it
/// in 5. A Byzantine proposer (or a client sending one signed transaction
/// twice) that repeats a transaction every epoch triggers it on every
/// upgrade-restart. The correct replicas' delivered sequences differ.
///
/// What should happen: without recorded positions for the whole window,
/// the rebuilt window is exact (e.g. the node reads back `dedup_epochs`
/// more epochs than the window, or the rule replays only from an epoch
/// whose window is known), or the restarted replica refuses to guess.
///
/// Fixed: `Replica::try_new` (what the node's restore uses) refuses the
/// truncated log with `RestoreError::DuplicateWindowUnknown`, and the
/// node's restore reads back as far as the exact rebuild needs (here to
/// epoch 0); from that log the restarted replica agrees.
#[test]
fn restart_from_store_without_suppressed_records_agrees_on_duplicates() {
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
    let mut live = Replica::new(cfg(), KEYS.crypto(3), Durable::default());
    let _ = live.start();
    let live_out: Vec<Vec<Vec<u8>>> = epochs.iter().map(|d| sync_in(&mut live, d).0).collect();
    // The last `retain` epochs, no recorded positions: refused, not guessed.
    let truncated = Durable { delivered: epochs[1..5].to_vec(), ..Durable::default() };
    match Replica::try_new(cfg(), KEYS.crypto(3), truncated) {
        Err(RestoreError::DuplicateWindowUnknown { next: 5, epoch: 4 }) => {}
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a duplicate window rebuilt from a truncated log without recorded positions"),
    }
    // A node's restore reads back as far as the rebuild needs: to epoch 0.
    let durable = Durable { delivered: epochs[..5].to_vec(), ..Durable::default() };
    let mut restarted = match Replica::try_new(cfg(), KEYS.crypto(3), durable) {
        Ok(r) => r,
        Err(e) => panic!("the log from epoch 0 is enough: {e}"),
    };
    let _ = restarted.start();
    let has_x = |txs: &[Vec<u8>]| txs.contains(&x.to_vec());
    let r5 = sync_in(&mut restarted, &epochs[5]).0;
    let r6 = sync_in(&mut restarted, &epochs[6]).0;
    assert!(has_x(&live_out[5]), "X left the window and is delivered again in epoch 5");
    assert_eq!(
        (has_x(&r5), has_x(&r6)),
        (has_x(&live_out[5]), has_x(&live_out[6])),
        "X delivered in (epoch 5, epoch 6): restarted replica left, the replica that ran through right"
    );
}

/// Held up: with the positions recorded for every epoch of the window (a
/// store that keeps `lbft/suppressed/<e>`), the same truncated log gives
/// the window the replica that ran through holds.
#[test]
fn restart_with_suppressed_records_agrees_on_duplicates() {
    let x: &[u8] = b"X: pay 5 Wh";
    let epochs: Vec<DeliveredEpoch<SimSig>> = (0..8).map(|e| epoch_with(e, &[x])).collect();
    let mut live = Replica::new(cfg(), KEYS.crypto(3), Durable::default());
    let _ = live.start();
    let live_out: Vec<(Vec<Vec<u8>>, Vec<u32>)> = epochs.iter().map(|d| sync_in(&mut live, d)).collect();
    let mut durable = Durable { delivered: epochs[2..6].to_vec(), ..Durable::default() };
    for (e, (_, removed)) in live_out.iter().enumerate().take(6).skip(2) {
        durable.suppressed.insert(e as u64, removed.clone());
    }
    let mut restarted = Replica::new(cfg(), KEYS.crypto(3), durable);
    let _ = restarted.start();
    for (d, (txs, _)) in epochs.iter().zip(&live_out).skip(6) {
        assert_eq!(&sync_in(&mut restarted, d).0, txs, "epoch {} delivers the same transactions", d.epoch);
    }
}

// ---- held up: forged sync copies cost each Byzantine sender one check per epoch ---

/// Held up: a Byzantine replica 0 sends, for the epoch a lagging replica is
/// in, copies of the true decision with forged certificates again and
/// again, before and after a correct replica's copy. Alone it never
/// reaches `f + 1`, so nothing is verified; with the correct copy the
/// epoch is adopted at once, at most one forged copy refused, and later
/// copies of the same epoch are outside the span.
#[test]
fn forged_sync_copies_are_checked_at_most_once_per_epoch() {
    let mut r = Replica::new(Config::new(N, 3, KEYS.instance), KEYS.crypto(3), Durable::default());
    let _ = r.start();
    let mut forged = 0;
    for e in 0..4u64 {
        let genuine = epoch_with(e, &[]);
        let mut fake = genuine.clone();
        for b in &mut fake.batches {
            b.sig = SimSig { tag: Hash32([0xee; 32]) };
        }
        for _ in 0..50 {
            let s = r.handle_message(0, Message::Sync { delivered: fake.clone() });
            assert!(s.delivered.is_empty(), "one sender alone adopts nothing");
            forged += s.faults.iter().filter(|f| matches!(f, Fault::BadCertificate { .. })).count();
        }
        let s = r.handle_message(1, Message::Sync { delivered: genuine.clone() });
        assert_eq!(s.delivered.len(), 1, "the correct copy completes f + 1");
        forged += s.faults.iter().filter(|f| matches!(f, Fault::BadCertificate { .. })).count();
        for _ in 0..50 {
            let s = r.handle_message(0, Message::Sync { delivered: fake.clone() });
            assert!(s.delivered.is_empty() && s.faults.is_empty(), "a past epoch's copies are dropped unchecked");
        }
    }
    assert_eq!(r.epoch(), 4);
    assert_eq!(forged, 4, "one refused forged copy per epoch");
}

// ---- [2] certificate checks per message, without bound ----------------------------

fn counting_replica() -> (Replica<Counting>, Arc<AtomicUsize>) {
    let verified = Arc::new(AtomicUsize::new(0));
    let c = Counting { inner: KEYS.crypto(3), verified: verified.clone() };
    let mut r = Replica::new(Config::new(N, 3, KEYS.instance), c, Durable::default());
    let _ = r.start();
    (r, verified)
}

/// [2] `on_cert` skips a proposer whose certificate it holds, but checks
/// every other `Cert` it receives — the same forged one again and again —
/// and only records a `Fault::BadCertificate`. Replica 0, Byzantine, sends
/// a correct replica 1,000 copies of `Cert { epoch: 1, proposer: 2 }`
/// with a garbage signature (a hundred bytes each, nothing to compute on
/// its side); the replica verifies 1,000 threshold signatures. Over the
/// epochs of the window and the proposers without a certificate yet this
/// runs for ever, one pairing check per message: a stream of small
/// messages from one party saturates every correct replica's CPU (the
/// node has no per-peer budget for consensus messages; the sync limiter
/// covers the store path only).
///
/// What should happen: a bounded number of certificate checks per sender
/// and `(epoch, proposer)` (e.g. a failed `(sender, epoch, proposer,
/// digest)` is remembered, or a sender whose certificate failed is not
/// heard on certificates for that epoch again).
#[test]
fn forged_cert_stream_costs_a_bounded_number_of_checks() {
    let (mut r, verified) = counting_replica();
    let digest = Hash32([0x42; 32]);
    let before = verified.load(Ordering::Relaxed);
    let mut faults = 0;
    for _ in 0..1_000 {
        let s = r.handle_message(
            0,
            Message::Cert { epoch: 1, proposer: 2, digest, sig: SimSig { tag: Hash32([0xee; 32]) } },
        );
        faults += s.faults.len();
    }
    let checks = verified.load(Ordering::Relaxed) - before;
    assert!(faults >= 1, "the forged certificate is a fault");
    assert!(checks <= N, "1,000 copies of one forged Cert from one sender cost {checks} certificate checks");
}

/// [2] The same for a genuine certificate replayed in `Certified`:
/// `on_certified` verifies the certificate (and runs the batch validity)
/// before it looks whether it already holds that proposer's certificate.
#[test]
fn replayed_certified_costs_one_check() {
    let (mut r, verified) = counting_replica();
    let batch = Batch::new(vec![b"tx".to_vec()]);
    let digest = batch.digest(&KEYS.instance, 1, 2);
    let cb = CertifiedBatch { proposer: 2, digest, sig: KEYS.certify(1, 2, &digest), batch };
    let before = verified.load(Ordering::Relaxed);
    for _ in 0..1_000 {
        let _ = r.handle_message(0, Message::Certified { epoch: 1, batch: cb.clone() });
    }
    let checks = verified.load(Ordering::Relaxed) - before;
    assert!(checks <= N, "1,000 copies of one genuine Certified cost {checks} certificate checks");
}
