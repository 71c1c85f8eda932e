//! π^τ, the τ-partition transaction management protocol (thesis §4.4.2,
//! Algorithm 4.1), feeding TBG's buckets (§4.5).
//!
//! [`PiTau`] is a sans-IO replica-side state machine: it is handed
//! transactions from clients ([`PiTau::receive`]), delivered blocks
//! ([`PiTau::on_block`], which also advances the local epoch: "local epoch
//! `e_p` means p has seen the ABC-delivered block of `e_p − 1`", §4.3.1) and
//! asked for the batch of each local epoch ([`BatchSource::next_batch`]).
//! Every transaction gets an [`Outcome`]; every refusal a typed
//! [`Rejection`].
//!
//! Decisions where the seed is silent or ambiguous:
//! - `tx_c^last` is the client's transaction with delivery number
//!   `DN_c − 1`. Branch (a) (undecided, "tx_c^last not ABC-delivered")
//!   applies when `DN_c = DN_c^(e_n) + 1`: under Eq 4.1 a replica lags by at
//!   most one of the client's deliveries (a client sends at most one
//!   transaction per epoch, Rule-2). `DN_c ≥ DN_c^(e_n) + 2` is invalid
//!   (Condition-3).
//! - Rule-2's check (b) compares `e_c` with `e^lastnew` of `tx_c^last`,
//!   so it applies to `DN_c = DN_c^(e_n)`; a re-sent older transaction
//!   always has `e_c < e^lastnew` and is judged by Condition-1 instead.
//! - Condition-1 compares with the client's *last* delivered transaction
//!   (`DN_c = DN_c^(e_n) − 1`): same request → it was delivered already and
//!   is deleted ([`Rejection::AlreadyDelivered`], line 22); a different
//!   request → invalid. Older delivery numbers are invalid outright.
//! - The first transaction (`DN_c = 0`) is admitted under the same rules
//!   with `e^lastnew = 0`; the seed's registration proof for a first
//!   transaction is the application's Rule-1 check.
//! - `e_c^new > e_c` is checked with Rule-1 (it is a property of the
//!   transaction alone).
//! - A delivered transaction advances its client's state (`DN`, `e^lastnew`,
//!   last request) only if its delivery number is the expected one and its
//!   epoch respects `e^lastnew`; every replica applies this to the same
//!   delivered sequence, so client state stays identical everywhere.
//! - Undecided transactions wait in a bounded pending area
//!   ([`PiTauConfig::max_pending`]) and are re-examined when the local epoch
//!   advances (line 18) or a block delivers their client's last transaction
//!   (line 17); the signature is verified once, on arrival.
//! - Branch (a) takes the κ window of Situation 1: a transaction whose
//!   `DN_c` is one ahead with `e_c ≥ e_n + κ` is invalid
//!   ([`Invalid::EpochTooFarAhead`]) as it would be once its predecessor is
//!   delivered, not held for any `e_c`.
//! - Rule-2 allows a client one transaction per epoch and Rule-3 ties it
//!   to one delivery number: a replica holds at most one transaction per
//!   `(client, DN_c, e_c)`, undecided or valid, and keeps the first it
//!   received (the earliest occurrence, as P^ABC keeps the earliest copy of
//!   a duplicate). A later one with other contents is refused:
//!   [`Rejection::ClientPending`] while the kept one is undecided,
//!   [`Rejection::ClientHeld`] (naming the kept one) once it is valid in
//!   its bucket. The kept one holds its place until it is batched,
//!   delivered, or its bucket's consultation epoch passed; by then its
//!   bucket was consulted and any other copy for the same `(DN_c, e_c)`
//!   lands in the same, consulted, bucket (`F^A` does not depend on the
//!   request) and is refused as stale.
//! - One client holds at most `κ + 1` transactions here, undecided and
//!   valid together ([`PiTau::max_pending_per_client`],
//!   [`Rejection::ClientPendingFull`]), whatever their epochs: Rule-2
//!   allows it one transaction per epoch, Situation 1 holds those of the
//!   `κ − 1` epochs ahead and branch (a) the one after its last, so one key
//!   can fill neither the undecided area nor the buckets.
//! - Branch (a) holds a transaction only while it could still be batched:
//!   an `e_c` older than the TBG window (the last group of its bucket set
//!   was consulted, `e_c + κ(2G − 1) < e_n`) is refused
//!   ([`Rejection::OutsideWindow`]), and a held one expires the same way
//!   once the local epoch moves past its window (re-examined on each
//!   block), so transactions for long-past epochs cannot hold the
//!   undecided area.
//! - Algorithm 4.1 line 22 deletes invalid transactions, and a valid one
//!   waiting in a bucket becomes invalid when a delivery uses its delivery
//!   number (the one-per-`(client, DN_c, e_c)` rule is local to a replica:
//!   each of the τ recipients may hold a different transaction for the same
//!   `(DN_c, e_c)`, and a client may sign the same request again for a
//!   later epoch before the first copy is delivered). When a block advances
//!   a client's delivery number, every transaction of that client held here
//!   with a lower delivery number is deleted: bucketed ones at once, with
//!   [`Rejection::AlreadyDelivered`] (the delivered request, signed for
//!   another epoch) or [`Invalid::ConflictsWithDelivered`] in the outcomes
//!   [`PiTau::on_block`] returns ([`PiTauStats::deleted`] counts them);
//!   undecided ones as they are re-examined (line 17).
//! - Execution ([`PiTau::apply_block`]): of the transactions a block
//!   delivers, one executes when it takes its client's next delivery
//!   number (`DN_c = DN_c^(e_n)`, `e_c ≥ e^lastnew`); the others are
//!   delivered by P^ABC but not executed, with a typed reason. So each
//!   `(client, DN_c)` executes once, and the transaction kept is **the
//!   earliest delivered** (two conflicting copies batched in the same epoch
//!   by two recipients are both ABC-delivered; the first in the delivered
//!   order executes). The rule reads only the delivered sequence, so every
//!   replica executes the same transactions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gridledger_core::ed25519::EdPublicKey as PublicKey;
use gridledger_core::Hash32;

