//! The [`Network`]: one authenticated, encrypted TCP link per validator pair,
//! kept alive by reconnecting, with bounded queues in both directions.
//!
//! Tasks: one accept loop, one dialer per peer, one task per live link
//! (reader and writer joined). All of them stop when the [`Network`] is shut
//! down or dropped.
//!
//! Both sides of a pair dial (so a restarted node is found again without
//! waiting for the other's backoff), which can leave two links for a pair.
//! [`Peer::install`] settles it the same way on both ends: a link to a new
//! process of the peer (a different Noise static key, which each process
//! draws afresh) replaces the old one; between links to the same process the
//! one dialled by the lower index wins. Which process is the newer is told
//! by when each link's handshake began here (link ids are drawn then, so
//! they order it). A process completes a handshake only while it runs and
//! after this node began it (it needs this node's first message, or its
//! reply), and a process that dialled here, or whose own listening socket
//! took this node's dial, ran before this node began that handshake. So of
//! two processes of a peer that did not run at once, any link of the later
//! one began here after every link of the earlier one, however late the
//! earlier one's last handshake message arrives. A link of another process that began before the newest link
//! ever put in use is therefore a dead process's stale dial: it is retired
//! like the loser of a tie-break, never put in use. (One order this cannot
//! see: a dial of this node waiting in a listening socket that outlives the
//! peer's process, answered by the next process after the old one dialled
//! here; that link is taken for stale, and the new process's own dial, or
//! this node's next one, links them. A peer running two processes at once
//! gets the link that began last.)
//!
//! A retired link stops sending: its writer stops and half-closes, its
//! reader delivers what is still in flight until the peer closes too (or a
//! grace period, `handshake_timeout`, ends), so a tie-break loses no
//! message already written.
//!
//! A peer has at most one link in use and one retired link draining at
//! once: when another link is retired (a newer replacement, or a newer dial
//! that lost the tie-break) the older draining link is cut at once. An
//! honest pair never has more than two links, so this loses nothing a
//! tie-break must keep; it stops a validator that dials again and again
//! from keeping any number of readers alive.
//!
//! Memory per peer: every frame is admitted against the peer's inbound
//! budget (`inbound_bytes`) when its header arrives, before any of its body
//! is buffered, and keeps its share until the application takes it. Links
//! of one peer share that budget, so however many links it opens, what it
//! makes this node hold is at most about `max(inbound_bytes, max_frame)`
//! plus two links' fixed read buffers (a few Noise messages each).

use crate::backoff::Backoff;
use crate::config::{LinkFaults, NetworkConfig};
use crate::error::{HandshakeError, LinkError, NetError, SendError};
use crate::handshake::{self, Authenticated, Directory, LocalIdentity};
use crate::stats::{bump, Counters, NetworkStats, PeerStats};
use crate::wire::{FrameOpener, FrameSealer, NOISE_MAX_MESSAGE};
use bytes::Bytes;
use gridledger_core::KeyPair;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, mpsc, watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Plaintext gathered into one write: many small messages share syscalls
/// and Noise messages, a large one is still written in one go.
const WRITE_BATCH: usize = 256 * 1024;
const EVENT_BUFFER: usize = 1024;

/// Something that happened to a link, for observers (tests, metrics, logs).
#[derive(Clone, Debug)]
pub enum NetEvent {
    /// An authenticated link to `peer` is now the one in use.
    Connected { peer: u32, dialled_by_me: bool },
    /// The link in use to `peer` ended; the dialer will restore it.
    Disconnected { peer: u32 },
    /// A connection failed before authenticating. `peer` is the validator we
    /// dialled, `None` for an inbound connection.
    Refused { peer: Option<u32>, addr: SocketAddr, error: HandshakeError },
    /// An authenticated peer broke the framing (oversize frame, bytes that
    /// do not decrypt) and its link was dropped.
    LinkFailed { peer: u32, error: LinkError },
}

/// Handle to this node's links. Cheap to share behind an `Arc`; dropping it
/// (or [`Network::shutdown`]) closes every link and the listener.
pub struct Network {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
}

/// The receiving side: messages from all peers, served round-robin so that a
/// chatty peer gets no more than its turn.
pub struct Inbound {
    queues: Vec<(u32, PeerInbound)>,
    next: usize,
    shutdown: watch::Receiver<bool>,
}

/// What one peer sent, in order; its buffered bytes are returned to the
/// peer's budget as they are taken.
pub struct PeerInbound {
    rx: mpsc::Receiver<(Bytes, usize)>,
    budget: Arc<Semaphore>,
}

impl PeerInbound {
    /// The next message; `None` once the network is gone. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Bytes> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.rx.poll_recv(cx).map(|m| {
            m.map(|(b, held)| {
                self.budget.add_permits(held);
                b
            })
        })
    }
}

