//! Round-8 attacks on the channel machine and its adjudicator (the round-7
//! fixes: ranking by counter alone, close preempting withdrawals), by a
//! reviewer who did not write them. Tests marked `#[ignore = "attack: ..."]`
//! reproduce a finding and fail on the code they were written against
//! (expected vs observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-channels --test attack_r8 -- --ignored`

mod common;

use common::{advance_alone, co_sign_out_of_band, duo, latest, pay_req};
use gridledger_channels::driver::DuoConfig;
use gridledger_channels::{ChannelEvent, Input, Message, Request};
use gridledger_contracts::cns::{ChannelStateArgs, ChannelStatus, SignedState};
use gridledger_core::{Amount, KeyPair};
use gridledger_ledger::TxStatus;

/// Finding (an honest party's coin locked for good by its counterparty):
/// side 0 buys 1,000 Wh (payment `P`, counter 1). Side 1 co-signs `P` out
/// of band, withholds its acceptance, registers `P` on chain with
/// `channel_update` (allowed: a higher counter than the registered open
/// state) and goes silent. After t_Δ side 0 reports `FellBack`: its newest
/// co-signed state is the open state (counter 0). Side 0 then asks to
/// close: the cooperative close times out (side 1 is silent), so side 0
/// disputes with its newest state, counter 0, which the contract refuses
/// ("stale state: counter 0 is not above the registered 1"). Nothing tells
/// side 0's machine what the chain holds: `cns_channel_updated` is mapped to
/// no `ChainEvent` (neither by this crate's driver nor by the node's
/// `chainlink`), and the registered state is read (`OnChain`) only after a
/// resolved dispute. Side 0 re-sends the same refused dispute until
/// `CloseStalled` and the channel stays open: only side 1 can close it
/// (with `P` co-signed by both, side 0 could dispute with it, as the
/// contract accepts the registered state itself).
///
/// Expected: side 0 learns the registered state (reads the channel after a
/// refused dispute, or maps `cns_channel_updated` to `OnChain`) and the
/// channel closes within a few t_Δ, paying side 0 its balance in `P`.
/// Observed: after 30 t_Δ the channel is still `Open` at counter 1, side 0
/// got nothing back and reported `CloseStalled`.
#[test]
fn a_registered_fallen_back_proposal_does_not_lock_the_honest_party_out_of_its_coin() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    let before = d.balance(0);
    let open = latest(&d, 0);
    d.input(0, Input::User(pay_req(1_000))).unwrap();
    let p = co_sign_out_of_band(&mut d);
    assert!(p.state.counter > open.state.counter);
    let key = d.parties[1].account.clone();
    let r =
        d.submit(&key, "channel_update", borsh::to_vec(&ChannelStateArgs { state: p.clone() }).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "side 1 registers P: {:?}", r.status);
    for _ in 0..15 {
        advance_alone(&mut d, cfg.t_delta_ms / 10);
    }
    assert!(d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::FellBack { .. })), "P fell back");
    assert_eq!(latest(&d, 0).state.counter, open.state.counter, "side 0's newest co-signed state is the open state");
    d.input(0, Input::User(Request::Close)).unwrap();
    for _ in 0..300 {
        advance_alone(&mut d, cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    let stalled = d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::CloseStalled { .. }));
    let refused = d.gas.iter().filter(|g| g.method == "channel_dispute" && !g.success).count();
    assert_eq!(
        ch.status,
        ChannelStatus::Closed,
        "the channel is {:?} at counter {} after 30 t_delta (side 0 close stalled: {stalled}; refused disputes: {refused}; \
         side 0's balance in P is {}, its account gained nothing: {})",
        ch.status,
        ch.latest.state.counter,
        p.state.balances[0],
        d.balance(0) <= before
    );
}

/// Finding (the party half of `attack_cns_r8`'s stale-dispute finding):
/// side 0 (the attacker) pays 5 times, then disputes with its stale state
/// after the first payment (it gains 400 if side 1 stays silent for t_Δ).
/// Within the poll interval in which side 1 has not acted on the dispute,
/// side 0 proposes the cooperative close of the newest state; side 1's
/// machine co-signs it (it co-signs final states whether open or disputed)
/// and side 0 registers it with `channel_close`. The dispute is recorded
/// `ClosedCooperatively` and side 0 is booked no fault: cheating was free.
///
/// Expected: side 0's MSC carries a fault for disputing with a stale state
/// (the chain holds both the disputed state and the newer co-signed close),
/// or side 1's machine does not co-sign a close while a peer's dispute with
/// a state older than its own stands (it resolves first).
/// Observed: 0 faults on side 0.
#[test]
fn a_peer_disputing_with_a_stale_state_is_faulted_even_if_it_then_closes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.request(0, pay_req(1_000)).unwrap();
    let stale = latest(&d, 0);
    for _ in 0..4 {
        d.request(0, pay_req(1_000)).unwrap();
    }
    let newest = latest(&d, 1);
    assert!(newest.state.counter > stale.state.counter);
    assert!(newest.state.balances[0] < stale.state.balances[0], "the stale state is better for side 0");
    // Side 0's modified client: dispute with the stale state...
    let key0 = d.parties[0].account.clone();
    let a = gridledger_contracts::cns::ChannelDisputeArgs { side: 0, state: stale.clone() };
    let r = d.submit(&key0, "channel_dispute", borsh::to_vec(&a).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    // ... and, before side 1 acts on it, the close of the newest state.
    let esc0 = KeyPair::from_seed("cns-esc-0");
    let fin = common::final_after(&newest.state);
    let nonce = 4_242;
    let sig0 = fin.sign(&esc0, nonce);
    d.parties[1].inbox.push_front(Message::Propose { state: fin.clone(), nonce, sig: sig0 }.to_bytes());
    d.deliver_one(1);
    let sig1 = d.parties[0]
        .inbox
        .iter()
        .find_map(|b| match Message::from_bytes(b) {
            Ok(Message::Accept { counter, sig, .. }) if counter == fin.counter => Some(sig),
            _ => None,
        })
        .expect("side 1 co-signs the close");
    let close = SignedState { state: fin, nonce, sigs: [sig0, sig1] };
    let r = d.submit(&key0, "channel_close", borsh::to_vec(&ChannelStateArgs { state: close }).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    d.pump();
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Closed);
    let faults = d.msc(d.sids[0]).disputes_at_fault;
    assert_eq!(
        faults, 1,
        "side 0 disputed with counter {} while {} existed",
        stale.state.counter, newest.state.counter
    );
}

