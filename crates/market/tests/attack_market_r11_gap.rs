//! The gap left by the congested mode's fix (attack round 10, issue 15):
//! a near-linear 10 MWh buyer and seller at ONE bus, in a market where a
//! line truly binds at the optimum.
//!
//! Primal-dual caps every buyer's step at `BUYER_STEP_CAP · α` while a
//! network row is priced (`PrimalDual`'s congested mode). Where a line
//! binds at the optimum its multiplier stays positive, so the mode is
//! never left, and the pair's own trade — which loads no line at all (both
//! ends at one bus: its PTDF difference is 0 on every row) — crawls with
//! the capped step, as the round-7 pair did with the common step. One
//! sender's two requests then push a congested interval to the iteration
//! cap, and in the framework to the central fallback.
//!
//! Fixed (the tests were `#[ignore]`d until then): the congested mode caps
//! only the buyer steps of trades that load some network row, with steps
//! per trade and each party's projection in the metric of its steps; a
//! trade with a party within the reference scale keeps the common penalty
//! and step; and a row that stays priced and overloaded for
//! `OVERLOAD_WAIT` iterations takes the multiplier step `c_r`
//! (`primal_dual`'s module docs, "Scale", and `OVERLOAD_BOOST`). On the
//! markets below the runs now take about 2 100 (line 25-26), 3 100 and
//! 6 800 (line 16-17, pair at bus 10 and 21) iterations.
//!
//! Observed (seed 5's 3 × 3 market plus the pair; the seeded market alone
//! clears in 53–59 iterations at these ratings, the pair alone on the
//! unconstrained grid in 537, 2 759 and 13 762 iterations for
//! a = 10⁻⁴, 10⁻⁵, 10⁻⁶): with the pair at bus 26, ratings × 5·10⁻⁴, line
//! 25-26 binds; a = 10⁻⁵ clears in 60 201 iterations (22× the
//! unconstrained count), and none of a = 10⁻⁴..10⁻⁶ clears in 20 000. The
//! mode is entered on iteration 0 and never left (`StepMode { congested:
//! true, priced: 20000, exits: 0 }`).
//!
//! Two slow modes, not one (measured on that market, a = 10⁻⁵):
//!
//! 1. The pair's own trade crawls with the capped step: the flat buyer's
//!    copy of it is 4 599 kWh at iteration 2 000 and 643 at 18 000 (495 at
//!    the optimum). The cap bounds the line term's curvature, which only
//!    trades with a nonzero PTDF difference on some row feel; a step per
//!    trade (the cap only on those, each buyer's projection in the metric
//!    of its steps, `x = max(0, v − α_mn τ)`, so fixed points stay KKT
//!    points) lets that trade keep the buyer's own step. A scratch
//!    prototype of this (fused step only, not kept) settled it by
//!    iteration 2 000 — but cleared only the ratings × 3·10⁻⁴ markets of
//!    line 25-26 within 20 000 and the a = 10⁻⁶ ones within 60 000; the
//!    others still fail, because of:
//! 2. The line multiplier climbs at a fixed rate. The seeded sellers at
//!    buses 28, 16 and 12 sit at their `e_max`; line 25-26 holds the flat
//!    buyer's copies of their trades 0.129 kWh below the sellers' copies,
//!    so the sellers' prices `λ_mn` of those trades fall by `ρ_mn · 0.129`
//!    per iteration and `μ` of line 25-26 rises by as much (the buyer's
//!    price `λ + π` of each trade stays put, and so do its copies): about
//!    1.44·10⁻⁴ $/kWh per iteration, from 3.4 at iteration 2 000 to 5.8 at
//!    18 000, with or without the prototype, against a nodal price
//!    difference of 9.71 $/kWh at the optimum (≈ 45 000 iterations). The
//!    rate is small because `ρ_mn = ρ √(f_m f_n)` is shrunk by the flat
//!    buyer's scale (`f_m = √(E₀ / 10 MWh)`: `ρ_mn ≈ 1.1·10⁻³` against
//!    `ρ = 0.05`). A fix must speed up this coupling too (e.g. per-trade
//!    penalties and steps, the full `ρ` on trades with a small party).

mod common;

use common::{bits, case30_net, p, task_step};
use gridledger_market::clearing::{clear, clear_with, Algorithm};
use gridledger_market::framework::run_interval_insecure_seeded_capped;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual, OVERLOAD_WAIT};
use gridledger_market::problem::{Market, Side};
use gridledger_market::teardo::{Strategy, TearDoConfig};

/// The seeded 3 × 3 market of `seed` plus a near-linear buyer and seller
/// (curvature `a`, 10 MWh each, bids 10 and 9.99 $/kWh: every number within
/// the admission limits) at the same case bus `bus`.
fn with_pair(net: &MarketNetwork, seed: u64, bus: u32, a: f64) -> Market {
    let mut m = Market::generate(seed, 3, 3, &net.bus_ids);
    m.buyers.push(p(Side::Buyer, bus, a, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, bus, a, 9.99, 0.0, 10_000.0));
    m
}

