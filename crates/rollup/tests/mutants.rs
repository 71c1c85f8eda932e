//! Mutation sensitivity of the IOR defences (issue 11): each bug planted
//! behind the `mutants` feature ([`Mutation`]) must make at least one of
//! these scenarios fail, and every scenario must hold without a bug (the
//! control). Each scenario is the attack the defence exists for.
//!
//! Run with `cargo test -p gridledger-rollup --features mutants --test mutants`.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::mutation::Scenario;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::driver::DriverError;
use gridledger_rollup::exec::{execute_batch, execute_leaves, OffChain};
use gridledger_rollup::mutants::{plant, Mutation};
use gridledger_rollup::primary::{BatchState, DisputeEntry, SubmitTcrs};
use gridledger_rollup::roles::{SmartMeter, ValidatorBehaviour};
use gridledger_rollup::state::{post_state, state_root};
use gridledger_rollup::types::{
    coins, entry_hash, tcr_proof, Effect, IorTx, Outcome, Participant, StRejection, StSettlement,
};

/// The theft of issue 11 item 1 with every validator silent: the victim
/// keeps its coin and the thief loses its deposit.
fn forged_effects_never_settle() -> bool {
    let mut e = funded();
    for i in 0..3 {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let (victim, b, s) = (trader(0), trader(1), trader(2));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    let (mut tcrs, exec) = honest_tcrs(&mut e, 0);
    tcrs[0].effects.push(Effect::Lock { who: victim.address(), amount: coins(10) });
    tcrs[0].effects.push(Effect::Pay { to: exec.address(), amount: coins(10) });
    post(&mut e, &exec, 0, tcrs);
    // The victim disputes the wrong leaf with its witness (its meter checks
    // every TCR naming it); then the window passes and anyone finalizes.
    let input = e.d.batch_input(0).unwrap();
    let own = execute_leaves(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let call = gridledger_rollup::roles::dispute_call(&e.d.cfg.params, &input, &own);
    let _ = e.d.primary_call(&victim, call.method, call.args, e.d.cfg.challenge_bond).unwrap();
    let h = e.d.batch_header(0).unwrap();
    e.d.set_time(h.complete_at.unwrap() + e.d.cfg.window_ms());
    let fin = e.d.finalize_args(0).unwrap();
    let _ = e.d.primary_call(&trader(3), "finalize", fin, Amount::ZERO).unwrap();
    let kept = e.d.participant(&victim.address()).unwrap().balance == coins(10);
    kept && !node_active(&e, &exec.address())
}

/// A bonded watcher disputes a correct TCR with a fabricated leaf (a wrong
/// verdict the executor never posted) and a witness for nothing: refused,
/// the honest executor keeps its deposit.
fn fabricated_leaf_is_refused() -> bool {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    let (tcrs, exec) = honest_tcrs(&mut e, 0);
    post(&mut e, &exec, 0, tcrs);
    let input = e.d.batch_input(0).unwrap();
    let mut leaves = execute_leaves(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    leaves[0].tcr.outcome = Outcome::StRejected(StRejection::SettledInBatch);
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let mut proof = tcr_proof(&e.d.cfg.params.domain, 0, &hashes, &posted, 0).unwrap();
    proof.siblings.push(Hash32::ZERO);
    let entry = input.entries[0].clone();
    let a = args(&DisputeEntry { batch: 0, entry, pre: leaves[0].pre.clone(), leaf: posted[0].clone(), proof });
    let r = e.d.primary_call(&trader(3), "dispute_entry", a, e.d.cfg.challenge_bond).unwrap();
    r.status != TxStatus::Success && node_active(&e, &exec.address())
}

/// A meter's delegates are its private random choice (§3.3.4): over many
/// draws every validator is picked, so no one validator can be bribed in
/// advance.
fn delegates_are_unpredictable() -> bool {
    let mut e = funded();
    let (victim, b, s) = (trader(0), trader(1), trader(2));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.primary.seal();
    let mut input = e.d.batch_input(0).unwrap();
    let own = execute_batch(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let mut forged = own.clone();
    forged[0].effects.push(Effect::Lock { who: victim.address(), amount: coins(10) });
    input.tcrs = Some(forged);
    let validators: Vec<_> = e.d.validators.iter().map(|(k, _)| k.address()).collect();
    let mut meter = SmartMeter { owner: victim.address(), params: e.d.cfg.params.clone(), delegates: 1 };
    let mut picked = std::collections::BTreeSet::new();
    for seed in 0..30 {
        for d in meter.on_tcrs_computed(&input, &own, &validators, &mut rng(seed)).delegations {
            picked.insert(d.validator);
        }
    }
    picked.len() == validators.len()
}

/// An ST without the buyer's signature before `DL` is deferred, nobody
/// penalised; an agreement cannot be expired before `DL + expiry`.
fn deadlines_hold() -> bool {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit(&b, &at(&t, &s)).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit(&s, &IorTx::St(st(&t, 1000, true, None))).unwrap();
    e.d.submit(&b, &IorTx::Expire(t.clone())).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap();
    let outcomes: Vec<Outcome> = out.into_iter().flat_map(|s| s.outcomes).collect();
    let deferred =
        outcomes.iter().any(|o| matches!(o, Outcome::StRejected(StRejection::AwaitingBuyerSignature { .. })));
    let not_expired = outcomes.iter().any(|o| matches!(o, Outcome::StRejected(StRejection::NotExpired { .. })));
    let settled_late = outcomes.contains(&Outcome::StSettled(StSettlement::LateBuyerSignature));
    deferred && not_expired && !settled_late
}

/// Issue 11: an executor posts honest leaves beside a post-state root
/// that mints it 10 coin. The assigned validator's whole-batch dispute
/// (leaves equal, root not) overturns it: the settled state is the honest
/// one and the executor holds nothing.
fn a_wrong_post_root_is_overturned() -> bool {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(0).unwrap();
    let p = e.d.cfg.params.clone();
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    let tcrs: Vec<_> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (mut minted, burned) = post_state(&p, &input.full_state(&p), &input.entries, &tcrs).unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    minted.participants.insert(exec.address(), Participant { balance: coins(10), reputation: p.rs });
    // Its one leaf claims the minted state as the state after the entry.
    leaves[0].post_root = state_root(&minted);
    let sub = SubmitTcrs {
        batch: 0,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        leaves: leaves.iter().map(|l| l.posted()).collect(),
        post_root: state_root(&minted),
        burned,
    };
    if e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let settled = e.d.process(&mut rng(0)).is_ok();
    settled
        && e.d.batch_header(0).is_ok_and(|h| matches!(h.state, BatchState::Settled { disputed: true, .. }))
        && e.d.participant(&exec.address()).is_ok_and(|x| x.balance == Amount::ZERO)
}

/// Issue 11, sparse state tree: a bonded watcher disputes an honest
/// state transition with a witness that leaves the seller's record out
/// (a proof of the records it brings only), hoping the chain reads a default
/// balance in its place and finds the seller unable to lock its deposit.
/// Refused: the chain requires every record the entry touches, proved
/// present or absent; the honest executor keeps its deposit.
fn a_state_dispute_leaving_a_record_out_is_refused() -> bool {
    use gridledger_rollup::primary::{posted_burn, DisputeState};
    use gridledger_rollup::state::{entry_keys, fill_post_roots, queue_keys, witness, RecordKey};
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    e.d.submit(&b, &at(&terms(&b, &s, Amount(200_000), 500, 8 * HOUR), &s)).unwrap();
    e.d.primary.seal();
    let input = e.d.batch_input(1).unwrap();
    let p = e.d.cfg.params.clone();
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &input.full_state(&p), &input.entries, &mut leaves);
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let Some(burned) = posted_burn(&posted) else { return false };
    let sub = SubmitTcrs {
        batch: 1,
        entry_hashes: hashes.clone(),
        leaves: posted.clone(),
        post_root: posted[0].post_root,
        burned,
    };
    if e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let mut keys = entry_keys(&input.entries[..1], std::slice::from_ref(&posted[0].tcr), e.d.cfg.params.meter_step_s);
    keys.extend(queue_keys(&input.queue));
    // The disputer's proof covers the records it brings and nothing else:
    // not the seller's, nor the absence of the agreement and the claim.
    let settled = input.state.clone().unwrap();
    keys.retain(|k| k.record(&settled).is_some() && *k != RecordKey::Participant(s.address()));
    let d = DisputeState {
        batch: 1,
        entry: input.entries[0].clone(),
        leaf: posted[0].clone(),
        proof: tcr_proof(&p.domain, 1, &hashes, &posted, 0).unwrap(),
        prev: None,
        witness: witness(&settled, &keys),
    };
    let r = e.d.primary_call(&trader(3), "dispute_state", args(&d), e.d.cfg.challenge_bond).unwrap();
    r.status != TxStatus::Success && node_active(&e, &exec.address()) && !e.d.batch_header(1).unwrap().overturned
}

/// Attack r4/r5: a seller's long sale settled before the nested sale it
/// overlaps (out of deadline order); the nested sale's ST reaches the long
/// one's slots, the long one's claim moves off the slot the nested one
/// needs, and both are delivered (`exec::realloc`).
fn nested_sales_settled_out_of_order_are_both_covered() -> bool {
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 250, 8 * HOUR);
    let mut t2 = terms(&b2, &s, Amount(200_000), 80, 8 * HOUR);
    t2.dt_end = t2.dt_start + 5 * MIN;
    t2.dl = t2.dt_end + 15 * MIN;
    agreed(&mut e, &s, &[(&b1, &t1), (&b2, &t2)]);
    let long = metered_st(&t1, &b1, 300, vec![1000; 6]);
    let nested = metered_st(&t2, &b2, 300, vec![1000]);
    e.d.submit(&s, &IorTx::St(long)).unwrap();
    e.d.submit(&s, &IorTx::StReach(nested, 5)).unwrap();
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect();
    out == vec![Outcome::StSettled(StSettlement::SellerDelivered); 2]
}

/// A claimed-slot record is pruned only once no entry can read it: the
/// ST recorded at `DL + expiry` still sees the earlier claim of its first
/// slot (`common::claim_at_the_horizon`).
fn a_claim_at_the_horizon_sees_its_slot() -> bool {
    claim_at_the_horizon().1 == vec![Outcome::StSettled(StSettlement::SellerShortfall)]
}

/// Attack r6 [1]: A's expiry settles as agreed (its own `O_b = 1`, no
/// readings); B's period overlaps A's and ends later; the seller's
/// genuine export covers only one of them: B's arbitration finds it sold.
fn an_expired_agreed_sale_is_not_sold_again() -> bool {
    use gridledger_rollup::types::BuyerOpinion;
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + 5 * MIN);
    tb.dl = ta.dl + 2 * HOUR;
    agreed(&mut e, &s, &[(&a, &ta), (&b, &tb)]);
    e.d.submit(&a, &IorTx::Opinion(BuyerOpinion { terms: ta.clone(), ob: true })).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit(&a, &IorTx::Expire(ta.clone())).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.submit(&s, &IorTx::St(metered_st(&tb, &b, 300, vec![1200, 1200, 1200, 1200, 1200, 0]))).unwrap();
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect();
    out == vec![Outcome::StSettled(StSettlement::SellerShortfall)]
}

/// A sybil's ST of 750 grid slots for an agreement no AT named, sent
/// after its period: refused at recording, so it occupies none of the
/// batch's slot records.
fn an_unbacked_st_is_refused_at_recording() -> bool {
    let mut e = funded();
    e.d.set_time(10 * 24 * HOUR);
    let sybil = fee_wallets(&mut e, 1, 6_000).remove(0);
    let t = past_terms(&e, KeyPair::from_seed("nobody").address(), &sybil, 750, e.d.now());
    let tx = filler_st(&e, &t, 750);
    let r = e.d.submit_block(&[(sybil, tx)]).unwrap();
    matches!(&r[0].status, TxStatus::Reverted(w) if w.contains("no agreement"))
}

/// Heavy STs of sybil pairs (their ATs recorded) fill the STs' share of a
/// batch's gas, then 100 sybils send opinions no one owes them, then the
/// buyer its `O_b`: the buyer's lands in the reserve.
fn an_owed_opinion_finds_the_reserve() -> bool {
    let mut e = funded();
    let (txs, ..) = reserve_race(&mut e);
    let receipts = e.d.submit_block(&txs).unwrap();
    receipts.last().is_some_and(|r| r.status == TxStatus::Success)
}

/// Attack r7 [2]: the seller settles B's dispute first and wins it on the
/// whole export; A's expiry then settles as agreed (A's own `O_b = 1`) on
/// the same export. The seller gets nothing for A and loses its deposit:
/// it ends as when A settled first (B then loses), not paid twice.
fn a_sale_settled_after_a_dispute_on_its_export_is_undone() -> bool {
    use gridledger_rollup::types::BuyerOpinion;
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + 5 * MIN);
    tb.dl = ta.dl + 2 * HOUR;
    let before = e.d.participant(&s.address()).unwrap().balance;
    agreed(&mut e, &s, &[(&a, &ta), (&b, &tb)]);
    e.d.submit(&a, &IorTx::Opinion(BuyerOpinion { terms: ta.clone(), ob: true })).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.submit(&s, &IorTx::St(metered_st(&tb, &b, 300, vec![1200, 1200, 1200, 1200, 1200, 0]))).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    e.d.submit(&a, &IorTx::Expire(ta.clone())).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    let p = &e.d.cfg.params;
    // B: paid, its deposit back and B's penalty; A: nothing, its deposit
    // and the fine (out of A's undo reserve, returned with B's): as when A
    // settles first and B's arbitration loses, paid for one sale, one D_s
    // lost.
    let b_paid = before.0 + tb.payment().unwrap().0 + p.penalty().0;
    e.d.participant(&s.address()).unwrap().balance.0 == b_paid - p.penalty().0 - p.ds.0
}

