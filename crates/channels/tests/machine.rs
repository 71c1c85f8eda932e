//! The channel state machine against a malicious or unlucky peer (issue 10
//! items 1, 4, 5, 7, 10; issue 18's malicious proposals): every bad
//! proposal is answered by a reject and nothing is signed or persisted; the
//! responder funds only the channel it co-signed; a close can be agreed
//! during a dispute; an update not co-signed within t_Δ falls back; resolve
//! and settle are retried until the chain shows the outcome.

mod common;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds};
use gridledger_channels::{ChainEvent, ChannelEvent, ChannelMachine, Input, Message, Phase, Request};
use gridledger_contracts::args;
use gridledger_contracts::cns::{
    ChannelDisputeArgs, ChannelState, ChannelStatus, DisputeOutcome, Domain, SignedState, Trade,
};
use gridledger_core::{Amount, Energy, Hash32, KeyPair};
use gridledger_ledger::TxStatus;
use std::sync::Arc;

fn duo(dir: &std::path::Path) -> Duo {
    common::duo_unopened(dir, &DuoConfig::default())
}

fn pay(d: &mut Duo, side: usize, energy: u64, price: u128) -> Result<(), gridledger_channels::ChannelError> {
    d.request(side, common::pay_at(energy, price))
}

fn latest(d: &Duo, side: usize) -> SignedState {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().clone()
}

/// The honest next update in which side 0 buys 1000 Wh at 100/kWh.
fn honest_update(base: &ChannelState) -> ChannelState {
    let mut st = base.clone();
    st.prev_counter = base.counter;
    st.counter += 1;
    st.balances[0].0 -= 100;
    st.balances[1].0 += 100;
    st.energy[1].0 += 1_000;
    st.last_trade = Some(Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) });
    st
}

#[test]
fn malicious_proposals_are_rejected_and_nothing_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    pay(&mut d, 0, 1_000, 100).unwrap();
    let base = latest(&d, 1).state;
    assert_eq!(base.counter, 1);
    let k0 = d.parties[0].esc_key.clone();
    let stranger = KeyPair::from_seed("stranger");
    let good = honest_update(&base);
    type Case = (&'static str, ChannelState, bool, &'static str);
    let cases: Vec<Case> = vec![
        (
            "theft: the proposer takes coin instead of paying",
            {
                let mut s = good.clone();
                s.balances = [Amount(base.balances[0].0 + 100), Amount(base.balances[1].0 - 100)];
                s
            },
            false,
            "do not follow from the trade",
        ),
        (
            "wrong buyer: the proposer books the peer as buyer",
            {
                let mut s = good.clone();
                s.last_trade.as_mut().unwrap().buyer = 1;
                s
            },
            false,
            "the proposer must be the buyer",
        ),
        ("wrong channel", ChannelState { cid: Hash32([9; 32]), ..good.clone() }, false, "another channel"),
        ("wrong chain", ChannelState { domain: Domain::cns(7), ..good.clone() }, false, "not this channel's"),
        ("another t_delta", ChannelState { t_delta_ms: 1, ..good.clone() }, false, "carries t_delta"),
        ("reused counter", ChannelState { counter: 1, ..good.clone() }, false, "already used"),
        (
            "zero price (α > 0)",
            {
                let mut s = base.clone();
                s.prev_counter = base.counter;
                s.counter += 1;
                s.last_trade =
                    Some(Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount::ZERO, amount: Amount::ZERO });
                s.energy[1].0 += 1_000;
                s
            },
            false,
            "positive energy, price and amount",
        ),
        ("bad signature", good.clone(), true, "bad signature"),
    ];
    for (name, st, forge, want) in cases {
        let m = d.parties[1].machine.as_mut().unwrap();
        let before = m.store().clone();
        let nonce = 4242;
        let sig = if forge { st.sign(&stranger, nonce) } else { st.sign(&k0, nonce) };
        let step = m.handle(Input::Peer(Message::Propose { state: st.clone(), nonce, sig })).unwrap();
        assert!(step.persist.is_none(), "{name}: nothing persisted");
        assert!(step.txs.is_empty(), "{name}: nothing sent to the chain");
        match step.messages.as_slice() {
            [Message::Reject { counter, reason }]
            | [Message::Reject { counter, reason }, Message::Reestablish { .. }] => {
                assert_eq!(*counter, st.counter, "{name}");
                assert!(reason.contains(want), "{name}: reason {reason:?} lacks {want:?}");
            }
            other => panic!("{name}: expected one reject (and our co-signed state), got {other:?}"),
        }
        // Persisted(anything) releases nothing: no signature was held back.
        let released = m.handle(Input::Persisted(u64::MAX)).unwrap();
        assert!(released.messages.is_empty(), "{name}: no held acceptance");
        assert_eq!(m.store(), &before, "{name}: store unchanged");
    }
    // The honest proposal is accepted (the table's cases are not refused
    // for some other reason).
    let m = d.parties[1].machine.as_mut().unwrap();
    let sig = good.sign(&k0, 4242);
    let step = m.handle(Input::Peer(Message::Propose { state: good.clone(), nonce: 4242, sig })).unwrap();
    let v = step.persist.as_ref().expect("acceptance persisted first").version;
    let released = m.handle(Input::Persisted(v)).unwrap();
    assert!(matches!(released.messages.as_slice(), [Message::Accept { counter: 2, .. }]));
}

