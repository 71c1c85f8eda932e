//! A merchant who never reimburses (seed §4 step 5, Fig 16): it never signs
//! a closed channel's settlement, never bills and never pays what it owes.
//! The collateral and time-lock rules must still hold: the counterparty is
//! paid at close without the merchant, the merchant cannot take collateral
//! before its time-lock, the participant recovers its credit and its
//! collateral through `msc_claim` once the merchant's billing period has
//! lapsed; coins are conserved and the credit ledger balances to zero.

mod common;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::Request;
use gridledger_contracts::args;
use gridledger_contracts::cns::SidArgs;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::TxStatus;

fn pay(d: &mut Duo, side: usize, energy: u64, price: u128) {
    d.request(side, common::pay_at(energy, price)).unwrap();
}

fn check(d: &Duo) {
    d.assert_coins_conserved();
    d.assert_credit_balanced();
    d.assert_no_divergent_signatures();
}

fn reverted(r: &gridledger_ledger::Receipt, why: &str) {
    match &r.status {
        TxStatus::Reverted(reason) => assert!(reason.contains(why), "reverted with {reason:?}, expected {why:?}"),
        s => panic!("expected a revert ({why}), got {s:?}"),
    }
}

/// Side 0 trades on a credit note and *sells* 12_000 of energy to side 1:
/// the merchant owes side 0 a net credit of 12_000 and stays silent.
#[test]
fn silent_merchant_owing_credit_cannot_keep_it_or_the_collateral() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig {
        credit: [true, false],
        capacity: [Amount(50_000), Amount(20_000)],
        collateral_lock_ms: 60_000,
        billing_period_ms: 30_000,
        ..DuoConfig::default()
    };
    let mut d = common::duo_unopened(dir.path(), &cfg);
    d.open();
    for _ in 0..3 {
        pay(&mut d, 1, 10_000, 400); // side 1 buys 30 kWh from side 0
    }
    let b1 = d.balance(1);
    let fees0 = d.fees;
    d.request(0, Request::Close).unwrap();
    // The counterparty's share needs nothing from the merchant.
    let got = d.balance(1) + (d.fees.0 - fees0.0);
    assert!(d.balance(1) <= b1 + 8_000 && got >= b1 + 8_000, "side 1 paid its final 8_000 at close");
    let sid = d.sids[0];
    let msc = d.msc(sid);
    assert_eq!(msc.pending.len(), 1);
    assert_eq!(msc.pending[0].credit, Amount(12_000));
    let collateral = msc.collateral;
    assert_eq!(collateral, Amount(40_000), "20 % of the 200_000 credit limit");
    check(&d);

    // The merchant never signs. The participant cannot close its MSC while
    // the settlement is pending, nor claim while the merchant may still bill.
    let k0 = d.parties[0].account.clone();
    let r = d.submit(&k0, "msc_close", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "pending");
    let r = d.submit(&k0, "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "may still bill");
    // Nobody else claims for it, and the merchant's bill has nothing to take.
    let r = d.submit(&dev_key(3), "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "only the MSC's participant");
    d.advance(61_000);
    let r = d.submit(&dev_key(0), "bill_settle", args(&SidArgs { sid }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "no debt billed: nothing to seize");
    assert_eq!(d.msc(sid).collateral, collateral, "the merchant took no collateral");
    // An empty bill_settle restarts the billing period but not the clock
    // of the credit still pending: it has waited two periods since the
    // close, so the claim goes through now (otherwise a merchant billing
    // nothing each period could keep the credit forever).
    let before = d.balance(0);
    let fees0 = d.fees;
    let r = d.submit(&k0, "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let r = d.submit(&k0, "msc_close", args(&SidArgs { sid }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let fees = d.fees.0 - fees0.0;
    assert_eq!(d.balance(0) + fees, before + 12_000 + collateral.0, "credit and collateral recovered");
    let msc = d.msc(sid);
    assert!(msc.closed && msc.pending.is_empty());
    assert_eq!(msc.ledger.credit_paid, Amount(12_000));
    assert_eq!(msc.ledger.exposure(), 0);
    check(&d);
}

/// Side 0 trades on a credit note and *buys* 12_000: it owes the merchant.
/// A merchant who signs the debit cannot take collateral before the
/// time-lock; a merchant who never signs leaves the debt to the claim,
/// after which it can still bill it, and only from the collateral.
#[test]
fn merchant_cannot_seize_collateral_before_the_time_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig {
        credit: [true, false],
        capacity: [Amount(50_000), Amount(20_000)],
        collateral_lock_ms: 100_000,
        billing_period_ms: 30_000,
        ..DuoConfig::default()
    };
    let mut d = common::duo_unopened(dir.path(), &cfg);
    d.open();
    for _ in 0..3 {
        pay(&mut d, 0, 10_000, 400); // side 0 buys 30 kWh on credit
    }
    let b1 = d.balance(1);
    let fees0 = d.fees;
    d.request(1, Request::Close).unwrap();
    let got = d.balance(1) + (d.fees.0 - fees0.0);
    assert!(d.balance(1) <= b1 + 32_000 && got >= b1 + 32_000, "the seller is reimbursed at close");
    let sid = d.sids[0];
    let collateral = d.msc(sid).collateral;
    check(&d);
    // The merchant does not sign; a period passes; the collateral is still
    // locked, so the merchant's settlement has nothing to bill and the
    // participant's claim is refused.
    d.advance(31_000);
    let mk = dev_key(0);
    let k0 = d.parties[0].account.clone();
    let r = d.submit(&k0, "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "may still bill");
    d.advance(30_000);
    let r = d.submit(&k0, "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "time-locked");
    // Now the merchant signs and tries to take the debt before the lock.
    let rec = d.msc(sid).pending[0].clone();
    let sign = d.merchant.sign_debit(&rec, 7).unwrap();
    let r = d.submit(&mk, "msc_sign_debit", args(&sign), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success);
    let r = d.submit(&mk, "bill_settle", args(&SidArgs { sid }), Amount::ZERO);
    reverted(&r, "time-locked");
    assert_eq!(d.msc(sid).collateral, collateral, "nothing seized before the time-lock");
    check(&d);
    // After the time-lock the debt comes from the collateral, and only the
    // debt: the participant closes its MSC with the rest.
    d.advance(40_000);
    let r = d.submit(&mk, "bill_settle", args(&SidArgs { sid }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let msc = d.msc(sid);
    assert_eq!(msc.ledger.seized, Amount(12_000));
    assert_eq!(msc.collateral, Amount(collateral.0 - 12_000));
    assert_eq!(msc.ledger.outstanding_net(), 0);
    let before = d.balance(0);
    let fees0 = d.fees;
    let r = d.submit(&k0, "msc_close", args(&SidArgs { sid }), Amount::ZERO);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    assert_eq!(d.balance(0) + (d.fees.0 - fees0.0), before + collateral.0 - 12_000);
    check(&d);
}
