//! The mempool: verified transactions waiting for a block, per sender in
//! nonce order with no gaps, bounded in total and per sender.
//!
//! The pool is bounded in transactions (`capacity`) and in encoded bytes
//! (`max_bytes`, [`DEFAULT_MEMPOOL_BYTES`] unless set): 200,000 transactions
//! of 64 KiB would otherwise be 13 GB.
//!
//! When the pool is full a transaction that pays a strictly higher gas price
//! than the cheapest pending one of another sender takes its place. A
//! sender's queue is priced by its *cheapest* transaction, and evicting it
//! removes its cheapest *suffix*: the last transaction at that price and
//! every later one (removing it alone would leave a nonce gap that strands
//! the later ones; they cannot execute before it anyway). So a dear last
//! transaction does not shield a queue of cheap ones. A sender of the
//! incoming transaction is never a victim (that could remove its own
//! predecessor). Between equally cheap senders the lowest address goes
//! first, so eviction is deterministic across validators. As many suffixes
//! go as are needed to fit the newcomer in count and bytes; if outbidding
//! every cheaper sender is not enough, it is refused with
//! [`SubmitError::MempoolFull`] and nothing changes.

use gridledger_core::{Address, Amount, Hash32};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::error::SubmitError;
use crate::state::Account;
use crate::tx::{SignedTransaction, VerifiedTx};

/// Byte budget of a pool made by [`Mempool::new`].
pub const DEFAULT_MEMPOOL_BYTES: usize = 256 << 20;

#[derive(Default)]
struct SenderQueue {
    txs: BTreeMap<u64, VerifiedTx>,
    /// Sum of the queued transactions' maximum costs.
    reserved: Amount,
    /// How many queued transactions pay each gas price.
    prices: BTreeMap<Amount, usize>,
}

impl SenderQueue {
    fn count_in(&mut self, v: &VerifiedTx) {
        *self.prices.entry(v.tx.tx.gas_price).or_default() += 1;
    }

    fn count_out(&mut self, v: &VerifiedTx) {
        let p = v.tx.tx.gas_price;
        if let Some(c) = self.prices.get_mut(&p) {
            *c -= 1;
            if *c == 0 {
                self.prices.remove(&p);
            }
        }
    }
}

