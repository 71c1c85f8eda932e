//! Attack round 17 on the LBFT node engine (`consensus = "lbft"`), after
//! the round-16 fee fix: the fee of a transaction carried by several
//! proposers' accepted batches of one epoch is split equally among them
//! (`BlockBuilder::push_sharing`). Four in-process validators, links in
//! memory, validator 0 Byzantine (the shared [`puppet`]: a correct replica
//! except that, in the epoch in which validator 1 proposes the victim
//! transaction, its own batch is that transaction alone, copied from
//! validator 1's `Val`).
//!
//! - [1] (medium): copying still pays. A validator that copies the
//!   transactions of the other validators' batches of the epoch into its
//!   own (it sees every `Val` before it must propose) earns half of each
//!   copied transaction's fee, for no work and no risk: the client sent
//!   its transfer to validator 1 alone, yet validator 0 is paid as much as
//!   validator 1, while validator 2, which behaved like validator 0 except
//!   for the copy, earns nothing. With `f` colluding copiers a proposer
//!   keeps `1 / (f + 1)` of its fees. The split divides the theft of
//!   attack r16 [2] by two; it does not remove the incentive to copy
//!   (`copying_a_transaction_earns_the_copier_nothing`). No fork: every
//!   validator credits the same accounts.
//!
//! Run it with `cargo test -p gridledger-node --test attack_lbft_r17 -- --ignored`.

mod common;
use common::lbft::{admit, committed, puppet, stored_epochs, tx, within, Net, Validator, N};
use gridledger_core::Hash32;
use gridledger_ledger::devnet::{dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One run: whether validator 0 copied the transfer, the fees validators
/// 0, 1 and 2 earned, and the proposers of the accepted batches that
/// carried the transfer.
fn copy_once() -> (bool, [u128; 3], Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let victim = tx(0, 0, TRANSFER_GAS);
    let stop = Arc::new(AtomicBool::new(false));
    let byz = puppet(dir.path(), net.clone(), victim.clone(), true, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start(i, SimDisk::new())).collect();
    let balance = |i: usize| vs[0].node.shared.chain().account(&dev_validator(i).public().address()).balance.0;
    let before = [balance(0), balance(1), balance(2)];
    // The client sends its transfer to validator 1 only.
    let got = admit(&vs[0], std::slice::from_ref(&victim));
    let h: Hash32 = *got[0].as_ref().expect("admitted at validator 1");
    assert!(within(60, || vs.iter().all(|v| committed(v, &h))), "the transfer commits at every honest validator");
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    let earned = [balance(0) - before[0], balance(1) - before[1], balance(2) - before[2]];
    let carriers: Vec<u32> = stored_epochs(&vs[0])
        .iter()
        .flat_map(|d| d.batches.iter().filter(|b| b.batch.txs.contains(&victim)).map(|b| b.proposer))
        .collect();
    for v in vs {
        v.node.shutdown();
    }
    (copied, earned, carriers)
}

/// [1] Validator 0 copies validator 1's transfer into its own batch of the
/// same epoch: it is paid half the fee, as much as the validator the
/// client chose, while validator 2 (honest, carried nothing) is paid
/// nothing. Copying must not earn a validator more than not copying: the
/// copier should earn no more than validator 2. Runs where validator 1's
/// batch lost the agreement (the copy the only carrier: attack r16's known
/// residue) are run again, up to ten times.
#[test]
#[ignore = "attack r17: a validator copying another's transaction still earns half its fee (copying pays)"]
fn copying_a_transaction_earns_the_copier_nothing() {
    let mut runs = Vec::new();
    let tested = (0..10).find_map(|_| {
        let run = copy_once();
        let both = run.2.contains(&0) && run.2.contains(&1);
        runs.push(run.clone());
        both.then_some(run)
    });
    let Some((copied, [b0, b1, b2], carriers)) = tested else {
        panic!("no run accepted both validator 0's copy and validator 1's batch: {runs:?}")
    };
    assert!(copied, "validator 0 copied the transfer from validator 1's batch");
    assert!(b1 > 0, "validator 1 proposed the transfer and earns from it");
    assert!(
        b0 <= b2,
        "validator 0 copied the transfer from validator 1's batch and earned {b0}; validator 2, which did not copy, \
         earned {b2}; validator 1, which the client chose, earned {b1} (accepted batches carrying it: {carriers:?})"
    );
}
