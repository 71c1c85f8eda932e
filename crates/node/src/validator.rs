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
//!
//! # Pipelined heights (issue 9 item 10)
//!
//! With [`PbftSettings::pipeline`] (on by default) the leader of height
//! `h + 1` proposes while `h` is still in its commit round, instead of
//! after `h` has committed:
//!
//! - **When.** The replica asks for the early proposal
//!   ([`Step::need_proposal`] one height ahead) only once it holds the
//!   prepared certificate of `(h, v)` and has sent its commit vote, and
//!   only if it leads `(h + 1, v)`. That certificate's record is synced
//!   before anything else happens and declares `(h + 1, v)` as the
//!   replica's next slot ([`Durable::next`]), so a leader that crashes
//!   after sending an early pre-prepare restarts blocked from that slot:
//!   it can never propose a second, different block there. The slot stays
//!   in every later record until the height or view passes it, also when
//!   a later view's prepared certificate (or a restored record) declares
//!   another slot of the same height (`Durable::next` holds them all).
//! - **On what state.** The block is built on `h`'s executed prepared
//!   block: `h`'s state changes layered over the committed state
//!   ([`gridledger_ledger::Chain::build_block_on`]), with `h`'s
//!   transactions skipped. A transaction that spends again what `h`
//!   spent (same sender and nonce, e.g. a double spend sent to another
//!   validator) does not execute there and is left out; a sender's next
//!   transaction after one in `h` is in. Nothing is committed or evicted
//!   by the build.
//! - **Which parent.** In view `v` only the block prepared in `v` can
//!   commit at `h` (a prepared certificate and a commit quorum of the
//!   same view intersect in a correct validator), so when `h` commits in
//!   `v` the early block's parent is the committed one. The replica keeps
//!   the early pre-prepare with its parent's digest and uses it as its
//!   own proposal for `(h + 1, v)` only if that very block committed; if
//!   `h` commits in another view the slot is another one and the leader
//!   proposes afresh. The early pre-prepare is kept until the height or
//!   view passes its slot: should `h + 1` later reach view `v` (after `h`
//!   committed in an earlier view), it is the leader's new-view proposal
//!   there if its parent is the committed block, and otherwise the leader
//!   proposes nothing in that slot (never a second, different block).
//! - **Replicas vote on `h + 1` only after committing `h`.** A pre-prepare
//!   one height ahead is queued by the replica (no catch-up asked for it)
//!   and validated once `h` is committed locally, by re-execution on the
//!   committed state as any proposal: no vote ever depends on speculative
//!   state, and PBFT's one-height-at-a-time voting, view changes and
//!   vote-state records are unchanged.
//! - **Crash atomicity is unchanged.** Persistence is still one store
//!   transaction per step (block, commit certificate, vote state), one
//!   fsync per height. The early block lives only in memory until it is
//!   decided; a crash between `h`'s commit and `h + 1`'s persistence loses
//!   nothing committed: `h` is on disk (or re-fetched by catch-up if its
//!   deferred write was lost), and `h + 1` is decided again by the others
//!   or re-proposed in a later view.
//!
//! What this overlaps is the leader's build of `h + 1` and the transfer
//! and decoding of its pre-prepare with `h`'s commit round; the replicas'
//! validation of `h + 1` still waits for `h`'s commit (validating against
//! `h`'s post-state before it commits was weighed and left out: it would
//! need a second executed-state layer per replica for a few ms per
//! height, and votes must not depend on it anyway). The simulator runs
//! pipelined by default (`DriverSimOptions::pipeline`; the attack tests of
//! `tests/attack_pipeline.rs` compare with it off), and the
//! `PipelineStaleState` mutant (the early block built on the state before
//! `h`) must be caught.
//!
//! Before pipelining was built, where the 1,000-transaction time went on
//! 10 validator processes was measured (`gridledger bench pbft --processes
//! --timeline`): most of the batch was submission and gossip before
//! consensus, and a full height took 75–200 ms from proposal to commit
//! (pre-prepare 1–60 ms, validation 8–15 ms, prepare round with its sync
//! ≈ 50 ms, commit round ≈ 30 ms), so overlapping the commit round saves
//! at most about one height per batch. Cheaper steps came first: one
//! signature check per transaction per validator (a validated proposal's
//! transactions enter the mempool, [`validate_proposal`], and gossip skips
//! them) and gossip frames verified together in parallel
//! ([`crate::gossip`]).
//!
//! # Deadlines under load
//!
//! A view's deadline is armed when the previous height commits. Two
//! driver rules keep it from firing on a live leader
//! ([`PbftSettings::deadline_floor_factor`],
//! [`PbftSettings::hold_idle_deadlines`]): no deadline is shorter than
//! twice the slowest of the last 8 heights (proposal to commit, measured
//! here), and a deadline that comes due on an idle chain is held until
//! there is something to decide.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{
    CommittedEntry, Config, Durable, Message, Payload, QuorumCert, Replica, Step, Target, Timer, TimerCmd, ValidatorSet,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{merkle_root, Hash32};
use gridledger_ledger::{Block, ExecutedBlock, Seal, SubmitError, VerifiedTx};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

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
/// Store record (aux table) of the replica's vote state.
pub const DURABLE_KEY: &str = "pbft/durable";

/// The vote state as stores written before [`Durable::next`] existed hold it.
#[derive(BorshDeserialize)]
struct DurableV1 {
    height: u64,
    view: u64,
    view_changing: bool,
    prepared: Option<gridledger_consensus::pbft::PreparedCert<PbftBlock>>,
}

/// The vote state as stores written while [`Durable::next`] held one slot hold it.
#[derive(BorshDeserialize)]
struct DurableV2 {
    height: u64,
    view: u64,
    view_changing: bool,
    prepared: Option<gridledger_consensus::pbft::PreparedCert<PbftBlock>>,
    next: Option<(u64, u64)>,
}

/// Decodes a stored vote state, in the current or an earlier layout (the
/// layouts differ in their tail, so at most one of them decodes a record).
pub fn decode_durable(bytes: &[u8]) -> Result<Durable<PbftBlock>, gridledger_core::codec::CodecError> {
    decode::<Durable<PbftBlock>>(bytes, MAX_FRAME).or_else(|e| {
        if let Ok(old) = decode::<DurableV2>(bytes, MAX_FRAME) {
            return Ok(Durable {
                height: old.height,
                view: old.view,
                view_changing: old.view_changing,
                prepared: old.prepared,
                next: old.next.into_iter().collect(),
            });
        }
        let old: DurableV1 = decode(bytes, MAX_FRAME).map_err(|_| e)?;
        Ok(Durable {
            height: old.height,
            view: old.view,
            view_changing: old.view_changing,
            prepared: old.prepared,
            next: Vec::new(),
        })
    })
}

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
    /// A leader whose view was abandoned gets `base_timeout_ms / suspect_divisor`
    /// the next time it leads, until it leads a committed block again, so a
    /// dead validator's turns are skipped faster (issue 9 item 9); 1 turns
    /// the shortcut off. Only liveness depends on it.
    pub suspect_divisor: u64,
    /// How long (ms) a deferred store write may wait for the next synced
    /// one before it is synced on its own. On the happy path a committed
    /// block is written without a sync and becomes durable with the next
    /// height's prepared certificate (one fsync per height); when no next
    /// height follows (no transactions), this bounds how long it stays
    /// deferred. Only how far back a crashed validator restarts (and then
    /// catches up) depends on it, never safety.
    pub flush_after_ms: u64,
    /// Adaptive deadlines (issue 9 items 9–10): every deadline is at least
    /// this many times the slowest of the last [`RECENT_HEIGHTS`] heights,
    /// measured here from the proposal's arrival (or this validator's own
    /// proposal) to its commit, and at most `4 × base_timeout_ms`; 0 turns
    /// it off. Under CPU load a height can take longer than the base
    /// deadline on an honest leader; a deadline shorter than what heights
    /// take only produces view changes (and marks live leaders suspect,
    /// shortening their next turn further). The leader's own delay before
    /// proposing is not measured, so a Byzantine leader cannot stretch the
    /// deadlines by proposing late. Only liveness depends on it.
    pub deadline_floor_factor: u64,
    /// Hold a deadline that comes due with nothing to decide (idle chain)
    /// until there is, instead of changing views (see
    /// [`Driver::fire_timers`]). Only liveness depends on it.
    pub hold_idle_deadlines: bool,
    /// Pipelined heights (issue 9 item 10): the leader of height `h + 1`
    /// proposes once it holds `h`'s prepared certificate, building on
    /// `h`'s executed state while `h`'s commit round runs; see the module
    /// docs. On by default; off, heights are proposed one after another,
    /// each on the committed chain.
    pub pipeline: bool,
    /// A logical block clock (ms) shared by in-process validators, for
    /// simulations and demos that replay a day; `None` is the system clock.
    #[serde(skip)]
    pub clock: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// A logical clock (ms) for the driver's timers, for the simulator;
    /// `None` is the monotonic clock.
    #[serde(skip)]
    pub ticks: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// A planted bug for the simulator's mutation-sensitivity check.
    #[cfg(feature = "mutants")]
    #[serde(skip)]
    pub mutation: Option<Mutation>,
}

