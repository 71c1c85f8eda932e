//! Every invalid AT/ST path of thesis §3.3.5, each refused with a typed
//! reason that changes no balance, deposit or agreement (only the sender's
//! reputation, by α, as Step 6 / Step 5 prescribe), plus the contract-level
//! refusals, which revert and change nothing but nonce and fee.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy};
use gridledger_ledger::{contract_address, StateRead, TxStatus};
use gridledger_rollup::driver::Mode;
use gridledger_rollup::primary::{Controversial, RegisterNode, WithdrawArgs};
use gridledger_rollup::types::{
    coins, AgreementTerms, AgreementTx, AtRejection, IorTx, NodeRole, Outcome, Participant, StRejection, StSettlement,
};
use gridledger_rollup::{args, IOR_PRIMARY_ID};

fn snapshot(e: &Env) -> Vec<Participant> {
    (0..4).map(|i| e.d.participant(&trader(i).address()).unwrap()).collect()
}

/// Submits `tx` from `key`, settles it, and checks it was refused with
/// `want`, leaving balances untouched and only `penalised` (if any) α lower.
fn refused(e: &mut Env, key: &KeyPair, tx: IorTx, want: Outcome, penalised: Option<Address>) {
    let before = snapshot(e);
    let total0 = primary_total(&e.d, 9);
    let r = e.d.submit(key, &tx).unwrap();
    assert_eq!(r.status, TxStatus::Success, "SC_DS records every well-formed transaction");
    let s = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(s[0].outcomes, vec![want]);
    let after = snapshot(e);
    for i in 0..4 {
        assert_eq!(after[i].balance, before[i].balance, "trader {i} balance");
        let a = trader(i).address();
        let drop = if Some(a) == penalised { 10 } else { 0 };
        assert_eq!(after[i].reputation, before[i].reputation - drop, "trader {i} reputation");
    }
    assert_eq!(primary_total(&e.d, 9), total0);
}

fn funded() -> Env {
    // rs = 100 so the α decrements of one test never reach β.
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
fn invalid_agreement_transactions_are_refused() {
    let mut e = funded();
    let (b, s, poor) = (trader(0), trader(1), trader(3));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    // Step 1: the seller submits the buyer's AT.
    refused(
        &mut e,
        &s,
        at(&t, &s),
        Outcome::AtRejected(AtRejection::WrongSender { sender: s.address(), buyer: b.address() }),
        Some(s.address()),
    );
    // Step 2: EP/EM not signed by the seller, or signed by someone else.
    refused(
        &mut e,
        &b,
        IorTx::At(AgreementTx { terms: t.clone(), seller_sig: None }),
        Outcome::AtRejected(AtRejection::NotSignedBySeller),
        Some(b.address()),
    );
    refused(&mut e, &b, at(&t, &trader(2)), Outcome::AtRejected(AtRejection::NotSignedBySeller), Some(b.address()));
    // Step 3: the buyer cannot cover D_s + EP × EM.
    let t_poor = terms(&poor, &s, Amount(200_000), 500, 8 * HOUR);
    refused(
        &mut e,
        &poor,
        at(&t_poor, &s),
        Outcome::AtRejected(AtRejection::InsufficientBalance {
            who: poor.address(),
            needed: Amount(1_100_000),
            available: Amount::ZERO,
        }),
        Some(poor.address()),
    );
    // Step 3: the seller cannot cover D_s and the undo reserve F_p × D_s.
    let t_poor_seller = terms(&b, &poor, Amount(200_000), 500, 8 * HOUR);
    refused(
        &mut e,
        &b,
        at(&t_poor_seller, &poor),
        Outcome::AtRejected(AtRejection::InsufficientBalance {
            who: poor.address(),
            needed: Amount(1_500_000),
            available: Amount::ZERO,
        }),
        // The party at fault pays: the seller without its deposit, not the buyer.
        Some(poor.address()),
    );
    // Step 4: one open agreement per (ADDR_b, ADDR_s, DT). The same AT
    // recorded twice in its batch: the second finds the first's agreement
    // open and penalises its sender.
    let before = snapshot(&e);
    let r = e.d.submit_block(&[(b.clone(), at(&t, &s)), (b.clone(), at(&t, &s))]).unwrap();
    assert!(r.iter().all(|r| r.status == TxStatus::Success), "{r:?}");
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out, vec![Outcome::AtAccepted, Outcome::AtRejected(AtRejection::AgreementOpen(b.address()))]);
    assert_eq!(snapshot(&e)[0].reputation, before[0].reputation - 10, "the buyer pays for its replay");
    assert_eq!(snapshot(&e)[1].reputation, before[1].reputation, "not the seller");
    // Other terms for the open key, or the same AT in a later batch, are
    // refused at recording (attack r9 [2]): they make no one pending.
    let t2 = terms(&b, &s, Amount(300_000), 400, 8 * HOUR);
    for tx in [at(&t2, &s), at(&t, &s)] {
        let r = e.d.submit(&b, &tx).unwrap();
        assert!(matches!(&r.status, TxStatus::Reverted(w) if w.contains("recorded")), "{:?}", r.status);
    }
    // Insufficient reputation (Step 3) is exercised by the case study.
}

