//! Attack round 15 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline's stated pre-roots (`sc_cr_on`,
//! `PrimaryConfig::pipelined`, [`Mode::ConventionalOr`]): a batch posted
//! ahead is judged against the root its executor states, from its own
//! posting, and `punish` counts the assigned validator late once the first
//! half of that window has passed.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::exec::PreState;
use gridledger_rollup::primary::{SubmitTcrs, SubmitTcrsOn};
use gridledger_rollup::roles::Target;
use gridledger_rollup::state::state_root;
use gridledger_rollup::types::{coins, dispute_commitment, dispute_digest, Participant};

/// Two batches of one AT each (k, k+1) recorded behind settled funding;
/// k posted by its honest executor. Returns the env and k.
fn k_posted() -> (Env, u64) {
    let mut e = or_funded();
    let k = record_batches(&mut e, 2);
    let (t, x) = honest_tcrs(&mut e, k);
    assert_eq!(record_tcrs(&mut e, &x, k, t).status, TxStatus::Success);
    (e, k)
}

/// The key of `batch`'s assigned validator.
fn validator_of(e: &Env, batch: u64) -> KeyPair {
    let a = e.d.batch_header(batch).unwrap().validator;
    e.d.validators.iter().find(|(k, _)| k.address() == a).unwrap().0.clone()
}

