//! A newcomer's first hour (issue 17): one default RPC address that a
//! chain directory can stand in for, errors naming what was tried, strict
//! configs, a testnet that forwards SIGTERM and reports exits, no panics on
//! arguments or closed pipes, readable units, a CNS flow that refuses to
//! lock collateral twice, and one JSON document per command.

mod common;

use common::*;
use gridledger_ledger::devnet::dev_key;
use gridledger_node::config::write_key;
use gridledger_node::RpcClient;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Defect 1: every client command has the same default endpoint, the one
/// `init` and `node` use.
#[test]
fn one_default_rpc_for_every_command() {
    for cmd in [
        &["transfer", "--help"][..],
        &["query", "info", "--help"],
        &["cns", "status", "--help"],
        &["cns", "init", "--help"],
        &["channel", "prepare", "--help"],
    ] {
        let help = gl_ok(cmd);
        assert!(help.contains("http://127.0.0.1:8645"), "{cmd:?} default:\n{help}");
        assert!(!help.contains("8545"), "{cmd:?} still mentions 8545");
    }
    let init = gl_ok(&["init", "--help"]);
    assert!(init.contains("127.0.0.1:8645"));
}

/// Defect 1: `--rpc CHAIN_DIR` finds the running node through its node.url,
/// and a failed `channel prepare` leaves no desk key behind.
#[test]
fn chain_dir_as_rpc_and_no_half_made_desk_key() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, url) = own_chain(root.path(), 2);
    let info = gl_json(&["query", "info", "--rpc", &d(&dir), "--json"]);
    assert_eq!(info["chain_id"], 1);
    // The summary names the contracts (not their JSON) and the clock's unit.
    let human = gl_ok(&["query", "info", "--rpc", &d(&dir)]);
    assert!(human.contains("token (id 1)") && human.contains("cns (id 3)") && !human.contains('{'), "{human}");
    assert!(human.contains(" ms (the tip's block time)"), "{human}");
    let st = gl_json(&["cns", "status", "--json", "--rpc", &d(&dir.join("node.toml"))]);
    assert!(st["mscs"].as_array().unwrap().is_empty());
    assert!(url.starts_with("http://127.0.0.1:"));

    let desk = root.path().join("desk.key");
    let k = |i: usize| {
        let p = root.path().join(format!("k{i}.key"));
        write_key(&p, &dev_key(i)).unwrap();
        d(&p)
    };
    let (k0, k1, k2) = (k(0), k(1), k(2));
    let dead = format!("127.0.0.1:{}", closed_port());
    let o = gl(&[
        "channel",
        "prepare",
        "--rpc",
        &dead,
        "--merchant-key",
        &k0,
        "--desk-key",
        &d(&desk),
        "--keys",
        &k1,
        &k2,
        "--dirs",
        &d(&root.path().join("a")),
        &d(&root.path().join("b")),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains(&format!("http://{dead}")) && e.contains("--rpc"), "{e}");
    assert!(!desk.exists(), "a failed prepare wrote {}", desk.display());
}

/// Defect 2: errors name the URL, path or flag they failed on, once.
#[test]
fn errors_say_what_was_tried() {
    let root = tempfile::tempdir().unwrap();
    let port = closed_port();
    let o = gl(&["query", "info", "--rpc", &format!("127.0.0.1:{port}")]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&format!("http://127.0.0.1:{port}")) && e.contains("--rpc"), "{e}");
    assert!(!e.contains("invalid format"), "{e}");

    let nodir = root.path().join("nodir");
    let o = gl(&["channel", "open", "--dir", &d(&nodir)]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&d(&nodir)) && e.contains("channel prepare"), "{e}");
    assert_eq!(e.matches("os error").count().max(1), 1, "{e}");

    let key = root.path().join("missing").join("a.key");
    let o = gl(&["keys", "new", "--out", &d(&key)]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&d(&key)) && e.contains("does not exist"), "{e}");
    assert!(!key.exists());
    // No duplicated cause in any of them.
    let o = gl(&["node", "--config", &d(&root.path().join("none.toml"))]);
    let e = stderr(&o);
    assert!(e.contains("none.toml") && e.contains("gridledger init"), "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
}

