//! The Shamir-secret-sharing baseline: its protocols open what they should,
//! its primal-dual iteration follows the plaintext one, and a Byzantine
//! executor's share aborts the run.

use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::sss::{decode, encode, Engine, SssError, SssParams, SssPrimalDual, F_BITS};
use gridledger_market::{Case, DcModel, CASE30};

fn engine() -> Engine {
    Engine::new(3, 1, 7).unwrap()
}

fn share(e: &mut Engine, v: &[f64]) -> gridledger_market::sss::SVec {
    let enc: Vec<_> = v.iter().map(|x| encode(*x).unwrap()).collect();
    e.input(99, &enc)
}

#[test]
fn arithmetic_comparison_and_truncation_on_shares() {
    let mut e = engine();
    let a = share(&mut e, &[1.5, -2.25, 0.0, 3.0, -1e-6]);
    let b = share(&mut e, &[2.0, 0.5, 7.0, -0.125, 1.0]);
    let sum = e.open_fixed(&a.add(&b)).unwrap();
    assert_eq!(sum, vec![3.5, -1.75, 7.0, 2.875, decode(&encode(-1e-6).unwrap()) + 1.0]);
    let prod = e.mul_fixed(&a, &b).unwrap();
    let p = e.open_fixed(&prod).unwrap();
    let ulp = 1.0 / (1u64 << F_BITS) as f64;
    for (got, want) in p.iter().zip([3.0, -1.125, 0.0, -0.375, -1e-6]) {
        assert!((got - want).abs() <= 2.0 * ulp, "{got} vs {want}");
    }
    let neg = e.ltz(&a).unwrap();
    let bits: Vec<u64> =
        e.open(&neg).unwrap().iter().map(|s| u64::from(*s == <blstrs::Scalar as ff::Field>::ONE)).collect();
    assert_eq!(bits, vec![0, 1, 0, 0, 1]);
    let relu = e.relu(&a).unwrap();
    assert_eq!(e.open_fixed(&relu).unwrap()[..4], [1.5, 0.0, 0.0, 3.0]);
    let s = e.stats;
    assert!(s.rounds > 0 && s.comparisons == 10 && s.multiplications > 0 && s.truncations == 5, "{s:?}");
}

#[test]
fn oblivious_projection_matches_the_plaintext_projection() {
    let mut e = engine();
    let v = share(&mut e, &[3.0, -1.0, 2.0, 0.5, 0.2, 0.3, 0.1, -0.4]);
    let caps = share(&mut e, &[2.0, 5.0]);
    let groups = vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]];
    let x = e.project(&v, &groups, &caps, 64.0).unwrap();
    let got = e.open_fixed(&x).unwrap();
    let mut row0 = vec![3.0, -1.0, 2.0, 0.5];
    let mut row1 = vec![0.2, 0.3, 0.1, -0.4];
    gridledger_market::primal_dual::project_capped(&mut row0, 0.0, 2.0);
    gridledger_market::primal_dual::project_capped(&mut row1, 0.0, 5.0);
    for (g, w) in got.iter().zip(row0.iter().chain(&row1)) {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {row0:?} {row1:?}");
    }
}

