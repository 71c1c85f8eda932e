//! Attack round 16 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline's replacement of void postings ahead
//! (`PrimaryConfig::pipelined`, [`Mode::ConventionalOr`]), the assigned
//! validator's turn measured from its predecessor's settlement
//! (`validator_turn_start`), and the driver's watcher checking each batch
//! when it is posted ahead (`DualChain::post_ahead`).
//!
//! Findings (all fixed: the watcher checks every posting ahead once,
//! voidness after an overturn waits for the root the overturned batch
//! settles with, a forfeited poster's postings are taken over, a dispute
//! committed before a replacement is refused, and readers take the
//! posting whose leaves hash to the standing root): [1] a forged batch posted
//! ahead by its executor before the driver runs is never watched inside
//! its window and its root settles (theft); [2] a batch overturned with
//! the true post-state root makes its honest successor void, so any
//! executor replaces it on a made-up root and its window restarts once
//! the overturned batch settles; [3] with [2] and `forfeit` taking nothing
//! from a node already forfeited, one deposit buys a window of delay per
//! batch the forger was assigned; [4] an honest validator's whole-batch
//! dispute of a void posting, front-run by the posting's correct
//! replacement, burns the validator's deposit; [5] a void posting and its
//! replacement in one block make `batch_leaves` read the replaced leaves,
//! so the driver and every settled-state reader fail for good.
//!
//! Held up: a posting on the root its predecessor states is not replaced
//! after the predecessor is overturned with a forged root; IOR never
//! replaces a posting; the void-posting and turn-start checks read one
//! header each (O(1)).

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::driver::Mode;
use gridledger_rollup::primary::{BatchState, SubmitTcrs, SubmitTcrsOn};
use gridledger_rollup::state::state_root;
use gridledger_rollup::types::{coins, dispute_commitment, dispute_digest};

/// `who` commits to the dispute `a` (`method`) in one block and sends it
/// with the challenge bond in the next.
fn committed_dispute(e: &mut Env, who: &KeyPair, method: &str, a: Vec<u8>) -> TxStatus {
    let c = dispute_commitment(&dispute_digest(method, &a), &who.address());
    let r = e.d.primary_call(who, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    e.d.primary_call(who, method, a, e.d.cfg.challenge_bond).unwrap().status
}

/// `batch`'s honest leaves sent by `key` with `sc_cr_on` stating `stated`
/// as the pre-root.
fn post_stating(e: &mut Env, key: &KeyPair, batch: u64, stated: Hash32) -> TxStatus {
    let (t, _) = honest_tcrs(e, batch);
    let entries = e.d.entries(batch).unwrap();
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(e, batch, t, entries)).unwrap();
    let on = SubmitTcrsOn { pre_root: stated, tcrs };
    e.d.primary_call(key, "sc_cr_on", args(&on), Amount::ZERO).unwrap().status
}