/// Defect 3: unknown config keys are refused, naming the key and the
/// nearest known one; the node does not start.
#[test]
fn config_typos_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("c");
    gl_ok(&["init", "--dir", &d(&dir), "--accounts", "1", "--listen", "127.0.0.1:0"]);
    let config = dir.join("node.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    for (typo, want) in [
        ("rpc_listn = \"127.0.0.1:0\"\n", "rpc_listen"),
        ("block_interval = 500\n", "block_interval_ms"),
        ("[chain]\nmax_block_tx = 5\n", "max_block_txs"),
    ] {
        let text = if typo.starts_with('[') { good.replace("[chain]\n", typo) } else { format!("{typo}{good}") };
        std::fs::write(&config, text).unwrap();
        // Readiness, not time: either the node exits, or it writes node.url
        // (it started despite the typo, which fails the test).
        let mut node = Command::new(BIN)
            .args(["node", "--config", &d(&config)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while node.try_wait().unwrap().is_none() {
            if dir.join("node.url").exists() {
                let _ = node.kill();
                let _ = node.wait();
                panic!("the node started with {typo:?} in its config");
            }
            assert!(t.elapsed() < Duration::from_secs(30), "node neither started nor exited");
            std::thread::sleep(Duration::from_millis(20));
        }
        let o = node.wait_with_output().unwrap();
        let e = stderr(&o);
        assert!(!o.status.success(), "{typo} accepted");
        let key = typo.trim_start_matches("[chain]\n").split(' ').next().unwrap();
        assert!(e.contains(&format!("unknown key `{key}`")) && e.contains(want), "{typo}: {e}");
        assert!(e.contains(&d(&config)), "{e}");
    }
}

/// Defect 3: the commented reference config lists every key and is itself
/// a valid config.
#[test]
fn reference_config_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/node.toml");
    let text = std::fs::read_to_string(&path).expect("docs/node.toml");
    gridledger_node::NodeConfig::parse(&text).expect("docs/node.toml is a valid config");
    let reference = toml::Value::try_from(gridledger_node::NodeConfig::reference()).unwrap();
    fn keys(v: &toml::Value, out: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    out.push(k.clone());
                    keys(x, out);
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    keys(&reference, &mut all);
    for k in all {
        assert!(
            text.contains(&format!("{k} =")) || text.contains(&format!("[{k}]")) || text.contains(&format!(".{k}]")),
            "docs/node.toml does not document `{k}`"
        );
    }
}

/// Defect 4: SIGTERM to `testnet` stops its validators (none orphaned);
/// a validator that dies is reported; start/stop/status work on a network
/// made with --no-start; logs carry no colour codes.
#[test]
fn testnet_forwards_sigterm_reports_exits_and_is_managed() {
    let root = tempfile::tempdir().unwrap();
    let net = root.path().join("net");
    gl_ok(&["testnet", "--no-start", "--validators", "1", "--rpc-port", "0", "--dir", &d(&net)]);
    let v0 = net.join("validator-0");

    // start + status + stop.
    let (sup, pid, url) = start_testnet(&net, Stdio::piped());
    let st = gl_json(&["testnet", "status", "--dir", &d(&net), "--json"]);
    assert_eq!(st["validators"][0]["running"], true);
    assert_eq!(st["validators"][0]["rpc"], url.as_str());
    assert!(st["validators"][0]["height"].is_u64());
    let o = gl(&["testnet", "start", "--dir", &d(&net)]);
    assert!(!o.status.success() && stderr(&o).contains("already running"), "{}", stderr(&o));
    gl_ok(&["testnet", "stop", "--dir", &d(&net)]);
    let mut sup = sup;
    let status = sup.wait().unwrap();
    assert!(status.success(), "supervisor after stop: {status}");
    assert!(!pid_alive(pid), "validator {pid} outlived `testnet stop`");
    let st = gl_json(&["testnet", "status", "--dir", &d(&net), "--json"]);
    assert_eq!(st["validators"][0]["running"], false);
    let log = std::fs::read_to_string(v0.join("node.log")).unwrap();
    assert!(log.contains("serving JSON-RPC") && !log.contains('\u{1b}'), "colour codes in the log:\n{log}");

    // SIGTERM to the supervisor itself.
    let (mut sup, pid, _) = start_testnet(&net, Stdio::null());
    unsafe {
        libc::kill(sup.id() as i32, libc::SIGTERM);
    }
    assert!(sup.wait().unwrap().success());
    assert!(!pid_alive(pid), "validator {pid} orphaned by SIGTERM to testnet");

    // A validator that dies is reported, and the supervisor says all are gone.
    let (mut sup, pid, _) = start_testnet(&net, Stdio::piped());
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let err: Vec<String> = BufReader::new(sup.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
    let status = sup.wait().unwrap();
    assert!(!status.success());
    assert!(err.iter().any(|l| l.contains("validator-0 exited")), "{err:#?}");
}

/// Defect 5: no panic on any argument or on a closed stdout.
#[test]
fn no_panic_on_arguments_or_closed_pipe() {
    for args in [&["demo", "--transfers", "0"][..], &["demo", "--accounts", "1"], &["transfer", "--amount", "-1"]] {
        let o = gl(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("a.key");
    gl_ok(&["keys", "new", "--out", &d(&key)]);
    // stdout is a pipe whose reader is already gone.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(BIN).args(["keys", "show", "--key", &d(&key)]).stdout(writer).output().unwrap();
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(!e.contains("panicked") && !e.contains("Broken pipe"), "{e}");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(BIN).args(["completions", "bash"]).stdout(writer).output().unwrap();
    assert!(o.status.success() && !stderr(&o).contains("panicked"), "{}", stderr(&o));
}

/// Defect 6: amounts in coin, both units printed, the fee reserve named
/// when a balance is short, and a trade that would pay nothing refused.
#[test]
fn amounts_in_coin_fee_reserve_and_zero_payments() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _url) = own_chain(root.path(), 2);
    let to = root.path().join("to.key");
    let shown = gl_json(&["keys", "new", "--out", &d(&to), "--json"]);
    let addr = shown["address"].as_str().unwrap().to_string();
    let from = d(&dir.join("keys").join("account-0.key"));
    let r = gl_json(&["transfer", "--rpc", &d(&dir), "--key", &from, "--to", &addr, "--amount", "1.5", "--json"]);
    assert_eq!(r["status"], "success");
    let human = gl_ok(&["query", "account", &addr, "--rpc", &d(&dir)]);
    assert!(human.contains("1.500000 coin (1500000 minor units)"), "{human}");
    let acct = gl_json(&["query", "account", &addr, "--rpc", &d(&dir), "--json"]);
    assert_eq!(acct["balance"], "1500000");

    // The new account holds 1.5 coin: sending all of it leaves no fee.
    let before = gl_json(&["query", "account", &addr, "--rpc", &d(&dir), "--json"]);
    let o = gl(&["transfer", "--rpc", &d(&dir), "--key", &d(&to), "--to", &addr, "--amount", "1.5coin"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("insufficient balance") && e.contains("fee reserve") && e.contains("21000"), "{e}");
    assert_eq!(gl_json(&["query", "account", &addr, "--rpc", &d(&dir), "--json"]), before, "nothing changed");

    // 1 Wh at 200/kWh pays 0.2 minor units: refused before anything moves.
    let o = gl(&["channel", "pay", "--dir", &d(root.path()), "--energy", "1", "--price", "200"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("pays 0 minor units"), "{e}");
}

/// Defect 7: `cns init` twice does not lock collateral twice; a channel
/// needs two different accounts.
#[test]
fn cns_init_twice_and_same_account_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (node, url) = dev_node(root, 4);
    let c = RpcClient::new(&url);
    let p = |s: &str| d(&root.join(s));
    std::fs::write(root.join("id.pdf"), b"identity document").unwrap();
    gl_json(&[
        "cns",
        "apply",
        "--json",
        "--key",
        &p("k1.key"),
        "--credit",
        "50000",
        "--out",
        &p("app.json"),
        "--docs",
        &p("id.pdf"),
    ]);
    gl_ok(&[
        "cns",
        "approve",
        "--rpc",
        &url,
        "--merchant-key",
        &p("k0.key"),
        "--desk-key",
        &p("desk.key"),
        "--application",
        &p("app.json"),
        "--out",
        &p("approval.json"),
    ]);
    let init =
        gl_json(&["cns", "init", "--json", "--rpc", &url, "--key", &p("k1.key"), "--approval", &p("approval.json")]);
    let sid = init["sid"].as_u64().unwrap();
    let bal = gridledger_node::channel::chainlink::balance(&c, &dev_key(1).address()).unwrap();
    let o = gl(&["cns", "init", "--rpc", &url, "--key", &p("k1.key"), "--approval", &p("approval.json")]);
    let e = stderr(&o);
    assert!(!o.status.success(), "second init accepted");
    assert!(e.contains(&format!("already has MSC {sid}")), "{e}");
    assert_eq!(
        gridledger_node::channel::chainlink::balance(&c, &dev_key(1).address()).unwrap(),
        bal,
        "collateral locked twice"
    );
    let st = gl_json(&["cns", "status", "--json", "--rpc", &url]);
    assert_eq!(st["mscs"].as_array().unwrap().len(), 1);
    // An MSC id that does not exist: said as such, with where to look.
    let o = gl(&["cns", "pay", "--rpc", &url, "--key", &p("k1.key"), "--sid", "99"]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("no MSC 99") && e.contains("cns status") && !e.contains("party spec"),
        "{e}"
    );

    let k2 = root.join("k2.key");
    let o = prepare_cmd(
        &url,
        &root.join("k0.key"),
        &root.join("desk2.key"),
        [&k2, &k2],
        [&root.join("a"), &root.join("b")],
        &[],
    )
    .output()
    .unwrap();
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("same account"), "{e}");
    assert!(!root.join("desk2.key").exists() && !root.join("a").exists());
    node.shutdown();
}

/// Encrypted keystore: import, use for a transfer through the environment,
/// export, and a wrong password refused.
#[test]
fn keystore_import_use_export() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _url) = own_chain(root.path(), 2);
    let pw = root.path().join("pw");
    std::fs::write(&pw, "correct horse battery\n").unwrap();
    let plain = dir.join("keys").join("account-0.key");
    let ks = root.path().join("account-0.json");
    gl_ok(&["keys", "import", "--from", &d(&plain), "--out", &d(&ks), "--password-file", &d(&pw)]);
    let text = std::fs::read_to_string(&ks).unwrap();
    assert!(!text.contains(std::fs::read_to_string(&plain).unwrap().trim()), "secret in the clear");
    let addr = gl_json(&["keys", "show", "--key", &d(&plain), "--json"])["address"].clone();
    let o = Command::new(BIN)
        .args(["keys", "show", "--json", "--key", &d(&ks)])
        .env("GRIDLEDGER_PASSWORD_FILE", &pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["address"], addr);
    // `keys show` prints the clear-text address without a password; opening
    // the secret (`keys export`) needs it.
    let out = root.path().join("out.key");
    let o = gl(&["keys", "export", "--key", &d(&ks), "--out", &d(&out)]);
    assert!(!o.status.success() && stderr(&o).contains("GRIDLEDGER_PASSWORD_FILE"), "{}", stderr(&o));
    let o = Command::new(BIN)
        .args(["keys", "export", "--key", &d(&ks), "--out", &d(&out)])
        .env("GRIDLEDGER_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("wrong password"), "{}", stderr(&o));
    assert!(!out.exists());
    let to = addr.as_str().unwrap().to_string();
    let o = Command::new(BIN)
        .args(["transfer", "--rpc", &d(&dir), "--key", &d(&ks), "--to", &to, "--amount", "0.5", "--json"])
        .env("GRIDLEDGER_PASSWORD_FILE", &pw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // No password anywhere and no terminal to ask on: refused, nothing written.
    let none = root.path().join("none.json");
    let o = Command::new(BIN)
        .args(["keys", "new", "--encrypt", "--out", &d(&none)])
        .env_remove("GRIDLEDGER_PASSWORD")
        .env_remove("GRIDLEDGER_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success() && stderr(&o).contains("GRIDLEDGER_PASSWORD_FILE"), "{}", stderr(&o));
    assert!(!none.exists());
    let out = root.path().join("exported.key");
    gl_ok(&["keys", "export", "--key", &d(&ks), "--out", &d(&out), "--password-file", &d(&pw)]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), std::fs::read_to_string(&plain).unwrap());
}

/// Query wrappers: proof (checked), events, view.
#[test]
fn query_proof_events_view() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _url) = own_chain(root.path(), 2);
    let to = gl_json(&["keys", "show", "--key", &d(&dir.join("keys/account-1.key")), "--json"])["address"].clone();
    let r = gl_json(&[
        "transfer",
        "--rpc",
        &d(&dir),
        "--key",
        &d(&dir.join("keys/account-0.key")),
        "--to",
        to.as_str().unwrap(),
        "--amount",
        "7",
        "--json",
    ]);
    let hash = r["tx_hash"].as_str().unwrap().to_string();
    let height = r["height"].as_u64().unwrap();
    let p = gl_json(&["query", "proof", &hash, "--rpc", &d(&dir), "--json"]);
    assert_eq!(p["verified"], true);
    assert_eq!(p["height"], height);
    let ev = gl_json(&["query", "events", "--from", &height.to_string(), "--rpc", &d(&dir), "--json"]);
    assert!(ev.to_string().contains("transfer"), "{ev}");
    let o = gl(&["query", "view", "1", "no_such_view", "--rpc", &d(&dir)]);
    assert!(!o.status.success() && stderr(&o).contains("gl_callView"), "{}", stderr(&o));
}

