//! B2C and C2C: a chain's global fragment through the leader's coding, each
//! node's second coding and the clients' forwarding and double decoding,
//! with withholding nodes, forging clients and a wrong root.

use blstrs::Scalar;
use ff::Field;
use gridledger_core::Hash32;
use gridledger_fl::dissemination::{AssemblyFault, ClientAssembler, GlobalCoder, MiniFragment, Source};
use gridledger_fl::FlError;

const NODES: usize = 7; // f = 2, any 5 decode
const CLIENTS: usize = 10; // f_cli = 3, any 7 decode a subfragment

fn coder() -> GlobalCoder {
    GlobalCoder::new(600, NODES, 5, CLIENTS, 7).unwrap()
}

fn fragment(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(salt)).collect()
}

/// Every node's mini-fragments for one chain, from an honest leader.
fn b2c(chain: u32, bytes: &[u8], withhold: &[usize]) -> (Hash32, Vec<Vec<MiniFragment>>) {
    let c = coder();
    let rel = c.release(Hash32::ZERO, chain, 3, bytes).unwrap();
    let minis = rel
        .subfragments
        .iter()
        .filter(|sf| !withhold.contains(&sf.node))
        .map(|sf| c.mini_fragments(sf.node, &rel.root, sf).unwrap())
        .collect();
    (rel.root, minis)
}

#[test]
fn clients_double_decode_two_chains_despite_withholding_nodes_and_silent_clients() {
    let frags = [fragment(600, 1), fragment(457, 2)];
    let mut clients: Vec<ClientAssembler> =
        (0..CLIENTS).map(|c| ClientAssembler::new(c, 3, vec![coder(), coder()])).collect();
    // Clients 7, 8, 9 are Byzantine: they neither forward nor decode.
    let honest = 0..7;
    for (b, bytes) in frags.iter().enumerate() {
        let (root, per_node) = b2c(b as u32, bytes, &[2, 6]);
        for c in honest.clone() {
            assert!(clients[c].set_root(b as u32, root).faults.is_empty());
        }
        let mut c2c = Vec::new();
        for minis in &per_node {
            for mf in minis {
                if honest.contains(&mf.client) {
                    let step = clients[mf.client].on_mini(Source::Node(mf.node), mf.clone());
                    assert!(step.faults.is_empty());
                    assert_eq!(step.forward.len(), 1, "a node's mini-fragment for me is forwarded");
                    c2c.push((mf.client, step.forward[0].clone()));
                }
            }
        }
        for (from, mf) in c2c {
            for c in honest.clone().filter(|&c| c != from) {
                let step = clients[c].on_mini(Source::Client(from), mf.clone());
                assert!(step.faults.is_empty(), "{:?}", step.faults);
                assert!(step.forward.is_empty(), "forwarded mini-fragments are not forwarded again");
            }
        }
    }
    for c in honest {
        assert_eq!(clients[c].fragment(0), Some(&frags[0][..]));
        assert_eq!(clients[c].model().unwrap(), [frags[0].clone(), frags[1].clone()].concat());
    }
}

#[test]
fn forged_or_misrouted_mini_fragments_are_dropped_with_faults() {
    let bytes = fragment(300, 9);
    let (root, per_node) = b2c(0, &bytes, &[]);
    let mut me = ClientAssembler::new(0, 3, vec![coder()]);
    me.set_root(0, root);
    let good = per_node[1][4].clone();
    let mut altered = good.clone();
    altered.values[0] += Scalar::ONE;
    // Every record of a refused mini-fragment names its sender.
    let refused = |from, error| vec![AssemblyFault::Refused { from, error }];
    assert_eq!(
        me.on_mini(Source::Client(4), altered).faults,
        refused(Source::Client(4), FlError::MerkleProofFailed { node: 1, client: Some(4) })
    );
    // Client 4 forwarding a mini-fragment that claims client 5's: the
    // record names the sender, client 4, not the client it claims.
    let mut moved = good.clone();
    moved.client = 5;
    assert_eq!(
        me.on_mini(Source::Client(4), moved).faults,
        refused(Source::Client(4), FlError::MerkleProofFailed { node: 1, client: Some(4) })
    );
    let mut short = good.clone();
    short.values.pop();
    assert!(matches!(
        me.on_mini(Source::Client(4), short).faults[..],
        [AssemblyFault::Refused { from: Source::Client(4), error: FlError::WrongLength { .. } }]
    ));
    // A node sending another node's mini-fragment.
    assert_eq!(
        me.on_mini(Source::Node(2), good.clone()).faults,
        refused(Source::Node(2), FlError::MerkleProofFailed { node: 2, client: Some(4) })
    );
    let mut other_round = good.clone();
    other_round.ctx.round = 4;
    assert_eq!(
        me.on_mini(Source::Client(4), other_round).faults,
        refused(Source::Client(4), FlError::WrongContext { chain: 0, round: 4 })
    );
    // Nothing above was kept: the fragment still needs the honest messages.
    assert!(me.fragment(0).is_none());
    for minis in &per_node {
        for mf in minis {
            me.on_mini(Source::Client(mf.client), mf.clone());
        }
    }
    assert_eq!(me.fragment(0), Some(&bytes[..]));
}

