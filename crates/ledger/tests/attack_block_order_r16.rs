//! Sixteenth attack round, ledger side (issue 14's chains): blocks filled
//! highest gas price first, then by arrival (commit ceab31a), with a
//! transfer that carries a deadline (`TxKind::TransferUntil`).
//!
//! Every finding here fails on the code it was written against and is
//! marked `#[ignore = "attack r16 [k]: ..."]` until it is fixed; tests
//! without the mark held up.

mod common;

use common::{plain_chain, seal};
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer, transfer_until};
use gridledger_ledger::{Chain, ChainConfig, SignedTransaction, SubmitError};

const BAL: Amount = Amount(1_000_000_000_000);

/// The payer's transfer with a deadline at gas price `price`.
fn payment(nonce: u64, valid_until: u64, price: u128) -> SignedTransaction {
    transfer_until(&dev_key(0), 1, nonce, (dev_key(3).address(), Amount(10), valid_until), Amount(price))
}

/// Keeps two blocks' worth of account 1's transfers at `price` pending.
fn keep_busy(c: &mut Chain, price: u128) {
    let key = dev_key(1);
    let per_block = ChainConfig::default().max_block_txs as u64;
    let committed = c.account(&key.address()).nonce;
    let mut next = c.next_nonce(&key.address());
    while next - committed < 2 * per_block {
        c.submit(&transfer(&key, 1, next, key.address(), Amount(1), Amount(price)).to_bytes()).unwrap();
        next += 1;
    }
}

// ------------------------------------------------------------------- [2]

/// One sealed block, two blocks' worth of account 1's transfers at price 2
/// pending, and the payer's transfer at price 1 with a deadline four
/// blocks ahead submitted behind them; returns the chain's directory (keep
/// it alive), the chain, the last block's timestamp, the deadline and the
/// payment.
fn cheap_payment_behind_dearer_traffic() -> (tempfile::TempDir, Chain, u64, u64, SignedTransaction) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_chain(dir.path(), 4, BAL);
    let mut ts = 0;
    seal(&mut c, &mut ts);
    let deadline = c.tip().height + 4;
    keep_busy(&mut c, 2);
    let cheap = payment(0, deadline, 1);
    c.submit(&cheap.to_bytes()).unwrap();
    (dir, c, ts, deadline, cheap)
}

/// The payer whose pending transfer is outbid by traffic at a higher gas
/// price cannot raise its price: the mempool refuses a copy of the same
/// nonce at a higher price (`NonceTooLow`) while the first is pending, so
/// under the new strict price order its transfer waits for as long as the
/// dearer traffic lasts — here until its deadline passes and it is dropped
/// unexecuted (before ceab31a the round-robin over senders reached it in
/// the first block). The xchain's R9-1 path ("the payer's wallet re-signed
/// the same payment with a higher fee and that copy landed") cannot
/// happen on this ledger while the first copy is pending.
///
/// Expected: a higher-priced copy of a pending transaction replaces it
/// (replace-by-fee, as the pool's price order invites), so the payer can
/// react. Observed: `NonceTooLow`; the payment never lands.
#[test]
fn a_pending_transfer_outbid_by_dearer_traffic_can_be_repriced_and_lands() {
    let (_dir, mut c, mut ts, deadline, cheap) = cheap_payment_behind_dearer_traffic();
    seal(&mut c, &mut ts);
    assert!(c.receipt(&cheap.hash()).unwrap().is_none(), "outbid: not in the first block");
    // The payer sees it stuck and re-signs the same payment at price 3.
    let dear = payment(0, deadline, 3);
    let replaced = c.submit(&dear.to_bytes());
    for _ in 0..5 {
        keep_busy(&mut c, 2);
        seal(&mut c, &mut ts);
    }
    let landed = c.receipt(&cheap.hash()).unwrap().is_some() || c.receipt(&dear.hash()).unwrap().is_some();
    assert!(c.tip().height > deadline);
    assert!(
        replaced.is_ok() && landed,
        "replacement: {replaced:?}; payer's nonce {} (landed: {landed})",
        c.account(&dev_key(0).address()).nonce
    );
}

