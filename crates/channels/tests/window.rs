//! The proposal window: several update proposals in flight, each still
//! signed only after the store holding it is durable, acceptances
//! cumulative, a rejection or fallback taking the rest of the window with
//! it, and crashes at every persist losing no co-signed state.

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds, MAX_STORE_BYTES, MAX_WINDOW};
use gridledger_channels::{ChannelError, ChannelEvent, Input, Message, Request};
use gridledger_contracts::cns::{SignedState, Trade};
use gridledger_contracts::default_registry;
use gridledger_core::{Amount, Energy};
use gridledger_ledger::devnet::DevChain;
use std::sync::Arc;

const BAL: Amount = Amount(1_000_000_000_000);

fn duo(dir: &std::path::Path, window: usize) -> Duo {
    let dc = DevChain::open(dir, 6, BAL, default_registry()).unwrap();
    Duo::setup(dc, &DuoConfig { window, ..DuoConfig::default() })
}

fn pay_req(energy: u64, price: u128) -> Request {
    let (energy, price) = (Energy(energy), Amount(price));
    Request::Pay { amount: Trade::price_of(energy, price).unwrap(), energy, price_per_kwh: price }
}

fn latest(d: &Duo, side: usize) -> SignedState {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().clone()
}

fn counters(msgs: &[Message]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Propose { state, .. } => Some(state.counter),
            _ => None,
        })
        .collect()
}

/// Three proposals signed before any store is durable: nothing leaves;
/// `Persisted(v)` releases exactly the proposals whose store is `≤ v`, in
/// order (one fdatasync of a group commit may release several).
#[test]
fn proposals_in_the_window_leave_only_once_their_store_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.open();
    let m = d.parties[0].machine.as_mut().unwrap();
    let mut versions = vec![];
    for _ in 0..3 {
        let step = m.handle(Input::User(pay_req(1_000, 100))).unwrap();
        assert!(step.messages.is_empty(), "held until persisted");
        versions.push(step.persist.expect("persist").version);
    }
    assert_eq!(m.store().proposals.len(), 3);
    let first = m.handle(Input::Persisted(versions[0])).unwrap();
    assert_eq!(counters(&first.messages), vec![1], "only the first store is durable");
    let rest = m.handle(Input::Persisted(versions[2])).unwrap();
    assert_eq!(counters(&rest.messages), vec![2, 3], "one sync covers the rest, in order");
    assert!(m.handle(Input::Persisted(versions[2])).unwrap().messages.is_empty(), "released once");
}

/// A full window refuses the next payment with `Busy` and changes nothing;
/// the peer co-signs the whole window in order; both end on the same state
/// with every payment applied.
#[test]
fn a_full_window_is_co_signed_in_order_and_the_next_payment_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 8);
    d.open();
    let start = latest(&d, 0).state.balances;
    for _ in 0..8 {
        d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    }
    let m = d.parties[0].machine.as_mut().unwrap();
    let before = m.store().clone();
    assert_eq!(m.handle(Input::User(pay_req(1_000, 100))).unwrap_err(), ChannelError::Busy);
    assert_eq!(m.store(), &before, "nothing changed");
    // An open or a close does not join a window of updates either.
    assert_eq!(m.handle(Input::User(Request::Open)).unwrap_err(), ChannelError::Busy);
    d.pump();
    let (l0, l1) = (latest(&d, 0), latest(&d, 1));
    assert_eq!(l0, l1);
    assert_eq!(l0.state.counter, 8);
    assert_eq!(l0.state.balances[0].0, start[0].0 - 800);
    assert_eq!(l0.state.balances[1].0, start[1].0 + 800);
    let sent = d.parties[0].events.iter().filter(|e| matches!(e, ChannelEvent::PaymentSent { .. })).count();
    assert_eq!(sent, 8);
    assert!(d.parties[0].machine.as_ref().unwrap().store().proposals.is_empty());
    d.assert_no_divergent_signatures();
}

