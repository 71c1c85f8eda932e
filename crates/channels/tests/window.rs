//! The proposal window: several update proposals in flight, each still
//! signed only after the store holding it is durable, acceptances
//! cumulative, a rejection or fallback taking the rest of the window with
//! it, and crashes at every persist losing no co-signed state.

mod common;
use common::{latest, pay_at as pay_req};

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds, MAX_FOLD, MAX_STORE_BYTES, MAX_WINDOW};
use gridledger_channels::{ChannelError, ChannelEvent, Input, Message, Request};
use gridledger_contracts::cns::{Fold, Trade};
use gridledger_core::{Amount, Energy};
use std::sync::Arc;

fn duo(dir: &std::path::Path, window: usize) -> Duo {
    common::duo_unopened(dir, &DuoConfig { window, ..DuoConfig::default() })
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
    let now = d.chain.now + 2_000;
    let step = d.parties[0].machine.as_mut().unwrap().handle(Input::Tick(now)).unwrap();
    assert!(!step.messages.iter().any(|m| matches!(m, Message::Fallback { .. })), "answered: no more resends");
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

/// A full window of full folds and a full abandoned list fit the store
/// bound.
#[test]
fn a_full_window_fits_the_store_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), MAX_WINDOW);
    d.open();
    for _ in 0..MAX_WINDOW {
        d.input(0, Input::User(Request::PayMany(vec![item(10, 100); MAX_FOLD]))).unwrap();
    }
    let mut store = d.parties[0].machine.as_ref().unwrap().store().clone();
    assert_eq!(store.proposals.len(), MAX_WINDOW);
    store.abandoned = store.proposals.clone();
    let n = store.to_bytes().len();
    assert!(n * 2 < MAX_STORE_BYTES, "{n} bytes");
}

fn item(energy: u64, price: u128) -> (Amount, Energy, Amount) {
    let (e, p) = (Energy(energy), Amount(price));
    (Trade::price_of(e, p).unwrap(), e, p)
}

/// Five payments at different prices folded into one update: one
/// co-signed state whose fold binds the count and hash of the list, with
/// every payment applied.
#[test]
fn folded_payments_are_co_signed_as_one_state_binding_every_trade() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.open();
    let start = latest(&d, 0).state;
    let items: Vec<_> = (1..=5u64).map(|i| item(100 * i, 50 + u128::from(i))).collect();
    let total: u128 = items.iter().map(|(a, _, _)| a.0).sum();
    let energy: u64 = items.iter().map(|(_, e, _)| e.0).sum();
    d.request(0, Request::PayMany(items.clone())).unwrap();
    let (l0, l1) = (latest(&d, 0), latest(&d, 1));
    assert_eq!(l0, l1);
    assert_eq!(l0.state.counter, 1, "one update for five payments");
    let trades: Vec<Trade> =
        items.iter().map(|(a, e, p)| Trade { buyer: 0, energy: *e, price_per_kwh: *p, amount: *a }).collect();
    let fold = l0.state.fold.expect("a folded state");
    assert_eq!((fold.trades, fold.hash), (5, Fold::hash(&trades)));
    assert_eq!(l0.state.last_trade, trades.last().copied());
    assert_eq!(l0.state.balances[0].0, start.balances[0].0 - total);
    assert_eq!(l0.state.balances[1].0, start.balances[1].0 + total);
    assert_eq!(l0.state.energy[1].0, energy);
    assert!(d.parties[1].events.contains(&ChannelEvent::PaymentReceived { counter: 1, amount: Amount(total) }));
    assert!(d.parties[0].events.contains(&ChannelEvent::PaymentSent { counter: 1, amount: Amount(total) }));
    // And the folded state closes the channel like any other.
    d.request(0, Request::Close).unwrap();
    assert_eq!(d.channel().unwrap().status, gridledger_contracts::cns::ChannelStatus::Closed);
    d.assert_coins_conserved();
}

/// A user's invalid fold is refused with a typed error before anything is
/// signed, and changes nothing.
#[test]
fn invalid_folds_are_refused_by_the_payer_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    d.open();
    let m = d.parties[0].machine.as_mut().unwrap();
    let before = m.store().clone();
    type Item = (Amount, Energy, Amount);
    let cases: Vec<(Vec<Item>, ChannelError)> = vec![
        (vec![], ChannelError::FoldSize(0)),
        (vec![item(100, 100); MAX_FOLD + 1], ChannelError::FoldSize(MAX_FOLD + 1)),
        (vec![item(100, 100), (Amount(10), Energy(100), Amount::ZERO)], ChannelError::ZeroTrade),
        (
            vec![item(100, 100), (Amount(11), Energy(100), Amount(100))],
            ChannelError::PriceMismatch {
                stated: Amount(11),
                energy: Energy(100),
                price: Amount(100),
                computed: Amount(10),
            },
        ),
        (
            vec![item(1_000_000, 1_000), item(1_000_000, 1_000)],
            ChannelError::InsufficientBalance { have: Amount(100_000), need: Amount(2_000_000) },
        ),
    ];
    for (items, want) in cases {
        assert_eq!(m.handle(Input::User(Request::PayMany(items))).unwrap_err(), want);
        assert_eq!(m.store(), &before, "{want}: nothing changed");
    }
}

