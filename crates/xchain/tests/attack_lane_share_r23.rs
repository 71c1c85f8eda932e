//! Twenty-third attack round on the cross-chain protocols (issue 14): the
//! BoB's blocks after the fix of attack r21 [2] (the duty lane goes into
//! the empty block before the senders served first, whose guarantee holds
//! only in the gas the lane leaves).
//!
//! Every finding here asserted what a careful user would expect and failed
//! on the code it was written against; each was marked
//! `#[ignore = "attack r23 [k]: ..."]` until it was fixed ([3]: at every
//! other height, a served-first turn, the transaction served first of all
//! goes into the empty block before the lane when the lane's gas would not
//! leave it room, `gridledger_ledger` `fill_block`). Tests without a
//! finding's number held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::ChainConfig;
use gridledger_xchain::mbs::MbsSpec;

/// A BoB user (dev key 2) sends one plain transfer on the BoB with gas
/// limit `gas` at price 3 (above the node's) while the deployment runs:
/// each tick the external chains make a block and the BoB node relays
/// their headers (duties, in the BoB block's lane). Returns how many ticks
/// the transfer waited (`None`: still pending after 10) and how far the
/// stored tip of the first external chain moved meanwhile.
fn bob_transfer_with_gas(gas: u64) -> (Option<usize>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, _] = chains2(&m);
    let user = dev_key(2);
    let bob = m.bob.chain_id();
    let mut t = transfer(&user, bob, m.bob.next_nonce(&user.address()), user.address(), Amount(1), Amount(3)).tx;
    t.gas_limit = gas;
    let tx = m.bob.sign(&user, t.sign(&user));
    m.bob.submit(&tx).unwrap();
    let tip0 = m.bob_tip(ci);
    for i in 1..=10 {
        m.tick().unwrap();
        if m.bob.receipt(&tx.hash()).unwrap().is_some() {
            return (Some(i), m.bob_tip(ci) - tip0);
        }
    }
    (None, m.bob_tip(ci) - tip0)
}

/// Control of [3]: a transfer whose gas limit fits the block's gas less
/// the lane's (225 M of 300 M) goes in at once, the relays going on.
#[test]
fn a_transfer_within_the_gas_the_lane_leaves_goes_in() {
    let c = ChainConfig::default();
    let (wait, _) = bob_transfer_with_gas(c.block_gas_limit / 100 * (100 - c.duty_lane_percent));
    assert!(wait.is_some_and(|w| w <= 2), "waited {wait:?} ticks");
}

/// [3] on the BoB: the chain admits a transaction whose gas limit is the
/// block's (300 M), and the served-first rule (attack r12 [3]) was there
/// so that one is never shut out. Now the lane goes first, and the BoB
/// node relays the external chains' headers every tick, so every BoB block
/// carries a few duties: the block has less than its whole gas left when
/// the served-first transfer is tried, and it is skipped in every block.
/// No attacker at all: the user pays three times the node's price and its
/// transfer never lands while the deployment runs.
///
/// Expected: included within a bounded number of ticks. Observed: still
/// pending after ten, the stored tips moving on all the while. Now (one
/// BoB block a tick): skipped once, then in at the next served-first turn,
/// within three ticks.
#[test]
fn a_block_sized_bob_transfer_is_not_starved_by_the_nodes_relays() {
    let (wait, moved) = bob_transfer_with_gas(ChainConfig::default().block_gas_limit);
    assert!(moved > 0, "the relays landed meanwhile");
    assert!(wait.is_some_and(|w| w <= 3), "the block-sized transfer waited {wait:?} ticks while the tip moved {moved}");
}
