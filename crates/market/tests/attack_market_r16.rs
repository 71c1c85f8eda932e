//! Attack round 16 on the market crate (issue 15), after the per-trade
//! overload damping (`primal_dual::TRADE_DAMPING_THETA`) and the shared
//! negligible-row threshold (`primal_dual::negligible_row`).

mod common;

use common::{flat_feeder, one_rated_line, p};
use gridledger_market::case::Case;
use gridledger_market::clearing::{clear_with, network_for, Algorithm};
use gridledger_market::problem::{Market, Side};

fn outcome(m: &Market, cap: usize) -> String {
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let central = clear_with(m, &net, Algorithm::Central, None).expect("the reference clears");
    match clear_with(m, &net, Algorithm::PrimalDual, Some(cap)) {
        Ok(c) if c.converged && c.relative_gap.abs() <= 1e-3 => String::new(),
        Ok(c) => format!(
            "converged {} gap {} it {} binding {:?}",
            c.converged, c.relative_gap, c.iterations, central.binding
        ),
        Err(e) => format!("{e} (reference binding {:?})", central.binding),
    }
}

/// `k` near-linear buyers at bus 4 and `k` near-linear sellers at bus 3
/// (every trade sees 0.017 on line 2-5), plus round 14's small parties.
fn crowd(k: usize) -> Market {
    crowd_at(k, 4, 3, 2000.0)
}

/// `k` near-linear buyers at bus `bb` (bids 10.0 down by 0.05 $/kWh) and
/// `k` near-linear sellers at bus `sb` (asks 9.0 up by 0.05 $/kWh), `e`
/// kWh each, plus round 14's small parties at buses 29 and 5.
fn crowd_at(k: usize, bb: u32, sb: u32, e: f64) -> Market {
    use Side::{Buyer, Seller};
    let mut buyers = vec![p(Buyer, 29, 0.02, 0.3, 0.0, 3.0)];
    let mut sellers = vec![p(Seller, 5, 0.015, 0.1, 0.0, 3.0)];
    for i in 0..k {
        buyers.push(p(Buyer, bb, 1e-5, 10.0 - 0.05 * i as f64, 0.0, e));
        sellers.push(p(Seller, sb, 1e-5, 9.0 + 0.05 * i as f64, 0.0, e));
    }
    Market { buyers, sellers }
}

// Finding [1] (medium). Expected: a market the reference clears (here
// with `line 2-5 forward` binding) clears under primal-dual within 0.1 %
// inside its default cap of 200 000 iterations. Observed: six near-linear
// buyers at bus 4 (`a = 10⁻⁵`, bids 10.0 down to 9.75 $/kWh, 2 MWh each)
// and six near-linear sellers at bus 3 (asks 9.0 up to 9.25 $/kWh), plus
// round 14's two small parties at buses 29 and 5 (14 requests, each
// within `MAX_REQUEST_PRICE` and `MAX_REQUEST_KWH`): `NoConvergence` at
// 200 000 (2, 4 and 5 such pairs clear).
// Every one of the 36 near-linear trades gets its own damping weight
// `w_mn` toward `T θ` on the shared row, and their damping adds up on it
// (the joint bound the fix left unproven). A first run with bids
// 10.0 + 0.1 i and asks 9.0 + 0.1 i (above `MAX_REQUEST_PRICE` from i = 1)
// showed the count growing with the crowd: one pair 3 611 iterations
// (round 14 [4]), 2: 5 616, 3: 8 984, 4: 13 012, 5: 26 588, 6, 8 and 12
// pairs: the cap; one buyer with 12 such sellers 5 289, 12 such buyers
// with one seller 167 957 (near the cap); three pairs 3 -> 4 with three
// counter-pairs 4 -> 3 (500 kWh each) the cap. Four pairs with `a =
// 10⁻⁶`, bids 10 and asks 9 (10 requests, admissible) reach the cap too. A typed error, not a wrong dispatch: the framework falls
// back to the central reference.
#[test]
fn a_crowd_of_near_linear_pairs_on_one_row_clears_within_the_cap() {
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let m = crowd(6);
    common::clears_within_the_cap(&m, &net, "line 2-5 forward");
}

