//! `SC_EXE_AT` and `SC_EXE_ST` (thesis §3.3.5) as one deterministic, pure
//! function over a batch of recorded entries and the IOR state before it.
//!
//! The same code runs in four places, which is what makes a TCR checkable:
//! the executor (off-chain, and on the secondary chain's `sc_exe`), the
//! validator (`SC_VERIFY`), the primary chain's arbitration of a
//! controversial transaction, and the single-chain baseline. Only the
//! [`ExecEnv`] differs: on chain, signature recovery and work are metered.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::recover;
use gridledger_core::{Address, Amount, Hash32, RecoverableSignature};
use gridledger_ledger::{gas, CallContext, ContractError};
use serde::Serialize;

use crate::types::{
    Agreement, AgreementKey, AgreementTerms, AgreementTx, AtRejection, BuyerOpinion, Effect, Entry, IorParams, IorTx,
    MeterRecord, Outcome, Participant, SettlementTx, SlotKey, StRejection, StSettlement, Tcr, TcrLeaf,
};

/// Gas for one meter reading in the `Σ P_s × Δt` loop: calldata load,
/// multiply, add and loop overhead of the equivalent Solidity loop.
pub const READING_GAS: u64 = 50;
/// Gas for one validity step (field comparisons, arithmetic, branching).
pub const STEP_GAS: u64 = 200;

/// What execution needs from its host.
pub trait ExecEnv {
    /// The address whose key made `sig` over `digest`, if any.
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError>;
    /// Charges gas (a no-op off chain).
    fn charge(&mut self, gas: u64) -> Result<(), ContractError>;
}

/// Off-chain execution: executors, validators, smart meters.
pub struct OffChain;

impl ExecEnv for OffChain {
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError> {
        Ok(recover(digest, sig).ok().map(|pk| pk.address()))
    }
    fn charge(&mut self, _gas: u64) -> Result<(), ContractError> {
        Ok(())
    }
}

/// On-chain execution inside a native contract call.
pub struct OnChain<'a, 'o, 'b>(pub &'a mut CallContext<'o, 'b>);

impl ExecEnv for OnChain<'_, '_, '_> {
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError> {
        Ok(self.0.recover_signer(digest, sig)?.map(|pk| pk.address()))
    }
    fn charge(&mut self, g: u64) -> Result<(), ContractError> {
        self.0.charge(g)
    }
}

/// Why effects could not be applied to the IOR state. Effects produced by
/// [`execute_batch`] always apply; a forged TCR may not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("agreement of buyer {0} already open")]
    AgreementExists(Address),
    #[error("no open agreement of buyer {0}")]
    NoAgreement(Address),
    #[error("{who} holds {available}, cannot lock {needed}")]
    InsufficientBalance { who: Address, needed: Amount, available: Amount },
    #[error("agreement pool holds {available}, cannot pay {needed}")]
    PoolShort { needed: Amount, available: Amount },
    #[error("agreement closed with {0} still in its pool")]
    PoolNotEmpty(Amount),
    #[error("amount overflow")]
    Overflow,
    /// A claim (ws) that the slots' unclaimed net export does not cover.
    #[error("the slots' unclaimed net export does not cover {0} ws")]
    ExportClaimed(u128),
}

/// How `ws` watt-seconds are claimed against `slots` (each with its net
/// metered export in ws) given what earlier claims took there (`claimed`):
/// the claim is covered when the net unclaimed export over its slots,
/// `Σ (export − claimed)` (an importing slot counts negative, seed Ch.3 ST
/// Step 4), is at least `ws`; it then takes, in exact integers, from the
/// slots with unclaimed export, the *earliest* slot first.
///
/// Why earliest first (issue 11, attack r5: latest-first stranded an
/// honest seller whose periods overlap partially): an ST is recorded only
/// after its delivery period ends, so a seller settling its sales as they
/// end settles them in deadline (`DT_end`) order. Any later claim then
/// ends no earlier than this one, so of this claim's slots the later ones
/// are at least as useful to it as the earlier ones: taking the earliest
/// is never worse (exchange argument), and claims settled in deadline
/// order are all covered whenever their periods' export covers them
/// together (Hall's condition on intervals; earliest-deadline-first).
/// The allocation is per claim, in settlement order, and never moves an
/// earlier claim: a seller that settles a later-ending sale before an
/// earlier-ending one it overlaps gets what greedy allocation leaves.
/// `None` when not covered or on overflow.
///
/// Won arbitrations now go through [`realloc`], which re-places the
/// seller's earlier won claims with the new one (earliest deadline
/// first) and so also covers sales settled out of deadline order; with
/// no earlier movable claim in its window and no earlier certified reading
/// of its slots it decides as this function.
pub fn claim_alloc(
    claimed: &BTreeMap<SlotKey, u128>,
    slots: &[(SlotKey, i128)],
    ws: u128,
) -> Option<Vec<(SlotKey, u128)>> {
    let free = |k: &SlotKey, m: i128| -> Option<i128> {
        m.checked_sub(i128::try_from(claimed.get(k).copied().unwrap_or(0)).ok()?)
    };
    let mut net = 0i128;
    for (k, m) in slots {
        net = net.checked_add(free(k, *m)?)?;
    }
    if net < i128::try_from(ws).ok()? {
        return None;
    }
    let mut need = ws;
    let mut out = Vec::new();
    for (k, m) in slots {
        if need == 0 {
            break;
        }
        let f = free(k, *m)?;
        if f > 0 {
            let take = need.min(u128::try_from(f).ok()?);
            out.push((*k, take));
            need -= take;
        }
    }
    (need == 0).then_some(out)
}

/// Most grid slots after its period that one ST may re-allocate over
/// ([`IorTx::StReach`]): one week of 5-minute slots, the
/// longest delivery period the default `max_dl_ms` allows, so a claim can
/// reach every sale of the default parameters that overlaps it. The
/// per-entry and per-batch gas budgets (`crate::primary::MAX_ENTRY_GAS`, `MAX_BATCH_GAS`) bound what a batch actually reads.
pub const MAX_REACH_SLOTS: u32 = 2016;

/// Most movable claims (won arbitrations and placed paid sales) over
/// distinct delivery periods one slot record holds
/// ([`SlotAlloc::by_period`]): bounds a record's size and the work of a
/// re-allocation ([`realloc`]: `O(window · MAX_PERIODS_PER_SLOT)` claims).
///
/// **The rule** (issue 11, attack r8 [2] and r9 [5]). The re-allocation's
/// earliest-deadline-first sweep lets each slot serve at most this many
/// periods: a further claim is *spilled*, it takes from a later slot of its
/// period in the window instead, so claims that may go elsewhere do not
/// crowd a slot, and a later claim that needs the slot's whole export
/// moves them aside (they stay movable). A claim whose last slot in the
/// window this is (its period ends there, or the window does) is served
/// there whatever the count. Only where that bounded sweep leaves a slot
/// with more than this many periods (more than this many claims had it as
/// their last slot) or places nothing (the sweep then runs without the
/// bound) are the slot's smallest claims kept there as fixed claimed
/// energy (counted as before, no longer moved by later claims). So a claim
/// the export covers is never refused for the number of periods.
///
/// **When a claim can still be pinned** (issue 11, attack r10 [3]). Exactly
/// in these two cases of one re-allocation:
/// 1. the bounded sweep succeeds but more than this many recorded claims
///    (won claims and the new claim, of distinct periods) have the same
///    slot as their last slot in the window and take from it (they are
///    served there first, whatever the count): that slot's smallest are
///    pinned;
/// 2. the bounded sweep places nothing and the unbounded one succeeds:
///    every slot where the unbounded sweep served more than this many
///    periods pins its smallest claims. The bounded sweep is greedy
///    (earliest deadline first, a full slot skipping later-deadline
///    claims), so this case includes windows where a placement within the
///    bound exists: a full slot's cap was what a skipped claim needed and
///    its later slots have too little, while an earlier-deadline claim
///    served there could have moved to a later slot (attack r10 [3]:
///    eight 1 ws claims and a 3 ws claim over slots exporting 10, 1, 0).
///
/// Both need more than this many recorded claims of distinct periods whose
/// in-window spans share one slot (a slot is skipped only when it already
/// serves this many periods and a further one could take from it); with
/// at most this many, nothing is pinned. Finding a placement within the
/// bound whenever one exists is not attempted: with per-slot caps on the
/// number of claims served and claims split across slots it is bin
/// packing with splittable items and cardinality constraints, NP-hard in
/// general, beyond the per-entry work bound (`O(window · claims)`).
pub const MAX_PERIODS_PER_SLOT: usize = 8;

