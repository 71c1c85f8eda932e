//! `gridledger bench …`: benchmarks that print JSON.

use clap::{Args, Subcommand};
use gridledger_core::crypto::{verify, KeyPair};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, ContractRegistry, SignedTransaction, VerifiedTx};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde_json::json;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Sustained signed-transfer throughput of one node: decode, verify,
    /// admit, execute, persist.
    Ledger(LedgerArgs),
    /// PBFT (thesis Figs 3-5, 3-6): time to commit a concurrent batch on
    /// every validator, and sustained throughput.
    Pbft(PbftArgs),
    /// The Improved Optimistic Rollup against a challenge-window rollup and
    /// a single chain (thesis Fig 3-5, 3-7, Tables 3-2 to 3-6).
    Ior(crate::ior::IorBenchArgs),
    /// Two-party state channel between two processes: co-signed updates per
    /// second, update latency, snapshot (fsync) cost, on-chain transactions
    /// and gas per channel lifetime against settling every trade on chain.
    Channel(crate::channel::BenchArgs),
    /// The leaderless BFT (thesis Ch.4) on loopback, one process per
    /// replica: delivered unique tx/s, submit→delivery latency, bytes per
    /// transaction.
    Lbft(crate::lbft_bench::LbftBenchArgs),
    /// One replica of `bench lbft` (spawned by it).
    #[command(hide = true)]
    LbftReplica(crate::lbft_bench::LbftReplicaArgs),
    /// The blockchain of blockchains (thesis Ch.5): SC_MPV Merkle proofs per
    /// second on one core, one CCTE's wall time, 2f+1 threshold combine.
    Xchain(crate::xchain::BenchArgs),
    /// Store commits per second with redb's 1-phase commit (the default)
    /// and with 2-phase commit (a second fsync per commit).
    Store(StoreArgs),
}

#[derive(Args)]
pub struct StoreArgs {
    /// Commits per mode.
    #[arg(long, default_value_t = 200)]
    pub commits: usize,
    /// Bytes written per commit.
    #[arg(long, default_value_t = 4_096)]
    pub bytes: usize,
    /// Directory to put the databases in (its file system is what is
    /// measured; a tmpfs makes every fsync free). Default: the current one.
    #[arg(long, default_value = ".")]
    pub dir: std::path::PathBuf,
}

#[derive(Args)]
pub struct PbftArgs {
    /// Validators.
    #[arg(long, default_value_t = 10)]
    pub validators: usize,
    /// Transactions submitted concurrently for the latency run.
    #[arg(long, default_value_t = 1_000)]
    pub txs: usize,
    /// Transactions for the sustained-throughput run (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub sustained: usize,
    /// Concurrent submitting clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Run each validator as its own OS process over real authenticated
    /// links on loopback (default: all validators in this process).
    #[arg(long)]
    pub processes: bool,
    /// Validators killed (the last ones, `kill -9`) before any load, to
    /// measure liveness with validators down (needs `--processes`).
    #[arg(long, default_value_t = 0)]
    pub down: usize,
    /// The validators' `pbft.suspect_divisor`: a leader whose view was
    /// abandoned gets the view deadline divided by this the next time it
    /// leads (1 turns the dead-leader shortcut off).
    #[arg(long, default_value_t = 4)]
    pub suspect_divisor: u64,
    /// Heights one after another: the validators' `pbft.pipeline = false`
    /// (by default the next height's leader proposes while the previous
    /// height is still in its commit round), for before/after comparisons.
    #[arg(long)]
    pub no_pipeline: bool,
    /// Record each validator's events (`GRIDLEDGER_TIMELINE`) and add the
    /// latency batch's timeline to the output: per height its proposal
    /// (size, leader), pre-prepare arrival, validation, prepared sync and
    /// commit on every validator; per validator its gossip verification
    /// (needs `--processes`).
    #[arg(long)]
    pub timeline: bool,
    /// Directory for the validators' data (its file system's fsync is part
    /// of what is measured; a tmpfs such as /dev/shm takes the disk out, to
    /// see what the protocol and the CPUs cost alone). Default: the
    /// system's temporary directory.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
}

