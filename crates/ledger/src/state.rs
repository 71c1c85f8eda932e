//! World state: a key-value map (accounts and contract storage) committed to
//! by a *bucket Merkle tree* (the design of Hyperledger Fabric 0.6's bucket
//! tree): each key falls into one of `2^k` buckets by its hash, a bucket's
//! hash covers its entries in key order, and a complete binary Merkle tree
//! over the buckets gives the state root.
//!
//! Updating a block's keys re-hashes only the touched buckets and their paths
//! (`O(changes × k)`), independent of the state's size. The whole map is
//! held in memory and mirrored in the store; a restarted node rebuilds the
//! tree from the stored map and checks it against its last header.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::{Address, Amount, ContractId, Hash32};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod proof;
pub use proof::{bucket_index, StateProof, MAX_PROOF_BUCKET};

/// A native account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Account {
    pub balance: Amount,
    pub nonce: u64,
}

const ACCOUNT_PREFIX: u8 = 0x01;
const CONTRACT_PREFIX: u8 = 0x02;

/// State key of an account.
pub fn account_key(a: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(21);
    k.push(ACCOUNT_PREFIX);
    k.extend_from_slice(&a.0);
    k
}

/// State key of a contract's storage slot.
pub fn contract_key(id: ContractId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + key.len());
    k.push(CONTRACT_PREFIX);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// The account that holds a contract's native coin.
