//! Every experiment's `--quick` grid, run for real: the shape of its
//! output (series lengths, tables), the physics it must obey
//! (monotonicity, conservation) and its own sanity checks. Never timings.

use gridledger_experiments::{find, read_result, run_one, write_result, ExperimentResult, Progress, RunCtx};

fn quick(id: &str) -> ExperimentResult {
    let e = find(id).expect("registered");
    let r = run_one(e.as_ref(), &RunCtx { quick: true, progress: Progress::hidden() }).expect("runs");
    assert_eq!(r.id, id);
    assert!(r.quick);
    for c in &r.checks {
        assert!(c.ok, "{id}: check failed: {} ({})\n{:?}", c.name, c.detail, r.table.rows);
    }
    assert!(!r.checks.is_empty(), "{id} checks something");
    assert!(!r.table.rows.is_empty() && !r.seed_table.rows.is_empty() && !r.comparison.columns.is_empty());
    for t in [&r.table, &r.seed_table, &r.comparison] {
        assert!(t.rows.iter().all(|row| row.len() == t.columns.len()), "{id}: ragged table {:?}", t.columns);
    }
    assert!(!r.why_differ.is_empty() && !r.seed_ref.is_empty());
    // Written and read back; the chart has axes and both legends.
    let dir = tempfile::tempdir().unwrap();
    let (json, svg) = write_result(dir.path(), &r).expect("written");
    assert!(json.exists() && svg.exists());
    // (Compared as JSON: serde_json's default float parsing may differ from
    // the written f64 in the last bit.)
    let back = read_result(dir.path(), id).expect("reads back");
    let as_json = |x: &ExperimentResult| -> serde_json::Value {
        serde_json::from_str(&serde_json::to_string(x).unwrap()).unwrap()
    };
    assert_eq!(as_json(&back), as_json(&r));
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg"), "{id}: an SVG document");
    assert!(svg.contains(&r.chart.x_label) && svg.contains(&r.chart.y_label), "{id}: axis labels");
    for s in &r.ours {
        assert!(svg.contains(&format!("gridledger: {}", s.name)), "{id}: legend for {}", s.name);
    }
    for s in &r.seed {
        assert!(svg.contains(&format!("seed: {}", s.name)), "{id}: legend for seed {}", s.name);
        assert!(s.source.as_deref().is_some_and(|x| x.contains("seed")), "{id}: seed series cites its source");
    }
    r
}

fn increasing(v: &[f64]) -> bool {
    v.windows(2).all(|w| w[1] > w[0])
}

#[test]
fn ior_fig_3_5_quick_has_both_systems_per_validator_count() {
    let r = quick("ior-fig-3-5");
    assert_eq!(r.ours.len(), 2);
    for s in &r.ours {
        assert_eq!(s.points.iter().map(|p| p.0).collect::<Vec<_>>(), vec![4.0, 7.0]);
        assert!(s.ys().iter().all(|&y| y > 0.0));
    }
    assert_eq!(r.seed[0].points, vec![(10.0, 2.7), (20.0, 3.4), (30.0, 4.3)]);
}

#[test]
fn ior_fig_3_6_quick_measures_every_core_count() {
    let r = quick("ior-fig-3-6");
    let cores = gridledger_experiments::affinity::available_cores();
    assert_eq!(r.ours.len(), 1);
    assert_eq!(r.ours[0].points.len(), cores);
    assert!(r.ours[0].ys().iter().all(|&y| y > 0.0));
    // The limit is lifted afterwards.
    assert_eq!(gridledger_experiments::affinity::available_cores(), cores);
}

#[test]
fn ior_fig_3_7_quick_gas_grows_with_nodes() {
    let r = quick("ior-fig-3-7");
    for s in r.ours.iter().chain(&r.seed) {
        assert_eq!(s.points.len(), 3, "{}", s.name);
        assert!(increasing(&s.ys()), "every executing node adds gas: {}", s.name);
    }
    // The seed's single chain grows faster than its IOR (the figure's point).
    let (ior, single) = (&r.seed[0].points, &r.seed[1].points);
    assert!(single[2].1 - single[0].1 > ior[2].1 - ior[0].1);
}