/// The iteration budget of the a = 10⁻⁴ and 10⁻⁵ pairs: over 7× the 2 759
/// iterations the a = 10⁻⁵ pair needs on the unconstrained grid (37× the
/// 537 of a = 10⁻⁴) and over 300× what the seeded market needs alone.
const BUDGET: usize = 20_000;

/// Clears `(seed, bus, ratings scale, a)` by the central reference (whose
/// binding set must contain `line`, when one is named) and by primal-dual
/// within `budget`; returns a line describing the failure, if any.
fn check(seed: u64, bus: u32, scale: f64, a: f64, line: Option<&str>, budget: usize) -> Option<String> {
    let net = case30_net(scale);
    let m = with_pair(&net, seed, bus, a);
    let central = clear(&m, &net, Algorithm::Central).expect("the reference clears");
    if let Some(l) = line {
        assert!(
            central.binding.iter().any(|b| b == l),
            "seed {seed} bus {bus} x {scale}: {l} must bind at the optimum: {:?}",
            central.binding
        );
    }
    let tag = format!("seed {seed}, pair at bus {bus}, ratings x {scale}, a = {a:e}");
    match clear_with(&m, &net, Algorithm::PrimalDual, Some(budget)) {
        Ok(c) if c.converged && c.relative_gap.abs() <= 1e-3 => None,
        Ok(c) => Some(format!("{tag}: converged {} gap {}", c.converged, c.relative_gap)),
        Err(e) => Some(format!("{tag}: {e}")),
    }
}

fn failures(cases: &[(u64, u32, f64, f64, Option<&str>)], budget: usize) -> Vec<String> {
    cases.iter().filter_map(|&(seed, bus, scale, a, line)| check(seed, bus, scale, a, line, budget)).collect()
}

// Expected: a congested interval with a flat pair at one bus clears within
// 0.1 % of the optimum in a budget well above what the pair needs on an
// unconstrained grid. Observed: line 25-26 binds (ratings × 5·10⁻⁴ and
// × 3·10⁻⁴), the congested mode is never left, and no case but
// (× 3·10⁻⁴, a = 10⁻⁴: 11 633 iterations) clears in 20 000 (× 5·10⁻⁴,
// a = 10⁻⁵: 60 201 at the full cap).
#[test]

fn a_flat_pair_at_bus_26_behind_binding_line_25_26_clears_within_the_budget() {
    let l = Some("line 25-26 forward");
    let cases = [(5, 26, 5e-4, 1e-4, l), (5, 26, 5e-4, 1e-5, l), (5, 26, 3e-4, 1e-4, l), (5, 26, 3e-4, 1e-5, l)];
    let f = failures(&cases, BUDGET);
    assert!(f.is_empty(), "not cleared within {BUDGET} iterations:\n{}", f.join("\n"));
}

// The same where line 16-17 binds (ratings × 2·10⁻⁴), the pair at bus 10
// or bus 21: none of the four clears in 20 000 iterations.
#[test]

fn a_flat_pair_at_bus_10_or_21_behind_binding_line_16_17_clears_within_the_budget() {
    let l = Some("line 16-17 forward");
    let cases = [(5, 10, 2e-4, 1e-4, l), (5, 10, 2e-4, 1e-5, l), (5, 21, 2e-4, 1e-4, l), (5, 21, 2e-4, 1e-5, l)];
    let f = failures(&cases, BUDGET);
    assert!(f.is_empty(), "not cleared within {BUDGET} iterations:\n{}", f.join("\n"));
}

// Seed 11's market with the pair at bus 26, ratings × 3·10⁻⁴: a row is
// priced on every one of 20 000 iterations (the mode never left) although
// the reference reports no row binding at the optimum (not examined
// further: possibly a row at its limit with a zero dual); a = 10⁻⁴ and
// 10⁻⁵ do not clear in 20 000 iterations (537 and 2 760 on the unconstrained
// grid).
#[test]

fn seed_11_with_a_flat_pair_at_bus_26_clears_within_the_budget() {
    let cases = [(11, 26, 3e-4, 1e-4, None), (11, 26, 3e-4, 1e-5, None)];
    let f = failures(&cases, BUDGET);
    assert!(f.is_empty(), "not cleared within {BUDGET} iterations:\n{}", f.join("\n"));
}

// a = 10⁻⁶ needs 13 762 iterations on the unconstrained grid; the budget
// here is over 4× that. Observed: none of line 25-26's or line 16-17's
// markets clears in it.
#[test]

fn a_flatter_pair_behind_a_binding_line_clears_within_four_times_its_unconstrained_count() {
    let cases = [(5, 26, 5e-4, 1e-6, Some("line 25-26 forward")), (5, 10, 2e-4, 1e-6, Some("line 16-17 forward"))];
    let budget = 60_000;
    let f = failures(&cases, budget);
    assert!(f.is_empty(), "not cleared within {budget} iterations:\n{}", f.join("\n"));
}

