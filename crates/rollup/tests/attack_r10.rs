//! Attack round 10 on the improved optimistic rollup (issue 11): the
//! recording refusals of `SC_DS_AT` (attack r9: stale, far-ahead,
//! other-terms and later-batch replays), the seller's undo reserve, and
//! what a refused AT leaves behind.
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::types::{coins, AgreementTerms, AtRejection, IorTx, Outcome, StSettlement};

/// [1] One refused AT locks its pair out of its delivery period for good.
/// `SC_DS_AT` marks the agreement key (buyer, seller, delivery start) with
/// the terms and batch of the first AT its buyer records with the
/// seller's signature, whatever execution then decides (the contract does
/// not see the verdict). If execution refuses that AT for a transient
/// reason (here: the seller's free balance was short of `D_s` plus the
/// undo reserve at that instant, its coin locked elsewhere or its `fund`
/// still queued), the pair can never open an agreement for that period:
/// the same AT in a later batch is refused `Recorded`, and terms the
/// seller signs afresh once funded are refused `OtherTerms`, although no
/// agreement is open under the key and the period has not begun. The
/// seller already paid α for the first refusal. Expected: a key whose
/// AT was refused by execution stays open to a later AT of the pair (or
/// at least to the same seller-signed AT once its refusal's cause is
/// gone).
#[test]
fn a_refused_at_does_not_lock_the_pair_out_of_its_period() {
    let mut e = funded();
    settle_funding(&mut e);
    // The seller (trader 3) has no free IOR balance at this instant.
    let (b, s) = (trader(0), trader(3));
    let t = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    assert_eq!(e.d.submit(&b, &at(&t, &s)).unwrap().status, TxStatus::Success);
    let out = outcomes(&mut e);
    assert!(
        matches!(out[..], [Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. })] if who == s.address()),
        "{out:?}"
    );
    // The seller funds; the funding settles.
    e.d.fund(&s, coins(5)).unwrap();
    settle_funding(&mut e);
    assert!(e.d.now() < t.dt_start, "the period has not begun");
    // The buyer records the same AT again: refused at recording today.
    let same = e.d.submit(&b, &at(&t, &s)).unwrap();
    // The seller signs fresh terms for the same half hour (another price).
    let fresh = AgreementTerms { ep: Amount(210_000), ..t.clone() };
    let again = e.d.submit(&b, &at(&fresh, &s)).unwrap();
    let out =
        if same.status == TxStatus::Success || again.status == TxStatus::Success { outcomes(&mut e) } else { vec![] };
    assert!(
        out.contains(&Outcome::AtAccepted),
        "a funded seller and its buyer cannot trade the 12:00 half hour any more: same AT {:?}, fresh terms {:?}, \
         outcomes {out:?}",
        same.status,
        again.status
    );
}

/// [2] `resume_day` indexes the day's profiles with the slot index the
/// journal names for an open agreement's start, unchecked. `ior day --rpc`
/// reads that index from its journal file (`slot_starts: [[slot, start]]`)
/// and passes it on, so a damaged or edited journal (or one whose slot
/// index is out of the day's range) panics the resuming run (index out of
/// bounds) instead of giving a typed error. Expected:
/// `DemoError::Config` naming the slot.
#[test]
fn a_journal_slot_index_beyond_the_day_is_refused_not_a_panic() {
    use gridledger_rollup::demo::{resume_day, DayConfig, DemoError};
    use gridledger_rollup::driver::DualChain;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = DayConfig::default();
    let (b, s) = (trader(0), trader(1));
    let start = 9 * HOUR;
    let t = terms(&b, &s, Amount(200_000), 100, start);
    let slot_starts = std::collections::BTreeMap::from([(start, 1_000_000usize)]);
    let run = std::panic::catch_unwind(|| {
        resume_day(
            &cfg,
            &slot_starts,
            |dcfg| {
                let mut d = DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?;
                d.register_meters(&[b.clone(), s.clone()])?;
                for k in [&b, &s] {
                    d.fund(k, coins(10))?;
                }
                d.set_time(7 * HOUR);
                d.submit(&b, &at(&t, &s))?;
                let out: Vec<Outcome> = d.process(&mut rng(0))?.into_iter().flat_map(|x| x.outcomes).collect();
                assert_eq!(out, vec![Outcome::AtAccepted], "the open agreement resume_day must settle");
                Ok(d)
            },
            &mut |_| Ok(()),
        )
        .map(|_| ())
    });
    match run {
        Ok(Err(DemoError::Config(why))) => eprintln!("refused: {why}"),
        Ok(other) => panic!("expected a typed configuration error, got {other:?}"),
        Err(_) => panic!("resume_day panicked on a journal's slot index"),
    }
}

