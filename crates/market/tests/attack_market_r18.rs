//! Attack round 18 on the market crate (issue 15), after the per-trade
//! damping over the overloadable rows only (`overloadable_rows`, the
//! water-filled row budgets) and the certificate sweep with the rounding
//! bound of the settled-rows test (`settled_rows_bound`).
//!
//! The `#[ignore]`d test is a finding (it fails on the code as it stands):
//! `cargo test -p gridledger-market --test attack_market_r18 -- --ignored`.
//! The others are attacks that held up.

mod common;

use common::{p, Mix};
use gridledger_market::clearing::{clear_with, within_gap, Algorithm};
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::PrimalDual;
use gridledger_market::problem::{Market, Side};
use Side::{Buyer, Seller};

/// Two buses (ids 1, 2) and one row `row · p ≤ h`.
fn two_bus(row: Vec<f64>, h: f64) -> MarketNetwork {
    MarketNetwork {
        model: "ptdf",
        bus_ids: vec![1, 2],
        g: vec![row],
        h: vec![h],
        labels: vec!["r".into()],
        feeder: None,
    }
}

/// Buyers at bus 2, sellers at bus 1 (a near-linear pair when `a` is small,
/// and a steeper pair).
fn pair_market(a: f64) -> Market {
    Market {
        buyers: vec![p(Buyer, 2, a, 10.0, 0.0, 200.0), p(Buyer, 2, 0.02, 5.0, 0.0, 20.0)],
        sellers: vec![p(Seller, 1, a, 1.0, 0.0, 200.0), p(Seller, 1, 0.02, 2.0, 0.0, 20.0)],
    }
}

// Finding [1] (low). Expected: the central reference either meets every
// row of the network it is given (within the rows' tolerance) or refuses
// with a typed error. Observed: one row `1e20 p_1 − 1e20 p_2 ≤ 5e20` on
// two buses (the market's flow limited to 2.5 kWh; the primal-dual
// iteration clears exactly that, 2.5 kWh, welfare 22.4375 $):
// `central::solve` returns Ok with 220 kWh traded (welfare 1452 $), the
// row exceeded by 4.35e22 (the solver's tolerance is relative to the
// row's scale). Downstream checks catch it, so no wrong clearing is
// reported — `clear_with(Central)` refuses with "Central's settled trades
// exceed network row r" — but `clear_with(PrimalDual)` refuses the
// correct primal-dual clearing as "PrimalDual stopped after 508
// iterations 9.85e-1 (relative) off the central optimum", blaming the
// algorithm that was right. The same happens from a case file: case33bw
// with no loads and every impedance x 1e15 (V rows up to 1.4e11 per kW;
// the parser accepts any finite impedance) makes the reference break
// `bus 17 V max` by 5e-4 kW. Rows of 1e-300 .. 1e19 held up (below).
// Fixed: `central::solve` checks its answer against every row it was given
// (the rows' own tolerance) and refuses with `ClearError::RowBroken`.
#[test]
fn the_reference_meets_a_row_scaled_by_1e20_or_refuses() {
    let m = pair_market(0.01);
    let net = two_bus(vec![1e20, -1e20], 5e20);
    if let Ok(c) = gridledger_market::central::solve(&m, &net) {
        let (bm, bn) = net.placement(&m).unwrap();
        let inj = net.injections(&bm, &bn, &c.buyer_totals, &c.seller_totals);
        assert_eq!(
            net.row_excess(&inj),
            None,
            "the reference's trades (buyers {:?}) break its row; welfare {}",
            c.buyer_totals,
            c.welfare
        );
    }
}

