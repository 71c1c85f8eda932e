//! Attacks on top-up and partial withdraw (`channel_topup`,
//! `channel_withdraw`) by an independent reviewer. Tests marked
//! `#[ignore = "attack: ..."]` reproduce a finding: each fails on the code
//! it was written against, with the expected and the observed behaviour in
//! its comment. The tests without `ignore` are attacks that held up.
//!
//! Run the findings: `cargo test -p gridledger-contracts --test attack_resize -- --ignored`

mod common;
use common::*;
use gridledger_contracts::cns::{ChannelStatus, ChannelTopUpArgs, Resize};

impl Fx {
    fn resized(&self, index: u64, counter: u64, b: [u128; 2], up: [u128; 2], out: [u128; 2]) -> SignedState {
        let mut st = self.state(index, counter, b, false);
        st.resize = Resize { topped_up: up.map(Amount), withdrawn: out.map(Amount) };
        self.cosign(st)
    }
    fn final_of(&self, s: SignedState) -> SignedState {
        let mut st = s.state;
        st.is_final = true;
        self.cosign(st)
    }
    fn topup_args(&self, index: u64, side: u8, amount: u128, funding: Funding) -> Vec<u8> {
        args(&ChannelTopUpArgs { cid: derive_cid(&self.scid, index), side, amount: Amount(amount), funding })
    }
    fn channel(&self, index: u64) -> cns::Channel {
        cns::read::channel(self.dc.chain.state(), &derive_cid(&self.scid, index)).unwrap().unwrap()
    }
    fn balance(&self, side: usize) -> u128 {
        self.dc.chain.state().account(&self.accts[side].address()).balance.0
    }
    fn held(&self) -> u128 {
        self.dc.chain.state().account(&contract_address(CNS_ID)).balance.0
    }
    /// [`Fx::refused`], returning the fee the refused call cost `side`.
    fn refused_fee(&mut self, side: usize, method: &str, a: Vec<u8>, v: Amount, reason: &str) -> u128 {
        let before = self.balance(side);
        self.refused(side, method, a, v, reason);
        before - self.balance(side)
    }
    fn esc(&self) -> cns::Esc {
        cns::read::esc(self.dc.chain.state(), &self.scid).unwrap().unwrap()
    }
}

fn st_args(s: SignedState) -> Vec<u8> {
    args(&ChannelStateArgs { state: s })
}

// ---------------------------------------------------------------- findings

/// Finding: the peer can block a credit-backed side's top-up for good.
///
/// A merchant's top-up note names `index = ch.topups`, a counter shared by
/// both sides' top-ups. Side 1 (deposit-funded) sees side 0's credit top-up
/// in the mempool (or simply tops up 1 minor unit first): the counter moves
/// to 1 and side 0's note, signed for index 0, is refused as a "bad merchant
/// signature". Side 1 repeats it for every new note; its 1-unit deposits are
/// refunded at close, so the griefing costs it only fees.
///
/// Expected: a note the merchant signed for this side of this channel, never
/// used, backs a top-up whatever the peer added (e.g. an index per side).
/// Observed: refused, "bad merchant signature on the top-up note".
#[test]
fn a_peer_deposit_top_up_does_not_invalidate_the_credit_sides_note() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let cid = f.open_on_credit(0);
    // The merchant signs side 0's first top-up note (index 0).
    let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(500), 9);
    // Side 1 front-runs with a 1-unit deposit top-up.
    let a = f.topup_args(0, 1, 1, Funding::Deposit);
    f.ok(1, "channel_topup", a, Amount(1));
    // Side 0's never-used note must still work.
    let a = f.topup_args(0, 0, 500, note);
    let k = f.accts[0].clone();
    let r = f.dc.call(&k, CNS_ID, "channel_topup", a, Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success, "side 0's unused top-up note was refused");
    assert_eq!(f.channel(0).topped_up, [Amount(500), Amount(1)]);
}

