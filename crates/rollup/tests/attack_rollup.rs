//! Attacks on the issue-11 fixes. Each test asserts the secure behaviour and
//! fails on the code it was written against.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy};
use gridledger_ledger::{ChainClient, TxStatus};
use gridledger_rollup::driver::Mode;
use gridledger_rollup::exec::{execute_and_apply, execute_batch, OffChain, PreState};
use gridledger_rollup::primary::{assign, BatchState};
use gridledger_rollup::types::{
    coins, AgreementTerms, AgreementTx, AtRejection, Entry, IorTx, Outcome, Participant, StRejection, Tcr,
};
use gridledger_rollup::{args, IOR_PRIMARY_ID};

/// High: an executor that records only the AT half of a mixed batch's TCRs
/// freezes all settlement. `posted_by` is set, so no stand-in may record
/// the ST half ("another executor recorded this batch's TCRs"); `finalize`
/// and `dispute` need complete TCRs; settlement is serial, so no later
/// batch ever settles and every trader in a pending batch is locked out of
/// `withdraw` for good. The executor loses nothing (its deposit is not
/// forfeited; it only cannot deregister).
#[test]
fn attack_half_posted_tcrs_freeze_settlement_forever() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    // One AT and one (unmatched) ST in the same block: a mixed batch.
    // Sent before its period ends, it counts no claim slot, so `SC_DS_ST`
    // records it without any AT naming its agreement.
    let junk_st = IorTx::St(st(&terms(&s, &b, Amount(1), 1, 9 * HOUR), 0, true, None));
    e.d.submit_block(&[(b.clone(), at(&t, &s)), (b.clone(), junk_st)]).unwrap();
    let (tcrs, exec) = honest_tcrs(&mut e, 0);
    let (ats, sts): (Vec<Tcr>, Vec<Tcr>) = tcrs.into_iter().partition(|t| t.outcome.is_at());
    assert_eq!((ats.len(), sts.len()), (1, 1));
    // One TCR root covers the whole batch: no half can be posted.
    let r = record_tcrs(&mut e, &exec, 0, ats);
    assert!(reverted(&r).contains("do not cover"), "{:?}", r.status);
    assert_eq!(e.d.primary_call(&b, "close", vec![], Amount::ZERO).unwrap().status, TxStatus::Success);
    // The executor goes silent. Several windows later:
    let h = e.d.batch_input(0).unwrap().header;
    e.d.set_time(h.first_recorded_at + 10 * e.d.cfg.window_ms());
    let other = e.d.executors.iter().find(|(k, _)| k.address() != exec.address()).unwrap().0.clone();
    let stand_in = record_tcrs(&mut e, &other, 0, sts);
    let fin = e.d.primary_call(&b, "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    let bond = e.d.cfg.challenge_bond;
    let disp = e.d.primary_call(&b, "dispute", e.d.dispute_args(0, vec![]).unwrap(), bond).unwrap();
    let settled = e.d.batch_input(0).unwrap().header.state != BatchState::Open;
    assert!(
        settled,
        "a half-posted batch must not freeze settlement: stand-in sc_cr_st {:?}, finalize {:?}, dispute {:?}",
        stand_in.status, fin.status, disp.status
    );
}

