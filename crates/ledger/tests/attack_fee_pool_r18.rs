//! Attack r18 on the leaderless fee pool (`BlockBuilder::push_pooled`,
//! `BlockBuilder::share_fee_pool`): coin conservation when the pool is
//! shared with a payee listed twice, shared twice, refilled after sharing,
//! never shared, and when pooled transactions revert or are rejected.
//! These held up: each is a passing test.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::contract::BlockEnv;
use gridledger_ledger::devnet::{dev_key, transfer, DevChain, TRANSFER_GAS};
use gridledger_ledger::state::Overlay;
use gridledger_ledger::{BlockBuilder, Chain, ContractRegistry, StateRead};

const BAL: Amount = Amount(1_000_000_000);
const N: usize = 12;

fn dev(dir: &std::path::Path) -> DevChain {
    DevChain::open(dir, N, BAL, ContractRegistry::new()).unwrap()
}

fn env(c: &Chain) -> BlockEnv {
    let tip = c.tip().clone();
    BlockEnv {
        chain_id: c.genesis().chain_id,
        height: tip.height + 1,
        timestamp: tip.timestamp + 1,
        proposer: dev_key(N - 1).address(),
        parent: tip.hash(),
    }
}

/// Sum of every dev account's balance plus the dev validator's.
fn supply(s: &dyn StateRead) -> u128 {
    let mut t: u128 = (0..N).map(|i| s.account(&dev_key(i).address()).balance.0).sum();
    t += s.account(&gridledger_ledger::devnet::dev_validator(0).address()).balance.0;
    t
}

/// Supply after the finished block's changes are applied to the base state.
fn finished_supply(c: &Chain, b: BlockBuilder<'_>) -> u128 {
    let tip = c.tip().clone();
    let ex = b.finish(c.genesis().chain_id, tip.hash(), dev_key(N - 1).public(), c.state());
    assert_eq!(c.state().root_after(&ex.changes), ex.block.header.state_root);
    let mut o = Overlay::new(c.state());
    o.absorb(ex.changes);
    supply(&o)
}

#[test]
fn a_payee_listed_twice_sharing_twice_and_refilling_conserve_coin() {
    let d = tempfile::tempdir().unwrap();
    let dc = dev(d.path());
    let c = &dc.chain;
    let before = supply(c.state());
    let mut b = BlockBuilder::new(c.state(), c.registry(), env(c), c.config().block_gas_limit);
    b.push_pooled(transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(5), Amount(3))).unwrap();
    b.push_pooled(transfer(&dev_key(2), 1, 0, dev_key(1).address(), Amount(5), Amount(7))).unwrap();
    let pool = b.fee_pool().0;
    assert_eq!(pool, 10 * TRANSFER_GAS as u128);
    // The same address three times among seven entries, a seed picking it.
    let a = |i: usize| dev_key(i).address();
    let payees = vec![a(3), a(4), a(3), a(5), a(6), a(3), a(7)];
    let was3 = b.state().account(&a(3)).balance.0;
    let mut seed = Hash32([0; 32]);
    seed.0[0] = 2;
    assert_eq!(b.share_fee_pool(&payees, &seed).unwrap().0, pool);
    let (share, rest) = (pool / 7, pool % 7);
    assert_eq!(b.state().account(&a(3)).balance.0 - was3, 3 * share + rest, "credited once per listing");
    assert_eq!(supply(b.state()), before, "nothing created or burnt by sharing");
    // Sharing again pays nothing.
    assert_eq!(b.share_fee_pool(&payees, &seed).unwrap().0, 0);
    assert_eq!(supply(b.state()), before);
    // A pool refilled after sharing, then left: the proposer gets it.
    b.push_pooled(transfer(&dev_key(8), 1, 0, dev_key(1).address(), Amount(5), Amount(1))).unwrap();
    assert_eq!(b.fee_pool().0, TRANSFER_GAS as u128);
    assert_eq!(finished_supply(c, b), before, "the finished block conserves coin");
}

#[test]
fn rejected_and_reverted_pooled_transactions_conserve_coin() {
    let d = tempfile::tempdir().unwrap();
    let dc = dev(d.path());
    let c = &dc.chain;
    let before = supply(c.state());
    let mut b = BlockBuilder::new(c.state(), c.registry(), env(c), c.config().block_gas_limit);
    // Wrong nonce: rejected before anything is charged.
    assert!(b.push_pooled(transfer(&dev_key(0), 1, 5, dev_key(1).address(), Amount(5), Amount(3))).is_err());
    assert_eq!(b.fee_pool().0, 0);
    assert_eq!(b.state().account(&dev_key(0).address()).nonce, 0, "a rejected transaction leaves no trace");
    // More than the balance: rejected, nothing pooled.
    assert!(b.push_pooled(transfer(&dev_key(0), 1, 0, dev_key(1).address(), BAL, Amount(3))).is_err());
    assert_eq!(b.fee_pool().0, 0);
    assert_eq!(supply(b.state()), before);
    // Empty payee list: pool kept, paid to the proposer at the end.
    b.push_pooled(transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(5), Amount(3))).unwrap();
    assert_eq!(b.share_fee_pool(&[], &Hash32([9; 32])).unwrap().0, 0);
    assert_eq!(b.fee_pool().0, 3 * TRANSFER_GAS as u128);
    assert_eq!(finished_supply(c, b), before);
}
