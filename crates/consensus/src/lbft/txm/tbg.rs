//! Transaction Batch Generation (thesis §4.5, Algorithm 4.2, Fig 4-3).
//!
//! A transaction disseminated at epoch `e_c` and placed by π^τ at position
//! `t` of its array lands in bucket `t` of the bucket set generated at local
//! epoch `s = e_c + κ − 1`. The τ buckets form G groups of `g = ⌈τ/G⌉`
//! (the last group holds the rest, `τ − (G−1)g`, possibly fewer). Group `x`
//! (0-based) of set `s` is consulted exactly once, at local epoch
//! `s + 1 + 2κx` — i.e. the first group at `e_c + κ`, the second at
//! `e_c + 3κ`, …, the last at `e_c + 2κG − κ` (the 2κ stride of Lemma 4.1).
//!
//! Decisions where the seed is silent:
//! - `g = ⌈τ/G⌉` as the issue states (Theorem 4.2 prints ⌊τ/G⌋, §4.5.1 and
//!   Fig 4-3 describe G−1 full groups and a remainder). With the ceiling,
//!   trailing groups can be empty when `(G−1)g ≥ τ`; the RB bound
//!   `max{g, τ − g(G−1)}` is then `g`.
//! - Buckets are taken in order `t = 1, 2, …` and each bucket front to back.
//!   A batch never needs cutting: the buckets one local epoch consults hold
//!   at most B transactions together, because a transaction whose
//!   consultation epoch already has B waiting is refused when it is stored
//!   ([`StoreError::BatchFull`], nothing changes; its client may sign it
//!   again for a later epoch). Keeping the surplus for a later epoch would
//!   break the schedule Lemma 4.1 relies on, and cutting the batch would
//!   drop transactions without a trace. Rule-4's θ is chosen so this does
//!   not happen in normal operation (§4.5.2, third design).
//! - Deletion of delivered transactions (Algorithm 4.1 line 22, Algorithm
//!   4.2 line 01) happens when the delivery is reported, not at batch time,
//!   so building a batch only moves what remains (the grouping latency of
//!   Fig 4-9).
//! - A replica that catches up (several epochs delivered at once) is asked
//!   for the batch of its newest local epoch only: the groups due at the
//!   local epochs it skipped are consulted at that call, oldest
//!   consultation first, together with the groups due then. Such a batch
//!   can exceed B; it is cut at B and what is left over stays held
//!   ([`TbgBatcher::carried`]), first in line at the next batch. Nothing a
//!   bucket holds is freed without having been batched or delivered.

use std::collections::{BTreeMap, HashMap};

use super::batch::{BatchItem, BatchPolicy, Placement, StoreError};

/// TBG's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TbgConfig {
    /// τ: recipients per transaction (= buckets per set).
    pub tau: u32,
    /// G: groups.
    pub groups: u32,
    /// κ ∈ {1, 2}: the epoch skew bound of M^AS (Eq 4.1).
    pub kappa: u32,
    /// B: batch size.
    pub batch: usize,
    /// Bound on stored transactions (DESIGN principle 7).
    pub max_stored: usize,
}

/// Why a TBG configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TbgConfigError {
    #[error("τ must be at least 1")]
    ZeroTau,
    #[error("G must be in 1..=τ (G = {groups}, τ = {tau})")]
    Groups { groups: u32, tau: u32 },
    #[error("κ must be 1 or 2 (Eq 4.1), got {0}")]
    Kappa(u32),
    #[error("batch size B must be at least 1")]
    ZeroBatch,
}

impl TbgConfig {
    pub fn validate(&self) -> Result<(), TbgConfigError> {
        if self.tau == 0 {
            return Err(TbgConfigError::ZeroTau);
        }
        if self.groups == 0 || self.groups > self.tau {
            return Err(TbgConfigError::Groups { groups: self.groups, tau: self.tau });
        }
        if !(1..=2).contains(&self.kappa) {
            return Err(TbgConfigError::Kappa(self.kappa));
        }
        if self.batch == 0 {
            return Err(TbgConfigError::ZeroBatch);
        }
        Ok(())
    }

