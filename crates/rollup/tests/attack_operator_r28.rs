//! Attack round 28 on the improved optimistic rollup (issue 11): the
//! operator features (`gridledger ior day --config community.toml`, the
//! meter CSV import) and the market's claim to trade all tradable energy.
//!
//! Findings (each test failed on the code it was written against and is
//! ignored until fixed):
//!
//! - [1] (high) a community file's bid near `u128::MAX` overflows the
//!   midpoint `(bid + ask) / 2` in `clear_slot_with`: a panic on outside
//!   input in debug builds; in release builds (no overflow checks) the sum
//!   wraps and the pair is priced far below the seller's ask (a hostile
//!   buyer bidding `u128::MAX − 100,000` against an ask of 150,000 buys at
//!   24,999 per kWh), and it is affordable, so the seller is paid a sixth
//!   of what it asked. `Community::day_config` checks only `ask, bid > 0`.
//! - [2] (medium) the slot is not re-cleared after `affordable_pairs`
//!   skips a pair: a high bidder that has run out of IOR balance keeps
//!   absorbing the sellers' surplus in the auction, its pairs are skipped,
//!   and a funded lower bidder whose bid covers the ask gets nothing while
//!   that surplus goes unsold. Tradable energy between a willing, funded
//!   buyer and seller is left untraded, every slot, for the rest of the
//!   day (issue 11: "a market that trades all tradable energy").
//! - [3] (low) a community file's `rotor_diameter_cm` near `u32::MAX` makes
//!   a slot's generation about 8.1·10¹⁷ Wh per turbine (no bound like
//!   `MAX_METERED_WH` on the simulated path), and the day report's
//!   `supply_wh_per_slot` sums them in `u64`: 24 such turbines overflow it
//!   (a panic in debug builds, a wrapped report in release).
//! - [4] (low) the meter CSV's time column is ignored: 24 rows labelled
//!   00:00, 00:15, …, 05:45 (the first six hours of a quarter-hour export)
//!   are read as a whole day of hourly data, each quarter hour spread over
//!   an hour and the day's 18 other hours made up (the 15-min vs hourly
//!   mismatch the operator feature promises to handle).
//!
//! - [5] (high: the issue's >= 99% claim fails for a plain community
//!   file, nobody hostile) the same root cause as [2] without anyone
//!   running out of funds: each AT locks the seller's `D_s` and undo
//!   reserve (1.5 coin), so a seller funded with the default 50 coin
//!   covers 33 ATs a slot. A community of two PV plants and 40
//!   households: the auction matches all 40 deficits to the cheaper plant,
//!   `affordable_pairs` skips 7 of them and nothing gives them to the
//!   other plant. Noon of day 106: 2,343 of 2,840 Wh (82.5%) while the
//!   pure auction trades the whole bound; the whole day (`ior day
//!   --config`, 48 slots, measured once, 140 s in a debug build): 106.058
//!   of 112.120 kWh (94.6%). A 200-household file (100 with 30 m² of PV,
//!   equal prices) trades 94.8% of its noon slot. The year test
//!   (`every_day_of_the_year_trades_at_least_99_percent_of_the_bound`)
//!   checks only the pure auction, never what `run_day` trades.
//!
//! Held up (passing tests): a community file whose asks exceed every bid
//! runs and trades nothing; duplicate or unknown fields in a community file
//! are refused by `deny_unknown_fields`; meter CSV rows with a bad cell, a
//! missing cell, a value beyond `MAX_METERED_WH`, or 48 half-hour rows are
//! typed errors; the settlement statements add up (per row `balance_end +
//! paid = balance_start + received`, the chain's balances, fee and revenue
//! totals) under uniform pricing with a grid fee and a feed-in tariff;
//! `case_study` gives the thesis' numbers (reputation 20 then 10, a loss of
//! 2 coin, 0.5 coin to each counterparty, barred after 13:30).

use gridledger_ledger::devnet::dev_key;
use gridledger_rollup::data::SLOTS_PER_DAY;
use gridledger_rollup::demo::{
    clear_slot_with, parse_meter_csv, run_day, ClearingRule, Community, DayConfig, DemoError, ParticipantSpec,
};

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

