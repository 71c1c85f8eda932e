//! `gridledger bench lbft`: the leaderless BFT (thesis Ch.4, P^ABC) on
//! loopback, one OS process per replica over the authenticated `net`
//! links, BLS12-381 threshold certificates and coin.
//!
//! Each replica runs a load generator for its own clients: 300-byte
//! transactions carrying their submit time, signed with secp256k1, queued
//! in the replica's batch policy. Every replica verifies each delivered
//! transaction's signature once (`--opaque` skips signatures: the ordering
//! layer alone) and measures submit→delivery latency. The parent prints
//! one JSON object: delivered unique tx/s, p50/p99 latency per replica,
//! bytes sent per delivered transaction.
//!
//! Each replica persists its durable state (echoes given, epochs voted in,
//! its proposals, delivered epochs with certificates and batches) in an
//! append-only log, one checksummed and fsynced record per step, before
//! the step's messages leave. `--kill-restart I` kills replica `I` mid-run
//! and restarts it from that log.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use borsh::{BorshDeserialize, BorshSerialize};
use clap::Args;
use gridledger_consensus::lbft::{
    tx_id, BatchSource, BlsCrypto, Config, DeliveredEpoch, Durable, FifoPolicy, Message, PersistOp, Replica, Step,
    Target, Tx,
};
use gridledger_core::codec::{decode, encode, hash_bytes, Tag};
use gridledger_core::crypto::{batch_verify, KeyPair, VerifyItem};
use gridledger_core::{Hash32, PublicKey, Signature};
use gridledger_threshold::{KeyShare, PublicKeySet};
use serde_json::json;

#[derive(Args, Clone)]
pub struct LbftBenchArgs {
    /// Replicas (n = 3f + 1), one process each.
    #[arg(long, default_value_t = 4)]
    pub replicas: usize,
    /// Batch policy: `fifo` (TBG, HSM and random live behind the same
    /// trait and are added by their own work).
    #[arg(long, default_value = "fifo")]
    pub policy: String,
    /// Offered load, transactions per second over all replicas.
    #[arg(long, default_value_t = 8_000)]
    pub rate: u64,
    /// Measured seconds (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Largest batch a replica proposes per epoch.
    #[arg(long, default_value_t = 4_000)]
    pub batch: usize,
    /// Opaque transactions, no signature checks: the ordering layer alone.
    #[arg(long)]
    pub opaque: bool,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
    /// Kill this replica (SIGKILL) two seconds into the run and restart it
    /// a second later from its on-disk log; the report says whether every
    /// replica holds the same delivered sequence.
    #[arg(long)]
    pub kill_restart: Option<u32>,
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
    cert_keys: Vec<u8>,
    coin_keys: Vec<u8>,
    cert_share: Vec<u8>,
    coin_share: Vec<u8>,
    rate: u64,
    seconds: u64,
    batch: u32,
    opaque: bool,
}

/// A benchmark transaction (padded to 300 bytes when encoded).
#[derive(BorshSerialize, BorshDeserialize)]
struct BenchTx {
    submitted_us: u64,
    client: u32,
    counter: u64,
    pad: Vec<u8>,
    sig: Signature,
}

const TX_BYTES: usize = 300;
/// The replicas' retransmission tick (ms).
const TICK_MS: u64 = 2_000;
const INSTANCE: Hash32 = Hash32([0x1b; 32]);

fn client_key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-lbft-bench-client-{i}"))
}

fn validator_key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-lbft-bench-validator-{i}"))
}

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn signed_digest(t: &BenchTx) -> Hash32 {
    hash_bytes(Tag("gridledger/lbft-bench-tx/v1"), &encode(&(t.submitted_us, t.client, t.counter, &t.pad)))
}

/// A 300-byte transaction; unsigned (zero signature) when `opaque`.
fn make_tx(key: &KeyPair, client: u32, counter: u64, pad_len: usize, opaque: bool) -> Tx {
    let mut t = BenchTx { submitted_us: now_us(), client, counter, pad: vec![0u8; pad_len], sig: Signature([0; 64]) };
    if !opaque {
        t.sig = key.sign(&signed_digest(&t));
    }
    encode(&t)
}

fn pad_len() -> usize {
    let probe = BenchTx { submitted_us: 0, client: 0, counter: 0, pad: Vec::new(), sig: Signature([0; 64]) };
    TX_BYTES.saturating_sub(encode(&probe).len())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1_000.0
}

