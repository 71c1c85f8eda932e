//! Attack round 12 on the leaderless BFT (`consensus::lbft`) after the
//! l13perf3 changes: one set insertion per delivered transaction decides
//! duplicates (window and epoch), the FIFO source's admission ids travel
//! in its batch (`FifoPolicy::next_txs`, `Replica::propose_txs_at`), and
//! `Delivery::txs` shares the batches' transactions (`DeliveredTxs`).
//!
//! - [1] (medium): a copy that reaches a replica's FIFO source after the
//!   epoch that delivered its transaction stays queued, is re-proposed
//!   and suppressed while the delivery is in the window, and is delivered
//!   a second time once it left (`a_late_copy_is_not_delivered_a_second_time`;
//!   not new in l13perf3: `delivered_ids` keeps the old contract).
//!
//! Held up: the earliest-occurrence rule and the window
//! agree with a reference model over random epochs (duplicates inside one
//! batch, across the batches of an epoch, across epochs at the window's
//! edge), through restarts from the full log and from a truncated log
//! with recorded positions; the FIFO source's batch carries the ids of its
//! transactions through re-admission and re-proposal.
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r12`.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::{
    tx_id, Batch, CertifiedBatch, Config, DeliveredEpoch, Durable, FifoPolicy, Message, Replica, SimCrypto,
};
mod common;

use common::lbft::Keys;
use gridledger_core::Hash32;
use rand::{Rng, SeedableRng};
use std::collections::{HashSet, VecDeque};

const N: usize = 4;
const KEYS: Keys = Keys { seed: 12, n: N, instance: Hash32([0x12; 32]) };
/// The duplicate window of these replicas.
const WINDOW: u64 = 3;

fn cfg() -> Config {
    let mut c = Config::new(N, 3, KEYS.instance);
    c.dedup_epochs = WINDOW;
    c.retain = 1_000;
    c
}

/// Epoch `epoch` with the given batches (proposers 0, 1, 2), each with
/// its genuine certificate.
fn epoch_of(epoch: u64, batches: &[Vec<Vec<u8>>]) -> DeliveredEpoch<SimSig> {
    let batches = batches
        .iter()
        .enumerate()
        .map(|(p, txs)| {
            let p = p as u32;
            let batch = Batch::new(txs.clone());
            let digest = batch.digest(&KEYS.instance, epoch, p);
            CertifiedBatch { proposer: p, digest, sig: KEYS.certify(epoch, p, &digest), batch }
        })
        .collect();
    DeliveredEpoch { epoch, batches }
}

/// Feeds `d` as sync records from replicas 1 and 2 (`f + 1`): the
/// delivered transactions, their ids and the suppressed positions.
fn sync_in(r: &mut Replica<SimCrypto>, d: &DeliveredEpoch<SimSig>) -> (Vec<Vec<u8>>, Vec<Hash32>, Vec<u32>) {
    let _ = r.handle_message(1, Message::Sync { delivered: d.clone() });
    let s = r.handle_message(2, Message::Sync { delivered: d.clone() });
    assert_eq!(s.delivered.len(), 1, "epoch {} adopted", d.epoch);
    let d = &s.delivered[0];
    (d.txs.to_vec(), d.ids.clone(), d.suppressed.clone())
}

/// The rule, written plainly: each transaction at its earliest occurrence
/// in the epoch, unless delivered in one of the `WINDOW` epochs before.
struct Model {
    window: VecDeque<HashSet<Vec<u8>>>,
}

impl Model {
    fn deliver(&mut self, batches: &[Vec<Vec<u8>>]) -> (Vec<Vec<u8>>, Vec<u32>) {
        let mut now: HashSet<Vec<u8>> = HashSet::new();
        let (mut kept, mut gone) = (Vec::new(), Vec::new());
        for (i, t) in batches.iter().flatten().enumerate() {
            if self.window.iter().any(|w| w.contains(t)) || !now.insert(t.clone()) {
                gone.push(i as u32);
            } else {
                kept.push(t.clone());
            }
        }
        self.window.push_back(now);
        while self.window.len() > WINDOW as usize {
            self.window.pop_front();
        }
        (kept, gone)
    }
}

fn random_epoch(rng: &mut impl Rng) -> Vec<Vec<Vec<u8>>> {
    (0..3)
        .map(|_| {
            let len = rng.random_range(0..6);
            (0..len).map(|_| format!("t{}", rng.random_range(0..8u32)).into_bytes()).collect()
        })
        .collect()
}

/// Held up: over random epochs drawn from eight transactions (so every
/// kind of duplicate occurs: twice in one batch, in two batches of one
/// epoch in either order, in the epoch right at the window's edge), a
/// live replica delivers what the plain rule says, its ids are its
/// transactions' ids, and replicas restarted every few epochs — from the
/// whole log without recorded positions, and from only the window's
/// epochs with their recorded positions — deliver the same afterwards.
#[test]
fn the_earliest_occurrence_rule_and_the_window_hold_through_restarts() {
    for seed in 0..6u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let epochs: Vec<Vec<Vec<Vec<u8>>>> = (0..14).map(|_| random_epoch(&mut rng)).collect();
        let delivered: Vec<DeliveredEpoch<SimSig>> =
            epochs.iter().enumerate().map(|(e, b)| epoch_of(e as u64, b)).collect();
        let mut model = Model { window: VecDeque::new() };
        let want: Vec<(Vec<Vec<u8>>, Vec<u32>)> = epochs.iter().map(|b| model.deliver(b)).collect();
        let mut live = Replica::new(cfg(), KEYS.crypto(3), Durable::default());
        let _ = live.start();
        for (e, d) in delivered.iter().enumerate() {
            let (txs, ids, gone) = sync_in(&mut live, d);
            assert_eq!((&txs, &gone), (&want[e].0, &want[e].1), "seed {seed} epoch {e}: {:?}", epochs[e]);
            let expect: Vec<Hash32> = txs.iter().map(|t| tx_id(t)).collect();
            assert_eq!(ids, expect, "seed {seed} epoch {e}: ids are the delivered transactions'");
        }
        for cut in [1usize, 3, 4, 7, 10] {
            // The whole log, no recorded positions: the rule replayed.
            let whole = Durable { delivered: delivered[..cut].to_vec(), ..Durable::default() };
            // The window's epochs only, with their recorded positions.
            let from = cut.saturating_sub(WINDOW as usize);
            let mut window = Durable { delivered: delivered[from..cut].to_vec(), ..Durable::default() };
            for (e, w) in want.iter().enumerate().take(cut).skip(from) {
                window.suppressed.insert(e as u64, w.1.clone());
            }
            for (how, durable) in [("whole log", whole), ("window with positions", window)] {
                let mut r = match Replica::try_new(cfg(), KEYS.crypto(3), durable) {
                    Ok(r) => r,
                    Err(e) => panic!("seed {seed} cut {cut} {how}: {e}"),
                };
                let _ = r.start();
                for (e, d) in delivered.iter().enumerate().skip(cut) {
                    let (txs, _, gone) = sync_in(&mut r, d);
                    assert_eq!(
                        (&txs, &gone),
                        (&want[e].0, &want[e].1),
                        "seed {seed} restart at {cut} ({how}) epoch {e}"
                    );
                }
            }
        }
    }
}

/// Held up: the FIFO source's batch carries its transactions' ids — after
/// a duplicate admission is refused, after a transaction is delivered and
/// admitted again, and when an in-flight transaction is proposed again.
#[test]
fn fifo_batches_carry_their_transactions_ids() {
    let t = |s: &str| s.as_bytes().to_vec();
    let mut p = FifoPolicy::new(3, 8).with_dedup_window(WINDOW);
    for s in ["a", "b", "c", "d"] {
        assert!(p.submit(t(s)));
    }
    assert!(!p.submit(t("b")), "queued already");
    let check = |txs: &gridledger_consensus::lbft::Txs| {
        let ids: Vec<Hash32> = txs.iter().map(|x| tx_id(x)).collect();
        assert_eq!(txs.ids(), &ids[..], "{txs:?}");
    };
    let b0 = p.next_txs(0);
    check(&b0);
    assert_eq!(*b0, vec![t("a"), t("b"), t("c")]);
    // "b" delivered (by someone), refused within the window (round 12's
    // fix), then admitted again once the window passed.
    p.delivered_ids(&[tx_id(b"b"), tx_id(b"zz")]);
    assert!(!p.submit(t("b")), "delivered within the window");
    for _ in 0..WINDOW {
        p.delivered_ids(&[]);
    }
    assert!(p.submit(t("b")));
    let b1 = p.next_txs(1);
    check(&b1);
    assert_eq!(*b1, vec![t("d"), t("b")], "a and c in flight; b again at the tail");
    let b2 = p.next_txs(2);
    check(&b2);
    assert_eq!(*b2, vec![t("a"), t("c")], "a and c proposed again after two epochs");
    // Proposed through a replica: the batch digest is that of the plain list.
    let mut r = Replica::new(cfg(), KEYS.crypto(0), Durable::default());
    let _ = r.start();
    let step = r.propose_txs_at(0, b2.clone(), 0);
    let val = step.messages.iter().find_map(|(_, m)| match m {
        Message::Val { batch, .. } => Some(batch.clone()),
        _ => None,
    });
    let batch = val.expect("the batch is sent");
    assert_eq!(batch.digest(&KEYS.instance, 0, 0), Batch::new(b2.to_vec()).digest(&KEYS.instance, 0, 0));
}

/// Epoch `epoch` with the given `(proposer, transactions)` batches.
fn epoch_by(epoch: u64, batches: Vec<(u32, Vec<Vec<u8>>)>) -> DeliveredEpoch<SimSig> {
    let batches = batches
        .into_iter()
        .map(|(p, txs)| {
            let batch = Batch::new(txs);
            let digest = batch.digest(&KEYS.instance, epoch, p);
            CertifiedBatch { proposer: p, digest, sig: KEYS.certify(epoch, p, &digest), batch }
        })
        .collect();
    DeliveredEpoch { epoch, batches }
}

/// [1] (medium) A copy that reaches a replica's FIFO source after the
/// epoch that delivered its transaction is queued as new, proposed every
/// `retry_after` epochs, suppressed as a duplicate each time while the
/// delivery is inside the window — so `Delivery::ids` never names it and
/// `delivered_ids` never takes it out — and delivered a second time once
/// the first delivery left the window. A client's transaction goes to τ
/// replicas (the bench's `--tau`), and a copy is admitted only after the
/// verifier thread checked it: a replica whose verifier lags an epoch
/// behind (load, a restart) queues every such copy late. One submission,
/// two deliveries; and each stale copy takes a batch slot every other
/// epoch for `dedup_epochs` epochs (1,024 by default). Here the window is
/// 3 epochs: `X` is delivered in epoch 0 (replica 0's batch), replica 3's
/// copy arrives after it, and replica 3's own batches carry what its FIFO
/// source proposes. Should: `X` is delivered once (the source refuses or
/// drops a copy of a transaction delivered within the window, which it
/// was told of by `delivered_ids`).
///
/// (Fixed: the FIFO source refuses a copy of a transaction delivered
/// within its window, `Refused::Delivered`.)
#[test]
fn a_late_copy_is_not_delivered_a_second_time() {
    let x = b"X: pay 5 Wh".to_vec();
    let mut fifo = FifoPolicy::new(10, 100).with_dedup_window(WINDOW);
    let mut r = Replica::new(cfg(), KEYS.crypto(3), Durable::default());
    let _ = r.start();
    let filler = |e: u64, p: u32| vec![format!("filler e{e} p{p}").into_bytes()];
    let mut times = 0;
    let e0 = epoch_by(0, vec![(0, vec![x.clone()]), (1, filler(0, 1)), (2, filler(0, 2))]);
    let (txs, ids, _) = sync_in(&mut r, &e0);
    times += txs.iter().filter(|t| **t == x).count();
    fifo.delivered_ids(&ids);
    // The copy replica 3's verifier hands over after epoch 0.
    let _ = fifo.try_submit(x.clone());
    for e in 1..=(2 * WINDOW + 2) {
        let own = fifo.next_txs(e).to_vec();
        let d = epoch_by(e, vec![(0, filler(e, 0)), (1, filler(e, 1)), (3, own)]);
        let (txs, ids, _) = sync_in(&mut r, &d);
        times += txs.iter().filter(|t| **t == x).count();
        fifo.delivered_ids(&ids);
    }
    assert_eq!(
        times,
        1,
        "X was submitted once and delivered {times} times (its late copy stayed queued: {})",
        fifo.pending()
    );
}
