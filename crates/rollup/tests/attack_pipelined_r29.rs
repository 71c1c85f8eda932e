//! Attack round 29 on the improved optimistic rollup (issue 11): the IOR
//! driver's sealing after the r27 [2] follow-up (`checked`,
//! `unchecked_due`, `seal_due`, `call_before`, `seal_submitted`,
//! `driver_call`: every block sealed while the next batch's posting is
//! unchecked goes one at a time and none at or past its bound).
//!
//! Finding [1] (critical: theft, every validator honest, `Mode::Ior` with
//! the demo's 5 s window): the bound is decided when a driver call is
//! *sent*, from what is already on chain. A posting still in the mempool
//! is not on chain, so a call sent then is sealed the old way
//! (`call_on`: `seal` commits blocks until the mempool is empty), and the
//! posting is included in the first of those blocks. The forging executor
//! sends its forged posting (a post-state root minting it 10 coin) to the
//! mempool, followed by cheap junk at the lowest gas price, 1 (1,800 empty
//! calls, six blocks of 300: 72 coin). The next call of the driver (the
//! honest executor's own `sc_cr` in `process` below, or a trader's
//! `fund`) is sent while no posting is on chain: its seal includes the
//! forged posting first (earlier arrival at the same price), then seals
//! all the junk, one block a second, past the posting's window, before
//! any check runs. Every later `process` stops `Unchecked` (the window is
//! over before the check's first block), settlement is frozen, and the
//! forger's own `finalize` settles the forged root undisputed. What
//! should happen: a driver call's seal is bounded whenever a posting
//! appears in it (seal one block at a time and re-evaluate the bound
//! after each block), so no block is sealed past the window of a posting
//! whose checks are not on chain; and an `Unchecked` stop must not leave
//! the forgery to settle (the check of a posting in its window is the
//! only thing that protects the funds).
//!
//! Finding [2] (critical under issue 11 item 2's threat, every validator
//! bribed: theft): the bonded challenge's wallet check (r27 [1] fix)
//! asks for the bond plus the two calls' reservation at the driver's base
//! price, but in `Mode::Ior` the challenge runs in the second half of the
//! window under `call_before`, which reprices four-fold per block and
//! silently keeps the old price when the wallet cannot cover the dearer
//! replacement. With 11 coin per wallet (what the r27 [1] test calls
//! enough), 900 junk calls at gas price 2 (72 coin): the commitment
//! (no bond) gets on chain, the dispute (10 coin bond plus its
//! reservation at the dearer price) is never included before the window
//! ends; the forged root settles through the forger's own `finalize`.
//!
//! Finding [3] (high: theft at a bounded cost, every validator bribed):
//! with 200 coin per wallet, 900 junk calls at gas price 17 (612 coin)
//! fill the blocks the backup checks have after the meters' turn
//! (half the 5 s window); the commitment is repriced 1, 4, 16 and never
//! included; the forged root settles. The check's reach is the repricing
//! schedule times the blocks left, so the cost of a theft is a few
//! blocks of junk at a small multiple of the base price, whatever is at
//! stake. The ledger has a bounded duty lane for such calls
//! (`NativeContract::duty`), which the primary contract does not use for
//! `commit_dispute` and the disputes.
//!
//! In all three, `DriverError::Unchecked` is not a safe stop: the driver
//! refuses to finalize, but nothing stops the forger's own `finalize`
//! after the window.
//!
//! Fixed: [1] by sealing every IOR driver call one block at a time with
//! the bound evaluated again before each block; [2] and [3] by a
//! congestion-aware dispute window (the primary contract holds a
//! posting's window open, and refuses `finalize`, while any of the last
//! `QUIET_BLOCKS` blocks was full), which also makes an `Unchecked` stop
//! safe (see `tests/congestion_window.rs`).
//!
//! Held up: the bonded dispute of a forged batch of 1, 8 and 24 ATs stays
//! under `dispute_gas_limit` with `DISPUTE_BASE_GAS` at 300,000 (a third
//! to two thirds of it); `gridledger ior day` (cli `--test ior`) runs.
//!
//! Controls (held up): without the junk the same mempool-sent forgery is
//! overturned; without junk an 11 coin bonded challenge overturns the
//! forgery; 200 coin challenges outbid 2,400 junk calls at price 2. The
//! dispute's gas (321,376 for the one-entry batch) stays under its
//! limit after `DISPUTE_BASE_GAS` fell to 300,000.

