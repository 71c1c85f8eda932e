//! Attack round 18 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline (`PrimaryConfig::pipelined`,
//! [`Mode::ConventionalOr`]) after r17's fix: a whole-batch dispute
//! committed to no later than the block of the batch's standing posting
//! is judged against it but "can only win" (a correct posting refuses it
//! as `Replaced`, nothing lost).
//!
//! Finding [1] (low): the `replaced` flag is set for any commitment made
//! no later than the standing posting's block, also when the batch was
//! never replaced: a challenger that commits to its whole-batch dispute
//! before the executor's first posting (the dispute names no posting, and
//! the entries and the settled-state witness are known once the batch is
//! sealed) holds a riskless option. A dispute of a correct batch is then
//! refused (`Replaced`) and its bond stays with it, instead of paying the
//! executor it challenged; a staked validator's frivolous dispute costs no
//! deposit. The bond's deterrent, and the honest executor's compensation,
//! are gone for whoever commits early.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::exec::{execute_leaves, OffChain};
use gridledger_rollup::primary::SubmitTcrs;
use gridledger_rollup::state::{fill_post_roots, post_state};
use gridledger_rollup::types::{dispute_commitment, dispute_digest, entry_hash, Tcr};

/// `batch`'s honest `sc_cr` arguments.
fn honest_submit(e: &mut Env, batch: u64) -> SubmitTcrs {
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let tcrs: Vec<Tcr> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (_, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted[posted.len() - 1].post_root,
        leaves: posted,
        burned,
    }
}

/// Finding [1]: a bonded challenger commits to a frivolous whole-batch
/// dispute (claiming no TCRs) of batch k before k is first posted; the
/// executor then posts k's correct TCRs (never replaced). The revealed
/// dispute of the correct batch should be rejected and its bond pay the
/// executor, as for any dispute of a correct batch; it is refused as
/// `Replaced` and the challenger keeps its bond.
#[test]
#[ignore = "attack r18: a whole-batch dispute committed before the FIRST posting is riskless (Replaced), no replacement needed"]
fn a_dispute_committed_before_the_first_posting_still_risks_its_bond() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    e.d.primary.seal();
    let who = trader(2);
    let exec = executor_of(&e, k);
    // Built before any posting: the entries and the settled witness only.
    let a = whole(&e, k, Vec::new());
    let c = dispute_commitment(&dispute_digest("dispute", &a), &who.address());
    let r = e.d.primary_call(&who, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "commitment: {:?}", r.status);
    // The executor's first and only posting: correct.
    let sub = honest_submit(&mut e, k);
    let r = e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "posting: {:?}", r.status);
    let h = e.d.batch_header(k).unwrap();
    assert_eq!(h.posted_by, Some(exec.address()));
    let bond = e.d.cfg.challenge_bond;
    let (before, exec_before) = (wealth(&e, &who), wealth(&e, &exec));
    let s = e.d.primary_call(&who, "dispute", a, bond).unwrap().status;
    let (after, exec_after) = (wealth(&e, &who), wealth(&e, &exec));
    assert!(!e.d.batch_header(k).unwrap().overturned, "a correct batch is never overturned");
    assert!(
        before.saturating_sub(after) >= bond.0 && exec_after >= exec_before + bond.0,
        "batch {k} was posted once, correctly, after {} committed to its frivolous dispute; the dispute \
         ({s:?}) cost it {} of the {bond} bond and paid the executor {}",
        who.address(),
        before.saturating_sub(after),
        exec_after.saturating_sub(exec_before),
    );
}
