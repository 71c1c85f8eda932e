//! Attack round 14 on the market crate (issue 15), after the row weights in
//! their own scale (`ROW_UNIT_FLOOR`: a row whose every coefficient is
//! below 1e-2 gets `c_r = min(c / g_r², θ / (α ‖D_r‖²))`), the overload
//! step doubling (`OVERLOAD_DOUBLING`) and the large-large penalty
//! `ρ √(f_m f_n)`.
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Findings [1] and [2] are fixed (row weights by the trades'
//! coefficient scale, continuous in it, `ROW_SCALE_REF`; rows of a
//! negligible scale never priced, `ROW_SCALE_NEGLIGIBLE`) and run, as are
//! [4] and [5] (each trade weights the overload damping by its own
//! coefficients, `TRADE_DAMPING_THETA`); [3] is not (see `sss`'s docs).
//! Run it with
//! `cargo test -p gridledger-market --test attack_market_r14 -- --ignored`.
//! The tests that are not ignored are attacks that held up.

mod common;

use common::{flat_feeder, one_rated_line, p};
use gridledger_market::case::Case;
use gridledger_market::clearing::{clear_with, network_for, Algorithm};
use gridledger_market::network::MarketNetwork;
use gridledger_market::problem::{Market, Side};
use gridledger_market::CASE33BW;

/// case30 plus one weak tie between buses 2 and 30 (reactance `x` p.u.,
/// rated 4 kW, `common::weak_tie`): a PTDF row whose every coefficient is
/// small, `≈ 0.69 / x`.
fn weak_tie(x: f64) -> Case {
    common::weak_tie(2, 30, x)
}

/// The largest coefficient of the tie's forward row.
fn tie_g(net: &MarketNetwork) -> f64 {
    let r = net.labels.iter().position(|l| l == "line 2-30 forward").unwrap();
    net.g[r].iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// A near-linear pair across the tie (a 2 MWh buyer at bus 30 bidding
/// 10 $/kWh, a 2 MWh seller at bus 2 asking 9 $/kWh, `a = 10⁻⁵`) and one
/// small seeded-size party on each side; every number within the
/// admission limits.
fn tie_market() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![p(Buyer, 30, 1e-5, 10.0, 0.0, 2000.0), p(Buyer, 29, 0.02, 0.3, 0.0, 3.0)],
        sellers: vec![p(Seller, 2, 1e-5, 9.0, 0.0, 2000.0), p(Seller, 5, 0.015, 0.1, 0.0, 3.0)],
    }
}

// Finding [1] (medium). Expected: primal-dual clears this market within
// 0.1 % of the central optimum inside its own cap, whatever the scale of
// the binding row (the target; `market clear --algorithm
// primal-dual` on such a case file). Observed: with the tie's reactance
// 50 p.u. its row's largest coefficient is 0.0138, just ABOVE
// `ROW_UNIT_FLOOR`, so the row keeps the common weight `c`, and the run
// reaches the 200 000 cap: `NoConvergence` (Clarabel and ALADIN clear it,
// `line 2-30 forward` binding). The iteration count climbs as the row's
// scale approaches the floor from above — x = 2 (g 0.26): 827; x = 5
// (0.12): 2 936; x = 8 (0.080): 15 023; x = 15, 25, 50 (0.044, 0.027,
// 0.014): the 200 000 cap — and falls off a cliff below it: x = 70 (g
// 0.0099, now weighted `c / g²`): 212; x = 100, 130: 211, 207 (the
// test below).
// The native case30 rows (g ≥ 0.19) with the same pair clear in 235. The
// floor is a step where the row's weight jumps by `1/g²` ≈ 10⁴: rows
// between PTDF-share scale and the floor get neither treatment. The
// round-13 near-linear-pair freeze, moved from the feeder's V-min rows to
// a PTDF row of scale 10⁻²..10⁻¹.
// Fixed: every row is weighted by the largest coefficient a trade sees on
// it, continuously (`primal_dual::ROW_SCALE_REF`): 206 iterations here
// (x = 2, 8, 100: 610, 249, 211).
#[test]
fn a_weak_tie_just_above_the_row_floor_clears_within_the_cap() {
    let case = weak_tie(50.0);
    let net = network_for(&case, 1.0).unwrap();
    let g = tie_g(&net);
    assert!(g > 1e-2 && g < 2e-2, "row scale {g}");
    let m = tie_market();
    common::clears_within_the_cap(&m, &net, "line 2-30 forward");
}

