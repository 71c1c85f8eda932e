//! Issue 11: the settlement state off the primary chain. The primary chain
//! keeps a state root per batch; `finalize` accepts the posted root in
//! O(1); anyone rebuilds the state from chain data; `withdraw` proves the
//! caller's record against the latest settled root.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::{contract_address, StateRead, TxStatus};
use gridledger_rollup::exec::{execute_leaves, OffChain};
use gridledger_rollup::primary::{BatchState, WithdrawArgs, WithdrawError};
use gridledger_rollup::roles::{ExecutorBehaviour, Target};
use gridledger_rollup::smt::SmtProof;
use gridledger_rollup::state::{participant_proof, post_state, state_root};
use gridledger_rollup::types::{coins, IorTx, Participant, Tcr};
use gridledger_rollup::{args, IOR_PRIMARY_ID};

fn settled_root(e: &Env) -> String {
    e.d.primary.chain.view(IOR_PRIMARY_ID, "settled_root", &[]).unwrap().as_str().unwrap().to_string()
}

fn finalize_gas(e: &Env) -> Vec<u64> {
    e.d.gas.iter().filter(|g| g.method == "finalize" && g.success).map(|g| g.gas).collect()
}

/// What a refused withdrawal must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    contract: Amount,
    queue: serde_json::Value,
    pending: serde_json::Value,
    participant: Participant,
}

fn snapshot(e: &Env, k: &KeyPair) -> Snapshot {
    let st = e.d.primary.chain.state();
    let who = borsh::to_vec(&k.address()).unwrap();
    Snapshot {
        contract: st.account(&contract_address(IOR_PRIMARY_ID)).balance,
        queue: e.d.primary.chain.view(IOR_PRIMARY_ID, "queue", &args(&(0u64, 0u64))).unwrap()["len"].clone(),
        pending: e.d.primary.chain.view(IOR_PRIMARY_ID, "pending", &who).unwrap(),
        participant: e.d.participant(&k.address()).unwrap(),
    }
}

/// A withdrawal that must be refused with `why`, changing nothing but the
/// caller's nonce and fee.
fn refused(e: &mut Env, k: &KeyPair, a: WithdrawArgs, why: WithdrawError) {
    let before = snapshot(e, k);
    let wallet = e.d.primary.chain.state().account(&k.address()).balance;
    let r = e.d.primary_call(k, "withdraw", args(&a), Amount::ZERO).unwrap();
    assert_eq!(reverted(&r), format!("reverted: {why}"));
    assert!(r.events.is_empty());
    assert_eq!(snapshot(e, k), before, "a refused withdrawal changes nothing");
    assert_eq!(e.d.primary.chain.state().account(&k.address()).balance.0, wallet.0 - r.fee.0);
}

/// `finalize` costs the same for a batch of one entry, of six, and for an
/// empty batch that only applies queued funds: it writes the posted root
/// and nothing per entry. The state anyone rebuilds from chain data
/// (`PrimaryReader::settled_state`) hashes to the settled root.
#[test]
fn finalize_is_constant_and_the_state_is_rebuilt_from_chain_data() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    // Seven ATs lock 7 × 1.5 coin of the seller (D_s and the undo reserve).
    assert_eq!(e.d.fund(&s, coins(1)).unwrap().status, TxStatus::Success);
    settle_funding(&mut e);
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let six: Vec<(KeyPair, IorTx)> =
        (0..6).map(|i| (b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR + i * 30 * MIN), &s))).collect();
    e.d.submit_block(&six).unwrap();
    assert_eq!(e.d.batch_header(2).unwrap().len(), 6);
    e.d.process(&mut rng(0)).unwrap();
    // An empty batch that only applies a queued fund.
    assert_eq!(e.d.fund(&s, coins(1)).unwrap().status, TxStatus::Success);
    assert_eq!(e.d.flush(&trader(3)).unwrap().status, TxStatus::Success);
    e.d.process(&mut rng(0)).unwrap();
    let gas = finalize_gas(&e);
    assert_eq!(gas.len(), 4, "{gas:?}");
    // The first settlement creates the settled-root and counter slots;
    // every later one costs the same whatever the batch holds.
    assert!(gas[1..].iter().all(|g| *g == gas[1]), "finalize gas per batch of 1, 6 and 0 entries: {gas:?}");
    // The state rebuilt from the chain alone is the driver's and hashes to
    // the settled root; the buyer's seven agreements are open in it.
    let rebuilt = e.d.reader().settled_state().unwrap();
    assert_eq!(rebuilt, e.d.settled_state().unwrap());
    assert_eq!(state_root(&rebuilt).to_string(), settled_root(&e));
    assert_eq!(rebuilt.agreements.len(), 7);
    assert_eq!(rebuilt.participants[&b.address()].balance, Amount(10_000_000 - 7 * 1_100_000));
    assert_eq!(rebuilt.participants[&s.address()].balance, Amount(12_000_000 - 7 * 1_500_000));
}

