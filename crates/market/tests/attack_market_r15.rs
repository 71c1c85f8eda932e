//! Attack round 15 on the market crate (issue 15), after the row weights
//! by the trades' coefficient scale (`ROW_SCALE_REF`, `ROW_SCALE_SPREAD`,
//! `ROW_SCALE_NEGLIGIBLE`).
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r15 -- --ignored`.
//! The tests that are not ignored are attacks that held up.

mod common;

use common::{case30_net, p};
use gridledger_market::case::Case;
use gridledger_market::clearing::{clear_with, network_for, Algorithm};
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::{Market, Side};
use gridledger_market::CASE33BW;

/// Iterations of primal-dual on `m` under `prm` (None: the cap).
fn pd_iters(m: &Market, net: &gridledger_market::network::MarketNetwork, prm: PdParams) -> Option<usize> {
    let mut pd = PrimalDual::new(m, net, prm).unwrap();
    pd.run(m).map(|_| pd.iterations)
}

// Survey (prints, asserts nothing but that the run is consistent): seeded
// markets on congested case30 at sizes the round-15 rule touches (rows
// whose trade scale falls below 0.3 when few buses are placed), default
// weights vs `row_scale_ref` 0 (every case30 row weighted by `c`, the rule
// before the change for case30, whose rows all have g >= 0.19).
#[test]
#[ignore = "survey: prints iteration counts, run by hand"]
fn survey_seeded_markets() {
    let sizes: Vec<usize> =
        std::env::var("R15_SIZES").ok().map(|v| v.split(',').map(|s| s.parse().unwrap()).collect()).unwrap_or(vec![1, 2, 3]);
    let seeds: std::ops::Range<u64> = {
        let a: u64 = std::env::var("R15_FROM").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
        let b: u64 = std::env::var("R15_TO").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
        a..b
    };
    let scale: f64 = std::env::var("R15_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1e-4);
    let cap: usize = std::env::var("R15_CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let net = case30_net(scale);
    for k in sizes {
        for seed in seeds.clone() {
            let m = Market::generate(seed, k, k, &net.bus_ids);
            let new = pd_iters(&m, &net, PdParams { max_iter: cap, ..PdParams::for_market(&m) });
            let old = pd_iters(&m, &net, PdParams { max_iter: cap, row_scale_ref: 0.0, ..PdParams::for_market(&m) });
            let flag = match (new, old) {
                (None, Some(_)) => " <<< REGRESSION",
                (Some(a), Some(b)) if a > 4 * b + 200 => " <<< slower",
                _ => "",
            };
            println!("{k}x{k} seed {seed}: new {new:?} old {old:?}{flag}");
        }
    }
}

/// case33bw with every impedance scaled by `f` and no loads, `Vmax` 1.0
/// p.u. (V-max rows with no headroom).
fn flat_feeder(f: f64) -> Case {
    let mut c = Case::parse(CASE33BW).unwrap();
    for b in &mut c.branches {
        b.r *= f;
        b.x *= f;
    }
    for b in &mut c.buses {
        b.pd = 0.0;
        b.qd = 0.0;
        b.vmax = 1.0;
    }
    c
}

fn feeder_pair() -> Market {
    use Side::{Buyer, Seller};
    Market {
        buyers: vec![p(Buyer, 17, 0.029, 0.35, 0.0, 3.5), p(Buyer, 6, 0.022, 0.28, 0.0, 3.3), p(Buyer, 9, 1e-3, 10.0, 0.0, 500.0)],
        sellers: vec![p(Seller, 17, 0.0137, 0.105, 0.0, 3.4), p(Seller, 18, 1e-3, 1.0, 0.0, 500.0)],
    }
}

// Probe: rows between ROW_SCALE_NEGLIGIBLE and physical scale (impedances
// scaled so the V-max rows are 1e-26..1e-13 per kW, h = 0): the reference
// and primal-dual disagree about such rows; the outcome must be a clearing
// within 0.1 % or a typed error, never a converged result off the optimum.
#[test]
#[ignore = "survey: prints outcomes, run by hand"]
fn survey_feeder_between_negligible_and_physical() {
    let m = feeder_pair();
    for f in [1e-8, 1e-12, 1e-16, 1e-20, 1e-22, 1e-24, 1e-25, 1e-26] {
        let net = network_for(&flat_feeder(f), 1.0).unwrap();
        let central = clear_with(&m, &net, Algorithm::Central, None).map(|c| c.welfare);
        let pd = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000));
        println!(
            "f {f:e}: central {central:?} pd {:?}",
            pd.map(|c| (c.welfare, c.relative_gap, c.iterations, c.converged))
        );
    }
}

// Survey: a near-linear pair (2 MWh each side, a = 1e-5) between every two
// buses of case30 with its ratings scaled by R15_SCALE, plus one small
// party on each side: new weights vs `row_scale_ref` 0. Prints only the
// pairs where the new rule is slower or fails.
#[test]
#[ignore = "survey: prints iteration counts, run by hand"]
fn survey_pairs() {
    use Side::{Buyer, Seller};
    let scale: f64 = std::env::var("R15_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1e-2);
    let cap: usize = std::env::var("R15_CAP").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let small: bool = std::env::var("R15_SMALL").is_ok();
    let net = case30_net(scale);
    let mut n = 0;
    for bb in 1..=30u32 {
        for sb in 1..=30u32 {
            if bb == sb {
                continue;
            }
            let mut m = Market {
                buyers: vec![p(Buyer, bb, 1e-5, 10.0, 0.0, 2000.0)],
                sellers: vec![p(Seller, sb, 1e-5, 9.0, 0.0, 2000.0)],
            };
            if small {
                m.buyers.push(p(Buyer, 29, 0.02, 0.3, 0.0, 3.0));
                m.sellers.push(p(Seller, 5, 0.015, 0.1, 0.0, 3.0));
            }
            let new = pd_iters(&m, &net, PdParams { max_iter: cap, ..PdParams::for_market(&m) });
            let old = pd_iters(&m, &net, PdParams { max_iter: cap, row_scale_ref: 0.0, ..PdParams::for_market(&m) });
            n += 1;
            let bad = match (new, old) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => a > 3 * b + 200,
                _ => false,
            };
            if bad || new.is_none() {
                println!("pair {bb}->{sb}: new {new:?} old {old:?}");
            }
        }
    }
    println!("{n} pairs");
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
#[test]
#[ignore = "attack r15: feeder rows of 1e-20..1e-30 per kW: central treats them as slack, primal-dual enforces them, OffOptimum"]
fn a_feeder_with_rows_just_above_the_negligible_scale_clears() {
    let m = feeder_pair();
    let mut seen = Vec::new();
    for f in [1e-16, 1e-20, 1e-24, 1e-26] {
        let net = network_for(&flat_feeder(f), 1.0).unwrap();
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
        let net = network_for(&flat_feeder(f), 1.0).unwrap();
        let c = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000)).expect("primal-dual clears");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "f {f:e}: {}", c.relative_gap);
    }
}

// Probe: negative headroom on rows of a negligible or tiny scale (V-max
// 0.999 p.u. with no loads: every V-max row violated at zero injection,
// by an amount no trade can change).
#[test]
#[ignore = "survey: prints outcomes, run by hand"]
fn survey_negative_headroom() {
    let m = feeder_pair();
    for f in [1.0, 1e-20, 1e-40, 1e-100, 1e-200] {
        let mut case = flat_feeder(f);
        for b in &mut case.buses {
            b.vmax = 0.999;
        }
        let net = match network_for(&case, 1.0) {
            Ok(n) => n,
            Err(e) => {
                println!("f {f:e}: network refused {e}");
                continue;
            }
        };
        let central = clear_with(&m, &net, Algorithm::Central, None).map(|c| c.welfare);
        let pd = clear_with(&m, &net, Algorithm::PrimalDual, Some(30_000));
        let raw = PrimalDual::new(&m, &net, PdParams { max_iter: 5_000, ..PdParams::for_market(&m) }).map(|mut pd| {
            let r = pd.run(&m);
            (r, pd.iterations, m.welfare(&pd.settled()))
        });
        println!(
            "f {f:e}: central {central:?} pd {:?} raw {raw:?}",
            pd.map(|c| (c.welfare, c.relative_gap, c.iterations, c.converged))
        );
    }
}
