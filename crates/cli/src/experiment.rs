//! `gridledger experiment …`: the seeds' tables and figures reproduced on
//! our code ([`gridledger_experiments`]). `run` writes `results/<id>.json`
//! and `results/<id>.svg` and regenerates `docs/results.md`; `report` only
//! regenerates it.

use anyhow::Context;
use clap::{Args, Subcommand};
use gridledger_experiments::{find, markdown, read_result, registry, run_one, write_result, Progress, RunCtx};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ExperimentCmd {
    /// The experiments: id, seed figure/table, what it measures, duration.
    List,
    /// Run experiments, write their JSON and SVG, regenerate the report.
    Run(RunArgs),
    /// Print an experiment's last result (tables and checks).
    Show {
        /// The experiment's id, as `gridledger experiment list` prints it (e.g. ior-fig-3-5).
        id: String,
        #[command(flatten)]
        paths: Paths,
    },
    /// Regenerate the Markdown report from the JSON results.
    Report(Paths),
}

#[derive(Args, Clone)]
pub struct Paths {
    /// Where results/<id>.json and .svg live.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// The generated Markdown report.
    #[arg(long, default_value = "docs/results.md")]
    pub report: PathBuf,
}

#[derive(Args)]
pub struct RunArgs {
    /// Experiment ids (see `list`).
    pub ids: Vec<String>,
    /// Run every experiment.
    #[arg(long)]
    pub all: bool,
    /// A reduced grid that finishes in seconds.
    #[arg(long)]
    pub quick: bool,
    /// Do not regenerate the Markdown report.
    #[arg(long)]
    pub no_report: bool,
    #[command(flatten)]
    pub paths: Paths,
}

pub fn run(c: ExperimentCmd) -> anyhow::Result<()> {
    match c {
        ExperimentCmd::List => {
            let mut rows = vec![["id", "seed", "duration", "what it measures"].map(String::from)];
            for e in registry() {
                rows.push([e.id(), e.seed_ref(), e.duration(), e.measures()].map(String::from));
            }
            crate::ops::print_table(&rows);
            Ok(())
        }
        ExperimentCmd::Run(a) => run_experiments(a),
        ExperimentCmd::Show { id, paths } => show(&id, &paths),
        ExperimentCmd::Report(p) => report(&p),
    }
}

fn run_experiments(a: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.all || !a.ids.is_empty(), "name experiments to run, or --all (see `gridledger experiment list`)");
    anyhow::ensure!(!a.all || a.ids.is_empty(), "give either experiment ids or --all, not both");
    let list = if a.all { registry() } else { a.ids.iter().map(|id| find(id)).collect::<Result<Vec<_>, _>>()? };
    // A results path that exists but is not a directory fails every write:
    // say so before spending minutes on the runs.
    if a.paths.results_dir.exists() && !a.paths.results_dir.is_dir() {
        anyhow::bail!("--results-dir {} is not a directory", a.paths.results_dir.display());
    }
    let mut failed = Vec::new();
    for e in list {
        let ctx = RunCtx { quick: a.quick, progress: Progress::stderr(e.id()) };
        eprintln!("running {} ({})", e.id(), e.seed_ref());
        match run_one(e.as_ref(), &ctx).and_then(|r| write_result(&a.paths.results_dir, &r).map(|p| (r, p))) {
            Ok((r, (json, svg))) => {
                let ok = r.checks.iter().filter(|c| c.ok).count();
                println!(
                    "{:<24} {:>7.1} s  checks {ok}/{}  {}  {}",
                    r.id,
                    r.wall_s,
                    r.checks.len(),
                    json.display(),
                    svg.display()
                );
                if ok < r.checks.len() {
                    failed.push(format!("{}: a sanity check failed", r.id));
                }
            }
            Err(err) => {
                eprintln!("{}: {err}", e.id());
                failed.push(err.to_string());
            }
        }
    }
    if !a.no_report {
        report(&a.paths)?;
    }
    anyhow::ensure!(failed.is_empty(), "{} experiment(s) failed: {}", failed.len(), failed.join("; "));
    Ok(())
}

fn show(id: &str, p: &Paths) -> anyhow::Result<()> {
    find(id)?;
    let r = read_result(&p.results_dir, id)?;
    println!("{} — {}\n{}\n", r.id, r.seed_ref, r.measures);
    println!("command: {}  ({:.1} s, {} grid)", r.command, r.wall_s, if r.quick { "quick" } else { "full" });
    for (name, t) in [("ours", &r.table), ("seed", &r.seed_table), ("ours beside the seed", &r.comparison)] {
        println!("\n{name}:");
        print_table(t);
    }
    println!("\nchecks:");
    for c in &r.checks {
        println!("  [{}] {} ({})", if c.ok { "ok" } else { "FAIL" }, c.name, c.detail);
    }
    println!("\nchart: {}", p.results_dir.join(format!("{id}.svg")).display());
    Ok(())
}

fn print_table(t: &gridledger_experiments::Table) {
    let n = t.columns.len();
    let mut w: Vec<usize> = t.columns.iter().map(|c| c.chars().count()).collect();
    for r in &t.rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count().min(60));
        }
    }
    let line = |cells: &[String]| {
        let s: Vec<String> =
            cells.iter().enumerate().take(n).map(|(i, c)| format!("{c:<width$}", width = w[i])).collect();
        println!("  {}", s.join("  "));
    };
    line(&t.columns);
    for r in &t.rows {
        line(r);
    }
}

/// `results` as seen from the directory of `report`, always relative (no
/// machine paths in the report): both are resolved (they exist by now) and
/// the path climbs from the report's directory to their common ancestor.
/// (Counting only the report directory's named components, as before, gave
/// wrong links for a `--report` such as `../out/results.md`.)
fn relative_prefix(results: &Path, report_dir: &Path) -> anyhow::Result<String> {
    let canon = |p: &Path| p.canonicalize().with_context(|| format!("resolving {}", p.display()));
    let (from, to) = (canon(report_dir)?, canon(results)?);
    let common = from.components().zip(to.components()).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in common..from.components().count() {
        rel.push("..");
    }
    rel.extend(to.components().skip(common));
    Ok(if rel.as_os_str().is_empty() { ".".into() } else { rel.display().to_string() })
}

/// Refuses a results directory that does not exist: a mistyped
/// `--results-dir` would otherwise replace the report with one listing
/// every experiment as "not run".
fn report(p: &Paths) -> anyhow::Result<()> {
    anyhow::ensure!(
        p.results_dir.is_dir(),
        "results directory {} not found (nothing to report; run `gridledger experiment run` first)",
        p.results_dir.display()
    );
    let dir = p.report.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = markdown::report(&p.results_dir, &relative_prefix(&p.results_dir, dir)?)?;
    gridledger_experiments::write_atomic(&p.report, md.as_bytes())?;
    println!("report: {}", p.report.display());
    Ok(())
}