#[test]
fn a_user_policy_refuses_trades_it_does_not_like() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    let p = &mut d.parties[1];
    p.params.policy = Some(Policy(Arc::new(PriceBounds {
        min_price_per_kwh: Amount(100),
        max_price_per_kwh: Amount(500),
        max_energy: Energy(10_000),
    })));
    p.machine = Some(ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, p.params.clone()));
    d.open();
    pay(&mut d, 0, 1_000, 50).unwrap();
    let rejected = d.parties[0]
        .events
        .iter()
        .any(|e| matches!(e, ChannelEvent::Rejected { counter: 1, reason } if reason.contains("refused by policy")));
    assert!(rejected, "{:?}", d.parties[0].events);
    assert_eq!(latest(&d, 1).state.counter, 0, "side 1 signed nothing");
    pay(&mut d, 0, 1_000, 150).unwrap();
    assert_eq!(latest(&d, 0).state.counter, 2);
    assert_eq!(latest(&d, 1), latest(&d, 0));
    // And the sender's own client refuses a zero trade before signing.
    let r =
        d.input(0, Input::User(Request::Pay { amount: Amount::ZERO, energy: Energy(10), price_per_kwh: Amount::ZERO }));
    assert_eq!(r, Err(gridledger_channels::ChannelError::ZeroTrade));
}

#[test]
fn the_responder_funds_only_the_channel_it_co_signed() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.input(0, Input::User(Request::Open)).unwrap();
    let bytes = d.parties[1].inbox.pop_front().expect("open proposal");
    let m = d.parties[1].machine.as_mut().unwrap();
    let step = m.handle_bytes(&bytes).unwrap();
    m.handle(Input::Persisted(step.persist.unwrap().version)).unwrap();
    assert_eq!(m.phase(), Phase::Opening);
    let hstate = m.latest().unwrap().hstate();
    let t_delta = m.store().t_delta_ms;
    // Whatever a step persists (the first sighting dates the funding
    // deadline) is fed back, releasing what it held.
    let run = |m: &mut ChannelMachine, e: ChainEvent| {
        let mut step = m.handle(Input::Chain(e)).unwrap();
        if let Some(s) = step.persist.take() {
            step.txs.extend(m.handle(Input::Persisted(s.version)).unwrap().txs);
        }
        step
    };
    for (t, h, why) in [(1, hstate, "another t_delta"), (t_delta, Hash32([7; 32]), "another open state")] {
        let step = run(m, ChainEvent::Registered { t_delta_ms: t, hstate: h });
        assert!(step.txs.is_empty(), "{why}: no funding");
        assert!(step.events.iter().any(|e| matches!(e, ChannelEvent::Fault(_))), "{why}: reported");
    }
    let step = run(m, ChainEvent::Registered { t_delta_ms: t_delta, hstate });
    assert!(matches!(step.txs.as_slice(), [t] if t.method == "channel_fund"));
}

