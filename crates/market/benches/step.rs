//! `cargo bench -p gridledger-market`: one synchronous primal-dual
//! iteration (every buyer, seller and the operator) on the uncongested
//! case30 market, 12×12 to 100×100 (the seed's Table 6-2 sizes; its Python
//! took 62.5 / 78.9 / 119 / 437 µs per iteration), and one less-than-zero
//! comparison on Shamir shares (the SSS baseline's costly operation).

use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_market::clearing::network_for;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::sss::{encode, Engine};
use gridledger_market::{Case, CASE30};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let case = Case::parse(CASE30).expect("shipped case");
    let net = network_for(&case, 1.0).expect("case30 rows");
    for k in [12usize, 25, 50, 100] {
        let market = Market::generate(k as u64, k, k, &net.bus_ids);
        let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).expect("valid market");
        for _ in 0..100 {
            pd.step(&market);
        }
        c.bench_function(&format!("primal_dual_step_{k}x{k}"), |b| b.iter(|| black_box(pd.step(&market))));
    }
    let mut e = Engine::new(3, 1, 1).expect("3 executors");
    let a = e.input(2, &[encode(-0.25).expect("in range")]);
    c.bench_function("sss_less_than_zero", |b| b.iter(|| e.ltz(black_box(&a)).expect("honest executors")));
}

criterion_group!(benches, bench);
criterion_main!(benches);
