//! The settlement state off the primary chain (issue 11, thesis Fig 3-7):
//! what the secondary side holds and the primary chain commits to by one
//! root per batch.
//!
//! **What the primary chain stores.** Per batch: a header with the rolling
//! commitment over its entries, the TCR root and the post-state root the
//! executor posted with `sc_cr`, and the burned total; the latest settled
//! state root; node registrations and deposits; certified meter keys (a
//! registry written once per trader); and the *bridge*: coin sent with
//! `fund` and paid out by `withdraw`, each one small queue item
//! ([`QueueItem`]) that the next batch to open applies before its entries.
//! No balance, reputation, agreement or claim is in its storage; `finalize`
//! is O(1): once the window has passed without a won dispute it accepts the
//! posted post-state root.
//!
//! **What executors must publish** (data availability): nothing beyond
//! what the primary chain already holds as block data. The entries are the
//! calldata of the `SC_DS_*` calls, the TCR leaves (verdicts and effects)
//! the calldata of `sc_cr`, the queue items the calldata and value of
//! `fund`/`withdraw` (also readable with the `queue` view).
//!
//! **How anyone reconstructs the state** ([`crate::driver::DualChain::settled_state`]):
//! start from the empty state; for each settled batch in order apply its
//! queue items ([`apply_queue`]), then the effects of its posted leaves (or,
//! for a batch the chain executed itself after a dispute or a silent
//! executor, re-execute its entries: execution is deterministic), and check
//! the result's [`state_root`] against the root the primary chain settled.
//! A mismatch seen inside a batch's window is what a whole-batch `dispute`
//! proves (the disputer brings the records the batch touches with their
//! proof against the settled root); after the window the settled root is final.
//!
//! **The commitment** ([`crate::smt`]). A sparse Merkle tree of depth 256:
//! each record sits at the leaf whose path is the tagged hash of its key
//! ([`RecordKey::path`]: a participant by address, an open agreement by
//! its key, a slot's claimed energy by slot), its value the hash of the
//! record; an absent record is an empty leaf. A record is proved by a
//! multi-proof ([`crate::smt::SmtProof`]) that proves absence as well as
//! presence, and the same proof lets the chain compute the root after the
//! records change, without the rest of the state.
//!
//! **Disputing a state root.** Every posted leaf carries the state root
//! after its entry ([`entry_roots`]); the last one is the batch's
//! post-state root (`sc_cr` refuses any other). Three challenges cover a
//! batch, each inside its window:
//! - a wrong TCR (verdict or effects): `dispute_entry`, one entry with its
//!   witness against the TCR root, re-executed on the leaf's inputs;
//! - a wrong state transition: `dispute_state`, one entry with the
//!   witnesses of its leaf and the previous one and a [`StateWitness`] of
//!   the records it touches ([`entry_keys`]; for entry 0 also the accounts
//!   of the batch's queue items) against entry `i`'s pre-root (the settled
//!   root for entry 0, else the previous leaf's root); the chain applies
//!   the leaf's effects to those records, updates the root through the
//!   proof and compares it with the leaf's. Size and gas grow with the
//!   records one entry touches (at most five) times the tree depth, not
//!   with the state;
//! - wrong inputs in a leaf, or anything else: the whole-batch `dispute`,
//!   which brings a witness of every record the batch touches against the
//!   settled root and re-executes the batch on them; `finalize` of a batch
//!   the chain executes itself does the same. Gas grows with the entries
//!   (one path of hashes per touched record and per entry's root), not
//!   with the state.
//!
//! Which records an entry touches is computed by the chain from the entry
//! (and the posted effects), never taken from the disputer, and a witness
//! proves each of them present or absent: a disputer cannot leave a
//! record out so that execution reads a default in its place.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::{Address, Amount, Hash32};
use serde::Serialize;

