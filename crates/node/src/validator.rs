//! Multi-validator operation: the improved PBFT replica of
//! `gridledger-consensus` (thesis §3.3.2) driven over a [`Transport`], with
//! the chain as the source of proposals and the sink of committed blocks.
//!
//! The replica is a sans-IO state machine; this driver is its IO: it
//! persists the replica's vote state before any message leaves, sends and
//! receives bytes, runs its timers on the local clock, executes and
//! validates blocks against the chain, and commits finalised blocks with
//! their quorum certificates as [`Seal::Quorum`].
//!
//! Transactions admitted by any validator are gossiped to all others (one
//! hop: the validators form a full mesh), so whichever validator leads the
//! next view has them.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{
    CommittedEntry, Config, Durable, Message, Payload, QuorumCert, Replica, Step, Target, Timer, TimerCmd, ValidatorSet,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{merkle_root, Hash32};
use gridledger_ledger::{Block, ExecutedBlock, Seal};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::service::Shared;

/// A ledger block as the PBFT payload.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct PbftBlock(pub Block);

impl Payload for PbftBlock {
    fn digest(&self) -> Hash32 {
        self.0.hash()
    }

    /// An empty block triggers the thesis' "view update" (§3.3.2).
    fn is_empty(&self) -> bool {
        self.0.txs.is_empty()
    }

    /// Thesis §3.3.2 step 2: the transaction hashes must match the header.
    fn well_formed(&self) -> Result<(), String> {
        let h = &self.0.header;
        if h.tx_count as usize != self.0.txs.len() {
            return Err(format!("header counts {} transactions, block has {}", h.tx_count, self.0.txs.len()));
        }
        let root = merkle_root(&self.0.tx_hashes());
        if root != h.tx_root {
            return Err("transaction root does not match the transactions".into());
        }
        Ok(())
    }
}

/// Moves bytes between validators. Implementations must not block.
pub trait Transport: Send + 'static {
    fn send(&self, to: u32, bytes: Vec<u8>);
    fn broadcast(&self, bytes: Vec<u8>);
}

/// What the driver thread receives.
pub enum Input {
    Peer {
        from: u32,
        bytes: Vec<u8>,
    },
    /// Something local happened (e.g. a transaction was admitted).
    Wake,
    Stop,
}

pub(crate) const WIRE_PBFT: u8 = 0;
pub(crate) const WIRE_TXS: u8 = 1;
/// Largest inbound frame the driver decodes (catch-up responses carry
/// several full blocks).
pub const MAX_FRAME: usize = 32 << 20;
const DURABLE_KEY: &str = "pbft/durable";

/// Driver settings.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PbftSettings {
    /// Deadline of a view (ms), doubled per consecutive view change.
    pub base_timeout_ms: u64,
    /// Proposals whose timestamp is further ahead of the local clock are refused.
    pub max_clock_drift_ms: u64,
    /// Committed blocks the replica keeps in memory for catch-up; older
    /// ones are served from the store.
    pub retain_blocks: usize,
    /// A logical block clock (ms) shared by in-process validators, for
    /// simulations and demos that replay a day; `None` is the system clock.
    #[serde(skip)]
    pub clock: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Default for PbftSettings {
    fn default() -> Self {
        Self { base_timeout_ms: 1_000, max_clock_drift_ms: 10_000, retain_blocks: 256, clock: None }
    }
}

pub(crate) fn add_us(counter: &std::sync::atomic::AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_micros() as u64, Relaxed);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Driver {
    shared: Arc<Shared>,
    replica: Replica<PbftBlock>,
    set: ValidatorSet,
    key: KeyPair,
    transport: Box<dyn Transport>,
    timers: BTreeMap<Timer, Instant>,
    pending_proposal: Option<(u64, u64)>,
    /// Blocks this validator executed (proposed or validated), by hash.
    executed: HashMap<Hash32, ExecutedBlock>,
    settings: PbftSettings,
    /// Catch-up requests served per peer, checked before any block is read.
    catch_up_requests: crate::p2p::CatchUpLimiter,
    /// Other validators' transaction gossip is verified on its own thread.
    gossip_in: crate::gossip::GossipVerifier,
}

/// The validator set of a chain: its genesis validators, with the genesis
/// hash as the consensus instance so votes never cross chains.
pub fn validator_set(shared: &Shared) -> anyhow::Result<ValidatorSet> {
    let chain = shared.chain();
    let g = chain.genesis();
    ValidatorSet::new(g.hash(), g.validators.clone()).map_err(|e| anyhow::anyhow!("validator set: {e}"))
}

