//! `cargo bench -p gridledger-market --bench step`: the primal-dual
//! iteration on the uncongested case30 market, 12×12 to 100×100 (the
//! seed's Table 6-2 sizes; its Python took 62.5 / 78.9 / 119 / 437 µs per
//! iteration), measured two ways, and one less-than-zero comparison on
//! Shamir shares (the SSS baseline's costly operation).
//!
//! - `primal_dual_step_KxK`: one synchronous iteration (every buyer,
//!   seller and the operator) after 100 warm-up iterations. Criterion
//!   keeps stepping, mostly past convergence, where the residual tests
//!   pass every iteration, so each of these steps also computes the
//!   duality certificate (a clearing run computes it about once).
//! - `primal_dual_run/KxK`: a whole clearing from a fresh state to the
//!   converged certificate, Table 6-2's measure; its throughput is in
//!   iterations, so the time per iteration is `1 / thrpt`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridledger_market::clearing::network_for;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::sss::{encode, Engine};
use gridledger_market::{Case, CASE30};
use std::hint::black_box;

const SIZES: [usize; 4] = [12, 25, 50, 100];

fn bench(c: &mut Criterion) {
    let case = Case::parse(CASE30).expect("shipped case");
    let net = network_for(&case, 1.0).expect("case30 rows");
    for k in SIZES {
        let market = Market::generate(k as u64, k, k, &net.bus_ids);
        let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).expect("valid market");
        for _ in 0..100 {
            pd.step(&market);
        }
        c.bench_function(&format!("primal_dual_step_{k}x{k}"), |b| b.iter(|| black_box(pd.step(&market))));
    }
    let mut group = c.benchmark_group("primal_dual_run");
    group.sample_size(10);
    for k in SIZES {
        let market = Market::generate(k as u64, k, k, &net.bus_ids);
        let params = PdParams::for_market(&market);
        let fresh = PrimalDual::new(&market, &net, params).expect("valid market");
        let iterations = fresh.clone().run(&market).expect("the seeded case30 markets converge");
        group.throughput(Throughput::Elements(iterations as u64));
        group.bench_function(format!("{k}x{k}"), |b| {
            b.iter(|| {
                let mut pd = fresh.clone();
                black_box(pd.run(&market))
            })
        });
    }
    group.finish();
    let mut e = Engine::new(3, 1, 1).expect("3 executors");
    let a = e.input(2, &[encode(-0.25).expect("in range")]);
    c.bench_function("sss_less_than_zero", |b| b.iter(|| e.ltz(black_box(&a)).expect("honest executors")));
}

criterion_group!(benches, bench);
criterion_main!(benches);
