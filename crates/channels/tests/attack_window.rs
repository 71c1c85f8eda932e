//! Attacks on the proposal window, folded payments, the update fallback and
//! the store log (issue 10, second round). Each test states what a careful
//! user expects and failed on the code it was written against (the
//! "Observed" of each); all are fixed and run by default:
//! `cargo test -p gridledger-channels --test attack_window`.

mod common;
use common::pay_at as pay_req;

use gridledger_channels::disk::load_store;
use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, UpdatePolicy};
use gridledger_channels::{ChainEvent, ChannelEvent, Input, Message, Request};
use gridledger_contracts::cns::{ChannelState, Trade};
use gridledger_core::{Amount, Energy};
use gridledger_ledger::ChainClient;
use std::sync::Arc;

fn duo(dir: &std::path::Path, window: usize) -> Duo {
    common::duo_unopened(dir, &DuoConfig { window, ..DuoConfig::default() })
}

/// A seller's policy over the whole channel, written against the `current`
/// state the hook receives: never deliver more than `cap` Wh in total.
struct DeliveryCap {
    cap: u64,
}

impl UpdatePolicy for DeliveryCap {
    fn check(&self, t: &Trade, current: &ChannelState) -> Result<(), String> {
        // Side 1 is the seller in these tests: `energy[1]` is what it delivered.
        let after = current.energy[1].0.checked_add(t.energy.0).ok_or("overflow")?;
        if after > self.cap {
            return Err(format!("delivery {after} Wh would pass the cap {}", self.cap));
        }
        Ok(())
    }
}

/// Finding: a fold bypasses any policy that looks at the channel state.
///
/// `validate_proposal` calls the policy for every folded trade with the
/// same `current` (the latest co-signed state), not with the state after the
/// trades before it. A seller's cap "deliver at most 2,500 Wh" refuses the
/// third of three 1,000 Wh payments proposed one at a time (checked here
/// first), but the same three folded into one update are all checked against
/// 0 Wh delivered and co-signed: 3,000 Wh owed.
///
/// Expected: the fold is refused (or each trade is checked against the
/// state the trades before it produce), the seller's delivery stays ≤ cap.
/// Observed: the fold is co-signed, `energy[1] = 3000`.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_fold_is_checked_against_a_cumulative_policy -- --ignored`.
#[test]
fn a_fold_is_checked_against_a_cumulative_policy() {
    let cap = 2_500;
    let with_cap = |dir: &std::path::Path| {
        let mut d = duo(dir, 1);
        d.parties[1].params.policy = Some(Policy(Arc::new(DeliveryCap { cap })));
        d.crash(1);
        d.restart(1);
        d.open();
        d
    };
    // Control: one at a time, the third payment is refused by the policy.
    let dir = tempfile::tempdir().unwrap();
    let mut d = with_cap(dir.path());
    for _ in 0..3 {
        d.request(0, pay_req(1_000, 100)).unwrap();
    }
    let l = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert_eq!(l.energy[1].0, 2_000, "sequentially the cap holds");

    // The same three payments folded into one update.
    let dir = tempfile::tempdir().unwrap();
    let mut d = with_cap(dir.path());
    let item = || {
        let (e, p) = (Energy(1_000), Amount(100));
        (Trade::price_of(e, p).unwrap(), e, p)
    };
    d.request(0, Request::PayMany(vec![item(), item(), item()])).unwrap();
    let l = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert!(
        l.energy[1].0 <= cap,
        "seller co-signed a fold delivering {} Wh past its policy cap {cap} (counter {})",
        l.energy[1].0,
        l.counter
    );
}

