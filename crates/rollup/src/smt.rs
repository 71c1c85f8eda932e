//! A sparse Merkle tree over 256-bit paths: the commitment to the
//! settlement state (issue 11, [`crate::state`]).
//!
//! **Shape.** A full binary tree of depth [`DEPTH`] = 256. A record lives
//! at the leaf whose path is the tagged SHA-256 of its key
//! ([`crate::state::RecordKey::path`]), so a record's place never depends
//! on which other records exist: inserting, updating and removing a record
//! change only the 256 nodes on its own path. An empty leaf is
//! [`Hash32::ZERO`]; a non-empty one is `H_leaf(path ‖ value)`; an inner
//! node is `H_node(left ‖ right)` (SHA-256 under two distinct tags, the
//! core codec's [`hash_parts`]). The empty subtree of each height has a
//! fixed hash ([`default_hash`]), so the root is a function of the set of
//! (path, value) pairs alone, not of the order they were written in.
//!
//! **Proofs** ([`SmtProof`]) are multi-proofs: for a sorted set of paths,
//! the hashes of the subtrees hanging off their union of paths, in a fixed
//! depth-first order (left before right), each either an explicit hash or a
//! flag "empty subtree" (one bit). A proof for `k` keys in a tree of `n`
//! records carries about `k · log2(n / k)` explicit hashes plus `256 · k`
//! bits: it proves membership (a leaf's value) and non-membership (an empty
//! leaf) alike, and the same proof lets anyone compute the root after any
//! change to those leaves ([`Smt::from_proof`] then [`Smt::set`] and
//! [`Smt::root`]), which is what lets the primary chain re-execute an entry
//! or a batch from only the records it touches.
//!
//! **Cost.** Checking a proof and recomputing the root hashes at most
//! `256 · k` nodes (fewer where paths share a prefix), whatever the size of
//! the state; [`Smt::hashes`] counts them so the contract can charge gas per
//! hash. Calldata grows with `k · log2(n)`.
//!
//! The same type serves the full tree off chain (all records, no opaque
//! subtrees) and the partial tree on chain (the proved keys plus the
//! opaque sibling hashes of the proof). Inner nodes are cached and the
//! cache along a path is dropped when its leaf changes, so updating one
//! record and recomputing the root costs one path of hashes.

use std::collections::HashMap;
use std::sync::OnceLock;

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::Hash32;
use serde::{Deserialize, Serialize};

/// Tree depth: one level per bit of a SHA-256 path.
pub const DEPTH: usize = 256;
/// Domain of a non-empty leaf's hash.
pub const TAG_SMT_LEAF: Tag = Tag("gridledger/ior/smt-leaf/v1");
/// Domain of an inner node's hash.
pub const TAG_SMT_NODE: Tag = Tag("gridledger/ior/smt-node/v1");

/// Why a proof does not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmtError {
    #[error("the proof has too few sibling hashes for its keys")]
    Short,
    #[error("the proof carries unused sibling hashes or flags")]
    Long,
    #[error("the proved keys are not sorted and distinct")]
    Unsorted,
    /// An empty subtree's sibling sent as an explicit hash instead of a
    /// clear flag: every (keys, tree) has exactly one proof encoding, so a
    /// proof's bytes follow from its meaning (attack_smt, malleable proofs).
    #[error("the proof sends an empty subtree's hash explicitly (non-canonical encoding)")]
    NonCanonical,
}

/// A multi-proof for a sorted set of paths (module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SmtProof {
    /// One bit per sibling slot, in depth-first order (bit `i` of byte
    /// `i / 8`, least significant first): set when the slot's hash is the
    /// next of [`Self::nodes`], clear when the sibling is an empty subtree.
    pub explicit: Vec<u8>,
    /// The explicit sibling hashes, in slot order.
    pub nodes: Vec<Hash32>,
}

impl SmtProof {
    /// Encoded size in bytes (what the proof adds to calldata).
    pub fn encoded_len(&self) -> usize {
        8 + self.explicit.len() + 32 * self.nodes.len()
    }
}

fn node_hash(l: &Hash32, r: &Hash32) -> Hash32 {
    hash_parts(TAG_SMT_NODE, &[&l.0, &r.0])
}