/// The `n` grid slots (of `last`'s length) that follow `last`, at most
/// [`MAX_REACH_SLOTS`]; fewer where time would overflow.
pub fn following_slots(last: &SlotKey, n: u32) -> Vec<SlotKey> {
    let len = last.dt_end.saturating_sub(last.dt_start);
    let mut out = Vec::new();
    let mut at = *last;
    for _ in 0..n.min(MAX_REACH_SLOTS) {
        let Some(end) = at.dt_end.checked_add(len) else { break };
        if len == 0 {
            break;
        }
        at = SlotKey { seller: at.seller, dt_start: at.dt_end, dt_end: end };
        out.push(at);
    }
    out
}

/// What a seller's grid slot holds for re-allocating won arbitrations
/// (issue 11, attack r4/r5: claims settled out of deadline order).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct SlotAlloc {
    /// The slot's net export (ws) by the least certified reading a won
    /// arbitration or a placed paid sale ([`place_paid`]) brought for it;
    /// `None` until one did. Only certified readings set it.
    pub export: Option<i128>,
    /// Watt-seconds of won arbitrations ([`Effect::ClaimExport`]) taken
    /// from this slot, by their delivery period `(DT_start, DT_end)`; a
    /// later claim may move them within their period. The rest of the
    /// slot's `claimed` total is fixed (a sale without certified readings
    /// recorded on a crowded slot, [`record_sold`]; claims of older code).
    pub by_period: BTreeMap<(u64, u64), u128>,
    /// Sales paid without arbitration that certified export did not place
    /// ([`place_paid`], [`record_sold`]: agreed settlements, late buyer
    /// signatures, expiries settled as agreed, without certified readings
    /// that cover them) whose delivery period `(DT_start, DT_end)` holds this slot,
    /// with their whole `ws` (summed per period). The same entry sits on
    /// every slot of the period, so any later arbitration whose window
    /// overlaps the period sees it; [`realloc`] re-places it each time,
    /// within the window's slots of its period (issue 11, attack r6: a sale
    /// pinned to one slot, or placed by readings nobody certified, let a
    /// later buyer's arbitration count the same export again).
    pub sold: BTreeMap<(u64, u64), u128>,
}

/// The records a won arbitration leaves: per slot of its window, the new
/// claimed total and the new [`SlotAlloc`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Realloc {
    pub slots: Vec<(SlotKey, u128, SlotAlloc)>,
}

/// Whether a won arbitration claiming `ws` watt-seconds over `split` (its
/// grid slots with the net export its certified readings show) is
/// covered, re-allocating the seller's earlier won claims over the window
/// `split` ++ `reach` (contiguous slots of one seller), and the records
/// it leaves. `None`: not covered (nothing changes).
///
/// **The problem.** Each won claim needs its energy from the slots of its
/// own period; a slot gives at most its export less the energy recorded
/// as sold there (fixed). That is a transportation problem whose demand
/// sets are intervals, and earliest-deadline-first (sweep the slots in
/// time order, each slot serving the open claims whose period ends
/// first) finds an allocation whenever one exists (the exchange argument
/// of [`claim_alloc`], now over all claims at once). Every claim that
/// holds energy in the window is re-placed, its in-window amount within
/// its period's in-window slots; what it holds outside the window stays.
/// So the new claim is covered iff the window's export covers it and the
/// earlier claims together, and an earlier claim is never un-covered: a
/// settled payment stands, and if the new claim does not fit beside them
/// the new claim is the uncovered one.
///
/// **Imports.** As before (seed Ch.3 ST Step 4), an importing slot of the
/// new claim's period counts negative, and so does sold energy beyond a
/// slot's export: the new claim demands `ws` plus those deficits from its
/// period's free export, and records `ws` of what it got, earliest first.
///
/// **Export.** A slot's export is the least certified reading of it yet;
/// slots of the window no certified reading covered give nothing.
///
/// **Sales paid without arbitration** (agreed, late-signed, expiries
/// settled as agreed) are placed by [`place_paid`] when they settle: one
/// whose export covers it beside the earlier claims (its own certified
/// readings, else export certified earlier) becomes a movable claim here
/// like a won arbitration (issue 11, attack r7 [1]: an agreed or
/// late-signed sale with certified readings over an hour no longer demands
/// the whole hour from a later dispute's window). One that does not fit
/// and meets no won claim in its slots is a *period demand*
/// ([`SlotAlloc::sold`], attack r6): each sold period the window's slots
/// hold must get its *whole* `ws` from the window's slots of its period,
/// re-placed by the same sweep (nothing recorded for it; it is re-placed
/// at every later arbitration). Where that sale's energy came from is
/// unknown (its readings are not certified or did not cover it, an expiry
/// has none), so the window must cover it; the seller had the means to
/// avoid this (its meter's signature on the ST it sends before the
/// expiry), and it is what stops one export being sold twice through a
/// sale pinned to a slot outside the later buyer's period. (A demand
/// relieved by the export of its period's slots outside the window would
/// let two such demands count the same outside export, and a demand over
/// a slot outside every window no arbitration re-checks; so the whole
/// `ws` stays.)
///
/// **Cost.** `O((|window| + claims) · log claims)` exact integer steps,
/// the window at most the period plus [`MAX_REACH_SLOTS`] and each slot
/// holding at most [`MAX_PERIODS_PER_SLOT`] won claims and as many sold
/// periods ([`record_sold`]), at most twice (the sweep bounded by
/// [`MAX_PERIODS_PER_SLOT`], then unbounded where that places nothing);
/// deterministic (ties by period, the new claim last).
pub fn realloc(st: &PreState, split: &[(SlotKey, i128)], reach: &[SlotKey], ws: u128) -> Option<Realloc> {
    let split: Vec<(SlotKey, Option<i128>)> = split.iter().map(|(k, m)| (*k, Some(*m))).collect();
    realloc_at(st, &split, reach, ws)
}

