//! `gridledger ior day` with a community file over several days.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

#[test]
fn ior_day_runs_a_community_file_over_several_days() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../rollup/examples/community.toml");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("statements.csv");
    let out = Command::new(BIN)
        .args(["ior", "day", "--config", file, "--days", "2", "--json", "--statements"])
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
    let out = Command::new(BIN).args(["ior", "day", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}
