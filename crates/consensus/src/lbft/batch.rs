//! The plain FIFO batch source shipped with the protocol (thesis §4.5's
//! baselines and TBG live in [`super::txm`]): the driver asks a
//! [`BatchSource`] for one batch per epoch and tells it what each epoch
//! delivered. The source hands its batch on unchanged; the replica
//! truncates it to its `max_batch_txs`/`max_tx_bytes` bounds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::OnceLock;

use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::Hash32;

use super::messages::Txs;
use super::txm::BatchSource;

/// An opaque transaction as the ordering layer sees it.
pub type Tx = Vec<u8>;

/// The id that duplicate suppression uses: a tagged hash of the bytes.
pub fn tx_id(tx: &[u8]) -> Hash32 {
    hash_bytes(Tag("gridledger/lbft/tx/v1"), tx)
}

/// The hasher of the sets and maps keyed by transaction ids: foldhash
/// (a few multiplications per key, against SipHash-1-3's rounds, which
/// were ≈ 9 % of the ordering thread's samples) under a secret seed drawn
/// from the operating system's randomness once per process. The keys are
/// SHA-256 outputs whose bytes a client can only grind for, and without
/// the seed it cannot tell which ids share a bucket, so flooding one
/// bucket (HashDoS) is as hard as with the standard hasher's random keys.
#[derive(Clone, Debug)]
pub struct IdHasher(foldhash::fast::SeedableRandomState);

impl Default for IdHasher {
    fn default() -> Self {
        static SEED: OnceLock<(u64, foldhash::SharedSeed)> = OnceLock::new();
        let (per_hasher, shared) =
            SEED.get_or_init(|| (rand::random::<u64>(), foldhash::SharedSeed::from_u64(rand::random::<u64>())));
        Self(foldhash::fast::SeedableRandomState::with_seed(*per_hasher, shared))
    }
}

impl BuildHasher for IdHasher {
    type Hasher = foldhash::fast::FoldHasher<'static>;
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A set of transaction ids (see [`IdHasher`]).
pub type IdSet = HashSet<Hash32, IdHasher>;
/// A map keyed by transaction ids (see [`IdHasher`]).
pub type IdMap<V> = HashMap<Hash32, V, IdHasher>;

/// Why [`FifoPolicy`] refused a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Back-pressure: the queue already holds its bound of `cap`
    /// transactions. The transaction is not queued (nothing waits without
    /// bound); its sender may offer it again later.
    #[error("queue full ({cap} transactions pending): offered load above what is being ordered")]
    QueueFull { cap: usize },
    /// The same transaction is queued already.
    #[error("already queued")]
    Duplicate,
    /// The same transaction was delivered within the source's duplicate
    /// window (a late copy): queued, it would be proposed, suppressed
    /// while its delivery is in the replicas' window — so no delivery
    /// names it and it never leaves the queue — and delivered a second
    /// time once the first delivery left the window (attack r12).
    #[error("delivered already (within the duplicate window)")]
    Delivered,
}

/// First in, first out: up to `batch_size` of the oldest pending
/// transactions each epoch. A transaction stays pending until an epoch
/// delivers it (whoever proposed it), so a batch that lost the agreement is
/// proposed again. Every replica proposing the same head is wasteful but
/// correct (duplicates are removed on delivery); TBG's buckets exist to
/// avoid that waste.
///
/// A transaction delivered within the last `dedup_window` deliveries
/// ([`FifoPolicy::delivered_ids`] calls, one per epoch; the replicas'
/// `Config::dedup_epochs`, 1,024 by default) is refused on admission
/// ([`Refused::Delivered`]): a copy that arrives after its delivery (a
/// client sends to τ replicas; a lagging verifier hands copies over late)
/// would otherwise stay queued for good — the replicas suppress it while
/// the delivery is in their window, so no delivery names it — and be
/// delivered a second time once the window passed. A queued copy named by
/// a delivery's ids leaves the queue with it, so with both rules no copy
/// of a delivered transaction is proposed again within the window. The
/// window costs one id-set insertion per delivered transaction and the
/// ids of the window's deliveries (what the replica keeps for its own
/// duplicate window).
#[derive(Debug, Clone)]
pub struct FifoPolicy {
    batch_size: usize,
    max_pending: usize,
    pending: VecDeque<Pending>,
    queued: IdSet,
    retry_after: u64,
    /// Deliveries remembered (see the type's docs).
    dedup_window: u64,
    /// The ids of each of the last `dedup_window` deliveries, oldest first,
    /// with the delivery's number.
    recent: VecDeque<(u64, Vec<Hash32>)>,
    /// Each id in `recent`, with the number of its latest delivery.
    recent_ids: IdMap<u64>,
    /// Deliveries told so far.
    deliveries: u64,
    #[cfg(feature = "mutants")]
    mutation: Option<super::replica::Mutation>,
}

#[derive(Debug, Clone)]
struct Pending {
    id: Hash32,
    tx: Tx,
    /// Proposed in this epoch and not delivered yet: skipped until
    /// `retry_after` epochs passed, so a replica does not propose the same
    /// transactions in consecutive epochs while the first proposal is in
    /// flight.
    proposed_in: Option<u64>,
}

