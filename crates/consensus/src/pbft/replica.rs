//! The PBFT replica: a deterministic sans-IO state machine (DESIGN
//! principle 1) implementing the improved PBFT of thesis §3.3.2 / Fig. 3-3,
//! completed with what production PBFT needs (Castro & Liskov): view changes
//! that carry prepared certificates, catch-up with commit certificates, and
//! durable vote state so a restarted replica never votes twice.
//!
//! One block is decided per height (sequence number = block number BN), one
//! height at a time: a replica votes only at its current height. With
//! [`Config::pipeline`] the leader of `h + 1` may *propose* before `h`
//! commits, once it holds `h`'s prepared certificate (synced, declaring
//! `(h + 1, v)` as its next slot, so a restart never proposes there
//! again); its pre-prepare waits in the other replicas' future queue until
//! they commit `h`, and it becomes the leader's own proposal only if the
//! block it builds on is the one that commits. A commit certificate (a quorum of commit signatures) is
//! a stable checkpoint: when a height commits, every vote, proposal and
//! view-change for it is garbage-collected, and only the last
//! [`Config::retain`] committed blocks are kept to serve catch-up.

use super::messages::*;
use gridledger_core::crypto::{verify, KeyPair};
use gridledger_core::{Hash32, Signature};
use std::collections::{BTreeMap, VecDeque};

/// Tuning knobs. Durations are logical ticks; the driver maps them to time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub validators: ValidatorSet,
    /// This replica's index in the validator set.
    pub me: u32,
    /// Deadline for a view to commit its block (thesis: "within a required
    /// time frame"); doubled after each consecutive view change at a height.
    pub base_timeout: u64,
    /// Cap on the doubling exponent.
    pub max_backoff_exp: u32,
    /// Committed blocks per catch-up response.
    pub catch_up_batch: usize,
    /// Committed blocks kept in memory to serve catch-up.
    pub retain: usize,
    /// The first view (the thesis initialises `view` to 1).
    pub initial_view: u64,
    /// A leader whose view was abandoned is suspected until it leads a
    /// committed block again; while it leads, the first deadline is
    /// `base_timeout / suspect_divisor`, so a dead validator's turns are
    /// skipped faster (1 turns this off). Only liveness depends on it.
    pub suspect_divisor: u64,
    /// Pipelined heights: the leader of `(h + 1, v)` proposes as soon as
    /// it holds the prepared certificate of `(h, v)` (synced, declaring
    /// `(h + 1, v)` as its next slot), while `h`'s commit round is still
    /// running; see [`Step::need_proposal`] and the module docs.
    pub pipeline: bool,
    /// A planted bug for the simulator's mutation-sensitivity check.
    #[cfg(feature = "mutants")]
    pub mutation: Option<Mutation>,
}

/// Bugs the simulator must catch, planted in the replica (test-only).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// A new-view is accepted without checking that it re-proposes the
    /// highest prepared block of its view changes.
    NewViewSkipsHighestPrepared,
    /// Quorums one vote short of `2f + 1`.
    WrongQuorum,
}

impl Config {
    pub fn new(validators: ValidatorSet, me: u32) -> Self {
        Self {
            validators,
            me,
            base_timeout: 1_000,
            max_backoff_exp: 6,
            catch_up_batch: 32,
            retain: 256,
            initial_view: 1,
            suspect_divisor: 4,
            pipeline: false,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every other validator.
    All,
    One(u32),
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing<P> {
    pub to: Target,
    pub message: Message<P>,
}

/// The one timer PBFT uses: the deadline of `view` at `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timer {
    pub height: u64,
    pub view: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerCmd {
    /// Fire `timer` after `after` ticks.
    Set {
        timer: Timer,
        after: u64,
    },
    Cancel(Timer),
}

/// The caller must check `payload` against its chain state (execution,
/// parent link; thesis §3.3.2 step 2) and answer with
/// [`Replica::handle_validated`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateRequest<P> {
    pub height: u64,
    pub view: u64,
    pub payload: P,
}

/// State that must be on disk before the step's messages are sent; a
/// restarted replica is rebuilt from it and its committed log.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Durable<P> {
    pub height: u64,
    pub view: u64,
    pub view_changing: bool,
    pub prepared: Option<PreparedCert<P>>,
    /// Slots `(height, view)` of the next height (sorted, at most
    /// [`MAX_NEXT_SLOTS`]) at which this replica may have spoken, or may
    /// speak, before it writes its state again:
    /// - with the prepared certificate of `(h, v)` the replica declares
    ///   `(h + 1, v)`, the slot it enters when `h` commits in `v`, so the
    ///   plain state it then needs for that slot (the leader's
    ///   pre-prepare, every prepare) is already covered by this record
    ///   and the driver may defer that write (one fsync per height; see
    ///   the node's driver);
    /// - a pipelining leader's early pre-prepare for `(h + 1, v)` leaves
    ///   only once a synced record declares that slot, and the slot stays
    ///   in every later record (even after a later view's prepared
    ///   certificate declares another one) until the replica's height or
    ///   view passes it;
    /// - the slots a restored record named stay too (the replica may have
    ///   spoken there before its crash).
    ///
    /// A replica restored from a record naming a slot never votes or
    /// proposes in it again.
    pub next: Vec<(u64, u64)>,
}

/// Most slots [`Durable::next`] holds: a replica that would declare more
/// (many crashes and view changes at one height) declares no new slot, so
/// it proposes nothing early and syncs its next write instead of deferring it.
pub const MAX_NEXT_SLOTS: usize = 8;

impl<P> Durable<P> {
    /// Whether the votes `self` allows are already accounted for by the
    /// durable record `synced`: the same record, or the plain state (no
    /// view change, no prepared certificate) of a slot `synced` declared in
    /// [`Durable::next`], declaring no slot `synced` does not. A replica
    /// may then speak before `self` is synced.
    pub fn covered_by(&self, synced: &Durable<P>) -> bool
    where
        P: PartialEq,
    {
        if self == synced {
            return true;
        }
        let slot = (self.height, self.view);
        !self.view_changing
            && self.prepared.is_none()
            && synced.next.contains(&slot)
            && self.next.iter().all(|n| synced.next.contains(n))
    }
}

/// Observed misbehaviour, reported as data (DESIGN principle 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The sender index is not a validator (or is this replica).
    UnknownSender { from: u32 },
    /// A message broke the structural bounds.
    Malformed { from: u32 },
    /// A signature did not verify.
    BadSignature { from: u32, what: &'static str },
    /// A pre-prepare or new-view from someone who is not Eq. (3.4)'s leader.
    WrongLeader { from: u32, view: u64, height: u64 },
    /// Two different signed statements for the same slot.
    Equivocation { signer: u32, view: u64, height: u64, what: &'static str },
    /// A prepared or commit certificate that does not hold.
    ForgedCertificate { from: u32, reason: CertError },
    /// A new-view that does not justify itself.
    InvalidNewView { from: u32, reason: &'static str },
    /// A pre-prepare for a view this replica already left: a replay, or
    /// (before the network stabilises) a very late message.
    StaleView { from: u32, view: u64, height: u64 },
    /// A proposal that fails [`Payload::well_formed`] or the caller's validation.
    InvalidProposal { leader: u32, view: u64, height: u64, reason: String },
}

/// Everything one input produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<P> {
    pub messages: Vec<Outgoing<P>>,
    /// Newly final blocks, in height order, with their commit certificates.
    pub committed: Vec<CommittedEntry<P>>,
    pub timers: Vec<TimerCmd>,
    pub faults: Vec<Fault>,
    /// Persist this (replacing the previous one) before sending `messages`.
    pub persist: Option<Durable<P>>,
    /// This replica leads `(height, view)`: call [`Replica::propose`].
    /// With [`Config::pipeline`] the height may be the one after the
    /// replica's ([`Replica::height`] + 1): an early proposal, to be built
    /// on the block of [`Replica::prepared`] (decided in all but its
    /// commit round) rather than on the committed chain.
    pub need_proposal: Option<(u64, u64)>,
    pub validate: Vec<ValidateRequest<P>>,
}

impl<P> Default for Step<P> {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            committed: Vec::new(),
            timers: Vec::new(),
            faults: Vec::new(),
            persist: None,
            need_proposal: None,
            validate: Vec::new(),
        }
    }
}

