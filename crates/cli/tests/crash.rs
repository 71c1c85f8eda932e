//! `kill -9` a node process mid-load, restart it, and check that nothing
//! committed was lost and the state is consistent — three times over.
//! Also exercises `gridledger init`, `node`, `keys`, `transfer` and `query`.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::{Transaction, TxKind};
use gridledger_node::config::read_key;
use gridledger_node::RpcClient;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");
const ACCOUNTS: usize = 4;
const BALANCE: u128 = 1_000_000_000_000;

mod common;
use common::handover::{hand_over, Held};

/// Starts the node on the test's own listener: every restart serves on the
/// same port, which no other process can take in between.
fn start_node(dir: &Path, rpc: &Held) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args(["node", "--config"]).arg(dir.join("node.toml")).stdout(Stdio::null()).stderr(Stdio::null());
    hand_over(&mut cmd, gridledger_node::listen::RPC_FD, rpc);
    cmd.spawn().unwrap()
}

fn wait_up(c: &RpcClient) {
    let t = Instant::now();
    while c.get_text("/health").is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "node did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_nine_mid_load_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = Held::bind();
    let out = Command::new(BIN)
        .args(["init", "--accounts", &ACCOUNTS.to_string(), "--balance", &BALANCE.to_string(), "--listen"])
        .arg(rpc.addr().to_string())
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Refuses to overwrite an existing chain.
    let again = Command::new(BIN).args(["init", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success());

    let keys: Vec<_> =
        (0..ACCOUNTS).map(|i| read_key(&dir.path().join("keys").join(format!("account-{i}.key"))).unwrap()).collect();
    let validator = read_key(&dir.path().join("validator.key")).unwrap();
    let url = format!("http://{}", rpc.addr());
    let client = RpcClient::new(&url);
    // Receipts seen by clients before each crash: tx hash -> block height.
    let seen: Arc<Mutex<HashMap<Hash32, u64>>> = Arc::default();

    for round in 0..3u64 {
        let mut node = start_node(dir.path(), &rpc);
        wait_up(&client);
        let before = seen.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = keys
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, k)| {
                let (stop, seen, url) = (stop.clone(), seen.clone(), url.clone());
                let to = keys[(i + 1) % ACCOUNTS].address();
                std::thread::spawn(move || {
                    let c = RpcClient::new(&url);
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(nonce) = c.next_nonce(&k.address()) else {
                            break;
                        };
                        let batch: Vec<_> = (0..20)
                            .map(|j| {
                                Transaction {
                                    chain_id: 1,
                                    sender: k.public(),
                                    nonce: nonce + j,
                                    gas_limit: 21_000,
                                    gas_price: Amount(1),
                                    kind: TxKind::Transfer { to, amount: Amount(1 + j as u128) },
                                }
                                .sign(&k)
                            })
                            .collect();
                        let Ok(res) = c.send_many(&batch) else { break };
                        for h in res.into_iter().flatten() {
                            // Transactions pending in a killed node's mempool are
                            // gone; do not wait out each of them once stopped.
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            if let Ok(r) = c.wait_receipt(&h, Duration::from_secs(5)) {
                                seen.lock().unwrap().insert(h, r["height"].as_u64().unwrap());
                            }
                        }
                    }
                })
            })
            .collect();
        // Let load run until clients hold receipts for a round-dependent
        // number of new commits (on-chain evidence, not a wall-clock guess),
        // then kill without warning while the load goes on.
        let want = before + 40 + 40 * round as usize;
        let t = Instant::now();
        while seen.lock().unwrap().len() < want {
            assert!(t.elapsed() < Duration::from_secs(120), "round {round}: load stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        node.kill().unwrap(); // SIGKILL
        node.wait().unwrap();
        let seen_at_kill = seen.lock().unwrap().clone();
        assert!(seen_at_kill.len() >= want, "round {round}: load committed too little");

        // Restart at once on the same (held) port: the node must open (its
        // state root check passes). Client requests that reached the port
        // while no process served it wait in its queue and are answered by
        // the new process; then the load stops.
        let mut node = start_node(dir.path(), &rpc);
        wait_up(&client);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            let _ = w.join();
        }
        // Every transaction a client saw committed, before the crash or
        // after the restart, is still there at the same height.
        let height = client.height().unwrap();
        let seen_now = seen.lock().unwrap().clone();
        assert!(seen_at_kill.iter().all(|(h, at)| seen_now.get(h) == Some(at)));
        let max_seen = seen_now.values().copied().max().unwrap();
        assert!(height >= max_seen, "round {round}: height {height} < committed {max_seen}");
        for (h, at) in &seen_now {
            let r = client.receipt(h).unwrap().unwrap_or_else(|| panic!("lost committed tx {h}"));
            assert_eq!(r["height"].as_u64(), Some(*at));
        }
        let mut total: u128 = 0;
        for k in keys.iter().chain(std::iter::once(&validator)) {
            total += client.account(&k.address()).unwrap()["balance"].as_str().unwrap().parse::<u128>().unwrap();
        }
        assert_eq!(total, BALANCE * ACCOUNTS as u128, "round {round}: supply not conserved");
        node.kill().unwrap();
        node.wait().unwrap();
    }
}

