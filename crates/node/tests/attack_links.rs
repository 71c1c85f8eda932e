//! A Byzantine validator's catch-up requests (issue 9, item 7).

use gridledger_consensus::pbft::Message;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_node::cluster::LocalCluster;
use gridledger_node::validator::{Input, PbftBlock, PbftSettings};
use std::time::Duration;

fn submit(c: &LocalCluster, from: usize, nonce: u64, count: u64) -> Vec<Hash32> {
    let shared = &c.node(0).unwrap().shared;
    let txs: Vec<_> = (0..count)
        .map(|j| {
            shared
                .rules
                .check(&transfer(&dev_key(from), 1, nonce + j, dev_key(7).address(), Amount(1), Amount(1)).to_bytes())
        })
        .collect();
    shared.admit(txs).into_iter().map(|r| r.unwrap()).collect()
}

/// Validator 3 is Byzantine and keeps asking validators 0-2 for catch-up
/// from height 1: a 10-byte request each. The responses are rate-limited
/// only when they are *sent* (`NetTransport`), after the driver has already
/// cloned up to `catch_up_batch` full blocks from its log (or read them from
/// the store) and encoded them; the driver is single-threaded, so the honest
/// validators' votes wait behind that work. 2,000 requests per honest
/// validator (four lane-fulls of 512: the attacker refills them as fast as
/// they drain) must not stall consensus: a transaction submitted after them
/// commits on the three honest validators within a few view timeouts.
#[test]
fn attack_catch_up_requests_from_a_byzantine_peer_do_not_stall_consensus() {
    let d = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(
        d.path(),
        4,
        8,
        Amount(1_000_000_000),
        PbftSettings { base_timeout_ms: 300, ..PbftSettings::default() },
    )
    .unwrap();
    // A log of full blocks to serve.
    let mut all = Vec::new();
    for s in 0..6 {
        all.extend(submit(&c, s, 0, 600));
    }
    c.wait_committed(&[0, 1, 2, 3], &all, Duration::from_secs(300)).unwrap();
    let base = c.wait_committed(&[0, 1, 2], &submit(&c, 6, 0, 1), Duration::from_secs(60)).unwrap();
    // 0 is the consensus wire kind (validator::WIRE_PBFT).
    let mut req = vec![0u8];
    req.extend(Message::<PbftBlock>::CatchUpRequest { from_height: 1 }.to_bytes());
    for v in 0..3u32 {
        let inbox = c.mesh.inbox(v).unwrap();
        for _ in 0..2_000 {
            inbox.send(Input::Peer { from: 3, bytes: req.clone() }).unwrap();
        }
    }
    let under_attack = c.wait_committed(&[0, 1, 2], &submit(&c, 6, 1, 1), Duration::from_secs(600)).unwrap();
    eprintln!("commit latency: before {base:?}, behind 2,000 catch-up requests {under_attack:?}");
    assert!(
        under_attack < Duration::from_secs(3),
        "one transaction took {under_attack:?} to commit behind a Byzantine peer's catch-up requests (before: {base:?})"
    );
    c.shutdown();
}

/// Validator 3 gossips frames of transactions whose signatures do not
/// verify. Each frame is decoded and every signature checked on the driver
/// thread (`WIRE_TXS` in `Driver::on_bytes`), before the gossip lane is
/// released, so four 4 MiB frames (the gossip lane's 16 MiB; the attacker
/// refills it as it drains) stall the honest validators' votes. Gossip must
/// be verified off the driver thread (or dropped first under load), so a
/// transaction submitted after them commits within a few view timeouts.
#[test]
fn attack_gossip_of_bad_signatures_from_a_byzantine_peer_does_not_stall_consensus() {
    let d = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(
        d.path(),
        4,
        8,
        Amount(1_000_000_000),
        PbftSettings { base_timeout_ms: 300, ..PbftSettings::default() },
    )
    .unwrap();
    let base = c.wait_committed(&[0, 1, 2], &submit(&c, 6, 0, 1), Duration::from_secs(60)).unwrap();
    // One signed transfer, copied with changed nonces: same size, bad signatures.
    let t = transfer(&dev_key(5), 1, 0, dev_key(7).address(), Amount(1), Amount(1));
    let per_frame = (4usize << 20) / (t.to_bytes().len() + 8);
    let frame: Vec<_> = (0..per_frame as u64)
        .map(|n| {
            let mut x = t.clone();
            x.tx.nonce = n + 1;
            x
        })
        .collect();
    // 1 is the gossip wire kind (validator::WIRE_TXS).
    let mut bytes = vec![1u8];
    bytes.extend(gridledger_core::codec::encode(&frame));
    for v in 0..3u32 {
        let inbox = c.mesh.inbox(v).unwrap();
        for _ in 0..4 {
            inbox.send(Input::Peer { from: 3, bytes: bytes.clone() }).unwrap();
        }
    }
    let under_attack = c.wait_committed(&[0, 1, 2], &submit(&c, 6, 1, 1), Duration::from_secs(600)).unwrap();
    eprintln!("commit latency: before {base:?}, behind 4 gossip frames of {per_frame} bad signatures {under_attack:?}");
    assert!(
        under_attack < Duration::from_secs(3),
        "one transaction took {under_attack:?} to commit behind a Byzantine peer's gossip (before: {base:?})"
    );
    c.shutdown();
}
