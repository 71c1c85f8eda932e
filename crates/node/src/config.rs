//! Node configuration (TOML).

use gridledger_core::crypto::KeyPair;
use gridledger_ledger::{ChainConfig, Genesis};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a config was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0}")]
    Syntax(String),
    #[error("unknown key `{key}`{}{} (every key is listed in docs/node.toml)",
        if table.is_empty() { String::new() } else { format!(" in [{table}]") },
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey { table: String, key: String, suggestion: Option<String> },
}

fn reference_value() -> toml::Value {
    toml::Value::try_from(NodeConfig::reference()).expect("the reference config serialises")
}

/// Refuses keys of `v` that `reference` (same shape) lacks.
fn check_keys(v: &toml::Value, reference: &toml::Value, table: &str) -> Result<(), ConfigError> {
    match (v, reference) {
        (toml::Value::Table(t), toml::Value::Table(r)) => {
            for (k, sub) in t {
                let Some(rsub) = r.get(k) else {
                    let suggestion =
                        r.keys().filter_map(|known| near(k, known).map(|d| (d, known))).min().map(|x| x.1.clone());
                    return Err(ConfigError::UnknownKey { table: table.to_string(), key: k.clone(), suggestion });
                };
                let path = if table.is_empty() { k.clone() } else { format!("{table}.{k}") };
                check_keys(sub, rsub, &path)?;
            }
            Ok(())
        }
        (toml::Value::Array(a), toml::Value::Array(r)) => match r.first() {
            Some(r0) => a.iter().try_for_each(|x| check_keys(x, r0, table)),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Edit distance between `a` and `b` if small enough to be a typo, or 0
/// when one is a prefix of the other (`block_interval` / `block_interval_ms`).
fn near(a: &str, b: &str) -> Option<usize> {
    if b.starts_with(a) || a.starts_with(b) {
        return Some(0);
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    let d = prev[b.len()];
    (d <= 3).then_some(d)
}

/// A node's config file. Every key, its unit and default is described in
/// the commented reference `docs/node.toml`; unknown keys are refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Where the chain database lives. Relative paths are taken from the
    /// config file's directory.
    pub data_dir: PathBuf,
    /// The genesis file (TOML).
    pub genesis: PathBuf,
    /// This validator's secret key file (hex).
    pub validator_key: PathBuf,
    /// HTTP listen address for JSON-RPC, events and metrics.
    #[serde(default = "default_listen")]
    pub rpc_listen: String,
    /// Longest wait before pending transactions are put in a block.
    #[serde(default = "default_interval")]
    pub block_interval_ms: u64,
    #[serde(default)]
    pub chain: ChainConfig,
    /// Peer-to-peer links; required when the genesis has several validators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSection>,
    #[serde(default)]
    pub pbft: crate::validator::PbftSettings,
    /// Which consensus a multi-validator chain runs: `pbft` (the default)
    /// or `lbft` (the leaderless asynchronous BFT, settings in `[lbft]`).
    #[serde(default)]
    pub consensus: ConsensusKind,
    #[serde(default)]
    pub lbft: crate::lbft::LbftSettings,
}

/// The consensus engine of a multi-validator chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusKind {
    /// The improved PBFT (thesis §3.3.2): a leader per view.
    #[default]
    Pbft,
    /// The leaderless asynchronous BFT (thesis Ch.4, P^ABC).
    Lbft,
}

/// Where this validator listens for its peers and where they are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkSection {
    pub listen: String,
    /// Every validator of the genesis (this one included), by index.
    pub peers: Vec<PeerEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerEntry {
    pub index: u32,
    pub public_key: gridledger_core::PublicKey,
    pub address: String,
}

fn default_listen() -> String {
    "127.0.0.1:8645".into()
}

fn default_interval() -> u64 {
    200
}

impl NodeConfig {
    /// Reads a config, resolving relative paths against its directory.
    /// Unknown keys are refused (a typo such as `rpc_listn` would otherwise
    /// start the node on the default address), naming the key, its table
    /// and the nearest known key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("reading {}: {e} (write one with `gridledger init --dir DIR`)", path.display())
        })?;
        let c = Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(c.resolved(path.parent().unwrap_or(Path::new("."))))
    }

    /// Parses a config's text strictly (see [`NodeConfig::load`]); paths stay
    /// as written.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        check_keys(&value, &reference_value(), "")?;
        value.try_into().map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))
    }

    fn resolved(mut self, base: &Path) -> Self {
        for p in [
            &mut self.data_dir,
            &mut self.genesis,
            &mut self.validator_key,
            &mut self.lbft.key_shares,
            &mut self.lbft.public_keys,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        self
    }

    /// A config with every optional section present: the set of keys a
    /// config may use.
    pub fn reference() -> Self {
        let public = KeyPair::from_secret_bytes([1; 32]).expect("constant key").public();
        NodeConfig {
            data_dir: "data".into(),
            genesis: "genesis.toml".into(),
            validator_key: "validator.key".into(),
            rpc_listen: default_listen(),
            block_interval_ms: default_interval(),
            chain: ChainConfig::default(),
            network: Some(NetworkSection {
                listen: "127.0.0.1:9645".into(),
                peers: vec![PeerEntry { index: 0, public_key: public, address: "127.0.0.1:9645".into() }],
            }),
            pbft: crate::validator::PbftSettings::default(),
            consensus: ConsensusKind::Pbft,
            lbft: crate::lbft::LbftSettings::default(),
        }
    }

    pub fn load_genesis(&self) -> anyhow::Result<Genesis> {
        let text = std::fs::read_to_string(&self.genesis)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", self.genesis.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", self.genesis.display()))
    }

    pub fn load_key(&self) -> anyhow::Result<KeyPair> {
        read_key(&self.validator_key)
    }
}