// Held up: two and four such pairs clear within 40 000 iterations.
#[test]
fn a_few_near_linear_pairs_on_one_row_clear() {
    assert_eq!(outcome(&crowd(2), 40_000), "");
    assert_eq!(outcome(&crowd(4), 40_000), "");
}

/// The bus pair (seller bus, buyer bus) of case30 whose coefficients on
/// line 2-5's row differ by the smallest positive amount above `floor`.
fn closest_pair(floor: f64) -> (u32, u32, f64) {
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let row = &net.g[0];
    let mut best = (0, 0, f64::INFINITY);
    for i in 0..row.len() {
        for j in 0..row.len() {
            let d = (row[i] - row[j]).abs();
            if i != j && d > floor && d < best.2 {
                best = (net.bus_ids[i], net.bus_ids[j], d);
            }
        }
    }
    best
}

// Held up: a near-linear pair across the bus pairs of case30 whose
// coefficients on line 2-5 differ least (2.8·10⁻¹⁷: the `W` clamp;
// 8.4·10⁻⁵, 1.0·10⁻⁴, 1.1·10⁻³, 5.2·10⁻³) clears or meets the reference.
#[test]
fn near_linear_pairs_at_the_weight_clamp_clear() {
    use Side::{Buyer, Seller};
    for floor in [0.0, 1e-6, 1e-4, 1e-3, 5e-3] {
        let (s, b, d) = closest_pair(floor);
        let m = Market {
            buyers: vec![p(Buyer, b, 1e-5, 10.0, 0.0, 2000.0), p(Buyer, 29, 0.02, 0.3, 0.0, 3.0)],
            sellers: vec![p(Seller, s, 1e-5, 9.0, 0.0, 2000.0), p(Seller, 5, 0.015, 0.1, 0.0, 3.0)],
        };
        assert_eq!(outcome(&m, 40_000), "", "floor {floor:e}: {s}->{b} d {d:e}");
    }
}

// Held up: steep parties (`a` = 1, the capped step set and the congested
// switch) next to a near-linear pair on the rated line.
#[test]
fn a_near_linear_pair_with_steep_parties_clears() {
    use Side::{Buyer, Seller};
    let mut m = crowd(1);
    m.buyers.push(p(Buyer, 7, 1.0, 50.0, 0.0, 30.0));
    m.sellers.push(p(Seller, 2, 1.0, 0.1, 0.0, 30.0));
    assert_eq!(outcome(&m, 40_000), "");
}

// Held up: TEAR-DO (7 enclaves, κ = 3, two Byzantine hosts) on a market
// with steps per trade follows the fused step bit for bit while the
// operator sends the overload damping `δ` in its output, and flags the
// hosts that feed stale inputs, tamper with their output or sign badly
// (`δ` is inside the hashed, signed operator output).
#[test]
fn teardo_follows_the_fused_step_with_per_trade_damping_and_byzantine_hosts() {
    use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};
    use std::collections::BTreeMap;
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let m = crowd(2);
    for fault in [Fault::WrongInputs, Fault::TamperOutput, Fault::BadSignature] {
        let byz = BTreeMap::from([(2, fault), (4, fault)]);
        let cfg = TearDoConfig { enclaves: 7, kappa: 3, byzantine: byz, strategy: Strategy::Always, seed: 9 };
        let mut tear = TearDo::new_insecure_seeded(&m, &net, cfg, [7; 32]).unwrap();
        let mut fused = tear.pd.clone();
        let mut prev = [0u8; 32];
        let mut damped = false;
        for it in 0..200 {
            let c = tear.step(&m, &mut prev);
            let r = fused.step(&m);
            assert_eq!(common::bits(&tear.pd), common::bits(&fused), "{fault:?}: states at {it}");
            damped |= tear.pd.bus_prices()[net.bus_ids.len()..].iter().any(|v| *v != 0.0);
            assert_eq!(c, r.converged, "{fault:?}: at {it}");
        }
        assert!(fused.mu.iter().any(|v| *v > 0.0), "no row priced");
        assert!(damped, "no overload damping sent");
        let report = tear.report(false);
        assert!(report.detected.iter().any(|(n, _, _)| *n == 2), "{fault:?}: {:?}", report.detected);
    }
}