/// The baseline with three executors (four traders, 0–2 funded, funding
/// settled; three validators; a week's window).
fn or3_funded() -> Env {
    let mut e = open(config(Mode::ConventionalOr, 4, 3, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    e
}

/// Whether `s` is a revert whose reason contains `why`.
fn reverted_with(s: &TxStatus, why: &str) -> bool {
    matches!(s, TxStatus::Reverted(w) if w.contains(why))
}

/// When `batch` settled, if it did.
fn settled_at(e: &Env, batch: u64) -> Option<u64> {
    match e.d.batch_header(batch).unwrap().state {
        BatchState::Settled { at, .. } => Some(at),
        BatchState::Open => None,
    }
}

/// Settles every recorded batch as honest parties do (`honest` posts again
/// what is taken back, anyone finalizes each batch when due). Returns each
/// batch's settlement time.
fn settle_all(e: &mut Env, honest: &KeyPair) -> Vec<(u64, u64)> {
    let w = e.d.cfg.window_ms();
    let mut out = Vec::new();
    for _ in 0..200 {
        let (n, fin) = e.d.reader().progress().unwrap();
        if fin >= n {
            break;
        }
        let h = e.d.batch_header(fin).unwrap();
        if h.tcr_root.is_none() && !h.overturned {
            let (t, _) = honest_tcrs(e, fin);
            let r = record_tcrs(e, honest, fin, t);
            assert_eq!(r.status, TxStatus::Success, "batch {fin} posted again: {:?}", r.status);
            continue;
        }
        if !h.overturned {
            let due = h.complete_at.unwrap() + w;
            if e.d.now() < due {
                e.d.set_time(due);
            }
        }
        let r = e.d.primary_call(honest, "finalize", e.d.finalize_args(fin).unwrap(), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "finalize {fin}: {:?}", r.status);
        if let Some(at) = settled_at(e, fin) {
            out.push((fin, at));
        }
    }
    let (n, fin) = e.d.reader().progress().unwrap();
    assert!(fin >= n, "not all settled");
    out
}

/// Finding 1 (critical): a forged batch its executor posts ahead before
/// the driver runs is never watched inside its window; `process` settles
/// the forged root and the thief's accomplice is paid 10 coin that nobody
/// paid in.
///
/// `post_ahead` has the watcher check only the batches the driver itself
/// posts ahead (`watch_posted`); a batch that already has TCRs is skipped
/// (`continue`) and is first looked at when it is the next to settle. The
/// executor of batch k+1 posts its TCRs (`sc_cr_on`, stating the true
/// root k leaves, which anyone computes from k's entries) before k's
/// executor has posted k: k+1's window starts then. `process` posts k,
/// lets k's window run and settles k a window after *its* posting; by
/// then k+1's window (a week in the baseline) has closed, so the watcher's
/// dispute, the involved meters' delegates and the bonded challenge are
/// all refused (`window_open`), and `finalize` settles k+1's post-state
/// root, which mints the accomplice 10 coin. What should happen: the
/// honest watcher checks every batch posted ahead inside its window,
/// whoever posted it and whenever (e.g. `post_ahead` watches batches that
/// already have TCRs too, and `process` checks the posted batches after
/// `fin` before moving the clock), and the forged batch is overturned.
#[test]
fn a_batch_its_executor_posts_ahead_before_the_driver_runs_is_watched_in_its_window() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 2);
    let k1 = k + 1;
    let accomplice = trader(3);
    // k+1's executor posts a root minting its accomplice 10 coin, on the
    // true pre-root, before k is posted.
    assert!(e.d.batch_header(k).unwrap().tcr_root.is_none());
    let minted = post_minting_root(&mut e, k1, accomplice.address());
    let run = e.d.process(&mut rng(16)).map(|v| v.iter().map(|s| (s.batch, s.disputed)).collect::<Vec<_>>());
    let h = e.d.batch_header(k1).unwrap();
    let forged_settled = matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(state_root(&minted));
    let mut stolen = Amount::ZERO;
    if forged_settled {
        // The accomplice (never funded) withdraws the minted coin.
        stolen = withdraw_minted(&mut e, &minted, &accomplice);
    }
    assert!(
        !forged_settled,
        "batch {k1}'s minting root settled ({:?}) through the driver's own run (process: {run:?}), and the \
         never-funded accomplice withdrew {stolen}",
        h.state
    );
}

/// Batches `first..first + n` of one AT each, behind settled funding, in
/// the three-executor baseline.
fn three_executor_batches(n: u64) -> (Env, u64) {
    let mut e = or3_funded();
    let first = record_batches(&mut e, n);
    (e, first)
}

