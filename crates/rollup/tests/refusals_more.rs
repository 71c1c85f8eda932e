//! More refusals of the IOR contracts and library, table-driven: the
//! batch-ordering and node-lifecycle refusals of `ior-primary` (each reverts
//! with exactly its reason and changes nothing but the sender's nonce and
//! fee), `init` with an invalid configuration, every [`ApplyError`] of
//! [`apply_effects`] (all or nothing: the state is untouched), and an unknown
//! load profile.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{call, DevChain};
use gridledger_ledger::{contract_address, ContractError, StateRead, TxStatus};
use gridledger_rollup::data::{DataError, LoadTable};
use gridledger_rollup::driver::{DriverError, DualChain, Mode};
use gridledger_rollup::exec::{apply_effects, ApplyError, PreState};
use gridledger_rollup::primary::{BatchData, BatchId, FinalizeArgs, PrimaryConfig};
use gridledger_rollup::types::{coins, Agreement, Effect, Participant, SlotKey};
use gridledger_rollup::{args, primary_registry, IOR_PRIMARY_ID};

/// What a primary-contract refusal could touch: the caller's account, the
/// contract's coin, every trader's IOR record and the batch progress.
#[derive(Debug, PartialEq)]
struct Snapshot {
    caller: (u64, Amount),
    held: Amount,
    participants: Vec<Participant>,
    progress: serde_json::Value,
    batches: Vec<serde_json::Value>,
}

fn snapshot(e: &Env, key: &KeyPair) -> Snapshot {
    let st = e.d.primary.chain.state();
    let acc = st.account(&key.address());
    Snapshot {
        caller: (acc.nonce, acc.balance),
        held: st.account(&contract_address(IOR_PRIMARY_ID)).balance,
        participants: (0..4).map(|i| e.d.participant(&trader(i).address()).unwrap()).collect(),
        progress: e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap(),
        batches: (0..3)
            .map(|b| e.d.primary.chain.view(IOR_PRIMARY_ID, "batch", &args(&BatchId { batch: b })).unwrap())
            .collect(),
    }
}

/// Calls `method` from `key` and checks it reverted with exactly `reason`,
/// emitted nothing and changed nothing but the caller's nonce and fee.
fn reverts(e: &mut Env, key: &KeyPair, method: &str, a: Vec<u8>, value: Amount, reason: &str) {
    let before = snapshot(e, key);
    let r = e.d.primary_call(key, method, a, value).unwrap();
    assert_eq!(r.status, TxStatus::Reverted(format!("reverted: {reason}")), "{method}");
    assert!(r.events.is_empty(), "{method}: events {:?}", r.events);
    let mut want = before;
    want.caller = (want.caller.0 + 1, Amount(want.caller.1 .0 - r.fee.0));
    assert_eq!(snapshot(e, key), want, "{method}: only nonce and fee may change");
}

fn funded() -> Env {
    let mut cfg = config(Mode::Ior, 4, 2, 3);
    cfg.params.rs = 100;
    let mut e = open(cfg);
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    e
}

