//! `gridledger sim pbft` / `gridledger sim lbft`: long simulator sweeps of the primary chain's
//! PBFT, driving the real validator driver, chain and store (or, with
//! `--replica-only`, the bare replica with toy blocks, much faster), and
//! the mutation-sensitivity check (`--mutants`, in builds with the
//! `mutants` feature). Prints a summary (one JSON object with `--json`); a failing seed is printed
//! with the variable that replays it and the command exits non-zero.

use gridledger_consensus::pbft::sim::{self as pbft_sim, Scenario, Violation};
use gridledger_node::sim::{run_driver, DriverSimOptions};
use gridledger_sim::SeedPlan;
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum SimCmd {
    /// The primary chain's PBFT under network chaos, crashes between any two
    /// writes, failed writes and colluding Byzantine validators.
    Pbft(PbftArgs),
    /// The leaderless BFT (thesis Ch.4 P^ABC) under network chaos,
    /// crash-restarts and Byzantine replicas (silent, equivocating, bad
    /// shares, flipped votes, lying sync answers).
    Lbft(LbftArgs),
}

#[derive(clap::Args)]
pub struct LbftArgs {
    /// Seeds to run (from --first); GRIDLEDGER_SIM_SEED replays one.
    #[arg(long, default_value_t = 1_000)]
    pub seeds: u64,
    /// First seed of the sweep (seeds FIRST..FIRST+SEEDS).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Use the nodes' real scheme (Ed25519 multi-signature certificates,
    /// BLS12-381 threshold coin) instead of the simulator's hash stand-in
    /// (real signatures and pairings: slower per seed). The flag keeps its
    /// name from when certificates were BLS threshold signatures too.
    #[arg(long)]
    pub bls: bool,
    /// Replica counts to run every seed at (comma-separated, each
    /// 4 to 64, any n: quorums are n − f). Default: the
    /// seed draws n ∈ {4, 7}.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub replicas: Vec<usize>,
}

/// Largest `--replicas` of `sim lbft`: a run's messages grow as `n³`
/// (`n` agreements of `n²` votes an epoch), so a seed at 64 replicas
/// already takes about as long as thousands at 4.
pub const MAX_SIM_REPLICAS: usize = 64;

/// The replica counts `--replicas` names: each at least 4 (one fault
/// tolerated) and at most [`MAX_SIM_REPLICAS`], none twice.
fn replica_counts(given: &[usize]) -> anyhow::Result<Vec<usize>> {
    let mut seen = std::collections::BTreeSet::new();
    for &n in given {
        anyhow::ensure!(n >= 4, "--replicas {n}: LBFT needs n >= 4 (f = (n - 1) / 3 >= 1)");
        anyhow::ensure!(
            n <= MAX_SIM_REPLICAS,
            "--replicas {n}: at most {MAX_SIM_REPLICAS} in the simulator (a run costs about n³ messages an epoch)"
        );
        anyhow::ensure!(seen.insert(n), "--replicas names {n} twice");
    }
    Ok(given.to_vec())
}

#[derive(clap::Args)]
pub struct PbftArgs {
    /// Seeds to run (from --first); GRIDLEDGER_SIM_SEED replays one.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// First seed of the sweep (seeds FIRST..FIRST+SEEDS).
    #[arg(long, default_value_t = 0)]
    pub first: u64,
    /// Validators (n = 3f + 1 tolerates f Byzantine).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Heights every correct validator must reach.
    #[arg(long, default_value_t = 50)]
    pub min_height: u64,
    /// Simulate the bare replica with toy blocks instead of the real driver.
    #[arg(long)]
    pub replica_only: bool,
    /// Plant each known bug in turn and report which the sweep catches.
    #[arg(long)]
    pub mutants: bool,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: SimCmd) -> anyhow::Result<()> {
    match cmd {
        SimCmd::Pbft(a) => pbft(a),
        SimCmd::Lbft(a) => lbft(a),
    }
}

