//! Attack round 17 on CTP-FL (issue 16), on the change that records a
//! refused relay against its relayer (`Fault::BadRelay`), lets a node
//! without a PBFT replica drop its peers' PBFT traffic without a record,
//! and drops a forward held already before its signature and KZG check.
//! `cargo test -p gridledger-fl --test attack_relay_shortcut_r17 -- --include-ignored`.

mod common;

use blstrs::Scalar;
use common::*;
use ff::Field;
use gridledger_core::crypto::KeyPair;
use gridledger_fl::coding::{client_key, LocalMessage};
use gridledger_fl::consensus::{ChainConfig, ChainNode, Fault, Message};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::{sim_client_secrets, sim_node_key, ClientBehaviour, FlClient, Participant};
use gridledger_sim::{Adversary, Dest, NetConfig, Simulation, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Node 0's proposal copies to the nodes listed are lost on the links, so
/// those nodes fetch view 0's proposal from their peers.
struct LoseProposalTo(Vec<u32>);

impl Adversary<P> for LoseProposalTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| !(matches!(m, Message::Proposal { .. }) && self.0.iter().any(|&n| *d == Dest::One(n))))
            .collect()
    }
}

/// Byzantine node: the honest code, except that every relay it answers a
/// fetch with names node `other` as its subfragment's node (values, proof
/// and proposal left as the node verified them). No honest node sends
/// that: an honest relay always carries the relayer's own subfragment.
struct RelayOtherSubfragment {
    other: usize,
    /// How many relays it rewrote (so a test knows the attack ran).
    sent: Arc<AtomicUsize>,
}

impl Adversary<P> for RelayOtherSubfragment {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Relay { node, view, root, clients, ra, mut sf, excluded, pre_vectors } => {
                    sf.node = self.other;
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    (d, Message::Relay { node, view, root, clients, ra, sf, excluded, pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

fn other_subfragment_run(seed: u64) -> (Run, usize) {
    let sent = Arc::new(AtomicUsize::new(0));
    let r = run(
        seed,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![
            (0, Box::new(LoseProposalTo(vec![5, 6]))),
            (1, Box::new(RelayOtherSubfragment { other: 3, sent: sent.clone() })),
        ],
        &[0, 1, 2, 3],
    );
    let n = sent.load(Ordering::Relaxed);
    (r, n)
}

/// FINDING 1 (low: a forged relay goes unrecorded, so the relayer is
/// named nowhere — the gap the `BadRelay` change set out to close).
///
/// K = 7 (f = 2). Honest leader node 0's proposal copies to nodes 5 and 6
/// are lost, so both fetch view 0's proposal. Byzantine node 1 answers
/// with a `Relay` whose subfragment names node 3 (`sf.node = 3`; an honest
/// relayer always sends its own, `sf.node == node`). `ChainNode::on_relay`
/// returns at `p.sf.node != from` before anything is recorded, so the
/// refusal leaves no record at all — although the module docs now say a
/// refused relay is recorded against its relayer "whatever check it
/// failed", and the relay is as much a forgery as one with a broken
/// attestation (which is recorded as `BadRelay { from: Node(1), .. }`).
/// Expected: a record naming node 1 at node 5 or 6. Observed: none.
/// Fixed: such a relay is recorded as `BadRelay` against its relayer,
/// once per fetch, like any other refused relay.
#[test]
fn a_relay_carrying_another_nodes_subfragment_is_recorded_against_its_relayer() {
    let (r, sent) = other_subfragment_run(3);
    r.debug_trace();
    assert!(sent > 0, "node 1 was never asked for a relay");
    let records: Vec<&Fault> =
        r.sim.faults.iter().filter(|(_, n, _)| [5u32, 6].contains(n)).map(|(_, _, f)| f).collect();
    let names_forger = records.iter().filter(|f| accused(f) == Some(Source::Node(1))).count();
    assert!(names_forger > 0, "nodes 5 and 6 refused node 1's {sent} forged relays without naming it: {records:?}");
}

/// Held up: the same run still commits and every honest client decodes the
/// trimmed mean, and no honest node's record names an honest node.
#[test]
fn a_relay_carrying_another_nodes_subfragment_stops_nothing_and_frames_no_one() {
    let (r, sent) = other_subfragment_run(3);
    r.debug_trace();
    assert!(sent > 0, "node 1 was never asked for a relay");
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    let honest = [0u32, 2, 3, 4, 5, 6];
    let wrong: Vec<_> = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, f)| honest.contains(n) && matches!(accused(f), Some(Source::Node(k)) if k != 1))
        .collect();
    assert!(wrong.is_empty(), "honest nodes accused honest nodes: {wrong:?}");
}

/// Leader node 0 holding client 2's cell for node 1, forwarded by node 1
/// (verified: no fault), and that message.
fn leader_holding(cfg: &Arc<ChainConfig>) -> (ChainNode<gridledger_core::enclave::SoftwareAttester>, LocalMessage) {
    let mut leader = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    let up = upload(cfg, 2, &client_key(&SK, 2), &model(2));
    let m = up.message(1).unwrap();
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: m.clone() });
    assert!(step.faults.is_empty(), "the genuine forward was refused: {:?}", step.faults);
    (leader, m)
}

fn relayed_by(faults: &[Fault], node: usize) -> bool {
    faults.iter().any(|f| matches!(f, Fault::Relayed { from: Source::Node(k), client: 2, .. } if *k == node))
}

