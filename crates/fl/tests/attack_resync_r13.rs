//! Attack round 13 on issue 16: the nodes' answers to a client's request
//! ([`Message::Resync`]: the report and `t₂` mini-fragments of the node's
//! subfragment) and what is still sent once only, in the simulator with the
//! real round driver ([`Participant`]).

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::coding::FragmentCoder;
use gridledger_fl::consensus::{ChainConfig, ChainNode, ChainParams};
use gridledger_fl::consensus::{Fault, Message};
use gridledger_fl::dissemination::{AssemblyFault, GlobalCoder, Source};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::round::ClientBehaviour;
use gridledger_fl::round::{
    sim_client_secrets, sim_client_signing_key, sim_node_key, FlClient, Participant, RoundOutput,
};
use gridledger_fl::FlError;
use gridledger_sim::{Adversary, Dest, NetConfig, Simulation, Time};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// A Byzantine node: every mini-fragment it sends a client (at its commit
/// and in its answers to requests) has its first value altered and names
/// node `as_node` instead of itself.
struct BadMinisAs {
    as_node: usize,
}

impl Adversary<P> for BadMinisAs {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Mini { from_node: true, mut mf } => {
                    mf.node = self.as_node;
                    if let Some(v) = mf.values.first_mut() {
                        *v += blstrs::Scalar::from(1u64);
                    }
                    (d, Message::Mini { from_node: true, mf })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// On a client that joins the round late: everything it sends before tick
/// `until` is lost (with [`LoseToUntil`] on everyone else, its links both
/// ways come up at `until`).
struct LateJoiner {
    until: Time,
}

impl Adversary<P> for LateJoiner {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|_| now >= self.until).collect()
    }
}

/// On anyone else: what it sends participant `to` before `until` is lost.
struct LoseToUntil {
    to: u32,
    until: Time,
}

impl Adversary<P> for LoseToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, _)| now >= self.until || *d != Dest::One(self.to)).collect()
    }
}

/// On a node: its root reports to participant `to` are lost before `until`.
struct LoseReportsToUntil {
    to: u32,
    until: Time,
}

impl Adversary<P> for LoseReportsToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| now >= self.until || *d != Dest::One(self.to) || !matches!(m, Message::Committed { .. }))
            .collect()
    }
}

/// On a client: its upload (C2B, [`Message::Local`]) is lost before tick
/// `until`; the rest is delivered.
struct LoseUploadUntil(Time);

impl Adversary<P> for LoseUploadUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| now >= self.0 || !matches!(m, Message::Local(_))).collect()
    }
}

/// On a client: its uploads to nodes `to` are lost before tick `until`.
struct LoseUploadToUntil {
    to: Vec<usize>,
    until: Time,
}

impl Adversary<P> for LoseUploadToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| {
                now >= self.until
                    || !matches!(m, Message::Local(_))
                    || !self.to.iter().any(|&k| *d == Dest::One(k as u32))
            })
            .collect()
    }
}

/// A Byzantine node flooding a client's pre-root queue: every
/// mini-fragment it sends is replaced by `copies` distinct wrong ones (each
/// client index, values altered), each labelled as its own node's.
struct FloodMinis {
    copies: usize,
    clients: usize,
}

impl Adversary<P> for FloodMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let mut out = Vec::new();
        for (d, m) in sends {
            match m {
                Message::Mini { from_node: true, mf } => {
                    for i in 0..self.copies {
                        let mut bad = mf.clone();
                        bad.client = i % self.clients;
                        if let Some(v) = bad.values.first_mut() {
                            *v += blstrs::Scalar::from(i as u64 + 1);
                        }
                        out.push((d, Message::Mini { from_node: true, mf: bad }));
                    }
                }
                other => out.push((d, other)),
            }
        }
        out
    }
}

