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
//! proves (the disputer brings the full pre-state, which the chain checks
//! against the settled root); after the window the settled root is final.
//!
//! **The commitment.** A binary Merkle tree (the core crate's) over one
//! leaf per record in canonical order: every participant by address, then
//! every open agreement by key, then every slot's claimed energy by slot.
//! A record is proved by its Merkle witness ([`participant_proof`]); the
//! root is recomputed in full only on the dispute path.
//!
//! **Disputing a state root.** Every posted leaf carries the state root
//! after its entry ([`entry_roots`]); the last one is the batch's
//! post-state root (`sc_cr` refuses any other). Three challenges cover a
//! batch, each inside its window:
//! - a wrong TCR (verdict or effects): `dispute_entry`, one entry with its
//!   witness against the TCR root, re-executed on the leaf's inputs;
//! - a wrong state transition: `dispute_state`, one entry with the
//!   witnesses of its leaf and the previous one and the full state before
//!   the entry, checked against the previous leaf's root (the settled
//!   root, queue applied, for entry 0); the chain applies the leaf's
//!   effects and compares the root with the leaf's. O(state) hashing for
//!   one entry, whatever the batch's size;
//! - wrong inputs in a leaf, or anything else: the whole-batch `dispute`,
//!   which brings the full settled state and re-executes the batch
//!   (O(batch × state): one root per entry).
//!
//! The pre-state is brought whole because this sorted tree cannot update
//! its root from witnesses when records are inserted or removed; a sparse
//! Merkle tree keyed by record key would let a state dispute bring only
//! the records the entry touches.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::merkle::{MerkleProof, MerkleTree};
use gridledger_core::{Address, Amount, Hash32};
use serde::Serialize;

use crate::exec::PreState;
use crate::types::{Agreement, AgreementKey, IorParams, Participant, SlotKey};

/// Domain of a state record's leaf hash.
pub const TAG_STATE_RECORD: Tag = Tag("gridledger/ior/state-record/v1");

/// One record of the committed state.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StateRecord {
    Participant(Address, Participant),
    Agreement(AgreementKey, Agreement),
    Claimed(SlotKey, u128),
}

impl StateRecord {
    pub fn hash(&self) -> Hash32 {
        hash_tagged(TAG_STATE_RECORD, self)
    }
}

/// The committed records of `s` in canonical order (meters and
/// `closed_in_batch` are not part of the settled state: meters are the
/// primary chain's registry, `closed_in_batch` is per-batch scratch).
pub fn records(s: &PreState) -> Vec<StateRecord> {
    let mut v = Vec::with_capacity(s.participants.len() + s.agreements.len() + s.claimed.len());
    v.extend(s.participants.iter().map(|(a, p)| StateRecord::Participant(*a, *p)));
    v.extend(s.agreements.iter().map(|(k, ag)| StateRecord::Agreement(*k, ag.clone())));
    v.extend(s.claimed.iter().map(|(k, c)| StateRecord::Claimed(*k, *c)));
    v
}

/// The state root of `s`.
pub fn state_root(s: &PreState) -> Hash32 {
    let hs: Vec<Hash32> = records(s).iter().map(StateRecord::hash).collect();
    gridledger_core::merkle::merkle_root(&hs)
}

/// The root of the empty state (before any batch settled).
pub fn empty_root() -> Hash32 {
    state_root(&PreState::default())
}

/// `who`'s record in `s` and its Merkle witness against [`state_root`]`(s)`;
/// `None` when `s` holds no record of `who` (an account never funded).
pub fn participant_proof(s: &PreState, who: &Address) -> Option<(Participant, MerkleProof)> {
    let index = s.participants.keys().position(|a| a == who)?;
    let part = *s.participants.get(who)?;
    let hs: Vec<Hash32> = records(s).iter().map(StateRecord::hash).collect();
    Some((part, MerkleTree::new(&hs).proof(index)?))
}

/// Coin moving across the bridge between the primary chain and the
/// settlement state: `fund` (in) and `withdraw` (out, already paid by the
/// primary chain against a proof of the settled balance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum QueueItem {
    In { who: Address, amount: Amount },
    Out { who: Address, amount: Amount },
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
        }
    }
    Ok(())
}

/// The slice of `full` a batch of `entries` reads (what the primary
/// contract's view used to load from its storage): the records of every
/// trader an entry names, their agreements and the claimed energy of the
/// STs' slots. Meters are kept as given.
pub fn slice_for(full: &PreState, entries: &[crate::types::Entry]) -> PreState {
    let (parts, buyers) = crate::exec::touched(entries, &[]);
    let slots = crate::exec::st_slots(entries);
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
        closed_in_batch: Default::default(),
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
    s.meters.clear();
    Ok((s, burned))
}

/// The state root after each of `tcrs` in turn, applied to `full` (a
/// batch's pre-state, queue items applied): what each posted leaf carries
/// as its `post_root`. `Err` where some TCR's effects do not apply.
pub fn entry_roots(
    p: &IorParams,
    full: &PreState,
    entries: &[crate::types::Entry],
    tcrs: &[crate::types::Tcr],
) -> Result<Vec<Hash32>, crate::exec::ApplyError> {
    let mut s = full.clone();
    s.meters.clear();
    s.closed_in_batch.clear();
    let mut out = Vec::with_capacity(tcrs.len());
    for t in tcrs {
        let e = entries.get(t.index as usize).ok_or(crate::exec::ApplyError::Overflow)?;
        crate::exec::apply_effects(&mut s, p, &e.tx.terms().key(), &t.effects)?;
        out.push(state_root(&s));
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
    for l in leaves.iter_mut() {
        let Some(e) = entries.get(l.tcr.index as usize) else { return };
        if crate::exec::apply_effects(&mut s, p, &e.tx.terms().key(), &l.tcr.effects).is_err() {
            return;
        }
        l.post_root = state_root(&s);
    }
}
