//! Attack round 30 on the improved optimistic rollup (issue 11): the
//! slot clearing under the participants' budgets (`clear_slot_within`,
//! what `ior day --config` sends) and its claim to trade
//! `min(Σ surplus, Σ deficit)` "whenever prices and budgets allow, and
//! otherwise what the budgets allow".
//!
//! Findings (each test fails on the code it was written against and is
//! ignored until fixed):
//!
//! - [1] (medium) the auction spends a seller's AT locks in bid order,
//!   whatever the trade's size: a seller that can lock k more ATs (each
//!   locks `D_s` + the undo reserve, 1.5 coin) gives them to the k
//!   highest bidders even when they need 1 Wh each, and its surplus then
//!   goes unsold while a funded buyer whose bid covers the ask gets
//!   nothing. One plant that can lock one AT, a 1 Wh high bidder and a
//!   10 kWh buyer: 1 of 10,000 Wh traded (0.01 %), where the same budgets
//!   allow all 10,000 Wh (the plant's one AT to the big buyer). With the
//!   default 50 coin (33 locks) a plant meeting 33 high-bidding 1 Wh
//!   accounts and one large household trades 33 Wh of 5,000. Any member
//!   who bids high for a sliver of a slot (or 33 such members) takes the
//!   plant's whole slot from everyone else at the cost of 1 Wh each.
//! - [2] (medium) the same on the buyer's side: each AT locks the buyer's
//!   `D_s` (1 coin), and a buyer is filled from sellers by ask, so its
//!   deposits go to the cheapest sellers however little they hold. A
//!   buyer that can put up one `D_s` meets a 1 Wh seller with the lowest
//!   ask first and is passed over after it: 1 of 5,000 Wh traded, where
//!   one AT with the 5 kWh seller covers the whole deficit.
//! - [3] (medium) end to end: a day on metered data (the [1] community
//!   through `run_day`, funded with 2 coin each: the operator's
//!   `funding_coins`) trades 1 Wh in a slot whose bound is 10,000 Wh, and
//!   every participant could pay for the whole bound.
//! - [4] (medium) a day killed between slots and resumed after more than
//!   `DL + expiry_ms` (15 min + 1 h: an operator whose process died
//!   overnight) expires every open agreement: `resume_day` sends the
//!   buyers' expiries instead of the sellers' STs (an ST that late is
//!   refused), so a seller whose meter shows it delivered is penalised as
//!   a silent seller and never paid. A plant with two noon sales, resumed
//!   two hours later: both `Expired`, the plant 50 -> 48 coin and
//!   reputation 30 -> 10 (= β: barred from trading), each buyer +0.5 coin
//!   with its energy free, 1 coin burned. The resumed day's statements
//!   (`ior day --rpc --statements`, from the chain) show none of it: every
//!   row says nothing was bought, sold, paid or received, yet the
//!   balances moved (`balance_end + paid != balance_start + received`).
//!   The operator's crash is charged to the sellers, and the statements do
//!   not add up to the chain's moves.
//! - [5] (low) under `clearing = "uniform"` a buyer is reserved at its
//!   bid, not at the slot's price, and its fill is cut to what the bid
//!   would cost: a buyer bidding 1 coin/kWh with 6 coin free (after
//!   `D_s`) for a 10 kWh deficit, one seller asking 0.01 coin/kWh, trades
//!   6 kWh at the uniform 0.505 coin/kWh (3.03 coin), where the whole
//!   10 kWh at that price (5.05 coin) is within its budget: 60 % of a
//!   bound the budgets allow.
//! - [6] (low) the meter CSV's time check (attack r28 [4]'s fix) reads
//!   only labels of the form `HH:MM[:SS]`; an ISO 8601 label with a zone,
//!   what most meter portals export (`2024-04-16T00:15:00Z`,
//!   `…T00:15:00+02:00`), names "no time" and every row goes unchecked:
//!   the first six hours of a quarter-hour export (24 rows, 00:00 to
//!   05:45) are again read as a whole hourly day.
//!
//! Fixed (the tests run): [1]–[3] and [5] by clearing a budgeted slot
//! largest fills first, at the uniform rule's slot price where it applies
//! (`clear_slot_within`, planted back as the mutant
//! `SlotClearedBySliversFirst`); [4] by recording each slot's STs before
//! the next slot starts (a day stopped between slots has them on chain, so
//! a late resume settles them as agreed), with the statements counting
//! every closed agreement's payments less its locks (an expiry's penalty
//! and compensation included) and the resume reporting `expired`; [6] by
//! dropping an ISO 8601 zone from a label before reading its time.
//!
//! Held up (passing tests): the budgets are never overdrawn and every
//! pair respects its prices under each clearing rule with a grid fee and
//! a feed-in tariff (400 randomised communities against
//! `affordable_pairs`): no seller is paid below its ask, no buyer above
//! its bid; ISO labels without a zone are checked (control of [6]).

