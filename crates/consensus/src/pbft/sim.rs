//! The primary chain's PBFT (thesis §3.3.2) under the simulator
//! (`gridledger-sim`, which knows no protocol): the [`gridledger_sim::Protocol`]
//! adapter for the bare replica with a toy block, the Byzantine behaviours
//! (generic over the block type, so `gridledger-node` reuses them against
//! its real validator driver), random scenarios, and the safety, validity
//! and liveness checks.

use super::{
    CommittedEntry, Config, Durable, Fault, Message, NewView, Payload, PrePrepare, PreparedCert, QuorumCert, Replica,
    Step, Target, Timer, TimerCmd, ValidatorSet, ViewChange, Vote, VoteKind,
};
use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Hash32, Signature};
use gridledger_sim::{
    Adversary, Crash, Delay, Dest, Effects, NetConfig, NodeId, Partition, Protocol, Simulation, Time, TimerOp,
};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A transaction the simulated chain refuses to execute.
pub const POISON_TX: u64 = u64::MAX;

/// A block for the simulated chain: linked to its parent, so a fork is
/// visible as two different hashes at one height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimBlock {
    pub height: u64,
    pub parent: Hash32,
    pub proposer: u32,
    pub txs: Vec<u64>,
}

impl Payload for SimBlock {
    fn digest(&self) -> Hash32 {
        hash_tagged(Tag("gridledger/sim-block/v1"), self)
    }
    fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    fn well_formed(&self) -> Result<(), String> {
        if self.txs.len() > 64 {
            return Err("too many transactions".into());
        }
        Ok(())
    }
}

/// What the Byzantine behaviours need to lie with a block type.
pub trait SimPayload: Payload {
    /// A different block for the same slot that still executes (for
    /// equivocation and crafted new-views).
    fn twisted(&self, rng: &mut ChaCha8Rng) -> Self;
    /// A well-formed block that fails execution.
    fn poisoned(&self) -> Self;
    /// A made-up block at `height` (for forged certificates).
    fn forged(height: u64, proposer: u32, rng: &mut ChaCha8Rng) -> Self;
}

impl SimPayload for SimBlock {
    fn twisted(&self, rng: &mut ChaCha8Rng) -> Self {
        let mut t = self.clone();
        t.txs.push(rng.random_range(0..1 << 20));
        t
    }
    fn poisoned(&self) -> Self {
        let mut b = self.clone();
        b.txs.push(POISON_TX);
        b
    }
    fn forged(height: u64, proposer: u32, rng: &mut ChaCha8Rng) -> Self {
        SimBlock { height, parent: Hash32([rng.random(); 32]), proposer, txs: vec![rng.random()] }
    }
}

/// What a PBFT node reports to the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub height: u64,
    pub block: Hash32,
    pub view: u64,
}

/// A node's output as the checker reads it.
pub trait CommitOutput {
    fn committed(&self) -> &Committed;
}

impl CommitOutput for Committed {
    fn committed(&self) -> &Committed {
        self
    }
}

/// A committed block with its payload, for the validity check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided<P> {
    pub committed: Committed,
    pub payload: P,
}

impl<P> CommitOutput for Decided<P> {
    fn committed(&self) -> &Committed {
        &self.committed
    }
}

/// The consensus instance all simulated validators share.
pub const INSTANCE: Hash32 = Hash32([0x5a; 32]);

/// Deterministic validator keys for `n` nodes.
pub fn validator_keys(n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed(&format!("gridledger-sim-validator-{i}"))).collect()
}

/// A validator: the PBFT replica plus a toy chain that builds and checks
/// blocks, persisting its committed log and durable vote state the way the
/// node's driver does: a step whose vote state is covered by the last
/// synced one ([`Durable::covered_by`]) is deferred, and a crash loses
/// every deferred step since the last sync.
pub struct PbftNode {
    replica: Replica<SimBlock>,
    log: Vec<CommittedEntry<SimBlock>>,
    durable: Option<Durable<SimBlock>>,
    /// What survives a crash: the log's synced prefix and the synced vote state.
    synced_len: usize,
    synced: Option<Durable<SimBlock>>,
    /// Blocks reported to the checker (observer state, kept across
    /// restarts): a block lost with deferred writes and committed again
    /// is not reported twice, unless it differs.
    reported: Vec<Hash32>,
}

/// What a [`PbftNode`] persists.
#[derive(Clone, Debug)]
pub struct PbftDisk {
    pub log: Vec<CommittedEntry<SimBlock>>,
    pub durable: Option<Durable<SimBlock>>,
    /// The checker's record of the node's reported blocks (not node state).
    pub reported: Vec<Hash32>,
}

impl PbftNode {
    pub fn new(cfg: Config, key: KeyPair, disk: Option<PbftDisk>) -> Self {
        let (log, durable, reported) = disk.map(|d| (d.log, d.durable, d.reported)).unwrap_or_default();
        let replica = match Replica::restore(cfg, key, &log, durable.clone()) {
            Ok(r) => r,
            Err(e) => panic!("simulator misconfigured: {e}"),
        };
        Self { replica, synced_len: log.len(), synced: durable.clone(), log, durable, reported }
    }

    fn tip(&self) -> Hash32 {
        self.log.last().map_or(Hash32::ZERO, |e| e.cert.block)
    }

