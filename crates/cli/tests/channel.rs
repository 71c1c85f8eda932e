//! The channel commands across processes: each party is its own
//! `gridledger channel open` process, talking over an authenticated TCP
//! link on loopback, against a node serving JSON-RPC. Parties are killed
//! with SIGKILL mid-channel; their snapshot files must keep the right to
//! close with the newest co-signed state.

mod common;

use common::*;
use gridledger_channels::disk::load_store;
use gridledger_contracts::cns::{ChannelStatus, DisputeOutcome, MIN_T_DELTA_MS};
use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::dev_key;
use gridledger_node::channel::chainlink::{balance, read_channel, read_esc, read_msc};
use gridledger_node::channel::spec::PartySpec;
use gridledger_node::config::write_key;
use gridledger_node::RpcClient;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn")
}

/// Fees paid by `who` in blocks after `after`.
fn fees_since(c: &RpcClient, after: u64, who: &Address) -> u128 {
    let mut fees = 0;
    for h in after + 1..=c.height().unwrap() {
        let b = c.call("gl_getBlock", serde_json::json!([h])).unwrap();
        for t in b["transactions"].as_array().into_iter().flatten() {
            let hash = gridledger_core::Hash32::from_hex(t.as_str().unwrap()).unwrap();
            let r = c.receipt(&hash).unwrap().unwrap();
            if r["sender"].as_str() == Some(who.to_string().as_str()) {
                fees += r["fee"].as_str().unwrap().parse::<u128>().unwrap();
            }
        }
    }
    fees
}

struct Setup {
    _dir: tempfile::TempDir,
    node: Option<gridledger_node::NodeHandle>,
    url: String,
    dirs: [PathBuf; 2],
    root: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(n) = self.node.take() {
            n.shutdown();
        }
    }
}

fn setup() -> Setup {
    let terms =
        ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string(), "--close-timeout-ms", "1000"];
    let (dir, node, url, dirs) = prepared_channel(["p0", "p1"], &terms);
    let root = dir.path().to_path_buf();
    Setup { _dir: dir, node: Some(node), url, dirs, root }
}

fn pay(dir: &Path, energy: u64, price: u64) {
    gl_ok(&["channel", "pay", "--dir", &d(dir), "--energy", &energy.to_string(), "--price", &price.to_string()]);
}

/// An alert program that appends its stdin to `alerts.jsonl`: (program,
/// file).
fn alert_recorder(root: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (prog, out) = (root.join("record-alert.sh"), root.join("alerts.jsonl"));
    std::fs::write(&prog, format!("#!/bin/sh\ncat >> '{}'\n", out.display())).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    (prog, out)
}