fn big_pair(e: f64) -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![p(Buyer, 2, 1e-9, 10.0, 0.0, e), p(Buyer, 6, 0.02, 0.3, 0.0, 3.0)],
        sellers: vec![p(Seller, 18, 1e-9, 1.0, 0.0, e), p(Seller, 5, 0.015, 0.1, 0.0, 3.0)],
    }
}

// Finding [2] (low: a typed error every time). Expected: the reference
// and primal-dual clear the same problem for every row above
// `ROW_SCALE_NEGLIGIBLE` (1e-14 per kW), so a market the reference clears
// clears under primal-dual within 0.1 % (round 15 [1]'s fix: "no
// disagreement is left between them"). Observed: case33bw with its
// impedances scaled by 10⁻⁶ or 10⁻⁹ (V-max rows of trade scale
// 1.4·10⁻¹⁰ and 1.4·10⁻¹³ per kW, no headroom: four and one decades above
// the threshold, so kept by both), a near-linear pair (seller at bus 18
// asking 1 $/kWh, buyer at bus 2 bidding 10 $/kWh, `a = 10⁻⁹`, 1 MWh)
// and two small parties: Clarabel trades through the V-max rows within
// its tolerance (violation 1.8·10⁻¹¹ and 1.8·10⁻¹⁴, welfare 11.6 $)
// while primal-dual enforces them (welfare 0.44 $, as on the unscaled
// feeder): `OffOptimum`, gap 0.96, in 480-935 iterations, for `e_max`
// 10³..10⁶. At 10⁻³ (1.4·10⁻⁷ per kW) both agree on 0.4425 $. The band
// where the two disagree reaches at least 10⁻¹⁰ per kW: the threshold
// sits four decades below where the reference stops enforcing a row that
// a near-linear pair's spread makes worth trading through.
#[test]
#[ignore = "attack r16: V-max rows at 1e-10..1e-13 per kW (above the negligible threshold) still split reference and primal-dual (OffOptimum)"]
fn rows_above_the_negligible_scale_clear_alike() {
    let seen = common::flat_feeder_misses(&big_pair(1e3), &[1e-6, 1e-9]);
    assert!(seen.is_empty(), "observed: {seen:?}");
}

// What holds while finding [2] stays open (a known limit, documented in
// the market chapter of the operations guide): where the reference trades
// through rows just above the negligible scale within its own tolerance,
// `clear` refuses the primal-dual run with the typed `OffOptimum` (the
// reference having cleared), never reports either clearing as the
// primal-dual one.
#[test]
fn rows_above_the_negligible_scale_end_in_a_typed_off_optimum() {
    use gridledger_market::clearing::ClearingError;
    let m = big_pair(1e3);
    for f in [1e-6, 1e-9] {
        let mut net = network_for(&flat_feeder(f), 1.0).unwrap();
        // the rows' numerics only: impedances far below a real feeder's,
        // whose AC flow cannot be certified, so the feeder's AC check
        // (`feeder_ac`, which refuses such a feeder) is taken off
        net.feeder = None;
        clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
        match clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)) {
            Err(ClearingError::OffOptimum { algorithm: Algorithm::PrimalDual, gap, .. }) => {
                assert!(gap.abs() > 1e-3, "f {f:e}: gap {gap}")
            }
            Err(e) => panic!("f {f:e}: another error: {e}"),
            Ok(c) => panic!("f {f:e}: cleared: {} {} (un-ignore finding [2] if right)", c.converged, c.relative_gap),
        }
    }
}

// Held up: across the threshold. Impedances × 10⁻¹⁰ (rows 1.4·10⁻¹⁴ per
// kW, kept) and × 10⁻³: both sides enforce the rows and agree; × 5·10⁻¹¹
// (6.8·10⁻¹⁵, dropped by both): both clear the 1 MWh pair and agree, the
// dropped rows moved by under 10⁻⁸ of their unit (bounded by the
// threshold times the kWh traded; at 10⁸ kWh the reference is still
// within 10⁻⁶, and at 10⁹ Clarabel itself refuses, `DualInfeasible`).
#[test]
fn rows_either_side_of_the_negligible_scale_clear_alike() {
    for (f, dropped) in [(1e-3, false), (1e-10, false), (5e-11, true)] {
        let m = big_pair(1e6);
        let mut net = network_for(&flat_feeder(f), 1.0).unwrap();
        // the rows' numerics only: impedances far below a real feeder's,
        // whose AC flow cannot be certified, so the feeder's AC check
        // (`feeder_ac`, which refuses such a feeder) is taken off
        net.feeder = None;
        let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)).expect("primal-dual clears");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "f {f:e}: {} {}", c.converged, c.relative_gap);
        assert!(c.violation_kw < 1e-8, "f {f:e}: rows moved by {}", c.violation_kw);
        assert_eq!(c.energy_kwh > 1e3, dropped, "f {f:e}: {} kWh", c.energy_kwh);
    }
}

