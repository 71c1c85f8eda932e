//! Property tests: transactions, blocks and receipts round-trip through the
//! canonical codec, re-encode to the same bytes, and arbitrary bytes never
//! panic the decoder.

use gridledger_core::codec::{decode, encode};
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{Block, BlockHeader, Event, Receipt, Seal, SignedTransaction, Transaction, TxKind, TxStatus};
use proptest::prelude::*;

fn arb_kind() -> impl Strategy<Value = TxKind> {
    prop_oneof![
        (any::<[u8; 20]>(), any::<u128>()).prop_map(|(to, a)| TxKind::Transfer { to: Address(to), amount: Amount(a) }),
        (any::<u32>(), "[a-z_]{0,12}", proptest::collection::vec(any::<u8>(), 0..64), any::<u128>())
            .prop_map(|(contract, method, args, v)| TxKind::Call { contract, method, args, value: Amount(v) }),
        (any::<[u8; 20]>(), any::<u128>(), any::<u64>()).prop_map(|(to, a, valid_until)| TxKind::TransferUntil {
            to: Address(to),
            amount: Amount(a),
            valid_until
        }),
    ]
}

fn arb_tx() -> impl Strategy<Value = SignedTransaction> {
    (0usize..4, any::<u32>(), any::<u64>(), any::<u64>(), any::<u128>(), arb_kind()).prop_map(
        |(k, chain_id, nonce, gas_limit, price, kind)| {
            Transaction { chain_id, sender: dev_key(k).public(), nonce, gas_limit, gas_price: Amount(price), kind }
                .sign(&dev_key(k))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn transactions_round_trip(tx in arb_tx()) {
        let bytes = tx.to_bytes();
        let back = SignedTransaction::from_bytes(&bytes, 1 << 20).unwrap();
        prop_assert_eq!(&back, &tx);
        prop_assert_eq!(back.to_bytes(), bytes);
        prop_assert_eq!(back.hash(), tx.hash());
    }

    #[test]
    fn blocks_and_receipts_round_trip(txs in proptest::collection::vec(arb_tx(), 0..6), h in any::<u64>(), reason in ".{0,20}") {
        let block = Block {
            header: BlockHeader {
                chain_id: 1, height: h, parent: Hash32([1; 32]), timestamp: h / 2, proposer: dev_key(0).public(),
                tx_root: Hash32([2; 32]), receipt_root: Hash32([3; 32]), state_root: Hash32([4; 32]),
                gas_used: h % 1000, tx_count: txs.len() as u32,
            },
            txs,
            seal: Seal::Quorum { view: 3, signatures: vec![(0, dev_key(0).sign(&Hash32([5; 32])))] },
        };
        let bytes = encode(&block);
        let back: Block = decode(&bytes, 1 << 24).unwrap();
        prop_assert_eq!(&back, &block);
        prop_assert_eq!(encode(&back), bytes);
        let r = Receipt {
            tx_hash: Hash32([6; 32]), height: h, index: 0, sender: Address([7; 20]),
            status: TxStatus::Reverted(reason), gas_used: 1, fee: Amount(2),
            events: vec![Event { emitter: 1, name: "x".into(), attributes: vec![("k".into(), "v".into())] }],
            output: vec![1, 2],
        };
        let back: Receipt = decode(&encode(&r), 1 << 20).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SignedTransaction::from_bytes(&bytes, 1 << 20);
        let _ = decode::<Block>(&bytes, 1 << 20);
        let _ = decode::<Receipt>(&bytes, 1 << 20);
    }
}