/// The peer refuses the second proposal of a window (policy): it and every
/// later one are rejected; the first stays co-signed; trading continues.
#[test]
fn a_rejected_proposal_takes_the_rest_of_the_window_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    let bounds =
        PriceBounds { min_price_per_kwh: Amount(1), max_price_per_kwh: Amount(500), max_energy: Energy(1_000_000) };
    d.parties[1].params.policy = Some(Policy(Arc::new(bounds)));
    d.crash(1);
    d.restart(1);
    d.open();
    d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    d.input(0, Input::User(pay_req(1_000, 900))).unwrap();
    d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    d.pump();
    let (l0, l1) = (latest(&d, 0), latest(&d, 1));
    assert_eq!(l0, l1);
    assert_eq!(l0.state.counter, 1, "only the first was co-signed");
    let rejected: Vec<u64> = d.parties[0]
        .events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::Rejected { counter, .. } => Some(*counter),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, vec![2, 3]);
    assert!(d.parties[0].machine.as_ref().unwrap().store().proposals.is_empty());
    d.request(0, pay_req(1_000, 100)).unwrap();
    assert_eq!(latest(&d, 0), latest(&d, 1));
    assert_eq!(latest(&d, 0).state.counter, 4, "counters 2 and 3 stay used");
    d.assert_no_divergent_signatures();
}

/// Acceptances are cumulative: with the first three lost, the fourth
/// settles all four proposals.
#[test]
fn a_later_acceptance_covers_lost_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.open();
    for _ in 0..4 {
        d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    }
    // Side 1 co-signs all four; the first three acceptances are lost.
    while let Some(bytes) = d.parties[1].inbox.pop_front() {
        let step = d.parties[1].machine.as_mut().unwrap().handle_bytes(&bytes).unwrap();
        let v = step.persist.as_ref().map(|s| s.version);
        let released = d.parties[1].machine.as_mut().unwrap().handle(Input::Persisted(v.unwrap())).unwrap();
        for m in released.messages {
            if matches!(m, Message::Accept { counter: 4, .. }) {
                d.parties[0].inbox.push_back(m.to_bytes());
            }
        }
    }
    d.pump();
    assert_eq!(latest(&d, 0), latest(&d, 1));
    assert_eq!(latest(&d, 0).state.counter, 4);
    let sent: Vec<u64> = d.parties[0]
        .events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::PaymentSent { counter, .. } => Some(*counter),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![1, 2, 3, 4]);
}

/// The peer co-signed half a window, then went silent: the window falls
/// back after t_Δ; when the peer returns it re-accepts the half it signed
/// and refuses the rest for ever, so both end on the same state.
#[test]
fn a_window_falling_back_after_partial_co_signing_ends_on_one_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.open();
    for _ in 0..4 {
        d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    }
    // Side 1 co-signs the first two; its acceptances and the other two
    // proposals are lost.
    for _ in 0..2 {
        let bytes = d.parties[1].inbox.pop_front().unwrap();
        let m1 = d.parties[1].machine.as_mut().unwrap();
        let step = m1.handle_bytes(&bytes).unwrap();
        m1.handle(Input::Persisted(step.persist.unwrap().version)).unwrap();
    }
    d.parties[1].inbox.clear();
    assert_eq!(latest(&d, 1).state.counter, 2);
    d.parties[1].silent = true;
    let t_delta = DuoConfig::default().t_delta_ms;
    for _ in 0..(t_delta / 1_000 + 1) {
        d.advance(1_000);
    }
    let fell: Vec<u64> = d.parties[0]
        .events
        .iter()
        .filter_map(|e| match e {
            ChannelEvent::FellBack { counter } => Some(*counter),
            _ => None,
        })
        .collect();
    assert_eq!(fell, vec![1, 2, 3, 4], "the whole window fell back");
    d.parties[1].silent = false;
    for _ in 0..3 {
        d.advance(2_000);
    }
    assert_eq!(latest(&d, 0), latest(&d, 1), "both on the state side 1 co-signed");
    assert_eq!(latest(&d, 0).state.counter, 2);
    assert_eq!(d.parties[1].machine.as_ref().unwrap().store().peer_fallback_upto, Some(4));
    assert!(d.parties[0].machine.as_ref().unwrap().store().abandoned.is_empty(), "answered: no more resends");
    // Trading goes on above the fallen-back counters.
    d.request(0, pay_req(1_000, 100)).unwrap();
    assert_eq!(latest(&d, 0), latest(&d, 1));
    assert_eq!(latest(&d, 0).state.counter, 5);
    d.assert_no_divergent_signatures();
}

