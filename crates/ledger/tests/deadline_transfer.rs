//! Transfers with a deadline (`TxKind::TransferUntil`): valid in blocks up
//! to `valid_until` only — refused on submission (typed error, nothing
//! changes) and in a block once the chain's next height is above it, and
//! dropped from the mempool when it passes. The kinds before it encode as
//! they did.

mod common;

use common::{plain_chain, seal};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer, transfer_until, TRANSFER_GAS};
use gridledger_ledger::{Account, Chain, ChainError, SignedTransaction, SubmitError, Transaction, TxKind, TxStatus};

const BAL: Amount = Amount(1_000_000_000);
const PRICE: Amount = Amount(1);

fn until(k: usize, nonce: u64, amount: u128, valid_until: u64) -> SignedTransaction {
    transfer_until(&dev_key(k), 1, nonce, (dev_key(3).address(), Amount(amount), valid_until), PRICE)
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    root: Hash32,
    tip: Hash32,
    pending: usize,
    accounts: Vec<Account>,
}

fn snapshot(c: &Chain) -> Snapshot {
    Snapshot {
        root: c.state().root(),
        tip: c.tip().hash(),
        pending: c.mempool().len(),
        accounts: (0..4).map(|i| c.account(&dev_key(i).address())).collect(),
    }
}

#[test]
fn an_expired_deadline_transfer_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_chain(dir.path(), 4, BAL);
    let mut ts = 0;
    for _ in 0..3 {
        seal(&mut c, &mut ts);
    }
    assert_eq!(c.tip().height, 3);
    let before = snapshot(&c);
    // The next block is at 4: a deadline of 3 (or less) can never be met.
    for valid_until in [0, 2, 3] {
        let got = c.submit(&until(1, 0, 50, valid_until).to_bytes());
        assert_eq!(got, Err(SubmitError::Expired { valid_until, next_height: 4 }));
        assert_eq!(got.unwrap_err().code(), "expired");
        assert_eq!(snapshot(&c), before, "a refusal changes nothing");
    }
    // A deadline of 4 goes into the next block.
    let ok = until(1, 0, 50, 4);
    let h = c.submit(&ok.to_bytes()).unwrap();
    seal(&mut c, &mut ts);
    let r = c.receipt(&h).unwrap().expect("included at height 4");
    assert_eq!((r.height, r.status.clone()), (4, TxStatus::Success));
    assert_eq!(c.account(&dev_key(3).address()).balance, Amount(BAL.0 + 50));
    assert_eq!(c.account(&dev_key(1).address()).balance, Amount(BAL.0 - 50 - TRANSFER_GAS as u128));
}

#[test]
fn a_block_holding_an_expired_deadline_transfer_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_chain(dir.path(), 4, BAL);
    let mut ts = 0;
    seal(&mut c, &mut ts);
    seal(&mut c, &mut ts);
    // A proposer built a block at height 3 (another node's view, a
    // deadline of 3) ...
    let other = tempfile::tempdir().unwrap();
    let mut d = plain_chain(other.path(), 4, BAL);
    let mut ts_d = 0;
    seal(&mut d, &mut ts_d);
    seal(&mut d, &mut ts_d);
    d.submit(&until(1, 0, 50, 3).to_bytes()).unwrap();
    let (ok, _) = d.build_block(&dev_validator(0).public(), ts_d + 1_000);
    assert_eq!(ok.block.txs.len(), 1);
    // ... which is valid at 3.
    assert!(c.validate_block(&ok.block).is_ok());
    // The same transaction with a deadline of 2, in a block at 3, is not:
    // a block built by hand around the mempool's checks.
    let stale = until(1, 0, 50, 2);
    let mut forged = ok.block.clone();
    forged.txs = vec![stale];
    let before = snapshot(&c);
    match c.validate_block(&forged) {
        Err(ChainError::InvalidBlock(m)) => assert!(m.contains("valid until height 2"), "{m}"),
        other => panic!("an expired transfer in a block: {:?}", other.map(|e| e.block.header.height)),
    }
    assert_eq!(snapshot(&c), before);
}

