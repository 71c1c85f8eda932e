//! `gridledger ior day`: a community file over several days, and a day on
//! a running node (`--rpc`).

mod common;

use common::*;
use std::process::Stdio;

#[test]
fn ior_day_runs_a_community_file_over_several_days() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../rollup/examples/community.toml");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("statements.csv");
    let out = bin()
        .args(["ior", "day", "--no-report", "--config", file, "--days", "2", "--json", "--statements"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let days = v.as_array().unwrap();
    assert_eq!(days.len(), 2);
    for (i, d) in days.iter().enumerate() {
        assert_eq!(d["config"]["day"], 106 + i as u64);
        let (traded, bound) = (d["energy_traded_wh"].as_u64().unwrap(), d["bound_wh"].as_u64().unwrap());
        assert!(bound > 0 && traded * 100 >= bound * 99, "day {i}: {traded} of {bound} Wh");
        assert_eq!(d["config"]["grid_fee"], 20_000);
    }
    // Statements: one row per participant per day, each balancing.
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2 * 6);
    let num = |r: &Vec<&str>, i: usize| r[i].parse::<u128>().unwrap();
    for r in &rows {
        assert_eq!(num(r, 9) + num(r, 5), num(r, 8) + num(r, 6), "balance_end + paid = start + received: {r:?}");
    }
    let (paid, received): (u128, u128) =
        rows.iter().map(|r| (num(r, 5), num(r, 6))).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(paid, received);
    let revenue: u128 = days.iter().map(|d| d["revenue_minor"].as_u64().unwrap() as u128).sum();
    assert_eq!(paid, revenue);
    // A bad file is an error naming the file, not a panic.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "clearing = \"lowest\"\n").unwrap();
    let out = bin().args(["ior", "day", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"), "{}", String::from_utf8_lossy(&out.stderr));
    // Metered data: one day, one column per participant.
    let meters = dir.path().join("meters.csv");
    let mut csv = String::from("time,m1,m2,m3,m4,m5,m6\n");
    for h in 0..24 {
        let sun = if (8..16).contains(&h) { 500 } else { 0 };
        csv.push_str(&format!("{h},-200,-150,{},{},-60,-90\n", sun - 100, sun - 80));
    }
    std::fs::write(&meters, csv).unwrap();
    let out = bin()
        .args(["ior", "day", "--no-report", "--config", file, "--json", "--meter-csv"])
        .arg(&meters)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 8 sunny hours: sellers export 400 + 420 Wh/h, buyers need 500 Wh/h.
    assert_eq!(v["bound_wh"], 8 * 500);
    assert_eq!(v["energy_traded_wh"], 8 * 500);
    let out = bin().args(["ior", "day", "--config", file, "--days", "2", "--meter-csv"]).arg(&meters).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--days 1"));
}

/// `ior day --rpc` (issue 17, "ior day against a running node"): a short
/// day (noon to 1 pm) through a real `gridledger node` process, the day's
/// accounts funded from an account of `gridledger init`. Every
/// participant's IOR balance the report states is the one on chain, coin
/// is conserved between the traders, and a second day on the same chain is
/// refused before anything is sent.
#[test]
fn ior_day_runs_on_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let funder = chain.join("keys").join("account-0.key");
    let day = [
        "ior",
        "day",
        "--rpc",
        &d(&chain),
        "--from",
        &d(&funder),
        "--slots",
        "24..26",
        "--slot-ms",
        "4000",
        "--window-ms",
        "1000",
        "--no-report",
        "--json",
    ];
    // Refused before anything is sent: a slot that is not whole seconds,
    // and a funder that cannot pay what the day's accounts need.
    let c = gridledger_node::RpcClient::new(&url);
    let funder_addr = gridledger_node::config::read_key(&funder).unwrap().address();
    let nonce = c.next_nonce(&funder_addr).unwrap();
    let odd: Vec<&str> = day.iter().map(|a| if *a == "4000" { "1500" } else { a }).collect();
    let o = gl(&odd);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("whole number of seconds"));
    let poor = dir.path().join("poor.key");
    gl_ok(&["keys", "new", "--out", &d(&poor)]);
    let broke: Vec<String> = day.iter().map(|a| if *a == d(&funder) { d(&poor) } else { a.to_string() }).collect();
    let o = gl(&broke.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--from") && err.contains(&url), "{err}");
    assert_eq!(c.next_nonce(&funder_addr).unwrap(), nonce, "a refused day sent a transaction");

    let r = gl_json(&day);
    let settled = r["settled_trades"].as_u64().unwrap();
    assert!(settled > 0, "no trade settled at noon: {}", r["trades"]);
    let per_slot: Vec<u64> = r["trades_per_slot"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(per_slot.iter().enumerate().all(|(s, n)| (24..26).contains(&s) || *n == 0), "{per_slot:?}");
    let (gained, spent) = check_balances_on_chain(&r, &c);
    assert!(gained > 0 && gained == spent, "sellers got {gained}, buyers paid {spent}");
    assert_eq!(r["coins"]["burned"], 0);
    // One day per chain: the second is refused, naming the node, nothing sent.
    let nonce = c.next_nonce(&funder_addr).unwrap();
    let o = gl(&day);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&url) && err.contains("fresh chain"), "{err}");
    assert_eq!(c.next_nonce(&funder_addr).unwrap(), nonce);
}

