//! `gridledger testnet --consensus lbft`: four validators as separate OS
//! processes run the leaderless BFT over real links on loopback. They
//! deliver submitted transfers into the same blocks; a validator killed
//! with SIGKILL while the others run more epochs than anyone keeps in
//! memory restarts, catches up from its peers' stores and holds the same
//! blocks. Progress is read from the chain (receipts, heights, block
//! hashes), never from sleeps.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::{Transaction, TxKind};
use gridledger_node::config::read_key;
use gridledger_node::RpcClient;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

mod handover;
use handover::{hand_over, Held};

/// Delivered epochs each validator keeps in memory in this test (the
/// default is 64): a validator down for more epochs than this is served
/// from its peers' stores.
const RETAIN: i64 = 4;

struct Net {
    dir: tempfile::TempDir,
    procs: Vec<Option<Child>>,
    urls: Vec<String>,
    rpc: Vec<Held>,
    p2p: Vec<Held>,
}

impl Net {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rpc: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        let p2p: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        let out = Command::new(BIN)
            .args(["testnet", "--no-start", "--consensus", "lbft", "--validators", &n.to_string()])
            .args(["--accounts", "4", "--rpc-port", "1", "--p2p-port", "101", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.path().join("lbft-public.hex").exists());
        let urls = rpc.iter().map(|l| format!("http://{}", l.addr())).collect();
        let mut net = Net { dir, procs: (0..n).map(|_| None).collect(), urls, rpc, p2p };
        for i in 0..n {
            net.rewrite_config(i);
        }
        for i in 0..n {
            net.start(i);
        }
        net
    }

    /// The held listeners' addresses, and a small in-memory epoch window.
    fn rewrite_config(&self, i: usize) {
        let path = self.config(i);
        let mut cfg: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
        assert_eq!(cfg["consensus"].as_str(), Some("lbft"), "testnet --consensus lbft writes it");
        assert!(self.dir.path().join(format!("validator-{i}/lbft.key")).exists());
        cfg.insert("rpc_listen".into(), self.rpc[i].addr().to_string().into());
        let lbft = cfg.get_mut("lbft").and_then(|v| v.as_table_mut()).expect("[lbft] section");
        lbft.insert("retain_epochs".into(), RETAIN.into());
        let net = cfg.get_mut("network").and_then(|v| v.as_table_mut()).expect("[network] section");
        net.insert("listen".into(), self.p2p[i].addr().to_string().into());
        for peer in net.get_mut("peers").and_then(|v| v.as_array_mut()).expect("peers") {
            let peer = peer.as_table_mut().expect("peer table");
            let j = peer["index"].as_integer().expect("peer index") as usize;
            peer.insert("address".into(), self.p2p[j].addr().to_string().into());
        }
        std::fs::write(&path, toml::to_string(&cfg).unwrap()).unwrap();
    }

    fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("validator-{i}")).join("node.toml")
    }

    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("validator-{i}/node.log")))
            .unwrap();
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

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("validator-{i}/node.log"))).unwrap_or_default()
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.urls[i])
    }

    fn height(&self, i: usize) -> u64 {
        self.client(i).height().unwrap()
    }

    /// Sends `count` transfers of 1 from account `acct` to account `to` through validator `via`.
    fn submit(&self, via: usize, acct: usize, to: usize, count: u64) -> Vec<Hash32> {
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

    fn wait_committed(&self, on: &[usize], hashes: &[Hash32], within: Duration) {
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

    fn heights(&self, on: &[usize]) -> Vec<u64> {
        on.iter().map(|&i| self.height(i)).collect()
    }

    /// Every validator of `on` holds the same block at every height up to
    /// the highest tip, and the same tip.
    fn assert_same_chain(&self, on: &[usize]) {
        let heights = self.heights(on);
        assert!(heights.windows(2).all(|w| w[0] == w[1]), "tips differ: {heights:?}");
        for h in 1..=heights[0] {
            let blocks: Vec<_> = on.iter().map(|&i| self.client(i).call("gl_getBlock", json!([h])).unwrap()).collect();
            let hashes: Vec<_> = blocks.iter().map(|b| b["hash"].clone()).collect();
            assert!(hashes.windows(2).all(|w| w[0] == w[1]), "fork at height {h}: {hashes:?}");
            assert_eq!(blocks[0]["seal"]["type"], "epoch", "an LBFT block: {}", blocks[0]);
        }
    }

    fn metric(&self, i: usize, name: &str) -> u64 {
        let text = self.client(i).get_text("/metrics").unwrap();
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
    }
}

#[test]
fn four_lbft_processes_agree_and_a_killed_validator_catches_up_from_stores() {
    let mut net = Net::new(4);
    let all = [0, 1, 2, 3];
    let t = Duration::from_secs(90);
    // Transfers submitted through different validators are delivered by all.
    let mut hashes = net.submit(0, 0, 1, 3);
    hashes.extend(net.submit(2, 1, 2, 2));
    net.wait_committed(&all, &hashes, t);
    net.assert_same_chain(&all);
    let before = net.height(0);
    assert!(before >= 1);

    // SIGKILL validator 3; the other three (n − f) keep delivering, one
    // epoch (at least) per round, well beyond what peers keep in memory.
    net.kill(3);
    let live = [0, 1, 2];
    let rounds = 3 * RETAIN as usize;
    let mut later = Vec::new();
    for r in 0..rounds {
        let h = net.submit(r % 3, r % 3, (r + 1) % 3, 1);
        net.wait_committed(&live, &h, t);
        later.extend(h);
    }
    assert!(net.height(0) >= before + rounds as u64, "one block per round at least");

    // Restarted from its store, it catches up (from the peers' stores:
    // the epochs it missed left their memory) and holds the same chain.
    net.start(3);
    net.wait_committed(&[3], &later, t);
    let fresh = net.submit(3, 3, 0, 2);
    net.wait_committed(&all, &fresh, t);
    let t0 = Instant::now();
    while net.heights(&all).windows(2).any(|w| w[0] != w[1]) {
        assert!(t0.elapsed() < t, "tips differ: {:?}", net.heights(&all));
        std::thread::sleep(Duration::from_millis(20));
    }
    net.assert_same_chain(&all);
    let served: u64 = live.iter().map(|&i| net.metric(i, "gridledger_pbft_catch_up_from_store_total")).sum();
    assert!(served > 0, "catch-up beyond the in-memory window came from the stores");
}