fn teardo() -> TearDoConfig {
    TearDoConfig { enclaves: 4, kappa: 2, byzantine: Default::default(), strategy: Strategy::Always, seed: 9 }
}

// In the framework: TEAR-DO capped at 5 000 rounds (over 9× the 537 the
// a = 10⁻⁴ pair needs on the unconstrained grid, where it clears by
// TEAR-DO); behind binding line 25-26 (ratings × 5·10⁻⁴) it runs all
// 5 000 rounds and the interval clears at the central fallback.
#[test]

fn a_flat_pair_behind_a_binding_line_does_not_force_the_fallback() {
    let a = 1e-4;
    let free = case30_net(1.0);
    let m = with_pair(&free, 5, 26, a);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &free, teardo(), None, Some(5_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none() && out.teardo.converged, "unconstrained: {:?}", out.fallback);
    let tight = case30_net(5e-4);
    let m = with_pair(&tight, 5, 26, a);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.iter().any(|b| b == "line 25-26 forward"), "{:?}", central.binding);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &tight, teardo(), None, Some(5_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none(), "observed: fallback {:?} after {} rounds", out.fallback, out.teardo.iterations);
}

// Held up: the rule is slow here, not wrong: at primal-dual's full
// 200 000-iteration cap the a = 10⁻⁵ pair behind binding line 25-26 clears
// within 0.1 % of the optimum (60 201 iterations).
#[test]
fn at_the_full_cap_the_pair_behind_line_25_26_clears_within_the_target() {
    assert_eq!(check(5, 26, 5e-4, 1e-5, Some("line 25-26 forward"), 200_000), None);
}

// Held up (and kept by the fix, which gives trades their own steps): on
// these markets the fused step and the sans-IO tasks keep the same trades,
// bilateral prices and multipliers bit for bit, report the same change,
// stop alike and are in the same step mode, for 300 iterations with a row
// priced. With the fix the pair at one bus has no trade the congested mode
// would cap (its own trade loads no row; its trades with the small parties
// keep the common step), so the mode is never entered there; the pair
// split across buses 26 and 10 has one (its own trade), and is checked in
// the congested mode.
#[test]
fn step_and_tasks_agree_on_the_congested_pair_markets() {
    for (bus, seller_bus, scale) in [(26u32, 26u32, 5e-4), (10, 10, 2e-4), (26, 10, 5e-4)] {
        let net = case30_net(scale);
        let mut m = with_pair(&net, 5, bus, 1e-5);
        m.sellers.last_mut().unwrap().bus = seller_bus;
        let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        let mut t = a.clone();
        for it in 0..300 {
            let ra = a.step(&m);
            let rt = task_step(&mut t, &m);
            assert_eq!(bits(&a), bits(&t), "bus {bus}: states at iteration {it}");
            assert_eq!(ra.change.to_bits(), rt.change.to_bits(), "bus {bus}: change at iteration {it}");
            assert_eq!(ra.converged, rt.converged, "bus {bus}: stopping at iteration {it}");
        }
        assert!(a.mu.iter().any(|v| *v > 0.0), "bus {bus}: no row priced: {:?}", a.mode());
        assert_eq!(a.mode().congested, bus != seller_bus, "bus {bus}: {:?}", a.mode());
        // (not `state_digest`: it covers the bus prices, which the fused
        // step forms lazily at the start of its next iteration)
        assert_eq!(a.mode(), t.mode(), "bus {bus}: step modes");
    }
}

// Held up (the fix's longer multiplier step, `OVERLOAD_BOOST`): with the
// pair at bus 21 behind line 16-17 a row stays priced and overloaded past
// `OVERLOAD_WAIT` iterations, and across that switch the fused step and
// the sans-IO tasks keep the same trades, prices, multipliers and
// counters bit for bit (the state digests agree after each closed round).
#[test]
fn step_and_tasks_agree_across_the_longer_multiplier_step() {
    let net = case30_net(2e-4);
    let m = with_pair(&net, 5, 21, 1e-5);
    let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
    let mut t = a.clone();
    let mut boosted = false;
    for it in 0..(OVERLOAD_WAIT as usize + 300) {
        let ra = a.step(&m);
        let rt = task_step(&mut t, &m);
        assert_eq!(bits(&a), bits(&t), "states at iteration {it}");
        assert_eq!(a.overload_streaks(), t.overload_streaks(), "counters at iteration {it}");
        assert_eq!(ra.change.to_bits(), rt.change.to_bits(), "change at iteration {it}");
        assert_eq!(ra.converged, rt.converged, "stopping at iteration {it}");
        boosted |= a.overload_streaks().iter().any(|s| *s > OVERLOAD_WAIT);
    }
    assert!(boosted, "no row took the longer step: {:?}", a.overload_streaks());
}
