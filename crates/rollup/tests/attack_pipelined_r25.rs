//! Attack round 25 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline (`PrimaryConfig::pipelined`,
//! [`gridledger_rollup::driver::Mode::ConventionalOr`]) after the r24 fix
//! (the guard plans the backup checks of every due posting and sends them
//! together with the watchers' disputes: every commitment in one block,
//! the reveals in the next blocks).
//!
//! Finding [1] (critical: theft, no timing premise, a week of window
//! left): the bonded challenge (issue 11 item 2, the permissionless
//! safety net when every delegate a meter picks stays silent) now sends
//! its reveal with every other due posting's in one pass, so one trader's
//! bonds for k forgeries must all be reserved in its wallet at once (each
//! reveal: the 10 coin bond plus `DRIVER_GAS_LIMIT` x 1 = 100 coin of fee
//! reservation). Every validator colludes; two sybil executors forge one
//! batch ahead each before the run; the meters of the traders the batches
//! name alarm, and the first of them posts both bonds. With 200 coin in
//! that trader's wallet (one bonded challenge fits, as the control shows,
//! and sent one posting after the other the first bond came back with its
//! reward before the second) the second reveal is refused at submission
//! (`insufficient balance: need 220000000, have 200682620`) and `process`
//! returns that error; both postings are already marked watched and
//! backed, so nothing checks the second again: the next `process`
//! settles its minting root (the accomplice withdraws 9.84 coin) and
//! then stops with `BatchData` on that batch. What should happen: a
//! refused or failed backup dispute leaves the posting to be checked
//! again (or the bonds of one sender are sent in sequence), and the error
//! does not abandon the pass. Sent one posting after the other (the
//! planted `BackupDisputesOneByOne`, the code before r24's fix) the same
//! scenario holds: the first bond comes back with its reward before the
//! second is sent.
//!
//! Finding [2] (critical under issue 11 item 2's threat: every validator
//! bribed; not new in r24's change): the bonded challenge is posted only
//! by the *first* alarmed meter's owner, and the meters of the traders the
//! batch names act first. A forger whose sybil buyer/seller pair trades
//! in the forged batch makes one of them that challenger; its wallet (50
//! coin, under one reveal's fee reservation) cannot pay, the reveal is
//! refused at submission, the posting is already marked backed, and the
//! honest owners whose meters also alarmed (the post-state root is wrong)
//! never challenge: the minting root settles. A real sybil would simply
//! stay silent; the driver should fall back to the next alarmed owner
//! whenever the challenge is not on chain.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::ChainClient as _;
use gridledger_rollup::exec::PreState;
use gridledger_rollup::roles::ValidatorBehaviour;
use gridledger_rollup::state::state_root;

/// Leaves `k`'s primary-chain wallet holding `keep` (a transfer of the
/// rest to a fresh account, sealed).
fn leave_in_wallet(e: &mut Env, k: &KeyPair, keep: Amount) {
    let chain_id = e.d.primary.chain_id();
    let bal = e.d.primary.account(&k.address()).balance;
    let fee = gridledger_rollup::types::coins(1);
    let amount = Amount(bal.0 - keep.0 - fee.0);
    let to = fresh_keys(77_000, 1)[0].address();
    let nonce = e.d.primary.next_nonce(&k.address());
    let tx = gridledger_ledger::devnet::transfer(k, chain_id, nonce, to, amount, Amount(1));
    e.d.primary.submit(&tx).unwrap();
    e.d.primary.seal().unwrap();
}

