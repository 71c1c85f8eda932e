//! Attack round 10 on the market crate (issue 15) by someone who did not
//! write it, after primal-dual started capping the buyers' steps at
//! `BUYER_STEP_CAP · α` once a line is priced (`enter_congested_mode`, a
//! second set of row weights installed the first time any `μ_r > 0`).
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r10 -- --ignored`.
//! The tests that are not ignored are attacks that held up.
//!
//! Fixed: the congested mode is two-way (`PrimalDual::update_mode`): left
//! once no row has been priced for `CONGESTED_QUIET` (100) iterations,
//! entered again only after a row has been priced for as long, the waits
//! doubling with every exit, at most `CONGESTED_EXITS` (6) exits per run;
//! the mode and its counters are in `state_digest`; `apply_operator`
//! measures `change` before it switches, as `step` does. The four findings
//! below now pass (the pair at ratings × 10⁻³ with a = 10⁻⁴, 10⁻⁵, 10⁻⁶:
//! 838, 3 184 and 30 507 iterations, two switches each).
//! `congested_mode.rs` tests the rule on a line that oscillates.

mod common;

use common::{bits, case30_net, p, task_step};
use gridledger_market::clearing::{clear, clear_with, Algorithm};
use gridledger_market::framework::run_interval_insecure_seeded_capped;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::{Market, Side};
use gridledger_market::teardo::{Strategy, TearDoConfig};

/// The seeded 3 × 3 market of seed 5 plus a near-linear buyer and seller
/// (curvature `a`, 10 MWh each, bids 10 and 9.99 $/kWh: every number within
/// the admission limits) at the SAME bus, so their trade with each other
/// loads no line at all.
fn with_same_bus_pair(net: &MarketNetwork, a: f64) -> Market {
    let mut m = Market::generate(5, 3, 3, &net.bus_ids);
    let bus = net.bus_ids[2];
    m.buyers.push(p(Side::Buyer, bus, a, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, bus, a, 9.99, 0.0, 10_000.0));
    m
}

// Expected: an interval where no line binds at the optimum clears in about
// the rounds it needs on an unconstrained network — the module docs say an
// uncongested market keeps each buyer's own step ("which the near-linear
// pair of attack round 7 needs"). Observed: the congested mode is entered
// the first time ANY multiplier is positive and never left. With case30's
// ratings × 10⁻³ the flat buyer's own step (α_m ≫ α) makes its first
// iterate trade thousands of kW with the seeded sellers across the grid, so
// 31 rows are priced at iteration 0; every μ is back at 0 by iteration
// ~300 and no row binds at the optimum (the central reference's binding
// set is empty), but the buyer's step stays capped at 2 α for good. The
// 1 c/kWh pair then crawls toward its optimum as in round 7: with a = 10⁻⁵
// it clears in 2 759 iterations at ratings × 1 and does not clear in
// 55 000 (20×) at ratings × 10⁻³ (a = 10⁻⁶: 13 762 at × 1, the full
// 200 000-iteration cap and `NoConvergence` at × 10⁻³, the buyer still
// 54 kWh off its 5 MWh optimum). The pair trade with each other at the
// same bus, so the sender pays itself and no network charge: a free way
// to push an interval to the cap (and, in the framework, to the central
// fallback: next test). The LinDistFlow feeder (case33bw) shows the same:
// the pair at bus 2 of the seeded 3 × 3 market of seed 5 gets rows priced
// in iterations 0–17 only, none binds at the optimum, and primal-dual
// needs 19 253 iterations with a = 10⁻⁴ (the seeded market alone: 58) and
// does not converge in 60 000 with a = 10⁻⁵. Fix idea: leave the congested mode when no row is
// priced (the fixed-point argument holds for any switch rule every
// executor evaluates alike), or enter it only on a row that stays priced,
// or cap only the buyers with weight on the priced rows. (Tried on a
// scratch copy, not kept: a mode left again once no row is priced cleared
// this market in 3 097 iterations, with 2 switches, the a = 10⁻⁶ one in
// 30 379, and left round 9's seed-3 market at 1 831; whether a two-way
// switch can be made to cycle was not explored.)
#[test]
fn a_line_priced_once_keeps_a_flat_pair_capped_in_an_uncongested_interval() {
    let a = 1e-5;
    let free = case30_net(1.0);
    let m = with_same_bus_pair(&free, a);
    let c = clear(&m, &free, Algorithm::PrimalDual).expect("the pair clears on the unconstrained grid");
    assert!(c.binding.is_empty());
    let tight = case30_net(1e-3);
    let m = with_same_bus_pair(&tight, a);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    match clear_with(&m, &tight, Algorithm::PrimalDual, Some(20 * c.iterations)) {
        Ok(c2) => assert!(c2.converged && c2.relative_gap.abs() <= 1e-3),
        Err(e) => panic!("observed: {} iterations on the unconstrained grid; at ratings x 1e-3: {e}", c.iterations),
    }
}

// The same at primal-dual's full 200 000-iteration cap, not a lowered one:
// with a = 10⁻⁶ the pair clears in 13 762 iterations at ratings × 1, and at
// ratings × 10⁻³ (no row binding at the optimum) `clear` returns
// `NoConvergence` after 200 000 (about 25 s in a test build before it
// fails).
#[test]
fn a_line_priced_once_holds_a_flat_pair_at_the_full_cap() {
    let tight = case30_net(1e-3);
    let m = with_same_bus_pair(&tight, 1e-6);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    match clear(&m, &tight, Algorithm::PrimalDual) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3),
        Err(e) => panic!("observed: {e}"),
    }
}

fn teardo() -> TearDoConfig {
    TearDoConfig { enclaves: 4, kappa: 2, byzantine: Default::default(), strategy: Strategy::Always, seed: 9 }
}

// The same in the framework, where a run at the cap clears at the central
// reference: with a = 10⁻⁴ the pair clears by primal-dual in 537
// iterations at ratings × 1 and in 7 044 at ratings × 10⁻³, where no row
// binds at the optimum either; with TEAR-DO capped at 3 000 rounds (over
// five times what the unconstrained interval needs) the first clears by
// TEAR-DO and the second runs all 3 000 rounds and falls back.
#[test]
fn a_line_priced_once_forces_the_fallback_of_an_uncongested_interval() {
    let a = 1e-4;
    let free = case30_net(1.0);
    let m = with_same_bus_pair(&free, a);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &free, teardo(), None, Some(3_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none() && out.teardo.converged, "unconstrained: {:?}", out.fallback);
    let tight = case30_net(1e-3);
    let m = with_same_bus_pair(&tight, a);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &tight, teardo(), None, Some(3_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none(), "observed: fallback {:?} after {} rounds", out.fallback, out.teardo.iterations);
}

// Expected (`apply_operator`'s doc: "the report is the same as
// [`PrimalDual::step`]'s"): the fused step and the sans-IO tasks give the
// same report every iteration, so an executor and the reference decide
// convergence alike. Observed: on the iteration where the first line is
// priced, `step` measures `change` (each buyer's |Δx| / α_m) with the
// buyers' uncapped steps — it switches after the multiplier update, at the
// end — while `apply_operator` switches first and measures it with the
// capped ones: the flat buyer's change is reported as 234.7 by the tasks
// against 5.6 by `step` (iteration 0 of the first test's market with a = 10⁻⁶).
// The states agree bit for bit; only the stopping test
// differs, on that one iteration (low: it can only matter when a run
// would stop on the very iteration that a line is first priced).
#[test]
fn step_and_tasks_report_the_same_change_when_the_congested_mode_is_entered() {
    let net = case30_net(1e-3);
    let m = with_same_bus_pair(&net, 1e-6);
    let prm = PdParams::for_market(&m);
    let mut a = PrimalDual::new(&m, &net, prm).unwrap();
    let mut t = a.clone();
    for it in 0..5 {
        let was = a.mu.iter().any(|v| *v > 0.0);
        let ra = a.step(&m);
        let rt = task_step(&mut t, &m);
        assert_eq!(bits(&a), bits(&t), "states at iteration {it}");
        assert_eq!(
            ra.change.to_bits(),
            rt.change.to_bits(),
            "iteration {it} (line priced before: {was}): step's change {} vs the tasks' {}",
            ra.change,
            rt.change
        );
    }
}

// Held up: across the switch to the congested mode (on iteration 0 in
// these markets: the flat buyer's first step overloads a row), the fused
// step and the sans-IO tasks keep the same trades, bilateral prices and
// multipliers bit for bit, and stop on the same iteration, for r9's flat
// 10 MWh buyer behind congested rows of seeded 5 × 5 markets (200
// iterations each).
#[test]
fn step_and_tasks_agree_across_the_switch_to_the_congested_mode() {
    for (scale, seed, bus, b) in [(1e-4, 3u64, 10u32, 0.3), (3e-4, 7, 24, 0.06), (1e-4, 5, 30, 0.3)] {
        let net = case30_net(scale);
        let mut m = Market::generate(seed, 5, 5, &net.bus_ids);
        m.buyers.push(p(Side::Buyer, bus, 1e-6, b, 0.0, 10_000.0));
        // and a flat 10 MWh seller at bus 2: since attack round 11 the
        // buyer's trades with the seeded sellers keep the common step, and
        // the pair's own trade is the one the congested mode caps
        m.sellers.push(p(Side::Seller, 2, 1e-6, 0.9 * b, 0.0, 10_000.0));
        let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        let mut t = a.clone();
        let mut priced = false;
        for it in 0..200 {
            let ra = a.step(&m);
            let rt = task_step(&mut t, &m);
            priced |= a.mu.iter().any(|v| *v > 0.0);
            let bits = |v: Vec<Vec<f64>>| v.into_iter().flatten().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(a.settled()), bits(t.settled()), "scale {scale} seed {seed}: trades at {it}");
            let mu = |pd: &PrimalDual| pd.mu.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(mu(&a), mu(&t), "scale {scale} seed {seed}: multipliers at {it}");
            assert_eq!(ra.converged, rt.converged, "scale {scale} seed {seed}: stopping at {it}");
        }
        assert!(priced, "scale {scale} seed {seed}: no row was priced, the switch was not exercised");
        assert!(a.mode().switches > 0, "scale {scale} seed {seed}: the switch was not exercised: {:?}", a.mode());
    }
}

/// xorshift64: a fixed stream for the fuzz's choices.
struct Xs(u64);

impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

// Held up: ALADIN (whose proximal weights are scaled for wide-range
// parties) on the 33-bus feeder, seeded 3 × 3 to 8 × 8 markets plus one to
// three large near-linear parties (a from 10⁻⁴ down to 10⁻³⁰⁰, 0.4–10 MWh,
// b up to 9.99 $/kWh) at the feeder's far ends and near the head: every
// market clears within 0.1 % of the optimum in under the 80
// iterations (3–32 seen; two with a voltage row binding).
#[test]
fn aladin_clears_fuzzed_feeder_markets_with_large_flat_parties_within_80_iterations() {
    let net = common::feeder();
    for seed in 100u64..124 {
        let mut x = Xs(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x1234);
        let k = 3 + (x.next() % 6) as usize;
        let mut m = Market::generate(seed, k, k, &net.bus_ids);
        for _ in 0..(1 + x.next() % 3) {
            let bus = x.pick(&[18u32, 33, 25, 2, 12]);
            let a = x.pick(&[1e-4, 1e-5, 1e-6, 1e-300]);
            let e = x.pick(&[400.0, 3000.0, 10_000.0]);
            let b = x.pick(&[0.05, 0.3, 2.0, 9.99]);
            if x.next().is_multiple_of(2) {
                m.buyers.push(p(Side::Buyer, bus, a, b, 0.0, e));
            } else {
                m.sellers.push(p(Side::Seller, bus, a, b * 0.9, 0.0, e));
            }
        }
        let c = clear(&m, &net, Algorithm::Aladin).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "seed {seed}: gap {}", c.relative_gap);
        assert!(c.iterations < 80, "seed {seed}: {} iterations", c.iterations);
        let s = &c.settlement;
        assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor, "seed {seed}");
        assert_eq!(s.seller_receives.iter().sum::<i64>() + s.operator_minor, s.total_minor, "seed {seed}");
    }
}

// Held up: Byzantine executors (a compromised enclave with validly signed
// wrong outputs, a tampered ciphertext, a silent host; three of ten, κ = 4,
// both strategies) across the switch to the congested mode — round 9's
// flat 10 MWh buyer behind the congested rows of the seed-3 5 × 5 market,
// where the mode is entered on iteration 0 — leave TEAR-DO's trades and
// multipliers equal bit for bit to the attack-free iteration's for the
// first 40 iterations, and the faulty hosts are detected.
#[test]
fn byzantine_executors_across_the_mode_switch_do_not_change_the_iterates() {
    use gridledger_market::teardo::{Fault, TearDo};
    let net = case30_net(1e-4);
    let mut m = Market::generate(3, 5, 5, &net.bus_ids);
    m.buyers.push(p(Side::Buyer, 10, 1e-6, 0.3, 0.0, 10_000.0));
    for strategy in [Strategy::Always, Strategy::Optimal] {
        let mut byz = std::collections::BTreeMap::new();
        byz.insert(1, Fault::WrongOutput);
        byz.insert(4, Fault::TamperOutput);
        byz.insert(8, Fault::Silent);
        let config = TearDoConfig { enclaves: 10, kappa: 4, byzantine: byz, strategy, seed: 3 };
        let mut t = TearDo::new_insecure_seeded(&m, &net, config, [7; 32]).unwrap();
        let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        let mut prev = [0u8; 32];
        for it in 0..40 {
            a.step(&m);
            t.step(&m, &mut prev);
            let bits = |v: Vec<Vec<f64>>| v.into_iter().flatten().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(a.settled()), bits(t.pd.settled()), "{strategy:?}: trades at {it}");
            let mu = |pd: &PrimalDual| pd.mu.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(mu(&a), mu(&t.pd), "{strategy:?}: multipliers at {it}");
        }
        assert!(a.mu.iter().any(|v| *v > 0.0), "a row must be priced for the switch to be exercised");
        let r = t.report(false);
        if strategy == Strategy::Always {
            assert!(!r.detected.is_empty(), "{strategy:?}: no faulty host detected");
        }
    }
}
