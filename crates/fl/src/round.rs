//! One FL round of one chain as the simulator runs it: the chain's `K`
//! nodes ([`ChainNode`]) and `C` clients ([`FlClient`]) behind the
//! simulator's [`Protocol`] trait. Simulator ids `0..K` are nodes,
//! `K..K+C` clients.
//!
//! Byzantine clients are honest code with a [`ClientBehaviour`] (bad cells,
//! a poisoned model, silence); Byzantine nodes run the honest code behind a
//! simulator [`gridledger_sim::Adversary`] that drops, alters or withholds
//! what they send (see this crate's `tests/dual_consensus.rs`).
//!
//! A client accepts a committed root once `f+1` nodes report it (at least
//! one of them honest); on a deployment it reads the root from the chain.

use crate::aggregate::{params_from_bytes, params_to_bytes};
use crate::coding::{client_key, ClientSecrets};
use crate::consensus::{ChainConfig, ChainNode, Fault, Message, Output, Step, Timer, To, MAX_RESYNCS};
use crate::dissemination::{AssemblyFault, ClientAssembler, Source};
use crate::mutants::{self, Mutation};
use blstrs::Scalar;
use ff::Field;
use gridledger_core::enclave::Attester;
use gridledger_core::Hash32;
use gridledger_sim::{Dest, Effects, NodeId, Protocol, TimerOp};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Node `k`'s PBFT signing key in simulations and tests: derived from a
/// public label, so never for a deployment (where each node holds its own).
pub fn sim_node_key(k: usize) -> gridledger_core::crypto::KeyPair {
    gridledger_core::crypto::KeyPair::from_seed(&format!("ctp-fl simulated node {k}"))
}

/// Client `c`'s signing key pair in simulations and tests, derived from a
/// simulation seed (not the enclaves' secret, not the client's fragment
/// key): a deployment generates each client's key pair on the client and
/// registers only its public half.
pub fn sim_client_signing_key(seed: &[u8; 32], c: u32) -> gridledger_core::crypto::KeyPair {
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    gridledger_core::crypto::KeyPair::from_seed(&format!("ctp-fl simulated client {c} {hex}"))
}

/// What client `c` is given in simulations and tests: its own fragment key
/// (as the enclaves derive it from `shared_secret`) and its own signing key
/// (from `signing_seed`). Only the simulation's set-up holds both inputs.
pub fn sim_client_secrets(shared_secret: &[u8; 32], signing_seed: &[u8; 32], c: u32) -> ClientSecrets {
    ClientSecrets { fragment_key: client_key(shared_secret, c), signing: sim_client_signing_key(signing_seed, c) }
}

/// How a client behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClientBehaviour {
    Honest,
    /// Sends every node a cell whose values were altered (attack 1, §7.3.1).
    BadCells,
    /// Untargeted poisoning (attack 2): sends `factor ×` its model.
    Poison(f32),
    /// Sends nothing.
    Silent,
    /// Signs two different records of its model (the second a model offset
    /// by one) and sends the first's cells to the lower half of the nodes,
    /// the second's to the rest: every node names it, no record reaches `T`
    /// cells, and the leader excludes it with [`crate::consensus::Exclusion::Equivocation`].
    Equivocate,
    /// Sends a valid, signed coding of a ciphertext whose plaintext is not
    /// a model (one parameter short): every node names it, and the leader
    /// excludes it with [`crate::consensus::Exclusion::Malformed`].
    MalformedModel,
}

/// A client's round.
pub struct FlClient {
    cfg: Arc<ChainConfig>,
    me: usize,
    key: [u8; 32],
    signer: gridledger_core::crypto::KeyPair,
    model: Vec<f32>,
    behaviour: ClientBehaviour,
    assembler: ClientAssembler,
    /// The root each node reported committed: its first report only, so
    /// one node holds one entry however many it sends.
    reports: BTreeMap<usize, Hash32>,
    root_set: bool,
    global: Option<Vec<f32>>,
    /// Ticks of the first request period of a client that has not decoded.
    resync_period: u64,
    /// The upload (C2B) this client sent at its start, re-sent unchanged
    /// at each request while no committed root is known ([`Self::on_timer`]).
    upload: Vec<(To, Message)>,
}

