//! The batching seam between transaction management and the atomic
//! broadcast P^ABC (thesis §4.2.1, Theorem 4.3: a policy only chooses batch
//! contents; the broadcast and agreement primitives are untouched).
//!
//! Two traits:
//! - [`BatchPolicy`]: where admitted transactions are kept and how a batch
//!   is chosen from them (TBG, HSM, random). Generic over the stored item so
//!   the same code runs with real signed transactions in a replica and with
//!   bare `u64` identities in the epoch-level experiments.
//! - [`BatchSource`]: what P^ABC asks of a replica once per local epoch —
//!   the next batch, and being told what was delivered. Note for the merger:
//!   this has the shape of the FIFO batch source that `lbft/batch.rs` is to
//!   define; when that lands, implement it for [`super::PiTauTbg`] and the
//!   baselines and drop this copy.

use std::fmt::Debug;
use std::hash::Hash;

/// Something a policy stores: it has a stable identity.
pub trait BatchItem: Clone {
    type Key: Copy + Eq + Hash + Ord + Debug;
    fn key(&self) -> Self::Key;
}

/// Bare identities (the experiments' transactions).
impl BatchItem for u64 {
    type Key = u64;
    fn key(&self) -> u64 {
        *self
    }
}

/// Where an admitted transaction is to be kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `e_c`, the client's epoch (TBG keys its bucket set on it; HSM ignores it).
    pub epoch: u64,
    /// TBG: the replica's 0-based position `t` in the array `A^τ`.
    /// HSM: the hash space `BID = H(ID ‖ ts) mod N`. Random: ignored.
    pub slot: u32,
}

/// Why a policy refused to store a transaction (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("already stored")]
    Duplicate,
    #[error("slot {slot} out of range (policy has {slots})")]
    SlotOutOfRange { slot: u32, slots: u32 },
    #[error("its bucket was already consulted at local epoch {consulted}; it can no longer be batched here")]
    Stale { consulted: u64 },
    /// TBG: the buckets consulted at local epoch `consulted` already hold
    /// a whole batch (B = `batch`); a batch is never cut, so the surplus is
    /// refused here rather than dropped later.
    #[error("the batch of local epoch {consulted} already holds B = {batch} transactions")]
    BatchFull { consulted: u64, batch: usize },
    #[error("memory bound of {max} stored transactions reached")]
    Full { max: usize },
}

/// A batching policy (TBG, HSM or random selection).
pub trait BatchPolicy<T: BatchItem> {
    /// Keeps an admitted transaction.
    fn store(&mut self, at: Placement, item: T) -> Result<(), StoreError>;
    /// The batch (at most B transactions) for local epoch `local_epoch`.
    /// Epochs must increase; a repeated or older epoch yields an empty batch
    /// and changes nothing.
    fn next_batch(&mut self, local_epoch: u64) -> Vec<T>;
    /// Housekeeping after the batch of local epoch `local_epoch` left
    /// (freeing what can no longer be batched). Called by the owner once per
    /// local epoch, after [`BatchPolicy::next_batch`].
    fn end_epoch(&mut self, _local_epoch: u64) {}
    /// `key` was BC- or ABC-delivered: it is never batched again. Returns
    /// whether it was stored.
    fn delivered(&mut self, key: &T::Key) -> bool;
    /// Transactions held (the memory overhead AMC^re counts).
    fn stored(&self) -> usize;
    /// Whether `key` is held.
    fn holds(&self, key: &T::Key) -> bool;
}

/// What P^ABC asks of a replica's transaction layer each local epoch.
pub trait BatchSource {
    type Tx;
    /// The batch to broadcast in local epoch `epoch`.
    fn next_batch(&mut self, epoch: u64) -> Vec<Self::Tx>;
    /// The block of epoch `epoch` (hash `block_hash`) was ABC-delivered with `txs`.
    fn delivered(&mut self, epoch: u64, block_hash: gridledger_core::Hash32, txs: &[Self::Tx]);
}