#[test]
fn ior_fig_3_8_quick_covers_the_day_and_conserves() {
    let r = quick("ior-fig-3-8");
    assert_eq!(r.ours[0].points.len(), 48);
    let total: f64 = r.ours[0].ys().iter().sum();
    assert_eq!(total as u64, r.raw["trades"].as_u64().unwrap());
    assert!(r.checks.iter().any(|c| c.name.contains("energy sold")));
    assert!(r.checks.iter().any(|c| c.name.contains("coin conserved")));
}

#[test]
fn ior_fig_3_9_quick_prosumer_profiles() {
    let r = quick("ior-fig-3-9");
    assert_eq!(r.ours.len(), 3);
    assert!(r.ours.iter().all(|s| s.points.len() == 48));
    let gen = r.ours[1].ys();
    // PV: nothing at midnight, something at noon.
    assert_eq!(gen[0], 0.0);
    assert!(gen[24] > 0.0);
}

#[test]
fn ior_tables_quick_grid() {
    let r = quick("ior-tables-3-4-to-3-6");
    assert_eq!(r.table.rows.len(), 4, "2 sizes × 2 dispute shares");
    assert_eq!(r.seed_table.rows.len(), 9, "the seed's three tables, three columns each");
    for s in &r.ours {
        assert_eq!(s.points.len(), 2);
    }
    // Every check of the run passes (`quick` asserts each), and among them
    // one per row that both rollups settled every ST.
    assert!(r.checks.iter().all(|c| c.ok), "{:?}", r.checks);
    let settled: Vec<_> = r.checks.iter().filter(|c| c.name.contains("every ST settled by both rollups")).collect();
    assert_eq!(settled.len(), 4, "one settlement check per row: {:?}", r.checks);
    for n in [60, 120] {
        for pm in [0, 50] {
            let name = format!("{n} STs, {pm} ‰ disputed: every ST settled by both rollups");
            assert!(settled.iter().any(|c| c.name == name && c.ok), "{name}: {settled:?}");
        }
    }
    // The challenge-window baseline posts as a conventional optimistic
    // rollup: its batches' windows overlap, one check per row.
    let overlap = r.checks.iter().filter(|c| c.name.contains("challenge-window rollup's windows overlap")).count();
    assert_eq!(overlap, 4, "{:?}", r.checks);
}

#[test]
fn cns_channel_costs_quick_lifetime_is_constant_on_chain() {
    let r = quick("cns-channel-costs");
    let chan = &r.ours[0];
    let every = &r.ours[1];
    assert_eq!(chan.points.len(), 2);
    assert_eq!(chan.points[0].1, chan.points[1].1, "on-chain cost independent of trades");
    assert!(every.points.iter().all(|p| p.0 == p.1), "one transaction per trade on chain");
    assert!(chan.points[1].1 < every.points[1].1);
}

#[test]
fn unknown_experiment_is_a_typed_error() {
    assert!(matches!(find("no-such"), Err(gridledger_experiments::ExperimentError::Unknown(_))));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_result(dir.path(), "ior-fig-3-5"),
        Err(gridledger_experiments::ExperimentError::NoResult(_))
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "reading wrote nothing");
}

#[test]
fn ids_are_unique_and_listed_once() {
    let ids: Vec<&str> = gridledger_experiments::registry().iter().map(|e| e.id()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    // main's 20, the six market-* and the three fl-* experiments
    assert_eq!(ids.len(), 29);
}

fn series<'a>(r: &'a ExperimentResult, name: &str) -> &'a gridledger_experiments::Series {
    r.ours.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("series {name}"))
}

#[test]
fn tbg_fig_4_2_quick_grid_and_trends() {
    let r = quick("tbg-fig-4-2");
    assert_eq!(r.ours.len(), 2, "one series per load");
    for s in &r.ours {
        assert_eq!(s.points.iter().map(|p| p.0).collect::<Vec<_>>(), vec![24.0, 48.0, 72.0]);
    }
    assert_eq!(r.table.rows.len(), 6);
    // Heavier load censors more at every τ (selection probability B/|space| drops threefold).
    let (lo, hi) = (series(&r, "HSM, CTL^pe = 10000"), series(&r, "HSM, CTL^pe = 30000"));
    assert!(hi.ys().iter().sum::<f64>() > lo.ys().iter().sum::<f64>());
}

