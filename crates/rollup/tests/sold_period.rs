//! A sale paid without certified readings (an expiry the buyer's own
//! `O_b = 1` settles as agreed, an agreed ST) is a demand over its whole
//! delivery period that every later arbitration overlapping it must cover
//! beside its own claim (issue 11, attack r6 findings 1 and 2): the exact
//! boundary.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_rollup::types::{AgreementTerms, BuyerOpinion, IorTx, Outcome, SettlementTx, StSettlement};

fn run(e: &mut Env, who: &KeyPair, tx: IorTx) -> Vec<Outcome> {
    e.d.submit(who, &tx).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// 2,400 W for 25 minutes: exactly 1,000 Wh.
const EXACT: [i64; 6] = [2400, 2400, 2400, 2400, 2400, 0];
/// One Wh less: 12 W less over one 300 s reading (3,600 ws).
const ONE_WH_SHORT: [i64; 6] = [2400, 2400, 2400, 2400, 2388, 0];

/// A buys 500 Wh of 08:00–08:30, B 500 Wh of 08:05–08:35 (a later
/// deadline) from the same seller. A records `O_b = 1` and expires its
/// agreement (settled as agreed, no readings); B disputes and the seller
/// sends B's ST with meter-signed readings `b_export`. Returns B's verdict
/// and what else it changed: (A's record, the seller's slot records) before
/// and after.
fn expiry_then_dispute(b_export: &[i64]) -> (Vec<Outcome>, bool, Amount) {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice_overlapping();
    e.d.set_time(ta.dt_end + MIN);
    let opinion = |t: &AgreementTerms, ob| IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob });
    assert_eq!(run(&mut e, &a, opinion(&ta, true)), vec![Outcome::OpinionRecorded]);
    assert_eq!(run(&mut e, &b, opinion(&tb, false)), vec![Outcome::OpinionRecorded]);
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    assert_eq!(run(&mut e, &a, IorTx::Expire(ta.clone())), vec![Outcome::StSettled(StSettlement::Agreed)]);
    let before = e.d.settled_state().unwrap();
    let a_before = e.d.participant(&a.address()).unwrap();
    let st = metered_st(&tb, &b, 300, b_export.to_vec());
    let out = run(&mut e, &s, IorTx::St(st));
    let after = e.d.settled_state().unwrap();
    let untouched = after.slots == before.slots
        && after.claimed == before.claimed
        && e.d.participant(&a.address()).unwrap() == a_before;
    (out, untouched, e.d.participant(&b.address()).unwrap().balance)
}

#[test]
fn an_export_exactly_covering_the_expired_sale_and_the_dispute_stands_for_both() {
    let (out, untouched, _) = expiry_then_dispute(&EXACT);
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    assert!(!untouched, "B's won arbitration records its claim");
}

#[test]
fn one_wh_short_the_later_dispute_loses_and_nothing_else_changes() {
    let (out, untouched, b_short) = expiry_then_dispute(&ONE_WH_SHORT);
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
    assert!(untouched, "A's sale and the seller's slot records are as before");
    let (_, _, b_exact) = expiry_then_dispute(&EXACT);
    assert!(b_short > b_exact, "B is refunded and compensated only when the seller falls short");
}

/// The same boundary with an agreed ST for A whose (uncertified) readings
/// put all of A's export in the first slot, outside B's period.
fn agreed_then_dispute(b_export: &[i64]) -> Vec<Outcome> {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice_overlapping();
    e.d.set_time(ta.dt_end + MIN);
    let invented = invented_agreed_st(&ta, &a);
    assert_eq!(run(&mut e, &s, IorTx::St(invented)), vec![Outcome::StSettled(StSettlement::Agreed)]);
    e.d.set_time(tb.dt_end + MIN);
    run(&mut e, &s, IorTx::St(metered_st(&tb, &b, 300, b_export.to_vec())))
}

#[test]
fn an_agreed_sale_with_invented_readings_counts_over_its_whole_period_to_the_wh() {
    assert_eq!(agreed_then_dispute(&EXACT), vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    assert_eq!(agreed_then_dispute(&ONE_WH_SHORT), vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
}

/// The driver's reach (to the end of a sold period over the ST's slot)
/// would also have to cover a second sale paid without readings that lies
/// in the reach slots only, whose export no certified reading shows: that
/// window loses, so the driver sends the plain ST, whose window (the one
/// slot) covers the sale over it and the new claim, and wins.
#[test]
fn the_driver_drops_a_reach_that_would_lose_the_arbitration() {
    let mut e = funded_four();
    let (b1, b2, b3, s) = (trader(0), trader(2), trader(3), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 100, 8 * HOUR);
    let mut t2 = terms(&b2, &s, Amount(200_000), 100, 8 * HOUR + 10 * MIN);
    t2.dt_end = 8 * HOUR + 30 * MIN;
    let mut t3 = terms(&b3, &s, Amount(200_000), 80, 8 * HOUR + 5 * MIN);
    t3.dt_start = 8 * HOUR;
    t3.dt_end = 8 * HOUR + 5 * MIN;
    t3.dl = t3.dt_end + HOUR;
    agreed(&mut e, &s, &[(&b1, &t1), (&b2, &t2), (&b3, &t3)]);
    let agreed_sale = |t: &AgreementTerms, b: &KeyPair| {
        let ps = vec![0; ((t.dt_end - t.dt_start) / (5 * MIN)) as usize];
        // No meter signature: readings nobody certified.
        IorTx::St(SettlementTx { ps, meter_sig: None, ..st(t, 0, true, Some(b)) }.sign_as_buyer(b))
    };
    assert_eq!(run(&mut e, &s, agreed_sale(&t1, &b1)), vec![Outcome::StSettled(StSettlement::Agreed)]);
    assert_eq!(run(&mut e, &s, agreed_sale(&t2, &b2)), vec![Outcome::StSettled(StSettlement::Agreed)]);
    let tx = e.d.settlement_tx(metered_st(&t3, &b3, 300, vec![6000])).unwrap();
    assert!(matches!(tx, IorTx::St(_)), "{tx:?}");
    assert_eq!(run(&mut e, &s, tx), vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
}
