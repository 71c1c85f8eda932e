//! The theft and freeze paths of issue 11 (items 1–6), each driven as the
//! attacker would and shown closed: refused with a typed reason, nothing
//! changed, or settled correctly and coin conserved.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount};
use gridledger_core::{Hash32, MerkleProof};
use gridledger_ledger::{StateRead, TxStatus};
use gridledger_rollup::driver::meter_key;
use gridledger_rollup::exec::{execute_batch, OffChain};
use gridledger_rollup::primary::{assign, BatchState, DisputeEntry, EntryDisputeError, PayDelegation, SubmitTcrs};
use gridledger_rollup::roles::{ExecutorBehaviour, Fault, SmartMeter, ValidatorBehaviour};
use gridledger_rollup::state::{post_state, state_root};
use gridledger_rollup::types::{
    coins, entry_hash, tcr_proof, AtRejection, BuyerOpinion, Effect, Entry, IorTx, Outcome, Participant, PostedLeaf,
    SigDomain, StRejection, StSettlement, TcrLeaf,
};
use gridledger_rollup::{args, IOR_PRIMARY_ID};

const ACCOUNTS: usize = 9;

fn part(e: &Env, k: &KeyPair) -> Participant {
    e.d.participant(&k.address()).unwrap()
}

fn wallet(e: &Env, a: &Address) -> u128 {
    e.d.primary.chain.state().account(a).balance.0
}

/// Item 1: the reproduced theft. A sybil pair trades; the executor appends
/// `Lock{victim}` + `Pay{executor}` to the AT's TCR and posts the post-state
/// root those effects leave. With one TCR root per batch and the settlement
/// state off the primary chain, `finalize` is O(1) and checks nothing: the
/// forged effects are a wrong leaf, which the victim (its meter checks
/// every TCR naming it) disputes with a bond, its Merkle witness and the
/// leaf's inputs, even with every validator silent. The chain re-executes
/// that entry, overturns the batch, burns the thief's deposit and settles
/// the batch with its own TCRs. The victim keeps its coin.
#[test]
fn forged_effects_on_a_third_account_never_settle() {
    let mut e = funded();
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (victim, sybil_b, sybil_s) = (trader(0), trader(1), trader(2));
    let t = terms(&sybil_b, &sybil_s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&sybil_b, &at(&t, &sybil_s)).unwrap();
    let (mut tcrs, exec) = honest_tcrs(&mut e, 0);
    tcrs[0].effects.push(Effect::Lock { who: victim.address(), amount: coins(10) });
    tcrs[0].effects.push(Effect::Pay { to: exec.address(), amount: coins(10) });
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let r = post(&mut e, &exec, 0, tcrs);
    assert_eq!(r[0].status, TxStatus::Success, "only the roots are recorded");
    let input = e.d.batch_input(0).unwrap();
    let own = gridledger_rollup::exec::execute_leaves(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries)
        .unwrap();
    let call = gridledger_rollup::roles::dispute_call(&e.d.cfg.params, &input, &own);
    assert_eq!(call.method, "dispute_entry", "one wrong leaf, disputed with its witness");
    let bond = e.d.cfg.challenge_bond;
    let d = e.d.primary_call(&victim, call.method, call.args, bond).unwrap();
    assert!(d.events.iter().any(|ev| ev.name == "ior_tcr_overturned"), "{:?}", d.status);
    let f = e.d.primary_call(&trader(3), "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(f.status, TxStatus::Success);
    assert!(matches!(e.d.batch_header(0).unwrap().state, BatchState::Settled { disputed: true, .. }));
    assert!(!node_active(&e, &exec.address()), "the thief's deposit is forfeited");
    assert_eq!(part(&e, &victim).balance, coins(10));
    // The same with the driver's thieving executor and an honest
    // validator: the entry is disputed with its witness, the chain settles.
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Honest);
    }
    e.d.set_executor(0, ExecutorBehaviour::StealPayouts);
    e.d.set_executor(1, ExecutorBehaviour::StealPayouts);
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&sybil_s, &IorTx::St(st(&t, 1000, true, Some(&sybil_b)))).unwrap();
    e.d.process(&mut rng(1)).unwrap();
    assert!(e.d.batch_header(1).unwrap().overturned, "the thief's root was overturned");
    assert_eq!(part(&e, &victim).balance, coins(10));
    assert_eq!(e.d.participant(&exec.address()).unwrap().balance, Amount::ZERO);
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
}

/// Item 1: a meter checks every TCR that names its owner, not only its
/// owner's trades.
#[test]
fn a_meter_checks_tcrs_that_name_its_owner_in_others_trades() {
    let mut e = funded();
    let (victim, b, s) = (trader(0), trader(1), trader(2));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (own, _) = honest_tcrs(&mut e, 0);
    let mut input = e.d.batch_input(0).unwrap();
    let mut forged = own.clone();
    forged[0].effects.push(Effect::Lock { who: victim.address(), amount: coins(10) });
    input.tcrs = Some(forged);
    let validators: Vec<Address> = e.d.validators.iter().map(|(k, _)| k.address()).collect();
    let mut meter = SmartMeter { owner: victim.address(), params: e.d.cfg.params.clone(), delegates: 2 };
    let step = meter.on_tcrs_computed(&input, &own, &validators, &mut rng(5));
    assert_eq!(step.delegations.len(), 2, "the victim's meter delegates");
    assert!(matches!(&step.faults[..], [Fault::WrongTcr { indices, .. }] if indices == &vec![0]));
    // An untouched trader's meter stays quiet.
    let mut other = SmartMeter { owner: trader(3).address(), params: e.d.cfg.params.clone(), delegates: 2 };
    assert!(other.on_tcrs_computed(&input, &own, &validators, &mut rng(5)).delegations.is_empty());
}

