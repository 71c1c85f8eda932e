//! `gridledger bench lbft`: the leaderless BFT (thesis Ch.4, P^ABC) on
//! loopback, one OS process per replica over the authenticated `net`
//! links; batch certificates are `n − f` Ed25519 signed echoes, the
//! common coin a BLS12-381 threshold signature (`NodeCrypto`, as nodes run).
//!
//! Each replica hosts clients: every client keeps one transaction in flight
//! (π^τ's Rule-3: its delivery number counts its delivered transactions),
//! a 300-byte signed [`LbftTx`] that it sends to its τ recipients chosen by
//! the array function F^A over `n^v = DN_c ‖ PubK_c ‖ h^(e_c−1)` (§4.4.1;
//! the same recipients under every policy, so dissemination costs the
//! same). `--policy` selects the batching behind the txm traits:
//! `tbg` (π^τ, Algorithm 4.1, with TBG, Algorithm 4.2), `hsm` (hash-space
//! method), `random` (random selection) or `fifo` (the plain FIFO source).
//! `--flood RATE` adds Byzantine clients sending RATE tx/s (over all
//! replicas) of signed transactions that break π^τ's Rule-3 (a delivery
//! number far ahead): π^τ refuses them on arrival, the baselines only check
//! signatures and batch them (the TF attack of §4.3.4).
//!
//! Every replica verifies each transaction's signature once, on a verifier
//! thread beside its consensus loop: a client's transaction on arrival, a
//! peer's batch as its proposal (or a fetched or synced copy) arrives —
//! not when the epoch is decided — with verdicts cached by transaction
//! digest ([`VerdictCache`]), so delivery finds them ready and consensus
//! never waits on them (an epoch decided before its verdicts are back is
//! applied, in order, once they are). It measures submit→delivery
//! latency of its own clients' transactions; delivered unique transactions
//! count each honest `(client, delivery number)` once. The parent prints
//! one JSON object: delivered unique tx/s, p50/p99 latency, bytes sent per
//! delivered transaction (consensus and dissemination), flood delivered.
//!
//! Each replica persists its durable state (the bound on the epochs it
//! echoes or votes in, its proposals, delivered epochs with certificates
//! and batches) in an
//! append-only log, one checksummed and fsynced record per group of
//! steps, before those steps' messages leave: a persister thread does the
//! group commit (every round waiting goes into one record) and then sends,
//! so the consensus loop keeps handling messages while the disk syncs
//! (on a loaded 2-core machine one fsync took 25–70 ms, several per
//! epoch, and the loop used to wait for each). Messages that commit the
//! replica to nothing new (certificates, coin shares, fetches and their
//! answers, sync requests: `Replica::must_sync_before_sending`) do not
//! wait: they leave from the consensus loop at once, before the fsync in
//! flight (the simulator's deaths in the sync window check that a replica
//! killed between the two never says two things in one slot). `--pipeline K` lets a
//! replica propose up to `K` epochs ahead (overlapped epochs; off by
//! default, see the flag).
//! `--kill-restart I` kills replica `I` mid-run
//! and restarts it from that log; the run fails when the replica had
//! finished before the kill or restored no delivered epoch (nothing of a
//! recovery was tested).
//!
//! The replica writes once per epoch in the common case: the record of a
//! delivered epoch also raises the bound on the epochs it echoes and votes
//! in (`PersistOp::VotedIn`), so the next epoch's echoes and votes need no
//! record of their own, and with the FIFO source the next proposal joins
//! it. The report counts records by what they carry (`fsync_records`).
//! `--no-fsync` writes the same records without syncing them — not
//! crash-safe, never the default, labelled so in the report — to compare
//! with drivers that do not sync at all (the aleph-bft peer's).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use clap::Args;
use gridledger_consensus::lbft::txm::{
    array_function, hsm_space, nonce_value, Admitted, BatchPolicy, HsmBatcher, LbftTx, Outcome, PiTau, PiTauConfig,
    Placement, PolicySource, RandomBatcher, Rejection, TbgConfig, Theta,
};
use gridledger_consensus::lbft::{
    tx_id, Admission, Backlog, BatchSource, CertifiedBatch, Config, DeliveredEpoch, Delivery, Durable, FifoPolicy,
    IdHasher, IdMap, IdSet, Message, NodeCrypto, NodeShare, NodeSig, PersistOp, Refused, Replica, Step, Target, Tx,
    Txs,
};
use gridledger_core::bench_tx::{now_us, percentile_ms, TX_BYTES};
use gridledger_core::codec::{decode, encode, hash_bytes, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::ed25519::{verify_batch, EdItem, EdKeyPair, EdPublicKey, EdSignature};
use gridledger_core::Hash32;
use gridledger_threshold::{KeyShare, PublicKeySet};
use serde_json::json;

#[derive(Args, Clone)]
pub struct LbftBenchArgs {
    /// Replicas (any n ≥ 4; f = ⌊(n − 1) / 3⌋, quorums of n − f), one process each.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// Batch policy: `tbg` (π^τ + TBG), `hsm`, `random` or `fifo`
    /// (default `tbg`; `fifo` with --opaque).
    #[arg(long)]
    pub policy: Option<String>,
    /// Offered load of honest clients, transactions per second over all replicas.
    #[arg(long, default_value_t = 8_000)]
    pub rate: u64,
    /// Invalid transactions per second (over all replicas) from flooding clients.
    #[arg(long, default_value_t = 0)]
    pub flood: u64,
    /// τ: recipients per transaction (clamped to the replicas).
    #[arg(long, default_value_t = 3)]
    pub tau: u32,
    /// TBG's G: groups of buckets.
    #[arg(long, default_value_t = 1)]
    pub groups: u32,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Largest batch a replica proposes per epoch.
    #[arg(long, default_value_t = 4_000)]
    pub batch: usize,
    /// Unsigned transactions, no signature checks (`fifo` only): the
    /// ordering layer alone.
    #[arg(long)]
    pub opaque: bool,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
    /// Epochs a replica proposes ahead of the one being agreed on
    /// (overlapped epochs; `Config::pipeline`). Default 0: on a loaded
    /// 2-core machine one epoch ahead measured no better (opaque, 4,000
    /// offered: p50 817 ms with 1 vs 170 ms with 0; signed, 1,000
    /// offered: 480 vs 592 ms) — the replicas are CPU-bound, so a second
    /// epoch in flight adds work without shortening either, and a
    /// transaction cut into the early batch waits for both. With
    /// `tbg`/`hsm`/`random` the batch is tied to the local epoch's bucket
    /// set (TBG's 2κ-strided selection), which proposing ahead cuts short.
    #[arg(long, default_value_t = 0)]
    pub pipeline: u64,
    /// Kill this replica (SIGKILL) two seconds into the run, or later once
    /// its log holds a delivered epoch (at most 30 s in), and restart it a
    /// second later from its on-disk log; the report says whether every
    /// replica holds the same delivered sequence (the run fails when the
    /// replica had finished before the kill or restored nothing).
    #[arg(long)]
    pub kill_restart: Option<u32>,
    /// Comparison mode, NOT crash-safe: replicas write their log records
    /// but never fsync them, so a power loss can make a replica forget
    /// what it echoed, voted or delivered. Only for a side-by-side with a
    /// driver that does not sync (the aleph-bft peer's); the report says
    /// `"crash_safe": false`.
    #[arg(long)]
    pub no_fsync: bool,
    /// Comparison mode, crash-safe: replicas append each log record at the
    /// end of the file (each sync also committing the file's new size), as
    /// before the log wrote its records over zeros synced ahead of time;
    /// for measuring what the zeros ahead change (`records_over_zeros` is
    /// then 0).
    #[arg(long)]
    pub log_append: bool,
    /// Admission control at the edge: at most this many of a replica's
    /// clients' transactions in flight (submitted, not yet delivered);
    /// offered load beyond it is refused and counted (`refused` in the
    /// report) instead of queueing. Default: enough for the batch being
    /// agreed on and the next ones (`--batch` × (2 + `--pipeline`) ÷ τ per
    /// replica with `fifo`; `--batch` × (6 + `--pipeline`) ÷ τ with the
    /// bucketed policies, whose batches may take a transaction up to 2κ
    /// epochs later). `0`: no bound (the old behaviour: above capacity the
    /// backlog grows, clients re-send after 4 s, and delivered
    /// throughput collapses).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
}

/// One replica process (spawned by `bench lbft`).
#[derive(Args, Clone)]
pub struct LbftReplicaArgs {
    /// The replica's configuration file, written by `bench lbft`.
    #[arg(long)]
    pub config: PathBuf,
    /// Keep the replica's durable state in DIR/lbft.log (one fsynced
    /// record per step, written before the step's messages leave).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct ReplicaFile {
    index: u32,
    n: u32,
    ports: Vec<u16>,
    /// Every replica's Ed25519 echo public key (certificates).
    echo_keys: Vec<EdPublicKey>,
    coin_keys: Vec<u8>,
    /// This replica's Ed25519 echo key (its seed).
    echo_secret: [u8; 32],
    coin_share: Vec<u8>,
    rate: u64,
    flood: u64,
    seconds: u64,
    batch: u32,
    opaque: bool,
    policy: String,
    tau: u32,
    groups: u32,
    pipeline: u64,
    /// Sync each log record (`false` only with `--no-fsync`).
    fsync: bool,
    /// The edge's window of this replica's clients' transactions in
    /// flight (0: unbounded).
    max_in_flight: u64,
    /// Append log records at the end of the file, no zeros ahead
    /// (`--log-append`).
    log_append: bool,
}

/// What a benchmark transaction's request carries (padded so the encoded
/// [`LbftTx`] is [`TX_BYTES`] long). The size, the clock and the latency
/// quantiles are those of `gridledger_core::bench_tx`, the load the
/// aleph-bft peer orders; the transaction itself is π^τ's (§4.3.3: epoch,
/// client key, request, delivery number, next epoch, signature), which the
/// TBG/HSM/random policies need and `bench_tx::BenchTx` does not carry.
#[derive(BorshSerialize, BorshDeserialize)]
struct Request {
    submitted_us: u64,
    /// Home replica and client index there.
    home: u32,
    client: u32,
    honest: bool,
    pad: Vec<u8>,
}

/// What the bench's accounting reads of a delivered transaction (an
/// encoded [`LbftTx`] whose request is an encoded [`Request`]), read in
/// place: decoding the whole transaction and then its request allocated
/// and copied the request and its padding for every delivered
/// transaction, on the ordering thread. `parse` accepts exactly the
/// bytes that decode as both (same sizes, same bounds).
#[derive(Debug, PartialEq, Eq)]
struct TxHead {
    delivery_number: u64,
    next_epoch: u64,
    submitted_us: u64,
    home: u32,
    client: u32,
    honest: bool,
}

impl TxHead {
    fn parse(raw: &[u8]) -> Option<Self> {
        fn take<T: BorshDeserialize>(r: &mut &[u8]) -> Option<T> {
            T::deserialize(r).ok()
        }
        if raw.len() > 4_096 {
            return None;
        }
        // `LbftTx`: epoch (8) ‖ client key (32) ‖ request (u32 LE length ‖
        // bytes) ‖ delivery number (8) ‖ next epoch (8) ‖ signature (64).
        let mut r = raw.get(8 + 32..)?;
        let len = take::<u32>(&mut r)? as usize;
        let (mut req, mut r) = (r.get(..len)?, r.get(len..)?);
        let delivery_number = take::<u64>(&mut r)?;
        let next_epoch = take::<u64>(&mut r)?;
        if r.len() != 64 {
            return None;
        }
        // `Request`: submitted_us (8) ‖ home (4) ‖ client (4) ‖ honest (1,
        // 0 or 1) ‖ pad (u32 LE length ‖ bytes).
        let submitted_us = take::<u64>(&mut req)?;
        let home = take::<u32>(&mut req)?;
        let client = take::<u32>(&mut req)?;
        let honest = take::<bool>(&mut req)?;
        let pad = take::<u32>(&mut req)? as usize;
        (req.len() == pad).then_some(Self { delivery_number, next_epoch, submitted_us, home, client, honest })
    }
}

/// TBG's waiting period κ (epochs) in the bench.
const TBG_KAPPA: u32 = 2;
/// The replicas' retransmission tick (ms).
const TICK_MS: u64 = 2_000;
const INSTANCE: Hash32 = Hash32([0x1b; 32]);
/// A client whose transaction is not delivered within this long sends a
/// fresh one with the same delivery number (its recipients may have
/// dropped it, e.g. a TBG bucket already consulted).
const CLIENT_RETRY: Duration = Duration::from_secs(4);
/// Wire tags: a consensus message, or clients' transactions.
const WIRE_CONSENSUS: u8 = 0;
const WIRE_TXS: u8 = 1;
/// Flooding clients' delivery numbers start here (Rule-3 refuses them).
const FLOOD_DN: u64 = 1 << 40;

fn client_key(home: u32, k: u32, honest: bool) -> EdKeyPair {
    let kind = if honest { "client" } else { "flood" };
    EdKeyPair::from_seed(&format!("gridledger-lbft-bench-{kind}-{home}-{k}"))
}

/// An opaque client's identity: unsigned transactions need no key pair,
/// only distinct 32 bytes (deriving an Ed25519 key costs a scalar
/// multiplication: at 200,000 offered tx/s the four replicas' clients took
/// tens of CPU seconds to set up before the run could start).
fn opaque_client(home: u32, k: u32) -> EdPublicKey {
    EdPublicKey(hash_bytes(Tag("gridledger-lbft-bench-opaque-client"), &encode(&(home, k))).0)
}

/// A client's key: a key pair to sign with, or (opaque) only an identity.
enum ClientKey {
    Signing(Box<EdKeyPair>),
    Opaque(EdPublicKey),
}

impl ClientKey {
    fn public(&self) -> EdPublicKey {
        match self {
            ClientKey::Signing(k) => k.public(),
            ClientKey::Opaque(pk) => *pk,
        }
    }
}

fn validator_key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-lbft-bench-validator-{i}"))
}

fn pad_len() -> usize {
    let req = Request { submitted_us: 0, home: 0, client: 0, honest: true, pad: Vec::new() };
    let probe = LbftTx {
        epoch: 0,
        client: EdPublicKey([0; 32]),
        request: encode(&req),
        delivery_number: 0,
        next_epoch: 1,
        signature: EdSignature([0; 64]),
    };
    TX_BYTES.saturating_sub(encode(&probe).len())
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// `bench lbft`: deals keys, spawns the replicas, gathers their reports.
pub fn bench(a: LbftBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.replicas >= 4, "LBFT needs n >= 4 (f = (n - 1) / 3 >= 1)");
    let policy = a.policy.clone().unwrap_or_else(|| if a.opaque { "fifo" } else { "tbg" }.to_string());
    anyhow::ensure!(
        ["tbg", "hsm", "random", "fifo"].contains(&policy.as_str()),
        "--policy {policy:?}: one of tbg, hsm, random, fifo"
    );
    anyhow::ensure!(!a.opaque || policy == "fifo", "--opaque needs --policy fifo (π^τ checks every signature)");
    anyhow::ensure!(a.tau >= 1 && a.groups >= 1 && a.groups <= a.tau.min(a.replicas as u32), "need 1 <= G <= τ");
    anyhow::ensure!(a.batch >= 1, "--batch must be at least 1");
    // A full epoch's Sync answer (catch-up) must fit a frame, as on nodes.
    gridledger_node::lbft::check_frame_bound(a.replicas, a.batch, TX_BYTES)
        .map_err(|e| anyhow::anyhow!("--batch {} with --replicas {}: {e}", a.batch, a.replicas))?;
    let n = a.replicas;
    let pipeline = a.pipeline;
    anyhow::ensure!(pipeline <= 4, "--pipeline {pipeline}: at most 4 epochs ahead");
    let tau = a.tau.min(n as u32);
    // The FIFO source proposes what waits at once: the batch being agreed
    // on and the next one. π^τ/TBG (and the baselines' buckets) may hold a
    // transaction until its bucket is cut, up to 2κ epochs later.
    let depth = if policy == "fifo" { 2 } else { 2 + 2 * TBG_KAPPA as usize } + pipeline as usize;
    let max_in_flight = a.max_in_flight.unwrap_or_else(|| Admission::window_for(a.batch, depth, tau as usize));
    let load_before = load_average();
    let mut rng = rand::rng();
    let keys = gridledger_consensus::lbft::crypto::deal_keys(n, &mut rng)?;
    let ports: Vec<u16> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()))
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut children: Vec<std::process::Child> = Vec::new();
    for i in 0..n {
        let file = ReplicaFile {
            index: i as u32,
            n: n as u32,
            ports: ports.clone(),
            echo_keys: keys.echo_public.clone(),
            coin_keys: keys.coin_public.to_bytes(),
            echo_secret: keys.echo_secret[i],
            coin_share: keys.coin_shares[i].to_bytes(),
            rate: a.rate / n as u64,
            flood: a.flood / n as u64,
            seconds: a.seconds,
            batch: a.batch as u32,
            opaque: a.opaque,
            policy: policy.clone(),
            tau: a.tau.min(n as u32),
            groups: a.groups,
            pipeline,
            fsync: !a.no_fsync,
            max_in_flight: max_in_flight as u64,
            log_append: a.log_append,
        };
        let path = dir.path().join(format!("replica-{i}.bin"));
        std::fs::write(&path, encode(&file))?;
        let data = dir.path().join(format!("data-{i}"));
        std::fs::create_dir_all(&data)?;
        children.push(spawn_replica(&exe, &path, &data)?);
    }
    let mut finished_before_kill = false;
    if let Some(k) = a.kill_restart {
        let k = k as usize;
        anyhow::ensure!(k < n, "--kill-restart {k}: no such replica");
        std::thread::sleep(Duration::from_secs(2));
        // Killed once a delivered epoch is in its log (a loaded machine may
        // take longer than two seconds to deliver the first), at most 30 s in.
        let marker = dir.path().join(format!("data-{k}")).join(DELIVERED_MARKER);
        let give_up = Instant::now() + Duration::from_secs(28);
        while !marker.exists() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A replica that has finished already (a short --seconds) is not
        // killed mid-run: the run fails below rather than report a restart
        // it did not test.
        finished_before_kill = children[k].try_wait()?.is_some();
        children[k].kill()?;
        let _ = children[k].wait();
        std::thread::sleep(Duration::from_secs(1));
        let path = dir.path().join(format!("replica-{k}.bin"));
        children[k] = spawn_replica(&exe, &path, &dir.path().join(format!("data-{k}")))?;
    }
    let mut reports = Vec::new();
    for c in children {
        let out = c.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "a replica failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("{}");
        reports.push(serde_json::from_str::<serde_json::Value>(last)?);
    }
    let restored_after_kill = match a.kill_restart {
        Some(k) => Some(kill_restart_tested(k, finished_before_kill, &reports[k as usize])?),
        None => None,
    };
    let load_after = load_average();
    let tps: Vec<f64> = reports.iter().filter_map(|r| r["delivered_unique_tx_per_s"].as_f64()).collect();
    let p50: Vec<f64> = reports.iter().filter_map(|r| r["latency_ms"]["p50"].as_f64()).collect();
    let p99: Vec<f64> = reports.iter().filter_map(|r| r["latency_ms"]["p99"].as_f64()).collect();
    let bytes: Vec<f64> = reports.iter().filter_map(|r| r["bytes_sent_per_delivered_tx"].as_f64()).collect();
    let flood: Vec<f64> = reports.iter().filter_map(|r| r["flood_delivered_per_s"].as_f64()).collect();
    // Offered load the replicas' edges refused, by reason (summed).
    let refused_sum = |k: &str| reports.iter().filter_map(|r| r["refused"][k].as_u64()).sum::<u64>();
    let (refused_backlog, refused_no_client) = (refused_sum("backlog"), refused_sum("no_idle_client"));
    let pool_refused_sum = |k: &str| reports.iter().filter_map(|r| r["pool_refused"][k].as_u64()).sum::<u64>();
    // Every pair of replicas agrees on every epoch both delivered.
    let seqs: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            r["epoch_digests"]
                .as_array()
                .map(|v| v.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        })
        .collect();
    let same_sequence = seqs.iter().all(|a| seqs.iter().all(|b| a.iter().zip(b).all(|(x, y)| x == y)));
    let fsyncs_per_epoch: Vec<f64> = reports.iter().filter_map(|r| r["fsyncs_per_epoch"].as_f64()).collect();
    let records_per_epoch: Vec<f64> = reports.iter().filter_map(|r| r["records_per_epoch"].as_f64()).collect();
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let out = json!({
        "bench": "lbft",
        "replicas": n,
        "policy": policy,
        "tau": a.tau.min(n as u32),
        "groups": a.groups,
        "opaque": a.opaque,
        "tx_bytes": TX_BYTES,
        "offered_tx_per_s": a.rate,
        "flood_tx_per_s": a.flood,
        "seconds": a.seconds,
        "batch": a.batch,
        "pipeline": pipeline,
        // The slowest replica's delivery: what every correct replica delivered.
        "delivered_unique_tx_per_s": tps.iter().copied().fold(f64::INFINITY, f64::min),
        "latency_ms": { "p50": p50.iter().copied().fold(0.0, f64::max), "p99": p99.iter().copied().fold(0.0, f64::max) },
        "bytes_sent_per_delivered_tx": bytes.iter().sum::<f64>() / bytes.len().max(1) as f64,
        "flood_delivered_per_s": flood.iter().copied().fold(0.0, f64::max),
        // Admission control: each replica admits at most `max_in_flight`
        // of its clients' transactions in flight; offered load beyond is
        // refused at the edge (over the whole run, warm-up included).
        "max_in_flight_per_replica": if max_in_flight == 0 { None } else { Some(max_in_flight) },
        "refused": {
            "total": refused_backlog + refused_no_client,
            "per_s": (refused_backlog + refused_no_client) as f64 / (a.seconds + 1).max(1) as f64,
            "backlog": refused_backlog,
            "no_idle_client": refused_no_client,
        },
        // Arrivals a replica's batch source refused (bounded queue).
        "pool_refused": { "queue_full": pool_refused_sum("queue_full"), "duplicate": pool_refused_sum("duplicate") },
        "verdicts_ready_at_decision": reports
            .iter()
            .filter_map(|r| r["verdicts_ready_at_decision"].as_f64())
            .fold(f64::INFINITY, f64::min),
        "epoch_interval_ms_p50": reports
            .iter()
            .filter_map(|r| r["epoch_interval_ms_p50"].as_f64())
            .fold(0.0, f64::max),
        "same_delivered_sequence": same_sequence,
        "killed_and_restarted": a.kill_restart,
        // Delivered epochs the killed replica restored from its log, and
        // those it delivered after its restart.
        "restored_epochs_after_kill": restored_after_kill,
        "delivered_epochs_after_restart": a.kill_restart.zip(restored_after_kill).map(|(k, restored)| {
            (seqs[k as usize].len() as u64).saturating_sub(restored)
        }),
        // Durability of the replicas' logs: `crash_safe` is false only in
        // the --no-fsync comparison mode.
        "fsync": !a.no_fsync,
        "crash_safe": !a.no_fsync,
        // Log records appended at the file's end (`--log-append`), not
        // written over zeros synced ahead.
        "log_append": a.log_append,
        "durability": if a.no_fsync {
            "NOT crash-safe: log records written without fsync (--no-fsync comparison mode)"
        } else {
            "crash-safe: each log record fsynced before its messages leave"
        },
        // Mean over replicas.
        "fsyncs_per_epoch": mean(&fsyncs_per_epoch),
        "records_per_epoch": mean(&records_per_epoch),
        "load_average": { "before": load_before, "after": load_after },
        "per_replica": reports,
    });
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

