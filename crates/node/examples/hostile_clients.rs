//! Helper for `scripts/hostile-rpc.py`, which measures a node's memory under
//! hostile clients:
//!
//! - `hostile_clients setup DIR ACCOUNTS` writes a single-validator dev chain
//!   (genesis, key, `node.toml` listening on port 0) into DIR;
//! - `hostile_clients flood URL TXS ACCOUNTS` signs TXS transfers from the dev
//!   accounts and submits them with `gl_sendTransactions`, then waits until
//!   they are committed.

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::ChainConfig;
use gridledger_node::config::write_key;
use gridledger_node::{NodeConfig, RpcClient};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["setup", dir, accounts] => {
            let dir = std::path::Path::new(dir);
            std::fs::create_dir_all(dir)?;
            let v = dev_validator(0);
            let genesis = dev_genesis(1, accounts.parse()?, Amount(1_000_000_000_000), std::slice::from_ref(&v));
            std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis)?)?;
            write_key(&dir.join("validator.key"), &v)?;
            let cfg = NodeConfig {
                data_dir: "data".into(),
                genesis: "genesis.toml".into(),
                validator_key: "validator.key".into(),
                rpc_listen: "127.0.0.1:0".into(),
                block_interval_ms: 50,
                chain: ChainConfig::default(),
                network: None,
                pbft: Default::default(),
                consensus: Default::default(),
                lbft: Default::default(),
            };
            std::fs::write(dir.join("node.toml"), toml::to_string(&cfg)?)?;
        }
        ["flood", url, txs, accounts] => {
            let (txs, accounts): (usize, usize) = (txs.parse()?, accounts.parse()?);
            let keys: Vec<_> = (0..accounts).map(dev_key).collect();
            let c = RpcClient::new(url);
            let all: Vec<_> = (0..txs)
                .map(|j| {
                    let from = j % accounts;
                    let to = keys[(j * 7 + 1) % accounts].address();
                    transfer(&keys[from], 1, (j / accounts) as u64, to, Amount(1), Amount(1))
                })
                .collect();
            let mut hashes = Vec::new();
            for chunk in all.chunks(2_000) {
                for r in c.send_many(chunk)? {
                    hashes.push(r.map_err(|e| anyhow::anyhow!(e))?);
                }
            }
            while c.committed_count(&hashes)? < hashes.len() {
                std::thread::sleep(Duration::from_millis(200));
            }
            println!("{}", c.height()?);
        }
        _ => anyhow::bail!("usage: hostile_clients setup DIR ACCOUNTS | flood URL TXS ACCOUNTS"),
    }
    Ok(())
}
