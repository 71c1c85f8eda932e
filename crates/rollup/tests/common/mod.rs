//! Shared helpers for the IOR scenario tests.
#![allow(dead_code)]

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy, Hash32, Timestamp};
use gridledger_ledger::devnet::{dev_key, dev_validator};
use gridledger_ledger::{contract_address, Receipt, StateRead, TxStatus};
use gridledger_rollup::driver::{meter_key, DriverConfig, DualChain, Mode};
use gridledger_rollup::exec::{execute_batch, execute_leaves, OffChain};
use gridledger_rollup::primary::{Controversial, SubmitTcrs};
use gridledger_rollup::roles::{Call, Target};
use gridledger_rollup::state::{fill_post_roots, post_state, records, state_root};
use gridledger_rollup::types::{
    coins, entry_hash, AgreementTerms, AgreementTx, Entry, IorParams, IorTx, Outcome, Participant, SettlementTx,
    StSettlement, Tcr, TcrLeaf, BLACK_HOLE,
};
use gridledger_rollup::{args, IOR_PRIMARY_ID};

pub mod pipelined;

pub const WALLET: Amount = Amount(1_000_000 * 1_000_000);
pub const HOUR: u64 = 3_600_000;
pub const MIN: u64 = 60_000;

pub struct Env {
    pub d: DualChain,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

pub fn config(mode: Mode, participants: usize, executors: usize, validators: usize) -> DriverConfig {
    DriverConfig {
        params: IorParams::case_study(),
        mode,
        ior_window_ms: 5_000,
        node_deposit: coins(100),
        bonus_permille: 500,
        participants,
        executors,
        validators,
        wallet: WALLET,
        delegates: 2,
        challenge_bond: coins(10),
        delegation_fee: Amount(10_000),
    }
}

pub fn open(cfg: DriverConfig) -> Env {
    let step_s = cfg.params.meter_step_s;
    open_metered(cfg, step_s)
}

/// [`open`] with the traders' meters registered at `step_s` seconds.
pub fn open_metered(cfg: DriverConfig, step_s: u32) -> Env {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let traders: Vec<KeyPair> = (0..cfg.participants).map(dev_key).collect();
    let mut d = DualChain::open(a.path(), b.path(), cfg).unwrap();
    d.register_meters_every(&traders, step_s).unwrap();
    Env { d, _dirs: (a, b) }
}

pub fn trader(i: usize) -> KeyPair {
    dev_key(i)
}

/// 30-minute slot starting at `start`, DL 15 minutes after it ends.
pub fn terms(buyer: &KeyPair, seller: &KeyPair, ep_per_kwh: Amount, em_wh: u64, start: Timestamp) -> AgreementTerms {
    AgreementTerms {
        ep: ep_per_kwh,
        em: Energy(em_wh),
        buyer: buyer.address(),
        seller: seller.address(),
        dt_start: start,
        dt_end: start + 30 * MIN,
        dl: start + 45 * MIN,
    }
}

pub fn at(t: &AgreementTerms, seller: &KeyPair) -> IorTx {
    IorTx::At(AgreementTx::signed(t.clone(), seller))
}

/// An ST with six 5-minute readings of `watts`, signed by `buyer` when given.
pub fn st(t: &AgreementTerms, watts: i64, ob: bool, buyer: Option<&KeyPair>) -> SettlementTx {
    let s = SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + 5 * MIN,
        buyer_sig: None,
        ob,
        dt_step_s: 300,
        ps: vec![watts; 6],
        meter_sig: None,
    }
    .sign_readings(&meter_key(&t.seller));
    match buyer {
        Some(b) => s.sign_as_buyer(b),
        None => s,
    }
}

/// Every coin on the primary chain: all development wallets, the chain's
/// validator (fees), the IOR contract and the black hole.
pub fn primary_total(d: &DualChain, accounts: usize) -> u128 {
    let st = d.primary.chain.state();
    let mut addrs: Vec<Address> = (0..accounts).map(|i| dev_key(i).address()).collect();
    addrs.push(dev_validator(0).address());
    addrs.push(contract_address(IOR_PRIMARY_ID));
    addrs.push(BLACK_HOLE);
    addrs.iter().map(|a| st.account(a).balance.0).sum()
}

/// Fees `who` paid on the primary chain in blocks after height `after`,
/// from their receipts.
pub fn fees_paid(d: &DualChain, who: &Address, after: u64) -> u128 {
    let mut sum = 0;
    for h in after + 1..=d.primary.chain.tip().height {
        let Some(block) = d.primary.chain.block(h).unwrap() else { continue };
        for stx in block.txs.iter().filter(|t| t.tx.sender.address() == *who) {
            sum += d.primary.chain.receipt(&stx.tx.hash()).unwrap().map_or(0, |r| r.fee.0);
        }
    }
    sum
}

pub fn black_hole(d: &DualChain) -> Amount {
    d.primary.chain.state().account(&BLACK_HOLE).balance
}

pub fn contract_balance(d: &DualChain) -> Amount {
    d.primary.chain.state().account(&contract_address(IOR_PRIMARY_ID)).balance
}

/// Σ IOR free balances of all development accounts + active node deposits
/// must equal the contract's coin when no agreement is open.
pub fn internal_total(d: &DualChain, accounts: usize) -> u128 {
    let mut sum = 0u128;
    for i in 0..accounts {
        let a = dev_key(i).address();
        sum += d.participant(&a).unwrap().balance.0;
        let v = d.primary.chain.view(IOR_PRIMARY_ID, "node", &borsh::to_vec(&a).unwrap()).unwrap();
        if v["active"].as_bool() == Some(true) {
            sum += v["deposit"].as_str().unwrap().parse::<u128>().unwrap();
        }
    }
    sum
}

