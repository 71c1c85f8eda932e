//! Attack round 26 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline after the r25 fix (`guard_passes`: a posting
//! counts as checked once its checks are on chain; a guard call refused
//! for a full mempool is sent again at double the gas price, at most
//! `MAX_GUARD_REPRICES` times; `DriverError::Unchecked` stops the run
//! before the clock passes a posting whose checks could not be sent).
//!
//! Finding [1] (high: settlement frozen by one party, no fee paid):
//! every validator honest; executor X posts a minting forgery ahead and
//! X's sybils fill the primary mempool with zero-byte junk at gas price
//! 1024, the most the guard reprices to (the mempool evicts only for a
//! strictly higher price). Every `process` stops with `Unchecked` at its
//! first guard, and since nothing was admitted nothing is sealed: the
//! flood is never included and costs nothing (its reservation, about 1.1
//! million coin, stays in the sybils' wallets). Five runs: no block, no
//! batch settled. What should happen: the chain goes on (blocks are
//! sealed, the flood is paid for as it is included) or the guard outbids
//! it; a freeze must cost its author what it holds up.
//!
//! Finding [2] (high: settlement frozen by one party, no fee paid, also
//! in `Mode::Ior`): no forgery at all; a sybil fills the mempool with
//! junk at gas price 1, the driver's own. The calls outside the guard (an
//! executor's posting, `close`, `finalize`) are never repriced: every
//! `process` fails with `mempool full` at its first call and seals
//! nothing; about 1,076 coin reserved, nothing paid, nothing settles.
//!
//! Finding [3] (critical under issue 11 item 2's threat, every validator
//! bribed): the bonded challenge demands of an alarmed owner's wallet
//! the bond plus the fee reservation of its fixed gas limits (1 M + 100 M
//! gas: 111 coin with a 10 coin bond), while the dispute uses about
//! 244,000 gas. With every trader's primary wallet at 100 coin every
//! owner is passed over, nothing is sent, the posting counts as backed
//! without any check (no `Unchecked`), and the minting root settles; the
//! accomplice withdraws 9.84 coin. With 200 coin per wallet the same
//! forgery is overturned (control).
//!
//! Fixed: a driver call refused for a full mempool (any call: the
//! guard's after its repricing, postings, `close`, `finalize`) is sent
//! again after a seal, which includes the flood and charges its senders
//! (`driver::submit_making_room`, `MAX_FULL_SEALS`); the bonded
//! challenge's reveal has a gas limit sized to the batch
//! (`driver::dispute_gas_limit`), and a posting whose meters alarm but
//! whose alarmed owners cannot pay any challenge is not counted as backed
//! (the run stops `Unchecked`). Each finding's test asserts settlement
//! goes on and, for the floods, that the flooder paid.
//!
//! Held up: 60 junk calls at twice the driver's price with room left in
//! the mempool delay the driver's calls, are sealed and paid for (about
//! 2,000 coin) and the batches settle.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::ChainClient as _;
use gridledger_rollup::driver::{DriverError, MAX_GUARD_REPRICES};
use gridledger_rollup::state::state_root;

/// Fills the primary mempool with `k`'s zero-byte junk calls at gas
/// price `price` until not even a 100-byte transaction fits. Returns how
/// many went in and what they reserve of `k`'s balance (gas limit times
/// price, paid only as far as they are included).
fn flood_at(e: &mut Env, k: &KeyPair, price: Amount) -> (u64, u128) {
    use gridledger_ledger::devnet::call;
    let chain_id = e.d.primary.chain_id();
    let mut size = gridledger_rollup::driver::MAX_TX_BYTES - 4_096;
    let mut n = 0;
    let mut reserved = 0;
    while size >= 100 {
        let nonce = e.d.primary.next_nonce(&k.address());
        let gas = 21_000 + 4 * size as u64 + 10_000;
        let tx = call(k, chain_id, nonce, gridledger_rollup::IOR_PRIMARY_ID, "junk", vec![0; size], Amount::ZERO, gas);
        let tx = gridledger_ledger::Transaction { gas_price: price, ..tx.tx }.sign(k);
        match e.d.primary.submit(&tx) {
            Ok(_) => {
                n += 1;
                reserved += u128::from(gas) * price.0;
            }
            Err(_) => size /= 2,
        }
    }
    (n, reserved)
}

/// The primary account's committed balance of `k`.
fn balance(e: &Env, k: &KeyPair) -> u128 {
    e.d.primary.account(&k.address()).balance.0
}

