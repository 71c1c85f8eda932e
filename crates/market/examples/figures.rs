//! Prints the figures of the market report: primal-dual on case30 (uncongested and with line
//! limits at 1e-4 of the ratings) and ALADIN on case33bw, 12x12 to 100x100, beside the Clarabel
//! optimum. `cargo run --release -p gridledger-market --example figures`.

use gridledger_market::aladin::{Aladin, AladinParams};
use gridledger_market::central::solve;
use gridledger_market::clearing::network_for;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::{Case, CASE30, CASE33BW};
use std::time::Instant;
fn main() {
    let case = Case::parse(CASE30).unwrap();
    for scale in [1.0, 1e-4] {
        let net = network_for(&case, scale).unwrap();
        for k in [12usize, 25, 50, 100] {
            let market = Market::generate(k as u64, k, k, &net.bus_ids);
            let c = solve(&market, &net).unwrap();
            let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
            let t = Instant::now();
            let conv = pd.run(&market).is_some();
            let per = t.elapsed().as_secs_f64() / pd.iterations as f64;
            let w = market.welfare(&pd.settled());
            println!("pd case30 scale {scale:e} {k}x{k}: conv {conv} iters {} per-iter {:.2e} s welfare {:.4} central {:.4} gap {:.2e} binding {}", pd.iterations, per, w, c.welfare, (c.welfare - w) / c.welfare, c.binding.len());
        }
    }
    let case = Case::parse(CASE33BW).unwrap();
    let net = network_for(&case, 1.0).unwrap();
    for k in [12usize, 25, 50, 100] {
        let market = Market::generate(k as u64, k, k, &net.bus_ids);
        let c = solve(&market, &net).unwrap();
        let mut al = Aladin::new(&market, &net, AladinParams::default()).unwrap();
        let t = Instant::now();
        let conv = al.run(&market, &net).is_some();
        let per = t.elapsed().as_secs_f64() / al.iterations as f64;
        let w = market.welfare(&al.settled());
        println!(
            "aladin case33bw {k}x{k}: conv {conv} iters {} per-iter {:.2e} s welfare {:.4} central {:.4} gap {:.2e}",
            al.iterations,
            per,
            w,
            c.welfare,
            (c.welfare - w) / c.welfare
        );
    }
}
