//! The LBFT replica under the simulator (`gridledger-sim`): the
//! [`Protocol`] adapter with a FIFO batch source and its disk, Byzantine
//! behaviours, random scenarios and the safety and liveness checks. The
//! same [`Replica`] code runs in the node.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::encode;
use gridledger_core::Hash32;
use gridledger_sim::{
    Adversary, Crash, Delay, Dest, Effects, NetConfig, NodeId, Partition, Protocol, Simulation, Time, TimerOp,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::batch::{tx_id, FifoPolicy, Tx};
use super::crypto::{KeyUse, NodeCrypto, SimCrypto, ThresholdCrypto};
use super::messages::{echo_statement, AbaVote, Message};
use super::replica::{Config, Delivery, Durable, Fault, Replica, Step, Target, Tick};
use super::txm::BatchSource;

/// The chain instance every simulated replica shares.
pub const INSTANCE: Hash32 = Hash32([0x1b; 32]);

/// A simulated client transaction: who submitted it first, a counter and
/// filler, so transactions are distinct and their origin is checkable.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimTx {
    pub origin: u32,
    pub counter: u64,
}

impl SimTx {
    pub fn bytes(&self) -> Tx {
        encode(self)
    }

    pub fn parse(tx: &[u8]) -> Option<SimTx> {
        borsh::from_slice(tx).ok()
    }
}

/// The replica plus its batch source and disk.
pub struct LbftNode<C: ThresholdCrypto> {
    replica: Replica<C>,
    policy: FifoPolicy,
    disk: Durable<C::Sig>,
    /// Proposes no batch for this epoch or later (ends a run).
    stop_epoch: u64,
    /// Where what this replica says is recorded, across its restarts.
    said: Option<Arc<Mutex<SaidLog>>>,
    /// When this replica dies in a sync window (see [`SyncDeaths`]).
    deaths: Option<Arc<Mutex<SyncDeaths>>>,
    /// It died during the last call.
    dead: bool,
}

/// Deaths in the sync window: a replica whose driver sends the messages
/// that commit it to nothing new ([`Replica::must_sync_before_sending`])
/// at once and the rest only once the step's writes are durable (as the
/// bench replica does) can die after the first left and before the
/// writes are durable. `at[node]` lists, by count of that node's steps
/// with writes over the whole run (across its restarts), the steps in
/// which it dies so: only the step's free messages leave, its writes,
/// other messages and deliveries are lost, and the simulator restarts it
/// from what was durable before.
#[derive(Debug, Default)]
pub struct SyncDeaths {
    pub at: BTreeMap<u32, BTreeSet<u64>>,
    /// Steps with writes so far, per node.
    counted: BTreeMap<u32, u64>,
    /// Deaths so far, per node.
    pub died: BTreeMap<u32, u64>,
}

impl SyncDeaths {
    /// Counts a step with writes of `node`; `true` if it dies in it.
    fn dies(&mut self, node: u32) -> bool {
        let k = self.counted.entry(node).or_insert(0);
        *k += 1;
        let dies = self.at.get(&node).is_some_and(|at| at.contains(k));
        if dies {
            *self.died.entry(node).or_insert(0) += 1;
        }
        dies
    }
}

/// A slot in which a correct replica says one thing only, ever: its batch
/// of an epoch, its echo of a proposer's batch, its `Aux` and `Conf` of an
/// agreement round, its `Term` of an agreement — and, from round 1 on, its
/// `BVal` beyond a relay ([`Slot::BVal`]). Coin shares are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Val {
        epoch: u64,
    },
    Echo {
        epoch: u64,
        proposer: u32,
    },
    Aux {
        epoch: u64,
        instance: u32,
        round: u32,
    },
    Conf {
        epoch: u64,
        instance: u32,
        round: u32,
    },
    Term {
        epoch: u64,
        instance: u32,
    },
    /// A second `BVal` value in round `round ≥ 1` that fewer than `f + 1`
    /// others had said to this replica (in `BVal` of that round or a
    /// `Term`): from round 1 on a correct replica's first `BVal` is its
    /// estimate and any other one a relay of `f + 1` — a late input adding
    /// a value beside the estimate breaks agreement.
    BVal {
        epoch: u64,
        instance: u32,
        round: u32,
    },
}

/// What each replica said in each [`Slot`], kept across crashes (a
/// restarted replica that echoes or votes again must say the same), and
/// every slot in which one said two different things.
#[derive(Debug, Default)]
pub struct SaidLog {
    said: BTreeMap<(u32, Slot), Hash32>,
    /// `f`, for the relay rule of [`Slot::BVal`].
    f: usize,
    /// `BVal` values said per `(replica, epoch, agreement, round)`, as a
    /// two-bit set.
    bvals: BTreeMap<(u32, u64, u32, u32), u8>,
    /// Senders of `BVal(value)` in a round that reached a replica:
    /// `(replica, epoch, agreement, round, value)` → senders.
    heard: BTreeMap<(u32, u64, u32, u32, bool), BTreeSet<u32>>,
    /// Senders of `Term(value)` that reached a replica (they count as
    /// `BVal(value)` in every round): `(replica, epoch, agreement, value)`.
    heard_terms: BTreeMap<(u32, u64, u32, bool), BTreeSet<u32>>,
    /// `(replica, slot)` said twice differently.
    pub twice: Vec<(u32, Slot)>,
}