    fn validate(&self, height: u64, view: u64, b: &SimBlock) -> Result<(), String> {
        if b.height != height {
            return Err("wrong height".into());
        }
        if b.parent != self.tip() {
            return Err("wrong parent".into());
        }
        // A re-proposed block after a view change keeps its original
        // proposer, so only "some validator" can be checked here; PBFT
        // itself checks who signed the pre-prepare.
        let _ = view;
        if b.proposer as usize >= self.replica.config().validators.len() {
            return Err("unknown proposer".into());
        }
        if b.txs.contains(&POISON_TX) {
            return Err("transaction fails to execute".into());
        }
        Ok(())
    }

    /// An honest leader's block; now and then it has no transactions (an
    /// empty block, which the thesis answers with a view update).
    fn build(&self, height: u64, view: u64) -> SimBlock {
        let me = self.replica.config().me;
        let txs = if height.wrapping_mul(7).wrapping_add(view).is_multiple_of(13) {
            Vec::new()
        } else {
            vec![height, view, me as u64]
        };
        SimBlock { height, parent: self.tip(), proposer: me, txs }
    }

    fn absorb(&mut self, first: Step<SimBlock>) -> Effects<Self> {
        let mut out = Effects::default();
        let mut pending = vec![first];
        while let Some(mut s) = pending.pop() {
            let wrote = s.persist.is_some() || !s.committed.is_empty();
            if let Some(d) = s.persist.take() {
                self.durable = Some(d);
            }
            for e in s.committed.drain(..) {
                let committed = Committed { height: e.cert.height, block: e.cert.block, view: e.cert.view };
                let h = e.cert.height as usize;
                let again = h >= 1 && self.reported.get(h - 1) == Some(&e.cert.block);
                if !again {
                    // A first report, or a block that differs from the one
                    // reported before a crash (the checker sees it twice).
                    out.outputs.push(Decided { committed, payload: e.payload.clone() });
                    self.reported.truncate(h.saturating_sub(1));
                    self.reported.push(e.cert.block);
                }
                self.log.push(e);
            }
            // Sync unless the new vote state is covered by the synced one.
            let covered = match (&self.durable, &self.synced) {
                (Some(d), Some(synced)) => d.covered_by(synced),
                (None, _) => true,
                (Some(_), None) => false,
            };
            if wrote && !covered {
                self.synced_len = self.log.len();
                self.synced = self.durable.clone();
            }
            for o in s.messages.drain(..) {
                let dest = match o.to {
                    Target::All => Dest::All,
                    Target::One(i) => Dest::One(i),
                };
                out.sends.push((dest, o.message));
            }
            for t in s.timers.drain(..) {
                out.timers.push(match t {
                    TimerCmd::Set { timer, after } => TimerOp::Set { timer, after },
                    TimerCmd::Cancel(t) => TimerOp::Cancel(t),
                });
            }
            out.faults.append(&mut s.faults);
            let mut more = Vec::new();
            if let Some((h, v)) = s.need_proposal.take() {
                let b = self.build(h, v);
                more.push(self.replica.propose(h, v, b));
            }
            for r in s.validate.drain(..) {
                let verdict = self.validate(r.height, r.view, &r.payload);
                more.push(self.replica.handle_validated(r.height, r.view, r.payload.digest(), verdict));
            }
            // Keep effects in causal order: later steps after this one.
            more.reverse();
            pending.extend(more);
        }
        out
    }
}

impl Protocol for PbftNode {
    type Message = Message<SimBlock>;
    type Timer = Timer;
    type Output = Decided<SimBlock>;
    type Fault = Fault;
    type Persisted = PbftDisk;

    fn start(&mut self) -> Effects<Self> {
        let s = self.replica.start();
        self.absorb(s)
    }
    fn handle_message(&mut self, from: NodeId, message: Self::Message) -> Effects<Self> {
        let s = self.replica.handle_message(from, message);
        self.absorb(s)
    }
    fn handle_timer(&mut self, timer: Timer) -> Effects<Self> {
        let s = self.replica.handle_timer(timer);
        self.absorb(s)
    }
    /// The disk as a crash leaves it: deferred steps are lost.
    fn persisted(&self) -> PbftDisk {
        PbftDisk {
            log: self.log[..self.synced_len].to_vec(),
            durable: self.synced.clone(),
            reported: self.reported.clone(),
        }
    }
}

// ---- Byzantine behaviours ---------------------------------------------------

/// What a Byzantine validator does (thesis §3.3.2 tolerates `f` of them
/// with `|R_h| >= 2f + 1`, Eq. 3.3). Byzantine validators of one scenario
/// collude: they share what they observe through their own signatures only,
/// but pick the same strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Behaviour {
    /// Different blocks / votes to different peers.
    Equivocate,
    /// Corrupted signatures.
    BadSignatures,
    /// Drops its votes, view changes and new-views.
    Withhold,
    /// Forged prepared certificates in view changes and forged commit
    /// certificates in catch-up responses.
    ForgeCertificates,
    /// Re-sends old messages (its own and others') from earlier views.
    Replay,
    /// Proposes blocks that fail execution.
    InvalidBlocks,
    /// Signs a prepare and a commit for every proposal it sees, so both
    /// sides of an equivocation gather its votes.
    Collude,
    /// As new leader, builds its own new-view from a chosen quorum of the
    /// view changes it saw (those without prepared certificates first) and
    /// proposes a fresh block rather than the highest prepared one.
    CraftNewView,
    /// Replays real certificates it saw earlier: committed entries in
    /// catch-up responses and prepared certificates in its view changes.
    StaleCertificates,
    /// Its commits for blocks it did not craft reach one peer only, so a
    /// commit quorum can form at that peer alone while the others change
    /// view over a prepared block (the set-up a bad new-view exploits).
    SplitCommits,
    /// Its view changes claim it prepared nothing, and it joins view
    /// changes at heights it has already decided (so a quorum can form
    /// without the prepared certificate it holds).
    HidePrepared,
}

