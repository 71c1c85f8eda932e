//! The §3.5.4 day on embedded real data and a tiny run of the §3.5.3
//! benchmarks.

use gridledger_rollup::bench::{bench_ior, IorBenchConfig};
use gridledger_rollup::demo::{run_day, DayConfig, DayReport, DemoError};

fn without_timing(r: &DayReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v.as_object_mut().unwrap().remove("processing_ms");
    v
}

#[test]
fn the_day_runs_conserves_coin_and_is_deterministic() {
    let r = run_day(DayConfig::default()).unwrap();
    println!(
        "trades {} settled {} energy {} Wh revenue {} coins, {} ms",
        r.trades_count, r.settled_trades, r.energy_traded_wh, r.revenue_coins, r.processing_ms
    );
    assert_eq!(r.participants.len(), 15);
    assert!(r.trades_count > 50, "a sunny, windy day trades: {}", r.trades_count);
    // Every trade settles in the honest run.
    assert_eq!(r.settled_trades, r.trades_count);
    assert!(r.trades.iter().all(|t| t.at_outcome == "AtAccepted" && t.st_outcome == "StSettled(Agreed)"));
    // Energy traded is the sum of the settled trades, and what was sold was bought.
    assert_eq!(r.energy_traded_wh, r.trades.iter().filter(|t| t.settled).map(|t| t.em_wh).sum::<u64>());
    let sold: u64 = r.participants.iter().map(|p| p.sold_wh).sum();
    let bought: u64 = r.participants.iter().map(|p| p.bought_wh).sum();
    assert_eq!((sold, bought), (r.energy_traded_wh, r.energy_traded_wh));
    assert_eq!(r.trades_per_slot.iter().sum::<usize>(), r.trades_count);
    // Coins: conserved on chain and inside the IOR accounts; nothing burned.
    assert_eq!(r.coins.chain_total_before, r.coins.chain_total_after);
    assert_eq!(r.coins.ior_total_start, r.coins.ior_total_end);
    assert_eq!(r.coins.burned, 0);
    // Each account moved by exactly its trades' payments; consumers only paid.
    for p in &r.participants {
        let n = p.spec.number;
        let received: u128 = r.trades.iter().filter(|t| t.settled && t.seller == n).map(|t| t.payment).sum();
        let paid: u128 = r.trades.iter().filter(|t| t.settled && t.buyer == n).map(|t| t.payment).sum();
        assert_eq!(p.balance_end + paid, p.balance_start + received, "participant #{n}");
    }
    assert_eq!(r.trades.iter().map(|t| t.payment).sum::<u128>(), r.revenue_minor);
    for p in r.participants.iter().filter(|p| !p.spec.prosumer) {
        assert_eq!(p.sold_wh, 0);
        assert!(p.balance_end <= p.balance_start);
    }
    assert!(r.participants.iter().all(|p| p.reputation == 30));
    // IOR settles each batch within seconds of block time.
    assert!(r.settlement_latency.max_ms < 60_000, "{:?}", r.settlement_latency);
    assert!(r.gas.primary > 0 && r.gas.secondary > 0);
    // Same seed, same day; another seed, another day.
    let again = run_day(DayConfig::default()).unwrap();
    assert_eq!(without_timing(&r), without_timing(&again));
    let other = run_day(DayConfig { seed: 2, ..DayConfig::default() }).unwrap();
    assert_ne!(without_timing(&r)["trades"], without_timing(&other)["trades"]);
}

#[test]
fn a_bad_day_is_a_typed_error() {
    let config_error = |cfg: DayConfig| match run_day(cfg) {
        Err(DemoError::Config(why)) => why,
        other => panic!("expected DemoError::Config, got {:?}", other.map(|_| ())),
    };
    assert_eq!(config_error(DayConfig { day: 0, ..DayConfig::default() }), "day 0 is not in 1..=365");
    assert_eq!(config_error(DayConfig { day: 366, ..DayConfig::default() }), "day 366 is not in 1..=365");
    assert_eq!(
        config_error(DayConfig { validators: 0, ..DayConfig::default() }),
        "need two traders, an executor and a validator"
    );
}

