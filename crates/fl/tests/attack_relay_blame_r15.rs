//! Attack round 15 on issue 16: who a node's fault record blames when a
//! Byzantine node relays an honest client's upload with an altered cell.
//!
//! A client's upload record is signed, its cells are not (the KZG proof
//! ties a cell to the record's commitment). Every node holds every
//! client's record, so a Byzantine node can pair an honest client's
//! genuine record with a cell of its own making and send it on — as a
//! `Local` message (which a node accepts from anyone) or as a `Forward`
//! to the leader. The fault the receiver records should name the relaying
//! node (the one who altered the cell), never the honest client: the same
//! rule the recent B2C/C2C change applies to mini-fragments ("a refused
//! message is recorded against its sender").

mod common;

use blstrs::Scalar;
use common::*;
use ff::Field;
use gridledger_fl::coding::{client_key, LocalMessage};
use gridledger_fl::consensus::{ChainNode, Fault, Message, Output, Timer};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::sim_node_key;

/// Client 2's genuine record with the cell for `node` altered.
fn forged_cell(cfg: &gridledger_fl::consensus::ChainConfig, node: usize) -> (LocalMessage, LocalMessage) {
    let up = upload(cfg, 2, &client_key(&SK, 2), &model(2));
    let genuine = up.message(node).unwrap();
    let mut forged = genuine.clone();
    forged.cell.values[0] += Scalar::ONE;
    (genuine, forged)
}

fn blames_client(faults: &[Fault], client: u32) -> bool {
    faults.iter().any(|f| matches!(f, Fault::Client { client: c, .. } if *c == client))
}

/// Finding 1 (low): byzantine node 0 sends honest node 1 a `Local`
/// message carrying honest client 2's signed record and an altered cell
/// for node 1. Node 1 records `Fault::Client { client: 2, ProofFailed }`:
/// the honest client reads as the one that sent a bad cell, though node 1
/// knows the message came from node 0 (`handle(Source::Node(0), ..)`) and clients
/// are the only senders of `Local`. Expected: refused as node 0's fault
/// (or not recorded against client 2 at all).
#[test]
fn a_local_relayed_by_a_node_with_an_altered_cell_does_not_blame_the_client() {
    let cfg = config(4, 4, 1);
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let (_, forged) = forged_cell(&cfg, 1);
    let step = node.handle(Source::Node(0), Message::Local(forged));
    assert!(!blames_client(&step.faults, 2), "honest client 2 recorded guilty of node 0's relay: {:?}", step.faults);
}

/// Finding 2 (low): byzantine node 1 forwards honest client 2's record to
/// the view-0 leader (node 0) with its own cell altered. The leader
/// records `Fault::Client { client: 2, ProofFailed }`, although the
/// message is node 1's `Forward` (`from_node == Some(1)` is checked just
/// before) and node 1 holds client 2's genuine cell. Expected: the record
/// names node 1.
#[test]
fn a_forward_with_an_altered_cell_blames_the_forwarder_not_the_client() {
    let cfg = config(4, 4, 1);
    assert_eq!(cfg.leader(0), 0);
    let mut leader = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    let (_, forged) = forged_cell(&cfg, 1);
    let step = leader.handle(Source::Node(1), Message::Forward { node: 1, msg: forged });
    assert!(!step.faults.is_empty(), "the altered forward was not refused at all");
    assert!(!blames_client(&step.faults, 2), "honest client 2 recorded guilty of node 1's forward: {:?}", step.faults);
}

/// Held up: the relayed forgery changes nothing else at node 1 — client
/// 2's own upload arriving afterwards is accepted (no equivocation, no
/// fault) and named in node 1's pre-vector.
#[test]
fn a_relayed_forgery_does_not_keep_the_honest_upload_out() {
    let cfg = config(4, 4, 1);
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let (genuine, forged) = forged_cell(&cfg, 1);
    node.handle(Source::Node(0), Message::Local(forged));
    let step = node.handle(Source::Client(2), Message::Local(genuine));
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    let step = node.on_timer(Timer::PreVector);
    let named = step.outputs.iter().any(|o| matches!(o, Output::PreVector(cs) if cs.contains(&2)));
    assert!(named, "client 2 missing from node 1's pre-vector: {:?}", step.outputs);
}

/// Byzantine node 1 follows the protocol except that every `Forward` it
/// sends the leader carries the client's record with its own cell altered.
struct AlterForwards;
impl gridledger_sim::Adversary<P> for AlterForwards {
    fn tamper(
        &mut self,
        _: gridledger_sim::Time,
        sends: Vec<(gridledger_sim::Dest, Message)>,
        _: &mut rand_chacha::ChaCha8Rng,
    ) -> Vec<(gridledger_sim::Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Forward { node, mut msg } => {
                    msg.cell.values[0] += Scalar::ONE;
                    (d, Message::Forward { node, msg })
                }
                other => (d, other),
            })
            .collect()
    }
}

