//! The mempool: verified transactions waiting for a block, per sender in
//! nonce order with no gaps, bounded in total and per sender.

use gridledger_core::{Address, Amount, Hash32};
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::error::SubmitError;
use crate::state::Account;
use crate::tx::{SignedTransaction, VerifiedTx};

#[derive(Default)]
struct SenderQueue {
    txs: BTreeMap<u64, VerifiedTx>,
    /// Sum of the queued transactions' maximum costs.
    reserved: Amount,
}

/// Pending transactions.
pub struct Mempool {
    capacity: usize,
    per_sender: usize,
    senders: HashMap<Address, SenderQueue>,
    by_hash: HashMap<Hash32, (Address, u64)>,
    /// Senders in order of first arrival, for round-robin block filling.
    order: VecDeque<Address>,
    len: usize,
}

impl Mempool {
    pub fn new(capacity: usize, per_sender: usize) -> Self {
        Self { capacity, per_sender, senders: HashMap::new(), by_hash: HashMap::new(), order: VecDeque::new(), len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, h: &Hash32) -> bool {
        self.by_hash.contains_key(h)
    }

    /// True if this exact transaction (body and signature) is pending here,
    /// i.e. this node has already verified it.
    pub fn holds(&self, tx: &SignedTransaction) -> bool {
        let h = tx.hash();
        self.by_hash
            .get(&h)
            .and_then(|(s, n)| self.senders.get(s).and_then(|q| q.txs.get(n)))
            .is_some_and(|v| v.tx == *tx)
    }

    /// The next nonce this sender may submit, given its committed account.
    pub fn next_nonce(&self, sender: &Address, committed: &Account) -> u64 {
        committed.nonce + self.senders.get(sender).map_or(0, |q| q.txs.len() as u64)
    }

    /// Admits a verified transaction against the sender's committed account.
    /// On error nothing changes.
    pub fn admit(&mut self, vtx: VerifiedTx, committed: &Account) -> Result<Hash32, SubmitError> {
        if self.by_hash.contains_key(&vtx.hash) {
            return Err(SubmitError::AlreadyKnown);
        }
        if self.len >= self.capacity {
            return Err(SubmitError::MempoolFull { capacity: self.capacity });
        }
        let nonce = vtx.tx.tx.nonce;
        let (queued, reserved) = self.senders.get(&vtx.sender).map_or((0, Amount::ZERO), |q| (q.txs.len(), q.reserved));
        let next = committed.nonce + queued as u64;
        if nonce < next {
            return Err(SubmitError::NonceTooLow { expected: next, got: nonce });
        }
        if nonce > next {
            return Err(SubmitError::NonceGap { expected: next, got: nonce });
        }
        if queued >= self.per_sender {
            return Err(SubmitError::SenderQueueFull { limit: self.per_sender });
        }
        let needed = reserved.checked_add(vtx.max_cost).ok_or(SubmitError::Overflow)?;
        if needed > committed.balance {
            return Err(SubmitError::InsufficientBalance { needed, available: committed.balance });
        }
        let hash = vtx.hash;
        let sender = vtx.sender;
        let q = self.senders.entry(sender).or_default();
        if q.txs.is_empty() {
            self.order.push_back(sender);
        }
        q.reserved = needed;
        q.txs.insert(nonce, vtx);
        self.by_hash.insert(hash, (sender, nonce));
        self.len += 1;
        Ok(hash)
    }

    /// Up to `max` transactions for the next block: round-robin over senders
    /// in arrival order, each sender's in nonce order.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        let mut out = Vec::with_capacity(max.min(self.len));
        let mut iters: Vec<_> = self.order.iter().filter_map(|a| self.senders.get(a)).map(|q| q.txs.values()).collect();
        while out.len() < max && !iters.is_empty() {
            iters.retain_mut(|it| match it.next() {
                Some(v) if out.len() < max => {
                    out.push(v.tx.clone());
                    true
                }
                _ => false,
            });
        }
        out
    }

    /// Drops what the committed state has made stale: every transaction whose
    /// nonce is below its sender's committed nonce, and all of a sender's
    /// transactions if the queue no longer starts at the committed nonce.
    pub fn prune<F: Fn(&Address) -> Account>(&mut self, senders: impl IntoIterator<Item = Address>, account: F) {
        for s in senders {
            let Some(q) = self.senders.get_mut(&s) else {
                continue;
            };
            let acct = account(&s);
            let stale: Vec<u64> = q.txs.range(..acct.nonce).map(|(n, _)| *n).collect();
            let mut removed = Vec::new();
            for n in stale {
                if let Some(v) = q.txs.remove(&n) {
                    removed.push(v);
                }
            }
            if q.txs.keys().next().is_some_and(|n| *n != acct.nonce) {
                removed.extend(std::mem::take(&mut q.txs).into_values());
            }
            for v in &removed {
                self.by_hash.remove(&v.hash);
                self.len -= 1;
            }
            q.reserved = q.txs.values().fold(Amount::ZERO, |a, v| a.checked_add(v.max_cost).unwrap_or(Amount::MAX));
            if q.txs.is_empty() {
                self.senders.remove(&s);
            }
        }
        let senders = &self.senders;
        self.order.retain(|a| senders.contains_key(a));
    }

    /// Removes one transaction and every later one from the same sender
    /// (they can no longer execute), e.g. when a block builder rejects it.
    pub fn evict(&mut self, h: &Hash32) {
        let Some((s, nonce)) = self.by_hash.get(h).copied() else {
            return;
        };
        if let Some(q) = self.senders.get_mut(&s) {
            let later = q.txs.split_off(&nonce);
            for v in later.values() {
                self.by_hash.remove(&v.hash);
                self.len -= 1;
            }
            q.reserved = q.txs.values().fold(Amount::ZERO, |a, v| a.checked_add(v.max_cost).unwrap_or(Amount::MAX));
            if q.txs.is_empty() {
                self.senders.remove(&s);
                self.order.retain(|a| *a != s);
            }
        }
    }
}