pub const ALL_BEHAVIOURS: [Behaviour; 11] = [
    Behaviour::Equivocate,
    Behaviour::BadSignatures,
    Behaviour::Withhold,
    Behaviour::ForgeCertificates,
    Behaviour::Replay,
    Behaviour::InvalidBlocks,
    Behaviour::Collude,
    Behaviour::CraftNewView,
    Behaviour::StaleCertificates,
    Behaviour::SplitCommits,
    Behaviour::HidePrepared,
];

/// A Byzantine validator with its own key (so it can sign lies).
pub struct PbftAdversary<P> {
    me: u32,
    key: KeyPair,
    set: ValidatorSet,
    behaviours: Vec<Behaviour>,
    history: Vec<Message<P>>,
    nodes: usize,
    /// View changes seen, by `(height, new_view)`.
    view_changes: BTreeMap<(u64, u64), BTreeMap<u32, ViewChange<P>>>,
    /// Real certificates seen, for replay.
    stale_entries: Vec<CommittedEntry<P>>,
    stale_prepared: Vec<PreparedCert<P>>,
    /// Proposals it already voted for as a colluder: `(height, view, block)`.
    colluded: std::collections::BTreeSet<(u64, u64, Hash32)>,
    /// Slots `(height, view)` it already crafted a new-view for.
    crafted: std::collections::BTreeSet<(u64, u64)>,
    /// Blocks it made up itself (equivocations, crafted new-views).
    own_blocks: std::collections::BTreeSet<Hash32>,
    /// Which peers got which side of an equivocation.
    block_peers: BTreeMap<Hash32, Vec<u32>>,
    /// Its equivocating pre-prepares, to offer again to a restarted peer.
    own_pre_prepares: Vec<PrePrepare<P>>,
    /// View changes `(height, view)` it joined on its own.
    joined: std::collections::BTreeSet<(u64, u64)>,
}

impl<P: SimPayload> PbftAdversary<P> {
    pub fn new(me: u32, key: KeyPair, set: ValidatorSet, behaviours: Vec<Behaviour>) -> Self {
        let nodes = set.len();
        Self {
            me,
            key,
            set,
            behaviours,
            history: Vec::new(),
            nodes,
            view_changes: BTreeMap::new(),
            stale_entries: Vec::new(),
            stale_prepared: Vec::new(),
            colluded: Default::default(),
            crafted: Default::default(),
            own_blocks: Default::default(),
            block_peers: BTreeMap::new(),
            own_pre_prepares: Vec::new(),
            joined: Default::default(),
        }
    }

    fn has(&self, b: Behaviour) -> bool {
        self.behaviours.contains(&b)
    }

    fn remember(&mut self, m: &Message<P>) {
        if self.history.len() >= 256 {
            self.history.remove(0);
        }
        self.history.push(m.clone());
        match m {
            Message::ViewChange(vc) => {
                if let Some(c) = &vc.prepared {
                    if self.stale_prepared.len() < 64 {
                        self.stale_prepared.push(c.clone());
                    }
                }
                let slot = self.view_changes.entry((vc.height, vc.new_view)).or_default();
                slot.insert(vc.signer, vc.clone());
                while self.view_changes.len() > 16 {
                    self.view_changes.pop_first();
                }
            }
            Message::CatchUpResponse { entries } => {
                for e in entries {
                    if self.stale_entries.len() < 64 {
                        self.stale_entries.push(e.clone());
                    }
                }
            }
            _ => {}
        }
    }

    fn forged_cert(&self, height: u64, view: u64, rng: &mut ChaCha8Rng) -> PreparedCert<P> {
        let payload = P::forged(height, self.me, rng);
        let own = self.key.sign(&payload.digest());
        let prepares = (0..self.set.quorum() as u32).map(|i| (i, own)).collect();
        PreparedCert { view: view.saturating_sub(1), height, payload, prepares }
    }

    /// Votes for a proposal as a colluder: prepare and commit, to everyone.
    fn collude(&mut self, pp: &PrePrepare<P>) -> Vec<(Dest, Message<P>)> {
        let block = pp.payload.digest();
        if !self.colluded.insert((pp.height, pp.view, block)) {
            return Vec::new();
        }
        if self.colluded.len() > 256 {
            self.colluded.pop_first();
        }
        let inst = self.set.instance;
        let p = Vote::sign(&self.key, VoteKind::Prepare, &inst, pp.view, pp.height, block);
        let c = Vote::sign(&self.key, VoteKind::Commit, &inst, pp.view, pp.height, block);
        let mut out = vec![(Dest::All, Message::Prepare(p))];
        out.extend(self.commit_dests(&block).into_iter().map(|d| (d, Message::Commit(c.clone()))));
        out
    }

    /// Where its commit for `block` goes: with split commits, only to the
    /// peers that got that side of an equivocation, or (for blocks it did
    /// not make) to one peer.
    fn commit_dests(&self, block: &Hash32) -> Vec<Dest> {
        if !self.has(Behaviour::SplitCommits) {
            return vec![Dest::All];
        }
        match self.block_peers.get(block) {
            Some(peers) => peers.iter().map(|&p| Dest::One(p)).collect(),
            None if !self.own_blocks.contains(block) => vec![Dest::One((self.me + 1) % self.nodes as u32)],
            None => vec![Dest::All],
        }
    }