#[test]
fn cli_transfer_and_query_against_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = Held::bind();
    let ok = Command::new(BIN)
        .args(["init", "--accounts", "2", "--listen"])
        .arg(rpc.addr().to_string())
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(ok.status.success());
    let mut node = start_node(dir.path(), &rpc);
    let url = format!("http://{}", rpc.addr());
    wait_up(&RpcClient::new(&url));
    let newkey = dir.path().join("new.key");
    let k = Command::new(BIN).args(["keys", "new", "--out"]).arg(&newkey).output().unwrap();
    assert!(k.status.success());
    let shown: serde_json::Value = serde_json::from_slice(
        &Command::new(BIN).args(["keys", "show", "--json", "--key"]).arg(&newkey).output().unwrap().stdout,
    )
    .unwrap();
    let addr = shown["address"].as_str().unwrap().to_string();
    let t = Command::new(BIN)
        .args(["transfer", "--rpc", &url, "--key"])
        .arg(dir.path().join("keys/account-0.key"))
        .args(["--to", &addr, "--amount", "1234", "--json"])
        .output()
        .unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    let receipt: serde_json::Value = serde_json::from_slice(&t.stdout).unwrap();
    assert_eq!(receipt["status"], "success");
    let q = Command::new(BIN).args(["query", "account", &addr, "--json", "--rpc", &url]).output().unwrap();
    let acct: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    assert_eq!(acct["balance"], "1234");
    // Overspending is refused with the node's typed error.
    let t = Command::new(BIN)
        .args(["transfer", "--rpc", &url, "--key"])
        .arg(&newkey)
        .args(["--to", &addr, "--amount", "999999"])
        .output()
        .unwrap();
    assert!(!t.status.success());
    assert!(String::from_utf8_lossy(&t.stderr).contains("insufficient balance"));
    node.kill().unwrap();
    node.wait().unwrap();
}

/// With `rpc_listen` on port 0 the kernel picks the port, and `gridledger
/// node` reports it: the line it prints once it serves is the readiness
/// signal, and the address in it answers.
#[test]
fn a_node_on_port_zero_reports_the_port_it_bound() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new(BIN)
        .args(["init", "--accounts", "1", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let mut node = Command::new(BIN)
        .args(["node", "--config"])
        .arg(dir.path().join("node.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(node.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("node exited before reporting its address").unwrap();
        if let Some(url) = line.strip_prefix("gridledger node serving JSON-RPC on ") {
            break url.trim().to_string();
        }
    };
    // Keep draining the node's log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "reported {url}");
    let c = RpcClient::new(&url);
    assert!(c.get_text("/health").is_ok(), "nothing answers at the reported {url}");
    assert_eq!(c.height().unwrap(), 0);
    node.kill().unwrap();
    node.wait().unwrap();
}