fn leaf_hash(path: &Hash32, value: &Hash32) -> Hash32 {
    if *value == Hash32::ZERO {
        Hash32::ZERO
    } else {
        hash_parts(TAG_SMT_LEAF, &[&path.0, &value.0])
    }
}

/// The hash of an empty subtree whose root is at `depth` (0 = the root of
/// the whole tree, [`DEPTH`] = a leaf).
pub fn default_hash(depth: usize) -> Hash32 {
    static DEFAULTS: OnceLock<Vec<Hash32>> = OnceLock::new();
    let d = DEFAULTS.get_or_init(|| {
        let mut v = vec![Hash32::ZERO; DEPTH + 1];
        for i in (0..DEPTH).rev() {
            v[i] = node_hash(&v[i + 1], &v[i + 1]);
        }
        v
    });
    d[depth.min(DEPTH)]
}

/// The root of the empty tree.
pub fn empty_root() -> Hash32 {
    default_hash(0)
}

/// The hash of the subtree at depth `d` whose only leaf is `(path,
/// value)`: the leaf folded up with empty siblings. Trees are rebuilt from
/// states that share most records, so this is memoised per thread (the
/// memo is dropped when it grows past a bound).
fn fold_alone(path: &Hash32, value: &Hash32, d: usize) -> Hash32 {
    thread_local! {
        static FOLDS: std::cell::RefCell<HashMap<(Hash32, Hash32, u16), Hash32>> =
            std::cell::RefCell::new(HashMap::new());
    }
    const MEMO_MAX: usize = 1 << 20;
    if let Some(h) = FOLDS.with(|m| m.borrow().get(&(*path, *value, d as u16)).copied()) {
        return h;
    }
    let mut h = leaf_hash(path, value);
    for level in (d + 1..=DEPTH).rev() {
        let s = default_hash(level);
        h = if bit(path, level - 1) { node_hash(&s, &h) } else { node_hash(&h, &s) };
    }
    FOLDS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_MAX {
            m.clear();
        }
        m.insert((*path, *value, d as u16), h);
    });
    h
}

/// Bit `d` of `path` (0 = most significant bit of the first byte).
fn bit(path: &Hash32, d: usize) -> bool {
    (path.0[d / 8] >> (7 - d % 8)) & 1 == 1
}

/// `path` with every bit from `d` on cleared: the name of the node at
/// depth `d` on the path.
fn prefix(path: &Hash32, d: usize) -> Hash32 {
    let mut p = *path;
    for (i, byte) in p.0.iter_mut().enumerate() {
        let lo = i * 8;
        if lo >= d {
            *byte = 0;
        } else if lo + 8 > d {
            *byte &= 0xffu8 << (8 - (d - lo));
        }
    }
    p
}

fn with_bit(p: &Hash32, d: usize) -> Hash32 {
    let mut q = *p;
    q.0[d / 8] |= 1 << (7 - d % 8);
    q
}

/// A sparse Merkle tree, full (every record) or partial (the keys of a
/// proof with the opaque hashes of the subtrees beside them).
#[derive(Clone, Debug, Default)]
pub struct Smt {
    /// Known leaves, sorted by path: the value hash, [`Hash32::ZERO`] for a
    /// key proved empty (kept in a partial tree so its path stays known).
    leaves: Vec<(Hash32, Hash32)>,
    /// Partial trees: the hash of each subtree off the known paths, by
    /// (depth, prefix); absent = empty subtree.
    opaque: HashMap<(u16, Hash32), Hash32>,
    /// Hashes of nodes over at least one known leaf.
    cache: HashMap<(u16, Hash32), Hash32>,
    /// A partial tree keeps empty leaves; a full one drops them.
    partial: bool,
    hashes: u64,
}

impl Smt {
    /// The full tree over `(path, value hash)` pairs (any order; an empty
    /// value is no leaf; a repeated path keeps the last value).
    pub fn new(items: impl IntoIterator<Item = (Hash32, Hash32)>) -> Self {
        let mut leaves: Vec<(Hash32, Hash32)> = items.into_iter().filter(|(_, v)| *v != Hash32::ZERO).collect();
        leaves.sort_by_key(|a| a.0);
        let mut dedup: Vec<(Hash32, Hash32)> = Vec::with_capacity(leaves.len());
        for (p, v) in leaves {
            match dedup.last_mut() {
                Some(last) if last.0 == p => last.1 = v,
                _ => dedup.push((p, v)),
            }
        }
        Self { leaves: dedup, ..Self::default() }
    }