/// Medium: anyone can lock any trader's IOR account. `fund`/`withdraw` wait
/// for every unsettled entry that merely *names* the caller (sender, buyer
/// or seller), even an entry the chain will refuse because the caller never
/// sent or signed it. One junk entry per block keeps the victim's counter
/// above zero forever, at the cost of gas and the sybil's own reputation.
#[test]
fn attack_junk_entry_naming_a_victim_blocks_its_withdraw() {
    let mut e = funded();
    settle_funding(&mut e);
    let (victim, attacker) = (trader(0), trader(3));
    let forged = AgreementTerms {
        ep: Amount(1),
        em: Energy(1),
        buyer: victim.address(),
        seller: attacker.address(),
        dt_start: 9 * HOUR,
        dt_end: 10 * HOUR,
        dl: 10 * HOUR,
    };
    // The attacker (not the buyer) asks to expire a non-existent agreement
    // of the victim: certain to be refused (NotBuyer).
    let r = e.d.submit(&attacker, &IorTx::Expire(forged.clone())).unwrap();
    assert_eq!(r.status, TxStatus::Success, "recorded without any check of its sender");
    // An unsigned AT naming the victim as seller works as well.
    let unsigned = AgreementTx {
        terms: AgreementTerms { buyer: attacker.address(), seller: victim.address(), ..forged },
        seller_sig: None,
    };
    e.d.submit(&attacker, &IorTx::At(unsigned)).unwrap();
    let w = e.d.withdraw(&victim, coins(1)).unwrap();
    assert_eq!(w.status, TxStatus::Success, "an entry the victim neither sent nor signed must not lock its account");
}

/// Medium: the lot that names a batch's executor and validator is seeded
/// by the *parent* hash of the block that will hold the batch, which every
/// trader knows before submitting. A colluding trader waits (filler blocks)
/// until the lot names its accomplice validator and only then submits: it
/// picks its validator every time. The draw must use randomness that is
/// unknown when the entries are submitted (e.g. the hash of the block that
/// closes the batch, or a VRF/commit-reveal).
#[test]
fn attack_the_validator_lot_is_known_before_submission() {
    let mut e = funded();
    let nodes = e.d.primary.chain.view(IOR_PRIMARY_ID, "nodes", &[]).unwrap();
    let list = |k: &str| -> Vec<Address> { serde_json::from_value(nodes[k].clone()).unwrap() };
    let (execs, vals) = (list("executors"), list("validators"));
    let accomplice = vals[1];
    let (b, s) = (trader(0), trader(1));
    let mut hits = 0;
    let tries = 5u64;
    for round in 0..tries {
        // Wait for a parent hash whose lot names the accomplice.
        loop {
            let next = e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap()["next_batch"].as_u64().unwrap();
            let parent = e.d.primary.chain.tip().hash();
            if assign(&parent, next, &execs, &vals).map(|(_, v)| v) == Some(accomplice) {
                break;
            }
            e.d.fund(&trader(2), Amount(1)).unwrap(); // a filler block
        }
        let start = 8 * HOUR + round * HOUR;
        e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 10, start), &s)).unwrap();
        let next = e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap()["next_batch"].as_u64().unwrap();
        if e.d.batch_input(next - 1).unwrap().header.validator == accomplice {
            hits += 1;
        }
        e.d.process(&mut rng(round)).unwrap();
    }
    assert!(hits < tries, "the attacker chose its validator for {hits} of {tries} batches");
}

