//! Attack round 3 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators on fault-injecting disks, links in memory, and a
//! Byzantine validator speaking through [`Net::inject`].
//!
//! - [1]: a validator that catches up adopts a sync record with forged
//!   certificates (consensus finding [1]), stores it, and can never open
//!   its store again;
//! - [3]: one message for a far-future epoch makes an idle network run
//!   empty epochs back to back for ever (a store record each);
//! - [5]: sync requests below the retained log are answered from the store
//!   again and again (the replica's once-per-record-and-tick rule does not
//!   apply there).
//!
//! All three are fixed and no longer ignored: sync records are adopted only
//! in a copy whose certificates verify, an idle validator wakes only for an
//! epoch inside its window or vouched for by `f + 1` peers, and stored
//! epochs are served at most once per peer and tick.
//!
//! Run them with `cargo test -p gridledger-node --test attack_lbft_r3`.

mod common;
use common::lbft::{committed, submit, within, Net, Validator, N};
use gridledger_consensus::lbft::{DeliveredEpoch, Message};
use gridledger_core::codec::{decode, encode};
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_node::lbft::{epoch_key, WIRE_LBFT};
use std::time::{Duration, Instant};

type Msg = Message<gridledger_consensus::lbft::NodeShare, gridledger_consensus::lbft::NodeSig>;

fn wire(m: &Msg) -> Vec<u8> {
    let mut bytes = vec![WIRE_LBFT];
    bytes.extend(encode(m));
    bytes
}

/// Store syncs of every validator together (each delivered epoch is one
/// store transaction at least).
fn syncs(vs: &[Validator]) -> u64 {
    vs.iter().map(|v| v.disk.syncs()).sum()
}

/// Waits until the validators' disks see no sync for a second (the
/// network is idle: no transaction pending, so no epoch runs).
fn settle(vs: &[Validator]) -> bool {
    let mut last = (syncs(vs), Instant::now());
    within(60, || {
        let now = syncs(vs);
        if now != last.0 {
            last = (now, Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(1)
    })
}

/// [3] The engine raises `peers_epoch` (the highest epoch a peer spoke
/// in; an empty proposal waits for it, so that an idle chain runs no
/// epochs) from *any* message's epoch field, before the replica looks at
/// the message — even one the replica drops as far ahead of its window.
/// One message from one Byzantine validator, e.g. `Fetch { epoch: 2^40 }`
/// (a dozen bytes, no signature), raises it for good: from then on the
/// validator proposes an empty batch the moment each epoch starts, its
/// `Val` pulls every other validator into the epoch, and the whole
/// network runs empty epochs back to back, for ever — burning CPU and
/// bandwidth, and writing one delivered-epoch record per epoch to every
/// validator's store (`lbft/epoch/<e>`, never pruned): unbounded disk
/// growth from one message.
///
/// What should happen: only an epoch a peer is actually in (within the
/// replica's window, or vouched for by `f + 1` peers) wakes an idle
/// validator.
#[test]
fn one_far_future_message_does_not_wake_an_idle_network_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let vs: Vec<Validator> = (0..N).map(|i| net.start(i, SimDisk::new())).collect();
    let first: Vec<Hash32> = submit(&vs[0], 0, 0, 2).into_iter().map(|r| r.expect("admitted")).collect();
    assert!(within(60, || vs.iter().all(|v| first.iter().all(|h| committed(v, h)))), "first transfers commit");
    assert!(settle(&vs), "the network goes idle once its transfers are committed");
    // Control: idle for three seconds, a handful of syncs at most.
    let idle = syncs(&vs);
    std::thread::sleep(Duration::from_secs(3));
    let idle_growth = syncs(&vs) - idle;
    assert!(idle_growth < 20, "control: an idle network wrote {idle_growth} times in 3 s");
    // Validator 3, Byzantine, sends validator 0 one message for a far epoch.
    let before = syncs(&vs);
    net.inject(0, 3, wire(&Msg::Fetch { epoch: 1 << 40, proposer: 0 }));
    let spinning = within(20, || syncs(&vs) > before + 400);
    let after = syncs(&vs) - before;
    for v in vs {
        v.node.shutdown();
    }
    assert!(
        !spinning,
        "after one Fetch for epoch 2^40 the idle network wrote {after} store transactions (empty epochs back to back)"
    );
}

/// Delivered epoch `e` as validator `v`'s store holds it.
fn stored_epoch(v: &Validator, e: u64) -> Option<DeliveredEpoch<gridledger_consensus::lbft::NodeSig>> {
    let d = v.disk.snapshot();
    let store = Store::open_backend(move || d.backend()).ok()?;
    let bytes = store.get_aux(&epoch_key(e)).ok()??;
    decode(&bytes, usize::MAX).ok()
}

/// [1] (node) Finding [1] of `consensus`'s `attack_lbft_r3` end to end: a
/// validator that catches up adopts a sync record with forged
/// certificates, stores it, and can then never open its store again.
///
/// Validator 2 is down while 0, 1 and 3 deliver a few epochs; then 0 goes
/// down and 2 comes back. Validator 0, Byzantine from here on, had sent 2
/// a `Sync` record of epoch 0 with the true batches and digests but its
/// certificates swapped between proposers (valid certificates, on the
/// wrong statements). Validator 2 adopts it as soon as one correct
/// validator's genuine record agrees on the decision (the lowest sender's
/// copy is kept), executes and stores it. Shut down and started again, it
/// fails to open: `restore` refuses the stored epoch ("the certificate of
/// proposer … does not hold") — for ever, on every start.
///
/// What should happen: the certificates of a sync record are checked
/// before it is adopted, and the validator restarts.
#[test]
fn forged_sync_record_does_not_brick_a_catching_up_validator() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let mut vs: Vec<Option<Validator>> =
        (0..N).map(|i| if i == 2 { None } else { Some(net.start(i, SimDisk::new())) }).collect();
    let txs: Vec<Hash32> = submit(vs[1].as_ref().unwrap(), 0, 0, 3).into_iter().map(|r| r.expect("admitted")).collect();
    assert!(
        within(60, || vs.iter().flatten().all(|v| txs.iter().all(|h| committed(v, h)))),
        "validators 0, 1 and 3 commit without 2"
    );
    let genuine = stored_epoch(vs[1].as_ref().unwrap(), 0).expect("epoch 0 is stored");
    assert!(genuine.batches.len() >= 2, "epoch 0 accepted {} batches", genuine.batches.len());
    let mut forged = genuine.clone();
    let first = forged.batches[0].sig.clone();
    let k = forged.batches.len();
    for i in 0..k - 1 {
        forged.batches[i].sig = forged.batches[i + 1].sig.clone();
    }
    forged.batches[k - 1].sig = first;
    assert_ne!(forged, genuine);
    vs[0].take().expect("running").node.shutdown();
    // What 2 missed while down is gone (links do not queue for a down
    // peer); the forged record is queued before 2 starts, so it is the
    // first record of epoch 0 it reads.
    net.drop_queued(2);
    net.inject(2, 0, wire(&Msg::Sync { delivered: forged.clone() }));
    let disk = SimDisk::new();
    let v2 = net.start(2, disk.clone());
    assert!(within(60, || txs.iter().all(|h| committed(&v2, h))), "validator 2 catches up");
    let adopted = stored_epoch(&v2, 0).expect("validator 2 stored epoch 0");
    v2.node.shutdown();
    let image = disk.snapshot();
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.start(2, image)));
    let reopened = restarted.is_ok();
    if let Ok(v) = restarted {
        v.node.shutdown();
    }
    for v in vs.into_iter().flatten() {
        v.node.shutdown();
    }
    assert!(
        reopened,
        "validator 2 cannot open its store after catching up (its stored epoch 0 is the forged copy: {})",
        adopted == forged
    );
}

