//! Contracts read the hashes of the last `BLOCK_HASH_WINDOW` blocks by
//! height (`CallContext::block_hash`): the same value whichever later block
//! reads it, after a restart, and on a node that re-executes the block.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::state::{account_key, Changes};
use gridledger_ledger::{
    Account, BlockBuilder, BlockEnv, CallContext, ContractError, ContractRegistry, NativeContract, TxStatus,
    ViewContext, BLOCK_HASH_WINDOW,
};
use std::sync::Arc;

const ID: u32 = 43;

/// Returns `block_hash(height)` (borsh `Option<Hash32>`) for the `u64` LE
/// height in its arguments.
struct Probe;

impl NativeContract for Probe {
    fn name(&self) -> &'static str {
        "block-hash-probe"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        match method {
            "hash" => {
                let h = u64::from_le_bytes(args.try_into().map_err(|_| ContractError::Revert("args".into()))?);
                Ok(borsh::to_vec(&ctx.block_hash(h)?.map(|x| x.0)).unwrap())
            }
            "nothing" => Ok(vec![]),
            _ => Err(ContractError::Revert(format!("no method {method}"))),
        }
    }

    fn view(&self, _: &ViewContext<'_>, _: &str, _: &[u8]) -> Result<serde_json::Value, ContractError> {
        Ok(serde_json::Value::Null)
    }
}

fn registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(ID, Arc::new(Probe));
    r
}

fn tx(dc: &DevChain, method: &str, args: Vec<u8>) -> gridledger_ledger::SignedTransaction {
    gridledger_ledger::devnet::call(&dev_key(0), 1, dc.nonce(&dev_key(0)), ID, method, args, Amount::ZERO, 200_000)
}

/// `block_hash(height)` as a call in the next block reads it.
fn read(dc: &mut DevChain, height: u64) -> Option<Hash32> {
    let r = dc.exec(tx(dc, "hash", height.to_le_bytes().to_vec())).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    borsh::from_slice::<Option<[u8; 32]>>(&r.output).unwrap().map(Hash32)
}

fn hash_of(dc: &DevChain, height: u64) -> Hash32 {
    dc.chain.block(height).unwrap().unwrap().header.hash()
}

#[test]
fn contracts_read_recent_block_hashes_by_height_across_restarts() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    let w = BLOCK_HASH_WINDOW;
    while dc.chain.tip().height < w + 10 {
        dc.exec(tx(&dc, "nothing", vec![])).unwrap();
    }
    let tip = dc.chain.tip().height;
    // Read from block tip + 1: the parent, a few blocks down, the window's
    // last block, and nothing beyond it, at or above the reading block.
    assert_eq!(read(&mut dc, tip), Some(hash_of(&dc, tip)), "the parent");
    assert_eq!(read(&mut dc, tip - 5), Some(hash_of(&dc, tip - 5)));
    let reader = dc.chain.tip().height + 1;
    assert_eq!(read(&mut dc, reader - w), Some(hash_of(&dc, reader - w)), "the window's oldest block");
    let reader = dc.chain.tip().height + 1;
    assert_eq!(read(&mut dc, reader - w - 1), None, "beyond the window");
    let next = dc.chain.tip().height + 1;
    assert_eq!(read(&mut dc, next), None, "the reading block itself");
    assert_eq!(read(&mut dc, u64::MAX), None);
    // The same answers after a restart (the history is read back from the store).
    let probe = dc.chain.tip().height - 7;
    drop(dc);
    let mut dc = DevChain::open(d.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    assert_eq!(read(&mut dc, probe), Some(hash_of(&dc, probe)), "after a restart");
}

#[test]
fn a_node_re_executing_a_block_reads_the_same_hashes() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = DevChain::open(da.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    let mut b = DevChain::open(db.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    for i in 0..12u64 {
        let t = if i < 10 { tx(&a, "nothing", vec![]) } else { tx(&a, "hash", 3u64.to_le_bytes().to_vec()) };
        a.exec(t).unwrap();
        let h = a.chain.tip().height;
        let block = a.chain.block(h).unwrap().unwrap();
        let ex = b.chain.validate_block(&block).unwrap();
        b.chain.commit(ex).unwrap();
    }
    assert_eq!(a.chain.tip().hash(), b.chain.tip().hash());
    let out = a.chain.receipt(&a.chain.block(12).unwrap().unwrap().txs[0].hash()).unwrap().unwrap().output;
    assert_eq!(borsh::from_slice::<Option<[u8; 32]>>(&out).unwrap(), Some(hash_of(&a, 3).0));
}

#[test]
fn a_builder_without_history_sees_only_the_parent() {
    let reg = registry();
    let mut s = gridledger_ledger::State::new(4);
    let funded = Account { balance: Amount(1_000_000_000), nonce: 0 };
    let changes: Changes =
        [(account_key(&dev_key(0).address()), Some(borsh::to_vec(&funded).unwrap()))].into_iter().collect();
    s.apply(&changes);
    let parent = Hash32([9; 32]);
    let env = BlockEnv { chain_id: 1, height: 10, timestamp: 1, proposer: dev_key(5).address(), parent };
    let mut b = BlockBuilder::new(&s, &reg, env, 10_000_000);
    for (h, want) in [(9u64, Some(parent.0)), (8, None)] {
        let t = gridledger_ledger::devnet::call(
            &dev_key(0),
            1,
            9 - h,
            ID,
            "hash",
            h.to_le_bytes().to_vec(),
            Amount(0),
            200_000,
        );
        let r = b.push(t).unwrap().clone();
        assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
        assert_eq!(borsh::from_slice::<Option<[u8; 32]>>(&r.output).unwrap(), want, "height {h}");
    }
}
