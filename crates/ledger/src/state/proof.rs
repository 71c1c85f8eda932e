//! State proofs: that a key holds a given value (or none) under a state
//! root. Light clients of a chain (the BoB following an external chain,
//! thesis §5.4 sub-situation 3) check account balances and nonces with them
//! against a header's `state_root`, without the chain's state.
//!
//! A proof carries the key's whole bucket (every entry's key and entry
//! hash, in key order) and the sibling hashes from the bucket up to the
//! root; absence is shown by the bucket lacking the key.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::Hash32;
use serde::{Deserialize, Serialize};

use super::{entry_hash, State};

/// Most entries a verifier accepts in one bucket (a bound on work and size).
pub const MAX_PROOF_BUCKET: usize = 4_096;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StateProof {
    /// `(key, entry hash)` of every entry of the key's bucket, in key order.
    pub entries: Vec<(Vec<u8>, Hash32)>,
    /// Sibling hashes from the bucket level up to the root's children.
    pub siblings: Vec<Hash32>,
}

/// The bucket a key falls into in a tree of `2^log2_buckets` buckets.
pub fn bucket_index(key: &[u8], log2_buckets: u32) -> usize {
    let h = hash_parts(Tag::STATE_BUCKET, &[key]);
    let v = u64::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3], h.0[4], h.0[5], h.0[6], h.0[7]]);
    if log2_buckets == 0 {
        0
    } else {
        (v >> (64 - log2_buckets)) as usize
    }
}

impl State {
    /// A proof of `key`'s current value (or absence) under [`State::root`].
    pub fn prove(&self, key: &[u8]) -> StateProof {
        let b = self.bucket_of(key);
        let entries = self.buckets[b].iter().map(|(k, h)| (k.clone(), *h)).collect();
        let k = self.log2_buckets as usize;
        let mut siblings = Vec::with_capacity(k);
        let mut i = b;
        for level in (1..=k).rev() {
            siblings.push(self.nodes[level][i ^ 1]);
            i /= 2;
        }
        StateProof { entries, siblings }
    }
}

impl StateProof {
    /// True iff, under `root` of a tree with `2^log2_buckets` buckets,
    /// `key` holds `value` (`None`: the key is absent).
    pub fn verify(&self, root: &Hash32, log2_buckets: u32, key: &[u8], value: Option<&[u8]>) -> bool {
        if self.siblings.len() != log2_buckets as usize || self.entries.len() > MAX_PROOF_BUCKET {
            return false;
        }
        // Canonical: strictly increasing keys, all in the key's bucket.
        let b = bucket_index(key, log2_buckets);
        if self.entries.windows(2).any(|w| w[0].0 >= w[1].0)
            || self.entries.iter().any(|(k, _)| bucket_index(k, log2_buckets) != b)
        {
            return false;
        }
        let found = self.entries.iter().find(|(k, _)| k.as_slice() == key).map(|(_, h)| *h);
        match (found, value) {
            (None, None) => {}
            (Some(h), Some(v)) if h == entry_hash(key, v) => {}
            _ => return false,
        }
        let mut h = if self.entries.is_empty() {
            Hash32::ZERO
        } else {
            let parts: Vec<&[u8]> = self.entries.iter().map(|(_, h)| &h.0[..]).collect();
            hash_parts(Tag::STATE_BUCKET, &parts)
        };
        let mut i = b;
        for s in &self.siblings {
            h = if i.is_multiple_of(2) { State::node(&h, s) } else { State::node(s, &h) };
            i /= 2;
        }
        h == *root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Changes;

    #[test]
    fn present_absent_and_wrong_values() {
        for log2 in [0u32, 1, 4] {
            let mut s = State::new(log2);
            let mut c = Changes::new();
            for i in 0..40u32 {
                c.insert(i.to_le_bytes().to_vec(), Some(vec![i as u8; 3]));
            }
            s.apply(&c);
            let root = s.root();
            for i in 0..40u32 {
                let k = i.to_le_bytes();
                let p = s.prove(&k);
                assert!(p.verify(&root, log2, &k, Some(&[i as u8; 3])));
                assert!(!p.verify(&root, log2, &k, Some(&[i as u8 + 1; 3])));
                assert!(!p.verify(&root, log2, &k, None));
            }
            let absent = 99u32.to_le_bytes();
            let p = s.prove(&absent);
            assert!(p.verify(&root, log2, &absent, None));
            assert!(!p.verify(&root, log2, &absent, Some(b"x")));
            // Dropping an entry from the bucket breaks the proof.
            let k = 3u32.to_le_bytes();
            let mut q = s.prove(&k);
            if q.entries.len() > 1 {
                q.entries.retain(|(x, _)| x.as_slice() != k.as_slice());
                assert!(!q.verify(&root, log2, &k, None));
            }
            let mut r = s.prove(&k);
            if let Some(sib) = r.siblings.first_mut() {
                sib.0[0] ^= 1;
                assert!(!r.verify(&root, log2, &k, Some(&[3; 3])));
            }
        }
    }
}