    /// A new-view from a chosen quorum of the view changes it saw, with a
    /// fresh block instead of the highest prepared one.
    fn crafted_new_view(&self, nv: &NewView<P>, rng: &mut ChaCha8Rng) -> Option<NewView<P>> {
        let seen = self.view_changes.get(&(nv.height, nv.view))?;
        let mut pool: Vec<&ViewChange<P>> = seen.values().chain(nv.view_changes.iter()).collect();
        pool.sort_by_key(|v| (v.prepared.is_some(), v.signer));
        pool.dedup_by_key(|v| v.signer);
        let chosen: Vec<ViewChange<P>> = pool.into_iter().take(self.set.quorum()).cloned().collect();
        if chosen.len() < self.set.quorum() {
            return None;
        }
        let fresh = nv.pre_prepare.payload.twisted(rng);
        let pp = PrePrepare::sign(&self.key, &self.set.instance, nv.view, nv.height, fresh);
        Some(NewView { view: nv.view, height: nv.height, view_changes: chosen, pre_prepare: pp })
    }

    fn empty_view_change(&self, height: u64, new_view: u64) -> ViewChange<P> {
        ViewChange::sign(&self.key, self.me, &self.set.instance, new_view, height, None)
    }

    /// As leader of `view` at `height`, once a quorum of view changes is
    /// in and one carries a prepared block: a new-view proposing a twisted
    /// copy of it instead (at most once per slot).
    fn new_view_on_its_own(&mut self, height: u64, view: u64, rng: &mut ChaCha8Rng) -> Option<NewView<P>> {
        if self.set.leader(view, height) != self.me || self.crafted.contains(&(height, view)) {
            return None;
        }
        let seen = self.view_changes.get(&(height, view))?;
        if seen.len() < self.set.quorum() {
            return None;
        }
        let prepared = seen.values().filter_map(|v| v.prepared.as_ref()).max_by_key(|c| c.view)?;
        let fresh = prepared.payload.twisted(rng);
        self.own_blocks.insert(fresh.digest());
        let chosen: Vec<ViewChange<P>> = seen.values().take(self.set.quorum()).cloned().collect();
        let pp = PrePrepare::sign(&self.key, &self.set.instance, view, height, fresh);
        self.crafted.insert((height, view));
        Some(NewView { view, height, view_changes: chosen, pre_prepare: pp })
    }