/// Completions and man pages come from the CLI definition.
#[test]
fn completions_and_man_pages() {
    let bash = gl_ok(&["completions", "bash"]);
    assert!(bash.contains("gridledger") && bash.contains("testnet"));
    let root = tempfile::tempdir().unwrap();
    gl_ok(&["man", "--out", &d(root.path())]);
    let page = std::fs::read_to_string(root.path().join("gridledger.1")).unwrap();
    assert!(page.contains(".TH") && page.contains("testnet"));
    assert!(root.path().join("gridledger-testnet.1").exists());
}

/// `rpc.discover` answers an OpenRPC document naming every method's
/// parameters; named parameters work like positional ones, and bad names are
/// refused with invalid-params.
#[test]
fn openrpc_discover_and_named_params() {
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, url) = own_chain(root.path(), 2);
    let c = RpcClient::new(&url);
    let doc = c.call("rpc.discover", serde_json::json!([])).unwrap();
    assert!(doc["openrpc"].as_str().unwrap().starts_with("1."));
    let m = doc["methods"].as_array().unwrap().iter().find(|m| m["name"] == "gl_getEvents").unwrap().clone();
    let names: Vec<_> = m["params"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["from", "to"]);

    let addr = gl_json(&["keys", "show", "--key", &d(&dir.join("keys/account-0.key")), "--json"])["address"].clone();
    let by_pos = c.call("gl_getAccount", serde_json::json!([addr])).unwrap();
    let by_name = c.call("gl_getAccount", serde_json::json!({ "address": addr })).unwrap();
    assert_eq!(by_pos, by_name);
    let ev = c.call("gl_getEvents", serde_json::json!({ "to": 0, "from": 0 }));
    assert!(ev.is_ok(), "{ev:?}");
    match c.call("gl_getAccount", serde_json::json!({ "adress": addr })) {
        Err(gridledger_node::RpcError::Remote { code, message, .. }) => {
            assert_eq!(code, -32602);
            assert!(message.contains("adress") && message.contains("address"), "{message}");
        }
        r => panic!("misspelt parameter accepted: {r:?}"),
    }
}