fn mini_faults_naming(r: &Run, node: usize) -> usize {
    r.faults()
        .iter()
        .filter(|f| {
            matches!(f, Fault::Dissemination(AssemblyFault::Refused {
                error: FlError::MerkleProofFailed { node: n, .. }, ..
            }) if *n == node)
        })
        .count()
}

/// The senders the clients' records of refused mini-fragments name.
fn refused_senders(r: &Run) -> Vec<Source> {
    r.faults()
        .iter()
        .filter_map(|f| match f {
            Fault::Dissemination(AssemblyFault::Refused { from, .. }) => Some(*from),
            _ => None,
        })
        .collect()
}

/// K = 4 (f = 1), 4 honest clients; node 0 is Byzantine and sends every
/// client wrong mini-fragments (its commit-time one and all `t₂` of each
/// answer) labelled as node 1's. Every honest client still decodes the
/// right global fragment (the wrong cells fail the root's Merkle paths).
#[test]
fn wrong_answers_from_a_byzantine_node_do_not_stop_decoding() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(BadMinisAs { as_node: 1 }))];
    let r = run(3, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// K = 7 (f = 2) and K = 10 (f = 3), 4 honest clients: `f` Byzantine
/// nodes each send wrong mini-fragments labelled as the next node's. Every
/// honest client still decodes the right global fragment.
#[test]
fn wrong_answers_from_f_byzantine_nodes_do_not_stop_decoding_at_k_7_and_10() {
    for k in [7usize, 10] {
        let f = (k - 1) / 3;
        let adv: Vec<(usize, Box<dyn Adversary<P>>)> =
            (0..f).map(|n| (n, Box::new(BadMinisAs { as_node: n + 1 }) as Box<dyn Adversary<P>>)).collect();
        let r = run(5, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1) {
            panic!("K = {k}: {e}");
        }
    }
}

/// K = 4 and 7, 4 honest clients: node 0 is Byzantine and floods each
/// client with 64 distinct wrong mini-fragments for every one it should
/// send (at its commit and in every answer); client 3 gets no root report
/// from the honest nodes before tick 1500, so everything waits in its
/// pre-root queue meanwhile. The flood fills node 0's own share only: the
/// honest nodes' answers are held, and client 3 decodes after GST.
#[test]
fn a_byzantine_node_flooding_the_pre_root_queue_crowds_out_no_honest_answer() {
    for k in [4usize, 7] {
        let me = (k + 3) as u32;
        let mut adv: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(FloodMinis { copies: 64, clients: 4 }))];
        for n in 1..k {
            adv.push((n, Box::new(LoseReportsToUntil { to: me, until: 1500 })));
        }
        let r = run(13, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
        r.debug_trace();
        let overloaded = r
            .sim
            .faults
            .iter()
            .filter(|(_, id, f)| {
                *id == me
                    && matches!(
                        f,
                        Fault::Dissemination(AssemblyFault::Refused {
                            from: Source::Node(0),
                            error: FlError::Overloaded
                        })
                    )
            })
            .count();
        assert!(overloaded > 0, "K = {k}: the flood never reached node 0's quota");
        assert!(r.global_of(3).is_some(), "K = {k}: client 3 never decoded");
        assert_eq!(r.global_of(3), r.global_of(0), "K = {k}");
    }
}

/// Same run: the clients' fault records for the wrong mini-fragments
/// should name the node that sent them (node 0), not the node the
/// mini-fragment claims (node 1, honest).
///
/// What happened (fixed): `ClientAssembler::on_mini` verified the
/// mini-fragment against the root first and recorded `MerkleProofFailed {
/// node: mf.node }`, the *claimed* node; the check that a node's
/// mini-fragment names the sender (`k != mf.node`) ran only after the
/// Merkle check passed. So every fault record of the run blamed honest
/// node 1, none node 0. Now the sender check comes first.
#[test]
fn a_byzantine_nodes_bad_answers_are_blamed_on_it_not_on_the_node_they_name() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(BadMinisAs { as_node: 1 }))];
    let r = run(3, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
    r.debug_trace();
    let blamed_honest = mini_faults_naming(&r, 1);
    let blamed_sender = mini_faults_naming(&r, 0);
    assert!(
        blamed_sender > 0 && blamed_honest == 0,
        "faults naming node 0: {blamed_sender}, naming honest node 1: {blamed_honest}"
    );
    let senders = refused_senders(&r);
    assert!(senders.iter().all(|s| *s == Source::Node(0)), "records against others than node 0: {senders:?}");
}

