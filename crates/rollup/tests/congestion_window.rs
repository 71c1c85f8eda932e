//! The congestion-aware dispute window (attack r29 [2] [3] and the
//! `Unchecked` stop): past `window_ms`, the primary contract holds a
//! posting's window open while one of the `QUIET_BLOCKS` blocks just
//! below the current one (above the posting's block) was full: a dispute
//! is accepted and `finalize` refused. Junk that fills the blocks after a
//! forged posting delays its settlement at the flooder's running cost
//! instead of running the window out, and a driver check that stops
//! `Unchecked` behind the junk leaves nothing for the forger's own
//! `finalize` to settle.

mod common;

use common::pipelined::{all_validators_collude, leave_in_wallet, process_runs};
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::call;
use gridledger_ledger::ChainClient as _;
use gridledger_ledger::TxStatus;
use gridledger_rollup::primary::{BatchState, QUIET_BLOCKS};
use gridledger_rollup::types::coins;
use gridledger_rollup::IOR_PRIMARY_ID;

/// `n` empty junk calls from each of `ks` at gas price `price`, sent to
/// the mempool, not sealed.
fn junk_at(e: &mut Env, ks: &[KeyPair], n: u64, price: Amount) {
    let chain_id = e.d.primary.chain_id();
    for k in ks {
        for _ in 0..n {
            let nonce = e.d.primary.next_nonce(&k.address());
            let tx = call(k, chain_id, nonce, IOR_PRIMARY_ID, "junk", vec![], Amount::ZERO, 40_000);
            let tx = gridledger_ledger::Transaction { gas_price: price, ..tx.tx }.sign(k);
            e.d.primary.submit(&tx).unwrap();
        }
    }
}

/// IOR, 5 s window, a one-AT batch recorded and closed, every trader's
/// primary wallet holding `wallet`, and `n` flooders with 2,000 coin each;
/// returns the batch and the flooders.
fn batch_with_wallets(wallet: Amount, n: usize) -> (Env, u64, Vec<KeyPair>) {
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    let ks = fresh_keys(82_900, n);
    pay_each(&mut e, &trader(2), &ks, coins(2_000), 1);
    for i in 0..4 {
        leave_in_wallet(&mut e, &trader(i), wallet, 82_600 + i);
    }
    let (b, s) = (trader(0), trader(1));
    let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).unwrap();
    e.d.primary.seal();
    let batch = e.d.batch_header(1).unwrap().id;
    (e, batch, ks)
}

/// [`forged_posting`] with the honest post-state roots.
fn honest_posting(e: &Env, batch: u64) -> (KeyPair, gridledger_rollup::primary::SubmitTcrs) {
    use gridledger_rollup::exec::{execute_leaves, OffChain};
    let (exec, mut sub, _, _) = forged_posting(e, batch);
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut honest = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    gridledger_rollup::state::fill_post_roots(&p, &full, &input.entries, &mut honest);
    sub.leaves = honest.iter().map(|l| l.posted()).collect();
    sub.post_root = sub.leaves.last().unwrap().post_root;
    (exec, sub)
}

