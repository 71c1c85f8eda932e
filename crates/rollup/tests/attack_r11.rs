//! Attack round 11 on the improved optimistic rollup (issue 11): the
//! reopening of an agreement key (`sc_ds_at_reopen`, attack r10 [1]) and
//! the seller's undo reserve.
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::types::{AgreementTerms, Outcome};

/// [4] `sc_ds_at_reopen` reopens a key whose agreement was opened and
/// settled. The rule assumes that an agreement absent from the settled
/// state was never opened ("agreements close only at or after DT_end, and
/// the reopening AT is recorded before DT_end") — but the DT_end that
/// bounds the close is the *closed* agreement's, and the DT_end that
/// bounds the reopening is the *new* AT's. A seller signs X for 12:00 to
/// 12:05 and Y for 12:00 to 12:30 (two quotes for the key buyer, seller,
/// 12:00, of which one signature was meant to be executed: "a seller
/// signature is executed in one batch only", one agreement per key). The
/// buyer records X, X is accepted and settles as agreed at 12:06; at 12:08
/// the buyer records Y: the driver sends it as a reopening (the key's
/// mark is X's, its batch settled, the settled state holds no agreement),
/// it is recorded, and execution opens a second agreement under the same
/// key, over the five minutes X already bought: the seller is held to
/// both quotes, and the first five minutes are sold twice. Expected: a
/// key whose marking AT was accepted (an agreement was opened under it) is
/// not reopened; only a key all of whose ATs execution refused is.
#[test]
fn a_key_whose_agreement_settled_is_not_reopened() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let (y, paid_x) = x_settled_then_y_quoted(&mut e, &b, &s).expect("X accepted and settled as agreed");
    assert!(e.d.settled_state().unwrap().agreements.is_empty());
    // Y, the other quote for the same key, before its own DT_end.
    assert!(e.d.now() < y.dt_end, "Y's period has not ended");
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    let out = if r.status == TxStatus::Success { outcomes(&mut e) } else { vec![] };
    let buyer_after = e.d.participant(&b.address()).unwrap().balance;
    assert!(
        r.status != TxStatus::Success && !out.contains(&Outcome::AtAccepted),
        "a second agreement was opened under the key (buyer, seller, 12:00) after the first settled: recording {:?}, \
         outcomes {out:?}; the buyer's free balance {} after X, {} now",
        r.status,
        paid_x.0,
        buyer_after.0
    );
}

/// Held up: a stranger that copies the seller-signed terms a buyer will
/// reopen its key with, and sends them first as a reopening of its own,
/// neither reopens the key nor uses up those terms or a reopening: the
/// entry is not the buyer's, so it marks nothing (execution refuses it
/// `WrongSender` and penalises the stranger), and the buyer's reopening
/// with the same terms is recorded and accepted once the seller is funded.
#[test]
fn a_stranger_cannot_reopen_or_spend_a_pairs_key() {
    use gridledger_rollup::args;
    use gridledger_rollup::primary::ReopenAt;
    use gridledger_rollup::state::{witness, RecordKey};
    use gridledger_rollup::types::{AgreementTx, AtRejection};
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s, stranger) = (trader(0), trader(3), trader(2));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    e.d.submit(&b, &at(&x, &s)).unwrap();
    let out = outcomes(&mut e);
    assert!(
        matches!(out[..], [Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. })] if who == s.address())
    );
    let mark = e.d.reader().agreement_mark(&x.key()).unwrap();
    let y = AgreementTerms { ep: Amount(210_000), ..x.clone() };
    let settled = e.d.settled_state().unwrap();
    let w = witness(&settled, &std::collections::BTreeSet::from([RecordKey::Agreement(y.key())]));
    let a = args(&ReopenAt { at: AgreementTx::signed(y.clone(), &s), witness: w });
    let rep = e.d.participant(&stranger.address()).unwrap().reputation;
    let r = e.d.primary_call(&stranger, "sc_ds_at_reopen", a, Amount::ZERO).unwrap();
    if r.status == TxStatus::Success {
        let out = outcomes(&mut e);
        assert!(matches!(out[..], [Outcome::AtRejected(AtRejection::WrongSender { .. })]), "{out:?}");
        assert!(e.d.participant(&stranger.address()).unwrap().reputation < rep, "the stranger pays");
    }
    assert_eq!(e.d.reader().agreement_mark(&x.key()).unwrap(), mark, "the key's mark is untouched");
    // The seller funds; the buyer reopens with the same fresh terms.
    e.d.fund(&s, gridledger_rollup::types::coins(5)).unwrap();
    settle_funding(&mut e);
    let r = e.d.submit(&b, &at(&y, &s)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted]);
}