/// A Byzantine client: every mini-fragment it forwards (C2C) has its first
/// value altered and claims to be client `as_client`'s.
struct BadForwardsAs {
    as_client: usize,
}

impl Adversary<P> for BadForwardsAs {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Mini { from_node: false, mut mf } => {
                    mf.client = self.as_client;
                    if let Some(v) = mf.values.first_mut() {
                        *v += blstrs::Scalar::from(1u64);
                    }
                    (d, Message::Mini { from_node: false, mf })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// K = 4, 4 clients; client 0 is Byzantine and forwards (C2C) wrong
/// mini-fragments claiming to be client 2's. The other clients still
/// decode; their fault records should name client 0, the sender.
///
/// What happened (fixed): every record was `MerkleProofFailed { node: k,
/// client: Some(2) }` — the node and client the mini-fragment claims, both
/// honest; nothing in the record named client 0 (the C2C twin of the
/// finding above). Now a client's forward must be its own mini-fragment
/// (`mf.client` is the sender), checked first, and the record names the
/// sender.
#[test]
fn a_byzantine_clients_bad_forwards_are_not_blamed_on_the_client_they_name() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(k, Box::new(BadForwardsAs { as_client: 2 }))];
    let r = run(3, k, vec![ClientBehaviour::Honest; 4], adv, &[1, 2, 3]);
    r.debug_trace();
    for c in 1..4 {
        assert!(r.global_of(c).is_some(), "client {c} decoded nothing");
    }
    let naming_2 = r
        .faults()
        .iter()
        .filter(|f| {
            matches!(
                f,
                Fault::Dissemination(AssemblyFault::Refused {
                    error: FlError::MerkleProofFailed { client: Some(2), .. },
                    ..
                })
            )
        })
        .count();
    let all = r
        .faults()
        .iter()
        .filter(|f| {
            matches!(f, Fault::Dissemination(AssemblyFault::Refused { error: FlError::MerkleProofFailed { .. }, .. }))
        })
        .count();
    assert!(all > 0, "no bad forward was refused");
    assert_eq!(naming_2, 0, "{naming_2} of {all} fault records name honest client 2 for client 0's forwards");
    let senders = refused_senders(&r);
    assert!(senders.iter().all(|s| *s == Source::Client(0)), "records against others than client 0: {senders:?}");
}