use std::collections::BTreeMap;

use gridledger_ledger::devnet::dev_key;
use gridledger_rollup::data::SLOTS_PER_DAY;
use gridledger_rollup::demo::{
    affordable_pairs, clear_slot_within, midpoint, parse_meter_csv, resume_day, run_day, run_day_with_progress,
    slot_bound, Budgets, ClearingRule, DayConfig, DemoError, Market, ParticipantSpec,
};
use gridledger_rollup::driver::{dev_chain, DriverError, DualChain};
use gridledger_rollup::types::IorParams;
use gridledger_rollup::{primary_registry, secondary_registry};

const COIN: u128 = 1_000_000;

fn spec(i: usize, prosumer: bool, ask: u128, bid: u128) -> ParticipantSpec {
    ParticipantSpec {
        number: i + 1,
        address: dev_key(i).address(),
        prosumer,
        load_profile: "H0-A".into(),
        load_scale_permille: 1000,
        load_shift_slots: 0,
        pv_area_dm2: if prosumer { 2000 } else { 0 },
        rotor_diameter_cm: 0,
        ask,
        bid,
    }
}

fn budgets(free: Vec<u128>) -> Budgets {
    let p = IorParams::case_study();
    Budgets { free, ds: p.ds, seller_lock: p.seller_lock() }
}

fn traded(pairs: &[(usize, usize, u64, u128)]) -> u64 {
    pairs.iter().map(|p| p.2).sum()
}

/// [1] A plant (participant 0) funded to lock one more AT this slot; a
/// 1 Wh buyer bidding high and a 10 kWh buyer bidding less. Both bids
/// cover the ask, both buyers can pay for everything they need, and the
/// plant's one AT with the big buyer would trade the whole bound.
#[test]
fn a_sellers_one_lock_is_not_spent_on_a_sliver() {
    let specs = vec![spec(0, true, 100_000, 100_000), spec(1, false, 1, 900_000), spec(2, false, 1, 200_000)];
    let net = vec![10_000, -1, -10_000];
    let b = budgets(vec![2 * COIN, 10 * COIN, 10 * COIN]);
    // What the budgets allow: the plant's one AT to participant 2.
    let plant_to_big = vec![(2, 0, 10_000, midpoint(200_000, 100_000))];
    assert_eq!(affordable_pairs(plant_to_big.clone(), &mut b.free.clone(), b.ds, b.seller_lock), plant_to_big);
    let bound = slot_bound(&net);
    assert_eq!(bound, 10_000);
    let got = clear_slot_within(&specs, &net, &Market::default(), &b);
    let t = traded(&got);
    assert!(t * 100 >= bound * 99, "traded {t} of {bound} Wh, the budgets allow {bound}: {got:?}");
}

/// [1] with the default funding (50 coin: 33 seller locks): 33 accounts
/// bidding high for 1 Wh each take the plant's slot from a household
/// that needs 5 kWh.
#[test]
fn slivers_do_not_take_a_default_funded_plant() {
    let mut specs = vec![spec(0, true, 100_000, 100_000)];
    let mut net = vec![5_000];
    for i in 1..=33 {
        specs.push(spec(i, false, 1, 900_000));
        net.push(-1);
    }
    specs.push(spec(34, false, 1, 200_000));
    net.push(-5_000);
    let b = budgets(vec![50 * COIN; specs.len()]);
    let bound = slot_bound(&net);
    assert_eq!(bound, 5_000);
    // The budgets allow 32 slivers and the household (33 ATs of the plant).
    let mut allowed: Vec<(usize, usize, u64, u128)> = (1..=32).map(|i| (i, 0, 1, midpoint(900_000, 100_000))).collect();
    allowed.push((34, 0, 5_000 - 33, midpoint(200_000, 100_000)));
    assert_eq!(affordable_pairs(allowed.clone(), &mut b.free.clone(), b.ds, b.seller_lock), allowed);
    let got = clear_slot_within(&specs, &net, &Market::default(), &b);
    let t = traded(&got);
    assert!(t * 100 >= 4_999 * 99, "traded {t} of {bound} Wh, the budgets allow 4,999: {} pairs", got.len());
}

