//! Attack round 6 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators, links in memory, validator 0 a Byzantine puppet
//! (a correct replica in every step but one).
//!
//! - [1] (medium): the execution rule of round 5 runs a transaction
//!   delivered ahead of its predecessor right after it — but only within
//!   one epoch. A transaction delivered in an epoch *before* the one that
//!   carries its predecessor is skipped, and the duplicate window of the
//!   agreement (`retain_epochs`, 64 by default) then suppresses every
//!   re-proposal of it for 64 epochs: it commits some 65 epochs after its
//!   predecessor. One Byzantine validator an honest client also sent its
//!   transactions to (for censorship resistance) triggers it by proposing
//!   the client's nonce `k + 1` alone, one epoch ahead of the honest
//!   validator's batch `[k, k + 1]`. It does not stop there: every later
//!   transaction the client sends while `k + 1` is suppressed is delivered
//!   behind the suppressed one, skipped, and suppressed for 64 epochs of
//!   its own — the account stays throttled to one commit per ~64 epochs for
//!   as long as the client keeps sending, with no further deviation
//!   (`a_next_nonce_delivered_one_epoch_early_is_not_held_back_for_the_dedup_window`;
//!   the control with the same puppet not copying passes).
//!
//! - [2] (high): copies staggered in the wrong order keep the
//!   transactions suppressed past the proposing validator's retry limit,
//!   which then gives up (drops) an honest client's admitted transactions
//!   (`staggered_early_copies_do_not_make_the_honest_validator_give_up_a_clients_transactions`).
//! - [3] (medium): the proposal queue's round-robin restarts at the
//!   mempool's oldest sender every batch, starving a later sender behind
//!   `max_batch_txs` senders that keep their queues full
//!   (`the_proposal_queue_does_not_starve_a_sender_behind_a_full_first_pass`).
//!
//! Fixed: only executed transactions are duplicates — the node runs the
//! replica without a duplicate window across epochs and execution skips
//! what already executed (the chain's transaction index, the account
//! nonces), so a copy delivered early and skipped holds nothing back; the
//! proposal queue gives a transaction up only after deliveries of the
//! validator's *own accepted* batch left it unexecuted (lost batches and
//! other validators' copies count nothing); and the queue's round-robin
//! round goes on across batches. The puppet and the scenario of [1] live
//! in `common::lbft` ([`common::lbft::early_next_nonce`]), shared with the
//! LBFT scenarios of `mutants`.
//!
//! Run them with `cargo test -p gridledger-node --test attack_lbft_r6`.

mod common;
use common::lbft::{
    admit, commit_epoch, committed, early_next_nonce, early_puppet, first_delivered, stored_epochs, tx, within, Net,
    Validator, N,
};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::TRANSFER_GAS;
use gridledger_ledger::fault::SimDisk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// [1] Nonce 1 delivered one epoch before nonce 0 (by the Byzantine
/// validator the client also sent it to) is skipped there, then suppressed
/// as a duplicate in every honest batch for the 64 epochs of the duplicate
/// window: it commits about 65 epochs after nonce 0. Nonce 2, sent once
/// nonce 0 committed, is delivered behind the suppressed nonce 1, skipped,
/// and suppressed for 64 epochs of its own.
///
/// What should happen: nonce 1 commits right after nonce 0 (in its epoch
/// or the next), and nonce 2 within a few epochs of being sent — a
/// transaction delivered but not executed is not held back by the
/// duplicate window (e.g. it waits, across epochs, for its predecessor,
/// or only executed transactions enter the window).
#[test]
fn a_next_nonce_delivered_one_epoch_early_is_not_held_back_for_the_dedup_window() {
    let s = early_next_nonce(true, |_| {});
    assert!(s.copied && s.early_delivered == Some(0), "the puppet's copy was delivered in epoch 0: {s:?}");
    let [Some(c0), c1, c2] = s.commits else { panic!("nonce 0 committed: {s:?}") };
    assert!(c0 >= 1, "nonce 0 commits after the early copy: {s:?}");
    let ok1 = c1.is_some_and(|c| c <= c0 + 1);
    let ok2 = c2.is_some_and(|c| c <= s.sent_third_at + 4);
    assert!(
        ok1 && ok2,
        "nonce 0 committed in epoch {c0}, nonce 1 in {c1:?} (expected by {}), nonce 2 (sent after epoch {}) in \
         {c2:?}: {s:?}",
        c0 + 1,
        s.sent_third_at
    );
}

/// Control for [1]: the same puppet proposing only empty batches — nonces
/// 0 and 1 commit together, nonce 2 right after it is sent.
#[test]
fn control_without_the_early_copy_the_account_is_not_held_back() {
    let s = early_next_nonce(false, |_| {});
    assert!(!s.copied && s.early_delivered.is_some(), "{s:?}");
    let [Some(c0), Some(c1), Some(c2)] = s.commits else { panic!("all committed: {s:?}") };
    assert!(c1 <= c0 + 1 && c2 <= s.sent_third_at + 4, "{s:?}");
}