#[test]
fn tbg_fig_4_4_quick_rate_falls_with_group_size_and_theory_beside() {
    let r = quick("tbg-fig-4-4");
    let sim = series(&r, "R^atc λ = 10, G = 3");
    let th = series(&r, "1 − γ^TBG λ = 10, G = 3");
    assert_eq!(sim.points.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2.0, 4.0, 8.0]);
    assert_eq!(th.points.len(), 3);
    assert!(sim.points[2].1 <= sim.points[0].1);
    assert!(th.points[2].1 <= th.points[0].1, "Eq 4.8 falls with τ/G");
}

#[test]
fn tbg_fig_4_5_quick_tbg_broadcasts_far_less_than_hsm() {
    let r = quick("tbg-fig-4-5");
    // TBG and HSM (valid) per N, plus HSM all copies per N.
    assert_eq!(r.ours.len(), 6);
    assert!(r.ours.iter().all(|s| s.points.len() == 2));
    for n in [16, 22] {
        let t = series(&r, &format!("TBG N = {n} (valid)"));
        let h = series(&r, &format!("HSM N = {n} (all copies)"));
        assert!(t.ys().iter().zip(h.ys()).all(|(a, b)| *a < b), "N = {n}");
    }
}

#[test]
fn tbg_fig_4_6_quick_latency_grows_with_propagation_delay() {
    let r = quick("tbg-fig-4-6");
    assert_eq!(r.ours.len(), 4);
    for s in &r.ours {
        assert_eq!(s.points.len(), 6);
    }
    let l = series(&r, "TBG L^A (s)").ys();
    assert!(l.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn tbg_fig_4_7_quick_tbg_wins_at_the_highest_load() {
    let r = quick("tbg-fig-4-7");
    assert_eq!(r.ours.len(), 8, "2 N × 2 policies × (Tps, L)");
    assert_eq!(r.table.rows.len(), 8);
}

#[test]
fn tbg_fig_4_8_quick_tbg_holds_less() {
    let r = quick("tbg-fig-4-8");
    for n in [16, 22] {
        let t = series(&r, &format!("TBG N = {n}")).ys();
        let h = series(&r, &format!("HSM N = {n}")).ys();
        assert!(t.iter().zip(&h).all(|(a, b)| a < b));
    }
}

#[test]
fn tbg_fig_4_9_quick_measures_each_load() {
    let r = quick("tbg-fig-4-9");
    let m = series(&r, "median");
    assert_eq!(m.points.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1000.0, 10000.0, 30000.0]);
    assert!(m.ys().iter().all(|&y| y > 0.0));
}

#[test]
fn xchain_ccte_quick() {
    let r = quick("xchain-ccte");
    let ccte = &r.ours[0];
    let htlc = &r.ours[1];
    assert_eq!(ccte.points.len(), 2);
    // Latency grows with the confirmations k, the sequential swap's faster.
    assert!(ccte.points[1].1 > ccte.points[0].1);
    assert!(htlc.points[1].1 - htlc.points[0].1 > ccte.points[1].1 - ccte.points[0].1);
}

#[test]
fn xchain_memory_quick() {
    let r = quick("xchain-memory");
    let s = &r.ours[0];
    assert_eq!(s.points.len(), 2);
    // Twice the chains, twice the headers.
    assert!(s.points[1].1 > 1.9 * s.points[0].1 && s.points[1].1 < 2.1 * s.points[0].1);
}

#[test]
fn xchain_ccdi_cost_quick() {
    let r = quick("xchain-ccdi-cost");
    let ccdi = &r.ours[0];
    assert_eq!(ccdi.points.len(), 2);
    // Twice the items, more bytes, less than twice plus the fixed part.
    assert!(ccdi.points[1].1 > ccdi.points[0].1);
}

#[test]
fn xchain_ccdi_memory_quick() {
    let r = quick("xchain-ccdi-memory");
    assert_eq!(r.ours[0].points.len(), 2);
    assert!(r.ours[0].points[1].1 > 1.9 * r.ours[0].points[0].1, "memory grows with N");
}

#[test]
fn xchain_ccdi_latency_quick() {
    let r = quick("xchain-ccdi-latency");
    let c = &r.ours[0];
    assert!(c.points[1].1 > c.points[0].1, "probabilistic chains take longer");
}

#[test]
fn xchain_ccdi_attack_quick() {
    let r = quick("xchain-ccdi-attack");
    assert_eq!(r.ours[0].points.len(), 2);
}
