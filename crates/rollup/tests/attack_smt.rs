//! Attack round 3 on the settlement state (issue 11): the sparse Merkle
//! tree, state witnesses, `dispute_state`, `withdraw` and the
//! commit–reveal of disputes. Each finding is an ignored, failing test;
//! its comment states what a careful user expects and what the code does.

mod common;

use common::*;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::TxStatus;
use gridledger_rollup::args;
use gridledger_rollup::exec::{execute_leaves, OffChain};
use gridledger_rollup::primary::{DisputeState, SubmitTcrs};
use gridledger_rollup::roles::Target;
use gridledger_rollup::smt::{default_hash, Smt, SmtProof, DEPTH};
use gridledger_rollup::state::{fill_post_roots, post_state, state_root, RecordKey};
use gridledger_rollup::types::{coins, dispute_digest, entry_hash, IorTx, Participant, Tcr};

fn bit(p: &Hash32, d: usize) -> bool {
    (p.0[d / 8] >> (7 - d % 8)) & 1 == 1
}

/// The depth of each sibling slot of a multi-proof for sorted `keys`, in
/// the order the proof lists them (`Smt::from_proof`'s walk).
fn slot_depths(d: usize, keys: &[Hash32], out: &mut Vec<usize>) {
    if keys.is_empty() {
        out.push(d);
        return;
    }
    if d == DEPTH {
        return;
    }
    let k = keys.partition_point(|q| !bit(q, d));
    slot_depths(d + 1, &keys[..k], out);
    slot_depths(d + 1, &keys[k..], out);
}

/// A second encoding of the same proof: the first empty sibling (flag
/// clear) is sent as an explicit hash, the empty subtree's own hash.
fn malleate(proof: &SmtProof, keys: &[Hash32]) -> SmtProof {
    let mut depths = Vec::new();
    slot_depths(0, keys, &mut depths);
    let set = |p: &SmtProof, i: usize| (p.explicit[i / 8] >> (i % 8)) & 1 == 1;
    let i = (0..depths.len()).find(|i| !set(proof, *i)).expect("some sibling is empty");
    let before = (0..i).filter(|j| set(proof, *j)).count();
    let mut m = proof.clone();
    m.explicit[i / 8] |= 1 << (i % 8);
    m.nodes.insert(before, default_hash(depths[i]));
    m
}

/// MALLEABLE PROOFS. A multi-proof has more than one encoding: an empty
/// sibling may be flagged "empty" or sent explicitly as the empty
/// subtree's hash, and both open to the same root. (This is what lets a
/// copier change a dispute's bytes without changing its meaning; see
/// `a_malleated_copy_of_a_committed_dispute_steals_the_reward`.)
///
/// Expected: one canonical proof per (keys, tree); a non-canonical one is
/// refused (`SmtError`), so its bytes are a function of its meaning.
/// Observed: the non-canonical proof opens and proves the same records.
#[test]
fn a_proof_with_an_explicit_empty_sibling_opens_too() {
    let mut full = Smt::new((0..40u64).map(|i| {
        let k = RecordKey::Claimed(gridledger_rollup::types::SlotKey {
            seller: trader(i as usize % 7).address(),
            dt_start: i * 1_000,
            dt_end: i * 1_000 + 1,
        });
        (k.path(), Hash32([i as u8 + 1; 32]))
    }));
    let root = full.root();
    let key = RecordKey::Claimed(gridledger_rollup::types::SlotKey {
        seller: trader(3).address(),
        dt_start: 3_000,
        dt_end: 3_001,
    });
    let keys = [key.path()];
    let value = full.get(&keys[0]);
    let proof = full.proof(&keys).unwrap();
    let canonical = Smt::from_proof(vec![(keys[0], value)], &proof).unwrap().root();
    assert_eq!(canonical, root);
    let other = malleate(&proof, &keys);
    assert_ne!(other, proof);
    let opened = Smt::from_proof(vec![(keys[0], value)], &other).map(|mut t| t.root());
    assert!(opened != Ok(root), "a second encoding of the same proof opens to the same root: {opened:?}");
}

