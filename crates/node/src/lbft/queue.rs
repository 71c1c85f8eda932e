//! The LBFT proposal queue: what this validator proposes, epoch after
//! epoch, is its mempool (attack r5 [1]).
//!
//! **Invariant: every transaction the mempool holds is in the proposal
//! queue or in flight.** The queue keeps no copy of its own: it is the
//! mempool minus the transactions in flight (proposed for an epoch not
//! delivered yet). So the two cannot disagree about what is pending:
//!
//! - admission is one decision — a transaction the mempool admits (by
//!   eviction or not) is queued, one it evicts or refuses is not (there is
//!   no second bound that could refuse what the mempool took);
//! - an epoch's delivery ends the flight of everything proposed up to it:
//!   what executed left the mempool with its block, and what is still held
//!   (delivered but skipped at execution, or in a batch that lost the
//!   agreement) is proposed again;
//! - retries are bounded, by what this validator saw of the transaction
//!   itself (attack r6 [2]): only a delivery of **this validator's own
//!   accepted batch** that left the transaction unexecuted counts — the
//!   transaction was ordered, in its sender's nonce order, and still did
//!   not execute. A batch that lost the agreement counts nothing (the
//!   transaction had no chance), and copies other validators placed count
//!   nothing (a copy that executes removes it from the mempool; one that
//!   does not cannot hold back this validator's own proposal, since the
//!   node suppresses no delivered-but-unexecuted transaction as a
//!   duplicate). After `max_unexecuted` such deliveries the transaction is
//!   given up — it leaves the mempool too (with every later transaction of
//!   its sender, which could not execute before it), and its sender may
//!   send again;
//! - a batch keeps each sender's nonce order: it never takes a sender's
//!   nonce `k + 1` without `k` — after a transaction of a sender that is in
//!   flight or does not fit the gas share any more, the rest of that
//!   sender waits for a later batch;
//! - a transaction above the gas share is refused at submission
//!   ([`gridledger_ledger::SubmitError::GasLimitAboveShare`]); one found in
//!   the mempool anyway is given up like an exhausted retry.
//!
//! Senders are served round-robin, each sender's transactions in nonce
//! order, and **the round goes on across batches** (attack r6 [3]): a
//! batch's first pass visits the senders not yet served in the current
//! round, in the mempool's order ([`Mempool::queues`]); once it has
//! served them all, the round ends and the pass goes on from the
//! mempool's first sender in a new one. A sender counts as served once
//! the first pass took its next transaction or found it in flight (or gave
//! it up). **A sender whose next transaction did not fit the gas left
//! stays unserved and goes first in the next batch** (attack r8 [1]): the
//! next batch's first pass visits those senders before any other, in the
//! order they were left out, and the round does not end while one of them
//! waits. So whatever fills a batch (count or gas), each batch serves at
//! least one sender the round has not served (the first one visited fits
//! an empty batch): a round lasts at most one batch per sender it serves,
//! and ⌈senders / `max_txs`⌉ batches when batches fill by count; a sender
//! left out for gas is served within as many batches as there are
//! senders left out before it (they keep their order, and those left out
//! later queue behind them). The mempool's gas-price order
//! decides who goes first within a round, never who is not reached: a
//! sender that keeps one transaction of a whole gas share queued at a
//! higher price takes one batch per round, not every batch. The rule
//! depends only on the mempool's order and what this queue did; it
//! shapes only this validator's own proposals (every validator checks a
//! batch by its contents, never by how it was cut).
//!
//! A transaction this validator's own delivered batch left unexecuted
//! because its sender cannot pay for it (balance below value and gas at
//! its turn) is evicted at once with its sender's later transactions
//! ([`ProposalQueue::cannot_pay`], attack r8 [2]), as a block builder's
//! rejection evicts it under PBFT; the `max_unexecuted` bound is for the
//! other reasons (a predecessor that never arrived, say). Eviction is this
//! validator's mempool policy, not block content.
use gridledger_core::{Address, Hash32};
use gridledger_ledger::mempool::Mempool;
use gridledger_ledger::VerifiedTx;
use std::collections::{HashMap, HashSet};

