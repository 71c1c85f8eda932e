//! The clearing problem's inputs: seeded generator and refused parameters.

use gridledger_market::problem::{Market, MarketError, Side};

const BUSES: [u32; 3] = [1, 2, 3];

#[test]
fn generator_is_seeded_and_in_range() {
    let a = Market::generate(7, 12, 12, &BUSES);
    assert_eq!(a, Market::generate(7, 12, 12, &BUSES));
    assert_ne!(a, Market::generate(8, 12, 12, &BUSES));
    assert_eq!((a.buyers.len(), a.sellers.len()), (12, 12));
    for p in &a.buyers {
        assert_eq!(p.side, Side::Buyer);
        assert!((0.25..0.35).contains(&p.b) && (0.01..0.03).contains(&p.a) && (1.0..5.0).contains(&p.e_max));
        assert!(BUSES.contains(&p.bus));
    }
    for p in &a.sellers {
        assert!((0.05..0.15).contains(&p.b));
    }
    assert_eq!(a.validate(&BUSES), Ok(()));
}

#[test]
fn welfare_is_utility_minus_cost() {
    let m = Market::generate(1, 1, 1, &BUSES);
    let (b, s) = (&m.buyers[0], &m.sellers[0]);
    let e = 1.5;
    let want = (b.b * e - 0.5 * b.a * e * e) - (s.b * e + 0.5 * s.a * e * e);
    assert!((m.welfare(&[vec![e]]) - want).abs() < 1e-12);
    assert_eq!(m.welfare(&[vec![0.0]]), 0.0);
}

#[test]
fn bad_parameters_are_refused_with_typed_errors() {
    let good = Market::generate(3, 2, 2, &BUSES);
    let mut m = good.clone();
    m.buyers[1].b = f64::NAN;
    assert!(matches!(
        m.validate(&BUSES),
        Err(MarketError::BadParameter { side: Side::Buyer, index: 1, field: "b", .. })
    ));
    let mut m = good.clone();
    m.sellers[0].e_max = -1.0;
    assert!(matches!(
        m.validate(&BUSES),
        Err(MarketError::BadParameter { side: Side::Seller, index: 0, field: "e_max", .. })
    ));
    let mut m = good.clone();
    m.sellers[1].a = 0.0;
    assert!(matches!(m.validate(&BUSES), Err(MarketError::NotStrictlyConcave { index: 1, .. })));
    let mut m = good.clone();
    m.buyers[0].e_min = m.buyers[0].e_max + 1.0;
    assert!(matches!(m.validate(&BUSES), Err(MarketError::InfeasibleBounds { index: 0, .. })));
    let mut m = good.clone();
    for p in &mut m.buyers {
        p.e_min = p.e_max;
    }
    for p in &mut m.sellers {
        p.e_max = 0.1;
    }
    assert!(matches!(m.validate(&BUSES), Err(MarketError::InfeasibleTotals { .. })));
    let mut m = good.clone();
    m.buyers[0].bus = 99;
    assert!(matches!(m.validate(&BUSES), Err(MarketError::UnknownBus { bus: 99, .. })));
    let mut m = good;
    m.sellers.clear();
    assert_eq!(m.validate(&BUSES), Err(MarketError::Empty));
}

#[test]
fn bound_excess_measures_each_prosumer_against_its_own_bounds() {
    let mut m = Market::generate(1, 2, 2, &BUSES);
    m.buyers[1].e_min = 1.0;
    m.buyers[1].e_max = 2.0;
    for s in m.sellers.iter_mut() {
        s.e_max = 1e6; // a huge request loosens nobody else's tolerance
    }
    // buyer 1 short of its minimum by 0.5 kWh: named, with the shortfall
    let short = vec![vec![0.0, 0.0], vec![0.25, 0.25]];
    let (side, index, beyond) = m.bound_excess(&short).expect("a 0.5 kWh shortfall is a violation");
    assert_eq!((side, index), (Side::Buyer, 1));
    assert!((beyond - 0.5).abs() < 1e-12);
    // within 1 Wh + 1e-4 e_max of the bounds: feasible
    let close = vec![vec![0.0, 0.0], vec![0.4996, 0.5]];
    assert_eq!(m.bound_excess(&close), None);
    // above e_max by 0.1 kWh: named
    let over = vec![vec![0.0, 0.0], vec![1.05, 1.05]];
    assert_eq!(m.bound_excess(&over).map(|v| (v.0, v.1)), Some((Side::Buyer, 1)));
}