pub fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// Four traders, two executors, three validators; traders 0–2 funded with
/// 10 coin; the clock at 07:00. The setup of the security and attack tests.
pub fn funded() -> Env {
    funded_with_window(5_000)
}

/// [`funded`] with a dispute window of `window_ms` (each call is a block
/// that advances the clock, so a test making many calls inside one window
/// needs a longer one).
pub fn funded_with_window(window_ms: u64) -> Env {
    funded_metered(window_ms, IorParams::case_study().meter_step_s)
}

/// [`funded_with_window`] with the traders' meters reading every `step_s`
/// seconds.
pub fn funded_metered(window_ms: u64, step_s: u32) -> Env {
    let mut e = open_metered(DriverConfig { ior_window_ms: window_ms, ..config(Mode::Ior, 4, 2, 3) }, step_s);
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    e
}

pub fn node_active(e: &Env, a: &Address) -> bool {
    e.d.primary.chain.view(IOR_PRIMARY_ID, "node", &borsh::to_vec(a).unwrap()).unwrap()["active"] == true
}

/// Closes the open batch and returns its honest TCRs and its executor's key.
pub fn honest_tcrs(e: &mut Env, batch: u64) -> (Vec<Tcr>, KeyPair) {
    e.d.primary.seal();
    let input = e.d.batch_input(batch).unwrap();
    let tcrs = execute_batch(&mut OffChain, &e.d.cfg.params, &input.prestate, &input.entries).unwrap();
    let key = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    (tcrs, key)
}

/// `sc_cr` arguments posting `tcrs` for `entries` of `batch`: each leaf
/// carries the honest pre-state slice of its entry (empty where there is
/// none), so only the verdicts and effects are what the caller chose.
pub fn tcr_args(e: &Env, batch: u64, tcrs: Vec<Tcr>, entries: Vec<Entry>) -> Vec<u8> {
    let input = e.d.batch_input(batch).ok();
    let pre = input.as_ref().map(|i| i.prestate.clone()).unwrap_or_default();
    let honest = execute_leaves(&mut OffChain, &e.d.cfg.params, &pre, &entries).unwrap_or_default();
    // The post-state root the posted TCRs leave (the honest one where they
    // do not apply).
    let p = &e.d.cfg.params;
    let full = input.as_ref().map(|i| i.full_state(p)).unwrap_or_default();
    let burned = post_state(p, &full, &entries, &tcrs).map(|(_, b)| b).unwrap_or_default();
    let mut leaves: Vec<TcrLeaf> = tcrs
        .into_iter()
        .map(|t| TcrLeaf {
            pre: honest.get(t.index as usize).map(|l| l.pre.clone()).unwrap_or_default(),
            tcr: t,
            post_root: Hash32::ZERO,
        })
        .collect();
    fill_post_roots(p, &full, &entries, &mut leaves);
    let post_root = leaves.last().map_or_else(|| state_root(&full), |l| l.post_root);
    let leaves = leaves.iter().map(|l| l.posted()).collect();
    args(&SubmitTcrs { batch, entry_hashes: entries.iter().map(entry_hash).collect(), leaves, post_root, burned })
}

/// Records a batch's TCRs with `sc_cr` (one root for the batch).
pub fn record_tcrs(e: &mut Env, key: &KeyPair, batch: u64, tcrs: Vec<Tcr>) -> Receipt {
    let entries = e.d.entries(batch).unwrap();
    let a = tcr_args(e, batch, tcrs, entries);
    send_tcrs(e, key, batch, a)
}

/// Sends `sc_cr` arguments `a` for `batch` as an honest executor does: in
/// IOR as they are; in the baseline ([`Mode::ConventionalOr`]) with
/// `sc_cr_on`, stating the state the batches before it really leave as
/// its claimed pre-root (`DualChain::state_before`).
pub fn send_tcrs(e: &mut Env, key: &KeyPair, batch: u64, a: Vec<u8>) -> Receipt {
    if e.d.cfg.mode != gridledger_rollup::driver::Mode::ConventionalOr {
        return e.d.primary_call(key, "sc_cr", a, Amount::ZERO).unwrap();
    }
    let tcrs: gridledger_rollup::primary::SubmitTcrs = borsh::from_slice(&a).unwrap();
    let pre_root = state_root(&e.d.state_before(batch).unwrap());
    let a = args(&gridledger_rollup::primary::SubmitTcrsOn { pre_root, tcrs });
    e.d.primary_call(key, "sc_cr_on", a, Amount::ZERO).unwrap()
}

/// [`record_tcrs`], as a list of receipts.
pub fn post(e: &mut Env, key: &KeyPair, batch: u64, tcrs: Vec<Tcr>) -> Vec<Receipt> {
    vec![record_tcrs(e, key, batch, tcrs)]
}

/// The revert reason of a receipt that must be a revert.
pub fn reverted(r: &Receipt) -> String {
    match &r.status {
        TxStatus::Reverted(why) => why.clone(),
        s => panic!("expected a revert, got {s:?}"),
    }
}

/// Settles the queued `fund`s (an empty batch that only applies them), so
/// the traders have settled records to withdraw against.
pub fn settle_funding(e: &mut Env) {
    let r = e.d.flush(&trader(3)).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    e.d.process(&mut rng(0)).unwrap();
}

