//! Attack round 27 on the improved optimistic rollup (issue 11): the
//! challenge-window baseline after the r26 fix (`submit_making_room`,
//! `dispute_gas_limit`, `backup_plan`'s `unpaid`: alarmed owners none of
//! whom can pay the bonded challenge stop the run `Unchecked`).
//!
//! Finding [1] (high under issue 11 item 2's threat, every validator
//! bribed: settlement frozen): the bonded challenge's wallet check
//! reserves the bond plus `RECORD_GAS_LIMIT` (1 M) plus
//! `dispute_gas_limit` (twice the batch estimate plus `DISPUTE_BASE_GAS`,
//! 1 M, alone four times what the dispute uses), while the commitment
//! and the dispute use about 406,000 gas together (162,000 + 244,000,
//! measured in the control below: 0.41 coin at the driver's price). Every trader's primary wallet at 11 coin pays the
//! 10 coin bond and the dispute's real fee several times over, yet every
//! alarmed owner is passed over as unable to pay, so each `process`
//! stops with `Unchecked` and nothing after the forgery settles, however
//! often the driver runs. The forgery does not settle (no theft), but a
//! colluding executor freezes settlement for owners who could afford the
//! check. What should happen: a challenge an owner can pay is sent (its
//! gas limit sized to what the dispute uses, the commitment's fee not
//! held while the reveal is), and the forgery is overturned.
//!
//! Finding [2] (critical: theft, every validator honest, `Mode::Ior`
//! with the demo's 5 s window): the executor of a one-AT batch posts a
//! root minting itself 10 coin, then a sybil fills the primary mempool
//! with junk at the driver's gas price (71 calls). The driver's first
//! call is refused for a full mempool and `submit_making_room` seals
//! through the flood: each sealed block moves the clock 1 s (15 s in
//! all), past the posting's window, before any check is on chain. The
//! forged root settles undisputed (`Settled { disputed: false }`); the
//! flood cost about 1,076 coin at price 1, the minted amount is the
//! forger's choice. Without the flood the forgery is overturned
//! (control). What should happen: no block is sealed past an unchecked
//! posting's window (check first, or stop `Unchecked`), as the guard
//! already promises for the clock the driver moves itself. Cheaper and
//! without any "mempool full" refusal (so not only the r26 change):
//! 2,400 empty junk calls at gas price 2 (192 coin) outrank the driver's
//! calls in every seal, eight blocks of 300, and the forged root settles
//! the same way (block stuffing against a window measured in blocks).
//!
//! Fixed: [1] `DISPUTE_BASE_GAS` is 300,000 (twice the dispute's use
//! beside its estimate), so the wallet check asks the bond, the
//! commitment's limit and about 0.5 M for the one-entry dispute. [2]
//! every path of the driver that seals while the next batch's posting is
//! unchecked (the backup checks as the assigned validator's check, up to
//! the window end; any other call, held claims, `close`, `finalize`,
//! `fund_many`, `register_meters_every`, `submit_block`, up to a quarter
//! of the window) seals one block at a time and stops `Unchecked` at the bound;
//! planted bug `UncheckedPostingSealedThrough`.
//!
//! Held up: with 200 coin per wallet the forgery is overturned and no
//! run stops `Unchecked` (control); the dispute's real gas stays under
//! the limit `dispute_gas_limit` gives it; without the flood the IOR
//! forgery of finding [2] is overturned.

mod common;

use common::pipelined::*;
use common::*;
use gridledger_core::Amount;
use gridledger_rollup::primary::BatchState;
use gridledger_rollup::state::state_root;
use gridledger_rollup::types::coins;

/// (stolen, overturned, runs, commit/dispute gas, summary).
type Outcome = (bool, bool, Vec<Result<usize, String>>, Vec<(u64, bool)>, String);

