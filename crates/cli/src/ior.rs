//! `gridledger ior …`: the dual blockchain with the Improved Optimistic
//! Rollup (thesis Ch.3). `bench` prints the §3.5.3 benchmarks as JSON
//! ([`gridledger_rollup::bench::bench_ior`]); `day` runs the §3.5.4
//! 15-participant day on embedded real data
//! ([`gridledger_rollup::demo::run_day`]).

use clap::Args;
use gridledger_rollup::bench::{bench_ior_steps, bench_ior_with_progress, IorBenchConfig};
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
    /// Seed of the generated trades.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also run thesis Fig 3-5 with the primary chain (IOR) and the single
    /// chain as this many in-process PBFT validators, e.g. `10,20,30`.
    #[arg(long, value_delimiter = ',')]
    pub pbft_nodes: Vec<usize>,
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
    let total = bench_ior_steps(&cfg) + a.pbft_nodes.len();
    let mut progress = crate::progress::Steps::new("bench ior", total as u64, a.json);
    let mut out = bench_ior_with_progress(&cfg, &mut |name| progress.step(name))?;
    if !a.pbft_nodes.is_empty() {
        out["fig_3_5_pbft"] = fig_3_5(&a.pbft_nodes, a.gas_txs, a.sellers, &mut progress)?;
    }
    drop(progress);
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
    /// Print the full report as JSON (an array with `--days` > 1).
    #[arg(long)]
    pub json: bool,
    /// An energy-community TOML file (clearing rule, grid fee, feed-in
    /// tariff, participants with profiles and prices); its `seed` and `day`
    /// replace `--seed` and `--day`. `--example-config` prints a commented
    /// example to start from.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// Print a commented example of the community file `--config` takes
    /// (15 participants, every key explained) and exit. TOML, so not with
    /// --json.
    #[arg(long, conflicts_with = "json")]
    pub example_config: bool,
    /// Run this many consecutive days (wrapping after day 365; at most
    /// 365), each on fresh chains, and print one line per day and the
    /// totals.
    #[arg(long, default_value_t = 1)]
    pub days: u16,
    /// Write per-participant settlement statements (CSV, one row per
    /// participant per day) to this file.
    #[arg(long)]
    pub statements: Option<std::path::PathBuf>,
    /// Metered net energy of one day, one column per meter in participant
    /// order (header: a time label, then meter names; 96 quarter-hour or
    /// 24 hourly rows of signed Wh, export positive); replaces the simulated
    /// load and generation. Only with `--days 1`.
    #[arg(long)]
    pub meter_csv: Option<std::path::PathBuf>,
    /// Where to write report.html, a self-contained HTML report of the day
    /// (with `--days` > 1: report-day-NNN.html per day).
    #[arg(long, default_value = ".")]
    pub report_dir: std::path::PathBuf,
    /// Do not write the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// Run the day on a running node (or testnet validator) instead of two
    /// in-process chains: a URL, HOST:PORT, or a chain directory. Its
    /// clock cannot be moved, so slots last --slot-ms of real time. Needs
    /// --from. The IOR contracts of a chain are initialised once: run each
    /// day on a fresh chain. The run keeps a journal (its configuration and
    /// each slot's start; `ior-day.json` in the chain directory, or
    /// --journal): if it is stopped part way (killed, crashed), the same
    /// command run again resumes the day: it settles every batch the
    /// stopped run recorded and every agreement it left open, then ends
    /// (no further slot is traded). A rerun with another configuration,
    /// after the day finished, or while the run is still live, is refused
    /// and sends nothing: a live run holds a lock on its journal and one
    /// on the chain's day (named by the chain's genesis, in this user's
    /// `~/.local/state/gridledger/locks`), so a second run is refused whatever journal file
    /// or node address it is given. These locks are of this host and
    /// user: run a chain's day from one account on one host.
    #[arg(long, value_parser = crate::endpoint::parse_rpc_target, conflicts_with = "pbft", requires = "from", value_name = "URL")]
    pub rpc: Option<crate::endpoint::RpcTarget>,
    /// With --rpc: the day's journal file (default: `ior-day.json` in the
    /// chain directory --rpc names; with a URL and no --journal the day
    /// keeps none and cannot be resumed).
    #[arg(long, value_name = "FILE", requires = "rpc")]
    pub journal: Option<std::path::PathBuf>,
    /// The secondary chain's node, with --rpc (default: the --rpc node,
    /// which runs both chains' contracts).
    #[arg(long, value_parser = crate::endpoint::parse_rpc, requires = "rpc", value_name = "URL")]
    pub secondary_rpc: Option<String>,
    /// With --rpc: key file (or encrypted keystore: password from
    /// --password-file, GRIDLEDGER_PASSWORD_FILE, GRIDLEDGER_PASSWORD or the terminal) of a
    /// funded account that pays the day's accounts (the development
    /// accounts 0..N, whose keys are public: use a test network) what they
    /// need (IOR funding, node deposits and gas), topping each up to that
    /// amount.
    #[arg(long, value_name = "FILE", requires = "rpc")]
    pub from: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// With --rpc: gas price of the funding transfers, in minor units per
    /// gas (default: the node's minimum, min_gas_price in gl_chainInfo, else 1).
    #[arg(long, value_name = "MINOR", requires = "rpc")]
    pub gas_price: Option<u128>,
    /// With --rpc: length of a delivery slot on chain (ms, whole seconds;
    /// each slot still trades its half hour of energy). A slot starts once
    /// the last one's batch has settled, so a slot lasts at least the
    /// dispute window (--window-ms) plus a few blocks.
    #[arg(long, default_value_t = 5_000, requires = "rpc", value_parser = parse_slot_ms, value_name = "MS")]
    pub slot_ms: u64,
    /// Trade only these half-hour slots of the day, `FIRST..END` (0..48 is
    /// the whole day; 24..28 is noon to 2 pm).
    #[arg(long, value_parser = parse_slots, default_value = "0..48", value_name = "FIRST..END")]
    pub slots: (usize, usize),
    /// IOR dispute window in ms of block time (the driver waits it out for
    /// every batch; on a running node that is real time).
    #[arg(long, default_value_t = 5_000)]
    pub window_ms: u64,
}

/// `--slot-ms`: a positive whole number of seconds in ms, checked by the
/// argument parser so the error names the flag and no node is contacted.
fn parse_slot_ms(s: &str) -> Result<u64, String> {
    let ms: u64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of milliseconds"))?;
    if ms == 0 || !ms.is_multiple_of(1000) {
        return Err(format!("{ms} ms is not a positive whole number of seconds (e.g. 5000)"));
    }
    Ok(ms)
}