/// The alerts recorded so far, once one satisfies `until` (waits up to 20 s).
fn wait_alerts(file: &Path, until: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
    let t = Instant::now();
    loop {
        let got: Vec<serde_json::Value> = std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if got.iter().any(&until) {
            return got;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "alert not recorded; got {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Item 5, alerting beyond logs: a watch whose node never answers runs the
/// alert program with a `node_unreachable` alert naming the URL (and exits
/// non-zero); a missing, directory or non-executable `--alert-exec` is
/// refused up front, naming the flag, before anything is watched.
#[test]
fn watch_alerts_an_unreachable_node_and_refuses_a_bad_alert_program() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup();
    let (prog, alerts) = alert_recorder(&s.root);
    let spec = s.root.join("watch.json");
    gl_ok(&["channel", "watch-spec", "--dir", &d(&s.dirs[0]), "--out", &d(&spec)]);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    v["rpc"] = serde_json::json!(dead);
    std::fs::write(&spec, v.to_string()).unwrap();
    let key = s.root.join("k1.key");
    let watch = |exec: &Path, t: &str| {
        gl(&[
            "channel",
            "watch",
            "--spec",
            &d(&spec),
            "--key",
            &d(&key),
            "--dir",
            &d(&s.dirs[0]),
            "--timeout-s",
            t,
            "--alert-exec",
            &d(exec),
        ])
    };
    let plain = s.root.join("plain.sh");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    for (bad, why) in
        [(s.root.join("nope.sh"), "no such file"), (s.root.clone(), "not a regular file"), (plain, "not executable")]
    {
        let t = Instant::now();
        let o = watch(&bad, "30");
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains("--alert-exec") && err.contains(why), "{why}: {err}");
        assert!(t.elapsed() < Duration::from_secs(15), "refused before watching (took {:?})", t.elapsed());
    }
    assert!(!alerts.exists(), "nothing alerted by a refused start");
    let o = watch(&prog, "4");
    assert!(!o.status.success(), "a watch that never reached its node exits non-zero");
    let got = wait_alerts(&alerts, |a| a["kind"] == "node_unreachable");
    let a = &got[0];
    assert_eq!(a["rpc"].as_str(), Some(dead.as_str()), "{a}");
    assert!(a["attempts"].as_u64().unwrap() >= 3, "{a}");
    assert!(stderr(&o).contains("\"alert\""), "alerts are printed on stderr too: {}", stderr(&o));
}

/// Item 5 for the party process itself: side 1's running `channel open
/// --alert-exec` is told of side 0's stale close (a `dispute_against_us`
/// alert on the program's stdin, with the stale counter) and answers it
/// with its newer state.
#[test]
fn a_running_party_alerts_a_dispute_raised_against_it() {
    let s = setup();
    let c = RpcClient::new(&s.url);
    let (prog, alerts) = alert_recorder(&s.root);
    let p0 = open_cmd(&s.dirs[0]).spawn().unwrap();
    let p1 = open_cmd(&s.dirs[1]).args(["--alert-exec", &d(&prog)]).spawn().unwrap();
    let mut procs = Procs(vec![p1, p0]);
    wait_open(&s.dirs[0]);
    wait_open(&s.dirs[1]);
    pay(&s.dirs[0], 10_000, 100);
    let stale = s.root.join("stale");
    copy_party(&s.dirs[0], &stale);
    pay(&s.dirs[1], 5_000, 200);
    pay(&s.dirs[1], 5_000, 200);
    // Side 0 dies and its stale copy closes unilaterally at counter 1.
    let _ = procs.0[1].kill();
    let _ = procs.0[1].wait();
    gl_ok(&["channel", "dispute", "--dir", &d(&stale), "--no-settle"]);
    let got = wait_alerts(&alerts, |a| a["kind"] == "dispute_against_us");
    let a = got.iter().find(|a| a["kind"] == "dispute_against_us").unwrap();
    assert_eq!((a["counter"].as_u64(), a["by"].as_u64()), (Some(1), Some(0)), "{a}");
    let cid = PartySpec::load(&s.dirs[1]).unwrap().cid;
    assert_eq!(a["cid"].as_str(), Some(cid.to_string().as_str()));
    // And the party answered it: the chain holds counter 3 again.
    let t = Instant::now();
    while read_channel(&c, &cid).unwrap().unwrap().latest.state.counter != 3 {
        assert!(t.elapsed() < Duration::from_secs(15), "the running party did not answer the stale close");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Credit-note top-ups from the party process (issue 10, the client's
/// "top-up"): the merchant signs a note for the next top-up of the
/// credit-funded side 0 (`channel topup-note`), side 0 tops up through its
/// running party (`channel topup --credit-note`), and the co-signed state
/// allocates it. Refused up front with nothing changed on chain or in the
/// channel: the same note again (already used), a note above the approved
/// credit still available, a note for another channel, a side-0 note
/// given to side 1 (which funded by deposit).
#[test]
fn a_credit_funded_party_tops_up_with_a_merchant_note_and_bad_notes_change_nothing() {
    let t =
        ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string(), "--close-timeout-ms", "1000"];
    let terms: Vec<&str> = t.iter().copied().chain(["--credit0"]).collect();
    let (dir, _node, url, dirs) = prepared_channel(["p0", "p1"], &terms);
    let root = dir.path();
    let c = RpcClient::new(&url);
    let _procs = open_both([&dirs[0], &dirs[1]], &[]);
    let spec = PartySpec::load(&dirs[0]).unwrap();
    let cid = spec.cid.to_string();
    let desk = root.join("desk.key");
    let note = |name: &str, amount: &str| -> PathBuf {
        let out = root.join(name);
        gl_ok(&[
            "channel",
            "topup-note",
            "--rpc",
            &url,
            "--desk-key",
            &d(&desk),
            "--cid",
            &cid,
            "--side",
            "0",
            "--amount",
            amount,
            "--out",
            &d(&out),
        ]);
        out
    };
    let topup = |dir: &Path, amount: &str, n: &Path| {
        gl(&["channel", "topup", "--dir", &d(dir), "--amount", amount, "--credit-note", &d(n)])
    };
    let counter = |dir: &Path| {
        let v: serde_json::Value =
            serde_json::from_str(&gl_ok(&["channel", "status", "--dir", &d(dir), "--json"])).unwrap();
        v["counter"].as_u64().unwrap()
    };
    let n1 = note("n1.json", "20000");
    let o = topup(&dirs[0], "20000", &n1);
    assert!(o.status.success(), "top-up with a merchant note: {}", stderr(&o));
    let ch = read_channel(&c, &spec.cid).unwrap().unwrap();
    assert_eq!((ch.topped_up, ch.topups), ([Amount(20_000), Amount(0)], [1, 0]));
    assert_eq!(ch.funded[0], Some(gridledger_contracts::cns::FundKind::Credit));
    let st = load_store(&dirs[1]).unwrap().unwrap().latest.unwrap().state;
    assert_eq!(st.resize.topped_up, [Amount(20_000), Amount(0)], "the peer co-signed the allocation");
    assert_eq!(st.balances, [Amount(120_000), Amount(50_000)]);
    let msc0 = read_msc(&c, spec.sid).unwrap().unwrap();
    assert_eq!(msc0.ledger.locked, Amount(120_000), "the note locks credit like the opening note");

    let n2 = note("n2.json", "150000");
    let n3 = note("n3.json", "1000");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&n3).unwrap()).unwrap();
    v["cid"] = serde_json::json!(gridledger_core::Hash32([9; 32]).to_string());
    std::fs::write(&n3, v.to_string()).unwrap();
    let n4 = note("n4.json", "1000");
    let before = (read_channel(&c, &spec.cid).unwrap().unwrap(), counter(&dirs[0]), msc0.ledger.clone());
    for (who, amount, n, why) in [
        (&dirs[0], "20000", &n1, "already used"),
        (&dirs[0], "150000", &n2, "exceeds the credit"),
        (&dirs[0], "1000", &n3, "not this channel"),
        (&dirs[1], "1000", &n4, "this party is side 1"),
        (&dirs[0], "999", &n4, "differs from the note"),
    ] {
        let o = topup(who, amount, n);
        assert!(!o.status.success(), "{why}: accepted");
        assert!(stderr(&o).contains(why), "{why}: {}", stderr(&o));
        let ch = read_channel(&c, &spec.cid).unwrap().unwrap();
        assert_eq!((ch.topped_up, ch.topups), (before.0.topped_up, before.0.topups), "{why}: chain changed");
        assert_eq!(counter(&dirs[0]), before.1, "{why}: a state was co-signed");
        assert_eq!(read_msc(&c, spec.sid).unwrap().unwrap().ledger, before.2, "{why}: credit ledger changed");
    }
    // The next note (index 1) still works after the refusals.
    let n5 = note("n5.json", "5000");
    assert!(topup(&dirs[0], "5000", &n5).status.success());
    assert_eq!(read_channel(&c, &spec.cid).unwrap().unwrap().topups, [2, 0]);
    gl_ok(&["channel", "close", "--dir", &d(&dirs[0])]);
    check_ledgers(&c, &dirs);
}

fn copy_party(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in ["party.json", "store.bin", "store.log"] {
        if from.join(f).exists() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

fn check_ledgers(c: &RpcClient, dirs: &[PathBuf; 2]) {
    for dir in dirs {
        let spec = PartySpec::load(dir).unwrap();
        let msc = read_msc(c, spec.sid).unwrap().unwrap();
        assert_eq!(msc.ledger.imbalance(), 0, "credit ledger balances");
    }
}

/// Both parties are SIGKILLed after 4 updates. Side 0 then cheats with a
/// snapshot copied after update 1 (a unilateral close with a stale state);
/// side 1's watch service, reading only side 1's snapshot file, answers
/// with update 4 inside t_Δ. Side 1 then closes unilaterally from its file.
#[test]
fn killed_parties_stale_close_is_corrected_by_the_watch_service() {
    let s = setup();
    let c = RpcClient::new(&s.url);
    let initial = total(&c);
    let mut procs = open_both([&s.dirs[0], &s.dirs[1]], &[]);
    pay(&s.dirs[0], 10_000, 100); // side 0 pays 1_000
    let stale = s.root.join("stale");
    copy_party(&s.dirs[0], &stale);
    for _ in 0..3 {
        pay(&s.dirs[1], 5_000, 200); // side 1 pays 1_000 each
    }
    let _ = procs.0.iter_mut().map(|p| p.kill()).count();
    let newest = load_store(&s.dirs[1]).unwrap().unwrap().latest.unwrap();
    assert_eq!(newest.state.counter, 4, "the killed party's file has the newest co-signed state");
    // The watch service is outsourced: it gets the channel's public facts
    // and side 1's store files, never party.json (no secret), and pays gas
    // from its own account (dev key 3).
    let tower = s.root.join("tower");
    std::fs::create_dir_all(&tower).unwrap();
    for f in ["store.bin", "store.log"] {
        if s.dirs[1].join(f).exists() {
            std::fs::copy(s.dirs[1].join(f), tower.join(f)).unwrap();
        }
    }
    let wspec = s.root.join("watch.json");
    gl_ok(&["channel", "watch-spec", "--dir", &d(&s.dirs[1]), "--out", &d(&wspec)]);
    assert!(!std::fs::read_to_string(&wspec).unwrap().contains("secret"), "no secret leaves the party");
    write_key(&s.root.join("k3.key"), &dev_key(3)).unwrap();
    let k3 = s.root.join("k3.key");
    let tower_bal = balance(&c, &dev_key(3).address()).unwrap();
    let side1_bal = balance(&c, &dev_key(2).address()).unwrap();
    // Alerts beyond logs (item 5): a program that records its stdin.
    let (alert_prog, alerts) = alert_recorder(&s.root);
    let mut watcher = spawn(&[
        "channel",
        "watch",
        "--dir",
        &d(&tower),
        "--spec",
        &d(&wspec),
        "--key",
        &d(&k3),
        "--timeout-s",
        "60",
        "--alert-exec",
        &d(&alert_prog),
    ]);
    // Readiness signal: the watcher's first line, printed once it reached
    // the node and is set to replay the channel's events (no sleep-and-hope;
    // under --json the same line goes to stderr as a JSON object).
    let mut ready = String::new();
    std::io::BufReader::new(watcher.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("watching channel"), "watcher readiness line: {ready:?}");
    procs.0.push(watcher);
    gl_ok(&["channel", "dispute", "--dir", &d(&stale), "--no-settle"]);
    let cid = PartySpec::load(&s.dirs[0]).unwrap().cid;
    let t = Instant::now();
    loop {
        let ch = read_channel(&c, &cid).unwrap().unwrap();
        if ch.status == ChannelStatus::Open && ch.latest.state.counter == 4 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "stale close not corrected: {:?}", ch.status);
        std::thread::sleep(Duration::from_millis(50));
    }
    let sid0 = PartySpec::load(&s.dirs[0]).unwrap().sid;
    assert_eq!(read_msc(&c, sid0).unwrap().unwrap().disputes_at_fault, 1, "the stale close is remarked");
    // The operator was told: one `dispute_against_us` alert, with the stale
    // counter, raised by side 0, for this channel.
    let got = wait_alerts(&alerts, |a| a["kind"] == "dispute_against_us");
    let a = got.iter().find(|a| a["kind"] == "dispute_against_us").unwrap();
    assert_eq!((a["counter"].as_u64(), a["by"].as_u64()), (Some(1), Some(0)), "{a}");
    assert_eq!(a["cid"].as_str(), Some(cid.to_string().as_str()));
    assert!(a["t_end_ms"].as_u64().unwrap() > 0);
    assert!(balance(&c, &dev_key(3).address()).unwrap() < tower_bal, "the watch service paid for the resolve");
    assert_eq!(balance(&c, &dev_key(2).address()).unwrap(), side1_bal, "side 1 paid nothing while away");
    // Side 1 closes from its file alone (dispute, t_Δ, settle).
    let before = balance(&c, &dev_key(2).address()).unwrap();
    let h0 = c.height().unwrap();
    let out = gl_ok(&["channel", "dispute", "--json", "--dir", &d(&s.dirs[1]), "--timeout-s", "30"]);
    assert!(out.contains("\"closed_at\":4"), "{out}");
    let ch = read_channel(&c, &cid).unwrap().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert_eq!(ch.latest.state.balances, [Amount(100_000 - 1_000 + 3_000), Amount(50_000 + 1_000 - 3_000)]);
    let after = balance(&c, &dev_key(2).address()).unwrap();
    let fees = fees_since(&c, h0, &dev_key(2).address());
    assert_eq!(after + fees, before + 48_000, "side 1 got its final 48_000 back");
    let cheater = read_msc(&c, PartySpec::load(&s.dirs[0]).unwrap().sid).unwrap().unwrap();
    // The stale close only: side 1's unilateral close timing out proves no
    // cheating, so it books no fault.
    assert_eq!(cheater.disputes_at_fault, 1, "one fault remarked against side 0");
    assert_eq!(total(&c), initial, "coins conserved");
    check_ledgers(&c, &s.dirs);
}

/// Side 1 goes silent (SIGKILL) and never comes back; side 0's close
/// times out into a dispute and settles after t_Δ with the newest state.
#[test]
fn silent_counterparty_timeout_close_returns_funds() {
    let s = setup();
    let c = RpcClient::new(&s.url);
    let initial = total(&c);
    let mut procs = open_both([&s.dirs[0], &s.dirs[1]], &[]);
    for _ in 0..5 {
        pay(&s.dirs[0], 1_000, 100); // 100 each
    }
    let _ = procs.0[0].kill();
    let before = balance(&c, &dev_key(1).address()).unwrap();
    let h0 = c.height().unwrap();
    gl_ok(&["channel", "close", "--dir", &d(&s.dirs[0])]);
    let spec = PartySpec::load(&s.dirs[0]).unwrap();
    let ch = read_channel(&c, &spec.cid).unwrap().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert_eq!(ch.latest.state.counter, 5);
    // On-chain evidence that the close went through the whole dispute
    // window: the ESC's dispute record spans t_Δ and timed out (only
    // `channel_settle` sets that, and the contract refuses it in a block
    // before `t_end`).
    let esc = read_esc(&c, &spec.scid).unwrap().unwrap();
    let rec = esc.disputes.last().expect("a dispute record");
    assert_eq!(rec.outcome, DisputeOutcome::TimedOut);
    assert_eq!(rec.t_end - rec.t_start, spec.t_delta_ms);
    assert_eq!((rec.counter, rec.raised_by), (5, 0));
    let after = balance(&c, &dev_key(1).address()).unwrap();
    let fees = fees_since(&c, h0, &dev_key(1).address());
    assert_eq!(after + fees, before + 99_500, "side 0 got its final 99_500 back");
    let silent = read_msc(&c, PartySpec::load(&s.dirs[1]).unwrap().sid).unwrap().unwrap();
    assert_eq!(silent.disputes_at_fault, 0, "silence proves no cheating: no fault");
    assert_eq!(total(&c), initial, "coins conserved");
    check_ledgers(&c, &s.dirs);
    // The party process exits on its own once closed.
    let t = Instant::now();
    while procs.0[1].try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(5), "party 0 did not exit after close");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two channels' side 0 in one `channel serve` process: each is paid and
/// closed through its own control port, and the one event stream on stdout
/// carries both channels' payments and closes.
#[test]
fn one_serve_process_runs_two_channels_with_one_event_stream() {
    let s = setup();
    let more = [s.root.join("q0"), s.root.join("q1")];
    let k = |i: usize| s.root.join(format!("k{i}.key"));
    let terms =
        ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string(), "--close-timeout-ms", "1000"];
    run_ok(&mut prepare_cmd(&s.url, &k(0), &s.root.join("desk.key"), [&k(1), &k(2)], [&more[0], &more[1]], &terms));
    let cids = [PartySpec::load(&s.dirs[0]).unwrap().cid, PartySpec::load(&more[0]).unwrap().cid];
    let serve = spawn(&["channel", "serve", "--dir", &d(&s.dirs[0]), "--dir", &d(&more[0])]);
    let _peers = Procs(vec![
        spawn(&["channel", "open", "--dir", &d(&s.dirs[1])]),
        spawn(&["channel", "open", "--dir", &d(&more[1])]),
    ]);
    for dir in [&s.dirs[0], &more[0], &s.dirs[1], &more[1]] {
        wait_open(dir);
    }
    pay(&s.dirs[0], 1_000, 100);
    pay(&more[0], 2_000, 100);
    pay(&more[0], 1_000, 100);
    gl_ok(&["channel", "close", "--dir", &d(&s.dirs[0])]);
    gl_ok(&["channel", "close", "--dir", &d(&more[0])]);
    let out = serve.wait_with_output().unwrap();
    assert!(out.status.success(), "serve ended with an error");
    let lines: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(&l.unwrap()).expect("a JSON line")).collect();
    let events_of = |cid: &gridledger_core::Hash32| -> Vec<String> {
        lines
            .iter()
            .filter(|v| v["cid"] == cid.to_string() && v["event"].is_string())
            .map(|v| v["event"].as_str().unwrap().to_string())
            .collect()
    };
    for (cid, paid) in cids.iter().zip([1, 2]) {
        let ev = events_of(cid);
        assert_eq!(ev.iter().filter(|e| e.starts_with("PaymentSent")).count(), paid, "{cid}: {ev:?}");
        assert!(ev.iter().any(|e| e.starts_with("Closed")), "{cid}: {ev:?}");
        let summary = lines.iter().find(|v| v["cid"] == cid.to_string() && v["phase"].is_string()).unwrap();
        assert_eq!(summary["phase"], "Closed");
    }
    let c = RpcClient::new(&s.url);
    for cid in cids {
        assert_eq!(read_channel(&c, &cid).unwrap().unwrap().status, ChannelStatus::Closed);
    }
}