/// Finding: a payment reported as failed ("fell back") is later co-signed
/// and the money moves, with no event saying so.
///
/// The seller withholds its acceptance of payment 1 until the buyer's
/// update fallback fires after `t_Δ` (`FellBack{1}`; the party process
/// answers the user "payment 1 not co-signed within t_delta: fell back").
/// Then it sends the acceptance it withheld. The machine adopts the late
/// co-signed state (rightly: the seller could use it on chain anyway) and
/// the buyer's balance drops, but it emits only `CoSigned(1)`, no
/// `PaymentSent`, and the party's `CoSigned` handler has no reply left to
/// correct. A user told "failed" pays again: the seller is paid twice.
///
/// Expected: after the late acceptance, an event that payment 1 went
/// through (`PaymentSent { counter: 1, .. }`), so the client can correct
/// what it told the user. Observed: events `FellBack{1}`, `CoSigned(1)`.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_late_acceptance_after_fallback_reports_the_payment -- --ignored`.
#[test]
fn a_late_acceptance_after_fallback_reports_the_payment() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 1);
    d.open();
    let before = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.balances[0];
    d.advance(1); // the machine's clock starts
    d.parties[1].silent = true;
    d.request(0, pay_req(1_000, 100)).unwrap();
    d.advance(1);
    d.advance(DuoConfig::default().t_delta_ms + 1);
    assert!(
        d.parties[0].events.contains(&ChannelEvent::FellBack { counter: 1 }),
        "the buyer fell back: {:?}",
        d.parties[0].events
    );
    let mark = d.parties[0].events.len();
    // The seller now releases the acceptance it withheld.
    let p = d.parties[0].machine.as_ref().unwrap().store().abandoned.last().cloned().expect("abandoned proposal");
    let k1 = d.parties[1].esc_key.clone();
    let accept =
        Message::Accept { counter: p.state.counter, hstate: p.state.hstate(p.nonce), sig: p.state.sign(&k1, p.nonce) };
    d.input(0, Input::Peer(accept)).unwrap();
    let after = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert_eq!(after.counter, 1, "the late acceptance is adopted");
    assert!(after.balances[0] < before, "the buyer's money moved");
    let new_events = &d.parties[0].events[mark..];
    assert!(
        new_events.iter().any(|e| matches!(e, ChannelEvent::PaymentSent { counter: 1, .. })),
        "payment 1 was reported as fallen back, then co-signed without a PaymentSent: {new_events:?}"
    );
}

/// Finding: a peer that sends free `Fallback` messages starves every timer
/// of the honest party (settle, resolve retries, funding abort, close
/// fallback), and makes it fdatasync once per message.
///
/// `tick` returns at once while any persist is outstanding
/// (`!self.held.is_empty()`), and each `Fallback{c}` with a fresh counter
/// (no proposal needed, nothing costs the sender) makes the receiver
/// persist `peer_fallback_upto` with a held reply. The party process feeds
/// ticks and peer messages through one `select!`; a peer sending faster than
/// the disk syncs (a few hundred fdatasync/s measured) keeps a persist
/// outstanding at every tick. Here side 0 disputed, `t_end` passed, and each
/// tick is preceded by one `Fallback`: the settle is never submitted, so the
/// channel's funds stay locked for as long as the peer keeps talking.
///
/// Expected: `channel_settle` once `t_end` has passed (timers run whatever
/// the disk queue; or Fallback for counters never proposed changes nothing
/// durable). Observed: 50 ticks past `t_end`, no settle, 50 synced persists.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_fallback_flood_does_not_starve_the_settle -- --ignored`.
#[test]
fn a_fallback_flood_does_not_starve_the_settle() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 1);
    d.open();
    d.request(0, pay_req(1_000, 100)).unwrap();
    let m = d.parties[0].machine.as_mut().unwrap();
    let c = m.latest().unwrap().state.counter;
    let t_end = 1_000_000;
    let step = m.handle(Input::Chain(ChainEvent::DisputeRaised { counter: c, by: 0, t_end })).unwrap();
    let v = step.persist.expect("dispute persisted").version;
    m.handle(Input::Persisted(v)).unwrap();
    let mut methods = vec![];
    let mut persists = 0;
    for i in 0..50u64 {
        let flood = Message::Fallback { counter: c + 1 + i };
        let step = m.handle(Input::Peer(flood)).unwrap();
        let pending = step.persist.map(|s| s.version);
        persists += usize::from(pending.is_some());
        let step = m.handle(Input::Tick(t_end + 1 + i * 10_000)).unwrap();
        methods.extend(step.txs.iter().map(|t| t.method));
        if let Some(v) = pending {
            let step = m.handle(Input::Persisted(v)).unwrap();
            methods.extend(step.txs.iter().map(|t| t.method));
        }
    }
    // Control: one tick with nothing outstanding does submit the settle.
    let quiet = m.handle(Input::Tick(t_end + 1 + 50 * 10_000)).unwrap();
    let quiet: Vec<&str> = quiet.txs.iter().map(|t| t.method).collect();
    assert!(quiet.contains(&"channel_settle"), "control: the settle is due {quiet:?}");
    assert!(
        methods.contains(&"channel_settle"),
        "50 ticks past t_end, no settle submitted ({persists} synced persists forced by the peer): {methods:?}"
    );
}