fn alter_forwards_round() -> Run {
    let honest = [0usize, 1, 2, 3];
    run(15, 4, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], vec![(1, Box::new(AlterForwards))], &honest)
}

/// Finding 2, end to end (low): in a full round (K = 4, four honest
/// clients) with node 1 altering its forwards, the round succeeds, but the
/// leader's fault log names every honest client as having sent a bad cell
/// — the record of the one Byzantine node's misbehaviour reads as four
/// honest clients' guilt, and names node 1 nowhere.
#[test]
fn altered_forwards_in_a_full_round_blame_no_honest_client() {
    let r = alter_forwards_round();
    r.debug_trace();
    let blamed: Vec<u32> = r
        .faults()
        .iter()
        .filter_map(|f| match f {
            Fault::Client { client, .. } => Some(*client),
            _ => None,
        })
        .collect();
    assert!(blamed.is_empty(), "honest clients recorded guilty of node 1's altered forwards: {blamed:?}");
}

/// Held up: the same round completes — every honest client decodes the
/// same global model (the leader refuses the altered cells and decodes
/// from the honest nodes' cells and its own).
#[test]
fn altered_forwards_do_not_stop_the_round() {
    let r = alter_forwards_round();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// Byzantine client 3 (colluding with a node, which holds every client's
/// record) sends node 1, instead of its own cell, honest client 2's signed
/// record with an altered cell.
struct RelayOtherClient {
    forged: LocalMessage,
}
impl gridledger_sim::Adversary<P> for RelayOtherClient {
    fn tamper(
        &mut self,
        _: gridledger_sim::Time,
        sends: Vec<(gridledger_sim::Dest, Message)>,
        _: &mut rand_chacha::ChaCha8Rng,
    ) -> Vec<(gridledger_sim::Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match (d, m) {
                (gridledger_sim::Dest::One(1), Message::Local(_)) => (d, Message::Local(self.forged.clone())),
                (d, other) => (d, other),
            })
            .collect()
    }
}

/// Finding 1, from a client (low): the same relay sent by Byzantine client
/// 3 (simulator id 7) is recorded at node 1 as `Fault::Client { client: 2
/// }`: a `Local` is attributed to the client its record names, never to
/// the party that sent it (the simulator wrapper passes `None` for any
/// client sender, so a node cannot tell). Expected: no record against
/// client 2, whose own upload reached node 1 intact.
#[test]
fn a_local_relayed_by_another_client_does_not_blame_the_honest_client() {
    let cfg = config(4, 4, 1);
    let (_, forged) = forged_cell(&cfg, 1);
    let honest = [0usize, 1, 2];
    let r = run(
        15,
        4,
        vec![gridledger_fl::round::ClientBehaviour::Honest; 4],
        vec![(4 + 3, Box::new(RelayOtherClient { forged }))],
        &honest,
    );
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
    let blamed = r.faults_where(|f| matches!(f, Fault::Client { client: 2, .. }));
    assert!(blamed.is_empty(), "honest client 2 recorded guilty of client 3's relay: {blamed:?}");
}

/// Held up (the recent "refused mini-fragments name their sender"): an
/// honest node's commit-time mini-fragment and its answers to every
/// request a client may send ([`gridledger_fl::consensus::MAX_RESYNCS`]),
/// all arriving before the client knows the root, stay within the node's
/// pending quota — no `Refused` record names an honest node — and decode
/// once the root is set.
#[test]
fn an_honest_nodes_answers_before_the_root_are_never_refused() {
    use gridledger_core::Hash32;
    use gridledger_fl::consensus::MAX_RESYNCS;
    use gridledger_fl::dissemination::{ClientAssembler, GlobalCoder};
    let (nodes, clients) = (4, 7);
    let coder = GlobalCoder::for_chain(600, nodes, clients).unwrap();
    let bytes: Vec<u8> = (0..600).map(|i| (i as u8).wrapping_mul(29).wrapping_add(3)).collect();
    let rel = coder.release(Hash32([9; 32]), 0, 3, &bytes).unwrap();
    let need = coder.minis_needed();
    let me = 5;
    let mut a = ClientAssembler::new(me, 3, vec![coder.clone()]);
    let mut faults = Vec::new();
    for sf in &rel.subfragments {
        let minis = coder.mini_fragments(sf.node, &rel.root, sf).unwrap();
        faults.extend(a.on_mini(Source::Node(sf.node), minis[me].clone()).faults);
        for _ in 0..MAX_RESYNCS {
            for c in (0..need).map(|i| (me + i) % clients) {
                faults.extend(a.on_mini(Source::Node(sf.node), minis[c].clone()).faults);
            }
        }
    }
    let step = a.set_root(0, rel.root);
    faults.extend(step.faults);
    assert!(faults.is_empty(), "an honest node's answers refused: {faults:?}");
    assert_eq!(step.decoded, vec![0]);
    assert_eq!(a.fragment(0), Some(&bytes[..]));
}
