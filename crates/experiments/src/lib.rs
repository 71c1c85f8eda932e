//! The experiment harness (design principle 8, "measured, not asserted").
//!
//! Every table and figure of the seeds' evaluations is an [`Experiment`]: a
//! type in its own module under [`exps`], listed once in [`registry`]. An
//! experiment runs our code, and returns an [`ExperimentResult`]: its
//! parameters, a description of the machine, our series and table, and the
//! seed's numbers typed in with the page and figure they come from. The
//! harness writes it as `results/<id>.json` and draws `results/<id>.svg`
//! ([`chart`]); [`markdown`] turns the JSON files into `docs/results.md`.
//! [`html`] renders the demo's self-contained `report.html`.
//!
//! Adding an experiment: a new module in `exps/` with a type implementing
//! [`Experiment`], and one line in [`registry`].

pub mod affinity;
pub mod chart;
pub mod exps;
pub mod html;
pub mod markdown;
pub mod result;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use result::{ChartKind, ChartSpec, Check, ExperimentResult, Machine, Series, Table};

/// Why an experiment or the harness failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("unknown experiment `{0}` (see `gridledger experiment list`)")]
    Unknown(String),
    #[error("{id}: {msg}")]
    Run { id: &'static str, msg: String },
    #[error("no result for `{0}` yet: run `gridledger experiment run {0}` first")]
    NoResult(String),
    // The cause is in the message and deliberately not a `source` (a field
    // named so is one): anyhow's `{:#}` at the binary printed it twice.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Json { path: PathBuf, err: serde_json::Error },
    #[error("chart: {0}")]
    Chart(String),
}

impl ExperimentError {
    /// A failure inside experiment `id`.
    pub fn run(id: &'static str, e: impl std::fmt::Display) -> Self {
        Self::Run { id, msg: e.to_string() }
    }
}

/// How an experiment reports progress (a bar on stderr in the CLI, nothing
/// in tests).
pub struct Progress {
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A progress bar on stderr (hidden when stderr is not a terminal).
    pub fn stderr(id: &str) -> Self {
        let bar = indicatif::ProgressBar::new(1);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix:>24} [{bar:30}] {pos}/{len} {msg}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(id.to_string());
        Self { bar }
    }

    /// Reports nothing.
    pub fn hidden() -> Self {
        Self { bar: indicatif::ProgressBar::hidden() }
    }

    /// Announces `total` steps.
    pub fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    /// One step is about to run.
    pub fn step(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
        self.bar.tick();
    }

    /// One step finished.
    pub fn done(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What an experiment gets to run with.
pub struct RunCtx {
    /// A reduced grid that finishes in seconds (for tests and smoke runs).
    pub quick: bool,
    pub progress: Progress,
}

/// One table or figure of a seed, reproduced on our code.
pub trait Experiment: Sync {
    /// Stable id, also the file name under `results/`.
    fn id(&self) -> &'static str;
    /// Which seed table/figure, with page.
    fn seed_ref(&self) -> &'static str;
    /// What it measures, one line.
    fn measures(&self) -> &'static str;
    /// Typical duration on a 2-core machine: full (release build) and
    /// `--quick` (debug build).
    fn duration(&self) -> &'static str;
    /// Why our numbers differ from the seed's: written by hand, kept with
    /// the code that produces the numbers.
    fn why_differ(&self) -> &'static str;
    /// Runs it. The harness fills in `machine`, `quick`, `wall_s` and the
    /// descriptive fields.
    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError>;
}

/// Every experiment, in report order. The one place to add one.
pub fn registry() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(exps::ior_fig_3_5::Fig35),
        Box::new(exps::ior_fig_3_6::Fig36),
        Box::new(exps::ior_fig_3_7::Fig37),
        Box::new(exps::ior_fig_3_8::Fig38),
        Box::new(exps::ior_fig_3_9::Fig39),
        Box::new(exps::ior_tables::Tables34To36),
        Box::new(exps::cns_channel_costs::ChannelCosts),
        Box::new(exps::tbg_fig_4_2::Fig42),
        Box::new(exps::tbg_fig_4_4::Fig44),
        Box::new(exps::tbg_fig_4_5::Fig45),
        Box::new(exps::tbg_fig_4_6::Fig46),
        Box::new(exps::tbg_fig_4_7::Fig47),
        Box::new(exps::tbg_fig_4_8::Fig48),
        Box::new(exps::tbg_fig_4_9::Fig49),
        Box::new(exps::market_table_6_1::Table61),
        Box::new(exps::market_table_6_2::Table62),
        Box::new(exps::market_fig_6_3::Fig63),
        Box::new(exps::market_fig_6_4::Fig64),
        Box::new(exps::market_fig_6_5::Fig65),
        Box::new(exps::market_fig_6_6::Fig66),
        Box::new(exps::xchain_ccte::Ccte),
        Box::new(exps::xchain_memory::Memory),
        Box::new(exps::xchain_ccdi::CcdiCost),
        Box::new(exps::xchain_ccdi::CcdiMemory),
        Box::new(exps::xchain_ccdi::CcdiLatency),
        Box::new(exps::xchain_ccdi::CcdiAttackTable),
        Box::new(exps::fl_comm::FlComm),
        Box::new(exps::fl_steps::FlSteps),
        Box::new(exps::fl_convergence::FlConvergence),
    ]
}

