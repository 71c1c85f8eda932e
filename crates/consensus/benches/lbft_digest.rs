//! What an LBFT replica hashes per epoch: the digest of a batch of 4,000
//! opaque 300-byte transactions (the bench's default `--batch`; once per
//! batch received and once for its own proposal), the ids duplicate
//! suppression and the digest read (once per transaction, hashed where
//! the batch is decoded or, for a batch built locally, on first use),
//! and the decoding of a received batch (ids included), beside the
//! encoding alone.

use criterion::{criterion_group, criterion_main, Criterion};
use gridledger_consensus::lbft::{tx_id, Batch, Tx};
use gridledger_core::codec::{decode, encode};
use gridledger_core::Hash32;
use std::hint::black_box;
use std::time::Duration;

fn digest(c: &mut Criterion) {
    let txs: Vec<Tx> = (0..4_000u32).map(|i| (0..300u32).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()).collect();
    let batch = Batch { txs: txs.into(), time_ms: 1 };
    let bytes = encode(&batch);
    let instance = Hash32([0x1b; 32]);
    let mut g = c.benchmark_group("lbft_batch_4000x300");
    g.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    // The ids are cached in the batch after the first call: this is the
    // consensus loop's share for a batch it received decoded.
    g.bench_function("digest_ids_known", |b| b.iter(|| black_box(&batch).digest(&instance, 5, 2)));
    g.bench_function("decode_with_ids", |b| b.iter(|| decode::<Batch>(black_box(&bytes), 64 << 20)));
    g.bench_function("encode_only", |b| b.iter(|| encode(black_box(&batch))));
    g.bench_function("tx_ids", |b| b.iter(|| black_box(&batch).txs.iter().map(|t| tx_id(t)).collect::<Vec<_>>()));
    g.finish();
}

criterion_group!(benches, digest);
criterion_main!(benches);
