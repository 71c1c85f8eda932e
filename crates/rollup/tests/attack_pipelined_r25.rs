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
//!
//! Finding [3] (critical: theft with every validator honest; one executor
//! and about 3 coin of fees, whatever the amount stolen): the guard
//! marks every due posting watched (and backed) when it *plans* the pass,
//! and any refusal at submission aborts `process` with the pass unsent;
//! nothing ever checks those postings again. r21's scenario (executor X
//! withholds the next batch to settle and posts a minting forgery ahead
//! before the run) plus, just before the run, 71 junk calls from X's
//! sybil at the minimum gas price filling the primary mempool's 256 MiB
//! (4 MiB zero-byte arguments: the driver's same-price transactions evict
//! nothing): the watcher's commitment is refused (`mempool full`); the
//! sybil then replaces its junk with one-coin self-transfers at twice the
//! price (2.98 coin of fees in all, the junk never included), the chain
//! goes on, and the next `process` waits out the withheld
//! batch's window with the forgery's in it, and the minting root settles
//! (the accomplice withdraws 9.84 coin). What should happen: a posting
//! counts as watched once its checks are on chain (or a failed pass is
//! retried); the guard's transactions outbid a flood.
//!
//! Held up: with a week's window the r24 premise (the guard first sees a
//! forgery with 2 s left) is not reachable through `process` itself:
//! every clock jump is preceded by a guard that watches every posting on
//! chain, and a posting left pending in the mempool before the run lands
//! in the driver's first seal (every seal empties the mempool), before
//! that guard (a forgery pending behind a withheld batch, its watcher
//! colluding, is overturned with a week left). Only a run that starts
//! late (the driver idle for most of a window) gives it. Also held up:
//! two forgeries with every validator colluding and the traders' wallets
//! untouched are overturned by the bonded challenges; one forgery with a
//! wallet for one bond is overturned.
//!
//! Fixed (the three findings pass): the guard counts a posting as watched
//! or backed only once its checks are on chain (or none is due), a step
//! refused at submission is left out and the rest sent, and the next pass
//! of the same run backs up what is still due; each payer's bonds of one
//! pass are planned against its wallet, and the next alarmed owner
//! challenges when the previous one cannot or its challenge is not on
//! chain; a guard transaction refused for a full mempool is sent again at
//! a higher gas price (planted `WatchedAtPlan`, `OnlyFirstOwnerBonds`,
//! `GuardNotRepriced` in `tests/mutants.rs`).

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::ChainClient as _;
use gridledger_rollup::exec::PreState;
use gridledger_rollup::roles::ValidatorBehaviour;
use gridledger_rollup::state::state_root;

/// Every validator colludes (silent as watcher and as delegate); `k`
/// sybil executors each forge one batch ahead (a root minting an
/// accomplice 10 coin), posted before the run, a week of window left.
/// With `wallet`, the traders the batches name (whose meters alarm
/// first, so one of them posts every bonded challenge) hold that much on
/// the primary chain. Runs `process` up to three times (errors noted).
/// Returns (forged roots settled, summary).
fn bonded_challenges(k: usize, wallet: Option<Amount>) -> (Vec<u64>, String) {
    let mut e = or_funded_with(k + 2);
    all_validators_collude(&mut e);
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
            leave_in_wallet(&mut e, &trader(i), w, 77_000);
        }
    }
    let accomplice = trader(3);
    let mut forged: Vec<(u64, PreState)> = Vec::new();
    for (b, y) in &picked {
        forged.push((*b, forge_ahead(&mut e, y, *b, accomplice.address())));
    }
    let bonds_before = e.d.bonded_challenges;
    let runs = process_runs(&mut e, 25, 3, true);
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
fn a_sybil_trader_first_alarmed_cannot_bond_and_no_other_owner_does() {
    let (stolen, why) = bonded_challenges(1, Some(gridledger_rollup::types::coins(50)));
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}

/// Fills the primary chain's mempool with `k`'s junk calls at the
/// minimum gas price (large zero-byte arguments: a few hundred coin of
/// gas in all), until not even a 100-byte transaction fits: a call at the
/// same price evicts nothing. Returns how many went in and the first
/// one's nonce.
fn flood_mempool(e: &mut Env, k: &KeyPair) -> (u64, u64) {
    use gridledger_ledger::devnet::call;
    let chain_id = e.d.primary.chain_id();
    let mut size = gridledger_rollup::driver::MAX_TX_BYTES - 4_096;
    let mut n = 0;
    let first = e.d.primary.next_nonce(&k.address());
    while size >= 100 {
        let nonce = e.d.primary.next_nonce(&k.address());
        let gas = 21_000 + 4 * size as u64 + 10_000;
        let tx = call(k, chain_id, nonce, gridledger_rollup::IOR_PRIMARY_ID, "junk", vec![0; size], Amount::ZERO, gas);
        match e.d.primary.submit(&tx) {
            Ok(_) => n += 1,
            Err(_) => size /= 2,
        }
    }
    (n, first)
}