    /// `g = ⌈τ/G⌉`.
    pub fn group_size(&self) -> u32 {
        self.tau.div_ceil(self.groups)
    }

    /// The 0-based group of 0-based bucket `t`.
    pub fn group_of(&self, t: u32) -> u32 {
        t / self.group_size()
    }

    /// Theorem 4.2's bound on broadcasts of a BC-delivered transaction:
    /// `max{g, τ − g(G−1)}`.
    pub fn rb_bound(&self) -> u32 {
        let g = self.group_size();
        g.max(self.tau.saturating_sub(g * (self.groups - 1)))
    }

    /// The local epoch at which bucket `t` of transactions from `e_c` is consulted.
    pub fn consult_epoch(&self, e_c: u64, t: u32) -> u64 {
        let k = u64::from(self.kappa);
        e_c + k + 2 * k * u64::from(self.group_of(t))
    }
}

#[derive(Clone)]
struct BucketSet<T: BatchItem> {
    buckets: Vec<Vec<T>>,
    /// key → (bucket, position); entries of taken buckets go stale and are
    /// checked on use (dropping them one by one would cost the batch time).
    index: HashMap<T::Key, (u32, u32)>,
}

impl<T: BatchItem> BucketSet<T> {
    fn locate(&self, key: &T::Key) -> Option<(u32, u32)> {
        let &(t, p) = self.index.get(key)?;
        let item = self.buckets.get(t as usize)?.get(p as usize)?;
        (item.key() == *key).then_some((t, p))
    }
}

/// A replica's TBG buckets (Algorithm 4.2).
#[derive(Clone)]
pub struct TbgBatcher<T: BatchItem> {
    cfg: TbgConfig,
    /// Bucket sets by the local epoch that generated them (`e_c + κ − 1`).
    sets: BTreeMap<u64, BucketSet<T>>,
    stored: usize,
    /// The last local epoch a batch was built for.
    last_epoch: Option<u64>,
    /// Transactions held per local epoch that will consult their bucket
    /// (at most B each).
    due: BTreeMap<u64, usize>,
    /// Consulted after a catch-up but beyond B: the next batch's first
    /// transactions, in order.
    carry: Vec<T>,
    carry_keys: std::collections::HashSet<T::Key>,
}

