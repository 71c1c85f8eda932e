//! Attack round 13 on the improved optimistic rollup (issue 11): the day's
//! packing (`driver::record_blocks`, `DualChain::record_packed`), a day
//! stopped by a refused record part way through a slot, and its resume
//! (`demo::resume_day`), checked per account.
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use gridledger_core::Address;
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_rollup::data::SLOTS_PER_DAY;
use gridledger_rollup::demo::{resume_day, run_day_on, DayConfig, DemoError, DAY_START_MS, SLOT_MS};
use gridledger_rollup::driver::{batch_entries, dev_chain, record_blocks, DriverError, DualChain};
use gridledger_rollup::primary::{MAX_BATCH_GAS, RESERVED_GAS};
use gridledger_rollup::types::{IorParams, IorTx};
use gridledger_rollup::{primary_registry, secondary_registry};

/// Reattaches to the chains in `dirs` (the day's configuration `dcfg`).
fn attach(
    dirs: &(tempfile::TempDir, tempfile::TempDir),
    dcfg: gridledger_rollup::driver::DriverConfig,
) -> Result<DualChain, DemoError> {
    let n = dcfg.accounts()?;
    let p = dev_chain(dirs.0.path(), n, dcfg.wallet, primary_registry()).map_err(DriverError::from)?;
    let s = dev_chain(dirs.1.path(), n, dcfg.wallet, secondary_registry()).map_err(DriverError::from)?;
    Ok(DualChain::attach(p, s, dcfg)?)
}