use crate::exec::PreState;
use crate::smt::{Smt, SmtError, SmtProof};
use crate::types::{Agreement, AgreementKey, Effect, Entry, IorParams, Participant, SlotKey, Tcr};

/// Domain of a state record's value hash.
pub const TAG_STATE_RECORD: Tag = Tag("gridledger/ior/state-record/v1");
/// Domain of a record key's path in the tree.
pub const TAG_STATE_KEY: Tag = Tag("gridledger/ior/state-key/v1");

/// One record of the committed state.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateRecord {
    Participant(Address, Participant),
    Agreement(AgreementKey, Agreement),
    Claimed(SlotKey, u128),
    /// A slot that also holds re-allocation data ([`crate::exec::SlotAlloc`]):
    /// its claimed total (possibly 0) and its export and movable claims.
    /// A slot without such data keeps the plain `Claimed` record.
    ClaimedAt(SlotKey, u128, crate::exec::SlotAlloc),
}

impl StateRecord {
    pub fn hash(&self) -> Hash32 {
        hash_tagged(TAG_STATE_RECORD, self)
    }

    pub fn key(&self) -> RecordKey {
        match self {
            StateRecord::Participant(a, _) => RecordKey::Participant(*a),
            StateRecord::Agreement(k, _) => RecordKey::Agreement(*k),
            StateRecord::Claimed(k, _) | StateRecord::ClaimedAt(k, _, _) => RecordKey::Claimed(*k),
        }
    }
}

/// Where a record lives in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum RecordKey {
    Participant(Address),
    Agreement(AgreementKey),
    Claimed(SlotKey),
}

impl RecordKey {
    /// The leaf's path: the tagged hash of the key.
    pub fn path(&self) -> Hash32 {
        hash_tagged(TAG_STATE_KEY, self)
    }

    /// The record at this key in `s`, if any.
    pub fn record(&self, s: &PreState) -> Option<StateRecord> {
        match self {
            RecordKey::Participant(a) => s.participants.get(a).map(|p| StateRecord::Participant(*a, *p)),
            RecordKey::Agreement(k) => s.agreements.get(k).map(|ag| StateRecord::Agreement(*k, ag.clone())),
            RecordKey::Claimed(k) => match (s.claimed.get(k), s.slots.get(k)) {
                (c, Some(a)) => Some(StateRecord::ClaimedAt(*k, c.copied().unwrap_or(0), a.clone())),
                (Some(c), None) => Some(StateRecord::Claimed(*k, *c)),
                (None, None) => None,
            },
        }
    }
}

/// The committed records of `s` in key order (meters and
/// `closed_in_batch` and `penalised_in_batch` are not part of the settled
/// state: meters are the primary chain's registry, the other two per-batch
/// scratch).
pub fn records(s: &PreState) -> Vec<StateRecord> {
    let mut v = Vec::with_capacity(s.participants.len() + s.agreements.len() + s.claimed.len());
    v.extend(s.participants.iter().map(|(a, p)| StateRecord::Participant(*a, *p)));
    v.extend(s.agreements.iter().map(|(k, ag)| StateRecord::Agreement(*k, ag.clone())));
    let slots: BTreeSet<_> = s.claimed.keys().chain(s.slots.keys()).copied().collect();
    v.extend(slots.into_iter().filter_map(|k| RecordKey::Claimed(k).record(s)));
    v
}

/// The full tree over the records of `s`.
pub fn tree(s: &PreState) -> Smt {
    Smt::new(records(s).iter().map(|r| (r.key().path(), r.hash())))
}

/// The state root of `s`.
pub fn state_root(s: &PreState) -> Hash32 {
    tree(s).root()
}

/// The root of the empty state (before any batch settled).
pub fn empty_root() -> Hash32 {
    crate::smt::empty_root()
}

/// `who`'s record in `s` and its proof against [`state_root`]`(s)`;
/// `None` when `s` holds no record of `who` (an account never funded).
pub fn participant_proof(s: &PreState, who: &Address) -> Option<(Participant, SmtProof)> {
    let part = *s.participants.get(who)?;
    let proof = tree(s).proof(&[RecordKey::Participant(*who).path()]).ok()?;
    Some((part, proof))
}

