//! `gridledger market`: P2P energy market clearing (thesis Ch.6).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gridledger_market::clearing::{
    clear as clear_market, clear_with, network_for, network_size, Algorithm as Alg, Clearing, NetworkSize,
};
use gridledger_market::framework::run_interval;
use gridledger_market::network::MarketNetwork;
use gridledger_market::problem::Market;
use gridledger_market::teardo::{Fault, Strategy, TearDoConfig};
use std::collections::BTreeMap;

#[derive(Subcommand)]
pub enum MarketCmd {
    /// Clear one interval of a seeded market on a case's buses: welfare, its
    /// gap to the centralised optimum, prices, trades, iterations and timing.
    Clear(ClearArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Algorithm {
    /// Distributed primal-dual over bilateral trades.
    PrimalDual,
    /// ALADIN over prosumer and grid subproblems (meant for radial feeders).
    Aladin,
    /// The centralised reference (Clarabel).
    Central,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum AttackArg {
    Always,
    Optimal,
}

#[derive(Args)]
pub struct ClearArgs {
    /// MATPOWER case file, or a shipped case by name (case30, case33bw).
    /// Radial cases clear under LinDistFlow, meshed ones under PTDF limits.
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
    /// Clearing algorithm. ALADIN runs up to 100 × 100 (buyers × sellers
    /// ≤ 10 000, the work budget) on networks of up to 40 000 row pairs ×
    /// buses (200-bus feeders); primal-dual up to buyers × sellers (or a
    /// twentieth of the network's row pairs × buses, if larger) × iteration
    /// cap ≤ 2·10⁹ (100 × 100 at the default cap; more with a lower
    /// --max-iter). Larger is refused with exit 2.
    #[arg(long, value_enum, default_value_t = Algorithm::PrimalDual)]
    pub algorithm: Algorithm,
    /// Iteration cap of the distributed algorithm (default: its own,
    /// 200 000 for primal-dual, 200 for ALADIN); a run that reaches it
    /// unconverged fails the command. (The framework's run under
    /// --byzantine keeps its own, and is limited to 100 × 100.)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_iter: Option<u64>,
    /// Share of each line's rating the operator allots to the market (PTDF
    /// cases): the market's own flows must stay within rate_a × this.
    /// Small values (1e-4 on case30) make the market congested.
    #[arg(long, default_value_t = 1.0)]
    pub limit_scale: f64,
    /// Run the interval through the framework (requests encrypted on a
    /// development chain, operator admission, D-TASK enclaves, TEAR-DO) with
    /// this fraction of the enclaves' hosts Byzantine (0 to 0.9; the run is refused
    /// beyond the fault model, ⌊p·B'⌋ ≥ B'/3). Uses the
    /// primal-dual algorithm. The enclaves are software ones: NO hardware
    /// isolation.
    #[arg(long, value_name = "FRACTION")]
    pub byzantine: Option<f64>,
    /// Enclaves (B') for --byzantine; --tees² within the work budget
    /// (64 enclaves at most), refused before any setup with exit 2.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=200))]
    pub tees: u32,
    /// Enclaves per subproblem (κ) for --byzantine.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub kappa: u32,
    /// When the Byzantine hosts attack: from the start (always) or the
    /// seed's delay-maximising optimal attack.
    #[arg(long, value_enum, default_value_t = AttackArg::Always)]
    pub attack: AttackArg,
    /// Trades printed (largest first; all of them with --json).
    #[arg(long, default_value_t = 10)]
    pub show_trades: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: MarketCmd) -> anyhow::Result<()> {
    match cmd {
        MarketCmd::Clear(a) => clear(a),
    }
}

/// Largest ALADIN market `market clear` runs, buyers × sellers (100 × 100,
/// the issue's largest size and the experiments' largest grid): the
/// coordinator QP grows with the M·N trade copies and its factorisation
/// superlinearly (1000 × 1000 ran for minutes holding 1.6 GB and more).
pub const MAX_ALADIN_TRADES: u64 = 10_000;
/// Largest D-TASK share exchange `market clear --byzantine` runs, `--tees`²
/// (every enclave encrypts a share to every other, and each subproblem's κ
/// executors prove their outputs to all: 64 enclaves; the default is 10).
/// 200 enclaves did not finish a 2 × 2 market in minutes.
pub const MAX_ENCLAVE_WORK: u64 = 64 * 64;
/// Largest primal–dual run `market clear` starts, buyers × sellers ×
/// iteration cap (`--max-iter`, default 200 000): one iteration updates
/// every trade a few times, about a microsecond per trade in a test build,
/// so 1000 × 1000 at the default cap would run some 55 hours before it
/// could report NoConvergence. 2·10⁹ admits 100 × 100 (the issue's largest
/// size) at the default cap, and larger markets with a lower `--max-iter`.
pub const MAX_PRIMAL_DUAL_WORK: u64 = 2_000_000_000;
/// Largest market `market clear --byzantine` runs through the framework,
/// buyers × sellers: every iteration encrypts, signs and exchanges each
/// trade row among the enclaves (100 × 100, the experiments' largest).
pub const MAX_FRAMEWORK_TRADES: u64 = 10_000;
/// The primal–dual iteration cap `market clear` applies without `--max-iter`
/// (the algorithm's own, [`gridledger_market::primal_dual::PdParams::for_market`]).
pub const PRIMAL_DUAL_DEFAULT_MAX_ITER: u64 = 200_000;

/// Largest network ALADIN runs on in `market clear`, row pairs × buses of
/// the case's model ([`NetworkSize::entries`], counted before the model is
/// built): the coordinator QP of every iteration (and the grid block's,
/// where a row binds) holds each network row as a dense row over the
/// buses, and Clarabel's factorisation of them grows about cubically with
/// the buses. Measured (test build, 4 × 4 market, unrated chain feeders, 4
/// iterations): 100 buses 3 s, 200 buses 24 s, 300 buses 47 s (and 100 ×
/// 100 on the 200-bus feeder 77 s, case33bw's 30 s); a 2 000-bus
/// feeder (4·10⁶ entries, inside the model's own limit) would run for
/// hours before any bound applied. 40 000 admits 200 buses unrated and 141
/// with every line rated (so MATPOWER's case141 feeder, not its 533-bus
/// one), and case33bw's 1 056 entries many times over.
pub const MAX_ALADIN_NETWORK_ENTRIES: u64 = 40_000;
/// Network rows' share of the primal-dual work budget: each iteration
/// evaluates every row (a dot product over the buses) besides updating
/// every trade, so a run costs about max(trades, entries / this) ×
/// iterations in trade updates, within a factor two
/// ([`MAX_PRIMAL_DUAL_WORK`]). Measured (test build): about 30 ns per
/// entry and iteration (a 300-bus feeder, 89 700 entries, 2.8 ms an
/// iteration) against about 0.6 µs per trade (case30 30 × 30).
pub const NETWORK_ENTRIES_PER_TRADE: u64 = 20;

/// Why `market clear` refuses a size before any setup (exit 2).
#[derive(Debug, PartialEq, Eq)]
pub enum MarketBudgetError {
    Aladin {
        trades: u64,
        limit: u64,
    },
    Enclaves {
        tees: u64,
        work: u64,
        limit: u64,
    },
    PrimalDual {
        trades: u64,
        max_iter: u64,
        work: u64,
        limit: u64,
    },
    Framework {
        trades: u64,
        limit: u64,
    },
    /// ALADIN over a network model larger than [`MAX_ALADIN_NETWORK_ENTRIES`].
    AladinNetwork {
        model: &'static str,
        row_pairs: u64,
        buses: u64,
        entries: u64,
        limit: u64,
    },
    /// Primal-dual over the trades and the network rows beyond [`MAX_PRIMAL_DUAL_WORK`].
    PrimalDualNetwork {
        model: &'static str,
        trades: u64,
        entries: u64,
        max_iter: u64,
        work: u64,
        limit: u64,
    },
}

impl std::fmt::Display for MarketBudgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Aladin { trades, limit } => write!(
                f,
                "work budget exceeded: --algorithm aladin with --buyers × --sellers = {trades} trades, over the limit \
                 of {limit} (use fewer --buyers or --sellers, or --algorithm primal-dual)"
            ),
            Self::Enclaves { tees, work, limit } => write!(
                f,
                "work budget exceeded: --byzantine with --tees {tees} exchanges {work} (= tees²) shares per \
                 round, over the limit of {limit} (use --tees 64 or fewer)"
            ),
            Self::PrimalDual { trades, max_iter, work, limit } => write!(
                f,
                "work budget exceeded: primal-dual with --buyers × --sellers = {trades} trades × {max_iter} \
                 iterations (--max-iter) = {work} trade updates, over the limit of {limit} (use fewer --buyers \
                 or --sellers, or a lower --max-iter)"
            ),
            Self::Framework { trades, limit } => write!(
                f,
                "work budget exceeded: --byzantine runs the framework on --buyers × --sellers = {trades} \
                 trades, over the limit of {limit} (use fewer --buyers or --sellers)"
            ),
            Self::AladinNetwork { model, row_pairs, buses, entries, limit } => write!(
                f,
                "work budget exceeded: --algorithm aladin on the case's {model} model of {row_pairs} row pairs × \
                 {buses} buses = {entries} entries, over the limit of {limit} (use a smaller --case, or \
                 --algorithm primal-dual)"
            ),
            Self::PrimalDualNetwork { model, trades, entries, max_iter, work, limit } => write!(
                f,
                "work budget exceeded: primal-dual on the case's {model} model of {entries} row entries (each \
                 1/{NETWORK_ENTRIES_PER_TRADE} of a trade update, beside --buyers × --sellers = {trades} trades) × \
                 {max_iter} iterations (--max-iter) = {work} trade updates, over the limit of {limit} (use a \
                 smaller --case, fewer --buyers or --sellers, or a lower --max-iter)"
            ),
        }
    }
}