/// `FIRST..END` of the day's 48 slots.
fn parse_slots(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("{s:?} is not FIRST..END (e.g. 24..28)"))?;
    let first: usize = a.trim().parse().map_err(|_| format!("{a:?} in --slots is not a slot number"))?;
    let end: usize = b.trim().parse().map_err(|_| format!("{b:?} in --slots is not a slot number"))?;
    let slots = gridledger_rollup::data::SLOTS_PER_DAY;
    if first >= end || end > slots {
        return Err(format!("--slots {first}..{end} is not a non-empty range within 0..{slots}"));
    }
    Ok((first, end))
}

/// The example community file (`ior day --example-config`).
const EXAMPLE_COMMUNITY: &str = include_str!("../../rollup/examples/community.toml");

pub fn day(a: DayArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    if a.example_config {
        crate::out::bytes(EXAMPLE_COMMUNITY.as_bytes());
        return Ok(());
    }
    let community = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let c: gridledger_rollup::demo::Community =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            Some(c)
        }
        None => None,
    };
    if a.days == 0 {
        anyhow::bail!("--days must be at least 1");
    }
    // A day number names one day of the year: more than 365 would repeat
    // them (report-day-NNN.html overwritten, the statements' `day` column
    // ambiguous; attack r28, notes).
    if a.days > 365 {
        anyhow::bail!("--days {} is more than a year: at most 365 (each day of the year once)", a.days);
    }
    if a.rpc.is_some() && a.days != 1 {
        anyhow::bail!("--rpc runs one day per chain (its IOR contracts are initialised once); use --days 1");
    }
    let first = community.as_ref().map_or(a.day, |c| c.day);
    if !(1..=365).contains(&first) {
        anyhow::bail!("day {first} is not in 1..=365");
    }
    let metered = match &a.meter_csv {
        Some(path) => {
            if a.days != 1 {
                anyhow::bail!("--meter-csv holds one day; use it with --days 1");
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Some(gridledger_rollup::demo::parse_meter_csv(&text).with_context(|| format!("in {}", path.display()))?)
        }
        None => None,
    };
    let config_for = |day: u16| -> anyhow::Result<DayConfig> {
        let mut cfg = match &community {
            Some(c) => c.day_config(day)?,
            None => DayConfig { seed: a.seed, day, ..DayConfig::default() },
        };
        cfg.metered = metered.clone();
        cfg.slots = a.slots;
        cfg.window_ms = a.window_ms;
        if a.rpc.is_some() {
            // The loop starts each slot no earlier than the node's now.
            cfg.start_ms = Some(gridledger_node::client::wall_clock_ms());
            cfg.slot_ms = a.slot_ms;
        }
        Ok(cfg)
    };
    let write_statements = |reports: &[gridledger_rollup::demo::DayReport]| -> anyhow::Result<()> {
        if let Some(path) = &a.statements {
            std::fs::write(path, gridledger_rollup::demo::statements_csv(reports))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    };
    if a.days == 1 {
        let cfg = config_for(first)?;
        // Held until this run ends (the kernel drops them if the process
        // is killed): a second run of the day refuses while this one
        // lives, whichever journal file or node address it is given.
        let _locks = match &a.rpc {
            Some(rpc) => Some(lock_day(journal_path(&a).as_deref(), &rpc.url)?),
            None => None,
        };
        if let Some(r) = resume_rpc_day(&a, &cfg)? {
            // The whole day's statements, from the chain (attack r28, cli
            // [1]: a resumed day wrote none).
            if let Some(path) = &a.statements {
                std::fs::write(path, gridledger_rollup::demo::statements_csv_of(&r.statements))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if !a.no_report {
                eprintln!(
                    "note: a resumed day writes no HTML report (its gas, latency and block counts are of the \
                     stopped run); the settlement statements (--statements) cover the whole day"
                );
            }
            print_resumed(&a, &r)?;
            anyhow::ensure!(
                r.open_agreements == 0 && r.batches.1 >= r.batches.0,
                "the resumed day left {} agreements open and {} batches unsettled: run the command again",
                r.open_agreements,
                r.batches.0.saturating_sub(r.batches.1)
            );
            return Ok(());
        }
        let r = run_one(&a, cfg)?;
        write_statements(std::slice::from_ref(&r))?;
        let path = write_day_report(&a, &r, "report.html")?;
        print_day(&a, &r)?;
        print_report_paths(&a, path.as_slice());
        return Ok(());
    }
    let mut reports = Vec::with_capacity(usize::from(a.days));
    let mut report_paths = Vec::new();
    if !a.json {
        println!(
            "{:>4} {:>7} {:>12} {:>12} {:>8} {:>14} {:>14} {:>12}",
            "day", "trades", "traded kWh", "bound kWh", "share", "revenue coin", "grid fee coin", "latency ms"
        );
    }
    for i in 0..a.days {
        let day = ((first - 1 + i) % 365) + 1;
        let r = run_one(&a, config_for(day)?)?;
        if !a.json {
            println!(
                "{:>4} {:>7} {:>12} {:>12} {:>8} {:>14} {:>14} {:>12}",
                day,
                r.trades_count,
                kwh(r.energy_traded_wh),
                kwh(r.bound_wh),
                share(r.energy_traded_wh, r.bound_wh),
                coins_string(r.revenue_minor),
                coins_string(r.grid_fees_minor),
                r.settlement_latency.max_ms
            );
        }
        report_paths.extend(write_day_report(&a, &r, &format!("report-day-{day:03}.html"))?);
        reports.push(r);
    }
    write_statements(&reports)?;
    print_report_paths(&a, &report_paths);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    let traded: u64 = reports.iter().map(|r| r.energy_traded_wh).sum();
    let bound: u64 = reports.iter().map(|r| r.bound_wh).sum();
    println!(
        "{:>4} {:>7} {:>12} {:>12} {:>8} {:>14} {:>14}",
        "all",
        reports.iter().map(|r| r.trades_count).sum::<usize>(),
        kwh(traded),
        kwh(bound),
        share(traded, bound),
        coins_string(reports.iter().map(|r| r.revenue_minor).sum()),
        coins_string(reports.iter().map(|r| r.grid_fees_minor).sum())
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct CaseStudyArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `gridledger ior case-study`: thesis §3.5.5 on the dual chain.
pub fn case_study(a: CaseStudyArgs) -> anyhow::Result<()> {
    let r = gridledger_rollup::demo::case_study()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let p = &r.params;
    println!(
        "Reputation case study (thesis §3.5.5): rs={} α={} β={} D_s={} coin F_p={}.{:03}; #14 fails to deliver at 8:00 and 13:00",
        p.rs,
        p.alpha,
        p.beta,
        coins_string(p.ds.0),
        p.fp_permille / 1000,
        p.fp_permille % 1000
    );
    println!("{:<44} {:>14} {:>14}", "", "gridledger", "thesis");
    let scores: Vec<String> = r.reputation_after.iter().map(|s| s.to_string()).collect();
    println!("{:<44} {:>14} {:>14}", "#14 reputation after each misbehaviour", scores.join(", "), "20, 10");
    println!("{:<44} {:>14} {:>14}", "#14 loses (coin)", coins_string(r.loss_minor), "2");
    let comp: Vec<String> = r.compensation_minor.iter().map(|c| coins_string(*c)).collect();
    println!("{:<44} {:>14} {:>14}", "each counterparty receives (coin)", comp.join(", "), "0.5");
    println!("{:<44} {:>14} {:>14}", "burned (coin)", coins_string(r.burned_minor), "-");
    println!("{:<44} {:>14} {:>14}", "#14 barred after 13:30", if r.barred.is_some() { "yes" } else { "no" }, "yes");
    if let Some(why) = &r.barred {
        println!("  refusal: {why}");
    }
    println!("coin on chain conserved: {}", r.coin_conserved);
    Ok(())
}

fn kwh(wh: u64) -> String {
    format!("{}.{:03}", wh / 1000, wh % 1000)
}

/// `traded / bound` as a percentage with one decimal, integer arithmetic.
fn share(traded: u64, bound: u64) -> String {
    if bound == 0 {
        return "-".into();
    }
    let permille = u128::from(traded) * 1000 / u128::from(bound);
    format!("{}.{}%", permille / 10, permille % 10)
}

/// Writes the day's HTML report as `name` under `--report-dir`, unless
/// `--no-report`.
fn write_day_report(
    a: &DayArgs,
    r: &gridledger_rollup::demo::DayReport,
    name: &str,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    if a.no_report {
        return Ok(None);
    }
    let primary = primary_label(a);
    let report = gridledger_experiments::html::DemoReport {
        chain: None,
        channel: None,
        xchain: None,
        market: None,
        forecast: None,
        day: r,
        primary,
    };
    Ok(Some(gridledger_experiments::html::write_report_as(&a.report_dir, name, &report)?))
}

/// What ran the primary chain, for the report's header.
fn primary_label(a: &DayArgs) -> String {
    match (&a.rpc, a.pbft) {
        (Some(url), _) => format!("the node at {url}"),
        (None, 0) => "1 validator".to_string(),
        (None, n) => format!("{n} PBFT validators"),
    }
}

/// Report paths go to stdout, or to stderr when stdout carries JSON.
fn print_report_paths(a: &DayArgs, paths: &[std::path::PathBuf]) {
    for p in paths {
        if a.json {
            eprintln!("report: {}", p.display());
        } else {
            println!("report: {}", p.display());
        }
    }
}

pub(crate) fn run_one(a: &DayArgs, cfg: DayConfig) -> anyhow::Result<gridledger_rollup::demo::DayReport> {
    if let (Some(rpc), Some(from)) = (&a.rpc, &a.from) {
        let secondary = a.secondary_rpc.as_deref().unwrap_or(&rpc.url);
        let journal = journal_path(a);
        return rpc_day(&rpc.url, secondary, from, &a.password, a.gas_price, cfg, a.json, journal.as_deref());
    }
    Ok(if a.pbft == 0 {
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
    })
}

/// Largest batch whose `sc_exe` / `sc_verify` transaction (the whole
/// batch, ≈ 250 bytes an entry) fits the node's `max_tx_bytes`, with room
/// to spare (512 bytes an entry, 4 KiB of envelope).
fn batch_bound(max_tx_bytes: usize, max_batch: u32) -> u32 {
    let fits = max_tx_bytes.saturating_sub(4096) / 512;
    u32::try_from(fits).unwrap_or(u32::MAX).clamp(1, max_batch.max(1))
}

/// What each of the day's accounts needs on a chain before the day: the
/// traders their IOR funding, the executors and validators their node
/// deposit and challenge bond, every account gas at the driver's limits
/// (price 1) for the calls before the first slot (a trader's `fund` and
/// meter registration); [`top_up_gas`] tops the wallets up per slot.
fn day_needs(d: &gridledger_rollup::driver::DriverConfig, funding: u128, primary: bool) -> Vec<(usize, u128)> {
    use gridledger_rollup::driver::{DRIVER_GAS_LIMIT, RECORD_GAS_LIMIT};
    let traders = (0..d.participants).map(|i| (i, funding + 4 * u128::from(RECORD_GAS_LIMIT)));
    let nodes = (d.participants..d.participants + d.executors + d.validators).map(|i| {
        let stake = if primary { d.node_deposit.0 + d.challenge_bond.0 } else { 0 };
        (i, stake + 3 * u128::from(DRIVER_GAS_LIMIT))
    });
    if primary {
        traders.chain(nodes).collect()
    } else {
        nodes.collect()
    }
}

/// Before a slot's (or a resume's) calls: tops each trader's wallet up to
/// the gas of its calls (`needs`, from [`gridledger_rollup::demo::run_day_with_progress`])
/// and each node's (account indices `first_node..end`) to the gas of three calls at
/// the driver's limit, on the primary chain and (nodes) on the secondary,
/// paid by `funder` at `prices` (primary, secondary). A node admits a
/// sender's call only while its balance covers the gas limits of all its
/// pending calls; funding the day's gas once, before it, left traders short
/// after three slots (attack r11 [1]). Accounts that hold enough are not
/// touched.
fn top_up_gas(
    url: &str,
    secondary: &str,
    funder: &gridledger_core::KeyPair,
    prices: &[u128],
    needs: &[(usize, u128)],
    (first_node, end): (usize, usize),
) -> Result<(), gridledger_rollup::demo::DemoError> {
    use gridledger_rollup::driver::DRIVER_GAS_LIMIT;
    let node_gas: Vec<(usize, u128)> = (first_node..end).map(|i| (i, 3 * u128::from(DRIVER_GAS_LIMIT))).collect();
    let primary: Vec<(usize, u128)> = needs.iter().copied().chain(node_gas.iter().copied()).collect();
    fund_day(url, funder, prices[0], &primary)?;
    if secondary != url {
        fund_day(secondary, funder, prices[1], &node_gas)?;
    }
    Ok(())
}

/// Tops the day's development accounts up to what they need on the chain
/// at `url`, paid by `funder`; waits until every transfer is in a block.
fn fund_day(
    url: &str,
    funder: &gridledger_core::KeyPair,
    gas_price: u128,
    needs: &[(usize, u128)],
) -> Result<(), gridledger_rollup::demo::DemoError> {
    use gridledger_ledger::ChainClient;
    use gridledger_rollup::demo::DemoError;
    let err = |e: &dyn std::fmt::Display| DemoError::Config(format!("funding the day's accounts at {url}: {e}"));
    let mut c = gridledger_node::client::RpcChain::connect(url).map_err(|e| err(&e))?;
    let fee = u128::from(gridledger_ledger::devnet::TRANSFER_GAS).saturating_mul(gas_price);
    let mut todo = Vec::new();
    for &(i, need) in needs {
        let a = gridledger_ledger::devnet::dev_key(i).address();
        let have = c.account(&a).balance.0;
        if have < need {
            todo.push((a, need - have));
        }
    }
    let total: u128 = todo.iter().map(|(_, x)| x + fee).sum();
    let have = c.account(&funder.address()).balance.0;
    if have < total {
        return Err(DemoError::Config(format!(
            "--from account {} holds {} at {url}; the day's {} accounts need {} more (with transfer fees)",
            funder.address(),
            crate::units::show(have),
            todo.len(),
            crate::units::show(total)
        )));
    }
    if todo.is_empty() {
        return Ok(());
    }
    let chain_id = c.chain_id();
    for (nonce, (to, amount)) in (c.next_nonce(&funder.address())..).zip(todo) {
        let tx = gridledger_ledger::devnet::transfer(
            funder,
            chain_id,
            nonce,
            to,
            gridledger_core::Amount(amount),
            gridledger_core::Amount(gas_price),
        );
        c.submit(&tx).map_err(|e| err(&e))?;
    }
    c.seal().map_err(|e| err(&e))
}

/// Where `ior day --rpc` keeps its journal: --journal, else `ior-day.json`
/// in the chain directory --rpc names; none for a bare URL. Canonical
/// ([`canonical_file`]): a journal reached through a symbolic link or
/// another spelling of its directory is the file it names, read, written
/// and locked there (attack r12 [1]).
fn journal_path(a: &DayArgs) -> Option<std::path::PathBuf> {
    let path = a.journal.clone().or_else(|| a.rpc.as_ref()?.dir.as_ref().map(|d| d.join("ior-day.json")))?;
    Some(canonical_file(&path))
}

/// `path` with its symbolic links and `.`/`..` resolved: the file it
/// names, or, where that does not exist yet, the canonical directory it
/// would be created in joined with its name; as given where neither
/// resolves (the error comes when the file is opened).
fn canonical_file(path: &std::path::Path) -> std::path::PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    match (std::fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// The journal of an `ior day --rpc` run: what a rerun needs to resume the
/// day on the same chain (issue 11, attack r8 [4]). Written before
/// anything is sent, rewritten as each slot starts, marked finished when
/// the day ends.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct DayJournal {
    /// The primary chain's id.
    chain_id: gridledger_core::ChainId,
    /// The hash of the primary chain's genesis block: what tells chains
    /// apart (every chain `gridledger init` makes has chain id 1 unless
    /// told otherwise, attack r11 [2]). Absent in a journal of an older
    /// run, which is then told by its chain id alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    genesis: Option<gridledger_core::Hash32>,
    /// The day's configuration ([`journal_config`]).
    config: serde_json::Value,
    /// `(slot, start)`: each slot's index and its start (block time, ms).
    slot_starts: Vec<(usize, u64)>,
    /// The day ended (nothing left to resume).
    finished: bool,
}

/// The part of a day's configuration a resumed run must share: all of it
/// but the start time, which every run takes from the clock.
fn journal_config(cfg: &DayConfig) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(cfg)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("start_ms");
    }
    Ok(v)
}

impl DayJournal {
    /// The chain the journal's day ran on.
    fn chain(&self) -> ChainName {
        ChainName { chain_id: self.chain_id, genesis: self.genesis.unwrap_or(gridledger_core::Hash32::ZERO) }
    }
}

/// A chain as a journal names it: its id and its genesis block's hash
/// (zero: unknown, a journal of an older run).
#[derive(Clone, Copy, Debug)]
struct ChainName {
    chain_id: gridledger_core::ChainId,
    genesis: gridledger_core::Hash32,
}

impl ChainName {
    /// The chain the node at `url` serves.
    fn of(url: &str) -> anyhow::Result<ChainName> {
        use anyhow::Context;
        use gridledger_ledger::ChainClient;
        let c =
            gridledger_node::client::RpcChain::connect(url).with_context(|| format!("no gridledger node at {url}"))?;
        let genesis = c
            .block(0)
            .with_context(|| format!("reading the genesis block of the node at {url}"))?
            .with_context(|| format!("the node at {url} serves no genesis block"))?
            .hash();
        Ok(ChainName { chain_id: c.chain_id(), genesis })
    }

    /// Whether `o` names the same chain: the same id, and the same genesis
    /// where both are known.
    fn is(&self, o: &ChainName) -> bool {
        let unknown = gridledger_core::Hash32::ZERO;
        self.chain_id == o.chain_id && (self.genesis == o.genesis || self.genesis == unknown || o.genesis == unknown)
    }
}

impl std::fmt::Display for ChainName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.genesis == gridledger_core::Hash32::ZERO {
            write!(f, "chain {} (genesis not recorded)", self.chain_id)
        } else {
            write!(f, "chain {} with genesis {}", self.chain_id, self.genesis)
        }
    }
}