/// Whether `record` is `who`'s record under `root` by `proof`, and the
/// hashes that took (for gas).
pub fn verify_participant(who: &Address, record: &Participant, proof: &SmtProof, root: &Hash32) -> (bool, u64) {
    let r = StateRecord::Participant(*who, *record);
    match Smt::from_proof(vec![(r.key().path(), r.hash())], proof) {
        Ok(mut t) => (t.root() == *root, t.hashes()),
        Err(_) => (false, 0),
    }
}

/// The records a set of entries touch: each entry's sender, buyer and
/// seller, its agreement and (an ST's) its grid slots' claimed energy, plus every record
/// the given TCRs' effects name (a forged effect may name anyone). What
/// execution reads and effects write is within this set (`leaf_inputs`,
/// `expected_effects`), so a batch re-executes exactly on it.
pub fn entry_keys(entries: &[Entry], tcrs: &[Tcr], grid_s: u32) -> BTreeSet<RecordKey> {
    let mut k = BTreeSet::new();
    for e in entries {
        let t = e.tx.terms();
        for a in [e.sender, t.buyer, t.seller] {
            k.insert(RecordKey::Participant(a));
        }
        k.insert(RecordKey::Agreement(t.key()));
        k.extend(crate::exec::claim_slots(e, grid_s).into_iter().map(RecordKey::Claimed));
    }
    for t in tcrs {
        for eff in &t.effects {
            match eff {
                Effect::Lock { who, .. } | Effect::Reputation { who, .. } => {
                    k.insert(RecordKey::Participant(*who));
                }
                Effect::Pay { to, .. } => {
                    k.insert(RecordKey::Participant(*to));
                }
                Effect::Claim { slot, .. } => {
                    k.insert(RecordKey::Claimed(*slot));
                }
                Effect::ClaimSold { slots, .. } => {
                    k.extend(slots.iter().map(|(slot, _)| RecordKey::Claimed(*slot)));
                }
                Effect::ClaimExport { slots, reach, .. } | Effect::ClaimPaid { slots, reach, .. } => {
                    k.extend(slots.iter().map(|(slot, _)| RecordKey::Claimed(*slot)));
                    let after = slots.last().map(|(l, _)| crate::exec::following_slots(l, *reach)).unwrap_or_default();
                    k.extend(after.into_iter().map(RecordKey::Claimed));
                }
                Effect::Open(_) | Effect::Burn(_) | Effect::Close | Effect::Opinion(_) => {}
            }
        }
    }
    k
}

/// The accounts queue items credit or debit.
pub fn queue_keys(items: &[QueueItem]) -> BTreeSet<RecordKey> {
    items
        .iter()
        .map(|q| match q {
            QueueItem::In { who, .. } | QueueItem::Out { who, .. } => RecordKey::Participant(*who),
            QueueItem::Prune { slot } => RecordKey::Claimed(*slot),
        })
        .collect()
}

/// Some records of a state with their proof against its root: what
/// `dispute_state`, the whole-batch `dispute` and `finalize` of a batch the
/// chain executes bring instead of the state. `records` holds the present
/// records among the keys the chain requires; every required key missing
/// from it is proved empty by the same proof.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StateWitness {
    pub records: Vec<StateRecord>,
    pub proof: SmtProof,
}

/// Why a [`StateWitness`] does not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    #[error("the witness brings a record the entries do not touch, or one twice")]
    Extra,
    #[error("malformed proof: {0}")]
    Proof(#[from] SmtError),
}

/// The witness of `keys` in `full`.
pub fn witness(full: &PreState, keys: &BTreeSet<RecordKey>) -> StateWitness {
    let mut t = tree(full);
    witness_in(&mut t, full, keys)
}