fn spawn_replica(
    exe: &std::path::Path,
    config: &std::path::Path,
    data: &std::path::Path,
) -> anyhow::Result<std::process::Child> {
    Ok(std::process::Command::new(exe)
        .args(["bench", "lbft-replica", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?)
}

/// Whether `--kill-restart K` tested a restart: replica `K` was still
/// running when it was killed, and after the restart it restored at least
/// one delivered epoch from its log (`restarted` is its report). Otherwise
/// "the same delivered sequence" compares nothing the log held (an empty
/// or a never-interrupted sequence agrees with any other), so the run
/// fails with the reason instead of reporting it. Returns the number of
/// restored epochs.
fn kill_restart_tested(k: u32, finished_before_kill: bool, restarted: &serde_json::Value) -> anyhow::Result<u64> {
    anyhow::ensure!(
        !finished_before_kill,
        "--kill-restart {k}: the replica had finished its run before it was killed, so no restart mid-run was \
         tested (run longer: --seconds)"
    );
    let restored = restarted["restored_epochs"].as_u64().unwrap_or(0);
    anyhow::ensure!(
        restored > 0,
        "--kill-restart {k}: the restarted replica restored no delivered epoch from its log (killed before its \
         first delivery was durable), so its delivered sequence tests no recovery (run longer: --seconds)"
    );
    Ok(restored)
}

type Sig = NodeSig;

/// The file a replica creates in its data directory once a delivered epoch
/// is in its log (see [`DiskLog`]'s `delivered_marker`).
const DELIVERED_MARKER: &str = "delivered";

/// The replica's durable state as an append-only log (format v5): the
/// 20-byte header [`LOG_MAGIC`] ‖ `salt` ‖ CRC-32 of (magic ‖ salt), then
/// records of
/// `salt (8) ‖ len (u32 LE) ‖ crc (u32 LE) ‖ borsh(Vec<LogOp>)`, where
/// `salt` is 8 random bytes drawn when the log is created and `crc` is
/// the CRC-32 of `salt ‖ len ‖ body`. The checksum only has to tell a torn
/// write (a crash mid-append leaves a short or partly written last record)
/// from a whole one: the log lives on the replica's own disk, so nobody who
/// could forge a record is kept out by a cryptographic hash (format v1
/// hashed every record with SHA-256: ≈ 7 % of a replica's CPU).
///
/// The salt is what tells a torn last record from a damaged middle one
/// ([`read_records`]). A damaged record (any byte of it changed, its length
/// field included) is refused with its byte offset, the log left as it is,
/// when a whole record follows it; otherwise it is the torn or damaged last
/// record and is cut off. Format v2 had no salt, and deciding "a whole
/// record follows" meant reading every later byte as a possible record
/// start: the bytes of a torn record are mostly transactions, which any
/// client chooses, so their fields parsed as record lengths (a bounded
/// search then ran out and answered "found") or a transaction carried a
/// whole record-shaped byte sequence, and a replica killed mid-append could
/// not restart (attack r12 [1], [2]). A whole record now starts with the
/// log's salt and its CRC covers it: content cannot hold one (nobody
/// outside the replica's disk knows the salt; a chance match is 2^-64 per
/// position), so the search looks only where the salt occurs, and every
/// such place is a record the replica itself appended. A per-record
/// sequence number would not do: its bytes are as guessable as a length.
///
/// The header checks itself (format v4): in v3 it was `magic ‖ salt`
/// unchecked, so a flipped bit in its salt made every record fail and the
/// whole log looked like one torn first record (attack r13 [1]); the rule
/// that then refused a first record not starting with the salt also
/// refused a first record torn with its first sector unwritten (zeros,
/// then the rest of the record: attack r14 [1]). Now a damaged header is
/// refused by name, the log left as it is, and the first record is read
/// like any other. A header that is all zeros or a prefix of a header,
/// with nothing after it, is what a crash while the log was created leaves
/// (no record follows a header that was not synced): it is written again
/// (attack r14 [2]). Logs in an earlier format (v1, v2, v3, v4) are refused
/// with the reason, never read as empty or rewritten. Format v5 has v4's
/// layout; its delivered epochs' certificates are Ed25519 multi-signatures
/// ([`NodeSig`]) where v4's were BLS threshold signatures.
///
/// Records are written over zeros: while the log syncs, a thread of its
/// own ([`ZeroFill`]) keeps a few megabytes past the last record written
/// with zeros and synced, and a record that fits there is written in
/// place (`pwrite`) and synced with `fdatasync`. Appending at the end of
/// the file made every record's `fdatasync` commit the file's new size
/// too, i.e. wait for the file system's journal, which every other
/// process's writes share (measured: 3–40 ms p99 appended against
/// 1.2–8 ms written over synced zeros); over zeros the size does not
/// change and only the data is written. A record that does not fit (the
/// filler behind, or a record larger than the zeros ahead) is written past
/// them, extending the file, as every record was before. The zeros change
/// nothing the reader decides, so the format stays v5: a zero-filled tail
/// after the last whole record is the torn-tail case above (no whole
/// record follows), cut when the log is opened, and any v5 log — one that
/// ends at its last record, as earlier builds leave it, or with zeros after
/// it — is read the same way. Opening cuts the file at its end (the zeros
/// and anything torn after the last whole record), and the filler writes
/// zeros from there again. The filler never writes below the end of the
/// last record written or being written, and a record goes over zeros only
/// once they are synced, so a torn record over zeros leaves that record's
/// written sectors and zeros, as a torn append leaves a prefix: nothing
/// whole after it.
struct DiskLog {
    file: std::fs::File,
    /// Created (empty) beside the log once the first record holding a
    /// delivered epoch is written (and synced): the bench driver's
    /// `--kill-restart` waits for it, so the replica it kills has a
    /// delivery to restore. Taken when written.
    delivered_marker: Option<std::path::PathBuf>,
    /// Sync each record (off only in the --no-fsync comparison mode).
    fsync: bool,
    /// The log's salt (its header's last 8 bytes), first in every record.
    salt: [u8; 8],
    /// One record's bytes, reused from record to record (a delivered
    /// epoch's record is megabytes: a fresh buffer per record cost the
    /// kernel zeroing its new pages, and doubling it copied it again).
    buf: Vec<u8>,
    /// The proposals the log holds and a later delivery may still refer
    /// to (what [`Durable::proposed`] holds after replaying the log).
    proposed: BTreeMap<u64, gridledger_consensus::lbft::Batch>,
    /// The log's length, and how far its synced pages were dropped from
    /// the page cache (see [`DiskLog::drop_synced_pages`]).
    end: u64,
    dropped_to: u64,
    /// The zeros ahead of the end (only when the log syncs: without
    /// syncs nothing waits for the journal).
    fill: Option<ZeroFill>,
}

/// How many bytes of synced zeros [`ZeroFill`] keeps past the log's end,
/// and in what steps it writes them.
#[derive(Clone, Copy, Debug)]
struct FillAhead {
    /// Zeros are written while fewer than this many bytes of synced zeros
    /// lie past the end.
    ahead: u64,
    /// One step's zeros, written and then synced with one `fdatasync`:
    /// each step's sync commits the file's new size (a journal commit),
    /// so the steps are few and large (at 5,000 signed tx/s a replica
    /// writes ≈ 5 MB of records a second).
    step: u64,
}

/// The bench replica's zeros ahead.
const FILL_AHEAD: FillAhead = FillAhead { ahead: 8 << 20, step: 4 << 20 };

/// What the log's writer and its filler share (see [`ZeroFill`]).
#[derive(Debug, Default)]
struct FillState {
    /// Below this offset the file holds only the log (header and records)
    /// and zeros, and every zero below it is synced: a record that ends at
    /// or below it is written over synced zeros.
    filled: u64,
    /// The end of the last record written, or, while a record that runs
    /// past `filled` is written, that record's end: the filler writes no
    /// zeros below it.
    end: u64,
    /// The filler is writing zeros (at `filled` or above, at or above
    /// `end`): a record that runs past `filled` waits until it is done.
    writing: bool,
    stop: bool,
}

/// The thread that writes and syncs zeros ahead of the log's end (see
/// [`DiskLog`]). It only ever writes zeros at or above both the synced
/// zeros' end and the last record's end; the log's writer only writes a
/// record past the synced zeros while the filler is not writing, and
/// moves the filler's floor (`end`) past that record first. Dropped, it
/// stops and is joined (no write after the log is closed).
struct ZeroFill {
    shared: Arc<(std::sync::Mutex<FillState>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ZeroFill {
    fn start(file: &std::fs::File, end: u64, ahead: FillAhead) -> std::io::Result<Self> {
        let file = file.try_clone()?;
        let state = FillState { filled: end, end, ..FillState::default() };
        let shared = Arc::new((std::sync::Mutex::new(state), std::sync::Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("lbft-log-fill".into())
            .spawn(move || fill_zeros(&file, &theirs, ahead))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FillState> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before the record `at..to` is written (`at` the log's end): true
    /// when it lies in synced zeros. Otherwise (false) the filler is not
    /// writing and writes nothing below `to` from now on: the record is
    /// written past the zeros, extending the file.
    fn before_write(&self, to: u64) -> bool {
        let mut s = self.state();
        loop {
            if to <= s.filled {
                return true;
            }
            if !s.writing {
                s.end = to;
                return false;
            }
            s = self.shared.1.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits until the filler has the zeros it wants ahead (or stopped).
    #[cfg(test)]
    fn settle(&self, ahead: FillAhead) {
        let mut s = self.state();
        while !s.stop && (s.writing || s.filled < s.end.saturating_add(ahead.ahead)) {
            s = self.shared.1.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// After the record ending at `to` is written and synced.
    fn after_write(&self, to: u64) {
        let mut s = self.state();
        s.end = to;
        s.filled = s.filled.max(to);
        self.shared.1.notify_all();
    }
}

impl Drop for ZeroFill {
    fn drop(&mut self) {
        self.state().stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The filler's loop: while fewer than `ahead.ahead` bytes of synced zeros
/// lie past the log's end, write `ahead.step` more zeros from
/// `max(filled, end)` and sync them; only then are they `filled`. A failed
/// write or sync stops the filler (the log appends from then on).
fn fill_zeros(file: &std::fs::File, shared: &(std::sync::Mutex<FillState>, std::sync::Condvar), ahead: FillAhead) {
    use std::os::unix::fs::FileExt;
    /// However the loop ends, the writer is not left waiting for it.
    struct Stopped<'a>(&'a (std::sync::Mutex<FillState>, std::sync::Condvar));
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            let mut s = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
            s.writing = false;
            s.stop = true;
            self.0 .1.notify_all();
        }
    }
    let _stopped = Stopped(shared);
    let zeros = vec![0u8; (1 << 20).min(ahead.step as usize).max(1)];
    let (lock, cv) = shared;
    let state = || lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let from = {
            let mut s = state();
            while !s.stop && s.filled >= s.end.saturating_add(ahead.ahead) {
                s = cv.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                return;
            }
            s.writing = true;
            s.filled.max(s.end)
        };
        let to = from.saturating_add(ahead.step);
        let mut at = from;
        let mut wrote = Ok(());
        while at < to && wrote.is_ok() {
            let n = (to - at).min(zeros.len() as u64);
            wrote = file.write_all_at(&zeros[..n as usize], at);
            at += n;
        }
        {
            // Written: a record may now go past `filled` (over these
            // zeros, unsynced), which this sync then covers as well.
            let mut s = state();
            s.writing = false;
            cv.notify_all();
        }
        if let Err(e) = wrote.and_then(|()| file.sync_data()) {
            // Not the log's own write: its records are appended from here
            // on (and each is synced as before).
            eprintln!("lbft replica: writing zeros ahead of its log failed ({e}); records are appended from here on");
            return;
        }
        let mut s = state();
        s.filled = s.filled.max(to);
        cv.notify_all();
    }
}

/// One write as the log holds it: a step's write, except that a delivered
/// epoch's batch that the log holds already as this replica's proposal
/// for that epoch is not written a second time (it was a fifth of every
/// delivered epoch's bytes with four replicas).
#[derive(BorshSerialize, BorshDeserialize)]
enum LogOp {
    Op(PersistOp<Sig>),
    Delivered { epoch: u64, batches: Vec<LogBatch> },
}

/// A delivered epoch's certified batch in the log.
#[derive(BorshSerialize, BorshDeserialize)]
enum LogBatch {
    Whole(CertifiedBatch<Sig>),
    /// The batch is the proposal for the epoch that the log holds
    /// (`PersistOp::Proposed`, in an earlier record or earlier in this one).
    Proposed {
        proposer: u32,
        digest: Hash32,
        sig: Sig,
    },
}

/// The log's first bytes (format v5: a self-checking header, salted
/// CRC-32 records); the log's salt and the header's CRC-32 follow them.
const LOG_MAGIC: [u8; 8] = *b"GLLBFT\x00\x05";
/// The first bytes of a format v4 log (the same layout, BLS threshold
/// certificates in its delivered epochs).
const LOG_MAGIC_V4: [u8; 8] = *b"GLLBFT\x00\x04";
/// The first bytes of a format v3 log (an unchecked header, salted
/// records).
const LOG_MAGIC_V3: [u8; 8] = *b"GLLBFT\x00\x03";
/// The first bytes of a format v2 log (CRC-32 records without a salt).
const LOG_MAGIC_V2: [u8; 8] = *b"GLLBFT\x00\x02";
/// The log's header: [`LOG_MAGIC`], the log's salt and the CRC-32 of both.
const LOG_HEADER: usize = 20;
/// A record's header: the log's salt, length and CRC-32.
const LOG_RECORD_HEADER: usize = 16;

/// Why a replica's log cannot be taken up.
#[derive(Debug, PartialEq, Eq)]
enum LogFormatError {
    /// Written by an earlier build in format v1 (SHA-256 record checksums).
    V1,
    /// Written by an earlier build in format v2 (CRC-32 records without
    /// the log's salt).
    V2,
    /// Written by an earlier build in format v3 (a header that does not
    /// check itself).
    V3,
    /// Written by an earlier build in format v4 (BLS threshold
    /// certificates, not Ed25519 multi-signatures).
    V4,
    /// A v5 header whose CRC-32 does not match its magic and salt.
    DamagedHeader,
    /// Zeros where the header should be, and more than a header's bytes
    /// or other bytes after them.
    ZeroedHeader,
    /// Not an LBFT log of any known format.
    Unknown,
}

impl std::fmt::Display for LogFormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogFormatError::V1 => f.write_str(
                "the log was written in format v1 (SHA-256 record checksums) by an earlier build; this build reads format v5 only: start the replica with an empty data directory",
            ),
            LogFormatError::V2 => f.write_str(
                "the log was written in format v2 (CRC-32 records without a salt) by an earlier build; this build reads format v5 only: start the replica with an empty data directory",
            ),
            LogFormatError::V3 => f.write_str(
                "the log was written in format v3 (a header without its own checksum) by an earlier build; this build reads format v5 only: start the replica with an empty data directory",
            ),
            LogFormatError::V4 => f.write_str(
                "the log was written in format v4 (BLS threshold certificates) by an earlier build; this build reads format v5 only (Ed25519 multi-signature certificates): start the replica with an empty data directory",
            ),
            LogFormatError::DamagedHeader => f.write_str(
                "the log's header is damaged (its CRC-32 does not match its magic and salt); the log is left as it is",
            ),
            LogFormatError::ZeroedHeader => f.write_str(
                "the log starts with zeros where its header should be and holds more than a header (not a header left by a crash while the log was created: no record follows a header that was not synced); the log is left as it is",
            ),
            LogFormatError::Unknown => f.write_str("not an LBFT replica log (unknown header)"),
        }
    }
}

impl std::error::Error for LogFormatError {}

/// The CRC-32 of the header's magic and salt.
fn header_crc(salt: &[u8; 8]) -> [u8; 4] {
    let mut h = crc32fast::Hasher::new();
    h.update(&LOG_MAGIC);
    h.update(salt);
    h.finalize().to_le_bytes()
}

/// A new log's header for `salt`.
fn log_header(salt: &[u8; 8]) -> [u8; LOG_HEADER] {
    let mut h = [0u8; LOG_HEADER];
    h[..8].copy_from_slice(&LOG_MAGIC);
    h[8..16].copy_from_slice(salt);
    h[16..].copy_from_slice(&header_crc(salt));
    h
}

/// What the first bytes of a log file are.
#[derive(Debug, PartialEq, Eq)]
enum LogHeader {
    /// A whole v5 header: its salt.
    Whole([u8; 8]),
    /// Nothing after where the header ends, and the bytes there are all
    /// zeros or a prefix of a v5 header (a new file, or a crash while the
    /// log was created): to be written again.
    Torn,
    /// Refused, the log left as it is.
    Refused(LogFormatError),
}

/// Reads a log file's header (format v5: [`LOG_MAGIC`] ‖ salt ‖ CRC-32 of
/// both).
fn parse_header(bytes: &[u8]) -> LogHeader {
    let magic_len = bytes.len().min(LOG_MAGIC.len());
    if bytes.len() >= LOG_HEADER && bytes[..8] == LOG_MAGIC {
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&bytes[8..16]);
        return if bytes[16..LOG_HEADER] == header_crc(&salt) {
            LogHeader::Whole(salt)
        } else {
            LogHeader::Refused(LogFormatError::DamagedHeader)
        };
    }
    let zeros = bytes.iter().take(LOG_HEADER).all(|&b| b == 0);
    if bytes.len() < LOG_HEADER && bytes[..magic_len] == LOG_MAGIC[..magic_len] {
        // A prefix of a header: the salt and CRC (if any) cannot be
        // checked, and nothing follows them.
        LogHeader::Torn
    } else if zeros && bytes.len() <= LOG_HEADER {
        LogHeader::Torn
    } else if bytes.starts_with(&LOG_MAGIC_V4) {
        LogHeader::Refused(LogFormatError::V4)
    } else if bytes.starts_with(&LOG_MAGIC_V3) {
        LogHeader::Refused(LogFormatError::V3)
    } else if bytes.starts_with(&LOG_MAGIC_V2) {
        LogHeader::Refused(LogFormatError::V2)
    } else if starts_with_v1_record(bytes) {
        LogHeader::Refused(LogFormatError::V1)
    } else if bytes.first() == Some(&0) {
        LogHeader::Refused(LogFormatError::ZeroedHeader)
    } else {
        LogHeader::Refused(LogFormatError::Unknown)
    }
}

/// The CRC-32 of a record's salt, length field and body.
fn record_crc(salt: &[u8; 8], len: &[u8; 4], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(salt);
    h.update(len);
    h.update(body);
    h.finalize()
}

/// Whether `bytes` (a log without a header) starts with a whole v1
/// record: `len (u32 LE) ‖ SHA-256 tagged checksum (32) ‖ body`.
fn starts_with_v1_record(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
        return false;
    };
    let Some(body) = bytes.get(36..36usize.saturating_add(len)) else { return false };
    hash_bytes(Tag("gridledger/lbft-log/v1"), body).0[..] == bytes[4..36]
}

/// The record of a log body starting at `at`, if it is whole: it
/// starts with the log's salt, its body runs within `bytes` and it
/// matches its CRC-32.
fn whole_record<'a>(bytes: &'a [u8], at: usize, salt: &[u8; 8]) -> Option<&'a [u8]> {
    let header = bytes.get(at..at.checked_add(LOG_RECORD_HEADER)?)?;
    if header[..8] != salt[..] {
        return None;
    }
    let len_bytes = [header[8], header[9], header[10], header[11]];
    let crc = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let start = at + LOG_RECORD_HEADER;
    let body = bytes.get(start..start.checked_add(u32::from_le_bytes(len_bytes) as usize)?)?;
    (record_crc(salt, &len_bytes, body) == crc).then_some(body)
}

/// The start of a whole record after the damaged record at `at` of a
/// log body, if there is one. Only places where the log's salt occurs are
/// tried (content cannot hold the salt, see [`DiskLog`]), so every place
/// tried is a record the replica appended, and the CRC work is at most
/// the bytes after `at`: no budget, no guess.
///
/// Runs of zeros (the zero-filled tail: megabytes) are passed over eight
/// bytes at a time: a salt with a non-zero byte (every salt this build
/// draws) cannot start where the next eight bytes are zeros.
fn record_after(bytes: &[u8], at: usize, salt: &[u8; 8]) -> Option<usize> {
    const ZEROS: [u8; 8] = [0; 8];
    let skip_zeros = *salt != ZEROS;
    let mut q = at.checked_add(1)?;
    while q.checked_add(salt.len())? <= bytes.len() {
        if skip_zeros && bytes[q..q + 8] == ZEROS {
            // The first non-zero byte after these eight zeros; the first
            // place that can hold the salt is the one whose window ends
            // there (every window before it holds zeros only).
            let mut p = q + 8;
            while p + 8 <= bytes.len() && bytes[p..p + 8] == ZEROS {
                p += 8;
            }
            while p < bytes.len() && bytes[p] == 0 {
                p += 1;
            }
            if p >= bytes.len() {
                return None;
            }
            q = p - 7;
            continue;
        }
        if bytes[q..q + 8] == salt[..] && whole_record(bytes, q, salt).is_some() {
            return Some(q);
        }
        q += 1;
    }
    None
}

/// Planted bugs of the replica's log (test-only, behind the `mutants`
/// feature), each caught by the test its doc names; set per thread.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LogMutation {
    /// The reader takes a record header of zeros as the log's end without
    /// looking past it (as if zeros could only be the zeros ahead): a
    /// record zeroed in the middle of the log drops the whole records
    /// after it silently. Caught by
    /// `a_whole_record_after_a_long_run_of_zeros_is_found`.
    ZerosEndTheLog,
}

#[cfg(feature = "mutants")]
thread_local! {
    static LOG_MUTATION: std::cell::Cell<Option<LogMutation>> = const { std::cell::Cell::new(None) };
}

#[cfg(feature = "mutants")]
fn log_mutation() -> Option<LogMutation> {
    LOG_MUTATION.with(std::cell::Cell::get)
}

/// Replays the whole records of a log body (after the header) onto
/// `durable`; returns where a torn last record starts (the end when there
/// is none). A damaged record (its salt or CRC fails, or its body does not
/// decode) is the torn or damaged last record when no whole record
/// follows it (any prefix of the last append, a flipped bit in it, a
/// zeroed tail): it is cut. One with a whole record after it is damage a
/// crash cannot leave (records are appended one after the other, and a
/// whole record after it was appended after it): an error with both byte
/// offsets, and the log is left as it is — cutting it would drop the
/// later records silently, and the replica would forget what it said. So
/// is a whole record that refers to a proposal the log does not hold.
fn read_records(bytes: &[u8], salt: &[u8; 8], durable: &mut Durable<Sig>) -> anyhow::Result<usize> {
    let mut at = 0usize;
    while at < bytes.len() {
        let body = whole_record(bytes, at, salt);
        let ops = body.and_then(|b| borsh::from_slice::<Vec<LogOp>>(b).ok());
        let (Some(body), Some(ops)) = (body, ops) else {
            #[cfg(feature = "mutants")]
            if log_mutation() == Some(LogMutation::ZerosEndTheLog) && bytes[at..].iter().take(16).all(|&b| b == 0) {
                break;
            }
            if let Some(next) = record_after(bytes, at, salt) {
                anyhow::bail!(
                    "the log record at byte {} is damaged (checksum or encoding), and a whole record follows it at \
                     byte {}: not a torn last record; the log is left as it is",
                    LOG_HEADER + at,
                    LOG_HEADER + next
                );
            }
            // Nothing whole follows: the torn or damaged last record (it
            // holds at most one append), the first one included — the
            // header checked itself, so a damaged salt cannot make every
            // record fail (attack r13 [1]), and a crash may leave any of
            // an append's sectors unwritten, its first one too (attack
            // r14 [1]).
            break;
        };
        let len = body.len();
        for op in ops {
            let op = match op {
                LogOp::Op(op) => op,
                LogOp::Delivered { epoch, batches } => {
                    let batches = batches
                        .into_iter()
                        .map(|b| match b {
                            LogBatch::Whole(b) => Ok(b),
                            LogBatch::Proposed { proposer, digest, sig } => match durable.proposed.get(&epoch) {
                                Some(batch) => Ok(CertifiedBatch { proposer, digest, sig, batch: batch.clone() }),
                                None => Err(anyhow::anyhow!(
                                    "the log record at byte {} delivers the proposal of epoch {epoch}, which the log does not hold",
                                    LOG_HEADER + at
                                )),
                            },
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    PersistOp::Delivered(DeliveredEpoch { epoch, batches })
                }
            };
            durable.apply(&op);
        }
        at += LOG_RECORD_HEADER + len;
    }
    Ok(at)
}

impl DiskLog {
    /// The log in `dir` with the bench replica's zeros ahead (the replica
    /// itself opens it with [`DiskLog::open_with`], for `--log-append`).
    #[cfg(test)]
    fn open(dir: &std::path::Path, fsync: bool) -> anyhow::Result<(Self, Durable<Sig>)> {
        Self::open_with(dir, fsync, Some(FILL_AHEAD))
    }

    /// [`DiskLog::open`] with `ahead` for its zeros ahead (the tests' are
    /// small; none: every record is appended, `--log-append`).
    fn open_with(dir: &std::path::Path, fsync: bool, ahead: Option<FillAhead>) -> anyhow::Result<(Self, Durable<Sig>)> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let path = dir.join("lbft.log");
        let mut file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut durable = Durable::default();
        let (end, salt) = match parse_header(&bytes) {
            LogHeader::Torn => {
                // New, or its header torn (or left zero-filled) by a crash
                // while it was created: no record follows a header that is
                // not durable yet.
                // Never all zeros (a chance of 2^-64): the reader passes
                // over zeros looking for the salt (`record_after`).
                let salt: [u8; 8] = loop {
                    let salt: [u8; 8] = rand::random();
                    if salt != [0; 8] {
                        break salt;
                    }
                };
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&log_header(&salt))?;
                if fsync {
                    file.sync_all()?;
                    std::fs::File::open(dir)?.sync_all()?;
                }
                (LOG_HEADER, salt)
            }
            LogHeader::Refused(e) => anyhow::bail!("{}: {e}", path.display()),
            LogHeader::Whole(salt) => {
                let at = read_records(&bytes[LOG_HEADER..], &salt, &mut durable)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                (LOG_HEADER + at, salt)
            }
        };
        // Cut after the last whole record: a torn record and the zeros
        // ahead go (the filler writes zeros from here again).
        file.set_len(end as u64)?;
        file.seek(SeekFrom::End(0))?;
        let proposed = durable.proposed.clone();
        let delivered_marker = Some(dir.join(DELIVERED_MARKER));
        let end = end as u64;
        let fill = match ahead {
            Some(ahead) if fsync => Some(ZeroFill::start(&file, end, ahead)?),
            _ => None,
        };
        Ok((Self { file, delivered_marker, fsync, salt, buf: Vec::new(), proposed, end, dropped_to: 0, fill }, durable))
    }

    /// Drops the log's whole pages below its end from the page cache once
    /// they are synced. The log is only appended to while the replica
    /// runs (it is read once, on open), so its cached pages are never read
    /// again; left cached, every record took fresh page-cache pages, and
    /// on this kind of machine a page never used before costs its writer
    /// ten times what a recently freed one does (`write` of a 1-MB record:
    /// ≈ 1–4.6 ms against 0.17 ms with the synced pages dropped, measured
    /// with the same write-sync loop both ways). Advice only: what is on
    /// disk, what the log reads back and when a record is durable do not
    /// change. The page holding the end stays cached (the next record
    /// fills it; dropped, appending to it would read it back first).
    /// Only after a sync: dirty pages are not dropped, and the advice
    /// would start their writeback.
    fn drop_synced_pages(&mut self) {
        const PAGE: u64 = 4096;
        let to = self.end / PAGE * PAGE;
        if !self.fsync || to <= self.dropped_to {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (from, len) = (self.dropped_to, to - self.dropped_to);
            if let (Ok(from), Ok(len)) = (libc::off_t::try_from(from), libc::off_t::try_from(len)) {
                // SAFETY: plain system call on a file descriptor this log
                // owns; it reads no memory of ours.
                unsafe { libc::posix_fadvise(self.file.as_raw_fd(), from, len, libc::POSIX_FADV_DONTNEED) };
            }
        }
        self.dropped_to = to;
    }

    /// Writes `ops` as one record at the log's end and (unless `--no-fsync`)
    /// syncs it; returns whether the record went over synced zeros (else
    /// it extended the file).
    fn append(&mut self, ops: &[PersistOp<Sig>]) -> anyhow::Result<bool> {
        use std::os::unix::fs::FileExt;
        // The body is encoded in place after room for its header, into the
        // buffer of the record before.
        let rec = &mut self.buf;
        rec.clear();
        rec.extend_from_slice(&[0u8; LOG_RECORD_HEADER]);
        let mut log_ops = Vec::with_capacity(ops.len());
        for op in ops {
            log_ops.push(match op {
                PersistOp::Delivered(d) => LogOp::Delivered {
                    epoch: d.epoch,
                    batches: d
                        .batches
                        .iter()
                        .map(|b| match self.proposed.get(&d.epoch) {
                            Some(p) if *p == b.batch => {
                                LogBatch::Proposed { proposer: b.proposer, digest: b.digest, sig: b.sig.clone() }
                            }
                            _ => LogBatch::Whole(b.clone()),
                        })
                        .collect(),
                },
                op => LogOp::Op(op.clone()),
            });
            // What replaying the log up to here leaves (`Durable::apply`).
            match op {
                PersistOp::Proposed { epoch, batch } => {
                    self.proposed.insert(*epoch, batch.clone());
                }
                PersistOp::Delivered(d) => self.proposed.retain(|e, _| *e > d.epoch),
                _ => {}
            }
        }
        borsh::to_writer(&mut *rec, &log_ops)?;
        let len = u32::try_from(rec.len() - LOG_RECORD_HEADER)?.to_le_bytes();
        let crc = record_crc(&self.salt, &len, &rec[LOG_RECORD_HEADER..]);
        rec[..8].copy_from_slice(&self.salt);
        rec[8..12].copy_from_slice(&len);
        rec[12..LOG_RECORD_HEADER].copy_from_slice(&crc.to_le_bytes());
        let to = self.end + rec.len() as u64;
        let over_zeros = self.fill.as_ref().is_some_and(|f| f.before_write(to));
        self.file.write_all_at(rec, self.end)?;
        if self.fsync {
            self.file.sync_data()?;
        }
        self.end = to;
        if let Some(f) = &self.fill {
            f.after_write(to);
        }
        if self.fsync {
            self.drop_synced_pages();
        }
        // Keep a buffer the size of a large epoch's record, not of the
        // largest one ever written.
        if self.buf.capacity() > 64 << 20 {
            self.buf = Vec::new();
        }
        Ok(over_zeros)
    }
}

fn epoch_digest(d: &DeliveredEpoch<Sig>) -> String {
    hash_bytes(Tag("gridledger/lbft-bench-epoch/v1"), &encode(&(d.epoch, d.decision()))).to_string()
}

enum Input {
    /// A peer's consensus message, decoded by the socket runtime's task
    /// (a batch's transaction ids are hashed later, on first use, once the
    /// replica has checked the batch against its bounds).
    Peer(u32, LbftMessage),
    /// The verifier handed verdicts back, or the persister made rounds
    /// durable: the loop blocks on this inbox alone (it used to poll both
    /// every millisecond, a thousand wake-ups a second per replica on a
    /// machine where every wake-up waits for a core).
    Wake,
}

/// This replica's batching, behind the txm traits (`--policy`).
enum Pool {
    Tbg(Box<PiTau>),
    Hsm(PolicySource<HsmBatcher<Admitted>>),
    Random(PolicySource<RandomBatcher<Admitted>>),
    Fifo(FifoPolicy),
}

impl Pool {
    fn new(file: &ReplicaFile) -> anyhow::Result<Self> {
        let b = file.batch as usize;
        let max = 1 << 20;
        let seed = u64::from(file.index) + 1;
        Ok(match file.policy.as_str() {
            "tbg" => Pool::Tbg(Box::new(PiTau::new(PiTauConfig {
                replicas: file.n,
                me: file.index,
                theta: Theta::ALWAYS,
                genesis: INSTANCE,
                max_pending: max,
                tbg: TbgConfig { tau: file.tau, groups: file.groups, kappa: TBG_KAPPA, batch: b, max_stored: max },
            })?)),
            "hsm" => Pool::Hsm(PolicySource::new(HsmBatcher::new(file.index, file.n, b, max, seed))),
            "random" => Pool::Random(PolicySource::new(RandomBatcher::new(b, max, seed))),
            // Bounded by the edges' windows: each of the n replicas'
            // clients has at most `max_in_flight` transactions in flight,
            // each sent to τ recipients, so a recipient holds about
            // τ·max_in_flight; twice that leaves room for an uneven spread.
            // Beyond it arrivals are refused (`Refused::QueueFull`).
            _ => Pool::Fifo(FifoPolicy::new(b, Self::fifo_cap(file))),
        })
    }

    /// The FIFO source's bound (the old 2^20 without an edge window).
    fn fifo_cap(file: &ReplicaFile) -> usize {
        match file.max_in_flight {
            0 => 1 << 20,
            w => (2 * u64::from(file.tau.max(1)) * w).max(u64::from(file.batch)).min(1 << 20) as usize,
        }
    }

    /// Admits `c` (a client's transaction, whose signature the verifier
    /// thread checked: `sig_ok`, meaningless when `opaque`; not checked
    /// again here). `Ok(true)`: the policy kept it; `Ok(false)`: refused
    /// by the policy's rules (signature, π^τ); `Err`: the FIFO source's
    /// bounded queue refused it (back-pressure) or holds it already.
    fn admit(&mut self, c: Checked, n: u32, opaque: bool) -> Result<bool, Refused> {
        let placed = |r: Result<(), Rejection>| Ok(r.is_ok());
        let Checked { tx, raw, id, sig_ok } = c;
        match self {
            Pool::Tbg(p) => Ok(matches!(p.receive_checked(tx, sig_ok), Outcome::Stored { .. } | Outcome::Pending(_))),
            Pool::Hsm(p) => {
                let slot = hsm_space(&tx.client, tx.epoch, n);
                let epoch = tx.epoch;
                placed(p.admit_checked(tx, Placement { epoch, slot }, sig_ok))
            }
            Pool::Random(p) => {
                let epoch = tx.epoch;
                placed(p.admit_checked(tx, Placement { epoch, slot: 0 }, sig_ok))
            }
            // `id` is `tx_id(&raw)` (the verifier hashed it on arrival).
            Pool::Fifo(p) if opaque || sig_ok => p.try_submit_with_id(id, raw).map(|()| true),
            Pool::Fifo(_) => Ok(false),
        }
    }

    /// The batch of replica epoch `e` (π^τ's local epochs start at 1).
    /// The FIFO source hands its batch with the ids it hashed on
    /// admission, so the replica does not hash its own batch again.
    fn next_batch(&mut self, e: u64) -> Txs {
        let txs = match self {
            Pool::Tbg(p) => p.next_batch(e + 1),
            Pool::Hsm(p) => p.next_batch(e + 1),
            Pool::Random(p) => p.next_batch(e + 1),
            Pool::Fifo(p) => return p.next_txs(e),
        };
        txs.iter().map(|t| encode(t.as_ref())).collect::<Vec<Tx>>().into()
    }

    /// `ids[i]` is `tx_id(&raw[i])` (the replica's `Delivery::ids`).
    fn delivered(&mut self, e: u64, hash: Hash32, txs: &[Arc<LbftTx>], ids: &[Hash32]) {
        match self {
            Pool::Tbg(p) => p.delivered(e + 1, hash, txs),
            Pool::Hsm(p) => p.delivered(e + 1, hash, txs),
            Pool::Random(p) => p.delivered(e + 1, hash, txs),
            Pool::Fifo(p) => p.delivered_ids(ids),
        }
    }

    fn held(&self) -> usize {
        match self {
            Pool::Tbg(p) => p.bucketed() + p.pending(),
            Pool::Hsm(p) => p.policy().stored(),
            Pool::Random(p) => p.policy().stored(),
            Pool::Fifo(p) => p.pending(),
        }
    }
}

/// Why a replica's edge refused a transaction its clients offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeRefusal {
    /// The window of transactions in flight is full: offered load above
    /// what the replicas deliver.
    Backlog(Backlog),
    /// Every client of this replica has a transaction in flight.
    NoIdleClient,
}

impl std::fmt::Display for EdgeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeRefusal::Backlog(b) => b.fmt(f),
            EdgeRefusal::NoIdleClient => f.write_str("every client has a transaction in flight"),
        }
    }
}