mod common;

use common::pipelined::process_runs;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::call;
use gridledger_ledger::ChainClient as _;
use gridledger_ledger::TxStatus;
use gridledger_rollup::driver::DRIVER_GAS_LIMIT;
use gridledger_rollup::primary::BatchState;
use gridledger_rollup::types::coins;
use gridledger_rollup::{args, IOR_PRIMARY_ID};

/// `n` empty junk calls from `k` at the lowest gas price (1), sent to the
/// mempool, not sealed.
fn cheap_junk(e: &mut Env, k: &KeyPair, n: u64) {
    let chain_id = e.d.primary.chain_id();
    for _ in 0..n {
        let nonce = e.d.primary.next_nonce(&k.address());
        let tx = call(k, chain_id, nonce, IOR_PRIMARY_ID, "junk", vec![], Amount::ZERO, 40_000);
        e.d.primary.submit(&tx).unwrap();
    }
}

/// What the attack left: (overturned, forged root settled, summary).
type Outcome = (bool, bool, String);

/// IOR, 5 s window, every validator honest: a one-AT batch recorded and
/// closed; its executor sends a forged posting (minting itself 10 coin)
/// to the mempool at the lowest price, unsealed, then `junk` empty calls
/// at the same price. `trigger` makes the driver's next call; then
/// `process` runs up to three times, and, if the batch is still open
/// after its window, the forger sends `finalize` itself.
fn mempool_forgery(junk: u64, trigger: impl FnOnce(&mut Env)) -> Outcome {
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).unwrap();
    e.d.primary.seal();
    let batch = e.d.batch_header(1).unwrap().id;
    let flooder = fresh_keys(81_800, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&flooder), coins(1_000), 1);
    let before = e.d.primary.account(&flooder.address()).balance.0;
    let (exec, sub, _, _) = forged_posting(&e, batch);
    let chain_id = e.d.primary.chain_id();
    let nonce = e.d.primary.next_nonce(&exec.address());
    let tx = call(&exec, chain_id, nonce, IOR_PRIMARY_ID, "sc_cr", args(&sub), Amount::ZERO, DRIVER_GAS_LIMIT);
    e.d.primary.submit(&tx).unwrap();
    cheap_junk(&mut e, &flooder, junk);
    let t0 = e.d.primary.tip().timestamp;
    trigger(&mut e);
    let runs = process_runs(&mut e, 29, 3, true);
    let mut h = e.d.batch_header(batch).unwrap();
    let mut finalized = None;
    if h.state == BatchState::Open && h.post_root == Some(sub.post_root) {
        // The forger settles its own posting once the window is over.
        let end = h.complete_at.unwrap_or(0) + e.d.cfg.window_ms();
        if e.d.now() <= end {
            e.d.set_time(end + 1);
        }
        let a = e.d.finalize_args(batch).unwrap();
        let r = e.d.primary_call(&exec, "finalize", a, Amount::ZERO).unwrap();
        finalized = Some(r.status.clone());
        h = e.d.batch_header(batch).unwrap();
    }
    let forged_settled = matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(sub.post_root);
    let paid = before - e.d.primary.account(&flooder.address()).balance.0;
    let why = format!(
        "{junk} junk calls at price 1; the flooder paid {paid} minor units; clock moved {} ms; posted at {:?}, \
         window {} ms; overturned {}; forged root settled {forged_settled}; state {:?}; runs {runs:?}; the \
         forger's finalize {finalized:?}",
        e.d.primary.tip().timestamp - t0,
        h.complete_at,
        e.d.cfg.window_ms(),
        h.overturned,
        h.state
    );
    (h.overturned, forged_settled, why)
}

/// Finding [1]: the forged posting and 1,800 junk calls at price 1 in
/// the mempool; `process` (the honest executor's `sc_cr`, sent while no
/// posting is on chain) seals the forged posting and all the junk past
/// the window; the check never runs, every run stops `Unchecked`, and the
/// forger's `finalize` settles the forged root.
#[test]
fn a_posting_in_the_mempool_is_not_sealed_past_its_window_by_process() {
    let (overturned, forged, why) = mempool_forgery(1_800, |_| {});
    assert!(!forged, "the forged root settled: {why}");
    assert!(overturned, "the forged root was not overturned: {why}");
}

