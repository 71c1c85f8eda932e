//! Helpers shared by the multi-process CLI tests of the credit-note system.
#![allow(dead_code)]

use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_key, dev_validator};
use gridledger_node::channel::chainlink::balance;
use gridledger_node::RpcClient;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gridledger");
pub const BAL: Amount = Amount(1_000_000_000_000);

/// Kills its processes when dropped (a failing test leaves none behind).
pub struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn gl(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run gridledger")
}

/// Runs `gridledger`, asserts success, returns its stdout.
pub fn gl_ok(args: &[&str]) -> String {
    let o = gl(args);
    assert!(o.status.success(), "gridledger {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `gridledger`, asserts success, parses its stdout as JSON.
pub fn gl_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&gl_ok(args)).expect("JSON on stdout")
}

pub fn d(p: &Path) -> String {
    p.display().to_string()
}

/// Every coin of the four development accounts, the validator and the CNS contract.
pub fn total(c: &RpcClient) -> u128 {
    let mut v: Vec<Address> = (0..4).map(|i| dev_key(i).address()).collect();
    v.push(dev_validator(0).address());
    v.push(gridledger_ledger::contract_address(gridledger_contracts::CNS_ID));
    v.iter().map(|a| balance(c, a).unwrap()).sum()
}

/// Waits until the party in `dir` reports an open channel.
pub fn wait_open(dir: &Path) {
    let t = Instant::now();
    loop {
        let o = gl(&["channel", "status", "--json", "--dir", &d(dir)]);
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"phase\":\"Open\"") {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "party in {} never open", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}
