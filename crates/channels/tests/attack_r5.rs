//! Round-5 attacks on the channel machine (the round-4 fixes: payments wait
//! behind an unallocated top-up, close waits for the window, withdrawal
//! re-sends) by a reviewer who did not write them. Tests marked
//! `#[ignore = "attack: ..."]` reproduce a finding and fail on the code they
//! were written against (expected vs observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-channels --test attack_r5 -- --ignored`

mod common;

use common::{duo, pay_req};
use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChainEvent, ChannelError, ChannelEvent, Input, Request};
use gridledger_contracts::cns::{ChannelStatus, Funding};
use gridledger_core::Amount;
use gridledger_ledger::client::ChainClient;

fn counter(d: &Duo, side: usize) -> u64 {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().state.counter
}

/// Drops every `ToppedUp` the chain routed to `side` (a peer that does not
/// see, or pretends not to see, the other side's top-up).
fn blind_to_top_ups(d: &mut Duo, side: usize) {
    d.parties[side].chain_inbox.retain(|e| !matches!(e, ChainEvent::ToppedUp { .. }));
}

/// Finding (liveness; a counterparty, or a merely lagging node, freezes the
/// payer's payments forever): since round 4 a payment is answered `Busy`
/// while the chain shows a top-up of the payer that no state allocates
/// (`allocation_due`), "until the allocation is proposed". But the
/// allocation needs the *peer's* co-signature, and the peer refuses it for
/// as long as its own chain view does not show the top-up ("allocates a
/// top-up of … while the chain shows …"). A peer that never admits the
/// top-up (malicious, or its node stuck) therefore stops every payment of
/// the other side, with no bound, no fallback to paying on the old
/// balance, no typed error and no event: the top-up request is never
/// answered either. The peer loses nothing by doing so (griefing).
///
/// Expected: after a bounded time (a few t_Δ) payments on the balance the
/// channel already had go through again (or the top-up is reported failed
/// and stops gating payments).
/// Observed: every payment over 10 × t_Δ is refused `Busy`; the co-signed
/// counter never moves.
#[test]
fn a_peer_that_never_admits_a_top_up_cannot_freeze_payments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    let before = counter(&d, 0);
    // Side 0 tops up on chain; side 1 never admits seeing it.
    d.input(0, Input::User(Request::TopUp { amount: Amount(5_000), funding: Funding::Deposit })).unwrap();
    blind_to_top_ups(&mut d, 1);
    d.pump();
    assert_eq!(d.channel().unwrap().topped_up[0], Amount(5_000), "the top-up is on chain");
    let mut busy = 0;
    let mut ok = 0;
    for _ in 0..100 {
        d.advance(cfg.t_delta_ms / 10);
        blind_to_top_ups(&mut d, 1);
        match d.input(0, Input::User(pay_req(1_000))) {
            Err(ChannelError::Busy) => busy += 1,
            Ok(()) => ok += 1,
            Err(e) => panic!("{e}"),
        }
        d.pump();
    }
    let after = counter(&d, 0);
    let sent = d.parties[0].events.iter().filter(|e| matches!(e, ChannelEvent::PaymentSent { .. })).count();
    assert!(
        after > before + 1 && busy < 100,
        "over 10 t_delta: {busy} payments refused Busy, {ok} accepted, counter {before} -> {after}, \
         PaymentSent {sent} (the first payment only)"
    );
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Open);
    let deferred: Vec<_> =
        d.parties[0].events.iter().filter(|e| matches!(e, ChannelEvent::TopUpDeferred { .. })).cloned().collect();
    assert_eq!(deferred.len(), 1, "reported once: {deferred:?}");
    assert!(matches!(deferred[0], ChannelEvent::TopUpDeferred { amount } if amount == Amount(5_000)));
    // The close still refunds the unallocated top-up (coin conserved).
    let _ = d.request(0, Request::Close);
    for _ in 0..60 {
        d.advance(cfg.t_delta_ms / 10);
    }
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Closed);
    d.assert_coins_conserved();
}

