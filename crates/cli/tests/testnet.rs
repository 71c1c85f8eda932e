//! Validators as separate OS processes over real authenticated, encrypted
//! links on loopback (`gridledger testnet` + `gridledger node`): normal
//! commit, f crashed, the next leader killed mid-round, a killed validator
//! restarted and caught up, and a partition (SIGSTOP) healed (SIGCONT).

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

struct Net {
    dir: tempfile::TempDir,
    procs: Vec<Option<Child>>,
    urls: Vec<String>,
    /// Each validator's JSON-RPC and peer listeners, bound by the test for
    /// its whole run and handed to every process it starts for that
    /// validator, so a restart gets the same ports back.
    rpc: Vec<Held>,
    p2p: Vec<Held>,
}

impl Net {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rpc: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        let p2p: Vec<Held> = (0..n).map(|_| Held::bind()).collect();
        // The ports given here are placeholders (two ranges that do not
        // overlap, as testnet requires): the configs are rewritten below
        // with the addresses of the held listeners.
        let out = Command::new(BIN)
            .args(["testnet", "--no-start", "--validators", &n.to_string(), "--accounts", "4"])
            .args(["--rpc-port", "1", "--p2p-port", "101", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let urls = rpc.iter().map(|l| format!("http://{}", l.addr())).collect();
        let mut net = Net { dir, procs: (0..n).map(|_| None).collect(), urls, rpc, p2p };
        for i in 0..n {
            net.point_config_at_held_listeners(i);
        }
        for i in 0..n {
            net.start(i);
        }
        net
    }

    /// Rewrites validator `i`'s config with the held listeners' addresses:
    /// its RPC and peer listen addresses and every peer's address.
    fn point_config_at_held_listeners(&self, i: usize) {
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
        let child = cmd.spawn().unwrap();
        self.procs[i] = Some(child);
        let c = RpcClient::new(&self.urls[i]);
        let t = Instant::now();
        while c.get_text("/health").is_err() {
            assert!(t.elapsed() < Duration::from_secs(30), "validator {i} did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn signal(&self, i: usize, sig: &str) {
        let pid = self.procs[i].as_ref().unwrap().id();
        assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
    }

    fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.urls[i])
    }

    fn height(&self, i: usize) -> u64 {
        self.client(i).height().unwrap()
    }

    /// Sends `count` transfers from account `acct` through validator `via`.
    fn submit(&self, via: usize, acct: usize, count: u64) -> Vec<Hash32> {
        let key = read_key(&self.dir.path().join(format!("keys/account-{acct}.key"))).unwrap();
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
                    kind: TxKind::Transfer { to: key.address(), amount: Amount(1) },
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
                loop {
                    if c.receipt(h).unwrap().is_some() {
                        break;
                    }
                    assert!(t.elapsed() < within, "validator {i} did not commit {h}; heights {:?}", self.heights(on));
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn heights(&self, on: &[usize]) -> Vec<u64> {
        on.iter().map(|&i| self.height(i)).collect()
    }

    /// Same block hash at every height up to the lowest tip among `on`.
    fn assert_agree(&self, on: &[usize]) {
        let top = self.heights(on).into_iter().min().unwrap();
        assert!(top > 0);
        for h in 1..=top {
            let hashes: Vec<_> =
                on.iter().map(|&i| self.client(i).call("gl_getBlock", json!([h])).unwrap()["hash"].clone()).collect();
            assert!(hashes.windows(2).all(|w| w[0] == w[1]), "fork at height {h}: {hashes:?}");
        }
    }

    /// Index of the validator that proposed block `h`.
    fn proposer(&self, via: usize, h: u64) -> usize {
        let b = self.client(via).call("gl_getBlock", json!([h])).unwrap();
        let pk = b["header"]["proposer"].as_str().unwrap().to_string();
        (0..self.procs.len())
            .find(|&i| {
                let k = read_key(&self.dir.path().join(format!("validator-{i}/validator.key"))).unwrap();
                k.public().to_string() == pk
            })
            .unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if let Some(c) = self.procs[i].as_mut() {
                let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
            }
            self.kill(i);
        }
    }
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[test]
fn four_processes_commit_survive_crashes_and_heal_partitions() {
    let mut net = Net::new(4);
    let t = Duration::from_secs(60);
    // Normal commit on every validator.
    let a = net.submit(0, 0, 30);
    net.wait_committed(&all(4), &a, t);
    net.assert_agree(&all(4));

    // The next leader is killed mid-round: the rest change view and commit.
    let tip = net.height(0);
    let next_leader = (net.proposer(0, tip) + 1) % 4;
    let via = (next_leader + 1) % 4;
    let b = net.submit(via, 1, 20);
    net.kill(next_leader);
    let live: Vec<usize> = (0..4).filter(|&i| i != next_leader).collect();
    net.wait_committed(&live, &b, t);
    net.assert_agree(&live);

    // f = 1 crashed: still committing.
    let c = net.submit(live[0], 2, 20);
    net.wait_committed(&live, &c, t);

    // The killed validator restarts from disk and catches up.
    net.start(next_leader);
    let d = net.submit(live[1], 3, 10);
    net.wait_committed(&all(4), &[a.clone(), b, c, d].concat(), t);
    net.assert_agree(&all(4));

    // Partition one validator away (stopped), commit without it, then heal.
    net.signal(live[2], "-STOP");
    let others: Vec<usize> = (0..4).filter(|&i| i != live[2]).collect();
    let e = net.submit(others[0], 0, 10);
    net.wait_committed(&others, &e, t);
    net.signal(live[2], "-CONT");
    let f = net.submit(others[1], 1, 10);
    net.wait_committed(&all(4), &[e, f].concat(), t);
    net.assert_agree(&all(4));
}

#[test]
fn seven_processes_commit_with_two_crashed() {
    let mut net = Net::new(7);
    let t = Duration::from_secs(60);
    let a = net.submit(0, 0, 20);
    net.wait_committed(&all(7), &a, t);
    net.kill(3);
    net.kill(6);
    let live = vec![0, 1, 2, 4, 5];
    let b = net.submit(1, 1, 20);
    net.wait_committed(&live, &b, t);
    net.assert_agree(&live);
}