#[test]
fn a_cooperative_close_is_agreed_during_a_dispute() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    pay(&mut d, 0, 1_000, 100).unwrap();
    pay(&mut d, 0, 1_000, 100).unwrap();
    // Side 0 closes unilaterally with the newest state: nothing to resolve.
    let newest = latest(&d, 0);
    let k0 = d.parties[0].account.clone();
    let r = d.submit(&k0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: newest }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    d.pump();
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Disputed);
    // Side 1 would rather not wait t_Δ: it proposes the final state, side 0
    // signs it, the chain closes at once.
    d.request(1, Request::Close).unwrap();
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert!(ch.latest.state.is_final);
    assert_eq!(ch.latest.state.balances, [Amount(99_800), Amount(100_200)]);
    assert_eq!(d.esc().disputes[0].outcome, DisputeOutcome::ClosedCooperatively);
    for sid in d.sids {
        assert_eq!(d.msc(sid).disputes_at_fault, 0);
    }
    d.assert_coins_conserved();
    d.assert_no_divergent_signatures();
}

#[test]
fn an_update_not_co_signed_within_t_delta_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    pay(&mut d, 0, 1_000, 100).unwrap();
    d.parties[1].silent = true;
    pay(&mut d, 0, 1_000, 100).unwrap();
    // Unanswered: the next payment must wait.
    assert_eq!(pay(&mut d, 0, 1_000, 100), Err(gridledger_channels::ChannelError::Busy));
    let t_delta = DuoConfig::default().t_delta_ms;
    for _ in 0..(t_delta / 1_000 + 1) {
        d.advance(1_000);
    }
    assert!(d.parties[0].events.contains(&ChannelEvent::FellBack { counter: 2 }), "{:?}", d.parties[0].events);
    let m0 = d.parties[0].machine.as_ref().unwrap();
    assert!(m0.store().proposals.is_empty());
    assert_eq!(m0.latest().unwrap().state.counter, 1, "back on the last co-signed state");
    // The peer returns; trading continues from the fallen-back state.
    d.parties[1].silent = false;
    pay(&mut d, 0, 2_000, 100).unwrap();
    let (l0, l1) = (latest(&d, 0), latest(&d, 1));
    assert_eq!(l0, l1);
    assert_eq!(l0.state.counter, 3);
    assert_eq!(l0.state.balances, [Amount(100_000 - 300), Amount(100_000 + 300)]);
    d.assert_no_divergent_signatures();
}

#[test]
fn a_late_acceptance_after_fallback_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    // Side 1 signs update 1 but its acceptance is lost.
    d.input(0, Input::User(Request::Pay { amount: Amount(100), energy: Energy(1_000), price_per_kwh: Amount(100) }))
        .unwrap();
    let bytes = d.parties[1].inbox.pop_front().unwrap();
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let step = m1.handle_bytes(&bytes).unwrap();
    let released = m1.handle(Input::Persisted(step.persist.unwrap().version)).unwrap();
    assert!(matches!(released.messages.as_slice(), [Message::Accept { counter: 1, .. }]));
    // Side 0 hears nothing (the message retransmissions are lost too) and falls back.
    d.parties[1].silent = true;
    let t_delta = DuoConfig::default().t_delta_ms;
    for _ in 0..(t_delta / 1_000 + 1) {
        d.advance(1_000);
    }
    assert!(d.parties[0].events.contains(&ChannelEvent::FellBack { counter: 1 }));
    // Side 1 hears the fallback and repeats its acceptance: both end on 1.
    d.parties[1].silent = false;
    let step = d.parties[1].machine.as_mut().unwrap().handle(Input::Peer(Message::Fallback { counter: 1 })).unwrap();
    let [Message::Accept { counter, hstate, sig }] = step.messages.as_slice() else { panic!("{:?}", step.messages) };
    let m0 = d.parties[0].machine.as_mut().unwrap();
    let step = m0.handle(Input::Peer(Message::Accept { counter: *counter, hstate: *hstate, sig: *sig })).unwrap();
    m0.handle(Input::Persisted(step.persist.unwrap().version)).unwrap();
    assert_eq!(latest(&d, 0), latest(&d, 1));
}