/// Bugs the simulator must catch, planted in the replica or the driver
/// (test-only, behind the `mutants` feature).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutation {
    /// Replica: a new-view need not re-propose the highest prepared block.
    NewViewSkipsHighestPrepared,
    /// Replica: quorums one vote short.
    WrongQuorum,
    /// Driver: vote state and block in two writes (a crash window).
    TwoWriteCommit,
    /// Driver: every proposal is accepted without executing it.
    SkipValidation,
    /// Driver: the vote state is never written.
    LoseDurable,
    /// Driver: committed blocks are stored with a one-signature "quorum"
    /// certificate (what catch-up and light clients are handed).
    WeakCertificate,
    /// Driver: every write is deferred, covered or not (votes leave before
    /// they are durable; the one-fsync-per-height schedule without its rule).
    DeferEveryWrite,
    /// Driver, pipelined heights: the early proposal of `h + 1` is built
    /// on the state *before* `h` (the committed chain) instead of after
    /// it, so it may spend again what `h` spent.
    PipelineStaleState,
}

#[cfg(feature = "mutants")]
impl Mutation {
    pub const ALL: [Mutation; 8] = [
        Mutation::NewViewSkipsHighestPrepared,
        Mutation::WrongQuorum,
        Mutation::TwoWriteCommit,
        Mutation::SkipValidation,
        Mutation::LoseDurable,
        Mutation::WeakCertificate,
        Mutation::DeferEveryWrite,
        Mutation::PipelineStaleState,
    ];

    fn replica(self) -> Option<gridledger_consensus::pbft::Mutation> {
        use gridledger_consensus::pbft::Mutation as M;
        match self {
            Mutation::NewViewSkipsHighestPrepared => Some(M::NewViewSkipsHighestPrepared),
            Mutation::WrongQuorum => Some(M::WrongQuorum),
            _ => None,
        }
    }
}

