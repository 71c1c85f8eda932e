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
//! Senders are served round-robin in **rounds whose membership is fixed
//! when they start** (attack r9 [1]), each sender's transactions in nonce
//! order, and a round goes on across batches (attack r6 [3]):
//!
//! - a round starts when the last one ends, with the senders the mempool
//!   holds transactions of then, in the mempool's order
//!   ([`Mempool::queues`]); a sender that arrives later (or comes back
//!   after it left) waits for the next round. A round ends once each
//!   member was visited once and none waits for gas (below), so its length
//!   is bounded by its membership: at most one batch per member, and
//!   ⌈members / `max_txs`⌉ batches when batches fill by count;
//! - a batch's first pass visits the round's members not visited yet, in
//!   order. A member leaves the round once the pass took its next
//!   transaction, found it in flight (or gave it up), found it gone from
//!   the mempool, or found its gas credit short of it (below);
//! - **a member whose next transaction did not fit the gas left in the
//!   batch keeps its place at the head of the next batch, within the same
//!   round** (attack r8 [1]): those left out go first in the next batch, in
//!   the order they were left out. The first one visited fits an empty
//!   batch, so each batch serves at least one member, and one left out is
//!   served within as many batches as there are members left out before it;
//! - **each round hands out the gas of its batches as credit** (attack
//!   r11 [1]): a round of `members` members lasts ⌈members / `max_txs`⌉
//!   batches when batches fill by count, so it hands out `budget` gas for
//!   each of them, water-filled over the members' needs (the gas each
//!   lacks for its next transaction): a member needing less than the level
//!   gets what it needs, every other member the level (carried over while
//!   it waits). A member is served when its credit covers its next
//!   transaction's gas limit, and its credit is spent then. So a call that
//!   fits beside the transfers of a round's other members is served in its
//!   first round (not after `gas · members / budget` rounds, quadratic in
//!   the senders in batches); senders whose transactions each take the
//!   whole budget share the round's batches' gas among themselves. Rounds
//!   in which no member's credit would do are skipped (the level is
//!   multiplied up to the smallest need), so each round serves someone.
//!   Without the credit, senders that each send one transaction of the
//!   whole share would take a batch per sender per round, and a client
//!   with ordinary transfers one batch in as many; with it they share the
//!   round's gas, and that client is served about every other batch
//!   (tests `attack_lbft_r9`, `attack_lbft_r11`);
//! - **the queue is work-conserving: room a batch has left is lent**
//!   (attack r12 [1]). A member short of credit whose next transaction
//!   fits the gas left in the batch is served anyway when visited, and
//!   the shortfall (its gas limit less its credit) becomes its **debt**;
//!   after the first and further passes, a second pass looks at up to
//!   `max_txs` of the round's members not visited yet, in round order, and
//!   lends to them the same way. A sender holds credit or debt, never
//!   both; its debt is at most `budget` (one that would owe more is not
//!   lent to), and later rounds' credit repays it before the sender can
//!   be served by credit again (a member's need is its gas limit less its
//!   credit plus its debt). So a batch does not go out (nearly) empty
//!   while a member's transaction that fits it waits only for credit, and
//!   a sender that borrowed cannot take more than one batch's gas ahead of
//!   its share. Rounds in which every member the level leaves short is
//!   held back by its debt (it would owe more than `budget`) are skipped
//!   too (the level is multiplied up until the least of them may borrow),
//!   so lending does not stop for long while such a member waits. A
//!   sender's debt leaves with it when a round starts without it in the
//!   mempool: it comes back as a newcomer, as any new account does.
//!   Without lending, one cheap sender's small need kept the level below
//!   the calls' needs, and 150 share-sized calls beside one transfer
//!   sender took ~250 batches, ~100 of them carrying at most that
//!   transfer; with it they take about one batch each (test
//!   `attack_lbft_r12`);
//! - the walk is bounded: the first pass stops when the batch is full by
//!   count or gas, or after `max_txs` members left out for gas or short of
//!   credit (a large pool is not walked whole every epoch; a batch that
//!   took nothing walks the next round's first members too); further passes take more
//!   transactions, round-robin, from the senders the first pass took from,
//!   until the batch is full.
//!
//! So whatever fills the batches (count or gas) and whoever arrives, every
//! sender with a transaction to propose is served within the current round
//! and at most `S` more, `S` being the most senders the mempool can hold
//! (each round gives it at least `budget / S` credit, or what it needs), and each round lasts
//! at most one batch per member (at most `S`). The
//! mempool's gas-price order decides who goes first within a round, never
//! who is not reached. The rule depends only on the mempool's order and
//! what this queue did; it shapes only this validator's own proposals
//! (every validator checks a batch by its contents, never by how it was
//! cut).
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
use std::collections::{HashMap, HashSet, VecDeque};

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
    /// Senders that arrive after a round started join it (and one left out
    /// for gas keeps it open): the rule before attack r9 [1], under which
    /// new senders each left out for gas keep the round open for ever and
    /// a sender it already served is never proposed again.
    RoundOpenToNewcomers,
    /// Each round hands out one batch's gas as credit, split equally
    /// (`budget / members`), though it lasts ⌈members / `max_txs`⌉ batches:
    /// the rule before attack r11 [1], under which a call behind many
    /// transfer senders waits quadratically in the senders.
    RoundCreditOneBatch,
    /// A batch is cut by credit alone: no room is lent to members short of
    /// credit (the rule before attack r12 [1]), so batches go out nearly
    /// empty while share-sized calls wait for their credit.
    CreditOnly,
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
    /// Its next transaction needs more gas credit than the round gave it:
    /// it waits for the next round.
    Short,
    /// The batch is full (the sender was not looked at).
    Full,
}