/// `who` commits to the dispute `a` (`method`) in one block and sends it
/// with the challenge bond in the next. Returns whether it succeeded.
fn committed_dispute(e: &mut Env, who: &KeyPair, method: &str, a: Vec<u8>) -> TxStatus {
    let c = dispute_commitment(&dispute_digest(method, &a), &who.address());
    let r = e.d.primary_call(who, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    e.d.primary_call(who, method, a, e.d.cfg.challenge_bond).unwrap().status
}

/// Finding 1 (high): the baseline's honest watcher is slashed for a forged
/// batch posted ahead, because `punish` now measures the validator's turn
/// from the batch's own posting while the watcher checks it at its turn to
/// settle.
///
/// Before e4ecc3f a batch posted ahead was disputable only once its
/// predecessor settled and `punish` measured the assigned validator's
/// half-window turn from then (`window_start`). Now its window runs from
/// its own posting and so does the turn (`h.complete_at + window / 2`),
/// but the driver's baseline watcher (`DualChain::process`) still
/// `watch`es a batch only when it is the next to settle: a batch posted
/// ahead a second after its predecessor is first looked at about a
/// second before its own window closes, always past the first half. So
/// any executor posting ahead can forge its batch (here: a post-state root
/// that mints its accomplice 10 coin, on the true claimed pre-root) and
/// have its accomplice disclose it after the half window and before the
/// watcher's turn: the honest watcher's 100-coin deposit is forfeited, and
/// with `bonus_permille` 500 the accomplice's reward (half of both
/// deposits) pays back the executor's forfeit: the honest watcher's
/// deposit is burned for the cost of fees. What should happen: a validator
/// that does what the honest baseline watcher does keeps its deposit
/// (measure its turn from when the batch becomes the next to settle, as
/// before, or have the watcher check batches as soon as they are posted).
#[test]
fn the_baseline_watcher_keeps_its_deposit_when_a_batch_posted_ahead_is_disclosed_before_its_turn() {
    let (mut e, k) = k_posted();
    let k1 = k + 1;
    let attacker = trader(3);
    let before = e.d.state_before(k1).unwrap();
    post_minting_root(&mut e, k1, attacker.address());
    let w = e.d.cfg.window_ms();
    let posted = e.d.batch_header(k1).unwrap().complete_at.unwrap();
    // The watcher's turn on k+1: when k settles (`process` watches only the
    // next batch to settle), a window after k's posting.
    let turn = e.d.batch_header(k).unwrap().complete_at.unwrap() + w;
    assert!(turn > posted + w / 2, "the watcher's turn {turn} is past the first half of k+1's window");
    let validator = validator_of(&e, k1);
    assert!(node_active(&e, &validator.address()));

    // The accomplice discloses k+1 between the half window and the turn.
    e.d.set_time(posted + w / 2 + HOUR);
    let a = state_dispute_on(&e, k1, &before);
    let s = committed_dispute(&mut e, &attacker, "dispute_state", a);
    assert!(e.d.now() < turn);
    assert_eq!(s, TxStatus::Success, "{s:?}");
    assert!(e.d.batch_header(k1).unwrap().overturned);
    assert!(
        node_active(&e, &validator.address()),
        "batch {k1}'s honest watcher {} was slashed: it would have checked the batch at its turn {turn}, but its \
         forger's accomplice disclosed it at {} (posted {posted}, half window {})",
        validator.address(),
        e.d.now(),
        w / 2
    );
}

/// Finding 2 (high): an executor posting ahead states a pre-root nobody
/// else holds the state of; only its accomplice can dispute the batch,
/// and doing so after the half window slashes the honest validator, who
/// could not have disputed it at any time.
///
/// Batch k+1's executor posts the honest leaves (they follow from the
/// state k really leaves) with `sc_cr_on`, stating as pre-root the root of
/// a fabricated state (the true one plus a 1-coin record for its
/// accomplice). The honest validator, checking the batch at once, finds
/// nothing wrong with the leaves and cannot open any record against the
/// stated root (it does not know its state); the batch would be void
/// anyway. After half the window the accomplice opens entry 0's records
/// against the fabricated state (`dispute_state`): the honest post-state
/// root "does not follow" from the stated root, the batch is overturned,
/// the executor's and the honest validator's deposits are forfeited and
/// the accomplice is paid half of both (its bond back): the executor's
/// loss is repaid, the honest validator's 100 coin are burned. What should
/// happen: the validator is not punished for a batch whose stated pre-root
/// is not the state its predecessor leaves (e.g. forfeit only the poster,
/// or treat such a batch as void without judging it, or judge it only
/// once the stated root has settled).
#[test]
fn a_fabricated_stated_pre_root_does_not_slash_the_honest_validator() {
    let (mut e, k) = k_posted();
    let k1 = k + 1;
    let accomplice = trader(3);
    let p = e.d.cfg.params.clone();
    // The fabricated state the executor states it builds on.
    let mut fake: PreState = e.d.state_before(k1).unwrap();
    fake.participants.insert(accomplice.address(), Participant { balance: coins(1), reputation: p.rs });
    let stated = state_root(&fake);
    assert_ne!(stated, state_root(&e.d.state_before(k1).unwrap()));
    let (t, exec) = honest_tcrs(&mut e, k1);
    let entries = e.d.entries(k1).unwrap();
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(&e, k1, t, entries)).unwrap();
    let on = SubmitTcrsOn { pre_root: stated, tcrs };
    let r = e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);

    // The honest validator checks at once: nothing to dispute.
    let input = e.d.batch_input(k1).unwrap();
    let i = e.d.validators.iter().position(|(k, _)| k.address() == input.header.validator).unwrap();
    let step = e.d.validators[i].1.on_tcrs_recorded(&input);
    let calls: Vec<&str> = step.calls.iter().filter(|c| c.target == Target::Primary).map(|c| c.method).collect();
    assert!(calls.is_empty(), "the honest validator found something to dispute: {calls:?}");
    let validator: Address = input.header.validator;
    assert!(node_active(&e, &validator));

    // After the validator's half window, the accomplice.
    let w = e.d.cfg.window_ms();
    let posted = e.d.batch_header(k1).unwrap().complete_at.unwrap();
    e.d.set_time(posted + w / 2 + HOUR);
    let gain_before = wealth(&e, &accomplice);
    let a = state_dispute_on(&e, k1, &fake);
    let s = committed_dispute(&mut e, &accomplice, "dispute_state", a);
    let gain = wealth(&e, &accomplice) as i128 - gain_before as i128;
    assert!(
        node_active(&e, &validator),
        "batch {k1}'s honest validator {validator} was slashed by a dispute against the pre-root {stated} its \
         executor stated and only its accomplice holds (dispute {s:?}; the accomplice gained {gain}, fees included; \
         executor {} active: {})",
        exec.address(),
        node_active(&e, &exec.address()),
    );
}

/// `batch`'s honest leaves sent by `key` with `sc_cr_on` stating `stated`
/// as the pre-root.
fn post_stating(e: &mut Env, key: &KeyPair, batch: u64, stated: gridledger_core::Hash32) -> TxStatus {
    let (t, _) = honest_tcrs(e, batch);
    let entries = e.d.entries(batch).unwrap();
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(e, batch, t, entries)).unwrap();
    let on = SubmitTcrsOn { pre_root: stated, tcrs };
    e.d.primary_call(key, "sc_cr_on", args(&on), Amount::ZERO).unwrap().status
}

