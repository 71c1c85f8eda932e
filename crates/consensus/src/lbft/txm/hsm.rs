//! The baselines behind the same [`BatchPolicy`] trait: the hash-space
//! method HSM (thesis §4.2, "Hash-space method") and plain random selection
//! (§4.1.1, HoneyBadgerBFT's [141]).
//!
//! HSM: a client maps its transaction to hash space `BID = H(ID ‖ ts) mod N`
//! with a timestamp of its choosing ([`hsm_space`]); replica `n` manages
//! space `(n + e) mod N` at local epoch `e` (rotation) and, if the space
//! holds more than B transactions, picks B of them at random. Random
//! selection: B transactions drawn at random from everything held.
//!
//! Decision (silent in the seed): under both baselines a transaction stays
//! in memory after it is broadcast, until it is delivered — a broadcast
//! whose certificate never forms would otherwise lose it. This is what
//! makes their memory grow under invalid-transaction flooding (Fig 4-8).
//! Randomness comes from a ChaCha RNG seeded by the caller.

use std::collections::HashMap;

use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::ed25519::EdPublicKey as PublicKey;
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::batch::{BatchItem, BatchPolicy, Placement, StoreError};

/// `BID = H(ID ‖ ts) mod N`.
pub fn hsm_space(client: &PublicKey, timestamp: u64, replicas: u32) -> u32 {
    let h = hash_parts(Tag("gridledger/hsm-space/v1"), &[&client.0, &timestamp.to_le_bytes()]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.0[..8]);
    (u64::from_le_bytes(b) % u64::from(replicas.max(1))) as u32
}

/// A vector with O(1) removal by key.
struct Pool<T: BatchItem> {
    items: Vec<T>,
    index: HashMap<T::Key, usize>,
}

impl<T: BatchItem> Pool<T> {
    fn new() -> Self {
        Self { items: Vec::new(), index: HashMap::new() }
    }
    fn insert(&mut self, item: T) -> bool {
        let k = item.key();
        if self.index.contains_key(&k) {
            return false;
        }
        self.index.insert(k, self.items.len());
        self.items.push(item);
        true
    }
    fn remove(&mut self, key: &T::Key) -> bool {
        let Some(p) = self.index.remove(key) else { return false };
        self.items.swap_remove(p);
        if let Some(moved) = self.items.get(p) {
            self.index.insert(moved.key(), p);
        }
        true
    }
    /// Up to `b` items chosen uniformly without replacement (copies; the
    /// pool keeps them).
    fn sample(&mut self, b: usize, rng: &mut ChaCha8Rng) -> Vec<T> {
        let n = self.items.len();
        if n <= b {
            return self.items.clone();
        }
        // Partial Fisher–Yates on the pool itself, keeping the index right.
        for i in 0..b {
            let j = rng.random_range(i..n);
            if i != j {
                self.items.swap(i, j);
                self.index.insert(self.items[i].key(), i);
                self.index.insert(self.items[j].key(), j);
            }
        }
        self.items[..b].to_vec()
    }
}

/// HSM with random selection inside the managed space.
pub struct HsmBatcher<T: BatchItem> {
    me: u32,
    replicas: u32,
    batch: usize,
    max_stored: usize,
    spaces: Vec<Pool<T>>,
    stored: usize,
    last_epoch: Option<u64>,
    rng: ChaCha8Rng,
}

impl<T: BatchItem> HsmBatcher<T> {
    /// Replica `me` of `replicas`; `replicas` hash spaces.
    pub fn new(me: u32, replicas: u32, batch: usize, max_stored: usize, seed: u64) -> Self {
        let replicas = replicas.max(1);
        Self {
            me,
            replicas,
            batch,
            max_stored,
            spaces: (0..replicas).map(|_| Pool::new()).collect(),
            stored: 0,
            last_epoch: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The hash space replica `n` manages at local epoch `e`.
    pub fn managed(n: u32, e: u64, replicas: u32) -> u32 {
        ((u64::from(n) + e) % u64::from(replicas.max(1))) as u32
    }

    /// Transactions waiting in space `s`.
    pub fn space_len(&self, s: u32) -> usize {
        self.spaces.get(s as usize).map_or(0, |p| p.items.len())
    }
}

impl<T: BatchItem> BatchPolicy<T> for HsmBatcher<T> {
    fn store(&mut self, at: Placement, item: T) -> Result<(), StoreError> {
        if at.slot >= self.replicas {
            return Err(StoreError::SlotOutOfRange { slot: at.slot, slots: self.replicas });
        }
        if self.stored >= self.max_stored {
            return Err(StoreError::Full { max: self.max_stored });
        }
        if !self.spaces[at.slot as usize].insert(item) {
            return Err(StoreError::Duplicate);
        }
        self.stored += 1;
        Ok(())
    }

    fn next_batch(&mut self, e: u64) -> Vec<T> {
        if self.last_epoch.is_some_and(|l| e <= l) {
            return Vec::new();
        }
        self.last_epoch = Some(e);
        let s = Self::managed(self.me, e, self.replicas) as usize;
        self.spaces[s].sample(self.batch, &mut self.rng)
    }

    fn delivered(&mut self, key: &T::Key) -> bool {
        for p in &mut self.spaces {
            if p.remove(key) {
                self.stored -= 1;
                return true;
            }
        }
        false
    }

    fn stored(&self) -> usize {
        self.stored
    }

    fn holds(&self, key: &T::Key) -> bool {
        self.spaces.iter().any(|p| p.index.contains_key(key))
    }
}

/// Plain random selection of B from everything held.
pub struct RandomBatcher<T: BatchItem> {
    batch: usize,
    max_stored: usize,
    pool: Pool<T>,
    last_epoch: Option<u64>,
    rng: ChaCha8Rng,
}

impl<T: BatchItem> RandomBatcher<T> {
    pub fn new(batch: usize, max_stored: usize, seed: u64) -> Self {
        Self { batch, max_stored, pool: Pool::new(), last_epoch: None, rng: ChaCha8Rng::seed_from_u64(seed) }
    }
}

impl<T: BatchItem> BatchPolicy<T> for RandomBatcher<T> {
    fn store(&mut self, _at: Placement, item: T) -> Result<(), StoreError> {
        if self.pool.items.len() >= self.max_stored {
            return Err(StoreError::Full { max: self.max_stored });
        }
        if !self.pool.insert(item) {
            return Err(StoreError::Duplicate);
        }
        Ok(())
    }

    fn next_batch(&mut self, e: u64) -> Vec<T> {
        if self.last_epoch.is_some_and(|l| e <= l) {
            return Vec::new();
        }
        self.last_epoch = Some(e);
        self.pool.sample(self.batch, &mut self.rng)
    }

    fn delivered(&mut self, key: &T::Key) -> bool {
        self.pool.remove(key)
    }

    fn stored(&self) -> usize {
        self.pool.items.len()
    }

    fn holds(&self, key: &T::Key) -> bool {
        self.pool.index.contains_key(key)
    }
}