/// [5] Round 2 bounded the replica's sync answers to each delivered
/// record once per peer and tick, so that a stream of tiny requests
/// draws no stream of whole epochs. The node answers a `SyncRequest`
/// below the replica's in-memory log (`retain_epochs`, 64) from its store
/// instead, and there only a token bucket (16 at once, one more every
/// 50 ms) limits it: a Byzantine validator that repeats
/// `SyncRequest { next: 0 }` gets the same `sync_batch` (8) stored epochs
/// — whole epochs, every accepted batch — 16 times at once and 20 times a
/// second after that, for ever, from every correct validator.
///
/// What should happen: the store path keeps the replica's rule (each
/// record at most once per peer and tick).
#[test]
fn stored_epochs_are_served_once_per_peer_and_tick() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let byz = net.take_inbox(3).expect("validator 3 never starts");
    let vs: Vec<Validator> = (0..3).map(|i| net.start(i, SimDisk::new())).collect();
    // More delivered epochs than the in-memory log keeps.
    let mut nonce = 0;
    while stored_epoch(&vs[0], 70).is_none() {
        let h = submit(&vs[0], 0, nonce, 1).remove(0).expect("admitted");
        nonce += 1;
        assert!(within(60, || committed(&vs[0], &h)), "transfer {nonce} commits");
        assert!(nonce < 1_000, "70 epochs within 1,000 transfers");
    }
    while byz.try_recv().is_ok() {}
    for _ in 0..64 {
        net.inject(0, 3, wire(&Msg::SyncRequest { next: 0 }));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut copies = 0;
    while let Ok(input) = byz.try_recv() {
        if let gridledger_node::validator::Input::Peer { from: 0, bytes } = input {
            if let Some((&WIRE_LBFT, body)) = bytes.split_first() {
                if let Ok(Msg::Sync { delivered }) = decode::<Msg>(body, usize::MAX) {
                    copies += usize::from(delivered.epoch == 0);
                }
            }
        }
    }
    for v in vs {
        v.node.shutdown();
    }
    assert!(
        copies <= 4,
        "64 requests of a few bytes drew {copies} copies of stored epoch 0 within 300 ms (tick 100 ms)"
    );
}
