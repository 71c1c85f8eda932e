//! The README's main commands, end to end at tiny sizes: `gridledger demo`
//! and each `gridledger bench` subcommand run to completion and print JSON
//! whose figures agree with each other and with the sizes asked for. No
//! timing is asserted (performance lives in the benchmarks themselves), only
//! that timings are reported as non-negative numbers.

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// Runs `gridledger args…`, asserts success, returns stdout.
fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run gridledger");
    assert!(out.status.success(), "gridledger {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn secs(v: &Value) {
    let f = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(f >= 0.0 && f.is_finite(), "bad duration {f}");
}

#[test]
fn demo_runs_the_three_parts_and_each_balances() {
    // One JSON document with the three parts.
    let out = run(&["demo", "--accounts", "3", "--transfers", "20", "--json", "--no-report"]);
    let doc = json(&out);
    // 1. Transfers on a single-validator chain.
    let chain = doc["ledger"].clone();
    assert_eq!(u(&chain["transfers_submitted"]), 20);
    assert_eq!(u(&chain["transfers_committed"]), 20);
    assert_eq!(u(&chain["accounts"]), 3);
    assert_eq!(u(&chain["gas_used"]), 20 * 21_000);
    assert_eq!(chain["fees_paid"].as_str().unwrap().parse::<u64>().unwrap(), 20 * 21_000, "fees at gas price 1");
    assert_eq!(chain["supply_conserved"], true);
    assert_eq!(chain["merkle_proof_verified"], true);
    assert!(u(&chain["blocks"]) >= 1 && u(&chain["final_height"]) >= u(&chain["blocks"]));
    secs(&chain["elapsed_s"]);
    // 2. A credit-note state channel.
    let channel = doc["channel"].clone();
    assert_eq!(u(&channel["credit_ledger_imbalance"]), 0);
    assert!(u(&channel["trades_off_chain"]) > 0);
    assert!(u(&channel["final_counter"]) > u(&channel["trades_off_chain"]), "each trade is one co-signed state");
    assert_eq!(channel["final_balances"].as_array().unwrap().len(), 2);
    // 3. A day of the Improved Optimistic Rollup.
    let day = doc["ior_day"].clone();
    let trades = day["trades"].as_array().unwrap();
    assert_eq!(u(&day["trades_count"]), trades.len() as u64);
    let per_slot: u64 = day["trades_per_slot"].as_array().unwrap().iter().map(u).sum();
    assert_eq!(per_slot, trades.len() as u64);
    let settled: Vec<&Value> = trades.iter().filter(|t| t["settled"] == true).collect();
    assert_eq!(u(&day["settled_trades"]), settled.len() as u64);
    assert_eq!(u(&day["revenue_minor"]), settled.iter().map(|t| u(&t["payment"])).sum::<u64>());
    let ps = day["participants"].as_array().unwrap();
    let bought: u64 = ps.iter().map(|p| u(&p["bought_wh"])).sum();
    let sold: u64 = ps.iter().map(|p| u(&p["sold_wh"])).sum();
    assert_eq!(bought, sold, "every Wh bought was sold");
    assert_eq!(bought, u(&day["energy_traded_wh"]));
    let coins = &day["coins"];
    assert_eq!(coins["chain_total_before"], coins["chain_total_after"]);
    assert_eq!(u(&coins["ior_total_start"]), u(&coins["ior_total_end"]) + u(&coins["burned"]));
    // Federated forecasting: a few CTP-FL rounds, the next day beside the actual load.
    let fc = &doc["forecast"];
    assert_eq!(fc["rounds"].as_array().unwrap().len(), 3);
    assert_eq!(fc["forecast_wh"].as_array().unwrap().len(), 24);
    assert_eq!(fc["actual_wh"].as_array().unwrap().len(), 24);
}