/// [`witness`] from an already built tree of `full`.
pub fn witness_in(t: &mut Smt, full: &PreState, keys: &BTreeSet<RecordKey>) -> StateWitness {
    let mut paths: Vec<Hash32> = keys.iter().map(RecordKey::path).collect();
    paths.sort();
    let records = keys.iter().filter_map(|k| k.record(full)).collect();
    // Sorted and distinct: a proof always exists.
    let proof = t.proof(&paths).unwrap_or_default();
    StateWitness { records, proof }
}

/// Opens `w` for exactly `keys`: the partial state of the records it
/// brings and the partial tree over every key (absent ones empty), whose
/// root the caller compares with the root the witness must match. A
/// planted bug ([`crate::mutants::Mutation::AbsenceUnchecked`]) proves only
/// the records brought, so a left-out record reads as a default.
pub fn open_witness(keys: &BTreeSet<RecordKey>, w: &StateWitness) -> Result<(PreState, Smt), WitnessError> {
    let mut s = PreState::default();
    let mut brought = BTreeSet::new();
    for r in &w.records {
        let k = r.key();
        if !keys.contains(&k) || !brought.insert(k) {
            return Err(WitnessError::Extra);
        }
        match r {
            StateRecord::Participant(a, p) => {
                s.participants.insert(*a, *p);
            }
            StateRecord::Agreement(k, ag) => {
                s.agreements.insert(*k, ag.clone());
            }
            StateRecord::Claimed(k, c) => {
                s.claimed.insert(*k, *c);
            }
            StateRecord::ClaimedAt(k, c, a) => {
                if *c > 0 {
                    s.claimed.insert(*k, *c);
                }
                s.slots.insert(*k, a.clone());
            }
        }
    }
    let skip_absent = crate::mutants::active(crate::mutants::Mutation::AbsenceUnchecked);
    let mut leaves: Vec<(Hash32, Hash32)> = keys
        .iter()
        .filter(|k| !skip_absent || brought.contains(k))
        .map(|k| (k.path(), k.record(&s).map_or(Hash32::ZERO, |r| r.hash())))
        .collect();
    leaves.sort_by_key(|a| a.0);
    Ok((s, Smt::from_proof(leaves, &w.proof)?))
}

/// Writes the records of `keys` in `s` (absent ones removed) into `t`.
pub fn update_tree(t: &mut Smt, keys: &BTreeSet<RecordKey>, s: &PreState) {
    for k in keys {
        t.set(k.path(), k.record(s).map_or(Hash32::ZERO, |r| r.hash()));
    }
}

/// Coin moving across the bridge between the primary chain and the
/// settlement state: `fund` (in) and `withdraw` (out, already paid by the
/// primary chain against a proof of the settled balance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum QueueItem {
    In {
        who: Address,
        amount: Amount,
    },
    Out {
        who: Address,
        amount: Amount,
    },
    /// Deletes a seller's grid slot record (claimed energy and
    /// re-allocation data) that no entry can read any more
    /// ([`claim_prunable`]; queued by the primary chain's `prune_claims`).
    Prune {
        slot: SlotKey,
    },
}

/// How long a claimed-slot record can still be read: `2 × max_dl_ms +
/// expiry_ms` after its slot begins. An AT's period is at most
/// `max_dl_ms` long ([`crate::types::AtRejection::PeriodTooLong`]), its
/// `DL` at most `max_dl_ms` after the period ([`crate::types::AtRejection::DeadlineTooLate`]),
/// and `SC_EXE_ST` refuses an ST recorded after `DL + expiry_ms`
/// ([`crate::types::StRejection::AfterExpiry`]) before it reads a slot,
/// so an ST that claims at time `T` reads slots beginning at or after
/// `DT_start ≥ DL − 2 × max_dl_ms ≥ T − expiry_ms − 2 × max_dl_ms`; its
/// reach (`IorTx::StReach`) and a re-allocation's window lie after `DT_start`.
/// (An expiry settled as agreed may still add sold energy to its period's
/// first slot later; it reads nothing else, and the record can be pruned
/// again.) `None` on overflow.
pub fn claim_horizon_ms(p: &IorParams) -> Option<u64> {
    p.max_dl_ms.checked_mul(2)?.checked_add(p.expiry_ms)
}