/// Under windowed load (eight clients paying concurrently through side 0's
/// control port, so the proposal window fills and queued payments fold),
/// both party processes are SIGKILLed at a random instant and restarted,
/// three times: each time the two parties come back to one co-signed
/// state, at or above every payment a client was told is done.
#[test]
fn kill_nine_under_load_loses_no_acknowledged_payment() {
    use gridledger_node::channel::party::{control_request_dir, Command as Ctl, Reply};
    use rand::Rng;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let s = setup();
    let acked = Arc::new(AtomicU64::new(0));
    let mut rng = rand::rng();
    for round in 0..3 {
        let mut procs = open_both([&s.dirs[0], &s.dirs[1]], &[]);
        let clients: Vec<_> = (0..8)
            .map(|_| {
                let (acked, dir0) = (acked.clone(), s.dirs[0].clone());
                std::thread::spawn(move || loop {
                    let pay = Ctl::Pay { energy: 10, price: 100 };
                    match control_request_dir(&dir0, &pay, Duration::from_secs(5)) {
                        Ok(Reply::Done { counter }) => {
                            acked.fetch_max(counter, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                })
            })
            .collect();
        // Some payments done, then a random instant.
        let t = Instant::now();
        while acked.load(Ordering::SeqCst) < 20 * (round + 1) {
            assert!(t.elapsed() < Duration::from_secs(20), "no payment done under load");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        for p in &mut procs.0 {
            let _ = p.kill();
            let _ = p.wait();
        }
        for c in clients {
            c.join().unwrap();
        }
        let done = acked.load(Ordering::SeqCst);
        eprintln!("round {round}: killed with {done} acknowledged");
        // Restarted, both converge on one state covering every done payment.
        let _procs = open_both([&s.dirs[0], &s.dirs[1]], &[]);
        let t = Instant::now();
        loop {
            let st = [0, 1].map(|i| control_request_dir(&s.dirs[i], &Ctl::Status, Duration::from_secs(5)));
            let st = st.map(|r| match r {
                Ok(Reply::Status(st)) => Some((st.counter, st.balances)),
                _ => None,
            });
            if let [Some(a), Some(b)] = &st {
                if a == b && a.0.unwrap_or(0) >= done {
                    break;
                }
            }
            assert!(t.elapsed() < Duration::from_secs(20), "round {round}: parties never agreed: {st:?}, done {done}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
