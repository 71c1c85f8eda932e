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
