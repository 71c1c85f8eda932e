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
//!
//! Finding [2] (high): a void posting of the next batch to settle (a
//! claimed pre-root that is not the settled root) is replaceable at once
//! by any active executor (`record_tcrs`, `void_posting`), and `finalize`
//! takes it back at once, but the driver's honest parties do neither: the
//! watcher's and meters' disputes are refused (`Void`), the clock is run
//! to the void posting's full window, and only then is it taken back and
//! posted again. The void poster loses nothing (`take_back` punishes
//! nobody) and, as the batch's executor, may post void again after every
//! take-back: one window of settlement delay per free transaction, for
//! ever, by one party.
//!
//! Fixed: the first posting's height is kept once a batch's posting is
//! replaced or taken back, and only a commitment made since then counts
//! as built for a replaced posting ([1]); the driver's honest executors
//! replace every void posting at once, from the next batch to settle
//! upwards, which also bounds the lead for postings ahead (an executor's
//! own void posting making the honest ones after it void) ([2]).

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::primary::{BatchState, SubmitTcrsOn};
use gridledger_rollup::roles::Target;
use gridledger_rollup::types::{dispute_commitment, dispute_digest};

/// Finding [1]: a bonded challenger commits to a frivolous whole-batch
/// dispute (claiming no TCRs) of batch k before k is first posted; the
/// executor then posts k's correct TCRs (never replaced). The revealed
/// dispute of the correct batch should be rejected and its bond pay the
/// executor, as for any dispute of a correct batch; it is refused as
/// `Replaced` and the challenger keeps its bond.
#[test]
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

/// Finding [2]: batch k's assigned executor posts its honest leaves on a
/// made-up pre-root (void). Honest parties should replace the void
/// posting at once (or take it back at once), so k settles about a window
/// after the void posting; the driver's run waits the void posting's
/// whole window before taking it back, then the batch's own window runs
/// again: k settles two windows after the void posting, and its poster,
/// free to do it again after each take-back, lost nothing.
#[test]
fn a_void_posting_of_the_next_batch_is_replaced_at_once() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "the batch is the next to settle");
    let exec = executor_of(&e, k);
    let tcrs = honest_submit(&mut e, k);
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    let void_at = e.d.batch_header(k).unwrap().complete_at.unwrap();
    let w = e.d.cfg.window_ms();
    let run = e.d.process(&mut rng(18)).unwrap();
    assert!(run.iter().any(|s| s.batch == k), "batch {k} settled by process");
    let BatchState::Settled { at, .. } = e.d.batch_header(k).unwrap().state else { panic!("batch {k} not settled") };
    assert!(
        at < void_at + w + w / 2,
        "batch {k}'s void posting at {void_at} (window {w}) delayed its settlement to {at} \
         ({} ms after it); the void poster {} is still active: {}",
        at - void_at,
        exec.address(),
        node_active(&e, &exec.address()),
    );
}

/// The lead of finding [2], for postings ahead: the next batch's executor
/// posts it void (a made-up pre-root) with a made-up post-state root, so
/// the honest postings after it, claiming the true roots, are void
/// relative to it; it replaces each of them with a posting on its own
/// made-up chain of roots. Left standing, each is taken back in turn at
/// its own `finalize` and runs a window of its own, one after the other:
/// about a window per batch. The driver's honest executors replace every
/// void posting at once, from the next batch to settle upwards, so all of
/// them settle about one window after the run starts.
#[test]
fn a_void_chain_of_postings_ahead_is_replaced_at_once() {
    let mut e = or_funded();
    let n = 4;
    let k = record_batches(&mut e, n);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "the first batch is the next to settle");
    let exec = executor_of(&e, k);
    let made_up = |i: u64| Hash32([0x70 + i as u8; 32]);
    let void = posting_on(&mut e, k, made_up(0), Some(made_up(1)));
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    for b in k + 1..k + n {
        // The honest posting on the true root, void relative to the chain
        // of made-up roots, and the void poster's replacement on it.
        let true_root = gridledger_rollup::state::state_root(&e.d.state_before(b).unwrap());
        let honest = posting_on(&mut e, b, true_root, None);
        let r = e.d.primary_call(&executor_of(&e, b), "sc_cr_on", args(&honest), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "batch {b}'s honest posting: {:?}", r.status);
        let i = b - k;
        let on_mine = posting_on(&mut e, b, made_up(i), Some(made_up(i + 1)));
        let r = e.d.primary_call(&exec, "sc_cr_on", args(&on_mine), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "batch {b} replaced on the made-up root: {:?}", r.status);
        assert_eq!(e.d.batch_header(b).unwrap().posted_by, Some(exec.address()));
    }
    let start = e.d.now();
    let w = e.d.cfg.window_ms();
    let run = e.d.process(&mut rng(18)).unwrap();
    assert_eq!(run.iter().map(|s| s.batch).collect::<Vec<_>>(), (k..k + n).collect::<Vec<_>>());
    let last = (k..k + n)
        .map(|b| match e.d.batch_header(b).unwrap().state {
            BatchState::Settled { at, .. } => at,
            BatchState::Open => panic!("batch {b} not settled"),
        })
        .max()
        .unwrap();
    assert!(
        last < start + w + w / 2,
        "the void chain from batch {k} held the last of {n} batches until {last}, {} ms after the run started \
         (window {w})",
        last - start,
    );
    for b in k..k + n {
        assert_ne!(e.d.batch_header(b).unwrap().posted_by, Some(exec.address()), "batch {b}'s void posting stood");
    }
}

