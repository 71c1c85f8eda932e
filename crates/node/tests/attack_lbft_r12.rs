//! Attack round 12 on the LBFT node engine's proposal queue
//! (`consensus = "lbft"`), after attack r11's fix (commit "a round hands
//! out the gas of its batches as credit, water-filled over the members'
//! needs"): the round's credit is `budget` per batch of a round of
//! `⌈members / max_txs⌉` batches, shared by water-filling; if the level
//! is below every need it is multiplied up to the smallest need (rounds
//! that would serve no one are skipped).
//!
//! [1] is fixed (no longer ignored): the queue is work-conserving — a
//! member short of credit is lent the room a batch has left if its
//! transaction fits, the shortfall becoming its debt (at most one batch's
//! gas), repaid from later rounds' credit before it is served by credit
//! again; rounds in which every member left short is held back by its
//! debt are skipped. Planted bug `QueueMutation::CreditOnly`
//! (`tests/mutants.rs`) brings it back.
//!
//! Run them with `cargo test -p gridledger-node --test attack_lbft_r12`.

mod common;
use common::lbft::{keep_queued, rich, run, share, verified, Proposed};
use gridledger_ledger::devnet::TRANSFER_GAS;

/// Senders of share-sized calls (dev accounts 10…159).
const CALLERS: std::ops::Range<usize> = 10..160;

/// Each caller keeps one call of the whole gas share pending at gas price
/// 1,000 (a batch holds exactly one); with `light`, dev account 1 keeps
/// one ordinary transfer (gas price 1) pending too. Returns the batches
/// cut until every caller's first call was proposed (at most 400).
fn calls_with(light: bool) -> Vec<Proposed> {
    let mut served: std::collections::HashSet<usize> = Default::default();
    run(
        400,
        share(),
        CALLERS.end,
        |_, pool, next, committed| {
            for c in CALLERS {
                let done = committed.get(&c).copied().unwrap_or(0);
                let n = next.entry(c).or_default();
                while *n < done + 1 {
                    pool.admit(verified(c, *n, share(), 1_000), &rich(done)).unwrap();
                    *n += 1;
                }
            }
            if light {
                keep_queued(pool, next, committed, 1, 1, TRANSFER_GAS);
            }
        },
        |p| {
            served.extend(p.senders.iter().copied().filter(|s| CALLERS.contains(s)));
            served.len() == CALLERS.len()
        },
    )
}

/// [1] (medium) One cheap sender turns the batches of a validator whose
/// mempool holds share-sized calls into empty ones. 150 senders each keep
/// one call of the whole gas share pending (each fills a batch alone; a
/// batch takes one). Alone, they are served one per batch from the first
/// batch on: the round's level (`2 · budget / 150`) is below every need,
/// so it is multiplied up to the share. Add one sender (dev account 1)
/// keeping a single 21,000-gas transfer pending: its small need keeps the
/// level from being multiplied up (the least need is now below it), so
/// each round gives each caller `3 · budget / 150` = 1.5 M gas, and a
/// caller needs 50 rounds to afford its call. Each round's first pass
/// meets `max_txs` callers short of credit and stops: the batch goes out
/// empty, or with the one transfer. For about 100 batches the validator
/// proposes nothing but that transfer, though every one of them had room
/// for a call that was waiting (the room the r11 fix meant to hand out);
/// the first call is proposed in batch ~100 instead of batch 0, and the
/// 150 calls take ~250 batches instead of ~151. The level counts the
/// round as `⌈members / max_txs⌉` batches, but members that fill a batch
/// each make it last `members` batches. Should: a batch with room for a
/// waiting call does not go out (nearly) empty; the 150 calls and the
/// transfer fit in 151 batches (checked with 10 % slack).
#[test]
fn one_cheap_sender_does_not_empty_the_batches_of_waiting_calls() {
    let order = calls_with(true);
    let empty = order.iter().filter(|p| p.gas <= TRANSFER_GAS).count();
    let first = order.iter().position(|p| p.senders.iter().any(|s| CALLERS.contains(s)));
    assert!(
        order.len() <= 166 && empty <= 16,
        "150 share-sized calls and one transfer sender took {} batches, {empty} of them carrying at most one \
         transfer while calls waited; the first call was proposed in batch {first:?}",
        order.len()
    );
}

/// Held up (control for [1]): the share-sized calls alone are served one
/// per batch from the first batch on.
#[test]
fn share_sized_calls_alone_are_served_one_per_batch() {
    let order = calls_with(false);
    assert_eq!(order.len(), CALLERS.len(), "one call per batch");
    assert!(order.iter().all(|p| p.gas == share()));
}
