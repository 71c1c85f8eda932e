//! The channel protocol end to end on a dev chain: two state machines, the
//! CNS contract, crashes, silence and stale closes. Every test checks coin
//! conservation (fees accounted to the validator) and that the credit ledger
//! balances.

mod common;
use common::duo_unopened as duo;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChannelEvent, Input, Message, Phase, Request};
use gridledger_contracts::args;
use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelStatus, DisputeOutcome, SidArgs};
use gridledger_core::{Amount, Energy};
use gridledger_ledger::TxStatus;

fn pay(d: &mut Duo, side: usize, energy: u64, price: u128) {
    d.request(side, common::pay_at(energy, price)).unwrap();
}

fn check(d: &Duo) {
    d.assert_coins_conserved();
    d.assert_credit_balanced();
    d.assert_no_divergent_signatures();
}

#[test]
fn open_many_updates_cooperative_close_and_gas() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig::default());
    let before = [d.balance(0), d.balance(1)];
    let mark = d.gas.len();
    d.open();
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Open);
    assert!(d.parties[0].events.contains(&ChannelEvent::Opened));
    check(&d);
    // 40 trades: side 0 buys 500 Wh at 120/kWh (=60) each, side 1 buys 250 Wh
    // at 200/kWh (=50) every fourth.
    let (mut paid0, mut paid1, mut e1, mut e0) = (0u128, 0u128, 0u64, 0u64);
    for k in 0..40 {
        pay(&mut d, 0, 500, 120);
        paid0 += 60;
        e1 += 500;
        if k % 4 == 0 {
            pay(&mut d, 1, 250, 200);
            paid1 += 50;
            e0 += 250;
        }
    }
    let latest = d.parties[0].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(latest.state.counter, 50);
    assert_eq!(latest.state.balances, [Amount(100_000 - paid0 + paid1), Amount(100_000 + paid0 - paid1)]);
    assert_eq!(latest.state.energy, [Energy(e0), Energy(e1)]);
    // Register one state on chain (Fig 7 step 2) to measure it.
    let k0 = d.parties[0].account.clone();
    let r = d.submit(
        &k0,
        "channel_update",
        args(&gridledger_contracts::cns::ChannelStateArgs { state: latest.clone() }),
        Amount::ZERO,
    );
    assert_eq!(r.status, TxStatus::Success);
    d.request(0, Request::Close).unwrap();
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert!(ch.latest.state.is_final);
    // Payouts follow the final state; each side paid only its own fees.
    let after = [d.balance(0), d.balance(1)];
    let fin = ch.latest.state.balances;
    for side in 0..2 {
        let fees = d.fees_of(side, mark);
        assert!(fees > 0, "side {side} sent transactions");
        assert_eq!(
            after[side] + fees,
            before[side] - 100_000 + fin[side].0,
            "side {side}: deposit out, final balance in, own fees only"
        );
    }
    assert_ne!(d.fees_of(0, mark), d.fees_of(1, mark), "the sides sent different calls (fees tell them apart)");
    let esc = d.esc();
    assert_eq!(esc.final_amounts, latest.state.balances);
    assert_eq!(esc.final_energy, [Energy(e0), Energy(e1)]);
    assert_eq!(esc.amounts, [Amount::ZERO; 2]);
    assert_eq!(d.msc(d.sids[1]).final_energy, Energy(e1));
    check(&d);

    // Gas per channel operation, from receipts.
    let open = d.gas_of("channel_open")[0];
    let fund = d.gas_of("channel_fund");
    let update = d.gas_of("channel_update")[0];
    let close = d.gas_of("channel_close")[0];
    println!("gas: channel_open {open}, channel_fund {:?}, channel_update {update}, channel_close {close}", fund);
    assert!(open > 21_000 && open < 550_000, "open {open}");
    assert!(update > 21_000 + 2 * 3_000 && update < 300_000, "update {update}");
    assert!(close > update, "close pays out and writes MSCs: {close}");
}

