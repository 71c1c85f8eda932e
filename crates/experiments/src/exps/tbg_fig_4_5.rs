//! Thesis Fig 4-5 (§4.6.3): average redundant broadcasts per delivered
//! transaction, C^ARB, HSM vs TBG under DFES and RSS's random attacks,
//! N ∈ {91, 121, 151}, CTL^pe ∈ {1,500, 2,000, 2,500}.

use serde_json::json;

use super::tbg_model::{cell, runs_by_load, seed_numbers, system_grid, Figure, Policy};
use crate::result::{num, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Fig45;

const ID: &str = "tbg-fig-4-5";
const SOURCE: &str = "seed 003, §4.6.3 text beside Fig 4-5 (pp. 95–96)";

impl Experiment for Fig45 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 4-5, §4.6.3 (pp. 95–96)"
    }
    fn measures(&self) -> &'static str {
        "C^ARB of HSM- and TBG-based P^ABC under DFES + random attacks vs N and CTL^pe (τ = 12, G = 3, κ = 2, λ = 10, ℓ = 2, ε = 1, p^B = 0.1, B = 2,500)"
    }
    fn duration(&self) -> &'static str {
        "≈ 2–4 min full (18 epoch-level runs, release); --quick ≈ 5 s (N ∈ {16, 22}, debug)"
    }
    fn why_differ(&self) -> &'static str {
        "Our C^ARB comes from the epoch-level model in tbg_model (real TBG buckets and HSM random selection, real \
         M^RC and DFES slow sets, P^ABC abstracted to 'certified if the broadcaster survives Δ epochs'). The seed's \
         formula counts broadcasts of delivered valid transactions only; by that count HSM broadcasts each valid \
         transaction about once or twice (DFES's delayed certificates make the next managers of the space \
         rebroadcast), far below the seed's ≈ 63. The seed explains its HSM value by invalid transactions broadcast \
         many times (the TM attack puts a variant in every hash space), so we also report C^ARB counting every \
         broadcast copy, invalid variants included, per delivered valid transaction ('all copies'): that is the \
         series to set beside the seed's HSM numbers. It grows with N as the seed says (every hash space's manager \
         broadcasts its variant) but sits at 115–210 against the seed's 63: we put a variant into every space, \
         while the seed's DFES maps invalid transactions only to the spaces that correct replicas manage. TBG's value is the seed's: the members of the first group that \
         are correct each broadcast the transaction once (τ/G = 4, about 2/3 of them correct), so ≈ 2–2.3, bounded \
         by Theorem 4.2's g = 4."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let (ns, ctls, cells) = system_grid(ctx, ID)?;
        let mut fig = Figure::new(
            "Fig 4-5: redundant broadcasts per delivered transaction",
            "CTL^pe (valid transactions per epoch)",
            "C^ARB (broadcasts per delivered tx)",
            true,
            &[
                "N",
                "CTL^pe",
                "policy",
                "C^ARB (valid, seed's formula)",
                "C^ARB (all copies)",
                "max broadcasts of one tx",
                "delivered valid",
            ],
        );
        for policy in [Policy::Tbg, Policy::Hsm] {
            for &n in &ns {
                let mut valid = Vec::new();
                let mut all = Vec::new();
                for (ctl, r) in runs_by_load(&cells, n, &ctls, policy) {
                    fig.grid_row(
                        n,
                        ctl,
                        policy,
                        [
                            num(r.carb_valid(), 3),
                            num(r.carb_all(), 3),
                            r.max_copies.to_string(),
                            r.delivered_valid.to_string(),
                        ],
                    );
                    valid.push((f64::from(ctl), r.carb_valid()));
                    all.push((f64::from(ctl), r.carb_all()));
                }
                fig.ours.push(Series::new(format!("{} N = {n} (valid)", policy.name()), valid));
                if policy == Policy::Hsm {
                    fig.ours.push(Series::new(format!("HSM N = {n} (all copies)"), all));
                }
            }
        }
        let tbg_max = cells.iter().filter(|c| c.policy == Policy::Tbg).map(|c| c.run.carb_valid()).fold(0.0, f64::max);
        let tbg_bound_ok = cells.iter().filter(|c| c.policy == Policy::Tbg).all(|c| {
            // Theorem 4.2 bounds post-delivery broadcasts by g; τ bounds all.
            c.run.max_copies <= if ctx.quick { 8 } else { 12 }
        });
        let min_ratio = ns
            .iter()
            .flat_map(|&n| ctls.iter().map(move |&c| (n, c)))
            .filter_map(|(n, c)| {
                let t = cell(&cells, n, c, Policy::Tbg)?.carb_valid();
                let h = cell(&cells, n, c, Policy::Hsm)?.carb_all();
                (t > 0.0).then_some(h / t)
            })
            .fold(f64::INFINITY, f64::min);
        let hsm_max = cells.iter().filter(|c| c.policy == Policy::Hsm).map(|c| c.run.carb_all()).fold(0.0, f64::max);
        let checks = vec![
            Check::new(
                "every cell delivered something",
                cells.iter().all(|c| c.run.delivered_valid > 0),
                "delivered_valid > 0",
            ),
            Check::new("TBG: no transaction broadcast by more than τ replicas", tbg_bound_ok, "max copies ≤ τ"),
            Check::new(
                "HSM (all copies) above TBG everywhere",
                min_ratio > 1.0,
                format!("smallest ratio {min_ratio:.2}"),
            ),
        ];
        let seed_table = seed_numbers(&[
            ["TBG C^ARB", "≤ 2.31 (2.2–2.3)", SOURCE],
            ["HSM / TBG", "≥ 27.08×", SOURCE],
            ["HSM RB (summary)", "up to 63", "seed 003 §4.7, p. 102"],
        ]);
        let mut comparison = Table::new(&["quantity", "ours", "seed"]);
        comparison.row(vec!["largest TBG C^ARB".into(), num(tbg_max, 3), "2.31".into()]);
        comparison.row(vec!["smallest HSM(all copies) / TBG".into(), num(min_ratio, 2), "27.08".into()]);
        comparison.row(vec!["largest HSM C^ARB (all copies)".into(), num(hsm_max, 2), "63".into()]);
        Ok(fig.finish(json!({"N": ns, "ctl": ctls, "tau": if ctx.quick { 8 } else { 12 }, "G": if ctx.quick { 2 } else { 3 },
                           "kappa": 2, "lambda": if ctx.quick { 3 } else { 10 }, "ell": if ctx.quick { 1 } else { 2 },
                           "epsilon": 1, "p_B": 0.1, "B": if ctx.quick { 100 } else { 2500 }, "attacks": "DFES + random"}), seed_table, comparison, checks, json!({})))
    }
}
