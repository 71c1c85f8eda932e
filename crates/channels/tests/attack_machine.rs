//! Attacks on the channel state machine (issue 10 items 7 and "no panics on
//! outside input"): each test asserts the secure behaviour and fails on the
//! code it was written against.

mod common;
use common::latest;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds};
use gridledger_channels::{ChannelMachine, Input, Message, Request};
use gridledger_contracts::cns::{ChannelState, Trade};
use gridledger_core::{Amount, Energy};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

fn duo(dir: &std::path::Path) -> Duo {
    common::duo_unopened(dir, &DuoConfig::default())
}

/// Side 0 buys `energy` Wh at `price`/kWh on top of `base`, at `counter`.
fn buy(base: &ChannelState, counter: u64, energy: u64, price: u128) -> ChannelState {
    let amount = Trade::price_of(Energy(energy), Amount(price)).unwrap();
    let mut st = base.clone();
    st.prev_counter = base.counter;
    st.counter = counter;
    st.balances[0].0 -= amount.0;
    st.balances[1].0 += amount.0;
    st.energy[1].0 += energy;
    st.last_trade = Some(Trade { buyer: 0, energy: Energy(energy), price_per_kwh: Amount(price), amount });
    st
}

/// Item 7, trade validation: the seller's policy accepts no less than
/// 120/kWh, and the policy checks only the *stated* price. With the
/// amount rounded down in the buyer's favour, a buyer that splits its
/// purchase into 16 Wh trades at 120/kWh pays ⌊1920/1000⌋ = 1 per 16 Wh,
/// an effective 62.5/kWh (48 % below the seller's floor). Secure: the
/// seller refuses a trade whose amount is below `energy × min_price / 1000`
/// rounded up (or rounding is in the seller's favour / amounts must be
/// exact).
#[test]
fn attack_rounding_lets_the_buyer_pay_half_the_sellers_minimum_price() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    let p = &mut d.parties[1];
    p.params.policy = Some(Policy(Arc::new(PriceBounds {
        min_price_per_kwh: Amount(120),
        max_price_per_kwh: Amount(500),
        max_energy: Energy(10_000),
    })));
    p.machine = Some(ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, p.params.clone()));
    d.open();
    for _ in 0..10 {
        let (energy, price) = (Energy(16), Amount(120));
        let amount = Trade::price_of(energy, price).unwrap();
        assert_eq!(amount, Amount(1));
        d.request(0, Request::Pay { amount, energy, price_per_kwh: price }).unwrap();
    }
    let l = latest(&d, 1).state;
    let delivered = u128::from(l.energy[1].0);
    let paid = l.balances[1].0 - d.parties[1].params.capacity[1].0;
    assert!(
        paid * 1000 >= delivered * 120,
        "seller co-signed {delivered} Wh for {paid} (effective {} per kWh) under a 120/kWh minimum",
        paid * 1000 / delivered.max(1)
    );
}

/// Outside input must never panic (house rule) and must not freeze the
/// channel: the peer proposes a valid trade at counter `u64::MAX` (the
/// machine accepts any counter above the co-signed one). Afterwards this
/// party's `next_counter()` computes `u64::MAX + 1`: a panic in debug
/// builds (the party process dies on every pay or close), a wrap to 0 in
/// release (every later proposal, including the cooperative close, has
/// counter 0 and is refused; only a dispute can close). Secure: refuse
/// counter jumps (e.g. require `counter == latest + 1` or leave headroom)
/// and return a typed error instead of overflowing.
#[test]
fn attack_peer_counter_u64_max_then_pay_or_close_panics() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    let base = latest(&d, 1).state;
    let st = buy(&base, u64::MAX, 1_000, 100);
    let k0 = d.parties[0].esc_key.clone();
    let nonce = 99;
    let sig = st.sign(&k0, nonce);
    let m = d.parties[1].machine.as_mut().unwrap();
    let step = m.handle(Input::Peer(Message::Propose { state: st, nonce, sig })).unwrap();
    let jumped_accepted = step.persist.is_some();
    if let Some(s) = step.persist {
        m.handle(Input::Persisted(s.version)).unwrap();
    }
    let pay = catch_unwind(AssertUnwindSafe(|| {
        let m = d.parties[1].machine.as_mut().unwrap();
        let (energy, price) = (Energy(1_000), Amount(100));
        let amount = Trade::price_of(energy, price).unwrap();
        let _ = m.handle(Input::User(Request::Pay { amount, energy, price_per_kwh: price }));
    }));
    assert!(pay.is_ok(), "side 1 panicked on Pay after co-signing the peer's counter u64::MAX");
    let close = catch_unwind(AssertUnwindSafe(|| {
        let m = d.parties[1].machine.as_mut().unwrap();
        let _ = m.handle(Input::User(Request::Close));
    }));
    assert!(close.is_ok(), "side 1 panicked on Close after co-signing the peer's counter u64::MAX");
    assert!(!jumped_accepted, "a proposal jumping the counter to u64::MAX was co-signed");
}