/// A timer to arm, and after how many ticks.
pub type TimerSet = (Timer, u64);

/// Default ticks before a client's first [`Message::Resync`] request (its
/// first request period).
pub const RESYNC_PERIOD: u64 = 400;

/// The request period doubles after each request up to this many times
/// the first ([`resync_delay`]).
pub const RESYNC_BACKOFF_MAX: u64 = 4;

/// Ticks between a client's request `n` (from 1) and request `n + 1` with
/// first request period `period`: `period · 2^n`, at most
/// `period ·` [`RESYNC_BACKOFF_MAX`] (decision: back off exponentially to a
/// capped period, with the same [`MAX_RESYNCS`] cap on the number of
/// requests, rather than derive the period from a round budget the client
/// does not know). The traffic stays bounded by the count, and the
/// schedule lasts [`resync_span`] ticks (49 200 with the default period,
/// well past the forecaster driver's round budget of 20 000), so a GST at
/// any tick `t` before the last request is followed by a request by
/// `t + period · RESYNC_BACKOFF_MAX`.
pub fn resync_delay(period: u64, n: u32) -> u64 {
    if mutants::active(Mutation::ResyncNoBackoff) {
        return period;
    }
    let factor = (1u64 << n.min(62)).min(RESYNC_BACKOFF_MAX);
    period.saturating_mul(factor)
}

/// Ticks from a client's start to its last ([`MAX_RESYNCS`]-th) request
/// with first request period `period`.
pub fn resync_span(period: u64) -> u64 {
    (1..MAX_RESYNCS).fold(period, |t, n| t.saturating_add(resync_delay(period, n)))
}

impl FlClient {
    pub fn new(
        cfg: Arc<ChainConfig>,
        me: usize,
        secrets: ClientSecrets,
        model: Vec<f32>,
        behaviour: ClientBehaviour,
    ) -> Self {
        let assembler = ClientAssembler::new(me, cfg.round, vec![(*cfg.global).clone()]);
        let assembler = assembler.with_chain_offset(cfg.chain);
        Self {
            key: secrets.fragment_key,
            signer: secrets.signing,
            cfg,
            me,
            model,
            behaviour,
            assembler,
            reports: BTreeMap::new(),
            root_set: false,
            global: None,
            resync_period: RESYNC_PERIOD,
            upload: Vec::new(),
        }
    }

    /// Set the ticks of this client's first request period (at least one;
    /// later periods back off, [`resync_delay`]).
    pub fn with_resync_period(mut self, ticks: u64) -> Self {
        self.resync_period = ticks.max(1);
        self
    }

    /// The timer to arm when the client starts (none for a silent client).
    pub fn first_timer(&self) -> Option<TimerSet> {
        (self.behaviour != ClientBehaviour::Silent && !mutants::active(Mutation::ClientOneShot))
            .then_some((Timer::Resync(1), self.resync_period))
    }

    /// Request period `n` ended: a client that has not decoded asks every
    /// node again for its root report and enough mini-fragments to decode
    /// its subfragment (one lost before GST must not cost an honest client
    /// the round), and re-arms after [`resync_delay`], at most
    /// [`MAX_RESYNCS`] times. While it knows no committed root (fewer than
    /// `f + 1` nodes reported one) it also re-sends its upload, the very
    /// messages it sent at its start (the same signed record, so no
    /// equivocation; a node that accepted it treats the repeat as a no-op):
    /// an upload lost before GST, or delayed past the pre-vector timer,
    /// reaches the nodes after GST and is named in their fresh pre-vectors
    /// (see "Fresh pre-vectors" in `consensus`). Bounded like the requests:
    /// at most [`MAX_RESYNCS`] re-sends of one cell per node.
    pub fn on_timer(&mut self, t: Timer) -> (Vec<(To, Message)>, Option<TimerSet>) {
        let Timer::Resync(n) = t else {
            return (Vec::new(), None);
        };
        if self.global.is_some() || n == 0 || n > MAX_RESYNCS {
            return (Vec::new(), None);
        }
        let msg = Message::Resync { client: self.me as u32, seq: n };
        let mut sends: Vec<(To, Message)> = (0..self.cfg.nodes).map(|k| (To::Node(k), msg.clone())).collect();
        if !self.root_set && !mutants::active(Mutation::UploadOneShot) {
            sends.extend(self.upload.iter().cloned());
        }
        let next = (n < MAX_RESYNCS).then(|| (Timer::Resync(n + 1), resync_delay(self.resync_period, n)));
        (sends, next)
    }