#[test]
fn batch_order_and_node_lifecycle_refusals() {
    let mut e = funded();
    let (b, s, b2, outsider) = (trader(0), trader(1), trader(2), trader(3));
    // Batch 0 and batch 1, recorded in consecutive blocks.
    let t0 = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let t1 = terms(&b2, &s, Amount(200_000), 500, 9 * HOUR);
    assert_eq!(e.d.submit(&b, &at(&t0, &s)).unwrap().status, TxStatus::Success);
    assert_eq!(e.d.submit(&b2, &at(&t1, &s)).unwrap().status, TxStatus::Success);
    let input0 = e.d.batch_input(0).unwrap();
    let input1 = e.d.batch_input(1).unwrap();
    let exec0 = e.d.executors.iter().find(|(k, _)| k.address() == input0.header.executor).unwrap().0.clone();
    let exec1 = e.d.executors.iter().find(|(k, _)| k.address() == input1.header.executor).unwrap().0.clone();
    let tcrs1 = gridledger_rollup::exec::execute_batch(
        &mut gridledger_rollup::exec::OffChain,
        &e.d.cfg.params,
        &input1.prestate,
        &input1.entries,
    )
    .unwrap();

    let es1 = e.d.entries(1).unwrap();
    let sub = |e: &Env, batch, tcrs: Vec<_>, entries| tcr_args(e, batch, tcrs, entries);
    let rows: Vec<(&KeyPair, &str, Vec<u8>, Amount, String)> = vec![
        (&exec0, "sc_cr", sub(&e, 7, vec![], vec![]), Amount::ZERO, "no batch 7".into()),
        (
            &exec0,
            "finalize",
            args(&FinalizeArgs { batch: 7, entries: vec![], witness: Default::default() }),
            Amount::ZERO,
            "no batch 7".into(),
        ),
        (
            &exec1,
            "sc_cr",
            sub(&e, 1, tcrs1.clone(), es1.clone()),
            Amount::ZERO,
            "batch 0 must settle before batch 1".into(),
        ),
        (&exec1, "finalize", e.d.finalize_args(1).unwrap(), Amount::ZERO, "batch 0 must settle before batch 1".into()),
        (
            &outsider,
            "dispute",
            e.d.dispute_args(0, vec![]).unwrap(),
            coins(10),
            "batch 0 has no recorded TCRs awaiting settlement".into(),
        ),
        (&outsider, "deregister_node", vec![], Amount::ZERO, format!("{} is not a node", outsider.address())),
        (&exec0, "deregister_node", vec![], Amount::ZERO, "node is assigned to unsettled batch 0".into()),
    ];
    for (key, method, a, value, reason) in rows {
        reverts(&mut e, key, method, a, value, &reason);
    }

    // Settle both; recording TCRs for a settled batch is refused.
    e.d.process(&mut rng(0)).unwrap();
    let late = sub(&e, 1, tcrs1, es1);
    reverts(&mut e, &exec1, "sc_cr", late, Amount::ZERO, "batch 1 is settled");
    let a = e.d.dispute_args(1, vec![]).unwrap();
    reverts(&mut e, &outsider, "dispute", a, coins(10), "batch 1 has no recorded TCRs awaiting settlement");

    // Views refuse unknown names and unknown batches.
    assert_eq!(
        e.d.primary.chain.view(IOR_PRIMARY_ID, "everything", &[]),
        Err(ContractError::Revert("ior-primary has no view everything".into()))
    );
    assert_eq!(
        e.d.primary.chain.view(IOR_PRIMARY_ID, "batch_input", &args(&BatchData { batch: 9, entries: vec![] })),
        Err(ContractError::Revert("no batch 9".into()))
    );
}

/// TCRs for a batch whose block is still being built are refused: the
/// batch may still grow.
#[test]
fn tcrs_for_a_batch_still_recording_are_refused() {
    let mut e = funded();
    let (b, s, other) = (trader(0), trader(1), trader(3));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let (method, a) = gridledger_rollup::driver::record_call(&at(&t, &s));
    let chain_id = e.d.primary.chain.genesis().chain_id;
    let n_b = e.d.primary.chain.next_nonce(&b.address());
    let n_o = e.d.primary.chain.next_nonce(&other.address());
    let before_o = e.d.primary.chain.state().account(&other.address());
    let rec = call(&b, chain_id, n_b, IOR_PRIMARY_ID, method, a, Amount::ZERO, 1_000_000);
    let early =
        call(&other, chain_id, n_o, IOR_PRIMARY_ID, "sc_cr", tcr_args(&e, 0, vec![], vec![]), Amount::ZERO, 1_000_000);
    let h_rec = e.d.primary.chain.submit(&rec.to_bytes()).unwrap();
    let h_early = e.d.primary.chain.submit(&early.to_bytes()).unwrap();
    e.d.primary.seal();
    let r_rec = e.d.primary.chain.receipt(&h_rec).unwrap().unwrap();
    let r = e.d.primary.chain.receipt(&h_early).unwrap().unwrap();
    assert_eq!(r_rec.status, TxStatus::Success);
    assert_eq!(r.status, TxStatus::Reverted("reverted: batch 0 is still recording".into()));
    assert!(r.events.is_empty());
    let after_o = e.d.primary.chain.state().account(&other.address());
    assert_eq!((after_o.nonce, after_o.balance.0), (before_o.nonce + 1, before_o.balance.0 - r.fee.0));
    // The batch holds the one entry and no TCRs.
    let h = e.d.batch_input(0).unwrap();
    assert_eq!(h.entries.len(), 1);
    assert!(h.header.tcr_root.is_none());
}

