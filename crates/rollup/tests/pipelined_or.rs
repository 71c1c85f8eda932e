//! The conventional optimistic rollup baseline ([`Mode::ConventionalOr`],
//! `PrimaryConfig::pipelined`): batches are posted as soon as they are
//! recorded, each stating the root it builds on (`sc_cr_on`: honest
//! executors state the state their predecessor really leaves; plain
//! `sc_cr` claims the predecessor's posted root); batches settle in order;
//! a batch is judged against its own claimed pre-root alone, from its own
//! posting for a whole window, so the windows overlap; a batch whose
//! claimed pre-root is not the root its predecessor settled with is void
//! and taken back at its own `finalize` (nobody punished), then posted
//! again on the settled state (attack r14). A void posting ahead (one
//! claiming another root than its predecessor's standing posting states,
//! or an overturned one's) is replaced at once by any active executor,
//! claiming the root it must build on (attack r15).

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::driver::{Mode, WEEK_MS};
use gridledger_rollup::primary::BatchState;
use gridledger_rollup::types::{coins, IorTx, Outcome};

/// Four traders (0–2 funded, funding settled), two executors, three
/// validators, a week's window; the clock past the funding's settlement.
fn or_funded() -> Env {
    let mut e = open(config(Mode::ConventionalOr, 4, 2, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    e
}

/// Records `n` batches of one AT each (trader 0 buys 500 Wh from trader 1
/// for successive slots a day ahead), each in its own block. Returns the
/// first batch's id.
fn record_batches(e: &mut Env, n: u64) -> u64 {
    let (b, s) = (trader(0), trader(1));
    let (first, _) = e.d.reader().progress().unwrap();
    let day = (e.d.now() / HOUR + 24) * HOUR;
    for i in 0..n {
        let t = terms(&b, &s, Amount(200_000), 500, day + i * HOUR);
        let txs: Vec<(KeyPair, IorTx)> = vec![(b.clone(), at(&t, &s))];
        e.d.submit_block(&txs).unwrap();
    }
    e.d.primary.seal();
    first
}

#[test]
fn batches_posted_ahead_are_final_a_window_after_their_own_posting() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 3);
    let settled = e.d.process(&mut rng(1)).unwrap();
    assert_eq!(settled.len(), 3);
    for s in &settled {
        assert_eq!(s.outcomes, vec![Outcome::AtAccepted], "batch {}", s.batch);
        assert!(!s.disputed);
        let h = e.d.batch_header(s.batch).unwrap();
        let BatchState::Settled { at, .. } = h.state else { panic!("{:?}", h.state) };
        // A whole window after its own posting, not after the batch before
        // it settled: the windows overlap.
        let start = h.complete_at.unwrap();
        assert!(at >= start + WEEK_MS && at < start + WEEK_MS + HOUR, "batch {}: {at} vs {start}", s.batch);
    }
    let h0 = e.d.batch_header(first).unwrap();
    let h2 = e.d.batch_header(first + 2).unwrap();
    let BatchState::Settled { at: settled0, .. } = h0.state else { panic!("{:?}", h0.state) };
    // The last batch was posted before the first one settled.
    assert!(h2.complete_at.unwrap() < settled0, "{h2:?} vs {settled0}");
    assert!(h0.complete_at < h2.complete_at);
}

