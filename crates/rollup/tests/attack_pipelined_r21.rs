//! Attack round 21 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline (`PrimaryConfig::pipelined`,
//! [`Mode::ConventionalOr`]) after the r20 fixes (backup checks on each
//! posting ahead as it is posted, honest stand-ins for withheld batches,
//! the `AheadCache`, voided postings kept).
//!
//! Finding [1] (critical): a silent executor's withheld batch makes the
//! driver jump the clock a whole window before it has looked at any
//! posting ahead, so a forged posting ahead made just before the run
//! settles with nobody colluding. Executor X is assigned the next batch
//! to settle and a later batch b. X withholds the first (silent) and
//! posts b ahead at once (`sc_cr_on`, the true pre-root) with a
//! post-state root that mints an accomplice 10 coin. `process` takes the
//! withheld batch first: the honest stand-in may post it only a window
//! after the batch closed, so the driver sets the clock to that moment
//! (`closed + window + 1`), and only then, in `post_ahead`
//! (`watch_all_ahead`), do the watcher, the meters, their delegates and
//! the bonded challenge look at b's posting: its window (from its
//! posting, which was no later than the first batch's close) is over,
//! every dispute is refused, and b settles its minting root. Every
//! validator is honest; the one misbehaving party is the executor.
//!
//! Fixed: the driver watches every posting on chain (the assigned
//! watcher and the backup checkers) at the top of each turn and
//! immediately before each clock jump, so X's posting ahead is overturned
//! inside its window before the withheld batch's wait.
//!
//! Held up (passing test): the same forgery posted ahead while the first
//! batch's executor posts is caught and overturned, and X is forfeited.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::roles::ExecutorBehaviour;
use gridledger_rollup::state::state_root;

/// Records eight one-AT batches and returns the first one, its executor
/// X and the first later batch also assigned to X.
fn first_and_later_of_same_executor() -> (Env, u64, KeyPair, u64) {
    for seed_batches in 0..6u64 {
        let mut e = or_funded();
        // Shift the draws by recording a few batches first and settling them.
        if seed_batches > 0 {
            record_batches(&mut e, seed_batches);
            e.d.process(&mut rng(21)).unwrap();
        }
        let first = record_batches(&mut e, 8);
        let x = executor_of(&e, first);
        if let Some(b) = (first + 1..first + 8).find(|b| executor_of(&e, *b).address() == x.address()) {
            return (e, first, x, b);
        }
    }
    panic!("no executor assigned the first batch and a later one");
}

/// Finding [1].
#[test]
fn a_forgery_ahead_behind_a_withheld_batch_never_settles() {
    let (mut e, first, x, b) = first_and_later_of_same_executor();
    let accomplice = trader(3);
    let minted = forge_ahead(&mut e, &x, b, accomplice.address());
    let i = e.d.executors.iter().position(|(k, _)| k.address() == x.address()).unwrap();
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let run = e.d.process(&mut rng(21));
    let stolen = settled_root_of(&e, b) == Some(state_root(&minted));
    let gained = if stolen { withdraw_minted(&mut e, &minted, &accomplice).0 } else { 0 };
    assert!(
        !stolen,
        "executor {} withheld batch {first} and posted batch {b} ahead with a root minting 10 coin; every validator \
         honest, yet the minting root settled (the driver jumped a window for the withheld batch before watching \
         postings ahead); the accomplice withdrew {gained} minor units; X still active: {}; run: {:?}",
        x.address(),
        node_active(&e, &x.address()),
        run.map(|r| r.len()),
    );
}

/// Control of finding [1]: the same forgery ahead, the first batch's
/// executor posting normally, is caught inside its window.
#[test]
fn a_forgery_ahead_without_a_withheld_batch_is_overturned() {
    let (mut e, _first, x, b) = first_and_later_of_same_executor();
    let accomplice = trader(3);
    let minted = forge_ahead(&mut e, &x, b, accomplice.address());
    let _ = e.d.process(&mut rng(21));
    assert_ne!(settled_root_of(&e, b), Some(state_root(&minted)), "the minting root did not settle");
    assert!(!node_active(&e, &x.address()), "the forger is forfeited");
}

/// Held up: an honest executor's correct posting ahead, voided by another
/// executor's posting of its predecessor on a made-up root (and replaced
/// on that root), is judged against the root it claimed when a dispute
/// committed while it stood is revealed: found correct, its poster keeps
/// its deposit and the disputer gains nothing.
#[test]
fn an_honest_posting_voided_by_a_made_up_predecessor_is_not_slashed() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 8);
    let j = (first + 1..first + 7)
        .find(|j| executor_of(&e, *j).address() != executor_of(&e, j + 1).address())
        .expect("two consecutive batches of different executors");
    let (x, h) = (executor_of(&e, j), executor_of(&e, j + 1));
    // H posts j+1 ahead, honestly, on the true root (j unposted).
    let true_root = state_root(&e.d.state_before(j + 1).unwrap());
    let honest = posting_on(&mut e, j + 1, true_root, None);
    let r = e.d.primary_call(&h, "sc_cr_on", args(&honest), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "H's honest posting ahead: {:?}", r.status);
    // A trader commits to a whole-batch dispute of H's posting.
    let d = trader(2);
    let a = whole_dispute(&e, j + 1);
    let c = gridledger_rollup::types::dispute_commitment(
        &gridledger_rollup::types::dispute_digest("dispute", &a),
        &d.address(),
    );
    let r = e.d.primary_call(&d, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "the commitment: {:?}", r.status);
    // X posts j on a made-up root (H's posting is void now) and replaces
    // H's posting on that root.
    let m = gridledger_core::Hash32([0x52; 32]);
    let void_j = posting_on(&mut e, j, gridledger_core::Hash32([0x51; 32]), Some(m));
    let r = e.d.primary_call(&x, "sc_cr_on", args(&void_j), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "j on a made-up root: {:?}", r.status);
    let on_m = posting_on(&mut e, j + 1, m, Some(gridledger_core::Hash32([0x53; 32])));
    let r = e.d.primary_call(&x, "sc_cr_on", args(&on_m), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "X replaces H's void posting: {:?}", r.status);
    let before = wealth(&e, &d);
    let r = e.d.primary_call(&d, "dispute", a, e.d.cfg.challenge_bond).unwrap();
    assert!(
        reverted(&r).contains("was replaced after this dispute was committed"),
        "judged against the voided posting and found correct: {:?}",
        r.status
    );
    assert!(node_active(&e, &h.address()), "the honest poster of the voided posting keeps its deposit");
    assert!(wealth(&e, &d) <= before, "the disputer gains nothing");
}
