//! Deferred (unsynced) store transactions, on the fault-injecting disk:
//! visible at once, no fsync, lost by a crash before the next synced
//! transaction (always as a suffix, never leaving a hole), and made durable
//! by a synced transaction or `Store::sync`.

use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{Chain, ChainConfig, ContractRegistry, ExecutedBlock};
use std::sync::Arc;

fn open(disk: &Arc<SimDisk>) -> Chain {
    let d = disk.clone();
    let store = Store::open_backend(move || d.backend()).expect("store opens");
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), &[dev_validator(0)]);
    Chain::open_store(store, genesis, ContractRegistry::new(), ChainConfig::default()).expect("chain opens")
}

/// The next block (one transfer with nonce `nonce`), executed but not committed.
fn next_block(chain: &mut Chain, nonce: u64) -> ExecutedBlock {
    let tx = transfer(&dev_key(0), 1, nonce, dev_key(1).address(), Amount(1), Amount(1));
    chain.submit(&tx.to_bytes()).expect("transfer admitted");
    let t = chain.tip().timestamp + 1;
    chain.build_block(&dev_validator(0).public(), t).0
}

#[test]
fn a_deferred_commit_is_visible_costs_no_sync_and_a_crash_loses_only_the_deferred_suffix() {
    let disk = SimDisk::new();
    let mut chain = open(&disk);
    let b1 = next_block(&mut chain, 0);
    chain.commit_with_aux_durability(vec![b1], &[("k", b"synced")], true).unwrap();
    let synced = disk.syncs();
    let b2 = next_block(&mut chain, 1);
    chain.commit_with_aux_durability(vec![b2], &[("k", b"deferred 2")], false).unwrap();
    let b3 = next_block(&mut chain, 2);
    chain.commit_with_aux_durability(vec![b3], &[("k", b"deferred 3")], false).unwrap();
    assert_eq!(disk.syncs(), synced, "deferred commits cost no sync");
    assert_eq!(chain.tip().height, 3);
    assert_eq!(chain.store().tip().unwrap(), Some(3), "deferred blocks are visible to reads at once");
    assert_eq!(chain.store().get_aux("k").unwrap().as_deref(), Some(&b"deferred 3"[..]));

    // The process dies: both deferred transactions go, the synced one stays.
    disk.kill();
    drop(chain);
    disk.restart();
    let chain = open(&disk);
    assert_eq!(chain.tip().height, 1, "the chain restarts at the last synced block");
    assert_eq!(chain.store().get_aux("k").unwrap().as_deref(), Some(&b"synced"[..]));
}

#[test]
fn a_synced_commit_or_store_sync_makes_earlier_deferred_ones_durable() {
    let disk = SimDisk::new();
    let mut chain = open(&disk);
    let b1 = next_block(&mut chain, 0);
    chain.commit_with_aux_durability(vec![b1], &[("k", b"one")], false).unwrap();
    // An aux-only synced write carries block 1 with it.
    chain.store().commit_with_aux_durability(&[], &[("k", b"two")], true).unwrap();
    let b2 = next_block(&mut chain, 1);
    chain.commit_with_aux_durability(vec![b2], &[("k", b"three")], false).unwrap();
    let before = disk.syncs();
    chain.store().sync().unwrap();
    assert_eq!(disk.syncs(), before + 1, "one sync");
    disk.kill();
    drop(chain);
    disk.restart();
    let chain = open(&disk);
    assert_eq!(chain.tip().height, 2);
    assert_eq!(chain.store().get_aux("k").unwrap().as_deref(), Some(&b"three"[..]));
}
