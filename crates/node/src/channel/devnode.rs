//! A single-validator node in a directory, serving JSON-RPC on loopback,
//! with funded development accounts: what the party tests, the channel
//! benchmark and the demo run channels against.

use crate::{Node, NodeConfig, NodeHandle};
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_genesis, dev_validator};
use gridledger_ledger::ChainConfig;
use std::path::Path;

/// Starts a node with `accounts` development accounts of `balance` each,
/// producing a block every `block_ms`.
pub fn start(dir: &Path, accounts: usize, balance: Amount, block_ms: u64) -> anyhow::Result<NodeHandle> {
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, accounts, balance, std::slice::from_ref(&validator));
    std::fs::create_dir_all(dir)?;
    let text = toml::to_string_pretty(&genesis)?;
    std::fs::write(dir.join("genesis.toml"), text)?;
    crate::config::write_key(&dir.join("validator.key"), &validator)?;
    let cfg = NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: block_ms,
        chain: ChainConfig::default(),
        network: None,
        pbft: crate::validator::PbftSettings::default(),
        consensus: Default::default(),
        lbft: Default::default(),
    };
    Node::open(&cfg, gridledger_contracts::default_registry())?.spawn()
}