// Held up: the same two-bus row at every scale from 1e-300 to 1e19 (one
// bus's coefficient or both, a near-linear pair or a steeper one): the
// primal-dual iteration clears within 0.1 % of the reference (rows below
// the absolute tolerance are met by any trade, as the reference finds).
#[test]
fn rows_from_1e_minus_300_to_1e19_clear_alike() {
    for a in [1e-5, 0.01] {
        let m = pair_market(a);
        for s in [1e-300, 1e-150, 1e-20, 1.0, 1e4, 1e8, 1e12, 1e15, 1e17, 1e19] {
            for row in [vec![0.0, -s], vec![s, -s]] {
                let net = two_bus(row.clone(), 5.0 * s);
                let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(20_000))
                    .unwrap_or_else(|e| panic!("a {a} row {row:?}: {e}"));
                assert!(c.converged && c.relative_gap.abs() <= 1e-3, "a {a} row {row:?}: gap {}", c.relative_gap);
            }
        }
    }
}

// Held up: 200 small markets (1-4 parties a side, curvatures 1e-9 .. 1,
// bounds 1 Wh .. 2 MWh, some e_min) on crafted networks of 2-4 buses and
// 1-3 rows (coefficients 0, ±1, 0.5, −0.3, 1e-7, ±0.017, 1e-3; limits 0,
// 1e-9, 1e-3, 2.5, 5, 100 and negative −1e-6, −1): no panic, and every
// clearing `clear_with` reports meets every row (checked here from its
// reported trades) and lies within the accepted gap of the reference.
// (Of the 400 first tried: 107 clear, 111 and 95 refused as infeasible,
// 83 NoConvergence at a cap of 20 000 among near-linear parties, 4
// refused as off the reference: tolerance-exploiting or degenerate
// optima.)
#[test]
fn small_markets_on_crafted_networks_never_clear_wrongly() {
    let mut mix = Mix(18);
    let mut cleared = 0;
    for case in 0..200 {
        let k = 2 + (mix.next() % 3) as usize;
        let rows = 1 + (mix.next() % 3) as usize;
        let (mut g, mut h) = (Vec::new(), Vec::new());
        for _ in 0..rows {
            g.push((0..k).map(|_| mix.pick(&[0.0, 0.0, 1.0, -1.0, 0.5, -0.3, 1e-7, 0.017, -0.017, 1e-3])).collect());
            h.push(mix.pick(&[0.0, 0.0, 5.0, 1e-3, -1.0, 1e-9, 100.0, 2.5, -1e-6]));
        }
        let labels = (0..rows).map(|r| format!("r{r}")).collect();
        let net = MarketNetwork { model: "ptdf", bus_ids: (1..=k as u32).collect(), g, h, labels, feeder: None };
        let (nb, ns) = (1 + (mix.next() % 4) as usize, 1 + (mix.next() % 4) as usize);
        let party = |mix: &mut Mix, side: Side| {
            let a = mix.pick(&[1e-9, 1e-5, 1e-3, 0.02, 1.0]);
            let b = mix.pick(&[0.1, 1.0, 5.0, 9.0, 10.0]);
            let e_max = mix.pick(&[1e-3, 1.0, 3.0, 50.0, 2000.0]);
            let e_min = mix.pick(&[0.0, 0.0, 0.0, 0.5 * e_max]);
            p(side, 1 + (mix.next() % k as u64) as u32, a, b, e_min, e_max)
        };
        let m = Market {
            buyers: (0..nb).map(|_| party(&mut mix, Buyer)).collect(),
            sellers: (0..ns).map(|_| party(&mut mix, Seller)).collect(),
        };
        let r = std::panic::catch_unwind(|| clear_with(&m, &net, Algorithm::PrimalDual, Some(20_000)));
        let Ok(r) = r else { panic!("case {case} panicked: {m:?} {net:?}") };
        if let Ok(c) = r {
            cleared += 1;
            let mut t = vec![vec![0.0; ns]; nb];
            for tr in &c.trades {
                t[tr.buyer][tr.seller] = tr.kwh;
            }
            let (bm, bn) = net.placement(&m).unwrap();
            let (bt, st) = PrimalDual::totals(&t);
            assert_eq!(net.row_excess(&net.injections(&bm, &bn, &bt, &st)), None, "case {case}: {m:?} {net:?}");
            assert!(within_gap(c.optimum, c.welfare), "case {case}: welfare {} optimum {}", c.welfare, c.optimum);
        }
    }
    assert!(cleared >= 40, "only {cleared} of 200 cleared");
}

