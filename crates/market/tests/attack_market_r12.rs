//! Attack round 12 on the market crate (issue 15), after primal-dual's
//! congested mode became two-way (`PrimalDual::update_mode`: left after
//! `CONGESTED_QUIET` quiet iterations, re-entered after a row stays priced
//! as long, waits doubling per exit, at most `CONGESTED_EXITS` exits; the
//! mode in `state_digest`).
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r12 -- --ignored`.
//! The tests that are not ignored are attacks that held up.

mod common;

use std::collections::BTreeMap;

use common::{bits, case30_net, p, task_step};
use gridledger_market::clearing::{clear, clear_with, Algorithm};
use gridledger_market::framework::run_interval_insecure_seeded_capped;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual, SLACK_DOUBLING, SLACK_WAIT};
use gridledger_market::problem::{Market, Side};
use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};

/// The seeded 3 × 3 market of `seed` plus a near-linear 10 MWh buyer and
/// seller (curvature `a`, bids 10 and 9.99 $/kWh, every number within the
/// admission limits) at model bus `bi`: their trade with each other loads
/// no line.
fn with_pair(net: &MarketNetwork, seed: u64, bi: usize, a: f64) -> Market {
    let mut m = Market::generate(seed, 3, 3, &net.bus_ids);
    let bus = net.bus_ids[bi];
    m.buyers.push(p(Side::Buyer, bus, a, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, bus, a, 9.99, 0.0, 10_000.0));
    m
}

// Expected (the fix's claim, `BUYER_STEP_CAP`'s docs and attack round 10):
// an interval where no network row binds at the optimum clears in about
// the iterations it needs on an unconstrained grid. Observed: a row that
// does NOT bind at the optimum but comes close is priced for good. Seed
// 2's 3 × 3 market plus the flat pair at model bus 3 (bus 4), case30 at
// ratings × 2·10⁻⁴: the central reference's binding set is empty, and
// line 15-23 (reverse, 3.2 kW) carries 3.179 kW at the optimum — 21 W of
// slack. The flat buyer's first steps (its own step, α_m ≫ α) overload it
// and its multiplier climbs above 8 $/kWh (the trades it holds are worth the
// pair's ~10 $/kWh); from then on it falls only by `γ_r · 0.021` per
// iteration (the row's excess at the optimum), about 3.6·10⁻⁵ $/kWh: 6.7
// at iteration 50 000, 4.9 at 100 000, 1.3 at 200 000. While it is
// positive the seeded sellers' copies are held 0.019 kWh apart from the
// buyer's (residual stuck at 1.87·10⁻²), the mode never sees a quiet
// iteration, and the run stops at the 200 000 cap unconverged — though
// the trades themselves sit at the optimum from about iteration 100 000.
// The same market on the unconstrained grid (ratings × 1) clears in
// 2 759. Neighbouring markets of the same shape, all with an empty
// binding set (ratings × 2·10⁻⁴, same-bus pair, a = 10⁻⁵): seed 2 at bus
// 22 also reaches the cap; seed 2 at bus 2 needs 163 689, seed 0 at bus
// 20 92 389, seed 3 at bus 11 81 068. The stall length is
// `μ_peak / (γ_r · slack)`: the pair's bid level sets `μ_peak`, and the
// slack is whatever the honest sellers at full output leave on the line,
// so it grows without bound as that slack shrinks. One sender's two
// requests push an uncongested interval to the central fallback
// (`IntervalOutcome::fallback`) at the cost of buying the honest sellers'
// ~10 kWh at its own bid. A fix must unwind a multiplier whose row has
// slack faster than `γ_r · slack` (e.g. a multiplier step that does not
// vanish with the slack, or a reset of `μ_r` once the row has slack and
// the buyers' copies no longer move), not only switch the buyers' steps.
// (A cap of 20× the unconstrained count here, to keep the test short; at
// the full cap it was `NoConvergence` after 200 000.)
// Fixed: a row that stays priced and under its limit for `SLACK_WAIT`
// iterations takes a step down that doubles every `SLACK_DOUBLING`
// iterations of the streak (`primal_dual::SLACK_DOUBLING`).
#[test]
fn a_row_with_a_little_slack_holds_an_uncongested_interval_past_the_cap() {
    let free = case30_net(1.0);
    let m = with_pair(&free, 2, 3, 1e-5);
    let c = clear(&m, &free, Algorithm::PrimalDual).expect("the pair clears on the unconstrained grid");
    assert!(c.converged && c.binding.is_empty());
    let tight = case30_net(2e-4);
    let m = with_pair(&tight, 2, 3, 1e-5);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    match clear_with(&m, &tight, Algorithm::PrimalDual, Some(20 * c.iterations)) {
        Ok(c2) => assert!(c2.converged && c2.relative_gap.abs() <= 1e-3),
        Err(e) => panic!("observed: {} iterations on the unconstrained grid; at ratings x 2e-4: {e}", c.iterations),
    }
}

fn teardo_config() -> TearDoConfig {
    TearDoConfig { enclaves: 4, kappa: 2, byzantine: Default::default(), strategy: Strategy::Always, seed: 9 }
}

// The same in the framework, where a run at the cap clears at the central
// reference: with a = 10⁻⁴ the pair clears by primal-dual in 537
// iterations on the unconstrained grid, and at ratings × 2·10⁻⁴ (no row
// binding at the optimum) it does not in 200 000; with TEAR-DO capped at
// 3 000 rounds the first interval clears by TEAR-DO and the second runs
// all 3 000 rounds and falls back. (Fixed with the test above: about
// 1 700 rounds.)
#[test]
fn a_row_with_a_little_slack_forces_the_fallback_of_an_uncongested_interval() {
    let free = case30_net(1.0);
    let m = with_pair(&free, 2, 3, 1e-4);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &free, teardo_config(), None, Some(3_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none() && out.teardo.converged, "unconstrained: {:?}", out.fallback);
    let tight = case30_net(2e-4);
    let m = with_pair(&tight, 2, 3, 1e-4);
    let central = clear(&m, &tight, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &m, &tight, teardo_config(), None, Some(3_000))
        .expect("the interval clears");
    assert!(out.fallback.is_none(), "observed: fallback {:?} after {} rounds", out.fallback, out.teardo.iterations);
}

/// Seed 5's 3 × 3 market with the flat buyer at model bus 2 and the flat
/// seller at model bus 26, ratings × 3·10⁻², with the switch rule's first
/// wait cut to 1 iteration and the exits unbounded: the mode is entered on
/// iteration 1, left on iteration 280 (the first iteration no row is
/// priced) and entered again before iteration 300. (Written with the pair
/// at one bus, model bus 2, ratings × 10⁻³; since attack round 11 the
/// pair's own trade there loads no row, so the congested mode caps no
/// trade of that market and it never switched: the pair is split so its
/// trade is one the mode caps.)
fn switching() -> (MarketNetwork, Market) {
    let net = case30_net(3e-2);
    let mut m = Market::generate(5, 3, 3, &net.bus_ids);
    m.buyers.push(p(Side::Buyer, net.bus_ids[2], 1e-5, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, net.bus_ids[26], 1e-5, 9.99, 0.0, 10_000.0));
    (net, m)
}

// Held up: across both switches (into the congested mode and out of it),
// the fused step and the sans-IO tasks keep the same trades, prices,
// multipliers, step mode and counters bit for bit, and report the same
// residual, change and violation every iteration.
#[test]
fn step_and_tasks_agree_bit_for_bit_across_mode_switches() {
    let (net, m) = switching();
    let mut prm = PdParams::for_market(&m);
    prm.congested_quiet = 1;
    prm.congested_exits = u32::MAX;
    let mut a = PrimalDual::new(&m, &net, prm).unwrap();
    let mut t = a.clone();
    for it in 0..320 {
        let ra = a.step(&m);
        let rt = task_step(&mut t, &m);
        assert_eq!(bits(&a), bits(&t), "states at iteration {it}");
        assert_eq!(a.mode(), t.mode(), "modes at iteration {it}");
        assert_eq!(a.slack_streaks(), t.slack_streaks(), "slack streaks at iteration {it}");
        for (x, y) in [(ra.residual, rt.residual), (ra.change, rt.change), (ra.violation, rt.violation)] {
            assert_eq!(x.to_bits(), y.to_bits(), "reports at iteration {it}: {ra:?} vs {rt:?}");
        }
        assert_eq!(ra.converged, rt.converged);
    }
    assert!(a.mode().switches >= 2 && a.mode().exits >= 1, "the mode did not switch both ways: {:?}", a.mode());
}

// The fix of the first finding keeps the two paths together: on the
// round's market with `a = 10⁻⁴` (line 15-23 priced and under its limit
// for streaks past `SLACK_WAIT`, its multiplier taking the doubling step
// down), the fused step and the sans-IO tasks keep the same state, slack
// and overload streaks and reports bit for bit up to convergence, and both
// converge on the same iteration.
#[test]
fn step_and_tasks_agree_bit_for_bit_across_the_step_down() {
    let net = case30_net(2e-4);
    let m = with_pair(&net, 2, 3, 1e-4);
    let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
    let mut t = a.clone();
    let mut longest = 0;
    for it in 0..3_000 {
        let ra = a.step(&m);
        let rt = task_step(&mut t, &m);
        assert_eq!(bits(&a), bits(&t), "states at iteration {it}");
        assert_eq!(a.slack_streaks(), t.slack_streaks(), "slack streaks at iteration {it}");
        assert_eq!(a.overload_streaks(), t.overload_streaks(), "overload streaks at iteration {it}");
        for (x, y) in [(ra.residual, rt.residual), (ra.change, rt.change), (ra.violation, rt.violation)] {
            assert_eq!(x.to_bits(), y.to_bits(), "reports at iteration {it}: {ra:?} vs {rt:?}");
        }
        assert_eq!(ra.converged, rt.converged, "iteration {it}");
        longest = longest.max(a.slack_streaks().iter().copied().max().unwrap_or(0));
        if ra.converged {
            assert!(longest >= SLACK_WAIT + SLACK_DOUBLING, "no row took the doubled step down: {longest}");
            return;
        }
    }
    panic!("not converged in 3 000 iterations");
}

fn config(byzantine: BTreeMap<usize, Fault>) -> TearDoConfig {
    TearDoConfig { enclaves: 7, kappa: 3, byzantine, strategy: Strategy::Always, seed: 12 }
}

// Held up: TEAR-DO (all outputs encrypted, signed, exchanged and checked)
// stays on the fused step's path across the mode switches — the state
// digest, which now covers the mode, matches the fused state's after every
// iteration — with no Byzantine host, and with one whose host feeds its
// enclave the previous round's inputs (a state in the other mode right
// after a switch), whose enclave is compromised, or whose enclave is gone
// (crashed: silent from the first round; there is no restore path, the
// honest enclaves recompute its subproblems): each is flagged and the
// honest path is kept.
#[test]
fn teardo_follows_the_fused_step_across_mode_switches_with_byzantine_hosts() {
    let (net, m) = switching();
    let faults = [
        BTreeMap::new(),
        BTreeMap::from([(1, Fault::WrongInputs)]),
        BTreeMap::from([(2, Fault::WrongOutput)]),
        BTreeMap::from([(3, Fault::Silent)]),
    ];
    for byz in faults {
        let mut tear = TearDo::new_insecure_seeded(&m, &net, config(byz.clone()), [7; 32]).unwrap();
        tear.pd.params.congested_quiet = 1;
        tear.pd.params.congested_exits = u32::MAX;
        let mut fused = tear.pd.clone();
        let mut prev = [0u8; 32];
        for it in 0..300 {
            let c = tear.step(&m, &mut prev);
            let r = fused.step(&m);
            assert_eq!(tear.pd.mode(), fused.mode(), "{byz:?}: modes at iteration {it}");
            assert_eq!(bits(&tear.pd), bits(&fused), "{byz:?}: states at iteration {it}");
            assert_eq!(c, r.converged);
        }
        assert!(fused.mode().exits >= 1, "{byz:?}: the mode was not left: {:?}", fused.mode());
        let report = tear.report(false);
        if let Some(node) = byz.keys().next() {
            assert!(report.detected.iter().any(|(n, _, _)| n == node), "{byz:?} not flagged: {:?}", report.detected);
        } else {
            assert!(report.detected.is_empty(), "{:?}", report.detected);
        }
    }
}

fn pr(side: Side, bus: u32, a: f64, b: f64, e_max: f64) -> gridledger_market::problem::Prosumer {
    p(side, bus, a, b, 0.0, e_max)
}

/// Two small congested case30 markets from a fuzz of this round (seeded
/// parameters; the first with one near-linear 5 kWh seller, `a = 10⁻⁵`,
/// within `E₀` so `scaled_gap` does not cover it; the second with none).
fn fuzzed() -> Vec<(f64, Market)> {
    use Side::{Buyer, Seller};
    vec![
        (
            5e-4,
            Market {
                buyers: vec![
                    pr(Buyer, 7, 0.01802984745465549, 0.342296544814492, 3.2205253841304193),
                    pr(Buyer, 26, 0.014123233669080068, 0.25034697069252343, 2.4550775242819993),
                ],
                sellers: vec![
                    pr(Seller, 12, 0.011374990616595615, 0.09623005254335543, 4.723457358267608),
                    pr(Seller, 19, 0.021438252309244517, 0.09894168163333636, 3.3850706943056137),
                    pr(Seller, 24, 0.021987225145219436, 0.05203118963352298, 2.8764967907906014),
                    pr(Seller, 27, 1e-5, 0.1, 5.0),
                ],
            },
        ),
        (
            1e-3,
            Market {
                buyers: vec![
                    pr(Buyer, 22, 0.010983315542972138, 0.25651049289728667, 1.0162981659611816),
                    pr(Buyer, 30, 0.01778239358370093, 0.33144195504836726, 1.2909677592015614),
                ],
                sellers: vec![
                    pr(Seller, 20, 0.010295614518310474, 0.08772495837306853, 3.9203998730440865),
                    pr(Seller, 22, 0.027325826045440274, 0.1136470214617988, 1.4771541254472824),
                    pr(Seller, 23, 0.01163106311356299, 0.10529523274056778, 1.035012924843226),
                    pr(Seller, 20, 0.01663931254976843, 0.10939143089266587, 4.8070291087691075),
                ],
            },
        ),
    ]
}

// Expected: primal-dual stops only on a clearing `clear` accepts (its
// stopping rule's certificate is meant to put every party within its own
// tolerance of the optimum: `scaled_gap`'s docs). Observed: on these two
// small congested case30 markets (2 buyers, 4 sellers, all numbers within
// the admission limits; two of the 8 such among 1 300 fuzzed markets)
// the run reports `converged` and `clear` refuses it as `OffReference`:
// seller 3 (the near-linear 5 kWh one) 7.7 Wh off its optimal total after
// 231 iterations (tolerance 6 Wh), and in the second market, with no flat
// party at all, seller 2 2.35 Wh off after 103 iterations (tolerance
// 2.04 Wh). The welfare is within 0.1 %; the per-party tolerance is what
// fails, because the relative certificate (`gap_tol` = 10⁻⁴ of the
// welfare) does not bound a party whose curvature is small against the
// market's welfare, and `scaled_gap` only covers parties with `e_max`
// beyond `E₀`. `market clear --algorithm primal-dual` then exits with an
// error on an ordinary market, and in the framework such an interval
// falls back to the central reference. (low: caught by the check, no
// wrong clearing reported)
// Fixed: `scaled_gap` covers every party, so the duality gap a run stops
// at bounds each party's total within half its tolerance.
#[test]
fn primal_dual_does_not_stop_on_a_clearing_clear_refuses() {
    let mut refused = Vec::new();
    for (scale, m) in fuzzed() {
        let net = case30_net(scale);
        match clear(&m, &net, Algorithm::PrimalDual) {
            Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3),
            Err(e) => refused.push(format!("ratings x {scale}: {e}")),
        }
    }
    assert!(refused.is_empty(), "observed: {refused:#?}");
}

// Held up: on the same markets the welfare is within 0.1 % of the central
// optimum (the stop is early for one party's total, not for the welfare),
// and the reference itself clears them.
#[test]
fn the_fuzzed_markets_stop_within_a_tenth_of_a_percent_of_the_welfare() {
    for (scale, m) in fuzzed() {
        let net = case30_net(scale);
        let central = clear(&m, &net, Algorithm::Central).expect("the reference clears");
        let mut pd = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        assert!(pd.run(&m).is_some(), "ratings x {scale}: not converged");
        let w = m.welfare(&pd.settled());
        assert!(
            ((central.optimum - w) / central.optimum).abs() <= 1e-3,
            "ratings x {scale}: {w} vs {}",
            central.optimum
        );
    }
}
