//! Attack round 13 on the market crate (issue 15), after primal-dual's
//! per-trade steps for markets with a party beyond `E₀`
//! (`PartySteps::per_trade`, `weighted_tau`), the congested cap only on
//! trades that load a row, and the overload multiplier step
//! (`OVERLOAD_BOOST` after `OVERLOAD_WAIT` iterations). Both findings are
//! fixed (`OVERLOAD_DOUBLING`; `ROW_UNIT_FLOOR`).
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r13 -- --ignored`.
//! The tests that are not ignored are attacks that held up.

mod common;

use common::{bits, case30_net, p, task_step, Mix};
use gridledger_market::clearing::{clear_with, Algorithm};
use gridledger_market::primal_dual::{weighted_tau, PdParams, PrimalDual};
use gridledger_market::problem::{Market, Side};

fn unit(r: &mut Mix) -> f64 {
    (r.next() >> 11) as f64 / (1u64 << 53) as f64
}

/// A fuzzed market: `Market::generate`'s small parties plus `k` large
/// ones (e_max beyond E₀) on random buses, every number within the
/// framework's admission limits.
fn mixed(seed: u64, buses: &[u32]) -> Market {
    let mut r = Mix(seed);
    let (mm, nn) = (1 + r.next() % 4, 1 + r.next() % 4);
    let mut m = Market::generate(seed, mm as usize, nn as usize, buses);
    let k = 1 + r.next() % 4;
    for _ in 0..k {
        let side = if r.next().is_multiple_of(2) { Side::Buyer } else { Side::Seller };
        let bus = r.pick(buses);
        let a = 10f64.powf(-5.0 + 4.0 * unit(&mut r));
        let e_max = 10f64.powf(0.8 + 3.2 * unit(&mut r));
        let b = match side {
            Side::Buyer => 0.2 + 9.8 * unit(&mut r),
            Side::Seller => 0.05 + 3.0 * unit(&mut r),
        };
        let pr = p(side, bus, a, b, 0.0, e_max);
        match side {
            Side::Buyer => m.buyers.push(pr),
            Side::Seller => m.sellers.push(pr),
        }
    }
    m
}

/// A mixed market on the 33-bus feeder from this round's fuzz: four small
/// seeded parties on each side plus two large buyers (546 and 733 kWh,
/// the second near-linear at 8.19 $/kWh) and one large seller (4 051 kWh
/// at 1.62 $/kWh); every number within the admission limits. At the
/// optimum `bus 18 V min` binds.
fn feeder_mixed() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![
            p(Buyer, 19, 0.029691942238260452, 0.27110446926859166, 0.0, 2.5473664427144076),
            p(Buyer, 8, 0.01567381182607475, 0.32106102236811085, 0.0, 2.8443526928276626),
            p(Buyer, 14, 0.0004135887111162483, 4.658391493208839, 0.0, 546.1918062245641),
            p(Buyer, 11, 4.6573615835797345e-5, 8.190435717007377, 0.0, 732.944092342693),
        ],
        sellers: vec![
            p(Seller, 24, 0.010835380643385704, 0.06738343855540223, 0.0, 1.1101235018173456),
            p(Seller, 16, 0.021544182742674153, 0.05994595228311095, 0.0, 2.0556702725367852),
            p(Seller, 15, 0.01902874841100284, 0.05366854586825307, 0.0, 3.8457760922527235),
            p(Seller, 31, 0.02894234953813949, 0.0633243912425308, 0.0, 2.3747364450819157),
            p(Seller, 19, 0.011261015795547008, 1.6192015395529442, 0.0, 4050.566789764301),
        ],
    }
}

// Expected: primal-dual clears a market with large parties on the 33-bus
// feeder within 0.1 % of the central optimum inside its own cap (the
// issue's target; the longer multiplier step, `OVERLOAD_BOOST`, is meant
// for exactly a multiplier that must climb far behind a row that stays
// overloaded). Observed: `bus 18 V min` (and 15-17) stay priced and
// overloaded by a constant 8.9·10⁻³ from about iteration 2 000 on; the
// near-linear buyer's total sits at 590 kWh (454 at the optimum) and
// moves by 0.3 kWh in 180 000 iterations, while the multipliers climb
// linearly, boosted the whole time (streaks = iterations): `μ` of bus 18
// is 1.2 at iteration 10 000, 12.3 at 100 000, 23.4 at 190 000, and the
// run stops at the 200 000 cap, `NoConvergence` (the settled welfare,
// 1 985 $, lies above the optimum's 1 880 $: the trades violate the
// voltage limit). The voltage rows' coefficients are small, so the
// multipliers the rows need are large and `γ_r · excess`, even ×4, is a
// fixed climb far too slow: the boost is a constant factor, not a rate
// that grows with how long the row has stayed overloaded. In the
// framework the interval runs every round and falls back to the central
// reference; `market clear --case case33bw.m --algorithm primal-dual`
// fails. Three requests (one sender may file 256).
//
// Fixed: the longer step doubles along the overloaded-and-priced streak
// (`OVERLOAD_DOUBLING`); the market clears in 7 614 iterations, and in
// 361 since the V-min rows are weighted in their own scale
// (`ROW_UNIT_FLOOR`, the fix of the pair below).
#[test]
fn large_parties_on_the_feeder_clear_within_the_cap() {
    let net = common::feeder();
    let m = feeder_mixed();
    let central = clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
    assert!(central.binding.iter().any(|b| b == "bus 18 V min"), "{:?}", central.binding);
    match clear_with(&m, &net, Algorithm::PrimalDual, None) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{} {}", c.converged, c.relative_gap),
        Err(e) => panic!("observed: {e}"),
    }
}

/// Seed 9's seeded 3 × 3 market on the feeder (`Market::generate(9, 3, 3,
/// ..)`, written out) plus a near-linear pair (`a = 10⁻⁶`): a 10 MWh buyer
/// at bus 9 bidding 10 $/kWh and a 2 MWh seller at bus 27 asking
/// 9.99 $/kWh; every number within the admission limits.
fn feeder_pair() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![
            p(Buyer, 17, 0.029040049398849355, 0.34665339206769147, 0.0, 3.513741490751718),
            p(Buyer, 6, 0.021718335495608792, 0.2810102668051313, 0.0, 3.327851171166073),
            p(Buyer, 32, 0.028044263214085964, 0.2980418294425408, 0.0, 2.356731661997496),
            p(Buyer, 9, 1e-6, 10.0, 0.0, 10_000.0),
        ],
        sellers: vec![
            p(Seller, 17, 0.013694480513831379, 0.10496441367212289, 0.0, 3.4256565928511282),
            p(Seller, 16, 0.014231843738431303, 0.09967875117803648, 0.0, 1.4962331312265462),
            p(Seller, 15, 0.019226457524872696, 0.13237394566342264, 0.0, 4.716628433745903),
            p(Seller, 27, 1e-6, 9.99, 0.0, 2_000.0),
        ],
    }
}