    /// Hashes computed so far (for gas).
    pub fn hashes(&self) -> u64 {
        self.hashes
    }

    /// Number of known leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The value at `path` ([`Hash32::ZERO`] when empty or unknown).
    pub fn get(&self, path: &Hash32) -> Hash32 {
        self.leaves.binary_search_by(|(p, _)| p.cmp(path)).map_or(Hash32::ZERO, |i| self.leaves[i].1)
    }

    /// The root.
    pub fn root(&mut self) -> Hash32 {
        let n = self.leaves.len();
        self.node(0, 0, n, Hash32::ZERO)
    }

    /// Sets the value at `path` (ZERO removes the record). In a partial
    /// tree `path` must be one of the proved keys, else the tree no longer
    /// matches its root (the caller only sets keys it opened).
    pub fn set(&mut self, path: Hash32, value: Hash32) {
        for d in 0..=DEPTH {
            self.cache.remove(&(d as u16, prefix(&path, d)));
        }
        match self.leaves.binary_search_by(|(p, _)| p.cmp(&path)) {
            Ok(i) if value == Hash32::ZERO && !self.partial => {
                self.leaves.remove(i);
            }
            Ok(i) => self.leaves[i].1 = value,
            Err(_) if value == Hash32::ZERO && !self.partial => {}
            Err(i) => self.leaves.insert(i, (path, value)),
        }
    }

    fn sibling(&self, d: usize, p: &Hash32) -> Hash32 {
        if self.opaque.is_empty() {
            return default_hash(d);
        }
        self.opaque.get(&(d as u16, *p)).copied().unwrap_or_else(|| default_hash(d))
    }

    /// The hash of the node at depth `d` named `p`, over known leaves
    /// `lo..hi` (those whose path starts with `p`).
    fn node(&mut self, d: usize, lo: usize, hi: usize, p: Hash32) -> Hash32 {
        if lo == hi {
            return self.sibling(d, &p);
        }
        if let Some(h) = self.cache.get(&(d as u16, p)) {
            return *h;
        }
        let h = if hi - lo == 1 && self.opaque.is_empty() {
            // One leaf below and nothing else: a pure function of the leaf
            // and the depth, memoised (counted as computed, so gas does not
            // depend on the memo).
            let (path, value) = self.leaves[lo];
            self.hashes += (DEPTH - d) as u64 + u64::from(value != Hash32::ZERO);
            fold_alone(&path, &value, d)
        } else if hi - lo == 1 {
            // One known leaf below: fold it up with the siblings on its path.
            let (path, value) = self.leaves[lo];
            let mut h = leaf_hash(&path, &value);
            if value != Hash32::ZERO {
                self.hashes += 1;
            }
            for level in (d + 1..=DEPTH).rev() {
                let parent = level - 1;
                let right = bit(&path, parent);
                // The other child of the parent on the path.
                let p = prefix(&path, parent);
                let s = self.sibling(level, &if right { p } else { with_bit(&p, parent) });
                h = if right { node_hash(&s, &h) } else { node_hash(&h, &s) };
                self.hashes += 1;
            }
            h
        } else {
            // d < DEPTH here: two distinct paths differ at some bit.
            let mid = lo + self.leaves[lo..hi].partition_point(|(q, _)| !bit(q, d));
            let l = self.node(d + 1, lo, mid, p);
            let r = self.node(d + 1, mid, hi, with_bit(&p, d));
            self.hashes += 1;
            node_hash(&l, &r)
        };
        self.cache.insert((d as u16, p), h);
        h
    }

    /// The multi-proof for `paths` (sorted, distinct) against
    /// [`Self::root`] of this (full) tree.
    pub fn proof(&mut self, paths: &[Hash32]) -> Result<SmtProof, SmtError> {
        if paths.windows(2).any(|w| w[0] >= w[1]) {
            return Err(SmtError::Unsorted);
        }
        let mut out = ProofWriter::default();
        let n = self.leaves.len();
        self.walk_proof(0, 0, n, paths, Hash32::ZERO, &mut out);
        Ok(out.finish())
    }

