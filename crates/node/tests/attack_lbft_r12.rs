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
use common::lbft::{keep_queued, rich, share, verified};
use gridledger_core::Address;
use gridledger_ledger::devnet::{dev_key, TRANSFER_GAS};
use gridledger_ledger::mempool::Mempool;
use gridledger_ledger::{ChainConfig, SignedTransaction};
use gridledger_node::lbft::ProposalQueue;
use std::collections::HashMap;

/// Validators of the network whose gas share the queue cuts for.
const N: u64 = 4;

/// One validator's batch size with the default chain settings.
fn max_txs() -> usize {
    ChainConfig::default().max_block_txs / N as usize
}

/// One cut batch: its senders (dev key indices, one per transaction) and
/// its gas.
struct Proposed {
    senders: Vec<usize>,
    gas: u64,
}

/// Runs the queue as the engine runs it (pipeline 0): each epoch `load`
/// admits what it wants (given the next nonce to admit per sender and the
/// committed nonces), a batch is cut, delivered and executed whole, and
/// the queue hears of the delivery. Stops after `epochs` or once `stop`
/// holds for the batch just cut.
fn run(
    epochs: u64,
    budget: u64,
    senders: usize,
    mut load: impl FnMut(u64, &mut Mempool, &mut HashMap<usize, u64>, &HashMap<usize, u64>),
    mut stop: impl FnMut(&Proposed) -> bool,
) -> Vec<Proposed> {
    let mut pool = Mempool::new(10_000, 4_096);
    let mut q = ProposalQueue::new(64);
    let mut committed: HashMap<usize, u64> = HashMap::new();
    let mut next: HashMap<usize, u64> = HashMap::new();
    let who: HashMap<Address, usize> = (0..senders).map(|i| (dev_key(i).address(), i)).collect();
    let mut out = Vec::new();
    for epoch in 0..epochs {
        load(epoch, &mut pool, &mut next, &committed);
        let cut = q.cut(epoch, &pool, max_txs(), budget);
        assert!(cut.give_up.is_empty());
        let mut p = Proposed { senders: Vec::new(), gas: 0 };
        let mut addrs = Vec::new();
        for t in &cut.txs {
            let stx = SignedTransaction::from_bytes(t, 1 << 16).unwrap();
            let i = who[&stx.sender()];
            let n = committed.entry(i).or_default();
            assert_eq!(*n, stx.tx.nonce, "a batch keeps each sender's nonce order");
            *n += 1;
            p.senders.push(i);
            p.gas += stx.tx.gas_limit;
            addrs.push(stx.sender());
        }
        pool.prune(addrs, |a| rich(committed.get(&who[a]).copied().unwrap_or(0)));
        q.delivered(epoch, &pool);
        let done = stop(&p);
        out.push(p);
        if done {
            break;
        }
    }
    out
}

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
