//! ALADIN on the 33-bus feeder against the Clarabel reference.

use gridledger_market::aladin::{local_step, Aladin, AladinParams};
use gridledger_market::central::solve;
use gridledger_market::clearing::network_for;
use gridledger_market::problem::{Market, Prosumer, Side};
use gridledger_market::{Case, CASE33BW};

#[test]
fn the_local_step_satisfies_its_optimality_conditions() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for _ in 0..300 {
        let n = rng.random_range(1..12);
        let side = if rng.random_bool(0.5) { Side::Buyer } else { Side::Seller };
        let e_min = if rng.random_bool(0.3) { rng.random_range(0.0..1.0) } else { 0.0 };
        let p = Prosumer {
            side,
            bus: 1,
            a: rng.random_range(0.01..0.03),
            b: rng.random_range(0.05..0.35),
            e_min,
            e_max: rng.random_range(1.0..5.0),
        };
        let w: Vec<f64> = (0..n).map(|_| rng.random_range(-0.4..0.4)).collect();
        let z: Vec<f64> = (0..n).map(|_| rng.random_range(0.0..2.0)).collect();
        let rho = 0.05;
        let r = local_step(&p, &w, &z, rho);
        let s: f64 = r.u.iter().sum();
        assert!(r.u.iter().all(|v| *v >= 0.0));
        assert!(s >= p.e_min - 1e-9 && s <= p.e_max + 1e-9, "{s} outside [{}, {}]", p.e_min, p.e_max);
        // objective no larger than at random feasible perturbations
        let lin = if side == Side::Buyer { -p.b } else { p.b };
        let obj = |e: &[f64]| {
            let t: f64 = e.iter().sum();
            lin * t
                + 0.5 * p.a * t * t
                + e.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>()
                + 0.5 * rho * e.iter().zip(&z).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
        };
        let best = obj(&r.u);
        for _ in 0..50 {
            let mut e: Vec<f64> = r.u.iter().map(|v| (v + rng.random_range(-0.05..0.05)).max(0.0)).collect();
            let t: f64 = e.iter().sum();
            if t < p.e_min || t > p.e_max {
                let f = t.clamp(p.e_min, p.e_max) / t.max(1e-12);
                e.iter_mut().for_each(|v| *v *= f);
            }
            assert!(obj(&e) >= best - 1e-9, "a feasible point beats the local step");
        }
        assert!((r.grad - (lin + p.a * s)).abs() < 1e-12);
    }
}

fn run(market: &Market) -> (f64, f64, usize, usize) {
    let case = Case::parse(CASE33BW).unwrap();
    let net = network_for(&case, 1.0).unwrap();
    let central = solve(market, &net).unwrap();
    let mut al = Aladin::new(market, &net, AladinParams::default()).unwrap();
    let iters = al.run(market, &net).expect("ALADIN converges");
    (market.welfare(&al.settled()), central.welfare, iters, central.binding.len())
}

#[test]
fn aladin_clears_the_33_bus_feeder_within_0_1_percent_in_few_iterations() {
    let case = Case::parse(CASE33BW).unwrap();
    let buses: Vec<u32> = case.buses.iter().map(|b| b.id).collect();
    for (seed, k) in [(1, 12), (2, 25)] {
        let market = Market::generate(seed, k, k, &buses);
        let (w, w_star, iters, _) = run(&market);
        eprintln!("{k}x{k}: {w:.5} vs {w_star:.5} in {iters} iterations");
        assert!(iters < 80);
        assert!(((w - w_star) / w_star).abs() < 1e-3, "{w} vs {w_star}");
    }
}

#[test]
fn aladin_respects_a_binding_voltage_limit() {
    let case = Case::parse(CASE33BW).unwrap();
    let buses: Vec<u32> = case.buses.iter().map(|b| b.id).collect();
    let mut market = Market::generate(1, 12, 12, &buses);
    for p in market.buyers.iter_mut().chain(market.sellers.iter_mut()) {
        p.e_max *= 100.0;
        p.a /= 100.0;
    }
    let (w, w_star, iters, binding) = run(&market);
    eprintln!("congested 12x12: {w:.5} vs {w_star:.5} in {iters} iterations");
    assert!(binding > 0, "a voltage limit binds");
    assert!(((w - w_star) / w_star).abs() < 1e-3, "{w} vs {w_star}");
}
