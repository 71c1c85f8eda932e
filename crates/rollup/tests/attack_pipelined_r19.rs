//! Attack round 19 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline (`PrimaryConfig::pipelined`,
//! [`Mode::ConventionalOr`]) after r18's fix: a whole-batch dispute counts
//! as built for a replaced posting (it "can only win": a correct standing
//! posting refuses it as `Replaced`, bond kept) only where the batch's
//! posting was replaced or taken back (`rp/BATCH`, the first posting's
//! height) and the commitment came no earlier than that first posting.
//!
//! Finding [1] (low; fixed: the `Replaced` leniency needs the posting
//! that stood at the commitment to differ from the standing one): the replacement can be forced after the commitment
//! by a colluding executor at no cost, so a frivolous dispute of a correct
//! posting ahead is riskless again. Batch k+1 is posted ahead, correctly,
//! on the true root. Challenger C commits to a frivolous whole-batch
//! dispute of it. Executor X (k's assigned executor) then posts k void
//! with a made-up post-state root, which makes k+1's correct posting void
//! relative to it, and replaces k+1 on its made-up root (any active
//! executor may, and void posters are not punished). The honest
//! executors replace both at once, correctly; C's revealed dispute of the
//! correct k+1 is refused as `Replaced` and C keeps its bond, which should
//! have paid the executor it challenged. C's commitment came after k+1's
//! first posting, which was correct and claimed the true root: it was
//! built for no void posting.
//!
//! Finding [2] (high; fixed: the driver runs its replacement pass again after posting ahead): a void posting ahead of an unposted predecessor
//! escapes the driver's at-once replacement for a whole window. Executor
//! X, assigned batch k+2, posts it (`sc_cr_on`) on a made-up root before
//! k+1 is posted: while k+1 has no posting, k+2 is not void
//! (`void_posting` decides only against a posted predecessor), so
//! `replace_void_postings` skips it; `post_ahead` then posts k+1, which
//! makes k+2 void, but skips it (it has TCRs) and nothing replaces it
//! until the next turn of the loop, after batch k's window has run. Its
//! replacement's window runs from then: k+2 and every batch after it
//! settle about two windows after the run starts instead of one. Free
//! (void posters are not punished), by one party, again on every run in
//! which it is assigned a batch ahead of an unposted one.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::primary::SubmitTcrsOn;
use gridledger_rollup::state::state_root;
use gridledger_rollup::types::{dispute_commitment, dispute_digest};

fn post(e: &mut Env, who: &gridledger_core::crypto::KeyPair, on: &SubmitTcrsOn, what: &str) {
    let r = e.d.primary_call(who, "sc_cr_on", args(on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{what}: {:?}", r.status);
}

/// Finding [1].
#[test]
fn a_frivolous_dispute_of_a_correct_posting_ahead_risks_its_bond_whatever_replaces_it_later() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 2);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "batch k is the next to settle");
    let x = executor_of(&e, k);
    let other = e.d.executors.iter().find(|(a, _)| a.address() != x.address()).unwrap().0.clone();
    let true_k = state_root(&e.d.state_before(k).unwrap());
    let true_k1 = state_root(&e.d.state_before(k + 1).unwrap());
    // k+1 posted ahead, correctly, on the true root (its first posting).
    let honest_k1 = posting_on(&mut e, k + 1, true_k1, None);
    let poster = executor_of(&e, k + 1);
    post(&mut e, &poster, &honest_k1, "k+1's honest posting ahead");
    // C commits to a frivolous dispute of the correct k+1.
    let c = trader(2);
    let a = whole(&e, k + 1, Vec::new());
    let cm = dispute_commitment(&dispute_digest("dispute", &a), &c.address());
    let r = e.d.primary_call(&c, "commit_dispute", args(&cm), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "commitment: {:?}", r.status);
    // X posts k void with a made-up post-state root, then replaces k+1's
    // (now void) correct posting on that root.
    let m1 = Hash32([0x71; 32]);
    let void_k = posting_on(&mut e, k, Hash32([0x70; 32]), Some(m1));
    post(&mut e, &x, &void_k, "k's void posting");
    let on_m1 = posting_on(&mut e, k + 1, m1, None);
    post(&mut e, &x, &on_m1, "k+1 replaced on the made-up root");
    // The honest executors replace both at once, correctly.
    let fix_k = posting_on(&mut e, k, true_k, None);
    post(&mut e, &other, &fix_k, "k replaced");
    let fix_k1 = posting_on(&mut e, k + 1, true_k1, None);
    post(&mut e, &other, &fix_k1, "k+1 replaced");
    let h = e.d.batch_header(k + 1).unwrap();
    assert_eq!(h.post_root, Some(honest_k1.tcrs.post_root), "k+1's standing posting is the correct one");
    let bond = e.d.cfg.challenge_bond;
    let (before, other_before) = (wealth(&e, &c), wealth(&e, &other));
    let s = e.d.primary_call(&c, "dispute", a, bond).unwrap().status;
    let (after, other_after) = (wealth(&e, &c), wealth(&e, &other));
    assert!(!e.d.batch_header(k + 1).unwrap().overturned, "a correct batch is never overturned");
    assert!(
        before.saturating_sub(after) >= bond.0,
        "C committed to its frivolous dispute of batch {} after its correct first posting; a replacement forced \
         for free by executor {} let the dispute ({s:?}) cost C only {} of the {bond} bond (the standing poster \
         got {}); X still active: {}",
        k + 1,
        x.address(),
        before.saturating_sub(after),
        other_after.saturating_sub(other_before),
        node_active(&e, &x.address()),
    );
}

