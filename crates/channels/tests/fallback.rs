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