/// Attack r8 [3]: the seller settles B's dispute first, withdraws its whole
/// free balance, then settles A as agreed: A's undo still takes its fine
/// (the undo reserve A's AT locked), so the seller ends where it ends when
/// A settles first.
fn the_undos_fine_is_not_escaped_by_an_empty_free_balance() -> bool {
    let a_first = seller_wealth_after_both_sales(false);
    a_first.is_some() && seller_wealth_after_both_sales(true) == a_first
}

/// A buyer's expiry after `O_b = 1` may undo the sale and fine its seller
/// (attack r8 [1]): while the batch holding it is unsettled, the seller
/// cannot withdraw; after it settles, it can.
fn a_seller_waits_for_its_buyers_expiry() -> bool {
    let mut e = funded();
    let (a, s) = (trader(0), trader(1));
    let t = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    agreed(&mut e, &s, &[(&a, &t)]);
    e.d.submit(&a, &IorTx::Opinion(gridledger_rollup::types::BuyerOpinion { terms: t.clone(), ob: true })).unwrap();
    e.d.process(&mut rng(0)).unwrap();
    e.d.set_time(t.dl + e.d.cfg.params.expiry_ms + MIN);
    let recorded = e.d.submit(&a, &IorTx::Expire(t.clone())).unwrap().status == TxStatus::Success;
    let meanwhile = e.d.withdraw(&s, Amount(1)).unwrap().status == TxStatus::Success;
    e.d.process(&mut rng(0)).unwrap();
    let after = e.d.withdraw(&s, Amount(1)).unwrap().status == TxStatus::Success;
    recorded && !meanwhile && after
}

/// A won claim beside [`gridledger_rollup::exec::MAX_PERIODS_PER_SLOT`]
/// tiny claims of distinct periods on its slot is covered (attack r8 [2]).
fn a_ninth_period_on_a_slot_is_covered() -> bool {
    use gridledger_rollup::exec::{realloc, PreState, SlotAlloc, MAX_PERIODS_PER_SLOT};
    use gridledger_rollup::types::SlotKey;
    let k = SlotKey { seller: trader(1).address(), dt_start: 8 * HOUR, dt_end: 8 * HOUR + 5 * MIN };
    let mut st = PreState::default();
    let mut a = SlotAlloc { export: Some(1_000), ..Default::default() };
    for j in 0..MAX_PERIODS_PER_SLOT as u64 {
        a.by_period.insert((k.dt_start - (j + 1) * 5 * MIN, k.dt_end), 1);
    }
    st.claimed.insert(k, MAX_PERIODS_PER_SLOT as u128);
    st.slots.insert(k, a);
    realloc(&st, &[(k, 1_000)], &[], 500).is_some()
}

/// A ninth tiny claim of a distinct period that may take from either of
/// two slots moves to the second rather than being pinned on the first,
/// so a later claim of the first slot's whole export is covered (attack
/// r9 [5]).
fn a_ninth_period_moves_aside() -> bool {
    use gridledger_rollup::exec::{realloc, PreState, SlotAlloc, MAX_PERIODS_PER_SLOT};
    use gridledger_rollup::types::SlotKey;
    let s = trader(1).address();
    let k0 = SlotKey { seller: s, dt_start: 8 * HOUR, dt_end: 8 * HOUR + 5 * MIN };
    let k1 = SlotKey { seller: s, dt_start: k0.dt_end, dt_end: k0.dt_end + 5 * MIN };
    let mut st = PreState::default();
    let mut a = SlotAlloc { export: Some(1_000), ..Default::default() };
    for j in 0..MAX_PERIODS_PER_SLOT as u64 {
        a.by_period.insert((k0.dt_start - (j + 1) * 5 * MIN, k1.dt_end), 1);
    }
    st.claimed.insert(k0, MAX_PERIODS_PER_SLOT as u128);
    st.slots.insert(k0, a);
    let Some(ninth) = realloc(&st, &[(k0, 1_000), (k1, 1_000)], &[], 1) else { return false };
    for (k, total, alloc) in ninth.slots {
        st.claimed.insert(k, total);
        st.slots.insert(k, alloc);
    }
    realloc(&st, &[(k0, 1_000)], &[k1], 1_000).is_some()
}

/// Attack r9 [1]: a stranger records an expiry naming a trader as its
/// seller, for a period off the metering grid (no claim slots, so no
/// agreement mark is needed to record it). No AT of those terms was
/// recorded, so the trader withdraws in the next block all the same.
fn a_strangers_expiry_freezes_no_one() -> bool {
    use gridledger_core::Energy;
    use gridledger_rollup::types::AgreementTerms;
    let mut e = funded();
    settle_funding(&mut e);
    let (mallory, victim) = (trader(3), trader(1));
    let t = AgreementTerms {
        ep: Amount(200_000),
        em: Energy(1),
        buyer: mallory.address(),
        seller: victim.address(),
        dt_start: 1,
        dt_end: 2,
        dl: 2,
    };
    let recorded = e.d.submit(&mallory, &IorTx::Expire(t)).unwrap().status == TxStatus::Success;
    recorded && e.d.withdraw(&victim, Amount(1)).unwrap().status == TxStatus::Success
}

/// A buyer reopens the key of its open agreement with other terms its
/// seller signed (`sc_ds_at_reopen`, attack r10 [1]), bringing the settled
/// record of the agreement as its witness: refused at recording.
fn an_open_agreements_key_is_not_reopened() -> bool {
    use gridledger_rollup::primary::ReopenAt;
    use gridledger_rollup::state::{witness, RecordKey};
    use gridledger_rollup::types::{AgreementTerms, AgreementTx};
    let mut e = funded();
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let x = terms(&b, &s, Amount(200_000), 100, 12 * HOUR);
    e.d.submit(&b, &at(&x, &s)).unwrap();
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect();
    let y = AgreementTerms { ep: Amount(210_000), ..x.clone() };
    let settled = e.d.settled_state().unwrap();
    let w = witness(&settled, &std::collections::BTreeSet::from([RecordKey::Agreement(y.key())]));
    let a = args(&ReopenAt { at: AgreementTx::signed(y, &s), witness: w });
    let r = e.d.primary_call(&b, "sc_ds_at_reopen", a, Amount::ZERO).unwrap();
    out == vec![Outcome::AtAccepted] && r.status != TxStatus::Success
}

/// A buyer whose agreement X (12:00 to 12:05) was accepted and settled
/// records Y, other terms its seller signed for the same key (12:00 to
/// 12:30), after X's period and before Y's end (attack r11 [4]): the key
/// is not reopened, so no second agreement sells X's period again.
fn a_settled_agreements_key_is_not_reopened() -> bool {
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    match x_settled_then_y_quoted(&mut e, &b, &s) {
        Some((y, _)) => e.d.submit(&b, &at(&y, &s)).unwrap().status != TxStatus::Success,
        None => false,
    }
}