/// [`realloc`] where the new claim's own slots may come without a
/// certified reading (`None`): such a slot gives what earlier certified
/// readings showed of it, nothing when none did. What places a sale paid
/// without arbitration ([`place_paid`]).
pub fn realloc_at(st: &PreState, split: &[(SlotKey, Option<i128>)], reach: &[SlotKey], ws: u128) -> Option<Realloc> {
    let (first, _) = split.first()?;
    let (last, _) = split.last()?;
    let own = (first.dt_start, last.dt_end);
    let window: Vec<SlotKey> = split.iter().map(|(k, _)| *k).chain(reach.iter().copied()).collect();
    let n = split.len();
    let skip = crate::mutants::active(crate::mutants::Mutation::ReallocSkipped);
    let sold_ignored = crate::mutants::active(crate::mutants::Mutation::SoldIgnored);
    let mut caps = Vec::with_capacity(window.len());
    let mut fixed = Vec::with_capacity(window.len());
    let mut exports = Vec::with_capacity(window.len());
    let mut deficit: u128 = 0;
    // Demands of earlier claims: period -> in-window amount.
    let mut held: BTreeMap<(u64, u64), u128> = BTreeMap::new();
    // Sales paid without certified readings: period -> whole amount.
    let mut sold: BTreeMap<(u64, u64), u128> = BTreeMap::new();
    for (i, k) in window.iter().enumerate() {
        let rec = st.slots.get(k);
        let reading = split.get(i).and_then(|(_, m)| *m);
        let export = match (rec.and_then(|r| r.export), reading) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let movable = match rec {
            Some(r) if !skip => r.by_period.values().try_fold(0u128, |a, v| a.checked_add(*v))?,
            _ => 0,
        };
        if let Some(r) = rec.filter(|_| !skip) {
            for (p, v) in &r.by_period {
                let h = held.entry(*p).or_insert(0);
                *h = h.checked_add(*v)?;
            }
            for (p, v) in r.sold.iter().filter(|_| !sold_ignored) {
                let h = sold.entry(*p).or_insert(0);
                *h = (*h).max(*v);
            }
        }
        let fx = st.claimed.get(k).copied().unwrap_or(0).saturating_sub(movable);
        let free = export.unwrap_or(0).checked_sub(i128::try_from(fx).ok()?)?;
        if i < n && free < 0 {
            deficit = deficit.checked_add(free.unsigned_abs())?;
        }
        caps.push(u128::try_from(free.max(0)).ok()?);
        fixed.push(fx);
        exports.push(export);
    }
    // Interval [lo, hi] of window indices of a period.
    let span = |p: (u64, u64)| -> Option<(usize, usize)> {
        let lo = window.iter().position(|k| k.dt_start >= p.0)?;
        let hi = window.iter().rposition(|k| k.dt_end <= p.1)?;
        (lo <= hi).then_some((lo, hi))
    };
    // (hi, lo, kind, period) -> remaining; kind: WON, SOLD or NEW (ties:
    // the new claim last); starts sorted by lo.
    const WON: u8 = 0;
    const SOLD: u8 = 1;
    const NEW: u8 = 2;
    type Id = (usize, usize, u8, (u64, u64));
    // Per window slot, the won claims' amounts by period, and the new claim's amounts.
    type Sweep = (Vec<BTreeMap<(u64, u64), u128>>, Vec<u128>);
    let mut starts: Vec<(Id, u128)> = Vec::with_capacity(held.len() + sold.len() + 1);
    for (p, a) in &held {
        let (lo, hi) = span(*p)?;
        starts.push(((hi, lo, WON, *p), *a));
    }
    for (p, a) in &sold {
        let (lo, hi) = span(*p)?;
        starts.push(((hi, lo, SOLD, *p), *a));
    }
    starts.push(((n - 1, 0, NEW, own), ws.checked_add(deficit)?));
    starts.sort_by_key(|((_, lo, _, _), _)| *lo);
    // Earliest deadline first, each slot serving at most
    // `MAX_PERIODS_PER_SLOT` recorded periods (won and new claims; sold
    // periods are not recorded per slot): a further claim spills to a later
    // slot of its period, unless this is its last slot in the window. Only
    // where that finds no placement does the sweep run unbounded, and the
    // slot's smallest claims are pinned below (attack r9 [5]).
    let spill = !crate::mutants::active(crate::mutants::Mutation::PeriodsNotSpilled);
    let sweep = |bounded: bool| -> Option<Sweep> {
        let mut next = 0;
        // Open claims by (deadline, start, kind, period): recorded ones
        // (won, new) and sold periods apart, so a full slot still serves
        // sold periods without scanning the claims it may not take.
        let mut open: BTreeMap<Id, u128> = BTreeMap::new();
        let mut open_sold: BTreeMap<Id, u128> = BTreeMap::new();
        let mut got: Vec<BTreeMap<(u64, u64), u128>> = vec![BTreeMap::new(); window.len()];
        let mut mine: Vec<u128> = vec![0; window.len()];
        for i in 0..window.len() {
            while let Some((id, a)) = starts.get(next).filter(|(id, _)| id.1 == i) {
                if *a > 0 {
                    if id.2 == SOLD {
                        open_sold.insert(*id, *a);
                    } else {
                        open.insert(*id, *a);
                    }
                }
                next += 1;
            }
            let mut cap = caps[i];
            // Distinct periods recorded on this slot so far (a new claim of
            // a won claim's period shares its record).
            let mut periods: Vec<(u64, u64)> = Vec::new();
            while cap > 0 {
                let full = bounded && periods.len() >= MAX_PERIODS_PER_SLOT;
                let rec = open
                    .first_key_value()
                    .map(|(id, _)| *id)
                    .filter(|id| !full || id.0 <= i || periods.contains(&id.3));
                let sold = open_sold.first_key_value().map(|(id, _)| *id);
                let (id, map) = match (rec, sold) {
                    (Some(r), Some(s)) if s < r => (s, &mut open_sold),
                    (Some(r), _) => (r, &mut open),
                    (None, Some(s)) => (s, &mut open_sold),
                    (None, None) => break,
                };
                let rem = map.get_mut(&id)?;
                let take = cap.min(*rem);
                *rem -= take;
                cap -= take;
                if *rem == 0 {
                    map.remove(&id);
                }
                if id.2 != SOLD && !periods.contains(&id.3) {
                    periods.push(id.3);
                }
                if id.2 == NEW {
                    mine[i] = take;
                } else if id.2 == WON {
                    let g = got[i].entry(id.3).or_insert(0);
                    *g = g.checked_add(take)?;
                }
            }
            let due = |m: &BTreeMap<Id, u128>| m.first_key_value().is_some_and(|(id, _)| id.0 <= i);
            if due(&open) || due(&open_sold) {
                return None;
            }
        }
        (open.is_empty() && open_sold.is_empty() && next >= starts.len()).then_some((got, mine))
    };
    let (mut got, mine) = match sweep(spill) {
        Some(placed) => placed,
        None if spill => sweep(false)?,
        None => return None,
    };
    // The new claim records `ws` of what it got, earliest first.
    let mut need = ws;
    let mut out = Vec::with_capacity(window.len());
    for (i, k) in window.iter().enumerate() {
        let take = need.min(mine[i]);
        need -= take;
        let mut by_period = match st.slots.get(k).filter(|_| skip) {
            Some(r) => r.by_period.clone(),
            None => std::mem::take(&mut got[i]),
        };
        if take > 0 {
            let g = by_period.entry(own).or_insert(0);
            *g = g.checked_add(take)?;
        }
        // More periods than a record holds: the smallest claims of the
        // slot become fixed claimed energy (still counted, no longer
        // movable) rather than leaving the new claim uncovered (issue 11,
        // attack r8 [2]: tiny sales of distinct periods must not make an
        // honest covered claim fail).
        while by_period.len() > MAX_PERIODS_PER_SLOT {
            if crate::mutants::active(crate::mutants::Mutation::PeriodsRefused) {
                return None;
            }
            let smallest = by_period.iter().min_by_key(|(p, v)| (**v, **p)).map(|(p, v)| (*p, *v))?;
            by_period.remove(&smallest.0);
            fixed[i] = fixed[i].checked_add(smallest.1)?;
        }
        let total = if skip {
            fixed[i].checked_add(take)?
        } else {
            by_period.values().try_fold(fixed[i], |a, v| a.checked_add(*v))?
        };
        let sold = st.slots.get(k).map(|r| r.sold.clone()).unwrap_or_default();
        out.push((*k, total, SlotAlloc { export: exports[i], by_period, sold }));
    }
    (need == 0).then_some(Realloc { slots: out })
}

/// Records a sale paid without arbitration that certified export does not
/// place ([`place_paid`]; [`Effect::ClaimSold`] of older batches): `ws`
/// over the delivery period of `slots` (its grid slots, contiguous), as a
/// period demand on every slot of the period ([`SlotAlloc::sold`]). Later
/// arbitrations over an overlapping window must cover it from the
/// window's slots of its period ([`realloc`]).
///
/// A seller whose slot already holds [`MAX_PERIODS_PER_SLOT`] other sold
/// periods gets the whole `ws` recorded as fixed claimed energy on *every*
/// slot of the period instead: bounded records, and stricter than the
/// period demand for every later arbitration (its own sales, its loss).
/// Never fails for lack of export; `None` for no slots or on overflow.
pub fn record_sold(st: &mut PreState, slots: &[SlotKey], ws: u128) -> Option<()> {
    let period = (slots.first()?.dt_start, slots.last()?.dt_end);
    let crowded = slots.iter().any(|k| {
        st.slots.get(k).is_some_and(|a| !a.sold.contains_key(&period) && a.sold.len() >= MAX_PERIODS_PER_SLOT)
    });
    for k in slots {
        if crowded {
            let c = st.claimed.entry(*k).or_insert(0);
            *c = c.checked_add(ws)?;
        } else {
            let v = st.slots.entry(*k).or_default().sold.entry(period).or_insert(0);
            *v = v.checked_add(ws)?;
        }
    }
    Some(())
}

/// The grid slots of `t`'s delivery period (where a sale the buyer's
/// `O_b = 1` settles at expiry is recorded, [`record_sold`]); empty off
/// the grid.
pub fn period_slots(t: &AgreementTerms, grid_s: u32) -> Vec<SlotKey> {
    let grid = u64::from(grid_s) * 1000;
    let span = t.dt_end.saturating_sub(t.dt_start);
    if grid == 0 || !t.dt_start.is_multiple_of(grid) || !span.is_multiple_of(grid) {
        return vec![];
    }
    (0..span / grid)
        .map(|i| SlotKey { seller: t.seller, dt_start: t.dt_start + i * grid, dt_end: t.dt_start + (i + 1) * grid })
        .collect()
}

/// The IOR state a batch reads: traders' records and open agreements.
/// Traders absent from the map have no coin and the initial score `rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PreState {
    pub participants: BTreeMap<Address, Participant>,
    /// Open agreements.
    pub agreements: BTreeMap<AgreementKey, Agreement>,
    /// Certified smart meter (key address and reading interval) of each
    /// seller whose ST the batch holds (`register_meter`).
    pub meters: BTreeMap<Address, MeterRecord>,
    /// Watt-seconds of each seller's metered export in a slot already
    /// claimed by won arbitrations ([`Effect::Claim`]), for the slots of
    /// the batch's STs. Absent: nothing claimed.
    pub claimed: BTreeMap<SlotKey, u128>,
    /// Per seller and slot, the export and the won claims a later claim
    /// may re-allocate ([`SlotAlloc`], [`realloc`]), for the same slots as
    /// `claimed` (one state record per slot holds both). Absent: no
    /// certified export known and no movable claim.
    pub slots: BTreeMap<SlotKey, SlotAlloc>,
    /// Agreements that were open when the batch began and that an earlier
    /// entry of the same batch closed ([`StRejection::SettledInBatch`]).
    /// Empty in a batch's pre-state; set in the per-entry slices of TCR
    /// leaves so one entry re-executes exactly as in its batch.
    pub closed_in_batch: BTreeSet<AgreementKey>,
    /// The hashes ([`at_hash`]) of the ATs an earlier entry of the same
    /// batch refused for their seller's reputation or balance, penalising
    /// the seller (issue 11, attack r9 [3]): a replay of such an AT in the batch is refused
    /// [`AtRejection::SellerPenalised`], so one seller signature costs its
    /// signer at most one α (a later batch cannot record it again,
    /// `crate::primary`'s `AtRecordRefusal::Recorded`). Scratch like
    /// `closed_in_batch`: empty in a batch's pre-state, set in the
    /// per-entry slices of TCR leaves.
    pub penalised_in_batch: BTreeSet<Hash32>,
}

