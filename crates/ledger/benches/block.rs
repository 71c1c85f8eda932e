//! Executing and committing one 300-transfer block.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{BlockBuilder, BlockEnv, Chain, ChainConfig, ContractRegistry};

fn block(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let v = dev_validator(0);
    let chain = Chain::open(
        dir.path(),
        dev_genesis(1, 600, Amount(1_000_000_000), std::slice::from_ref(&v)),
        ContractRegistry::new(),
        ChainConfig::default(),
    )
    .unwrap();
    let txs: Vec<_> =
        (0..300).map(|i| transfer(&dev_key(i), 1, 0, dev_key(300 + i).address(), Amount(5), Amount(1))).collect();
    let env =
        BlockEnv { chain_id: 1, height: 1, timestamp: 1, proposer: v.address(), parent: gridledger_core::Hash32::ZERO };
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Elements(300));
    g.bench_function("execute_300_transfers_with_state_root", |b| {
        b.iter(|| {
            let mut bb = BlockBuilder::new(chain.state(), chain.registry(), env, u64::MAX);
            for t in &txs {
                bb.push(t.clone()).unwrap();
            }
            bb.finish(1, chain.tip().hash(), v.public(), chain.state())
        })
    });
    g.finish();
}

criterion_group!(benches, block);
criterion_main!(benches);
