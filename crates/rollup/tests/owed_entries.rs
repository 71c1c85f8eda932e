//! Entries no agreement can be owed take no slot records and no reserve
//! (issue 11, attack r6 [4], the rest): `SC_DS_*` refuses an ST or expiry
//! that would count an agreement's claim slots when no AT of that
//! agreement was recorded by its buyer with its seller's signature (or its
//! party already recorded its quota of such entries), and only the
//! opinions and expiries owed to an agreement's buyer (the first of each,
//! in their time) may use the eighth of a batch's gas kept for them.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::primary::MAX_SLOT_ENTRIES_PER_PARTY;
use gridledger_rollup::types::{IorTx, Outcome, StSettlement};

fn run(e: &mut Env, who: &KeyPair, tx: IorTx) -> Vec<Outcome> {
    e.d.submit(who, &tx).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

fn batches(e: &Env) -> usize {
    (0..).take_while(|i| e.d.batch_header(*i).is_ok()).count()
}

/// A sybil's ST of 750 grid slots for an agreement no AT ever named, and
/// a sybil buyer's expiry of such an agreement: both would count their
/// period's claim slots (≈ 22 M gas of the batch's 63 M share for the
/// ST). Expected: refused at recording (a typed reason), no batch opened
/// or weighed, the sender pays its fee. Before: recorded, weighed, and
/// refused only by execution.
#[test]
fn an_st_or_expiry_of_an_agreement_no_at_named_occupies_no_slot_records() {
    let mut e = funded();
    let day = 10 * 24 * HOUR;
    e.d.set_time(day + 7 * HOUR);
    let s = fee_wallets(&mut e, 2, 6_000);
    let nobody = KeyPair::from_seed("nobody").address();
    let t = past_terms(&e, nobody, &s[0], 750, e.d.now());
    let st = filler_st(&e, &t, 750);
    let mut expiry = past_terms(&e, s[1].address(), &s[0], 750, e.d.now());
    expiry.dl = expiry.dt_end;
    let n = batches(&e);
    let before: Vec<u128> = s.iter().map(|k| wealth(&e, k)).collect();
    let receipts = e.d.submit_block(&[(s[0].clone(), st), (s[1].clone(), IorTx::Expire(expiry))]).unwrap();
    for (r, k) in receipts.iter().zip(["ST", "expiry"]) {
        let why = match &r.status {
            TxStatus::Reverted(why) => why.clone(),
            other => panic!("the sybil's {k} was recorded ({other:?}, {} gas)", r.gas_used),
        };
        assert!(why.contains("was recorded; no agreement"), "{k}: {why}");
    }
    assert_eq!(batches(&e), n, "no batch opened for refused entries");
    for (i, k) in s.iter().enumerate() {
        assert!(wealth(&e, k) < before[i], "the sender paid its fee");
    }
}

/// An agreement settled by its ST: its seller resends the ST. Each
/// resent ST counts the period's claim slots and execution refuses it
/// (the agreement is closed). Expected: at most
/// `MAX_SLOT_ENTRIES_PER_PARTY` such entries of the seller are recorded
/// in all; the next is refused at recording. Before: every resend
/// recorded.
#[test]
fn a_settled_agreement_takes_at_most_its_quota_of_slot_entries() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    let settle = st(&t, 1000, true, Some(&b));
    assert_eq!(run(&mut e, &s, IorTx::St(settle.clone())), vec![Outcome::StSettled(StSettlement::Agreed)]);
    for _ in 1..MAX_SLOT_ENTRIES_PER_PARTY {
        let out = run(&mut e, &s, IorTx::St(settle.clone()));
        assert!(matches!(out[..], [Outcome::StRejected(_)]), "{out:?}");
    }
    let r = e.d.submit_block(&[(s.clone(), IorTx::St(settle))]).unwrap();
    let why = match &r[0].status {
        TxStatus::Reverted(why) => why.clone(),
        other => panic!("a settled agreement's ST was recorded a {}th time: {other:?}", MAX_SLOT_ENTRIES_PER_PARTY + 1),
    };
    assert!(why.contains("entries reading this agreement's claim slots"), "{why}");
}

/// The STs' share of a batch's gas filled by heavy STs of sybil pairs
/// (backed by recorded ATs, so `SC_DS_ST` takes them), then 100 sybils'
/// opinions no one owes them (the buyer's agreement named by others, or
/// fictitious agreements), then the buyer's `O_b = 0`. Expected: the
/// sybils' opinions do not take the reserved eighth (refused, "would
/// exceed"); the buyer's opinion lands. Before: about 85 sybil opinions
/// fill the reserve and the buyer's is refused.
#[test]
fn sybil_opinions_cannot_take_the_reserved_gas() {
    use gridledger_rollup::primary::{MAX_BATCH_GAS, RESERVED_GAS};
    let mut e = funded();
    let (txs, fillers, sybils, t, at) = reserve_race(&mut e);
    let s = trader(1);
    assert!(t.dt_end <= at && at <= t.dl);
    let receipts = e.d.submit_block(&txs).unwrap();
    let opinions = &receipts[fillers..fillers + sybils];
    let fillers = &receipts[..fillers];
    assert!(fillers.iter().any(|r| r.status == TxStatus::Success), "backed fillers record");
    let taken = opinions.iter().filter(|r| r.status == TxStatus::Success).count();
    let batch = batches(&e) - 1;
    let h = e.d.batch_header(batch as u64).unwrap();
    assert!(h.gas > MAX_BATCH_GAS - RESERVED_GAS - 200_000, "the STs' share is full: {} gas", h.gas);
    assert_eq!(receipts.last().unwrap().status, TxStatus::Success, "the buyer's O_b lands ({taken} sybil opinions)");
    assert!(
        opinions.iter().filter(|r| r.status != TxStatus::Success).all(|r| reverted(r).contains("would exceed")),
        "sybil opinions are refused for the STs' share"
    );
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert!(out.contains(&Outcome::OpinionRecorded), "{out:?}");
    e.d.set_time(t.dl + MIN);
    let out = run(&mut e, &s, IorTx::St(st(&t, 0, false, None)));
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
}
