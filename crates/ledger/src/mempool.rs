//! The mempool: verified transactions waiting for a block, per sender in
//! nonce order with no gaps, bounded in total and per sender.
//!
//! When the pool is full a transaction that pays a strictly higher gas price
//! than the cheapest evictable one takes its place. Only the *last* pending
//! transaction of a sender is evictable (removing an earlier one would leave
//! a nonce gap that strands the later ones), and never one of the incoming
//! transaction's own sender (its predecessor). Between equally cheap tails
//! the one with the lowest sender address goes, so eviction is deterministic
//! across validators. A transaction that outbids nobody is refused with
//! [`SubmitError::MempoolFull`] and changes nothing.

use gridledger_core::{Address, Amount, Hash32};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

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
    /// Each sender's last pending transaction by (gas price, sender): the
    /// eviction candidates, cheapest first.
    tails: BTreeSet<(Amount, Address)>,
    evicted: u64,
}

impl Mempool {
    pub fn new(capacity: usize, per_sender: usize) -> Self {
        Self {
            capacity,
            per_sender,
            senders: HashMap::new(),
            by_hash: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            tails: BTreeSet::new(),
            evicted: 0,
        }
    }

    /// Transactions pushed out by higher-paying ones since this pool was made.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn tail_key(&self, sender: &Address) -> Option<(Amount, Address)> {
        self.senders.get(sender).and_then(|q| q.txs.values().next_back()).map(|v| (v.tx.tx.gas_price, *sender))
    }

    /// Runs `f` on the pool and keeps `sender`'s entry in `tails` current.
    fn retail<R>(&mut self, sender: Address, f: impl FnOnce(&mut Self) -> R) -> R {
        if let Some(k) = self.tail_key(&sender) {
            self.tails.remove(&k);
        }
        let r = f(self);
        if let Some(k) = self.tail_key(&sender) {
            self.tails.insert(k);
        }
        r
    }

    /// The cheapest tail that `price` strictly outbids, not of `sender`.
    fn victim(&self, sender: &Address, price: Amount) -> Option<Hash32> {
        let (_, who) = self.tails.iter().find(|(_, a)| a != sender).filter(|(p, _)| *p < price)?;
        self.senders.get(who).and_then(|q| q.txs.values().next_back()).map(|v| v.hash)
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
        // Every check has passed; only now may another sender's tail go.
        let victim = if self.len >= self.capacity {
            match self.victim(&vtx.sender, vtx.tx.tx.gas_price) {
                Some(v) => Some(v),
                None => return Err(SubmitError::MempoolFull { capacity: self.capacity }),
            }
        } else {
            None
        };
        if let Some(v) = victim {
            self.evict(&v);
            self.evicted += 1;
        }
        let hash = vtx.hash;
        let sender = vtx.sender;
        self.retail(sender, |me| {
            let q = me.senders.entry(sender).or_default();
            if q.txs.is_empty() {
                me.order.push_back(sender);
            }
            q.reserved = needed;
            q.txs.insert(nonce, vtx);
            me.by_hash.insert(hash, (sender, nonce));
            me.len += 1;
        });
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
            if !self.senders.contains_key(&s) {
                continue;
            }
            let acct = account(&s);
            self.retail(s, |me| me.prune_one(s, &acct));
        }
        let senders = &self.senders;
        self.order.retain(|a| senders.contains_key(a));
    }

    fn prune_one(&mut self, s: Address, acct: &Account) {
        {
            let Some(q) = self.senders.get_mut(&s) else {
                return;
            };
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
    }

    /// Removes one transaction and every later one from the same sender
    /// (they can no longer execute), e.g. when a block builder rejects it.
    pub fn evict(&mut self, h: &Hash32) {
        let Some((s, nonce)) = self.by_hash.get(h).copied() else {
            return;
        };
        self.retail(s, |me| me.evict_from(s, nonce));
    }

    fn evict_from(&mut self, s: Address, nonce: u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devnet::{dev_key, transfer};

    const RICH: Account = Account { balance: Amount(1_000_000_000), nonce: 0 };

    fn vtx(key: usize, nonce: u64, price: u128) -> VerifiedTx {
        transfer(&dev_key(key), 1, nonce, dev_key(99).address(), Amount(1), Amount(price))
            .check_stateless(1, u64::MAX)
            .unwrap()
    }

    fn snapshot(p: &Mempool) -> (usize, Vec<Hash32>, Vec<(Amount, Address)>) {
        let mut h: Vec<_> = p.by_hash.keys().copied().collect();
        h.sort();
        (p.len(), h, p.tails.iter().copied().collect())
    }

    #[test]
    fn a_full_pool_lets_a_higher_paying_transaction_evict_the_cheapest_tail() {
        let mut p = Mempool::new(3, 10);
        let cheap = p.admit(vtx(1, 0, 2), &RICH).unwrap();
        let mid = p.admit(vtx(2, 0, 5), &RICH).unwrap();
        let dear = p.admit(vtx(3, 0, 9), &RICH).unwrap();
        let rich = p.admit(vtx(4, 0, 3), &RICH).unwrap();
        assert!(!p.contains(&cheap), "the cheapest transaction was evicted");
        for h in [mid, dear, rich] {
            assert!(p.contains(&h));
        }
        assert_eq!(p.len(), 3);
        assert_eq!(p.evicted(), 1);
        // The evicted sender may come back with nonce 0 again, if it pays enough.
        assert_eq!(p.next_nonce(&dev_key(1).address(), &RICH), 0);
    }

    #[test]
    fn a_full_pool_refuses_a_transaction_that_outbids_nobody_and_changes_nothing() {
        let mut p = Mempool::new(2, 10);
        p.admit(vtx(1, 0, 4), &RICH).unwrap();
        p.admit(vtx(2, 0, 4), &RICH).unwrap();
        let before = snapshot(&p);
        // Equal price does not evict; lower price does not either.
        for price in [4, 1] {
            assert_eq!(p.admit(vtx(3, 0, price), &RICH), Err(SubmitError::MempoolFull { capacity: 2 }));
            assert_eq!(snapshot(&p), before);
        }
        assert_eq!(p.evicted(), 0);
    }

    #[test]
    fn only_a_senders_last_transaction_is_evicted_and_never_the_incoming_senders_own() {
        let mut p = Mempool::new(3, 10);
        // Sender 1: nonce 0 pays 1, nonce 1 pays 8: its tail is the 8.
        let a0 = p.admit(vtx(1, 0, 1), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 8), &RICH).unwrap();
        let b0 = p.admit(vtx(2, 0, 3), &RICH).unwrap();
        // Sender 2 at 4 outbids only its own tail (3) and sender 1's tail is 8:
        // evicting its own predecessor would leave a gap, so it is refused.
        let before = snapshot(&p);
        assert_eq!(p.admit(vtx(2, 1, 4), &RICH), Err(SubmitError::MempoolFull { capacity: 3 }));
        assert_eq!(snapshot(&p), before);
        // Sender 3 at 5 evicts sender 2's tail (3), not sender 1's cheap nonce 0.
        let c0 = p.admit(vtx(3, 0, 5), &RICH).unwrap();
        assert!(!p.contains(&b0));
        for h in [a0, a1, c0] {
            assert!(p.contains(&h));
        }
    }

    #[test]
    fn the_eviction_index_follows_pruning_and_block_rejection() {
        let mut p = Mempool::new(10, 10);
        p.admit(vtx(1, 0, 2), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 7), &RICH).unwrap();
        p.admit(vtx(2, 0, 3), &RICH).unwrap();
        p.evict(&a1);
        assert_eq!(p.tails.iter().map(|t| t.0).collect::<Vec<_>>(), vec![Amount(2), Amount(3)]);
        p.prune([dev_key(1).address()], |_| Account { balance: RICH.balance, nonce: 1 });
        assert_eq!(p.tails.iter().map(|t| t.0).collect::<Vec<_>>(), vec![Amount(3)]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn the_default_minimum_gas_price_is_not_zero() {
        let rules = crate::chain::ChainConfig::default();
        assert!(rules.min_gas_price > Amount::ZERO);
    }
}
