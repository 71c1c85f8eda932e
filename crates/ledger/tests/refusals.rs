//! Every refusal of the ledger, table-driven: each invalid submission, block,
//! executor push, store reopen and genesis is refused with its typed reason,
//! and nothing changes (state root, tip, mempool, the data on disk).

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer, DevChain, TRANSFER_GAS};
use gridledger_ledger::state::account_key;
use gridledger_ledger::{
    Account, Allocation, BlockBuilder, BlockEnv, Chain, ChainConfig, ChainError, ContractRegistry, Genesis, StoreError,
    SubmitError, Transaction, TxKind, TxRejected,
};
use redb::{ReadableDatabase, TableDefinition};
use std::path::Path;

const BAL: Amount = Amount(1_000_000_000);

fn open(dir: &Path, genesis: Genesis, config: ChainConfig) -> Result<Chain, ChainError> {
    Chain::open(dir, genesis, ContractRegistry::new(), config)
}

fn chain_with(dir: &Path, config: ChainConfig) -> Chain {
    open(dir, dev_genesis(1, 4, BAL, &[dev_validator(0)]), config).expect("open")
}

/// What a refusal must leave untouched.
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

fn tx(k: usize, nonce: u64, gas_limit: u64, gas_price: Amount, amount: Amount) -> Vec<u8> {
    let key = dev_key(k);
    Transaction {
        chain_id: 1,
        sender: key.public(),
        nonce,
        gas_limit,
        gas_price,
        kind: TxKind::Transfer { to: dev_key(3).address(), amount },
    }
    .sign(&key)
    .to_bytes()
}

/// The submission refusals that need a particular configuration or history.
/// Each row: a name, the configuration, transactions admitted first, the
/// refused transaction and the exact error.
#[test]
fn submissions_are_refused_with_their_reason_and_change_nothing() {
    let small = ChainConfig { mempool_capacity: 2, mempool_per_sender: 8, ..ChainConfig::default() };
    let per_sender = ChainConfig { mempool_capacity: 100, mempool_per_sender: 2, ..ChainConfig::default() };
    let priced = ChainConfig { min_gas_price: Amount(5), ..ChainConfig::default() };
    let one = Amount(1);
    type Row = (&'static str, ChainConfig, Vec<Vec<u8>>, Vec<u8>, SubmitError);
    let rows: Vec<Row> = vec![
        (
            "mempool full",
            small,
            vec![tx(0, 0, TRANSFER_GAS, one, one), tx(1, 0, TRANSFER_GAS, one, one)],
            tx(2, 0, TRANSFER_GAS, one, one),
            SubmitError::MempoolFull { capacity: 2 },
        ),
        (
            "sender queue full",
            per_sender,
            vec![tx(0, 0, TRANSFER_GAS, one, one), tx(0, 1, TRANSFER_GAS, one, one)],
            tx(0, 2, TRANSFER_GAS, one, one),
            SubmitError::SenderQueueFull { limit: 2 },
        ),
        (
            "gas price too low",
            priced.clone(),
            vec![],
            tx(0, 0, TRANSFER_GAS, Amount(4), one),
            SubmitError::GasPriceTooLow { price: Amount(4), min: Amount(5) },
        ),
        (
            "gas price x gas limit overflows",
            ChainConfig::default(),
            vec![],
            tx(0, 0, TRANSFER_GAS, Amount(u128::MAX / 2), one),
            SubmitError::Overflow,
        ),
        (
            "fee plus amount overflows",
            ChainConfig::default(),
            vec![],
            tx(0, 0, TRANSFER_GAS, one, Amount(u128::MAX - 10)),
            SubmitError::Overflow,
        ),
    ];
    for (name, config, before, bad, want) in rows {
        let d = tempfile::tempdir().unwrap();
        let mut c = chain_with(d.path(), config);
        for b in &before {
            c.submit(b).unwrap_or_else(|e| panic!("{name}: setup refused: {e}"));
        }
        let snap = snapshot(&c);
        let got = c.submit(&bad).expect_err(name);
        assert_eq!(got, want, "{name}");
        assert!(!got.code().is_empty() && !got.to_string().is_empty());
        assert_eq!(snapshot(&c), snap, "{name}: something changed");
    }
    // The minimum gas price admits a transaction that pays it exactly.
    let d = tempfile::tempdir().unwrap();
    let mut c = chain_with(d.path(), priced);
    assert!(c.submit(&tx(0, 0, TRANSFER_GAS, Amount(5), one)).is_ok());
}

/// The mempool's own overflow check: what a sender has pending plus the
/// next transaction's maximum cost does not fit in an amount.
#[test]
fn pending_spend_overflow_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let rich = dev_key(0);
    let half = Amount(1u128 << 127);
    let genesis = Genesis {
        chain_id: 1,
        timestamp: 0,
        state_buckets_log2: 4,
        allocations: vec![Allocation { address: rich.address(), balance: half }],
        validators: vec![dev_validator(0).public()],
    };
    let mut c = open(d.path(), genesis, ChainConfig::default()).unwrap();
    let fee = TRANSFER_GAS as u128;
    // Each costs exactly 2^127 at most; the balance covers the first.
    c.submit(&tx(0, 0, TRANSFER_GAS, Amount(1), Amount(half.0 - fee))).unwrap();
    let root = c.state().root();
    assert_eq!(c.submit(&tx(0, 1, TRANSFER_GAS, Amount(1), Amount(half.0 - fee))), Err(SubmitError::Overflow));
    assert_eq!(c.mempool().len(), 1);
    assert_eq!(c.state().root(), root);
}