/// The executor of `batch`'s forged posting, built but not sent: honest
/// verdicts and a last post-state root that mints it 10 coin. Returns the
/// executor, the `sc_cr` arguments, the honest TCRs and the number of
/// records before the batch.
pub fn forged_posting(e: &Env, batch: u64) -> (KeyPair, SubmitTcrs, Vec<Tcr>, usize) {
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut honest = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    fill_post_roots(&p, &full, &input.entries, &mut honest);
    let tcrs: Vec<Tcr> = honest.iter().map(|l| l.tcr.clone()).collect();
    let (mut minted, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    minted.participants.insert(exec.address(), Participant { balance: coins(10), reputation: p.rs });
    let mut posted: Vec<_> = honest.iter().map(|l| l.posted()).collect();
    let last = posted.len() - 1;
    posted[last].post_root = state_root(&minted);
    let sub = SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: posted[last].post_root,
        leaves: posted,
        burned,
    };
    (exec, sub, tcrs, records(&full).len())
}

/// The executor of `batch` posts [`forged_posting`]. Returns the number of
/// records before the batch.
pub fn forge_last_root(e: &mut Env, batch: u64) -> usize {
    let (exec, sub, _, n) = forged_posting(e, batch);
    assert_eq!(send_tcrs(e, &exec, batch, args(&sub)).status, TxStatus::Success);
    n
}

/// A [`funded_with_window`]`(60_000)` env, funding settled, whose next
/// batch holds one AT (trader 0 buys 500 Wh from trader 1 for 09:00) and
/// is closed but not posted. Returns the env and the batch.
pub fn one_at_batch() -> (Env, u64) {
    let mut e = funded_with_window(60_000);
    settle_funding(&mut e);
    let (b, s) = (trader(0), trader(1));
    let txs: Vec<(KeyPair, IorTx)> = vec![(b.clone(), at(&terms(&b, &s, Amount(200_000), 500, 9 * HOUR), &s))];
    e.d.submit_block(&txs).unwrap();
    e.d.primary.seal();
    let batch = e.d.batch_header(1).unwrap().id;
    (e, batch)
}

/// [`one_at_batch`] whose executor forged the batch's post-state root
/// ([`forge_last_root`]); returns the env, the forger and the batch.
pub fn forged_batch() -> (Env, KeyPair, u64) {
    let (mut e, batch) = one_at_batch();
    forge_last_root(&mut e, batch);
    let h = e.d.batch_header(batch).unwrap();
    let exec = e.d.executors.iter().find(|(k, _)| Some(k.address()) == h.posted_by).unwrap().0.clone();
    (e, exec, batch)
}

/// The assigned validator's step for `batch` (commit, then dispute) and
/// its key.
pub fn validator_step(e: &mut Env, batch: u64) -> (KeyPair, Vec<Call>) {
    validator_calls(e, batch, ["commit_dispute", "dispute_state"])
}

/// The assigned validator's primary-chain calls on `batch`'s recorded
/// TCRs, checked to be `methods`, and its key.
fn validator_calls(e: &mut Env, batch: u64, methods: [&str; 2]) -> (KeyPair, Vec<Call>) {
    let input = e.d.batch_input(batch).unwrap();
    let i = e.d.validators.iter().position(|(k, _)| k.address() == input.header.validator).unwrap();
    let step = e.d.validators[i].1.on_tcrs_recorded(&input);
    let calls: Vec<_> = step.calls.into_iter().filter(|c| c.target == Target::Primary).collect();
    assert_eq!(calls.iter().map(|c| c.method).collect::<Vec<_>>(), methods);
    (e.d.validators[i].0.clone(), calls)
}

/// `k`'s coin on the primary chain (its wallet, not its IOR account).
pub fn wealth(e: &Env, k: &KeyPair) -> u128 {
    e.d.primary.chain.state().account(&k.address()).balance.0
}

/// A whole-batch `dispute` of `batch` with the given claimed TCRs: the
/// posted entries and a witness of the settled records they touch.
pub fn whole(e: &Env, batch: u64, claimed: Vec<Tcr>) -> Vec<u8> {
    let input = e.d.batch_input(batch).unwrap();
    args(&Controversial {
        batch,
        claimed,
        entries: input.entries.clone(),
        witness: gridledger_rollup::state::batch_witness(
            input.state.as_ref().unwrap(),
            &input.queue,
            &input.entries,
            e.d.cfg.params.meter_step_s,
        ),
    })
}

/// [`whole`] claiming the TCRs an honest re-execution of `batch` gives
/// (an uncommitted copier's dispute).
pub fn whole_dispute(e: &Env, batch: u64) -> Vec<u8> {
    let p = e.d.cfg.params.clone();
    let input = e.d.batch_input(batch).unwrap();
    let own = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    whole(e, batch, own.iter().map(|l| l.tcr.clone()).collect())
}

/// Records one AT per `(buyer, terms)` sold by `seller` in one block,
/// checks that all are accepted, and moves the clock one minute past the
/// latest delivery period (when the seller may send its STs).
pub fn agreed(e: &mut Env, seller: &KeyPair, ats: &[(&KeyPair, &AgreementTerms)]) {
    let txs: Vec<(KeyPair, IorTx)> = ats.iter().map(|(b, t)| ((*b).clone(), at(t, seller))).collect();
    e.d.submit_block(&txs).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted; ats.len()]);
    e.d.set_time(ats.iter().map(|(_, t)| t.dt_end).max().unwrap() + MIN);
}

/// A disputed ST (`O_b = 0`, signed by `buyer`) whose readings `ps`, one
/// every `step_s` seconds, are signed by the seller's meter.
pub fn metered_st(t: &AgreementTerms, buyer: &KeyPair, step_s: u32, ps: Vec<i64>) -> SettlementTx {
    SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + 5 * MIN,
        buyer_sig: None,
        ob: false,
        dt_step_s: step_s,
        ps,
        meter_sig: None,
    }
    .sign_readings(&meter_key(&t.seller))
    .sign_as_buyer(buyer)
}

