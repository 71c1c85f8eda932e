//! Attack round 10 on CTP-FL (issue 16): the rule that a proposal carries
//! at least `K − f` attested pre-vectors and an honest leader waits until
//! it holds them, driven in the simulator with the real `ChainNode`
//! driver at K = 7 (f = 2) and K = 10 (f = 3).
//!
//! `cargo test -p gridledger-fl --test attack_pre_vector_wait_r10 -- --include-ignored`

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::consensus::Message;
use gridledger_fl::round::{ClientBehaviour, RoundOutput};
use gridledger_sim::{Adversary, Delay, Dest, NetConfig, Partition, Time};
use rand_chacha::ChaCha8Rng;

/// A node that sends nothing at all (crashed, or Byzantine and silent).
struct Silent;

impl Adversary<P> for Silent {
    fn tamper(&mut self, _: Time, _: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        Vec::new()
    }
}

/// A node that runs the honest code but never sends its pre-vector.
struct WithholdPreVector;

impl Adversary<P> for WithholdPreVector {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| !matches!(m, Message::PreVector { .. })).collect()
    }
}

/// `common::run` over a given network (four honest clients).
fn run_net(
    seed: u64,
    nodes: usize,
    net: impl FnOnce(usize) -> NetConfig,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
) -> Run {
    run_net_as(seed, nodes, net, adversaries, ClientBehaviour::Honest, 8_000)
}

/// [`run_net`] with every client behaving as `behaviour`, run until `until`.
fn run_net_as(
    seed: u64,
    nodes: usize,
    net: impl FnOnce(usize) -> NetConfig,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
    behaviour: ClientBehaviour,
    until: Time,
) -> Run {
    let clients = 4usize;
    let cfg = config(nodes, clients, clients / 3);
    let net = net(nodes + clients);
    run_custom(seed, cfg, net, vec![behaviour; clients], adversaries, &[0, 1, 2, 3], until)
}

/// A reliable network on which `side` is cut off from everyone during
/// `[from, until)` (a partition that heals; GST at 0, so nothing is lost
/// outside it).
fn healed_partition(side: Vec<u32>, from: Time, until: Time) -> impl FnOnce(usize) -> NetConfig {
    move |n| {
        let mut net = NetConfig::reliable(n, 6);
        net.partitions.push(Partition { from, until, side });
        net
    }
}

fn decoded(r: &Run) -> Vec<usize> {
    (0..4).filter(|&c| r.global_of(c).is_some()).collect()
}

