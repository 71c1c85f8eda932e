//! Attack round 12 on issue 16: the clients' requests to the nodes
//! ([`Message::Resync`]). A client that has not decoded asks every node
//! again for its root report and *its own* mini-fragments, at most
//! [`MAX_RESYNCS`] times, [`RESYNC_PERIOD`] ticks apart. What the other
//! clients forward it (C2C) is still sent once only, and nobody asks a
//! client again.
//!
//! Fixed after round 12: a node answers a request with enough
//! mini-fragments of its subfragment to decode it (the client's own and the
//! next clients', [`GlobalCoder::minis_needed`](gridledger_fl::dissemination::GlobalCoder::minis_needed)),
//! and the request period backs off to a capped period
//! ([`gridledger_fl::round::resync_delay`]), so the three findings below
//! pass; the "What happened" notes describe the code they were found on.

mod common;

use common::*;
use gridledger_fl::consensus::{ChainNode, Message, MAX_RESYNCS};
use gridledger_fl::round::{sim_client_secrets, sim_node_key, ClientBehaviour, FlClient, Participant, RESYNC_PERIOD};
use gridledger_sim::{Adversary, Dest, NetConfig, Simulation, Time};
use rand_chacha::ChaCha8Rng;

/// On any participant: everything it sends to participant `to` before tick
/// `until` is lost (`to`'s inbound links are down until GST); the rest is
/// delivered.
struct LoseToUntil {
    to: u32,
    until: Time,
}

impl Adversary<P> for LoseToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, _)| now >= self.until || *d != Dest::One(self.to)).collect()
    }
}

/// On a client: every mini-fragment it forwards to the other clients (C2C)
/// before tick `until` is lost.
struct LoseForwardsUntil(Time);

impl Adversary<P> for LoseForwardsUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(_, m)| now >= self.0 || !matches!(m, Message::Mini { from_node: false, .. }))
            .collect()
    }
}

/// A Byzantine client: uploads its model honestly but never forwards a
/// mini-fragment to the other clients (within the `f_cli` the second code
/// tolerates: "the honest clients are the ones that forward").
struct NoForwards;

impl Adversary<P> for NoForwards {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| !matches!(m, Message::Mini { from_node: false, .. })).collect()
    }
}

/// `common::run` with the horizon as a parameter.
fn run_for(
    seed: u64,
    nodes: usize,
    behaviours: Vec<ClientBehaviour>,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
    honest_clients: &[usize],
    horizon: Time,
) -> Run {
    let clients = behaviours.len();
    let cfg = config(nodes, clients, clients / 3);
    let net = NetConfig::reliable(nodes + clients, 6);
    let mut sim = Simulation::new(seed, net, move |id, _| {
        let id = id as usize;
        if id < nodes {
            Participant::Node(Box::new(ChainNode::new(cfg.clone(), id, enclave(id), SK, sim_node_key(id), TIMING)))
        } else {
            let c = id - nodes;
            Participant::Client(Box::new(FlClient::new(
                cfg.clone(),
                c,
                sim_client_secrets(&SK, &SIGN_SEED, c as u32),
                model(c),
                behaviours[c],
            )))
        }
    });
    sim.set_restart_after(None);
    for (id, a) in adversaries {
        sim.set_adversary(id as u32, a);
    }
    sim.start();
    let want: Vec<u32> = honest_clients.iter().map(|&c| (nodes + c) as u32).collect();
    sim.run_until(horizon, |s| {
        want.iter().all(|id| {
            s.outputs.iter().any(|(_, n, o)| n == id && matches!(o, gridledger_fl::round::RoundOutput::Global(_)))
        })
    });
    Run { sim, nodes }
}

/// The clients of each run: 4 (`f_cli = 1`). With the 28-parameter model
/// of `common` and K = 4 or 7, a subfragment is two elements and any 2 of
/// its 4 mini-fragments decode it (the second code's threshold of
/// `C − f_cli = 3` rounded down by the power-of-two cell size), so a
/// client needs one other client's forward besides its own mini-fragment
/// from the node. (At K = 10 a subfragment is one element and a client's
/// own mini-fragments suffice.)
const CLIENTS: usize = 4;