/// Whether `slot`'s record may be deleted at block time `now`: every entry
/// executed after a prune queued at `now` is recorded at `T ≥ now`, and
/// reads only slots beginning at `T − `[`claim_horizon_ms`] or later, so a
/// slot beginning strictly before `now − horizon` is read by none.
pub fn claim_prunable(p: &IorParams, slot: &SlotKey, now: u64) -> bool {
    let early =
        if crate::mutants::active(crate::mutants::Mutation::PruneEarly) { u64::from(p.meter_step_s) * 1000 } else { 0 };
    claim_horizon_ms(p).is_some_and(|h| slot.dt_start.saturating_add(h.saturating_sub(early)) < now)
}

/// Why a queue item does not apply (only a forged or corrupt queue: the
/// primary chain pays `Out` only against a proved settled balance of an
/// account no pending batch reads).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("withdrawal of {amount} from {who}, which holds {available}")]
    Overdrawn { who: Address, amount: Amount, available: Amount },
    #[error("amount overflow")]
    Overflow,
}

/// Applies queue items in order (a new account starts at `rs`).
pub fn apply_queue(s: &mut PreState, p: &IorParams, items: &[QueueItem]) -> Result<(), QueueError> {
    for q in items {
        match *q {
            QueueItem::In { who, amount } => {
                let mut part = s.participant(p, &who);
                part.balance = part.balance.checked_add(amount).ok_or(QueueError::Overflow)?;
                s.participants.insert(who, part);
            }
            QueueItem::Out { who, amount } => {
                let mut part = s.participant(p, &who);
                part.balance = part.balance.checked_sub(amount).ok_or(QueueError::Overdrawn {
                    who,
                    amount,
                    available: part.balance,
                })?;
                s.participants.insert(who, part);
            }
            QueueItem::Prune { slot } => {
                s.claimed.remove(&slot);
                s.slots.remove(&slot);
            }
        }
    }
    Ok(())
}

/// The slice of `full` a batch of `entries` reads (what the primary
/// contract's view used to load from its storage): the records of every
/// trader an entry names, their agreements and the claimed energy of the
/// STs' slots. Meters are kept as given.
pub fn slice_for(full: &PreState, entries: &[crate::types::Entry], grid_s: u32) -> PreState {
    let (parts, buyers) = crate::exec::touched(entries, &[]);
    let slots = crate::exec::st_slots(entries, grid_s);
    let owners = crate::exec::meter_owners(entries);
    PreState {
        participants: full.participants.iter().filter(|(a, _)| parts.contains(a)).map(|(a, p)| (*a, *p)).collect(),
        agreements: full
            .agreements
            .iter()
            .filter(|(k, _)| buyers.contains(k))
            .map(|(k, ag)| (*k, ag.clone()))
            .collect(),
        meters: full.meters.iter().filter(|(a, _)| owners.contains(a)).map(|(a, m)| (*a, *m)).collect(),
        claimed: full.claimed.iter().filter(|(k, _)| slots.contains(k)).map(|(k, c)| (*k, *c)).collect(),
        slots: full.slots.iter().filter(|(k, _)| slots.contains(k)).map(|(k, a)| (*k, a.clone())).collect(),
        closed_in_batch: Default::default(),
        penalised_in_batch: Default::default(),
    }
}