// Expected: as above. Observed, with two requests only (a near-linear pair
// both beyond `E₀`, so its trade keeps the shrunk penalty
// `ρ_mn = ρ f_m f_n ≈ 5.6·10⁻⁵`): from about iteration 2 000 the seller
// sits at its `e_max` (2 000 kWh; 1 227.6 at the optimum) and the primal
// iterate is frozen — the buyer's total is 2 009.638 kWh at iteration
// 50 000, 100 000 and 150 000 alike (`change` ≈ 10⁻¹⁴) — while the V-min
// rows of buses 13-18 stay priced and overloaded by a constant
// 1.86·10⁻² and their multipliers climb linearly (bus 18: 14.2, 28.7,
// 43.3), boosted the whole time: the sellers' price of the pair's trade
// falls exactly as fast as the line price rises, so the buyer's price of
// it, and with it its copy, stays put (attack round 11's second slow mode,
// which `OVERLOAD_BOOST`'s constant factor does not remove for a row
// whose multiplier must climb this far). The run stops at the 200 000
// cap, `NoConvergence`, with the settled trades violating the voltage
// limit (welfare 110.9 $ against the optimum's 105.7 $).
//
// Still open after the doubling step up (`OVERLOAD_DOUBLING`, which clears
// the mixed market above): the price the pair's trade needs is about
// 0.0067 $/kWh (bus 18's multiplier near 280 at a row coefficient
// difference of ~2.4·10⁻⁵), and the overload stays constant until the
// sellers' price has fallen below the seller's marginal cost at 2 000 kWh,
// so the doubling climbs to five times that (1 443 by iteration 6 000)
// before the row falls within its limit, and the run alternates between
// overloaded and slack streaks to the cap. A doubling every 50 to 2 000
// iterations, and at most 3 to 9 doublings, all reach the cap.
//
// Fixed: the cause was the V-min rows' weight, not the step up. Their
// coefficients are in p.u.² per kW (bus 18's largest, 1.4·10⁻⁴), and the
// common weight `c = 1/(4(M+N))` (tuned for PTDF rows, whose coefficients
// are shares of an injection) gave them no augmented-Lagrangian damping
// (`c_r g_r` moved the pair's price by ~10⁻¹¹ $/kWh per kWh of overload)
// and a multiplier step as small: the doubling climb then overshot bus
// 18's multiplier (about 313 at the optimum) to 3 500-4 700 in each
// overloaded streak and unwound it to 0 in each slack one, a cycle that
// grew (the trade's peaks 1 360, 1 482, 1 606 kWh; 1 227.6 at the
// optimum). A row whose every coefficient is below `ROW_UNIT_FLOOR` is now
// weighted as if divided by its largest one (`c_r = c / g_r²`, still
// bounded by `θ / (α ‖D_r‖²)`): the pair clears in 5 824 iterations.
#[test]
fn a_near_linear_pair_on_the_feeder_clears_within_the_cap() {
    let net = common::feeder();
    let m = feeder_pair();
    let central = clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
    assert!(central.binding.iter().any(|b| b == "bus 18 V min"), "{:?}", central.binding);
    match clear_with(&m, &net, Algorithm::PrimalDual, None) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{} {}", c.converged, c.relative_gap),
        Err(e) => panic!("observed: {e}"),
    }
}

