//! Attack round 6 on the rollup (issue 11): the round-5 fixes (record
//! budget, `AfterExpiry`/`PeriodTooLong`, `ClaimSold`, the back-off claim
//! retry, the block-hash validator draw) and the rest. Each finding is an
//! ignored, failing test; its comment states what a careful user expects,
//! what the code does, and the fix suggested.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_rollup::types::{AgreementTerms, BuyerOpinion, IorTx, Outcome, SettlementTx, StSettlement};

fn settle(e: &mut Env, seller: &KeyPair, s: SettlementTx) -> Vec<Outcome> {
    e.d.submit(seller, &IorTx::St(s)).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

fn run(e: &mut Env, who: &KeyPair, tx: IorTx) -> Vec<Outcome> {
    e.d.submit(who, &tx).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// The seller's genuine export over B's period 08:05–08:35 on the
/// 5-minute grid: 1,200 W from 08:05 to 08:30 (500 Wh), nothing after. It
/// exported nothing 08:00–08:05 either.
const B_EXPORT: [i64; 6] = [1200, 1200, 1200, 1200, 1200, 0];

/// A seller exports 500 Wh, all in 08:05–08:30. It sells 500 Wh of
/// 08:00–08:30 to A and 500 Wh of 08:05–08:35 to B (B's period ends
/// later, its deadline two hours later: settling A first is deadline
/// order). Returns the env, [A, B, seller], [A's, B's terms] (both
/// accepted).
fn sold_twice() -> (Env, [KeyPair; 3], [AgreementTerms; 2]) {
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + 5 * MIN);
    tb.dl = ta.dl + 2 * HOUR;
    e.d.submit_block(&[(a.clone(), at(&ta, &s)), (b.clone(), at(&tb, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    (e, [a, b, s], [ta, tb])
}

/// [1] THEFT — ONE EXPORT SOLD TWICE THROUGH AN EXPIRY SETTLED AS AGREED.
///
/// The seller exports 500 Wh, all in 08:05–08:30 (its meter-signed
/// readings). It sells those 500 Wh to A (period 08:00–08:30) and again to
/// B (period 08:05–08:35, ending later). A receives the
/// energy and records `O_b = 1` on chain; the seller never sends A's ST,
/// A expires the agreement after `DL + expiry`: settled as agreed, the
/// seller paid, and `ClaimSold` records A's 500 Wh on the period's *first*
/// slot (08:00–08:05) only — where the seller exported nothing. B, who got
/// nothing, records `O_b = 0`; the seller's ST for B (in deadline order:
/// B's deadline is the later one) carries the same genuine readings.
///
/// Expected: `SellerShortfall` — the 500 Wh were sold (and paid) already;
/// B gets its payment, deposit and the seller's penalty.
/// Observed: `SellerDelivered` — B's period does not hold 08:00–08:05,
/// where A's whole claim sits (over a slot whose export is 0), so B's
/// arbitration reads 08:05–08:30 as unclaimed: B pays for A's energy,
/// loses its deposit and is penalised α. The round-5 test
/// (`claims_r5::an_expiry_settled_as_agreed_claims_the_energy_it_pays_for`)
/// passes only because B's period equals A's (the over-claimed first slot
/// counts negative in B's net).
///
/// Fix: a sale paid without readings must reduce every later arbitration
/// over an overlapping period: keep sold-without-readings claims per
/// (seller, period) and in `claim_alloc` treat them as interval demands
/// (check that the sold claims plus the new one fit the export, EDF over
/// the slots) instead of pinning them to the first slot.
#[test]
#[ignore = "attack: an expiry settled as agreed pins its ClaimSold on the first slot; B's arbitration sells the same export again"]
fn expiry_agreed_claim_on_first_slot_lets_the_export_be_sold_twice() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice();
    e.d.set_time(ta.dt_end + MIN);
    assert_eq!(
        run(&mut e, &a, IorTx::Opinion(BuyerOpinion { terms: ta.clone(), ob: true })),
        vec![Outcome::OpinionRecorded]
    );
    assert_eq!(
        run(&mut e, &b, IorTx::Opinion(BuyerOpinion { terms: tb.clone(), ob: false })),
        vec![Outcome::OpinionRecorded]
    );
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    assert!(e.d.now() < tb.dl, "B's ST is sent before its own deadline");
    assert_eq!(run(&mut e, &a, IorTx::Expire(ta.clone())), vec![Outcome::StSettled(StSettlement::Agreed)]);
    let second = settle(&mut e, &s, metered_st(&tb, &b, 300, B_EXPORT.to_vec()));
    assert_eq!(
        second,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "500 Wh exported, 500 Wh already sold to A and paid: B's arbitration must not count them again"
    );
}

/// [2] THEFT — THE SAME BYPASS WITH AN AGREED ST: ITS READINGS ARE NOT
/// CHECKED, SO THE SELLER CHOOSES WHERE `ClaimSold` LANDS.
///
/// Same sale twice as [1]. A signs `O_b = 1` (it got the energy) and the
/// seller settles A with an ST whose readings it invents: 6,000 W in the
/// first slot, 0 after (no meter signature is needed for an agreed
/// settlement). `sold_alloc` records A's 500 Wh where the *ST's* readings
/// put the export — the first slot, where the real meter read 0, outside
/// B's period 08:05–08:35. B disputes; the seller sends B's ST with its genuine, meter-signed
/// readings.
///
/// Expected: `SellerShortfall` (only 500 Wh exported, sold to A).
/// Observed: `SellerDelivered`: B pays for A's energy.
///
/// Fix: `ClaimSold` must not trust uncertified readings: require the
/// meter's signature on an agreed ST's readings (or ignore its readings
/// and record the sale as an interval demand, as for [1]).
#[test]
#[ignore = "attack: an agreed ST's unsigned readings choose where ClaimSold lands; the export is then sold twice"]
fn agreed_st_with_invented_readings_lets_the_export_be_sold_twice() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice();
    e.d.set_time(ta.dt_end + MIN);
    let invented = SettlementTx {
        terms: ta.clone(),
        stmp: ta.dt_end + 5 * MIN,
        buyer_sig: None,
        ob: true,
        dt_step_s: 300,
        ps: vec![6000, 0, 0, 0, 0, 0],
        meter_sig: None,
    }
    .sign_as_buyer(&a);
    assert_eq!(settle(&mut e, &s, invented), vec![Outcome::StSettled(StSettlement::Agreed)]);
    e.d.set_time(tb.dt_end + MIN);
    let second = settle(&mut e, &s, metered_st(&tb, &b, 300, B_EXPORT.to_vec()));
    assert_eq!(
        second,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "500 Wh exported, 500 Wh already sold to A: B's arbitration must not count them again"
    );
}