/// Where a replica's clients offer their load: an offered transaction is
/// sent by an idle client within the window of transactions in flight
/// ([`Admission`]), or refused with its reason and counted — never
/// deferred, so a backlog cannot build up at the edge either (refused
/// load is not made up for later in a burst).
pub struct Edge {
    idle: VecDeque<u32>,
    /// `None`: no bound (`--max-in-flight 0`).
    window: Option<Admission>,
    /// Whether client `k` has a transaction in flight (and, with a
    /// window, holds a slot of it).
    busy: Vec<bool>,
    pub refused_backlog: u64,
    pub refused_no_idle_client: u64,
}

impl Edge {
    /// `clients` idle clients; at most `max_in_flight` transactions in
    /// flight (0: no bound).
    pub fn new(clients: u32, max_in_flight: usize) -> Self {
        Self {
            idle: (0..clients).collect(),
            window: (max_in_flight > 0).then(|| Admission::new(max_in_flight)),
            busy: vec![false; clients as usize],
            refused_backlog: 0,
            refused_no_idle_client: 0,
        }
    }

    /// One offered transaction: the client that sends it, or why it is
    /// refused.
    pub fn offer(&mut self) -> Result<u32, EdgeRefusal> {
        if let Some(w) = self.window.as_mut() {
            if w.in_flight() >= w.cap() {
                self.refused_backlog += 1;
                return Err(EdgeRefusal::Backlog(Backlog { in_flight: w.in_flight(), cap: w.cap() }));
            }
        }
        let Some(k) = self.idle.pop_front() else {
            self.refused_no_idle_client += 1;
            return Err(EdgeRefusal::NoIdleClient);
        };
        if let Some(w) = self.window.as_mut() {
            if let Err(b) = w.try_admit() {
                // Checked above; kept for the type's sake.
                self.idle.push_front(k);
                self.refused_backlog += 1;
                return Err(EdgeRefusal::Backlog(b));
            }
        }
        if let Some(b) = self.busy.get_mut(k as usize) {
            *b = true;
        }
        Ok(k)
    }

