//! Thesis Fig 4-9 (§4.6.7): TBG grouping latency — the time to select a
//! batch from the buckets (Algorithm 4.2) — vs the received load per
//! replica, B = 2,500, G = 3 (τ = 12, κ = 2), 30 warm-up and 260 measured
//! repetitions per load, as the seed. The criterion micro-benchmark
//! `cargo bench -p gridledger-consensus --bench tbg_grouping` measures the
//! same operation.

use serde_json::json;

use super::tbg_model::{grouping_latency_ns, quantile, seed_numbers, Figure};
use crate::result::{num, ratio, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Fig49;

const ID: &str = "tbg-fig-4-9";
const SOURCE: &str = "seed 003, §4.6.7 text beside Fig 4-9 (pp. 101–102)";

impl Experiment for Fig49 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 4-9, §4.6.7 (pp. 101–102)"
    }
    fn measures(&self) -> &'static str {
        "median and p95 TBG grouping latency (µs) at 1k–120k received tx/s per replica (one-second epochs), B = 2,500, G = 3"
    }
    fn duration(&self) -> &'static str {
        "≈ 20 s full (release); --quick ≈ 5 s (three loads, 40 runs, debug — debug timings are not the figure)"
    }
    fn why_differ(&self) -> &'static str {
        "The seed measured its Python implementation on an Apple M2; we measure the Rust TbgBatcher on this \
         machine (release build for the figure). Deletion of delivered transactions happens when a delivery is \
         reported, so building a batch only moves what is left in the consulted buckets (compact handles, at most \
         B) and the cost barely depends on the load. We take an epoch to be one second, so each consulted bucket \
         set holds one second's received load; the seed does not give its epoch length for this benchmark."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let (loads, warm, runs): (Vec<u32>, u32, u32) = if ctx.quick {
            (vec![1_000, 10_000, 30_000], 5, 40)
        } else {
            (vec![1_000, 5_000, 10_000, 30_000, 60_000, 90_000, 120_000], 30, 260)
        };
        ctx.progress.start(loads.len());
        let mut fig = Figure::new(
            "Fig 4-9: TBG grouping latency",
            "received load per replica (tx/s)",
            "grouping latency (µs)",
            false,
            &["load (tx/s)", "median (µs)", "p95 (µs)", "max (µs)"],
        );
        let (mut med, mut p95) = (Vec::new(), Vec::new());
        let mut ok = true;
        for &load in &loads {
            ctx.progress.step(format!("{load} tx/s"));
            let v = grouping_latency_ns(load, warm, runs, u64::from(load));
            ok &= v.len() == runs as usize;
            let (m, p) = (quantile(&v, 0.5) as f64 / 1e3, quantile(&v, 0.95) as f64 / 1e3);
            fig.table.row(vec![load.to_string(), num(m, 2), num(p, 2), num(*v.last().unwrap_or(&0) as f64 / 1e3, 2)]);
            med.push((f64::from(load), m));
            p95.push((f64::from(load), p));
            ctx.progress.done();
        }
        ctx.progress.finish();
        let last_m = med.last().map_or(0.0, |p| p.1);
        let last_p = p95.last().map_or(0.0, |p| p.1);
        let checks = vec![
            Check::new("every load measured the requested repetitions", ok, format!("{runs} after {warm} warm-up")),
            Check::new(
                "p95 ≥ median at every load",
                med.iter().zip(&p95).all(|(a, b)| b.1 >= a.1),
                "quantiles ordered",
            ),
        ];
        let seed_table =
            seed_numbers(&[["median at 120k tx/s (µs)", "< 27", SOURCE], ["p95 at 120k tx/s (µs)", "< 46", SOURCE]]);
        let mut comparison = Table::new(&["quantity", "ours", "seed", "ours / seed"]);
        let top = loads.last().copied().unwrap_or(0);
        comparison.row(vec![format!("median at {top} tx/s (µs)"), num(last_m, 2), "27".into(), ratio(last_m, 27.0)]);
        comparison.row(vec![format!("p95 at {top} tx/s (µs)"), num(last_p, 2), "46".into(), ratio(last_p, 46.0)]);
        fig.ours = vec![Series::new("median", med), Series::new("p95", p95)];
        Ok(fig.finish(json!({"B": 2500, "G": 3, "tau": 12, "kappa": 2, "loads": loads, "warm_up": warm, "runs": runs, "epoch_s": 1}), seed_table, comparison, checks, json!({})))
    }
}
