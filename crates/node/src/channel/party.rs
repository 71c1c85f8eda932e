//! One party of a channel as its own process: a [`ChannelMachine`] driven
//! over an authenticated, encrypted link to the peer (gridledger-net with a
//! 2-member set whose identities are the two ESC keys), a durable snapshot
//! log ([`StoreFile`]: appended, checksummed records) written *before*
//! `Input::Persisted` releases any signature, a worker that submits the
//! machine's transactions to a node over JSON-RPC, and a poller that feeds
//! the channel's chain events back.
//!
//! **Group commit.** The loop never waits for the disk: every store a step
//! asks to persist goes to a persister thread, which takes all stores queued
//! since its last write, appends only the newest (a record is a whole store,
//! so it covers the others) and makes it durable with one `fdatasync`, then
//! reports `Persisted(version)`, which releases every message held for that
//! version or an older one. With a proposal window of W updates in flight
//! one fdatasync covers many proposals (or acceptances), and a signature
//! still never leaves before the store that holds it is durable. Nor does
//! an answer: the events of a step (a payment's `Done`, an event-stream
//! entry) wait until its store is persisted, and a store whose step tells
//! anything is synced, not left lagging. Payments
//! asked for while the window is full wait in a bounded queue and are
//! proposed, in order, as the window frees.
//!
//! The user talks to a running party through [`PartyHandle`] (in process) or
//! its control channel — on Unix the socket `control.sock` in the party
//! directory (directory 0700, socket 0600), a loopback TCP port only where
//! one is handed over ([`spawn_party_on`]) or on other targets — (one JSON
//! line per request, one per answer:
//! `{"cmd":"pay","energy":500,"price":120}`, `{"cmd":"open"}`,
//! `{"cmd":"close"}`, `{"cmd":"ask","energy":500,"price":120}` (a payment
//! request to the peer), `{"cmd":"status"}`, `{"cmd":"shutdown"}`), each
//! line also carrying `"token"`: the secret the party writes, at each
//! start, to `control.token` in its directory (mode 0600). The first line
//! without it ends the connection (see [`super::control`]). A connection
//! may carry any number of requests; each line is bounded.

use super::chainlink::{ChainLink, EventCursor};
use super::spec::{PartySpec, SpecError};
use gridledger_channels::disk::{Durability, StoreFile};
use gridledger_channels::machine::*;
use gridledger_contracts::cns::Trade;
use gridledger_core::{Amount, Energy, Hash32};
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
    /// Add `amount` minor units to this side (`channel_topup`, then the
    /// co-signed state that allocates it): by deposit, or for a side funded
    /// by credit note with a merchant-signed top-up note, checked against
    /// the chain first (another channel or side, already used, above the
    /// approved credit, bad signature: refused, nothing sent).
    TopUp {
        amount: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credit_note: Option<super::merchant::TopUpNote>,
    },
    /// Take `amount` minor units of this side's balance out, the channel
    /// staying open (a co-signed state, then `channel_withdraw`).
    Withdraw {
        amount: u64,
    },
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
    /// Proposal window (updates in flight); `None`: the spec's
    /// ([`gridledger_channels::machine::DEFAULT_WINDOW`]).
    pub window: Option<usize>,
    /// Where the party's own alerts go (a listening address it cannot bind).
    pub alerts: super::alert::AlertHook,
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
            window: None,
            alerts: super::alert::AlertHook::default(),
        }
    }
}

