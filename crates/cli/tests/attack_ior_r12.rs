//! Attack round 12 on the improved optimistic rollup (issue 11) through the
//! CLI: the journal lock of `gridledger ior day --rpc` (attack r11 [3]).
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::ior::*;
use common::*;
use gridledger_rollup::driver::primary_config;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// [1] The lock that keeps a second run off a live day (attack r11 [3])
/// is taken on `PATH.lock` for the journal path as spelled on the command
/// line, so the same journal reached through a symbolic link
/// (`--journal current.json`, a link to the chain's `ior-day.json`) is
/// locked on another file (`current.json.lock`) and the second run takes
/// the live day for a killed one: it reads the unfinished journal through
/// the link, "resumes" it — settles what is recorded, sends the STs of the
/// live run's open agreements, marks its journal finished — and the live
/// run's own STs for the same agreements are then refused and cost honest
/// sellers α. (The live run is held with SIGSTOP while the second runs, as
/// in attack r11 [3].) Expected: the lock names the journal's file, not
/// its spelling (e.g. locked on the canonical path, or on the opened
/// journal's inode), so the second run is refused and sends nothing, and
/// the live run ends its day with no one penalised.
#[test]
fn a_second_run_through_a_linked_journal_does_not_resume_a_live_day() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..27");
    let (second, first) = while_live_day_stopped(bin().args(&day), &url, || {
        let link = dir.path().join("current.json");
        std::os::unix::fs::symlink(chain.join("ior-day.json"), &link).unwrap();
        let l = d(&link);
        let mut second_args = day.clone();
        second_args.extend(["--journal", &l]);
        gl(&second_args)
    });
    let (next, fin, open, reputations, rs) = after(&url);
    assert!(
        !second.status.success()
            && first.status.success()
            && fin == next
            && open == 0
            && reputations.iter().all(|r| *r == rs),
        "second run through a link to the live day's journal: {} {} {}; the first run: {} ({}); settled {fin}/{next} \
         batches, {open} agreements open; reputations {reputations:?}",
        second.status,
        stdout(&second).replace('\n', " "),
        stderr(&second).trim(),
        first.status,
        String::from_utf8_lossy(&first.stderr).trim(),
    );
}

/// [2] The same lock is kept off by a copy of the journal: the lock guards
/// a file, not the day, so `--journal backup.json` holding a copy of the
/// live day's journal (a backup taken while the day ran, or the journal
/// copied to another host that reaches the same node) "resumes" the live
/// day exactly as attack r11 [3] did. Expected: a second process does not
/// trade a day a live process is trading, whichever file names it (e.g.
/// a lock keyed by the chain's genesis hash, or a lease the driver holds
/// on the chain itself).
#[test]
fn a_second_run_with_a_copy_of_the_journal_does_not_resume_a_live_day() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..27");
    let (second, first) = while_live_day_stopped(bin().args(&day), &url, || {
        let copy = dir.path().join("backup.json");
        std::fs::copy(chain.join("ior-day.json"), &copy).unwrap();
        let cp = d(&copy);
        let mut second_args = day.clone();
        second_args.extend(["--journal", &cp]);
        gl(&second_args)
    });
    let (next, fin, open, reputations, rs) = after(&url);
    assert!(
        !second.status.success()
            && first.status.success()
            && fin == next
            && open == 0
            && reputations.iter().all(|r| *r == rs),
        "second run with a copy of the live day's journal: {} {} {}; the first run: {} ({}); settled {fin}/{next} \
         batches, {open} agreements open; reputations {reputations:?}",
        second.status,
        stdout(&second).replace('\n', " "),
        stderr(&second).trim(),
        first.status,
        String::from_utf8_lossy(&first.stderr).trim(),
    );
}

/// The fix of [1] and [2]: the day's lock is named by the chain, not by a
/// journal file or the node's address. A second run given the node's URL
/// (not the chain directory) and no journal, while the day is live, is
/// refused by the lock `ior-day-ID-GENESIS.lock` in the user's lock
/// directory (`~/.local/state/gridledger/locks`, the home here a test's
/// own through `GRIDLEDGER_TEST_LOCK_HOME`) and sends nothing; the live
/// run then ends its day with nothing open and no one penalised.
#[test]
fn a_second_run_by_the_nodes_url_is_refused_by_the_days_lock() {
    use gridledger_ledger::ChainClient;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..26");
    let ((before, second, during), first) =
        while_live_day_stopped(bin().args(&day).env("GRIDLEDGER_TEST_LOCK_HOME", &home), &url, || {
            let before = after(&url);
            let by_url = day_args(&url, &f, "24..26");
            let second = bin().args(&by_url).env("GRIDLEDGER_TEST_LOCK_HOME", &home).output().unwrap();
            (before, second, after(&url))
        });
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    let genesis = rpc.block(0).unwrap().unwrap().hash();
    let lock = home.join(".local/state/gridledger/locks").join(format!("ior-day-{}-{genesis}.lock", rpc.chain_id()));
    assert!(!second.status.success(), "the second run succeeded: {}", stdout(&second));
    assert!(
        stderr(&second).contains("is running the day of chain") && stderr(&second).contains(&d(&lock)),
        "{}",
        stderr(&second)
    );
    assert_eq!(before, during, "the second run sent something");
    let (next, fin, open, reputations, rs) = after(&url);
    assert!(
        first.status.success() && fin == next && open == 0 && reputations.iter().all(|r| *r == rs),
        "the first run: {} ({}); settled {fin}/{next} batches, {open} agreements open; reputations {reputations:?}",
        first.status,
        String::from_utf8_lossy(&first.stderr).trim(),
    );
}