impl PreState {
    pub fn participant(&self, p: &IorParams, who: &Address) -> Participant {
        self.participants.get(who).copied().unwrap_or(Participant { balance: Amount::ZERO, reputation: p.rs })
    }
}

/// Traders and agreement keys a batch (and, optionally, its TCRs) touches.
pub fn touched(entries: &[Entry], tcrs: &[Tcr]) -> (BTreeSet<Address>, BTreeSet<AgreementKey>) {
    let mut parts = BTreeSet::new();
    let mut buyers = BTreeSet::new();
    for e in entries {
        let t = e.tx.terms();
        parts.extend([e.sender, t.buyer, t.seller]);
        buyers.insert(t.key());
    }
    for t in tcrs {
        for eff in &t.effects {
            match eff {
                Effect::Lock { who, .. } | Effect::Reputation { who, .. } => {
                    parts.insert(*who);
                }
                Effect::Pay { to, .. } => {
                    parts.insert(*to);
                }
                _ => {}
            }
        }
    }
    (parts, buyers)
}

/// Sellers whose certified meter key the batch's STs need.
pub fn meter_owners(entries: &[Entry]) -> BTreeSet<Address> {
    entries.iter().filter(|e| e.tx.settlement().is_some()).map(|e| e.tx.terms().seller).collect()
}

/// The grid slots whose claimed energy entry `e` may read or claim: an
/// ST's [`SettlementTx::claim_slots`] and (an [`IorTx::StReach`]) the [`SettlementTx::reach_keys`]
/// after them (the window its won arbitration re-allocates over,
/// [`realloc`]; counted against the batch's gas budget like the
/// period's slots), but only when the ST can reach a
/// verdict that reads or claims them — sent by its seller, recorded at or
/// after the end of its delivery period (`SC_EXE_ST` refuses everything
/// else before it looks at a slot); nothing for other entries. This is
/// decided from the entry alone (the primary chain counts and proves these
/// records without the state), so an ST for a future period or sent by
/// someone else costs no slot records (issue 11, attack r5). An expiry
/// sent by its buyer after the period touches the period's grid slots
/// ([`period_slots`]), where an expiry settled as agreed records the
/// energy sold ([`record_sold`]).
pub fn claim_slots(e: &Entry, grid_s: u32) -> Vec<SlotKey> {
    match &e.tx {
        IorTx::St(s) | IorTx::StReach(s, _) if e.sender == s.terms.seller && e.recorded_at >= s.terms.dt_end => {
            let mut k = s.claim_slots(grid_s);
            k.extend(s.reach_keys(grid_s, e.tx.settlement().map_or(0, |(_, r)| r)));
            k
        }
        IorTx::Expire(t) if e.sender == t.buyer && e.recorded_at >= t.dt_end => period_slots(t, grid_s),
        _ => vec![],
    }
}

/// Delivery slots whose claimed energy the batch's STs read.
pub fn st_slots(entries: &[Entry], grid_s: u32) -> BTreeSet<SlotKey> {
    entries.iter().flat_map(|e| claim_slots(e, grid_s)).collect()
}

/// The claimed energy of the slots `e` reads, from `st`.
fn claimed_of(st: &PreState, e: &Entry, grid_s: u32) -> BTreeMap<SlotKey, u128> {
    claim_slots(e, grid_s).into_iter().filter_map(|k| st.claimed.get(&k).map(|c| (k, *c))).collect()
}

/// The slot allocations of the slots `e` reads, from `st`.
fn slots_of(st: &PreState, e: &Entry, grid_s: u32) -> BTreeMap<SlotKey, SlotAlloc> {
    claim_slots(e, grid_s).into_iter().filter_map(|k| st.slots.get(&k).map(|c| (k, c.clone()))).collect()
}

/// The only effects a TCR with `outcome` may carry for entry `e` (issue 11
/// item 1): they touch nothing but the entry's buyer, seller and sender
/// (whose reputation a refusal lowers) and the black hole, with amounts
/// that follow from the entry's terms and the parameters. `None` when the
/// outcome cannot be a verdict on this kind of entry.
///
/// The executor therefore chooses only the verdict; the primary chain
/// refuses any TCR whose effects differ from these (`sc_cr_*`), and a
/// wrong verdict is what validators, meters and bonded challengers dispute.
pub fn expected_effects(p: &IorParams, e: &Entry, outcome: &Outcome) -> Option<Vec<Effect>> {
    let t = e.tx.terms();
    let penalise = |who: Address| vec![Effect::Reputation { who, by: p.alpha }];
    // Computed lazily: a refused AT may carry terms whose payment overflows.
    let pay = || t.payment();
    let (ds, pen, burn) = (p.ds, p.penalty(), p.burn());
    // The seller's undo reserve ([`IorParams::undo_reserve`]): locked by
    // the AT, paid back to the seller by every settlement (before the
    // sale's placement, which may take the undo's fine out of it).
    let reserve = p.undo_reserve();
    let to_buyer = |pay_to: Address, other: Address| -> Option<Vec<Effect>> {
        let pay = pay()?;
        let won = pay.checked_add(ds)?.checked_add(pen)?;
        let mut v = if pay_to == t.seller {
            vec![Effect::Pay { to: pay_to, amount: won.checked_add(reserve)? }]
        } else {
            vec![Effect::Pay { to: pay_to, amount: won }, Effect::Pay { to: t.seller, amount: reserve }]
        };
        v.extend([Effect::Burn(burn), Effect::Reputation { who: other, by: p.alpha }, Effect::Close]);
        Some(v)
    };
    // A sale paid without arbitration (issue 11, attack r7): `refund` is
    // what the settlement paid the seller, given back if the sale turns
    // out to sell export a won claim holds.
    let paid = |slots: Vec<(SlotKey, i128)>, certified: bool, refund: Amount| -> Option<Effect> {
        Some(Effect::ClaimPaid {
            slots,
            certified,
            ws: u128::from(t.em.0).checked_mul(3600)?,
            reach: e.tx.settlement().map_or(0, |(_, r)| r).min(MAX_REACH_SLOTS),
            refund,
            fine: pen,
        })
    };
    match (&e.tx, outcome) {
        (IorTx::At(_), Outcome::AtAccepted) => Some(vec![
            Effect::Open(t.clone()),
            Effect::Lock { who: t.buyer, amount: pay()?.checked_add(ds)? },
            Effect::Lock { who: t.seller, amount: ds.checked_add(reserve)? },
        ]),
        // The party at fault pays: a buyer is not penalised because its
        // seller's deposit is missing or its seller is barred (and vice
        // versa). Every other refusal penalises the sender.
        (
            IorTx::At(_),
            Outcome::AtRejected(
                AtRejection::InsufficientBalance { who, .. } | AtRejection::ReputationTooLow { who, .. },
            ),
        ) if e.sender == t.buyer => (*who == t.buyer || *who == t.seller).then(|| penalise(*who)),
        (IorTx::At(_), Outcome::AtRejected(_)) => Some(penalise(e.sender)),
        (IorTx::At(_), _) | (_, Outcome::AtAccepted | Outcome::AtRejected(_)) => None,
        (_, Outcome::StRejected(r)) if r.penalty_free() => Some(vec![]),
        (_, Outcome::StRejected(_)) => Some(penalise(e.sender)),
        (IorTx::St(s) | IorTx::StReach(s, _), Outcome::StSettled(kind)) => match kind {
            // A settlement that pays for delivery records its EM as sold
            // out of the seller's slots (attack r5: one export sold twice).
            // The seller's readings place the sale when its meter signed
            // them (`SC_EXE_ST` refuses a meter signature that is not its
            // certified meter's): issue 11, attack r7 [1].
            StSettlement::Agreed => Some(vec![
                Effect::Pay { to: t.seller, amount: pay()?.checked_add(ds)?.checked_add(reserve)? },
                Effect::Pay { to: t.buyer, amount: ds },
                Effect::Close,
                paid(s.claim_split(p.meter_step_s)?, s.meter_sig.is_some(), pay()?.checked_add(ds)?)?,
            ]),
            StSettlement::LateBuyerSignature => {
                let mut v = to_buyer(t.seller, t.buyer)?;
                v.push(paid(
                    s.claim_split(p.meter_step_s)?,
                    s.meter_sig.is_some(),
                    pay()?.checked_add(ds)?.checked_add(pen)?,
                )?);
                Some(v)
            }
            StSettlement::SellerDelivered => {
                let mut v = to_buyer(t.seller, t.buyer)?;
                // EM claimed against the readings' grid slots.
                v.push(Effect::ClaimExport {
                    slots: s.claim_split(p.meter_step_s)?,
                    ws: u128::from(t.em.0).checked_mul(3600)?,
                    reach: e.tx.settlement().map_or(0, |(_, r)| r).min(MAX_REACH_SLOTS),
                });
                Some(v)
            }
            StSettlement::SellerShortfall => to_buyer(t.buyer, t.seller),
        },
        // The buyer recorded O_b = 1: its expiry settles as agreed. No
        // readings: the sale is placed on export certified earlier, else
        // recorded over its whole period ([`place_paid`]).
        (IorTx::Expire(_), Outcome::StSettled(StSettlement::Agreed)) => Some(vec![
            Effect::Pay { to: t.seller, amount: pay()?.checked_add(ds)?.checked_add(reserve)? },
            Effect::Pay { to: t.buyer, amount: ds },
            Effect::Close,
            paid(
                Some(period_slots(t, p.meter_step_s)).filter(|v| !v.is_empty())?.into_iter().map(|k| (k, 0)).collect(),
                false,
                pay()?.checked_add(ds)?,
            )?,
        ]),
        (IorTx::Opinion(o), Outcome::OpinionRecorded) => Some(vec![Effect::Opinion(o.ob)]),
        (IorTx::Expire(_), Outcome::Expired) => to_buyer(t.buyer, t.seller),
        _ => None,
    }
}

