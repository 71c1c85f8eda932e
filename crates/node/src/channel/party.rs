//! One party of a channel as its own process: a [`ChannelMachine`] driven
//! over an authenticated, encrypted link to the peer (gridledger-net with a
//! 2-member set whose identities are the two ESC keys), a durable snapshot
//! log ([`StoreFile`]: one appended, checksummed record and one fdatasync
//! per save) written *before*
//! `Input::Persisted` releases any signature, a worker that submits the
//! machine's transactions to a node over JSON-RPC, and a poller that feeds
//! the channel's chain events back.
//!
//! The user talks to a running party through [`PartyHandle`] (in process) or
//! its loopback control port (one JSON line per request, one per answer:
//! `{"cmd":"pay","energy":500,"price":120}`, `{"cmd":"open"}`,
//! `{"cmd":"close"}`, `{"cmd":"ask","energy":500,"price":120}` (a payment
//! request to the peer), `{"cmd":"status"}`, `{"cmd":"shutdown"}`). A
//! connection may carry any number of requests; each line is bounded.

use super::chainlink::{ChainLink, EventCursor};
use super::spec::{PartySpec, SpecError};
use gridledger_channels::disk::{Durability, StoreFile};
use gridledger_channels::machine::*;
use gridledger_contracts::cns::Trade;
use gridledger_core::{Amount, Energy, Hash32};
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum PartyError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Disk(#[from] gridledger_channels::disk::DiskError),
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error("network: {0}")]
    Net(String),
    #[error("chain: {0}")]
    Chain(#[from] super::chainlink::ChainError),
    #[error("control port: {0}")]
    Control(std::io::Error),
}

/// A user request to a running party.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    Open,
    /// Buy `energy` Wh at `price` per kWh (the amount follows, rounded down).
    Pay {
        energy: u64,
        price: u64,
    },
    Close,
    /// Ask the peer to buy `energy` Wh at `price` per kWh (a payment
    /// request; the peer pays by its own proposal, if it wants to).
    Ask {
        energy: u64,
        price: u64,
    },
    Status,
    Shutdown,
}

/// What a party answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    /// Done; the co-signed counter it produced.
    Done {
        counter: u64,
    },
    Status(PartyStatus),
    Error {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyStatus {
    pub side: u8,
    pub phase: String,
    pub counter: Option<u64>,
    pub balances: Option<[Amount; 2]>,
    pub energy: Option<[Energy; 2]>,
}

/// How a party runs.
#[derive(Clone, Debug)]
pub struct PartyOptions {
    pub durability: Durability,
    /// Side 0 proposes the open as soon as it starts (if not yet opened).
    pub auto_open: bool,
    /// Stop once the channel is closed on chain.
    pub exit_when_closed: bool,
    /// Serve the control port of the spec.
    pub control: bool,
    /// Clock tick (retransmission, timeouts, settlement).
    pub tick: Duration,
    /// Chain event poll interval.
    pub poll: Duration,
    /// Where to publish the channel's events (updates received, disputes
    /// seen, settlements), tagged with its channel id.
    pub events: Option<tokio::sync::broadcast::Sender<(Hash32, ChannelEvent)>>,
}

impl Default for PartyOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Fsync,
            auto_open: false,
            exit_when_closed: true,
            control: true,
            tick: Duration::from_millis(50),
            poll: Duration::from_millis(50),
            events: None,
        }
    }
}

/// What a finished party reports.
#[derive(Clone, Debug)]
pub struct PartyReport {
    pub phase: Phase,
    pub latest: Option<u64>,
    /// Snapshot saves and their total time.
    pub saves: u64,
    pub save_time: Duration,
    /// Every transaction submitted: method and hash.
    pub txs: Vec<(String, Hash32)>,
}

struct Request0 {
    cmd: Command,
    reply: oneshot::Sender<Reply>,
}

/// Talks to a party running in this process.
#[derive(Clone)]
pub struct PartyHandle {
    tx: mpsc::Sender<Request0>,
}

impl PartyHandle {
    pub async fn request(&self, cmd: Command) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request0 { cmd, reply }).await.is_err() {
            return Reply::Error { message: "party stopped".into() };
        }
        rx.await.unwrap_or(Reply::Error { message: "party stopped".into() })
    }
}

/// Sockets a caller bound for a party and hands over (so no port is picked,
/// released and re-bound: nothing can take it in between). Bind them with
/// [`super::spec::bind_loopback`]; a `try_clone` of a listener serves a
/// restarted party on the same port.
pub struct Listeners {
    pub peer: std::net::TcpListener,
    pub control: Option<std::net::TcpListener>,
}

