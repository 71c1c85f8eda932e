//! TBG grouping latency (thesis §4.6.7, Fig 4-9): the time a replica takes
//! to select its batch from its buckets (Algorithm 4.2), B = 2,500, G = 3,
//! τ = 12, κ = 2, at received loads of 1k–120k transactions per second per
//! replica (one-second epochs: each consulted bucket set holds one
//! second's load). Only the selection is timed: the replica's state is
//! dropped outside the measurement, and freeing past bucket sets is
//! `end_epoch`'s housekeeping. Target: median ≤ 5 µs at 120k tx/s (seed: < 27 µs).
//! `gridledger experiment run tbg-fig-4-9` runs the seed's 30 warm-up +
//! 260 measured repetitions and reports median and p95.

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use gridledger_consensus::lbft::txm::tbg::grouping_fixture;
use gridledger_consensus::lbft::txm::{BatchPolicy, TbgConfig};
use std::time::Duration;

fn grouping(c: &mut Criterion) {
    let cfg = TbgConfig { tau: 12, groups: 3, kappa: 2, batch: 2_500, max_stored: usize::MAX };
    let epoch = 100;
    let mut g = c.benchmark_group("tbg_grouping");
    g.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(2));
    for load in [1_000u32, 30_000, 120_000] {
        let base = grouping_fixture(cfg, load, epoch, 7).expect("valid config");
        g.bench_with_input(BenchmarkId::from_parameter(load), &load, |b, _| {
            b.iter_batched_ref(|| base.clone(), |s| s.next_batch(epoch), BatchSize::PerIteration)
        });
    }
    g.finish();
}

criterion_group!(benches, grouping);
criterion_main!(benches);