#[test]
fn resolve_and_settle_are_retried_until_the_chain_shows_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.open();
    pay(&mut d, 1, 2_000, 100).unwrap();
    let stale = latest(&d, 0);
    for _ in 0..2 {
        pay(&mut d, 0, 10_000, 100).unwrap();
    }
    // Side 0 closes with a stale state; side 1's first answer is lost.
    d.parties[1].drop_txs = 1;
    let k0 = d.parties[0].account.clone();
    d.submit(&k0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: stale }), Amount::ZERO);
    d.pump();
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Disputed, "the first resolve was lost");
    d.advance(2_500);
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Open, "the resolve was sent again");
    assert_eq!(ch.latest.state.counter, 3);
    // A unilateral close whose first settle is lost still settles.
    d.parties[1].silent = true;
    d.request(0, Request::Close).unwrap();
    d.advance(6_000); // close timeout: side 0 disputes
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Disputed);
    d.parties[0].drop_txs = 1;
    let t_end = d.channel().unwrap().t_end;
    d.advance(t_end - d.chain.now + 1);
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Disputed, "the first settle was lost");
    for _ in 0..5 {
        d.advance(2_000);
    }
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Closed);
    d.assert_coins_conserved();
}

#[test]
fn a_seller_asks_and_the_buyer_pays_only_within_its_auto_pay_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    // Side 0 pays requests up to 200/kWh and 2_000 Wh without asking its user.
    let p = &mut d.parties[0];
    p.params.auto_pay = Some(Policy(Arc::new(PriceBounds {
        min_price_per_kwh: Amount(1),
        max_price_per_kwh: Amount(200),
        max_energy: Energy(2_000),
    })));
    p.machine = Some(ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, p.params.clone()));
    d.open();
    // Side 1 (the seller) asks for 1_000 Wh at 150/kWh: paid, co-signed.
    d.request(1, Request::AskPayment { energy: Energy(1_000), price_per_kwh: Amount(150) }).unwrap();
    let l = latest(&d, 1);
    assert_eq!(l.state.counter, 1);
    assert_eq!(l.state.balances, [Amount(100_000 - 150), Amount(100_000 + 150)]);
    assert_eq!(l.state.last_trade.unwrap().buyer, 0, "the buyer proposed and signed it");
    assert_eq!(latest(&d, 0), l);
    // Above the policy: only reported to side 0's user, nothing signed.
    d.request(1, Request::AskPayment { energy: Energy(1_000), price_per_kwh: Amount(900) }).unwrap();
    assert!(d.parties[0]
        .events
        .contains(&ChannelEvent::PaymentRequested { energy: Energy(1_000), price_per_kwh: Amount(900) }));
    assert_eq!(latest(&d, 0).state.counter, 1);
    // Without an auto-pay policy (side 1) a request is only reported.
    d.request(0, Request::AskPayment { energy: Energy(10), price_per_kwh: Amount(100) }).unwrap();
    assert!(d.parties[1]
        .events
        .contains(&ChannelEvent::PaymentRequested { energy: Energy(10), price_per_kwh: Amount(100) }));
    assert_eq!(latest(&d, 1).state.counter, 1);
    // A zero request is refused by the asker's own client.
    let r = d.request(1, Request::AskPayment { energy: Energy(0), price_per_kwh: Amount(100) });
    assert_eq!(r, Err(gridledger_channels::ChannelError::ZeroTrade));
}