/// Finding: the ESC's final amounts depend on who registered a withdrawal.
///
/// The same co-signed history (withdraw 300 of side 0's 1_000, then close)
/// ends with `esc.final_amounts[0] = 300 + 700 = 1_000` when the withdrawal
/// state was registered by `channel_withdraw` (it adds the payment to
/// `final_amounts`), but `700` when the withdrawal is paid at close
/// (`finalise` pays the unpaid withdrawal and adds only the balance). The
/// MSC's `final_amount` is 700 in both. Coin paid is the same; the on-chain
/// record of `α^final` is not, so anyone auditing the ESC (seed Eq 4) reads
/// two different outcomes of one history.
///
/// Expected: equal `final_amounts` on both paths. Observed: `[1000, 1000]`
/// vs `[700, 1000]`.
#[test]
fn final_amounts_do_not_depend_on_how_a_withdrawal_was_paid() {
    let run = |via_withdraw: bool| -> ([Amount; 2], [u128; 2]) {
        let d = tempfile::tempdir().unwrap();
        let mut f = fixture(d.path(), 3);
        f.open(0);
        let start = [f.balance(0), f.balance(1)];
        let mut fees = [0u128; 2];
        let s1 = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]);
        if via_withdraw {
            fees[1] += f.ok(1, "channel_withdraw", st_args(s1.clone()), Amount::ZERO).fee.0;
        }
        let fin = f.final_of(f.resized(0, 2, [700, 1_000], [0, 0], [300, 0]));
        fees[1] += f.ok(1, "channel_close", st_args(fin), Amount::ZERO).fee.0;
        let got = [f.balance(0) + fees[0] - start[0], f.balance(1) + fees[1] - start[1]];
        (f.esc().final_amounts, got)
    };
    let (a, paid_a) = run(true);
    let (b, paid_b) = run(false);
    // Coin is the same on both paths (held up).
    assert_eq!(paid_a, paid_b);
    assert_eq!(paid_a, [1_000, 1_000]);
    assert_eq!(a, b, "ESC final amounts differ: via channel_withdraw {a:?}, paid at close {b:?}");
    // The chosen meaning: balance plus withdrawals, recorded at close.
    assert_eq!(a, [Amount(1_000), Amount(1_000)]);
}

// ------------------------------------------------------------ what held up

/// One co-signed withdrawal state cannot pay twice: the second
/// `channel_withdraw` (the registered state itself) finds nothing new to
/// pay, by either side, and changes nothing.
#[test]
fn a_withdrawal_state_pays_once() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let s1 = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]);
    f.ok(0, "channel_withdraw", st_args(s1.clone()), Amount::ZERO);
    f.refused(0, "channel_withdraw", st_args(s1.clone()), Amount::ZERO, "withdraws nothing new");
    f.refused(1, "channel_withdraw", st_args(s1.clone()), Amount::ZERO, "withdraws nothing new");
    // Nor by update, dispute, or a close of it.
    f.refused(1, "channel_update", st_args(s1.clone()), Amount::ZERO, "stale state");
    // A later state repeating the same cumulative withdrawal pays nothing new.
    let s2 = f.resized(0, 2, [700, 1_000], [0, 0], [300, 0]);
    f.refused(0, "channel_withdraw", st_args(s2), Amount::ZERO, "withdraws nothing new");
}

/// A withdrawal state the peer registered first with `channel_update`
/// (which pays nothing) is still paid by `channel_withdraw` with that same
/// state — once, exactly what it withdraws; an older state stays stale.
#[test]
fn a_withdrawal_state_registered_by_update_is_paid_once() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let s1 = f.resized(0, 1, [900, 1_100], [0, 0], [0, 0]);
    let s2 = f.resized(0, 2, [600, 1_100], [0, 0], [300, 0]);
    f.ok(1, "channel_update", st_args(s2.clone()), Amount::ZERO);
    assert_eq!(f.channel(0).withdrawn_paid, [Amount::ZERO, Amount::ZERO], "update pays nothing");
    f.refused(0, "channel_withdraw", st_args(s1), Amount::ZERO, "stale state");
    f.ok(0, "channel_withdraw", st_args(s2.clone()), Amount::ZERO);
    assert_eq!(f.channel(0).withdrawn_paid, [Amount(300), Amount::ZERO]);
    f.refused(1, "channel_withdraw", st_args(s2), Amount::ZERO, "withdraws nothing new");
    assert_eq!(f.channel(0).withdrawn_paid, [Amount(300), Amount::ZERO]);
}

/// A withdrawal state of channel 0 does not pay on channel 1 of the same
/// ESC, nor on another chain with the same ids.
#[test]
fn a_withdrawal_state_does_not_replay_across_channels_or_chains() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    f.open(1);
    let s = f.resized(0, 1, [700, 1_000], [0, 0], [300, 0]);
    let mut on1 = s.clone();
    on1.state.cid = derive_cid(&f.scid, 1);
    f.refused(0, "channel_withdraw", st_args(on1), Amount::ZERO, "bad or missing signature");
    f.ok(0, "channel_withdraw", st_args(s.clone()), Amount::ZERO);
    // Chain 7, same keys, same ids.
    let d7 = tempfile::tempdir().unwrap();
    let mut g = fixture_on(d7.path(), 7, 3);
    g.open(0);
    assert_eq!(derive_cid(&g.scid, 0), s.state.cid, "same ids on both chains");
    g.refused(0, "channel_withdraw", st_args(s), Amount::ZERO, "not this one");
}