/// Held up: a lock file that cannot be opened for writing (a directory
/// where `ior-day.json.lock` should be) refuses the run before anything is
/// sent: the chain's IOR contracts stay uninitialised and no journal is
/// written.
#[test]
fn a_lock_that_cannot_be_opened_refuses_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    std::fs::create_dir(chain.join("ior-day.json.lock")).unwrap();
    let o = gl(&day_args(&c, &f, "24..26"));
    assert!(!o.status.success() && stderr(&o).contains("lock"), "{}", stderr(&o));
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    assert!(primary_config(&rpc).is_err(), "the IOR contracts were initialised");
    assert!(!chain.join("ior-day.json").exists(), "a journal was written");
}

/// Held up: `ior day --rpc` killed (SIGKILL) at instants drawn at random
/// once (0.4 s to 7 s after its IOR contracts appear) and resumed by the
/// same command: the rerun succeeds, nothing is left pending or open, no
/// one is penalised, the traders' IOR coin adds up to their funding, and
/// each trader's balance is its funding plus what it sold minus what it
/// bought over the agreements recorded, each once.
#[test]
fn a_day_killed_at_random_instants_settles_each_account_exactly() {
    for kill_ms in [410, 2730, 6980] {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _node, url) = own_chain(dir.path(), 2);
        let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
        let day = day_args(&c, &f, "24..27");
        let mut run = bin().args(&day).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
        let start = Instant::now();
        while primary_config(&rpc).is_err() {
            assert!(start.elapsed() < Duration::from_secs(240), "the IOR contracts never appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(kill_ms));
        let killed = run.try_wait().unwrap().is_none();
        let _ = run.kill();
        let _ = run.wait();
        let o = gl(&day);
        if killed {
            assert!(o.status.success(), "killed at +{kill_ms} ms; the rerun: {}", stderr(&o));
        }
        let (next, fin, open, reputations, rs) = after(&url);
        assert_eq!((fin, open), (next, 0), "killed at +{kill_ms} ms: something left pending or open");
        assert!(reputations.iter().all(|r| *r == rs), "killed at +{kill_ms} ms: {reputations:?}");
        let rows = balances_vs_trades(&url, 15, 50_000_000);
        let total: u128 = rows.iter().map(|r| r.1).sum();
        assert!(total == 15 * 50_000_000 || total == 0, "killed at +{kill_ms} ms: IOR coin {total}");
        if total != 0 {
            for (a, have, want) in rows {
                assert_eq!(have, want, "killed at +{kill_ms} ms: account {a}");
            }
        }
    }
}

/// [3] (the rollup's attack r12 [1] on a node) A community of 40
/// households and one shared PV plant (`--config`, `--meter-csv`: each
/// household imports 0.5 kWh a slot, the plant exports 40 kWh): the market
/// clears 40 sales of the plant per slot, the driver sends the plant's 40
/// STs in one block, and `SC_DS_ST` records 32 of one sender per batch.
/// `ior day --rpc` exits 0 with 64 of 80 trades settled, 16 agreements
/// left open on chain (both deposits and the buyers' payments locked) and
/// its journal marked finished, so the same command run again is refused
/// ("… which finished") and nothing in the tool settles them. Expected:
/// every cleared sale settles (the driver spreads a sender's entries over
/// blocks), and a day that ends with agreements open is neither reported
/// as a success nor marked finished.
#[test]
fn a_community_whose_plant_sells_to_forty_households_settles_every_sale() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let n = 40;
    let mut toml = String::from(
        "seed = 1\nday = 106\nclearing = \"midpoint\"\ngrid_fee = 0\nfeed_in_tariff = 0\nexecutors = 2\n\
         validators = 3\nfunding_coins = 200\n",
    );
    for _ in 0..n {
        toml.push_str("\n[[participant]]\nload_profile = \"H0-A\"\nask = 150000\nbid = 240000\n");
    }
    toml.push_str("\n[[participant]]\nload_profile = \"H0-G\"\npv_area_dm2 = 3000\nask = 120000\nbid = 230000\n");
    let mut csv = format!("time,{}\n", (0..=n).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","));
    for h in 0..24 {
        csv.push_str(&format!("{h:02}:00,{},80000\n", vec!["-1000"; n].join(",")));
    }
    let (toml_path, csv_path) = (dir.path().join("community.toml"), dir.path().join("meters.csv"));
    std::fs::write(&toml_path, toml).unwrap();
    std::fs::write(&csv_path, csv).unwrap();
    let (tp, cp) = (d(&toml_path), d(&csv_path));
    let mut args = day_args(&c, &f, "24..26");
    args.extend(["--config", &tp, "--meter-csv", &cp]);
    let o = gl(&args);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let (next, fin, open, _, _) = after(&url);
    let rerun = gl(&args);
    let (_, _, open_after_rerun, _, _) = after(&url);
    assert!(
        o.status.success() && r["settled_trades"] == r["trades_count"] && fin == next && open == 0,
        "ior day --rpc: {} ({}); settled {} of {} trades; {open} agreements open on chain; the same command again: \
         {} ({}), {open_after_rerun} agreements open",
        o.status,
        stderr(&o).trim(),
        r["settled_trades"],
        r["trades_count"],
        rerun.status,
        stderr(&rerun).trim()
    );
}
