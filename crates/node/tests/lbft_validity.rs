//! The node's LBFT validity predicate (external validity): the checks a
//! validator makes before it echoes another validator's batch. A Byzantine
//! proposer's batch is refused, with a reason, for any transaction that
//! does not decode, is not signed by its sender, is for another chain,
//! reuses a committed nonce, or for gas limits beyond the proposer's share
//! of a block, or a clock reading too far ahead; a refusal changes nothing.

use gridledger_consensus::lbft::{tx_id, Batch};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, Transaction, TxKind};
use gridledger_node::lbft::validity;
use gridledger_node::service::Shared;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn byzantine_batches_are_refused_with_a_reason_and_valid_ones_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let validators: Vec<_> = (0..4).map(dev_validator).collect();
    let genesis = dev_genesis(1, 2, Amount(1_000_000_000_000), &validators);
    let mut chain =
        Chain::open(dir.path(), genesis, gridledger_contracts::default_registry(), ChainConfig::default()).unwrap();
    // Account 0 commits nonce 0.
    let (a, b) = (dev_key(0), dev_key(1));
    chain.submit(&transfer(&a, 1, 0, b.address(), Amount(5), Amount(1)).to_bytes()).unwrap();
    chain.produce_block(&validators[0], now_ms()).unwrap().expect("a block");
    let limit = chain.config().block_gas_limit;
    let shared = Shared::new(chain);
    let verified = Arc::new(Mutex::new(HashSet::<Hash32>::new()));
    let mut check = validity(shared.clone(), verified.clone(), 4, 10_000);
    let batch = |txs: Vec<Vec<u8>>| Batch { txs: txs.into(), time_ms: now_ms() };

    let good = transfer(&a, 1, 1, b.address(), Amount(5), Amount(1)).to_bytes();
    let mut forged = transfer(&a, 1, 1, b.address(), Amount(500), Amount(1));
    forged.signature = transfer(&b, 1, 1, a.address(), Amount(500), Amount(1)).signature;
    let stale = transfer(&a, 1, 0, b.address(), Amount(7), Amount(1)).to_bytes();
    let other_chain = transfer(&a, 2, 1, b.address(), Amount(5), Amount(1)).to_bytes();
    let greedy = Transaction {
        chain_id: 1,
        sender: b.public(),
        nonce: 0,
        gas_limit: limit / 4 + 1,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: a.address(), amount: Amount(1) },
    }
    .sign(&b)
    .to_bytes();

    let refusals: Vec<(Batch, &str)> = vec![
        (batch(vec![good.clone(), vec![1, 2, 3]]), "transaction 1"),
        (batch(vec![good.clone(), forged.to_bytes()]), "signature"),
        (batch(vec![stale]), "nonce 0 already used"),
        (batch(vec![other_chain]), "chain"),
        (batch(vec![greedy]), "share of a block"),
        (Batch { txs: vec![good.clone()].into(), time_ms: now_ms() + 60_000 }, "ahead"),
    ];
    let mempool = shared.chain().mempool().len();
    let tip = shared.chain().tip().clone();
    for (bad, why) in refusals {
        let err = check(0, 3, &bad).expect_err(why);
        assert!(err.to_lowercase().contains(&why.to_lowercase()), "{why}: {err}");
        assert!(verified.lock().unwrap().is_empty(), "a refused batch marks nothing verified");
        assert_eq!(shared.chain().mempool().len(), mempool);
        assert_eq!(*shared.chain().tip(), tip);
    }
    // A correct batch passes; its transactions' signatures are not checked again.
    check(0, 1, &batch(vec![good.clone()])).unwrap();
    assert!(verified.lock().unwrap().contains(&tx_id(&good)));
    check(1, 2, &batch(vec![])).unwrap();
}
