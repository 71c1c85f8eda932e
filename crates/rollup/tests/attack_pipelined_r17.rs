//! Attack round 17 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline's rules of attack r16's fix
//! (`PrimaryConfig::pipelined`, [`Mode::ConventionalOr`]): a dispute
//! committed to before a void posting's replacement is refused
//! (`EntryDisputeError::Replaced`), void postings are replaced at once.
//!
//! Findings: [1] the `Replaced` rule keys on the dispute's digest, and an
//! honest validator's whole-batch dispute (`roles::dispute_call`: its own
//! TCRs, the entries and the settled-state witness) does not depend on the
//! posting it disputes. So once it committed to that dispute of a void
//! posting, a replacement with the same forged leaves on the right
//! pre-root can never be disputed by it inside the window: the revealed
//! dispute is `Replaced`, a re-commitment is "already committed", and an
//! uncommitted dispute finds the old commitment and is `Replaced` too. If
//! the validator is the only honest watcher, the forged root settles
//! (theft); [2] through the driver's own run (`process`) the replacement
//! is overturned by another party after the assigned validator's turn,
//! and `punish` burns the honest, locked-out validator's deposit.
//!
//! Fixed: a dispute committed before the standing posting is judged
//! against it and can only win (a correct replacement refuses it,
//! `Replaced`, nothing lost), and a replacement's window and turn run from
//! the replacement; both findings' tests pass, and so does the lead of a
//! void posting taken back by `finalize` and posted again.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::exec::PreState;
use gridledger_rollup::primary::{BatchState, SubmitTcrs, SubmitTcrsOn};
use gridledger_rollup::roles::{Call, Target};
use gridledger_rollup::state::state_root;
use gridledger_rollup::types::{dispute_commitment, dispute_digest};

/// `batch`'s leaves forged two ways: leaf 0 commits to inputs in which the
/// buyer has no coin (so an honest checker's first differing leaf has
/// other inputs than its own and it disputes the whole batch), and the
/// last post-state root mints `to` 10 coin. Returns the arguments and the
/// minted state (which the forger keeps).
fn forged_tcrs(e: &mut Env, batch: u64, to: Address) -> (SubmitTcrs, PreState) {
    e.d.primary.seal();
    let (input, full, mut leaves, burned) = honest_leaves(e, batch);
    let minted = minted_state(e, &input, &full, &leaves, to);
    let buyer = input.entries[0].tx.terms().buyer;
    leaves[0].pre.participants.get_mut(&buyer).expect("the buyer's record").balance = Amount::ZERO;
    let sub = submit_of(batch, &input, &leaves, burned, Some(state_root(&minted)));
    (sub, minted)
}

/// Whether `batch` was proved wrong: overturned, or overturned and
/// settled at once with the chain's own execution (the next to settle).
fn disproved(e: &Env, batch: u64) -> bool {
    let h = e.d.batch_header(batch).unwrap();
    h.overturned || matches!(h.state, BatchState::Settled { disputed: true, .. })
}

/// `batch`'s assigned validator's primary-chain calls as the baseline's
/// watcher (`roles::Validator::watch`) and its key.
fn watcher_calls(e: &mut Env, batch: u64) -> (KeyPair, Vec<Call>) {
    let input = e.d.batch_input(batch).unwrap();
    let i = e.d.validators.iter().position(|(v, _)| v.address() == input.header.validator).unwrap();
    let step = e.d.validators[i].1.watch(&input);
    let calls = step.calls.into_iter().filter(|c| c.target == Target::Primary).collect();
    (e.d.validators[i].0.clone(), calls)
}

