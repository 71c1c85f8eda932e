//! Sales paid without arbitration are placed when they settle
//! (`exec::place_paid`, issue 11 attack r7): the paths the attack tests do
//! not reach — a meter signature that is not the certified meter's, and a
//! late-signed sale on export a won arbitration already holds.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_rollup::types::{IorTx, Outcome, SettlementTx, StRejection, StSettlement};

fn run(e: &mut Env, who: &KeyPair, tx: IorTx) -> Vec<Outcome> {
    e.d.submit(who, &tx).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// Readings changed after the meter signed them would be placed as if
/// certified: the agreed ST is refused (the seller loses `α`), and the same
/// ST without the signature settles as agreed.
#[test]
fn an_agreed_st_with_a_meter_signature_over_other_readings_is_refused() {
    let mut e = funded();
    let (a, s) = (trader(0), trader(1));
    let t = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&a, &t)]);
    let signed = st(&t, 1200, true, None);
    let forged = SettlementTx { ps: vec![6000; 6], ..signed }.sign_as_buyer(&a);
    let rep = e.d.participant(&s.address()).unwrap().reputation;
    assert_eq!(run(&mut e, &s, IorTx::St(forged.clone())), vec![Outcome::StRejected(StRejection::UncertifiedReadings)]);
    assert_eq!(e.d.participant(&s.address()).unwrap().reputation, rep - e.d.cfg.params.alpha);
    let plain = SettlementTx { meter_sig: None, ..forged }.sign_as_buyer(&a);
    assert_eq!(run(&mut e, &s, IorTx::St(plain)), vec![Outcome::StSettled(StSettlement::Agreed)]);
}

/// The seller exports 500 Wh over 08:05–08:30 and sells it to A (who never
/// signs) and B (who disputes). B's arbitration settles first and wins on
/// the whole export; A's late-signed ST then pays for the same export: it
/// is undone — the seller gives A back what the settlement paid it and the
/// fine `F_p × D_s`, and loses `α`.
#[test]
fn a_late_signed_sale_on_export_a_won_arbitration_holds_is_undone() {
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + 5 * MIN);
    tb.dl = ta.dl + 2 * HOUR;
    agreed(&mut e, &s, &[(&a, &ta), (&b, &tb)]);
    let (s0, a0) = (e.d.participant(&s.address()).unwrap(), e.d.participant(&a.address()).unwrap());
    let b_st = IorTx::St(metered_st(&tb, &b, 300, vec![1200, 1200, 1200, 1200, 1200, 0]));
    assert_eq!(run(&mut e, &s, b_st), vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    e.d.set_time(ta.dl + MIN);
    let a_st = SettlementTx { ob: true, ..st(&ta, 0, true, None) };
    let a_st = SettlementTx { ps: vec![0, 1200, 1200, 1200, 1200, 1200], meter_sig: None, ..a_st }
        .sign_readings(&gridledger_rollup::driver::meter_key(&s.address()));
    assert_eq!(run(&mut e, &s, IorTx::St(a_st)), vec![Outcome::StSettled(StSettlement::LateBuyerSignature)]);
    let p = e.d.cfg.params.clone();
    let (pay, ds, pen, r) = (ta.payment().unwrap().0, p.ds.0, p.penalty().0, p.undo_reserve().0);
    let (s1, a1) = (e.d.participant(&s.address()).unwrap(), e.d.participant(&a.address()).unwrap());
    // B's sale: paid, deposit and undo reserve back, B's penalty. A's:
    // nothing but its undo reserve back, less the fine (taken out of it).
    assert_eq!(s1.balance.0, s0.balance.0 + (pay + ds + pen + r) + (r - pen));
    assert_eq!(s1.reputation, s0.reputation - p.alpha, "the seller is penalised for A, not for B");
    // A: its payment and deposit back, the seller's deposit and the fine.
    assert_eq!(a1.balance.0, a0.balance.0 + pay + ds + pen + pen);
    assert!(e.d.settled_state().unwrap().agreements.is_empty());
}