#[test]
fn bench_ledger_commits_every_transfer() {
    let r = json(&run(&["bench", "ledger", "--txs", "200", "--accounts", "20", "--block-txs", "50", "--json"]));
    assert_eq!(r["bench"], "ledger");
    assert_eq!(u(&r["transfers"]), 200);
    assert_eq!(u(&r["committed"]), 200);
    assert_eq!(u(&r["rejected"]), 0);
    assert_eq!(u(&r["blocks"]), 4, "200 transfers in blocks of 50");
    assert_eq!(u(&r["final_height"]), 4);
    assert_eq!(u(&r["gas_used"]), 200 * 21_000);
    assert_eq!(r["state_root"].as_str().unwrap().len(), 66);
    secs(&r["elapsed_s"]);
    secs(&r["tx_per_s"]);
    let c = &r["block_commit_ms"];
    assert!(c["p50"].as_f64().unwrap() <= c["p99"].as_f64().unwrap());
    assert!(c["p99"].as_f64().unwrap() <= c["max"].as_f64().unwrap());
}

#[test]
fn bench_pbft_commits_the_batch_on_four_validators() {
    let r = json(&run(&[
        "bench",
        "pbft",
        "--validators",
        "4",
        "--txs",
        "40",
        "--sustained",
        "0",
        "--clients",
        "2",
        "--json",
    ]));
    assert_eq!(r["bench"], "pbft");
    assert_eq!(u(&r["validators"]), 4);
    assert_eq!(u(&r["batch"]["transactions"]), 40);
    assert!(u(&r["batch"]["blocks"]) >= 1);
    secs(&r["batch"]["committed_on_all_validators_s"]);
    assert!(r["sustained"].is_null(), "--sustained 0 skips the sustained run");
}

/// `--processes --timeline`: every committed height appears with its
/// commit on all four validators, the heights carry exactly the batch, and
/// each validator's CPU and gossip are accounted.
#[test]
fn bench_pbft_timeline_accounts_for_every_height_and_validator() {
    let r = json(&run(&[
        "bench",
        "pbft",
        "--processes",
        "--timeline",
        "--validators",
        "4",
        "--txs",
        "40",
        "--sustained",
        "0",
        "--clients",
        "2",
        "--json",
    ]));
    let t = &r["timeline"];
    let heights = t["heights"].as_array().unwrap();
    let committed: Vec<&serde_json::Value> = heights.iter().filter(|h| h["txs"].is_u64()).collect();
    assert_eq!(committed.iter().map(|h| u(&h["txs"])).sum::<u64>(), 40, "the heights carry the batch: {t}");
    for h in &committed {
        assert_eq!(u(&h["committed_ms"]["n"]), 4, "committed on every validator: {h}");
        assert!(h["committed_ms"]["min"].as_f64().unwrap() <= h["committed_ms"]["max"].as_f64().unwrap());
    }
    let gossip = t["gossip"].as_array().unwrap();
    assert_eq!(gossip.len(), 4);
    assert_eq!(gossip.iter().map(|g| u(&g["from_clients"])).sum::<u64>(), 40, "each transaction entered once");
    let cpu = &r["cpu_us_per_tx_per_validator"]["batch"];
    assert!(cpu["total"].as_f64().unwrap() >= 0.0 && cpu["validator"].is_number(), "{cpu}");
}

#[test]
fn bench_ior_settles_every_st_and_handles_each_dispute() {
    let r = json(&run(&[
        "bench",
        "ior",
        "--sizes",
        "10",
        "--disputes",
        "0,100",
        "--gas-txs",
        "5",
        "--sellers",
        "3",
        "--window-ms",
        "1000",
        "--json",
    ]));
    assert_eq!(r["bench"], "ior");
    let rows = r["ior_vs_challenge_window_or"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "one row per (size, dispute share)");
    for row in rows {
        let permille = u(&row["dispute_permille"]);
        assert_eq!(u(&row["sts"]), 10);
        assert_eq!(u(&row["disputed_sts"]), 10 * permille / 1000);
        for side in ["ior", "challenge_window_or"] {
            let s = &row[side];
            assert_eq!(u(&s["sts"]), 10, "{side}");
            assert_eq!(u(&s["settled_sts"]), 10, "{side}");
            assert_eq!(s["disputed_sts"], row["disputed_sts"], "{side}");
            assert_eq!(s["disputes_handled"], s["disputed_sts"], "{side}");
            assert_eq!(u(&s["gas"]), u(&s["gas_primary"]) + u(&s["gas_secondary"]), "{side}");
        }
        assert_eq!(u(&row["ior"]["window_ms"]), 1000);
    }
    let single = &r["ats_and_sts"]["single_chain"];
    assert_eq!((u(&single["ats"]), u(&single["ats_ok"])), (5, 5));
    assert_eq!((u(&single["sts"]), u(&single["sts_ok"])), (5, 5));
    assert_eq!(u(&single["gas"]), u(&single["sc_exe_at_gas"]) + u(&single["sc_exe_st_gas"]));
}

