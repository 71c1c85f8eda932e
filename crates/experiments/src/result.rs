//! What an experiment leaves behind: `results/<id>.json`.
//!
//! Series carry `f64` points: they are measurements and chart coordinates,
//! never balances. Tables carry text cells so exact integers (gas, Wh,
//! minor units) are written as they were counted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One line (or bar set) of a chart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// For the seed's series: where the numbers are printed (page, figure
    /// or table, or the sentence they are read from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, source: None }
    }

    pub fn from_seed(name: impl Into<String>, points: Vec<(f64, f64)>, source: impl Into<String>) -> Self {
        Self { name: name.into(), points, source: Some(source.into()) }
    }

    pub fn ys(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.1).collect()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    #[default]
    Lines,
    /// Grouped bars at integer x positions.
    Bars,
}

/// Axes of the chart, with units.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    #[serde(default)]
    pub y_log: bool,
    /// Fit the y axis to the data instead of starting at zero.
    #[serde(default)]
    pub y_tight: bool,
    #[serde(default)]
    pub kind: ChartKind,
}

/// A table with a header row; cells are text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Self {
        Self { columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
}

/// A sanity check the experiment made on its own output (conservation,
/// counts), not a performance target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        Self { name: name.into(), ok, detail: detail.into() }
    }
}

/// The machine a result was measured on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub logical_cores: usize,
    pub memory_gib: u64,
    pub os: String,
    /// `release` or `debug` (debug builds are several times slower).
    pub build: String,
}

impl Machine {
    /// This machine, from `/proc` where available.
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Machine {
            cpu,
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (kib + (1 << 19)) >> 20,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            build: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
        }
    }
}

/// `results/<id>.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    pub id: String,
    pub seed_ref: String,
    pub measures: String,
    /// The command that regenerates this file.
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    pub wall_s: f64,
    /// The experiment's parameters.
    pub params: Value,
    pub chart: ChartSpec,
    /// Our measured series.
    pub ours: Vec<Series>,
    /// The seed's series, typed in.
    pub seed: Vec<Series>,
    /// Our numbers as a table.
    pub table: Table,
    /// The seed's numbers as a table, with their source.
    pub seed_table: Table,
    /// Ours beside the seed's for the quantities both report.
    pub comparison: Table,
    pub checks: Vec<Check>,
    pub why_differ: String,
    /// The underlying benchmark output, for anyone who wants more.
    #[serde(default)]
    pub raw: Value,
}

/// `ours / seed` as text, or "—" where the seed has no number.
pub fn ratio(ours: f64, seed: f64) -> String {
    if seed == 0.0 || !seed.is_finite() || !ours.is_finite() {
        "—".into()
    } else {
        format!("{:.3}", ours / seed)
    }
}

/// A number with `digits` decimals.
pub fn num(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}
