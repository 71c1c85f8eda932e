//! `gridledger grid`: power-network tools over MATPOWER case files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use gridledger_market::{run_pf, Case, PfOptions};

#[derive(Subcommand)]
pub enum GridCmd {
    /// AC power flow (Newton–Raphson, like MATPOWER's runpf): bus voltages,
    /// the minimum voltage and its bus, total losses. Up to 5 000 buses,
    /// each step a banded LU (a radial feeder: milliseconds); a case whose
    /// step would exceed 2·10⁹ multiply-adds is refused.
    Pf(PfArgs),
}

#[derive(Args)]
pub struct PfArgs {
    /// MATPOWER case file (format version 2). The shipped cases can be named
    /// without a path: case30, case33bw (with or without `.m`).
    #[arg(long, value_name = "FILE")]
    pub case: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Maximum Newton iterations.
    #[arg(long, default_value_t = 10)]
    pub max_iter: usize,
}

/// Loads a case: a file when the path exists, else one of the shipped cases
/// by name (`case30`, `case33bw`, optionally with `.m`).
pub fn load_case(path: &Path) -> anyhow::Result<Case> {
    let text = if path.exists() {
        read_bounded(path)?
    } else {
        match path.to_str().map(|s| s.trim_end_matches(".m")) {
            Some("case30") => gridledger_market::CASE30.to_string(),
            Some("case33bw") => gridledger_market::CASE33BW.to_string(),
            _ => anyhow::bail!("{}: no such file (shipped cases: case30, case33bw)", path.display()),
        }
    };
    Case::parse(&text).with_context(|| format!("parsing case {}", path.display()))
}

/// Reads at most the parser's limit + 1 byte of `path`: a larger (or
/// endless: a device, a FIFO) file is refused with the limit named, never
/// read into memory whole.
fn read_bounded(path: &Path) -> anyhow::Result<String> {
    use std::io::Read;
    let max = gridledger_market::case::MAX_CASE_BYTES;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() <= max,
        "{}: case file too large: more than the limit of {max} bytes ({} MiB)",
        path.display(),
        max >> 20
    );
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))
}

pub fn run(cmd: GridCmd) -> anyhow::Result<()> {
    match cmd {
        GridCmd::Pf(a) => pf(a),
    }
}

fn pf(a: PfArgs) -> anyhow::Result<()> {
    let case = load_case(&a.case)?;
    let opts = PfOptions { max_iter: a.max_iter, ..PfOptions::default() };
    let r = run_pf(&case, opts).with_context(|| format!("power flow of {}", a.case.display()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("AC power flow of {} ({} buses, Newton-Raphson)", a.case.display(), r.buses.len());
    if r.mismatch_tol_pu > r.tol_pu {
        println!(
            "converged in {} iterations, max mismatch {:.2e} p.u. (within the rounding floor {:.2e} p.u. of its largest \
             admittances)",
            r.iterations, r.max_mismatch_pu, r.mismatch_tol_pu
        );
    } else {
        println!("converged in {} iterations, max mismatch {:.2e} p.u.", r.iterations, r.max_mismatch_pu);
    }
    let case_ref = case.buses[case.ref_index()].id;
    if r.ref_bus != case_ref {
        println!(
            "reference bus {} (bus {}, the case's reference, has no in-service generator: as in MATPOWER's bustypes, \
             the first PV bus with one takes its place)",
            r.ref_bus, case_ref
        );
    }
    println!();
    println!("  bus     Vm (p.u.)   Va (deg)");
    for b in &r.buses {
        println!("{:>5}   {:>10.4}   {:>8.3}", b.id, b.vm, b.va_deg);
    }
    println!();
    println!("minimum voltage   {:.4} p.u. at bus {}", r.min_vm, r.min_vm_bus);
    println!("maximum voltage   {:.4} p.u. at bus {}", r.max_vm, r.max_vm_bus);
    println!("total generation  {:.3} MW", r.total_gen_mw);
    println!("total load        {:.3} MW", r.total_load_mw);
    println!("total losses      {:.3} MW, {:.3} MVAr", r.loss_mw, r.loss_mvar);
    Ok(())
}
