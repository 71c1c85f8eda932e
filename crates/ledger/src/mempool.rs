//! The mempool: verified transactions waiting for a block, per sender in
//! nonce order with no gaps, bounded in total and per sender.
//!
//! The pool is bounded in transactions (`capacity`) and in encoded bytes
//! (`max_bytes`, [`DEFAULT_MEMPOOL_BYTES`] unless set): 200,000 transactions
//! of 64 KiB would otherwise be 13 GB.
//!
//! Block order ([`Mempool::walk`], attack r13 [7]): the highest gas price
//! first, each sender's transactions in nonce order (a sender's next
//! transaction competes at its own price once the previous one is placed),
//! and between equal prices the one that arrived first (every admitted
//! transaction gets the next arrival number). Before, blocks were filled
//! round-robin over senders in order of their first arrival: accounts that
//! kept one transaction queued at all times kept their places and filled
//! every block, and a later sender was never reached whatever it paid.
//! Senders whose next transaction a block skipped because its gas limit no
//! longer fitted ([`Mempool::serve_first`], attack r12 [3]) come before
//! that order until that transaction is included; only that transaction
//! is served so, not the sender's next one while it is excluded on a
//! pipelined height (attack r19 [2]). A block's duty lane goes before
//! both (attack r21 [2], `fill_block`), except at every other height,
//! where the first of them goes first if the lane's gas would not leave it
//! room (attack r23 [3]).
//!
//! When the pool is full a transaction that pays a strictly higher gas price
//! than the cheapest pending one of another sender takes its place. A
//! sender's queue is priced by its *cheapest* transaction, and evicting it
//! removes its cheapest *suffix*: the last transaction at that price and
//! every later one (removing it alone would leave a nonce gap that strands
//! the later ones; they cannot execute before it anyway). So a dear last
//! transaction does not shield a queue of cheap ones. This agrees with the
//! block order: a suffix from the sender's cheapest transaction on cannot
//! be placed before that transaction, so it is what the order reaches last
//! among the sender's. A sender of the incoming transaction is never a
//! victim (that could remove its own predecessor). Between equally cheap
//! senders the one whose suffix arrived last goes first (the block order
//! serves it last), then the lowest address, so eviction is deterministic
//! across validators. As many suffixes go as are needed to fit the newcomer
//! in count and bytes; if outbidding every cheaper sender is not enough, it
//! is refused with [`SubmitError::MempoolFull`] and nothing changes.
//!
//! Replace-by-fee (attack r16 [2]): a transaction with the nonce of one of
//! its sender's pending transactions replaces it if it pays at least
//! [`REPLACE_BUMP_PERCENT`] per cent more gas price (and strictly more),
//! so a payer outbid by dearer traffic can re-price instead of waiting for
//! its deadline, while re-pricing in steps too small to matter costs a
//! tenth of the price each time. The replacement takes the replaced one's
//! place in its sender's nonce order and a new arrival number; the
//! sender's balance must cover its queue with the new transaction's
//! maximum cost instead of the old one's; a larger replacement evicts
//! cheaper senders' suffixes for the bytes it adds, as an admission does,
//! or is refused and nothing changes. Every index (hash, deadline, block
//! order, eviction order) follows. The serve-first place
//! ([`Mempool::serve_first`]) of the replaced transaction is kept only if
//! the replacement's gas limit is no smaller (attack r18 [3]: a skipped
//! block-sized transaction replaced by a small transfer kept its place
//! before the price order, so any number of senders bought that place at
//! the lowest price); a smaller one competes in the price order.
//!
//! Duty lane (attack r16 [6]): a transaction admitted with
//! [`Mempool::admit_in_lane`] (`duty`, decided by the chain's contracts,
//! never by the sender, see [`crate::NativeContract::duty`]) is offered to
//! the block's bounded duty lane first ([`Mempool::lane`]), with the
//! ordinary transactions its sender has pending ahead of its duties
//! (attack r18 [2]), however many (attack r19 [1]); it competes in the
//! ordinary order as well. The lane's gas is shared out per node, the
//! node's carried calls counting against its own share (attack r21 [1]),
//! and filled progressively: what one node cannot use goes to the others
//! (attack r23 [1] [2]).
//!
//! Each entry keeps the transaction's hash and sender ([`VerifiedTx`]), so
//! [`Mempool::walk`] and [`Mempool::lane`] hand them out without hashing
//! or recovering a signer per candidate.