/// Finding [2].
#[test]
fn a_void_posting_ahead_of_an_unposted_batch_is_replaced_at_once() {
    let mut e = or_funded();
    let n = 4;
    let k = record_batches(&mut e, n);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "the first batch is the next to settle");
    let b = k + 2;
    let x = executor_of(&e, b);
    assert!(e.d.batch_header(b - 1).unwrap().tcr_root.is_none(), "the predecessor is unposted");
    let void = posting_on(&mut e, b, Hash32([0x70; 32]), Some(Hash32([0x71; 32])));
    post(&mut e, &x, &void, "the void posting ahead");
    let start = e.d.now();
    let w = e.d.cfg.window_ms();
    let run = e.d.process(&mut rng(19)).unwrap();
    assert_eq!(run.iter().map(|s| s.batch).collect::<Vec<_>>(), (k..k + n).collect::<Vec<_>>());
    let at = |e: &Env, b: u64| match e.d.batch_header(b).unwrap().state {
        gridledger_rollup::primary::BatchState::Settled { at, .. } => at,
        gridledger_rollup::primary::BatchState::Open => panic!("batch {b} not settled"),
    };
    let last = (k..k + n).map(|b| at(&e, b)).max().unwrap();
    assert!(
        last < start + w + w / 2,
        "executor {}'s void posting of batch {b} ahead of the unposted batch {} held batches {b}..{} until {last}, {} ms \
         after the run started (window {w}; batch {k} settled at {}); the void poster is still active: {}",
        x.address(),
        b - 1,
        k + n - 1,
        last - start,
        at(&e, k),
        node_active(&e, &x.address()),
    );
}

/// The control of finding [2]: without the void posting, the same four
/// batches all settle about one window after the run starts.
#[test]
fn without_a_void_posting_the_batches_settle_within_about_a_window() {
    let mut e = or_funded();
    let n = 4;
    let k = record_batches(&mut e, n);
    let start = e.d.now();
    let w = e.d.cfg.window_ms();
    let run = e.d.process(&mut rng(19)).unwrap();
    assert_eq!(run.iter().map(|s| s.batch).collect::<Vec<_>>(), (k..k + n).collect::<Vec<_>>());
    for b in k..k + n {
        match e.d.batch_header(b).unwrap().state {
            gridledger_rollup::primary::BatchState::Settled { at, .. } => {
                assert!(at < start + w + w / 2, "batch {b} settled at {at}, {} ms after the start", at - start)
            }
            gridledger_rollup::primary::BatchState::Open => panic!("batch {b} not settled"),
        }
    }
}