/// [`funded`] with a short claim horizon: delivery periods and deadlines
/// of at most an hour and an hour's expiry grace, so a claimed slot may be
/// read for `2 × 1 h + 1 h` after it begins.
pub fn funded_short_horizon() -> Env {
    let params = IorParams { max_dl_ms: HOUR, expiry_ms: HOUR, ..IorParams::case_study() };
    let mut e = open(DriverConfig { params, ..config(Mode::Ior, 4, 2, 3) });
    for i in 0..3 {
        e.d.fund(&trader(i), coins(10)).unwrap();
    }
    e.d.set_time(7 * HOUR);
    e
}

/// A seller's claim at the horizon's exact boundary (with
/// [`funded_short_horizon`]): a 5-minute sale at 08:00 wins its
/// arbitration and claims 83 Wh of the 08:00 slot's 83.3 Wh; a batch
/// finalizes at 10:56 (the executor prunes what it may); then the same
/// seller's hour-long sale from 08:00 (DL 10:00) is settled at 11:00,
/// `DL + expiry`, the latest it may be, with export only in that first
/// slot. The 08:00 record must still be there: the outcome of that last
/// ST (`SellerShortfall` when the earlier claim is seen).
pub fn claim_at_the_horizon() -> (Env, Vec<Outcome>) {
    let mut e = funded_short_horizon();
    let (b1, b2, s) = (trader(0), trader(2), trader(1));
    let mut t1 = terms(&b1, &s, Amount(200_000), 83, 8 * HOUR);
    t1.dt_end = 8 * HOUR + 5 * MIN;
    t1.dl = t1.dt_end + 15 * MIN;
    let mut t2 = terms(&b2, &s, Amount(200_000), 1, 8 * HOUR);
    t2.dt_end = 9 * HOUR;
    t2.dl = 10 * HOUR;
    agreed(&mut e, &s, &[(&b1, &t1), (&b2, &t2)]);
    e.d.submit(&s, &IorTx::St(metered_st(&t1, &b1, 300, vec![1000]))).unwrap();
    let first: Vec<Outcome> = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect();
    assert_eq!(first, vec![Outcome::StSettled(gridledger_rollup::types::StSettlement::SellerDelivered)]);
    // A batch settles at 10:56 (one bridge item opens it), after which
    // the executor prunes every record it may.
    e.d.set_time(10 * HOUR + 56 * MIN);
    e.d.fund(&trader(3), Amount(1)).unwrap();
    assert_eq!(e.d.flush(&trader(3)).unwrap().status, TxStatus::Success);
    assert_eq!(e.d.process(&mut rng(0)).unwrap().len(), 1, "a batch settled before 11:00");
    assert!(e.d.now() < 11 * HOUR, "still before the horizon: {}", e.d.now());
    e.d.set_time(11 * HOUR);
    let mut ps = vec![0; 12];
    ps[0] = 1000;
    e.d.submit(&s, &IorTx::St(metered_st(&t2, &b2, 300, ps))).unwrap();
    let out = e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect();
    (e, out)
}

/// [`funded`] with trader 3 funded too (10 coin), the funding settled.
pub fn funded_four() -> Env {
    let mut e = funded();
    e.d.fund(&trader(3), coins(10)).unwrap();
    settle_funding(&mut e);
    e
}

/// A seller (trader 1) sells 500 Wh of 08:00–08:30 to A (trader 0) and
/// 500 Wh of 08:05–08:35 to B (trader 2), B's deadline two hours after
/// A's (settling A first is deadline order), in one block of a [`funded`]
/// env; both ATs are accepted. Returns the env, [A, B, seller] and [A's,
/// B's terms].
pub fn sold_twice_overlapping() -> (Env, [KeyPair; 3], [AgreementTerms; 2]) {
    let mut e = funded();
    let (a, b, s) = (trader(0), trader(2), trader(1));
    let ta = terms(&a, &s, Amount(200_000), 500, 8 * HOUR);
    let mut tb = terms(&b, &s, Amount(200_000), 500, 8 * HOUR + 5 * MIN);
    tb.dl = ta.dl + 2 * HOUR;
    e.d.submit_block(&[(a.clone(), at(&ta, &s)), (b.clone(), at(&tb, &s))]).unwrap();
    assert_eq!(e.d.process(&mut rng(0)).unwrap()[0].outcomes, vec![Outcome::AtAccepted, Outcome::AtAccepted]);
    (e, [a, b, s], [ta, tb])
}

/// An agreed ST for `t` (`O_b = 1`, signed by its buyer `buyer`) whose
/// readings the seller invents, unsigned by any meter: 6,000 W in the
/// period's first slot, nothing after.
pub fn invented_agreed_st(t: &AgreementTerms, buyer: &KeyPair) -> SettlementTx {
    SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + 5 * MIN,
        buyer_sig: None,
        ob: true,
        dt_step_s: 300,
        ps: vec![6000, 0, 0, 0, 0, 0],
        meter_sig: None,
    }
    .sign_as_buyer(buyer)
}

/// `n` fresh primary-chain accounts, development keys `from..from + n`.
pub fn fresh_keys(from: usize, n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| dev_key(from + i)).collect()
}

/// `banker` pays each of `keys` `amount` on the primary chain, `per_block`
/// transfers a sealed block.
pub fn pay_each(e: &mut Env, banker: &KeyPair, keys: &[KeyPair], amount: Amount, per_block: usize) {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    for group in keys.chunks(per_block) {
        for k in group {
            let nonce = e.d.primary.next_nonce(&banker.address());
            let tx = gridledger_ledger::devnet::transfer(banker, chain_id, nonce, k.address(), amount, Amount(1));
            e.d.primary.submit(&tx).unwrap();
        }
        e.d.primary.seal().unwrap();
    }
}

