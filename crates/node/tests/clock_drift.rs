//! The clock-drift refusal: a leader's proposal stamped further in the
//! future than `max_clock_drift_ms` is refused by every honest validator
//! (a consensus fault, nothing committed), while the same proposal stamped
//! now commits. The proposal is crafted outside the cluster with the
//! leader's own key and injected into the other validators' inboxes.

use gridledger_consensus::pbft::{Config, Message, Replica, ValidatorSet};
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig};
use gridledger_node::cluster::LocalCluster;
use gridledger_node::validator::{Input, PbftBlock, PbftSettings};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A leader-signed pre-prepare for height 1 whose block is stamped `timestamp`.
fn crafted_proposal(c: &LocalCluster, dir: &std::path::Path, timestamp: u64) -> (u32, Vec<u8>) {
    let genesis = c.node(0).unwrap().shared.chain().genesis().clone();
    let set = ValidatorSet::new(genesis.hash(), genesis.validators.clone()).unwrap();
    let view = Config::new(set.clone(), 0).initial_view;
    let leader = set.leader(view, 1);
    let mut chain =
        Chain::open(dir, genesis, gridledger_contracts::default_registry(), ChainConfig::default()).unwrap();
    let tx = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(1), Amount(1));
    chain.submit(&tx.to_bytes()).unwrap();
    let block = chain.build_block(&dev_validator(leader as usize).public(), timestamp).0.block;
    let mut replica = Replica::new(Config::new(set, leader), dev_validator(leader as usize)).unwrap();
    let _ = replica.start();
    let step = replica.propose(1, view, PbftBlock(block));
    let pre = step
        .messages
        .into_iter()
        .find(|m| matches!(m.message, Message::PrePrepare(_)))
        .expect("the leader's replica pre-prepares");
    let mut bytes = vec![0u8]; // the driver's consensus wire kind
    bytes.extend(pre.message.to_bytes());
    (leader, bytes)
}

fn inject(c: &LocalCluster, leader: u32, bytes: &[u8]) -> Vec<usize> {
    let others: Vec<usize> = (0..c.len()).filter(|i| *i as u32 != leader).collect();
    for &i in &others {
        c.mesh.inbox(i as u32).unwrap().send(Input::Peer { from: leader, bytes: bytes.to_vec() }).unwrap();
    }
    others
}

fn settings() -> PbftSettings {
    // A long view timeout: no view change interferes with the injected proposal.
    PbftSettings { base_timeout_ms: 600_000, max_clock_drift_ms: 5_000, ..PbftSettings::default() }
}

#[test]
fn a_proposal_from_too_far_in_the_future_is_refused_by_every_honest_validator() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(root.path(), 4, 4, Amount(1_000_000_000), settings()).unwrap();
    let (leader, bytes) = crafted_proposal(&c, scratch.path(), now_ms() + 3_600_000);
    let others = inject(&c, leader, &bytes);
    let start = Instant::now();
    let faulted = |i: usize| c.node(i).unwrap().shared.metrics.faults.load(Relaxed) > 0;
    while !others.iter().all(|&i| faulted(i)) {
        assert!(start.elapsed() < Duration::from_secs(20), "every honest validator reports the proposal");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Each refused it, so it cannot gather a quorum.
    for &i in &others {
        assert_eq!(c.height(i), Some(0));
    }
    c.shutdown();
}

#[test]
fn the_same_proposal_stamped_now_commits() {
    let root = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(root.path(), 4, 4, Amount(1_000_000_000), settings()).unwrap();
    let (leader, bytes) = crafted_proposal(&c, scratch.path(), now_ms());
    let others = inject(&c, leader, &bytes);
    let start = Instant::now();
    while !others.iter().all(|&i| c.height(i) == Some(1)) {
        assert!(start.elapsed() < Duration::from_secs(20), "the honest validators commit it");
        std::thread::sleep(Duration::from_millis(10));
    }
    for &i in &others {
        assert_eq!(c.node(i).unwrap().shared.metrics.faults.load(Relaxed), 0);
    }
    c.shutdown();
}