struct Inner {
    cfg: NetworkConfig,
    identity: LocalIdentity,
    directory: Directory,
    peers: BTreeMap<u32, Arc<Peer>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    events: broadcast::Sender<NetEvent>,
    next_link_id: AtomicU64,
    refused_inbound: AtomicU64,
    /// Pending handshakes from strangers (any IP that is not a configured
    /// validator's), at most `max_pending_handshakes_per_addr` per IP.
    handshake_slots: Arc<Semaphore>,
    /// Pending handshakes from each configured validator's IP address: a
    /// pool per address (see `validator_pools`), so what one address
    /// holds never takes another's slots.
    validator_handshake_slots: BTreeMap<std::net::IpAddr, Arc<Semaphore>>,
    pending_by_addr: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    /// When a refused connection was last logged at WARN (a flood is logged
    /// at most once per [`REFUSAL_LOG_EVERY`]).
    last_refusal_warn: Mutex<Option<std::time::Instant>>,
}

/// How often a flood of refused inbound connections is logged at WARN.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// One pending handshake counted against its source IP; freed on drop.
struct AddrSlot {
    map: Arc<Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        let mut m = lock(&self.map);
        if let Some(c) = m.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

struct Peer {
    index: u32,
    addr: SocketAddr,
    outbound: Mutex<VecDeque<Bytes>>,
    outbound_cap: usize,
    outbound_ready: Notify,
    inbound: mpsc::Sender<(Bytes, usize)>,
    /// Bytes the peer may still have buffered here (permits = bytes).
    inbound_budget: Arc<Semaphore>,
    inbound_bytes: usize,
    faults: Mutex<(LinkFaults, u64)>,
    links: Mutex<Links>,
    connected: watch::Sender<bool>,
    counters: Counters,
}

/// A peer's links that may still deliver: the one in use and at most one
/// retired link draining (see the module docs).
#[derive(Default)]
struct Links {
    active: Option<ActiveLink>,
    draining: Option<(u64, watch::Sender<u8>)>,
    /// The Noise static key (the process) and id of the latest-begun link
    /// ever put in use: a link of another process that began before it is
    /// stale.
    newest: Option<([u8; 32], u64)>,
}

struct ActiveLink {
    id: u64,
    dialled_by_me: bool,
    remote_static: [u8; 32],
    role: watch::Sender<u8>,
}

/// A link's role, raised only: `IN_USE` carries traffic both ways;
/// `RETIRED` stops sending and drains what the peer still sends, for at
/// most the grace period; `CUT` ends it at once (a newer link retired).
const IN_USE: u8 = 0;
const RETIRED: u8 = 1;
const CUT: u8 = 2;

/// A poisoned lock only means another task panicked mid-update of plain
/// data; the data is still usable, so keep going rather than cascade.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves once the flag is set, or its sender is gone.
async fn wait_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

impl Network {
    /// Binds `cfg.listen` and starts accepting and dialling.
    pub async fn start(cfg: NetworkConfig, key: KeyPair) -> Result<(Network, Inbound), NetError> {
        cfg.validate(&key)?;
        let listener = bind(cfg.listen).map_err(|source| NetError::Bind { addr: cfg.listen, source })?;
        Self::start_with_listener(cfg, key, listener).await
    }

    /// Like [`Network::start`] on a listener the caller bound (tests bind
    /// port 0 first to learn the addresses of every node).
    pub async fn start_with_listener(
        cfg: NetworkConfig,
        key: KeyPair,
        listener: TcpListener,
    ) -> Result<(Network, Inbound), NetError> {
        cfg.validate(&key)?;
        let local_addr = listener.local_addr().map_err(|source| NetError::Bind { addr: cfg.listen, source })?;
        let identity = LocalIdentity::new(cfg.network_id, cfg.me, key).map_err(|e| NetError::Noise(e.to_string()))?;
        let directory: Directory = cfg.validators.iter().map(|p| (p.index, p.public_key)).collect();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut queues = Vec::new();
        let mut peers = BTreeMap::new();
        for p in cfg.validators.iter().filter(|p| p.index != cfg.me) {
            let (tx, rx) = mpsc::channel(cfg.inbound_queue);
            let budget = Arc::new(Semaphore::new(cfg.inbound_bytes.min(Semaphore::MAX_PERMITS)));
            queues.push((p.index, PeerInbound { rx, budget: budget.clone() }));
            let rng = (cfg.jitter_seed ^ u64::from(p.index).wrapping_mul(0xA24B_AED4_963E_E407)) | 1;
            peers.insert(
                p.index,
                Arc::new(Peer {
                    index: p.index,
                    addr: p.addr,
                    outbound: Mutex::new(VecDeque::new()),
                    outbound_cap: cfg.outbound_queue,
                    outbound_ready: Notify::new(),
                    inbound: tx,
                    inbound_budget: budget,
                    inbound_bytes: cfg.inbound_bytes.min(Semaphore::MAX_PERMITS),
                    faults: Mutex::new((LinkFaults::default(), rng)),
                    links: Mutex::new(Links::default()),
                    connected: watch::channel(false).0,
                    counters: Counters::default(),
                }),
            );
        }
        let inner = Arc::new(Inner {
            handshake_slots: Arc::new(Semaphore::new(cfg.max_pending_handshakes)),
            validator_handshake_slots: validator_pools(&cfg),
            pending_by_addr: Arc::default(),
            last_refusal_warn: Mutex::new(None),
            cfg,
            identity,
            directory,
            peers,
            shutdown,
            tasks: Mutex::new(JoinSet::new()),
            events: broadcast::channel(EVENT_BUFFER).0,
            next_link_id: AtomicU64::new(0),
            refused_inbound: AtomicU64::new(0),
        });
        info!(me = inner.cfg.me, addr = %local_addr, peers = inner.peers.len(), "network listening");
        inner.spawn(accept_loop(inner.clone(), listener));
        for peer in inner.peers.values() {
            inner.spawn(dial_loop(inner.clone(), peer.clone()));
        }
        let inbound = Inbound { queues, next: 0, shutdown: shutdown_rx };
        Ok((Network { inner, local_addr }, inbound))
    }