/// Item B: `withdraw` pays against a Merkle proof of the caller's record
/// under the latest settled root. The same proof twice, a proof of a
/// made-up balance, more than the balance, and an old proof after the
/// balance changed are refused with typed errors, changing nothing.
#[test]
fn withdraw_proves_the_settled_balance_once() {
    let mut e = funded();
    settle_funding(&mut e);
    let k = trader(0);
    let (record, proof) = participant_proof(&e.d.settled_state().unwrap(), &k.address()).unwrap();
    assert_eq!(record.balance, coins(10));
    let a =
        |amount: Amount, record: Participant, proof: &SmtProof| WithdrawArgs { amount, record, proof: proof.clone() };
    let root: Hash32 = settled_root(&e).parse().unwrap();
    refused(
        &mut e,
        &k,
        a(coins(11), record, &proof),
        WithdrawError::Insufficient { available: coins(10), amount: coins(11) },
    );
    let inflated = Participant { balance: coins(1_000), ..record };
    refused(&mut e, &k, a(coins(100), inflated, &proof), WithdrawError::NotProved(root));
    refused(&mut e, &k, a(Amount::ZERO, record, &proof), WithdrawError::ZeroAmount);
    let other = trader(1);
    refused(&mut e, &other, a(coins(1), record, &proof), WithdrawError::NotProved(root));
    // Paid at once; the debit is queued for the next batch.
    let wallet = e.d.primary.chain.state().account(&k.address()).balance;
    let r = e.d.primary_call(&k, "withdraw", args(&a(coins(4), record, &proof)), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(e.d.primary.chain.state().account(&k.address()).balance.0, wallet.0 + coins(4).0 - r.fee.0);
    assert_eq!(e.d.participant(&k.address()).unwrap().balance, coins(6));
    // The same proof again: refused while the debit is pending.
    refused(&mut e, &k, a(coins(4), record, &proof), WithdrawError::Pending);
    // Once a batch applied the debit, the old proof is stale.
    e.d.flush(&trader(3)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let root: Hash32 = settled_root(&e).parse().unwrap();
    refused(&mut e, &k, a(coins(4), record, &proof), WithdrawError::NotProved(root));
    // A fresh proof of the new balance works.
    assert_eq!(e.d.withdraw(&k, coins(6)).unwrap().status, TxStatus::Success);
    assert_eq!(e.d.participant(&k.address()).unwrap().balance, Amount::ZERO);
}

/// Item B: a proof against a post-state root that never settled is
/// refused: while the batch is in its window, and after a dispute
/// overturned it. The thief is an executor that redirects an ST's payouts
/// to itself and posts the root its leaves leave.
#[test]
fn withdraw_against_an_unsettled_or_overturned_root_is_refused() {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&s, &IorTx::St(st(&t, 1000, true, Some(&b)))).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(1).unwrap();
    let i = e.d.executors.iter().position(|(k, _)| k.address() == input.header.executor).unwrap();
    let thief = e.d.executors[i].0.clone();
    e.d.set_executor(i, ExecutorBehaviour::StealPayouts);
    let step = e.d.executors[i].1.on_batch(&input);
    for c in step.calls.into_iter().filter(|c| c.target == Target::Primary) {
        assert_eq!(e.d.primary_call(&thief, c.method, c.args, Amount::ZERO).unwrap().status, TxStatus::Success);
    }
    // The thief's post-state, as its posted leaves leave it.
    let posted: Vec<Tcr> = e.d.leaves(1).unwrap().unwrap().into_iter().map(|l| l.tcr).collect();
    let p = e.d.cfg.params.clone();
    let (theirs, _) = post_state(&p, &input.full_state(&p), &input.entries, &posted).unwrap();
    assert_eq!(Some(state_root(&theirs)), e.d.batch_header(1).unwrap().post_root, "the posted root");
    let (record, proof) = participant_proof(&theirs, &thief.address()).unwrap();
    assert!(record.balance > Amount::ZERO, "the payouts it took");
    let a = || WithdrawArgs { amount: record.balance, record, proof: proof.clone() };
    let root: Hash32 = settled_root(&e).parse().unwrap();
    refused(&mut e, &thief, a(), WithdrawError::NotProved(root));
    // Validators dispute; the chain settles the batch with its own root.
    e.d.set_executor(i, ExecutorBehaviour::Honest);
    let own = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    let call = gridledger_rollup::roles::dispute_call(&p, &e.d.batch_input(1).unwrap(), &own);
    let bond = e.d.cfg.challenge_bond;
    assert_eq!(e.d.primary_call(&b, call.method, call.args, bond).unwrap().status, TxStatus::Success);
    e.d.process(&mut rng(0)).unwrap();
    let h = e.d.batch_header(1).unwrap();
    assert!(h.overturned && matches!(h.state, BatchState::Settled { disputed: true, .. }));
    let root: Hash32 = settled_root(&e).parse().unwrap();
    assert_ne!(root, state_root(&theirs));
    refused(&mut e, &thief, a(), WithdrawError::NotProved(root));
}

/// Item C: a per-entry state dispute. The executor posts honest verdicts
/// but claims, in leaf 1, a state after entry 1 that mints it 10 coin
/// (the batch's post-state root is that leaf's). A disputer brings entry
/// 1, its leaf and witness, leaf 0 with its witness, and the records entry
/// 1 touches proved against the state before it (whose root is leaf 0's
/// post-state root); the chain applies
/// leaf 1's effects and compares roots. Disputes that prove nothing — the
/// correct leaf 0, the wrong state before entry 1, a missing previous
/// leaf, a broken witness, no bond — are refused with typed errors and
/// change nothing; the right one overturns the batch, and the chain
/// settles the honest root.
#[test]
fn a_per_entry_state_dispute_overturns_a_wrong_post_root() {
    use gridledger_rollup::primary::{DisputeState, EntryDisputeError, SubmitTcrs};
    use gridledger_rollup::state::fill_post_roots;
    use gridledger_rollup::types::{entry_hash, tcr_proof};
    let mut e = funded_with_window(60_000);
    let (b, s, b2) = (trader(0), trader(1), trader(2));
    let t1 = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 400, 8 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(0).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut honest = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut honest);
    let tcrs: Vec<Tcr> = honest.iter().map(|l| l.tcr.clone()).collect();
    let (after0, _) = post_state(&p, &full, &input.entries, &tcrs[..1]).unwrap();
    let (mut minted, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    minted.participants.insert(exec.address(), Participant { balance: coins(10), reputation: p.rs });
    let mut posted: Vec<_> = honest.iter().map(|l| l.posted()).collect();
    posted[1].post_root = state_root(&minted);
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let sub = SubmitTcrs {
        batch: 0,
        entry_hashes: hashes.clone(),
        leaves: posted.clone(),
        post_root: posted[1].post_root,
        burned,
    };
    assert_eq!(e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap().status, TxStatus::Success);
    let proof = |i: usize| tcr_proof(&p.domain, 0, &hashes, &posted, i).unwrap();
    let prev = Some((input.entries[0].clone(), posted[0].clone(), proof(0)));
    // The records entry `i` touches, proved against `state`'s root (for
    // entry 0 with the batch's queue accounts).
    let dispute = |i: usize, prev, state: gridledger_rollup::exec::PreState| DisputeState {
        batch: 0,
        entry: input.entries[i].clone(),
        leaf: posted[i].clone(),
        proof: proof(i),
        prev,
        witness: gridledger_rollup::state::entry_witness(
            &state,
            if i == 0 { &input.queue } else { &[] },
            &input.entries[i],
            &posted[i].tcr,
            p.meter_step_s,
        ),
    };
    let bond = e.d.cfg.challenge_bond;
    let settled = input.state.clone().unwrap();
    // A witness bringing a record the entry does not touch, or leaving
    // one out (its proof covers the records brought only), is refused.
    let mut extra = dispute(1, prev.clone(), after0.clone());
    extra.witness.records.push(gridledger_rollup::state::StateRecord::Participant(
        trader(3).address(),
        Participant { balance: coins(1), reputation: p.rs },
    ));
    let mut short = dispute(1, prev.clone(), after0.clone());
    short.witness = gridledger_rollup::state::witness(
        &after0,
        &[gridledger_rollup::state::RecordKey::Participant(s.address())].into_iter().collect(),
    );
    let mut broken = dispute(1, prev.clone(), after0.clone());
    broken.proof.siblings[0] = Hash32::ZERO;
    let cases = [
        (dispute(0, None, settled.clone()), bond, EntryDisputeError::CorrectTransition(0)),
        (dispute(1, prev.clone(), settled.clone()), bond, EntryDisputeError::WrongPreState(1)),
        (dispute(1, None, after0.clone()), bond, EntryDisputeError::WrongPreState(1)),
        (extra, bond, EntryDisputeError::WrongPreState(1)),
        (short, bond, EntryDisputeError::WrongPreState(1)),
        (broken, bond, EntryDisputeError::WrongWitness(0)),
        (
            dispute(1, prev.clone(), after0.clone()),
            Amount(1),
            EntryDisputeError::BondTooSmall { bond, attached: Amount(1) },
        ),
    ];
    let watcher = trader(3);
    for (d, value, why) in cases {
        let h = e.d.batch_header(0).unwrap();
        let r = e.d.primary_call(&watcher, "dispute_state", args(&d), value).unwrap();
        assert_eq!(reverted(&r), format!("reverted: {why}"));
        assert_eq!(e.d.batch_header(0).unwrap(), h, "a refused dispute changes nothing");
        assert!(node_active(&e, &exec.address()));
    }
    // The validators' own check picks the same dispute.
    let input = e.d.batch_input(0).unwrap();
    let call = gridledger_rollup::roles::dispute_call(&p, &input, &honest);
    assert_eq!(call.method, "dispute_state");
    let r = e.d.primary_call(&watcher, "dispute_state", args(&dispute(1, prev, after0)), bond).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    assert!(e.d.batch_header(0).unwrap().overturned);
    assert!(!node_active(&e, &exec.address()), "the executor's deposit is forfeited");
    e.d.process(&mut rng(0)).unwrap();
    let (honest_post, _) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    assert_eq!(settled_root(&e), state_root(&honest_post).to_string(), "the chain settled the honest root");
    assert_eq!(e.d.participant(&exec.address()).unwrap().balance, Amount::ZERO);
}
