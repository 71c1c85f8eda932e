//! The node service: one chain behind a mutex, a block-producer thread, and
//! the HTTP server on a tokio runtime.

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Hash32, Height, Timestamp};
use gridledger_ledger::store::Store;
use gridledger_ledger::{Block, Chain, Committed, Event, Receipt, SignedTransaction, SubmitError, TxRules, VerifiedTx};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

use crate::config::NodeConfig;
use crate::metrics::Metrics;

/// What subscribers hear about each committed block.
#[derive(Clone, Debug, Serialize)]
pub struct BlockNotice {
    pub height: Height,
    pub hash: Hash32,
    pub timestamp: Timestamp,
    pub tx_count: u32,
    pub gas_used: u64,
    pub events: Vec<TxEvent>,
}

/// One event with the transaction that emitted it.
#[derive(Clone, Debug, Serialize)]
pub struct TxEvent {
    pub tx_hash: Hash32,
    pub event: Event,
}

impl BlockNotice {
    pub fn from_block(block: &gridledger_ledger::Block, receipts: &[gridledger_ledger::Receipt]) -> Self {
        Self {
            height: block.header.height,
            hash: block.hash(),
            timestamp: block.header.timestamp,
            tx_count: block.header.tx_count,
            gas_used: block.header.gas_used,
            events: receipts
                .iter()
                .flat_map(|r| r.events.iter().map(|e| TxEvent { tx_hash: r.tx_hash, event: e.clone() }))
                .collect(),
        }
    }
}

/// State shared by the producer thread and the API.
pub struct Shared {
    chain: Mutex<Chain>,
    /// Read-only store handle for queries that need no lock.
    pub store: Store,
    pub rules: TxRules,
    pub metrics: Metrics,
    pub events: broadcast::Sender<Arc<BlockNotice>>,
    /// The HTTP API's refusal counters (connections, requests, subscribers).
    pub rpc_counters: Arc<crate::rpc::RpcCounters>,
    pub max_block_txs: usize,
    /// The node's configured block interval (ms; 0 when not known), shown
    /// by `gl_chainInfo` so clients can turn block counts into time.
    pub block_interval_ms: std::sync::atomic::AtomicU64,
    wake: (Mutex<bool>, Condvar),
    stop: AtomicBool,
    /// Multi-validator mode: admitted transactions waiting to be gossiped,
    /// and the validator driver's inbox to wake it.
    outbox: Mutex<Vec<SignedTransaction>>,
    driver: Mutex<Option<std::sync::mpsc::Sender<crate::validator::Input>>>,
    /// Set while the node cannot commit (a store fault), with the reason.
    fault: Mutex<Option<String>>,
    /// Per-peer inbound lanes of the peer links, when there are any.
    inbound_lanes: std::sync::OnceLock<Arc<crate::p2p::Lanes>>,
    /// Proposal validations under way; gossip verification waits for them
    /// ([`Shared::yield_to_validation`]).
    validating: (Mutex<usize>, Condvar),
    /// The largest gas limit a submitted transaction may carry beyond the
    /// chain's rules (`u64::MAX`: none): under LBFT this validator's share
    /// of a block, the most its batch may carry.
    gas_share: std::sync::atomic::AtomicU64,
}

/// Gossip verification waits at most this long for proposal validations
/// (a bound, not a schedule: a validation normally ends well before).
pub(crate) const MAX_GOSSIP_YIELD: Duration = Duration::from_secs(2);

/// A proposal validation under way; dropping it lets gossip verification go on.
pub(crate) struct Validating<'a>(&'a Shared);

impl Drop for Validating<'_> {
    fn drop(&mut self) {
        let (m, cv) = &self.0.validating;
        let mut n = m.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        if *n == 0 {
            cv.notify_all();
        }
    }
}

