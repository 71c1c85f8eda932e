//! An append-only Merkle mountain range of an external chain's header
//! hashes: the BoB keeps only the latest κ_i headers of a chain (more on
//! a small κ_i, [`crate::bob::kept_headers`]), plus this accumulator
//! (one peak per set bit of the leaf count, so at most 64 hashes), which
//! lets anyone prove later that an older header was relayed.
//!
//! Used by the late-lock refund of Π_CCTC ([`crate::bob`]'s `refund_lock`):
//! a lock whose header the BoB no longer keeps can still be shown to have
//! landed on the chain the BoB follows; and (attack R5-2) by `prove_relayed`,
//! `claim_relayed` and `ccdi_cct_relayed`, so a relay catching up — which
//! drops a header two BoB blocks after it became final — never leaves a
//! payer, a locker or a CCDI participant without a way to prove in time.
//!
//! Leaf `n` is the `n`-th header relayed after the chain's anchor (height
//! `anchor + 1 + n`). Mountains are perfect binary trees; the peaks are kept
//! from the largest (oldest leaves) to the smallest. A proof is the sibling
//! path from the leaf to its mountain's peak; it stays valid until that
//! mountain merges with a newer one of equal size (the prover then builds
//! it again against the new leaf count).

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::Hash32;

/// Domain of a leaf (a header hash).
pub const MMR_LEAF: Tag = Tag("gridledger/xchain/mmr-leaf/v1");
/// Domain of an inner node.
pub const MMR_NODE: Tag = Tag("gridledger/xchain/mmr-node/v1");

fn leaf(h: &Hash32) -> Hash32 {
    hash_tagged(MMR_LEAF, h)
}

fn node(l: &Hash32, r: &Hash32) -> Hash32 {
    hash_tagged(MMR_NODE, &(l, r))
}

/// The accumulator the BoB stores per chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Mmr {
    pub leaves: u64,
    /// One per set bit of `leaves`, largest mountain first.
    pub peaks: Vec<Hash32>,
}

/// The mountain that holds leaf `index` among `leaves`: (its position among
/// the peaks, its first leaf, its height).
fn mountain_of(leaves: u64, index: u64) -> Option<(usize, u64, u32)> {
    if index >= leaves {
        return None;
    }
    let mut start = 0u64;
    let mut pos = 0usize;
    for bit in (0..64u32).rev() {
        let size = 1u64 << bit;
        if leaves & size == 0 {
            continue;
        }
        if index < start + size {
            return Some((pos, start, bit));
        }
        start += size;
        pos += 1;
    }
    None
}

impl Mmr {
    /// Appends the hash of the next header.
    pub fn push(&mut self, header_hash: &Hash32) {
        let mut h = leaf(header_hash);
        let mut n = self.leaves;
        while n & 1 == 1 {
            // `peaks` has one entry per set bit, so a set low bit has a peak.
            let Some(p) = self.peaks.pop() else { break };
            h = node(&p, &h);
            n >>= 1;
        }
        self.peaks.push(h);
        self.leaves += 1;
    }

    /// Whether `header_hash` is leaf `index`, by the sibling path `proof`.
    pub fn verify(&self, index: u64, header_hash: &Hash32, proof: &[Hash32]) -> bool {
        let Some((pos, start, height)) = mountain_of(self.leaves, index) else { return false };
        if proof.len() != height as usize {
            return false;
        }
        let mut local = index - start;
        let mut h = leaf(header_hash);
        for sib in proof {
            h = if local & 1 == 0 { node(&h, sib) } else { node(sib, &h) };
            local >>= 1;
        }
        self.peaks.get(pos) == Some(&h)
    }

    /// The leaf counts at which leaf `index` has the path it has among
    /// `leaves` leaves, as `(first, last)`: its mountain is complete from
    /// `first` on (so the path needs the leaves below `first` only, and
    /// [`Self::prove`] over those `first` leaves builds it) and merges with
    /// a newer one after `last`. `None` if `index` is not below `leaves`.
    pub fn path_span(leaves: u64, index: u64) -> Option<(u64, u64)> {
        let (_, start, height) = mountain_of(leaves, index)?;
        let size = 1u64 << height;
        // `start` is a multiple of `2 · size` (or 0 when `size` is 2^63).
        let first = start.checked_add(size)?;
        Some((first, first.saturating_add(size - 1)))
    }

    /// The sibling path of leaf `index` in an accumulator of `all` (every
    /// header hash appended so far, in order): what a prover computes from
    /// the chain's headers. `None` if `index` is out of range.
    pub fn prove(all: &[Hash32], index: u64) -> Option<Vec<Hash32>> {
        let (_, start, height) = mountain_of(all.len() as u64, index)?;
        let size = 1usize << height;
        let start = start as usize;
        let mut level: Vec<Hash32> = all[start..start + size].iter().map(leaf).collect();
        let mut local = (index as usize) - start;
        let mut path = Vec::with_capacity(height as usize);
        while level.len() > 1 {
            path.push(level[local ^ 1]);
            level = level.chunks(2).map(|c| node(&c[0], &c[1])).collect();
            local >>= 1;
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_holds_exactly_over_its_span() {
        let all: Vec<Hash32> = (0..80u64).map(h).collect();
        // accs[m]: the accumulator of the first m leaves.
        let mut accs = vec![Mmr::default()];
        for x in &all {
            let mut next = accs[accs.len() - 1].clone();
            next.push(x);
            accs.push(next);
        }
        for n in 1..=64u64 {
            for i in 0..n {
                let (first, last) = Mmr::path_span(n, i).unwrap();
                assert!(first <= n && n <= last, "leaf {i} of {n}: {first}..={last}");
                let p = Mmr::prove(&all[..n as usize], i).unwrap();
                assert_eq!(Mmr::prove(&all[..first as usize], i).unwrap(), p, "built from the first {first}");
                for m in i + 1..=80 {
                    let holds = accs[m as usize].verify(i, &all[i as usize], &p);
                    assert_eq!(holds, (first..=last).contains(&m), "leaf {i}, path of {n}, checked at {m}");
                }
            }
        }
    }

    fn h(x: u64) -> Hash32 {
        hash_tagged(Tag("test"), &x)
    }

    #[test]
    fn every_leaf_proves_and_nothing_else_does() {
        for n in 1..=37u64 {
            let all: Vec<Hash32> = (0..n).map(h).collect();
            let mut m = Mmr::default();
            for x in &all {
                m.push(x);
            }
            assert_eq!(m.leaves, n);
            assert_eq!(m.peaks.len(), n.count_ones() as usize);
            for i in 0..n {
                let p = Mmr::prove(&all, i).unwrap();
                assert!(m.verify(i, &all[i as usize], &p), "leaf {i} of {n}");
                assert!(!m.verify(i, &h(1000 + i), &p), "a foreign hash at {i} of {n}");
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(!m.verify(j, &all[i as usize], &p) || all[i as usize] == all[j as usize]);
                }
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node(first, first);
                    assert!(!m.verify(i, &all[i as usize], &bad));
                }
            }
            assert!(Mmr::prove(&all, n).is_none());
            assert!(Mmr::path_span(n, n).is_none());
            assert!(!m.verify(n, &h(n), &[]));
        }
    }
}
