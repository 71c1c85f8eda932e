//! Primal-dual clearing of seeded uncongested markets on case30's buses at the
//! seed's Table 6-2 sizes: iterations, welfare gap to the exact optimum and
//! time per iteration, one JSON line per size.
//! `cargo run --release -p gridledger-market --example pd_sizes [seed]`

use std::time::Instant;

use gridledger_market::primal_dual::{uncongested_optimum, PdParams, PrimalDual};
use gridledger_market::problem::Market;

fn main() {
    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let buses: Vec<u32> = (1..=30).collect();
    for k in [12usize, 25, 50, 100] {
        let market = Market::generate(seed, k, k, &buses);
        let (price, w_star, _, _) = uncongested_optimum(&market);
        let mut pd = PrimalDual::new(&market, Vec::new(), Vec::new(), PdParams::for_market(&market));
        let t = Instant::now();
        let iters = pd.run(&market);
        let secs = t.elapsed().as_secs_f64();
        let w = market.welfare(&pd.settled());
        println!(
            "{{\"buyers\":{k},\"sellers\":{k},\"iterations\":{},\"converged\":{},\"welfare\":{w:.4},\"optimum\":{w_star:.4},\"gap\":{:.2e},\"price\":{price:.4},\"s_per_iteration\":{:.2e}}}",
            pd.iterations,
            iters.is_some(),
            (w_star - w) / w_star,
            secs / pd.iterations as f64
        );
    }
}
