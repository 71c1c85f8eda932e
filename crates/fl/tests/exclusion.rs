//! The omission rule of the dual consensus (issue 16, attack finding 7):
//! a proposal may leave out a client named by at least `K − f` held pre-vectors
//! only with exclusion evidence that proves the client faulty. An honest leader
//! excludes an equivocating client or one with a malformed model with such
//! evidence and the chain commits in view 0 (no stall); a Byzantine
//! leader's forged or invalid evidence is refused with a typed fault and a
//! view change.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_core::Hash32;
use gridledger_fl::aggregate::params_to_bytes;
use gridledger_fl::coding::{client_key, CodedFragment};
use gridledger_fl::consensus::{ChainNode, EvidenceError, Exclusion, Fault, Message, Step, Timer, To};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::{sim_client_signing_key, sim_node_key, ClientBehaviour};
use gridledger_fl::FlError;
use gridledger_sim::{Adversary, SeedPlan};

const CLIENTS: usize = 7;

/// One Byzantine client (`bad`) among 7 on a 4-node chain: the round
/// commits in view 0, the client is excluded (a typed `Excluded` fault at
/// the leader), no node refuses the honest leader, and every honest client
/// decodes the trimmed mean of the others.
fn excluded_without_stall(behaviour: ClientBehaviour, bad: usize, seed0: u64) {
    for seed in SeedPlan::from_env(seed0, 2).seeds {
        let mut behaviours = vec![ClientBehaviour::Honest; CLIENTS];
        behaviours[bad] = behaviour;
        let honest: Vec<usize> = (0..CLIENTS).filter(|&c| c != bad).collect();
        let r = run(seed, 4, behaviours, Vec::new(), &honest);
        // Every node named the Byzantine client: the omission needs evidence.
        let (pre, _) = vectors(&r);
        assert!(pre.len() == 4 && pre.iter().all(|(_, v)| v.contains(&(bad as u32))), "seed {seed}: {pre:?}");
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert!(r.committed().iter().all(|(_, v, _)| *v == 0), "seed {seed}: {:?}", r.committed());
        assert!(!r.aggregated()[0].1.contains(&(bad as u32)), "seed {seed}");
        let faults = r.faults();
        assert!(faults.iter().any(|f| matches!(f, Fault::Excluded { client, .. } if *client as usize == bad)));
        assert!(
            !faults.iter().any(|f| matches!(
                f,
                Fault::UnprovenOmission { .. } | Fault::BadExclusion { .. } | Fault::BadProposal { .. }
            )),
            "seed {seed}: {faults:?}"
        );
    }
}

#[test]
fn an_equivocating_client_is_excluded_with_evidence_and_the_chain_does_not_stall() {
    excluded_without_stall(ClientBehaviour::Equivocate, 2, 7_000);
}

#[test]
fn a_client_with_a_malformed_model_is_excluded_with_evidence_and_the_chain_does_not_stall() {
    excluded_without_stall(ClientBehaviour::MalformedModel, 5, 7_100);
}

#[test]
fn a_leader_omitting_honest_clients_without_evidence_is_replaced() {
    for seed in SeedPlan::from_env(7_200, 2).seeds {
        let honest: Vec<usize> = (0..CLIENTS).collect();
        let leader = OmittingLeader { cfg: config(4, CLIENTS, 2), client: 3, factor: -20.0 };
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(leader))];
        let r = run(seed, 4, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert!(r.committed().iter().all(|(_, v, _)| *v == 1), "seed {seed}: {:?}", r.committed());
        assert!(r.faults().iter().any(|f| matches!(f, Fault::UnprovenOmission { view: 0, .. })));
    }
}

// ------------------------------------- evidence checked at one node (node 1)

/// Clients 0..4's honest uploads.
fn uploads() -> Vec<CodedFragment> {
    let cfg = config(4, 4, 1);
    (0..4u32).map(|c| upload(&cfg, c, &client_key(&SK, c), &model(c as usize))).collect()
}

/// Node 1 of a 4-node, 4-client chain after every node named every client
/// (pre- and deter-vectors), then leader 0's view-0 proposal aggregating
/// `clients` with `excluded` as evidence. Returns the node and the step.
fn proposal_to_node_1(
    clients: &[u32],
    excluded: Vec<Exclusion>,
) -> (ChainNode<gridledger_core::enclave::SoftwareAttester>, Step) {
    proposal_to_node_1_carrying(clients, excluded, &[0, 1, 2, 3], |_, _| {})
}