#[test]
fn ior_does_not_post_ahead_and_the_baseline_settles_in_order() {
    // IOR: the second batch's TCRs wait for the first to settle.
    let mut e = funded();
    settle_funding(&mut e);
    let first = record_batches(&mut e, 2);
    let (tcrs, exec) = honest_tcrs(&mut e, first + 1);
    let r = record_tcrs(&mut e, &exec, first + 1, tcrs);
    assert!(reverted(&r).contains(&format!("batch {first} must settle before batch {}", first + 1)), "{:?}", r.status);

    // The baseline posts it ahead, but finalises it only after the first.
    // Plain `sc_cr` claims the predecessor's posted root, so it needs one;
    // `sc_cr_on` states the root it builds on and needs none.
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (tcrs, exec) = honest_tcrs(&mut e, first + 1);
    let plain = tcr_args(&e, first + 1, tcrs.clone(), e.d.entries(first + 1).unwrap());
    let r = e.d.primary_call(&exec, "sc_cr", plain, Amount::ZERO).unwrap();
    assert!(reverted(&r).contains(&format!("batch {first} has no standing TCRs")), "{:?}", r.status);
    assert_eq!(record_tcrs(&mut e, &exec, first + 1, tcrs).status, TxStatus::Success);
    let (t0, exec0) = honest_tcrs(&mut e, first);
    assert_eq!(record_tcrs(&mut e, &exec0, first, t0).status, TxStatus::Success);
    let later = e.d.batch_header(first + 1).unwrap().complete_at.unwrap() + WEEK_MS;
    e.d.set_time(later);
    let r = e.d.primary_call(&exec, "finalize", e.d.finalize_args(first + 1).unwrap(), Amount::ZERO).unwrap();
    assert!(reverted(&r).contains(&format!("batch {first} must settle before batch {}", first + 1)), "{:?}", r.status);
    let settled = e.d.process(&mut rng(2)).unwrap();
    assert_eq!(settled.iter().map(|s| s.batch).collect::<Vec<_>>(), vec![first, first + 1]);
}

#[test]
fn a_forged_batch_posted_ahead_is_disputed_while_its_predecessor_is_open_and_settles_in_order() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (t0, exec0) = honest_tcrs(&mut e, first);
    assert_eq!(record_tcrs(&mut e, &exec0, first, t0).status, TxStatus::Success);
    // The second batch's executor forges its post-state root, posted while
    // the first batch's window is open.
    forge_last_root(&mut e, first + 1);
    let forger = e.d.batch_header(first + 1).unwrap().posted_by.unwrap();
    let (validator, calls) = validator_step(&mut e, first + 1);
    let r = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{}: {:?}", calls[0].method, r.status);
    // Judged against the root it claims, while the first batch is open.
    let r = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{}: {:?}", calls[1].method, r.status);
    assert_eq!(e.d.batch_header(first).unwrap().state, BatchState::Open);
    assert!(e.d.batch_header(first + 1).unwrap().overturned);
    let settled = e.d.process(&mut rng(3)).unwrap();
    assert_eq!(settled.iter().map(|s| s.batch).collect::<Vec<_>>(), vec![first, first + 1]);
    assert!(!settled[0].disputed && settled[1].disputed);
    assert_eq!(settled[1].outcomes, vec![Outcome::AtAccepted], "executed on chain, honestly");
    assert!(!node_active(&e, &forger), "the forger's deposit is forfeited");
}