/// Pipelined baseline (attack r14 [1]): batch k's executor forges a root
/// minting itself coin; k+1's honest executor posts ahead on the state k
/// really leaves; the forger's accomplice (a bonded challenger) opens
/// k+1's entry 0 against the forged tree. k+1 is judged against the root
/// it claims (the state k really leaves), so the dispute is refused and
/// the honest executor keeps its deposit.
fn an_honest_batch_posted_ahead_is_not_judged_against_a_forged_root() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 6);
    let Some(k) = (first..first + 5).find(|b| executor_of(&e, *b).address() != executor_of(&e, b + 1).address()) else {
        return false;
    };
    for b in first..k {
        let (t, x) = honest_tcrs(&mut e, b);
        if record_tcrs(&mut e, &x, b, t).status != TxStatus::Success {
            return false;
        }
    }
    let forger = executor_of(&e, k).address();
    let forged = post_minting_root(&mut e, k, forger);
    let honest = executor_of(&e, k + 1);
    let (t1, _) = honest_tcrs(&mut e, k + 1);
    if record_tcrs(&mut e, &honest, k + 1, t1).status != TxStatus::Success {
        return false;
    }
    let a = state_dispute_on(&e, k + 1, &forged);
    let r = e.d.primary_call(&trader(3), "dispute_state", a, e.d.cfg.challenge_bond).unwrap();
    r.status != TxStatus::Success && !e.d.batch_header(k + 1).unwrap().overturned && node_active(&e, &honest.address())
}

/// Pipelined (attack r14 [2]): batch k+1, posted ahead of an honest k
/// with a root minting the attacker coin, is disputed by its validator
/// half a window after its own posting, k still open: the dispute lands
/// (the windows overlap) and the forged root never settles.
fn a_batch_posted_ahead_is_disputable_from_its_posting() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (k, k1) = (first, first + 1);
    let (t, x) = honest_tcrs(&mut e, k);
    if record_tcrs(&mut e, &x, k, t).status != TxStatus::Success {
        return false;
    }
    e.d.set_time(e.d.now() + 60_000);
    post_minting_root(&mut e, k1, trader(3).address());
    let (validator, calls) = validator_step(&mut e, k1);
    let w = e.d.cfg.window_ms();
    e.d.set_time(e.d.batch_header(k1).unwrap().complete_at.unwrap() + w / 2);
    if e.d.batch_header(k).unwrap().state != BatchState::Open {
        return false;
    }
    for c in calls {
        if e.d.primary_call(&validator, c.method, c.args, Amount::ZERO).unwrap().status != TxStatus::Success {
            return false;
        }
    }
    e.d.batch_header(k1).unwrap().overturned
}

/// Pipelined (attack r14 [2], [3]): batches k and k+1 both post roots
/// minting the attacker coin, k+1 with plain `sc_cr` (claiming k's posted
/// root); k is overturned and executed on chain, so k+1 built on a root
/// that did not settle. k+1 cannot be judged (void), and its `finalize`
/// takes it back instead of settling the forged root.
fn a_batch_built_on_an_overturned_root_is_taken_back() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (k, k1) = (first, first + 1);
    post_minting_root(&mut e, k, trader(3).address());
    let (x1, a, _) = minting_posting(&e, k1, trader(3).address());
    if e.d.primary_call(&x1, "sc_cr", a, Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let (validator, calls) = validator_step(&mut e, k);
    for c in calls {
        if e.d.primary_call(&validator, c.method, c.args, Amount::ZERO).unwrap().status != TxStatus::Success {
            return false;
        }
    }
    let exec = executor_of(&e, k);
    if e.d.primary_call(&exec, "finalize", e.d.finalize_args(k).unwrap(), Amount::ZERO).unwrap().status
        != TxStatus::Success
    {
        return false;
    }
    let w = e.d.cfg.window_ms();
    e.d.set_time(e.d.batch_header(k1).unwrap().complete_at.unwrap().max(e.d.now()) + w);
    let r = e.d.primary_call(&exec, "finalize", e.d.finalize_args(k1).unwrap(), Amount::ZERO).unwrap();
    let h = e.d.batch_header(k1).unwrap();
    r.status == TxStatus::Success && h.state == BatchState::Open && h.tcr_root.is_none()
}

/// Pipelined (attack r15 [1]): batch k+1, posted ahead with a root
/// minting the attacker coin, is disclosed by the attacker's accomplice
/// (committed, with a bond) more than half a window after its posting,
/// batch k still open. The forgery is overturned, and the honest assigned
/// validator keeps its deposit: its turn starts only once k settled.
fn a_watcher_is_not_slashed_before_its_turn_on_a_batch_posted_ahead() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (k, k1) = (first, first + 1);
    let (t, x) = honest_tcrs(&mut e, k);
    if record_tcrs(&mut e, &x, k, t).status != TxStatus::Success {
        return false;
    }
    let attacker = trader(3);
    let Ok(before) = e.d.state_before(k1) else { return false };
    post_minting_root(&mut e, k1, attacker.address());
    let validator = e.d.batch_header(k1).unwrap().validator;
    let w = e.d.cfg.window_ms();
    e.d.set_time(e.d.batch_header(k1).unwrap().complete_at.unwrap() + w / 2 + HOUR);
    let a = state_dispute_on(&e, k1, &before);
    let c = gridledger_rollup::types::dispute_commitment(
        &gridledger_rollup::types::dispute_digest("dispute_state", &a),
        &attacker.address(),
    );
    if e.d.primary_call(&attacker, "commit_dispute", args(&c), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let r = e.d.primary_call(&attacker, "dispute_state", a, e.d.cfg.challenge_bond).unwrap();
    r.status == TxStatus::Success
        && e.d.batch_header(k).unwrap().state == BatchState::Open
        && e.d.batch_header(k1).unwrap().overturned
        && node_active(&e, &validator)
}

/// `sc_cr_on` of `batch`'s honest leaves by `key`, claiming `pre_root`.
fn post_claiming(e: &mut Env, key: &KeyPair, batch: u64, pre_root: Hash32) -> TxStatus {
    let (t, _) = honest_tcrs(e, batch);
    let entries = e.d.entries(batch).unwrap();
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(e, batch, t, entries)).unwrap();
    let on = gridledger_rollup::primary::SubmitTcrsOn { pre_root, tcrs };
    e.d.primary_call(key, "sc_cr_on", args(&on), Amount::ZERO).unwrap().status
}

/// Pipelined (attack r15 [3]): batch k+1's executor posts it ahead on a
/// made-up root (void). Replacing it with another void posting is refused,
/// so the void poster cannot restart its window; an honest stand-in
/// replaces it at once, claiming the root k posted.
fn a_void_posting_is_replaced_only_by_one_on_the_predecessors_root() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 2);
    let (k, k1) = (first, first + 1);
    let (t, x) = honest_tcrs(&mut e, k);
    if record_tcrs(&mut e, &x, k, t).status != TxStatus::Success {
        return false;
    }
    let void = executor_of(&e, k1);
    if post_claiming(&mut e, &void, k1, Hash32([7; 32])) != TxStatus::Success {
        return false;
    }
    let again = post_claiming(&mut e, &void, k1, Hash32([8; 32]));
    let Some(honest) = e.d.executors.iter().map(|(k, _)| k.clone()).find(|k| k.address() != void.address()) else {
        return false;
    };
    let (t1, _) = honest_tcrs(&mut e, k1);
    let replaced = record_tcrs(&mut e, &honest, k1, t1).status;
    again != TxStatus::Success
        && replaced == TxStatus::Success
        && e.d.batch_header(k1).unwrap().posted_by == Some(honest.address())
}

/// Baseline driver (attack r15 [4]): both executors steal payouts, every
/// validator is honest; batch k holds an AT, k+1 the seller's agreed ST,
/// which the driver posts ahead. Its watcher checks k+1 when it is posted
/// and the theft is overturned.
fn a_thieving_batch_posted_ahead_is_overturned_by_the_driver() -> bool {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let mut e = or_funded();
    let (b, s) = (trader(0), trader(1));
    let start = (e.d.now() / HOUR + 2) * HOUR;
    let t = terms(&b, &s, Amount(200_000), 500, start);
    let (k, _) = e.d.reader().progress().unwrap();
    e.d.submit_block(&[(b.clone(), at(&t, &s))]).unwrap();
    e.d.set_time(t.dt_end + MIN);
    e.d.submit_block(&[(s.clone(), agreed_st(&t, 1000, &b))]).unwrap();
    e.d.primary.seal();
    e.d.set_executor(0, ExecutorBehaviour::StealPayouts);
    e.d.set_executor(1, ExecutorBehaviour::StealPayouts);
    if e.d.process(&mut rng(7)).is_err() {
        return false;
    }
    let h = e.d.batch_header(k + 1).unwrap();
    h.overturned || matches!(h.state, BatchState::Settled { disputed: true, .. })
}

/// `who` commits to the dispute `a` (`method`) in one block and sends it
/// with the challenge bond in the next.
fn committed_dispute(e: &mut Env, who: &KeyPair, method: &str, a: Vec<u8>) -> TxStatus {
    let c = gridledger_rollup::types::dispute_commitment(
        &gridledger_rollup::types::dispute_digest(method, &a),
        &who.address(),
    );
    if e.d.primary_call(who, "commit_dispute", args(&c), Amount::ZERO).unwrap().status != TxStatus::Success {
        return TxStatus::Reverted("commitment refused".into());
    }
    e.d.primary_call(who, method, a, e.d.cfg.challenge_bond).unwrap().status
}

/// Baseline driver (attack r16 [1]): batch k+1's executor posts a root
/// minting its accomplice 10 coin, on the true pre-root, before batch k
/// is posted and before the driver runs. The driver's watcher checks that
/// posting inside its window and the forgery never settles.
fn a_batch_posted_ahead_before_the_driver_runs_is_watched() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 2);
    let minted = post_minting_root(&mut e, k + 1, trader(3).address());
    if e.d.process(&mut rng(16)).is_err() {
        return false;
    }
    let h = e.d.batch_header(k + 1).unwrap();
    h.post_root != Some(state_root(&minted)) && matches!(h.state, BatchState::Settled { .. })
}

