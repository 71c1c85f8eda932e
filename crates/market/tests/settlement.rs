//! Settlement in the ledger's integers: cleared trades → whole Wh and
//! minor units, Σ payments = Σ receipts exactly.

use gridledger_market::clearing::{clear, Algorithm, MINOR_PER_MAJOR};
use gridledger_market::problem::Market;
use gridledger_market::units::{cap_wh, settle, SettlementError, UnitError};
use gridledger_market::{Case, DcModel, CASE30};

const NO_CAP: [u64; 4] = [u64::MAX; 4];

#[test]
fn rounding_follows_the_stated_rule() {
    // 1.2345 kWh → 1234 Wh (1234.5 ties to even); 0.2 $/kWh = 20 000 ¢/MWh;
    // 1234 · 20 000 / 10³ = 24 680 thousandths of a cent → 25 ¢
    let s = settle(&[(0, 0, 1.2345, 0.2)], &NO_CAP[..1], &NO_CAP[..1], 100).unwrap();
    assert_eq!(s.trades[0].wh, 1234);
    assert_eq!(s.trades[0].price_minor_per_mwh, 20_000);
    assert_eq!(s.trades[0].value_milli, 24_680);
    assert_eq!((s.buyer_pays[0], s.seller_receives[0], s.total_minor), (25, 25, 25));
    // a party's net is rounded once, not each trade: 25 Wh + 75 Wh at
    // 20 000 ¢/MWh = 0.5 ¢ + 1.5 ¢ = 2 ¢ (per trade, ties to even, 0 + 2 as well;
    // three trades of 0.4 ¢ pay 1 ¢, not 0)
    let h = settle(&[(0, 0, 0.025, 0.2), (0, 1, 0.075, 0.2)], &NO_CAP[..1], &NO_CAP[..2], 100).unwrap();
    assert_eq!(h.buyer_pays, vec![2]);
    assert_eq!(h.seller_receives.iter().sum::<i64>(), 2);
    let t =
        settle(&[(0, 0, 0.02, 0.2), (1, 0, 0.02, 0.2), (2, 0, 0.02, 0.2)], &NO_CAP[..3], &NO_CAP[..1], 100).unwrap();
    assert_eq!(t.seller_receives, vec![1], "1.2 ¢ of value: 1 ¢");
    assert_eq!(t.buyer_pays.iter().sum::<i64>(), 1);
    // energy per prosumer: three trades of 0.4 Wh to one seller settle 1 Wh, not 0
    let e = settle(&[(0, 0, 0.0004, 0.2), (1, 0, 0.0004, 0.2), (2, 0, 0.0004, 0.2)], &NO_CAP[..3], &NO_CAP[..1], 100)
        .unwrap();
    assert_eq!((e.seller_wh[0], e.energy_wh, e.buyer_wh.iter().sum::<u64>()), (1, 1, 1));
    // never above a prosumer's own cap: 2.9996 kWh against an e_max of 2.9995 kWh settles 2999 Wh
    let c = settle(&[(0, 0, 2.9996, 0.2)], &[cap_wh(2.9995)], &NO_CAP[..1], 100).unwrap();
    assert_eq!(c.buyer_wh, vec![2999]);
    assert_eq!(c.seller_wh, vec![2999]);
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
            assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor);
            assert_eq!(s.seller_receives.iter().sum::<i64>(), s.total_minor);
            assert_eq!(s.buyer_wh.iter().sum::<u64>(), s.energy_wh);
            assert_eq!(s.seller_wh.iter().sum::<u64>(), s.energy_wh);
            assert_eq!(s.trades.iter().map(|t| t.wh).sum::<u64>(), s.energy_wh);
            // each prosumer's settled energy is its cleared total rounded
            // down or up, and the interval's within one Wh of the cleared energy
            let (mut bt, mut stt) = (vec![0.0; market.buyers.len()], vec![0.0; market.sellers.len()]);
            for t in &c.trades {
                bt[t.buyer] += t.kwh * 1000.0;
                stt[t.seller] += t.kwh * 1000.0;
            }
            // (never above its own ⌊1000 e_max⌋ Wh; one Wh below the floor
            // where the other side's caps cost fractions of a Wh)
            let ps = market.buyers.iter().zip(&bt).zip(&s.buyer_wh);
            for ((p, x), w) in ps.chain(market.sellers.iter().zip(&stt).zip(&s.seller_wh)) {
                let (lo, hi) = (x.floor().min(cap_wh(p.e_max) as f64) - 1.0, x.ceil().min(cap_wh(p.e_max) as f64));
                assert!(
                    (lo..=hi).contains(&(*w as f64)),
                    "seed {seed} {alg:?}: {x} Wh settled as {w}, e_max {}",
                    p.e_max
                );
            }
            // (less the fractions of a Wh above a capped prosumer's ⌊1000 e_max⌋)
            let lost = |ps: &[gridledger_market::problem::Prosumer], x: &[f64]| -> f64 {
                ps.iter().zip(x).map(|(p, x)| (x - cap_wh(p.e_max) as f64).max(0.0)).sum()
            };
            let lost = lost(&market.buyers, &bt).max(lost(&market.sellers, &stt));
            let diff = (c.energy_kwh * 1000.0 - s.energy_wh as f64).abs();
            assert!(diff <= 1.0 + lost, "seed {seed} {alg:?}: {diff} Wh off, {lost} beyond caps");
            assert!(s.total_minor > 0, "seed {seed} {alg:?}: something was paid");
        }
    }
}

#[test]
fn bad_trades_are_refused_with_typed_errors() {
    let one = [u64::MAX];
    let s = |t: &[(usize, usize, f64, f64)]| settle(t, &one, &one, 100);
    assert!(matches!(s(&[(0, 0, f64::NAN, 0.2)]), Err(SettlementError::Unit(UnitError::NotFinite(_)))));
    assert!(matches!(s(&[(0, 0, -1.0, 0.2)]), Err(SettlementError::Unit(UnitError::OutOfRange(_)))));
    assert!(matches!(s(&[(0, 0, 1.0, f64::INFINITY)]), Err(SettlementError::Unit(_))));
    assert!(matches!(s(&[(1, 0, 1.0, 0.2)]), Err(SettlementError::UnknownParty { buyer: 1, .. })));
    assert!(s(&[(0, 0, 1e18, 1e6)]).is_err());
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
