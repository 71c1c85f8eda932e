//! Attack round 14 on issue 16: fault records of refused mini-fragments
//! after "a refused mini-fragment is recorded against its sender".

use blstrs::Scalar;
use ff::Field;
use gridledger_core::Hash32;
use gridledger_fl::dissemination::{AssemblyFault, ClientAssembler, GlobalCoder, MiniFragment, Source};

const NODES: usize = 7;
const CLIENTS: usize = 10;

fn coder() -> GlobalCoder {
    GlobalCoder::new(600, NODES, 5, CLIENTS, 7).unwrap()
}

fn b2c(bytes: &[u8]) -> (Hash32, Vec<Vec<MiniFragment>>) {
    let c = coder();
    let rel = c.release(Hash32::ZERO, 0, 3, bytes).unwrap();
    let minis = rel.subfragments.iter().map(|sf| c.mini_fragments(sf.node, &rel.root, sf).unwrap()).collect();
    (rel.root, minis)
}

/// Client 0 refuses one altered mini-fragment (node 1's subfragment,
/// client 4's position) twice: once sent by node 1 (a node's answer to a
/// request carries other clients' positions too), once forwarded by
/// client 4 (its own position, so it passes the sender check). The guilty
/// party differs — node 1 in the first case, client 4 in the second — so
/// the two fault records should differ.
///
/// What happened (fixed): both were `MerkleProofFailed { node: 1, client:
/// Some(4) }`. The record did not say which of the two sent it, so a
/// Byzantine client forwarding its own mini-fragment with a wrong value
/// left a record that equally accused the honest node it names (and a
/// Byzantine node one that equally accused an honest client) — "recorded
/// against its sender" did not hold for a reader of the record. Now every
/// record of a refused mini-fragment is `AssemblyFault::Refused { from, ..
/// }` with `from` the sender.
#[test]
fn a_bad_forward_and_a_bad_node_send_leave_different_records() {
    let bytes: Vec<u8> = (0..300).map(|i| (i as u8).wrapping_mul(13).wrapping_add(9)).collect();
    let (root, per_node) = b2c(&bytes);
    let mut altered = per_node[1][4].clone();
    assert_eq!((altered.node, altered.client), (1, 4));
    altered.values[0] += Scalar::ONE;
    let mut a = ClientAssembler::new(0, 3, vec![coder()]);
    a.set_root(0, root);
    let from_node = a.on_mini(Source::Node(1), altered.clone()).faults;
    let mut b = ClientAssembler::new(0, 3, vec![coder()]);
    b.set_root(0, root);
    let from_client = b.on_mini(Source::Client(4), altered).faults;
    assert_eq!(from_node.len(), 1);
    assert_eq!(from_client.len(), 1);
    assert_ne!(
        from_node, from_client,
        "node 1's bad send and client 4's bad forward leave the same record: {from_node:?}"
    );
    assert!(matches!(from_node[..], [AssemblyFault::Refused { from: Source::Node(1), .. }]), "{from_node:?}");
    assert!(matches!(from_client[..], [AssemblyFault::Refused { from: Source::Client(4), .. }]), "{from_client:?}");
}
