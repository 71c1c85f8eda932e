//! Attack round 12 on the improved optimistic rollup (issue 11): the
//! reopening bound of attack r11 [4] (`AtRecordRefusal::MarkPeriodOver`).
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::primary::AtRecordRefusal;
use gridledger_rollup::types::{AgreementTerms, AtRejection, Outcome};

fn outcomes(e: &mut Env) -> Vec<Outcome> {
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// A key marked by an AT that execution refused (its seller unfunded),
/// the marking batch settled; returns the environment and the marking
/// terms.
fn refused_mark() -> (Env, AgreementTerms) {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(3));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    assert_eq!(e.d.submit(&b, &at(&x, &s)).unwrap().status, TxStatus::Success);
    let out = outcomes(&mut e);
    assert!(
        matches!(out[..], [Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. })] if who == s.address()),
        "{out:?}"
    );
    assert!(e.d.now() < x.dt_end);
    (e, x)
}

/// Other terms of the same key (same start) the seller signed afresh,
/// delivering half an hour longer.
fn longer(x: &AgreementTerms) -> AgreementTerms {
    AgreementTerms { dt_end: x.dt_end + 30 * MIN, dl: x.dl + 30 * MIN, ep: Amount(210_000), ..x.clone() }
}

/// Held up: the bound is exact. A reopening recorded one millisecond
/// before the marking AT's `DT_end` is recorded (an honest pair whose AT
/// was refused can still trade the period, attack r10 [1]); one recorded
/// at `DT_end` is refused `MarkPeriodOver` naming that instant, even for
/// terms delivering past it.
#[test]
fn the_reopening_bound_is_the_marking_ats_dt_end_exactly() {
    let (b, s) = (trader(0), trader(3));
    let (mut e, x) = refused_mark();
    let y = longer(&x);
    e.d.set_time(x.dt_end - 1);
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "a reopening just before DT_end: {:?}", r.status);

    let (mut e, x) = refused_mark();
    let y = longer(&x);
    e.d.set_time(x.dt_end);
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    let why = AtRecordRefusal::MarkPeriodOver { dt_end: x.dt_end, now: x.dt_end }.to_string();
    assert!(reverted(&r).contains(&why), "{:?}", r.status);
    assert!(outcomes(&mut e).is_empty(), "nothing recorded");
}

/// [1] The day's driver sends a slot's STs in blocks of `max_batch`
/// entries, but `SC_DS_*` records at most `max_entries_per_sender` (32)
/// entries of one sender per batch, and the market lets one seller fill
/// every deficit of a slot. A community with one large producer (a shared
/// PV plant: 1 prosumer exporting 40 kWh a slot) and 40 households that
/// each import 0.5 kWh clears 40 sales of that seller per slot; the ATs
/// (one per buyer) record, but the seller's 33rd to 40th STs of the slot
/// are refused at recording (`sent 32 entries in batch …`), silently:
/// those agreements never settle, their buyers' payments and both
/// deposits stay locked (until the buyer's expiry, which penalises the
/// honest seller). Expected: the driver sends a sender's entries over as
/// many blocks as the per-sender bound (and the batch gas budget) needs,
/// as the bench now does, so every trade of the day settles.
#[test]
fn a_seller_with_forty_sales_in_a_slot_settles_them_all() {
    use gridledger_rollup::data::SLOTS_PER_DAY;
    use gridledger_rollup::demo::{run_day, DayConfig};
    let buyers = 40;
    let mut metered: Vec<Vec<i64>> = vec![vec![-500; SLOTS_PER_DAY]; buyers];
    metered.push(vec![40_000; SLOTS_PER_DAY]);
    let cfg = DayConfig {
        prosumers: 1,
        consumers: buyers,
        funding_coins: 200,
        metered: Some(metered),
        slots: (24, 26),
        ..DayConfig::default()
    };
    let r = run_day(cfg).unwrap();
    assert_eq!(r.trades_count, 2 * buyers, "one sale per household per slot");
    assert_eq!(
        r.settled_trades,
        r.trades_count,
        "settled {} of {} trades; seller's reputation {:?}",
        r.settled_trades,
        r.trades_count,
        r.participants.last().map(|p| p.reputation)
    );
}

/// [1], the buyer's side: one large consumer (a school drawing 20 kWh a
/// slot) and 40 prosumers that each export 0.5 kWh; the market lets the
/// buyer buy from all 40 in a slot, but its ATs go in one block and only
/// 32 of them record (`max_entries_per_sender`). Expected: every cleared
/// sale is recorded and settles.
#[test]
fn a_buyer_with_forty_sellers_in_a_slot_records_and_settles_them_all() {
    use gridledger_rollup::data::SLOTS_PER_DAY;
    use gridledger_rollup::demo::{run_day, DayConfig};
    let sellers = 40;
    let mut metered: Vec<Vec<i64>> = vec![vec![-20_000; SLOTS_PER_DAY]];
    metered.extend(std::iter::repeat_n(vec![500; SLOTS_PER_DAY], sellers));
    let cfg = DayConfig {
        prosumers: sellers,
        consumers: 1,
        funding_coins: 200,
        metered: Some(metered),
        slots: (24, 26),
        ..DayConfig::default()
    };
    let r = run_day(cfg).unwrap();
    assert_eq!(r.trades_count, 2 * sellers, "one sale per prosumer per slot");
    assert_eq!(
        r.settled_trades, r.trades_count,
        "settled {} of {} trades ({} of {} Wh)",
        r.settled_trades, r.trades_count, r.energy_traded_wh, r.bound_wh
    );
}

/// [1], the batch gas budget: 260 households each buying 0.5 kWh from
/// one of 260 neighbours (no sender above 32 entries) clear 260 sales in
/// a slot; their 260 half-hour STs of six readings go in one block, but a
/// batch's ATs and STs may weigh `MAX_BATCH_GAS − RESERVED_GAS` (about
/// 236 such STs, the bench's own figure), so the rest are refused at
/// recording and never settle. Expected: the driver packs a slot's
/// entries into blocks the batch budget takes, as the bench does.
#[test]
fn a_slot_with_more_sales_than_one_batch_takes_settles_them_all() {
    use gridledger_rollup::data::SLOTS_PER_DAY;
    use gridledger_rollup::demo::{run_day, DayConfig};
    let pairs = 260;
    let mut metered: Vec<Vec<i64>> = vec![vec![-500; SLOTS_PER_DAY]; pairs];
    metered.extend(std::iter::repeat_n(vec![500; SLOTS_PER_DAY], pairs));
    let cfg = DayConfig {
        prosumers: pairs,
        consumers: pairs,
        funding_coins: 20,
        metered: Some(metered),
        slots: (24, 25),
        ..DayConfig::default()
    };
    let r = run_day(cfg).unwrap();
    assert!(r.trades_count >= pairs, "{} trades", r.trades_count);
    assert_eq!(
        r.settled_trades, r.trades_count,
        "settled {} of {} trades ({} of {} Wh)",
        r.settled_trades, r.trades_count, r.energy_traded_wh, r.bound_wh
    );
}
