//! `gridledger market clear`'s work budget on the case's network rows
//! (issue 15): a radial case's LinDistFlow rows (row pairs × buses) are
//! counted before the model is built, so a feeder with many buses under
//! ALADIN (or primal-dual at its default iteration cap) is refused up
//! front with exit 2 and the budget named, while the shipped 33-bus feeder
//! still clears.

mod common;

use std::process::Command;
use std::time::Duration;

use common::bounded::{run_within, under_3gb};
use common::BIN;

/// A radial chain of `n` buses without loads or line ratings (one
/// V max / V min row pair per non-root bus): `n − 1` row pairs × `n` buses.
fn chain(n: usize) -> String {
    let mut s =
        String::from("mpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n 1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n");
    for k in 2..=n {
        s.push_str(&format!(" {k} 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n"));
    }
    s.push_str("];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\nmpc.branch = [\n");
    for k in 2..=n {
        s.push_str(&format!(" {} {k} 0.0001 0.0001 0 0 0 0 0 0 1;\n", k - 1));
    }
    s.push_str("];\n");
    s
}

#[test]
fn a_feeder_with_many_buses_is_refused_up_front_and_case33bw_still_clears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feeder.m");
    // 2 000 buses: 1 999 × 2 000 ≈ 4·10⁶ entries, inside the model's own
    // limit (12.5·10⁶), far beyond what ALADIN's QPs factor in reasonable
    // time and memory
    std::fs::write(&path, chain(2_000)).unwrap();
    let case = format!("'{}'", path.display());
    for args in [
        format!("market clear --algorithm aladin --buyers 2 --sellers 2 --case {case}"),
        // primal-dual at its default cap: 4·10⁶ entries a round for 200 000 rounds
        format!("market clear --buyers 2 --sellers 2 --case {case}"),
        format!("market clear --buyers 2 --sellers 2 --byzantine 0 --case {case}"),
    ] {
        // a guard against a run that is not refused, not a timing assertion
        let (status, err) = run_within(&mut under_3gb(&args), Duration::from_secs(120));
        let code = status.and_then(|s| s.code());
        assert_eq!(code, Some(2), "{args}: exit {code:?} (None: still running), stderr {err:?}");
        assert!(err.contains("work budget exceeded") && err.contains("distflow"), "{args}: {err}");
        assert!(err.contains("1999 row pairs") || err.contains("3998000"), "{args}: {err}");
    }
    // the shipped feeder clears under ALADIN as before
    let out = Command::new(BIN)
        .args(["market", "clear", "--case", "case33bw", "--buyers", "8", "--sellers", "8", "--algorithm", "aladin"])
        .args(["--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"]["network"], "distflow");
    assert!(v["result"]["relative_gap"].as_f64().unwrap().abs() < 1e-3, "{v}");
}