/// [1] A bid near `u128::MAX` from a community file: the midpoint of bid
/// and ask overflows. Checked on the pure auction (what `run_day` calls
/// each slot) and through `run_day` on a community file.
#[test]
fn a_huge_bid_is_refused_or_priced_within_bid_and_ask() {
    let ask = 150_000u128;
    let bid = u128::MAX - 100_000;
    let specs = vec![spec(0, true, ask, 260_000), spec(1, false, 200_000, bid)];
    for rule in [ClearingRule::Midpoint, ClearingRule::Uniform] {
        let r = std::panic::catch_unwind(|| clear_slot_with(&specs, &[1_000, -1_000], rule));
        match r {
            Ok(pairs) => {
                for (_, _, _, ep) in pairs {
                    assert!(ep >= ask, "{rule:?}: priced at {ep}, below the seller's ask {ask}");
                }
            }
            Err(_) => panic!("{rule:?}: the auction panicked on a bid from a community file"),
        }
    }
    let text = format!(
        r#"
funding_coins = 50
[[participant]]
load_profile = "H0-A"
pv_area_dm2 = 3000
ask = {ask}
bid = 260000
[[participant]]
load_profile = "H0-B"
ask = 200000
bid = {bid}
"#
    );
    let c: Community = toml::from_str(&text).expect("the file parses");
    let r = std::panic::catch_unwind(|| {
        let mut cfg = c.day_config(c.day)?;
        cfg.slots = (24, 26);
        run_day(cfg)
    });
    match r {
        Err(_) => panic!("run_day panicked on a community file's bid"),
        Ok(Err(e)) => eprintln!("typed error: {e}"),
        Ok(Ok(rep)) => {
            for t in &rep.trades {
                assert!(t.ep >= ask, "traded at {} below the ask {ask}: {t:?}", t.ep);
            }
        }
    }
}

/// [2] Seller S (10 kWh surplus per slot, ask 0.15 coin/kWh), buyer A
/// (10 kWh deficit, bid 0.25) and buyer B (5 kWh deficit, bid 0.20), every
/// account funded with 10 coin. A is matched first and pays 2 coin a slot
/// (plus 1 coin of deposit while the agreement is open), so after a few
/// slots it can no longer pay; its pairs are skipped, and S's surplus goes
/// unsold while B, funded and bidding above S's ask, buys nothing.
#[test]
#[allow(clippy::needless_range_loop)]
fn a_buyer_out_of_funds_does_not_starve_the_others() {
    let mut csv = String::from("time,s,a,b\n");
    for h in 0..24 {
        csv.push_str(&format!("{h},20000,-20000,-10000\n"));
    }
    let metered = parse_meter_csv(&csv).unwrap();
    let specs =
        vec![spec(0, true, 150_000, 260_000), spec(1, false, 200_000, 250_000), spec(2, false, 200_000, 200_000)];
    let cfg = DayConfig {
        prosumers: 1,
        consumers: 2,
        participants: Some(specs),
        metered: Some(metered.clone()),
        funding_coins: 10,
        slots: (24, 34),
        ..DayConfig::default()
    };
    let r = run_day(cfg).expect("the day runs");
    // Per traded slot: what S sold and what B bought (settled trades).
    let mut starved = Vec::new();
    for slot in 24..34 {
        let sold: u64 = r.trades.iter().filter(|t| t.settled && t.slot == slot && t.seller == 1).map(|t| t.em_wh).sum();
        let b_bought: u64 =
            r.trades.iter().filter(|t| t.settled && t.slot == slot && t.buyer == 3).map(|t| t.em_wh).sum();
        let surplus = metered[0][slot].max(0) as u64;
        let b_deficit = (-metered[2][slot]).max(0) as u64;
        if sold < surplus && b_bought < b_deficit {
            starved.push((slot, sold, b_bought));
        }
    }
    let b = &r.participants[2];
    eprintln!(
        "traded {} of {} Wh; B bought {} Wh, balance {} -> {}",
        r.energy_traded_wh, r.bound_wh, b.bought_wh, b.balance_start, b.balance_end
    );
    assert!(
        starved.is_empty(),
        "slots (slot, S sold Wh, B bought Wh) where S's surplus went unsold while funded B, bidding above S's \
         ask, was left short: {starved:?}"
    );
}