/// Finding 3 (high): void postings serialise the baseline's windows; one
/// executor halts settlement to a window per batch it is assigned, unpunished.
///
/// The assigned executor of several batches recorded behind an honest one
/// posts each of them ahead, at once, with a pre-root no one else holds
/// the state of (the honest leaves, a made-up root). Nobody can dispute
/// such a batch (no record opens against that root), no stand-in may post
/// it again (its TCRs are recorded), and it is taken back only at its own
/// `finalize`, when it is the next to settle: only then does an honest
/// stand-in post it, and it settles a whole window later. So each void
/// batch adds a window of its own, one after the other, while the honest
/// batches between them wait (they are final at once afterwards). A
/// silent executor costs less: the stand-ins of every batch it withholds
/// post them a window after they closed, all windows overlapping, and the
/// chain executes any batch two windows after it closed. Here the honest
/// baseline settles all six batches about two windows after they closed
/// at the latest; with the void postings the last settles a window later
/// for each void batch after the first (a week each in the baseline), and
/// the void poster keeps its deposit. What should happen: a void posting
/// costs no more than silence (e.g. a stand-in may replace a posting ahead
/// whose stated root is not the root its predecessor posted or settled,
/// or the void poster forfeits), so settlement of n batches does not take
/// n windows.
#[test]
fn void_postings_ahead_do_not_serialise_the_windows() {
    let (voids, kept, last, closed_last, bound, settled_at) = attacker_batches(true);
    assert!(
        last <= bound,
        "the attacker's void postings of batches {voids:?} (its deposit kept: {kept}) held the last batch until \
         {last}, {} hours after the batches closed (bound {bound}: two windows and a half); settled: {settled_at:?}",
        (last - closed_last) / HOUR,
    );
}

/// The comparison of finding 3: the same executor merely silent on the
/// same batches; the stand-in posts them all ahead a window after they
/// closed, and the last settles within two windows and a half.
#[test]
fn silent_executor_costs_two_windows_at_most() {
    let (silent, _, last, _, bound, settled_at) = attacker_batches(false);
    assert!(last <= bound, "silent on {silent:?}: last settled at {last} > {bound}; {settled_at:?}");
}

/// Six batches of one AT; the executor assigned most of batches 2–6 posts
/// each of them with a made-up stated root (`void`) or not at all; the
/// honest executor posts the others at once and stands in (a window after
/// the batches closed) where the contract lets it, and the honest parties
/// finalize each batch when due and post again what is taken back.
/// Returns the attacker's batches, whether it is still active, when the
/// last batch settled, when the last batch closed, the bound (two windows
/// and a half after that) and each batch's settlement time.
#[allow(clippy::type_complexity)]
fn attacker_batches(void: bool) -> (Vec<u64>, bool, u64, u64, u64, Vec<(u64, u64)>) {
    let mut e = or_funded();
    let first = record_batches(&mut e, 6);
    let next = first + 6;
    let count = |e: &Env, a: Address| (first + 1..next).filter(|b| executor_of(e, *b).address() == a).count();
    let keys: Vec<KeyPair> = e.d.executors.iter().map(|(k, _)| k.clone()).collect();
    let attacker = keys.iter().max_by_key(|k| count(&e, k.address())).unwrap().clone();
    let honest = keys.iter().find(|k| k.address() != attacker.address()).unwrap().clone();
    let mine: Vec<u64> = (first + 1..next).filter(|b| executor_of(&e, *b).address() == attacker.address()).collect();
    assert!(mine.len() >= 2, "the attacker is assigned {mine:?}");
    let closed_last = e.d.batch_header(next - 1).unwrap().closed_at.unwrap_or(e.d.now());
    let w = e.d.cfg.window_ms();
    for b in first..next {
        let exec = executor_of(&e, b);
        if mine.contains(&b) {
            if void {
                let s = post_stating(&mut e, &exec, b, gridledger_core::Hash32([7; 32]));
                assert_eq!(s, TxStatus::Success, "batch {b}: {s:?}");
            }
            continue;
        }
        let (t, x) = honest_tcrs(&mut e, b);
        assert_eq!(record_tcrs(&mut e, &x, b, t).status, TxStatus::Success, "batch {b}");
    }
    // A window after the batches closed the honest executor stands in for
    // every batch of the attacker's: a withheld one (silent), or a void
    // posting, which any active executor may replace (since the fix of
    // this round; before it the replacement was refused).
    e.d.set_time(closed_last + w + HOUR);
    for b in &mine {
        let (t, _) = honest_tcrs(&mut e, *b);
        let r = record_tcrs(&mut e, &honest, *b, t);
        assert_eq!(r.status, TxStatus::Success, "batch {b} (void postings: {void})");
    }
    let mut settled_at = Vec::new();
    for _ in 0..100 {
        let (n, fin) = e.d.reader().progress().unwrap();
        if fin >= n {
            break;
        }
        let h = e.d.batch_header(fin).unwrap();
        if h.tcr_root.is_none() {
            let (t, _) = honest_tcrs(&mut e, fin);
            let r = record_tcrs(&mut e, &honest, fin, t);
            assert_eq!(r.status, TxStatus::Success, "batch {fin} posted again: {:?}", r.status);
            continue;
        }
        let due = h.complete_at.unwrap() + w;
        if e.d.now() < due {
            e.d.set_time(due);
        }
        let r = e.d.primary_call(&honest, "finalize", e.d.finalize_args(fin).unwrap(), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "finalize {fin}: {:?}", r.status);
        if let gridledger_rollup::primary::BatchState::Settled { at, .. } = e.d.batch_header(fin).unwrap().state {
            settled_at.push((fin, at));
        }
    }
    let (n, fin) = e.d.reader().progress().unwrap();
    assert!(fin >= n, "not all settled");
    let last = settled_at.last().unwrap().1;
    let kept = node_active(&e, &attacker.address());
    (mine, kept, last, closed_last, closed_last + 2 * w + w / 2, settled_at)
}

