//! Attack round 9 on the LBFT node engine (`consensus = "lbft"`): the
//! proposal queue after attack r8's fixes (a sender whose next transaction
//! did not fit a batch's gas goes first in the next batch, and the
//! round-robin's round does not end while such a sender waits).
//!
//! - [1] (high): the round ends only once no sender is left out for gas,
//!   and a sender served in the round is not visited again until it ends.
//!   Every sender the round has not served yet — also one that arrived
//!   after the round started — is visited in the same round, and one whose
//!   transaction does not fit is appended to the "left out" list. So a
//!   client that sends, each epoch, one transaction with `gas_limit` = the
//!   validator's share from an account the round has not served (a fresh
//!   account, one transfer's fee each: the fee is charged on the gas used)
//!   keeps the list non-empty for ever: the round never ends, and every
//!   sender it already served — an ordinary client with many transfers
//!   queued — is never proposed again. Fair round-robin among the senders
//!   with pending transactions would give that client every other batch
//!   (`fresh_share_sized_senders_do_not_freeze_a_served_sender`, the queue
//!   alone, deterministic). The attacker needs no higher gas price, and no
//!   endless supply of accounts: the round's memory forgets senders that
//!   left the mempool once it holds more of them than the mempool holds
//!   transactions, so a rotated account is new to the round again — 16
//!   accounts in turn freeze a client with eight transfers queued for 60
//!   epochs (`rotated_share_sized_senders_freeze_a_served_sender_for_ever`;
//!   the accounts needed grow with the pending transactions, not with
//!   time). No
//!   attacker is needed either: new clients arriving at the rate the
//!   batches' gas serves them (two half-share calls per epoch) freeze a
//!   served sender the same way
//!   (`new_clients_at_gas_saturation_do_not_freeze_a_served_sender`).
//!   Four in-process validators: while 24 fresh accounts' share-sized
//!   transfers commit through validator 2 (three pending at a time), a
//!   client of validator 2 with eight transfers queued commits its first
//!   eight and then none
//!   (`fresh_share_sized_senders_freeze_a_client_at_a_running_validator`).
//!   The old round-robin rule (a new round at every batch not full by
//!   count) served that client again in the next round; the r8 fix's
//!   "the round goes on while a sender left out for gas waits" is what
//!   lets senders new to the round keep it open.
//!
//! Held up (passing tests here): a single share-sized sender keeping two
//! transactions queued shares the batches with an ordinary sender
//! (`control_one_share_sized_sender_shares_the_batches`); a sender left
//! out for gas cannot stay at the head of the list by alternating a
//! transaction that fits with one that does not
//! (`alternating_fit_and_no_fit_does_not_hold_the_head`).
//!
//! [1] is fixed (no longer ignored): a round's membership is fixed when
//! it starts (senders arriving later wait for the next round; one left
//! out for gas keeps its place at the head of the next batch within the
//! round), and each round gives its members an equal part of one batch's
//! gas as credit, so senders whose transactions each take the whole share
//! take one batch's gas per round among themselves. Planted bug
//! `QueueMutation::RoundOpenToNewcomers` (`tests/mutants.rs`) brings it
//! back.
//!
//! Run them with `cargo test -p gridledger-node --test attack_lbft_r9`.

mod common;
use common::lbft::{admit, committed, keep_queued, rich, share, verified, within, Net, Validator};
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::mempool::Mempool;
use gridledger_ledger::{SignedTransaction, Transaction, TxKind};
use gridledger_node::lbft::ProposalQueue;
use std::collections::HashMap;

use common::lbft::N;

/// Runs the queue as the engine runs it: each epoch `load` admits what it
/// wants (given the accounts' committed nonces and the next nonce to
/// admit per sender), a batch is cut, delivered and executed whole, and
/// the queue hears of the delivery. Returns, per epoch, the senders the
/// batch took from (dev key indices, in batch order, one per transaction).
fn run(
    epochs: u64,
    mut load: impl FnMut(u64, &mut Mempool, &mut HashMap<usize, u64>, &HashMap<usize, u64>),
) -> Vec<Vec<usize>> {
    let budget = share();
    let mut pool = Mempool::new(10_000, 4_096);
    let mut q = ProposalQueue::new(64);
    let mut committed: HashMap<usize, u64> = HashMap::new();
    let mut next: HashMap<usize, u64> = HashMap::new();
    let who: HashMap<Address, usize> = (0..80).map(|i| (dev_key(i).address(), i)).collect();
    let mut out = Vec::new();
    for epoch in 0..epochs {
        load(epoch, &mut pool, &mut next, &committed);
        let cut = q.cut(epoch, &pool, 75, budget);
        assert!(cut.give_up.is_empty());
        let mut senders = Vec::new();
        let mut batch = Vec::new();
        for t in &cut.txs {
            let stx = SignedTransaction::from_bytes(t, 1 << 16).unwrap();
            let i = who[&stx.sender()];
            let n = committed.entry(i).or_default();
            assert_eq!(*n, stx.tx.nonce, "a batch keeps each sender's nonce order");
            *n += 1;
            batch.push(i);
            senders.push(stx.sender());
        }
        pool.prune(senders, |a| rich(committed.get(&who[a]).copied().unwrap_or(0)));
        q.delivered(epoch, &pool);
        out.push(batch);
    }
    out
}