// Held up: TEAR-DO with no Byzantine host on the two-bus row at scales 1,
// 1e20 and 1e160 (where the damping's products of the row weight and the
// squared coefficient overflow): no honest executor is flagged and no
// settled trade, line multiplier or line price turns non-finite (a NaN in
// an honest output would compare unequal to itself in the executors'
// output comparison).
#[test]
fn teardo_flags_no_honest_executor_at_extreme_row_scales() {
    use gridledger_market::teardo::{Strategy, TearDo, TearDoConfig};
    use std::collections::BTreeMap;
    let m = pair_market(0.01);
    for s in [1.0, 1e20, 1e160] {
        let net = two_bus(vec![s, -s], 5.0 * s);
        let cfg =
            TearDoConfig { enclaves: 10, kappa: 3, byzantine: BTreeMap::new(), strategy: Strategy::Always, seed: 5 };
        let mut t = TearDo::new_insecure_seeded(&m, &net, cfg, [1; 32]).unwrap();
        let mut prev = [0u8; 32];
        for _ in 0..100 {
            t.step(&m, &mut prev);
            assert!(t.pd.settled().iter().flatten().all(|v| v.is_finite()), "s {s:e}");
            assert!(t.pd.mu.iter().chain(&t.pd.line_prices()).all(|v| v.is_finite()), "s {s:e}");
        }
        assert!(t.report(false).detected.is_empty(), "s {s:e}: {:?}", t.report(false).detected);
    }
}

/// Two ordinary buyers and two ordinary sellers on the 33-bus feeder
/// (every party within `E0`, curvatures 0.01-0.02, bids 0.3 and 5 $/kWh).
fn feeder_market() -> Market {
    Market {
        buyers: vec![p(Buyer, 18, 0.02, 5.0, 0.0, 3.0), p(Buyer, 6, 0.02, 0.3, 0.0, 3.0)],
        sellers: vec![p(Seller, 2, 0.015, 0.1, 0.0, 3.0), p(Seller, 17, 0.01, 0.2, 0.0, 3.0)],
    }
}

/// case33bw with no loads, every impedance x `f` and V max 1.05 p.u.
fn weak_feeder(f: f64) -> MarketNetwork {
    let mut c = common::flat_feeder(f);
    for b in &mut c.buses {
        b.vmax = 1.05;
    }
    let mut net = gridledger_market::clearing::network_for(&c, 1.0).unwrap();
    // the rows' numerics only: impedances up to 3·10⁴ times a real
    // feeder's, whose AC flow cannot carry what LinDistFlow lets the
    // market trade, so the feeder's AC check (`feeder_ac`, which refuses
    // such a clearing) is taken off
    net.feeder = None;
    net
}

// Finding [2] (low). Expected: a market the reference clears clears under
// primal-dual within 0.1 % inside its default cap of 200 000 iterations.
// Observed: four ordinary parties (none near-linear, all within `E0`) on
// case33bw with no loads and every impedance x 3e4 (V rows up to 4.1
// p.u.^2 per kW; the reference clears with 11 binding V-min rows):
// `NoConvergence` at 200 000 (x 1e5 the same; x 1e4 clears in 4 840, x
// 3e2 and below in 83). A typed error, not a wrong dispatch, and the
// impedances are far from any real feeder's (the parser accepts any finite
// one); unlike rounds 14 and 16 no near-linear party is involved.
#[test]
#[ignore = "attack r18: four ordinary parties on case33bw with impedances x 3e4 end in NoConvergence at 200 000 (x 1e4 clears in 4 840)"]
fn ordinary_parties_on_a_weak_feeder_clear_within_the_cap() {
    let m = feeder_market();
    let net = weak_feeder(3e4);
    clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
    let c = clear_with(&m, &net, Algorithm::PrimalDual, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.relative_gap.abs() <= 1e-3);
}

