//! Attack round 16 on the LBFT node engine (`consensus = "lbft"`), after
//! the round-15 fee fix: each transaction's fee goes to the validator
//! whose batch carried it, at its earliest occurrence in the epoch. Four
//! in-process validators, links in memory, validator 0 Byzantine (the
//! shared [`puppet`]: a correct replica except that, in the epoch in which
//! validator 1 proposes the victim transaction, its own batch is that
//! transaction alone, proposed as soon as validator 1's `Val` arrives).
//!
//! - [2] (medium; [1] and [3] are in the consensus crate's attack_lbft_r16): an epoch's accepted batches are ordered by proposer
//!   index, so "the earliest occurrence" is the lowest-index proposer's
//!   copy. A validator that copies the transactions of the other
//!   validators' batches of the same epoch into its own (it sees every
//!   `Val` before it must propose) takes their fees: the client sent its
//!   transfer to validator 1 alone, validator 1 proposed it, and
//!   validator 0 earns the whole fee while validator 1 earns nothing. One
//!   Byzantine validator so restores the fee monopoly of attack r15 [1]
//!   by one deviation that every honest validator echoes (a copied
//!   transaction is valid), and honest validators have no reason left to
//!   include transactions (`copying_a_batch_does_not_take_its_fees`).
//!   No fork: every validator credits the same account.
//!
//! Fixed: the fee of a transaction carried by several proposers' accepted
//! batches of one epoch is split equally among them (the node's LBFT
//! module docs); the test passes. What remains: in a run where validator
//! 1's batch loses the agreement and only the copy is accepted, the
//! copier is the transaction's only carrier in the decision and earns the
//! whole fee (about one run in twenty here); the test runs the scenario
//! again until both batches were accepted. Since attack r17 [1] an
//! epoch's fees are pooled and shared equally among the proposers of its
//! accepted batches (the copier earns what validator 1 earns, no more:
//! the assertion still holds, and copying earns nothing beyond what
//! proposing an empty batch earns).
//!
//! Run it with `cargo test -p gridledger-node --test attack_lbft_r16`.

mod common;
use common::lbft::{admit, committed, puppet, stored_epochs, tx, within, Net, Validator, N};
use gridledger_core::Hash32;
use gridledger_ledger::devnet::{dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One run of the scenario: whether validator 0 copied the transfer, the
/// fees validators 0 and 1 earned, and the proposers of the accepted
/// batches that carried it.
fn copy_once() -> (bool, u128, u128, Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let victim = tx(0, 0, TRANSFER_GAS);
    let stop = Arc::new(AtomicBool::new(false));
    let byz = puppet(dir.path(), net.clone(), victim.clone(), true, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start(i, SimDisk::new())).collect();
    let balance = |i: usize| vs[0].node.shared.chain().account(&dev_validator(i).public().address()).balance.0;
    let (b0_before, b1_before) = (balance(0), balance(1));
    // The client sends its transfer to validator 1 only.
    let got = admit(&vs[0], std::slice::from_ref(&victim));
    let h: Hash32 = *got[0].as_ref().expect("admitted at validator 1");
    assert!(within(60, || vs.iter().all(|v| committed(v, &h))), "the transfer commits at every honest validator");
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    let (b0, b1) = (balance(0) - b0_before, balance(1) - b1_before);
    // Which proposers' accepted batches carried it.
    let carriers: Vec<u32> = stored_epochs(&vs[0])
        .iter()
        .flat_map(|d| d.batches.iter().filter(|b| b.batch.txs.contains(&victim)).map(|b| b.proposer))
        .collect();
    for v in vs {
        v.node.shutdown();
    }
    (copied, b0, b1, carriers)
}

/// [2] Validator 0 copies validator 1's transfer into its own batch of the
/// same epoch and takes the fee.
///
/// A run in which validator 1's batch lost the agreement (only the copy
/// was accepted: the decision names validator 0 alone as carrying the
/// transfer, and no fee rule that reads the decision can pay validator 1)
/// does not test the finding; the scenario is run again, up to ten times,
/// until both batches were accepted.
#[test]
fn copying_a_batch_does_not_take_its_fees() {
    let mut runs = Vec::new();
    let tested = (0..10).find_map(|_| {
        let run = copy_once();
        let both = run.3.contains(&0) && run.3.contains(&1);
        runs.push(run.clone());
        both.then_some(run)
    });
    let Some((copied, b0, b1, carriers)) = tested else {
        panic!("no run accepted both validator 0's copy and validator 1's batch: {runs:?}")
    };
    assert!(copied, "validator 0 copied the transfer from validator 1's batch");
    assert!(
        b1 > 0 && b1 >= b0,
        "validator 1 alone was sent the transfer and proposed it: it earned {b1} in fees; validator 0, which copied \
         it from validator 1's batch, earned {b0} (accepted batches carrying it, by proposer: {carriers:?})"
    );
}