/// A block that fails one header check, built by tampering a valid one.
#[test]
fn blocks_failing_a_check_are_refused_with_their_reason() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let registry = ContractRegistry::new();
    let mut producer = DevChain::open(d1.path(), 4, BAL, registry.clone()).unwrap();
    let strict = ChainConfig { max_block_txs: 2, ..ChainConfig::default() };
    let mut follower = chain_with(d2.path(), strict);
    for i in 0..3 {
        producer
            .chain
            .submit(&transfer(&dev_key(i), 1, 0, dev_key(3).address(), Amount(7), Amount(1)).to_bytes())
            .unwrap();
    }
    let good = producer.seal().unwrap().block;
    assert_eq!(good.txs.len(), 3);
    let two = {
        // A valid two-transaction block for the strict follower.
        let d3 = tempfile::tempdir().unwrap();
        let mut p = DevChain::open(d3.path(), 4, BAL, registry).unwrap();
        for i in 0..2 {
            p.chain
                .submit(&transfer(&dev_key(i), 1, 0, dev_key(3).address(), Amount(7), Amount(1)).to_bytes())
                .unwrap();
        }
        p.seal().unwrap().block
    };
    type Tamper = fn(&mut gridledger_ledger::Block);
    let rows: Vec<(&str, Tamper, &str)> = vec![
        ("wrong chain id", |b| b.header.chain_id = 9, "chain id 9"),
        ("wrong height", |b| b.header.height = 2, "height 2 does not follow 0"),
        ("wrong parent", |b| b.header.parent.0[0] ^= 1, "parent hash mismatch"),
        ("timestamp not after parent", |b| b.header.timestamp = 0, "timestamp not after parent"),
        ("too many transactions", |_| {}, "3 transactions exceed the limit"),
        ("tx_count disagrees", |b| b.header.tx_count = 3, "header does not match re-execution"),
        ("gas_used disagrees", |b| b.header.gas_used += 1, "header does not match re-execution"),
        ("tx_root disagrees", |b| b.header.tx_root.0[5] ^= 1, "header does not match re-execution"),
        ("receipt_root disagrees", |b| b.header.receipt_root.0[5] ^= 1, "header does not match re-execution"),
        ("transactions reordered", |b| b.txs.swap(0, 1), "header does not match re-execution"),
        (
            "a transaction is replayed",
            |b| {
                let t = b.txs[0].clone();
                b.txs[1] = t;
            },
            "nonce mismatch",
        ),
        ("a transaction's signature is forged", |b| b.txs[1].signature.0[3] ^= 1, "bad signature"),
    ];
    let snap = snapshot(&follower);
    for (name, tamper, reason) in rows {
        let mut b = if name == "too many transactions" { good.clone() } else { two.clone() };
        tamper(&mut b);
        match follower.validate_block(&b) {
            Err(ChainError::InvalidBlock(m)) => assert!(m.contains(reason), "{name}: {m:?} lacks {reason:?}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(snapshot(&follower), snap, "{name}: something changed");
    }
    // The untampered two-transaction block is accepted.
    let ex = follower.validate_block(&two).unwrap();
    follower.commit(ex).unwrap();
    assert_eq!(follower.tip().height, 1);
}

/// The executor refuses a transaction it cannot place in the block, and the
/// block under construction is unchanged.
#[test]
fn executor_rejections_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let c = chain_with(d.path(), ChainConfig::default());
    let registry = ContractRegistry::new();
    let env = BlockEnv {
        chain_id: DevChain::CHAIN_ID,
        height: 1,
        timestamp: 5,
        proposer: dev_validator(0).address(),
        parent: gridledger_core::Hash32::ZERO,
    };
    let mk = |k: usize, nonce: u64, gas_limit: u64, price: u128, amount: u128| {
        Transaction {
            chain_id: 1,
            sender: dev_key(k).public(),
            nonce,
            gas_limit,
            gas_price: Amount(price),
            kind: TxKind::Transfer { to: dev_key(3).address(), amount: Amount(amount) },
        }
        .sign(&dev_key(k))
    };
    let limit = 2 * TRANSFER_GAS + 1;
    let mut b = BlockBuilder::new(c.state(), &registry, env, limit);
    b.push(mk(0, 0, TRANSFER_GAS, 1, 1)).unwrap();
    let rows = vec![
        ("nonce too high", mk(1, 1, TRANSFER_GAS, 1, 1), TxRejected::Nonce { expected: 0, got: 1 }),
        ("nonce reused in the block", mk(0, 0, TRANSFER_GAS, 1, 2), TxRejected::Nonce { expected: 1, got: 0 }),
        (
            "balance below maximum cost",
            mk(1, 0, TRANSFER_GAS, 1, BAL.0),
            TxRejected::Balance { needed: Amount(BAL.0 + TRANSFER_GAS as u128), available: BAL },
        ),
        ("maximum cost overflows", mk(1, 0, TRANSFER_GAS, u128::MAX, 0), TxRejected::Overflow),
        ("block gas limit", mk(1, 0, TRANSFER_GAS + 2, 1, 1), TxRejected::BlockFull),
    ];
    for (name, t, want) in rows {
        let (len, gas) = (b.len(), b.gas_used());
        let accts: Vec<Account> = (0..4).map(|i| b.state().account(&dev_key(i).address())).collect();
        assert_eq!(b.push(t).map(|_| ()), Err(want.clone()), "{name}");
        assert!(!want.to_string().is_empty());
        assert_eq!((b.len(), b.gas_used()), (len, gas), "{name}");
        let after: Vec<Account> = (0..4).map(|i| b.state().account(&dev_key(i).address())).collect();
        assert_eq!(after, accts, "{name}: an account changed");
    }
    // What does fit still goes in.
    b.push(mk(1, 0, TRANSFER_GAS, 1, 1)).unwrap();
    assert_eq!(b.len(), 2);
}