/// The validators under test: in this process, or as child processes.
enum BenchCluster {
    Local(Box<gridledger_node::cluster::LocalCluster>),
    Procs { children: Vec<std::process::Child>, urls: Vec<String>, timelines: Vec<std::path::PathBuf> },
}

/// A run of `n` consecutive free loopback ports.
fn free_port_range(n: u16) -> anyhow::Result<u16> {
    let mut rng = rand::rng();
    for _ in 0..500 {
        let base: u16 = rng.random_range(20_000..60_000);
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    anyhow::bail!("no free range of {n} ports on 127.0.0.1")
}

impl BenchCluster {
    fn start(
        dir: &std::path::Path,
        n: usize,
        accounts: usize,
        processes: bool,
        (divisor, pipeline): (u64, bool),
        timeline: bool,
    ) -> anyhow::Result<Self> {
        let balance = Amount(1_000_000_000_000);
        let settings =
            gridledger_node::validator::PbftSettings { suspect_divisor: divisor, pipeline, ..Default::default() };
        if !processes {
            return Ok(Self::Local(Box::new(gridledger_node::cluster::LocalCluster::start(
                dir, n, accounts, balance, settings,
            )?)));
        }
        let validators: Vec<KeyPair> = (0..n).map(dev_validator).collect();
        let genesis = dev_genesis(1, accounts, balance, &validators);
        let base = free_port_range(2 * n as u16)?;
        let configs = crate::ops::write_network(dir, &genesis, &validators, "127.0.0.1", base, base + n as u16)?;
        for c in &configs {
            let mut cfg = gridledger_node::NodeConfig::parse(&std::fs::read_to_string(c)?)?;
            cfg.pbft = settings.clone();
            std::fs::write(c, toml::to_string_pretty(&cfg)?)?;
        }
        let exe = std::env::current_exe()?;
        let mut children = Vec::new();
        let mut timelines = Vec::new();
        for c in &configs {
            let log = std::fs::File::create(c.with_file_name("node.log"))?;
            let mut cmd = std::process::Command::new(&exe);
            cmd.args(["node", "--config"]).arg(c).env("RUST_LOG", "warn");
            if timeline {
                let path = c.with_file_name("timeline.jsonl");
                cmd.env(gridledger_node::timeline::ENV, &path);
                timelines.push(path);
            }
            children.push(cmd.stdout(std::process::Stdio::null()).stderr(log).spawn()?);
        }
        let urls: Vec<String> = (0..n).map(|i| format!("http://127.0.0.1:{}", base as usize + i)).collect();
        let cluster = Self::Procs { children, urls, timelines };
        for u in cluster.urls() {
            let c = gridledger_node::RpcClient::new(&u);
            let t = Instant::now();
            while c.get_text("/health").is_err() {
                anyhow::ensure!(t.elapsed() < Duration::from_secs(60), "validator at {u} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(cluster)
    }

    /// Kills the last `k` validator processes (`kill -9`); the rest keep serving.
    fn kill_last(&mut self, k: usize) -> anyhow::Result<()> {
        let Self::Procs { children, urls, .. } = self else {
            anyhow::bail!("--down needs --processes");
        };
        anyhow::ensure!(k < children.len(), "--down {k} leaves no validator running");
        for _ in 0..k {
            if let (Some(mut c), Some(_)) = (children.pop(), urls.pop()) {
                c.kill()?;
                c.wait()?;
            }
        }
        Ok(())
    }

    fn urls(&self) -> Vec<String> {
        match self {
            Self::Local(c) => c.running().iter().filter_map(|&i| c.node(i)).map(|n| n.url()).collect(),
            Self::Procs { urls, .. } => urls.clone(),
        }
    }

    /// Waits until every validator has committed `hashes`. Validator
    /// processes are watched through their committed-transaction counter
    /// (`/metrics`: cheap, and the benchmark's transactions are the only
    /// ones) until it reaches `total`, the transactions submitted so far;
    /// only then are the hashes' receipts checked, outside the timed
    /// window (asking 500 receipts per poll cost the validators more CPU
    /// than the transactions under test, and added up to a second to the
    /// measured time).
    fn wait_committed(&self, hashes: &[Hash32], total: u64, within: Duration) -> anyhow::Result<()> {
        match self {
            Self::Local(c) => c.wait_committed(&c.running(), hashes, within).map(|_| ()),
            Self::Procs { urls, .. } => {
                let t = Instant::now();
                for u in urls {
                    let c = gridledger_node::RpcClient::new(u);
                    while committed_total(&c) < total {
                        anyhow::ensure!(t.elapsed() < within, "not committed within {within:?} at {u}");
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                Ok(())
            }
        }
    }

    /// Checks (untimed) that every validator holds a receipt for each of `hashes`.
    fn check_committed(&self, hashes: &[Hash32]) -> anyhow::Result<()> {
        for u in self.urls() {
            let n = gridledger_node::RpcClient::new(&u).committed_count(hashes)?;
            anyhow::ensure!(n == hashes.len(), "{u} holds receipts for {n} of {} transactions", hashes.len());
        }
        Ok(())
    }

    /// Process ids of the running validator processes (none in-process).
    fn pids(&self) -> Vec<u32> {
        match self {
            Self::Local(_) => Vec::new(),
            Self::Procs { children, .. } => children.iter().map(|c| c.id()).collect(),
        }
    }

    fn height(&self) -> u64 {
        match self {
            Self::Local(c) => c.height(0).unwrap_or(0),
            Self::Procs { urls, .. } => gridledger_node::RpcClient::new(&urls[0]).height().unwrap_or(0),
        }
    }
}

/// A validator's `gridledger_txs_committed_total` (0 if unreadable).
fn committed_total(c: &gridledger_node::RpcClient) -> u64 {
    let text = c.get_text("/metrics").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("gridledger_txs_committed_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Stops child processes on success and on error alike (in-process
/// validators stop when their handles drop).
impl Drop for BenchCluster {
    fn drop(&mut self) {
        if let Self::Procs { children, .. } = self {
            for c in children {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

#[derive(Args)]
pub struct LedgerArgs {
    /// Transfers to push through.
    #[arg(long, default_value_t = 60_000)]
    pub txs: usize,
    /// Distinct sending accounts.
    #[arg(long, default_value_t = 4_000)]
    pub accounts: usize,
    /// Transactions per block (thesis §3.5.1: 300).
    #[arg(long, default_value_t = 300)]
    pub block_txs: usize,
    /// Most blocks persisted per fsync when there is a backlog (1 = no group commit).
    #[arg(long, default_value_t = 16)]
    pub group: usize,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
}

/// Runs a benchmark. `ior` and `pbft` (≈ 76 s and ≈ 17 s by default) show
/// a bar of their steps on stderr; `ledger` and `channel` one step (see
/// [`crate::progress`]: only on a terminal, never under --json).
pub fn run(c: BenchCmd) -> anyhow::Result<()> {
    match c {
        BenchCmd::Ledger(a) => {
            let mut p = crate::progress::Steps::new("bench ledger", 1, a.json);
            p.step(&format!("{} transfers", a.txs));
            ledger(a, p)
        }
        BenchCmd::Pbft(a) => pbft(a),
        BenchCmd::Ior(a) => crate::ior::bench(a),
        BenchCmd::Channel(a) => {
            let mut p = crate::progress::Steps::new("bench channel", 1, a.json);
            p.step(&format!("{} updates per run", a.updates));
            crate::channel::bench(a, p)
        }
        BenchCmd::Lbft(a) => crate::lbft_bench::bench(a),
        BenchCmd::LbftReplica(a) => crate::lbft_bench::replica(a),
        BenchCmd::Xchain(a) => crate::xchain::bench(a),
        BenchCmd::Store(a) => store(a),
    }
}

/// Durable commits per second of one `bytes`-sized record each, 1-phase
/// then 2-phase, on fresh databases in `dir`.
fn store(a: StoreArgs) -> anyhow::Result<()> {
    use gridledger_ledger::store::Store;
    anyhow::ensure!(a.commits > 0, "--commits must be positive");
    let dir = tempfile::tempdir_in(&a.dir)?;
    let fsync_ms = fsync_latency_ms(dir.path())?;
    let value = vec![0x5au8; a.bytes];
    let mut rows = Vec::new();
    for two_phase in [false, true] {
        let path = dir.path().join(if two_phase { "2pc.redb" } else { "1pc.redb" });
        let store = Store::open(&path)?.with_two_phase_commit(two_phase);
        let t = Instant::now();
        for i in 0..a.commits {
            store.put_aux(&format!("bench/{i}"), &value)?;
        }
        let secs = t.elapsed().as_secs_f64();
        rows.push(json!({
            "two_phase_commit": two_phase,
            "commits_per_s": a.commits as f64 / secs,
            "ms_per_commit": secs * 1e3 / a.commits as f64,
        }));
    }
    let out = json!({
        "bench": "store",
        "commits": a.commits,
        "bytes_per_commit": a.bytes,
        "fsync_4k_ms": fsync_ms,
        "modes": rows,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Signature verifications per second on one core and on all cores.
fn verify_limits() -> (f64, f64) {
    let keys: Vec<KeyPair> = (0..256).map(|i| KeyPair::from_seed(&format!("v{i}"))).collect();
    let items: Vec<(KeyPair, Hash32, gridledger_core::Signature)> = (0..8_192u32)
        .map(|i| {
            let k = keys[i as usize % keys.len()].clone();
            let d = gridledger_core::codec::hash_bytes(gridledger_core::Tag::TX, &i.to_le_bytes());
            let s = k.sign(&d);
            (k, d, s)
        })
        .collect();
    let t = Instant::now();
    let ok = items.iter().filter(|(k, d, s)| verify(&k.public(), d, s).is_ok()).count();
    let single = ok as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ok: usize =
        (0..4).map(|_| items.par_iter().filter(|(k, d, s)| verify(&k.public(), d, s).is_ok()).count()).sum();
    let all = ok as f64 / t.elapsed().as_secs_f64();
    (single, all)
}

/// Mean latency of a 4 KiB write plus fsync in the data directory: the
/// floor under any durable commit.
fn fsync_latency_ms(dir: &std::path::Path) -> anyhow::Result<f64> {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("fsync-probe"))?;
    let t = Instant::now();
    for _ in 0..20 {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e3 / 20.0)
}

/// The ledger benchmark; `progress` is cleared before the result is printed.
fn ledger(a: LedgerArgs, progress: crate::progress::Steps) -> anyhow::Result<()> {
    anyhow::ensure!(a.accounts > 0 && a.txs > 0 && a.block_txs > 0, "all sizes must be positive");
    let dir = tempfile::tempdir()?;
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, a.accounts, Amount(1_000_000_000_000), std::slice::from_ref(&validator));
    let config = ChainConfig {
        max_block_txs: a.block_txs,
        max_blocks_per_commit: a.group,
        mempool_capacity: a.txs + 1,
        mempool_per_sender: a.txs / a.accounts + 2,
        ..ChainConfig::default()
    };
    let mut chain = Chain::open(dir.path(), genesis, ContractRegistry::new(), config)?;
    let rules = chain.rules();

    // Pre-sign the load (not measured): wire bytes, as a node receives them.
    let keys: Vec<KeyPair> = (0..a.accounts).into_par_iter().map(dev_key).collect();
    let load: Vec<Vec<u8>> = (0..a.txs)
        .into_par_iter()
        .map(|j| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(j as u64);
            let from = j % a.accounts;
            let to = keys[rng.random_range(0..a.accounts)].address();
            transfer(&keys[from], 1, (j / a.accounts) as u64, to, Amount(rng.random_range(1..1_000)), Amount(1))
                .to_bytes()
        })
        .collect();

    let (single, all) = verify_limits();
    let fsync_ms = fsync_latency_ms(dir.path())?;

    // Verification on the rayon pool, pipelined with execution and commit on this thread.
    let (tx, rx) = mpsc::sync_channel::<Vec<Result<VerifiedTx, gridledger_ledger::SubmitError>>>(8);
    let start = Instant::now();
    let verifier = {
        let rules = rules.clone();
        std::thread::spawn(move || {
            for chunk in load.chunks(2_048) {
                let v: Vec<_> = chunk.par_iter().map(|b| rules.check(b)).collect();
                if tx.send(v).is_err() {
                    break;
                }
            }
        })
    };
    // Group commit: with a backlog of full blocks, up to `group` blocks are
    // built and persisted with one fsync; a block's commit latency is the
    // time from its group's start until the group is durable.
    let mut batch_ms = Vec::new();
    let mut admit_t = Duration::ZERO;
    let (mut committed, mut rejected, mut blocks, mut gas) = (0usize, 0usize, 0usize, 0u64);
    let mut now = 1_000u64;
    let mut produce = |chain: &mut Chain, max: usize| -> anyhow::Result<usize> {
        let t0 = Instant::now();
        let done = chain.produce_blocks(&validator, now, max)?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        now += done.len() as u64;
        let mut n = 0;
        for c in &done {
            n += c.block.txs.len();
            gas += c.block.header.gas_used;
            batch_ms.push(ms);
        }
        blocks += done.len();
        Ok(n)
    };
    for batch in rx {
        let t = Instant::now();
        for v in batch {
            if v.and_then(|v| chain.admit(v)).is_err() {
                rejected += 1;
            }
        }
        admit_t += t.elapsed();
        let full = chain.mempool().len() / a.block_txs;
        if full > 0 {
            committed += produce(&mut chain, full.min(a.group))?;
        }
    }
    while !chain.mempool().is_empty() {
        let n = produce(&mut chain, a.group)?;
        if n == 0 {
            break;
        }
        committed += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = verifier.join();
    let mut sorted = batch_ms.clone();
    sorted.sort_by(|x, y| x.total_cmp(y));
    let out = json!({
        "bench": "ledger",
        "transfers": a.txs,
        "accounts": a.accounts,
        "block_txs": a.block_txs,
        "committed": committed,
        "rejected": rejected,
        "blocks": blocks,
        "gas_used": gas,
        "elapsed_s": elapsed,
        "tx_per_s": committed as f64 / elapsed,
        "target_tx_per_s": 20_000,
        "block_commit_ms": {
            "p50": percentile(&sorted, 0.5),
            "p99": percentile(&sorted, 0.99),
            "max": sorted.last().copied().unwrap_or(0.0),
        },
        "blocks_per_commit_max": a.group,
        "admit_s": admit_t.as_secs_f64(),
        "fsync_ms": fsync_ms,
        "limits": {
            "cores": rayon::current_num_threads(),
            "secp256k1_verify_per_s_one_core": single,
            "secp256k1_verify_per_s_all_cores": all,
        },
        "final_height": chain.tip().height,
        "state_root": chain.tip().state_root,
    });
    drop(progress);
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// Pre-signs `n` transfers among the first `accounts` development keys.
pub fn signed_transfers(n: usize, accounts: usize, first_nonce: &[u64], seed: u64) -> Vec<SignedTransaction> {
    let keys: Vec<KeyPair> = (0..accounts).map(dev_key).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|j| {
            let from = j % accounts;
            let to = keys[rng.random_range(0..accounts)].address();
            let nonce = first_nonce.get(from).copied().unwrap_or(0) + (j / accounts) as u64;
            transfer(&keys[from], 1, nonce, to, Amount(rng.random_range(1..1_000)), Amount(1))
        })
        .collect()
}

/// Submits `txs` through the validators' JSON-RPC APIs from `clients`
/// clients, each holding one connection to every validator and using them
/// all at once (one thread per client and validator). A sender's
/// transactions all go, in nonce order, to one validator (sender's address
/// byte mod validators), which gossips them on; senders are spread over
/// validators and clients. Returns the hashes.
///
/// (Until the timeline showed it, each client visited the validators one
/// after another, so submission took N sequential calls per client and
/// grew with the validator count: 1.05 s of the 1.43 s batch time with 10
/// validators, 2.71 of 3.05 s with 20.)
fn submit_concurrently(urls: &[String], txs: &[SignedTransaction], clients: usize) -> anyhow::Result<Vec<Hash32>> {
    let clients = clients.max(1);
    let mut lanes: Vec<Vec<Vec<SignedTransaction>>> = vec![vec![Vec::new(); urls.len()]; clients];
    for t in txs {
        let s = t.sender().0[0] as usize;
        lanes[s % clients][(s / clients) % urls.len()].push(t.clone());
    }
    let results: Vec<anyhow::Result<Vec<Hash32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter()
            .flat_map(|per_validator| per_validator.iter().enumerate())
            .filter(|(_, list)| !list.is_empty())
            .map(|(v, list)| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let client = gridledger_node::RpcClient::new(&urls[v]);
                    for batch in list.chunks(100) {
                        for r in client.send_many(batch)? {
                            out.push(r.map_err(|e| anyhow::anyhow!("refused: {e}"))?);
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("client panicked")))).collect()
    });
    let mut all = Vec::with_capacity(txs.len());
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// The highest-nonce transaction of each sender: a sender's transactions
/// commit in nonce order, so when these are committed, all are.
fn last_per_sender(txs: &[SignedTransaction]) -> Vec<Hash32> {
    let mut last: std::collections::HashMap<gridledger_core::Address, &SignedTransaction> = Default::default();
    for t in txs {
        let e = last.entry(t.sender()).or_insert(t);
        if t.tx.nonce > e.tx.nonce {
            *e = t;
        }
    }
    last.values().map(|t| t.hash()).collect()
}

fn pbft(a: PbftArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.validators >= 1 && a.txs > 0 && a.clients > 0, "sizes must be positive");
    anyhow::ensure!(!a.timeline || a.processes, "--timeline needs --processes");
    let accounts = 500usize;
    let dir = match &a.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let mut progress = crate::progress::Steps::new("bench pbft", if a.sustained > 0 { 6 } else { 4 }, a.json);
    progress.step(&format!("starting {} validators", a.validators));
    let mut cluster = BenchCluster::start(
        dir.path(),
        a.validators,
        accounts,
        a.processes,
        (a.suspect_divisor, !a.no_pipeline),
        a.timeline,
    )?;
    if a.down > 0 {
        cluster.kill_last(a.down)?;
    }
    let urls = cluster.urls();
    let keys: Vec<KeyPair> = (0..accounts).into_par_iter().map(dev_key).collect();
    // Transfer number `j` of the whole run comes from account `j % accounts`
    // with nonce `j / accounts`, so every account's nonces stay contiguous
    // whatever the batch size.
    let sign = |n: usize, start: usize| -> Vec<SignedTransaction> {
        (start..start + n)
            .into_par_iter()
            .map(|j| {
                let from = j % accounts;
                let to = keys[(j * 7 + 1) % accounts].address();
                transfer(&keys[from], 1, (j / accounts) as u64, to, Amount(1), Amount(1))
            })
            .collect()
    };
    // Latency: a batch submitted concurrently until committed on every validator.
    let batch = sign(a.txs, 0);
    progress.step(&format!("batch: submitting {} transactions", a.txs));
    let load_at_start = crate::pbft_timeline::load_average();
    let pids = cluster.pids();
    let cpu0 = crate::pbft_timeline::cpu_snapshot(&pids);
    let t = Instant::now();
    let t0_us = gridledger_node::timeline::now_us();
    submit_concurrently(&urls, &batch, a.clients)?;
    let submitted = t.elapsed();
    progress.step("batch: waiting until committed on every validator");
    let batch_last = last_per_sender(&batch);
    cluster.wait_committed(&batch_last, a.txs as u64, Duration::from_secs(300))?;
    let latency = t.elapsed();
    let t1_us = gridledger_node::timeline::now_us();
    let cpu1 = crate::pbft_timeline::cpu_snapshot(&pids);
    cluster.check_committed(&batch_last)?;
    let h1 = cluster.height();
    let running = pids.len();
    let mut cpu = json!({
        "what": "CPU µs per transaction per validator process, by thread (rayon's unnamed workers show as the process name); processes mode only",
        "batch": crate::pbft_timeline::cpu_per_tx(&cpu0, &cpu1, running, a.txs),
        "batch_busy": crate::pbft_timeline::utilisation(&cpu0, &cpu1, latency.as_secs_f64()),
    });

    let mut sustained = serde_json::Value::Null;
    let mut sustained_window = None;
    if a.sustained > 0 {
        let load = sign(a.sustained.div_ceil(accounts) * accounts, a.txs);
        progress.step(&format!("sustained: submitting {} transactions", load.len()));
        let t = Instant::now();
        let t2_us = gridledger_node::timeline::now_us();
        submit_concurrently(&urls, &load, a.clients)?;
        progress.step("sustained: waiting until committed on every validator");
        let load_last = last_per_sender(&load);
        cluster.wait_committed(&load_last, (a.txs + load.len()) as u64, Duration::from_secs(600))?;
        let el = t.elapsed().as_secs_f64();
        sustained_window = Some((t2_us, gridledger_node::timeline::now_us()));
        let cpu2 = crate::pbft_timeline::cpu_snapshot(&pids);
        cpu["sustained"] = crate::pbft_timeline::cpu_per_tx(&cpu1, &cpu2, running, load.len());
        cpu["sustained_busy"] = crate::pbft_timeline::utilisation(&cpu1, &cpu2, el);
        cluster.check_committed(&load_last)?;
        let blocks = cluster.height() - h1;
        sustained = json!({
            "transactions": load.len(),
            "elapsed_s": el,
            "tx_per_s": load.len() as f64 / el,
            "blocks": blocks,
            "blocks_per_s": blocks as f64 / el,
        });
    }
    // Where each validator's consensus threads spent their time (mean over
    // validators; `validate` runs on the validation thread, `gossip` on the
    // gossip verifier's).
    let mut breakdown = serde_json::Map::new();
    // Signatures each validator verified, by path (gossip, proposals): one
    // per transaction per validator is the floor.
    let mut signatures = serde_json::Map::new();
    for u in &urls {
        let text = gridledger_node::RpcClient::new(u).get_text("/metrics").unwrap_or_default();
        for line in text.lines().filter(|l| l.starts_with("gridledger_pbft_signatures_verified_total{")) {
            let path = line.split('"').nth(1).unwrap_or("?").to_string();
            let v = line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let e = signatures.entry(path).or_insert(json!(0));
            *e = json!(e.as_u64().unwrap_or(0) + v);
        }
        for line in text.lines().filter(|l| l.starts_with("gridledger_pbft_") && l.contains("_seconds_total ")) {
            let mut it = line.split_whitespace();
            if let (Some(name), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok())) {
                let key = name.trim_start_matches("gridledger_pbft_").trim_end_matches("_seconds_total").to_string();
                let e = breakdown.entry(key).or_insert(json!(0.0));
                *e = json!(e.as_f64().unwrap_or(0.0) + v / urls.len() as f64);
            }
        }
    }
    progress.step("measuring signature verification limits");
    let (single, all_cores) = verify_limits();
    // The floor under each of a height's (at most two) syncs, on the same disk.
    let fsync_ms = fsync_latency_ms(dir.path())?;
    drop(progress);
    let thesis_s = match a.validators {
        10 => json!(2.7),
        20 => json!(3.4),
        30 => json!(4.3),
        _ => serde_json::Value::Null,
    };
    let thesis_tps = match a.validators {
        5 => json!(804),
        10 => json!(706),
        _ => serde_json::Value::Null,
    };
    let tx_ceiling = all_cores / a.validators as f64;
    // The same time per committed transaction (µs): what each stage costs
    // a validator per transaction, beside a verify's cost on one core.
    let committed = (a.txs + sustained["transactions"].as_u64().unwrap_or(0) as usize).max(1) as f64;
    let per_tx: serde_json::Map<String, serde_json::Value> = breakdown
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|s| (k.clone(), json!(s * 1e6 / committed))))
        .chain([("one_signature_verify".to_string(), json!(1e6 / single))])
        .collect();
    let sustained_tps = sustained["tx_per_s"].as_f64();
    let checked: u64 = signatures.values().filter_map(|v| v.as_u64()).sum();
    let signatures = json!({
        "what": "transaction signatures verified, summed over validators, by path (client submissions not counted); per_gossiped_tx = total / (committed transactions x (validators - 1)), 1.0 = each validator verified each transaction it got from another validator once",
        "total": checked,
        "by_path": signatures,
        "per_gossiped_tx": if urls.len() > 1 {
            json!(checked as f64 / (committed * (urls.len() - 1) as f64))
        } else {
            serde_json::Value::Null
        },
    });
    let out = json!({
        "bench": "pbft",
        "command": std::iter::once("gridledger".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" "),
        "data_dir": dir.path().parent().map(|p| p.display().to_string()),
        "validators_down": a.down,
        "suspect_divisor": a.suspect_divisor,
        "pipeline": !a.no_pipeline,
        "mode": if a.processes {
            "processes (one OS process per validator, Noise-encrypted TCP on loopback)"
        } else {
            "in-process (one OS process, real encoded messages over channels, one chain and store per validator)"
        },
        "validators": a.validators,
        "batch": {
            "transactions": a.txs,
            "submit_s": submitted.as_secs_f64(),
            "committed_on_all_validators_s": latency.as_secs_f64(),
            "blocks": h1,
            "thesis_s": thesis_s,
            "target_s": if a.validators == 10 { json!(0.5) } else { serde_json::Value::Null },
        },
        "sustained": sustained,
        "load_average_1m_at_start": load_at_start,
        "cpu_us_per_tx_per_validator": if a.processes { cpu } else { serde_json::Value::Null },
        "consensus_thread_s_per_validator": breakdown,
        "signatures_verified": signatures,
        "consensus_thread_us_per_tx_per_validator": per_tx,
        "thesis_sustained_tx_per_s": thesis_tps,
        "limits": {
            "secp256k1_verify_per_s_all_cores": all_cores,
            "secp256k1_verify_per_s_one_core": single,
            "tx_per_s_if_every_validator_verifies_every_tx": tx_ceiling,
            "sustained_share_of_ceiling": sustained_tps.map(|t| t / tx_ceiling),
            "fsync_4k_ms": fsync_ms,
        },
    });
    let mut out = out;
    if let BenchCluster::Procs { timelines, .. } = &cluster {
        if a.timeline {
            out["timeline"] = crate::pbft_timeline::summarize(timelines, t0_us, t1_us);
            if let Some((from, to)) = sustained_window {
                out["timeline_sustained"] = crate::pbft_timeline::summarize(timelines, from, to);
            }
        }
    }
    drop(cluster);
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