/// `n` fresh primary-chain accounts (development keys from `from`) with
/// 100 coin each for fees, paid by trader 2; none of them an IOR
/// participant.
pub fn fee_wallets(e: &mut Env, n: usize, from: usize) -> Vec<KeyPair> {
    let keys = fresh_keys(from, n);
    pay_each(e, &trader(2), &keys, coins(100), 250);
    keys
}

/// Each of `keys` sends a `fund` of the IOR primary (at its next nonce:
/// a key may have sent ATs before), 100 a sealed block: one bridge queue
/// item each.
pub fn fund_from_each(e: &mut Env, keys: &[KeyPair]) {
    use gridledger_ledger::ChainClient as _;
    let chain_id = e.d.primary.chain_id();
    for group in keys.chunks(100) {
        for k in group {
            let nonce = e.d.primary.next_nonce(&k.address());
            let tx = gridledger_ledger::devnet::call(
                k,
                chain_id,
                nonce,
                IOR_PRIMARY_ID,
                "fund",
                vec![],
                Amount(1),
                1_000_000,
            );
            e.d.primary.submit(&tx).unwrap();
        }
        e.d.primary.seal().unwrap();
    }
}

/// `tx` as `sender` records it at `now`.
pub fn entry_of(sender: &KeyPair, now: u64, tx: IorTx) -> Entry {
    Entry { sender: sender.address(), recorded_at: now, tx }
}

/// Terms of a sale by `seller` to `buyer` of `slots` grid slots (at least
/// one) that end a day before `st_at`, their deadline at their end.
pub fn past_terms(e: &Env, buyer: Address, seller: &KeyPair, slots: u64, st_at: Timestamp) -> AgreementTerms {
    let grid = u64::from(e.d.cfg.params.meter_step_s) * 1000;
    let mut t = terms(&trader(0), seller, Amount(200_000), 500, 0);
    t.buyer = buyer;
    t.dt_start = (st_at / grid - slots.max(1)) * grid - 24 * HOUR;
    t.dt_end = t.dt_start + slots.max(1) * grid;
    t.dl = t.dt_end;
    t
}

/// An unsigned ST of `t` whose `slots` readings (one per grid slot) are
/// all 1: refused by execution, but its claim slots count.
pub fn filler_st(e: &Env, t: &AgreementTerms, slots: u64) -> IorTx {
    IorTx::St(SettlementTx {
        terms: t.clone(),
        stmp: 0,
        buyer_sig: None,
        ob: false,
        dt_step_s: e.d.cfg.params.meter_step_s,
        ps: vec![1; slots as usize],
        meter_sig: None,
    })
}

/// Records `ats` (ATs, each with the key that sends it) in blocks of at
/// most `per_sender` entries of one sender, asserting that each records
/// (`what` names them). `SC_DS_AT` takes a seller-signed AT only before
/// its period ends and at most `MAX_AT_LEAD_MS` before it starts (issue
/// 11, attack r9 [2]), so the ATs go earliest period first, each block at
/// the earliest time (never earlier than now) from which its first AT is
/// within that lead, holding the ATs that are within it then. Leaves the
/// clock at the last block's time.
#[allow(dead_code)]
pub fn record_ats_ahead(e: &mut Env, mut ats: Vec<(KeyPair, IorTx)>, per_sender: usize, what: &str) {
    use gridledger_rollup::primary::MAX_AT_LEAD_MS;
    ats.sort_by_key(|(_, tx)| tx.terms().dt_start);
    let mut rest = ats.into_iter().peekable();
    while let Some((_, first)) = rest.peek() {
        let at_time = e.d.now().max(first.terms().dt_start.saturating_sub(MAX_AT_LEAD_MS) + 2 * MIN);
        e.d.set_time(at_time);
        let now = e.d.now();
        let mut sent = std::collections::BTreeMap::new();
        let mut block = Vec::new();
        let mut later = Vec::new();
        while let Some((_, tx)) = rest.peek() {
            // The block's time is the next block's; a minute's margin.
            if tx.terms().dt_start > now + MAX_AT_LEAD_MS - MIN {
                break;
            }
            let (k, tx) = rest.next().unwrap();
            let c = sent.entry(k.address()).or_insert(0usize);
            *c += 1;
            if *c <= per_sender {
                block.push((k, tx));
            } else {
                later.push((k, tx));
            }
        }
        if block.is_empty() {
            // The first AT needs a later clock than the margin allows.
            e.d.set_time(now + MIN);
            continue;
        }
        let r = e.d.submit_block(&block).unwrap();
        assert!(r.iter().all(|r| r.status == TxStatus::Success), "{what} record: {r:?}");
        let mut left: Vec<_> = later.into_iter().chain(rest).collect();
        left.sort_by_key(|(_, tx)| tx.terms().dt_start);
        rest = left.into_iter().peekable();
    }
}