/// The `Unchecked` stop is safe: every validator colludes, every trader's
/// wallet holds 11 coin (the challenge's commitment outbids junk at price
/// 2 once repriced, its dispute cannot be), and 4,800 junk calls at
/// price 2 (16 full blocks) follow the forged posting: the driver's check
/// waits past the window while the blocks stay full, up to
/// `MAX_HELD_OPEN_BLOCKS`, then stops `Unchecked`. The forger's own
/// `finalize` after the window is refused (the blocks below it were
/// full), and the next runs put the dispute on chain once the junk is
/// through: the forged root is overturned, never settled.
#[test]
fn an_unchecked_stop_leaves_the_forged_root_to_the_next_run() {
    let (mut e, batch, ks) = batch_with_wallets(coins(11), 2);
    all_validators_collude(&mut e);
    let (exec, sub, _, _) = forged_posting(&e, batch);
    forge_last_root(&mut e, batch);
    junk_at(&mut e, &ks, 2_400, Amount(2));
    let first = e.d.process(&mut rng(39));
    let why = format!("{:?}", first.as_ref().map(|s| s.len()));
    assert!(why.contains("Unchecked") || why.contains("not on chain"), "the first run did not stop unchecked: {why}");
    let h = e.d.batch_header(batch).unwrap();
    assert!(h.state == BatchState::Open && !h.overturned, "{h:?}");
    // The forger's own `finalize` once the window is over.
    let end = h.complete_at.unwrap() + e.d.cfg.window_ms();
    if e.d.now() <= end {
        e.d.set_time(end + 1);
    }
    let a = e.d.finalize_args(batch).unwrap();
    let r = e.d.primary_call(&exec, "finalize", a, Amount::ZERO).unwrap();
    let refused = format!("{:?}", r.status);
    assert!(refused.contains("held open"), "the forger's finalize was not refused: {refused}");
    assert_eq!(e.d.batch_header(batch).unwrap().state, BatchState::Open);
    let runs = process_runs(&mut e, 40, 4, true);
    let h = e.d.batch_header(batch).unwrap();
    let why = format!("state {:?}; overturned {}; runs {runs:?}", h.state, h.overturned);
    assert!(matches!(h.state, BatchState::Settled { disputed: true, .. }), "{why}");
    assert_ne!(h.post_root, Some(sub.post_root), "the forged root settled: {why}");
}

/// Attack r29 [2] and [3], the outcome beyond "not settled": junk at a
/// price the 11 coin challenge cannot outbid (2) and junk above the
/// check's repricing in the window (17, 200 coin wallets) both end with
/// the forged root overturned in the same run, the dispute on chain after
/// the window's `window_ms` while the blocks below it were full.
#[test]
fn the_bonded_challenge_overturns_after_the_junk() {
    for (wallet, price) in [(coins(11), Amount(2)), (coins(200), Amount(17))] {
        let (mut e, batch, ks) = batch_with_wallets(wallet, 1);
        all_validators_collude(&mut e);
        let (_, sub, _, _) = forged_posting(&e, batch);
        forge_last_root(&mut e, batch);
        junk_at(&mut e, &ks, 900, price);
        let runs = process_runs(&mut e, 41, 1, true);
        let h = e.d.batch_header(batch).unwrap();
        let why = format!("price {price:?}: state {:?}; runs {runs:?}", h.state);
        assert!(matches!(h.state, BatchState::Settled { disputed: true, .. }), "{why}");
        assert_ne!(h.post_root, Some(sub.post_root), "{why}");
    }
}

/// Delay, not freeze: an honest posting whose window ends while junk at a
/// price above the driver's fills the blocks is not final while they stay
/// full (`finalize` refused) and settles once `QUIET_BLOCKS` blocks with
/// room have passed.
#[test]
fn a_posting_settles_after_quiet_blocks_once_the_junk_stops() {
    let (mut e, batch, ks) = batch_with_wallets(coins(200), 1);
    // The executor posts the honest root.
    let (exec, sub) = honest_posting(&e, batch);
    assert_eq!(send_tcrs(&mut e, &exec, batch, gridledger_rollup::args(&sub)).status, TxStatus::Success);
    let h = e.d.batch_header(batch).unwrap();
    let end = h.complete_at.unwrap() + e.d.cfg.window_ms();
    e.d.set_time(end + 1);
    // Three full blocks of junk at price 3, sealed.
    junk_at(&mut e, &ks, 900, Amount(3));
    for _ in 0..3 {
        e.d.primary.seal_block().unwrap();
    }
    let a = e.d.finalize_args(batch).unwrap();
    let r = e.d.primary_call(&exec, "finalize", a, Amount::ZERO).unwrap();
    assert!(format!("{:?}", r.status).contains("held open"), "{:?}", r.status);
    // Quiet blocks (one transfer each; the refused finalize's block is the
    // first).
    let sinks = fresh_keys(82_950, QUIET_BLOCKS as usize - 1);
    pay_each(&mut e, &trader(3), &sinks, coins(1), 1);
    let a = e.d.finalize_args(batch).unwrap();
    let r = e.d.primary_call(&exec, "finalize", a, Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let h = e.d.batch_header(batch).unwrap();
    assert!(matches!(h.state, BatchState::Settled { disputed: false, .. }), "{:?}", h.state);
    assert_eq!(h.post_root, Some(sub.post_root));
}
