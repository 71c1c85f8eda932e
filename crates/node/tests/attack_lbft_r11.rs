//! Attack round 11 on the LBFT node engine's proposal queue
//! (`consensus = "lbft"`), after attack r9's fix: a round-robin round's
//! membership is fixed when it starts, and each round gives each member
//! `budget / members` gas as credit; a member is served once its credit
//! covers its next transaction's gas limit.
//!
//! - [1] (medium): the credit a round hands out is one batch's gas
//!   (`budget` split among the members), but a round whose members fill
//!   batches by count lasts `⌈members / max_txs⌉` batches. The gas of the
//!   other batches of the round is credited to no one: a sender whose
//!   next transaction is a contract call of gas `g` waits
//!   `⌈g · members / budget⌉` rounds, that is about
//!   `g · members² / (budget · max_txs)` batches — quadratic in the
//!   senders the validator holds — while every one of those batches
//!   leaves almost all its gas unused, room the call fits in. With the
//!   default chain (share 75 M gas, 75 transactions a batch) and 300
//!   ordinary clients keeping one transfer each pending, a 10 M-gas call
//!   (under a seventh of the share) is proposed in batch 160, and the gas
//!   price it pays (1,000 times the transfers') changes nothing; plain
//!   round-robin (the rule before attack r9) proposes it within the
//!   first round (5 batches). No attacker is needed (300 pending
//!   senders is ordinary load); an attacker keeping `M` sybil accounts
//!   with one transfer each pending (one transfer fee per account and
//!   round) delays any call quadratically in `M`. The documented bound
//!   ("served within the current round and at most `S` more, each round
//!   at most `S` batches", `S` = 200,000 senders with the default
//!   mempool) holds, but is `S²` = 4·10¹⁰ batches.
//!   (`a_call_behind_ordinary_senders_waits_quadratically`)
//!
//! - [2] (low): with a budget of `u64::MAX` (a single-validator chain
//!   whose block gas limit is `u64::MAX`), two queued transactions of
//!   `u64::MAX - 1` gas each overflow the batch's gas sum: the saturating
//!   fit check lets the second in and `gas += limit` panics (debug) or
//!   wraps (release). Operator configuration is needed; older than the r9
//!   change (`the_batch_gas_sum_does_not_overflow`).
//!
//! Held up (passing test here): the round's credit at the edges of `u64`
//! (budget `u64::MAX / 2`, share-sized transactions beside transfers)
//! neither wraps nor panics, and the heavy sender is served within a few
//! batches (`credit_does_not_wrap_at_the_edges_of_u64`).
//!
//! Run them with `cargo test -p gridledger-node --test attack_lbft_r11`.

mod common;
use common::lbft::{keep_queued, rich, run, share, verified};
use gridledger_core::Amount;
use gridledger_ledger::devnet::TRANSFER_GAS;
use gridledger_ledger::state::Account;

/// [1] 300 ordinary clients (dev accounts 10…309) each keep one transfer
/// (gas price 1) pending; at epoch 0 dev account 1 (H) submits a contract
/// call-sized transfer of 10 M gas (under a seventh of the 75 M share) at
/// gas price 1,000. Each batch carries 75 transfers (1.6 M gas): the call
/// fits beside them in every batch. Round-robin among the 301 pending
/// senders reaches H within its first round, ⌈301 / 75⌉ = 5 batches; at
/// most two rounds (10 batches) are asked. Today H waits
/// ⌈10 M · 301 / 75 M⌉ = 41 rounds of about four batches: it is proposed
/// in batch 160 (0-based), after 12,075 transfers; with 600 clients in
/// batch 640 (four times as late for twice the senders).
#[test]
fn a_call_behind_ordinary_senders_waits_quadratically() {
    const CLIENTS: std::ops::Range<usize> = 10..310;
    let call = 10_000_000;
    let order = run(
        200,
        share(),
        CLIENTS.end,
        |epoch, pool, next, committed| {
            for c in CLIENTS {
                keep_queued(pool, next, committed, c, 1, TRANSFER_GAS);
            }
            if epoch == 0 {
                pool.admit(verified(1, 0, call, 1_000), &rich(0)).unwrap();
            }
        },
        |p| p.senders.contains(&1),
    );
    let served = order.iter().position(|p| p.senders.contains(&1));
    let most_gas = order.iter().filter(|p| !p.senders.contains(&1)).map(|p| p.gas).max().unwrap_or(0);
    assert!(most_gas + call <= share(), "the call fitted beside every batch without it ({most_gas} gas)");
    assert!(
        served.is_some_and(|b| b < 10),
        "the 10 M-gas call was proposed in batch {served:?} (checked {} batches; ordinary senders served: {})",
        order.len(),
        order.iter().map(|p| p.senders.len()).sum::<usize>()
    );
}

/// [2] (low) A single-validator LBFT chain whose block gas limit is
/// `u64::MAX` (share = budget = `u64::MAX`): dev account 1 keeps two
/// transactions of `u64::MAX - 1` gas queued. The batch's gas check
/// saturates (`gas.saturating_add(limit) > budget` is false at
/// `u64::MAX`), so the second is taken and the running sum
/// `gas += limit` overflows: the cut panics in a debug build (and wraps in
/// a release build, leaving a batch over its budget). The second should
/// wait for a later batch, as one that does not fit does.
#[test]
fn the_batch_gas_sum_does_not_overflow() {
    let order = run(
        2,
        u64::MAX,
        2,
        |_, pool, next, committed| {
            let done = committed.get(&1).copied().unwrap_or(0);
            let n = next.entry(1).or_default();
            while *n < done + 2 {
                let whale = Account { balance: Amount(u128::MAX / 4), nonce: done };
                pool.admit(verified(1, *n, u64::MAX - 1, 1), &whale).unwrap();
                *n += 1;
            }
        },
        |_| false,
    );
    assert!(
        order.iter().all(|p| p.senders.len() == 1),
        "one transaction per batch: {:?}",
        order.iter().map(|p| p.senders.len()).collect::<Vec<_>>()
    );
}

/// Held up: credit at the edges of `u64` — a budget of `u64::MAX / 2`
/// (no wrap possible in the batch's sum) and dev account 1 keeping
/// transactions of the whole budget queued beside three senders of
/// transfers: the round's credit (`budget / 4` per member, carried with
/// saturation) neither wraps nor panics; the heavy sender is served within
/// its first five batches and again later, and the transfer senders keep
/// being served.
#[test]
fn credit_does_not_wrap_at_the_edges_of_u64() {
    let budget = u64::MAX / 2;
    let order = run(
        12,
        budget,
        8,
        |_, pool, next, committed| {
            for c in 4..7 {
                keep_queued(pool, next, committed, c, 2, TRANSFER_GAS);
            }
            let done = committed.get(&1).copied().unwrap_or(0);
            let n = next.entry(1).or_default();
            while *n < done + 2 {
                let whale = Account { balance: Amount(u128::MAX / 4), nonce: done };
                pool.admit(verified(1, *n, budget, 1), &whale).unwrap();
                *n += 1;
            }
        },
        |_| false,
    );
    let heavy = order.iter().filter(|p| p.senders.contains(&1)).count();
    assert!(order.iter().take(5).any(|p| p.senders.contains(&1)), "heavy sender not served in 5 batches");
    assert!(heavy >= 2, "heavy sender served in {heavy} of 12 batches");
    for c in 4..7 {
        let k = order.iter().filter(|p| p.senders.contains(&c)).count();
        assert!(k >= 4, "sender {c} served in {k} of 12 batches");
    }
}