const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// A chain with two committed blocks; returns its directory.
fn two_blocks() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 4, BAL, ContractRegistry::new()).unwrap();
    for n in 0..2 {
        dc.exec(transfer(&dev_key(0), 1, n, dev_key(1).address(), Amount(10), Amount(1))).unwrap();
    }
    assert_eq!(dc.chain.tip().height, 2);
    d
}

fn edit_db(dir: &Path, f: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::create(dir.join("chain.redb")).unwrap();
    let w = db.begin_write().unwrap();
    f(&w);
    w.commit().unwrap();
}

/// The stored tip height, read straight from the file.
fn stored_tip(dir: &Path) -> Vec<u8> {
    let db = redb::Database::create(dir.join("chain.redb")).unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table(META).unwrap();
    t.get("tip").unwrap().map(|v| v.value().to_vec()).unwrap_or_default()
}

fn reopen(dir: &Path) -> Result<Chain, ChainError> {
    open(dir, dev_genesis(1, 4, BAL, &[dev_validator(0)]), ChainConfig::default())
}

#[test]
fn reopening_a_damaged_store_is_refused_with_its_reason() {
    type Damage = fn(&redb::WriteTransaction);
    type Expect = fn(&ChainError) -> bool;
    let rows: Vec<(&str, Damage, Expect)> = vec![
        (
            "a balance edited behind the chain's back",
            |w| {
                let mut t = w.open_table(STATE).unwrap();
                let acct = Account { balance: Amount(BAL.0 * 2), nonce: 0 };
                t.insert(account_key(&dev_key(2).address()).as_slice(), borsh::to_vec(&acct).unwrap().as_slice())
                    .unwrap();
            },
            |e| matches!(e, ChainError::InvalidBlock(m) if m.contains("does not match block 2")),
        ),
        (
            "an account deleted",
            |w| {
                w.open_table(STATE).unwrap().remove(account_key(&dev_key(3).address()).as_slice()).unwrap();
            },
            |e| matches!(e, ChainError::InvalidBlock(m) if m.contains("stored state root")),
        ),
        (
            "the tip block missing",
            |w| {
                w.open_table(BLOCKS).unwrap().remove(2u64).unwrap();
            },
            |e| matches!(e, ChainError::Store(StoreError::Corrupt { table: "blocks", detail }) if detail == "tip 2 missing"),
        ),
        (
            "the tip block undecodable",
            |w| {
                w.open_table(BLOCKS).unwrap().insert(2u64, &b"junk"[..]).unwrap();
            },
            |e| matches!(e, ChainError::Store(StoreError::Corrupt { table: "blocks", .. })),
        ),
        (
            "the tip record garbled",
            |w| {
                w.open_table(META).unwrap().insert("tip", &b"xyz"[..]).unwrap();
            },
            |e| matches!(e, ChainError::Store(StoreError::Corrupt { table: "meta", .. })),
        ),
    ];
    for (name, damage, want) in rows {
        let d = two_blocks();
        edit_db(d.path(), damage);
        let tip_before = stored_tip(d.path());
        let e = reopen(d.path()).err().unwrap_or_else(|| panic!("{name}: opened"));
        assert!(want(&e), "{name}: {e:?}");
        assert!(!e.to_string().is_empty());
        // The refused open wrote nothing: the tip record is as it was.
        assert_eq!(stored_tip(d.path()), tip_before, "{name}");
    }
    // And an undamaged store reopens.
    let d = two_blocks();
    assert_eq!(reopen(d.path()).unwrap().tip().height, 2);
}