/// The scenario of both findings: batch k (the next to settle) is posted
/// void by its executor (a made-up claimed pre-root) with the forged
/// leaves; its assigned validator (the honest watcher) checks it and
/// commits to its whole-batch dispute; before the reveal the executor
/// replaces its own void posting with the same forged leaves on the
/// settled root. Returns the env, k, the executor, the validator, the
/// validator's calls and the minted state.
fn forged_replacement_after_commitment(accomplice: Address) -> (Env, u64, KeyPair, KeyPair, Vec<Call>, PreState) {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "the batch is the next to settle");
    let exec = executor_of(&e, k);
    let true_root = state_root(&e.d.state_before(k).unwrap());
    let (tcrs, minted) = forged_tcrs(&mut e, k, accomplice);
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: tcrs.clone() };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    let (validator, calls) = watcher_calls(&mut e, k);
    assert_eq!(calls.iter().map(|c| c.method).collect::<Vec<_>>(), ["commit_dispute", "dispute"]);
    let r = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "commitment: {:?}", r.status);
    // The executor replaces its own void posting: same leaves, right pre-root.
    let on = SubmitTcrsOn { pre_root: true_root, tcrs };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "replacement: {:?}", r.status);
    assert_eq!(e.d.batch_header(k).unwrap().posted_by, Some(exec.address()));
    (e, k, exec, validator, calls, minted)
}

/// Finding 1 (critical where the assigned validator is the only honest
/// watcher): the honest validator that committed to its whole-batch
/// dispute of a void posting can never dispute the posting's forged
/// replacement inside its window, and the minting root settles.
///
/// After the replacement the validator does what an honest watcher can:
/// it reveals its committed dispute (refused: `Replaced`, as designed),
/// checks the batch again — the same call, since a whole-batch dispute
/// carries the validator's own TCRs, the entries and the settled-state
/// witness, not the posting — and commits to it again (refused: "already
/// committed" while the first commitment lives, a whole window) and sends
/// it (refused: `Replaced`, the old commitment is found again); and the
/// same uncommitted. Nothing else in its software differs. Its turn and
/// the window pass, the forged root settles, and the never-funded
/// accomplice withdraws 10 coin. What should happen: a dispute committed
/// before a replacement does not lock its sender out of disputing the
/// replacement (e.g. `Replaced` compares the commitment with the time of
/// the posting it was built for and spends/forgets it, or the digest
/// names the disputed TCR root).
#[test]
fn a_validator_that_committed_before_a_replacement_can_still_dispute_the_replacement() {
    let accomplice = trader(3);
    let (mut e, k, exec, validator, calls, minted) = forged_replacement_after_commitment(accomplice.address());
    let d = &calls[1];
    let mut tries = Vec::new();
    // The revealed dispute (since the fix it is judged against the
    // replacement and overturns it).
    let s = e.d.primary_call(&validator, d.method, d.args.clone(), Amount::ZERO).unwrap().status;
    tries.push(("reveal", s));
    if !disproved(&e, k) {
        // The watcher checks again: the same calls.
        let (_, again) = watcher_calls(&mut e, k);
        assert_eq!(again.iter().map(|c| (c.method, c.args.clone())).collect::<Vec<_>>(), {
            calls.iter().map(|c| (c.method, c.args.clone())).collect::<Vec<_>>()
        });
        for (name, c) in [("re-commit", &again[0]), ("dispute", &again[1]), ("uncommitted", &again[1])] {
            if disproved(&e, k) {
                break;
            }
            let s = e.d.primary_call(&validator, c.method, c.args.clone(), Amount::ZERO).unwrap().status;
            tries.push((name, s));
        }
    }
    let overturned = disproved(&e, k);
    let mut stolen = Amount::ZERO;
    if !overturned {
        let due = e.d.batch_header(k).unwrap().complete_at.unwrap() + e.d.cfg.window_ms();
        e.d.set_time(due);
        let r = e.d.primary_call(&trader(2), "finalize", e.d.finalize_args(k).unwrap(), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "finalize: {:?}", r.status);
        let h = e.d.batch_header(k).unwrap();
        assert!(matches!(h.state, BatchState::Settled { .. }));
        assert_eq!(h.post_root, Some(state_root(&minted)), "the minting root settled");
        stolen = withdraw_minted(&mut e, &minted, &accomplice);
    }
    assert!(
        overturned,
        "batch {k}'s forged replacement by {} (minting the accomplice 10 coin) could not be disputed by its honest \
         validator {}: {tries:?}; the root settled and the accomplice withdrew {stolen}",
        exec.address(),
        validator.address(),
    );
}

