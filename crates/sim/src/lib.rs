//! A seeded, deterministic discrete-event simulator for gridledger's
//! sans-IO protocols (DESIGN principle 2: "one simulator, real code").
//!
//! The same state machines that a node drives over sockets run here under
//! an adversarial network: per-link delay distributions, drops,
//! duplication, reordering (from random delays), partitions that heal,
//! crashes and restarts from what a node persisted, and Byzantine nodes
//! whose outgoing messages pass through a pluggable [`Adversary`]. Before
//! the global stabilisation time (GST) anything goes; after it, links are
//! reliable with bounded delay, which is what partial-synchrony liveness
//! claims need. Everything random comes from one ChaCha RNG seeded by the
//! caller, and all collections iterate in a fixed order, so a seed
//! reproduces its run exactly ([`Simulation::trace`]).
//!
//! The simulator is generic over [`Protocol`]; [`pbft`] adapts the primary
//! chain's PBFT (thesis §3.3.2) and its adversaries.

pub mod pbft;

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A node's index.
pub type NodeId = u32;
/// Logical time, in ticks.
pub type Time = u64;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Every other node.
    All,
    One(NodeId),
}

/// Timer requests; a protocol's timer values identify themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOp<T> {
    Set { timer: T, after: Time },
    Cancel(T),
}

/// What one input to a protocol produced.
pub struct Effects<P: Protocol + ?Sized> {
    pub sends: Vec<(Dest, P::Message)>,
    pub timers: Vec<TimerOp<P::Timer>>,
    pub outputs: Vec<P::Output>,
    pub faults: Vec<P::Fault>,
}

impl<P: Protocol + ?Sized> Default for Effects<P> {
    fn default() -> Self {
        Self { sends: Vec::new(), timers: Vec::new(), outputs: Vec::new(), faults: Vec::new() }
    }
}

/// A sans-IO protocol instance as the simulator drives it. Effects of one
/// call are atomic: persisted state is durable before messages leave.
pub trait Protocol {
    type Message: Clone + Debug;
    type Timer: Clone + Debug + PartialEq;
    type Output: Clone + Debug;
    type Fault: Clone + Debug;
    /// What survives a crash.
    type Persisted: Clone;

    fn start(&mut self) -> Effects<Self>;
    fn handle_message(&mut self, from: NodeId, message: Self::Message) -> Effects<Self>;
    fn handle_timer(&mut self, timer: Self::Timer) -> Effects<Self>;
    fn persisted(&self) -> Self::Persisted;
}

/// A Byzantine behaviour: it sees what its node receives and rewrites what
/// its node sends (the node itself runs the honest code).
pub trait Adversary<P: Protocol> {
    fn observe(&mut self, _from: NodeId, _message: &P::Message) {}
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, P::Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, P::Message)>;
}

/// A link's delay distribution (ticks, integers only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delay {
    Uniform {
        min: Time,
        max: Time,
    },
    /// Mostly `Uniform{min, max}`, but `spike_per_mille` of messages take `spike` longer.
    Spiky {
        min: Time,
        max: Time,
        spike_per_mille: u32,
        spike: Time,
    },
}

impl Delay {
    fn sample(&self, rng: &mut ChaCha8Rng) -> Time {
        match *self {
            Delay::Uniform { min, max } => rng.random_range(min..=max.max(min)),
            Delay::Spiky { min, max, spike_per_mille, spike } => {
                let base = rng.random_range(min..=max.max(min));
                if rng.random_range(0..1000) < spike_per_mille {
                    base + spike
                } else {
                    base
                }
            }
        }
    }
}

/// `side` is cut off from everyone else during `[from, until)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    pub from: Time,
    pub until: Time,
    pub side: Vec<NodeId>,
}

/// `node` crashes at `at` and, if `restart_at` is set, restarts then from
/// what it persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crash {
    pub node: NodeId,
    pub at: Time,
    pub restart_at: Option<Time>,
}

/// The network and fault plan of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    pub nodes: usize,
    /// `links[from][to]` before GST.
    pub links: Vec<Vec<Delay>>,
    /// Before GST: per-mille probability that a message is dropped / duplicated.
    pub drop_per_mille: u32,
    pub dup_per_mille: u32,
    pub gst: Time,
    /// Every link's delay from GST on.
    pub stable_delay: Delay,
    pub partitions: Vec<Partition>,
    pub crashes: Vec<Crash>,
}