/// Finding [1]: every validator honest; executor X posts a minting
/// forgery ahead, and X's sybils fill the primary mempool with junk at
/// 1024 times the driver's gas price (the most the guard reprices to;
/// the mempool evicts only for a strictly higher price). Every `process`
/// stops with `Unchecked` at its first guard, before it seals anything,
/// so the flood is never included and costs its senders nothing; no
/// batch settles, however many times the driver runs.
#[test]
fn a_flood_at_the_top_guard_price_freezes_settlement_for_free() {
    let (mut e, _, x, b) = executor_with_a_later_batch();
    let accomplice = trader(3);
    let minted = forge_ahead(&mut e, &x, b, accomplice.address());
    let flooders = fresh_keys(79_000, 3);
    pay_each(&mut e, &trader(2), &flooders[..2], gridledger_rollup::types::coins(450_000), 2);
    pay_each(&mut e, &trader(3), &flooders[2..], gridledger_rollup::types::coins(450_000), 1);
    let top = Amount(1 << MAX_GUARD_REPRICES);
    let before: Vec<u128> = flooders.iter().map(|f| balance(&e, f)).collect();
    let (mut n, mut reserved) = (0, 0);
    for f in &flooders {
        let (k, r) = flood_at(&mut e, f, top);
        n += k;
        reserved += r;
    }
    let (_, fin_before) = e.d.reader().progress().unwrap();
    let height = e.d.primary.tip().height;
    let runs = process_runs(&mut e, 26, 5, false);
    let (_, fin_after) = e.d.reader().progress().unwrap();
    let paid: Vec<u128> = flooders.iter().zip(&before).map(|(f, b)| b - balance(&e, f)).collect();
    let why = format!(
        "X forged batch {b} ahead; {n} junk calls at gas price {top:?} reserving {reserved} minor units; blocks sealed {}; flooders paid {paid:?} minor \
         units; settled up to {fin_before} -> {fin_after}; forgery overturned {}; runs {runs:?}",
        e.d.primary.tip().height - height,
        e.d.batch_header(b).unwrap().overturned
    );
    assert_ne!(settled_root_of(&e, b), Some(state_root(&minted)), "the minting root settled: {why}");
    assert!(
        runs.iter().any(|r| r.is_ok()) || !matches!(e.d.process(&mut rng(40)), Err(DriverError::Unchecked { .. })),
        "settlement frozen: {why}"
    );
    assert!(paid.iter().sum::<u128>() > 0, "the flood was not included and paid for: {why}");
}

/// Finding [2]: no forgery, every party honest but one: a sybil fills
/// the primary mempool with junk at the driver's own gas price (1, the
/// lowest), so nothing the driver sends outside the guard (the
/// executors' postings, `close`, `finalize`) is admitted: those calls are
/// never repriced. Every `process` fails at its first call, before it
/// seals anything, so the flood is never included and costs nothing; no
/// batch ever settles.
#[test]
fn a_flood_at_the_base_price_freezes_honest_settlement_for_free() {
    let mut e = or_funded_with(2);
    record_batches(&mut e, 4);
    base_price_flood(e);
}

/// Finding [2] in IOR itself (`Mode::Ior`): the same flood at the
/// base gas price stops every `process` before any batch settles.
#[test]
fn a_flood_at_the_base_price_freezes_ior_settlement_for_free() {
    let mut e = open(config(gridledger_rollup::driver::Mode::Ior, 4, 2, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), gridledger_rollup::types::coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    record_batches(&mut e, 4);
    base_price_flood(e);
}

/// A sybil of one party fills the primary mempool with junk at gas price
/// 1 (the driver's), then `process` runs five times: some batch must
/// settle.
fn base_price_flood(mut e: Env) {
    let flooder = fresh_keys(79_100, 1);
    pay_each(&mut e, &trader(2), &flooder, gridledger_rollup::types::coins(5_000), 1);
    let before = balance(&e, &flooder[0]);
    let (n, reserved) = flood_at(&mut e, &flooder[0], Amount(1));
    let (_, fin_before) = e.d.reader().progress().unwrap();
    let height = e.d.primary.tip().height;
    let runs = process_runs(&mut e, 26, 5, false);
    let (_, fin_after) = e.d.reader().progress().unwrap();
    let why = format!(
        "{n} junk calls at gas price 1 reserving {reserved} minor units; blocks sealed {}; the flooder paid {} minor \
         units; settled up to {fin_before} -> {fin_after}; runs {runs:?}",
        e.d.primary.tip().height - height,
        before - balance(&e, &flooder[0])
    );
    assert!(fin_after > fin_before, "settlement frozen: {why}");
    assert!(before > balance(&e, &flooder[0]), "the flood was not included and paid for: {why}");
}

/// Control: without the flood the same runs settle the recorded batches
/// (the freeze above is the flood's).
#[test]
fn without_the_flood_the_batches_settle() {
    let mut e = or_funded_with(2);
    record_batches(&mut e, 4);
    let (_, fin_before) = e.d.reader().progress().unwrap();
    let r = e.d.process(&mut rng(26));
    let (_, fin_after) = e.d.reader().progress().unwrap();
    assert!(fin_after > fin_before, "settled up to {fin_before} -> {fin_after}; run {:?}", r.map(|s| s.len()));
}

/// Every validator colludes (issue 11 item 2); executor Y forges a batch
/// ahead minting a fresh accomplice 10 coin; every trader's primary
/// wallet holds `wallet`. Returns (stolen, summary).
fn colluding_validators_and_wallets(wallet: Amount) -> (bool, String) {
    let mut e = or_funded_with(3);
    all_validators_collude(&mut e);
    let fin = record_batches(&mut e, 12);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let b = (fin + 1..next).find(|b| executor_of(&e, *b).address() != x).expect("another executor's batch ahead");
    let y = executor_of(&e, b);
    // A fresh accomplice with coin for its withdrawal's fees.
    let accomplice = fresh_keys(79_300, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&accomplice), gridledger_rollup::types::coins(200), 1);
    for i in 0..4 {
        leave_in_wallet(&mut e, &trader(i), wallet, 79_200);
    }
    let minted = forge_ahead(&mut e, &y, b, accomplice.address());
    let bonds = e.d.bonded_challenges;
    let runs = process_runs(&mut e, 26, 3, true);
    let stolen = settled_root_of(&e, b) == Some(state_root(&minted));
    let gained = if stolen { withdraw_minted(&mut e, &minted, &accomplice).0 } else { 0 };
    let fees: Vec<(u64, bool)> = e.d.gas.iter().filter(|g| g.method == "dispute").map(|g| (g.gas, g.success)).collect();
    (
        stolen,
        format!(
            "forged {b}; wallets {wallet:?}; stolen {stolen}; the accomplice withdrew {gained} minor units; overturned {}; bonded challenges {}; dispute gas {fees:?}; \
             runs {runs:?}",
            e.d.batch_header(b).unwrap().overturned,
            e.d.bonded_challenges - bonds
        ),
    )
}