/// Finding: a hostile or damaged party directory hangs the process that
/// loads it: `store.log` (or `store.bin`) is read with `fs::read` whatever
/// kind of file it is. A FIFO blocks forever (here); a symlink to
/// `/dev/zero` reads until memory runs out (not run here). `channel serve`
/// loads each party's store synchronously inside its async task on a
/// 2-worker runtime, so two such directories stall every channel of the
/// process; one `/dev/zero` link kills them all.
///
/// Expected: a typed error at once ("not a regular file" / "too large":
/// the store is bounded by `MAX_STORE_BYTES` per record and `COMPACT_AFTER`
/// for the log). Observed: `load_store` does not return (10 s here).
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_fifo_store_log_is_refused_not_waited_on -- --ignored`.
#[test]
fn a_fifo_store_log_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(gridledger_channels::disk::LOG_FILE);
    let made = std::process::Command::new("mkfifo").arg(&log).status().expect("mkfifo runs");
    assert!(made.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let r = load_store(&path).map(|s| s.is_some()).map_err(|e| e.to_string());
        let _ = tx.send(r);
    });
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    if got.is_err() {
        // Unblock the reader (a writer opens and closes the FIFO).
        let _ = std::fs::OpenOptions::new().write(true).open(&log);
    }
    assert!(matches!(got, Ok(Err(_))), "loading a party dir whose store.log is a FIFO: {got:?} (blocked)");
}

/// Finding: `PaymentReceived` is announced before the acceptance is
/// durable, so a crash in between leaves the user told of a payment the
/// channel never holds.
///
/// `on_propose` returns the `PaymentReceived` event in the same step that
/// asks to persist the acceptance; events are not held like messages, and
/// the party process hands them to the user and the `channel serve` event
/// stream at once (`carry_out` → `on_event`), before the persister's
/// fdatasync. A seller killed in that gap restarts without the update; if it
/// stays down past `t_Δ` the buyer falls back and the payment is never
/// co-signed. A merchant releasing energy on `PaymentReceived` (what the
/// stream is for) has delivered unpaid.
///
/// Expected: `PaymentReceived` (like any signature) only once its store is
/// durable, or a correcting event after restart. Observed: the seller's
/// events contain `PaymentReceived{1}`, its restarted state is counter 0,
/// the buyer fell back.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_payment_is_announced_only_once_durable -- --ignored`.
#[test]
fn a_payment_is_announced_only_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 1);
    d.open();
    d.advance(1);
    d.parties[1].crash_before_persist = true;
    d.request(0, pay_req(1_000, 100)).unwrap();
    assert!(d.parties[1].machine.is_none(), "the seller crashed before its acceptance was durable");
    // Down past t_Δ: the buyer gives payment 1 up.
    d.advance(DuoConfig::default().t_delta_ms + 1);
    d.advance(1);
    assert!(d.parties[0].events.contains(&ChannelEvent::FellBack { counter: 1 }), "{:?}", d.parties[0].events);
    d.restart(1);
    d.pump();
    d.advance(DuoConfig::default().retry_ms + 1);
    let seller = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.counter;
    let announced = d.parties[1].events.iter().any(|e| matches!(e, ChannelEvent::PaymentReceived { counter: 1, .. }));
    assert!(
        !announced || seller >= 1,
        "the seller was told PaymentReceived{{1}} but its channel is at counter {seller} (buyer fell back)"
    );
}