/// A fresh day is about to write its journal at `path` for chain `here`:
/// refuses (nothing sent) when the file holds an unfinished day of another
/// chain, which only that chain's rerun may resume (attack r11 [2]), or
/// is not a day journal at all. An unfinished journal of this chain (a run
/// stopped before the IOR contracts were initialised) and a finished one
/// are replaced.
fn refuse_other_chains_day(path: &std::path::Path, here: &ChainName) -> anyhow::Result<()> {
    use anyhow::Context;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let j: DayJournal = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} exists and is not the journal of an `ior day --rpc` run: name another file with --journal \
             (nothing was sent)",
            path.display()
        )
    })?;
    if !j.finished && !j.chain().is(here) {
        anyhow::bail!(
            "the journal {} holds an unfinished day of {}, and this run is on {here}: it is left for that chain's \
             rerun to resume; give this day another --journal (nothing was sent)",
            path.display(),
            j.chain()
        );
    }
    Ok(())
}

/// Takes the locks of an `ior day --rpc` run on the node at `url` with
/// the journal at `journal` (canonical, [`journal_path`]), held for as
/// long as the returned files are open; the kernel drops them when the
/// process ends, killed or not. A second run must not resume a day a live
/// run is trading (attack r11 [3]), so both refuse while another process
/// holds them:
/// - the journal's lock ([`lock_journal`]), taken first, before the node
///   is contacted;
/// - the day's lock, named by the chain the node serves (its id and
///   genesis hash, [`day_lock_path`]): a chain runs one day, so this names
///   the day whatever file holds its journal (a copy, a link, none) and
///   however the node is addressed (attack r12 [1], [2]).
///
/// The limit: both are advisory locks of this host, and the day's lock
/// lives in a directory of this user, below the home the password
/// database records ([`lock_dir`]), so every environment of the user
/// finds it. A run by another user account, or from another host that
/// reaches the same node, does not see them: run a chain's day from one
/// account on one host.
fn lock_day(journal: Option<&std::path::Path>, url: &str) -> anyhow::Result<Vec<std::fs::File>> {
    let mut locks = Vec::new();
    if let Some(path) = journal {
        locks.push(lock_journal(path)?);
    }
    let here = ChainName::of(url)?;
    let lock = day_lock_path(&here)?;
    locks.push(lock_file(&lock, &format!("the day of {here}"), "the day's lock", true)?);
    Ok(locks)
}