#[test]
fn invalid_settlement_transactions_are_refused() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    // An AT of a buyer without IOR funds: recorded, refused by execution.
    let poor = trader(3);
    let t_none = terms(&poor, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&t, &s)), (poor.clone(), at(&t_none, &s))]).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end + MIN);
    // Only the seller submits an ST.
    refused(
        &mut e,
        &b,
        IorTx::St(st(&t, 1000, true, Some(&b))),
        Outcome::StRejected(StRejection::WrongSender { sender: b.address(), seller: s.address() }),
        Some(b.address()),
    );
    // Step 1: EM differs from the stored AT.
    let mut other = t.clone();
    other.em = Energy(400);
    refused(
        &mut e,
        &s,
        IorTx::St(st(&other, 1000, true, Some(&b))),
        Outcome::StRejected(StRejection::FieldsMismatch),
        Some(s.address()),
    );
    // Step 1: no AT stored under this ADDR_b (its AT was refused).
    refused(
        &mut e,
        &s,
        IorTx::St(st(&t_none, 1000, true, Some(&poor))),
        Outcome::StRejected(StRejection::NoAgreement(poor.address())),
        Some(s.address()),
    );
    // No AT of these parties was ever recorded: `SC_DS_ST` refuses the
    // ST before recording it (it would count the period's claim slots);
    // the seller pays the fee, no IOR state changes.
    let never = terms(&trader(2), &s, Amount(200_000), 500, 8 * HOUR);
    let before = snapshot(&e);
    let r = e.d.submit(&s, &IorTx::St(st(&never, 1000, true, Some(&trader(2))))).unwrap();
    assert!(reverted(&r).contains("no agreement to settle or expire"), "{:?}", r.status);
    assert!(e.d.process(&mut rng(0)).unwrap().is_empty(), "nothing recorded");
    assert_eq!(snapshot(&e), before);
    // P_s must hold DT / Δt readings.
    let mut short = st(&t, 1000, true, Some(&b));
    short.ps.pop();
    refused(
        &mut e,
        &s,
        IorTx::St(short),
        Outcome::StRejected(StRejection::ReadingsMismatch { expected: 6, got: 5, step_s: 300 }),
        Some(s.address()),
    );
    // No buyer signature before DL: deferred, nobody penalised.
    let now = e.d.now();
    let r = refused_at(&mut e, &s, IorTx::St(st(&t, 1000, true, None)));
    assert!(
        matches!(r, Outcome::StRejected(StRejection::AwaitingBuyerSignature { dl, now: n }) if dl == t.dl && n >= now)
    );
    // A signature by someone else is no signature.
    let forged = st(&t, 1000, true, Some(&trader(2)));
    assert!(matches!(
        refused_at(&mut e, &s, IorTx::St(forged)),
        Outcome::StRejected(StRejection::AwaitingBuyerSignature { .. })
    ));
}

fn refused_at(e: &mut Env, key: &KeyPair, tx: IorTx) -> Outcome {
    let before = snapshot(e);
    e.d.submit(key, &tx).unwrap();
    let s = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(snapshot(e), before, "nothing changes");
    s[0].outcomes[0].clone()
}

/// ST Step 2: no buyer signature once DL has passed. Not a refusal: the
/// buyer is penalised F_p × D_s to the seller, the rest burned, and the
/// ST is executed.
#[test]
fn missing_buyer_signature_after_deadline_penalises_the_buyer() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let total0 = primary_total(&e.d, 9);
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dl + MIN);
    e.d.submit(&s, &IorTx::St(st(&t, 1000, true, None))).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StSettled(StSettlement::LateBuyerSignature)]);
    // Buyer: −(EP×EM + D_s) = −1.1; seller: +EP×EM + F_p×D_s = +0.6; burned 0.5.
    assert_eq!(e.d.participant(&b.address()).unwrap(), Participant { balance: Amount(8_900_000), reputation: 90 });
    assert_eq!(e.d.participant(&s.address()).unwrap(), Participant { balance: Amount(10_600_000), reputation: 100 });
    assert_eq!(black_hole(&e.d), Amount(500_000));
    assert_eq!(primary_total(&e.d, 9), total0);
    assert_eq!(internal_total(&e.d, 9), contract_balance(&e.d).0);
}

