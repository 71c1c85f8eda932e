//! Fee-eviction games against the mempool (issue 9, item 8).

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::mempool::Mempool;
use gridledger_ledger::{Account, SubmitError, VerifiedTx};

const RICH: Account = Account { balance: Amount(1_000_000_000_000), nonce: 0 };

fn vtx(key: usize, nonce: u64, price: u128) -> VerifiedTx {
    transfer(&dev_key(key), 1, nonce, dev_key(99).address(), Amount(1), Amount(price))
        .check_stateless(1, u64::MAX)
        .unwrap()
}

/// Tail shielding: only a sender's last pending transaction is evictable,
/// and it is priced alone. An attacker queues many minimum-price
/// transactions per sender and ends each queue with one dear transaction:
/// the pool is then 90% minimum-price, yet an honest transaction paying 50x
/// the minimum is refused as `MempoolFull`. Evicting a sender's cheapest
/// suffix (all transactions from the cheapest one on, as `evict` already
/// does for rejected ones) would let it in.
#[test]
fn attack_a_dear_tail_does_not_shield_a_queue_of_minimum_price_transactions() {
    let (senders, per) = (4usize, 10u64);
    let mut p = Mempool::new(senders * per as usize, 4_096);
    for s in 0..senders {
        for n in 0..per {
            let price = if n == per - 1 { 1_000 } else { 1 };
            p.admit(vtx(s, n, price), &RICH).unwrap();
        }
    }
    assert_eq!(p.len(), senders * per as usize);
    let honest = p.admit(vtx(50, 0, 50), &RICH);
    assert!(honest.is_ok(), "a transaction paying 50 was refused although 36 of 40 pending pay 1: {honest:?}");
    assert!(!matches!(honest, Err(SubmitError::MempoolFull { .. })));
}
