//! Attack round 9 on the improved optimistic rollup (issue 11): who may
//! make a trader's account pending (`pending_parties`), after the seller of
//! a buyer's expiry was added to it (attack r8 [1]); whom a replayed AT
//! penalises; the node counts of a community file (`ior day --config`);
//! and the claims a slot over `MAX_PERIODS_PER_SLOT` fixes (attack r8 [2]).
//!
//! Each test reproduces a finding and fails on the code it was written
//! against; it is ignored until the finding is fixed.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Energy};
use gridledger_ledger::TxStatus;
use gridledger_rollup::driver::meter_key;
use gridledger_rollup::exec::MAX_PERIODS_PER_SLOT;
use gridledger_rollup::types::{
    coins, AgreementTerms, AtRejection, BuyerOpinion, IorParams, IorTx, Outcome, SettlementTx, SlotKey, StRejection,
    StSettlement,
};

/// Terms naming `victim` as the seller of the attacker `buyer`, which the
/// victim never signed: a delivery period long past and off the metering
/// grid, so the expiry has no grid slots to count (no agreement mark is
/// needed to record it, `agreement_mark`) while
/// `exec::expiry_reads_seller` still holds (sent by the buyer, after
/// `DT_end`, another trader as seller).
fn unsigned_off_grid(buyer: &KeyPair, victim: &KeyPair) -> AgreementTerms {
    AgreementTerms {
        ep: Amount(200_000),
        em: Energy(1),
        buyer: buyer.address(),
        seller: victim.address(),
        dt_start: 1,
        dt_end: 2,
        dl: 2,
    }
}

/// [1] Any account can freeze any trader's withdrawals, for as long as it
/// keeps sending one transaction per batch. Since attack r8 [1],
/// `pending_parties` lists the seller of *every* expiry its buyer sends
/// after `DT_end`; the terms are not checked against an agreement (or the
/// seller's signature) before the seller is marked. The attacker (trader
/// 3, no IOR balance, no agreement with anyone) records
/// `Expire(terms naming the victim as seller)` with a period off the grid
/// (so `agreement_mark` asks for no mark): the entry is refused by
/// execution (`NoAgreement`, α off an account the attacker does not care
/// about), but the victim's account is pending until that batch settles,
/// and `withdraw` (and `register_meter`) refuse it. One such entry per
/// batch, each costing only primary-chain gas, keeps an honest seller from
/// ever withdrawing. The module doc of `pending_parties` promises the
/// opposite: "an entry merely naming a trader does not lock that trader's
/// account".
#[test]
fn a_stranger_cannot_freeze_a_sellers_withdrawals_with_expiries() {
    let mut e = funded();
    settle_funding(&mut e);
    let (mallory, victim) = (trader(3), trader(1));
    let t = unsigned_off_grid(&mallory, &victim);
    for round in 0..3 {
        // The attacker records its expiry in this block's batch (refusing
        // it at recording would be a fix too).
        let recorded = e.d.submit(&mallory, &IorTx::Expire(t.clone())).unwrap().status == TxStatus::Success;
        // The victim, who signed nothing, tries to withdraw in the next block.
        let w = e.d.withdraw(&victim, Amount(1)).unwrap();
        assert_eq!(
            w.status,
            TxStatus::Success,
            "round {round}: a trader named by a stranger's unsigned expiry (recorded: {recorded}) must still \
             withdraw: {:?}",
            w.status
        );
        let out = outcomes(&mut e);
        if recorded {
            assert!(out.contains(&Outcome::StRejected(StRejection::NoAgreement(mallory.address()))), "{out:?}");
        }
        settle_withdrawal(&mut e);
    }
}

/// A bridge batch applies the queued withdrawal's debit and settles, so
/// the account is idle again.
fn settle_withdrawal(e: &mut Env) {
    assert_eq!(e.d.flush(&trader(2)).unwrap().status, TxStatus::Success);
    e.d.process(&mut rng(0)).unwrap();
}