#[test]
fn a_node_refuses_a_subfragment_that_is_not_under_the_agreed_root() {
    let c = coder();
    let rel = c.release(Hash32::ZERO, 0, 3, &fragment(200, 1)).unwrap();
    let other = c.release(Hash32::ZERO, 0, 3, &fragment(200, 2)).unwrap();
    assert_eq!(
        c.mini_fragments(3, &other.root, &rel.subfragments[3]),
        Err(FlError::MerkleProofFailed { node: 3, client: None })
    );
    let mut sf = rel.subfragments[3].clone();
    sf.values[0] += Scalar::ONE;
    assert_eq!(c.mini_fragments(3, &rel.root, &sf), Err(FlError::MerkleProofFailed { node: 3, client: None }));
    assert!(matches!(c.mini_fragments(4, &rel.root, &rel.subfragments[3]), Err(FlError::PositionOutOfRange { .. })));
    let mut sf = rel.subfragments[3].clone();
    sf.values.push(Scalar::ONE);
    assert!(matches!(c.mini_fragments(3, &rel.root, &sf), Err(FlError::WrongLength { .. })));
    assert!(matches!(c.release(Hash32::ZERO, 0, 3, &fragment(700, 1)), Err(FlError::WrongLength { .. })));
}

#[test]
fn mini_fragments_before_the_root_wait_and_then_count() {
    let bytes = fragment(100, 7);
    let (root, per_node) = b2c(0, &bytes, &[]);
    let mut me = ClientAssembler::new(0, 3, vec![coder()]);
    for minis in &per_node {
        for mf in minis {
            assert_eq!(me.on_mini(Source::Client(mf.client), mf.clone()).faults, vec![]);
        }
    }
    assert!(me.fragment(0).is_none());
    let step = me.set_root(0, root);
    assert_eq!(step.decoded, vec![0]);
    assert_eq!(me.fragment(0), Some(&bytes[..]));
    // The buffer is bounded: beyond nodes × clients inputs, the rest are dropped.
    let mut full = ClientAssembler::new(0, 3, vec![coder()]);
    // (Client 1's own mini-fragment: a client forwards only its own.)
    let mf = per_node[0][1].clone();
    for _ in 0..NODES * CLIENTS {
        full.on_mini(Source::Client(1), mf.clone());
    }
    assert_eq!(
        full.on_mini(Source::Client(1), mf).faults,
        vec![AssemblyFault::Refused { from: Source::Client(1), error: FlError::Overloaded }]
    );
}