    /// This node's validator index.
    pub fn me(&self) -> u32 {
        self.inner.cfg.me
    }

    /// The address actually listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `msg` for validator `to`; it is sent once a link is up.
    ///
    /// Never waits. When `to`'s queue already holds `outbound_queue`
    /// messages the **oldest** one is dropped (counted in
    /// [`PeerStats::dropped_outbound`]): a peer that cannot keep up, or is
    /// down, costs bounded memory and never slows the others, and what it
    /// gets when it recovers is the newest traffic, which for consensus
    /// supersedes the old (stale votes are useless; PBFT's view change and
    /// catch-up recover what was lost).
    pub fn send(&self, to: u32, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg = msg.into();
        self.check_send(&msg)?;
        let peer = self.inner.peers.get(&to).ok_or(SendError::UnknownPeer(to))?;
        peer.enqueue(msg);
        Ok(())
    }

    /// Queues `msg` for every other validator (one shared buffer).
    pub fn broadcast(&self, msg: impl Into<Bytes>) -> Result<(), SendError> {
        let msg = msg.into();
        self.check_send(&msg)?;
        for peer in self.inner.peers.values() {
            peer.enqueue(msg.clone());
        }
        Ok(())
    }

    fn check_send(&self, msg: &Bytes) -> Result<(), SendError> {
        if *self.inner.shutdown.borrow() {
            return Err(SendError::Shutdown);
        }
        if msg.len() > self.inner.cfg.max_frame {
            return Err(SendError::TooLarge { len: msg.len(), max: self.inner.cfg.max_frame });
        }
        Ok(())
    }

    /// Injects `faults` on what arrives from `peer` from now on (replacing
    /// earlier ones); `LinkFaults::default()` heals the link. For experiments
    /// and partition tests.
    pub fn set_link_faults(&self, peer: u32, faults: LinkFaults) -> Result<(), SendError> {
        let p = self.inner.peers.get(&peer).ok_or(SendError::UnknownPeer(peer))?;
        lock(&p.faults).0 = faults;
        Ok(())
    }

    /// Whether an authenticated link to `peer` is up.
    pub fn is_connected(&self, peer: u32) -> bool {
        self.inner.peers.get(&peer).is_some_and(|p| *p.connected.borrow())
    }

    /// Indices with a link up, ascending.
    pub fn connected_peers(&self) -> Vec<u32> {
        self.inner.peers.values().filter(|p| *p.connected.borrow()).map(|p| p.index).collect()
    }

