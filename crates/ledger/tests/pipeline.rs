//! Pipelined heights at the ledger: a block built on a decided but not yet
//! committed parent ([`Chain::build_block_on`]) runs on the state *after*
//! that parent, so it never spends again what the parent spent, and it is
//! exactly the block validators accept once the parent is committed.

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, ChainError, ContractRegistry, Genesis, SignedTransaction};
use std::collections::BTreeSet;

const BAL: Amount = Amount(1_000_000_000);

fn genesis() -> Genesis {
    dev_genesis(1, 8, BAL, &[dev_validator(0), dev_validator(1)])
}

fn open(dir: &std::path::Path) -> Chain {
    Chain::open(dir, genesis(), ContractRegistry::new(), ChainConfig::default()).unwrap()
}

fn admit(c: &mut Chain, tx: SignedTransaction) {
    let v = c.rules().check_decoded(tx).unwrap();
    c.admit(v).unwrap();
}

/// Two validators: X builds height 1 with account 0's nonce-0 transfer to
/// account 1; Y holds a conflicting nonce-0 transfer of account 0 (to
/// account 2: the double spend a client sent to another validator), then
/// account 0's nonce-1 transfer and account 3's. Y validates X's block and,
/// before committing it, builds height 2 on it: the double spend is left
/// out, account 0's next transaction (valid only after height 1) and
/// account 3's are in, and Y's own state is untouched. Once height 1 is
/// committed, the early block validates exactly (same header) on the
/// committed state, and commits.
#[test]
fn a_block_built_on_an_uncommitted_parent_refuses_a_double_spend_across_the_two() {
    let (dx, dy) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut x, mut y) = (open(dx.path()), open(dy.path()));
    let spend = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(600_000_000), Amount(1));
    let double = transfer(&dev_key(0), 1, 0, dev_key(2).address(), Amount(600_000_000), Amount(1));
    let next = transfer(&dev_key(0), 1, 1, dev_key(2).address(), Amount(1_000), Amount(1));
    let other = transfer(&dev_key(3), 1, 0, dev_key(4).address(), Amount(7), Amount(1));
    admit(&mut x, spend.clone());
    let h1 = x.build_block(&dev_validator(0).public(), 1_000).0;
    assert_eq!(h1.block.txs, vec![spend.clone()]);

    admit(&mut y, double.clone());
    admit(&mut y, next.clone());
    admit(&mut y, other.clone());
    let h1_at_y = y.validate_block(&h1.block).unwrap();
    let root_before = y.state().root();
    let pending_before = y.mempool().len();
    let h2 = y.build_block_on(&h1_at_y, &dev_validator(1).public(), 2_000).unwrap();
    let got: BTreeSet<_> = h2.block.txs.iter().map(|t| t.hash()).collect();
    let want: BTreeSet<_> = [next.hash(), other.hash()].into();
    assert_eq!(got, want, "the double spend of height 1's nonce is left out, the rest is in");
    assert_eq!(h2.block.header.height, 2);
    assert_eq!(h2.block.header.parent, h1.block.hash());
    // Building changed nothing: no state, no eviction.
    assert_eq!(y.state().root(), root_before);
    assert_eq!(y.mempool().len(), pending_before);

    // The early block is what re-execution on the committed parent gives.
    y.commit(h1_at_y).unwrap();
    let replayed = y.validate_block(&h2.block).unwrap();
    assert_eq!(replayed.block.header, h2.block.header);
    y.commit(replayed).unwrap();
    assert_eq!(y.account(&dev_key(0).address()).nonce, 2);
    assert_eq!(y.account(&dev_key(2).address()).balance, Amount(BAL.0 + 1_000));
}

/// Built on the state *before* the parent (the pipelining bug the
/// simulator's `PipelineStaleState` mutant plants), the block spends
/// again what the parent spent; validators that committed the parent
/// refuse it with a typed error, and nothing changes.
#[test]
fn a_block_built_on_the_pre_parent_state_is_refused_after_the_parent_commits() {
    let d = tempfile::tempdir().unwrap();
    let mut c = open(d.path());
    let spend = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(600_000_000), Amount(1));
    admit(&mut c, spend.clone());
    let h1 = c.build_block(&dev_validator(0).public(), 1_000).0;
    let stale = c
        .build_block_over(&h1.block.header, &Default::default(), &BTreeSet::new(), &dev_validator(1).public(), 2_000)
        .unwrap();
    assert_eq!(stale.block.txs, vec![spend], "the stale build spends the parent's nonce again");
    c.commit(h1).unwrap();
    let root = c.state().root();
    let err = c.validate_block(&stale.block).unwrap_err();
    assert!(matches!(err, ChainError::InvalidBlock(ref m) if m.contains("nonce")), "{err}");
    assert_eq!(c.state().root(), root);
    assert_eq!(c.tip().height, 1);
}

/// Only the tip's successor can be built on: a parent at another height
/// or on another branch is refused with a typed error.
#[test]
fn building_on_a_block_that_does_not_extend_the_tip_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut c = open(d.path());
    admit(&mut c, transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(5), Amount(1)));
    let h1 = c.build_block(&dev_validator(0).public(), 1_000).0;
    let mut off = h1.clone();
    off.block.header.parent = gridledger_core::Hash32([9; 32]);
    let err = c.build_block_on(&off, &dev_validator(1).public(), 2_000).unwrap_err();
    assert!(matches!(err, ChainError::InvalidBlock(_)), "{err}");
    c.commit(h1.clone()).unwrap();
    // Now h1 is the tip itself, not its successor.
    let err = c.build_block_on(&h1, &dev_validator(1).public(), 2_000).unwrap_err();
    assert!(matches!(err, ChainError::InvalidBlock(_)), "{err}");
}