/// Finding [1] through a trader's `fund` (any driver call sent while no
/// posting is on chain goes the same way).
#[test]
fn a_posting_in_the_mempool_is_not_sealed_past_its_window_by_fund() {
    let (overturned, forged, why) = mempool_forgery(1_800, |e| {
        let r = e.d.fund(&trader(3), coins(1));
        assert!(r.is_ok_and(|r| r.status == TxStatus::Success), "fund");
    });
    assert!(!forged, "the forged root settled: {why}");
    assert!(overturned, "the forged root was not overturned: {why}");
}

/// Control: the same forgery sent to the mempool without junk is
/// overturned by the assigned validator.
#[test]
fn without_junk_the_mempool_forgery_is_overturned() {
    let (overturned, forged, why) = mempool_forgery(0, |_| {});
    assert!(!forged && overturned, "{why}");
}

/// `n` empty junk calls from `k` at gas price `price`, sent to the
/// mempool, not sealed.
fn junk_at(e: &mut Env, k: &KeyPair, n: u64, price: Amount) {
    let chain_id = e.d.primary.chain_id();
    for _ in 0..n {
        let nonce = e.d.primary.next_nonce(&k.address());
        let tx = call(k, chain_id, nonce, IOR_PRIMARY_ID, "junk", vec![], Amount::ZERO, 40_000);
        let tx = gridledger_ledger::Transaction { gas_price: price, ..tx.tx }.sign(k);
        e.d.primary.submit(&tx).unwrap();
    }
}

/// IOR, 5 s window, every validator colluding (silent as assigned
/// validator and as delegate), every trader's primary wallet holding
/// `wallet`: the executor of a one-AT batch posts a root minting itself
/// 10 coin (sealed), then a sybil sends `junk` empty calls at gas price
/// `price`. `process` runs up to three times, then the forger sends
/// `finalize` itself if the batch is still open.
fn bonded_forgery(wallet: Amount, junk: u64, price: Amount) -> Outcome {
    use common::pipelined::{all_validators_collude, leave_in_wallet};
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    all_validators_collude(&mut e);
    let flooder = fresh_keys(81_900, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&flooder), coins(2_000), 1);
    for i in 0..4 {
        leave_in_wallet(&mut e, &trader(i), wallet, 81_600 + i);
    }
    let (b, s) = (trader(0), trader(1));
    let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).unwrap();
    e.d.primary.seal();
    let batch = e.d.batch_header(1).unwrap().id;
    let before = e.d.primary.account(&flooder.address()).balance.0;
    let (exec, sub, _, _) = forged_posting(&e, batch);
    forge_last_root(&mut e, batch);
    junk_at(&mut e, &flooder, junk, price);
    let t0 = e.d.primary.tip().timestamp;
    let runs = process_runs(&mut e, 29, 3, true);
    let mut h = e.d.batch_header(batch).unwrap();
    let mut finalized = None;
    if h.state == BatchState::Open && h.post_root == Some(sub.post_root) && !h.overturned {
        let end = h.complete_at.unwrap_or(0) + e.d.cfg.window_ms();
        if e.d.now() <= end {
            e.d.set_time(end + 1);
        }
        let a = e.d.finalize_args(batch).unwrap();
        let r = e.d.primary_call(&exec, "finalize", a, Amount::ZERO).unwrap();
        finalized = Some(r.status.clone());
        h = e.d.batch_header(batch).unwrap();
    }
    let forged_settled = matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(sub.post_root);
    let paid = before - e.d.primary.account(&flooder.address()).balance.0;
    let fees: Vec<(String, u64, bool)> =
        e.d.gas
            .iter()
            .filter(|g| g.method == "dispute" || g.method == "commit_dispute" || g.method == "dispute_state")
            .map(|g| (g.method.clone(), g.gas, g.success))
            .collect();
    let why = format!(
        "wallets {wallet:?}; {junk} junk calls at price {price:?}; the flooder paid {paid} minor units; clock moved {} \
         ms; posted at {:?}; overturned {}; forged root settled {forged_settled}; state {:?}; challenge calls \
         {fees:?}; runs {runs:?}; the forger's finalize {finalized:?}",
        e.d.primary.tip().timestamp - t0,
        h.complete_at,
        h.overturned,
        h.state
    );
    (h.overturned, forged_settled, why)
}