/// Crash either party at its k-th persist (before the store is written)
/// for every k of a run of windowed payments, restart it from its disk,
/// and let retransmission finish: every signature that ever left a party
/// is covered by its restored store (`signed_upto`), the two parties end
/// on the same co-signed state, no counter carries two different signed
/// states, and a cooperative close conserves coin.
#[test]
fn a_crash_at_any_persist_under_a_window_loses_no_co_signed_state() {
    let ks: Vec<u32> = match std::env::var("GRIDLEDGER_WINDOW_CRASH_ALL") {
        Ok(_) => (0..40).collect(),
        Err(_) => vec![0, 1, 2, 3, 5, 8, 13, 21],
    };
    for side in 0..2 {
        for &k in &ks {
            let dir = tempfile::tempdir().unwrap();
            let mut d = duo(dir.path(), 4);
            d.open();
            d.parties[side].crash_after_persists = Some(k);
            for i in 0..12u64 {
                // Side 0 keeps paying; a crashed side 0 drops the request.
                let _ = d.input(0, Input::User(pay_req(100 + i, 100)));
                if i % 3 == 2 {
                    d.pump();
                }
                for s in 0..2 {
                    if d.parties[s].machine.is_none() {
                        let signed = d.parties[s].signed.iter().map(|(c, _)| *c).max();
                        d.restart(s);
                        let upto = d.parties[s].machine.as_ref().unwrap().store().signed_upto;
                        assert!(
                            signed <= upto,
                            "side {s} crash {k}: signed {signed:?} left before its store ({upto:?})"
                        );
                    }
                }
            }
            // Past the run's persists: no crash during the recovery.
            d.parties[side].crash_after_persists = None;
            for _ in 0..4 {
                d.advance(2_500);
            }
            let (l0, l1) = (latest(&d, 0), latest(&d, 1));
            assert_eq!(l0, l1, "side {side} crash at persist {k}: parties disagree");
            let s0 = d.parties[0].machine.as_ref().unwrap().store();
            assert!(s0.proposals.is_empty(), "side {side} crash {k}: window drained");
            d.assert_no_divergent_signatures();
            d.request(1, Request::Close).unwrap();
            d.advance(1_000);
            assert!(
                d.channel().is_some_and(|c| c.status == gridledger_contracts::cns::ChannelStatus::Closed),
                "side {side} crash {k}: not closed: {:?} {:?} / {:?}",
                d.channel().map(|c| c.status),
                d.parties[1].machine.as_ref().map(|m| m.phase()),
                d.parties[1].events.iter().rev().take(4).collect::<Vec<_>>()
            );
            d.assert_coins_conserved();
        }
    }
}

/// A full window and a full abandoned list fit the store bound.
#[test]
fn a_full_window_fits_the_store_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), MAX_WINDOW);
    d.open();
    for _ in 0..MAX_WINDOW {
        d.input(0, Input::User(pay_req(1_000, 100))).unwrap();
    }
    let mut store = d.parties[0].machine.as_ref().unwrap().store().clone();
    assert_eq!(store.proposals.len(), MAX_WINDOW);
    store.abandoned = store.proposals.clone();
    let n = store.to_bytes().len();
    assert!(n * 2 < MAX_STORE_BYTES, "{n} bytes");
}
