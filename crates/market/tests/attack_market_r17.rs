//! Attack round 17 on the market crate (issue 15), after the shared
//! per-row budget of the per-trade overload damping
//! (`primal_dual::TRADE_DAMPING_ROW`).

mod common;

use common::{one_rated_line, p};
use gridledger_market::clearing::{clear_with, network_for, Algorithm};
use gridledger_market::network::MarketNetwork;
use gridledger_market::problem::{Market, Side};

fn outcome(m: &Market, net: &MarketNetwork, cap: usize) -> String {
    let central = match clear_with(m, net, Algorithm::Central, None) {
        Ok(c) => c,
        Err(e) => return format!("reference: {e}"),
    };
    match clear_with(m, net, Algorithm::PrimalDual, Some(cap)) {
        Ok(c) if c.converged && c.relative_gap.abs() <= 1e-3 => format!("ok it {}", c.iterations),
        Ok(c) => format!(
            "converged {} gap {} it {} binding {:?}",
            c.converged, c.relative_gap, c.iterations, central.binding
        ),
        Err(e) => format!("{e} (reference binding {:?})", central.binding),
    }
}

fn seeded_with_pair(seed: u64, k: usize, pair: bool) -> Market {
    use Side::{Buyer, Seller};
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let mut m = Market::generate(seed, k, k, &net.bus_ids);
    if pair {
        m.buyers.push(p(Buyer, 4, 1e-5, 10.0, 0.0, 2000.0));
        m.sellers.push(p(Seller, 3, 1e-5, 9.0, 0.0, 2000.0));
    }
    m
}

// Finding [1] (medium). Expected: a market the reference clears (line
// 2-5 forward binding) clears under primal-dual within 0.1 % inside its
// default cap of 200 000 iterations, as it did before the row budget was
// shared. Observed: seed 2's seeded 12 x 12 market (every party within
// `E0` = 5 kWh) plus ONE near-linear pair (buyer at bus 4 bidding 10 $/kWh,
// seller at bus 3 asking 9 $/kWh, `a` = 1e-5, 2 MWh each; 26 requests,
// each within `MAX_REQUEST_PRICE` and `MAX_REQUEST_KWH`) on case30 with
// line 2-5 rated 10 kW: `NoConvergence` at 200 000. With the planted bug
// `TradeDampingUnshared` (each trade's own weight, the rule before the
// shared budget) the same market clears in 6 445 iterations (seed 1's in
// 22 661): the 144 ordinary trades, whose own line curvature is far below
// `T theta` because the row weight is capped for the crowd, each take a
// weight toward `T theta` and so fill the row's budget `B theta`; the
// budget's share `f_r` then takes the near-linear pair's damping away.
// The count grows with the ordinary crowd: k x k seeded parties plus the
// pair (seed 7) 2: 2 867, 4: 4 208, 8: 18 364, 12: the cap; seeds 1 and 2
// at 12 and seeds 1-3 at 24: the 60 000 cap. A typed error, not a wrong
// dispatch: the framework falls back to the central reference.
// Fixed: the row's budget goes to the trades whose whole curvature (their
// own quadratic terms, `α^b a_m + α^s a_n`, plus their line term) is
// smallest, water-filling (`primal_dual::TRADE_DAMPING_ROW`); the ordinary
// trades' own terms already exceed the level, so they draw little or
// nothing: 7 027 iterations (seed 7: 2 878, 3 164, 5 718, 10 527 for k =
// 2, 4, 8, 12; seeds 1-3 at 24: 24 041, 26 277, 50 606).
#[test]
fn one_near_linear_pair_among_ordinary_parties_clears_within_the_cap() {
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    let m = seeded_with_pair(2, 12, true);
    common::clears_within_the_cap(&m, &net, "line 2-5 forward");
}

// Held up: the same ordinary markets without the pair clear in a few
// hundred iterations (also on finding [2]'s network), and with the pair and up to four ordinary parties
// a side they clear well within 20 000.
#[test]
fn ordinary_markets_and_small_ones_with_the_pair_clear() {
    let net = network_for(&one_rated_line(), 1.0).unwrap();
    for k in [4usize, 12] {
        assert!(outcome(&seeded_with_pair(2, k, false), &net, 2_000).starts_with("ok"), "k {k} without the pair");
    }
    for k in [2usize, 4] {
        let o = outcome(&seeded_with_pair(7, k, true), &net, 20_000);
        assert!(o.starts_with("ok"), "k {k} with the pair: {o}");
    }
    // finding [2]'s network (the other lines at their shipped ratings)
    // with ordinary parties alone
    let shipped = network_for(&shipped_with_tight_2_5(), 1.0).unwrap();
    for k in [4usize, 12] {
        let o = outcome(&seeded_with_pair(2, k, false), &shipped, 5_000);
        assert!(o.starts_with("ok"), "k {k} on the shipped ratings: {o}");
    }
}

