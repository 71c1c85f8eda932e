//! Pruning of claimed-slot records (issue 11): a record no entry can read
//! any more (its slot began more than `2 × max_dl_ms + expiry_ms` ago) is
//! deleted by a queued `prune_claims` item that the next batch applies;
//! the driver's executor sends one after each batch it finalizes.

mod common;

use common::*;
use gridledger_core::{Address, Amount};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::primary::{PruneClaims, PruneError, CLAIM_PRUNE_PER_CALL};
use gridledger_rollup::state::{claim_horizon_ms, claim_prunable, witness, RecordKey};
use gridledger_rollup::types::{IorTx, Outcome, SlotKey, StSettlement};

fn records_of(e: &Env, seller: &Address) -> usize {
    let s = e.d.settled_state().unwrap();
    let mut keys: Vec<SlotKey> =
        s.claimed.keys().chain(s.slots.keys()).filter(|k| k.seller == *seller).copied().collect();
    keys.sort();
    keys.dedup();
    keys.len()
}

/// The bound, written down: an hour-long period, DL an hour later and an
/// hour's grace give three hours; the slot beginning at 08:00 is read by
/// an ST recorded at 11:00 and prunable only after.
#[test]
fn the_horizon_is_two_deadlines_and_the_grace() {
    let e = funded_short_horizon();
    let p = &e.d.cfg.params;
    assert_eq!(claim_horizon_ms(p), Some(3 * HOUR));
    let slot = SlotKey { seller: trader(1).address(), dt_start: 8 * HOUR, dt_end: 8 * HOUR + 5 * MIN };
    assert!(!claim_prunable(p, &slot, 11 * HOUR), "an ST recorded at 11:00 still reads it");
    assert!(claim_prunable(p, &slot, 11 * HOUR + 1));
}

/// The exact boundary on chain: the ST recorded at `DL + expiry` (11:00)
/// still sees the 08:00 slot's earlier claim (a batch finalized at 10:56
/// pruned nothing it could read), so the export is not counted twice:
/// `SellerShortfall`. Pruned one slot early (`Mutation::PruneEarly`) the
/// record is gone and the seller wins with export it already sold.
#[test]
fn a_claim_at_the_horizon_still_sees_the_boundary_slot() {
    let (e, out) = claim_at_the_horizon();
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
    // Afterwards (after 11:00) the executor prunes the 08:00 slot.
    let mut e = e;
    e.d.set_time(11 * HOUR + 10 * MIN);
    assert_eq!(e.d.flush(&trader(3)).unwrap().status, TxStatus::Success, "the queued deletions open a batch");
    e.d.process(&mut rng(0)).unwrap();
    assert_eq!(records_of(&e, &trader(1).address()), 0, "every record of the 08:00–09:00 sales is pruned");
}

/// Many days of agreed sales (each records its 500 Wh on six slots): the
/// seller's slot records stay at one day's, instead of six per day.
#[test]
fn claim_records_stay_bounded_over_many_days() {
    let mut e = funded_short_horizon();
    let (b, s) = (trader(0), trader(1));
    let days = 12u64;
    let mut most = 0;
    for d in 0..days {
        let t = terms(&b, &s, Amount(200_000), 500, d * 24 * HOUR + 8 * HOUR);
        e.d.set_time(d * 24 * HOUR + 7 * HOUR);
        agreed(&mut e, &s, &[(&b, &t)]);
        e.d.submit(&s, &IorTx::St(st(&t, 1000, true, Some(&b)))).unwrap();
        let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
        assert_eq!(out, vec![Outcome::StSettled(StSettlement::Agreed)], "day {d}");
        let n = records_of(&e, &s.address());
        assert!(n >= 6, "day {d}: today's sale is recorded ({n})");
        most = most.max(n);
    }
    eprintln!("{days} days of sales: at most {most} slot records (without pruning {})", 6 * days);
    assert!(most <= 6 + CLAIM_PRUNE_PER_CALL, "records stay bounded: {most}");
}

/// Refusals: each reverts with its typed error and queues nothing.
#[test]
fn prune_claims_refusals_change_nothing() {
    let (mut e, _) = claim_at_the_horizon();
    let s = trader(1).address();
    let settled = e.d.settled_state().unwrap();
    let slot = |i: u64| SlotKey { seller: s, dt_start: 8 * HOUR + i * 5 * MIN, dt_end: 8 * HOUR + (i + 1) * 5 * MIN };
    let prove = |slots: &[SlotKey]| witness(&settled, &slots.iter().map(|k| RecordKey::Claimed(*k)).collect());
    let now = e.d.now();
    let young = SlotKey { seller: s, dt_start: now, dt_end: now + 5 * MIN };
    let nine: Vec<SlotKey> = (0..CLAIM_PRUNE_PER_CALL as u64 + 1).map(slot).collect();
    let absent = SlotKey { seller: trader(3).address(), dt_start: 8 * HOUR, dt_end: 8 * HOUR + 5 * MIN };
    let cases: Vec<(Vec<SlotKey>, String)> = vec![
        (vec![], PruneError::Count { got: 0, max: CLAIM_PRUNE_PER_CALL }.to_string()),
        (nine.clone(), PruneError::Count { got: nine.len(), max: CLAIM_PRUNE_PER_CALL }.to_string()),
        (vec![slot(0), slot(0)], PruneError::Count { got: 2, max: CLAIM_PRUNE_PER_CALL }.to_string()),
        (vec![young], "may still be read".to_string()),
        (vec![absent], PruneError::Absent(8 * HOUR).to_string()),
    ];
    for (slots, want) in cases {
        let before = e.d.queue(0, u64::MAX).unwrap();
        let w = prove(&slots);
        let r = e.d.primary_call(&trader(3), "prune_claims", args(&PruneClaims { slots, witness: w }), Amount::ZERO);
        let r = r.unwrap();
        match &r.status {
            TxStatus::Reverted(why) => assert!(why.contains(&want), "{why} does not say {want}"),
            other => panic!("accepted: {other:?}"),
        }
        assert_eq!(e.d.queue(0, u64::MAX).unwrap(), before, "nothing queued");
    }
    // A witness of another state does not prove the slot.
    let w = witness(&Default::default(), &[RecordKey::Claimed(slot(0))].into_iter().collect());
    let r = e.d.primary_call(
        &trader(3),
        "prune_claims",
        args(&PruneClaims { slots: vec![slot(0)], witness: w }),
        Amount::ZERO,
    );
    assert!(matches!(r.unwrap().status, TxStatus::Reverted(ref why) if why.contains("does not prove")));
}