impl SaidLog {
    /// A log for `n` replicas.
    pub fn new(n: usize) -> Self {
        Self { f: n.saturating_sub(1) / 3, ..Self::default() }
    }

    /// Records `m`, from replica `from`, reaching replica `me` (for the
    /// relay rule of [`Slot::BVal`]; kept across `me`'s restarts, which
    /// only makes the rule more lenient).
    pub fn received<S, G>(&mut self, me: u32, from: u32, m: &Message<S, G>) {
        if let Message::Aba { epoch, instance, round, vote } = m {
            match vote {
                AbaVote::BVal(b) => {
                    self.heard.entry((me, *epoch, *instance, *round, *b)).or_default().insert(from);
                }
                AbaVote::Term(b) => {
                    self.heard_terms.entry((me, *epoch, *instance, *b)).or_default().insert(from);
                }
                _ => {}
            }
        }
    }

    /// A `BVal(b)` of replica `me` in `round ≥ 1`: a second value needs
    /// `f + 1` others behind it.
    fn record_bval(&mut self, me: u32, epoch: u64, instance: u32, round: u32, b: bool) {
        let bits = self.bvals.entry((me, epoch, instance, round)).or_default();
        let this = if b { 2 } else { 1 };
        let first = *bits == 0;
        if *bits & this != 0 {
            return;
        }
        *bits |= this;
        if first || round == 0 {
            // Round 0: an input may follow a relay (both are allowed).
            return;
        }
        let mut backers: BTreeSet<u32> = self.heard.get(&(me, epoch, instance, round, b)).cloned().unwrap_or_default();
        backers.extend(self.heard_terms.get(&(me, epoch, instance, b)).into_iter().flatten().copied());
        backers.remove(&me);
        if backers.len() <= self.f {
            self.twice.push((me, Slot::BVal { epoch, instance, round }));
        }
    }

    /// Records `m`, sent by replica `me`.
    pub fn record<S, G>(&mut self, me: u32, m: &Message<S, G>) {
        if let Message::Aba { epoch, instance, round, vote: AbaVote::BVal(b) } = m {
            self.record_bval(me, *epoch, *instance, *round, *b);
            return;
        }
        let (slot, value) = match m {
            Message::Val { epoch, batch } => (Slot::Val { epoch: *epoch }, batch.digest(&INSTANCE, *epoch, me)),
            Message::Echo { epoch, proposer, digest, .. } => {
                (Slot::Echo { epoch: *epoch, proposer: *proposer }, *digest)
            }
            Message::Aba { epoch, instance, round, vote } => {
                let (epoch, instance, round) = (*epoch, *instance, *round);
                match vote {
                    AbaVote::Aux(b) => (Slot::Aux { epoch, instance, round }, Hash32([u8::from(*b); 32])),
                    AbaVote::Conf(c) => (Slot::Conf { epoch, instance, round }, Hash32([*c; 32])),
                    AbaVote::Term(b) => (Slot::Term { epoch, instance }, Hash32([u8::from(*b); 32])),
                    AbaVote::BVal(_) | AbaVote::Coin(_) => return,
                }
            }
            _ => return,
        };
        match self.said.get(&(me, slot)) {
            Some(v) if *v != value => self.twice.push((me, slot)),
            Some(_) => {}
            None => {
                self.said.insert((me, slot), value);
            }
        }
    }
}

/// What a simulated node reports: its deliveries.
pub type SimOutput = Delivery;

impl<C: ThresholdCrypto> LbftNode<C> {
    /// `workload` is queued in its policy at every (re)start; already
    /// delivered transactions are dropped again on delivery, and duplicates
    /// are removed by the replica.
    pub fn new(
        cfg: Config,
        crypto: C,
        disk: Option<Durable<C::Sig>>,
        workload: &[Tx],
        batch_size: usize,
        stop_epoch: u64,
    ) -> Self {
        let disk = disk.unwrap_or_default();
        let replica = Replica::new(cfg, crypto, disk.clone());
        let mut policy = FifoPolicy::new(batch_size, 10_000);
        for tx in workload {
            policy.submit(tx.clone());
        }
        // Drop what this replica already delivered before a restart.
        for d in &disk.delivered {
            let txs: Vec<Tx> = d.batches.iter().flat_map(|b| b.batch.txs.iter().cloned()).collect();
            policy.delivered(d.epoch, d.block_hash(), &txs);
        }
        Self { replica, policy, disk, stop_epoch, said: None, deaths: None, dead: false }
    }

    /// Dies in sync windows as `deaths` says (see [`SyncDeaths`]).
    pub fn with_sync_deaths(mut self, deaths: Arc<Mutex<SyncDeaths>>) -> Self {
        self.deaths = Some(deaths);
        self
    }

    /// Records what this replica says in `log` (see [`SaidLog`]).
    pub fn with_said_log(mut self, log: Arc<Mutex<SaidLog>>) -> Self {
        self.said = Some(log);
        self
    }

    pub fn replica(&self) -> &Replica<C> {
        &self.replica
    }

    /// What this replica wrote to its disk.
    pub fn durable(&self) -> &Durable<C::Sig> {
        &self.disk
    }

