//! Attack round 12 on the improved optimistic rollup (issue 11): the
//! reopening bound of attack r11 [4] (`AtRecordRefusal::MarkPeriodOver`).
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::primary::AtRecordRefusal;
use gridledger_rollup::types::{AgreementTerms, AtRejection, Outcome};

fn outcomes(e: &mut Env) -> Vec<Outcome> {
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// A key marked by an AT that execution refused (its seller unfunded),
/// the marking batch settled; returns the environment and the marking
/// terms.
fn refused_mark() -> (Env, AgreementTerms) {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(3));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    assert_eq!(e.d.submit(&b, &at(&x, &s)).unwrap().status, TxStatus::Success);
    let out = outcomes(&mut e);
    assert!(
        matches!(out[..], [Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. })] if who == s.address()),
        "{out:?}"
    );
    assert!(e.d.now() < x.dt_end);
    (e, x)
}

/// Other terms of the same key (same start) the seller signed afresh,
/// delivering half an hour longer.
fn longer(x: &AgreementTerms) -> AgreementTerms {
    AgreementTerms { dt_end: x.dt_end + 30 * MIN, dl: x.dl + 30 * MIN, ep: Amount(210_000), ..x.clone() }
}

/// Held up: the bound is exact. A reopening recorded one millisecond
/// before the marking AT's `DT_end` is recorded (an honest pair whose AT
/// was refused can still trade the period, attack r10 [1]); one recorded
/// at `DT_end` is refused `MarkPeriodOver` naming that instant, even for
/// terms delivering past it.
#[test]
fn the_reopening_bound_is_the_marking_ats_dt_end_exactly() {
    let (b, s) = (trader(0), trader(3));
    let (mut e, x) = refused_mark();
    let y = longer(&x);
    e.d.set_time(x.dt_end - 1);
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "a reopening just before DT_end: {:?}", r.status);

    let (mut e, x) = refused_mark();
    let y = longer(&x);
    e.d.set_time(x.dt_end);
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    let why = AtRecordRefusal::MarkPeriodOver { dt_end: x.dt_end, now: x.dt_end }.to_string();
    assert!(reverted(&r).contains(&why), "{:?}", r.status);
    assert!(outcomes(&mut e).is_empty(), "nothing recorded");
}
