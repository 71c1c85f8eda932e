//! The dual consensus of one chain in the seeded simulator (thesis §7.4,
//! §7.5.7): Byzantine clients (bad cells, poisoned models, silence,
//! forged C2C forwards) and Byzantine nodes (withholding, a lying or silent
//! leader, altered mini-fragments), with every honest client ending the
//! round with the same global fragment — the trimmed mean of what the
//! leader could decode.
//!
//! `GRIDLEDGER_SIM_SEEDS=N` runs more seeds; `GRIDLEDGER_SIM_SEED=S` replays one.

mod common;

use common::*;
use gridledger_consensus::pbft::{self, PrePrepare};
use gridledger_core::enclave::Attester;
use gridledger_fl::consensus::{ChainConfig, ChainNode, ChainParams, Fault, Message, Output, RootBlock};
use gridledger_fl::dissemination::{AssemblyFault, Source};
use gridledger_fl::round::{sim_client_signing_key, sim_node_key, ClientBehaviour, Participant, RoundOutput};
use gridledger_fl::FlError;
use gridledger_sim::{Adversary, SeedPlan};

#[test]
fn an_honest_round_commits_one_root_and_every_client_decodes() {
    for seed in SeedPlan::from_env(1_000, 3).seeds {
        let honest: Vec<usize> = (0..7).collect();
        let r = run(seed, 4, vec![ClientBehaviour::Honest; 7], Vec::new(), &honest);
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert_eq!(r.aggregated()[0].1, (0..7).collect::<Vec<u32>>(), "seed {seed}");
        assert!(r.faults().is_empty(), "seed {seed}: {:?}", r.faults());
    }
}

#[test]
fn thirty_percent_byzantine_clients_and_nodes_leave_the_honest_round_intact() {
    // 10 nodes, f = 3 Byzantine (30%): one withholds everything, one alters
    // its mini-fragments, one forges nothing but stays silent on B2C.
    // 10 clients, 3 Byzantine (30%): bad cells, poisoned ×(−50), and one
    // that forges the mini-fragments it forwards.
    let mut behaviours = vec![ClientBehaviour::Honest; 10];
    behaviours[1] = ClientBehaviour::BadCells;
    behaviours[4] = ClientBehaviour::Poison(-50.0);
    let honest: Vec<usize> = vec![0, 2, 3, 5, 6, 7, 8];
    for seed in SeedPlan::from_env(2_000, 2).seeds {
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![
            (3, Box::new(Withhold)),
            (5, Box::new(AlterMinis)),
            (8, Box::new(Withhold)),
            (10 + 9, Box::new(AlterMinis)),
        ];
        let r = run(seed, 10, behaviours.clone(), adversaries, &honest);
        let poison = |c: u32| if c == 4 { model(4).iter().map(|x| x * -50.0).collect() } else { model(c as usize) };
        assert_round_succeeded(&r, &honest, poison, 3);
        let used = &r.aggregated()[0].1;
        assert!(!used.contains(&1), "the bad-cell client is filtered out: {used:?}");
        assert!(used.contains(&4), "the poisoner's cells are valid; the trimmed mean handles it");
        // The poisoned model did not drag the global fragment out of the honest range.
        let g = r.global_of(0).unwrap();
        for (d, x) in g.iter().enumerate() {
            let (lo, hi) =
                honest.iter().map(|&c| model(c)[d]).fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(v), h.max(v)));
            assert!(*x >= lo && *x <= hi, "seed {seed}: dim {d}: {x} outside [{lo}, {hi}]");
        }
        let faults = r.faults();
        assert!(faults.iter().any(|f| matches!(f, Fault::Client { client: 1, error: FlError::ProofFailed { .. } })));
        // Refused mini-fragments are recorded against their senders, the
        // altering node 5 and client 9 (whose forwards may still be in
        // flight when the run stops), and against no honest party.
        let refused_from = |from: Source| {
            faults
                .iter()
                .any(|f| matches!(f, Fault::Dissemination(AssemblyFault::Refused { from: s, .. }) if *s == from))
        };
        assert!(refused_from(Source::Node(5)), "seed {seed}: node 5's altered mini-fragments were not refused");
        for f in &faults {
            if let Fault::Dissemination(AssemblyFault::Refused { from, .. }) = f {
                assert!(
                    matches!(from, Source::Node(5) | Source::Client(9)),
                    "seed {seed}: an honest sender blamed: {f:?}"
                );
            }
        }
    }
}