fn small_market() -> (Market, MarketNetwork) {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    let market = Market::generate(3, 2, 2, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    (market, net)
}

#[test]
fn shamir_iterations_follow_the_plaintext_primal_dual() {
    let (market, net) = small_market();
    let prm = PdParams::for_market(&market);
    let mut pd = PrimalDual::new(&market, &net, prm).unwrap();
    let mut sp = SssPrimalDual::new(&market, &net, prm, SssParams::default()).unwrap();
    for _ in 0..3 {
        pd.step(&market);
        let s = sp.step().unwrap();
        assert!(!s.converged && s.unconverged > 0);
    }
    let (x, y, l) = sp.reveal().unwrap();
    assert!((0..4).any(|i| pd.x_at(i / 2, i % 2) > 1e-3), "the iteration moved");
    for i in 0..4 {
        let (m, n) = (i / 2, i % 2);
        for (got, want) in [(x[i], pd.x_at(m, n)), (y[i], pd.y_at(m, n)), (l[i], pd.lambda_at(m, n))] {
            assert!((got - want).abs() < 1e-5, "shares {got} vs plaintext {want}");
        }
    }
    assert!(sp.engine.stats.comparisons > 0 && sp.engine.stats.rounds > 100);
}

#[test]
fn oblivious_projection_with_lower_bounds_matches_the_plaintext_projection() {
    let mut e = engine();
    // group 0: the clamped sum 1.3 is below its lower bound 2 (τ < 0);
    // group 1: 5.5 is above its cap 4 (τ > 0); group 2: within [0.5, 9] (τ = 0)
    let rows = [[0.6, -1.0, 0.7, -0.3], [3.0, 2.5, -0.5, 0.0], [1.0, 0.25, -0.125, 2.0]];
    let (lows, caps) = ([2.0, 1.0, 0.5], [3.0, 4.0, 9.0]);
    let v = share(&mut e, rows.as_flattened());
    let lo = share(&mut e, &lows);
    let hi = share(&mut e, &caps);
    let groups = vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10, 11]];
    let x = e.project_bounded(&v, &groups, Some(&lo), &hi, 64.0).unwrap();
    let got = e.open_fixed(&x).unwrap();
    for (g, row) in rows.iter().enumerate() {
        let mut want = row.to_vec();
        gridledger_market::primal_dual::project_capped(&mut want, lows[g], caps[g]);
        for (k, w) in want.iter().enumerate() {
            assert!((got[4 * g + k] - w).abs() < 1e-6, "group {g}: {got:?} vs {want:?}");
        }
    }
    // the lower bound was binding: group 0 sums to it, above its clamped sum
    let total0: f64 = got[..4].iter().sum();
    assert!((total0 - 2.0).abs() < 1e-5, "{total0}");
}

#[test]
fn shamir_iterations_follow_the_plaintext_primal_dual_with_lower_bounds() {
    let (mut market, net) = small_market();
    // a seller's first step offers nothing (no price yet): its lower bound binds
    market.sellers[0].e_min = 0.5;
    market.buyers[1].e_min = 0.9 * market.buyers[1].e_max;
    let prm = PdParams::for_market(&market);
    let mut pd = PrimalDual::new(&market, &net, prm).unwrap();
    let mut sp = SssPrimalDual::new(&market, &net, prm, SssParams::default()).unwrap();
    pd.step(&market);
    let seller0: f64 = (0..2).map(|m| pd.y_at(m, 0)).sum();
    assert!((seller0 - 0.5).abs() < 1e-9, "the lower bound binds in the plaintext run: {seller0}");
    sp.step().unwrap();
    for _ in 0..2 {
        pd.step(&market);
        sp.step().unwrap();
    }
    let (x, y, l) = sp.reveal().unwrap();
    for i in 0..4 {
        let (m, n) = (i / 2, i % 2);
        for (got, want) in [(x[i], pd.x_at(m, n)), (y[i], pd.y_at(m, n)), (l[i], pd.lambda_at(m, n))] {
            assert!((got - want).abs() < 1e-5, "shares {got} vs plaintext {want}");
        }
    }
    // the Shamir run kept seller 0's lower bound too
    assert!(y[0] + y[2] >= 0.5 - 1e-5, "{y:?}");
}

#[test]
fn a_byzantine_executor_aborts_the_run() {
    let (market, net) = small_market();
    let prm = PdParams::for_market(&market);
    let mut sp = SssPrimalDual::new(&market, &net, prm, SssParams::default()).unwrap();
    sp.step().unwrap();
    sp.engine.byzantine = Some(2);
    assert!(matches!(sp.step(), Err(SssError::Inconsistent { .. })));
    let mut e = engine();
    let a = share(&mut e, &[1.0]);
    e.byzantine = Some(0);
    assert!(matches!(e.open(&a), Err(SssError::Inconsistent { index: 0 })));
}

#[test]
fn refused_configurations() {
    assert!(matches!(Engine::new(2, 1, 0), Err(SssError::TooFewExecutors { .. })));
    let (mut market, net) = small_market();
    let prm = PdParams::for_market(&market);
    market.buyers[0].e_max = 40.0;
    assert!(matches!(
        SssPrimalDual::new(&market, &net, prm, SssParams::default()),
        Err(SssError::AboveBound { index: 0, .. })
    ));
    assert!(matches!(encode(f64::NAN), Err(SssError::OutOfRange(_))));
    assert!(matches!(encode(1e30), Err(SssError::OutOfRange(_))));
}
