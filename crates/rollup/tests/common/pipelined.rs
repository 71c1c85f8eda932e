//! Helpers for the pipelined baseline's attack scenarios
//! ([`Mode::ConventionalOr`], attack r14): shared by
//! the `attack_pipelined_r*.rs` files and the mutation check.

use super::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::driver::Mode;
use gridledger_rollup::exec::{execute_leaves, OffChain, PreState};
use gridledger_rollup::primary::{
    BatchInput, BatchState, DisputeEntry, DisputeState, SubmitTcrs, SubmitTcrsOn, WithdrawArgs,
};
use gridledger_rollup::state::{entry_witness, fill_post_roots, participant_proof, post_state, state_root};
use gridledger_rollup::types::{coins, entry_hash, tcr_proof, IorTx, Participant, Tcr, TcrLeaf};

/// Four traders (0–2 funded, funding settled), two executors, three
/// validators, a week's window (as `pipelined_or.rs`).
pub fn or_funded() -> Env {
    let mut e = open(config(Mode::ConventionalOr, 4, 2, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    e
}

/// Records `n` batches of one AT each (trader 0 buys 500 Wh from trader 1
/// for successive slots a day ahead), each in its own block. Returns the
/// first batch's id.
pub fn record_batches(e: &mut Env, n: u64) -> u64 {
    let (b, s) = (trader(0), trader(1));
    let (first, _) = e.d.reader().progress().unwrap();
    let day = (e.d.now() / HOUR + 24) * HOUR;
    for i in 0..n {
        let t = terms(&b, &s, Amount(200_000), 500, day + i * HOUR);
        let txs: Vec<(KeyPair, IorTx)> = vec![(b.clone(), at(&t, &s))];
        e.d.submit_block(&txs).unwrap();
    }
    e.d.primary.seal();
    first
}

pub fn executor_of(e: &Env, batch: u64) -> KeyPair {
    let a = e.d.batch_header(batch).unwrap().executor;
    e.d.executors.iter().find(|(k, _)| k.address() == a).unwrap().0.clone()
}

/// `batch`'s honest leaves, executed off chain with their post-state
/// roots filled in, with its input, its full pre-state and the amount its
/// TCRs burn.
pub fn honest_leaves(e: &Env, batch: u64) -> (BatchInput, PreState, Vec<TcrLeaf>, Amount) {
    let input = e.d.batch_input(batch).unwrap();
    let p = &e.d.cfg.params;
    let full = input.full_state(p);
    let mut leaves = execute_leaves(&mut OffChain, p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(p, &full, &input.entries, &mut leaves);
    let tcrs: Vec<Tcr> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (_, burned) = post_state(p, &full, &input.entries, &tcrs).unwrap();
    (input, full, leaves, burned)
}

/// The `sc_cr` arguments of `batch` for `leaves`, the batch's post-state
/// root replaced by `post` when given.
pub fn submit_of(
    batch: u64,
    input: &BatchInput,
    leaves: &[TcrLeaf],
    burned: Amount,
    post: Option<Hash32>,
) -> SubmitTcrs {
    let mut posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let last = posted.len() - 1;
    if let Some(r) = post {
        posted[last].post_root = r;
    }
    SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted[last].post_root,
        leaves: posted,
        burned,
    }
}

/// `full` after `batch`'s honest TCRs (`leaves`), with `to` minted 10
/// coin on top: a real state tree, which a forger keeps.
pub fn minted_state(e: &Env, input: &BatchInput, full: &PreState, leaves: &[TcrLeaf], to: Address) -> PreState {
    let p = &e.d.cfg.params;
    let tcrs: Vec<Tcr> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (mut minted, _) = post_state(p, full, &input.entries, &tcrs).unwrap();
    let had = minted.participants.get(&to).map_or(Amount::ZERO, |r| r.balance);
    minted.participants.insert(to, Participant { balance: Amount(had.0 + coins(10).0), reputation: p.rs });
    minted
}

/// `batch`'s honest `sc_cr` arguments (seals the primary chain first).
pub fn honest_submit(e: &mut Env, batch: u64) -> SubmitTcrs {
    e.d.primary.seal();
    let (input, _, leaves, burned) = honest_leaves(e, batch);
    submit_of(batch, &input, &leaves, burned, None)
}

/// `batch`'s honest TCRs claiming `pre_root`, with the last leaf's (and
/// the batch's) post-state root replaced by `post` when given.
pub fn posting_on(e: &mut Env, batch: u64, pre_root: Hash32, post: Option<Hash32>) -> SubmitTcrsOn {
    let mut tcrs = honest_submit(e, batch);
    if let Some(r) = post {
        let last = tcrs.leaves.len() - 1;
        tcrs.leaves[last].post_root = r;
        tcrs.post_root = r;
    }
    SubmitTcrsOn { pre_root, tcrs }
}

/// The `sc_cr` posting of `batch` by its executor, built but not sent:
/// honest verdicts with a post-state root that mints `to` 10 coin (a real
/// state tree, which the forger keeps). Returns the executor, the
/// arguments and the forged post-state.
pub fn minting_posting(e: &Env, batch: u64, to: Address) -> (KeyPair, Vec<u8>, PreState) {
    let (input, full, honest, burned) = honest_leaves(e, batch);
    let minted = minted_state(e, &input, &full, &honest, to);
    let sub = submit_of(batch, &input, &honest, burned, Some(state_root(&minted)));
    (executor_of(e, batch), args(&sub), minted)
}

/// [`minting_posting`], sent by the batch's executor.
pub fn post_minting_root(e: &mut Env, batch: u64, to: Address) -> PreState {
    let (exec, a, minted) = minting_posting(e, batch, to);
    let r = send_tcrs(e, &exec, batch, a);
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    minted
}

/// `who` withdraws the 10 coin minted to it in `minted` (a settled
/// post-state) from the primary chain. Returns what its wealth grew by.
pub fn withdraw_minted(e: &mut Env, minted: &PreState, who: &KeyPair) -> Amount {
    let (record, proof) = participant_proof(minted, &who.address()).unwrap();
    let before = wealth(e, who);
    let a = args(&WithdrawArgs { amount: coins(10), record, proof });
    let r = e.d.primary_call(who, "withdraw", a, Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    Amount(wealth(e, who) - before)
}

/// A `dispute_state` of entry 0 of `batch` whose witness opens the
/// records against `before` (whatever state the disputer holds for the
/// root the batch is checked against).
pub fn state_dispute_on(e: &Env, batch: u64, before: &PreState) -> Vec<u8> {
    let p = &e.d.cfg.params;
    let input = e.d.batch_input(batch).unwrap();
    let posted = input.leaves.clone().expect("posted leaves");
    let hashes: Vec<_> = input.entries.iter().map(entry_hash).collect();
    let proof = tcr_proof(&p.domain, batch, &hashes, &posted, 0).unwrap();
    let entry = input.entries[0].clone();
    let witness = entry_witness(before, &input.queue, &entry, &posted[0].tcr, p.meter_step_s);
    args(&DisputeState { batch, entry, leaf: posted[0].clone(), proof, prev: None, witness })
}

/// The executor of `batch` posts the honest verdicts, effects and
/// post-state roots, but commits leaf 0 to inputs in which the buyer has
/// no coin: the batch's state transition is right, yet `dispute_entry`
/// (re-executing entry 0 on those inputs) proves the leaf wrong. Returns
/// that `dispute_entry`'s arguments.
pub fn post_right_roots_wrong_inputs(e: &mut Env, batch: u64) -> Vec<u8> {
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let buyer = input.entries[0].tx.terms().buyer;
    let rec = leaves[0].pre.participants.get_mut(&buyer).expect("the buyer's record");
    rec.balance = Amount::ZERO;
    let tcrs: Vec<Tcr> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (_, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let posted: Vec<_> = leaves.iter().map(|l| l.posted()).collect();
    let hashes: Vec<_> = input.entries.iter().map(entry_hash).collect();
    let sub = SubmitTcrs {
        batch,
        entry_hashes: hashes.clone(),
        post_root: posted.last().unwrap().post_root,
        leaves: posted.clone(),
        burned,
    };
    let exec = executor_of(e, batch);
    let r = send_tcrs(e, &exec, batch, args(&sub));
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let proof = tcr_proof(&p.domain, batch, &hashes, &posted, 0).unwrap();
    args(&DisputeEntry {
        batch,
        entry: input.entries[0].clone(),
        pre: leaves[0].pre.clone(),
        leaf: posted[0].clone(),
        proof,
    })
}

/// The post-state root batch `b` settled with, or `None` while unsettled.
pub fn settled_root_of(e: &Env, b: u64) -> Option<Hash32> {
    let h = e.d.batch_header(b).unwrap();
    matches!(h.state, BatchState::Settled { .. }).then_some(h.post_root).flatten()
}

/// X posts batch `b` ahead on the true pre-root with a post-state root
/// that mints `to` 10 coin, in the next block (nothing sealed first).
/// Returns the minted state.
pub fn forge_ahead_unsealed(e: &mut Env, x: &KeyPair, b: u64, to: Address) -> PreState {
    let (input, full, leaves, burned) = honest_leaves(e, b);
    let minted = minted_state(e, &input, &full, &leaves, to);
    let sub = submit_of(b, &input, &leaves, burned, Some(state_root(&minted)));
    let pre_root = state_root(&e.d.state_before(b).unwrap());
    let on = SubmitTcrsOn { pre_root, tcrs: sub };
    let r = e.d.primary_call(x, "sc_cr_on", args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "forged posting ahead of {b}: {:?}", r.status);
    minted
}

/// [`forge_ahead_unsealed`] after sealing what the primary chain holds.
pub fn forge_ahead(e: &mut Env, x: &KeyPair, b: u64, to: Address) -> PreState {
    e.d.primary.seal();
    forge_ahead_unsealed(e, x, b, to)
}

/// `executors` executors, three traders funded, as `or_funded` otherwise.
pub fn or_funded_with(executors: usize) -> Env {
    let mut e = open(config(Mode::ConventionalOr, 4, executors, 3));
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    settle_funding(&mut e);
    e
}

/// Leaves `k`'s primary-chain wallet holding `keep` (a transfer of the
/// rest to a fresh account, the first of `fresh_keys(sink, 1)`, sealed).
pub fn leave_in_wallet(e: &mut Env, k: &KeyPair, keep: Amount, sink: usize) {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    let bal = e.d.primary.account(&k.address()).balance;
    let fee = coins(1);
    let amount = Amount(bal.0 - keep.0 - fee.0);
    let to = fresh_keys(sink, 1)[0].address();
    let nonce = e.d.primary.next_nonce(&k.address());
    let tx = gridledger_ledger::devnet::transfer(k, chain_id, nonce, to, amount, Amount(1));
    e.d.primary.submit(&tx).unwrap();
    e.d.primary.seal().unwrap();
}

/// Two executors ([`or_funded_with`]), eight batches recorded: the
/// first batch to settle, its executor X and X's next batch after it.
pub fn executor_with_a_later_batch() -> (Env, u64, KeyPair, u64) {
    let mut e = or_funded_with(2);
    let first = record_batches(&mut e, 8);
    let x = executor_of(&e, first);
    let b = (first + 1..first + 8).find(|b| executor_of(&e, *b).address() == x.address()).expect("X has a later batch");
    (e, first, x, b)
}

/// Every validator colludes (silent as watcher and as delegate).
pub fn all_validators_collude(e: &mut Env) {
    use gridledger_rollup::roles::ValidatorBehaviour;
    for i in 0..e.d.validators.len() {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
}

/// Runs `process` up to `times` times, with `rng(seed)`, `rng(seed + 1)`,
/// …, stopping after the first run that succeeds when `until_ok`; each
/// run's number of steps or its error.
pub fn process_runs(e: &mut Env, seed: u64, times: u64, until_ok: bool) -> Vec<Result<usize, String>> {
    let mut runs = Vec::new();
    for i in 0..times {
        let r = e.d.process(&mut rng(seed + i));
        runs.push(r.as_ref().map(|s| s.len()).map_err(|err| err.to_string()));
        if until_ok && r.is_ok() {
            break;
        }
    }
    runs
}
