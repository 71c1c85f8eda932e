//! Attack round 22 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline (`PrimaryConfig::pipelined`,
//! [`Mode::ConventionalOr`]) after the r21 fix (the driver watches every
//! standing posting *after* the batch being settled before each clock
//! jump).
//!
//! Finding [1] (critical): the guard does not cover the batch being
//! settled (`fin`) itself, and `post_ahead` moves the clock a block per
//! unposted batch ahead before `fin`'s assigned watcher and the backup
//! checkers look at `fin`'s posting. Executor X posts its batch `fin`
//! (the next batch to settle) with a post-state root that mints an
//! accomplice 10 coin; the run starts while that posting's window still
//! has a few seconds left (a dispute sent at that moment would be
//! accepted). `process` first posts the batches recorded after `fin`, a
//! block (one second) apart, so by the time the watcher, the meters,
//! their delegates and the bonded challenge check `fin` its window is
//! over, every dispute is refused, and the minting root settles. Every
//! validator is honest; the one misbehaving party is the executor. The
//! accomplice withdraws the minted coin, X keeps its deposit, and the
//! driver's own run then fails (`BatchData`: the settled root is not what
//! the batch's entries produce).
//!
//! Fixed: before each guarded clock move the driver also watches and backs
//! `fin`'s standing posting when its window would end within the margin
//! (`GUARD_BLOCKS_PER_BATCH` seconds per batch recorded after it, plus
//! one), in ascending order of window end with the postings ahead; the
//! guard also runs before `claim_held`. Planted bug `FinLeftUnwatched`.
//!
//! Held up (passing tests): the same forgery with the same seconds left,
//! nothing recorded after it, is overturned (the watcher disputes it
//! before the clock moves); forgeries ahead posted latest first, the run
//! starting seconds before the last one's window ends, are all overturned;
//! the guard's disputes of forgeries ahead do not run out the window of
//! the same executor's forged posting of `fin` (its forfeiture takes that
//! posting back).

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::state::state_root;

/// Records `n` one-AT batches; the first one's executor posts it with a
/// minting root; the clock is moved to `left_ms` before the end of that
/// posting's window. Returns the env, the batch and the minted state.
fn forged_fin_near_window_end(n: u64, left_ms: u64) -> (Env, u64, gridledger_rollup::exec::PreState) {
    let mut e = or_funded();
    let first = record_batches(&mut e, n);
    let minted = post_minting_root(&mut e, first, trader(3).address());
    let h = e.d.batch_header(first).unwrap();
    let start = h.complete_at.expect("the posting starts the window");
    let end = start + e.d.cfg.window_ms();
    e.d.set_time(end - left_ms);
    (e, first, minted)
}

/// Finding [1].
#[test]
fn a_forged_posting_of_the_batch_to_settle_is_checked_before_post_ahead() {
    let (mut e, fin, minted) = forged_fin_near_window_end(12, 5_000);
    let x = executor_of(&e, fin);
    let run = e.d.process(&mut rng(22));
    let stolen = settled_root_of(&e, fin) == Some(state_root(&minted));
    let accomplice = trader(3);
    let gained = if stolen { withdraw_minted(&mut e, &minted, &accomplice).0 } else { 0 };
    assert!(
        !stolen,
        "executor {} posted batch {fin} with a root minting 10 coin; the run started with 5 s of its window left, \
         every validator honest, yet the minting root settled (post_ahead's blocks ran the window out before the \
         watcher looked at it); the accomplice withdrew {gained} minor units; X still active: {}; run: {:?}",
        x.address(),
        node_active(&e, &x.address()),
        run.map(|r| r.len()),
    );
}