impl<P> Step<P> {
    /// Appends `other`'s effects after this step's.
    pub fn extend(&mut self, other: Step<P>) {
        self.messages.extend(other.messages);
        self.committed.extend(other.committed);
        self.timers.extend(other.timers);
        self.faults.extend(other.faults);
        if other.persist.is_some() {
            self.persist = other.persist;
        }
        if other.need_proposal.is_some() {
            self.need_proposal = other.need_proposal;
        }
        self.validate.extend(other.validate);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Normal,
    ViewChanging,
}

/// Messages for heights just above ours, replayed once we get there.
const FUTURE_HEIGHTS: u64 = 2;
const FUTURE_PER_SENDER: usize = 16;
/// Votes are kept for views `[view, view + VOTE_VIEWS_AHEAD]` (commits also
/// for recent older views: an old-view commit quorum still proves finality).
const VOTE_VIEWS_AHEAD: u64 = 2;
const COMMIT_VIEWS_BEHIND: u64 = 8;
const MAX_KNOWN_PAYLOADS: usize = 16;

/// A PBFT validator (thesis §3.3.2).
pub struct Replica<P> {
    cfg: Config,
    key: KeyPair,
    height: u64,
    view: u64,
    phase: Phase,
    /// No votes at this (height, view): we may have voted before a restart.
    vote_blocked: Option<(u64, u64)>,
    /// The slots a restored record declared (see [`Durable::next`]): no
    /// votes and no proposals there.
    next_blocked: Vec<(u64, u64)>,
    /// The next-height slot this replica declared with its last prepared
    /// certificate (see [`Durable::next`]).
    announced: Option<(u64, u64)>,
    /// Pre-prepare accepted in the current view: its block hash.
    proposal: Option<Hash32>,
    validated: bool,
    sent_prepare: bool,
    sent_commit: bool,
    proposed: bool,
    /// Blocks seen at this height by hash (proposals and prepared certificates).
    known: BTreeMap<Hash32, P>,
    /// First pre-prepare hash per view at this height (equivocation check).
    pre_prepares: BTreeMap<u64, Hash32>,
    /// `(view, signer) -> (block, signature)`.
    prepares: BTreeMap<(u64, u32), (Hash32, Signature)>,
    commits: BTreeMap<(u64, u32), (Hash32, Signature)>,
    /// Highest prepared certificate at this height.
    prepared: Option<PreparedCert<P>>,
    /// Latest view change per signer at this height.
    view_changes: BTreeMap<u32, ViewChange<P>>,
    new_view_sent: bool,
    /// The deadline was re-armed when a quorum of view changes arrived.
    vc_quorum_armed: bool,
    /// Leader of a new view waiting for a fresh proposal.
    pending_new_view: Option<Vec<ViewChange<P>>>,
    /// View changes in a row at this height (timeout backoff).
    backoff: u32,
    catch_up_asked: Option<u64>,
    future: Vec<(u32, Message<P>)>,
    log: VecDeque<CommittedEntry<P>>,
    last_commit_view: u64,
    /// Leaders whose last view was abandoned (see [`Config::suspect_divisor`]).
    suspects: std::collections::BTreeSet<u32>,
    /// The pre-prepares this replica signed and sent for `(height + 1,
    /// view)` while `height` was still committing (pipelined heights),
    /// each with the digest of the block it builds on, kept until the
    /// replica's height or view passes their slot. The only proposal this
    /// replica ever makes in such a slot is that very pre-prepare (when
    /// its parent is the committed block), or none: another would be
    /// equivocation.
    early: Vec<(Hash32, PrePrepare<P>)>,
    /// The digest of the last committed block (`None` at genesis).
    last_block: Option<Hash32>,
}

impl<P: Payload> Replica<P> {
    /// A fresh replica at height 1 (genesis is height 0).
    pub fn new(cfg: Config, key: KeyPair) -> Result<Self, ConfigError> {
        Self::restore(cfg, key, &[], None)
    }

