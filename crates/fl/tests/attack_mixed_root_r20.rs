//! Attack round 20 on CTP-FL (issue 16): round 19's fix refuses a PBFT
//! block whose *fetched* proposal fails (the node's own subfragment not
//! rebuilt under the attested root: a root `M` over subfragments of two
//! releases, attested by a Byzantine aggregation leader's enclave whose
//! host fed it `M`). The same block is accepted by every honest node that
//! received the proposal straight from that leader (it checks only its own
//! subfragment's Merkle path, which verifies under `M`), and clients decode
//! the committed root without recoding it, so honest clients can assemble
//! *different* global fragments from one committed root.
//! `cargo test -p gridledger-fl --test attack_mixed_root_r20 -- --include-ignored`.

mod common;

use common::*;
use gridledger_consensus::pbft::{self, PrePrepare};
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::enclave::Attester;
use gridledger_core::Hash32;
use gridledger_fl::aggregate::{params_to_bytes, trimmed_mean};
use gridledger_fl::consensus::{AttestedVector, ChainConfig, ChainNode, Fault, Message, RootBlock, To};
use gridledger_fl::dissemination::{AssemblyFault, ClientAssembler, GlobalRelease, Source};
use gridledger_fl::round::sim_node_key;
use std::sync::Arc;

/// The client list view 0's leader aggregated.
const A: [u32; 2] = [0, 1];

fn small() -> Arc<ChainConfig> {
    config(4, 4, 1)
}

fn carried_small(cfg: &ChainConfig) -> Vec<AttestedVector> {
    carried(cfg, &[(0, &A[..]), (1, &A[..]), (2, &A[..])])
}

/// View 0's genuine global fragment (the trimmed mean of `A`'s models).
fn genuine_bytes() -> Vec<u8> {
    let models: Vec<Vec<f32>> = A.iter().map(|&c| model(c as usize)).collect();
    params_to_bytes(&trimmed_mean(&models, 1).unwrap())
}

/// The other release's fragment (same length).
fn other_bytes(len: usize) -> Vec<u8> {
    vec![7u8; len]
}

/// A root `M` over subfragments 0 and 1 of the genuine release `X` and 2
/// and 3 of another release `Y` (same context and length), as in round
/// 19's `mixed_release`: every subfragment verifies under `M`.
fn mixed_release(cfg: &ChainConfig) -> GlobalRelease {
    let x = release_of(cfg, &A, 1);
    let len = x.subfragments[0].ctx.byte_len as usize;
    let y = cfg.release(&other_bytes(len)).unwrap();
    let node = |l: &Hash32, r: &Hash32| hash_parts(Tag::MERKLE_NODE, &[&l.0, &r.0]);
    let n01 = x.subfragments[2].proof.siblings[1];
    let n23 = y.subfragments[0].proof.siblings[1];
    let mut subfragments: Vec<_> = x.subfragments[..2].iter().chain(&y.subfragments[2..]).cloned().collect();
    for sf in &mut subfragments {
        sf.proof.siblings[1] = if sf.node < 2 { n23 } else { n01 };
    }
    GlobalRelease { root: node(&n01, &n23), subfragments }
}

fn prepares(sends: &[(To, Message)]) -> usize {
    sends.iter().filter(|(_, m)| matches!(m, Message::Pbft(b) if matches!(**b, pbft::Message::Prepare(_)))).count()
}

