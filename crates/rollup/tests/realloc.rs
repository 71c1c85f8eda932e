//! Re-allocation of a seller's won claims (issue 11, attack r4/r5: sales
//! settled out of deadline order). A won arbitration re-places the
//! seller's earlier won claims over its slots and the reach slots after
//! them, earliest deadline first (`exec::realloc`); an earlier claim is
//! never un-covered, so when the export does not cover all of them the
//! new claim is the one that loses.

mod common;

use std::collections::BTreeMap;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32, RecoverableSignature};
use gridledger_ledger::ContractError;
use gridledger_rollup::driver::meter_key;
use gridledger_rollup::exec::{
    apply_effects, execute_batch, realloc, ExecEnv, OffChain, PreState, SlotAlloc, MAX_PERIODS_PER_SLOT,
    MAX_REACH_SLOTS, STEP_GAS,
};
use gridledger_rollup::primary::{entry_records, MAX_ENTRY_RECORDS};
use gridledger_rollup::types::{
    Agreement, AgreementTerms, Entry, IorParams, IorTx, MeterRecord, Outcome, Participant, SlotKey, StSettlement,
};

const SLOT: u64 = 5 * MIN;
const SLOT_WS: u128 = 1000 * 300;

fn settle(e: &mut Env, seller: &KeyPair, s: IorTx) -> Vec<Outcome> {
    e.d.submit(seller, &s).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// The seller's claim records (claimed totals and slot allocations).
fn claims_of(e: &Env, seller: &Address) -> (BTreeMap<SlotKey, u128>, BTreeMap<SlotKey, SlotAlloc>) {
    let s = e.d.settled_state().unwrap();
    (
        s.claimed.into_iter().filter(|(k, _)| k.seller == *seller).collect(),
        s.slots.into_iter().filter(|(k, _)| k.seller == *seller).collect(),
    )
}

/// Trader 1 sells `long_wh` of 08:00–08:30 to trader 0 and `short_wh` of
/// 08:00–08:05 (DL 15 minutes after) to trader 2, in a [`funded`] env;
/// both ATs accepted, the clock past both periods. Returns the env,
/// [long buyer, short buyer, seller] and [long, short terms].
fn long_and_first_slot(long_wh: u64, short_wh: u64) -> (Env, [KeyPair; 3], [AgreementTerms; 2]) {
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), long_wh, 8 * HOUR);
    let mut t2 = terms(&b2, &s, Amount(200_000), short_wh, 8 * HOUR);
    t2.dt_end = t2.dt_start + SLOT;
    t2.dl = t2.dt_end + 15 * MIN;
    agreed(&mut e, &s, &[(&b1, &t1), (&b2, &t2)]);
    (e, [b1, b2, s], [t1, t2])
}

/// A seller exports 1,000 W over 08:00–08:30 (six slots of 300,000 ws,
/// 500 Wh) and sells `long_wh` of the half hour to one buyer and `short_wh`
/// of 08:00–08:05 to another. The long sale's ST is settled first (out of
/// deadline order), then the short one's, which reaches the long one's
/// last slot. Returns both outcomes and the env.
fn long_then_short(long_wh: u64, short_wh: u64) -> (Vec<Outcome>, Vec<Outcome>, Env, KeyPair) {
    let (mut e, [b1, b2, s], [t1, t2]) = long_and_first_slot(long_wh, short_wh);
    let first = settle(&mut e, &s, IorTx::St(metered_st(&t1, &b1, 300, vec![1000; 6])));
    let second = settle(&mut e, &s, IorTx::StReach(metered_st(&t2, &b2, 300, vec![1000]), 5));
    (first, second, e, s)
}

/// Exactly enough: 420 Wh + 80 Wh of 500 Wh exported. The long sale took
/// the first slot; the short one moves it to the long one's later slots,
/// both are delivered, and the six slots are claimed to the watt-second.
#[test]
fn exactly_enough_export_covers_both_sales_settled_out_of_deadline_order() {
    let (first, second, e, s) = long_then_short(420, 80);
    let delivered = vec![Outcome::StSettled(StSettlement::SellerDelivered)];
    assert_eq!(first, delivered, "the long sale");
    assert_eq!(second, delivered, "the nested sale, settled after the long one");
    let (claimed, slots) = claims_of(&e, &s.address());
    assert_eq!(claimed.values().sum::<u128>(), 500 * 3600, "both sales claimed in full: {claimed:?}");
    assert!(claimed.values().all(|c| *c <= SLOT_WS), "no slot claimed past its export: {claimed:?}");
    let first_slot = SlotKey { seller: s.address(), dt_start: 8 * HOUR, dt_end: 8 * HOUR + SLOT };
    let nested = slots[&first_slot].by_period.get(&(8 * HOUR, 8 * HOUR + SLOT)).copied();
    assert_eq!(nested, Some(80 * 3600), "the nested sale holds its own slot");
}

