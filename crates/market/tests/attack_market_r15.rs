//! Attack round 15 on the market crate (issue 15), after the row weights
//! by the trades' coefficient scale (`ROW_SCALE_REF`, `ROW_SCALE_SPREAD`,
//! `ROW_SCALE_NEGLIGIBLE`).
//!
//! Finding [1] failed on the code as it stood; it is fixed (one threshold
//! for both sides, `ROW_SCALE_NEGLIGIBLE` = 1e-14 per kW,
//! `primal_dual::negligible_row`) and runs. The other tests are attacks
//! that held up.

mod common;

use common::{case30_net, flat_feeder, p, weak_tie};
use gridledger_market::clearing::{clear_with, network_for, Algorithm};
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::{Market, Side};

fn feeder_pair() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![
            p(Buyer, 17, 0.029, 0.35, 0.0, 3.5),
            p(Buyer, 6, 0.022, 0.28, 0.0, 3.3),
            p(Buyer, 9, 1e-3, 10.0, 0.0, 500.0),
        ],
        sellers: vec![p(Seller, 17, 0.0137, 0.105, 0.0, 3.4), p(Seller, 18, 1e-3, 1.0, 0.0, 500.0)],
    }
}

// Finding [1] (low). Expected: a case file `Case::parse` and `network_for`
// accept either clears under primal-dual within 0.1 % of the reference or
// is refused up front (round 14's finding [2], whose fix drew the line at
// `ROW_SCALE_NEGLIGIBLE` = 1e-30 per kW). Observed: case33bw with its
// impedances scaled by 1e-16 .. 1e-26 (V-max rows of roughly 1e-20 ..
// 1e-30 per kW, h = 0: above the negligible scale, below any physical
// one) gives the same disagreement as before the fix: Clarabel treats the
// rows as slack within its tolerance (welfare 4 254.66 $) while
// primal-dual, weighting them `c / s_r²`, enforces them exactly (welfare
// 0.586 $) and `clear` refuses it, `OffOptimum` 99.99 % off, in 59-74
// iterations. At 1e-12 and above both enforce the rows and agree. A typed
// error every time (never a wrong dispatch reported converged): the
// negligible-scale line sits 14 decades below where the reference stops
// seeing the rows.
// Fixed: `ROW_SCALE_NEGLIGIBLE` is 1e-14 per kW and the central reference
// drops such rows by the same test (`primal_dual::negligible_row`) that
// keeps primal-dual from pricing them.
#[test]
fn a_feeder_with_rows_just_above_the_negligible_scale_clears() {
    let m = feeder_pair();
    let mut seen = Vec::new();
    for f in [1e-16, 1e-20, 1e-24, 1e-26] {
        let mut net = network_for(&flat_feeder(f), 1.0).unwrap();
        // the rows' numerics only: impedances far below a real feeder's,
        // whose AC flow cannot be certified, so the feeder's AC check
        // (`feeder_ac`, which refuses such a feeder) is taken off
        net.feeder = None;
        match clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)) {
            Ok(c) if c.converged && c.relative_gap.abs() <= 1e-3 => {}
            Ok(c) => seen.push(format!("f {f:e}: converged {} gap {}", c.converged, c.relative_gap)),
            Err(e) => seen.push(format!("f {f:e}: {e}")),
        }
    }
    assert!(seen.is_empty(), "observed: {seen:?}");
}

// Held up: at 1e-8 and 1e-12 (rows of about 1e-12 .. 1e-18 per kW) the
// reference and primal-dual both enforce the V-max rows and agree.
#[test]
fn a_feeder_with_small_rows_clears_alike() {
    let m = feeder_pair();
    for f in [1e-8, 1e-12] {
        let mut net = network_for(&flat_feeder(f), 1.0).unwrap();
        // the rows' numerics only: impedances far below a real feeder's,
        // whose AC flow cannot be certified, so the feeder's AC check
        // (`feeder_ac`, which refuses such a feeder) is taken off
        net.feeder = None;
        let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)).expect("primal-dual clears");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "f {f:e}: {}", c.relative_gap);
    }
}

// Held up: a PTDF line's limit never has negative headroom (the rows
// bound the market's injections only), and a feeder whose own loads
// violate a voltage limit is refused up front, at any impedance scale
// (V-max 0.999 p.u., no loads: h < 0 on rows of 1e-4 .. 1e-200 per kW,
// the "negligible scale and h < 0" corner of `ROW_SCALE_NEGLIGIBLE`).
#[test]
fn negative_headroom_on_a_negligible_row_is_refused_up_front() {
    for f in [1.0, 1e-20, 1e-40, 1e-100, 1e-200] {
        let mut case = flat_feeder(f);
        for b in &mut case.buses {
            b.vmax = 0.999;
        }
        assert!(network_for(&case, 1.0).is_err(), "f {f:e}: accepted");
    }
    let mut case = weak_tie(2, 30, 1e40);
    case.branches.last_mut().unwrap().rate_a = 1e-50;
    let net = network_for(&case, 1.0).unwrap();
    assert!(net.h.iter().all(|h| *h >= 0.0));
}

