//! Attack round 8 on the improved optimistic rollup (issue 11) through the
//! CLI: `kill -9` of `gridledger ior day --rpc` while a batch is pending.
//!
//! Each test reproduces a finding and fails on the code it was written
//! against; it is ignored until the finding is fixed.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// [4] `ior day --rpc` is the only process that executes, validates and
/// finalizes the day's batches (its in-process executors and validators),
/// and the IOR contracts of a chain are initialised once. Killed (`kill
/// -9`) while a batch of the day is recorded but not settled, nothing can
/// finish the day: the same command run again is refused ("initialised by
/// an earlier day"), no other command executes or finalizes a batch, and
/// the traders' IOR funds, the open agreements' deposits and the nodes'
/// deposits stay in the contract (withdrawing needs a settled batch and a
/// proof no command builds). A crash of the driver should be resumable:
/// the same command run again settles every batch the killed run recorded.
///
/// Fixed: the run keeps a journal beside the chain (`ior-day.json`: its
/// configuration and each slot's start); the same command run again on the
/// initialised chain attaches to the IOR contracts (`DualChain::attach`),
/// settles the recorded batches and the agreements left open
/// (`demo::resume_day`), and ends.
#[test]
fn a_killed_ior_day_can_be_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let funder = chain.join("keys").join("account-0.key");
    let day = [
        "ior",
        "day",
        "--rpc",
        &d(&chain),
        "--from",
        &d(&funder),
        "--slots",
        "24..30",
        "--slot-ms",
        "2000",
        "--window-ms",
        "1000",
        "--no-report",
        "--json",
    ];
    let mut run = bin().args(day).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    // Kill it the first time a batch holding entries is recorded and not
    // settled.
    let start = Instant::now();
    let pending = loop {
        assert!(start.elapsed() < Duration::from_secs(240), "no batch was recorded");
        assert!(run.try_wait().unwrap().is_none(), "the day ended before a batch was seen pending");
        if let Ok(cfg) = gridledger_rollup::driver::primary_config(&rpc) {
            let reader = gridledger_rollup::driver::PrimaryReader { c: &rpc, params: &cfg.params };
            if let Ok((next, fin)) = reader.progress() {
                let with_entries = (fin..next).any(|b| reader.batch_header(b).is_ok_and(|h| !h.is_empty()));
                if next > fin && with_entries {
                    run.kill().unwrap(); // SIGKILL
                    run.wait().unwrap();
                    break (next, fin);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let cfg = gridledger_rollup::driver::primary_config(&rpc).unwrap();
    let reader = gridledger_rollup::driver::PrimaryReader { c: &rpc, params: &cfg.params };
    let contract = gridledger_ledger::contract_address(gridledger_rollup::IOR_PRIMARY_ID);
    let c = gridledger_node::RpcClient::new(&url);
    let held = gridledger_node::channel::chainlink::balance(&c, &contract).unwrap();
    // Another configuration is refused, naming what differs, and sends
    // nothing to the IOR contract.
    let before = reader.progress().unwrap();
    let mut other = day.to_vec();
    let w = other.iter().position(|a| *a == "--window-ms").unwrap();
    other[w + 1] = "2000";
    let o = gl(&other);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("another configuration") && err.contains("window_ms"), "{err}");
    assert_eq!(reader.progress().unwrap(), before, "the refused rerun recorded nothing");
    assert_eq!(gridledger_node::channel::chainlink::balance(&c, &contract).unwrap(), held, "nor moved coin");
    // The same command again resumes the day.
    let o = gl(&day);
    let err = String::from_utf8_lossy(&o.stderr);
    let (next, fin) = reader.progress().unwrap();
    assert!(
        o.status.success() && fin >= pending.0,
        "killed with batches {}..{} pending and {held} minor units in the IOR contract; rerun: {} ({err}); \
         now settled up to {fin} of {next}",
        pending.1,
        pending.0,
        o.status
    );
    // It settled every batch and every agreement the killed run left open.
    assert_eq!(fin, next, "nothing pending after the resume");
    assert!(reader.settled_state().unwrap().agreements.is_empty(), "no agreement left open");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("killed with batches {}..{} pending; the rerun: {report}", pending.1, pending.0);
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["open_agreements"], 0, "{report}");
    // The day is over: a further run is refused.
    let o = gl(&day);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("which finished"), "{err}");
}