#[test]
fn a_lying_leader_is_replaced_and_the_next_view_commits() {
    for seed in SeedPlan::from_env(3_000, 2).seeds {
        let honest: Vec<usize> = (0..7).collect();
        let r = run(seed, 4, vec![ClientBehaviour::Honest; 7], vec![(0, Box::new(LyingLeader))], &honest);
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert!(r.committed().iter().all(|(_, v, _)| *v == 1), "view 1 (leader 1) commits");
        assert!(r.faults().iter().any(|f| matches!(f, Fault::BadProposal { view: 0, .. })));
        assert!(r.sim.outputs.iter().any(|(_, _, o)| matches!(o, RoundOutput::Node(Output::NewView(1)))));
    }
}

#[test]
fn a_silent_leader_times_out_and_is_replaced() {
    for seed in SeedPlan::from_env(4_000, 2).seeds {
        let honest: Vec<usize> = (0..7).collect();
        let r = run(seed, 4, vec![ClientBehaviour::Honest; 7], vec![(0, Box::new(Withhold))], &honest);
        // Node 0 withheld its own pre-vector too; the others still tally 3 ≥ 2f+1.
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert!(r.committed().iter().all(|(_, v, _)| *v == 1));
    }
}

#[test]
fn forged_pre_vectors_and_proposals_from_non_leaders_are_faults() {
    let cfg = config(4, 7, 2);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    // Node 2's pre-vector attested by node 3's enclave.
    let clients = vec![0u32, 1];
    let ra = enclave(3).attest_evidence(&[0; 32]);
    let step =
        n1.handle(Source::Node(2), Message::PreVector { node: 2, view: 0, seq: 0, clients: clients.clone(), ra });
    assert_eq!(step.faults, vec![Fault::BadAttestation { node: 2 }]);
    // Unsorted, repeated or unknown client ids.
    for bad in [vec![1u32, 0], vec![2, 2], vec![0, 7]] {
        let step =
            n1.handle(Source::Node(2), Message::PreVector { node: 2, view: 0, seq: 0, clients: bad.clone(), ra });
        assert_eq!(step.faults, vec![Fault::BadVector { node: 2 }], "{bad:?}");
        let step = n1.handle(Source::Node(2), Message::DeterVector { node: 2, view: 0, seq: 0, clients: bad, ra });
        assert_eq!(step.faults, vec![Fault::BadVector { node: 2 }]);
    }
    // A pre-vector claiming another sender.
    // Recorded against its sender (node 3), not the node it names.
    let step = n1.handle(Source::Node(3), Message::PreVector { node: 2, view: 0, seq: 0, clients, ra });
    assert_eq!(step.faults, vec![Fault::Impersonation { from: Source::Node(3), claimed: Some(2) }]);
    // A view-0 proposal from node 2 (leader is 0).
    let rel = cfg.release(&[0u8; 8]).unwrap();
    let step = n1.handle(
        Source::Node(2),
        Message::Proposal {
            view: 0,
            root: rel.root,
            clients: vec![],
            ra,
            sf: rel.subfragments[1].clone(),
            excluded: vec![],
            pre_vectors: vec![],
        },
    );
    assert_eq!(step.faults, vec![Fault::NotLeader { node: 2, view: 0 }]);
    assert!(step.sends.is_empty());
}

