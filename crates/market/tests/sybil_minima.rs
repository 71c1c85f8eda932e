//! Sybil minima behind one congested line (issue 15, minima relief): many
//! small hidden minima, each feasible on its own, that together overload
//! one line. `framework::relieve_minima` promises rules "that splitting,
//! reordering or inflating requests cannot steer onto others", and that "a
//! minimum the network cannot carry even alone is capped before any other
//! is touched" (docs/operations.md). Filed as one request of the same total
//! at the same bus, the load behind the line is capped on its own and the
//! honest minima elsewhere are kept whole; split into 50 requests, each
//! one passed the per-request stage and the common level of the last stage
//! fell to the sybils' 0.13 kWh, cutting the honest buyer's 5 kWh and the
//! honest seller's 2 kWh to it. Relief now works on each bus's minima
//! together (per side), so the split changes nothing for other buses.

mod common;

use common::{case30_net, p};
use gridledger_market::central::solve;
use gridledger_market::framework::relieve_minima;
use gridledger_market::problem::{Market, Prosumer, Side};

/// Sybil buyers behind case30's line 9-11 (bus 11, allotted 6.5 kW at
/// limit_scale 1e-4), `count` requests of `each` kWh (e_min = e_max), beside
/// an honest buyer (5 kWh minimum) and an honest seller (2 kWh minimum) at
/// bus 2 and a large seller at bus 2.
fn market(count: usize, each: f64) -> Market {
    let mut buyers = vec![p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0)];
    buyers.extend((0..count).map(|_| p(Side::Buyer, 11, 0.02, 0.3, each, each)));
    Market {
        buyers,
        sellers: vec![p(Side::Seller, 2, 0.02, 0.1, 0.0, 20_000.0), p(Side::Seller, 2, 0.02, 0.1, 2.0, 10.0)],
    }
}

fn minima(v: &[Prosumer]) -> f64 {
    v.iter().map(|p| p.e_min).sum()
}

#[test]
fn fifty_sybil_minima_behind_one_line_leave_the_honest_minima_whole() {
    let net = case30_net(1e-4);
    // the control: one request of the same 10 kWh at bus 11
    let mut one = market(1, 10.0);
    let r = relieve_minima(&mut one, &net).unwrap();
    assert!(r.is_some(), "10 kWh behind a 6.5 kW line is infeasible");
    assert_eq!((one.buyers[0].e_min, one.sellers[1].e_min), (5.0, 2.0), "{r:?}");
    let carried_alone = one.buyers[1].e_min;
    assert!(carried_alone > 6.0 && carried_alone < 6.6, "{carried_alone}");
    // the same 10 kWh split into 50 sybil requests of 0.2 kWh, each
    // feasible alone
    let mut split = market(50, 0.2);
    let mut each_alone = market(1, 0.2);
    assert_eq!(relieve_minima(&mut each_alone, &net).unwrap(), None);
    let r = relieve_minima(&mut split, &net).unwrap();
    assert!(r.is_some(), "50 × 0.2 kWh behind a 6.5 kW line is infeasible");
    assert!(
        split.buyers[0].e_min == 5.0 && split.sellers[1].e_min == 2.0,
        "the honest minima were cut to {} and {} kWh: {r:?}",
        split.buyers[0].e_min,
        split.sellers[1].e_min
    );
    // the sybils together keep what the line carries, as the single
    // request did (to the bisection's resolution), shared equally
    let sybils = minima(&split.buyers[1..]);
    assert!((sybils - carried_alone).abs() < 10.0 / 1024.0, "{sybils} vs {carried_alone}");
    let first = split.buyers[1].e_min;
    assert!(split.buyers[1..].iter().all(|b| b.e_min == first), "equal requests share equally");
    // and the relieved market clears
    assert!(solve(&split, &net).is_ok());
}

// The split cannot move the cut onto a request at another bus in the
// over-demanding-side stage either: 50 sybil buyers of 0.2 kWh at bus 11
// and an honest 5 kWh buyer at bus 2 face 8 kWh of sellers (no line
// binding at limit_scale 1). Per request, the common level was 8/51 kWh
// and the honest buyer kept 0.157 kWh; per bus, bus 11's 10 kWh and bus
// 2's 5 kWh share the 8 kWh at one level (4 kWh each).
#[test]
fn sybil_minima_on_the_over_demanding_side_are_levelled_per_bus() {
    let net = case30_net(1.0);
    let mut buyers = vec![p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0)];
    buyers.extend((0..50).map(|_| p(Side::Buyer, 11, 0.02, 0.3, 0.2, 0.2)));
    let mut m = Market { buyers, sellers: vec![p(Side::Seller, 2, 0.02, 0.1, 0.0, 8.0)] };
    let r = relieve_minima(&mut m, &net).unwrap();
    assert!(r.is_some());
    assert!(m.buyers[0].e_min > 3.99 && m.buyers[0].e_min <= 4.0, "honest buyer kept {} kWh: {r:?}", m.buyers[0].e_min);
    let sybils = minima(&m.buyers[1..]);
    assert!(sybils > 3.99 && sybils <= 4.0, "{sybils}");
    assert!(solve(&m, &net).is_ok());
}