/// Finding [3]: r21's scenario (executor X withholds the next batch to
/// settle and posts a forgery ahead before the run; every validator
/// honest), and just before the run X fills the primary mempool with
/// junk at the minimum gas price. The guard marks the forgery watched,
/// then its watcher's commitment is refused (`MempoolFull`) and `process`
/// returns the error; the chain goes on (the junk is sealed) and the next
/// `process` never watches the posting again: it waits out the withheld
/// batch's window and the forgery's window with it, and the minting root
/// settles.
#[test]
fn a_mempool_flood_at_the_guard_lets_a_forgery_behind_a_withheld_batch_settle() {
    use gridledger_rollup::roles::ExecutorBehaviour;
    let (mut e, first, x, b) = executor_with_a_later_batch();
    let accomplice = trader(3);
    let minted = forge_ahead(&mut e, &x, b, accomplice.address());
    let i = e.d.executors.iter().position(|(k, _)| k.address() == x.address()).unwrap();
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let flooder = fresh_keys(78_000, 1);
    pay_each(&mut e, &trader(2), &flooder, gridledger_rollup::types::coins(5_000), 1);
    let (n, first_nonce) = flood_mempool(&mut e, &flooder[0]);
    let paid_before = e.d.primary.account(&flooder[0].address()).balance;
    let mut runs = Vec::new();
    for i in 0..3 {
        let r = e.d.process(&mut rng(25 + i));
        runs.push(r.as_ref().map(|s| s.len()).map_err(|err| err.to_string()));
        if r.is_ok() {
            break;
        }
        // Once the guard's pass has failed, the flooder replaces its junk
        // with one-coin transfers to itself at twice the price (a few coin
        // of fees in all), and the chain goes on.
        let chain_id = e.d.primary.chain_id();
        let f = &flooder[0];
        for nonce in first_nonce..first_nonce + n {
            let tx = gridledger_ledger::devnet::transfer(f, chain_id, nonce, f.address(), Amount(1), Amount(2));
            let _ = e.d.primary.submit(&tx);
        }
        gridledger_ledger::ChainClient::seal(&mut e.d.primary).unwrap();
    }
    let spent = paid_before.0 - e.d.primary.account(&flooder[0].address()).balance.0;
    let stolen = settled_root_of(&e, b) == Some(state_root(&minted));
    let gained = if stolen { withdraw_minted(&mut e, &minted, &accomplice).0 } else { 0 };
    assert!(
        !stolen,
        "X withheld batch {first}, posted {b} ahead minting 10 coin and flooded the mempool ({n} junk calls, \
         {spent} minor units of fees); every validator honest, yet the minting root settled; the accomplice withdrew \
         {gained} minor units; runs {runs:?}"
    );
}

/// Held up (the r24 premise, "the guard first sees a forgery with 2 s
/// left", through the real driver): X withholds the next batch to settle
/// and leaves its minting forgery ahead *pending* in the mempool at the
/// start of the run (so it lands in whichever block the driver seals
/// first), the forged batch's watcher colluding. Every driver seal empties
/// the mempool, and the first one (the withheld batch's `close`) comes
/// before the guard that precedes the window-long wait: the guard sees the
/// forgery with a week left and the backup checks overturn it.
#[test]
fn a_pending_forgery_behind_a_withheld_batch_is_seen_before_the_wait() {
    use gridledger_rollup::primary::SubmitTcrsOn;
    use gridledger_rollup::roles::ExecutorBehaviour;
    let (mut e, _, x, b) = executor_with_a_later_batch();
    let v = e.d.batch_header(b).unwrap().validator;
    let vi = e.d.validators.iter().position(|(k, _)| k.address() == v).unwrap();
    e.d.set_validator(vi, ValidatorBehaviour::Colluding);
    let accomplice = trader(3);
    let (input, full, leaves, burned) = honest_leaves(&e, b);
    let minted = minted_state(&e, &input, &full, &leaves, accomplice.address());
    let sub = submit_of(b, &input, &leaves, burned, Some(state_root(&minted)));
    let pre_root = state_root(&e.d.state_before(b).unwrap());
    let on = SubmitTcrsOn { pre_root, tcrs: sub };
    let nonce = e.d.primary.next_nonce(&x.address());
    let tx = gridledger_ledger::devnet::call(
        &x,
        e.d.primary.chain_id(),
        nonce,
        gridledger_rollup::IOR_PRIMARY_ID,
        "sc_cr_on",
        gridledger_rollup::args(&on),
        Amount::ZERO,
        gridledger_rollup::driver::DRIVER_GAS_LIMIT,
    );
    e.d.primary.submit(&tx).unwrap();
    let i = e.d.executors.iter().position(|(k, _)| k.address() == x.address()).unwrap();
    e.d.set_executor(i, ExecutorBehaviour::Silent);
    let run = e.d.process(&mut rng(25));
    assert!(e.d.batch_header(b).unwrap().tcr_root.is_some() || e.d.batch_header(b).unwrap().overturned);
    assert_ne!(
        settled_root_of(&e, b),
        Some(state_root(&minted)),
        "the minting root settled; run {:?}",
        run.map(|r| r.len())
    );
    assert!(e.d.batch_header(b).unwrap().overturned || !node_active(&e, &x.address()), "the forgery was overturned");
}