/// Finding 4 (critical): the baseline driver's own watcher misses a
/// forged batch posted ahead; its root settles and the thief keeps the
/// seller's payout.
///
/// `DualChain::process` in [`Mode::ConventionalOr`] posts the batches
/// recorded behind the next to settle at once, one block (a second)
/// apart (`post_ahead`), but its watcher `watch`es a batch only when it
/// is the next to settle: after the batch before it was finalized, a
/// window after that batch's posting. That is the very block in which the
/// batch posted a second later sees its own window close
/// (`window_open`: `now >= posting + window`), so the watcher's
/// `commit_dispute` and `dispute` (and the involved meters' delegates and
/// bonded challenge after them) are all refused, and `finalize` settles
/// the forged root. Here both executors steal payouts (the driver's
/// `ExecutorBehaviour::StealPayouts`), every validator is honest: batch k
/// holds an AT (nothing to steal), batch k+1 the seller's agreed ST of that
/// agreement after its delivery; the driver posts k+1 ahead and settles it with the
/// seller's payout paid to the thief. What should happen: the honest
/// watcher checks a batch posted ahead inside its window (when it is
/// posted, or at least within the first half of its window), and the
/// forged batch is overturned (as `security.rs` shows for IOR).
#[test]
fn the_baseline_driver_overturns_a_thieving_batch_posted_ahead() {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let mut e = or_funded();
    let (b, s) = (trader(0), trader(1));
    let start = (e.d.now() / HOUR + 2) * HOUR;
    let t = terms(&b, &s, Amount(200_000), 500, start);
    let seller_before = e.d.participant(&s.address()).unwrap().balance;
    // Batch k: the AT; batch k+1, after the delivery: the seller's agreed ST.
    let (k, _) = e.d.reader().progress().unwrap();
    e.d.submit_block(&[(b.clone(), at(&t, &s))]).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit_block(&[(s.clone(), agreed_st(&t, 1000, &b))]).unwrap();
    e.d.primary.seal();
    assert_eq!(e.d.batch_header(k + 1).unwrap().len(), 1, "the ST is batch k+1");
    e.d.set_executor(0, ExecutorBehaviour::StealPayouts);
    e.d.set_executor(1, ExecutorBehaviour::StealPayouts);
    let settled = e.d.process(&mut rng(7)).map(|v| v.iter().map(|s| (s.batch, s.outcomes.clone())).collect::<Vec<_>>());
    let h = e.d.batch_header(k + 1).unwrap();
    let thief = h.posted_by;
    let stolen: Vec<(Address, Amount)> =
        e.d.executors
            .iter()
            .map(|(k, _)| (k.address(), e.d.participant(&k.address()).unwrap().balance))
            .filter(|(_, a)| !a.is_zero())
            .collect();
    let seller_after = e.d.participant(&s.address()).unwrap().balance;
    assert!(
        h.overturned || matches!(h.state, gridledger_rollup::primary::BatchState::Settled { disputed: true, .. }),
        "batch {}'s stolen payouts settled through the driver's own run ({settled:?}, {:?}): posted by {thief:?}; \
         executors' IOR balances {stolen:?}; the seller's {seller_before} -> {seller_after}",
        k + 1,
        h.state,
    );
}
