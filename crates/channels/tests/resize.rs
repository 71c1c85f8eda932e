//! Top-up and partial withdraw between two channel machines and the CNS
//! contract (issue 10, "a client users expect"): a top-up goes on chain
//! first and the topping-up party then proposes the state allocating it; a
//! withdrawal is a co-signed state that `channel_withdraw` pays while the
//! channel stays open. Every invalid request is refused with a typed error
//! and changes nothing; every invalid peer proposal is rejected unsigned.

mod common;
use common::duo_unopened as duo;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChannelError, ChannelEvent, Input, Message, Phase, Request};
use gridledger_contracts::args;
use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelState, ChannelStatus, Funding};
use gridledger_core::{Amount, Energy};

fn latest(d: &Duo, side: usize) -> ChannelState {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().state.clone()
}

fn pay(d: &mut Duo, side: usize, wh: u64) {
    d.request(side, common::pay_req(wh)).unwrap();
}

#[test]
fn a_party_tops_up_and_withdraws_on_an_open_channel_and_the_close_pays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig::default());
    d.open();
    let start = d.balance(0);
    let fees_from = d.gas.len();
    // Top-up: on chain first, then the co-signed allocation.
    d.request(0, Request::TopUp { amount: Amount(5_000), funding: Funding::Deposit }).unwrap();
    for side in 0..2 {
        let st = latest(&d, side);
        assert_eq!(st.balances[0], Amount(105_000), "side {side} holds the allocation");
        assert_eq!(st.resize.topped_up, [Amount(5_000), Amount::ZERO]);
    }
    assert!(d.parties[1].events.contains(&ChannelEvent::ToppedUp { counter: 1, side: 0, amount: Amount(5_000) }));
    assert_eq!(d.channel().unwrap().topped_up, [Amount(5_000), Amount::ZERO]);
    pay(&mut d, 0, 10_000); // 1_000 to side 1
                            // Withdraw: co-signed, then paid on chain at once; the channel stays open.
    d.request(0, Request::Withdraw { amount: Amount(30_000) }).unwrap();
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Open);
    assert_eq!(ch.withdrawn_paid, [Amount(30_000), Amount::ZERO]);
    assert_eq!(latest(&d, 1).balances, [Amount(74_000), Amount(101_000)]);
    assert_eq!(d.balance(0), start - d.fees_of(0, fees_from) - 5_000 + 30_000);
    // Payments continue on the resized channel, then a cooperative close.
    pay(&mut d, 1, 20_000);
    d.request(0, Request::Close).unwrap();
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Closed);
    assert_eq!(d.balance(0), start - d.fees_of(0, fees_from) - 5_000 + 30_000 + 76_000);
    d.assert_coins_conserved();
    d.assert_no_divergent_signatures();
}

#[test]
fn invalid_top_up_and_withdraw_requests_are_refused_with_a_typed_error_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig { credit: [false, true], ..DuoConfig::default() });
    d.open();
    let dispute_dir = tempfile::tempdir().unwrap();
    let mut disputed = duo(dispute_dir.path(), &DuoConfig::default());
    disputed.open();
    let open = disputed.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    let key = disputed.parties[1].account.clone();
    disputed.submit(&key, "channel_dispute", args(&ChannelDisputeArgs { side: 1, state: open }), Amount::ZERO);
    disputed.pump();
    assert!(matches!(disputed.parties[0].machine.as_ref().unwrap().phase(), Phase::Disputed { .. }));
    let note = Funding::CreditNote { nonce: 1, merchant_sig: gridledger_core::Signature([0; 64]) };
    type Row = (&'static str, usize, Request, ChannelError, bool);
    let rows: Vec<Row> = vec![
        (
            "withdraw more than own balance",
            0,
            Request::Withdraw { amount: Amount(100_001) },
            ChannelError::InsufficientBalance { have: Amount(100_000), need: Amount(100_001) },
            false,
        ),
        ("withdraw nothing", 0, Request::Withdraw { amount: Amount::ZERO }, ChannelError::ZeroAmount, false),
        (
            "top up nothing",
            0,
            Request::TopUp { amount: Amount::ZERO, funding: Funding::Deposit },
            ChannelError::ZeroAmount,
            false,
        ),
        ("credit-backed side withdraws", 1, Request::Withdraw { amount: Amount(1) }, ChannelError::CreditBacked, false),
        (
            "deposit side tops up by note",
            0,
            Request::TopUp { amount: Amount(1), funding: note },
            ChannelError::WrongFunding,
            false,
        ),
        (
            "credit side tops up by deposit",
            1,
            Request::TopUp { amount: Amount(1), funding: Funding::Deposit },
            ChannelError::WrongFunding,
            false,
        ),
        (
            "withdraw during a dispute",
            0,
            Request::Withdraw { amount: Amount(1) },
            ChannelError::NotOpen(Phase::Idle),
            true,
        ),
        (
            "top up during a dispute",
            0,
            Request::TopUp { amount: Amount(1), funding: Funding::Deposit },
            ChannelError::NotOpen(Phase::Idle),
            true,
        ),
    ];
    for (name, side, req, want, in_dispute) in rows {
        let duo = if in_dispute { &mut disputed } else { &mut d };
        let m = duo.parties[side].machine.as_mut().unwrap();
        let before = m.store().clone();
        let got = m.handle(Input::User(req)).expect_err(name);
        // `NotOpen(_)` in a row stands for "not open: disputed", whatever its t_end.
        match (&want, &got) {
            (ChannelError::NotOpen(_), ChannelError::NotOpen(Phase::Disputed { .. })) => {}
            _ => assert_eq!(got, want, "{name}"),
        }
        assert_eq!(m.store(), &before, "{name}: store unchanged");
        let released = m.handle(Input::Persisted(u64::MAX)).unwrap();
        assert!(released.messages.is_empty() && released.txs.is_empty(), "{name}: nothing sent");
    }
}