    fn one(&mut self, b: Behaviour, dest: Dest, m: Message<P>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message<P>)> {
        let inst = self.set.instance;
        match (b, m) {
            (Behaviour::Equivocate, Message::PrePrepare(pp)) => {
                let alt = PrePrepare::sign(&self.key, &inst, pp.view, pp.height, pp.payload.twisted(rng));
                self.own_blocks.insert(alt.payload.digest());
                if self.own_pre_prepares.len() >= 16 {
                    self.own_pre_prepares.remove(0);
                }
                self.own_pre_prepares.push(alt.clone());
                self.own_pre_prepares.push(pp.clone());
                let split = self.split(dest, Message::PrePrepare(pp.clone()), Message::PrePrepare(alt.clone()));
                for (d, m) in &split {
                    if let (Dest::One(p), Message::PrePrepare(x)) = (d, m) {
                        self.block_peers.entry(x.payload.digest()).or_default().push(*p);
                    }
                }
                let mut out = Vec::new();
                if self.has(Behaviour::Collude) {
                    out.extend(self.collude(&pp));
                    out.extend(self.collude(&alt));
                }
                out.extend(split);
                out
            }
            (Behaviour::Equivocate, Message::Prepare(v)) => {
                let alt = Vote::sign(&self.key, VoteKind::Prepare, &inst, v.view, v.height, Hash32([rng.random(); 32]));
                self.split(dest, Message::Prepare(v), Message::Prepare(alt))
            }
            (Behaviour::Equivocate, Message::Commit(v)) => {
                let alt = Vote::sign(&self.key, VoteKind::Commit, &inst, v.view, v.height, Hash32([rng.random(); 32]));
                self.split(dest, Message::Commit(v), Message::Commit(alt))
            }
            (Behaviour::BadSignatures, m) => {
                let bad = Signature([rng.random(); 64]);
                let m = match m {
                    Message::PrePrepare(mut p) => {
                        p.signature = bad;
                        Message::PrePrepare(p)
                    }
                    Message::Prepare(mut v) => {
                        v.signature = bad;
                        Message::Prepare(v)
                    }
                    Message::Commit(mut v) => {
                        v.signature = bad;
                        Message::Commit(v)
                    }
                    Message::ViewChange(mut v) => {
                        v.signature = bad;
                        Message::ViewChange(v)
                    }
                    other => other,
                };
                vec![(dest, m)]
            }
            (
                Behaviour::Withhold,
                Message::Prepare(_) | Message::Commit(_) | Message::ViewChange(_) | Message::NewView(_),
            ) => Vec::new(),
            (Behaviour::ForgeCertificates, Message::ViewChange(vc)) => {
                let cert = self.forged_cert(vc.height, vc.new_view, rng);
                let forged = ViewChange::sign(&self.key, self.me, &inst, vc.new_view, vc.height, Some(cert));
                vec![(dest, Message::ViewChange(forged))]
            }
            (Behaviour::ForgeCertificates, m) => {
                let mut out = vec![(dest, m.clone())];
                if let Some(h) = m.height() {
                    // A fake finalised block at the height peers are working on.
                    let cert = self.forged_cert(h, 1, rng);
                    let entry = CommittedEntry {
                        cert: QuorumCert {
                            view: 1,
                            height: h,
                            block: cert.payload.digest(),
                            signatures: cert.prepares,
                        },
                        payload: cert.payload,
                    };
                    out.push((Dest::All, Message::CatchUpResponse { entries: vec![entry] }));
                }
                out
            }
            (Behaviour::Replay, m) => {
                let mut out = vec![(dest, m)];
                if !self.history.is_empty() {
                    let old = self.history[rng.random_range(0..self.history.len())].clone();
                    out.push((Dest::All, old));
                }
                out
            }
            (Behaviour::InvalidBlocks, Message::PrePrepare(pp)) => {
                let p = PrePrepare::sign(&self.key, &inst, pp.view, pp.height, pp.payload.poisoned());
                let mut out = Vec::new();
                if self.has(Behaviour::Collude) {
                    out.extend(self.collude(&p));
                }
                out.push((dest, Message::PrePrepare(p)));
                out
            }
            (Behaviour::SplitCommits, Message::Commit(v)) => {
                self.commit_dests(&v.block).into_iter().map(|d| (d, Message::Commit(v.clone()))).collect()
            }
            (Behaviour::CraftNewView, Message::NewView(nv)) => match self.crafted_new_view(&nv, rng) {
                Some(crafted) => {
                    self.own_blocks.insert(crafted.pre_prepare.payload.digest());
                    let mut out = Vec::new();
                    if self.has(Behaviour::Collude) {
                        out.extend(self.collude(&crafted.pre_prepare));
                    }
                    out.push((dest, Message::NewView(crafted)));
                    out
                }
                None => vec![(dest, Message::NewView(nv))],
            },
            (Behaviour::StaleCertificates, Message::ViewChange(vc)) if !self.stale_prepared.is_empty() => {
                // A real prepared certificate from an earlier view or height.
                let c = self.stale_prepared[rng.random_range(0..self.stale_prepared.len())].clone();
                let stale = ViewChange::sign(&self.key, self.me, &inst, vc.new_view, vc.height, Some(c));
                vec![(dest, Message::ViewChange(stale))]
            }
            (Behaviour::StaleCertificates, m) => {
                let mut out = vec![(dest, m)];
                if !self.stale_entries.is_empty() {
                    let e = self.stale_entries[rng.random_range(0..self.stale_entries.len())].clone();
                    out.push((Dest::All, Message::CatchUpResponse { entries: vec![e] }));
                }
                out
            }
            (_, m) => vec![(dest, m)],
        }
    }

    /// Sends `a` to half the peers and `b` to the other half; the first
    /// peer gets both, so equivocation is also visible to someone.
    fn split(&self, dest: Dest, a: Message<P>, b: Message<P>) -> Vec<(Dest, Message<P>)> {
        match dest {
            Dest::One(_) => vec![(dest, b)],
            Dest::All => {
                let peers: Vec<u32> = (0..self.nodes as u32).filter(|i| *i != self.me).collect();
                let mut out: Vec<_> = peers
                    .iter()
                    .map(|&i| (Dest::One(i), if i.is_multiple_of(2) { a.clone() } else { b.clone() }))
                    .collect();
                // The first peer gets both, so the equivocation is seen,
                // unless the sides are kept apart (split commits).
                if let Some(&first) = peers.first().filter(|_| !self.has(Behaviour::SplitCommits)) {
                    let other = if first.is_multiple_of(2) { b } else { a };
                    out.push((Dest::One(first), other));
                }
                out
            }
        }
    }
}

impl<P: SimPayload, N: Protocol<Message = Message<P>>> Adversary<N> for PbftAdversary<P> {
    fn observe(&mut self, from: NodeId, message: &Message<P>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message<P>)> {
        self.remember(message);
        if let (Message::CatchUpRequest { from_height }, true) = (message, self.has(Behaviour::Equivocate)) {
            // A peer that lags (e.g. just restarted) is offered both sides
            // of its equivocations at that height again.
            return self
                .own_pre_prepares
                .iter()
                .filter(|pp| pp.height == *from_height)
                .map(|pp| (Dest::One(from), Message::PrePrepare(pp.clone())))
                .collect();
        }
        if let (Message::ViewChange(vc), true) = (message, self.has(Behaviour::CraftNewView)) {
            if let Some(nv) = self.new_view_on_its_own(vc.height, vc.new_view, rng) {
                let mut out = Vec::new();
                if self.has(Behaviour::Collude) {
                    out.extend(self.collude(&nv.pre_prepare));
                }
                out.push((Dest::All, Message::NewView(nv)));
                return out;
            }
        }
        if let (Message::ViewChange(vc), true) = (message, self.has(Behaviour::HidePrepared)) {
            // Join any view change, claiming nothing prepared (once per slot).
            if vc.signer != self.me && self.joined.insert((vc.height, vc.new_view)) {
                return vec![(Dest::All, Message::ViewChange(self.empty_view_change(vc.height, vc.new_view)))];
            }
        }
        let pp = match message {
            Message::PrePrepare(pp) => Some(pp),
            Message::NewView(nv) => Some(&nv.pre_prepare),
            _ => None,
        };
        match pp {
            Some(pp) if self.has(Behaviour::Collude) => self.collude(pp),
            _ => Vec::new(),
        }
    }

