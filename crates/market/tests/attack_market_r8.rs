//! Attack round 8 on the market crate (issue 15) by someone who did not
//! write it, after the per-trade penalties and per-party steps of
//! primal-dual (`PdParams::party_steps`, `scaled_gap`), ALADIN's scaled
//! proximal weights, the framework's fallback to the central reference and
//! the sparse LU of the AC power flow.
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r8 -- --ignored`.
//! The tests that are not ignored are attacks that held up.

mod common;

use common::{case30_net, p};
use gridledger_market::central;
use gridledger_market::clearing::{clear, Algorithm};
use gridledger_market::framework::run_interval_insecure_seeded_capped;
use gridledger_market::primal_dual::SCALE_KWH;
use gridledger_market::problem::{Market, Side};
use gridledger_market::teardo::{Fault, Strategy, TearDoConfig};

/// Three sellers in the seeded ranges (a 0.013–0.025, b 5–9 c/kWh,
/// e_max 1.3–3.7 kWh) at buses 4 and 30, and one buyer at bus 24 bidding
/// 32.6 c/kWh with curvature `a`, up to `e_max` kWh. On case30 with its
/// ratings × 10⁻⁴ the lines into bus 24 bind: the buyer's optimal total is
/// interior (about 4 kWh of the sellers' 8.4).
fn behind_a_line(a: f64, e_max: f64) -> Market {
    Market {
        buyers: vec![p(Side::Buyer, 24, a, 0.3260698424975375, 0.0, e_max)],
        sellers: vec![
            p(Side::Seller, 4, 2.0787936678126194e-2, 0.052931281045786774, 0.0, 3.681331553820332),
            p(Side::Seller, 30, 1.2746790222037832e-2, 0.0753075030096425, 0.0, 3.3716349084299617),
            p(Side::Seller, 30, 2.5207622900805568e-2, 0.089021394727443, 0.0, 1.3164916942221812),
        ],
    }
}

// Expected: a market of ordinary requests (every number in the seeded
// ranges, the buyer's curvature 0.02 too, but one buyer's `e_max`: 50 kWh,
// a small business's interval, far inside `MAX_REQUEST_KWH`) clears by
// primal-dual within 0.1 % of the central optimum, as the same market does
// with that buyer at 5 kWh (172 iterations). Observed: crossing
// `SCALE_KWH` gives the buyer's trades the penalty ρ √f = 0.0158 and the
// buyer its own step α_m = 1 / (a_m max(M, N) + 2 max_n ρ_mn) = 10.9
// (against the common 5.69; the sellers keep 5.69), and on the congested
// network the iteration falls into a limit cycle: stepping `PrimalDual`
// directly, its reciprocity residual (0.928 kWh), trade change (0.174) and
// row violation (1.17 kW) read the same at iterations 20 000, 40 000, …,
// 180 000 — no progress at all, not slow progress. It reaches the
// 200 000-iteration cap (~20 s in a test build) and `clear(.., PrimalDual)`
// returns `NoConvergence`. Uncongested (ratings × 1) the 50 kWh buyer
// clears in 57 iterations; a near-flat buyer (a = 4.1·10⁻⁵) cycles already
// at `e_max` 6 kWh. In the framework one such request makes TEAR-DO run all
// 200 000 encrypted rounds of the interval before it clears at the central
// reference (`IntervalOutcome::fallback`): one ordinary prosumer forces the
// fallback, and the full cap, every interval it files in. A random fuzz of
// 40 mixed markets (40 % of parties with e_max 5 kWh–10 MWh and a
// 10⁻⁶–1, case30 ratings × 1, 10⁻³ or 10⁻⁴) had three reach the cap
// (seeds 17, 19, 29 of a ChaCha20 stream; this market is seed 17 reduced).
// Fix: a step rule whose fixed point is stable for mixed steps on
// congested rows (the per-party steps and the per-trade penalties must
// satisfy one joint stability bound with the line terms, not each its
// own), and test the 0.1 % target on congested mixed markets.
// Fixed: the line weights and multiplier steps scale by α / max_m α_m
// (`PdParams::row_weights_for`), one joint bound over all binding rows;
// congested mixed markets are tested in `congested_mixed.rs`.
#[test]

fn a_buyer_just_above_the_reference_scale_behind_a_congested_line_stops_primal_dual() {
    let net = case30_net(1e-4);
    // within the reference scale: the common step, converges
    let small = behind_a_line(0.02, SCALE_KWH);
    let c = clear(&small, &net, Algorithm::PrimalDual).expect("the 5 kWh buyer's market clears");
    assert!(c.converged && c.relative_gap.abs() <= 1e-3);
    assert!(!c.binding.is_empty(), "a line must bind for this test to mean anything");
    for (a, e_max) in [(0.02, 50.0), (4.1204758202162316e-5, 6.0)] {
        let m = behind_a_line(a, e_max);
        let reference = central::solve(&m, &net).expect("the central reference solves the market");
        assert!(reference.welfare.is_finite());
        match clear(&m, &net, Algorithm::PrimalDual) {
            Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "e_max {e_max}: gap {}", c.relative_gap),
            Err(e) => panic!("observed: a {e_max} kWh buyer behind a congested line: {e}"),
        }
    }
}

// Held up: a congested mixed market — seeded 6 × 6 plus four buyers and
// four sellers of 8, 20, 50 and 400 kWh spread over case30, ratings × 10⁻³ —
// clears by primal-dual within 0.1 % of the optimum (1 157 iterations),
// and the nodal settlement balances to the minor unit (buyers = sellers +
// operator) with the wide-range parties' steps.
#[test]
fn a_congested_mixed_market_clears_and_its_settlement_balances() {
    let net = case30_net(1e-3);
    let mut m = Market::generate(7, 6, 6, &net.bus_ids);
    for (k, e) in [8.0, 20.0, 50.0, 400.0].iter().enumerate() {
        m.buyers.push(p(Side::Buyer, net.bus_ids[3 + 5 * k], 0.02, 0.3, 0.0, *e));
        m.sellers.push(p(Side::Seller, net.bus_ids[4 + 5 * k], 0.01, 0.08, 0.0, *e));
    }
    let c = clear(&m, &net, Algorithm::PrimalDual).expect("the mixed market clears");
    assert!(c.converged && c.relative_gap.abs() <= 1e-3, "gap {}", c.relative_gap);
    let s = &c.settlement;
    assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor);
    assert_eq!(s.seller_receives.iter().sum::<i64>() + s.operator_minor, s.total_minor);
    let central = clear(&m, &net, Algorithm::Central).unwrap();
    let close = |x: i64, y: i64| (x - y).abs() as f64 <= 1.0 + 5e-3 * y.abs() as f64;
    for (x, y) in s.buyer_pays.iter().zip(&central.settlement.buyer_pays) {
        assert!(close(*x, *y), "{:?} vs central {:?}", s.buyer_pays, central.settlement.buyer_pays);
    }
}

fn teardo(byzantine: std::collections::BTreeMap<usize, Fault>) -> TearDoConfig {
    TearDoConfig { enclaves: 4, kappa: 2, byzantine, strategy: Strategy::Always, seed: 8 }
}

// Held up (with the cap lowered to keep the test short): a run that reaches
// TEAR-DO's cap clears the interval at the enclaves' central reference with
// a record — the reference's welfare — while the same market within the cap
// clears by TEAR-DO without one. Nobody gains by forcing it: the reference
// is the optimum. (Since the fix of finding [1] the 50 kWh buyer's market
// clears in a few hundred rounds, so a cap of 20 stands in for a cycle.)
#[test]
fn a_run_at_the_cap_falls_back_to_the_reference_and_one_within_it_does_not() {
    let net = case30_net(1e-4);
    for e_max in [SCALE_KWH, 50.0] {
        let m = behind_a_line(0.02, e_max);
        let dir = tempfile::tempdir().unwrap();
        let out =
            run_interval_insecure_seeded_capped(dir.path(), &m, &net, teardo(Default::default()), None, Some(2_000))
                .expect("the market clears");
        assert!(out.fallback.is_none() && out.teardo.converged, "e_max {e_max}: {:?}", out.fallback);
    }
    let big = behind_a_line(0.02, 50.0);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &big, &net, teardo(Default::default()), None, Some(20))
        .expect("the interval clears at the reference");
    let f = out.fallback.as_ref().expect("20 rounds do not clear the market");
    assert_eq!(f.iterations, 20);
    let reference = central::solve(&big, &net).unwrap();
    assert!((out.welfare - reference.welfare).abs() <= 1e-9 * reference.welfare.abs().max(1.0));
}

// Held up: a fallback does not hide an all-Byzantine selection — with every
// enclave Byzantine the run stops before its first round and the interval
// is an error, not a clearing at the reference.
#[test]
fn an_all_byzantine_selection_is_an_error_not_a_fallback() {
    let net = case30_net(1e-4);
    let dir = tempfile::tempdir().unwrap();
    let byz = (0..4).map(|n| (n, Fault::Silent)).collect();
    let big = behind_a_line(0.02, 50.0);
    match run_interval_insecure_seeded_capped(dir.path(), &big, &net, teardo(byz), None, Some(2_000)) {
        Ok(out) => panic!("an all-Byzantine selection cleared: fallback {:?}", out.fallback),
        Err(e) => assert!(e.to_string().contains("converge"), "{e}"),
    }
}

const MINI: &str = "function mpc = mini\nmpc.version = '2';\nmpc.baseMVA = 100;\n\
mpc.bus = [\n 1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;\n 2 1 50 10 0 0 1 1 0 135 1 1.1 0.9;\n 3 1 50 10 0 0 1 1 0 135 1 1.1 0.9;\n];\n\
mpc.gen = [\n 1 0 0 100 -100 1 100 1 200 0;\n];\n\
mpc.branch = [\n 1 2 0.01 0.1 0 0 0 0 0 0 1;\n 2 3 0.01 0.1 0 0 0 0 0 0 1;\n 1 3 0.01 0.1 0 0 0 0 0 0 1;\n];\n";

// Held up: the sparse LU of `grid pf` on degenerate Newton systems the
// parser lets through — an admittance of 10³⁰⁰ p.u. (x = 10⁻³⁰⁰, a tap of
// 10⁻³⁰⁰), shunts and line charging of 10³⁰⁰, a load of 10³⁰⁰ MW — is a
// typed error (singular, non-convergence, numerical), never a panic and
// never an `Ok` with NaN or infinity in it; two parallel branches of
// impedance z and −z (cancelling admittances) solve as the branch open.
#[test]
fn degenerate_newton_systems_are_typed_errors() {
    use gridledger_market::{run_pf, Case, PfOptions};
    let row = " 1 2 0.01 0.1 0 0 0 0 0 0 1;";
    let bad = [
        row.replace("0.01 0.1", "0 1e-300"),
        row.replace("0.1 0 0 0 0 0 0 1", "0.1 0 0 0 0 1e-300 0 1"),
        row.replace("0.1 0 0", "0.1 1e300 0"),
    ];
    let mut texts: Vec<String> = bad.iter().map(|r| MINI.replace(row, r)).collect();
    texts.push(MINI.replace(" 2 1 50 10 0 0", " 2 1 50 10 0 1e300"));
    texts.push(MINI.replace(" 2 1 50 10 0 0", " 2 1 50 10 1e300 0"));
    texts.push(MINI.replace(" 2 1 50 10", " 2 1 1e300 10"));
    for t in &texts {
        let case = Case::parse(t).expect("the parser accepts it");
        let r = std::panic::catch_unwind(|| run_pf(&case, PfOptions::default()));
        match r {
            Err(_) => panic!("run_pf panicked on {t}"),
            Ok(Ok(pf)) => panic!("run_pf returned Ok (min vm {}, loss {}) on {t}", pf.min_vm, pf.loss_mw),
            Ok(Err(_)) => {}
        }
    }
    let open =
        run_pf(&Case::parse(&MINI.replace(row, &row.replace("0.01 0.1", "0 1e300"))).unwrap(), PfOptions::default())
            .unwrap();
    let cancel_text = MINI.replace(row, &format!("{row}\n 1 2 -0.01 -0.1 0 0 0 0 0 0 1;"));
    let cancel = run_pf(&Case::parse(&cancel_text).unwrap(), PfOptions::default()).unwrap();
    assert!((open.min_vm - cancel.min_vm).abs() < 1e-9 && (open.loss_mw - cancel.loss_mw).abs() < 1e-6);
}