/// Medium (debug builds: panic; release: wraps silently): an agreement with
/// `DL` near `u64::MAX` was accepted, and its expiry request overflowed
/// `from + 1` in `execute_expire`. Executors, validators, `sc_exe` and the
/// primary chain's re-execution all run this code: in a debug build every
/// one of them panicked on the batch, so it never got TCRs and serial
/// settlement halted for everyone. Now the AT is refused with a typed
/// rejection (`DL − DT_end` is bounded by `max_dl_ms`), it changes no state,
/// and an expiry naming such terms still does not panic.
#[test]
fn attack_expire_with_deadline_at_u64_max_must_not_panic() {
    let p = gridledger_rollup::types::IorParams::case_study();
    let (b, s) = (trader(0), trader(1));
    let t = AgreementTerms {
        ep: Amount(1_000),
        em: Energy(1),
        buyer: b.address(),
        seller: s.address(),
        dt_start: 8 * HOUR,
        dt_end: 9 * HOUR,
        dl: u64::MAX,
    };
    let mut pre = PreState::default();
    for k in [&b, &s] {
        pre.participants.insert(k.address(), Participant { balance: coins(10), reputation: p.rs });
    }
    let at = Entry { sender: b.address(), recorded_at: 7 * HOUR, tx: IorTx::At(AgreementTx::signed(t.clone(), &s)) };
    let (tcrs, post) = execute_and_apply(&mut OffChain, &p, &pre, &[at]).unwrap();
    assert_eq!(
        tcrs[0].outcome,
        Outcome::AtRejected(AtRejection::DeadlineTooLate { dl: u64::MAX, dt_end: 9 * HOUR, max_ms: p.max_dl_ms }),
        "DL = u64::MAX is refused, typed"
    );
    assert!(post.agreements.is_empty(), "a refused AT opens no agreement");
    assert_eq!(post.participants[&b.address()].balance, coins(10), "and locks nothing of the buyer");
    // The longest allowed deadline is still accepted.
    let ok = AgreementTerms { dl: 9 * HOUR + p.max_dl_ms, ..t.clone() };
    let at_ok = Entry { sender: b.address(), recorded_at: 7 * HOUR, tx: IorTx::At(AgreementTx::signed(ok, &s)) };
    let (tcrs_ok, _) = execute_and_apply(&mut OffChain, &p, &pre, &[at_ok]).unwrap();
    assert_eq!(tcrs_ok[0].outcome, Outcome::AtAccepted, "DL = DT_end + max_dl_ms is accepted");
    let expire = Entry { sender: b.address(), recorded_at: 10 * HOUR, tx: IorTx::Expire(t) };
    let got = std::panic::catch_unwind(|| execute_batch(&mut OffChain, &p, &post, &[expire]));
    let got = got.expect("execute_batch must not panic on a recorded entry");
    // No agreement was opened, so the expiry is refused, typed.
    assert!(matches!(got.unwrap()[0].outcome, Outcome::StRejected(StRejection::NoAgreement(_))), "refused, typed");
}

/// Medium: the assigned validator is forfeited by *any* successful dispute
/// from someone else, even one sent in the very block after the TCRs, before
/// the validator could possibly have acted. A colluding executor posts a
/// wrong verdict and immediately challenges it from a sybil with a bond:
/// the honest validator loses its deposit and is struck from the list
/// (one fewer honest validator for the next theft); the sybil collects
/// ë × (y_exec + y_val), here exactly the executor's loss (ë = 0.5), so
/// the pair breaks even and with ë > 0.5 profits.
#[test]
fn attack_self_challenge_burns_an_honest_validator_that_had_no_time_to_act() {
    let mut e = funded();
    let (b, s, sybil) = (trader(0), trader(1), trader(3));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (honest, exec) = honest_tcrs(&mut e, 0);
    // A wrong verdict whose effects have the right shape: "not signed by the seller".
    let p = e.d.cfg.params.clone();
    let wrong = vec![Tcr {
        index: 0,
        outcome: Outcome::AtRejected(AtRejection::NotSignedBySeller),
        effects: vec![gridledger_rollup::types::Effect::Reputation { who: b.address(), by: p.alpha }],
    }];
    assert_eq!(record_tcrs(&mut e, &exec, 0, wrong).status, TxStatus::Success);
    // The validator is drawn when the batch closes (the TCR call closed it).
    let validator = e.d.batch_input(0).unwrap().header.validator;
    // Next block, same second: the executor's sybil challenges.
    let bond = e.d.cfg.challenge_bond;
    let r = e.d.primary_call(&sybil, "dispute", e.d.dispute_args(0, honest).unwrap(), bond).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert!(!node_active(&e, &exec.address()));
    assert!(
        node_active(&e, &validator),
        "the assigned validator had no chance to dispute yet; it must not be forfeited"
    );
}

/// Medium: an `Expire` ignores the buyer's own recorded `O_b = 1`. A buyer
/// that confirmed delivery on chain, and then waits out a seller that is
/// late with its ST (offline, or kept out of full batches), expires the
/// agreement: it gets the price back plus the seller's penalty, i.e. the
/// energy it acknowledged for free and 0.5 coin on top.
#[test]
fn attack_buyer_confirms_delivery_then_expires_for_free_energy() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&b, &IorTx::Opinion(gridledger_rollup::types::BuyerOpinion { terms: t.clone(), ob: true })).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::OpinionRecorded]);
    e.d.set_time(t.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit(&b, &IorTx::Expire(t.clone())).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let buyer = e.d.participant(&b.address()).unwrap().balance;
    assert!(
        buyer < coins(10),
        "the buyer confirmed delivery (O_b = 1) yet ends with {buyer} > its 10 coin start: {:?}",
        out[0].outcomes
    );
}