    fn tamper(&mut self, _now: Time, sends: Vec<(Dest, Message<P>)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message<P>)> {
        let mut out = Vec::new();
        for (dest, m) in sends {
            self.remember(&m);
            let m = match m {
                Message::ViewChange(vc) if self.has(Behaviour::HidePrepared) && vc.prepared.is_some() => {
                    Message::ViewChange(self.empty_view_change(vc.height, vc.new_view))
                }
                m => m,
            };
            if let (Message::Commit(v), true) = (&m, self.has(Behaviour::SplitCommits)) {
                out.extend(self.commit_dests(&v.block).into_iter().map(|d| (d, m.clone())));
                continue;
            }
            let b = self.behaviours[rng.random_range(0..self.behaviours.len())];
            out.extend(self.one(b, dest, m, rng));
        }
        out
    }
}

// ---- scenarios and checks ------------------------------------------------------

/// A crash of `node`'s process at its `sync`-th store commit after time
/// `at` (so between any two writes), the first `tear` unsynced writes of
/// that commit still reaching the disk. Honoured by drivers with a
/// simulated disk (the node's validator driver); the bare replica has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskCrash {
    pub node: NodeId,
    pub at: Time,
    pub sync: u64,
    pub tear: usize,
}

/// A failed store write (an I/O error, as on a full disk) of `node` at its
/// `sync`-th commit after `at`: the driver must halt, reopen and recover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    pub node: NodeId,
    pub at: Time,
    pub sync: u64,
}

/// One randomised run: network chaos before GST, `byzantine` validators
/// with their behaviours, crashes of correct validators (restarted before
/// GST), some of them correlated (`f + 1` at once), disk crashes between
/// two writes and failed writes.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub net: NetConfig,
    pub byzantine: BTreeMap<NodeId, Vec<Behaviour>>,
    pub base_timeout: u64,
    /// Blocks every correct validator must add after GST.
    pub blocks_after_gst: u64,
    /// Every correct validator must also reach this height.
    pub min_height: u64,
    /// Deadline after GST for that.
    pub liveness_window: Time,
    pub disk_crashes: Vec<DiskCrash>,
    pub write_failures: Vec<WriteFailure>,
    /// [`Config::suspect_divisor`] of the bare replicas.
    pub suspect_divisor: u64,
}

impl Scenario {
    /// Draws a scenario for `n` validators from `seed`.
    pub fn random(seed: u64, n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
        let f = (n - 1) / 3;
        let mut ids: Vec<NodeId> = (0..n as NodeId).collect();
        ids.shuffle(&mut rng);
        let nbyz = if rng.random_range(0..4) == 0 { rng.random_range(0..=f) } else { f };
        // Byzantine validators collude: one set of behaviours for all.
        let mut bs: Vec<Behaviour> = ALL_BEHAVIOURS.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
        if bs.is_empty() {
            bs.push(ALL_BEHAVIOURS[rng.random_range(0..ALL_BEHAVIOURS.len())]);
        }
        let byzantine: BTreeMap<NodeId, Vec<Behaviour>> = ids[..nbyz].iter().map(|&id| (id, bs.clone())).collect();
        let correct: Vec<NodeId> = ids[nbyz..].to_vec();
        let links = (0..n)
            .map(|_| {
                (0..n)
                    .map(|_| {
                        let min = rng.random_range(1..20);
                        let max = min + rng.random_range(0..150);
                        if rng.random_range(0..4) == 0 {
                            Delay::Spiky {
                                min,
                                max,
                                spike_per_mille: rng.random_range(10..200),
                                spike: rng.random_range(100..1500),
                            }
                        } else {
                            Delay::Uniform { min, max }
                        }
                    })
                    .collect()
            })
            .collect();
        let gst = rng.random_range(1_000..4_000);
        let mut partitions = Vec::new();
        for _ in 0..rng.random_range(0..3) {
            let from = rng.random_range(0..gst);
            let until = rng.random_range(from..=gst);
            let k = rng.random_range(1..n);
            let mut side = ids.clone();
            side.shuffle(&mut rng);
            side.truncate(k);
            side.sort_unstable();
            partitions.push(Partition { from, until, side });
        }
        let mut crashes = Vec::new();
        for _ in 0..rng.random_range(0..3) {
            let node = correct[rng.random_range(0..correct.len())];
            let at = rng.random_range(0..gst);
            let restart_at = Some(rng.random_range(at + 1..=gst));
            crashes.push(Crash { node, at, restart_at });
        }
        if rng.random_range(0..3) == 0 {
            // Correlated: f + 1 correct validators go down together.
            let at = rng.random_range(0..gst);
            let restart_at = Some(rng.random_range(at + 1..=gst));
            let mut down = correct.clone();
            down.shuffle(&mut rng);
            for &node in down.iter().take(f + 1) {
                crashes.push(Crash { node, at, restart_at });
            }
        }
        let mut disk_crashes = Vec::new();
        for _ in 0..rng.random_range(0..4) {
            let node = correct[rng.random_range(0..correct.len())];
            let at = rng.random_range(0..gst);
            disk_crashes.push(DiskCrash { node, at, sync: rng.random_range(1..4), tear: rng.random_range(0..3) });
        }
        let mut write_failures = Vec::new();
        for _ in 0..rng.random_range(0..3) {
            let node = correct[rng.random_range(0..correct.len())];
            write_failures.push(WriteFailure { node, at: rng.random_range(0..gst), sync: rng.random_range(1..4) });
        }
        let net = NetConfig {
            nodes: n,
            links,
            drop_per_mille: rng.random_range(0..250),
            dup_per_mille: rng.random_range(0..100),
            gst,
            stable_delay: Delay::Uniform { min: 1, max: 30 },
            partitions,
            crashes,
        };
        Self {
            seed,
            net,
            byzantine,
            base_timeout: 200,
            blocks_after_gst: 3,
            min_height: 0,
            liveness_window: 200_000,
            disk_crashes,
            write_failures,
            suspect_divisor: 4,
        }
    }