    fn absorb(&mut self, first: Step<C::Share, C::Sig>) -> Effects<Self> {
        let mut out = Effects::default();
        let mut pending = vec![first];
        while let Some(mut s) = pending.pop() {
            let me = self.replica.config().me;
            let dies = !s.persist.is_empty()
                && self.deaths.as_ref().is_some_and(|d| d.lock().unwrap_or_else(|p| p.into_inner()).dies(me));
            if dies {
                // The free messages left, then the process died before the
                // step's writes were durable: nothing else of this step (or
                // of the steps after it) happens.
                s.messages.retain(|(_, m)| !self.replica.must_sync_before_sending(m));
                if let Some(log) = &self.said {
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    for (_, m) in &s.messages {
                        log.record(me, m);
                    }
                }
                for (to, m) in s.messages.drain(..) {
                    let dest = match to {
                        Target::All => Dest::All,
                        Target::One(i) => Dest::One(i),
                    };
                    out.sends.push((dest, m));
                }
                self.dead = true;
                return out;
            }
            // Persist first (one transaction), then speak.
            for op in &s.persist {
                self.disk.apply(op);
            }
            for d in s.delivered.drain(..) {
                self.policy.delivered_ids(&d.ids);
                out.outputs.push(d);
            }
            if let Some(log) = &self.said {
                let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                for (_, m) in &s.messages {
                    log.record(self.replica.config().me, m);
                }
            }
            for (to, m) in s.messages.drain(..) {
                let dest = match to {
                    Target::All => Dest::All,
                    Target::One(i) => Dest::One(i),
                };
                out.sends.push((dest, m));
            }
            if let Some(after) = s.tick_after {
                out.timers.push(TimerOp::Cancel(Tick));
                out.timers.push(TimerOp::Set { timer: Tick, after });
            }
            out.faults.append(&mut s.faults);
            if let Some(e) = s.need_batch.take() {
                if e < self.stop_epoch {
                    let batch = self.policy.next_txs(e);
                    pending.push(self.replica.propose_txs_at(e, batch, 0));
                }
            }
        }
        out
    }
}

impl<C: ThresholdCrypto> Protocol for LbftNode<C> {
    type Message = Message<C::Share, C::Sig>;
    type Timer = Tick;
    type Output = SimOutput;
    type Fault = Fault;
    type Persisted = Durable<C::Sig>;

    fn start(&mut self) -> Effects<Self> {
        let s = self.replica.start();
        self.absorb(s)
    }

    fn handle_message(&mut self, from: NodeId, message: Self::Message) -> Effects<Self> {
        if let Some(log) = &self.said {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            log.received(self.replica.config().me, from, &message);
        }
        let s = self.replica.handle_message(from, message);
        self.absorb(s)
    }

    fn handle_timer(&mut self, _timer: Tick) -> Effects<Self> {
        let s = self.replica.handle_tick();
        self.absorb(s)
    }

    fn persisted(&self) -> Durable<C::Sig> {
        self.disk.clone()
    }

    fn crashed(&self) -> bool {
        self.dead
    }
}

// ---- Byzantine behaviours ---------------------------------------------------

/// What a Byzantine replica does with the honest code's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Behaviour {
    /// Sends nothing at all.
    Silent,
    /// Different batches to different replicas (and, where the scheme lets
    /// it, a made-up certificate for the second one).
    Equivocate,
    /// Echo and coin shares on the wrong statement.
    BadShares,
    /// Random agreement votes (flipped values, bogus `Conf` sets and
    /// `Term`s).
    FlipVotes,
    /// Answers every sync request with a made-up delivered epoch.
    LieInSync,
    /// Sends the true delivered epochs in its sync answers, with their
    /// certificates rotated between the batches: the true decision and
    /// batches, each certificate a valid signature on another statement.
    /// A replica that adopts such a record unchecked stores and serves
    /// certificates that do not verify.
    ForgeSyncCertificates,
    /// With [`Behaviour::Equivocate`]: no made-up certificate; the second
    /// batch goes to the same half of the peers every time, this replica
    /// echoes it itself, combines the echoes it gets back into a real
    /// certificate where the scheme lets it and sends that half only, and
    /// its first batch's certificate goes to the other half only. Where a
    /// certificate needs fewer than `n − f` echoes (`2f + 1` with `n = 5`)
    /// both batches are certified and the correct replicas fork. Never
    /// drawn by [`scenario`]; the `n = 5` and `n = 6` sweeps add it.
    CertifyBoth,
}

/// Messages an adversary sends, with where they go.
type Sends<C> = Vec<(Dest, Message<<C as ThresholdCrypto>::Share, <C as ThresholdCrypto>::Sig>)>;

/// [`Behaviour::CertifyBoth`]'s second batch of one epoch.
struct Twisted<S> {
    digest: Hash32,
    /// The peers it goes to.
    side: Vec<u32>,
    echoes: Vec<(u32, S)>,
    certified: bool,
}

/// The behaviours a random scenario draws from (each with probability
/// 0.4); [`Behaviour::ForgeSyncCertificates`] is drawn too, after every
/// other draw of the scenario (so the other draws of a seed stay what they
/// were).
pub const ALL_BEHAVIOURS: [Behaviour; 5] =
    [Behaviour::Silent, Behaviour::Equivocate, Behaviour::BadShares, Behaviour::FlipVotes, Behaviour::LieInSync];

/// Makes an invalid certificate for the equivocation attack.
pub type Forger<C> = Arc<dyn Fn(&[u8]) -> <C as ThresholdCrypto>::Sig + Send + Sync>;