/// Finding 2 (high): when a batch posted ahead is overturned though its
/// posted post-state root is the true one, its honest successor (claiming
/// exactly that root) counts as void: any active executor replaces it with
/// a posting on a made-up root, which no one can replace or dispute until
/// the overturned batch settles; the successor's window restarts a window
/// later.
///
/// Batch k (its predecessor k−1 still open) is posted by its executor with
/// the honest verdicts, effects and post-state roots but a wrong input
/// slice in leaf 0; the honest watcher overturns it at once
/// (`dispute_entry`). `void_posting` now treats every posting of k+1 that
/// claims k's posted post-state root as void, also the honest one, which
/// claims the true state. A second executor of the attacker replaces it
/// (`sc_cr_on` on a made-up root, allowed since it differs from the
/// overturned one); an honest executor cannot put the honest posting back
/// (the replacement stands: its claim is not k's root; and claiming k's
/// root is refused). So k+1 waits until k settles, is then void
/// (`finalize` takes it back) and is posted again: it settles a window
/// after k−1, not a window after its honest posting. Without the
/// replacement it settles a window after its honest posting. What should
/// happen: a posting that claims the true state (the root the chain will
/// settle the overturned batch with) is not void; e.g. compare against
/// the chain's own execution of the overturned batch, or keep the
/// successor until the overturned batch settles and decide voidness then.
#[test]
fn an_honest_successor_of_a_batch_overturned_with_the_true_root_keeps_its_window() {
    let (mut e, first) = three_executor_batches(3);
    let (k0, k, k1) = (first, first + 1, first + 2);
    let forger = executor_of(&e, k);
    let keys: Vec<KeyPair> = e.d.executors.iter().map(|(k, _)| k.clone()).collect();
    let replacer = keys.iter().find(|x| x.address() != forger.address()).unwrap().clone();
    let honest = keys.iter().find(|x| x.address() != forger.address() && x.address() != replacer.address()).unwrap();
    let honest = honest.clone();
    let w = e.d.cfg.window_ms();

    let (t, x) = honest_tcrs(&mut e, k0);
    assert_eq!(record_tcrs(&mut e, &x, k0, t).status, TxStatus::Success);
    let dispute = post_right_roots_wrong_inputs(&mut e, k);
    let (t, x) = honest_tcrs(&mut e, k1);
    assert_eq!(record_tcrs(&mut e, &x, k1, t).status, TxStatus::Success);
    let honest_posting = e.d.batch_header(k1).unwrap().complete_at.unwrap();
    // The honest watcher (any bonded challenger) overturns k at once.
    assert_eq!(committed_dispute(&mut e, &trader(2), "dispute_entry", dispute), TxStatus::Success);
    assert!(e.d.batch_header(k).unwrap().overturned);
    assert_eq!(
        e.d.batch_header(k).unwrap().post_root,
        Some(state_root(&e.d.state_before(k1).unwrap())),
        "k's posted post-state root is the true one"
    );

    // The attacker's second executor replaces the honest k+1 on a made-up root.
    let s = post_stating(&mut e, &replacer, k1, Hash32([9; 32]));
    let h = e.d.batch_header(k1).unwrap();
    let replaced = h.posted_by == Some(replacer.address());
    // The honest executor tries to put the honest posting back.
    let (t, _) = honest_tcrs(&mut e, k1);
    let back = record_tcrs(&mut e, &honest, k1, t).status;

    let settled = settle_all(&mut e, &honest);
    let at = settled_at(&e, k1).unwrap();
    assert!(
        at <= honest_posting + w,
        "batch {k1}, honestly posted at {honest_posting} on the true root, settled at {at} ({} windows later): \
         replaced by {} ({s:?}, replaced: {replaced}) after {k} was overturned with the true post-state root; the \
         honest executor's attempt to put it back: {back:?}; settled {settled:?}",
        (at - honest_posting) as f64 / w as f64,
        replacer.address(),
    );
}