/// Takes the advisory lock of the journal at `path` (on `PATH.lock`
/// beside it: the journal itself is replaced by a rename on every write).
fn lock_journal(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let lock = beside(path, "lock")?;
    lock_file(&lock, &format!("the day of the journal {}", path.display()), "the journal's lock", false)
}

/// `PATH.SUFFIX`: the journal's lock (`lock`) or temporary file (`tmp`),
/// named by the journal's whole file name, so journals that differ only
/// in their extension (`run.a`, `run.b`) have their own (attack r13 [4];
/// `ior-day.json` keeps `ior-day.json.lock` and `ior-day.json.tmp`). A
/// journal named like another journal's lock or temporary file is
/// refused.
fn beside(path: &std::path::Path, suffix: &str) -> anyhow::Result<std::path::PathBuf> {
    let name = path.file_name().ok_or_else(|| anyhow::anyhow!("the journal {} names no file", path.display()))?;
    anyhow::ensure!(
        [".lock", ".tmp"].iter().all(|x| !name.to_string_lossy().ends_with(x)),
        "the journal {} is named like a journal's lock or temporary file (.lock, .tmp): give another --journal \
         (nothing was sent)",
        path.display()
    );
    let mut name = name.to_os_string();
    name.push(".");
    name.push(suffix);
    Ok(path.with_file_name(name))
}