/// The state `tcrs` leave when their effects are applied in order to
/// `full` (a batch's pre-state, queue items applied), and the coin they
/// burn.
pub fn post_state(
    p: &IorParams,
    full: &PreState,
    entries: &[crate::types::Entry],
    tcrs: &[crate::types::Tcr],
) -> Result<(PreState, Amount), crate::exec::ApplyError> {
    let mut s = full.clone();
    let mut burned = Amount::ZERO;
    for t in tcrs {
        let e = entries.get(t.index as usize).ok_or(crate::exec::ApplyError::Overflow)?;
        let b = crate::exec::apply_effects(&mut s, p, &e.tx.terms().key(), &t.effects)?;
        burned = burned.checked_add(b).ok_or(crate::exec::ApplyError::Overflow)?;
    }
    s.closed_in_batch.clear();
    s.penalised_in_batch.clear();
    s.meters.clear();
    Ok((s, burned))
}

/// The state root after each of `tcrs` in turn, applied to `full` (a
/// batch's pre-state, queue items applied): what each posted leaf carries
/// as its `post_root`. `Err` where some TCR's effects do not apply. One
/// tree of `full`, then one path of hashes per record each entry touches.
pub fn entry_roots(
    p: &IorParams,
    full: &PreState,
    entries: &[crate::types::Entry],
    tcrs: &[crate::types::Tcr],
) -> Result<Vec<Hash32>, crate::exec::ApplyError> {
    let mut s = full.clone();
    s.meters.clear();
    s.closed_in_batch.clear();
    s.penalised_in_batch.clear();
    let mut t = tree(&s);
    let mut out = Vec::with_capacity(tcrs.len());
    for tcr in tcrs {
        let e = entries.get(tcr.index as usize).ok_or(crate::exec::ApplyError::Overflow)?;
        crate::exec::apply_effects(&mut s, p, &e.tx.terms().key(), &tcr.effects)?;
        update_tree(&mut t, &entry_keys(std::slice::from_ref(e), std::slice::from_ref(tcr), p.meter_step_s), &s);
        out.push(t.root());
    }
    Ok(out)
}

/// Sets each leaf's `post_root` ([`entry_roots`]); leaves whose effects
/// do not apply (from the first such one on) keep a zero root.
pub fn fill_post_roots(
    p: &IorParams,
    full: &PreState,
    entries: &[crate::types::Entry],
    leaves: &mut [crate::types::TcrLeaf],
) {
    let mut s = full.clone();
    s.meters.clear();
    s.closed_in_batch.clear();
    s.penalised_in_batch.clear();
    let mut t = tree(&s);
    for l in leaves.iter_mut() {
        let Some(e) = entries.get(l.tcr.index as usize) else { return };
        if crate::exec::apply_effects(&mut s, p, &e.tx.terms().key(), &l.tcr.effects).is_err() {
            return;
        }
        update_tree(&mut t, &entry_keys(std::slice::from_ref(e), std::slice::from_ref(&l.tcr), p.meter_step_s), &s);
        l.post_root = t.root();
    }
}

/// The witness a whole-batch `dispute` or `finalize` of a batch the chain
/// executes brings: every record the batch's `entries` and `queue` items
/// touch, proved against the root of `settled` (the settled state before
/// the batch, queue not applied).
pub fn batch_witness(settled: &PreState, queue: &[QueueItem], entries: &[Entry], grid_s: u32) -> StateWitness {
    let mut keys = entry_keys(entries, &[], grid_s);
    keys.extend(queue_keys(queue));
    witness(settled, &keys)
}

/// The witness `dispute_state` of entry `i` brings: the records the entry
/// and its posted TCR touch, proved against the state before the entry
/// (`before`); for entry 0 `before` is the settled state (queue not
/// applied) and the queue items' accounts are proved too.
pub fn entry_witness(before: &PreState, queue: &[QueueItem], entry: &Entry, tcr: &Tcr, grid_s: u32) -> StateWitness {
    let mut keys = entry_keys(std::slice::from_ref(entry), std::slice::from_ref(tcr), grid_s);
    keys.extend(queue_keys(queue));
    witness(before, &keys)
}
