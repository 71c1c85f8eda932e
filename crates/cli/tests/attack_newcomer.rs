//! Attacks on the newcomer work (issue 17), from a new user's side: each
//! test asserts the behaviour a careful user would expect and fails on the
//! code it was written against.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A process that is not part of any gridledger network.
struct Bystander(Child);

impl Bystander {
    fn spawn() -> Self {
        Bystander(Command::new("sleep").arg("300").spawn().expect("spawn sleep"))
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A one-validator network's files, written with `--no-start`.
fn network(root: &Path) -> PathBuf {
    let dir = root.join("net");
    gl_ok(&["testnet", "--no-start", "--validators", "1", "--accounts", "1", "--rpc-port", "0", "--dir", &d(&dir)]);
    dir
}

/// A stale `testnet.pid` (the supervisor was killed with -9, or the machine
/// rebooted) whose number now belongs to an unrelated process: `testnet
/// stop` must not send that process SIGTERM. It checks only that *some*
/// process has the id (`kill(pid, 0)`), not that it is the supervisor.
#[test]
fn testnet_stop_does_not_signal_an_unrelated_process_with_a_stale_pid() {
    let root = tempfile::tempdir().unwrap();
    let dir = network(root.path());
    let mut bystander = Bystander::spawn();
    std::fs::write(dir.join("testnet.pid"), format!("{}\n", bystander.pid())).unwrap();
    let _ = gl(&["testnet", "stop", "--dir", &d(&dir)]);
    // Reap-free check: give a SIGTERM (if one was sent) time to land.
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) && bystander.alive() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(bystander.alive(), "`testnet stop` killed pid {} (a `sleep`, not the supervisor)", bystander.pid());
}

/// Same with a validator's stale `node.pid`: `testnet stop` signals it and
/// `testnet status` reports the validator as running.
#[test]
fn testnet_status_and_stop_trust_a_stale_node_pid() {
    let root = tempfile::tempdir().unwrap();
    let dir = network(root.path());
    let mut bystander = Bystander::spawn();
    std::fs::write(dir.join("validator-0").join("node.pid"), format!("{}\n", bystander.pid())).unwrap();
    let st = gl_json(&["testnet", "status", "--dir", &d(&dir), "--json"]);
    assert_eq!(
        st["validators"][0]["running"],
        false,
        "status says validator-0 runs, as pid {} (a `sleep`): {st}",
        bystander.pid()
    );
    let _ = gl(&["testnet", "stop", "--dir", &d(&dir)]);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(500) && bystander.alive() {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(bystander.alive(), "`testnet stop` killed pid {} (a `sleep`, not a validator)", bystander.pid());
}

/// `--rpc-port 65534 --validators 4` writes configs with ports 65536 and
/// 65537 (computed in usize, never checked): the network is written and
/// only fails when started. Expected: refused up front, nothing written.
#[test]
fn testnet_ports_past_65535_are_refused_before_writing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("net");
    let o = gl(&["testnet", "--no-start", "--validators", "4", "--rpc-port", "65534", "--dir", &d(&dir)]);
    let written = std::fs::read_to_string(dir.join("validator-3").join("node.toml")).unwrap_or_default();
    assert!(!o.status.success(), "accepted; validator-3/node.toml:\n{written}");
    assert!(!dir.join("genesis.toml").exists(), "a refused testnet left files behind");
}

/// RPC and peer port ranges that overlap (`--rpc-port 30000 --p2p-port
/// 30002 --validators 4`: validator 2's JSON-RPC and validator 0's peer
/// link on the same port) are written without complaint.
#[test]
fn testnet_overlapping_port_ranges_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("net");
    let o = gl(&[
        "testnet",
        "--no-start",
        "--validators",
        "4",
        "--rpc-port",
        "30000",
        "--p2p-port",
        "30002",
        "--dir",
        &d(&dir),
    ]);
    assert!(!o.status.success(), "overlapping RPC 30000..30003 and P2P 30002..30005 accepted");
    assert!(!dir.join("genesis.toml").exists());
}

/// Writes an encrypted keystore with password `pw` and returns its path.
fn keystore(root: &Path) -> PathBuf {
    let k = root.join("k.json");
    let o = Command::new(BIN)
        .args(["keys", "new", "--encrypt", "--out", &d(&k)])
        .env("GRIDLEDGER_PASSWORD", "pw")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    k
}

/// Runs `keys export` on `ks`; the process must end (typed error, exit 1)
/// within a generous bound, not abort or run for hours.
fn export_must_refuse(root: &Path, ks: &Path, what: &str) {
    let out = root.join(format!("plain-{what}.key"));
    let mut child = Command::new(BIN)
        .args(["keys", "export", "--key", &d(ks), "--out", &d(&out)])
        .env("GRIDLEDGER_PASSWORD", "pw")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: `keys export` still deriving after 60 s (tampered KDF parameters are not bounded)");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{what}: ended by {:?}; stderr: {}", o.status, stderr(&o));
    assert!(!out.exists());
}

/// A tampered (or hostile, handed-over) keystore sets `kdf.log_n = 40`:
/// scrypt then asks for 2^50 bytes and the process aborts ("memory
/// allocation failed", SIGABRT) instead of answering with a typed error.
/// Expected: KDF parameters outside a sane range are refused before deriving.
#[test]
fn keystore_with_huge_scrypt_n_is_refused_not_aborted() {
    let root = tempfile::tempdir().unwrap();
    let ks = keystore(root.path());
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ks).unwrap()).unwrap();
    v["kdf"]["log_n"] = 40.into();
    std::fs::write(&ks, v.to_string()).unwrap();
    export_must_refuse(root.path(), &ks, "log_n=40");
}

/// `kdf.p = 4096` passes scrypt's own checks and makes every open run 4096
/// scrypt rounds (hours in a debug build, minutes in release): one edited
/// number hangs any command that reads the key.
#[test]
fn keystore_with_huge_scrypt_p_is_refused_quickly() {
    let root = tempfile::tempdir().unwrap();
    let ks = keystore(root.path());
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ks).unwrap()).unwrap();
    v["kdf"]["p"] = 4096.into();
    std::fs::write(&ks, v.to_string()).unwrap();
    export_must_refuse(root.path(), &ks, "p=4096");
}

/// `keys show` prints the address a keystore stores in the clear, yet it
/// asks for the password (fails without one).
#[test]
fn keys_show_on_a_keystore_needs_no_password() {
    let root = tempfile::tempdir().unwrap();
    let ks = keystore(root.path());
    let o = Command::new(BIN)
        .args(["keys", "show", "--key", &d(&ks), "--json"])
        .env_remove("GRIDLEDGER_PASSWORD")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "keys show needs the password for a public address: {}", stderr(&o));
}

/// The README: "any client command: … --json prints one JSON document";
/// issue 17 item 8: "human tables otherwise". The `cns` and `channel`
/// client commands refuse `--json` ("unexpected argument") and print
/// one-line JSON unconditionally instead of a human summary.
#[test]
fn every_client_command_takes_json() {
    let mut missing = Vec::new();
    for cmd in [
        &["channel", "prepare"][..],
        &["channel", "pay"],
        &["channel", "close"],
        &["channel", "status"],
        &["cns", "status"],
        &["cns", "init"],
        &["cns", "pay"],
        &["cns", "bill"],
    ] {
        let help = gl_ok(&[cmd, &["--help"]].concat());
        if !help.contains("--json") {
            missing.push(cmd.join(" "));
        }
    }
    assert!(missing.is_empty(), "no --json on: {missing:?}");
}