/// Item 1: each batch's executor and validator are drawn by lot (the
/// executor from the parent hash of the batch's block, the validator from
/// the hash of the batch's block itself, whichever block closed it), not
/// by round robin.
#[test]
fn validators_are_drawn_by_lot_from_the_parent_hash() {
    let mut e = funded();
    let nodes = e.d.primary.chain.view(IOR_PRIMARY_ID, "nodes", &[]).unwrap();
    let list = |k: &str| -> Vec<Address> { serde_json::from_value(nodes[k].clone()).unwrap() };
    let (execs, vals) = (list("executors"), list("validators"));
    let mut drawn = vec![];
    for round in 0..8u64 {
        let (b, s) = (trader((round % 3) as usize), trader(((round + 1) % 3) as usize));
        let start = 8 * HOUR + round * HOUR;
        e.d.set_time(start - 30 * MIN);
        e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 10, start), &s)).unwrap();
        e.d.process(&mut rng(round)).unwrap();
    }
    for id in 0..8u64 {
        let h = e.d.batch_input(id).unwrap().header;
        // The executor is drawn when the batch opens, the validator from
        // the batch's own block (unknown to those who submit).
        let header = |height: u64| e.d.primary.chain.block(height).unwrap().unwrap().header;
        let opened = assign(&header(h.height).parent, id, &execs, &vals).unwrap();
        let closed = assign(&header(h.height).hash(), id, &execs, &vals).unwrap();
        assert_eq!((opened.0, closed.1), (h.executor, h.validator), "batch {id}");
        drawn.push(vals.iter().position(|v| *v == h.validator).unwrap());
    }
    let round_robin: Vec<usize> = (0..8).map(|b| b % vals.len()).collect();
    assert_ne!(drawn, round_robin);
}

/// Attack r5 finding 7: a batch closed more than the ledger's block-hash
/// window after its block (nobody called the contract meanwhile) draws its
/// validator from the hash of block `height + window`, the latest block
/// `height + k × window` still readable, not from the closing block's
/// parent: a closer that withholds every call gets a fresh lot only once
/// per window of waiting.
#[test]
fn a_batch_closed_after_the_hash_window_draws_from_a_fixed_later_block() {
    use gridledger_ledger::devnet::transfer;
    use gridledger_ledger::BLOCK_HASH_WINDOW;
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    e.d.submit_block(&[(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))]).unwrap();
    let batch = 1;
    let h = e.d.batch_header(batch).unwrap();
    assert!(h.closed_at.is_none());
    let other = trader(3);
    let chain_id = e.d.primary.chain.genesis().chain_id;
    // The closing call lands in block height + window + 6.
    while e.d.primary.chain.tip().height < h.height + BLOCK_HASH_WINDOW + 5 {
        let n = e.d.primary.chain.next_nonce(&other.address());
        e.d.primary.exec(transfer(&other, chain_id, n, other.address(), Amount(1), Amount(1))).unwrap();
    }
    let closer = e.d.executors[0].0.clone();
    assert_eq!(e.d.primary_call(&closer, "close", vec![], Amount::ZERO).unwrap().status, TxStatus::Success);
    let closed = e.d.batch_header(batch).unwrap();
    assert_eq!(closed.closed_height, Some(h.height + BLOCK_HASH_WINDOW + 6));
    let execs: Vec<_> = e.d.executors.iter().map(|(k, _)| k.address()).collect();
    let vals: Vec<_> = e.d.validators.iter().map(|(k, _)| k.address()).collect();
    let lot = e.d.primary.chain.block(h.height + BLOCK_HASH_WINDOW).unwrap().unwrap().header.hash();
    assert_eq!(closed.validator, assign(&lot, batch, &execs, &vals).unwrap().1);
}

/// Item 2: anyone may challenge with a bond; a wrong challenge's bond pays
/// the executor it wrongly accused and changes nothing else.
#[test]
fn a_bonded_challenge_of_correct_tcrs_pays_the_executor() {
    let mut e = funded();
    let (b, s, watcher) = (trader(0), trader(1), trader(3));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (tcrs, exec) = honest_tcrs(&mut e, 0);
    post(&mut e, &exec, 0, tcrs);
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (w0, x0) = (wallet(&e, &watcher.address()), wallet(&e, &exec.address()));
    let bond = e.d.cfg.challenge_bond;
    let short = Amount(bond.0 - 1);
    let r1 = e.d.primary_call(&watcher, "dispute", e.d.dispute_args(0, vec![]).unwrap(), short).unwrap();
    assert!(reverted(&r1).contains("must attach a bond"));
    let r = e.d.primary_call(&watcher, "dispute", e.d.dispute_args(0, vec![]).unwrap(), bond).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert!(r.events.iter().any(|ev| ev.name == "ior_dispute_rejected"));
    assert_eq!(wallet(&e, &exec.address()), x0 + bond.0, "the executor wins the bond");
    assert_eq!(wallet(&e, &watcher.address()), w0 - bond.0 - r.fee.0 - r1.fee.0, "the watcher lost its bond");
    assert!(node_active(&e, &exec.address()));
    assert_eq!(e.d.batch_input(0).unwrap().header.state, BatchState::Open);
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
    e.d.process(&mut rng(0)).unwrap();
    let seller_lock = e.d.cfg.params.seller_lock().0;
    assert_eq!(internal_total(&e.d, ACCOUNTS) + 1_100_000 + seller_lock, contract_balance(&e.d).0);
}

