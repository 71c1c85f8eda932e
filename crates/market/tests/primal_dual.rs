//! The distributed primal-dual clearing against the exact uncongested optimum.

use gridledger_market::central::solve;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{
    negligible_row, project_capped, trade_scale, uncongested_optimum, PdParams, PrimalDual, ROW_SCALE_REF,
};
use gridledger_market::problem::Market;
use gridledger_market::{Case, DcModel, CASE30};

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

fn case30() -> DcModel {
    DcModel::new(&Case::parse(CASE30).unwrap()).unwrap()
}

/// Clears a seeded case30 market with the primal-dual method and with
/// Clarabel; returns (distributed welfare, central welfare, iterations,
/// binding rows at the optimum).
fn compare(seed: u64, k: usize, limit_scale: f64) -> (f64, f64, usize, usize) {
    let dc = case30();
    let market = Market::generate(seed, k, k, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, limit_scale).unwrap();
    let central = solve(&market, &net).unwrap();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    let iters = pd.run(&market).expect("converges");
    let settled = pd.settled();
    for (m, b) in market.buyers.iter().enumerate() {
        assert!(settled[m].iter().sum::<f64>() <= b.e_max + 1e-12);
    }
    for (n, s) in market.sellers.iter().enumerate() {
        assert!(settled.iter().map(|r| r[n]).sum::<f64>() <= s.e_max + 1e-12);
    }
    // the settled trades respect the network within the stopping tolerance
    let (bm, bn) = net.placement(&market).unwrap();
    let (t, s) = PrimalDual::totals(&settled);
    assert!(net.violation(&net.injections(&bm, &bn, &t, &s)) <= 1e-3, "line limits kept");
    (market.welfare(&settled), central.welfare, iters, central.binding.len())
}

#[test]
fn primal_dual_reaches_the_uncongested_optimum_within_0_1_percent() {
    for (seed, k) in [(1, 12), (2, 25)] {
        let (w, w_star, iters, binding) = compare(seed, k, 1.0);
        let (_, exact, _, _) = uncongested_optimum(&Market::generate(seed, k, k, &case30().bus_ids));
        eprintln!("{k}x{k}: welfare {w:.4} vs central {w_star:.4} (exact {exact:.4}), {iters} iterations");
        assert_eq!(binding, 0);
        assert!(((w - w_star) / w_star).abs() < 1e-3, "{k}x{k}: {w} vs {w_star} after {iters}");
        assert!(((w - exact) / exact).abs() < 1e-3);
    }
}

/// Failed before the augmented line price: with binding lines the plain dual
/// ascent cycled and never met the stopping rule.
#[test]
fn primal_dual_reaches_the_congested_central_optimum_within_0_1_percent() {
    for (seed, k) in [(1, 12), (3, 12), (5, 12), (2, 25)] {
        let (w, w_star, iters, binding) = compare(seed, k, 1e-4);
        eprintln!(
            "{k}x{k} seed {seed}: welfare {w:.5} vs central {w_star:.5}, {iters} iterations, {binding} rows bind"
        );
        assert!(binding > 0, "the market is congested");
        assert!(((w - w_star) / w_star).abs() < 1e-3, "{k}x{k} seed {seed}: {w} vs {w_star} after {iters}");
    }
}

#[test]
fn trade_sensitivities_are_ptdf_differences() {
    use gridledger_market::primal_dual::trade_sensitivities;
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

#[test]
fn projection_agrees_with_the_sorting_reference() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for _ in 0..500 {
        let n = rng.random_range(1..40);
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..3.0)).collect();
        let (lo, hi) = (rng.random_range(0.0..2.0), rng.random_range(2.0..6.0));
        let mut fast = v.clone();
        project_capped(&mut fast, lo, hi);
        // reference: bisection on τ for the active bound
        let sum_at = |tau: f64| v.iter().map(|x| (x - tau).max(0.0)).sum::<f64>();
        let clamped = sum_at(0.0);
        let want: Vec<f64> = if clamped >= lo && clamped <= hi {
            v.iter().map(|x| x.max(0.0)).collect()
        } else {
            let target = if clamped > hi { hi } else { lo };
            let (mut a, mut b) = (-10.0, 10.0);
            for _ in 0..200 {
                let mid = 0.5 * (a + b);
                if sum_at(mid) > target {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            v.iter().map(|x| (x - 0.5 * (a + b)).max(0.0)).collect()
        };
        for (f, w) in fast.iter().zip(&want) {
            assert!((f - w).abs() < 1e-9, "{v:?} [{lo}, {hi}]: {fast:?} vs {want:?}");
        }
    }
}

#[test]
fn a_bad_market_is_refused_before_iterating() {
    let dc = case30();
    let mut market = Market::generate(1, 3, 3, &dc.bus_ids);
    market.sellers[2].b = f64::INFINITY;
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    assert!(PrimalDual::new(&market, &net, PdParams::for_market(&Market::generate(1, 3, 3, &dc.bus_ids))).is_err());
}

/// The per-row line weights keep each row's curvature `c_r ‖D_r‖²` within
/// `θ / α`, and leave rows that were already gentle at `c`; on congested
/// case30 2×2 seed 20 (every prosumer next to lines 25-26 and 25-27) the
/// full weight exceeded it — the market cycled before the weights.
#[test]
fn row_weights_bound_each_rows_curvature() {
    let dc = case30();
    let net = MarketNetwork::ptdf(&dc, 1e-4).unwrap();
    let market = Market::generate(20, 2, 2, &dc.bus_ids);
    let prm = PdParams::for_market(&market);
    let (bm, bn) = net.placement(&market).unwrap();
    let (c_row, gamma_row) = prm.row_weights(&net, &bm, &bn);
    let mut reduced = 0;
    for (r, row) in net.g.iter().enumerate() {
        // ‖D_r‖² by its definition, trade by trade
        let d2: f64 = bm.iter().flat_map(|&i| bn.iter().map(move |&j| (row[j] - row[i]).powi(2))).sum();
        // a row no trade moves by more than rounding noise is no
        // constraint (`ROW_SCALE_NEGLIGIBLE`): never priced
        if negligible_row(row, net.h[r], &bm, &bn) {
            assert_eq!((c_row[r], gamma_row[r]), (0.0, 0.0), "row {r}");
            continue;
        }
        // rows the trades see at a PTDF share's scale keep `c` at most;
        // smaller ones are raised by their scale's factor (`ROW_SCALE_REF`)
        let top =
            if trade_scale(row, &bm, &bn) >= ROW_SCALE_REF { prm.c } else { prm.c * prm.row_factor(row, &bm, &bn) };
        assert!(c_row[r] <= top * (1.0 + 1e-12) && c_row[r] > 0.0, "row {r}");
        assert!(prm.alpha * c_row[r] * d2 <= prm.line_theta * (1.0 + 1e-9), "row {r}");
        assert!((gamma_row[r] - c_row[r] / 4.0).abs() <= 1e-15);
        if c_row[r] < top {
            reduced += 1;
            assert!(prm.alpha * top * d2 > prm.line_theta, "row {r} reduced needlessly");
        }
    }
    assert!(reduced > 0, "some row of this market needed a smaller weight");
}
