//! Chain set-up and client commands: init, keys, transfer, query, testnet.
//!
//! Output: a human-readable table by default, one JSON document on one
//! line with `--json` (as `cns` and `channel` print). Amounts print as coin and minor units (1 coin = 10^6 minor).

use crate::endpoint::{self, DEFAULT_RPC, RPC_HELP};
use crate::units;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::{Allocation, ChainConfig, Genesis, Transaction, TxKind};
use gridledger_node::config::{read_key, write_key, write_secret};
use gridledger_node::{keystore, NodeConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prints `v` as one JSON document, or `human` as the table.
pub(crate) fn emit(as_json: bool, v: &Value, human: impl FnOnce()) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string(v)?);
    } else {
        human();
    }
    Ok(())
}

/// Prints rows as left-aligned columns as wide as their widest cell.
pub(crate) fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

#[derive(Args)]
pub struct InitArgs {
    /// Directory to create the chain's files in (keys/, genesis.toml, node.toml).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Number of funded accounts to create keys for (DIR/keys/account-N.key).
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Initial balance per account: minor units, or coin with a decimal
    /// point (1 coin = 1,000,000 minor units). Default 1,000,000 coin.
    #[arg(long, default_value = "1000000000000", value_parser = units::parse_amount)]
    pub balance: u128,
    /// Chain id, signed into every transaction (replay protection across chains).
    #[arg(long, default_value_t = 1)]
    pub chain_id: u32,
    /// HOST:PORT the node serves JSON-RPC, events and metrics on (port 0: any free port,
    /// written to DIR/node.url while the node runs).
    #[arg(long, default_value = "127.0.0.1:8645", value_name = "HOST:PORT", value_parser = parse_listen)]
    pub listen: String,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// clap value parser for a listen address: `HOST:PORT` with an IP address
/// (`[::1]` for IPv6) or a host name and a port 0..=65535, checked before
/// anything is written (the node would only fail when started).
pub fn parse_listen(s: &str) -> Result<String, String> {
    let bad =
        || format!("{s:?} is not HOST:PORT (e.g. 127.0.0.1:8645, [::1]:8645, localhost:8645; port 0: any free port)");
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(s.to_string());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if !name_ok {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// The first lines of every `node.toml` that `init` and `testnet` write.
const CONFIG_HEADER: &str = "# gridledger node config. Every key, its unit and default: docs/node.toml.\n\
    # Unknown keys are refused. Relative paths are taken from this file's directory.\n\n";

fn write_config(path: &Path, cfg: &NodeConfig) -> anyhow::Result<()> {
    let text = format!("{CONFIG_HEADER}{}", toml::to_string_pretty(cfg)?);
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn create_dir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating directory {}", p.display()))
}

pub fn init(a: InitArgs) -> anyhow::Result<()> {
    if a.dir.join("node.toml").exists() {
        bail!("{} already holds a node.toml; choose another --dir", a.dir.display());
    }
    create_dir(&a.dir.join("keys"))?;
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
    let genesis_path = a.dir.join("genesis.toml");
    std::fs::write(&genesis_path, toml::to_string_pretty(&genesis)?)
        .with_context(|| format!("writing {}", genesis_path.display()))?;
    let cfg = NodeConfig {
        data_dir: "data".into(),
        genesis: "genesis.toml".into(),
        validator_key: "validator.key".into(),
        rpc_listen: a.listen.clone(),
        block_interval_ms: 200,
        chain: ChainConfig::default(),
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
        consensus: Default::default(),
        lbft: Default::default(),
    };
    let config = a.dir.join("node.toml");
    write_config(&config, &cfg)?;
    let accounts: Vec<Value> = genesis
        .allocations
        .iter()
        .enumerate()
        .map(|(i, x)| {
            json!({
                "key": a.dir.join("keys").join(format!("account-{i}.key")),
                "address": x.address,
                "balance": x.balance,
            })
        })
        .collect();
    let v = json!({ "config": config, "validator": validator.public(), "accounts": accounts });
    emit(a.json, &v, || {
        println!("chain written to {} (chain id {})", a.dir.display(), a.chain_id);
        println!("  config     {}", config.display());
        println!("  validator  {}", validator.public());
        for (i, x) in genesis.allocations.iter().enumerate() {
            println!("  account-{i}  {}  {}", x.address, units::show(x.balance.0));
        }
        println!();
        println!("next: gridledger node --config {}", config.display());
        println!("      (JSON-RPC on {}; client commands find it with --rpc {})", a.listen, a.dir.display());
    })
}

/// Password for a new or opened keystore: a file, else the environment.
#[derive(Args, Clone, Debug)]
pub struct PasswordArgs {
    /// File whose first line is the keystore password (default: the file named
    /// by GRIDLEDGER_PASSWORD_FILE, else GRIDLEDGER_PASSWORD, else asked on the terminal).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

impl PasswordArgs {
    pub(crate) fn get(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        Ok(match &self.password_file {
            Some(p) => keystore::password_from_file(p)?,
            None => keystore::password_from_env()?,
        })
    }

    /// A password for a new keystore: asked twice when it comes from the terminal.
    fn get_new(&self) -> anyhow::Result<zeroize::Zeroizing<String>> {
        let from_env =
            std::env::var_os("GRIDLEDGER_PASSWORD_FILE").is_some() || std::env::var_os("GRIDLEDGER_PASSWORD").is_some();
        if self.password_file.is_some() || from_env {
            return self.get();
        }
        let first = keystore::prompt("new keystore password: ")?;
        let again = keystore::prompt("repeat it: ")?;
        anyhow::ensure!(*first == *again, "the two passwords differ; nothing written");
        Ok(first)
    }
}

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Generate a key and write it to a file (plaintext hex unless --encrypt).
    New {
        /// File to write the key to; refused if it exists.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write an encrypted keystore (scrypt + XChaCha20-Poly1305) instead of hex.
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        password: PasswordArgs,
        /// Print one JSON document instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Print a key file's public key and address (plaintext or keystore).
    Show {
        /// The key file (plaintext hex or encrypted keystore).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Print one JSON document instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Import a plaintext hex key (from `keys new`, `init` or another wallet)
    /// into an encrypted keystore file.
    Import {
        /// The plaintext key file (64 hex digits).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The keystore file to write; refused if it exists.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
        /// Print one JSON document instead of the summary.
        #[arg(long)]
        json: bool,
    },
    /// Export a keystore's secret as a plaintext hex key file (mode 0600).
    Export {
        /// The keystore file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The plaintext file to write; refused if it exists.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
        /// Print one JSON document instead of the summary.
        #[arg(long)]
        json: bool,
    },
}

/// Refuses an `--out` that exists in any form, a dangling symbolic link
/// included (`Path::exists` follows links and calls a dangling one absent),
/// before a password is asked for.
fn refuse_existing(out: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(out).is_ok() {
        bail!("{} exists (or is a symbolic link); refusing to overwrite a key (choose another --out)", out.display());
    }
    Ok(())
}

/// Writes a secret to a file that must not exist yet: created with
/// `create_new` (O_CREAT|O_EXCL, which never follows a symbolic link, even
/// a dangling one) and mode 0600, so a link planted at `--out` or a file
/// made after the check is refused instead of written through.
fn write_new_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(|e| {
        let hint = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() && !p.exists() => {
                format!(" (directory {} does not exist)", p.display())
            }
            _ if e.kind() == std::io::ErrorKind::AlreadyExists => " (choose another --out)".to_string(),
            _ => String::new(),
        };
        anyhow::anyhow!("writing key file {}: {e}{hint}", path.display())
    })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("writing key file {}: {e}", path.display()))
}

/// [`write_new_secret`] of a plaintext hex key (the format `write_key` writes).
fn write_new_key(path: &Path, key: &KeyPair) -> anyhow::Result<()> {
    let hex = zeroize::Zeroizing::new(hex::encode(key.secret_bytes()) + "\n");
    write_new_secret(path, hex.as_bytes())
}

/// A key file, plaintext or an encrypted keystore (opened with `password`).
pub(crate) fn read_key_with(path: &Path, password: &PasswordArgs) -> anyhow::Result<KeyPair> {
    let text = gridledger_node::config::read_key_text(path)?;
    if keystore::is_keystore(&text) {
        return keystore::open(&text, &password.get()?).with_context(|| format!("opening {}", path.display()));
    }
    read_key(path)
}

pub fn keys(k: KeysCmd) -> anyhow::Result<()> {
    let (key, path, as_json) = match k {
        KeysCmd::New { out, encrypt, password, json } => {
            refuse_existing(&out)?;
            let key = KeyPair::generate(&mut rand::rng());
            if encrypt {
                let text = keystore::seal(&key, &password.get_new()?, keystore::DEFAULT_LOG_N)?;
                write_new_secret(&out, text.as_bytes())?;
            } else {
                write_new_key(&out, &key)?;
            }
            (key, out, json)
        }
        KeysCmd::Show { key, json } => {
            // A keystore stores its address in the clear: show it without
            // asking for the password (the public key is inside the sealed part).
            let text = gridledger_node::config::read_key_text(&key)?;
            if keystore::is_keystore(&text) {
                let address = keystore::address_of(&text).with_context(|| format!("reading {}", key.display()))?;
                let v = json!({ "file": key, "address": address, "public_key": null, "encrypted": true });
                return emit(json, &v, || {
                    println!("file        {}", key.display());
                    println!("address     {address}");
                    println!("public key  (sealed in the keystore; `keys export` reveals it)");
                });
            }
            (read_key(&key)?, key, json)
        }
        KeysCmd::Import { from, out, password, json } => {
            refuse_existing(&out)?;
            let key = read_key(&from)?;
            let text = keystore::seal(&key, &password.get_new()?, keystore::DEFAULT_LOG_N)?;
            write_new_secret(&out, text.as_bytes())?;
            eprintln!("imported into {}; the plaintext {} can now be deleted", out.display(), from.display());
            (key, out, json)
        }
        KeysCmd::Export { key, out, password, json } => {
            refuse_existing(&out)?;
            let k = read_key_with(&key, &password)?;
            write_new_key(&out, &k)?;
            eprintln!("exported the secret of {} in plaintext to {}", key.display(), out.display());
            (k, out, json)
        }
    };
    let v = json!({ "file": path, "public_key": key.public(), "address": key.address() });
    emit(as_json, &v, || {
        println!("file        {}", path.display());
        println!("address     {}", key.address());
        println!("public key  {}", key.public());
    })
}

#[derive(Args)]
pub struct TransferArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = endpoint::parse_rpc, help = RPC_HELP)]
    pub rpc: String,
    /// Sender's key file (plaintext hex or encrypted keystore).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Recipient's address (hex, as `gridledger keys show` prints it).
    #[arg(long, value_name = "ADDRESS")]
    pub to: Address,
    /// Amount: minor units (1000), or coin with a decimal point (1.5 or
    /// 1.5coin; 1 coin = 1,000,000 minor units). The sender also needs the fee
    /// reserve: gas limit 21,000 × --gas-price.
    #[arg(long, value_parser = units::parse_amount)]
    pub amount: u128,
    /// Price per unit of gas, in minor units (a transfer uses 21,000 gas).
    /// Default: the node's minimum (min_gas_price in gl_chainInfo), else 1.
    #[arg(long, value_name = "MINOR")]
    pub gas_price: Option<u128>,
    /// Return as soon as the node accepts it, without waiting for the block.
    #[arg(long)]
    pub no_wait: bool,
    /// Print one JSON document (the receipt) instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// The node's minimum gas price as its `gl_chainInfo` reports it (a