/// Opens (creating it) and locks `lock`, refusing when another process
/// holds it; `what` names what it guards, `name` the lock, in errors.
/// `no_follow`: a symbolic link at `lock` is refused, not followed.
fn lock_file(lock: &std::path::Path, what: &str, name: &str, no_follow: bool) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    let mut o = std::fs::OpenOptions::new();
    o.create(true).truncate(false).write(true);
    #[cfg(unix)]
    if no_follow {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = no_follow;
    let f = o.open(lock).with_context(|| format!("opening {name} {}", lock.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `ior day` process is running {what} (it holds {}): wait for it to end, or stop it, before \
             running the day again (nothing was sent)",
            lock.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", lock.display())),
    }
}

/// The day's lock of chain `c` ([`lock_day`]): `ior-day-ID-GENESIS.lock`
/// in this user's lock directory ([`lock_dir`]).
fn day_lock_path(c: &ChainName) -> anyhow::Result<std::path::PathBuf> {
    Ok(lock_dir()?.join(format!("ior-day-{}-{}.lock", c.chain_id, c.genesis)))
}

/// For tests only: a directory that stands in for this user's home
/// directory as the root of the lock directory ([`lock_home`]), so a test
/// suite does not write into the real home. A run with it set does not
/// see the locks of a run without it (and the other way round): never set
/// it for a real day.
const LOCK_HOME_ENV: &str = "GRIDLEDGER_TEST_LOCK_HOME";

/// The lock directory's place below [`lock_home`]; the components
/// `gridledger` and `locks` are this program's own.
const LOCK_SUBDIRS: [&str; 4] = [".local", "state", "gridledger", "locks"];

/// The home directory the lock directory lives in: this user's home as
/// the password database records it (`getpwuid`), never `$HOME`,
/// `$XDG_RUNTIME_DIR` or `$TMPDIR`, so two runs of one user on one host
/// find the same lock whatever their environment (an interactive shell,
/// cron, `su`, a service: attack r13 [1]); [`LOCK_HOME_ENV`] where that is
/// set (tests only; honouring it prints a warning on stderr).
#[cfg(unix)]
fn lock_home() -> anyhow::Result<std::path::PathBuf> {
    if let Some(h) = std::env::var_os(LOCK_HOME_ENV) {
        let h = std::path::PathBuf::from(h);
        anyhow::ensure!(h.is_absolute(), "{LOCK_HOME_ENV} {} is not an absolute path (nothing was sent)", h.display());
        // Never silent: a real day run with it set would not see the lock
        // of a run without it.
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            eprintln!(
                "warning: {LOCK_HOME_ENV} is set: the day's lock is kept below {} instead of this user's home \
                 (for tests only; runs without it do not see this lock)",
                h.display()
            )
        });
        return Ok(h);
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    passwd_home(unsafe { libc::getuid() })
}

/// The home directory of user `uid` in the password database.
#[cfg(unix)]
fn passwd_home(uid: libc::uid_t) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero `passwd` is a valid value (null pointers and
        // zero ids); getpwuid_r fills it in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pw`, `found` and `buf` (of `buf.len()` bytes) are valid
        // for writes for the duration of the call.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        anyhow::ensure!(
            rc == 0 && !found.is_null() && !pw.pw_dir.is_null(),
            "user id {uid} has no home directory in the password database, where the day's lock of `ior day --rpc` \
             lives (nothing was sent)"
        );
        // SAFETY: on success `pw_dir` points to a NUL-terminated string in
        // `buf`, which lives until the end of this scope.
        let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
        let home = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
        anyhow::ensure!(
            home.is_absolute(),
            "the home directory of user id {uid} in the password database, {:?}, is not an absolute path (nothing \
             was sent)",
            home
        );
        return Ok(home);
    }
}

