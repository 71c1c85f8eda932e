//! Commitment and proof costs for a fragment (issue target: commit + all
//! proofs for 4096 elements within 2× of c-kzg's commit time, 30–44 ms).
//!
//! `kzg_commit_and_all_cell_proofs/k4096_cells128` is the call comparable to
//! c-kzg's `compute_cells_and_kzg_proofs`: a rate-1/2 code (`n = 8192`) in
//! 128 cells of 64 points, every cell proof by FK20 over cells. The FK20
//! precomputation depends on the setup only and is built outside the timing
//! (c-kzg builds it when loading its setup). The single-position FK20
//! (`prove_all`, 8192 proofs) is kept behind `FL_BENCH_ALL_PROOFS_K`.

use blstrs::Scalar;
use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_fl::cells::{CellCode, CellProver};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::rs::RsCode;

fn bench(c: &mut Criterion) {
    let k = 4096;
    let kzg = Kzg::insecure_from_seed(k, 42);
    // A fragment as a ciphertext packs it: 31 pseudo-random bytes per
    // element (full-size scalars; small integers would make every MSM
    // look several times faster than on real data).
    let bytes: Vec<u8> = {
        use rand::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut b = vec![0u8; k * gridledger_fl::field::BYTES_PER_ELEMENT];
        rng.fill_bytes(&mut b);
        b
    };
    let coeffs: Vec<Scalar> = gridledger_fl::field::bytes_to_scalars(&bytes);
    c.bench_function("kzg_commit_4096", |b| b.iter(|| kzg.commit(&coeffs).unwrap()));
    c.bench_function("kzg_open_one_4096", |b| b.iter(|| kzg.open_at(&coeffs, Scalar::from(5u64)).unwrap()));

    let code = CellCode::new(k, 2 * k, 128).unwrap();
    let prover = CellProver::new(&kzg, code.cell_size(), k).unwrap();
    let mut g = c.benchmark_group("kzg_commit_and_all_cell_proofs");
    g.sample_size(10);
    g.bench_function("k4096_cells128", |b| {
        b.iter(|| {
            let c = kzg.commit(&coeffs).unwrap();
            let p = prover.prove_cells(&code, &coeffs).unwrap();
            (c, p)
        })
    });
    g.bench_function("k4096_cells128_with_values", |b| {
        b.iter(|| {
            let c = kzg.commit(&coeffs).unwrap();
            (c, kzg.cells(&prover, &code, &coeffs).unwrap())
        })
    });
    g.finish();

    let com = kzg.commit(&coeffs).unwrap();
    let cells = kzg.cells(&prover, &code, &coeffs).unwrap();
    c.bench_function("kzg_verify_one_cell_64", |b| b.iter(|| kzg.verify_cell(&code, &com, &cells[3]).unwrap()));
    let items: Vec<_> = cells.iter().map(|x| (com, x)).collect();
    let mut g = c.benchmark_group("kzg_verify_cells_batch");
    g.sample_size(10);
    g.bench_function("all_128_cells", |b| b.iter(|| kzg.verify_cells_batch(&code, &items).unwrap()));
    g.finish();

    // Erasure decoding of a 4,096-element fragment at rate 1/2 from its
    // 4,096 odd positions (every even position lost).
    let rs = RsCode::new(k, 2 * k).unwrap();
    let cw = rs.encode(&coeffs).unwrap();
    let shares: Vec<(usize, Scalar)> = (0..k).map(|i| (2 * i + 1, cw[2 * i + 1])).collect();
    let mut g = c.benchmark_group("rs_decode");
    g.sample_size(10);
    g.bench_function("k4096_n8192_odd_positions", |b| b.iter(|| rs.decode(&shares).unwrap()));
    g.finish();

    if let Some(kp) = std::env::var("FL_BENCH_ALL_PROOFS_K").ok().and_then(|v| v.parse::<usize>().ok()) {
        let code = RsCode::new(kp, 2 * kp.next_power_of_two()).unwrap();
        let small = &coeffs[..kp.min(k)];
        let mut g = c.benchmark_group("kzg_commit_and_all_position_proofs");
        g.sample_size(10);
        g.bench_function(format!("k{kp}"), |b| {
            b.iter(|| (kzg.commit(small).unwrap(), kzg.prove_all(&code, small).unwrap()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