#[test]
fn bench_channel_runs_two_processes_and_counts_on_chain_costs() {
    let r = json(&run(&["bench", "channel", "--updates", "20", "--fsync-only", "--json"]));
    assert_eq!(r["bench"], "channel");
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "--fsync-only runs only the fsync'd variant: a latency run and a throughput run");
    assert!(runs.iter().all(|r| r["durability"] == "fsync"));
    assert_eq!(u(&runs[0]["inflight"]), 1, "the latency run keeps one payment in flight");
    assert!(u(&runs[1]["inflight"]) > 1, "the throughput run keeps several in flight");
    let run = &runs[0];
    assert_eq!(u(&run["updates"]), 20);
    let l = &run["latency_us"];
    assert!(u(&l["p50"]) <= u(&l["p90"]) && u(&l["p90"]) <= u(&l["p99"]) && u(&l["p99"]) <= u(&l["max"]));
    let every = &run["on_chain"]["every_trade_on_chain"];
    assert_eq!(u(&every["gas_per_trade"]), 21_000);
    assert_eq!(u(&every["gas"]), u(&every["txs"]) * 21_000);
    assert!(u(&run["on_chain"]["channel_lifetime"]["txs"]) < u(&every["txs"]), "the channel saves transactions");
}

/// Runs `gridledger ARGS` on a pseudo-terminal (under `script`) and returns
/// what the terminal showed; None (with a note) where `script` is not
/// installed.
fn on_tty(args: &str) -> Option<String> {
    let Some(script) = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        eprintln!("skipped: no `script` to run the command on a pseudo-terminal");
        return None;
    };
    let cmd = format!("{BIN} {args}");
    let o = Command::new(script).args(["-qec", &cmd, "/dev/null"]).output().expect("run script");
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stdout));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Issue 17, defect 9: on a terminal `bench ior` draws a bar of its named
/// steps on stderr (`gas per contract`, then each table cell, `n/4`);
/// under --json nothing but the one JSON document reaches the terminal.
#[test]
fn bench_ior_draws_its_steps_on_a_terminal_only() {
    let ior = "bench ior --sizes 10 --disputes 0 --gas-txs 5 --sellers 3 --window-ms 1000";
    let Some(shown) = on_tty(ior) else { return };
    assert!(shown.contains("bench ior") && shown.contains("gas per contract") && shown.contains("/4"), "{shown}");
    let quiet = on_tty(&format!("{ior} --json")).unwrap();
    assert!(!quiet.contains("gas per contract"), "progress drawn under --json: {quiet}");
    assert_eq!(json(quiet.trim())["bench"], "ior", "the terminal shows one JSON document");
}

/// Issue 17, defect 9, for `bench pbft` (≈17 s at its defaults): on a
/// terminal each named step (starting the validators, submitting, waiting
/// for the commit on every validator) is drawn while it runs.
#[test]
fn bench_pbft_draws_its_steps_on_a_terminal() {
    let Some(shown) = on_tty("bench pbft --validators 4 --txs 40 --sustained 0 --clients 2") else { return };
    assert!(shown.contains("bench pbft") && shown.contains("starting 4 validators"), "{shown}");
    assert!(shown.contains("committed on every validator") && shown.contains("/4"), "{shown}");
}