use super::batch::{BatchItem, BatchPolicy, BatchSource, Placement, StoreError};
use super::tbg::{TbgBatcher, TbgConfig, TbgConfigError};
use super::tx::{array_function, LbftTx, Theta, MAX_REQUEST};

/// π^τ's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiTauConfig {
    /// N.
    pub replicas: u32,
    /// This replica's 0-based index.
    pub me: u32,
    /// Rule-4's θ.
    pub theta: Theta,
    /// `h^(0)`: the hash standing for the block "delivered at epoch 0";
    /// local epochs start at 1.
    pub genesis: Hash32,
    /// Bound on undecided transactions held.
    pub max_pending: usize,
    /// TBG's τ, G, κ, B and memory bound.
    pub tbg: TbgConfig,
}

/// Why a configuration is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PiTauConfigError {
    #[error("replica index {me} out of range for N = {replicas}")]
    Me { me: u32, replicas: u32 },
    #[error("τ = {tau} exceeds N = {replicas}")]
    TauAboveN { tau: u32, replicas: u32 },
    #[error(transparent)]
    Tbg(#[from] TbgConfigError),
}

/// Why a transaction is invalid (`V(tx_c) = 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("Rule-1: signature does not verify")]
    BadSignature,
    #[error("Rule-1: request of {len} bytes exceeds {max}")]
    RequestTooLarge { len: usize, max: usize },
    #[error("Rule-2: future epoch {next_epoch} not after e_c = {epoch}")]
    NextEpochNotAfter { epoch: u64, next_epoch: u64 },
    #[error("Rule-2: e_c = {epoch} before the last delivered transaction's e^new = {last_next_epoch}")]
    BeforeFutureEpoch { epoch: u64, last_next_epoch: u64 },
    #[error("Situation 1: e_c = {epoch} is κ or more ahead of local epoch {local}")]
    EpochTooFarAhead { epoch: u64, local: u64 },
    #[error("Rule-3: delivery number {got}, expected {expected}")]
    DeliveryNumberMismatch { expected: u64, got: u64 },
    #[error("Rule-4: client not eligible in epoch {epoch}")]
    NotEligible { epoch: u64 },
    #[error("Condition-1: delivery number {dn} already delivered with a different request")]
    ConflictsWithDelivered { dn: u64 },
}

