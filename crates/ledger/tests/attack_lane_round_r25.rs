//! Twenty-fifth attack round, ledger side (issue 14's chains): the duty
//! lane after the fix of attack r24 [1] (`fill_block`: the runs waiting,
//! their next transaction above the round's fair share, are tried at the
//! end of every round, smallest gas limit first). Everything here held up:
//! a Byzantine registered node shaping its gas limits and burning the
//! lane's gas does not keep an honest node's duty within the stated bound
//! (the lane's gas over the nodes with a run) out of any block, and two
//! validators with one mempool build one block.

mod common;

use common::*;
use gridledger_ledger::devnet::{dev_key, dev_validator};
use gridledger_ledger::SignedTransaction;

/// The lane's gas under [`four_place_config`].
const LANE_GAS: u64 = 75_000_000;

/// The Byzantine node (price 10, so its run comes first) keeps eight
/// transactions pending, ordinary `burn` calls (charged their whole gas
/// limit) and duties alternating, each with gas limit `byz_gas`; each
/// honest node posts one duty a block (price 1, gas limit `honest_gas`);
/// a dearer flood keeps them out of the price order. Returns, per block,
/// how many of that block's three honest duties landed in it, and how many
/// transactions the Byzantine node got in (its committed nonce).
fn honest_duties_per_block(byz_gas: u64, honest_gas: u64, blocks: u64) -> (Vec<usize>, u64) {
    let config = four_place_config();
    let dir = tempfile::tempdir().unwrap();
    let mut c = four_node_chain(dir.path(), config.clone());
    let mut ts = 10_000;
    let mut per_block = Vec::new();
    for n in 0..blocks {
        keep(&mut c, BYZANTINE, 8, |k| {
            call_with_gas(BYZANTINE, k, if k % 2 == 0 { "burn" } else { "work" }, byz_gas, 10)
        });
        let duties: Vec<SignedTransaction> =
            [HONEST, 11, 12].iter().map(|k| call_with_gas(*k, n, "work", honest_gas, 1)).collect();
        for d in &duties {
            c.submit(&d.to_bytes()).unwrap();
        }
        flood2(&mut c, &config);
        seal(&mut c, &mut ts);
        per_block.push(duties.iter().filter(|d| c.receipt(&d.hash()).unwrap().is_some()).count());
    }
    (per_block, c.account(&dev_key(BYZANTINE).address()).nonce)
}

/// The stated bound, at its edge: the honest duties' gas limit is the
/// lane's gas over the four nodes with a run (18.75 M), and the Byzantine
/// node, first in the order, burns exactly that much each round. Each
/// honest duty still lands in its own block, every block (turn heights
/// included: nothing is served first, so step 0 places nothing).
#[test]
fn a_byzantine_node_burning_its_fair_share_leaves_each_duty_within_the_bound_its_place() {
    let fair = LANE_GAS / NODES.len() as u64;
    let (got, byz) = honest_duties_per_block(fair, fair, 6);
    assert_eq!(got, vec![3; 6]);
    assert!(byz >= 6, "the Byzantine node got {byz} transactions in");
}

/// The Byzantine node's transactions one unit above the first round's
/// fair share (so it waits, and at the end of the round goes first,
/// smallest gas limit first, burning 18.75 M + 1): the honest duties
/// within the bound were already placed in the round itself.
#[test]
fn a_byzantine_node_waiting_just_above_the_share_does_not_displace_duties_within_the_bound() {
    let fair = LANE_GAS / NODES.len() as u64;
    let (got, byz) = honest_duties_per_block(fair + 1, fair, 6);
    assert_eq!(got, vec![3; 6]);
    assert!(byz >= 6, "the Byzantine node got {byz} transactions in");
}

/// Beyond the bound (the BoB's 20 M relays over four nodes): the Byzantine
/// node burning its 18.75 M share in round one leaves 56.25 M, and the
/// three relays, which use little of their limits, all fit at the end of
/// the round.
#[test]
fn relays_above_the_share_fit_what_a_burning_byzantine_node_leaves() {
    let fair = LANE_GAS / NODES.len() as u64;
    let (got, byz) = honest_duties_per_block(fair, 20_000_000, 6);
    assert_eq!(got, vec![3; 6]);
    assert!(byz >= 6, "the Byzantine node got {byz} transactions in");
}

/// Determinism: two validators holding the same pending transactions
/// (submitted in the same order), with waiting and going runs mixed,
/// build the same block at every height.
#[test]
fn two_validators_with_one_mempool_build_the_same_lane() {
    let config = four_place_config();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut chains = [four_node_chain(d1.path(), config.clone()), four_node_chain(d2.path(), config.clone())];
    let proposer = dev_validator(0).public();
    for n in 0..4u64 {
        for c in chains.iter_mut() {
            keep(c, BYZANTINE, 6, |k| {
                call_with_gas(BYZANTINE, k, if k % 3 == 0 { "burn" } else { "work" }, 19_000_000, 3)
            });
            for (i, k) in [HONEST, 11, 12].iter().enumerate() {
                let gas = [20_000_000, 100_000, 30_000_000][i];
                c.submit(&call_with_gas(*k, n, "work", gas, 1).to_bytes()).unwrap();
            }
            flood2(c, &config);
        }
        let ts = 10_000 + n * 1_000;
        let (a, _) = chains[0].build_block(&proposer, ts);
        let (b, _) = chains[1].build_block(&proposer, ts);
        assert_eq!(a.block.header.hash(), b.block.header.hash(), "height {}", n + 1);
        chains[0].commit(a).unwrap();
        chains[1].commit(b).unwrap();
    }
}