/// `init` on a fresh chain validates the configuration; a refused `init`
/// leaves the contract uninitialised. Through the driver the same refusal
/// surfaces as a typed set-up error.
#[test]
fn invalid_init_configuration_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 2, WALLET, primary_registry()).unwrap();
    let admin = gridledger_ledger::devnet::dev_key(0);
    let base = config(Mode::Ior, 2, 1, 1);
    let good = PrimaryConfig {
        params: base.params.clone(),
        authority: admin.public(),
        node_deposit: coins(100),
        bonus_permille: 500,
        window_ms: 5_000,
        challenge_bond: coins(1),
        delegation_fee: Amount(1),
        pipelined: false,
    };
    let fp = "F_p must lie in (0,1), max_batch and max_entries_per_sender be positive and ë at most 1";
    let mut rows: Vec<(PrimaryConfig, &str)> = Vec::new();
    for fp_permille in [0, 1000] {
        let mut c = good.clone();
        c.params.fp_permille = fp_permille;
        rows.push((c, fp));
    }
    let mut c = good.clone();
    c.params.max_batch = 0;
    rows.push((c, fp));
    let mut c = good.clone();
    c.params.max_entries_per_sender = 0;
    rows.push((c, fp));
    rows.push((PrimaryConfig { bonus_permille: 1001, ..good.clone() }, fp));
    rows.push((PrimaryConfig { challenge_bond: Amount::ZERO, ..good.clone() }, "challenge_bond must be positive"));
    for (c, reason) in rows {
        let before = dc.chain.state().account(&admin.address());
        let r = dc.call(&admin, IOR_PRIMARY_ID, "init", args(&c), Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Reverted(format!("reverted: {reason}")));
        assert!(r.events.is_empty());
        let after = dc.chain.state().account(&admin.address());
        assert_eq!(after.balance.0, before.balance.0 - r.fee.0);
        assert_eq!(
            dc.chain.view(IOR_PRIMARY_ID, "config", &[]),
            Err(ContractError::Revert("IOR contract not initialised".into()))
        );
    }

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut bad = config(Mode::Ior, 2, 1, 1);
    bad.challenge_bond = Amount::ZERO;
    match DualChain::open(a.path(), b.path(), bad) {
        Err(DriverError::Setup { method, reason }) => {
            assert_eq!(method, "init");
            assert!(reason.contains("challenge_bond must be positive"), "{reason}");
        }
        Err(e) => panic!("expected DriverError::Setup, got {e}"),
        Ok(_) => panic!("expected DriverError::Setup, got a chain"),
    }
}