/// Forged folds from the peer: each answered by a reject naming what is
/// wrong, nothing signed or persisted, the store unchanged; the honest fold
/// of the same trades is accepted.
#[test]
fn forged_folds_are_rejected_and_nothing_is_signed() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), 4);
    let bounds =
        PriceBounds { min_price_per_kwh: Amount(1), max_price_per_kwh: Amount(500), max_energy: Energy(10_000) };
    d.parties[1].params.policy = Some(Policy(Arc::new(bounds)));
    d.crash(1);
    d.restart(1);
    d.open();
    let base = latest(&d, 1).state;
    let k0 = d.parties[0].esc_key.clone();
    let t = |e: u64, p: u128| Trade {
        buyer: 0,
        energy: Energy(e),
        price_per_kwh: Amount(p),
        amount: Trade::price_of(Energy(e), Amount(p)).unwrap(),
    };
    let honest = vec![t(1_000, 100), t(2_000, 200), t(500, 300)];
    let fold_of = |trades: &[Trade]| {
        let mut st = base.clone();
        st.prev_counter = base.counter;
        st.counter = 1;
        let total: u128 = trades.iter().map(|t| t.amount.0).sum();
        let energy: u64 = trades.iter().map(|t| t.energy.0).sum();
        st.balances[0].0 -= total;
        st.balances[1].0 += total;
        st.energy[1].0 += energy;
        st.last_trade = trades.last().copied();
        st.fold = Some(Fold { trades: trades.len() as u32, hash: Fold::hash(trades) });
        st
    };
    let good = fold_of(&honest);
    let mut swapped = honest.clone();
    swapped.swap(0, 1);
    let mut cheap = honest.clone();
    cheap[0] = t(1_000, 1);
    cheap[1] = t(2_000, 399);
    type Case = (&'static str, gridledger_contracts::cns::ChannelState, Vec<Trade>, &'static str);
    let cases: Vec<Case> = vec![
        ("list not the one hashed", good.clone(), swapped, "do not match the state's fold"),
        ("count not the list's", good.clone(), honest[..2].to_vec(), "a fold of 2 trades"),
        ("a fold of one", fold_of(&honest[..1]), honest[..1].to_vec(), "a fold of 1 trades"),
        (
            "trades with an unfolded state",
            gridledger_contracts::cns::ChannelState { fold: None, ..good.clone() },
            honest.clone(),
            "folds none",
        ),
        (
            "balances short of the trades",
            {
                let mut s = fold_of(&cheap);
                s.balances = good.balances;
                s.energy = good.energy;
                s
            },
            cheap.clone(),
            "do not follow",
        ),
        (
            "a zero-price trade",
            fold_of(&[
                t(1_000, 100),
                Trade { buyer: 0, energy: Energy(10), price_per_kwh: Amount::ZERO, amount: Amount::ZERO },
            ]),
            vec![
                t(1_000, 100),
                Trade { buyer: 0, energy: Energy(10), price_per_kwh: Amount::ZERO, amount: Amount::ZERO },
            ],
            "positive energy",
        ),
        (
            "a trade outside the policy",
            fold_of(&[t(1_000, 100), t(1_000, 900)]),
            vec![t(1_000, 100), t(1_000, 900)],
            "refused by policy",
        ),
        (
            "a trade booking the wrong buyer",
            fold_of(&[t(1_000, 100), Trade { buyer: 1, ..t(1_000, 100) }]),
            vec![t(1_000, 100), Trade { buyer: 1, ..t(1_000, 100) }],
            "must be the buyer",
        ),
    ];
    let m = d.parties[1].machine.as_mut().unwrap();
    for (name, state, trades, want) in cases {
        let before = m.store().clone();
        let sig = state.sign(&k0, 77);
        let counter = state.counter;
        let step = m.handle(Input::Peer(Message::ProposeFolded { state, nonce: 77, sig, trades })).unwrap();
        assert!(step.persist.is_none(), "{name}: nothing persisted");
        match step.messages.as_slice() {
            [Message::Reject { counter: c, reason }]
            | [Message::Reject { counter: c, reason }, Message::Reestablish { .. }] => {
                assert_eq!(*c, counter, "{name}");
                assert!(reason.contains(want), "{name}: reason {reason:?} lacks {want:?}");
            }
            other => panic!("{name}: expected one reject (and our co-signed state), got {other:?}"),
        }
        assert!(m.handle(Input::Persisted(u64::MAX)).unwrap().messages.is_empty(), "{name}: nothing held");
        assert_eq!(m.store(), &before, "{name}: store unchanged");
    }
    // The honest fold (at a fresh counter: the forged ones used 1).
    let mut st = good.clone();
    st.counter = 2;
    let sig = st.sign(&k0, 77);
    let step = m.handle(Input::Peer(Message::ProposeFolded { state: st, nonce: 77, sig, trades: honest })).unwrap();
    let v = step.persist.expect("acceptance persisted first").version;
    let released = m.handle(Input::Persisted(v)).unwrap();
    assert!(matches!(released.messages.as_slice(), [Message::Accept { counter: 2, .. }]));
}