/// Finding: window 1 does not close the griefing path the party default
/// (`DEFAULT_WINDOW = 1`) was chosen to close: the update fallback makes
/// the raiser's own counters skip, so its own unacknowledged proposal can be
/// two past its dispute, and the adjudicator then faults the honest raiser.
///
/// With window 1 the seller co-signs the buyer's payment 1 and withholds
/// the acceptance; the buyer falls back after `t_Δ` (counter 1 stays used)
/// and proposes payment 2 at counter 2, built on the open state; the seller
/// co-signs and withholds again. The buyer closes; the seller is silent;
/// the buyer disputes with the only co-signed state it holds (counter 0).
/// The seller resolves with payment 2 (counter 2 = dispute + 2), which the
/// contract's exemption ("own proposal exactly one counter past") does not
/// cover: a fault is booked on the buyer. Repeated, it greys and blacklists
/// an honest party (issue 10 item 4).
///
/// Expected: `disputes_at_fault == 0` for the buyer (it never held a newer
/// co-signed state). Observed: 1.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// window_one_withheld_acceptances_do_not_fault_the_honest_raiser -- --ignored`.
#[test]
fn window_one_withheld_acceptances_do_not_fault_the_honest_raiser() {
    use gridledger_contracts::cns::{ChannelStateArgs, SignedState};
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), 1);
    d.open();
    d.advance(1);
    d.parties[1].silent = true;
    let k1 = d.parties[1].esc_key.clone();
    let mut withheld = None;
    for counter in 1..=2u64 {
        d.request(0, pay_req(1_000, 100)).unwrap();
        d.advance(1);
        let p = d.parties[0].machine.as_ref().unwrap().store().my_proposal().cloned().expect("proposal");
        assert_eq!(p.state.counter, counter, "counters skip past the fallen-back proposal");
        // The seller co-signs and keeps its acceptance to itself.
        let sig1 = p.state.sign(&k1, p.nonce);
        withheld = Some(SignedState { state: p.state.clone(), nonce: p.nonce, sigs: [p.sig, sig1] });
        d.advance(cfg.t_delta_ms + 1);
        assert!(d.parties[0].events.contains(&ChannelEvent::FellBack { counter }));
    }
    // The buyer closes; the silent seller forces it to dispute.
    d.request(0, Request::Close).unwrap();
    d.advance(cfg.close_timeout_ms + 1);
    d.advance(1);
    let ch = d.channel().expect("channel");
    assert!(ch.dispute.is_some(), "the buyer disputed: {:?}", ch.status);
    // The seller overturns with payment 2.
    let state = withheld.unwrap();
    let seller = d.parties[1].account.clone();
    let r =
        d.submit(&seller, "channel_resolve", gridledger_core::codec::encode(&ChannelStateArgs { state }), Amount::ZERO);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success, "the withheld state overturns the dispute");
    assert_eq!(
        d.msc(d.sids[0]).disputes_at_fault,
        0,
        "the honest buyer (window 1) was faulted for disputing with the only co-signed state it held"
    );
}

/// A buyer's auto-pay policy written against `current`: keep at least
/// `floor` of its own balance.
struct KeepFloor {
    floor: u128,
}

impl UpdatePolicy for KeepFloor {
    fn check(&self, t: &Trade, current: &ChannelState) -> Result<(), String> {
        let left = current.balances[usize::from(t.buyer)].0.checked_sub(t.amount.0).ok_or("short")?;
        if left < self.floor {
            return Err(format!("would leave {left}, below the floor {}", self.floor));
        }
        Ok(())
    }
}