/// Control: every validator colludes, every trader's wallet holds 200
/// coin: the bonded challenge overturns the forgery (its dispute used
/// about 244,000 gas, a quarter of a coin at the driver's price).
#[test]
fn wallets_of_200_coin_overturn_the_forgery() {
    let (stolen, why) = colluding_validators_and_wallets(gridledger_rollup::types::coins(200));
    assert!(!stolen, "{why}");
}

/// Finding [3]: every validator colludes (issue 11 item 2) and every
/// trader's primary wallet holds 100 coin: ten times the 10 coin bond
/// and some 400 times the dispute's real fee, but under the 111 coin the
/// guard demands (the bond plus the fee reservation of its fixed gas
/// limits, 1 M + 100 M gas). Every alarmed owner is passed over, nothing
/// is sent, the posting is marked backed without a check (no
/// `Unchecked`), and the minting root settles; the accomplice withdraws.
#[test]
fn wallets_of_100_coin_overturn_the_forgery() {
    let (stolen, why) = colluding_validators_and_wallets(gridledger_rollup::types::coins(100));
    assert!(!stolen, "a forged root settled: {why}");
}

/// Held up: a sybil queues 60 junk calls (a few blocks' worth) at twice
/// the driver's gas price, the mempool not full: the driver's calls are
/// admitted at price 1, wait behind the junk as it is sealed (the sybil
/// pays for it, about 2,000 coin) and the batches settle.
#[test]
fn blocks_of_dearer_junk_delay_but_do_not_stop_settlement() {
    use gridledger_ledger::devnet::call;
    let mut e = or_funded_with(2);
    record_batches(&mut e, 4);
    let k = fresh_keys(79_400, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&k), gridledger_rollup::types::coins(50_000), 1);
    let before = balance(&e, &k);
    let chain_id = e.d.primary.chain_id();
    let size = gridledger_rollup::driver::MAX_TX_BYTES - 4_096;
    for _ in 0..60 {
        let nonce = e.d.primary.next_nonce(&k.address());
        let gas = 21_000 + 4 * size as u64 + 10_000;
        let tx = call(&k, chain_id, nonce, gridledger_rollup::IOR_PRIMARY_ID, "junk", vec![0; size], Amount::ZERO, gas);
        let tx = gridledger_ledger::Transaction { gas_price: Amount(2), ..tx.tx }.sign(&k);
        e.d.primary.submit(&tx).unwrap();
    }
    let (_, fin_before) = e.d.reader().progress().unwrap();
    let r = e.d.process(&mut rng(26));
    let (_, fin_after) = e.d.reader().progress().unwrap();
    let paid = before - balance(&e, &k);
    let why = format!("settled {fin_before} -> {fin_after}; the sybil paid {paid}; run {:?}", r.map(|s| s.len()));
    assert!(fin_after > fin_before, "{why}");
    assert!(paid > 0, "the junk was included and paid for: {why}");
}

/// Finding [3]'s rule (a): every validator colludes and every trader's
/// wallet holds 5 coin, under the 10 coin bond: no alarmed owner can
/// challenge, so the posting is not counted as backed: each run stops
/// with `Unchecked` before the clock passes it, and the minting root does
/// not settle.
#[test]
fn wallets_under_the_bond_stop_the_run_unchecked() {
    let (stolen, why) = colluding_validators_and_wallets(gridledger_rollup::types::coins(5));
    assert!(!stolen, "a forged root settled: {why}");
    assert!(why.contains("could not be sent") && why.contains("no alarmed owner"), "{why}");
}