/// K = 4 and 7 (f = 1, 2), four honest clients, no Byzantine party.
/// Client 3's inbound links (from every node and every other client) are
/// down until tick 1500, long after the chain commits (tick ~130) and the
/// other clients decode; from tick 1500 on everything is delivered and the
/// run goes on to tick 5000.
///
/// What happened: client 3 never decodes. After GST its requests
/// ([`Message::Resync`]) bring it the root reports and *its own*
/// mini-fragment from each node (one of the two it needs per subfragment
/// here); the other is one that clients 0–2 forwarded it (C2C) once, at
/// tick ~130, and lost. No one forwards them again and a
/// client cannot ask another client, so the new request path cannot
/// complete the round. What should happen: as for the root report and the
/// node's own mini-fragments (the attack r11 fix), a message lost before
/// GST must not cost an honest client the round — e.g. a node answers a
/// request with every mini-fragment of its subfragment (it holds all `C`),
/// or a client asks the other clients too.
#[test]
fn a_client_cut_off_from_nodes_and_clients_until_after_the_commit_still_decodes() {
    for k in [4usize, 7] {
        let to = (k + 3) as u32;
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
            (0..k + 3).map(|n| (n, Box::new(LoseToUntil { to, until: 1500 }) as Box<dyn Adversary<P>>)).collect();
        let r = run(5, k, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &[0, 1, 2, 3]);
        r.debug_trace();
        // The premise: the chain committed before the link came back and
        // the other clients decoded.
        assert!(!r.committed().is_empty(), "K = {k}: no commit at all: {:?}", r.faults());
        for c in 0..3 {
            assert!(r.global_of(c).is_some(), "K = {k}: client {c} did not decode");
        }
        if let Err(e) = round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1) {
            panic!("K = {k}: {e}");
        }
    }
}

/// K = 4 and 7, four clients: client 1 is Byzantine (one client, within
/// `f_cli = 1`): it uploads its model honestly and never forwards a
/// mini-fragment to the other clients. Honest clients 2 and 3 lose the
/// forwards they send before tick 1500 (their outbound C2C links are down
/// until GST). Honest client 0 hears every node on time: it has the
/// root and its own mini-fragments at the commit. Everything else is
/// delivered, and the run goes on to tick 5000.
///
/// What happened: client 0 never decodes. Per subfragment it holds its own
/// mini-fragment and needs one more (2 of 4 here: the cells are rounded
/// to a power of two); the only ones that could come are the forwards of
/// clients 2 and 3, sent once at tick ~130 and lost. Clients 2 and 3
/// decoded (each got client 0's forward), so they never ask again, and a
/// client forwards each node's mini-fragment once only
/// (`ChainState::forwarded`); client 0's requests bring it only the
/// report and mini-fragments it already holds, 32 times over from every
/// node. What should happen: once the network is synchronous, an honest
/// client decodes whenever `f_cli` or fewer clients withhold forwards; a
/// forward lost before GST must be recoverable (a node holds every
/// mini-fragment of its subfragment and could answer a request with those
/// the client lacks).
#[test]
fn forwards_lost_before_gst_with_one_silent_forwarder_do_not_cost_an_honest_client_the_round() {
    for k in [4usize, 7] {
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![
            (k + 1, Box::new(NoForwards)),
            (k + 2, Box::new(LoseForwardsUntil(1500))),
            (k + 3, Box::new(LoseForwardsUntil(1500))),
        ];
        let r = run(7, k, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &[0, 2, 3]);
        r.debug_trace();
        assert!(!r.committed().is_empty(), "K = {k}: no commit at all: {:?}", r.faults());
        for c in [2, 3] {
            assert!(r.global_of(c).is_some(), "K = {k}: client {c} did not decode");
        }
        if let Err(e) = round_succeeded(&r, &[0, 2, 3], |c| model(c as usize), 1) {
            panic!("K = {k}: {e}");
        }
    }
}

/// The forecaster's driver (`gridledger-forecast`'s federated rounds) gives
/// a chain's round 20 000 ticks before it counts as failed.
const DRIVER_ROUND_TICKS: Time = 20_000;