/// The committed tail of the chain as the replica's log.
fn committed_log(shared: &Shared, retain: usize) -> anyhow::Result<Vec<CommittedEntry<PbftBlock>>> {
    let tip = shared.chain().tip().height;
    committed_range(shared, tip.saturating_sub(retain as u64 - 1).max(1), tip)
}

/// Committed blocks `from..=to` from the store, with their certificates.
fn committed_range(shared: &Shared, from: u64, to: u64) -> anyhow::Result<Vec<CommittedEntry<PbftBlock>>> {
    let mut out = Vec::new();
    for h in from..=to {
        let Some(mut b) = shared.store.block(h)? else { continue };
        let Seal::Quorum { view, signatures } = std::mem::replace(&mut b.seal, Seal::Genesis) else {
            anyhow::bail!(
                "block {h} has no quorum certificate: this data directory was not written by a PBFT validator"
            );
        };
        out.push(CommittedEntry {
            cert: QuorumCert { view, height: h, block: b.hash(), signatures },
            payload: PbftBlock(b),
        });
    }
    Ok(out)
}

/// Runs a validator until `Input::Stop`. Blocking: give it its own thread.
pub fn run_validator(
    shared: Arc<Shared>,
    key: KeyPair,
    transport: Box<dyn Transport>,
    inbox: Receiver<Input>,
    settings: PbftSettings,
) -> anyhow::Result<()> {
    let set = validator_set(&shared)?;
    let me = set
        .keys()
        .iter()
        .position(|k| *k == key.public())
        .ok_or_else(|| anyhow::anyhow!("key {} is not a validator of this chain", key.public()))? as u32;
    let cfg = Config {
        base_timeout: settings.base_timeout_ms.max(1),
        retain: settings.retain_blocks.max(1),
        ..Config::new(set.clone(), me)
    };
    let log = committed_log(&shared, cfg.retain)?;
    let durable: Option<Durable<PbftBlock>> = match shared.store.get_aux(DURABLE_KEY)? {
        Some(b) => Some(decode(&b, MAX_FRAME).map_err(|e| anyhow::anyhow!("stored vote state: {e}"))?),
        None => None,
    };
    let replica = Replica::restore(cfg, key.clone(), &log, durable).map_err(|e| anyhow::anyhow!("replica: {e}"))?;
    let mut d = Driver {
        replica,
        set,
        key,
        transport,
        timers: BTreeMap::new(),
        pending_proposal: None,
        executed: HashMap::new(),
        gossip_in: crate::gossip::GossipVerifier::spawn(shared.clone())?,
        shared,
        settings,
        catch_up_requests: crate::p2p::CatchUpLimiter::default(),
    };
    let first = d.replica.start();
    d.process(first);
    loop {
        d.gossip();
        d.try_propose();
        let wait = d
            .timers
            .values()
            .min()
            .map_or(Duration::from_millis(50), |t| t.saturating_duration_since(Instant::now()))
            .min(Duration::from_millis(50));
        match inbox.recv_timeout(wait) {
            // Gossip goes to the verifier thread, which releases its lane.
            Ok(Input::Peer { from, bytes }) if bytes.first() == Some(&WIRE_TXS) => d.gossip_in.submit(from, bytes),
            Ok(Input::Peer { from, bytes }) => {
                d.on_bytes(from, &bytes);
                d.shared.release_inbound(from, &bytes);
            }
            Ok(Input::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
        d.fire_timers();
    }
    Ok(())
}

impl Driver {
    /// The block clock: the logical clock if one is set, else the system's.
    fn block_time(&self) -> u64 {
        self.settings.clock.as_ref().map_or_else(now_ms, |c| c.load(Relaxed))
    }

    fn on_bytes(&mut self, from: u32, bytes: &[u8]) {
        let Some((&kind, body)) = bytes.split_first() else { return };
        // A peer's catch-up requests are rate-limited before anything is
        // decoded or read: serving one clones or reads up to
        // `catch_up_batch` full blocks on this thread.
        if crate::p2p::is_catch_up_request(bytes) && !self.catch_up_requests.allow(from, Instant::now()) {
            tracing::debug!(from, "catch-up request rate-limited");
            return;
        }
        match kind {
            WIRE_PBFT => match Message::<PbftBlock>::from_bytes(body, MAX_FRAME, self.set.len(), 1_024) {
                Ok(Message::CatchUpRequest { from_height }) if from_height < self.oldest_retained() => {
                    // Older than the replica keeps in memory: serve from the store.
                    let batch = self.replica.config().catch_up_batch as u64;
                    let tip = self.shared.chain().tip().height;
                    match committed_range(&self.shared, from_height.max(1), tip.min(from_height + batch - 1)) {
                        Ok(entries) if !entries.is_empty() => {
                            let mut bytes = vec![WIRE_PBFT];
                            bytes.extend(Message::CatchUpResponse { entries }.to_bytes());
                            self.transport.send(from, bytes);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(from, "serving catch-up from the store: {e:#}"),
                    }
                }
                // A stale view change is answered with catch-up (blocks cloned
                // before any signature is checked): the same per-peer rate.
                Ok(Message::ViewChange(vc))
                    if vc.height < self.replica.height() && !self.catch_up_requests.allow(from, Instant::now()) =>
                {
                    tracing::debug!(from, "stale view change (catch-up) rate-limited");
                }
                Ok(m) => {
                    let step = self.replica.handle_message(from, m);
                    self.process(step);
                }
                Err(e) => {
                    self.shared.metrics.faults.fetch_add(1, Relaxed);
                    tracing::warn!(from, "undecodable consensus message: {e}");
                }
            },
            // Routed to the gossip verifier by `run_validator`.
            WIRE_TXS => self.gossip_in.submit(from, bytes.to_vec()),
            other => tracing::warn!(from, kind = other, "unknown message kind"),
        }
    }

    /// Lowest height the replica can serve catch-up from itself.
    fn oldest_retained(&self) -> u64 {
        self.replica.committed_tail().next().map_or(self.replica.height(), |e| e.cert.height)
    }

    fn gossip(&mut self) {
        let txs = self.shared.take_outbox();
        if !txs.is_empty() {
            let mut bytes = vec![WIRE_TXS];
            bytes.extend(encode(&txs));
            self.transport.broadcast(bytes);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<Timer> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t).collect();
        for t in due {
            self.timers.remove(&t);
            let step = self.replica.handle_timer(t);
            self.process(step);
        }
    }

    /// The leader proposes as soon as it has transactions (an empty block
    /// would only trigger a view update, §3.3.2).
    fn try_propose(&mut self) {
        let Some((h, v)) = self.pending_proposal else { return };
        if self.replica.height() != h || self.replica.view() != v {
            self.pending_proposal = None;
            return;
        }
        let t = Instant::now();
        let ex = {
            let mut chain = self.shared.chain();
            if chain.mempool().is_empty() || chain.tip().height + 1 != h {
                return;
            }
            chain.build_block(&self.key.public(), self.block_time()).0
        };
        add_us(&self.shared.metrics.pbft_build_us, t);
        if ex.block.txs.is_empty() {
            return;
        }
        self.pending_proposal = None;
        let block = ex.block.clone();
        self.executed.insert(block.hash(), ex);
        let step = self.replica.propose(h, v, PbftBlock(block));
        self.process(step);
    }

    fn validate(&mut self, block: &Block) -> Result<(), String> {
        if block.header.timestamp > self.block_time() + self.settings.max_clock_drift_ms {
            return Err("timestamp too far in the future".into());
        }
        let hash = block.hash();
        if self.executed.contains_key(&hash) {
            return Ok(());
        }
        let t = Instant::now();
        let ex = self.shared.chain().validate_block(block).map_err(|e| e.to_string());
        add_us(&self.shared.metrics.pbft_validate_us, t);
        self.executed.insert(hash, ex?);
        Ok(())
    }

    fn commit(&mut self, e: CommittedEntry<PbftBlock>) {
        let started = Instant::now();
        let hash = e.payload.0.hash();
        let mut ex = match self.executed.remove(&hash) {
            Some(ex) if ex.block.header.parent == self.shared.chain().tip().hash() => ex,
            _ => match self.shared.chain().validate_block(&e.payload.0) {
                Ok(ex) => ex,
                Err(err) => {
                    // A quorum certified a block this replica cannot apply:
                    // its state diverged or its store is damaged. Stop
                    // rather than fork.
                    tracing::error!(height = e.cert.height, "cannot apply a certified block: {err}");
                    return;
                }
            },
        };
        ex.block.seal = Seal::Quorum { view: e.cert.view, signatures: e.cert.signatures };
        let (block, receipts) = (ex.block.clone(), ex.receipts.clone());
        let t = Instant::now();
        let committed = self.shared.chain().commit(ex);
        add_us(&self.shared.metrics.pbft_commit_us, t);
        if let Err(err) = committed {
            tracing::error!(height = e.cert.height, "commit failed: {err}");
            return;
        }
        let h = block.header.height;
        self.executed.retain(|_, x| x.block.header.height > h);
        tracing::info!(height = h, txs = block.txs.len(), view = e.cert.view, "committed block");
        self.shared.record_block(&block, &receipts, 0, started.elapsed());
    }

    fn process(&mut self, step: Step<PbftBlock>) {
        let mut queue = std::collections::VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            if let Some(d) = &step.persist {
                let t = Instant::now();
                let written = self.shared.store.put_aux(DURABLE_KEY, &encode(d));
                add_us(&self.shared.metrics.pbft_persist_us, t);
                if let Err(e) = written {
                    // Never vote without the vote on disk.
                    tracing::error!("cannot persist vote state, withholding messages: {e}");
                    continue;
                }
            }
            for m in step.messages {
                let mut bytes = vec![WIRE_PBFT];
                bytes.extend(m.message.to_bytes());
                match m.to {
                    Target::All => self.transport.broadcast(bytes),
                    Target::One(i) => self.transport.send(i, bytes),
                }
            }
            for e in step.committed {
                self.commit(e);
            }
            for t in step.timers {
                match t {
                    TimerCmd::Set { timer, after } => {
                        self.timers.insert(timer, Instant::now() + Duration::from_millis(after));
                    }
                    TimerCmd::Cancel(timer) => {
                        self.timers.remove(&timer);
                    }
                }
            }
            for f in step.faults {
                self.shared.metrics.faults.fetch_add(1, Relaxed);
                match f {
                    // Before the network settles a late message looks the same.
                    gridledger_consensus::pbft::Fault::StaleView { .. } => tracing::debug!("consensus: {f:?}"),
                    _ => tracing::warn!("consensus fault: {f:?}"),
                }
            }
            if let Some(p) = step.need_proposal {
                self.pending_proposal = Some(p);
            }
            for req in step.validate {
                let digest = req.payload.digest();
                let verdict = self.validate(&req.payload.0);
                queue.push_back(self.replica.handle_validated(req.height, req.view, digest, verdict));
            }
        }
    }
}

/// An in-process transport: validators in one process exchanging real
/// (encoded) messages over channels, with links that tests can cut and
/// inboxes that a restarted validator can take over.
#[derive(Clone)]
pub struct LocalMesh {
    inboxes: Arc<std::sync::Mutex<Vec<Sender<Input>>>>,
    down: Arc<std::sync::Mutex<std::collections::BTreeSet<u32>>>,
}

impl LocalMesh {
    /// A mesh of `n` validators and their inboxes.
    pub fn new(n: usize) -> (Self, Vec<Receiver<Input>>) {
        let (tx, rx): (Vec<_>, Vec<_>) = (0..n).map(|_| std::sync::mpsc::channel()).unzip();
        (Self { inboxes: Arc::new(std::sync::Mutex::new(tx)), down: Arc::default() }, rx)
    }

    /// The transport of validator `me`.
    pub fn transport(&self, me: u32) -> LocalTransport {
        LocalTransport { me, mesh: self.clone() }
    }

    pub fn inbox(&self, i: u32) -> Option<Sender<Input>> {
        self.inboxes.lock().unwrap_or_else(|p| p.into_inner()).get(i as usize).cloned()
    }

    /// A fresh inbox for validator `i` (after a restart).
    pub fn reconnect(&self, i: u32) -> Option<Receiver<Input>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut v = self.inboxes.lock().unwrap_or_else(|p| p.into_inner());
        *v.get_mut(i as usize)? = tx;
        Some(rx)
    }

    /// Cuts (or restores) every link of validator `i`.
    pub fn set_down(&self, i: u32, down: bool) {
        let mut d = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down {
            d.insert(i);
        } else {
            d.remove(&i);
        }
    }

    fn len(&self) -> u32 {
        self.inboxes.lock().unwrap_or_else(|p| p.into_inner()).len() as u32
    }

    fn deliver(&self, from: u32, to: u32, bytes: Vec<u8>) {
        {
            let d = self.down.lock().unwrap_or_else(|p| p.into_inner());
            if d.contains(&from) || d.contains(&to) {
                return;
            }
        }
        if let Some(tx) = self.inbox(to) {
            let _ = tx.send(Input::Peer { from, bytes });
        }
    }
}

pub struct LocalTransport {
    me: u32,
    mesh: LocalMesh,
}

impl Transport for LocalTransport {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        self.mesh.deliver(self.me, to, bytes);
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        for to in 0..self.mesh.len() {
            if to != self.me {
                self.mesh.deliver(self.me, to, bytes.clone());
            }
        }
    }
}
