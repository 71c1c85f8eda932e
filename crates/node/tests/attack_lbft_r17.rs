//! Attack round 17 on the LBFT node engine (`consensus = "lbft"`), after
//! the round-16 fee fix: the fee of a transaction carried by several
//! proposers' accepted batches of one epoch is split equally among them
//! (`BlockBuilder::push_sharing` then; fees are pooled per epoch since,
//! `BlockBuilder::push_pooled`). Four in-process validators, links in
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
//!   Fixed: an epoch's fees are pooled and shared equally among the
//!   proposers of its accepted batches, the remainder to the one its
//!   decision hash picks (the node's LBFT module docs): what a validator
//!   carries changes nothing it earns. The test runs; a run where validator
//!   2's batch lost the agreement of the transfer's epoch is run again
//!   (then validator 2 earns nothing whatever the fee rule).
//!   `an_epochs_fees_are_shared_by_its_accepted_proposers` checks the
//!   rule itself in the same scenario.
//!
//! Run it with `cargo test -p gridledger-node --test attack_lbft_r17`.

mod common;
use common::lbft::{admit, chain_of, committed, puppet, stored_epochs, tx, within, Net, Validator, N};
use gridledger_core::Hash32;
use gridledger_ledger::devnet::{dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One run of the copy scenario.
#[derive(Clone, Debug)]
struct Run {
    /// Validator 0 copied the transfer.
    copied: bool,
    /// What each validator earned, at validator 1.
    earned: [u128; N],
    /// The proposers of the accepted batches that carried the transfer.
    carriers: Vec<u32>,
    /// The proposers of every accepted batch of the epochs that carried it.
    accepted: Vec<u32>,
    /// The transfer's fee (its receipt at validator 1).
    fee: u128,
    /// Every honest validator holds the same chain (block hashes, which
    /// bind the state roots).
    same_chain: bool,
}

fn copy_once() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let victim = tx(0, 0, TRANSFER_GAS);
    let stop = Arc::new(AtomicBool::new(false));
    let byz = puppet(dir.path(), net.clone(), victim.clone(), true, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start(i, SimDisk::new())).collect();
    let balance = |i: usize| vs[0].node.shared.chain().account(&dev_validator(i).public().address()).balance.0;
    let before: [u128; N] = std::array::from_fn(balance);
    // The client sends its transfer to validator 1 only.
    let got = admit(&vs[0], std::slice::from_ref(&victim));
    let h: Hash32 = *got[0].as_ref().expect("admitted at validator 1");
    assert!(within(60, || vs.iter().all(|v| committed(v, &h))), "the transfer commits at every honest validator");
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    let earned: [u128; N] = std::array::from_fn(|i| balance(i) - before[i]);
    let fee = vs[0].node.shared.chain().receipt(&h).unwrap().expect("the transfer's receipt").fee.0;
    let chains: Vec<Vec<Hash32>> = vs.iter().map(chain_of).collect();
    let same_chain = chains.iter().all(|c| *c == chains[0]);
    let carriers: Vec<u32> = stored_epochs(&vs[0])
        .iter()
        .flat_map(|d| d.batches.iter().filter(|b| b.batch.txs.contains(&victim)).map(|b| b.proposer))
        .collect();
    let accepted: Vec<u32> = stored_epochs(&vs[0])
        .iter()
        .filter(|d| d.batches.iter().any(|b| b.batch.txs.contains(&victim)))
        .flat_map(|d| d.batches.iter().map(|b| b.proposer))
        .collect();
    for v in vs {
        v.node.shutdown();
    }
    Run { copied, earned, carriers, accepted, fee, same_chain }
}

/// [1] Validator 0 copies validator 1's transfer into its own batch of the
/// same epoch: it is paid half the fee, as much as the validator the
/// client chose, while validator 2 (honest, carried nothing) is paid
/// nothing. Copying must not earn a validator more than not copying: the
/// copier should earn no more than validator 2. Runs where validator 1's
/// batch lost the agreement (the copy the only carrier: attack r16's known
/// residue), or where validator 2's batch of that epoch lost it (then
/// validator 2 was not the copier's peer in that epoch: it earns nothing
/// for not being accepted, whatever the fee rule), are run again, up to
/// ten times.
#[test]
fn copying_a_transaction_earns_the_copier_nothing() {
    let mut runs = Vec::new();
    let tested = (0..10).find_map(|_| {
        let run = copy_once();
        let both = run.carriers.contains(&0) && run.carriers.contains(&1) && run.accepted.contains(&2);
        runs.push(run.clone());
        both.then_some(run)
    });
    let Some(Run { copied, earned: [b0, b1, b2, _], carriers, .. }) = tested else {
        panic!("no run accepted validator 0's copy and validator 1's and validator 2's batches: {runs:?}")
    };
    assert!(copied, "validator 0 copied the transfer from validator 1's batch");
    assert!(b1 > 0, "validator 1 proposed the transfer and earns from it");
    assert!(
        b0 <= b2,
        "validator 0 copied the transfer from validator 1's batch and earned {b0}; validator 2, which did not copy, \
         earned {b2}; validator 1, which the client chose, earned {b1} (accepted batches carrying it: {carriers:?})"
    );
}

/// The fix's rule, in the same scenario: the epoch's fees are pooled and
/// shared equally among the proposers of its accepted batches, whatever
/// each carried — `⌊fee / k⌋` each, the remainder to exactly one of
/// them; validators whose batch was not accepted earn nothing; nothing
/// is created or destroyed; every honest validator holds the same chain
/// (the same state roots).
#[test]
fn an_epochs_fees_are_shared_by_its_accepted_proposers() {
    let run = copy_once();
    assert!(run.same_chain, "the honest validators hold different chains: {run:?}");
    assert_eq!(run.fee, TRANSFER_GAS as u128, "{run:?}");
    assert_eq!(run.earned.iter().sum::<u128>(), run.fee, "the validators earned the fee, no more, no less: {run:?}");
    let mut accepted = run.accepted.clone();
    accepted.sort_unstable();
    accepted.dedup();
    assert_eq!(accepted.len(), run.accepted.len(), "one epoch carried the transfer: {run:?}");
    let k = accepted.len() as u128;
    let (share, rest) = (run.fee / k, run.fee % k);
    for (i, e) in run.earned.iter().enumerate() {
        if accepted.contains(&(i as u32)) {
            assert!(*e == share || *e == share + rest, "accepted proposer {i} earned {e}, not its share: {run:?}");
        } else {
            assert_eq!(*e, 0, "validator {i}, whose batch was not accepted, earned a fee: {run:?}");
        }
    }
}