/// Finding [2]: every validator colludes, every trader's wallet holds
/// 11 coin (enough for the bond and the challenge at the driver's price,
/// the r27 [1] fix's wallet check); 900 junk calls at gas price 2 (three
/// blocks, 72 coin) after the forged posting. The challenge's commitment
/// gets on chain at a higher price, the dispute cannot be repriced above
/// the junk (bond plus the dispute's reservation at four times the price
/// exceed the wallet), the window runs out, every run stops `Unchecked`
/// and the forger's `finalize` settles the forged root.
#[test]
fn an_affordable_bonded_challenge_is_not_priced_out_by_cheap_junk() {
    let (_, forged, why) = bonded_forgery(coins(11), 900, Amount(2));
    assert!(!forged, "the forged root settled: {why}");
}

/// Finding [3]: as [2] with 200 coin per wallet (the r27 control's) and
/// 900 junk calls at gas price 17 (612 coin): the challenge's commitment
/// is repriced 1, 4, 16 in the blocks left after the meters' turn (the
/// second half of the window) and never gets on chain; the forged root
/// settles. Disputes compete with any traffic on price alone (the
/// primary contract names no duty for the ledger's duty lane).
#[test]
fn the_bonded_challenge_is_not_shut_out_by_three_blocks_of_junk() {
    let (_, forged, why) = bonded_forgery(coins(200), 900, Amount(17));
    assert!(!forged, "the forged root settled: {why}");
}

/// Control for [2]: without junk the 11 coin challenge overturns the
/// forgery (the batch settles disputed, on the chain's run).
#[test]
fn without_junk_the_11_coin_bonded_challenge_overturns() {
    let (_, forged, why) = bonded_forgery(coins(11), 0, Amount(1));
    assert!(!forged && why.contains("disputed: true"), "{why}");
}

/// Control for [2] and [3]: 200 coin wallets outbid 2,400 junk calls at
/// price 2.
#[test]
fn a_200_coin_bonded_challenge_outbids_junk_at_price_2() {
    let (_, forged, why) = bonded_forgery(coins(200), 2_400, Amount(2));
    assert!(!forged && why.contains("disputed: true"), "{why}");
}

/// Held up (`DISPUTE_BASE_GAS` at 300,000): a forged IOR batch of 1, 8
/// and 24 ATs, every validator colluding, is overturned by the bonded
/// challenge, whose dispute uses less gas than `dispute_gas_limit` gives
/// it even without its arguments' bytes (measured: 321,836 of 464,784;
/// 759,432 of 1,618,272; 1,900,380 of 4,254,816).
#[test]
fn the_bonded_dispute_of_a_larger_batch_stays_under_its_gas_limit() {
    use common::pipelined::all_validators_collude;
    for n in [1usize, 8, 24] {
        let mut e = funded_with_window(5_000);
        settle_funding(&mut e);
        all_validators_collude(&mut e);
        let (b, s) = (trader(0), trader(1));
        let txs: Vec<_> = (0..n)
            .map(|i| (b.clone(), at(&terms(&b, &s, Amount(200_000), 100, 8 * HOUR + i as u64 * 15 * MIN), &s)))
            .collect();
        e.d.submit_block(&txs).unwrap();
        e.d.primary.seal();
        let batch = e.d.batch_header(1).unwrap().id;
        let input = e.d.batch_input(batch).unwrap();
        assert_eq!(input.entries.len(), n);
        let (_, sub, _, _) = forged_posting(&e, batch);
        forge_last_root(&mut e, batch);
        let runs = process_runs(&mut e, 29, 3, true);
        let h = e.d.batch_header(batch).unwrap();
        let disputes: Vec<(u64, bool)> =
            e.d.gas.iter().filter(|g| g.method == "dispute").map(|g| (g.gas, g.success)).collect();
        let limit = gridledger_rollup::driver::dispute_gas_limit(&e.d.cfg.params, &input, 0);
        let why = format!("{n} ATs: state {:?}; disputes {disputes:?}; limit {limit}; runs {runs:?}", h.state);
        assert!(matches!(h.state, BatchState::Settled { disputed: true, .. }), "{why}");
        assert_ne!(h.post_root, Some(sub.post_root), "{why}");
        assert!(!disputes.is_empty() && disputes.iter().all(|d| d.1 && d.0 < limit), "{why}");
    }
}
