//! Attacks on the newcomer channel flow (issue 17): the README's own chain,
//! then `channel prepare` as a new user would type it.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_file(p: &Path, child: &mut Child) -> String {
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

/// `gridledger init` on a free loopback port, then `gridledger node`.
fn own_chain(root: &Path) -> (PathBuf, Procs) {
    let dir = root.join("mychain");
    gl_ok(&["init", "--dir", &d(&dir), "--accounts", "4", "--listen", "127.0.0.1:0"]);
    let mut node = Command::new(BIN)
        .args(["node", "--config"])
        .arg(dir.join("node.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_file(&dir.join("node.url"), &mut node);
    (dir, Procs(vec![node]))
}

fn with_pw(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("GRIDLEDGER_PASSWORD", "pw")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .output()
        .unwrap()
}

/// The issue: "today keys are plaintext hex and party.json copies the
/// account secret". With both sides' keys in encrypted keystores,
/// `channel prepare` still writes each account's secret as plaintext hex
/// into `party.json` (and the ESC/MSC secrets beside it): the keystore
/// protects nothing once a channel is prepared.
#[test]
fn party_json_does_not_copy_a_keystore_secret_in_plaintext() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node) = own_chain(root.path());
    let keys = dir.join("keys");
    let mut ks = Vec::new();
    let mut secrets = Vec::new();
    for i in [1, 2] {
        let plain = keys.join(format!("account-{i}.key"));
        secrets.push(std::fs::read_to_string(&plain).unwrap().trim().to_string());
        let k = root.path().join(format!("k{i}.json"));
        let o = with_pw(&["keys", "import", "--from", &d(&plain), "--out", &d(&k)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::remove_file(&plain).unwrap(); // as `keys import` advises
        ks.push(k);
    }
    let (p1, p2) = (root.path().join("p1"), root.path().join("p2"));
    let o = with_pw(&[
        "channel",
        "prepare",
        "--rpc",
        &d(&dir),
        "--merchant-key",
        &d(&keys.join("account-0.key")),
        "--desk-key",
        &d(&root.path().join("desk.key")),
        "--keys",
        &d(&ks[0]),
        &d(&ks[1]),
        "--dirs",
        &d(&p1),
        &d(&p2),
    ]);
    assert!(o.status.success(), "prepare: {}", String::from_utf8_lossy(&o.stderr));
    for (p, s) in [(&p1, &secrets[0]), (&p2, &secrets[1])] {
        let text = std::fs::read_to_string(p.join("party.json")).unwrap();
        assert!(!text.contains(s.as_str()), "{} holds the keystore's account secret in plaintext", p.display());
    }
}

/// `--dirs p p`: both sides are written to the same directory, side 1's
/// party.json silently replacing side 0's (side 0's keys are lost, the
/// on-chain channel is funded). Expected: refused before anything is sent.
#[test]
fn prepare_refuses_the_same_dir_for_both_sides() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node) = own_chain(root.path());
    let keys = dir.join("keys");
    let p = root.path().join("p");
    let o = gl(&[
        "channel",
        "prepare",
        "--rpc",
        &d(&dir),
        "--merchant-key",
        &d(&keys.join("account-0.key")),
        "--desk-key",
        &d(&root.path().join("desk.key")),
        "--keys",
        &d(&keys.join("account-1.key")),
        &d(&keys.join("account-2.key")),
        "--dirs",
        &d(&p),
        &d(&p),
    ]);
    let side = std::fs::read_to_string(p.join("party.json")).unwrap_or_default();
    assert!(!o.status.success(), "--dirs p p accepted; the one party.json left: side {}", {
        serde_json::from_str::<serde_json::Value>(&side).map(|v| v["side"].clone()).unwrap_or_default()
    });
}

/// `query tx|receipt|proof` of a hash the chain does not hold print "not
/// found" (and `null` under --json) with exit status 0: a script cannot
/// tell a missing transaction from a found one. Expected: a non-zero exit.
#[test]
fn query_of_an_unknown_hash_fails() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node) = own_chain(root.path());
    let unknown = format!("0x{}", "00".repeat(32));
    for what in ["tx", "receipt", "proof"] {
        let o = gl(&["query", what, &unknown, "--rpc", &d(&dir)]);
        assert!(
            !o.status.success(),
            "`query {what} <unknown>` exits 0 with stdout {:?}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}