impl Default for PbftSettings {
    fn default() -> Self {
        Self {
            base_timeout_ms: 1_000,
            max_clock_drift_ms: 10_000,
            retain_blocks: 256,
            suspect_divisor: 4,
            flush_after_ms: 500,
            deadline_floor_factor: 2,
            hold_idle_deadlines: true,
            pipeline: true,
            clock: None,
            ticks: None,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }
}

/// Heights whose proposal-to-commit time sets the deadline floor
/// ([`PbftSettings::deadline_floor_factor`]).
pub const RECENT_HEIGHTS: usize = 8;

/// How long a halted validator waits between attempts to reopen its store.
const RECOVERY_RETRY_MS: u64 = 200;

pub(crate) fn add_us(counter: &std::sync::atomic::AtomicU64, since: Instant) {
    counter.fetch_add(since.elapsed().as_micros() as u64, Relaxed);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Why a validator stopped voting, and when it next tries to recover.
#[derive(Clone, Debug)]
struct Halt {
    reason: String,
    retry_at: u64,
}

/// The replica's IO: persistence, transport, timers, execution. Blocking
/// operation is [`run_validator`]; the simulator calls the same methods
/// from its event loop with a logical clock.
///
/// Persist one step atomically, then speak: the blocks a step commits,
/// their certificates and the replica's vote state are written in one
/// store transaction before any of the step's messages leave, synced
/// unless a synced record already covers every vote the step sends (one
/// fsync per height; the schedule is at [`Driver::persist`]). A failed
/// write or a certified block this validator cannot apply halts it: it
/// stops voting (drops consensus inputs), reports the fault through
/// `/health` and the metrics, and retries by reopening the store and
/// rebuilding the replica from what is on disk, exactly as after a restart.
pub struct Driver {
    shared: Arc<Shared>,
    replica: Replica<PbftBlock>,
    set: ValidatorSet,
    key: KeyPair,
    transport: Box<dyn Transport>,
    /// Deadlines in driver ticks (ms).
    timers: BTreeMap<Timer, u64>,
    pending_proposal: Option<(u64, u64)>,
    /// Blocks this validator executed (proposed or validated), by hash.
    executed: HashMap<Hash32, ExecutedBlock>,
    settings: PbftSettings,
    started: Instant,
    halted: Option<Halt>,
    /// Consensus faults kept for the caller (the simulator's checker).
    fault_log: Option<Vec<gridledger_consensus::pbft::Fault>>,
    /// Certified blocks this validator could not apply, kept with the
    /// fault log: evidence that consensus decided an invalid block.
    unappliable: Vec<CommittedEntry<PbftBlock>>,
    /// Catch-up served per peer (requests and stale view changes), checked
    /// before any block is read, on the driver's clock.
    catch_up_requests: crate::p2p::CatchUpLimiter,
    /// Other validators' transaction gossip, verified on its own thread
    /// (set by [`run_validator`]; without it, e.g. under the simulator,
    /// gossip is verified inline, still abandoning bad frames early).
    gossip_in: Option<crate::gossip::GossipVerifier>,
    /// The encoded vote state the store holds, synced or deferred (as last
    /// read or written; `None` when unknown, e.g. after a failed write).
    written: Option<Vec<u8>>,
    /// The last vote state a sync made durable (`None` when unknown). A
    /// step whose vote state it covers ([`Durable::covered_by`]) may speak
    /// before its own write is durable, so that write is deferred: see
    /// [`Driver::persist`] for the schedule (one fsync per height).
    synced: Option<Durable<PbftBlock>>,
    /// Driver tick of the oldest deferred write not yet synced.
    deferred_since: Option<u64>,
    /// Proposals re-executed on their own thread (set by [`run_validator`];
    /// without it, e.g. under the simulator, validation runs inline so runs
    /// stay reproducible).
    validation: Option<ValidationWorker>,
    /// The last proposal this validator saw or made: height, view, and
    /// when (driver ms), for the deadline floor.
    proposal_seen: Option<(u64, u64, u64)>,
    /// Proposal-to-commit times (ms) of the last [`RECENT_HEIGHTS`] heights.
    recent_heights: std::collections::VecDeque<u64>,
    /// Durations the replica asked for, by armed deadline (to re-arm a held one).
    armed_for: BTreeMap<Timer, u64>,
    /// A deadline that came due with nothing to decide, held until there
    /// is (see [`Driver::fire_timers`]), with its duration.
    idle_held: Option<(Timer, u64)>,
    /// The highest height any peer's consensus message named (a Byzantine
    /// peer may inflate it: that only disables holding idle deadlines).
    peer_height: u64,
    /// The latest `(height, view)` a peer's view change asked for (signature
    /// checked by the replica): a peer that wants to leave the current view
    /// has something to decide, so this validator's deadline is not held.
    peer_view_change: (u64, u64),
}

/// A proposal to re-execute, and the verdict.
struct ValidationJob {
    height: u64,
    view: u64,
    digest: Hash32,
    block: Block,
}

struct ValidationDone {
    height: u64,
    view: u64,
    digest: Hash32,
    result: Result<ExecutedBlock, String>,
}

/// Block validation off the driver thread (issue 9 item 10): the driver
/// hands a proposal over and keeps receiving and checking votes; the
/// verdict comes back through [`Driver::poll`], woken by an
/// [`Input::Wake`]. A verdict for a height or view the replica has left is
/// ignored by [`Replica::handle_validated`], and an executed block is only
/// reused to commit if its parent is still the tip, so a late verdict
/// cannot apply a block on the wrong state.
struct ValidationWorker {
    /// `None` once dropping: the thread ends when this sender is gone.
    jobs: Option<Sender<ValidationJob>>,
    done: Receiver<ValidationDone>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Waits for the thread, so the chain and store it holds are released
/// when the driver is gone (a restarted validator reopens the same store).
impl Drop for ValidationWorker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl ValidationWorker {
    fn spawn(shared: Arc<Shared>) -> anyhow::Result<Self> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<ValidationJob>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("pbft-validate".into()).spawn(move || {
            for job in job_rx {
                let t = Instant::now();
                // Signatures first, without holding the chain: client
                // submissions and gossip admissions need its lock, and a
                // block that outran the gossip takes ~300 verifications.
                let result = validate_proposal(&shared, &job.block).map_err(|e| e.to_string());
                add_us(&shared.metrics.pbft_validate_us, t);
                crate::timeline::record("validated", || {
                    serde_json::json!({
                        "h": job.height, "v": job.view, "txs": job.block.txs.len(),
                        "us": t.elapsed().as_micros() as u64, "ok": result.is_ok(), "thread": true,
                    })
                });
                shared.metrics.pbft_offthread_validations.fetch_add(1, Relaxed);
                let out = ValidationDone { height: job.height, view: job.view, digest: job.digest, result };
                if done_tx.send(out).is_err() {
                    return;
                }
                if let Some(d) = shared.driver_inbox() {
                    let _ = d.send(Input::Wake);
                }
            }
        })?;
        Ok(Self { jobs: Some(jobs), done, thread: Some(thread) })
    }
}

/// Re-executes another validator's proposal against the chain, verifying
/// each signature this node has not verified yet exactly once.
///
/// Signatures first, without holding the chain (client submissions and
/// gossip admissions need its lock, and a block that outran the gossip
/// takes ~300 verifications); transactions already pending in the mempool
/// were verified on admission and are not checked again. On success the
/// transactions verified here are admitted to the mempool (not gossiped:
/// the proposal carried them to every validator), so the same
/// transactions arriving later by gossip, while the block is still being
/// decided, are recognised as verified and not checked a second time
/// (issue 9 item 10: 8,860 of 9,000 gossiped signatures were re-checked
/// before). Should the block not commit, they stay pending like any
/// verified transaction and a later leader may propose them. A proposal
/// that fails changes nothing: nothing is admitted.
pub(crate) fn validate_proposal(
    shared: &Shared,
    block: &Block,
) -> Result<ExecutedBlock, gridledger_ledger::ChainError> {
    use rayon::prelude::*;
    // Gossip verification pauses until this validation is done.
    let _validating = shared.validating();
    let which = shared.chain().unverified(block);
    let checked: Vec<(usize, Result<VerifiedTx, SubmitError>)> = block
        .txs
        .par_iter()
        .enumerate()
        .with_min_len(16)
        .filter(|(i, _)| which.get(*i).copied().unwrap_or(false))
        .map(|(i, t)| (i, shared.rules.check_decoded(t.clone())))
        .collect();
    shared.metrics.pbft_validate_signatures.fetch_add(checked.len() as u64, Relaxed);
    let mut verified = Vec::with_capacity(checked.len());
    for (i, r) in checked {
        match r {
            Ok(v) => verified.push(v),
            Err(e) => {
                let h = block.txs.get(i).map(|t| t.hash()).unwrap_or_default();
                return Err(gridledger_ledger::ChainError::InvalidBlock(format!("transaction {h}: {e}")));
            }
        }
    }
    let mut chain = shared.chain();
    let ex = chain.validate_block_prechecked(block, &which)?;
    for v in verified {
        // Refusals (already pending, a full mempool, a conflicting pending
        // transaction of the same sender) only mean gossip may check it.
        let _ = chain.admit(v);
    }
    shared.metrics.mempool.store(chain.mempool().len() as u64, Relaxed);
    Ok(ex)
}

/// The planted [`Mutation::WeakCertificate`]: one signature kept.
#[cfg(feature = "mutants")]
fn weak_certificate(mut ex: ExecutedBlock) -> ExecutedBlock {
    if let Seal::Quorum { signatures, .. } = &mut ex.block.seal {
        signatures.truncate(1);
    }
    ex
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

/// The replica as the store left it: its committed tail and vote state.
fn restore_replica(shared: &Shared, key: &KeyPair, settings: &PbftSettings) -> anyhow::Result<Replica<PbftBlock>> {
    let set = validator_set(shared)?;
    let me = set
        .keys()
        .iter()
        .position(|k| *k == key.public())
        .ok_or_else(|| anyhow::anyhow!("key {} is not a validator of this chain", key.public()))? as u32;
    let cfg = Config {
        base_timeout: settings.base_timeout_ms.max(1),
        retain: settings.retain_blocks.max(1),
        suspect_divisor: settings.suspect_divisor.max(1),
        pipeline: settings.pipeline,
        #[cfg(feature = "mutants")]
        mutation: settings.mutation.and_then(Mutation::replica),
        ..Config::new(set, me)
    };
    let log = committed_log(shared, cfg.retain)?;
    // The replica serves these certificates to lagging peers and light
    // clients read them: a stored block whose certificate does not hold (a
    // damaged store, or one written by a buggy driver) is refused here, not
    // passed on. The error downcasts to `CertError`.
    // (A planted short quorum counts short here too.)
    #[cfg(feature = "mutants")]
    let short_quorum = settings.mutation == Some(Mutation::WrongQuorum);
    #[cfg(not(feature = "mutants"))]
    let short_quorum = false;
    let log_to_check = if short_quorum { &[][..] } else { &log[..] };
    for e in log_to_check {
        e.verify(&cfg.validators, e.cert.height).map_err(|err| {
            anyhow::Error::new(err)
                .context(format!("stored block {}: its quorum certificate does not hold", e.cert.height))
        })?;
    }
    let durable: Option<Durable<PbftBlock>> = match shared.store.get_aux(DURABLE_KEY)? {
        Some(b) => Some(decode_durable(&b).map_err(|e| anyhow::anyhow!("stored vote state: {e}"))?),
        None => None,
    };
    if let Some(c) = durable.as_ref().and_then(|d| d.prepared.as_ref()).filter(|_| !short_quorum) {
        c.verify(&cfg.validators, c.height)
            .map_err(|err| anyhow::Error::new(err).context("the stored vote state's prepared certificate"))?;
    }
    Replica::restore(cfg, key.clone(), &log, durable).map_err(|e| anyhow::anyhow!("replica: {e}"))
}

/// Runs a PBFT validator until `Input::Stop`. Blocking: give it its own thread.
pub fn run_validator(
    shared: Arc<Shared>,
    key: KeyPair,
    transport: Box<dyn Transport>,
    inbox: Receiver<Input>,
    settings: PbftSettings,
) -> anyhow::Result<()> {
    let mut d = Driver::open(shared, key, transport, settings)?;
    d.gossip_in = Some(crate::gossip::GossipVerifier::spawn(d.shared.clone())?);
    d.validation = Some(ValidationWorker::spawn(d.shared.clone())?);
    crate::engine::run_engine(&mut d, inbox);
    // A clean stop leaves nothing deferred behind.
    if d.deferred_since.is_some() && d.halted.is_none() {
        d.shared.store.sync().map_err(|e| anyhow::anyhow!("syncing deferred writes on stop: {e}"))?;
    }
    Ok(())
}

impl crate::engine::ConsensusEngine for Driver {
    fn start(&mut self) {
        Driver::start(self)
    }
    fn on_bytes(&mut self, from: u32, bytes: &[u8]) {
        if let (Some(g), Some(&WIRE_TXS)) = (&self.gossip_in, bytes.first()) {
            // The verifier thread releases the lane once it is done.
            g.submit(from, bytes.to_vec());
            return;
        }
        Driver::on_bytes(self, from, bytes);
        // The frame is consumed: its bytes leave the peer's inbound budget.
        self.shared.release_inbound(from, bytes);
    }
    fn poll(&mut self) {
        Driver::poll(self)
    }
    fn fire_timers(&mut self) {
        Driver::fire_timers(self)
    }
    fn now(&self) -> u64 {
        Driver::now(self)
    }
    fn next_deadline(&self) -> Option<u64> {
        Driver::next_deadline(self)
    }
    fn halted(&self) -> Option<&str> {
        Driver::halted(self)
    }
}

impl Driver {
    /// A driver for the validator `key` of `shared`'s chain, its replica
    /// restored from the store.
    pub fn open(
        shared: Arc<Shared>,
        key: KeyPair,
        transport: Box<dyn Transport>,
        settings: PbftSettings,
    ) -> anyhow::Result<Self> {
        let set = validator_set(&shared)?;
        let replica = restore_replica(&shared, &key, &settings)?;
        // What a freshly opened store holds is durable.
        let written = shared.store.get_aux(DURABLE_KEY)?;
        let synced = written.as_deref().and_then(|b| decode_durable(b).ok());
        Ok(Self {
            shared,
            replica,
            set,
            key,
            transport,
            timers: BTreeMap::new(),
            pending_proposal: None,
            executed: HashMap::new(),
            settings,
            started: Instant::now(),
            halted: None,
            fault_log: None,
            unappliable: Vec::new(),
            catch_up_requests: crate::p2p::CatchUpLimiter::default(),
            gossip_in: None,
            written,
            synced,
            deferred_since: None,
            validation: None,
            proposal_seen: None,
            recent_heights: std::collections::VecDeque::new(),
            armed_for: BTreeMap::new(),
            idle_held: None,
            peer_height: 0,
            peer_view_change: (0, 0),
        })
    }

    /// Arms the first deadline and, when leading, asks for a proposal.
    pub fn start(&mut self) {
        let first = self.replica.start();
        self.process(first);
    }

    /// The driver's clock for timers (ms).
    pub fn now(&self) -> u64 {
        match &self.settings.ticks {
            Some(t) => t.load(Relaxed),
            None => self.started.elapsed().as_millis() as u64,
        }
    }

    /// When [`Driver::fire_timers`] or [`Driver::poll`] next has work.
    pub fn next_deadline(&self) -> Option<u64> {
        let timer = self.timers.values().min().copied();
        let retry = self.halted.as_ref().map(|h| h.retry_at);
        let flush = self.flush_due();
        timer.into_iter().chain(retry).chain(flush).min()
    }

    /// When the oldest deferred write must be synced on its own.
    fn flush_due(&self) -> Option<u64> {
        self.deferred_since.filter(|_| self.halted.is_none()).map(|t| t + self.settings.flush_after_ms)
    }

    /// Syncs deferred writes that waited `flush_after_ms` for a synced
    /// write to carry them (idle chain).
    fn flush_if_due(&mut self) {
        if self.flush_due().is_none_or(|at| at > self.now()) {
            return;
        }
        let t = Instant::now();
        let synced = self.shared.store.sync();
        add_us(&self.shared.metrics.pbft_persist_us, t);
        match synced {
            Ok(()) => {
                self.deferred_since = None;
                self.synced = self.written.as_deref().and_then(|b| decode_durable(b).ok());
            }
            Err(e) => {
                self.written = None;
                self.synced = None;
                self.halt(format!("cannot sync deferred writes: {e}"));
            }
        }
    }

    /// Why this validator stopped voting, while it is halted.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_ref().map(|h| h.reason.as_str())
    }

    /// Keeps the consensus faults observed from now on for [`Driver::take_faults`].
    pub fn record_faults(&mut self) {
        self.fault_log.get_or_insert_with(Vec::new);
    }

    pub fn take_faults(&mut self) -> Vec<gridledger_consensus::pbft::Fault> {
        self.fault_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Certified blocks that failed to apply since the last call (recorded
    /// only after [`Driver::record_faults`]).
    pub fn take_unappliable(&mut self) -> Vec<CommittedEntry<PbftBlock>> {
        std::mem::take(&mut self.unappliable)
    }

    /// The height the replica is deciding.
    pub fn height(&self) -> u64 {
        self.replica.height()
    }

    /// The view the replica is in.
    pub fn view(&self) -> u64 {
        self.replica.view()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Periodic work: gossip admitted transactions, propose when leading,
    /// and, when halted, try to recover.
    pub fn poll(&mut self) {
        if self.halted.as_ref().is_some_and(|h| h.retry_at <= self.now()) {
            self.recover();
        }
        self.flush_if_due();
        self.rearm_held();
        self.gossip();
        self.take_verdicts();
        if self.halted.is_none() {
            self.try_propose();
        }
    }

    /// Verdicts of the validation thread, handed to the replica.
    fn take_verdicts(&mut self) {
        let done: Vec<ValidationDone> = match &self.validation {
            Some(w) => w.done.try_iter().collect(),
            None => return,
        };
        for d in done {
            if self.halted.is_some() {
                return;
            }
            let verdict = match d.result {
                Ok(ex) => {
                    if ex.block.header.height > self.shared.chain().tip().height {
                        self.executed.insert(d.digest, ex);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            };
            let step = self.replica.handle_validated(d.height, d.view, d.digest, verdict);
            self.process(step);
        }
    }

    /// The block clock: the logical clock if one is set, else the system's.
    fn block_time(&self) -> u64 {
        self.settings.clock.as_ref().map_or_else(now_ms, |c| c.load(Relaxed))
    }

    /// Stops voting: nothing more leaves until [`Driver::recover`] succeeds.
    fn halt(&mut self, reason: String) {
        tracing::error!("validator halted, will reopen its store and retry: {reason}");
        self.shared.metrics.store_faults.fetch_add(1, Relaxed);
        self.shared.set_fault(Some(reason.clone()));
        self.timers.clear();
        self.armed_for.clear();
        self.idle_held = None;
        self.pending_proposal = None;
        self.halted = Some(Halt { reason, retry_at: self.now() + RECOVERY_RETRY_MS });
    }

    /// Reopens the store and rebuilds the chain's state and the replica
    /// from it, as a restart would; the mempool is kept.
    fn recover(&mut self) {
        let reopened = self.shared.chain().reopen().map_err(anyhow::Error::from);
        let rebuilt = reopened.and_then(|_| {
            let replica = restore_replica(&self.shared, &self.key, &self.settings)?;
            Ok((replica, self.shared.store.get_aux(DURABLE_KEY)?))
        });
        match rebuilt {
            Ok((replica, written)) => {
                // A reopened store holds what was durable.
                self.synced = written.as_deref().and_then(|b| decode_durable(b).ok());
                self.written = written;
                self.deferred_since = None;
                tracing::info!(height = replica.height(), "validator recovered from its store");
                self.replica = replica;
                self.executed.clear();
                self.halted = None;
                self.shared.set_fault(None);
                self.shared.metrics.recoveries.fetch_add(1, Relaxed);
                self.start();
            }
            Err(e) => {
                let retry_at = self.now() + RECOVERY_RETRY_MS;
                if let Some(h) = &mut self.halted {
                    h.retry_at = retry_at;
                    h.reason = format!("{}; reopening failed: {e:#}", h.reason);
                }
            }
        }
    }

    pub fn on_bytes(&mut self, from: u32, bytes: &[u8]) {
        let Some((&kind, body)) = bytes.split_first() else { return };
        // A peer's catch-up requests are rate-limited before anything is
        // decoded or read: serving one clones or reads up to
        // `catch_up_batch` full blocks on this thread.
        if crate::p2p::is_catch_up_request(bytes) && !self.catch_up_allowed(from) {
            tracing::debug!(from, "catch-up request rate-limited");
            return;
        }
        match kind {
            // A halted validator neither votes nor serves.
            WIRE_PBFT if self.halted.is_some() => {}
            WIRE_PBFT => match Message::<PbftBlock>::from_bytes(body, MAX_FRAME, self.set.len(), 1_024) {
                Ok(Message::CatchUpRequest { from_height }) if from_height < self.oldest_retained() => {
                    // Older than the replica keeps in memory: serve from the store.
                    let batch = self.replica.config().catch_up_batch as u64;
                    let tip = self.shared.chain().tip().height;
                    match committed_range(&self.shared, from_height.max(1), tip.min(from_height + batch - 1)) {
                        Ok(entries) if !entries.is_empty() => {
                            self.shared.metrics.catch_up_from_store.fetch_add(1, Relaxed);
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
                Ok(Message::ViewChange(vc)) if vc.height < self.replica.height() && !self.catch_up_allowed(from) => {
                    tracing::debug!(from, "stale view change (catch-up) rate-limited");
                }
                Ok(m) => {
                    self.peer_height = self.peer_height.max(m.height().unwrap_or(0));
                    if crate::timeline::enabled() {
                        if let Message::PrePrepare(pp) = &m {
                            let (h, v, txs) = (pp.height, pp.view, pp.payload.0.txs.len());
                            crate::timeline::record(
                                "pre_prepare",
                                || serde_json::json!({ "h": h, "v": v, "from": from, "txs": txs }),
                            );
                        }
                    }
                    let vc = match &m {
                        Message::ViewChange(vc) => Some((vc.height, vc.new_view)),
                        _ => None,
                    };
                    let step = self.replica.handle_message(from, m);
                    // Only a view change the replica took without a fault
                    // (signature, certificate) counts as a peer's wish.
                    if let Some(slot) = vc.filter(|_| step.faults.is_empty()) {
                        self.peer_view_change = self.peer_view_change.max(slot);
                    }
                    self.process(step);
                }
                Err(e) => {
                    self.shared.metrics.faults.fetch_add(1, Relaxed);
                    tracing::warn!(from, "undecodable consensus message: {e}");
                }
            },
            WIRE_TXS => match &self.gossip_in {
                Some(g) => g.submit(from, bytes.to_vec()),
                None => {
                    crate::gossip::verify_and_admit(&self.shared, from, body);
                }
            },
            other => tracing::warn!(from, kind = other, "unknown message kind"),
        }
    }

    /// Takes a catch-up token for `from` on the driver's clock (logical
    /// under the simulator, so runs stay reproducible).
    fn catch_up_allowed(&self, from: u32) -> bool {
        self.catch_up_requests.allow(from, self.started + std::time::Duration::from_millis(self.now()))
    }

    /// Lowest height the replica can serve catch-up from itself.
    fn oldest_retained(&self) -> u64 {
        self.replica.committed_tail().next().map_or(self.replica.height(), |e| e.cert.height)
    }

    fn gossip(&mut self) {
        let txs = self.shared.take_outbox();
        if !txs.is_empty() {
            crate::timeline::record("gossip_out", || serde_json::json!({ "n": txs.len() }));
            let mut bytes = vec![WIRE_TXS];
            bytes.extend(encode(&txs));
            self.transport.broadcast(bytes);
        }
    }

    /// Whether deadline `t` came due with nothing this validator could
    /// expect its leader to have decided: `t` is the current view's
    /// deadline in normal operation, no proposal for it was seen, no peer
    /// is known to be at a higher height or to want a later view at this
    /// height, and nothing is pending here (mempool and failed-commit
    /// transactions empty).
    ///
    /// The peer's view change matters because "nothing pending here" does
    /// not mean nothing is pending anywhere: a transaction whose gossip
    /// was lost is pending on one validator only. That validator times
    /// out and asks for the next view; were the others to keep holding,
    /// it would retransmit its view change alone forever (the replica
    /// runs the view-change deadline only once a quorum wants the view)
    /// and no leader would ever propose the transaction. A Byzantine peer
    /// can only use this to turn the hold off, i.e. the behaviour without
    /// it: idle view changes, never a safety issue.
    fn nothing_to_decide(&self, t: Timer) -> bool {
        t.height == self.replica.height()
            && t.view == self.replica.view()
            && !self.replica.is_view_changing()
            && self.proposal_seen.is_none_or(|(h, v, _)| (h, v) != (t.height, t.view))
            && self.peer_height <= t.height
            && !(self.peer_view_change.0 == t.height && self.peer_view_change.1 > t.view)
            && self.shared.chain().pending() == 0
    }

    /// Gossips again (one block's worth, in nonce order) what is pending
    /// here, when a deadline fires with work pending: gossip is best
    /// effort (a verifier with a full queue drops frames, a lane may be
    /// full), and a transaction only this validator holds is otherwise
    /// proposed only when this validator leads. The receivers skip what
    /// they already hold before verifying anything.
    fn regossip_pending(&mut self) {
        let txs = {
            let chain = self.shared.chain();
            if chain.mempool().is_empty() {
                return;
            }
            chain.mempool().candidates(self.shared.max_block_txs.max(1))
        };
        crate::timeline::record("regossip", || serde_json::json!({ "n": txs.len() }));
        self.shared.metrics.pbft_regossiped.fetch_add(txs.len() as u64, Relaxed);
        let mut bytes = vec![WIRE_TXS];
        bytes.extend(encode(&txs));
        self.transport.broadcast(bytes);
    }

    /// Re-arms a held deadline (full duration) once there is something to
    /// decide; drops it once the replica has left its height or view.
    fn rearm_held(&mut self) {
        let Some((t, after)) = self.idle_held else { return };
        if (t.height, t.view) != (self.replica.height(), self.replica.view()) {
            self.idle_held = None;
        } else if !self.nothing_to_decide(t) {
            self.idle_held = None;
            self.timers.insert(t, self.now() + after.max(self.deadline_floor()));
            self.armed_for.insert(t, after);
        }
    }

    /// Fires every due deadline.
    ///
    /// A deadline that comes due with nothing to decide
    /// ([`Driver::nothing_to_decide`]: an idle chain) is held, not handed
    /// to the replica, and re-armed with its full duration by
    /// [`Driver::poll`] once a transaction is pending or a proposal or a
    /// higher height is seen (`hold_idle_deadlines`). Before, an idle
    /// chain changed views every deadline: each view change doubled the
    /// next deadline (up to 64 base deadlines, reset only by a commit) and
    /// marked the idle leader suspect, so the first transactions after a
    /// pause met a view change racing them (issue 9 item 10: every
    /// validator timed out at height 1 during the 20-process batch) or,
    /// with a dead leader, a deadline of up to a minute.
    pub fn fire_timers(&mut self) {
        let now = self.now();
        let due: Vec<Timer> = self.timers.iter().filter(|(_, at)| **at <= now).map(|(t, _)| *t).collect();
        for t in due {
            if self.halted.is_some() {
                return;
            }
            self.timers.remove(&t);
            let after = self.armed_for.remove(&t).unwrap_or(self.settings.base_timeout_ms);
            if self.settings.hold_idle_deadlines && self.nothing_to_decide(t) {
                crate::timeline::record("deadline_held", || serde_json::json!({ "h": t.height, "v": t.view }));
                self.idle_held = Some((t, after));
                continue;
            }
            crate::timeline::record(
                "timeout",
                || serde_json::json!({ "h": t.height, "v": t.view, "floor_ms": self.deadline_floor() }),
            );
            self.regossip_pending();
            let step = self.replica.handle_timer(t);
            self.process(step);
        }
    }

    /// The leader proposes as soon as it has transactions (an empty block
    /// would only trigger a view update, §3.3.2).
    fn try_propose(&mut self) {
        let Some((h, v)) = self.pending_proposal else { return };
        if self.replica.height() + 1 == h && self.replica.view() == v {
            self.try_propose_early(h, v);
            return;
        }
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
        crate::timeline::record("propose", || {
            serde_json::json!({
                "h": h, "v": v, "txs": ex.block.txs.len(), "build_us": t.elapsed().as_micros() as u64,
                "mempool": self.shared.metrics.mempool.load(Relaxed),
            })
        });
        self.pending_proposal = None;
        self.saw_proposal(h, v);
        let block = ex.block.clone();
        self.executed.insert(block.hash(), ex);
        let step = self.replica.propose(h, v, PbftBlock(block));
        self.process(step);
    }

    /// Pipelined heights: proposes `(h, v)` while `h - 1` is still in its
    /// commit round, building on the executed prepared block of `h - 1`
    /// (its state changes layered over the committed state, so `h` may
    /// spend what `h - 1` credits and never what `h - 1` spent). The
    /// replica only asks for this after the prepared certificate of
    /// `(h - 1, v)`, which declares `(h, v)` as its next slot, was synced.
    fn try_propose_early(&mut self, h: u64, v: u64) {
        let parent = self.replica.prepared().map(|c| c.payload.digest()).and_then(|d| self.executed.get(&d));
        let Some(parent) = parent.filter(|p| p.block.header.height + 1 == h) else {
            // Nothing executed to build on: propose once h - 1 commits.
            self.pending_proposal = None;
            return;
        };
        let t = Instant::now();
        let built = {
            let mut chain = self.shared.chain();
            if chain.mempool().len() <= parent.block.txs.len() {
                // Nothing pending beyond the parent's own transactions yet.
                return;
            }
            #[cfg(feature = "mutants")]
            if self.settings.mutation == Some(Mutation::PipelineStaleState) {
                // The planted bug: the parent's changes and transactions ignored.
                let none = std::collections::BTreeSet::new();
                let changes = gridledger_ledger::state::Changes::new();
                chain.build_block_over(&parent.block.header, &changes, &none, &self.key.public(), self.block_time())
            } else {
                chain.build_block_on(parent, &self.key.public(), self.block_time())
            }
            #[cfg(not(feature = "mutants"))]
            chain.build_block_on(parent, &self.key.public(), self.block_time())
        };
        add_us(&self.shared.metrics.pbft_build_us, t);
        let ex = match built {
            Ok(ex) if !ex.block.txs.is_empty() => ex,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!("no early proposal for height {h}: {e}");
                self.pending_proposal = None;
                return;
            }
        };
        crate::timeline::record("propose", || {
            serde_json::json!({
                "h": h, "v": v, "txs": ex.block.txs.len(), "build_us": t.elapsed().as_micros() as u64,
                "mempool": self.shared.metrics.mempool.load(Relaxed), "early": true,
            })
        });
        self.pending_proposal = None;
        self.shared.metrics.pbft_early_proposals.fetch_add(1, Relaxed);
        let block = ex.block.clone();
        self.executed.insert(block.hash(), ex);
        let step = self.replica.propose(h, v, PbftBlock(block));
        self.process(step);
    }

    /// The verdict on a proposal when it needs no execution (a planted
    /// bug, a timestamp too far ahead, or a block already executed here).
    fn quick_verdict(&self, block: &Block, hash: &Hash32) -> Option<Result<(), String>> {
        #[cfg(feature = "mutants")]
        if self.settings.mutation == Some(Mutation::SkipValidation) {
            return Some(Ok(()));
        }
        if block.header.timestamp > self.block_time() + self.settings.max_clock_drift_ms {
            return Some(Err("timestamp too far in the future".into()));
        }
        self.executed.contains_key(hash).then_some(Ok(()))
    }

    fn validate(&mut self, block: &Block) -> Result<(), String> {
        let hash = block.hash();
        if let Some(v) = self.quick_verdict(block, &hash) {
            return v;
        }
        let t = Instant::now();
        let ex = validate_proposal(&self.shared, block).map_err(|e| e.to_string());
        add_us(&self.shared.metrics.pbft_validate_us, t);
        crate::timeline::record("validated", || {
            serde_json::json!({
                "h": block.header.height, "txs": block.txs.len(), "us": t.elapsed().as_micros() as u64,
                "ok": ex.is_ok(), "thread": false,
            })
        });
        self.executed.insert(hash, ex?);
        Ok(())
    }

    /// The executed form of a certified block, ready to commit.
    fn executed_for(&mut self, e: &CommittedEntry<PbftBlock>) -> Result<ExecutedBlock, String> {
        let hash = e.payload.0.hash();
        let mut ex = match self.executed.remove(&hash) {
            Some(ex) if ex.block.header.parent == self.shared.chain().tip().hash() => ex,
            _ => match self.shared.chain().validate_block(&e.payload.0) {
                Ok(ex) => ex,
                Err(err) => {
                    // A quorum certified a block this replica cannot apply:
                    // its state diverged, its store is damaged, or the
                    // quorum was not honest. Stop rather than fork.
                    if self.fault_log.is_some() {
                        self.unappliable.push(e.clone());
                    }
                    return Err(format!("cannot apply the certified block at height {}: {err}", e.cert.height));
                }
            },
        };
        ex.block.seal = Seal::Quorum { view: e.cert.view, signatures: e.cert.signatures.clone() };
        Ok(ex)
    }

    /// Persists a step: its committed blocks (each after the previous) and
    /// its vote state, the last block and the vote state in one transaction.
    ///
    /// The schedule (one fsync per height on the happy path): a write is
    /// synced only when the step's vote state is not covered by the last
    /// synced one ([`Durable::covered_by`]); otherwise it is deferred (no
    /// fsync, visible at once, durable with the next synced write). At
    /// height `h` in view `v` that gives:
    /// - prepared certificate of `(h, v)`, before the commit vote leaves:
    ///   synced, and it declares `(h + 1, v)` as the next slot;
    /// - block `h` with the plain vote state of `(h + 1, v)`: deferred, as
    ///   the synced record already blocks a restarted replica from voting
    ///   at `(h + 1, v)`; so are the next leader's pre-prepare and every
    ///   prepare at `(h + 1, v)` (the same record, nothing to write);
    /// - view changes, new views and anything after a restart: synced.
    ///
    /// Every vote is thus covered by a synced record before it leaves. A
    /// deferred block is committed (a quorum signed it, and each of them
    /// synced its prepared certificate first, so a view change can only
    /// re-propose it), but this validator's copy is lost if it crashes
    /// before the next sync: it restarts one height back and fetches the
    /// block again by catch-up. Idle, `flush_after_ms` bounds that window.
    ///
    /// Earlier blocks of a multi-block step (catch-up) are written alone
    /// and deferred (the step's last write syncs them, or a crash loses
    /// them with it): a crash after one of them leaves a vote state for a
    /// height that is already decided, which [`Replica::restore`] discards.
    fn persist(
        &mut self,
        durable: Option<&Durable<PbftBlock>>,
        committed: &[CommittedEntry<PbftBlock>],
    ) -> Result<(), String> {
        let vote = durable.map(encode);
        #[cfg(feature = "mutants")]
        let vote = match self.settings.mutation {
            Some(Mutation::LoseDurable) => None,
            Some(Mutation::TwoWriteCommit) => {
                if let Some(v) = &vote {
                    self.shared.store.put_aux(DURABLE_KEY, v).map_err(|e| format!("cannot persist vote state: {e}"))?;
                }
                None
            }
            _ => vote,
        };
        let vote = vote.and_then(|v| durable.map(|d| (v, d)));
        // Covered by the synced record: it may be deferred.
        let covered = vote.as_ref().is_some_and(|(_, d)| self.synced.as_ref().is_some_and(|s| d.covered_by(s)));
        #[cfg(feature = "mutants")]
        let covered = covered || self.settings.mutation == Some(Mutation::DeferEveryWrite);
        let t = Instant::now();
        if committed.is_empty() {
            let Some((v, d)) = vote else {
                return Ok(());
            };
            // Already written (e.g. the prepare re-stating what the last
            // commit wrote) and covered: nothing to write.
            if covered && self.written.as_ref() == Some(&v) {
                add_us(&self.shared.metrics.pbft_persist_us, t);
                return Ok(());
            }
            self.written = None;
            let res = self.shared.store.commit_with_aux_durability(&[], &[(DURABLE_KEY, &v)], !covered);
            add_us(&self.shared.metrics.pbft_persist_us, t);
            crate::timeline::record("persist", || {
                serde_json::json!({
                    "h": d.height, "v": d.view, "sync": !covered, "prepared": d.prepared.is_some(),
                    "us": t.elapsed().as_micros() as u64,
                })
            });
            res.map_err(|e| {
                self.synced = None;
                format!("cannot persist vote state: {e}")
            })?;
            self.wrote(v, d, !covered);
            if !covered {
                self.shared.metrics.pbft_vote_writes.fetch_add(1, Relaxed);
            }
            return Ok(());
        }
        for (i, e) in committed.iter().enumerate() {
            let started = Instant::now();
            let ex = self.executed_for(e)?;
            #[cfg(feature = "mutants")]
            let ex = match self.settings.mutation {
                Some(Mutation::WeakCertificate) => weak_certificate(ex),
                _ => ex,
            };
            let (block, receipts) = (ex.block.clone(), ex.receipts.clone());
            let last = i + 1 == committed.len();
            let aux: Vec<(&str, &[u8])> = match (&vote, last) {
                (Some((v, _)), true) => vec![(DURABLE_KEY, v.as_slice())],
                _ => Vec::new(),
            };
            // Only the step's last write may need a sync.
            let sync = last && !covered;
            let t = Instant::now();
            if !aux.is_empty() {
                self.written = None;
            }
            let written = self.shared.chain().commit_with_aux_durability(vec![ex], &aux, sync);
            add_us(&self.shared.metrics.pbft_commit_us, t);
            crate::timeline::record("commit", || {
                serde_json::json!({
                    "h": e.cert.height, "v": e.cert.view, "txs": block.txs.len(), "sync": sync,
                    "us": t.elapsed().as_micros() as u64, "apply_us": started.elapsed().as_micros() as u64,
                })
            });
            written.map_err(|err| {
                self.synced = None;
                format!("cannot commit block {}: {err}", e.cert.height)
            })?;
            match (&vote, last) {
                (Some((v, d)), true) => self.wrote(v.clone(), d, sync),
                _ if sync => self.wrote_sync(),
                _ => {
                    self.deferred_since.get_or_insert(self.now());
                }
            }
            let h = block.header.height;
            self.height_committed(h);
            self.executed.retain(|_, x| x.block.header.height > h);
            tracing::info!(height = h, txs = block.txs.len(), view = e.cert.view, "committed block");
            self.shared.record_block(&block, &receipts, 0, started.elapsed());
        }
        Ok(())
    }

    /// Notes a proposal for `(height, view)` seen or made now (the first
    /// of that height and view counts).
    fn saw_proposal(&mut self, height: u64, view: u64) {
        if self.proposal_seen.is_none_or(|(h, v, _)| (h, v) != (height, view)) {
            self.proposal_seen = Some((height, view, self.now()));
        }
    }

    /// Height `h` committed here: how long it took since its proposal
    /// arrived (heights fetched by catch-up are not measured).
    fn height_committed(&mut self, h: u64) {
        if let Some((_, _, at)) = self.proposal_seen.filter(|(ph, _, _)| *ph == h) {
            if self.recent_heights.len() == RECENT_HEIGHTS {
                self.recent_heights.pop_front();
            }
            self.recent_heights.push_back(self.now().saturating_sub(at));
            self.proposal_seen = None;
        }
    }

    /// The least deadline (ms) recent heights call for (see
    /// [`PbftSettings::deadline_floor_factor`]).
    pub fn deadline_floor(&self) -> u64 {
        let slowest = self.recent_heights.iter().max().copied().unwrap_or(0);
        slowest.saturating_mul(self.settings.deadline_floor_factor).min(self.settings.base_timeout_ms.saturating_mul(4))
    }

    /// Records a successful write of vote state `d` (encoded `v`).
    fn wrote(&mut self, v: Vec<u8>, d: &Durable<PbftBlock>, synced: bool) {
        self.written = Some(v);
        if synced {
            self.synced = Some(d.clone());
            self.deferred_since = None;
        } else {
            self.deferred_since.get_or_insert(self.now());
        }
    }

    /// A synced write without vote state: what was written is now durable.
    fn wrote_sync(&mut self) {
        self.synced = self.written.as_deref().and_then(|b| decode_durable(b).ok());
        self.deferred_since = None;
    }

    fn process(&mut self, step: Step<PbftBlock>) {
        self.process_queue(step);
        let m = &self.shared.metrics;
        m.pbft_view.store(self.replica.view(), Relaxed);
        m.pbft_view_changing.store(self.replica.is_view_changing() as u64, Relaxed);
    }

    fn process_queue(&mut self, step: Step<PbftBlock>) {
        let mut queue = std::collections::VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            if self.halted.is_some() {
                return;
            }
            // Never speak before the step is on disk.
            if let Err(reason) = self.persist(step.persist.as_ref(), &step.committed) {
                self.halt(reason);
                return;
            }
            for m in step.messages {
                let mut bytes = vec![WIRE_PBFT];
                bytes.extend(m.message.to_bytes());
                match m.to {
                    Target::All => self.transport.broadcast(bytes),
                    Target::One(i) => self.transport.send(i, bytes),
                }
            }
            let now = self.now();
            for t in step.timers {
                match t {
                    TimerCmd::Set { timer, after } => {
                        self.timers.insert(timer, now + after.max(self.deadline_floor()));
                        self.armed_for.insert(timer, after);
                    }
                    TimerCmd::Cancel(timer) => {
                        self.timers.remove(&timer);
                        self.armed_for.remove(&timer);
                        if self.idle_held.is_some_and(|(t, _)| t == timer) {
                            self.idle_held = None;
                        }
                    }
                }
            }
            for f in step.faults {
                self.shared.metrics.faults.fetch_add(1, Relaxed);
                if let Some(log) = &mut self.fault_log {
                    log.push(f.clone());
                }
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
                self.saw_proposal(req.height, req.view);
                let digest = req.payload.digest();
                let jobs = self.validation.as_ref().and_then(|w| w.jobs.as_ref());
                if let (Some(jobs), None) = (jobs, self.quick_verdict(&req.payload.0, &digest)) {
                    let job = ValidationJob { height: req.height, view: req.view, digest, block: req.payload.0 };
                    if jobs.send(job).is_ok() {
                        continue;
                    }
                    self.halt("the validation thread ended".into());
                    return;
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_consensus::pbft::{PreparedCert, Vote, VoteKind};
    use gridledger_core::Amount;
    use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
    use std::sync::atomic::AtomicU64;

    /// The vote-state layout stores held before `Durable::next` existed,
    /// written as those versions wrote it.
    #[derive(BorshSerialize)]
    struct WrittenByV1 {
        height: u64,
        view: u64,
        view_changing: bool,
        prepared: Option<gridledger_consensus::pbft::PreparedCert<PbftBlock>>,
    }

    /// A store left by a validator of the earlier layout (mid view change
    /// at height 1, view 5, holding a prepared certificate of view 4)
    /// opens: the replica resumes in that view, still view-changing, and
    /// the view change it sends next carries the old record's prepared
    /// certificate, so an upgrade cannot make it forget what it prepared.
    /// Its next write is in the current layout and keeps the certificate.
    #[test]
    fn a_vote_state_in_the_layout_before_next_slots_still_loads() {
        let validators: Vec<KeyPair> = (0..4).map(dev_validator).collect();
        let shared = crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000), &validators));
        let set = validator_set(&shared).unwrap();
        // Block 1 as validator 0 would have proposed it, prepared in view 4.
        let block = {
            let mut chain = shared.chain();
            let t = transfer(&dev_key(1), 1, 0, dev_key(2).address(), Amount(5), Amount(1));
            chain.admit(shared.rules.check_decoded(t).unwrap()).unwrap();
            chain.build_block(&validators[0].public(), 1_000).0.block
        };
        let digest = block.hash();
        let prepares = (0..3u32)
            .map(|i| {
                let v = Vote::sign(&validators[i as usize], VoteKind::Prepare, &set.instance, 4, 1, digest);
                (i, v.signature)
            })
            .collect();
        let cert = PreparedCert { view: 4, height: 1, payload: PbftBlock(block), prepares };
        let old = WrittenByV1 { height: 1, view: 5, view_changing: true, prepared: Some(cert.clone()) };
        let bytes = encode(&old);
        // Not readable as the current layout: the fallback is what loads it.
        assert!(decode::<Durable<PbftBlock>>(&bytes, MAX_FRAME).is_err());
        shared.store.put_aux(DURABLE_KEY, &bytes).unwrap();

        let (mut d, ticks, inboxes) = validator_3_on_a_logical_clock(shared.clone(), PbftSettings::default());
        assert_eq!((d.height(), d.view()), (1, 5), "resumes at the stored height and view");
        d.start();
        let view_changes_sent =
            |ticks_to: u64, d: &mut Driver| -> Vec<gridledger_consensus::pbft::ViewChange<PbftBlock>> {
                ticks.store(ticks_to, Relaxed);
                d.fire_timers();
                inboxes[0]
                    .try_iter()
                    .filter_map(|i| match i {
                        Input::Peer { bytes, .. } if bytes.first() == Some(&WIRE_PBFT) => {
                            match Message::<PbftBlock>::from_bytes(&bytes[1..], MAX_FRAME, 4, 1_024) {
                                Ok(Message::ViewChange(vc)) => Some(vc),
                                _ => None,
                            }
                        }
                        _ => None,
                    })
                    .collect()
            };
        // The deadline passes without a quorum for view 5: the stored view
        // change is sent again, certificate included.
        let sent = view_changes_sent(1 << 20, &mut d);
        let vc = sent.last().expect("the stored view change is retransmitted");
        assert_eq!((vc.height, vc.new_view), (1, 5));
        assert_eq!(vc.prepared.as_ref(), Some(&cert), "the old record's prepared certificate is carried");
        // Two more validators want view 5, its leader (2) stays silent: on
        // to view 6, a new record, written in the current layout.
        for i in [0u32, 1] {
            let vc = gridledger_consensus::pbft::ViewChange::<PbftBlock>::sign(
                &validators[i as usize],
                i,
                &set.instance,
                5,
                1,
                None,
            );
            let mut bytes = vec![WIRE_PBFT];
            bytes.extend(Message::ViewChange(vc).to_bytes());
            d.on_bytes(i, &bytes);
        }
        let sent = view_changes_sent(1 << 40, &mut d);
        let vc = sent.last().expect("a view change for the next view");
        assert_eq!((vc.height, vc.new_view), (1, 6));
        assert_eq!(vc.prepared.as_ref(), Some(&cert));
        let now = decode::<Durable<PbftBlock>>(&shared.store.get_aux(DURABLE_KEY).unwrap().unwrap(), MAX_FRAME)
            .expect("rewritten in the current layout");
        assert_eq!((now.height, now.view, now.view_changing), (1, 6, true));
        assert_eq!(now.prepared, Some(cert));
    }

    /// The vote-state layout stores held while `Durable::next` named one slot.
    #[derive(BorshSerialize)]
    struct WrittenByV2 {
        height: u64,
        view: u64,
        view_changing: bool,
        prepared: Option<gridledger_consensus::pbft::PreparedCert<PbftBlock>>,
        next: Option<(u64, u64)>,
    }

    /// A record of the one-slot layout loads with its slot (none, or a
    /// height whose low bytes could pass for a length), and the current
    /// layout, holding several slots, loads as written.
    #[test]
    fn a_vote_state_in_the_one_slot_layout_still_loads() {
        for next in [None, Some((3, 2)), Some((1 << 24, 1)), Some((u64::MAX, 0))] {
            let bytes = encode(&WrittenByV2 { height: 2, view: 2, view_changing: false, prepared: None, next });
            assert!(decode::<Durable<PbftBlock>>(&bytes, MAX_FRAME).is_err(), "not the current layout");
            let d = decode_durable(&bytes).unwrap();
            assert_eq!((d.height, d.view, d.view_changing, d.prepared), (2, 2, false, None));
            assert_eq!(d.next, next.into_iter().collect::<Vec<_>>());
        }
        let now = Durable::<PbftBlock> {
            height: 2,
            view: 3,
            view_changing: true,
            prepared: None,
            next: vec![(3, 1), (3, 3)],
        };
        assert_eq!(decode_durable(&encode(&now)).unwrap(), now);
    }

    /// Validator 3 of a 4-validator mesh on `shared`, its deadlines on a
    /// logical clock (the returned ticks, in ms), with every peer's inbox.
    fn validator_3_on_a_logical_clock(
        shared: Arc<crate::service::Shared>,
        settings: PbftSettings,
    ) -> (Driver, Arc<std::sync::atomic::AtomicU64>, Vec<Receiver<Input>>) {
        let (mesh, inboxes) = LocalMesh::new(4);
        let ticks = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let settings = PbftSettings { ticks: Some(ticks.clone()), ..settings };
        let d = Driver::open(shared, dev_validator(3), Box::new(mesh.transport(3)), settings).unwrap();
        (d, ticks, inboxes)
    }

    /// The deadline floor: deadlines follow the slowest recent height
    /// (proposal to commit) times the factor, capped at four base
    /// deadlines; a suspect leader's shortened deadline is raised to it;
    /// factor 0 leaves the replica's deadlines as they are.
    #[test]
    fn deadlines_are_at_least_twice_the_slowest_recent_height() {
        let validators: Vec<KeyPair> = (0..4).map(dev_validator).collect();
        let open = |factor: u64| {
            let shared = crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000), &validators));
            let settings = PbftSettings { base_timeout_ms: 1_000, deadline_floor_factor: factor, ..Default::default() };
            let (d, ticks, _inboxes) = validator_3_on_a_logical_clock(shared, settings);
            (d, ticks)
        };
        let armed = |d: &mut Driver, after: u64| {
            let timer = Timer { height: d.height(), view: d.view() };
            d.process(Step { timers: vec![TimerCmd::Set { timer, after }], ..Step::default() });
            d.timers[&timer] - d.now()
        };
        let (mut d, ticks) = open(2);
        assert_eq!(d.deadline_floor(), 0, "no height measured yet");
        assert_eq!(armed(&mut d, 250), 250);
        // A proposal seen at tick 100 commits at tick 700: 600 ms.
        ticks.store(100, Relaxed);
        d.saw_proposal(1, 1);
        ticks.store(700, Relaxed);
        d.height_committed(1);
        assert_eq!(d.deadline_floor(), 1_200);
        assert_eq!(armed(&mut d, 250), 1_200, "a suspect's 250 ms deadline is raised");
        assert_eq!(armed(&mut d, 4_000), 4_000, "a longer (backed-off) deadline is kept");
        // A height fetched by catch-up (no proposal seen) is not measured.
        d.height_committed(2);
        assert_eq!(d.recent_heights.len(), 1);
        // Capped at four base deadlines; the slowest leaves the window.
        d.recent_heights.push_back(10_000);
        assert_eq!(d.deadline_floor(), 4_000);
        for _ in 0..RECENT_HEIGHTS {
            d.recent_heights.push_back(50);
            if d.recent_heights.len() > RECENT_HEIGHTS {
                d.recent_heights.pop_front();
            }
        }
        assert_eq!(d.deadline_floor(), 100);
        let (mut off, _) = open(0);
        off.recent_heights.push_back(600);
        assert_eq!(armed(&mut off, 250), 250, "factor 0: off");
    }

    /// Four drivers on one logical clock, their messages pumped by hand
    /// (deterministic: no threads, no wall clock): `drop(from, to, bytes)`
    /// decides which frames are lost.
    struct Pump {
        drivers: Vec<Driver>,
        inboxes: Vec<Receiver<Input>>,
        ticks: Arc<AtomicU64>,
    }

    impl Pump {
        fn new(n: usize) -> Self {
            let validators: Vec<KeyPair> = (0..n).map(dev_validator).collect();
            let genesis = dev_genesis(1, 8, Amount(1_000_000), &validators);
            let (mesh, inboxes) = LocalMesh::new(n);
            let ticks = Arc::new(AtomicU64::new(0));
            let settings = PbftSettings { ticks: Some(ticks.clone()), base_timeout_ms: 500, ..Default::default() };
            let drivers = (0..n)
                .map(|i| {
                    let shared = crate::service::Shared::in_memory(genesis.clone());
                    shared.set_driver_inbox(mesh.inbox(i as u32));
                    let mut d = Driver::open(
                        shared,
                        validators[i].clone(),
                        Box::new(mesh.transport(i as u32)),
                        settings.clone(),
                    )
                    .unwrap();
                    d.start();
                    d
                })
                .collect();
            Pump { drivers, inboxes, ticks }
        }

        /// Runs 10 ms rounds until `done` or `limit_ms` of logical time;
        /// whether `done` was reached.
        fn run(
            &mut self,
            limit_ms: u64,
            mut drop: impl FnMut(u32, usize, &[u8]) -> bool,
            done: impl Fn(&[Driver]) -> bool,
        ) -> bool {
            while self.ticks.load(Relaxed) < limit_ms {
                if done(&self.drivers) {
                    return true;
                }
                self.ticks.fetch_add(10, Relaxed);
                for (i, d) in self.drivers.iter_mut().enumerate() {
                    d.poll();
                    let inputs: Vec<Input> = self.inboxes[i].try_iter().collect();
                    for input in inputs {
                        if let Input::Peer { from, bytes } = input {
                            if !drop(from, i, &bytes) {
                                d.on_bytes(from, &bytes);
                            }
                        }
                    }
                    d.fire_timers();
                }
            }
            done(&self.drivers)
        }
    }

    /// A client's transfer, admitted (and queued for gossip) by validator `i`.
    fn submit(d: &Driver, nonce: u64) -> Hash32 {
        let t = transfer(&dev_key(1), 1, nonce, dev_key(2).address(), Amount(5), Amount(1));
        let v = d.shared.rules.check_decoded(t);
        d.shared.admit(vec![v]).pop().unwrap().unwrap()
    }

    fn committed_everywhere(h: Hash32) -> impl Fn(&[Driver]) -> bool {
        move |ds: &[Driver]| ds.iter().all(|d| d.shared.store.tx_location(&h).ok().flatten().is_some())
    }

    /// The CI stall (4 validators pinned to one core: "not committed within
    /// 600s"): a transaction pending on one validator only, because the
    /// gossip frame that carried it was dropped (a full verifier queue
    /// drops frames). The other three, idle, held their deadlines; the one
    /// with the transaction timed out and view-changed alone, retransmitting
    /// its view change forever: nobody joined, nobody proposed. Now a
    /// validator whose deadline fires with work pending gossips that work
    /// again, so the leader gets it and proposes.
    #[test]
    fn a_transaction_whose_gossip_was_lost_still_commits() {
        let mut p = Pump::new(4);
        // Height 1, view 1 is led by validator 2; the client uses validator 0.
        let h = submit(&p.drivers[0], 0);
        let mut lost = 0;
        let drop_first_gossip = |from: u32, _to: usize, bytes: &[u8]| {
            let first = from == 0 && bytes.first() == Some(&WIRE_TXS) && lost < 3;
            lost += first as u32;
            first
        };
        assert!(p.run(60_000, drop_first_gossip, committed_everywhere(h)), "stalled: gossip never repaired");
        // Repaired by gossip, not by rotating the views to validator 0:
        // another validator had the transaction to propose.
        let b = p.drivers[1].shared.store.block(1).unwrap().unwrap();
        assert_ne!(b.header.proposer, dev_validator(0).public());
        assert!(p.drivers[0].shared.metrics.pbft_regossiped.load(Relaxed) >= 1);
    }

    /// Issue 9 item 10: `gridledger_mempool_size` follows commits. Before,
    /// only admissions set it, so under PBFT it kept showing transactions
    /// that a block had already taken out of the mempool.
    #[test]
    fn the_mempool_gauge_drops_when_a_block_commits() {
        let mut p = Pump::new(4);
        let hashes = [submit(&p.drivers[0], 0), submit(&p.drivers[0], 1)];
        assert_eq!(p.drivers[0].shared.metrics.mempool.load(Relaxed), 2);
        let all = |ds: &[Driver]| hashes.iter().all(|h| committed_everywhere(*h)(ds));
        assert!(p.run(60_000, |_, _, _| false, all));
        for d in &p.drivers {
            assert_eq!(d.shared.chain().mempool().len(), 0);
            assert_eq!(d.shared.metrics.mempool.load(Relaxed), 0, "the gauge follows the commit");
            assert!(d.shared.metrics.render().contains("\ngridledger_mempool_size 0\n"));
        }
    }

    /// As above, but every gossip frame of validator 0 is lost (say its
    /// peers refuse what it sends): the others join its view change (a peer
    /// wanting a later view at this height is something to decide), the
    /// views rotate to validator 0 and it proposes the transaction itself.
    #[test]
    fn a_transaction_pending_on_one_validator_only_still_commits() {
        let mut p = Pump::new(4);
        let h = submit(&p.drivers[0], 0);
        let drop_all_gossip = |from: u32, _to: usize, bytes: &[u8]| from == 0 && bytes.first() == Some(&WIRE_TXS);
        assert!(p.run(120_000, drop_all_gossip, committed_everywhere(h)), "stalled: a lone view change was ignored");
        let b = p.drivers[1].shared.store.block(1).unwrap().unwrap();
        assert_eq!(b.header.proposer, dev_validator(0).public(), "only validator 0 ever held it");
        // Nothing else stalls afterwards: a second transaction commits too.
        let h2 = submit(&p.drivers[0], 1);
        let limit = p.ticks.load(Relaxed) + 120_000;
        assert!(p.run(limit, drop_all_gossip, committed_everywhere(h2)));
    }

    /// An idle chain does not change views: a deadline that comes due with
    /// nothing pending, no proposal and no peer ahead is held; a pending
    /// transaction re-arms it with its full duration, and then a silent
    /// leader is still replaced. A peer at a higher height (this validator
    /// may be behind) lets the deadline run. Without the hold (the old
    /// behaviour, kept as `hold_idle_deadlines: false`) the idle deadline
    /// starts a view change at once.
    #[test]
    fn an_idle_deadline_is_held_until_there_is_something_to_decide() {
        let validators: Vec<KeyPair> = (0..4).map(dev_validator).collect();
        let open = |hold: bool| {
            let shared = crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000), &validators));
            let settings = PbftSettings { base_timeout_ms: 1_000, hold_idle_deadlines: hold, ..Default::default() };
            // Validator 3 does not lead height 1 in view 1.
            let (mut d, ticks, inboxes) = validator_3_on_a_logical_clock(shared, settings);
            d.start();
            (d, ticks, inboxes)
        };
        let view_changes = |inboxes: &[Receiver<Input>]| {
            inboxes[0]
                .try_iter()
                .filter(|i| match i {
                    Input::Peer { bytes, .. } if bytes.first() == Some(&WIRE_PBFT) => matches!(
                        Message::<PbftBlock>::from_bytes(&bytes[1..], MAX_FRAME, 4, 1_024),
                        Ok(Message::ViewChange(_))
                    ),
                    _ => false,
                })
                .count()
        };
        let step_to = |d: &mut Driver, ticks: &AtomicU64, t: u64| {
            ticks.store(t, Relaxed);
            d.poll();
            d.fire_timers();
        };
        // Old behaviour: the idle deadline changes the view.
        let (mut d, ticks, inboxes) = open(false);
        step_to(&mut d, &ticks, 1_000);
        assert_eq!(view_changes(&inboxes), 1);
        assert!(d.replica.is_view_changing());

        let (mut d, ticks, inboxes) = open(true);
        step_to(&mut d, &ticks, 1_000);
        step_to(&mut d, &ticks, 50_000);
        assert_eq!(view_changes(&inboxes), 0, "idle: no view change");
        assert_eq!((d.view(), d.replica.is_view_changing()), (1, false));
        // A transaction arrives at 60 s: the deadline runs again, in full.
        {
            let t = transfer(&dev_key(1), 1, 0, dev_key(2).address(), Amount(5), Amount(1));
            let v = d.shared.rules.check_decoded(t).unwrap();
            d.shared.chain().admit(v).unwrap();
        }
        step_to(&mut d, &ticks, 60_000);
        step_to(&mut d, &ticks, 60_999);
        assert_eq!(view_changes(&inboxes), 0, "the re-armed deadline has its full duration");
        step_to(&mut d, &ticks, 61_000);
        assert_eq!(view_changes(&inboxes), 1, "a silent leader with work pending is replaced");

        // Idle, but a peer is at a higher height: the deadline runs.
        let (mut d, ticks, inboxes) = open(true);
        let set = validator_set(&d.shared).unwrap();
        let vote = Vote::sign(&validators[0], VoteKind::Prepare, &set.instance, 1, 5, Hash32::default());
        let mut bytes = vec![WIRE_PBFT];
        bytes.extend(Message::<PbftBlock>::Prepare(vote).to_bytes());
        d.on_bytes(0, &bytes);
        step_to(&mut d, &ticks, 1_000);
        assert_eq!(view_changes(&inboxes), 1, "possibly behind: not held");
    }
}