impl NetConfig {
    /// A reliable network: every link `Uniform{1, max_delay}`, GST at 0.
    pub fn reliable(nodes: usize, max_delay: Time) -> Self {
        let d = Delay::Uniform { min: 1, max: max_delay };
        Self {
            nodes,
            links: vec![vec![d; nodes]; nodes],
            drop_per_mille: 0,
            dup_per_mille: 0,
            gst: 0,
            stable_delay: d,
            partitions: Vec::new(),
            crashes: Vec::new(),
        }
    }

    fn cut(&self, now: Time, a: NodeId, b: NodeId) -> bool {
        self.partitions.iter().any(|p| p.from <= now && now < p.until && (p.side.contains(&a) != p.side.contains(&b)))
    }
}

enum Event<M, T> {
    Deliver { from: NodeId, to: NodeId, message: M },
    Timer { node: NodeId, id: u64, timer: T },
    Crash(NodeId),
    Restart(NodeId),
}

/// Counters for a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub timers_fired: u64,
}

type Factory<P> = Box<dyn FnMut(NodeId, Option<<P as Protocol>::Persisted>) -> P>;

/// One seeded run.
pub struct Simulation<P: Protocol> {
    now: Time,
    seq: u64,
    rng: ChaCha8Rng,
    net: NetConfig,
    queue: BTreeMap<(Time, u64), Event<P::Message, P::Timer>>,
    nodes: Vec<Option<P>>,
    saved: Vec<Option<P::Persisted>>,
    /// Armed timers per node: `(id, timer)`.
    timers: Vec<Vec<(u64, P::Timer)>>,
    adversaries: BTreeMap<NodeId, Box<dyn Adversary<P>>>,
    factory: Factory<P>,
    /// Every output, in order: `(time, node, output)`.
    pub outputs: Vec<(Time, NodeId, P::Output)>,
    /// Every fault a node reported: `(time, reporter, fault)`.
    pub faults: Vec<(Time, NodeId, P::Fault)>,
    pub stats: Stats,
    trace: Option<Vec<String>>,
}

impl<P: Protocol> Simulation<P> {
    /// Builds the nodes with `factory(id, None)`; a restart calls
    /// `factory(id, Some(persisted))`.
    pub fn new(
        seed: u64,
        net: NetConfig,
        mut factory: impl FnMut(NodeId, Option<P::Persisted>) -> P + 'static,
    ) -> Self {
        let n = net.nodes;
        let nodes = (0..n as NodeId).map(|i| Some(factory(i, None))).collect();
        let mut sim = Self {
            now: 0,
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BTreeMap::new(),
            nodes,
            saved: (0..n).map(|_| None).collect(),
            timers: vec![Vec::new(); n],
            adversaries: BTreeMap::new(),
            factory: Box::new(factory),
            outputs: Vec::new(),
            faults: Vec::new(),
            stats: Stats::default(),
            trace: None,
            net,
        };
        for c in sim.net.crashes.clone() {
            sim.push(c.at, Event::Crash(c.node));
            if let Some(r) = c.restart_at {
                sim.push(r.max(c.at + 1), Event::Restart(c.node));
            }
        }
        sim
    }

    /// Makes `node` Byzantine.
    pub fn set_adversary(&mut self, node: NodeId, adversary: Box<dyn Adversary<P>>) {
        self.adversaries.insert(node, adversary);
    }

    /// Records a human-readable trace of every event (costly; for replays).
    pub fn record_trace(&mut self) {
        self.trace = Some(Vec::new());
    }

    pub fn trace(&self) -> Option<&[String]> {
        self.trace.as_deref()
    }

    pub fn now(&self) -> Time {
        self.now
    }

    pub fn node(&self, id: NodeId) -> Option<&P> {
        self.nodes.get(id as usize).and_then(|n| n.as_ref())
    }

    fn push(&mut self, at: Time, e: Event<P::Message, P::Timer>) {
        self.seq += 1;
        self.queue.insert((at, self.seq), e);
    }

    fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{} {}", self.now, f()));
        }
    }

    /// Starts every node.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() as NodeId {
            if let Some(n) = self.nodes[i as usize].as_mut() {
                let e = n.start();
                self.apply(i, e);
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: P::Message) {
        let now = self.now;
        if self.net.cut(now, from, to) {
            self.stats.dropped += 1;
            return;
        }
        let before_gst = now < self.net.gst;
        if before_gst && self.rng.random_range(0..1000) < self.net.drop_per_mille {
            self.stats.dropped += 1;
            return;
        }
        let copies = if before_gst && self.rng.random_range(0..1000) < self.net.dup_per_mille {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if before_gst {
                self.net.links[from as usize][to as usize].sample(&mut self.rng)
            } else {
                self.net.stable_delay.sample(&mut self.rng)
            };
            self.push(now + delay.max(1), Event::Deliver { from, to, message: message.clone() });
        }
    }

    fn apply(&mut self, id: NodeId, e: Effects<P>) {
        let Effects { mut sends, timers, outputs, faults } = e;
        if let Some(mut adv) = self.adversaries.remove(&id) {
            sends = adv.tamper(self.now, sends, &mut self.rng);
            self.adversaries.insert(id, adv);
        }
        for o in outputs {
            self.note(|| format!("node {id} output {o:?}"));
            self.outputs.push((self.now, id, o));
        }
        for f in faults {
            self.note(|| format!("node {id} fault {f:?}"));
            self.faults.push((self.now, id, f));
        }
        for t in timers {
            match t {
                TimerOp::Set { timer, after } => {
                    self.seq += 1;
                    let tid = self.seq;
                    self.timers[id as usize].push((tid, timer.clone()));
                    let at = self.now + after.max(1);
                    self.push(at, Event::Timer { node: id, id: tid, timer });
                }
                TimerOp::Cancel(timer) => self.timers[id as usize].retain(|(_, t)| *t != timer),
            }
        }
        for (dest, m) in sends {
            match dest {
                Dest::One(to) if (to as usize) < self.nodes.len() && to != id => self.send(id, to, m),
                Dest::One(_) => {}
                Dest::All => {
                    for to in 0..self.nodes.len() as NodeId {
                        if to != id {
                            self.send(id, to, m.clone());
                        }
                    }
                }
            }
        }
    }

    /// Time of the next event, if any: lets a driver that models a shared
    /// clock (a chain's) set it before [`Simulation::step`] runs the event.
    pub fn next_time(&self) -> Option<Time> {
        self.queue.first_key_value().map(|((t, _), _)| *t)
    }

    /// Processes the next event; `false` when none is left.
    pub fn step(&mut self) -> bool {
        let Some(((at, _), event)) = self.queue.pop_first() else {
            return false;
        };
        self.now = at;
        match event {
            Event::Deliver { from, to, message } => {
                let Some(node) = self.nodes[to as usize].as_mut() else {
                    self.stats.dropped += 1;
                    return true;
                };
                self.stats.delivered += 1;
                if let Some(adv) = self.adversaries.get_mut(&to) {
                    adv.observe(from, &message);
                }
                let e = node.handle_message(from, message.clone());
                if self.trace.is_some() {
                    self.note(|| format!("deliver {from}->{to} {message:?}"));
                }
                self.apply(to, e);
            }
            Event::Timer { node, id, timer } => {
                let armed = &mut self.timers[node as usize];
                let Some(pos) = armed.iter().position(|(i, _)| *i == id) else {
                    return true;
                };
                armed.remove(pos);
                let Some(n) = self.nodes[node as usize].as_mut() else {
                    return true;
                };
                self.stats.timers_fired += 1;
                let e = n.handle_timer(timer.clone());
                self.note(|| format!("node {node} timer {timer:?}"));
                self.apply(node, e);
            }
            Event::Crash(node) => {
                if let Some(n) = self.nodes[node as usize].take() {
                    self.saved[node as usize] = Some(n.persisted());
                    self.timers[node as usize].clear();
                    self.note(|| format!("node {node} crashed"));
                }
            }
            Event::Restart(node) => {
                if self.nodes[node as usize].is_none() {
                    let saved = self.saved[node as usize].take();
                    let mut n = (self.factory)(node, saved);
                    let e = n.start();
                    self.nodes[node as usize] = Some(n);
                    self.note(|| format!("node {node} restarted"));
                    self.apply(node, e);
                }
            }
        }
        true
    }

    /// Runs until `until` (inclusive) or until `stop` says so after an event.
    pub fn run_until(&mut self, until: Time, mut stop: impl FnMut(&Self) -> bool) {
        while self.queue.first_key_value().is_some_and(|((t, _), _)| *t <= until) {
            self.step();
            if stop(self) {
                return;
            }
        }
        self.now = self.now.max(until);
    }
}