impl<T: BatchItem> TbgBatcher<T> {
    pub fn new(cfg: TbgConfig) -> Result<Self, TbgConfigError> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            sets: BTreeMap::new(),
            stored: 0,
            last_epoch: None,
            due: BTreeMap::new(),
            carry: Vec::new(),
            carry_keys: Default::default(),
        })
    }

    /// Whether `key` was consulted but left for the next batch (no room in
    /// B after a catch-up).
    pub fn carried(&self, key: &T::Key) -> bool {
        !self.carry_keys.is_empty() && self.carry_keys.contains(key)
    }

    /// Removes `key` (delivered, or deleted as invalid) and returns it.
    pub fn take(&mut self, key: &T::Key) -> Option<T> {
        if self.carry_keys.remove(key) {
            let at = self.carry.iter().position(|t| t.key() == *key)?;
            self.stored -= 1;
            return Some(self.carry.remove(at));
        }
        let (k, g) = (u64::from(self.cfg.kappa), self.cfg.group_size());
        for (&s, set) in self.sets.iter_mut() {
            if let Some((t, p)) = set.locate(key) {
                // Set s's bucket t is consulted at s + 1 + 2κ·group(t).
                let consult = s + 1 + 2 * k * u64::from(t / g);
                if let Some(d) = self.due.get_mut(&consult) {
                    *d = d.saturating_sub(1);
                }
                let bucket = &mut set.buckets[t as usize];
                let item = bucket.swap_remove(p as usize);
                set.index.remove(key);
                if let Some(moved) = bucket.get(p as usize) {
                    set.index.insert(moved.key(), (t, p));
                }
                self.stored -= 1;
                return Some(item);
            }
        }
        None
    }

    /// The batch of local epoch `e` when the groups due at `from..e` were
    /// not consulted (a catch-up skipped their epochs) or transactions were
    /// carried over: the carried ones first, then every group due at
    /// `from..=e`, oldest consultation first; cut at B, the rest carried.
    fn catch_up_batch(&mut self, from: u64, e: u64) -> Vec<T> {
        let cfg = self.cfg;
        let k = u64::from(cfg.kappa);
        let g = cfg.group_size();
        self.due = self.due.split_off(&(e + 1));
        // (consultation epoch, group, set)
        let mut groups: Vec<(u64, u32, u64)> = Vec::new();
        for &s in self.sets.keys() {
            for x in 0..cfg.groups {
                let c = s + 1 + 2 * k * u64::from(x);
                if (from..=e).contains(&c) {
                    groups.push((c, x, s));
                }
            }
        }
        groups.sort_unstable();
        let mut batch = std::mem::take(&mut self.carry);
        self.carry_keys.clear();
        for (_, x, s) in groups {
            let Some(set) = self.sets.get_mut(&s) else { continue };
            let lo = (x * g).min(cfg.tau) as usize;
            let hi = ((x + 1) * g).min(cfg.tau) as usize;
            for bucket in &mut set.buckets[lo..hi] {
                batch.append(bucket);
            }
        }
        if batch.len() > cfg.batch {
            self.carry = batch.split_off(cfg.batch);
            self.carry_keys = self.carry.iter().map(BatchItem::key).collect();
        }
        self.stored -= batch.len();
        batch
    }

    pub fn config(&self) -> &TbgConfig {
        &self.cfg
    }

    /// Transactions held for the batch of local epoch `e` (at most B).
    pub fn due(&self, e: u64) -> usize {
        self.due.get(&e).copied().unwrap_or(0)
    }

    fn set_epoch(&self, e_c: u64) -> u64 {
        e_c + u64::from(self.cfg.kappa) - 1
    }

    fn empty_set(&self) -> BucketSet<T> {
        BucketSet { buckets: (0..self.cfg.tau).map(|_| Vec::new()).collect(), index: HashMap::new() }
    }
}

impl<T: BatchItem> BatchPolicy<T> for TbgBatcher<T> {
    fn store(&mut self, at: Placement, item: T) -> Result<(), StoreError> {
        if at.slot >= self.cfg.tau {
            return Err(StoreError::SlotOutOfRange { slot: at.slot, slots: self.cfg.tau });
        }
        let consult = self.cfg.consult_epoch(at.epoch, at.slot);
        if let Some(last) = self.last_epoch {
            if consult <= last {
                return Err(StoreError::Stale { consulted: consult });
            }
        }
        let s = self.set_epoch(at.epoch);
        let key = item.key();
        if self.sets.get(&s).is_some_and(|set| set.locate(&key).is_some()) {
            return Err(StoreError::Duplicate);
        }
        let due = self.due.get(&consult).copied().unwrap_or(0);
        if due >= self.cfg.batch {
            return Err(StoreError::BatchFull { consulted: consult, batch: self.cfg.batch });
        }
        if self.stored >= self.cfg.max_stored {
            return Err(StoreError::Full { max: self.cfg.max_stored });
        }
        if !self.sets.contains_key(&s) {
            let fresh = self.empty_set();
            self.sets.insert(s, fresh);
        }
        let set = self.sets.get_mut(&s).expect("inserted above");
        let bucket = &mut set.buckets[at.slot as usize];
        set.index.insert(key, (at.slot, bucket.len() as u32));
        bucket.push(item);
        self.stored += 1;
        self.due.insert(consult, due + 1);
        Ok(())
    }

