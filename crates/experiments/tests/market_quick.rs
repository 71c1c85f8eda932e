//! The `market-*` experiments' `--quick` grids, run for real: shape, the
//! seed's numbers beside ours, and their own checks. Never timings.

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
fn market_table_6_1_measures_four_operations() {
    let r = quick("market-table-6-1");
    assert_eq!(r.table.rows.len(), 4);
    assert_eq!(r.seed[0].points.len(), 4);
}

#[test]
fn market_table_6_2_quick_clears_within_the_target() {
    let r = quick("market-table-6-2");
    assert_eq!(r.table.rows.len(), 2, "12×12 and 25×25");
    // Iteration counts are deterministic; the measured seconds are not (a loaded
    // machine can make the smaller market's crypto slower), so compare those.
    let iterations: Vec<u64> = r.table.rows.iter().map(|row| row[5].parse().expect("iterations column")).collect();
    assert!(iterations[1] > iterations[0], "a larger market needs more iterations: {iterations:?}");
    assert!(r.ours[0].points.iter().all(|p| p.1 > 0.0 && p.1.is_finite()));
}

#[test]
fn market_fig_6_4_and_6_5_quick() {
    let r = quick("market-fig-6-4");
    assert_eq!(r.ours.len(), 8, "κ × Δ series");
    let r = quick("market-fig-6-5");
    assert_eq!(r.table.rows.len(), 4);
}

#[test]
fn market_fig_6_6_quick_aladin_converges() {
    let r = quick("market-fig-6-6");
    assert_eq!(r.table.rows.len(), 2);
    assert!(r.ours[0].ys().iter().all(|&it| it < 80.0));
}

#[test]
fn market_fig_6_3_quick_runs_the_shamir_baseline() {
    let r = quick("market-fig-6-3");
    assert_eq!(r.table.rows.len(), 2, "2×2 and 3×3");
    assert_eq!(r.ours.len(), 3, "framework, SSS compute, SSS with network");
    let sss = &r.ours[1];
    assert!(sss.points.iter().all(|p| p.1 > 0.0));
}