    /// Client `k`'s transaction was delivered: the client is idle again and
    /// its slot in the window free (once: a second report, e.g. of a
    /// re-sent copy, changes nothing).
    pub fn delivered(&mut self, k: u32) {
        if let Some(b) = self.busy.get_mut(k as usize) {
            if std::mem::take(b) {
                if let Some(w) = self.window.as_mut() {
                    w.settle();
                }
                self.idle.push_back(k);
            }
        }
    }

    pub fn idle(&self) -> usize {
        self.idle.len()
    }

    pub fn in_flight(&self) -> usize {
        self.window.as_ref().map_or(0, Admission::in_flight)
    }
}

/// Which honest `(home, client, delivery number)` triples were delivered,
/// for counting each client transaction once however many copies of it
/// are delivered (a re-sent copy has other bytes, so another id). Exactly
/// the set of the triples seen, but kept per client as "every number below
/// `below` was delivered" plus the numbers above it: an honest client sends
/// number `d + 1` only after its home replica applied the delivery of `d`,
/// so in the delivered order a client's first deliveries come 0, 1, 2, …
/// and the set above stays empty. One array read and write per delivered
/// transaction instead of a hash-set insertion into a set of every
/// transaction of the run (it grew all run long, a cache miss and a rehash
/// at a time). Triples outside the array's range go to the set.
struct DeliveredOnce {
    homes: u32,
    clients: u32,
    below: Vec<u64>,
    above: HashSet<(u32, u32, u64), IdHasher>,
}

impl DeliveredOnce {
    fn new(homes: u32, clients: u32) -> Self {
        let len = homes as usize * clients as usize;
        Self { homes, clients, below: vec![0; len], above: HashSet::default() }
    }

    /// Whether `(home, client, dn)` is delivered for the first time (it is
    /// remembered: a second call with it answers `false`).
    fn first(&mut self, home: u32, client: u32, dn: u64) -> bool {
        if home >= self.homes || client >= self.clients {
            return self.above.insert((home, client, dn));
        }
        let Some(below) = self.below.get_mut(home as usize * self.clients as usize + client as usize) else {
            return self.above.insert((home, client, dn));
        };
        if dn < *below {
            return false;
        }
        if dn > *below {
            return self.above.insert((home, client, dn));
        }
        // `dn` is the client's lowest number not delivered yet (never in
        // `above`, which only holds numbers above `below`).
        *below += 1;
        while !self.above.is_empty() && self.above.remove(&(home, client, *below)) {
            *below += 1;
        }
        true
    }
}

/// A client of this replica: one transaction in flight.
struct Client {
    /// Its delivered transactions so far (π^τ's `DN_c`).
    dn: u64,
    /// `e_c^new` of its last delivered transaction.
    last_next: u64,
    sent_at: Option<Instant>,
}

/// Signs a transaction of `key` in π^τ epoch `e_c` and returns it with
/// its encoding and its τ recipients.
#[allow(clippy::too_many_arguments)]
fn client_tx(
    key: &ClientKey,
    home: u32,
    client: u32,
    honest: bool,
    dn: u64,
    e_c: u64,
    prev: &Hash32,
    n: u32,
    tau: u32,
    pad: usize,
    opaque: bool,
) -> (LbftTx, Vec<u8>, Vec<u32>) {
    let req = Request { submitted_us: now_us(), home, client, honest, pad: vec![0u8; pad] };
    let tx = if opaque || matches!(key, ClientKey::Opaque(_)) {
        LbftTx {
            epoch: e_c,
            client: key.public(),
            request: encode(&req),
            delivery_number: dn,
            next_epoch: e_c + 1,
            signature: EdSignature([0; 64]),
        }
    } else {
        match key {
            ClientKey::Signing(k) => LbftTx::sign(k, e_c, encode(&req), dn, e_c + 1),
            ClientKey::Opaque(_) => unreachable!("handled above"),
        }
    };
    let to = array_function(&nonce_value(dn, &key.public(), prev), n, tau);
    let raw = encode(&tx);
    (tx, raw, to)
}

/// One client transaction for the signer thread to make.
struct Order {
    client: u32,
    honest: bool,
    dn: u64,
    e_c: u64,
    /// `h^(e_c − 1)`, for the recipients (F^A).
    prev: Hash32,
}

/// The signer thread: this replica's clients sign their transactions
/// and send them to their τ recipients (this replica's own share goes
/// through the verifier like anyone else's).
struct Signer {
    me: u32,
    n: u32,
    tau: u32,
    pad: usize,
    opaque: bool,
    client_keys: Vec<ClientKey>,
    flooders: Vec<ClientKey>,
}

impl Signer {
    fn run(self, orders: mpsc::Receiver<Vec<Order>>, net: &gridledger_net::Network, own: &mpsc::Sender<Work>) {
        let n = self.n as usize;
        while let Ok(first) = orders.recv() {
            let mut outbox: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
            for o in std::iter::once(first).chain(orders.try_iter()).flatten() {
                let keys = if o.honest { &self.client_keys } else { &self.flooders };
                let Some(key) = keys.get(o.client as usize) else { continue };
                let opaque = self.opaque && o.honest;
                let (_, raw, to) = client_tx(
                    key, self.me, o.client, o.honest, o.dn, o.e_c, &o.prev, self.n, self.tau, self.pad, opaque,
                );
                for r in to {
                    if let Some(b) = outbox.get_mut(r as usize) {
                        b.push(raw.clone());
                    }
                }
            }
            for (r, txs) in outbox.into_iter().enumerate() {
                if txs.is_empty() {
                    continue;
                }
                let body = encode(&txs);
                if r as u32 == self.me {
                    if own.send(Work::Clients(body)).is_err() {
                        return;
                    }
                } else {
                    let mut bytes = Vec::with_capacity(1 + body.len());
                    bytes.push(WIRE_TXS);
                    bytes.extend(body);
                    let _ = net.send(r as u32, bytes);
                }
            }
        }
    }
}

/// A client transaction after the verifier thread: decoded, its id, and
/// whether its signature holds (not checked when opaque).
struct Checked {
    tx: LbftTx,
    raw: Vec<u8>,
    id: Hash32,
    sig_ok: bool,
}

/// What the verifier thread is given.
enum Work {
    /// Clients' transactions (an encoded `Vec<Vec<u8>>`): checked and
    /// handed back for admission to the batch policy.
    Clients(Vec<u8>),
    /// The transactions of a peer's batch, as its proposal (or a fetched
    /// or synced certified batch) arrives: checked ahead of the epoch's
    /// decision, so delivery finds their verdicts ready.
    Batch(Vec<Tx>),
}

/// What the verifier thread hands back.
#[derive(Default)]
struct Verdicts {
    /// Clients' transactions, for admission.
    admit: Vec<Checked>,
    /// Verdicts on batch transactions, by transaction id.
    verdicts: Vec<(Hash32, bool)>,
}

/// Signature verdicts by transaction id ([`tx_id`] of the transaction's
/// bytes, which the signature covers), so each signature is checked once
/// per replica however often its transaction arrives (from its client, in
/// a proposal, fetched, synced). Bounded: past `cap` entries the oldest
/// are forgotten (a forgotten one is checked again if it comes back).
///
/// The key must be the digest of the whole transaction: a verdict keyed
/// by anything less (the client's key, the request) would lend one
/// transaction's verdict to a forgery that shares it.
pub struct VerdictCache {
    key: KeyFn,
    map: std::collections::HashMap<Hash32, bool>,
    order: VecDeque<Hash32>,
    cap: usize,
    /// Signatures actually checked (cache misses).
    pub checks: u64,
    /// Verdicts served from the cache.
    pub hits: u64,
    /// Batch equations evaluated.
    pub batches: u64,
    /// Signatures checked one at a time because their batch failed.
    pub single_checks: u64,
}

/// How a [`VerdictCache`] keys a transaction (its bytes, decoded).
pub type KeyFn = fn(&[u8], &LbftTx) -> Hash32;

impl VerdictCache {
    pub fn new(cap: usize) -> Self {
        Self::keyed_by(cap, |raw, _| tx_id(raw))
    }

    /// A cache with another key: only for the tests that show a wrong key
    /// is caught.
    pub fn keyed_by(cap: usize, key: KeyFn) -> Self {
        Self {
            key,
            map: Default::default(),
            order: VecDeque::new(),
            cap: cap.max(1),
            checks: 0,
            hits: 0,
            batches: 0,
            single_checks: 0,
        }
    }

    /// Verdicts for `raws` (decoded as [`LbftTx`]; an undecodable one is
    /// refused), checking only those not seen before, each once even if it
    /// appears twice in `raws`, with Ed25519 batch equations over all cores
    /// ([`verify_batch`]): one bad signature costs single checks of its
    /// chunk only, and refuses only its own transaction.
    pub fn check(&mut self, raws: &[Vec<u8>]) -> Vec<(Hash32, Option<LbftTx>, bool)> {
        let mut out: Vec<(Hash32, Option<LbftTx>, bool)> = Vec::with_capacity(raws.len());
        // Index into `out` of each transaction to check, first occurrence only.
        let mut todo: Vec<usize> = Vec::new();
        let mut first: std::collections::HashMap<Hash32, usize> = Default::default();
        for raw in raws {
            let tx = decode::<LbftTx>(raw, 4_096).ok();
            let id = match &tx {
                Some(t) => (self.key)(raw, t),
                None => tx_id(raw),
            };
            let cached = self.map.get(&id).copied();
            let ok = match (&tx, cached) {
                (None, _) => false,
                (Some(_), Some(v)) => {
                    self.hits += 1;
                    v
                }
                (Some(_), None) => {
                    if first.insert(id, out.len()).is_none() {
                        todo.push(out.len());
                    } else {
                        self.hits += 1;
                    }
                    false
                }
            };
            out.push((id, tx, ok));
        }
        // `todo` holds only decoded transactions (undecodable ones are refused above).
        let digests: Vec<Hash32> = todo.iter().filter_map(|&i| out[i].1.as_ref().map(LbftTx::signing_digest)).collect();
        let items: Vec<EdItem<'_>> = todo
            .iter()
            .zip(&digests)
            .filter_map(|(&i, dg)| out[i].1.as_ref().map(|t| EdItem { pk: &t.client, msg: &dg.0, sig: &t.signature }))
            .collect();
        self.checks += items.len() as u64;
        // Batch equations; a failing chunk is checked singly to find the
        // bad signatures (only they are refused).
        let v = verify_batch(&items);
        self.batches += v.batches;
        self.single_checks += v.single_checks;
        for (&i, ok) in todo.iter().zip(v.ok) {
            let id = out[i].0;
            self.insert(id, ok);
        }
        for o in &mut out {
            if let (Some(_), Some(&v)) = (&o.1, self.map.get(&o.0)) {
                o.2 = v;
            }
        }
        out
    }