/// Low/Medium (thesis-faithful: AT Step 6 penalises the sender): a seller
/// signs offers, then withdraws its IOR balance; every buyer that submits
/// one loses α for the seller's missing deposit. Two such offers bar a
/// buyer at the case-study parameters (rs 30, α 10, β 10).
#[test]
fn attack_seller_bars_a_buyer_by_withdrawing_before_its_at() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let offers: Vec<IorTx> =
        (0..2).map(|i| at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR + i * HOUR), &s)).collect();
    settle_funding(&mut e);
    let r = e.d.withdraw(&s, coins(10)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    for o in &offers {
        e.d.submit(&b, o).unwrap();
        let out = e.d.process(&mut rng(0)).unwrap();
        assert!(matches!(out[0].outcomes[0], Outcome::AtRejected(AtRejection::InsufficientBalance { .. })));
    }
    let rep = e.d.participant(&b.address()).unwrap().reputation;
    assert_eq!(rep, 30, "the buyer is penalised for its seller's missing deposit (now {rep}, barred at 10)");
}

/// Medium: no signature in IOR binds a chain or contract. `SIG_s` over the
/// AT (and `SIG_b`, meter readings) is a tagged hash of the terms only, so a
/// seller-signed AT for one community's primary chain is accepted on any
/// other IOR deployment where the seller holds coin (the ledger's own
/// transaction signatures carry the chain id; these do not).
#[test]
fn attack_a_seller_signed_at_replays_on_another_chain() {
    use gridledger_rollup::driver::{dev_chain, DualChain};
    let mut home = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let signed = at(&t, &s);
    home.d.submit(&b, &signed).unwrap();
    assert_eq!(home.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted]);
    // A second community: a primary chain with another chain id.
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = config(Mode::Ior, 4, 2, 3);
    let validator = gridledger_ledger::devnet::dev_validator(0);
    let genesis = gridledger_ledger::devnet::dev_genesis(7, 9, WALLET, std::slice::from_ref(&validator));
    let lcfg = gridledger_ledger::ChainConfig { max_tx_bytes: 4 << 20, ..Default::default() };
    let chain =
        gridledger_ledger::Chain::open(da.path(), genesis, gridledger_rollup::primary_registry(), lcfg).unwrap();
    let now = chain.tip().timestamp + 1_000;
    let primary = gridledger_ledger::devnet::DevChain { chain, validator, now };
    let secondary = dev_chain(db.path(), 9, WALLET, gridledger_rollup::secondary_registry()).unwrap();
    let mut other = DualChain::on_chains(primary, secondary, cfg).unwrap();
    assert_ne!(other.primary.chain.genesis().chain_id, home.d.primary.chain.genesis().chain_id);
    for i in 0..2 {
        other.fund(&trader(i), coins(10)).unwrap();
    }
    other.set_time(7 * HOUR);
    other.submit(&b, &signed).unwrap();
    let out = other.process(&mut rng(0)).unwrap();
    assert_eq!(
        out[0].outcomes,
        vec![Outcome::AtRejected(AtRejection::NotSignedBySeller)],
        "a signature made for another chain must not count"
    );
}