// Held up: the same pair with the tie's row just BELOW the floor
// (x = 70, 100, 130: g 0.0099, 0.0069, 0.0053) clears within 0.1 % in
// about 210 iterations.
#[test]
fn a_weak_tie_below_the_row_floor_clears() {
    for x in [70.0, 100.0, 130.0] {
        let case = weak_tie(x);
        let net = network_for(&case, 1.0).unwrap();
        assert!(tie_g(&net) < 1e-2, "x {x}");
        let m = tie_market();
        let central = clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
        assert!(central.binding.iter().any(|b| b == "line 2-30 forward"), "{:?}", central.binding);
        let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(5_000)).expect("primal-dual clears");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "x {x}: {} {}", c.converged, c.relative_gap);
    }
}

/// case33bw with its `baseMVA` replaced (its idiom converts ohms and kW,
/// so the physical feeder is the same) and line 1-2 rated so the market
/// may import `room_kw` through it: the thermal rows' coefficients are
/// `1 / (1000 baseMVA)`, below the floor at 10 MVA and far below at 10⁹.
fn rated(base: &str, room_kw: f64) -> Case {
    let text = CASE33BW.replace("mpc.baseMVA = 10;", &format!("mpc.baseMVA = {base};"));
    let mut c = Case::parse(&text).unwrap();
    let pf = 3.715 + room_kw / 1000.0;
    c.branches[0].rate_a = (pf * pf + 2.3f64 * 2.3).sqrt();
    c
}

// Held up: the same feeder written with baseMVA 10 and 10⁹ (thermal rows
// of 10⁻⁴ and 10⁻¹² per kW; the row tolerance `ROW_TOL_ABS_KW` is in the
// row's own unit, i.e. 1 GW at 10⁹) gives primal-dual the same iteration
// count and the same overload in kW on 8 congested markets (a cheap
// seller at the root, line 1-2 binding): the weights in the row's own
// scale make the iteration scale-invariant, and the run does not stop
// early on the looser tolerance.
#[test]
fn thermal_rows_clear_alike_at_any_base_mva() {
    let buses: Vec<u32> = (2..=33).collect();
    for seed in 0..8u64 {
        let mut m = Market::generate(seed, 3, 3, &buses);
        m.sellers.push(p(Side::Seller, 1, 1e-4 * (1 + seed) as f64, 0.05, 0.0, 200.0));
        let mut seen = Vec::new();
        for (base, kw_per_unit) in [("10", 1e4), ("1000000000", 1e12)] {
            let net = network_for(&rated(base, 5.0), 1.0).unwrap();
            let c = clear_with(&m, &net, Algorithm::PrimalDual, None).expect("primal-dual clears");
            assert!(c.converged && c.relative_gap.abs() <= 1e-3, "seed {seed} base {base}: {}", c.relative_gap);
            let over_kw = c.violation_kw * kw_per_unit;
            assert!(over_kw < 1e-3, "seed {seed} base {base}: line 1-2 over by {over_kw} kW");
            seen.push(c.iterations);
        }
        assert_eq!(seen[0], seen[1], "seed {seed}: iterations at 10 and 1e9 MVA");
    }
}