/// [2] A buyer that can put up one `D_s` (and the price of its whole
/// deficit), a 1 Wh seller with the lowest ask and a 5 kWh seller.
#[test]
fn a_buyers_one_deposit_is_not_spent_on_a_sliver() {
    let specs = vec![spec(0, true, 50_000, 1), spec(1, true, 100_000, 1), spec(2, false, 1, 200_000)];
    let net = vec![1, 5_000, -5_000];
    // 1.9 coin: one D_s (1 coin) and 5 kWh at up to 0.15 coin/kWh, not two D_s.
    let b = budgets(vec![10 * COIN, 10 * COIN, 19 * COIN / 10]);
    let one_at = vec![(2, 1, 5_000, midpoint(200_000, 100_000))];
    assert_eq!(affordable_pairs(one_at.clone(), &mut b.free.clone(), b.ds, b.seller_lock), one_at);
    let bound = slot_bound(&net);
    assert_eq!(bound, 5_000);
    let got = clear_slot_within(&specs, &net, &Market::default(), &b);
    let t = traded(&got);
    assert!(t * 100 >= bound * 99, "traded {t} of {bound} Wh, the budgets allow {bound}: {got:?}");
}

/// [5] Uniform pricing: the fill is cut at the bid, not at the price paid.
#[test]
fn a_uniform_buyer_is_filled_to_what_the_slots_price_allows() {
    let specs = vec![spec(0, true, 10_000, 10_000), spec(1, false, 1, COIN)];
    let net = vec![10_000, -10_000];
    let b = budgets(vec![10 * COIN, 7 * COIN]);
    let m = Market { rule: ClearingRule::Uniform, ..Market::default() };
    let price = midpoint(COIN, 10_000);
    let whole = vec![(1, 0, 10_000, price)];
    assert_eq!(affordable_pairs(whole.clone(), &mut b.free.clone(), b.ds, b.seller_lock), whole);
    let got = clear_slot_within(&specs, &net, &m, &b);
    let t = traded(&got);
    assert!(t * 100 >= 10_000 * 99, "traded {t} of 10,000 Wh at {price} per kWh, the budgets allow all: {got:?}");
}

/// [6] Quarter hours labelled in ISO 8601 with a zone, 24 rows.
#[test]
fn zoned_quarter_hour_labels_are_not_read_as_hours() {
    for zone in ["Z", "+02:00"] {
        let mut csv = String::from("time,m1,m2\n");
        for q in 0..24 {
            csv.push_str(&format!("2024-04-16T{:02}:{:02}:00{zone},-100,100\n", q / 4, (q % 4) * 15));
        }
        let got = parse_meter_csv(&csv);
        assert!(got.is_err(), "zone {zone}: 24 quarter-hour rows were read as a day of hours");
    }
}

/// Held up (control of [6]): the same labels without a zone are refused.
#[test]
fn unzoned_quarter_hour_labels_are_not_read_as_hours() {
    for sep in ["T", " "] {
        let mut csv = String::from("time,m1,m2\n");
        for q in 0..24 {
            csv.push_str(&format!("2024-04-16{sep}{:02}:{:02}:00,-100,100\n", q / 4, (q % 4) * 15));
        }
        assert!(parse_meter_csv(&csv).is_err(), "separator {sep:?}");
    }
}

/// [3] The [1] community through the day (`run_day`, what `ior day
/// --config --meter-csv` runs) at noon, every account funded with 2 coin
/// (`funding_coins = 2`): the plant can lock one AT, and the 10 kWh buyer
/// can pay for all of it (`D_s` 1 coin + 10 kWh at 0.1 coin/kWh); the day
/// trades 1 Wh.
#[test]
fn a_metered_day_trades_what_the_budgets_allow() {
    let specs = vec![spec(0, true, 100_000, 100_000), spec(1, false, 1, 900_000), spec(2, false, 1, 100_000)];
    let mut metered = vec![vec![0i64; SLOTS_PER_DAY]; 3];
    metered[0][24] = 10_000;
    metered[1][24] = -1;
    metered[2][24] = -10_000;
    let cfg = DayConfig {
        prosumers: 1,
        consumers: 2,
        funding_coins: 2,
        participants: Some(specs),
        metered: Some(metered),
        slots: (24, 25),
        ..DayConfig::default()
    };
    let r = run_day(cfg).unwrap();
    assert_eq!(r.bound_wh, 10_000);
    // At 0.1 coin/kWh (both at 100,000 minor units) 2 coin pays the buyer's
    // D_s and 10 kWh (1 coin): the budgets allow the whole bound.
    assert!(
        r.energy_traded_wh * 100 >= r.bound_wh * 99,
        "traded {} of {} Wh: {:?}",
        r.energy_traded_wh,
        r.bound_wh,
        r.trades
    );
}