/// K = 7 (f = 2) and 4 clients (t₂ = 2): client 3 joins late — nothing it
/// sends, and nothing sent to it, gets through before tick 3000 (so its
/// upload is lost and the chain commits without it). It still decodes the
/// round's global fragment from the nodes' answers after it joins.
#[test]
fn a_client_joining_after_the_commit_still_decodes() {
    for k in [4usize, 7, 10] {
        let me = (k + 3) as u32;
        let mut adv: Vec<(usize, Box<dyn Adversary<P>>)> =
            (0..k + 3).map(|n| (n, Box::new(LoseToUntil { to: me, until: 3000 }) as Box<dyn Adversary<P>>)).collect();
        adv.push((k + 3, Box::new(LateJoiner { until: 3000 })));
        let r = run(11, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
        r.debug_trace();
        assert!(r.global_of(3).is_some(), "K = {k}: the late client never decoded");
        assert_eq!(r.global_of(3), r.global_of(0), "K = {k}");
    }
}

/// K = 4, 4 honest clients: every client's upload (C2B) is lost before tick
/// 1000 (a partition between the clients and the chain that heals at
/// tick 1000); everything else, and everything after tick 1000, is
/// delivered. The run goes on for the forecaster's whole round budget
/// (20 000 ticks).
///
/// What happened (fixed): no node committed and no client decoded. A client sent
/// its upload once, at its start, and never again; a node has no way to
/// ask for it, and a client's request ([`Message::Resync`]) is answered
/// only after a commit. With every upload lost the nodes' pre-vectors name
/// no client, no leader aggregates, and the chain's round fails for good
/// although the network is reliable from tick 1000 on. What should happen:
/// as for the other messages lost before GST, a client that has not decoded
/// re-sends its upload (or the nodes ask for it), so the round commits
/// after GST. Fixed so: a client that knows no committed root re-sends its
/// upload (the same record) with each request, and a node accepts an
/// upload after its pre-vector timer and names it in a fresh pre-vector.
#[test]
fn uploads_lost_before_gst_do_not_halt_the_round() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..4).map(|c| (k + c, Box::new(LoseUploadUntil(1000)) as Box<dyn Adversary<P>>)).collect();
    let cfg = config(k, 4, 1);
    let net = NetConfig::reliable(k + 4, 6);
    let r = run_custom(7, cfg, net, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3], 20_000);
    r.debug_trace();
    assert!(!r.committed().is_empty(), "no node committed by tick {}", r.sim.now());
    for c in 0..4 {
        assert!(r.global_of(c).is_some(), "client {c} decoded nothing");
    }
}

/// K = 4 (f = 1), 4 honest clients, nothing lost: before GST (tick 1000)
/// the links from the clients to the nodes (all four, or only nodes 2
/// and 3) are slow (200–300 ticks), every other link fast (1–6 ticks), and
/// every link fast from GST on. Every upload reaches every node by tick
/// ~300. Run for the forecaster's round
/// budget (20 000 ticks).
///
/// What happened (fixed): no node committed. A node's pre-vector was a snapshot of the
/// uploads it accepted by its [`Timer`](gridledger_fl::consensus::Timer)
/// `PreVector` (tick 40 here), sent once (re-sent unchanged to later
/// leaders); the tally is a snapshot too. Uploads that arrive later are
/// never named, no client is agreed, and the chain changes views until the
/// budget ends, though every message was delivered. What should happen:
/// under partial synchrony the round commits after GST (e.g. a node
/// re-attests its pre-vector, and the committee its deter-vector, for a
/// later aggregation view with the uploads it holds by then).
#[test]
fn uploads_delayed_before_gst_do_not_halt_the_round() {
    let k = 4;
    // Slow links from every client to every node, or to nodes 2 and 3
    // only (f + 1 of them): both halt.
    for slow in [vec![2usize, 3], vec![0, 1, 2, 3]] {
        let cfg = config(k, 4, 1);
        let mut net = NetConfig::reliable(k + 4, 6);
        net.gst = 1000;
        for c in 0..4 {
            for &n in &slow {
                net.links[k + c][n] = gridledger_sim::Delay::Uniform { min: 200, max: 300 };
            }
        }
        let r = run_custom(7, cfg, net, vec![ClientBehaviour::Honest; 4], Vec::new(), &[0, 1, 2, 3], 20_000);
        r.debug_trace();
        assert!(!r.committed().is_empty(), "slow to nodes {slow:?}: no node committed by tick {}", r.sim.now());
        for c in 0..4 {
            assert!(r.global_of(c).is_some(), "slow to nodes {slow:?}: client {c} decoded nothing");
        }
    }
}

/// Control of the above: one client's upload lost before GST. The round
/// commits without it and every client, that one included, decodes.
#[test]
fn one_upload_lost_before_gst_costs_only_that_clients_contribution() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(k + 3, Box::new(LoseUploadUntil(1000)))];
    let r = run(7, k, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3]);
    r.debug_trace();
    for c in 0..4 {
        assert!(r.global_of(c).is_some(), "client {c} decoded nothing");
    }
}

