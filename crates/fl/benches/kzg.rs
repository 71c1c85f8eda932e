//! Commitment and proof costs for a fragment (issue target: commit + all
//! proofs for 4096 elements within 2× of c-kzg's commit time).
//!
//! All proofs use FK20 (`prove_all`) on a rate-1/2 code (`n = 2k`), as in
//! EIP-7594's cell proofs; `FL_BENCH_ALL_PROOFS_K` picks another `k`.

use blstrs::Scalar;
use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::rs::RsCode;

fn bench(c: &mut Criterion) {
    let k = 4096;
    let kzg = Kzg::insecure_from_seed(k, 42);
    let coeffs: Vec<Scalar> = (0..k as u64).map(|i| Scalar::from(i * 31 + 7)).collect();
    c.bench_function("kzg_commit_4096", |b| b.iter(|| kzg.commit(&coeffs).unwrap()));
    c.bench_function("kzg_open_one_4096", |b| b.iter(|| kzg.open_at(&coeffs, Scalar::from(5u64)).unwrap()));

    let kp: usize = std::env::var("FL_BENCH_ALL_PROOFS_K").ok().and_then(|v| v.parse().ok()).unwrap_or(4096);
    let code = RsCode::new(kp, 2 * kp.next_power_of_two()).unwrap();
    let small = &coeffs[..kp.min(k)];
    let mut g = c.benchmark_group("kzg_commit_and_all_proofs");
    g.sample_size(10);
    g.bench_function(format!("k{kp}"), |b| {
        b.iter(|| {
            let c = kzg.commit(small).unwrap();
            let p = kzg.prove_all(&code, small).unwrap();
            (c, p)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