/// Held up: under every rule, with a grid fee and a feed-in tariff, the
/// budgeted auction's pairs all pass `affordable_pairs` on the same
/// budgets (no budget overdrawn), each price lies within the pair's
/// effective ask and bid, and no pair trades more than either side's net.
#[test]
fn budgeted_pairs_are_affordable_and_priced_within_bid_and_ask() {
    let mut x: u64 = 0x5eed_0030;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    for round in 0..400 {
        let n = 2 + next(12) as usize;
        let specs: Vec<ParticipantSpec> =
            (0..n).map(|i| spec(i, true, 1 + u128::from(next(400_000)), 1 + u128::from(next(400_000)))).collect();
        let net: Vec<i64> = (0..n).map(|_| next(20_001) as i64 - 10_000).collect();
        let free: Vec<u128> = (0..n).map(|_| u128::from(next(6 * COIN as u64))).collect();
        let b = budgets(free.clone());
        let rule = [ClearingRule::Midpoint, ClearingRule::PayAsBid, ClearingRule::Uniform][round % 3];
        let m = Market { rule, grid_fee: u128::from(next(50_000)), feed_in_tariff: u128::from(next(50_000)) };
        let got = clear_slot_within(&specs, &net, &m, &b);
        let kept = affordable_pairs(got.clone(), &mut free.clone(), b.ds, b.seller_lock);
        assert_eq!(kept, got, "round {round}: a pair overdraws a budget");
        let mut sold = vec![0u64; n];
        let mut bought = vec![0u64; n];
        for &(bi, si, em, ep) in &got {
            assert!(ep >= specs[si].ask.max(m.feed_in_tariff), "round {round}: seller paid below its ask");
            assert!(ep + m.grid_fee <= specs[bi].bid, "round {round}: buyer pays above its bid");
            sold[si] += em;
            bought[bi] += em;
        }
        for i in 0..n {
            assert!(sold[i] <= net[i].max(0) as u64 && bought[i] <= (-net[i]).max(0) as u64, "round {round}");
        }
    }
}

/// Opens (`fresh`) or reattaches to the day's chains in `dirs`.
fn chains(
    dirs: &(tempfile::TempDir, tempfile::TempDir),
    dcfg: gridledger_rollup::driver::DriverConfig,
    fresh: bool,
) -> Result<DualChain, DemoError> {
    if fresh {
        return Ok(DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?);
    }
    let n = dcfg.accounts()?;
    let p = dev_chain(dirs.0.path(), n, dcfg.wallet, primary_registry()).map_err(DriverError::from)?;
    let s = dev_chain(dirs.1.path(), n, dcfg.wallet, secondary_registry()).map_err(DriverError::from)?;
    Ok(DualChain::attach(p, s, dcfg)?)
}

/// [4] A plant sells to two households at noon (slot 24); the day is
/// stopped as slot 25 starts (the journal's last record: nothing of slot
/// 25 sent; what a kill -9 there leaves) and resumed two hours later.
#[test]
fn a_day_resumed_late_neither_penalises_delivered_sales_nor_hides_it_in_the_statements() {
    let mut metered = vec![vec![0i64; SLOTS_PER_DAY]; 3];
    metered[0][24] = 3_000;
    metered[1][24] = -1_000;
    metered[2][24] = -2_000;
    let cfg = DayConfig {
        prosumers: 1,
        consumers: 2,
        metered: Some(metered),
        slots: (24, 26),
        participants: Some(vec![
            spec(0, true, 100_000, 100_000),
            spec(1, false, 1, 200_000),
            spec(2, false, 1, 200_000),
        ]),
        ..DayConfig::default()
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut starts: BTreeMap<u64, usize> = BTreeMap::new();
    let r = run_day_with_progress(
        cfg.clone(),
        |dcfg| chains(&dirs, dcfg, true),
        &mut |slot, t0| {
            if slot == 25 {
                return Err(DemoError::Config("killed".into()));
            }
            starts.insert(t0, slot);
            Ok(())
        },
        &mut |_| Ok(()),
    );
    assert!(matches!(r, Err(DemoError::Config(_))), "the day stopped at slot 25");
    let t24 = *starts.keys().next().unwrap();
    // Down two hours: past DL (slot end + 15 min) + expiry (1 h).
    let rep = resume_day(
        &cfg,
        &starts,
        |dcfg| {
            let mut d = chains(&dirs, dcfg, false)?;
            d.set_time(t24 + 2 * 3_600_000);
            Ok(d)
        },
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(rep.open_agreements, 0);
    assert_eq!(rep.agreements_settled, 2, "{:?}", rep.outcomes);
    let rs = IorParams::case_study().rs;
    let mut wrong = Vec::new();
    for row in &rep.statements {
        if row.balance_end_minor + row.paid_minor != row.balance_start_minor + row.received_minor {
            wrong.push(format!(
                "participant {}: start {} + received {} - paid {} != end {} (reputation {})",
                row.participant,
                row.balance_start_minor,
                row.received_minor,
                row.paid_minor,
                row.balance_end_minor,
                row.reputation
            ));
        }
        if row.reputation != rs {
            wrong.push(format!("participant {} penalised: reputation {}", row.participant, row.reputation));
        }
    }
    assert!(wrong.is_empty(), "outcomes {:?}: {wrong:#?}", rep.outcomes);
}