/// decimal string or a number), if it does.
pub(crate) fn node_min_gas_price(info: &Value) -> Option<u128> {
    let v = &info["min_gas_price"];
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64().map(u128::from))
}

/// The gas price to sign at: `--gas-price`, else the node's minimum, else
/// 1; one below the node's minimum is refused before anything is sent,
/// naming the flag and the minimum.
pub(crate) fn checked_gas_price(given: Option<u128>, info: &Value, rpc: &str) -> anyhow::Result<u128> {
    let min = node_min_gas_price(info);
    let price = given.or(min).unwrap_or(1);
    if let Some(min) = min.filter(|m| price < *m) {
        bail!(
            "--gas-price {price} is below the minimum gas price {min} of the node at {rpc}; \
             pass --gas-price {min} or more (or leave it out: the node's minimum is the default); nothing sent"
        );
    }
    Ok(price)
}

pub fn transfer(a: TransferArgs) -> anyhow::Result<()> {
    // A zero transfer would only burn the fee.
    anyhow::ensure!(a.amount > 0, "--amount 0 moves nothing (it would only pay the fee); nothing sent");
    let key = read_key_with(&a.key, &a.password)?;
    let c = endpoint::connect(&a.rpc)?;
    let info = c.call("gl_chainInfo", json!([]))?;
    let chain_id = info["chain_id"].as_u64().context("chain id")? as u32;
    let gas_price = checked_gas_price(a.gas_price, &info, &a.rpc)?;
    let account = c.account(&key.address())?;
    let balance: u128 = account["balance"].as_str().and_then(|b| b.parse().ok()).unwrap_or(0);
    let gas_limit = gridledger_ledger::devnet::TRANSFER_GAS;
    let reserve = u128::from(gas_limit).checked_mul(gas_price).context("fee reserve overflows")?;
    let needed = a.amount.checked_add(reserve).context("amount plus fee overflows")?;
    if balance < needed {
        bail!(
            "insufficient balance: {} holds {}; sending {} needs {} more as fee reserve \
             (gas limit {gas_limit} × gas price {gas_price}), {} in all",
            key.address(),
            units::show(balance),
            units::show(a.amount),
            units::show(reserve),
            units::show(needed)
        );
    }
    let nonce = c.next_nonce(&key.address())?;
    let tx = Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit,
        gas_price: Amount(gas_price),
        kind: TxKind::Transfer { to: a.to, amount: Amount(a.amount) },
    }
    .sign(&key);
    let h = c.send(&tx).map_err(|e| {
        // A node that raised its minimum meanwhile (or reports none): name the flag.
        let hint = if format!("{e:#}").contains("gas price") { "; raise --gas-price" } else { "" };
        anyhow::Error::from(e).context(format!("sending the transfer to {}{hint}", a.rpc))
    })?;
    if a.no_wait {
        return emit(a.json, &json!({ "hash": h }), || println!("accepted {h} (not waiting for its block)"));
    }
    let r = c.wait_receipt(&h, Duration::from_secs(60))?;
    emit(a.json, &r, || {
        println!("transfer {h}");
        println!("  status   {}", r["status"].as_str().unwrap_or("?"));
        println!("  block    {}", r["height"]);
        println!("  amount   {} to {}", units::show(a.amount), a.to);
        let fee: u128 = r["fee"].as_str().and_then(|f| f.parse().ok()).unwrap_or(0);
        println!("  fee      {} ({} gas)", units::show(fee), r["gas_used"]);
    })
}