impl FifoPolicy {
    pub fn new(batch_size: usize, max_pending: usize) -> Self {
        Self {
            batch_size,
            max_pending,
            pending: VecDeque::new(),
            queued: IdSet::default(),
            retry_after: 2,
            dedup_window: 1_024,
            recent: VecDeque::new(),
            recent_ids: IdMap::default(),
            deliveries: 0,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }

    /// The number of deliveries whose transactions are refused on
    /// admission: the replicas' `Config::dedup_epochs` (the default,
    /// 1,024, is `Config::new`'s).
    pub fn with_dedup_window(mut self, deliveries: u64) -> Self {
        self.dedup_window = deliveries;
        self.forget_old();
        self
    }

    /// Plants a bug (`mutants` feature): [`Mutation::LateCopyAdmitted`](super::replica::Mutation::LateCopyAdmitted).
    #[cfg(feature = "mutants")]
    pub fn with_mutation(mut self, mutation: Option<super::replica::Mutation>) -> Self {
        self.mutation = mutation;
        self
    }

    fn late_copies_admitted(&self) -> bool {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(super::replica::Mutation::LateCopyAdmitted) {
            return true;
        }
        false
    }

    fn forget_old(&mut self) {
        while self.recent.len() as u64 > self.dedup_window {
            let Some((n, ids)) = self.recent.pop_front() else { break };
            for id in ids {
                if self.recent_ids.get(&id) == Some(&n) {
                    self.recent_ids.remove(&id);
                }
            }
        }
    }

    /// Queues `tx`; `false` when the queue is full or it is queued already
    /// ([`FifoPolicy::try_submit`] says which).
    pub fn submit(&mut self, tx: Tx) -> bool {
        self.try_submit(tx).is_ok()
    }

    /// Queues `tx`, or says why not: the queue is bounded (`max_pending`),
    /// so offered load beyond what the epochs take out is refused here,
    /// at the edge, instead of waiting in an ever longer queue.
    pub fn try_submit(&mut self, tx: Tx) -> Result<(), Refused> {
        let id = tx_id(&tx);
        self.try_submit_with_id(id, tx)
    }

    /// [`FifoPolicy::try_submit`] with `id = tx_id(&tx)` already computed
    /// (a driver that hashed it on arrival need not hash it again). The id
    /// travels with the transaction into [`FifoPolicy::next_txs`]'s batch,
    /// whose digest and duplicate screen read it: it must be `tx_id(&tx)`
    /// (checked in debug builds).
    pub fn try_submit_with_id(&mut self, id: Hash32, tx: Tx) -> Result<(), Refused> {
        if self.pending.len() >= self.max_pending {
            return Err(Refused::QueueFull { cap: self.max_pending });
        }
        debug_assert_eq!(id, tx_id(&tx), "try_submit_with_id: id is not tx_id(&tx)");
        if self.recent_ids.contains_key(&id) && !self.late_copies_admitted() {
            return Err(Refused::Delivered);
        }
        if !self.queued.insert(id) {
            return Err(Refused::Duplicate);
        }
        self.pending.push_back(Pending { id, tx, proposed_in: None });
        Ok(())
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The queue's bound.
    pub fn capacity(&self) -> usize {
        self.max_pending
    }

    /// [`BatchSource::next_batch`] as a batch whose ids are known (the
    /// queue hashed each transaction on admission), for
    /// [`Replica::propose_txs_at`](super::Replica::propose_txs_at): the
    /// replica does not hash its own batch again.
    pub fn next_txs(&mut self, epoch: u64) -> Txs {
        let (txs, ids) = self.take_batch(epoch);
        Txs::with_ids(txs, ids)
    }

    fn take_batch(&mut self, epoch: u64) -> (Vec<Tx>, Vec<Hash32>) {
        let mut out = Vec::new();
        let mut ids = Vec::new();
        for p in self.pending.iter_mut() {
            if out.len() >= self.batch_size {
                break;
            }
            match p.proposed_in {
                Some(at) if epoch < at + self.retry_after => continue,
                _ => {}
            }
            out.push(p.tx.clone());
            ids.push(p.id);
            p.proposed_in = Some(epoch);
        }
        (out, ids)
    }

    /// [`BatchSource::delivered`] with the delivered transactions' ids
    /// ([`tx_id`], as a replica's `Delivery::ids` carries them), so they
    /// are not hashed again. One set removal per delivered transaction;
    /// the queue is then walked only until every delivered one queued
    /// here is out of it. The ids enter the duplicate window (one delivery
    /// per call), which refuses late copies on admission.
    pub fn delivered_ids(&mut self, ids: &[Hash32]) {
        let n = self.deliveries;
        self.deliveries += 1;
        if self.dedup_window > 0 {
            for id in ids {
                self.recent_ids.insert(*id, n);
            }
            self.recent.push_back((n, ids.to_vec()));
            self.forget_old();
        }
        let mut left = ids.iter().filter(|id| self.queued.remove(*id)).count();
        if left == 0 {
            return;
        }
        let queued = &self.queued;
        self.pending.retain(|p| {
            if left == 0 || queued.contains(&p.id) {
                return true;
            }
            left -= 1;
            false
        });
    }
}

impl BatchSource for FifoPolicy {
    type Tx = Tx;

    fn next_batch(&mut self, epoch: u64) -> Vec<Tx> {
        self.take_batch(epoch).0
    }

    fn delivered(&mut self, _epoch: u64, _block_hash: Hash32, txs: &[Tx]) {
        let ids: Vec<Hash32> = txs.iter().map(|t| tx_id(t)).collect();
        self.delivered_ids(&ids);
    }
}