#[test]
fn an_agreed_client_whose_cells_one_byzantine_node_withheld_from_the_leader_is_still_aggregated() {
    // Client 3 reaches nodes 0, 1, 2 only (3 = 2f+1 pre-vector votes, so it
    // is agreed, and 3 = K − f namers, so it is protected by the omission
    // rule); node 2 withholds its forward to the leader, which still holds
    // 2 = K − 2f cells: the coder needs at most that many, so the honest
    // leader decodes and aggregates client 3.
    for seed in SeedPlan::from_env(5_000, 2).seeds {
        let honest: Vec<usize> = (0..7).collect();
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
            vec![(4 + 3, Box::new(DropTo(3))), (2, Box::new(DropTo(0)))];
        let r = run(seed, 4, vec![ClientBehaviour::Honest; 7], adversaries, &honest);
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        assert_eq!(r.aggregated()[0].1, vec![0, 1, 2, 3, 4, 5, 6], "seed {seed}");
        assert!(!r.faults().iter().any(|f| matches!(f, Fault::Excluded { client: 3, .. })), "{:?}", r.faults());
    }
}

#[test]
fn a_client_sending_two_records_to_one_node_is_recorded_and_its_first_kept() {
    use gridledger_fl::aead::FragmentContext;
    use gridledger_fl::aggregate::params_to_bytes;
    use gridledger_fl::coding::client_key;
    let cfg = config(4, 7, 2);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let ctx = cfg.fragment_context(2);
    assert_eq!((ctx.chain, ctx.round), (2, 5));
    let key = client_key(&SK, 3);
    let signer = sim_client_signing_key(&SIGN_SEED, 3);
    let a = cfg.coder.encode(&key, &signer, &ctx, 3, &params_to_bytes(&model(3))).unwrap();
    let b = cfg.coder.encode(&key, &signer, &ctx, 3, &params_to_bytes(&model(4))).unwrap();
    assert!(send_upload(&mut n1, a.message(1).unwrap()).faults.is_empty());
    assert_eq!(send_upload(&mut n1, b.message(1).unwrap()).faults, vec![Fault::Equivocation { client: 3 }]);
    // Another round's or chain's message, and a cell meant for node 2.
    let other =
        cfg.coder.encode(&key, &signer, &FragmentContext { round: 6, ..ctx }, 3, &params_to_bytes(&model(3))).unwrap();
    let mut m = other.message(1).unwrap();
    m.record.ctx.round = 6;
    assert_eq!(send_upload(&mut n1, m).faults, vec![Fault::WrongContext]);
    // The same chain and round numbers of another chain history.
    let history = FragmentContext { instance: gridledger_core::Hash32([0x99; 32]), ..ctx };
    let replay = cfg.coder.encode(&key, &signer, &history, 3, &params_to_bytes(&model(3))).unwrap();
    assert_eq!(send_upload(&mut n1, replay.message(1).unwrap()).faults, vec![Fault::WrongContext]);
    let c = cfg
        .coder
        .encode(&client_key(&SK, 5), &sim_client_signing_key(&SIGN_SEED, 5), &ctx, 5, &params_to_bytes(&model(5)))
        .unwrap();
    assert_eq!(
        send_upload(&mut n1, c.message(2).unwrap()).faults,
        vec![Fault::Client { client: 5, error: FlError::PositionOutOfRange { index: 2, len: 4 } }]
    );
    // The pre-vector holds the first record's client only.
    let step = n1.on_timer(gridledger_fl::consensus::Timer::PreVector);
    assert!(step.outputs.contains(&Output::PreVector(vec![3])));
}

