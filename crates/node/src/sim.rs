//! The real validator under the simulator (DESIGN principle 2): each
//! simulated validator is this crate's [`Driver`] over its real chain and
//! redb store, the store on a fault-injecting [`SimDisk`] that can crash
//! the process between any two writes (tearing unsynced ones) or fail a
//! write. Messages travel as the driver's real wire bytes; Byzantine
//! validators are the colluding behaviours of
//! `gridledger_consensus::pbft::sim`, lying with real ledger blocks; the
//! checker adds validity: every agreed block must re-execute on a
//! reference chain, and every committed block each correct validator
//! stores must carry a commit certificate that verifies.

use gridledger_consensus::pbft::sim::{check_run, Committed, Decided, RunReport, Scenario, SimPayload, Violation};
use gridledger_consensus::pbft::{Fault, Message, QuorumCert, ValidatorSet};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{Block, BlockHeader, Chain, ChainConfig, Genesis, Seal, VerifiedTx};
use gridledger_sim::{Dest, Effects, NodeId, Protocol, Simulation, Time, TimerOp};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use crate::service::Shared;
use crate::validator::{Driver, PbftBlock, PbftSettings, Transport, MAX_FRAME};

/// Development accounts that send the simulated workload.
const ACCOUNTS: usize = 16;
/// Transactions per account (nonces `0..`).
const PER_ACCOUNT: u64 = 32;
/// Transactions per block, small so the workload lasts many heights.
const BLOCK_TXS: usize = 4;
const CHAIN_ID: u32 = 7;

impl SimPayload for PbftBlock {
    /// Same transactions, a later timestamp: a different block that still executes.
    fn twisted(&self, rng: &mut ChaCha8Rng) -> Self {
        let mut b = self.0.clone();
        b.header.timestamp += rng.random_range(1..1_000);
        PbftBlock(b)
    }

    /// Well-formed (transaction root intact) but with a state root no
    /// execution produces.
    fn poisoned(&self) -> Self {
        let mut b = self.0.clone();
        b.header.state_root = Hash32([0xbd; 32]);
        PbftBlock(b)
    }

    fn forged(height: u64, _proposer: u32, rng: &mut ChaCha8Rng) -> Self {
        let header = BlockHeader {
            chain_id: CHAIN_ID,
            height,
            parent: Hash32([rng.random(); 32]),
            timestamp: rng.random_range(1..1 << 30),
            proposer: dev_validator(0).public(),
            tx_root: gridledger_core::merkle_root(&[]),
            receipt_root: gridledger_core::merkle_root(&[]),
            state_root: Hash32([rng.random(); 32]),
            gas_used: 0,
            tx_count: 0,
        };
        PbftBlock(Block { header, txs: vec![], seal: Seal::Genesis })
    }
}

/// The workload every validator's mempool starts with, verified once.
fn workload() -> &'static [VerifiedTx] {
    static TXS: OnceLock<Vec<VerifiedTx>> = OnceLock::new();
    TXS.get_or_init(|| {
        let rules = sim_chain(1, SimDisk::new()).map(|c| c.rules());
        let Ok(rules) = rules else { return Vec::new() };
        (0..ACCOUNTS)
            .flat_map(|a| (0..PER_ACCOUNT).map(move |n| (a, n)))
            .filter_map(|(a, n)| {
                let to = dev_key((a + 1) % ACCOUNTS).address();
                rules.check_decoded(transfer(&dev_key(a), CHAIN_ID, n, to, Amount(1), Amount(1))).ok()
            })
            .collect()
    })
}

fn genesis(n: usize) -> Genesis {
    let validators: Vec<_> = (0..n).map(dev_validator).collect();
    dev_genesis(CHAIN_ID, ACCOUNTS, Amount(1_000_000_000), &validators)
}

fn chain_config() -> ChainConfig {
    ChainConfig { max_block_txs: BLOCK_TXS, ..ChainConfig::default() }
}