impl std::error::Error for MarketBudgetError {}

/// Checks the work budget of `a` ([`MAX_ALADIN_TRADES`], [`MAX_ENCLAVE_WORK`],
/// [`MAX_PRIMAL_DUAL_WORK`], [`MAX_FRAMEWORK_TRADES`]).
pub fn check_work_budget(a: &ClearArgs) -> Result<(), MarketBudgetError> {
    let trades = (a.buyers as u64).saturating_mul(a.sellers as u64);
    if a.algorithm == Algorithm::Aladin && trades > MAX_ALADIN_TRADES {
        return Err(MarketBudgetError::Aladin { trades, limit: MAX_ALADIN_TRADES });
    }
    // the framework (--byzantine) runs TEAR-DO's primal-dual on every trade
    if a.byzantine.is_some() && trades > MAX_FRAMEWORK_TRADES {
        return Err(MarketBudgetError::Framework { trades, limit: MAX_FRAMEWORK_TRADES });
    }
    // primal-dual: the plain run under --max-iter (or its default cap), and
    // the framework's run under --byzantine (its own default cap)
    let mut caps = Vec::new();
    if a.algorithm == Algorithm::PrimalDual {
        caps.push(a.max_iter.unwrap_or(PRIMAL_DUAL_DEFAULT_MAX_ITER));
    }
    if a.byzantine.is_some() {
        caps.push(PRIMAL_DUAL_DEFAULT_MAX_ITER);
    }
    if let Some(max_iter) = caps.into_iter().max() {
        let work = trades.saturating_mul(max_iter);
        if work > MAX_PRIMAL_DUAL_WORK {
            return Err(MarketBudgetError::PrimalDual { trades, max_iter, work, limit: MAX_PRIMAL_DUAL_WORK });
        }
    }
    let tees = u64::from(a.tees);
    if a.byzantine.is_some() && tees * tees > MAX_ENCLAVE_WORK {
        return Err(MarketBudgetError::Enclaves { tees, work: tees * tees, limit: MAX_ENCLAVE_WORK });
    }
    Ok(())
}

