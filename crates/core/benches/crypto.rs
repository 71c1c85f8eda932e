//! Micro-benchmarks of the primitives the ledger's throughput rests on.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::crypto::{batch_verify, verify, KeyPair, VerifyItem};
use gridledger_core::{merkle_root, Hash32};

fn crypto(c: &mut Criterion) {
    let k = KeyPair::from_seed("bench");
    let d = hash_bytes(Tag::TX, b"message");
    let s = k.sign(&d);
    let pk = k.public();
    c.bench_function("secp256k1_sign", |b| b.iter(|| k.sign(&d)));
    c.bench_function("secp256k1_verify", |b| b.iter(|| verify(&pk, &d, &s)));
    let r = k.sign_recoverable(&d);
    c.bench_function("secp256k1_recover", |b| b.iter(|| gridledger_core::recover(&d, &r)));

    let keys: Vec<KeyPair> = (0..64).map(|i| KeyPair::from_seed(&i.to_string())).collect();
    let pks: Vec<_> = keys.iter().map(|k| k.public()).collect();
    let digests: Vec<Hash32> = (0..1024u32).map(|i| hash_bytes(Tag::TX, &i.to_le_bytes())).collect();
    let sigs: Vec<_> = digests.iter().enumerate().map(|(i, d)| keys[i % 64].sign(d)).collect();
    let items: Vec<VerifyItem> =
        (0..1024).map(|i| VerifyItem { pk: &pks[i % 64], digest: digests[i], sig: &sigs[i] }).collect();
    let mut g = c.benchmark_group("batch_verify");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("1024_all_cores", |b| b.iter(|| batch_verify(&items)));
    g.finish();

    let mut g = c.benchmark_group("merkle");
    g.throughput(Throughput::Elements(300));
    g.bench_function("root_300", |b| {
        b.iter_batched(|| digests[..300].to_vec(), |l| merkle_root(&l), BatchSize::SmallInput)
    });
    g.finish();
    c.bench_function("sha256_tagged_64B", |b| b.iter(|| hash_bytes(Tag::TX, &[7u8; 64])));
}

criterion_group!(benches, crypto);
criterion_main!(benches);
