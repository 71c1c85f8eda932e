//! Round-7 attacks on the CNS contract (the round-4/5 fixes: what the
//! merchant owes stays in its pool), by a reviewer who did not write them.
//! Tests marked `#[ignore = "attack: ..."]` reproduce a finding and fail on
//! the code they were written against (expected vs observed in their
//! comment).
//!
//! Run the findings: `cargo test -p gridledger-contracts --test attack_cns_r7 -- --ignored`
#![allow(dead_code, unused_imports)]

mod common;
use common::*;

const PERIOD: u64 = 10_000;

fn merchant(f: &Fx) -> cns::Merchant {
    cns::read::merchant(f.dc.chain.state(), &dev_key(0).address()).unwrap().unwrap()
}

fn msc(f: &Fx, sid: u64) -> cns::Msc {
    cns::read::msc(f.dc.chain.state(), sid).unwrap().unwrap()
}

fn call(f: &mut Fx, key: &KeyPair, method: &str, a: Vec<u8>, v: Amount) -> TxStatus {
    f.dc.call(key, CNS_ID, method, a, v).unwrap().status
}

fn ok(f: &mut Fx, key: &KeyPair, method: &str, a: Vec<u8>, v: Amount) {
    let s = call(f, key, method, a, v);
    assert_eq!(s, TxStatus::Success, "{method}");
}

/// A channel state of channel `index` of the ESC `scid`.
fn state(f: &Fx, scid: &Hash32, index: u64, counter: u64, b: [u128; 2], is_final: bool) -> ChannelState {
    ChannelState { cid: derive_cid(scid, index), ..f.state(index, counter, b, is_final) }
}

fn cosign(st: ChannelState, keys: [&KeyPair; 2]) -> SignedState {
    let nonce = 91 + st.counter;
    SignedState { sigs: [st.sign(keys[0], nonce), st.sign(keys[1], nonce)], state: st, nonce }
}

