//! Round-9 attacks on the CNS contract, by a reviewer who did not write it.
//! Tests marked `#[ignore = "attack: ..."]` reproduce a finding and fail on
//! the code they were written against (expected vs observed in their
//! comment).
//!
//! Run the findings: `cargo test -p gridledger-contracts --test attack_cns_r9 -- --ignored`
#![allow(dead_code, unused_imports)]

mod common;
use common::*;

fn acct_balance(f: &Fx, side: usize) -> u128 {
    f.dc.chain.state().account(&f.accts[side].address()).balance.0
}

fn pool(f: &Fx) -> u128 {
    let m = cns::read::merchant(f.dc.chain.state(), &dev_key(0).address()).unwrap().unwrap();
    m.free.0 + m.reserved.0
}

/// Finding (theft from the merchant; ranking by counter alone on a
/// credit-note channel): side 0 is on a 1,000 credit note, side 1 on a
/// 1,000 deposit; the two collude (or are one person with a sybil MSC).
/// Side 0 tops up 500 by a merchant-signed top-up note.
/// - State 1 allocates the 500 top-up to side 0 and hands everything to
///   side 1, which withdraws all 2,500 (`channel_withdraw` pays it).
/// - State 2 (higher counter, so it supersedes) allocates *no* top-up and
///   gives side 0 the 2,000 balance.
///
/// Closing with state 2, `settle_amounts` takes side 1's over-payment
/// (2,500 paid, 0 withdrawn by state 2) from side 0's parts: its 2,000
/// balance *and its 500 unallocated top-up*. `finalise` then debits the
/// participant `f − b` with `f = capacity + allocated top-up = 1,000` and
/// `b = 0`: a 1,000 debit, while the pool gave 1,500 (note + top-up note)
/// and got back nothing. The unallocated top-up the close hands to side 1
/// is never debited to anyone: the merchant loses 500 (any top-up amount
/// within the credit limit), and the MSC's ledger no longer balances
/// (`imbalance() == 500`).
///
/// Expected: what the merchant's pool lost equals side 0's pending debit
/// (1,500), as in the r8 credit sweep. Observed: the pool lost 1,500,
/// the pending debit is 1,000.
///
/// Fix: in `finalise`, debit a credit side by what the pool actually gave
/// minus what it got back: `debit = f_total − (b + unallocated)` after the
/// deductions (so an unallocated top-up taken by the other side is
/// debited), or never let `settle_amounts` take a credit side's
/// unallocated top-up (refuse the close/withdraw as "the channel holds less
/// than was paid out" for that part).
#[test]
fn a_credit_topup_deallocated_after_a_paid_withdrawal_is_debited() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let cid = f.open_on_credit(0);
    let pool0 = pool(&f);
    let start1 = acct_balance(&f, 1);
    let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(500), 900);
    let a = args(&cns::ChannelTopUpArgs { cid, side: 0, amount: Amount(500), funding: note });
    f.ok(0, "channel_topup", a, Amount::ZERO);
    // State 1: top-up allocated to side 0, everything to side 1, withdrawn.
    let mut s1 = f.state(0, 1, [0, 0], false);
    s1.resize.topped_up = [Amount(500), Amount::ZERO];
    s1.resize.withdrawn = [Amount::ZERO, Amount(2_500)];
    let r = f.ok(1, "channel_withdraw", args(&ChannelStateArgs { state: f.cosign(s1) }), Amount::ZERO);
    let fee1 = r.fee.0;
    // State 2 (final, higher counter): no top-up allocated, 2,000 to side 0.
    let mut s2 = f.state(0, 2, [2_000, 0], true);
    s2.prev_counter = 1;
    let r = f.ok(1, "channel_close", args(&ChannelStateArgs { state: f.cosign(s2) }), Amount::ZERO);
    let fee2 = r.fee.0;
    let ch = cns::read::channel(f.dc.chain.state(), &cid).unwrap().unwrap();
    assert_eq!(ch.status, cns::ChannelStatus::Closed);
    let got1 = acct_balance(&f, 1) + fee1 + fee2 - start1;
    let lost = pool0 - pool(&f);
    let l = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap().ledger.clone();
    let net_debit = l.pending_debits.0 as i128 - l.pending_credits.0 as i128;
    assert_eq!(got1, 2_500, "side 1 took out its deposit plus everything the merchant lent");
    assert_eq!(
        (net_debit, l.imbalance()),
        (lost as i128, 0),
        "pool lost {lost}; side 0's net pending debit {net_debit} must equal it and its ledger balance"
    );
    // The record recalculates (`debit = funded − final`), so the merchant
    // signs it and bills the whole loss; nothing is owed to side 0.
    let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
    let rec = msc.pending[0].clone();
    assert_eq!(
        (rec.funded, rec.final_amount, rec.debit, rec.credit),
        (Amount(1_500), Amount::ZERO, Amount(1_500), Amount::ZERO)
    );
    let sign = f.desk.sign_debit(&rec, 77).unwrap();
    let r = f.dc.call(&dev_key(0), CNS_ID, "msc_sign_debit", args(&sign), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let l = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap().ledger.clone();
    assert_eq!((l.debits, l.pending_debits, l.imbalance()), (Amount(1_500), Amount::ZERO, 0));
    let m = cns::read::merchant(f.dc.chain.state(), &dev_key(0).address()).unwrap().unwrap();
    assert_eq!(m.owed, Amount::ZERO);
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u128) -> u128 {
        if n == 0 {
            0
        } else {
            u128::from(self.next()) % n
        }
    }
}