/// After a withdrawal, neither a dispute nor a close with a state from
/// before it is accepted (stale counter), and a newer state that "forgets"
/// the withdrawal pays nothing twice: it supersedes (a higher counter
/// ranks above, see the contract's "Ranking of states"), and the side that
/// was already paid has the withdrawal deducted at settlement. The
/// contract holds nothing afterwards.
#[test]
fn a_state_from_before_a_withdrawal_cannot_pay_again() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let held0 = f.held();
    f.open(0);
    let start = [f.balance(0), f.balance(1)];
    let mut fees = [0u128; 2];
    // Counter 1: side 1 pays side 0 200. Counter 2: side 0 withdraws 1_100.
    let s1 = f.cosign(f.state(0, 1, [1_200, 800], false));
    let s2 = f.resized(0, 2, [100, 800], [0, 0], [1_100, 0]);
    fees[0] += f.ok(0, "channel_withdraw", st_args(s2), Amount::ZERO).fee.0;
    // Side 0 tries to dispute / close with counter 1 (its 1_200).
    let a = args(&ChannelDisputeArgs { side: 0, state: s1.clone() });
    fees[0] += f.refused_fee(0, "channel_dispute", a, Amount::ZERO, "stale");
    let fin1 = f.final_of(s1);
    fees[0] += f.refused_fee(0, "channel_close", st_args(fin1), Amount::ZERO, "stale");
    // A newer final state that "forgets" the withdrawal closes the channel,
    // but side 0, paid 1_100 already, gets only the 100 left of its 1_200.
    let mut forget = f.state(0, 3, [1_200, 800], true);
    forget.resize = Resize::default();
    let forget = f.cosign(forget);
    fees[0] += f.ok(0, "channel_close", st_args(forget), Amount::ZERO).fee.0;
    assert_eq!(f.channel(0).status, ChannelStatus::Closed);
    assert_eq!(f.channel(0).withdrawn_paid, [Amount(1_100), Amount::ZERO]);
    assert_eq!(f.balance(0) + fees[0], start[0] + 1_100 + 100);
    assert_eq!(f.balance(1) + fees[1], start[1] + 800);
    assert_eq!(f.held(), held0, "the contract keeps nothing of the channel");
}

/// A withdrawal paid from one history and one from another (two states
/// both sides signed, the second at a higher counter, withdrawing for the
/// other side) never pay out more than the channel holds: the second pays
/// only what the first left, and the close pays the rest; the contract
/// ends holding what it held before the channel.
#[test]
fn withdrawals_from_two_histories_never_take_more_than_the_channel_holds() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let held0 = f.held();
    f.open(0);
    let start = [f.balance(0), f.balance(1)];
    let mut fees = [0u128; 2];
    // History A (counter 2): side 0 withdraws 900 of its 1_000.
    let a = f.resized(0, 2, [100, 1_000], [0, 0], [900, 0]);
    fees[0] += f.ok(0, "channel_withdraw", st_args(a), Amount::ZERO).fee.0;
    // History B (counter 3): side 0 paid side 1 800, side 1 withdraws 1_700.
    let b = f.resized(0, 3, [200, 100], [0, 0], [0, 1_700]);
    fees[1] += f.ok(1, "channel_withdraw", st_args(b.clone()), Amount::ZERO).fee.0;
    let paid = f.channel(0).withdrawn_paid;
    assert_eq!(paid, [Amount(900), Amount(1_100)], "side 1 is paid only what the channel still held");
    // Nothing more can be withdrawn with it.
    fees[1] += f.refused_fee(1, "channel_withdraw", st_args(b.clone()), Amount::ZERO, "withdraws nothing new");
    let reg = f.channel(0).latest;
    fees[1] += f.ok(1, "channel_dispute", args(&ChannelDisputeArgs { side: 1, state: reg }), Amount::ZERO).fee.0;
    f.dc.now += T_DELTA + 1_000;
    fees[1] += f.ok(1, "channel_settle", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO).fee.0;
    assert_eq!(f.channel(0).status, ChannelStatus::Closed);
    assert_eq!(f.balance(0) + fees[0] + f.balance(1) + fees[1], start[0] + start[1] + 2_000, "coin conserved");
    assert_eq!(f.balance(0) + fees[0], start[0] + 900, "side 0 keeps what it was paid");
    assert_eq!(f.held(), held0, "the contract keeps nothing of the channel");
}

