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
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
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

#[derive(Args)]
pub struct TestnetArgs {
    /// Number of validators (at least 4 to tolerate one fault).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory for keys, genesis, configs, data and logs.
    #[arg(long, default_value = "testnet")]
    pub dir: PathBuf,
    /// Funded accounts (keys written to DIR/keys).
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Validator i serves JSON-RPC on RPC_PORT + i.
    #[arg(long, default_value_t = 8645)]
    pub rpc_port: u16,
    /// Validator i listens for peers on P2P_PORT + i.
    #[arg(long, default_value_t = 9645)]
    pub p2p_port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Only write the files; do not start the validators.
    #[arg(long)]
    pub no_start: bool,
}

/// Writes a local multi-validator network and (unless `--no-start`) runs
/// each validator as its own `gridledger node` process until Ctrl-C.
pub fn testnet(a: TestnetArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.validators >= 1, "need at least one validator");
    let configs = write_testnet(&a)?;
    let urls: Vec<String> =
        (0..a.validators).map(|i| format!("http://{}:{}", a.host, a.rpc_port as usize + i)).collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "dir": a.dir,
            "validators": configs.iter().zip(&urls).map(|(c, u)| json!({ "config": c, "rpc": u })).collect::<Vec<_>>(),
            "accounts": a.dir.join("keys"),
        }))?
    );
    if a.no_start {
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for c in &configs {
        let log = std::fs::File::create(c.with_file_name("node.log"))?;
        let child = std::process::Command::new(&exe)
            .args(["node", "--config"])
            .arg(c)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting validator {}", c.display()))?;
        children.push(child);
    }
    eprintln!(
        "{} validators running (logs in {}/validator-*/node.log); Ctrl-C stops them",
        children.len(),
        a.dir.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(tokio::signal::ctrl_c())?;
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}

/// Writes genesis, keys and one config per validator; returns the configs' paths.
pub fn write_testnet(a: &TestnetArgs) -> anyhow::Result<Vec<PathBuf>> {
    if a.dir.join("genesis.toml").exists() {
        bail!("{} already holds a network (genesis.toml); choose another --dir", a.dir.display());
    }
    std::fs::create_dir_all(a.dir.join("keys"))?;
    let mut rng = rand::rng();
    let validators: Vec<KeyPair> = (0..a.validators).map(|_| KeyPair::generate(&mut rng)).collect();
    let mut allocations = Vec::new();
    for i in 0..a.accounts {
        let k = KeyPair::generate(&mut rng);
        write_key(&a.dir.join("keys").join(format!("account-{i}.key")), &k)?;
        allocations.push(Allocation { address: k.address(), balance: Amount(1_000_000_000_000) });
    }
    let genesis = Genesis {
        chain_id: 1,
        timestamp: 0,
        state_buckets_log2: 14,
        allocations,
        validators: validators.iter().map(|k| k.public()).collect(),
    };
    write_network(&a.dir, &genesis, &validators, &a.host, a.rpc_port, a.p2p_port)
}

/// Writes `genesis` and, per validator, its key and a node config with the
/// full peer list (RPC on `rpc_port + i`, peers on `p2p_port + i`).
pub fn write_network(
    dir: &std::path::Path,
    genesis: &Genesis,
    validators: &[KeyPair],
    host: &str,
    rpc_port: u16,
    p2p_port: u16,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("genesis.toml"), toml::to_string_pretty(genesis)?)?;
    let peers: Vec<gridledger_node::config::PeerEntry> = validators
        .iter()
        .enumerate()
        .map(|(i, k)| gridledger_node::config::PeerEntry {
            index: i as u32,
            public_key: k.public(),
            address: format!("{host}:{}", p2p_port as usize + i),
        })
        .collect();
    let mut out = Vec::new();
    for (i, k) in validators.iter().enumerate() {
        let vdir = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&vdir)?;
        write_key(&vdir.join("validator.key"), k)?;
        let cfg = NodeConfig {
            data_dir: "data".into(),
            genesis: "../genesis.toml".into(),
            validator_key: "validator.key".into(),
            rpc_listen: format!("{host}:{}", rpc_port as usize + i),
            block_interval_ms: 200,
            chain: ChainConfig::default(),
            network: (validators.len() > 1).then(|| gridledger_node::config::NetworkSection {
                listen: peers[i].address.clone(),
                peers: peers.clone(),
            }),
            pbft: gridledger_node::validator::PbftSettings::default(),
        };
        let path = vdir.join("node.toml");
        std::fs::write(&path, toml::to_string_pretty(&cfg)?)?;
        out.push(path);
    }
    Ok(out)
}