/// The baseline with three executors (four traders, 0–2 funded, funding
/// settled; three validators; a week's window).
fn or3_funded() -> Env {
    let mut e = open(config(gridledger_rollup::driver::Mode::ConventionalOr, 4, 3, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    e
}

/// Pipelined (attack r16 [2]): batch k is posted with the true roots but a
/// wrong leaf input and overturned while k−1 is open; its honest successor
/// claims k's posted (true) post-state root. No other executor replaces
/// that successor on a made-up root: voidness waits for the root k
/// settles with.
fn an_honest_successor_of_an_overturned_true_root_stands() -> bool {
    let mut e = or3_funded();
    let first = record_batches(&mut e, 3);
    let (k0, k, k1) = (first, first + 1, first + 2);
    let (t, x) = honest_tcrs(&mut e, k0);
    if record_tcrs(&mut e, &x, k0, t).status != TxStatus::Success {
        return false;
    }
    let forger = executor_of(&e, k);
    let dispute = post_right_roots_wrong_inputs(&mut e, k);
    let (t, x) = honest_tcrs(&mut e, k1);
    if record_tcrs(&mut e, &x, k1, t).status != TxStatus::Success {
        return false;
    }
    if committed_dispute(&mut e, &trader(2), "dispute_entry", dispute) != TxStatus::Success
        || !e.d.batch_header(k).unwrap().overturned
    {
        return false;
    }
    let others: Vec<KeyPair> =
        e.d.executors.iter().map(|(k, _)| k.clone()).filter(|k| k.address() != forger.address()).collect();
    others.iter().all(|key| post_claiming(&mut e, key, k1, Hash32([9; 32])) != TxStatus::Success)
        && e.d.batch_header(k1).unwrap().posted_by == Some(x.address())
}

/// Pipelined (attack r16 [3]): executor X posts batch a honestly (every
/// batch up to b − 1 is posted), then forfeits its deposit (batch b, its
/// own too, posted ahead with a wrong leaf input, is overturned). Its
/// standing posting of a is void at once: another active executor takes
/// it over on the root a must build on.
fn a_forfeited_posters_posting_ahead_is_taken_over() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 6);
    // The first batch `a` whose executor X is assigned a later one, `b`.
    let pair = (first..first + 6).find_map(|a| {
        let x = executor_of(&e, a).address();
        (a + 1..first + 6).find(|b| executor_of(&e, *b).address() == x).map(|b| (a, b))
    });
    let Some((a, b)) = pair else { return false };
    let x = executor_of(&e, a);
    for a in first..b {
        let (t, y) = honest_tcrs(&mut e, a);
        if record_tcrs(&mut e, &y, a, t).status != TxStatus::Success {
            return false;
        }
    }
    let dispute = post_right_roots_wrong_inputs(&mut e, b);
    if committed_dispute(&mut e, &trader(2), "dispute_entry", dispute) != TxStatus::Success
        || node_active(&e, &x.address())
    {
        return false;
    }
    let Some(other) = e.d.executors.iter().map(|(k, _)| k.clone()).find(|k| node_active(&e, &k.address())) else {
        return false;
    };
    let (t, _) = honest_tcrs(&mut e, a);
    record_tcrs(&mut e, &other, a, t).status == TxStatus::Success
        && e.d.batch_header(a).unwrap().posted_by == Some(other.address())
}

/// `batch`'s honest leaves but leaf 0's: wrong inputs (the buyer without
/// coin) and an extra 1-unit burn.
fn wrong_inputs_tcrs(e: &mut Env, batch: u64) -> SubmitTcrs {
    use gridledger_rollup::state::fill_post_roots;
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let buyer = input.entries[0].tx.terms().buyer;
    leaves[0].pre.participants.get_mut(&buyer).expect("the buyer's record").balance = Amount::ZERO;
    leaves[0].tcr.effects.push(Effect::Burn(Amount(1)));
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let burned = gridledger_rollup::primary::posted_burn(&posted).unwrap();
    SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted.last().unwrap().post_root,
        leaves: posted,
        burned,
    }
}

/// Pipelined (attack r16 [4]): the next batch's executor posts it void
/// with a wrong leaf; the honest validator commits to a whole-batch
/// dispute; the executor replaces its posting with the correct one before
/// the dispute lands. The dispute is refused and the validator keeps its
/// deposit.
fn a_dispute_of_a_replaced_posting_is_refused() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let on = gridledger_rollup::primary::SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: wrong_inputs_tcrs(&mut e, k) };
    if e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let input = e.d.batch_input(k).unwrap();
    let Some(i) = e.d.validators.iter().position(|(v, _)| v.address() == input.header.validator) else {
        return false;
    };
    let step = e.d.validators[i].1.watch(&input);
    let validator = e.d.validators[i].0.clone();
    let calls: Vec<_> =
        step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary).collect();
    if calls.iter().map(|c| c.method).collect::<Vec<_>>() != ["commit_dispute", "dispute"] {
        return false;
    }
    if e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap().status
        != TxStatus::Success
    {
        return false;
    }
    let (t, _) = honest_tcrs(&mut e, k);
    if record_tcrs(&mut e, &exec, k, t).status != TxStatus::Success {
        return false;
    }
    let d = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap().status;
    d != TxStatus::Success && node_active(&e, &validator.address())
}

/// Pipelined (attack r17): the next batch's executor posts `tcrs` void (a
/// made-up claimed pre-root); its assigned validator checks the posting
/// and, when `commit`, commits to its whole-batch dispute; then the
/// executor replaces its posting with the same `tcrs` on the settled root.
/// Returns the validator's key and its calls (commitment, dispute), or
/// `None` where a step failed.
fn void_posting_replaced_with_same_leaves(
    e: &mut Env,
    k: u64,
    tcrs: SubmitTcrs,
    commit: bool,
    before_replacing: impl FnOnce(&mut Env),
) -> Option<(KeyPair, Vec<gridledger_rollup::roles::Call>)> {
    use gridledger_rollup::primary::SubmitTcrsOn;
    let exec = executor_of(e, k);
    let true_root = state_root(&e.d.state_before(k).ok()?);
    let void = SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: tcrs.clone() };
    if e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).ok()?.status != TxStatus::Success {
        return None;
    }
    let input = e.d.batch_input(k).ok()?;
    let i = e.d.validators.iter().position(|(v, _)| v.address() == input.header.validator)?;
    let step = e.d.validators[i].1.watch(&input);
    let validator = e.d.validators[i].0.clone();
    let calls: Vec<_> =
        step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary).collect();
    if calls.iter().map(|c| c.method).collect::<Vec<_>>() != ["commit_dispute", "dispute"] {
        return None;
    }
    if commit
        && e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).ok()?.status
            != TxStatus::Success
    {
        return None;
    }
    before_replacing(e);
    let on = SubmitTcrsOn { pre_root: true_root, tcrs };
    if e.d.primary_call(&exec, "sc_cr_on", args(&on), Amount::ZERO).ok()?.status != TxStatus::Success {
        return None;
    }
    (e.d.batch_header(k).ok()?.posted_by == Some(exec.address())).then_some((validator, calls))
}

/// Whether batch `k` was proved wrong (overturned, or settled at once
/// with the chain's run).
fn disproved(e: &Env, k: u64) -> bool {
    e.d.batch_header(k).is_ok_and(|h| h.overturned || matches!(h.state, BatchState::Settled { disputed: true, .. }))
}

/// Pipelined (attack r17 [1]): the honest validator committed to its
/// whole-batch dispute of a void posting; the executor replaces it with
/// the same forged leaves on the settled root; the validator's committed
/// dispute overturns the replacement.
fn a_dispute_committed_before_a_forged_replacement_overturns_it() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let tcrs = wrong_inputs_tcrs(&mut e, k);
    let Some((validator, calls)) = void_posting_replaced_with_same_leaves(&mut e, k, tcrs, true, |_| {}) else {
        return false;
    };
    let s = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).map(|r| r.status);
    s.is_ok_and(|s| s == TxStatus::Success) && disproved(&e, k) && node_active(&e, &validator.address())
}

/// Pipelined (attack r17 [2]): a void posting stands for 0.6 of a window,
/// then its executor replaces it with the same forged leaves; a bonded
/// challenger overturns the replacement at once. The assigned validator's
/// turn runs from the replacement, so it is not late and keeps its
/// deposit.
fn a_watcher_is_not_late_for_a_replacement() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let tcrs = wrong_inputs_tcrs(&mut e, k);
    let later = |e: &mut Env| {
        let t = e.d.now() + e.d.cfg.window_ms() * 6 / 10;
        e.d.set_time(t);
    };
    let Some((validator, calls)) = void_posting_replaced_with_same_leaves(&mut e, k, tcrs, false, later) else {
        return false;
    };
    let bond = e.d.cfg.challenge_bond;
    let s = e.d.primary_call(&trader(2), calls[1].method, calls[1].args.clone(), bond).map(|r| r.status);
    s.is_ok_and(|s| s == TxStatus::Success) && disproved(&e, k) && node_active(&e, &validator.address())
}

/// Baseline (attack r16 [5]): a void posting and its replacement in one
/// block; the driver reads the replacement's leaves (they hash to the
/// standing root) and settles the batch, and the settled state is read.
fn a_void_posting_replaced_in_one_block_is_read() -> bool {
    use gridledger_ledger::ChainClient;
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let (t, _) = honest_tcrs(&mut e, k);
    let tcrs: SubmitTcrs = borsh::from_slice(&tcr_args(&e, k, t, e.d.entries(k).unwrap())).unwrap();
    let true_root = state_root(&e.d.state_before(k).unwrap());
    let void =
        gridledger_rollup::primary::SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs: wrong_inputs_tcrs(&mut e, k) };
    let right = gridledger_rollup::primary::SubmitTcrsOn { pre_root: true_root, tcrs };
    let n = e.d.primary.next_nonce(&exec.address());
    let chain_id = e.d.primary.chain_id();
    let gas = gridledger_rollup::driver::DRIVER_GAS_LIMIT;
    let id = gridledger_rollup::IOR_PRIMARY_ID;
    let one = gridledger_ledger::devnet::call(&exec, chain_id, n, id, "sc_cr_on", args(&void), Amount::ZERO, gas);
    let two = gridledger_ledger::devnet::call(&exec, chain_id, n + 1, id, "sc_cr_on", args(&right), Amount::ZERO, gas);
    if e.d.primary.submit(&one).is_err() || e.d.primary.submit(&two).is_err() {
        return false;
    }
    if ChainClient::seal(&mut e.d.primary).is_err() {
        return false;
    }
    let settled = e.d.process(&mut rng(5));
    settled.is_ok_and(|v| v.iter().any(|s| s.batch == k)) && e.d.participant(&trader(0).address()).is_ok()
}

/// Batch `k`'s honest `sc_cr` arguments.
fn honest_submit(e: &mut Env, k: u64) -> SubmitTcrs {
    let (t, _) = honest_tcrs(e, k);
    borsh::from_slice(&tcr_args(e, k, t, e.d.entries(k).unwrap())).unwrap()
}