/// A deposit top-up the closing state never allocates comes back in full,
/// also after a dispute; an allocated one is paid as balance. Coin is
/// conserved: the contract ends holding what it held before the channel.
#[test]
fn top_up_then_close_before_allocation_refunds_it_and_conserves_coin() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let held0 = f.held();
    f.open(0);
    let start = [f.balance(0), f.balance(1)];
    let mut fees = [0u128; 2];
    fees[0] += f.ok(0, "channel_topup", f.topup_args(0, 0, 400, Funding::Deposit), Amount(400)).fee.0;
    fees[1] += f.ok(1, "channel_topup", f.topup_args(0, 1, 250, Funding::Deposit), Amount(250)).fee.0;
    // Side 1's 250 is allocated (counter 1); side 0's 400 never is.
    let s1 = f.resized(0, 1, [1_000, 1_250], [0, 250], [0, 0]);
    fees[0] += f.ok(0, "channel_update", st_args(s1.clone()), Amount::ZERO).fee.0;
    // A state allocating more than was added is refused.
    let over = f.resized(0, 2, [1_401, 1_250], [401, 250], [0, 0]);
    fees[0] += f.refused_fee(0, "channel_update", st_args(over), Amount::ZERO, "only 400 was added on chain");
    // Side 0 disputes with counter 1 and it settles.
    fees[0] += f.ok(0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: s1 }), Amount::ZERO).fee.0;
    f.dc.now += T_DELTA + 1_000;
    fees[0] += f.ok(0, "channel_settle", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO).fee.0;
    assert_eq!(f.balance(0) + fees[0], start[0] + 1_000, "side 0: balance and unallocated top-up back");
    assert_eq!(f.balance(1) + fees[1], start[1] + 1_000, "side 1: balance with its allocated top-up");
    assert_eq!(f.held(), held0);
    // Nothing more can be topped up or withdrawn on the closed channel.
    f.refused(0, "channel_topup", f.topup_args(0, 0, 1, Funding::Deposit), Amount(1), "closed");
}

/// A credit top-up note is once-usable and bound to its channel: not on
/// another channel of the same ESC, not twice.
#[test]
fn a_credit_top_up_note_cannot_be_reused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let c0 = f.open_on_credit(0);
    let _c1 = f.open_on_credit(1);
    let note = f.desk.sign_topup_note(f.sids[0], c0, 0, Amount(300), 9);
    // On channel 1 (also at index 0) the note is for the wrong channel.
    f.refused(0, "channel_topup", f.topup_args(1, 0, 300, note.clone()), Amount::ZERO, "bad merchant signature");
    f.ok(0, "channel_topup", f.topup_args(0, 0, 300, note.clone()), Amount::ZERO);
    f.refused(0, "channel_topup", f.topup_args(0, 0, 300, note.clone()), Amount::ZERO, "bad merchant signature");
    // A different amount under the same signature is refused too.
    f.refused(0, "channel_topup", f.topup_args(0, 0, 3_000, note), Amount::ZERO, "bad merchant signature");
}

/// A credit top-up note signed on one chain does not top up the channel
/// with the same ids on another chain.
#[test]
fn a_credit_top_up_note_does_not_replay_on_another_chain() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let cid = f.open_on_credit(0);
    let d7 = tempfile::tempdir().unwrap();
    let mut g = fixture_on(d7.path(), 7, 3);
    assert_eq!(g.open_on_credit(0), cid, "same ids on both chains");
    let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(300), 9);
    g.refused(0, "channel_topup", g.topup_args(0, 0, 300, note.clone()), Amount::ZERO, "bad merchant signature");
    f.ok(0, "channel_topup", f.topup_args(0, 0, 300, note), Amount::ZERO);
}

/// A credit top-up no state allocates goes back to the merchant's free
/// pool at close; the participant is debited nothing for it and the MSC
/// ledger balances.
#[test]
fn an_unallocated_credit_top_up_returns_to_the_merchant_at_close() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let cid = f.open_on_credit(0);
    let merchant = f.desk.account;
    let free = |f: &Fx| cns::read::merchant(f.dc.chain.state(), &merchant).unwrap().unwrap().free;
    let free0 = free(&f);
    let note = f.desk.sign_topup_note(f.sids[0], cid, 0, Amount(600), 9);
    f.ok(0, "channel_topup", f.topup_args(0, 0, 600, note), Amount::ZERO);
    assert_eq!(free(&f).0, free0.0 - 600);
    let fin = f.final_of(f.cosign(f.state(0, 1, [1_000, 1_000], false)));
    f.ok(1, "channel_close", st_args(fin), Amount::ZERO);
    let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
    assert_eq!(msc.ledger.locked, Amount::ZERO);
    assert_eq!(msc.pending[0].debit, Amount::ZERO);
    assert_eq!(msc.pending[0].credit, Amount::ZERO);
    assert_eq!(msc.ledger.imbalance(), 0, "{:?}", msc.ledger);
    // The opening note (1_000, unspent) and the whole top-up come back.
    assert_eq!(free(&f).0, free0.0 + 1_000);
}
