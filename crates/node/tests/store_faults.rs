//! A node whose disk refuses writes (disk full, I/O errors), on a
//! fault-injecting store: it keeps every admitted transaction, reports the
//! fault on `/health` and in the metrics, refuses new transactions with a
//! typed error while it cannot commit, and recovers by reopening its store
//! once the disk works again, committing what it kept. A PBFT validator
//! with a failing write halts (stops voting), recovers and catches up.

mod common;
use common::{committed, start, submit, wait_until};
use gridledger_consensus::pbft::sim::{Scenario, WriteFailure};
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::SubmitError;
use gridledger_node::sim::{run_driver_with, DriverSimOptions};
use gridledger_sim::NetConfig;
use std::io::{Read, Write};

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp
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