/// Why an undecided transaction waits (`V(tx_c) = ⊥`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undecided {
    /// Branch (a): its client's previous transaction is not delivered here yet.
    AwaitingLastDelivery,
    /// Situation 1: `e_n < e_c < e_n + κ`.
    AwaitingEpoch,
}

/// Why a transaction is not (or no longer) kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid: {0}")]
    Invalid(Invalid),
    #[error("this replica is not among the transaction's τ recipients")]
    NotRecipient,
    #[error("already delivered")]
    AlreadyDelivered,
    #[error("already held")]
    Duplicate,
    /// Another transaction of this client with this delivery number and
    /// epoch is undecided here already (Rule-2 allows one per epoch): one
    /// per `(client, DN_c, e_c)` is held, the first received is kept.
    #[error("another transaction of this client for this epoch and delivery number is undecided")]
    ClientPending,
    /// Another transaction of this client with this delivery number and
    /// epoch, `kept` (the first received), is valid in its bucket here:
    /// Rules 2 and 3 admit one per `(client, DN_c, e_c)`.
    #[error(
        "transaction {kept} of this client for this epoch and delivery number is held; the first received is kept"
    )]
    ClientHeld { kept: Hash32 },
    /// This client already holds [`PiTau::max_pending_per_client`]
    /// transactions here, undecided and valid together (for other epochs
    /// or delivery numbers).
    #[error("this client already holds {max} transactions")]
    ClientPendingFull { max: usize },
    #[error("undecided area full ({max})")]
    PendingFull { max: usize },
    /// Undecided (branch (a)) but `e_c` is older than the TBG window: even
    /// the last group of its buckets was consulted before local epoch
    /// `local`, so it could never be batched here. Not held (and a held one
    /// expires with this reason).
    #[error("e_c = {epoch} is older than the TBG window at local epoch {local}")]
    OutsideWindow { epoch: u64, local: u64 },
    #[error("block hash of epoch {epoch} no longer known here")]
    UnknownBlockHash { epoch: u64 },
    #[error("bucket: {0}")]
    Store(StoreError),
}

/// What became of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid and stored in bucket `slot` (0-based position in `A^τ`).
    Stored { slot: u32 },
    /// Held as undecided.
    Pending(Undecided),
    /// Discarded (nothing kept).
    Rejected(Rejection),
}

/// A valid transaction in a bucket.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub id: Hash32,
    pub tx: Arc<LbftTx>,
}

impl BatchItem for Admitted {
    type Key = Hash32;
    fn key(&self) -> Hash32 {
        self.id
    }
}

/// What a replica knows of a client from delivered blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ClientState {
    /// `DN_c^(e_n)`: how many of its transactions were delivered.
    delivered: u64,
    /// `e_c^lastnew`.
    last_next_epoch: u64,
    /// Identity of the last delivered transaction's request.
    last_request: Option<Hash32>,
}

/// Counters (per replica).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PiTauStats {
    pub received: u64,
    pub stored: u64,
    pub invalid: u64,
    pub not_recipient: u64,
    pub signature_checks: u64,
    /// Valid transactions deleted from their bucket because a delivery
    /// used their delivery number (line 22).
    pub deleted: u64,
    /// Delivered transactions not executed (their `(client, DN_c)` was
    /// taken by an earlier delivered one, or out of order).
    pub not_executed: u64,
}

/// What a delivered block did here ([`PiTau::apply_block`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Per delivered transaction, in order: `Ok(())` when it executes (it
    /// took its client's next delivery number), otherwise why not:
    /// [`Rejection::AlreadyDelivered`] or
    /// [`Invalid::ConflictsWithDelivered`] when an earlier delivered one
    /// used its delivery number, [`Invalid::DeliveryNumberMismatch`] when it
    /// is ahead, [`Invalid::BeforeFutureEpoch`] when `e_c < e^lastnew`.
    pub executed: Vec<Result<(), Rejection>>,
    /// Held transactions this block deleted (line 22) and the undecided
    /// ones it re-examined (lines 17–18), with their outcome.
    pub outcomes: Vec<(Hash32, Outcome)>,
}