/// Every validator colludes; executor Y forges a batch ahead minting a
/// fresh accomplice 10 coin; every trader's primary wallet holds
/// `wallet`. Returns (stolen, overturned, runs, dispute gas, summary).
fn forgery_with_wallets(wallet: Amount) -> Outcome {
    let mut e = or_funded_with(3);
    all_validators_collude(&mut e);
    let fin = record_batches(&mut e, 12);
    let (next, _) = e.d.reader().progress().unwrap();
    let x = executor_of(&e, fin).address();
    let b = (fin + 1..next).find(|b| executor_of(&e, *b).address() != x).expect("another executor's batch ahead");
    let y = executor_of(&e, b);
    let accomplice = fresh_keys(79_700, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&accomplice), coins(200), 1);
    for i in 0..4 {
        leave_in_wallet(&mut e, &trader(i), wallet, 79_600);
    }
    let minted = forge_ahead(&mut e, &y, b, accomplice.address());
    let (_, fin_before) = e.d.reader().progress().unwrap();
    let runs = process_runs(&mut e, 27, 3, true);
    let (_, fin_after) = e.d.reader().progress().unwrap();
    let stolen = settled_root_of(&e, b) == Some(state_root(&minted));
    let overturned = e.d.batch_header(b).unwrap().overturned;
    let fees: Vec<(u64, bool)> =
        e.d.gas
            .iter()
            .filter(|g| g.method == "dispute" || g.method == "commit_dispute")
            .map(|g| (g.gas, g.success))
            .collect();
    let why = format!(
        "forged {b}; wallets {wallet:?}; stolen {stolen}; overturned {overturned}; settled {fin_before} -> {fin_after}; \
         commit/dispute gas {fees:?}; runs {runs:?}"
    );
    (stolen, overturned, runs, fees, why)
}

/// Finding [1]: every validator colludes and every trader's wallet holds
/// 11 coin, which covers the 10 coin bond and the commitment's and
/// dispute's real fees (about 0.3 coin at the driver's price): the driver
/// passes every alarmed owner over as unable to pay and every run stops
/// `Unchecked`; settlement is frozen.
#[test]
fn wallets_that_afford_the_challenge_are_not_passed_over() {
    let (stolen, overturned, runs, _, why) = forgery_with_wallets(coins(11));
    assert!(!stolen, "a forged root settled: {why}");
    assert!(
        overturned && runs.iter().any(|r| r.is_ok()),
        "settlement frozen though wallets cover the bond and the real fee: {why}"
    );
}

/// Control: 200 coin per wallet: the bonded challenge overturns the
/// forgery, a run succeeds, and the dispute's real gas is well under
/// the reserve the wallet check demanded of 11 coin wallets (3 M gas:
/// 3 coin at the driver's price, plus the bond).
#[test]
fn wallets_of_200_coin_overturn_and_the_dispute_uses_far_less_than_reserved() {
    let (stolen, overturned, runs, fees, why) = forgery_with_wallets(coins(200));
    assert!(!stolen, "{why}");
    assert!(overturned, "{why}");
    assert!(runs.iter().any(|r| r.is_ok()), "{why}");
    assert!(fees.iter().all(|f| f.1), "a challenge call failed: {why}");
    let used: u64 = fees.iter().map(|f| f.0).sum();
    assert!(used > 0 && u128::from(used) < coins(1).0, "commit + dispute used {used} gas: {why}");
}

/// Fills the primary mempool with `k`'s junk calls at gas price `price`
/// until not even a 100-byte transaction fits. Returns how many went in.
fn flood_at(e: &mut Env, k: &gridledger_core::crypto::KeyPair, price: Amount) -> u64 {
    use gridledger_ledger::devnet::call;
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    let mut size = gridledger_rollup::driver::MAX_TX_BYTES - 4_096;
    let mut n = 0;
    while size >= 100 {
        let nonce = e.d.primary.next_nonce(&k.address());
        let gas = 21_000 + 4 * size as u64 + 10_000;
        let tx = call(k, chain_id, nonce, gridledger_rollup::IOR_PRIMARY_ID, "junk", vec![0; size], Amount::ZERO, gas);
        let tx = gridledger_ledger::Transaction { gas_price: price, ..tx.tx }.sign(k);
        match e.d.primary.submit(&tx) {
            Ok(_) => n += 1,
            Err(_) => size /= 2,
        }
    }
    n
}

/// IOR with a 5 s window (the demo's): the executor of a one-AT batch
/// posts a root minting itself 10 coin, every validator honest; with
/// `flood`, a sybil then fills the primary mempool at the driver's gas
/// price (1). `process` runs up to three times. Returns (overturned,
/// settled forged, summary).
fn ior_forgery(flood: bool) -> (bool, bool, String) {
    ior_forgery_with(if flood { Flood::Full } else { Flood::None })
}

/// What the sybil sends after the forged posting.
#[derive(Clone, Copy)]
enum Flood {
    None,
    /// The mempool filled at gas price 1 ([`flood_at`]).
    Full,
    /// `n` empty junk calls at gas price 2: the mempool far from full.
    Small(u64),
}