/// With finding [2]: the contract lets the void poster do it again after
/// every take-back, for nothing (its deposit stays, it stays active), and
/// lets any other active executor replace a void posting at once (what an
/// honest party should do).
#[test]
fn a_void_poster_reposts_void_after_each_take_back_but_anyone_may_replace_it_at_once() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let tcrs = honest_submit(&mut e, k);
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: tcrs.clone() };
    for round in 0..3 {
        let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "round {round}: void posting: {:?}", r.status);
        let r = e.d.primary_call(&trader(2), "finalize", e.d.finalize_args(k).unwrap(), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "round {round}: take-back: {:?}", r.status);
        assert_eq!(e.d.batch_header(k).unwrap().tcr_root, None, "round {round}: taken back");
        assert!(node_active(&e, &exec.address()), "round {round}: the void poster is not punished");
    }
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    let other = e.d.executors.iter().find(|(x, _)| x.address() != exec.address()).unwrap().0.clone();
    let true_root = gridledger_rollup::state::state_root(&e.d.state_before(k).unwrap());
    let on = SubmitTcrsOn { pre_root: true_root, tcrs };
    let r = e.d.primary_call(&other, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "replacement at once: {:?}", r.status);
    assert_eq!(e.d.batch_header(k).unwrap().posted_by, Some(other.address()));
}

/// Held up: the assigned validator commits to its whole-batch dispute of
/// a void posting whose leaf 0 has forged inputs; the executor then
/// replaces it with the batch's correct TCRs on the settled root. The
/// revealed stale dispute is refused (`Replaced`): the validator keeps
/// its deposit and pays only the fee, and the correct batch settles.
#[test]
fn a_stale_dispute_of_a_correct_replacement_costs_the_validator_nothing() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let honest = honest_submit(&mut e, k);
    let (input, full, mut leaves, burned) = honest_leaves(&e, k);
    let buyer = input.entries[0].tx.terms().buyer;
    leaves[0].pre.participants.get_mut(&buyer).expect("the buyer's record").balance = Amount::ZERO;
    // ... and the last post-state root mints trader 3 ten coin.
    let minted = minted_state(&e, &input, &full, &leaves, trader(3).address());
    let forged = submit_of(k, &input, &leaves, burned, Some(gridledger_rollup::state::state_root(&minted)));
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: forged };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    let input = e.d.batch_input(k).unwrap();
    let i = e.d.validators.iter().position(|(v, _)| v.address() == input.header.validator).unwrap();
    let step = e.d.validators[i].1.watch(&input);
    let validator = e.d.validators[i].0.clone();
    let calls: Vec<_> = step.calls.into_iter().filter(|c| c.target == Target::Primary).collect();
    assert_eq!(calls.iter().map(|c| c.method).collect::<Vec<_>>(), ["commit_dispute", "dispute"]);
    let r = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "commitment: {:?}", r.status);
    let true_root = gridledger_rollup::state::state_root(&e.d.state_before(k).unwrap());
    let on = SubmitTcrsOn { pre_root: true_root, tcrs: honest.clone() };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "correct replacement: {:?}", r.status);
    let before = wealth(&e, &validator);
    let r = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    let lost = before - wealth(&e, &validator);
    assert!(matches!(&r.status, TxStatus::Reverted(m) if m.contains("replaced")), "{:?}", r.status);
    assert!(lost < e.d.cfg.challenge_bond.0, "the validator lost {lost}, more than a fee");
    assert!(node_active(&e, &validator.address()), "the validator keeps its deposit");
    let due = e.d.batch_header(k).unwrap().complete_at.unwrap() + e.d.cfg.window_ms();
    e.d.set_time(due);
    let r = e.d.primary_call(&trader(2), "finalize", e.d.finalize_args(k).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "finalize: {:?}", r.status);
    let h = e.d.batch_header(k).unwrap();
    assert!(matches!(h.state, BatchState::Settled { disputed: false, .. }), "{:?}", h.state);
    assert_eq!(h.post_root, Some(honest.post_root));
    assert!(node_active(&e, &exec.address()), "the executor's correct replacement stands");
}