/// Fix of the finding above, the other half: a top-up deferred after `t_Δ`
/// stays pending and is proposed again between payments, so once the peer
/// sees it (its chain view catches up) it is allocated, with payments
/// going on meanwhile.
#[test]
fn a_deferred_top_up_is_allocated_once_the_peer_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    d.input(0, Input::User(Request::TopUp { amount: Amount(5_000), funding: Funding::Deposit })).unwrap();
    blind_to_top_ups(&mut d, 1);
    d.pump();
    for _ in 0..20 {
        d.advance(cfg.t_delta_ms / 10);
        blind_to_top_ups(&mut d, 1);
        let _ = d.input(0, Input::User(pay_req(1_000)));
        d.pump();
    }
    assert!(d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::TopUpDeferred { .. })));
    let l = |d: &Duo, s: usize| d.parties[s].machine.as_ref().unwrap().latest().unwrap().state.resize.topped_up[0];
    assert_eq!(l(&d, 0), Amount::ZERO, "not allocated while the peer is blind");
    // The peer's chain view catches up.
    d.parties[1].chain_inbox.push_back(ChainEvent::ToppedUp { side: 0, total: Amount(5_000) });
    for _ in 0..30 {
        d.advance(cfg.t_delta_ms / 10);
        let _ = d.input(0, Input::User(pay_req(1_000)));
        d.pump();
    }
    assert_eq!((l(&d, 0), l(&d, 1)), (Amount(5_000), Amount(5_000)), "allocated on both sides");
    assert_eq!(counter(&d, 0), counter(&d, 1));
}

/// Ticks side `side` only.
fn tick_only(d: &mut Duo, side: usize, ms: u64) {
    let now = d.chain.now().saturating_add(ms);
    d.chain.set_now(now);
    let _ = d.input(side, Input::Tick(now));
}