/// Finding 3 (high): one forfeited deposit serialises the baseline's
/// windows: settlement of n batches takes about a window per batch the
/// attacker's executor was assigned.
///
/// The attacker's first executor posts every batch it is assigned (but
/// the first) ahead with the true roots and a wrong leaf input, all before
/// any is disputed; the honest watcher overturns them at once. Only the
/// first overturn costs a deposit: `forfeit` takes nothing from a node
/// already forfeited. After each overturn the attacker's second executor
/// (never punished: its postings are only ever void) replaces the
/// overturned batch's honest successor on a made-up root (finding 2).
/// Each such successor waits until the overturned batch before it settles
/// and then runs a whole window of its own, one after the other. The
/// honest parties post everything else at once and repost what is taken
/// back at once. Bound: two windows and a half after the last batch
/// closed, as attack r15 [3] (a silent executor costs two windows at
/// most). What should happen: an overturn with the true root restarts no
/// honest window (finding 2), and a node already forfeited cannot keep
/// overturn-able postings standing for free (e.g. forfeiting takes its
/// postings back too).
#[test]
fn one_forfeited_deposit_does_not_serialise_the_windows() {
    let (mut e, first) = three_executor_batches(10);
    let next = first + 10;
    let w = e.d.cfg.window_ms();
    let keys: Vec<KeyPair> = e.d.executors.iter().map(|(k, _)| k.clone()).collect();
    // The forger: the executor assigned most batches whose successor is another's.
    let forgeable = |e: &Env, a: Address| -> Vec<u64> {
        (first + 1..next - 1)
            .filter(|b| executor_of(e, *b).address() == a && executor_of(e, b + 1).address() != a)
            .collect()
    };
    let forger = keys.iter().max_by_key(|k| forgeable(&e, k.address()).len()).unwrap().clone();
    let forged = forgeable(&e, forger.address());
    assert!(forged.len() >= 2, "the forger is assigned {forged:?}");
    let replacer = keys.iter().find(|x| x.address() != forger.address()).unwrap().clone();
    let honest = keys.iter().find(|x| x.address() != forger.address() && x.address() != replacer.address()).unwrap();
    let honest = honest.clone();
    let closed_last = e.d.batch_header(next - 1).unwrap().closed_at.unwrap_or(e.d.now());

    // Every batch posted ahead at once: the forger's with wrong inputs.
    let mut disputes = Vec::new();
    for b in first..next {
        if forged.contains(&b) {
            disputes.push(post_right_roots_wrong_inputs(&mut e, b));
            continue;
        }
        let (t, x) = honest_tcrs(&mut e, b);
        assert_eq!(record_tcrs(&mut e, &x, b, t).status, TxStatus::Success, "batch {b}");
    }
    // The honest watcher overturns each forged batch at once.
    let forfeits_before = black_hole(&e.d).0;
    for (b, d) in forged.iter().zip(disputes) {
        assert_eq!(committed_dispute(&mut e, &trader(2), "dispute_entry", d), TxStatus::Success, "batch {b}");
        assert!(e.d.batch_header(*b).unwrap().overturned);
    }
    let burned = black_hole(&e.d).0 - forfeits_before;
    // The replacer tries to replace each overturned batch's honest
    // successor (refused since the fix: a successor is judged against the
    // root its overturned predecessor settles with, not replaced at once).
    for b in &forged {
        let s = post_stating(&mut e, &replacer, b + 1, Hash32([9; 32]));
        assert!(s == TxStatus::Success || reverted_with(&s, "already recorded"), "replacing batch {}: {s:?}", b + 1);
    }
    let settled = settle_all(&mut e, &honest);
    let last = settled.last().unwrap().1;
    let bound = closed_last + 2 * w + w / 2;
    assert!(
        last <= bound,
        "one forfeited deposit ({} coin burned in all; the replacer {} active: {}) held the last batch until {last}, \
         {:.1} windows after the batches closed (bound: 2.5); overturned {forged:?}, settled {settled:?}",
        burned as f64 / coins(1).0 as f64,
        replacer.address(),
        node_active(&e, &replacer.address()),
        (last - closed_last) as f64 / w as f64,
    );
}

/// Held up: a posting on the root its predecessor states is not replaced,
/// also after its predecessor was overturned with a forged post-state root
/// (the honest successor claims the true root, not the forged one).
#[test]
fn the_honest_successor_of_a_forged_root_stands_after_the_overturn() {
    let (mut e, first) = three_executor_batches(3);
    let (k0, k, k1) = (first, first + 1, first + 2);
    let (t, x) = honest_tcrs(&mut e, k0);
    assert_eq!(record_tcrs(&mut e, &x, k0, t).status, TxStatus::Success);
    let forger = executor_of(&e, k);
    forge_last_root(&mut e, k);
    let (t, x) = honest_tcrs(&mut e, k1);
    assert_eq!(record_tcrs(&mut e, &x, k1, t).status, TxStatus::Success);
    let (validator, calls) = validator_step(&mut e, k);
    for c in calls {
        let r = e.d.primary_call(&validator, c.method, c.args, Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{}: {:?}", c.method, r.status);
    }
    assert!(e.d.batch_header(k).unwrap().overturned);
    for key in e.d.executors.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>() {
        if key.address() == forger.address() {
            continue;
        }
        let s = post_stating(&mut e, &key, k1, Hash32([9; 32]));
        assert!(matches!(&s, TxStatus::Reverted(w) if w.contains("already recorded")), "{s:?}");
    }
}

/// A void posting of `batch` by `key` (claiming the made-up root `[7; 32]`)
/// whose leaf 0 commits to wrong inputs (the buyer without coin) and a
/// wrong TCR (an extra 1-unit burn): an honest checker's first differing
/// leaf has other inputs than its own, so it disputes the whole batch
/// (`roles::dispute_call`).
fn post_void_wrong_inputs(e: &mut Env, key: &KeyPair, batch: u64) -> TxStatus {
    let on = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: wrong_inputs_tcrs(e, batch) };
    e.d.primary_call(key, "sc_cr_on", args(&on), Amount::ZERO).unwrap().status
}