/// Asserts that every participant's IOR balance at the end of the day
/// report `r` is the one the node `c` holds; returns what the sellers
/// gained and the buyers spent over the day.
fn check_balances_on_chain(r: &serde_json::Value, c: &gridledger_node::RpcClient) -> (u128, u128) {
    // The settlement state is off the primary chain: rebuild it from the
    // node's chain data alone and check it against the settled root.
    let chain = gridledger_node::client::RpcChain::connect(c.url()).unwrap();
    let cfg = gridledger_rollup::driver::primary_config(&chain).unwrap();
    let reader = gridledger_rollup::driver::PrimaryReader { c: &chain, params: &cfg.params };
    let settled = reader.settled_state().unwrap();
    let (mut gained, mut spent) = (0u128, 0u128);
    for p in r["participants"].as_array().unwrap() {
        let who: gridledger_core::Address = serde_json::from_value(p["address"].clone()).unwrap();
        let on_chain: u128 = reader.account(&settled, &who).unwrap().balance.0;
        let (start, end) = (p["balance_start"].as_u64().unwrap() as u128, p["balance_end"].as_u64().unwrap() as u128);
        assert_eq!(on_chain, end, "participant {who}: report {end}, chain {on_chain}");
        if end > start {
            gained += end - start;
        } else {
            spent += start - end;
        }
    }
    (gained, spent)
}

/// Stops a network started by `testnet start` (SIGTERM through `testnet
/// stop`, so no validator is orphaned) when dropped.
struct StopTestnet(std::path::PathBuf, std::process::Child);

impl Drop for StopTestnet {
    fn drop(&mut self) {
        let _ = gl(&["testnet", "stop", "--dir", &d(&self.0)]);
        let _ = self.1.wait();
    }
}

/// `ior day --rpc` on a testnet: four PBFT validators, each its own
/// process; one slot at noon through validator-0, and the settled balances
/// read back from validator-1 (the day is on the replicated chain).
#[test]
fn ior_day_runs_on_a_pbft_testnet() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    four_validator_testnet(&net, 0);
    let (mut sup, _pid, url0) = start_testnet(&net, Stdio::null());
    let url1 = wait_file(&net.join("validator-1").join("node.url"), &mut sup);
    let _stop = StopTestnet(net.clone(), sup);
    let funder = net.join("keys").join("account-0.key");
    // Slots long enough for two PBFT commits on a loaded machine.
    let r = gl_json(&[
        "ior",
        "day",
        "--rpc",
        &url0,
        "--from",
        &d(&funder),
        "--slots",
        "24..25",
        "--slot-ms",
        "8000",
        "--window-ms",
        "1000",
        "--no-report",
        "--json",
    ]);
    assert!(r["settled_trades"].as_u64().unwrap() > 0, "no trade settled at noon: {}", r["trades"]);
    let (c0, c1) = (gridledger_node::RpcClient::new(&url0), gridledger_node::RpcClient::new(&url1));
    let h = c0.height().unwrap();
    let t = std::time::Instant::now();
    while c1.height().unwrap() < h {
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "validator-1 never reached height {h}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (gained, spent) = check_balances_on_chain(&r, &c1);
    assert!(gained > 0 && gained == spent, "sellers got {gained}, buyers paid {spent}");
}

/// `GRIDLEDGER_TEST_LOCK_HOME` moves the day's lock out of the user's home
/// (tests only): a run that honours it says so on stderr, in release
/// builds too, so a real day run with it set by mistake is not silent.
/// Here the lock home holds this program's directory open to others, so
/// the run is refused right after honouring it and sends nothing.
#[test]
fn a_run_honouring_the_test_lock_home_warns_on_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, _url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let home = dir.path().join("home-open");
    let open = home.join(".local").join("state").join("gridledger");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o =
        bin().args(common::ior::day_args(&c, &f, "24..25")).env("GRIDLEDGER_TEST_LOCK_HOME", &home).output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("has mode 777"), "{} {}", o.status, err.trim());
    assert!(err.contains("warning: GRIDLEDGER_TEST_LOCK_HOME is set"), "{}", err.trim());
}