fn add(a: Amount, b: Amount) -> Result<Amount, ApplyError> {
    a.checked_add(b).ok_or(ApplyError::Overflow)
}

/// Applies one TCR's effects for the entry whose agreement key is `buyer`,
/// all or nothing. Returns the amount burned.
pub fn apply_effects(
    state: &mut PreState,
    p: &IorParams,
    buyer: &AgreementKey,
    effects: &[Effect],
) -> Result<Amount, ApplyError> {
    let mut s = state.clone();
    let mut burned = Amount::ZERO;
    for eff in effects {
        match eff {
            Effect::Open(terms) => {
                if s.agreements.contains_key(buyer) {
                    return Err(ApplyError::AgreementExists(buyer.buyer));
                }
                s.agreements
                    .insert(*buyer, Agreement { terms: terms.clone(), pool: Amount::ZERO, buyer_opinion: None });
            }
            Effect::Lock { who, amount } => {
                let mut part = s.participant(p, who);
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(buyer.buyer))?;
                part.balance = part.balance.checked_sub(*amount).ok_or(ApplyError::InsufficientBalance {
                    who: *who,
                    needed: *amount,
                    available: part.balance,
                })?;
                ag.pool = add(ag.pool, *amount)?;
                s.participants.insert(*who, part);
            }
            Effect::Pay { to, amount } => {
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(buyer.buyer))?;
                ag.pool = ag
                    .pool
                    .checked_sub(*amount)
                    .ok_or(ApplyError::PoolShort { needed: *amount, available: ag.pool })?;
                let mut part = s.participant(p, to);
                part.balance = add(part.balance, *amount)?;
                s.participants.insert(*to, part);
            }
            Effect::Burn(amount) => {
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(buyer.buyer))?;
                ag.pool = ag
                    .pool
                    .checked_sub(*amount)
                    .ok_or(ApplyError::PoolShort { needed: *amount, available: ag.pool })?;
                burned = add(burned, *amount)?;
            }
            Effect::Close => {
                let ag = s.agreements.remove(buyer).ok_or(ApplyError::NoAgreement(buyer.buyer))?;
                if !ag.pool.is_zero() {
                    return Err(ApplyError::PoolNotEmpty(ag.pool));
                }
            }
            Effect::Reputation { who, by } => {
                let mut part = s.participant(p, who);
                part.reputation = part.reputation.saturating_sub(*by);
                s.participants.insert(*who, part);
            }
            Effect::Opinion(ob) => {
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(buyer.buyer))?;
                ag.buyer_opinion = Some(*ob);
            }
            Effect::Claim { slot, ws } => {
                let c = s.claimed.entry(*slot).or_insert(0);
                *c = c.checked_add(*ws).ok_or(ApplyError::Overflow)?;
            }
            Effect::ClaimSold { slots, ws } => {
                let keys: Vec<SlotKey> = slots.iter().map(|(k, _)| *k).collect();
                record_sold(&mut s, &keys, *ws).ok_or(ApplyError::Overflow)?;
            }
            Effect::ClaimExport { slots, ws, reach } => {
                let reach = slots.last().map(|(k, _)| following_slots(k, *reach)).unwrap_or_default();
                let plan = realloc(&s, slots, &reach, *ws).ok_or(ApplyError::ExportClaimed(*ws))?;
                apply_plan(&mut s, plan);
            }
            Effect::ClaimPaid { .. } => {
                place_paid(&mut s, p, buyer, eff)?;
            }
        }
    }
    *state = s;
    Ok(burned)
}

/// Writes a re-allocation's records.
fn apply_plan(s: &mut PreState, plan: Realloc) {
    for (slot, total, alloc) in plan.slots {
        if total == 0 {
            s.claimed.remove(&slot);
        } else {
            s.claimed.insert(slot, total);
        }
        if alloc == SlotAlloc::default() {
            s.slots.remove(&slot);
        } else {
            s.slots.insert(slot, alloc);
        }
    }
}

/// Where [`place_paid`] put a sale paid without arbitration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// A movable claim beside the seller's earlier claims ([`realloc_at`]).
    Movable,
    /// A demand over its whole period ([`record_sold`]).
    Period,
    /// Undone at the seller's cost: it sold export a won claim holds.
    Undone,
}

/// Applies [`Effect::ClaimPaid`] of the agreement `key` (its `Pay`
/// effects already applied): places the sale's `ws` as a movable claim
/// where the export covers it beside every earlier claim (certified
/// readings of its own slots count, else only export certified earlier);
/// else records it over its whole period where no won claim holds energy
/// in its slots; else undoes it at the seller's cost.
///
/// **Why undo rather than refuse the disputed ST first** (issue 11, attack
/// r7 [2]). A seller that sells one export to A (agreed) and B (disputed)
/// could settle B's arbitration first, win it on the whole export, and be
/// paid for A as well. Refusing B's ST while an overlapping sale of the
/// same seller is open would need every AT to mark every slot of its
/// period (up to a week of slots per AT) and would still have to lapse at
/// B's own expiry, which the seller controls by the `DL` it signs for A;
/// and waiting makes honest sellers' disputes lose to unplaced sales. So
/// the order is free, and the sale settled second pays for the conflict:
/// whichever order, a seller that sold `x` Wh of export twice ends where
/// it ends when the agreed sale settles first (B's arbitration then loses:
/// the seller loses `D_s`). Here it gets nothing for A, its `D_s` of A
/// goes to A with A's payment, and a further `F_p × D_s` (the penalty B's
/// lost arbitration paid it) goes to A; it also loses `α`. That fine comes
/// out of the undo reserve A's AT locked from the seller and this
/// settlement's `Pay` effects just paid back ([`IorParams::undo_reserve`]),
/// so the seller's balance holds it here whatever the seller did with its
/// free balance meanwhile (issue 11, attack r8 [3]: a fine taken "as far
/// as the free balance holds it" was escaped by withdrawing, or locking
/// the balance in other agreements, before the undone sale settled). The
/// bound below never binds unless the reserve is missing. Coin only moves between the sale's buyer and
/// seller (no burn: a batch's burned total is fixed by its leaves'
/// `Burn` effects, [`crate::primary::posted_burn`]).
///
/// A sale with certified readings that do not cover it (the buyer agreed
/// to less), or none, and no won claim in its slots, is a period demand as
/// before (attack r6); an honest seller with a certified meter avoids both
/// the period demand and the undoing by sending its ST with the meter's
/// signature before the expiry.
pub fn place_paid(st: &mut PreState, p: &IorParams, key: &AgreementKey, eff: &Effect) -> Result<Placement, ApplyError> {
    let Effect::ClaimPaid { slots, certified, ws, reach, refund, fine } = eff else {
        return Err(ApplyError::Overflow);
    };
    let keys: Vec<SlotKey> = slots.iter().map(|(k, _)| *k).collect();
    let split: Vec<(SlotKey, Option<i128>)> = slots.iter().map(|(k, m)| (*k, certified.then_some(*m))).collect();
    let after = keys.last().map(|k| following_slots(k, *reach)).unwrap_or_default();
    if let Some(plan) = realloc_at(st, &split, &after, *ws) {
        apply_plan(st, plan);
        return Ok(Placement::Movable);
    }
    let conflict = keys.iter().any(|k| st.slots.get(k).is_some_and(|a| !a.by_period.is_empty()));
    if !conflict || crate::mutants::active(crate::mutants::Mutation::PaidUnchecked) {
        record_sold(st, &keys, *ws).ok_or(ApplyError::Overflow)?;
        return Ok(Placement::Period);
    }
    let mut seller = st.participant(p, &key.seller);
    let mut buyer = st.participant(p, &key.buyer);
    seller.balance = seller.balance.checked_sub(*refund).ok_or(ApplyError::InsufficientBalance {
        who: key.seller,
        needed: *refund,
        available: seller.balance,
    })?;
    let fine = (*fine).min(seller.balance);
    seller.balance = seller.balance.checked_sub(fine).ok_or(ApplyError::Overflow)?;
    seller.reputation = seller.reputation.saturating_sub(p.alpha);
    buyer.balance = add(add(buyer.balance, *refund)?, fine)?;
    st.participants.insert(key.seller, seller);
    st.participants.insert(key.buyer, buyer);
    Ok(Placement::Undone)
}