/// Heavy STs of sybil pairs, one per entry of `sizes` (each counting that
/// many settlement records, `entry_records`), to be sent at `st_at` by
/// `sellers[i]`. Each is *backed*: its AT, sent by `buyers[i]` (who has no
/// IOR funds, so execution refuses it) with the seller's signature, is
/// recorded now, before its period, as `SC_DS_ST` requires of an ST that
/// counts claim slots. Records the ATs (one block, processed) and returns
/// the STs.
pub fn backed_fillers(
    e: &mut Env,
    buyers: &[KeyPair],
    sellers: &[KeyPair],
    sizes: &[u32],
    st_at: Timestamp,
) -> Vec<(KeyPair, IorTx)> {
    use gridledger_rollup::primary::entry_records;
    let grid_s = e.d.cfg.params.meter_step_s;
    let records = |e: &Env, slots: u64| {
        let t = past_terms(e, buyers[0].address(), &sellers[0], slots, st_at);
        entry_records(&Entry { sender: sellers[0].address(), recorded_at: st_at, tx: filler_st(e, &t, slots) }, grid_s)
    };
    let base = records(e, 1) - 1;
    assert_eq!(records(e, 8), base + 8);
    let ts: Vec<(AgreementTerms, u64)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let slots = u64::from(n.saturating_sub(base)).max(1);
            (past_terms(e, buyers[i].address(), &sellers[i], slots, st_at), slots)
        })
        .collect();
    let ats: Vec<(KeyPair, IorTx)> =
        ts.iter().enumerate().map(|(i, (t, _))| (buyers[i].clone(), at(t, &sellers[i]))).collect();
    let per_sender = e.d.cfg.params.max_entries_per_sender as usize;
    record_ats_ahead(e, ats, per_sender, "the fillers' ATs");
    e.d.process(&mut rng(0)).unwrap();
    ts.iter().enumerate().map(|(i, (t, slots))| (sellers[i].clone(), filler_st(e, t, *slots))).collect()
}

/// The terms of a sale by `k` to `buyer` of `slots` grid slots from
/// `day0 + i` periods of that length on, its deadline at its end.
pub fn dense_terms(p: &IorParams, day0: u64, k: &KeyPair, buyer: &KeyPair, i: u64, slots: u64) -> AgreementTerms {
    let span = slots * u64::from(p.meter_step_s) * 1000;
    let mut t = terms(buyer, k, Amount(200_000), 500, 0);
    t.dt_start = day0 + i * span;
    t.dt_end = t.dt_start + span;
    t.dl = t.dt_end;
    t
}

/// An ST of [`dense_terms`] read every `step` seconds, every byte of its
/// readings non-zero (the densest calldata an entry can carry). `SC_DS_ST`
/// records it once the agreement's AT is recorded ([`record_dense_ats`]);
/// execution refuses it (the AT was refused: its buyer held no IOR funds).
pub fn dense_st(p: &IorParams, day0: u64, k: &KeyPair, buyer: &KeyPair, i: u64, slots: u64, step: u64) -> IorTx {
    let grid = u64::from(p.meter_step_s);
    let ps = (0..slots * grid / step).map(|j| 0x0101_0101_0101_0101_i64 + j as i64 * 0x0001_0203).collect();
    IorTx::St(SettlementTx {
        terms: dense_terms(p, day0, k, buyer, i, slots),
        stmp: 0,
        buyer_sig: None,
        ob: false,
        dt_step_s: step as u32,
        ps,
        meter_sig: None,
    })
}

/// The most grid slots (at most 64) a [`dense_st`] may span so that `n`
/// of them, recorded by `sender` at `now`, weigh at most `room` gas
/// (`entry_gas`), with the finest reading step (a divisor of the grid)
/// whose entry fits `max_entry_bytes`. Returns `(slots, step)`.
pub fn densest(
    p: &IorParams,
    day0: u64,
    now: u64,
    sender: &KeyPair,
    buyer: &KeyPair,
    n: usize,
    room: u64,
) -> (u64, u64) {
    use gridledger_rollup::primary::{entry_gas, max_entry_bytes};
    let grid = u64::from(p.meter_step_s);
    let bound = max_entry_bytes(p.max_batch);
    let dense = |slots: u64, step: u64| entry_of(sender, now, dense_st(p, day0, sender, buyer, 0, slots, step));
    let size = |slots: u64, step: u64| borsh::to_vec(&dense(slots, step)).unwrap().len();
    (1..=64u64)
        .rev()
        .find_map(|slots| {
            let step = (1..=grid).filter(|s| grid % s == 0).find(|s| size(slots, *s) <= bound)?;
            let g = entry_gas(&dense(slots, step), p.meter_step_s);
            (g * n as u64 <= room).then_some((slots, step))
        })
        .unwrap()
}

/// The seller of the `i`th of `n` [`dense_st`]s: `senders` in turn,
/// `max_entries_per_sender` each.
fn dense_seller<'a>(p: &IorParams, senders: &'a [KeyPair], i: usize) -> &'a KeyPair {
    &senders[i / p.max_entries_per_sender as usize]
}

/// The ATs behind `n` [`dense_sts`]: the `i`th sent by `buyers[i]` (no
/// IOR funds, so execution refuses it), signed by its seller, recorded
/// in one block before the STs' periods, as `SC_DS_ST` requires of an ST
/// that counts claim slots. Records them and processes the batch.
pub fn record_dense_ats(e: &mut Env, day0: u64, senders: &[KeyPair], buyers: &[KeyPair], n: usize, slots: u64) {
    let p = e.d.cfg.params.clone();
    let ats: Vec<(KeyPair, IorTx)> = (0..n)
        .map(|i| {
            let k = dense_seller(&p, senders, i);
            (buyers[i].clone(), at(&dense_terms(&p, day0, k, &buyers[i], i as u64, slots), k))
        })
        .collect();
    record_ats_ahead(e, ats, p.max_entries_per_sender as usize, "the dense STs' ATs");
    e.d.process(&mut rng(0)).unwrap();
}

/// `n` [`dense_st`]s of `slots` slots read every `step` s, each period
/// after the last, the `i`th sold to `buyers[i]`, sent by `senders` in
/// turn, `max_entries_per_sender` each.
pub fn dense_sts(
    p: &IorParams,
    day0: u64,
    senders: &[KeyPair],
    buyers: &[KeyPair],
    n: usize,
    slots: u64,
    step: u64,
) -> Vec<(KeyPair, IorTx)> {
    (0..n)
        .map(|i| {
            let k = dense_seller(p, senders, i).clone();
            let tx = dense_st(p, day0, &k, &buyers[i], i as u64, slots, step);
            (k, tx)
        })
        .collect()
}