/// Held up (tried: a counterparty exploits "close waits for in-flight
/// proposals" to pin a fault on an honest party, issue item 4): side 0 asks to
/// withdraw (now queued and proposed in turn); side 1 signs the proposal
/// and withholds its acceptance. Side 0's user then asks to close: the
/// close waits for the window, the withdrawal falls back, the final state
/// meets silence, and at the close timeout side 0 disputes with its newest
/// co-signed state — the one before the withdrawal, the only one it holds.
/// Side 1 answers the dispute with the withdrawal state (it holds it
/// co-signed). The contract excuses the raiser's own resize built directly
/// on the disputed state (`own_resize` in `channel_resolve`): no fault,
/// the channel settles on the withdrawal state, coin conserved.
#[test]
fn withholding_a_withdrawals_acceptance_does_not_pin_a_fault_on_the_closer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap(); // counter 1, co-signed
    let faults0 = d.msc(d.sids[0]).disputes_at_fault;
    // Side 0 withdraws; side 1 signs and withholds its acceptance.
    d.input(0, Input::User(Request::Withdraw { amount: Amount(10_000) })).unwrap();
    assert!(d.deliver_one(1), "the withdrawal proposal reaches side 1");
    let withheld = d.parties[0].inbox.pop_back();
    assert!(withheld.is_some(), "side 1 signed it (acceptance withheld)");
    d.parties[0].inbox.clear();
    let held = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert_eq!(held.resize.withdrawn[0], Amount(10_000), "side 1 holds the withdrawal co-signed");
    // Side 0's user closes; side 1 stays silent on the link from now on
    // (it still watches the chain).
    d.input(0, Input::User(Request::Close)).unwrap();
    for _ in 0..400 {
        d.parties[1].inbox.clear();
        d.parties[0].inbox.clear();
        tick_only(&mut d, 0, 100);
        d.parties[1].inbox.clear();
        d.pump();
        if d.channel().unwrap().status == ChannelStatus::Closed {
            break;
        }
    }
    // Let the dispute (and any settle) run out with both ticking.
    for _ in 0..40 {
        d.parties[1].inbox.clear();
        d.parties[0].inbox.clear();
        d.advance(cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    let faults = d.msc(d.sids[0]).disputes_at_fault;
    assert_eq!(
        faults, faults0,
        "side 0 (honest: it never held counter {} co-signed) got a dispute fault; channel {:?} at counter {}",
        held.counter, ch.status, ch.latest.state.counter
    );
    d.assert_coins_conserved();
}

/// Finding (merchant/counterparty griefing of the round-4 withdrawal
/// re-send; fee drain): the re-send sends `channel_withdraw` with the
/// newest co-signed state, and the contract pays only with a state *newer*
/// than the registered one (`require_newer`). The peer holds the same
/// co-signed withdrawal state — first: as acceptor it signs last — and
/// registers it with `channel_update` (which pays no withdrawal) before the
/// withdrawer's own `channel_withdraw` (no transaction lost, no mempool
/// games: the acceptance is simply sent after the update). From then on every
/// re-send is refused "stale state: counter N is not above the registered
/// N", every t_Δ, for as long as no newer state is co-signed — which the
/// peer controls (it just stops trading). The withdrawal stays unpaid while
/// the channel is open (the user was told `Withdrawn`), and the withdrawer
/// pays the fee of a reverted transaction every t_Δ, without end and
/// without an alert.
///
/// Expected: the withdrawal is paid while the channel stays open (e.g. the
/// contract pays `withdrawn − withdrawn_paid` for a state equal to the
/// registered one, or the machine proposes a fresh state to carry it), and
/// reverted re-sends stop.
/// Observed: `withdrawn_paid[0]` stays 0 over 10 × t_Δ; the first
/// `channel_withdraw` and all 12 re-sends revert, ≈ 819,000 minor units of
/// fees for a 30,000 withdrawal.
#[test]
fn a_withdrawal_state_the_peer_registers_first_is_still_paid() {
    use gridledger_contracts::cns::ChannelStateArgs;
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    let amount = Amount(30_000);
    // The acceptor holds the co-signed state first (it signs last): side 1
    // signs the withdrawal and, before its acceptance reaches side 0,
    // registers the state with `channel_update`. No transaction is lost.
    d.input(0, Input::User(Request::Withdraw { amount })).unwrap();
    assert!(d.deliver_one(1), "the withdrawal proposal reaches side 1");
    let st = d.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(st.state.resize.withdrawn[0], amount, "side 1 holds the withdrawal co-signed");
    let key = d.parties[1].account.clone();
    let r = d.submit(&key, "channel_update", borsh::to_vec(&ChannelStateArgs { state: st }).unwrap(), Amount::ZERO);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success, "the peer registered the state");
    let fees_from = d.gas.len();
    d.pump(); // the acceptance reaches side 0, which sends channel_withdraw
    for _ in 0..100 {
        d.advance(cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    let reverted = d.gas[fees_from..].iter().filter(|g| g.method == "channel_withdraw" && !g.success).count();
    let fees = d.fees_of(0, fees_from);
    assert_eq!(ch.status, ChannelStatus::Open);
    assert!(
        ch.withdrawn_paid[0] == amount && reverted <= 1,
        "withdrawn_paid {:?} after 10 t_delta; {reverted} reverted channel_withdraw re-sends, {fees} in fees",
        ch.withdrawn_paid
    );
}

/// Fix of the finding above, bounded fees: a withdrawal the chain never
/// pays (every `channel_withdraw` lost or refused) is re-sent at most
/// `MAX_WITHDRAW_RESENDS` times for one state, then reported once
/// (`WithdrawalUnpaid`) and no longer sent; the close still pays it.
#[test]
fn an_unpaid_withdrawal_is_resent_a_bounded_number_of_times_then_reported() {
    use gridledger_channels::MAX_WITHDRAW_RESENDS;
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    let amount = Amount(30_000);
    d.parties[0].drop_txs = 1_000;
    d.request(0, Request::Withdraw { amount }).unwrap();
    for _ in 0..200 {
        d.advance(cfg.t_delta_ms / 10);
    }
    let sent = 1_000 - d.parties[0].drop_txs;
    let reported: Vec<_> =
        d.parties[0].events.iter().filter(|e| matches!(e, ChannelEvent::WithdrawalUnpaid { .. })).cloned().collect();
    assert_eq!(sent, 1 + MAX_WITHDRAW_RESENDS, "channel_withdraw sent {sent} times over 20 t_delta");
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(matches!(reported[0], ChannelEvent::WithdrawalUnpaid { unpaid, .. } if unpaid == amount));
    let ch = d.channel().unwrap();
    assert_eq!((ch.status, ch.withdrawn_paid[0]), (ChannelStatus::Open, Amount::ZERO));
    d.parties[0].drop_txs = 0;
    let _ = d.request(0, Request::Close);
    for _ in 0..60 {
        d.advance(cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    assert_eq!((ch.status, ch.withdrawn_paid[0]), (ChannelStatus::Closed, amount), "the close pays it");
    d.assert_coins_conserved();
}

/// Held up (tried: kill -9 at every persist of a withdrawal, a top-up and a
/// close, on either side, then restart and reconnect): both sides agree on
/// the newest co-signed state, the channel closes, coin is conserved,
/// every co-signed withdrawal is paid, no counter is signed twice.
#[test]
fn kill_nine_at_each_persist_of_withdraw_top_up_and_close() {
    let cfg = DuoConfig::default();
    let mut crashes = 0;
    for side in 0..2usize {
        for op in 0..3 {
            for k in 0..5u32 {
                let dir = tempfile::tempdir().unwrap();
                let mut d = duo(dir.path(), &cfg);
                d.request(0, pay_req(1_000)).unwrap();
                d.parties[side].crash_after_persists = Some(k);
                let req = match op {
                    0 => Request::Withdraw { amount: Amount(20_000) },
                    1 => Request::TopUp { amount: Amount(7_000), funding: Funding::Deposit },
                    _ => Request::Close,
                };
                let _ = d.request(0, req);
                for _ in 0..3 {
                    if d.parties[side].machine.is_none() {
                        crashes += 1;
                        d.restart(side);
                        d.reconnect();
                    }
                    d.parties[side].crash_after_persists = None;
                    for _ in 0..15 {
                        d.advance(cfg.t_delta_ms / 10);
                    }
                }
                let ctx = format!("side {side} op {op} crash after {k} persists");
                if d.channel().unwrap().status == ChannelStatus::Open {
                    let l0 = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.clone();
                    let l1 = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.clone();
                    assert_eq!(l0, l1, "{ctx}: both sides on the newest state");
                    assert_eq!(d.channel().unwrap().withdrawn_paid, l0.resize.withdrawn, "{ctx}: withdrawals paid");
                    let _ = d.request(0, Request::Close);
                    for _ in 0..60 {
                        d.advance(cfg.t_delta_ms / 10);
                    }
                }
                let ch = d.channel().unwrap();
                assert_eq!(ch.status, ChannelStatus::Closed, "{ctx}: closed at counter {}", ch.latest.state.counter);
                d.assert_coins_conserved();
                d.assert_no_divergent_signatures();
            }
        }
    }
    assert!(
        crashes >= 10,
        "only {crashes} of 30 runs crashed (12 do: the later persist points lie past the operation)"
    );
}

/// Finding (lock-file games; a local user or a "stale lock" cleanup): the
/// store lock is an `flock` on the *path* `DIR/store.lock`, and the lock
/// lives on the inode that the path named when the party opened it. Remove
/// (or replace by rename — a restore, `rsync`, a supervisor clearing "stale
/// lock files" after a crash, a user who read "lock held" and deleted it)
/// the file while the party runs, and the next `StoreFile::open` creates a
/// fresh `store.lock`, locks it without contention, and goes on to read and
/// *cut* the live party's log (the round-4 finding the lock was to close:
/// records appended by the live party between the read and the cut are
/// lost). docs/operations.md promises "two processes never run on one
/// party directory".
///
/// Expected: the second open is refused with `DiskError::Locked` (the lock
/// tied to something that cannot be swapped under the owner: the directory
/// itself, the log file, or a check that the locked inode is still the one
/// at the path). Observed: the second open succeeds.
#[test]
fn a_second_open_is_refused_even_after_the_lock_file_is_removed() {
    use gridledger_channels::disk::{test_store, DiskError, Durability, StoreFile, LOCK_FILE};
    let dir = tempfile::tempdir().unwrap();
    let mut live = StoreFile::open(dir.path(), Durability::ProcessCrashOnly).unwrap();
    live.save(&test_store("live", 1)).unwrap();
    assert!(matches!(StoreFile::open(dir.path(), Durability::ProcessCrashOnly), Err(DiskError::Locked { .. })));
    std::fs::remove_file(dir.path().join(LOCK_FILE)).unwrap();
    let second = StoreFile::open(dir.path(), Durability::ProcessCrashOnly);
    let refused = matches!(second, Err(DiskError::Locked { .. }));
    let outcome = second.map(|_| "opened (lock taken on a fresh store.lock)").map_err(|e| e.to_string());
    drop(live);
    assert!(refused, "second open while the live store is open, after store.lock was removed: {outcome:?}");
}

/// Held up (tried: a stale lock after kill -9): another process holding
/// `store.lock` (`flock(1)`, the same `flock(2)` lock) keeps the store
/// refused (`Locked`); once that process is killed with SIGKILL the kernel
/// drops its lock and the store opens again, no manual cleanup needed.
#[cfg(target_os = "linux")]
#[test]
fn a_lock_held_by_a_process_killed_with_sigkill_is_released() {
    use gridledger_channels::disk::{DiskError, Durability, StoreFile, LOCK_FILE};
    let dir = tempfile::tempdir().unwrap();
    drop(StoreFile::open(dir.path(), Durability::ProcessCrashOnly).unwrap());
    // `-o`: the lock is held by flock(1) itself, not the command it runs.
    let Ok(mut child) =
        std::process::Command::new("flock").arg("-o").arg(dir.path().join(LOCK_FILE)).args(["sleep", "20"]).spawn()
    else {
        return; // no flock(1) here
    };
    let t = std::time::Instant::now();
    while !matches!(StoreFile::open(dir.path(), Durability::ProcessCrashOnly), Err(DiskError::Locked { .. })) {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "the child never held the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SIGKILL the lock holder (its `sleep` child does not hold the lock).
    child.kill().unwrap();
    child.wait().unwrap();
    let t = std::time::Instant::now();
    loop {
        match StoreFile::open(dir.path(), Durability::ProcessCrashOnly) {
            Ok(_) => break,
            Err(DiskError::Locked { .. }) if t.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("after SIGKILL: {e}"),
        }
    }
}

/// Held up (tried: kill -9 of the closer while its close waits for an in-flight
/// payment (the round-4 "close waits for the window"): the peer holds the
/// payment proposal unanswered; side 0 closes, is killed, restarts and
/// reconnects. Expected: the close completes cooperatively (both online),
/// coin conserved, no counter signed twice.)
#[test]
fn a_close_waiting_for_the_window_survives_kill_nine() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    d.input(0, Input::User(pay_req(2_000))).unwrap(); // in flight, not delivered
    d.input(0, Input::User(Request::Close)).unwrap(); // waits for the window
    d.parties[1].inbox.clear();
    d.crash(0);
    d.restart(0);
    d.reconnect();
    for _ in 0..60 {
        d.advance(cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    let disputes = d.gas.iter().filter(|g| g.method == "channel_dispute").count();
    assert_eq!(ch.status, ChannelStatus::Closed, "closed (counter {})", ch.latest.state.counter);
    assert_eq!(disputes, 0, "both online, yet a dispute: {:?}", d.gas.iter().map(|g| &g.method).collect::<Vec<_>>());
    d.assert_coins_conserved();
    d.assert_no_divergent_signatures();
}

/// Held up (tried, two honest online parties): side 1 (the merchant) closes while
/// side 0 keeps paying — a payment request on every 100 ms tick. Expected:
/// a cooperative close (no dispute), coin conserved.
#[test]
fn a_close_by_the_payee_during_a_payment_stream_is_cooperative() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    // Both machines' clocks current (a party ticks every 50 ms).
    d.advance(100);
    let _ = d.input(0, Input::User(pay_req(1_000)));
    d.input(1, Input::User(Request::Close)).unwrap();
    let mut refused = 0;
    for _ in 0..300 {
        if d.channel().unwrap().status == ChannelStatus::Closed {
            break;
        }
        if d.input(0, Input::User(pay_req(1_000))).is_err() {
            refused += 1;
        }
        d.advance(100);
    }
    let ch = d.channel().unwrap();
    let methods: Vec<_> = d.gas.iter().map(|g| g.method.clone()).collect();
    assert_eq!(ch.status, ChannelStatus::Closed, "not closed after 30 s; {refused} payments refused; {methods:?}");
    assert!(!methods.iter().any(|m| m == "channel_dispute"), "a dispute between two online parties: {methods:?}");
    d.assert_coins_conserved();
}