    fn walk_proof(&mut self, d: usize, lo: usize, hi: usize, keys: &[Hash32], p: Hash32, out: &mut ProofWriter) {
        if keys.is_empty() {
            let h = self.node(d, lo, hi, p);
            out.push(if h == default_hash(d) { None } else { Some(h) });
            return;
        }
        if d == DEPTH {
            return;
        }
        let mid = lo + self.leaves[lo..hi].partition_point(|(q, _)| !bit(q, d));
        let kmid = keys.partition_point(|q| !bit(q, d));
        self.walk_proof(d + 1, lo, mid, &keys[..kmid], p, out);
        self.walk_proof(d + 1, mid, hi, &keys[kmid..], with_bit(&p, d), out);
    }

    /// The partial tree of `leaves` (sorted, distinct paths with their
    /// claimed values, ZERO for "proved empty") and `proof`. Its
    /// [`Self::root`] is the root the proof proves them against: the caller
    /// compares it with the expected root.
    pub fn from_proof(leaves: Vec<(Hash32, Hash32)>, proof: &SmtProof) -> Result<Self, SmtError> {
        if leaves.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(SmtError::Unsorted);
        }
        let keys: Vec<Hash32> = leaves.iter().map(|(p, _)| *p).collect();
        let mut t = Self { leaves, partial: true, ..Self::default() };
        let mut r = ProofReader { proof, slot: 0, node: 0 };
        t.walk_open(0, &keys, Hash32::ZERO, &mut r)?;
        r.finish()?;
        Ok(t)
    }

    fn walk_open(&mut self, d: usize, keys: &[Hash32], p: Hash32, r: &mut ProofReader<'_>) -> Result<(), SmtError> {
        if keys.is_empty() {
            if let Some(h) = r.next()? {
                if h == default_hash(d) {
                    return Err(SmtError::NonCanonical);
                }
                self.opaque.insert((d as u16, p), h);
            }
            return Ok(());
        }
        if d == DEPTH {
            return Ok(());
        }
        let kmid = keys.partition_point(|q| !bit(q, d));
        self.walk_open(d + 1, &keys[..kmid], p, r)?;
        self.walk_open(d + 1, &keys[kmid..], with_bit(&p, d), r)
    }
}

#[derive(Default)]
struct ProofWriter {
    slots: usize,
    explicit: Vec<u8>,
    nodes: Vec<Hash32>,
}

impl ProofWriter {
    fn push(&mut self, h: Option<Hash32>) {
        if self.slots.is_multiple_of(8) {
            self.explicit.push(0);
        }
        if let Some(h) = h {
            if let Some(b) = self.explicit.last_mut() {
                *b |= 1 << (self.slots % 8);
            }
            self.nodes.push(h);
        }
        self.slots += 1;
    }
    fn finish(self) -> SmtProof {
        SmtProof { explicit: self.explicit, nodes: self.nodes }
    }
}

struct ProofReader<'a> {
    proof: &'a SmtProof,
    slot: usize,
    node: usize,
}