impl Shared {
    /// Test support: the shared state of a node over a fresh chain from
    /// `genesis` on an in-memory disk, with the default contracts.
    #[cfg(test)]
    pub(crate) fn in_memory(genesis: gridledger_ledger::Genesis) -> Arc<Self> {
        let disk = gridledger_ledger::fault::SimDisk::new();
        let store = gridledger_ledger::store::Store::open_backend(move || disk.backend()).unwrap();
        let chain = Chain::open_store(
            store,
            genesis,
            gridledger_contracts::default_registry(),
            gridledger_ledger::ChainConfig::default(),
        )
        .unwrap();
        Self::new(chain)
    }

    /// The shared state of a node over an opened chain.
    pub fn new(chain: Chain) -> Arc<Self> {
        let (events, _) = broadcast::channel(1024);
        let metrics = Metrics::default();
        metrics.height.store(chain.tip().height, Relaxed);
        Arc::new(Shared {
            store: chain.store().clone(),
            rules: chain.rules(),
            max_block_txs: chain.config().max_block_txs,
            block_interval_ms: std::sync::atomic::AtomicU64::new(0),
            chain: Mutex::new(chain),
            metrics,
            events,
            rpc_counters: Arc::default(),
            wake: (Mutex::new(false), Condvar::new()),
            stop: AtomicBool::new(false),
            outbox: Mutex::new(Vec::new()),
            driver: Mutex::new(None),
            fault: Mutex::new(None),
            inbound_lanes: std::sync::OnceLock::new(),
            validating: (Mutex::new(0), Condvar::new()),
            gas_share: std::sync::atomic::AtomicU64::new(u64::MAX),
        })
    }

