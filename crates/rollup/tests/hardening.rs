//! Refusals and persistence added with the fixes of the IOR attack findings
//! (`attack_rollup.rs`): each refused operation is refused with its reason
//! and changes nothing.

mod common;

use common::*;
use gridledger_core::{Amount, Energy};
use gridledger_ledger::{ChainClient, TxStatus};
use gridledger_rollup::exec::{execute_batch, OffChain};
use gridledger_rollup::primary::BatchState;
use gridledger_rollup::types::{AgreementTerms, IorTx, Outcome, StRejection, StSettlement, Tcr};
use gridledger_rollup::{args, IOR_PRIMARY_ID, IOR_SECONDARY_ID};

fn progress(e: &Env) -> serde_json::Value {
    e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap()
}

/// `finalize` executes a half-posted batch on chain only after two windows
/// from its close; before that it is refused and the batch stays open.
#[test]
fn finalize_of_a_half_posted_batch_waits_two_windows() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    // Sent before its period ends, it counts no claim slot, so `SC_DS_ST`
    // records it without any AT naming its agreement.
    let junk = IorTx::St(st(&terms(&s, &b, Amount(1), 1, 9 * HOUR), 0, true, None));
    e.d.submit_block(&[(b.clone(), at(&t, &s)), (b.clone(), junk)]).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(0).unwrap();
    let tcrs = execute_batch(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let ats: Vec<Tcr> = tcrs.into_iter().filter(|t| t.outcome.is_at()).collect();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let r = e.d.primary_call(&exec, "sc_cr", tcr_args(&e, 0, ats, e.d.entries(0).unwrap()), Amount::ZERO).unwrap();
    // One TCR root covers the whole batch: half of it cannot be posted.
    assert!(reverted(&r).contains("do not cover"), "{r:?}");
    // The reverted call closed nothing; the next call to the contract does.
    assert_eq!(e.d.primary_call(&b, "close", vec![], Amount::ZERO).unwrap().status, TxStatus::Success);
    let closed = e.d.batch_input(0).unwrap().header.closed_at.unwrap();
    e.d.set_time(closed + 2 * e.d.cfg.window_ms());
    let r = e.d.primary_call(&b, "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    assert!(reverted(&r).contains("the chain executes it after"), "{r:?}");
    assert_eq!(e.d.batch_input(0).unwrap().header.state, BatchState::Open);
    assert_eq!(progress(&e)["next_to_settle"], 0);
    e.d.set_time(closed + 2 * e.d.cfg.window_ms() + 1);
    let r = e.d.primary_call(&b, "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert!(matches!(e.d.batch_input(0).unwrap().header.state, BatchState::Settled { disputed: true, .. }));
    // The honest half-poster keeps its deposit.
    let node = e.d.primary.chain.view(IOR_PRIMARY_ID, "node", &borsh::to_vec(&exec.address()).unwrap()).unwrap();
    assert_eq!(node["active"], true);
}

/// A barred trader's junk is refused by execution and locks nobody.
/// Reputation is settlement state, off the primary chain (issue 11), so
/// recording no longer reads it: the junk entry is recorded, refused at
/// execution (costing its sender α again), names a victim without locking
/// its account, and leaves the victim's coin alone. (The per-sender cap,
/// `attack_one_sender_cannot_fill_a_batch_with_junk`, bounds how much of a
/// batch one account fills.)
#[test]
fn a_barred_senders_junk_is_refused_at_execution_and_locks_nobody() {
    let mut e = funded();
    let (sybil, victim) = (trader(2), trader(0));
    // Two refused ATs (not signed by the seller) bar the sybil (30 → 10 = β).
    for i in 0..2u64 {
        let t = AgreementTerms {
            ep: Amount(1),
            em: Energy(1),
            buyer: sybil.address(),
            seller: victim.address(),
            dt_start: 9 * HOUR + i,
            dt_end: 10 * HOUR,
            dl: 10 * HOUR,
        };
        let unsigned = IorTx::At(gridledger_rollup::types::AgreementTx { terms: t, seller_sig: None });
        e.d.submit(&sybil, &unsigned).unwrap();
        e.d.process(&mut rng(0)).unwrap();
    }
    assert_eq!(e.d.participant(&sybil.address()).unwrap().reputation, 10);
    let before = e.d.participant(&victim.address()).unwrap();
    let junk = terms(&victim, &sybil, Amount(1), 1, 9 * HOUR);
    let r = e.d.submit(&sybil, &IorTx::Expire(junk)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let pending = e.d.primary.chain.view(IOR_PRIMARY_ID, "pending", &borsh::to_vec(&victim.address()).unwrap());
    assert_eq!(pending.unwrap(), 0, "the victim it names is not locked");
    let out = e.d.process(&mut rng(0)).unwrap();
    assert!(matches!(out[0].outcomes[0], Outcome::StRejected(StRejection::NotBuyer { .. })), "{:?}", out[0].outcomes);
    assert_eq!(e.d.participant(&victim.address()).unwrap(), before);
    assert_eq!(e.d.participant(&sybil.address()).unwrap().reputation, 0);
}

/// An uncertified account cannot register as an executor on the secondary
/// chain; its `sc_exe` computes but records nothing.
#[test]
fn secondary_executor_registration_needs_the_authority() {
    use gridledger_rollup::secondary::{ExecRequest, RegisterExecutor};
    let mut e = funded();
    let outsider = trader(3);
    let forged = outsider.sign(&gridledger_rollup::types::node_cert_digest(
        &e.d.cfg.params.domain,
        &outsider.address(),
        gridledger_rollup::types::NodeRole::Executor,
    ));
    let send = |e: &mut Env, method: &str, a: Vec<u8>| {
        let n = e.d.secondary.next_nonce(&outsider.address());
        let id = e.d.secondary.chain_id();
        let tx =
            gridledger_ledger::devnet::call(&outsider, id, n, IOR_SECONDARY_ID, method, a, Amount::ZERO, 10_000_000);
        e.d.secondary.exec(tx).unwrap()
    };
    let r = send(&mut e, "register_executor", args(&RegisterExecutor { cert: forged }));
    assert!(reverted(&r).contains("not signed by the authority"));
    let req = ExecRequest { batch: 5, entries: vec![], prestate: Default::default() };
    assert_eq!(send(&mut e, "sc_exe", args(&req)).status, TxStatus::Success);
    let rec = e.d.secondary.chain.view(IOR_SECONDARY_ID, "executed", &borsh::to_vec(&5u64).unwrap()).unwrap();
    assert_eq!(rec, serde_json::Value::Null);
}

/// The claimed share of a seller's slot persists across batches: the same
/// readings cannot win a second dispute in a later batch either.
#[test]
fn a_slots_export_counts_once_across_batches() {
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 500, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b1.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t1.dt_end + MIN);
    e.d.submit(&s, &IorTx::St(st(&t1, 1000, false, Some(&b1)))).unwrap();
    let first = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(first[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    e.d.submit(&s, &IorTx::St(st(&t2, 1000, false, Some(&b2)))).unwrap();
    let second = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(second[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
}

/// A delivery period off the metering grid (`IorParams::meter_step_s`,
/// 5 minutes here) is refused with `AtRejection::OffGrid` (its energy
/// could not be claimed per grid slot): no agreement opens and no coin
/// moves; like every refused AT it costs its sender α.
#[test]
fn an_agreement_off_the_metering_grid_is_refused() {
    use gridledger_rollup::types::AtRejection;
    let mut e = funded();
    settle_funding(&mut e);
    let part = |e: &Env, k: &gridledger_core::crypto::KeyPair| e.d.participant(&k.address()).unwrap();
    let (b, s) = (trader(0), trader(1));
    let mut t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + MIN);
    let before = (part(&e, &b).balance, part(&e, &s));
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let grid_ms = u64::from(e.d.cfg.params.meter_step_s) * 1000;
    let off = AtRejection::OffGrid { dt_start: t.dt_start, dt_end: t.dt_end, grid_ms };
    assert_eq!(out[0].outcomes, vec![Outcome::AtRejected(off)]);
    assert_eq!((part(&e, &b).balance, part(&e, &s)), before, "no coin locked");
    // The same trade on the grid opens.
    t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted]);
}

/// Readings at another interval than the one the seller's meter was
/// registered with are refused with `StRejection::OffMeterInterval`: no
/// coin moves and the agreement stays open (like every refused ST, the
/// sender loses α). The seller's meter (registered at the 5-minute grid
/// step) then proves the same 500 Wh export at its own interval.
#[test]
fn readings_off_the_meters_interval_are_refused() {
    let mut e = funded();
    settle_funding(&mut e);
    let part = |e: &Env, k: &gridledger_core::crypto::KeyPair| e.d.participant(&k.address()).unwrap();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    let fine = metered_st(&t, &b, 60, vec![1000; 30]);
    assert_eq!(fine.metered_ws(), 500 * 3600);
    let before = (part(&e, &b).balance, part(&e, &s).balance);
    e.d.submit(&s, &IorTx::St(fine)).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let off = StRejection::OffMeterInterval { step_s: 60, meter_step_s: 300 };
    assert_eq!(out[0].outcomes, vec![Outcome::StRejected(off)]);
    assert_eq!((part(&e, &b).balance, part(&e, &s).balance), before, "no coin moved");
    assert!(e.d.settled_state().unwrap().agreements.contains_key(&t.key()), "the agreement stays open");
    assert!(e.d.settled_state().unwrap().claimed.is_empty(), "nothing claimed");
    // The same export at the meter's own interval proves delivery.
    e.d.submit(&s, &IorTx::St(st(&t, 1000, false, Some(&b)))).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
}

/// Readings at a meter's registered interval finer than the grid prove
/// delivery: a meter registered at 60 s sums its thirty one-minute
/// readings into six 5-minute grid slots (one claim record each), and its
/// 5-minute readings are refused (`OffMeterInterval`).
#[test]
fn readings_at_the_meters_interval_prove_delivery_per_grid_slot() {
    let mut e = funded_metered(5_000, 60);
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    let coarse = st(&t, 1000, false, Some(&b));
    e.d.submit(&s, &IorTx::St(coarse)).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let off = StRejection::OffMeterInterval { step_s: 300, meter_step_s: 60 };
    assert_eq!(out[0].outcomes, vec![Outcome::StRejected(off)]);
    // 600 W for 29 minutes, then 18,600 W for one: 290 + 310 Wh; the last
    // grid slot holds 4 × 600 W + 18,600 W minutes = 350 Wh.
    let mut ps = vec![600; 30];
    ps[29] = 18_600;
    let fine = metered_st(&t, &b, 60, ps);
    let split = fine.claim_split(300).unwrap();
    assert_eq!(split.len(), 6, "one slot per 5 minutes");
    assert_eq!(split.iter().map(|x| x.1).collect::<Vec<_>>(), [vec![180_000; 5], vec![1_260_000]].concat());
    e.d.submit(&s, &IorTx::St(fine)).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    let claimed = &e.d.settled_state().unwrap().claimed;
    assert!(claimed.len() <= 6, "claims are per grid slot, not per reading: {claimed:?}");
    assert!(claimed.keys().all(|k| k.dt_end - k.dt_start == 5 * MIN), "{claimed:?}");
    assert_eq!(claimed.values().sum::<u128>(), 500 * 3600);
}

/// `register_meter` refuses a reading interval of zero or one that does
/// not divide the metering grid step with `MeterError::IntervalOffGrid`,
/// and records nothing; an interval that divides it is registered.
#[test]
fn a_meter_interval_off_the_grid_is_refused() {
    use gridledger_rollup::primary::{MeterError, RegisterMeter};
    use gridledger_rollup::types::{meter_cert_digest, MeterRecord};
    let mut e = funded();
    // Traders' meters are registered by `open`; a validator's account is not.
    let owner = e.d.validators[0].0.clone();
    let grid_s = e.d.cfg.params.meter_step_s;
    let key = gridledger_rollup::driver::meter_key(&owner.address()).address();
    let meter_view = |e: &Env| e.d.primary.chain.view(IOR_PRIMARY_ID, "meter", &args(&owner.address())).unwrap();
    for step_s in [0, 7, 600] {
        let meter = MeterRecord { key, step_s };
        let cert = e.d.authority.sign(&meter_cert_digest(&e.d.cfg.params.domain, &owner.address(), &meter));
        let r = e.d.primary_call(&owner, "register_meter", args(&RegisterMeter { meter, cert }), Amount::ZERO).unwrap();
        assert_eq!(reverted(&r), format!("reverted: {}", MeterError::IntervalOffGrid { step_s, grid_s }));
        assert!(meter_view(&e).is_null(), "nothing registered");
    }
    let meter = MeterRecord { key, step_s: 60 };
    let cert = e.d.authority.sign(&meter_cert_digest(&e.d.cfg.params.domain, &owner.address(), &meter));
    let r = e.d.primary_call(&owner, "register_meter", args(&RegisterMeter { meter, cert }), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    assert_eq!(meter_view(&e)["step_s"], 60);
}

/// The grid does not refuse an honest seller: two agreements with
/// overlapping periods (08:00–08:30 and 08:05–08:35, 250 Wh each) both
/// win their arbitrations when the export (1,000 W from 08:00 to 08:35,
/// 583 Wh) covers both in every slot they share, and the claims
/// recorded per grid slot never exceed what the meter exported there.
#[test]
fn overlapping_periods_covered_by_the_export_both_win() {
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 250, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 250, 8 * HOUR + 5 * MIN);
    e.d.submit_block(&[(b1.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    e.d.set_time(t2.dt_end + MIN);
    e.d.submit_block(&[
        (s.clone(), IorTx::St(st(&t1, 1000, false, Some(&b1)))),
        (s.clone(), IorTx::St(st(&t2, 1000, false, Some(&b2)))),
    ])
    .unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerDelivered); 2]);
    let claimed = &e.d.settled_state().unwrap().claimed;
    // Claims take from the earliest slots with unclaimed export first
    // (`exec::claim_alloc`), so some of the seven slots may hold none.
    assert!(claimed.len() <= 7, "at most one record per 5-minute slot 08:00–08:35: {claimed:?}");
    assert!(claimed.keys().all(|k| k.dt_start >= t1.dt_start && k.dt_end <= t2.dt_end), "{claimed:?}");
    assert!(claimed.values().all(|ws| *ws <= 1000 * 300), "{claimed:?}");
    assert_eq!(claimed.values().sum::<u128>(), 2 * 250 * 3600);
}

/// Absurd meter values and a funding below `D_s` are configuration errors.
#[test]
fn demo_input_out_of_range_is_a_typed_error() {
    use gridledger_rollup::demo::{parse_meter_csv, run_day, DayConfig, DemoError};
    let mut csv = String::from("time,a\n");
    for h in 0..24 {
        csv.push_str(&format!("{h},{}\n", if h == 5 { i64::MIN } else { 0 }));
    }
    assert!(matches!(parse_meter_csv(&csv), Err(DemoError::Config(m)) if m.contains("beyond")));
    let poor = DayConfig { funding_coins: 1, ..DayConfig::default() };
    assert!(matches!(run_day(poor), Err(DemoError::Config(m)) if m.contains("must exceed the deposit")));
}

/// Dispute commitments are bounded: an account holds at most
/// `MAX_OPEN_COMMITMENTS` unexpired ones, and one more is refused with
/// `CommitError::TooManyOpen` and records nothing (another account is not
/// limited by it). Once they expire, each commitment deletes up to
/// `COMMITMENT_PRUNE_PER_CALL` expired records, oldest first, and the
/// account may commit again.
#[test]
fn dispute_commitments_are_capped_per_account_and_pruned_once_expired() {
    use gridledger_core::Hash32;
    use gridledger_rollup::primary::{CommitError, COMMITMENT_PRUNE_PER_CALL, MAX_OPEN_COMMITMENTS};
    let mut e = funded_with_window(600_000);
    let (who, other) = (trader(3), trader(2));
    let commit = |e: &mut Env, k: &gridledger_core::crypto::KeyPair, i: usize| {
        e.d.primary_call(k, "commit_dispute", args(&Hash32([i as u8; 32])), Amount::ZERO).unwrap()
    };
    // The primary contract's stored commitment records (`dq/SEQ`, `dc/…`,
    // `dca/ADDR`).
    let stored = |e: &Env, prefix: &[u8]| {
        let p = gridledger_ledger::state::contract_key(IOR_PRIMARY_ID, prefix);
        e.d.primary.chain.state().iter().filter(|(k, _)| k.starts_with(&p)).count()
    };
    let t0 = e.d.now();
    for i in 0..MAX_OPEN_COMMITMENTS {
        let r = commit(&mut e, &who, i);
        assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    }
    let n = MAX_OPEN_COMMITMENTS;
    assert_eq!((stored(&e, b"dq/"), stored(&e, b"dc/"), stored(&e, b"dca/")), (n, n, 1));
    let r = commit(&mut e, &who, 99);
    assert_eq!(reverted(&r), format!("reverted: {}", CommitError::TooManyOpen { open: n, cap: n }));
    assert_eq!((stored(&e, b"dq/"), stored(&e, b"dc/"), stored(&e, b"dca/")), (n, n, 1), "nothing recorded");
    assert_eq!(commit(&mut e, &other, 99).status, TxStatus::Success, "another account is not limited");
    // A window later all of them have expired: the next commitment deletes
    // the oldest expired records and is accepted.
    e.d.set_time(t0 + e.d.cfg.window_ms() + 60_000);
    assert_eq!(commit(&mut e, &who, 99).status, TxStatus::Success);
    let left = n + 1 - COMMITMENT_PRUNE_PER_CALL as usize;
    assert_eq!((stored(&e, b"dq/"), stored(&e, b"dc/")), (left + 1, left + 1));
    // Further commitments drain the backlog down to the live ones.
    for i in 0..4 {
        assert_eq!(commit(&mut e, &other, 100 + i).status, TxStatus::Success);
    }
    assert_eq!((stored(&e, b"dq/"), stored(&e, b"dc/"), stored(&e, b"dca/")), (5, 5, 2));
}