/// A chain of `n` validators on `disk`.
fn sim_chain(n: usize, disk: Arc<SimDisk>) -> anyhow::Result<Chain> {
    let store = Store::open_backend(move || disk.backend())?;
    Ok(Chain::open_store(store, genesis(n), gridledger_contracts::default_registry(), chain_config())?)
}

/// Messages a simulated validator sent during one call.
type Outbox = Arc<Mutex<Vec<(Dest, Message<PbftBlock>)>>>;

/// Captures what the driver sends, as structured messages; nothing leaves
/// after the simulated process died.
struct SimTransport {
    n: u32,
    out: Outbox,
    disk: Arc<SimDisk>,
    /// The latest `(height, view)` this node signed a vote for, kept across restarts.
    voted: Arc<Mutex<Option<(u64, u64)>>>,
    /// For a correct node: every pre-prepare, prepare and commit it signed,
    /// by `(kind, height, view)`, kept across restarts, and where a second,
    /// different one for the same slot is reported (a double signature).
    said: Option<(Said, LostVotes, u64, NodeId)>,
}

/// What one node signed, by `(kind, height, view)`: the block digest.
type Said = Arc<Mutex<std::collections::BTreeMap<(u8, u64, u64), Hash32>>>;

/// The slot and block a pre-prepare, prepare or commit signs.
fn signed_block(m: &Message<PbftBlock>) -> Option<((u8, u64, u64), Hash32)> {
    use gridledger_consensus::pbft::Payload;
    match m {
        Message::PrePrepare(p) => Some(((0, p.height, p.view), p.payload.digest())),
        Message::Prepare(v) => Some(((1, v.height, v.view), v.block)),
        Message::Commit(v) => Some(((2, v.height, v.view), v.block)),
        _ => None,
    }
}

/// The `(height, view)` a message commits its signer to.
fn vote_slot(m: &Message<PbftBlock>) -> Option<(u64, u64)> {
    match m {
        Message::PrePrepare(p) => Some((p.height, p.view)),
        Message::Prepare(v) | Message::Commit(v) => Some((v.height, v.view)),
        Message::ViewChange(v) => Some((v.height, v.new_view)),
        Message::NewView(v) => Some((v.height, v.view)),
        Message::CatchUpRequest { .. } | Message::CatchUpResponse { .. } => None,
    }
}

impl SimTransport {
    fn push(&self, dest: Dest, bytes: Vec<u8>) {
        if self.disk.crashed() {
            return;
        }
        // Only consensus traffic: the workload is preloaded, not gossiped.
        let Some((&0, body)) = bytes.split_first() else { return };
        if let Ok(m) = Message::<PbftBlock>::from_bytes(body, MAX_FRAME, self.n as usize, 1_024) {
            if let Some(slot) = vote_slot(&m) {
                let mut v = self.voted.lock().unwrap_or_else(|p| p.into_inner());
                *v = Some(v.map_or(slot, |old| old.max(slot)));
            }
            if let (Some((said, lost, seed, node)), Some((slot, block))) = (&self.said, signed_block(&m)) {
                let mut said = said.lock().unwrap_or_else(|p| p.into_inner());
                let first = *said.entry(slot).or_insert(block);
                if first != block {
                    let kind = ["pre-prepare", "prepare", "commit"][slot.0 as usize];
                    let detail = format!("signed two different {kind}s at height {} view {}", slot.1, slot.2);
                    lost.lock().unwrap_or_else(|p| p.into_inner()).push(Violation::LostVote {
                        seed: *seed,
                        node: *node,
                        detail,
                    });
                }
            }
            self.out.lock().unwrap_or_else(|p| p.into_inner()).push((dest, m));
        }
    }
}

impl Transport for SimTransport {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        self.push(Dest::One(to), bytes);
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        self.push(Dest::All, bytes);
    }
}