/// Finding (the user is told a payment was not made, and the chain charges
/// it): side 0 buys 1,000 Wh (payment `P`). Side 1 co-signs `P` out of
/// band and withholds its acceptance; after t_Δ side 0 reports
/// `FellBack { P }` (the party answers the user's `pay` with "fell back":
/// not paid, so a user pays again or elsewhere). Side 1 then registers `P`
/// and disputes with it; side 0 holds nothing newer, so the dispute
/// settles on `P` and side 0 is charged. Side 0's event stream shows only
/// `Closed { counter: P }`: no `PaymentSent` for `P` (as `adopt` reports
/// for an abandoned proposal that went through after all when it learns
/// the state from the peer or after a resolved dispute), and its machine
/// still holds the state before `P` as its newest.
///
/// Expected: once the chain settles on `P`, side 0 reports `P` as sent
/// (`PaymentSent { counter: P }`) and holds `P` as its newest state.
/// Observed: `FellBack { P }` and `Closed { P }` only; its newest state is
/// the one before `P`.
#[test]
fn a_fallen_back_payment_the_chain_settles_on_is_reported_sent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    d.input(0, Input::User(pay_req(1_000))).unwrap();
    let p = co_sign_out_of_band(&mut d);
    let c = p.state.counter;
    for _ in 0..15 {
        advance_alone(&mut d, cfg.t_delta_ms / 10);
    }
    assert!(d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::FellBack { counter } if *counter == c)));
    let key = d.parties[1].account.clone();
    let r =
        d.submit(&key, "channel_update", borsh::to_vec(&ChannelStateArgs { state: p.clone() }).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    let a = gridledger_contracts::cns::ChannelDisputeArgs { side: 1, state: p.clone() };
    let r = d.submit(&key, "channel_dispute", borsh::to_vec(&a).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    for _ in 0..30 {
        advance_alone(&mut d, cfg.t_delta_ms / 10);
    }
    let ch = d.channel().unwrap();
    assert_eq!((ch.status, ch.latest.state.counter), (ChannelStatus::Closed, c), "settled on P");
    let ev: Vec<_> =
        d.parties[0].events.iter().filter(|e| !matches!(e, ChannelEvent::PaymentReceived { .. })).collect();
    let sent =
        d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::PaymentSent { counter, .. } if *counter == c));
    let newest = latest(&d, 0).state.counter;
    assert!(
        sent && newest == c,
        "side 0 was charged P (counter {c}) on chain; its newest state is {newest}, its events: {ev:?}"
    );
}

/// Held (the honest side of the cooperative-close fault rule): side 0
/// disputes with its open state while its payment `P` awaits side 1, then
/// learns `P` co-signed (side 1's reestablish). While its own dispute with
/// the older state stands, side 0 does not co-sign the close of `P`: the
/// contract would fault it for closing past the state it disputed with;
/// side 1 resolves with `P` instead (no fault: side 0's own proposal).
#[test]
fn a_raiser_that_learns_a_newer_state_does_not_co_sign_its_close_during_its_dispute() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig::default();
    let mut d = duo(dir.path(), &cfg);
    let open = latest(&d, 0);
    d.input(0, Input::User(pay_req(1_000))).unwrap();
    let p = co_sign_out_of_band(&mut d);
    let key0 = d.parties[0].account.clone();
    let a = gridledger_contracts::cns::ChannelDisputeArgs { side: 0, state: open.clone() };
    let r = d.submit(&key0, "channel_dispute", borsh::to_vec(&a).unwrap(), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    while let Some(e) = d.parties[0].chain_inbox.pop_front() {
        d.input(0, Input::Chain(e)).unwrap();
    }
    d.parties[1].chain_inbox.clear();
    d.parties[0].inbox.push_front(Message::Reestablish { latest: Some(p.clone()) }.to_bytes());
    d.deliver_one(0);
    assert_eq!(latest(&d, 0).state.counter, p.state.counter, "side 0 learnt P");
    d.parties[1].inbox.clear();
    let fin = common::final_after(&p.state);
    let nonce = 4_243;
    let sig1 = fin.sign(&common::side1_esc_key(), nonce);
    d.parties[0].inbox.push_front(Message::Propose { state: fin.clone(), nonce, sig: sig1 }.to_bytes());
    d.deliver_one(0);
    let accepted = d.parties[1]
        .inbox
        .iter()
        .any(|b| matches!(Message::from_bytes(b), Ok(Message::Accept { counter, .. }) if counter == fin.counter));
    assert!(!accepted, "side 0 co-signed the close of P while its dispute with counter {} stands", open.state.counter);
}
