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

/// CPU time of this thread, s (unlike wall time, not inflated by other
/// processes on a loaded machine).
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Per-iteration thread CPU time of the primal-dual step on the uncongested
/// case30 market, k×k: the minimum over five runs of 400 iterations (after
/// 100 warm-up iterations), which filters out the other processes' effect
/// on a shared machine.
fn step_cpu(k: usize) -> f64 {
    let case = Case::parse(CASE30).unwrap();
    let net = network_for(&case, 1.0).unwrap();
    let market = Market::generate(k as u64, k, k, &net.bus_ids);
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    for _ in 0..100 {
        pd.step(&market);
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = thread_cpu_s();
        for _ in 0..400 {
            pd.step(&market);
        }
        best = best.min((thread_cpu_s() - t) / 400.0);
    }
    best
}

fn main() {
    if std::env::args().any(|a| a == "--step") {
        for k in [12usize, 25, 50, 100] {
            println!("step {k}x{k}: {:.2e} s cpu per iteration (min of 5 x 400)", step_cpu(k));
        }
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let case = Case::parse(CASE30).unwrap();
    for scale in [1.0, 1e-4] {
        let net = network_for(&case, scale).unwrap();
        for k in [12usize, 25, 50, 100] {
            let market = Market::generate(k as u64, k, k, &net.bus_ids);
            let c = solve(&market, &net).unwrap();
            let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
            let (t, cpu) = (Instant::now(), thread_cpu_s());
            let conv = pd.run(&market).is_some();
            let per = t.elapsed().as_secs_f64() / pd.iterations as f64;
            let per_cpu = (thread_cpu_s() - cpu) / pd.iterations as f64;
            let w = market.welfare(&pd.settled());
            println!("pd case30 scale {scale:e} {k}x{k}: conv {conv} iters {} per-iter {:.2e} s (cpu {:.2e} s) welfare {:.4} central {:.4} gap {:.2e} binding {}", pd.iterations, per, per_cpu, w, c.welfare, (c.welfare - w) / c.welfare, c.binding.len());
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