/// Planted bugs of the proposal queue (test-only, behind the `mutants`
/// feature), caught by `tests/mutants.rs`.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueMutation {
    /// A batch cut by gas skips the transaction that does not fit and
    /// takes the same sender's later ones (nonce `k + 1` without `k`).
    SenderOrderIgnored,
    /// A transaction proposed once is never proposed again, even if its
    /// epoch's delivery left it in the mempool (the rule before attack r5).
    DeliveredForgotten,
    /// Every proposal counts toward giving a transaction up, also one in a
    /// batch that lost the agreement (the rule before attack r6).
    EveryProposalCounted,
    /// Every batch's round-robin starts from the mempool's first sender
    /// (the rule before attack r6).
    RoundRobinFromOldest,
    /// A sender whose next transaction did not fit the batch's gas is not
    /// visited first in the next batch, and the round ends at every batch
    /// not full by count (the rule before attack r8 [1]).
    GasCutForgotten,
}

/// One cut batch: the transactions (encoded) and those given up.
#[derive(Debug, Default)]
pub struct Cut {
    pub txs: Vec<Vec<u8>>,
    /// Mempool hashes of transactions to remove from the mempool (with the
    /// later ones of their senders): left unexecuted too often, or above
    /// the share.
    pub give_up: Vec<Hash32>,
}

/// One sender's transactions in nonce order, from the mempool.
type Queue<'p> = Box<dyn Iterator<Item = &'p VerifiedTx> + 'p>;

/// What the first pass found at one sender.
enum Visit {
    /// Took its next transaction.
    Took,
    /// Nothing to take now: its next transaction is in flight, given up,
    /// or it has no more (or, after the first, one did not fit).
    Done,
    /// Its next transaction did not fit the gas left: it waits whole.
    NoGas,
    /// The batch is full (the sender was not looked at).
    Full,
}

/// See the module docs.
#[derive(Debug)]
pub struct ProposalQueue {
    /// Mempool hash → the epoch it was last proposed for.
    in_flight: HashMap<Hash32, u64>,
    /// Mempool hash → deliveries of this validator's own accepted batch
    /// that left it unexecuted.
    unexecuted: HashMap<Hash32, u32>,
    max_unexecuted: u32,
    /// Senders the current round-robin round has served (module docs).
    served: HashSet<Address>,
    /// Senders whose next transaction did not fit the last batch's gas,
    /// in the order it left them: the next batch visits them first.
    waiting: Vec<Address>,
    #[cfg(feature = "mutants")]
    pub mutation: Option<QueueMutation>,
    #[cfg(feature = "mutants")]
    forgotten: std::collections::HashSet<Hash32>,
}

impl ProposalQueue {
    /// A queue giving up a transaction once `max_unexecuted` deliveries of
    /// this validator's own accepted batch left it unexecuted (at least 1).
    pub fn new(max_unexecuted: u32) -> Self {
        Self {
            in_flight: HashMap::new(),
            unexecuted: HashMap::new(),
            max_unexecuted: max_unexecuted.max(1),
            served: HashSet::new(),
            waiting: Vec::new(),
            #[cfg(feature = "mutants")]
            mutation: None,
            #[cfg(feature = "mutants")]
            forgotten: Default::default(),
        }
    }

    /// Transactions proposed for epochs not delivered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether `h` (a mempool hash) is in flight.
    pub fn is_in_flight(&self, h: &Hash32) -> bool {
        self.in_flight.contains_key(h)
    }

    /// Whether the mempool may hold something to propose: more
    /// transactions than are in flight. (Cheap; a cut may still come out
    /// empty when every sender waits behind a transaction in flight.)
    pub fn may_have_work(&self, pool: &Mempool) -> bool {
        pool.len() > self.in_flight.len()
    }

