//! Attack round 22 on the leaderless BFT (`consensus::lbft`): messages
//! that "commit the sender to nothing new" (`Cert`, coin shares, `Fetch`,
//! `Certified`, `SyncRequest`: `Replica::must_sync_before_sending`) leave
//! before the fsync in flight.
//!
//! The simulator's sync-window deaths (`lbft::sim::SyncDeaths`) kill a
//! replica in the step whose free messages just left; the bench replica
//! does more: its persister writes a group of rounds while the consensus
//! loop goes on, so the free messages of *later* steps leave while the
//! writes of earlier ones are still in flight, and a kill -9 then loses
//! every one of those steps' writes, committing messages and deliveries.
//! This file drives replicas exactly so (`GroupCommitNet`): each step's
//! free messages leave at once; its writes and committing messages join
//! the rounds waiting for the fsync (a step without writes and with
//! nothing waiting sends straight away, as the bench does); an fsync
//! makes every waiting round durable and sends its messages in order; a
//! kill drops every waiting round and restarts the replica from its disk.
//! Messages arrive in random order; replicas are killed at random
//! instants (any replica, any number of times — durability, not the fault
//! budget, is what keeps them correct).
//!
//! Held up (passing tests, regression):
//! - `n = 4 … 10`, hundreds of kills in the window between free messages
//!   of later steps and the fsync of earlier ones: no replica said two
//!   different things in one slot across its restarts ([`SaidLog`]), no
//!   two certificates (`Cert`, `Certified`) of one slot carried different
//!   digests, no replica sent two coin shares for one coin, and
//!   every replica's durable deliveries agree epoch by epoch (decision and
//!   transactions), with no transaction twice and only proposed ones
//!   (`free_messages_of_later_steps_before_an_earlier_fsync_break_nothing`).
//! - The same with every replica killed together at random instants
//!   (`whole_network_kills_in_the_group_commit_window_break_nothing`).
//!
//! Each run checks it exercised the interleaving (free messages sent while
//! earlier rounds waited, kills that dropped waiting rounds after free
//! messages of theirs had left), so a driver that stops doing it fails.
//!
//! `GRIDLEDGER_ATTACK_SEEDS` sets the seeds per size (1 by default; the
//! seed numbers vary the coin schedule and the overlap across sizes).
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r22`.

use std::collections::{BTreeMap, BTreeSet};

use gridledger_consensus::lbft::sim::{SaidLog, SimTx, INSTANCE};
use gridledger_consensus::lbft::{
    AbaVote, Config, Delivery, Durable, Message, MessageOf, PersistOp, Replica, SimCrypto, Step, Target,
    ThresholdCrypto, Tx,
};
use gridledger_core::Hash32;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type C = SimCrypto;
type Msg = MessageOf<C>;
type Sig = <C as ThresholdCrypto>::Sig;
type Share = <C as ThresholdCrypto>::Share;
type StepC = Step<Share, Sig>;
/// A delivered epoch: its decision and its transaction ids.
type Output = (Vec<(u32, Hash32)>, Vec<Hash32>);
#[cfg(feature = "mutants")]
type Planted = gridledger_consensus::lbft::Mutation;
#[cfg(not(feature = "mutants"))]
type Planted = ();

fn seeds(default: u64) -> u64 {
    std::env::var("GRIDLEDGER_ATTACK_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One round waiting for the fsync: its writes, its committing messages
/// and its deliveries (counted once durable, as the bench does).
struct Round {
    ops: Vec<PersistOp<Sig>>,
    msgs: Vec<(Target, Msg)>,
    delivered: Vec<Delivery>,
    /// Free messages of this round already left.
    free_left: bool,
}

struct Node {
    replica: Replica<C>,
    disk: Durable<Sig>,
    waiting: Vec<Round>,
    next_tx: u64,
}

/// What the run did, to show the interleaving was exercised.
#[derive(Default, Debug)]
struct Counts {
    free_while_waiting: u64,
    kills: u64,
    kills_after_free: u64,
    fsyncs: u64,
}

struct GroupCommitNet {
    n: usize,
    seed: u64,
    nodes: Vec<Node>,
    /// In flight: (from, to, message).
    wire: Vec<(u32, u32, Msg)>,
    said: SaidLog,
    /// Durable deliveries per replica across its restarts: epoch →
    /// (decision, transaction ids).
    out: Vec<BTreeMap<u64, Output>>,
    /// Faults of the integrity kind found while running.
    violations: Vec<String>,
    /// Every certified digest sent, by `(epoch, proposer)`.
    certified: BTreeMap<(u64, u32), Hash32>,
    /// Every coin share sent, by `(sender, epoch, agreement, round)`.
    coin_shares: BTreeMap<(u32, u64, u32, u32), Share>,
    counts: Counts,
    stop_epoch: u64,
    /// A replica whose free messages just left while rounds of its waited
    /// for the fsync: the instant a targeted kill aims at.
    just_free: Option<u32>,
    /// A planted bug in every replica (mutation testing only).
    #[cfg(feature = "mutants")]
    mutation: Option<gridledger_consensus::lbft::Mutation>,
}

impl GroupCommitNet {
    /// `n` replicas started, `mutation` planted in every one.
    fn planted(n: usize, seed: u64, stop_epoch: u64, mutation: Option<Planted>) -> Self {
        let mut net = Self {
            n,
            seed,
            nodes: Vec::new(),
            wire: Vec::new(),
            said: SaidLog::new(n),
            out: vec![BTreeMap::new(); n],
            violations: Vec::new(),
            certified: BTreeMap::new(),
            coin_shares: BTreeMap::new(),
            counts: Counts::default(),
            stop_epoch,
            just_free: None,
            #[cfg(feature = "mutants")]
            mutation,
        };
        #[cfg(not(feature = "mutants"))]
        let _ = mutation;
        for i in 0..n as u32 {
            let replica = Replica::new(net.config(i), SimCrypto::new(seed, n, i), Durable::default());
            net.nodes.push(Node { replica, disk: Durable::default(), waiting: Vec::new(), next_tx: 0 });
        }
        for i in 0..n as u32 {
            let s = net.nodes[i as usize].replica.start();
            net.absorb(i, s);
        }
        net
    }

    /// Every replica alike; odd seeds flip the threshold coin in every
    /// round (a coin share, a free message, in every round), and seeds
    /// `4k + 2`, `4k + 3` overlap epochs as `bench lbft --pipeline 2`
    /// does (a proposal for a later epoch in the step of the `Cert`).
    fn config(&self, me: u32) -> Config {
        let mut c = Config::new(self.n, me, INSTANCE);
        c.fixed_coins = self.seed.is_multiple_of(2);
        c.pipeline = if self.seed % 4 >= 2 { 2 } else { 0 };
        #[cfg(feature = "mutants")]
        {
            c.mutation = self.mutation;
        }
        c
    }

    fn send(&mut self, from: u32, to: Target, m: Msg) {
        self.said.record(from, &m);
        self.record_free(from, &m);
        match to {
            Target::All => {
                for j in 0..self.n as u32 {
                    if j != from {
                        self.wire.push((from, j, m.clone()));
                    }
                }
            }
            Target::One(j) => self.wire.push((from, j, m)),
        }
    }

    /// What the free messages say must not change across restarts either:
    /// one certified digest per `(epoch, proposer)` whoever sends it
    /// (`Cert`, `Certified`), one coin share per replica and coin.
    fn record_free(&mut self, from: u32, m: &Msg) {
        let (epoch, proposer, digest) = match m {
            Message::Cert { epoch, proposer, digest, .. } => (*epoch, *proposer, *digest),
            Message::Certified { epoch, batch } => (*epoch, batch.proposer, batch.digest),
            Message::Aba { epoch, instance, round, vote: AbaVote::Coin(share) } => {
                match self.coin_shares.get(&(from, *epoch, *instance, *round)) {
                    Some(prev) if prev != share => self.violations.push(format!(
                        "replica {from} sent two coin shares for epoch {epoch} agreement {instance} round {round}"
                    )),
                    Some(_) => {}
                    None => {
                        self.coin_shares.insert((from, *epoch, *instance, *round), share.clone());
                    }
                }
                return;
            }
            _ => return,
        };
        match self.certified.get(&(epoch, proposer)) {
            Some(prev) if *prev != digest => self.violations.push(format!(
                "replica {from} sent a certificate of another digest for epoch {epoch} proposer {proposer}"
            )),
            Some(_) => {}
            None => {
                self.certified.insert((epoch, proposer), digest);
            }
        }
    }

    /// The bench replica's handling of one step (and the proposals it asks
    /// for): free messages now, the rest after the fsync of this round and
    /// every earlier one.
    fn absorb(&mut self, me: u32, first: StepC) {
        let mut pending = vec![first];
        while let Some(mut s) = pending.pop() {
            let i = me as usize;
            let mut committing = Vec::new();
            let mut free = Vec::new();
            for (to, m) in s.messages.drain(..) {
                if self.nodes[i].replica.must_sync_before_sending(&m) {
                    committing.push((to, m));
                } else {
                    free.push((to, m));
                }
            }
            let pushes = !s.persist.is_empty() || !committing.is_empty() || !s.delivered.is_empty();
            if !free.is_empty() && (!self.nodes[i].waiting.is_empty() || pushes) {
                if !self.nodes[i].waiting.is_empty() {
                    self.counts.free_while_waiting += free.len() as u64;
                }
                self.just_free = Some(me);
            }
            let had_free = !free.is_empty();
            for (to, m) in free {
                self.send(me, to, m);
            }
            if s.persist.is_empty() && s.delivered.is_empty() && self.nodes[i].waiting.is_empty() {
                for (to, m) in committing {
                    self.send(me, to, m);
                }
            } else if !s.persist.is_empty() || !committing.is_empty() || !s.delivered.is_empty() {
                self.nodes[i].waiting.push(Round {
                    ops: std::mem::take(&mut s.persist),
                    msgs: committing,
                    delivered: std::mem::take(&mut s.delivered),
                    free_left: had_free,
                });
            }
            if let Some(e) = s.need_batch.take() {
                if e < self.stop_epoch {
                    let node = &mut self.nodes[i];
                    let txs: Vec<Tx> = (0..2)
                        .map(|_| {
                            node.next_tx += 1;
                            SimTx { origin: me, counter: node.next_tx }.bytes()
                        })
                        .collect();
                    pending.push(node.replica.propose_at(e, txs, 0));
                }
            }
        }
    }

    /// The fsync of every waiting round completes: writes durable, then
    /// the rounds' messages leave in order and their deliveries count.
    fn fsync(&mut self, me: u32) {
        let rounds = std::mem::take(&mut self.nodes[me as usize].waiting);
        if rounds.is_empty() {
            return;
        }
        self.counts.fsyncs += 1;
        for r in &rounds {
            for op in &r.ops {
                self.nodes[me as usize].disk.apply(op);
            }
        }
        for r in rounds {
            for (to, m) in r.msgs {
                self.send(me, to, m);
            }
            for d in r.delivered {
                self.output(me, d);
            }
        }
    }

    fn output(&mut self, me: u32, d: Delivery) {
        let out = &mut self.out[me as usize];
        let entry = (d.decision.clone(), d.ids.clone());
        match out.get(&d.epoch) {
            Some(prev) if *prev != entry => {
                self.violations.push(format!("replica {me} delivered epoch {} twice differently", d.epoch))
            }
            Some(_) => {}
            None => {
                if let Some((&last, _)) = out.last_key_value() {
                    if d.epoch != last + 1 {
                        self.violations.push(format!("replica {me} delivered epoch {} after {last}", d.epoch));
                    }
                }
                for tx in d.txs.iter() {
                    if SimTx::parse(tx).is_none() {
                        self.violations.push(format!("replica {me} delivered a transaction nobody proposed"));
                    }
                }
                out.insert(d.epoch, entry);
            }
        }
    }

    /// kill -9: every round waiting for its fsync is lost; the replica
    /// restarts from its disk.
    fn kill(&mut self, me: u32) {
        let i = me as usize;
        self.counts.kills += 1;
        if self.nodes[i].waiting.iter().any(|r| r.free_left) {
            self.counts.kills_after_free += 1;
        }
        self.nodes[i].waiting.clear();
        let disk = self.nodes[i].disk.clone();
        self.nodes[i].replica = Replica::new(self.config(me), SimCrypto::new(self.seed, self.n, me), disk);
        let s = self.nodes[i].replica.start();
        self.absorb(me, s);
    }

    fn deliver_one(&mut self, rng: &mut ChaCha8Rng) -> bool {
        if self.wire.is_empty() {
            return false;
        }
        let k = rng.random_range(0..self.wire.len());
        let (from, to, m) = self.wire.swap_remove(k);
        self.said.received(to, from, &m);
        let s = self.nodes[to as usize].replica.handle_message(from, m);
        self.absorb(to, s);
        true
    }

    fn tick(&mut self, me: u32) {
        let s = self.nodes[me as usize].replica.handle_tick();
        self.absorb(me, s);
    }

    fn done(&self) -> bool {
        self.nodes.iter().all(|nd| nd.replica.epoch() >= self.stop_epoch)
    }

    /// Runs `steps` events: mostly message deliveries, now and then an
    /// fsync (so many steps pile up behind one), a tick, a kill of one
    /// replica (`p_kill`) or of all (`p_kill_all`); and, right after free
    /// messages left ahead of waiting rounds, a kill of that replica
    /// (`p_target`) or of every replica (`p_target` / 4 of those).
    fn run(&mut self, rng: &mut ChaCha8Rng, steps: u64, p_kill: f64, p_kill_all: f64, p_target: f64) {
        for _ in 0..steps {
            if self.done() {
                break;
            }
            if let Some(who) = self.just_free.take() {
                if rng.random_bool(p_target) {
                    if p_kill_all > 0.0 && rng.random_bool(0.25) {
                        for i in 0..self.n as u32 {
                            self.kill(i);
                        }
                    } else {
                        self.kill(who);
                    }
                    continue;
                }
            }
            let r: f64 = rng.random();
            let who = rng.random_range(0..self.n as u32);
            if r < p_kill_all {
                for i in 0..self.n as u32 {
                    self.kill(i);
                }
            } else if r < p_kill_all + p_kill {
                self.kill(who);
            } else if r < 0.04 {
                self.fsync(who);
            } else if r < 0.045 || self.wire.is_empty() {
                // Idle network: everything durable, then a tick.
                if self.wire.is_empty() {
                    for i in 0..self.n as u32 {
                        self.fsync(i);
                    }
                }
                self.tick(who);
            } else {
                self.deliver_one(rng);
            }
        }
        // Drain: no more kills; every fsync completes.
        self.just_free = None;
        for _ in 0..steps {
            if self.done() {
                break;
            }
            for i in 0..self.n as u32 {
                self.fsync(i);
            }
            if !self.deliver_one(rng) {
                for i in 0..self.n as u32 {
                    self.tick(i);
                }
            }
        }
        for i in 0..self.n as u32 {
            self.fsync(i);
        }
    }

    /// Agreement, total order, integrity, one thing per slot.
    fn check(&self) -> Result<(), String> {
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        if let Some((who, slot)) = self.said.twice.first() {
            return Err(format!("replica {who} said two different things in {slot:?}"));
        }
        let mut by_epoch: BTreeMap<u64, (u32, &Output)> = BTreeMap::new();
        for (i, out) in self.out.iter().enumerate() {
            let mut seen = BTreeSet::new();
            for (e, entry) in out {
                for id in &entry.1 {
                    if !seen.insert(*id) {
                        return Err(format!("replica {i} delivered a transaction twice (epoch {e})"));
                    }
                }
                match by_epoch.get(e) {
                    Some((j, other)) if *other != entry => {
                        return Err(format!("replicas {j} and {i} delivered epoch {e} differently"));
                    }
                    Some(_) => {}
                    None => {
                        by_epoch.insert(*e, (i as u32, entry));
                    }
                }
            }
        }
        Ok(())
    }
}

fn one_run(n: usize, seed: u64, p_kill: f64, p_kill_all: f64) -> (Counts, u64) {
    let (net, result) = run_planted(n, seed, p_kill, p_kill_all, None);
    if let Err(e) = result {
        panic!("n = {n}, seed {seed}: {e} ({:?})", net.counts);
    }
    let min_epoch = net.nodes.iter().map(|nd| nd.replica.epoch()).min().unwrap_or(0);
    (net.counts, min_epoch)
}

fn run_planted(
    n: usize,
    seed: u64,
    p_kill: f64,
    p_kill_all: f64,
    mutation: Option<Planted>,
) -> (GroupCommitNet, Result<(), String>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (n as u64) << 32);
    let mut net = GroupCommitNet::planted(n, seed, 6, mutation);
    net.run(&mut rng, 10_000 * n as u64, p_kill, p_kill_all, 0.3);
    let result = net.check();
    (net, result)
}

/// The driver catches the bug the split exists to avoid: with every
/// message free (`Mutation::SentBeforeSync`), a replica killed before its
/// fsync says something else after its restart.
#[cfg(feature = "mutants")]
#[test]
fn the_driver_catches_every_message_sent_before_its_fsync() {
    use gridledger_consensus::lbft::Mutation;
    let caught = (0..8u64).find_map(|seed| {
        let (_, r) = run_planted(4, 0x22_2000 + seed, 0.001, 0.0, Some(Mutation::SentBeforeSync));
        r.err()
    });
    assert!(caught.is_some(), "SentBeforeSync was not caught in 8 seeds");
    eprintln!("caught: {}", caught.unwrap_or_default());
}

#[test]
fn free_messages_of_later_steps_before_an_earlier_fsync_break_nothing() {
    let per = seeds(1);
    let mut total = Counts::default();
    for n in 4..=10usize {
        for seed in 0..per {
            let (c, e) = one_run(n, 0x22_0000 + 8 * seed + n as u64, 0.001, 0.0);
            eprintln!("n = {n} seed {seed}: {c:?}, every replica reached epoch {e}");
            total.free_while_waiting += c.free_while_waiting;
            total.kills += c.kills;
            total.kills_after_free += c.kills_after_free;
            total.fsyncs += c.fsyncs;
        }
    }
    eprintln!("{total:?}");
    assert!(total.free_while_waiting > 100, "the interleaving was not exercised: {total:?}");
    assert!(total.kills_after_free > 20, "no kill fell between free messages and their fsync: {total:?}");
}

#[test]
fn whole_network_kills_in_the_group_commit_window_break_nothing() {
    let per = seeds(1);
    let mut total = Counts::default();
    for n in [4usize, 5, 7] {
        for seed in 0..per {
            let (c, e) = one_run(n, 0x22_1000 + 8 * seed + n as u64, 0.0005, 0.0002);
            eprintln!("n = {n} seed {seed}: {c:?}, every replica reached epoch {e}");
            total.free_while_waiting += c.free_while_waiting;
            total.fsyncs += c.fsyncs;
            total.kills += c.kills;
            total.kills_after_free += c.kills_after_free;
        }
    }
    eprintln!("{total:?}");
    assert!(total.kills_after_free > 10, "no kill fell between free messages and their fsync: {total:?}");
}