/// A Byzantine replica with its own key shares.
pub struct LbftAdversary<C: ThresholdCrypto> {
    me: u32,
    n: usize,
    crypto: C,
    behaviours: Vec<Behaviour>,
    forge: Option<Forger<C>>,
    twisted: BTreeMap<u64, Twisted<C::Share>>,
}

impl<C: ThresholdCrypto> LbftAdversary<C> {
    pub fn new(me: u32, n: usize, crypto: C, behaviours: Vec<Behaviour>, forge: Option<Forger<C>>) -> Self {
        Self { me, n, crypto, behaviours, forge, twisted: BTreeMap::new() }
    }

    /// [`Behaviour::CertifyBoth`]: an echo of the second batch; the
    /// certificate for its side once the echoes combine into one.
    fn echo_of_twisted(&mut self, from: u32, epoch: u64, digest: &Hash32, share: &C::Share) -> Sends<C> {
        let me = self.me;
        let Some(t) = self.twisted.get_mut(&epoch) else { return Vec::new() };
        if t.digest != *digest || t.certified || t.echoes.iter().any(|(i, _)| *i == from) {
            return Vec::new();
        }
        t.echoes.push((from, share.clone()));
        let stmt = echo_statement(&INSTANCE, epoch, me, digest);
        let Some(sig) = self.crypto.combine(KeyUse::Cert, &stmt, &t.echoes) else { return Vec::new() };
        if !self.crypto.verify(KeyUse::Cert, &stmt, &sig) {
            return Vec::new();
        }
        t.certified = true;
        t.side
            .iter()
            .map(|&p| (Dest::One(p), Message::Cert { epoch, proposer: me, digest: *digest, sig: sig.clone() }))
            .collect()
    }

    fn has(&self, b: Behaviour) -> bool {
        self.behaviours.contains(&b)
    }
}

impl<C: ThresholdCrypto> Adversary<LbftNode<C>> for LbftAdversary<C> {
    fn observe(
        &mut self,
        from: NodeId,
        message: &Message<C::Share, C::Sig>,
        _rng: &mut ChaCha8Rng,
    ) -> Vec<(Dest, Message<C::Share, C::Sig>)> {
        if let Message::Echo { epoch, proposer, digest, share } = message {
            if *proposer == self.me && self.has(Behaviour::CertifyBoth) && !self.has(Behaviour::Silent) {
                return self.echo_of_twisted(from, *epoch, digest, share);
            }
            return Vec::new();
        }
        let (Message::SyncRequest { next }, true, false, Some(forge)) =
            (message, self.has(Behaviour::LieInSync), self.has(Behaviour::Silent), &self.forge)
        else {
            return Vec::new();
        };
        // A made-up epoch: one batch of its own, consistent with its digest.
        let epoch = *next;
        let batch = super::messages::Batch::new(vec![SimTx { origin: self.me, counter: 2 << 40 | epoch }.bytes()]);
        let digest = batch.digest(&INSTANCE, epoch, self.me);
        let sig = forge(&echo_statement(&INSTANCE, epoch, self.me, &digest));
        let delivered = super::messages::DeliveredEpoch {
            epoch,
            batches: vec![super::messages::CertifiedBatch { proposer: self.me, digest, sig, batch }],
        };
        vec![(Dest::One(from), Message::Sync { delivered })]
    }