/// An upload is accepted only from the client its record names, and a
/// refused relay is recorded against its sender (`Fault::Relayed`), never
/// against that client: a node or another client relaying client 2's
/// genuine upload, and a node forwarding it to the leader with its cell
/// altered. Client 2's own upload is then accepted, and a bad cell it
/// sends itself is recorded against it.
#[test]
fn an_upload_is_taken_only_from_its_client_and_a_refused_relay_names_its_sender() {
    use blstrs::Scalar;
    use ff::Field;
    use gridledger_fl::coding::client_key;
    use gridledger_fl::consensus::Timer;
    let cfg = config(4, 7, 2);
    let up = upload(&cfg, 2, &client_key(&SK, 2), &model(2));
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let not_own = |from| Fault::Relayed { from, client: 2, error: FlError::NotOwnUpload { client: 2 } };
    for from in [Source::Node(0), Source::Node(1), Source::Client(3), Source::Client(99)] {
        let step = n1.handle(from, Message::Local(up.message(1).unwrap()));
        assert_eq!(step.faults, vec![not_own(from)]);
        assert!(step.sends.is_empty() && step.outputs.is_empty());
    }
    // Nothing was accepted: the first pre-vector is empty; client 2's own
    // upload, arriving late, is accepted with no fault and named afresh.
    let step = n1.on_timer(Timer::PreVector);
    assert!(step.outputs.contains(&Output::PreVector(vec![])), "{:?}", step.outputs);
    let step = n1.handle(Source::Client(2), Message::Local(up.message(1).unwrap()));
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert!(step.outputs.contains(&Output::PreVector(vec![2])), "{:?}", step.outputs);
    // The leader: node 1's forward with an altered cell is node 1's fault.
    let mut leader = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    let mut altered = up.message(1).unwrap();
    altered.cell.values[0] += Scalar::ONE;
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: altered.clone() });
    assert_eq!(
        step.faults,
        vec![Fault::Relayed { from: Source::Node(1), client: 2, error: FlError::ProofFailed { index: 1 } }]
    );
    // The same altered cell sent by client 2 itself is client 2's fault.
    let mut own_bad = up.message(0).unwrap();
    own_bad.cell.values[0] += Scalar::ONE;
    let step = leader.handle(Source::Client(2), Message::Local(own_bad));
    assert!(
        matches!(step.faults[..], [Fault::Client { client: 2, error: FlError::ProofFailed { .. } }]),
        "{:?}",
        step.faults
    );
}

/// The root is agreed on the chain's PBFT, not by a local vote count: every
/// honest node holds the committed block with a commit certificate that
/// verifies against the round's validator set, naming the root and the
/// clients the leader aggregated.
#[test]
fn the_committed_root_carries_a_pbft_commit_certificate() {
    let honest: Vec<usize> = (0..7).collect();
    let r = run(3_100, 4, vec![ClientBehaviour::Honest; 7], Vec::new(), &honest);
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
    let set = config(4, 7, 2).validator_set().unwrap();
    let committed = r.committed();
    assert_eq!(committed.len(), 4, "every node commits: {committed:?}");
    for &(n, view, root) in &committed {
        let Some(Participant::Node(node)) = r.sim.node(n) else { panic!("node {n} missing") };
        let entry = node.certificate().expect("a committed node holds the certificate");
        entry.verify(&set, 1).unwrap();
        assert!(entry.cert.signatures.len() >= set.quorum(), "{} signatures", entry.cert.signatures.len());
        assert_eq!(entry.payload, RootBlock { chain: 2, round: 5, view, root, clients: (0..7).collect() });
    }
    // A certificate of another round's instance does not verify here.
    let other = ChainConfig::new(ChainParams { round: 6, ..config(4, 7, 2).params().clone() });
    let entry = match r.sim.node(0) {
        Some(Participant::Node(n)) => n.certificate().unwrap().clone(),
        _ => panic!("node 0 missing"),
    };
    assert!(entry.verify(&other.validator_set().unwrap(), 1).is_err());
}