/// The experiment called `id`.
pub fn find(id: &str) -> Result<Box<dyn Experiment>, ExperimentError> {
    registry().into_iter().find(|e| e.id() == id).ok_or_else(|| ExperimentError::Unknown(id.to_string()))
}

/// Runs `e` and completes its result with the harness' fields.
pub fn run_one(e: &dyn Experiment, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
    let t = Instant::now();
    let mut r = e.run(ctx)?;
    r.id = e.id().to_string();
    r.seed_ref = e.seed_ref().to_string();
    r.measures = e.measures().to_string();
    r.why_differ = e.why_differ().to_string();
    r.quick = ctx.quick;
    r.machine = Machine::describe();
    r.wall_s = t.elapsed().as_secs_f64();
    r.command = format!("gridledger experiment run {}{}", e.id(), if ctx.quick { " --quick" } else { "" });
    Ok(r)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExperimentError + '_ {
    move |err| ExperimentError::Io { path: path.to_path_buf(), err }
}

/// Writes `<dir>/<id>.json` and `<dir>/<id>.svg`; returns both paths.
pub fn write_result(dir: &Path, r: &ExperimentResult) -> Result<(PathBuf, PathBuf), ExperimentError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = dir.join(format!("{}.json", r.id));
    let svg = dir.join(format!("{}.svg", r.id));
    let text = serde_json::to_string_pretty(r).map_err(|err| ExperimentError::Json { path: json.clone(), err })?;
    write_atomic(&json, text.as_bytes())?;
    write_atomic(&svg, chart::render(r)?.as_bytes())?;
    Ok((json, svg))
}

/// Reads `<dir>/<id>.json`.
pub fn read_result(dir: &Path, id: &str) -> Result<ExperimentResult, ExperimentError> {
    let path = dir.join(format!("{id}.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ExperimentError::NoResult(id.to_string())),
        Err(e) => return Err(ExperimentError::Io { path, err: e }),
    };
    serde_json::from_str(&text).map_err(|err| ExperimentError::Json { path, err })
}

/// Writes `path` through a temporary file and a rename, so a reader never
/// sees half a file. The temporary file's name is unique to this process
/// and call (`.<name>.<pid>.<n>.tmp` beside `path`): two writers at once
/// (two runs sharing a results directory, or `<id>.json` and `<id>.svg`,
/// which used to share `<id>.tmp`) never write into each other's file;
/// the last rename wins with a whole version.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExperimentError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp =
        path.with_file_name(format!(".{name}.{}.{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    if let Err(e) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(path)(e)
    })
}
