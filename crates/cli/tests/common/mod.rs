//! Helpers shared by the multi-process CLI tests of the credit-note system.
#![allow(dead_code)]

use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_key, dev_validator};
use gridledger_node::channel::chainlink::balance;
use gridledger_node::config::write_key;
use gridledger_node::{NodeHandle, RpcClient};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod bounded;
pub mod handover;
pub mod held_net;
pub mod ior;
pub mod lbft_log;
pub mod xchain;

pub const BIN: &str = env!("CARGO_BIN_EXE_gridledger");
pub const BAL: Amount = Amount(1_000_000_000_000);

/// Kills its processes when dropped (a failing test leaves none behind).
pub struct Procs(pub Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn gl(args: &[&str]) -> Output {
    bin().args(args).output().expect("run gridledger")
}

/// The home the tests' `gridledger` processes keep their locks in
/// (`GRIDLEDGER_TEST_LOCK_HOME`): the day's lock of `ior day --rpc` goes
/// below it, never into the real home directory of the machine.
pub fn lock_home() -> PathBuf {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lock-home");
    std::fs::create_dir_all(&home).expect("create the tests' lock home");
    home
}

/// `gridledger` with the tests' lock home ([`lock_home`]).
pub fn bin() -> Command {
    let mut c = Command::new(BIN);
    c.env("GRIDLEDGER_TEST_LOCK_HOME", lock_home());
    c
}

/// Runs `gridledger`, asserts success, returns its stdout.
pub fn gl_ok(args: &[&str]) -> String {
    let o = gl(args);
    assert!(o.status.success(), "gridledger {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `gridledger`, asserts success, parses its stdout as JSON.
pub fn gl_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&gl_ok(args)).expect("JSON on stdout")
}

pub fn d(p: &Path) -> String {
    p.display().to_string()
}

/// Every coin of the four development accounts, the validator and the CNS contract.
pub fn total(c: &RpcClient) -> u128 {
    let mut v: Vec<Address> = (0..4).map(|i| dev_key(i).address()).collect();
    v.push(dev_validator(0).address());
    v.push(gridledger_ledger::contract_address(gridledger_contracts::CNS_ID));
    v.iter().map(|a| balance(c, a).unwrap()).sum()
}

/// Waits until the party in `dir` reports an open channel.
pub fn wait_open(dir: &Path) {
    let t = Instant::now();
    loop {
        let o = gl(&["channel", "status", "--json", "--dir", &d(dir)]);
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("\"phase\":\"Open\"") {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "party in {} never open", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A single-validator development node in `root/node` (four funded
/// accounts, a block every 20 ms) and the key files `root/k{i}.key` of
/// development accounts `0..keys`. Returns the node and its URL.
pub fn dev_node(root: &Path, keys: usize) -> (NodeHandle, String) {
    let node = gridledger_node::channel::devnode::start(&root.join("node"), 4, BAL, 20).unwrap();
    for i in 0..keys {
        write_key(&root.join(format!("k{i}.key")), &dev_key(i)).unwrap();
    }
    let url = node.url();
    (node, url)
}

/// `gridledger channel prepare` between the accounts of `keys`, writing
/// `dirs`, with the merchant's account and desk key files; `extra` flags
/// follow. Run it with [`run_ok`] or `.output()`.
pub fn prepare_cmd(
    rpc: &str,
    merchant: &Path,
    desk: &Path,
    keys: [&Path; 2],
    dirs: [&Path; 2],
    extra: &[&str],
) -> Command {
    let mut c = Command::new(BIN);
    c.args(["channel", "prepare", "--rpc", rpc, "--merchant-key"]).arg(merchant).arg("--desk-key").arg(desk);
    c.arg("--keys").args(keys).arg("--dirs").args(dirs).args(extra);
    c
}

/// Runs `cmd`, asserts success, returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run gridledger");
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `gridledger channel open` of the party in `dir`, output discarded.
pub fn open_cmd(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(["channel", "open", "--dir"]).arg(dir).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// Opens both parties (side 1 first, then side 0), each its own process
/// with `env` set, and waits until both report the channel open.
pub fn open_both(dirs: [&Path; 2], env: &[(&str, &str)]) -> Procs {
    let spawn = |dir: &Path| open_cmd(dir).envs(env.iter().copied()).spawn().expect("spawn channel open");
    let procs = Procs(vec![spawn(dirs[1]), spawn(dirs[0])]);
    wait_open(dirs[0]);
    wait_open(dirs[1]);
    procs
}

/// A development node in a fresh temporary directory (see [`dev_node`],
/// keys `k0..k2`) and a channel prepared on it between development accounts
/// 1 and 2 with account 0 as the merchant, the parties' directories named
/// `names` inside it; `extra` flags go to `channel prepare`. Returns the
/// directory, the node, its URL and the parties' directories.
pub fn prepared_channel(names: [&str; 2], extra: &[&str]) -> (tempfile::TempDir, NodeHandle, String, [PathBuf; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (node, url) = dev_node(root, 3);
    let (k, dirs) = (|i: usize| root.join(format!("k{i}.key")), names.map(|n| root.join(n)));
    run_ok(&mut prepare_cmd(&url, &k(0), &root.join("desk.key"), [&k(1), &k(2)], [&dirs[0], &dirs[1]], extra));
    (dir, node, url, dirs)
}

/// A loopback port nothing listens on (bound to port 0, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for a file a process writes when ready (its readiness signal:
/// `node.url`, `node.pid`), complete once it ends in a newline; fails at
/// once if the process exits first.
pub fn wait_file(p: &Path, child: &mut Child) -> String {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if s.ends_with('\n') {
                return s.trim().to_string();
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("process exited ({st}) before writing {}", p.display());
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{} never written", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` runs (a zombie still answers kill(0); /proc says
/// whether it is one).
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The README's own chain: `gridledger init` in `root/mychain` with
/// `accounts` funded accounts (keys in `mychain/keys/account-i.key`) on a
/// free port, then `gridledger node`, ready once it wrote `node.url`.
/// Returns the chain directory, the node process (killed on drop) and its URL.
pub fn own_chain(root: &Path, accounts: usize) -> (PathBuf, Procs, String) {
    let dir = root.join("mychain");
    gl_ok(&["init", "--dir", &d(&dir), "--accounts", &accounts.to_string(), "--listen", "127.0.0.1:0"]);
    let mut node = Command::new(BIN)
        .args(["node", "--config"])
        .arg(dir.join("node.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gridledger node");
    let url = wait_file(&dir.join("node.url"), &mut node);
    (dir, Procs(vec![node]), url)
}

/// `gridledger testnet start` of the network in `net` (stderr as given),
/// ready once validator-0 wrote its pid and URL; returns the supervisor,
/// validator-0's pid and its URL.
pub fn start_testnet(net: &Path, stderr: Stdio) -> (Child, i32, String) {
    let mut sup = Command::new(BIN)
        .args(["testnet", "start", "--dir", &d(net)])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn gridledger testnet start");
    let v0 = net.join("validator-0");
    let pid = wait_file(&v0.join("node.pid"), &mut sup).parse().expect("pid in node.pid");
    let url = wait_file(&v0.join("node.url"), &mut sup);
    (sup, pid, url)
}

/// `n` consecutive free loopback ports (checked by binding each).
pub fn free_run(n: u16, avoid: std::ops::Range<u16>) -> u16 {
    loop {
        let base = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if base > 65_000 || (avoid.start <= base + n && base <= avoid.end) {
            continue;
        }
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
}

/// `gridledger testnet --no-start` of four validators in `net`, their
/// JSON-RPC ports from `rpc` on (0: each picks a free port when it starts)
/// and their peer ports on a run of four free loopback ports beside them.
pub fn four_validator_testnet(net: &Path, rpc: u16) {
    let p2p = free_run(4, rpc..rpc + 4);
    gl_ok(&[
        "testnet",
        "--no-start",
        "--validators",
        "4",
        "--dir",
        &d(net),
        "--rpc-port",
        &rpc.to_string(),
        "--p2p-port",
        &p2p.to_string(),
    ]);
}

/// A command's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How many JSON documents `text` holds (None if it is not a sequence of
/// JSON documents at all).
pub fn json_docs(text: &str) -> Option<usize> {
    let mut n = 0;
    for v in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        v.ok()?;
        n += 1;
    }
    Some(n)
}

/// Starts `channel serve` over `dirs` with its control port on a free
/// loopback port and the token written to `token_file`; returns the process
/// and the control address it announced on stderr (the rest of stderr is
/// drained on a thread).
pub fn serve_with_control(dirs: &[&Path], token_file: &Path, stdout: Stdio) -> (Child, String) {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(BIN);
    cmd.args(["channel", "serve"]);
    for dir in dirs {
        cmd.args(["--dir", &d(dir)]);
    }
    let mut serve = cmd
        .args(["--control", "127.0.0.1:0", "--token-file", &d(token_file)])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(serve.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "serve ended before its control port was up");
        if let Some(rest) = line.strip_prefix("control port on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in err.lines() {});
    (serve, addr)
}