/// Held up: without the re-pricing the cheap payment starves while the
/// dearer traffic lasts and is dropped at its deadline, and a copy that
/// does not pay the replacement's minimum bump (here: the same price) is
/// refused with a typed error that changes nothing. (Before the fix of [2]
/// every same-nonce copy was refused `NonceTooLow`.)
#[test]
fn a_cheap_deadline_transfer_behind_dearer_traffic_is_dropped_at_its_deadline() {
    let (_dir, mut c, mut ts, deadline, cheap) = cheap_payment_behind_dearer_traffic();
    let pending = c.mempool().len();
    let same_price = transfer_until(&dev_key(0), 1, 0, (dev_key(3).address(), Amount(11), deadline), Amount(1));
    assert!(matches!(
        c.submit(&same_price.to_bytes()),
        Err(SubmitError::ReplacementUnderpriced { pending: Amount(1), min: Amount(2) })
    ));
    assert_eq!(c.mempool().len(), pending);
    for _ in 0..6 {
        keep_busy(&mut c, 2);
        seal(&mut c, &mut ts);
    }
    assert!(c.tip().height > deadline);
    assert!(c.receipt(&cheap.hash()).unwrap().is_none());
    assert!(!c.mempool().contains(&cheap.hash()), "dropped at its deadline");
    assert_eq!(c.account(&dev_key(0).address()).nonce, 0);
}

// ------------------------------------------------------------------- [5]

/// A transfer of 1 to itself with a block-sized gas limit at `price`.
fn block_sized(key: &gridledger_core::crypto::KeyPair, nonce: u64, price: u128) -> SignedTransaction {
    let mut tx = transfer(key, 1, nonce, key.address(), Amount(1), Amount(price)).tx;
    tx.gas_limit = ChainConfig::default().block_gas_limit;
    tx.sign(key)
}

/// The block's walk stops once `max_block_txs` candidates were skipped or
/// refused (`fill_block`: "at most `max` transactions placed and `max`
/// refused"), and a candidate whose gas *limit* no longer fits is skipped
/// for free (only the gas a placed transaction *uses* is charged). One
/// party with 301 funded accounts keeps one block-sized self-transfer
/// pending in each at gas price 2 (it reserves the limit, pays 21,000 gas
/// only when placed). Each block: the first of them fits and is placed
/// (21,000 gas used), the next 300 no longer fit and are skipped — the
/// walk stops there, before any honest transaction at price 1 or 2 is
/// even tried; the skipped senders are served first in the next block
/// (`serve_first`) and the pattern repeats. Every block holds exactly one
/// transaction: the chain is frozen for everyone at or below the
/// flooder's price for one transfer's fee a block (300 times less than
/// filling blocks with transfers, attack r16 [1]).
///
/// Expected: an ordinary transfer pending on the chain is included within
/// a few blocks (candidates skipped for gas do not end the walk, or
/// count against a bound no cheaper than the block's own). Observed: after
/// 12 blocks the honest transfer is still pending; every block held one
/// transaction.
#[test]

fn skipped_block_sized_transactions_do_not_shut_out_an_ordinary_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = 320;
    let mut c = plain_chain(dir.path(), accounts, BAL);
    let mut ts = 0;
    let flooders: Vec<_> = (1..=301).map(dev_key).collect();
    let refill = |c: &mut Chain| {
        for k in &flooders {
            let a = k.address();
            if c.next_nonce(&a) == c.account(&a).nonce {
                c.submit(&block_sized(k, c.next_nonce(&a), 2).to_bytes()).unwrap();
            }
        }
    };
    refill(&mut c);
    let honest = transfer(&dev_key(0), 1, 0, dev_key(3).address(), Amount(10), Amount(1));
    c.submit(&honest.to_bytes()).unwrap();
    let mut sizes = Vec::new();
    for h in 1..=12u64 {
        refill(&mut c);
        ts += 1_000;
        let (ex, _) = c.build_block(&dev_validator(0).public(), ts);
        sizes.push(ex.block.txs.len());
        c.commit(ex).unwrap();
        assert_eq!(c.tip().height, h);
    }
    assert!(
        c.receipt(&honest.hash()).unwrap().is_some(),
        "the honest transfer is still pending after 12 blocks; block sizes {sizes:?}"
    );
}
