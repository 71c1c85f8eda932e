//! Runs experiments on their full grids and writes `results/<id>.json` and
//! `results/<id>.svg`, as `gridledger experiment run <ids>` does, without
//! building the CLI (a release build of this crate alone is enough):
//!
//! `cargo run --release -p gridledger-experiments --example run -- [--results-dir DIR] ID...`
//!
//! `gridledger experiment report` then regenerates `docs/results.md`.

use std::path::PathBuf;

use gridledger_experiments::{find, run_one, write_result, Progress, RunCtx};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from("results");
    let mut ids = Vec::new();
    while let Some(a) = args.next() {
        if a == "--results-dir" {
            dir = PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("--results-dir needs a path"))?);
        } else {
            ids.push(a);
        }
    }
    anyhow::ensure!(!ids.is_empty(), "name the experiments to run");
    let mut failed = Vec::new();
    for id in &ids {
        let e = find(id)?;
        let ctx = RunCtx { quick: false, progress: Progress::stderr(e.id()) };
        let r = run_one(e.as_ref(), &ctx)?;
        let (json, svg) = write_result(&dir, &r)?;
        let ok = r.checks.iter().filter(|c| c.ok).count();
        println!(
            "{:<20} {:>7.1} s  checks {ok}/{}  {}  {}",
            r.id,
            r.wall_s,
            r.checks.len(),
            json.display(),
            svg.display()
        );
        for c in r.checks.iter().filter(|c| !c.ok) {
            println!("  FAIL {} ({})", c.name, c.detail);
            failed.push(format!("{}: {}", r.id, c.name));
        }
    }
    anyhow::ensure!(failed.is_empty(), "failed checks: {}", failed.join("; "));
    Ok(())
}