/// Finding 2 (high): through the driver's own run the forged replacement
/// is overturned by another party after the assigned validator's turn,
/// and the honest validator — refused (`Replaced`, "already committed")
/// at every try — loses its deposit (`punish`: the validator upheld a
/// wrong TCR past its turn).
///
/// Same scenario as finding 1; then `process` runs: the watcher's turn
/// (refused), then the involved meters' delegated validators or a bonded
/// challenger overturn the batch after half a window. What should
/// happen: the validator is not late — it disputed, and the contract
/// refused it — so it is not forfeited (or, better, finding 1 is fixed and
/// it overturns the batch itself in its turn).
#[test]
fn the_honest_validator_locked_out_by_a_replacement_keeps_its_deposit() {
    let (mut e, k, exec, validator, _, minted) = forged_replacement_after_commitment(trader(3).address());
    let run = e.d.process(&mut rng(17)).map(|v| v.iter().map(|s| (s.batch, s.disputed)).collect::<Vec<_>>());
    let h = e.d.batch_header(k).unwrap();
    let forged_settled = h.post_root == Some(state_root(&minted)) && matches!(h.state, BatchState::Settled { .. });
    assert!(!forged_settled, "the minting root settled through process ({run:?})");
    assert!(
        node_active(&e, &validator.address()),
        "batch {k}'s honest validator {} lost its deposit (batch overturned: {}; state {:?}; process {run:?}); \
         the forging executor {} active: {}",
        validator.address(),
        disproved(&e, k),
        h.state,
        exec.address(),
        node_active(&e, &exec.address()),
    );
}

/// Held up: a fresh commitment to a dispute of the replacement with other
/// arguments (another sender) overturns it.
#[test]
fn another_committed_challenger_overturns_the_forged_replacement() {
    let (mut e, k, _, _, calls, minted) = forged_replacement_after_commitment(trader(3).address());
    let who = trader(2);
    let a = calls[1].args.clone();
    let c = dispute_commitment(&dispute_digest("dispute", &a), &who.address());
    let r = e.d.primary_call(&who, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let s = e.d.primary_call(&who, "dispute", a, e.d.cfg.challenge_bond).unwrap().status;
    assert_eq!(s, TxStatus::Success, "{s:?}");
    assert!(disproved(&e, k));
    assert_ne!(e.d.batch_header(k).unwrap().post_root, Some(state_root(&minted)));
}

/// The attacker's lead, checked with the fix (`begin_dispute`: a dispute
/// committed before the standing posting is judged against it and can
/// only win): `finalize` takes back the void posting (its claimed pre-root
/// is not the settled root) and the executor posts the same forged leaves
/// again on the settled root. The validator's dispute, committed for the
/// void posting, overturns the posting again; the minting root never
/// settles.
#[test]
fn a_dispute_committed_before_a_take_back_disputes_the_same_leaves_posted_again() {
    let accomplice = trader(3);
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let true_root = state_root(&e.d.state_before(k).unwrap());
    let (tcrs, minted) = forged_tcrs(&mut e, k, accomplice.address());
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: tcrs.clone() };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "void posting: {:?}", r.status);
    let (validator, calls) = watcher_calls(&mut e, k);
    assert_eq!(calls.iter().map(|c| c.method).collect::<Vec<_>>(), ["commit_dispute", "dispute"]);
    let r = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "commitment: {:?}", r.status);
    // `finalize` takes the void posting back.
    let r = e.d.primary_call(&trader(2), "finalize", e.d.finalize_args(k).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "finalize: {:?}", r.status);
    assert_eq!(e.d.batch_header(k).unwrap().tcr_root, None, "taken back");
    // The same forged leaves, posted again on the settled root.
    let on = SubmitTcrsOn { pre_root: true_root, tcrs };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "posted again: {:?}", r.status);
    let s = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap().status;
    assert_eq!(s, TxStatus::Success, "the committed dispute of the re-posting: {s:?}");
    assert!(disproved(&e, k));
    assert_ne!(e.d.batch_header(k).unwrap().post_root, Some(state_root(&minted)));
    assert!(node_active(&e, &validator.address()));
    assert!(!node_active(&e, &exec.address()), "the forger is forfeited");
}