// Held up: a single large ordinary party (50 or 500 kWh, so steps per
// trade and the per-trade damping run) beside 12 or 25 seeded parties a
// side on congested case30 (every line rated, x 1e-3 and 1e-4); the pair
// of finding [1] beside seeded parties on congested case30 (every line
// rated x 1e-2 and 1e-3: about 400-600 iterations; at x 1e-4 it is slow,
// 21 964 with 4 a side and 28 296 with 12, but the same with the budget
// unshared) and on the 33-bus feeder (buses 17 -> 18, up to 25 a side).
#[test]
fn large_parties_beside_ordinary_crowds_elsewhere_clear() {
    use Side::{Buyer, Seller};
    for scale in [1e-3, 1e-4] {
        let net = common::case30_net(scale);
        let mut m = Market::generate(11, 12, 12, &net.bus_ids);
        m.buyers.push(p(Buyer, 7, 0.02, 0.3, 0.0, 500.0));
        let o = outcome(&m, &net, 20_000);
        assert!(o.starts_with("ok"), "scale {scale:e}: {o}");
    }
    for scale in [1e-2, 1e-3] {
        let net = common::case30_net(scale);
        let mut m = Market::generate(2, 12, 12, &net.bus_ids);
        m.buyers.push(p(Buyer, 4, 1e-5, 10.0, 0.0, 2000.0));
        m.sellers.push(p(Seller, 3, 1e-5, 9.0, 0.0, 2000.0));
        let o = outcome(&m, &net, 20_000);
        assert!(o.starts_with("ok"), "pair, scale {scale:e}: {o}");
    }
    let fd = common::feeder();
    let mut m = Market::generate(2, 16, 16, &fd.bus_ids);
    m.buyers.push(p(Buyer, 18, 1e-5, 10.0, 0.0, 10000.0));
    m.sellers.push(p(Seller, 17, 1e-5, 9.0, 0.0, 10000.0));
    let o = outcome(&m, &fd, 30_000);
    assert!(o.starts_with("ok"), "feeder: {o}");
}

/// case30 as shipped (every line keeps its rating) but line 2-5 rated
/// 0.01 MVA (10 kW).
fn shipped_with_tight_2_5() -> gridledger_market::case::Case {
    let mut c = gridledger_market::case::Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut c.branches {
        if (b.from, b.to) == (2, 5) {
            b.rate_a = 0.01;
        }
    }
    c
}

// Finding [2] (medium). Expected: round 14 [4]'s near-linear pair
// (buyer at bus 4 bidding 10 $/kWh, seller at bus 3 asking 9 $/kWh, `a` =
// 1e-5, 2 MWh each, beside small parties at buses 29 and 5), which the
// per-trade damping clears in 3 611 iterations when line 2-5 (10 kW) is
// case30's only rated line, clears the same when the other lines keep
// their shipped ratings (65-130 MVA, never near binding: the reference
// binds line 2-5 alone). Observed: `NoConvergence` at the 200 000 cap.
// The same with the budget unshared (planted `TradeDampingUnshared`): not
// the sharing but the weight itself, `w_mn = clamp(T theta / kappa_mn, 1,
// W)` with `kappa_mn` summed over EVERY row, the slack ones included: the
// pair sees the loose rows at PTDF scale, so its `kappa_mn` is already
// at `T theta` and it gets `w_mn` = 1, no damping on the one row that
// binds. Rating every other line 100 MVA instead: seeded 2 x 2, 4 x 4
// and 6 x 6 markets with the pair (2 867 - 7 870 iterations with line
// 2-5 the only rated line) all reach a 60 000 cap. A rated but slack line
// elsewhere is the ordinary case (every shipped case rates its lines).
// Fixed: a row no iterate can overload (its limit above the largest flow
// the buyers' bounds allow) never enters the overload damping, so the
// weights neither count it nor are bounded by it
// (`primal_dual::TRADE_DAMPING_ROW`): 3 628 iterations; every other line
// at 100 MVA (below), seed 7's 2 x 2, 4 x 4 and 6 x 6 with the pair: 2 878,
// 3 164 and 8 854.
#[test]
fn a_near_linear_pair_clears_with_the_other_lines_rated() {
    use Side::{Buyer, Seller};
    let net = network_for(&shipped_with_tight_2_5(), 1.0).unwrap();
    let m = Market {
        buyers: vec![p(Buyer, 29, 0.02, 0.3, 0.0, 3.0), p(Buyer, 4, 1e-5, 10.0, 0.0, 2000.0)],
        sellers: vec![p(Seller, 5, 0.015, 0.1, 0.0, 3.0), p(Seller, 3, 1e-5, 9.0, 0.0, 2000.0)],
    };
    common::clears_within_the_cap(&m, &net, "line 2-5 forward");
}

// Finding [2]'s second form (fixed with it): every other line rated 100
// MVA, seeded markets with the pair clear.
#[test]
fn seeded_markets_with_the_pair_clear_with_every_other_line_at_100_mva() {
    let mut c = gridledger_market::case::Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut c.branches {
        b.rate_a = if (b.from, b.to) == (2, 5) { 0.01 } else { 100.0 };
    }
    let net = network_for(&c, 1.0).unwrap();
    for k in [2usize, 4, 6] {
        let mut m = Market::generate(7, k, k, &net.bus_ids);
        m.buyers.push(p(Side::Buyer, 4, 1e-5, 10.0, 0.0, 2000.0));
        m.sellers.push(p(Side::Seller, 3, 1e-5, 9.0, 0.0, 2000.0));
        let o = outcome(&m, &net, 20_000);
        assert!(o.starts_with("ok"), "k {k}: {o}");
    }
}
