//! The distributed primal-dual clearing against the exact uncongested optimum.

use gridledger_market::primal_dual::{project_capped, uncongested_optimum, PdParams, PrimalDual};
use gridledger_market::problem::Market;

#[test]
fn projection_respects_bounds_and_is_idempotent() {
    let mut v = vec![3.0, -1.0, 2.0, 0.5];
    project_capped(&mut v, 0.0, 2.0);
    assert!(v.iter().all(|x| *x >= 0.0));
    assert!((v.iter().sum::<f64>() - 2.0).abs() < 1e-12, "{v:?}");
    let w = v.clone();
    project_capped(&mut v, 0.0, 2.0);
    assert_eq!(v, w);
    let mut u = vec![0.1, 0.2, -0.5];
    project_capped(&mut u, 1.0, 5.0);
    assert!((u.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{u:?}");
}

fn clear(seed: u64, k: usize) -> (f64, f64, usize) {
    let buses: Vec<u32> = (1..=30).collect();
    let market = Market::generate(seed, k, k, &buses);
    market.validate(&buses).unwrap();
    let (_, w_star, _, _) = uncongested_optimum(&market);
    let mut pd = PrimalDual::new(&market, Vec::new(), Vec::new(), PdParams::for_market(&market));
    let iters = pd.run(&market).expect("converges");
    let settled = pd.settled();
    for (m, b) in market.buyers.iter().enumerate() {
        assert!(settled[m].iter().sum::<f64>() <= b.e_max + 1e-12);
    }
    for (n, s) in market.sellers.iter().enumerate() {
        assert!(settled.iter().map(|r| r[n]).sum::<f64>() <= s.e_max + 1e-12);
    }
    (market.welfare(&settled), w_star, iters)
}

#[test]
fn primal_dual_reaches_the_optimum_within_0_1_percent() {
    for (seed, k) in [(1, 12), (2, 25)] {
        let (w, w_star, iters) = clear(seed, k);
        eprintln!("{k}x{k}: welfare {w:.4} vs optimum {w_star:.4}, {iters} iterations");
        assert!(w_star > 0.0 && w <= w_star + 1e-9);
        assert!(((w - w_star) / w_star).abs() < 1e-3, "{k}x{k}: {w} vs {w_star} after {iters}");
    }
}

#[test]
fn trade_sensitivities_are_ptdf_differences() {
    use gridledger_market::primal_dual::trade_sensitivities;
    use gridledger_market::{Case, DcModel, CASE30};
    let case = Case::parse(CASE30).unwrap();
    let dc = DcModel::new(&case).unwrap();
    let market = Market::generate(5, 3, 4, &dc.bus_ids);
    let (d, limits) = trade_sensitivities(&dc, &market, 1.0).unwrap();
    assert_eq!((d.len(), d[0].len(), d[0][0].len()), (dc.lines.len(), 3, 4));
    // line 1-2 is rated 130 MVA = 130 000 kW
    assert!((limits[0] - 130_000.0).abs() < 1e-6);
    // a trade between two prosumers on the same bus moves nothing
    let mut same = market.clone();
    same.sellers[0].bus = same.buyers[0].bus;
    let (d2, _) = trade_sensitivities(&dc, &same, 1.0).unwrap();
    assert!(d2.iter().all(|dl| dl[0][0].abs() < 1e-12));
    // bad markets are refused before any numbers are produced
    let mut bad = market;
    bad.buyers[0].a = f64::NAN;
    assert!(trade_sensitivities(&dc, &bad, 1.0).is_err());
}