fn lbft(a: LbftArgs) -> anyhow::Result<()> {
    use gridledger_consensus::lbft::sim::{check, run, scenario, scenario_of_size, SchemeKind};
    let sizes = replica_counts(&a.replicas)?;
    let seeds = seed_range(a.first, a.seeds)?;
    let scheme = if a.bls { SchemeKind::Node } else { SchemeKind::Sim };
    // Every seed at each size named, or once at the size it draws.
    let plan: Vec<Option<usize>> =
        if sizes.is_empty() { vec![None] } else { sizes.iter().copied().map(Some).collect() };
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(seed_count(&seeds).saturating_mul(plan.len() as u64));
    let mut failures = Vec::new();
    let (mut faults, mut messages, mut epochs, mut runs) = (0usize, 0u64, 0u64, 0u64);
    for seed in seeds.clone() {
        for &size in &plan {
            let s = size.map_or_else(|| scenario(seed), |n| scenario_of_size(seed, n));
            let r = run(&s, scheme, None);
            runs += 1;
            match check(&s, &r) {
                Ok(()) => {
                    faults += r.faults;
                    messages += r.messages;
                    epochs += r.deliveries.values().map(|d| d.len() as u64).max().unwrap_or(0);
                }
                Err(e) => {
                    let e = format!(
                        "seed {seed} ({scheme:?}, n={}, byzantine {:?}, crashed {:?}): {e}",
                        s.n, s.byzantine, s.crashed
                    );
                    let replay = size.map_or(String::new(), |n| format!(" --replicas {n}"));
                    eprintln!("{e}; {}{replay}", SeedPlan::replay_hint(seed));
                    failures.push(e);
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let out = json!({
        "protocol": "lbft",
        "scheme": if a.bls { "ed25519-multisig-certificates+bls12-381-coin" } else { "sim-hash" },
        "replicas": if sizes.is_empty() { json!("drawn: 4 or 7") } else { json!(sizes) },
        "seeds": seed_count(&seeds),
        "runs": runs,
        "failures": failures.len(),
        "first_failure": failures.first(),
        "faults_reported": faults,
        "messages_delivered": messages,
        "epochs": epochs,
        "seconds": started.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    anyhow::ensure!(failures.is_empty(), "{} runs violated a property", failures.len());
    Ok(())
}

/// The seeds a sweep runs: `GRIDLEDGER_SIM_SEED` replays exactly one (a
/// value that is not a seed is refused, not ignored), otherwise `count`
/// seeds from `first`. A sweep of no seeds, or one past `u64::MAX`, is
/// refused: neither can pass for a sweep that ran.
fn seed_range(first: u64, count: u64) -> anyhow::Result<std::ops::RangeInclusive<u64>> {
    if let Some(v) = std::env::var_os("GRIDLEDGER_SIM_SEED") {
        let v = v.to_string_lossy();
        let seed = v
            .trim()
            .parse::<u64>()
            .map_err(|e| anyhow::anyhow!("GRIDLEDGER_SIM_SEED={v:?} is not a seed ({e}); unset it to run the sweep"))?;
        return Ok(seed..=seed);
    }
    anyhow::ensure!(count > 0, "--seeds 0 runs nothing; give at least 1");
    let last = first.checked_add(count - 1).ok_or_else(|| {
        anyhow::anyhow!("--first {first} --seeds {count} runs past the last seed ({}); lower --first", u64::MAX)
    })?;
    // A range, never a list: a sweep of 2^64 - 1 seeds holds two numbers.
    Ok(first..=last)
}

/// How many seeds `seeds` holds (at least 1, at most `u64::MAX`).
fn seed_count(seeds: &std::ops::RangeInclusive<u64>) -> u64 {
    seeds.end() - seeds.start() + 1
}

fn scenario(a: &PbftArgs, seed: u64) -> Scenario {
    let mut sc = Scenario::random(seed, a.validators);
    sc.min_height = a.min_height;
    sc
}

fn pbft(a: PbftArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.validators >= 4, "PBFT needs at least 4 validators to tolerate a Byzantine one");
    if a.mutants {
        return mutants(&a);
    }
    let started = std::time::Instant::now();
    let list = seed_range(a.first, a.seeds)?;
    let n = seed_count(&list);
    let bar = if a.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(n) };
    let mut failures: Vec<Violation> = Vec::new();
    let (mut faults, mut crashes, mut heights) = (0usize, 0u64, 0u64);
    for seed in list.clone() {
        let sc = scenario(&a, seed);
        let r = if a.replica_only { pbft_sim::run(&sc) } else { run_driver(&sc, &DriverSimOptions::default()) };
        match r {
            Ok(r) => {
                faults += r.faults.values().sum::<usize>();
                crashes += r.crashes;
                heights += r.heights.iter().max().copied().unwrap_or(0);
            }
            Err(v) => {
                eprintln!("seed {seed}: {v:?}; {}", SeedPlan::replay_hint(seed));
                failures.push(v);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let out = json!({
        "protocol": "pbft",
        "driver": if a.replica_only { "replica" } else { "validator-driver+store" },
        "validators": a.validators,
        "seeds": n,
        "failures": failures.len(),
        "first_failure": failures.first().map(|v| format!("{v:?}")),
        "faults_reported": faults,
        "crashes": crashes,
        "heights": heights,
        "seconds": started.elapsed().as_secs_f64(),
    });
    crate::ops::emit(a.json, &out, || {
        println!("PBFT simulator: {n} seed(s), {} validators, {}", a.validators, out["driver"].as_str().unwrap_or(""));
        println!("  failures          {}", failures.len());
        if let Some(f) = failures.first() {
            println!("  first failure     {f:?}");
        }
        println!("  heights           {heights} (highest height per seed, summed)");
        println!("  faults reported   {faults}");
        println!("  crashes           {crashes}");
        println!("  wall time         {:.1} s", started.elapsed().as_secs_f64());
    })?;
    anyhow::ensure!(failures.is_empty(), "{} seeds violated a property", failures.len());
    Ok(())
}

#[cfg(feature = "mutants")]
fn mutants(a: &PbftArgs) -> anyhow::Result<()> {
    use gridledger_node::validator::Mutation;
    let mut rows = Vec::new();
    let mut missed = 0;
    for m in Mutation::ALL {
        let caught = seed_range(a.first, a.seeds)?.find_map(|seed| {
            run_driver(&scenario(a, seed), &DriverSimOptions { mutation: Some(m), ..DriverSimOptions::default() }).err()
        });
        missed += usize::from(caught.is_none());
        rows.push(json!({ "mutation": format!("{m:?}"), "caught": caught.map(|v| format!("{v:?}")) }));
    }
    let out = json!({ "mutants": rows });
    crate::ops::emit(a.json, &out, || {
        for r in &rows {
            let caught = r["caught"].as_str().map_or("NOT caught".to_string(), |v| format!("caught: {v}"));
            println!("{:<32} {caught}", r["mutation"].as_str().unwrap_or(""));
        }
    })?;
    anyhow::ensure!(missed == 0, "{missed} planted bugs were not caught");
    Ok(())
}

#[cfg(not(feature = "mutants"))]
fn mutants(_: &PbftArgs) -> anyhow::Result<()> {
    anyhow::bail!("this build has no planted bugs: rebuild with `--features mutants`")
}