/// K = 4 (f = 1), 4 honest clients: the links from the clients to nodes 2
/// and 3 are down before tick 1000 (each client's upload reaches nodes 0
/// and 1 only, `T = K − 2f = 2` cells, enough to decode it); everything
/// else is delivered, and everything from tick 1000 on. Run for the
/// forecaster's round budget.
///
/// What happened (fixed): no node committed. Only two nodes held each client's cells,
/// fewer than the `2f + 1` votes a client needs in the tally, so no client
/// is agreed; the uploads are never sent again, and the chain changes views
/// until the budget ends. What should happen: the round commits after GST
/// (a client re-sends its upload while it has not decoded, or a node asks
/// for the cells it lacks).
#[test]
fn uploads_to_half_the_nodes_lost_before_gst_do_not_halt_the_round() {
    let k = 4;
    let adv: Vec<(usize, Box<dyn Adversary<P>>)> = (0..4)
        .map(|c| (k + c, Box::new(LoseUploadToUntil { to: vec![2, 3], until: 1000 }) as Box<dyn Adversary<P>>))
        .collect();
    let cfg = config(k, 4, 1);
    let net = NetConfig::reliable(k + 4, 6);
    let r = run_custom(7, cfg, net, vec![ClientBehaviour::Honest; 4], adv, &[0, 1, 2, 3], 20_000);
    r.debug_trace();
    assert!(!r.committed().is_empty(), "no node committed by tick {}", r.sim.now());
    for c in 0..4 {
        assert!(r.global_of(c).is_some(), "client {c} decoded nothing");
    }
}

/// `common::config` with a model of `dims` parameters (so that at K = 10 a
/// subfragment is more than one element and `t₂ > 1`).
fn config_dims(nodes: usize, clients: usize, dims: usize) -> Arc<ChainConfig> {
    let f = (nodes - 1) / 3;
    let coder = FragmentCoder::new(Kzg::insecure_from_seed(16, 9), dims * 4 + 16, nodes, nodes - 2 * f).unwrap();
    let global = GlobalCoder::for_chain(dims * 4, nodes, clients).unwrap();
    Arc::new(ChainConfig::new(ChainParams {
        task: gridledger_core::Hash32([1; 32]),
        run: RUN,
        chain: 2,
        round: 5,
        nodes,
        clients,
        dims,
        beta: (clients - 1) / 3,
        measurement: enclave(0).measurement(),
        node_keys: (0..nodes).map(|k| enclave(k).attestation_key()).collect(),
        pbft_keys: (0..nodes).map(|k| sim_node_key(k).public()).collect(),
        client_keys: (0..clients as u32).map(|c| sim_client_signing_key(&SIGN_SEED, c).public()).collect(),
        random_value: [7; 32],
        prev_block: gridledger_core::Hash32([3; 32]),
        coder: Arc::new(coder),
        global: Arc::new(global),
    }))
}

/// One round of `cfg` with honest clients' models of `cfg.dims`
/// parameters; returns each client's decoded global fragment.
fn run_dims(
    seed: u64,
    cfg: Arc<ChainConfig>,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
) -> Vec<Option<Vec<f32>>> {
    let (nodes, clients, dims) = (cfg.nodes, cfg.clients, cfg.dims);
    let mut sim = Simulation::new(seed, NetConfig::reliable(nodes + clients, 6), move |id, _| {
        let id = id as usize;
        if id < nodes {
            Participant::Node(Box::new(ChainNode::new(cfg.clone(), id, enclave(id), SK, sim_node_key(id), TIMING)))
        } else {
            let c = id - nodes;
            let m: Vec<f32> = (0..dims).map(|d| 1.0 + 0.01 * ((c * 7 + d * 3) % 11) as f32).collect();
            Participant::Client(Box::new(FlClient::new(
                cfg.clone(),
                c,
                sim_client_secrets(&SK, &SIGN_SEED, c as u32),
                m,
                ClientBehaviour::Honest,
            )))
        }
    });
    sim.set_restart_after(None);
    for (id, a) in adversaries {
        sim.set_adversary(id as u32, a);
    }
    sim.start();
    let decoded = |s: &Simulation<P>, c: usize| {
        s.outputs.iter().find_map(|(_, n, o)| match o {
            RoundOutput::Global(g) if *n as usize == nodes + c => Some(g.clone()),
            _ => None,
        })
    };
    sim.run_until(20_000, |s| (0..clients).all(|c| decoded(s, c).is_some()));
    (0..clients).map(|c| decoded(&sim, c)).collect()
}