/// A PBFT block naming a root this node found bad gets no prepare vote;
/// one whose root it has not checked yet waits (no vote, no fault); PBFT
/// messages from outside the chain's nodes are faults.
///
/// The refutation here is a junk copy: leader 0's proposal arrives with a
/// forged attestation, which is recorded against view 0 (`BadProposal`).
/// That proves nothing about the block itself — the view's leader may have
/// sent the others the genuine attested proposal, and the PBFT leader
/// (node 2) may be honest — so since attack round 19 the node fetches the
/// block's attested proposal and waits for it (no vote) instead of
/// recording node 2 as proposing an invalid block (`InvalidProposal` is
/// recorded only for a block whose own `(view, root, clients)` proved
/// invalid here, its fetched proposal failing).
#[test]
fn a_pbft_block_with_a_root_the_node_refuted_gets_no_vote() {
    let cfg = config(4, 7, 2);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let _ = n1.start();
    let set = cfg.validator_set().unwrap();
    let rel = cfg.release(&[0u8; 8]).unwrap();
    let block = RootBlock { chain: 2, round: 5, view: 0, root: rel.root, clients: vec![0, 1, 2] };
    // PBFT's leader at height 1, view 1 is node (1 + 1) mod 4 = 2.
    assert_eq!(set.leader(1, 1), 2);
    let pp = PrePrepare::sign(&sim_node_key(2), &set.instance, 1, 1, block);
    let step = n1.handle(Source::Node(2), Message::Pbft(Box::new(pbft::Message::PrePrepare(pp.clone()))));
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert!(!step.sends.iter().any(|(_, m)| matches!(m, Message::Pbft(_))), "no vote before the root is checked");
    // Leader 0's proposal for that root arrives with a forged attestation: refuted.
    let ra = enclave(3).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, &[0, 1, 2]));
    let step = n1.handle(
        Source::Node(0),
        Message::Proposal {
            view: 0,
            root: rel.root,
            clients: vec![0, 1, 2],
            ra,
            sf: rel.subfragments[1].clone(),
            excluded: vec![],
            pre_vectors: vec![],
        },
    );
    assert!(step.faults.iter().any(|f| matches!(f, Fault::BadProposal { view: 0, .. })), "{:?}", step.faults);
    assert!(
        !step.faults.iter().any(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { .. }))),
        "a junk copy proves nothing about the PBFT leader's block: {:?}",
        step.faults
    );
    assert!(
        step.sends.iter().any(|(_, m)| matches!(m, Message::FetchProposal { view: 0, root, .. } if *root == rel.root)),
        "the block's attested proposal is not fetched"
    );
    assert!(!step.sends.iter().any(|(_, m)| matches!(m, Message::Pbft(_))), "no prepare for a refuted root");
    assert_eq!(n1.committed(), None);
    // PBFT traffic from a client, or from a node index outside the chain.
    let step = n1.handle(Source::Client(0), Message::Pbft(Box::new(pbft::Message::PrePrepare(pp.clone()))));
    assert_eq!(step.faults, vec![Fault::Impersonation { from: Source::Client(0), claimed: None }]);
    let step = n1.handle(Source::Node(9), Message::Pbft(Box::new(pbft::Message::PrePrepare(pp))));
    assert_eq!(step.faults, vec![Fault::UnknownNode(9)]);
    // A node given another node's PBFT key takes no part: a typed fault at start, no PBFT traffic.
    let mut wrong = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(2), TIMING);
    let step = wrong.start();
    assert_eq!(step.faults, vec![Fault::PbftConfig(pbft::ConfigError::KeyMismatch(1))]);
    assert!(!step.sends.iter().any(|(_, m)| matches!(m, Message::Pbft(_))));
}

/// PBFT's leader of the first slot (node 2) withholds everything: PBFT's
/// own view change hands the proposal to the next node, and the verified
/// root still commits in the first aggregation view.
#[test]
fn a_silent_pbft_leader_is_replaced_by_a_pbft_view_change() {
    let honest: Vec<usize> = (0..7).collect();
    let set = config(4, 7, 2).validator_set().unwrap();
    assert_eq!(set.leader(1, 1), 2);
    let r = run(3_200, 4, vec![ClientBehaviour::Honest; 7], vec![(2, Box::new(Withhold))], &honest);
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
    for &(n, view, _) in &r.committed() {
        assert_eq!(view, 0, "the aggregation leader was honest");
        let Some(Participant::Node(node)) = r.sim.node(n) else { panic!("node {n} missing") };
        let cert = &node.certificate().expect("certificate").cert;
        assert!(cert.view > 1, "node {n}: committed in PBFT view {}, the silent leader's", cert.view);
        assert_ne!(set.leader(cert.view, 1), 2);
    }
}

