//! `cargo bench -p gridledger-threshold`: combine + verify of 2f+1 shares of
//! N = 31 (the cross-chain certificate size) — per call, with a precomputed
//! signer set, and on shares of unknown validity — batch verification of
//! 21 shares, share signing and verifying.
//!
//! Each case runs twice: `wall/…` in wall time and `cpu/…` in the CPU time
//! of the benchmarking thread (Linux; wall time elsewhere). On a machine
//! shared with other builds the wall figures mostly measure waiting for a
//! core; every case here runs on the calling thread, so its CPU time is
//! what it costs.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_threshold::deal;
use rand::SeedableRng;
use std::hint::black_box;

/// The CPU time the calling thread has run, in ns (`schedstat`).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Criterion measurement in thread CPU nanoseconds (formatted as durations).
struct ThreadCpu(WallTime);

impl Measurement for ThreadCpu {
    type Intermediate = (u64, std::time::Instant);
    type Value = u64;
    fn start(&self) -> Self::Intermediate {
        (thread_cpu_ns().unwrap_or(0), std::time::Instant::now())
    }
    fn end(&self, (cpu, wall): Self::Intermediate) -> u64 {
        match thread_cpu_ns() {
            Some(now) if cpu > 0 => now.saturating_sub(cpu),
            _ => wall.elapsed().as_nanos() as u64,
        }
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

fn bench_wall(c: &mut Criterion) {
    cases(&mut c.benchmark_group("wall"));
}

fn bench_cpu(c: &mut Criterion<ThreadCpu>) {
    cases(&mut c.benchmark_group("cpu"));
}

fn cases<M: Measurement>(c: &mut criterion::BenchmarkGroup<'_, M>) {
    let (n, t) = (31, 21);
    let (pks, sks) = deal(n, t, &mut rand_chacha::ChaCha20Rng::seed_from_u64(1)).expect("valid");
    let msg = [7u8; 32];
    let shares: Vec<_> = sks.iter().take(t).map(|s| (s.index(), s.sign_share(b"bench", &msg))).collect();
    c.bench_function("combine_21_of_31", |b| b.iter(|| pks.combine(black_box(&shares)).expect("enough")));
    c.bench_function("combine_and_verify_21_of_31", |b| {
        b.iter(|| {
            let sig = pks.combine(black_box(&shares)).expect("enough");
            pks.verify(b"bench", &msg, &sig).expect("valid")
        })
    });
    let set = pks.signer_set(&(0..t).collect::<Vec<_>>()).expect("members");
    let only: Vec<_> = shares.iter().map(|(_, s)| *s).collect();
    c.bench_function("signer_set_combine_and_verify_21_of_31", |b| {
        b.iter(|| {
            let sig = set.combine(black_box(&only)).expect("enough");
            pks.verify(b"bench", &msg, &sig).expect("valid")
        })
    });
    c.bench_function("combine_verified_21_of_31", |b| {
        b.iter(|| pks.combine_verified(b"bench", &msg, black_box(&shares)).expect("valid"))
    });
    c.bench_function("verify_shares_batch_21", |b| {
        b.iter(|| pks.verify_shares(b"bench", &msg, black_box(&shares)).expect("valid"))
    });
    c.bench_function("sign_share", |b| b.iter(|| sks[0].sign_share(b"bench", black_box(&msg))));
    c.bench_function("verify_share", |b| {
        b.iter(|| pks.verify_share(0, b"bench", &msg, black_box(&shares[0].1)).expect("valid"))
    });
}

criterion_group!(wall, bench_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu(WallTime));
    targets = bench_cpu
}
criterion_main!(wall, cpu);
