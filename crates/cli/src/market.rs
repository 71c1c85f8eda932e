//! `gridledger market`: P2P energy market clearing (thesis Ch.6).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gridledger_market::primal_dual::{trade_sensitivities, uncongested_optimum, PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::DcModel;

#[derive(Subcommand)]
pub enum MarketCmd {
    /// Clear one interval of a seeded market on a case's buses: welfare, its
    /// gap to the optimum, the price, iterations and timing.
    Clear(ClearArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Algorithm {
    /// Distributed primal-dual over bilateral trades (PTDF market).
    PrimalDual,
}

#[derive(Args)]
pub struct ClearArgs {
    /// MATPOWER case file, or a shipped case by name (case30, case33bw).
    #[arg(long, value_name = "FILE", default_value = "case30")]
    pub case: PathBuf,
    /// Buyers (prosumers with a quadratic utility), placed on the case's
    /// buses by the seeded generator; 1 to 1000.
    #[arg(long, default_value_t = 50)]
    pub buyers: usize,
    /// Sellers (prosumers with a quadratic cost); 1 to 1000.
    #[arg(long, default_value_t = 50)]
    pub sellers: usize,
    /// Seed of the prosumer generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Clearing algorithm (only primal-dual so far; the centralised
    /// reference and ALADIN are to come).
    #[arg(long, value_enum, default_value_t = Algorithm::PrimalDual)]
    pub algorithm: Algorithm,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: MarketCmd) -> anyhow::Result<()> {
    match cmd {
        MarketCmd::Clear(a) => clear(a),
    }
}

fn clear(a: ClearArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.buyers > 0 && a.sellers > 0, "--buyers and --sellers must be at least 1");
    anyhow::ensure!(a.buyers <= 1000 && a.sellers <= 1000, "at most 1000 buyers and 1000 sellers");
    let case = crate::grid::load_case(&a.case)?;
    let dc = DcModel::new(&case).context("building the DC model")?;
    let market = Market::generate(a.seed, a.buyers, a.sellers, &dc.bus_ids);
    let (d, limits) = trade_sensitivities(&dc, &market, 1.0)?;
    let (price, optimum, _, _) = uncongested_optimum(&market);
    let mut pd = PrimalDual::new(&market, d, limits.clone(), PdParams::for_market(&market));
    let t = Instant::now();
    let converged = pd.run(&market).is_some();
    let secs = t.elapsed().as_secs_f64();
    let settled = pd.settled();
    let welfare = market.welfare(&settled);
    let flows = pd.flows();
    let congested = flows.iter().zip(&limits).any(|(f, l)| f.abs() > *l);
    let gap = (optimum - welfare) / optimum;
    let energy: f64 = settled.iter().flatten().sum();
    let out = serde_json::json!({
        "case": a.case.display().to_string(),
        "algorithm": "primal-dual",
        "buyers": a.buyers,
        "sellers": a.sellers,
        "seed": a.seed,
        "converged": converged,
        "iterations": pd.iterations,
        "seconds": secs,
        "welfare_usd": welfare,
        "optimum_usd": optimum,
        "relative_gap": gap,
        "clearing_price_usd_per_kwh": price,
        "energy_traded_kwh": energy,
        "line_limit_exceeded": congested,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("market on {} ({} buyers, {} sellers, seed {})", a.case.display(), a.buyers, a.sellers, a.seed);
    println!(
        "primal-dual: {} iterations ({}), {:.3} s",
        pd.iterations,
        if converged { "converged" } else { "NOT converged" },
        secs
    );
    println!("welfare          ${welfare:.4}");
    println!("optimum          ${optimum:.4} (exact, uncongested)");
    println!("relative gap     {:.2e}", gap);
    println!("clearing price   ${price:.4}/kWh");
    println!("energy traded    {energy:.3} kWh");
    if congested {
        println!("warning: a line limit is exceeded; congested clearing is not supported yet");
    }
    Ok(())
}