/// [3] 24 prosumers with the largest rotor a community file allows, on a
/// day with an hour above the rated wind speed (day 205): the report's
/// per-slot supply sum overflows.
#[test]
fn huge_turbines_are_refused_or_reported_without_overflow() {
    let mut text = String::from("day = 205\nfunding_coins = 50\n");
    for _ in 0..24 {
        text.push_str(
            "[[participant]]\nload_profile = \"H0-A\"\nrotor_diameter_cm = 4294967295\nask = 150000\nbid = 260000\n",
        );
    }
    text.push_str("[[participant]]\nload_profile = \"H0-B\"\nask = 200000\nbid = 250000\n");
    let c: Community = toml::from_str(&text).expect("the file parses");
    let r = std::panic::catch_unwind(|| {
        let mut cfg = c.day_config(c.day)?;
        cfg.slots = (0, 1);
        run_day(cfg)
    });
    match r {
        Err(_) => panic!("run_day panicked on a community file's rotor diameters"),
        Ok(Err(e)) => eprintln!("typed error: {e}"),
        Ok(Ok(rep)) => {
            // The sums the report states are the real sums (no wrap).
            let supply: u128 = rep.supply_wh_per_slot.iter().map(|v| u128::from(*v)).sum();
            let gen: u128 = rep.participants.iter().map(|p| u128::from(p.generation_wh)).sum();
            assert!(supply <= gen, "per-slot supply {supply} exceeds the generation {gen}");
        }
    }
}

/// [4] A quarter-hour export of six hours (24 rows, labelled by quarter
/// hour) is taken as a day of hourly readings.
#[test]
fn quarter_hour_labels_are_not_read_as_hours() {
    let mut csv = String::from("time,m1,m2\n");
    for q in 0..24 {
        csv.push_str(&format!("{:02}:{:02},100,-100\n", q / 4, (q % 4) * 15));
    }
    match parse_meter_csv(&csv) {
        Err(DemoError::Config(msg)) => eprintln!("refused: {msg}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(m) => panic!(
            "24 quarter-hour rows (00:00..05:45) accepted as a whole hourly day: {} slots per meter, slot 47 = {} Wh",
            m[0].len(),
            m[0][SLOTS_PER_DAY - 1]
        ),
    }
}

/// Held up: asks above every bid trade nothing and the day still runs.
#[test]
fn asks_above_every_bid_trade_nothing() {
    let specs = vec![spec(0, true, 300_000, 310_000), spec(1, false, 400_000, 250_000)];
    assert!(clear_slot_with(&specs, &[1_000, -1_000], ClearingRule::Midpoint).is_empty());
}

/// Held up: unknown and duplicate keys in a community file are refused.
#[test]
fn community_files_with_unknown_or_duplicate_keys_are_refused() {
    assert!(toml::from_str::<Community>("seed = 1\nseed = 2\n").is_err());
    assert!(toml::from_str::<Community>("sed = 1\n").is_err());
    assert!(
        toml::from_str::<Community>("[[participant]]\nload_profile = \"H0-A\"\nask = 1\nbid = 1\nbogus = 3\n").is_err()
    );
    assert!(toml::from_str::<Community>("funding_coins = -5\n").is_err());
    assert!(toml::from_str::<Community>("funding_coins = nan\n").is_err());
}