/// Checks the work budget of `a` on the case's network model (`size`,
/// from [`network_size`], before the model is built): ALADIN's rows
/// ([`MAX_ALADIN_NETWORK_ENTRIES`]) and primal-dual's trades and rows
/// together ([`MAX_PRIMAL_DUAL_WORK`], the rows weighted by
/// [`NETWORK_ENTRIES_PER_TRADE`]); the framework (`--byzantine`) runs
/// primal-dual under its default cap. [`check_work_budget`] covers what
/// does not depend on the case.
pub fn check_network_budget(a: &ClearArgs, size: &NetworkSize) -> Result<(), MarketBudgetError> {
    let entries = size.entries();
    if a.algorithm == Algorithm::Aladin && entries > MAX_ALADIN_NETWORK_ENTRIES {
        return Err(MarketBudgetError::AladinNetwork {
            model: size.model,
            row_pairs: size.row_pairs as u64,
            buses: size.buses as u64,
            entries,
            limit: MAX_ALADIN_NETWORK_ENTRIES,
        });
    }
    let trades = (a.buyers as u64).saturating_mul(a.sellers as u64);
    let mut caps = Vec::new();
    if a.algorithm == Algorithm::PrimalDual {
        caps.push(a.max_iter.unwrap_or(PRIMAL_DUAL_DEFAULT_MAX_ITER));
    }
    if a.byzantine.is_some() {
        caps.push(PRIMAL_DUAL_DEFAULT_MAX_ITER);
    }
    if let Some(max_iter) = caps.into_iter().max() {
        // the larger of the two parts: within twice the sum, and the trades'
        // budget unchanged where the rows are the smaller part (100 × 100 on
        // case30 or case33bw at the default cap)
        let per_iteration = trades.max(entries.div_ceil(NETWORK_ENTRIES_PER_TRADE));
        let work = per_iteration.saturating_mul(max_iter);
        if work > MAX_PRIMAL_DUAL_WORK {
            return Err(MarketBudgetError::PrimalDualNetwork {
                model: size.model,
                trades,
                entries,
                max_iter,
                work,
                limit: MAX_PRIMAL_DUAL_WORK,
            });
        }
    }
    Ok(())
}