fn feeder_pair() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![
            p(Buyer, 17, 0.029040049398849355, 0.34665339206769147, 0.0, 3.513741490751718),
            p(Buyer, 6, 0.021718335495608792, 0.2810102668051313, 0.0, 3.327851171166073),
            p(Buyer, 9, 1e-3, 10.0, 0.0, 500.0),
        ],
        sellers: vec![
            p(Seller, 17, 0.013694480513831379, 0.10496441367212289, 0.0, 3.4256565928511282),
            p(Seller, 18, 1e-3, 1.0, 0.0, 500.0),
        ],
    }
}

// Finding [2] (low). Expected: a case file `Case::parse` and `network_for`
// accept either clears under primal-dual within 0.1 % of the reference or
// is refused up front. Observed: case33bw with impedances scaled by
// 10⁻¹⁰⁰ (V-max rows with coefficients ~10⁻¹⁰³ per kW and `h = 0`):
// Clarabel treats the rows as slack within its tolerance (welfare
// 4 254.69 $, every V-max row listed binding) while primal-dual, whose
// row weight `c / g_r²` (≈ 10²⁰⁶ c) enforces `G p ≤ 0` exactly, stops at
// the exactly-binding optimum (welfare 0.577 $) and `clear` refuses it,
// `OffReference` 99.99 % off. At 10⁻¹⁷⁰, `g_r²` underflows to 0, the
// weight and the multiplier step are `inf`, and the run goes to the
// 200 000 cap, `NoConvergence`. A typed error each time, never a wrong
// dispatch; the weight rule and the reference's tolerance disagree on
// what a row of that scale is.
// Fixed: a row whose trade scale is below `ROW_SCALE_NEGLIGIBLE` (10⁻³⁰
// per kW) and whose limit holds at zero injection is never priced
// (weight and step 0), as the reference treats it.
#[test]
fn a_feeder_with_vanishing_impedance_clears() {
    let m = feeder_pair();
    for f in [1e-100, 1e-170] {
        let mut net = network_for(&flat_feeder(f), 1.0).unwrap();
        // the rows' numerics only: impedances far below a real feeder's,
        // whose AC flow cannot be certified, so the feeder's AC check
        // (`feeder_ac`, which refuses such a feeder) is taken off
        net.feeder = None;
        clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
        match clear_with(&m, &net, Algorithm::PrimalDual, None) {
            Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{f}: {} {}", c.converged, c.relative_gap),
            Err(e) => panic!("{f}: observed: {e}"),
        }
    }
}

// Held up: the same flat feeder at its real impedances (V-max rows with no
// headroom, coefficients 10⁻⁶..10⁻⁴ per kW, weighted `c / g²`): primal-
// dual clears within 0.1 % of Clarabel.
#[test]
fn a_flat_feeder_with_no_voltage_headroom_clears() {
    let m = feeder_pair();
    let net = network_for(&flat_feeder(1.0), 1.0).unwrap();
    let c = clear_with(&m, &net, Algorithm::PrimalDual, None).expect("primal-dual clears");
    assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{} {}", c.converged, c.relative_gap);
    assert!(c.binding.iter().any(|b| b.ends_with("V max")), "{:?}", c.binding);
}