use gridledger_core::{Address, Amount, Hash32};
use std::cmp::Reverse;
use std::collections::{btree_map, btree_set, BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use crate::error::SubmitError;
use crate::state::Account;
use crate::tx::{SignedTransaction, VerifiedTx};

/// Byte budget of a pool made by [`Mempool::new`].
pub const DEFAULT_MEMPOOL_BYTES: usize = 256 << 20;

/// How much more gas price (per cent of the pending one's) a replacement
/// must pay ([`Mempool::admit`], replace-by-fee).
pub const REPLACE_BUMP_PERCENT: u128 = 10;

/// The least gas price that replaces a pending transaction paying
/// `pending`: [`REPLACE_BUMP_PERCENT`] per cent more, rounded up, and at
/// least one more.
pub fn replacement_min(pending: Amount) -> Amount {
    let bumped = pending.0.saturating_mul(100 + REPLACE_BUMP_PERCENT).div_ceil(100);
    Amount(bumped.max(pending.0.saturating_add(1)))
}

/// A pending transaction, its arrival number and whether it is a duty of
/// the chain (offered to the block's duty lane first).
struct Queued {
    v: VerifiedTx,
    seq: u64,
    duty: bool,
}

/// Where a transaction stands in block order: highest gas price first,
/// then earliest arrival (smaller keys first).
type OrderKey = (Reverse<Amount>, u64);

fn order_key(q: &Queued) -> OrderKey {
    (Reverse(q.v.tx.tx.gas_price), q.seq)
}

#[derive(Default)]
struct SenderQueue {
    txs: BTreeMap<u64, Queued>,
    /// Sum of the queued transactions' maximum costs.
    reserved: Amount,
    /// (gas price, nonce) of every queued transaction.
    prices: BTreeSet<(Amount, u64)>,
    /// The nonces of the queued transactions that are duties.
    duties: BTreeSet<u64>,
}

impl SenderQueue {
    fn insert(&mut self, nonce: u64, q: Queued) {
        self.prices.insert((q.v.tx.tx.gas_price, nonce));
        if q.duty {
            self.duties.insert(nonce);
        }
        self.txs.insert(nonce, q);
    }

    fn count_out(&mut self, nonce: u64, q: &Queued) {
        self.prices.remove(&(q.v.tx.tx.gas_price, nonce));
        if q.duty {
            self.duties.remove(&nonce);
        }
    }

    /// The cheapest price and the nonce of the last transaction at it: where
    /// an eviction would cut.
    fn cheapest_suffix(&self) -> Option<(Amount, u64)> {
        let (p, _) = self.prices.first()?;
        self.prices.range((*p, 0)..=(*p, u64::MAX)).next_back().copied()
    }
}

/// Encoded size of a transaction, as the byte budget counts it.
fn tx_size(v: &VerifiedTx) -> usize {
    borsh::object_length(&v.tx).unwrap_or(usize::MAX)
}

/// Eviction candidates, first victim first: cheapest price, then the
/// suffix that arrived last, then the lowest address.
type TailKey = (Amount, Reverse<u64>, Address);

/// Pending transactions.
pub struct Mempool {
    capacity: usize,
    per_sender: usize,
    senders: HashMap<Address, SenderQueue>,
    by_hash: HashMap<Hash32, (Address, u64)>,
    /// Each sender's next transaction in block order (its lowest nonce).
    heads: BTreeSet<(OrderKey, Address)>,
    /// Senders served before `heads`' order, by rank, with the nonce of the
    /// transaction that was skipped for gas ([`Mempool::serve_first`]).
    first: BTreeMap<u64, (Address, u64)>,
    first_rank: HashMap<Address, u64>,
    /// The next rank given at the front of `first` (counts down).
    front: u64,
    /// The next arrival number.
    seq: u64,
    len: usize,
    max_bytes: usize,
    bytes: usize,
    /// Each sender's cheapest suffix, by [`TailKey`]: the eviction
    /// candidates.
    tails: BTreeSet<TailKey>,
    evicted: u64,
    /// The pending transactions with a deadline
    /// ([`crate::TxKind::TransferUntil`]), by (last valid height, hash):
    /// [`Mempool::drop_expired`] finds the expired ones without a scan.
    deadlines: BTreeSet<(u64, Hash32)>,
    /// Senders with a duty transaction pending ([`Mempool::lane`]).
    duty_senders: BTreeSet<Address>,
    /// A planted bug (`mutants` feature only).
    #[cfg(feature = "mutants")]
    mutation: Option<crate::chain::Mutation>,
}

static NOTHING: BTreeSet<Hash32> = BTreeSet::new();

impl Mempool {
    pub fn new(capacity: usize, per_sender: usize) -> Self {
        Self {
            capacity,
            per_sender,
            senders: HashMap::new(),
            by_hash: HashMap::new(),
            heads: BTreeSet::new(),
            first: BTreeMap::new(),
            first_rank: HashMap::new(),
            front: u64::MAX,
            seq: 0,
            len: 0,
            max_bytes: DEFAULT_MEMPOOL_BYTES,
            bytes: 0,
            tails: BTreeSet::new(),
            evicted: 0,
            deadlines: BTreeSet::new(),
            duty_senders: BTreeSet::new(),
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }

    /// The same pool with a planted bug (`mutants` feature only).
    #[cfg(feature = "mutants")]
    pub fn with_mutation(mut self, mutation: Option<crate::chain::Mutation>) -> Self {
        self.mutation = mutation;
        self
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

    fn tail_key(&self, sender: &Address) -> Option<TailKey> {
        let q = self.senders.get(sender)?;
        let (p, nonce) = q.cheapest_suffix()?;
        let seq = q.txs.get(&nonce)?.seq;
        Some((p, Reverse(seq), *sender))
    }

    fn head_key(&self, sender: &Address) -> Option<(OrderKey, Address)> {
        let (_, q) = self.senders.get(sender)?.txs.first_key_value()?;
        Some((order_key(q), *sender))
    }

    /// Runs `f` on the pool and keeps `sender`'s entries in `tails` and
    /// `heads` current, and its place in `first` while the transaction it
    /// was skipped for is still queued.
    fn retail<R>(&mut self, sender: Address, f: impl FnOnce(&mut Self) -> R) -> R {
        if let Some(k) = self.tail_key(&sender) {
            self.tails.remove(&k);
        }
        if let Some(k) = self.head_key(&sender) {
            self.heads.remove(&k);
        }
        let r = f(self);
        if let Some(k) = self.tail_key(&sender) {
            self.tails.insert(k);
        }
        if let Some(k) = self.head_key(&sender) {
            self.heads.insert(k);
        }
        if self.senders.get(&sender).is_some_and(|q| !q.duties.is_empty()) {
            self.duty_senders.insert(sender);
        } else {
            self.duty_senders.remove(&sender);
        }
        if let Some(rank) = self.first_rank.get(&sender).copied() {
            let waiting = self.first.get(&rank).map(|(_, n)| *n);
            let queued = self.senders.get(&sender).is_some_and(|q| waiting.is_some_and(|n| q.txs.contains_key(&n)));
            if !queued {
                self.first.remove(&rank);
                self.first_rank.remove(&sender);
            }
        }
        r
    }

    /// The suffixes (sender, first nonce) to evict so that `add` more
    /// transactions of `size` bytes in all fit once `freed` bytes leave
    /// (a replacement: one transaction for another), each of a sender
    /// other than `sender` whose cheapest price `price` strictly outbids,
    /// first victim first; `None` if those are not enough.
    fn victims(
        &self,
        sender: &Address,
        price: Amount,
        (add, size, freed): (usize, usize, usize),
    ) -> Option<Vec<(Address, u64, usize)>> {
        let mut need_n = (self.len + add).saturating_sub(self.capacity);
        let mut need_b = self.bytes.saturating_sub(freed).saturating_add(size).saturating_sub(self.max_bytes);
        let mut out = Vec::new();
        for (p, _, who) in &self.tails {
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
            let (_, from) = q.cheapest_suffix()?;
            let (n, b) =
                q.txs.range(from..).fold((0usize, 0usize), |(n, b), (_, e)| (n + 1, b.saturating_add(tx_size(&e.v))));
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
            .is_some_and(|e| e.v.tx == *tx)
    }

    /// The pending transaction of `sender` with `nonce`, if any.
    pub fn pending_at(&self, sender: &Address, nonce: u64) -> Option<&SignedTransaction> {
        self.senders.get(sender)?.txs.get(&nonce).map(|e| &e.v.tx)
    }

    /// The next nonce this sender may submit, given its committed account.
    pub fn next_nonce(&self, sender: &Address, committed: &Account) -> u64 {
        committed.nonce + self.senders.get(sender).map_or(0, |q| q.txs.len() as u64)
    }

    /// Admits a verified transaction against the sender's committed account,
    /// outside the duty lane; one with the nonce of a pending transaction
    /// of its sender replaces it if it pays enough more (see the module
    /// documentation). On error nothing changes.
    pub fn admit(&mut self, vtx: VerifiedTx, committed: &Account) -> Result<Hash32, SubmitError> {
        self.admit_in_lane(vtx, committed, false)
    }

    /// [`Mempool::admit`], `duty` saying whether the chain's contracts
    /// offer it to the block's duty lane ([`Mempool::lane`]).
    pub fn admit_in_lane(&mut self, vtx: VerifiedTx, committed: &Account, duty: bool) -> Result<Hash32, SubmitError> {
        if self.by_hash.contains_key(&vtx.hash) {
            return Err(SubmitError::AlreadyKnown);
        }
        let nonce = vtx.tx.tx.nonce;
        let (queued, reserved) = self.senders.get(&vtx.sender).map_or((0, Amount::ZERO), |q| (q.txs.len(), q.reserved));
        let next = committed.nonce + queued as u64;
        if nonce < next {
            let pending = self.senders.get(&vtx.sender).is_some_and(|q| q.txs.contains_key(&nonce));
            if nonce >= committed.nonce && pending {
                return self.replace(vtx, committed, duty);
            }
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
        let victims = self.victims(&vtx.sender, vtx.tx.tx.gas_price, (1, size, 0)).ok_or(full)?;
        for (s, from, n) in victims {
            self.retail(s, |me| me.evict_from(s, from));
            self.evicted += n as u64;
        }
        let hash = vtx.hash;
        let sender = vtx.sender;
        let seq = self.seq;
        self.seq += 1;
        self.retail(sender, |me| {
            let q = me.senders.entry(sender).or_default();
            q.reserved = needed;
            if let Some(u) = vtx.tx.tx.kind.valid_until() {
                me.deadlines.insert((u, hash));
            }
            q.insert(nonce, Queued { v: vtx, seq, duty });
            me.by_hash.insert(hash, (sender, nonce));
            me.len += 1;
            me.bytes += size;
        });
        Ok(hash)
    }

    /// Replace-by-fee: `vtx` takes the place of its sender's pending
    /// transaction with the same nonce (see the module documentation).
    fn replace(&mut self, vtx: VerifiedTx, committed: &Account, duty: bool) -> Result<Hash32, SubmitError> {
        let (sender, nonce, price) = (vtx.sender, vtx.tx.tx.nonce, vtx.tx.tx.gas_price);
        let q = self.senders.get(&sender).ok_or(SubmitError::NonceTooLow { expected: committed.nonce, got: nonce })?;
        let old = q.txs.get(&nonce).ok_or(SubmitError::NonceTooLow { expected: committed.nonce, got: nonce })?;
        let pending = old.v.tx.tx.gas_price;
        let min = replacement_min(pending);
        #[cfg(feature = "mutants")]
        let min = if self.mutation == Some(crate::chain::Mutation::ReplaceWithoutBump) {
            Amount(pending.0.saturating_add(1))
        } else {
            min
        };
        if price < min {
            return Err(SubmitError::ReplacementUnderpriced { pending, min });
        }
        let needed = Amount(q.reserved.0.saturating_sub(old.v.max_cost.0))
            .checked_add(vtx.max_cost)
            .ok_or(SubmitError::Overflow)?;
        if needed > committed.balance {
            return Err(SubmitError::InsufficientBalance { needed, available: committed.balance });
        }
        let (size, old_size, old_gas) = (tx_size(&vtx), tx_size(&old.v), old.v.tx.tx.gas_limit);
        let full = SubmitError::MempoolFull { capacity: self.capacity };
        if size > self.max_bytes {
            return Err(full);
        }
        let victims = self.victims(&sender, price, (0, size, old_size)).ok_or(full)?;
        for (s, from, n) in victims {
            self.retail(s, |me| me.evict_from(s, from));
            self.evicted += n as u64;
        }
        let hash = vtx.hash;
        let seq = self.seq;
        self.seq += 1;
        // Attack r18 [3]: the serve-first place was earned by a transaction
        // too large for what a block had left; a replacement keeps it only
        // if it is no smaller in gas limit (it still may not fit). A small
        // one goes back to the price order.
        let keeps_first = vtx.tx.tx.gas_limit >= old_gas;
        #[cfg(feature = "mutants")]
        let keeps_first = keeps_first || self.mutation == Some(crate::chain::Mutation::ReplacementKeepsServeFirst);
        let rank = self.first_rank.get(&sender).copied();
        if let Some(rank) = rank.filter(|r| !keeps_first && self.first.get(r) == Some(&(sender, nonce))) {
            self.first.remove(&rank);
            self.first_rank.remove(&sender);
        }
        self.retail(sender, |me| {
            let Some(q) = me.senders.get_mut(&sender) else { return };
            if let Some(old) = q.txs.remove(&nonce) {
                q.count_out(nonce, &old);
                if let Some(u) = old.v.tx.tx.kind.valid_until() {
                    me.deadlines.remove(&(u, old.v.hash));
                }
                me.by_hash.remove(&old.v.hash);
                me.bytes = me.bytes.saturating_sub(old_size);
            }
            q.reserved = needed;
            if let Some(u) = vtx.tx.tx.kind.valid_until() {
                me.deadlines.insert((u, hash));
            }
            q.insert(nonce, Queued { v: vtx, seq, duty });
            me.by_hash.insert(hash, (sender, nonce));
            me.bytes += size;
        });
        Ok(hash)
    }

    /// The first transaction not in `exclude` of the first sender served
    /// before the price order ([`Mempool::serve_first`]) whose first
    /// transaction not in `exclude` is the one that earned the place: what
    /// [`Mempool::walk`] yields first when there is such a sender.
    pub fn first_served(&self, exclude: &BTreeSet<Hash32>) -> Option<&VerifiedTx> {
        self.first.values().find_map(|(a, n)| {
            let e = self.senders.get(a)?.txs.values().find(|e| !exclude.contains(&e.v.hash))?;
            self.earned_first(*n, e.v.tx.tx.nonce).then_some(&e.v)
        })
    }

    /// Whether a sender whose serve-first place was earned by its
    /// transaction at nonce `earned` is served first with its transaction
    /// at `next` (its first one not excluded): only if it is that one.
    ///
    /// Attack r19 [2]: the place followed the sender, not the transaction.
    /// On a pipelined height (`Chain::build_block_on`) the parent's
    /// transactions are excluded while still pending, so the child served
    /// the sender's next nonce first, before the price order, once the
    /// parent held the skipped one: one more transaction ahead of any
    /// price for each place earned. Now the place is the (sender, nonce)
    /// that was skipped, on plain and pipelined heights alike: while that
    /// transaction is excluded (or others of its sender come before it)
    /// the sender competes at its price, and the place itself lasts until
    /// the transaction is committed or leaves the pool (`retail`).
    /// Deterministic: it depends on the pool and `exclude` only.
    fn earned_first(&self, earned: u64, next: u64) -> bool {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::chain::Mutation::FirstServedNextNonce) {
            return true;
        }
        earned == next
    }

    /// The duty lane's candidates: for each sender with a duty not in
    /// `exclude` pending (a registered node of the chain), its run: its
    /// transactions not in `exclude` in nonce order from the first, up to
    /// and including its last such duty, the first `max` of them; senders
    /// in the block order of their run's first transaction (highest gas
    /// price, then arrival). The block takes them round-robin, each node
    /// within its fair share of the lane's gas, filled progressively
    /// (`fill_block`, attacks r21 [1], r23 [1] [2]).
    ///
    /// Attack r18 [2]: the run used to start only if the sender's first
    /// transaction was a duty, so one ordinary call of the node's own key
    /// at the head of its queue (the BoB node's `fraud`, `ccdi_open`, …
    /// at the node's price) shut every later relay of the node out of the
    /// lane, and traffic outbidding that one call froze them all. Now the
    /// ordinary calls ahead of a node's duties are carried in its run: they
    /// take lane places like duties, within the same bound (`max`, the
    /// lane's share of the block, the node's round-robin share), so a node
    /// gains nothing it could not take with junk duties; the ordinary calls
    /// after its last duty are left to the block order.
    ///
    /// Attack r19 [1]: the run was the next `max` transactions cut after
    /// the last duty *among them*, so a node with `max` ordinary calls
    /// queued ahead of its duties had an empty run: the flood outbidding
    /// those calls froze its duties out for ever. Decision: a run reaches
    /// toward the node's last pending duty wherever it is, so a window that
    /// holds no duty still carries its first calls and the nonces advance
    /// toward the duty. Not a cap on the ordinary calls a run may carry:
    /// a duty cannot go into a block before the calls ahead of it in nonce
    /// order, so a cap below their count would freeze it just the same
    /// (nothing else drains them under a dearer flood), and the cap buys
    /// nothing the round-robin share does not already bound (a node could
    /// take the same places with junk duties). The bound: a node with a
    /// duty pending gets at least one lane place a block (as long as the
    /// registered nodes are no more than the lane's count), so a duty with
    /// `k` of its sender's transactions ahead of it is included within
    /// `k + 1` blocks, and `k` is below the per-sender queue limit. The
    /// lane carries no ordinary call after a node's last duty, and no more
    /// of a node's than its round-robin share of each block's lane.
    ///
    /// The senders with duties pending are few (the chain's registered
    /// nodes): the cost is their count times `max`, plus one per excluded
    /// transaction.
    pub fn lane(&self, exclude: &BTreeSet<Hash32>, max: usize) -> Vec<Vec<&VerifiedTx>> {
        #[cfg(feature = "mutants")]
        let carry = self.mutation != Some(crate::chain::Mutation::LaneHeadMustBeDuty);
        #[cfg(not(feature = "mutants"))]
        let carry = true;
        #[cfg(feature = "mutants")]
        let window_only = self.mutation == Some(crate::chain::Mutation::LaneRunNeedsDutyInWindow);
        #[cfg(not(feature = "mutants"))]
        let window_only = false;
        let mut runs: Vec<(OrderKey, Vec<&VerifiedTx>)> = Vec::new();
        for a in &self.duty_senders {
            let Some(q) = self.senders.get(a) else { continue };
            let pending = |n: &u64| q.txs.get(n).is_some_and(|e| !exclude.contains(&e.v.hash));
            let Some(last) = q.duties.iter().rev().find(|n| pending(n)).copied() else { continue };
            let mut run = Vec::new();
            let mut key = None;
            let mut through = 0;
            for e in q.txs.range(..=last).map(|(_, e)| e).filter(|e| !exclude.contains(&e.v.hash)).take(max) {
                if !e.duty && !carry {
                    break;
                }
                key.get_or_insert(order_key(e));
                run.push(&e.v);
                if e.duty || !window_only {
                    through = run.len();
                }
            }
            run.truncate(through);
            if let (Some(k), false) = (key, run.is_empty()) {
                runs.push((k, run));
            }
        }
        runs.sort_by_key(|(k, _)| *k);
        runs.into_iter().map(|(_, r)| r).collect()
    }

    /// Records that a block skipped each `(sender, nonce)` because the
    /// transaction's gas limit no longer fitted: those senders, in the
    /// order given, go to the front of the senders served before the price
    /// order ([`Mempool::walk`]), and each stays there until that
    /// transaction is included or leaves the pool (attack r12 [3]: behind
    /// senders that keep queueing transactions ahead of it, a block-sized
    /// transaction was skipped for ever). The block's duty lane goes
    /// first and uses at most its share of the block's gas (attack r21
    /// [2], `fill_block`), so the first of them whose gas limit fits the
    /// rest (the block's gas less the lane's) is included in each block; a
    /// larger one that fits an empty block goes before the lane at the
    /// next served-first turn, every other height (attack r23 [3]: one
    /// cheap duty a block starved it for ever). A sender's place only
    /// moves forward, so each waits a bounded number of blocks. Senders
    /// no longer queued are ignored.
    pub fn serve_first(&mut self, skipped: &[(Address, u64)]) {
        for (a, n) in skipped.iter().rev() {
            if !self.senders.get(a).is_some_and(|q| q.txs.contains_key(n)) {
                continue;
            }
            if let Some(old) = self.first_rank.remove(a) {
                self.first.remove(&old);
            }
            let rank = self.front;
            self.front = self.front.saturating_sub(1);
            self.first.insert(rank, (*a, *n));
            self.first_rank.insert(*a, rank);
        }
    }

    /// The pending transactions in block order (see the module
    /// documentation), leaving out those in `exclude` (a later transaction
    /// of their sender follows at its own place). Each step costs
    /// `O(log n)`, plus one per excluded transaction.
    pub fn walk<'a>(&'a self, exclude: &'a BTreeSet<Hash32>) -> Walk<'a> {
        let mut w = Walk {
            pool: self,
            exclude,
            first: self.first.values(),
            heads: self.heads.iter(),
            next: BinaryHeap::new(),
            started: HashSet::new(),
            last: None,
        };
        // A sender whose first transactions are excluded competes with its
        // first one left, at that one's price.
        for h in exclude {
            if let Some((a, _)) = self.by_hash.get(h) {
                if !self.first_rank.contains_key(a) && w.started.insert(*a) {
                    w.push_from(*a, 0);
                }
            }
        }
        w
    }

    /// The first `max` transactions in block order.
    pub fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.walk(&NOTHING).take(max).map(|v| v.tx.clone()).collect()
    }

    /// Each pending sender's transactions in nonce order (no gaps, from its
    /// committed nonce), senders in the block order of their next
    /// transaction (highest gas price, then earliest arrival; see
    /// [`Mempool::walk`]); nothing is copied.
    pub fn queues(&self) -> impl Iterator<Item = impl Iterator<Item = &VerifiedTx>> {
        self.heads.iter().filter_map(|(_, a)| self.senders.get(a)).map(|q| q.txs.values().map(|e| &e.v))
    }

    /// One sender's pending transactions in nonce order (none if it has
    /// none); nothing is copied.
    pub fn sender_queue(&self, sender: &Address) -> impl Iterator<Item = &VerifiedTx> {
        self.senders.get(sender).into_iter().flat_map(|q| q.txs.values().map(|e| &e.v))
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
    }

    fn prune_one(&mut self, s: Address, acct: &Account) {
        {
            let Some(q) = self.senders.get_mut(&s) else {
                return;
            };
            let stale: Vec<u64> = q.txs.range(..acct.nonce).map(|(n, _)| *n).collect();
            let mut removed = Vec::new();
            for n in stale {
                if let Some(e) = q.txs.remove(&n) {
                    removed.push((n, e));
                }
            }
            if q.txs.keys().next().is_some_and(|n| *n != acct.nonce) {
                removed.extend(std::mem::take(&mut q.txs));
            }
            for (n, e) in &removed {
                q.count_out(*n, e);
                let v = &e.v;
                if let Some(u) = v.tx.tx.kind.valid_until() {
                    self.deadlines.remove(&(u, v.hash));
                }
                self.by_hash.remove(&v.hash);
                self.len -= 1;
                self.bytes = self.bytes.saturating_sub(tx_size(v));
            }
            q.reserved = q.txs.values().fold(Amount::ZERO, |a, e| a.checked_add(e.v.max_cost).unwrap_or(Amount::MAX));
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
            for (n, e) in &later {
                q.count_out(*n, e);
                if let Some(u) = e.v.tx.tx.kind.valid_until() {
                    self.deadlines.remove(&(u, e.v.hash));
                }
                self.by_hash.remove(&e.v.hash);
                self.len -= 1;
                self.bytes = self.bytes.saturating_sub(tx_size(&e.v));
            }
            q.reserved = q.txs.values().fold(Amount::ZERO, |a, e| a.checked_add(e.v.max_cost).unwrap_or(Amount::MAX));
            if q.txs.is_empty() {
                self.senders.remove(&s);
            }
        }
    }
}

/// The mempool's pending transactions in block order ([`Mempool::walk`]),
/// each with the hash and sender the pool keeps (a candidate costs no
/// hashing or signer recovery).
/// After a transaction is yielded its sender's next one joins the order,
/// unless the caller calls [`Walk::hold`] first (the block skipped or
/// rejected it: the sender's later ones wait for it, in nonce order).
pub struct Walk<'a> {
    pool: &'a Mempool,
    exclude: &'a BTreeSet<Hash32>,
    first: btree_map::Values<'a, u64, (Address, u64)>,
    heads: btree_set::Iter<'a, (OrderKey, Address)>,
    /// Senders' next transactions that left `heads`' order: after one of
    /// theirs was yielded, or whose first ones are excluded.
    next: BinaryHeap<Reverse<(OrderKey, Address, u64)>>,
    /// Senders whose place `heads` no longer gives.
    started: HashSet<Address>,
    last: Option<(Address, u64)>,
}

impl<'a> Walk<'a> {
    /// The sender of the transaction just yielded gets no further one.
    pub fn hold(&mut self) {
        self.last = None;
    }

    /// Queues `a`'s first transaction at nonce `from` or later that is not
    /// excluded.
    fn push_from(&mut self, a: Address, from: u64) {
        if let Some((n, e)) = self.first_from(a, from) {
            self.next.push(Reverse((order_key(e), a, n)));
        }
    }

    fn first_from(&self, a: Address, from: u64) -> Option<(u64, &'a Queued)> {
        let pool: &'a Mempool = self.pool;
        let q = pool.senders.get(&a)?;
        q.txs.range(from..).find(|(_, e)| !self.exclude.contains(&e.v.hash)).map(|(n, e)| (*n, e))
    }

    fn take(&mut self, a: Address, n: u64) -> Option<&'a VerifiedTx> {
        let pool: &'a Mempool = self.pool;
        let e = pool.senders.get(&a)?.txs.get(&n)?;
        self.last = Some((a, n));
        Some(&e.v)
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = &'a VerifiedTx;

    fn next(&mut self) -> Option<&'a VerifiedTx> {
        if let Some((a, n)) = self.last.take() {
            self.push_from(a, n.saturating_add(1));
        }
        while let Some(&(a, earned)) = self.first.next() {
            self.started.insert(a);
            match self.first_from(a, 0) {
                Some((n, _)) if self.pool.earned_first(earned, n) => return self.take(a, n),
                // Not the transaction that earned the place (attack r19
                // [2]): its sender competes at its price.
                Some(_) => self.push_from(a, 0),
                None => {}
            }
        }
        // Move heads into `next` until the best of `next` is no worse than
        // the next head.
        while let Some(&(key, a)) = self.heads.clone().next() {
            if self.started.contains(&a) || self.pool.first_rank.contains_key(&a) {
                self.heads.next();
                continue;
            }
            if self.next.peek().is_some_and(|Reverse((best, _, _))| *best <= key) {
                break;
            }
            self.heads.next();
            self.started.insert(a);
            self.push_from(a, 0);
        }
        let Reverse((_, a, n)) = self.next.pop()?;
        self.take(a, n)
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

    fn snapshot(p: &Mempool) -> (usize, Vec<Hash32>, Vec<TailKey>) {
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

    fn order(p: &Mempool, exclude: &BTreeSet<Hash32>) -> Vec<(Address, u64)> {
        p.walk(exclude).map(|t| (t.sender, t.tx.tx.nonce)).collect()
    }

    #[test]
    fn block_order_is_highest_price_first_then_arrival_keeping_nonce_order() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        // Sender 1 arrives first with two cheap ones, then sender 2 at the
        // same price, sender 3 dear, and sender 1's third one dearer still.
        p.admit(vtx(1, 0, 1), &RICH).unwrap();
        p.admit(vtx(1, 1, 1), &RICH).unwrap();
        p.admit(vtx(2, 0, 1), &RICH).unwrap();
        p.admit(vtx(3, 0, 50), &RICH).unwrap();
        p.admit(vtx(1, 2, 90), &RICH).unwrap();
        p.admit(vtx(4, 0, 50), &RICH).unwrap();
        // Sender 1's dear nonce 2 cannot pass its own nonces 0 and 1; once
        // those are placed it competes at its own price.
        let want = vec![(a(3), 0), (a(4), 0), (a(1), 0), (a(1), 1), (a(1), 2), (a(2), 0)];
        assert_eq!(order(&p, &BTreeSet::new()), want);
        assert_eq!(p.candidates(3).iter().map(|t| (t.sender(), t.tx.nonce)).collect::<Vec<_>>(), want[..3]);
        // Holding a sender leaves its later ones out of this walk.
        let mut w = p.walk(&NOTHING);
        let mut got = Vec::new();
        while let Some(t) = w.next() {
            got.push((t.sender, t.tx.tx.nonce));
            if t.sender == a(1) {
                w.hold();
            }
        }
        assert_eq!(got, vec![(a(3), 0), (a(4), 0), (a(1), 0), (a(2), 0)]);
    }

    #[test]
    fn excluded_transactions_are_left_out_and_the_senders_next_one_competes_at_its_own_price() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        let first = p.admit(vtx(1, 0, 1), &RICH).unwrap();
        p.admit(vtx(1, 1, 60), &RICH).unwrap();
        p.admit(vtx(2, 0, 5), &RICH).unwrap();
        p.admit(vtx(3, 0, 70), &RICH).unwrap();
        let exclude: BTreeSet<Hash32> = [first].into();
        assert_eq!(order(&p, &exclude), vec![(a(3), 0), (a(1), 1), (a(2), 0)]);
    }

    #[test]
    fn senders_skipped_for_gas_come_first_until_the_skipped_transaction_is_included() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        p.admit(vtx(1, 0, 9), &RICH).unwrap();
        p.admit(vtx(2, 0, 1), &RICH).unwrap();
        p.admit(vtx(2, 1, 1), &RICH).unwrap();
        p.admit(vtx(3, 0, 1), &RICH).unwrap();
        // Not queued: ignored.
        p.serve_first(&[(a(3), 0), (a(2), 0), (a(7), 0), (a(3), 5)]);
        assert_eq!(order(&p, &BTreeSet::new()), vec![(a(3), 0), (a(2), 0), (a(1), 0), (a(2), 1)]);
        // Skipped again: to the front, in the order given.
        p.serve_first(&[(a(2), 0)]);
        assert_eq!(order(&p, &BTreeSet::new())[..2], [(a(2), 0), (a(3), 0)]);
        // Sender 2's nonce 0 is included: it goes back to the price order,
        // sender 3 stays first.
        p.prune([a(2)], |_| Account { balance: RICH.balance, nonce: 1 });
        assert_eq!(order(&p, &BTreeSet::new()), vec![(a(3), 0), (a(1), 0), (a(2), 1)]);
        // Sender 3's transaction leaves the pool: so does its place.
        p.evict(&vtx(3, 0, 1).hash);
        p.admit(vtx(3, 0, 1), &RICH).unwrap();
        assert_eq!(order(&p, &BTreeSet::new()), vec![(a(1), 0), (a(2), 1), (a(3), 0)]);
    }

    #[test]
    fn between_equally_cheap_senders_the_suffix_that_arrived_last_is_evicted_first() {
        let mut p = Mempool::new(3, 10);
        let early = p.admit(vtx(5, 0, 2), &RICH).unwrap();
        let late = p.admit(vtx(1, 0, 2), &RICH).unwrap();
        let dear = p.admit(vtx(2, 0, 9), &RICH).unwrap();
        // The block order serves sender 1 (same price, later) last: it goes.
        p.admit(vtx(3, 0, 3), &RICH).unwrap();
        assert!(p.contains(&early) && p.contains(&dear));
        assert!(!p.contains(&late));
        assert_eq!(order(&p, &BTreeSet::new()).last(), Some(&(dev_key(5).address(), 0)));
    }

    #[test]
    fn queues_give_each_senders_transactions_in_nonce_order_senders_in_block_order() {
        let mut p = Mempool::new(10, 10);
        let b0 = p.admit(vtx(2, 0, 1), &RICH).unwrap();
        let a0 = p.admit(vtx(1, 0, 1), &RICH).unwrap();
        let b1 = p.admit(vtx(2, 1, 1), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 1), &RICH).unwrap();
        // A dearer sender that arrived last comes first.
        let c0 = p.admit(vtx(3, 0, 5), &RICH).unwrap();
        let got: Vec<Vec<Hash32>> = p.queues().map(|q| q.map(|v| v.hash).collect()).collect();
        assert_eq!(got, vec![vec![c0], vec![b0, b1], vec![a0, a1]]);
        p.evict(&c0);
        p.evict(&b0);
        let got: Vec<Vec<Hash32>> = p.queues().map(|q| q.map(|v| v.hash).collect()).collect();
        assert_eq!(got, vec![vec![a0, a1]], "an evicted sender's queue is gone");
    }

    fn vtx_amount(key: usize, nonce: u64, price: u128, amount: u128) -> VerifiedTx {
        transfer(&dev_key(key), 1, nonce, dev_key(99).address(), Amount(amount), Amount(price))
            .check_stateless(1, u64::MAX)
            .unwrap()
    }

    #[test]
    fn a_replacement_takes_the_place_and_every_index_follows() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        let a0 = p.admit(vtx(1, 0, 10), &RICH).unwrap();
        let a1 = p.admit(vtx(1, 1, 10), &RICH).unwrap();
        p.admit(vtx(2, 0, 12), &RICH).unwrap();
        let before = (p.len(), p.bytes());
        // Below the bump (11 = 10 % more is the least): refused, nothing changes.
        let snap = snapshot(&p);
        assert_eq!(
            p.admit(vtx_amount(1, 0, 10, 2), &RICH),
            Err(SubmitError::ReplacementUnderpriced { pending: Amount(10), min: Amount(11) })
        );
        assert_eq!(snapshot(&p), snap);
        // A committed nonce is still too low.
        let past = Account { balance: RICH.balance, nonce: 1 };
        assert!(matches!(p.admit(vtx(1, 0, 50), &past), Err(SubmitError::NonceTooLow { .. })));
        // 13 replaces nonce 0: same count and bytes, the old hash gone, the
        // sender now first in block order, its cheapest suffix nonce 1.
        let r0 = p.admit(vtx(1, 0, 13), &RICH).unwrap();
        assert_eq!((p.len(), p.bytes()), before);
        assert!(!p.contains(&a0) && p.contains(&r0) && p.contains(&a1));
        assert_eq!(order(&p, &BTreeSet::new()), vec![(a(1), 0), (a(2), 0), (a(1), 1)]);
        assert_eq!(p.tail_key(&a(1)).map(|t| t.0), Some(Amount(10)));
        assert_eq!(p.next_nonce(&a(1), &RICH), 2);
        // The balance covers the queue with the replacement's cost instead.
        let poor = Account { balance: Amount(vtx(1, 0, 13).max_cost.0 + vtx(1, 1, 10).max_cost.0), nonce: 0 };
        assert!(matches!(p.admit(vtx(1, 1, 1_000), &poor), Err(SubmitError::InsufficientBalance { .. })));
        // Eviction and pruning see the replacement, not the replaced.
        p.evict(&r0);
        assert_eq!(p.len(), 1);
        assert!(!p.contains(&a1));
    }

    /// The lane's runs as (sender, nonce) lists.
    fn runs(p: &Mempool, exclude: &BTreeSet<Hash32>, max: usize) -> Vec<Vec<(Address, u64)>> {
        p.lane(exclude, max).iter().map(|r| r.iter().map(|t| (t.sender, t.tx.tx.nonce)).collect()).collect()
    }

    #[test]
    fn a_run_reaches_toward_the_last_duty_and_stops_there() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        // Sender 1: three ordinary, a duty, an ordinary after it.
        for n in 0..3 {
            p.admit(vtx(1, n, 1), &RICH).unwrap();
        }
        let duty = p.admit_in_lane(vtx(1, 3, 1), &RICH, true).unwrap();
        p.admit(vtx(1, 4, 1), &RICH).unwrap();
        // A window of 2 holds no duty: the run still carries its first calls.
        assert_eq!(runs(&p, &NOTHING, 2), vec![vec![(a(1), 0), (a(1), 1)]]);
        // A wider window stops at the last duty: nonce 4 is not carried.
        assert_eq!(runs(&p, &NOTHING, 10), vec![(0..4).map(|n| (a(1), n)).collect::<Vec<_>>()]);
        // The duty excluded (a pipelined parent holds it): no run at all,
        // the ordinary call after it is left to the block order.
        let parent: BTreeSet<Hash32> = (0..3).map(|n| vtx(1, n, 1).hash).chain([duty]).collect();
        assert_eq!(runs(&p, &parent, 10), Vec::<Vec<_>>::new());
    }

    #[test]
    fn the_serve_first_place_serves_only_the_transaction_that_earned_it() {
        let mut p = Mempool::new(100, 10);
        let a = |k: usize| dev_key(k).address();
        p.admit(vtx(1, 0, 1), &RICH).unwrap();
        p.admit(vtx(1, 1, 1), &RICH).unwrap();
        p.admit(vtx(2, 0, 5), &RICH).unwrap();
        p.serve_first(&[(a(1), 0)]);
        assert_eq!(order(&p, &NOTHING), vec![(a(1), 0), (a(2), 0), (a(1), 1)]);
        assert_eq!(p.first_served(&NOTHING).map(|t| t.tx.tx.nonce), Some(0));
        // Nonce 0 excluded (a pipelined parent holds it): nonce 1 competes
        // at its price.
        let parent: BTreeSet<Hash32> = [vtx(1, 0, 1).hash].into();
        assert_eq!(order(&p, &parent), vec![(a(2), 0), (a(1), 1)]);
        assert!(p.first_served(&parent).is_none());
    }

    #[test]
    fn the_default_minimum_gas_price_is_not_zero() {
        let rules = crate::chain::ChainConfig::default();
        assert!(rules.min_gas_price > Amount::ZERO);
    }
}
