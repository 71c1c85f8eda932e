//! A `gridledger testnet --no-start` network whose validators run as
//! separate `gridledger node` processes on listeners the test holds (see
//! [`super::handover`]): a killed validator restarts on the same ports.

use super::handover::{hand_over, Held};
use super::BIN;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::{Transaction, TxKind};
use gridledger_node::config::read_key;
use gridledger_node::RpcClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Validator processes of one test network. Each test adds its own
/// methods (submitting, agreement checks) in an `impl HeldNet` block.
pub struct HeldNet {
    pub dir: tempfile::TempDir,
    pub procs: Vec<Option<Child>>,
    pub urls: Vec<String>,
    /// Each validator's JSON-RPC and peer listeners, bound by the test for
    /// its whole run and handed to every process it starts for that
    /// validator, so a restart gets the same ports back.
    rpc: Vec<Held>,
    p2p: Vec<Held>,
}

impl HeldNet {
    /// `gridledger testnet --no-start` with `n` validators, four accounts
    /// and the flags `extra` (e.g. `--consensus lbft`); each validator's
    /// config is pointed at the held listeners, then handed to `hook`
    /// (validator index, validator directory, config) for the test's own
    /// settings, and every validator is started.
    pub fn new(n: usize, extra: &[&str], hook: impl Fn(usize, &Path, &mut toml::Table)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rpc: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        let p2p: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        // The ports given here are placeholders (two ranges that do not
        // overlap, as testnet requires): the configs are rewritten below
        // with the addresses of the held listeners.
        let out = Command::new(BIN)
            .args(["testnet", "--no-start"])
            .args(extra)
            .args(["--validators", &n.to_string(), "--accounts", "4"])
            .args(["--rpc-port", "1", "--p2p-port", "101", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let urls = rpc.iter().map(|l| format!("http://{}", l.addr())).collect();
        let mut net = HeldNet { dir, procs: (0..n).map(|_| None).collect(), urls, rpc, p2p };
        for i in 0..n {
            net.point_config_at_held_listeners(i, &hook);
        }
        for i in 0..n {
            net.start(i);
        }
        net
    }

    /// Rewrites validator `i`'s config with the held listeners' addresses:
    /// its RPC and peer listen addresses and every peer's address; then
    /// `hook` adds the test's own settings.
    fn point_config_at_held_listeners(&self, i: usize, hook: &impl Fn(usize, &Path, &mut toml::Table)) {
        let path = self.config(i);
        let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        cfg.insert("rpc_listen".into(), self.rpc[i].addr().to_string().into());
        let net = cfg.get_mut("network").and_then(|v| v.as_table_mut()).expect("[network] section");
        net.insert("listen".into(), self.p2p[i].addr().to_string().into());
        for peer in net.get_mut("peers").and_then(|v| v.as_array_mut()).expect("peers") {
            let peer = peer.as_table_mut().expect("peer table");
            let j = peer["index"].as_integer().expect("peer index") as usize;
            peer.insert("address".into(), self.p2p[j].addr().to_string().into());
        }
        hook(i, &self.validator_dir(i), &mut cfg);
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    }

    pub fn validator_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("validator-{i}"))
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.validator_dir(i).join("node.toml")
    }

    /// Starts validator `i` on its held listeners (stderr appended to its
    /// `node.log`) and waits until it answers `/health`.
    pub fn start(&mut self, i: usize) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.validator_dir(i).join("node.log")).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["node", "--config"]).arg(self.config(i)).env("RUST_LOG", "warn").stdout(Stdio::null()).stderr(log);
        hand_over(&mut cmd, gridledger_node::listen::RPC_FD, &self.rpc[i]);
        hand_over(&mut cmd, gridledger_node::listen::P2P_FD, &self.p2p[i]);
        self.procs[i] = Some(cmd.spawn().unwrap());
        let c = RpcClient::new(&self.urls[i]);
        let t = Instant::now();
        while c.get_text("/health").is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "validator {i} did not come up: {}", self.log(i));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Validator `i`'s `node.log` so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.validator_dir(i).join("node.log")).unwrap_or_default()
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Sends signal `sig` (e.g. `-STOP`) to validator `i`.
    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.procs[i].as_ref().unwrap().id();
        assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
    }

    pub fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.urls[i])
    }

    pub fn height(&self, i: usize) -> u64 {
        self.client(i).height().unwrap()
    }

    /// Sends `count` transfers of 1 from account `acct` to account `to` through validator `via`.
    pub fn submit(&self, via: usize, acct: usize, to: usize, count: u64) -> Vec<Hash32> {
        let key = read_key(&self.dir.path().join(format!("keys/account-{acct}.key"))).unwrap();
        let dest = read_key(&self.dir.path().join(format!("keys/account-{to}.key"))).unwrap();
        let c = self.client(via);
        let nonce = c.next_nonce(&key.address()).unwrap();
        let txs: Vec<_> = (0..count)
            .map(|j| {
                Transaction {
                    chain_id: 1,
                    sender: key.public(),
                    nonce: nonce + j,
                    gas_limit: 21_000,
                    gas_price: Amount(1),
                    kind: TxKind::Transfer { to: dest.address(), amount: Amount(1) },
                }
                .sign(&key)
            })
            .collect();
        c.send_many(&txs).unwrap().into_iter().map(|r| r.unwrap()).collect()
    }

    /// Waits until every validator of `on` holds a receipt for each of
    /// `hashes`, failing after `within` with the heights and its log.
    pub fn wait_committed(&self, on: &[usize], hashes: &[Hash32], within: Duration) {
        let t = Instant::now();
        for &i in on {
            let c = self.client(i);
            for h in hashes {
                while c.receipt(h).unwrap().is_none() {
                    assert!(
                        t.elapsed() < within,
                        "validator {i} did not commit {h}; heights {:?}\n{}",
                        self.heights(on),
                        self.log(i)
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    pub fn heights(&self, on: &[usize]) -> Vec<u64> {
        on.iter().map(|&i| self.height(i)).collect()
    }
}

impl Drop for HeldNet {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            // A stopped (partitioned) validator is resumed first.
            if let Some(c) = self.procs[i].as_mut() {
                let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            }
            self.kill(i);
        }
    }
}
