//! Attack round 11 on block building (found through issue 14's BoB): the
//! builder stops at the first candidate whose gas limit no longer fits.
//! Every finding here fails on the code it was written against and is
//! marked `#[ignore = "attack r11 [k]: ..."]` until it is fixed.

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer, DevChain};
use gridledger_ledger::{ChainConfig, ContractRegistry, Transaction, TxKind};

const BAL: Amount = Amount(1_000_000_000_000);

/// Two accounts of one party halt everyone else's transactions.
///
/// `Chain::build_block` takes the mempool's candidates round-robin over
/// senders in arrival order and `break`s at the first one that returns
/// `BlockFull` (its *gas limit* over what is left of the block's). X,
/// which arrived first, queues cheap transfers; Y, which arrived second,
/// queues one transfer whose gas limit is the whole block's (admitted: it
/// is not above the limit). Every block is then [X's next transfer]: Y's
/// heavy one no longer fits behind it, and the builder stops there, before
/// every later sender. X keeps its place by keeping its queue non-empty
/// (up to `mempool_per_sender` = 4,096 transactions, refilled at will),
/// and pays 21,000 gas a block. On the BoB this stops the relays, the
/// CCTs, the proofs and the CCT_Vs of every user.
///
/// Expected: an honest user's transfer submitted after them is included
/// within a few blocks (the builder skips a candidate that does not fit
/// and goes on with the others, or orders so one cannot shield the rest).
/// Observed: after 20 blocks it is still not included; each block held
/// only X's transfer.
#[test]
fn a_heavy_transaction_behind_another_does_not_halt_later_senders() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 8, BAL, ContractRegistry::new()).unwrap();
    let (x, y, honest) = (dev_key(3), dev_key(4), dev_key(5));
    let id = DevChain::CHAIN_ID;
    for n in 0..40 {
        dc.chain.submit(&transfer(&x, id, n, x.address(), Amount(1), Amount(1)).to_bytes()).unwrap();
    }
    let heavy = Transaction {
        chain_id: id,
        sender: y.public(),
        nonce: 0,
        gas_limit: ChainConfig::default().block_gas_limit,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: y.address(), amount: Amount(1) },
    }
    .sign(&y);
    dc.chain.submit(&heavy.to_bytes()).unwrap();
    let mine = transfer(&honest, id, 0, dev_key(6).address(), Amount(7), Amount(1));
    let h = dc.chain.submit(&mine.to_bytes()).unwrap();
    let mut sizes = Vec::new();
    for _ in 0..20 {
        let c = dc.seal().expect("a block");
        sizes.push(c.block.txs.len());
        if dc.chain.receipt(&h).unwrap().is_some() {
            break;
        }
    }
    assert!(
        dc.chain.receipt(&h).unwrap().is_some(),
        "the honest transfer is still out after {} blocks of {sizes:?} transactions",
        sizes.len()
    );
}
