//! The reconnect handshake and simultaneous proposals (issue 10: "a
//! reconnect handshake where both sides exchange their latest states", and
//! "simultaneous proposals from both sides reject each other"): after a
//! restart or a dropped link both parties exchange their newest co-signed
//! state and resend what awaits the other, so they agree again at once, not
//! a retry interval later; when both propose at once, the side that did not
//! propose the newest co-signed state goes first and the other's follows,
//! instead of both being refused.

mod common;
use common::{pay_req, BAL};

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChannelEvent, Request};
use gridledger_contracts::default_registry;
use gridledger_ledger::devnet::DevChain;

fn duo(dir: &std::path::Path) -> Duo {
    common::duo(dir, &DuoConfig::default())
}

fn counter(d: &Duo, side: usize) -> u64 {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().state.counter
}

fn outstanding(d: &Duo, side: usize) -> usize {
    d.parties[side].machine.as_ref().unwrap().store().proposals.len()
}

/// Both hold the same co-signed state.
fn assert_agree(d: &Duo) {
    let l = |s: usize| d.parties[s].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(l(0), l(1), "both parties hold the same co-signed state");
    d.assert_no_divergent_signatures();
}

#[test]
fn simultaneous_proposals_both_go_through_one_after_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    for round in 0..10u64 {
        let before = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.balances;
        // Both propose before either hears the other.
        d.input(0, pay_req(1_000 + round).into_input()).unwrap();
        d.input(1, pay_req(3_000).into_input()).unwrap();
        d.pump();
        assert_agree(&d);
        let after = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.balances;
        let (p0, p1) = ((1_000 + round) as u128 / 10, 300u128);
        assert_eq!(after[0].0, before[0].0 - p0 + p1, "round {round}: both payments landed");
        assert_eq!(after[1].0, before[1].0 + p0 - p1, "round {round}");
    }
    for side in 0..2 {
        let ev = &d.parties[side].events;
        assert!(!ev.iter().any(|e| matches!(e, ChannelEvent::Rejected { .. })), "side {side}: nothing refused: {ev:?}");
        let sent = ev.iter().filter(|e| matches!(e, ChannelEvent::PaymentSent { .. })).count();
        assert_eq!(sent, 10, "side {side}: every payment co-signed");
    }
    let retried = |s: usize| d.parties[s].events.iter().filter(|e| matches!(e, ChannelEvent::Retried { .. })).count();
    // Per round: the winner's re-proposal above both counters, then the
    // loser's given-up payment.
    assert_eq!(retried(0) + retried(1), 20, "two proposals made again per round");
    // Close still works and the chain pays the agreed balances.
    d.request(0, Request::Close).unwrap();
    d.assert_coins_conserved();
}

/// Side 1 persisted and sent its acceptance, which was lost with the
/// link; side 1 restarts. The handshake hands side 0 the co-signed state.
#[test]
fn an_acceptance_lost_with_the_link_is_recovered_by_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.input(0, pay_req(1_000).into_input()).unwrap();
    assert!(d.deliver_one(1), "the proposal reaches side 1");
    assert_eq!(counter(&d, 1), 1, "side 1 co-signed it");
    d.parties[0].inbox.clear(); // the acceptance is lost with the link
    d.crash(1);
    d.restart(1);
    d.pump();
    assert_eq!(outstanding(&d, 0), 1, "without the handshake side 0 still waits");
    d.reconnect();
    assert_eq!(counter(&d, 0), 1);
    assert_eq!(outstanding(&d, 0), 0);
    assert!(d.parties[0].events.iter().any(|e| matches!(e, ChannelEvent::PaymentSent { counter: 1, .. })));
    assert_agree(&d);
    d.request(1, pay_req(2_000)).unwrap();
    assert_eq!(counter(&d, 0), 2);
    assert_agree(&d);
}

/// The proposer is killed after sending its proposal and before the
/// acceptance arrives; it restarts and reconnects.
#[test]
fn a_proposer_killed_mid_update_learns_the_co_signed_state_on_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.input(0, pay_req(1_000).into_input()).unwrap();
    d.crash(0);
    d.pump(); // side 1 co-signs; its acceptance finds nobody
    assert_eq!(counter(&d, 1), 1);
    d.restart(0);
    assert_eq!(outstanding(&d, 0), 1, "the proposal survived the crash");
    d.reconnect();
    assert_eq!(counter(&d, 0), 1);
    assert_eq!(outstanding(&d, 0), 0);
    assert_agree(&d);
}

/// The receiver is killed before its acceptance is durable: it restarts
/// without it, and the handshake resends the proposal, which it co-signs.
#[test]
fn a_receiver_killed_before_persisting_co_signs_the_resent_proposal_on_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    d.parties[1].crash_before_persist = true;
    d.input(0, pay_req(1_000).into_input()).unwrap();
    d.pump();
    assert!(d.parties[1].machine.is_none(), "side 1 died before its store was written");
    d.restart(1);
    assert_eq!(counter(&d, 1), 0, "nothing signed survived");
    d.reconnect();
    assert_eq!(counter(&d, 0), 1);
    assert_eq!(counter(&d, 1), 1);
    assert_agree(&d);
}

/// Convenience: a request as an input.
trait IntoInput {
    fn into_input(self) -> gridledger_channels::Input;
}
impl IntoInput for Request {
    fn into_input(self) -> gridledger_channels::Input {
        gridledger_channels::Input::User(self)
    }
}

/// The acceptance of the open is lost with the link: the handshake hands
/// side 0 its co-signed open, and side 0 registers and funds the channel as
/// if the acceptance had arrived (not only records it).
#[test]
fn a_lost_acceptance_of_the_open_still_registers_the_channel_after_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, BAL, default_registry()).unwrap();
    let mut d = Duo::setup(dc, &DuoConfig::default());
    d.input(0, Request::Open.into_input()).unwrap();
    assert!(d.deliver_one(1), "the open reaches side 1");
    d.parties[0].inbox.clear(); // its acceptance is lost
    assert!(d.channel().is_none());
    d.reconnect();
    let ch = d.channel().expect("registered on chain");
    assert_eq!(ch.status, gridledger_contracts::cns::ChannelStatus::Open, "both sides funded");
    assert_agree(&d);
    d.request(0, pay_req(1_000)).unwrap();
    assert_eq!(counter(&d, 1), 1);
}