/// The part of `st` that entry `e` reads: its sender's, buyer's and
/// seller's records, its agreement, the seller's certified meter and (an
/// ST's) the claimed energy of its grid slots. Re-executing `e` on its slice gives the same
/// TCR as executing it on the whole state (what a single-entry dispute on
/// the primary chain relies on).
pub fn slice(st: &PreState, e: &Entry, grid_s: u32) -> PreState {
    let t = e.tx.terms();
    let key = t.key();
    let parts = [e.sender, t.buyer, t.seller];
    PreState {
        participants: st.participants.iter().filter(|(a, _)| parts.contains(a)).map(|(a, p)| (*a, *p)).collect(),
        agreements: st.agreements.get(&key).map(|ag| (key, ag.clone())).into_iter().collect(),
        meters: st.meters.get(&t.seller).map(|m| (t.seller, *m)).into_iter().collect(),
        claimed: claimed_of(st, e, grid_s),
        slots: slots_of(st, e, grid_s),
        closed_in_batch: st.closed_in_batch.iter().filter(|k| **k == key).copied().collect(),
        penalised_in_batch: penalised_of(st, e),
    }
}

/// Domain of [`at_hash`].
pub const TAG_AT_HASH: Tag = Tag("gridledger/ior/at-hash/v1");

/// The hash an AT is known by in [`PreState::penalised_in_batch`]: the
/// hash of the terms its seller signed, so every copy of one seller
/// signature has the same hash.
pub fn at_hash(t: &AgreementTerms) -> Hash32 {
    hash_tagged(TAG_AT_HASH, t)
}

/// The part of `st.penalised_in_batch` entry `e` reads: its AT's
/// [`at_hash`], if an earlier entry of the batch penalised the seller for
/// it.
fn penalised_of(st: &PreState, e: &Entry) -> BTreeSet<Hash32> {
    match &e.tx {
        IorTx::At(at) if !st.penalised_in_batch.is_empty() => {
            let h = at_hash(&at.terms);
            st.penalised_in_batch.iter().filter(|d| **d == h).copied().collect()
        }
        _ => BTreeSet::new(),
    }
}

/// A TCR leaf's inputs (issue 11): the part of `st` that the verdict
/// `outcome` on entry `e` read, and nothing more. Its sender's record; an
/// AT's seller only when the AT got past steps 1 and 2 (sent by its buyer,
/// validly signed by its seller) and its terms are not refused as such
/// ([`terms_refusal`]): then the seller's reputation and balance may be
/// read; the agreement; the seller's certified meter only for an ST
/// sent by that seller; the claimed energy of an ST's grid slots; the
/// seller of a buyer's expiry settled as agreed ([`expiry_reads_seller`]:
/// undoing the sale fines the seller's free balance, [`place_paid`]).
///
/// Why not every trader the entry names: the primary chain's whole-batch
/// `dispute` re-executes from the *current* settled state, so a leaf's
/// inputs must not change between `SC_CR` and settlement. Agreements,
/// claims and verdict-read records change only by settlement (batches
/// settle in order), and `fund`/`withdraw`/`register_meter` wait exactly
/// for the traders `pending_parties` lists — the same rule as here. A
/// record a leaf does not read (the seller named by an unsigned AT, the
/// buyer of an ST, expiry or opinion, whom only the effects pay or rate)
/// can change meanwhile without changing the root, so an entry merely
/// naming a trader neither locks that trader nor lets it overturn an
/// honest root. (Re-executing on a posted pre-state instead would need the
/// chain to snapshot or prove the pre-state at `SC_CR`, which it does not.)
/// Re-executing `e` on these inputs gives the same TCR as on the whole
/// state: effects are deltas that apply to absent records as to default ones.
pub fn leaf_inputs(st: &PreState, e: &Entry, outcome: &Outcome, grid_s: u32) -> PreState {
    let t = e.tx.terms();
    let key = t.key();
    let seller_read = matches!(e.tx, IorTx::At(_))
        && !matches!(
            outcome,
            Outcome::AtRejected(
                AtRejection::WrongSender { .. }
                    | AtRejection::NotSignedBySeller
                    | AtRejection::InvalidTerms(_)
                    | AtRejection::OffGrid { .. }
                    | AtRejection::PeriodTooLong { .. }
                    | AtRejection::DeadlineTooLate { .. }
            )
        );
    let meter_read = e.tx.settlement().is_some() && e.sender == t.seller;
    // An expiry settled as agreed may undo the sale at the seller's cost
    // ([`place_paid`] reads its free balance for the fine).
    let expiry_fines = matches!(&e.tx, IorTx::Expire(t) if expiry_reads_seller(e, t))
        && *outcome == Outcome::StSettled(StSettlement::Agreed);
    let parts = if seller_read || expiry_fines { vec![e.sender, t.seller] } else { vec![e.sender] };
    PreState {
        participants: st.participants.iter().filter(|(a, _)| parts.contains(a)).map(|(a, p)| (*a, *p)).collect(),
        agreements: st.agreements.get(&key).map(|ag| (key, ag.clone())).into_iter().collect(),
        meters: st.meters.get(&t.seller).filter(|_| meter_read).map(|m| (t.seller, *m)).into_iter().collect(),
        claimed: claimed_of(st, e, grid_s),
        slots: slots_of(st, e, grid_s),
        closed_in_batch: st.closed_in_batch.iter().filter(|k| **k == key).copied().collect(),
        penalised_in_batch: penalised_of(st, e),
    }
}

/// Whether an expiry may settle its sale as agreed and so read (and, when
/// [`place_paid`] undoes the sale, fine) its seller's record: sent by its
/// buyer, after the delivery period, naming another trader as seller.
/// `crate::primary`'s `pending_parties` lists the seller of such an expiry,
/// so the seller's withdrawals wait for the batch (issue 11, attack r8 [1]:
/// otherwise the seller withdraws the balance the undo fines, and the next
/// batch's debit of the withdrawal overdraws it).
pub fn expiry_reads_seller(e: &Entry, t: &AgreementTerms) -> bool {
    e.sender == t.buyer && t.seller != t.buyer && e.recorded_at >= t.dt_end
}

/// Executes a batch in record order, each entry against the state the
/// entries before it left. Returns one TCR per entry.
pub fn execute_batch(
    env: &mut impl ExecEnv,
    p: &IorParams,
    pre: &PreState,
    entries: &[Entry],
) -> Result<Vec<Tcr>, ContractError> {
    Ok(execute_leaves(env, p, pre, entries)?.into_iter().map(|l| l.tcr).collect())
}