#[test]
fn silent_counterparty_timeout_close_returns_funds() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig::default());
    d.open();
    for _ in 0..5 {
        pay(&mut d, 0, 1_000, 100); // 100 each
    }
    let before = [d.balance(0), d.balance(1)];
    d.parties[1].silent = true;
    let fees0 = d.fees;
    d.request(0, Request::Close).unwrap();
    // No answer; after the close timeout side 0 disputes with counter 5.
    d.advance(6_000);
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Disputed);
    assert_eq!(ch.latest.state.counter, 5);
    // Settling before t_end is refused; the machine waits.
    d.advance(3_000);
    assert_eq!(d.channel().unwrap().status, ChannelStatus::Disputed);
    d.advance(8_000);
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert_eq!(d.esc().disputes[0].outcome, DisputeOutcome::TimedOut);
    // Side 0 got its 99_500 back (minus its fees); side 1's 100_500 was paid
    // to it although it was silent.
    let fees = d.fees.0 - fees0.0;
    assert_eq!(d.balance(0), before[0] + 99_500 - fees);
    assert_eq!(d.balance(1), before[1] + 100_500);
    // Silence proves no cheating: a timed-out dispute faults nobody.
    assert_eq!(d.msc(d.sids[1]).disputes_at_fault, 0);
    assert_eq!(d.msc(d.sids[0]).disputes_at_fault, 0);
    println!("gas: channel_dispute {:?}, channel_settle {:?}", d.gas_of("channel_dispute"), d.gas_of("channel_settle"));
    assert!(matches!(d.parties[0].machine.as_ref().unwrap().phase(), Phase::Closed));
    check(&d);
}

#[test]
fn stale_close_is_disputed_with_the_newer_state_and_corrected() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig::default());
    d.open();
    pay(&mut d, 1, 2_000, 100); // side 1 pays 200: good for side 0
    let stale = d.parties[0].machine.as_ref().unwrap().latest().unwrap().clone();
    for _ in 0..3 {
        pay(&mut d, 0, 10_000, 100); // side 0 pays 1000 each
    }
    // Side 0 cheats: a unilateral close with the old state where it had more.
    let k0 = d.parties[0].account.clone();
    let r = d.submit(&k0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: stale.clone() }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    d.pump(); // side 1 sees it and answers with counter 4
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Open);
    assert_eq!(ch.latest.state.counter, 4);
    assert_eq!(d.esc().disputes[0].outcome, DisputeOutcome::Resolved { counter: 4 });
    assert_eq!(d.msc(d.sids[0]).disputes_at_fault, 1, "the cheat is remarked");
    println!("gas: channel_resolve {:?}", d.gas_of("channel_resolve"));
    // Then a cooperative close settles the corrected amounts.
    let before = [d.balance(0), d.balance(1)];
    let fees0 = d.fees;
    d.request(1, Request::Close).unwrap();
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert_eq!(ch.latest.state.balances, [Amount(100_000 + 200 - 3_000), Amount(100_000 - 200 + 3_000)]);
    let fees = d.fees.0 - fees0.0;
    assert_eq!(d.balance(0), before[0] + 97_200);
    assert_eq!(d.balance(1), before[1] + 102_800 - fees);
    check(&d);
}

#[test]
fn crash_mid_update_and_restart_from_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path(), &DuoConfig::default());
    d.open();
    pay(&mut d, 0, 1_000, 100);
    // Side 1 crashes while persisting its acceptance of update 2: its
    // signature never leaves.
    d.parties[1].crash_before_persist = true;
    pay(&mut d, 0, 2_000, 100);
    assert!(d.parties[1].machine.is_none());
    d.restart(1);
    let m1 = d.parties[1].machine.as_ref().unwrap();
    assert_eq!(m1.latest().unwrap().state.counter, 1, "restarted at the last co-signed state");
    // Side 0 retransmits the identical proposal; side 1 signs it now.
    d.advance(2_500);
    let l0 = d.parties[0].machine.as_ref().unwrap().latest().unwrap().clone();
    let l1 = d.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(l0, l1);
    assert_eq!(l0.state.counter, 2);

    // Side 0 crashes while persisting its own next proposal: nothing sent.
    d.parties[0].crash_before_persist = true;
    let _ =
        d.input(0, Input::User(Request::Pay { amount: Amount(50), energy: Energy(500), price_per_kwh: Amount(100) }));
    assert!(d.parties[0].machine.is_none());
    d.restart(0);
    // After restart it proposes a different trade at counter 3: no
    // signature on another counter-3 state ever left, so no divergence.
    pay(&mut d, 0, 700, 100);
    let l = d.parties[1].machine.as_ref().unwrap().latest().unwrap().clone();
    assert_eq!(l.state.counter, 3);
    assert_eq!(l.state.energy[1], Energy(3_700));

    // Crash after persisting but before the ack arrives: restart resends.
    pay(&mut d, 0, 100, 100);
    d.crash(0);
    d.restart(0);
    assert_eq!(d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.counter, 4);
    // A restarted party can still close with what it persisted.
    d.request(0, Request::Close).unwrap();
    let ch = d.channel().unwrap();
    assert_eq!(ch.status, ChannelStatus::Closed);
    assert_eq!(ch.latest.state.energy[1], Energy(3_800));
    check(&d);
}

