//! Attack round 6 on the rollup (issue 11): the round-5 fixes (record
//! budget, `AfterExpiry`/`PeriodTooLong`, `ClaimSold`, the back-off claim
//! retry, the block-hash validator draw) and the rest. Each finding is an
//! ignored, failing test; its comment states what a careful user expects,
//! what the code does, and the fix suggested.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::types::coins;
use gridledger_rollup::types::{AgreementTerms, BuyerOpinion, IorTx, Outcome, SettlementTx, StSettlement};

fn settle(e: &mut Env, seller: &KeyPair, s: SettlementTx) -> Vec<Outcome> {
    e.d.submit(seller, &IorTx::St(s)).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

fn run(e: &mut Env, who: &KeyPair, tx: IorTx) -> Vec<Outcome> {
    e.d.submit(who, &tx).unwrap();
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// The seller's genuine export over B's period 08:05–08:35 on the
/// 5-minute grid: 1,200 W from 08:05 to 08:30 (500 Wh), nothing after. It
/// exported nothing 08:00–08:05 either.
const B_EXPORT: [i64; 6] = [1200, 1200, 1200, 1200, 1200, 0];

/// [1] THEFT — ONE EXPORT SOLD TWICE THROUGH AN EXPIRY SETTLED AS AGREED.
///
/// The seller exports 500 Wh, all in 08:05–08:30 (its meter-signed
/// readings). It sells those 500 Wh to A (period 08:00–08:30) and again to
/// B (period 08:05–08:35, ending later). A receives the
/// energy and records `O_b = 1` on chain; the seller never sends A's ST,
/// A expires the agreement after `DL + expiry`: settled as agreed, the
/// seller paid, and `ClaimSold` records A's 500 Wh on the period's *first*
/// slot (08:00–08:05) only — where the seller exported nothing. B, who got
/// nothing, records `O_b = 0`; the seller's ST for B (in deadline order:
/// B's deadline is the later one) carries the same genuine readings.
///
/// Expected: `SellerShortfall` — the 500 Wh were sold (and paid) already;
/// B gets its payment, deposit and the seller's penalty.
/// Observed: `SellerDelivered` — B's period does not hold 08:00–08:05,
/// where A's whole claim sits (over a slot whose export is 0), so B's
/// arbitration reads 08:05–08:30 as unclaimed: B pays for A's energy,
/// loses its deposit and is penalised α. The round-5 test
/// (`claims_r5::an_expiry_settled_as_agreed_claims_the_energy_it_pays_for`)
/// passes only because B's period equals A's (the over-claimed first slot
/// counts negative in B's net).
///
/// Fix: a sale paid without readings must reduce every later arbitration
/// over an overlapping period: keep sold-without-readings claims per
/// (seller, period) and in `claim_alloc` treat them as interval demands
/// (check that the sold claims plus the new one fit the export, EDF over
/// the slots) instead of pinning them to the first slot.
///
/// Fixed: a sale paid without certified readings is a demand over its
/// whole period on every slot of it (`exec::record_sold`), which B's
/// arbitration must cover beside its own claim (`exec::realloc`).
#[test]
fn expiry_agreed_claim_on_first_slot_lets_the_export_be_sold_twice() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice_overlapping();
    e.d.set_time(ta.dt_end + MIN);
    assert_eq!(
        run(&mut e, &a, IorTx::Opinion(BuyerOpinion { terms: ta.clone(), ob: true })),
        vec![Outcome::OpinionRecorded]
    );
    assert_eq!(
        run(&mut e, &b, IorTx::Opinion(BuyerOpinion { terms: tb.clone(), ob: false })),
        vec![Outcome::OpinionRecorded]
    );
    e.d.set_time(ta.dl + e.d.cfg.params.expiry_ms + MIN);
    assert!(e.d.now() < tb.dl, "B's ST is sent before its own deadline");
    assert_eq!(run(&mut e, &a, IorTx::Expire(ta.clone())), vec![Outcome::StSettled(StSettlement::Agreed)]);
    let second = settle(&mut e, &s, metered_st(&tb, &b, 300, B_EXPORT.to_vec()));
    assert_eq!(
        second,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "500 Wh exported, 500 Wh already sold to A and paid: B's arbitration must not count them again"
    );
}

/// [2] THEFT — THE SAME BYPASS WITH AN AGREED ST: ITS READINGS ARE NOT
/// CHECKED, SO THE SELLER CHOOSES WHERE `ClaimSold` LANDS.
///
/// Same sale twice as [1]. A signs `O_b = 1` (it got the energy) and the
/// seller settles A with an ST whose readings it invents: 6,000 W in the
/// first slot, 0 after (no meter signature is needed for an agreed
/// settlement). `sold_alloc` records A's 500 Wh where the *ST's* readings
/// put the export — the first slot, where the real meter read 0, outside
/// B's period 08:05–08:35. B disputes; the seller sends B's ST with its genuine, meter-signed
/// readings.
///
/// Expected: `SellerShortfall` (only 500 Wh exported, sold to A).
/// Observed: `SellerDelivered`: B pays for A's energy.
///
/// Fix: `ClaimSold` must not trust uncertified readings: require the
/// meter's signature on an agreed ST's readings (or ignore its readings
/// and record the sale as an interval demand, as for [1]).
///
/// Fixed as [1]: the agreed ST's readings are not used; the sale is a
/// demand over A's whole period.
#[test]
fn agreed_st_with_invented_readings_lets_the_export_be_sold_twice() {
    let (mut e, [a, b, s], [ta, tb]) = sold_twice_overlapping();
    e.d.set_time(ta.dt_end + MIN);
    let invented = invented_agreed_st(&ta, &a);
    assert_eq!(settle(&mut e, &s, invented), vec![Outcome::StSettled(StSettlement::Agreed)]);
    e.d.set_time(tb.dt_end + MIN);
    let second = settle(&mut e, &s, metered_st(&tb, &b, 300, B_EXPORT.to_vec()));
    assert_eq!(
        second,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "500 Wh exported, 500 Wh already sold to A: B's arbitration must not count them again"
    );
}

/// A batch of `max_batch` refused STs, each as large as `SC_DS_*` takes
/// (`max_entry_bytes`) with high-entropy readings (every calldata byte
/// non-zero), their periods sized so the batch sits at
/// `MAX_BATCH_GAS` (fixed: at first `MAX_BATCH_RECORDS`), behind a full
/// bridge queue of distinct accounts.
/// Returns the env, the batch, its records and entries.
fn dense_batch() -> (Env, u64, u32, usize) {
    use gridledger_rollup::primary::{max_entry_bytes, MAX_BATCH_GAS, MAX_QUEUE_PER_BATCH, RESERVED_GAS};
    let mut e = funded_with_window(600_000);
    settle_funding(&mut e);
    let p = e.d.cfg.params.clone();
    let sybils = fresh_keys(1_000, MAX_QUEUE_PER_BATCH as usize);
    let cap = p.max_entries_per_sender as usize;
    let n = p.max_batch as usize;
    let senders = fresh_keys(3_000, n.div_ceil(cap));
    pay_each(&mut e, &trader(2), &[&sybils[..], &senders[..]].concat(), coins(100), 250);
    let now = e.d.now() + 30 * 24 * HOUR;
    let day0 = (now - 20 * 24 * HOUR) / HOUR * HOUR;
    let bound = max_entry_bytes(p.max_batch);
    // The most slots per entry that lets `n` entries fit the STs' share
    // of the gas budget (`MAX_BATCH_GAS − RESERVED_GAS`),
    // and the finest reading step whose entry fits the byte bound.
    let (slots, step) = densest(&p, day0, now, &senders[0], &sybils[0], n, MAX_BATCH_GAS - RESERVED_GAS);
    // The ATs first (`SC_DS_ST` takes an ST that counts claim slots only
    // for an agreement an AT named), each sent by a sybil, before the
    // sybils fund, so the dense batch still applies the full queue.
    record_dense_ats(&mut e, day0, &senders, &sybils, n, slots);
    fund_from_each(&mut e, &sybils);
    e.d.set_time(now);
    let txs = dense_sts(&p, day0, &senders, &sybils, n, slots, step);
    let bytes = borsh::to_vec(&entry_of(&senders[0], now, txs[0].1.clone())).unwrap().len();
    let receipts = e.d.submit_block(&txs).unwrap();
    assert!(
        receipts.iter().all(|r| r.status == TxStatus::Success),
        "{:?}",
        receipts.iter().find(|r| r.status != TxStatus::Success)
    );
    e.d.primary.seal();
    let batch = (1..).take_while(|i| e.d.batch_header(*i).is_ok()).last().unwrap();
    let h = e.d.batch_header(batch).unwrap();
    assert_eq!(h.len(), n);
    let items = e.d.queue(0, u64::MAX).unwrap().len() as u64 - e.d.batch_header(batch - 1).unwrap().queue_to;
    assert_eq!(items, MAX_QUEUE_PER_BATCH, "a full queue");
    eprintln!("{n} STs of {slots} slots at {step} s ({bytes} B each, bound {bound}), {} records", h.records);
    (e, batch, h.records, bytes)
}

/// [3] FROZEN / THEFT — A BATCH WITHIN EVERY BOUND THAT THE DRIVER'S
/// VALIDATOR CANNOT DISPUTE (gas above `DRIVER_GAS_LIMIT`).
///
/// Round 5 sized `MAX_BATCH_RECORDS` on a worst case of a few slot-heavy
/// STs whose readings are mostly zero bytes (`vec![1; n]`: 4 gas per zero
/// calldata byte): ≈ 76 M gas. But every entry travels in the whole-batch
/// `dispute` and in `finalize`, and an entry may take `max_entry_bytes`
/// (6,990 B) of *non-zero* bytes (16 gas each): a batch of `max_batch`
/// (300) such STs — refused for a missing agreement, so they cost their
/// sybil senders only α and a fee — with periods sized to sit exactly at
/// the record budget, behind a full queue, is within every bound
/// `SC_DS_*` checks.
///
/// Expected: its whole-batch dispute and the finalize of the overturned
/// batch fit `DRIVER_GAS_LIMIT` (100 M, what the driver's validator and
/// challengers send) and half the block, as round 5's doc promises for
/// *any* accepted batch.
/// Observed (300 STs of 7 slots read every 3 s, 5,736 B each, 3,000
/// records, 500 queue items): the whole-batch `dispute` reverts out of gas
/// at 100 M (needs ≈ 103.4 M, 1.8 MB of arguments); the assigned
/// validator's per-entry `dispute_state` overturns the forged batch, but
/// `finalize` of the overturned batch reverts out of gas at 100 M (needs
/// ≈ 102.5 M): the driver can never settle the batch, and every account it
/// touches (and every later batch) waits until someone hand-crafts a
/// `finalize` with more gas. A watcher/meter relying on the whole-batch
/// bonded dispute cannot challenge at all with the driver's limit. The
/// driver's `process` then fails with `Stuck(batch)` for good.
///
/// Fix: bound the batch by the bytes and gas its re-execution costs, not
/// by records alone: count an entry's calldata gas (16 × its bytes) plus
/// its records' proof gas against one per-batch gas budget in `SC_DS_*`
/// (e.g. ≤ 40 % of `DRIVER_GAS_LIMIT`), or lower `max_entry_bytes`.
///
/// Fixed: `SC_DS_*` weighs each entry by `entry_gas` (bytes and records)
/// against `MAX_BATCH_GAS`; the densest batch the attacker can now record
/// (sized here to the STs' share) disputes and finalizes in ≈ 50 M gas.
#[test]
fn a_dense_batch_at_every_bound_exceeds_the_drivers_gas_limit() {
    let limit = gridledger_ledger::ChainConfig::default().block_gas_limit;
    let call_limit = gridledger_rollup::driver::DRIVER_GAS_LIMIT;
    let (mut e, batch, records, bytes) = dense_batch();
    forge_last_root(&mut e, batch);
    let a = whole_dispute(&e, batch);
    let d = e.d.primary_call(&trader(1), "dispute", a.clone(), e.d.cfg.challenge_bond).unwrap();
    eprintln!("dispute: {:?} {} gas {} B", d.status, d.gas_used, a.len());
    let (mut e2, batch2, _, _) = dense_batch();
    forge_last_root(&mut e2, batch2);
    let (validator, calls) = validator_step(&mut e2, batch2);
    for c in &calls {
        let r = e2.d.primary_call(&validator, c.method, c.args.clone(), Amount::ZERO).unwrap();
        eprintln!("{}: {:?} {} gas", c.method, r.status, r.gas_used);
    }
    let f = e2.d.primary_call(&trader(1), "finalize", e2.d.finalize_args(batch2).unwrap(), Amount::ZERO).unwrap();
    eprintln!("finalize: {:?} {} gas", f.status, f.gas_used);
    // The driver's own settlement of the overturned batch (its finalize is
    // sent with `DRIVER_GAS_LIMIT`).
    let driver = e2.d.process(&mut rng(0)).map(|v| v.len()).map_err(|e| e.to_string());
    let msg = format!(
        "{records} records, 300 entries of {bytes} B: whole-batch dispute {:?} {} gas ({} B), finalize {:?} {} gas; \
         call limit {call_limit}, block {limit}; the driver's process: {driver:?}",
        d.status,
        d.gas_used,
        a.len(),
        f.status,
        f.gas_used
    );
    assert_eq!(d.status, TxStatus::Success, "{msg}");
    assert_eq!(f.status, TxStatus::Success, "{msg}");
    assert!(d.gas_used <= call_limit && d.gas_used <= limit / 2, "{msg}");
    assert!(f.gas_used <= call_limit && f.gas_used <= limit / 2, "{msg}");
}

/// `n` fresh primary-chain accounts with 100 coin each for fees (paid by
/// trader 2), none of them an IOR participant.
fn wallets(e: &mut Env, n: usize, from: usize) -> Vec<KeyPair> {
    fee_wallets(e, n, from)
}

/// [4] THEFT — A FEW SYBILS FILL EVERY BATCH'S RECORD BUDGET, SO THE
/// BUYER'S `O_b = 0` NEVER LANDS BEFORE `DL` AND THE SELLER IS PAID FOR
/// ENERGY IT DID NOT DELIVER.
///
/// `MAX_BATCH_RECORDS` (3,000) is one budget for the whole batch (one
/// primary block), first come first served, and one entry may count up to
/// ~850 records: a refused ST whose "seller" is its sender and whose
/// fictitious period of ~750 five-minute slots is over (`claim_slots`
/// counts them though no such agreement exists; `SC_DS_*` does not read
/// reputation, so barred sybils keep doing it). Four such STs and ten
/// small ones (14 transactions from 14 sybil accounts: the mempool fills
/// blocks round-robin over senders in order of first arrival, so sybils
/// that arrived first come before the buyer) fill a block's budget; every
/// other IOR entry in that block is refused ("would exceed"). A seller
/// whose buyer got nothing does this in every block from `DT_end` to `DL`:
/// the buyer's on-chain `O_b = 0` is refused each time, and after `DL`
/// the seller's ST without the buyer's signature settles as
/// `LateBuyerSignature` — the seller paid as if it delivered, the buyer's
/// deposit and α gone. The same starves an honest seller's ST until
/// `DL + expiry` (the buyer's expiry then penalises the seller) and halts
/// the whole market, at ~14 transactions (fees only) per block.
///
/// Expected: an honest party's entry cannot be crowded out of a batch at
/// the cost of a few transactions; at least the buyer's `O_b` (3 records)
/// is always recordable before its deadline.
/// Observed: the buyer's opinion is refused ("would exceed") in every
/// block until `DL`; the seller's late ST is `LateBuyerSignature`, the
/// buyer's payment goes to the seller and its reputation falls 30 → 20.
///
/// Fix: bound one entry's records where it is recorded (an ST's period at
/// most `max_dl_ms`, and claim slots counted only for an ST whose
/// agreement exists — the contract cannot see that: let the ST name the
/// batch and index of its AT, proved against that batch's root), budget
/// records per sender per batch, and reserve part of the budget for
/// opinions and expiries (3 records each) that no ST can take.
///
/// Fixed: ATs and STs may fill a batch only to `MAX_BATCH_GAS −
/// RESERVED_GAS`; the last eighth is kept for opinions and expiries, and
/// one sender's entries weigh at most `MAX_SENDER_GAS` per batch. The same
/// flood (every filler it can fit, the next refused "would exceed") leaves
/// the buyer's `O_b = 0` room in the first block; the seller's late ST is
/// `SellerShortfall`.
#[test]
fn sybils_fill_the_record_budget_and_the_buyers_dispute_never_lands() {
    use gridledger_rollup::primary::{MAX_BATCH_GAS, RESERVED_GAS};
    let mut e = funded();
    let (b, s) = (trader(0), trader(1));
    // Day 10 (the fillers' periods lie in the days before).
    let day = 10 * 24 * HOUR;
    let sizes = [750, 750, 750, 750, 400, 200, 100, 50, 25, 12, 6, 3, 3, 3];
    // One filler per sybil: the mempool fills blocks round-robin over
    // senders in order of first arrival, so sybils that arrived first (and
    // keep transactions queued) come before the buyer in every block.
    // `SC_DS_ST` now takes an ST that counts claim slots only for an
    // agreement an AT named (`tests/owed_entries.rs`): each sybil seller's
    // AT with a sybil buyer is recorded first, days before.
    let pairs = wallets(&mut e, 2 * sizes.len(), 4_000);
    let (buyers, sybils) = pairs.split_at(sizes.len());
    let at_dt_end = day + 8 * HOUR + 31 * MIN;
    let mut txs = backed_fillers(&mut e, buyers, sybils, &sizes, at_dt_end);
    e.d.set_time(day + 7 * HOUR);
    let t = terms(&b, &s, Amount(200_000), 500, day + 8 * HOUR);
    agreed(&mut e, &s, &[(&b, &t)]);
    assert_eq!(e.d.now(), at_dt_end);
    let before = e.d.participant(&b.address()).unwrap();
    // The first block after DT_end: the sybils' fillers first, then the
    // buyer's O_b = 0. Greedy: whichever filler no longer fits is refused
    // (a fee), the smaller ones after it take the rest.
    txs.push((b.clone(), IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob: false })));
    let receipts = e.d.submit_block(&txs).unwrap();
    let refused: Vec<String> =
        receipts[..sizes.len()].iter().filter(|r| r.status != TxStatus::Success).map(reverted).collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|w| w.contains("would exceed")),
        "the fillers reach the STs' share: {refused:?}"
    );
    assert_eq!(receipts[sizes.len()].status, TxStatus::Success, "the buyer's O_b lands in the reserve");
    let batch = (1..).take_while(|i| e.d.batch_header(*i).is_ok()).last().unwrap();
    let h = e.d.batch_header(batch).unwrap();
    eprintln!("batch {batch}: {} gas ({} entries), STs refused: {}", h.gas, h.len(), refused.len());
    assert!(h.gas > MAX_BATCH_GAS - RESERVED_GAS - 200_000, "the STs' share is full: {} gas", h.gas);
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out.last(), Some(&Outcome::OpinionRecorded), "{out:?}");
    // After DL: the seller's ST without the buyer's signature.
    e.d.set_time(t.dl + MIN);
    let out = settle(&mut e, &s, st(&t, 0, false, None));
    let after = e.d.participant(&b.address()).unwrap();
    assert_eq!(
        out,
        vec![Outcome::StSettled(StSettlement::SellerShortfall)],
        "the buyer disputed delivery before DL; buyer's balance {:?} -> {:?}, reputation {} -> {}",
        before.balance,
        after.balance,
        before.reputation,
        after.reputation
    );
}