// What holds while finding [2] stays open (a known limit, documented in
// the market chapter of the operations guide): the weak feeder's clearing
// ends in the typed `NoConvergence` at the default cap, never in a
// clearing off the reference's.
#[test]
fn ordinary_parties_on_a_weak_feeder_end_in_a_typed_no_convergence() {
    use gridledger_market::clearing::ClearingError;
    let m = feeder_market();
    let net = weak_feeder(3e4);
    clear_with(&m, &net, Algorithm::Central, None).expect("the reference clears");
    match clear_with(&m, &net, Algorithm::PrimalDual, None) {
        Err(ClearingError::NoConvergence { algorithm: Algorithm::PrimalDual, iterations }) => {
            assert_eq!(iterations, 200_000)
        }
        Err(e) => panic!("another error: {e}"),
        Ok(c) => panic!("cleared: converged {} gap {} (un-ignore finding [2] if right)", c.converged, c.relative_gap),
    }
}

// Held up: the same market with impedances x 3 .. x 1e4 clears.
#[test]
fn ordinary_parties_on_feeders_up_to_1e4_times_the_impedance_clear() {
    let m = feeder_market();
    for f in [3.0, 100.0, 1e4] {
        let c = clear_with(&m, &weak_feeder(f), Algorithm::PrimalDual, Some(20_000))
            .unwrap_or_else(|e| panic!("x {f}: {e}"));
        assert!(c.relative_gap.abs() <= 1e-3, "x {f}: gap {}", c.relative_gap);
    }
}

// Held up: rows with limits +inf, -inf, NaN, 1e308, 0 and -5e-324, and
// coefficients inf, NaN, +-1e308, the smallest normal and the smallest
// subnormal: no panic under either algorithm; +-inf, NaN and the 1e308
// coefficients are refused with typed errors (the solver's, or
// NoConvergence), and every clearing returned meets its row.
#[test]
fn non_finite_and_extreme_rows_are_refused_or_met() {
    let m = pair_market(1e-5);
    let rows: Vec<(Vec<f64>, f64)> = vec![
        (vec![1.0, -1.0], f64::INFINITY),
        (vec![1.0, -1.0], f64::NEG_INFINITY),
        (vec![1.0, -1.0], f64::NAN),
        (vec![f64::INFINITY, 0.0], 5.0),
        (vec![f64::NAN, 0.0], 5.0),
        (vec![0.0, 0.0], -1.0),
        (vec![1.0, -1.0], 1e308),
        (vec![1e308, -1e308], 1e308),
        (vec![f64::MIN_POSITIVE, -f64::MIN_POSITIVE], 0.0),
        (vec![5e-324, 0.0], -5e-324),
    ];
    for (row, h) in rows {
        let net = two_bus(row.clone(), h);
        for alg in [Algorithm::PrimalDual, Algorithm::Central] {
            let r = std::panic::catch_unwind(|| clear_with(&m, &net, alg, Some(5_000)));
            let Ok(r) = r else { panic!("{row:?} h {h:e} {alg:?} panicked") };
            if let Ok(c) = r {
                let mut t = vec![vec![0.0; 2]; 2];
                for tr in &c.trades {
                    t[tr.buyer][tr.seller] = tr.kwh;
                }
                let (bm, bn) = net.placement(&m).unwrap();
                let (bt, st) = PrimalDual::totals(&t);
                let inj = net.injections(&bm, &bn, &bt, &st);
                assert_eq!(net.row_excess(&inj), None, "{row:?} h {h:e} {alg:?}");
            }
        }
    }
}