/// Held up: the duplicate shortcut (`holds`) compares the whole record —
/// signature included — and the whole cell. A forward that matches a held
/// one in its record but not in its cell's values, or in its cell but not
/// in its proof, or in every field but the signature (a signature by
/// another key over the same digest), is checked and refused as the
/// forwarder's fault; only the exact repeat is dropped unchecked (and
/// recorded nowhere).
#[test]
fn the_duplicate_forward_shortcut_takes_only_exact_repeats() {
    let cfg = config(4, 4, 1);
    let (mut leader, held) = leader_holding(&cfg);

    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: held.clone() });
    assert!(step.faults.is_empty(), "an exact repeat was recorded: {:?}", step.faults);

    let mut values = held.clone();
    values.cell.values[0] += Scalar::ONE;
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: values });
    assert!(relayed_by(&step.faults, 1), "an altered cell under a held record passed: {:?}", step.faults);

    // (Every cell of one upload shares its proof here: cells of four
    // values of a degree-4 polynomial leave a constant quotient. So the
    // other proof is of another client's upload.)
    let other = upload(&cfg, 3, &client_key(&SK, 3), &model(3)).message(1).unwrap();
    assert_ne!(other.cell.proof, held.cell.proof);
    let mut proof = held.clone();
    proof.cell.proof = other.cell.proof;
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: proof });
    assert!(relayed_by(&step.faults, 1), "a held cell with another proof passed: {:?}", step.faults);

    // The same record (same digest: the encoding is deterministic) signed
    // by a key that is not client 2's.
    let forged = upload_signed(&cfg, 2, &client_key(&SK, 2), &KeyPair::from_seed("not client 2"), &model(2));
    assert_eq!(forged.record.digest(), held.record.digest());
    assert_ne!(forged.record.signature, held.record.signature);
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: forged.message(1).unwrap() });
    assert!(relayed_by(&step.faults, 1), "a held record with another signature passed: {:?}", step.faults);

    // Node 1's held message forwarded by node 3 (not its position): checked
    // and refused, never dropped as a repeat.
    let step = leader.handle(Source::Node(3), Message::Forward { node: 3, msg: held });
    assert!(!step.faults.is_empty(), "node 1's cell forwarded by node 3 was taken silently");
}

/// Builds a round whose nodes in `no_pbft` hold a signing key that is not
/// their validator key (their replica cannot be built: `PbftConfig`).
fn run_without_pbft(seed: u64, nodes: usize, no_pbft: &[usize]) -> Run {
    let clients = 4;
    let cfg = config(nodes, clients, 1);
    let net = NetConfig::reliable(nodes + clients, 6);
    let no_pbft = no_pbft.to_vec();
    let mut sim = Simulation::new(seed, net, move |id, _| {
        let id = id as usize;
        if id < nodes {
            let key = if no_pbft.contains(&id) { sim_node_key(100 + id) } else { sim_node_key(id) };
            Participant::Node(Box::new(ChainNode::new(cfg.clone(), id, enclave(id), SK, key, TIMING)))
        } else {
            let c = id - nodes;
            Participant::Client(Box::new(FlClient::new(
                cfg.clone(),
                c,
                sim_client_secrets(&SK, &SIGN_SEED, c as u32),
                model(c),
                ClientBehaviour::Honest,
            )))
        }
    });
    sim.set_restart_after(None);
    sim.start();
    let want: Vec<u32> = (0..clients).map(|c| (nodes + c) as u32).collect();
    sim.run_until(5_000, |s| {
        want.iter().all(|id| {
            s.outputs.iter().any(|(_, n, o)| n == id && matches!(o, gridledger_fl::round::RoundOutput::Global(_)))
        })
    });
    Run { sim, nodes }
}

/// Held up: `f = 2` nodes of seven that cannot run PBFT — among them view
/// 0's aggregation leader (node 0) and the first PBFT leader (node 1) —
/// do not stall the round: the other five commit view 0's root after a
/// PBFT view change, every honest client decodes, and the PBFT-less nodes
/// accuse no peer (each records only its own `PbftConfig`).
#[test]
fn f_nodes_without_pbft_neither_stall_the_round_nor_accuse_their_peers() {
    let r = run_without_pbft(7, 7, &[0, 1]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    for n in [0u32, 1] {
        assert!(
            r.sim.faults.iter().any(|(_, k, f)| *k == n && matches!(f, Fault::PbftConfig(_))),
            "node {n} did run PBFT"
        );
        let accusing: Vec<_> =
            r.sim.faults.iter().filter(|(_, k, f)| *k == n && accused(f).is_some()).map(|(_, _, f)| f).collect();
        assert!(accusing.is_empty(), "PBFT-less node {n} accused: {accusing:?}");
    }
}

/// Held up: with no Byzantine party, honest relays are never recorded as
/// `BadRelay`, whenever they arrive (the relay checks depend on the relay
/// alone, not on the receiver's view or fetch state). Honest leader node
/// 0's proposal copies to nodes 4, 5 and 6 are lost, so three nodes fetch
/// from the others at once, over several seeds (delivery orders).
#[test]
fn honest_relays_are_never_recorded_as_bad_relays() {
    for seed in 1..4 {
        let r = run(
            seed,
            7,
            vec![ClientBehaviour::Honest; 4],
            vec![(0, Box::new(LoseProposalTo(vec![4, 5, 6])))],
            &[0, 1, 2, 3],
        );
        r.debug_trace();
        let bad: Vec<_> = r.sim.faults.iter().filter(|(_, _, f)| matches!(f, Fault::BadRelay { .. })).collect();
        assert!(bad.is_empty(), "seed {seed}: honest relays recorded as bad: {bad:?}");
        assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    }
}