/// [1] Dev account 1 (H) keeps eight ordinary transfers queued at the
/// validator. Each epoch one fresh account (dev accounts 10, 11, …) sends
/// one transfer with `gas_limit` = the share, at H's gas price. Each
/// batch can carry either one share-sized transfer or H's transfers. With
/// round-robin among the senders with pending transactions, H is proposed
/// every other batch or so (about 15 of 30); at least 8 of 30 is asked.
/// Today H is proposed in the first batch only: the list of senders left
/// out for gas never empties, the round never ends, and H (served in it)
/// is never visited again.
#[test]
fn fresh_share_sized_senders_do_not_freeze_a_served_sender() {
    let budget = share();
    let order = run(30, |epoch, pool, next, committed| {
        keep_queued(pool, next, committed, 1, 8, TRANSFER_GAS);
        let fresh = 10 + epoch as usize;
        pool.admit(verified(fresh, 0, budget, 1), &rich(0)).unwrap();
        next.insert(fresh, 1);
    });
    let h_batches = order.iter().filter(|b| b.contains(&1)).count();
    assert!(
        h_batches >= 8,
        "H's transfers were proposed in {h_batches} of 30 batches (each batch's senders: {order:?})"
    );
}

/// [1] without an attacker: each epoch two new clients (dev accounts 10,
/// 11, …) send one call-sized transfer each (`gas_limit` = half the
/// share), so the batches fill by gas; H keeps eight ordinary transfers
/// queued. Round-robin among the senders with pending transactions would
/// give H a turn every few batches; today H is proposed in the first batch
/// only, for as long as new clients keep arriving at that rate.
#[test]
fn new_clients_at_gas_saturation_do_not_freeze_a_served_sender() {
    let half = share() / 2;
    let order = run(30, |epoch, pool, next, committed| {
        keep_queued(pool, next, committed, 1, 8, TRANSFER_GAS);
        for k in 0..2 {
            let fresh = 10 + 2 * epoch as usize + k;
            pool.admit(verified(fresh, 0, half, 1), &rich(0)).unwrap();
            next.insert(fresh, 1);
        }
    });
    let h_batches = order.iter().filter(|b| b.contains(&1)).count();
    assert!(
        h_batches >= 5,
        "H's transfers were proposed in {h_batches} of 30 batches (each batch's senders: {order:?})"
    );
}

/// [1] with a bounded set of accounts: the attacker rotates 16 accounts
/// (dev accounts 10…25), each epoch sending one share-sized transfer from
/// the next one in turn (its previous one committed long ago). The
/// round's memory drops senders that left the mempool once it holds more
/// of them than the mempool holds transactions, so a rotated account is
/// new to the round again when its turn comes: the freeze lasts for ever
/// (60 epochs here), paid with one transfer's fee per epoch.
#[test]
fn rotated_share_sized_senders_freeze_a_served_sender_for_ever() {
    let budget = share();
    let order = run(60, |epoch, pool, next, committed| {
        keep_queued(pool, next, committed, 1, 8, TRANSFER_GAS);
        let a = 10 + (epoch % 16) as usize;
        let done = committed.get(&a).copied().unwrap_or(0);
        let n = next.entry(a).or_default();
        if *n == done {
            pool.admit(verified(a, *n, budget, 1), &rich(done)).unwrap();
            *n += 1;
        }
    });
    let h_batches = order.iter().filter(|b| b.contains(&1)).count();
    assert!(
        h_batches >= 15,
        "H's transfers were proposed in {h_batches} of 60 batches (each batch's senders: {order:?})"
    );
}

/// Control: one share-sized sender (dev account 0) keeping two transfers
/// queued and H keeping eight ordinary ones share the batches — H is
/// proposed in at least a third of them.
#[test]
fn control_one_share_sized_sender_shares_the_batches() {
    let budget = share();
    let order = run(30, |_, pool, next, committed| {
        keep_queued(pool, next, committed, 1, 8, TRANSFER_GAS);
        keep_queued(pool, next, committed, 0, 2, budget);
    });
    let h_batches = order.iter().filter(|b| b.contains(&1)).count();
    let f_batches = order.iter().filter(|b| b.contains(&0)).count();
    assert!(h_batches >= 10 && f_batches >= 10, "H in {h_batches}, F in {f_batches} of 30 batches: {order:?}");
}