/// Every refusal of a user request is a typed error and signs nothing.
#[test]
fn user_requests_are_refused_with_typed_errors_and_nothing_signed() {
    use gridledger_channels::ChannelError as E;
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    let pay = |amount: u128, energy: u64, price: u128| Request::Pay {
        amount: Amount(amount),
        energy: Energy(energy),
        price_per_kwh: Amount(price),
    };
    // Before the channel is open.
    let m1 = d.parties[1].machine.as_mut().unwrap();
    assert_eq!(m1.handle(Input::User(pay(100, 1_000, 100))).unwrap_err(), E::NotOpen(Phase::Idle));
    assert_eq!(m1.handle(Input::User(Request::Open)).unwrap_err(), E::NotInitiator);
    assert!(matches!(m1.handle_bytes(&[0xff, 1, 2]), Err(E::Codec(_))));
    d.open();
    let m0 = d.parties[0].machine.as_mut().unwrap();
    let before = m0.store().clone();
    assert_eq!(
        m0.handle(Input::User(pay(101, 1_000, 100))).unwrap_err(),
        E::PriceMismatch { stated: Amount(101), energy: Energy(1_000), price: Amount(100), computed: Amount(100) }
    );
    assert!(matches!(m0.handle(Input::User(pay(1_000_000, 10_000_000, 100))), Err(E::InsufficientBalance { .. })));
    assert_eq!(m0.handle(Input::User(pay(1, u64::MAX, u128::MAX))).unwrap_err(), E::Overflow);
    assert_eq!(m0.store(), &before, "nothing changed");
    // A signed proposal is held until persisted; at window 1 the next
    // request waits its turn and changes nothing.
    let step = m0.handle(Input::User(pay(100, 1_000, 100))).unwrap();
    assert!(step.persist.is_some() && step.messages.is_empty(), "held until persisted");
    let before = m0.store().clone();
    assert_eq!(m0.handle(Input::User(pay(100, 1_000, 100))).unwrap_err(), E::Busy);
    assert_eq!(m0.store(), &before, "nothing changed");
    // A snapshot of another channel is refused on restore.
    let p = &d.parties[0];
    let mut other = p.machine.as_ref().unwrap().store().clone();
    other.cid = Hash32([5; 32]);
    let r = ChannelMachine::restore(p.esc_key.clone(), p.nonce_seed, p.params.clone(), other);
    assert!(matches!(r, Err(E::WrongStore)));
}

/// Proposals refused before the channel is open, or with a malformed
/// trade or final state: each answered by a reject with its reason.
#[test]
fn malformed_open_update_and_final_proposals_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    let k0 = d.parties[0].esc_key.clone();
    let reject_reason = |m: &mut ChannelMachine, st: ChannelState| -> String {
        let before = m.store().clone();
        let step =
            m.handle(Input::Peer(Message::Propose { state: st.clone(), nonce: 5, sig: st.sign(&k0, 5) })).unwrap();
        assert!(step.persist.is_none());
        assert_eq!(m.store(), &before);
        match step.messages.as_slice() {
            [Message::Reject { reason, .. }] | [Message::Reject { reason, .. }, Message::Reestablish { .. }] => {
                reason.clone()
            }
            other => panic!("expected a reject, got {other:?}"),
        }
    };
    // Side 1 before anything is open: an update, or an open on other terms.
    d.input(0, Input::User(Request::Open)).unwrap();
    let bytes = d.parties[1].inbox.pop_front().unwrap();
    let Message::Propose { state: open, .. } = Message::from_bytes(&bytes).unwrap() else { panic!() };
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let r = reject_reason(m1, ChannelState { counter: 1, ..open.clone() });
    assert!(r.contains("update before the channel is open"), "{r}");
    let mut skewed = open.clone();
    skewed.balances[0].0 += 1;
    let r = reject_reason(m1, skewed);
    assert!(r.contains("open state does not match the agreed terms"), "{r}");
    // A party that demands a longer window than the agreed one refuses the open.
    let p = &d.parties[1];
    let mut strict = p.params.clone();
    strict.min_t_delta_ms = p.params.t_delta_ms * 2;
    let mut m = ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, strict);
    let r = reject_reason(&mut m, open.clone());
    assert!(r.contains("below this party's minimum"), "{r}");
    // Open it properly (the real proposal arrives now), then malformed
    // updates and finals.
    d.parties[1].inbox.push_front(bytes);
    d.pump();
    pay(&mut d, 0, 1_000, 100).unwrap();
    let base = latest(&d, 1).state;
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let r = reject_reason(m1, ChannelState { counter: 2, last_trade: None, ..honest_update(&base) });
    assert!(r.contains("update carries no trade"), "{r}");
    let mut wrong_amount = honest_update(&base);
    wrong_amount.last_trade.as_mut().unwrap().amount = Amount(99);
    let r = reject_reason(m1, wrong_amount);
    assert!(r.contains("trade amount does not match energy and price"), "{r}");
    let mut bad_final = base.clone();
    bad_final.prev_counter = base.counter;
    bad_final.counter += 1;
    bad_final.is_final = true;
    bad_final.last_trade = None;
    bad_final.balances = [Amount(bad_final.balances[0].0 + 50), Amount(bad_final.balances[1].0 - 50)];
    let r = reject_reason(m1, bad_final);
    assert!(r.contains("final state differs from the co-signed one"), "{r}");
}