type Node = ChainNode<gridledger_core::enclave::SoftwareAttester>;

/// [`proposal_to_node_1`] with the pre-vectors of `carriers` (each naming
/// every client) carried, and `before` run on the node (with the
/// proposal's root) just before the proposal arrives.
fn proposal_to_node_1_carrying(
    clients: &[u32],
    excluded: Vec<Exclusion>,
    carriers: &[usize],
    before: impl FnOnce(&mut Node, Hash32),
) -> (Node, Step) {
    let cfg = config(4, 4, 1);
    let all = [0u32, 1, 2, 3];
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    node.start();
    for u in uploads() {
        assert!(send_upload(&mut node, u.message(1).unwrap()).faults.is_empty());
    }
    node.on_timer(Timer::PreVector);
    for k in [0, 2, 3] {
        node.handle(Source::Node(k), pre_vector(&cfg, k, &all));
    }
    node.on_timer(Timer::Tally);
    for k in cfg.committee() {
        if k != 1 {
            node.handle(Source::Node(k), deter_vector(&cfg, k, &all));
        }
    }
    let models: Vec<Vec<f32>> = clients.iter().map(|&c| model(c as usize)).collect();
    let global = gridledger_fl::aggregate::trimmed_mean(&models, 0).unwrap();
    let rel = cfg.release(&params_to_bytes(&global)).unwrap();
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, clients));
    let sf = rel.subfragments[1].clone();
    let vectors: Vec<(usize, &[u32])> = carriers.iter().map(|&k| (k, &all[..])).collect();
    let pre_vectors = carried(&cfg, &vectors);
    before(&mut node, rel.root);
    let msg = Message::Proposal { view: 0, root: rel.root, clients: clients.to_vec(), ra, sf, excluded, pre_vectors };
    let step = node.handle(Source::Node(0), msg);
    (node, step)
}

/// Attack round 9, finding 3: the verdict on a proposal depends on the
/// proposal alone. One carrying fewer than `K − f = 3` attested
/// pre-vectors is refused (and the node asks for the next view) even
/// though it aggregates every client and the node's own pre-vectors
/// protect nothing it leaves out; one carrying exactly `K − f` passes.
#[test]
fn a_proposal_carrying_fewer_than_k_minus_f_pre_vectors_is_refused() {
    let everyone = [0u32, 1, 2, 3];
    for carriers in [&[][..], &[1, 2][..]] {
        let (node, step) = proposal_to_node_1_carrying(&everyone, vec![], carriers, |_, _| {});
        let error = "carries fewer than K − f or more than K pre-vectors".to_string();
        assert_eq!(step.faults, vec![Fault::BadProposal { view: 0, error }], "carriers {carriers:?}");
        assert!(asks_view_1(&step), "carriers {carriers:?}");
        assert_eq!(node.committed(), None);
    }
    let (_, step) = proposal_to_node_1_carrying(&everyone, vec![], &[1, 2, 3], |_, _| {});
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert!(!asks_view_1(&step));
}

/// Attack round 9, finding 2: a fetch request that reaches a node before
/// it verified the proposal is kept and answered (a relay with the node's
/// own subfragment) once it verifies; at most `K` are kept per peer, the
/// oldest dropped, and each peer is answered once.
#[test]
fn a_fetch_that_arrived_before_the_proposal_is_answered_once_verified() {
    let fetch = |node: usize, root: Hash32| Message::FetchProposal { node, view: 0, root };
    let (mut node, step) = proposal_to_node_1_carrying(&[0, 1, 2, 3], vec![], &[0, 1, 2, 3], |n, root| {
        let s = n.handle(Source::Node(3), fetch(3, root));
        assert!(s.sends.is_empty() && s.faults.is_empty(), "nothing to relay yet: {:?}", s.sends);
        // Node 2 asks for the root, then for `K` = 4 others: its first request is dropped.
        n.handle(Source::Node(2), fetch(2, root));
        for junk in 0..4u8 {
            n.handle(Source::Node(2), fetch(2, Hash32([junk; 32])));
        }
    });
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    let relays: Vec<usize> = step
        .sends
        .iter()
        .filter_map(|(to, m)| match (to, m) {
            (To::Node(k), Message::Relay { node: 1, view: 0, sf, .. }) if sf.node == 1 => Some(*k),
            _ => None,
        })
        .collect();
    assert_eq!(relays, vec![3], "the kept request of node 3 is answered, node 2's oldest was dropped");
    // Each peer gets the proposal once; node 2 asking again now gets it at once.
    let (_, first) = step
        .sends
        .iter()
        .find_map(|(_, m)| match m {
            Message::Relay { view, root, .. } => Some((*view, *root)),
            _ => None,
        })
        .unwrap();
    assert!(node.handle(Source::Node(3), fetch(3, first)).sends.is_empty());
    let again = node.handle(Source::Node(2), fetch(2, first));
    assert!(matches!(again.sends.as_slice(), [(To::Node(2), Message::Relay { node: 1, .. })]), "{:?}", again.sends);
}