/// Disk faults planned for one validator: `(at, sync, tear)` crashes and
/// `(at, sync)` write failures, armed when simulated time reaches `at`.
#[derive(Clone, Debug, Default)]
struct DiskPlan {
    crashes: Vec<(Time, u64, usize)>,
    failures: Vec<(Time, u64)>,
}

/// One simulated validator: the real [`Driver`] on a [`SimDisk`].
pub struct DriverNode {
    driver: Driver,
    disk: Arc<SimDisk>,
    out: Outbox,
    ticks: Arc<AtomicU64>,
    /// Highest height reported to the checker, kept across restarts: a
    /// restarted node reports what its disk holds beyond it (blocks made
    /// durable just before a crash), and a reported block that vanished
    /// shows up as a gap.
    reported: Arc<AtomicU64>,
    /// Hashes of the reported blocks by height (from 1), kept across
    /// restarts: a block lost with a deferred write must come back the
    /// same when the restarted node commits that height again.
    hashes: Arc<Mutex<Vec<Hash32>>>,
    /// Heights up to which this incarnation's store was compared with `hashes`.
    rechecked: u64,
    /// Where a mismatch is reported (the checker's audit), with the seed.
    lost: LostVotes,
    seed: u64,
    id: NodeId,
    armed: Option<u64>,
    plan: DiskPlan,
}