/// `batch`'s honest leaves but leaf 0's: wrong inputs (the buyer without
/// coin) and an extra 1-unit burn.
fn wrong_inputs_tcrs(e: &mut Env, batch: u64) -> SubmitTcrs {
    use gridledger_rollup::exec::{execute_leaves, OffChain};
    use gridledger_rollup::state::fill_post_roots;
    use gridledger_rollup::types::{entry_hash, Effect};
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let buyer = input.entries[0].tx.terms().buyer;
    leaves[0].pre.participants.get_mut(&buyer).expect("the buyer's record").balance = Amount::ZERO;
    leaves[0].tcr.effects.push(Effect::Burn(Amount(1)));
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let burned = gridledger_rollup::primary::posted_burn(&posted).unwrap();
    SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted.last().unwrap().post_root,
        leaves: posted,
        burned,
    }
}

/// Finding 4 (high): an honest validator's whole-batch dispute of a void
/// posting is front-run by the posting's replacement with the correct
/// TCRs, and the validator's deposit is burned; the attacker pays nothing.
///
/// The executor of the next batch to settle posts it void (a made-up
/// claimed pre-root) with wrong inputs and a wrong TCR in leaf 0. The
/// assigned validator re-executes it, finds leaf 0 wrong with other inputs
/// than its own, and sends `commit_dispute`, then the whole-batch
/// `dispute` with its own (correct) TCRs and no bond (it stakes its node
/// deposit). Seeing the commitment (or the dispute in the mempool), the
/// executor replaces its own void posting at once (any active executor
/// may, the replacement claiming the settled root) with the correct
/// TCRs. The validator's dispute now runs against the replacement: the
/// chain's root equals the posted one, the dispute is "rejected" and the
/// staked validator's 100-coin deposit is forfeited and burned. The void
/// poster is not punished; its replacement is correct and settles. (A
/// bonded challenger, e.g. an alarmed meter owner, loses its bond to the
/// replacer the same way.) What should happen: a dispute is judged against
/// the posting it was built for, not a replacement sent after it (e.g. the
/// dispute names the posted TCR root it disputes and is refused, not
/// rejected, when the batch's standing root is another), or a void
/// posting's replacement does not turn a pending dispute into a loss.
#[test]
fn a_validators_dispute_of_a_void_posting_is_not_turned_into_a_loss_by_its_replacement() {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let (_, fin) = e.d.reader().progress().unwrap();
    assert_eq!(fin, k, "the batch is the next to settle");
    let exec = executor_of(&e, k);
    assert_eq!(post_void_wrong_inputs(&mut e, &exec, k), TxStatus::Success);
    // The honest assigned validator checks it: commit, then a whole-batch dispute.
    let input = e.d.batch_input(k).unwrap();
    let i = e.d.validators.iter().position(|(v, _)| v.address() == input.header.validator).unwrap();
    let step = e.d.validators[i].1.watch(&input);
    let validator = e.d.validators[i].0.clone();
    let calls: Vec<_> =
        step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary).collect();
    assert_eq!(calls.iter().map(|c| c.method).collect::<Vec<_>>(), ["commit_dispute", "dispute"]);
    let r = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    // The executor front-runs the dispute: it replaces its void posting
    // with the correct TCRs on the settled root.
    let (t, _) = honest_tcrs(&mut e, k);
    let rep = record_tcrs(&mut e, &exec, k, t).status;
    assert_eq!(rep, TxStatus::Success, "replacement: {rep:?}");
    let d = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap().status;
    assert!(
        node_active(&e, &validator.address()),
        "batch {k}'s honest validator {} lost its deposit: its dispute of the void posting ({d:?}) ran against the \
         correct replacement its executor {} sent in between; executor still active: {}",
        validator.address(),
        exec.address(),
        node_active(&e, &exec.address()),
    );
}