/// Item 3: the buyer records `O_b` itself before `DL`; a seller that
/// withholds the buyer's signature and submits after `DL` no longer makes
/// the honest buyer the penalised party.
#[test]
fn the_buyers_own_opinion_beats_a_withheld_signature() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&b, &IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob: true })).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::OpinionRecorded]);
    e.d.set_time(t.dl + MIN);
    e.d.submit(&s, &IorTx::St(st(&t, 1000, true, None))).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StSettled(StSettlement::Agreed)]);
    assert_eq!(part(&e, &b), Participant { balance: Amount(9_900_000), reputation: 30 });
    assert_eq!(part(&e, &s), Participant { balance: Amount(10_100_000), reputation: 30 });
}

/// Item 3: in arbitration, readings count only when the seller's certified
/// meter signed them; the seller's own signature is not evidence.
#[test]
fn arbitration_counts_only_meter_signed_readings() {
    let mut e = funded();
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (b, s, b2) = (trader(0), trader(1), trader(2));
    let t1 = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t1.dt_end + MIN);
    // Both buyers disagree; full delivery claimed by both readings, but the
    // first set is signed by the seller's wallet key, not its meter.
    let forged = st(&t1, 1000, false, Some(&b)).sign_readings(&s).sign_as_buyer(&b);
    let genuine = st(&t2, 1000, false, Some(&b2));
    assert!(
        genuine.meter_sig.is_some()
            && st(&t1, 1000, false, None).sign_readings(&meter_key(&s.address())).meter_sig.is_some()
    );
    e.d.submit_block(&[(s.clone(), IorTx::St(forged)), (s.clone(), IorTx::St(genuine))]).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(
        out[0].outcomes,
        vec![Outcome::StSettled(StSettlement::SellerShortfall), Outcome::StSettled(StSettlement::SellerDelivered)]
    );
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
}

/// Item 3: opinions are refused from anyone but the buyer, twice, and
/// after `DL`; each refusal costs its sender α and changes no balance.
#[test]
fn opinion_refusals_are_typed_and_change_no_balance() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let op = |ob| IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob });
    let run = |e: &mut Env, key: &KeyPair, tx: IorTx, time: u64| -> Outcome {
        let before: Vec<Participant> = (0..3).map(|i| part(e, &trader(i))).collect();
        e.d.set_time(time);
        e.d.submit(key, &tx).unwrap();
        let got = e.d.process(&mut rng(0)).unwrap().remove(0).outcomes.remove(0);
        let after: Vec<Participant> = (0..3).map(|i| part(e, &trader(i))).collect();
        for i in 0..3 {
            assert_eq!(after[i].balance, before[i].balance, "balance of trader {i}");
            let drop = if trader(i).address() == key.address() && got != Outcome::OpinionRecorded { 10 } else { 0 };
            assert_eq!(after[i].reputation, before[i].reputation - drop, "reputation of trader {i}");
        }
        got
    };
    let got = run(&mut e, &s, op(true), t.dt_end);
    assert_eq!(got, Outcome::StRejected(StRejection::NotBuyer { sender: s.address(), buyer: b.address() }));
    assert_eq!(run(&mut e, &b, op(false), t.dt_end + 1), Outcome::OpinionRecorded);
    assert_eq!(run(&mut e, &b, op(true), t.dt_end + 2), Outcome::StRejected(StRejection::OpinionAlreadyRecorded));
    let got = run(&mut e, &b, op(true), t.dl + MIN);
    assert!(matches!(got, Outcome::StRejected(StRejection::OpinionAfterDeadline { dl, .. }) if dl == t.dl), "{got:?}");
}

/// Item 4: a silent seller cannot freeze the buyer. Before `DL + expiry`
/// the expiry is refused without penalty and changes nothing; after it the
/// buyer is refunded with the seller's penalty, the seller loses α, and the
/// buyer trades again.
#[test]
fn a_silent_seller_cannot_freeze_the_buyer() {
    let mut e = funded();
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (b, s, s2) = (trader(0), trader(1), trader(2));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let before = (part(&e, &b), part(&e, &s));
    e.d.set_time(t.dl + e.d.cfg.params.expiry_ms);
    e.d.submit(&b, &IorTx::Expire(t.clone())).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert!(matches!(out[0].outcomes[..], [Outcome::StRejected(StRejection::NotExpired { .. })]), "{out:?}");
    assert_eq!((part(&e, &b), part(&e, &s)), before, "refused without penalty, nothing changed");
    e.d.set_time(t.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit(&b, &IorTx::Expire(t.clone())).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::Expired]);
    // Buyer: 10 − 1.1 locked + (0.1 + 1 + 0.5) back = 10.5; seller: 10 − 1.
    assert_eq!(part(&e, &b), Participant { balance: Amount(10_500_000), reputation: 30 });
    assert_eq!(part(&e, &s), Participant { balance: coins(9), reputation: 20 });
    assert_eq!(black_hole(&e.d), Amount(500_000));
    // The buyer is free to trade again (a period on the 5-minute metering grid).
    let start = (e.d.now() + HOUR).div_ceil(5 * MIN) * 5 * MIN;
    let t2 = terms(&b, &s2, Amount(200_000), 500, start);
    e.d.submit(&b, &at(&t2, &s2)).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted]);
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
}