/// This user's directory for the locks of `ior day --rpc` runs:
/// `.local/state/gridledger/locks` in [`lock_home`], each missing
/// component created with mode 0700. Every component below the home is
/// checked, created or found: it must be a directory, not a symbolic link
/// (a link is never followed), and this user's; `gridledger` and `locks`
/// must also have mode 0700. Anything else is refused before anything is
/// sent. No directory others can write (`/tmp`, a shared
/// `$XDG_RUNTIME_DIR`) is used, so another local user can neither point
/// the lock elsewhere nor take its name first (attack r13 [2], [3]).
#[cfg(unix)]
fn lock_dir() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let mut dir = lock_home()?;
    let m = std::fs::metadata(&dir).with_context(|| format!("reading the home directory {}", dir.display()))?;
    anyhow::ensure!(
        m.is_dir() && m.uid() == uid,
        "the home directory {} is not a directory of this user: the day's lock of `ior day --rpc` lives there \
         (nothing was sent)",
        dir.display()
    );
    for (i, part) in LOCK_SUBDIRS.iter().enumerate() {
        dir.push(part);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating the lock directory {}", dir.display())),
        }
        let m = std::fs::symlink_metadata(&dir).with_context(|| format!("reading {}", dir.display()))?;
        anyhow::ensure!(
            m.file_type().is_dir() && m.uid() == uid,
            "{} is a symbolic link, not a directory, or another user's: the day's lock of `ior day --rpc` is \
             taken below it, and it is not followed; remove it (nothing was sent)",
            dir.display()
        );
        anyhow::ensure!(
            i < 2 || m.mode() & 0o7777 == 0o700,
            "the lock directory {} has mode {:o}, not 700: `chmod 700` it (nothing was sent)",
            dir.display(),
            m.mode() & 0o7777
        );
    }
    Ok(dir)
}

#[cfg(not(unix))]
fn lock_dir() -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let dir = std::env::temp_dir().join("gridledger");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating the lock directory {}", dir.display()))?;
    Ok(dir)
}

/// Writes `j` to `path` whole: a temporary file, flushed to the disk,
/// renamed over it, and (on Unix) the directory flushed, so a crash or
/// power loss leaves the old journal or the new one, never a torn one.
fn write_journal(path: &std::path::Path, j: &DayJournal) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let tmp = beside(path, "tmp")?;
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(j)?).with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all().with_context(|| format!("flushing {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    // The rename itself is durable once the directory is flushed (a
    // directory can be opened and flushed so on Unix).
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("flushing the directory {}", dir.display()))?;
    }
    Ok(())
}

/// The settings that differ between two journal configurations, named.
fn config_diff(was: &serde_json::Value, now: &serde_json::Value) -> String {
    let short = |v: Option<&serde_json::Value>| {
        let s = v.map_or("(none)".to_string(), |v| v.to_string());
        if s.len() > 60 {
            format!("{}…", &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)])
        } else {
            s
        }
    };
    let keys: std::collections::BTreeSet<&String> =
        was.as_object().into_iter().chain(now.as_object()).flat_map(|m| m.keys()).collect();
    keys.into_iter()
        .filter(|k| was.get(k.as_str()) != now.get(k.as_str()))
        .map(|k| format!("{k}: {} then, {} now", short(was.get(k.as_str())), short(now.get(k.as_str()))))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `ior day --rpc` on a chain whose IOR contracts are already initialised:
/// resumes the day its journal describes when this run's configuration is
/// the same ([`gridledger_rollup::demo::resume_day`]), else refuses with
/// the reason (nothing sent). `None`: not `--rpc`, or a fresh chain (the
/// day runs as usual).
fn resume_rpc_day(a: &DayArgs, cfg: &DayConfig) -> anyhow::Result<Option<gridledger_rollup::demo::ResumeReport>> {
    use anyhow::Context;
    use gridledger_node::client::RpcChain;
    let (Some(rpc), Some(from)) = (&a.rpc, &a.from) else { return Ok(None) };
    let url = rpc.url.as_str();
    let view = serde_json::json!([gridledger_rollup::IOR_PRIMARY_ID, "config", ""]);
    if gridledger_node::RpcClient::new(url).call("gl_callView", view).is_err() {
        return Ok(None);
    }
    let used = format!("the IOR contracts of the chain at {url} (--rpc) were initialised by an earlier day");
    let Some(path) = journal_path(a) else {
        anyhow::bail!(
            "{used}, and --rpc names a URL without --journal, so no journal of that day is known: rerun with the \
             --journal it kept, or start a fresh chain (`gridledger init`) for a new day (nothing was sent)"
        );
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{used}, which left no journal at {}: a chain runs one day; start a fresh chain (`gridledger init`) \
             for this one (nothing was sent)",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let j: DayJournal = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if j.finished {
        anyhow::bail!(
            "{used}, which finished (journal {}): a chain runs one day; start a fresh chain (`gridledger init`) for \
             this one (nothing was sent)",
            path.display()
        );
    }
    let here = ChainName::of(url)?;
    anyhow::ensure!(
        j.chain().is(&here),
        "{used}, but the journal {} is of {} and the node at {url} serves {here}: give the journal of this chain \
         (--journal) (nothing was sent)",
        path.display(),
        j.chain(),
    );
    let want = journal_config(cfg)?;
    if j.config != want {
        anyhow::bail!(
            "{used} with another configuration ({}): rerun the day with the options it was started with to resume \
             it (journal {}), or start a fresh chain (`gridledger init`) for this one (nothing was sent)",
            config_diff(&j.config, &want),
            path.display()
        );
    }
    // The same day, stopped part way: resume it.
    let funder = crate::ops::read_key_with(from, &a.password).with_context(|| format!("--from {}", from.display()))?;
    let secondary = a.secondary_rpc.as_deref().unwrap_or(url);
    let mut prices = Vec::new();
    for u in [url, secondary] {
        let info = crate::endpoint::connect(u)?.call("gl_chainInfo", serde_json::json!([]))?;
        prices.push(crate::ops::checked_gas_price(a.gas_price, &info, u)?);
    }
    if !a.json {
        eprintln!("resuming the day this chain's journal ({}) describes", path.display());
    }
    let slot_starts: std::collections::BTreeMap<u64, usize> = j.slot_starts.iter().map(|&(k, t)| (t, k)).collect();
    let attach = |mut dcfg: gridledger_rollup::driver::DriverConfig| {
        use gridledger_rollup::demo::DemoError;
        let connect =
            |u: &str| RpcChain::connect(u).map_err(|e| DemoError::Config(format!("no gridledger node at {u}: {e}")));
        let (primary, second) = (connect(url)?, connect(secondary)?);
        let limit = primary.max_tx_bytes().min(second.max_tx_bytes());
        dcfg.params.max_batch = batch_bound(limit, dcfg.params.max_batch);
        // Gas for the settling calls (the traders' IOR funding is in the
        // contract already).
        fund_day(url, &funder, prices[0], &day_needs(&dcfg, 0, true))?;
        if secondary != url {
            fund_day(secondary, &funder, prices[1], &day_needs(&dcfg, 0, false))?;
        }
        Ok(gridledger_rollup::driver::DualChain::attach(primary, second, dcfg)?)
    };
    let nodes = std::cell::Cell::new((0, 0));
    let attach = |dcfg: gridledger_rollup::driver::DriverConfig| {
        nodes.set((dcfg.participants, dcfg.accounts()?));
        attach(dcfg)
    };
    let mut gas = |needs: &[(usize, u128)]| top_up_gas(url, secondary, &funder, &prices, needs, nodes.get());
    let r = gridledger_rollup::demo::resume_day(cfg, &slot_starts, attach, &mut gas)
        .with_context(|| format!("resuming the IOR day on the node at {url} (--rpc)"))?;
    write_journal(&path, &DayJournal { finished: r.open_agreements == 0 && r.batches.0 <= r.batches.1, ..j })?;
    Ok(Some(r))
}