/// One random forked history on a credit-note channel (side 0 on a 1,000
/// note with top-up notes, side 1 on a 1,000 deposit with deposit
/// top-ups), withdrawals of side 1 over the *whole* range (the r8 sweep
/// drew at most half the channel), then a random final state. With
/// `monotone_credit_topup`, every state allocates at least the side-0
/// top-up of the state before it (what an honest side 1 co-signs);
/// otherwise allocations go up and down. Returns `(side 0 got, side 1 got
/// (net of its deposits) + pool change − its 1,000 opening deposit, side 0
/// net debit + pool change,
/// side 0 ledger imbalance)`, all zero when the merchant's books hold, and
/// the log.
fn credit_history(seed: u64, monotone_credit_topup: bool) -> ((i128, i128, i128, i128), Vec<String>) {
    let outsider = dev_key(3);
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let cid = f.open_on_credit(0);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let start = [acct_balance(&f, 0), acct_balance(&f, 1)];
    let pool0 = pool(&f) as i128;
    let (mut fees, mut deposits1) = ([0u128; 2], 0u128);
    let mut counter = 0u64;
    let mut alloc0 = 0u128;
    let mut log = vec![];
    let draw = |rng: &mut Rng, ch: &cns::Channel, alloc0: u128| -> [Amount; 2] {
        let t0 = if monotone_credit_topup {
            alloc0 + rng.below(ch.topped_up[0].0 - alloc0 + 1)
        } else {
            rng.below(ch.topped_up[0].0 + 1)
        };
        [Amount(t0), Amount(rng.below(ch.topped_up[1].0 + 1))]
    };
    for _ in 0..10 {
        counter += 1 + rng.next() % 2;
        let ch = cns::read::channel(f.dc.chain.state(), &cid).unwrap().unwrap();
        if rng.next().is_multiple_of(3) {
            let side = (rng.next() % 2) as usize;
            let amount = Amount(1 + rng.below(800));
            let (funding, value) = if side == 0 {
                (f.desk.sign_topup_note(f.sids[0], cid, ch.topups[0], amount, 500 + counter), Amount::ZERO)
            } else {
                (Funding::Deposit, amount)
            };
            let a = args(&cns::ChannelTopUpArgs { cid, side: side as u8, amount, funding });
            let r = f.dc.call(&f.accts[side].clone(), CNS_ID, "channel_topup", a, value).unwrap();
            fees[side] += r.fee.0;
            if side == 1 && r.status == TxStatus::Success {
                deposits1 += amount.0;
            }
            log.push(format!("topup {side} {amount}: {:?}", r.status));
            continue;
        }
        let t = draw(&mut rng, &ch, alloc0);
        let total = 2_000 + t[0].0 + t[1].0;
        let w1 = rng.below(total + 1);
        let b0 = rng.below(total - w1 + 1);
        let b1 = total - w1 - b0;
        let mut st = f.state(0, counter, [b0, b1], false);
        st.resize.topped_up = t;
        st.resize.withdrawn = [Amount::ZERO, Amount(w1)];
        let method = if rng.next().is_multiple_of(2) { "channel_withdraw" } else { "channel_update" };
        let r = f.dc.call(&outsider, CNS_ID, method, args(&ChannelStateArgs { state: f.cosign(st) }), Amount::ZERO);
        let ok = matches!(&r, Ok(r) if r.status == TxStatus::Success);
        if ok {
            alloc0 = t[0].0;
        }
        log.push(format!("{method} c{counter} b[{b0},{b1}] w1 {w1} t{t:?}: {:?}", r.map(|r| r.status)));
    }
    counter += 1;
    let ch = cns::read::channel(f.dc.chain.state(), &cid).unwrap().unwrap();
    let t = draw(&mut rng, &ch, alloc0);
    let total = 2_000 + t[0].0 + t[1].0;
    let b0 = rng.below(total + 1);
    let mut fin = f.state(0, counter, [b0, total - b0], true);
    fin.resize.topped_up = t;
    let r =
        f.dc.call(&outsider, CNS_ID, "channel_close", args(&ChannelStateArgs { state: f.cosign(fin) }), Amount::ZERO);
    log.push(format!("close c{counter} b[{b0},{}] t{t:?}: {:?}", total - b0, r.map(|r| r.status)));
    let ch = cns::read::channel(f.dc.chain.state(), &cid).unwrap().unwrap();
    assert_eq!(ch.status, cns::ChannelStatus::Closed, "seed {seed}: {log:#?}");
    let got0 = (acct_balance(&f, 0) + fees[0]) as i128 - start[0] as i128;
    let got1 = (acct_balance(&f, 1) + fees[1]) as i128 - start[1] as i128;
    let dpool = pool(&f) as i128 - pool0;
    let l = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap().ledger.clone();
    let net_debit = l.pending_debits.0 as i128 - l.pending_credits.0 as i128;
    let _ = deposits1;
    ((got0, got1 + dpool - 1_000, net_debit + dpool, l.imbalance()), log)
}