    fn tamper(
        &mut self,
        _now: Time,
        sends: Vec<(Dest, Message<C::Share, C::Sig>)>,
        rng: &mut ChaCha8Rng,
    ) -> Vec<(Dest, Message<C::Share, C::Sig>)> {
        if self.has(Behaviour::Silent) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (dest, m) in sends {
            match m {
                Message::Val { epoch, batch } if self.has(Behaviour::Equivocate) => {
                    let mut twisted = batch.clone();
                    twisted.txs.make_mut().push(SimTx { origin: self.me, counter: 1 << 40 | epoch }.bytes());
                    let digest = twisted.digest(&INSTANCE, epoch, self.me);
                    let certify = self.has(Behaviour::CertifyBoth);
                    let mut peers: Vec<u32> = (0..self.n as u32).filter(|&i| i != self.me).collect();
                    let half = peers.len() / 2;
                    match self.twisted.get(&epoch) {
                        // The same side as before: its peers first.
                        Some(t) if certify => peers.sort_by_key(|p| !t.side.contains(p)),
                        _ => peers.shuffle(rng),
                    }
                    if certify && !self.twisted.contains_key(&epoch) {
                        let stmt = echo_statement(&INSTANCE, epoch, self.me, &digest);
                        let own = self.crypto.sign_share(KeyUse::Cert, &stmt);
                        self.twisted.insert(
                            epoch,
                            Twisted {
                                digest,
                                side: peers[..half].to_vec(),
                                echoes: vec![(self.me, own)],
                                certified: false,
                            },
                        );
                    }
                    for (k, p) in peers.into_iter().enumerate() {
                        if k < half {
                            out.push((Dest::One(p), Message::Val { epoch, batch: twisted.clone() }));
                            if let (Some(forge), false) = (&self.forge, certify) {
                                let sig = forge(&echo_statement(&INSTANCE, epoch, self.me, &digest));
                                out.push((Dest::One(p), Message::Cert { epoch, proposer: self.me, digest, sig }));
                            }
                        } else {
                            out.push((Dest::One(p), Message::Val { epoch, batch: batch.clone() }));
                        }
                    }
                    let _ = dest;
                }
                Message::Cert { epoch, proposer, digest, sig }
                    if proposer == self.me && self.has(Behaviour::CertifyBoth) && self.twisted.contains_key(&epoch) =>
                {
                    // The first batch's certificate: the other side only.
                    let side = self.twisted.get(&epoch).map(|t| t.side.clone()).unwrap_or_default();
                    let to: Vec<u32> = match dest {
                        Dest::All => (0..self.n as u32).filter(|&p| p != self.me).collect(),
                        Dest::One(p) => vec![p],
                    };
                    for p in to.into_iter().filter(|p| !side.contains(p)) {
                        out.push((Dest::One(p), Message::Cert { epoch, proposer, digest, sig: sig.clone() }));
                    }
                }
                Message::Echo { epoch, proposer, digest, .. } if self.has(Behaviour::BadShares) => {
                    let share = self.crypto.sign_share(KeyUse::Cert, b"not the echo statement");
                    out.push((dest, Message::Echo { epoch, proposer, digest, share }));
                }
                Message::Aba { epoch, instance, round, vote: AbaVote::Coin(_) } if self.has(Behaviour::BadShares) => {
                    let share = self.crypto.sign_share(KeyUse::Coin, b"not the coin statement");
                    out.push((dest, Message::Aba { epoch, instance, round, vote: AbaVote::Coin(share) }));
                }
                Message::Aba { epoch, instance, round, vote } if self.has(Behaviour::FlipVotes) => {
                    let vote = match vote {
                        AbaVote::BVal(_) => AbaVote::BVal(rng.random()),
                        AbaVote::Aux(_) => AbaVote::Aux(rng.random()),
                        AbaVote::Conf(_) => AbaVote::Conf(rng.random_range(0..=4)),
                        AbaVote::Term(_) => AbaVote::Term(rng.random()),
                        coin => coin,
                    };
                    // Different lies to different peers.
                    for p in (0..self.n as u32).filter(|&i| i != self.me) {
                        let v = if rng.random_bool(0.5) { vote.clone() } else { flip(&vote) };
                        out.push((Dest::One(p), Message::Aba { epoch, instance, round, vote: v }));
                    }
                }
                Message::Sync { mut delivered } if self.has(Behaviour::ForgeSyncCertificates) => {
                    let k = delivered.batches.len();
                    if k > 1 {
                        let first = delivered.batches[0].sig.clone();
                        for i in 0..k - 1 {
                            delivered.batches[i].sig = delivered.batches[i + 1].sig.clone();
                        }
                        delivered.batches[k - 1].sig = first;
                    }
                    out.push((dest, Message::Sync { delivered }));
                }
                m => out.push((dest, m)),
            }
        }
        out
    }
}

fn flip<S: Clone>(v: &AbaVote<S>) -> AbaVote<S> {
    match v {
        AbaVote::BVal(b) => AbaVote::BVal(!b),
        AbaVote::Aux(b) => AbaVote::Aux(!b),
        AbaVote::Conf(s) => AbaVote::Conf(3 - (s & 3)),
        AbaVote::Term(b) => AbaVote::Term(!b),
        other => other.clone(),
    }
}

// ---- Scenarios and checks ----------------------------------------------------

/// Which threshold scheme a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchemeKind {
    /// The hash stand-in (fast sweeps).
    Sim,
    /// The nodes' scheme, [`NodeCrypto`] (Ed25519 multi-signature
    /// certificates, BLS12-381 threshold coin; slower: a few seeds per run).
    Node,
}

/// One random run's plan.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub n: usize,
    pub net: NetConfig,
    pub byzantine: BTreeMap<u32, Vec<Behaviour>>,
    /// Correct replicas that crash (and restart) during the run.
    pub crashed: BTreeSet<u32>,
    pub stop_epoch: u64,
    pub txs_per_node: u64,
    pub batch_size: usize,
    /// Epochs a replica proposes ahead ([`Config::pipeline`]).
    pub pipeline: u64,
    /// [`Config::fixed_coins`].
    pub fixed_coins: bool,
    pub tick: u64,
    /// Every fault stays within `f` at all times and the network
    /// stabilises: liveness is checked too.
    pub expect_liveness: bool,
    /// Crashed replicas' deaths in the sync window, by count of their
    /// steps with writes ([`SyncDeaths`]); each restarts
    /// [`Scenario::sync_restart_after`] ticks later.
    pub sync_deaths: BTreeMap<u32, BTreeSet<u64>>,
    pub sync_restart_after: Time,
    pub end: Time,
}

/// A random scenario: `n ∈ {4, 7}`; either up to `f` Byzantine replicas
/// with random behaviours, or up to `f` correct replicas that crash and
/// restart, or both within `f`; random link delays with spikes, drops,
/// duplicates and a partition before GST.
pub fn scenario(seed: u64) -> Scenario {
    scenario_drawn(seed, None)
}

/// [`scenario`] with `n` replicas (`n ≥ 2`; any `n`, not only `3f + 1`:
/// the quorums are `n − f`, see [`super::quorum`]), every other draw as
/// [`scenario`] makes it.
pub fn scenario_of_size(seed: u64, n: usize) -> Scenario {
    scenario_drawn(seed, Some(n.max(2)))
}

