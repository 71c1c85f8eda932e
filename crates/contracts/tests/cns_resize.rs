//! Top-up and partial withdraw on an open channel (issue 10, "a client users
//! expect"): coin goes in on chain first (`channel_topup`) and a co-signed
//! state allocates it; a co-signed state takes part of a side's balance out
//! and `channel_withdraw` pays it while the channel stays open. Every
//! invalid variant is refused with its reason and changes nothing.

mod common;
use common::*;
use gridledger_contracts::cns::{ChannelStatus, ChannelTopUpArgs, Resize};

impl Fx {
    /// A co-signed state of channel `index` with these balances and resize.
    fn resized(&self, index: u64, counter: u64, b: [u128; 2], up: [u128; 2], out: [u128; 2]) -> SignedState {
        let mut st = self.state(index, counter, b, false);
        st.resize = Resize { topped_up: up.map(Amount), withdrawn: out.map(Amount) };
        self.cosign(st)
    }
    fn topup_args(&self, index: u64, side: u8, amount: u128, funding: Funding) -> Vec<u8> {
        args(&ChannelTopUpArgs { cid: derive_cid(&self.scid, index), side, amount: Amount(amount), funding })
    }
    fn topup(&mut self, side: u8, amount: u128) {
        let a = self.topup_args(0, side, amount, Funding::Deposit);
        self.ok(side as usize, "channel_topup", a, Amount(amount));
    }
    fn channel(&self, index: u64) -> cns::Channel {
        cns::read::channel(self.dc.chain.state(), &derive_cid(&self.scid, index)).unwrap().unwrap()
    }
    fn balance(&self, side: usize) -> u128 {
        self.dc.chain.state().account(&self.accts[side].address()).balance.0
    }
}

fn st_args(s: SignedState) -> Vec<u8> {
    args(&ChannelStateArgs { state: s })
}

#[test]
fn a_top_up_and_a_partial_withdraw_move_coin_while_the_channel_stays_open() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let start = [f.balance(0), f.balance(1)];
    let mut fees = [0u128; 2];
    let a = f.topup_args(0, 0, 500, Funding::Deposit);
    fees[0] += f.ok(0, "channel_topup", a, Amount(500)).fee.0;
    assert_eq!(f.channel(0).topped_up, [Amount(500), Amount::ZERO]);
    // Side 0 pays 200 to side 1 with its top-up allocated, then withdraws 300.
    let s1 = f.resized(0, 1, [1_300, 1_200], [500, 0], [0, 0]);
    let r = f.ok(1, "channel_update", st_args(s1), Amount::ZERO);
    fees[1] += r.fee.0;
    let s2 = f.resized(0, 2, [1_000, 1_200], [500, 0], [300, 0]);
    let r = f.ok(1, "channel_withdraw", st_args(s2), Amount::ZERO);
    fees[1] += r.fee.0;
    assert!(r.events.iter().any(|e| e.name == "cns_channel_withdrawn"));
    let ch = f.channel(0);
    assert_eq!(ch.status, ChannelStatus::Open, "the channel stays open");
    assert_eq!(ch.withdrawn_paid, [Amount(300), Amount::ZERO]);
    assert_eq!(f.balance(0), start[0] - fees[0] - 500 + 300, "withdrawal paid at once");
    // Close: each side is paid its balance; nothing is paid twice.
    let mut fin = f.resized(0, 3, [1_000, 1_200], [500, 0], [300, 0]);
    fin.state.is_final = true;
    let fin = f.cosign(fin.state);
    let r = f.ok(1, "channel_close", st_args(fin), Amount::ZERO);
    fees[1] += r.fee.0;
    assert_eq!(f.balance(0), start[0] - fees[0] - 500 + 300 + 1_000);
    assert_eq!(f.balance(1), start[1] - fees[1] + 1_200);
}

#[test]
fn a_top_up_no_state_allocates_is_refunded_at_close() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let before = f.balance(0);
    let a = f.topup_args(0, 0, 700, Funding::Deposit);
    let fee0 = f.ok(0, "channel_topup", a, Amount(700)).fee.0;
    let fin = f.cosign(f.state(0, 1, [1_000, 1_000], true));
    f.ok(1, "channel_close", st_args(fin), Amount::ZERO);
    assert_eq!(f.balance(0), before - fee0 + 1_000, "deposit and the unallocated top-up both come back");
}

#[test]
fn a_credit_top_up_is_debited_only_as_far_as_allocated_and_the_ledger_balances() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let cid = f.open_on_credit(0);
    let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(500), 9);
    let a = f.topup_args(0, 0, 500, note);
    f.ok(0, "channel_topup", a, Amount::ZERO);
    let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
    assert_eq!(msc.ledger.locked, Amount(1_500));
    // Side 0 allocates 500 of credit and spends 300 of it all in all.
    let mut fin = f.resized(0, 1, [1_200, 1_300], [500, 0], [0, 0]).state;
    fin.is_final = true;
    let fin = f.cosign(fin);
    f.ok(1, "channel_close", st_args(fin), Amount::ZERO);
    let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
    assert_eq!(msc.pending[0].funded, Amount(1_500));
    assert_eq!(msc.pending[0].debit, Amount(300));
    assert_eq!(msc.ledger.locked, Amount::ZERO);
    assert_eq!(msc.ledger.imbalance(), 0, "{:?}", msc.ledger);
}

type Row = (&'static str, fn(&mut Fx) -> (usize, &'static str, Vec<u8>, Amount));