/// Effects that do not fit the state are refused with their typed reason
/// and leave the state exactly as it was (all or nothing), even when
/// earlier effects of the same list applied.
#[test]
fn apply_effects_refuses_each_misfit_and_changes_nothing() {
    let p = config(Mode::Ior, 2, 1, 1).params;
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let key = t.key();
    let mut open_state = PreState::default();
    open_state.participants.insert(b.address(), Participant { balance: Amount(1_000), reputation: 100 });
    open_state.agreements.insert(key, Agreement { terms: t.clone(), pool: Amount(50), buyer_opinion: None });
    let slot = SlotKey { seller: s.address(), dt_start: t.dt_start, dt_end: t.dt_end };
    let slot2 = SlotKey { seller: s.address(), dt_start: t.dt_end, dt_end: t.dt_end + (t.dt_end - t.dt_start) };
    let mut claimed = open_state.clone();
    claimed.claimed.insert(slot, u128::MAX);
    let empty = PreState::default();
    let rep = Effect::Reputation { who: b.address(), by: 1 };
    let rows: Vec<(&PreState, Vec<Effect>, ApplyError)> = vec![
        (&open_state, vec![rep.clone(), Effect::Open(t.clone())], ApplyError::AgreementExists(b.address())),
        (&empty, vec![Effect::Close], ApplyError::NoAgreement(b.address())),
        (&empty, vec![Effect::Opinion(true)], ApplyError::NoAgreement(b.address())),
        (&empty, vec![Effect::Burn(Amount(1))], ApplyError::NoAgreement(b.address())),
        (
            &open_state,
            vec![rep.clone(), Effect::Lock { who: b.address(), amount: Amount(1_001) }],
            ApplyError::InsufficientBalance { who: b.address(), needed: Amount(1_001), available: Amount(1_000) },
        ),
        (
            &open_state,
            vec![Effect::Pay { to: s.address(), amount: Amount(51) }],
            ApplyError::PoolShort { needed: Amount(51), available: Amount(50) },
        ),
        (
            &open_state,
            vec![Effect::Burn(Amount(20)), Effect::Burn(Amount(31))],
            ApplyError::PoolShort { needed: Amount(31), available: Amount(30) },
        ),
        (&open_state, vec![Effect::Burn(Amount(10)), Effect::Close], ApplyError::PoolNotEmpty(Amount(40))),
        (&claimed, vec![rep.clone(), Effect::Claim { slot, ws: 1 }], ApplyError::Overflow),
        // A claim the slots' unclaimed net export does not cover: more
        // than exported, an import that nets the export away, or export
        // an earlier claim already took.
        (
            &open_state,
            vec![rep.clone(), Effect::ClaimExport { slots: vec![(slot, 1_000)], ws: 1_001, reach: 0 }],
            ApplyError::ExportClaimed(1_001),
        ),
        (
            &open_state,
            vec![rep.clone(), Effect::ClaimExport { slots: vec![(slot, 2_000), (slot2, -2_000)], ws: 1, reach: 0 }],
            ApplyError::ExportClaimed(1),
        ),
        (
            &claimed,
            vec![rep.clone(), Effect::ClaimExport { slots: vec![(slot, 1_000)], ws: 1, reach: 0 }],
            ApplyError::ExportClaimed(1),
        ),
    ];
    for (i, (state, effects, want)) in rows.into_iter().enumerate() {
        let mut st = state.clone();
        assert_eq!(apply_effects(&mut st, &p, &key, &effects), Err(want), "row {i}");
        assert_eq!(&st, state, "row {i}: state changed");
    }
    // The same state accepts fitting effects (the table is not vacuous).
    let mut st = open_state.clone();
    let burned = apply_effects(&mut st, &p, &key, &[Effect::Burn(Amount(50)), Effect::Close]).unwrap();
    assert_eq!(burned, Amount(50));
    assert!(st.agreements.is_empty());
}

#[test]
fn an_unknown_load_profile_is_a_typed_error() {
    let table = LoadTable { profiles: vec!["H0".into()], watts: vec![vec![100; 48]] };
    assert_eq!(table.profile("H0").unwrap().len(), 48);
    match table.profile("G4") {
        Err(DataError::UnknownProfile(name)) => assert_eq!(name, "G4"),
        other => panic!("expected UnknownProfile, got {other:?}"),
    }
}

/// Reading a batch that does not exist is a typed view error carrying the
/// contract's reason; the single-chain contract refuses unknown views.
#[test]
fn unknown_batches_and_views_are_typed_errors() {
    let e = funded();
    let progress = e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap();
    match e.d.batch_input(3) {
        Err(DriverError::View(why)) => assert_eq!(why, "chain: reverted: no batch 3"),
        Err(other) => panic!("expected DriverError::View, got {other}"),
        Ok(_) => panic!("batch 3 does not exist"),
    }
    assert_eq!(e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap(), progress);

    let d = tempfile::tempdir().unwrap();
    let dc = DevChain::open(d.path(), 1, WALLET, gridledger_rollup::single_chain_registry()).unwrap();
    assert_eq!(
        dc.chain.view(gridledger_rollup::IOR_SINGLE_ID, "everything", &[]),
        Err(ContractError::Revert("ior-single-chain has no view everything".into()))
    );
}