/// The market's tuning with every row weighted by the common `c`
/// (`row_unit_floor` 0, the rule before `ROW_UNIT_FLOOR`): the feeder's
/// V-min rows then stay overloaded past `OVERLOAD_WAIT` and take the
/// longer steps, which the two tests below cross.
fn unnormalized(m: &Market) -> PdParams {
    PdParams { row_scale_ref: 0.0, ..PdParams::for_market(m) }
}

// Held up: on the feeder markets above (per-trade steps, several V-min
// rows boosted at different iterations, rows leaving and re-entering the
// boost; rows unnormalized, `unnormalized`), the fused step and the sans-IO tasks keep the same trades,
// prices, multipliers, counters and reports bit for bit.
#[test]
fn step_and_tasks_agree_across_boosts_on_the_feeder() {
    let net = common::feeder();
    for (tag, m) in [("mixed", feeder_mixed()), ("pair", feeder_pair())] {
        let mut a = PrimalDual::new(&m, &net, unnormalized(&m)).unwrap();
        let mut t = a.clone();
        let (mut boosted, mut resets) = (0usize, 0usize);
        let mut prev: Vec<u32> = a.overload_streaks().to_vec();
        for it in 0..1_500 {
            let ra = a.step(&m);
            let rt = task_step(&mut t, &m);
            assert_eq!(bits(&a), bits(&t), "{tag}: states at iteration {it}");
            assert_eq!(a.overload_streaks(), t.overload_streaks(), "{tag}: counters at iteration {it}");
            assert_eq!(a.mode(), t.mode(), "{tag}: modes at iteration {it}");
            for (x, y) in [(ra.residual, rt.residual), (ra.change, rt.change), (ra.violation, rt.violation)] {
                assert_eq!(x.to_bits(), y.to_bits(), "{tag}: reports at iteration {it}");
            }
            assert_eq!(ra.converged, rt.converged);
            let now = a.overload_streaks();
            boosted += now.iter().filter(|s| **s == gridledger_market::primal_dual::OVERLOAD_WAIT).count();
            resets += prev.iter().zip(now).filter(|(p, n)| **p >= 1 && **n == 0).count();
            prev = now.to_vec();
        }
        assert!(boosted >= 2, "{tag}: rows boosted {boosted}");
        println!("{tag}: boosts {boosted} resets {resets}");
    }
}