impl DriverNode {
    #[allow(clippy::too_many_arguments)]
    fn open(
        id: NodeId,
        n: usize,
        disk: Arc<SimDisk>,
        ticks: Arc<AtomicU64>,
        clock: Arc<AtomicU64>,
        settings: &PbftSettings,
        plan: DiskPlan,
        reported: Arc<AtomicU64>,
        voted: Arc<Mutex<Option<(u64, u64)>>>,
        observer: (Arc<Mutex<Vec<Hash32>>>, LostVotes, u64, Option<Said>),
    ) -> anyhow::Result<Self> {
        let chain = sim_chain(n, disk.clone())?;
        let shared = Shared::new(chain);
        {
            let mut chain = shared.chain();
            for v in workload() {
                let _ = chain.admit(v.clone());
            }
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let (hashes, lost, seed, said) = observer;
        let said = said.map(|m| (m, lost.clone(), seed, id));
        let transport = SimTransport { n: n as u32, out: out.clone(), disk: disk.clone(), voted, said };
        let settings = PbftSettings { ticks: Some(ticks.clone()), clock: Some(clock), ..settings.clone() };
        let mut driver = Driver::open(shared, dev_validator(id as usize), Box::new(transport), settings)?;
        driver.record_faults();
        let rechecked = driver.shared().chain().tip().height;
        Ok(Self { driver, disk, out, ticks, reported, hashes, rechecked, lost, seed, id, armed: None, plan })
    }

    /// The validator's driver (e.g. to read its chain in a test).
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    pub fn disk(&self) -> &Arc<SimDisk> {
        &self.disk
    }

    fn arm_disk_faults(&mut self) {
        let now = self.ticks.load(Relaxed);
        let due = |at: Time| at <= now;
        for (_, sync, tear) in self.plan.crashes.iter().filter(|c| due(c.0)) {
            self.disk.crash_at_sync(*sync, *tear);
        }
        self.plan.crashes.retain(|c| !due(c.0));
        for (_, sync) in self.plan.failures.iter().filter(|c| due(c.0)) {
            self.disk.fail_sync_at(*sync);
        }
        self.plan.failures.retain(|c| !due(c.0));
    }

    fn effects(&mut self) -> Effects<Self> {
        let mut e = Effects::default();
        if !self.disk.crashed() {
            self.driver.poll();
        }
        e.sends = std::mem::take(&mut *self.out.lock().unwrap_or_else(|p| p.into_inner()));
        e.faults = self.driver.take_faults();
        if self.disk.crashed() {
            return e;
        }
        // Outputs are what the store holds: commits a client could see.
        let store = self.driver.shared().store.clone();
        let reported = self.reported.load(Relaxed);
        let tip = store.tip().ok().flatten().unwrap_or(reported);
        // Heights reported before a crash and committed again since: the
        // same blocks, or this node changed a block it had served.
        while self.rechecked < tip.min(reported) {
            let h = self.rechecked + 1;
            let Ok(Some(block)) = store.block(h) else { break };
            let before = self.hashes.lock().unwrap_or_else(|p| p.into_inner()).get(h as usize - 1).copied();
            if before.is_some_and(|b| b != block.hash()) {
                let v = Violation::Fork { seed: self.seed, height: h, nodes: (self.id, self.id) };
                self.lost.lock().unwrap_or_else(|p| p.into_inner()).push(v);
            }
            self.rechecked = h;
        }
        for h in reported + 1..=tip {
            let Ok(Some(block)) = store.block(h) else { break };
            {
                let mut hashes = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
                hashes.truncate(h as usize - 1);
                hashes.push(block.hash());
            }
            self.rechecked = self.rechecked.max(h);
            let view = match &block.seal {
                Seal::Quorum { view, .. } => *view,
                _ => 0,
            };
            let committed = Committed { height: h, block: block.hash(), view };
            e.outputs.push(Decided { committed, payload: PbftBlock(block) });
            self.reported.store(h, Relaxed);
        }
        // Decided but refused by this validator's chain: the checker's
        // validity check judges it.
        for entry in self.driver.take_unappliable() {
            if entry.cert.height == self.reported.load(Relaxed) + 1 {
                let c = &entry.cert;
                let committed = Committed { height: c.height, block: c.block, view: c.view };
                let mut payload = entry.payload;
                payload.0.seal = Seal::Quorum { view: c.view, signatures: c.signatures.clone() };
                e.outputs.push(Decided { committed, payload });
                self.reported.store(c.height, Relaxed);
                let mut hashes = self.hashes.lock().unwrap_or_else(|p| p.into_inner());
                hashes.truncate(c.height as usize - 1);
                hashes.push(c.block);
            }
        }
        let next = self.driver.next_deadline();
        if next != self.armed {
            if let Some(old) = self.armed.take() {
                e.timers.push(TimerOp::Cancel(old));
            }
            if let Some(at) = next {
                let after = at.saturating_sub(self.ticks.load(Relaxed)).max(1);
                e.timers.push(TimerOp::Set { timer: at, after });
                self.armed = Some(at);
            }
        }
        e
    }
}

impl Protocol for DriverNode {
    type Message = Message<PbftBlock>;
    /// The driver's next deadline (ticks).
    type Timer = u64;
    type Output = Decided<PbftBlock>;
    type Fault = Fault;
    type Persisted = Arc<SimDisk>;

    fn start(&mut self) -> Effects<Self> {
        self.arm_disk_faults();
        self.driver.start();
        self.effects()
    }

    fn handle_message(&mut self, from: NodeId, message: Self::Message) -> Effects<Self> {
        self.arm_disk_faults();
        let mut bytes = vec![0u8];
        bytes.extend(message.to_bytes());
        self.driver.on_bytes(from, &bytes);
        self.effects()
    }

    fn handle_timer(&mut self, timer: u64) -> Effects<Self> {
        if self.armed == Some(timer) {
            self.armed = None;
        }
        self.arm_disk_faults();
        self.driver.fire_timers();
        self.effects()
    }

    /// The disk as a crash leaves it: unsynced writes are lost.
    fn persisted(&self) -> Arc<SimDisk> {
        self.disk.kill();
        self.disk.clone()
    }

