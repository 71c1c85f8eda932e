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
//! The simulator is generic over [`Protocol`] and depends on no protocol:
//! each protocol crate implements [`Protocol`] for its own types (the
//! primary chain's PBFT in `gridledger-consensus` for the bare replica and
//! in `gridledger-node` for the real validator driver and store).

pub mod adversary_mobile;

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
    /// The node's process died during the last call (e.g. its simulated
    /// disk crashed between two writes): the simulator takes it down, as
    /// for a planned [`Crash`], and restarts it after
    /// [`Simulation::set_restart_after`] ticks from what it persisted.
    fn crashed(&self) -> bool {
        false
    }
}

/// A Byzantine behaviour: it sees what its node receives and rewrites what
/// its node sends (the node itself runs the honest code).
pub trait Adversary<P: Protocol> {
    /// Sees a message its node received; may answer with messages of its
    /// own (e.g. colluding votes), sent as if by its node.
    fn observe(&mut self, _from: NodeId, _message: &P::Message, _rng: &mut ChaCha8Rng) -> Vec<(Dest, P::Message)> {
        Vec::new()
    }
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
    /// Planned and self-reported crashes.
    pub crashes: u64,
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
    restart_after: Option<Time>,
    before_step: Option<Box<dyn FnMut(Time)>>,
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
            restart_after: Some(500),
            before_step: None,
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

    /// Called with the event's time before each event runs (and before the
    /// nodes start): lets a driver keep a logical clock its nodes read.
    pub fn set_before_step(&mut self, f: Box<dyn FnMut(Time)>) {
        self.before_step = Some(f);
    }

    /// How long after a self-reported crash ([`Protocol::crashed`]) a node
    /// restarts; `None` leaves it down.
    pub fn set_restart_after(&mut self, after: Option<Time>) {
        self.restart_after = after;
    }

    /// Crashes and restarts seen so far.
    pub fn crash_count(&self) -> u64 {
        self.stats.crashes
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
        if self.nodes[id as usize].as_ref().is_some_and(|n| n.crashed()) {
            // It died during this call: what it did before dying is in
            // `sends` already filtered by the protocol; outputs stand.
            for o in outputs {
                self.outputs.push((self.now, id, o));
            }
            self.crash(id);
            if let Some(after) = self.restart_after {
                self.push(self.now + after.max(1), Event::Restart(id));
            }
            for (dest, m) in sends {
                self.route(id, dest, m);
            }
            return;
        }
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
            self.route(id, dest, m);
        }
    }

    fn route(&mut self, id: NodeId, dest: Dest, m: P::Message) {
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

    fn crash(&mut self, node: NodeId) {
        if let Some(n) = self.nodes[node as usize].take() {
            self.saved[node as usize] = Some(n.persisted());
            self.timers[node as usize].clear();
            self.stats.crashes += 1;
            self.note(|| format!("node {node} crashed"));
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
        if let Some(f) = &mut self.before_step {
            f(at);
        }
        match event {
            Event::Deliver { from, to, message } => {
                let Some(node) = self.nodes[to as usize].as_mut() else {
                    self.stats.dropped += 1;
                    return true;
                };
                self.stats.delivered += 1;
                let e = node.handle_message(from, message.clone());
                if self.trace.is_some() {
                    self.note(|| format!("deliver {from}->{to} {message:?}"));
                }
                self.apply(to, e);
                if let Some(adv) = self.adversaries.get_mut(&to).filter(|_| self.nodes[to as usize].is_some()) {
                    let injected = adv.observe(from, &message, &mut self.rng);
                    for (dest, m) in injected {
                        self.route(to, dest, m);
                    }
                }
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
            Event::Crash(node) => self.crash(node),
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

/// Which seeds a sweep runs, from one environment-variable scheme shared by
/// every protocol's simulator tests and `gridledger sim`:
///
/// - `GRIDLEDGER_SIM_SEED=S` replays exactly seed `S`;
/// - `GRIDLEDGER_SIM_SEEDS=N` runs `N` seeds from the fixed regression
///   range plus `N / 4` rotating seeds (default: the caller's count);
///
/// Rotating seeds start at a point derived from the current day, so CI
/// explores new seeds every day while the fixed range stays a regression
/// suite. A failing seed is reported with the variable that replays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedPlan {
    pub seeds: Vec<u64>,
}

impl SeedPlan {
    /// The plan for a sweep whose fixed range starts at `base`.
    pub fn from_env(base: u64, default_count: u64) -> Self {
        if let Some(seed) = std::env::var("GRIDLEDGER_SIM_SEED").ok().and_then(|s| s.trim().parse().ok()) {
            return Self { seeds: vec![seed] };
        }
        let count =
            std::env::var("GRIDLEDGER_SIM_SEEDS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(default_count);
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        Self::new(base, count, day)
    }

    /// `count` fixed seeds from `base` and `count / 4` (at least one)
    /// rotating seeds chosen by `rotation` (e.g. the day).
    pub fn new(base: u64, count: u64, rotation: u64) -> Self {
        let mut seeds: Vec<u64> = (base..base + count).collect();
        let rotating = (count / 4).max(1);
        let start = base.wrapping_add(1 << 40).wrapping_add(rotation.wrapping_mul(0x9e37_79b9));
        seeds.extend((0..rotating).map(|i| start.wrapping_add(i)));
        Self { seeds }
    }

    /// How to replay `seed`.
    pub fn replay_hint(seed: u64) -> String {
        format!("replay with GRIDLEDGER_SIM_SEED={seed}")
    }
}