/// FINDING 1 (high: `f` crashed/silent nodes plus one honest node cut off
/// for 15 ticks around its pre-vector timer halt the chain's round for
/// good, after the partition has healed).
///
/// K = 7 (f = 2), four honest clients. Nodes 5 and 6 are silent (crashed,
/// or Byzantine withholding everything). Honest node 4 is cut off from
/// every peer during ticks [35, 50), which covers `Timer::PreVector` (40):
/// its pre-vector to the others is lost. Every node sends its pre-vector
/// exactly once and nothing asks for it again, so each honest node ends up
/// with at most four attested pre-vectors (nodes 0–3), one short of
/// `K − f = 5`. An honest leader whose aggregation timer fired "waits until
/// it holds `K − f`" — which never happens: no leader of any view ever
/// proposes, views rotate for ever, nothing is committed. Before the
/// partition every client uploaded to every node, and from tick 50 on the
/// network is reliable with five honest nodes (`2f + 1`) up: the round
/// should complete (PBFT itself survives such a partition).
/// Expected: the round commits and every honest client decodes once the
/// partition healed (e.g. a node re-sends its attested pre-vector when an
/// aggregation view changes, or a waiting leader asks for the pre-vectors
/// it lacks).
/// Observed: no client decodes within 8 000 ticks, nothing is committed;
/// the only `Aggregated` outputs are the silent nodes' own (views 5, 6,
/// 12, 13, …: counting their own they hold five, but they send nothing);
/// every honest leader is stuck in "fewer than `K − f` pre-vectors".
/// Not a regression of the wait itself: before it, a leader holding four
/// carried them and every node refused the proposal just the same.
#[test]
fn a_lost_honest_pre_vector_with_f_silent_nodes_cannot_halt_the_round_k7() {
    let r = run_net(
        3,
        7,
        healed_partition(vec![4], 35, 50),
        vec![(5, Box::new(Silent) as Box<dyn Adversary<P>>), (6, Box::new(Silent))],
    );
    r.debug_trace();
    assert_eq!(
        decoded(&r),
        vec![0, 1, 2, 3],
        "aggregated: {:?}; committed: {:?}; dropped messages: {}",
        r.aggregated(),
        r.committed(),
        r.sim.stats.dropped
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// FINDING 1 at K = 10 (f = 3): nodes 7, 8, 9 silent, honest node 6 cut
/// off around its pre-vector timer; every honest node holds at most six
/// pre-vectors (< K − f = 7) for ever.
#[test]
fn a_lost_honest_pre_vector_with_f_silent_nodes_cannot_halt_the_round_k10() {
    let r = run_net(
        3,
        10,
        healed_partition(vec![6], 35, 50),
        vec![(7, Box::new(Silent) as Box<dyn Adversary<P>>), (8, Box::new(Silent)), (9, Box::new(Silent))],
    );
    r.debug_trace();
    assert_eq!(
        decoded(&r),
        vec![0, 1, 2, 3],
        "aggregated: {:?}; committed: {:?}; dropped messages: {}",
        r.aggregated(),
        r.committed(),
        r.sim.stats.dropped
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// FINDING 1, the same halt with no silent node at all: a partition that
/// isolates three honest nodes of seven (a minority) around the pre-vector
/// timer leaves each side with at most four pre-vectors; once it heals all
/// seven nodes are honest and connected, and still nobody proposes.
#[test]
fn a_healed_minority_partition_cannot_halt_an_all_honest_round() {
    let r = run_net(5, 7, healed_partition(vec![4, 5, 6], 35, 50), Vec::new());
    r.debug_trace();
    assert_eq!(
        decoded(&r),
        vec![0, 1, 2, 3],
        "aggregated: {:?}; committed: {:?}; dropped messages: {}",
        r.aggregated(),
        r.committed(),
        r.sim.stats.dropped
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// Holds: the same partition but after every pre-vector was delivered
/// (ticks [60, 75), before the aggregation timer): the round commits, so
/// what FINDING 1 shows is the lost pre-vector, not the partition.
#[test]
fn control_a_partition_after_the_pre_vectors_commits() {
    let r = run_net(
        3,
        7,
        healed_partition(vec![4], 60, 75),
        vec![(5, Box::new(Silent) as Box<dyn Adversary<P>>), (6, Box::new(Silent))],
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// Holds ("exactly `K − f` honest senders, some slow"): K = 7, nodes 5 and
/// 6 run the honest code but never send their pre-vectors; honest node
/// 4's links are slow (up to 300 ticks, far past the aggregation timer at
/// 120) until GST at 400. The leader of view 0 fires its timer with four
/// pre-vectors, waits, and the round commits once node 4's arrives (at
/// that leader or a later one).
#[test]
fn exactly_k_minus_f_pre_vectors_some_slow_still_commit_k7() {
    let r = run_net(
        3,
        7,
        |n| {
            let mut net = NetConfig::reliable(n, 6);
            for to in 0..n {
                net.links[4][to] = Delay::Uniform { min: 150, max: 300 };
            }
            net.gst = 400;
            net
        },
        vec![(5, Box::new(WithholdPreVector) as Box<dyn Adversary<P>>), (6, Box::new(WithholdPreVector))],
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// Holds at K = 10: nodes 7, 8, 9 withhold their pre-vectors; honest node
/// 6 is slow until GST at 400; the round commits.
#[test]
fn exactly_k_minus_f_pre_vectors_some_slow_still_commit_k10() {
    let r = run_net(
        3,
        10,
        |n| {
            let mut net = NetConfig::reliable(n, 6);
            for to in 0..n {
                net.links[6][to] = Delay::Uniform { min: 150, max: 300 };
            }
            net.gst = 400;
            net
        },
        vec![
            (7, Box::new(WithholdPreVector) as Box<dyn Adversary<P>>),
            (8, Box::new(WithholdPreVector)),
            (9, Box::new(WithholdPreVector)),
        ],
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// A committee member that runs the honest code and, from tick 125 on
/// (after the leader's aggregation timer), re-sends its attested
/// deter-vector `copies` times to every node each time it sends anything.
struct RepeatDeterVector {
    nodes: u32,
    copies: usize,
    deter: Option<Message>,
}

impl Adversary<P> for RepeatDeterVector {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        for (_, m) in &sends {
            if matches!(m, Message::DeterVector { .. }) {
                self.deter = Some(m.clone());
            }
        }
        let mut out = sends;
        if let (Some(d), true) = (&self.deter, now >= 125) {
            for _ in 0..self.copies {
                for k in 0..self.nodes {
                    out.push((Dest::One(k), d.clone()));
                }
            }
        }
        out
    }
}

/// FINDING 2 (low: CPU amplification by one committee member; the
/// pre-vector half was fixed in the last commit, the deter-vector half
/// was not).
///
/// K = 7 (f = 2); all four clients upload a well-coded, signed model that
/// is one parameter short (`MalformedModel`): an honest leader decodes
/// and decrypts every one of them, finds nothing to aggregate and waits
/// ("a leader that found nothing to aggregate retries with the late
/// deter-vector"). The Byzantine committee member re-sends the *same*
/// attested deter-vector 10 times to every node whenever it sends
/// anything. Each copy makes the waiting leader re-run its whole
/// aggregation — an RS decode and an AEAD open per client, recorded as one
/// `Excluded` fault per client — although a repeated deter-vector changes
/// nothing (`or_insert` keeps the first).
/// Expected: a leader re-runs aggregation at most once per view plus once
/// per committee member's first deter-vector: at most
/// `4 clients × (1 + (f + 1)) × views` exclusions.
/// Observed: exclusions grow with the number of repeated copies: 804 over
/// five views with 10 copies (2 932 with 30), against a bound of 80.
#[test]
fn a_repeated_deter_vector_does_not_rerun_the_leaders_aggregation() {
    let nodes = 7usize;
    let cfg = config(nodes, 4, 1);
    let byz = cfg.committee()[0];
    let r = run_net_as(
        3,
        nodes,
        |n| NetConfig::reliable(n, 6),
        vec![(byz, Box::new(RepeatDeterVector { nodes: nodes as u32, copies: 10, deter: None }))],
        ClientBehaviour::MalformedModel,
        1_000,
    );
    let views = r
        .sim
        .outputs
        .iter()
        .filter_map(|(_, _, o)| match o {
            RoundOutput::Node(gridledger_fl::consensus::Output::NewView(view)) => Some(*view),
            _ => None,
        })
        .max()
        .unwrap_or(0) as usize
        + 1;
    let exclusions = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, f)| *n as usize != byz && matches!(f, gridledger_fl::consensus::Fault::Excluded { .. }))
        .count();
    let bound = 4 * (1 + cfg.f() + 1) * views;
    assert!(exclusions <= bound, "{exclusions} exclusions by honest leaders over {views} views (bound {bound})");
}

/// A Byzantine aggregation leader (node 0, with Byzantine nodes 1..f)
/// whose view-0 proposal is the attested aggregate of `keep` only,
/// carrying exactly `K − f` pre-vectors of its choice: those of nodes
/// 0..f, forged to name `keep` only (their enclaves attest whatever their
/// hosts ask), and the first `K − 2f` honest ones it holds.
struct ChooseCarriedSet {
    cfg: std::sync::Arc<gridledger_fl::consensus::ChainConfig>,
    keep: Vec<u32>,
}

impl Adversary<P> for ChooseCarriedSet {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_fl::aggregate::{params_to_bytes, trimmed_mean};
        let models: Vec<Vec<f32>> = self.keep.iter().map(|&c| model(c as usize)).collect();
        let global = trimmed_mean(&models, 1).unwrap();
        let rel = self.cfg.release(&params_to_bytes(&global)).unwrap();
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, pre_vectors, .. } => {
                    let f = self.cfg.f();
                    let forged: Vec<(usize, &[u32])> = (0..f).map(|k| (k, &self.keep[..])).collect();
                    let mut chosen = carried(&self.cfg, &forged);
                    chosen.extend(pre_vectors.into_iter().filter(|v| v.node >= f).take(self.cfg.nodes - 2 * f));
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &self.keep));
                    let sf = rel.subfragments[sf.node].clone();
                    let msg = Message::Proposal {
                        view: 0,
                        root: rel.root,
                        clients: self.keep.clone(),
                        ra,
                        sf,
                        excluded: vec![],
                        pre_vectors: chosen,
                    };
                    (d, msg)
                }
                other => (d, other),
            })
            .collect()
    }
}

/// Holds (the carried-set-only omission rule): K = 7 (f = 2), four honest
/// clients that uploaded to every node. Byzantine leader 0 proposes the
/// attested aggregate of clients 0–2, leaving out client 3, and carries
/// the `K − f = 5` pre-vectors most favourable to it: its own and node
/// 1's (forged to omit client 3) and three honest ones. Client 3 is still
/// named by the three honest carried vectors, `m − f = 3`: every honest
/// node refuses view 0 (`UnprovenOmission`), and view 1's leader (node 1
/// runs the honest code but for withholding its pre-vector) aggregates
/// all four clients.
#[test]
fn a_leader_choosing_its_k_minus_f_carried_pre_vectors_cannot_omit_a_fully_uploaded_client() {
    carried_choice_cannot_omit(7);
}

/// Holds at K = 10 (f = 3): nodes 0–2 Byzantine, the leader carries its
/// three forged vectors and four honest ones (`K − f = 7`); client 3 is
/// named by four, `m − f`, and stays protected.
#[test]
fn a_leader_choosing_its_k_minus_f_carried_pre_vectors_cannot_omit_a_fully_uploaded_client_k10() {
    carried_choice_cannot_omit(10);
}

fn carried_choice_cannot_omit(nodes: usize) {
    let cfg = config(nodes, 4, 1);
    let f = cfg.f();
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(0, Box::new(ChooseCarriedSet { cfg: cfg.clone(), keep: vec![0, 1, 2] }))];
    for k in 1..f {
        adversaries.push((k, Box::new(WithholdPreVector)));
    }
    let r = run_net(3, nodes, |n| NetConfig::reliable(n, 6), adversaries);
    let refusals = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, fault)| {
            *n as usize >= f
                && (*n as usize) < nodes
                && matches!(fault, gridledger_fl::consensus::Fault::UnprovenOmission { view: 0, client: 3 })
        })
        .count();
    assert!(refusals >= nodes - f, "honest nodes refusing view 0's omission of client 3: {refusals}");
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    let committed_view = r.committed()[0].1;
    let used = r.aggregated().into_iter().find(|(v, _)| *v == committed_view).unwrap().1;
    assert_eq!(used, vec![0, 1, 2, 3]);
}