/// [`execute_batch`], returning each TCR with the slice of state its entry
/// read ([`leaf_inputs`]): the leaves of the batch's TCR tree.
pub fn execute_leaves(
    env: &mut impl ExecEnv,
    p: &IorParams,
    pre: &PreState,
    entries: &[Entry],
) -> Result<Vec<TcrLeaf>, ContractError> {
    let mut st = pre.clone();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let mut outcome = match &e.tx {
            IorTx::At(at) => execute_at(env, p, &st, e, at)?,
            IorTx::St(s) => execute_st(env, p, &st, e, s, 0)?,
            IorTx::StReach(s, reach) => execute_st(env, p, &st, e, s, *reach)?,
            IorTx::Opinion(o) => execute_opinion(env, &st, e, o)?,
            IorTx::Expire(t) => execute_expire(env, p, &st, e, t)?,
        };
        // An agreement that was open when the batch began and that an
        // earlier entry of this batch closed: whoever lost the race (a late
        // ST against the buyer's expiry) is not penalised a second time.
        let key = e.tx.terms().key();
        if outcome == Outcome::StRejected(StRejection::NoAgreement(key.buyer)) && st.closed_in_batch.contains(&key) {
            outcome = Outcome::StRejected(StRejection::SettledInBatch);
        }
        let before = leaf_inputs(&st, e, &outcome, p.meter_step_s);
        let effects = expected_effects(p, e, &outcome)
            .ok_or_else(|| ContractError::Revert("internal: verdict without effects".into()))?;
        apply_effects(&mut st, p, &key, &effects)
            .map_err(|err| ContractError::Revert(format!("internal: own effects do not apply: {err}")))?;
        if pre.agreements.contains_key(&key) && !st.agreements.contains_key(&key) {
            st.closed_in_batch.insert(key);
        } else {
            st.closed_in_batch.remove(&key);
        }
        if let Some(h) = penalised_seller(e, &outcome) {
            st.penalised_in_batch.insert(h);
        }
        out.push(TcrLeaf { pre: before, tcr: Tcr { index: i as u32, outcome, effects }, post_root: Hash32::ZERO });
    }
    Ok(out)
}

/// The [`at_hash`] of `e`'s AT when the verdict `outcome` penalised its
/// seller (refused for the seller's reputation or balance, sent by the
/// buyer: [`expected_effects`]); a replay of it later in the batch is
/// refused [`AtRejection::SellerPenalised`] (issue 11, attack r9 [3]).
pub fn penalised_seller(e: &Entry, outcome: &Outcome) -> Option<Hash32> {
    let IorTx::At(at) = &e.tx else { return None };
    let t = &at.terms;
    let seller_fault = matches!(
        outcome,
        Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. } | AtRejection::ReputationTooLow { who, .. })
            if *who == t.seller
    );
    (seller_fault && e.sender == t.buyer && t.seller != t.buyer).then(|| at_hash(t))
}

/// Executes a batch and returns the state after it as well.
pub fn execute_and_apply(
    env: &mut impl ExecEnv,
    p: &IorParams,
    pre: &PreState,
    entries: &[Entry],
) -> Result<(Vec<Tcr>, PreState), ContractError> {
    let tcrs = execute_batch(env, p, pre, entries)?;
    let mut st = pre.clone();
    for (t, e) in tcrs.iter().zip(entries) {
        apply_effects(&mut st, p, &e.tx.terms().key(), &t.effects)
            .map_err(|err| ContractError::Revert(format!("internal: {err}")))?;
    }
    Ok((tcrs, st))
}

/// `SC_EXE_AT`, Steps 1–6. The effects follow from the verdict
/// ([`expected_effects`]).
fn execute_at(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    e: &Entry,
    at: &AgreementTx,
) -> Result<Outcome, ContractError> {
    let reject = |why: AtRejection| Ok(Outcome::AtRejected(why));
    let t = &at.terms;
    env.charge(STEP_GAS)?;
    // Step 1: only the buyer submits an AT.
    if e.sender != t.buyer {
        return reject(AtRejection::WrongSender { sender: e.sender, buyer: t.buyer });
    }
    // Step 2: EP and EM signed by the seller.
    let signed = match &at.seller_sig {
        None => false,
        Some(sig) => {
            env.charge(gas::HASH_BASE + gas::HASH_WORD * 5)?;
            env.recover(&t.seller_digest(&p.domain), sig)? == Some(t.seller)
        }
    };
    if !signed {
        return reject(AtRejection::NotSignedBySeller);
    }
    // Step 3: validity, reputation and balances.
    env.charge(STEP_GAS)?;
    let invalid = |s: &str| reject(AtRejection::InvalidTerms(s.into()));
    if let Some(why) = terms_refusal(t, p.meter_step_s, p.max_dl_ms) {
        return reject(why);
    }
    // A seller-signed AT stays valid forever; recorded after its delivery
    // period it is a replay (or stale) and would make the buyer pay twice.
    if e.recorded_at >= t.dt_end {
        return reject(AtRejection::DeliveryPassed { dt_end: t.dt_end, now: e.recorded_at });
    }
    // A replay (or any second recording) of an open agreement's terms is
    // refused before reputation and balances are read: the open agreement
    // has locked the seller's `D_s`, so a balance check first would refuse
    // the replay for the *seller's* balance and charge the seller α for
    // the buyer's transaction. Only the sender (the buyer) pays for it.
    // Agreements close only at or after `dt_end`, so a replay after closing
    // is `DeliveryPassed` above: no recording of seller-signed terms other
    // than the first can reach the checks that penalise the counterparty.
    if st.agreements.contains_key(&t.key()) {
        return reject(AtRejection::AgreementOpen(t.buyer));
    }
    let Some(need) = t.payment().and_then(|pay| pay.checked_add(p.ds)) else {
        return invalid("D_s + EP × EM overflows");
    };
    if t.payment().and_then(|pay| pay.checked_add(p.ds)?.checked_add(p.penalty())).is_none() {
        return invalid("D_s + EP × EM overflows");
    }
    // One seller signature costs its signer at most one α (attack r9
    // [3]): a replay in the batch of an AT already refused for its
    // seller's reputation or balance is refused without penalising the
    // seller again (its sender, the buyer, pays for the replay).
    let seller_fault = |why: AtRejection| {
        if st.penalised_in_batch.contains(&at_hash(t)) {
            reject(AtRejection::SellerPenalised { seller: t.seller })
        } else {
            reject(why)
        }
    };
    for who in [t.buyer, t.seller] {
        let score = st.participant(p, &who).reputation;
        if !p.may_trade(score) {
            let why = AtRejection::ReputationTooLow { who, score, beta: p.beta };
            return if who == t.seller { seller_fault(why) } else { reject(why) };
        }
    }
    // The seller locks its `D_s` and the undo reserve (`F_p × D_s`,
    // [`IorParams::seller_lock`]).
    for (who, needed) in [(t.buyer, need), (t.seller, p.seller_lock())] {
        let available = st.participant(p, &who).balance;
        if available < needed {
            let why = AtRejection::InsufficientBalance { who, needed, available };
            return if who == t.seller { seller_fault(why) } else { reject(why) };
        }
    }
    // Steps 4 and 5.
    Ok(Outcome::AtAccepted)
}

/// The first refusal of `SC_EXE_AT` Step 3 that follows from the terms
/// alone (metering grid `grid_s`, bound `max_dl_ms`), before anything of
/// the state is read. `SC_DS_AT` checks it too: an AT it refuses never
/// reads, and so never makes pending, its seller (issue 11, attack r9).
/// The overflow of `D_s + EP × EM` is checked by execution later, after
/// the agreement's key.
pub fn terms_refusal(t: &AgreementTerms, grid_s: u32, max_dl_ms: u64) -> Option<AtRejection> {
    let invalid = |s: &str| Some(AtRejection::InvalidTerms(s.into()));
    if t.buyer == t.seller {
        return invalid("buyer and seller are the same account");
    }
    if t.em.is_zero() || t.ep.is_zero() {
        return invalid("EP and EM must be positive");
    }
    if t.dt_start >= t.dt_end {
        return invalid("empty delivery period DT");
    }
    let grid_ms = u64::from(grid_s) * 1000;
    if grid_ms == 0 || !t.dt_start.is_multiple_of(grid_ms) || !t.dt_end.is_multiple_of(grid_ms) {
        return Some(AtRejection::OffGrid { dt_start: t.dt_start, dt_end: t.dt_end, grid_ms });
    }
    if t.dt_end - t.dt_start > max_dl_ms {
        return Some(AtRejection::PeriodTooLong { dt_start: t.dt_start, dt_end: t.dt_end, max_ms: max_dl_ms });
    }
    if t.dl < t.dt_end {
        return invalid("deadline DL precedes the end of DT");
    }
    if t.dl - t.dt_end > max_dl_ms {
        return Some(AtRejection::DeadlineTooLate { dl: t.dl, dt_end: t.dt_end, max_ms: max_dl_ms });
    }
    None
}

/// The open agreement an ST, opinion or expiry refers to, or why not.
fn agreement_of<'s>(st: &'s PreState, t: &AgreementTerms) -> Result<&'s Agreement, StRejection> {
    let ag = st.agreements.get(&t.key()).ok_or(StRejection::NoAgreement(t.buyer))?;
    if ag.terms != *t {
        return Err(StRejection::FieldsMismatch);
    }
    Ok(ag)
}