/// Probe: every validator colludes; Y forges batch b ahead (a minting
/// root R) and Z posts b + 1 ahead on R (a made-up post-state root): both
/// alarm the meters, both bonded challenges go in one pass, b's first
/// (its window ends first); b's overturn voids b + 1's posting before its
/// bonded reveal. No forged root settles and no honest trader loses a
/// bond.
#[test]
fn a_bonded_challenge_of_a_posting_voided_in_the_same_pass_loses_nothing() {
    use gridledger_rollup::primary::SubmitTcrsOn;
    let mut e = or_funded_with(4);
    all_validators_collude(&mut e);
    let fin = record_batches(&mut e, 12);
    let x = executor_of(&e, fin).address();
    let b = (fin + 1..fin + 10)
        .find(|b| executor_of(&e, *b).address() != x && executor_of(&e, b + 1).address() != x)
        .expect("two batches ahead not fin's executor's");
    let accomplice = trader(3);
    let y = executor_of(&e, b);
    let minted = forge_ahead(&mut e, &y, b, accomplice.address());
    let r1 = state_root(&minted);
    let on: SubmitTcrsOn = posting_on(&mut e, b + 1, r1, Some(gridledger_core::Hash32([0x25; 32])));
    let z = executor_of(&e, b + 1);
    let r = e.d.primary_call(&z, "sc_cr_on", gridledger_rollup::args(&on), Amount::ZERO).unwrap();
    assert_eq!(r.status, gridledger_ledger::TxStatus::Success, "b + 1 on R: {:?}", r.status);
    let before: Vec<u128> = (0..4).map(|i| wealth(&e, &trader(i))).collect();
    let bonds = e.d.bonded_challenges;
    let run = e.d.process(&mut rng(25));
    let after: Vec<u128> = (0..4).map(|i| wealth(&e, &trader(i))).collect();
    let lost: Vec<(usize, u128)> = (0..4)
        .filter(|i| before[*i] > after[*i] + gridledger_rollup::types::coins(5).0)
        .map(|i| (i, before[i] - after[i]))
        .collect();
    let why = format!(
        "b {b}: overturned {}; b+1 header {:?}; bonded {}; wealth before {before:?} after {after:?}; run {:?}",
        e.d.batch_header(b).unwrap().overturned,
        e.d.batch_header(b + 1).unwrap().state,
        e.d.bonded_challenges - bonds,
        run.as_ref().map(|r| r.len())
    );
    assert_ne!(settled_root_of(&e, b), Some(r1), "the minting root settled: {why}");
    assert!(lost.is_empty(), "an honest trader lost (minor units) {lost:?}: {why}");
}

/// Finding [1] is new in r24's change: with the planted
/// `BackupDisputesOneByOne` (the backup checks sent one posting after the
/// other, as before it) the same wallet bonds both forgeries in turn.
#[cfg(feature = "mutants")]
#[test]
fn two_forgeries_and_a_wallet_for_one_bond_were_overturned_one_by_one() {
    use gridledger_rollup::mutants::{plant, Mutation};
    plant(Some(Mutation::BackupDisputesOneByOne));
    let (stolen, why) = bonded_challenges(2, Some(gridledger_rollup::types::coins(200)));
    plant(None);
    assert!(stolen.is_empty(), "a forged root settled: {why}");
}