fn scenario_drawn(seed: u64, size: Option<usize>) -> Scenario {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1bf7_0000_0000);
    let drawn = if rng.random_range(0..8) == 0 { 7 } else { 4 };
    let n = size.unwrap_or(drawn);
    let f = super::faults(n);
    let mut ids: Vec<u32> = (0..n as u32).collect();
    ids.shuffle(&mut rng);
    // 0: f Byzantine; 1: f crash-restarts; 2: f − 1 Byzantine and one
    // crash-restart (for f = 1: one of each, beyond the budget for
    // liveness while the crashed one is down, so only safety is checked).
    let mode = rng.random_range(0..10);
    let (n_byz, n_crash): (usize, usize) = match mode {
        0..4 => (f, 0),
        4..8 => (0, f),
        _ => (f.saturating_sub(1).max(1), 1),
    };
    let expect_liveness = n_byz + n_crash <= f;
    let mut byzantine = BTreeMap::new();
    for &id in ids.iter().take(n_byz) {
        let mut b: Vec<Behaviour> = ALL_BEHAVIOURS.iter().copied().filter(|_| rng.random_bool(0.4)).collect();
        if b.is_empty() {
            b.push(ALL_BEHAVIOURS[rng.random_range(0..ALL_BEHAVIOURS.len())]);
        }
        byzantine.insert(id, b);
    }
    let crashed: BTreeSet<u32> = ids.iter().skip(n_byz).take(n_crash).copied().collect();
    let byz_ids: Vec<u32> = ids.iter().take(n_byz).copied().collect();
    let max_delay = rng.random_range(5..60);
    let mut links = vec![vec![Delay::Uniform { min: 1, max: max_delay }; n]; n];
    for row in links.iter_mut() {
        for d in row.iter_mut() {
            if rng.random_bool(0.2) {
                *d = Delay::Spiky { min: 1, max: max_delay, spike_per_mille: 100, spike: rng.random_range(50..400) };
            }
        }
    }
    let gst = rng.random_range(0..1_500);
    let mut partitions = Vec::new();
    if rng.random_bool(0.3) && gst > 100 {
        let from = rng.random_range(0..gst / 2);
        partitions.push(Partition {
            from,
            until: from + rng.random_range(50..gst - from),
            side: ids[..n / 2].to_vec(),
        });
    }
    let mut crashes = Vec::new();
    for &c in &crashed {
        let at = rng.random_range(10..2_000);
        crashes.push(Crash { node: c, at, restart_at: Some(at + rng.random_range(50..1_500)) });
    }
    let net = NetConfig {
        nodes: n,
        links,
        drop_per_mille: if rng.random_bool(0.5) { rng.random_range(0..50) } else { 0 },
        dup_per_mille: rng.random_range(0..50),
        gst,
        stable_delay: Delay::Uniform { min: 1, max: max_delay.min(20) },
        partitions,
        crashes,
    };
    let stop_epoch = rng.random_range(4..8);
    let txs_per_node = rng.random_range(0..6);
    let batch_size = rng.random_range(1..4);
    // Drawn last, so the other draws of a seed stay what they were.
    let pipeline = rng.random_range(0..3);
    let fixed_coins = rng.random_range(0..2) == 0;
    for id in byz_ids {
        if rng.random_bool(0.4) {
            byzantine.entry(id).or_default().push(Behaviour::ForgeSyncCertificates);
        }
    }
    // Drawn after the rest too: half the crashing replicas also die in
    // the sync window of one to three steps with writes.
    let mut sync_deaths: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for &c in &crashed {
        if rng.random_bool(0.5) {
            let k = rng.random_range(1..4);
            sync_deaths.insert(c, (0..k).map(|_| rng.random_range(1..80)).collect());
        }
    }
    let sync_restart_after = rng.random_range(2..200);
    Scenario {
        seed,
        n,
        net,
        byzantine,
        crashed,
        stop_epoch,
        txs_per_node,
        batch_size,
        pipeline,
        fixed_coins,
        tick: 200,
        expect_liveness,
        sync_deaths,
        sync_restart_after,
        // Runs that may stall stop early; the others stop once done.
        end: if expect_liveness { 60_000 } else { 5_000 },
    }
}

/// The transactions submitted to `node`: its own, plus (for even
/// counters) the same ones submitted to its neighbour, so duplicates
/// reach several proposers.
pub fn workload(s: &Scenario, node: u32) -> Vec<Tx> {
    let mut txs: Vec<Tx> = (0..s.txs_per_node).map(|c| SimTx { origin: node, counter: c }.bytes()).collect();
    let prev = (node + s.n as u32 - 1) % s.n as u32;
    txs.extend((0..s.txs_per_node).filter(|c| c % 2 == 0).map(|c| SimTx { origin: prev, counter: c }.bytes()));
    txs
}

/// A planted bug for one run (`mutants` feature).
#[cfg(feature = "mutants")]
pub type RunMutation = Option<super::replica::Mutation>;
#[cfg(not(feature = "mutants"))]
pub type RunMutation = Option<std::convert::Infallible>;

