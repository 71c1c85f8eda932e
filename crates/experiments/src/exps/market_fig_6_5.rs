//! Thesis Fig 6-5 (§6.7.5): redundant computation under the countermeasure:
//! c, the number of honest executions per subproblem, and d, the number of
//! subproblems held by Byzantine hosts only, for κ ∈ {3, 5, 7, 10}
//! (B = 200, f = 60, 101 subproblems, 50×50 market).

use serde_json::json;

use crate::result::{num, ChartSpec, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};
use gridledger_market::teardo::redundancy_trials;

pub struct Fig65;

const ID: &str = "market-fig-6-5";
const SOURCE: &str = "seed 003, §6.7.5 text beside Fig 6-5";

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0)
}

impl Experiment for Fig65 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 6-5, §6.7.5"
    }
    fn measures(&self) -> &'static str {
        "mean, 5th and 95th percentile of c (honest executions per subproblem) and mean d, per κ, B = 200, f = 60, 101 subproblems"
    }
    fn duration(&self) -> &'static str {
        "≈ 15 s full (release, 5,000 trials as the seed); --quick: 20 trials"
    }
    fn why_differ(&self) -> &'static str {
        "Same setting and trial count as the seed; each trial draws the Byzantine set and rn at random and uses \
         the implementation's Assign (SHA-256 of rn ‖ SP ‖ b). A subproblem held by Byzantine hosts only is \
         executed by all 140 honest enclaves, the others by their honest executors."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let trials = if ctx.quick { 20 } else { 5_000 };
        let kappas = [3usize, 5, 7, 10];
        ctx.progress.start(kappas.len());
        let mut table = Table::new(&["κ", "mean c", "p5 c", "p95 c", "mean d", "0.7κ"]);
        let (mut mean_c, mut mean_d) = (Vec::new(), Vec::new());
        for &kappa in &kappas {
            ctx.progress.step(format!("κ = {kappa}"));
            let runs = redundancy_trials(200, 60, 101, kappa, trials, 5 + kappa as u64);
            let mut cs: Vec<f64> = runs.iter().map(|(c, _)| *c).collect();
            let m = cs.iter().sum::<f64>() / cs.len().max(1) as f64;
            let d = runs.iter().map(|(_, d)| *d as f64).sum::<f64>() / runs.len().max(1) as f64;
            let (p5, p95) = (quantile(&mut cs, 0.05), quantile(&mut cs, 0.95));
            table.row(vec![
                kappa.to_string(),
                num(m, 2),
                num(p5, 2),
                num(p95, 2),
                num(d, 3),
                num(0.7 * kappa as f64, 1),
            ]);
            mean_c.push((kappa as f64, m));
            mean_d.push((kappa as f64, d));
            ctx.progress.done();
        }
        ctx.progress.finish();
        let best = mean_c.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map_or(0.0, |p| p.0);
        let mut seed_table = Table::new(&["quantity", "seed", "source"]);
        seed_table.row(vec!["κ with the least redundancy".into(), "5".into(), SOURCE.into()]);
        seed_table.row(vec!["c at κ = 5".into(), "concentrated around 4".into(), SOURCE.into()]);
        let c5 = mean_c.iter().find(|p| p.0 == 5.0).map_or(0.0, |p| p.1);
        let mut comparison = Table::new(&["quantity", "ours", "seed"]);
        comparison.row(vec!["κ with the least mean c".into(), num(best, 0), "5".into()]);
        comparison.row(vec!["mean c at κ = 5".into(), num(c5, 2), "≈ 4".into()]);
        let checks = vec![
            Check::new("d falls as κ grows", mean_d.windows(2).all(|w| w[1].1 <= w[0].1 + 1e-9), format!("{mean_d:?}")),
            Check::new(
                "c is at least the expected honest executors 0.7κ",
                mean_c.iter().all(|(k, c)| *c >= 0.7 * k - 0.2),
                "per κ",
            ),
        ];
        Ok(ExperimentResult {
            params: json!({"B": 200, "f": 60, "subproblems": 101, "trials": trials, "kappa": kappas}),
            chart: ChartSpec {
                title: "Fig 6-5: redundant computation c vs κ".into(),
                x_label: "κ".into(),
                y_label: "mean honest executions per subproblem".into(),
                y_tight: true,
                ..Default::default()
            },
            ours: vec![Series::new("mean c", mean_c), Series::new("mean d", mean_d)],
            seed: vec![Series::from_seed("c at κ = 5 (text)", vec![(5.0, 4.0)], SOURCE)],
            table,
            seed_table,
            comparison,
            checks,
            raw: json!({}),
            ..Default::default()
        })
    }
}