// Held up: TEAR-DO (encrypted, signed, exchanged and checked outputs)
// stays on the fused step's path across the first boosts of the feeder
// pair's V-min rows (trades, prices, multipliers and overload counters
// equal after every round) with a host feeding its enclave the previous
// round's inputs (a state with other counters right after a boost), and
// that host is flagged (rows unnormalized, `unnormalized`). (No Byzantine host, a compromised enclave and a
// silent one held up too, in a longer run not kept: 77 s.)
#[test]
fn teardo_follows_the_fused_step_across_boosts_with_byzantine_hosts() {
    use gridledger_market::primal_dual::OVERLOAD_WAIT;
    use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};
    use std::collections::BTreeMap;
    let net = common::feeder();
    let m = feeder_pair();
    for byz in [BTreeMap::from([(1, Fault::WrongInputs)])] {
        let cfg = TearDoConfig { enclaves: 7, kappa: 3, byzantine: byz.clone(), strategy: Strategy::Always, seed: 12 };
        let mut tear = TearDo::new_insecure_seeded(&m, &net, cfg, [7; 32]).unwrap();
        tear.pd = PrimalDual::new(&m, &net, unnormalized(&m)).unwrap();
        let mut fused = tear.pd.clone();
        let mut prev = [0u8; 32];
        for it in 0..1_300 {
            let c = tear.step(&m, &mut prev);
            let r = fused.step(&m);
            assert_eq!(bits(&tear.pd), bits(&fused), "{byz:?}: states at iteration {it}");
            assert_eq!(tear.pd.overload_streaks(), fused.overload_streaks(), "{byz:?}: counters at {it}");
            assert_eq!(c, r.converged);
        }
        assert!(fused.overload_streaks().iter().any(|s| *s > OVERLOAD_WAIT), "{:?}", fused.overload_streaks());
        let report = tear.report(false);
        let node = byz.keys().next().unwrap();
        assert!(report.detected.iter().any(|(n, _, _)| n == node), "{byz:?} not flagged: {:?}", report.detected);
    }
}

// Held up (fix of the pair above): with the feeder's rows weighted in
// their own scale (`ROW_UNIT_FLOOR`, the default tuning), the fused step
// and the sans-IO tasks keep the same trades, prices, multipliers,
// counters and reports bit for bit on both feeder markets, and the row
// weights are the same on both paths (they are chosen in `PrimalDual::new`
// from the market, the network and the tuning alone).
#[test]
fn step_and_tasks_agree_with_normalized_rows_on_the_feeder() {
    let net = common::feeder();
    for (tag, m) in [("mixed", feeder_mixed()), ("pair", feeder_pair())] {
        let mut a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        let mut t = a.clone();
        for it in 0..1_500 {
            let ra = a.step(&m);
            let rt = task_step(&mut t, &m);
            assert_eq!(bits(&a), bits(&t), "{tag}: states at iteration {it}");
            assert_eq!(a.overload_streaks(), t.overload_streaks(), "{tag}: counters at iteration {it}");
            assert_eq!(a.slack_streaks(), t.slack_streaks(), "{tag}: counters at iteration {it}");
            assert_eq!(a.mode(), t.mode(), "{tag}: modes at iteration {it}");
            for (x, y) in [(ra.residual, rt.residual), (ra.change, rt.change), (ra.violation, rt.violation)] {
                assert_eq!(x.to_bits(), y.to_bits(), "{tag}: reports at iteration {it}");
            }
            assert_eq!(ra.converged, rt.converged);
        }
        assert!(a.mu.iter().any(|v| *v > 0.0), "{tag}: no row priced");
    }
}