fn clear(a: ClearArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.buyers > 0 && a.sellers > 0, "--buyers and --sellers must be at least 1");
    anyhow::ensure!(a.buyers <= 1000 && a.sellers <= 1000, "at most 1000 buyers and 1000 sellers");
    if let Err(e) = check_work_budget(&a) {
        // bad usage, refused before any setup: exit 2 (as clap's usage errors)
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let case = crate::grid::load_case(&a.case)?;
    // the case's rows, counted before the model is built (O(buses + branches))
    let size = network_size(&case).context("sizing the network model")?;
    if let Err(e) = check_network_budget(&a, &size) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    let net = network_for(&case, a.limit_scale).context("building the network model")?;
    // a meshed case with no rated line: no network constraint at all (also
    // refused by the clearing itself; here before the framework too)
    net.check_constrained().context("building the network model")?;
    let market = Market::generate(a.seed, a.buyers, a.sellers, &net.bus_ids);
    let alg = match a.algorithm {
        Algorithm::PrimalDual => Alg::PrimalDual,
        Algorithm::Aladin => Alg::Aladin,
        Algorithm::Central => Alg::Central,
    };
    let cap = a.max_iter.map(|n| n as usize);
    let r = clear_with(&market, &net, alg, cap).context("clearing the market")?;
    if let Some(p) = a.byzantine {
        return framework(&a, p, &market, &net, &r);
    }
    if a.json {
        let out = serde_json::json!({
            "case": a.case.display().to_string(),
            "buyers": a.buyers,
            "sellers": a.sellers,
            "seed": a.seed,
            "limit_scale": a.limit_scale,
            "result": r,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_clearing(&a, &r);
    Ok(())
}

fn print_clearing(a: &ClearArgs, r: &Clearing) {
    println!(
        "market on {} ({} network; {} buyers, {} sellers, seed {})",
        a.case.display(),
        r.network,
        a.buyers,
        a.sellers,
        a.seed
    );
    println!(
        "{:?}: {} iterations ({}), {:.3} s",
        r.algorithm,
        r.iterations,
        if r.converged { "converged" } else { "NOT converged" },
        r.seconds
    );
    println!("welfare          ${:.4}", r.welfare);
    println!("optimum          ${:.4} (Clarabel)", r.optimum);
    println!("relative gap     {:.2e}", r.relative_gap);
    println!(
        "mean trade price ${:.4}/kWh paid by buyers, ${:.4}/kWh received by sellers (nodal prices)",
        r.mean_trade_price, r.mean_seller_price
    );
    println!("energy traded    {:.3} kWh", r.energy_kwh);
    println!("network          max violation {:.2e} kW; binding at the optimum: {}", r.violation_kw, {
        if r.binding.is_empty() {
            "none".to_string()
        } else {
            r.binding.join(", ")
        }
    });
    if let Some(ac) = &r.ac {
        println!(
            "AC flow          {} clearing(s) with the loss allowance; largest line loading {:.2} %{}; |V| {:.4} to {:.4} p.u.",
            ac.rounds,
            100.0 * ac.max_loading,
            ac.max_loading_line.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
            ac.min_vm,
            ac.max_vm
        );
    }
    let (lo, hi) =
        r.bus_prices.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (_, p)| (l.min(*p), h.max(*p)));
    println!("nodal prices     ${lo:.4} to ${hi:.4}/kWh over {} buses", r.bus_prices.len());
    let st = &r.settlement;
    println!(
        "settlement       {} Wh in {} trades; buyers pay {}, sellers receive {}, congestion rent to the operator {} minor units (1/{} $; each prosumer's Wh and net payment rounded once, at its bus's nodal price)",
        st.energy_wh,
        st.trades.len(),
        st.buyer_pays.iter().sum::<i64>(),
        st.seller_receives.iter().sum::<i64>(),
        st.operator_minor,
        st.minor_per_major
    );
    let mut trades = r.trades.clone();
    trades.sort_by(|x, y| y.kwh.total_cmp(&x.kwh));
    for t in trades.iter().take(a.show_trades) {
        let settled = st.trades.iter().find(|x| x.buyer == t.buyer && x.seller == t.seller);
        let (wh, value, seller_value) = settled.map_or((0, 0, 0), |x| (x.wh, x.value_milli, x.seller_value_milli));
        println!(
            "  buyer {:>3} <- seller {:>3}: {:.3} kWh = {wh} Wh, buyer pays {:.3}, seller receives {:.3} minor units",
            t.buyer,
            t.seller,
            t.kwh,
            value as f64 / 1000.0,
            seller_value as f64 / 1000.0
        );
    }
    if trades.len() > a.show_trades {
        println!("  ... {} more trades (--json for all)", trades.len() - a.show_trades);
    }
}

/// Byzantine hosts: `⌊p·B'⌋` of them, chosen by the seed, cycling through
/// the four faults.
pub fn byzantine_hosts(p: f64, tees: usize, seed: u64) -> BTreeMap<usize, Fault> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let f = ((p * tees as f64).floor() as usize).min(tees.saturating_sub(1));
    let mut nodes: Vec<usize> = (0..tees).collect();
    nodes.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x62797a));
    nodes[..f].iter().enumerate().map(|(i, n)| (*n, Fault::ALL[i % Fault::ALL.len()])).collect()
}