    /// The global fragment, once decoded.
    pub fn global(&self) -> Option<&[f32]> {
        self.global.as_deref()
    }

    /// Encode the local model and send cell `k` to node `k` (C2B).
    pub fn start(&mut self) -> (Vec<(To, Message)>, Vec<Fault>) {
        let params = match self.behaviour {
            ClientBehaviour::Silent => return (Vec::new(), Vec::new()),
            ClientBehaviour::Poison(f) => self.model.iter().map(|x| x * f).collect(),
            _ => self.model.clone(),
        };
        let ctx = self.cfg.fragment_context(self.cfg.chain);
        let mut plaintext = params_to_bytes(&params);
        if self.behaviour == ClientBehaviour::MalformedModel {
            plaintext.truncate(plaintext.len().saturating_sub(4));
        }
        let coded = match self.cfg.coder.encode(&self.key, &self.signer, &ctx, self.me as u32, &plaintext) {
            Ok(c) => c,
            Err(e) => return (Vec::new(), vec![Fault::Client { client: self.me as u32, error: e }]),
        };
        let second = if self.behaviour == ClientBehaviour::Equivocate {
            let other: Vec<f32> = params.iter().map(|x| x + 1.0).collect();
            match self.cfg.coder.encode(&self.key, &self.signer, &ctx, self.me as u32, &params_to_bytes(&other)) {
                Ok(c) => Some(c),
                Err(e) => return (Vec::new(), vec![Fault::Client { client: self.me as u32, error: e }]),
            }
        } else {
            None
        };
        let mut sends = Vec::new();
        for k in 0..self.cfg.nodes {
            let coded = match &second {
                Some(s) if k >= self.cfg.nodes / 2 => s,
                _ => &coded,
            };
            if let Some(mut m) = coded.message(k) {
                if self.behaviour == ClientBehaviour::BadCells {
                    m.cell.values[0] += Scalar::ONE;
                }
                sends.push((To::Node(k), Message::Local(m)));
            }
        }
        self.upload = sends.clone();
        (sends, Vec::new())
    }

    /// A message from node `k` (`Some(k)`) or another client.
    pub fn handle(&mut self, from: Result<usize, usize>, msg: Message) -> (Vec<(To, Message)>, Vec<Fault>, bool) {
        let mut sends = Vec::new();
        let mut faults = Vec::new();
        let before = self.global.is_some();
        match msg {
            Message::Committed { node, root, .. } => {
                if from != Ok(node) || self.root_set {
                    return (sends, faults, false);
                }
                if node >= self.cfg.nodes || self.reports.contains_key(&node) {
                    return (sends, faults, false);
                }
                self.reports.insert(node, root);
                let n = self.reports.values().filter(|r| **r == root).count();
                if n > self.cfg.f() {
                    self.root_set = true;
                    let step = self.assembler.set_root(self.cfg.chain, root);
                    self.absorb(step, &mut sends, &mut faults);
                }
            }
            Message::Mini { mf, .. } => {
                let src = match from {
                    Ok(k) => Source::Node(k),
                    Err(c) => Source::Client(c),
                };
                let step = self.assembler.on_mini(src, mf);
                self.absorb(step, &mut sends, &mut faults);
            }
            _ => {}
        }
        (sends, faults, !before && self.global.is_some())
    }