/// Low: metered input is not range-checked. Three meters at the most
/// negative hourly value parse fine, then `slot_bound`'s `u64` sum of the
/// deficits overflows: `gridledger ior day --meter-csv` panics (debug) or
/// reports a wrapped bound (release) instead of a typed error.
#[test]
fn attack_absurd_meter_csv_values_must_be_a_typed_error() {
    use gridledger_rollup::demo::{parse_meter_csv, run_day, DayConfig};
    let mut csv = String::from("time,a,b,c\n");
    for h in 0..24 {
        csv.push_str(&format!("{h},{},{},{}\n", i64::MIN, i64::MIN, i64::MIN));
    }
    let metered = parse_meter_csv(&csv);
    let Ok(metered) = metered else { return }; // refused at parsing: secure
    let cfg = DayConfig { prosumers: 0, consumers: 3, metered: Some(metered), ..DayConfig::default() };
    let got = std::panic::catch_unwind(|| run_day(cfg).map(|r| r.bound_wh));
    assert!(got.is_ok(), "run_day panicked on metered input instead of returning a typed error");
}

/// Medium: the stand-in clock starts at the batch's first entry, not when
/// the batch closed. In a quiet period (no block for a window after the
/// entry, normal on a chain that builds blocks on demand) the batch closes
/// already "withheld": any executor, not the one drawn by lot, may record
/// its TCRs in the very first block after it, racing the assigned executor
/// that had no chance to act. The lot then assigns nothing.
#[test]
fn attack_any_executor_grabs_a_batch_that_closes_after_a_quiet_window() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let h = e.d.batch_input(0).unwrap().header;
    // Nothing happens for a window; the next block closes the batch.
    e.d.set_time(h.first_recorded_at + e.d.cfg.window_ms() + 2_000);
    let input = e.d.batch_input(0).unwrap();
    let tcrs = execute_batch(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let grabber = e.d.executors.iter().find(|(k, _)| k.address() != h.executor).unwrap().0.clone();
    let r = record_tcrs(&mut e, &grabber, 0, tcrs);
    assert_ne!(
        r.status,
        TxStatus::Success,
        "a non-assigned executor recorded TCRs in the first block after the batch closed"
    );
}

/// High: one slot's meter readings are counted once per agreement. Now
/// that a seller sells to several buyers in a slot (the multi-seller
/// market), arbitration checks each ST alone against the seller's whole
/// metered export: a seller that contracts 500 Wh to each of two buyers
/// and exports 500 Wh in total shows the same (genuine, meter-signed)
/// readings in both STs and wins both disputes. The buyers pay for
/// 1,000 Wh and the second buyer is penalised for a truthful O_b = 0.
#[test]
fn attack_one_slots_readings_win_every_dispute_of_that_slot() {
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 500, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b1.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    e.d.set_time(t1.dt_end + MIN);
    // 1,000 W for 30 minutes: 500 Wh exported in the slot, all of it.
    let st1 = st(&t1, 1000, false, Some(&b1));
    let st2 = st(&t2, 1000, false, Some(&b2));
    assert_eq!(st1.metered_ws(), 500 * 3600);
    e.d.submit_block(&[(s.clone(), IorTx::St(st1)), (s.clone(), IorTx::St(st2))]).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let won = out[0]
        .outcomes
        .iter()
        .filter(|o| **o == Outcome::StSettled(gridledger_rollup::types::StSettlement::SellerDelivered))
        .count();
    assert!(won <= 1, "500 Wh metered won {won} disputes over 1,000 Wh contracted: {:?}", out[0].outcomes);
}

/// Low: `sc_exe` on the secondary chain is first come, first served and
/// open to anyone, with caller-supplied entries and pre-state. A squatter
/// records empty "executions" for the next batch ids; the real executor's
/// `sc_exe` then reverts ("already executed") and the secondary chain's
/// record of who executed what names the squatter with no TCRs.
#[test]
fn attack_anyone_squats_secondary_sc_exe_records() {
    use gridledger_rollup::secondary::ExecRequest;
    let mut e = funded();
    let squatter = trader(3);
    let n = e.d.secondary.next_nonce(&squatter.address());
    let req = ExecRequest { batch: 0, entries: vec![], prestate: PreState::default() };
    let tx = gridledger_ledger::devnet::call(
        &squatter,
        e.d.secondary.chain_id(),
        n,
        gridledger_rollup::IOR_SECONDARY_ID,
        "sc_exe",
        args(&req),
        Amount::ZERO,
        10_000_000,
    );
    let r = e.d.secondary.exec(tx).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let rec =
        e.d.secondary
            .chain
            .view(gridledger_rollup::IOR_SECONDARY_ID, "executed", &borsh::to_vec(&0u64).unwrap())
            .unwrap();
    assert_ne!(
        rec[0],
        serde_json::json!(squatter.address()),
        "the secondary chain records the squatter as batch 0's executor: {rec}"
    );
}