/// What a run produced, per node.
pub struct RunResult {
    pub deliveries: BTreeMap<u32, Vec<Delivery>>,
    pub faults: usize,
    pub messages: u64,
    pub end_time: Time,
    /// Coins each replica flipped (since its last start).
    pub coins: BTreeMap<u32, Vec<super::replica::CoinFlip>>,
    /// Slots in which a replica said two different things (see [`SaidLog`]).
    pub said_twice: Vec<(u32, Slot)>,
    /// `(replica, epoch, proposer)`: a batch of a delivered epoch in a
    /// replica's durable log whose certificate does not verify (a replica
    /// stores, and serves, only certified batches).
    pub bad_certificates: Vec<(u32, u64, u32)>,
    /// Deaths in the sync window ([`SyncDeaths`]) over the run.
    pub sync_deaths: u64,
}

fn make_config(s: &Scenario, me: u32, _mutation: RunMutation) -> Config {
    let mut cfg = Config::new(s.n, me, INSTANCE);
    cfg.tick = s.tick;
    cfg.max_batch_txs = 64;
    cfg.pipeline = s.pipeline;
    cfg.fixed_coins = s.fixed_coins;
    cfg.record_coins = true;
    #[cfg(feature = "mutants")]
    {
        cfg.mutation = _mutation;
    }
    cfg
}

/// Runs a scenario with the given scheme.
pub fn run(s: &Scenario, scheme: SchemeKind, mutation: RunMutation) -> RunResult {
    match scheme {
        SchemeKind::Sim => {
            let n = s.n;
            let seed = s.seed;
            let cryptos: Vec<SimCrypto> = (0..n as u32).map(|i| SimCrypto::new(seed, n, i)).collect();
            // The certificate quorum is the network's: a planted one is
            // every replica's.
            #[cfg(feature = "mutants")]
            let cryptos: Vec<SimCrypto> = cryptos.into_iter().map(|c| c.with_mutation(mutation)).collect();
            let forge: Forger<SimCrypto> = Arc::new(move |msg: &[u8]| super::crypto::SimSig {
                tag: gridledger_core::codec::hash_bytes(gridledger_core::codec::Tag("forged"), msg),
            });
            run_with(s, cryptos, Some(forge), mutation)
        }
        SchemeKind::Node => {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(s.seed);
            let cryptos = match NodeCrypto::deal(s.n, &mut rng) {
                Ok(c) => c,
                Err(e) => panic!("simulator misconfigured: {e}"),
            };
            #[cfg(feature = "mutants")]
            let cryptos: Vec<NodeCrypto> = cryptos.into_iter().map(|c| c.with_mutation(mutation)).collect();
            run_with(s, cryptos, None, mutation)
        }
    }
}

fn run_with<C: ThresholdCrypto + 'static>(
    s: &Scenario,
    cryptos: Vec<C>,
    forge: Option<Forger<C>>,
    mutation: RunMutation,
) -> RunResult {
    let plan = s.clone();
    let cs = cryptos.clone();
    let said = Arc::new(Mutex::new(SaidLog::new(s.n)));
    let log = said.clone();
    let deaths = Arc::new(Mutex::new(SyncDeaths { at: s.sync_deaths.clone(), ..SyncDeaths::default() }));
    let died = deaths.clone();
    let factory = move |id: NodeId, disk: Option<Durable<C::Sig>>| {
        // Planted bugs live in correct replicas only.
        let m = if plan.byzantine.contains_key(&id) { None } else { mutation };
        LbftNode::new(
            make_config(&plan, id, m),
            cs[id as usize].clone(),
            disk,
            &workload(&plan, id),
            plan.batch_size,
            plan.stop_epoch,
        )
        .with_said_log(log.clone())
        .with_sync_deaths(deaths.clone())
    };
    let mut sim: Simulation<LbftNode<C>> = Simulation::new(s.seed, s.net.clone(), factory);
    sim.set_restart_after(Some(s.sync_restart_after));
    for (id, b) in &s.byzantine {
        sim.set_adversary(
            *id,
            Box::new(LbftAdversary::new(*id, s.n, cryptos[*id as usize].clone(), b.clone(), forge.clone())),
        );
    }
    sim.start();
    let correct: Vec<u32> = (0..s.n as u32).filter(|i| !s.byzantine.contains_key(i)).collect();
    let stop = s.stop_epoch;
    sim.run_until(s.end, |sim| {
        correct.iter().all(|&i| sim.node(i).is_some_and(|n| n.replica().epoch() >= stop))
            && s.net.crashes.iter().all(|c| c.restart_at.is_none_or(|r| r <= sim.now()))
    });
    if std::env::var_os("GRIDLEDGER_LBFT_SIM_DEBUG").is_some() {
        for i in 0..s.n as u32 {
            if let Some(node) = sim.node(i) {
                eprintln!("node {i}: {}", node.replica().summary());
            }
        }
    }
    let coins = (0..s.n as u32).filter_map(|i| sim.node(i).map(|n| (i, n.replica().coins().to_vec()))).collect();
    let mut deliveries: BTreeMap<u32, Vec<Delivery>> = BTreeMap::new();
    for (_, node, d) in &sim.outputs {
        deliveries.entry(*node).or_default().push(d.clone());
    }
    let said_twice = said.lock().unwrap_or_else(|p| p.into_inner()).twice.clone();
    let mut bad_certificates = Vec::new();
    for i in 0..s.n as u32 {
        let Some(node) = sim.node(i) else { continue };
        for d in &node.durable().delivered {
            for b in &d.batches {
                let stmt = echo_statement(&INSTANCE, d.epoch, b.proposer, &b.digest);
                if !cryptos[i as usize].verify(KeyUse::Cert, &stmt, &b.sig) {
                    bad_certificates.push((i, d.epoch, b.proposer));
                }
            }
        }
    }
    let sync_deaths: u64 = died.lock().unwrap_or_else(|p| p.into_inner()).died.values().sum();
    RunResult {
        deliveries,
        faults: sim.faults.len(),
        messages: sim.stats.delivered,
        end_time: sim.now(),
        coins,
        said_twice,
        bad_certificates,
        sync_deaths,
    }
}

