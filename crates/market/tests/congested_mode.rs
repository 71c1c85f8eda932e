//! Primal-dual's congested mode (`primal_dual::BUYER_STEP_CAP`): the
//! buyers' steps capped while a line is priced, their own steps back once
//! no line has been for a while, with doubling waits and a bounded number
//! of exits (`PrimalDual::update_mode`'s rule). Attack round 10 found the
//! one-way mode holding an interval with no binding line at the cap; a
//! mode left as soon as the lines were quiet and entered again at once
//! cycled on the markets below.

mod common;

use common::{case30_net, p};
use gridledger_market::clearing::{clear, Algorithm};
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual, CONGESTED_EXITS, CONGESTED_QUIET};
use gridledger_market::problem::{Market, Side};

/// The seeded 3 × 3 market of `seed` plus a near-linear 10 MWh buyer and
/// seller (curvature `a`, bids 10 and 9.99 $/kWh) at model bus `bi`.
fn with_pair(net: &MarketNetwork, seed: u64, bi: usize, a: f64) -> Market {
    let mut m = Market::generate(seed, 3, 3, &net.bus_ids);
    let bus = net.bus_ids[bi];
    m.buyers.push(p(Side::Buyer, bus, a, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, bus, a, 9.99, 0.0, 10_000.0));
    m
}

/// [`with_pair`] with the seller at model bus `si`: the pair's own trade
/// then loads network rows, the one trade the congested mode caps (since
/// attack round 11 a trade with a party within the reference scale keeps
/// the common step, and a trade within one bus loads no row).
fn with_split_pair(net: &MarketNetwork, seed: u64, bi: usize, si: usize, a: f64) -> Market {
    let mut m = with_pair(net, seed, bi, a);
    m.sellers.last_mut().unwrap().bus = net.bus_ids[si];
    m
}

