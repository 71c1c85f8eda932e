//! Nodal settlement (`clearing` module docs): every buyer pays its own
//! bus's price, every seller receives its own, the congestion rent is the
//! operator's; the same for the three algorithms up to their tolerances,
//! whatever trade matrix each reaches.

mod common;

use common::{case30_net, p};
use gridledger_market::clearing::{clear, Algorithm};
use gridledger_market::problem::{Market, Side};
use gridledger_market::units::{settle_nodal, SettlementError};

const ALGORITHMS: [Algorithm; 3] = [Algorithm::Central, Algorithm::PrimalDual, Algorithm::Aladin];

/// case30 with ratings × 1e-4 (the line into bus 11 carries 6.5 kW): cheap
/// energy at bus 11 behind the congested line, dear energy at bus 2.
fn congested() -> Market {
    Market {
        buyers: vec![
            p(Side::Buyer, 11, 0.02, 0.2, 0.0, 10.0),
            p(Side::Buyer, 2, 0.02, 0.5, 0.0, 10.0),
            p(Side::Buyer, 9, 0.03, 0.4, 0.0, 6.0),
        ],
        sellers: vec![
            p(Side::Seller, 11, 0.02, 0.05, 0.0, 50.0),
            p(Side::Seller, 2, 0.02, 0.25, 0.0, 50.0),
            p(Side::Seller, 9, 0.01, 0.12, 0.0, 4.0),
        ],
    }
}

#[test]
fn every_party_settles_at_its_bus_price_alike_for_all_three_algorithms() {
    let net = case30_net(1e-4);
    let m = congested();
    let runs: Vec<_> = ALGORITHMS.iter().map(|a| (*a, clear(&m, &net, *a).unwrap())).collect();
    let (_, central) = &runs[0];
    assert!(!central.binding.is_empty(), "the line must bind for this test to mean anything");
    for (alg, c) in &runs {
        let s = &c.settlement;
        // the money balances: buyers = sellers + operator
        assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor, "{alg:?}");
        assert_eq!(s.seller_receives.iter().sum::<i64>() + s.operator_minor, s.total_minor, "{alg:?}");
        // congestion rent: positive, to the operator
        assert!(s.operator_minor > 0, "{alg:?}: operator {}", s.operator_minor);
        for (i, b) in m.buyers.iter().enumerate() {
            let kwh = s.buyer_wh[i] as f64 / 1000.0;
            // no trade above the buyer's marginal utility at its total
            for t in c.trades.iter().filter(|t| t.buyer == i) {
                assert!(t.price <= b.b - b.a * kwh + 1e-3, "{alg:?} buyer {i}: {} > {}", t.price, b.b - b.a * kwh);
            }
            assert!(s.buyer_pays[i] as f64 <= 100.0 * b.welfare(kwh) + 1.0, "{alg:?} buyer {i}");
        }
        for (j, sl) in m.sellers.iter().enumerate() {
            let kwh = s.seller_wh[j] as f64 / 1000.0;
            for t in c.trades.iter().filter(|t| t.seller == j) {
                assert!(t.seller_price >= sl.b + sl.a * kwh - 1e-3, "{alg:?} seller {j}");
            }
            // receives at least its cost of the energy (−welfare)
            assert!(s.seller_receives[j] as f64 >= -100.0 * sl.welfare(kwh) - 1.0, "{alg:?} seller {j}");
        }
        // each party's money equals the central clearing's within 1 ¢ + 0.5 %
        let close = |x: i64, y: i64| (x - y).abs() as f64 <= 1.0 + 5e-3 * y.abs() as f64;
        let cs = &central.settlement;
        for (x, y) in s.buyer_pays.iter().zip(&cs.buyer_pays).chain(s.seller_receives.iter().zip(&cs.seller_receives)) {
            assert!(
                close(*x, *y),
                "{alg:?}: {:?} / {:?} vs central {:?} / {:?}",
                s.buyer_pays,
                s.seller_receives,
                cs.buyer_pays,
                cs.seller_receives
            );
        }
        assert!(close(s.operator_minor, cs.operator_minor), "{alg:?}");
    }
}

#[test]
fn an_uncongested_market_has_one_price_and_no_rent() {
    let net = case30_net(1.0);
    let m = Market::generate(3, 4, 4, &net.bus_ids);
    for alg in ALGORITHMS {
        let c = clear(&m, &net, alg).unwrap();
        assert!(c.binding.is_empty());
        let s = &c.settlement;
        assert!(s.operator_minor.abs() <= 1, "{alg:?}: {}", s.operator_minor);
        for t in &c.trades {
            assert!((t.price - t.seller_price).abs() < 1e-3, "{alg:?}: {t:?}");
        }
    }
}

#[test]
fn settle_nodal_pays_each_side_its_own_price() {
    // 2 kWh from a seller at 0.10 $/kWh to a buyer at 0.30 $/kWh: the buyer
    // pays 60 ¢, the seller receives 20 ¢, the operator keeps 40 ¢; and a
    // trade against the congestion (buyer's price below the seller's)
    // carries a negative share
    let s =
        settle_nodal(&[(0, 0, 2.0, 0.30, 0.10), (1, 0, 1.0, 0.05, 0.10)], &[u64::MAX; 2], &[u64::MAX], 100).unwrap();
    assert_eq!(s.buyer_pays, vec![60, 5]);
    assert_eq!(s.seller_receives, vec![30]);
    assert_eq!((s.total_minor, s.operator_minor), (65, 35));
    assert_eq!(s.trades[0].price_minor_per_mwh, 30_000);
    assert_eq!(s.trades[0].seller_price_minor_per_mwh, 10_000);
    assert_eq!((s.trades[1].value_milli, s.trades[1].seller_value_milli), (5_000, 10_000));
    assert!(matches!(
        settle_nodal(&[(0, 0, 1.0, 0.3, f64::NAN)], &[u64::MAX], &[u64::MAX], 100),
        Err(SettlementError::Unit(_))
    ));
}
