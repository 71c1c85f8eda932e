//! Attack round 18 on `gridledger market clear` and `gridledger grid pf`
//! (issue 15). Each `#[ignore]`d test is a finding: it fails on the code as
//! it stands and is ignored until fixed; the others held up. Run with
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

/// The shipped case33bw with its first branch's (1-2) resistance and
/// reactance times `f`: a near-zero-impedance jumper.
fn jumper(f: f64) -> String {
    let src = include_str!("../../../data/grid/case33bw.m");
    let mut in_branch = false;
    let mut done = false;
    let mut out = String::new();
    for line in src.lines() {
        let t = line.trim();
        if line.starts_with("mpc.branch = [") {
            in_branch = true;
        } else if line.starts_with("];") {
            in_branch = false;
        } else if in_branch && !done && !t.is_empty() && !t.starts_with('%') {
            let mut c: Vec<String> = t.trim_end_matches(';').split_whitespace().map(str::to_string).collect();
            c[2] = format!("{:e}", c[2].parse::<f64>().unwrap() * f);
            c[3] = format!("{:e}", c[3].parse::<f64>().unwrap() * f);
            out.push('\t');
            out.push_str(&c.join("\t"));
            out.push_str(";\n");
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn pf(case_text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("jumper33.m");
    std::fs::write(&case, case_text).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_gridledger")).args(["grid", "pf", "--case"]).arg(&case).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// Finding [4] (low). Expected: `grid pf` solves case33bw whose branch 1-2
// is a near-zero-impedance jumper (its 0.0922 + j0.0470 ohm times 1e-6,
// about 5.8e-9 + j2.9e-9 p.u.), as it does at 1e-5 (minimum voltage
// 0.9163 p.u. at bus 18, the jumper changing nothing visible). Observed:
// "power flow did not converge in 10 iterations (mismatch 1.92e-8 p.u.)",
// exit 1 (x 1e-8: mismatch 6.1e-7): the mismatch tolerance is absolute
// (1e-8 p.u.) while the rounding of `V conj(Y V)` grows with the largest
// admittance (~1e8 p.u. here), so no iterate can meet it. Scaling every
// impedance of the feeder by 1e-6 fails alike (x 1e-3 solves).
// Fixed: each bus's mismatch is held to the physical 1e-8 p.u. or, where
// larger, the rounding floor of its computation (`acpf::mismatch_floor`),
// up to `acpf::max_mismatch_floor_pu` (0.001 MW on the case's base); past that the
// case is refused.
#[test]
fn power_flow_solves_a_feeder_with_a_near_zero_impedance_jumper() {
    let (ok, stdout, stderr) = pf(&jumper(1e-6));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("0.9163 p.u. at bus 18"), "{stdout}");
}

// Held up: the same jumper at x 1e-5 solves, with the shipped case's
// minimum voltage.
#[test]
fn power_flow_solves_a_feeder_with_a_small_impedance_jumper() {
    let (ok, stdout, stderr) = pf(&jumper(1e-5));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("0.9163 p.u. at bus 18"), "{stdout}");
}

fn clear_shipped(limit_scale: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridledger"))
        .args(["market", "clear", "--buyers", "4", "--sellers", "4", "--limit-scale", limit_scale])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

// Finding [5] (medium). Expected: `market clear` on the shipped case30
// with its seeded 4 x 4 market clears at any `--limit-scale` the reference
// clears at. Observed: `--limit-scale 1e-10` (each line allots the market
// about 1e-5 kW, above the rows' 1 mW tolerance; the reference clears in
// 12 iterations, welfare $0.3885, seven lines binding) ends in
// "PrimalDual did not converge in 200000 iterations", exit 1; so do 1e-9,
// 1e-11, 1e-12 and 1e-13, while 1e-8 needs 145 918 iterations, 1e-6
// 2 278, and 1e-15 and 1e-300 (rows below the tolerance) 84. No crafted
// data: the shipped case, the seeded generator and a documented flag.
// Diagnosis (not fixed): by iteration ~2 000 the settled trades are within
// 1e-5 of the reference's welfare and every cheap test passes, but the
// duality certificate's gap `d − W` (~6.7e-6 $) is almost exactly `μᵀh`:
// ~30 rows that do not bind at the optimum stay priced while the trades
// sit at zero flow, and the per-party gap test needs `d − W` near 1e-8 $.
// A priced slack row unwinds by `γ_r · boost · (h_r − G_r p)`, i.e. in
// steps proportional to a limit of ~1e-6 kW; the doubling step down
// (`SLACK_DOUBLING`) would catch up, but the rows share the same few
// trades, so as one multiplier falls the trades move, some row overloads
// and every streak resets every few hundred iterations (boost at most
// ~2^10). Doubling faster (every 10 iterations) made the multipliers run
// away (μ > 40 $/kWh). At 1e-15 `μᵀh` is below the gap test; at 1e-6 the
// slack steps are 1e4 times larger.
// Correction: the gap is not only the dual's. The stalled
// trades carry no flow at all (buyer 1 at its `e_max` from the seller at
// its own bus, every other party at 0; the reference has buyers 0, 2 and 3
// at ~5e-6 kWh and seven rows at their limits): welfare $0.388501586
// against the reference's $0.388505334, so `W* − W` alone is 3.75e-6 $,
// while the per-party test asks `d − W ≤ 6.0e-9 $` (`scaled_gap`; its
// floor `1e-9 |d|` is 3.9e-10 $). Since `d ≥ W*` for every dual point, no
// repair of the multipliers can certify these trades: tried (the iteration's
// `μ` with every row the settled trades leave slack by more than its
// tolerance unpriced, checked by the unchanged test), it certified nothing
// here, nor in the r16 and r18 stalls. The trades themselves have to
// reach the optimum's flows (~1e-5 kW) to within ~1e-8 kW. What keeps them
// off: every ~60-600 iterations the buyer at its `e_max` moves ~1e-4 kWh
// of its total between sellers on other buses (its step `α_m` times a
// price difference of ~1e-5 $/kWh), 100 times the rows' limits, which
// resets the slack streaks (most before `SLACK_WAIT`, the longest seen at
// ~600, so the doubling step down barely engages) and re-prices the rows;
// the row weights `c_r` (~0.03) give that overload no damping at this
// scale (`c_r · 2e-4 kW` is ~6e-6 $/kWh).
// Fixed: a row whose limit (with its tolerance) is far below 1e-3 of the
// flow the market's trades could put on it is run in about that scale
// (`primal_dual::TINY_ROW_REF`): its weight and multiplier step raised by
// a factor, the trades that load it with both copies' steps divided by it
// and their penalty multiplied by it. 12 010 iterations here; 1e-9 to
// 1e-13 clear in 970-19 826, 1e-8 in 119 716 (145 918 before).
#[test]
fn the_seeded_market_clears_at_a_limit_scale_of_1e_minus_10() {
    let (ok, err) = clear_shipped("1e-10");
    assert!(ok, "{err}");
}

// Held up: the same market at --limit-scale 1e-6 and 1e-15 clears.
#[test]
fn the_seeded_market_clears_at_limit_scales_1e_minus_6_and_1e_minus_15() {
    for s in ["1e-6", "1e-15"] {
        let (ok, err) = clear_shipped(s);
        assert!(ok, "--limit-scale {s}: {err}");
    }
}