// Finding [1] on the shipped 33-bus feeder (case33bw as shipped, no
// change to the case file): six near-linear buyers at bus 18 (`a =
// 10⁻⁵`, bids 10.0 down to 9.75 $/kWh, 10 MWh each) and six near-linear sellers
// at bus 17 (asks 9.0 up to 9.25 $/kWh), plus two small parties (14 requests,
// round 14 [5]'s shape six times over): the reference clears with `bus 18
// V min` binding, primal-dual reaches the 200 000 cap, `NoConvergence`.
// With bids 10.0 + 0.1 i and asks 9.0 + 0.1 i two pairs cleared in
// 4 020 iterations, four in 5 007, six reached the cap as well.
#[test]
fn a_crowd_of_near_linear_pairs_on_the_feeder_clears_within_the_cap() {
    let net = common::feeder();
    let m = crowd_at(6, 18, 17, 10000.0);
    common::clears_within_the_cap(&m, &net, "bus 18 V min");
}

// Held up: rows of negligible scale with negative headroom (case33bw's
// loads with `Vmin` 1.0 p.u. and impedances × 10⁻¹²: V-min rows of about
// 10⁻¹⁶ per kW below their limit at zero injection, which
// `negligible_row` does not drop) are refused when the network is built,
// a typed error, before either side weights them.
#[test]
fn negligible_rows_with_negative_headroom_are_refused_up_front() {
    for f in [1e-6, 1e-12] {
        let mut c = Case::parse(gridledger_market::CASE33BW).unwrap();
        for b in &mut c.branches {
            b.r *= f;
            b.x *= f;
        }
        for b in &mut c.buses {
            b.vmin = 1.0;
            b.vmax = 1.1;
        }
        let e = network_for(&c, 1.0).expect_err("loads below Vmin at zero injection");
        assert!(e.to_string().contains("already violate the voltage limits"), "f {f:e}: {e}");
    }
}

// Held up: a trade at the weight clamp (buses 27 -> 29 differ by
// 2.8·10⁻¹⁷ on line 2-5) sharing the market with a near-linear pair on
// the overloaded row.
#[test]
fn a_trade_at_the_clamp_next_to_a_near_linear_pair_clears() {
    use Side::{Buyer, Seller};
    let mut m = crowd(1);
    m.buyers.push(p(Buyer, 29, 1e-5, 10.0, 0.0, 2000.0));
    m.sellers.push(p(Seller, 27, 1e-5, 9.0, 0.0, 2000.0));
    assert_eq!(outcome(&m, 200_000), "");
}

// Held up: under the optimal attack (every subproblem held by Byzantine
// hosts only is attacked once: 3 of 5 enclaves, κ = 3) the recompute
// countermeasure keeps TEAR-DO on the fused step bit for bit, the
// operator's damping vector included.
#[test]
fn teardo_recomputes_the_operator_damping_under_the_optimal_attack() {
    use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};
    use std::collections::BTreeMap;
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let m = crowd(2);
    // the hosts Assign gives the operator's subproblem
    let probe =
        TearDoConfig { enclaves: 5, kappa: 3, byzantine: BTreeMap::new(), strategy: Strategy::Optimal, seed: 3 };
    let op_hosts =
        TearDo::new_insecure_seeded(&m, &net, probe, [1; 32]).unwrap().assigned(m.buyers.len() + m.sellers.len());
    for fault in [Fault::TamperOutput, Fault::Silent, Fault::WrongInputs] {
        let byz: BTreeMap<usize, Fault> = op_hosts.iter().map(|n| (*n, fault)).collect();
        let cfg = TearDoConfig { enclaves: 5, kappa: 3, byzantine: byz, strategy: Strategy::Optimal, seed: 3 };
        let mut tear = TearDo::new_insecure_seeded(&m, &net, cfg, [1; 32]).unwrap();
        let mut fused = tear.pd.clone();
        let mut prev = [0u8; 32];
        for it in 0..150 {
            let c = tear.step(&m, &mut prev);
            let r = fused.step(&m);
            assert_eq!(common::bits(&tear.pd), common::bits(&fused), "{fault:?}: states at {it}");
            assert_eq!(c, r.converged, "{fault:?}: at {it}");
        }
        assert_eq!(tear.assigned(m.buyers.len() + m.sellers.len()), op_hosts, "same assignment");
        let report = tear.report(false);
        assert!(!report.detected.is_empty(), "{fault:?}: the attack on the operator is not detected");
    }
}