#[test]
fn a_pending_deadline_transfer_is_dropped_when_its_deadline_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_chain(dir.path(), 4, BAL);
    let mut ts = 0;
    // Sender 1's first payment is held back (a nonce gap: nonce 1 waits
    // behind nonce 0, which is not sent), its deadline 2 passes meanwhile.
    let held = until(1, 0, 50, 2);
    let behind = until(1, 1, 60, 10);
    c.submit(&held.to_bytes()).unwrap();
    c.submit(&behind.to_bytes()).unwrap();
    // Sender 2's one stays valid for longer.
    let long = until(2, 0, 70, 10);
    c.submit(&long.to_bytes()).unwrap();
    assert_eq!(c.mempool().len(), 3);
    // Heights 1 and 2 are another proposer's, holding none of these (an
    // empty pool there).
    let other = tempfile::tempdir().unwrap();
    let mut empty = plain_chain(other.path(), 4, BAL);
    let mut ts_e = 0;
    for _ in 0..2 {
        ts_e += 1_000;
        let (ex, _) = empty.build_block(&dev_validator(0).public(), ts_e);
        empty.commit(ex.clone()).unwrap();
        let ex = c.validate_block(&ex.block).expect("an empty block");
        c.commit(ex).unwrap();
    }
    assert_eq!(c.tip().height, 2);
    ts = ts.max(ts_e);
    // The next block is at 3: `held` expired and went, with `behind` (it
    // waits for `held`'s nonce); sender 2's stays.
    assert!(!c.mempool().contains(&held.hash()), "an expired transfer left in the mempool");
    assert!(!c.mempool().contains(&behind.hash()), "its sender's later ones go with it");
    assert!(c.mempool().contains(&long.hash()));
    assert_eq!(c.mempool().len(), 1);
    seal(&mut c, &mut ts);
    assert!(c.receipt(&long.hash()).unwrap().is_some());
    assert!(c.receipt(&held.hash()).unwrap().is_none());
    assert_eq!(c.account(&dev_key(1).address()).nonce, 0);
}

#[test]
fn the_kinds_before_the_deadline_transfer_encode_as_before() {
    // Borsh tags by declaration order: the appended kind takes the next one.
    let t =
        |kind| Transaction { chain_id: 1, sender: dev_key(1).public(), nonce: 0, gas_limit: 1, gas_price: PRICE, kind };
    let to = dev_key(3).address();
    let kinds = [
        (TxKind::Transfer { to, amount: Amount(5) }, 0u8),
        (TxKind::Call { contract: 7, method: "m".into(), args: vec![1], value: Amount(0) }, 1),
        (TxKind::TransferUntil { to, amount: Amount(5), valid_until: 9 }, 2),
    ];
    for (kind, tag) in kinds {
        let enc = borsh::to_vec(&kind).unwrap();
        assert_eq!(enc[0], tag, "{kind:?}");
        let whole = borsh::to_vec(&t(kind.clone())).unwrap();
        let back: Transaction = borsh::from_slice(&whole).unwrap();
        assert_eq!(back.kind, kind);
    }
    // A transfer's encoding is exactly its fields after the tag.
    let enc = borsh::to_vec(&TxKind::Transfer { to, amount: Amount(5) }).unwrap();
    assert_eq!(enc, [&[0u8][..], &to.0, &5u128.to_le_bytes()].concat());
    // The deadline kind is a transfer for everything else.
    let k = TxKind::TransferUntil { to, amount: Amount(5), valid_until: 9 };
    assert_eq!(k.transfer_parts(), Some((to, Amount(5))));
    assert_eq!((k.valid_until(), k.expired_at(9), k.expired_at(10)), (Some(9), false, true));
    let plain = transfer(&dev_key(1), 1, 0, to, Amount(5), PRICE);
    assert_eq!(plain.tx.kind.valid_until(), None);
    assert_eq!(plain.tx.intrinsic_gas(), until(1, 0, 5, 9).tx.intrinsic_gas());
}