#[test]
fn a_peer_resize_that_is_not_exactly_its_own_top_up_or_withdrawal_is_rejected_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig { credit: [false, true], ..DuoConfig::default() });
    d.open();
    // Side 0 put 5_000 on chain; side 1 knows it from the event.
    d.request(0, Request::TopUp { amount: Amount(5_000), funding: Funding::Deposit }).unwrap();
    let base = latest(&d, 1);
    assert_eq!(base.resize.topped_up[0], Amount(5_000));
    let k0 = d.parties[0].esc_key.clone();
    let k1 = d.parties[1].esc_key.clone();
    let next = |f: &dyn Fn(&mut ChannelState)| {
        let mut s = base.clone();
        s.prev_counter = base.counter;
        s.counter += 1;
        f(&mut s);
        s
    };
    // (name, proposer, state, reason)
    let rows: Vec<(&str, usize, ChannelState, &str)> = vec![
        (
            "allocates more top-up than the chain shows",
            0,
            next(&|s| {
                s.resize.topped_up[0] = Amount(6_000);
                s.balances[0].0 += 1_000;
            }),
            "while the chain shows 5000",
        ),
        (
            "withdraws from the receiver's balance",
            0,
            next(&|s| {
                s.resize.withdrawn[0] = Amount(100);
                s.balances[1].0 -= 100;
            }),
            "changes only the proposer's side",
        ),
        (
            "withdraws more than it takes from its balance",
            0,
            next(&|s| {
                s.resize.withdrawn[0] = Amount(200);
                s.balances[0].0 -= 100;
            }),
            "exactly from the proposer's balance",
        ),
        (
            "a trade that also withdraws",
            0,
            next(&|s| {
                s.resize.withdrawn[0] = Amount(100);
                s.balances[0].0 -= 200;
                s.balances[1].0 += 100;
                s.energy[1].0 += 1_000;
                s.last_trade = Some(gridledger_contracts::cns::Trade {
                    buyer: 0,
                    energy: Energy(1_000),
                    price_per_kwh: Amount(100),
                    amount: Amount(100),
                });
            }),
            "may not change top-ups or withdrawals",
        ),
        (
            "a credit-backed side withdraws",
            1,
            next(&|s| {
                s.resize.withdrawn[1] = Amount(100);
                s.balances[1].0 -= 100;
            }),
            "credit-backed",
        ),
    ];
    for (name, proposer, st, want) in rows {
        let receiver = 1 - proposer;
        let key = if proposer == 0 { &k0 } else { &k1 };
        let m = d.parties[receiver].machine.as_mut().unwrap();
        let before = m.store().clone();
        let sig = st.sign(key, 99);
        let step = m.handle(Input::Peer(Message::Propose { state: st.clone(), nonce: 99, sig })).unwrap();
        assert!(step.persist.is_none() && step.txs.is_empty(), "{name}: nothing persisted or sent to the chain");
        match step.messages.as_slice() {
            [Message::Reject { reason, .. }] | [Message::Reject { reason, .. }, Message::Reestablish { .. }] => {
                assert!(reason.contains(want), "{name}: {reason:?} lacks {want:?}")
            }
            other => panic!("{name}: expected one reject (and our co-signed state), got {other:?}"),
        }
        assert_eq!(m.store().latest, before.latest, "{name}: nothing co-signed");
        assert_eq!(m.store().signed_upto, before.signed_upto, "{name}: nothing signed");
    }
    // The table is not refused for another reason: the honest withdrawal
    // of side 0 is co-signed.
    let honest = next(&|s| {
        s.resize.withdrawn[0] = Amount(100);
        s.balances[0].0 -= 100;
    });
    let m = d.parties[1].machine.as_mut().unwrap();
    let sig = honest.sign(&k0, 99);
    let step = m.handle(Input::Peer(Message::Propose { state: honest, nonce: 99, sig })).unwrap();
    let v = step.persist.expect("the acceptance is persisted first").version;
    // Announced once durable, with the acceptance.
    let released = m.handle(Input::Persisted(v)).unwrap();
    let want = ChannelEvent::Withdrawn { counter: base.counter + 1, side: 0, amount: Amount(100) };
    assert!(!step.events.contains(&want) && released.events.contains(&want), "{:?}", released.events);
}
