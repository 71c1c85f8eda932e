//! `cargo bench -p gridledger-market --bench step`: the primal-dual
//! iteration on the uncongested case30 market, 12×12 to 100×100 (the
//! seed's Table 6-2 sizes; its Python took 62.5 / 78.9 / 119 / 437 µs per
//! iteration), measured two ways, and one less-than-zero comparison on
//! Shamir shares (the SSS baseline's costly operation).
//!
//! - `primal_dual_step_KxK`: one synchronous iteration (every buyer,
//!   seller and the operator), iterations 100 to 300 of the clearing over
//!   and over (the state after 100 iterations is restored every
//!   [`SPAN`] steps, outside the timing). Stepping one state without end
//!   (as this bench first did) measures mostly a converged market, where
//!   the residual tests pass at every step and so every step also
//!   computes the duality certificate (about a third more at 50×50),
//!   which a clearing computes about once.
//! - `primal_dual_run/KxK`: a whole clearing from a fresh state to the
//!   converged certificate, Table 6-2's measure; its throughput is in
//!   iterations, so the time per iteration is `1 / thrpt`.
//!
//! Criterion measures this thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`,
//! [`ThreadCpu`]), not wall time: the work is single-threaded, and on a
//! shared machine the wall time also counts the other processes' turns on
//! the cores (a load of 4 on 2 cores doubled it). They can still slow the
//! thread through the shared caches.

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridledger_market::clearing::network_for;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::sss::{encode, Engine};
use gridledger_market::{Case, CASE30};
use std::hint::black_box;
use std::time::Duration;

/// Criterion's measurement as this thread's CPU time.
struct ThreadCpu;

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a valid out-pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID unavailable");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall time's formatter (durations print the same).
static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu().saturating_sub(i)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

const SIZES: [usize; 4] = [12, 25, 50, 100];
/// Iterations before the step bench's state.
const WARM_UP: usize = 100;
/// Steps timed from that state before it is restored.
const SPAN: u64 = 200;

fn bench(c: &mut Criterion<ThreadCpu>) {
    let case = Case::parse(CASE30).expect("shipped case");
    let net = network_for(&case, 1.0).expect("case30 rows");
    for k in SIZES {
        let market = Market::generate(k as u64, k, k, &net.bus_ids);
        let mut start = PrimalDual::new(&market, &net, PdParams::for_market(&market)).expect("valid market");
        for _ in 0..WARM_UP {
            start.step(&market);
        }
        c.bench_function(&format!("primal_dual_step_{k}x{k}"), |b| {
            b.iter_custom(|iters| {
                let (mut total, mut done) = (Duration::ZERO, 0);
                while done < iters {
                    let mut pd = start.clone();
                    let n = (iters - done).min(SPAN);
                    let t = thread_cpu();
                    for _ in 0..n {
                        black_box(pd.step(&market));
                    }
                    total += thread_cpu().saturating_sub(t);
                    done += n;
                }
                total
            })
        });
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

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = bench
}
criterion_main!(benches);