/// FINDING 1 (critical: honest clients decide different models from one
/// committed root).
///
/// K = 4 (f = 1), Byzantine node 0 leads view 0 and its enclave attests
/// `(0, M, A)` for the mixed root `M` (the premise of round 19's
/// `a_block_whose_fetched_proposal_fails_is_refused`). Nodes 1 and 2 got
/// the proposal straight from node 0 and verify it (their own subfragment
/// passes its Merkle path under `M`), so `M` has 2f + 1 = 3 prepare votes
/// (nodes 0, 1, 2) and commits; node 3, whose fetch refutes the same
/// block, cannot stop it. Each node serves its mini-fragments of `M`.
/// Client 0 hears from nodes 0 and 1 first (f + 1 = 2 subfragments
/// decode) and assembles the genuine fragment; client 1 hears from nodes 2
/// and 3 first and assembles the other release's bytes — with no fault
/// recorded by either. Expected: a client recodes what it decoded and
/// refuses a fragment that does not give the committed root (as
/// `GlobalCoder::recover_subfragment` does for a node), so no two honest
/// clients ever hold different fragments of one committed root (and a
/// root like `M` is refused by every honest node alike, not only by those
/// that fetched it).
#[test]
#[ignore = "attack r20: clients decode a committed mixed root without recoding it: two honest clients assemble different global fragments"]
fn honest_clients_assemble_different_fragments_from_one_committed_root() {
    let cfg = small();
    let mixed = mixed_release(&cfg);
    let minis: Vec<_> =
        mixed.subfragments.iter().map(|sf| cfg.global.mini_fragments(sf.node, &mixed.root, sf).unwrap()).collect();
    let assemble = |me: usize, nodes: &[usize]| {
        let mut a = ClientAssembler::new(me, cfg.round, vec![(*cfg.global).clone()]).with_chain_offset(cfg.chain);
        let mut faults = a.set_root(cfg.chain, mixed.root).faults;
        for &k in nodes {
            for mf in &minis[k] {
                faults.extend(a.on_mini(Source::Node(k), mf.clone()).faults);
            }
        }
        (a.fragment(cfg.chain).map(|f| f.to_vec()), faults)
    };
    let (first, first_faults) = assemble(0, &[0, 1]);
    let (second, second_faults) = assemble(1, &[2, 3]);
    let genuine = genuine_bytes();
    // The premise: each client's inputs all verify under the committed root.
    let refused = |fs: &[AssemblyFault]| fs.iter().any(|f| matches!(f, AssemblyFault::Refused { .. }));
    assert!(!refused(&first_faults) && !refused(&second_faults), "{first_faults:?} {second_faults:?}");
    assert!(
        !(first.is_some() && second.is_some() && first != second),
        "two honest clients assembled different global fragments from committed root M: client 0 {} \
         (genuine: {}), client 1 {} (the other release's: {}); faults {first_faults:?} {second_faults:?}",
        first.as_ref().map_or(0, |f| f.len()),
        first.as_deref() == Some(&genuine[..]),
        second.as_ref().map_or(0, |f| f.len()),
        second.as_deref() == Some(&other_bytes(genuine.len())[..]),
    );
}

/// FINDING 2 (high: honest nodes disagree on one attested block; the one
/// that refutes it blames the honest PBFT leader).
///
/// The same `(0, M, A)`: honest node 1, which received the proposal from
/// node 0, verifies it and prepares PBFT leader 2's block; honest node 3,
/// whose copy was junk, fetches it, refutes it from the relays of nodes 0
/// and 1 (genuine relays of what node 1 verified) and records
/// `InvalidProposal { leader: 2 }` against the honest PBFT leader. Round
/// 19's rule thus holds `M` invalid on one honest node and valid on
/// another: expected, one verdict for one attested block on every honest
/// node (node 1 refuses `M` too, or node 3 does not).
#[test]
#[ignore = "attack r20: a mixed attested root is verified by direct recipients and refuted by fetchers (honest PBFT leader blamed)"]
fn a_mixed_root_is_valid_on_one_honest_node_and_refuted_on_another() {
    let cfg = small();
    let mixed = mixed_release(&cfg);
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &mixed.root, &A));
    let proposal = |ra, sf| Message::Proposal {
        view: 0,
        root: mixed.root,
        clients: A.to_vec(),
        ra,
        sf,
        excluded: vec![],
        pre_vectors: carried_small(&cfg),
    };
    let set = cfg.validator_set().unwrap();
    let block = RootBlock { chain: cfg.chain, round: cfg.round, view: 0, root: mixed.root, clients: A.to_vec() };
    let pp = PrePrepare::sign(&sim_node_key(2), &set.instance, 1, 1, block);
    let pp = Message::Pbft(Box::new(pbft::Message::PrePrepare(pp)));

    // Node 1: the proposal straight from node 0.
    let mut one = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let _ = one.start();
    let s = one.handle(Source::Node(0), proposal(ra, mixed.subfragments[1].clone()));
    let mut one_faults = s.faults;
    let s = one.handle(Source::Node(2), pp.clone());
    one_faults.extend(s.faults);
    let one_prepares = prepares(&s.sends);

    // Node 3: a junk copy, then the fetch.
    let mut three = ChainNode::new(cfg.clone(), 3, enclave(3), SK, sim_node_key(3), TIMING);
    let _ = three.start();
    let junk = enclave(0).attest_evidence(&[0u8; 32]);
    let _ = three.handle(Source::Node(0), proposal(junk, mixed.subfragments[3].clone()));
    let _ = three.handle(Source::Node(2), pp);
    let mut three_faults = Vec::new();
    for from in [0usize, 1] {
        let Message::Proposal { view, root, clients, ra, sf, excluded, pre_vectors } =
            proposal(ra, mixed.subfragments[from].clone())
        else {
            unreachable!()
        };
        let s = three.handle(
            Source::Node(from),
            Message::Relay { node: from, view, root, clients, ra, sf, excluded, pre_vectors },
        );
        three_faults.extend(s.faults);
    }
    let refuted = three_faults.iter().any(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { leader: 2, .. })));
    let one_accepts = one_prepares > 0 && one_faults.is_empty();
    assert!(
        !(one_accepts && refuted),
        "honest node 1 prepared block (0, M, A) (faults {one_faults:?}) while honest node 3 refuted it and \
         blamed honest PBFT leader 2: {three_faults:?}"
    );
}
