//! Node configuration (TOML).

use gridledger_core::crypto::KeyPair;
use gridledger_ledger::{ChainConfig, Genesis};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let mut c: NodeConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.data_dir, &mut c.genesis, &mut c.validator_key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
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

/// Reads a hex secret key file.
pub fn read_key(path: &Path) -> anyhow::Result<KeyPair> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let bytes = hex::decode(text.trim().trim_start_matches("0x"))
        .map_err(|_| anyhow::anyhow!("{} is not a hex key", path.display()))?;
    let arr: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()))?;
    Ok(KeyPair::from_secret_bytes(arr)?)
}

/// Writes a hex secret key file readable only by its owner.
pub fn write_key(path: &Path, key: &KeyPair) -> anyhow::Result<()> {
    std::fs::write(path, hex::encode(key.secret_bytes()) + "\n")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
