//! Merkle roots and proofs over commitments (thesis §7.2, Eqs 7.11–7.13),
//! reusing the project's tree (`gridledger_core::MerkleTree`): the leader
//! publishes the root over the `B` fragment commitments of its aggregate and
//! PBFT agrees on it; anyone checks one commitment with its proof.

use crate::kzg::Commitment;
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::{Hash32, MerkleProof, MerkleTree};

/// Domain tag for commitment leaves.
pub const COMMITMENT_LEAF: Tag = Tag("gridledger/fl-commitment/v1");

/// The leaf for one commitment.
pub fn commitment_leaf(c: &Commitment) -> Hash32 {
    hash_bytes(COMMITMENT_LEAF, &c.to_bytes())
}

/// Tree over commitments in fragment order.
pub fn commitment_tree(cs: &[Commitment]) -> MerkleTree {
    let leaves: Vec<Hash32> = cs.iter().map(commitment_leaf).collect();
    MerkleTree::new(&leaves)
}

/// True iff `c` is at `proof.index` under `root`; the leaf count must come
/// from the verifier's own knowledge of `B`, not from the prover.
pub fn verify_commitment(c: &Commitment, proof: &MerkleProof, leaf_count: u64, root: &Hash32) -> bool {
    proof.leaf_count == leaf_count && proof.verify(&commitment_leaf(c), root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kzg::Kzg;
    use blstrs::Scalar;

    #[test]
    fn commitments_prove_and_others_do_not() {
        let kzg = Kzg::insecure_from_seed(4, 1);
        let cs: Vec<Commitment> = (0..5u64).map(|i| kzg.commit(&[Scalar::from(i + 1)]).unwrap()).collect();
        let t = commitment_tree(&cs);
        for (i, c) in cs.iter().enumerate() {
            let p = t.proof(i).unwrap();
            assert!(verify_commitment(c, &p, 5, &t.root()));
            assert!(!verify_commitment(c, &p, 6, &t.root()));
        }
        let p = t.proof(0).unwrap();
        assert!(!verify_commitment(&cs[1], &p, 5, &t.root()));
    }
}