/// A replica's π^τ + TBG.
pub struct PiTau {
    cfg: PiTauConfig,
    local_epoch: u64,
    clients: HashMap<PublicKey, ClientState>,
    block_hashes: BTreeMap<u64, Hash32>,
    pending: BTreeMap<Hash32, (Arc<LbftTx>, Undecided)>,
    /// The transaction held per `(client, DN_c, e_c)`, undecided or valid:
    /// the first received.
    held: HashMap<SlotKey, Hash32>,
    /// Transactions held per client, undecided and valid, whatever their
    /// epoch (at most [`PiTau::max_pending_per_client`] each).
    held_per_client: HashMap<PublicKey, Vec<(SlotKey, Hash32)>>,
    /// Valid transactions in buckets: their `(client, DN_c, e_c)` and the
    /// local epoch that consults their bucket.
    valid: HashMap<Hash32, (SlotKey, u64)>,
    /// The ids in `valid` by consultation epoch (stale entries skipped).
    by_consult: BTreeMap<u64, Vec<Hash32>>,
    buckets: TbgBatcher<Admitted>,
    stats: PiTauStats,
    #[cfg(feature = "mutants")]
    mutation: Option<crate::lbft::replica::Mutation>,
}

/// `(client, DN_c, e_c)`.
type SlotKey = (PublicKey, u64, u64);

fn slot_key(tx: &LbftTx) -> SlotKey {
    (tx.client, tx.delivery_number, tx.epoch)
}

fn request_id(req: &[u8]) -> Hash32 {
    gridledger_core::codec::hash_bytes(gridledger_core::Tag("gridledger/lbft-req/v1"), req)
}

impl PiTau {
    pub fn new(cfg: PiTauConfig) -> Result<Self, PiTauConfigError> {
        if cfg.me >= cfg.replicas {
            return Err(PiTauConfigError::Me { me: cfg.me, replicas: cfg.replicas });
        }
        if cfg.tbg.tau > cfg.replicas {
            return Err(PiTauConfigError::TauAboveN { tau: cfg.tbg.tau, replicas: cfg.replicas });
        }
        let buckets = TbgBatcher::new(cfg.tbg)?;
        let mut block_hashes = BTreeMap::new();
        block_hashes.insert(0, cfg.genesis);
        Ok(Self {
            cfg,
            local_epoch: 1,
            clients: HashMap::new(),
            block_hashes,
            pending: BTreeMap::new(),
            held: HashMap::new(),
            held_per_client: HashMap::new(),
            valid: HashMap::new(),
            by_consult: BTreeMap::new(),
            buckets,
            stats: PiTauStats::default(),
            #[cfg(feature = "mutants")]
            mutation: None,
        })
    }

    /// Plants a bug (`mutants` feature):
    /// [`Mutation::ValidUnbounded`](crate::lbft::replica::Mutation::ValidUnbounded)
    /// or [`Mutation::UsedNumberKept`](crate::lbft::replica::Mutation::UsedNumberKept).
    #[cfg(feature = "mutants")]
    pub fn with_mutation(mut self, mutation: Option<crate::lbft::replica::Mutation>) -> Self {
        self.mutation = mutation;
        self
    }