/// Finding: with a window above 1, `auto_pay` checks each payment request
/// against the latest *co-signed* state, not the tip of the window, so a
/// seller that sends several requests at once is paid past any policy that
/// looks at the balance.
///
/// The buyer auto-pays within "keep at least 75,000 of my 100,000"; the
/// seller sends three requests of 10,000 back to back. Sequentially the
/// third would be refused (70,000 < 75,000); with window 4 all three are
/// proposed while none is co-signed yet, each checked against 100,000.
///
/// Expected: the buyer keeps ≥ 75,000. Observed: 70,000.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// auto_pay_is_checked_against_the_window_tip -- --ignored`.
#[test]
fn auto_pay_is_checked_against_the_window_tip() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.parties[0].params.auto_pay = Some(Policy(Arc::new(KeepFloor { floor: 75_000 })));
    d.crash(0);
    d.restart(0);
    d.open();
    for _ in 0..3 {
        d.input(1, Input::User(Request::AskPayment { energy: Energy(1_000), price_per_kwh: Amount(10_000) })).unwrap();
    }
    d.pump();
    let l = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert!(l.counter >= 2, "auto-pay works at all (counter {})", l.counter);
    assert!(l.balances[0].0 >= 75_000, "auto-pay left the buyer {} (floor 75,000)", l.balances[0].0);
}

/// Finding (found by a seeded crash/silence sweep, seed 125 of 300, then
/// reduced to this): a stale `Reject` makes a party forget a fallen-back
/// proposal the peer did co-sign, and the two parties stay on different
/// co-signed states for good.
///
/// `Message::Reject` for a counter that is the newest *abandoned* proposal
/// is read as "the peer confirms it never signed it (its acceptance of any
/// older one came first)" and clears the whole abandoned list. But the peer
/// also sends `Reject{c}` when it refuses a delayed retransmission of
/// proposal `c` (here: "busy: own proposal outstanding"), with no
/// acceptance before it. Side 1 proposes 1 and 2 (window 2); side 0
/// co-signs 1 (the acceptance is lost), then, busy with its own proposal,
/// refuses the late copy of 2; side 1 has meanwhile fallen back on 1 and 2,
/// takes that reject as the confirmation and clears its abandoned list. The
/// acceptance of 1 that side 0 sends again in answer to the `Fallback`
/// finds nothing to adopt and is dropped; the `Fallback` resend stops.
/// Side 0 holds counter 1, side 1 counter 0; each one's updates are built
/// on a base the other refuses ("balances or energy do not follow"), so no
/// update can ever be co-signed again; only a dispute ends it.
///
/// Expected: after recovery both parties hold the same latest state.
/// Observed: side 0 at counter 1, side 1 at counter 0.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_stale_reject_does_not_split_the_parties -- --ignored`.
#[test]
fn a_stale_reject_does_not_split_the_parties() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), 2);
    d.open();
    d.advance(1);
    // Side 1 proposes 1 and 2.
    d.input(1, Input::User(pay_req(1_000, 100))).unwrap();
    d.input(1, Input::User(pay_req(1_000, 100))).unwrap();
    let p1 = d.parties[0].inbox.pop_front().expect("proposal 1");
    let p2 = d.parties[0].inbox.pop_front().expect("proposal 2");
    // Side 0 co-signs 1; the acceptance is lost.
    d.input(0, Input::Peer(Message::from_bytes(&p1).unwrap())).unwrap();
    d.parties[1].inbox.clear();
    // Side 0 proposes a payment of its own (lost on the way).
    d.input(0, Input::User(pay_req(500, 100))).unwrap();
    d.parties[1].inbox.clear();
    // The delayed copy of proposal 2 reaches side 0, busy: refused.
    d.input(0, Input::Peer(Message::from_bytes(&p2).unwrap())).unwrap();
    let stale_reject: Vec<Vec<u8>> = d.parties[1].inbox.drain(..).collect();
    assert!(
        stale_reject.iter().any(|b| matches!(Message::from_bytes(b), Ok(Message::Reject { counter: 2, .. }))),
        "side 0 refused the late copy of 2"
    );
    // Side 1 falls back on 1 and 2 (only side 1's clock moves here).
    let now = d.chain.now() + cfg.t_delta_ms + 1;
    d.chain.set_now(now);
    d.input(1, Input::Tick(now)).unwrap();
    assert!(d.parties[1].events.contains(&ChannelEvent::FellBack { counter: 2 }));
    // Now the stale reject arrives, ahead of side 1's `Fallback`.
    let fallback: Vec<Vec<u8>> = d.parties[0].inbox.drain(..).collect();
    for b in stale_reject {
        d.input(1, Input::Peer(Message::from_bytes(&b).unwrap())).unwrap();
    }
    d.parties[0].inbox.extend(fallback);
    d.pump();
    for _ in 0..8 {
        d.advance(cfg.retry_ms + 1);
    }
    let l0 = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.counter;
    let l1 = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.counter;
    assert_eq!(l0, l1, "side 0 holds co-signed {l0}, side 1 holds {l1}: split for good");
}