    /// Builds the simulation of bare replicas with toy blocks (not started).
    pub fn build(&self) -> Simulation<PbftNode> {
        let n = self.net.nodes;
        let keys = validator_keys(n);
        let set = match ValidatorSet::new(INSTANCE, keys.iter().map(|k| k.public()).collect()) {
            Ok(s) => s,
            Err(e) => panic!("simulator misconfigured: {e}"),
        };
        let base = self.base_timeout;
        let divisor = self.suspect_divisor;
        let (set2, keys2) = (set.clone(), keys.clone());
        let mut sim = Simulation::new(self.seed, self.net.clone(), move |id, disk| {
            let mut cfg = Config::new(set2.clone(), id);
            cfg.base_timeout = base;
            cfg.max_backoff_exp = 4;
            cfg.suspect_divisor = divisor;
            PbftNode::new(cfg, keys2[id as usize].clone(), disk)
        });
        self.add_adversaries(&mut sim, &set, &keys);
        sim
    }

    /// Makes the scenario's Byzantine validators Byzantine in `sim`.
    pub fn add_adversaries<P: SimPayload + 'static, N: Protocol<Message = Message<P>>>(
        &self,
        sim: &mut Simulation<N>,
        set: &ValidatorSet,
        keys: &[KeyPair],
    ) {
        for (id, bs) in &self.byzantine {
            sim.set_adversary(
                *id,
                Box::new(PbftAdversary::<P>::new(*id, keys[*id as usize].clone(), set.clone(), bs.clone())),
            );
        }
    }

    pub fn is_correct(&self, id: NodeId) -> bool {
        !self.byzantine.contains_key(&id)
    }
}

/// What a run showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// Highest committed height per node at the end.
    pub heights: Vec<u64>,
    pub events: u64,
    pub end: Time,
    /// Faults correct nodes reported, by kind.
    pub faults: BTreeMap<&'static str, usize>,
    /// Crashes (planned and between writes) and network faults injected.
    pub crashes: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

/// A broken property, with enough to reproduce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Two different blocks committed at one height by correct nodes.
    Fork { seed: u64, height: u64, nodes: (NodeId, NodeId) },
    /// A correct node committed out of order or twice.
    Gap { seed: u64, node: NodeId, expected: u64, got: u64 },
    /// A correct node committed a block that is not a valid successor.
    Invalid { seed: u64, node: NodeId, height: u64, reason: String },
    /// Correct nodes did not commit enough blocks after GST.
    NoLiveness { seed: u64, heights: Vec<u64>, target: u64 },
    /// A correct node was blamed for a fault only a Byzantine node can commit.
    Slander { seed: u64, reporter: NodeId, fault: String },
    /// A correct node restarted without the record of a vote it had sent
    /// (it could vote again differently): persist-then-speak was broken.
    LostVote { seed: u64, node: NodeId, detail: String },
    /// A correct node holds a committed block whose commit certificate
    /// does not prove it (what it serves to lagging peers and light clients).
    BadCertificate { seed: u64, node: NodeId, height: u64, detail: String },
    /// A correct node could not restart from what its own store holds.
    CannotRestart { seed: u64, node: NodeId, detail: String },
}

impl Violation {
    pub fn seed(&self) -> u64 {
        match self {
            Violation::Fork { seed, .. }
            | Violation::Gap { seed, .. }
            | Violation::Invalid { seed, .. }
            | Violation::NoLiveness { seed, .. }
            | Violation::Slander { seed, .. }
            | Violation::LostVote { seed, .. }
            | Violation::BadCertificate { seed, .. }
            | Violation::CannotRestart { seed, .. } => *seed,
        }
    }
}

fn fault_kind(f: &Fault) -> (&'static str, Option<u32>) {
    match f {
        Fault::UnknownSender { from } => ("unknown-sender", Some(*from)),
        Fault::Malformed { from } => ("malformed", Some(*from)),
        Fault::BadSignature { from, .. } => ("bad-signature", Some(*from)),
        Fault::WrongLeader { from, .. } => ("wrong-leader", Some(*from)),
        Fault::Equivocation { signer, .. } => ("equivocation", Some(*signer)),
        Fault::ForgedCertificate { from, .. } => ("forged-certificate", Some(*from)),
        Fault::InvalidNewView { from, .. } => ("invalid-new-view", Some(*from)),
        Fault::InvalidProposal { leader, .. } => ("invalid-proposal", Some(*leader)),
        // Replays and late messages look alike before GST.
        Fault::StaleView { .. } => ("stale-view", None),
    }
}

/// Runs `scenario` on bare replicas and checks it (see [`check_run`]); a
/// committed toy block is valid when it extends the agreed parent and
/// holds no poisoned transaction.
pub fn run(scenario: &Scenario) -> Result<RunReport, Violation> {
    let mut sim = scenario.build();
    run_built(scenario, &mut sim)
}