    /// Waits until links to all `peers` are up, or `timeout` passes; returns
    /// whether they are.
    pub async fn wait_connected(&self, peers: &[u32], timeout: Duration) -> bool {
        let mut watches: Vec<_> =
            peers.iter().filter_map(|i| self.inner.peers.get(i)).map(|p| p.connected.subscribe()).collect();
        if watches.len() != peers.len() {
            return false;
        }
        // Links may flap while duplicate dials settle: wait until all are up
        // at the same moment.
        tokio::time::timeout(timeout, async {
            loop {
                for w in &mut watches {
                    let _ = w.wait_for(|c| *c).await;
                }
                if watches.iter().all(|w| *w.borrow()) {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }

    /// Link events from now on. A receiver that falls more than 1024 events
    /// behind misses the oldest (see `tokio::sync::broadcast`).
    pub fn events(&self) -> broadcast::Receiver<NetEvent> {
        self.inner.events.subscribe()
    }

    /// Counters of one peer.
    pub fn peer_stats(&self, peer: u32) -> Option<PeerStats> {
        self.inner.peers.get(&peer).map(|p| p.stats())
    }

    /// Counters of every peer.
    pub fn stats(&self) -> NetworkStats {
        NetworkStats {
            me: self.inner.cfg.me,
            peers: self.inner.peers.values().map(|p| p.stats()).collect(),
            refused_inbound: self.inner.refused_inbound.load(Ordering::Relaxed),
        }
    }

    /// Closes every link and the listener, and waits for the tasks to end.
    pub async fn shutdown(self) {
        let tasks = self.inner.stop();
        if let Some(mut tasks) = tasks {
            tasks.shutdown().await;
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Dropping the set aborts every task, which closes their sockets.
        drop(self.inner.stop());
    }
}

impl Inbound {
    /// The per-peer queues, for a caller that serves each peer on its own
    /// (e.g. with per-peer lanes); ascending by index.
    pub fn into_peers(self) -> Vec<(u32, PeerInbound)> {
        self.queues
    }

    /// The next message as `(from_index, bytes)`; `None` once the network
    /// is shut down. Cancel-safe.
    pub async fn recv(&mut self) -> Option<(u32, Bytes)> {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            biased;
            m = std::future::poll_fn(|cx| self.poll_next(cx)) => m,
            _ = wait_true(&mut shutdown) => None,
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(u32, Bytes)>> {
        let n = self.queues.len();
        let mut closed = 0;
        for k in 0..n {
            let i = (self.next + k) % n;
            let (from, rx) = &mut self.queues[i];
            match rx.poll_recv(cx) {
                Poll::Ready(Some(m)) => {
                    self.next = (i + 1) % n;
                    return Poll::Ready(Some((*from, m)));
                }
                Poll::Ready(None) => closed += 1,
                Poll::Pending => {}
            }
        }
        if n > 0 && closed == n {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

impl Inner {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        let mut tasks = lock(&self.tasks);
        if *self.shutdown.borrow() {
            return;
        }
        while tasks.try_join_next().is_some() {}
        tasks.spawn(fut);
    }

    fn stop(&self) -> Option<JoinSet<()>> {
        let mut tasks = lock(&self.tasks);
        if self.shutdown.send_replace(true) {
            return None;
        }
        info!(me = self.cfg.me, "network shutting down");
        Some(std::mem::take(&mut *tasks))
    }

    fn emit(&self, e: NetEvent) {
        let _ = self.events.send(e);
    }

    /// A pending-handshake slot for a connection from `addr`: from that
    /// address's own pool if it is a configured validator's IP, else from
    /// the strangers' pool within the per-address cap. The address is
    /// canonical first: a dual-stack (IPv6) listener sees an IPv4 peer as
    /// `::ffff:a.b.c.d`, which is the validator at `a.b.c.d` and counts
    /// against the same cap as `a.b.c.d` (attack r20 on the net crate).
    fn handshake_slot(&self, addr: SocketAddr) -> Option<(tokio::sync::OwnedSemaphorePermit, Option<AddrSlot>)> {
        let ip = addr.ip().to_canonical();
        if let Some(pool) = self.validator_handshake_slots.get(&ip) {
            return pool.clone().try_acquire_owned().ok().map(|p| (p, None));
        }
        let slot = {
            let mut m = lock(&self.pending_by_addr);
            let c = m.entry(ip).or_insert(0);
            if *c >= self.cfg.max_pending_handshakes_per_addr {
                return None;
            }
            *c += 1;
            AddrSlot { map: self.pending_by_addr.clone(), ip }
        };
        self.handshake_slots.clone().try_acquire_owned().ok().map(|p| (p, Some(slot)))
    }

    /// True at most once per [`REFUSAL_LOG_EVERY`]: whether an inbound
    /// refusal is logged at WARN (else at DEBUG), so a flood cannot fill the disk.
    fn refusal_is_loud(&self) -> bool {
        let now = std::time::Instant::now();
        let mut last = lock(&self.last_refusal_warn);
        let loud = last.is_none_or(|t| now.saturating_duration_since(t) >= REFUSAL_LOG_EVERY);
        if loud {
            *last = Some(now);
        }
        loud
    }

    fn log_refusal(&self, addr: SocketAddr) {
        let loud = self.refusal_is_loud();
        let total = self.refused_inbound.load(Ordering::Relaxed);
        if loud {
            warn!(
                me = self.cfg.me,
                %addr,
                refused_total = total,
                "too many pending handshakes; connection closed (logged at most every {}s)",
                REFUSAL_LOG_EVERY.as_secs()
            );
        } else {
            debug!(me = self.cfg.me, %addr, "too many pending handshakes; connection closed");
        }
    }

    fn refused(&self, peer: Option<u32>, addr: SocketAddr, error: HandshakeError) {
        if peer.is_none() {
            self.refused_inbound.fetch_add(1, Ordering::Relaxed);
        }
        // Inbound failures come from anyone: rate-limited at WARN.
        if error.is_authentication_failure() && (peer.is_some() || self.refusal_is_loud()) {
            warn!(me = self.cfg.me, ?peer, %addr, %error, "connection refused");
        } else {
            debug!(me = self.cfg.me, ?peer, %addr, %error, "connection failed");
        }
        self.emit(NetEvent::Refused { peer, addr, error });
    }

    /// Takes an authenticated stream into service. A link that loses the
    /// duplicate-link tie-break still runs, retired from the start: it sends
    /// nothing, but delivers what the peer wrote before it learnt the
    /// outcome, so the tie-break loses no message (unless a newer link is
    /// retired while it drains, which cuts it).
    /// `id` was drawn from `next_link_id` when its handshake began.
    fn adopt(self: &Arc<Self>, stream: TcpStream, auth: Authenticated, dialled_by_me: bool, id: u64) {
        let Some(peer) = self.peers.get(&auth.peer).cloned() else {
            return; // the directory and the peers map hold the same indices
        };
        let remote = stream.peer_addr().ok();
        let (installed, role) = peer.install(self.cfg.me, id, dialled_by_me, auth.remote_static);
        if installed {
            info!(me = self.cfg.me, peer = peer.index, link = id, ?remote, dialled_by_me, "link up");
            self.emit(NetEvent::Connected { peer: peer.index, dialled_by_me });
        } else {
            debug!(
                me = self.cfg.me,
                peer = peer.index,
                link = id,
                ?remote,
                dialled_by_me,
                "duplicate link lost the tie-break; draining it"
            );
        }
        self.spawn(run_link(self.clone(), peer, id, stream, auth.transport, role));
    }
}

impl Peer {
    fn enqueue(&self, msg: Bytes) {
        {
            let mut q = lock(&self.outbound);
            q.push_back(msg);
            if q.len() > self.outbound_cap {
                q.pop_front();
                bump(&self.counters.dropped_outbound, 1);
            }
        }
        self.outbound_ready.notify_one();
    }

    /// Moves queued messages into `sealer` up to about `max` bytes; returns
    /// how many and their total size.
    fn fill(&self, sealer: &mut FrameSealer, max: usize) -> (u64, u64) {
        let mut q = lock(&self.outbound);
        let (mut n, mut bytes) = (0, 0);
        while sealer.pending() < max {
            let Some(m) = q.pop_front() else { break };
            sealer.push_frame(&m);
            n += 1;
            bytes += m.len() as u64;
        }
        (n, bytes)
    }

    /// The duplicate-link rule (see the module docs). Returns whether the
    /// new link is now the one in use, and its role (already `RETIRED` when
    /// it lost). Whichever link this retires becomes the peer's one
    /// draining link; the one draining before is cut.
    fn install(&self, me: u32, id: u64, dialled_by_me: bool, remote_static: [u8; 32]) -> (bool, watch::Receiver<u8>) {
        let mut links = lock(&self.links);
        // A link of another process that began before the newest one put in
        // use is a stale dial of an older process (see the module docs).
        let stale = links.newest.is_some_and(|(key, newest)| key != remote_static && id < newest);
        let keep_new = !stale
            && match links.active.as_ref() {
                None => true,
                Some(old) if old.remote_static != remote_static => true,
                Some(old) => {
                    let i_dial_preferred = me < self.index;
                    let new_preferred = dialled_by_me == i_dial_preferred;
                    let old_preferred = old.dialled_by_me == i_dial_preferred;
                    // Same direction twice means the peer saw the old link die
                    // first: the newer one is live.
                    new_preferred || !old_preferred
                }
            };
        let (role, role_rx) = watch::channel(if keep_new { IN_USE } else { RETIRED });
        let retired = if keep_new {
            links.active.replace(ActiveLink { id, dialled_by_me, remote_static, role }).map(|old| {
                old.role.send_replace(RETIRED);
                (old.id, old.role)
            })
        } else {
            Some((id, role))
        };
        if let Some((older, role)) = retired.and_then(|r| links.draining.replace(r)) {
            debug!(peer = self.index, link = older, "a newer link retired; cutting the one still draining");
            role.send_replace(CUT);
        }
        if !keep_new {
            return (false, role_rx);
        }
        if links.newest.is_none_or(|(_, newest)| id > newest) {
            links.newest = Some((remote_static, id));
        }
        bump(&self.counters.connections, 1);
        self.connected.send_replace(true);
        // A writer may have been waiting on a dead link; make the new one look.
        self.outbound_ready.notify_one();
        (true, role_rx)
    }

    /// The link `id` ended; returns whether it was the one in use.
    fn closed(&self, id: u64) -> bool {
        let mut links = lock(&self.links);
        if links.draining.as_ref().is_some_and(|(d, _)| *d == id) {
            links.draining = None;
        }
        if links.active.as_ref().is_some_and(|a| a.id == id) {
            links.active = None;
            self.connected.send_replace(false);
            true
        } else {
            false
        }
    }

    /// Whether to deliver the frame just read, and how long to hold it.
    fn fault_verdict(&self) -> (bool, Duration) {
        let mut g = lock(&self.faults);
        let (f, rng) = &mut *g;
        if f.blocked {
            return (false, Duration::ZERO);
        }
        if f.loss_per_million > 0 {
            // xorshift64: cheap, seeded, reproducible.
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            if (*rng % 1_000_000) < u64::from(f.loss_per_million) {
                return (false, Duration::ZERO);
            }
        }
        (true, f.delay)
    }

    fn stats(&self) -> PeerStats {
        let queued = lock(&self.outbound).len();
        self.counters.snapshot(self.index, *self.connected.borrow(), queued)
    }
}

/// One pending-handshake pool per IP address of the other validators, each
/// of `max_pending_handshakes` slots: a testnet with every validator on one
/// address has the whole pool there, as before, and a validator on an
/// address of its own has a pool that no other address can take. Keyed by
/// canonical address (an IPv4-mapped IPv6 address is its IPv4 address),
/// as `Inner::handshake_slot` looks them up.
fn validator_pools(cfg: &NetworkConfig) -> BTreeMap<std::net::IpAddr, Arc<Semaphore>> {
    cfg.validators
        .iter()
        .filter(|p| p.index != cfg.me)
        .map(|p| {
            (
                p.addr.ip().to_canonical(),
                Arc::new(Semaphore::new(cfg.max_pending_handshakes.min(Semaphore::MAX_PERMITS))),
            )
        })
        .collect()
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // A restarted node must get its port back while old links sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let (stream, addr) = tokio::select! {
            _ = wait_true(&mut shutdown) => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(me = inner.cfg.me, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(permit) = inner.handshake_slot(addr) else {
            inner.refused_inbound.fetch_add(1, Ordering::Relaxed);
            inner.log_refusal(addr);
            continue;
        };
        // Drawn as the handshake begins: ids order links by that (see
        // `Peer::install`).
        let id = inner.next_link_id.fetch_add(1, Ordering::Relaxed);
        let inner2 = inner.clone();
        inner.spawn(async move {
            let mut stream = stream;
            let _ = stream.set_nodelay(true);
            let res = tokio::time::timeout(
                inner2.cfg.handshake_timeout,
                handshake::respond(&mut stream, &inner2.identity, &inner2.directory),
            )
            .await
            .unwrap_or(Err(HandshakeError::Timeout));
            drop(permit);
            match res {
                Ok(auth) => inner2.adopt(stream, auth, false, id),
                Err(error) => inner2.refused(None, addr, error),
            }
        });
    }
}

async fn dial(inner: &Inner, peer: &Peer) -> Result<(TcpStream, Authenticated), HandshakeError> {
    let mut stream = tokio::time::timeout(inner.cfg.connect_timeout, TcpStream::connect(peer.addr))
        .await
        .map_err(|_| HandshakeError::Timeout)??;
    let _ = stream.set_nodelay(true);
    let auth = tokio::time::timeout(
        inner.cfg.handshake_timeout,
        handshake::initiate(&mut stream, &inner.identity, &inner.directory, peer.index),
    )
    .await
    .map_err(|_| HandshakeError::Timeout)??;
    Ok((stream, auth))
}

/// Keeps a link to `peer` up: whenever there is none, dial, backing off
/// exponentially (with jitter) while dials fail.
async fn dial_loop(inner: Arc<Inner>, peer: Arc<Peer>) {
    let seed = inner.cfg.jitter_seed ^ u64::from(peer.index).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut backoff = Backoff::new(inner.cfg.backoff_initial, inner.cfg.backoff_max, seed);
    let mut shutdown = inner.shutdown.subscribe();
    let mut connected = peer.connected.subscribe();
    let mut delay = Duration::ZERO;
    loop {
        tokio::select! {
            _ = wait_true(&mut shutdown) => return,
            r = connected.wait_for(|c| !*c) => if r.is_err() { return },
        }
        if !delay.is_zero() {
            tokio::select! {
                _ = wait_true(&mut shutdown) => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        if *connected.borrow() {
            // The peer dialled us meanwhile.
            backoff.reset();
            delay = backoff.next_delay();
            continue;
        }
        let id = inner.next_link_id.fetch_add(1, Ordering::Relaxed);
        match dial(&inner, &peer).await {
            Ok((stream, auth)) => {
                backoff.reset();
                // Pause briefly after a future loss, so both ends redialling
                // at once rarely race.
                delay = backoff.next_delay();
                inner.adopt(stream, auth, true, id);
            }
            Err(error) => {
                bump(&peer.counters.dial_failures, 1);
                delay = backoff.next_delay();
                if error.is_authentication_failure() {
                    inner.refused(Some(peer.index), peer.addr, error);
                } else {
                    debug!(me = inner.cfg.me, peer = peer.index, %error, ?delay, "dial failed");
                }
            }
        }
    }
}

/// How far a link is in ending: `ENDING` stops taking new messages but
/// finishes the write in progress (the peer closed its side, or it was
/// retired, yet the peer still reads); `ABORT` stops at once.
const ALIVE: u8 = 0;
const ENDING: u8 = 1;
const ABORT: u8 = 2;

fn raise(end: &watch::Sender<u8>, level: u8) {
    end.send_if_modified(|v| {
        let higher = level > *v;
        *v = (*v).max(level);
        higher
    });
}

async fn wait_level(rx: &mut watch::Receiver<u8>, level: u8) {
    let _ = rx.wait_for(|v| *v >= level).await;
}

/// Runs one authenticated link until it fails, is retired or the network
/// stops.
async fn run_link(
    inner: Arc<Inner>,
    peer: Arc<Peer>,
    id: u64,
    stream: TcpStream,
    transport: snow::StatelessTransportState,
    role: watch::Receiver<u8>,
) {
    let transport = Arc::new(transport);
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(2 + NOISE_MAX_MESSAGE, rd);
    let (end_tx, end_rx) = watch::channel(ALIVE);
    let (done_tx, done_rx) = watch::channel(0u8);
    let me = inner.cfg.me;

    let writer = {
        let (peer, inner, end_tx, done_tx) = (&peer, &inner, &end_tx, &done_tx);
        let (mut role, mut end) = (role.clone(), end_rx.clone());
        let mut shutdown = inner.shutdown.subscribe();
        let mut sealer = FrameSealer::new(transport.clone());
        async move {
            loop {
                let taking = *role.borrow() == IN_USE && *end.borrow() == ALIVE;
                let (n, bytes) = if taking { peer.fill(&mut sealer, WRITE_BATCH) } else { (0, 0) };
                if n > 0 {
                    let out = match sealer.seal() {
                        Ok(out) => out,
                        Err(error) => {
                            warn!(me, peer = peer.index, %error, "cannot seal; dropping link");
                            bump(&peer.counters.dropped_outbound, n);
                            raise(end_tx, ABORT);
                            break;
                        }
                    };
                    // Once taken from the queue a batch is finished even if
                    // the link is ending: the peer reads until we close.
                    let written = tokio::select! {
                        biased;
                        r = wr.write_all(out) => r.map_err(Some),
                        _ = wait_level(&mut end, ABORT) => Err(None),
                        _ = wait_true(&mut shutdown) => Err(None),
                    };
                    match written {
                        Ok(()) => {
                            bump(&peer.counters.sent_messages, n);
                            bump(&peer.counters.sent_bytes, bytes);
                            continue;
                        }
                        Err(e) => {
                            bump(&peer.counters.dropped_outbound, n);
                            if let Some(e) = e {
                                debug!(me, peer = peer.index, error = %e, "write failed");
                                raise(end_tx, ABORT);
                            }
                            break;
                        }
                    }
                }
                tokio::select! {
                    biased;
                    _ = wait_level(&mut role, RETIRED) => break,
                    _ = wait_level(&mut end, ENDING) => break,
                    _ = wait_true(&mut shutdown) => break,
                    _ = peer.outbound_ready.notified() => {}
                }
            }
            // Pass on a wake-up this writer may have taken from its successor.
            peer.outbound_ready.notify_one();
            let _ = wr.shutdown().await;
            done_tx.send_modify(|d| *d += 1);
        }
    };

    let reader = {
        let (peer, inner, end_tx, done_tx) = (&peer, &inner, &end_tx, &done_tx);
        let mut end = end_rx.clone();
        let mut shutdown = inner.shutdown.subscribe();
        let mut opener = FrameOpener::new(transport, inner.cfg.max_frame);
        async move {
            loop {
                // A frame is admitted against the peer's budget once its
                // header is read, before its body is buffered. Waiting for
                // room stops reading this link only: TCP back-pressure lands
                // on the sender, not on other peers. A frame larger than the
                // whole budget waits for all of it. The length is at most
                // `max_frame`, which fits `u32`.
                //
                // Cancelling the opener mid-frame loses the stream position;
                // that only happens here when the link is aborted.
                let step = tokio::select! {
                    r = async {
                        let Some(len) = opener.next_header(&mut rd).await? else { return Ok(None) };
                        let held = len.min(peer.inbound_bytes);
                        let Ok(admitted) =
                            peer.inbound_budget.acquire_many(u32::try_from(held).unwrap_or(u32::MAX)).await
                        else {
                            return Ok(None); // the budget is never closed
                        };
                        let frame = opener.next_body(&mut rd).await?;
                        Ok(Some((frame, held, admitted)))
                    } => r,
                    _ = wait_level(&mut end, ABORT) => break,
                    _ = wait_true(&mut shutdown) => break,
                };
                match step {
                    Ok(Some((frame, held, admitted))) => {
                        bump(&peer.counters.received_messages, 1);
                        bump(&peer.counters.received_bytes, frame.len() as u64);
                        let (deliver, delay) = peer.fault_verdict();
                        if !deliver {
                            bump(&peer.counters.dropped_inbound, 1);
                            continue;
                        }
                        if !delay.is_zero() {
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = wait_level(&mut end, ABORT) => break,
                                _ = wait_true(&mut shutdown) => break,
                            }
                        }
                        // The frame keeps its share of the budget until the
                        // application takes it (`PeerInbound::recv`); until
                        // it is queued the share is returned if it is dropped.
                        let slot = tokio::select! {
                            s = peer.inbound.reserve() => s,
                            _ = wait_level(&mut end, ABORT) => break,
                            _ = wait_true(&mut shutdown) => break,
                        };
                        if let Ok(slot) = slot {
                            admitted.forget();
                            slot.send((frame, held));
                        }
                    }
                    Ok(None) => {
                        debug!(me, peer = peer.index, link = id, "peer closed its side");
                        // The peer finished writing; let our writer finish too.
                        raise(end_tx, ENDING);
                        break;
                    }
                    Err(error) => {
                        if matches!(error, LinkError::Io(_)) {
                            debug!(me, peer = peer.index, %error, "link read failed");
                        } else {
                            warn!(me, peer = peer.index, %error, "protocol violation; dropping link");
                            bump(&peer.counters.protocol_errors, 1);
                            inner.emit(NetEvent::LinkFailed { peer: peer.index, error });
                        }
                        raise(end_tx, ABORT);
                        break;
                    }
                }
            }
            done_tx.send_modify(|d| *d += 1);
        }
    };

    // An ending or retired link whose peer neither reads nor closes is cut
    // after a grace period; a retired link is cut at once when a newer link
    // of the peer is retired.
    let grace = {
        let (mut role, mut cut, mut end, mut done) = (role.clone(), role, end_rx.clone(), done_rx);
        let grace = inner.cfg.handshake_timeout;
        let end_tx = &end_tx;
        async move {
            let expire = async {
                tokio::select! {
                    _ = wait_level(&mut role, RETIRED) => {}
                    _ = wait_level(&mut end, ENDING) => {}
                }
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                _ = done.wait_for(|d| *d >= 2) => {}
                _ = expire => raise(end_tx, ABORT),
                _ = wait_level(&mut cut, CUT) => raise(end_tx, ABORT),
            }
        }
    };

    tokio::join!(writer, reader, grace);
    if peer.closed(id) {
        info!(me, peer = peer.index, link = id, end = *end_rx.borrow(), "link down");
        inner.emit(NetEvent::Disconnected { peer: peer.index });
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A validator configured at an IPv4-mapped IPv6 address has its pool
    /// under the IPv4 address, where `Inner::handshake_slot` looks a
    /// canonical peer address up (attack r20 on the net crate).
    #[test]
    fn validator_pools_are_keyed_by_canonical_address() {
        let peer = |index: u32, addr: &str| crate::PeerConfig {
            index,
            public_key: KeyPair::from_seed(&format!("pool-{index}")).public(),
            addr: addr.parse().expect("address"),
        };
        let cfg = NetworkConfig::new(
            gridledger_core::Hash32([1; 32]),
            0,
            vec![peer(0, "127.0.0.1:1"), peer(1, "[::ffff:10.0.0.7]:2"), peer(2, "[::1]:3")],
        );
        let keys: Vec<std::net::IpAddr> = validator_pools(&cfg).into_keys().collect();
        let v4: std::net::IpAddr = "10.0.0.7".parse().expect("ip");
        let v6: std::net::IpAddr = "::1".parse().expect("ip");
        assert_eq!(keys, vec![v4, v6]);
        let mapped: std::net::IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
        assert_eq!(mapped.to_canonical(), v4);
    }

    /// A peer slot for validator `index` with no link installed yet.
    fn fresh_peer(index: u32) -> Peer {
        Peer {
            index,
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            outbound: Mutex::new(VecDeque::new()),
            outbound_cap: 1,
            outbound_ready: Notify::new(),
            inbound: mpsc::channel(1).0,
            inbound_budget: Arc::new(Semaphore::new(1)),
            inbound_bytes: 1,
            faults: Mutex::new((LinkFaults::default(), 1)),
            links: Mutex::new(Links::default()),
            connected: watch::channel(false).0,
            counters: Counters::default(),
        }
    }

    /// Installs two links, in order, on a fresh peer slot of `me` for
    /// `peer`; returns whether each was installed as the one in use.
    pub(crate) fn install_outcome(me: u32, peer: u32, links: [(bool, [u8; 32]); 2]) -> (bool, bool) {
        let p = fresh_peer(peer);
        let (a, _ra) = p.install(me, 0, links[0].0, links[0].1);
        let (b, _rb) = p.install(me, 1, links[1].0, links[1].1);
        (a, b)
    }

    /// Installs `links` in order on a fresh peer slot of validator 0 for
    /// validator 1, each link's handshake begun in the order installed;
    /// returns each link's role afterwards (0 in use, 1 retired and
    /// draining, 2 cut).
    pub(crate) fn roles_after(links: &[(bool, [u8; 32])]) -> Vec<u8> {
        let begun: Vec<_> = links.iter().enumerate().map(|(i, l)| (i as u64, l.0, l.1)).collect();
        roles_after_begun(&begun)
    }

    /// Installs link `newest` (id, remote static) on a fresh peer slot of
    /// validator 0 for validator 1, ends it, then installs `next`; returns
    /// whether `next` is put in use.
    pub(crate) fn in_use_after_the_newest_ended(newest: (u64, [u8; 32]), next: (u64, [u8; 32])) -> bool {
        let p = fresh_peer(1);
        let _first = p.install(0, newest.0, false, newest.1);
        p.closed(newest.0);
        p.install(0, next.0, false, next.1).0
    }

    /// Like [`roles_after`], each link given as `(id, dialled_by_me,
    /// remote_static)`, its id ordering the links by when their handshakes
    /// began.
    pub(crate) fn roles_after_begun(links: &[(u64, bool, [u8; 32])]) -> Vec<u8> {
        let p = fresh_peer(1);
        let rxs: Vec<_> = links.iter().map(|l| p.install(0, l.0, l.1, l.2).1).collect();
        rxs.iter().map(|r| *r.borrow()).collect()
    }
}