/// [`ior_forgery`] with the flood `flood`.
fn ior_forgery_with(flood: Flood) -> (bool, bool, String) {
    let mut f = forged_and_flooded(flood, |_| {});
    f.settle()
}

/// An IOR forgery of [`ior_forgery_with`] made and flooded, not yet
/// processed.
struct Forged {
    e: Env,
    batch: u64,
    /// The forged post-state root.
    forged: gridledger_core::Hash32,
    /// The forged posting's window end.
    end: u64,
    flooder: gridledger_core::crypto::KeyPair,
    /// The flooder's balance before the flood.
    before: u128,
    /// Junk calls sent.
    n: u64,
    /// The clock when the flood was in.
    t0: u64,
}

/// IOR with a 5 s window, every validator honest: `prep` runs on the
/// funded env, then a one-AT batch is recorded, its executor posts a
/// root minting itself 10 coin, and the sybil sends `flood`.
fn forged_and_flooded(flood: Flood, prep: impl FnOnce(&mut Env)) -> Forged {
    use gridledger_ledger::ChainClient as _;
    let mut e = funded_with_window(5_000);
    settle_funding(&mut e);
    let flooder = fresh_keys(79_800, 1).remove(0);
    pay_each(&mut e, &trader(2), std::slice::from_ref(&flooder), coins(5_000), 1);
    prep(&mut e);
    let (b, s) = (trader(0), trader(1));
    let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).unwrap();
    e.d.primary.seal();
    let batch = e.d.batch_header(1).unwrap().id;
    let before = e.d.primary.account(&flooder.address()).balance.0;
    let (_, sub, _, _) = forged_posting(&e, batch);
    forge_last_root(&mut e, batch);
    let end = e.d.batch_header(batch).unwrap().complete_at.expect("posted") + e.d.cfg.window_ms();
    let n = match flood {
        Flood::None => 0,
        Flood::Full => flood_at(&mut e, &flooder, Amount(1)),
        Flood::Small(n) => small_junk(&mut e, &flooder, n),
    };
    let t0 = e.d.primary.tip().timestamp;
    Forged { e, batch, forged: sub.post_root, end, flooder, before, n, t0 }
}

impl Forged {
    /// `process` up to three times. Returns (overturned, settled forged,
    /// summary).
    fn settle(&mut self) -> (bool, bool, String) {
        use gridledger_ledger::ChainClient as _;
        let e = &mut self.e;
        let runs = process_runs(e, 27, 3, true);
        let h = e.d.batch_header(self.batch).unwrap();
        let forged_settled = matches!(h.state, BatchState::Settled { .. }) && h.post_root == Some(self.forged);
        let paid = self.before - e.d.primary.account(&self.flooder.address()).balance.0;
        let why = format!(
            "{} junk calls; the flooder paid {paid} minor units; clock moved {} ms; overturned {}; forged root \
             settled {forged_settled}; state {:?}; runs {runs:?}",
            self.n,
            e.d.primary.tip().timestamp - self.t0,
            h.overturned,
            h.state
        );
        (h.overturned, forged_settled, why)
    }
}

/// Finding [2]: every validator honest, IOR with a 5 s window; after the
/// executor's forged posting a sybil fills the primary mempool at gas
/// price 1. The driver seals through the flood (`submit_making_room`),
/// each block moving the clock 1 s, past the window: the forged root
/// settles undisputed and the executor keeps the 10 coin it minted.
#[test]

fn a_flood_sealed_through_does_not_run_out_the_ior_window() {
    let (overturned, forged, why) = ior_forgery(true);
    assert!(!forged, "the forged root settled: {why}");
    assert!(overturned, "the forged root was not overturned: {why}");
}

/// Control for finding [2]: without the flood the same forgery is
/// overturned.
#[test]
fn without_the_flood_the_ior_forgery_is_overturned() {
    let (overturned, forged, why) = ior_forgery(false);
    assert!(!forged && overturned, "{why}");
}

/// `n` empty junk calls from `k` at gas price 2, admitted. Returns `n`.
fn small_junk(e: &mut Env, k: &gridledger_core::crypto::KeyPair, n: u64) -> u64 {
    use gridledger_ledger::devnet::call;
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    for _ in 0..n {
        let nonce = e.d.primary.next_nonce(&k.address());
        let tx = call(k, chain_id, nonce, gridledger_rollup::IOR_PRIMARY_ID, "junk", vec![], Amount::ZERO, 40_000);
        let tx = gridledger_ledger::Transaction { gas_price: Amount(2), ..tx.tx }.sign(k);
        e.d.primary.submit(&tx).unwrap();
    }
    n
}