/// The seller's ST for `t`, disputed (`O_b = 0`, signed by `buyer`): 1,000
/// W over its half hour, its readings signed by a key that is *not* the
/// seller's certified meter. Returns that key and the ST.
pub fn fake_meter_st(t: &AgreementTerms, buyer: &KeyPair) -> (KeyPair, SettlementTx) {
    let fake = KeyPair::from_seed("not the certified meter");
    assert_ne!(fake.address(), meter_key(&t.seller).address());
    let st = SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + MIN,
        buyer_sig: None,
        ob: false,
        dt_step_s: 300,
        ps: vec![1000; 6],
        meter_sig: None,
    }
    .sign_readings(&fake)
    .sign_as_buyer(buyer);
    (fake, st)
}

/// The executor of `batch` posts its TCRs with leaf 0's inputs forged: its
/// pre-state slice names `fake` as `seller`'s meter, so leaf 0's verdict
/// (`SellerDelivered`; the honest one is `SellerShortfall`) is what
/// re-execution on the posted inputs gives, and the post-state roots
/// follow from it. Returns the executor.
pub fn post_forged_leaf_input(e: &mut Env, batch: u64, seller: &Address, fake: &KeyPair) -> KeyPair {
    use gridledger_rollup::types::{MeterRecord, StSettlement};
    let input = e.d.batch_input(batch).unwrap();
    let p = e.d.cfg.params.clone();
    let full = input.full_state(&p);
    let mut leaves = execute_leaves(&mut OffChain, &p, &input.prestate, &input.entries).unwrap();
    assert_eq!(leaves[0].tcr.outcome, Outcome::StSettled(StSettlement::SellerShortfall), "the honest verdict");
    let mut pre = leaves[0].pre.clone();
    pre.meters.insert(*seller, MeterRecord { key: fake.address(), step_s: p.meter_step_s });
    let forged = execute_leaves(&mut OffChain, &p, &pre, &input.entries[..1]).unwrap().remove(0);
    assert_eq!(forged.tcr.outcome, Outcome::StSettled(StSettlement::SellerDelivered));
    leaves[0] = forged;
    fill_post_roots(&p, &full, &input.entries, &mut leaves);
    let tcrs: Vec<_> = leaves.iter().map(|l| l.tcr.clone()).collect();
    let (_, burned) = post_state(&p, &full, &input.entries, &tcrs).unwrap();
    let sub = SubmitTcrs {
        batch,
        entry_hashes: input.entries.iter().map(entry_hash).collect(),
        post_root: leaves.last().unwrap().post_root,
        leaves: leaves.iter().map(|l| l.posted()).collect(),
        burned,
    };
    let exec = e.d.executors.iter().find(|(k, _)| k.address() == input.header.executor).unwrap().0.clone();
    let r = e.d.primary_call(&exec, "sc_cr", args(&sub), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
    exec
}

/// The assigned validator's step for `batch` when it sends the whole
/// batch (commit, then `dispute`) and its key.
pub fn whole_batch_step(e: &mut Env, batch: u64) -> (KeyPair, Vec<Call>) {
    validator_calls(e, batch, ["commit_dispute", "dispute"])
}

/// The dispute window of `batch` passes; `exec` sends its `finalize`.
pub fn finalize_after_window(e: &mut Env, exec: &KeyPair, batch: u64) -> Receipt {
    let done = e.d.batch_header(batch).unwrap().complete_at.unwrap();
    e.d.set_time(done + e.d.cfg.window_ms() + 1_000);
    e.d.primary_call(exec, "finalize", e.d.finalize_args(batch).unwrap(), Amount::ZERO).unwrap()
}

/// The reserve race of attack r6 [4]: in one block, heavy STs of sybil
/// pairs (their ATs recorded) that fill the STs' share of a batch's gas,
/// then 100 sybils' opinions no one owes them (half naming the buyer's
/// agreement, half fictitious ones), then the buyer's own `O_b = 0`.
/// Returns the block's transactions (fillers first, the buyer's last), the
/// number of fillers, the number of sybil opinions, the buyer's terms and
/// the block's time (within the agreement's opinion window).
pub fn reserve_race(e: &mut Env) -> (Vec<(KeyPair, IorTx)>, usize, usize, AgreementTerms, Timestamp) {
    use gridledger_rollup::types::BuyerOpinion;
    let day = 10 * 24 * HOUR;
    let (b, s) = (trader(0), trader(1));
    let sizes = [750, 750, 750, 750, 400, 200, 100, 50, 25, 12, 6, 3, 3, 3];
    let pairs = fee_wallets(e, 2 * sizes.len(), 8_000);
    let (buyers, sellers) = pairs.split_at(sizes.len());
    let at = day + 8 * HOUR + 40 * MIN;
    let mut txs = backed_fillers(e, buyers, sellers, &sizes, at);
    e.d.set_time(day + 7 * HOUR);
    let t = terms(&b, &s, Amount(200_000), 500, day + 8 * HOUR);
    agreed(e, &s, &[(&b, &t)]);
    e.d.set_time(at);
    let sybils = fee_wallets(e, 100, 9_000);
    for (i, k) in sybils.iter().enumerate() {
        let terms = if i % 2 == 0 { t.clone() } else { past_terms(e, k.address(), &s, 6, at) };
        txs.push((k.clone(), IorTx::Opinion(BuyerOpinion { terms, ob: true })));
    }
    txs.push((b, IorTx::Opinion(BuyerOpinion { terms: t.clone(), ob: false })));
    (txs, sizes.len(), sybils.len(), t, at)
}

/// An ST of `t` with the seller's certified readings `ps` (one every 5
/// minutes) and its buyer's signature over `ob`.
pub fn certified_st(t: &AgreementTerms, buyer: &KeyPair, ob: bool, ps: Vec<i64>) -> SettlementTx {
    SettlementTx { terms: t.clone(), stmp: t.dt_end + MIN, buyer_sig: None, ob, dt_step_s: 300, ps, meter_sig: None }
        .sign_readings(&meter_key(&t.seller))
        .sign_as_buyer(buyer)
}

/// Attack r8 [3]: the seller sells one export (500 Wh over 08:05–08:30)
/// twice, to A (agreed, 08:00–08:30) and B (disputed, 08:05–08:35), as in
/// attack r7 [2]. With `b_first` it settles B's arbitration first (won on
/// the whole export), then, idle again, withdraws its whole free balance
/// and lets a bridge batch apply the debit, and only then sends A's agreed
/// ST: A's sale is undone, and the undo's fine must still be paid (before
/// the undo reserve, it was "`F_p × D_s` as far as its free balance holds
/// it", and the free balance was empty). Otherwise it settles A first (B's
/// arbitration then loses) and withdraws the same way. Returns the
/// seller's IOR balance plus what it withdrew; `None` when a step went
/// otherwise than described (a verdict, a refused withdrawal, an open
/// agreement left), so a mutation check can run it under any planted bug.
pub fn seller_wealth_after_both_sales(b_first: bool) -> Option<u128> {
    use gridledger_rollup::types::StSettlement;
    let (mut e, [a, b, s], [ta, tb]) = sold_twice_overlapping();
    e.d.set_time(tb.dt_end + MIN);
    let a_st = IorTx::St(certified_st(&ta, &a, true, vec![0, 1200, 1200, 1200, 1200, 1200]));
    let b_st = IorTx::St(certified_st(&tb, &b, false, vec![1200, 1200, 1200, 1200, 1200, 0]));
    let settle = |e: &mut Env, tx: IorTx, want: StSettlement| -> Option<()> {
        e.d.submit(&s, &tx).ok()?;
        let got: Vec<Outcome> = e.d.process(&mut rng(0)).ok()?.into_iter().flat_map(|b| b.outcomes).collect();
        (got == vec![Outcome::StSettled(want)]).then_some(())
    };
    let empty = |e: &mut Env| -> Option<u128> {
        let held = e.d.participant(&s.address()).ok()?.balance;
        (e.d.withdraw(&s, held).ok()?.status == TxStatus::Success).then_some(())?;
        (e.d.flush(&trader(3)).ok()?.status == TxStatus::Success).then_some(())?;
        e.d.process(&mut rng(0)).ok()?;
        Some(held.0)
    };
    let withdrawn = if b_first {
        settle(&mut e, b_st, StSettlement::SellerDelivered)?;
        let w = empty(&mut e)?;
        settle(&mut e, a_st, StSettlement::Agreed)?;
        w
    } else {
        settle(&mut e, a_st, StSettlement::Agreed)?;
        settle(&mut e, b_st, StSettlement::SellerShortfall)?;
        empty(&mut e)?
    };
    e.d.settled_state().ok()?.agreements.is_empty().then_some(())?;
    e.d.participant(&s.address()).ok()?.balance.0.checked_add(withdrawn)
}

/// The outcomes of processing everything pending.
pub fn outcomes(e: &mut Env) -> Vec<Outcome> {
    e.d.process(&mut rng(0)).unwrap().into_iter().flat_map(|b| b.outcomes).collect()
}

/// The seller's agreed ST of `t` (one 5-minute reading per grid step of
/// its period at `watts`), signed by its meter and by `buyer` with O_b = 1.
pub fn agreed_st(t: &AgreementTerms, watts: i64, buyer: &KeyPair) -> IorTx {
    let steps = ((t.dt_end - t.dt_start) / (5 * MIN)) as usize;
    let st = SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + MIN,
        buyer_sig: None,
        ob: true,
        dt_step_s: 300,
        ps: vec![watts; steps],
        meter_sig: None,
    }
    .sign_readings(&meter_key(&t.seller))
    .sign_as_buyer(buyer);
    IorTx::St(st)
}