/// `SC_EXE_ST`, Steps 1–5.
fn execute_st(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    e: &Entry,
    s: &SettlementTx,
    reach: u32,
) -> Result<Outcome, ContractError> {
    let reject = |why: StRejection| Ok(Outcome::StRejected(why));
    let t = &s.terms;
    env.charge(STEP_GAS)?;
    if e.sender != t.seller {
        return reject(StRejection::WrongSender { sender: e.sender, seller: t.seller });
    }
    // Step 1: the ST's tuple must equal the AT stored under ADDR_b.
    let ag = match agreement_of(st, t) {
        Ok(ag) => ag,
        Err(why) => return reject(why),
    };
    if e.recorded_at < t.dt_end {
        return reject(StRejection::NotYetDelivered { dt_end: t.dt_end, now: e.recorded_at });
    }
    let from = t.dl.saturating_add(p.expiry_ms);
    if e.recorded_at > from {
        return reject(StRejection::AfterExpiry { from, now: e.recorded_at });
    }
    let span_ms = t.dt_end.saturating_sub(t.dt_start);
    let step_ms = u64::from(s.dt_step_s) * 1000;
    let got = s.ps.len() as u64;
    let expected = span_ms.checked_div(step_ms).unwrap_or(0);
    if step_ms == 0 || !span_ms.is_multiple_of(step_ms) || got != expected {
        return reject(StRejection::ReadingsMismatch { expected, got, step_s: s.dt_step_s });
    }
    if !p.meter_step_s.is_multiple_of(s.dt_step_s) {
        return reject(StRejection::OffGridReadings { step_s: s.dt_step_s, grid_s: p.meter_step_s });
    }
    // Step 2: the buyer's opinion: recorded on chain by the buyer itself,
    // else its signature carried by the seller.
    let opinion = match ag.buyer_opinion {
        Some(ob) => Some(ob),
        None => match &s.buyer_sig {
            None => None,
            Some(sig) => {
                env.charge(gas::HASH_BASE + gas::HASH_WORD * 5)?;
                (env.recover(&t.buyer_digest(&p.domain, s.ob), sig)? == Some(t.buyer)).then_some(s.ob)
            }
        },
    };
    let late = e.recorded_at > t.dl || crate::mutants::active(crate::mutants::Mutation::DeadlineUnenforced);
    env.charge(STEP_GAS)?;
    let paid = match opinion {
        // Step 2: penalise the buyer; the ST is still executed (the seller is paid).
        None if late => StSettlement::LateBuyerSignature,
        None => return reject(StRejection::AwaitingBuyerSignature { dl: t.dl, now: e.recorded_at }),
        // Step 3 (i): both deposits back, the seller paid.
        Some(true) => StSettlement::Agreed,
        Some(false) => return arbitrate(env, p, st, s, reach),
    };
    // The sale is placed by its readings where its seller's certified
    // meter signed them ([`Effect::ClaimPaid`], [`place_paid`]): a meter
    // signature must then be the certified meter's (issue 11, attack r7).
    if s.meter_sig.is_some() && !readings_certified(env, p, st, s)? {
        return reject(StRejection::UncertifiedReadings);
    }
    let slots = s.claim_slots(p.meter_step_s);
    let reach = s.reach_keys(p.meter_step_s, reach);
    env.charge(placement_gas(st, &slots, &reach))?;
    Ok(Outcome::StSettled(paid))
}

/// Whether `s`'s readings are signed by its seller's certified meter at
/// the meter's interval.
fn readings_certified(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    s: &SettlementTx,
) -> Result<bool, ContractError> {
    let Some(meter) = st.meters.get(&s.terms.seller).filter(|m| m.step_s == s.dt_step_s) else { return Ok(false) };
    let Some(sig) = &s.meter_sig else { return Ok(false) };
    env.charge(gas::HASH_BASE + gas::HASH_WORD * (2 + s.ps.len() as u64 / 4))?;
    Ok(env.recover(&s.readings_digest(&p.domain), sig)? == Some(meter.key))
}

/// The work of placing a claim over `slots` and `reach` ([`realloc`]): one
/// step per slot and per claim or sold period held there.
fn placement_gas(st: &PreState, slots: &[SlotKey], reach: &[SlotKey]) -> u64 {
    let held: usize =
        slots.iter().chain(reach).map(|k| st.slots.get(k).map_or(0, |a| a.by_period.len() + a.sold.len())).sum();
    STEP_GAS.saturating_mul((slots.len() + reach.len() + held) as u64)
}

/// `SC_EXE_ST` Step 4: arbitration on the seller's meter.
fn arbitrate(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    s: &SettlementTx,
    reach: u32,
) -> Result<Outcome, ContractError> {
    let reject = |why: StRejection| Ok(Outcome::StRejected(why));
    let t = &s.terms;
    let got = s.ps.len() as u64;
    // Step 4: arbitration on the seller's meter, exactly in watt-seconds.
    // Readings are evidence only when signed by the seller's certified
    // meter, and only at the interval it was certified with.
    let meter = st.meters.get(&t.seller);
    if let Some(m) = meter.filter(|m| m.step_s != s.dt_step_s) {
        return reject(StRejection::OffMeterInterval { step_s: s.dt_step_s, meter_step_s: m.step_s });
    }
    let certified = match (&s.meter_sig, meter) {
        (Some(sig), Some(meter)) => {
            env.charge(gas::HASH_BASE + gas::HASH_WORD * (2 + got / 4))?;
            env.recover(&s.readings_digest(&p.domain), sig)? == Some(meter.key)
        }
        _ => false,
    };
    env.charge(READING_GAS * got)?;
    // The seller's export counts once per grid slot across all its
    // agreements whose periods cover the slot: energy already claimed there
    // by won arbitrations (earlier in this batch, in record order, or in
    // settled batches) is not evidence again. Readings at the meter's
    // interval are summed per grid slot, so every ST reads the same slots.
    // Every won claim of the seller holding energy in the ST's slots or
    // the reach slots after them (`IorTx::StReach`) is re-allocated with this one
    // ([`realloc`]): one step per slot and per claim held there.
    let split = if certified { s.claim_split(p.meter_step_s) } else { None };
    let delivered = match split {
        Some(split) => {
            let reach = split.last().map(|(k, _)| following_slots(k, reach)).unwrap_or_default();
            let held: usize = split
                .iter()
                .map(|(k, _)| k)
                .chain(&reach)
                .map(|k| st.slots.get(k).map_or(0, |a| a.by_period.len() + a.sold.len()))
                .sum();
            env.charge(STEP_GAS.saturating_mul((split.len() + reach.len() + held) as u64))?;
            u128::from(t.em.0).checked_mul(3600).is_some_and(|ws| realloc(st, &split, &reach, ws).is_some())
        }
        None => false,
    };
    Ok(Outcome::StSettled(if delivered { StSettlement::SellerDelivered } else { StSettlement::SellerShortfall }))
}

/// The buyer's own `O_b` (issue 11 item 3).
fn execute_opinion(
    env: &mut impl ExecEnv,
    st: &PreState,
    e: &Entry,
    o: &BuyerOpinion,
) -> Result<Outcome, ContractError> {
    let t = &o.terms;
    env.charge(STEP_GAS)?;
    let why = if e.sender != t.buyer {
        StRejection::NotBuyer { sender: e.sender, buyer: t.buyer }
    } else {
        match agreement_of(st, t) {
            Err(why) => why,
            Ok(_) if e.recorded_at > t.dl => StRejection::OpinionAfterDeadline { dl: t.dl, now: e.recorded_at },
            Ok(ag) if ag.buyer_opinion.is_some() => StRejection::OpinionAlreadyRecorded,
            Ok(_) => return Ok(Outcome::OpinionRecorded),
        }
    };
    Ok(Outcome::StRejected(why))
}

/// Expiry of an agreement whose seller sent no ST (issue 11 item 4).
fn execute_expire(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    e: &Entry,
    t: &AgreementTerms,
) -> Result<Outcome, ContractError> {
    env.charge(STEP_GAS)?;
    let from = t.dl.saturating_add(p.expiry_ms);
    let why = if e.sender != t.buyer {
        StRejection::NotBuyer { sender: e.sender, buyer: t.buyer }
    } else {
        match agreement_of(st, t) {
            Err(why) => why,
            Ok(_) if e.recorded_at <= from && !crate::mutants::active(crate::mutants::Mutation::DeadlineUnenforced) => {
                StRejection::NotExpired { from: from.saturating_add(1), now: e.recorded_at }
            }
            // The buyer recorded O_b = 1 itself: it acknowledged delivery,
            // so a late seller is paid as agreed rather than penalised.
            Ok(ag) if ag.buyer_opinion == Some(true) => {
                env.charge(placement_gas(st, &period_slots(t, p.meter_step_s), &[]))?;
                return Ok(Outcome::StSettled(StSettlement::Agreed));
            }
            Ok(_) => return Ok(Outcome::Expired),
        }
    };
    Ok(Outcome::StRejected(why))
}