/// Each invalid top-up or withdrawal, each on a fresh chain: refused with
/// its reason, contract storage, balances and events unchanged.
#[test]
fn every_invalid_top_up_or_withdrawal_is_refused_and_changes_nothing() {
    let rows: Vec<Row> = vec![
        ("balances and withdrawals do not sum", |f| {
            // Side 0 withdraws more than its own balance of 1_000.
            f.open(0);
            (0, "channel_withdraw", st_args(f.resized(0, 1, [0, 1_000], [0, 0], [1_001, 0])), Amount::ZERO)
        }),
        ("stale state: counter 1 is not above the registered 2", |f| {
            f.open(0);
            let s2 = f.cosign(f.state(0, 2, [900, 1_100], false));
            f.ok(0, "channel_update", st_args(s2), Amount::ZERO);
            (0, "channel_withdraw", st_args(f.resized(0, 1, [700, 1_000], [0, 0], [300, 0])), Amount::ZERO)
        }),
        ("bad or missing signature of side 1", |f| {
            f.open(0);
            let mut s = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]);
            s.sigs[1] = s.sigs[0];
            (0, "channel_withdraw", st_args(s), Amount::ZERO)
        }),
        ("not this one", |f| {
            f.open(0);
            let mut st = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]).state;
            st.domain = Domain::cns(9);
            (0, "channel_withdraw", st_args(f.cosign(st)), Amount::ZERO)
        }),
        ("not this one", |f| {
            f.open(0);
            let mut st = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]).state;
            st.domain.contract = 99;
            (0, "channel_withdraw", st_args(f.cosign(st)), Amount::ZERO)
        }),
        ("no such channel", |f| {
            f.open(0);
            (0, "channel_withdraw", st_args(f.resized(1, 1, [700, 1_000], [0, 0], [300, 0])), Amount::ZERO)
        }),
        ("channel is in dispute", |f| {
            f.open(0);
            let open = f.cosign(f.state(0, 0, [1_000, 1_000], false));
            f.ok(1, "channel_dispute", args(&ChannelDisputeArgs { side: 1, state: open }), Amount::ZERO);
            (0, "channel_withdraw", st_args(f.resized(0, 1, [700, 1_000], [0, 0], [300, 0])), Amount::ZERO)
        }),
        ("channel is in dispute", |f| {
            f.open(0);
            let open = f.cosign(f.state(0, 0, [1_000, 1_000], false));
            f.ok(1, "channel_dispute", args(&ChannelDisputeArgs { side: 1, state: open }), Amount::ZERO);
            (0, "channel_topup", f.topup_args(0, 0, 100, Funding::Deposit), Amount(100))
        }),
        ("channel is not open: funding incomplete", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            (0, "channel_topup", f.topup_args(0, 0, 100, Funding::Deposit), Amount(100))
        }),
        ("top-up note of 9001 exceeds the approved credit available, 9000", |f| {
            let cid = f.open_on_credit(0);
            let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(9_001), 9);
            (0, "channel_topup", f.topup_args(0, 0, 9_001, note), Amount::ZERO)
        }),
        ("bad merchant signature on the top-up note", |f| {
            // A note used once cannot back a second top-up.
            let cid = f.open_on_credit(0);
            let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(100), 9);
            let a = f.topup_args(0, 0, 100, note.clone());
            f.ok(0, "channel_topup", a, Amount::ZERO);
            (0, "channel_topup", f.topup_args(0, 0, 100, note), Amount::ZERO)
        }),
        ("tops up the way it funded", |f| {
            f.open_on_credit(0);
            (0, "channel_topup", f.topup_args(0, 0, 100, Funding::Deposit), Amount(100))
        }),
        ("only side 0 may top up its side", |f| {
            f.open(0);
            (1, "channel_topup", f.topup_args(0, 0, 100, Funding::Deposit), Amount(100))
        }),
        ("deposit must be exactly 100", |f| {
            f.open(0);
            (0, "channel_topup", f.topup_args(0, 0, 100, Funding::Deposit), Amount(99))
        }),
        ("a top-up needs a positive amount", |f| {
            f.open(0);
            (0, "channel_topup", f.topup_args(0, 0, 0, Funding::Deposit), Amount::ZERO)
        }),
        ("only 500 was added on chain", |f| {
            f.open(0);
            f.topup(0, 500);
            (1, "channel_update", st_args(f.resized(0, 1, [1_600, 1_000], [600, 0], [0, 0])), Amount::ZERO)
        }),
        ("credit-backed: it cannot withdraw", |f| {
            f.open_on_credit(0);
            (1, "channel_withdraw", st_args(f.resized(0, 1, [700, 1_000], [0, 0], [300, 0])), Amount::ZERO)
        }),
        ("withdraws nothing new", |f| {
            f.open(0);
            (1, "channel_withdraw", st_args(f.resized(0, 1, [900, 1_100], [0, 0], [0, 0])), Amount::ZERO)
        }),
        // A newer state withdrawing less than was already paid supersedes
        // (the excess is deducted at close) but pays nothing new.
        ("withdraws nothing new", |f| {
            f.open(0);
            f.ok(1, "channel_withdraw", st_args(f.resized(0, 1, [700, 1_000], [0, 0], [300, 0])), Amount::ZERO);
            (1, "channel_withdraw", st_args(f.resized(0, 2, [1_000, 1_000], [0, 0], [0, 0])), Amount::ZERO)
        }),
        ("use channel_close", |f| {
            f.open(0);
            let mut st = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]).state;
            st.is_final = true;
            (1, "channel_withdraw", st_args(f.cosign(st)), Amount::ZERO)
        }),
    ];
    for (reason, make) in rows {
        let d = tempfile::tempdir().unwrap();
        let mut f = fixture(d.path(), 3);
        let (side, method, a, value) = make(&mut f);
        f.refused(side, method, a, value, reason);
    }
}
