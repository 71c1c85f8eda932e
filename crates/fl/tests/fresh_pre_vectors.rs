//! Fresh pre-vectors (the fix of attack round 13's one-shot snapshots): a
//! node accepts an upload after its pre-vector timer and names it in a
//! fresh pre-vector; which pre-vector of a node counts; a repeated upload
//! is a no-op. See "Fresh pre-vectors" in the consensus module docs.

mod common;

use common::*;
use gridledger_fl::coding::client_key;
use gridledger_fl::consensus::{ChainNode, Fault, Message, Output, Timer, To};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::sim_node_key;

/// Node 1 of K = 4: client 3's upload arrives after the pre-vector timer.
/// It is accepted, forwarded to the leader (node 0) and named in a fresh
/// pre-vector (sequence number 1, view 0) sent to every node; the same
/// upload again changes nothing.
#[test]
fn a_late_upload_is_named_in_a_fresh_pre_vector_and_a_repeat_is_a_no_op() {
    let cfg = config(4, 7, 2);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let up0 = upload(&cfg, 0, &client_key(&SK, 0), &model(0));
    assert!(send_upload(&mut n1, up0.message(1).unwrap()).faults.is_empty());
    let step = n1.on_timer(Timer::PreVector);
    assert!(step.outputs.contains(&Output::PreVector(vec![0])));
    let up3 = upload(&cfg, 3, &client_key(&SK, 3), &model(3));
    let late = up3.message(1).unwrap();
    let step = send_upload(&mut n1, late.clone());
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert_eq!(step.outputs, vec![Output::PreVector(vec![0, 3])]);
    let fresh: Vec<(usize, u32, u32)> = step
        .sends
        .iter()
        .filter_map(|(to, m)| match (to, m) {
            (To::Node(k), Message::PreVector { node: 1, view, seq, clients, .. }) if *clients == [0, 3] => {
                Some((*k, *view, *seq))
            }
            _ => None,
        })
        .collect();
    assert_eq!(fresh, vec![(0, 0, 1), (2, 0, 1), (3, 0, 1)]);
    assert!(step.sends.iter().any(|(to, m)| *to == To::Node(0) && matches!(m, Message::Forward { node: 1, .. })));
    // The client re-sends the same upload: nothing.
    let step = send_upload(&mut n1, late);
    assert!(step.sends.is_empty() && step.outputs.is_empty() && step.faults.is_empty(), "{step:?}");
}

/// Which pre-vector of a node counts: the freshest (highest sequence
/// number). A node keeps node 2's pre-vector `[0, 1]`; an older or
/// repeated one changes nothing, a fresher one that drops a client (or
/// goes back a view) is refused as a bad vector, and a fresher one that
/// only adds clients is taken — the tally then counts client 2.
#[test]
fn only_a_fresher_pre_vector_that_drops_no_client_replaces_a_nodes_last() {
    let cfg = config(4, 7, 2);
    let mut n1 = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    for k in [0usize, 3] {
        assert!(n1.handle(Source::Node(k), pre_vector_at(&cfg, k, 0, 0, &[0, 1, 2])).faults.is_empty());
    }
    assert!(n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 1, 1, &[0, 1])).faults.is_empty());
    // Older, or the same sequence number again: ignored.
    assert!(n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 0, 0, &[0, 1, 2])).faults.is_empty());
    assert!(n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 1, 1, &[0, 1, 2])).faults.is_empty());
    // Fresher, but dropping client 1, or going back to view 0.
    assert_eq!(
        n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 1, 2, &[0, 2])).faults,
        vec![Fault::BadVector { node: 2 }]
    );
    assert_eq!(
        n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 0, 2, &[0, 1, 2])).faults,
        vec![Fault::BadVector { node: 2 }]
    );
    // Node 1's own pre-vector names nobody: the tally counts client 2
    // twice (nodes 0 and 3), client 0 and 1 three times.
    n1.on_timer(Timer::PreVector);
    let step = n1.on_timer(Timer::Tally);
    assert!(step.outputs.contains(&Output::DeterVector(vec![0, 1])), "{:?}", step.outputs);
    // A fresher pre-vector of node 2 adding client 2: the tally grows.
    let step = n1.handle(Source::Node(2), pre_vector_at(&cfg, 2, 1, 2, &[0, 1, 2]));
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    assert_eq!(step.outputs, vec![Output::DeterVector(vec![0, 1, 2])]);
}

/// CPU bound of fresh pre-vectors: leader 0 of K = 4 waits at its
/// aggregation timer with client 5 protected but undecodable (it holds no
/// cells of it), so each retry decodes again and records it excluded.
/// Node 3's first pre-vector makes it retry once; the same list
/// re-attested under ever higher sequence numbers makes it retry never.
#[test]
fn re_attesting_the_same_list_makes_no_leader_aggregate_again() {
    let cfg = config(4, 7, 2);
    let mut n0 = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    n0.on_timer(Timer::PreVector);
    n0.on_timer(Timer::Tally);
    for k in [1usize, 2] {
        assert!(n0.handle(Source::Node(k), pre_vector_at(&cfg, k, 0, 0, &[5])).faults.is_empty());
    }
    let excluded = |faults: &[Fault]| faults.iter().filter(|f| matches!(f, Fault::Excluded { client: 5, .. })).count();
    assert_eq!(excluded(&n0.on_timer(Timer::Aggregate(0)).faults), 1);
    assert_eq!(excluded(&n0.handle(Source::Node(3), pre_vector_at(&cfg, 3, 0, 0, &[5])).faults), 1);
    for seq in 1..=20 {
        let step = n0.handle(Source::Node(3), pre_vector_at(&cfg, 3, 0, seq, &[5]));
        assert!(step.faults.is_empty() && step.sends.is_empty(), "seq {seq}: {step:?}");
    }
    // A list that grows does make it try again.
    assert_eq!(excluded(&n0.handle(Source::Node(3), pre_vector_at(&cfg, 3, 0, 21, &[4, 5])).faults), 1);
}