pub fn contract_address(id: ContractId) -> Address {
    let h = hash_parts(Tag::CONTRACT_HASH, &[&id.to_be_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

/// Read access to state.
pub trait StateRead {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    fn account(&self, a: &Address) -> Account {
        self.get(&account_key(a)).and_then(|v| borsh::from_slice(&v).ok()).unwrap_or_default()
    }
}

/// Pending writes: `None` deletes.
pub type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

fn entry_hash(key: &[u8], value: &[u8]) -> Hash32 {
    hash_parts(Tag::STATE_ENTRY, &[key, value])
}

/// The committed state with its bucket tree.
pub struct State {
    map: HashMap<Vec<u8>, Vec<u8>>,
    log2_buckets: u32,
    buckets: Vec<BTreeMap<Vec<u8>, Hash32>>,
    /// `nodes[0]` is the root level (1 node), `nodes[k]` the bucket hashes.
    nodes: Vec<Vec<Hash32>>,
}

impl StateRead for State {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).cloned()
    }
}

impl State {
    pub fn new(log2_buckets: u32) -> Self {
        let n = 1usize << log2_buckets;
        let mut s = Self {
            map: HashMap::new(),
            log2_buckets,
            buckets: vec![BTreeMap::new(); n],
            nodes: (0..=log2_buckets).map(|l| vec![Hash32::ZERO; 1 << l]).collect(),
        };
        s.rebuild_tree();
        s
    }

    /// Loads a full map (e.g. from the store) and builds the tree.
    pub fn from_entries(log2_buckets: u32, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Self {
        let mut s = Self::new(log2_buckets);
        for (k, v) in entries {
            let b = s.bucket_of(&k);
            s.buckets[b].insert(k.clone(), entry_hash(&k, &v));
            s.map.insert(k, v);
        }
        s.rebuild_tree();
        s
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn root(&self) -> Hash32 {
        self.nodes[0][0]
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.map.iter()
    }

    fn bucket_of(&self, key: &[u8]) -> usize {
        bucket_index(key, self.log2_buckets)
    }

    fn bucket_hash(&self, b: usize) -> Hash32 {
        let entries = &self.buckets[b];
        if entries.is_empty() {
            return Hash32::ZERO;
        }
        let parts: Vec<&[u8]> = entries.values().map(|h| &h.0[..]).collect();
        hash_parts(Tag::STATE_BUCKET, &parts)
    }

    fn node(l: &Hash32, r: &Hash32) -> Hash32 {
        hash_parts(Tag::STATE_NODE, &[&l.0, &r.0])
    }

    fn rebuild_tree(&mut self) {
        let k = self.log2_buckets as usize;
        for b in 0..self.buckets.len() {
            self.nodes[k][b] = self.bucket_hash(b);
        }
        for level in (0..k).rev() {
            for i in 0..self.nodes[level].len() {
                self.nodes[level][i] = Self::node(&self.nodes[level + 1][2 * i], &self.nodes[level + 1][2 * i + 1]);
            }
        }
    }

    /// Applies changes and returns the new root.
    pub fn apply(&mut self, changes: &Changes) -> Hash32 {
        let k = self.log2_buckets as usize;
        let mut dirty = BTreeSet::new();
        for (key, v) in changes {
            let b = self.bucket_of(key);
            match v {
                Some(v) => {
                    self.buckets[b].insert(key.clone(), entry_hash(key, v));
                    self.map.insert(key.clone(), v.clone());
                }
                None => {
                    self.buckets[b].remove(key);
                    self.map.remove(key);
                }
            }
            dirty.insert(b);
        }
        for &b in &dirty {
            self.nodes[k][b] = self.bucket_hash(b);
        }
        let mut level_dirty: BTreeSet<usize> = dirty;
        for level in (0..k).rev() {
            let parents: BTreeSet<usize> = level_dirty.iter().map(|i| i / 2).collect();
            for &i in &parents {
                self.nodes[level][i] = Self::node(&self.nodes[level + 1][2 * i], &self.nodes[level + 1][2 * i + 1]);
            }
            level_dirty = parents;
        }
        self.root()
    }

    /// The root the state would have after `changes`, leaving `self` as is.
    pub fn root_after(&self, changes: &Changes) -> Hash32 {
        let k = self.log2_buckets as usize;
        let mut touched: BTreeMap<usize, BTreeMap<Vec<u8>, Option<Hash32>>> = BTreeMap::new();
        for (key, v) in changes {
            touched.entry(self.bucket_of(key)).or_default().insert(key.clone(), v.as_ref().map(|v| entry_hash(key, v)));
        }
        let mut level: BTreeMap<usize, Hash32> = BTreeMap::new();
        for (b, updates) in touched {
            let mut entries = self.buckets[b].clone();
            for (key, h) in updates {
                match h {
                    Some(h) => entries.insert(key, h),
                    None => entries.remove(&key),
                };
            }
            let h = if entries.is_empty() {
                Hash32::ZERO
            } else {
                let parts: Vec<&[u8]> = entries.values().map(|h| &h.0[..]).collect();
                hash_parts(Tag::STATE_BUCKET, &parts)
            };
            level.insert(b, h);
        }
        for l in (0..k).rev() {
            let mut up = BTreeMap::new();
            for &i in level.keys() {
                let p = i / 2;
                if up.contains_key(&p) {
                    continue;
                }
                let get = |j: usize| level.get(&j).copied().unwrap_or(self.nodes[l + 1][j]);
                up.insert(p, Self::node(&get(2 * p), &get(2 * p + 1)));
            }
            level = up;
        }
        level.get(&0).copied().unwrap_or(self.root())
    }
}

/// Writes layered over a read-only base; used for a block under
/// construction and, nested, for one transaction, so either can be dropped
/// whole (atomicity).
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    writes: Changes,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn StateRead) -> Self {
        Self { base, writes: Changes::new() }
    }

    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub fn set_account(&mut self, a: &Address, acct: &Account) {
        self.set(account_key(a), borsh::to_vec(acct).unwrap_or_default());
    }

    pub fn into_changes(self) -> Changes {
        self.writes
    }

    pub fn changes(&self) -> &Changes {
        &self.writes
    }

    /// Merges changes from a nested overlay.
    pub fn absorb(&mut self, changes: Changes) {
        self.writes.extend(changes);
    }
}

impl StateRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(pairs: &[(&[u8], Option<&[u8]>)]) -> Changes {
        pairs.iter().map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec()))).collect()
    }

    #[test]
    fn root_is_order_independent_and_matches_rebuild() {
        let mut a = State::new(4);
        let mut b = State::new(4);
        a.apply(&ch(&[(b"x", Some(b"1")), (b"y", Some(b"2"))]));
        a.apply(&ch(&[(b"z", Some(b"3"))]));
        b.apply(&ch(&[(b"z", Some(b"3"))]));
        b.apply(&ch(&[(b"y", Some(b"2")), (b"x", Some(b"1"))]));
        assert_eq!(a.root(), b.root());
        let rebuilt = State::from_entries(4, a.iter().map(|(k, v)| (k.clone(), v.clone())));
        assert_eq!(rebuilt.root(), a.root());
    }

    #[test]
    fn root_after_predicts_apply_and_deletes_restore_roots() {
        let mut s = State::new(3);
        let empty = s.root();
        s.apply(&ch(&[(b"a", Some(b"1"))]));
        let one = s.root();
        let c = ch(&[(b"b", Some(b"2")), (b"a", None)]);
        let predicted = s.root_after(&c);
        assert_eq!(s.root(), one, "root_after must not mutate");
        assert_eq!(s.apply(&c), predicted);
        s.apply(&ch(&[(b"b", None)]));
        assert_eq!(s.root(), empty);
        assert_ne!(one, empty);
    }

    #[test]
    fn overlay_reads_its_own_writes_and_deletes() {
        let mut s = State::new(2);
        s.apply(&ch(&[(b"k", Some(b"v"))]));
        let mut o = Overlay::new(&s);
        assert_eq!(o.get(b"k"), Some(b"v".to_vec()));
        o.delete(b"k".to_vec());
        assert_eq!(o.get(b"k"), None);
        o.set(b"n".to_vec(), b"w".to_vec());
        assert_eq!(o.get(b"n"), Some(b"w".to_vec()));
        assert_eq!(s.get(b"n"), None);
    }
}