fn seeds() -> u64 {
    std::env::var("ATTACK_R9_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30)
}

/// Held (round 9): forked histories on a credit-note channel in which side
/// 1 withdraws anything up to the whole channel, as long as no state
/// allocates less of side 0's credit top-up than the one before: coin is
/// conserved, and side 0's net pending debit is exactly what the merchant's
/// pool lost. `ATTACK_R9_SEEDS` sets the number of runs (default 30).
#[test]
fn credit_forks_with_whole_channel_withdrawals_keep_the_books_when_credit_topups_only_grow() {
    for seed in 1..=seeds() {
        let (r, log) = credit_history(seed, true);
        assert_eq!(r, (0, 0, 0, 0), "seed {seed}: {log:#?}");
    }
}

/// Finding (the sweep form of the test at the top): the same histories with
/// side 0's credit top-up allocation going up and down. Expected: the books
/// hold for every seed. Observed: some seeds leave side 0's net pending
/// debit below what the pool lost (by the de-allocated top-up that the
/// close took for side 1's paid withdrawals): 3 of the first 300 seeds,
/// while the monotone sweep above holds on all 300.
#[test]
fn credit_forks_with_deallocated_topups_keep_the_books() {
    // Seeds 85, 168 and 203 of the first 300 break the books; all 300 run
    // with ATTACK_R9_SEEDS=300.
    let runs: Vec<u64> = match std::env::var("ATTACK_R9_SEEDS") {
        Ok(_) => (1..=seeds()).collect(),
        Err(_) => vec![85, 168, 203],
    };
    let mut bad = vec![];
    for &seed in &runs {
        let (r, log) = credit_history(seed, false);
        if r != (0, 0, 0, 0) {
            bad.push((seed, r, log));
        }
    }
    let which: Vec<u64> = bad.iter().map(|b| b.0).collect();
    assert!(bad.is_empty(), "seeds {which:?} of {runs:?} broke the books; first: {:#?}", bad.first());
}

/// Finding (the same hole, at scale): the stolen top-up is invisible to the
/// credit limit, so it repeats. Side 0 opens each channel on a credit note
/// of **1**, tops up 8,000 by a top-up note (within its 10,000 limit),
/// hands it all to side 1 (its sybil), which withdraws it, then a
/// higher-counter final state de-allocates the top-up. Each round the
/// participant is debited 1 (its exposure grows by 1) while the merchant's
/// pool gives 8,001; three rounds take 24,003 out of the pool against a
/// debt of 3 (the collateral, ~1,000, covers it many times over).
///
/// Expected: the merchant's pool loses no more than side 0 is debited
/// (the limit keeps the participant at ≤ 10,000 of debt). Observed: pool
/// lost 24,003, side 0's pending debit is 3, and the third top-up note is
/// accepted although 16,000 of credit had already left the pool.
///
/// Fixed (the close debits a de-allocated top-up it spent): the first
/// round's debit is 8,001, so the second and third top-up notes are
/// refused by the credit limit, and the pool loses exactly what side 0 is
/// debited.
#[test]
fn deallocated_credit_topups_cannot_drain_the_pool() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let pool0 = pool(&f);
    for index in 0..3u64 {
        let open = f.cosign(f.state(index, 0, [1, 0], false));
        f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
        let cid = derive_cid(&f.scid, index);
        let note = f.desk.sign_note(f.sids[0], cid, Amount(1), 100 + index);
        f.ok(0, "channel_fund", args(&ChannelFundArgs { cid, side: 0, funding: note }), Amount::ZERO);
        let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(8_000), 900 + index);
        let a = args(&cns::ChannelTopUpArgs { cid, side: 0, amount: Amount(8_000), funding: note });
        if index > 0 {
            // The first round's 8,001 is side 0's debt: its 10,000 limit
            // leaves 1,999 beyond it, less the notes of 1 locked since.
            let why = format!("exceeds the approved credit available, {}", 1_999 - index);
            f.refused(0, "channel_topup", a, Amount::ZERO, &why);
            continue;
        }
        f.ok(0, "channel_topup", a, Amount::ZERO);
        let mut s1 = f.state(index, 1, [0, 0], false);
        s1.resize.topped_up = [Amount(8_000), Amount::ZERO];
        s1.resize.withdrawn = [Amount::ZERO, Amount(8_001)];
        f.ok(1, "channel_withdraw", args(&ChannelStateArgs { state: f.cosign(s1) }), Amount::ZERO);
        let mut s2 = f.state(index, 2, [1, 0], true);
        s2.prev_counter = 1;
        f.ok(1, "channel_close", args(&ChannelStateArgs { state: f.cosign(s2) }), Amount::ZERO);
    }
    let lost = pool0 - pool(&f);
    let l = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap().ledger.clone();
    assert_eq!(
        l.pending_debits.0, lost,
        "the pool lost {lost} to side 0's channels; side 0 is debited {}",
        l.pending_debits.0
    );
    assert_eq!(l.imbalance(), 0, "{l:?}");
    assert!(
        cns::i128_of(l.locked) + l.exposure() <= 10_000,
        "the credit limit bounds what side 0 owes and has locked: {l:?}"
    );
}