    fn absorb(
        &mut self,
        step: crate::dissemination::AssemblerStep,
        sends: &mut Vec<(To, Message)>,
        faults: &mut Vec<Fault>,
    ) {
        for mf in step.forward {
            for c in 0..self.cfg.clients {
                if c != self.me {
                    sends.push((To::Client(c), Message::Mini { from_node: false, mf: mf.clone() }));
                }
            }
        }
        faults.extend(step.faults.into_iter().map(Fault::Dissemination));
        if !step.decoded.is_empty() {
            if let Some(bytes) = self.assembler.fragment(self.cfg.chain) {
                match params_from_bytes(bytes, self.cfg.dims) {
                    Ok(p) => self.global = Some(p),
                    Err(e) => faults.push(Fault::Dissemination(AssemblyFault::Unattributed(e))),
                }
            }
        }
    }
}

/// A participant in the simulator.
pub enum Participant<A: Attester> {
    Node(Box<ChainNode<A>>),
    Client(Box<FlClient>),
}

/// What the simulator records.
#[derive(Clone, Debug, PartialEq)]
pub enum RoundOutput {
    Node(Output),
    /// A client decoded the global fragment.
    Global(Vec<f32>),
}

/// Timers of either side (a client's is [`Timer::Resync`]).
pub type RoundTimer = Timer;

fn dest(nodes: usize, to: To) -> Dest {
    match to {
        To::Node(k) => Dest::One(k as NodeId),
        To::Client(c) => Dest::One((nodes + c) as NodeId),
    }
}

impl<A: Attester> Participant<A> {
    fn nodes(&self) -> usize {
        match self {
            Participant::Node(n) => n.config().nodes,
            Participant::Client(c) => c.cfg.nodes,
        }
    }

    fn effects_of(&self, step: Step) -> Effects<Self> {
        let nodes = self.nodes();
        Effects {
            sends: step.sends.into_iter().map(|(to, m)| (dest(nodes, to), m)).collect(),
            timers: step.timers.into_iter().map(|(timer, after)| TimerOp::Set { timer, after }).collect(),
            outputs: step.outputs.into_iter().map(RoundOutput::Node).collect(),
            faults: step.faults,
        }
    }
}

impl<A: Attester> Protocol for Participant<A> {
    type Message = Message;
    type Timer = Timer;
    type Output = RoundOutput;
    type Fault = Fault;
    type Persisted = ();

    fn start(&mut self) -> Effects<Self> {
        match self {
            Participant::Node(n) => {
                let step = n.start();
                self.effects_of(step)
            }
            Participant::Client(c) => {
                let nodes = c.cfg.nodes;
                let (sends, faults) = c.start();
                let timers = c.first_timer().map(|(timer, after)| TimerOp::Set { timer, after }).into_iter().collect();
                Effects {
                    sends: sends.into_iter().map(|(to, m)| (dest(nodes, to), m)).collect(),
                    faults,
                    timers,
                    ..Effects::default()
                }
            }
        }
    }

    fn handle_message(&mut self, from: NodeId, message: Message) -> Effects<Self> {
        let nodes = self.nodes();
        let from = from as usize;
        match self {
            Participant::Node(n) => {
                let from = if from < nodes { Source::Node(from) } else { Source::Client(from - nodes) };
                let step = n.handle(from, message);
                self.effects_of(step)
            }
            Participant::Client(c) => {
                let src = if from < nodes { Ok(from) } else { Err(from - nodes) };
                let (sends, faults, done) = c.handle(src, message);
                let outputs = if done {
                    c.global().map(|g| RoundOutput::Global(g.to_vec())).into_iter().collect()
                } else {
                    Vec::new()
                };
                Effects {
                    sends: sends.into_iter().map(|(to, m)| (dest(nodes, to), m)).collect(),
                    faults,
                    outputs,
                    ..Effects::default()
                }
            }
        }
    }

    fn handle_timer(&mut self, timer: Timer) -> Effects<Self> {
        match self {
            Participant::Node(n) => {
                let step = n.on_timer(timer);
                self.effects_of(step)
            }
            Participant::Client(c) => {
                let nodes = c.cfg.nodes;
                let (sends, next) = c.on_timer(timer);
                Effects {
                    sends: sends.into_iter().map(|(to, m)| (dest(nodes, to), m)).collect(),
                    timers: next.map(|(timer, after)| TimerOp::Set { timer, after }).into_iter().collect(),
                    ..Effects::default()
                }
            }
        }
    }

    fn persisted(&self) {}
}