/// [1] The same lock keeps a newcomer from registering its certified
/// meter (`register_meter` waits for `idle_for` too): without a meter a
/// seller loses every arbitration (`SellerShortfall`), so an attacker can
/// keep a competitor out of the disputed market for as long as it pays
/// one entry's gas per batch.
#[test]
fn a_stranger_cannot_block_a_newcomers_meter_registration() {
    let mut e = funded();
    let newcomer = fee_wallets(&mut e, 1, 40).remove(0);
    let mallory = trader(3);
    let r = e.d.submit(&mallory, &IorTx::Expire(unsigned_off_grid(&mallory, &newcomer))).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let reg = e.d.register_meters(std::slice::from_ref(&newcomer));
    assert!(reg.is_ok(), "a newcomer named by a stranger's expiry registers its meter: {reg:?}");
}

/// [2] The same freeze by any former buyer of the victim, through the AT
/// replay the contract already refuses. `pending_parties` lists an AT's
/// seller whenever its buyer sends it with a valid seller signature, even
/// when the AT was recorded after its delivery period (`DeliveryPassed`,
/// refused before any balance or score is read). A buyer that bought once
/// from the victim replays that old AT once per batch, forever: each
/// replay costs it α and gas, and the seller can never withdraw.
#[test]
fn a_former_buyer_cannot_freeze_its_sellers_withdrawals_by_replaying_an_old_at() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 100, 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    e.d.submit(&s, &IorTx::St(st(&t, 400, true, Some(&b)))).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::StSettled(StSettlement::Agreed)]);
    for round in 0..3 {
        // Refusing the stale AT at recording would be a fix too.
        let recorded = e.d.submit(&b, &at(&t, &s)).unwrap().status == TxStatus::Success;
        let w = e.d.withdraw(&s, Amount(1)).unwrap();
        assert_eq!(
            w.status,
            TxStatus::Success,
            "round {round}: a replay refused as DeliveryPassed (recorded: {recorded}) reads nothing of the \
             seller, which must still withdraw: {:?}",
            w.status
        );
        let out = outcomes(&mut e);
        if recorded {
            assert!(matches!(out[..], [Outcome::AtRejected(AtRejection::DeliveryPassed { .. })]), "{out:?}");
        }
        settle_withdrawal(&mut e);
    }
}

/// [2], before the period: the same replay while the agreement is open
/// is refused `AgreementOpen` (again before any balance or score is
/// read) and marks the seller pending too. Nothing bounds how far ahead
/// an AT's period may start (only its length and its deadline), so an
/// AT for a period next year keeps a seller frozen all year even where
/// stale (`DeliveryPassed`) replays no longer would.
///
/// Since the fix a period may start at most `MAX_AT_LEAD_MS` (two days)
/// ahead (`a_year_ahead_at_is_refused_at_recording`), so the sale here
/// is a day ahead: its replays in later batches are refused at
/// recording and freeze nobody.
#[test]
fn a_buyer_cannot_freeze_its_seller_by_replaying_an_open_at() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    // A sale for a half hour about a day ahead.
    let t = terms(&b, &s, Amount(200_000), 100, 31 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted]);
    for round in 0..3 {
        let recorded = e.d.submit(&b, &at(&t, &s)).unwrap().status == TxStatus::Success;
        let w = e.d.withdraw(&s, Amount(1)).unwrap();
        assert_eq!(
            w.status,
            TxStatus::Success,
            "round {round}: a replay refused as AgreementOpen (recorded: {recorded}) reads nothing of the seller, \
             which must still withdraw its free balance: {:?}",
            w.status
        );
        let out = outcomes(&mut e);
        if recorded {
            assert_eq!(out, vec![Outcome::AtRejected(AtRejection::AgreementOpen(b.address()))]);
        }
        settle_withdrawal(&mut e);
    }
}