/// Where to ask and how to print.
#[derive(Args)]
pub struct QueryOpts {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = endpoint::parse_rpc, help = RPC_HELP)]
    pub rpc: String,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum QueryCmd {
    /// Chain id, height, tip and mempool.
    Info {
        #[command(flatten)]
        o: QueryOpts,
    },
    /// An account's balance and nonce.
    Account {
        /// The account's address (hex).
        address: Address,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// A block by height (or "latest").
    Block {
        /// Block height, or "latest".
        height: String,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// A committed transaction.
    Tx {
        /// Transaction hash (hex).
        hash: Hash32,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// A transaction's receipt.
    Receipt {
        /// Transaction hash (hex).
        hash: Hash32,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// A transaction's Merkle inclusion proof against its block's tx_root
    /// (gl_getTxProof), checked here before it is printed.
    Proof {
        /// Transaction hash (hex).
        hash: Hash32,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// Events of the committed blocks FROM..=TO (gl_getEvents; at most 1,000 blocks).
    Events {
        /// First block height.
        #[arg(long)]
        from: u64,
        /// Last block height (default: FROM).
        #[arg(long)]
        to: Option<u64>,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// Call a contract's read-only view (gl_callView).
    View {
        /// Contract id (the native contracts' numbers, e.g. the CNS contract's).
        contract: u32,
        /// View method name.
        method: String,
        /// Canonical (borsh) arguments in hex; default none.
        #[arg(long, default_value = "")]
        args: String,
        #[command(flatten)]
        o: QueryOpts,
    },
    /// A contract's raw storage slot.
    State {
        /// Contract id.
        contract: u32,
        /// Storage key in hex.
        key: String,
        #[command(flatten)]
        o: QueryOpts,
    },
}

pub fn query(q: QueryCmd) -> anyhow::Result<()> {
    let (o, method, params): (QueryOpts, &str, Value) = match q {
        QueryCmd::Info { o } => (o, "gl_chainInfo", json!([])),
        QueryCmd::Account { address, o } => (o, "gl_getAccount", json!([address])),
        QueryCmd::Block { height, o } => {
            let p = if height == "latest" {
                json!(["latest"])
            } else {
                json!([height
                    .parse::<u64>()
                    .with_context(|| format!("block height {height:?} must be a number or \"latest\""))?])
            };
            (o, "gl_getBlock", p)
        }
        QueryCmd::Tx { hash, o } => (o, "gl_getTransaction", json!([hash])),
        QueryCmd::Receipt { hash, o } => (o, "gl_getReceipt", json!([hash])),
        QueryCmd::Proof { hash, o } => (o, "gl_getTxProof", json!([hash])),
        QueryCmd::Events { from, to, o } => (o, "gl_getEvents", json!([from, to.unwrap_or(from)])),
        QueryCmd::View { contract, method, args, o } => {
            hex::decode(args.trim_start_matches("0x")).with_context(|| format!("--args {args:?} is not hex"))?;
            (o, "gl_callView", json!([contract, method, args.trim_start_matches("0x")]))
        }
        QueryCmd::State { contract, key, o } => (o, "gl_getContractState", json!([contract, key])),
    };
    let c = endpoint::connect(&o.rpc)?;
    let mut v = c.call(method, params.clone()).with_context(|| format!("{method} at {}", o.rpc))?;
    // A script must tell a missing object from a found one: "not found" is
    // an error (exit 1, nothing on stdout), with or without --json.
    if v.is_null() {
        bail!("not found: {method} {params} at {} returned nothing", o.rpc);
    }
    if method == "gl_getTxProof" && !v.is_null() {
        let proof: gridledger_core::MerkleProof = serde_json::from_value(v["proof"].clone()).context("proof shape")?;
        let root = Hash32::from_hex(v["tx_root"].as_str().unwrap_or("")).context("tx_root")?;
        let hash = Hash32::from_hex(params[0].as_str().unwrap_or("")).context("hash")?;
        v["verified"] = json!(proof.verify(&hash, &root));
    }
    emit(o.json, &v, || match method {
        "gl_getAccount" => {
            let bal: u128 = v["balance"].as_str().and_then(|b| b.parse().ok()).unwrap_or(0);
            println!("balance     {}", units::show(bal));
            println!("nonce       {}", v["nonce"]);
            println!("next nonce  {} (counting pending transactions)", v["next_nonce"]);
        }
        "gl_getBlock" => {
            let h = &v["header"];
            let txs = v["transactions"].as_array().cloned().unwrap_or_default();
            println!("block       {}", h["height"]);
            println!("hash        {}", v["hash"].as_str().unwrap_or("?"));
            println!("parent      {}", h["parent"].as_str().unwrap_or("?"));
            println!("timestamp   {} ms", h["timestamp"]);
            println!("proposer    {}", h["proposer"].as_str().unwrap_or("?"));
            println!("gas used    {}", h["gas_used"]);
            println!("state root  {}", h["state_root"].as_str().unwrap_or("?"));
            println!("txs         {}", txs.len());
            for t in &txs {
                println!("  {}", t.as_str().unwrap_or("?"));
            }
        }
        "gl_chainInfo" => {
            for (k, x) in v.as_object().into_iter().flatten() {
                let list = |f: &dyn Fn(&Value) -> String| {
                    x.as_array().map(|a| a.iter().map(f).collect::<Vec<_>>().join(&format!("\n{:15}", "")))
                };
                let shown = match k.as_str() {
                    "contracts" => list(&|c| format!("{} (id {})", c["name"].as_str().unwrap_or("?"), c["id"])),
                    "validators" => list(&|v| v.as_str().map_or_else(|| v.to_string(), String::from)),
                    "timestamp" => Some(format!("{x} ms (the tip's block time)")),
                    _ => None,
                };
                println!(
                    "{k:<14} {}",
                    shown.unwrap_or_else(|| x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))
                );
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
    })
}

/// `gridledger testnet [--validators N …]` creates (and runs) a network;
/// `gridledger testnet start|stop|status --dir DIR` manages one made before.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TestnetCmd {
    #[command(subcommand)]
    pub action: Option<TestnetAction>,
    #[command(flatten)]
    pub create: TestnetArgs,
}

#[derive(Subcommand)]
pub enum TestnetAction {
    /// Run the validators of an existing network (e.g. one made with
    /// --no-start) in the foreground until Ctrl-C or SIGTERM.
    Start(TestnetDir),
    /// Stop a running network: SIGTERM to its supervisor, or to each
    /// validator; returns once every validator has exited (SIGKILL after 10 s).
    Stop(TestnetDir),
    /// Each validator's process, JSON-RPC URL and height.
    Status {
        #[command(flatten)]
        d: TestnetDir,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct TestnetDir {
    /// The network's directory (as given to `gridledger testnet --dir`).
    #[arg(long, default_value = "testnet", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args)]
pub struct TestnetArgs {
    /// Number of validators (at least 4 to tolerate one fault).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory for keys, genesis, configs, data and logs.
    #[arg(long, default_value = "testnet", value_name = "DIR")]
    pub dir: PathBuf,
    /// Funded accounts (keys written to DIR/keys), 1,000,000 coin each.
    #[arg(long, default_value_t = 4)]
    pub accounts: usize,
    /// Validator i serves JSON-RPC on RPC_PORT + i (0: each picks a free port,
    /// written to DIR/validator-i/node.url).
    #[arg(long, default_value_t = 8645)]
    pub rpc_port: u16,
    /// Validator i listens for peers on P2P_PORT + i.
    #[arg(long, default_value_t = 9645)]
    pub p2p_port: u16,
    /// Host (IP address or name) every validator binds and is reached at.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Only write the files; start them later with `gridledger testnet start`.
    #[arg(long)]
    pub no_start: bool,
    /// The validators' consensus: `pbft` (a leader per view) or `lbft` (the
    /// leaderless asynchronous BFT; its threshold keys are dealt here:
    /// DIR/lbft-public.hex and each validator's lbft.key).
    #[arg(long, value_enum, default_value_t = ConsensusArg::Pbft)]
    pub consensus: ConsensusArg,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `--consensus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsensusArg {
    Pbft,
    Lbft,
}

/// File in a network's directory holding the supervisor's process id.
const SUPERVISOR_PID_FILE: &str = "testnet.pid";

pub fn testnet(cmd: TestnetCmd) -> anyhow::Result<()> {
    match cmd.action {
        None => create_testnet(cmd.create),
        Some(TestnetAction::Start(d)) => {
            let configs = network_configs(&d.dir)?;
            configured_ports_free(&configs)?;
            supervise(&d.dir, &configs)
        }
        Some(TestnetAction::Stop(d)) => stop_testnet(&d.dir),
        Some(TestnetAction::Status { d, json }) => testnet_status(&d.dir, json),
    }
}

/// Writes a local multi-validator network and (unless `--no-start`) runs
/// each validator as its own `gridledger node` process until Ctrl-C or SIGTERM.
fn create_testnet(a: TestnetArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.validators >= 1, "need at least one validator (--validators)");
    anyhow::ensure!(
        a.validators == 1 || a.p2p_port != 0,
        "--p2p-port 0 cannot work: each validator's peers must know its address in advance"
    );
    if !a.no_start {
        check_ports(a.validators, a.rpc_port, a.p2p_port)?;
        ports_free(&a)?;
    }
    let configs = write_testnet(&a)?;
    let urls: Vec<String> = (0..a.validators)
        .map(|i| {
            if a.rpc_port == 0 {
                "(free port)".to_string()
            } else {
                format!("http://{}:{}", a.host, a.rpc_port as usize + i)
            }
        })
        .collect();
    let v = json!({
        "dir": a.dir,
        "validators": configs.iter().zip(&urls).map(|(c, u)| json!({ "config": c, "rpc": u })).collect::<Vec<_>>(),
        "accounts": a.dir.join("keys"),
    });
    emit(a.json, &v, || {
        println!("network of {} validator(s) written to {}", a.validators, a.dir.display());
        for (i, (c, u)) in configs.iter().zip(&urls).enumerate() {
            println!("  validator-{i}  {u}  {}", c.display());
        }
        println!("  funded account keys in {}", a.dir.join("keys").display());
    })?;
    if a.no_start {
        if !a.json {
            println!("start it with: gridledger testnet start --dir {}", a.dir.display());
        }
        return Ok(());
    }
    supervise(&a.dir, &configs)
}

/// Refuses, before anything is written, a network whose ports another
/// process holds (a node from `gridledger init` on 8645, another network):
/// each validator would start and exit at once.
fn ports_free(a: &TestnetArgs) -> anyhow::Result<()> {
    for i in 0..a.validators {
        for (port, what, flag) in [(a.rpc_port, "JSON-RPC", "--rpc-port"), (a.p2p_port, "peer", "--p2p-port")] {
            if port == 0 {
                continue;
            }
            let port = u16::try_from(usize::from(port) + i).unwrap_or(u16::MAX);
            if let Err(e) = std::net::TcpListener::bind((a.host.as_str(), port)) {
                bail!(
                    "validator-{i}'s {what} port {}:{port} is not free ({e}); is another node or network running? \
                     choose other ports with {flag}, or stop what holds it",
                    a.host
                );
            }
        }
    }
    Ok(())
}

/// `ports_free` for a network written before (`testnet start`): every
/// address a validator's config listens on (`rpc_listen`, `network.listen`)
/// must be free before any validator starts, or that validator would exit
/// at once and leave a degraded network running. A validator that is
/// already running is left to `supervise`, which names its pid.
fn configured_ports_free(configs: &[PathBuf]) -> anyhow::Result<()> {
    for (i, c) in configs.iter().enumerate() {
        if node_pid(c).is_some() {
            continue;
        }
        let cfg = gridledger_node::NodeConfig::load(c)?;
        let listens = std::iter::once((cfg.rpc_listen.clone(), "JSON-RPC", "rpc_listen"))
            .chain(cfg.network.as_ref().map(|n| (n.listen.clone(), "peer", "network.listen")));
        for (addr, what, key) in listens {
            if addr.rsplit_once(':').is_some_and(|(_, p)| p == "0") {
                continue;
            }
            if let Err(e) = std::net::TcpListener::bind(addr.as_str()) {
                bail!(
                    "validator-{i}'s {what} address {addr} is not free ({e}); is another node or network running? \
                     stop what holds it, or change {key} in {}; no validator was started",
                    c.display()
                );
            }
        }
    }
    Ok(())
}

/// The last line of a validator's log (why it exited, usually).
fn last_log_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string())
}

/// The validators' configs of a network directory, in index order.
fn network_configs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for i in 0.. {
        let c = dir.join(format!("validator-{i}")).join("node.toml");
        if !c.exists() {
            break;
        }
        v.push(c);
    }
    anyhow::ensure!(
        !v.is_empty(),
        "{} holds no network (no validator-0/node.toml); make one with `gridledger testnet --no-start --dir {}`",
        dir.display(),
        dir.display()
    );
    Ok(v)
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Whether a process with this id exists (and is not a zombie).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(") ").is_none_or(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// A process's arguments and working directory, from /proc.
#[cfg(target_os = "linux")]
fn process_args(pid: i32) -> Option<(Vec<String>, PathBuf)> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned());
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    Some((args.collect(), cwd))
}

/// Whether `pid` is a live gridledger process whose `subcommand` names
/// `target` through `flag` (or `default` when the flag is absent), resolved
/// against that process's working directory. A pid file outlives a process
/// killed with -9 or a reboot, and its number may since belong to anything:
/// only a process that names this network's config or directory is ours.
fn is_ours(pid: i32, subcommand: &str, flag: &str, default: Option<&str>, target: &Path) -> bool {
    if !alive(pid) {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let Some((args, cwd)) = process_args(pid) else { return false };
        let Some(exe) = args.first() else { return false };
        let named_gridledger =
            Path::new(exe).file_name().is_some_and(|n| n.to_string_lossy().starts_with("gridledger"));
        if !named_gridledger || !args.iter().skip(1).any(|a| a == subcommand) {
            return false;
        }
        let eq = format!("{flag}=");
        let value = args
            .iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
            .or_else(|| args.iter().find_map(|a| a.strip_prefix(&eq).map(String::from)))
            .or_else(|| default.map(String::from));
        let Some(value) = value else { return false };
        let named = cwd.join(value);
        match (std::fs::canonicalize(named), std::fs::canonicalize(target)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (subcommand, flag, default, target);
        true
    }
}

/// The running `testnet` supervisor of `dir`, if its pid file names one.
fn supervisor_pid(dir: &Path) -> Option<i32> {
    read_pid(&dir.join(SUPERVISOR_PID_FILE)).filter(|p| is_ours(*p, "testnet", "--dir", Some("testnet"), dir))
}

/// The running `gridledger node` of `config`, if its pid file names one.
fn node_pid(config: &Path) -> Option<i32> {
    read_pid(&crate::node_pid_file(config)).filter(|p| is_ours(*p, "node", "--config", None, config))
}

fn terminate(pid: i32) {
    // SAFETY: sends SIGTERM to a process id read from our own pid file.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Runs one `gridledger node` per config, logging to `node.log` beside
/// each; reports each validator that exits; on Ctrl-C or SIGTERM forwards
/// SIGTERM to every validator and waits for them (SIGKILL after 10 s).
fn supervise(dir: &Path, configs: &[PathBuf]) -> anyhow::Result<()> {
    let sup_pid = dir.join(SUPERVISOR_PID_FILE);
    if let Some(pid) = supervisor_pid(dir) {
        bail!("the network in {} is already running (supervisor pid {pid}); stop it with `gridledger testnet stop --dir {}`", dir.display(), dir.display());
    }
    for c in configs {
        if let Some(pid) = node_pid(c) {
            bail!("validator {} is already running (pid {pid})", c.display());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Both streams exist before any child does, so no signal is missed.
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = rt.block_on(async {
        Ok::<_, std::io::Error>((signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?))
    })?;
    crate::write_atomically(&sup_pid, &format!("{}\n", std::process::id()))?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<Option<std::process::Child>> = Vec::new();
    for c in configs {
        let log_path = c.with_file_name("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = std::process::Command::new(&exe)
            .args(["node", "--config"])
            .arg(c)
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting validator {}", c.display()))?;
        children.push(Some(child));
    }
    eprintln!(
        "{} validators running (logs in {}/validator-*/node.log); Ctrl-C or `gridledger testnet stop --dir {}` stops them",
        children.len(),
        dir.display(),
        dir.display()
    );
    let stopped_by_signal = rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            // Signals first: Ctrl-C reaches the validators too, and their
            // exits must not be mistaken for crashes.
            tokio::select! {
                biased;
                _ = int.recv() => return true,
                _ = term.recv() => return true,
                _ = tick.tick() => {}
            }
            for (i, slot) in children.iter_mut().enumerate() {
                let Some(ch) = slot else { continue };
                if let Ok(Some(status)) = ch.try_wait() {
                    let log = configs[i].with_file_name("node.log");
                    match last_log_line(&log).filter(|_| !status.success()) {
                        Some(why) => eprintln!("validator-{i} exited ({status}): {why}; see {}", log.display()),
                        None => eprintln!("validator-{i} exited ({status}); see {}", log.display()),
                    }
                    let _ = std::fs::remove_file(crate::node_pid_file(&configs[i]));
                    let _ = std::fs::remove_file(crate::node_url_file(&configs[i]));
                    *slot = None;
                }
            }
            if children.iter().all(Option::is_none) {
                return false;
            }
        }
    });
    for ch in children.iter().flatten() {
        terminate(ch.id() as i32);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for (i, slot) in children.iter_mut().enumerate() {
        let Some(ch) = slot else { continue };
        loop {
            match ch.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    eprintln!("validator-{i} did not stop within 10 s; killing it");
                    let _ = ch.kill();
                    let _ = ch.wait();
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_file(&sup_pid);
    if stopped_by_signal {
        eprintln!("network stopped");
        Ok(())
    } else {
        bail!("every validator exited; see their node.log files in {}", dir.display())
    }
}

/// How long `testnet stop` waits for the supervisor, which itself gives its
/// validators 10 s before it kills them.
const SUPERVISOR_STOP_WAIT: Duration = Duration::from_secs(15);
/// How long `testnet stop` waits for validators it signals itself.
const VALIDATOR_STOP_WAIT: Duration = Duration::from_secs(10);

/// Waits until none of `pids` is alive or `wait` has passed; returns those
/// still alive.
fn wait_exit(pids: &[i32], wait: Duration) -> Vec<i32> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops a running network and returns only once it has stopped (so
/// `testnet stop && testnet start` works): SIGTERM to the supervisor, which
/// stops its validators (SIGKILL after 10 s), waited for up to 15 s; or,
/// without a supervisor, SIGTERM to each validator, waited for up to 10 s,
/// then SIGKILL. Any validator of this network still running at the end is
/// killed, and the command fails naming it if even that did not stop it.
fn stop_testnet(dir: &Path) -> anyhow::Result<()> {
    let configs = network_configs(dir)?;
    let validators = |configs: &[PathBuf]| configs.iter().filter_map(|c| node_pid(c)).collect::<Vec<i32>>();
    if let Some(pid) = supervisor_pid(dir) {
        terminate(pid);
        eprintln!("sent SIGTERM to the supervisor (pid {pid}); waiting for it to stop the validators");
        let left = wait_exit(&[pid], SUPERVISOR_STOP_WAIT);
        anyhow::ensure!(
            left.is_empty(),
            "the supervisor (pid {pid}) of {} did not stop within {} s",
            dir.display(),
            SUPERVISOR_STOP_WAIT.as_secs()
        );
    }
    let pids = validators(&configs);
    for &pid in &pids {
        terminate(pid);
    }
    let left = wait_exit(&pids, VALIDATOR_STOP_WAIT);
    for &pid in &left {
        eprintln!("validator pid {pid} did not stop within {} s; killing it", VALIDATOR_STOP_WAIT.as_secs());
        // SAFETY: a pid that `node_pid` confirmed is this network's validator.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    let left = wait_exit(&left, Duration::from_secs(5));
    anyhow::ensure!(left.is_empty(), "validator process(es) {left:?} of {} still run after SIGKILL", dir.display());
    if !pids.is_empty() {
        eprintln!("stopped {} validator(s)", pids.len());
    }
    eprintln!("network in {} stopped", dir.display());
    Ok(())
}

fn testnet_status(dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let configs = network_configs(dir)?;
    let mut rows = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let pid = node_pid(c);
        let url = endpoint::from_chain_dir(c).ok();
        let height = match (&pid, &url) {
            (Some(_), Some(u)) => gridledger_node::RpcClient::new(u).height().ok(),
            _ => None,
        };
        rows.push(
            json!({ "validator": i, "config": c, "running": pid.is_some(), "pid": pid, "rpc": url, "height": height }),
        );
    }
    let sup = supervisor_pid(dir);
    let v = json!({ "dir": dir, "supervisor_pid": sup, "validators": rows });
    emit(as_json, &v, || {
        println!("{:<12} {:<8} {:<8} {:<28} height", "validator", "running", "pid", "rpc");
        for r in &rows {
            let s = |k: &str| {
                r[k].as_str().map(String::from).unwrap_or_else(|| {
                    if r[k].is_null() {
                        "-".into()
                    } else {
                        r[k].to_string()
                    }
                })
            };
            println!(
                "{:<12} {:<8} {:<8} {:<28} {}",
                format!("validator-{}", r["validator"]),
                s("running"),
                s("pid"),
                s("rpc"),
                s("height")
            );
        }
    })
}

/// Refuses port ranges that leave 1..=65535 or collide, before anything is
/// written: validator i takes RPC_PORT + i (unless 0: a free port each) and,
/// with more than one validator, P2P_PORT + i.
fn check_ports(validators: usize, rpc_port: u16, p2p_port: u16) -> anyhow::Result<()> {
    let last = |base: u16| u32::from(base) + validators.saturating_sub(1) as u32;
    if rpc_port != 0 && last(rpc_port) > u32::from(u16::MAX) {
        bail!(
            "--rpc-port {rpc_port} with {validators} validators needs ports up to {} (the last is 65535); choose a lower --rpc-port",
            last(rpc_port)
        );
    }
    if validators > 1 {
        if last(p2p_port) > u32::from(u16::MAX) {
            bail!(
                "--p2p-port {p2p_port} with {validators} validators needs ports up to {} (the last is 65535); choose a lower --p2p-port",
                last(p2p_port)
            );
        }
        if rpc_port != 0 && u32::from(rpc_port) <= last(p2p_port) && u32::from(p2p_port) <= last(rpc_port) {
            bail!(
                "JSON-RPC ports {rpc_port}..={} and peer ports {p2p_port}..={} overlap; choose --rpc-port and --p2p-port at least {validators} apart",
                last(rpc_port),
                last(p2p_port)
            );
        }
    }
    Ok(())
}

/// Writes genesis, keys and one config per validator; returns the configs' paths.
pub fn write_testnet(a: &TestnetArgs) -> anyhow::Result<Vec<PathBuf>> {
    check_ports(a.validators, a.rpc_port, a.p2p_port)?;
    if a.dir.join("genesis.toml").exists() {
        bail!("{} already holds a network (genesis.toml); choose another --dir", a.dir.display());
    }
    create_dir(&a.dir.join("keys"))?;
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
    let configs = write_network(&a.dir, &genesis, &validators, &a.host, a.rpc_port, a.p2p_port)?;
    if a.consensus == ConsensusArg::Lbft {
        write_lbft_keys(&a.dir, &configs, &mut rng)?;
    }
    Ok(configs)
}

/// Deals the LBFT threshold keys of a network (trusted dealer) and
/// switches its validators' configs to `consensus = "lbft"`: the public
/// key sets in DIR/lbft-public.hex, each validator's shares in its own
/// owner-only `lbft.key`.
pub fn write_lbft_keys<R: rand::RngCore + rand::CryptoRng>(
    dir: &Path,
    configs: &[PathBuf],
    rng: &mut R,
) -> anyhow::Result<()> {
    let keys = gridledger_node::lbft::deal_keys(configs.len(), rng)?;
    let public = dir.join("lbft-public.hex");
    std::fs::write(&public, &keys.public).with_context(|| format!("writing {}", public.display()))?;
    for (path, share) in configs.iter().zip(&keys.shares) {
        let vdir = path.parent().unwrap_or(Path::new("."));
        write_secret(&vdir.join("lbft.key"), share.as_bytes())?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut cfg = NodeConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        cfg.consensus = gridledger_node::config::ConsensusKind::Lbft;
        cfg.lbft.key_shares = "lbft.key".into();
        cfg.lbft.public_keys = "../lbft-public.hex".into();
        write_config(path, &cfg)?;
    }
    Ok(())
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
    create_dir(dir)?;
    std::fs::write(dir.join("genesis.toml"), toml::to_string_pretty(genesis)?)
        .with_context(|| format!("writing {}", dir.join("genesis.toml").display()))?;
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
        create_dir(&vdir)?;
        write_key(&vdir.join("validator.key"), k)?;
        let cfg = NodeConfig {
            data_dir: "data".into(),
            genesis: "../genesis.toml".into(),
            validator_key: "validator.key".into(),
            // Port 0 asks each validator to pick a free port (see node.url).
            rpc_listen: format!("{host}:{}", if rpc_port == 0 { 0 } else { rpc_port as usize + i }),
            block_interval_ms: 200,
            chain: ChainConfig::default(),
            network: (validators.len() > 1).then(|| gridledger_node::config::NetworkSection {
                listen: peers[i].address.clone(),
                peers: peers.clone(),
            }),
            pbft: gridledger_node::validator::PbftSettings::default(),
            consensus: Default::default(),
            lbft: Default::default(),
        };
        let path = vdir.join("node.toml");
        write_config(&path, &cfg)?;
        out.push(path);
    }
    Ok(out)
}
