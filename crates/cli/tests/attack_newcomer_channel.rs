//! Attacks on the newcomer channel flow (issue 17): the README's own chain,
//! then `channel prepare` as a new user would type it.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn with_pw(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("GRIDLEDGER_PASSWORD", "pw")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .output()
        .unwrap()
}

/// `channel prepare` on the chain in `dir` (merchant: its account 0) between
/// the accounts of `keys`, with the keystore password in the environment.
fn prepare_with_pw(dir: &Path, root: &Path, keys: [&Path; 2], dirs: [&Path; 2]) {
    let merchant = dir.join("keys").join("account-0.key");
    let mut cmd = prepare_cmd(&d(dir), &merchant, &root.join("desk.key"), keys, dirs, &[]);
    run_ok(cmd.env("GRIDLEDGER_PASSWORD", "pw").env_remove("GRIDLEDGER_PASSWORD_FILE"));
}

/// The issue: "today keys are plaintext hex and party.json copies the
/// account secret". With both sides' keys in encrypted keystores,
/// `channel prepare` still writes each account's secret as plaintext hex
/// into `party.json` (and the ESC/MSC secrets beside it): the keystore
/// protects nothing once a channel is prepared.
#[test]
fn party_json_does_not_copy_a_keystore_secret_in_plaintext() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _) = own_chain(root.path(), 4);
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
    prepare_with_pw(&dir, root.path(), [&ks[0], &ks[1]], [&p1, &p2]);
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
    let (dir, _node, _) = own_chain(root.path(), 4);
    let keys = dir.join("keys");
    let p = root.path().join("p");
    let (k1, k2) = (keys.join("account-1.key"), keys.join("account-2.key"));
    let o =
        prepare_cmd(&d(&dir), &keys.join("account-0.key"), &root.path().join("desk.key"), [&k1, &k2], [&p, &p], &[])
            .output()
            .unwrap();
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
    let (dir, _node, _) = own_chain(root.path(), 4);
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

/// The fix for the plaintext copy: a party whose account is a keystore
/// still opens, pays and closes (its keys come out of the keystore and the
/// sealed ESC key with the password); party.json is 0600 in a 0700
/// directory; without the password the party does not start.
#[test]
fn a_sealed_party_opens_pays_and_closes_with_its_password() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _) = own_chain(root.path(), 4);
    let keys = dir.join("keys");
    let mut ks = Vec::new();
    for i in [1, 2] {
        let k = root.path().join(format!("k{i}.json"));
        let plain = keys.join(format!("account-{i}.key"));
        let o = with_pw(&["keys", "import", "--from", &d(&plain), "--out", &d(&k)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ks.push(k);
    }
    let (p1, p2) = (root.path().join("p1"), root.path().join("p2"));
    prepare_with_pw(&dir, root.path(), [&ks[0], &ks[1]], [&p1, &p2]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p1.join("party.json")), 0o600);
        assert_eq!(mode(&p1), 0o700);
    }
    // No password: refused with a message, before any network activity.
    let o = Command::new(BIN)
        .args(["channel", "open", "--dir", &d(&p2)])
        .env_remove("GRIDLEDGER_PASSWORD")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("GRIDLEDGER_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _procs = open_both([&p1, &p2], &[("GRIDLEDGER_PASSWORD", "pw")]);
    let pay = gl_json(&["channel", "pay", "--json", "--dir", &d(&p1), "--energy", "1000", "--price", "200"]);
    assert_eq!(pay["result"], "done", "{pay}");
    assert!(pay["counter"].as_u64().is_some_and(|c| c > 0), "{pay}");
    gl_ok(&["channel", "close", "--dir", &d(&p1)]);
}

/// Low-priority findings, each refused before anything is written or sent:
/// `init --listen nonsense`, `transfer --amount 0`; `query block` prints a
/// summary (not JSON) without --json and one JSON document with it; a
/// channel price in coin decimals is accepted (parsed like other amounts).
#[test]
fn listen_zero_amount_block_summary_and_coin_prices() {
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("bad");
    let o = gl(&["init", "--dir", &d(&bad), "--listen", "nonsense"]);
    assert!(!o.status.success(), "--listen nonsense accepted");
    assert!(String::from_utf8_lossy(&o.stderr).contains("HOST:PORT"));
    assert!(!bad.join("node.toml").exists(), "a refused init wrote files");
    for (i, ok) in ["localhost:0", "[::1]:0", "127.0.0.1:0"].into_iter().enumerate() {
        let dir = root.path().join(format!("ok{i}"));
        gl_ok(&["init", "--dir", &d(&dir), "--listen", ok]);
    }
    let (dir, _node, _) = own_chain(root.path(), 4);
    let key = dir.join("keys").join("account-0.key");
    let to = gl_json(&["keys", "show", "--key", &d(&dir.join("keys").join("account-1.key")), "--json"]);
    let to = to["address"].as_str().unwrap().to_string();
    let before = gl_json(&["query", "account", &to, "--rpc", &d(&dir), "--json"]);
    let o = gl(&["transfer", "--rpc", &d(&dir), "--key", &d(&key), "--to", &to, "--amount", "0"]);
    assert!(!o.status.success(), "--amount 0 accepted");
    assert_eq!(gl_json(&["query", "account", &to, "--rpc", &d(&dir), "--json"]), before, "nothing changed");
    let human = gl_ok(&["query", "block", "latest", "--rpc", &d(&dir)]);
    assert!(serde_json::from_str::<serde_json::Value>(&human).is_err(), "human output is JSON: {human}");
    assert!(human.contains("block") && human.contains("hash"), "{human}");
    let v = gl_json(&["query", "block", "latest", "--rpc", &d(&dir), "--json"]);
    assert!(v["hash"].is_string(), "{v}");
    // A price in coin: parsed (refused later only because no party runs in this dir).
    let o = gl(&["channel", "pay", "--dir", &d(root.path()), "--energy", "1000", "--price", "0.0002"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("party.json"), "{e}");
    let o = gl(&["channel", "pay", "--dir", &d(root.path()), "--energy", "1", "--price", "0.0002"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("must pay something") && e.contains("coin"), "{e}");
}