/// [2], the bound: a seller-signed AT whose period starts more than
/// `MAX_AT_LEAD_MS` after its recording is refused at recording with a
/// typed reason, so it makes its seller pending for no batch; one just
/// within the bound is recorded and accepted.
#[test]
fn a_year_ahead_at_is_refused_at_recording() {
    use gridledger_rollup::primary::{AtRecordRefusal, MAX_AT_LEAD_MS};
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let now = e.d.now();
    let t = terms(&b, &s, Amount(200_000), 100, 365 * 24 * HOUR);
    let r = e.d.submit(&b, &at(&t, &s)).unwrap();
    // The refusal names the recording time, the block's.
    let why = AtRecordRefusal::TooFarAhead { dt_start: t.dt_start, now: 0, max_ms: MAX_AT_LEAD_MS }.to_string();
    let why = why.split(" after ").next().unwrap();
    assert!(matches!(&r.status, TxStatus::Reverted(w) if w.contains(why)), "{:?}", r.status);
    assert_eq!(e.d.withdraw(&s, Amount(1)).unwrap().status, TxStatus::Success, "the seller is not pending");
    settle_withdrawal(&mut e);
    let within = terms(&b, &s, Amount(200_000), 100, (now + MAX_AT_LEAD_MS) / (30 * MIN) * (30 * MIN));
    e.d.submit(&b, &at(&within, &s)).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted]);
}

/// [3] One seller signature, many penalties. `SC_EXE_AT` penalises the
/// *seller* when its free balance is below `D_s` (`InsufficientBalance {
/// who: seller }`, "the party at fault pays"), and the agreement is not
/// opened, so the `AgreementOpen` check that stopped attack r5's replay
/// never applies: the buyer records the same seller-signed AT again and
/// again, and every recording costs the seller α. A seller that signed an
/// AT for a later period and whose free balance is below `D_s` at some
/// instant before that period (its deposits locked in other sales, or
/// after a withdrawal) is taken by its buyer from `rs` = 30 to 0 in three
/// entries of one block; once below β every further replay is refused
/// `ReputationTooLow { who: seller }` and penalises it again. Scores never
/// rise, so the seller is barred for good. Expected: one signature costs
/// its signer at most one α (or the replays penalise their sender).
#[test]
fn one_signed_at_costs_its_seller_at_most_one_alpha() {
    let mut e = funded();
    settle_funding(&mut e);
    // The seller (trader 3) has no free IOR balance (all of it would be
    // locked in other sales; here it never funded).
    let (b, s) = (trader(0), trader(3));
    let p = e.d.cfg.params.clone();
    let t = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    let replays = vec![(b.clone(), at(&t, &s)); 3];
    e.d.submit_block(&replays).unwrap();
    let out = outcomes(&mut e);
    assert_eq!(out.len(), 3, "{out:?}");
    let score = e.d.participant(&s.address()).unwrap().reputation;
    assert!(
        score >= p.rs - p.alpha,
        "one signed AT took the seller's score from {} to {score} (β = {}): {out:?}",
        p.rs,
        p.beta
    );
    // The seller funds and sells to another buyer: refused for good.
    e.d.fund(&s, coins(5)).unwrap();
    let t2 = terms(&trader(2), &s, Amount(200_000), 100, 13 * HOUR);
    e.d.submit(&trader(2), &at(&t2, &s)).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted], "a funded seller trades again");
}

/// Held: an expiry its buyer sends for an on-grid period it has no
/// agreement for is refused at recording (`agreement_mark`), so it marks
/// nobody pending.
#[test]
fn an_on_grid_expiry_without_agreement_is_refused_at_recording() {
    let mut e = funded();
    settle_funding(&mut e);
    let (mallory, victim) = (trader(3), trader(1));
    let t = terms(&mallory, &victim, Amount(200_000), 1, 5 * HOUR);
    let r = e.d.submit(&mallory, &IorTx::Expire(t)).unwrap();
    assert_ne!(r.status, TxStatus::Success, "refused at recording");
    assert_eq!(e.d.withdraw(&victim, Amount(1)).unwrap().status, TxStatus::Success);
}