/// Encoded size of a transaction, as the byte budget counts it.
fn tx_size(v: &VerifiedTx) -> usize {
    borsh::object_length(&v.tx).unwrap_or(usize::MAX)
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
    max_bytes: usize,
    bytes: usize,
    /// Each sender's cheapest pending gas price, by (price, sender): the
    /// eviction candidates, cheapest first.
    tails: BTreeSet<(Amount, Address)>,
    evicted: u64,
    /// The pending transactions with a deadline
    /// ([`crate::TxKind::TransferUntil`]), by (last valid height, hash):
    /// [`Mempool::drop_expired`] finds the expired ones without a scan.
    deadlines: BTreeSet<(u64, Hash32)>,
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
            max_bytes: DEFAULT_MEMPOOL_BYTES,
            bytes: 0,
            tails: BTreeSet::new(),
            evicted: 0,
            deadlines: BTreeSet::new(),
        }
    }

    /// The same pool with a byte budget of `max_bytes` (encoded transactions).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Encoded bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Transactions pushed out by higher-paying ones since this pool was made.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    fn tail_key(&self, sender: &Address) -> Option<(Amount, Address)> {
        self.senders.get(sender).and_then(|q| q.prices.keys().next()).map(|p| (*p, *sender))
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

    /// The suffixes (sender, first nonce) to evict so that one more
    /// transaction of `size` bytes fits, each of a sender other than
    /// `sender` whose cheapest price `price` strictly outbids, cheapest
    /// first; `None` if those are not enough.
    fn victims(&self, sender: &Address, price: Amount, size: usize) -> Option<Vec<(Address, u64, usize)>> {
        let mut need_n = (self.len + 1).saturating_sub(self.capacity);
        let mut need_b = self.bytes.saturating_add(size).saturating_sub(self.max_bytes);
        let mut out = Vec::new();
        for (p, who) in &self.tails {
            if need_n == 0 && need_b == 0 {
                break;
            }
            if *p >= price {
                return None;
            }
            if who == sender {
                continue;
            }
            let q = self.senders.get(who)?;
            let (&from, _) = q.txs.iter().rev().find(|(_, v)| v.tx.tx.gas_price == *p)?;
            let (n, b) =
                q.txs.range(from..).fold((0usize, 0usize), |(n, b), (_, v)| (n + 1, b.saturating_add(tx_size(v))));
            need_n = need_n.saturating_sub(n);
            need_b = need_b.saturating_sub(b);
            out.push((*who, from, n));
        }
        (need_n == 0 && need_b == 0).then_some(out)
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
        // Every check has passed; only now may other senders' suffixes go.
        let size = tx_size(&vtx);
        let full = SubmitError::MempoolFull { capacity: self.capacity };
        if size > self.max_bytes {
            return Err(full);
        }
        let victims = self.victims(&vtx.sender, vtx.tx.tx.gas_price, size).ok_or(full)?;
        for (s, from, n) in victims {
            self.retail(s, |me| me.evict_from(s, from));
            self.evicted += n as u64;
        }
        let hash = vtx.hash;
        let sender = vtx.sender;
        self.retail(sender, |me| {
            let q = me.senders.entry(sender).or_default();
            if q.txs.is_empty() {
                me.order.push_back(sender);
            }
            q.reserved = needed;
            q.count_in(&vtx);
            if let Some(u) = vtx.tx.tx.kind.valid_until() {
                me.deadlines.insert((u, hash));
            }
            q.txs.insert(nonce, vtx);
            me.by_hash.insert(hash, (sender, nonce));
            me.len += 1;
            me.bytes += size;
        });
        Ok(hash)
    }

    /// Moves `senders` (those still queued), in the order given, to the
    /// front of the round-robin order: a sender whose next transaction a
    /// block skipped because its gas limit no longer fitted is served
    /// first in the next one (attack r12 [3]: behind a sender that keeps
    /// queueing a heavy transaction first, it was skipped for ever).
    pub fn serve_first(&mut self, senders: &[Address]) {
        for a in senders.iter().rev() {
            if let Some(i) = self.order.iter().position(|o| o == a) {
                if let Some(x) = self.order.remove(i) {
                    self.order.push_front(x);
                }
            }
        }
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

    /// Each pending sender's transactions in nonce order (no gaps, from its
    /// committed nonce), senders in the round-robin order of
    /// [`Mempool::candidates`]; nothing is copied.
    pub fn queues(&self) -> impl Iterator<Item = impl Iterator<Item = &VerifiedTx>> {
        self.order.iter().filter_map(|a| self.senders.get(a)).map(|q| q.txs.values())
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
                q.count_out(v);
                if let Some(u) = v.tx.tx.kind.valid_until() {
                    self.deadlines.remove(&(u, v.hash));
                }
                self.by_hash.remove(&v.hash);
                self.len -= 1;
                self.bytes = self.bytes.saturating_sub(tx_size(v));
            }
            q.reserved = q.txs.values().fold(Amount::ZERO, |a, v| a.checked_add(v.max_cost).unwrap_or(Amount::MAX));
            if q.txs.is_empty() {
                self.senders.remove(&s);
            }
        }
    }

    /// Drops every transaction whose deadline is below `next_height` (it
    /// can never go into a block now) and, like [`Mempool::evict`], every
    /// later one of its sender (they wait for its nonce). Returns how many
    /// transactions went.
    pub fn drop_expired(&mut self, next_height: u64) -> usize {
        let before = self.len;
        let expired: Vec<Hash32> = self.deadlines.range(..(next_height, Hash32([0; 32]))).map(|(_, h)| *h).collect();
        for h in expired {
            self.evict(&h);
        }
        before - self.len
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
                q.count_out(v);
                if let Some(u) = v.tx.tx.kind.valid_until() {
                    self.deadlines.remove(&(u, v.hash));
                }
                self.by_hash.remove(&v.hash);
                self.len -= 1;
                self.bytes = self.bytes.saturating_sub(tx_size(v));
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
    fn a_senders_cheapest_suffix_is_evicted_and_never_the_incoming_senders_own() {
        let mut p = Mempool::new(4, 10);
        // Sender 1: nonce 0 pays 1, nonce 1 pays 8, nonce 2 pays 1, nonce 3 pays 9:
        // its price is 1 and its cheapest suffix is nonces 2 and 3.
        let a0 = p.admit(vtx(1, 0, 1), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 8), &RICH).unwrap();
        let a2 = p.admit(vtx(1, 2, 1), &RICH).unwrap();
        let a3 = p.admit(vtx(1, 3, 9), &RICH).unwrap();
        // Sender 1 at 5 outbids only itself: evicting its own queue is refused.
        let before = snapshot(&p);
        assert_eq!(p.admit(vtx(1, 4, 5), &RICH), Err(SubmitError::MempoolFull { capacity: 4 }));
        assert_eq!(snapshot(&p), before);
        // Sender 2 at 2 evicts sender 1's suffix from the last 1 on (nonces 2, 3).
        let b0 = p.admit(vtx(2, 0, 2), &RICH).unwrap();
        for h in [a0, a1, b0] {
            assert!(p.contains(&h));
        }
        assert!(!p.contains(&a2) && !p.contains(&a3));
        assert_eq!(p.evicted(), 2);
        assert_eq!(p.len(), 3);
        // Sender 2 at 3 with its own nonce 0 at 2: sender 1 (price 1) goes, not its own.
        p.admit(vtx(3, 0, 3), &RICH).unwrap();
        let b1 = p.admit(vtx(2, 1, 3), &RICH).unwrap();
        assert!(p.contains(&b0) && p.contains(&b1));
        assert!(!p.contains(&a0) && !p.contains(&a1), "sender 1's whole queue (price 1 at nonce 0) went");
    }

    #[test]
    fn the_byte_budget_bounds_the_pool_and_refusal_changes_nothing() {
        let size = tx_size(&vtx(1, 0, 1));
        let mut p = Mempool::new(100, 10).with_max_bytes(3 * size);
        for k in 1..=3 {
            p.admit(vtx(k, 0, 2), &RICH).unwrap();
        }
        assert_eq!(p.bytes(), 3 * size);
        let before = snapshot(&p);
        assert_eq!(p.admit(vtx(4, 0, 2), &RICH), Err(SubmitError::MempoolFull { capacity: 100 }));
        assert_eq!(snapshot(&p), before);
        assert_eq!(p.bytes(), 3 * size);
        // A higher price evicts one to fit in bytes although the count has room.
        p.admit(vtx(4, 0, 3), &RICH).unwrap();
        assert_eq!((p.len(), p.bytes(), p.evicted()), (3, 3 * size, 1));
        // Pruning returns the bytes.
        p.prune([dev_key(4).address()], |_| Account { balance: RICH.balance, nonce: 1 });
        assert_eq!((p.len(), p.bytes()), (2, 2 * size));
        // A transaction larger than the whole budget is refused.
        let mut tiny = Mempool::new(100, 10).with_max_bytes(size - 1);
        assert_eq!(tiny.admit(vtx(1, 0, 9), &RICH), Err(SubmitError::MempoolFull { capacity: 100 }));
        assert_eq!((tiny.len(), tiny.bytes()), (0, 0));
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
    fn queues_give_each_senders_transactions_in_nonce_order_senders_in_arrival_order() {
        let mut p = Mempool::new(10, 10);
        let b0 = p.admit(vtx(2, 0, 1), &RICH).unwrap();
        let a0 = p.admit(vtx(1, 0, 1), &RICH).unwrap();
        let b1 = p.admit(vtx(2, 1, 1), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 1), &RICH).unwrap();
        let got: Vec<Vec<Hash32>> = p.queues().map(|q| q.map(|v| v.hash).collect()).collect();
        assert_eq!(got, vec![vec![b0, b1], vec![a0, a1]]);
        p.evict(&b0);
        let got: Vec<Vec<Hash32>> = p.queues().map(|q| q.map(|v| v.hash).collect()).collect();
        assert_eq!(got, vec![vec![a0, a1]], "an evicted sender's queue is gone");
    }

    #[test]
    fn the_default_minimum_gas_price_is_not_zero() {
        let rules = crate::chain::ChainConfig::default();
        assert!(rules.min_gas_price > Amount::ZERO);
    }
}