/// [2] An honest client sends nonces 0..=3 of dev account 0 to validator 0
/// (Byzantine) and, a few epochs later, to validator 1. Validator 0
/// proposes nonce 3 alone in epoch 0, nonce 2 in epoch 1 and nonce 1 in
/// epoch 2 (each delivered ahead of its predecessor, so skipped); validator
/// 1 proposes all four from epoch 3 on. Nonce 0 commits; the duplicate
/// windows of nonces 1..=3 end one epoch apart in the wrong order, so
/// nonce 3 is delivered (gap) when its window ends while nonce 2 is still
/// suppressed, and nonce 2 the same behind nonce 1: each is skipped again
/// and suppressed for another 64 epochs. Validator 1 keeps proposing them
/// every epoch and, after `retain_epochs + 64` = 128 proposals, gives
/// them up — removing them from its mempool, with the client told
/// nothing: admitted transactions of an honest client, sent to an honest
/// validator, dropped by one Byzantine validator.
///
/// What should happen: nonces 1..=3 commit (right after nonce 0).
#[test]
fn staggered_early_copies_do_not_make_the_honest_validator_give_up_a_clients_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let txs: Vec<Vec<u8>> = (0..4).map(|n| tx(0, n, TRANSFER_GAS)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let early = vec![txs[3].clone(), txs[2].clone(), txs[1].clone()];
    let byz = early_puppet(dir.path(), net.clone(), early, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start(i, SimDisk::new())).collect();
    let h1 = &vs[0];
    assert!(within(60, || stored_epochs(h1).len() >= 3), "epochs 0..=2 are delivered");
    let got = admit(h1, &txs);
    assert!(got.iter().all(|r| r.is_ok()), "all four admitted at validator 1: {got:?}");
    let hashes: Vec<Hash32> = got.into_iter().map(|r| r.unwrap()).collect();
    let pending = |h: &Hash32| h1.node.shared.chain().mempool().contains(h);
    // Each either commits or leaves the mempool uncommitted (given up).
    // Generous cap (no outcome depends on timing): the windows take ~200 epochs.
    let settled = within(300, || hashes.iter().all(|h| committed(h1, h) || !pending(h)));
    let commits: Vec<Option<u64>> = hashes.iter().map(|h| commit_epoch(h1, h)).collect();
    let firsts: Vec<Option<u64>> = txs.iter().map(|t| first_delivered(h1, t)).collect();
    let dropped: Vec<bool> = hashes.iter().map(|h| !committed(h1, h) && !pending(h)).collect();
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    for v in vs {
        v.node.shutdown();
    }
    assert_eq!(copied, 3, "the puppet proposed its three early copies");
    assert!(firsts[1..] == [Some(2), Some(1), Some(0)], "copies delivered in epochs 2, 1, 0: {firsts:?}");
    assert!(
        settled && commits.iter().all(|c| c.is_some()),
        "settled: {settled}; commit epochs of nonces 0..=3: {commits:?}; given up (left the mempool uncommitted): \
         {dropped:?}; first delivered: {firsts:?}"
    );
}

/// [3] The proposal queue's round-robin always starts from the mempool's
/// oldest sender and its first pass stops once the batch is full: with as
/// many senders queued ahead as a batch has room for (`max_batch_txs`, 75
/// under the default chain), a sender that arrived later is never visited
/// while those keep their queues non-empty. Here a batch of 3, three
/// early senders with 10 transactions each, and a victim's single
/// transaction that arrived after them: the victim waits 10 epochs, until
/// the three queues are drained — one account-holder with `max_batch_txs`
/// funded accounts starves every later sender of a validator for as long as
/// it keeps them topped up.
///
/// What should happen: the round-robin goes on where the last batch
/// stopped (or otherwise rotates), so a pending sender is proposed within
/// ⌈senders / max_batch_txs⌉ epochs.
#[test]
fn the_proposal_queue_does_not_starve_a_sender_behind_a_full_first_pass() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_ledger::mempool::Mempool;
    use gridledger_ledger::state::Account;
    use gridledger_ledger::{Transaction, TxKind, VerifiedTx};
    use gridledger_node::lbft::ProposalQueue;
    use std::collections::HashMap;

    fn vtx(from: usize, nonce: u64) -> VerifiedTx {
        Transaction {
            chain_id: 1,
            sender: dev_key(from).public(),
            nonce,
            gas_limit: TRANSFER_GAS,
            gas_price: Amount(1),
            kind: TxKind::Transfer { to: dev_key(9).address(), amount: Amount(1) },
        }
        .sign(&dev_key(from))
        .check_stateless(1, u64::MAX)
        .unwrap()
    }
    let rich = |nonce| Account { balance: Amount(1_000_000_000_000), nonce };
    let mut pool = Mempool::new(1_000, 100);
    for from in 0..3 {
        for n in 0..10 {
            pool.admit(vtx(from, n), &rich(0)).unwrap();
        }
    }
    let victim = pool.admit(vtx(5, 0), &rich(0)).unwrap();
    let mut q = ProposalQueue::new(1_000);
    let mut nonces: HashMap<gridledger_core::Address, u64> = HashMap::new();
    let mut proposed_at = None;
    for e in 0..12u64 {
        let cut = q.cut(e, &pool, 3, u64::MAX);
        let txs: Vec<_> = cut
            .txs
            .iter()
            .map(|r| gridledger_ledger::SignedTransaction::from_bytes(r, 1 << 16).expect("decodes"))
            .collect();
        if proposed_at.is_none() && txs.iter().any(|t| t.hash() == victim) {
            proposed_at = Some(e);
        }
        // Every proposed transaction executes in its epoch.
        for t in &txs {
            *nonces.entry(t.sender()).or_default() += 1;
        }
        let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
        pool.prune(senders, |a| rich(nonces.get(a).copied().unwrap_or(0)));
        q.delivered(e, &pool);
    }
    assert!(
        proposed_at.is_some_and(|e| e <= 1),
        "four senders, three slots a batch: the victim is proposed by epoch 1; it was first proposed in epoch \
         {proposed_at:?}"
    );
}