/// Defect 7, the newcomer's CNS path end to end: `cns apply → approve →
/// init`, then `channel prepare --approval0/--approval1` runs the channel
/// on the MSCs those made (side 0's made by `cns init`, side 1's made by
/// `prepare` from its approval) instead of opening fresh ones; a second
/// channel reuses both MSCs; an approval from another merchant and a desk
/// key the merchant was not registered with are refused and change nothing.
#[test]
fn channel_prepare_uses_the_mscs_cns_init_made() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (node, url) = dev_node(root, 4);
    let c = RpcClient::new(&url);
    let p = |s: &str| root.join(s);
    for i in [1, 2] {
        let doc = p(&format!("id{i}.pdf"));
        std::fs::write(&doc, format!("identity document {i}")).unwrap();
        let (key, app) = (p(&format!("k{i}.key")), p(&format!("app{i}.json")));
        // The summary names the account (not only the MSC pseudonym key) and the next step.
        let shown =
            gl_ok(&["cns", "apply", "--key", &d(&key), "--credit", "0.05", "--out", &d(&app), "--docs", &d(&doc)]);
        assert!(
            shown.contains(&format!("account {}", dev_key(i).address())) && shown.contains("0.050000 coin"),
            "{shown}"
        );
        let approval = d(&p(&format!("approval{i}.json")));
        let (m, desk) = (d(&p("k0.key")), d(&p("desk.key")));
        let shown = gl_ok(&[
            "cns",
            "approve",
            "--rpc",
            &url,
            "--merchant-key",
            &m,
            "--desk-key",
            &desk,
            "--application",
            &d(&app),
            "--out",
            &approval,
        ]);
        assert!(
            shown.contains("collateral") && shown.contains(&format!("cns init --key ITS.key --approval {approval}")),
            "{shown}"
        );
    }
    let (k1_path, approval1) = (d(&p("k1.key")), d(&p("approval1.json")));
    let init = gl_ok(&["cns", "init", "--rpc", &url, "--key", &k1_path, "--approval", &approval1]);
    assert!(init.contains(&format!("--approval0 {approval1}")), "init names the next step: {init}");
    let sid1 = gl_json(&["cns", "status", "--json", "--rpc", &url])["mscs"][0]["sid"].as_u64().unwrap();
    assert!(init.contains(&format!("MSC {sid1} created")), "{init}");
    let msc_count = || gl_json(&["cns", "status", "--json", "--rpc", &url])["mscs"].as_array().unwrap().len();
    assert_eq!(msc_count(), 1);
    let approvals = |extra: &[&str]| {
        let mut v =
            vec!["--approval0".to_string(), d(&p("approval1.json")), "--approval1".into(), d(&p("approval2.json"))];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (k1, k2) = (p("k1.key"), p("k2.key"));
    let prepare = |merchant: &str, desk: &str, dirs: [&str; 2], extra: &[&str]| {
        let args = approvals(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        prepare_cmd(&url, &p(merchant), &p(desk), [&k1, &k2], [&p(dirs[0]), &p(dirs[1])], &args).output().unwrap()
    };

    // Refused, nothing sent: the approvals are merchant k0's, not k3's; the
    // merchant is registered with desk.key, not other-desk.key.
    let balances = || [0, 3].map(|i| gridledger_node::channel::chainlink::balance(&c, &dev_key(i).address()).unwrap());
    let before = balances();
    let o = prepare("k3.key", "desk.key", ["x0", "x1"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("the approval is from merchant"), "{}", stderr(&o));
    let o = prepare("k0.key", "other-desk.key", ["x0", "x1"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("registered with another desk key"), "{}", stderr(&o));
    assert_eq!(msc_count(), 1, "a refused prepare made an MSC");
    assert!(!p("x0").exists() && !p("x1").exists(), "a refused prepare wrote a party");
    assert_eq!(balances(), before, "a refused prepare sent a transaction");

    let o = prepare("k0.key", "desk.key", ["p1", "p2"], &["--json", "--credit0", "--capacity", "20000", "20000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let prep: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(prep["sids"][0], sid1, "side 0 runs on the MSC `cns init` made: {prep}");
    let sid2 = prep["sids"][1].as_u64().unwrap();
    let approval2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("approval2.json")).unwrap()).unwrap();
    let m2 = gridledger_node::channel::chainlink::read_msc(&c, sid2).unwrap().unwrap();
    assert_eq!(serde_json::json!(m2.participant_key), approval2["participant"], "side 1's MSC is its approval's");
    assert_eq!(msc_count(), 2, "no fresh MSCs");
    // The human table: columns line up however long the cells are.
    let table = gl_ok(&["cns", "status", "--rpc", &url]);
    let lines: Vec<&str> = table.lines().collect();
    let col = |l: &str, w: &str| l.find(w).unwrap_or_else(|| panic!("{w:?} not in {l:?}"));
    assert_eq!(col(lines[0], "collateral"), col(lines[1], "0.010000 coin"), "{table}");
    assert_eq!(col(lines[0], "payout"), col(lines[1], &dev_key(1).address().to_string()), "{table}");

    let procs = open_both([&p("p1"), &p("p2")], &[]);
    gl_ok(&["channel", "pay", "--dir", &d(&p("p1")), "--energy", "10000", "--price", "100"]);
    let status = gl_ok(&["channel", "status", "--dir", &d(&p("p1"))]);
    assert!(status.contains("energy delivered  side 0: 0 Wh, side 1: 10000 Wh"), "{status}");
    gl_ok(&["channel", "close", "--dir", &d(&p("p1"))]);
    drop(procs);
    let m1 = gridledger_node::channel::chainlink::read_msc(&c, sid1).unwrap().unwrap();
    assert_eq!(m1.pending.len(), 1, "the credit-note channel settled into the MSC of `cns init`");

    // A second channel on the same two MSCs (the next ESC between them).
    let again = prepare("k0.key", "desk.key", ["q1", "q2"], &["--json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["sids"], serde_json::json!([sid1, sid2]));
    assert_ne!(again["scid"], prep["scid"]);
    assert_eq!(msc_count(), 2);
    node.shutdown();
}

/// Defect 8: `channel watch-spec` prints a summary, or with --json exactly
/// one JSON document (the spec it wrote); a directory without a party
/// names the command that makes one.
#[test]
fn watch_spec_summary_and_json() {
    let (dir, node, _url, dirs) = prepared_channel(["p1", "p2"], &[]);
    let root = dir.path();
    let out = root.join("watch.json");
    let human = gl_ok(&["channel", "watch-spec", "--dir", &d(&dirs[1]), "--out", &d(&out)]);
    assert!(serde_json::from_str::<serde_json::Value>(&human).is_err(), "summary is JSON: {human}");
    assert!(human.contains("written to") && human.contains("channel watch --spec"), "{human}");
    std::fs::remove_file(&out).unwrap();
    let v = gl_json(&["channel", "watch-spec", "--json", "--dir", &d(&dirs[1]), "--out", &d(&out)]);
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v, file);
    assert_eq!(v["side"], 1);
    let o = gl(&["channel", "watch-spec", "--dir", &d(root), "--out", &d(&root.join("w2.json"))]);
    assert!(!o.status.success() && stderr(&o).contains("channel prepare"), "{}", stderr(&o));
    assert!(!root.join("w2.json").exists());
    node.shutdown();
}

/// Defect 6: `channel prepare --min-price/--max-price` take coin decimals
/// like `channel pay --price` (here refused only later, at the node that
/// is not there), and a price finer than a minor unit is refused.
#[test]
fn prepare_prices_take_coin_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let k = |i: usize| root.join(format!("k{i}.key"));
    for i in 0..3 {
        write_key(&k(i), &dev_key(i)).unwrap();
    }
    let rpc = format!("127.0.0.1:{}", closed_port());
    let dirs = [root.join("p1"), root.join("p2")];
    let prepare = |prices: &[&str]| {
        prepare_cmd(&rpc, &k(0), &root.join("desk.key"), [&k(1), &k(2)], [&dirs[0], &dirs[1]], prices).output().unwrap()
    };
    let o = prepare(&["--min-price", "0.0001", "--max-price", "0.0003coin"]);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("invalid value") && e.contains(&rpc), "{e}");
    let o = prepare(&["--max-price", "0.0000001"]);
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("more than 6 decimals"), "{e}");
    assert!(!dirs[0].exists() && !root.join("desk.key").exists(), "a refused prepare wrote files");
}

/// Defect 8: `sim pbft` prints a summary, and with --json one JSON
/// document; `experiment list` lines its columns up.
#[test]
fn sim_summary_or_json_and_experiment_list_columns() {
    let args = ["sim", "pbft", "--seeds", "1", "--validators", "4", "--replica-only", "--min-height", "3"];
    let human = gl_ok(&args);
    assert!(serde_json::from_str::<serde_json::Value>(&human).is_err(), "summary is JSON: {human}");
    assert!(human.contains("failures          0") && human.contains("1 seed(s)"), "{human}");
    let v = gl_json(&[&args[..], &["--json"]].concat());
    assert_eq!((v["seeds"].as_u64(), v["failures"].as_u64()), (Some(1), Some(0)), "{v}");
    let list = gl_ok(&["experiment", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    // Columns are counted in characters (durations carry "≈", seeds "§").
    let at = lines[0][..lines[0].find("what it measures").unwrap()].chars().count();
    for l in &lines[1..] {
        let c: Vec<char> = l.chars().collect();
        assert!(c.len() > at && c[at - 1] == ' ' && c[at] != ' ', "misaligned: {l:?}\n{list}");
    }
}

/// Defect 2: a testnet whose port another process holds (here: a node of
/// `gridledger init` on the same default port) is refused before anything
/// is written, naming the port and the flag, instead of starting
/// validators that exit at once.
#[test]
fn testnet_on_a_busy_port_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let net = dir.path().join("net");
    let (rpc, p2p) = (port.to_string(), (port - 100).to_string());
    let o = gl(&["testnet", "--validators", "4", "--dir", &d(&net), "--rpc-port", &rpc, "--p2p-port", &p2p]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&format!("127.0.0.1:{port} is not free")) && e.contains("--rpc-port"), "{e}");
    assert!(!net.exists(), "a refused testnet wrote files");
}

/// Defect 2: a node whose JSON-RPC address another process holds names the
/// config file and the setting that moves it.
#[test]
fn node_on_a_busy_address_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = held.local_addr().unwrap().to_string();
    let chain = dir.path().join("c");
    gl_ok(&["init", "--dir", &d(&chain), "--listen", &listen]);
    let o = gl(&["node", "--config", &d(&chain.join("node.toml"))]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains(&listen) && e.contains("rpc_listen") && e.contains("node.toml"), "{e}");
}