// Held up: round 14's weak tie (buses 2-30, and 5-29 with a small party
// on each side at the pair's own buses) swept through both joints of the
// row factor, trade scale 0.41 .. 0.05 (reactance 1 .. 13.75 p.u.; S =
// 0.3 near x = 1.6, S² = 0.09 near x = 7.5): every step clears within
// 0.1 % in under 1 000 iterations (55-364 and 258-731), with no spike at
// either joint.
#[test]
fn a_weak_tie_clears_through_the_joints_of_the_row_factor() {
    use Side::{Buyer, Seller};
    for (a, b, small) in [(2u32, 30u32, false), (5, 29, true)] {
        for x in [1.0, 1.5, 1.75, 2.0, 6.5, 7.25, 7.75, 9.0, 13.75] {
            let net = network_for(&weak_tie(a, b, x), 1.0).unwrap();
            let mut m = Market {
                buyers: vec![p(Buyer, b, 1e-5, 10.0, 0.0, 2000.0)],
                sellers: vec![p(Seller, a, 1e-5, 9.0, 0.0, 2000.0)],
            };
            if small {
                m.buyers.push(p(Buyer, b, 0.02, 0.3, 0.0, 3.0));
                m.sellers.push(p(Seller, a, 0.015, 0.1, 0.0, 3.0));
            }
            let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(1_000)).expect("primal-dual clears");
            assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{a}-{b} x {x}: {}", c.relative_gap);
        }
    }
}

// Held up: seeded markets on congested case30 (ratings scaled 1e-4 and
// 1e-3; 1x1, 2x2, 3x3, 5x5 seeds 40..70 and 2x2, 4x4, 8x8 seeds 0..40 by
// hand) take exactly the same iterations with the new row factor as with
// `row_scale_ref` 0 (every row weighted by `c`, the rule before the change
// on case30, all of whose rows have a largest coefficient >= 0.19): no
// regression. Likewise a near-linear 2 MWh pair between every ordered
// pair of case30's buses (870, ratings scaled 1e-2 alone and 1e-3 with a
// small party on each side; leaf buses beside their parent among them,
// whose rows other than the spur's see rounding-noise differences floored
// by `ROW_SCALE_SPREAD`) converged by hand, never slower than 3x the old
// count. A sample of the seeded markets here.
#[test]
fn seeded_case30_markets_are_unchanged_by_the_row_factor() {
    for scale in [1e-4, 1e-3] {
        let net = case30_net(scale);
        for k in [1, 3, 5] {
            for seed in 40..46u64 {
                let m = Market::generate(seed, k, k, &net.bus_ids);
                let iters = |prm: PdParams| {
                    let mut pd = PrimalDual::new(&m, &net, prm).unwrap();
                    pd.run(&m).map(|_| pd.iterations)
                };
                let new = iters(PdParams { max_iter: 20_000, ..PdParams::for_market(&m) });
                let old = iters(PdParams { max_iter: 20_000, row_scale_ref: 0.0, ..PdParams::for_market(&m) });
                assert!(new.is_some() && new == old, "{scale:e} {k}x{k} seed {seed}: {new:?} vs {old:?}");
            }
        }
    }
}

// Held up: seeded markets on the 33-bus feeder (2x2, 3x3, 5x5, seeds
// 0..20 by hand; 67-176 iterations) clear within 0.1 % through `clear`.
#[test]
fn seeded_feeder_markets_clear() {
    let net = common::feeder();
    for k in [2, 5] {
        for seed in 0..5u64 {
            let m = Market::generate(seed, k, k, &net.bus_ids);
            let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)).expect("primal-dual clears");
            assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{k}x{k} seed {seed}: {}", c.relative_gap);
        }
    }
}

// Held up: congested feeder markets (a seeded 3x3 plus a 2 MWh or 300 kWh
// buyer at the feeder's far end, buses 17, 18, 32, 33, and a cheap seller
// near the root or on the lateral; `bus 18 V min` or `bus 33 V min`
// binding), where trades see differences well below the rows' largest
// coefficients and the new trade scale raises the weights most: seeds
// 0..16 at both sizes clear within 0.1 % in 159-561 iterations by hand.
#[test]
fn congested_feeder_markets_clear() {
    let net = common::feeder();
    let buses: Vec<u32> = (2..=33).collect();
    for (seed, big) in [(0u64, 2000.0), (3, 2000.0), (6, 300.0), (11, 2000.0)] {
        let mut m = Market::generate(seed, 3, 3, &buses);
        let bb = [18u32, 33, 17, 32][(seed % 4) as usize];
        m.buyers.push(p(Side::Buyer, bb, 1e-4 * (1 + seed % 3) as f64, 5.0, 0.0, big));
        m.sellers.push(p(Side::Seller, [1u32, 2, 19, 6][(seed / 4 % 4) as usize], 1e-4, 0.5, 0.0, big));
        let cen = clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
        assert!(cen.binding.iter().any(|b| b.ends_with("V min")), "seed {seed}: {:?}", cen.binding);
        let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(5_000)).expect("primal-dual clears");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "seed {seed} bus {bb}: {}", c.relative_gap);
    }
}