/// Attack r11 [4]'s set-up on a funded `e`: seller `s` signed two quotes
/// for the key (buyer `b`, `s`, 12:00): Y for 12:00 to 12:30 and X for
/// 12:00 to 12:05. The buyer recorded X, it was accepted and settled as
/// agreed at 12:07; the clock stands there. Returns Y and the buyer's free
/// balance once X was paid, or `None` if X was not accepted and settled.
pub fn x_settled_then_y_quoted(e: &mut Env, b: &KeyPair, s: &KeyPair) -> Option<(AgreementTerms, Amount)> {
    settle_funding(e);
    let y = terms(b, s, Amount(200_000), 100, 12 * HOUR);
    let x = AgreementTerms { dt_end: y.dt_start + 5 * MIN, dl: y.dt_start + 20 * MIN, em: Energy(50), ..y.clone() };
    e.d.set_time(12 * HOUR - 10 * MIN);
    let recorded = e.d.submit(b, &at(&x, s)).unwrap().status == TxStatus::Success;
    let opened = recorded && outcomes(e) == vec![Outcome::AtAccepted];
    let paid_x = e.d.participant(&b.address()).unwrap().balance;
    // X's delivery is over; the seller settles it as agreed.
    e.d.set_time(x.dt_end + 2 * MIN);
    let recorded = e.d.submit(s, &agreed_st(&x, 1_000, b)).unwrap().status == TxStatus::Success;
    let settled = recorded && outcomes(e) == vec![Outcome::StSettled(StSettlement::Agreed)];
    (opened && settled).then_some((y, paid_x))
}