/// Item 5: a verdict whose effects cannot apply (an AT accepted for a
/// buyer without coin) no longer halts settlement: `finalize` re-executes,
/// settles the batch with the chain's TCRs, forfeits the executor, and the
/// next batch proceeds.
#[test]
fn an_inapplicable_tcr_is_isolated_and_the_rest_settles() {
    let mut e = funded();
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (b, s, poor, s2) = (trader(0), trader(1), trader(3), trader(2));
    let good = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let bad = terms(&poor, &s2, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&good, &s)), (poor.clone(), at(&bad, &s2))]).unwrap();
    let (_, exec) = honest_tcrs(&mut e, 0);
    let i = e.d.executors.iter().position(|(k, _)| k.address() == exec.address()).unwrap();
    e.d.set_executor(i, ExecutorBehaviour::AcceptAll);
    let input = e.d.batch_input(0).unwrap();
    let step = e.d.executors[i].1.on_batch(&input);
    for c in step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary) {
        let r = e.d.primary_call(&exec, c.method, c.args, Amount::ZERO).unwrap();
        assert_eq!(r.status, TxStatus::Success, "well-formed verdicts are recorded");
    }
    let input = e.d.batch_input(0).unwrap();
    let recorded = input.tcrs.clone().unwrap();
    assert_eq!(recorded[1].outcome, Outcome::AtAccepted, "the wrong verdict");
    // The validators are silent; the seller whose trade got the wrong
    // verdict challenges with a bond once the validator's turn has passed.
    let h = input.header.clone();
    e.d.set_time(h.complete_at.unwrap() + e.d.cfg.window_ms() / 2 + 1);
    let honest = execute_batch(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let bond = e.d.cfg.challenge_bond;
    let a = e.d.dispute_args(0, honest).unwrap();
    let digest = gridledger_rollup::types::dispute_digest("dispute", &a);
    let commitment = gridledger_rollup::types::dispute_commitment(&digest, &s2.address());
    let c = e.d.primary_call(&s2, "commit_dispute", args(&commitment), Amount::ZERO).unwrap();
    assert_eq!(c.status, TxStatus::Success, "{:?}", c.status);
    let d = e.d.primary_call(&s2, "dispute", a, bond).unwrap();
    assert_eq!(d.status, TxStatus::Success);
    assert!(d.events.iter().any(|ev| ev.name == "ior_tcr_overturned"));
    // The chain settled the batch with its own TCRs at once: nothing halts.
    let settled = e.d.batch_input(0).unwrap();
    assert_eq!(settled.header.state.clone(), BatchState::Settled { disputed: true, at: r_time(&e) });
    let outcomes: Vec<Outcome> = settled.tcrs.unwrap().into_iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes[0], Outcome::AtAccepted);
    assert!(matches!(outcomes[1], Outcome::AtRejected(AtRejection::InsufficientBalance { .. })));
    assert!(!node_active(&e, &exec.address()));
    assert_eq!(part(&e, &b).balance, Amount(8_900_000));
    assert_eq!(part(&e, &poor).balance, Amount::ZERO);
    // The chain goes on.
    e.d.set_executor(i, ExecutorBehaviour::Honest);
    e.d.set_time(good.dt_end + MIN);
    e.d.submit(&s, &IorTx::St(st(&good, 1000, true, Some(&b)))).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::StSettled(StSettlement::Agreed)]);
    assert_eq!(black_hole(&e.d), coins(100), "half of both forfeited deposits burned, half rewards the challenger");
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
}

fn r_time(e: &Env) -> u64 {
    e.d.primary.chain.tip().timestamp
}

/// Item 5: while a batch is pending, only the traders it reads wait to
/// withdraw; others withdraw, and `fund` never waits (a credit, queued for
/// the next batch, changes nothing a pending batch reads).
#[test]
fn fund_and_withdraw_wait_only_for_batches_touching_the_caller() {
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s, other) = (trader(0), trader(1), trader(2));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    let pending = |e: &Env, k: &KeyPair| {
        e.d.primary.chain.view(IOR_PRIMARY_ID, "pending", &borsh::to_vec(&k.address()).unwrap()).unwrap()
    };
    assert_eq!(pending(&e, &b), 1);
    assert_eq!(pending(&e, &other), 0);
    let r = e.d.fund(&other, coins(1)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let r = e.d.withdraw(&other, coins(2)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(part(&e, &other).balance, coins(9));
    assert_eq!(e.d.fund(&b, coins(1)).unwrap().status, TxStatus::Success);
    let r = e.d.withdraw(&b, coins(1)).unwrap();
    assert!(reverted(&r).contains("a pending batch reads this account"));
    e.d.process(&mut rng(0)).unwrap();
    assert_eq!(pending(&e, &b), 0);
    assert_eq!(e.d.withdraw(&b, coins(1)).unwrap().status, TxStatus::Success);
}

/// Item 6: the replay of issue 11. A seller-signed AT for 08:00 settles;
/// resubmitted at 20:00 it is refused, and the buyer does not pay twice.
/// An ST before its delivery period ends is refused without penalty.
#[test]
fn a_replayed_agreement_is_refused() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let signed = at(&t, &s);
    e.d.submit(&b, &signed).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end - MIN);
    let early = IorTx::St(st(&t, 1000, true, Some(&b)));
    e.d.submit(&s, &early).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert!(matches!(out[0].outcomes[..], [Outcome::StRejected(StRejection::NotYetDelivered { .. })]));
    assert_eq!(part(&e, &s).reputation, 30, "no penalty for being early");
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&s, &early).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let paid = (part(&e, &b).balance, part(&e, &s).balance);
    assert_eq!(paid, (Amount(9_900_000), Amount(10_100_000)));
    e.d.set_time(20 * HOUR);
    // Refused at recording (attack r9 [2]): execution would refuse it
    // `DeliveryPassed`, and recording it would make the seller pending.
    let r = e.d.submit(&b, &signed).unwrap();
    let why = format!("the delivery period ended at {}", t.dt_end);
    assert!(matches!(&r.status, TxStatus::Reverted(w) if w.contains(&why)), "{:?}", r.status);
    e.d.submit(&s, &early).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::StRejected(StRejection::NoAgreement(b.address()))]);
    assert_eq!((part(&e, &b).balance, part(&e, &s).balance), paid, "nobody paid twice");
}

