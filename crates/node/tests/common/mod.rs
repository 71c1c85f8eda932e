//! Shared by the node tests that run a single-validator node, on a
//! fault-injecting store (`store_faults`, `attack_pbft_persist`) or on
//! disk (`rpc_chain`, `attack_rpc`); `party` by the channel party tests,
//! `attacker` by those that run side 1 as a modified client.
#![allow(dead_code)]

pub mod attacker;
pub mod lbft;
pub mod party;

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{ChainConfig, SubmitError};
use gridledger_node::config::write_key;
use gridledger_node::{Node, NodeConfig, NodeHandle};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes a one-validator genesis and key into `dir` and returns the
/// configuration of that validator's node (20 ms blocks, RPC on port 0).
pub fn single_validator_config(dir: &std::path::Path) -> NodeConfig {
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), std::slice::from_ref(&validator));
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    write_key(&dir.join("validator.key"), &validator).unwrap();
    NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: 20,
        chain: ChainConfig::default(),
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
        consensus: Default::default(),
        lbft: Default::default(),
    }
}

/// A single-validator node (20 ms blocks) whose store lives on `disk`.
pub fn start(dir: &std::path::Path, disk: &Arc<SimDisk>) -> NodeHandle {
    let cfg = single_validator_config(dir);
    let d = disk.clone();
    let store = Store::open_backend(move || d.backend()).unwrap();
    Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store)).unwrap().spawn().unwrap()
}

/// Waits for a condition the node signals (a generous cap only guards
/// against a hang; no outcome depends on timing).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Admits `count` transfers from dev account `from`, nonces from `nonce`.
pub fn submit(node: &NodeHandle, from: usize, nonce: u64, count: u64) -> Vec<Result<Hash32, SubmitError>> {
    let s = &node.shared;
    let txs = (0..count)
        .map(|j| {
            s.rules
                .check(&transfer(&dev_key(from), 1, nonce + j, dev_key(3).address(), Amount(1), Amount(1)).to_bytes())
        })
        .collect();
    s.admit(txs)
}

pub fn committed(node: &NodeHandle, h: &Hash32) -> bool {
    node.shared.store.tx_location(h).ok().flatten().is_some()
}
