//! `cargo bench -p gridledger-threshold`: combine + verify of 2f+1 shares of
//! N = 31 (the cross-chain certificate size) — per call, with a precomputed
//! signer set, and on shares of unknown validity — batch verification of
//! 21 shares, share signing and verifying.

use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_threshold::deal;
use rand::SeedableRng;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
