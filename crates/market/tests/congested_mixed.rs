//! Congested mixed markets: seeded parties plus a few whose `e_max` is
//! beyond the reference scale `E₀` (so they get their own steps and
//! penalties) on case30 with tightened ratings, where many rows bind at
//! once. Attack round 8 found such markets cycling up to primal-dual's cap
//! when the line weights bounded each row against the buyers' own steps;
//! every one here must clear within the 0.1 % of the central
//! optimum.

mod common;

use common::{case30_net, p, Mix};
use gridledger_market::clearing::{clear, Algorithm};
use gridledger_market::problem::{Market, Side};

#[test]
fn congested_mixed_markets_clear_by_primal_dual_within_the_target() {
    // the congested ones of seeds 0..40 (at least one binding row at the
    // optimum); seed 17 reached the 200 000-iteration cap before the fix
    for seed in [1u64, 3, 11, 12, 13, 15, 16, 17, 21, 25, 32, 33, 34, 37] {
        let mut mix = Mix(seed);
        let scale = mix.pick(&[1e-3, 1e-4]);
        let net = case30_net(scale);
        let mut m = Market::generate(seed, 3, 3, &net.bus_ids);
        for _ in 0..3 {
            let bus = mix.pick(&net.bus_ids);
            let a = mix.pick(&[0.02, 1e-3, 4e-5]);
            let e = mix.pick(&[6.0, 50.0, 400.0]);
            if mix.next().is_multiple_of(2) {
                m.buyers.push(p(Side::Buyer, bus, a, 0.3, 0.0, e));
            } else {
                m.sellers.push(p(Side::Seller, bus, a, 0.07, 0.0, e));
            }
        }
        let c =
            clear(&m, &net, Algorithm::PrimalDual).unwrap_or_else(|e| panic!("seed {seed} (ratings x {scale}): {e}"));
        assert!(!c.binding.is_empty(), "seed {seed}: no line binds");
        assert!(c.converged && c.relative_gap.abs() <= 1e-3, "seed {seed}: gap {}", c.relative_gap);
    }
}