/// [4] `gridledger ior day --config community.toml` takes the node counts
/// from the file unchecked (`Community::day_config` checks participants,
/// prices and funding; `run_day_with_progress` only that neither count is
/// zero). Two lines, `executors = 9223372036854775807` and
/// `validators = 9223372036854775807` (TOML's largest integer), overflow
/// `n + executors + validators` in `run_day_with_progress` (and in
/// `DualChain::open`): a debug build panics, a release build wraps and
/// goes on to create that many node keys and genesis accounts. One of
/// them alone (or `executors = 1000000`) passes every check and makes the
/// run build a genesis of millions of accounts and send a `register_node`
/// block per node: hours of CPU and gigabytes of memory from a one-line
/// file. Expected: a typed `DemoError::Config` naming the bound.
#[test]
fn a_community_file_with_absurd_node_counts_is_refused() {
    let text = "executors = 9223372036854775807\nvalidators = 9223372036854775807\n\
                [[participant]]\nload_profile = \"H0-A\"\nask = 150000\nbid = 240000\n\
                [[participant]]\nload_profile = \"H0-G\"\npv_area_dm2 = 2500\nask = 120000\nbid = 230000\n";
    let c: gridledger_rollup::demo::Community = toml::from_str(text).expect("the file parses");
    let run = std::panic::catch_unwind(|| {
        let cfg = c.day_config(c.day)?;
        gridledger_rollup::demo::run_day(cfg).map(|_| ())
    });
    match run {
        Ok(Err(gridledger_rollup::demo::DemoError::Config(why))) => eprintln!("refused: {why}"),
        Ok(other) => panic!("expected a typed configuration error, got {other:?}"),
        Err(_) => panic!("ior day --config panicked on a community file's node counts"),
    }
}

/// [4], the bounds: `MAX_EXECUTORS` and `MAX_VALIDATORS` are accepted by
/// the community file's checks, one more is refused (`DemoError::Config`),
/// and `DualChain::open` refuses such a driver configuration
/// (`DriverError::Config`) before touching a chain.
#[test]
fn node_counts_are_bounded_at_every_entry_point() {
    use gridledger_rollup::demo::{run_day, Community, DayConfig, DemoError};
    use gridledger_rollup::driver::{DriverConfig, DriverError, DualChain, Mode, MAX_EXECUTORS, MAX_VALIDATORS};
    let community = |e: usize, v: usize| -> Community {
        toml::from_str(&format!("executors = {e}\nvalidators = {v}\n")).expect("the file parses")
    };
    assert!(community(MAX_EXECUTORS, MAX_VALIDATORS).day_config(106).is_ok());
    for (e, v) in [(MAX_EXECUTORS + 1, 3), (2, MAX_VALIDATORS + 1), (0, 3)] {
        let r = community(e, v).day_config(106);
        assert!(matches!(r, Err(DemoError::Config(_))), "{e} executors, {v} validators: {r:?}");
        let r = run_day(DayConfig { executors: e, validators: v, ..DayConfig::default() });
        assert!(matches!(r, Err(DemoError::Config(_))), "{e} executors, {v} validators: {:?}", r.map(|_| ()));
    }
    let nowhere = std::path::Path::new("not-created");
    for cfg in [
        DriverConfig { executors: MAX_EXECUTORS + 1, ..config(Mode::Ior, 4, 2, 3) },
        DriverConfig { validators: usize::MAX, ..config(Mode::Ior, 4, 2, 3) },
        DriverConfig { participants: usize::MAX, ..config(Mode::Ior, 4, MAX_EXECUTORS, MAX_VALIDATORS) },
    ] {
        let r = DualChain::open(nowhere, nowhere, cfg);
        assert!(matches!(r, Err(DriverError::Config(_))), "{:?}", r.map(|_| ()));
    }
    assert!(!nowhere.exists(), "nothing was created");
}

