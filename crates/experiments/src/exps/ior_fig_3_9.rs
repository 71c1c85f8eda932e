//! Thesis Fig 3-9 (p. 55): load, renewable generation and traded energy of
//! a typical prosumer over the demonstration day (the prosumer that sold
//! most), from [`gridledger_rollup::demo::run_day`].

use serde_json::json;

use super::ior_day::{checks, day};
use crate::result::{ChartSpec, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Fig39;

const ID: &str = "ior-fig-3-9";

impl Experiment for Fig39 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 3-9, p. 55"
    }
    fn measures(&self) -> &'static str {
        "one prosumer's load, generation and traded energy per 30-minute slot over the demonstration day"
    }
    fn duration(&self) -> &'static str {
        "≈ 3 s (the day has one size; --quick runs the same day)"
    }
    fn why_differ(&self) -> &'static str {
        "The thesis shows its prosumer's profiles only as a chart, without numbers, so there is no seed series \
         to set beside ours; the comparison is of shape. As in the thesis, the prosumer sells around midday \
         when its PV output exceeds its load and buys (or draws from the grid) in the morning and evening. Our \
         weather and load data are openly licensed substitutes for the thesis' (see ior-fig-3-8), so the \
         magnitudes differ."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        ctx.progress.start(1);
        ctx.progress.step("demonstration day");
        let r = day(ID)?;
        ctx.progress.done();
        let p = &r.typical_prosumer;
        let h = |s: usize| s as f64 * 0.5;
        let series = |v: &[u64]| v.iter().enumerate().map(|(s, &x)| (h(s), x as f64)).collect::<Vec<_>>();
        let traded: Vec<(f64, f64)> = p.traded_wh.iter().enumerate().map(|(s, &x)| (h(s), x as f64)).collect();
        let mut table =
            Table::new(&["slot start (h)", "load (Wh)", "generation (Wh)", "traded (Wh, + sold / − bought)"]);
        for s in 0..p.load_wh.len() {
            table.row(vec![
                format!("{:.1}", h(s)),
                p.load_wh[s].to_string(),
                p.generation_wh[s].to_string(),
                p.traded_wh[s].to_string(),
            ]);
        }
        let mut checks = checks(&r);
        let lens = [p.load_wh.len(), p.generation_wh.len(), p.traded_wh.len()];
        checks.push(Check::new(
            "48 half-hour slots in every series",
            lens.iter().all(|&l| l == 48),
            format!("{lens:?}"),
        ));
        let oversold: Vec<usize> = (0..p.traded_wh.len().min(p.load_wh.len()).min(p.generation_wh.len()))
            .filter(|&s| p.traded_wh[s] > p.generation_wh[s] as i64 - p.load_wh[s] as i64 && p.traded_wh[s] > 0)
            .collect();
        checks.push(Check::new(
            "never sells more than its surplus (generation − load) in a slot",
            oversold.is_empty(),
            format!("slots over: {oversold:?}"),
        ));
        let mut seed_table = Table::new(&["quantity", "seed", "source"]);
        seed_table.row(vec![
            "per-slot profiles".into(),
            "chart only, no numbers printed".into(),
            "seed 003, Fig 3-9, p. 55".into(),
        ]);
        let mut comparison = Table::new(&["quantity", "ours", "seed", "ours / seed"]);
        comparison.row(vec![
            "day load / generation / sold / bought (Wh)".into(),
            format!(
                "{} / {} / {} / {}",
                p.load_wh.iter().sum::<u64>(),
                p.generation_wh.iter().sum::<u64>(),
                p.traded_wh.iter().filter(|&&x| x > 0).sum::<i64>(),
                -p.traded_wh.iter().filter(|&&x| x < 0).sum::<i64>()
            ),
            "not printed".into(),
            "—".into(),
        ]);
        ctx.progress.finish();
        Ok(ExperimentResult {
            params: json!({"day": r.config.day, "seed": r.config.seed, "prosumer": p.number, "slot_minutes": 30}),
            chart: ChartSpec {
                title: format!("Fig 3-9: prosumer #{} over the day", p.number),
                x_label: "time of day (h, start of 30-min slot)".into(),
                y_label: "energy per slot (Wh)".into(),
                ..Default::default()
            },
            ours: vec![
                Series::new("load", series(&p.load_wh)),
                Series::new("generation", series(&p.generation_wh)),
                Series::new("traded (+ sold, − bought)", traded),
            ],
            seed: vec![],
            table,
            seed_table,
            comparison,
            checks,
            raw: json!({"typical_prosumer": p}),
            ..Default::default()
        })
    }
}