/// Attack round 9, finding 3: an honest leader whose aggregation timer
/// fires while it holds fewer than `K − f` attested pre-vectors does not
/// propose (every node would refuse it); it proposes, carrying them, as
/// soon as the `K − f`-th arrives.
#[test]
fn a_leader_holding_fewer_than_k_minus_f_pre_vectors_waits_for_them() {
    let cfg = config(4, 4, 1);
    let all = [0u32, 1, 2, 3];
    let mut node = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    node.start();
    for u in uploads() {
        assert!(send_upload(&mut node, u.message(0).unwrap()).faults.is_empty());
        for k in [2usize, 3] {
            let s = node.handle(Source::Node(k), Message::Forward { node: k, msg: u.message(k).unwrap() });
            assert!(s.faults.is_empty(), "{:?}", s.faults);
        }
    }
    node.on_timer(Timer::PreVector);
    node.handle(Source::Node(2), pre_vector(&cfg, 2, &all));
    node.on_timer(Timer::Tally);
    for k in cfg.committee() {
        if k != 0 {
            node.handle(Source::Node(k), deter_vector(&cfg, k, &all));
        }
    }
    let proposals = |s: &Step| -> Vec<usize> {
        s.sends
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Proposal { pre_vectors, .. } => Some(pre_vectors.len()),
                _ => None,
            })
            .collect()
    };
    let step = node.on_timer(Timer::Aggregate(0));
    assert!(proposals(&step).is_empty(), "proposed with 2 of K − f = 3 pre-vectors");
    let step = node.handle(Source::Node(3), pre_vector(&cfg, 3, &all));
    assert_eq!(proposals(&step), vec![3, 3, 3], "{:?}", step.faults);
}

fn asks_view_1(step: &Step) -> bool {
    step.sends.iter().any(|(_, m)| matches!(m, Message::ViewChange { view: 1, .. }))
}

/// Client 0's second signed record (another model): genuine equivocation.
fn second_record_of_client_0() -> CodedFragment {
    let cfg = config(4, 4, 1);
    let other: Vec<f32> = model(0).iter().map(|x| x + 1.0).collect();
    upload(&cfg, 0, &client_key(&SK, 0), &other)
}

/// Client 0's signed coding of a plaintext one parameter short.
fn malformed_upload_of_client_0() -> CodedFragment {
    let cfg = config(4, 4, 1);
    let ctx = cfg.fragment_context(cfg.chain);
    let mut pt = params_to_bytes(&model(0));
    pt.truncate(pt.len() - 4);
    cfg.coder.encode(&client_key(&SK, 0), &sim_client_signing_key(&SIGN_SEED, 0), &ctx, 0, &pt).unwrap()
}

#[test]
fn valid_evidence_lets_a_node_accept_the_omission() {
    let first = Box::new(uploads()[0].record);
    let second = Box::new(second_record_of_client_0().record);
    let (node, step) = proposal_to_node_1(&[1, 2, 3], vec![Exclusion::Equivocation { first: first.clone(), second }]);
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert!(!asks_view_1(&step));
    assert_eq!(node.view(), 0);
    // Records that differ only in the fragment index split the nodes too.
    let cfg = config(4, 4, 1);
    let ctx = cfg.fragment_context(99);
    let refragmented = cfg
        .coder
        .encode(&client_key(&SK, 0), &sim_client_signing_key(&SIGN_SEED, 0), &ctx, 0, &params_to_bytes(&model(0)))
        .unwrap();
    let second = Box::new(refragmented.record);
    let (_, step) = proposal_to_node_1(&[1, 2, 3], vec![Exclusion::Equivocation { first: first.clone(), second }]);
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    let bad = malformed_upload_of_client_0();
    let cells = bad.cells[..3].to_vec();
    let (_, step) = proposal_to_node_1(&[1, 2, 3], vec![Exclusion::Malformed { record: Box::new(bad.record), cells }]);
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert!(!asks_view_1(&step));
}

