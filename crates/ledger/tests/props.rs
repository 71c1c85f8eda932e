//! Property tests of the ledger's invariants:
//! - the state root maintained incrementally equals the root rebuilt from
//!   the final map, whatever the order the entries arrive in, and
//!   `root_after` predicts `apply`;
//! - random transaction sequences (valid, overspending, reverting, replayed)
//!   never create or destroy coin.

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer, DevChain};
use gridledger_ledger::state::Changes;
use gridledger_ledger::{ContractRegistry, State, StateRead, Transaction, TxKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A batch of writes over a small key space (so keys are overwritten and
/// deleted, and buckets collide), as `(key, Some(value) | None)`.
fn arb_batches() -> impl Strategy<Value = Vec<Vec<(u8, Option<Vec<u8>>)>>> {
    let write = (0u8..40, proptest::option::weighted(0.8, proptest::collection::vec(any::<u8>(), 0..8)));
    proptest::collection::vec(proptest::collection::vec(write, 0..12), 1..8)
}

fn key(k: u8) -> Vec<u8> {
    vec![0x02, 0, 0, 0, 1, k]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn incremental_root_equals_rebuilt_in_any_order(
        batches in arb_batches(),
        log2 in 0u32..6,
        shuffle_seed in any::<u64>(),
    ) {
        let mut inc = State::new(log2);
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for batch in &batches {
            let changes: Changes = batch.iter().map(|(k, v)| (key(*k), v.clone())).collect();
            let predicted = inc.root_after(&changes);
            let applied = inc.apply(&changes);
            prop_assert_eq!(predicted, applied);
            for (k, v) in &changes {
                match v {
                    Some(v) => { model.insert(k.clone(), v.clone()); }
                    None => { model.remove(k); }
                }
            }
        }
        // Rebuilt from the final map, in a shuffled order.
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
        let mut s = shuffle_seed;
        for i in (1..entries.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            entries.swap(i, (s >> 33) as usize % (i + 1));
        }
        let rebuilt = State::from_entries(log2, entries.clone());
        prop_assert_eq!(rebuilt.root(), inc.root());
        prop_assert_eq!(inc.len(), model.len());
        for (k, v) in &model {
            prop_assert_eq!(inc.get(k), Some(v.clone()));
        }
        // Applying the final map as one batch to an empty state agrees too.
        let mut once = State::new(log2);
        let all: Changes = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
        prop_assert_eq!(once.apply(&all), inc.root());
        // And any one differing value gives a different root.
        if let Some((k, v)) = model.iter().next() {
            let mut other = v.clone();
            other.push(1);
            let diff: Changes = [(k.clone(), Some(other))].into_iter().collect();
            prop_assert_ne!(inc.root_after(&diff), inc.root());
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Transfer from `from` to `to` of `amount`, at `price`; `nonce_skew`
    /// makes some nonces wrong (replays and gaps).
    Transfer { from: usize, to: usize, amount: u128, price: u128, nonce_skew: i8 },
    /// A call to a contract that does not exist: reverts, pays its fee.
    BadCall { from: usize, value: u128 },
    /// Seal a block.
    Seal,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..5, 0usize..6, 0u128..400_000, 0u128..4, prop_oneof![8 => Just(0i8), 1 => Just(-1i8), 1 => Just(1i8)])
            .prop_map(|(from, to, amount, price, nonce_skew)| Op::Transfer { from, to, amount, price, nonce_skew }),
        1 => (0usize..5, 0u128..1000).prop_map(|(from, value)| Op::BadCall { from, value }),
        2 => Just(Op::Seal),
    ]
}

const ACCOUNTS: usize = 5;
const START: u128 = 1_000_000;

fn supply(dc: &DevChain) -> u128 {
    // Every account the operations can touch: the funded keys, one unfunded
    // recipient (index 5), the proposer, and the contract address a call's
    // value would move to.
    let mut t: u128 = (0..=ACCOUNTS).map(|i| dc.chain.account(&dev_key(i).address()).balance.0).sum();
    t += dc.chain.account(&dev_validator(0).address()).balance.0;
    t += dc.chain.account(&gridledger_ledger::contract_address(77)).balance.0;
    t
}

proptest! {
    // Each case opens a store and commits a few blocks (with fsync): keep it small.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn random_transaction_sequences_conserve_coin(ops in proptest::collection::vec(arb_op(), 1..40)) {
        let d = tempfile::tempdir().unwrap();
        let mut dc = DevChain::open(d.path(), ACCOUNTS, Amount(START), ContractRegistry::new()).unwrap();
        let total = START * ACCOUNTS as u128;
        prop_assert_eq!(supply(&dc), total);
        let mut ops = ops;
        ops.push(Op::Seal);
        for op in ops {
            let tx = match op {
                Op::Seal => {
                    let proposer = dev_validator(0).address();
                    let before = dc.chain.account(&proposer).balance.0;
                    if let Some(c) = dc.seal() {
                        // Fees paid equal the proposer's gain in this block.
                        let fees: u128 = c.receipts.iter().map(|r| r.fee.0).sum();
                        prop_assert_eq!(dc.chain.account(&proposer).balance.0 - before, fees);
                    }
                    prop_assert_eq!(supply(&dc), total);
                    continue;
                }
                Op::Transfer { from, to, amount, price, nonce_skew } => {
                    let k = dev_key(from);
                    let nonce = (dc.nonce(&k) as i64 + nonce_skew as i64).max(0) as u64;
                    transfer(&k, 1, nonce, dev_key(to).address(), Amount(amount), Amount(price))
                }
                Op::BadCall { from, value } => {
                    let k = dev_key(from);
                    Transaction {
                        chain_id: 1,
                        sender: k.public(),
                        nonce: dc.nonce(&k),
                        gas_limit: 60_000,
                        gas_price: Amount(1),
                        kind: TxKind::Call { contract: 77, method: "pay".into(), args: vec![1, 2, 3], value: Amount(value) },
                    }
                    .sign(&k)
                }
            };
            // Admitted or refused, the supply is the same.
            let _ = dc.chain.submit(&tx.to_bytes());
            prop_assert_eq!(supply(&dc), total);
        }
        prop_assert_eq!(dc.chain.mempool().len(), 0);
        // The contract account never received a call's value: every such call reverted.
        prop_assert_eq!(dc.chain.account(&gridledger_ledger::contract_address(77)).balance, Amount::ZERO);
    }
}
