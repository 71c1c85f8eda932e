//! aleph-bft side by side with `gridledger bench lbft`.
//!
//! `gridledger-peer-aleph bench --replicas N --rate R --seconds S [--opaque]
//! [--batch B] [--unit-ms U] [--json]` spawns N processes of itself, each
//! an aleph-bft member over loopback TCP, feeds each the same 300-byte
//! transactions from the same generator as our bench
//! (`gridledger_core::bench_tx`), and prints the same JSON keys:
//! delivered unique tx/s (the slowest replica), p50/p99 latency from
//! submit to delivery (the worst replica), bytes sent per delivered
//! transaction, and whether every replica finalized the same sequence.
//!
//! What is and is not compared: aleph-bft is driven with its own mock
//! keychain (unit signatures are message copies, not cryptography) and a
//! SHA-256 unit hasher; our LBFT certifies every batch with `2f + 1`
//! Ed25519 signed echoes and flips its coin with BLS threshold keys. With
//! `--opaque` neither side checks transaction signatures (the ordering
//! layer alone); without it every replica checks
//! each finalized transaction's secp256k1 signature once, as ours does.
//! The unit backup goes to a file without fsync (aleph-bft's own example
//! does the same); our replicas fsync one record per step.

use std::collections::{HashSet, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aleph_bft::{NodeIndex, Recipient, Terminator};
use aleph_bft_mock::{Keychain, PartialMultisignature, Signature, Spawner};
use codec::{Decode, Encode};
use futures::channel::oneshot;
use gridledger_core::bench_tx::{self, client_key, now_us, TX_BYTES};
use serde_json::json;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

/// SHA-256 as aleph-bft's unit hasher.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sha256Hasher;

impl aleph_bft::Hasher for Sha256Hasher {
    type Hash = [u8; 32];
    fn hash(s: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(s).into()
    }
}

/// What a unit carries: a batch of encoded transactions.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
struct Batch(Vec<Vec<u8>>);

type NetworkData = aleph_bft::NetworkData<Sha256Hasher, Batch, Signature, PartialMultisignature>;

/// Largest frame a peer may send (a unit with a full batch is far below).
const MAX_FRAME: usize = 64 << 20;

struct Net {
    me: usize,
    out: Vec<Option<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>>,
    inbox: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
}

#[async_trait::async_trait]
impl aleph_bft::Network<NetworkData> for Net {
    fn send(&self, data: NetworkData, recipient: Recipient) {
        let bytes = data.encode();
        match recipient {
            Recipient::Everyone => {
                for (i, o) in self.out.iter().enumerate() {
                    if let (Some(o), true) = (o, i != self.me) {
                        let _ = o.send(bytes.clone());
                    }
                }
            }
            Recipient::Node(NodeIndex(i)) => {
                if let Some(Some(o)) = self.out.get(i) {
                    let _ = o.send(bytes);
                }
            }
        }
    }

    async fn next_event(&mut self) -> Option<NetworkData> {
        loop {
            let bytes = self.inbox.recv().await?;
            if let Ok(d) = NetworkData::decode(&mut &bytes[..]) {
                return Some(d);
            }
        }
    }
}

struct Provider {
    queue: Arc<Mutex<VecDeque<Vec<u8>>>>,
    batch: usize,
}

#[async_trait::async_trait]
impl aleph_bft::DataProvider for Provider {
    type Output = Batch;
    async fn get_data(&mut self) -> Option<Batch> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.is_empty() {
            return None;
        }
        let k = q.len().min(self.batch);
        Some(Batch(q.drain(..k).collect()))
    }
}

struct Finalized(std::sync::mpsc::Sender<Batch>);

impl aleph_bft::FinalizationHandler<Batch> for Finalized {
    fn data_finalized(&mut self, data: Batch) {
        let _ = self.0.send(data);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|_| format!("{name}: not a valid value")),
    }
}

struct Params {
    replicas: usize,
    rate: u64,
    seconds: u64,
    batch: usize,
    unit_ms: u64,
    opaque: bool,
}