/// Item 6: a node leaves and gets its deposit back, unless an unsettled
/// batch still names it.
#[test]
fn a_node_deregisters_and_withdraws_its_deposit_unless_assigned() {
    let mut e = funded();
    let total0 = primary_total(&e.d, ACCOUNTS);
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    // The validator is drawn when a later block closes the batch.
    assert_eq!(e.d.primary_call(&b, "close", vec![], Amount::ZERO).unwrap().status, TxStatus::Success);
    let h = e.d.batch_input(0).unwrap().header;
    let assigned = e.d.validators.iter().find(|(k, _)| k.address() == h.validator).unwrap().0.clone();
    let r = e.d.primary_call(&assigned, "deregister_node", vec![], Amount::ZERO).unwrap();
    assert!(reverted(&r).contains("assigned to unsettled batch 0"));
    assert!(node_active(&e, &assigned.address()));
    let free = e.d.validators.iter().find(|(k, _)| k.address() != h.validator).unwrap().0.clone();
    let w0 = wallet(&e, &free.address());
    let r = e.d.primary_call(&free, "deregister_node", vec![], Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(wallet(&e, &free.address()), w0 + coins(100).0 - r.fee.0, "deposit returned");
    assert!(!node_active(&e, &free.address()));
    let nodes = e.d.primary.chain.view(IOR_PRIMARY_ID, "nodes", &[]).unwrap();
    assert!(!nodes["validators"].as_array().unwrap().iter().any(|v| v == &serde_json::json!(free.address())));
    let r = e.d.primary_call(&free, "deregister_node", vec![], Amount::ZERO).unwrap();
    assert!(reverted(&r).contains("not active"));
    e.d.process(&mut rng(0)).unwrap();
    assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
}

/// Item 6: the delegation fee `f` is paid on chain, to a validator, after
/// the batch settled, in the exact amount.
#[test]
fn the_delegation_fee_is_paid_on_chain_after_settlement() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    let v = e.d.validators[0].0.address();
    let f = e.d.cfg.delegation_fee;
    let pay = |batch, validator| args(&PayDelegation { batch, validator });
    let r = e.d.primary_call(&b, "pay_delegation", pay(0, v), f).unwrap();
    assert!(reverted(&r).contains("has not settled"));
    e.d.process(&mut rng(0)).unwrap();
    let r = e.d.primary_call(&b, "pay_delegation", pay(0, v), Amount(f.0 + 1)).unwrap();
    assert!(reverted(&r).contains("the delegation fee is"));
    let r = e.d.primary_call(&b, "pay_delegation", pay(0, s.address()), f).unwrap();
    assert!(reverted(&r).contains("not a registered validator"));
    let w0 = wallet(&e, &v);
    let r = e.d.primary_call(&b, "pay_delegation", pay(0, v), f).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(wallet(&e, &v), w0 + f.0);
}

/// A silent executor does not freeze settlement: once a window has passed
/// since the batch's first entry, another executor stands in; before that,
/// it may not.
#[test]
fn a_silent_executor_is_replaced_after_the_window() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (tcrs, assigned) = honest_tcrs(&mut e, 0);
    let other = e.d.executors.iter().find(|(k, _)| k.address() != assigned.address()).unwrap().0.clone();
    let r = post(&mut e, &other, 0, tcrs);
    assert!(reverted(&r[0]).contains("only the batch's executor"), "no stand-in before the window");
    let i = e.d.executors.iter().position(|(k, _)| k.address() == assigned.address()).unwrap();
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let out = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(out[0].outcomes, vec![Outcome::AtAccepted]);
    assert_eq!(e.d.batch_input(0).unwrap().header.posted_by, Some(other.address()));
    assert_eq!(part(&e, &b).balance, Amount(8_900_000));
}

