//! Reopening an agreement key whose marking AT execution refused (issue
//! 11, attack r10 [1]): `sc_ds_at_reopen` records an AT of other terms,
//! signed afresh by the seller, once the marking batch settled and a
//! witness proves the key's agreement absent from the settled state. What
//! it must not reopen: an open agreement's key, a key whose marking batch
//! has not settled, terms that marked the key before (one seller signature
//! costs its seller at most one α), and a key past `MAX_REOPENS_PER_KEY`.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::primary::{AtRecordRefusal, ReopenAt, MAX_REOPENS_PER_KEY};
use gridledger_rollup::state::{witness, RecordKey};
use gridledger_rollup::types::{AgreementTerms, AgreementTx, AtRejection, Outcome};

/// `sc_ds_at_reopen` for `t` signed by `seller`, with a witness of the
/// key's record in the driver's settled state.
fn reopen_args(e: &Env, t: &AgreementTerms, seller: &gridledger_core::crypto::KeyPair) -> Vec<u8> {
    let settled = e.d.settled_state().unwrap();
    let w = witness(&settled, &std::collections::BTreeSet::from([RecordKey::Agreement(t.key())]));
    args(&ReopenAt { at: AgreementTx::signed(t.clone(), seller), witness: w })
}

fn refused_short(out: &[Outcome], seller: &gridledger_core::crypto::KeyPair) -> bool {
    matches!(
        out,
        [Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. } | AtRejection::ReputationTooLow { who, .. })]
            if *who == seller.address()
    )
}

/// Two refused signatures cost the seller two α, not more: the first
/// terms, sent again after the key was reopened, are refused at recording
/// (`TermsUsed`), through the reopening and the plain call alike.
#[test]
fn a_reopened_key_refuses_the_terms_that_marked_it() {
    let mut e = funded();
    settle_funding(&mut e);
    let p = e.d.cfg.params.clone();
    let (b, s) = (trader(0), trader(3));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    let y = AgreementTerms { ep: Amount(210_000), ..x.clone() };
    e.d.submit(&b, &at(&x, &s)).unwrap();
    assert!(refused_short(&outcomes(&mut e), &s));
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "fresh terms reopen the key");
    assert!(refused_short(&outcomes(&mut e), &s));
    assert_eq!(e.d.participant(&s.address()).unwrap().reputation, p.rs - 2 * p.alpha);
    // The first terms again: the driver sends a reopening, refused.
    let r = e.d.submit(&b, &at(&x, &s)).unwrap();
    assert!(reverted(&r).contains(&AtRecordRefusal::TermsUsed.to_string()), "{:?}", r.status);
    // And the plain call: another AT marked the key.
    let r = e.d.primary_call(&b, "sc_ds_at", args(&AgreementTx::signed(x.clone(), &s)), Amount::ZERO).unwrap();
    assert_ne!(r.status, TxStatus::Success);
    assert!(outcomes(&mut e).is_empty(), "nothing recorded");
    assert_eq!(e.d.participant(&s.address()).unwrap().reputation, p.rs - 2 * p.alpha, "no third α");
}

/// A reopening whose witness shows the key's agreement open, or does not
/// prove its absence against the settled root, is refused
/// (`NotProvedClosed`); the seller is not made pending.
#[test]
fn an_open_agreements_key_is_not_reopened() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    e.d.submit(&b, &at(&x, &s)).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted]);
    let y = AgreementTerms { ep: Amount(210_000), ..x.clone() };
    let r = e.d.primary_call(&b, "sc_ds_at_reopen", reopen_args(&e, &y, &s), Amount::ZERO).unwrap();
    let why = AtRecordRefusal::NotProvedClosed { why: String::new() }.to_string();
    assert!(reverted(&r).contains(why.trim_end()), "{:?}", r.status);
    // A witness claiming absence from an empty state proves nothing here.
    let empty = witness(&Default::default(), &std::collections::BTreeSet::from([RecordKey::Agreement(y.key())]));
    let a = args(&ReopenAt { at: AgreementTx::signed(y.clone(), &s), witness: empty });
    let r = e.d.primary_call(&b, "sc_ds_at_reopen", a, Amount::ZERO).unwrap();
    assert!(reverted(&r).contains(why.trim_end()), "{:?}", r.status);
    assert_eq!(e.d.withdraw(&s, Amount(1)).unwrap().status, TxStatus::Success, "the seller is not pending");
}

/// A reopening before the marking batch settled is refused
/// (`MarkUnsettled`): its verdict is not known.
#[test]
fn a_reopening_waits_for_the_marking_batch() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(3));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    e.d.submit(&b, &at(&x, &s)).unwrap();
    let y = AgreementTerms { ep: Amount(210_000), ..x.clone() };
    let (next, _) = e.d.reader().progress().unwrap();
    let r = e.d.primary_call(&b, "sc_ds_at_reopen", reopen_args(&e, &y, &s), Amount::ZERO).unwrap();
    assert!(reverted(&r).contains(&AtRecordRefusal::MarkUnsettled { batch: next - 1 }.to_string()), "{:?}", r.status);
    assert!(refused_short(&outcomes(&mut e), &s));
    // Settled: the same reopening is recorded.
    let r = e.d.primary_call(&b, "sc_ds_at_reopen", reopen_args(&e, &y, &s), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
}

/// A key is reopened at most `MAX_REOPENS_PER_KEY` times.
#[test]
fn a_key_is_reopened_a_bounded_number_of_times() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(3));
    let base = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    for i in 0..=MAX_REOPENS_PER_KEY as u128 {
        let t = AgreementTerms { ep: Amount(200_000 + i), ..base.clone() };
        assert_eq!(e.d.submit(&b, &at(&t, &s)).unwrap().status, TxStatus::Success, "terms {i}");
        assert!(refused_short(&outcomes(&mut e), &s));
    }
    let t = AgreementTerms { ep: Amount(300_000), ..base.clone() };
    let r = e.d.submit(&b, &at(&t, &s)).unwrap();
    assert!(
        reverted(&r).contains(&AtRecordRefusal::ReopensSpent { max: MAX_REOPENS_PER_KEY }.to_string()),
        "{:?}",
        r.status
    );
}