/// Runs a day of slot 24 (its ATs, then the STs as slot 25 starts) for
/// `metered` (the last rows the sellers), with a driver that believes one
/// sender may record 1,000 entries a batch, so the 40 entries of one
/// sender go in one block and `SC_DS_*` refuses the last 8 of them: the
/// day stops with [`DriverError::Refused`] part way through a slot. Then
/// resumes it and checks, per account, that every agreement recorded
/// settled as agreed exactly once: each trader's IOR balance is its
/// funding plus what it sold minus what it bought, nothing open or
/// pending, no one penalised.
fn stopped_then_resumed(metered: Vec<Vec<i64>>, consumers: usize, prosumers: usize, refused_sender: usize) {
    let n = consumers + prosumers;
    let cfg = DayConfig {
        prosumers,
        consumers,
        funding_coins: 200,
        metered: Some(metered),
        slots: (24, 25),
        ..DayConfig::default()
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r = run_day_on(cfg.clone(), |dcfg| {
        let mut d = DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?;
        d.cfg.params.max_entries_per_sender = 1_000;
        Ok(d)
    });
    match r {
        Err(DemoError::Driver(DriverError::Refused { sender, .. })) => {
            assert_eq!(sender, dev_key(refused_sender).address())
        }
        Err(e) => panic!("expected a refused record, got {e}"),
        Ok(_) => panic!("the day was reported"),
    }
    let starts: BTreeMap<u64, usize> =
        (24..=25).map(|k| (DAY_START_MS + k as u64 * SLOT_MS, k)).collect::<BTreeMap<_, _>>();
    let rep = resume_day(&cfg, &starts, |dcfg| attach(&dirs, dcfg), &mut |_| Ok(())).unwrap();
    assert_eq!(rep.open_agreements, 0, "{rep:?}");
    assert_eq!(rep.batches.0, rep.batches.1, "{rep:?}");
    assert!(rep.outcomes.keys().all(|o| o.contains("Agreed")), "{rep:?}");
    // A fresh view of the chains: what every recorded AT makes each
    // balance (each agreement key counted once).
    let dcfg = config_of(&cfg);
    let d = attach(&dirs, dcfg).unwrap();
    let funding = 200_000_000i128;
    let mut want: BTreeMap<Address, i128> = (0..n).map(|i| (dev_key(i).address(), funding)).collect();
    let mut seen = BTreeSet::new();
    let (next, fin) = d.reader().progress().unwrap();
    assert_eq!(next, fin);
    for b in 0..next {
        let h = d.batch_header(b).unwrap();
        for e in batch_entries(&d.primary, &h).unwrap() {
            let t = e.tx.terms();
            if e.tx.is_at() && seen.insert(t.key()) {
                let pay = t.payment().unwrap().0 as i128;
                *want.get_mut(&t.buyer).unwrap() -= pay;
                *want.get_mut(&t.seller).unwrap() += pay;
            }
        }
    }
    assert!(seen.len() >= 32, "{} agreements recorded", seen.len());
    let s = d.settled_state().unwrap();
    assert!(s.agreements.is_empty());
    let rs = d.cfg.params.rs;
    for (a, w) in want {
        let p = s.participants.get(&a).unwrap();
        assert_eq!(p.balance.0 as i128, w, "account {a}");
        assert_eq!(p.reputation, rs, "account {a} penalised");
    }
}

/// The driver's configuration of `cfg`'s day (as `resume_day` derives
/// it): read back from a run that stops at once.
fn config_of(cfg: &DayConfig) -> gridledger_rollup::driver::DriverConfig {
    let mut got = None;
    let _ = run_day_on::<DevChain, DevChain>(cfg.clone(), |dcfg| {
        got = Some(dcfg);
        Err(DemoError::Config("stop".into()))
    });
    got.unwrap()
}

/// Held up: one plant sells to 40 households; the driver (told a larger
/// per-sender bound) sends the plant's 40 STs in one block and the day
/// stops at the 33rd, refused. Its resume settles the 32 recorded STs and
/// sends the other 8 afresh: every sale settles as agreed once, each
/// account's balance is exact, no one is penalised.
#[test]
fn a_day_stopped_by_a_refused_st_mid_slot_resumes_to_exact_balances() {
    let buyers = 40;
    let mut metered: Vec<Vec<i64>> = vec![vec![-500; SLOTS_PER_DAY]; buyers];
    metered.push(vec![40_000; SLOTS_PER_DAY]);
    stopped_then_resumed(metered, buyers, 1, buyers);
}

/// Held up: one household buys from 40 sellers; its 40 ATs go in one
/// block and the day stops at the 33rd AT, refused (8 sales never
/// recorded). The resume settles the 32 agreements the recorded ATs
/// opened: balances exact, no one penalised.
#[test]
fn a_day_stopped_by_a_refused_at_mid_slot_resumes_to_exact_balances() {
    let sellers = 40;
    let mut metered: Vec<Vec<i64>> = vec![vec![-20_000; SLOTS_PER_DAY]];
    metered.extend(vec![vec![500; SLOTS_PER_DAY]; sellers]);
    stopped_then_resumed(metered, 1, sellers, 0);
}

/// Held up: an entry heavier than any block takes (above the per-entry
/// batch's whole budget) is neither dropped nor looped on: `record_blocks` puts it in a
/// block of its own, in order, and the blocks still cover every entry.
#[test]
fn an_entry_too_heavy_for_any_block_gets_a_block_of_its_own() {
    let p = IorParams::case_study();
    let now = 8 * HOUR;
    let (b, s) = (dev_key(1), dev_key(2));
    let light = terms(&b, &s, gridledger_core::Amount(200_000), 500, 7 * HOUR);
    // A day-long period at a 1-second step: far more readings than one
    // entry carries.
    let mut heavy = st(&light, 1_000, true, Some(&b));
    heavy.dt_step_s = 1;
    heavy.ps = vec![1; 400_000];
    let heavy_gas = gridledger_rollup::primary::entry_gas(
        &gridledger_rollup::types::Entry { sender: s.address(), recorded_at: now, tx: IorTx::St(heavy.clone()) },
        p.meter_step_s,
    );
    assert!(heavy_gas > MAX_BATCH_GAS - RESERVED_GAS, "{heavy_gas}");
    let txs = vec![
        (s.clone(), IorTx::St(st(&light, 1_000, true, Some(&b)))),
        (s.clone(), IorTx::St(heavy)),
        (b.clone(), IorTx::At(at_tx(&light, &s))),
    ];
    let blocks = record_blocks(&p, now, &txs);
    assert_eq!(blocks.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![1, 1, 1]);
}

fn at_tx(
    t: &gridledger_rollup::types::AgreementTerms,
    seller: &gridledger_core::crypto::KeyPair,
) -> gridledger_rollup::types::AgreementTx {
    match at(t, seller) {
        IorTx::At(a) => a,
        _ => unreachable!(),
    }
}