    fn valid_unbounded(&self) -> bool {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::lbft::replica::Mutation::ValidUnbounded) {
            return true;
        }
        false
    }

    fn keeps_used_numbers(&self) -> bool {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::lbft::replica::Mutation::UsedNumberKept) {
            return true;
        }
        false
    }

    /// Whether `tx` may be held here next to what its client holds: one per
    /// `(client, DN_c, e_c)` (the first received is kept) and at most
    /// [`PiTau::max_pending_per_client`] per client.
    fn room_for(&self, tx: &LbftTx, id: Hash32) -> Result<(), Rejection> {
        if let Some(&kept) = self.held.get(&slot_key(tx)) {
            if kept != id {
                return Err(if self.pending.contains_key(&kept) {
                    Rejection::ClientPending
                } else {
                    Rejection::ClientHeld { kept }
                });
            }
        }
        let max = self.max_pending_per_client();
        if self.held_per_client.get(&tx.client).map_or(0, Vec::len) >= max {
            return Err(Rejection::ClientPendingFull { max });
        }
        Ok(())
    }

    fn hold(&mut self, key: SlotKey, id: Hash32) {
        self.held.insert(key, id);
        self.held_per_client.entry(key.0).or_default().push((key, id));
    }

    fn release(&mut self, key: SlotKey, id: Hash32) {
        if self.held.get(&key) != Some(&id) {
            return;
        }
        self.held.remove(&key);
        if let Some(v) = self.held_per_client.get_mut(&key.0) {
            v.retain(|&(_, h)| h != id);
            if v.is_empty() {
                self.held_per_client.remove(&key.0);
            }
        }
    }

    /// Line 22 for `client`, whose delivery number a block advanced: its
    /// valid transactions in buckets with a lower delivery number are
    /// invalid now and deleted (undecided ones are re-examined after the
    /// block). Returns them with why.
    fn delete_used(&mut self, client: &PublicKey, out: &mut Vec<(Hash32, Outcome)>) {
        if self.keeps_used_numbers() {
            return;
        }
        let Some(c) = self.clients.get(client).copied() else { return };
        let Some(held) = self.held_per_client.get(client) else { return };
        let stale: Vec<(SlotKey, Hash32)> =
            held.iter().filter(|(key, id)| key.1 < c.delivered && !self.pending.contains_key(id)).copied().collect();
        for (key, id) in stale {
            if self.valid.remove(&id).is_none() {
                continue;
            }
            self.release(key, id);
            let Some(tx) = self.buckets.take(&id) else { continue };
            self.stats.deleted += 1;
            let why = if key.1 + 1 == c.delivered && c.last_request == Some(request_id(&tx.tx.request)) {
                Rejection::AlreadyDelivered
            } else {
                Rejection::Invalid(Invalid::ConflictsWithDelivered { dn: key.1 })
            };
            out.push((id, Outcome::Rejected(why)));
        }
    }

    /// Valid transactions whose bucket was consulted at or before local
    /// epoch `e` (batched then, or never batchable again) no longer hold
    /// their client's place.
    /// One the batch of `e` had no room for (after a catch-up,
    /// [`TbgBatcher`]) stays in its bucket for the next batch and keeps its
    /// place.
    fn release_consulted(&mut self, e: u64) {
        let later = self.by_consult.split_off(&(e + 1));
        let past = std::mem::replace(&mut self.by_consult, later);
        let mut carried = Vec::new();
        for id in past.into_values().flatten() {
            if self.buckets.carried(&id) {
                carried.push(id);
                continue;
            }
            if let Some((key, _)) = self.valid.remove(&id) {
                self.release(key, id);
            }
        }
        if !carried.is_empty() {
            self.by_consult.entry(e + 1).or_default().extend(carried);
        }
    }

    /// `e_n`.
    pub fn local_epoch(&self) -> u64 {
        self.local_epoch
    }

    pub fn stats(&self) -> PiTauStats {
        self.stats
    }

    /// Valid transactions in buckets.
    pub fn bucketed(&self) -> usize {
        self.buckets.stored()
    }

    /// Undecided transactions held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// How many undecided transactions one client may hold here: `κ + 1`
    /// (the `κ − 1` epochs of Situation 1 ahead, branch (a)'s next one, and
    /// one to spare).
    pub fn max_pending_per_client(&self) -> usize {
        self.cfg.tbg.kappa as usize + 1
    }

    /// Epochs from `e_c` to the last consultation of its buckets (that of
    /// bucket `τ − 1`'s group, [`TbgConfig::consult_epoch`]): at most
    /// `κ(2G − 1)`.
    pub fn tbg_window(&self) -> u64 {
        self.cfg.tbg.consult_epoch(0, self.cfg.tbg.tau.saturating_sub(1))
    }

    /// Whether `id` sits in a bucket.
    pub fn holds(&self, id: &Hash32) -> bool {
        self.buckets.holds(id)
    }

    /// `DN_c^(e_n)` for `client`.
    pub fn delivered_count(&self, client: &PublicKey) -> u64 {
        self.clients.get(client).map_or(0, |c| c.delivered)
    }

    /// A transaction from a client (Algorithm 4.1).
    pub fn receive(&mut self, tx: LbftTx) -> Outcome {
        self.receive_inner(tx, None)
    }

    /// [`PiTau::receive`] for a transaction whose signature the caller has
    /// already checked (e.g. in a parallel batch off the replica's event
    /// loop): `signature_ok` is that check's verdict, used in place of
    /// checking again; Rule-1's other checks run here as in `receive`.
    pub fn receive_checked(&mut self, tx: LbftTx, signature_ok: bool) -> Outcome {
        self.receive_inner(tx, Some(signature_ok))
    }

    fn receive_inner(&mut self, tx: LbftTx, checked: Option<bool>) -> Outcome {
        self.stats.received += 1;
        // Lines 01–02: Rule-1 (checked once per transaction).
        if tx.request.len() > MAX_REQUEST {
            return self.invalid(Invalid::RequestTooLarge { len: tx.request.len(), max: MAX_REQUEST });
        }
        if tx.next_epoch <= tx.epoch {
            return self.invalid(Invalid::NextEpochNotAfter { epoch: tx.epoch, next_epoch: tx.next_epoch });
        }
        self.stats.signature_checks += 1;
        if !checked.unwrap_or_else(|| tx.verify_signature().is_ok()) {
            return self.invalid(Invalid::BadSignature);
        }
        let tx = Arc::new(tx);
        let id = tx.id();
        if self.pending.contains_key(&id) || self.buckets.holds(&id) {
            return Outcome::Rejected(Rejection::Duplicate);
        }
        let out = self.classify(&tx, id);
        self.settle(id, tx, out)
    }

    fn invalid(&mut self, why: Invalid) -> Outcome {
        self.stats.invalid += 1;
        Outcome::Rejected(Rejection::Invalid(why))
    }

    /// Lines 03–20 for a Rule-1-valid transaction, without side effects on
    /// the pending area.
    fn classify(&mut self, tx: &Arc<LbftTx>, id: Hash32) -> Outcome {
        let c = self.clients.get(&tx.client).copied().unwrap_or_default();
        let known = c.delivered;
        let dn = tx.delivery_number;
        let theta = self.cfg.theta;
        let eligible = || theta.eligible(&tx.client, tx.epoch);
        // Line 03 (a): tx_c^last not ABC-delivered here yet. Rule-4 depends
        // only on the key and e_c: checked before the transaction is held.
        if dn == known + 1 {
            // Situation 1's window applies here too: such an e_c is invalid
            // once tx_c^last is delivered, so it is not held for it.
            let (e_n, kappa) = (self.local_epoch, u64::from(self.cfg.tbg.kappa));
            if tx.epoch > e_n && tx.epoch - e_n >= kappa {
                return self.invalid(Invalid::EpochTooFarAhead { epoch: tx.epoch, local: e_n });
            }
            // Nor for an e_c whose buckets were all consulted: it could
            // never be batched, and would be held for good.
            if tx.epoch.saturating_add(self.tbg_window()) < e_n {
                return Outcome::Rejected(Rejection::OutsideWindow { epoch: tx.epoch, local: e_n });
            }
            if !eligible() {
                return self.invalid(Invalid::NotEligible { epoch: tx.epoch });
            }
            return Outcome::Pending(Undecided::AwaitingLastDelivery);
        }
        // Condition-3 seen from any situation: more than one delivery
        // ahead cannot be explained by the skew of Eq 4.1.
        if dn > known + 1 {
            return self.invalid(Invalid::DeliveryNumberMismatch { expected: known, got: dn });
        }
        // Line 04 (b): against tx_c^last, the delivered one with DN_c − 1
        // (older delivery numbers go to Condition-1).
        if dn == known && tx.epoch < c.last_next_epoch {
            return self.invalid(Invalid::BeforeFutureEpoch { epoch: tx.epoch, last_next_epoch: c.last_next_epoch });
        }
        let (e_n, e_c, kappa) = (self.local_epoch, tx.epoch, u64::from(self.cfg.tbg.kappa));
        if e_n < e_c {
            // Situation 1, line 05; Rule-4 before the transaction is held.
            if e_c - e_n >= kappa {
                return self.invalid(Invalid::EpochTooFarAhead { epoch: e_c, local: e_n });
            }
            if !eligible() {
                return self.invalid(Invalid::NotEligible { epoch: e_c });
            }
            return Outcome::Pending(Undecided::AwaitingEpoch);
        }
        if e_n == e_c {
            // Situation 2, lines 06–07.
            if dn != known {
                return self.invalid(Invalid::DeliveryNumberMismatch { expected: known, got: dn });
            }
            if !eligible() {
                return self.invalid(Invalid::NotEligible { epoch: e_c });
            }
        } else {
            // Situation 3, lines 08–16.
            if !eligible() {
                return self.invalid(Invalid::NotEligible { epoch: e_c });
            }
            if known > dn {
                // Condition 1, lines 10–12 (and line 22: it is deleted).
                if dn + 1 == known && c.last_request == Some(request_id(&tx.request)) {
                    return Outcome::Rejected(Rejection::AlreadyDelivered);
                }
                return self.invalid(Invalid::ConflictsWithDelivered { dn });
            }
            if known < dn {
                // Condition 3, lines 15–16.
                return self.invalid(Invalid::DeliveryNumberMismatch { expected: known, got: dn });
            }
            // Condition 2, lines 13–14.
        }
        // Lines 19–20: F^A over n^v = DN_c ‖ PubK_c ‖ h^(e_c−1).
        let Some(prev) = self.block_hashes.get(&(e_c.saturating_sub(1))).copied() else {
            return Outcome::Rejected(Rejection::UnknownBlockHash { epoch: e_c.saturating_sub(1) });
        };
        let array = array_function(&tx.nonce(&prev), self.cfg.replicas, self.cfg.tbg.tau);
        let Some(t) = array.iter().position(|&r| r == self.cfg.me) else {
            self.stats.not_recipient += 1;
            return Outcome::Rejected(Rejection::NotRecipient);
        };
        let slot = t as u32;
        let bounded = !self.valid_unbounded();
        if bounded {
            if let Err(r) = self.room_for(tx, id) {
                return Outcome::Rejected(r);
            }
        }
        match self.buckets.store(Placement { epoch: e_c, slot }, Admitted { id, tx: tx.clone() }) {
            Ok(()) => {
                self.stats.stored += 1;
                if bounded {
                    let key = slot_key(tx);
                    let consult = self.cfg.tbg.consult_epoch(e_c, slot);
                    self.hold(key, id);
                    self.valid.insert(id, (key, consult));
                    self.by_consult.entry(consult).or_default().push(id);
                }
                Outcome::Stored { slot }
            }
            Err(e) => Outcome::Rejected(Rejection::Store(e)),
        }
    }

    /// Keeps an undecided transaction (bounded).
    fn settle(&mut self, id: Hash32, tx: Arc<LbftTx>, out: Outcome) -> Outcome {
        if let Outcome::Pending(why) = out {
            if let Err(r) = self.room_for(&tx, id) {
                return Outcome::Rejected(r);
            }
            if self.pending.len() >= self.cfg.max_pending {
                return Outcome::Rejected(Rejection::PendingFull { max: self.cfg.max_pending });
            }
            self.hold(slot_key(&tx), id);
            self.pending.insert(id, (tx, why));
        }
        out
    }

    /// Lines 17–18: re-examines every undecided transaction.
    fn revisit(&mut self) -> Vec<(Hash32, Outcome)> {
        let waiting = std::mem::take(&mut self.pending);
        for (id, (tx, _)) in &waiting {
            self.release(slot_key(tx), *id);
        }
        let mut out = Vec::new();
        for (id, (tx, _)) in waiting {
            let o = self.classify(&tx, id);
            let o = self.settle(id, tx, o);
            out.push((id, o));
        }
        out
    }

    /// The block of epoch `epoch` was ABC-delivered with `txs` (in order):
    /// client states advance, delivered transactions leave the buckets
    /// (line 22), the local epoch becomes `epoch + 1`, and undecided
    /// transactions are re-examined. Returns the re-examined outcomes.
    pub fn on_block(&mut self, epoch: u64, hash: Hash32, txs: &[Arc<LbftTx>]) -> Vec<(Hash32, Outcome)> {
        self.apply_block(epoch, hash, txs).outcomes
    }

    /// [`PiTau::on_block`], also saying which delivered transactions
    /// execute: each `(client, DN_c)` once, the earliest delivered (see the
    /// module docs).
    pub fn apply_block(&mut self, epoch: u64, hash: Hash32, txs: &[Arc<LbftTx>]) -> Applied {
        let mut applied = Applied { executed: Vec::with_capacity(txs.len()), outcomes: Vec::new() };
        // Clients whose delivery number advanced and who hold something here.
        let mut advanced: Vec<PublicKey> = Vec::new();
        let mut seen: std::collections::HashSet<PublicKey> = Default::default();
        for tx in txs {
            let id = tx.id();
            if self.buckets.delivered(&id) {
                if let Some((key, _)) = self.valid.remove(&id) {
                    self.release(key, id);
                }
            }
            if self.pending.remove(&id).is_some() {
                self.release(slot_key(tx), id);
            }
            let c = self.clients.entry(tx.client).or_default();
            let dn = tx.delivery_number;
            let verdict = if dn == c.delivered && tx.epoch >= c.last_next_epoch {
                c.delivered += 1;
                c.last_next_epoch = tx.next_epoch;
                c.last_request = Some(request_id(&tx.request));
                if self.held_per_client.contains_key(&tx.client) && seen.insert(tx.client) {
                    advanced.push(tx.client);
                }
                Ok(())
            } else if dn > c.delivered {
                Err(Rejection::Invalid(Invalid::DeliveryNumberMismatch { expected: c.delivered, got: dn }))
            } else if dn == c.delivered {
                Err(Rejection::Invalid(Invalid::BeforeFutureEpoch {
                    epoch: tx.epoch,
                    last_next_epoch: c.last_next_epoch,
                }))
            } else if dn + 1 == c.delivered && c.last_request == Some(request_id(&tx.request)) {
                Err(Rejection::AlreadyDelivered)
            } else {
                Err(Rejection::Invalid(Invalid::ConflictsWithDelivered { dn }))
            };
            if verdict.is_err() {
                self.stats.not_executed += 1;
            }
            applied.executed.push(verdict);
        }
        for client in advanced {
            self.delete_used(&client, &mut applied.outcomes);
        }
        self.block_hashes.insert(epoch, hash);
        // h^(e_c−1) is needed for transactions up to the TBG window old.
        let keep = 2 * u64::from(self.cfg.tbg.kappa) * u64::from(self.cfg.tbg.groups) + 4;
        let floor = epoch.saturating_sub(keep);
        self.block_hashes = self.block_hashes.split_off(&floor);
        self.local_epoch = self.local_epoch.max(epoch + 1);
        applied.outcomes.extend(self.revisit());
        applied
    }
}

impl BatchSource for PiTau {
    type Tx = Arc<LbftTx>;

    /// TBG's batch (Algorithm 4.2); the transactions leave the buckets
    /// (line 22: "when tx_c is broadcast").
    fn next_batch(&mut self, epoch: u64) -> Vec<Arc<LbftTx>> {
        let batch = self.buckets.next_batch(epoch);
        self.buckets.end_epoch(epoch);
        self.release_consulted(epoch);
        batch.into_iter().map(|a| a.tx).collect()
    }

    fn delivered(&mut self, epoch: u64, block_hash: Hash32, txs: &[Arc<LbftTx>]) {
        self.on_block(epoch, block_hash, txs);
    }
}