impl ProofReader<'_> {
    fn next(&mut self) -> Result<Option<Hash32>, SmtError> {
        let byte = *self.proof.explicit.get(self.slot / 8).ok_or(SmtError::Short)?;
        let set = (byte >> (self.slot % 8)) & 1 == 1;
        self.slot += 1;
        if !set {
            return Ok(None);
        }
        let h = *self.proof.nodes.get(self.node).ok_or(SmtError::Short)?;
        self.node += 1;
        Ok(Some(h))
    }
    /// Every flag byte and hash used, and no flag set past the last slot.
    fn finish(self) -> Result<(), SmtError> {
        let bytes = self.slot.div_ceil(8);
        let tail_clear = self.slot.is_multiple_of(8)
            || self.proof.explicit.get(bytes - 1).is_some_and(|b| b >> (self.slot % 8) == 0);
        if self.proof.explicit.len() != bytes || self.node != self.proof.nodes.len() || !tail_clear {
            return Err(SmtError::Long);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_core::codec::hash_bytes;

    fn h(i: u64) -> Hash32 {
        hash_bytes(Tag("test"), &i.to_le_bytes())
    }

    fn tree(n: u64) -> Smt {
        Smt::new((0..n).map(|i| (h(i), h(1000 + i))))
    }

    #[test]
    fn the_root_depends_on_the_set_not_the_order_and_empty_is_default() {
        assert_eq!(Smt::default().root(), empty_root());
        let mut a = tree(20);
        let mut b = Smt::new((0..20).rev().map(|i| (h(i), h(1000 + i))));
        assert_eq!(a.root(), b.root());
        // Removing a record gives the root of the tree without it.
        a.set(h(7), Hash32::ZERO);
        let mut c = Smt::new((0..20).filter(|i| *i != 7).map(|i| (h(i), h(1000 + i))));
        assert_eq!(a.root(), c.root());
        a.set(h(7), h(1007));
        assert_eq!(a.root(), b.root());
        // Changing any one value changes the root.
        b.set(h(3), h(1));
        assert_ne!(a.root(), b.root());
    }

    #[test]
    fn a_proof_opens_members_and_non_members_and_updates_the_root() {
        let mut full = tree(50);
        let root = full.root();
        let mut keys = vec![h(3), h(17), h(999)];
        keys.sort();
        let proof = full.proof(&keys).unwrap();
        let leaves: Vec<_> = keys.iter().map(|k| (*k, full.get(k))).collect();
        assert_eq!(leaves.iter().filter(|(_, v)| *v == Hash32::ZERO).count(), 1, "h(999) is absent");
        let mut part = Smt::from_proof(leaves.clone(), &proof).unwrap();
        assert_eq!(part.root(), root);
        // Claiming a wrong value, or presence for an absent key, gives another root.
        let mut wrong = leaves.clone();
        wrong[0].1 = h(1);
        assert_ne!(Smt::from_proof(wrong, &proof).unwrap().root(), root);
        let mut forged = leaves.clone();
        for l in forged.iter_mut().filter(|(_, v)| *v == Hash32::ZERO) {
            l.1 = h(5);
        }
        assert_ne!(Smt::from_proof(forged, &proof).unwrap().root(), root);
        // Updates through the partial tree give the full tree's new root:
        // an update, an insertion and a removal.
        for (k, v) in [(h(3), h(42)), (h(999), h(43)), (h(17), Hash32::ZERO)] {
            part.set(k, v);
            full.set(k, v);
        }
        assert_eq!(part.root(), full.root());
        assert_ne!(part.root(), root);
    }

    #[test]
    fn a_malformed_proof_is_refused() {
        let mut full = tree(10);
        let keys = vec![h(2)];
        let proof = full.proof(&keys).unwrap();
        let leaves = vec![(h(2), h(1002))];
        let mut short = proof.clone();
        short.nodes.pop();
        assert_eq!(Smt::from_proof(leaves.clone(), &short).unwrap_err(), SmtError::Short);
        let mut long = proof.clone();
        long.nodes.push(Hash32::ZERO);
        assert_eq!(Smt::from_proof(leaves.clone(), &long).unwrap_err(), SmtError::Long);
        let mut extra = proof.clone();
        extra.explicit.push(0);
        assert_eq!(Smt::from_proof(leaves.clone(), &extra).unwrap_err(), SmtError::Long);
        let two = vec![(h(3), h(1)), (h(2), h(1))];
        let mut sorted = two.clone();
        sorted.sort();
        if sorted != two {
            assert_eq!(Smt::from_proof(two, &proof).unwrap_err(), SmtError::Unsorted);
        }
    }

    #[test]
    fn one_update_costs_one_path_of_hashes() {
        let mut full = tree(500);
        full.root();
        let before = full.hashes();
        full.set(h(9), h(1));
        full.root();
        let cost = full.hashes() - before;
        assert!(cost <= DEPTH as u64 + 1, "{cost} hashes for one update");
        // A one-key proof of a 500-record tree: about log2(500) explicit hashes.
        let p = full.proof(&[h(9)]).unwrap();
        assert!(p.nodes.len() <= 20 && p.explicit.len() == DEPTH / 8, "{} nodes", p.nodes.len());
    }
}
