//! Chain set-up and client commands: init, keys, transfer, query.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::{Allocation, ChainConfig, Genesis, Transaction, TxKind};
use gridledger_node::config::{read_key, write_key};
use gridledger_node::{NodeConfig, RpcClient};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const DEFAULT_RPC: &str = "http://127.0.0.1:8645";

#[derive(Args)]
pub struct InitArgs {
    /// Directory to create the chain's files in.
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of funded accounts to create keys for.
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Initial balance per account, in minor units.
    #[arg(long, default_value_t = 1_000_000_000_000)]
    pub balance: u128,
    #[arg(long, default_value_t = 1)]
    pub chain_id: u32,
    #[arg(long, default_value = "127.0.0.1:8645")]
    pub listen: String,
}

pub fn init(a: InitArgs) -> anyhow::Result<()> {
    if a.dir.join("node.toml").exists() {
        bail!("{} already holds a node.toml", a.dir.display());
    }
    std::fs::create_dir_all(a.dir.join("keys"))?;
    let mut rng = rand::rng();
    let validator = KeyPair::generate(&mut rng);
    write_key(&a.dir.join("validator.key"), &validator)?;
    let mut allocations = Vec::new();
    for i in 0..a.accounts {
        let k = KeyPair::generate(&mut rng);
        write_key(&a.dir.join("keys").join(format!("account-{i}.key")), &k)?;
        allocations.push(Allocation { address: k.address(), balance: Amount(a.balance) });
    }
    let genesis = Genesis {
        chain_id: a.chain_id,
        timestamp: 0,
        state_buckets_log2: 14,
        allocations,
        validators: vec![validator.public()],
    };
    std::fs::write(a.dir.join("genesis.toml"), toml::to_string_pretty(&genesis)?)?;
    let cfg = NodeConfig {
        data_dir: "data".into(),
        genesis: "genesis.toml".into(),
        validator_key: "validator.key".into(),
        rpc_listen: a.listen,
        block_interval_ms: 200,
        chain: ChainConfig::default(),
    };
    std::fs::write(a.dir.join("node.toml"), toml::to_string_pretty(&cfg)?)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "config": a.dir.join("node.toml"),
            "validator": validator.public(),
            "accounts": genesis.allocations.iter().enumerate().map(|(i, x)| json!({
                "key": a.dir.join("keys").join(format!("account-{i}.key")),
                "address": x.address,
                "balance": x.balance,
            })).collect::<Vec<_>>(),
        }))?
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Generate a key and write it to a file.
    New {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's public key and address.
    Show {
        #[arg(long)]
        key: PathBuf,
    },
}

pub fn keys(k: KeysCmd) -> anyhow::Result<()> {
    let (key, path) = match k {
        KeysCmd::New { out } => {
            if out.exists() {
                bail!("{} exists; refusing to overwrite a key", out.display());
            }
            let key = KeyPair::generate(&mut rand::rng());
            write_key(&out, &key)?;
            (key, out)
        }
        KeysCmd::Show { key } => (read_key(&key)?, key),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({ "file": path, "public_key": key.public(), "address": key.address() }))?
    );
    Ok(())
}

#[derive(Args)]
pub struct TransferArgs {
    #[arg(long, default_value = DEFAULT_RPC)]
    pub rpc: String,
    /// Sender's key file.
    #[arg(long)]
    pub key: PathBuf,
    #[arg(long)]
    pub to: Address,
    /// Amount in minor units.
    #[arg(long)]
    pub amount: u128,
    #[arg(long, default_value_t = 1)]
    pub gas_price: u128,
    /// Return as soon as the node accepts it, without waiting for the block.
    #[arg(long)]
    pub no_wait: bool,
}

pub fn transfer(a: TransferArgs) -> anyhow::Result<()> {
    let key = read_key(&a.key)?;
    let c = RpcClient::new(&a.rpc);
    let info = c.call("gl_chainInfo", json!([]))?;
    let chain_id = info["chain_id"].as_u64().context("chain id")? as u32;
    let nonce = c.next_nonce(&key.address())?;
    let tx = Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit: gridledger_ledger::devnet::TRANSFER_GAS,
        gas_price: Amount(a.gas_price),
        kind: TxKind::Transfer { to: a.to, amount: Amount(a.amount) },
    }
    .sign(&key);
    let h = c.send(&tx)?;
    if a.no_wait {
        println!("{}", json!({ "hash": h }));
        return Ok(());
    }
    let r = c.wait_receipt(&h, Duration::from_secs(60))?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

#[derive(Subcommand)]
pub enum QueryCmd {
    /// Chain id, height, tip and mempool.
    Info {
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
    /// An account's balance and nonce.
    Account {
        address: Address,
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
    /// A block by height (or "latest").
    Block {
        height: String,
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
    /// A committed transaction.
    Tx {
        hash: Hash32,
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
    /// A transaction's receipt.
    Receipt {
        hash: Hash32,
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
    /// A contract's raw storage slot (key in hex).
    State {
        contract: u32,
        key: String,
        #[arg(long, default_value = DEFAULT_RPC)]
        rpc: String,
    },
}

pub fn query(q: QueryCmd) -> anyhow::Result<()> {
    let (rpc, method, params): (String, &str, Value) = match q {
        QueryCmd::Info { rpc } => (rpc, "gl_chainInfo", json!([])),
        QueryCmd::Account { address, rpc } => (rpc, "gl_getAccount", json!([address])),
        QueryCmd::Block { height, rpc } => {
            let p = if height == "latest" {
                json!(["latest"])
            } else {
                json!([height.parse::<u64>().context("height must be a number or \"latest\"")?])
            };
            (rpc, "gl_getBlock", p)
        }
        QueryCmd::Tx { hash, rpc } => (rpc, "gl_getTransaction", json!([hash])),
        QueryCmd::Receipt { hash, rpc } => (rpc, "gl_getReceipt", json!([hash])),
        QueryCmd::State { contract, key, rpc } => (rpc, "gl_getContractState", json!([contract, key])),
    };
    let v = RpcClient::new(&rpc).call(method, params)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