/// Low: the loser of a race between a late ST and the buyer's expiry is
/// penalised a second time. Both are recorded in one block after
/// `DL + expiry`; the ST settles (`LateBuyerSignature`, buyer −α) and the
/// expiry then finds no agreement (`NoAgreement`, buyer −α again): one
/// missed signature bars the buyer at the case-study parameters. Since
/// attack r5 an ST recorded after `DL + expiry` is refused penalty-free
/// (`AfterExpiry`) and the expiry penalises the silent seller: the buyer
/// loses nothing.
#[test]
fn attack_racing_late_st_and_expiry_penalise_the_buyer_twice() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit_block(&[(s.clone(), IorTx::St(st(&t, 1000, true, None))), (b.clone(), IorTx::Expire(t.clone()))])
        .unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let rep = e.d.participant(&b.address()).unwrap().reputation;
    let from = t.dl + e.d.cfg.params.expiry_ms;
    assert_eq!(
        out[0].outcomes,
        vec![Outcome::StRejected(StRejection::AfterExpiry { from, now: from + MIN }), Outcome::Expired]
    );
    assert_eq!(rep, e.d.cfg.params.rs, "the buyer, whose seller was silent until after expiry, keeps its score");
}

/// Medium: a trader's reputation falls only when its batch settles, so one
/// well-reputed account could fill a whole 300-entry batch with junk in one
/// block (each junk entry costs every executor and validator a step). Now
/// one sender records at most `max_entries_per_sender` entries per block;
/// the next is refused with a revert naming the cap and recorded nowhere,
/// while other senders still record in the same block, and the sybil may
/// record again in the next block.
#[test]
fn attack_one_sender_cannot_fill_a_batch_with_junk() {
    let mut e = funded();
    let cap = e.d.cfg.params.max_entries_per_sender as usize;
    let (sybil, b, s) = (trader(3), trader(0), trader(1));
    // Junk: STs for agreements that do not exist, each a distinct slot.
    let junk: Vec<(KeyPair, IorTx)> = (0..=cap as u64)
        .map(|i| {
            let t = terms(&b, &sybil, Amount(1), 1, 8 * HOUR + i * HOUR);
            (sybil.clone(), IorTx::St(st(&t, 1_000, true, None)))
        })
        .collect();
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let mut block = junk.clone();
    block.push((b.clone(), at(&t, &s)));
    let next0 = e.d.primary.chain.view(IOR_PRIMARY_ID, "progress", &[]).unwrap()["next_batch"].as_u64().unwrap();
    let rs = e.d.submit_block(&block).unwrap();
    let ok = rs.iter().filter(|r| r.status == TxStatus::Success).count();
    assert_eq!(ok, cap + 1, "the cap's worth of junk and the honest AT are recorded");
    match &rs[cap].status {
        TxStatus::Reverted(why) => assert!(why.contains("per sender per block"), "typed refusal: {why}"),
        other => panic!("entry {} of one sender in one block must be refused, got {other:?}", cap + 1),
    }
    assert_eq!(rs[cap + 1].status, TxStatus::Success, "another sender still records in the same block");
    let h = e.d.batch_input(next0).unwrap().header;
    assert_eq!(h.len(), cap + 1, "the refused entry is in no batch");
    // The next block is a new batch: the sybil may record again.
    let again = e.d.submit(&sybil, &junk[cap].1).unwrap();
    assert_eq!(again.status, TxStatus::Success, "the cap is per block");
}