/// K = 10 (f = 3) with a 100-parameter model and 4 clients, so `t₂ = 2`:
/// nodes 0–2 are Byzantine (wrong mini-fragments labelled as the next
/// node's), client 3's links both ways are down until tick 3000 (it joins
/// late), and every client's C2C forward to it is lost meanwhile. Every
/// client decodes the same global fragment, client 3 from the honest
/// nodes' answers alone.
#[test]
fn k_10_with_two_minis_per_answer_a_late_client_decodes_despite_f_wrong_answering_nodes() {
    let (k, clients) = (10usize, 4usize);
    let cfg = config_dims(k, clients, 100);
    assert_eq!(cfg.global.minis_needed(), 2, "the set-up should need two mini-fragments per subfragment");
    let me = (k + 3) as u32;
    let mut adv: Vec<(usize, Box<dyn Adversary<P>>)> = Vec::new();
    for n in 0..3 {
        adv.push((n, Box::new(BadMinisAs { as_node: n + 1 })));
    }
    for n in 3..k + 3 {
        adv.push((n, Box::new(LoseToUntil { to: me, until: 3000 })));
    }
    adv.push((k + 3, Box::new(LateJoiner { until: 3000 })));
    let globals = run_dims(17, cfg, adv);
    for (c, g) in globals.iter().enumerate() {
        assert!(g.is_some(), "client {c} never decoded");
        assert_eq!(g, &globals[0], "client {c}");
    }
}

/// The documented bound on one answer ("Clients asking again" in the
/// consensus docs): a mini-fragment takes at most
/// `32 · (cell₂ + ⌈log₂ C⌉ + ⌈log₂ K⌉ + 4)` bytes (values, both Merkle
/// paths, mini-root, context and indices, before framing), and
/// `t₂ · cell₂` is less than a subfragment plus one cell. Checked on the
/// mini-fragments the coder makes for several K and C.
#[test]
fn the_documented_bytes_bound_of_an_answer_holds() {
    let log2 = |n: usize| n.next_power_of_two().trailing_zeros() as usize;
    for k in [4usize, 7, 10, 13] {
        for c in [4usize, 5, 7, 10, 16] {
            let coder = GlobalCoder::for_chain(400, k, c).unwrap();
            let bytes: Vec<u8> = (0..400u32).map(|i| (i * 13 + 5) as u8).collect();
            let rel = coder.release(gridledger_core::Hash32([9; 32]), 0, 1, &bytes).unwrap();
            for sf in &rel.subfragments {
                let minis = coder.mini_fragments(sf.node, &rel.root, sf).unwrap();
                let cell2 = minis[0].values.len();
                assert!(
                    coder.minis_needed() * cell2 < sf.values.len() + cell2,
                    "K = {k}, C = {c}: t₂ · cell₂ = {} for a subfragment of {}",
                    coder.minis_needed() * cell2,
                    sf.values.len()
                );
                for mf in &minis {
                    // ctx (instance, chain, round, byte_len), node, client,
                    // mini-root, and each proof's index and leaf count.
                    let fixed = 32 + 3 * 4 + 2 * 8 + 32 + 2 * 16;
                    let size = 32 * mf.values.len()
                        + 32 * (mf.mini_proof.siblings.len() + mf.sub_proof.siblings.len())
                        + fixed;
                    let bound = 32 * (cell2 + log2(c) + log2(k) + 4);
                    assert!(size <= bound, "K = {k}, C = {c}: {size} bytes above the bound {bound}");
                }
            }
        }
    }
}

