//! `gridledger sim lbft` and `gridledger bench lbft` end to end at tiny
//! sizes: the sweep passes and reports JSON; four replica processes over
//! loopback deliver the same first epochs and every signature verifies.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

fn json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN).args(args).output().expect("run gridledger");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn sim_lbft_sweep_reports_no_failures() {
    let v = json(&["sim", "lbft", "--seeds", "20"]);
    assert_eq!(v["protocol"], "lbft");
    assert_eq!(v["seeds"], 20);
    assert_eq!(v["failures"], 0);
    assert!(v["epochs"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn bench_lbft_four_processes_agree_and_deliver() {
    let v = json(&["bench", "lbft", "--replicas", "4", "--seconds", "3", "--rate", "400", "--json"]);
    assert_eq!(v["replicas"], 4);
    assert_eq!(v["replicas_agree_on_first_epochs"], true, "{v}");
    let per = v["per_replica"].as_array().expect("per-replica reports");
    assert_eq!(per.len(), 4);
    for r in per {
        assert_eq!(r["bad_signatures"], 0, "{r}");
        assert!(r["epochs"].as_u64().unwrap_or(0) >= 20, "{r}");
        assert!(!r["prefix_digest"].as_str().unwrap_or("").is_empty(), "{r}");
    }
    assert!(v["delivered_unique_tx_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{v}");
}