/// A batch being cut.
struct Batch<'q> {
    queue: &'q ProposalQueue,
    max_txs: usize,
    budget: u64,
    ignore_order: bool,
    /// Mempool hashes of the transactions taken.
    taken: Vec<Hash32>,
    cut: Cut,
    gas: u64,
}

impl Batch<'_> {
    /// Lends a member short of credit the room left (module docs): takes
    /// its next transaction if it fits the gas left and the shortfall keeps
    /// its debt within `budget`; the shortfall is added to its debt and its
    /// credit is spent. Whether it took it.
    fn lend(
        &mut self,
        q: &mut dyn Iterator<Item = &VerifiedTx>,
        sender: &Address,
        deficit: &mut HashMap<Address, u64>,
        debt: &mut HashMap<Address, u64>,
    ) -> bool {
        let credit = deficit.get(sender).copied().unwrap_or(0);
        let owed = debt.get(sender).copied().unwrap_or(0);
        let before = self.gas;
        // What it may take: its credit and what it may still owe.
        let allowance = credit.saturating_add(self.budget.saturating_sub(owed));
        if !matches!(self.take_one(q, Some(allowance)), Visit::Took) {
            return false;
        }
        let shortfall = self.gas.saturating_sub(before).saturating_sub(credit);
        deficit.remove(sender);
        match owed.checked_add(shortfall) {
            Some(0) => {
                debt.remove(sender);
            }
            Some(o) => {
                debt.insert(*sender, o);
            }
            // Not reached: the shortfall is at most `budget` - `owed`.
            None => {
                debt.insert(*sender, u64::MAX);
            }
        }
        true
    }

    /// Takes the sender's next transaction if it may go (`first`: the
    /// first pass's visit).
    /// `credit`: the sender's gas credit on the first pass's visit (none
    /// on the further passes).
    fn take_one(&mut self, q: &mut dyn Iterator<Item = &VerifiedTx>, credit: Option<u64>) -> Visit {
        let first = credit.is_some();
        loop {
            if self.taken.len() >= self.max_txs {
                return Visit::Full;
            }
            let Some(v) = q.next() else { return Visit::Done };
            if self.queue.in_flight.contains_key(&v.hash) || self.queue.forgotten(&v.hash) {
                // Its successors wait until its epoch is delivered.
                return Visit::Done;
            }
            let limit = v.tx.tx.gas_limit;
            if limit > self.budget
                || self.queue.unexecuted.get(&v.hash).is_some_and(|a| *a >= self.queue.max_unexecuted)
            {
                self.cut.give_up.push(v.hash);
                return Visit::Done;
            }
            if credit.is_some_and(|c| limit > c) {
                return Visit::Short;
            }
            let Some(gas) = self.gas.checked_add(limit).filter(|g| *g <= self.budget) else {
                if self.ignore_order {
                    continue;
                }
                // The rest of this sender waits for a later batch.
                return if first { Visit::NoGas } else { Visit::Done };
            };
            self.gas = gas;
            self.taken.push(v.hash);
            self.cut.txs.push(v.tx.to_bytes());
            return Visit::Took;
        }
    }
}