/// Held: the undo reserve (`F_p × D_s` beside `D_s`) comes back to the
/// seller whichever way its agreements close: agreed, expired by a silent
/// seller, lost in arbitration. The seller ends with its payment less one
/// `D_s` per agreement it failed, and the contract's coin equals the IOR
/// balances plus node deposits once nothing is open.
#[test]
fn the_undo_reserve_comes_back_on_every_close() {
    let mut e = funded();
    settle_funding(&mut e);
    let p = e.d.cfg.params.clone();
    let (b, c, s) = (trader(0), trader(2), trader(1));
    let start = e.d.participant(&s.address()).unwrap().balance.0;
    let ta = terms(&b, &s, Amount(200_000), 100, 8 * HOUR);
    let tb = terms(&c, &s, Amount(200_000), 100, 8 * HOUR + 30 * MIN);
    let tc = terms(&b, &s, Amount(200_000), 100, 9 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&ta, &s)), (c.clone(), at(&tb, &s)), (b.clone(), at(&tc, &s))]).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::AtAccepted; 3]);
    let locked = e.d.participant(&s.address()).unwrap().balance.0;
    assert_eq!(start - locked, 3 * p.seller_lock().0, "each AT locks D_s and the reserve");
    // A: agreed.
    e.d.set_time(ta.dt_end + 5 * MIN);
    e.d.submit(&s, &IorTx::St(st(&ta, 200, true, Some(&b)))).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::StSettled(StSettlement::Agreed)]);
    // C: the buyer disputes, the seller's readings show nothing delivered.
    e.d.set_time(tc.dt_end + MIN);
    e.d.submit(&b, &IorTx::Opinion(gridledger_rollup::types::BuyerOpinion { terms: tc.clone(), ob: false })).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::OpinionRecorded]);
    e.d.set_time(tc.dl + MIN);
    e.d.submit(&s, &IorTx::St(st(&tc, 0, false, None))).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
    // B: the seller stays silent; the buyer expires it.
    e.d.set_time(tb.dl + p.expiry_ms + MIN);
    e.d.submit(&c, &IorTx::Expire(tb.clone())).unwrap();
    assert_eq!(outcomes(&mut e), vec![Outcome::Expired]);
    assert!(e.d.settled_state().unwrap().agreements.is_empty());
    let end = e.d.participant(&s.address()).unwrap().balance.0;
    assert_eq!(end, start + ta.payment().unwrap().0 - 2 * p.ds.0, "the seller's reserve came back three times");
    assert_eq!(internal_total(&e.d, 9), contract_balance(&e.d).0, "coin conserved");
}

/// [1], the race that triggers it for an honest pair: the seller funds its
/// IOR account in the same block as its buyer's AT, its `fund` ahead of
/// the AT. Whether the credit counts for this batch depends only on
/// whether another trader's entry opened the batch earlier in the block
/// (a queued `fund` is applied when the *next* batch opens), i.e. on the
/// order the block's proposer chose. Here one unrelated AT comes first:
/// the buyer's AT is refused for the seller's balance (the seller loses
/// α), and from then on neither the same AT nor fresh terms for that
/// half hour can be recorded, though the seller's coin is there.
#[test]
fn a_fund_race_in_one_block_does_not_bar_the_pair() {
    use gridledger_ledger::devnet::call;
    use gridledger_ledger::ChainClient;
    use gridledger_rollup::driver::{record_call, RECORD_GAS_LIMIT};
    use gridledger_rollup::IOR_PRIMARY_ID;
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s, c, x) = (trader(0), trader(3), trader(2), trader(1));
    let t = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    let other = terms(&c, &x, Amount(200_000), 100, 12 * HOUR);
    let chain_id = e.d.primary.chain_id();
    let mut hashes = Vec::new();
    for (key, method, a, value) in [
        (&c, "sc_ds_at", record_call(&at(&other, &x)).1, Amount::ZERO),
        (&s, "fund", vec![], coins(5)),
        (&b, "sc_ds_at", record_call(&at(&t, &s)).1, Amount::ZERO),
    ] {
        let n = e.d.primary.next_nonce(&key.address());
        let tx = call(key, chain_id, n, IOR_PRIMARY_ID, method, a, value, RECORD_GAS_LIMIT);
        hashes.push(e.d.primary.submit(&tx).unwrap());
    }
    e.d.primary.seal().unwrap();
    for h in &hashes {
        assert_eq!(e.d.primary.receipt(h).unwrap().unwrap().status, TxStatus::Success);
    }
    let out = outcomes(&mut e);
    assert_eq!(out[0], Outcome::AtAccepted, "{out:?}");
    let refused = matches!(
        out[1],
        Outcome::AtRejected(AtRejection::InsufficientBalance { who, .. }) if who == s.address()
    );
    settle_funding(&mut e);
    assert!(e.d.participant(&s.address()).unwrap().balance >= coins(5), "the seller's coin is there");
    let mut accepted = out[1] == Outcome::AtAccepted;
    if refused {
        let same = e.d.submit(&b, &at(&t, &s)).unwrap();
        let fresh = AgreementTerms { ep: Amount(210_000), ..t.clone() };
        let again = e.d.submit(&b, &at(&fresh, &s)).unwrap();
        if same.status == TxStatus::Success || again.status == TxStatus::Success {
            accepted = outcomes(&mut e).contains(&Outcome::AtAccepted);
        }
        assert!(accepted, "the funded pair cannot trade its half hour: {:?} / {:?}", same.status, again.status);
    }
    assert!(accepted, "{out:?}");
}