    fn insert(&mut self, id: Hash32, ok: bool) {
        if self.map.insert(id, ok).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// The verifier thread: decodes the transactions it is given (clients'
/// from peers and from this replica's own clients, and peers' batches as
/// their proposals arrive) and checks each signature once
/// ([`VerdictCache`]), in parallel batches of everything that is waiting.
fn verifier(
    work: mpsc::Receiver<Work>,
    out: mpsc::Sender<Verdicts>,
    wake: mpsc::Sender<Input>,
    opaque: bool,
    checks: &[std::sync::atomic::AtomicU64; 3],
) {
    let mut cache = VerdictCache::new(1 << 21);
    while let Ok(first) = work.recv() {
        // (raw, is a client's transaction)
        let mut raws: Vec<Vec<u8>> = Vec::new();
        let mut client: Vec<bool> = Vec::new();
        for w in std::iter::once(first).chain(work.try_iter().take(63)) {
            match w {
                Work::Clients(body) => {
                    if let Ok(txs) = decode::<Vec<Vec<u8>>>(&body, 64 << 20) {
                        client.extend(std::iter::repeat_n(true, txs.len()));
                        raws.extend(txs);
                    }
                }
                Work::Batch(txs) => {
                    client.extend(std::iter::repeat_n(false, txs.len()));
                    raws.extend(txs);
                }
            }
        }
        let mut v = Verdicts::default();
        if opaque {
            for (raw, c) in raws.into_iter().zip(client) {
                if !c {
                    continue;
                }
                if let Ok(tx) = decode::<LbftTx>(&raw, 4_096) {
                    v.admit.push(Checked { id: tx_id(&raw), tx, raw, sig_ok: true });
                }
            }
        } else {
            let results = cache.check(&raws);
            for (c, v) in checks.iter().zip([cache.checks, cache.batches, cache.single_checks]) {
                c.store(v, std::sync::atomic::Ordering::Relaxed);
            }
            for ((raw, c), (id, tx, ok)) in raws.into_iter().zip(client).zip(results) {
                match (c, tx) {
                    (true, Some(tx)) => v.admit.push(Checked { tx, raw, id, sig_ok: ok }),
                    (true, None) => {}
                    (false, _) => v.verdicts.push((id, ok)),
                }
            }
        }
        if out.send(v).is_err() {
            return;
        }
        let _ = wake.send(Input::Wake);
    }
}

/// What a restarted replica replays of the epochs its log says it
/// delivered, under the live path's rule (a delivered transaction counts
/// only with a verdict that its signature verifies): one whose signature
/// does not verify — a Byzantine proposer's forgery — advances neither
/// π^τ's client state nor its client's delivery number. The log holds
/// batches, not verdicts, so each signature is checked again here, in
/// batch equations over all cores ([`VerdictCache`]); `opaque` runs check
/// none, live or here. Returns how many transactions were refused so.
fn replay_delivered(
    delivered: &[DeliveredEpoch<Sig>],
    opaque: bool,
    me: u32,
    clients: &mut [Client],
    pool: &mut Pool,
    hashes: &mut BTreeMap<u64, Hash32>,
) -> u64 {
    let mut cache = VerdictCache::new(1 << 21);
    let mut refused = 0u64;
    for d in delivered {
        let raw: Vec<Tx> = d.batches.iter().flat_map(|b| b.batch.txs.iter().cloned()).collect();
        let ids: Vec<Hash32> = d.batches.iter().flat_map(|b| b.batch.txs.ids().iter().copied()).collect();
        let decoded: Vec<Option<LbftTx>> = if opaque {
            raw.iter().map(|t| decode::<LbftTx>(t, 4_096).ok()).collect()
        } else {
            cache
                .check(&raw)
                .into_iter()
                .map(|(_, tx, ok)| {
                    refused += u64::from(tx.is_some() && !ok);
                    tx.filter(|_| ok)
                })
                .collect()
        };
        let txs: Vec<Arc<LbftTx>> = decoded.into_iter().flatten().map(Arc::new).collect();
        for t in &txs {
            if let Ok(r) = decode::<Request>(&t.request, 4_096) {
                if r.honest && r.home == me {
                    if let Some(c) = clients.get_mut(r.client as usize) {
                        if t.delivery_number == c.dn {
                            c.dn += 1;
                            c.last_next = t.next_epoch;
                        }
                    }
                }
            }
        }
        pool.delivered(d.epoch, d.block_hash(), &txs, &ids);
        hashes.insert(d.epoch + 1, d.block_hash());
    }
    refused
}

/// One round of the replica loop for the persister: its writes, then its
/// messages.
struct Outgoing {
    seq: u64,
    ops: Vec<PersistOp<Sig>>,
    msgs: Vec<(Target, Message<NodeShare, Sig>)>,
}

/// The persister thread: group commit off the replica loop. It takes every
/// round waiting, appends their writes as one fsynced record, then sends
/// their messages in order and marks them durable (`durable`). Messages
/// never leave before the writes of their round and of every earlier
/// round; the loop does not wait for the disk meanwhile. A failed write
/// ends the replica (nothing after it is sent).
fn persister(
    rounds: mpsc::Receiver<Outgoing>,
    mut disk: Option<DiskLog>,
    net: &gridledger_net::Network,
    durable: &std::sync::atomic::AtomicU64,
    stats: &PersistStats,
    wake: mpsc::Sender<Input>,
) {
    use std::sync::atomic::Ordering::{Relaxed, Release};
    while let Ok(first) = rounds.recv() {
        let mut batch: Vec<Outgoing> = std::iter::once(first).chain(rounds.try_iter()).collect();
        let ops: Vec<PersistOp<Sig>> = batch.iter_mut().flat_map(|o| std::mem::take(&mut o.ops)).collect();
        if let (Some(log), false) = (disk.as_mut(), ops.is_empty()) {
            let t = Instant::now();
            match log.append(&ops) {
                Ok(true) => stats.over_zeros.fetch_add(1, Relaxed),
                Ok(false) => 0,
                Err(e) => {
                    eprintln!("lbft replica: writing its log failed: {e}");
                    std::process::exit(1);
                }
            };
            let delivers = ops.iter().any(|op| matches!(op, PersistOp::Delivered(_)));
            let kind = if delivers {
                &stats.with_delivery
            } else if ops.iter().any(|op| matches!(op, PersistOp::Proposed { .. })) {
                &stats.with_proposal
            } else {
                &stats.echo_or_vote_only
            };
            if delivers {
                if let Some(marker) = log.delivered_marker.take() {
                    // Only a signal to the bench driver; the delivery itself
                    // is in the record just written.
                    let _ = std::fs::write(marker, b"");
                }
            }
            kind.fetch_add(1, Relaxed);
            stats.records.fetch_add(1, Relaxed);
            if log.fsync {
                stats.fsyncs.fetch_add(1, Relaxed);
            }
            let us = t.elapsed().as_micros() as u64;
            stats.write_us.fetch_add(us, Relaxed);
            stats.record_us.lock().unwrap_or_else(|p| p.into_inner()).push(us);
        }
        let wrote = !ops.is_empty();
        for o in batch {
            send_messages(net, o.msgs);
            durable.store(o.seq, Release);
        }
        if wrote {
            // Delivered epochs of these rounds can be applied now.
            let _ = wake.send(Input::Wake);
        }
    }
}

/// Encodes and sends one round's messages, in order.
fn send_messages(net: &gridledger_net::Network, msgs: Vec<(Target, LbftMessage)>) {
    for (to, m) in msgs {
        // Sized exactly first: a batch's message (a megabyte at 4,000
        // transactions) grew from 64 bytes by doubling, a dozen
        // reallocations.
        let mut bytes = Vec::with_capacity(1 + borsh::object_length(&m).unwrap_or(63));
        bytes.push(WIRE_CONSENSUS);
        // Encoded into the tagged buffer directly (no second copy of a batch).
        let _ = borsh::to_writer(&mut bytes, &m);
        let _ = match to {
            Target::All => net.broadcast(bytes),
            Target::One(i) => net.send(i, bytes),
        };
    }
}

type LbftMessage = Message<NodeShare, Sig>;

/// What the persister wrote: records, fsyncs (records unless
/// `--no-fsync`), microseconds spent writing (and syncing), and records by
/// what they carry: a delivered epoch; else a proposal; else only echo or
/// vote bounds (`VotedIn`) or older-format echoes.
#[derive(Default)]
struct PersistStats {
    records: std::sync::atomic::AtomicU64,
    fsyncs: std::sync::atomic::AtomicU64,
    write_us: std::sync::atomic::AtomicU64,
    with_delivery: std::sync::atomic::AtomicU64,
    with_proposal: std::sync::atomic::AtomicU64,
    echo_or_vote_only: std::sync::atomic::AtomicU64,
    /// Records written over the log's synced zeros (the rest extended the
    /// file: see [`DiskLog`]).
    over_zeros: std::sync::atomic::AtomicU64,
    /// Each record's write and sync, in microseconds (for the tail).
    record_us: std::sync::Mutex<Vec<u64>>,
}

/// CPU seconds this process spent so far, by thread role, from
/// `/proc/self/task/*/stat` (utime + stime in USER_HZ = 100 ticks/s):
/// `verify`, `sign`, `persist`, `order` (the consensus loop), `net` and
/// `other`. Empty where /proc is not there.
fn cpu_split() -> BTreeMap<&'static str, f64> {
    let mut out: BTreeMap<&'static str, f64> = BTreeMap::new();
    let main_tid = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return out };
    for e in dir.flatten() {
        let tid = e.file_name().to_string_lossy().into_owned();
        let (Ok(comm), Ok(stat)) =
            (std::fs::read_to_string(e.path().join("comm")), std::fs::read_to_string(e.path().join("stat")))
        else {
            continue;
        };
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let comm = comm.trim();
        let role = if comm.starts_with("lbft-verif") {
            "verify"
        } else if comm == "lbft-signer" {
            "sign"
        } else if comm == "lbft-persister" || comm == "lbft-log-fill" {
            "persist"
        } else if tid == main_tid {
            "order"
        } else if comm.starts_with("tokio") {
            "net"
        } else {
            "other"
        };
        *out.entry(role).or_insert(0.0) += ticks as f64 / 100.0;
    }
    out
}

/// Hands a peer's batch (in a proposal, a fetched certified batch or a
/// synced epoch) to the verifier as it arrives.
fn prefetch_batch(to: &mpsc::Sender<Work>, m: &Message<NodeShare, Sig>) {
    let txs: Vec<Tx> = match m {
        Message::Val { batch, .. } => batch.txs.to_vec(),
        Message::Certified { batch, .. } => batch.batch.txs.to_vec(),
        Message::Sync { delivered } => delivered.batches.iter().flat_map(|b| b.batch.txs.iter().cloned()).collect(),
        _ => return,
    };
    if !txs.is_empty() {
        let _ = to.send(Work::Batch(txs));
    }
}

