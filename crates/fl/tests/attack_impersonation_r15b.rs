//! Attack round 15b on issue 16: whom a node's fault record blames when a
//! message of a node's kind names another node than its sender.
//!
//! Pre- and deter-vectors, forwards, view changes, fetches and relays name
//! the node that sends them, and a proposal claims the view's leader. A
//! node refuses one whose sender (the transport's word: the node or client
//! at the other end of the link) is not that node. The record of the
//! refusal must name the sender — a Byzantine node, or a client, which
//! sends no message of a node's kind at all — never the (honest) node the
//! message names, or one Byzantine participant makes the record accuse
//! honest peers (the rule round 15 set for relayed uploads).

mod common;

use common::*;
use gridledger_consensus::pbft::{self, PrePrepare};
use gridledger_fl::consensus::{ChainNode, Fault, Message, RootBlock};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::{sim_node_key, ClientBehaviour};
use gridledger_sim::Adversary;

const NODES: usize = 4;
const CLIENTS: usize = 7;
const BETA: usize = 2;

/// Node 1 receives, from each of `senders`, every message of a node's kind
/// naming honest node 2 (a proposal: of view 2, which node 2 leads).
/// Expected: each is refused (no send, no output), recorded against its
/// sender, and no record accuses node 2.
fn refused_against_sender(senders: &[Source]) {
    let cfg = config(NODES, CLIENTS, BETA);
    for (kind, msg) in naming(&cfg, 2, 1) {
        for &from in senders {
            let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
            let step = n1.handle(from, msg.clone());
            let accused: Vec<Option<Source>> = step.faults.iter().map(accused).collect();
            assert!(
                !accused.contains(&Some(Source::Node(2))),
                "{kind} naming node 2 sent by {from:?}: the record accuses node 2: {:?}",
                step.faults
            );
            assert!(accused.contains(&Some(from)), "{kind} from {from:?} not recorded against it: {:?}", step.faults);
            assert!(step.sends.is_empty() && step.outputs.is_empty(), "{kind} from {from:?} acted on: {step:?}");
        }
    }
}

/// Byzantine node 3 (and node 0, the leader of view 0) sends node 1 each
/// message of a node's kind naming honest node 2.
#[test]
fn a_node_naming_an_honest_peer_is_recorded_itself() {
    refused_against_sender(&[Source::Node(3), Source::Node(0)]);
}

/// A client sends node 1 each message of a node's kind naming honest
/// node 2: a client sends none of these, so it is refused and recorded
/// against the client.
#[test]
fn a_client_naming_an_honest_node_is_recorded_itself() {
    refused_against_sender(&[Source::Client(0), Source::Client(6)]);
}

/// The named sender check is exact: the field is what names the node, so
/// the record says who claimed whom.
#[test]
fn the_record_names_the_sender_and_the_node_it_claimed() {
    let cfg = config(NODES, CLIENTS, BETA);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let step = n1.handle(Source::Node(3), Message::ViewChange { node: 2, view: 1 });
    assert_eq!(step.faults, vec![Fault::Impersonation { from: Source::Node(3), claimed: Some(2) }]);
    let step = n1.handle(Source::Client(4), Message::FetchProposal { node: 0, view: 0, root: Default::default() });
    assert_eq!(step.faults, vec![Fault::Impersonation { from: Source::Client(4), claimed: Some(0) }]);
}

/// Held up: node 2's own messages, sent by node 2, are taken (no fault).
#[test]
fn the_named_node_itself_is_not_refused() {
    let cfg = config(NODES, CLIENTS, BETA);
    for (kind, msg) in naming(&cfg, 2, 1) {
        if matches!(kind, "deter-vector" | "relay" | "proposal" | "forward") {
            // Checked past the sender (committee, proposal contents, the
            // cell's node): other refusals that name node 2 rightly.
            continue;
        }
        let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
        let step = n1.handle(Source::Node(2), msg);
        assert!(step.faults.is_empty(), "{kind} from node 2 itself refused: {:?}", step.faults);
    }
}

/// A client replaying honest node 2's signed PBFT pre-prepare: PBFT
/// traffic comes from the chain's nodes only, so it is refused and
/// recorded against the client.
#[test]
fn pbft_traffic_from_a_client_is_recorded_against_the_client() {
    let cfg = config(NODES, CLIENTS, BETA);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let _ = n1.start();
    let set = cfg.validator_set().unwrap();
    let rel = cfg.release(&[0u8; 8]).unwrap();
    let block = RootBlock { chain: 2, round: 5, view: 0, root: rel.root, clients: vec![0, 1, 2] };
    let pp = PrePrepare::sign(&sim_node_key(2), &set.instance, 1, 1, block);
    let step = n1.handle(Source::Client(3), Message::Pbft(Box::new(pbft::Message::PrePrepare(pp))));
    assert_eq!(step.faults, vec![Fault::Impersonation { from: Source::Client(3), claimed: None }]);
}

/// Byzantine node 1 impersonates honest node 2 in every kind (a copy of
/// each message of a node's kind it sends, renamed, and a genuine-looking
/// message of each kind naming node 2), and Byzantine client 6 (its own
/// upload honest) impersonates node 0, view 0's leader, in every kind.
/// Expected: the round commits and every honest client decodes the
/// trimmed mean; no record accuses an honest node or client; the records
/// name node 1 and client 6.
#[test]
fn impersonations_in_every_kind_leave_the_round_whole_and_accuse_no_honest_peer() {
    let cfg = config(NODES, CLIENTS, BETA);
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(1, Box::new(Impersonate::new(&cfg, 2))), (NODES + 6, Box::new(Impersonate::new(&cfg, 0)))];
    let honest: Vec<usize> = (0..6).collect();
    let r = run(1_515, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), BETA);
    let faults = r.faults();
    let honest_peers = [Source::Node(0), Source::Node(2), Source::Node(3)]
        .into_iter()
        .chain(honest.iter().map(|&c| Source::Client(c)));
    for peer in honest_peers {
        let f: Vec<_> = faults.iter().filter(|f| accused(f) == Some(peer)).collect();
        assert!(f.is_empty(), "honest {peer:?} accused: {f:?}");
    }
    for (from, claimed) in [(Source::Node(1), 2), (Source::Client(6), 0)] {
        let named = faults.contains(&&Fault::Impersonation { from, claimed: Some(claimed) });
        assert!(named, "no record of {from:?} impersonating node {claimed}: {faults:?}");
    }
}
