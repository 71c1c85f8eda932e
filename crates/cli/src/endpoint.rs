//! Where a client command finds its node: one default for every command,
//! `--rpc` taking a URL, `HOST:PORT`, or a chain directory / `node.toml`
//! (then the running node's own `node.url`, else the config's
//! `rpc_listen`), and errors that name the URL tried and the flag to fix it.

use anyhow::Context;
use gridledger_node::RpcClient;
use std::path::Path;

/// The JSON-RPC address every client command uses unless told otherwise;
/// `gridledger init` and `gridledger node` listen here by default.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:8645";

/// Help text shared by every `--rpc` flag.
pub const RPC_HELP: &str =
    "The node's JSON-RPC endpoint: a URL, HOST:PORT, or a chain directory (or its node.toml) whose running node is used";

/// clap value parser for `--rpc`: returns a URL with a scheme.
pub fn parse_rpc(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty --rpc; give a URL such as http://127.0.0.1:8645 or a chain directory".into());
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        return Ok(s.trim_end_matches('/').to_string());
    }
    let p = Path::new(s);
    if p.exists() {
        return from_chain_dir(p);
    }
    if looks_like_host_port(s) {
        return Ok(format!("http://{s}"));
    }
    Err(format!("{s:?} is neither a URL (http://HOST:PORT), HOST:PORT, nor an existing chain directory or node.toml"))
}

/// An `--rpc` value that also remembers the chain directory it named, if
/// it named one (`ior day --rpc` keeps its journal there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcTarget {
    /// The node's URL, as [`parse_rpc`] returns it.
    pub url: String,
    /// The chain directory given (a `node.toml`'s directory), if any.
    pub dir: Option<std::path::PathBuf>,
}

impl std::fmt::Display for RpcTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// clap value parser for an `--rpc` whose chain directory matters:
/// [`parse_rpc`], keeping the directory.
pub fn parse_rpc_target(s: &str) -> Result<RpcTarget, String> {
    let url = parse_rpc(s)?;
    let t = s.trim();
    let p = Path::new(t);
    let dir = if t.starts_with("http://") || t.starts_with("https://") || !p.exists() {
        None
    } else if p.is_dir() {
        Some(p.to_path_buf())
    } else {
        Some(p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf())
    };
    Ok(RpcTarget { url, dir })
}

fn looks_like_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The URL of the node configured in `p` (a directory holding `node.toml`,
/// or the `node.toml` itself): the address the running node wrote to
/// `node.url`, else the config's `rpc_listen`. The URL file belongs to the
/// config named (`b.toml` → `b.url`): another config's node in the same
/// directory never answers for it.
pub fn from_chain_dir(p: &Path) -> Result<String, String> {
    let config = if p.is_dir() { p.join("node.toml") } else { p.to_path_buf() };
    if let Ok(url) = std::fs::read_to_string(crate::node_url_file(&config)) {
        let url = url.trim();
        if !url.is_empty() {
            return Ok(url.to_string());
        }
    }
    let cfg = gridledger_node::NodeConfig::load(&config).map_err(|e| format!("{e:#}"))?;
    listen_to_url(&cfg.rpc_listen).map_err(|e| {
        format!(
            "{e} (in {}; is the node running? it writes {} while it runs)",
            config.display(),
            crate::node_url_file(&config).display()
        )
    })
}

/// A connectable URL for a listen address (`0.0.0.0` becomes loopback).
pub fn listen_to_url(listen: &str) -> Result<String, String> {
    let (host, port) = listen.rsplit_once(':').ok_or_else(|| format!("rpc_listen {listen:?} is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("rpc_listen {listen:?} has no valid port"))?;
    if port == 0 {
        return Err(format!("rpc_listen {listen:?} picks a free port at start"));
    }
    let host = match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    Ok(format!("http://{host}:{port}"))
}

/// Connects to the node at `url`, checking that it answers; the error
/// names the URL and how to point the command elsewhere.
pub fn connect(url: &str) -> anyhow::Result<RpcClient> {
    let c = RpcClient::new(url);
    probe_client(&c)?;
    Ok(c)
}

/// Checks that a node answers at `url` before a command writes anything.
pub fn probe(url: &str) -> anyhow::Result<()> {
    probe_client(&RpcClient::new(url))
}

fn probe_client(c: &RpcClient) -> anyhow::Result<()> {
    c.call("gl_chainInfo", serde_json::json!([])).with_context(|| {
        format!(
            "no gridledger node answers at {} (start one with `gridledger node --config DIR/node.toml`, \
             or pass --rpc URL | HOST:PORT | CHAIN_DIR)",
            c.url()
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_forms() {
        assert_eq!(parse_rpc("127.0.0.1:18845").unwrap(), "http://127.0.0.1:18845");
        assert_eq!(parse_rpc("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(parse_rpc("localhost:8645").unwrap(), "http://localhost:8645");
        assert!(parse_rpc("no-such-dir").unwrap_err().contains("no-such-dir"));
        assert!(parse_rpc("").is_err());
        assert_eq!(listen_to_url("0.0.0.0:8645").unwrap(), "http://127.0.0.1:8645");
        assert!(listen_to_url("127.0.0.1:0").is_err());
    }

    #[test]
    fn chain_dir_prefers_the_running_nodes_url() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("node.toml"),
            "data_dir = \"data\"\ngenesis = \"genesis.toml\"\nvalidator_key = \"validator.key\"\nrpc_listen = \"0.0.0.0:9000\"\n",
        )
        .unwrap();
        assert_eq!(parse_rpc(&d.path().display().to_string()).unwrap(), "http://127.0.0.1:9000");
        std::fs::write(d.path().join("node.url"), "http://127.0.0.1:41234\n").unwrap();
        assert_eq!(parse_rpc(&d.path().join("node.toml").display().to_string()).unwrap(), "http://127.0.0.1:41234");
    }
}
