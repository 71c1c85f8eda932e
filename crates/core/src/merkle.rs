//! Binary Merkle tree over a block's transaction hashes with inclusion
//! proofs: `Gen_proof(Tx, BH)` and `Val_proof(P, Tx, R_BH)` of thesis §5.2.5.
//!
//! Leaves and inner nodes are hashed under different tags (no second-preimage
//! confusion between levels), and an odd node at the end of a level is
//! promoted unchanged rather than duplicated (so no two different leaf lists
//! share a root, unlike Bitcoin's duplication rule).

use crate::codec::{hash_parts, Tag};
use crate::types::Hash32;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

fn leaf_hash(leaf: &Hash32) -> Hash32 {
    hash_parts(Tag::MERKLE_LEAF, &[&leaf.0])
}

fn node_hash(l: &Hash32, r: &Hash32) -> Hash32 {
    hash_parts(Tag::MERKLE_NODE, &[&l.0, &r.0])
}

/// All levels of the tree, leaves first.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash32>>,
}

/// Inclusion proof for one leaf.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf level upwards (promoted levels have none).
    pub siblings: Vec<Hash32>,
}

impl MerkleTree {
    pub fn new(leaves: &[Hash32]) -> Self {
        let mut levels = vec![leaves.iter().map(leaf_hash).collect::<Vec<_>>()];
        while levels.last().map_or(0, |l| l.len()) > 1 {
            let prev = levels.last().map(Vec::as_slice).unwrap_or(&[]);
            let next = prev.chunks(2).map(|c| if c.len() == 2 { node_hash(&c[0], &c[1]) } else { c[0] }).collect();
            levels.push(next);
        }
        Self { levels }
    }

    /// The root; the empty tree has the tagged hash of nothing.
    pub fn root(&self) -> Hash32 {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) => *r,
            None => hash_parts(Tag::MERKLE_LEAF, &[]),
        }
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Gen_proof`: the proof for the leaf at `index`, if it exists.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sib = i ^ 1;
            if sib < level.len() {
                siblings.push(level[sib]);
            }
            i /= 2;
        }
        Some(MerkleProof { index: index as u64, leaf_count: self.len() as u64, siblings })
    }
}

/// Convenience: the root of a list of leaves.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    MerkleTree::new(leaves).root()
}

impl MerkleProof {
    /// `Val_proof`: true iff `leaf` is at `self.index` in a tree with root `root`.
    ///
    /// The root does not commit to the number of leaves: for a given
    /// `leaf_count` the index is authenticated (two positions never share a
    /// path), but a prover may state another count that happens to give this
    /// index the same path. Verifiers take `leaf_count` from the block
    /// header's `tx_count`, never from the prover.
    pub fn verify(&self, leaf: &Hash32, root: &Hash32) -> bool {
        if self.index >= self.leaf_count {
            return false;
        }
        let mut h = leaf_hash(leaf);
        let mut i = self.index;
        let mut width = self.leaf_count;
        let mut sibs = self.siblings.iter();
        while width > 1 {
            let sib = i ^ 1;
            if sib < width {
                let Some(s) = sibs.next() else { return false };
                h = if i.is_multiple_of(2) { node_hash(&h, s) } else { node_hash(s, &h) };
            }
            i /= 2;
            width = width.div_ceil(2);
        }
        sibs.next().is_none() && h == *root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hash_bytes;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n as u32).map(|i| hash_bytes(Tag::TX, &i.to_le_bytes())).collect()
    }

    #[test]
    fn every_leaf_proves_and_wrong_leaf_does_not() {
        for n in 1..40 {
            let l = leaves(n);
            let t = MerkleTree::new(&l);
            for (i, leaf) in l.iter().enumerate() {
                let p = t.proof(i).unwrap();
                assert!(p.verify(leaf, &t.root()), "n={n} i={i}");
                let other = hash_bytes(Tag::TX, b"not in tree");
                assert!(!p.verify(&other, &t.root()));
            }
            assert!(t.proof(n).is_none());
        }
    }

    #[test]
    fn odd_promotion_does_not_collide_with_duplication() {
        let l = leaves(3);
        let mut dup = l.clone();
        dup.push(l[2]);
        assert_ne!(merkle_root(&l), merkle_root(&dup));
    }

    proptest! {
        #[test]
        fn tampered_proofs_fail(n in 2usize..64, idx in 0usize..64, flip in 0usize..32) {
            let idx = idx % n;
            let l = leaves(n);
            let t = MerkleTree::new(&l);
            let mut p = t.proof(idx).unwrap();
            prop_assert!(p.verify(&l[idx], &t.root()));
            if !p.siblings.is_empty() {
                p.siblings[0].0[flip] ^= 1;
                prop_assert!(!p.verify(&l[idx], &t.root()));
            }
            let mut q = t.proof(idx).unwrap();
            q.index = (q.index + 1) % n as u64;
            prop_assert!(!q.verify(&l[idx], &t.root()));
        }
    }
}