#[test]
fn credit_note_channel_merchant_reimburses_and_bills() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig { credit: [true, false], capacity: [Amount(50_000), Amount(20_000)], ..DuoConfig::default() };
    let mut d = duo(dir.path(), &cfg);
    d.open();
    let msc0 = d.msc(d.sids[0]);
    assert_eq!(msc0.ledger.locked, Amount(50_000));
    check(&d);
    // Side 0 (credit user) buys 30 kWh at 400/kWh = 12_000.
    for _ in 0..3 {
        pay(&mut d, 0, 10_000, 400);
    }
    let b1 = d.balance(1);
    let fees0 = d.fees;
    d.request(1, Request::Close).unwrap();
    let fees = d.fees.0 - fees0.0;
    // The deposit side gets its 20_000 back plus the 12_000 it earned,
    // reimbursed from the merchant's note backing.
    assert_eq!(d.balance(1), b1 + 32_000 - fees);
    let msc0 = d.msc(d.sids[0]);
    assert_eq!(msc0.pending.len(), 1);
    assert_eq!(msc0.pending[0].debit, Amount(12_000));
    assert_eq!(msc0.ledger.returned, Amount(38_000));
    check(&d);
    // The merchant signs the recalculated amount into the MSC as a debit.
    let rec = msc0.pending[0].clone();
    let sign = d.merchant.sign_debit(&rec, 99).unwrap();
    let mk = gridledger_ledger::devnet::dev_key(0);
    let r = d.submit(&mk, "msc_sign_debit", args(&sign), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    let msc0 = d.msc(d.sids[0]);
    assert_eq!(msc0.ledger.debits, Amount(12_000));
    assert_eq!(msc0.ledger.outstanding_net(), 12_000);
    // The participant pays part directly; the rest is taken from collateral
    // once the billing period and the time-lock allow.
    let k0 = d.parties[0].account.clone();
    let r = d.submit(&k0, "bill_pay", args(&SidArgs { sid: d.sids[0] }), Amount(5_000));
    assert_eq!(r.status, TxStatus::Success);
    d.advance(70_000);
    let r = d.submit(&mk, "bill_settle", args(&SidArgs { sid: d.sids[0] }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let msc0 = d.msc(d.sids[0]);
    assert_eq!(msc0.ledger.paid, Amount(5_000));
    assert_eq!(msc0.ledger.seized, Amount(7_000));
    assert_eq!(msc0.ledger.outstanding_net(), 0);
    assert_eq!(msc0.collateral, Amount(40_000 - 7_000));
    println!(
        "gas: msc_init/esc_open in setup; msc_sign_debit {:?}, bill_pay {:?}, bill_settle {:?}",
        d.gas_of("msc_sign_debit"),
        d.gas_of("bill_pay"),
        d.gas_of("bill_settle")
    );
    check(&d);
}

#[test]
fn messages_from_bytes_are_bounded_and_never_panic() {
    assert!(Message::from_bytes(&[]).is_err());
    assert!(Message::from_bytes(&[0u8; 5000]).is_err());
    assert!(Message::from_bytes(&[7, 1, 2, 3]).is_err());
    // A huge length prefix must not allocate or panic.
    let mut b = vec![2u8];
    b.extend_from_slice(&42u64.to_le_bytes());
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Message::from_bytes(&b).is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;
    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Message::from_bytes(&bytes);
            let _ = gridledger_channels::ChannelStore::from_bytes(&bytes);
        }
    }
}