/// Holds (a lagging node and "a block of a view beyond this node's
/// reach"): K = 7, nodes 5 and 6 withhold their PBFT commit votes, so all
/// five honest nodes must commit; honest node 4 is cut off from tick 60
/// (after the pre-vectors) to tick 2 500, while the others' aggregation
/// views move well past `K` ahead of it. Once healed it catches up and the
/// round commits.
#[test]
fn a_node_cut_off_for_many_aggregation_views_catches_up_and_the_round_commits() {
    let r = run_net(
        3,
        7,
        healed_partition(vec![4], 60, 2_500),
        vec![(5, Box::new(WithholdCommits) as Box<dyn Adversary<P>>), (6, Box::new(WithholdCommits))],
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    assert!(r.committed().iter().any(|(n, ..)| *n == 4), "node 4 did not commit: {:?}", r.committed());
    let max_view = r
        .sim
        .outputs
        .iter()
        .filter_map(|(_, _, o)| match o {
            RoundOutput::Node(gridledger_fl::consensus::Output::NewView(v)) => Some(*v),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(max_view > 7, "the others' views did not move K ahead of node 4 (highest {max_view})");
}

/// Passes everything its (honest) node sends, noting when it first sends
/// a `FetchProposal` and whether it ever sends a client a mini-fragment.
#[derive(Clone, Default)]
struct Note {
    first_fetch: std::sync::Arc<std::sync::Mutex<Option<Time>>>,
    served: std::sync::Arc<std::sync::Mutex<bool>>,
}

impl Adversary<P> for Note {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if sends.iter().any(|(_, m)| matches!(m, Message::FetchProposal { .. })) {
            self.first_fetch.lock().unwrap().get_or_insert(now);
        }
        if sends.iter().any(|(_, m)| matches!(m, Message::Mini { from_node: true, .. })) {
            *self.served.lock().unwrap() = true;
        }
        sends
    }
}

/// Round 6's setting: K = 7 (f = 2), Byzantine nodes 0 and 1 (the first
/// two aggregation leaders) send their proposals to all but nodes 5 and 6
/// and withhold their PBFT commit votes; node 5 runs the honest code and
/// is watched by `note`.
fn skipping_leaders_over(net: impl FnOnce(usize) -> NetConfig, note: Note) -> Run {
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![
        (0, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
        (1, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
        (5, Box::new(note)),
    ];
    run_net(3, 7, net, adversaries)
}

/// Holds (a lost fetch request). A first, reliable run finds the tick at
/// which honest node 5, a skipped node, sends its `FetchProposal` for
/// view 0; the second run is the same but node 5 is cut off for that one
/// tick, so the request is lost. `start_fetch` never re-sends a request
/// for a fetch it still holds, yet the round commits with node 5 among the
/// committers (it leads PBFT view 4 and re-proposes the prepared block
/// itself) and node 5 still sends clients mini-fragments.
#[test]
fn a_lost_fetch_request_does_not_halt_the_round() {
    let control_note = Note::default();
    let control = skipping_leaders_over(|n| NetConfig::reliable(n, 6), control_note.clone());
    assert_round_succeeded(&control, &[0, 1, 2, 3], |c| model(c as usize), 1);
    assert!(*control_note.served.lock().unwrap(), "control: node 5 serves its mini-fragments");
    let t = control_note.first_fetch.lock().unwrap().expect("node 5 fetched view 0's proposal");
    let note = Note::default();
    let r = skipping_leaders_over(healed_partition(vec![5], t, t + 1), note.clone());
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    assert!(r.committed().iter().any(|(n, ..)| *n == 5), "node 5 committed");
    assert!(
        *note.served.lock().unwrap(),
        "node 5 (fetch request lost at tick {t}) committed but never served its mini-fragments"
    );
}
