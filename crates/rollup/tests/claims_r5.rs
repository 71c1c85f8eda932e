//! Every settlement that pays a seller for delivery records its EM
//! against the seller's grid slots (issue 11, attack r5 "one export sold
//! twice"), whatever the verdict: an arbitration won (`ClaimExport`), an
//! agreed sale or a late buyer signature (`ClaimSold`).

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_rollup::types::{IorTx, Outcome, SettlementTx, StRejection, StSettlement};

fn settle(e: &mut Env, seller: &gridledger_core::crypto::KeyPair, s: SettlementTx) -> Vec<Outcome> {
    e.d.submit(seller, &IorTx::St(s)).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// A seller exports 500 Wh in 08:00–08:30 and sells 500 Wh of that half
/// hour to two buyers, A and B. Returns the env, A, B, the seller and both
/// agreements' terms (accepted).
fn sold_twice() -> (Env, [gridledger_core::crypto::KeyPair; 3], [gridledger_rollup::types::AgreementTerms; 2]) {
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = ta.clone();
    tb.buyer = b.address();
    e.d.submit_block(&[(a.clone(), at(&ta, &s)), (b.clone(), at(&tb, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    (e, [a, b, s], [ta, tb])
}

/// A's buyer never signs; its seller settles after DL
/// (`LateBuyerSignature`: paid as delivered). B, who got nothing, disputes
/// with the same genuine readings: the export is already sold.
#[test]
fn a_late_signature_settlement_claims_the_export_it_is_paid_for() {
    let (mut e, [_, b, s], [ta, tb]) = sold_twice();
    e.d.set_time(ta.dl + MIN);
    let first = settle(&mut e, &s, st(&ta, 1000, false, None));
    assert_eq!(first, vec![Outcome::StSettled(StSettlement::LateBuyerSignature)]);
    let second = settle(&mut e, &s, st(&tb, 1000, false, Some(&b)));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerShortfall)], "B's arbitration");
}

/// The seller sends A's agreed ST with readings of nothing (it needs no
/// meter certificate when the buyer agrees), hoping to claim nothing:
/// the agreed EM is recorded as sold all the same, and B wins.
#[test]
fn an_agreed_settlement_with_empty_readings_still_claims_its_em() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice();
    e.d.set_time(ta.dt_end + MIN);
    let first = settle(&mut e, &s, st(&ta, 0, true, Some(&a)));
    assert_eq!(first, vec![Outcome::StSettled(StSettlement::Agreed)]);
    let second = settle(&mut e, &s, st(&tb, 1000, false, Some(&b)));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerShortfall)], "B's arbitration");
}

/// Control: a seller that exported 1,000 Wh (2,000 W) covers both sales;
/// B's arbitration after A's agreed sale is won by the seller.
#[test]
fn an_export_covering_both_sales_wins_the_second_arbitration() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice();
    e.d.set_time(ta.dt_end + MIN);
    assert_eq!(settle(&mut e, &s, st(&ta, 2000, true, Some(&a))), vec![Outcome::StSettled(StSettlement::Agreed)]);
    let second = settle(&mut e, &s, st(&tb, 2000, false, Some(&b)));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
}

/// Readings at an interval that does not divide the metering grid (200 s
/// on the 300 s grid) cannot be recorded per slot: the ST is refused
/// (`OffGridReadings`, the seller's α), pays nothing, and the agreement
/// stays open for a correct ST.
#[test]
fn readings_off_the_metering_grid_are_refused() {
    let (mut e, [a, _, s], [ta, _]) = sold_twice();
    e.d.set_time(ta.dt_end + MIN);
    let p = e.d.cfg.params.clone();
    let before = (e.d.participant(&a.address()).unwrap(), e.d.participant(&s.address()).unwrap());
    let off = SettlementTx { dt_step_s: 200, ps: vec![1000; 9], ..st(&ta, 1000, true, None) }.sign_as_buyer(&a);
    let out = settle(&mut e, &s, off);
    assert_eq!(out, vec![Outcome::StRejected(StRejection::OffGridReadings { step_s: 200, grid_s: p.meter_step_s })]);
    let after = (e.d.participant(&a.address()).unwrap(), e.d.participant(&s.address()).unwrap());
    assert_eq!(after.0, before.0, "the buyer is untouched");
    assert_eq!(after.1.balance, before.1.balance, "the seller is paid nothing");
    assert_eq!(after.1.reputation, before.1.reputation - p.alpha, "the sender of an invalid ST pays α");
    assert_eq!(settle(&mut e, &s, st(&ta, 1000, true, Some(&a))), vec![Outcome::StSettled(StSettlement::Agreed)]);
}

/// Three sales chained at quarter-hour offsets that the export covers
/// exactly (1,000 W from 08:00 to 09:00 = 1,000 Wh): A 250 Wh in
/// 08:00–08:30, B 250 Wh in 08:15–08:45, C 500 Wh in 08:30–09:00, each
/// disputed by its buyer and settled as it ends. Claims taken earliest
/// slot first cover all three (latest-first left C 250 Wh short).
#[test]
fn a_chain_of_overlapping_sales_settled_as_they_end_is_covered_exactly() {
    let mut e = funded_four();
    let (a, b, c, s) = (trader(0), trader(2), trader(3), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 250, 8 * HOUR);
    let tb = terms(&b, &s, Amount(200_000), 250, 8 * HOUR + 15 * MIN);
    let tc = terms(&c, &s, Amount(200_000), 500, 8 * HOUR + 30 * MIN);
    e.d.submit_block(&[(a.clone(), at(&ta, &s)), (b.clone(), at(&tb, &s)), (c.clone(), at(&tc, &s))]).unwrap();
    let accepted: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(accepted, vec![Outcome::AtAccepted; 3]);
    let delivered = vec![Outcome::StSettled(StSettlement::SellerDelivered)];
    for (t, buyer) in [(&ta, &a), (&tb, &b), (&tc, &c)] {
        e.d.set_time(t.dt_end + MIN);
        assert_eq!(settle(&mut e, &s, st(t, 1000, false, Some(buyer))), delivered, "{t:?}");
    }
    let claimed = &e.d.settled_state().unwrap().claimed;
    assert_eq!(claimed.values().sum::<u128>(), 1000 * 3600, "the whole export is sold, once");
    assert!(claimed.values().all(|ws| *ws == 1000 * 300), "every slot claimed exactly: {claimed:?}");
}

/// A's buyer records `O_b = 1` itself and its seller never sends an ST:
/// A's expiry settles as agreed (the seller paid) and records A's 500 Wh
/// as sold over its whole period (`exec::record_sold`). B (same period, a later deadline)
/// then disputes with the seller's genuine readings of its only 500 Wh:
/// the export is sold, B wins.
#[test]
fn an_expiry_settled_as_agreed_claims_the_energy_it_pays_for() {
    use gridledger_rollup::types::BuyerOpinion;
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = ta.clone();
    tb.buyer = b.address();
    tb.dl = ta.dl + 2 * HOUR;
    e.d.submit_block(&[(a.clone(), at(&ta, &s)), (b.clone(), at(&tb, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    e.d.set_time(ta.dt_end + MIN);
    e.d.submit(&a, &IorTx::Opinion(BuyerOpinion { terms: ta.clone(), ob: true })).unwrap();
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out, vec![Outcome::OpinionRecorded]);
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit(&a, &IorTx::Expire(ta.clone())).unwrap();
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::Agreed)]);
    let second = settle(&mut e, &s, st(&tb, 1000, false, Some(&b)));
    assert_eq!(second, vec![Outcome::StSettled(StSettlement::SellerShortfall)], "B's arbitration");
}
