//! The funding deadline survives a restart: it counts from when the party
//! first saw its open registered, and that instant is in its durable store.

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::FUNDING_TIMEOUT_MS;
use gridledger_channels::{Input, Request};
use gridledger_contracts::cns::{ChannelOpenArgs, ChannelStatus};
use gridledger_contracts::default_registry;
use gridledger_core::Amount;
use gridledger_ledger::devnet::DevChain;

/// The initiator registers the co-signed open and never funds. The
/// responder funds, then restarts half-way to its funding deadline (its
/// chain events are not delivered again). It still aborts at the deadline
/// counted from the registration, not from the restart, and gets its
/// deposit back. (Before, the deadline lived in memory only: after the
/// restart the responder never aborted and its deposit stayed locked.)
#[test]
fn a_party_restarted_mid_funding_aborts_at_the_original_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, Amount(1_000_000_000_000), default_registry()).unwrap();
    let mut d = Duo::setup(dc, &DuoConfig::default());
    d.advance(1_000);
    d.input(0, Input::User(Request::Open)).unwrap();
    let bytes = d.parties[1].inbox.pop_front().expect("open proposal delivered");
    let m1 = d.parties[1].machine.as_mut().unwrap();
    let step = m1.handle_bytes(&bytes).unwrap();
    m1.handle(Input::Persisted(step.persist.unwrap().version)).unwrap();
    // Side 0 registers the open and goes silent, unfunded.
    d.parties[0].silent = true;
    d.parties[0].inbox.clear();
    let open = d.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    let acct0 = d.parties[0].account.clone();
    let a = gridledger_contracts::args(&ChannelOpenArgs { scid: d.scid, open });
    d.submit(&acct0, "channel_open", a, Amount::ZERO);
    d.pump();
    // The machine's clock is its last tick, at most a few blocks behind.
    let registered = d.parties[1].machine.as_ref().unwrap().store().registered_at.expect("first sighting stored");
    assert!(registered > 0 && registered <= d.chain.now, "{registered} vs chain {}", d.chain.now);
    assert!(d.channel().unwrap().funded[1].is_some(), "side 1 funded");
    let before = d.balance(1);
    let gas_seen = d.gas.len();
    // Half-way to the deadline side 1 crashes and restarts from its disk.
    let step = 10_000;
    for _ in 0..(FUNDING_TIMEOUT_MS / 2 / step) {
        d.advance(step);
    }
    d.crash(1);
    d.restart(1);
    // Just before the original deadline: still funding.
    while d.chain.now + step < registered + FUNDING_TIMEOUT_MS {
        d.advance(step);
    }
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Funding, "not before the deadline");
    // Just after it: aborted, the deposit refunded (less the abort's fee).
    d.advance(step);
    d.advance(step);
    assert!(d.chain.now < registered + FUNDING_TIMEOUT_MS + FUNDING_TIMEOUT_MS / 2, "long before a reset deadline");
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Closed, "aborted at the original deadline");
    let me = d.parties[1].account.address();
    let fees: u128 = d.gas[gas_seen..].iter().filter(|g| g.sender == me).map(|g| g.fee.0).sum();
    assert_eq!(d.balance(1) + fees, before + d.parties[1].params.capacity[1].0, "deposit back in full");
}