/// Runs a primary call expected to revert with `reason` and checks that only
/// the sender's nonce and fee changed.
fn reverts(e: &mut Env, key: &KeyPair, method: &str, a: Vec<u8>, value: Amount, reason: &str) {
    let before = e.d.primary.chain.state().account(&key.address());
    let held = e.d.primary.chain.state().account(&contract_address(IOR_PRIMARY_ID)).balance;
    let r = e.d.primary_call(key, method, a, value).unwrap();
    match &r.status {
        TxStatus::Reverted(why) => assert!(why.contains(reason), "reason {why:?} lacks {reason:?}"),
        s => panic!("expected revert, got {s:?}"),
    }
    assert!(r.events.is_empty());
    let after = e.d.primary.chain.state().account(&key.address());
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(after.balance.0, before.balance.0 - r.fee.0, "only the fee is charged");
    assert_eq!(e.d.primary.chain.state().account(&contract_address(IOR_PRIMARY_ID)).balance, held);
}

#[test]
fn contract_level_refusals_change_nothing() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let outsider = trader(3);
    reverts(&mut e, &b, "sc_ds_at", vec![1, 2, 3], Amount::ZERO, "bad arguments");
    reverts(&mut e, &b, "sc_ds_at", vec![], Amount(5), "takes no native value");
    let domain = e.d.cfg.params.domain;
    reverts(
        &mut e,
        &outsider,
        "register_node",
        args(&RegisterNode {
            role: NodeRole::Validator,
            cert: outsider.sign(&gridledger_rollup::types::node_cert_digest(
                &domain,
                &outsider.address(),
                NodeRole::Validator,
            )),
        }),
        coins(100),
        "certificate not signed by the authority",
    );
    let cert = e.d.authority.sign(&gridledger_rollup::types::node_cert_digest(
        &e.d.cfg.params.domain,
        &outsider.address(),
        NodeRole::Validator,
    ));
    reverts(
        &mut e,
        &outsider,
        "register_node",
        args(&RegisterNode { role: NodeRole::Validator, cert }),
        coins(1),
        "below the required",
    );
    // A withdrawal must prove a record under the settled root: an account
    // with none (or a made-up record) is refused.
    let made_up = WithdrawArgs {
        amount: coins(1),
        record: Participant { balance: coins(1), reputation: 30 },
        proof: Default::default(),
    };
    reverts(&mut e, &outsider, "withdraw", args(&made_up), Amount::ZERO, "is not proved against the latest settled");
    reverts(&mut e, &b, "fund", vec![], Amount::ZERO, "fund needs a positive value");
    // A recorded, unsettled batch.
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    reverts(&mut e, &s, "withdraw", args(&made_up), Amount::ZERO, "a pending batch reads this account");
    // Only the batch's executor records TCRs.
    let input = e.d.batch_input(0).unwrap();
    let tcrs = gridledger_rollup::exec::execute_batch(
        &mut gridledger_rollup::exec::OffChain,
        &e.d.cfg.params,
        &input.prestate,
        &input.entries,
    )
    .unwrap();
    let es = e.d.entries(0).unwrap();
    let fin = e.d.finalize_args(0).unwrap();
    let all = tcr_args(&e, 0, tcrs.clone(), es.clone());
    let none = tcr_args(&e, 0, vec![], es.clone());
    reverts(&mut e, &outsider, "sc_cr", all.clone(), Amount::ZERO, "only the batch's executor");
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    reverts(&mut e, &exec, "sc_cr", none, Amount::ZERO, "do not cover");
    reverts(&mut e, &exec, "finalize", fin.clone(), Amount::ZERO, "no complete TCRs");
    let r = e.d.primary_call(&exec, "sc_cr", all.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    reverts(&mut e, &exec, "finalize", fin.clone(), Amount::ZERO, "dispute window open");
    reverts(
        &mut e,
        &outsider,
        "dispute",
        args(&Controversial { batch: 0, claimed: tcrs, entries: es, witness: Default::default() }),
        Amount::ZERO,
        "must attach a bond of at least",
    );
    e.d.process(&mut rng(0)).unwrap();
    reverts(&mut e, &exec, "finalize", fin.clone(), Amount::ZERO, "already settled");
}

/// A validator disputing correct TCRs forfeits its own deposit.
#[test]
fn false_dispute_forfeits_the_disputer() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let total0 = primary_total(&e.d, 9);
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(0).unwrap();
    let i = e.d.executors.iter().position(|(k, _)| k.address() == input.header.executor).unwrap();
    let step = e.d.executors[i].1.on_batch(&input);
    let key = e.d.executors[i].0.clone();
    for c in step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary) {
        e.d.primary_call(&key, c.method, c.args, Amount::ZERO).unwrap();
    }
    let liar = e.d.validators[0].0.clone();
    let r = e.d.primary_call(&liar, "dispute", e.d.dispute_args(0, vec![]).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert!(r.events.iter().any(|ev| ev.name == "ior_dispute_rejected"));
    assert_eq!(black_hole(&e.d), coins(100));
    assert_eq!(primary_total(&e.d, 9), total0);
    e.d.process(&mut rng(0)).unwrap();
    let seller_lock = e.d.cfg.params.seller_lock().0;
    assert_eq!(internal_total(&e.d, 9) + 1_100_000 + seller_lock, contract_balance(&e.d).0, "open agreement pool");
}

