//! Thesis Fig 4-7 (§4.6.5): Tps^A and L^A of HSM- and TBG-based P^ABC under
//! DFES across N and CTL^pe (the §4.6.3 grid, Eq 4.9 with P^d = 160 ms).

use gridledger_sim::adversary_mobile::StepLatency;
use serde_json::json;

use super::tbg_model::{cell, runs_by_load, seed_numbers, system_grid, Figure, Policy};
use crate::result::{num, ratio, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Fig47;

const ID: &str = "tbg-fig-4-7";
const SOURCE: &str = "seed 003, §4.6.5 text beside Fig 4-7 (p. 100)";

impl Experiment for Fig47 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 4-7, §4.6.5 (p. 100)"
    }
    fn measures(&self) -> &'static str {
        "Tps^A (tx/s) and L^A (s) of TBG and HSM under DFES vs N ∈ {91, 121, 151} and CTL^pe ∈ {1,500, 2,000, 2,500} (Eq 4.9, P^d = 160 ms)"
    }
    fn duration(&self) -> &'static str {
        "≈ 2–4 min full (18 epoch-level runs, release); --quick ≈ 5 s (debug)"
    }
    fn why_differ(&self) -> &'static str {
        "Same epoch-level model as Fig 4-5 (tbg_model) with Eq 4.9's seed constants for the epoch length. TBG wins \
         because π^τ refuses the flood and each valid transaction waits only for its group's turn, while HSM's \
         managers draw B from spaces full of invalid variants (the TM attack) and valid transactions wait many \
         epochs or are never drawn before the run ends. The seed's ratios (up to 14.95× throughput, 12.89× latency) \
         come from its unpublished simulator; our ratios depend on the run length (8 submission epochs plus a \
         drain), because HSM's backlog keeps growing while a run lasts, and on its space cap; the direction and the \
         growth with N match. Where HSM's spaces are not saturated (ITL^pe + CTL^pe/N below B) HSM delivers \
         within the epoch while TBG waits its κ-epoch eligibility period (Algorithm 4.2), so HSM's latency is then \
         lower: TBG's advantage is a property of the flooded regime the seed evaluates. On the seed's grid \
         (ITL^pe = CTL^pe ≤ B) HSM's spaces are only just saturated, so HSM still delivers every valid \
         transaction within our runs; its loss is the longer epochs (full batches of invalid variants in Eq 4.9's \
         transmission term) and a few epochs of waiting, hence ratios of ≈ 1.5× and ≈ 2.6× rather than the seed's."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let (ns, ctls, cells) = system_grid(ctx, ID)?;
        let lat = StepLatency::SEED;
        let mut fig = Figure::new(
            "Fig 4-7: throughput and latency across N and load",
            "CTL^pe (valid transactions per epoch)",
            "Tps^A (tx/s) and L^A (s)",
            true,
            &["N", "CTL^pe", "policy", "Tps^A (tx/s)", "L^A (s)", "L^A (epochs)", "delivered / submitted"],
        );
        let (mut best_tps, mut best_lat) = (0f64, 0f64);
        // At the highest load of each N (HSM's spaces saturated), TBG must win
        // both; everywhere it must deliver at least 95% of HSM's rate.
        let mut top_better = true;
        let mut never_worse = true;
        let top = ctls.last().copied().unwrap_or(0);
        for &n in &ns {
            for policy in [Policy::Tbg, Policy::Hsm] {
                let (mut tps, mut l) = (Vec::new(), Vec::new());
                for (ctl, r) in runs_by_load(&cells, n, &ctls, policy) {
                    fig.grid_row(
                        n,
                        ctl,
                        policy,
                        [
                            num(r.tps(&lat), 1),
                            num(r.latency_s(&lat), 2),
                            num(r.latency_epochs(), 2),
                            format!("{} / {}", r.delivered_valid, r.submitted_valid),
                        ],
                    );
                    tps.push((f64::from(ctl), r.tps(&lat)));
                    l.push((f64::from(ctl), r.latency_s(&lat)));
                }
                fig.ours.push(Series::new(format!("{} N = {n} Tps^A", policy.name()), tps));
                fig.ours.push(Series::new(format!("{} N = {n} L^A (s)", policy.name()), l));
            }
            for &ctl in &ctls {
                if let (Some(t), Some(h)) = (cell(&cells, n, ctl, Policy::Tbg), cell(&cells, n, ctl, Policy::Hsm)) {
                    let rt = t.tps(&lat) / h.tps(&lat).max(1e-9);
                    let rl = h.latency_s(&lat) / t.latency_s(&lat).max(1e-9);
                    best_tps = best_tps.max(rt);
                    best_lat = best_lat.max(rl);
                    never_worse &= rt >= 0.95;
                    if ctl == top {
                        top_better &= rt >= 1.0 && rl > 1.0;
                    }
                }
            }
        }
        let checks = vec![
            Check::new("every run delivered", cells.iter().all(|c| c.run.delivered_valid > 0), "delivered_valid > 0"),
            Check::new("at the highest load TBG has lower L^A and no lower Tps^A", top_better, "per N"),
            Check::new("TBG never below 95% of HSM's Tps^A", never_worse, "per (N, CTL^pe)"),
            Check::new(
                "TBG delivers at least 90% of what was submitted",
                cells
                    .iter()
                    .filter(|c| c.policy == Policy::Tbg)
                    .all(|c| c.run.delivered_valid * 10 >= c.run.submitted_valid * 9),
                "delivered / submitted",
            ),
        ];
        let seed_table =
            seed_numbers(&[["Tps^A TBG / HSM", "up to 14.95×", SOURCE], ["L^A HSM / TBG", "up to 12.89×", SOURCE]]);
        let mut comparison = Table::new(&["quantity", "ours", "seed", "ours / seed"]);
        comparison.row(vec!["largest Tps^A ratio".into(), num(best_tps, 2), "14.95".into(), ratio(best_tps, 14.95)]);
        comparison.row(vec!["largest L^A ratio".into(), num(best_lat, 2), "12.89".into(), ratio(best_lat, 12.89)]);
        Ok(fig.finish(
            json!({"N": ns, "ctl": ctls, "pd_ms": 160, "attacks": "DFES + random"}),
            seed_table,
            comparison,
            checks,
            json!({}),
        ))
    }
}
