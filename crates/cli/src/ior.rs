//! `gridledger ior …`: the dual blockchain with the Improved Optimistic
//! Rollup (thesis Ch.3). `bench` prints the §3.5.3 benchmarks as JSON
//! ([`gridledger_rollup::bench::bench_ior`]); `day` runs the §3.5.4
//! 15-participant day on embedded real data
//! ([`gridledger_rollup::demo::run_day`]).

use clap::Args;
use gridledger_rollup::bench::{bench_ior, IorBenchConfig};
use gridledger_rollup::demo::{coins_string, run_day, DayConfig};

#[derive(Args, Debug)]
pub struct IorBenchArgs {
    /// ST counts for the IOR vs challenge-window rollup comparison (Tables 3-4 to 3-6).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000usize, 2_000, 4_000])]
    pub sizes: Vec<usize>,
    /// Disputed shares of the STs, in per mille.
    #[arg(long, value_delimiter = ',', default_values_t = [0u32, 20, 50])]
    pub disputes: Vec<u32>,
    /// ATs and STs each for the gas-per-contract and single-chain runs (Fig 3-5, 3-7).
    #[arg(long, default_value_t = 1_000)]
    pub gas_txs: usize,
    /// Distinct sellers in the workload.
    #[arg(long, default_value_t = 100)]
    pub sellers: usize,
    /// IOR dispute window in ms of block time.
    #[arg(long, default_value_t = 5_000)]
    pub window_ms: u64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
}

pub fn bench(a: IorBenchArgs) -> anyhow::Result<()> {
    let cfg = IorBenchConfig {
        sizes: a.sizes,
        dispute_permille: a.disputes,
        gas_txs: a.gas_txs,
        sellers: a.sellers,
        window_ms: a.window_ms,
        seed: a.seed,
        ..IorBenchConfig::default()
    };
    let out = bench_ior(&cfg)?;
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct DayArgs {
    /// Seed of the per-participant variation and the delegations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Day of the year (1..=365) of the weather and load data.
    #[arg(long, default_value_t = 106)]
    pub day: u16,
    /// Run the primary chain as this many PBFT validators (in this process;
    /// 0: a single validator).
    #[arg(long, default_value_t = 0)]
    pub pbft: usize,
    /// Print the full report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn day(a: DayArgs) -> anyhow::Result<()> {
    let cfg = DayConfig { seed: a.seed, day: a.day, ..DayConfig::default() };
    let r = if a.pbft == 0 {
        run_day(cfg)?
    } else {
        let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
        gridledger_rollup::demo::run_day_on(cfg, |dcfg| {
            let accounts = dcfg.participants + dcfg.executors + dcfg.validators;
            let limits = gridledger_ledger::ChainConfig {
                max_tx_bytes: gridledger_rollup::driver::MAX_TX_BYTES,
                ..Default::default()
            };
            let primary = gridledger_node::cluster::ClusterClient::start(
                dirs.0.path(),
                a.pbft,
                accounts,
                dcfg.wallet,
                gridledger_rollup::primary_registry(),
                limits,
                1_000,
            )
            .map_err(|e| gridledger_rollup::demo::DemoError::Config(format!("PBFT primary chain: {e:#}")))?;
            let secondary = gridledger_rollup::driver::dev_chain(
                dirs.1.path(),
                accounts,
                dcfg.wallet,
                gridledger_rollup::secondary_registry(),
            )
            .map_err(gridledger_rollup::driver::DriverError::from)?;
            Ok(gridledger_rollup::driver::DualChain::on_chains(primary, secondary, dcfg)?)
        })?
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let t = &r.thesis;
    let primary = if a.pbft == 0 { "1 validator".to_string() } else { format!("{} PBFT validators", a.pbft) };
    println!(
        "P2P energy trading day (thesis §3.5.4), day {} of the year, seed {}; primary chain: {primary}",
        a.day, a.seed
    );
    println!("  weather: {}", r.weather);
    println!("  loads:   {}", r.loads);
    println!("{:<28} {:>14} {:>14}", "", "gridledger", "thesis");
    println!("{:<28} {:>14} {:>14}", "trades", r.trades_count, t.trades);
    println!("{:<28} {:>14} {:>14}", "settled trades", r.settled_trades, "-");
    println!(
        "{:<28} {:>14} {:>14}",
        "energy traded (kWh)",
        format!("{}.{:03}", r.energy_traded_wh / 1000, r.energy_traded_wh % 1000),
        format!("{}.{:03}", t.energy_wh / 1000, t.energy_wh % 1000)
    );
    println!(
        "{:<28} {:>14} {:>14}",
        "revenue (coin / $)",
        coins_string(r.revenue_minor),
        format!("{}.{:02}", t.revenue_usd_cents / 100, t.revenue_usd_cents % 100)
    );
    println!("{:<28} {:>14} {:>14}", "processing time (ms)", r.processing_ms, t.processing_ms);
    println!(
        "{:<28} {:>14} {:>14}",
        "settlement latency (ms)",
        format!("{} / {}", r.settlement_latency.mean_ms, r.settlement_latency.max_ms),
        "-"
    );
    println!("{:<28} {:>14}", "gas primary / secondary", format!("{} / {}", r.gas.primary, r.gas.secondary));
    println!("trades per slot (Fig 3-8): {:?}", r.trades_per_slot);
    println!("\n  #  kind      profile  load Wh   gen Wh  sold Wh  bought Wh  balance change (coin)  reputation");
    for p in &r.participants {
        let delta = if p.balance_end >= p.balance_start {
            format!("+{}", coins_string(p.balance_end - p.balance_start))
        } else {
            format!("-{}", coins_string(p.balance_start - p.balance_end))
        };
        println!(
            "{:>3}  {:<8}  {:<7} {:>8} {:>8} {:>8} {:>10}  {:>21}  {:>10}",
            p.spec.number,
            if p.spec.prosumer { "prosumer" } else { "consumer" },
            p.spec.load_profile,
            p.load_wh,
            p.generation_wh,
            p.sold_wh,
            p.bought_wh,
            delta,
            p.reputation
        );
    }
    println!(
        "\ncoin on chain before/after: {} / {} minor units; burned {}",
        r.coins.chain_total_before, r.coins.chain_total_after, r.coins.burned
    );
    Ok(())
}