/// `bench lbft`: deals keys, spawns the replicas, gathers their reports.
pub fn bench(a: LbftBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.replicas >= 4, "LBFT needs n >= 4 (n = 3f + 1 with f >= 1)");
    anyhow::ensure!(a.policy == "fifo", "policy {:?} is not available in this build (fifo is)", a.policy);
    let n = a.replicas;
    let f = (n - 1) / 3;
    let mut rng = rand::rng();
    let (cert_pk, cert_sk) = gridledger_threshold::deal(n, 2 * f + 1, &mut rng)?;
    let (coin_pk, coin_sk) = gridledger_threshold::deal(n, f + 1, &mut rng)?;
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
            cert_keys: cert_pk.to_bytes(),
            coin_keys: coin_pk.to_bytes(),
            cert_share: cert_sk[i].to_bytes(),
            coin_share: coin_sk[i].to_bytes(),
            rate: a.rate / n as u64,
            seconds: a.seconds,
            batch: a.batch as u32,
            opaque: a.opaque,
        };
        let path = dir.path().join(format!("replica-{i}.bin"));
        std::fs::write(&path, encode(&file))?;
        let data = dir.path().join(format!("data-{i}"));
        std::fs::create_dir_all(&data)?;
        children.push(spawn_replica(&exe, &path, &data)?);
    }
    if let Some(k) = a.kill_restart {
        let k = k as usize;
        anyhow::ensure!(k < n, "--kill-restart {k}: no such replica");
        std::thread::sleep(Duration::from_secs(2));
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
    let tps: Vec<f64> = reports.iter().filter_map(|r| r["delivered_unique_tx_per_s"].as_f64()).collect();
    let p50: Vec<f64> = reports.iter().filter_map(|r| r["latency_ms"]["p50"].as_f64()).collect();
    let p99: Vec<f64> = reports.iter().filter_map(|r| r["latency_ms"]["p99"].as_f64()).collect();
    let bytes: Vec<f64> = reports.iter().filter_map(|r| r["bytes_sent_per_delivered_tx"].as_f64()).collect();
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
    let out = json!({
        "bench": "lbft",
        "replicas": n,
        "policy": a.policy,
        "opaque": a.opaque,
        "tx_bytes": TX_BYTES,
        "offered_tx_per_s": a.rate,
        "seconds": a.seconds,
        "delivered_unique_tx_per_s": tps.iter().copied().fold(f64::INFINITY, f64::min),
        "latency_ms": { "p50": p50.iter().copied().fold(0.0, f64::max), "p99": p99.iter().copied().fold(0.0, f64::max) },
        "bytes_sent_per_delivered_tx": bytes.iter().sum::<f64>() / bytes.len().max(1) as f64,
        "same_delivered_sequence": same_sequence,
        "killed_and_restarted": a.kill_restart,
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

type Sig = gridledger_threshold::Signature;

/// The replica's durable state as an append-only log: records of
/// `len (u32 LE) ‖ sha256-tagged checksum (32) ‖ borsh(Vec<PersistOp>)`.
/// A torn last record (a crash mid-write) is cut off on open.
struct DiskLog {
    file: std::fs::File,
}

impl DiskLog {
    fn open(dir: &std::path::Path) -> anyhow::Result<(Self, Durable<Sig>)> {
        use std::io::{Read, Seek, SeekFrom};
        let path = dir.join("lbft.log");
        let mut file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut durable = Durable::default();
        let mut at = 0usize;
        while at + 36 <= bytes.len() {
            let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
            let Some(body) = bytes.get(at + 36..at + 36 + len) else { break };
            if hash_bytes(Tag("gridledger/lbft-log/v1"), body).0[..] != bytes[at + 4..at + 36] {
                break;
            }
            let Ok(ops) = borsh::from_slice::<Vec<PersistOp<Sig>>>(body) else { break };
            for op in &ops {
                durable.apply(op);
            }
            at += 36 + len;
        }
        file.set_len(at as u64)?;
        file.seek(SeekFrom::End(0))?;
        Ok((Self { file }, durable))
    }

    fn append(&mut self, ops: &[PersistOp<Sig>]) -> anyhow::Result<()> {
        use std::io::Write;
        let body = encode(&ops.to_vec());
        let mut rec = Vec::with_capacity(36 + body.len());
        rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
        rec.extend_from_slice(&hash_bytes(Tag("gridledger/lbft-log/v1"), &body).0);
        rec.extend_from_slice(&body);
        self.file.write_all(&rec)?;
        self.file.sync_data()?;
        Ok(())
    }
}

fn epoch_digest(d: &DeliveredEpoch<Sig>) -> String {
    hash_bytes(Tag("gridledger/lbft-bench-epoch/v1"), &encode(&(d.epoch, d.decision()))).to_string()
}

enum Input {
    Peer(u32, Vec<u8>),
    Txs(Vec<Tx>),
}

/// One replica process.
pub fn replica(a: LbftReplicaArgs) -> anyhow::Result<()> {
    let file: ReplicaFile = decode(&std::fs::read(&a.config)?, 1 << 20)?;
    let n = file.n as usize;
    let me = file.index;
    let cert_pk = std::sync::Arc::new(PublicKeySet::from_bytes(&file.cert_keys)?);
    let coin_pk = std::sync::Arc::new(PublicKeySet::from_bytes(&file.coin_keys)?);
    let crypto = BlsCrypto::new(
        cert_pk,
        coin_pk,
        KeyShare::from_bytes(&file.cert_share)?,
        KeyShare::from_bytes(&file.coin_share)?,
    );
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
    let (tx_in, rx) = mpsc::channel::<Input>();
    let peer_in = tx_in.clone();
    rt.spawn(async move {
        while let Some((from, bytes)) = inbound.recv().await {
            if peer_in.send(Input::Peer(from, bytes.to_vec())).is_err() {
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
    let stop_load = measure_end;
    let end = measure_end + Duration::from_secs(2);
    // Load generator: this replica's clients, at `rate` tx/s in 10 ms ticks.
    let rate = file.rate;
    let opaque = file.opaque;
    std::thread::spawn(move || {
        let key = client_key(me);
        let pad = pad_len();
        let mut counter = 0u64;
        let t0 = Instant::now();
        while t0.elapsed() < stop_load {
            let due = (t0.elapsed().as_micros() as u64 * rate / 1_000_000).saturating_sub(counter);
            let txs: Vec<Tx> = (0..due).map(|k| make_tx(&key, me, counter + k, pad, opaque)).collect();
            counter += due;
            if !txs.is_empty() && tx_in.send(Input::Txs(txs)).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let mut cfg = Config::new(n, me, INSTANCE);
    // Retransmission is for lost messages, not slow epochs: a tick well
    // above an epoch's duration keeps big batches from being re-sent.
    cfg.tick = TICK_MS;
    cfg.max_batch_txs = file.batch as usize;
    cfg.max_tx_bytes = 1_024;
    cfg.window = 8;
    // No store behind the bench replicas: keep every epoch of the run in
    // memory so a replica that fell behind can still catch up from peers.
    cfg.retain = 100_000;
    let (mut disk, durable) = match &a.data_dir {
        Some(dir) => {
            let (log, d) = DiskLog::open(dir)?;
            (Some(log), d)
        }
        None => (None, Durable::default()),
    };
    let mut epoch_digests: Vec<String> = durable.delivered.iter().map(epoch_digest).collect();
    let restored_epochs = epoch_digests.len();
    let mut replica = Replica::new(cfg, crypto, durable);
    let mut policy = FifoPolicy::new(file.batch as usize, 1 << 20);
    let client_keys: Vec<PublicKey> = (0..n as u32).map(|i| client_key(i).public()).collect();
    let mut latencies: Vec<u64> = Vec::new();
    let mut delivered_unique = 0u64;
    let mut seen: HashSet<Hash32> = HashSet::new();
    let mut bad_sigs = 0u64;
    let mut epochs = 0u64;
    let mut pending_batch: Option<u64> = None;
    let mut propose_at: Option<Instant> = None;
    let mut next_tick = Instant::now() + Duration::from_millis(TICK_MS);
    let mut bytes_at_start = 0u64;
    let mut bytes_at_end = 0u64;
    let mut measuring = false;
    let mut steps: Vec<Step<_, _>> = vec![replica.start()];
    loop {
        // Process steps: send, deliver, ask for batches.
        while let Some(s) = steps.pop() {
            let s: Step<gridledger_threshold::SignatureShare, gridledger_threshold::Signature> = s;
            // Persist the step (one fsynced record), then speak.
            if let (Some(log), false) = (disk.as_mut(), s.persist.is_empty()) {
                log.append(&s.persist)?;
            }
            for op in &s.persist {
                if let PersistOp::Delivered(d) = op {
                    epoch_digests.push(epoch_digest(d));
                }
            }
            for (to, m) in s.messages {
                let bytes = encode(&m);
                let _ = match to {
                    Target::All => net.broadcast(bytes),
                    Target::One(i) => net.send(i, bytes),
                };
            }
            for d in s.delivered {
                epochs += 1;
                let now = now_us();
                let parsed: Vec<BenchTx> = d.txs.iter().filter_map(|t| borsh::from_slice::<BenchTx>(t).ok()).collect();
                if !file.opaque {
                    let digests: Vec<Hash32> = parsed.iter().map(signed_digest).collect();
                    let items: Vec<VerifyItem<'_>> = parsed
                        .iter()
                        .zip(&digests)
                        .filter_map(|(t, dg)| {
                            client_keys.get(t.client as usize).map(|pk| VerifyItem { pk, digest: *dg, sig: &t.sig })
                        })
                        .collect();
                    bad_sigs += batch_verify(&items).iter().filter(|r| r.is_err()).count() as u64;
                }
                for (t, raw) in parsed.iter().zip(&d.txs) {
                    let in_window = (window_start..window_end).contains(&t.submitted_us);
                    if seen.insert(tx_id(raw)) && in_window {
                        delivered_unique += 1;
                        latencies.push(now.saturating_sub(t.submitted_us));
                    }
                }
                policy.delivered(d.epoch, d.block_hash(), &d.txs);
            }
            if let Some(e) = s.need_batch {
                pending_batch = Some(e);
                // Empty proposals wait a little so idle epochs do not spin.
                propose_at = Some(if policy.pending() > 0 {
                    Instant::now()
                } else {
                    Instant::now() + Duration::from_millis(20)
                });
            }
        }
        let now = Instant::now();
        let elapsed = now.duration_since(started);
        if !measuring && elapsed >= warmup && elapsed < measure_end {
            measuring = true;
            bytes_at_start = net.stats().peers.iter().map(|p| p.sent_bytes).sum();
        }
        if measuring && elapsed >= measure_end {
            measuring = false;
            bytes_at_end = net.stats().peers.iter().map(|p| p.sent_bytes).sum();
        }
        if elapsed >= end {
            break;
        }
        if let (Some(e), Some(at)) = (pending_batch, propose_at) {
            if now >= at || policy.pending() > 0 {
                pending_batch = None;
                propose_at = None;
                let batch = policy.next_batch(e);
                steps.push(replica.propose(e, batch));
                continue;
            }
        }
        if now >= next_tick {
            next_tick = now + Duration::from_millis(TICK_MS);
            steps.push(replica.handle_tick());
            continue;
        }
        let wait = propose_at
            .map_or(Duration::from_millis(20), |at| at.saturating_duration_since(now))
            .min(Duration::from_millis(20));
        match rx.recv_timeout(wait) {
            Ok(Input::Peer(from, bytes)) => match decode::<Message<_, _>>(&bytes, 64 << 20) {
                Ok(m) => steps.push(replica.handle_message(from, m)),
                Err(_) => continue,
            },
            Ok(Input::Txs(txs)) => {
                for t in txs {
                    policy.submit(t);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    latencies.sort_unstable();
    let secs = file.seconds.max(1) as f64;
    let sent = bytes_at_end.saturating_sub(bytes_at_start) as f64;
    let report = json!({
        "replica": me,
        "delivered_unique_tx_per_s": delivered_unique as f64 / secs,
        "latency_ms": { "p50": percentile(&latencies, 0.5), "p99": percentile(&latencies, 0.99) },
        "bytes_sent_per_delivered_tx": if delivered_unique > 0 { sent / delivered_unique as f64 } else { 0.0 },
        "epochs": epochs,
        "bad_signatures": bad_sigs,
        "pending_at_end": policy.pending(),
        "restored_epochs": restored_epochs,
        "epoch_digests": epoch_digests,
    });
    println!("{}", serde_json::to_string(&report)?);
    // Peers may still be talking to us; leave without a drawn-out shutdown.
    std::process::exit(0);
}