/// One watt-hour short (421 Wh + 80 Wh of 500 Wh): the long sale, settled
/// first, stands; the nested one is the seller's shortfall (the buyer is
/// refunded and the seller penalised as for any shortfall) and the
/// seller's claim records are exactly what the long sale left.
#[test]
fn one_wh_short_the_newer_sale_loses_and_nothing_else_changes() {
    let (mut e, [b1, b2, s], [t1, t2]) = long_and_first_slot(421, 80);
    let first = settle(&mut e, &s, IorTx::St(metered_st(&t1, &b1, 300, vec![1000; 6])));
    assert_eq!(first, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    let before = claims_of(&e, &s.address());
    let rep = e.d.participant(&s.address()).unwrap().reputation;
    let second = settle(&mut e, &s, IorTx::StReach(metered_st(&t2, &b2, 300, vec![1000]), 5));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerShortfall)], "the newer sale loses");
    assert_eq!(claims_of(&e, &s.address()), before, "the long sale's claim is untouched");
    assert_eq!(before.0.values().sum::<u128>(), 421 * 3600);
    let alpha = e.d.cfg.params.alpha;
    assert_eq!(e.d.participant(&s.address()).unwrap().reputation, rep.saturating_sub(alpha), "penalised once");
}

/// The driver computes the reach from the settled state: after the long
/// sale settled, the nested sale's ST reaches the long one's last slot
/// (five slots after its own) and both are delivered.
#[test]
fn the_driver_names_the_reach_of_the_sellers_earlier_claims() {
    let (mut e, [b1, b2, s], [t1, t2]) = long_and_first_slot(250, 80);
    let long = e.d.settlement_tx(metered_st(&t1, &b1, 300, vec![1000; 6])).unwrap();
    assert!(matches!(long, IorTx::St(_)), "nothing settled to reach yet");
    assert_eq!(settle(&mut e, &s, long), vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    let nested = e.d.settlement_tx(metered_st(&t2, &b2, 300, vec![1000])).unwrap();
    assert!(matches!(nested, IorTx::StReach(_, 5)), "{nested:?}");
    assert_eq!(settle(&mut e, &s, nested), vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
}

/// Without the reach, the nested sale reads only its own slot, where the
/// long sale's claim cannot move to: the documented limit (the seller
/// names how far its other sales reach).
#[test]
fn without_reach_the_long_sale_keeps_the_first_slot() {
    let (mut e, [b1, b2, s], [t1, t2]) = long_and_first_slot(250, 80);
    assert_eq!(
        settle(&mut e, &s, IorTx::St(metered_st(&t1, &b1, 300, vec![1000; 6]))),
        vec![Outcome::StSettled(StSettlement::SellerDelivered)]
    );
    let second = settle(&mut e, &s, IorTx::St(metered_st(&t2, &b2, 300, vec![1000])));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
}

fn slot(seller: Address, i: u64) -> SlotKey {
    SlotKey { seller, dt_start: 8 * HOUR + i * SLOT, dt_end: 8 * HOUR + (i + 1) * SLOT }
}

/// Pure re-allocation: an earlier claim over six slots holds the first
/// five; a claim of the first slot alone demanding exactly one slot's
/// export is covered (the earlier claim moves to the sixth, kept whole);
/// one ws more is not; a window that stops short of the sixth slot is not.
#[test]
fn realloc_boundary_is_exact_to_the_watt_second() {
    let s = Address([7; 20]);
    let long = (8 * HOUR, 8 * HOUR + 6 * SLOT);
    let mut st = PreState::default();
    for i in 0..6 {
        let mut a = SlotAlloc { export: Some(SLOT_WS as i128), ..Default::default() };
        if i < 5 {
            a.by_period.insert(long, SLOT_WS);
            st.claimed.insert(slot(s, i), SLOT_WS);
        }
        st.slots.insert(slot(s, i), a);
    }
    let split = vec![(slot(s, 0), SLOT_WS as i128)];
    let reach: Vec<SlotKey> = (1..6).map(|i| slot(s, i)).collect();
    let plan = realloc(&st, &split, &reach, SLOT_WS).expect("exactly the remaining export");
    let held: u128 = plan.slots.iter().map(|(_, _, a)| a.by_period.get(&long).copied().unwrap_or(0)).sum();
    assert_eq!(held, 5 * SLOT_WS, "the earlier claim keeps all it held");
    assert!(plan.slots.iter().all(|(_, total, _)| *total == SLOT_WS), "{plan:?}");
    assert_eq!(plan.slots[0].2.by_period.get(&(8 * HOUR, 8 * HOUR + SLOT)), Some(&SLOT_WS), "{plan:?}");
    assert_eq!(realloc(&st, &split, &reach, SLOT_WS + 1), None, "one ws short");
    assert_eq!(realloc(&st, &split, &reach[..4], SLOT_WS), None, "the window's five slots are full");
    assert_eq!(realloc(&st, &split, &reach[..4], 0).map(|p| p.slots.len()), Some(5), "a zero claim fits");
}

/// A claim that would put one distinct period more than `MAX_PERIODS_PER_SLOT` on a slot is still covered
/// (attack r8 [2]): the slot's smallest claim is kept there as fixed claimed energy, so the record holds
/// at most `MAX_PERIODS_PER_SLOT` periods, the slot's claimed total counts every claim, and the export
/// is not counted twice.
#[test]
fn a_slot_over_max_periods_fixes_its_smallest_claim() {
    let s = Address([7; 20]);
    let export: i128 = 1_000;
    let mut st = PreState::default();
    let mut a = SlotAlloc { export: Some(export), ..Default::default() };
    for j in 0..MAX_PERIODS_PER_SLOT as u64 {
        a.by_period.insert((8 * HOUR - (j + 1) * SLOT, 8 * HOUR + SLOT), 10 + j as u128);
    }
    let held: u128 = a.by_period.values().sum();
    st.claimed.insert(slot(s, 0), held);
    st.slots.insert(slot(s, 0), a);
    let plan = realloc(&st, &[(slot(s, 0), export)], &[], 100).expect("a ninth period is covered");
    let (_, total, alloc) = &plan.slots[0];
    assert_eq!(*total, held + 100, "every claim is counted: {plan:?}");
    assert_eq!(alloc.by_period.len(), MAX_PERIODS_PER_SLOT, "{plan:?}");
    let smallest = (8 * HOUR - SLOT, 8 * HOUR + SLOT);
    assert_eq!(alloc.by_period.get(&smallest), None, "the smallest claim (10 ws) is fixed: {plan:?}");
    assert_eq!(alloc.by_period.get(&(8 * HOUR, 8 * HOUR + SLOT)), Some(&100), "{plan:?}");
    // Applied, a further claim of the rest fits and one more ws does not.
    let key = gridledger_rollup::types::AgreementKey { buyer: s, seller: s, dt_start: 8 * HOUR };
    let claim =
        |ws: u128| gridledger_rollup::types::Effect::ClaimExport { slots: vec![(slot(s, 0), export)], ws, reach: 0 };
    let mut after = st.clone();
    apply_effects(&mut after, &IorParams::case_study(), &key, &[claim(100)]).unwrap();
    assert_eq!(after.claimed[&slot(s, 0)], held + 100);
    let rest = export as u128 - held - 100;
    assert_eq!(realloc(&after, &[(slot(s, 0), export)], &[], rest + 1), None, "the export is not counted twice");
    assert!(realloc(&after, &[(slot(s, 0), export)], &[], rest).is_some(), "the rest of the export is free");
}

/// The rule of attack r9 [5]: a claim that would be a ninth period on a
/// slot but may take from a later slot of its period spills there instead
/// of pinning the slot's smallest claim, so nothing becomes fixed; a later
/// claim of the first slot's whole export then moves every tiny claim off
/// it.
#[test]
fn a_ninth_period_spills_to_a_later_slot_of_its_period() {
    let s = Address([7; 20]);
    let (k0, k1) = (slot(s, 0), slot(s, 1));
    let export: i128 = 1_000;
    let mut st = PreState::default();
    let mut a = SlotAlloc { export: Some(export), ..Default::default() };
    for j in 0..MAX_PERIODS_PER_SLOT as u64 {
        a.by_period.insert((k0.dt_start - (j + 1) * SLOT, k1.dt_end), 10 + j as u128);
    }
    let held: u128 = a.by_period.values().sum();
    st.claimed.insert(k0, held);
    st.slots.insert(k0, a);
    let plan = realloc(&st, &[(k0, export), (k1, export)], &[], 5).expect("covered");
    let records: BTreeMap<SlotKey, (u128, SlotAlloc)> = plan.slots.into_iter().map(|(k, t, a)| (k, (t, a))).collect();
    for (k, (total, alloc)) in &records {
        assert!(alloc.by_period.len() <= MAX_PERIODS_PER_SLOT, "{k:?}: {alloc:?}");
        assert_eq!(*total, alloc.by_period.values().sum::<u128>(), "nothing fixed on {k:?}: {records:?}");
    }
    assert_eq!(records[&k0].0 + records[&k1].0, held + 5, "every claim counted once: {records:?}");
    assert_eq!(records[&k1].1.by_period.len(), 1, "one period spilled to the later slot: {records:?}");
    for (k, (total, alloc)) in records {
        st.claimed.insert(k, total);
        st.slots.insert(k, alloc);
    }
    let whole = realloc(&st, &[(k0, export)], &[k1], export as u128).expect("the whole first slot is free to claim");
    let first = &whole.slots[0];
    assert_eq!((first.1, first.2.by_period.len()), (export as u128, 1), "only the new claim stays: {whole:?}");
    // The nine tiny periods all end with the second slot: they must all be
    // there now, so that slot is over the bound and pins its smallest.
    assert_eq!(whole.slots[1].1, held + 5, "every tiny claim is counted on the second slot: {whole:?}");
}

/// Off-chain recovery, gas counted as on chain.
struct Counting(u64);

impl ExecEnv for Counting {
    fn recover(&mut self, d: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError> {
        OffChain.recover(d, sig)
    }
    fn charge(&mut self, gas: u64) -> Result<(), ContractError> {
        self.0 += gas;
        Ok(())
    }
}

/// The worst case one batch allows: one ST whose window (its period's
/// slots plus its reach) fills what one entry may count
/// (`MAX_ENTRY_RECORDS`; one sender sends at most one such per batch), every
/// slot of it holding [`MAX_PERIODS_PER_SLOT`] earlier won claims, all
/// moved, and [`MAX_PERIODS_PER_SLOT`] sales recorded without certified
/// readings (period demands, [`SlotAlloc::sold`]), all re-placed. The
/// re-allocation charges `STEP_GAS × (slots + claims and sales held)`; the
/// whole verdict is measured and bounded here.
#[test]
fn realloc_gas_at_the_record_budget_bound() {
    let p = IorParams::case_study();
    let (b, s) = (trader(0), trader(1));
    // Since attack r6 one entry counts at most `MAX_ENTRY_RECORDS` (its
    // weight at most `MAX_ENTRY_GAS`): a window of that many records, half
    // of it reach (at most `MAX_REACH_SLOTS`).
    let reach = (u64::from(MAX_ENTRY_RECORDS) / 2).min(u64::from(MAX_REACH_SLOTS));
    // seller + buyer + agreement + window slots = the entry's record bound.
    let own = u64::from(MAX_ENTRY_RECORDS) - 3 - reach;
    let window = own + reach;
    let start = 8 * HOUR;
    let t = AgreementTerms {
        ep: Amount(200_000),
        em: gridledger_core::Energy(1),
        buyer: b.address(),
        seller: s.address(),
        dt_start: start,
        dt_end: start + own * SLOT,
        dl: start + own * SLOT + 15 * MIN,
    };
    let st_tx = metered_st(&t, &b, 300, vec![10; own as usize]);
    let entry = Entry { sender: s.address(), recorded_at: t.dt_end + MIN, tx: IorTx::StReach(st_tx, reach as u32) };
    assert_eq!(entry_records(&entry, p.meter_step_s), MAX_ENTRY_RECORDS, "the window fills the bound");
    let mut pre = PreState::default();
    for a in [b.address(), s.address()] {
        pre.participants.insert(a, Participant { balance: Amount(1_000_000_000), reputation: 100 });
    }
    let pool = t.payment().unwrap().checked_add(p.ds).unwrap().checked_add(p.seller_lock()).unwrap();
    pre.agreements.insert(t.key(), Agreement { terms: t.clone(), pool, buyer_opinion: None });
    pre.meters.insert(s.address(), MeterRecord { key: meter_key(&s.address()).address(), step_s: 300 });
    // Long periods over the whole window, one over the reach only, and
    // another buyer's sale of the same period as this one: the most a
    // slot holds.
    let end = start + window * SLOT;
    let long = MAX_PERIODS_PER_SLOT as u64 - 1;
    let mut periods: Vec<(u64, u64)> = (0..long).map(|j| (start - (j + 1) * SLOT, end)).collect();
    let (same, tail) = ((start, start + own * SLOT), (start + own * SLOT, end));
    periods.push(same);
    periods.push(tail);
    for i in 0..window {
        let k = SlotKey { seller: s.address(), dt_start: start + i * SLOT, dt_end: start + (i + 1) * SLOT };
        let mut a = SlotAlloc { export: Some(3_000), ..Default::default() };
        for p in periods.iter().filter(|p| p.0 <= k.dt_start && k.dt_end <= p.1) {
            a.by_period.insert(*p, 10);
            a.sold.insert(*p, 10);
        }
        assert_eq!(a.by_period.len(), MAX_PERIODS_PER_SLOT);
        assert_eq!(a.sold.len(), MAX_PERIODS_PER_SLOT);
        pre.claimed.insert(k, 10 * MAX_PERIODS_PER_SLOT as u128);
        pre.slots.insert(k, a);
    }
    let mut env = Counting(0);
    let tcrs = execute_batch(&mut env, &p, &pre, std::slice::from_ref(&entry)).unwrap();
    assert_eq!(tcrs[0].outcome, Outcome::StSettled(StSettlement::SellerDelivered));
    let realloc_gas = STEP_GAS * window * (1 + 2 * MAX_PERIODS_PER_SLOT as u64);
    eprintln!(
        "worst-case ST verdict: {} gas over {window} slots × {MAX_PERIODS_PER_SLOT} claims + {MAX_PERIODS_PER_SLOT} sales (re-allocation {realloc_gas})",
        env.0
    );
    assert!(env.0 >= realloc_gas, "the re-allocation is charged: {} < {realloc_gas}", env.0);
    assert!(env.0 <= 11_000_000, "one worst-case ST verdict stays a small part of the 100 M call limit: {}", env.0);
    // The effects apply and every earlier claim keeps its amount.
    let mut post = pre.clone();
    apply_effects(&mut post, &p, &t.key(), &tcrs[0].effects).unwrap();
    for per in &periods {
        let before: u128 = pre.slots.values().filter_map(|a| a.by_period.get(per)).sum();
        let mut after: u128 = post.slots.values().filter_map(|a| a.by_period.get(per)).sum();
        if *per == same {
            after -= 3600;
        }
        assert_eq!(after, before, "period {per:?} keeps its claim");
    }
    assert!(post.slots.values().all(|a| a.by_period.len() <= MAX_PERIODS_PER_SLOT));
    assert!(post.slots.iter().all(|(k, a)| a.sold == pre.slots[k].sold), "the sales' records are unchanged");
}

/// A sale recorded without certified readings whose period would put one
/// sold period more than [`MAX_PERIODS_PER_SLOT`] on a slot is recorded as
/// fixed claimed energy (its whole `ws`) on every slot of its period
/// instead: the records stay bounded and a later arbitration over any of
/// those slots still cannot count that energy.
#[test]
fn a_crowded_slot_records_a_further_sale_as_fixed_on_every_slot() {
    use gridledger_rollup::exec::record_sold;
    let s = Address([7; 20]);
    // Two sales of one period are summed in one entry.
    let mut st = PreState::default();
    record_sold(&mut st, &[slot(s, 0)], 10).unwrap();
    record_sold(&mut st, &[slot(s, 0)], 5).unwrap();
    assert_eq!(st.slots[&slot(s, 0)].sold, [((8 * HOUR, 8 * HOUR + SLOT), 15)].into_iter().collect());
    // Fill the first slot with distinct periods ending at its end.
    let mut full = PreState::default();
    for j in 0..MAX_PERIODS_PER_SLOT as u64 {
        let keys: Vec<SlotKey> = (0..=j)
            .rev()
            .map(|i| SlotKey { seller: s, dt_start: 8 * HOUR - i * SLOT, dt_end: 8 * HOUR - i * SLOT + SLOT })
            .collect();
        record_sold(&mut full, &keys, 1).unwrap();
    }
    assert_eq!(full.slots[&slot(s, 0)].sold.len(), MAX_PERIODS_PER_SLOT);
    let before = full.clone();
    let three = [slot(s, 0), slot(s, 1), slot(s, 2)];
    gridledger_rollup::exec::record_sold(&mut full, &three, 700).unwrap();
    assert_eq!(full.slots, before.slots, "no ninth sold period on the crowded slot");
    for k in &three {
        assert_eq!(full.claimed.get(k), Some(&700), "the whole sale fixed on {k:?}");
    }
    // A later arbitration of the second slot alone with 699 ws of export loses.
    assert_eq!(realloc(&full, &[(slot(s, 1), 1_399)], &[], 700), None);
    assert!(realloc(&full, &[(slot(s, 1), 1_400)], &[], 700).is_some());
}