/// Fig 3-7: a batch's entries are block data. The contract keeps only a
/// count and a rolling commitment; whoever needs the entries reads them
/// from the recording block and brings them. `sc_cr_*`, `dispute` and
/// `finalize` refuse entries that are not the recorded ones (one altered,
/// or one missing) with a revert that changes nothing, and settle with the
/// recorded ones.
#[test]
fn batch_entries_are_block_data_checked_against_the_commitment() {
    use gridledger_rollup::primary::{Controversial, FinalizeArgs};
    use gridledger_rollup::types::commit_entries;
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (tcrs, exec) = honest_tcrs(&mut e, 0);
    let h = e.d.batch_header(0).unwrap();
    let es = e.d.entries(0).unwrap();
    assert_eq!(es.len(), 1);
    assert_eq!((es[0].sender, &es[0].tx), (b.address(), &at(&t, &s)));
    assert_eq!(commit_entries(&es), h.commitment);
    // An executor that alters the data it settles against is refused.
    let mut forged = es.clone();
    if let IorTx::At(a) = &mut forged[0].tx {
        a.terms.em = gridledger_core::Energy(1);
    }
    let before = part(&e, &b);
    for (key, method, a, value) in [
        (&exec, "sc_cr", tcr_args(&e, 0, tcrs.clone(), forged.clone()), Amount::ZERO),
        (&exec, "sc_cr", tcr_args(&e, 0, tcrs.clone(), vec![]), Amount::ZERO),
    ] {
        let r = e.d.primary_call(key, method, a, value).unwrap();
        let why = reverted(&r);
        assert!(why.contains("commitment mismatch") || why.contains("1 entries, 0 brought"), "{why}");
        assert!(r.events.is_empty());
    }
    assert!(e.d.batch_header(0).unwrap().tcr_root.is_none(), "no TCRs recorded from forged data");
    let r = e.d.primary_call(&exec, "sc_cr", tcr_args(&e, 0, tcrs, es.clone()), Amount::ZERO);
    assert_eq!(r.unwrap().status, TxStatus::Success);
    let bond = e.d.cfg.challenge_bond;
    let state = e.d.state_before(0).unwrap();
    let queue = e.d.batch_queue(&h).unwrap();
    let witness = gridledger_rollup::state::batch_witness(&state, &queue, &es, e.d.cfg.params.meter_step_s);
    let d = args(&Controversial { batch: 0, claimed: vec![], entries: forged.clone(), witness });
    assert!(reverted(&e.d.primary_call(&trader(2), "dispute", d, bond).unwrap()).contains("commitment mismatch"));
    assert_eq!(part(&e, &b), before, "nothing settled from forged data");
    // A whole-batch dispute must bring the settled state: another one is refused.
    let mut other = state.clone();
    other.participants.insert(b.address(), Participant { balance: coins(1_000), reputation: 30 });
    let witness = gridledger_rollup::state::batch_witness(&other, &queue, &es, e.d.cfg.params.meter_step_s);
    let d = args(&Controversial { batch: 0, claimed: vec![], entries: es.clone(), witness });
    assert!(reverted(&e.d.primary_call(&trader(2), "dispute", d, bond).unwrap()).contains("not the settled state"));
    e.d.set_time(e.d.now() + e.d.cfg.window_ms() + 1);
    // `finalize` is O(1): the posted post-state root becomes the settled
    // root, without the entries or the state.
    let f = args(&FinalizeArgs { batch: 0, entries: vec![], witness: Default::default() });
    let r = e.d.primary_call(&exec, "finalize", f, Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let h = e.d.batch_header(0).unwrap();
    let root = e.d.primary.chain.view(IOR_PRIMARY_ID, "settled_root", &[]).unwrap();
    assert_eq!(root.as_str(), h.post_root.map(|r| r.to_string()).as_deref());
    assert!(e.d.batch_header(0).unwrap().state != BatchState::Open);
    assert!(part(&e, &b).balance < before.balance, "the recorded AT settled: the buyer's payment is locked");
}

/// A trader touched by two unsettled batches waits for both: after the
/// first settles it is still pending (its latest touching batch is open),
/// and only once that one settles may it fund again.
#[test]
fn a_trader_waits_for_its_latest_touching_batch() {
    let mut e = funded();
    let (b, s, s2) = (trader(0), trader(1), trader(2));
    let pending = |e: &Env| e.d.primary.chain.view(IOR_PRIMARY_ID, "pending", &borsh::to_vec(&b.address()).unwrap());
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.submit(&b, &at(&terms(&b, &s2, Amount(200_000), 500, 8 * HOUR), &s2)).unwrap();
    assert_eq!(e.d.batch_header(1).unwrap().len(), 1, "two batches, one entry each");
    // Settle batch 0 by hand: its executor's TCRs, the window, finalize.
    let (tcrs, exec) = honest_tcrs(&mut e, 0);
    post(&mut e, &exec, 0, tcrs);
    e.d.set_time(e.d.now() + e.d.cfg.window_ms() + 1);
    let fin = e.d.finalize_args(0).unwrap();
    assert_eq!(e.d.primary_call(&exec, "finalize", fin, Amount::ZERO).unwrap().status, TxStatus::Success);
    assert!(e.d.batch_header(0).unwrap().state != BatchState::Open);
    assert_eq!(pending(&e).unwrap(), 1, "batch 1 still reads the buyer");
    let before = part(&e, &b);
    assert!(reverted(&e.d.withdraw(&b, coins(1)).unwrap()).contains("a pending batch reads this account"));
    assert_eq!(part(&e, &b), before, "the refused withdrawal changed nothing");
    e.d.process(&mut rng(0)).unwrap();
    assert_eq!(pending(&e).unwrap(), 0);
    assert_eq!(e.d.withdraw(&b, coins(1)).unwrap().status, TxStatus::Success);
}

/// A batch of two ATs whose executor posts, under one TCR root, an honest
/// leaf 0 and a wrong verdict on entry 1 (its seller's valid signature
/// called missing; effects of the right shape, honest inputs). Returns the
/// executor, the entries, the posted leaves and the entry hashes.
fn posted_wrong_leaf(e: &mut Env, batch: u64, start: u64) -> (KeyPair, Vec<Entry>, Vec<TcrLeaf>, Vec<Hash32>) {
    use gridledger_rollup::exec::{execute_leaves, expected_effects};
    let (b, s, b2, s2) = (trader(0), trader(1), trader(2), trader(1));
    let t1 = terms(&b, &s, Amount(200_000), 500, start);
    let t2 = terms(&b2, &s2, Amount(200_000), 400, start);
    e.d.set_time(start - 30 * MIN);
    e.d.submit_block(&[(b.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s2))]).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let mut leaves = execute_leaves(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let wrong = Outcome::AtRejected(AtRejection::NotSignedBySeller);
    leaves[1].tcr.effects = expected_effects(&e.d.cfg.params, &input.entries[1], &wrong).unwrap();
    leaves[1].tcr.outcome = wrong;
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let tcrs: Vec<gridledger_rollup::types::Tcr> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let full = input.full_state(&e.d.cfg.params);
    let (post, burned) = post_state(&e.d.cfg.params, &full, &input.entries, &tcrs).unwrap();
    let post_root = state_root(&post);
    gridledger_rollup::state::fill_post_roots(&e.d.cfg.params, &full, &input.entries, &mut leaves);
    let sub = SubmitTcrs { batch, entry_hashes: hashes.clone(), leaves: posted(&leaves), post_root, burned };
    let r = e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    (exec, input.entries, leaves, hashes)
}

fn posted(leaves: &[TcrLeaf]) -> Vec<PostedLeaf> {
    leaves.iter().map(TcrLeaf::posted).collect()
}

fn entry_dispute(batch: u64, entry: &Entry, leaf: &TcrLeaf, proof: MerkleProof) -> Vec<u8> {
    args(&DisputeEntry { batch, entry: entry.clone(), pre: leaf.pre.clone(), leaf: leaf.posted(), proof })
}

/// Issue 11: a dispute names one entry, carries its Merkle witness against
/// the posted TCR root and the inputs in the leaf; the chain re-executes
/// that entry alone. A wrong result loses the executor its deposit (the
/// disputer is rewarded, the rest burned) and the batch settles with the
/// chain's own TCRs at once.
#[test]
fn a_witnessed_dispute_of_one_wrong_entry_wins() {
    let mut e = funded();
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let (exec, es, leaves, hashes) = posted_wrong_leaf(&mut e, 0, 8 * HOUR);
    let watcher = trader(3);
    let p = &e.d.cfg.params;
    let proof = tcr_proof(&p.domain, 0, &hashes, &posted(&leaves), 1).unwrap();
    let dispute = entry_dispute(0, &es[1], &leaves[1], proof);
    // Committed under its own address first: only then is its sender paid.
    let digest = gridledger_rollup::types::dispute_digest("dispute_entry", &dispute);
    let commitment = gridledger_rollup::types::dispute_commitment(&digest, &watcher.address());
    let c = e.d.primary_call(&watcher, "commit_dispute", args(&commitment), Amount::ZERO).unwrap();
    assert_eq!(c.status, TxStatus::Success, "{:?}", c.status);
    let (w0, burned0) = (wallet(&e, &watcher.address()), black_hole(&e.d));
    let bond = e.d.cfg.challenge_bond;
    let r = e.d.primary_call(&watcher, "dispute_entry", dispute, bond).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    assert!(r.gas_used < 200_000, "one entry re-executed, not the batch: {} gas", r.gas_used);
    assert!(e.d.batch_header(0).unwrap().overturned);
    assert!(!node_active(&e, &exec.address()), "the executor's deposit is forfeited");
    let y = e.d.cfg.node_deposit.0;
    let reward = y * u128::from(e.d.cfg.bonus_permille) / 1000;
    assert!(wallet(&e, &watcher.address()) >= w0 - r.fee.0 + reward, "bond back plus the discloser's reward");
    assert!(black_hole(&e.d).0 > burned0.0, "the rest of the forfeited deposits is burned");
    // The batch settles with the chain's TCRs without waiting for a window.
    let f = e.d.primary_call(&trader(3), "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(f.status, TxStatus::Success, "{:?}", f.status);
    let settled = e.d.batch_input(0).unwrap();
    assert!(matches!(settled.header.state, BatchState::Settled { disputed: true, .. }));
    let outcomes: Vec<Outcome> = settled.tcrs.unwrap().into_iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
}

/// Issue 11: entry disputes that prove nothing are refused with a typed
/// error ([`EntryDisputeError`]) and change nothing (the bond returns with
/// the reverted call): a wrong witness, a witness for another index, a
/// dispute replayed from another chain or another batch, one on a correct
/// result, and one without a bond.
#[test]
fn entry_disputes_that_prove_nothing_are_refused_and_change_nothing() {
    // Eight calls inside one window (disputes after it are refused).
    let mut e = funded_with_window(60_000);
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let (exec, es, leaves, hashes) = posted_wrong_leaf(&mut e, 0, 8 * HOUR);
    let watcher = trader(3);
    let d = e.d.cfg.params.domain;
    let bond = e.d.cfg.challenge_bond;
    let proof = |i: usize| tcr_proof(&d, 0, &hashes, &posted(&leaves), i).unwrap();
    let mut bad_sibling = proof(1);
    bad_sibling.siblings[0] = Hash32::ZERO;
    let other_chain = SigDomain { chain_id: d.chain_id + 1, ..d };
    let foreign = tcr_proof(&other_chain, 0, &hashes, &posted(&leaves), 1).unwrap();
    let other_inputs = args(&DisputeEntry {
        batch: 0,
        entry: es[1].clone(),
        pre: Default::default(),
        leaf: leaves[1].posted(),
        proof: proof(1),
    });
    let cases: Vec<(Vec<u8>, Amount, EntryDisputeError)> = vec![
        (entry_dispute(0, &es[1], &leaves[1], bad_sibling), bond, EntryDisputeError::WrongWitness(0)),
        (
            entry_dispute(0, &es[1], &leaves[1], proof(0)),
            bond,
            EntryDisputeError::WrongIndex { index: 0, count: 2, len: 2, tcr: 1 },
        ),
        (entry_dispute(0, &es[0], &leaves[1], proof(1)), bond, EntryDisputeError::WrongWitness(0)),
        (entry_dispute(0, &es[1], &leaves[1], foreign), bond, EntryDisputeError::WrongWitness(0)),
        (entry_dispute(0, &es[0], &leaves[0], proof(0)), bond, EntryDisputeError::CorrectResult(0)),
        (other_inputs, bond, EntryDisputeError::WrongInputs(1)),
        (
            entry_dispute(0, &es[1], &leaves[1], proof(1)),
            Amount(bond.0 - 1),
            EntryDisputeError::BondTooSmall { bond, attached: Amount(bond.0 - 1) },
        ),
    ];
    for (a, value, why) in cases {
        let (h0, total0, w0) =
            (e.d.batch_header(0).unwrap(), primary_total(&e.d, ACCOUNTS), wallet(&e, &watcher.address()));
        let r = e.d.primary_call(&watcher, "dispute_entry", a, value).unwrap();
        assert!(reverted(&r).ends_with(&why.to_string()), "{:?} is not {why}", r.status);
        assert!(r.events.is_empty());
        assert_eq!(e.d.batch_header(0).unwrap(), h0, "{why}: the batch is unchanged");
        assert_eq!(wallet(&e, &watcher.address()), w0 - r.fee.0, "{why}: only the fee is paid");
        assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
        assert!(node_active(&e, &exec.address()));
    }
    // The valid dispute of batch 0 wins and batch 0 settles.
    let ok = entry_dispute(0, &es[1], &leaves[1], proof(1));
    assert_eq!(e.d.primary_call(&watcher, "dispute_entry", ok.clone(), bond).unwrap().status, TxStatus::Success);
    let f = e.d.primary_call(&watcher, "finalize", e.d.finalize_args(0).unwrap(), Amount::ZERO).unwrap();
    assert_eq!(f.status, TxStatus::Success);
    // Replayed against the next batch (whose executor again posts a wrong
    // leaf 1), the old dispute proves nothing there.
    let (exec1, es1, leaves1, hashes1) = posted_wrong_leaf(&mut e, 1, 10 * HOUR);
    let h1 = e.d.batch_header(1).unwrap();
    let replay = entry_dispute(1, &es[1], &leaves[1], proof(1));
    let r = e.d.primary_call(&watcher, "dispute_entry", replay, bond).unwrap();
    assert!(reverted(&r).ends_with(&EntryDisputeError::WrongWitness(1).to_string()), "{:?}", r.status);
    assert_eq!(e.d.batch_header(1).unwrap(), h1);
    assert!(node_active(&e, &exec1.address()));
    let p1 = tcr_proof(&d, 1, &hashes1, &posted(&leaves1), 1).unwrap();
    let r = e.d.primary_call(&watcher, "dispute_entry", entry_dispute(1, &es1[1], &leaves1[1], p1), bond).unwrap();
    assert_eq!(r.status, TxStatus::Success, "batch 1's own witness wins");
}

/// Issue 11: a dispute after the window is refused with a typed error
/// ([`EntryDisputeError::WindowClosed`]) and changes nothing, from the same
/// instant `finalize` may settle the batch, even when the posted leaf is
/// wrong: a batch is either disputable or final, never both, so a late
/// challenge cannot race `finalize`. One millisecond earlier the same
/// dispute wins (the control that the refusal is the window's doing).
#[test]
fn disputes_after_the_window_are_refused_and_change_nothing() {
    for early in [false, true] {
        let mut e = funded();
        for i in 0..3 {
            e.d.set_validator(i, ValidatorBehaviour::Colluding);
        }
        let (exec, es, leaves, hashes) = posted_wrong_leaf(&mut e, 0, 8 * HOUR);
        let watcher = trader(3);
        let d = e.d.cfg.params.domain;
        let bond = e.d.cfg.challenge_bond;
        let h0 = e.d.batch_header(0).unwrap();
        let until = h0.complete_at.unwrap() + e.d.cfg.window_ms();
        e.d.set_time(if early { until - 1 } else { until });
        let one = entry_dispute(0, &es[1], &leaves[1], tcr_proof(&d, 0, &hashes, &posted(&leaves), 1).unwrap());
        let whole = e.d.dispute_args(0, vec![]).unwrap();
        if early {
            let r = e.d.primary_call(&watcher, "dispute_entry", one, bond).unwrap();
            assert_eq!(r.status, TxStatus::Success, "inside the window the dispute wins: {:?}", r.status);
            assert!(!node_active(&e, &exec.address()));
            continue;
        }
        for (method, a) in [("dispute_entry", one), ("dispute", whole)] {
            let (total0, w0) = (primary_total(&e.d, ACCOUNTS), wallet(&e, &watcher.address()));
            let r = e.d.primary_call(&watcher, method, a, bond).unwrap();
            // The typed error, whatever the block's exact timestamp (>= until).
            let why = EntryDisputeError::WindowClosed { batch: 0, until, now: 0 }.to_string();
            let prefix = why.trim_end_matches('0');
            assert!(reverted(&r).contains(prefix), "{method}: {:?} is not {prefix}", r.status);
            assert!(r.events.is_empty());
            assert_eq!(e.d.batch_header(0).unwrap(), h0, "{method}: the batch is unchanged");
            assert_eq!(wallet(&e, &watcher.address()), w0 - r.fee.0, "{method}: only the fee is paid");
            assert_eq!(primary_total(&e.d, ACCOUNTS), total0);
            assert!(node_active(&e, &exec.address()), "{method}: the executor keeps its deposit");
        }
    }
}