/// What a finished party reports.
#[derive(Clone, Debug)]
pub struct PartyReport {
    pub phase: Phase,
    pub latest: Option<u64>,
    /// Store records written (one per group commit), their total time,
    /// and the fdatasyncs done.
    pub saves: u64,
    pub save_time: Duration,
    pub syncs: u64,
    /// Stores the machine asked to persist (each covered by a record).
    pub persists: u64,
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

/// Binds a TCP listener as the network layer does (address reuse, so a
/// restarted party gets its port back while old links sit in TIME_WAIT).
fn bind_tcp(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Failed binds of one listening address: logged each time, alerted at the
/// first and every [`super::alert::ALERT_AFTER_ATTEMPTS`]-th after.
struct ListenFails {
    cid: Hash32,
    what: &'static str,
    addr: std::net::SocketAddr,
    alerts: super::alert::AlertHook,
    attempts: u32,
}

impl ListenFails {
    fn new(cid: Hash32, what: &'static str, addr: std::net::SocketAddr, alerts: super::alert::AlertHook) -> Self {
        ListenFails { cid, what, addr, alerts, attempts: 0 }
    }

    fn failed(&mut self, e: &std::io::Error) {
        self.attempts = self.attempts.saturating_add(1);
        tracing::warn!("cannot bind the {} address {} (attempt {}): {e}", self.what, self.addr, self.attempts);
        if self.attempts == 1 || self.attempts.is_multiple_of(super::alert::ALERT_AFTER_ATTEMPTS) {
            self.alerts.alert(&super::alert::Alert::ListenFailing {
                cid: self.cid,
                what: self.what.into(),
                addr: self.addr.to_string(),
                attempts: self.attempts,
                last_error: e.to_string(),
            });
        }
    }
}

/// The party's control channel could not be set up: it runs on without
/// it (still guarding the channel), says so on stderr and alerts.
fn control_failing(spec: &PartySpec, dir: &Path, opts: &PartyOptions, e: &std::io::Error) {
    let path = dir.join(super::control::CONTROL_SOCKET_FILE).display().to_string();
    eprintln!(
        "channel {}: control channel {path} unavailable ({e}); the party runs on without it, guarding the channel",
        spec.cid
    );
    opts.alerts.alert(&super::alert::Alert::ControlFailing { cid: spec.cid, path, last_error: e.to_string() });
}

/// Back-off between tries to bind a listening address: 100 ms doubling to
/// 5 s.
const BIND_RETRY_MAX: Duration = Duration::from_secs(5);

/// Keeps trying to bind `listen` (the spec's peer address, squatted when
/// the party started); once bound, hands the listener over through `to` so
/// that the party restarts its network *on it*. The party never forwards
/// that address to its temporary port: through a forwarder every
/// connection would reach the network from 127.0.0.1, losing the network's
/// per-address handshake accounting (a pool kept for the peer's address, at
/// most `max_pending_handshakes_per_addr` from any other), so one outsider
/// could hold every slot and keep a peer that can only dial in out. Ends
/// once handed over, or when aborted.
async fn bind_when_free(
    listen: std::net::SocketAddr,
    mut fails: ListenFails,
    to: mpsc::Sender<tokio::net::TcpListener>,
) {
    let mut backoff = Duration::from_millis(100);
    let l = loop {
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BIND_RETRY_MAX);
        match bind_tcp(listen) {
            Ok(l) => break l,
            Err(e) => fails.failed(&e),
        }
    };
    tracing::info!("bound the {} address {listen} again; the network moves onto it", fails.what);
    let _ = to.send(l).await;
}

/// A TCP control port (non-Unix targets): bound with back-off until the
/// address is free, then served; the party runs meanwhile.
#[cfg_attr(unix, allow(dead_code))]
async fn serve_control_when_bound(
    addr: std::net::SocketAddr,
    token: String,
    to_party: mpsc::Sender<Request0>,
    mut fails: ListenFails,
) {
    let mut backoff = Duration::from_millis(100);
    let l = loop {
        match bind_tcp(addr) {
            Ok(l) => break l,
            Err(e) => fails.failed(&e),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BIND_RETRY_MAX);
    };
    serve_control(l, token, to_party).await
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

/// What the user waits for (open and close; payments wait by counter).
enum Waiting {
    Open,
    Close,
    /// A top-up: done when a co-signed state allocates it.
    TopUp,
    /// A withdrawal: done when co-signed (`channel_withdraw` then pays it).
    Withdraw,
}

/// The answer to a top-up whose allocation a close preempted.
pub const TOPUP_PREEMPTED: &str =
    "top-up preempted by close: not allocated yet; the contract refunds an unallocated top-up at close";

/// Payments waiting for a free slot in the proposal window, at most.
pub const MAX_QUEUED_PAYS: usize = 8192;

/// The answer to a withdrawal that a close preempted (in flight or queued).
pub const WITHDRAWAL_PREEMPTED: &str = "close requested: this withdrawal is dropped (the close pays the whole \
     balance out; a withdrawal the peer co-signs first is paid with it)";

/// Withdrawals waiting in the queue, at most (each needs its own co-signed
/// state with an empty window).
pub const MAX_QUEUED_WITHDRAWALS: usize = 16;

/// The answer to a withdrawal refused because the queue is full.
pub const WITHDRAWAL_QUEUE_FULL: &str = "withdrawal queue full: too many requests waiting, try again later";

/// A store for the persister thread; `sync`: some message waits on it.
type PersistJob = (ChannelStore, bool);

/// The persister thread (group commit): takes every queued store, appends
/// the newest, syncs once if any of them needs it, reports its version.
/// A lagging write left unsynced is synced after `idle` without new work.
fn persister(
    mut disk: StoreFile,
    jobs: std::sync::mpsc::Receiver<PersistJob>,
    done: mpsc::UnboundedSender<Result<u64, gridledger_channels::disk::DiskError>>,
    idle: Duration,
) -> (StoreFile, u64) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut persists = 0u64;
    loop {
        let (mut store, mut sync) = match jobs.recv_timeout(idle) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = disk.flush() {
                    let _ = done.send(Err(e));
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        persists += 1;
        // Versions only grow: the newest store covers every older one.
        while let Ok((s, y)) = jobs.try_recv() {
            persists += 1;
            store = s;
            sync |= y;
        }
        let r = if sync { disk.save(&store) } else { disk.save_lagging(&store) };
        match r {
            Ok(()) => {
                if done.send(Ok(store.version)).is_err() {
                    break;
                }
            }
            Err(e) => {
                // A failed write stops the party (nothing more is released).
                let _ = done.send(Err(e));
                break;
            }
        }
    }
    if let Err(e) = disk.flush() {
        tracing::error!("final flush of the channel store: {e}");
    }
    (disk, persists)
}

/// Events (and so the replies and event-stream entries they produce) held
/// until the store of the step that produced them is persisted: persist,
/// then tell. A step's events follow its store; a step without a store
/// queues its events behind any still held, so order is kept.
#[derive(Debug, Default)]
struct EventGate {
    held: VecDeque<(u64, Vec<ChannelEvent>)>,
}

impl EventGate {
    /// The events of a step whose store (if any) has `version`: those that
    /// may be acted on now (none while anything is held).
    fn hold(&mut self, version: Option<u64>, events: Vec<ChannelEvent>) -> Vec<ChannelEvent> {
        match (version, self.held.back_mut()) {
            (Some(v), _) => {
                self.held.push_back((v, events));
                vec![]
            }
            (None, Some((_, last))) => {
                last.extend(events);
                vec![]
            }
            (None, None) => events,
        }
    }

    /// The events whose store is now persisted (`version` or older), in order.
    fn release(&mut self, version: u64) -> Vec<ChannelEvent> {
        let mut out = vec![];
        while self.held.front().is_some_and(|(v, _)| *v <= version) {
            out.extend(self.held.pop_front().map(|(_, e)| e).unwrap_or_default());
        }
        out
    }
}

struct Loop {
    machine: ChannelMachine,
    /// Events waiting for their store to be persisted.
    gate: EventGate,
    persist: std::sync::mpsc::Sender<PersistJob>,
    /// The peer link (none only while it moves onto a rebound address).
    net: Option<Network>,
    peer: u32,
    txs: std::sync::mpsc::Sender<ChainTx>,
    pending: Option<(Waiting, oneshot::Sender<Reply>)>,
    /// Payments proposed and not yet answered, by counter (several where
    /// the update folds several).
    pays: BTreeMap<u64, Vec<oneshot::Sender<Reply>>>,
    /// Payments and withdrawals waiting for the window, oldest first.
    queued: VecDeque<(Request, oneshot::Sender<Reply>)>,
    events: Option<tokio::sync::broadcast::Sender<(Hash32, ChannelEvent)>>,
    cid: Hash32,
    /// The node, for checks of user input against the chain.
    rpc: String,
    /// Asks the event poller for a read of the channel's registered state
    /// (a machine's `read_channel`). The poller answers in line with the
    /// events it hands on, so an answer is never older than an event
    /// before it and answers arrive in the order they were read (a read on
    /// a thread of its own could answer after a newer event or read and
    /// lower the chain's counter the machine remembers).
    reads: std::sync::mpsc::Sender<()>,
}

impl Loop {
    /// Hands the store to the persister, sends what the machine released:
    /// the only path by which anything leaves. Signed messages stay held
    /// inside the machine until `Persisted` comes back.
    fn carry_out(&mut self, step: Step) -> Result<(), PartyError> {
        let version = step.persist.as_ref().map(|s| s.version);
        if let Some(store) = step.persist {
            // A step that tells anyone anything (a payment answered, an
            // event published) is synced before it is told: an answered
            // payment survives a power cut too, not only a process crash.
            let sync = !step.persist_may_lag || !step.events.is_empty();
            if self.persist.send((store, sync)).is_err() {
                return Err(PartyError::Net("the persister stopped".into()));
            }
        }
        for m in step.messages {
            // A full or down link drops it; the machine retransmits.
            if let Some(net) = &self.net {
                let _ = net.send(self.peer, m.to_bytes());
            }
        }
        for t in step.txs {
            let _ = self.txs.send(t);
        }
        if step.read_channel {
            // Read off the loop, by the event poller (blocking RPC, with its
            // own back-off); the answer joins the chain events in order.
            let _ = self.reads.send(());
        }
        for e in self.gate.hold(version, step.events) {
            self.on_event(e);
        }
        Ok(())
    }

    /// The persister made `version` durable: the events held for it go
    /// out, then what the machine releases.
    fn persisted(&mut self, version: u64) -> Result<(), PartyError> {
        for e in self.gate.release(version) {
            self.on_event(e);
        }
        let step = self.machine.handle(Input::Persisted(version))?;
        self.carry_out(step)
    }

    fn on_event(&mut self, e: ChannelEvent) {
        tracing::debug!(?e, "channel event");
        match &e {
            ChannelEvent::PaymentSent { counter, .. } => {
                for r in self.pays.remove(counter).unwrap_or_default() {
                    let _ = r.send(Reply::Done { counter: *counter });
                }
            }
            ChannelEvent::Rejected { counter, reason } => {
                for r in self.pays.remove(counter).unwrap_or_default() {
                    let _ = r.send(Reply::Error { message: format!("peer rejected: {reason}") });
                }
            }
            ChannelEvent::Retried { from, to } => {
                // Lost a simultaneous-proposal collision and proposed again.
                if let Some(rs) = self.pays.remove(from) {
                    self.pays.entry(*to).or_default().extend(rs);
                }
            }
            ChannelEvent::FellBack { counter } => {
                let was_pay = self.pays.contains_key(counter);
                // A withdrawal not co-signed within t_Δ fell back: its
                // request is answered, so the user can close (through the
                // dispute if the peer is gone). (A top-up's allocation that
                // falls back is proposed again while the chain shows the
                // top-up: the top-up still waits for it.)
                if !was_pay && matches!(self.pending, Some((Waiting::Withdraw, _))) {
                    if let Some((_, tx)) = self.pending.take() {
                        let _ = tx.send(Reply::Error {
                            message: format!("update {counter} not co-signed within t_delta: fell back"),
                        });
                    }
                }
                for r in self.pays.remove(counter).unwrap_or_default() {
                    let _ = r.send(Reply::Error {
                        message: format!("payment {counter} not co-signed within t_delta: fell back"),
                    });
                }
            }
            ChannelEvent::CoSigned(c) => {
                // Co-signed through the chain or a late acceptance: every
                // payment at or below it is settled one way or the other.
                // `c` was the newest co-signed state when the event was
                // made (the machine's state may have moved on since: events
                // wait for their store to be persisted).
                let done: Vec<u64> = self.pays.range(..=*c).map(|(k, _)| *k).collect();
                for k in done {
                    for r in self.pays.remove(&k).unwrap_or_default() {
                        let reply = if k == *c {
                            Reply::Done { counter: k }
                        } else {
                            Reply::Error { message: format!("payment {k} superseded by co-signed {c}") }
                        };
                        let _ = r.send(reply);
                    }
                }
            }
            _ => {}
        }
        if let Some(tx) = &self.events {
            // No subscriber is fine; a lagging one misses events, not us.
            let _ = tx.send((self.cid, e.clone()));
        }
        let done = match (&self.pending, &e) {
            (Some((Waiting::Open, _)), ChannelEvent::Opened) => {
                Some(Reply::Done { counter: self.machine.latest().map_or(0, |l| l.state.counter) })
            }
            (Some((Waiting::Close, _)), ChannelEvent::Closed { counter }) => Some(Reply::Done { counter: *counter }),
            (Some((Waiting::TopUp, _)), ChannelEvent::ToppedUp { counter, side, .. })
            | (Some((Waiting::Withdraw, _)), ChannelEvent::Withdrawn { counter, side, .. })
                if *side == self.machine.store().side =>
            {
                Some(Reply::Done { counter: *counter })
            }
            // A refused allocation is proposed again (the peer's view of the
            // chain may lag the top-up): a top-up waits for its allocation.
            (Some((Waiting::Withdraw, _)), ChannelEvent::Rejected { reason, .. }) => {
                Some(Reply::Error { message: format!("peer rejected: {reason}") })
            }
            (Some((Waiting::Open, _)), ChannelEvent::Rejected { reason, .. }) => {
                Some(Reply::Error { message: format!("peer rejected the open: {reason}") })
            }
            // Bounded re-sends ran out: the user is told instead of waiting
            // for ever (`Open` again re-sends the registration).
            (Some((Waiting::Open, _)), ChannelEvent::OpenUnregistered { attempts }) => Some(Reply::Error {
                message: format!(
                    "the co-signed open is not registered on chain after {attempts} re-sends; open again to retry"
                ),
            }),
            (Some((Waiting::Close, _)), ChannelEvent::CloseStalled { method, counter }) => Some(Reply::Error {
                message: format!(
                    "close stalled: {method} with state {counter} sent its bounded number of times without an \
                     outcome on chain; check the channel's status"
                ),
            }),
            _ => None,
        };
        if let Some(r) = done {
            if let Some((_, tx)) = self.pending.take() {
                let _ = tx.send(r);
            }
        }
        if matches!(e, ChannelEvent::Closed { .. }) {
            self.fail_pays("channel closed");
        }
    }

    /// A transaction of a user request failed for good: its request is
    /// answered with the failure (it would otherwise wait for an event that
    /// cannot come, and hold off every later close or withdrawal).
    fn tx_failed(&mut self, method: &str, why: &str) {
        let ours = matches!((&self.pending, method), (Some((Waiting::TopUp, _)), "channel_topup"));
        if ours {
            if let Some((_, tx)) = self.pending.take() {
                let _ = tx.send(Reply::Error { message: format!("top-up failed: {why}") });
            }
        }
    }

    fn fail_pays(&mut self, why: &str) {
        for r in std::mem::take(&mut self.pays).into_values().flatten() {
            let _ = r.send(Reply::Error { message: why.into() });
        }
        for (_, r) in std::mem::take(&mut self.queued) {
            let _ = r.send(Reply::Error { message: why.into() });
        }
    }

    /// Proposes the payments at the head of the queue as one update,
    /// folding up to [`MAX_FOLD`] of them when more than one waits (the
    /// window was full meanwhile). False when the window is still full.
    fn propose_queued(&mut self) -> Result<bool, PartyError> {
        if matches!(self.queued.front(), Some((Request::Withdraw { .. }, _))) {
            return self.propose_withdrawal();
        }
        // The payments at the head, up to the first withdrawal.
        let n = self.queued.iter().take(MAX_FOLD).take_while(|(q, _)| matches!(q, Request::Pay { .. })).count();
        if n == 0 {
            return Ok(false);
        }
        let req = if n == 1 {
            match &self.queued[0].0 {
                Request::Pay { amount, energy, price_per_kwh } => {
                    Request::Pay { amount: *amount, energy: *energy, price_per_kwh: *price_per_kwh }
                }
                _ => return Ok(false),
            }
        } else {
            let items = self
                .queued
                .iter()
                .take(n)
                .filter_map(|(r, _)| match r {
                    Request::Pay { amount, energy, price_per_kwh } => Some((*amount, *energy, *price_per_kwh)),
                    _ => None,
                })
                .collect();
            Request::PayMany(items)
        };
        match self.machine.handle(Input::User(req)) {
            Err(ChannelError::Busy) => Ok(false),
            Err(e) if n > 1 => {
                // The fold as a whole is refused (e.g. the balance covers
                // only some): fall back to one at a time, so each payment
                // gets its own answer.
                tracing::debug!("fold of {n} refused ({e}); proposing one at a time");
                self.propose_one()
            }
            Err(e) => {
                if let Some((_, reply)) = self.queued.pop_front() {
                    let _ = reply.send(Reply::Error { message: e.to_string() });
                }
                Ok(true)
            }
            Ok(step) => {
                let replies: Vec<_> = self.queued.drain(..n).map(|(_, r)| r).collect();
                self.book(&step, replies);
                self.carry_out(step)?;
                Ok(true)
            }
        }
    }

    /// Proposes the withdrawal at the head of the queue once no other
    /// request waits and the window is empty (payments behind it wait, so
    /// the window drains); it then waits as the pending request.
    fn propose_withdrawal(&mut self) -> Result<bool, PartyError> {
        if self.pending.is_some() {
            return Ok(false);
        }
        self.propose_head(|party, _, reply| party.pending = Some((Waiting::Withdraw, reply)))
    }

    /// Proposes the head of the queue alone.
    fn propose_one(&mut self) -> Result<bool, PartyError> {
        self.propose_head(|party, step, reply| party.book(step, vec![reply]))
    }

    /// Hands the head of the queue to the machine: `Busy` puts it back
    /// (`false`), another refusal answers it with the error (`true`), and a
    /// proposal is recorded by `on_step` and carried out (`true`).
    fn propose_head(
        &mut self,
        on_step: impl FnOnce(&mut Self, &Step, oneshot::Sender<Reply>),
    ) -> Result<bool, PartyError> {
        let Some((req, reply)) = self.queued.pop_front() else { return Ok(false) };
        match self.machine.handle(Input::User(req.clone())) {
            Err(ChannelError::Busy) => {
                self.queued.push_front((req, reply));
                Ok(false)
            }
            Err(e) => {
                let _ = reply.send(Reply::Error { message: e.to_string() });
                Ok(true)
            }
            Ok(step) => {
                on_step(self, &step, reply);
                self.carry_out(step)?;
                Ok(true)
            }
        }
    }

    /// Files the replies under the counter of the proposal a step made.
    fn book(&mut self, step: &Step, replies: Vec<oneshot::Sender<Reply>>) {
        match step.persist.as_ref().and_then(|s| s.proposals.last()).map(|p| p.state.counter) {
            Some(c) => self.pays.entry(c).or_default().extend(replies),
            None => {
                for r in replies {
                    let _ = r.send(Reply::Error { message: "nothing proposed".into() });
                }
            }
        }
    }

    /// Proposes queued payments while the window has room.
    fn pump_queue(&mut self) -> Result<(), PartyError> {
        while !self.queued.is_empty() {
            if !self.propose_queued()? {
                break;
            }
        }
        Ok(())
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
            Command::TopUp { amount, credit_note } => {
                let amount = Amount(u128::from(amount));
                let funding = match credit_note {
                    None => gridledger_contracts::cns::Funding::Deposit,
                    Some(note) => {
                        let checked = if note.amount != amount {
                            Err(super::merchant::TopUpNoteError::AmountMismatch { asked: amount, note: note.amount })
                        } else {
                            // One read of the chain on a user command (rare):
                            // a refused note never becomes a transaction.
                            let client = crate::RpcClient::new(&self.rpc);
                            super::merchant::check_topup_note(&client, &self.cid, self.machine.store().side, &note)
                        };
                        if let Err(e) = checked {
                            let _ = r.reply.send(Reply::Error { message: format!("top-up note refused: {e}") });
                            return Ok(true);
                        }
                        note.funding()
                    }
                };
                (Request::TopUp { amount, funding }, Waiting::TopUp)
            }
            Command::Withdraw { amount } => {
                // Queued like payments and proposed in turn (a stream of
                // payments never keeps the window empty long enough for a
                // request that needs it empty).
                let waiting = self.queued.iter().filter(|(q, _)| matches!(q, Request::Withdraw { .. })).count();
                if self.queued.len() >= MAX_QUEUED_PAYS || waiting >= MAX_QUEUED_WITHDRAWALS {
                    let _ = r.reply.send(Reply::Error { message: WITHDRAWAL_QUEUE_FULL.into() });
                } else {
                    self.queued.push_back((Request::Withdraw { amount: Amount(u128::from(amount)) }, r.reply));
                    self.pump_queue()?;
                }
                return Ok(true);
            }
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
                // Close preempts a top-up still waiting for its allocation
                // (a silent peer never co-signs it): its request is answered
                // now. The contract refunds a top-up that no state allocates
                // at close (`finalise`: `topped_up − resize.topped_up` back
                // to the side that added it), so nothing is lost.
                if matches!(self.pending, Some((Waiting::TopUp, _))) {
                    if let Some((_, tx)) = self.pending.take() {
                        let _ = tx.send(Reply::Error { message: TOPUP_PREEMPTED.into() });
                    }
                }
                // Close preempts withdrawals too: the one in flight (the
                // machine lets its proposal be co-signed or fall back, then
                // proposes the close) and every queued one are answered now,
                // so a silent peer cannot keep the close refused for
                // k × t_Δ behind a queue of withdrawals.
                if matches!(self.pending, Some((Waiting::Withdraw, _))) {
                    if let Some((_, tx)) = self.pending.take() {
                        let _ = tx.send(Reply::Error { message: WITHDRAWAL_PREEMPTED.into() });
                    }
                }
                let mut kept = VecDeque::with_capacity(self.queued.len());
                for (q, reply) in std::mem::take(&mut self.queued) {
                    if matches!(q, Request::Withdraw { .. }) {
                        tracing::info!("close preempts a queued withdrawal");
                        let _ = reply.send(Reply::Error { message: WITHDRAWAL_PREEMPTED.into() });
                    } else {
                        kept.push_back((q, reply));
                    }
                }
                self.queued = kept;
                (Request::Close, Waiting::Close)
            }
            Command::Pay { energy, price } => {
                let (energy, price) = (Energy(energy), Amount(u128::from(price)));
                let Some(amount) = Trade::price_of(energy, price) else {
                    let _ = r.reply.send(Reply::Error { message: "amount overflows".into() });
                    return Ok(true);
                };
                let req = Request::Pay { amount, energy, price_per_kwh: price };
                if self.queued.len() >= MAX_QUEUED_PAYS {
                    let _ = r.reply.send(Reply::Error { message: "payment queue full".into() });
                } else {
                    // Behind those already waiting; proposed at once if the
                    // window has room.
                    self.queued.push_back((req, r.reply));
                    self.pump_queue()?;
                }
                return Ok(true);
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
    // Opening the keys (a keystore's KDF) and the store (file reads) block:
    // off the async workers, so one slow or hostile party directory cannot
    // stall the other channels of a `channel serve` process.
    let (keys, disk, stored) = {
        let (dir, spec, durability) = (dir.clone(), spec.clone(), opts.durability);
        tokio::task::spawn_blocking(move || -> Result<_, PartyError> {
            let keys = spec.keys()?;
            let disk = StoreFile::open(&dir, durability)?;
            let stored = disk.load()?;
            Ok((keys, disk, stored))
        })
        .await
        .map_err(|e| PartyError::Net(format!("loading the party: {e}")))??
    };
    let (esc_key, account, nonce_seed) = (keys.esc, keys.account, keys.nonce_seed);
    let mut params = spec.params()?;
    if let Some(w) = opts.window {
        params.window = w;
    }
    let machine = match stored {
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
    // A peer address that cannot be bound (squatted by another local
    // process while the party was down) must not keep the party from
    // guarding its channel: it runs on an ephemeral loopback port (it still
    // dials its peer, watches the chain, answers disputes), alerts, and
    // keeps trying the spec's address; once bound, the network restarts on
    // it (`bind_when_free`: no forwarding).
    let mut peer_rebind = None;
    let (rebound_send, mut rebound) = mpsc::channel::<tokio::net::TcpListener>(1);
    let net_cfg = cfg.clone();
    let net_key = esc_key.clone();
    let started = match peer_listener {
        Some(l) => {
            let l = tokio_listener(l).map_err(PartyError::Control)?;
            Network::start_with_listener(cfg, esc_key, l).await
        }
        None => {
            let listen = spec.addrs[side as usize];
            match bind_tcp(listen) {
                Ok(l) => Network::start_with_listener(cfg, esc_key, l).await,
                Err(e) => {
                    let mut fails = ListenFails::new(spec.cid, "peer", listen, opts.alerts.clone());
                    fails.failed(&e);
                    let local = std::net::SocketAddr::new(
                        if listen.is_ipv4() {
                            std::net::Ipv4Addr::LOCALHOST.into()
                        } else {
                            std::net::Ipv6Addr::LOCALHOST.into()
                        },
                        0,
                    );
                    let l = bind_tcp(local).map_err(PartyError::Control)?;
                    peer_rebind = Some(tokio::spawn(bind_when_free(listen, fails, rebound_send)));
                    Network::start_with_listener(cfg, esc_key, l).await
                }
            }
        }
    };
    let (net, mut inbound) = started.map_err(|e| PartyError::Net(e.to_string()))?;
    // Link (re)established: the reconnect handshake.
    let mut net_events = net.events();

    // Chain side: a submitter and an event poller on their own threads
    // (the RPC client blocks).
    let link = ChainLink::connect(&spec.rpc, account)?;
    let submitted: Arc<Mutex<Vec<(String, Hash32)>>> = Arc::default();
    let (tx_send, tx_recv) = std::sync::mpsc::channel::<ChainTx>();
    let sub2 = submitted.clone();
    let stop_submit = Arc::new(AtomicBool::new(false));
    let stop_sub2 = stop_submit.clone();
    // A user's top-up that the node refuses or that reverts on chain is
    // reported back (method, why), so its request is answered.
    let (failed_send, mut failed_recv) = mpsc::unbounded_channel::<(String, String)>();
    let rpc_url = spec.rpc.clone();
    let submitter = std::thread::spawn(move || {
        while let Ok(t) = tx_recv.recv() {
            // A node that is down or restarting must not cost the channel a
            // transaction: retry with back-off (the machine also re-emits
            // resolve, settle and close until the chain shows the outcome).
            // A top-up is the user's, not safety-critical: the node's
            // refusal is final, and a node down for [`TOPUP_SUBMIT_TRIES`]
            // tries fails it; its receipt is awaited off this thread.
            let topup = t.method == "channel_topup";
            let mut backoff = Duration::from_millis(100);
            let mut tries = 0u32;
            loop {
                tries += 1;
                match link.submit_tx(&t) {
                    Ok(h) => {
                        sub2.lock().map(|mut v| v.push((t.method.to_string(), h))).unwrap_or(());
                        if topup {
                            let (url, failed) = (rpc_url.clone(), failed_send.clone());
                            std::thread::spawn(move || {
                                let client = crate::RpcClient::new(&url);
                                let why = match client.wait_receipt(&h, TOPUP_RECEIPT_WAIT) {
                                    Ok(r) => {
                                        let o = super::chainlink::parse_outcome(h, r);
                                        (!o.success).then(|| format!("channel_topup reverted: {}", o.reason))
                                    }
                                    Err(e) => Some(format!("channel_topup not confirmed: {e}")),
                                };
                                if let Some(why) = why {
                                    let _ = failed.send(("channel_topup".into(), why));
                                }
                            });
                        }
                        break;
                    }
                    Err(e)
                        if topup
                            && (tries >= TOPUP_SUBMIT_TRIES
                                || matches!(e, super::chainlink::ChainError::Rpc(crate::RpcError::Remote { .. }))) =>
                    {
                        tracing::error!("channel_topup refused: {e}");
                        let _ = failed_send.send(("channel_topup".into(), format!("channel_topup refused: {e}")));
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
    let (reads, read_requests) = std::sync::mpsc::channel::<()>();
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
                            // Only a dispute that still stands is acted on:
                            // the events are read from the channel's start
                            // after a restart, and a dispute resolved or
                            // settled before must not be announced
                            // (`DisputeSeen` → a `dispute_against_us` alert)
                            // nor answered again (a reverted resolve, a fee).
                            // The chain's record is the durable memory of
                            // which disputes were handled. If it cannot be
                            // read, the dispute is acted on (safe side).
                            if let ChainEvent::DisputeRaised { t_end, .. } = &e {
                                if let Ok(Some(ch)) = super::chainlink::read_channel(&client, &cursor.cid) {
                                    let stands = ch.status == gridledger_contracts::cns::ChannelStatus::Disputed
                                        && ch.t_end == *t_end;
                                    if !stands {
                                        tracing::debug!(?e, "dispute no longer stands on chain; not acted on");
                                        continue;
                                    }
                                }
                            }
                            // With the state the chain holds now, where the
                            // event registered or closed on one.
                            for e in super::chainlink::with_chain_record(&client, &cursor.cid, e) {
                                if ev_send.send(e).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("polling events (retrying): {e}"),
                }
                // Sleep until the next poll, or until the machine asks for a
                // read: answered here, after every event handed on so far.
                match read_requests.recv_timeout(every) {
                    Ok(()) => {
                        while read_requests.try_recv().is_ok() {}
                        let state = super::chainlink::read_latest_retrying(&client, &cursor.cid);
                        let counter = state.as_ref().map_or(0, |s| s.state.counter);
                        if ev_send.send(ChainEvent::Updated { counter, state }).is_err() {
                            return;
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(every),
                }
            }
        })
    };

    let (ctl_tx, mut ctl_rx) = mpsc::channel::<Request0>(16);
    let control = if opts.control {
        // A fresh token per start, in a file only the user can read.
        let token = super::control::new_token();
        let served = match control_listener {
            // TCP where the caller handed a listener (explicitly asked).
            Some(l) => {
                let l = tokio_listener(l).map_err(PartyError::Control)?;
                Some(tokio::spawn(serve_control(l, token.clone(), ctl_tx)))
            }
            // The party's own channel: a Unix socket in its directory. If
            // it cannot be set up, the party still guards its channel (peer
            // link, chain watch, disputes): it runs without control, says
            // so on stderr and raises `control_failing`.
            #[cfg(unix)]
            None => match super::control::bind_control_socket(&dir) {
                Ok(l) => Some(tokio::spawn(serve_control(l, token.clone(), ctl_tx))),
                Err(e) => {
                    control_failing(&spec, &dir, &opts, &e);
                    None
                }
            },
            #[cfg(not(unix))]
            None => {
                let fails = ListenFails::new(spec.cid, "control", spec.control, opts.alerts.clone());
                Some(tokio::spawn(serve_control_when_bound(spec.control, token.clone(), ctl_tx, fails)))
            }
        };
        let token_path = dir.join(super::control::CONTROL_TOKEN_FILE);
        match served {
            Some(served) => match super::control::write_token_file(&token_path, &token) {
                Ok(()) => Some(served),
                Err(e) => {
                    served.abort();
                    control_failing(&spec, &dir, &opts, &e);
                    None
                }
            },
            None => {
                let _ = std::fs::remove_file(&token_path);
                None
            }
        }
    } else {
        // No control port here (e.g. under `channel serve --control`, whose
        // token-guarded manager port is the one way in): a token left by an
        // earlier run goes, so `channel pay --dir` finds nothing to use and
        // `channel status --dir` reads the persisted state instead.
        match std::fs::remove_file(dir.join(super::control::CONTROL_TOKEN_FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(PartyError::Control(e)),
            _ => {}
        }
        drop(ctl_tx);
        None
    };

    let (persist_send, persist_recv) = std::sync::mpsc::channel::<PersistJob>();
    let (persisted_send, mut persisted) = mpsc::unbounded_channel();
    let idle = opts.tick;
    let persist_thread = std::thread::spawn(move || persister(disk, persist_recv, persisted_send, idle));
    let mut lp = Loop {
        machine,
        gate: EventGate::default(),
        persist: persist_send,
        net: Some(net),
        peer: 1 - side,
        txs: tx_send,
        pending: None,
        pays: BTreeMap::new(),
        queued: VecDeque::new(),
        events: opts.events.clone(),
        cid: spec.cid,
        rpc: spec.rpc.clone(),
        reads,
    };
    if opts.auto_open && side == 0 && lp.machine.phase() == Phase::Idle && lp.machine.store().signed_upto.is_none() {
        let step = lp.machine.handle(Input::User(Request::Open))?;
        lp.carry_out(step)?;
    }
    let mut tick = tokio::time::interval(opts.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result: Result<(), PartyError> = async {
        loop {
            // Closed, and the store that says so persisted (the close's
            // answer and events are held until then).
            if opts.exit_when_closed && lp.machine.phase() == Phase::Closed && lp.gate.held.is_empty() {
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
                Some(l) = rebound.recv() => {
                    // The spec's peer address is free again: the network
                    // moves onto it (its own per-address handshake pools
                    // apply to the peer's real address from now on). The
                    // link drops once; the reconnect handshake resumes it.
                    if let Some(old) = lp.net.take() {
                        old.shutdown().await;
                    }
                    let (n, i) = Network::start_with_listener(net_cfg.clone(), net_key.clone(), l)
                        .await
                        .map_err(|e| PartyError::Net(e.to_string()))?;
                    net_events = n.events();
                    inbound = i;
                    lp.net = Some(n);
                }
                Ok(ev) = net_events.recv() => {
                    if matches!(ev, gridledger_net::NetEvent::Connected { peer, .. } if peer == lp.peer) {
                        let step = lp.machine.handle(Input::Connected)?;
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
                Some(done) = persisted.recv() => {
                    lp.persisted(done?)?;
                }
                Some(e) = ev_recv.recv() => {
                    let step = lp.machine.handle(Input::Chain(e))?;
                    lp.carry_out(step)?;
                }
                Some((method, why)) = failed_recv.recv() => {
                    lp.tx_failed(&method, &why);
                }
                _ = tick.tick() => {
                    let step = lp.machine.handle(Input::Tick(now_ms()))?;
                    lp.carry_out(step)?;
                }
            }
            if !lp.queued.is_empty() {
                lp.pump_queue()?;
            }
        }
    }
    .await;
    if let Some((_, r)) = lp.pending.take() {
        let _ = r.send(Reply::Error { message: "party stopped".into() });
    }
    lp.fail_pays("party stopped");
    stop.store(true, Ordering::Relaxed);
    stop_submit.store(true, Ordering::Relaxed);
    if let Some(c) = control {
        c.abort();
    }
    if let Some(f) = peer_rebind {
        f.abort();
    }
    let Loop { machine, persist, net, txs, .. } = lp;
    // The persister writes what is queued, flushes and ends.
    drop(persist);
    let joined = tokio::task::spawn_blocking(move || persist_thread.join()).await;
    let (disk, persists) = match joined {
        Ok(Ok(d)) => d,
        _ => return Err(PartyError::Net("the persister thread panicked".into())),
    };
    drop(txs);
    // Let the last messages (e.g. the acceptance of a final state) go out.
    tokio::time::sleep(Duration::from_millis(50)).await;
    if let Some(net) = net {
        net.shutdown().await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        let _ = submitter.join();
        let _ = poller.join();
    })
    .await;
    result?;
    let (saves, save_time) = disk.stats();
    let syncs = disk.syncs();
    let txs = submitted.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(PartyReport {
        phase: machine.phase(),
        latest: machine.latest().map(|l| l.state.counter),
        saves,
        save_time,
        syncs,
        persists,
        txs,
    })
}

/// One request on a party's control port: a [`Command`] with the token
/// the party wrote to `control.token` in its directory
/// (`{"token": "...", "cmd": "pay", ...}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartyRequest {
    pub token: String,
    #[serde(flatten)]
    pub cmd: Command,
}

impl super::control::Tokened for PartyRequest {
    fn token(&self) -> &str {
        &self.token
    }
}

/// Serves a party's control port (see [`super::control`]: token on every
/// line, connection cap, first-line deadline, accept errors retried).
async fn serve_control<L: super::control::ControlListener>(l: L, token: String, to_party: mpsc::Sender<Request0>) {
    let error = |message: String| Reply::Error { message };
    super::control::serve_guarded(
        l,
        token,
        super::control::ControlLimits::default(),
        MAX_CONTROL_LINE,
        error,
        move |r: PartyRequest| {
            let to_party = to_party.clone();
            async move {
                let (reply, rx) = oneshot::channel();
                if to_party.send(Request0 { cmd: r.cmd, reply }).await.is_err() {
                    Reply::Error { message: "party stopped".into() }
                } else {
                    rx.await.unwrap_or(Reply::Error { message: "party stopped".into() })
                }
            }
        },
    )
    .await
}

/// Tries to submit a user's `channel_topup` while the node is unreachable
/// before the request fails.
const TOPUP_SUBMIT_TRIES: u32 = 5;

/// Longest wait for a submitted top-up's receipt before the request fails
/// (the top-up may still land; the party then allocates it as usual).
const TOPUP_RECEIPT_WAIT: Duration = Duration::from_secs(30);

/// Longest request line on the control port. The bound is per line: a
/// connection may carry any number of requests (no lifetime cap).
pub const MAX_CONTROL_LINE: u64 = 4096;

/// Sends one command to a party's control port and reads its answer
/// (blocking; for the CLI). `token` is the content of the party's
/// `control.token` file ([`read_control_token`]).
pub fn control_request(
    addr: std::net::SocketAddr,
    token: &str,
    cmd: &Command,
    timeout: Duration,
) -> Result<Reply, std::io::Error> {
    json_line_request(addr, &PartyRequest { token: token.to_string(), cmd: cmd.clone() }, timeout)
}

/// One command to the party running in `dir` over its own control channel
/// (blocking; for the `--dir` commands): on Unix the socket
/// `dir/control.sock` (only the owner can connect), elsewhere the TCP
/// address of its spec; with the token of `dir/control.token`.
pub fn control_request_dir(dir: &Path, cmd: &Command, timeout: Duration) -> Result<Reply, std::io::Error> {
    let token = read_control_token(dir)?;
    let req = PartyRequest { token, cmd: cmd.clone() };
    #[cfg(unix)]
    {
        use std::io::{BufRead, Write};
        let (by, held) = super::control::control_socket_path(dir)?;
        let mut s = std::os::unix::net::UnixStream::connect(&by)?;
        drop(held);
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(Duration::from_secs(3)))?;
        let mut line = serde_json::to_string(&req).map_err(std::io::Error::other)?;
        line.push('\n');
        s.write_all(line.as_bytes())?;
        let mut r = std::io::BufReader::new(s);
        let mut out = String::new();
        r.read_line(&mut out)?;
        serde_json::from_str(&out).map_err(std::io::Error::other)
    }
    #[cfg(not(unix))]
    {
        let spec = PartySpec::load(dir).map_err(std::io::Error::other)?;
        json_line_request(spec.control, &req, timeout)
    }
}

/// Where the party running in `dir` serves its own control channel, for
/// messages (the socket path on Unix, the spec's TCP address elsewhere).
pub fn control_endpoint(dir: &Path, spec: &PartySpec) -> String {
    if cfg!(unix) {
        let _ = spec;
        dir.join(super::control::CONTROL_SOCKET_FILE).display().to_string()
    } else {
        spec.control.to_string()
    }
}

/// The token of the party running in `dir` (written by the party when its
/// control port starts, readable by its user only).
pub fn read_control_token(dir: &Path) -> std::io::Result<String> {
    super::control::read_token_file(&dir.join(super::control::CONTROL_TOKEN_FILE))
}

/// One request on a control port (a party's or a manager's), blocking:
/// connects within 3 s, sends `req` as one JSON line and reads one JSON line
/// back, waiting at most `timeout` for it.
pub(crate) fn json_line_request<Req, Rep>(
    addr: std::net::SocketAddr,
    req: &Req,
    timeout: Duration,
) -> Result<Rep, std::io::Error>
where
    Req: Serialize,
    Rep: serde::de::DeserializeOwned,
{
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(timeout))?;
    let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
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
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    fn store(version: u64) -> ChannelStore {
        gridledger_channels::disk::test_store("persister", version)
    }

    /// Group commit: stores queued while the persister is busy are covered
    /// by one record and one fdatasync of the newest; `Persisted` reports
    /// that version only after it is written; a lagging-only batch is
    /// written unsynced and synced when the persister goes idle.
    /// Events wait for the store of their step; a step without a store
    /// queues behind held ones; a persisted version releases every step at
    /// or below it, in order, and nothing newer.
    #[test]
    fn the_event_gate_tells_only_what_is_persisted_in_order() {
        let sent = |c| ChannelEvent::PaymentSent { counter: c, amount: Amount(1) };
        let mut g = EventGate::default();
        assert_eq!(g.hold(None, vec![sent(0)]), vec![sent(0)], "nothing held, no store: at once");
        assert!(g.hold(Some(5), vec![sent(1)]).is_empty());
        assert!(g.hold(None, vec![sent(2)]).is_empty(), "behind the held step");
        assert!(g.hold(Some(6), vec![sent(3)]).is_empty());
        assert!(g.hold(Some(7), vec![]).is_empty());
        assert!(g.release(4).is_empty(), "an older version releases nothing");
        assert_eq!(g.release(5), vec![sent(1), sent(2)]);
        assert_eq!(g.release(7), vec![sent(3)], "one version covers every older one");
        assert!(g.release(9).is_empty());
        assert_eq!(g.hold(None, vec![sent(4)]), vec![sent(4)]);
    }

    #[test]
    fn the_persister_covers_every_queued_store_with_one_synced_record() {
        let dir = tempfile::tempdir().unwrap();
        let disk = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        let (jobs, rx) = std::sync::mpsc::channel::<PersistJob>();
        let (done_tx, mut done) = mpsc::unbounded_channel();
        // Queued before the thread starts: one batch.
        for v in 1..=50 {
            jobs.send((store(v), v % 7 == 0)).unwrap();
        }
        let t = std::thread::spawn(move || persister(disk, rx, done_tx, Duration::from_millis(20)));
        assert_eq!(done.blocking_recv().unwrap().unwrap(), 50, "the newest version is reported");
        assert_eq!(gridledger_channels::disk::load_store(dir.path()).unwrap().unwrap().version, 50);
        // A lagging-only store: written, reported, synced once idle.
        jobs.send((store(51), false)).unwrap();
        assert_eq!(done.blocking_recv().unwrap().unwrap(), 51);
        drop(jobs);
        let (disk, persists) = t.join().unwrap();
        assert_eq!(persists, 51);
        assert_eq!(disk.stats().0, 2, "two records for 51 stores");
        assert_eq!(disk.syncs(), 2, "one fdatasync per synced batch, one for the lagging write");
        assert_eq!(gridledger_channels::disk::load_store(dir.path()).unwrap().unwrap().version, 51);
    }

    /// A listening address that cannot be bound alerts at the first
    /// failure and then every `ALERT_AFTER_ATTEMPTS`-th, naming it.
    #[test]
    fn a_failing_bind_alerts_at_the_first_and_every_third_attempt() {
        use super::super::alert::{Alert, AlertHook, AlertSink};
        struct Collect(std::sync::Mutex<Vec<Alert>>);
        impl AlertSink for Collect {
            fn alert(&self, a: &Alert) {
                self.0.lock().unwrap().push(a.clone());
            }
        }
        let sink = std::sync::Arc::new(Collect(std::sync::Mutex::new(vec![])));
        let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut f = ListenFails::new(Hash32([3; 32]), "peer", addr, AlertHook(Some(sink.clone())));
        for _ in 0..7 {
            f.failed(&std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        let got: Vec<u32> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|a| match a {
                Alert::ListenFailing { attempts, what, addr, .. } => {
                    assert_eq!((what.as_str(), addr.as_str()), ("peer", "127.0.0.1:9"));
                    *attempts
                }
                a => panic!("{a:?}"),
            })
            .collect();
        assert_eq!(got, vec![1, 3, 6]);
    }

    /// The command side of a party that answers every request
    /// `Done { counter }`.
    fn a_party_answering_done(counter: u64) -> mpsc::Sender<Request0> {
        let (tx, mut rx) = mpsc::channel::<Request0>(16);
        tokio::spawn(async move {
            while let Some(r) = rx.recv().await {
                let _ = r.reply.send(Reply::Done { counter });
            }
        });
        tx
    }

    /// Serves control on `l` for `to_party` with a fresh token in `dir`'s
    /// token file, and asks for the status as `--dir` commands do.
    #[cfg(unix)]
    async fn status_through_the_directory(
        l: tokio::net::UnixListener,
        to_party: mpsc::Sender<Request0>,
        dir: &Path,
    ) -> Reply {
        let token = super::super::control::new_token();
        super::super::control::write_token_file(&dir.join(super::super::control::CONTROL_TOKEN_FILE), &token).unwrap();
        tokio::spawn(serve_control(l, token, to_party));
        let d = dir.to_path_buf();
        tokio::task::spawn_blocking(move || control_request_dir(&d, &Command::Status, Duration::from_secs(5)))
            .await
            .unwrap()
            .unwrap()
    }

    /// On Unix the party's own control socket is reachable by its owner
    /// only: the directory is 0700, the socket 0600, a stale socket of an
    /// earlier run is replaced, and anything else at the path is refused.
    #[cfg(unix)]
    #[tokio::test]
    async fn the_control_socket_is_private_and_replaces_only_a_stale_socket() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("party");
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let l = super::super::control::bind_control_socket(&p).unwrap();
        let sock = p.join(super::super::control::CONTROL_SOCKET_FILE);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600);
        drop(l); // the socket file stays, as after a kill -9
        let tx = a_party_answering_done(5);
        let l = super::super::control::bind_control_socket(&p).unwrap();
        let r = status_through_the_directory(l, tx, &p).await;
        assert_eq!(r, Reply::Done { counter: 5 });
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join(super::super::control::CONTROL_SOCKET_FILE), b"x").unwrap();
        assert!(super::super::control::bind_control_socket(&other).is_err(), "a regular file was replaced");
    }

    /// A party directory whose `control.sock` path exceeds `sun_path` (a
    /// deep directory) still gets its private control socket, in the
    /// directory itself, and `control_request_dir` reaches it; a short path
    /// is used as it is.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_control_socket_in_a_directory_with_a_long_path_is_bound_and_reached() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("s");
        std::fs::create_dir(&short).unwrap();
        let (by, held) = super::super::control::control_socket_path(&short).unwrap();
        assert_eq!((by, held.is_none()), (short.join(super::super::control::CONTROL_SOCKET_FILE), true));
        let p = dir.path().join("a".repeat(60)).join("b".repeat(60));
        std::fs::create_dir_all(&p).unwrap();
        let sock = p.join(super::super::control::CONTROL_SOCKET_FILE);
        assert!(sock.as_os_str().len() > 108);
        let tx = a_party_answering_done(9);
        let l = super::super::control::bind_control_socket(&p).unwrap();
        assert_eq!(std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777, 0o600, "in the directory, private");
        let r = status_through_the_directory(l, tx, &p).await;
        assert_eq!(r, Reply::Done { counter: 9 });
    }

    /// Thousands of requests on one control connection (a client that keeps
    /// its connection, as a dashboard would) are all answered; an overlong
    /// line is refused.
    #[tokio::test]
    async fn one_control_connection_serves_any_number_of_requests() {
        let tx = a_party_answering_done(7);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let token = super::super::control::new_token();
        tokio::spawn(serve_control(l, token.clone(), tx));
        let (crd, mut cwr) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
        let mut lines = BufReader::new(crd).lines();
        let req = format!("{{\"token\":\"{token}\",\"cmd\":\"pay\",\"energy\":500,\"price\":120}}\n");
        // 5,000 × 110 bytes: far beyond the old 64 KiB lifetime cap.
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

    /// A line without the token, or a line of another protocol (a browser's
    /// HTTP request line), is refused and ends the connection: nothing
    /// reaches the party.
    #[tokio::test]
    async fn a_line_without_the_token_ends_the_connection_and_reaches_nothing() {
        let (tx, mut rx) = mpsc::channel::<Request0>(16);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(serve_control(l, super::super::control::new_token(), tx));
        for first in [
            "POST / HTTP/1.1\r\n",
            "{\"cmd\":\"pay\",\"energy\":5,\"price\":1}\n",
            "{\"token\":\"00\",\"cmd\":\"status\"}\n",
        ] {
            let (crd, mut cwr) = tokio::net::TcpStream::connect(addr).await.unwrap().into_split();
            let mut lines = BufReader::new(crd).lines();
            cwr.write_all(first.as_bytes()).await.unwrap();
            let _ = cwr.write_all(b"{\"cmd\":\"pay\",\"energy\":5,\"price\":1}\n").await;
            let line = lines.next_line().await.unwrap().unwrap();
            assert!(matches!(serde_json::from_str::<Reply>(&line).unwrap(), Reply::Error { .. }), "{first}: {line}");
            assert_eq!(lines.next_line().await.ok().flatten(), None, "{first}: connection not ended");
        }
        assert!(rx.try_recv().is_err(), "a request without the token reached the party");
    }
}
