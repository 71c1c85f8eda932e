//! Attack round 3 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators on fault-injecting disks, links in memory, and a
//! Byzantine validator speaking through [`Net::inject`].
//!
//! Run the findings with
//! `cargo test -p gridledger-node --test attack_lbft_r3 -- --ignored`.

mod common;
use common::lbft::{committed, submit, Net, Validator, N};
use gridledger_consensus::lbft::Message;
use gridledger_core::codec::encode;
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;
use gridledger_node::lbft::WIRE_LBFT;
use std::time::{Duration, Instant};

type Msg = Message<gridledger_threshold::SignatureShare, gridledger_threshold::Signature>;

/// Whether `cond` holds within `secs` seconds.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while !cond() {
        if t.elapsed() > Duration::from_secs(secs) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

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
#[ignore = "attack r3: one far-future-epoch message makes an idle LBFT network run empty epochs for ever"]
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