fn framework(a: &ClearArgs, p: f64, market: &Market, net: &MarketNetwork, central: &Clearing) -> anyhow::Result<()> {
    anyhow::ensure!(p.is_finite() && (0.0..=0.9).contains(&p), "--byzantine must be a fraction from 0 to 0.9");
    let tees = a.tees as usize;
    anyhow::ensure!((a.kappa as usize) <= tees, "--kappa must not exceed --tees");
    let byzantine = byzantine_hosts(p, tees, a.seed);
    let strategy = match a.attack {
        AttackArg::Always => Strategy::Always,
        AttackArg::Optimal => Strategy::Optimal,
    };
    let config =
        TearDoConfig { enclaves: tees, kappa: a.kappa as usize, byzantine: byzantine.clone(), strategy, seed: a.seed };
    // a clearing is reported only inside the seed's fault model (f < B'/3)
    gridledger_market::teardo::check_fault_model(&config).context("--byzantine with --tees")?;
    let dir = tempfile::tempdir()?;
    let t = std::time::Instant::now();
    let out = run_interval(dir.path(), market, net, config, None).context("running the interval")?;
    let secs = t.elapsed().as_secs_f64();
    let gap = (central.optimum - out.welfare) / central.optimum;
    if a.json {
        let v = serde_json::json!({
            "case": a.case.display().to_string(),
            "buyers": a.buyers,
            "sellers": a.sellers,
            "seed": a.seed,
            "isolation": "none (software enclaves)",
            "byzantine_hosts": byzantine.iter().map(|(n, f)| serde_json::json!({"node": n, "fault": f})).collect::<Vec<_>>(),
            "welfare_usd": out.welfare,
            "optimum_usd": central.optimum,
            "relative_gap": gap,
            "seconds": secs,
            "bus_prices": central.bus_prices,
            "interval": out,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rep = &out.teardo;
    println!(
        "market on {} ({} network; {} buyers, {} sellers, seed {})",
        a.case.display(),
        net.model,
        a.buyers,
        a.sellers,
        a.seed
    );
    println!(
        "enclaves         {} software enclaves (NO hardware isolation), {} selected by D-TASK, kappa {}",
        tees, rep.selected, a.kappa
    );
    println!(
        "requests         {} encrypted on chain, {} admitted by the operator (height {})",
        out.submitted,
        out.admitted.len(),
        out.height
    );
    let hosts: Vec<String> = byzantine.iter().map(|(n, f)| format!("{n} ({f:?})")).collect();
    println!("byzantine hosts  {}", if hosts.is_empty() { "none".into() } else { hosts.join(", ") });
    let det: Vec<String> = rep.detected.iter().map(|(n, d, r)| format!("{n} ({d:?}, round {r})")).collect();
    println!("detected         {}", if det.is_empty() { "none".into() } else { det.join(", ") });
    println!(
        "primal-dual      {} iterations ({}), {:.3} s; {} rounds waited Δ, {} subproblems recomputed by honest enclaves",
        rep.iterations,
        if rep.converged { "converged" } else { "NOT converged" },
        secs,
        rep.delayed_rounds,
        rep.recomputed_subproblems
    );
    println!("welfare          ${:.4} (optimum ${:.4}, gap {:.2e})", out.welfare, central.optimum, gap);
    if let Some(f) = &out.fallback {
        println!("fallback         {}", f.reason);
    }
    let (lo, hi) =
        central.bus_prices.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), (_, p)| (l.min(*p), h.max(*p)));
    println!("nodal prices     ${lo:.4} to ${hi:.4}/kWh");
    println!(
        "crypto           {} encryptions, {} proofs, {} verifications, {} decryptions; largest message {} B",
        rep.crypto.encryptions,
        rep.crypto.signatures,
        rep.crypto.verifications,
        rep.crypto.decryptions,
        rep.crypto.max_message_bytes
    );
    Ok(())
}

/// The demo's market section: a congested 8×8 case30 interval through the
/// chain, D-TASK and TEAR-DO with 3 of 10 enclave hosts Byzantine; prints
/// welfare, prices per bus, iterations and the Byzantine hosts detected.
pub fn demo(json: bool) -> anyhow::Result<serde_json::Value> {
    let case = crate::grid::load_case(std::path::Path::new("case30"))?;
    let net = network_for(&case, 1e-4).context("building the network model")?;
    let market = Market::generate(7, 8, 8, &net.bus_ids);
    let central = clear_market(&market, &net, Alg::Central).context("central reference")?;
    let byzantine = byzantine_hosts(0.3, 10, 7);
    let config =
        TearDoConfig { enclaves: 10, kappa: 3, byzantine: byzantine.clone(), strategy: Strategy::Always, seed: 7 };
    let dir = tempfile::tempdir()?;
    let out = run_interval(dir.path(), &market, &net, config, None).context("market interval")?;
    let gap = (central.optimum - out.welfare) / central.optimum;
    let used: std::collections::BTreeSet<u32> = market.buyers.iter().chain(&market.sellers).map(|p| p.bus).collect();
    let prices: Vec<(u32, f64)> = central.bus_prices.iter().copied().filter(|(b, _)| used.contains(b)).collect();
    let detected: Vec<usize> = out.teardo.detected.iter().map(|(n, _, _)| *n).collect();
    if !json {
        println!(
            "market clearing (case30, 8 buyers x 8 sellers, congested; 10 software enclaves, NO hardware isolation)"
        );
        println!("  requests on chain   {} submitted, {} admitted", out.submitted, out.admitted.len());
        println!("  welfare             ${:.4} (optimum ${:.4}, gap {:.2e})", out.welfare, central.optimum, gap);
        println!("  iterations          {} (primal-dual under TEAR-DO)", out.teardo.iterations);
        let ps: Vec<String> = prices.iter().map(|(b, p)| format!("{b}: {p:.4}")).collect();
        println!("  prices per bus      $/kWh {}", ps.join(", "));
        println!("  byzantine hosts     {:?}; detected {:?}", byzantine.keys().collect::<Vec<_>>(), detected);
        println!();
    }
    Ok(serde_json::json!({
        "welfare_usd": out.welfare,
        "optimum_usd": central.optimum,
        "relative_gap": gap,
        "iterations": out.teardo.iterations,
        "bus_prices": prices,
        "byzantine_hosts": byzantine.keys().collect::<Vec<_>>(),
        "detected": detected,
        "admitted": out.admitted.len(),
    }))
}

/// The demo's market section of `report.html`, from [`demo`]'s JSON.
pub fn report_section(m: &serde_json::Value) -> gridledger_experiments::html::MarketSection {
    let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
    let ids = |k: &str| -> Vec<usize> {
        m[k].as_array().into_iter().flatten().filter_map(|v| v.as_u64()).map(|v| v as usize).collect()
    };
    let bus_prices = m["bus_prices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((u32::try_from(p[0].as_u64()?).ok()?, p[1].as_f64()?)))
        .collect();
    let rows = vec![
        ("welfare ($)".into(), format!("{:.4}", f("welfare_usd"))),
        ("central optimum ($)".into(), format!("{:.4}", f("optimum_usd"))),
        ("relative gap".into(), format!("{:.2e}", f("relative_gap"))),
        ("iterations".into(), m["iterations"].to_string()),
        ("requests admitted".into(), m["admitted"].to_string()),
        ("Byzantine hosts".into(), format!("{:?}", ids("byzantine_hosts"))),
        ("Byzantine hosts detected".into(), format!("{:?}", ids("detected"))),
    ];
    gridledger_experiments::html::MarketSection {
        rows,
        bus_prices,
        relative_gap: f("relative_gap"),
        byzantine_hosts: ids("byzantine_hosts"),
        detected: ids("detected"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: ClearArgs,
    }

    fn args(v: &[&str]) -> ClearArgs {
        W::parse_from(std::iter::once("clear").chain(v.iter().copied())).a
    }

    #[test]
    fn the_work_budget_admits_the_defaults_and_the_issue_sizes_and_refuses_beyond() {
        assert_eq!(check_work_budget(&args(&[])), Ok(()));
        assert_eq!(check_work_budget(&args(&["--byzantine", "0.3"])), Ok(()));
        let a100 = ["--algorithm", "aladin", "--buyers", "100", "--sellers", "100"];
        assert_eq!(check_work_budget(&args(&a100)), Ok(()));
        // primal-dual: buyers × sellers × the iteration cap
        let e = check_work_budget(&args(&["--buyers", "1000", "--sellers", "1000"])).unwrap_err();
        assert_eq!(
            e,
            MarketBudgetError::PrimalDual {
                trades: 1_000_000,
                max_iter: 200_000,
                work: 200_000_000_000,
                limit: MAX_PRIMAL_DUAL_WORK
            }
        );
        assert!(e.to_string().contains("--max-iter"), "{e}");
        assert_eq!(check_work_budget(&args(&["--buyers", "100", "--sellers", "100"])), Ok(()));
        assert!(check_work_budget(&args(&["--buyers", "101", "--sellers", "100"])).is_err());
        let capped = ["--buyers", "1000", "--sellers", "1000", "--max-iter", "2000"];
        assert_eq!(check_work_budget(&args(&capped)), Ok(()));
        let over = ["--buyers", "1000", "--sellers", "1000", "--max-iter", "2001"];
        assert!(check_work_budget(&args(&over)).is_err());
        // the central reference alone is not budgeted here
        assert_eq!(
            check_work_budget(&args(&["--algorithm", "central", "--buyers", "1000", "--sellers", "1000"])),
            Ok(())
        );
        // --byzantine: the framework's trades, whatever --max-iter says
        let byz = ["--byzantine", "0", "--algorithm", "central", "--buyers", "101", "--sellers", "100"];
        assert_eq!(
            check_work_budget(&args(&byz)),
            Err(MarketBudgetError::Framework { trades: 10_100, limit: MAX_FRAMEWORK_TRADES })
        );
        let byz = ["--byzantine", "0", "--buyers", "100", "--sellers", "100", "--max-iter", "10"];
        assert_eq!(check_work_budget(&args(&byz)), Ok(()));
        // --byzantine does not lift the plain run's --max-iter from the budget
        let byz = ["--byzantine", "0", "--buyers", "100", "--sellers", "100", "--max-iter", "300000"];
        assert!(matches!(check_work_budget(&args(&byz)), Err(MarketBudgetError::PrimalDual { max_iter: 300_000, .. })));
        let big = args(&["--algorithm", "aladin", "--buyers", "101", "--sellers", "100"]);
        assert_eq!(
            check_work_budget(&big),
            Err(MarketBudgetError::Aladin { trades: 10_100, limit: MAX_ALADIN_TRADES })
        );
        assert_eq!(check_work_budget(&args(&["--byzantine", "0.3", "--tees", "64"])), Ok(()));
        let e = check_work_budget(&args(&["--byzantine", "0.3", "--tees", "65"])).unwrap_err();
        assert_eq!(e, MarketBudgetError::Enclaves { tees: 65, work: 65 * 65, limit: MAX_ENCLAVE_WORK });
        assert!(e.to_string().contains("--tees"), "{e}");
        // --tees without --byzantine runs no enclave
        assert_eq!(check_work_budget(&args(&["--tees", "200"])), Ok(()));
    }
    fn shipped(name: &str) -> NetworkSize {
        network_size(&crate::grid::load_case(std::path::Path::new(name)).unwrap()).unwrap()
    }

    #[test]
    fn the_network_budget_counts_the_case_rows_for_aladin_and_primal_dual() {
        // the shipped cases: case33bw's 32 voltage pairs (no rated line) ×
        // 33 buses, case30's 41 rated lines × 30 buses
        let bw = shipped("case33bw");
        assert_eq!(bw, NetworkSize { model: "distflow", row_pairs: 32, buses: 33 });
        let c30 = shipped("case30");
        assert_eq!(c30, NetworkSize { model: "ptdf", row_pairs: 41, buses: 30 });
        // the issue's sizes on both still run, with every algorithm
        for alg in ["aladin", "primal-dual", "central"] {
            let a = args(&["--algorithm", alg, "--buyers", "100", "--sellers", "100"]);
            assert_eq!(check_network_budget(&a, &bw), Ok(()), "{alg}");
            assert_eq!(check_network_budget(&a, &c30), Ok(()), "{alg}");
        }
        let byz = args(&["--byzantine", "0.3", "--buyers", "100", "--sellers", "100"]);
        assert_eq!(check_network_budget(&byz, &bw), Ok(()));
        // a 2 000-bus feeder: 1 999 pairs × 2 000 buses
        let big = NetworkSize { model: "distflow", row_pairs: 1_999, buses: 2_000 };
        let e = check_network_budget(&args(&["--algorithm", "aladin", "--buyers", "2", "--sellers", "2"]), &big)
            .unwrap_err();
        assert_eq!(
            e,
            MarketBudgetError::AladinNetwork {
                model: "distflow",
                row_pairs: 1_999,
                buses: 2_000,
                entries: 3_998_000,
                limit: MAX_ALADIN_NETWORK_ENTRIES
            }
        );
        assert!(e.to_string().contains("work budget exceeded") && e.to_string().contains("--case"), "{e}");
        // ALADIN's limit itself: 200 buses unrated, not 201
        let at = |n: usize| NetworkSize { model: "distflow", row_pairs: n - 1, buses: n };
        let aladin = args(&["--algorithm", "aladin", "--buyers", "2", "--sellers", "2"]);
        assert_eq!(check_network_budget(&aladin, &at(200)), Ok(()));
        assert!(matches!(check_network_budget(&aladin, &at(201)), Err(MarketBudgetError::AladinNetwork { .. })));
        // primal-dual: a twentieth of the entries beside the trades, × the cap
        let e = check_network_budget(&args(&["--buyers", "2", "--sellers", "2"]), &big).unwrap_err();
        assert_eq!(
            e,
            MarketBudgetError::PrimalDualNetwork {
                model: "distflow",
                trades: 4,
                entries: 3_998_000,
                max_iter: PRIMAL_DUAL_DEFAULT_MAX_ITER,
                work: 199_900 * PRIMAL_DUAL_DEFAULT_MAX_ITER,
                limit: MAX_PRIMAL_DUAL_WORK
            }
        );
        assert!(e.to_string().contains("--max-iter"), "{e}");
        // ... which a lower --max-iter admits (199 900 × 10 005 ≤ 2·10⁹)
        let capped = args(&["--buyers", "2", "--sellers", "2", "--max-iter", "10005"]);
        assert_eq!(check_network_budget(&capped, &big), Ok(()));
        let over = args(&["--buyers", "2", "--sellers", "2", "--max-iter", "10006"]);
        assert!(check_network_budget(&over, &big).is_err());
        // --byzantine runs primal-dual under its default cap, whatever --algorithm says
        let byz = args(&["--byzantine", "0", "--algorithm", "central", "--buyers", "2", "--sellers", "2"]);
        assert!(matches!(
            check_network_budget(&byz, &big),
            Err(MarketBudgetError::PrimalDualNetwork { max_iter: PRIMAL_DUAL_DEFAULT_MAX_ITER, .. })
        ));
        // the central reference alone is not budgeted here
        let central = args(&["--algorithm", "central", "--buyers", "2", "--sellers", "2"]);
        assert_eq!(check_network_budget(&central, &big), Ok(()));
    }
}