#[test]
fn an_omission_without_evidence_is_refused() {
    let (_, step) = proposal_to_node_1(&[1, 2, 3], vec![]);
    assert_eq!(step.faults, vec![Fault::UnprovenOmission { view: 0, client: 0 }]);
    assert!(asks_view_1(&step));
}

#[test]
fn forged_or_invalid_exclusion_evidence_is_refused() {
    let honest = uploads();
    let first = Box::new(honest[0].record);
    let second = Box::new(second_record_of_client_0().record);
    // A record of client 0 the leader signed with a key of its own.
    // Signed with client 3's own key, claiming client 0.
    let forged = Box::new(
        upload_signed(&config(4, 4, 1), 0, &[0xbb; 32], &sim_client_signing_key(&SIGN_SEED, 3), &model(1)).record,
    );
    let mut other_round = second.clone();
    other_round.ctx.round += 1;
    let mut bad_cell = honest[0].cells[..3].to_vec();
    bad_cell[1].values[0] += blstrs::Scalar::from(1u64);
    let malformed = malformed_upload_of_client_0();
    let mut swapped = malformed.cells[..3].to_vec();
    swapped.swap(0, 1);
    let cases: Vec<(Exclusion, EvidenceError)> = vec![
        (Exclusion::Equivocation { first: first.clone(), second: first.clone() }, EvidenceError::SameRecord),
        (
            Exclusion::Equivocation { first: first.clone(), second: forged.clone() },
            EvidenceError::Record(FlError::Unauthenticated { client: 0 }),
        ),
        (Exclusion::Equivocation { first: first.clone(), second: other_round }, EvidenceError::WrongContext),
        (Exclusion::Equivocation { first: first.clone(), second: Box::new(honest[1].record) }, EvidenceError::Mismatch),
        // Client 0's honest record and cells decode to a well-formed model.
        (
            Exclusion::Malformed { record: first.clone(), cells: honest[0].cells[..3].to_vec() },
            EvidenceError::WellFormed,
        ),
        (
            Exclusion::Malformed { record: Box::new(malformed.record), cells: malformed.cells[..1].to_vec() },
            EvidenceError::NotDecoded(FlError::Undecodable { need: 5, have: 4 }),
        ),
        (
            Exclusion::Malformed { record: first.clone(), cells: bad_cell },
            EvidenceError::NotDecoded(FlError::ProofFailed { index: 1 }),
        ),
        (Exclusion::Malformed { record: Box::new(malformed.record), cells: swapped }, EvidenceError::CellList),
        (
            Exclusion::Malformed { record: forged, cells: honest[0].cells[..3].to_vec() },
            EvidenceError::Record(FlError::Unauthenticated { client: 0 }),
        ),
    ];
    for (ex, error) in cases {
        let (node, step) = proposal_to_node_1(&[1, 2, 3], vec![ex.clone()]);
        assert_eq!(step.faults, vec![Fault::BadExclusion { view: 0, client: 0, error }], "{ex:?}");
        assert!(asks_view_1(&step), "{ex:?}");
        assert_eq!(node.committed(), None);
    }
    // Evidence for a client the proposal aggregates, and twice for one client.
    let ex = Exclusion::Equivocation { first, second };
    let (_, step) = proposal_to_node_1(&[0, 1, 2, 3], vec![ex.clone()]);
    assert_eq!(step.faults, vec![Fault::BadExclusion { view: 0, client: 0, error: EvidenceError::Aggregated }]);
    let (_, step) = proposal_to_node_1(&[1, 2, 3], vec![ex.clone(), ex]);
    assert_eq!(step.faults, vec![Fault::BadExclusion { view: 0, client: 0, error: EvidenceError::Duplicate }]);
}