// Finding [3] (low: typed errors; ALADIN is untouched by the recent
// change, whole-issue sweep). Expected: ALADIN clears a DistFlow market
// the reference and primal-dual agree on within 0.1 %. Observed: case33bw
// with its impedances scaled by 10⁻³ and no V-max headroom (V-max rows of
// 1.4·10⁻⁷ per kW, five decades above `ROW_SCALE_NEGLIGIBLE`) and four
// requests (a near-linear pair 18 -> 2, `a = 10⁻⁹`, 1 MWh, and two small
// parties): the reference and primal-dual both clear at 0.4425 $, ALADIN
// stops after 7 iterations 0.54 % *above* the optimum (`OffOptimum`, gap
// −0.0054: its dispatch trades through the V-max rows). At 10⁻¹ and 10⁻²
// it clears (3 iterations); at 10⁻⁴ and 10⁻⁵ `NoConvergence` at its cap
// of 200; at 10⁻⁶ `NoConvergence` after 0 iterations (its first step
// fails and the reason is dropped).
// The last part of finding [3]: ALADIN's first step fails on the feeder
// with impedances × 10⁻⁶, and `clear_with` now reports why (a typed
// `AladinFailed` carrying the step's error) instead of a bare
// `NoConvergence` after 0 iterations.
#[test]
fn aladin_reports_why_its_step_failed() {
    use gridledger_market::clearing::ClearingError;
    let m = big_pair(1e3);
    let net = network_for(&flat_feeder(1e-6), 1.0).unwrap();
    match clear_with(&m, &net, Algorithm::Aladin, None) {
        Err(ClearingError::AladinFailed { iterations, source }) => {
            assert_eq!(iterations, 0, "{source}");
            assert!(!source.to_string().is_empty());
        }
        Err(e) => panic!("another error: {e}"),
        Ok(c) => panic!("cleared: {} {}", c.converged, c.relative_gap),
    }
}

// What holds while finding [3] stays open (a known limit, documented in
// the market chapter of the operations guide): ALADIN's run on the stiff
// feeder with no headroom is refused with the typed `OffOptimum`, never
// reported as a clearing.
#[test]
fn aladin_on_a_stiff_feeder_with_no_headroom_ends_in_a_typed_off_optimum() {
    use gridledger_market::clearing::ClearingError;
    let m = big_pair(1e3);
    let net = network_for(&flat_feeder(1e-3), 1.0).unwrap();
    clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
    match clear_with(&m, &net, Algorithm::Aladin, None) {
        Err(ClearingError::OffOptimum { algorithm: Algorithm::Aladin, gap, .. }) => assert!(gap.abs() > 1e-3, "{gap}"),
        Err(e) => panic!("another error: {e}"),
        Ok(c) => panic!("cleared: {} {} (un-ignore finding [3] if right)", c.converged, c.relative_gap),
    }
}

#[test]
#[ignore = "attack r16: ALADIN refuses (OffOptimum) a feeder market with impedances x 1e-3 that primal-dual and the reference agree on"]
fn aladin_clears_a_stiff_feeder_with_no_headroom() {
    let m = big_pair(1e3);
    let net = network_for(&flat_feeder(1e-3), 1.0).unwrap();
    let pd = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)).expect("primal-dual clears");
    assert!(pd.converged && pd.relative_gap.abs() <= 1e-3, "{} {}", pd.converged, pd.relative_gap);
    match clear_with(&m, &net, Algorithm::Aladin, None) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{} {}", c.converged, c.relative_gap),
        Err(e) => panic!("observed: {e}"),
    }
}