// Finding [3] (low; the Shamir baseline is run only on case30 by
// `experiment market-fig-6-3`, never on a feeder). Expected: the SSS
// execution follows the plaintext primal-dual on the 33-bus feeder as it
// does on case30 (`tests/sss.rs`: within 10⁻⁵ kWh after 3 steps), the
// baseline being "the same primal-dual algorithm". Observed: on the flat
// feeder (V-max rows binding) with four small parties, after 5 steps a
// trade in the shares is 3.2 kWh away from the plaintext one (17.18 vs
// 20.39 kWh), 5.5 kWh after 10 steps. The V rows' weights in their own
// scale are `c_r` ≈ 4.7·10¹⁰ and `γ_r` ≈ 1.2·10¹⁰ here (`row_weights`),
// so the fixed-point errors of 2⁻²⁴ in the injections (and of the row
// coefficients 10⁻⁶..10⁻⁴ encoded at 2⁻²⁴, a few % off) are multiplied
// into the line price by up to 10¹⁰. Not the weights alone: with
// `row_unit_floor: 0` (every row weighted by the common `c`) the shares
// are still 0.57 kWh off after 5 steps, so the encoding of the feeder's
// row coefficients at 2⁻²⁴ is at least part of the cause.
#[test]
#[ignore = "attack r14: the SSS baseline departs from the plaintext primal-dual by kWh on the feeder (row weights ~1e10)"]
fn sss_follows_the_plaintext_iteration_on_the_feeder() {
    use gridledger_market::primal_dual::{PdParams, PrimalDual};
    use gridledger_market::sss::{SssParams, SssPrimalDual};
    use Side::{Buyer, Seller};
    let net = network_for(&flat_feeder(1.0), 1.0).unwrap();
    let market = Market {
        buyers: vec![p(Buyer, 6, 0.02, 0.3, 0.0, 3.0), p(Buyer, 9, 0.01, 2.0, 0.0, 30.0)],
        sellers: vec![p(Seller, 2, 0.015, 0.1, 0.0, 3.0), p(Seller, 18, 0.01, 0.2, 0.0, 30.0)],
    };
    let prm = PdParams::for_market(&market);
    let mut pd = PrimalDual::new(&market, &net, prm).unwrap();
    let mut sp = SssPrimalDual::new(&market, &net, prm, SssParams::default()).unwrap();
    for _ in 0..5 {
        pd.step(&market);
        sp.step().unwrap();
    }
    assert!(pd.mu.iter().any(|v| *v > 0.0), "a V row is priced");
    let (x, y, l) = sp.reveal().unwrap();
    for i in 0..4 {
        let (m, n) = (i / 2, i % 2);
        for (got, want) in [(x[i], pd.x_at(m, n)), (y[i], pd.y_at(m, n)), (l[i], pd.lambda_at(m, n))] {
            assert!((got - want).abs() < 1e-3, "trade {i}: shares {got} vs plaintext {want}");
        }
    }
}

// Held up: TEAR-DO (7 enclaves, κ = 3) on the flat feeder (V-max rows with
// no headroom, weighted in their own scale: `c_r` up to ≈ 5·10¹⁰) and on
// the weak tie just above the floor (its row unnormalized) follows the
// fused primal-dual step bit for bit for 100 rounds with a host that feeds
// stale inputs, one that tampers with its ciphertext and one with a bad
// signature, and flags each of them.
#[test]
fn teardo_follows_the_fused_step_under_the_new_weights_with_byzantine_hosts() {
    use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};
    use std::collections::BTreeMap;
    let cases = [
        ("flat feeder", network_for(&flat_feeder(1.0), 1.0).unwrap(), feeder_pair()),
        ("weak tie", network_for(&weak_tie(50.0), 1.0).unwrap(), tie_market()),
    ];
    for (tag, net, m) in &cases {
        for fault in [Fault::WrongInputs, Fault::TamperOutput, Fault::BadSignature] {
            let byz = BTreeMap::from([(2, fault)]);
            let cfg = TearDoConfig { enclaves: 7, kappa: 3, byzantine: byz, strategy: Strategy::Always, seed: 5 };
            let mut tear = TearDo::new_insecure_seeded(m, net, cfg, [3; 32]).unwrap();
            let mut fused = tear.pd.clone();
            let mut prev = [0u8; 32];
            for it in 0..100 {
                let c = tear.step(m, &mut prev);
                let r = fused.step(m);
                assert_eq!(common::bits(&tear.pd), common::bits(&fused), "{tag} {fault:?}: states at {it}");
                assert_eq!(c, r.converged, "{tag} {fault:?}: at {it}");
            }
            assert!(fused.mu.iter().any(|v| *v > 0.0), "{tag}: no row priced");
            let report = tear.report(false);
            assert!(report.detected.iter().any(|(n, _, _)| *n == 2), "{tag} {fault:?}: {:?}", report.detected);
        }
    }
}