/// Checks agreement, total order, integrity, that no correct replica said
/// two different things in one slot nor an unbacked second `BVal` value
/// ([`SaidLog`]) and (where the scenario
/// promises it) liveness and validity on the correct replicas.
pub fn check(s: &Scenario, r: &RunResult) -> Result<(), String> {
    let correct: Vec<u32> = (0..s.n as u32).filter(|i| !s.byzantine.contains_key(i)).collect();
    let f = super::faults(s.n);
    let mut by_epoch: BTreeMap<u64, (u32, &Delivery)> = BTreeMap::new();
    let submitted: BTreeSet<Tx> = (0..s.n as u32).flat_map(|i| workload(s, i)).collect();
    for &i in &correct {
        let ds = r.deliveries.get(&i).map(Vec::as_slice).unwrap_or(&[]);
        let mut seen: BTreeSet<Hash32> = BTreeSet::new();
        for (k, d) in ds.iter().enumerate() {
            // Total order per replica: epochs 0, 1, 2, … once each.
            if d.epoch != k as u64 {
                return Err(format!("node {i} delivered epoch {} as its delivery #{k}", d.epoch));
            }
            // Agreement.
            match by_epoch.get(&d.epoch) {
                Some((j, other)) if other.decision != d.decision || other.txs != d.txs => {
                    return Err(format!(
                        "agreement broken in epoch {}: node {j} {:?} vs node {i} {:?}",
                        d.epoch, other.decision, d.decision
                    ));
                }
                Some(_) => {}
                None => {
                    by_epoch.insert(d.epoch, (i, d));
                }
            }
            // ACS: at least n − f batches per epoch.
            if d.decision.len() < s.n - f {
                return Err(format!("node {i} epoch {} accepted only {} batches", d.epoch, d.decision.len()));
            }
            // Integrity: each transaction once, and only real ones.
            for tx in &d.txs {
                if !seen.insert(tx_id(tx)) {
                    return Err(format!("node {i} delivered a transaction twice (epoch {})", d.epoch));
                }
                let Some(t) = SimTx::parse(tx) else {
                    return Err(format!("node {i} delivered bytes nobody submitted (epoch {})", d.epoch));
                };
                if !submitted.contains(tx) && !s.byzantine.contains_key(&t.origin) {
                    return Err(format!("node {i} delivered {t:?}, which no one submitted"));
                }
            }
        }
    }
    // A correct replica never says two different things in one slot, even
    // across its crashes (what it echoed and voted survives a restart).
    if let Some((i, slot)) = r.said_twice.iter().find(|(i, _)| correct.contains(i)) {
        if let Slot::BVal { .. } = slot {
            return Err(format!("node {i} said a second BVal value beside its estimate, unbacked, in {slot:?}"));
        }
        return Err(format!("node {i} said two different things in {slot:?}"));
    }
    // A correct replica's delivered log holds certified batches only: what
    // it stores it serves to lagging peers, and a node that stored a record
    // whose certificate does not hold cannot open its store again.
    if let Some((i, e, p)) = r.bad_certificates.iter().find(|(i, _, _)| correct.contains(i)) {
        return Err(format!("node {i} stored epoch {e} with a certificate of proposer {p} that does not verify"));
    }
    // The threshold coin is common: every correct replica that flipped the
    // coin of (epoch, agreement, round) got the same value.
    let mut coin: BTreeMap<(u64, u32, u32), (u32, bool)> = BTreeMap::new();
    for &i in &correct {
        for &(e, a, round, v) in r.coins.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
            match coin.get(&(e, a, round)) {
                Some(&(j, w)) if w != v => {
                    return Err(format!(
                        "coin of epoch {e} agreement {a} round {round}: node {j} got {w}, node {i} {v}"
                    ));
                }
                Some(_) => {}
                None => {
                    coin.insert((e, a, round), (i, v));
                }
            }
        }
    }
    if s.expect_liveness {
        for &i in &correct {
            let got = r.deliveries.get(&i).map_or(0, Vec::len) as u64;
            if got < s.stop_epoch {
                return Err(format!("node {i} delivered only {got} of {} epochs by t={}", s.stop_epoch, r.end_time));
            }
        }
    }
    Ok(())
}

/// Runs and checks one seed; the error names the seed.
pub fn run_seed(seed: u64, scheme: SchemeKind, mutation: RunMutation) -> Result<RunResult, String> {
    let s = scenario(seed);
    let r = run(&s, scheme, mutation);
    check(&s, &r).map_err(|e| {
        format!("seed {seed} ({scheme:?}, n={}, byzantine {:?}, crashed {:?}): {e}", s.n, s.byzantine, s.crashed)
    })?;
    Ok(r)
}
