//! One node of a K = 4 (f = 1) chain handling view 0's proposal of list
//! [`A`] and PBFT blocks of it, message by message: the unit-level set-up
//! of attack rounds 19 and 20 (`attack_block_key_r19.rs`,
//! `attack_mixed_root_r20.rs`), whose mixed root the mutation check
//! (`mutants.rs`) builds too.

use super::*;
use gridledger_consensus::pbft::PrePrepare;
use gridledger_core::codec::hash_parts;
use gridledger_fl::consensus::{AttestedVector, RootBlock, To};
use gridledger_fl::dissemination::GlobalRelease;
use gridledger_fl::FlError;

/// The client list view 0's leader (node 0) aggregated.
pub const A: [u32; 2] = [0, 1];

/// K = 4, four clients, trimming one.
pub fn small() -> Arc<ChainConfig> {
    config(4, 4, 1)
}

/// The pre-vectors of nodes 0–2, each naming [`A`].
pub fn carried_small(cfg: &ChainConfig) -> Vec<AttestedVector> {
    carried(cfg, &[(0, &A[..]), (1, &A[..]), (2, &A[..])])
}

/// View 0's proposal `(0, root, A)` with subfragment `sf`, attested by `ra`,
/// carrying [`carried_small`].
pub fn proposal_a(
    cfg: &ChainConfig,
    root: Hash32,
    ra: gridledger_core::enclave::EvidenceAttestation,
    sf: gridledger_fl::dissemination::GlobalSubfragment,
) -> Message {
    view0_proposal(root, &A, ra, sf, carried_small(cfg))
}

/// PBFT view `pview`'s pre-prepare of block `(0, root, clients)`, signed by
/// that view's PBFT leader (`(pview + 1) mod 4`: node 2 for PBFT view 1,
/// the replica's first), with that leader.
pub fn block_pre_prepare(cfg: &ChainConfig, pview: u64, root: Hash32, clients: &[u32]) -> (usize, Message) {
    let set = cfg.validator_set().unwrap();
    let leader = set.leader(pview, 1) as usize;
    let block = RootBlock { chain: cfg.chain, round: cfg.round, view: 0, root, clients: clients.to_vec() };
    let pp = PrePrepare::sign(&sim_node_key(leader), &set.instance, pview, 1, block);
    (leader, Message::Pbft(Box::new(pbft::Message::PrePrepare(pp))))
}

/// How many PBFT prepare votes `sends` holds.
pub fn prepares(sends: &[(To, Message)]) -> usize {
    sends.iter().filter(|(_, m)| matches!(m, Message::Pbft(b) if matches!(**b, pbft::Message::Prepare(_)))).count()
}

/// The other release's fragment of [`mixed_release`] (same length).
pub fn other_bytes(len: usize) -> Vec<u8> {
    vec![7u8; len]
}

/// A root `M` over subfragments 0 and 1 of the genuine release `X` of
/// [`A`] and 2 and 3 of another release `Y` ([`other_bytes`], same context
/// and length): every subfragment verifies under `M`, but no global
/// fragment codes to it. Built from the two releases' Merkle paths
/// (`M = node(node(h0, h1), node(h2, h3))`).
pub fn mixed_release(cfg: &ChainConfig) -> Result<GlobalRelease, FlError> {
    let x = release_of(cfg, &A, 1);
    let len = x.subfragments[0].ctx.byte_len as usize;
    let y = cfg.release(&other_bytes(len))?;
    let node = |l: &Hash32, r: &Hash32| hash_parts(Tag::MERKLE_NODE, &[&l.0, &r.0]);
    let n01 = x.subfragments[2].proof.siblings[1];
    let n23 = y.subfragments[0].proof.siblings[1];
    let mut subfragments: Vec<_> = x.subfragments[..2].iter().chain(&y.subfragments[2..]).cloned().collect();
    for sf in &mut subfragments {
        sf.proof.siblings[1] = if sf.node < 2 { n23 } else { n01 };
    }
    Ok(GlobalRelease { root: node(&n01, &n23), subfragments })
}