#[test]
fn a_batch_built_on_a_root_that_did_not_settle_is_void_and_posted_again() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    forge_last_root(&mut e, first);
    let forger = e.d.batch_header(first).unwrap().posted_by.unwrap();
    // Plain `sc_cr`: the second batch claims the first's posted root.
    let (t1, exec1) = honest_tcrs(&mut e, first + 1);
    let plain = tcr_args(&e, first + 1, t1, e.d.entries(first + 1).unwrap());
    assert_eq!(e.d.primary_call(&exec1, "sc_cr", plain, Amount::ZERO).unwrap().status, TxStatus::Success);
    let posted1 = e.d.batch_header(first + 1).unwrap().complete_at.unwrap();
    let (validator, calls) = validator_step(&mut e, first);
    for c in calls {
        let r = e.d.primary_call(&validator, c.method, c.args, Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{}: {:?}", c.method, r.status);
    }
    // The first batch is overturned and executed on chain: its settled
    // root is not the one the second batch's TCRs were posted on.
    let exec = e.d.executors[0].0.clone();
    let r = e.d.primary_call(&exec, "finalize", e.d.finalize_args(first).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    // Void: nothing to judge; taken back at its own turn.
    assert!(e.d.batch_header(first + 1).unwrap().tcr_root.is_some());
    let (claimed, _) = honest_tcrs(&mut e, first + 1);
    let a = whole(&e, first + 1, claimed);
    let r = e.d.primary_call(&trader(3), "dispute", a, e.d.cfg.challenge_bond).unwrap();
    assert!(reverted(&r).contains("void"), "{:?}", r.status);
    // Posted again on the settled state, and final a window after that.
    let settled = e.d.process(&mut rng(4)).unwrap();
    assert_eq!(settled.iter().map(|s| s.batch).collect::<Vec<_>>(), vec![first + 1]);
    assert_eq!(settled[0].outcomes, vec![Outcome::AtAccepted]);
    assert!(!settled[0].disputed);
    assert!(e.d.batch_header(first + 1).unwrap().complete_at.unwrap() > posted1);
    // Nobody is punished for building on a root that proved wrong (only
    // the forger of the first batch, where it executes both).
    assert!(exec1.address() == forger || node_active(&e, &exec1.address()));
}

/// `sc_cr_on` of `batch`'s honest leaves by `key`, claiming `pre_root`.
fn post_claiming(e: &mut Env, key: &KeyPair, batch: u64, pre_root: gridledger_core::Hash32) -> TxStatus {
    let (t, _) = honest_tcrs(e, batch);
    let tcrs = borsh::from_slice(&tcr_args(e, batch, t, e.d.entries(batch).unwrap())).unwrap();
    let on = gridledger_rollup::primary::SubmitTcrsOn { pre_root, tcrs };
    e.d.primary_call(key, "sc_cr_on", gridledger_rollup::args(&on), Amount::ZERO).unwrap().status
}

/// Attack r15 [3]: a posting ahead that claims the post-state root its
/// predecessor's standing posting states is not void and cannot be
/// replaced (no executor restarts an honest batch's window); one that
/// claims another root is replaced at once by any active executor, but
/// only by a posting claiming that root.
#[test]
fn only_a_void_posting_ahead_is_replaced_and_only_on_its_predecessors_root() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 3);
    for b in first..first + 2 {
        let (t, x) = honest_tcrs(&mut e, b);
        assert_eq!(record_tcrs(&mut e, &x, b, t).status, TxStatus::Success, "batch {b}");
    }
    let keys: Vec<KeyPair> = e.d.executors.iter().map(|(k, _)| k.clone()).collect();
    // The honest posting of first + 1 stands.
    for k in &keys {
        let (t, _) = honest_tcrs(&mut e, first + 1);
        let r = record_tcrs(&mut e, k, first + 1, t);
        assert!(reverted(&r).contains("already recorded"), "{:?}", r.status);
    }
    // first + 2 posted on a made-up root: void.
    let (_, x2) = honest_tcrs(&mut e, first + 2);
    assert_eq!(post_claiming(&mut e, &x2, first + 2, gridledger_core::Hash32([7; 32])), TxStatus::Success);
    let other = keys.iter().find(|k| k.address() != x2.address()).unwrap().clone();
    let r = post_claiming(&mut e, &other, first + 2, gridledger_core::Hash32([8; 32]));
    assert!(matches!(&r, TxStatus::Reverted(w) if w.contains("must claim")), "{r:?}");
    let (t, _) = honest_tcrs(&mut e, first + 2);
    assert_eq!(record_tcrs(&mut e, &other, first + 2, t).status, TxStatus::Success);
    let h = e.d.batch_header(first + 2).unwrap();
    assert_eq!(h.posted_by, Some(other.address()));
    // The replacement stands in turn, and all three settle a window after
    // their postings.
    let (t, _) = honest_tcrs(&mut e, first + 2);
    assert!(reverted(&record_tcrs(&mut e, &x2, first + 2, t)).contains("already recorded"));
    let settled = e.d.process(&mut rng(5)).unwrap();
    assert_eq!(settled.iter().map(|s| s.batch).collect::<Vec<_>>(), vec![first, first + 1, first + 2]);
    assert!(settled.iter().all(|s| !s.disputed));
}