/// Control of finding [1]: the same forgery, the same seconds left,
/// nothing recorded after it: overturned, and the forger forfeited.
#[test]
fn a_forged_posting_of_the_batch_to_settle_alone_is_overturned() {
    let (mut e, fin, minted) = forged_fin_near_window_end(1, 5_000);
    let x = executor_of(&e, fin);
    let _ = e.d.process(&mut rng(22));
    assert_ne!(settled_root_of(&e, fin), Some(state_root(&minted)), "the minting root did not settle");
    assert!(!node_active(&e, &x.address()), "the forger is forfeited");
}

/// Probe: X posts forgeries ahead on every later batch it is assigned,
/// latest batch first, so the earliest-numbered posting has the most
/// window left; the run starts `left_ms` before the window of the
/// highest-numbered one ends. The watcher checks postings ahead in batch
/// order, each dispute a block: do the disputes of the lower ones eat the
/// highest one's window?
#[test]
fn many_forgeries_ahead_posted_in_reverse_are_all_overturned() {
    let mut e = or_funded();
    let first = record_batches(&mut e, 30);
    let x = executor_of(&e, first + 1);
    let (next, _) = e.d.reader().progress().unwrap();
    let mine: Vec<u64> = (first + 1..next).filter(|b| executor_of(&e, *b).address() == x.address()).collect();
    assert!(mine.len() >= 6, "X is assigned several batches ahead: {mine:?}");
    let accomplice = trader(3);
    let mut minted = Vec::new();
    for b in mine.iter().rev() {
        minted.push((*b, forge_ahead(&mut e, &x, *b, accomplice.address())));
    }
    let last = *mine.last().unwrap();
    let start = e.d.batch_header(last).unwrap().complete_at.unwrap();
    e.d.set_time(start + e.d.cfg.window_ms() - 3_000);
    let run = e.d.process(&mut rng(22));
    let stolen: Vec<u64> =
        minted.iter().filter(|(b, m)| settled_root_of(&e, *b) == Some(state_root(m))).map(|(b, _)| *b).collect();
    assert!(
        stolen.is_empty(),
        "forged roots settled for batches {stolen:?} (X's: {mine:?}); run: {:?}",
        run.map(|r| r.len())
    );
}

/// Held up: the same gap by another path. Nothing is left to post
/// ahead, so `post_ahead` moves no clock, but the guard at the top of the
/// turn first watches the postings *after* `fin` (X's forgeries ahead,
/// overturned by disputes, a block per call) before anyone looks at X's
/// forged posting of `fin`, whose window had 3 s left when the run
/// started. It holds because the first overturn forfeits X, whose
/// posting of `fin` is then taken back and posted again by the honest
/// executor (a fresh window), so the minting root never settles.
#[test]
fn disputes_of_forgeries_ahead_do_not_run_out_the_window_of_the_batch_to_settle() {
    let mut e = or_funded();
    let fin = record_batches(&mut e, 8);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin);
    let accomplice = trader(3);
    let minted = post_minting_root(&mut e, fin, accomplice.address());
    let fin_start = e.d.batch_header(fin).unwrap().complete_at.unwrap();
    for b in fin + 1..next {
        let k = executor_of(&e, b);
        if k.address() == x.address() {
            forge_ahead(&mut e, &x, b, accomplice.address());
        } else {
            let pre = state_root(&e.d.state_before(b).unwrap());
            let on = posting_on(&mut e, b, pre, None);
            let r = e.d.primary_call(&k, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
            assert_eq!(r.status, TxStatus::Success, "honest posting ahead of {b}: {:?}", r.status);
        }
    }
    e.d.set_time(fin_start + e.d.cfg.window_ms() - 3_000);
    assert!((fin + 1..next).any(|b| executor_of(&e, b).address() == x.address()), "X has a batch ahead");
    let run = e.d.process(&mut rng(22));
    let stolen = settled_root_of(&e, fin) == Some(state_root(&minted));
    assert!(
        !stolen,
        "executor {} posted batch {fin} with a root minting 10 coin (3 s of its window left at the run's start) and \
         forgeries ahead; the minting root of {fin} settled; run: {:?}",
        x.address(),
        run.map(|r| r.len()),
    );
}
