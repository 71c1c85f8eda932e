//! The `fl-*` experiments' `--quick` grids, run for real: shape, the seed's
//! numbers beside ours, and their own checks. Never timings.

use gridledger_experiments::{find, run_one, ExperimentResult, Progress, RunCtx};

fn quick(id: &str) -> ExperimentResult {
    let e = find(id).expect("registered");
    let r = run_one(e.as_ref(), &RunCtx { quick: true, progress: Progress::hidden() }).expect("runs");
    for c in &r.checks {
        assert!(c.ok, "{id}: check failed: {} ({})\n{:?}", c.name, c.detail, r.table.rows);
    }
    assert!(!r.checks.is_empty() && !r.table.rows.is_empty() && !r.seed_table.rows.is_empty());
    for t in [&r.table, &r.seed_table, &r.comparison] {
        assert!(t.rows.iter().all(|row| row.len() == t.columns.len()), "{id}: ragged table {:?}", t.columns);
    }
    r
}

#[test]
fn fl_comm_quick_models_every_b_c_k_at_800_mb() {
    let r = quick("fl-comm");
    assert_eq!(r.table.rows.len(), 27, "B × C × K at S = 800 MB");
    // C2B + B2C + C2C = the CTP-FL column, row by row.
    for row in &r.table.rows {
        let x = |i: usize| row[i].parse::<f64>().unwrap();
        assert!((x(4) + x(5) + x(6) - x(7)).abs() < 0.02, "{row:?}");
        assert!(x(7) < x(8) && x(8) < x(9), "CTP-FL < centralised < BC-FL: {row:?}");
    }
}

#[test]
fn fl_comm_stages_follow_eq_7_18() {
    use gridledger_experiments::exps::fl_comm::stages;
    // S = 800 MB, B = 100, K = C = 200: each client's 20,000 subfragments of
    // 0.06 MB leave at 25/20,000 MB/s each: 48 s (+ 50 ms).
    let s = stages(800.0, 100.0, 200.0, 200.0);
    assert!((s.c2b - 48.05).abs() < 1e-9, "{s:?}");
    // Doubling S doubles every stage's transfer time.
    let h = stages(400.0, 100.0, 200.0, 200.0);
    assert!(((s.c2c - 0.05) / (h.c2c - 0.05) - 2.0).abs() < 1e-9);
}

#[test]
fn fl_convergence_quick_trains_three_variants() {
    let r = quick("fl-convergence");
    assert_eq!(r.table.rows.len(), 3);
    assert_eq!(r.ours.len(), 3);
    assert!(r.ours[0].points.len() == 3 && r.ours[1].points.len() == 3, "round 0 and two rounds");
}

#[test]
fn fl_steps_quick_times_every_step() {
    let r = quick("fl-steps");
    assert_eq!(r.table.rows.len(), 2, "two fragment sizes");
    assert_eq!(r.table.columns.len(), 4 + 9, "four parameters and nine steps");
    assert_eq!(r.ours.len(), 9);
    assert!(r.ours.iter().all(|s| s.points.len() == 2), "every step charted at both sizes");
    // The growth rows name the size ratio they measured (4×), and the chart its K and C.
    assert!(r.comparison.rows[0][0].starts_with("cell proofs: 4×"), "{:?}", r.comparison.rows[0]);
    assert!(r.chart.title.contains("K = 4, C = 10"), "{}", r.chart.title);
}