/// Attack r16 [2] (replacing r15 [3]'s at-once rule): after its
/// predecessor is overturned, a posting claiming the overturned batch's
/// posted root is not replaced at once (that root may be the true one,
/// and the posting honest); it is judged against the root the overturned
/// batch settles with (the chain's execution), so once that differs it is
/// void, taken over on the settled root, and settles.
#[test]
fn a_posting_on_an_overturned_root_waits_for_the_root_it_settles_with() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    forge_last_root(&mut e, first);
    let forged = e.d.batch_header(first).unwrap().post_root.unwrap();
    let (t1, exec1) = honest_tcrs(&mut e, first + 1);
    let plain = tcr_args(&e, first + 1, t1, e.d.entries(first + 1).unwrap());
    assert_eq!(e.d.primary_call(&exec1, "sc_cr", plain, Amount::ZERO).unwrap().status, TxStatus::Success);
    let posted1 = e.d.batch_header(first + 1).unwrap().complete_at.unwrap();
    let (validator, calls) = validator_step(&mut e, first);
    for c in calls {
        let r = e.d.primary_call(&validator, c.method, c.args, Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{}: {:?}", c.method, r.status);
    }
    assert!(e.d.batch_header(first).unwrap().overturned);
    assert_eq!(e.d.batch_header(first).unwrap().state, BatchState::Open);
    // Not void yet: no executor replaces it, on any root.
    for k in e.d.executors.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>() {
        let (t, _) = honest_tcrs(&mut e, first + 1);
        assert!(reverted(&record_tcrs(&mut e, &k, first + 1, t)).contains("already recorded"));
        let r = post_claiming(&mut e, &k, first + 1, gridledger_core::Hash32([9; 32]));
        assert!(matches!(&r, TxStatus::Reverted(w) if w.contains("already recorded")), "{r:?}");
    }
    assert_eq!(e.d.batch_header(first + 1).unwrap().complete_at, Some(posted1));
    // The overturned batch settles with the chain's root, not the forged
    // one; its successor is then void, posted again on it, and settles.
    let settled = e.d.process(&mut rng(6)).unwrap();
    assert!(settled.iter().any(|s| s.batch == first));
    assert_ne!(e.d.batch_header(first).unwrap().post_root, Some(forged));
    assert!(settled.iter().any(|s| s.batch == first + 1 && !s.disputed));
    assert!(e.d.batch_header(first + 1).unwrap().complete_at.unwrap() > posted1);
}

/// Posting ahead is the baseline's alone: `init` refuses a configuration
/// with `pipelined` set, and `init_baseline` (how the baseline's deployment
/// says it is one) refuses one without; the driver deploys IOR with `init`
/// and the baseline with `init_baseline`.
#[test]
fn only_a_deployment_that_says_it_is_the_baseline_posts_ahead() {
    let mut e = funded();
    let admin = e.d.executors[0].0.clone();
    let mut c = gridledger_rollup::driver::primary_config(&e.d.primary).unwrap();
    assert!(!c.pipelined);
    let r = e.d.primary_call(&admin, "init_baseline", gridledger_rollup::args(&c), Amount::ZERO).unwrap();
    assert!(reverted(&r).contains("init_baseline requires it"), "{:?}", r.status);
    c.pipelined = true;
    let r = e.d.primary_call(&admin, "init", gridledger_rollup::args(&c), Amount::ZERO).unwrap();
    assert!(reverted(&r).contains("init refuses it"), "{:?}", r.status);
    let e = or_funded();
    assert!(gridledger_rollup::driver::primary_config(&e.d.primary).unwrap().pipelined);
}
