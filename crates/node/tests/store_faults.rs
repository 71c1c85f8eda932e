//! A node whose disk refuses writes (disk full, I/O errors), on a
//! fault-injecting store: it keeps every admitted transaction, reports the
//! fault on `/health` and in the metrics, refuses new transactions with a
//! typed error while it cannot commit, and recovers by reopening its store
//! once the disk works again, committing what it kept. A PBFT validator
//! with a failing write halts (stops voting), recovers and catches up.

use gridledger_consensus::pbft::sim::{Scenario, WriteFailure};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{ChainConfig, SubmitError};
use gridledger_node::config::write_key;
use gridledger_node::sim::{run_driver_with, DriverSimOptions};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use gridledger_sim::NetConfig;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path, disk: &Arc<SimDisk>) -> NodeHandle {
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), std::slice::from_ref(&validator));
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    write_key(&dir.join("validator.key"), &validator).unwrap();
    let cfg = NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: 20,
        chain: ChainConfig::default(),
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
    };
    let d = disk.clone();
    let store = Store::open_backend(move || d.backend()).unwrap();
    Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store)).unwrap().spawn().unwrap()
}

/// Waits for a condition the node signals (a generous cap only guards
/// against a hang; no outcome depends on timing).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
}

fn submit(node: &NodeHandle, from: usize, nonce: u64, count: u64) -> Vec<Result<Hash32, SubmitError>> {
    let s = &node.shared;
    let txs = (0..count)
        .map(|j| {
            s.rules
                .check(&transfer(&dev_key(from), 1, nonce + j, dev_key(3).address(), Amount(1), Amount(1)).to_bytes())
        })
        .collect();
    s.admit(txs)
}

fn committed(node: &NodeHandle, h: &Hash32) -> bool {
    node.shared.store.tx_location(h).ok().flatten().is_some()
}

#[test]
fn disk_full_keeps_the_mempool_reports_the_fault_refuses_new_transactions_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let node = start(dir.path(), &disk);
    let first: Vec<Hash32> = submit(&node, 0, 0, 5).into_iter().map(|r| r.unwrap()).collect();
    wait_until("the first block", || first.iter().all(|h| committed(&node, h)));
    assert!(get(node.addr, "/health").contains("200 OK"));

    disk.set_full(true);
    let kept: Vec<Hash32> = submit(&node, 1, 0, 10).into_iter().map(|r| r.unwrap()).collect();
    wait_until("the fault to be reported", || node.shared.fault().is_some());
    let health = get(node.addr, "/health");
    assert!(health.contains("503"), "{health}");
    assert!(health.contains("unavailable"), "{health}");
    let metrics = get(node.addr, "/metrics");
    assert!(metrics.contains("gridledger_store_unavailable 1"), "{metrics}");
    assert!(!metrics.contains("gridledger_store_faults_total 0\n"), "{metrics}");
    assert!(disk.errors() > 0);

    // Nothing admitted was dropped; nothing new is taken while it cannot commit.
    assert_eq!(node.shared.chain().pending(), kept.len());
    let refused = submit(&node, 2, 0, 3);
    assert!(refused.iter().all(|r| matches!(r, Err(SubmitError::Unavailable { .. }))), "{refused:?}");
    assert_eq!(node.shared.chain().pending(), kept.len(), "a refused transaction changed the mempool");
    assert!(kept.iter().all(|h| !committed(&node, h)));

    // The disk works again: the store is reopened and the kept transactions commit.
    disk.set_full(false);
    wait_until("the kept transactions to commit", || kept.iter().all(|h| committed(&node, h)));
    wait_until("the fault to clear", || node.shared.fault().is_none());
    assert!(get(node.addr, "/health").contains("200 OK"));
    assert!(get(node.addr, "/metrics").contains("gridledger_store_unavailable 0"));
    let again: Vec<Hash32> = submit(&node, 2, 0, 3).into_iter().map(|r| r.unwrap()).collect();
    wait_until("new transactions to commit", || again.iter().all(|h| committed(&node, h)));
    node.shutdown();
}

#[test]
fn a_validator_whose_write_fails_halts_recovers_by_reopening_and_catches_up() {
    let mut sc = Scenario::random(5, 4);
    sc.net = NetConfig::reliable(4, 30);
    sc.byzantine.clear();
    sc.disk_crashes.clear();
    sc.min_height = 30;
    // Validator 1's next write after t = 100, 600 and 1100 fails.
    sc.write_failures = vec![
        WriteFailure { node: 1, at: 100, sync: 1 },
        WriteFailure { node: 1, at: 600, sync: 1 },
        WriteFailure { node: 1, at: 1_100, sync: 1 },
    ];
    let (result, sim) = run_driver_with(&sc, &DriverSimOptions::default());
    let report = result.unwrap_or_else(|v| panic!("{v:?}"));
    assert!(report.heights.iter().all(|h| *h >= 30), "{:?}", report.heights);
    let node = sim.node(1).expect("validator 1 runs");
    let m = &node.driver().shared().metrics;
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(m.store_faults.load(Relaxed), 3, "each failed write halted the validator once");
    assert_eq!(m.recoveries.load(Relaxed), 3, "and each time it recovered by reopening");
    assert!(node.disk().errors() >= 3);
    assert!(node.driver().halted().is_none());
    assert!(node.driver().shared().fault().is_none());
}
