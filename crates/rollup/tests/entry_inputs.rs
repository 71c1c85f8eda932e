//! A leaf's inputs challenged per entry (issue 11, attack r5/r6 "forged
//! leaf input"): `dispute_entry` re-executes the entry with the seller's
//! meter read from the primary chain's registry, so a leaf whose inputs
//! name another meter is disproved by the one entry, without the
//! whole-batch dispute.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::exec::{execute_leaves, OffChain};
use gridledger_rollup::primary::{DisputeEntry, SubmitTcrs};
use gridledger_rollup::state::{fill_post_roots, post_state};
use gridledger_rollup::types::{entry_hash, tcr_proof, IorTx, MeterRecord, Outcome, SettlementTx, StSettlement};

/// A seller colluding with the batch's executor sends an ST (the buyer
/// signed `O_b = 0`: nothing was delivered) whose readings are signed by
/// a key that is not its certified meter. The executor posts leaf 0 with
/// inputs naming that key as the seller's meter, so the verdict
/// `SellerDelivered` is exactly what re-execution on the posted inputs
/// gives. Expected: the buyer's `dispute_entry` of that leaf, with the
/// posted inputs, overturns the batch and the executor loses its deposit.
/// Before: refused ("the posted TCR is correct"); only the whole-batch
/// dispute, whose gas grows with the batch, showed the wrong input.
#[test]
fn a_leaf_naming_another_meter_is_disproved_by_its_entry_alone() {
    let mut e = funded();
    let p = e.d.cfg.params.clone();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    let fake = KeyPair::from_seed("not the certified meter");
    let forged_st = SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + MIN,
        buyer_sig: None,
        ob: false,
        dt_step_s: p.meter_step_s,
        ps: vec![1000; 6],
        meter_sig: None,
    }
    .sign_readings(&fake)
    .sign_as_buyer(&b);
    let r = e.d.submit_block(&[(s.clone(), IorTx::St(forged_st))]).unwrap();
    assert_eq!(r[0].status, TxStatus::Success);
    let batch = (1..).take_while(|i| e.d.batch_header(*i).is_ok()).last().unwrap();
    let input = e.d.batch_input(batch).unwrap();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    assert_eq!(leaves[0].tcr.outcome, Outcome::StSettled(StSettlement::SellerShortfall), "the honest verdict");
    let mut pre = leaves[0].pre.clone();
    pre.meters.insert(s.address(), MeterRecord { key: fake.address(), step_s: p.meter_step_s });
    let forged = execute_leaves(&mut OffChain, &p, &pre, &input.entries[..1]).unwrap().remove(0);
    assert_eq!(forged.tcr.outcome, Outcome::StSettled(StSettlement::SellerDelivered));
    leaves[0] = forged;
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let tcrs: Vec<_> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (_, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let sub = SubmitTcrs {
        batch,
        entry_hashes: hashes.clone(),
        post_root: leaves.last().unwrap().post_root,
        leaves: posted.clone(),
        burned,
    };
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let r = e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    // The buyer (its meter checks every TCR naming it) disputes leaf 0
    // with the posted inputs and the leaf's witness.
    let proof = tcr_proof(&p.domain, batch, &hashes, &posted, 0).unwrap();
    let a = args(&DisputeEntry {
        batch,
        entry: input.entries[0].clone(),
        pre: leaves[0].pre.clone(),
        leaf: posted[0].clone(),
        proof,
    });
    let r = e.d.primary_call(&b, "dispute_entry", a, e.d.cfg.challenge_bond).unwrap();
    assert_eq!(r.status, TxStatus::Success, "the forged input is disproved per entry: {:?}", r.status);
    assert!(e.d.batch_header(batch).unwrap().overturned);
    assert!(!node_active(&e, &exec.address()), "the executor's deposit is forfeited");
    // The chain settles the batch itself: the buyer is refunded.
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::SellerShortfall)]);
}