    /// Rebuilds a replica after a crash from its committed log (oldest
    /// first; only the tail is kept) and its last [`Durable`] state.
    pub fn restore(
        cfg: Config,
        key: KeyPair,
        log: &[CommittedEntry<P>],
        durable: Option<Durable<P>>,
    ) -> Result<Self, ConfigError> {
        let pk = cfg.validators.key(cfg.me).ok_or(ConfigError::BadIndex(cfg.me))?;
        if *pk != key.public() {
            return Err(ConfigError::KeyMismatch(cfg.me));
        }
        if cfg.base_timeout == 0 {
            return Err(ConfigError::ZeroTimeout);
        }
        let height = log.last().map_or(1, |e| e.cert.height + 1);
        let view = log.last().map_or(cfg.initial_view, |e| e.cert.view);
        let keep = log.len().saturating_sub(cfg.retain);
        let mut r = Self {
            height,
            view,
            phase: Phase::Normal,
            vote_blocked: None,
            next_blocked: Vec::new(),
            announced: None,
            proposal: None,
            validated: false,
            sent_prepare: false,
            sent_commit: false,
            proposed: false,
            known: BTreeMap::new(),
            pre_prepares: BTreeMap::new(),
            prepares: BTreeMap::new(),
            commits: BTreeMap::new(),
            prepared: None,
            view_changes: BTreeMap::new(),
            new_view_sent: false,
            vc_quorum_armed: false,
            pending_new_view: None,
            backoff: 0,
            catch_up_asked: None,
            future: Vec::new(),
            log: log[keep..].iter().cloned().collect(),
            last_commit_view: view,
            suspects: Default::default(),
            early: Vec::new(),
            last_block: log.last().map(|e| e.cert.block),
            cfg,
            key,
        };
        // A declared slot this replica may have voted in before the crash
        // without writing again: blocked, and carried in later records.
        r.next_blocked =
            durable.as_ref().map(|d| d.next.iter().copied().filter(|n| n.0 >= height).collect()).unwrap_or_default();
        if let Some(d) = durable.filter(|d| d.height == height) {
            r.view = d.view;
            r.phase = if d.view_changing { Phase::ViewChanging } else { Phase::Normal };
            r.vote_blocked = Some((height, d.view));
            if let Some(c) = d.prepared {
                r.known.insert(c.payload.digest(), c.payload.clone());
                r.prepared = Some(c);
            }
            if r.phase == Phase::ViewChanging {
                // Re-create the view change we had sent, to retransmit it.
                let vc =
                    ViewChange::sign(&r.key, r.cfg.me, &r.cfg.validators.instance, r.view, height, r.prepared.clone());
                r.view_changes.insert(r.cfg.me, vc);
            }
        }
        Ok(r)
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn is_view_changing(&self) -> bool {
        self.phase == Phase::ViewChanging
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The highest prepared certificate at the current height, if any
    /// (with [`Config::pipeline`], the parent of an early proposal).
    pub fn prepared(&self) -> Option<&PreparedCert<P>> {
        self.prepared.as_ref()
    }

    /// The retained tail of the committed log.
    pub fn committed_tail(&self) -> impl Iterator<Item = &CommittedEntry<P>> {
        self.log.iter()
    }

    fn set(&self) -> &ValidatorSet {
        &self.cfg.validators
    }

    fn n(&self) -> usize {
        self.cfg.validators.len()
    }

    fn quorum(&self) -> usize {
        #[cfg(feature = "mutants")]
        if self.cfg.mutation == Some(Mutation::WrongQuorum) {
            return self.set().quorum() - 1;
        }
        self.set().quorum()
    }

    fn leader(&self, view: u64, height: u64) -> u32 {
        self.set().leader(view, height)
    }

    fn durable(&self) -> Durable<P> {
        Durable {
            height: self.height,
            view: self.view,
            view_changing: self.phase == Phase::ViewChanging,
            prepared: self.prepared.clone(),
            next: self.next_slots(),
        }
    }

    /// The slots [`Durable::next`] names: the restored ones, this
    /// replica's early pre-prepares and the slot it declared last, as far
    /// as they are still ahead (a slot of this height below the current
    /// view is passed: views only grow within a height).
    fn next_slots(&self) -> Vec<(u64, u64)> {
        let here = (self.height, self.view);
        let mut slots: Vec<(u64, u64)> = self
            .next_blocked
            .iter()
            .copied()
            .chain(self.early.iter().map(|(_, pp)| (pp.height, pp.view)))
            .chain(self.announced)
            .filter(|n| *n >= here)
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
    }

    fn can_vote(&self) -> bool {
        let slot = (self.height, self.view);
        self.vote_blocked != Some(slot) && !self.next_blocked.contains(&slot)
    }

    /// The early pre-prepare this replica signed for the current slot.
    fn own_early(&self) -> Option<&(Hash32, PrePrepare<P>)> {
        self.early.iter().find(|(_, pp)| (pp.height, pp.view) == (self.height, self.view))
    }

    /// Whether this replica may sign a new pre-prepare for the current
    /// slot: it may vote there and signed no early one for it.
    fn may_sign_proposal(&self) -> bool {
        self.can_vote() && self.own_early().is_none()
    }

    fn timeout(&self) -> u64 {
        let exp = self.backoff.min(self.cfg.max_backoff_exp);
        let t = self.cfg.base_timeout.saturating_mul(1u64 << exp);
        let leader = self.leader(self.view, self.height);
        if self.phase == Phase::Normal && self.backoff == 0 && self.suspects.contains(&leader) {
            return (t / self.cfg.suspect_divisor.max(1)).max(1);
        }
        t
    }

    fn arm_timer(&self, s: &mut Step<P>) {
        s.timers.push(TimerCmd::Set { timer: Timer { height: self.height, view: self.view }, after: self.timeout() });
    }

    fn broadcast(&self, s: &mut Step<P>, message: Message<P>) {
        s.messages.push(Outgoing { to: Target::All, message });
    }

    /// Starts the replica: arms the first deadline and, when leading, asks
    /// for a proposal (thesis step 1, "Request").
    pub fn start(&mut self) -> Step<P> {
        let mut s = Step::default();
        self.arm_timer(&mut s);
        if self.phase == Phase::Normal && self.leader(self.view, self.height) == self.cfg.me && self.may_sign_proposal()
        {
            s.need_proposal = Some((self.height, self.view));
        }
        s
    }

    /// The caller's block for `(height, view)` after a `need_proposal`.
    pub fn propose(&mut self, height: u64, view: u64, payload: P) -> Step<P> {
        let mut s = Step::default();
        self.on_propose(height, view, payload, &mut s);
        self.drain_future(&mut s);
        s
    }

    /// The caller's verdict on a [`ValidateRequest`].
    pub fn handle_validated(&mut self, height: u64, view: u64, block: Hash32, verdict: Result<(), String>) -> Step<P> {
        let mut s = Step::default();
        self.on_validated(height, view, block, verdict, &mut s);
        self.drain_future(&mut s);
        s
    }

    /// A deadline fired: the leader did not finish in time, so `view`
    /// increments (thesis §3.3.2 step 1) through a view change.
    pub fn handle_timer(&mut self, timer: Timer) -> Step<P> {
        let mut s = Step::default();
        if timer.height == self.height && timer.view == self.view {
            self.catch_up_asked = None;
            if self.phase == Phase::ViewChanging && self.view_change_support(self.view) < self.quorum() {
                // Castro & Liskov: the view-change deadline only runs once a
                // quorum wants the view; until then, retransmit ours. This
                // keeps a replica that timed out first from racing ahead.
                if let Some(vc) = self.view_changes.get(&self.cfg.me).cloned() {
                    self.broadcast(&mut s, Message::ViewChange(vc));
                }
                self.arm_timer(&mut s);
            } else {
                self.start_view_change(self.view + 1, &mut s);
            }
        }
        self.drain_future(&mut s);
        s
    }

    /// A message from validator `from`.
    pub fn handle_message(&mut self, from: u32, message: Message<P>) -> Step<P> {
        let mut s = Step::default();
        self.dispatch(from, message, &mut s);
        self.drain_future(&mut s);
        s
    }

    fn dispatch(&mut self, from: u32, message: Message<P>, s: &mut Step<P>) {
        if from as usize >= self.n() || from == self.cfg.me {
            s.faults.push(Fault::UnknownSender { from });
            return;
        }
        if message.check_bounds(self.n(), self.cfg.catch_up_batch).is_err() {
            s.faults.push(Fault::Malformed { from });
            return;
        }
        if let Some(h) = message.height() {
            if h < self.height {
                if let Message::ViewChange(vc) = &message {
                    // The sender is stuck at an old height: help it.
                    self.serve_catch_up(from, vc.height, s);
                }
                return;
            }
            if h > self.height {
                let queued = self.future.iter().filter(|(f, _)| *f == from).count();
                // A pre-prepare one height ahead is what a pipelining
                // leader sends while this height commits, not a sign of
                // lagging behind: no catch-up for it.
                let pipelined = self.cfg.pipeline && h == self.height + 1 && matches!(message, Message::PrePrepare(_));
                if h <= self.height + FUTURE_HEIGHTS && queued < FUTURE_PER_SENDER {
                    self.future.push((from, message));
                }
                if !pipelined {
                    self.request_catch_up(from, s);
                }
                return;
            }
        }
        match message {
            Message::PrePrepare(pp) => self.on_pre_prepare(from, pp, s),
            Message::Prepare(v) => self.on_vote(from, VoteKind::Prepare, v, s),
            Message::Commit(v) => self.on_vote(from, VoteKind::Commit, v, s),
            Message::ViewChange(vc) => self.on_view_change(from, vc, s),
            Message::NewView(nv) => self.on_new_view(from, nv, s),
            Message::CatchUpRequest { from_height } => self.serve_catch_up(from, from_height, s),
            Message::CatchUpResponse { entries } => self.on_catch_up(from, entries, s),
        }
    }

    fn drain_future(&mut self, s: &mut Step<P>) {
        loop {
            let h = self.height;
            self.future.retain(|(_, m)| m.height().is_some_and(|mh| mh >= h));
            let (now, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.future).into_iter().partition(|(_, m)| m.height() == Some(h));
            self.future = later;
            if now.is_empty() {
                return;
            }
            for (from, m) in now {
                self.dispatch(from, m, s);
            }
        }
    }

    // ---- step 1–2: request and pre-prepare ------------------------------

    fn on_propose(&mut self, height: u64, view: u64, payload: P, s: &mut Step<P>) {
        if height == self.height + 1 {
            self.on_early_propose(height, view, payload, s);
            return;
        }
        if height != self.height
            || view != self.view
            || self.leader(view, height) != self.cfg.me
            || !self.may_sign_proposal()
        {
            return;
        }
        let instance = self.set().instance;
        if let Some(vcs) = self.pending_new_view.take() {
            if self.phase != Phase::ViewChanging || self.new_view_sent {
                return;
            }
            let pp = PrePrepare::sign(&self.key, &instance, view, height, payload);
            self.send_new_view(vcs, pp, s);
            return;
        }
        if self.phase != Phase::Normal || self.proposed || self.proposal.is_some() {
            return;
        }
        self.proposed = true;
        let pp = PrePrepare::sign(&self.key, &instance, view, height, payload);
        self.broadcast(s, Message::PrePrepare(pp.clone()));
        self.accept_pre_prepare(self.cfg.me, pp, true, s);
    }

    /// Whether this replica may propose `(height + 1, view)` now, before
    /// `height` commits: pipelining is on, it leads that slot, it holds the
    /// prepared certificate of `(height, view)` and sent its commit vote
    /// (so the synced record declaring `(height + 1, view)` as its next
    /// slot is on disk: a restart never proposes there again), and it has
    /// not proposed there yet.
    fn may_propose_early(&self, view: u64) -> bool {
        let next = (self.height + 1, view);
        self.cfg.pipeline
            && view == self.view
            && self.phase == Phase::Normal
            && self.sent_commit
            && self.prepared.as_ref().is_some_and(|c| c.view == view && c.height == self.height)
            && self.announced == Some(next)
            && !self.next_blocked.contains(&next)
            && self.leader(view, next.0) == self.cfg.me
            && !self.early.iter().any(|(_, pp)| (pp.height, pp.view) == next)
    }

    /// An early proposal for `(height, view)`, one height ahead (pipelined
    /// heights): signed and sent now, accepted as this replica's own once
    /// the prepared block commits in `view` ([`Replica::commit`]). Replicas
    /// still at the previous height queue it and validate it once they
    /// have committed that height, against their committed state.
    fn on_early_propose(&mut self, height: u64, view: u64, payload: P, s: &mut Step<P>) {
        if !self.may_propose_early(view) || payload.is_empty() {
            return;
        }
        let Some(parent) = self.prepared.as_ref().map(|c| c.payload.digest()) else { return };
        let pp = PrePrepare::sign(&self.key, &self.set().instance, view, height, payload);
        self.broadcast(s, Message::PrePrepare(pp.clone()));
        self.early.push((parent, pp));
    }

    fn on_pre_prepare(&mut self, from: u32, pp: PrePrepare<P>, s: &mut Step<P>) {
        if from != self.leader(pp.view, pp.height) {
            s.faults.push(Fault::WrongLeader { from, view: pp.view, height: pp.height });
            return;
        }
        if !pp.verify(self.set()) {
            s.faults.push(Fault::BadSignature { from, what: "pre-prepare" });
            return;
        }
        self.accept_pre_prepare(from, pp, false, s);
    }

    /// Step 2's checks on a pre-prepare whose leader and signature are
    /// already verified: view, sequence number, equivocation, block hash
    /// and well-formedness; then the caller validates the block.
    fn accept_pre_prepare(&mut self, leader: u32, pp: PrePrepare<P>, own: bool, s: &mut Step<P>) {
        if pp.view < self.view {
            s.faults.push(Fault::StaleView { from: leader, view: pp.view, height: pp.height });
            return;
        }
        let hash = pp.payload.digest();
        match self.pre_prepares.get(&pp.view) {
            Some(h) if *h != hash => {
                s.faults.push(Fault::Equivocation {
                    signer: leader,
                    view: pp.view,
                    height: pp.height,
                    what: "pre-prepare",
                });
                return;
            }
            Some(_) => return,
            None => {}
        }
        if pp.view > self.view || self.phase != Phase::Normal {
            // Only a new-view may move us to a later view.
            return;
        }
        self.pre_prepares.insert(pp.view, hash);
        if let Err(reason) = pp.payload.well_formed() {
            s.faults.push(Fault::InvalidProposal { leader, view: pp.view, height: pp.height, reason });
            return;
        }
        if self.known.len() < MAX_KNOWN_PAYLOADS {
            self.known.insert(hash, pp.payload.clone());
        }
        self.proposal = Some(hash);
        if pp.payload.is_empty() {
            // Thesis step 4: an empty block gets a "view update", not a commit.
            self.start_view_change(self.view + 1, s);
            return;
        }
        if own {
            self.on_validated(pp.height, pp.view, hash, Ok(()), s);
        } else {
            s.validate.push(ValidateRequest { height: pp.height, view: pp.view, payload: pp.payload });
        }
        self.check_commit(s);
    }

    fn on_validated(&mut self, height: u64, view: u64, block: Hash32, verdict: Result<(), String>, s: &mut Step<P>) {
        if height != self.height
            || view != self.view
            || self.phase != Phase::Normal
            || self.proposal != Some(block)
            || self.validated
        {
            return;
        }
        if let Err(reason) = verdict {
            // Thesis step 2: an honest node "will not broadcast anything".
            s.faults.push(Fault::InvalidProposal { leader: self.leader(view, height), view, height, reason });
            return;
        }
        self.validated = true;
        if self.can_vote() && !self.sent_prepare {
            self.sent_prepare = true;
            let v = Vote::sign(&self.key, VoteKind::Prepare, &self.set().instance, view, height, block);
            self.prepares.insert((view, self.cfg.me), (block, v.signature));
            // Durable before the vote leaves, so a restart cannot vote again here.
            s.persist = Some(self.durable());
            self.broadcast(s, Message::Prepare(v));
        }
        self.check_prepared(s);
    }

    // ---- steps 3–5: prepare, commit, reply ------------------------------

    fn on_vote(&mut self, from: u32, kind: VoteKind, v: Vote, s: &mut Step<P>) {
        let lo = match kind {
            VoteKind::Prepare => self.view,
            VoteKind::Commit => self.view.saturating_sub(COMMIT_VIEWS_BEHIND),
        };
        if v.view < lo || v.view > self.view.saturating_add(VOTE_VIEWS_AHEAD) {
            return;
        }
        let Some(pk) = self.set().key(from) else {
            return;
        };
        let d = vote_digest(kind, &self.set().instance, v.view, v.height, &v.block);
        if verify(pk, &d, &v.signature).is_err() {
            let what = if kind == VoteKind::Prepare { "prepare" } else { "commit" };
            s.faults.push(Fault::BadSignature { from, what });
            return;
        }
        let store = match kind {
            VoteKind::Prepare => &mut self.prepares,
            VoteKind::Commit => &mut self.commits,
        };
        if let Some((b, _)) = store.get(&(v.view, from)) {
            if *b != v.block {
                let what = if kind == VoteKind::Prepare { "prepare" } else { "commit" };
                s.faults.push(Fault::Equivocation { signer: from, view: v.view, height: v.height, what });
            }
            return;
        }
        store.insert((v.view, from), (v.block, v.signature));
        match kind {
            VoteKind::Prepare => self.check_prepared(s),
            VoteKind::Commit => self.check_commit(s),
        }
    }

    fn votes_for(
        store: &BTreeMap<(u64, u32), (Hash32, Signature)>,
        view: u64,
        block: &Hash32,
    ) -> Vec<(u32, Signature)> {
        store
            .range((view, 0)..=(view, u32::MAX))
            .filter(|(_, (b, _))| b == block)
            .map(|((_, i), (_, sig))| (*i, *sig))
            .collect()
    }

    /// Step 3: a quorum of prepares matching the validated proposal.
    fn check_prepared(&mut self, s: &mut Step<P>) {
        if self.phase != Phase::Normal || !self.validated || self.sent_commit {
            return;
        }
        let Some(block) = self.proposal else { return };
        let prepares = Self::votes_for(&self.prepares, self.view, &block);
        if prepares.len() < self.quorum() {
            return;
        }
        let Some(payload) = self.known.get(&block).cloned() else {
            return;
        };
        self.prepared = Some(PreparedCert { view: self.view, height: self.height, payload, prepares });
        // The slot this replica enters when the block commits in this view
        // (replacing the one declared in an earlier view: nothing was said
        // there unless it is an early pre-prepare's slot, kept on its own),
        // as long as the record stays within its bound.
        let slot = (self.height + 1, self.view);
        self.announced = None;
        let others = self.next_slots();
        if others.len() < MAX_NEXT_SLOTS || others.contains(&slot) {
            self.announced = Some(slot);
        }
        s.persist = Some(self.durable());
        if self.can_vote() {
            self.sent_commit = true;
            let v = Vote::sign(&self.key, VoteKind::Commit, &self.set().instance, self.view, self.height, block);
            self.commits.insert((self.view, self.cfg.me), (block, v.signature));
            self.broadcast(s, Message::Commit(v));
        }
        if self.may_propose_early(self.view) {
            // Pipelined heights: the next leader proposes while this
            // height's commit round runs (the step's record is synced
            // before the caller acts on this).
            s.need_proposal = Some((self.height + 1, self.view));
        }
        self.check_commit(s);
    }

    /// Step 5: a quorum of commits for a known block appends it.
    fn check_commit(&mut self, s: &mut Step<P>) {
        let mut tallies: BTreeMap<(u64, Hash32), usize> = BTreeMap::new();
        for ((view, _), (b, _)) in &self.commits {
            *tallies.entry((*view, *b)).or_default() += 1;
        }
        let q = self.quorum();
        let Some((view, block)) = tallies.into_iter().find(|(_, c)| *c >= q).map(|(k, _)| k) else {
            return;
        };
        let signatures = Self::votes_for(&self.commits, view, &block);
        match self.known.get(&block).cloned() {
            Some(payload) => {
                let cert = QuorumCert { view, height: self.height, block, signatures };
                self.commit(CommittedEntry { payload, cert }, s);
            }
            None => {
                // Decided, but we never saw the block: fetch it with its certificate.
                if let Some((i, _)) = signatures.iter().find(|(i, _)| *i != self.cfg.me) {
                    self.request_catch_up(*i, s);
                }
            }
        }
    }

    fn commit(&mut self, entry: CommittedEntry<P>, s: &mut Step<P>) {
        let entry_block = entry.cert.block;
        // Its leader is alive and leading again.
        self.suspects.remove(&self.leader(entry.cert.view, self.height));
        s.timers.push(TimerCmd::Cancel(Timer { height: self.height, view: self.view }));
        self.last_commit_view = entry.cert.view;
        self.last_block = Some(entry_block);
        self.log.push_back(entry.clone());
        while self.log.len() > self.cfg.retain {
            self.log.pop_front();
        }
        s.committed.push(entry);
        // Garbage-collect everything about the decided height.
        self.height += 1;
        self.view = self.last_commit_view;
        self.phase = Phase::Normal;
        self.proposal = None;
        self.validated = false;
        self.sent_prepare = false;
        self.sent_commit = false;
        self.proposed = false;
        self.known.clear();
        self.pre_prepares.clear();
        self.prepares.clear();
        self.commits.clear();
        self.prepared = None;
        self.view_changes.clear();
        self.new_view_sent = false;
        self.pending_new_view = None;
        self.backoff = 0;
        self.catch_up_asked = None;
        s.need_proposal = None;
        s.persist = Some(self.durable());
        self.arm_timer(s);
        // Early pre-prepares of passed slots are done with.
        let here = (self.height, self.view);
        self.early.retain(|(_, pp)| (pp.height, pp.view) >= here);
        match self.own_early().cloned() {
            // The pipelined proposal for this very slot, built on the
            // block that just committed: it is this replica's proposal.
            Some((parent, pp)) => {
                if parent == entry_block && self.can_vote() {
                    self.proposed = true;
                    self.accept_pre_prepare(self.cfg.me, pp, true, s);
                }
                // Else signed for this slot on another parent: proposing
                // again would equivocate, so this slot gets no proposal
                // from us.
            }
            None => {
                // (A slot a restored record blocks gets no proposal either.)
                if self.leader(self.view, self.height) == self.cfg.me && self.can_vote() {
                    s.need_proposal = Some((self.height, self.view));
                }
            }
        }
    }

    // ---- view update / view change --------------------------------------

    fn reset_view_state(&mut self) {
        self.proposal = None;
        self.validated = false;
        self.sent_prepare = false;
        self.sent_commit = false;
        self.proposed = false;
        self.new_view_sent = false;
        self.pending_new_view = None;
        let lo = self.view.saturating_sub(COMMIT_VIEWS_BEHIND);
        let view = self.view;
        self.prepares.retain(|(v, _), _| *v >= view);
        self.commits.retain(|(v, _), _| *v >= lo);
        let keep = self.prepared.as_ref().map(|c| c.payload.digest());
        let ahead: Vec<Hash32> = self.pre_prepares.range(view..).map(|(_, h)| *h).collect();
        self.known.retain(|h, _| Some(*h) == keep || ahead.contains(h));
        self.pre_prepares.retain(|v, _| *v >= view);
    }

    /// Leaves the current view for `new_view`, broadcasting a view change
    /// that carries our highest prepared certificate.
    fn start_view_change(&mut self, new_view: u64, s: &mut Step<P>) {
        if new_view <= self.view {
            return;
        }
        s.timers.push(TimerCmd::Cancel(Timer { height: self.height, view: self.view }));
        if self.phase == Phase::Normal {
            // Its leader did not get a block committed in time.
            let failed = self.leader(self.view, self.height);
            if failed != self.cfg.me {
                self.suspects.insert(failed);
            }
        }
        self.view = new_view;
        self.phase = Phase::ViewChanging;
        self.reset_view_state();
        let vc = ViewChange::sign(
            &self.key,
            self.cfg.me,
            &self.set().instance,
            new_view,
            self.height,
            self.prepared.clone(),
        );
        self.view_changes.insert(self.cfg.me, vc.clone());
        self.vc_quorum_armed = self.view_change_support(new_view) >= self.quorum();
        s.persist = Some(self.durable());
        s.need_proposal = None;
        self.broadcast(s, Message::ViewChange(vc));
        self.arm_timer(s);
        self.backoff = self.backoff.saturating_add(1);
        self.try_new_view(s);
    }

    /// Validators whose latest view change asks for `view` or later.
    fn view_change_support(&self, view: u64) -> usize {
        self.view_changes.values().filter(|v| v.new_view >= view).count()
    }

    fn on_view_change(&mut self, from: u32, vc: ViewChange<P>, s: &mut Step<P>) {
        if vc.signer != from {
            s.faults.push(Fault::BadSignature { from, what: "view-change signer" });
            return;
        }
        if let Some(old) = self.view_changes.get(&from) {
            if old.new_view >= vc.new_view {
                return;
            }
        }
        if vc.new_view < self.view || (vc.new_view == self.view && self.phase == Phase::Normal) {
            return;
        }
        match vc.verify(self.set()) {
            Ok(()) => {}
            Err(ViewChangeError::BadSignature) => {
                s.faults.push(Fault::BadSignature { from, what: "view-change" });
                return;
            }
            Err(ViewChangeError::Cert(reason)) => {
                s.faults.push(Fault::ForgedCertificate { from, reason });
                return;
            }
        }
        if let Some(c) = &vc.prepared {
            if self.known.len() < MAX_KNOWN_PAYLOADS {
                self.known.insert(c.payload.digest(), c.payload.clone());
            }
        }
        self.view_changes.insert(from, vc);
        if self.phase == Phase::ViewChanging
            && !self.vc_quorum_armed
            && self.view_change_support(self.view) >= self.quorum()
        {
            // A quorum left the old view: the new leader's deadline starts now.
            self.vc_quorum_armed = true;
            s.timers.push(TimerCmd::Cancel(Timer { height: self.height, view: self.view }));
            self.arm_timer(s);
        }
        // f + 1 replicas want a later view: at least one is correct, join it.
        let f = self.set().max_faulty();
        let mut later: Vec<u64> =
            self.view_changes.values().filter(|v| v.new_view > self.view).map(|v| v.new_view).collect();
        if later.len() > f {
            later.sort_unstable_by(|a, b| b.cmp(a));
            let target = later[f];
            self.start_view_change(target, s);
        }
        self.try_new_view(s);
        self.check_commit(s);
    }

    /// As leader of the pending view: with a quorum of view changes, send a
    /// new-view re-proposing the highest prepared block, or ask for a block.
    fn try_new_view(&mut self, s: &mut Step<P>) {
        if self.phase != Phase::ViewChanging
            || self.new_view_sent
            || self.pending_new_view.is_some()
            || self.leader(self.view, self.height) != self.cfg.me
            || !self.can_vote()
        {
            return;
        }
        let vcs: Vec<ViewChange<P>> = self.view_changes.values().filter(|v| v.new_view == self.view).cloned().collect();
        if vcs.len() < self.quorum() {
            return;
        }
        let highest = vcs.iter().filter_map(|v| v.prepared.as_ref()).max_by_key(|c| c.view).cloned();
        // This slot may already hold our early pre-prepare (pipelined
        // heights: signed while the previous height was committing, which
        // then committed in an earlier view): it is the only proposal we
        // may make here, and only when it is the one the view needs.
        let early = self.own_early().cloned();
        match (highest, early) {
            (Some(c), Some((_, pp))) => {
                if pp.payload.digest() == c.payload.digest() {
                    self.send_new_view(vcs, pp, s);
                }
            }
            (Some(c), None) => {
                let pp = PrePrepare::sign(&self.key, &self.set().instance, self.view, self.height, c.payload);
                self.send_new_view(vcs, pp, s);
            }
            (None, Some((parent, pp))) => {
                if Some(parent) == self.last_block {
                    self.send_new_view(vcs, pp, s);
                }
            }
            (None, None) => {
                self.pending_new_view = Some(vcs);
                s.need_proposal = Some((self.height, self.view));
            }
        }
    }

    fn send_new_view(&mut self, vcs: Vec<ViewChange<P>>, pp: PrePrepare<P>, s: &mut Step<P>) {
        self.new_view_sent = true;
        let nv = NewView { view: self.view, height: self.height, view_changes: vcs, pre_prepare: pp.clone() };
        self.broadcast(s, Message::NewView(nv));
        self.enter_view(self.view, s);
        self.proposed = true;
        self.accept_pre_prepare(self.cfg.me, pp, true, s);
    }

    fn enter_view(&mut self, view: u64, s: &mut Step<P>) {
        if self.view != view || self.phase != Phase::Normal {
            s.timers.push(TimerCmd::Cancel(Timer { height: self.height, view: self.view }));
            self.view = view;
            self.phase = Phase::Normal;
            self.reset_view_state();
            self.arm_timer(s);
        }
        self.new_view_sent = self.leader(view, self.height) == self.cfg.me;
        s.persist = Some(self.durable());
    }

    fn on_new_view(&mut self, from: u32, nv: NewView<P>, s: &mut Step<P>) {
        if from != self.leader(nv.view, nv.height) {
            s.faults.push(Fault::WrongLeader { from, view: nv.view, height: nv.height });
            return;
        }
        if nv.view < self.view || (nv.view == self.view && self.phase == Phase::Normal) {
            return;
        }
        let bad = |reason: &'static str| Fault::InvalidNewView { from, reason };
        if nv.pre_prepare.view != nv.view || nv.pre_prepare.height != nv.height {
            s.faults.push(bad("pre-prepare is for another slot"));
            return;
        }
        if !nv.pre_prepare.verify(self.set()) {
            s.faults.push(Fault::BadSignature { from, what: "new-view pre-prepare" });
            return;
        }
        let mut signers = std::collections::BTreeSet::new();
        for vc in &nv.view_changes {
            if vc.new_view != nv.view || vc.height != nv.height {
                s.faults.push(bad("view change for another slot"));
                return;
            }
            if !signers.insert(vc.signer) {
                s.faults.push(bad("duplicate view-change signer"));
                return;
            }
            match vc.verify(self.set()) {
                Ok(()) => {}
                Err(ViewChangeError::BadSignature) => {
                    s.faults.push(bad("view-change signature"));
                    return;
                }
                Err(ViewChangeError::Cert(reason)) => {
                    s.faults.push(Fault::ForgedCertificate { from, reason });
                    return;
                }
            }
        }
        if signers.len() < self.quorum() {
            s.faults.push(bad("fewer than a quorum of view changes"));
            return;
        }
        let highest = nv.view_changes.iter().filter_map(|v| v.prepared.as_ref()).max_by_key(|c| c.view);
        #[cfg(feature = "mutants")]
        let highest = highest.filter(|_| self.cfg.mutation != Some(Mutation::NewViewSkipsHighestPrepared));
        if let Some(c) = highest {
            if c.payload.digest() != nv.pre_prepare.payload.digest() {
                s.faults.push(bad("does not re-propose the highest prepared block"));
                return;
            }
        }
        self.enter_view(nv.view, s);
        self.accept_pre_prepare(from, nv.pre_prepare, false, s);
    }

    // ---- catch-up ---------------------------------------------------------

    fn request_catch_up(&mut self, peer: u32, s: &mut Step<P>) {
        if self.catch_up_asked == Some(self.height) {
            return;
        }
        self.catch_up_asked = Some(self.height);
        s.messages
            .push(Outgoing { to: Target::One(peer), message: Message::CatchUpRequest { from_height: self.height } });
    }

    fn serve_catch_up(&mut self, peer: u32, from_height: u64, s: &mut Step<P>) {
        let entries: Vec<CommittedEntry<P>> =
            self.log.iter().filter(|e| e.cert.height >= from_height).take(self.cfg.catch_up_batch).cloned().collect();
        if !entries.is_empty() {
            s.messages.push(Outgoing { to: Target::One(peer), message: Message::CatchUpResponse { entries } });
        }
    }

    fn on_catch_up(&mut self, from: u32, entries: Vec<CommittedEntry<P>>, s: &mut Step<P>) {
        let full = entries.len() >= self.cfg.catch_up_batch;
        let mut advanced = false;
        for e in entries {
            if e.cert.height < self.height {
                continue;
            }
            if e.cert.height > self.height {
                break;
            }
            if let Err(reason) = e.verify(self.set(), self.height) {
                s.faults.push(Fault::ForgedCertificate { from, reason });
                return;
            }
            self.commit(e, s);
            advanced = true;
        }
        if advanced && full {
            self.request_catch_up(from, s);
        }
    }
}