/// Held up: sender 0 alternates a share-sized transfer with an ordinary
/// one (so it is left out for gas every other time it is visited);
/// senders 1 and 2 keep ordinary transfers queued. Sender 0 does not
/// take every batch: 1 and 2 are each proposed in at least a third of
/// the batches.
#[test]
fn alternating_fit_and_no_fit_does_not_hold_the_head() {
    let budget = share();
    let order = run(30, |_, pool, next, committed| {
        keep_queued(pool, next, committed, 1, 4, TRANSFER_GAS);
        keep_queued(pool, next, committed, 2, 4, TRANSFER_GAS);
        let done = committed.get(&0).copied().unwrap_or(0);
        let n = next.entry(0).or_default();
        while *n < done + 2 {
            let gas = if *n % 2 == 0 { budget } else { TRANSFER_GAS };
            pool.admit(verified(0, *n, gas, 3), &rich(done)).unwrap();
            *n += 1;
        }
    });
    for s in [1, 2] {
        let k = order.iter().filter(|b| b.contains(&s)).count();
        assert!(k >= 10, "sender {s} proposed in {k} of 30 batches: {order:?}");
    }
}

/// A transfer of `amount` from dev account `from` to dev account `to`,
/// gas price 1, encoded.
fn pay(from: usize, nonce: u64, gas: u64, to: usize, amount: u128) -> Vec<u8> {
    Transaction {
        chain_id: 1,
        sender: dev_key(from).public(),
        nonce,
        gas_limit: gas,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: dev_key(to).address(), amount: Amount(amount) },
    }
    .sign(&dev_key(from))
    .to_bytes()
}

/// [1], four in-process validators. Dev accounts 0 and 2 fund 24 fresh
/// accounts (10…33) through validator 0. Then at validator 2 dev account
/// 1 (H) keeps eight ordinary transfers queued, and the attacker keeps
/// three of its fresh accounts' share-sized transfers pending, adding the
/// next fresh account's whenever one commits. While the attacker's 24
/// transfers commit, H should get several turns (round-robin among the
/// senders with pending transactions: about one batch in three); at least
/// 24 of H's transfers (three turns) are asked. Today H gets its first
/// turn and then waits for the attacker to run out of fresh accounts.
#[test]
fn fresh_share_sized_senders_freeze_a_client_at_a_running_validator() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let vs: Vec<Validator> = (0..N).map(|i| net.start(i, SimDisk::new())).collect();
    let budget = share();
    let fresh: Vec<usize> = (10..34).collect();
    let funding: Vec<Vec<u8>> = fresh
        .iter()
        .enumerate()
        .map(|(k, &to)| pay(if k < 12 { 0 } else { 2 }, (k % 12) as u64, TRANSFER_GAS, to, 80_000_000))
        .collect();
    let r = admit(&vs[0], &funding);
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    let funded: Vec<Hash32> = r.into_iter().map(|r| r.unwrap()).collect();
    assert!(within(60, || funded.iter().all(|h| committed(&vs[0], h))), "funding committed");
    let v = &vs[2];
    let nonce_of = |from: usize| v.node.shared.chain().account(&dev_key(from).address()).nonce;
    assert!(within(30, || fresh.iter().all(|&a| v.node.shared.chain().account(&dev_key(a).address()).balance.0 > 0)));
    let mut h_sent = 0u64;
    let mut next_fresh = 0usize;
    let mut pending: Vec<Hash32> = Vec::new();
    let done = within(120, || {
        let h_done = nonce_of(1);
        while h_sent < h_done + 8 {
            let r = admit(v, &[pay(1, h_sent, TRANSFER_GAS, 3, 1)]);
            assert!(r[0].is_ok(), "{r:?}");
            h_sent += 1;
        }
        pending.retain(|h| !committed(v, h));
        while pending.len() < 3 && next_fresh < fresh.len() {
            let r = admit(v, &[pay(fresh[next_fresh], 0, budget, 3, 1)]);
            pending.push(r[0].clone().unwrap());
            next_fresh += 1;
        }
        pending.is_empty() && next_fresh == fresh.len()
    });
    let h_done = nonce_of(1);
    assert!(done, "the attacker's transfers committed ({next_fresh} sent, {} pending)", pending.len());
    assert!(h_done >= 24, "H committed {h_done} transfers while the attacker's 24 share-sized ones committed");
}