/// Finding (merchant keeps what it owes an honest participant; issue item
/// 3, "reserve what is owed"): `owed` counts, per MSC, only the *net*
/// credit — `−exposure`, where exposure nets pending debits against billed
/// and pending credits. A merchant with a sybil participant `S` (its own
/// MSC under it, one account of its own on the other side of S's ESC):
///
/// 1. honest `H` sells on its credit note and is owed a credit of 500
///    (pending): `owed` = 500;
/// 2. `S` sells 500 on its note to `H` (or to anyone): credit 500 for `S`,
///    which the merchant signs (billed): `owed` = 1,000;
/// 3. `S` loses 5,000 of a note to the merchant's other account `S'`
///    (pool coin the note rules allow it to lend): a *pending* debit of
///    5,000 for `S`, which the merchant never signs. `S`'s exposure is now
///    +4,500, so its billed credit vanishes from `owed` (= 500, `H` only);
/// 4. `pool_withdraw` takes everything but `owed`: `free` = 500;
/// 5. `bill_settle(S)`: its *billed* net is −500, and the credit path pays
///    that (it does not net pending debits, unlike the seizure path): 500
///    to `S`, `free` = 0 while `owed` = 500.
///
/// `H`'s `msc_claim` then pays 0 of its 500, and `msc_close` stays refused
/// (credit outstanding): its credit and its collateral are stuck.
///
/// Expected: `free ≥ owed` after every merchant call (or `bill_settle`
/// refuses to pay `S`), and `H`'s claim after two periods pays its 500.
/// Observed: `free` 0, `owed` 500; `H`'s claim pays 0, and its
/// `msc_close` is refused ("credit still locked, pending or outstanding"):
/// its collateral stays locked too.
#[test]
fn a_pending_debit_of_a_sybil_does_not_let_the_merchant_pay_out_what_it_owes() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let (h, s) = (f.sids[0], f.sids[1]);
    let mkey = dev_key(0);
    // 1. H (side 0, credit note 1,000) sells 500 to S (deposit).
    let open = f.cosign(f.state(0, 0, [1_000, 1_000], false));
    f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
    let cid0 = derive_cid(&f.scid, 0);
    let note = f.desk.sign_note(h, cid0, Amount(1_000), 200);
    f.ok(0, "channel_fund", args(&ChannelFundArgs { cid: cid0, side: 0, funding: note }), Amount::ZERO);
    f.ok(1, "channel_fund", args(&ChannelFundArgs { cid: cid0, side: 1, funding: Funding::Deposit }), Amount(1_000));
    let fin = f.cosign(f.state(0, 1, [1_500, 500], true));
    f.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    assert_eq!(merchant(&f).owed, Amount(500), "H is owed 500");
    // 2. S (side 1, credit note 1,000) sells 500 to H (deposit); the
    //    merchant signs S's credit.
    let open = f.cosign(f.state(1, 0, [1_000, 1_000], false));
    f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
    let cid1 = derive_cid(&f.scid, 1);
    let note = f.desk.sign_note(s, cid1, Amount(1_000), 201);
    f.ok(0, "channel_fund", args(&ChannelFundArgs { cid: cid1, side: 0, funding: Funding::Deposit }), Amount(1_000));
    f.ok(1, "channel_fund", args(&ChannelFundArgs { cid: cid1, side: 1, funding: note }), Amount::ZERO);
    let fin = f.cosign(f.state(1, 1, [500, 1_500], true));
    f.ok(0, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    let rec = msc(&f, s).pending.iter().find(|r| r.cid == cid1).cloned().expect("S's pending credit");
    let sign = f.desk.sign_debit(&rec, 300).unwrap();
    ok(&mut f, &mkey, "msc_sign_debit", args(&sign), Amount::ZERO);
    assert_eq!(merchant(&f).owed, Amount(1_000));
    // 3. A second ESC between S and the merchant's other account S'.
    let domain = f.desk.domain;
    let sp = dev_key(3);
    let sp_msc = KeyPair::from_seed("sybil-msc");
    let app = CreditApplication {
        participant: sp_msc.public(),
        documents: vec![Hash32([7; 32])],
        requested_credit: Amount(10_000),
        identity: "sybil".into(),
    };
    let ap = f.desk.assess(&app, &ApplicantHistory::default(), f.dc.now, 9).unwrap();
    let c = ap.approval.collateral;
    let a = msc_init_args(&domain, &sp_msc, ap, sp.address(), 5);
    let r = f.dc.call(&sp, CNS_ID, "msc_init", args(&a), c).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let sp_sid: u64 = borsh::from_slice(&r.output).unwrap();
    let keys = [KeyPair::from_seed("sybil-esc-s"), KeyPair::from_seed("sybil-esc-sp")];
    let init = EscInit {
        sids: [s, sp_sid],
        keys: [keys[0].public(), keys[1].public()],
        payouts: [f.accts[1].address(), sp.address()],
        n: 0,
        dispute_limit: 3,
    };
    let a = esc_open_args(&domain, init, [&KeyPair::from_seed("m1"), &sp_msc], 6);
    let r = f.dc.call(&sp, CNS_ID, "esc_open", args(&a), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let scid2: Hash32 = borsh::from_slice(&r.output).unwrap();
    let k = [&keys[0], &keys[1]];
    let open = cosign(state(&f, &scid2, 0, 0, [5_000, 0], false), k);
    ok(&mut f, &sp, "channel_open", args(&ChannelOpenArgs { scid: scid2, open }), Amount::ZERO);
    let cid2 = derive_cid(&scid2, 0);
    let note = f.desk.sign_note(s, cid2, Amount(5_000), 202);
    f.ok(1, "channel_fund", args(&ChannelFundArgs { cid: cid2, side: 0, funding: note }), Amount::ZERO);
    let fin = cosign(state(&f, &scid2, 0, 1, [0, 5_000], true), k);
    ok(&mut f, &sp, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    // (The code this was found on counted 500 here: S's unsigned debit
    // hid its billed credit.)
    assert_eq!(merchant(&f).owed, Amount(1_000), "S's billed credit still counts as owed");
    // 4. The merchant withdraws all it may.
    let m = merchant(&f);
    let take = Amount(m.free.0 - m.owed.0);
    ok(&mut f, &mkey, "pool_withdraw", args(&PoolWithdraw { amount: take }), Amount::ZERO);
    // 5. A period later it settles S's bill: S's billed credit is paid.
    f.dc.now = f.dc.now.max(msc(&f, s).billing_period_start + PERIOD);
    let settled = call(&mut f, &mkey, "bill_settle", args(&SidArgs { sid: s }), Amount::ZERO);
    let m = merchant(&f);
    // H claims once the merchant let two periods pass and the lock ran.
    let hm = msc(&f, h);
    f.dc.now = f.dc.now.max(hm.collateral_unlock_at).max(hm.pending_since + 2 * PERIOD) + 1;
    let before = f.balance_of(0);
    let hk = f.accts[0].clone();
    let claim = call(&mut f, &hk, "msc_claim", args(&SidArgs { sid: h }), Amount::ZERO);
    let hm = msc(&f, h);
    // And H takes its collateral back.
    let close = call(&mut f, &hk, "msc_close", args(&SidArgs { sid: h }), Amount::ZERO);
    assert!(
        m.free >= m.owed && hm.ledger.credit_paid == Amount(500) && close == TxStatus::Success,
        "after the merchant's bill_settle of its sybil ({settled:?}): free {} owed {}; H's claim ({claim:?}) \
         paid {} of its 500 (balance {} -> {}); H's msc_close: {close:?}",
        m.free,
        m.owed,
        hm.ledger.credit_paid,
        before,
        f.balance_of(0)
    );
}

impl Fx {
    fn balance_of(&self, side: usize) -> u128 {
        self.dc.chain.state().account(&self.accts[side].address()).balance.0
    }
}