// Finding [4] (medium; finding [1] on case30's own lines). Expected: as
// [1]. Observed: a near-linear pair (seller at bus 3 asking 9 $/kWh,
// buyer at bus 4 bidding 10 $/kWh, 2 MWh each, `a = 10⁻⁵`) across line
// 2-5: Clarabel clears it with `line 2-5 forward` binding, primal-dual
// runs to the 200 000 cap, `NoConvergence`. The row is weighted by its
// largest coefficient (0.558, unnormalized), but what the pair's trade
// sees is its difference on the row, `g_3 − g_4` = 0.0171: the damping
// `c_r (g_3 − g_4)²` is as small as on a row of that scale, whatever the
// row's other coefficients. In a scan of case30's rows for the first
// bus pair whose difference lies in 0.015..0.03 (lines 1-2, 1-3, 2-4,
// 3-4, 2-5, 2-6, 4-6, 5-7, each the only rated line at 10 kW), all eight
// pairs reached a 30 000 cap. `ROW_UNIT_FLOOR`'s rule looks at the
// row's largest coefficient; the freeze follows the trade's own. The same
// pair with `a = 10⁻⁴` clears, in 38 594 iterations; with `a = 10⁻⁵` and
// the buyer bidding 9.5 or 12 $/kWh it reaches the cap as well.
// Fixed: the pair's buyer weights the overload damping by the trade's own
// coefficients (`primal_dual::TRADE_DAMPING_THETA`): 3 611 iterations.
#[test]
fn a_near_linear_pair_across_a_small_row_difference_clears_within_the_cap() {
    use Side::{Buyer, Seller};
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let m = Market {
        buyers: vec![p(Buyer, 4, 1e-5, 10.0, 0.0, 2000.0), p(Buyer, 29, 0.02, 0.3, 0.0, 3.0)],
        sellers: vec![p(Seller, 3, 1e-5, 9.0, 0.0, 2000.0), p(Seller, 5, 0.015, 0.1, 0.0, 3.0)],
    };
    common::clears_within_the_cap(&m, &net, "line 2-5 forward");
}

// Finding [5] (medium; [4] on the shipped 33-bus feeder, where every row
// is weighted in its own scale). Expected: as [1]. Observed: a near-linear
// pair on neighbouring buses at the feeder's end (a 10 MWh seller at bus
// 17 asking 9 $/kWh, a 10 MWh buyer at bus 18 bidding 10 $/kWh, `a =
// 10⁻⁵`), plus one small party on each side: Clarabel clears it with `bus
// 18 V min` binding; primal-dual runs to the 200 000 cap,
// `NoConvergence`. Bus 18's row is weighted by its largest coefficient
// (bus 18's own), but the pair's trade sees only the difference between
// buses 17 and 18 on it (the resistance of line 17-18 alone). The same
// pair from bus 16 or 15 clears in about 2 000 and 1 100 iterations, with
// `a = 10⁻⁴` from bus 17 in 28 425; a pair at buses 32 → 33 (`bus 33 V
// min` binding) also reached a 50 000 cap. Four requests, each within
// the admission limits.
// Fixed as [4]: 883 iterations (the pair at 32 → 33: 935).
#[test]
fn a_near_linear_pair_on_neighbouring_feeder_buses_clears_within_the_cap() {
    use Side::{Buyer, Seller};
    let net = common::feeder();
    let m = Market {
        buyers: vec![p(Buyer, 18, 1e-5, 10.0, 0.0, 10000.0), p(Buyer, 29, 0.02, 0.3, 0.0, 3.0)],
        sellers: vec![p(Seller, 17, 1e-5, 9.0, 0.0, 10000.0), p(Seller, 5, 0.015, 0.1, 0.0, 3.0)],
    };
    common::clears_within_the_cap(&m, &net, "bus 18 V min");
}