/// Finding 5 (high): a void posting and its replacement in one block
/// freeze every reader of the chain for good; the poster pays two fees.
///
/// `driver::batch_leaves` reads a batch's posted leaves from the block at
/// its `tcr_height` and takes the *first* successful `sc_cr`/`sc_cr_on`
/// of the batch in that block; if those leaves do not hash to the
/// standing TCR root it fails ("posted leaves do not hash to the TCR
/// root"). Since this round a void posting may be replaced at once, so
/// the executor of the next batch to settle sends, in one block, a void
/// posting (a made-up claimed pre-root, other leaves) and right after it the correct
/// posting on the settled root (any active executor may replace a void
/// posting, itself included). Both succeed; the standing root is the
/// second's, the reader finds the first. The correct batch settles, but
/// `batch_input`, `process`, and `settled_state` (which replays every
/// settled batch from its posted leaves, so `participant`, withdrawal
/// proofs and every later batch's pre-state) fail from then on. What
/// should happen: a reader takes the posting that set the standing root
/// (e.g. the last successful posting of the batch in the block, or the
/// one whose leaves hash to the root), and the run settles the batch.
#[test]
fn a_void_posting_replaced_in_the_same_block_does_not_freeze_the_reader() {
    use gridledger_ledger::ChainClient;
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let (t, _) = honest_tcrs(&mut e, k);
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(&e, k, t, e.d.entries(k).unwrap())).unwrap();
    let true_root = state_root(&e.d.state_before(k).unwrap());
    let true_post = state_root(&e.d.state_before(k + 1).unwrap());
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: wrong_inputs_tcrs(&mut e, k) };
    let right = SubmitTcrsOn { pre_root: true_root, tcrs };
    let n = e.d.primary.next_nonce(&exec.address());
    let chain_id = e.d.primary.chain_id();
    let gas = gridledger_rollup::driver::DRIVER_GAS_LIMIT;
    let id = gridledger_rollup::IOR_PRIMARY_ID;
    let one = gridledger_ledger::devnet::call(&exec, chain_id, n, id, "sc_cr_on", args(&void), Amount::ZERO, gas);
    let two = gridledger_ledger::devnet::call(&exec, chain_id, n + 1, id, "sc_cr_on", args(&right), Amount::ZERO, gas);
    let h1 = e.d.primary.submit(&one).unwrap();
    let h2 = e.d.primary.submit(&two).unwrap();
    ChainClient::seal(&mut e.d.primary).unwrap();
    let r1 = e.d.primary.receipt(&h1).unwrap().unwrap();
    let r2 = e.d.primary.receipt(&h2).unwrap().unwrap();
    assert_eq!((r1.status, r2.status), (TxStatus::Success, TxStatus::Success));
    assert_eq!(r1.height, r2.height, "one block");
    let run = e.d.process(&mut rng(5)).map(|v| v.iter().map(|s| s.batch).collect::<Vec<_>>());
    if run.is_err() {
        // The correct posting stands; anyone finalizes it after its window.
        let due = e.d.batch_header(k).unwrap().complete_at.unwrap() + e.d.cfg.window_ms();
        e.d.set_time(due);
        let fa = gridledger_rollup::primary::FinalizeArgs { batch: k, entries: vec![], witness: Default::default() };
        let r = e.d.primary_call(&trader(3), "finalize", args(&fa), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    }
    let h = e.d.batch_header(k).unwrap();
    let account = e.d.participant(&trader(0).address());
    assert!(
        run.is_ok() && account.is_ok(),
        "batch {k} (state {:?}, root {:?} = the true post-state root: {}): process {run:?}; trader 0's account \
         after it settled: {:?}",
        h.state,
        h.post_root,
        h.post_root == Some(true_post),
        account.map(|p| p.balance)
    );
}

/// Held up: IOR is unchanged; a posted batch's TCRs are never replaced,
/// even by a posting of the same batch from another active executor.
#[test]
fn ior_never_replaces_a_posting() {
    let (mut e, batch) = one_at_batch();
    let (t, x) = honest_tcrs(&mut e, batch);
    assert_eq!(record_tcrs(&mut e, &x, batch, t.clone()).status, TxStatus::Success);
    for key in e.d.executors.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>() {
        let r = record_tcrs(&mut e, &key, batch, t.clone());
        assert!(reverted(&r).contains("already recorded"), "{:?}", r.status);
    }
}
