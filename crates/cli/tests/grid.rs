//! `gridledger grid pf` on the shipped cases and on bad input.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

#[test]
fn grid_pf_case33bw_json_reports_runpf_figures() {
    let out = Command::new(BIN).args(["grid", "pf", "--case", "case33bw", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["min_vm_bus"], 18);
    assert!((v["min_vm"].as_f64().unwrap() - 0.9131).abs() < 1e-4);
    assert!((v["loss_mw"].as_f64().unwrap() * 1e3 - 202.68).abs() < 0.05);
    assert_eq!(v["buses"].as_array().unwrap().len(), 33);
}

#[test]
fn grid_pf_reads_a_file_and_prints_the_table() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/grid/case30.m");
    let out = Command::new(BIN).args(["grid", "pf", "--case", file]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("minimum voltage"), "{text}");
    assert!(text.contains("total losses"), "{text}");
    assert_eq!(text.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count(), 30);
}

#[test]
fn grid_pf_refuses_a_bad_case_with_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v1.m");
    std::fs::write(&f, "mpc.version = '1';\nmpc.baseMVA = 100;\n").unwrap();
    let out = Command::new(BIN).args(["grid", "pf", "--case"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version") && !err.contains("panicked"), "{err}");
    let out = Command::new(BIN).args(["grid", "pf", "--case", "no-such-case"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A reference bus with no in-service generator (MATPOWER's `bustypes`):
/// the first PV bus with one becomes the reference, and the table says so;
/// with no such PV bus `grid pf` exits 1 with a message.
#[test]
fn grid_pf_hands_a_reference_without_a_generator_to_the_first_pv_bus() {
    let feeder = |bus2: &str| {
        format!(
            "function mpc = lc\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n \
             1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 {bus2} 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
             3 1 1 0.6 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 1 100 0 10 0;\n \
             2 0.2 0 10 -10 1.01 100 1 10 0;\n];\nmpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n \
             2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("case.m");
    std::fs::write(&f, feeder("2")).unwrap();
    let out = Command::new(BIN).args(["grid", "pf", "--case"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("reference bus 2 (bus 1, the case's reference"), "{text}");
    std::fs::write(&f, feeder("1")).unwrap();
    let out = Command::new(BIN).args(["grid", "pf", "--case"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no slack") && !err.contains("panicked"), "{err}");
}

#[test]
fn market_clear_json_is_within_0_1_percent_of_the_optimum() {
    let run = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(BIN).args(["market", "clear"]).args(args).arg("--json").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    for args in [
        &["--case", "case30.m", "--buyers", "12", "--sellers", "12"][..],
        &["--buyers", "12", "--sellers", "12", "--limit-scale", "1e-4"],
        &["--case", "case33bw", "--buyers", "12", "--sellers", "12", "--algorithm", "aladin"],
        &["--buyers", "5", "--sellers", "5", "--algorithm", "central"],
    ] {
        let v = run(args);
        let r = &v["result"];
        assert_eq!(r["converged"], true, "{args:?}: {v}");
        assert!(r["relative_gap"].as_f64().unwrap().abs() < 1e-3, "{args:?}: {v}");
        assert!(r["iterations"].as_u64().unwrap() > 0);
        assert!(!r["trades"].as_array().unwrap().is_empty());
        // the settlement in integers: Σ payments = total = Σ receipts + the
        // operator's congestion rent (nodal prices), Wh per trade
        let st = &r["settlement"];
        let sum = |k: &str| st[k].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).sum::<i64>();
        let total = st["total_minor"].as_i64().unwrap();
        let rent = st["operator_minor"].as_i64().unwrap();
        assert!(total > 0 && rent >= 0, "{args:?}: {st}");
        assert_eq!((sum("buyer_pays"), sum("seller_receives") + rent), (total, total), "{args:?}: {st}");
        let wh: u64 = st["trades"].as_array().unwrap().iter().map(|t| t["wh"].as_u64().unwrap()).sum();
        assert_eq!(wh, st["energy_wh"].as_u64().unwrap());
        assert!((wh as f64 - 1000.0 * r["energy_kwh"].as_f64().unwrap()).abs() <= 1.0 * 12.0 * 12.0);
    }
    // congestion binds lines at the optimum, and its rent is the operator's
    let v = run(&["--buyers", "12", "--sellers", "12", "--limit-scale", "1e-4"]);
    assert!(!v["result"]["binding"].as_array().unwrap().is_empty());
    assert!(v["result"]["settlement"]["operator_minor"].as_i64().unwrap() > 0, "{v}");
    let out = Command::new(BIN).args(["market", "clear", "--buyers", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn market_clear_byzantine_detects_the_bad_hosts_and_keeps_the_welfare() {
    let out = Command::new(BIN)
        .args(["market", "clear", "--buyers", "4", "--sellers", "4", "--byzantine", "0.3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts: Vec<u64> =
        v["byzantine_hosts"].as_array().unwrap().iter().map(|h| h["node"].as_u64().unwrap()).collect();
    assert_eq!(hosts.len(), 3);
    let detected: Vec<u64> =
        v["interval"]["teardo"]["detected"].as_array().unwrap().iter().map(|d| d[0].as_u64().unwrap()).collect();
    assert!(detected.iter().all(|n| hosts.contains(n)), "only Byzantine hosts are flagged: {v}");
    assert!(!detected.is_empty());
    assert!(v["relative_gap"].as_f64().unwrap().abs() < 1e-3, "{v}");
    assert_eq!(v["isolation"], "none (software enclaves)");
    // a fraction out of range is refused before anything runs
    for bad in ["1.5", "NaN", "-0.1"] {
        let out = Command::new(BIN)
            .args(["market", "clear", "--buyers", "2", "--sellers", "2", "--byzantine", bad])
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(1) | Some(2)), "{bad}: refused with a usage or run error");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// A meshed case none of whose lines is rated (case33bw with its tie switch
/// 18-33 closed) is refused by `market clear`, not cleared with no network
/// constraint (it cleared 1 111 kWh to the far end and left it at 0.869 p.u.).
#[test]
fn market_clear_refuses_a_meshed_case_with_no_rated_line() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/grid/case33bw.m")).unwrap();
    let open = "\t18\t33\t0.5000\t0.5000\t0\t0\t0\t0\t0\t0\t0";
    assert!(text.contains(open));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("case33bw_tie_closed.m");
    std::fs::write(&f, text.replace(open, "\t18\t33\t0.5000\t0.5000\t0\t0\t0\t0\t0\t0\t1")).unwrap();
    for extra in [&[][..], &["--byzantine", "0.3"]] {
        let out = Command::new(BIN)
            .args(["market", "clear", "--buyers", "4", "--sellers", "4", "--case"])
            .arg(&f)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", String::from_utf8_lossy(&out.stdout));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("has a rating") && !err.contains("panicked"), "{err}");
    }
}