/// A client forwards each of its own mini-fragments (one per node) once,
/// also those that arrived before the root and those arriving after it
/// decoded: the other clients may still need them. (Before the fix the
/// replay at `set_root` kept only the first forward, and a client that had
/// decoded forwarded nothing; in the simulator an honest client then
/// starved.)
#[test]
fn a_client_forwards_every_own_mini_fragment_even_before_the_root_and_after_decoding() {
    let bytes = fragment(600, 5);
    let (root, per_node) = b2c(0, &bytes, &[]);
    // Client 0: its own mini-fragment from every node arrives before the root.
    let mut early = ClientAssembler::new(0, 3, vec![coder()]);
    for minis in &per_node {
        let step = early.on_mini(Source::Node(minis[0].node), minis[0].clone());
        assert!(step.forward.is_empty() && step.faults.is_empty());
    }
    let step = early.set_root(0, root);
    assert!(step.faults.is_empty(), "{:?}", step.faults);
    let nodes: Vec<usize> = step.forward.iter().map(|mf| mf.node).collect();
    assert_eq!(nodes, (0..NODES).collect::<Vec<_>>(), "one forward per node");
    // Client 1 decodes from other clients' forwards of nodes 0..5, then its
    // own mini-fragment of node 6 arrives: still forwarded, once.
    let mut late = ClientAssembler::new(1, 3, vec![coder()]);
    late.set_root(0, root);
    for minis in &per_node[..5] {
        for mf in minis.iter().filter(|mf| mf.client != 1) {
            late.on_mini(Source::Client(mf.client), mf.clone());
        }
    }
    assert_eq!(late.fragment(0), Some(&bytes[..]));
    let own = per_node[6][1].clone();
    let step = late.on_mini(Source::Node(6), own.clone());
    assert_eq!(step.forward, vec![own.clone()]);
    assert!(late.on_mini(Source::Node(6), own).forward.is_empty(), "forwarded once");
}

/// A node without its own subfragment rebuilds exactly the leader's (values
/// and Merkle proof) from `f + 1` others that verify under the root; fewer
/// do not decode, and one that fails its proof (or a root the recoding
/// does not give) is refused.
#[test]
fn a_node_rebuilds_its_own_subfragment_from_f_plus_one_others() {
    let c = GlobalCoder::for_chain(600, NODES, CLIENTS).unwrap();
    let bytes = fragment(457, 5);
    let rel = c.release(Hash32([9; 32]), 1, 3, &bytes).unwrap();
    assert_eq!(c.subfragments_needed(), 3);
    let others = &rel.subfragments[2..5];
    let own = c.recover_subfragment(&rel.root, others, 6).unwrap();
    assert_eq!(own, rel.subfragments[6]);
    assert!(c.mini_fragments(6, &rel.root, &own).is_ok());
    assert_eq!(
        c.recover_subfragment(&rel.root, &rel.subfragments[2..4], 6),
        Err(FlError::Undecodable { need: 3, have: 2 })
    );
    let mut altered = others.to_vec();
    altered[1].values[0] += Scalar::ONE;
    assert!(matches!(c.recover_subfragment(&rel.root, &altered, 6), Err(FlError::MerkleProofFailed { node: 3, .. })));
    assert!(c.recover_subfragment(&Hash32([1; 32]), others, 6).is_err());
}

/// A node answers each of a client's requests with the same
/// `minis_needed` mini-fragments of its subfragment (the client's own and
/// the next clients'). Answers that arrive before the root are held once
/// each (a repeat fills no quota and is no fault), and once the root is
/// known they decode the fragment with no other client's forward; the
/// client forwards its own mini-fragment of each node once.
#[test]
fn repeated_node_answers_before_the_root_are_held_once_and_decode_alone() {
    let bytes = fragment(600, 9);
    let (root, per_node) = b2c(0, &bytes, &[]);
    let need = coder().minis_needed();
    assert!(need > 1, "premise: a client's own mini-fragment does not decode a subfragment");
    let mut me = ClientAssembler::new(0, 3, vec![coder()]);
    for _ in 0..10 {
        for minis in &per_node {
            for mf in minis.iter().take(need) {
                let step = me.on_mini(Source::Node(mf.node), mf.clone());
                assert_eq!(step.faults, vec![], "node {} mini {}", mf.node, mf.client);
            }
        }
    }
    let step = me.set_root(0, root);
    assert_eq!(step.faults, vec![]);
    assert_eq!(step.decoded, vec![0]);
    assert_eq!(me.fragment(0), Some(&bytes[..]));
    let mut forwarded: Vec<usize> = step.forward.iter().map(|mf| mf.node).collect();
    assert!(step.forward.iter().all(|mf| mf.client == 0));
    forwarded.sort();
    forwarded.dedup();
    assert_eq!(forwarded.len(), step.forward.len(), "a node's mini-fragment forwarded twice");
}