/// [5] THEFT — ROUND 5's "FORGED LEAF INPUT BEHIND A HEAVY BATCH" IS BACK
/// WITH DENSE ENTRIES: THE WHOLE-BATCH DISPUTE, THE ONLY CHALLENGE OF A
/// LEAF'S INPUTS, NEEDS MORE GAS THAN THE DRIVER SENDS.
///
/// As in attack r5: a seller colluding with the batch's executor sends an
/// ST (the buyer signed `O_b = 0`, nothing was delivered) whose readings
/// are signed by a key that is not its certified meter; the executor posts
/// leaf 0 with a pre-state slice naming that key as the meter, so the
/// verdict `SellerDelivered` re-executes correctly on the posted inputs
/// and only the whole-batch `dispute` shows the input is wrong. A sybil
/// pads the batch with 299 refused STs of high-entropy readings, sized to
/// the record budget ([3]), behind a full queue of 500 funds.
///
/// Expected: the assigned validator's whole-batch dispute (sent by the
/// driver with `DRIVER_GAS_LIMIT`) lands; the buyer is refunded
/// (`SellerShortfall`).
/// Observed: 300 entries, 2,999 records; the dispute reverts "out of gas:
/// limit 100000000, needed 103050948"; the window passes, `finalize`
/// settles the forged verdict, the buyer pays for nothing (its free
/// balance stays 8.9 coin instead of 10.5). Only a challenger that hand-
/// sends the dispute with more gas (the block allows 300 M) could stop it;
/// no role of the driver (validator, meters' delegates) does.
///
/// Fix: as [3] (a per-batch gas/byte budget that keeps the whole-batch
/// dispute under `DRIVER_GAS_LIMIT` with margin), and a per-entry
/// challenge of a leaf's inputs (prove the posted `pre` slice against
/// the state before the entry), so no challenge needs the whole batch.
///
/// Fixed by the gas budget of [3] (the padding is sized to it). Since
/// `tests/entry_inputs.rs`, `dispute_entry` also reads the seller's meter
/// from the chain's registry, so this forged input is disproved by its
/// entry alone; a general per-entry proof of a leaf's other inputs is not
/// built.
#[test]
fn a_forged_leaf_input_behind_a_dense_batch_steals_the_buyers_payment() {
    use gridledger_rollup::primary::{entry_gas, MAX_BATCH_GAS, MAX_QUEUE_PER_BATCH, RESERVED_GAS};
    let mut e = funded_with_window(600_000);
    settle_funding(&mut e);
    let p = e.d.cfg.params.clone();
    let (b, s) = (trader(0), trader(1));
    let day = 30 * 24 * HOUR;
    let t = terms(&b, &s, Amount(200_000), 500, day + 8 * HOUR);
    let now = t.dt_end + MIN;
    let (fake, forged_st) = fake_meter_st(&t, &b);
    let g0 = entry_gas(&entry_of(&s, now, IorTx::St(forged_st.clone())), p.meter_step_s);
    // A full bridge queue of distinct accounts for the next batch (funded
    // below), and the padding's senders.
    let sybils = wallets(&mut e, MAX_QUEUE_PER_BATCH as usize, 1_000);
    // The padding: as [3]'s dense STs, each sold to a sybil whose AT was
    // recorded days before (refused by execution: no IOR funds then).
    let cap = p.max_entries_per_sender as usize;
    let n = p.max_batch as usize - 1;
    let senders = wallets(&mut e, n.div_ceil(cap), 3_000);
    let day0 = (now - 20 * 24 * HOUR) / HOUR * HOUR;
    let room = MAX_BATCH_GAS - RESERVED_GAS - g0;
    let (slots, step) = densest(&p, day0, now, &senders[0], &sybils[0], n, room);
    record_dense_ats(&mut e, day0, &senders, &sybils, n, slots);
    e.d.set_time(day + 7 * HOUR);
    e.d.submit_block(&[(b.clone(), at(&t, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted]);
    let buyer0 = e.d.participant(&b.address()).unwrap().balance;
    fund_from_each(&mut e, &sybils);
    e.d.set_time(now);
    let mut txs: Vec<(KeyPair, IorTx)> = vec![(s.clone(), IorTx::St(forged_st))];
    txs.extend(dense_sts(&p, day0, &senders, &sybils, n, slots, step));
    let receipts = e.d.submit_block(&txs).unwrap();
    assert!(receipts.iter().all(|r| r.status == TxStatus::Success));
    e.d.primary.seal();
    let batch = (1..).take_while(|i| e.d.batch_header(*i).is_ok()).last().unwrap();
    let h = e.d.batch_header(batch).unwrap();
    assert_eq!(h.len(), n + 1);
    eprintln!("batch {batch}: {} entries, {} records ({slots} slots at {step} s)", h.len(), h.records);
    // The executor's posting: leaf 0's inputs name the fake meter.
    let exec = post_forged_leaf_input(&mut e, batch, &s.address(), &fake);
    // The assigned validator, as its driver does: commit, then the
    // whole-batch dispute, with the driver's gas limit.
    let (v, calls) = whole_batch_step(&mut e, batch);
    let mut statuses = Vec::new();
    for c in &calls {
        statuses.push(e.d.primary_call(&v, c.method, c.args.clone(), Amount::ZERO).unwrap().status);
    }
    // The window passes; the batch settles as posted.
    let f = finalize_after_window(&mut e, &exec, batch);
    let buyer1 = e.d.participant(&b.address()).unwrap().balance;
    let refund = t.payment().unwrap().0 + p.ds.0 + p.penalty().0;
    assert_eq!(
        buyer1.0,
        buyer0.0 + refund,
        "validator's commit and dispute: {statuses:?}; finalize: {:?}; buyer's balance after the AT {buyer0:?}, after \
         settlement {buyer1:?}",
        f.status
    );
}

/// [6] THEFT FROM AN HONEST SELLER — AN AT THE CHAIN ACCEPTS WHOSE ST NO
/// TRANSACTION CAN CARRY.
///
/// `PeriodTooLong` bounds an AT's period by `max_dl_ms` (7 days: 2,016
/// five-minute slots), but `SC_DS_ST` refuses any entry larger than
/// `max_entry_bytes` (6,990 B for `max_batch` = 300): about 820 readings,
/// i.e. 68 hours at the meter's certified 5-minute interval (the only
/// interval arbitration accepts, `OffMeterInterval`). A seller that signs
/// a 72-hour sale (a weekend's supply) delivers it; the buyer records
/// `O_b = 0`. The seller's genuine, meter-signed ST is refused at
/// recording for its size, so the seller can never bring its evidence; the
/// buyer expires the agreement after `DL + expiry` and collects its
/// payment back plus the seller's penalty, the seller loses α.
///
/// Expected: either the AT is refused (the period bound is what an ST can
/// carry) or the seller's ST is recorded and arbitration finds
/// `SellerDelivered`.
/// Observed: the AT is accepted; the ST is refused at recording ("entry of
/// 7113 bytes exceeds the 6990 bytes every dispute of a full batch can
/// carry"); the buyer's expiry is `Expired`: the seller is never paid, its
/// deposit goes to the buyer with the penalty, its reputation 30 → 20.
///
/// Fix: bound `DT_end − DT_start` in `SC_EXE_AT` by what an ST can carry
/// at the seller's certified interval (`(max_entry_bytes − overhead) / 8`
/// readings × its `step_s`), or let an ST's readings be summed per grid
/// slot (one value per slot) so its size depends on slots, not readings.
///
/// Fixed: `SC_DS_AT` refuses an AT whose largest ST (readings at the
/// seller's certified interval over `DT`, both signatures) would not fit
/// one entry (`AtRecordError::StCannotFit`). At the 5-minute grid: the
/// longest period whose ST fits is recorded, accepted and settled by its
/// seller's genuine ST (`SellerDelivered`); one grid slot more is refused
/// at recording and changes nothing.
#[test]
fn an_accepted_long_period_cannot_be_settled_by_its_seller() {
    let mut e = funded();
    let step = e.d.cfg.params.meter_step_s;
    settle_at_the_st_bound(&mut e, step);
}

/// The longest delivery period (in grid slots) whose largest ST — a
/// reading every `step_s` seconds, both signatures — encodes within
/// `max_entry_bytes`, found from the encoded STs themselves.
fn longest_settleable(
    e: &Env,
    b: &KeyPair,
    s: &KeyPair,
    step_s: u32,
    start: u64,
) -> (u64, Box<dyn Fn(u64) -> AgreementTerms>) {
    use gridledger_rollup::primary::max_entry_bytes;
    let p = e.d.cfg.params.clone();
    let grid = u64::from(p.meter_step_s) * 1000;
    let (b2, s2) = (b.clone(), s.clone());
    let period = move |slots: u64| {
        let mut t = terms(&b2, &s2, Amount(200_000), 500, start);
        t.dt_end = t.dt_start + slots * grid;
        t.dl = t.dt_end + 15 * MIN;
        t
    };
    let size = |t: &AgreementTerms| {
        let readings = ((t.dt_end - t.dt_start) / (u64::from(step_s) * 1000)) as usize;
        let st = metered_st(t, b, step_s, vec![1000; readings]).sign_as_buyer(b);
        let entry = gridledger_rollup::types::Entry { sender: s.address(), recorded_at: t.dl, tx: IorTx::St(st) };
        borsh::to_vec(&entry).unwrap().len()
    };
    let bound = max_entry_bytes(p.max_batch);
    let fits = (1..).take_while(|n| size(&period(*n)) <= bound).last().unwrap();
    assert!(size(&period(fits + 1)) > bound);
    (fits, Box::new(period))
}

/// Both boundaries of `StCannotFit` for a seller whose meter reads every
/// `step_s` seconds: one slot over the longest settleable period is
/// refused at recording (typed, nothing recorded, no balance moved); the
/// longest is accepted, and its seller's genuine ST (1 kW throughout; the
/// buyer recorded `O_b = 0`) is recorded and wins arbitration.
fn settle_at_the_st_bound(e: &mut Env, step_s: u32) {
    use gridledger_rollup::primary::{largest_st_fits, AtRecordError};
    let (b, s) = (trader(0), trader(1));
    let p = e.d.cfg.params.clone();
    let day = 10 * 24 * HOUR;
    e.d.set_time(day);
    let (fits, period) = longest_settleable(e, &b, &s, step_s, day + HOUR);
    eprintln!("{step_s} s meter: the longest settleable period is {fits} grid slots");
    // One slot over: refused at recording.
    let over = period(fits + 1);
    let before = (e.d.participant(&b.address()).unwrap(), e.d.participant(&s.address()).unwrap());
    let r = e.d.submit(&b, &at(&over, &s)).unwrap();
    let why = largest_st_fits(&over, step_s, p.meter_step_s, p.max_batch).unwrap_err();
    assert!(matches!(why, AtRecordError::StCannotFit { .. }));
    assert_eq!(reverted(&r), format!("reverted: {why}"));
    let out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert!(out.is_empty(), "nothing recorded: {out:?}");
    assert_eq!((e.d.participant(&b.address()).unwrap(), e.d.participant(&s.address()).unwrap()), before);
    // Exactly fits: accepted and settled by the seller's genuine ST.
    let t = period(fits);
    largest_st_fits(&t, step_s, p.meter_step_s, p.max_batch).unwrap();
    agreed(e, &s, &[(&b, &t)]);
    assert_eq!(
        run(e, &b, IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob: false })),
        vec![Outcome::OpinionRecorded]
    );
    let readings = ((t.dt_end - t.dt_start) / (u64::from(step_s) * 1000)) as usize;
    let genuine = metered_st(&t, &b, step_s, vec![1000; readings]);
    let r = e.d.submit(&s, &IorTx::St(genuine)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    let st_out: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(st_out, vec![Outcome::StSettled(StSettlement::SellerDelivered)], "{readings} readings");
}

/// [7] THEFT FROM AN HONEST SELLER — [6] FOR AN ORDINARY HALF HOUR: A
/// SELLER WHOSE CERTIFIED METER READS EVERY SECOND CAN NEVER BRING ITS
/// EVIDENCE.
///
/// `register_meter` accepts any interval dividing the 5-minute grid, and
/// arbitration reads readings only at the certified interval
/// (`OffMeterInterval`). At 1 s a half-hour ST carries 1,800 readings
/// (≈ 14.8 kB), over `max_entry_bytes` (6,990 B): refused at recording.
/// Every buyer of such a seller can record `O_b = 0` after a genuine
/// delivery and expire the agreement: refund, the seller's penalty, α.
///
/// Expected: a seller can settle every sale the chain accepted for it
/// (the ST recorded, `SellerDelivered`), or the meter is refused at
/// registration / the AT at recording.
/// Observed: "entry of 14666 bytes exceeds the 6990 bytes every dispute
/// of a full batch can carry"; the buyer's expiry is `Expired`.
///
/// Fix: as [6]: let an ST carry one value per grid slot (the meter signs
/// the per-slot sums), or refuse at `register_meter` an interval whose
/// readings for `max_dl_ms` would not fit `max_entry_bytes`, and bound
/// AT periods by what the seller's certified meter can carry.
///
/// Fixed: `register_meter` refuses an interval at which an ST of one hour
/// would not fit one entry (`MeterError::IntervalTooFine`: 1 s, and 4 s,
/// the finest refused; 5 s, the finest accepted, carries 70 minutes), and
/// `SC_DS_AT` bounds a 5-second seller's periods by what its ST carries
/// (both boundaries, as [6]).
#[test]
fn a_seller_with_a_one_second_meter_cannot_settle_a_half_hour() {
    use gridledger_rollup::primary::{check_meter_interval, MeterError, RegisterMeter};
    use gridledger_rollup::types::{meter_cert_digest, MeterRecord};
    let mut e = funded_metered(5_000, 5);
    // An account without a meter (a validator's) tries the fine intervals.
    let owner = e.d.validators[0].0.clone();
    let key = gridledger_rollup::driver::meter_key(&owner.address()).address();
    let meter_view = |e: &Env| {
        e.d.primary
            .chain
            .view(gridledger_rollup::IOR_PRIMARY_ID, "meter", &gridledger_rollup::args(&owner.address()))
            .unwrap()
    };
    for step_s in [1, 4] {
        let meter = MeterRecord { key, step_s };
        let cert = e.d.authority.sign(&meter_cert_digest(&e.d.cfg.params.domain, &owner.address(), &meter));
        let a = gridledger_rollup::args(&RegisterMeter { meter, cert });
        let r = e.d.primary_call(&owner, "register_meter", a, Amount::ZERO).unwrap();
        let why = check_meter_interval(&owner.address(), step_s, &e.d.cfg.params).unwrap_err();
        assert!(matches!(why, MeterError::IntervalTooFine { .. }), "{why}");
        assert_eq!(reverted(&r), format!("reverted: {why}"));
        assert!(meter_view(&e).is_null(), "nothing registered");
    }
    // The traders' 5-second meters were registered; their sales are
    // bounded by what a 5-second ST carries (at least a half hour).
    settle_at_the_st_bound(&mut e, 5);
}
