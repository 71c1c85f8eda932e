//! What an LBFT replica hashes per epoch, on its one thread: the digest of
//! a batch of 4,000 opaque 300-byte transactions (the bench's default
//! `--batch`; once per batch received and once for its own proposal), and
//! the ids duplicate suppression computes at delivery (once per
//! delivered transaction), beside the encoding alone.

use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_consensus::lbft::{tx_id, Batch, Tx};
use gridledger_core::codec::encode;
use gridledger_core::Hash32;
use std::hint::black_box;
use std::time::Duration;

fn digest(c: &mut Criterion) {
    let txs: Vec<Tx> = (0..4_000u32).map(|i| (0..300u32).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()).collect();
    let batch = Batch { txs: txs.into(), time_ms: 1 };
    let instance = Hash32([0x1b; 32]);
    let mut g = c.benchmark_group("lbft_batch_4000x300");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.bench_function("digest", |b| b.iter(|| black_box(&batch).digest(&instance, 5, 2)));
    g.bench_function("encode_only", |b| b.iter(|| encode(black_box(&batch))));
    g.bench_function("tx_ids", |b| b.iter(|| black_box(&batch).txs.iter().map(|t| tx_id(t)).collect::<Vec<_>>()));
    g.finish();
}

criterion_group!(benches, digest);
criterion_main!(benches);