/// A view-change request far ahead of this node's view is kept (not
/// dropped): one Byzantine request moves nobody, `f+1` make the node join,
/// and with its own that is `2f+1`, so it moves to that view.
#[test]
fn far_ahead_view_requests_are_kept_and_need_f_plus_one_to_join() {
    let cfg = config(4, 4, 1);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let _ = n1.start();
    let asks = |s: &gridledger_fl::consensus::Step| {
        s.sends.iter().filter(|(_, m)| matches!(m, Message::ViewChange { node: 1, .. })).count()
    };
    let step = n1.handle(Source::Node(2), Message::ViewChange { node: 2, view: 10 });
    assert_eq!((asks(&step), n1.view()), (0, 0), "one request (≤ f) moves nobody");
    let step = n1.handle(Source::Node(3), Message::ViewChange { node: 3, view: 10 });
    assert_eq!(asks(&step), 3, "f+1 requests: node 1 joins, asking every other node");
    assert!(step.outputs.contains(&Output::NewView(10)), "{:?}", step.outputs);
    assert_eq!(n1.view(), 10);
    // A request for a view it already passed changes nothing.
    let step = n1.handle(Source::Node(0), Message::ViewChange { node: 0, view: 4 });
    assert!(step.sends.is_empty() && step.outputs.is_empty());
}

/// Attack round 8, finding 1, with Byzantine nodes that relay nothing:
/// nodes 5 and 6, skipped by the Byzantine leaders of views 0 and 1, never
/// receive view 0's proposal, and no later honest leader reproduces its
/// aggregate (it excluded an equivocating client with evidence only node 0
/// holds). They fetch view 0's proposal from the nodes that verified it
/// (2, 3 and 4: `f + 1`, all a prepared certificate guarantees), check it
/// as if the leader had sent it, rebuild their own subfragment from those
/// three, validate the re-proposed block and commit it; every honest
/// client decodes view 0's aggregate.
#[test]
fn skipped_nodes_fetch_a_prepared_root_the_byzantine_nodes_do_not_relay() {
    let honest = [0usize, 1, 2, 3];
    let r = skipping_leaders_and_an_equivocating_client(3, RelayMode::Drop);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
    let committed = r.committed();
    assert_eq!(committed[0].1, 0, "{committed:?}");
    for node in [5u32, 6] {
        assert!(committed.iter().any(|(n, ..)| *n == node), "skipped node {node} did not commit: {committed:?}");
    }
}

/// The same, with Byzantine nodes that relay view 0's proposal with a
/// client left out and their subfragment altered (and send that forgery
/// unasked, ahead of every honest relay): the skipped nodes refuse both
/// parts (the attestation does not cover the client list, the subfragment
/// fails its Merkle proof) as typed faults against the relayer
/// ([`Fault::BadRelay`]), and still commit view 0's root from the honest
/// relays.
#[test]
fn forged_relays_are_refused_and_the_skipped_nodes_still_commit() {
    let honest = [0usize, 1, 2, 3];
    let r = skipping_leaders_and_an_equivocating_client(3, RelayMode::Alter);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
    let byzantine = [Source::Node(0), Source::Node(1)];
    let refused = |what: &str| {
        r.sim.faults.iter().any(|(_, n, f)| {
            (*n == 5 || *n == 6)
                && matches!(f, Fault::BadRelay { from, view: 0, error }
                    if byzantine.contains(from) && error.contains(what))
        })
    };
    assert!(refused("relayed proposal"), "no forged relayed proposal refused");
    assert!(refused("relayed subfragment"), "no altered relayed subfragment refused");
    for node in [5u32, 6] {
        assert!(r.committed().iter().any(|(n, ..)| *n == node), "skipped node {node} did not commit");
    }
}