/// Griefing (issue 10 items 1/5): the initiator registers the co-signed open
/// state but never funds its side. The responder sees `Registered`, checks
/// it (correctly) and deposits its 100,000. The channel then sits in
/// `Funding` forever: the machine has no funding timeout and never sends
/// `channel_abort` (nothing outside the contract and its tests does; the
/// CLI has no abort command), so the responder's deposit is locked until
/// it hand-crafts a raw transaction. Secure: after a funding deadline the
/// responder's client aborts and recovers its deposit.
#[test]
fn attack_initiator_never_funds_and_the_responders_deposit_stays_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    // Side 0 proposes the open; side 1 co-signs it.
    d.input(0, Input::User(Request::Open)).unwrap();
    let bytes = d.parties[1].inbox.pop_front().expect("open proposal delivered");
    let step = d.parties[1].machine.as_mut().unwrap().handle_bytes(&bytes).unwrap();
    let v = step.persist.as_ref().unwrap().version;
    d.parties[1].machine.as_mut().unwrap().handle(Input::Persisted(v)).unwrap();
    // Side 0 goes silent after registering the co-signed open, unfunded.
    d.parties[0].silent = true;
    d.parties[0].inbox.clear();
    let open = latest(&d, 1);
    assert_eq!(open.state.counter, 0);
    let acct0 = d.parties[0].account.clone();
    let a = gridledger_contracts::args(&gridledger_contracts::cns::ChannelOpenArgs { scid: d.scid, open });
    let r = d.submit(&acct0, "channel_open", a, Amount::ZERO);
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success);
    d.pump();
    let before = d.balance(1);
    let gas_seen = d.gas.len();
    let ch = d.channel().unwrap();
    assert!(ch.funded[1].is_some(), "the responder funded its side");
    // Hours pass (360 × t_Δ).
    for _ in 0..360 {
        d.advance(10_000);
    }
    let ch = d.channel().unwrap();
    // At the chain's gas price the abort itself costs about as much as this
    // small deposit, so count the fees side 1 paid since: its deposit came
    // back in full.
    let me = d.parties[1].account.address();
    let fees: u128 = d.gas[gas_seen..].iter().filter(|g| g.sender == me).map(|g| g.fee.0).sum();
    let after = d.balance(1) + fees;
    assert_eq!(after, before + d.parties[1].params.capacity[1].0, "side 1's deposit was refunded in full");
    assert!(
        ch.status == gridledger_contracts::cns::ChannelStatus::Closed && after > before,
        "after an hour the channel is still {:?} and side 1's 100,000 deposit is locked (balance {before} -> {after})",
        ch.status
    );
}