/// COMMIT FRONT-RUN. `commit_dispute` commits to a bare digest of the
/// dispute's method and arguments, not bound to the committer, and the
/// first commitment of a digest stands. The forger's sybil watching the
/// mempool sees the honest validator's `commit_dispute(digest)` and sends
/// the same digest first (it needs nothing but the 32 bytes it saw). The
/// validator's own commitment is then refused, and when the validator's
/// dispute lands in the next block, the chain pays the committed
/// discloser — the sybil.
///
/// Expected: the honest validator that found and sent the dispute is paid
/// the disclosure reward; a copied commitment earns its sender nothing
/// (e.g. the digest binds the committer's address, or the reward goes to
/// the committer only if it also sends the dispute).
/// Observed: the sybil that copied 32 bytes out of the mempool is paid
/// the reward (`bonus_permille` of the forger's deposit, i.e. the forger
/// recovers half of it), the validator gets nothing.
/// Fixed: the commitment is `H(tag, digest, committer)`; the chain
/// recomputes it from the dispute and its sender, so the sybil's copy is
/// stored under the validator's key and pays only the validator's own
/// dispute.
#[test]
fn a_copied_commitment_steals_the_validators_reward() {
    let (mut e, exec, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let sybil = trader(2);
    // The sybil's copy of the commitment lands first.
    let copy = e.d.primary_call(&sybil, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(copy.status, TxStatus::Success, "{:?}", copy.status);
    let own = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    eprintln!("validator's own commitment: {:?}", own.status);
    let (sybil0, validator0) = (wealth(&e, &sybil), wealth(&e, &validator));
    let d = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(d.status, TxStatus::Success, "the validator's dispute overturns the batch: {:?}", d.status);
    assert!(!node_active(&e, &exec.address()), "the forger's deposit is forfeited");
    let bonus = e.d.cfg.node_deposit.0 * u128::from(e.d.cfg.bonus_permille.min(1000)) / 1000;
    let sybil_gain = wealth(&e, &sybil) - sybil0;
    let validator_gain = (wealth(&e, &validator) + d.fee.0).saturating_sub(validator0);
    eprintln!("bonus {bonus}; sybil gained {sybil_gain}; validator gained {validator_gain}");
    assert_eq!(sybil_gain, 0, "the sybil that copied the digest was paid {sybil_gain}");
    assert_eq!(validator_gain, bonus, "the validator that disputed is paid the reward");
}

/// MALLEATED COPY. The honest validator commits, then sends its
/// `dispute_state`. The forger's sybil copies the dispute from the mempool
/// but re-encodes its state witness (one empty sibling sent as an explicit
/// empty-subtree hash, `a_proof_with_an_explicit_empty_sibling_opens_too`):
/// same dispute, other bytes, so another digest, which nobody committed.
/// The copy lands first, overturns the batch, and its sender is the
/// discloser.
///
/// Expected: a copy of a committed dispute earns its sender nothing beyond
/// its bond back (what `commit_dispute` is for): the commitment covers
/// the dispute's meaning, or witnesses have one encoding.
/// Observed: the sybil is paid the disclosure reward and the committed
/// validator's dispute is refused (the batch is already overturned).
#[test]
fn a_malleated_copy_of_a_committed_dispute_steals_the_reward() {
    let (mut e, exec, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let c = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(c.status, TxStatus::Success, "{:?}", c.status);
    // The sybil re-encodes the witness of the dispute it saw.
    let mut ds: DisputeState = borsh::from_slice(&calls[1].args).unwrap();
    let input = e.d.batch_input(batch).unwrap();
    let mut keys = gridledger_rollup::state::entry_keys(
        std::slice::from_ref(&ds.entry),
        std::slice::from_ref(&ds.leaf.tcr),
        e.d.cfg.params.meter_step_s,
    );
    keys.extend(gridledger_rollup::state::queue_keys(&input.queue));
    let mut paths: Vec<Hash32> = keys.iter().map(RecordKey::path).collect();
    paths.sort();
    ds.witness.proof = malleate(&ds.witness.proof, &paths);
    let forged_args = args(&ds);
    assert_ne!(dispute_digest("dispute_state", &forged_args), dispute_digest("dispute_state", &calls[1].args));
    let sybil = trader(2);
    let (sybil0, validator0) = (wealth(&e, &sybil), wealth(&e, &validator));
    let bond = e.d.cfg.challenge_bond;
    let copy = e.d.primary_call(&sybil, "dispute_state", forged_args, bond).unwrap();
    let late = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    eprintln!("copy: {:?}; validator's dispute: {:?}", copy.status, late.status);
    assert!(!node_active(&e, &exec.address()), "the forger's deposit is forfeited");
    let bonus = e.d.cfg.node_deposit.0 * u128::from(e.d.cfg.bonus_permille.min(1000)) / 1000;
    let sybil_gain = (wealth(&e, &sybil) + copy.fee.0).saturating_sub(sybil0);
    let validator_gain = (wealth(&e, &validator) + late.fee.0).saturating_sub(validator0);
    eprintln!("bonus {bonus}; sybil gained {sybil_gain}; validator gained {validator_gain}");
    assert_eq!(sybil_gain, 0, "the sybil's re-encoded copy was paid {sybil_gain}");
    assert_eq!(validator_gain, bonus, "the committed validator is paid the reward");
}

/// DOUBLE CLAIM BY OVERLAP. The energy a won arbitration claims is a
/// record keyed by the exact delivery period (`SlotKey { seller,
/// dt_start, dt_end }`), and an AT may name any period (`dt_start <
/// dt_end`, no grid of slots). A seller sells 500 Wh for 08:00–08:30 to
/// one buyer and 500 Wh for 08:00–08:35 to another, and exports 500 Wh
/// in total (1,000 W from 08:00 to 08:30, nothing after). Both buyers
/// truthfully record O_b = 0; the seller sends both STs with the same
/// genuine, meter-signed readings (the second with one more, zero,
/// reading). Each arbitration reads only its own period's claim record,
/// so the same 500 Wh wins both.
///
/// Expected: a seller's metered export counts once across all its
/// agreements whose periods overlap (as it does for equal periods,
/// `a_slots_export_counts_once_across_batches`): the second arbitration
/// finds a shortfall.
/// Observed: both are `SellerDelivered`; the buyers pay for 1,000 Wh and
/// the second is penalised α for a truthful O_b = 0.
/// Fixed: delivery periods lie on the meters' fixed metering grid
/// (`IorParams::meter_step_s`, else `AtRejection::OffGrid`) and a won
/// arbitration claims its energy per grid slot (`SettlementTx::claim_split`):
/// the first ST claims all six 5-minute slots 08:00–08:30, so the second
/// finds nothing left there and nothing exported at 08:30–08:35.
#[test]
fn overlapping_periods_claim_the_same_export_twice() {
    use gridledger_rollup::types::{Outcome, StSettlement};
    let mut e = funded();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 500, 8 * HOUR);
    let mut t2 = terms(&b2, &s, Amount(200_000), 500, 8 * HOUR);
    t2.dt_end += 5 * MIN;
    t2.dl += 5 * MIN;
    agreed(&mut e, &s, &[(&b1, &t1), (&b2, &t2)]);
    let st1 = st(&t1, 1000, false, Some(&b1));
    let mut ps = vec![1000; 6];
    ps.push(0);
    let st2 = metered_st(&t2, &b2, 300, ps);
    assert_eq!(st1.metered_ws(), st2.metered_ws(), "the same 500 Wh, exported 08:00–08:30");
    e.d.submit(&s, &IorTx::St(st1)).unwrap();
    let first = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(first[0].outcomes, vec![Outcome::StSettled(StSettlement::SellerDelivered)]);
    e.d.submit(&s, &IorTx::St(st2)).unwrap();
    let second = e.d.process(&mut rng(0)).unwrap();
    assert_eq!(
        second[0].outcomes,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "500 Wh exported once won a second arbitration over an overlapping period"
    );
}

/// Held: a validator that committed and then died before sending its
/// dispute (kill -9 between the two calls) re-sends it when it runs again:
/// its step is a pure function of the batch, its second commitment is
/// refused as already its own, and the dispute that follows pays it, the
/// committer. (The roles run inside the driver; this is its restart.)
#[test]
fn a_validator_restarted_between_commit_and_dispute_still_disputes_and_is_paid() {
    let (mut e, exec, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let c = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(c.status, TxStatus::Success, "{:?}", c.status);
    // Crash here; the driver runs again from the chain's state.
    let before = wealth(&e, &validator);
    let from = e.d.primary.chain.tip().height;
    e.d.process(&mut rng(0)).unwrap();
    let h = e.d.batch_header(batch).unwrap();
    assert!(h.overturned || h.state != gridledger_rollup::primary::BatchState::Open);
    assert!(!node_active(&e, &exec.address()), "the forger's deposit is forfeited");
    assert!(node_active(&e, &validator.address()), "the validator keeps its deposit");
    let bonus = e.d.cfg.node_deposit.0 * u128::from(e.d.cfg.bonus_permille.min(1000)) / 1000;
    let fees = fees_paid(&e.d, &validator.address(), from);
    assert_eq!(wealth(&e, &validator) + fees - before, bonus, "the restarted validator is paid the reward");
}

/// Held: a state witness cannot claim a present record absent (leave it
/// out), bring a record twice, bring one the entries do not touch, or
/// swap a record for another key's; each either is refused or opens to
/// another root.
#[test]
fn a_witness_cannot_hide_duplicate_or_swap_records() {
    use gridledger_rollup::state::{open_witness, witness, StateRecord, WitnessError};
    let (e, _, batch) = forged_batch();
    let input = e.d.batch_input(batch).unwrap();
    let settled = input.state.clone().unwrap();
    let root = state_root(&settled);
    let mut keys = gridledger_rollup::state::entry_keys(&input.entries, &[], e.d.cfg.params.meter_step_s);
    keys.extend(gridledger_rollup::state::queue_keys(&input.queue));
    let w = witness(&settled, &keys);
    assert!(w.records.len() >= 2, "buyer and seller are funded");
    assert_eq!(open_witness(&keys, &w).unwrap().1.root(), root);
    // A present record left out: read as absent, the root differs.
    let mut hidden = w.clone();
    hidden.records.remove(0);
    assert_ne!(open_witness(&keys, &hidden).unwrap().1.root(), root);
    // Twice.
    let mut twice = w.clone();
    twice.records.push(w.records[0].clone());
    assert_eq!(open_witness(&keys, &twice).unwrap_err(), WitnessError::Extra);
    // A record of an account the entries do not touch.
    let mut extra = w.clone();
    let stranger = trader(3).address();
    extra.records.push(StateRecord::Participant(stranger, settled.participant(&e.d.cfg.params, &stranger)));
    assert_eq!(open_witness(&keys, &extra).unwrap_err(), WitnessError::Extra);
    // One account's record under the other's key.
    let mut swapped = w.clone();
    if let (StateRecord::Participant(a, pa), StateRecord::Participant(b, pb)) =
        (swapped.records[0].clone(), swapped.records[1].clone())
    {
        swapped.records[0] = StateRecord::Participant(a, pb);
        swapped.records[1] = StateRecord::Participant(b, pa);
        if pa != pb {
            assert_ne!(open_witness(&keys, &swapped).unwrap().1.root(), root);
        }
    }
}

/// THEFT THROUGH THE ROOT (issue 11 item 1, reopened by the state root).
/// A sybil pair trades one AT; the executor posts the honest verdicts and
/// effects but a post-state root of a state in which the victim (named by
/// no entry) has 0 and the executor 10 coin. Item 1's defence is that
/// "meters check every TCR by the accounts it touches": a smart meter
/// compares only verdicts and effects (`SmartMeter::on_tcrs_computed`),
/// never the roots, and the victim's meter is not even involved (no entry
/// or effect names it), so no meter alarms and no bonded challenge is
/// sent. With the assigned validator colluding, nothing disputes;
/// `finalize` settles the forged root in O(1), and the executor withdraws
/// the victim's coin with a proof against it.
///
/// Expected: a root that moves a third account's coin does not settle
/// unless every honest party is silent: the victim's meter (or any
/// watcher it delegates to) checks the roots that change its owner's
/// record, or roots are checked by more than the one drawn validator.
/// Observed: the forged root settles; the executor withdraws 10 coin it
/// never had; the victim's proved balance is gone.
#[test]
fn a_forged_root_steals_from_an_account_no_entry_names() {
    use gridledger_rollup::roles::ValidatorBehaviour;
    use gridledger_rollup::state::participant_proof;
    let mut e = funded_with_window(60_000);
    settle_funding(&mut e);
    let (victim, sb, ss) = (trader(0), trader(1), trader(2));
    for i in 0..e.d.validators.len() {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    e.d.submit(&sb, &at(&terms(&sb, &ss, Amount(200_000), 500, 9 * HOUR), &ss)).unwrap();
    e.d.primary.seal();
    let batch = 1;
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut honest = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut honest);
    let tcrs: Vec<Tcr> = honest.iter().map(|l| l.tcr.clone()).collect();
    let (mut forged, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let loot = forged.participants[&victim.address()].balance;
    assert_eq!(loot, coins(10));
    forged.participants.get_mut(&victim.address()).unwrap().balance = Amount::ZERO;
    forged.participants.insert(exec.address(), Participant { balance: loot, reputation: p.rs });
    let mut posted: Vec<_> = honest.iter().map(|l| l.posted()).collect();
    let last = posted.len() - 1;
    posted[last].post_root = state_root(&forged);
    let sub = SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted[last].post_root,
        leaves: posted,
        burned,
    };
    assert_eq!(e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap().status, TxStatus::Success);
    let r = e.d.process(&mut rng(0));
    eprintln!("process: {:?}", r.as_ref().map(|v| v.len()));
    let h = e.d.batch_header(batch).unwrap();
    eprintln!("batch {batch}: {:?}, overturned {}", h.state, h.overturned);
    let wallet0 = wealth(&e, &exec);
    let (record, proof) = participant_proof(&forged, &exec.address()).unwrap();
    let w = gridledger_rollup::primary::WithdrawArgs { amount: loot, record, proof };
    let r = e.d.primary_call(&exec, "withdraw", args(&w), Amount::ZERO).unwrap();
    eprintln!("executor's withdrawal: {:?}", r.status);
    let stolen = (wealth(&e, &exec) + r.fee.0).saturating_sub(wallet0);
    assert!(
        h.overturned
            || h.post_root != Some(state_root(&forged))
            || h.state == gridledger_rollup::primary::BatchState::Open,
        "the forged root settled"
    );
    assert_eq!(stolen, 0, "the executor withdrew {stolen} of the victim's coin");
}

/// SIDESTEPPED COMMITMENT. A commitment covers one exact dispute, but a
/// forged batch has many valid disputes. Seeing the validator's revealed
/// `dispute_state` in the mempool (so learning that batch 1 is forged), a
/// copier sends another dispute of the same batch, the whole-batch
/// `dispute` (its records in their canonical order: not a re-encoding of
/// anything), and it lands first. The dispute it sent was committed by
/// nobody, so its sender is the discloser.
///
/// Expected: the first party to commit to a successful dispute of a batch
/// is its discloser, whichever valid dispute of that batch lands (the
/// commitment binds the batch and the committer, not the bytes).
/// Observed: the committed validator's dispute is refused and it earns
/// nothing. (Since commitments bind the committer, the uncommitted copier
/// is paid nothing either: the reward is held for a committer of the
/// copier's exact dispute, and there is none. The forger recovers
/// nothing, but the honest validator still loses its reward.)
/// Fixed: a reward an uncommitted dispute leaves is held per batch, not
/// per dispute: the first party that committed (in an earlier block) to a
/// dispute of that batch collects it by sending its committed dispute,
/// which the chain checks against the batch as posted.
#[test]
fn a_different_dispute_of_the_same_batch_sidesteps_the_commitment() {
    use gridledger_rollup::primary::Controversial;
    let (mut e, exec, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let c = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(c.status, TxStatus::Success, "{:?}", c.status);
    let p = e.d.cfg.params.clone();
    let input = e.d.batch_input(batch).unwrap();
    let own = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    let whole = Controversial {
        batch,
        claimed: own.iter().map(|l| l.tcr.clone()).collect(),
        entries: input.entries.clone(),
        witness: gridledger_rollup::state::batch_witness(
            input.state.as_ref().unwrap(),
            &input.queue,
            &input.entries,
            e.d.cfg.params.meter_step_s,
        ),
    };
    let sybil = trader(2);
    let (sybil0, validator0) = (wealth(&e, &sybil), wealth(&e, &validator));
    let bond = e.d.cfg.challenge_bond;
    let copy = e.d.primary_call(&sybil, "dispute", args(&whole), bond).unwrap();
    let late = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    eprintln!("copier's dispute: {:?}; validator's: {:?}", copy.status, late.status);
    assert!(!node_active(&e, &exec.address()), "the forger's deposit is forfeited");
    let bonus = e.d.cfg.node_deposit.0 * u128::from(e.d.cfg.bonus_permille.min(1000)) / 1000;
    let sybil_gain = (wealth(&e, &sybil) + copy.fee.0).saturating_sub(sybil0);
    let validator_gain = (wealth(&e, &validator) + late.fee.0).saturating_sub(validator0);
    eprintln!("bonus {bonus}; copier gained {sybil_gain}; validator gained {validator_gain}");
    assert_eq!(validator_gain, bonus, "the committed validator is paid the reward");
    assert_eq!(sybil_gain, 0, "the copier was paid {sybil_gain}");
}

/// A batch's held reward goes only to a committed dispute that proves the
/// batch wrong. A sniper that committed (before anyone) to a dispute of
/// the batch that proves nothing (`dispute_entry` of its one, correct,
/// verdict) hoping to collect whatever reward the batch leaves is refused
/// with a typed error (`CorrectResult`) once a copier has overturned the
/// batch, and is paid nothing; the committed validator's dispute after it
/// collects the reward, once.
#[test]
fn a_committed_dispute_that_proves_nothing_claims_no_held_reward() {
    use gridledger_rollup::primary::{DisputeEntry, EntryDisputeError};
    use gridledger_rollup::types::{dispute_commitment, tcr_proof};
    let (mut e, exec, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let sniper = trader(3);
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let leaves = input.leaves.clone().unwrap();
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let own = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    let nothing = args(&DisputeEntry {
        batch,
        entry: input.entries[0].clone(),
        pre: own[0].pre.clone(),
        leaf: leaves[0].clone(),
        proof: tcr_proof(&p.domain, batch, &hashes, &leaves, 0).unwrap(),
    });
    let bond = e.d.cfg.challenge_bond;
    let c = dispute_commitment(&dispute_digest("dispute_entry", &nothing), &sniper.address());
    let s = e.d.primary_call(&sniper, "commit_dispute", args(&c), Amount::ZERO).unwrap();
    assert_eq!(s.status, TxStatus::Success, "{:?}", s.status);
    let sniped_at = e.d.primary.chain.tip().timestamp;
    let v = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(v.status, TxStatus::Success, "{:?}", v.status);
    let copier = trader(2);
    let copy = e.d.primary_call(&copier, "dispute", whole_dispute(&e, batch), bond).unwrap();
    assert_eq!(copy.status, TxStatus::Success, "{:?}", copy.status);
    assert!(!node_active(&e, &exec.address()), "the forger's deposit is forfeited");
    let sniper0 = wealth(&e, &sniper);
    let r = e.d.primary_call(&sniper, "dispute_entry", nothing, bond).unwrap();
    assert_eq!(reverted(&r), format!("reverted: {}", EntryDisputeError::CorrectResult(0)));
    assert_eq!(wealth(&e, &sniper) + r.fee.0, sniper0, "the sniper is paid nothing");
    // The sniper's commitment, recorded first, has priority for half a
    // window (the first-committer rule); the validator claims after it.
    e.d.set_time(sniped_at + e.d.cfg.window_ms() / 2);
    let validator0 = wealth(&e, &validator);
    let late = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(late.status, TxStatus::Success, "{:?}", late.status);
    let bonus = e.d.cfg.node_deposit.0 * u128::from(e.d.cfg.bonus_permille.min(1000)) / 1000;
    assert_eq!(wealth(&e, &validator) + late.fee.0 - validator0, bonus, "the committed validator is paid");
    let again = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(reverted(&again), format!("reverted: {}", EntryDisputeError::NothingToDispute(batch)), "paid once");
}

/// A commitment expires `window_ms` after it is recorded: a committed
/// validator that reveals its dispute after that collects nothing of the
/// reward a copier's dispute left held (the reveal is refused with a typed
/// error and changes nothing), and the held reward stays in the contract.
#[test]
fn an_expired_commitment_collects_nothing() {
    use gridledger_rollup::primary::EntryDisputeError;
    let (mut e, _, batch) = forged_batch();
    let (validator, calls) = validator_step(&mut e, batch);
    let v = e.d.primary_call(&validator, calls[0].method, calls[0].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(v.status, TxStatus::Success, "{:?}", v.status);
    let committed_at = e.d.primary.chain.tip().timestamp;
    let bond = e.d.cfg.challenge_bond;
    let copy = e.d.primary_call(&trader(2), "dispute", whole_dispute(&e, batch), bond).unwrap();
    assert_eq!(copy.status, TxStatus::Success, "{:?}", copy.status);
    e.d.set_time(committed_at + e.d.cfg.window_ms());
    let validator0 = wealth(&e, &validator);
    let late = e.d.primary_call(&validator, calls[1].method, calls[1].args.clone(), Amount::ZERO).unwrap();
    assert_eq!(reverted(&late), format!("reverted: {}", EntryDisputeError::NothingToDispute(batch)));
    assert_eq!(wealth(&e, &validator) + late.fee.0, validator0, "an expired commitment earns nothing");
    let held = e
        .d
        .primary
        .chain
        .view(gridledger_rollup::IOR_PRIMARY_ID, "held_reward", &args(&gridledger_rollup::primary::BatchId { batch }))
        .unwrap();
    assert_eq!(held, true, "the reward stays held in the contract");
}

/// Posts batch `batch`'s honest TCRs (the assigned executor's own step),
/// then tries every per-entry state dispute and the whole-batch dispute
/// against them; returns how many succeeded.
fn false_disputes(e: &mut Env, batch: u64) -> usize {
    use gridledger_rollup::primary::Controversial;
    use gridledger_rollup::state::entry_witness;
    use gridledger_rollup::types::tcr_proof;
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let i = e.d.executors.iter().position(|(k, _)| k.address() == input.header.executor).unwrap();
    let step = e.d.executors[i].1.on_batch(&input);
    let key = e.d.executors[i].0.clone();
    for c in step.calls.into_iter().filter(|c| c.target == Target::Primary) {
        assert_eq!(e.d.primary_call(&key, c.method, c.args, Amount::ZERO).unwrap().status, TxStatus::Success);
    }
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let posted = input.leaves.clone().unwrap();
    let hashes: Vec<Hash32> = input.entries.iter().map(entry_hash).collect();
    let challenger = trader(3);
    let bond = e.d.cfg.challenge_bond;
    let mut won = 0;
    for i in 0..posted.len() {
        let entry = input.entries[i].clone();
        let proof = tcr_proof(&p.domain, batch, &hashes, &posted, i).unwrap();
        let (witness, prev) = if i == 0 {
            (entry_witness(input.state.as_ref().unwrap(), &input.queue, &entry, &posted[i].tcr, p.meter_step_s), None)
        } else {
            let before: Vec<Tcr> = posted[..i].iter().map(|l| l.tcr.clone()).collect();
            let (s, _) = post_state(&p, &input.full_state(&p), &input.entries, &before).unwrap();
            let pp = tcr_proof(&p.domain, batch, &hashes, &posted, i - 1).unwrap();
            (
                entry_witness(&s, &[], &entry, &posted[i].tcr, p.meter_step_s),
                Some((input.entries[i - 1].clone(), posted[i - 1].clone(), pp)),
            )
        };
        let ds = DisputeState { batch, entry, leaf: posted[i].clone(), proof, prev, witness };
        let r = e.d.primary_call(&challenger, "dispute_state", args(&ds), bond).unwrap();
        if r.status == TxStatus::Success {
            won += 1;
        } else {
            assert!(reverted(&r).contains("the state its effects leave"), "{i}: {:?}", r.status);
        }
    }
    let own = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    let whole = Controversial {
        batch,
        claimed: own.iter().map(|l| l.tcr.clone()).collect(),
        entries: input.entries.clone(),
        witness: gridledger_rollup::state::batch_witness(
            input.state.as_ref().unwrap(),
            &input.queue,
            &input.entries,
            e.d.cfg.params.meter_step_s,
        ),
    };
    let r = e.d.primary_call(&challenger, "dispute", args(&whole), bond).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let h = e.d.batch_header(batch).unwrap();
    if h.overturned || h.state != gridledger_rollup::primary::BatchState::Open {
        won += 1;
    }
    e.d.process(&mut rng(0)).unwrap();
    won
}

/// Held: over batches that open, settle by agreement, arbitrate (delivered
/// and short), and apply funds and a withdrawal on entry 0, every
/// per-entry state dispute and the whole-batch dispute of the honest
/// executor's roots are refused as correct.
#[test]
fn no_dispute_of_an_honest_root_succeeds() {
    use gridledger_rollup::types::IorTx;
    let mut e = funded_with_window(600_000);
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let t1 = terms(&b1, &s, Amount(200_000), 500, 8 * HOUR);
    let t2 = terms(&b2, &s, Amount(200_000), 500, 8 * HOUR);
    e.d.submit_block(&[(b1.clone(), at(&t1, &s)), (b2.clone(), at(&t2, &s))]).unwrap();
    assert_eq!(false_disputes(&mut e, 0), 0, "batch 0 (funding queue + two ATs)");
    e.d.set_time(t1.dt_end + MIN);
    let w = e.d.withdraw(&b2, Amount(1)).unwrap();
    assert_eq!(w.status, TxStatus::Success, "{:?}", w.status);
    e.d.fund(&trader(3), coins(1)).unwrap();
    e.d.submit_block(&[
        (s.clone(), IorTx::St(st(&t1, 1000, true, Some(&b1)))),
        (s.clone(), IorTx::St(st(&t2, 200, false, Some(&b2)))),
    ])
    .unwrap();
    assert_eq!(false_disputes(&mut e, 1), 0, "batch 1 (a withdrawal, a fund, an agreed ST and a shortfall)");
}

/// Held: paths that share all but their last bit, the all-zero and
/// all-one paths. A proof of one key cannot prove its neighbour absent or
/// present, presence cannot be claimed for a proved-empty key, a sibling
/// leaf cannot stand in for an inner node, and updates through the
/// partial tree give the full tree's root.
#[test]
fn neighbouring_paths_and_depth_tricks_do_not_forge() {
    let mut a = Hash32([0x5a; 32]);
    a.0[31] &= 0xfe;
    let mut b = a;
    b.0[31] |= 1; // differs from `a` in bit 255 only
    let zero = Hash32([0; 32]);
    let ones = Hash32([0xff; 32]);
    let (va, vz, vo) = (Hash32([1; 32]), Hash32([2; 32]), Hash32([3; 32]));
    let mut full = Smt::new([(a, va), (zero, vz), (ones, vo)]);
    let root = full.root();
    // b is absent; proving it with a's proof, or a with b's, fails.
    let pb = full.proof(&[b]).unwrap();
    assert_eq!(Smt::from_proof(vec![(b, Hash32::ZERO)], &pb).unwrap().root(), root);
    assert_ne!(Smt::from_proof(vec![(b, va)], &pb).unwrap().root(), root, "b claimed present");
    assert_ne!(Smt::from_proof(vec![(a, Hash32::ZERO)], &pb).map(|mut t| t.root()), Ok(root), "a claimed absent");
    let pa = full.proof(&[a]).unwrap();
    assert_ne!(Smt::from_proof(vec![(b, va)], &pa).map(|mut t| t.root()), Ok(root), "a's leaf moved to b");
    // A two-key proof with both; duplicates and disorder are refused.
    let pab = full.proof(&[a, b]).unwrap();
    assert_eq!(Smt::from_proof(vec![(a, va), (b, Hash32::ZERO)], &pab).unwrap().root(), root);
    assert!(Smt::from_proof(vec![(b, Hash32::ZERO), (a, va)], &pab).is_err());
    assert!(Smt::from_proof(vec![(a, va), (a, Hash32::ZERO)], &pab).is_err());
    assert!(full.proof(&[a, a]).is_err());
    // A one-key proof of depth 256 cannot be cut short to name an inner
    // node as the leaf (a shorter proof is refused).
    let mut short = pa.clone();
    short.explicit.pop();
    assert!(Smt::from_proof(vec![(a, va)], &short).is_err());
    // Updates through the partial tree: b inserted, a removed, the extreme
    // paths changed.
    let mut part = Smt::from_proof(
        vec![(zero, vz), (a, va), (b, Hash32::ZERO), (ones, vo)],
        &full.proof(&[zero, a, b, ones]).unwrap(),
    )
    .unwrap();
    assert_eq!(part.root(), root);
    for (k, v) in [(b, Hash32([9; 32])), (a, Hash32::ZERO), (zero, Hash32([8; 32])), (ones, Hash32::ZERO)] {
        part.set(k, v);
        full.set(k, v);
        assert_eq!(part.root(), full.root());
    }
    assert_eq!(full.root(), Smt::new([(b, Hash32([9; 32])), (zero, Hash32([8; 32]))]).root());
}