/// Defect 2: `channel dispute|abort|watch` on a directory without a party
/// name the directory and the command that makes one (not a bare "No such
/// file or directory").
#[test]
fn snapshot_commands_on_a_missing_party_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let nope = d(&dir.path().join("nope"));
    for cmd in ["dispute", "abort", "watch"] {
        let o = gl(&["channel", cmd, "--dir", &nope]);
        let e = stderr(&o);
        assert!(!o.status.success() && e.contains(&nope) && e.contains("channel prepare"), "{cmd}: {e}");
    }
}

/// `ior day --config` needs a community file: `--example-config` prints
/// the commented example (no source tree needed to find it).
#[test]
fn ior_day_prints_its_example_config() {
    let out = gl_ok(&["ior", "day", "--example-config"]);
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../rollup/examples/community.toml");
    assert_eq!(out, std::fs::read_to_string(file).unwrap());
    let help = gl_ok(&["ior", "day", "--help"]);
    assert!(help.contains("--example-config") && !help.contains("crates/rollup"), "{help}");
}

/// Defect 8: `demo --json` prints exactly one JSON document.
#[test]
fn demo_json_is_one_document() {
    let o = gl(&["demo", "--json", "--no-report", "--accounts", "3", "--transfers", "10"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
    assert_eq!(v["ledger"]["transfers_committed"], 10);
    assert!(v["channel"].is_object() && v["ior_day"].is_object(), "{v}");
}

/// Defect 8: a refused `channel pay` prints its error once (on stderr, not
/// also as JSON on stdout); defect 9: `channel open` says what it waits for.
#[test]
fn channel_pay_error_once_and_open_says_what_it_does() {
    let (dir, node, _url, dirs) = prepared_channel(["p1", "p2"], &[]);
    let root = dir.path();
    let p = |s: &str| d(&root.join(s));
    let side0 = open_cmd(&dirs[0]).stderr(Stdio::piped()).spawn().unwrap();
    let mut procs = Procs(vec![open_cmd(&dirs[1]).spawn().unwrap(), side0]);
    wait_open(&root.join("p1"));
    let o = gl(&["channel", "pay", "--dir", &p("p1"), "--energy", "1000000", "--price", "20000000"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(o.stdout.is_empty(), "error also printed on stdout: {}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(e.matches("below the payment").count(), 1, "{e}");
    let o = gl(&["channel", "close", "--dir", &p("p1")]);
    assert!(o.status.success() && stderr(&o).contains("closed cooperatively"), "{}", stderr(&o));
    let p1 = procs.0.pop().unwrap().wait_with_output().unwrap();
    assert!(p1.status.success(), "{}", stderr(&p1));
    let e1 = stderr(&p1);
    assert!(e1.contains("listening on"), "{e1}");
    // Phase lines (polled, so a short phase may pass unseen); the last is the end.
    assert!(e1.lines().last().unwrap().contains("Closed"), "{e1}");
    node.shutdown();
}

/// Defect 9: a close that falls back to a dispute says so.
#[test]
fn close_falling_back_to_a_dispute_says_so() {
    // The shortest dispute window the contract allows, a 3 s close timeout.
    let timing = ["--t-delta-ms", "10000", "--close-timeout-blocks", "3", "--block-ms", "1000"];
    let (dir, node, _url, dirs) = prepared_channel(["p1", "p2"], &timing);
    let p = |s: &str| d(&dir.path().join(s));
    let mut procs = open_both([&dirs[0], &dirs[1]], &[]);
    gl_ok(&["channel", "pay", "--dir", &p("p1"), "--energy", "1000", "--price", "200"]);
    // The peer goes silent.
    let mut peer = procs.0.remove(0);
    peer.kill().unwrap();
    peer.wait().unwrap();
    let o = gl(&["channel", "close", "--dir", &p("p1")]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("dispute"), "a unilateral close reported as: {e}");
    drop(procs);
    node.shutdown();
}

/// `gridledger node` deploys the IOR contracts (primary 20, secondary 21,
/// single-chain 22) beside the default ones, so an IOR day can run on it.
#[test]
fn node_deploys_the_ior_contracts() {
    let root = tempfile::tempdir().unwrap();
    let (_dir, _procs, url) = own_chain(root.path(), 2);
    let info = gridledger_node::RpcClient::new(url.trim()).call("gl_chainInfo", serde_json::json!([])).unwrap();
    let ids: Vec<u64> = info["contracts"].as_array().unwrap().iter().filter_map(|c| c["id"].as_u64()).collect();
    for id in [1, 20, 21, 22] {
        assert!(ids.contains(&id), "contract {id} missing from {ids:?}");
    }
}

/// "A page on the data directory layout": every file a running chain
/// directory holds (after `init` and `node`) is named in the table of
/// docs/operations.md, so the page cannot silently fall behind the code.
#[test]
fn data_directory_page_names_every_file() {
    let page = include_str!("../../../docs/operations.md");
    let root = tempfile::tempdir().unwrap();
    let (dir, _node, _url) = own_chain(root.path(), 2);
    fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(p).unwrap().map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() {
                walk(base, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut files = Vec::new();
    walk(&dir, &dir, &mut files);
    assert!(files.iter().any(|f| f == "node.url") && files.iter().any(|f| f.starts_with("data/")), "{files:?}");
    // Numbered files (keys/account-0.key …) appear in the page as `…-N…`.
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| {
            let generic: String = f.chars().map(|c| if c.is_ascii_digit() { 'N' } else { c }).collect();
            !page.contains(&format!("`{f}`")) && !page.contains(&format!("`{generic}`"))
        })
        .collect();
    assert!(missing.is_empty(), "files of a chain directory not in docs/operations.md: {missing:?}");
}

/// The commands of the first ```sh block after `heading` in `readme`:
/// continuation lines joined, each with its trailing `# comment`.
fn readme_commands(readme: &str, heading: &str) -> Vec<(String, String)> {
    let start = readme.find(heading).unwrap_or_else(|| panic!("README has no {heading:?}"));
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").expect("sh block") + 6..];
    let block = &block[..block.find("```").expect("end of block")];
    let mut lines = Vec::new();
    let mut pending = String::new();
    for l in block.lines() {
        let (cmd, comment) = l.split_once(" # ").unwrap_or((l, ""));
        let cmd = cmd.trim_end();
        if let Some(c) = cmd.strip_suffix('\\') {
            pending.push_str(c);
            continue;
        }
        pending.push_str(cmd);
        if !pending.trim().is_empty() {
            lines.push((std::mem::take(&mut pending), comment.trim().to_string()));
        }
    }
    lines
}

/// Issue 17, "done when": the README's walk-through (own chain, a
/// transfer, a channel payment), its commands run as written, in order, in
/// a fresh directory. The one deviation is the port: `init` gets
/// `--listen 127.0.0.1:0` and every command `GRIDLEDGER_RPC=mychain` (the
/// chain directory, which the README documents as an --rpc form), so the
/// test never collides with a node on 8645. The README's promised output
/// (`1.500000 coin` for alice) is checked, both channel parties end with
/// the channel closed, and the credit-line block that follows (`cns apply
/// → approve → init → channel prepare --approval0 --credit0`) runs on the
/// same chain.
#[test]
fn readme_walk_through_runs_as_written() {
    let readme = include_str!("../../../README.md");
    let mut lines = readme_commands(readme, "Your own chain, a transfer, and a credit-note channel payment");
    let walk = lines.len();
    // Then the participant's own credit line, on the same chain.
    lines.extend(readme_commands(readme, "A participant's own credit line"));
    assert!(walk >= 8 && lines.len() >= walk + 4, "{lines:?}");
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path();
    // The identity document the README's `cns apply --docs id.pdf` names.
    std::fs::write(cwd.join("id.pdf"), b"a participant's identity document").unwrap();
    let cmd = |args: &[String]| {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(cwd).env("GRIDLEDGER_RPC", "mychain");
        c
    };
    let mut procs = Procs(Vec::new());
    let mut alice = String::new();
    let mut opened = Vec::new();
    for (line, comment) in &lines {
        let line = line.replace("<alice's address>", &alice);
        let mut args: Vec<String> = line.split_whitespace().map(String::from).collect();
        assert_eq!(args.first().map(String::as_str), Some("gridledger"), "{line}");
        args.remove(0);
        let sub: Vec<&str> = args.iter().take(2).map(String::as_str).collect();
        match sub.as_slice() {
            ["init", ..] => {
                args.extend(["--listen".into(), "127.0.0.1:0".into()]);
                run_ok(&mut cmd(&args));
            }
            ["node", ..] => {
                let mut node = cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
                wait_file(&cwd.join("mychain/node.url"), &mut node);
                procs.0.push(node);
            }
            ["channel", "open"] => {
                let dir = cwd.join(&args[3]);
                procs.0.push(cmd(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
                opened.push(dir);
                if opened.len() == 2 {
                    // What a user sees in the two terminals before paying.
                    opened.iter().for_each(|d| wait_open(d));
                }
            }
            _ => {
                let out = run_ok(&mut cmd(&args));
                if sub == ["keys", "new"] {
                    alice = out
                        .lines()
                        .find_map(|l| l.strip_prefix("address")?.split_whitespace().next().map(String::from))
                        .expect("keys new prints the address");
                }
                if sub == ["query", "account"] {
                    let promised = comment.split(" (").next().unwrap();
                    assert!(out.contains(promised), "README promises {comment:?}, got:\n{out}");
                }
            }
        }
    }
    assert_eq!(opened.len(), 2, "the walk-through opens both sides");
    assert!(cwd.join("q1/party.json").exists(), "the credit-line channel was prepared");
    // Both parties' processes end once the close settled.
    let t = Instant::now();
    for p in procs.0.iter_mut().skip(1) {
        let status = loop {
            if let Some(s) = p.try_wait().unwrap() {
                break s;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "a channel party still runs after the close");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "a channel party exited with {status}");
    }
}