/// The join handle of a running party.
pub type PartyJoin = tokio::task::JoinHandle<Result<PartyReport, PartyError>>;

/// Starts a party from its directory (`party.json`, `store.bin`), binding
/// the addresses its spec names.
pub fn spawn_party(dir: &Path, opts: PartyOptions) -> Result<(PartyHandle, PartyJoin), PartyError> {
    spawn(dir, opts, None)
}

/// [`spawn_party`] on listeners the caller already bound.
pub fn spawn_party_on(
    dir: &Path,
    opts: PartyOptions,
    listeners: Listeners,
) -> Result<(PartyHandle, PartyJoin), PartyError> {
    spawn(dir, opts, Some(listeners))
}

fn spawn(dir: &Path, opts: PartyOptions, listeners: Option<Listeners>) -> Result<(PartyHandle, PartyJoin), PartyError> {
    let spec = PartySpec::load(dir)?;
    let (tx, rx) = mpsc::channel(64);
    let dir = dir.to_path_buf();
    let h = tokio::spawn(async move { run(dir, spec, opts, listeners, rx).await });
    Ok((PartyHandle { tx }, h))
}

fn tokio_listener(l: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    l.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(l)
}

/// Runs a party until it is closed (with `exit_when_closed`) or shut down.
pub async fn run_party(dir: &Path, opts: PartyOptions) -> Result<PartyReport, PartyError> {
    let (handle, join) = spawn_party(dir, opts)?;
    let r = join.await.map_err(|e| PartyError::Net(e.to_string()))?;
    drop(handle);
    r
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What the user waits for.
enum Waiting {
    Open,
    Pay(u64),
    Close,
}

struct Loop {
    machine: ChannelMachine,
    disk: StoreFile,
    net: Network,
    peer: u32,
    txs: std::sync::mpsc::Sender<ChainTx>,
    pending: Option<(Waiting, oneshot::Sender<Reply>)>,
    events: Option<tokio::sync::broadcast::Sender<(Hash32, ChannelEvent)>>,
    cid: Hash32,
}

impl Loop {
    /// Persists, releases and sends: the only path by which anything leaves.
    fn carry_out(&mut self, first: Step) -> Result<(), PartyError> {
        let mut step = first;
        loop {
            if let Some(store) = step.persist.take() {
                // One fdatasync per update on the critical path of each
                // side's signing step; recording what we already sent may
                // lag (see `Step::persist_may_lag`), flushed on the next
                // save or tick.
                if step.persist_may_lag {
                    self.disk.save_lagging(&store)?;
                } else {
                    self.disk.save(&store)?;
                }
                let released = self.machine.handle(Input::Persisted(store.version))?;
                step.messages.extend(released.messages);
                step.txs.extend(released.txs);
                step.events.extend(released.events);
                if released.persist.is_some() {
                    step.persist = released.persist;
                    step.persist_may_lag = released.persist_may_lag;
                    continue;
                }
            }
            break;
        }
        for m in step.messages {
            // A full or down link drops it; the machine retransmits.
            let _ = self.net.send(self.peer, m.to_bytes());
        }
        for t in step.txs {
            let _ = self.txs.send(t);
        }
        for e in step.events {
            self.on_event(e);
        }
        Ok(())
    }

    fn on_event(&mut self, e: ChannelEvent) {
        tracing::debug!(?e, "channel event");
        if let Some(tx) = &self.events {
            // No subscriber is fine; a lagging one misses events, not us.
            let _ = tx.send((self.cid, e.clone()));
        }
        let done = match (&self.pending, &e) {
            (Some((Waiting::Open, _)), ChannelEvent::Opened) => {
                Some(Reply::Done { counter: self.machine.latest().map_or(0, |l| l.state.counter) })
            }
            (Some((Waiting::Pay(c), _)), ChannelEvent::PaymentSent { counter, .. }) if c == counter => {
                Some(Reply::Done { counter: *counter })
            }
            (Some((Waiting::Pay(c), _)), ChannelEvent::Rejected { counter, reason }) if c == counter => {
                Some(Reply::Error { message: format!("peer rejected: {reason}") })
            }
            (Some((Waiting::Close, _)), ChannelEvent::Closed { counter }) => Some(Reply::Done { counter: *counter }),
            (Some((Waiting::Open, _)), ChannelEvent::Rejected { reason, .. }) => {
                Some(Reply::Error { message: format!("peer rejected the open: {reason}") })
            }
            _ => None,
        };
        if let Some(r) = done {
            if let Some((_, tx)) = self.pending.take() {
                let _ = tx.send(r);
            }
        }
    }

    fn status(&self) -> PartyStatus {
        let l = self.machine.latest();
        PartyStatus {
            side: self.machine.store().side,
            phase: format!("{:?}", self.machine.phase()),
            counter: l.map(|l| l.state.counter),
            balances: l.map(|l| l.state.balances),
            energy: l.map(|l| l.state.energy),
        }
    }

    /// Handles a user command; false to stop.
    fn command(&mut self, r: Request0) -> Result<bool, PartyError> {
        let (req, waiting) = match r.cmd {
            Command::Status => {
                let _ = r.reply.send(Reply::Status(self.status()));
                return Ok(true);
            }
            Command::Shutdown => {
                let _ = r.reply.send(Reply::Done { counter: self.machine.latest().map_or(0, |l| l.state.counter) });
                return Ok(false);
            }
            Command::Open => (Request::Open, Waiting::Open),
            Command::Ask { energy, price } => {
                let req = Request::AskPayment { energy: Energy(energy), price_per_kwh: Amount(u128::from(price)) };
                let reply = match self.machine.handle(Input::User(req)) {
                    Err(e) => Reply::Error { message: e.to_string() },
                    Ok(step) => {
                        self.carry_out(step)?;
                        Reply::Done { counter: self.machine.latest().map_or(0, |l| l.state.counter) }
                    }
                };
                let _ = r.reply.send(reply);
                return Ok(true);
            }
            Command::Close => {
                if self.machine.phase() == Phase::Closed {
                    let c = self.machine.latest().map_or(0, |l| l.state.counter);
                    let _ = r.reply.send(Reply::Done { counter: c });
                    return Ok(true);
                }
                (Request::Close, Waiting::Close)
            }
            Command::Pay { energy, price } => {
                let (energy, price) = (Energy(energy), Amount(u128::from(price)));
                let Some(amount) = Trade::price_of(energy, price) else {
                    let _ = r.reply.send(Reply::Error { message: "amount overflows".into() });
                    return Ok(true);
                };
                (Request::Pay { amount, energy, price_per_kwh: price }, Waiting::Pay(0))
            }
        };
        if self.pending.is_some() {
            let _ = r.reply.send(Reply::Error { message: "another request is in progress".into() });
            return Ok(true);
        }
        match self.machine.handle(Input::User(req)) {
            Err(e) => {
                let _ = r.reply.send(Reply::Error { message: e.to_string() });
            }
            Ok(step) => {
                let waiting = match waiting {
                    Waiting::Pay(_) => {
                        let c =
                            step.persist.as_ref().and_then(|s| s.my_proposal.as_ref()).map_or(0, |p| p.state.counter);
                        Waiting::Pay(c)
                    }
                    w => w,
                };
                self.pending = Some((waiting, r.reply));
                self.carry_out(step)?;
            }
        }
        Ok(true)
    }
}

async fn run(
    dir: PathBuf,
    spec: PartySpec,
    opts: PartyOptions,
    listeners: Option<Listeners>,
    mut cmds: mpsc::Receiver<Request0>,
) -> Result<PartyReport, PartyError> {
    let keys = spec.keys()?;
    let (esc_key, account, nonce_seed) = (keys.esc, keys.account, keys.nonce_seed);
    let params = spec.params()?;
    let disk = StoreFile::open(&dir, opts.durability)?;
    let machine = match disk.load()? {
        Some(store) => ChannelMachine::restore(esc_key.clone(), nonce_seed, params, store)?,
        None => ChannelMachine::new(esc_key.clone(), nonce_seed, params),
    };
    let side = u32::from(spec.side & 1);
    let keys = if side == 0 { [esc_key.public(), spec.peer_key] } else { [spec.peer_key, esc_key.public()] };
    let set: Vec<PeerConfig> = (0..2u32)
        .map(|i| PeerConfig { index: i, public_key: keys[i as usize], addr: spec.addrs[i as usize] })
        .collect();
    let mut cfg = NetworkConfig::new(spec.cid, side, set);
    cfg.max_frame = MAX_MESSAGE_BYTES;
    cfg.backoff_max = Duration::from_millis(500);
    let (peer_listener, control_listener) = match listeners {
        Some(l) => (Some(l.peer), l.control),
        None => (None, None),
    };
    let started = match peer_listener {
        Some(l) => {
            let l = tokio_listener(l).map_err(PartyError::Control)?;
            Network::start_with_listener(cfg, esc_key, l).await
        }
        None => Network::start(cfg, esc_key).await,
    };
    let (net, mut inbound) = started.map_err(|e| PartyError::Net(e.to_string()))?;

    // Chain side: a submitter and an event poller on their own threads
    // (the RPC client blocks).
    let link = ChainLink::connect(&spec.rpc, account)?;
    let submitted: Arc<Mutex<Vec<(String, Hash32)>>> = Arc::default();
    let (tx_send, tx_recv) = std::sync::mpsc::channel::<ChainTx>();
    let sub2 = submitted.clone();
    let stop_submit = Arc::new(AtomicBool::new(false));
    let stop_sub2 = stop_submit.clone();
    let submitter = std::thread::spawn(move || {
        while let Ok(t) = tx_recv.recv() {
            // A node that is down or restarting must not cost the channel a
            // transaction: retry with back-off (the machine also re-emits
            // resolve, settle and close until the chain shows the outcome).
            let mut backoff = Duration::from_millis(100);
            loop {
                match link.submit_tx(&t) {
                    Ok(h) => {
                        sub2.lock().map(|mut v| v.push((t.method.to_string(), h))).unwrap_or(());
                        break;
                    }
                    Err(e) if stop_sub2.load(Ordering::Relaxed) => {
                        tracing::error!("giving up on {} at shutdown: {e}", t.method);
                        break;
                    }
                    Err(e) => {
                        tracing::error!("submitting {} failed, retrying in {backoff:?}: {e}", t.method);
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (ev_send, mut ev_recv) = mpsc::unbounded_channel::<ChainEvent>();
    let poller = {
        let stop = stop.clone();
        let client = crate::RpcClient::new(&spec.rpc);
        let mut cursor = EventCursor::new(spec.cid, spec.start_height);
        let every = opts.poll;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match cursor.poll(&client) {
                    Ok(evs) => {
                        for e in evs {
                            let resolved = matches!(e, ChainEvent::DisputeResolved { .. });
                            if ev_send.send(e).is_err() {
                                return;
                            }
                            // Learn the state the chain holds now.
                            if resolved {
                                if let Ok(Some(ch)) = super::chainlink::read_channel(&client, &cursor.cid) {
                                    let _ = ev_send.send(ChainEvent::OnChain(Box::new(ch.latest)));
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("polling events (retrying): {e}"),
                }
                std::thread::sleep(every);
            }
        })
    };

    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Request0>(16);
    let control = if opts.control {
        let l = match control_listener {
            Some(l) => tokio_listener(l).map_err(PartyError::Control)?,
            None => tokio::net::TcpListener::bind(spec.control).await.map_err(PartyError::Control)?,
        };
        Some(tokio::spawn(serve_control(l, ctl_tx)))
    } else {
        drop(ctl_tx);
        None
    };

    let mut lp = Loop {
        machine,
        disk,
        net,
        peer: 1 - side,
        txs: tx_send,
        pending: None,
        events: opts.events.clone(),
        cid: spec.cid,
    };
    if opts.auto_open && side == 0 && lp.machine.phase() == Phase::Idle && lp.machine.store().signed_upto.is_none() {
        let step = lp.machine.handle(Input::User(Request::Open))?;
        lp.carry_out(step)?;
    }
    let mut tick = tokio::time::interval(opts.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result: Result<(), PartyError> = async {
        loop {
            if opts.exit_when_closed && lp.machine.phase() == Phase::Closed {
                return Ok(());
            }
            tokio::select! {
                Some((from, bytes)) = inbound.recv() => {
                    if from != lp.peer {
                        continue;
                    }
                    // Undecodable bytes are dropped (bounded, never a panic).
                    if let Ok(step) = lp.machine.handle_bytes(&bytes) {
                        lp.carry_out(step)?;
                    }
                }
                Some(r) = cmds.recv() => {
                    if !lp.command(r)? {
                        return Ok(());
                    }
                }
                Some(r) = ctl_rx.recv() => {
                    if !lp.command(r)? {
                        return Ok(());
                    }
                }
                Some(e) = ev_recv.recv() => {
                    let step = lp.machine.handle(Input::Chain(e))?;
                    lp.carry_out(step)?;
                }
                _ = tick.tick() => {
                    lp.disk.flush()?;
                    let step = lp.machine.handle(Input::Tick(now_ms()))?;
                    lp.carry_out(step)?;
                }
            }
        }
    }
    .await;
    if let Some((_, r)) = lp.pending.take() {
        let _ = r.send(Reply::Error { message: "party stopped".into() });
    }
    stop.store(true, Ordering::Relaxed);
    stop_submit.store(true, Ordering::Relaxed);
    if let Some(c) = control {
        c.abort();
    }
    let Loop { machine, mut disk, net, txs, .. } = lp;
    disk.flush()?;
    drop(txs);
    // Let the last messages (e.g. the acceptance of a final state) go out.
    tokio::time::sleep(Duration::from_millis(50)).await;
    net.shutdown().await;
    let _ = tokio::task::spawn_blocking(move || {
        let _ = submitter.join();
        let _ = poller.join();
    })
    .await;
    result?;
    let (saves, save_time) = disk.stats();
    let txs = submitted.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(PartyReport { phase: machine.phase(), latest: machine.latest().map(|l| l.state.counter), saves, save_time, txs })
}

async fn serve_control(l: tokio::net::TcpListener, to_party: mpsc::Sender<Request0>) {
    while let Ok((sock, _)) = l.accept().await {
        let to_party = to_party.clone();
        tokio::spawn(async move {
            let (rd, wr) = sock.into_split();
            serve_connection(rd, wr, to_party).await;
        });
    }
}

/// Longest request line on the control port. The bound is per line: a
/// connection may carry any number of requests (no lifetime cap).
pub const MAX_CONTROL_LINE: u64 = 4096;

/// Serves one control connection: one JSON request per line, one answer
/// per line. A line over [`MAX_CONTROL_LINE`] is answered with an error and
/// ends the connection.
async fn serve_connection<R, W>(rd: R, mut wr: W, to_party: mpsc::Sender<Request0>)
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut reader = BufReader::new(rd);
    loop {
        let mut line = String::new();
        let n = match (&mut reader).take(MAX_CONTROL_LINE + 1).read_line(&mut line).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = !line.ends_with('\n') && n as u64 > MAX_CONTROL_LINE;
        let reply = if too_long {
            Reply::Error { message: format!("request longer than {MAX_CONTROL_LINE} bytes") }
        } else {
            match serde_json::from_str::<Command>(line.trim_end()) {
                Err(e) => Reply::Error { message: format!("bad request: {e}") },
                Ok(cmd) => {
                    let (reply, rx) = oneshot::channel();
                    if to_party.send(Request0 { cmd, reply }).await.is_err() {
                        Reply::Error { message: "party stopped".into() }
                    } else {
                        rx.await.unwrap_or(Reply::Error { message: "party stopped".into() })
                    }
                }
            }
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() || too_long {
            return;
        }
    }
}

/// Sends one command to a party's control port and reads its answer
/// (blocking; for the CLI).
pub fn control_request(addr: std::net::SocketAddr, cmd: &Command, timeout: Duration) -> Result<Reply, std::io::Error> {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(cmd).map_err(std::io::Error::other)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut r = std::io::BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out)?;
    serde_json::from_str(&out).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands of requests on one control connection (a client that keeps
    /// its connection, as a dashboard would) are all answered; an overlong
    /// line is refused.
    #[tokio::test]
    async fn one_control_connection_serves_any_number_of_requests() {
        let (tx, mut rx) = mpsc::channel::<Request0>(16);
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let _ = r.reply.send(Reply::Done { counter: 7 });
            }
        });
        let (client, server) = tokio::io::duplex(1 << 16);
        let (srd, swr) = tokio::io::split(server);
        tokio::spawn(serve_connection(srd, swr, tx));
        let (crd, mut cwr) = tokio::io::split(client);
        let mut lines = BufReader::new(crd).lines();
        let req = "{\"cmd\":\"pay\",\"energy\":500,\"price\":120}\n";
        // 5,000 × 40 bytes = 200 KB: three times the old 64 KiB lifetime cap.
        for i in 0..5_000 {
            cwr.write_all(req.as_bytes()).await.unwrap();
            let line = lines.next_line().await.unwrap().unwrap_or_else(|| panic!("closed at request {i}"));
            assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), Reply::Done { counter: 7 }, "request {i}");
        }
        let long = format!("{}\n", "x".repeat(MAX_CONTROL_LINE as usize + 10));
        cwr.write_all(long.as_bytes()).await.unwrap();
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(matches!(serde_json::from_str::<Reply>(&line).unwrap(), Reply::Error { .. }));
        assert_eq!(lines.next_line().await.unwrap(), None, "connection ended after the overlong line");
    }
}