#[test]
fn price_bounds_name_what_they_refuse() {
    let b = PriceBounds { min_price_per_kwh: Amount(10), max_price_per_kwh: Amount(500), max_energy: Energy(5_000) };
    let st = honest_update(&ChannelState {
        domain: Domain::cns(1),
        cid: Hash32([1; 32]),
        t_delta_ms: 10_000,
        counter: 0,
        balances: [Amount(1_000), Amount(1_000)],
        energy: [Energy(0); 2],
        last_trade: None,
        fold: None,
        is_final: false,
        resize: Default::default(),
        prev_counter: 0,
    });
    // The amount is what the trade pays (the floor is checked on it).
    let t = |price: u128, wh: u64| Trade {
        buyer: 0,
        energy: Energy(wh),
        price_per_kwh: Amount(price),
        amount: Trade::price_of(Energy(wh), Amount(price)).unwrap(),
    };
    use gridledger_channels::machine::UpdatePolicy;
    assert!(b.check(&t(600, 1), &st).unwrap_err().contains("outside the accepted"));
    assert!(b.check(&t(100, 6_000), &st).unwrap_err().contains("above the accepted"));
    assert!(b.check(&t(100, 1_000), &st).is_ok());
    // 16 Wh at the 10/kWh floor rounds down to 0 paid: under the floor.
    assert!(b.check(&t(10, 16), &st).unwrap_err().contains("below the minimum"));
}

/// A payment proposed by a side whose chain poller saw the channel active
/// before its peer's did is not refused (no fault booked on the honest
/// proposer, no failed payment): the peer, still `Opening`, says nothing;
/// once it sees the channel active the proposer's re-send is co-signed.
#[test]
fn a_payment_that_reaches_the_peer_before_its_poller_sees_the_channel_active_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.input(0, Input::User(Request::Open)).unwrap();
    // Deliver everything, but hold side 1's sighting of the channel active.
    let mut held = None;
    loop {
        let mut progressed = false;
        for side in 0..2 {
            if side == 1 && held.is_none() && matches!(d.parties[1].chain_inbox.front(), Some(ChainEvent::Active)) {
                held = d.parties[1].chain_inbox.pop_front();
            }
            if let Some(e) = d.parties[side].chain_inbox.pop_front() {
                d.input(side, Input::Chain(e)).unwrap();
                progressed = true;
            }
            progressed |= d.deliver_one(side);
        }
        if !progressed {
            break;
        }
    }
    let active = held.expect("the channel became active");
    assert_eq!(d.parties[0].machine.as_ref().unwrap().phase(), Phase::Open);
    assert_eq!(d.parties[1].machine.as_ref().unwrap().phase(), Phase::Opening);
    let (energy, price) = (Energy(1_000), Amount(100));
    let amount = Trade::price_of(energy, price).unwrap();
    d.input(0, Input::User(Request::Pay { amount, energy, price_per_kwh: price })).unwrap();
    assert!(d.deliver_one(1), "the proposal reached side 1");
    assert!(d.parties[0].inbox.is_empty(), "side 1 answered nothing");
    assert!(!d.parties[1].events.iter().any(|e| matches!(e, ChannelEvent::Fault(_))), "{:?}", d.parties[1].events);
    assert_eq!(latest(&d, 1).state.counter, 0, "side 1 signed nothing yet");
    d.input(1, Input::Chain(active)).unwrap();
    d.pump();
    d.advance(DuoConfig::default().retry_ms);
    assert_eq!(latest(&d, 0).state.counter, 1, "co-signed on the re-send");
    assert_eq!(latest(&d, 1), latest(&d, 0));
    assert!(
        !d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::Rejected { .. })),
        "{:?}",
        d.parties[0].events
    );
    d.assert_no_divergent_signatures();
}