/// Pipelined (attack r18 [1]): a bonded challenger commits to a frivolous
/// whole-batch dispute before the batch's first posting; the executor
/// posts the correct TCRs once. The revealed dispute is rejected and its
/// bond pays the executor (no replacement happened).
fn a_dispute_committed_before_the_first_posting_risks_its_bond() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    e.d.primary.seal();
    let who = trader(2);
    let exec = executor_of(&e, k);
    let a = whole(&e, k, Vec::new());
    let c = gridledger_rollup::types::dispute_commitment(
        &gridledger_rollup::types::dispute_digest("dispute", &a),
        &who.address(),
    );
    if e.d.primary_call(&who, "commit_dispute", args(&c), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let sub = honest_submit(&mut e, k);
    if e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let bond = e.d.cfg.challenge_bond.0;
    let exec_before = wealth(&e, &exec);
    // A rejected bonded dispute succeeds as a call: its bond moves.
    let _ = e.d.primary_call(&who, "dispute", a, e.d.cfg.challenge_bond).unwrap();
    !disproved(&e, k) && wealth(&e, &exec) >= exec_before + bond
}

/// Baseline driver (attack r18 [2]): the next batch's executor posts its
/// honest leaves on a made-up pre-root before the run; an honest executor
/// replaces the void posting at once, so the batch settles about a window
/// after it, not two.
fn a_void_posting_of_the_next_batch_is_replaced_at_once() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 1);
    let exec = executor_of(&e, k);
    let tcrs = honest_submit(&mut e, k);
    let void = gridledger_rollup::primary::SubmitTcrsOn { pre_root: Hash32([7; 32]), tcrs };
    if e.d.primary_call(&exec, "sc_cr_on", args(&void), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let Some(void_at) = e.d.batch_header(k).unwrap().complete_at else { return false };
    let w = e.d.cfg.window_ms();
    if !e.d.process(&mut rng(18)).is_ok_and(|v| v.iter().any(|s| s.batch == k)) {
        return false;
    }
    matches!(e.d.batch_header(k).unwrap().state, BatchState::Settled { at, .. } if at < void_at + w + w / 2)
}

/// Baseline driver (attack r20 [5]): batch k+1's executor posts a root
/// minting its accomplice 10 coin ahead of its unposted predecessor, and
/// k+1's assigned watcher colludes. The smart meters, their delegates
/// and the bonded challenge check the posting inside its own window, so
/// the forged root never settles.
fn a_forgery_ahead_with_a_colluding_watcher_never_settles() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 3);
    let b = first + 1;
    let v = e.d.batch_header(b).unwrap().validator;
    let Some(i) = e.d.validators.iter().position(|(k, _)| k.address() == v) else { return false };
    e.d.set_validator(i, ValidatorBehaviour::Colluding);
    let minted = post_minting_root(&mut e, b, trader(3).address());
    let _ = e.d.process(&mut rng(20));
    let h = e.d.batch_header(b).unwrap();
    !(matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(state_root(&minted)))
}

/// Baseline driver (attack r20 [3]): the executor of batch first+1
/// withholds every batch it is assigned among ten; honest stand-ins post
/// them as soon as the contract allows and posting ahead goes on past
/// them, so every batch settles within two and a half windows of the
/// last one closing.
fn a_silent_executors_batches_settle_within_two_windows_and_a_half() -> bool {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let mut e = or_funded();
    let n = 10;
    let first = record_batches(&mut e, n);
    let w = e.d.cfg.window_ms();
    let x = executor_of(&e, first + 1);
    let Some(i) = e.d.executors.iter().position(|(k, _)| k.address() == x.address()) else { return false };
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let closed_last = e.d.batch_header(first + n - 1).unwrap().closed_at.unwrap_or(e.d.now());
    if !e.d.process(&mut rng(20)).is_ok_and(|r| r.len() as u64 == n) {
        return false;
    }
    (first..first + n).all(|b| {
        matches!(e.d.batch_header(b).unwrap().state, BatchState::Settled { at, .. } if at <= closed_last + 2 * w + w / 2)
    })
}

/// Baseline driver (attack r21 [1]): executor X is assigned the next
/// batch to settle and a later batch b; it posts b ahead with a root
/// minting its accomplice 10 coin, then withholds the first. The driver
/// watches b's posting before it waits out the withheld batch's window,
/// so the forged root never settles (every validator honest).
fn a_forgery_ahead_behind_a_withheld_batch_never_settles() -> bool {
    use gridledger_rollup::roles::ExecutorBehaviour;
    for shift in 0..6u64 {
        let mut e = or_funded();
        if shift > 0 {
            record_batches(&mut e, shift);
            if e.d.process(&mut rng(21)).is_err() {
                return false;
            }
        }
        let first = record_batches(&mut e, 8);
        let x = executor_of(&e, first);
        let Some(b) = (first + 1..first + 8).find(|b| executor_of(&e, *b).address() == x.address()) else {
            continue;
        };
        let minted = post_minting_root(&mut e, b, trader(3).address());
        let Some(i) = e.d.executors.iter().position(|(k, _)| k.address() == x.address()) else { return false };
        e.d.set_executor(i, ExecutorBehaviour::Silent);
        let _ = e.d.process(&mut rng(21));
        let h = e.d.batch_header(b).unwrap();
        return !(matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(state_root(&minted)));
    }
    false
}

/// Baseline (attack r22 [1]): executor X posts the next batch to settle
/// with a root minting its accomplice 10 coin, eleven batches recorded
/// after it; the run starts with 5 s of that posting's window left. The
/// driver watches it before the blocks that post the batches ahead run
/// the window out, so the forged root never settles (every validator
/// honest).
fn a_forged_posting_of_the_batch_to_settle_never_settles() -> bool {
    let mut e = or_funded();
    let fin = record_batches(&mut e, 12);
    let minted = post_minting_root(&mut e, fin, trader(3).address());
    let Some(start) = e.d.batch_header(fin).unwrap().complete_at else { return false };
    e.d.set_time(start + e.d.cfg.window_ms() - 5_000);
    let _ = e.d.process(&mut rng(22));
    let h = e.d.batch_header(fin).unwrap();
    !(matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(state_root(&minted)))
}