/// Reads a secret key file: plaintext hex, or an encrypted keystore
/// (password from `GRIDLEDGER_PASSWORD_FILE` or `GRIDLEDGER_PASSWORD`).
pub fn read_key(path: &Path) -> anyhow::Result<KeyPair> {
    let text = read_key_text(path)?;
    if crate::keystore::is_keystore(&text) {
        return crate::keystore::open_with_env(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .map_err(|_| anyhow::anyhow!("{} is not a hex key", path.display()))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
    KeyPair::from_secret_bytes(arr).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A key file's text, read with a bound (`keystore::MAX_FILE_BYTES`): a key
/// file is under 1 KiB, so a path pointing at a large file (or a device)
/// gets a typed error instead of being read whole into memory.
pub fn read_key_text(path: &Path) -> anyhow::Result<zeroize::Zeroizing<String>> {
    use std::io::Read;
    let max = crate::keystore::MAX_FILE_BYTES;
    let f = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("reading key file {}: {e}", path.display()))?;
    let mut text = zeroize::Zeroizing::new(String::new());
    f.take(max as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("reading key file {}: {e}", path.display()))?;
    anyhow::ensure!(text.len() <= max, "{} is larger than {max} bytes: not a key file", path.display());
    Ok(text)
}

/// Writes a hex secret key file readable only by its owner.
pub fn write_key(path: &Path, key: &KeyPair) -> anyhow::Result<()> {
    write_secret(path, (hex::encode(key.secret_bytes()) + "\n").as_bytes())
}

/// Writes a file readable only by its owner (created with mode 0600, so the
/// secret is never readable by others, even briefly); errors name the path.
pub fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let hint = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !p.exists() => format!(" (directory {} does not exist)", p.display()),
        _ => String::new(),
    };
    let mut f = o.open(path).map_err(|e| anyhow::anyhow!("writing key file {}: {e}{hint}", path.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("writing key file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| anyhow::anyhow!("restricting {} to its owner: {e}", path.display()))?;
    }
    Ok(())
}