/// An ST of `t` with the seller's certified readings `ps` (one every 5
/// minutes) and its buyer's signature over `ob`.
fn certified_st(t: &AgreementTerms, buyer: &KeyPair, ob: bool, ps: Vec<i64>) -> SettlementTx {
    SettlementTx { terms: t.clone(), stmp: t.dt_end + MIN, buyer_sig: None, ob, dt_step_s: 300, ps, meter_sig: None }
        .sign_readings(&meter_key(&t.seller))
        .sign_as_buyer(buyer)
}

/// [5] setup, `tiny` sales: an honest seller (trader 1, certified meter)
/// exports nothing before 08:00 and 1,200 W from 08:00 to 08:30 (100 Wh in
/// each 5-minute slot). The attacker (buyer trader 0) buys 1 Wh `tiny`
/// times over distinct periods `08:00 − 5j min .. 08:30` and agrees to
/// each (`O_b = 1`); the seller settles each with its certified readings,
/// so each is a movable claim, placed earliest first: all on the 08:00
/// slot (the first with export), though each could move to any slot up to
/// 08:30. Its accomplice C (trader 2) bought the whole 08:00 slot, 100 Wh
/// of 08:00–08:05, with a late deadline, and records `O_b = 0` only after
/// the tiny sales settled (the seller cannot settle C before: its ST is
/// refused `AwaitingBuyerSignature` until C's opinion or `DL`). Returns
/// C's arbitration verdict on the seller's honest ST (the driver's
/// `settlement_tx`, which reaches over the tiny claims' slots).
fn whole_slot_sale_beside_tiny_claims(tiny: u64, ob: bool) -> (Outcome, i128) {
    let mut e = funded();
    let (a, s, c) = (trader(0), trader(1), trader(2));
    // Each accepted AT locks D_s and the undo's reserve from the seller:
    // ten sales need more than the 10 coin every trader is funded with.
    e.d.fund(&s, coins(10)).unwrap();
    let tinies: Vec<AgreementTerms> = (0..tiny)
        .map(|j| {
            let mut t = terms(&a, &s, Amount(200_000), 1, 8 * HOUR - j * 5 * MIN);
            t.dt_end = 8 * HOUR + 30 * MIN;
            t.dl = t.dt_end + 15 * MIN;
            t
        })
        .collect();
    let mut tc = terms(&c, &s, Amount(200_000), 100, 8 * HOUR);
    tc.dt_end = 8 * HOUR + 5 * MIN;
    tc.dl = 10 * HOUR;
    let mut ats: Vec<(&KeyPair, &AgreementTerms)> = tinies.iter().map(|t| (&a, t)).collect();
    ats.push((&c, &tc));
    agreed(&mut e, &s, &ats);
    let sts: Vec<(KeyPair, IorTx)> = tinies
        .iter()
        .map(|t| {
            let slots = ((t.dt_end - t.dt_start) / (5 * MIN)) as usize;
            let mut ps = vec![0; slots];
            for p in ps.iter_mut().skip(slots - 6) {
                *p = 1200;
            }
            (s.clone(), IorTx::St(certified_st(t, &a, true, ps)))
        })
        .collect();
    e.d.submit_block(&sts).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::StSettled(StSettlement::Agreed); tiny as usize]);
    let slot0 = SlotKey { seller: s.address(), dt_start: 8 * HOUR, dt_end: 8 * HOUR + 5 * MIN };
    let st = e.d.settled_state().unwrap();
    let held = st.slots.get(&slot0).map_or(0, |x| x.by_period.len());
    assert_eq!(held as u64, tiny.min(MAX_PERIODS_PER_SLOT as u64), "the tiny claims sit on the 08:00 slot");
    // Every tiny claim is counted on the slots of 08:00–08:30 (since the fix
    // of [5], a claim beyond `MAX_PERIODS_PER_SLOT` takes from 08:05).
    let claimed: u128 = (0..6u64)
        .map(|i| {
            let k = SlotKey {
                seller: s.address(),
                dt_start: slot0.dt_start + i * 5 * MIN,
                dt_end: slot0.dt_end + i * 5 * MIN,
            };
            st.claimed.get(&k).copied().unwrap_or(0)
        })
        .sum();
    assert_eq!(claimed, u128::from(tiny) * 3600);
    assert_eq!(st.claimed.get(&slot0).copied(), Some(u128::from(tiny.min(MAX_PERIODS_PER_SLOT as u64)) * 3600));
    // C records its opinion; the honest seller sends its certified reading of 08:00.
    e.d.submit(&c, &IorTx::Opinion(BuyerOpinion { terms: tc.clone(), ob })).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::OpinionRecorded]);
    let before = e.d.participant(&s.address()).unwrap().balance.0;
    let tx = e.d.settlement_tx(certified_st(&tc, &c, ob, vec![1200])).unwrap();
    assert!(matches!(tx, IorTx::StReach(_, r) if r >= 5), "the seller's ST reaches over the tiny claims: {tx:?}");
    e.d.submit(&s, &tx).unwrap();
    let out = outcomes(&mut e);
    assert_eq!(out.len(), 1, "{out:?}");
    let after = e.d.participant(&s.address()).unwrap().balance.0;
    (out[0].clone(), after as i128 - before as i128)
}