fn params(args: &[String]) -> Result<Params, String> {
    let p = Params {
        replicas: arg(args, "--replicas", 4)?,
        rate: arg(args, "--rate", 8_000)?,
        seconds: arg(args, "--seconds", 10)?,
        batch: arg(args, "--batch", 4_000)?,
        unit_ms: arg(args, "--unit-ms", 5)?,
        opaque: args.iter().any(|a| a == "--opaque"),
    };
    if p.replicas < 4 {
        return Err("--replicas must be at least 4 (n = 3f + 1, f >= 1)".into());
    }
    if p.seconds == 0 || p.batch == 0 {
        return Err("--seconds and --batch must be positive".into());
    }
    Ok(p)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("replica") => replica(&args[1..]),
        _ => Err("usage: gridledger-peer-aleph bench --replicas N --rate TX_PER_S --seconds S \
                  [--opaque] [--batch B] [--unit-ms MS] [--json]"
            .into()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn bench(args: &[String]) -> Result<(), String> {
    let p = params(args)?;
    let n = p.replicas;
    let ports: Vec<u16> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("no free loopback port: {e}"))?;
    let ports_arg = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let backup = std::env::temp_dir().join(format!("gridledger-peer-aleph-{}", std::process::id()));
    std::fs::create_dir_all(&backup).map_err(|e| format!("{}: {e}", backup.display()))?;
    let mut children = Vec::new();
    for i in 0..n {
        let mut c = std::process::Command::new(&exe);
        c.args(["replica", "--id", &i.to_string(), "--ports", &ports_arg])
            .args(["--rate", &(p.rate / n as u64).to_string(), "--seconds", &p.seconds.to_string()])
            .args(["--batch", &p.batch.to_string(), "--unit-ms", &p.unit_ms.to_string()])
            .arg("--backup")
            .arg(backup.join(format!("{i}.units")))
            .stdout(std::process::Stdio::piped());
        if p.opaque {
            c.arg("--opaque");
        }
        children.push(c.spawn().map_err(|e| format!("spawning replica {i}: {e}"))?);
    }
    let mut reports = Vec::new();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("replica {i} failed: {}", out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("{}");
        reports.push(serde_json::from_str::<serde_json::Value>(last).map_err(|e| e.to_string())?);
    }
    let _ = std::fs::remove_dir_all(&backup);
    let f = |k: &str| -> Vec<f64> { reports.iter().filter_map(|r| r[k].as_f64()).collect() };
    let lat = |k: &str| -> f64 { reports.iter().filter_map(|r| r["latency_ms"][k].as_f64()).fold(0.0, f64::max) };
    let seqs: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            r["batch_digests"]
                .as_array()
                .map(|v| v.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        })
        .collect();
    let same = seqs.iter().all(|a| seqs.iter().all(|b| a.iter().zip(b).all(|(x, y)| x == y)));
    let bytes = f("bytes_sent_per_delivered_tx");
    let out = json!({
        "bench": "aleph-bft",
        "aleph_bft_version": "0.45",
        "replicas": n,
        "opaque": p.opaque,
        "tx_bytes": TX_BYTES,
        "offered_tx_per_s": p.rate,
        "seconds": p.seconds,
        "unit_creation_delay_ms": p.unit_ms,
        "delivered_unique_tx_per_s": f("delivered_unique_tx_per_s").into_iter().fold(f64::INFINITY, f64::min),
        "latency_ms": { "p50": lat("p50"), "p99": lat("p99") },
        "bytes_sent_per_delivered_tx": bytes.iter().sum::<f64>() / bytes.len().max(1) as f64,
        "same_delivered_sequence": same,
        "per_replica": reports.iter().map(|r| {
            let mut r = r.clone();
            if let Some(o) = r.as_object_mut() { o.remove("batch_digests"); }
            r
        }).collect::<Vec<_>>(),
    });
    let text = if args.iter().any(|a| a == "--json") {
        serde_json::to_string(&out)
    } else {
        serde_json::to_string_pretty(&out)
    };
    println!("{}", text.map_err(|e| e.to_string())?);
    Ok(())
}

