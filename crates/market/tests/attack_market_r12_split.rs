//! The gap the round-11 fixer left open, attacked after attack round 12's
//! fixes (the step down of a priced row with slack, `scaled_gap` over every
//! party): a near-linear 10 MWh pair SPLIT across two buses behind a line
//! that binds at the optimum.
//!
//! Every `#[ignore]`d test here is a finding: it fails on the code as it
//! stands. Run them with
//! `cargo test -p gridledger-market --test attack_market_r12_split -- --ignored`.

mod common;

use common::{case30_net, p};
use gridledger_market::clearing::{clear, clear_with, Algorithm};
use gridledger_market::problem::{Market, Side};

/// Seed 5's 3 × 3 market plus a near-linear 10 MWh buyer at model bus
/// `buyer` and seller at model bus `seller` (bids 10 and 9.99 $/kWh).
fn split_pair(
    seed: u64,
    scale: f64,
    buyer: usize,
    seller: usize,
) -> (gridledger_market::network::MarketNetwork, Market) {
    let net = case30_net(scale);
    let mut m = Market::generate(seed, 3, 3, &net.bus_ids);
    m.buyers.push(p(Side::Buyer, net.bus_ids[buyer], 1e-5, 10.0, 0.0, 10_000.0));
    m.sellers.push(p(Side::Seller, net.bus_ids[seller], 1e-5, 9.99, 0.0, 10_000.0));
    (net, m)
}

// Expected: a binding line between the two halves of a flat pair costs a
// bounded multiple of the iterations the pair needs at one bus behind a
// binding line (`flat_pairs` and the round-11 mutants scenario: about
// 2 100 and 6 800). Observed: seed 5, ratings × 5·10⁻⁴, buyer at model
// bus 10, seller at model bus 16: the reference binds line 10-17
// (reverse), and primal-dual needs 25 170 iterations (about 52 000 before
// round 12's fixes), past a 20 000-iteration budget (3× the one-bus pair
// behind line 16-17). The pair's trade is one the congested mode caps
// (`BUYER_STEP_CAP`), so it moves by the capped step at the margin the
// line price leaves it. (low: within the 200 000 cap, no fallback)
//
// Fixed: a large-large trade's penalty is `ρ √(f_m f_n)`
// (`PdParams::party_steps`); the pair clears in 490 iterations.
#[test]
fn a_flat_pair_split_across_a_binding_line_clears_within_20_000_iterations() {
    let (net, m) = split_pair(5, 5e-4, 10, 16);
    let central = clear(&m, &net, Algorithm::Central).expect("the reference clears");
    assert!(!central.binding.is_empty(), "a row binds at the optimum");
    match clear_with(&m, &net, Algorithm::PrimalDual, Some(20_000)) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3),
        Err(e) => panic!("observed: {e} (binding {:?})", central.binding),
    }
}