/// What the honest seller is owed for C's sale: its payment, its deposit
/// and the undo's reserve its AT locked.
fn owed() -> i128 {
    let t = terms(&trader(2), &trader(1), Amount(200_000), 100, 8 * HOUR);
    let p = IorParams::case_study();
    (t.payment().unwrap().0 + p.seller_lock().0) as i128
}

/// [5] Held: with `MAX_PERIODS_PER_SLOT` tiny claims on the slot, they
/// move to the later slots of their periods and C's arbitration is won.
#[test]
fn eight_tiny_claims_move_aside_for_a_whole_slot_sale() {
    let (won, _) = whole_slot_sale_beside_tiny_claims(8, false);
    assert_eq!(won, Outcome::StSettled(StSettlement::SellerDelivered));
    assert_eq!(whole_slot_sale_beside_tiny_claims(8, true), (Outcome::StSettled(StSettlement::Agreed), owed()));
}

/// [5] The spill of attack r8 [2]'s fix (`realloc_at`: a slot over
/// `MAX_PERIODS_PER_SLOT` keeps its smallest claims as *fixed* claimed
/// energy) pins a movable claim to the slot for good. A ninth 1 Wh sale
/// of a distinct period pins 1 Wh on the 08:00 slot, which the claim
/// could have taken from any slot up to 08:30; C's claim of the slot's
/// whole export (100 Wh) then misses 1 Wh and the honest seller *loses*
/// the arbitration (`SellerShortfall`): C gets its payment back plus the
/// seller's `F_p × D_s`, and the seller loses `α`, for 100 Wh it
/// delivered. The attacker pays 9 × 1 Wh; the theft scales with C's sale
/// (any sale that needs the pinned slot's whole export). With eight tiny
/// claims (the test above) the same dispute is won.
#[test]
fn a_ninth_tiny_claim_does_not_make_an_honest_seller_lose_a_covered_dispute() {
    let (verdict, _) = whole_slot_sale_beside_tiny_claims(9, false);
    assert_eq!(verdict, Outcome::StSettled(StSettlement::SellerDelivered));
}

/// [5], agreed: C records `O_b = 1` instead (late, after the tiny sales
/// settled). The seller's certified ST cannot place C's sale beside the
/// pinned 1 Wh, the slot holds movable claims, so `place_paid` *undoes*
/// the sale at the honest seller's cost: C gets its payment and deposit
/// back plus the seller's fine `F_p × D_s`; the seller, owed
/// `EP × EM + D_s` for 100 Wh it delivered, ends poorer than before.
#[test]
fn a_ninth_tiny_claim_does_not_undo_an_honest_sellers_agreed_sale() {
    assert_eq!(whole_slot_sale_beside_tiny_claims(9, true), (Outcome::StSettled(StSettlement::Agreed), owed()));
}