/// [3] The spill rule's greedy sweep still pins a claim where a placement
/// within `MAX_PERIODS_PER_SLOT` exists (attack r9 [5], commit "a claim
/// beyond MAX_PERIODS_PER_SLOT spills"). A seller's slot 0 exports 10 ws,
/// slot 1 exports 1, slot 2 nothing. Eight earlier won claims of 1 ws, of
/// eight distinct periods that end with slot 1, sit on slot 0. A new claim
/// of 3 ws over slots 0–2 arrives. The bounded earliest-deadline sweep
/// serves the eight (earlier deadlines) on slot 0, which is then "full",
/// skips the new claim there, finds 1 ws on slot 1 and none on slot 2, and
/// fails; the unbounded fallback then puts nine periods on slot 0 and
/// pins the smallest earlier claim as fixed energy for good. Yet a bounded
/// placement exists: slot 0 serves the new claim (3) and seven earlier
/// claims (7), slot 1 the eighth. The rule's documentation promises a pin
/// only where more than eight periods must share one slot.
///
/// Kept as a documented limitation: the rule's documentation
/// (`exec::MAX_PERIODS_PER_SLOT`, "When a claim can still be pinned") now
/// names this case; an exact bounded placement is NP-hard in general
/// (splittable bin packing with cardinality constraints) and not built.
#[test]
#[ignore = "attack r10: documented limitation (exec::MAX_PERIODS_PER_SLOT, case 2): the greedy bounded sweep pins a claim although a bounded placement exists"]
fn no_pin_where_a_bounded_placement_exists() {
    use gridledger_rollup::exec::{realloc, PreState, SlotAlloc, MAX_PERIODS_PER_SLOT};
    use gridledger_rollup::types::SlotKey;
    const L: u64 = 300_000;
    let seller = trader(1).address();
    let t0 = 10 * HOUR;
    let slot = |i: u64| SlotKey { seller, dt_start: t0 + i * L, dt_end: t0 + (i + 1) * L };
    let mut st = PreState::default();
    let mut alloc = SlotAlloc::default();
    // Eight periods, each ending with slot 1 and starting before the window.
    for k in 0..MAX_PERIODS_PER_SLOT as u64 {
        alloc.by_period.insert((t0 - (k + 1) * L, t0 + 2 * L), 1);
    }
    st.claimed.insert(slot(0), MAX_PERIODS_PER_SLOT as u128);
    st.slots.insert(slot(0), alloc);
    let split = [(slot(0), 10i128), (slot(1), 1), (slot(2), 0)];
    let plan = realloc(&st, &split, &[], 3).expect("the export (11 ws) covers all claims (11 ws)");
    let mut pinned = Vec::new();
    for (k, total, a) in &plan.slots {
        let movable: u128 = a.by_period.values().sum();
        assert!(a.by_period.len() <= MAX_PERIODS_PER_SLOT, "{k:?}: {a:?}");
        if *total > movable {
            pinned.push((k.dt_start, total - movable));
        }
    }
    assert!(pinned.is_empty(), "claims pinned as fixed energy (slot start, ws): {pinned:?}; plan {plan:?}");
}