// Held up: on 16 fuzzed case30 markets mixing small seeded parties with
// one to four large ones (per-trade steps; half with rows binding),
// primal-dual clears within 0.1 % of the central optimum and the
// settlement balances in the ledger's integers: Σ payments = Σ receipts +
// the operator's share, Σ buyer Wh = Σ seller Wh = the energy, and no
// party's settled Wh above its own cap. (400 such markets in this round's
// fuzz all cleared within the cap; the slowest needed 42 792 iterations.)
#[test]
fn fuzzed_mixed_markets_clear_and_their_settlements_balance() {
    for seed in 0..16u64 {
        let scale = [1.0, 1e-3, 5e-4, 2e-4][(seed % 4) as usize];
        let net = case30_net(scale);
        let m = mixed(seed, &net.bus_ids);
        assert!(m.buyers.iter().chain(&m.sellers).any(|p| p.e_max > 5.0), "seed {seed}: no large party");
        let c = clear_with(&m, &net, Algorithm::PrimalDual, None).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "seed {seed}: gap {}", c.relative_gap);
        let s = &c.settlement;
        let pays: i64 = s.buyer_pays.iter().sum();
        let gets: i64 = s.seller_receives.iter().sum();
        assert_eq!(pays, s.total_minor, "seed {seed}");
        assert_eq!(gets + s.operator_minor, s.total_minor, "seed {seed}");
        let (bw, sw): (u64, u64) = (s.buyer_wh.iter().sum(), s.seller_wh.iter().sum());
        assert!(bw == sw && bw == s.energy_wh, "seed {seed}: {bw} {sw} {}", s.energy_wh);
        for (p, wh) in m.buyers.iter().zip(&s.buyer_wh).chain(m.sellers.iter().zip(&s.seller_wh)) {
            assert!(*wh <= gridledger_market::units::cap_wh(p.e_max), "seed {seed}: {wh} Wh over {}", p.e_max);
        }
    }
}

// Held up: the projection in the steps' metric at its edges (every value
// negative with a positive lower bound, an upper bound of 0, weights 10¹⁰
// apart, one coordinate): `Σ max(0, v − w τ)` meets the bound it was
// asked for, to rounding of the inputs' size.
#[test]
fn the_weighted_projection_meets_its_bounds_at_the_edges() {
    let cases: [(&[f64], &[f64], f64, f64); 6] = [
        (&[-3.0, -1.0, -7.0], &[1.0, 3.0, 0.5], 2.0, 10.0),
        (&[5.0, 1.0, -2.0], &[1.0, 1.0, 1.0], 0.0, 0.0),
        (&[1e4, 1e-3, 3.0], &[1e-6, 1e4, 1.0], 0.0, 1e-3),
        (&[1e4, 1e-3, 3.0], &[1e-6, 1e4, 1.0], 5e4, 6e4),
        (&[-1.0], &[1e-3], 4.0, 4.0),
        (&[0.0, 0.0, 0.0], &[1.0, 2.0, 3.0], 1.0, 1.0),
    ];
    for (v, w, lo, hi) in cases {
        let tau = weighted_tau(v, w, lo, hi);
        assert!(tau.is_finite(), "{v:?} {w:?}: tau {tau}");
        let s: f64 = v.iter().zip(w).map(|(v, w)| (v - w * tau).max(0.0)).sum();
        let scale = v.iter().fold(1.0f64, |m, x| m.max(x.abs())).max(hi);
        assert!(s >= lo - 1e-12 * scale && s <= hi + 1e-12 * scale, "{v:?} {w:?} [{lo}, {hi}]: sum {s} (tau {tau})");
    }
}