/// Held up: bad meter CSV rows are typed errors.
#[test]
fn bad_meter_csv_rows_are_typed_errors() {
    let day = |cell: &str, rows: usize| {
        let mut csv = String::from("time,m1\n");
        for h in 0..rows {
            csv.push_str(&format!("{h},{}\n", if h == 3 { cell } else { "5" }));
        }
        csv
    };
    for (csv, why) in [
        (day("x", 24), "not an integer"),
        (day("", 24), "not an integer"),
        (day("1000000001", 24), "beyond"),
        (day("-1000000001", 96), "beyond"),
        (day("5", 48), "got 48"),
        (day("NaN", 24), "not an integer"),
        (day("1e3", 24), "not an integer"),
    ] {
        match parse_meter_csv(&csv) {
            Err(DemoError::Config(msg)) => assert!(msg.contains(why), "{msg} lacks {why}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

/// Held up: the settlement statements add up to the chain. Under uniform
/// pricing with a grid fee and a feed-in tariff, every row of
/// `statements_csv` satisfies `balance_end + paid = balance_start +
/// received`, its balances are the chain's (as the report read them), the
/// grid fee column sums to the report's, and the paid and received columns
/// each sum to the day's revenue.
#[test]
fn statements_add_up_to_the_chain_balances() {
    let cfg = DayConfig {
        clearing: ClearingRule::Uniform,
        grid_fee: 10_000,
        feed_in_tariff: 130_000,
        slots: (20, 30),
        ..DayConfig::default()
    };
    let r = run_day(cfg).expect("the day runs");
    assert!(r.energy_traded_wh > 0);
    let csv = gridledger_rollup::demo::statements_csv(std::slice::from_ref(&r));
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("day,participant,address"));
    let (mut fees, mut paid_all, mut received_all) = (0u128, 0u128, 0u128);
    for (line, p) in lines.zip(&r.participants) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 11, "{line}");
        let n = |i: usize| f[i].parse::<u128>().unwrap();
        let (paid, received, fee, start, end) = (n(5), n(6), n(7), n(8), n(9));
        assert_eq!(end + paid, start + received, "row {line}");
        assert_eq!((start, end), (p.balance_start, p.balance_end), "row {line}");
        fees += fee;
        paid_all += paid;
        received_all += received;
    }
    assert_eq!(fees, r.grid_fees_minor);
    assert_eq!(paid_all, r.revenue_minor);
    assert_eq!(received_all, r.revenue_minor);
}

/// Held up: `gridledger ior case-study` reproduces the thesis' §3.5.5
/// numbers: #14's reputation 20 then 10, it loses 2 coin, each
/// counterparty receives 0.5 coin, #14 is barred after 13:30, coin
/// conserved.
#[test]
fn the_case_study_gives_the_thesis_numbers() {
    let r = gridledger_rollup::demo::case_study().expect("the case study runs");
    assert_eq!(r.reputation_after, vec![20, 10]);
    assert_eq!(r.loss_minor, 2_000_000);
    assert_eq!(r.compensation_minor, vec![500_000, 500_000]);
    assert!(r.barred.is_some());
    assert!(r.coin_conserved);
}

/// [5] A community file of two PV plants (a school roof at 0.15
/// coin/kWh and a barn at 0.16) and 40 households at noon of the default
/// day, everyone funded with the default 50 coin: the auction matches all
/// 40 deficits to the cheaper plant (its surplus covers them), and the
/// pure auction trades the whole bound. But each AT locks the seller's
/// `D_s` and undo reserve (1.5 coin), so the plant can cover 33 ATs; the
/// other 7 pairs are skipped by `affordable_pairs` and not re-cleared,
/// though the barn's surplus and the households' funds would cover them.
#[test]
fn a_community_with_many_households_per_plant_trades_99_percent() {
    let mut text = String::from("funding_coins = 50\n");
    for ask in [150_000, 160_000] {
        text.push_str(&format!(
            "[[participant]]\nload_profile = \"H0-G\"\npv_area_dm2 = 100000\nask = {ask}\nbid = 200000\n"
        ));
    }
    for _ in 0..40 {
        text.push_str("[[participant]]\nload_profile = \"H0-A\"\nask = 200000\nbid = 250000\n");
    }
    let c: Community = toml::from_str(&text).expect("the file parses");
    let mut cfg = c.day_config(c.day).expect("a valid community");
    cfg.slots = (24, 25);
    let net = gridledger_rollup::demo::day_net(&cfg).unwrap();
    let specs = gridledger_rollup::demo::participants(&cfg);
    let pure: u64 = clear_slot_with(&specs, &net[24], cfg.clearing).iter().map(|t| t.2).sum();
    let r = run_day(cfg).expect("the day runs");
    eprintln!(
        "auction {pure} Wh, settled {} Wh of the bound {} Wh in {} trades",
        r.energy_traded_wh, r.bound_wh, r.trades_count
    );
    assert_eq!(pure, r.bound_wh, "the auction alone trades the whole bound");
    for p in &r.participants {
        assert!(p.balance_end > 0 && p.reputation > 0, "nobody is broke or barred: {p:?}");
    }
    assert!(
        r.energy_traded_wh * 100 >= r.bound_wh * 99,
        "traded {} of {} Wh ({} trades): under 99% of the slot's bound",
        r.energy_traded_wh,
        r.bound_wh,
        r.trades_count
    );
}