    /// The batch for epoch `epoch` from `pool`: at most `max_txs`
    /// transactions, their gas limits summing to at most `budget`, each
    /// sender's in nonce order without gaps, senders round-robin with the
    /// round going on across batches (module docs); what it takes is in
    /// flight from now on.
    pub fn cut<'p>(&mut self, epoch: u64, pool: &'p Mempool, max_txs: usize, budget: u64) -> Cut {
        let mut cut = Cut::default();
        let mut taken = Vec::new();
        let mut txs = Vec::new();
        let mut gas = 0u64;
        #[cfg(feature = "mutants")]
        let ignore_order = self.mutation == Some(QueueMutation::SenderOrderIgnored);
        #[cfg(not(feature = "mutants"))]
        let ignore_order = false;
        #[cfg(feature = "mutants")]
        if self.mutation == Some(QueueMutation::RoundRobinFromOldest) {
            self.served.clear();
        }
        let mut served = std::mem::take(&mut self.served);
        let mut waiting = std::mem::take(&mut self.waiting);
        #[cfg(feature = "mutants")]
        let gas_cut_forgotten = self.mutation == Some(QueueMutation::GasCutForgotten);
        #[cfg(not(feature = "mutants"))]
        let gas_cut_forgotten = false;
        if gas_cut_forgotten {
            waiting.clear();
        }
        // Takes the sender's next transaction if it may go.
        let mut take_one = |q: &mut dyn Iterator<Item = &VerifiedTx>, first: bool| loop {
            if taken.len() >= max_txs {
                return Visit::Full;
            }
            let Some(v) = q.next() else { return Visit::Done };
            if self.in_flight.contains_key(&v.hash) || self.forgotten(&v.hash) {
                // Its successors wait until its epoch is delivered.
                return Visit::Done;
            }
            let limit = v.tx.tx.gas_limit;
            if limit > budget || self.unexecuted.get(&v.hash).is_some_and(|a| *a >= self.max_unexecuted) {
                cut.give_up.push(v.hash);
                return Visit::Done;
            }
            if gas.saturating_add(limit) > budget {
                if ignore_order {
                    continue;
                }
                // The rest of this sender waits for a later batch.
                return if first { Visit::NoGas } else { Visit::Done };
            }
            gas += limit;
            taken.push(v.hash);
            txs.push(v.tx.to_bytes());
            return Visit::Took;
        };
        // First pass: the senders whose next transaction did not fit the
        // last batch (in the order they were left), then one transaction
        // from each sender the round has not served, in the mempool's
        // order. Once they are all served the round ends and a new one goes
        // on from the first sender (those this pass visited wait for the
        // next batch); while one of them waits for gas, the round goes on.
        // Only until the batch is full: a large pool is not walked whole
        // every epoch.
        let mut active: Vec<Queue<'p>> = Vec::new();
        let mut visited = HashSet::new();
        let mut left = Vec::new();
        let mut full = false;
        let mut visit = |sender: Address,
                         mut q: Queue<'p>,
                         visited: &mut HashSet<Address>,
                         left: &mut Vec<Address>,
                         served: &mut HashSet<Address>| {
            visited.insert(sender);
            match take_one(&mut q, true) {
                Visit::Full => return true,
                Visit::NoGas => left.push(sender),
                Visit::Done => {
                    served.insert(sender);
                }
                Visit::Took => {
                    served.insert(sender);
                    active.push(q);
                }
            }
            false
        };
        for sender in waiting.drain(..) {
            if !full && !served.contains(&sender) && pool.sender_queue(&sender).next().is_some() {
                full = visit(sender, Box::new(pool.sender_queue(&sender)), &mut visited, &mut left, &mut served);
            }
            if full {
                // Still waiting, in the same order.
                left.push(sender);
            }
        }
        for new_round in [false, true] {
            if full || (new_round && !left.is_empty() && !gas_cut_forgotten) {
                break;
            }
            if new_round {
                served.clear();
            }
            for q in pool.queues() {
                let mut q = q.peekable();
                let Some(sender) = q.peek().map(|v| v.sender) else { continue };
                if served.contains(&sender) || visited.contains(&sender) {
                    continue;
                }
                if visit(sender, Box::new(q), &mut visited, &mut left, &mut served) {
                    full = true;
                    break;
                }
            }
        }
        // Further passes: round-robin over the senders the first one took from.
        while !full && !active.is_empty() {
            active.retain_mut(|q| match take_one(q, false) {
                Visit::Full => {
                    full = true;
                    false
                }
                Visit::Took => true,
                Visit::Done | Visit::NoGas => false,
            });
        }
        // Senders that left the mempool are dropped once they could
        // outnumber those it holds (a round that lasts keeps no garbage).
        if served.len() > pool.len() {
            let present: HashSet<Address> = pool.queues().filter_map(|mut q| q.next().map(|v| v.sender)).collect();
            served.retain(|a| present.contains(a));
        }
        self.served = served;
        self.waiting = left;
        cut.txs = txs;
        for h in taken {
            self.in_flight.insert(h, epoch);
            #[cfg(feature = "mutants")]
            if self.mutation == Some(QueueMutation::DeliveredForgotten) {
                self.forgotten.insert(h);
            }
            #[cfg(feature = "mutants")]
            if self.mutation == Some(QueueMutation::EveryProposalCounted) {
                *self.unexecuted.entry(h).or_default() += 1;
            }
        }
        cut
    }

    #[cfg(feature = "mutants")]
    fn forgotten(&self, h: &Hash32) -> bool {
        self.forgotten.contains(h)
    }

    #[cfg(not(feature = "mutants"))]
    fn forgotten(&self, _h: &Hash32) -> bool {
        false
    }

    /// Epoch `epoch` is delivered with this validator's own batch among
    /// the accepted ones (and executed; `pool` is the mempool after its
    /// block): everything proposed for it or earlier is out of flight —
    /// proposed again if the mempool still holds it, and what it proposed
    /// for this epoch and the mempool still holds counts one delivery
    /// without execution toward giving it up.
    pub fn delivered(&mut self, epoch: u64, pool: &Mempool) {
        self.end_flight(epoch, pool, true);
    }

    /// Epoch `epoch` is delivered without this validator's batch (it lost
    /// the agreement, or was never proposed): everything proposed for it or
    /// earlier is out of flight, proposed again if the mempool still holds
    /// it; nothing counts toward giving it up.
    pub fn delivered_without_own_batch(&mut self, epoch: u64, pool: &Mempool) {
        self.end_flight(epoch, pool, false);
    }

    fn end_flight(&mut self, epoch: u64, pool: &Mempool, accepted: bool) {
        #[cfg(feature = "mutants")]
        let accepted = accepted && self.mutation != Some(QueueMutation::EveryProposalCounted);
        let unexecuted = &mut self.unexecuted;
        self.in_flight.retain(|h, at| {
            if *at > epoch {
                return true;
            }
            if accepted && *at == epoch && pool.contains(h) {
                *unexecuted.entry(*h).or_default() += 1;
            }
            false
        });
        // The counts of transactions that left the mempool are dropped.
        unexecuted.retain(|h, _| pool.contains(h));
    }

    /// Epoch `epoch` delivered this validator's own batch, and execution
    /// left `h` unexecuted because its sender cannot pay for it (its
    /// balance does not cover value and gas at its turn, in its sender's
    /// nonce order): whether this validator proposed `h` for that epoch,
    /// that is, in the accepted batch. If so it is forgotten here, and the
    /// caller evicts it from the mempool at once with its sender's later
    /// transactions (attack r8 [2]), as a block builder's rejection does
    /// under PBFT: proposed again it would only take gas share it never
    /// pays for. Only the sender's own transactions drain its account (the
    /// mempool admitted this one against its committed balance): it sent
    /// another of the same nonce, or spent more, elsewhere.
    pub fn cannot_pay(&mut self, epoch: u64, h: &Hash32) -> bool {
        if self.in_flight.get(h) != Some(&epoch) {
            return false;
        }
        self.forget(h);
        true
    }

    /// Given-up transactions left the mempool: forget them.
    pub fn forget(&mut self, h: &Hash32) {
        self.in_flight.remove(h);
        self.unexecuted.remove(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_core::Amount;
    use gridledger_ledger::devnet::{dev_key, TRANSFER_GAS};
    use gridledger_ledger::state::Account;
    use gridledger_ledger::{SignedTransaction, Transaction, TxKind, VerifiedTx};

    const RICH: Account = Account { balance: Amount(1_000_000_000_000), nonce: 0 };

    fn vtx(from: usize, nonce: u64, gas: u64, price: u128) -> VerifiedTx {
        Transaction {
            chain_id: 1,
            sender: dev_key(from).public(),
            nonce,
            gas_limit: gas,
            gas_price: Amount(price),
            kind: TxKind::Transfer { to: dev_key(9).address(), amount: Amount(1) },
        }
        .sign(&dev_key(from))
        .check_stateless(1, u64::MAX)
        .unwrap()
    }

    fn decode(raw: &[u8]) -> SignedTransaction {
        SignedTransaction::from_bytes(raw, 1 << 16).unwrap()
    }

    /// Each sender's nonces in a batch follow on from its account's
    /// nonce and its transactions in flight, without gaps.
    fn keeps_sender_order(batch: &[Vec<u8>], next: &mut HashMap<gridledger_core::Address, u64>) -> bool {
        batch.iter().map(|r| decode(r)).all(|t| {
            let n = next.entry(t.sender()).or_insert(t.tx.nonce);
            let ok = *n == t.tx.nonce;
            *n += 1;
            ok
        })
    }

    /// The invariant, run as the engine runs the queue: every epoch cuts a
    /// batch, is delivered and executes what follows on from its sender's
    /// account nonce — except one delivery of `skip_once`, not executed
    /// (as a copy delivered ahead of its predecessor is skipped). Between
    /// epochs every transaction the mempool holds is in flight or
    /// proposable; each batch keeps each sender's nonce order; everything
    /// held — the heavy one a gas cut left behind with its successors, the
    /// one admitted by eviction, the one skipped once — is proposed and
    /// executed within a few epochs; the evicted one never is.
    #[test]
    fn every_transaction_the_mempool_holds_is_proposed() {
        let budget = 4 * TRANSFER_GAS;
        let mut pool = Mempool::new(8, 16);
        // Sender 0: a heavy nonce 0 (3 units), then two light ones.
        pool.admit(vtx(0, 0, 3 * TRANSFER_GAS, 2), &RICH).unwrap();
        pool.admit(vtx(0, 1, TRANSFER_GAS, 2), &RICH).unwrap();
        pool.admit(vtx(0, 2, TRANSFER_GAS, 2), &RICH).unwrap();
        // Sender 1: one of 2 units; sender 2 fills the pool cheaply.
        pool.admit(vtx(1, 0, 2 * TRANSFER_GAS, 2), &RICH).unwrap();
        for k in 0..4 {
            pool.admit(vtx(2, k, TRANSFER_GAS, 1), &RICH).unwrap();
        }
        // Sender 3 outbids sender 2: its last transaction is evicted.
        let evicted = vtx(2, 3, TRANSFER_GAS, 1).hash;
        let skip_once = pool.admit(vtx(3, 0, TRANSFER_GAS, 3), &RICH).unwrap();
        assert!(!pool.contains(&evicted) && pool.contains(&skip_once));
        let all: Vec<Hash32> = pool.queues().flatten().map(|v| v.hash).collect();
        let mut q = ProposalQueue::new(100);
        let mut accounts: HashMap<gridledger_core::Address, u64> = HashMap::new();
        let mut skipped = false;
        let mut proposed = std::collections::HashSet::new();
        for e in 0..12 {
            let cut = q.cut(e, &pool, 3, budget);
            assert!(cut.give_up.is_empty());
            let txs: Vec<SignedTransaction> = cut.txs.iter().map(|r| decode(r)).collect();
            let gas: u64 = txs.iter().map(|t| t.tx.gas_limit).sum();
            assert!(gas <= budget && txs.len() <= 3, "epoch {e}: {gas} gas in {} txs", txs.len());
            let mut next = HashMap::new();
            assert!(keeps_sender_order(&cut.txs, &mut next), "epoch {e}: a batch keeps each sender's nonce order");
            for t in &txs {
                proposed.insert(t.hash());
                if t.hash() == skip_once && !skipped {
                    skipped = true;
                    continue;
                }
                let n = accounts.entry(t.sender()).or_default();
                if *n == t.tx.nonce {
                    *n += 1;
                }
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: accounts.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
            assert_eq!(q.in_flight(), 0, "delivery ends the flight");
        }
        assert!(skipped);
        assert!(pool.is_empty(), "{} transactions still held", pool.len());
        for h in &all {
            assert!(proposed.contains(h), "{h} held by the mempool was never proposed");
        }
        assert!(!proposed.contains(&evicted), "the evicted transaction is not proposed");
    }

    /// A gas cut never takes a sender's nonce `k + 1` without `k`.
    #[test]
    fn a_gas_cut_leaves_the_rest_of_the_sender_for_later() {
        let mut pool = Mempool::new(16, 16);
        pool.admit(vtx(1, 0, 3 * TRANSFER_GAS, 1), &RICH).unwrap();
        pool.admit(vtx(0, 0, 3 * TRANSFER_GAS, 1), &RICH).unwrap();
        pool.admit(vtx(0, 1, TRANSFER_GAS, 1), &RICH).unwrap();
        let mut q = ProposalQueue::new(10);
        let cut = q.cut(0, &pool, 10, 4 * TRANSFER_GAS);
        let got: Vec<(u64, u64)> =
            cut.txs.iter().map(|r| decode(r)).map(|t| (t.tx.nonce, t.tx.gas_limit / TRANSFER_GAS)).collect();
        assert_eq!(got, vec![(0, 3)], "sender 1's heavy one; sender 0 waits whole");
        // Nothing more while the first batch is in flight for sender 1;
        // sender 0 goes next, in order.
        let cut = q.cut(1, &pool, 10, 4 * TRANSFER_GAS);
        let got: Vec<u64> = cut.txs.iter().map(|r| decode(r).tx.nonce).collect();
        assert_eq!(got, vec![0, 1]);
    }

    /// A transaction in flight holds back its sender's later ones; its
    /// delivery without execution puts it back; retries are bounded, and a
    /// transaction above the share is given up.
    #[test]
    fn delivery_puts_back_what_the_mempool_still_holds_and_retries_are_bounded() {
        let mut pool = Mempool::new(16, 16);
        let a0 = pool.admit(vtx(0, 0, TRANSFER_GAS, 1), &RICH).unwrap();
        pool.admit(vtx(0, 1, TRANSFER_GAS, 1), &RICH).unwrap();
        let mut q = ProposalQueue::new(3);
        let first = q.cut(0, &pool, 1, 10 * TRANSFER_GAS);
        assert_eq!(first.txs.len(), 1);
        assert!(q.is_in_flight(&a0));
        assert!(q.cut(1, &pool, 10, 10 * TRANSFER_GAS).txs.is_empty(), "nonce 1 waits behind nonce 0 in flight");
        q.delivered(0, &pool);
        for e in 1..3 {
            let again = q.cut(e, &pool, 1, 10 * TRANSFER_GAS);
            assert_eq!(again.txs, first.txs, "epoch {e}: still held, proposed again");
            q.delivered(e, &pool);
        }
        let cut = q.cut(3, &pool, 1, 10 * TRANSFER_GAS);
        assert!(cut.txs.is_empty());
        assert_eq!(cut.give_up, vec![a0], "three attempts, then given up");
        let heavy = pool.admit(vtx(1, 0, 11 * TRANSFER_GAS, 1), &RICH).unwrap();
        assert_eq!(q.cut(4, &pool, 10, 10 * TRANSFER_GAS).give_up, vec![a0, heavy]);
    }

    /// Only a delivery of this validator's own accepted batch that left
    /// the transaction unexecuted counts toward giving it up: proposals in
    /// batches that lost the agreement count nothing, however many.
    #[test]
    fn only_own_accepted_deliveries_without_execution_count_toward_giving_up() {
        let mut pool = Mempool::new(16, 16);
        let a0 = pool.admit(vtx(0, 0, TRANSFER_GAS, 1), &RICH).unwrap();
        let mut q = ProposalQueue::new(2);
        for e in 0..10 {
            let cut = q.cut(e, &pool, 10, 10 * TRANSFER_GAS);
            assert!(cut.give_up.is_empty() && cut.txs.len() == 1, "epoch {e}: lost batches count nothing");
            q.delivered_without_own_batch(e, &pool);
        }
        for e in 10..12 {
            assert_eq!(q.cut(e, &pool, 10, 10 * TRANSFER_GAS).txs.len(), 1);
            q.delivered(e, &pool);
        }
        let cut = q.cut(12, &pool, 10, 10 * TRANSFER_GAS);
        assert!(cut.txs.is_empty());
        assert_eq!(cut.give_up, vec![a0], "two accepted deliveries without execution, then given up");
    }

    /// The round-robin goes on across batches: five senders with full
    /// queues, two slots a batch — each batch takes the next two senders
    /// of the round, wrapping around, so every sender is proposed within
    /// ⌈5 / 2⌉ = 3 epochs of the last time.
    #[test]
    fn the_round_robin_goes_on_across_batches() {
        let mut pool = Mempool::new(64, 16);
        for from in 0..5 {
            for n in 0..8 {
                pool.admit(vtx(from, n, TRANSFER_GAS, 1), &RICH).unwrap();
            }
        }
        let who: HashMap<gridledger_core::Address, usize> = (0..5).map(|i| (dev_key(i).address(), i)).collect();
        let mut q = ProposalQueue::new(100);
        let mut accounts: HashMap<gridledger_core::Address, u64> = HashMap::new();
        let mut order = Vec::new();
        for e in 0..6 {
            let txs: Vec<SignedTransaction> = q.cut(e, &pool, 2, u64::MAX).txs.iter().map(|r| decode(r)).collect();
            order.push(txs.iter().map(|t| who[&t.sender()]).collect::<Vec<_>>());
            for t in &txs {
                *accounts.entry(t.sender()).or_default() += 1;
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: accounts.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
        }
        assert_eq!(order, vec![vec![0, 1], vec![2, 3], vec![4, 0], vec![1, 2], vec![3, 4], vec![0, 1]]);
    }

    /// Attack r8 [1]: every transaction has a gas limit of the whole
    /// budget. Sender 0 (gas price 2, first in the mempool's order) keeps
    /// two queued; senders 1, 2 and 3 (price 1) have one each. Each batch
    /// holds one transaction; those left out for gas go first in the next
    /// batches, in their order, and sender 0 waits for the round to end:
    /// 0, 1, 2, 3, then 0 again — not 0 in every batch.
    #[test]
    fn senders_left_out_for_gas_go_first_in_the_next_batches() {
        let budget = 4 * TRANSFER_GAS;
        let mut pool = Mempool::new(64, 16);
        for from in 1..4 {
            pool.admit(vtx(from, 0, budget, 1), &RICH).unwrap();
        }
        let who: HashMap<gridledger_core::Address, usize> = (0..4).map(|i| (dev_key(i).address(), i)).collect();
        let mut q = ProposalQueue::new(100);
        let mut accounts: HashMap<gridledger_core::Address, u64> = HashMap::new();
        let zero = dev_key(0).address();
        let mut next = 0u64;
        let mut order = Vec::new();
        for e in 0..6 {
            while next < accounts.get(&zero).copied().unwrap_or(0) + 2 {
                let acct = Account { nonce: accounts.get(&zero).copied().unwrap_or(0), ..RICH };
                pool.admit(vtx(0, next, budget, 2), &acct).unwrap();
                next += 1;
            }
            let txs: Vec<SignedTransaction> = q.cut(e, &pool, 10, budget).txs.iter().map(|r| decode(r)).collect();
            order.push(txs.iter().map(|t| who[&t.sender()]).collect::<Vec<_>>());
            for t in &txs {
                *accounts.entry(t.sender()).or_default() += 1;
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: accounts.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
        }
        assert_eq!(order, vec![vec![0], vec![1], vec![2], vec![3], vec![0], vec![0]]);
    }

    /// Attack r8 [2]: only a transaction this validator proposed for the
    /// delivered epoch counts as its own batch's unpayable one (and is
    /// forgotten, for the caller to evict).
    #[test]
    fn cannot_pay_covers_only_what_this_validator_proposed_for_the_epoch() {
        let mut pool = Mempool::new(16, 16);
        let a = pool.admit(vtx(0, 0, TRANSFER_GAS, 1), &RICH).unwrap();
        let b = pool.admit(vtx(1, 0, TRANSFER_GAS, 1), &RICH).unwrap();
        let mut q = ProposalQueue::new(100);
        assert_eq!(q.cut(3, &pool, 1, 10 * TRANSFER_GAS).txs.len(), 1);
        let (taken, other) = if q.is_in_flight(&a) { (a, b) } else { (b, a) };
        assert!(!q.cannot_pay(2, &taken), "proposed for another epoch");
        assert!(!q.cannot_pay(3, &other), "not proposed by this validator");
        assert!(q.cannot_pay(3, &taken));
        assert!(!q.is_in_flight(&taken), "forgotten");
    }
}