/// A community whose participants name a load profile the table lacks is
/// refused with the data error naming that profile, before any chain work.
#[test]
fn a_day_with_an_unknown_load_profile_is_a_typed_demo_error() {
    use gridledger_rollup::data::{parse_weather, WEATHER_CSV};
    use gridledger_rollup::demo::{day_net_from, participants, DayConfig, DemoError};
    let cfg = DayConfig::default();
    let wanted = participants(&cfg)[0].load_profile.clone();
    let year = parse_weather(WEATHER_CSV).unwrap();
    let empty = LoadTable { profiles: vec!["NOT-A-PROFILE".into()], watts: vec![vec![0; 365 * 48]] };
    match day_net_from(&cfg, &year, &empty) {
        Err(DemoError::Data(DataError::UnknownProfile(name))) => assert_eq!(name, wanted),
        Err(other) => panic!("expected DemoError::Data(UnknownProfile), got {other}"),
        Ok(_) => panic!("a day without its load profiles cannot be computed"),
    }
    // With the real table the same day computes (the refusal is about the table).
    let loads = gridledger_rollup::data::parse_loads(gridledger_rollup::data::LOAD_CSV).unwrap();
    assert_eq!(day_net_from(&cfg, &year, &loads).unwrap().len(), 48);
}

/// The driver refuses to go on, with a typed error and no batch settled,
/// when it holds no key of the batch's assigned executor, and when the only
/// executor stays silent.
#[test]
fn the_driver_reports_an_unknown_or_silent_executor() {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    for silent in [false, true] {
        let mut cfg = config(Mode::Ior, 4, 1, 1);
        cfg.params.rs = 100;
        let mut e = open(cfg);
        e.d.fund(&b, coins(10)).unwrap();
        e.d.fund(&s, coins(10)).unwrap();
        e.d.set_time(7 * HOUR);
        assert_eq!(e.d.submit(&b, &at(&t, &s)).unwrap().status, TxStatus::Success);
        let executor = e.d.batch_input(0).unwrap().header.executor;
        if silent {
            e.d.executors[0].1.behaviour = ExecutorBehaviour::Silent;
        } else {
            e.d.executors.clear();
        }
        let before: Vec<Participant> = (0..2).map(|i| e.d.participant(&trader(i).address()).unwrap()).collect();
        match (silent, e.d.process(&mut rng(0))) {
            (false, Err(DriverError::UnknownNode(a))) => assert_eq!(a, executor),
            (true, Err(DriverError::Stuck(batch))) => assert_eq!(batch, 0),
            (_, other) => panic!("silent={silent}: unexpected {other:?}"),
        }
        let after: Vec<Participant> = (0..2).map(|i| e.d.participant(&trader(i).address()).unwrap()).collect();
        assert_eq!(after, before, "no agreement opened");
        let progress = e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap();
        assert_eq!(progress["next_to_settle"], 0);
        assert!(e.d.settled.is_empty());
    }
}

/// A call the chain's mempool refuses (here: a wallet that cannot pay)
/// surfaces from the driver as the client's typed submit error, and neither
/// the IOR record nor the contract's coin changes.
#[test]
fn a_call_the_chain_refuses_is_a_typed_client_error() {
    use gridledger_ledger::{ClientError, SubmitError};
    let mut e = funded();
    let pauper = KeyPair::from_seed("ior-refusals-pauper");
    let held = contract_balance(&e.d);
    let record = e.d.participant(&pauper.address()).unwrap();
    match e.d.fund(&pauper, coins(1)) {
        Err(DriverError::Client(ClientError::Submit(SubmitError::InsufficientBalance { available, .. }))) => {
            assert_eq!(available, Amount::ZERO)
        }
        other => panic!("expected an insufficient-balance submit error, got {other:?}"),
    }
    assert_eq!(contract_balance(&e.d), held);
    assert_eq!(e.d.participant(&pauper.address()).unwrap(), record);
    assert_eq!(e.d.primary.chain.state().account(&pauper.address()).nonce, 0);
}
