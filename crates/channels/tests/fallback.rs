//! `Fallback` is resent until the peer answers it (seed §3.3 Fig 7: the
//! update outcome is the same for both parties), and a peer that never
//! signed the proposal answers with a reject that ends the resends.

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChannelEvent, Input, Message, Request};
use gridledger_contracts::cns::Trade;
use gridledger_contracts::default_registry;
use gridledger_core::{Amount, Energy};
use gridledger_ledger::devnet::DevChain;

#[test]
fn a_fallback_the_peer_never_signed_is_confirmed_and_no_longer_resent() {
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, Amount(1_000_000_000_000), default_registry()).unwrap();
    let mut d = Duo::setup(dc, &DuoConfig::default());
    d.open();
    let (energy, price) = (Energy(1_000), Amount(100));
    let amount = Trade::price_of(energy, price).unwrap();
    // Side 1 is down: the proposal and the first Fallback are lost.
    d.parties[1].silent = true;
    d.input(0, Input::User(Request::Pay { amount, energy, price_per_kwh: price })).unwrap();
    d.advance(1_000);
    d.advance(11_000);
    assert!(d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::FellBack { counter: 1 })));
    assert!(!d.parties[0].machine.as_ref().unwrap().store().abandoned.is_empty());
    // Side 1 back: the resent Fallback reaches it, it records that it will
    // never sign counter 1 and says so; side 0 stops resending.
    d.parties[1].silent = false;
    for _ in 0..3 {
        d.advance(2_000);
    }
    let s1 = d.parties[1].machine.as_ref().unwrap().store().clone();
    assert_eq!(s1.peer_fallback_upto, Some(1), "side 1 learnt of the fallback");
    assert_eq!(s1.latest.as_ref().unwrap().state.counter, 0, "side 1 never signed counter 1");
    // The answered proposal stays adoptable (a late acceptance would still
    // be taken), but a further tick sends no Fallback.
    let now = d.chain.now + 2_000;
    let step = d.parties[0].machine.as_mut().unwrap().handle(Input::Tick(now)).unwrap();
    assert!(!step.messages.iter().any(|m| matches!(m, Message::Fallback { .. })));
    // Both continue: the next payment is co-signed by both.
    d.request(0, Request::Pay { amount, energy, price_per_kwh: price }).unwrap();
    let c0 = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.counter;
    let c1 = d.parties[1].machine.as_ref().unwrap().latest().unwrap().state.counter;
    assert_eq!((c0, c1), (2, 2));
}

/// Refused: a registered state (`ChainEvent::Updated`) without the peer's
/// valid signature is not kept, and one the driver could not read is
/// reported as a fault; neither changes the machine, and its close then
/// disputes with its own newest co-signed state (not a kept one).
#[test]
fn a_registered_state_not_co_signed_or_not_read_is_not_adopted() {
    use gridledger_channels::ChainEvent;
    use gridledger_contracts::cns::ChannelStatus;
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, Amount(1_000_000_000_000), default_registry()).unwrap();
    let cfg = DuoConfig::default();
    let mut d = Duo::setup(dc, &cfg);
    d.open();
    let store = |d: &Duo| d.parties[0].machine.as_ref().unwrap().store().to_bytes();
    let before = store(&d);
    let own = d.parties[0].machine.as_ref().unwrap().latest().unwrap().clone();
    // Signed by side 0 only (side 1's signature is of the open state).
    let mut forged = own.clone();
    forged.state.counter = 3;
    forged.state.prev_counter = 0;
    forged.state.balances.swap(0, 1);
    forged.sigs[0] = forged.state.sign(&gridledger_core::KeyPair::from_seed("cns-esc-0"), forged.nonce);
    let events = d.parties[0].events.len();
    d.input(0, Input::Chain(ChainEvent::Updated { counter: 3, state: Some(Box::new(forged)) })).unwrap();
    assert_eq!(d.parties[0].events.len(), events, "a forged registered state is ignored");
    d.input(0, Input::Chain(ChainEvent::Updated { counter: 3, state: None })).unwrap();
    assert!(
        matches!(d.parties[0].events.last(), Some(ChannelEvent::Fault(f)) if f.contains("could not be read")),
        "{:?}",
        d.parties[0].events.last()
    );
    assert_eq!(store(&d), before, "the machine's store is unchanged");
    // The close goes through the dispute with the machine's own newest state.
    d.parties[1].silent = true;
    d.request(0, Request::Close).unwrap();
    for _ in 0..3 {
        d.advance(cfg.close_timeout_ms);
    }
    let ch = d.channel().unwrap();
    assert!(
        matches!(ch.status, ChannelStatus::Disputed | ChannelStatus::Closed)
            && ch.latest.state.counter == own.state.counter,
        "{:?} at {}",
        ch.status,
        ch.latest.state.counter
    );
    assert!(!d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::Fault(f) if f.contains("adopted"))));
}
