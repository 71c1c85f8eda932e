//! The Clarabel reference against the exact uncongested optimum, and on
//! congested and infeasible markets.

use gridledger_market::central::{solve, ClearError};
use gridledger_market::network::{MarketNetwork, NetworkError};
use gridledger_market::primal_dual::uncongested_optimum;
use gridledger_market::problem::Market;
use gridledger_market::{Case, DcModel, DistFlow, CASE30, CASE33BW};

fn case30() -> DcModel {
    DcModel::new(&Case::parse(CASE30).unwrap()).unwrap()
}

#[test]
fn central_matches_the_exact_uncongested_optimum() {
    let dc = case30();
    for (seed, k) in [(1, 12), (2, 25), (3, 50)] {
        let market = Market::generate(seed, k, k, &dc.bus_ids);
        let (price, w_star, d, s) = uncongested_optimum(&market);
        let c = solve(&market, &MarketNetwork::ptdf(&dc, 1.0).unwrap()).unwrap();
        assert!(c.binding.is_empty(), "{k}: {:?}", c.binding);
        assert!((c.welfare - w_star).abs() <= 2e-5 * w_star, "{k}: {} vs {}", c.welfare, w_star);
        for (a, b) in c.buyer_totals.iter().zip(&d).chain(c.seller_totals.iter().zip(&s)) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        for p in &c.bus_prices {
            assert!((p - price).abs() < 1e-5, "nodal {p} vs uniform {price}");
        }
        // the proportional plan has the totals as margins
        let trades = c.trades();
        assert!((market.welfare(&trades) - c.welfare).abs() < 1e-9);
    }
}

#[test]
fn congested_central_keeps_every_line_within_its_limit_and_prices_diverge() {
    let dc = case30();
    let market = Market::generate(1, 12, 12, &dc.bus_ids);
    let (_, w_free, _, _) = uncongested_optimum(&market);
    let net = MarketNetwork::ptdf(&dc, 1e-4).unwrap();
    let c = solve(&market, &net).unwrap();
    assert!(!c.binding.is_empty());
    assert!(c.welfare < w_free - 1e-3, "{} vs {}", c.welfare, w_free);
    let (bm, bn) = net.placement(&market).unwrap();
    let p = net.injections(&bm, &bn, &c.buyer_totals, &c.seller_totals);
    assert!(net.violation(&p) < 1e-6, "violation {}", net.violation(&p));
    // without the limits the same totals would overload a line
    let (_, _, d, s) = uncongested_optimum(&market);
    assert!(net.violation(&net.injections(&bm, &bn, &d, &s)) > 1.0);
    // interior prosumers' marginals equal their bus's nodal price
    let spread =
        c.bus_prices.iter().fold(0.0f64, |m, p| m.max(*p)) - c.bus_prices.iter().fold(1.0f64, |m, p| m.min(*p));
    assert!(spread > 1e-3, "congestion separates nodal prices: spread {spread}");
    for (i, b) in market.buyers.iter().enumerate() {
        let t = c.buyer_totals[i];
        if t > 1e-4 && t < b.e_max - 1e-4 {
            assert!((b.marginal(t) - c.bus_prices[bm[i]]).abs() < 1e-5);
        }
    }
}

#[test]
fn an_infeasible_market_is_refused_with_a_typed_error() {
    let dc = case30();
    let mut market = Market::generate(4, 6, 6, &dc.bus_ids);
    for p in &mut market.buyers {
        p.e_min = 1.0;
    }
    // a bus no seller shares: the minimum purchases must cross some line
    let net = MarketNetwork::ptdf(&dc, 1e-9).unwrap();
    assert!(matches!(solve(&market, &net), Err(ClearError::Infeasible(_))));
    assert!(matches!(MarketNetwork::ptdf(&dc, f64::NAN), Err(NetworkError::BadScale(_))));
    assert!(matches!(MarketNetwork::ptdf(&dc, -1.0), Err(NetworkError::BadScale(_))));
    let mut bad = market.clone();
    bad.sellers[0].a = -0.01;
    assert!(matches!(solve(&bad, &net), Err(ClearError::Market(_))));
}

#[test]
fn distflow_voltage_limits_bind_for_heavy_buying_at_the_feeder_end() {
    let case = Case::parse(CASE33BW).unwrap();
    let df = DistFlow::new(&case).unwrap();
    let net = MarketNetwork::distflow(&df, &case).unwrap();
    assert_eq!(net.model, "distflow");
    // the base case's loads alone are within the voltage limits
    assert!(net.h.iter().all(|h| *h >= 0.0));
    let mut market = Market::generate(9, 20, 20, &df.bus_ids);
    // buyers at the far end of the feeder (bus 18), big ones; sellers at the root
    for p in &mut market.buyers {
        p.bus = 18;
        p.e_max = 400.0;
        p.b = 0.9;
        p.a = 0.0005;
    }
    for p in &mut market.sellers {
        p.bus = 1;
        p.e_max = 800.0;
    }
    let c = solve(&market, &net).unwrap();
    assert!(!c.binding.is_empty(), "bus 18's V min binds");
    assert!(c.binding.iter().any(|r| net.labels[*r].contains("V min")));
    let (bm, bn) = net.placement(&market).unwrap();
    let p = net.injections(&bm, &bn, &c.buyer_totals, &c.seller_totals);
    assert!(net.violation(&p) < 1e-6);
}

#[test]
fn a_reference_breaking_its_own_row_is_a_typed_error() {
    use gridledger_market::clearing::{clear_with, Algorithm, ClearingError};
    use gridledger_market::problem::{Prosumer, Side};
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let market = Market {
        buyers: vec![p(Side::Buyer, 2, 0.01, 10.0, 200.0), p(Side::Buyer, 2, 0.02, 5.0, 20.0)],
        sellers: vec![p(Side::Seller, 1, 0.01, 1.0, 200.0), p(Side::Seller, 1, 0.02, 2.0, 20.0)],
    };
    // one row `1e20 p_1 − 1e20 p_2 ≤ 5e20`: the flow limited to 2.5 kWh;
    // Clarabel's tolerances, relative to the row's scale, let it trade far more
    let net = MarketNetwork {
        model: "ptdf",
        bus_ids: vec![1, 2],
        g: vec![vec![1e20, -1e20]],
        h: vec![5e20],
        labels: vec!["r".into()],
        feeder: None,
    };
    match solve(&market, &net) {
        Err(ClearError::RowBroken { row, kw_beyond }) => assert!(row == "r" && kw_beyond > 0.0, "{row} {kw_beyond}"),
        Err(e) => panic!("another error: {e}"),
        Ok(c) => panic!("the reference's trades (buyers {:?}) accepted", c.buyer_totals),
    }
    // the distributed clearing is not blamed for the reference's failure
    match clear_with(&market, &net, Algorithm::PrimalDual, Some(20_000)) {
        Err(ClearingError::Clear(ClearError::RowBroken { .. })) => {}
        r => panic!("expected the reference's typed error, got {:?}", r.map(|c| c.welfare)),
    }
    // the same row at scale 1 is met by the reference
    let net = MarketNetwork { g: vec![vec![1.0, -1.0]], h: vec![5.0], ..net };
    let c = solve(&market, &net).unwrap();
    let bought: f64 = c.buyer_totals.iter().sum();
    assert!((bought - 2.5).abs() < 1e-6, "{:?}", c.buyer_totals);
}