/// [`run`] on a simulation the caller built (e.g. with a trace recorder).
pub fn run_built(scenario: &Scenario, sim: &mut Simulation<PbftNode>) -> Result<RunReport, Violation> {
    let mut parent = Hash32::ZERO;
    check_run(
        scenario,
        sim,
        |_| None,
        |_, d: &Decided<SimBlock>| {
            if d.payload.txs.contains(&POISON_TX) {
                return Err("holds a transaction that fails to execute".into());
            }
            if d.payload.parent != parent {
                return Err("does not extend the agreed parent".into());
            }
            parent = d.committed.block;
            Ok(())
        },
    )
}

/// Runs a started-or-not simulation of `scenario` and checks safety (no
/// fork, ever, on correct nodes), validity (`valid` accepts each agreed
/// block, called once per height in height order), liveness (after GST
/// every correct node commits `blocks_after_gst` more blocks than the best
/// correct node had at GST, and reaches `min_height`), and that faults are
/// only ever blamed on Byzantine nodes.
///
/// `audit` reports node-local invariant breaches of correct nodes (e.g. a
/// restarted node that lost the record of a vote it sent, a stored
/// certificate that does not verify) as violations.
pub fn check_run<N>(
    scenario: &Scenario,
    sim: &mut Simulation<N>,
    mut audit: impl FnMut(&Simulation<N>) -> Option<Violation>,
    mut valid: impl FnMut(&Simulation<N>, &N::Output) -> Result<(), String>,
) -> Result<RunReport, Violation>
where
    N: Protocol<Fault = Fault>,
    N::Output: CommitOutput,
{
    let seed = scenario.seed;
    let n = scenario.net.nodes;
    sim.start();
    let mut chain: BTreeMap<u64, (Hash32, NodeId)> = BTreeMap::new();
    let mut heights = vec![0u64; n];
    let mut seen_outputs = 0;
    let mut seen_faults = 0;
    let mut faults: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut violation = None;
    let mut check = |sim: &Simulation<N>, heights: &mut Vec<u64>| -> Option<Violation> {
        if let Some(v) = audit(sim) {
            return Some(v);
        }
        for (_, node, out) in &sim.outputs[seen_outputs..] {
            let node = *node;
            let c = out.committed();
            if !scenario.is_correct(node) {
                heights[node as usize] = c.height;
                continue;
            }
            let expected = heights[node as usize] + 1;
            if c.height != expected {
                return Some(Violation::Gap { seed, node, expected, got: c.height });
            }
            heights[node as usize] = c.height;
            match chain.get(&c.height) {
                Some((b, other)) if *b != c.block => {
                    return Some(Violation::Fork { seed, height: c.height, nodes: (*other, node) })
                }
                Some(_) => {}
                None => {
                    if let Err(reason) = valid(sim, out) {
                        return Some(Violation::Invalid { seed, node, height: c.height, reason });
                    }
                    chain.insert(c.height, (c.block, node));
                }
            }
        }
        seen_outputs = sim.outputs.len();
        for (_, reporter, f) in &sim.faults[seen_faults..] {
            if !scenario.is_correct(*reporter) {
                continue;
            }
            let (kind, blamed) = fault_kind(f);
            *faults.entry(kind).or_default() += 1;
            if let Some(b) = blamed {
                if scenario.is_correct(b) {
                    return Some(Violation::Slander { seed, reporter: *reporter, fault: format!("{f:?}") });
                }
            }
        }
        seen_faults = sim.faults.len();
        None
    };
    let gst = scenario.net.gst;
    let mut checked = 0;
    while sim.next_time().is_some_and(|t| t <= gst) {
        sim.step();
        if sim.outputs.len() != checked {
            checked = sim.outputs.len();
            if let Some(v) = check(sim, &mut heights) {
                return Err(v);
            }
        }
    }
    if let Some(v) = check(sim, &mut heights) {
        return Err(v);
    }
    let correct: Vec<NodeId> = (0..n as NodeId).filter(|i| scenario.is_correct(*i)).collect();
    let best = correct.iter().map(|i| heights[*i as usize]).max().unwrap_or(0);
    let target = (best + scenario.blocks_after_gst).max(scenario.min_height);
    let deadline = gst + scenario.liveness_window;
    let mut steps_since_check = 0u32;
    let mut last_outputs = sim.outputs.len();
    while sim.now() <= deadline && sim.step() {
        steps_since_check += 1;
        if steps_since_check >= 64 || sim.outputs.len() != last_outputs {
            steps_since_check = 0;
            last_outputs = sim.outputs.len();
            if let Some(v) = check(sim, &mut heights) {
                violation = Some(v);
                break;
            }
            if correct.iter().all(|i| heights[*i as usize] >= target) {
                break;
            }
        }
    }
    if let Some(v) = violation.or_else(|| check(sim, &mut heights)) {
        return Err(v);
    }
    if !correct.iter().all(|i| heights[*i as usize] >= target) {
        return Err(Violation::NoLiveness { seed, heights, target });
    }
    Ok(RunReport {
        heights,
        events: sim.stats.delivered + sim.stats.timers_fired,
        end: sim.now(),
        faults,
        crashes: sim.stats.crashes,
        dropped: sim.stats.dropped,
        duplicated: sim.stats.duplicated,
    })
}