fn replica(args: &[String]) -> Result<(), String> {
    let p = params(&{
        // The parent passes the per-replica rate; reuse the parser.
        let mut a = args.to_vec();
        a.extend(["--replicas".into(), "4".into()]);
        a
    })?;
    let me: usize = arg(args, "--id", usize::MAX)?;
    let ports: Vec<u16> = arg::<String>(args, "--ports", String::new())?
        .split(',')
        .map(|s| s.parse::<u16>().map_err(|_| format!("--ports: {s:?} is not a port")))
        .collect::<Result<_, _>>()?;
    let n = ports.len();
    if me >= n {
        return Err(format!("--id {me} is not below the number of ports ({n})"));
    }
    let backup: String = arg(args, "--backup", String::new())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(run_replica(me, ports, backup, p))
}

async fn run_replica(me: usize, ports: Vec<u16>, backup: String, p: Params) -> Result<(), String> {
    let n = ports.len();
    let sent = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], ports[me])))
        .await
        .map_err(|e| format!("bind {}: {e}", ports[me]))?;
    let (in_tx, inbox) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    // Inbound: one reader per accepted connection, length-prefixed frames.
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let _ = sock.set_nodelay(true);
            let in_tx = in_tx.clone();
            tokio::spawn(async move {
                let mut sock = tokio::io::BufReader::with_capacity(1 << 20, sock);
                loop {
                    let Ok(len) = sock.read_u32_le().await else { return };
                    if len as usize > MAX_FRAME {
                        return;
                    }
                    let mut buf = vec![0u8; len as usize];
                    if sock.read_exact(&mut buf).await.is_err() || in_tx.send(buf).is_err() {
                        return;
                    }
                }
            });
        }
    });
    // Outbound: one writer per peer, flushed when its queue is empty.
    let mut out = Vec::with_capacity(n);
    for (i, port) in ports.iter().enumerate() {
        if i == me {
            out.push(None);
            continue;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], *port));
        let t0 = Instant::now();
        let sock = loop {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => break s,
                Err(_) if t0.elapsed() < Duration::from_secs(30) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(format!("replica {me} could not reach replica {i} at {addr}: {e}")),
            }
        };
        let _ = sock.set_nodelay(true);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut w = BufWriter::with_capacity(1 << 20, sock);
            while let Some(mut frame) = rx.recv().await {
                loop {
                    let ok = w.write_u32_le(frame.len() as u32).await.is_ok() && w.write_all(&frame).await.is_ok();
                    if !ok {
                        return;
                    }
                    sent.fetch_add(4 + frame.len() as u64, Ordering::Relaxed);
                    match rx.try_recv() {
                        Ok(next) => frame = next,
                        Err(_) => break,
                    }
                }
                if w.flush().await.is_err() {
                    return;
                }
            }
        });
        out.push(Some(tx));
    }
    let net = Net { me, out, inbox };

    let queue: Arc<Mutex<VecDeque<Vec<u8>>>> = Arc::new(Mutex::new(VecDeque::new()));
    let warmup = Duration::from_secs(1);
    let measure_end = warmup + Duration::from_secs(p.seconds);
    let end = measure_end + Duration::from_secs(2);
    let window_start = now_us() + warmup.as_micros() as u64;
    let window_end = window_start + p.seconds * 1_000_000;
    // Load generator: this replica's clients at `rate` tx/s in 10 ms ticks.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (queue, stop, rate, opaque) = (queue.clone(), stop.clone(), p.rate, p.opaque);
        std::thread::spawn(move || {
            let key = client_key(me as u32);
            let mut counter = 0u64;
            let t0 = Instant::now();
            while t0.elapsed() < measure_end && !stop.load(Ordering::Relaxed) {
                let due = (t0.elapsed().as_micros() as u64 * rate / 1_000_000).saturating_sub(counter);
                let txs: Vec<Vec<u8>> =
                    (0..due).map(|k| bench_tx::make_tx(&key, me as u32, counter + k, opaque)).collect();
                counter += due;
                queue.lock().unwrap_or_else(|e| e.into_inner()).extend(txs);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
    // Finalized batches: checked, counted and timed on their own thread.
    let (fin_tx, fin_rx) = std::sync::mpsc::channel::<Batch>();
    let opaque = p.opaque;
    let done = Arc::new(AtomicBool::new(false));
    let collector_done = done.clone();
    let collector = std::thread::spawn(move || {
        let client_keys: Vec<_> = (0..n as u32).map(|i| client_key(i).public()).collect();
        let mut seen: HashSet<(u32, u64)> = HashSet::new();
        let mut latencies = Vec::new();
        let mut digests = Vec::new();
        let mut bad = 0u64;
        let mut batches = 0u64;
        loop {
            let b = match fin_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(b) => b,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if !collector_done.load(Ordering::Relaxed) => continue,
                Err(_) => break,
            };
            let now = now_us();
            batches += 1;
            digests.push(hex(&sha2::Sha256::digest(b.encode())));
            let txs = bench_tx::parse(&b.0);
            if !opaque {
                bad += bench_tx::count_bad_signatures(&txs, &client_keys);
            }
            for t in &txs {
                if seen.insert((t.client, t.counter)) && (window_start..window_end).contains(&t.submitted_us) {
                    latencies.push(now.saturating_sub(t.submitted_us));
                }
            }
        }
        (seen.len(), latencies, digests, bad, batches)
    });

    let (backup_file, loader) = if backup.is_empty() {
        (None, Vec::new())
    } else {
        (Some(std::fs::File::create(&backup).map_err(|e| format!("{backup}: {e}"))?), Vec::new())
    };
    let saver: Box<dyn futures::AsyncWrite + Send + Sync + Unpin> = match backup_file {
        Some(f) => Box::new(futures::io::AllowStdIo::new(f)),
        None => Box::new(futures::io::sink()),
    };
    let local_io = aleph_bft::LocalIO::new(
        Provider { queue: queue.clone(), batch: p.batch },
        Finalized(fin_tx),
        saver,
        futures::io::Cursor::new(loader),
    );
    let (exit_tx, exit_rx) = oneshot::channel();
    let terminator = Terminator::create_root(exit_rx, "peer-aleph");
    let mut delay = aleph_bft::default_delay_config();
    let unit_ms = p.unit_ms;
    delay.unit_creation_delay = Arc::new(move |_| Duration::from_millis(unit_ms));
    let config = aleph_bft::create_config(n.into(), me.into(), 0, u16::MAX, delay, Duration::ZERO)
        .map_err(|_| "aleph-bft refused the configuration".to_string())?;
    let keychain = Keychain::new(n.into(), me.into());
    let member = tokio::spawn(aleph_bft::run_session(config, local_io, net, keychain, Spawner, terminator));

    let started = Instant::now();
    tokio::time::sleep(warmup).await;
    let bytes_start = sent.load(Ordering::Relaxed);
    tokio::time::sleep(measure_end - started.elapsed().min(measure_end)).await;
    let bytes_end = sent.load(Ordering::Relaxed);
    tokio::time::sleep(end - started.elapsed().min(end)).await;
    stop.store(true, Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    let _ = exit_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), member).await;
    let (_unique_all, mut latencies, digests, bad, batches) =
        collector.join().map_err(|_| "collector thread panicked".to_string())?;
    latencies.sort_unstable();
    let delivered = latencies.len() as f64;
    let secs = p.seconds as f64;
    let pending = queue.lock().unwrap_or_else(|e| e.into_inner()).len();
    let report = json!({
        "replica": me,
        "delivered_unique_tx_per_s": delivered / secs,
        "latency_ms": {
            "p50": bench_tx::percentile_ms(&latencies, 0.5),
            "p99": bench_tx::percentile_ms(&latencies, 0.99),
        },
        "bytes_sent_per_delivered_tx": if delivered > 0.0 { bytes_end.saturating_sub(bytes_start) as f64 / delivered } else { 0.0 },
        "finalized_batches": batches,
        "bad_signatures": bad,
        "pending_at_end": pending,
        "batch_digests": digests,
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{report}");
    let _ = stdout.flush();
    // Peers may still be talking to us; leave without a drawn-out shutdown.
    std::process::exit(0);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
