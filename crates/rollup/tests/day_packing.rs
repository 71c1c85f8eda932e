//! How the day's driver and the benchmark pack ATs and STs into blocks
//! (`driver::record_blocks`, `DualChain::record_packed`), and what a day
//! does when a record is refused anyway (issue 11, attack r12 [1]).

mod common;

use std::collections::BTreeMap;

use common::*;
use gridledger_core::Address;
use gridledger_ledger::devnet::dev_key;
use gridledger_rollup::data::SLOTS_PER_DAY;
use gridledger_rollup::demo::{run_day_on, DayConfig, DemoError};
use gridledger_rollup::driver::{record_blocks, DriverError, DualChain};
use gridledger_rollup::primary::{entry_gas, MAX_BATCH_GAS, MAX_SENDER_GAS, RESERVED_GAS};
use gridledger_rollup::types::{Entry, IorParams, IorTx};

/// What `SC_DS_*` would say of `block` recorded at `now`: whether it fits
/// every per-block bound.
fn fits(p: &IorParams, now: u64, block: &[(gridledger_core::crypto::KeyPair, IorTx)]) -> bool {
    let mut senders: BTreeMap<Address, (u32, u64)> = BTreeMap::new();
    let mut gas = 0u64;
    for (k, tx) in block {
        let g = entry_gas(&Entry { sender: k.address(), recorded_at: now, tx: tx.clone() }, p.meter_step_s);
        gas += g;
        let e = senders.entry(k.address()).or_default();
        *e = (e.0 + 1, e.1 + g);
    }
    block.len() <= p.max_batch as usize
        && gas <= MAX_BATCH_GAS - RESERVED_GAS
        && senders.values().all(|(n, g)| *n <= p.max_entries_per_sender && *g <= MAX_SENDER_GAS)
}

/// The blocks cover the entries in order, each fits the contract's bounds
/// (entries per block, per sender, the batch's and a sender's gas), and
/// each is cut only where the next entry would not fit: one seller's 40
/// STs go as 32 + 8, and 300 STs of distinct sellers as the batch gas
/// budget takes them (fewer than 300 in the first block).
#[test]
fn blocks_cover_the_entries_in_order_each_fitting_and_full() {
    let p = IorParams::case_study();
    let now = 8 * HOUR;
    let plant = dev_key(0);
    let mut txs = Vec::new();
    for i in 0..40 {
        let b = dev_key(1 + i);
        let t = terms(&b, &plant, gridledger_core::Amount(200_000), 500, 7 * HOUR);
        txs.push((plant.clone(), IorTx::St(st(&t, 1_000, true, Some(&b)))));
    }
    let one_seller = record_blocks(&p, now, &txs);
    assert_eq!(one_seller.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![32, 8]);

    for i in 0..300 {
        let (b, s) = (dev_key(100 + i), dev_key(400 + i));
        let t = terms(&b, &s, gridledger_core::Amount(200_000), 500, 7 * HOUR);
        txs.push((s.clone(), IorTx::St(st(&t, 1_000, true, Some(&b)))));
    }
    let blocks = record_blocks(&p, now, &txs);
    let flat: Vec<_> = blocks.iter().flat_map(|b| b.iter()).collect();
    assert_eq!(flat.len(), txs.len());
    assert!(flat.iter().zip(&txs).all(|(a, b)| std::ptr::eq(*a, b)), "the entries in order");
    let mut at = 0;
    for (i, block) in blocks.iter().enumerate() {
        assert!(!block.is_empty() && fits(&p, now, block), "block {i} of {} entries does not fit", block.len());
        at += block.len();
        if let Some(next) = txs.get(at) {
            let mut more = block.to_vec();
            more.push(next.clone());
            assert!(!fits(&p, now, &more), "block {i} was cut although the next entry fits");
        }
    }
    assert!(blocks.iter().any(|b| b.len() < 300 && b.iter().all(|(k, _)| k.address() != plant.address())));
}

/// A day whose record is refused stops with the refusal, naming the call,
/// its sender and the contract's reason, instead of leaving the entry
/// unrecorded and reporting the day. (The driver here believes the
/// per-sender bound is larger than the contract's, so it sends the 40 STs
/// of one seller in one block, as the day did before attack r12 [1].)
#[test]
fn a_day_whose_record_is_refused_stops_with_the_refusal() {
    let buyers = 40;
    let mut metered: Vec<Vec<i64>> = vec![vec![-500; SLOTS_PER_DAY]; buyers];
    metered.push(vec![40_000; SLOTS_PER_DAY]);
    let cfg = DayConfig {
        prosumers: 1,
        consumers: buyers,
        funding_coins: 200,
        metered: Some(metered),
        slots: (24, 25),
        ..DayConfig::default()
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let r = run_day_on(cfg, |dcfg| {
        let mut d = DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?;
        d.cfg.params.max_entries_per_sender = 1_000;
        Ok(d)
    });
    match r {
        Err(DemoError::Driver(DriverError::Refused { method, sender, reason })) => {
            assert_eq!((method, sender), ("sc_ds_st", dev_key(buyers).address()));
            assert!(reason.contains("per sender"), "{reason}");
        }
        Err(e) => panic!("expected a refused ST, got {e}"),
        Ok(r) => panic!("the day was reported: {} of {} trades settled", r.settled_trades, r.trades_count),
    }
}