/// The credit level of a round of `members` members (module docs): the
/// round's gas, `budget` for each of its ⌈`members` / `max_txs`⌉ batches,
/// water-filled over `needs` (the gas each member with a transaction to
/// serve lacks; the other members take the level). If the level is below
/// every need, it is multiplied up to the smallest one (rounds that would
/// serve no one are skipped). At least 1; saturates at `u64::MAX`.
fn round_level(
    needs: &HashMap<Address, u64>,
    members: usize,
    max_txs: usize,
    budget: u64,
    one_batch: bool,
    lend: bool,
) -> u64 {
    let members = members.max(1) as u128;
    let batches = if one_batch { 1 } else { members.div_ceil(max_txs.max(1) as u128) };
    let mut left = u128::from(budget) * batches;
    let mut open = members;
    let mut sorted: Vec<u64> = needs.values().copied().collect();
    sorted.sort_unstable();
    for &n in sorted.iter().filter(|_| !one_batch) {
        if u128::from(n) * open > left {
            break;
        }
        left -= u128::from(n);
        open -= 1;
    }
    // Every member's need met: the level is not reached.
    let level = left.checked_div(open).map_or(u128::from(u64::MAX), |l| l.max(1));
    let level = match sorted.first() {
        Some(&least) if u128::from(least) > level => level * u128::from(least).div_ceil(level),
        _ => level,
    };
    // Members the level leaves short may borrow up to `budget`; if every one
    // of them is held back by its debt (its need beyond the level exceeds
    // `budget`), rounds that would lend to no one are skipped as well: the
    // level is multiplied up until the least such need is within `budget`
    // of it.
    let blocked = sorted.iter().map(|&n| u128::from(n)).filter(|&n| n > level);
    let level = match blocked.clone().min() {
        Some(least) if lend && blocked.clone().all(|n| n - level > u128::from(budget)) => {
            level * (least - u128::from(budget)).div_ceil(level)
        }
        _ => level,
    };
    u64::try_from(level).unwrap_or(u64::MAX)
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
    /// The current round-robin round's members not served yet, in the
    /// order the next batch visits them: those whose next transaction did
    /// not fit an earlier batch's gas first (in the order they were left
    /// out), then the rest in the mempool's order when the round started
    /// (module docs).
    round: VecDeque<Address>,
    /// Gas credit of the senders that hold some (module docs).
    deficit: HashMap<Address, u64>,
    /// Gas debt of the senders that borrowed room short of credit and have
    /// not repaid it yet (module docs): at most `budget` each; a sender
    /// holds credit or debt, never both.
    debt: HashMap<Address, u64>,
    /// The credit the current round gave each member (for the planted bug
    /// that lets newcomers join it).
    #[cfg(feature = "mutants")]
    credit: u64,
    /// The current round's members (for the planted bug that lets
    /// newcomers join it).
    #[cfg(feature = "mutants")]
    members: HashSet<Address>,
    /// First-pass visits of the last cut (the walk's length).
    #[cfg(test)]
    visits: usize,
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
            round: VecDeque::new(),
            deficit: HashMap::new(),
            debt: HashMap::new(),
            #[cfg(test)]
            visits: 0,
            #[cfg(feature = "mutants")]
            credit: 0,
            #[cfg(feature = "mutants")]
            members: HashSet::new(),
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
    /// sender's in nonce order without gaps, senders round-robin in rounds
    /// whose membership is fixed when they start (module docs); what it
    /// takes is in flight from now on.
    pub fn cut<'p>(&mut self, epoch: u64, pool: &'p Mempool, max_txs: usize, budget: u64) -> Cut {
        #[cfg(feature = "mutants")]
        let ignore_order = self.mutation == Some(QueueMutation::SenderOrderIgnored);
        #[cfg(not(feature = "mutants"))]
        let ignore_order = false;
        #[cfg(feature = "mutants")]
        if self.mutation == Some(QueueMutation::RoundRobinFromOldest) {
            self.round.clear();
        }
        #[cfg(feature = "mutants")]
        if self.mutation == Some(QueueMutation::RoundOpenToNewcomers) && !self.round.is_empty() {
            for q in pool.queues() {
                if let Some(a) = q.map(|v| v.sender).next() {
                    if self.members.insert(a) {
                        self.round.push_back(a);
                        let d = self.deficit.entry(a).or_default();
                        *d = d.saturating_add(self.credit);
                    }
                }
            }
        }
        #[cfg(feature = "mutants")]
        let lend = self.mutation != Some(QueueMutation::CreditOnly);
        #[cfg(not(feature = "mutants"))]
        let lend = true;
        let mut round = std::mem::take(&mut self.round);
        let mut deficit = std::mem::take(&mut self.deficit);
        let mut debt = std::mem::take(&mut self.debt);
        let mut b =
            Batch { queue: self, max_txs, budget, ignore_order, taken: Vec::new(), cut: Cut::default(), gas: 0 };
        // First pass: the round's members not visited yet, in the round's
        // order (those left out for gas first). A member served, short of
        // credit or gone from the mempool leaves the round; one left out for
        // gas keeps its place at the head. Once every member left, the round
        // ends and a new one starts with the mempool's pending senders, in
        // its order, each given the round's credit (at most once a batch;
        // those this batch served wait for the next). The walk stops when the
        // batch is full by count or gas, or after `max_txs` senders left out
        // for gas: a large pool is not walked whole every epoch.
        let mut active: Vec<Queue<'p>> = Vec::new();
        let mut visited = HashSet::new();
        let mut left: Vec<Address> = Vec::new();
        let mut kept: Vec<Address> = Vec::new();
        let mut misses = 0usize;
        #[cfg(test)]
        let mut visits = 0usize;
        let mut stop = max_txs == 0;
        let mut new_round = false;
        #[cfg(feature = "mutants")]
        let mut members: Option<(HashSet<Address>, u64)> = None;
        loop {
            while !stop {
                let Some(sender) = round.pop_front() else { break };
                if visited.contains(&sender) {
                    kept.push(sender);
                    continue;
                }
                let mut q = pool.sender_queue(&sender).peekable();
                if q.peek().is_none() {
                    // Left the mempool: nothing to serve.
                    continue;
                }
                #[cfg(test)]
                {
                    visits += 1;
                }
                match b.take_one(&mut q, Some(deficit.get(&sender).copied().unwrap_or(0))) {
                    Visit::Full => {
                        round.push_front(sender);
                        stop = true;
                    }
                    Visit::NoGas => {
                        left.push(sender);
                        misses += 1;
                        stop = misses >= max_txs;
                    }
                    // Short of credit: lent the room left if its transaction
                    // fits and its debt allows (module docs). Otherwise not
                    // served: the new round this batch may start visits it
                    // again (with that round's credit), and it counts toward
                    // the walk's stop like one left out for gas (a cut does
                    // not walk every member).
                    Visit::Short => {
                        if lend && b.lend(&mut pool.sender_queue(&sender), &sender, &mut deficit, &mut debt) {
                            visited.insert(sender);
                            stop |= b.gas >= budget;
                            continue;
                        }
                        misses += 1;
                        stop = misses >= max_txs;
                        continue;
                    }
                    Visit::Done => {
                        deficit.remove(&sender);
                    }
                    Visit::Took => {
                        deficit.remove(&sender);
                        active.push(Box::new(q));
                    }
                }
                visited.insert(sender);
                stop |= b.gas >= budget;
            }
            if new_round || !left.is_empty() || !round.is_empty() {
                break;
            }
            new_round = true;
            if b.taken.is_empty() && b.gas < budget && max_txs > 0 {
                // The walk stopped on members short of credit with nothing
                // taken: the new round's first members are visited too
                // (once: the walk stays within 2 · `max_txs` misses).
                stop = false;
            }
            // The round's credit: the gas of the round's batches
            // (⌈members / `max_txs`⌉ of `budget` each), shared by
            // water-filling among the members' needs (what each lacks for
            // its next transaction): a member needing less than the level
            // gets what it needs, the others the level; if the level is
            // below every need, rounds that would serve no one are skipped
            // (the level is multiplied up to the smallest need).
            round.clear();
            let mut needs: HashMap<Address, u64> = HashMap::new();
            for mut q in pool.queues() {
                let Some(v) = q.next() else { continue };
                round.push_back(v.sender);
                if !b.queue.in_flight.contains_key(&v.hash) && v.tx.tx.gas_limit <= budget {
                    let d = deficit.get(&v.sender).copied().unwrap_or(0);
                    let owed = debt.get(&v.sender).copied().unwrap_or(0);
                    needs.insert(v.sender, v.tx.tx.gas_limit.saturating_sub(d).saturating_add(owed));
                }
            }
            #[cfg(feature = "mutants")]
            let one_batch = b.queue.mutation == Some(QueueMutation::RoundCreditOneBatch);
            #[cfg(not(feature = "mutants"))]
            let one_batch = false;
            let level = round_level(&needs, round.len(), max_txs, budget, one_batch, lend);
            let credit = |a: &Address| needs.get(a).map_or(level, |n| (*n).min(level));
            // A member's credit repays its debt first; debts of senders
            // that left the mempool are dropped with them.
            let mut carried = std::mem::take(&mut deficit);
            let mut owing = std::mem::take(&mut debt);
            for a in &round {
                let d = carried.remove(a).unwrap_or(0);
                let give = credit(a);
                let owed = owing.remove(a).unwrap_or(0);
                let repaid = owed.min(give);
                if owed > repaid {
                    debt.insert(*a, owed - repaid);
                }
                deficit.insert(*a, d.saturating_add(give - repaid));
            }
            #[cfg(feature = "mutants")]
            {
                members = Some((round.iter().copied().collect(), level));
            }
        }
        // Further passes: round-robin over the senders the first one took
        // from. Then the second pass lends the room left to the round's
        // members not visited yet, in round order (module docs).
        let mut full = b.taken.len() >= max_txs;
        while !full && !active.is_empty() {
            active.retain_mut(|q| match b.take_one(q, None) {
                Visit::Full => {
                    full = true;
                    false
                }
                Visit::Took => true,
                Visit::Done | Visit::NoGas | Visit::Short => false,
            });
        }
        drop(active);
        // Second pass (work-conserving, attack r12 [1]): if the batch still
        // has room, the round's members the first pass did not visit, in
        // round order, may borrow: a transaction that fits the gas left is
        // taken though its sender's credit is short, and the shortfall is
        // its sender's debt (at most `budget` in all), repaid from later
        // rounds' credit before it is served by credit again. At most
        // `max_txs` members are looked at; one served leaves the round.
        let mut borrowed: HashSet<Address> = HashSet::new();
        for sender in round.iter().filter(|a| !visited.contains(*a)).take(max_txs) {
            if !lend || b.taken.len() >= max_txs || b.gas >= budget {
                break;
            }
            if b.lend(&mut pool.sender_queue(sender), sender, &mut deficit, &mut debt) {
                borrowed.insert(*sender);
            }
        }
        round.retain(|a| !borrowed.contains(a));
        let Batch { taken, cut, .. } = b;
        #[cfg(feature = "mutants")]
        if let Some((m, credit)) = members {
            self.members = m;
            self.credit = credit;
        }
        // The members this batch visited before, in place (they came before
        // the rest); those left out for gas go first in the next batch, in
        // the order they were left (those left out earlier were visited
        // first).
        for a in kept.into_iter().rev().chain(left.into_iter().rev()) {
            round.push_front(a);
        }
        #[cfg(feature = "mutants")]
        if self.mutation == Some(QueueMutation::GasCutForgotten) && taken.len() < max_txs {
            round.clear();
            deficit.clear();
        }
        self.round = round;
        self.deficit = deficit;
        self.debt = debt;
        #[cfg(test)]
        {
            self.visits = visits;
        }
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

    /// Runs `epochs` cuts of `max_txs` transactions and `budget` gas, each
    /// batch executing whole; `load` admits what it wants before each cut.
    /// Returns each batch's senders (dev key indices) and, per cut, the
    /// first pass's visits.
    fn drive(
        epochs: u64,
        max_txs: usize,
        budget: u64,
        mut load: impl FnMut(u64, &mut Mempool, &HashMap<gridledger_core::Address, u64>),
    ) -> (Vec<Vec<usize>>, Vec<usize>) {
        let mut pool = Mempool::new(1_000, 16);
        let who: HashMap<gridledger_core::Address, usize> = (0..120).map(|i| (dev_key(i).address(), i)).collect();
        let mut q = ProposalQueue::new(100);
        let mut accounts: HashMap<gridledger_core::Address, u64> = HashMap::new();
        let (mut order, mut visits) = (Vec::new(), Vec::new());
        for e in 0..epochs {
            load(e, &mut pool, &accounts);
            let txs: Vec<SignedTransaction> = q.cut(e, &pool, max_txs, budget).txs.iter().map(|r| decode(r)).collect();
            visits.push(q.visits);
            order.push(txs.iter().map(|t| who[&t.sender()]).collect::<Vec<_>>());
            for t in &txs {
                *accounts.entry(t.sender()).or_default() += 1;
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: accounts.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
        }
        (order, visits)
    }

    /// Attack r9 [1]: a round's membership is fixed when it starts. Senders
    /// 0, 1 and 2 have a transfer each, one slot a batch; sender 5 arrives
    /// after the round started, at a higher gas price (first in the
    /// mempool's order): it waits for the round to end.
    #[test]
    fn senders_arriving_after_a_round_started_wait_for_the_next() {
        let (order, _) = drive(5, 1, u64::MAX, |e, pool, _| {
            if e == 0 {
                for from in 0..3 {
                    pool.admit(vtx(from, 0, TRANSFER_GAS, 1), &RICH).unwrap();
                }
            }
            if e == 1 {
                pool.admit(vtx(5, 0, TRANSFER_GAS, 9), &RICH).unwrap();
            }
        });
        assert_eq!(order, vec![vec![0], vec![1], vec![2], vec![5], vec![]]);
    }

    /// Attack r9 [1]: each epoch a new sender sends one transaction of the
    /// whole budget, and sender 1 keeps four transfers (a tenth of the
    /// budget) queued. The new senders take one batch's gas per round among
    /// themselves: sender 1 keeps being served (at least every third
    /// batch), and so does each new sender, in turn.
    #[test]
    fn new_share_sized_senders_share_a_batch_per_round() {
        let budget = 40 * TRANSFER_GAS;
        let mut next = 0u64;
        let (order, _) = drive(24, 10, budget, |e, pool, accounts| {
            let done = accounts.get(&dev_key(1).address()).copied().unwrap_or(0);
            while next < done + 4 {
                pool.admit(vtx(1, next, TRANSFER_GAS, 1), &Account { nonce: done, ..RICH }).unwrap();
                next += 1;
            }
            pool.admit(vtx(10 + e as usize, 0, budget, 1), &RICH).unwrap();
        });
        for (i, w) in order.windows(3).enumerate() {
            assert!(w.iter().any(|b| b.contains(&1)), "batches {i}..{}: sender 1 not served: {order:?}", i + 3);
        }
        let served: Vec<usize> = order.iter().flatten().copied().filter(|&s| s >= 10).collect();
        let mut sorted = served.clone();
        sorted.sort();
        assert_eq!(served, sorted, "new senders served in turn: {order:?}");
        assert!(served.len() >= 4, "{order:?}");
    }

    /// Attack r12 [1]: a member short of credit is lent the room a batch
    /// has left. Sender 0 keeps one transaction of the whole budget queued,
    /// senders 1 and 2 one of three tenths each; a round's credit (one
    /// batch) gives sender 0 four tenths of what it needs. No batch goes out empty; sender
    /// 0 borrows, and its debt (at most the budget, never beside credit) is
    /// repaid from later rounds before it borrows again, so senders 1 and 2
    /// keep being served.
    #[test]
    fn room_left_is_lent_and_the_debt_is_bounded_and_repaid() {
        let budget = 10 * TRANSFER_GAS;
        let mut pool = Mempool::new(64, 16);
        let who: HashMap<gridledger_core::Address, usize> = (0..3).map(|i| (dev_key(i).address(), i)).collect();
        let mut q = ProposalQueue::new(100);
        let mut accounts: HashMap<gridledger_core::Address, u64> = HashMap::new();
        let mut next: HashMap<usize, u64> = HashMap::new();
        let mut order = Vec::new();
        let (mut borrowed, mut repaid) = (0, false);
        for e in 0..40 {
            for (from, gas) in [(0, budget), (1, 3 * TRANSFER_GAS), (2, 3 * TRANSFER_GAS)] {
                let done = accounts.get(&dev_key(from).address()).copied().unwrap_or(0);
                let n = next.entry(from).or_default();
                while *n < done + 1 {
                    pool.admit(vtx(from, *n, gas, 1), &Account { nonce: done, ..RICH }).unwrap();
                    *n += 1;
                }
            }
            let owed = q.debt.get(&dev_key(0).address()).copied().unwrap_or(0);
            let txs: Vec<SignedTransaction> = q.cut(e, &pool, 4, budget).txs.iter().map(|r| decode(r)).collect();
            let now = q.debt.get(&dev_key(0).address()).copied().unwrap_or(0);
            if now > owed {
                borrowed += 1;
                assert_eq!(owed, 0, "epoch {e}: sender 0 borrowed again before it repaid {owed}");
            }
            repaid |= borrowed > 0 && now == 0;
            for (a, d) in &q.debt {
                assert!(*d <= budget, "epoch {e}: debt {d} above the budget");
                assert!(q.deficit.get(a).is_none_or(|c| *c == 0), "epoch {e}: credit beside debt");
            }
            order.push(txs.iter().map(|t| who[&t.sender()]).collect::<Vec<_>>());
            for t in &txs {
                *accounts.entry(t.sender()).or_default() += 1;
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: accounts.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
        }
        assert!(order.iter().all(|b| !b.is_empty()), "an empty batch: {order:?}");
        assert!(borrowed >= 1 && repaid, "sender 0 borrowed {borrowed} times, repaid: {repaid}: {order:?}");
        for s in 0..3 {
            let k = order.iter().filter(|b| b.contains(&s)).count();
            assert!(k >= 10, "sender {s} served in {k} of 40 batches: {order:?}");
        }
    }

    /// Rounds in which every member the level leaves short is held back by
    /// its debt are skipped: the level is multiplied up until the least of
    /// them may borrow (its need beyond the level within the budget).
    #[test]
    fn rounds_lending_to_no_one_are_skipped() {
        let t = TRANSFER_GAS;
        let needs: HashMap<gridledger_core::Address, u64> =
            [(dev_key(0).address(), t), (dev_key(1).address(), 25 * t)].into_iter().collect();
        assert_eq!(round_level(&needs, 2, 4, 10 * t, false, false), 9 * t, "without lending");
        assert_eq!(round_level(&needs, 2, 4, 10 * t, false, true), 18 * t, "25 - 18 <= 10");
        let free: HashMap<gridledger_core::Address, u64> =
            [(dev_key(0).address(), t), (dev_key(1).address(), 10 * t)].into_iter().collect();
        assert_eq!(round_level(&free, 2, 4, 10 * t, false, true), 9 * t, "one may borrow: not skipped");
    }

    /// The low note of attack r9: a batch filled by gas does not walk every
    /// sender. 60 senders with one transaction of 60% of the budget each,
    /// three slots a batch: each batch takes one, visits at most
    /// 1 + `max_txs` senders, and the senders are served in turn.
    #[test]
    fn a_batch_filled_by_gas_walks_a_bounded_number_of_senders() {
        let budget = 10 * TRANSFER_GAS;
        let (order, visits) = drive(60, 3, budget, |e, pool, _| {
            if e == 0 {
                for from in 0..60 {
                    pool.admit(vtx(from, 0, 6 * TRANSFER_GAS, 1), &RICH).unwrap();
                }
            }
        });
        assert_eq!(order, (0..60).map(|s| vec![s]).collect::<Vec<_>>());
        assert!(visits.iter().all(|&v| v <= 4), "first-pass visits per cut: {visits:?}");
    }
}