/// Baseline (attack r23 [1]): three other executors each post a forgery
/// ahead (a batch after `fin` assigned to each) just before X posts a
/// forged root of `fin` minting an accomplice 10 coin; the run starts 7 s
/// before `fin`'s window ends, every validator honest. The guard's
/// disputes go together (commitments in one block, reveals in the next),
/// so none of the forged roots settles.
fn disputes_ahead_leave_fins_window() -> bool {
    let mut e = open(config(gridledger_rollup::driver::Mode::ConventionalOr, 4, 5, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    let fin = record_batches(&mut e, 12);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let mut picked: Vec<(u64, KeyPair)> = Vec::new();
    for b in fin + 1..next {
        let y = executor_of(&e, b);
        if y.address() != x && !picked.iter().any(|(_, p)| p.address() == y.address()) && picked.len() < 3 {
            picked.push((b, y));
        }
    }
    if picked.len() != 3 {
        return false;
    }
    let to = trader(3).address();
    let mut forged = Vec::new();
    for (b, y) in &picked {
        e.d.primary.seal();
        let (input, full, leaves, burned) = honest_leaves(&e, *b);
        let minted = minted_state(&e, &input, &full, &leaves, to);
        let sub = submit_of(*b, &input, &leaves, burned, Some(state_root(&minted)));
        let pre_root = state_root(&e.d.state_before(*b).unwrap());
        let on = gridledger_rollup::primary::SubmitTcrsOn { pre_root, tcrs: sub };
        let r = e.d.primary_call(y, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
        if r.status != TxStatus::Success {
            return false;
        }
        forged.push((*b, state_root(&minted)));
    }
    let minted = post_minting_root(&mut e, fin, to);
    forged.push((fin, state_root(&minted)));
    let Some(start) = e.d.batch_header(fin).unwrap().complete_at else { return false };
    e.d.set_time(start + e.d.cfg.window_ms() - 7_000);
    let _ = e.d.process(&mut rng(23));
    forged.iter().all(|(b, root)| {
        let h = e.d.batch_header(*b).unwrap();
        !(matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(*root))
    })
}

/// Baseline (attack r24 [1]): validator V is assigned `fin` and a batch
/// ahead, and colludes (silent). Executor Y forges that batch ahead (a
/// root minting an accomplice 10 coin), posted first so its window ends
/// first; X then forges `fin` the same way. The run starts 3 s before Y's
/// window ends: only the backup checkers (meters, delegates, bonded
/// challenge) can overturn the forgeries, and their disputes of both go
/// together (commitments in one block, the earlier-ending reveal first in
/// the next), so neither forged root settles.
fn backup_disputes_leave_a_forgery_aheads_window() -> bool {
    let mut e = or_funded_with(3);
    let fin = record_batches(&mut e, 60);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let v = e.d.batch_header(fin).unwrap().validator;
    let Some(i) = e.d.validators.iter().position(|(k, _)| k.address() == v) else { return false };
    e.d.set_validator(i, ValidatorBehaviour::Colluding);
    let Some(b) =
        (fin + 1..next).find(|b| e.d.batch_header(*b).unwrap().validator == v && executor_of(&e, *b).address() != x)
    else {
        return false;
    };
    let y = executor_of(&e, b);
    let to = trader(3).address();
    let ahead = forge_ahead_unsealed(&mut e, &y, b, to);
    let minted = post_minting_root(&mut e, fin, to);
    let Some(start) = e.d.batch_header(b).unwrap().complete_at else { return false };
    e.d.set_time(start + e.d.cfg.window_ms() - 3_000);
    let _ = e.d.process(&mut rng(24));
    settled_root_of(&e, b) != Some(state_root(&ahead)) && settled_root_of(&e, fin) != Some(state_root(&minted))
}

/// `batch`'s assigned validator's commitment and dispute of its standing
/// posting, and the validator's key.
fn watcher_calls(e: &mut Env, batch: u64) -> Option<(KeyPair, Vec<gridledger_rollup::roles::Call>)> {
    let input = e.d.batch_input(batch).unwrap();
    let i = e.d.validators.iter().position(|(k, _)| k.address() == input.header.validator)?;
    let step = e.d.validators[i].1.watch(&input);
    let calls: Vec<_> =
        step.calls.into_iter().filter(|c| c.target == gridledger_rollup::roles::Target::Primary).collect();
    (calls.len() == 2).then(|| (e.d.validators[i].0.clone(), calls))
}

/// Baseline (attack r20 [1]): executor X, assigned batches j and j+1,
/// posts j+1 ahead with a minting root; its watcher commits to the
/// dispute; X then posts j on a made-up root (j+1 is void) and replaces
/// j+1 on it. The revealed dispute is judged against the voided forged
/// posting it was committed to: X forfeits its deposit and the watcher
/// is paid.
fn a_caught_forgery_voided_by_its_forger_still_costs_the_deposit() -> bool {
    let mut e = or_funded();
    let first = record_batches(&mut e, 8);
    let Some(j) = (first..first + 6).find(|j| executor_of(&e, *j).address() == executor_of(&e, j + 1).address()) else {
        return false;
    };
    let x = executor_of(&e, j);
    post_minting_root(&mut e, j + 1, trader(3).address());
    let Some((w, calls)) = watcher_calls(&mut e, j + 1) else { return false };
    if e.d.primary_call(&w, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let m = Hash32([0x71; 32]);
    let void_j = posting_on(&mut e, j, Hash32([0x70; 32]), Some(m));
    let on_m = posting_on(&mut e, j + 1, m, None);
    for on in [&void_j, &on_m] {
        if e.d.primary_call(&x, "sc_cr_on", args(on), Amount::ZERO).unwrap().status != TxStatus::Success {
            return false;
        }
    }
    let before = wealth(&e, &w);
    let r = e.d.primary_call(&w, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    r.status == TxStatus::Success && !node_active(&e, &x.address()) && wealth(&e, &w) > before
}

/// Baseline (attack r19 [1]): a frivolous whole-batch dispute committed
/// to while batch k+1's correct posting ahead stood, revealed after a
/// colluding executor voided and replaced that posting and an honest
/// executor posted the same correct TCRs again, loses its bond.
fn a_frivolous_dispute_of_a_posting_posted_again_loses_its_bond() -> bool {
    let mut e = or_funded();
    let k = record_batches(&mut e, 2);
    let x = executor_of(&e, k);
    let other = e.d.executors.iter().find(|(a, _)| a.address() != x.address()).unwrap().0.clone();
    let true_k = state_root(&e.d.state_before(k).unwrap());
    let true_k1 = state_root(&e.d.state_before(k + 1).unwrap());
    let honest_k1 = posting_on(&mut e, k + 1, true_k1, None);
    let poster = executor_of(&e, k + 1);
    let c = trader(2);
    let m1 = Hash32([0x71; 32]);
    let mut steps = vec![(poster, honest_k1)];
    if e.d.primary_call(&steps[0].0, "sc_cr_on", args(&steps[0].1), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    let a = whole(&e, k + 1, Vec::new());
    let cm = gridledger_rollup::types::dispute_commitment(
        &gridledger_rollup::types::dispute_digest("dispute", &a),
        &c.address(),
    );
    if e.d.primary_call(&c, "commit_dispute", args(&cm), Amount::ZERO).unwrap().status != TxStatus::Success {
        return false;
    }
    steps.clear();
    steps.push((x.clone(), posting_on(&mut e, k, Hash32([0x70; 32]), Some(m1))));
    steps.push((x.clone(), posting_on(&mut e, k + 1, m1, None)));
    steps.push((other.clone(), posting_on(&mut e, k, true_k, None)));
    steps.push((other.clone(), posting_on(&mut e, k + 1, true_k1, None)));
    for (who, on) in &steps {
        if e.d.primary_call(who, "sc_cr_on", args(on), Amount::ZERO).unwrap().status != TxStatus::Success {
            return false;
        }
    }
    let bond = e.d.cfg.challenge_bond;
    let before = wealth(&e, &c);
    let _ = e.d.primary_call(&c, "dispute", a, bond).unwrap();
    !e.d.batch_header(k + 1).unwrap().overturned && before.saturating_sub(wealth(&e, &c)) >= bond.0
}

/// Every validator colludes (silent as watcher and as delegate); a sybil
/// executor forges one batch ahead (a root minting trader 3 10 coin),
/// posted before the run with a week of window left. Returns the env, the
/// forged batch and the minted state.
fn forgery_ahead_every_validator_colluding() -> Option<(Env, u64, gridledger_rollup::exec::PreState)> {
    let mut e = or_funded_with(3);
    for i in 0..e.d.validators.len() {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let fin = record_batches(&mut e, 24);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let b = (fin + 1..next).find(|b| executor_of(&e, *b).address() != x)?;
    let y = executor_of(&e, b);
    let minted = forge_ahead(&mut e, &y, b, trader(3).address());
    Some((e, b, minted))
}

/// Sends `k` the rest of its primary-chain wallet but `keep`, a transfer
/// left pending (`seal` says whether it is sealed now).
fn spend_wallet(e: &mut Env, k: &KeyPair, keep: Amount, seal: bool) {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    let bal = e.d.primary.account(&k.address()).balance;
    let amount = Amount(bal.0 - keep.0 - coins(1).0);
    let to = fresh_keys(79_000, 1)[0].address();
    let nonce = e.d.primary.next_nonce(&k.address());
    let tx = gridledger_ledger::devnet::transfer(k, chain_id, nonce, to, amount, Amount(1));
    e.d.primary.submit(&tx).unwrap();
    if seal {
        e.d.primary.seal().unwrap();
    }
}

/// Baseline (attack r25 [1]): every validator colludes, a forgery ahead;
/// the traders the batch names (whose meters alarm first) hold plenty
/// when the run plans its bonded challenge, but each has a transfer of
/// all but 5 coin (under the 10 coin bond) pending, included with the
/// bond's commitment: the reveal is refused at submission. The next alarmed owners challenge in
/// the next pass; the run completes and the forgery is overturned.
fn a_refused_bond_is_followed_by_the_next_alarmed_owner() -> bool {
    let Some((mut e, b, minted)) = forgery_ahead_every_validator_colluding() else { return false };
    for i in 0..2 {
        spend_wallet(&mut e, &trader(i), coins(5), false);
    }
    let run = e.d.process(&mut rng(25));
    run.is_ok() && e.d.batch_header(b).unwrap().overturned && settled_root_of(&e, b) != Some(state_root(&minted))
}

/// Baseline (attack r25 [2]): every validator colludes, a forgery ahead;
/// the traders the batch names (a forger's sybil pair, whose meters alarm
/// first) hold 5 coin, under one bonded challenge's bond (10 coin). Another alarmed owner challenges; the run completes and
/// the forgery is overturned.
fn a_first_alarmed_owner_that_cannot_bond_is_followed() -> bool {
    let Some((mut e, b, minted)) = forgery_ahead_every_validator_colluding() else { return false };
    for i in 0..2 {
        spend_wallet(&mut e, &trader(i), coins(5), true);
    }
    let run = e.d.process(&mut rng(25));
    run.is_ok() && e.d.batch_header(b).unwrap().overturned && settled_root_of(&e, b) != Some(state_root(&minted))
}

/// Fills the primary chain's mempool with `k`'s junk calls at the lowest
/// gas price until not even a 100-byte call fits.
fn flood_mempool(e: &mut Env, k: &KeyPair) {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    let mut size = gridledger_rollup::driver::MAX_TX_BYTES - 4_096;
    while size >= 100 {
        let nonce = e.d.primary.next_nonce(&k.address());
        let gas = 21_000 + 4 * size as u64 + 10_000;
        let tx = gridledger_ledger::devnet::call(
            k,
            chain_id,
            nonce,
            gridledger_rollup::IOR_PRIMARY_ID,
            "junk",
            vec![0; size],
            Amount::ZERO,
            gas,
        );
        if e.d.primary.submit(&tx).is_err() {
            size /= 2;
        }
    }
}

/// Baseline (attack r25 [3]): executor X withholds the next batch to
/// settle, posted a minting forgery ahead before the run (every validator
/// honest) and fills the primary mempool with junk at the lowest gas
/// price just before it. The guard's disputes outbid the flood: the run
/// completes and the forgery is overturned.
fn a_mempool_flood_does_not_keep_the_guard_out() -> bool {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let mut e = or_funded_with(2);
    let first = record_batches(&mut e, 8);
    let x = executor_of(&e, first);
    let Some(b) = (first + 1..first + 8).find(|b| executor_of(&e, *b).address() == x.address()) else { return false };
    let minted = forge_ahead(&mut e, &x, b, trader(3).address());
    let Some(i) = e.d.executors.iter().position(|(k, _)| k.address() == x.address()) else { return false };
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let flooder = fresh_keys(78_000, 1);
    pay_each(&mut e, &trader(2), &flooder, coins(5_000), 1);
    flood_mempool(&mut e, &flooder[0]);
    let run = e.d.process(&mut rng(25));
    run.is_ok() && e.d.batch_header(b).unwrap().overturned && settled_root_of(&e, b) != Some(state_root(&minted))
}

/// Baseline (attack r26 [3]): every validator colludes, a forgery ahead,
/// and every alarmed owner holds 5 coin, under the 10 coin bond: no
/// check can reach the chain, so the run stops `Unchecked` before the
/// clock passes the posting, and the minting root never settles.
fn a_posting_no_owner_can_bond_against_stops_the_run() -> bool {
    let Some((mut e, b, minted)) = forgery_ahead_every_validator_colluding() else { return false };
    for i in 0..4 {
        spend_wallet(&mut e, &trader(i), coins(5), true);
    }
    let mut stopped = false;
    for i in 0..3 {
        stopped |= matches!(e.d.process(&mut rng(26 + i)), Err(DriverError::Unchecked { batch, .. }) if batch == b);
    }
    stopped && settled_root_of(&e, b) != Some(state_root(&minted))
}

/// Baseline (attack r26 [2]): every party honest but a sybil that fills
/// the primary mempool with junk at the driver's own gas price: each
/// refused driver call is sent again after a seal (the junk included and
/// paid for), and the recorded batches settle.
fn a_flood_at_the_drivers_price_does_not_freeze_settlement() -> bool {
    let mut e = or_funded_with(2);
    record_batches(&mut e, 4);
    let flooder = fresh_keys(78_100, 1);
    pay_each(&mut e, &trader(2), &flooder, coins(5_000), 1);
    flood_mempool(&mut e, &flooder[0]);
    let Ok((_, fin_before)) = e.d.reader().progress() else { return false };
    let run = e.d.process(&mut rng(26));
    let Ok((_, fin_after)) = e.d.reader().progress() else { return false };
    run.is_ok() && fin_after > fin_before
}

/// IOR, 5 s window (attack r27 [2], every path): the executor of a
/// one-AT batch posts a root minting itself 10 coin, a sybil sends 2,400
/// junk calls at twice the driver's gas price, and a `flush` goes out
/// before the run, every validator honest. The flush's blocks stop short
/// of the window and the run overturns the forgery.
fn a_driver_call_behind_junk_leaves_the_ior_window() -> bool {
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    let flooder = fresh_keys(78_200, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&flooder), coins(5_000), 1);
    let Some(batch) = one_at_batch(&mut e) else { return false };
    let (_, sub, _, _) = forged_posting(&e, batch);
    forge_last_root(&mut e, batch);
    if !junk_from(&mut e, &flooder, 2_400, Amount(2)) {
        return false;
    }
    let _ = e.d.flush(&trader(3));
    // The flush's blocks stop short of the window (since attack r29 [2]
    // the contract would also hold a window run out by full blocks open,
    // so the run's outcome alone no longer shows where they stopped).
    let Ok(h) = e.d.batch_header(batch) else { return false };
    let inside = h.complete_at.is_some_and(|t| e.d.now() < t + e.d.cfg.window_ms());
    for i in 0..3 {
        if e.d.process(&mut rng(27 + i)).is_ok() {
            break;
        }
    }
    let Ok(h) = e.d.batch_header(batch) else { return false };
    inside && h.overturned && h.post_root != Some(sub.post_root)
}

const SCENARIOS: [Scenario; 52] = [
    ("forged effects never settle", forged_effects_never_settle),
    ("a fabricated leaf is refused", fabricated_leaf_is_refused),
    ("delegates are unpredictable", delegates_are_unpredictable),
    ("deadlines hold", deadlines_hold),
    ("a wrong post-state root is overturned", a_wrong_post_root_is_overturned),
    ("a state dispute leaving a record out is refused", a_state_dispute_leaving_a_record_out_is_refused),
    ("nested sales settled out of order are both covered", nested_sales_settled_out_of_order_are_both_covered),
    ("a claim at the horizon sees its slot", a_claim_at_the_horizon_sees_its_slot),
    ("an expired agreed sale is not sold again", an_expired_agreed_sale_is_not_sold_again),
    ("an unbacked ST is refused at recording", an_unbacked_st_is_refused_at_recording),
    ("an owed opinion finds the reserve", an_owed_opinion_finds_the_reserve),
    ("a sale settled after a dispute on its export is undone", a_sale_settled_after_a_dispute_on_its_export_is_undone),
    ("a seller waits for its buyer's expiry", a_seller_waits_for_its_buyers_expiry),
    ("a ninth period on a slot is covered", a_ninth_period_on_a_slot_is_covered),
    ("the undo's fine is not escaped by an empty free balance", the_undos_fine_is_not_escaped_by_an_empty_free_balance),
    ("a ninth period moves aside", a_ninth_period_moves_aside),
    ("a stranger's expiry freezes no one", a_strangers_expiry_freezes_no_one),
    ("an open agreement's key is not reopened", an_open_agreements_key_is_not_reopened),
    ("a settled agreement's key is not reopened", a_settled_agreements_key_is_not_reopened),
    (
        "an honest batch posted ahead is not judged against a forged root",
        an_honest_batch_posted_ahead_is_not_judged_against_a_forged_root,
    ),
    ("a batch posted ahead is disputable from its posting", a_batch_posted_ahead_is_disputable_from_its_posting),
    ("a batch built on an overturned root is taken back", a_batch_built_on_an_overturned_root_is_taken_back),
    (
        "a watcher is not slashed before its turn on a batch posted ahead",
        a_watcher_is_not_slashed_before_its_turn_on_a_batch_posted_ahead,
    ),
    (
        "a void posting is replaced only by one on the predecessor's root",
        a_void_posting_is_replaced_only_by_one_on_the_predecessors_root,
    ),
    (
        "a thieving batch posted ahead is overturned by the driver",
        a_thieving_batch_posted_ahead_is_overturned_by_the_driver,
    ),
    ("a batch posted ahead before the driver runs is watched", a_batch_posted_ahead_before_the_driver_runs_is_watched),
    ("an honest successor of an overturned true root stands", an_honest_successor_of_an_overturned_true_root_stands),
    ("a forfeited poster's posting ahead is taken over", a_forfeited_posters_posting_ahead_is_taken_over),
    ("a dispute of a replaced posting is refused", a_dispute_of_a_replaced_posting_is_refused),
    ("a void posting replaced in one block is read", a_void_posting_replaced_in_one_block_is_read),
    (
        "a dispute committed before a forged replacement overturns it",
        a_dispute_committed_before_a_forged_replacement_overturns_it,
    ),
    ("a watcher is not late for a replacement", a_watcher_is_not_late_for_a_replacement),
    (
        "a dispute committed before the first posting risks its bond",
        a_dispute_committed_before_the_first_posting_risks_its_bond,
    ),
    ("a void posting of the next batch is replaced at once", a_void_posting_of_the_next_batch_is_replaced_at_once),
    ("a forgery ahead with a colluding watcher never settles", a_forgery_ahead_with_a_colluding_watcher_never_settles),
    (
        "a silent executor's batches settle within two windows and a half",
        a_silent_executors_batches_settle_within_two_windows_and_a_half,
    ),
    (
        "a caught forgery voided by its forger still costs the deposit",
        a_caught_forgery_voided_by_its_forger_still_costs_the_deposit,
    ),
    (
        "a frivolous dispute of a posting posted again loses its bond",
        a_frivolous_dispute_of_a_posting_posted_again_loses_its_bond,
    ),
    ("a forgery ahead behind a withheld batch never settles", a_forgery_ahead_behind_a_withheld_batch_never_settles),
    ("a forged posting of the batch to settle never settles", a_forged_posting_of_the_batch_to_settle_never_settles),
    ("the guard's disputes ahead leave fin's window", disputes_ahead_leave_fins_window),
    ("the backup disputes leave a forgery ahead's window", backup_disputes_leave_a_forgery_aheads_window),
    ("a refused bond is followed by the next alarmed owner", a_refused_bond_is_followed_by_the_next_alarmed_owner),
    ("a first alarmed owner that cannot bond is followed", a_first_alarmed_owner_that_cannot_bond_is_followed),
    ("a mempool flood does not keep the guard out", a_mempool_flood_does_not_keep_the_guard_out),
    ("a posting no owner can bond against stops the run", a_posting_no_owner_can_bond_against_stops_the_run),
    (
        "a flood at the driver's price does not freeze settlement",
        a_flood_at_the_drivers_price_does_not_freeze_settlement,
    ),
    ("a driver call behind junk leaves the IOR window", a_driver_call_behind_junk_leaves_the_ior_window),
    ("a seller out of deposits passes its buyers on", a_seller_out_of_deposits_passes_its_buyers_on),
    ("junk past the window holds it open for the check", junk_past_the_window_holds_it_open_for_the_check),
    ("a driver call stops inside a posting's window", a_driver_call_stops_inside_a_postings_window),
    ("a seller's one lock goes to the largest fill, not a sliver", a_sellers_one_lock_goes_to_the_largest_fill),
];

/// One block of one AT (trader 0 buys 500 Wh from trader 1, delivered at
/// 9:00) on the secondary chain, its batch recorded on the primary
/// chain: the batch's id, `None` if the block is refused.
fn one_at_batch(e: &mut Env) -> Option<u64> {
    let (b, s) = (trader(0), trader(1));
    let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).ok()?;
    e.d.primary.seal();
    e.d.batch_header(1).map(|h| h.id).ok()
}

/// `n` empty junk calls from `k` at gas price `price`, sent to the
/// mempool, not sealed. False if one is refused.
fn junk_from(e: &mut Env, k: &KeyPair, n: u64, price: Amount) -> bool {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    for _ in 0..n {
        let nonce = e.d.primary.next_nonce(&k.address());
        let id = gridledger_rollup::IOR_PRIMARY_ID;
        let tx = gridledger_ledger::devnet::call(k, chain_id, nonce, id, "junk", vec![], Amount::ZERO, 40_000);
        let tx = gridledger_ledger::Transaction { gas_price: price, ..tx.tx }.sign(k);
        if e.d.primary.submit(&tx).is_err() {
            return false;
        }
    }
    true
}

/// IOR, 5 s window, attack r29 [2] past `MAX_HELD_OPEN_BLOCKS`: every
/// validator colludes, every trader's wallet holds 11 coin, and 4,800
/// junk calls at gas price 2 (16 full blocks) follow a forged posting.
/// The driver's check stops unchecked behind the junk; the forger's own
/// `finalize` after the window is refused (the blocks below it were
/// full), and the next runs overturn the forgery.
fn junk_past_the_window_holds_it_open_for_the_check() -> bool {
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    all_validators_collude(&mut e);
    let ks = fresh_keys(78_400, 2);
    pay_each(&mut e, &trader(2), &ks, coins(2_000), 1);
    for i in 0..4 {
        leave_in_wallet(&mut e, &trader(i), coins(11), 78_500 + i);
    }
    let Some(batch) = one_at_batch(&mut e) else { return false };
    let (exec, sub, _, _) = forged_posting(&e, batch);
    forge_last_root(&mut e, batch);
    for k in &ks {
        if !junk_from(&mut e, k, 2_400, Amount(2)) {
            return false;
        }
    }
    let _ = e.d.process(&mut rng(39));
    let Ok(h) = e.d.batch_header(batch) else { return false };
    if h.state == BatchState::Open && !h.overturned {
        let end = h.complete_at.unwrap_or(0) + e.d.cfg.window_ms();
        if e.d.now() <= end {
            e.d.set_time(end + 1);
        }
        let Ok(a) = e.d.finalize_args(batch) else { return false };
        if e.d.primary_call(&exec, "finalize", a, Amount::ZERO).is_err() {
            return false;
        }
    }
    for i in 0..4 {
        if e.d.process(&mut rng(40 + i)).is_ok() {
            break;
        }
    }
    let Ok(h) = e.d.batch_header(batch) else { return false };
    matches!(h.state, BatchState::Settled { disputed: true, .. }) && h.post_root != Some(sub.post_root)
}

/// IOR, 5 s window (attack r29 [1]): a forged posting waits in the
/// mempool with 1,800 junk calls at the lowest price behind it, and a
/// trader's `fund` goes out while no posting is on chain. The call's
/// blocks stop inside the posting's window (the bound is evaluated again
/// once the posting lands), so its checks still have their turn.
fn a_driver_call_stops_inside_a_postings_window() -> bool {
    use gridledger_ledger::ChainClient as _;
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    let Some(batch) = one_at_batch(&mut e) else { return false };
    let flooder = fresh_keys(78_600, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&flooder), coins(1_000), 1);
    let (exec, sub, _, _) = forged_posting(&e, batch);
    let chain_id = e.d.primary.chain_id();
    let nonce = e.d.primary.next_nonce(&exec.address());
    let id = gridledger_rollup::IOR_PRIMARY_ID;
    let limit = gridledger_rollup::driver::DRIVER_GAS_LIMIT;
    let tx = gridledger_ledger::devnet::call(&exec, chain_id, nonce, id, "sc_cr", args(&sub), Amount::ZERO, limit);
    if e.d.primary.submit(&tx).is_err() || !junk_from(&mut e, &flooder, 1_800, Amount(1)) {
        return false;
    }
    let _ = e.d.fund(&trader(3), coins(1));
    let Ok(h) = e.d.batch_header(batch) else { return false };
    let Some(posted) = h.complete_at.filter(|_| h.post_root == Some(sub.post_root)) else { return false };
    e.d.now() < posted + e.d.cfg.window_ms()
}

/// Attack r28 [5] on the pure path the day sends: two sellers, the cheaper
/// funded for two ATs' locks, and four buyers its surplus would cover. The
/// buyers it cannot lock for go to the other seller, so the slot trades
/// its whole bound.
fn a_seller_out_of_deposits_passes_its_buyers_on() -> bool {
    use gridledger_rollup::demo::{slot_agreements, slot_bound, Market, ParticipantSpec};
    use gridledger_rollup::types::IorParams;
    let params = IorParams::case_study();
    let spec = |i: usize, ask: u128| ParticipantSpec {
        number: i + 1,
        address: gridledger_ledger::devnet::dev_key(i).address(),
        prosumer: i < 2,
        load_profile: "H0-A".into(),
        load_scale_permille: 1000,
        load_shift_slots: 0,
        pv_area_dm2: 0,
        rotor_diameter_cm: 0,
        ask,
        bid: 250_000,
    };
    let specs: Vec<ParticipantSpec> = (0..6).map(|i| spec(i, if i == 1 { 160_000 } else { 150_000 })).collect();
    let net = [4_000, 4_000, -1_000, -1_000, -1_000, -1_000];
    let lock = params.seller_lock().0;
    let mut budget = vec![2 * lock + lock / 2, coins(50).0, coins(50).0, coins(50).0, coins(50).0, coins(50).0];
    let pairs = slot_agreements(&specs, &net, &Market::default(), &mut budget, &params);
    pairs.iter().map(|p| p.2).sum::<u64>() == slot_bound(&net)
}

/// Attack r30 [1]: a plant that can lock one AT, a 1 Wh buyer bidding
/// high and a 10 kWh buyer bidding less, both able to pay: the plant's one
/// AT goes to the 10 kWh buyer, so the slot trades its whole bound.
fn a_sellers_one_lock_goes_to_the_largest_fill() -> bool {
    use gridledger_rollup::demo::{clear_slot_within, slot_bound, Budgets, Market, ParticipantSpec};
    use gridledger_rollup::types::IorParams;
    let params = IorParams::case_study();
    let spec = |i: usize, ask: u128, bid: u128| ParticipantSpec {
        number: i + 1,
        address: gridledger_ledger::devnet::dev_key(i).address(),
        prosumer: i == 0,
        load_profile: "H0-A".into(),
        load_scale_permille: 1000,
        load_shift_slots: 0,
        pv_area_dm2: 0,
        rotor_diameter_cm: 0,
        ask,
        bid,
    };
    let specs = vec![spec(0, 100_000, 100_000), spec(1, 1, 900_000), spec(2, 1, 200_000)];
    let net = [10_000, -1, -10_000];
    let b =
        Budgets { free: vec![coins(2).0, coins(10).0, coins(10).0], ds: params.ds, seller_lock: params.seller_lock() };
    let pairs = clear_slot_within(&specs, &net, &Market::default(), &b);
    pairs.iter().map(|p| p.2).sum::<u64>() == slot_bound(&net)
}

gridledger_core::mutation_check! {
    plant: plant,
    scenarios: SCENARIOS,
    effects_trusted_as_posted_is_caught: Mutation::EffectsTrusted => "forged effects never settle",
    unchecked_witness_is_caught: Mutation::WitnessUnchecked => "a fabricated leaf is refused",
    predictable_delegates_are_caught: Mutation::DelegatesPredictable => "delegates are unpredictable",
    unslashed_deposit_is_caught: Mutation::DepositNotSlashed => "forged effects never settle",
    unenforced_deadline_is_caught: Mutation::DeadlineUnenforced => "deadlines hold",
    unchecked_post_root_is_caught: Mutation::PostRootUnchecked => "a wrong post-state root is overturned",
    unchecked_absence_is_caught: Mutation::AbsenceUnchecked => "a state dispute leaving a record out is refused",
    skipped_realloc_is_caught: Mutation::ReallocSkipped => "nested sales settled out of order are both covered",
    early_prune_is_caught: Mutation::PruneEarly => "a claim at the horizon sees its slot",
    ignored_sold_demand_is_caught: Mutation::SoldIgnored => "an expired agreed sale is not sold again",
    unbacked_slot_entries_are_caught: Mutation::UnbackedSlotEntries => "an unbacked ST is refused at recording",
    reserve_for_any_opinion_is_caught: Mutation::ReserveForAnyOpinion => "an owed opinion finds the reserve",
    unchecked_paid_sale_is_caught: Mutation::PaidUnchecked => "a sale settled after a dispute on its export is undone",
    free_expiry_seller_is_caught: Mutation::ExpirySellerFree => "a seller waits for its buyer's expiry",
    skipped_undo_reserve_is_caught: Mutation::UndoReserveSkipped => "the undo's fine is not escaped by an empty free balance",
    refused_periods_are_caught: Mutation::PeriodsRefused => "a ninth period on a slot is covered",
    unspilled_periods_are_caught: Mutation::PeriodsNotSpilled => "a ninth period moves aside",
    unchecked_expiry_mark_is_caught: Mutation::ExpiryMarkUnchecked => "a stranger's expiry freezes no one",
    reopened_open_agreement_is_caught: Mutation::ReopenOpenAgreement => "an open agreement's key is not reopened",
    reopened_settled_key_is_caught: Mutation::ReopenSettledKey => "a settled agreement's key is not reopened",
    predecessor_root_dispute_is_caught: Mutation::DisputeAgainstPredecessorRoot => "an honest batch posted ahead is not judged against a forged root",
    dispute_waiting_for_predecessor_is_caught: Mutation::DisputeWaitsForPredecessor => "a batch posted ahead is disputable from its posting",
    settled_void_batch_is_caught: Mutation::VoidSettles => "a batch built on an overturned root is taken back",
    validator_turn_from_posting_is_caught: Mutation::ValidatorTurnFromPosting => "a watcher is not slashed before its turn on a batch posted ahead",
    replacement_with_any_claim_is_caught: Mutation::ReplaceAnyClaim => "a void posting is replaced only by one on the predecessor's root",
    watch_at_turn_is_caught: Mutation::WatchAtTurn => "a thieving batch posted ahead is overturned by the driver",
    watch_own_postings_only_is_caught: Mutation::WatchOwnPostingsOnly => "a batch posted ahead before the driver runs is watched",
    void_on_overturned_root_is_caught: Mutation::VoidOnOverturnedRoot => "an honest successor of an overturned true root stands",
    forfeited_postings_standing_is_caught: Mutation::ForfeitedPostingsStand => "a forfeited poster's posting ahead is taken over",
    dispute_judged_on_replacement_is_caught: Mutation::DisputeJudgedOnReplacement => "a dispute of a replaced posting is refused",
    reader_taking_first_posting_is_caught: Mutation::ReaderTakesFirstPosting => "a void posting replaced in one block is read",
    replaced_dispute_refused_is_caught: Mutation::ReplacedDisputeRefused => "a dispute committed before a forged replacement overturns it",
    replacement_keeping_turn_is_caught: Mutation::ReplacementKeepsTurn => "a watcher is not late for a replacement",
    replaced_without_replacement_is_caught: Mutation::ReplacedWithoutReplacement => "a dispute committed before the first posting risks its bond",
    void_next_waiting_window_is_caught: Mutation::VoidNextWaitsWindow => "a void posting of the next batch is replaced at once",
    backup_checks_at_turn_are_caught: Mutation::BackupChecksAtTurn => "a forgery ahead with a colluding watcher never settles",
    posting_stopping_at_withheld_is_caught: Mutation::PostingStopsAtWithheld => "a silent executor's batches settle within two windows and a half",
    forgotten_voided_posting_is_caught: Mutation::VoidedPostingForgotten => "a caught forgery voided by its forger still costs the deposit",
    replaced_again_is_replaced_is_caught: Mutation::ReplacedAgainIsReplaced => "a frivolous dispute of a posting posted again loses its bond",
    watch_after_jump_is_caught: Mutation::WatchAfterJump => "a forgery ahead behind a withheld batch never settles",
    fin_left_unwatched_is_caught: Mutation::FinLeftUnwatched => "a forged posting of the batch to settle never settles",
    guard_disputes_one_by_one_are_caught: Mutation::GuardDisputesOneByOne => "the guard's disputes ahead leave fin's window",
    backup_disputes_one_by_one_are_caught: Mutation::BackupDisputesOneByOne => "the backup disputes leave a forgery ahead's window",
    watched_at_plan_is_caught: Mutation::WatchedAtPlan => "a refused bond is followed by the next alarmed owner",
    only_first_owner_bonding_is_caught: Mutation::OnlyFirstOwnerBonds => "a first alarmed owner that cannot bond is followed",
    guard_not_repriced_is_caught: Mutation::GuardNotRepriced => "a mempool flood does not keep the guard out",
    backed_without_challenge_is_caught: Mutation::BackedWithoutChallenge => "a posting no owner can bond against stops the run",
    full_mempool_not_sealed_is_caught: Mutation::FullMempoolNotSealed => "a flood at the driver's price does not freeze settlement",
    unchecked_posting_sealed_through_is_caught: Mutation::UncheckedPostingSealedThrough => "a driver call behind junk leaves the IOR window",
    slot_cleared_without_budgets_is_caught: Mutation::SlotClearedWithoutBudgets => "a seller out of deposits passes its buyers on",
    window_ignoring_congestion_is_caught: Mutation::WindowIgnoresCongestion => "junk past the window holds it open for the check",
    seal_not_reevaluated_is_caught: Mutation::SealNotReevaluated => "a driver call stops inside a posting's window",
    slot_cleared_by_slivers_first_is_caught: Mutation::SlotClearedBySliversFirst => "a seller's one lock goes to the largest fill, not a sliver",
}