/// Step 3's validity checks, one row each: refused with the named reason,
/// the sender α lower, no balance changed.
#[test]
fn invalid_terms_are_refused_with_their_reason() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let base = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let rows: Vec<(AgreementTerms, KeyPair, &str)> = vec![
        (AgreementTerms { seller: b.address(), ..base.clone() }, b.clone(), "buyer and seller are the same account"),
        (AgreementTerms { em: Energy(0), ..base.clone() }, s.clone(), "EP and EM must be positive"),
        (AgreementTerms { ep: Amount::ZERO, ..base.clone() }, s.clone(), "EP and EM must be positive"),
        (AgreementTerms { dt_end: base.dt_start, ..base.clone() }, s.clone(), "empty delivery period DT"),
        (AgreementTerms { dl: base.dt_end - 1, ..base.clone() }, s.clone(), "deadline DL precedes the end of DT"),
        (AgreementTerms { ep: Amount(u128::MAX / 2), ..base.clone() }, s.clone(), "D_s + EP × EM overflows"),
    ];
    for (t, signer, why) in rows {
        let tx = at(&t, &signer);
        refused(&mut e, &b, tx, Outcome::AtRejected(AtRejection::InvalidTerms(why.into())), Some(b.address()));
    }
}

/// Set-up refusals: a second `init`, a second registration of a node or a
/// meter, a forged meter certificate and a second recording of TCRs each
/// revert and change nothing.
#[test]
fn duplicate_setup_and_tcr_recording_are_refused() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let admin = e.d.executors[0].0.clone();
    let pc = e.d.primary.chain.view(IOR_PRIMARY_ID, "config", &[]).unwrap();
    assert!(pc["window_ms"].as_u64().is_some());
    let cfg = gridledger_rollup::primary::PrimaryConfig {
        params: e.d.cfg.params.clone(),
        authority: e.d.authority.public(),
        node_deposit: coins(100),
        bonus_permille: 500,
        window_ms: 1,
        challenge_bond: coins(1),
        delegation_fee: Amount(1),
        pipelined: false,
    };
    reverts(&mut e, &admin, "init", args(&cfg), Amount::ZERO, "already initialised");
    let v = e.d.validators[0].0.clone();
    let cert = e.d.authority.sign(&gridledger_rollup::types::node_cert_digest(
        &e.d.cfg.params.domain,
        &v.address(),
        NodeRole::Validator,
    ));
    reverts(
        &mut e,
        &v,
        "register_node",
        args(&RegisterNode { role: NodeRole::Validator, cert }),
        coins(100),
        "node already registered",
    );
    let meter = gridledger_rollup::types::MeterRecord {
        key: gridledger_rollup::driver::meter_key(&b.address()).address(),
        step_s: e.d.cfg.params.meter_step_s,
    };
    let cert =
        e.d.authority.sign(&gridledger_rollup::types::meter_cert_digest(&e.d.cfg.params.domain, &b.address(), &meter));
    let again = gridledger_rollup::primary::RegisterMeter { meter, cert };
    reverts(&mut e, &b, "register_meter", args(&again), Amount::ZERO, "meter already registered");
    // Traders' meters are registered by `open`; a validator's account is not.
    let outsider = e.d.validators[1].0.clone();
    let forged = outsider.sign(&gridledger_rollup::types::meter_cert_digest(
        &e.d.cfg.params.domain,
        &outsider.address(),
        &meter,
    ));
    let bad_outsider = gridledger_rollup::primary::RegisterMeter { meter, cert: forged };
    reverts(&mut e, &outsider, "register_meter", args(&bad_outsider), Amount::ZERO, "not signed by the authority");
    // TCRs recorded twice.
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(0).unwrap();
    let tcrs = gridledger_rollup::exec::execute_batch(
        &mut gridledger_rollup::exec::OffChain,
        &e.d.cfg.params,
        &input.prestate,
        &input.entries,
    )
    .unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let sub = tcr_args(&e, 0, tcrs, input.entries);
    let r = e.d.primary_call(&exec, "sc_cr", sub.clone(), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    reverts(&mut e, &exec, "sc_cr", sub, Amount::ZERO, "TCRs already recorded");
}