#[test]
fn invalid_genesis_is_refused_with_its_reason() {
    let v = vec![dev_validator(0).public()];
    let a = |i: usize, b: u128| Allocation { address: dev_key(i).address(), balance: Amount(b) };
    let g = |allocations: Vec<Allocation>, buckets: u32| Genesis {
        chain_id: 1,
        timestamp: 0,
        state_buckets_log2: buckets,
        allocations,
        validators: v.clone(),
    };
    let rows = vec![
        ("too many state buckets", g(vec![a(0, 1)], 25), "state_buckets_log2 must be at most 24"),
        ("supply overflows", g(vec![a(0, u128::MAX), a(1, 1)], 4), "total supply overflows"),
        ("address allocated twice", g(vec![a(0, 1), a(0, 2)], 4), "allocated twice"),
    ];
    for (name, genesis, reason) in rows {
        let d = tempfile::tempdir().unwrap();
        match open(d.path(), genesis, ChainConfig::default()) {
            Err(ChainError::Genesis(m)) => assert!(m.contains(reason), "{name}: {m}"),
            Err(e) => panic!("{name}: {e:?}"),
            Ok(_) => panic!("{name}: opened"),
        }
        // Nothing was committed: the directory still takes a valid genesis
        // at height 0.
        let c = open(d.path(), g(vec![a(0, 1)], 4), ChainConfig::default()).unwrap();
        assert_eq!(c.tip().height, 0, "{name}");
        assert_eq!(c.account(&dev_key(0).address()).balance, Amount(1));
    }
    // A data directory holding another chain refuses a different genesis.
    let d = two_blocks();
    let other = dev_genesis(2, 4, BAL, &[dev_validator(0)]);
    match open(d.path(), other, ChainConfig::default()) {
        Err(ChainError::Genesis(m)) => assert!(m.contains("different chain")),
        other => panic!("{:?}", other.err()),
    }
    assert_eq!(reopen(d.path()).unwrap().tip().height, 2);
}