/// K = 4, four honest clients. Client 3's links from the nodes are down
/// until tick 13 000 (its C2C links work, so the other clients' forwards
/// wait in its assembler for the root); the driver's round budget is
/// 20 000 ticks, and the run goes on to it.
///
/// What happened: client 3 never decodes. Its requests run out at
/// `MAX_RESYNCS × RESYNC_PERIOD` = 12 800 ticks after its start, all lost;
/// from tick 13 000 the network is synchronous, yet no node sends it
/// anything again and it asks no more, for the remaining 7 000 ticks of
/// the round. What should happen: the request schedule must outlast any
/// GST inside the round's budget (e.g. back off instead of stopping: the
/// traffic stays bounded by the count, not the time).
#[test]
fn a_client_whose_requests_ran_out_before_gst_still_decodes_within_the_round() {
    assert!((MAX_RESYNCS as u64) * RESYNC_PERIOD < 13_000, "premise: the last request goes out before GST");
    let k = 4;
    let to = (k + 3) as u32;
    let cut_until = |until: Time| {
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
            (0..k).map(|n| (n, Box::new(LoseToUntil { to, until }) as Box<dyn Adversary<P>>)).collect();
        run_for(11, k, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &[0, 1, 2, 3], DRIVER_ROUND_TICKS)
    };
    // Control: with GST at tick 12 500 the last requests get through and
    // client 3 decodes, so what fails below is the schedule running out.
    let control = cut_until(12_500);
    assert_round_succeeded(&control, &[0, 1, 2, 3], |c| model(c as usize), 1);
    let r = cut_until(13_000);
    r.debug_trace();
    assert!(!r.committed().is_empty(), "no commit at all: {:?}", r.faults());
    for c in 0..3 {
        assert!(r.global_of(c).is_some(), "client {c} did not decode");
    }
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// On a Byzantine node: every root report it sends (at its commit and in
/// answer to a request) names a wrong root, and every mini-fragment it
/// sends is altered.
struct WrongReportsAndMinis;

impl Adversary<P> for WrongReportsAndMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use ff::Field;
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Committed { node, view, .. } => {
                    (d, Message::Committed { node, view, root: gridledger_core::Hash32([0xab; 32]) })
                }
                Message::Mini { from_node, mut mf } => {
                    mf.values[0] += blstrs::Scalar::ONE;
                    (d, Message::Mini { from_node, mf })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// K = 7 and 10: the `f` Byzantine nodes answer every request (and their
/// commit) with a wrong root report and altered mini-fragments, which
/// reach client 3 first: its links from the honest nodes are down until
/// tick 1500. Client 3 counts one report per node and needs `f + 1` alike,
/// and checks each mini-fragment against the root, so it keeps asking and
/// decodes the right global fragment once the honest nodes' answers arrive
/// (holds).
#[test]
fn byzantine_nodes_answering_requests_with_a_wrong_root_and_minis_do_not_mislead_a_client() {
    for k in [7usize, 10] {
        let f = (k - 1) / 3;
        let to = (k + 3) as u32;
        let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = Vec::new();
        for n in 0..k {
            if n < f {
                adversaries.push((n, Box::new(WrongReportsAndMinis)));
            } else {
                adversaries.push((n, Box::new(LoseToUntil { to, until: 1500 })));
            }
        }
        let r = run(13, k, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &[0, 1, 2, 3]);
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1) {
            panic!("K = {k}: {e}");
        }
        assert_eq!(r.global_of(3), r.global_of(0), "K = {k}");
    }
}

/// Client 3, Byzantine: each request it sends goes out once with seq
/// `u32::MAX` (replayed, then wrapping to 0) and once with its own seq.
/// It only uses up its own allowance: client 0, cut off from the nodes
/// until tick 1500, still decodes by asking, and each node answers
/// client 3 at most [`MAX_RESYNCS`] times (holds).
#[test]
fn a_client_replaying_the_top_seq_locks_only_itself() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    struct TopSeq;
    impl Adversary<P> for TopSeq {
        fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
            let mut out = Vec::new();
            for (d, m) in sends {
                if let Message::Resync { client, .. } = m {
                    for seq in [u32::MAX, u32::MAX, 0, u32::MAX.wrapping_add(1)] {
                        out.push((d, Message::Resync { client, seq }));
                    }
                }
                out.push((d, m));
            }
            out
        }
    }
    /// On an honest node: counts the root reports to client 3 and drops
    /// everything to client 0 before tick 1500 and to client 3 always (so
    /// client 3 keeps asking).
    struct Count {
        k: u32,
        to_3: Arc<AtomicUsize>,
    }
    impl Adversary<P> for Count {
        fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
            let to_3 = Dest::One(self.k + 3);
            let to_0 = Dest::One(self.k);
            self.to_3.fetch_add(
                sends.iter().filter(|(d, m)| *d == to_3 && matches!(m, Message::Committed { .. })).count(),
                Ordering::Relaxed,
            );
            sends.into_iter().filter(|(d, _)| *d != to_3 && (now >= 1500 || *d != to_0)).collect()
        }
    }
    let k = 7;
    let to_3 = Arc::new(AtomicUsize::new(0));
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..k).map(|n| (n, Box::new(Count { k: k as u32, to_3: to_3.clone() }) as Box<dyn Adversary<P>>)).collect();
    adversaries.push((k + 3, Box::new(TopSeq)));
    let r = run(17, k, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &[0, 1, 2]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2], |c| model(c as usize), 1);
    let to_3 = to_3.load(Ordering::Relaxed);
    assert!(to_3 <= k * (1 + MAX_RESYNCS as usize), "{to_3} reports to client 3");
}