/// One seeded run: both sides pay and fold at random under windows 1–8,
/// fall silent (messages lost both ways), crash at a random persist and
/// restart, and the clock jumps past `t_Δ`; then everyone comes back and
/// recovery runs. Returns the parties' latest counters if they disagree.
fn sweep_seed(seed: u64) -> Result<(), String> {
    use rand::{Rng, SeedableRng};
    let item = |e: u64, p: u128| (Trade::price_of(Energy(e), Amount(p)).unwrap(), Energy(e), Amount(p));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let window = [1usize, 2, 4, 8][rng.random_range(0..4)];
    // `GRIDLEDGER_ATTACK_WINDOW` pins the window (the seed's other choices stay).
    let window = std::env::var("GRIDLEDGER_ATTACK_WINDOW").ok().and_then(|w| w.parse().ok()).unwrap_or(window);
    let mut d = duo(dir.path(), window);
    d.open();
    d.advance(1);
    for step in 0..60u64 {
        let side = rng.random_range(0..2usize);
        match rng.random_range(0..10) {
            0..=3 => {
                let _ = d.input(side, Input::User(pay_req(100 + step, 100)));
            }
            4 => {
                let k = rng.random_range(2..5u64);
                let _ = d.input(side, Input::User(Request::PayMany((0..k).map(|i| item(50 + i, 120)).collect())));
            }
            6 => d.parties[side].silent = !d.parties[side].silent,
            7 => d.parties[side].crash_after_persists = Some(rng.random_range(0..3)),
            8 => d.advance(rng.random_range(1..12_000)),
            _ => d.pump(),
        }
        for s in 0..2 {
            if d.parties[s].machine.is_none() && rng.random_bool(0.5) {
                let signed = d.parties[s].signed.iter().map(|(c, _)| *c).max();
                d.restart(s);
                let upto = d.parties[s].machine.as_ref().unwrap().store().signed_upto;
                assert!(signed <= upto, "seed {seed}: side {s} released {signed:?}, stored {upto:?}");
            }
        }
        d.assert_no_divergent_signatures();
    }
    for s in 0..2 {
        d.parties[s].silent = false;
        d.parties[s].crash_after_persists = None;
        if d.parties[s].machine.is_none() {
            d.restart(s);
        }
    }
    for _ in 0..8 {
        d.pump();
        d.advance(3_000);
    }
    d.assert_no_divergent_signatures();
    let l0 = d.parties[0].machine.as_ref().unwrap().latest().unwrap().clone();
    let l1 = d.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(l0.state.balances[0].0 + l0.state.balances[1].0, 200_000, "seed {seed}: coin conserved");
    if l0 != l1 {
        return Err(format!(
            "seed {seed} window {window}: side 0 at {}, side 1 at {}",
            l0.state.counter, l1.state.counter
        ));
    }
    Ok(())
}

