//! Minima relief after attack round 6 (issue 15): every test of the
//! relief is an exact LP over bus groups, its work is bounded per
//! interval whatever the requests, and the framework refuses hidden
//! numbers above its admission limits with a record.

mod common;

use common::{case30_net, feeder, p};
use gridledger_market::central::solve;
use gridledger_market::framework::{
    relieve_minima, run_interval_insecure_seeded, MAX_RELIEF_SOLVES, MAX_REQUEST_KWH, MAX_REQUEST_PRICE,
};
use gridledger_market::network::MarketNetwork;
use gridledger_market::problem::{Market, Side};
use gridledger_market::teardo::{Strategy, TearDoConfig};

/// A seeded 20 × 20 case30 market (ratings × 1e-4) plus `count` buyers at
/// each of the leaf buses 11, 13 and 26 filing e_min = e_max = 10 kWh,
/// more than the line into each carries.
fn with_bad_minima(count: usize) -> Market {
    let net = case30_net(1e-4);
    let mut m = Market::generate(7, 20, 20, &net.bus_ids);
    for bus in [11, 13, 26] {
        for _ in 0..count {
            m.buyers.push(p(Side::Buyer, bus, 0.02, 0.3, 10.0, 10.0));
        }
    }
    m
}

#[test]
fn relief_solves_are_bounded_and_do_not_grow_with_the_requests_relieved() {
    let net = case30_net(1e-4);
    let mut solves = Vec::new();
    for count in [1, 30] {
        let mut m = with_bad_minima(count);
        let r = relieve_minima(&mut m, &net).unwrap().expect("infeasible as filed");
        assert!(r.solves <= MAX_RELIEF_SOLVES, "{} solves: {}", r.solves, r.reason);
        assert!(solve(&m, &net).is_ok(), "the relieved market clears");
        solves.push(r.solves);
    }
    assert_eq!(solves[0], solves[1], "1 vs 30 bad requests a bus");
}

#[test]
fn the_common_level_is_solved_exactly_and_only_the_loading_groups_share_it() {
    // rows of their own: buses 2 and 3 together take at most 3.2 kW; bus 4
    // is behind no row
    let mut net = MarketNetwork::unconstrained(vec![1, 2, 3, 4]);
    net.g = vec![vec![0.0, -1.0, -1.0, 0.0]];
    net.h = vec![3.2];
    net.labels = vec!["into 2 and 3".into()];
    let mut m = Market {
        buyers: vec![
            p(Side::Buyer, 2, 0.02, 0.3, 2.5, 3.0),
            p(Side::Buyer, 3, 0.02, 0.3, 1.5, 2.0),
            p(Side::Buyer, 4, 0.02, 0.3, 10.0, 12.0),
        ],
        sellers: vec![p(Side::Seller, 1, 0.02, 0.05, 0.0, 100.0)],
    };
    let r = relieve_minima(&mut m, &net).unwrap().expect("4 kWh into a 3.2 kW cut");
    // bus 3's 1.5 is below the level: whole; bus 2 takes the rest exactly
    // (a bisection on a grid of the largest minimum stopped 2⁻¹⁰ of it short)
    assert_eq!(m.buyers[1].e_min, 1.5, "{}", r.reason);
    assert!((m.buyers[0].e_min - 1.7).abs() < 1e-6, "{} ({})", m.buyers[0].e_min, r.reason);
    assert_eq!(m.buyers[2].e_min, 10.0, "bus 4 loads no row: {}", r.reason);
    assert!(solve(&m, &net).is_ok());
}

#[test]
fn minima_at_the_far_end_of_the_feeder_are_relieved_under_lindistflow() {
    let net = feeder();
    let mut m = Market {
        buyers: vec![p(Side::Buyer, 18, 0.0005, 0.3, 400.0, 500.0), p(Side::Buyer, 18, 0.0005, 0.3, 400.0, 500.0)],
        sellers: vec![p(Side::Seller, 1, 0.0001, 0.05, 0.0, 5000.0)],
    };
    assert!(solve(&m, &net).is_err(), "precondition: 800 kWh at bus 18 break its voltage limit");
    let r = relieve_minima(&mut m, &net).unwrap().expect("relieved");
    assert!(m.buyers[0].e_min > 0.0 && m.buyers[0].e_min == m.buyers[1].e_min, "{}", r.reason);
    assert!(solve(&m, &net).is_ok(), "{}", r.reason);
}

fn cfg() -> TearDoConfig {
    TearDoConfig { enclaves: 4, kappa: 2, byzantine: Default::default(), strategy: Strategy::Always, seed: 4 }
}

#[test]
fn hidden_numbers_above_the_admission_limits_are_excluded_with_a_record() {
    let net = case30_net(1.0);
    let mut m = Market::generate(5, 3, 3, &net.bus_ids);
    let bus = net.bus_ids[2];
    // at the limits: admitted
    m.buyers.push(p(Side::Buyer, bus, 0.02, MAX_REQUEST_PRICE, 0.0, MAX_REQUEST_KWH));
    // above them: excluded (buyers are submitted first, in order)
    m.buyers.push(p(Side::Buyer, bus, 0.02, MAX_REQUEST_PRICE * 1.01, 0.0, 5.0));
    m.sellers.push(p(Side::Seller, bus, 0.02, 0.05, 0.0, MAX_REQUEST_KWH * 1.01));
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded(dir.path(), &m, &net, cfg(), None).unwrap();
    assert!(out.teardo.converged);
    let idx: Vec<usize> = out.excluded.iter().map(|e| e.index).collect();
    assert_eq!(idx, vec![4, 8], "{:?}", out.excluded);
    assert!(out.excluded.iter().all(|e| e.reason.contains("admission limit")), "{:?}", out.excluded);
    let admitted = out.market.unwrap();
    assert_eq!((admitted.buyers.len(), admitted.sellers.len()), (4, 3));
}