/// Finding [2], cheaper: 2,400 empty junk calls at gas price 2 (eight
/// blocks of 300 transactions, the mempool far from full, so no
/// "mempool full" refusal at all): every driver call's seal includes the
/// junk first, each block a second, and the forged root settles.
#[test]

fn cheap_junk_does_not_run_out_the_ior_window() {
    let (overturned, forged, why) = ior_forgery_with(Flood::Small(2_400));
    assert!(!forged, "the forged root settled: {why}");
    assert!(overturned, "the forged root was not overturned: {why}");
}

/// Follow-up to finding [2], every path of the driver that seals blocks
/// while the forged posting is unchecked: `path` runs on [`Forged`] (its
/// result, an `Unchecked` stop included, ignored), then `process`. No
/// block of `path` may reach the posting's window end, and the forgery
/// must be overturned.
fn path_keeps_the_window(path: &str, prep: impl FnOnce(&mut Env), run: impl FnOnce(&mut Env)) {
    let mut f = forged_and_flooded(Flood::Small(2_400), prep);
    run(&mut f.e);
    let after = f.e.d.now();
    let end = f.end;
    let (overturned, forged, why) = f.settle();
    assert!(after < end, "{path} sealed to {after}, past the unchecked posting's window end {end}: {why}");
    assert!(!forged, "the forged root settled after {path}: {why}");
    assert!(overturned, "the forged root was not overturned after {path}: {why}");
}

/// `fund_many` (set-up) while a forged posting stands unchecked behind
/// 2,400 junk calls at twice the driver's price.
#[test]
fn fund_many_does_not_run_out_an_unchecked_ior_window() {
    path_keeps_the_window(
        "fund_many",
        |_| {},
        |e| {
            let _ = e.d.fund_many(&[(trader(2), coins(1))]);
        },
    );
}

/// `register_meters_every` (set-up) of a new trader's meter, as
/// [`fund_many_does_not_run_out_an_unchecked_ior_window`].
#[test]
fn register_meters_does_not_run_out_an_unchecked_ior_window() {
    let newcomer = fresh_keys(79_900, 1).remove(0);
    let k = newcomer.clone();
    path_keeps_the_window(
        "register_meters_every",
        move |e| pay_each(e, &trader(2), std::slice::from_ref(&k), coins(20), 1),
        move |e| {
            let step = e.d.cfg.params.meter_step_s;
            let _ = e.d.register_meters_every(&[newcomer], step);
        },
    );
}

/// `submit_block` (recording the next batch's AT), as
/// [`fund_many_does_not_run_out_an_unchecked_ior_window`].
#[test]
fn submit_block_does_not_run_out_an_unchecked_ior_window() {
    path_keeps_the_window(
        "submit_block",
        |_| {},
        |e| {
            let (b, s) = (trader(0), trader(1));
            let txs = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 10 * HOUR), &s))];
            let _ = e.d.submit_block(&txs);
        },
    );
}

/// `flush` (any single driver call outside the checks: `close`,
/// `finalize`, a held claim's dispute and `prune_claims` go the same
/// way), as [`fund_many_does_not_run_out_an_unchecked_ior_window`].
#[test]
fn a_single_driver_call_does_not_run_out_an_unchecked_ior_window() {
    path_keeps_the_window(
        "flush",
        |_| {},
        |e| {
            let _ = e.d.flush(&trader(3));
        },
    );
}

/// The backup checks: the forged batch's assigned validator colludes
/// (silent), so the smart meters alarm and their delegates dispute at
/// the meters' turn, half a window after the posting, behind the junk.
/// Sealed through the junk, their dispute landed after the window and
/// the forged root settled.
#[test]
fn backup_checks_do_not_run_out_the_ior_window() {
    use gridledger_rollup::roles::ValidatorBehaviour;
    let mut f = forged_and_flooded(Flood::Small(2_400), |_| {});
    let assigned = f.e.d.batch_header(f.batch).unwrap().validator;
    let i = f.e.d.validators.iter().position(|(k, _)| k.address() == assigned).expect("assigned validator");
    f.e.d.set_validator(i, ValidatorBehaviour::Colluding);
    let (overturned, forged, why) = f.settle();
    assert!(!forged, "the forged root settled: {why}");
    assert!(overturned, "the forged root was not overturned: {why}");
}
