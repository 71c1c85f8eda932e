//! The bridge queue a batch applies is bounded (issue 11, attack r5):
//! a `fund` past `MAX_QUEUE_PER_BATCH` items for the next batch is
//! refused and changes nothing; once a batch opens (`flush`), funding
//! goes on.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::call;
use gridledger_ledger::{ChainClient, TxStatus};
use gridledger_rollup::primary::MAX_QUEUE_PER_BATCH;
use gridledger_rollup::IOR_PRIMARY_ID;

#[test]
fn a_fund_past_the_queue_bound_is_refused_until_a_batch_opens() {
    let mut e = funded();
    let who = trader(3);
    let queued = |e: &Env| e.d.queue(0, u64::MAX).unwrap().len() as u64;
    let before = queued(&e);
    assert!(before < MAX_QUEUE_PER_BATCH);
    let chain_id = e.d.primary.chain_id();
    let mut n = e.d.primary.next_nonce(&who.address());
    let items: Vec<u64> = (before..MAX_QUEUE_PER_BATCH).collect();
    for block in items.chunks(100) {
        let mut hashes = Vec::new();
        for _ in block {
            let tx = call(&who, chain_id, n, IOR_PRIMARY_ID, "fund", vec![], Amount(1), 1_000_000);
            hashes.push(e.d.primary.submit(&tx).unwrap());
            n += 1;
        }
        e.d.primary.seal().unwrap();
        for h in hashes {
            assert_eq!(e.d.primary.receipt(&h).unwrap().unwrap().status, TxStatus::Success);
        }
    }
    assert_eq!(queued(&e), MAX_QUEUE_PER_BATCH);
    let r = e.d.fund(&who, Amount(1)).unwrap();
    assert!(reverted(&r).contains("queued funds and withdrawals"), "{:?}", r.status);
    assert_eq!(queued(&e), MAX_QUEUE_PER_BATCH, "nothing queued");
    assert_eq!(e.d.flush(&who).unwrap().status, TxStatus::Success);
    assert_eq!(e.d.fund(&who, Amount(1)).unwrap().status, TxStatus::Success, "the next batch takes it");
    assert_eq!(queued(&e), MAX_QUEUE_PER_BATCH + 1);
}