fn faults(f: &Fx, side: usize) -> u32 {
    cns::read::msc(f.dc.chain.state(), f.sids[side]).unwrap().unwrap().disputes_at_fault
}

/// Side 0 buys 1,000 Wh at 100/kWh (100) in each of states 1..=4, then a
/// fold of two such purchases in state 5 (`prev_counter` 4).
fn side0_buys_then_folds(f: &mut Fx) -> Vec<SignedState> {
    use gridledger_contracts::cns::{Fold, Trade};
    f.open(0);
    let t = Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) };
    let mut out = vec![];
    for k in 1..=4u64 {
        let mut st = f.state(0, k, [1_000 - 100 * k as u128, 1_000 + 100 * k as u128], false);
        st.energy = [Energy::ZERO, Energy(1_000 * k)];
        st.last_trade = Some(t);
        out.push(f.cosign(st));
    }
    let mut st = f.state(0, 5, [400, 1_600], false);
    st.energy = [Energy::ZERO, Energy(6_000)];
    st.last_trade = Some(t);
    st.fold = Some(Fold { trades: 2, hash: Fold::hash(&[t, t]) });
    out.push(f.cosign(st));
    out
}

/// Finding (a cheater's stale dispute escapes its fault through
/// `channel_resolve` itself; not the r8 cooperative-close path): side 0
/// bought in states 1..=4 and a fold of two purchases in state 5, all
/// co-signed. Side 0 disputes with its stale state 1 (900 for it instead
/// of 400: it gains 500 if side 1 is offline). Side 1 resolves with state
/// 5. `raiser_may_lack(1, 5, side 0)` excuses side 0: for a fold it only
/// asks that side 0 be the buyer, its energy unchanged and its balance
/// down by *at least* the last trade — true of any stack of side-0
/// purchases since state 1 that ends in a fold — and never looks at
/// `prev_counter` (4 here: state 5 is not built on the disputed state 1, so
/// side 0 held states 2..=4 co-signed and closed with a stale one).
///
/// Expected: side 0 is booked a fault (as when the newest state is a single
/// purchase, the held test below). Observed: no fault.
///
/// Fix: in `raiser_may_lack`, excuse a payment (single or fold) only when
/// `c.prev_counter == d.counter` (built directly on the disputed state;
/// counters may skip, `prev_counter` does not), as `own_resize` already
/// requires.
#[test]
fn a_stale_dispute_overturned_by_a_fold_is_a_fault() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let s = side0_buys_then_folds(&mut f);
    f.ok(0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: s[0].clone() }), Amount::ZERO);
    f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: s[4].clone() }), Amount::ZERO);
    assert_eq!(faults(&f, 0), 1, "side 0 disputed with state 1 while it held 2..=4 co-signed");
}

