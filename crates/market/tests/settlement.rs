//! Settlement in the ledger's integers: cleared trades → whole Wh and
//! minor units, Σ payments = Σ receipts exactly.

use gridledger_market::clearing::{clear, Algorithm, MINOR_PER_MAJOR};
use gridledger_market::problem::Market;
use gridledger_market::units::{settle, SettlementError, UnitError};
use gridledger_market::{Case, DcModel, CASE30};

#[test]
fn rounding_follows_the_stated_rule() {
    // 1.2345 kWh → 1234 Wh (1234.5 ties to even); 0.2 $/kWh = 20 000 ¢/MWh;
    // 1234 · 20 000 / 10⁶ = 24.68 → 25 ¢
    let s = settle(&[(0, 0, 1.2345, 0.2)], 1, 1, 100).unwrap();
    assert_eq!(s.trades[0].wh, 1234);
    assert_eq!(s.trades[0].price_minor_per_mwh, 20_000);
    assert_eq!(s.trades[0].payment_minor, 25);
    // a payment of exactly half a cent rounds to even: 25 Wh at 20 000 ¢/MWh = 0.5 ¢ → 0
    let h = settle(&[(0, 0, 0.025, 0.2), (0, 0, 0.075, 0.2)], 1, 1, 100).unwrap();
    assert_eq!(h.trades.iter().map(|t| t.payment_minor).collect::<Vec<_>>(), vec![0, 2]); // 0.5 → 0, 1.5 → 2
                                                                                          // below half a Wh: not settled
    assert!(settle(&[(0, 0, 0.0004, 0.2)], 1, 1, 100).unwrap().trades.is_empty());
}

#[test]
fn payments_equal_receipts_exactly_for_a_cleared_market() {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    let net = gridledger_market::network::MarketNetwork::ptdf(&dc, 1.0).unwrap();
    for seed in 0..3 {
        let market = Market::generate(seed, 5, 4, &dc.bus_ids);
        for alg in [Algorithm::Central, Algorithm::PrimalDual] {
            let c = clear(&market, &net, alg).unwrap();
            let s = &c.settlement;
            assert_eq!(s.minor_per_major, MINOR_PER_MAJOR);
            assert_eq!(s.trades.len(), c.trades.iter().filter(|t| (t.kwh * 1000.0).round() > 0.0).count());
            assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor);
            assert_eq!(s.seller_receives.iter().sum::<i64>(), s.total_minor);
            assert_eq!(s.buyer_wh.iter().sum::<u64>(), s.energy_wh);
            assert_eq!(s.seller_wh.iter().sum::<u64>(), s.energy_wh);
            // each trade within half a Wh of the cleared energy, and the
            // total within one Wh per trade of the cleared energy
            for (t, st) in c.trades.iter().zip(&s.trades) {
                assert!((t.kwh * 1000.0 - st.wh as f64).abs() <= 0.5);
            }
            let diff = (c.energy_kwh * 1000.0 - s.energy_wh as f64).abs();
            assert!(diff <= 0.5 * s.trades.len() as f64 + 1.0 * (market.buyers.len() * market.sellers.len()) as f64);
            assert!(s.total_minor > 0, "seed {seed} {alg:?}: something was paid");
        }
    }
}

#[test]
fn bad_trades_are_refused_with_typed_errors() {
    assert!(matches!(settle(&[(0, 0, f64::NAN, 0.2)], 1, 1, 100), Err(SettlementError::Unit(UnitError::NotFinite(_)))));
    assert!(matches!(settle(&[(0, 0, -1.0, 0.2)], 1, 1, 100), Err(SettlementError::Unit(UnitError::OutOfRange(_)))));
    assert!(matches!(settle(&[(0, 0, 1.0, f64::INFINITY)], 1, 1, 100), Err(SettlementError::Unit(_))));
    assert!(matches!(settle(&[(1, 0, 1.0, 0.2)], 1, 1, 100), Err(SettlementError::UnknownParty { buyer: 1, .. })));
    assert!(settle(&[(0, 0, 1e18, 1e6)], 1, 1, 100).is_err());
}

#[test]
fn aladin_prices_are_what_the_sellers_receive() {
    use gridledger_market::clearing::network_for;
    use gridledger_market::CASE33BW;
    let net = network_for(&Case::parse(CASE33BW).unwrap(), 1.0).unwrap();
    let market = Market::generate(3, 6, 6, &net.bus_ids);
    let c = clear(&market, &net, Algorithm::Aladin).unwrap();
    let central = clear(&market, &net, Algorithm::Central).unwrap();
    // the bilateral price lies between the sellers' and buyers' marginals: positive
    assert!(c.mean_trade_price > 0.0, "ALADIN mean trade price {}", c.mean_trade_price);
    assert!(
        (c.mean_trade_price - central.mean_trade_price).abs() < 0.01 * central.mean_trade_price,
        "ALADIN {} vs nodal {}",
        c.mean_trade_price,
        central.mean_trade_price
    );
    assert!(c.settlement.total_minor > 0);
    assert_eq!(c.settlement.buyer_pays.iter().sum::<i64>(), c.settlement.seller_receives.iter().sum::<i64>());
}