/// Update fallback (issue 10 item 10) is not atomic (seed §3.3, Fig 7:
/// "the protocol outcome is the same for all parties"). Side 1 co-signs
/// side 0's payment at counter 1, persists it, and its acceptance is lost
/// (crash or network); side 0 falls back after t_Δ and sends `Fallback`
/// once, which is lost too (side 1 is still down). `Fallback` is never
/// resent, so side 1 never re-sends its acceptance: side 0 holds counter 0,
/// side 1 holds counter 1, and every later proposal of either side is
/// refused by the other ("balances or energy do not follow"). Two honest
/// parties are deadlocked; the only way out is a dispute, in which side 0
/// (honest) disputes with counter 0, side 1 resolves with counter 1 and
/// side 0 is booked a fault. Secure: the parties reconcile (resend
/// `Fallback` until answered, or a reject carries the co-signed state /
/// a reestablish handshake), and the next payment is co-signed.
#[test]
fn attack_lost_acceptance_and_lost_fallback_deadlock_two_honest_parties() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    let (energy, price) = (Energy(1_000), Amount(100));
    let amount = Trade::price_of(energy, price).unwrap();
    let pay = Request::Pay { amount, energy, price_per_kwh: price };
    d.input(0, Input::User(pay.clone())).unwrap();
    // Side 1 co-signs and persists; its acceptance never reaches side 0.
    let bytes = d.parties[1].inbox.pop_front().expect("proposal delivered");
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let step = m1.handle_bytes(&bytes).unwrap();
    let v = step.persist.as_ref().unwrap().version;
    let released = m1.handle(Input::Persisted(v)).unwrap();
    assert!(matches!(released.messages.as_slice(), [Message::Accept { counter: 1, .. }]));
    // Side 1 is down while side 0's proposal expires and it falls back.
    d.parties[1].silent = true;
    d.advance(1_000);
    d.advance(11_000);
    assert!(d.parties[0]
        .events
        .iter()
        .any(|e| matches!(e, gridledger_channels::ChannelEvent::FellBack { counter: 1 })));
    d.parties[1].silent = false;
    // Both honest, both online again: time passes, side 0 pays again.
    for _ in 0..5 {
        d.advance(2_000);
    }
    let _ = d.request(0, pay.clone());
    for _ in 0..5 {
        d.advance(2_000);
    }
    let (l0, l1) = (latest(&d, 0).state, latest(&d, 1).state);
    assert_eq!(
        (l0.counter, l0.balances),
        (l1.counter, l1.balances),
        "honest parties diverged for good: side 0 at {}, side 1 at {}",
        l0.counter,
        l1.counter
    );
    assert!(l0.counter >= 2, "the second payment was never co-signed (latest {})", l0.counter);
}

/// Item 4 end to end, with two unmodified clients: side 1 co-signs side
/// 0's payment (counter 1) but the acceptance is lost, and side 1 is
/// unreachable when side 0 asks to close. Side 0's client abandons the
/// payment, times out the close and disputes with counter 0 (the newest it
/// holds); side 1's client, back online, answers with counter 1 and the
/// contract books a dispute fault on side 0, which did nothing wrong (one
/// lost message). Secure: no fault on side 0 (see also
/// `attack_cns::attack_withheld_acceptance_lets_the_peer_blacklist_an_honest_raiser`).
#[test]
fn attack_one_lost_acceptance_gets_the_honest_closer_a_fault() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    let (energy, price) = (Energy(1_000), Amount(100));
    let amount = Trade::price_of(energy, price).unwrap();
    d.input(0, Input::User(Request::Pay { amount, energy, price_per_kwh: price })).unwrap();
    let bytes = d.parties[1].inbox.pop_front().expect("proposal delivered");
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let step = m1.handle_bytes(&bytes).unwrap();
    let v = step.persist.as_ref().unwrap().version;
    let _lost_accept = m1.handle(Input::Persisted(v)).unwrap();
    // Side 1 unreachable; side 0 closes, times out, disputes.
    d.parties[1].silent = true;
    d.request(0, Request::Close).unwrap();
    for _ in 0..4 {
        d.advance(2_000);
    }
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, gridledger_contracts::cns::ChannelStatus::Disputed, "side 0 disputed");
    // Side 1 back: like the party's event poller, it reads the dispute
    // from the chain (the driver dropped events while it was silent) and
    // its client answers with counter 1.
    d.parties[1].silent = false;
    let ch = d.channel().unwrap();
    d.parties[1].chain_inbox.push_back(gridledger_channels::ChainEvent::DisputeRaised {
        counter: ch.latest.state.counter,
        by: 0,
        t_end: ch.t_end,
    });
    d.pump();
    for _ in 0..10 {
        d.advance(2_000);
    }
    let msc0 = d.msc(d.sids[0]);
    assert_eq!(
        msc0.disputes_at_fault,
        0,
        "honest side 0 was faulted (standing {:?}) after one lost acceptance; channel {:?}",
        msc0.standing,
        d.channel().map(|c| (c.status, c.latest.state.counter))
    );
}