#[test]
fn bench_ior_tiny() {
    let cfg = IorBenchConfig {
        sizes: vec![40],
        dispute_permille: vec![0, 50],
        gas_txs: 30,
        sellers: 5,
        nodes: vec![10],
        ..IorBenchConfig::default()
    };
    let v = bench_ior(&cfg).unwrap();
    let rows = v["ior_vs_challenge_window_or"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        for k in ["ior", "challenge_window_or"] {
            assert_eq!(r[k]["settled_sts"], 40, "{k}: {r}");
        }
        // IOR pays for validation; the challenge-window rollup waits a week.
        assert!(r["ior"]["gas"].as_u64() > r["challenge_window_or"]["gas"].as_u64());
        assert!(r["ior"]["latency_max_ms"].as_u64().unwrap() < 60_000);
        assert!(r["challenge_window_or"]["latency_max_ms"].as_u64().unwrap() >= 7 * 24 * 3_600_000);
    }
    // 5 % of 40 STs: two disputes, each validated by one validator, in both systems.
    assert_eq!(rows[1]["ior"]["disputes_handled"], 2);
    assert_eq!(rows[1]["challenge_window_or"]["disputes_handled"], 2);
    assert!(rows[1]["ior"]["gas"].as_u64() > rows[0]["ior"]["gas"].as_u64());
    let single = &v["ats_and_sts"]["single_chain"];
    assert_eq!((single["ats_ok"].as_u64(), single["sts_ok"].as_u64()), (Some(30), Some(30)));
    assert!(v["gas_per_contract"][0]["ours"]["gas_per_call"].as_u64().unwrap() > 0);
}

/// The example community file: parsed, run for a day with its grid fee and
/// feed-in tariff, trading at least 99 % of what the day physically allows.
#[test]
fn the_example_community_file_runs_a_day() {
    use gridledger_rollup::demo::Community;
    let text = include_str!("../examples/community.toml");
    let c: Community = toml::from_str(text).unwrap();
    assert_eq!(c.participant.len(), 6);
    let cfg = c.day_config(c.day).unwrap();
    let r = run_day(cfg.clone()).unwrap();
    assert!(r.bound_wh > 0);
    assert!(r.energy_traded_wh * 100 >= r.bound_wh * 99, "{} of {} Wh", r.energy_traded_wh, r.bound_wh);
    assert_eq!(r.settled_trades, r.trades_count);
    assert_eq!(r.coins.chain_total_before, r.coins.chain_total_after);
    let specs = gridledger_rollup::demo::participants(&cfg);
    let mut fees = 0u128;
    for t in &r.trades {
        let (b, s) = (&specs[t.buyer - 1], &specs[t.seller - 1]);
        assert!(t.ep >= s.ask.max(c.feed_in_tariff), "seller gets at least its ask and the tariff");
        assert!(t.ep + c.grid_fee <= b.bid, "buyer pays at most its bid, fee included");
        fees += c.grid_fee * u128::from(t.em_wh) / 1000;
    }
    assert_eq!(r.grid_fees_minor, fees);
    // Invalid files are typed errors.
    let bad = text.replacen("load_profile = \"H0-B\"", "load_profile = \"H0-X\"", 1);
    let c: Community = toml::from_str(&bad).unwrap();
    match c.day_config(106) {
        Err(DemoError::Config(why)) => assert!(why.contains("participant 2: load profile \"H0-X\""), "{why}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(toml::from_str::<Community>("sed = 1").is_err(), "unknown keys are refused");
}

/// `gridledger ior case-study`: the §3.5.5 numbers.
#[test]
fn the_case_study_reproduces_the_thesis_numbers() {
    let r = gridledger_rollup::demo::case_study().unwrap();
    assert_eq!(r.reputation_after, vec![20, 10]);
    assert_eq!(r.loss_minor, 2_000_000, "2 × D_s");
    assert_eq!(r.compensation_minor, vec![500_000, 500_000], "F_p × D_s each");
    assert_eq!(r.burned_minor, 1_000_000);
    assert!(r.barred.as_deref().is_some_and(|w| w.contains("reputation") && w.contains("is 10")), "{:?}", r.barred);
    assert!(r.coin_conserved);
}