/// Finding: a seeded sweep of lost messages, silences, crashes and
/// fallbacks ends with the two honest parties on different co-signed states
/// (both abandoned lists empty, so nothing ever reconciles them) in 17 of
/// 700 seeds, every one with a window of 2–8 (none of the ~175 window-1
/// seeds; pinned with `GRIDLEDGER_ATTACK_WINDOW`: window 1 0 of 400, window
/// 2 2 of 400). `a_stale_reject_does_not_split_the_parties` is one mechanism,
/// reduced by hand; others may exist. What held in all 700: no party ever
/// signed two states at one counter, no signature left before its store
/// (`signed_upto`), coin conserved.
///
/// Expected: every seed ends with equal latest states. Observed: seeds
/// 125 134 189 272 293 341 389 398 473 522 541 546 579 627 639 664 680 split.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_seeded_sweep_never_splits_the_parties -- --ignored` (the 17 seeds,
/// seconds); `GRIDLEDGER_ATTACK_SWEEP=700` runs seeds 0..700 (≈2.5 min debug).
#[test]
fn a_seeded_sweep_never_splits_the_parties() {
    let seeds: Vec<u64> = match std::env::var("GRIDLEDGER_ATTACK_SWEEP").ok().and_then(|s| s.parse().ok()) {
        Some(n) => (0..n).collect(),
        None => vec![125, 134, 189, 272, 293, 341, 389, 398, 473, 522, 541, 546, 579, 627, 639, 664, 680],
    };
    let split: Vec<String> = seeds.into_iter().filter_map(|s| sweep_seed(s).err()).collect();
    assert!(split.is_empty(), "{} seeds split:\n{}", split.len(), split.join("\n"));
}

/// Finding: payments that the chain's state includes are not reported as
/// sent when that state arrives through the chain (`ChainEvent::OnChain`,
/// after a resolved dispute), unlike the cumulative-acceptance path.
///
/// Side 0 has payments 1 and 2 in its window (window 2); the peer co-signs
/// both, withholds the acceptances and puts state 2 on chain (resolving a
/// dispute). The machine adopts state 2 and clears its window but emits only
/// `CoSigned(2)`; the party process then answers payment 1 with "superseded
/// by co-signed 2", an error, although state 2 contains payment 1 (each
/// proposal builds on the one before). A user told "failed" pays again.
///
/// Expected: `PaymentSent` for 1 and 2 (as `on_accept` emits for a
/// cumulative acceptance). Observed: only `CoSigned(2)`.
/// Reproduce: `cargo test -p gridledger-channels --test attack_window
/// a_state_learnt_from_the_chain_reports_the_payments_it_holds -- --ignored`.
#[test]
fn a_state_learnt_from_the_chain_reports_the_payments_it_holds() {
    use gridledger_contracts::cns::SignedState;
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 2);
    d.open();
    d.advance(1);
    d.parties[1].silent = true;
    d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    let p2 = d.parties[0].machine.as_ref().unwrap().store().proposals.last().cloned().expect("proposal 2");
    assert_eq!(p2.state.counter, 2);
    let k1 = d.parties[1].esc_key.clone();
    let on_chain =
        SignedState { state: p2.state.clone(), nonce: p2.nonce, sigs: [p2.sig, p2.state.sign(&k1, p2.nonce)] };
    let mark = d.parties[0].events.len();
    d.input(0, Input::Chain(ChainEvent::OnChain(Box::new(on_chain)))).unwrap();
    assert_eq!(d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.counter, 2, "adopted");
    let ev = &d.parties[0].events[mark..];
    for c in [1u64, 2] {
        assert!(
            ev.iter().any(|e| matches!(e, ChannelEvent::PaymentSent { counter, .. } if *counter == c)),
            "state 2 from the chain holds payment {c}, but no PaymentSent: {ev:?}"
        );
    }
}