/// On every participant: before tick `until`, each message it sends other
/// than an upload ([`Message::Local`], found above to be one-shot) is lost
/// with probability `per_mille`/1000.
struct RandomLossButUploads {
    per_mille: u32,
    until: Time,
}

impl Adversary<P> for RandomLossButUploads {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(_, m)| {
                now >= self.until || matches!(m, Message::Local(_)) || rng.random_range(0..1000) >= self.per_mille
            })
            .collect()
    }
}

/// K = 4 and 7, 4 honest clients: before GST (tick 2000) 90 % of every
/// message but the uploads is lost (pre- and deter-vectors, forwards,
/// proposals, PBFT, fetches, reports, mini-fragments, C2C forwards,
/// requests). Every client decodes the same global fragment within the
/// forecaster's round budget (held on the seeds tried, 0–7 at 30, 60 and
/// 90 %; three kept here).
#[test]
fn heavy_loss_before_gst_of_all_but_uploads_costs_no_client_the_round() {
    for k in [4usize, 7] {
        for seed in 0..3u64 {
            let adv: Vec<(usize, Box<dyn Adversary<P>>)> = (0..k + 4)
                .map(|n| (n, Box::new(RandomLossButUploads { per_mille: 900, until: 2000 }) as Box<dyn Adversary<P>>))
                .collect();
            let r = run_custom(
                seed,
                config(k, 4, 1),
                NetConfig::reliable(k + 4, 6),
                vec![ClientBehaviour::Honest; 4],
                adv,
                &[0, 1, 2, 3],
                20_000,
            );
            for c in 0..4 {
                assert!(r.global_of(c).is_some(), "K = {k}, seed {seed}: client {c} decoded nothing");
                assert_eq!(r.global_of(c), r.global_of(0), "K = {k}, seed {seed}: client {c}");
            }
        }
    }
}

/// K = 4 and 7, 4 honest clients, nothing lost: before GST (tick 1500)
/// the node-to-node, node-to-client, client-to-client or all those links
/// are slow (300–700 ticks); the client-to-node links (uploads, see
/// [`uploads_delayed_before_gst_do_not_halt_the_round`]) stay fast. Every
/// client decodes, and the committed view aggregated all four.
#[test]
fn slow_links_before_gst_other_than_uploads_cost_no_client_the_round() {
    for k in [4usize, 7] {
        for which in 0..4 {
            let mut net = NetConfig::reliable(k + 4, 6);
            net.gst = 1500;
            for a in 0..k + 4 {
                for b in 0..k + 4 {
                    let slow = match which {
                        0 => a < k && b < k,
                        1 => a < k && b >= k,
                        2 => a >= k && b >= k,
                        _ => !(a >= k && b < k),
                    };
                    if slow && a != b {
                        net.links[a][b] = gridledger_sim::Delay::Uniform { min: 300, max: 700 };
                    }
                }
            }
            let r = run_custom(
                1,
                config(k, 4, 1),
                net,
                vec![ClientBehaviour::Honest; 4],
                Vec::new(),
                &[0, 1, 2, 3],
                20_000,
            );
            for c in 0..4 {
                assert!(r.global_of(c).is_some(), "K = {k}, slow set {which}: client {c} decoded nothing");
                assert_eq!(r.global_of(c), r.global_of(0), "K = {k}, slow set {which}: client {c}");
            }
            let last = r.aggregated().last().cloned();
            assert_eq!(last.map(|(_, cs)| cs), Some(vec![0, 1, 2, 3]), "K = {k}, slow set {which}");
        }
    }
}