/// Prints what a resumed day did.
fn print_resumed(a: &DayArgs, r: &gridledger_rollup::demo::ResumeReport) -> anyhow::Result<()> {
    if r.expired > 0 {
        eprintln!(
            "warning: {} agreement(s) were expired: the day was resumed after their ST deadline (DL + expiry), \
             so their sellers lost their deposit D_s and reputation whether or not they delivered; the statements \
             show the penalties (paid) and the buyers' compensation (received)",
            r.expired
        );
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("resumed the IOR day on {}", primary_label(a));
    println!("  batches settled now:     {}", r.batches_settled);
    println!("  agreements settled now:  {}", r.agreements_settled);
    for (o, n) in &r.outcomes {
        println!("    {n} × {o}");
    }
    println!("  batches settled / recorded: {} / {}", r.batches.1, r.batches.0);
    println!("  agreements still open:   {}", r.open_agreements);
    println!("  IOR balances (coin):     {}", coins_string(r.ior_total_end));
    Ok(())
}

/// `ior day --rpc`: the day over running nodes through [`RpcChain`]
/// (primary at `url`, secondary at `secondary`), the day's accounts funded
/// from `from` first; batches bounded by the node's `max_tx_bytes`.
///
/// [`RpcChain`]: gridledger_node::client::RpcChain
#[allow(clippy::too_many_arguments)]
fn rpc_day(
    url: &str,
    secondary: &str,
    from: &std::path::Path,
    password: &crate::ops::PasswordArgs,
    gas_price: Option<u128>,
    cfg: DayConfig,
    json: bool,
    journal: Option<&std::path::Path>,
) -> anyhow::Result<gridledger_rollup::demo::DayReport> {
    use anyhow::Context;
    use gridledger_node::client::RpcChain;
    use gridledger_rollup::demo::DemoError;
    let funder = crate::ops::read_key_with(from, password).with_context(|| format!("--from {}", from.display()))?;
    let mut prices = Vec::new();
    let mut min_prices = Vec::new();
    for u in [url, secondary] {
        let info = crate::endpoint::connect(u)?.call("gl_chainInfo", serde_json::json!([]))?;
        prices.push(crate::ops::checked_gas_price(gas_price, &info, u)?);
        min_prices.push(crate::ops::node_min_gas_price(&info));
    }
    let (price, secondary_price) = (prices[0], prices[1]);
    // The IOR driver signs the day's contract calls at gas price 1: a node
    // that refuses that would take the funding and then refuse the day.
    for (u, info_min) in [url, secondary].iter().zip(min_prices.iter()) {
        if let Some(min) = info_min.filter(|m| *m > 1) {
            anyhow::bail!(
                "the node at {u} has a minimum gas price of {min}, and `ior day` signs the day's contract calls at \
                 gas price 1: run the day on a chain whose node.toml has min_gas_price = 1 (the default); nothing sent"
            );
        }
    }
    // The driver initialises the IOR contracts, which a chain allows once:
    // refuse a used chain before anything is sent.
    let view = serde_json::json!([gridledger_rollup::IOR_PRIMARY_ID, "config", ""]);
    anyhow::ensure!(
        gridledger_node::RpcClient::new(url).call("gl_callView", view).is_err(),
        "the IOR contracts of the chain at {url} (--rpc) were initialised by an earlier day, and a chain runs one \
         day: start a fresh chain (`gridledger init`) for this one (nothing was sent)"
    );
    // The journal a rerun resumes from, written before anything is sent.
    let mut record = match journal {
        Some(path) => {
            let here = ChainName::of(url)?;
            refuse_other_chains_day(path, &here)?;
            let j = DayJournal {
                chain_id: here.chain_id,
                genesis: Some(here.genesis),
                config: journal_config(&cfg)?,
                slot_starts: vec![],
                finished: false,
            };
            write_journal(path, &j)?;
            Some((path, j))
        }
        None => {
            if !json {
                eprintln!("note: --rpc names a URL and no --journal was given: a stopped run cannot be resumed");
            }
            None
        }
    };
    let funding = cfg.funding_coins.saturating_mul(1_000_000);
    // Minutes of real time: a bar of the slots on a terminal.
    let (first, end) = cfg.slots;
    let mut progress = crate::progress::Steps::new("ior day", (end - first + 2) as u64, json);
    progress.step("funding the day's accounts, initialising the IOR contracts");
    // A slot's start the journal cannot record stops the day before the
    // slot sends anything (attack r11 [5]): the journal then names every
    // slot whose agreements may be open, and a rerun settles them all.
    let mut on_slot = |k: usize, t0: u64| {
        if let Some((path, j)) = record.as_mut() {
            j.slot_starts.push((k, t0));
            if let Err(e) = write_journal(path, j) {
                j.slot_starts.pop();
                return Err(DemoError::Config(format!(
                    "the day's journal could not record the start of slot {k} ({e:#}); the day stops before \
                     sending anything of it: rerun the same command once the journal can be written, to settle \
                     what was sent"
                )));
            }
        }
        let (h, m) = (k / 2, if k.is_multiple_of(2) { "00" } else { "30" });
        progress.step(&if k < end { format!("slot {k} ({h}:{m})") } else { "settling the last slot".into() });
        Ok(())
    };
    let nodes = std::cell::Cell::new((0, 0));
    let prices = [price, secondary_price];
    let mut gas = |needs: &[(usize, u128)]| top_up_gas(url, secondary, &funder, &prices, needs, nodes.get());
    let open = |mut dcfg: gridledger_rollup::driver::DriverConfig| {
        nodes.set((dcfg.participants, dcfg.accounts()?));
        let connect =
            |u: &str| RpcChain::connect(u).map_err(|e| DemoError::Config(format!("no gridledger node at {u}: {e}")));
        let (primary, second) = (connect(url)?, connect(secondary)?);
        let limit = primary.max_tx_bytes().min(second.max_tx_bytes());
        dcfg.params.max_batch = batch_bound(limit, dcfg.params.max_batch);
        fund_day(url, &funder, price, &day_needs(&dcfg, funding, true))?;
        if secondary != url {
            fund_day(secondary, &funder, secondary_price, &day_needs(&dcfg, funding, false))?;
        }
        Ok(gridledger_rollup::driver::DualChain::on_chains(primary, second, dcfg)?)
    };
    let r = gridledger_rollup::demo::run_day_with_progress(cfg, open, &mut on_slot, &mut gas);
    drop(progress);
    // A day that stopped (a refused record, agreements left open, a lost
    // node) is not marked finished: the same command resumes it.
    let resumable = record.as_ref().map_or(String::new(), |(path, _)| {
        format!("; the journal {} is not marked finished: run the same command again to resume the day", path.display())
    });
    let r = r.with_context(|| format!("IOR day on the node at {url} (--rpc){resumable}"))?;
    if let Some((path, j)) = record {
        write_journal(path, &DayJournal { finished: true, ..j })?;
    }
    Ok(r)
}

pub(crate) fn print_day(a: &DayArgs, r: &gridledger_rollup::demo::DayReport) -> anyhow::Result<()> {
    if a.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let t = &r.thesis;
    let primary = primary_label(a);
    println!(
        "P2P energy trading day (thesis §3.5.4), day {} of the year, seed {}; primary chain: {primary}",
        r.config.day, r.config.seed
    );
    println!("  weather: {}", r.weather);
    println!("  loads:   {}", r.loads);
    println!("{:<28} {:>14} {:>14}", "", "gridledger", "thesis");
    println!("{:<28} {:>14} {:>14}", "trades", r.trades_count, t.trades);
    println!("{:<28} {:>14} {:>14}", "settled trades", r.settled_trades, "-");
    println!(
        "{:<28} {:>14} {:>14}",
        "physical bound (kWh)",
        format!("{} ({})", kwh(r.bound_wh), share(r.energy_traded_wh, r.bound_wh)),
        "-"
    );
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

/// Thesis Fig 3-5 on PBFT: for each validator count, the time to record
/// `n` concurrently submitted ATs on the IOR primary chain (`SC_DS_AT`)
/// against executing them on the single chain (`SC_EXE_AT` on every node).
fn fig_3_5(
    nodes: &[usize],
    n: usize,
    sellers: usize,
    progress: &mut crate::progress::Steps,
) -> anyhow::Result<serde_json::Value> {
    use gridledger_experiments::exps::ior_fig_3_5::{run_validators, seed_seconds};
    let sellers = sellers.clamp(1, n.max(1));
    let mut rows = Vec::new();
    for &v in nodes {
        progress.step(&format!("Fig 3-5 on {v} PBFT validators"));
        let (ior, base) = run_validators(v, n, sellers).map_err(anyhow::Error::msg)?;
        let thesis_s = seed_seconds(v).map_or(serde_json::Value::Null, |s| serde_json::json!(s));
        rows.push(serde_json::json!({
            "validators": v,
            "ior_record_ats_s": ior["record_ms"].as_u64().unwrap_or(0) as f64 / 1e3,
            "ior_recorded": ior["recorded"],
            "single_chain_execute_ats_s": base["sc_exe_at_ms"].as_u64().unwrap_or(0) as f64 / 1e3,
            "single_chain_ok": base["ats_ok"],
            "thesis_pbft_record_1000_s": thesis_s,
        }));
    }
    Ok(serde_json::json!({
        "mode": "in-process PBFT validators (one chain and store each, real encoded messages)",
        "transactions": n,
        "rows": rows,
    }))
}

#[cfg(all(test, unix))]
mod tests {
    /// Set in the child processes of
    /// [`the_default_lock_directory_ignores_the_environment`].
    const CHILD: &str = "GRIDLEDGER_LOCK_HOME_TEST_CHILD";

    /// Attack r13 [1]: without [`super::LOCK_HOME_ENV`] the lock directory's
    /// home is the password database's, the same whatever `HOME`,
    /// `XDG_RUNTIME_DIR` and `TMPDIR` say; only that variable moves it.
    /// Each environment is tried in a child process of this test binary
    /// (the tests beside this one share its environment), which prints
    /// [`super::lock_home`] and creates nothing.
    #[test]
    fn the_default_lock_directory_ignores_the_environment() {
        if std::env::var_os(CHILD).is_some() {
            println!("LOCK_HOME={}", super::lock_home().unwrap().display());
            return;
        }
        let home_in = |set: &[(&str, &str)], unset: &[&str]| {
            let mut c = std::process::Command::new(std::env::current_exe().unwrap());
            c.args(["--exact", "ior::tests::the_default_lock_directory_ignores_the_environment", "--nocapture"])
                .env(CHILD, "1")
                .env_remove(super::LOCK_HOME_ENV);
            for (k, v) in set {
                c.env(k, v);
            }
            for k in unset {
                c.env_remove(k);
            }
            let o = c.output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.lines().find_map(|l| l.strip_prefix("LOCK_HOME=").map(str::to_string)).expect("the child's lock home")
        };
        let plain = home_in(&[], &[]);
        let other = home_in(&[("HOME", "/elsewhere-a"), ("XDG_RUNTIME_DIR", "/run-b"), ("TMPDIR", "/tmp-c")], &[]);
        let none = home_in(&[], &["HOME", "XDG_RUNTIME_DIR", "TMPDIR"]);
        assert_eq!(plain, other, "HOME, XDG_RUNTIME_DIR or TMPDIR moved the lock directory");
        assert_eq!(plain, none, "unsetting HOME, XDG_RUNTIME_DIR and TMPDIR moved the lock directory");
        // SAFETY: getuid has no preconditions and cannot fail.
        let want = super::passwd_home(unsafe { libc::getuid() }).unwrap();
        assert_eq!(std::path::PathBuf::from(&plain), want);
        let moved = home_in(&[(super::LOCK_HOME_ENV, "/test-lock-home")], &[]);
        assert_eq!(moved, "/test-lock-home", "{} does not move the lock directory", super::LOCK_HOME_ENV);
    }

    /// Attack r13 [4]: a journal's lock and temporary file are named by
    /// its whole file name.
    #[test]
    fn a_journals_lock_and_temporary_file_keep_its_whole_name() {
        let p = std::path::Path::new;
        assert_eq!(super::beside(p("d/run.a"), "lock").unwrap(), p("d/run.a.lock"));
        assert_eq!(super::beside(p("d/run.b"), "lock").unwrap(), p("d/run.b.lock"));
        assert_eq!(super::beside(p("d/ior-day.json"), "lock").unwrap(), p("d/ior-day.json.lock"));
        assert_eq!(super::beside(p("d/ior-day.json"), "tmp").unwrap(), p("d/ior-day.json.tmp"));
        assert_eq!(super::beside(p("run"), "tmp").unwrap(), p("run.tmp"));
        assert!(super::beside(p("d/run.lock"), "lock").is_err());
        assert!(super::beside(p("d/run.tmp"), "lock").is_err());
    }
}