    fn next_batch(&mut self, e: u64) -> Vec<T> {
        if self.last_epoch.is_some_and(|l| e <= l) {
            return Vec::new();
        }
        // Consultation epochs not consulted yet: `from..=e`.
        let from = self.last_epoch.map_or(0, |l| l + 1);
        self.last_epoch = Some(e);
        if from < e || !self.carry.is_empty() {
            return self.catch_up_batch(from, e);
        }
        // What the consulted buckets hold: at most B (refused beyond, on store).
        self.due.remove(&e);
        let cfg = self.cfg;
        let k = u64::from(cfg.kappa);
        let g = cfg.group_size();
        // The first non-empty bucket becomes the batch's buffer (moved, not
        // copied); later buckets are appended into it.
        let mut batch: Vec<T> = Vec::new();
        for x in 0..cfg.groups {
            // Group x of the set generated at e − 1 − 2κx (Algorithm 4.2 line 02).
            let Some(s) = e.checked_sub(1 + 2 * k * u64::from(x)) else { break };
            let Some(set) = self.sets.get_mut(&s) else { continue };
            let lo = (x * g).min(cfg.tau) as usize;
            let hi = ((x + 1) * g).min(cfg.tau) as usize;
            for bucket in &mut set.buckets[lo..hi] {
                let n = bucket.len();
                if n == 0 {
                    continue;
                }
                debug_assert!(batch.len() + n <= cfg.batch, "store keeps a consultation at most B");
                if batch.is_empty() {
                    batch = std::mem::take(bucket);
                    if batch.len() < cfg.batch {
                        batch.reserve(cfg.batch - batch.len());
                    }
                } else {
                    batch.append(bucket);
                }
                self.stored -= n;
            }
        }
        batch
    }

    /// Frees the bucket sets whose last group is past at local epoch `e`
    /// (whatever a skipped epoch left in them can never be batched). Kept
    /// out of [`BatchPolicy::next_batch`] so that building a batch is only
    /// the selection the seed's grouping latency measures (Fig 4-9).
    fn end_epoch(&mut self, e: u64) {
        let k = u64::from(self.cfg.kappa);
        let keep_from = e.saturating_sub(2 * k * u64::from(self.cfg.groups - 1));
        // Consultation epochs up to e are past: nothing is stored for them any more.
        self.due = self.due.split_off(&(e + 1));
        let old: Vec<u64> = self.sets.range(..keep_from).map(|(s, _)| *s).collect();
        for s in old {
            if let Some(set) = self.sets.remove(&s) {
                self.stored -= set.buckets.iter().map(Vec::len).sum::<usize>();
            }
        }
    }

    fn delivered(&mut self, key: &T::Key) -> bool {
        self.take(key).is_some()
    }

    fn stored(&self) -> usize {
        self.stored
    }

    fn holds(&self, key: &T::Key) -> bool {
        self.carried(key) || self.sets.values().any(|s| s.locate(key).is_some())
    }
}

/// The grouping benchmark's state (Fig 4-9): a replica that received
/// `per_epoch` transactions in each epoch, each at a uniformly random
/// position of its array, with every bucket set that local epoch `epoch`
/// consults filled. Item `i` of set `s` is `s << 32 | i`.
pub fn grouping_fixture(
    cfg: TbgConfig,
    per_epoch: u32,
    epoch: u64,
    seed: u64,
) -> Result<TbgBatcher<u64>, TbgConfigError> {
    use rand::Rng;
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut b = TbgBatcher::new(TbgConfig { max_stored: usize::MAX, ..cfg })?;
    let k = u64::from(cfg.kappa);
    for x in 0..u64::from(cfg.groups) {
        let Some(s) = epoch.checked_sub(1 + 2 * k * x) else { break };
        // Set s holds the transactions of e_c = s − κ + 1.
        let Some(e_c) = (s + 1).checked_sub(k) else { break };
        for i in 0..per_epoch {
            let slot = rng.random_range(0..cfg.tau);
            // Distinct keys: cannot be refused.
            let _ = b.store(Placement { epoch: e_c, slot }, (s << 32) | u64::from(i));
        }
    }
    // As if the batch of `epoch − 1` was built: the call measured consults
    // the groups due at `epoch` alone.
    b.last_epoch = epoch.checked_sub(1);
    Ok(b)
}