// A line that oscillated: seed 5's market with the pair at bus 10 on
// case30 at ratings × 5·10⁻⁴ (no row binds at the optimum). Under the rule
// of attack round 10 its lines were priced from iteration 0, unpriced,
// priced again (the flat buyer's own steps, shrunk penalties and all, made
// its cross-grid trades overshoot after every exit): the one-way mode left
// it at 20 000 iterations without converging, and a mode left after 100
// quiet iterations but entered again at once switched every ~110
// iterations (333 switches in 20 000, no convergence). Since attack round
// 11 those trades keep the common penalty and step, the pair's own trade
// loads no row, and the mode has nothing to cap here: the run clears
// within 0.1 % in a few hundred iterations without a switch. The pair
// split across buses 10 and 9 at ratings × 10⁻² has a trade to cap: its
// run enters the mode, leaves it, switches a bounded number of times and
// clears within 0.1 %.
#[test]
fn a_line_that_is_priced_again_after_the_mode_is_left_does_not_make_it_cycle() {
    let net = case30_net(5e-4);
    let m = with_pair(&net, 5, 9, 1e-5);
    let central = clear(&m, &net, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    let mut pd = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
    pd.params.max_iter = 20_000;
    assert!(pd.run(&m).is_some(), "not converged in 20 000 iterations: {:?}", pd.mode());
    assert_eq!(pd.mode().switches, 0, "{:?}", pd.mode());
    let c = clear(&m, &net, Algorithm::PrimalDual).expect("primal-dual clears");
    assert!(c.converged && c.relative_gap.abs() <= 1e-3, "gap {}", c.relative_gap);

    let net = case30_net(1e-2);
    let m = with_split_pair(&net, 5, 9, 8, 1e-5);
    let central = clear(&m, &net, Algorithm::Central).expect("the reference clears");
    assert!(central.binding.is_empty(), "no row binds at the optimum: {:?}", central.binding);
    let mut pd = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
    pd.params.max_iter = 20_000;
    let converged = pd.run(&m).is_some();
    let mode = pd.mode();
    assert!(mode.exits >= 1, "the mode was not left: {mode:?}");
    assert!(mode.switches <= 2 * CONGESTED_EXITS + 1, "{mode:?}");
    assert!(converged, "not converged in {} iterations: {mode:?}", pd.iterations);
    let c = clear(&m, &net, Algorithm::PrimalDual).expect("primal-dual clears");
    assert!(c.converged && c.relative_gap.abs() <= 1e-3, "gap {}", c.relative_gap);
}

/// Closes `iters` iterations through [`PrimalDual::apply_operator`] with
/// the operator's multipliers forced to `priced_at(iteration)` (every row
/// at 1 $/kWh, or none; the trades stay put: only the switch rule is
/// exercised); returns the iterations the mode switched on.
fn drive(pd: &mut PrimalDual, m: &Market, iters: usize, priced_at: impl Fn(usize) -> bool) -> Vec<usize> {
    let bp = pd.bus_prices().to_vec();
    let (on, off) = (vec![1.0; pd.mu.len()], vec![0.0; pd.mu.len()]);
    let mut at = vec![];
    let mut last = pd.mode().switches;
    for it in 0..iters {
        pd.apply_operator(m, if priced_at(it) { &on } else { &off }, &bp);
        if pd.mode().switches != last {
            at.push(it);
            last = pd.mode().switches;
        }
    }
    at
}

// The rule alone, under line prices forced to oscillate with periods from
// 2 to 1 700 iterations (priced half the time, or a short priced burst in
// a long quiet spell, or the reverse): with exit `k` waiting for `Q · 2^k`
// quiet iterations in a row and every entry but the first following an
// exit, a line whose quiet spells last `quiet` iterations switches the
// mode at most 2 (⌊log₂(quiet / Q)⌋ + 1) + 1 times however long it keeps
// oscillating, even with the exits unbounded; and with the first wait cut
// to 1 (so that the waits stay shorter than the spells for several
// doublings) the bound of `E` exits is what stops it: 2 E + 1 switches,
// the last into the congested mode, where the unbounded rule goes on.
#[test]
fn an_oscillating_line_price_switches_the_mode_a_bounded_number_of_times() {
    let net = case30_net(1e-3);
    let m = with_split_pair(&net, 5, 2, 3, 1e-5);
    let base = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
    let q = CONGESTED_QUIET as usize;
    let spells =
        [2usize, 150, 401, 1_700].into_iter().flat_map(|p| [(p, p / 2), (p, 1.max(p / 10)), (p, p - 1.max(p / 10))]);
    for (period, on) in spells {
        let iters = (6 * period).clamp(2_000, 12_000);
        let priced = |it: usize| it % period < on;
        for exits in [CONGESTED_EXITS, u32::MAX] {
            let mut pd = base.clone();
            pd.params.congested_exits = exits;
            let at = drive(&mut pd, &m, iters, priced);
            assert_eq!(at.first(), Some(&0), "period {period}: the first priced iteration enters the mode");
            let quiet = period - on;
            let most = if quiet >= q { (quiet as f64 / q as f64).log2().floor() as usize + 1 } else { 0 };
            assert!(at.len() <= 2 * most + 1, "period {period} on {on}, E {exits}: {} switches: {at:?}", at.len());
        }
    }
    let priced = |it: usize| it % 200 < 100;
    let mut bounded = base.clone();
    bounded.params.congested_quiet = 1;
    let at = drive(&mut bounded, &m, 4_000, priced);
    assert_eq!(at.len(), (2 * CONGESTED_EXITS + 1) as usize, "{at:?}");
    assert!(bounded.mode().congested && bounded.mode().exits == CONGESTED_EXITS, "{:?}", bounded.mode());
    let mut unbounded = base.clone();
    unbounded.params.congested_quiet = 1;
    unbounded.params.congested_exits = u32::MAX;
    let more = drive(&mut unbounded, &m, 4_000, priced);
    assert!(more.len() > at.len(), "the exits' bound did not matter here: {more:?}");
}
