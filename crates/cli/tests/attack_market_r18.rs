//! Attack round 18 on `gridledger market clear` (issue 15). The test is a
//! finding: it fails on the code as it stands and is `#[ignore]`d until
//! fixed. Run with
//! `cargo test -p gridledger-cli --test attack_market_r18 -- --ignored`.

use std::process::Command;

/// The shipped case33bw with no loads, V max 1.05 p.u. and every branch's
/// resistance and reactance (ohms in that file) times `f`.
fn weak_feeder(f: f64) -> String {
    let src = include_str!("../../../data/grid/case33bw.m");
    let mut section = "";
    let mut out = String::new();
    for line in src.lines() {
        let t = line.trim();
        if line.starts_with("mpc.bus = [") {
            section = "bus";
        } else if line.starts_with("mpc.branch = [") {
            section = "branch";
        } else if line.starts_with("];") {
            section = "";
        } else if !section.is_empty() && !t.is_empty() && !t.starts_with('%') {
            let mut c: Vec<String> = t.trim_end_matches(';').split_whitespace().map(str::to_string).collect();
            if section == "bus" {
                c[2] = "0".into();
                c[3] = "0".into();
                c[11] = "1.05".into();
            } else {
                c[2] = format!("{:e}", c[2].parse::<f64>().unwrap() * f);
                c[3] = format!("{:e}", c[3].parse::<f64>().unwrap() * f);
            }
            out.push('\t');
            out.push_str(&c.join("\t"));
            out.push_str(";\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn clear(f: f64, parties: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("weak33.m");
    std::fs::write(&case, weak_feeder(f)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gridledger"))
        .args(["market", "clear", "--case"])
        .arg(&case)
        .args(["--buyers", parties, "--sellers", parties])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

// Finding [3] (low; the CLI face of the market crate's r18 [2]).
// Expected: `market clear` clears the seeded market (seed 1) that the
// reference clears. Observed: on case33bw with no loads, V max 1.05 and
// every impedance x 1e4 (the parser accepts any finite impedance), the
// seeded 4 x 4 and 8 x 8 markets end in "PrimalDual did not converge in
// 200000 iterations" (exit 1); x 3e3 clears them in 874 and 1 926
// iterations, x 1e3 in 242 and 248, and 2 x 2 at x 3e4 in 503. No
// near-linear party: the seeded generator's own.
#[test]
#[ignore = "attack r18: seeded 4 x 4 market on case33bw (no loads, impedances x 1e4) ends in NoConvergence at 200 000"]
fn a_seeded_market_on_a_weak_feeder_clears() {
    let (ok, err) = clear(1e4, "4");
    assert!(ok, "{err}");
}

// Held up: the same feeder at x 1e3 clears the seeded 4 x 4 market.
#[test]
fn a_seeded_market_on_a_feeder_with_impedances_x_1e3_clears() {
    let (ok, err) = clear(1e3, "4");
    assert!(ok, "{err}");
}