    /// The validator driver's inbox, in multi-validator mode (to wake it).
    pub(crate) fn driver_inbox(&self) -> Option<std::sync::mpsc::Sender<crate::validator::Input>> {
        self.driver.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks a proposal validation under way until the guard drops (issue 9
    /// item 10): a proposal is what the next votes wait for, while gossip
    /// only pre-verifies transactions a later proposal may carry, so gossip
    /// verification pauses between its chunks meanwhile and the
    /// validation's signature checks do not queue on the rayon pool behind
    /// gossip frames.
    pub(crate) fn validating(&self) -> Validating<'_> {
        *self.validating.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Validating(self)
    }

    /// Waits (at most [`MAX_GOSSIP_YIELD`]) while a proposal validation is
    /// under way; called by gossip verification before each chunk.
    pub(crate) fn yield_to_validation(&self) {
        let (m, cv) = &self.validating;
        let n = m.lock().unwrap_or_else(|p| p.into_inner());
        if *n == 0 {
            return;
        }
        self.metrics.pbft_gossip_yields.fetch_add(1, Relaxed);
        let t = Instant::now();
        let _ = cv.wait_timeout_while(n, MAX_GOSSIP_YIELD, |n| *n > 0).unwrap_or_else(|p| p.into_inner());
        crate::validator::add_us(&self.metrics.pbft_gossip_yield_us, t);
    }

    /// Sets the validator driver's inbox: admitted transactions are then
    /// queued for gossip and wake it.
    pub(crate) fn set_driver_inbox(&self, inbox: Option<std::sync::mpsc::Sender<crate::validator::Input>>) {
        *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = inbox;
    }

    /// Locks the chain; a poisoned lock (a panic elsewhere) is recovered,
    /// since the chain's committed state lives on disk and in `State`,
    /// which is only mutated after a successful commit.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why the node cannot commit blocks right now, if it cannot.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records (or clears) a store fault: `/health` and the metrics report
    /// it, and new transactions are refused while it lasts.
    pub fn set_fault(&self, reason: Option<String>) {
        self.metrics.store_unavailable.store(reason.is_some() as u64, Relaxed);
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    /// Sets (or lifts, `None`) the gas limit above which submitted
    /// transactions are refused ([`SubmitError::GasLimitAboveShare`]).
    pub fn set_gas_share(&self, share: Option<u64>) {
        self.gas_share.store(share.unwrap_or(u64::MAX), Relaxed);
    }

    /// Admits verified transactions submitted by clients; wakes the
    /// producer when a block is full, and queues them for gossip to the
    /// other validators.
    pub fn admit(&self, txs: Vec<Result<VerifiedTx, SubmitError>>) -> Vec<Result<Hash32, SubmitError>> {
        if let Some(reason) = self.fault() {
            // Unable to commit: accepting more would only grow a backlog
            // that clients believe is on its way.
            self.metrics.txs_rejected.fetch_add(txs.len() as u64, Relaxed);
            return txs.iter().map(|_| Err(SubmitError::Unavailable { reason: reason.clone() })).collect();
        }
        let driver = self.driver.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let share = self.gas_share.load(Relaxed);
        let mut gossip = Vec::new();
        let (out, pending) = {
            let mut chain = self.chain();
            let out: Vec<_> = txs
                .into_iter()
                .map(|r| {
                    r.and_then(|v| {
                        if v.tx.tx.gas_limit > share {
                            return Err(SubmitError::GasLimitAboveShare { limit: v.tx.tx.gas_limit, share });
                        }
                        let tx = driver.as_ref().map(|_| v.tx.clone());
                        let h = chain.admit(v)?;
                        gossip.extend(tx);
                        Ok(h)
                    })
                })
                .collect();
            (out, chain.mempool().len())
        };
        if let Some(d) = driver.filter(|_| !gossip.is_empty()) {
            crate::timeline::record("admit", || serde_json::json!({ "n": gossip.len() }));
            self.outbox.lock().unwrap_or_else(|p| p.into_inner()).extend(gossip);
            let _ = d.send(crate::validator::Input::Wake);
        }
        let ok = out.iter().filter(|r| r.is_ok()).count() as u64;
        self.metrics.txs_accepted.fetch_add(ok, Relaxed);
        self.metrics.txs_rejected.fetch_add(out.len() as u64 - ok, Relaxed);
        self.metrics.mempool.store(pending as u64, Relaxed);
        if pending >= self.max_block_txs {
            self.notify();
        }
        out
    }

    /// Admits transactions gossiped by another validator (not re-gossiped).
    /// Gossiped transactions worth verifying: not already pending here
    /// (verified on arrival) and not already committed (the block that
    /// carried them outran the gossip, and validating it verified them).
    /// Either kind would be refused after its signature check anyway; under
    /// load the gossip lags the blocks, and this saves that check.
    pub(crate) fn unknown_txs(&self, txs: Vec<SignedTransaction>) -> Vec<SignedTransaction> {
        let chain = self.chain();
        txs.into_iter()
            .filter(|t| t.tx.nonce >= chain.account(&t.sender()).nonce && !chain.mempool().holds(t))
            .collect()
    }

    /// Returns how many were admitted.
    pub fn admit_gossiped(&self, txs: Vec<Result<VerifiedTx, SubmitError>>) -> usize {
        let (ok, pending) = {
            let mut chain = self.chain();
            let ok = txs.into_iter().filter(|r| r.clone().and_then(|v| chain.admit(v)).is_ok()).count();
            (ok, chain.mempool().len())
        };
        self.metrics.mempool.store(pending as u64, Relaxed);
        self.metrics.txs_gossiped.fetch_add(ok as u64, Relaxed);
        ok
    }

    pub(crate) fn set_inbound_lanes(&self, lanes: Arc<crate::p2p::Lanes>) {
        let _ = self.inbound_lanes.set(lanes);
    }

    /// The driver has processed `bytes` from peer `from`: frees its lane.
    pub fn release_inbound(&self, from: u32, bytes: &[u8]) {
        if let Some(l) = self.inbound_lanes.get() {
            l.release(from, bytes);
        }
    }

    /// The peer lanes' gauges (Prometheus text), empty without peer links.
    pub fn lanes_metrics(&self) -> String {
        self.inbound_lanes.get().map(|l| l.render()).unwrap_or_default()
    }

    /// Gossip messages dropped because a peer's gossip lane was full.
    pub fn gossip_dropped(&self) -> u64 {
        self.inbound_lanes.get().map_or(0, |l| l.gossip_dropped.load(Relaxed))
    }

    pub(crate) fn take_outbox(&self) -> Vec<SignedTransaction> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn notify(&self) {
        let (m, cv) = &self.wake;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    fn wait(&self, d: Duration) {
        let (m, cv) = &self.wake;
        let g = m.lock().unwrap_or_else(|p| p.into_inner());
        let (mut g, _) =
            cv.wait_timeout_while(g, d, |woken| !*woken && !self.stop.load(Relaxed)).unwrap_or_else(|p| p.into_inner());
        *g = false;
    }

    fn record(&self, c: &Committed, took: Duration) {
        self.record_block(&c.block, &c.receipts, c.dropped.len(), took);
    }

    /// Metrics and subscriber notice for one committed block. Takes the
    /// chain's lock (to refresh the mempool gauge, which a commit shrinks):
    /// callers must not hold it.
    pub(crate) fn record_block(&self, block: &Block, receipts: &[Receipt], dropped: usize, took: Duration) {
        let m = &self.metrics;
        // Before, only admissions set it: under PBFT the gauge kept the
        // size before the last block's transactions left the mempool.
        m.mempool.store(self.chain().mempool().len() as u64, Relaxed);
        m.blocks.fetch_add(1, Relaxed);
        m.txs_committed.fetch_add(block.txs.len() as u64, Relaxed);
        m.txs_dropped.fetch_add(dropped as u64, Relaxed);
        m.gas_used.fetch_add(block.header.gas_used, Relaxed);
        m.commit_micros_sum.fetch_add(took.as_micros() as u64, Relaxed);
        m.height.store(block.header.height, Relaxed);
        let _ = self.events.send(Arc::new(BlockNotice::from_block(block, receipts)));
    }
}

fn now_ms() -> Timestamp {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// An opened node, not yet running.
pub struct Node {
    shared: Arc<Shared>,
    key: KeyPair,
    interval: Duration,
    listen: String,
    network: Option<crate::config::NetworkSection>,
    pbft: crate::validator::PbftSettings,
    consensus: crate::config::ConsensusKind,
    lbft: crate::lbft::LbftSettings,
    rpc_limits: crate::rpc::RpcLimits,
}

impl Node {
    pub fn open(config: &NodeConfig, registry: gridledger_ledger::ContractRegistry) -> anyhow::Result<Self> {
        Self::open_with_store(config, registry, None)
    }

    /// [`Node::open`] on a given store instead of the data directory's
    /// (tests and the simulator use a fault-injecting one).
    pub fn open_with_store(
        config: &NodeConfig,
        registry: gridledger_ledger::ContractRegistry,
        store: Option<Store>,
    ) -> anyhow::Result<Self> {
        let genesis = config.load_genesis()?;
        let key = config.load_key()?;
        if !genesis.validators.contains(&key.public()) {
            anyhow::bail!("validator key {} is not in the genesis validator set", key.public());
        }
        let chain = match store {
            Some(store) => Chain::open_store(store, genesis, registry, config.chain.clone())?,
            None => Chain::open(&config.data_dir, genesis, registry, config.chain.clone())?,
        };
        let shared = Shared::new(chain);
        shared.block_interval_ms.store(config.block_interval_ms, Relaxed);
        Ok(Self {
            shared,
            key,
            interval: Duration::from_millis(config.block_interval_ms.max(1)),
            listen: config.rpc_listen.clone(),
            network: config.network.clone(),
            pbft: config.pbft.clone(),
            consensus: config.consensus,
            lbft: config.lbft.clone(),
            rpc_limits: crate::rpc::RpcLimits::default(),
        })
    }

    /// Replaces the HTTP API's resource bounds (defaults: [`crate::rpc::RpcLimits::default`]).
    pub fn with_rpc_limits(mut self, limits: crate::rpc::RpcLimits) -> Self {
        self.rpc_limits = limits;
        self
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts the node as its genesis requires: the single-validator
    /// producer, or a PBFT validator over the configured peer links.
    pub fn start(self) -> anyhow::Result<NodeHandle> {
        if self.shared.chain().genesis().validators.len() == 1 {
            return self.spawn();
        }
        let section = self.network.clone().ok_or_else(|| {
            anyhow::anyhow!("a chain with several validators needs a [network] section in the config")
        })?;
        let genesis = self.shared.chain().genesis().clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let (p2p, transport) = crate::p2p::start(&self.shared, &section, &genesis, &self.key, tx.clone())?;
        tracing::info!(listen = %section.listen, "peer links up");
        let mut handle = match self.consensus {
            crate::config::ConsensusKind::Pbft => {
                let settings = self.pbft.clone();
                self.spawn_validator(Box::new(transport), rx, tx, settings)?
            }
            crate::config::ConsensusKind::Lbft => self.spawn_lbft(Box::new(transport), rx, tx)?,
        };
        handle.p2p = Some(p2p);
        Ok(handle)
    }

    /// Single-validator mode: starts the block producer and the HTTP server.
    pub fn spawn(self) -> anyhow::Result<NodeHandle> {
        if self.shared.chain().genesis().validators.len() > 1 {
            anyhow::bail!("this chain has several validators: run it with a network transport (spawn_validator)");
        }
        let producer = {
            let shared = self.shared.clone();
            let key = self.key.clone();
            let interval = self.interval;
            std::thread::Builder::new().name("producer".into()).spawn(move || produce_loop(&shared, &key, interval))?
        };
        self.serve(producer, None)
    }

    /// Multi-validator mode: runs the PBFT validator over `transport`,
    /// reading peers' bytes from `inbox` (whose sender is `inbox_tx`).
    pub fn spawn_validator(
        self,
        transport: Box<dyn crate::validator::Transport>,
        inbox: std::sync::mpsc::Receiver<crate::validator::Input>,
        inbox_tx: std::sync::mpsc::Sender<crate::validator::Input>,
        settings: crate::validator::PbftSettings,
    ) -> anyhow::Result<NodeHandle> {
        self.shared.set_driver_inbox(Some(inbox_tx.clone()));
        let driver = {
            let shared = self.shared.clone();
            let key = self.key.clone();
            std::thread::Builder::new().name("validator".into()).spawn(move || {
                if let Err(e) = crate::validator::run_validator(shared, key, transport, inbox, settings) {
                    tracing::error!("validator stopped: {e:#}");
                }
            })?
        };
        self.serve(driver, Some(inbox_tx))
    }

    /// Multi-validator mode with the leaderless BFT (`consensus = "lbft"`):
    /// runs the LBFT engine over `transport`.
    pub fn spawn_lbft(
        self,
        transport: Box<dyn crate::validator::Transport>,
        inbox: std::sync::mpsc::Receiver<crate::validator::Input>,
        inbox_tx: std::sync::mpsc::Sender<crate::validator::Input>,
    ) -> anyhow::Result<NodeHandle> {
        self.shared.set_driver_inbox(Some(inbox_tx.clone()));
        // Open it here so a missing key file fails the start, not a thread.
        let engine = crate::lbft::LbftEngine::open(self.shared.clone(), &self.key, self.lbft.clone(), transport)?;
        let driver = std::thread::Builder::new().name("validator".into()).spawn(move || {
            let mut engine = engine;
            crate::engine::run_engine(&mut engine, inbox);
        })?;
        self.serve(driver, Some(inbox_tx))
    }

    fn serve(
        self,
        worker: JoinHandle<()>,
        driver: Option<std::sync::mpsc::Sender<crate::validator::Input>>,
    ) -> anyhow::Result<NodeHandle> {
        let std_listener = match crate::listen::inherited(crate::listen::RPC_FD)? {
            Some(l) => l,
            None => std::net::TcpListener::bind(&self.listen)
                .map_err(|e| anyhow::anyhow!("binding {}: {e}", self.listen))?,
        };
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(2).build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = self.shared.clone();
        let limits = self.rpc_limits.clone();
        let server = std::thread::Builder::new().name("rpc".into()).spawn(move || {
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("listener: {e}");
                        return;
                    }
                };
                let counters = shared.rpc_counters.clone();
                let app = crate::rpc::router_with(shared, limits.clone(), counters.clone());
                crate::rpc::serve(listener, app, limits, counters, async move {
                    let _ = stop_rx.await;
                })
                .await;
            })
        })?;
        tracing::info!(%addr, "node listening");
        Ok(NodeHandle {
            addr,
            shared: self.shared,
            producer: Some(worker),
            server: Some(server),
            stop_tx: Some(stop_tx),
            driver,
            p2p: None,
        })
    }
}

/// The single-validator producer: a block every `interval` (the first one
/// interval after start, so transactions sent right after start wait for
/// a block like any others), at once again while a full block is waiting.
fn produce_loop(shared: &Shared, key: &KeyPair, interval: Duration) {
    let mut backlog = false;
    while !shared.stop.load(Relaxed) {
        if !std::mem::take(&mut backlog) {
            shared.wait(interval);
            if shared.stop.load(Relaxed) {
                break;
            }
        }
        let started = Instant::now();
        let result = shared.chain().produce_block(key, now_ms());
        let pending = shared.chain().mempool().len();
        shared.metrics.mempool.store(pending as u64, Relaxed);
        match result {
            Ok(Some(c)) => {
                tracing::info!(
                    height = c.block.header.height,
                    txs = c.block.txs.len(),
                    gas = c.block.header.gas_used,
                    "committed block"
                );
                shared.set_fault(None);
                shared.record(&c, started.elapsed());
                backlog = pending >= shared.max_block_txs;
            }
            Ok(None) => {
                shared.set_fault(None);
            }
            Err(e) => {
                // The chain reopened its store and kept the mempool; until a
                // block commits again, clients are told and refused.
                tracing::error!("block commit failed, will retry: {e}");
                shared.metrics.store_faults.fetch_add(1, Relaxed);
                shared.set_fault(Some(e.to_string()));
            }
        }
    }
}

/// A running node.
pub struct NodeHandle {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    producer: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
    stop_tx: Option<tokio::sync::oneshot::Sender<()>>,
    driver: Option<std::sync::mpsc::Sender<crate::validator::Input>>,
    p2p: Option<crate::p2p::P2p>,
}

impl NodeHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The validator's peer links, when it runs over real sockets: for link
    /// statistics and injected faults (`Network::set_link_faults`).
    pub fn network(&self) -> Option<&Arc<gridledger_net::Network>> {
        self.p2p.as_ref().map(|p| &p.net)
    }

    /// Stops serving, lets the producer finish its block, and joins both.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.notify();
        if let Some(d) = self.driver.take() {
            let _ = d.send(crate::validator::Input::Stop);
        }
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(p) = self.producer.take() {
            let _ = p.join();
        }
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
        self.p2p = None;
    }

    /// Blocks until the process receives Ctrl-C or SIGTERM, then shuts down.
    pub fn wait_for_signal(self) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            #[cfg(unix)]
            {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            tokio::signal::ctrl_c().await?;
            Ok::<_, std::io::Error>(())
        })?;
        tracing::info!("shutting down");
        self.shutdown();
        Ok(())
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