/// Every validator colludes (silent as watcher and as delegate); `k`
/// sybil executors each forge one batch ahead (a root minting an
/// accomplice 10 coin), posted before the run, a week of window left.
/// With `wallet`, the traders the batches name (whose meters alarm
/// first, so one of them posts every bonded challenge) hold that much on
/// the primary chain. Runs `process` up to three times (errors noted).
/// Returns (forged roots settled, summary).
fn bonded_challenges(k: usize, wallet: Option<Amount>) -> (Vec<u64>, String) {
    let mut e = or_funded_with(k + 2);
    for i in 0..e.d.validators.len() {
        e.d.set_validator(i, ValidatorBehaviour::Colluding);
    }
    let fin = record_batches(&mut e, 24);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let mut picked: Vec<(u64, KeyPair)> = Vec::new();
    for b in fin + 1..next {
        let y = executor_of(&e, b);
        if y.address() != x && !picked.iter().any(|(_, p)| p.address() == y.address()) && picked.len() < k {
            picked.push((b, y));
        }
    }
    assert_eq!(picked.len(), k, "k other executors assigned batches ahead");
    if let Some(w) = wallet {
        for i in 0..2 {
            leave_in_wallet(&mut e, &trader(i), w);
        }
    }
    let accomplice = trader(3);
    let mut forged: Vec<(u64, PreState)> = Vec::new();
    for (b, y) in &picked {
        forged.push((*b, forge_ahead(&mut e, y, *b, accomplice.address())));
    }
    let bonds_before = e.d.bonded_challenges;
    let mut runs = Vec::new();
    for i in 0..3 {
        let r = e.d.process(&mut rng(25 + i));
        runs.push(r.as_ref().map(|s| s.len()).map_err(|err| err.to_string()));
        if r.is_ok() {
            break;
        }
    }
    let stolen: Vec<u64> =
        forged.iter().filter(|(b, m)| settled_root_of(&e, *b) == Some(state_root(m))).map(|(b, _)| *b).collect();
    let gained = match forged.iter().find(|(b, m)| settled_root_of(&e, *b) == Some(state_root(m))) {
        Some((_, m)) => withdraw_minted(&mut e, m, &accomplice).0,
        None => 0,
    };
    let overturned: Vec<u64> =
        forged.iter().filter(|(b, _)| e.d.batch_header(*b).unwrap().overturned).map(|(b, _)| *b).collect();
    (
        stolen.clone(),
        format!(
            "forged {:?}; stolen {stolen:?}; the accomplice withdrew {gained} minor units; overturned {overturned:?}; \
             bonded challenges planned {}; runs {runs:?}",
            forged.iter().map(|f| f.0).collect::<Vec<_>>(),
            e.d.bonded_challenges - bonds_before
        ),
    )
}

/// Held up (control): every validator colludes, two sybil forgeries
/// ahead; the traders' wallets are untouched; the bonded challenges
/// overturn both.
#[test]
fn two_forgeries_with_every_validator_colluding_are_overturned_by_bonds() {
    let (stolen, why) = bonded_challenges(2, None);
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}

/// Control: one forgery, the bonded trader's wallet holds 200 coin (a
/// 10 coin bond plus the reveal's 100 coin fee reservation fit once):
/// overturned.
#[test]
fn one_forgery_and_a_wallet_for_one_bond_is_overturned() {
    let (stolen, why) = bonded_challenges(1, Some(gridledger_rollup::types::coins(200)));
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}

/// Finding [1]: two forgeries, the bonded trader's wallet holds 200 coin.
/// Sent one posting after the other (before r24's fix) the first bond
/// came back with its reward before the second was posted; now both
/// reveals are submitted together and must be reserved at once.
#[test]
#[ignore = "attack r25: the together pass reserves every bonded challenge of one trader at once; the second is refused and its forgery settles"]
fn two_forgeries_and_a_wallet_for_one_bond_are_overturned() {
    let (stolen, why) = bonded_challenges(2, Some(gridledger_rollup::types::coins(200)));
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}

/// Finding [2]: one forgery; the traders the batches name are the
/// forger's sybil buyer/seller pair (issue 11 item 1's pattern), their
/// primary-chain wallets holding 50 coin (less than one reveal's 100 coin
/// fee reservation). Their meters alarm first, so the first of them is
/// the only bonded challenger; its reveal is refused at submission, the
/// posting is marked backed, and no honest alarmed meter's owner (traders
/// 2 and 3 alarm too: the post-state root is wrong) ever challenges.
#[test]
#[ignore = "attack r25: only the first alarmed meter's owner bonds; a sybil trader that cannot lets the forgery settle"]
fn a_sybil_trader_first_alarmed_cannot_bond_and_no_other_owner_does() {
    let (stolen, why) = bonded_challenges(1, Some(gridledger_rollup::types::coins(50)));
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}