    fn crashed(&self) -> bool {
        self.disk.crashed()
    }
}

/// Options of a driver-level run.
#[derive(Clone, Debug, Default)]
pub struct DriverSimOptions {
    /// Ticks after a crash between two writes until the node restarts
    /// (`None`: the simulator's default).
    pub restart_after: Option<Time>,
    /// Pipelined heights ([`PbftSettings::pipeline`]); `None`: the default (on).
    pub pipeline: Option<bool>,
    /// A planted bug (mutation-sensitivity check).
    #[cfg(feature = "mutants")]
    pub mutation: Option<crate::validator::Mutation>,
}

/// Builds the simulation of `scenario` over real validator drivers, with
/// the shared logical clock the caller must advance ([`run_driver`] does).
#[allow(clippy::type_complexity)]
pub fn build(
    scenario: &Scenario,
    opts: &DriverSimOptions,
) -> (Simulation<DriverNode>, Arc<AtomicU64>, Arc<AtomicU64>, LostVotes) {
    let n = scenario.net.nodes;
    let ticks = Arc::new(AtomicU64::new(0));
    let clock = Arc::new(AtomicU64::new(genesis(n).timestamp + 1));
    let settings = PbftSettings {
        base_timeout_ms: scenario.base_timeout,
        retain_blocks: 8,
        suspect_divisor: scenario.suspect_divisor,
        #[cfg(feature = "mutants")]
        mutation: opts.mutation,
        pipeline: opts.pipeline.unwrap_or(PbftSettings::default().pipeline),
        ..PbftSettings::default()
    };
    let plans: Vec<DiskPlan> = (0..n as NodeId)
        .map(|id| DiskPlan {
            crashes: scenario.disk_crashes.iter().filter(|c| c.node == id).map(|c| (c.at, c.sync, c.tear)).collect(),
            failures: scenario.write_failures.iter().filter(|w| w.node == id).map(|w| (w.at, w.sync)).collect(),
        })
        .collect();
    let (t2, c2) = (ticks.clone(), clock.clone());
    let (seed, correct): (u64, Vec<bool>) = (scenario.seed, (0..n as NodeId).map(|i| scenario.is_correct(i)).collect());
    let reported: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let voted: Vec<Arc<Mutex<Option<(u64, u64)>>>> = (0..n).map(|_| Arc::default()).collect();
    let hashes: Vec<Arc<Mutex<Vec<Hash32>>>> = (0..n).map(|_| Arc::default()).collect();
    let said: Vec<Said> = (0..n).map(|_| Arc::default()).collect();
    let lost: LostVotes = Arc::new(Mutex::new(Vec::new()));
    let lost2 = lost.clone();
    let mut sim = Simulation::new(scenario.seed, scenario.net.clone(), move |id, disk: Option<Arc<SimDisk>>| {
        let mut plan = plans[id as usize].clone();
        let disk = match disk {
            Some(d) => {
                d.restart();
                // A restarted node keeps the faults planned for later only.
                let now = t2.load(Relaxed);
                plan.crashes.retain(|c| c.0 > now);
                plan.failures.retain(|f| f.0 > now);
                d
            }
            None => SimDisk::new(),
        };
        let reported = reported[id as usize].clone();
        let voted = voted[id as usize].clone();
        let last_vote = *voted.lock().unwrap_or_else(|p| p.into_inner());
        let is_correct = correct.get(id as usize).copied().unwrap_or(false);
        let said = is_correct.then(|| said[id as usize].clone());
        let observer = (hashes[id as usize].clone(), lost2.clone(), seed, said);
        let open = |disk: Arc<SimDisk>,
                    plan: DiskPlan,
                    reported: Arc<AtomicU64>,
                    voted: Arc<Mutex<Option<(u64, u64)>>>| {
            DriverNode::open(id, n, disk, t2.clone(), c2.clone(), &settings, plan, reported, voted, observer.clone())
        };
        let node = match open(disk, plan.clone(), reported.clone(), voted.clone()) {
            Ok(node) => node,
            // A validator must always restart from its own store: reported
            // to the checker, and the run goes on with the node on a blank
            // disk (catching up) so the violation surfaces.
            Err(e) if is_correct => {
                let detail = format!("failed to open its store: {e:#}");
                lost2.lock().unwrap_or_else(|p| p.into_inner()).push(Violation::CannotRestart {
                    seed,
                    node: id,
                    detail,
                });
                match open(SimDisk::new(), plan, reported, voted) {
                    Ok(node) => node,
                    Err(e) => panic!("simulated validator {id} failed to open a blank store: {e:#}"),
                }
            }
            Err(e) => panic!("simulated validator {id} failed to open its store: {e:#}"),
        };
        if let Some(detail) = last_vote.and_then(|v| forgot_vote(&node, v)).filter(|_| is_correct) {
            lost2.lock().unwrap_or_else(|p| p.into_inner()).push(Violation::LostVote { seed, node: id, detail });
        }
        node
    });
    let keys: Vec<_> = (0..n).map(dev_validator).collect();
    let g = genesis(n);
    let set = match ValidatorSet::new(g.hash(), g.validators.clone()) {
        Ok(s) => s,
        Err(e) => panic!("simulator misconfigured: {e}"),
    };
    scenario.add_adversaries::<PbftBlock, DriverNode>(&mut sim, &set, &keys);
    if let Some(after) = opts.restart_after {
        sim.set_restart_after(Some(after));
    }
    (sim, ticks, clock, lost)
}

/// What correct nodes' restarts revealed (a lost vote, a store the node
/// cannot restart from), for the checker's audit.
pub type LostVotes = Arc<Mutex<Vec<Violation>>>;

/// Checks a stored block's commit certificate against the validator set:
/// it must be a quorum seal whose signatures prove this block at its height.
pub fn verify_stored_certificate(set: &ValidatorSet, block: &Block) -> Result<(), String> {
    let h = block.header.height;
    let Seal::Quorum { view, signatures } = &block.seal else {
        return Err(format!("block {h} is stored without a quorum certificate"));
    };
    let cert = QuorumCert { view: *view, height: h, block: block.hash(), signatures: signatures.clone() };
    cert.verify(set).map_err(|e| format!("block {h}'s stored certificate does not verify: {e}"))
}

/// Every committed block a running correct validator holds must carry a
/// certificate that verifies; `checked[i]` is the height up to which node
/// `i`'s store was verified (reset when a torn crash shrank it).
fn audit_stored_certificates(
    sim: &Simulation<DriverNode>,
    scenario: &Scenario,
    set: &ValidatorSet,
    checked: &mut [u64],
) -> Option<Violation> {
    for (i, done) in checked.iter_mut().enumerate() {
        let id = i as NodeId;
        if !scenario.is_correct(id) {
            continue;
        }
        let Some(node) = sim.node(id).filter(|n| !n.disk.crashed()) else { continue };
        let store = &node.driver.shared().store;
        let Ok(Some(tip)) = store.tip() else { continue };
        *done = (*done).min(tip);
        for h in *done + 1..=tip {
            let Ok(Some(block)) = store.block(h) else { break };
            if let Err(detail) = verify_stored_certificate(set, &block) {
                return Some(Violation::BadCertificate { seed: scenario.seed, node: id, height: h, detail });
            }
            *done = h;
        }
    }
    None
}

/// Whether a restarted node lost the record of its last vote at
/// `(height, view)`: its store must hold that height decided, or a vote
/// state at that height for that view or a later one.
fn forgot_vote(node: &DriverNode, (height, view): (u64, u64)) -> Option<String> {
    let shared = node.driver.shared();
    let tip = shared.chain().tip().height;
    if tip >= height {
        return None;
    }
    let durable: Option<gridledger_consensus::pbft::Durable<PbftBlock>> = shared
        .store
        .get_aux(crate::validator::DURABLE_KEY)
        .ok()
        .flatten()
        .and_then(|b| crate::validator::decode_durable(&b).ok());
    match durable {
        Some(d) if d.height == height && d.view >= view => None,
        // A slot the record declared: a restored replica never votes there.
        Some(d) if d.next.contains(&(height, view)) => None,
        d => Some(format!(
            "voted at height {height} view {view}, restarted at tip {tip} with vote state {:?}",
            d.map(|d| (d.height, d.view))
        )),
    }
}

/// Runs `scenario` over real validator drivers and checks safety, validity
/// against a reference chain, liveness and fault attribution.
pub fn run_driver(scenario: &Scenario, opts: &DriverSimOptions) -> Result<RunReport, Violation> {
    run_driver_with(scenario, opts).0
}

/// [`run_driver`], handing back the simulation to inspect its nodes.
pub fn run_driver_with(
    scenario: &Scenario,
    opts: &DriverSimOptions,
) -> (Result<RunReport, Violation>, Simulation<DriverNode>) {
    let (mut sim, ticks, clock, lost) = build(scenario, opts);
    let n = scenario.net.nodes;
    let base = clock.load(Relaxed);
    let mut reference = match sim_chain(n, SimDisk::new()) {
        Ok(c) => c,
        Err(e) => panic!("reference chain: {e:#}"),
    };
    // The drivers' clocks follow the simulator's: set before each event.
    sim.set_before_step(Box::new(move |now| {
        ticks.store(now, Relaxed);
        clock.store(base + now, Relaxed);
    }));
    let set = {
        let g = genesis(n);
        match ValidatorSet::new(g.hash(), g.validators.clone()) {
            Ok(s) => s,
            Err(e) => panic!("simulator misconfigured: {e}"),
        }
    };
    let mut checked = vec![0u64; n];
    let audit = |sim: &Simulation<DriverNode>| {
        let lost = lost.lock().unwrap_or_else(|p| p.into_inner()).pop();
        lost.or_else(|| audit_stored_certificates(sim, scenario, &set, &mut checked))
    };
    let result = check_run(scenario, &mut sim, audit, |_, d: &Decided<PbftBlock>| {
        let ex = reference.validate_block(&d.payload.0).map_err(|e| e.to_string())?;
        // Valid means certified too: a block agreed without a quorum
        // certificate that proves it is not final.
        verify_stored_certificate(&set, &d.payload.0)?;
        reference.commit(ex).map_err(|e| e.to_string())
    });
    (result, sim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_consensus::pbft::{Vote, VoteKind};

    fn transport(said: Said, lost: LostVotes) -> SimTransport {
        let out: Outbox = Arc::default();
        SimTransport { n: 4, out, disk: SimDisk::new(), voted: Arc::default(), said: Some((said, lost, 7, 2)) }
    }

    fn prepare(view: u64, height: u64, block: u8) -> Vec<u8> {
        let v = Vote::sign(&dev_validator(2), VoteKind::Prepare, &Hash32([1; 32]), view, height, Hash32([block; 32]));
        let mut bytes = vec![0];
        bytes.extend(Message::<PbftBlock>::Prepare(v).to_bytes());
        bytes
    }

    #[test]
    fn a_correct_node_signing_two_blocks_for_one_slot_is_reported_across_restarts() {
        let (said, lost): (Said, LostVotes) = (Arc::default(), Arc::default());
        let t = transport(said.clone(), lost.clone());
        t.push(Dest::All, prepare(1, 5, 0xaa));
        // The same vote again, and a vote in another slot: nothing to report.
        t.push(Dest::All, prepare(1, 5, 0xaa));
        t.push(Dest::All, prepare(2, 5, 0xbb));
        assert!(lost.lock().unwrap().is_empty());
        // A restarted incarnation (a new transport, the same record) signs
        // another block in view 1 at height 5.
        let restarted = transport(said, lost.clone());
        restarted.push(Dest::All, prepare(1, 5, 0xbb));
        let found = lost.lock().unwrap().clone();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            matches!(&found[0], Violation::LostVote { seed: 7, node: 2, detail } if detail.contains("two different prepares at height 5 view 1")),
            "{found:?}"
        );
    }
}