/// Held: the same stale dispute overturned by a single purchase (state 4)
/// books side 0 a fault.
#[test]
fn a_stale_dispute_overturned_by_a_single_purchase_is_a_fault() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let s = side0_buys_then_folds(&mut f);
    f.ok(0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: s[0].clone() }), Amount::ZERO);
    f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: s[3].clone() }), Amount::ZERO);
    assert_eq!(faults(&f, 0), 1);
}

/// Held (the fix does not over-fault): side 0's own fold of two purchases
/// built directly on the disputed state 1 (`prev_counter` 1, counter 5:
/// proposals 2..=4 fell back) may honestly never have reached it
/// co-signed: overturning the dispute with it books no fault.
#[test]
fn a_dispute_overturned_by_the_raisers_own_fold_on_it_is_no_fault() {
    use gridledger_contracts::cns::{Fold, Trade};
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    f.open(0);
    let t = Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) };
    let mut s1 = f.state(0, 1, [900, 1_100], false);
    s1.energy = [Energy::ZERO, Energy(1_000)];
    s1.last_trade = Some(t);
    let s1 = f.cosign(s1);
    let mut st = f.state(0, 5, [700, 1_300], false);
    st.energy = [Energy::ZERO, Energy(3_000)];
    st.last_trade = Some(t);
    st.fold = Some(Fold { trades: 2, hash: Fold::hash(&[t, t]) });
    st.prev_counter = 1;
    let own = f.cosign(st);
    f.ok(0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: s1 }), Amount::ZERO);
    f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: own }), Amount::ZERO);
    assert_eq!(faults(&f, 0), 0, "side 0's own fold on the disputed state is no proof it held anything newer");
}