/// One replica process.
pub fn replica(a: LbftReplicaArgs) -> anyhow::Result<()> {
    let file: ReplicaFile = decode(&std::fs::read(&a.config)?, 1 << 20)?;
    let n = file.n as usize;
    let me = file.index;
    let coin_pk = std::sync::Arc::new(PublicKeySet::from_bytes(&file.coin_keys)?);
    let crypto = NodeCrypto::try_new(
        std::sync::Arc::new(file.echo_keys.clone()),
        coin_pk,
        me,
        file.echo_secret,
        KeyShare::from_bytes(&file.coin_share)?,
    )?;
    // Client keys first: deriving thousands takes a while, and the
    // measured window starts once the network is up.
    let n_clients = (file.rate * 4 + 64).min(1 << 20) as u32;
    let mut clients: Vec<Client> = (0..n_clients).map(|_| Client { dn: 0, last_next: 0, sent_at: None }).collect();
    let client_keys: Vec<ClientKey> = (0..n_clients)
        .map(|k| {
            if file.opaque {
                ClientKey::Opaque(opaque_client(me, k))
            } else {
                ClientKey::Signing(Box::new(client_key(me, k, true)))
            }
        })
        .collect();
    let flooders: Vec<ClientKey> = (0..16).map(|k| ClientKey::Signing(Box::new(client_key(me, k, false)))).collect();
    let n_flooders = flooders.len() as u64;
    let peers: Vec<gridledger_net::PeerConfig> = (0..n as u32)
        .map(|i| gridledger_net::PeerConfig {
            index: i,
            public_key: validator_key(i).public(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], file.ports[i as usize])),
        })
        .collect();
    let mut net_cfg = gridledger_net::NetworkConfig::new(INSTANCE, me, peers);
    net_cfg.max_frame = 32 << 20;
    net_cfg.outbound_queue = 1 << 16;
    net_cfg.inbound_queue = 1 << 14;
    net_cfg.inbound_bytes = 512 << 20;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (net, mut inbound) = rt.block_on(gridledger_net::Network::start(net_cfg, validator_key(me)))?;
    let others: Vec<u32> = (0..n as u32).filter(|&i| i != me).collect();
    anyhow::ensure!(rt.block_on(net.wait_connected(&others, Duration::from_secs(30))), "peers did not connect");
    // Two inboxes: consensus messages are handled before clients'
    // transactions, so a backlog of admissions never delays an epoch.
    let (cons_in, cons_rx) = mpsc::channel::<Input>();
    let cons_in_for_persister = cons_in.clone();
    // Clients' transactions go to the verifier thread, which checks their
    // signatures in parallel batches and hands them to this loop checked:
    // signing and verifying never delay a consensus step (a loop busy with
    // them held every step's messages back, and above ≈2,000 offered tx/s
    // an epoch took longer than the load it had to order).
    let (txs_in, verify_rx) = mpsc::channel::<Work>();
    let (checked_in, txs_rx) = mpsc::channel::<Verdicts>();
    // Peers' batches go to the same verifier as their proposals arrive.
    let prefetch = txs_in.clone();
    let opaque = file.opaque;
    // Signatures checked, batch equations, single checks.
    let sig_checks = Arc::new([0u64; 3].map(std::sync::atomic::AtomicU64::new));
    // The verifier's batches run on rayon's pool: named, so the report's
    // CPU split can tell verification from the rest.
    let _ = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("lbft-verify-{i}")).build_global();
    {
        let sig_checks = sig_checks.clone();
        let wake = cons_in.clone();
        std::thread::Builder::new()
            .name("lbft-verifier".into())
            .spawn(move || verifier(verify_rx, checked_in, wake, opaque, &sig_checks))?;
    }
    let net = Arc::new(net);
    let own_txs = txs_in.clone();
    let (order_in, order_rx) = mpsc::channel::<Vec<Order>>();
    {
        let net = net.clone();
        let signer = Signer { me, n: file.n, tau: file.tau, pad: pad_len(), opaque, client_keys, flooders };
        std::thread::Builder::new().name("lbft-signer".into()).spawn(move || signer.run(order_rx, &net, &own_txs))?;
    }
    let debug_net = std::env::var_os("GRIDLEDGER_BENCH_DEBUG").is_some();
    rt.spawn(async move {
        while let Some((from, bytes)) = inbound.recv().await {
            let sent = match bytes.first() {
                Some(&WIRE_TXS) => txs_in.send(Work::Clients(bytes[1..].to_vec())).is_ok(),
                Some(&WIRE_CONSENSUS) => match decode::<LbftMessage>(&bytes[1..], 64 << 20) {
                    Ok(m) => cons_in.send(Input::Peer(from, m)).is_ok(),
                    Err(e) => {
                        if debug_net {
                            eprintln!("replica {me}: undecodable from {from}: {e}");
                        }
                        true
                    }
                },
                _ => true,
            };
            if !sent {
                break;
            }
        }
    });
    let started = Instant::now();
    // Transactions submitted in [window_start, window_end) are measured,
    // whenever (before the run ends) they are delivered.
    let window_start = now_us() + 1_000_000;
    let window_end = window_start + file.seconds * 1_000_000;
    let warmup = Duration::from_secs(1);
    let measure_end = warmup + Duration::from_secs(file.seconds);
    let end = measure_end + Duration::from_secs(2);
    let mut cfg = Config::new(n, me, INSTANCE);
    // Retransmission is for lost messages, not slow epochs: a tick well
    // above an epoch's duration keeps big batches from being re-sent.
    cfg.tick = TICK_MS;
    cfg.max_batch_txs = file.batch as usize;
    cfg.max_tx_bytes = 1_024;
    cfg.window = 8;
    cfg.pipeline = file.pipeline;
    // No store behind the bench replicas: keep every epoch of the run in
    // memory so a replica that fell behind can still catch up from peers.
    cfg.retain = 100_000;
    let (disk, durable) = match &a.data_dir {
        Some(dir) => {
            let ahead = if file.log_append { None } else { Some(FILL_AHEAD) };
            let (log, d) = DiskLog::open_with(dir, file.fsync, ahead)?;
            (Some(log), d)
        }
        None => (None, Durable::default()),
    };
    let mut epoch_digests: Vec<String> = durable.delivered.iter().map(epoch_digest).collect();
    let restored_epochs = epoch_digests.len();
    let mut pool = Pool::new(&file)?;
    let nn = file.n;
    // Clients: enough for four seconds of this replica's load in flight.
    // h^(e) by π^τ epoch (h^(0) is the genesis hash).
    let mut hashes: BTreeMap<u64, Hash32> = BTreeMap::from([(0, INSTANCE)]);
    // A restarted replica replays what it delivered before the crash.
    replay_delivered(&durable.delivered, file.opaque, me, &mut clients, &mut pool, &mut hashes);
    let mut edge = Edge::new(n_clients, file.max_in_flight as usize);
    // A log the replica cannot take up (another digest version, an
    // inexact duplicate window) stops the replica with the reason.
    let mut replica =
        Replica::try_new(cfg, crypto, durable).map_err(|e| anyhow::anyhow!("restoring the replica's log: {e}"))?;
    // Signature verdicts the verifier thread handed back, by transaction id
    // (until the transaction is delivered).
    let mut verdicts: IdMap<bool> = IdMap::default();
    // Epochs the replica delivered whose transactions' verdicts are not all
    // back yet: applied in order once they are, while consensus goes on.
    // (delivery, ids, when the replica delivered it, verdicts asked for)
    // (delivery, ids, verdicts asked for, persister round that makes it durable)
    let mut held: VecDeque<(Delivery, Vec<Hash32>, bool, u64)> = VecDeque::new();
    let (mut ready_at_decision, mut decided_txs) = (0u64, 0u64);
    let mut epoch_gaps_us: Vec<u64> = Vec::new();
    let mut last_delivery: Option<Instant> = None;
    // Rounds handed to the persister; the last one durable (and sent).
    let mut submitted_seq = 0u64;
    let durable_seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let fsync_stats = Arc::new(PersistStats::default());
    let (persist_in, persist_rx) = mpsc::channel::<Outgoing>();
    let persister_wake = cons_in_for_persister;
    {
        let (net, durable_seq, fsync_stats) = (net.clone(), durable_seq.clone(), fsync_stats.clone());
        std::thread::Builder::new()
            .name("lbft-persister".into())
            .spawn(move || persister(persist_rx, disk, &net, &durable_seq, &fsync_stats, persister_wake))?;
    }
    let mut latencies: Vec<u64> = Vec::new();
    let mut delivered_unique = 0u64;
    // Honest transactions delivered (whenever submitted) while measuring,
    // and the process's CPU split at the window's start and end: CPU per
    // delivered transaction over the same span.
    let mut delivered_while_measuring = 0u64;
    let mut cpu_at_start: BTreeMap<&'static str, f64> = BTreeMap::new();
    let mut cpu_at_end: BTreeMap<&'static str, f64> = BTreeMap::new();
    // Rounds with no writes sent straight from this loop (the persister
    // idle and every earlier round already out).
    let mut sent_direct = 0u64;
    // Messages that committed to nothing new, sent before any fsync.
    let mut sent_free = 0u64;
    let mut aba_rounds = [0u64; 4];
    let mut flood_delivered = 0u64;
    // Keyed hashing as for transaction ids (see `IdHasher`).
    // Honest transactions delivered (by home, client, delivery number).
    let mut seen = DeliveredOnce::new(file.n, n_clients);
    let mut flood_seen: IdSet = IdSet::default();
    let mut bad_sigs = 0u64;
    let mut epochs = 0u64;
    let mut pending_batch: Option<u64> = None;
    let mut propose_at: Option<Instant> = None;
    let mut next_tick = Instant::now() + Duration::from_millis(TICK_MS);
    let mut next_load = Instant::now();
    let mut next_retry_scan = Instant::now() + CLIENT_RETRY;
    let (mut issued, mut flooded, mut kept) = (0u64, 0u64, 0u64);
    // Transactions offered by this replica's clients (issued or refused at
    // the edge), and arrivals the batch source refused, by reason.
    let mut offered = 0u64;
    let (mut pool_full, mut pool_duplicate) = (0u64, 0u64);
    let load_start = Instant::now();
    let mut bytes_at_start = 0u64;
    let mut bytes_at_end = 0u64;
    let mut measuring = false;
    let debug = std::env::var_os("GRIDLEDGER_BENCH_DEBUG").is_some();
    let mut next_debug = Instant::now();
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut sent_kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut steps: Vec<Step<_, _>> = vec![replica.start()];
    // Proposals made in the round of the delivery before them.
    let mut merged_proposals = 0u64;
    loop {
        // A step that asks for the next epoch's batch (it delivered the
        // epoch before) gets it in this same round, when the FIFO source has
        // transactions: the delivery and the proposal share one fsynced
        // record instead of two in a row (each fsync is on the epoch's
        // critical path; under disk contention one took 6–56 ms). Only FIFO:
        // the π^τ policies cut their batch from the delivered epoch's hash,
        // which they learn once the delivery is applied.
        if matches!(pool, Pool::Fifo(_)) && pool.held() > 0 && pending_batch.is_none() {
            if let Some(e) = steps.iter().filter_map(|s| s.need_batch).max() {
                for s in steps.iter_mut() {
                    s.need_batch = None;
                }
                merged_proposals += 1;
                let b = pool.next_batch(e);
                steps.push(replica.propose_txs_at(e, b, 0));
            }
        }
        // Process steps: persist, send, deliver, ask for batches.
        // Group commit: the steps gathered since the last round are
        // persisted in one fsynced record, then their messages leave.
        let batch: Vec<Step<NodeShare, NodeSig>> = std::mem::take(&mut steps);
        // The round's writes and messages go to the persister thread, which
        // writes them (one fsynced record for everything waiting) before
        // the messages leave; this loop goes on meanwhile. Its deliveries
        // count once their record is durable.
        let mut out = Outgoing { seq: 0, ops: Vec::new(), msgs: Vec::new() };
        for s in batch.iter() {
            for op in &s.persist {
                if let PersistOp::Delivered(d) = op {
                    epoch_digests.push(epoch_digest(d));
                }
            }
            if debug {
                for (_, m) in &s.messages {
                    *sent_kinds.entry(m.kind()).or_insert(0u64) += 1;
                }
            }
        }
        let mut batch = batch;
        // Messages that commit this replica to nothing new (certificates,
        // coin shares, fetches and their answers, sync requests:
        // `Replica::must_sync_before_sending`) leave now, before the fsync
        // in flight and this round's; the rest wait for this round's writes
        // and every earlier round's. A certificate no longer waits for the
        // proposer's own `BVal` record, written in the step that made it.
        let mut free: Vec<(Target, LbftMessage)> = Vec::new();
        for s in batch.iter() {
            for (_, m) in &s.messages {
                if let Message::Aba { round, .. } = m {
                    aba_rounds[(*round as usize).min(3)] += 1;
                }
            }
        }
        for s in batch.iter_mut() {
            out.ops.append(&mut s.persist);
            for (to, m) in s.messages.drain(..) {
                if replica.must_sync_before_sending(&m) {
                    out.msgs.push((to, m));
                } else {
                    free.push((to, m));
                }
            }
        }
        if !free.is_empty() {
            sent_free += free.len() as u64;
            send_messages(&net, free);
        }
        let round_seq = if out.ops.is_empty() && out.msgs.is_empty() {
            submitted_seq
        } else if out.ops.is_empty() && durable_seq.load(std::sync::atomic::Ordering::Acquire) == submitted_seq {
            // Nothing to write and the persister has sent every earlier
            // round: these messages may leave now, from here, without a
            // hop through the persister thread (on an oversubscribed
            // machine each thread hand-off waits for a core, and an epoch
            // has half a dozen rounds of echoes and votes).
            sent_direct += 1;
            send_messages(&net, out.msgs);
            submitted_seq
        } else {
            submitted_seq += 1;
            out.seq = submitted_seq;
            if persist_in.send(out).is_err() {
                anyhow::bail!("the persister stopped");
            }
            submitted_seq
        };
        for s in batch {
            for mut d in s.delivered {
                // Hashed once, by the replica's duplicate suppression.
                let ids: Vec<Hash32> = std::mem::take(&mut d.ids);
                if !file.opaque {
                    ready_at_decision += ids.iter().filter(|id| verdicts.contains_key(id)).count() as u64;
                    decided_txs += ids.len() as u64;
                }
                let at = Instant::now();
                if let Some(prev) = last_delivery.replace(at) {
                    epoch_gaps_us.push(at.duration_since(prev).as_micros() as u64);
                }
                // h^e is known now (the decision), whatever the verdicts.
                hashes.insert(d.epoch + 1, d.block_hash());
                while hashes.len() > 64 {
                    hashes.pop_first();
                }
                held.push_back((d, ids, false, round_seq));
            }
            if let Some(e) = s.need_batch {
                pending_batch = Some(e);
                // Empty proposals wait a little so idle epochs do not spin.
                propose_at =
                    Some(if pool.held() > 0 { Instant::now() } else { Instant::now() + Duration::from_millis(20) });
            }
        }
        // Apply delivered epochs, in order, whose verdicts are all back.
        while let Some((d, ids, asked, seq)) = held.front_mut() {
            if *seq > durable_seq.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            if !file.opaque {
                let missing: Vec<Tx> = ids
                    .iter()
                    .zip(&d.txs)
                    .filter(|(id, _)| !verdicts.contains_key(id))
                    .map(|(_, t)| t.clone())
                    .collect();
                if !missing.is_empty() {
                    // Normally already on their way (checked as the batch
                    // arrived); a batch learnt otherwise is asked for once
                    // (the verifier's cache answers what it checked).
                    if !*asked {
                        *asked = true;
                        let _ = prefetch.send(Work::Batch(missing));
                    }
                    break;
                }
            }
            let Some((d, ids, _, _)) = held.pop_front() else { break };
            epochs += 1;
            let now = now_us();
            // The FIFO source forgets delivered transactions by id alone:
            // only the π^τ policies are handed the decoded transactions.
            let decoded = !matches!(pool, Pool::Fifo(_));
            let mut good: Vec<Arc<LbftTx>> = Vec::with_capacity(if decoded { d.txs.len() } else { 0 });
            for (raw, &id) in d.txs.iter().zip(&ids) {
                let ok = file.opaque || verdicts.remove(&id).unwrap_or(false);
                if !ok {
                    bad_sigs += 1;
                    continue;
                }
                let Some(h) = TxHead::parse(raw) else {
                    // Not a bench request: no latency bookkeeping, but π^τ
                    // takes it as `replay_delivered` does.
                    if let Some(t) = decoded.then(|| decode::<LbftTx>(raw, 4_096).ok()).flatten() {
                        good.push(Arc::new(t));
                    }
                    continue;
                };
                let in_window = (window_start..window_end).contains(&h.submitted_us);
                if !h.honest {
                    if flood_seen.insert(id) && in_window {
                        flood_delivered += 1;
                    }
                } else if seen.first(h.home, h.client, h.delivery_number) {
                    if in_window {
                        delivered_unique += 1;
                        latencies.push(now.saturating_sub(h.submitted_us));
                    }
                    if measuring {
                        delivered_while_measuring += 1;
                    }
                    if h.home == me {
                        if let Some(c) = clients.get_mut(h.client as usize) {
                            if h.delivery_number == c.dn {
                                c.dn += 1;
                                c.last_next = h.next_epoch;
                                c.sent_at = None;
                                edge.delivered(h.client);
                            }
                        }
                    }
                }
                if decoded {
                    if let Ok(t) = decode::<LbftTx>(raw, 4_096) {
                        good.push(Arc::new(t));
                    }
                }
            }
            pool.delivered(d.epoch, d.block_hash(), &good, &ids);
        }
        let now = Instant::now();
        let elapsed = now.duration_since(started);
        if !measuring && elapsed >= warmup && elapsed < measure_end {
            measuring = true;
            cpu_at_start = cpu_split();
            bytes_at_start = net.stats().peers.iter().map(|p| p.sent_bytes).sum();
        }
        if measuring && elapsed >= measure_end {
            measuring = false;
            cpu_at_end = cpu_split();
            bytes_at_end = net.stats().peers.iter().map(|p| p.sent_bytes).sum();
        }
        if elapsed >= end {
            break;
        }
        if debug && now >= next_debug {
            next_debug = now + Duration::from_secs(1);
            eprintln!(
                "replica {me} t={:?} epoch {} pending_batch {pending_batch:?} held {} issued {issued} idle {} got {kinds:?} sent {sent_kinds:?}",
                elapsed,
                replica.epoch(),
                pool.held(),
                edge.idle()
            );
            eprintln!("replica {me} state {}", replica.summary());
        }
        // Clients: new transactions at the offered rates, every 10 ms.
        if now >= next_load && elapsed < measure_end {
            next_load = now + Duration::from_millis(10);
            let e_c = replica.epoch() + 1;
            let prev = hashes.get(&(e_c - 1)).copied().unwrap_or(INSTANCE);
            let us = load_start.elapsed().as_micros() as u64;
            // Only orders here (cheap); the signer thread signs and sends.
            let mut orders: Vec<Order> = Vec::new();
            let due = (us * file.rate / 1_000_000).saturating_sub(offered);
            offered += due;
            for _ in 0..due {
                // Admission control: refused (and counted) beyond the
                // window, not deferred.
                let Ok(k) = edge.offer() else { continue };
                let c = &mut clients[k as usize];
                c.sent_at = Some(now);
                orders.push(Order { client: k, honest: true, dn: c.dn, e_c: e_c.max(c.last_next), prev });
                issued += 1;
            }
            let due = (us * file.flood / 1_000_000).saturating_sub(flooded);
            for j in 0..due {
                let k = (flooded + j) % n_flooders;
                orders.push(Order { client: k as u32, honest: false, dn: FLOOD_DN + flooded + j, e_c, prev });
            }
            flooded += due;
            if now >= next_retry_scan {
                next_retry_scan = now + Duration::from_millis(500);
                for (k, c) in clients.iter_mut().enumerate() {
                    if c.sent_at.is_some_and(|t| now.duration_since(t) >= CLIENT_RETRY) {
                        c.sent_at = Some(now);
                        let e = e_c.max(c.last_next);
                        orders.push(Order { client: k as u32, honest: true, dn: c.dn, e_c: e, prev });
                    }
                }
            }
            if !orders.is_empty() {
                let _ = order_in.send(orders);
            }
        }
        if let (Some(e), Some(at)) = (pending_batch, propose_at) {
            if now >= at || pool.held() > 0 {
                pending_batch = None;
                propose_at = None;
                let batch = pool.next_batch(e);
                steps.push(replica.propose_txs_at(e, batch, 0));
                continue;
            }
        }
        if now >= next_tick {
            next_tick = now + Duration::from_millis(TICK_MS);
            steps.push(replica.handle_tick());
            continue;
        }
        // The load tick only while clients send (past the measured window
        // `next_load` stays behind: waiting on it spun every replica's loop
        // through the run's last two seconds, on the cores the late
        // deliveries needed).
        let load_due =
            if elapsed < measure_end { next_load.saturating_duration_since(now) } else { Duration::from_millis(10) };
        let wait = propose_at
            .map_or(Duration::from_millis(10), |at| at.saturating_duration_since(now))
            .min(load_due)
            .min(Duration::from_millis(10));
        let next = match cons_rx.try_recv() {
            Ok(m) => Ok(m),
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => match txs_rx.try_recv() {
                Ok(v) => {
                    for c in v.admit {
                        if !file.opaque {
                            verdicts.insert(c.id, c.sig_ok);
                        }
                        match pool.admit(c, nn, file.opaque) {
                            Ok(k) => kept += u64::from(k),
                            Err(Refused::QueueFull { .. }) => pool_full += 1,
                            Err(Refused::Duplicate | Refused::Delivered) => pool_duplicate += 1,
                        }
                    }
                    verdicts.extend(v.verdicts);
                    if verdicts.len() > 1 << 21 {
                        // Verdicts of transactions never delivered; a held
                        // epoch asks the verifier again (its cache answers).
                        verdicts.clear();
                        for h in held.iter_mut() {
                            h.2 = false;
                        }
                    }
                    continue;
                }
                // Blocks until a peer's message, a wake-up from the
                // verifier or the persister, or the next load tick.
                Err(_) => cons_rx.recv_timeout(wait),
            },
        };
        match next {
            Ok(Input::Peer(from, m)) => {
                if debug {
                    *kinds.entry(m.kind()).or_insert(0u64) += 1;
                }
                if !file.opaque {
                    prefetch_batch(&prefetch, &m);
                }
                let s = replica.handle_message(from, m);
                if debug && !s.faults.is_empty() {
                    eprintln!("replica {me} faults {:?}", s.faults);
                }
                steps.push(s);
                // Whatever else consensus has waiting joins this round
                // (one fsync for all of it).
                for input in cons_rx.try_iter().take(255) {
                    let Input::Peer(from, m) = input else { continue };
                    if debug {
                        *kinds.entry(m.kind()).or_insert(0u64) += 1;
                    }
                    if !file.opaque {
                        prefetch_batch(&prefetch, &m);
                    }
                    steps.push(replica.handle_message(from, m));
                }
            }
            Ok(Input::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    latencies.sort_unstable();
    epoch_gaps_us.sort_unstable();
    if cpu_at_end.is_empty() {
        cpu_at_end = cpu_split();
    }
    let cpu_window: BTreeMap<&'static str, f64> = cpu_at_end
        .iter()
        .map(|(k, v)| (*k, ((v - cpu_at_start.get(k).copied().unwrap_or(0.0)) * 100.0).round() / 100.0))
        .collect();
    let cpu_per_tx: BTreeMap<&'static str, f64> = cpu_window
        .iter()
        .map(|(k, v)| (*k, v * 1e6 / delivered_while_measuring.max(1) as f64))
        .chain(std::iter::once((
            "total",
            cpu_window.values().sum::<f64>() * 1e6 / delivered_while_measuring.max(1) as f64,
        )))
        .map(|(k, v)| (k, (v * 10.0).round() / 10.0))
        .collect();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let fsyncs = load(&fsync_stats.fsyncs);
    let records = load(&fsync_stats.records);
    let fsync_us = load(&fsync_stats.write_us);
    let mut record_us = std::mem::take(&mut *fsync_stats.record_us.lock().unwrap_or_else(|p| p.into_inner()));
    record_us.sort_unstable();
    let secs = file.seconds.max(1) as f64;
    let sent = bytes_at_end.saturating_sub(bytes_at_start) as f64;
    // The tail: what the slow epochs and records are made of.
    let tail = json!({
        "epoch_interval_ms_p90": percentile_ms(&epoch_gaps_us, 0.9),
        "epoch_interval_ms_p99": percentile_ms(&epoch_gaps_us, 0.99),
        "epoch_interval_ms_max": epoch_gaps_us.last().map_or(0.0, |&u| u as f64 / 1e3),
        "fsync_ms_p50": percentile_ms(&record_us, 0.5),
        "fsync_ms_p99": percentile_ms(&record_us, 0.99),
        "fsync_ms_max": record_us.last().map_or(0.0, |&u| u as f64 / 1e3),
        // Agreement votes this replica sent, by round (0, 1, 2, 3 and
        // later): rounds past 0 are agreements that did not decide at once.
        "aba_votes_by_round": aba_rounds,
    });
    let report = json!({
        "replica": me,
        "delivered_unique_tx_per_s": delivered_unique as f64 / secs,
        "flood_delivered_per_s": flood_delivered as f64 / secs,
        "latency_ms": { "p50": percentile_ms(&latencies, 0.5), "p99": percentile_ms(&latencies, 0.99) },
        "bytes_sent_per_delivered_tx": if delivered_unique > 0 { sent / delivered_unique as f64 } else { 0.0 },
        "epochs": epochs,
        "bad_signatures": bad_sigs,
        "signature_checks": sig_checks[0].load(std::sync::atomic::Ordering::Relaxed),
        "signature_batches": sig_checks[1].load(std::sync::atomic::Ordering::Relaxed),
        "signature_single_checks": sig_checks[2].load(std::sync::atomic::Ordering::Relaxed),
        // CPU seconds of this process by thread role (verify: the verifier
        // and its rayon pool; sign: the clients' signer; persist: the
        // log writer, which also sends, and its zero filler; order: the
        // consensus loop; net: the socket runtime).
        "cpu_s": cpu_split(),
        // The same split over the measured window only (the whole run's
        // figures include setting up clients' keys), and per honest
        // transaction delivered in that window, in microseconds.
        "cpu_s_window": cpu_window.clone(),
        "delivered_in_window": delivered_while_measuring,
        "cpu_us_per_delivered_tx": cpu_per_tx,
        "rounds_sent_direct": sent_direct,
        "messages_sent_before_sync": sent_free,
        "proposals_merged_with_delivery": merged_proposals,
        "fsyncs_per_epoch": if epochs > 0 { fsyncs as f64 / epochs as f64 } else { 0.0 },
        "records_per_epoch": if epochs > 0 { records as f64 / epochs as f64 } else { 0.0 },
        // Log records by what they carry (see PersistStats).
        "fsync_records": {
            "with_delivery": load(&fsync_stats.with_delivery),
            "with_proposal_only": load(&fsync_stats.with_proposal),
            "echo_or_vote_only": load(&fsync_stats.echo_or_vote_only),
        },
        "offered": offered,
        "issued": issued,
        // Offered load this replica's edge refused, by reason (admission
        // control: `backlog` = the window of transactions in flight was
        // full).
        "refused": { "backlog": edge.refused_backlog, "no_idle_client": edge.refused_no_idle_client },
        "in_flight_at_end": edge.in_flight(),
        "pool_refused": { "queue_full": pool_full, "duplicate": pool_duplicate },
        "flood_issued": flooded,
        // Arrivals (own clients' and peers') the policy kept.
        "admitted": kept,
        "held_at_end": pool.held(),
        // Of the transactions in delivered epochs, the share whose signature
        // verdict was already back when the replica decided the epoch (the
        // rest waited for the verifier; consensus did not).
        "verdicts_ready_at_decision": if decided_txs > 0 { ready_at_decision as f64 / decided_txs as f64 } else { 1.0 },
        "epoch_interval_ms_p50": percentile_ms(&epoch_gaps_us, 0.5),
        "tail": tail,
        "fsyncs": fsyncs,
        "records": records,
        // Records written over the log's synced zeros (the others
        // extended the file, each sync then committing its new size).
        "records_over_zeros": load(&fsync_stats.over_zeros),
        "crash_safe": file.fsync,
        // Mean time to write (and, unless --no-fsync, sync) one record.
        "fsync_ms_mean": if records > 0 { fsync_us as f64 / records as f64 / 1e3 } else { 0.0 },
        "fsync_busy_share": fsync_us as f64 / 1e6 / started.elapsed().as_secs_f64(),
        "restored_epochs": restored_epochs,
        "epoch_digests": epoch_digests,
    });
    println!("{}", serde_json::to_string(&report)?);
    // Peers may still be talking to us; leave without a drawn-out shutdown.
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_consensus::lbft::MultiSig;

    /// Small zeros ahead: a few pages, in steps of a page.
    const TEST_AHEAD: FillAhead = FillAhead { ahead: 3 * 4096, step: 4096 };

    /// Whether every byte of `path` from `from` on is zero.
    fn zeros_from(path: &std::path::Path, from: u64) -> bool {
        std::fs::read(path).expect("read")[from as usize..].iter().all(|&b| b == 0)
    }

    /// Three records (a proposal, an echo, a vote bound) as `append`
    /// writes them over synced zeros, and the log's end after each; the
    /// file holds [`TEST_AHEAD`]'s zeros after the last one.
    fn three_records(dir: &std::path::Path) -> (Vec<PersistOp<Sig>>, Vec<u64>) {
        let ops: Vec<PersistOp<Sig>> = vec![
            PersistOp::Proposed {
                epoch: 3,
                batch: gridledger_consensus::lbft::Batch::new(vec![vec![7u8; 300], vec![8u8; 300]]),
            },
            PersistOp::Echoed { epoch: 3, proposer: 1, digest: Hash32([5; 32]) },
            PersistOp::VotedIn { epoch: 3 },
        ];
        let (mut log, d) = DiskLog::open_with(dir, true, Some(TEST_AHEAD)).expect("open");
        assert_eq!(d, Durable::default());
        let mut ends = Vec::new();
        for op in &ops {
            log.fill.as_ref().expect("a synced log fills").settle(TEST_AHEAD);
            assert!(log.append(std::slice::from_ref(op)).expect("append"), "over zeros");
            ends.push(log.end);
        }
        log.fill.as_ref().expect("fills").settle(TEST_AHEAD);
        let path = dir.join("lbft.log");
        let len = std::fs::metadata(&path).expect("len").len();
        assert!(len >= log.end + TEST_AHEAD.ahead && zeros_from(&path, log.end), "zeros after the records");
        (ops, ends)
    }

    fn durable_of(ops: &[PersistOp<Sig>]) -> Durable<Sig> {
        let mut d = Durable::default();
        for op in ops {
            d.apply(op);
        }
        d
    }

    /// `TxHead::parse` reads what decoding the transaction and its request
    /// reads, and refuses what either decode refuses.
    #[test]
    fn a_transaction_head_reads_what_the_full_decode_reads() {
        let key = EdKeyPair::from_seed("head-client");
        let keys = [ClientKey::Opaque(opaque_client(2, 7)), ClientKey::Signing(Box::new(key))];
        for (key, honest) in keys.iter().zip([true, false]) {
            let (_, raw, _) = client_tx(key, 2, 7, honest, 5, 9, &INSTANCE, 4, 1, pad_len(), false);
            let t = decode::<LbftTx>(&raw, 4_096).expect("tx");
            let r = decode::<Request>(&t.request, 4_096).expect("request");
            let h = TxHead::parse(&raw).expect("head");
            assert_eq!(
                h,
                TxHead {
                    delivery_number: t.delivery_number,
                    next_epoch: t.next_epoch,
                    submitted_us: r.submitted_us,
                    home: r.home,
                    client: r.client,
                    honest: r.honest,
                }
            );
            assert_eq!((h.delivery_number, h.next_epoch, h.home, h.client, h.honest), (5, 10, 2, 7, honest));
            // Cut short, one byte more, or a request that is not a `Request`:
            // refused, as the full decode refuses them.
            for cut in 0..raw.len() {
                assert!(TxHead::parse(&raw[..cut]).is_none(), "cut at {cut}");
            }
            let mut longer = raw.clone();
            longer.push(0);
            assert!(TxHead::parse(&longer).is_none() && decode::<LbftTx>(&longer, 4_096).is_err());
            let mut bad = t.clone();
            bad.request.push(0);
            assert!(TxHead::parse(&encode(&bad)).is_none() && decode::<Request>(&bad.request, 4_096).is_err());
            let mut not_bool = t.clone();
            not_bool.request[16] = 2;
            assert!(TxHead::parse(&encode(&not_bool)).is_none());
        }
    }

    #[test]
    fn the_log_reads_back_what_was_appended() {
        let dir = tempfile::tempdir().expect("dir");
        let (ops, _) = three_records(dir.path());
        let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
        assert_eq!(d, durable_of(&ops));
    }

    /// Synced records spanning many pages, their whole pages dropped from
    /// the page cache after each sync (the page holding the end kept), and
    /// records appended after that (into the kept page and beyond): the
    /// log reads back every record, before and after a reopen; without
    /// syncs nothing is dropped.
    #[test]
    fn a_log_whose_synced_pages_were_dropped_reads_back_every_record() {
        let dir = tempfile::tempdir().expect("dir");
        let ops: Vec<PersistOp<Sig>> = (0..40u64)
            .map(|e| PersistOp::Proposed {
                epoch: e,
                batch: gridledger_consensus::lbft::Batch::new(vec![vec![e as u8; 300]; 1 + e as usize % 7]),
            })
            .collect();
        let (mut log, _) = DiskLog::open(dir.path(), true).expect("open");
        for op in &ops[..20] {
            log.append(std::slice::from_ref(op)).expect("append");
            assert_eq!(log.dropped_to, log.end / 4096 * 4096, "whole pages below the end dropped");
        }
        assert!(log.dropped_to > 4 * 4096, "the records spanned pages: {}", log.dropped_to);
        drop(log);
        let (mut log, d) = DiskLog::open(dir.path(), true).expect("reopen");
        assert_eq!(d, durable_of(&ops[..20]));
        for op in &ops[20..] {
            log.append(std::slice::from_ref(op)).expect("append");
        }
        drop(log);
        let (mut log, d) = DiskLog::open(dir.path(), false).expect("reopen");
        assert_eq!(d, durable_of(&ops));
        log.append(std::slice::from_ref(&ops[0])).expect("append unsynced");
        assert_eq!(log.dropped_to, 0, "nothing dropped without a sync");
    }

    /// A crash mid-append leaves any prefix of the last record: each one
    /// is cut off on open (the records before it are kept), and the log
    /// takes new records after the cut.
    #[test]
    fn a_torn_last_record_is_cut_off_at_every_length() {
        let dir = tempfile::tempdir().expect("dir");
        let (ops, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        for cut in ends[1]..ends[2] {
            std::fs::write(&path, &whole[..cut as usize]).expect("tear");
            let (mut log, d) = DiskLog::open(dir.path(), false).expect("open torn");
            assert_eq!(d, durable_of(&ops[..2]), "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).expect("len").len(), ends[1], "torn tail cut at {cut}");
            log.append(&ops[2..]).expect("append after the cut");
            drop(log);
            let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
            assert_eq!(d, durable_of(&ops), "record after the cut at {cut}");
        }
    }

    /// What a crash leaves of the last record written over the zeros
    /// ahead: any of its bytes on disk and the rest still zeros (a prefix,
    /// its first sector or page unwritten, or only its first bytes),
    /// followed by the zeros. Each is cut on open (the records before it
    /// kept, the file cut at their end), and the log takes new records
    /// there, over zeros again.
    #[test]
    fn a_record_torn_over_the_zeros_ahead_is_cut_at_every_length() {
        let dir = tempfile::tempdir().expect("dir");
        let (ops, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        let (start, end) = (ends[1] as usize, ends[2] as usize);
        assert!(whole.len() > end && whole[end..].iter().all(|&b| b == 0), "zeros after the last record");
        let mut tears = Vec::new();
        for cut in start..end {
            // Written up to `cut`, zeros from there.
            let mut torn = whole.clone();
            torn[cut..end].fill(0);
            tears.push(torn);
            // Written from `cut` on, its first bytes still zeros.
            let mut torn = whole.clone();
            torn[start..cut.max(start + 1)].fill(0);
            tears.push(torn);
        }
        // (A tear whose zeros fall only on zero bytes of the record left
        // it whole: not a tear.)
        tears.retain(|t| *t != whole);
        assert!(tears.len() > end - start, "{} tears", tears.len());
        for (i, torn) in tears.iter().enumerate() {
            std::fs::write(&path, torn).expect("tear");
            let (mut log, d) = DiskLog::open_with(dir.path(), true, Some(TEST_AHEAD)).expect("open torn");
            assert_eq!(d, durable_of(&ops[..2]), "tear {i}");
            assert_eq!(log.end, ends[1], "tear {i}");
            log.fill.as_ref().expect("fills").settle(TEST_AHEAD);
            assert!(zeros_from(&path, ends[1]), "tear {i}: the torn record is gone, zeros from its start");
            assert!(log.append(&ops[2..]).expect("append after the cut"), "tear {i}: over zeros");
            drop(log);
            let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
            assert_eq!(d, durable_of(&ops), "tear {i}: the record after the cut");
        }
    }

    /// Records of every size, some larger than the zeros ahead (written
    /// past them, extending the file), appended while the filler writes
    /// zeros in steps smaller than a record: after each, the bytes past
    /// the log's end are zeros (the filler never wrote over a record, nor
    /// left anything else), and the log reads back every record, before
    /// and after a reopen, which cuts the file at the last record.
    #[test]
    fn records_go_over_synced_zeros_or_past_them_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbft.log");
        let ahead = FillAhead { ahead: 2 * 4096, step: 1024 };
        let ops: Vec<PersistOp<Sig>> = (0..60u64)
            .map(|e| PersistOp::Proposed {
                epoch: e,
                batch: gridledger_consensus::lbft::Batch::new(vec![vec![1 + e as u8; 300]; 1 + (e as usize * 7) % 40]),
            })
            .collect();
        let (mut log, _) = DiskLog::open_with(dir.path(), true, Some(ahead)).expect("open");
        let (mut over, mut past) = (0, 0);
        for (i, op) in ops.iter().enumerate() {
            if i % 3 == 0 {
                log.fill.as_ref().expect("fills").settle(ahead);
            }
            if log.append(std::slice::from_ref(op)).expect("append") {
                over += 1;
            } else {
                past += 1;
            }
            assert!(zeros_from(&path, log.end), "record {i}: zeros after the end");
        }
        assert!(over > 0 && past > 0, "over zeros {over}, past them {past}");
        let end = log.end;
        drop(log);
        let (log, d) = DiskLog::open_with(dir.path(), true, Some(ahead)).expect("reopen");
        assert_eq!(d, durable_of(&ops));
        assert_eq!(log.end, end);
        drop(log);
        let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
        assert_eq!(d, durable_of(&ops));
        assert_eq!(std::fs::metadata(&path).expect("len").len(), end, "cut at the last record");
        // Without zeros ahead (`--log-append`) a synced record is appended.
        let (mut log, _) = DiskLog::open_with(dir.path(), true, None).expect("reopen appending");
        assert!(!log.append(&ops[..1]).expect("append"), "appended");
        assert_eq!(std::fs::metadata(&path).expect("len").len(), log.end, "the file ends at the record");
    }

    /// The reader passes over megabytes of zeros after a torn or damaged
    /// record looking for a whole one, and finds one that follows them:
    /// a record zeroed in the middle of a log whose later record lies
    /// past a long run of zeros is refused, not cut with what follows.
    #[test]
    fn a_whole_record_after_a_long_run_of_zeros_is_found() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        let (second, third) = (ends[0] as usize, ends[1] as usize);
        for run in [0usize, 1, 7, 8, 9, 4095, 1 << 20] {
            // Records one and two, the second zeroed, `run` zeros, then
            // record three.
            let mut bytes = whole[..third].to_vec();
            bytes[second..third].fill(0);
            bytes.extend_from_slice(&vec![0u8; run]);
            bytes.extend_from_slice(&whole[third..ends[2] as usize]);
            std::fs::write(&path, &bytes).expect("write");
            let err = DiskLog::open(dir.path(), false).err().expect("refused").to_string();
            assert!(
                err.contains(&format!("record at byte {second} is damaged"))
                    && err.contains(&format!("follows it at byte {}", third + run)),
                "run {run}: {err}"
            );
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "run {run}: the log is left as it is");
        }
    }

    /// The planted bug [`LogMutation::ZerosEndTheLog`] is caught.
    #[cfg(feature = "mutants")]
    #[test]
    fn planted_zeros_end_the_log_is_caught() {
        LOG_MUTATION.with(|m| m.set(Some(LogMutation::ZerosEndTheLog)));
        let caught = std::panic::catch_unwind(a_whole_record_after_a_long_run_of_zeros_is_found).is_err();
        LOG_MUTATION.with(|m| m.set(None));
        assert!(caught, "the planted bug went unnoticed");
    }

    /// A damaged header (any byte of it changed: magic, salt or its CRC)
    /// is refused, the log left as it is (attack r13 [1]: a damaged salt
    /// made every record fail, and the whole log was cut as one torn
    /// first record).
    #[test]
    fn a_damaged_header_is_refused_and_the_log_left_as_it_is() {
        let dir = tempfile::tempdir().expect("dir");
        three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        for at in 0..LOG_HEADER {
            let mut bad = whole.clone();
            bad[at] ^= 0x01;
            std::fs::write(&path, &bad).expect("damage the header");
            let err = DiskLog::open(dir.path(), false).err().expect("a damaged header is refused");
            if at >= 8 {
                assert!(format!("{err:#}").contains("header is damaged"), "byte {at}: {err:#}");
            }
            assert_eq!(std::fs::read(&path).expect("read"), bad, "byte {at}: the log is left as it is");
        }
    }

    /// The first record is read like any other (the header checks
    /// itself): torn to a prefix, zero-filled, or torn with its first
    /// sector unwritten (zeros, then the rest of it: attack r14 [1]) and
    /// nothing whole after it, it is cut; damaged with a whole record
    /// after it, the log is refused with both offsets and left as it is.
    #[test]
    fn a_torn_first_record_is_cut_and_a_damaged_one_before_a_whole_one_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        let (first, end) = (LOG_HEADER, ends[0] as usize);
        let mut sector_unwritten = whole[first..end].to_vec();
        sector_unwritten[..(end - first) / 2].fill(0);
        for tail in [whole[first..first + 5].to_vec(), vec![0u8; 40], sector_unwritten, whole[first + 3..end].to_vec()]
        {
            let mut torn = whole[..first].to_vec();
            torn.extend_from_slice(&tail);
            std::fs::write(&path, &torn).expect("tear");
            let (_, d) = DiskLog::open(dir.path(), false).expect("a torn first record is cut");
            assert_eq!(d, durable_of(&[]), "nothing restored");
            assert_eq!(std::fs::metadata(&path).expect("len").len(), first as u64);
        }
        for damage in [first, first + 9, first + 17, end - 1] {
            let mut bytes = whole.clone();
            bytes[damage] ^= 0x01;
            std::fs::write(&path, &bytes).expect("damage");
            let err = DiskLog::open(dir.path(), false).err().expect("a damaged first record is refused").to_string();
            assert!(
                err.contains(&format!("record at byte {first} is damaged"))
                    && err.contains(&format!("follows it at byte {end}")),
                "byte {damage}: {err}"
            );
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "byte {damage}: the log is left as it is");
        }
    }

    /// A last record whose bytes are all there but not the ones written
    /// (a torn sector, garbage or zeros where the body should be) fails
    /// its CRC and is cut off too.
    #[test]
    fn a_damaged_last_record_fails_its_crc_and_is_cut_off() {
        let dir = tempfile::tempdir().expect("dir");
        let (ops, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        for at in ends[1]..ends[2] {
            for damage in [|b: u8| b ^ 0x01, |b: u8| b ^ 0x80, |_| 0u8] {
                let mut bytes = whole.clone();
                let was = bytes[at as usize];
                bytes[at as usize] = damage(was);
                if bytes[at as usize] == was {
                    continue;
                }
                std::fs::write(&path, &bytes).expect("damage");
                let (_, d) = DiskLog::open(dir.path(), false).expect("open damaged");
                assert_eq!(d, durable_of(&ops[..2]), "byte {at} damaged");
                assert_eq!(std::fs::metadata(&path).expect("len").len(), ends[1]);
            }
        }
        // A zeroed tail (an extended file whose data never arrived).
        let mut bytes = whole[..ends[2] as usize].to_vec();
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &bytes).expect("zero tail");
        let (_, d) = DiskLog::open(dir.path(), false).expect("open zero tail");
        assert_eq!(d, durable_of(&ops));
        assert_eq!(std::fs::metadata(&path).expect("len").len(), ends[2]);
    }

    /// Attack r10 [1]: a damaged record with a whole record after it (any
    /// byte of the middle record changed, its length field and CRC
    /// included) is not a torn last record: the log is refused with the
    /// damaged record's byte offset and left as it is (the later records
    /// are not cut).
    #[test]
    fn a_damaged_middle_record_is_refused_and_the_log_left_as_it_is() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        for at in ends[0]..ends[1] {
            for damage in [|b: u8| b ^ 0x01, |b: u8| b ^ 0x80, |_| 0u8] {
                let mut bytes = whole.clone();
                let was = bytes[at as usize];
                bytes[at as usize] = damage(was);
                if bytes[at as usize] == was {
                    continue;
                }
                std::fs::write(&path, &bytes).expect("damage");
                let err = DiskLog::open(dir.path(), false).err().expect("damaged middle refused").to_string();
                assert!(err.contains(&format!("record at byte {} is damaged", ends[0])), "byte {at}: {err}");
                assert_eq!(std::fs::read(&path).expect("read"), bytes, "byte {at}: the log is left as it is");
            }
        }
    }

    /// A delivered epoch's batch that the log holds as this replica's
    /// proposal is written once: the delivery refers to it, and reads back
    /// whole. A reference to a proposal the log does not hold is refused.
    #[test]
    fn a_delivered_own_proposal_is_written_once_and_read_back_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let mine = gridledger_consensus::lbft::Batch::new(vec![vec![1u8; 300]; 50]);
        let theirs = gridledger_consensus::lbft::Batch::new(vec![vec![2u8; 300]; 50]);
        let sig =
            |i: u8| NodeSig::Cert(MultiSig { echoes: vec![(u32::from(i), EdKeyPair::from_seed("cert").sign(&[i]))] });
        let cert = |proposer, batch: &gridledger_consensus::lbft::Batch, i| CertifiedBatch {
            proposer,
            digest: Hash32([i; 32]),
            sig: sig(i),
            batch: batch.clone(),
        };
        let delivered =
            PersistOp::Delivered(DeliveredEpoch { epoch: 4, batches: vec![cert(0, &theirs, 1), cert(2, &mine, 2)] });
        let ops = vec![
            PersistOp::Proposed { epoch: 4, batch: mine.clone() },
            delivered.clone(),
            PersistOp::Proposed { epoch: 5, batch: theirs.clone() },
        ];
        let (mut log, _) = DiskLog::open(dir.path(), true).expect("open");
        log.append(&ops[..1]).expect("proposal");
        let before = log.end;
        log.append(&ops[1..]).expect("delivery");
        let grew = log.end - before;
        // Their batch twice (delivered, and proposed for epoch 5), mine not again.
        assert!(grew < 2 * 50 * 304 + 1_000 && grew > 2 * 50 * 304, "{grew}");
        drop(log);
        let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
        assert_eq!(d, durable_of(&ops));
        // A delivery alone whose batch refers to a proposal: refused.
        let dir = tempfile::tempdir().expect("dir");
        let (mut log, _) = DiskLog::open(dir.path(), false).expect("open");
        log.proposed.insert(4, mine.clone());
        log.append(std::slice::from_ref(&delivered)).expect("append");
        drop(log);
        let err = DiskLog::open(dir.path(), false).err().expect("dangling reference refused").to_string();
        assert!(err.contains("does not hold"), "{err}");
    }

    /// A log written by an earlier build (format v1: no header, SHA-256
    /// checksums) is refused with the reason, not read as an empty log
    /// (its replica would forget what it echoed and voted).
    #[test]
    fn a_v1_log_is_refused_with_its_format_and_left_untouched() {
        let dir = tempfile::tempdir().expect("dir");
        let ops: Vec<PersistOp<Sig>> = vec![PersistOp::VotedIn { epoch: 9 }];
        let body = borsh::to_vec(&ops).expect("encode");
        let mut v1 = (body.len() as u32).to_le_bytes().to_vec();
        v1.extend_from_slice(&hash_bytes(Tag("gridledger/lbft-log/v1"), &body).0);
        v1.extend_from_slice(&body);
        let path = dir.path().join("lbft.log");
        std::fs::write(&path, &v1).expect("write v1");
        let err = DiskLog::open(dir.path(), false).err().expect("a v1 log is refused").to_string();
        assert!(err.contains("format v1"), "{err}");
        assert_eq!(std::fs::read(&path).expect("read"), v1, "the refused log is not changed");
        // Anything else without the header is refused as unknown.
        std::fs::write(&path, [0xAAu8; 40]).expect("write junk");
        let err = DiskLog::open(dir.path(), false).err().expect("junk is refused").to_string();
        assert!(err.contains("not an LBFT replica log"), "{err}");
    }

    /// A log written in format v2 (CRC-32 records without the salt) is
    /// refused by name and left untouched.
    #[test]
    fn a_v2_log_is_refused_with_its_format_and_left_untouched() {
        let dir = tempfile::tempdir().expect("dir");
        let body = borsh::to_vec(&vec![LogOp::Op(PersistOp::<Sig>::VotedIn { epoch: 9 })]).expect("encode");
        let len = (body.len() as u32).to_le_bytes();
        let mut h = crc32fast::Hasher::new();
        h.update(&len);
        h.update(&body);
        let mut v2 = LOG_MAGIC_V2.to_vec();
        v2.extend_from_slice(&len);
        v2.extend_from_slice(&h.finalize().to_le_bytes());
        v2.extend_from_slice(&body);
        let path = dir.path().join("lbft.log");
        for log in [&v2[..], &v2[..LOG_MAGIC_V2.len()]] {
            std::fs::write(&path, log).expect("write v2");
            let err = DiskLog::open(dir.path(), false).err().expect("a v2 log is refused").to_string();
            assert!(err.contains("format v2"), "{err}");
            assert_eq!(std::fs::read(&path).expect("read"), log, "the refused log is not changed");
        }
    }

    /// Attack r12 [1], [2]: a torn last record whose body is mostly
    /// transactions (their fields read as record lengths; a whole record,
    /// salt-less or with a guessed salt, inside one of them) is cut at
    /// every length, and a whole record appended after it is refused as
    /// damage in the middle: only the log's own salt makes a record start.
    #[test]
    fn a_torn_record_of_record_shaped_transactions_is_cut_at_every_length() {
        let dir = tempfile::tempdir().expect("dir");
        let (ops, ends) = three_records(dir.path());
        let path = dir.path().join("lbft.log");
        let whole = std::fs::read(&path).expect("read");
        // Every v2- and v3-shaped record a client could put in a request:
        // an empty list of operations, salt-less and under a guessed salt.
        let empty = 0u32.to_le_bytes();
        let len = 4u32.to_le_bytes();
        let mut shaped = Vec::new();
        let mut h = crc32fast::Hasher::new();
        h.update(&len);
        h.update(&empty);
        shaped.extend_from_slice(&len);
        shaped.extend_from_slice(&h.finalize().to_le_bytes());
        shaped.extend_from_slice(&empty);
        let guess = [0u8; 8];
        shaped.extend_from_slice(&guess);
        shaped.extend_from_slice(&len);
        shaped.extend_from_slice(&record_crc(&guess, &len, &empty).to_le_bytes());
        shaped.extend_from_slice(&empty);
        // Length-like fields: small little-endian numbers everywhere.
        let mut txs: Vec<Vec<u8>> = (0u32..300).map(|i| [i.to_le_bytes(), 300u32.to_le_bytes()].concat()).collect();
        txs.push(shaped);
        let big = PersistOp::Proposed { epoch: 9, batch: gridledger_consensus::lbft::Batch::new(txs) };
        let (mut log, _) = DiskLog::open(dir.path(), false).expect("open");
        log.append(std::slice::from_ref(&big)).expect("append");
        drop(log);
        let full = std::fs::read(&path).expect("read");
        assert_eq!(full[..ends[2] as usize], whole[..ends[2] as usize]);
        for cut in ends[2] as usize..full.len() {
            std::fs::write(&path, &full[..cut]).expect("tear");
            let (_, d) = DiskLog::open(dir.path(), false).expect("a torn last record is cut");
            assert_eq!(d, durable_of(&ops), "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).expect("len").len(), ends[2], "torn tail cut at {cut}");
        }
        // The same torn record with a whole record after it: refused.
        let mut bytes = full[..full.len() - 7].to_vec();
        bytes.extend_from_slice(&whole[ends[1] as usize..ends[2] as usize]);
        std::fs::write(&path, &bytes).expect("damage");
        let err = DiskLog::open(dir.path(), false).err().expect("damaged middle refused").to_string();
        assert!(
            err.contains(&format!("record at byte {} is damaged", ends[2]))
                && err.contains(&format!("follows it at byte {}", full.len() - 7)),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "the log is left as it is");
    }

    /// A header left by a crash while the log was created (no record can
    /// follow it: it was not synced) — any prefix of a header, or zeros up
    /// to a header's length (attack r14 [2]) — is written again; zeros
    /// with anything after them where the header should be are refused,
    /// the log left as it is.
    #[test]
    fn a_header_torn_or_zero_filled_while_the_log_was_created_is_written_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbft.log");
        let header = log_header(&[9u8; 8]);
        for len in 0..=LOG_HEADER {
            let mut torn: Vec<Vec<u8>> = vec![vec![0u8; len]];
            if len < LOG_HEADER {
                torn.push(header[..len].to_vec());
            }
            for bytes in torn {
                std::fs::write(&path, &bytes).expect("torn header");
                let (_, d) = DiskLog::open(dir.path(), false).expect("written again");
                assert_eq!(d, Durable::default());
                let after = std::fs::read(&path).expect("read");
                assert_eq!(after.len(), LOG_HEADER, "{bytes:?}");
                assert!(matches!(parse_header(&after), LogHeader::Whole(_)), "{bytes:?}");
            }
        }
        let mut more = vec![0u8; LOG_HEADER];
        more.extend_from_slice(&header);
        for bytes in [vec![0u8; LOG_HEADER + 1], more, vec![0, 0, 0, 7]] {
            std::fs::write(&path, &bytes).expect("zeros, then more");
            let err = DiskLog::open(dir.path(), false).err().expect("refused").to_string();
            assert!(err.contains("starts with zeros"), "{bytes:?}: {err}");
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "the log is left as it is");
        }
    }

    /// A log written in format v3 (a 16-byte header without its own
    /// checksum) is refused by name and left untouched.
    #[test]
    fn a_v3_log_is_refused_with_its_format_and_left_untouched() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbft.log");
        let salt = [3u8; 8];
        let body = borsh::to_vec(&vec![LogOp::Op(PersistOp::<Sig>::VotedIn { epoch: 9 })]).expect("encode");
        let len = (body.len() as u32).to_le_bytes();
        let mut v3 = LOG_MAGIC_V3.to_vec();
        v3.extend_from_slice(&salt);
        v3.extend_from_slice(&salt);
        v3.extend_from_slice(&len);
        v3.extend_from_slice(&record_crc(&salt, &len, &body).to_le_bytes());
        v3.extend_from_slice(&body);
        for log in [&v3[..], &v3[..16], &v3[..LOG_MAGIC_V3.len()]] {
            std::fs::write(&path, log).expect("write v3");
            let err = DiskLog::open(dir.path(), false).err().expect("a v3 log is refused").to_string();
            assert!(err.contains("format v3"), "{err}");
            assert_eq!(std::fs::read(&path).expect("read"), log, "the refused log is not changed");
        }
    }

    /// A log written in format v4 (BLS threshold certificates: a whole,
    /// self-checking header of the same layout) is refused by name and
    /// left untouched.
    #[test]
    fn a_v4_log_is_refused_with_its_format_and_left_untouched() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbft.log");
        let salt = [4u8; 8];
        let body = borsh::to_vec(&vec![LogOp::Op(PersistOp::<Sig>::VotedIn { epoch: 9 })]).expect("encode");
        let len = (body.len() as u32).to_le_bytes();
        let mut h = crc32fast::Hasher::new();
        h.update(&LOG_MAGIC_V4);
        h.update(&salt);
        let mut v4 = LOG_MAGIC_V4.to_vec();
        v4.extend_from_slice(&salt);
        v4.extend_from_slice(&h.finalize().to_le_bytes());
        v4.extend_from_slice(&salt);
        v4.extend_from_slice(&len);
        v4.extend_from_slice(&record_crc(&salt, &len, &body).to_le_bytes());
        v4.extend_from_slice(&body);
        for log in [&v4[..], &v4[..LOG_HEADER], &v4[..LOG_MAGIC_V4.len()]] {
            std::fs::write(&path, log).expect("write v4");
            let err = DiskLog::open(dir.path(), false).err().expect("a v4 log is refused").to_string();
            assert!(err.contains("format v4"), "{err}");
            assert_eq!(std::fs::read(&path).expect("read"), log, "the refused log is not changed");
        }
    }

    /// `--kill-restart` reports a restart only when it tested one: the
    /// replica was killed mid-run and restored a delivered epoch.
    #[test]
    fn kill_restart_is_reported_only_when_a_restart_was_tested() {
        let restored = |n: u64| json!({ "restored_epochs": n, "epoch_digests": [] });
        assert_eq!(kill_restart_tested(3, false, &restored(4)).expect("tested"), 4);
        let finished = kill_restart_tested(3, true, &restored(4)).expect_err("finished before the kill").to_string();
        assert!(finished.contains("had finished"), "{finished}");
        let empty = kill_restart_tested(3, false, &restored(0)).expect_err("nothing restored").to_string();
        assert!(empty.contains("restored no delivered epoch"), "{empty}");
        assert!(kill_restart_tested(3, false, &json!({})).is_err(), "no report: nothing restored");
    }

    /// A header torn while the log was created (no record can follow it)
    /// is written again.
    #[test]
    fn a_torn_header_is_written_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("lbft.log");
        std::fs::write(&path, &LOG_MAGIC[..3]).expect("torn header");
        let (mut log, d) = DiskLog::open(dir.path(), false).expect("open");
        assert_eq!(d, Durable::default());
        log.append(&[PersistOp::VotedIn { epoch: 2 }]).expect("append");
        drop(log);
        let (_, d) = DiskLog::open(dir.path(), false).expect("reopen");
        assert_eq!(d.voted_through, Some(2));
        assert_eq!(std::fs::read(&path).expect("read")[..LOG_MAGIC.len()], LOG_MAGIC);
    }

    fn signed(key: &EdKeyPair, request: &[u8]) -> Vec<u8> {
        encode(&LbftTx::sign(key, 1, request.to_vec(), 0, 2))
    }

    /// The same client's transaction with another request under the first
    /// one's signature: a forgery.
    fn forged(key: &EdKeyPair) -> Vec<u8> {
        let good = LbftTx::sign(key, 1, b"pay 1".to_vec(), 0, 2);
        let mut bad = LbftTx::sign(key, 1, b"pay 1000".to_vec(), 0, 2);
        bad.signature = good.signature;
        encode(&bad)
    }

    #[test]
    fn a_signature_is_checked_once_however_often_its_transaction_arrives() {
        let key = EdKeyPair::from_seed("verdict-cache-client");
        let a = signed(&key, b"pay 1");
        let mut cache = VerdictCache::new(16);
        // Twice in one batch (from its client and in a proposal), then again.
        let first = cache.check(&[a.clone(), a.clone()]);
        assert!(first.iter().all(|(id, tx, ok)| *ok && tx.is_some() && *id == tx_id(&a)));
        assert_eq!(cache.checks, 1);
        let again = cache.check(std::slice::from_ref(&a));
        assert!(again[0].2);
        assert_eq!(cache.checks, 1, "the verdict came from the cache");
        assert_eq!(cache.hits, 2);
    }

    /// A restarted replica replays its log under the live path's rule: a
    /// delivered transaction whose signature does not verify (a Byzantine
    /// proposer's forgery of this replica's client's next transaction)
    /// advances neither the client's delivery number nor π^τ's; the
    /// genuine one, delivered later, does.
    #[test]
    fn a_restart_replays_no_forged_transaction() {
        let file = ReplicaFile {
            index: 0,
            n: 4,
            ports: Vec::new(),
            echo_keys: Vec::new(),
            coin_keys: Vec::new(),
            echo_secret: [0; 32],
            coin_share: Vec::new(),
            rate: 0,
            flood: 0,
            seconds: 1,
            batch: 100,
            opaque: false,
            policy: "tbg".into(),
            tau: 2,
            groups: 1,
            pipeline: 0,
            fsync: false,
            max_in_flight: 0,
            log_append: false,
        };
        let key = client_key(0, 0, true);
        let req = |us: u64| encode(&Request { submitted_us: us, home: 0, client: 0, honest: true, pad: Vec::new() });
        let genuine = LbftTx::sign(&key, 1, req(1), 0, 2);
        let mut forged = LbftTx::sign(&key, 1, req(2), 0, 2);
        forged.request = req(3);
        let epoch = |e: u64, tx: &LbftTx| DeliveredEpoch {
            epoch: e,
            batches: vec![CertifiedBatch {
                proposer: 1,
                digest: Hash32([e as u8; 32]),
                sig: NodeSig::Cert(MultiSig { echoes: vec![(1, EdKeyPair::from_seed("cert").sign(&[e as u8]))] }),
                batch: gridledger_consensus::lbft::Batch::new(vec![encode(tx)]),
            }],
        };
        let replay = |log: &[DeliveredEpoch<Sig>]| {
            let mut pool = Pool::new(&file).expect("pool");
            let mut clients = vec![Client { dn: 0, last_next: 0, sent_at: None }];
            let mut hashes = BTreeMap::new();
            let refused = replay_delivered(log, false, 0, &mut clients, &mut pool, &mut hashes);
            let Pool::Tbg(p) = &pool else { panic!("the tbg policy") };
            (refused, clients[0].dn, p.delivered_count(&key.public()))
        };
        assert_eq!(replay(&[epoch(0, &forged)]), (1, 0, 0), "the forgery advances nothing");
        assert_eq!(replay(&[epoch(0, &forged), epoch(1, &genuine)]), (1, 1, 1), "the genuine one does");
    }

    /// The verdict a cache gives a forgery after it passed the genuine
    /// transaction of the same client.
    fn forgery_verdict(mut cache: VerdictCache) -> bool {
        let key = EdKeyPair::from_seed("verdict-cache-forger");
        assert!(cache.check(&[signed(&key, b"pay 1")])[0].2);
        cache.check(&[forged(&key)])[0].2
    }

    #[test]
    fn a_forgery_does_not_inherit_the_verdict_of_its_clients_genuine_transaction() {
        assert!(!forgery_verdict(VerdictCache::new(16)), "the forgery was checked and refused");
        // The planted bug this test exists for: verdicts keyed by the
        // client (not the transaction) pass the forgery.
        assert!(forgery_verdict(VerdictCache::keyed_by(16, |_, t| hash_bytes(Tag("by-client"), &t.client.0))));
    }

    #[test]
    fn undecodable_bytes_are_refused_unchecked_and_a_bad_signature_is_remembered() {
        let key = EdKeyPair::from_seed("verdict-cache-bad");
        let mut cache = VerdictCache::new(16);
        let out = cache.check(&[vec![0xff; 7], forged(&key)]);
        assert!(!out[0].2 && out[0].1.is_none());
        assert!(!out[1].2 && out[1].1.is_some());
        assert_eq!(cache.checks, 1);
        assert!(!cache.check(&[forged(&key)])[0].2);
        assert_eq!(cache.checks, 1);
    }

    #[test]
    fn one_bad_signature_in_a_batch_of_a_thousand_is_found_and_only_its_transaction_refused() {
        let keys: Vec<EdKeyPair> = (0..50).map(|i| EdKeyPair::from_seed(&format!("verdict-cache-batch-{i}"))).collect();
        let mut raws: Vec<Vec<u8>> =
            (0..1_000).map(|i| signed(&keys[i % keys.len()], format!("pay {i}").as_bytes())).collect();
        let bad = 421;
        raws[bad] = forged(&keys[bad % keys.len()]);
        let mut cache = VerdictCache::new(4_096);
        let out = cache.check(&raws);
        let refused: Vec<usize> = out.iter().enumerate().filter(|(_, o)| !o.2).map(|(i, _)| i).collect();
        assert_eq!(refused, vec![bad]);
        assert_eq!(cache.checks, 1_000);
        // Batch equations first; single checks only inside the failing chunk.
        assert_eq!(cache.batches, 1_000usize.div_ceil(gridledger_core::ed25519::CHUNK) as u64);
        assert!(cache.single_checks > 0 && cache.single_checks <= gridledger_core::ed25519::CHUNK as u64);
        // The verdicts are remembered: the forgery stays refused, unchecked.
        assert!(!cache.check(&raws[bad..=bad])[0].2);
        assert_eq!(cache.checks, 1_000);
    }

    #[test]
    fn the_edge_refuses_offered_load_beyond_its_window_with_the_reason_and_defers_nothing() {
        let mut edge = Edge::new(10, 3);
        let sent: Vec<u32> = (0..3).map(|_| edge.offer().expect("within the window")).collect();
        assert_eq!(sent, vec![0, 1, 2]);
        // Beyond the window: refused with the backlog, counted, not queued.
        for _ in 0..5 {
            assert_eq!(edge.offer(), Err(EdgeRefusal::Backlog(Backlog { in_flight: 3, cap: 3 })));
        }
        assert_eq!((edge.refused_backlog, edge.in_flight(), edge.idle()), (5, 3, 7));
        assert!(edge.offer().unwrap_err().to_string().contains("backlog"));
        // A delivery frees one slot, for one transaction: the refused ones
        // are not made up for.
        edge.delivered(1);
        assert_eq!(edge.offer(), Ok(3));
        assert!(edge.offer().is_err());
        assert_eq!(edge.refused_backlog, 7);
        // A client's second delivery report (a re-sent copy) frees nothing more.
        edge.delivered(1);
        assert_eq!((edge.in_flight(), edge.idle()), (3, 7));
        assert_eq!(edge.offer(), Err(EdgeRefusal::Backlog(Backlog { in_flight: 3, cap: 3 })));
    }

    #[test]
    fn without_a_window_the_edge_is_bounded_by_its_clients_only() {
        let mut edge = Edge::new(2, 0);
        assert_eq!(edge.offer(), Ok(0));
        assert_eq!(edge.offer(), Ok(1));
        assert_eq!(edge.offer(), Err(EdgeRefusal::NoIdleClient));
        assert_eq!(edge.refused_no_idle_client, 1);
        edge.delivered(0);
        edge.delivered(0);
        assert_eq!(edge.offer(), Ok(0));
        assert_eq!(edge.offer(), Err(EdgeRefusal::NoIdleClient), "client 0 was made idle once");
    }

    #[test]
    fn past_its_bound_the_cache_forgets_the_oldest_verdict() {
        let key = EdKeyPair::from_seed("verdict-cache-bound");
        let (a, b) = (signed(&key, b"a"), signed(&key, b"b"));
        let mut cache = VerdictCache::new(1);
        cache.check(std::slice::from_ref(&a));
        cache.check(std::slice::from_ref(&b));
        assert_eq!(cache.checks, 2);
        assert!(cache.check(std::slice::from_ref(&a))[0].2);
        assert_eq!(cache.checks, 3, "a was forgotten and checked again");
    }

    /// `DeliveredOnce` answers exactly as a set of the triples seen: on
    /// client numbers in order, repeated, out of order (a gap filled
    /// later), and outside its array (a home or client beyond it).
    #[test]
    fn delivered_once_answers_as_a_set_of_the_triples_seen() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (homes, clients) = (3u32, 5u32);
        let mut once = DeliveredOnce::new(homes, clients);
        let mut set: HashSet<(u32, u32, u64)> = HashSet::new();
        let mut next = vec![0u64; (homes + 1) as usize * (clients + 1) as usize];
        let (mut firsts, mut gaps) = (0, 0);
        for _ in 0..20_000 {
            // Homes and clients one past the array; numbers mostly the
            // client's next one, else a repeat or one ahead (a gap).
            let (h, c) = (rng.random_range(0..=homes), rng.random_range(0..=clients));
            let k = h as usize * (clients + 1) as usize + c as usize;
            let dn = match rng.random_range(0..10) {
                0..=5 => next[k],
                6..=7 => rng.random_range(0..=next[k]),
                _ => {
                    gaps += 1;
                    next[k] + rng.random_range(1..4)
                }
            };
            next[k] = next[k].max(dn + 1);
            let want = set.insert((h, c, dn));
            firsts += usize::from(want);
            assert_eq!(once.first(h, c, dn), want, "({h}, {c}, {dn})");
        }
        assert!(firsts > 5_000 && gaps > 1_000, "the sequence exercised both paths: {firsts} firsts, {gaps} gaps");
        // Every triple seen is remembered.
        for &(h, c, dn) in &set {
            assert!(!once.first(h, c, dn));
        }
    }
}
