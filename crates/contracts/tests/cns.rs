//! Every ⊥ case of seed 000 §3.3.3 against the CNS contract: each is
//! refused with a clear reason and changes nothing but the sender's nonce
//! and fee.

mod common;
use common::*;

impl Fx {
    fn update(&mut self, index: u64, counter: u64, b: [u128; 2]) -> SignedState {
        let s = self.cosign(self.state(index, counter, b, false));
        self.ok(0, "channel_update", args(&ChannelStateArgs { state: s.clone() }), Amount::ZERO);
        s
    }
    fn dispute(&mut self, side: usize, s: SignedState) -> Receipt {
        self.ok(side, "channel_dispute", args(&ChannelDisputeArgs { side: side as u8, state: s }), Amount::ZERO)
    }
}

#[test]
fn opening_an_open_channel_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let a = f.open_args(0);
    f.refused(1, "channel_open", a, Amount::ZERO, "channel already opened");
}

#[test]
fn closing_a_closed_channel_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let fin = f.cosign(f.state(0, 1, [900, 1_100], true));
    f.ok(0, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    let fin2 = f.cosign(f.state(0, 2, [900, 1_100], true));
    f.refused(1, "channel_close", args(&ChannelStateArgs { state: fin2 }), Amount::ZERO, "channel already closed");
}

#[test]
fn updating_a_channel_that_is_not_open_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    // Registered but not funded.
    let a = f.open_args(0);
    f.ok(0, "channel_open", a, Amount::ZERO);
    let s = f.cosign(f.state(0, 1, [900, 1_100], false));
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: s.clone() }), Amount::ZERO, "not open");
    // And once closed.
    f.ok(1, "channel_abort", args(&CidArgs { cid: s.state.cid }), Amount::ZERO);
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: s }), Amount::ZERO, "channel is closed");
}

#[test]
fn closing_with_an_old_state_when_a_newer_exists_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    // A final state at counter 3 exists, but counter 5 was registered.
    let old_final = f.cosign(f.state(0, 3, [1_500, 500], true));
    f.update(0, 5, [800, 1_200]);
    f.refused(0, "channel_close", args(&ChannelStateArgs { state: old_final }), Amount::ZERO, "stale state");
    // Disputing with an older state is refused the same way.
    let old = f.cosign(f.state(0, 4, [1_500, 500], false));
    f.refused(0, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: old }), Amount::ZERO, "stale state");
}

#[test]
fn updating_during_a_dispute_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    f.dispute(0, s1);
    let s2 = f.cosign(f.state(0, 2, [800, 1_200], false));
    f.refused(1, "channel_update", args(&ChannelStateArgs { state: s2 }), Amount::ZERO, "channel is in dispute");
}

#[test]
fn disputing_during_a_dispute_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    f.dispute(0, s1.clone());
    let s2 = f.cosign(f.state(0, 2, [800, 1_200], false));
    f.refused(
        1,
        "channel_dispute",
        args(&ChannelDisputeArgs { side: 1, state: s2 }),
        Amount::ZERO,
        "a dispute is already raised",
    );
}

#[test]
fn opening_when_the_esc_has_too_many_disputes_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 0); // limit 0: more than 0 disputes blocks
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    f.dispute(0, s1);
    f.dc.now += T_DELTA + 1_000;
    f.ok(1, "channel_settle", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO);
    let esc = cns::read::esc(f.dc.chain.state(), &f.scid).unwrap().unwrap();
    assert_eq!(esc.disputes.len(), 1);
    let a = f.open_args(1);
    f.refused(0, "channel_open", a, Amount::ZERO, "more than its limit");
}

#[test]
fn funding_beyond_balance_or_approved_credit_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    // A channel asking 20_000 from side 0 on credit: approved credit is 10_000.
    let st = ChannelState { balances: [Amount(20_000), Amount(0)], ..f.state(0, 0, [0, 0], false) };
    let open = f.cosign(st);
    f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
    let cid = derive_cid(&f.scid, 0);
    let note = f.desk.sign_note(f.sids[0], cid, Amount(20_000), 1);
    f.refused(
        0,
        "channel_fund",
        args(&ChannelFundArgs { cid, side: 0, funding: note }),
        Amount::ZERO,
        "exceeds the approved credit",
    );
    // A note the merchant did not sign is refused too.
    let forged = Funding::CreditNote { nonce: 1, merchant_sig: Signature([3; 64]) };
    f.refused(
        0,
        "channel_fund",
        args(&ChannelFundArgs { cid, side: 0, funding: forged }),
        Amount::ZERO,
        "bad merchant signature",
    );
    // A deposit other than the agreed amount is refused.
    f.refused(
        0,
        "channel_fund",
        args(&ChannelFundArgs { cid, side: 0, funding: Funding::Deposit }),
        Amount(5),
        "deposit must be exactly",
    );
    // A deposit beyond the account's balance never gets in: admission refuses it.
    let poor = dev_key(3);
    let tx = gridledger_ledger::devnet::call(
        &poor,
        DevChain::CHAIN_ID,
        f.dc.nonce(&poor),
        CNS_ID,
        "channel_fund",
        args(&ChannelFundArgs { cid, side: 0, funding: Funding::Deposit }),
        Amount(BAL.0 * 2),
        1_000_000,
    );
    let before = f.dc.chain.state().root();
    assert!(matches!(f.dc.exec(tx), Err(SubmitError::InsufficientBalance { .. })));
    assert_eq!(f.dc.chain.state().root(), before);
}

#[test]
fn wrong_or_missing_signature_and_non_increasing_counter_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    f.open(0);
    f.update(0, 2, [900, 1_100]);
    // Signed by a stranger for side 1.
    let mut s = f.cosign(f.state(0, 3, [800, 1_200], false));
    s.sigs[1] = s.state.sign(&KeyPair::from_seed("stranger"), s.nonce);
    f.refused(
        0,
        "channel_update",
        args(&ChannelStateArgs { state: s.clone() }),
        Amount::ZERO,
        "bad or missing signature of side 1",
    );
    // Missing (all-zero) signature of side 0.
    s.sigs = [Signature::ZERO, f.cosign(f.state(0, 3, [800, 1_200], false)).sigs[1]];
    f.refused(
        0,
        "channel_update",
        args(&ChannelStateArgs { state: s }),
        Amount::ZERO,
        "bad or missing signature of side 0",
    );
    // A signature for another counter does not carry over.
    let mut s = f.cosign(f.state(0, 3, [800, 1_200], false));
    s.state.counter = 4;
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: s }), Amount::ZERO, "bad or missing signature");
    // Equal and lower counters are refused.
    let same = f.cosign(f.state(0, 2, [700, 1_300], false));
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: same }), Amount::ZERO, "stale state");
    let lower = f.cosign(f.state(0, 1, [700, 1_300], false));
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: lower }), Amount::ZERO, "stale state");
    // Balances that do not sum to the channel's capacity are refused.
    let bad = f.cosign(f.state(0, 9, [700, 1_400], false));
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: bad }), Amount::ZERO, "do not sum");
}

#[test]
fn overturned_disputes_grey_then_blacklist_the_raiser() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    // Three stale disputes by side 0, each overturned by a state side 0 is
    // shown to have held co-signed: grey after 1, black at 3. Channels 0
    // and 1: the newer state is side 1's purchase, which side 0 accepted
    // (the acceptor holds the co-signed state first). Channel 2: side 0's
    // own proposal, but not built directly on the disputed state (2,000 Wh
    // delivered past it by a trade of 1,000 Wh), so side 0 held a state in
    // between co-signed.
    for idx in 0..3u64 {
        f.open(idx);
        let s1 = f.update(idx, 1, [900, 1_100]);
        let newer = if idx < 2 {
            let mut st = f.state(idx, 2, [1_000, 1_000], false);
            st.energy = [Energy(1_000), Energy::ZERO];
            st.last_trade =
                Some(cns::Trade { buyer: 1, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) });
            f.cosign(st)
        } else {
            let mut st = f.state(idx, 3, [800, 1_200], false);
            st.energy = [Energy::ZERO, Energy(2_000)];
            st.last_trade =
                Some(cns::Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) });
            f.cosign(st)
        };
        // Side 0 disputes with counter 1, side 1 shows the newer state.
        f.dispute(0, s1);
        f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: newer }), Amount::ZERO);
        let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
        let want = match idx {
            0 | 1 => cns::Standing::Grey,
            _ => cns::Standing::Black,
        };
        assert_eq!(msc.standing, want, "after {} faults", idx + 1);
        assert_eq!(msc.disputes_at_fault, idx as u32 + 1);
    }
    // Blacklisted: no new channel on this ESC.
    let a = f.open_args(3);
    f.refused(0, "channel_open", a, Amount::ZERO, "blacklisted");
}

/// The one state an honest raiser may lack co-signed is its own payment
/// proposal built on the disputed state (the peer signed it and withheld
/// the acceptance): a dispute overturned by exactly that books no fault.
#[test]
fn overturned_by_the_raisers_own_unacknowledged_proposal_is_no_fault() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    let mut st = f.state(0, 2, [800, 1_200], false);
    st.energy = [Energy::ZERO, Energy(1_000)];
    st.last_trade =
        Some(cns::Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) });
    let s2 = f.cosign(st);
    f.dispute(0, s1);
    f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: s2 }), Amount::ZERO);
    let msc = cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap();
    assert_eq!((msc.disputes_at_fault, msc.standing), (0, cns::Standing::Good));
    let ch = cns::read::channel(f.dc.chain.state(), &derive_cid(&f.scid, 0)).unwrap().unwrap();
    assert_eq!((ch.status, ch.latest.state.counter), (cns::ChannelStatus::Open, 2), "the newer state stands");
}

/// With the update fallback an honest raiser's counters skip: its own
/// proposal built directly on the disputed state excuses it at any counter
/// distance, and so does the final state of the disputed one; its own
/// proposal stacked on a second of its own does not.
#[test]
fn overturned_by_own_proposal_on_the_disputed_state_is_no_fault_at_any_distance() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    let trade = cns::Trade { buyer: 0, energy: Energy(1_000), price_per_kwh: Amount(100), amount: Amount(100) };
    let mut faults = vec![];
    for idx in 0..3u64 {
        f.open(idx);
        let s1 = f.update(idx, 1, [900, 1_100]);
        let newer = match idx {
            // Own payment at counter 5 (2..4 fell back), built on counter 1.
            0 => {
                let mut st = f.state(idx, 5, [800, 1_200], false);
                st.energy = [Energy::ZERO, Energy(1_000)];
                st.last_trade = Some(trade);
                st.prev_counter = 1;
                st
            }
            // The close of counter 1, proposed by either side.
            1 => f.state(idx, 4, [900, 1_100], true),
            // Own payment stacked on another own payment past counter 1.
            _ => {
                let mut st = f.state(idx, 3, [700, 1_300], false);
                st.energy = [Energy::ZERO, Energy(2_000)];
                st.last_trade = Some(trade);
                st
            }
        };
        let newer = f.cosign(newer);
        f.dispute(0, s1);
        f.ok(1, "channel_resolve", args(&ChannelStateArgs { state: newer }), Amount::ZERO);
        faults.push(cns::read::msc(f.dc.chain.state(), f.sids[0]).unwrap().unwrap().disputes_at_fault);
    }
    assert_eq!(faults, vec![0, 0, 1], "faults after each overturned dispute");
}

/// Per-call gas does not grow with the channel's history: the ESC and MSC
/// records are fixed-size and their lists are keyed one entry each.
#[test]
fn channel_calls_cost_the_same_gas_however_long_the_history() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    // Channel 0: short history; channel 1: 60 registered updates.
    let mut gas = vec![];
    for (idx, updates) in [(0u64, 1u64), (1, 60)] {
        f.open(idx);
        let mut last = None;
        let mut update_gas = vec![];
        for c in 1..=updates {
            let s = f.cosign(f.state(idx, c, [1_000 - c as u128, 1_000 + c as u128], false));
            let r = f.ok(0, "channel_update", args(&ChannelStateArgs { state: s.clone() }), Amount::ZERO);
            update_gas.push(r.gas_used);
            last = Some(s);
        }
        let c = updates + 1;
        // The raiser's own unacknowledged purchase: no fault in either
        // channel, so both resolves do the same work. Side 1 pays 1 on top
        // of the disputed state.
        let mut st = f.state(idx, c, [1_000 - c as u128 + 2, 1_000 + c as u128 - 2], false);
        st.energy = [Energy(1_000), Energy::ZERO];
        st.last_trade =
            Some(cns::Trade { buyer: 1, energy: Energy(1_000), price_per_kwh: Amount(1), amount: Amount(1) });
        let newer = f.cosign(st);
        let dis = f.dispute(1, last.unwrap()).gas_used;
        let res = f.ok(0, "channel_resolve", args(&ChannelStateArgs { state: newer }), Amount::ZERO).gas_used;
        let mut fin = f.state(idx, c + 1, [1_000, 1_000], true);
        fin.energy = [Energy(1_000), Energy::ZERO];
        let fin = f.cosign(fin);
        let close = f.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO).gas_used;
        gas.push((update_gas, dis, res, close));
    }
    // Calldata differs by a few counter/balance bytes (16 gas each); one
    // more 32-byte word loaded and stored would cost 5,000.
    let near = |a: u64, b: u64| a.abs_diff(b) < 1_000;
    let (u0, d0, r0, c0) = &gas[0];
    let (u1, d1, r1, c1) = &gas[1];
    assert!(near(u0[0], *u1.last().unwrap()), "update gas grew: {} then {}", u0[0], u1.last().unwrap());
    assert!(near(*u1.first().unwrap(), *u1.last().unwrap()), "update gas grew within a channel");
    assert!(near(*d0, *d1), "dispute gas grew with history: {d0} vs {d1}");
    assert!(near(*r0, *r1), "resolve gas grew with history: {r0} vs {r1}");
    assert!(near(*c0, *c1), "close gas grew with history: {c0} vs {c1}");
    // The history is still all there to read.
    let esc = cns::read::esc(f.dc.chain.state(), &f.scid).unwrap().unwrap();
    assert_eq!(esc.channels.len(), 2);
    assert_eq!(esc.disputes.len(), 2);
    // Per channel: open, each update, the resolving state, the final state
    // registered and closed.
    assert_eq!(esc.transactions.len(), (1 + 1 + 1 + 2) + (1 + 60 + 1 + 2));
}

// ------------------------------------------------ issue 10: security items

#[test]
fn t_delta_comes_from_the_co_signed_open_state_and_has_a_floor() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    // One party cannot pick t_Δ alone: it is inside what both signed, and
    // the adjudicator refuses a window below its minimum.
    let st = ChannelState { t_delta_ms: 1, ..f.state(0, 0, [1_000, 1_000], false) };
    let open = f.cosign(st);
    f.refused(
        0,
        "channel_open",
        args(&ChannelOpenArgs { scid: f.scid, open }),
        Amount::ZERO,
        "t_delta must be between",
    );
    let cid = f.open(0);
    let ch = cns::read::channel(f.dc.chain.state(), &cid).unwrap().unwrap();
    assert_eq!(ch.t_delta_ms, T_DELTA, "the channel's window is the co-signed one");
    // A later state carrying another window is refused.
    let st = ChannelState { t_delta_ms: T_DELTA * 2, ..f.state(0, 1, [900, 1_100], false) };
    let s = f.cosign(st);
    f.refused(0, "channel_update", args(&ChannelStateArgs { state: s }), Amount::ZERO, "carries t_delta");
}

#[test]
fn statements_signed_for_one_chain_are_refused_on_another() {
    let d1 = tempfile::tempdir().unwrap();
    let d7 = tempfile::tempdir().unwrap();
    let f1 = fixture_on(d1.path(), 1, 3);
    let mut f7 = fixture_on(d7.path(), 7, 3);
    // Same keys and counters: the ids coincide on both chains.
    assert_eq!(f1.scid, f7.scid);
    assert_eq!(f1.sids, f7.sids);
    // A co-signed open state from chain 1 does not open the channel on chain 7.
    let open = f1.cosign(f1.state(0, 0, [1_000, 1_000], false));
    f7.refused(0, "channel_open", args(&ChannelOpenArgs { scid: f7.scid, open }), Amount::ZERO, "not this one");
    // Even relabelled as chain 7, chain 1's signatures do not verify.
    let mut open = f1.cosign(f1.state(0, 0, [1_000, 1_000], false));
    open.state.domain = Domain::cns(7);
    f7.refused(
        0,
        "channel_open",
        args(&ChannelOpenArgs { scid: f7.scid, open }),
        Amount::ZERO,
        "bad or missing signature",
    );
    // A credit note signed for chain 1 does not fund on chain 7.
    let st = ChannelState { balances: [Amount(1_000), Amount(0)], ..f7.state(0, 0, [0, 0], false) };
    let open = f7.cosign(st);
    f7.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f7.scid, open }), Amount::ZERO);
    let cid = derive_cid(&f7.scid, 0);
    let note = f1.desk.sign_note(f1.sids[0], cid, Amount(1_000), 1);
    f7.refused(
        0,
        "channel_fund",
        args(&ChannelFundArgs { cid, side: 0, funding: note }),
        Amount::ZERO,
        "bad merchant signature",
    );
    // A credit approval from chain 1 does not create an MSC on chain 7.
    let key = KeyPair::from_seed("m-new");
    let app = CreditApplication {
        participant: key.public(),
        documents: vec![Hash32([5; 32])],
        requested_credit: Amount(1_000),
        identity: "p-new".into(),
    };
    let ap = f1.desk.assess(&app, &ApplicantHistory::default(), f7.dc.now, 9).unwrap();
    let c = ap.approval.collateral;
    let a = msc_init_args(&Domain::cns(1), &key, ap, f7.accts[0].address(), 4);
    f7.refused(0, "msc_init", args(&a), c, "bad merchant signature on the credit approval");
}

#[test]
fn a_credit_approval_creates_one_msc_only() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let key = KeyPair::from_seed("m-once");
    let app = CreditApplication {
        participant: key.public(),
        documents: vec![Hash32([6; 32])],
        requested_credit: Amount(5_000),
        identity: "p-once".into(),
    };
    let ap = f.desk.assess(&app, &ApplicantHistory::default(), f.dc.now, 12).unwrap();
    let c = ap.approval.collateral;
    let a = msc_init_args(&f.desk.domain, &key, ap.clone(), f.accts[0].address(), 13);
    f.ok(0, "msc_init", args(&a), c);
    f.refused(0, "msc_init", args(&a), c, "credit approval already used");
    // Re-signed by the participant with another nonce: still the same approval.
    let a2 = msc_init_args(&f.desk.domain, &key, ap, f.accts[1].address(), 14);
    f.refused(1, "msc_init", args(&a2), c, "credit approval already used");
}

#[test]
fn a_timed_out_dispute_faults_nobody() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    // Side 0 disputes with the newest state; nothing newer exists, so side 1
    // has nothing to answer with and stays silent.
    f.dispute(0, s1);
    f.dc.now += T_DELTA + 1_000;
    f.ok(1, "channel_settle", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO);
    for sid in f.sids {
        let msc = cns::read::msc(f.dc.chain.state(), sid).unwrap().unwrap();
        assert_eq!(msc.disputes_at_fault, 0, "MSC {sid} was faulted");
        assert_eq!(msc.standing, cns::Standing::Good);
    }
    let esc = cns::read::esc(f.dc.chain.state(), &f.scid).unwrap().unwrap();
    assert_eq!(esc.disputes[0].outcome, cns::DisputeOutcome::TimedOut);
}

#[test]
fn a_cooperative_close_during_a_dispute_faults_nobody() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 10);
    f.open(0);
    let s1 = f.update(0, 1, [900, 1_100]);
    f.dispute(0, s1);
    let fin = f.cosign(f.state(0, 2, [900, 1_100], true));
    f.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    for sid in f.sids {
        assert_eq!(cns::read::msc(f.dc.chain.state(), sid).unwrap().unwrap().disputes_at_fault, 0);
    }
    let esc = cns::read::esc(f.dc.chain.state(), &f.scid).unwrap().unwrap();
    assert_eq!(esc.disputes[0].outcome, cns::DisputeOutcome::ClosedCooperatively);
}

#[test]
fn the_merchant_cannot_withdraw_what_it_owes_and_the_participant_recovers() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let mkey = dev_key(0);
    // Side 0 on a credit note of 1_000, side 1 deposits 1_000.
    let open = f.cosign(f.state(0, 0, [1_000, 1_000], false));
    f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
    let cid = derive_cid(&f.scid, 0);
    let note = f.desk.sign_note(f.sids[0], cid, Amount(1_000), 2);
    f.ok(0, "channel_fund", args(&ChannelFundArgs { cid, side: 0, funding: note }), Amount::ZERO);
    f.ok(1, "channel_fund", args(&ChannelFundArgs { cid, side: 1, funding: Funding::Deposit }), Amount(1_000));
    // Side 0 sells 500 worth: the merchant now owes it 500 beyond the note.
    let fin = f.cosign(f.state(0, 1, [1_500, 500], true));
    f.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    let m = cns::read::merchant(f.dc.chain.state(), &mkey.address()).unwrap().unwrap();
    assert_eq!(m.owed, Amount(500));
    // Withdrawing everything free is refused; what is not owed may go.
    let all = m.free;
    f.refused_by(&mkey, "pool_withdraw", args(&PoolWithdraw { amount: all }), Amount::ZERO, "not owed to participants");
    let r =
        f.dc.call(&mkey, CNS_ID, "pool_withdraw", args(&PoolWithdraw { amount: Amount(all.0 - 500) }), Amount::ZERO);
    assert_eq!(r.unwrap().status, TxStatus::Success);
    // The merchant never bills. Once it let a period lapse and the
    // time-lock ran, the participant claims its credit and closes its MSC.
    let sid = f.sids[0];
    let msc = cns::read::msc(f.dc.chain.state(), sid).unwrap().unwrap();
    let collateral = msc.collateral.0;
    f.dc.now = f.dc.now.max(msc.collateral_unlock_at).max(msc.billing_period_start + 2 * 10_000) + 1;
    let before = f.dc.chain.state().account(&f.accts[0].address()).balance.0;
    let r1 = f.ok(0, "msc_claim", args(&SidArgs { sid }), Amount::ZERO);
    let r2 = f.ok(0, "msc_close", args(&SidArgs { sid }), Amount::ZERO);
    let after = f.dc.chain.state().account(&f.accts[0].address()).balance.0;
    assert_eq!(after + r1.fee.0 + r2.fee.0, before + 500 + collateral, "credit and collateral returned");
    let m = cns::read::merchant(f.dc.chain.state(), &mkey.address()).unwrap().unwrap();
    assert_eq!((m.owed, m.free), (Amount::ZERO, Amount::ZERO));
}

/// A credit note may draw only on `free − owed`: the coin the merchant owes
/// a participant is not its to lend. Refused with a reason, nothing changed.
#[test]
fn a_credit_note_cannot_draw_on_what_the_merchant_owes() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let mkey = dev_key(0);
    f.open_on_credit(0);
    let fin = f.cosign(f.state(0, 1, [1_500, 500], true));
    f.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
    let m = cns::read::merchant(f.dc.chain.state(), &mkey.address()).unwrap().unwrap();
    assert_eq!(m.owed, Amount(500));
    // Leave exactly 999 lendable beyond what is owed.
    let w = Amount(m.free.0 - m.owed.0 - 999);
    let r = f.dc.call(&mkey, CNS_ID, "pool_withdraw", args(&PoolWithdraw { amount: w }), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let open = f.cosign(f.state(1, 0, [1_000, 1_000], false));
    f.ok(0, "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO);
    let cid = derive_cid(&f.scid, 1);
    let note = f.desk.sign_note(f.sids[0], cid, Amount(1_000), 101);
    let a = args(&ChannelFundArgs { cid, side: 0, funding: note });
    f.refused(0, "channel_fund", a, Amount::ZERO, "cannot back the note");
}

// ------------------------------------ issue 18: every refusal reason, table

/// A call to make and the key that sends it.
struct Call {
    who: KeyPair,
    method: &'static str,
    args: Vec<u8>,
    value: Amount,
}

fn call(who: &KeyPair, method: &'static str, args: Vec<u8>, value: Amount) -> Call {
    Call { who: who.clone(), method, args, value }
}

impl Fx {
    /// A credit channel closed with side 0 at 500: a pending debit of 500.
    fn closed_with_debit(&mut self) -> Hash32 {
        let cid = self.open_on_credit(0);
        let fin = self.cosign(self.state(0, 1, [500, 1_500], true));
        self.ok(1, "channel_close", args(&ChannelStateArgs { state: fin }), Amount::ZERO);
        cid
    }
    fn pending(&self, sid: u64) -> cns::DebitRecord {
        cns::read::msc(self.dc.chain.state(), sid).unwrap().unwrap().pending[0].clone()
    }
    fn new_approval(&self, seed: &str, now: u64) -> (KeyPair, cns::SignedApproval) {
        let key = KeyPair::from_seed(seed);
        let app = CreditApplication {
            participant: key.public(),
            documents: vec![Hash32([3; 32])],
            requested_credit: Amount(1_000),
            identity: seed.into(),
        };
        (key, self.desk.assess(&app, &ApplicantHistory::default(), now, 77).unwrap())
    }
}

type Row = (&'static str, fn(&mut Fx) -> Call);

/// Every refusal reason of the CNS contract a caller can reach, each on a
/// fresh chain: refused with its reason, storage, balances and events
/// unchanged (`Fx::refused_by`). Internal-invariant reasons (record
/// missing, ledger underflow) cannot be reached from outside and are not
/// listed.
#[test]
fn every_refusal_reason_is_refused_with_its_reason_and_changes_nothing() {
    let rows: Vec<Row> = vec![
        ("merchant already registered", |_f| {
            let a = RegisterMerchant {
                key: KeyPair::from_seed("k").public(),
                billing_period_ms: 1,
                grey_after: 1,
                black_after: 1,
            };
            call(&dev_key(0), "merchant_register", args(&a), Amount::ZERO)
        }),
        ("need billing_period_ms > 0", |_f| {
            let a = RegisterMerchant {
                key: KeyPair::from_seed("k").public(),
                billing_period_ms: 0,
                grey_after: 1,
                black_after: 1,
            };
            call(&dev_key(3), "merchant_register", args(&a), Amount::ZERO)
        }),
        ("no such merchant", |_f| call(&dev_key(3), "pool_deposit", vec![], Amount(5))),
        ("not owed to participants", |_f| {
            call(&dev_key(0), "pool_withdraw", args(&PoolWithdraw { amount: Amount(100_001) }), Amount::ZERO)
        }),
        ("approval names an unregistered merchant", |f| {
            let (key, mut ap) = f.new_approval("p-x", f.dc.now);
            ap.approval.merchant = dev_key(3).address();
            let c = ap.approval.collateral;
            call(&dev_key(3), "msc_init", args(&msc_init_args(&f.desk.domain, &key, ap, dev_key(3).address(), 1)), c)
        }),
        ("credit approval expired", |f| {
            let (key, ap) = f.new_approval("p-x", 0);
            f.dc.now += 2_000_000;
            let c = ap.approval.collateral;
            call(&dev_key(3), "msc_init", args(&msc_init_args(&f.desk.domain, &key, ap, dev_key(3).address(), 1)), c)
        }),
        ("bad merchant signature on the credit approval", |f| {
            let (key, mut ap) = f.new_approval("p-x", f.dc.now);
            ap.approval.credit_limit = Amount(1_000_000);
            let c = ap.approval.collateral;
            call(&dev_key(3), "msc_init", args(&msc_init_args(&f.desk.domain, &key, ap, dev_key(3).address(), 1)), c)
        }),
        ("bad participant signature on msc-init", |f| {
            let (_, ap) = f.new_approval("p-x", f.dc.now);
            let c = ap.approval.collateral;
            let other = KeyPair::from_seed("not-the-participant");
            call(&dev_key(3), "msc_init", args(&msc_init_args(&f.desk.domain, &other, ap, dev_key(3).address(), 1)), c)
        }),
        ("collateral must be exactly", |f| {
            let (key, ap) = f.new_approval("p-x", f.dc.now);
            let c = Amount(ap.approval.collateral.0 + 1);
            call(&dev_key(3), "msc_init", args(&msc_init_args(&f.desk.domain, &key, ap, dev_key(3).address(), 1)), c)
        }),
        ("credit approval already used", |f| {
            let (key, ap) = f.new_approval("p-x", f.dc.now);
            let c = ap.approval.collateral;
            let a = args(&msc_init_args(&f.desk.domain, &key, ap, dev_key(3).address(), 1));
            assert_eq!(f.dc.call(&dev_key(3), CNS_ID, "msc_init", a.clone(), c).unwrap().status, TxStatus::Success);
            call(&dev_key(3), "msc_init", a, c)
        }),
        ("an ESC needs two different MSCs", |f| esc_call(f, |i| i.sids = [0, 0], None)),
        ("the two pseudonym keys must differ", |f| esc_call(f, |i| i.keys[1] = i.keys[0], None)),
        ("ESC counter must be 1", |f| esc_call(f, |i| i.n = 5, None)),
        ("no such MSC", |f| esc_call(f, |i| i.sids = [0, 99], None)),
        ("bad or missing sc-init signature of side 1", |f| esc_call(f, |_| {}, Some(KeyPair::from_seed("stranger")))),
        ("MSC 0 is closed", |f| {
            f.ok(0, "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO);
            esc_call(f, |_| {}, None)
        }),
        ("channel already opened", |f| {
            f.open(0);
            call(&f.accts[1], "channel_open", f.open_args(0), Amount::ZERO)
        }),
        ("channel id must be derived from index 0", |f| {
            call(&f.accts[0], "channel_open", f.open_args(5), Amount::ZERO)
        }),
        ("t_delta must be between", |f| {
            let open = f.cosign(ChannelState { t_delta_ms: MAX_T + 1, ..f.state(0, 0, [1, 1], false) });
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO)
        }),
        ("the open state must have counter 0", |f| {
            let open = f.cosign(f.state(0, 1, [1, 1], false));
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO)
        }),
        ("a channel needs a positive capacity", |f| {
            let open = f.cosign(f.state(0, 0, [0, 0], false));
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO)
        }),
        ("not this one", |f| {
            let open = f.cosign(ChannelState { domain: Domain::cns(9), ..f.state(0, 0, [1, 1], false) });
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO)
        }),
        ("bad or missing signature of side 0", |f| {
            let mut open = f.cosign(f.state(0, 0, [1, 1], false));
            open.sigs[0] = open.sigs[1];
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: f.scid, open }), Amount::ZERO)
        }),
        ("no such ESC", |f| {
            let open = f.cosign(f.state(0, 0, [1, 1], false));
            call(&f.accts[0], "channel_open", args(&ChannelOpenArgs { scid: Hash32([1; 32]), open }), Amount::ZERO)
        }),
        ("bad arguments", |f| call(&f.accts[0], "channel_open", vec![1, 2, 3], Amount::ZERO)),
        ("channel is not awaiting funding", |f| {
            let cid = f.open(0);
            call(
                &f.accts[0],
                "channel_fund",
                args(&ChannelFundArgs { cid, side: 0, funding: Funding::Deposit }),
                Amount(1_000),
            )
        }),
        ("side 0 already funded", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            let cid = derive_cid(&f.scid, 0);
            let fund = args(&ChannelFundArgs { cid, side: 0, funding: Funding::Deposit });
            f.ok(0, "channel_fund", fund.clone(), Amount(1_000));
            call(&f.accts[0], "channel_fund", fund, Amount(1_000))
        }),
        ("only side 1 may fund its side", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            let cid = derive_cid(&f.scid, 0);
            call(
                &f.accts[0],
                "channel_fund",
                args(&ChannelFundArgs { cid, side: 1, funding: Funding::Deposit }),
                Amount(1_000),
            )
        }),
        ("side must be 0 or 1", |f| {
            let cid = derive_cid(&f.scid, 0);
            call(
                &f.accts[0],
                "channel_fund",
                args(&ChannelFundArgs { cid, side: 2, funding: Funding::Deposit }),
                Amount(1_000),
            )
        }),
        ("no such channel", |f| {
            let cid = derive_cid(&f.scid, 0);
            call(
                &f.accts[0],
                "channel_fund",
                args(&ChannelFundArgs { cid, side: 0, funding: Funding::Deposit }),
                Amount(1_000),
            )
        }),
        ("credit-note funding takes no value", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            let cid = derive_cid(&f.scid, 0);
            let note = f.desk.sign_note(f.sids[0], cid, Amount(1_000), 1);
            call(&f.accts[0], "channel_fund", args(&ChannelFundArgs { cid, side: 0, funding: note }), Amount(1))
        }),
        ("MSC 0 may not draw credit", |f| {
            f.ok(0, "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO);
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            let cid = derive_cid(&f.scid, 0);
            let note = f.desk.sign_note(f.sids[0], cid, Amount(1_000), 1);
            call(&f.accts[0], "channel_fund", args(&ChannelFundArgs { cid, side: 0, funding: note }), Amount::ZERO)
        }),
        ("only a channel still funding can be aborted", |f| {
            let cid = f.open(0);
            call(&f.accts[0], "channel_abort", args(&CidArgs { cid }), Amount::ZERO)
        }),
        ("not a party to this channel", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            call(&dev_key(3), "channel_abort", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO)
        }),
        ("a final state closes the channel: use channel_close", |f| {
            f.open(0);
            let s = f.cosign(f.state(0, 1, [1_000, 1_000], true));
            call(&f.accts[0], "channel_update", args(&ChannelStateArgs { state: s }), Amount::ZERO)
        }),
        ("takes no native value", |f| {
            f.open(0);
            let s = f.cosign(f.state(0, 1, [900, 1_100], false));
            call(&f.accts[0], "channel_update", args(&ChannelStateArgs { state: s }), Amount(5))
        }),
        ("cooperative close needs a state both signed as final", |f| {
            f.open(0);
            let s = f.cosign(f.state(0, 1, [900, 1_100], false));
            call(&f.accts[0], "channel_close", args(&ChannelStateArgs { state: s }), Amount::ZERO)
        }),
        ("channel is not open: funding incomplete", |f| {
            let a = f.open_args(0);
            f.ok(0, "channel_open", a, Amount::ZERO);
            let s = f.cosign(f.state(0, 1, [900, 1_100], true));
            call(&f.accts[0], "channel_close", args(&ChannelStateArgs { state: s }), Amount::ZERO)
        }),
        ("only side 1 may raise a dispute as side 1", |f| {
            f.open(0);
            let s = f.cosign(f.state(0, 1, [900, 1_100], false));
            call(&f.accts[0], "channel_dispute", args(&ChannelDisputeArgs { side: 1, state: s }), Amount::ZERO)
        }),
        ("no dispute is raised on this channel", |f| {
            f.open(0);
            let s = f.cosign(f.state(0, 1, [900, 1_100], false));
            call(&f.accts[0], "channel_resolve", args(&ChannelStateArgs { state: s }), Amount::ZERO)
        }),
        ("dispute window ended", |f| {
            f.open(0);
            let s1 = f.update(0, 1, [900, 1_100]);
            f.dispute(0, s1);
            f.dc.now += T_DELTA + 1_000;
            let s2 = f.cosign(f.state(0, 2, [800, 1_200], false));
            call(&f.accts[1], "channel_resolve", args(&ChannelStateArgs { state: s2 }), Amount::ZERO)
        }),
        ("dispute timer runs until", |f| {
            f.open(0);
            let s1 = f.update(0, 1, [900, 1_100]);
            f.dispute(0, s1);
            call(&f.accts[1], "channel_settle", args(&CidArgs { cid: derive_cid(&f.scid, 0) }), Amount::ZERO)
        }),
        ("no dispute is raised on this channel", |f| {
            let cid = f.open(0);
            call(&f.accts[1], "channel_settle", args(&CidArgs { cid }), Amount::ZERO)
        }),
        ("only the MSC's merchant signs its debits", |f| {
            f.closed_with_debit();
            let sign = f.desk.sign_debit(&f.pending(f.sids[0]), 1).unwrap();
            call(&f.accts[0], "msc_sign_debit", args(&sign), Amount::ZERO)
        }),
        ("no pending settlement for this channel", |f| {
            f.closed_with_debit();
            let mut sign = f.desk.sign_debit(&f.pending(f.sids[0]), 1).unwrap();
            sign.cid = Hash32([4; 32]);
            call(&dev_key(0), "msc_sign_debit", args(&sign), Amount::ZERO)
        }),
        ("bad merchant signature on the debit", |f| {
            f.closed_with_debit();
            let mut rec = f.pending(f.sids[0]);
            let sign0 = f.desk.sign_debit(&rec, 1).unwrap();
            rec.debit = Amount(1);
            let forged = cns::Statement::Debit(rec).sign(&f.desk.key, &f.desk.domain, 1);
            call(&dev_key(0), "msc_sign_debit", args(&cns::SignDebitArgs { sig: forged, ..sign0 }), Amount::ZERO)
        }),
        ("nothing is outstanding", |f| call(&f.accts[0], "bill_pay", args(&SidArgs { sid: f.sids[0] }), Amount(1))),
        ("payment must be between 1 and 500", |f| {
            f.closed_with_debit();
            let sign = f.desk.sign_debit(&f.pending(f.sids[0]), 1).unwrap();
            let r = f.dc.call(&dev_key(0), CNS_ID, "msc_sign_debit", args(&sign), Amount::ZERO).unwrap();
            assert_eq!(r.status, TxStatus::Success);
            call(&f.accts[0], "bill_pay", args(&SidArgs { sid: f.sids[0] }), Amount(501))
        }),
        ("only the MSC's merchant settles its bills", |f| {
            call(&f.accts[0], "bill_settle", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("billing period runs until", |f| {
            call(&dev_key(0), "bill_settle", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("collateral time-locked until", |f| {
            f.closed_with_debit();
            let sign = f.desk.sign_debit(&f.pending(f.sids[0]), 1).unwrap();
            let r = f.dc.call(&dev_key(0), CNS_ID, "msc_sign_debit", args(&sign), Amount::ZERO).unwrap();
            assert_eq!(r.status, TxStatus::Success);
            f.dc.now += 11_000; // past the 10 s period, inside the 50 s lock
            call(&dev_key(0), "bill_settle", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("only the MSC's participant claims", |f| {
            call(&f.accts[1], "msc_claim", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("the merchant may still bill until", |f| {
            call(&f.accts[0], "msc_claim", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("only the participant closes its MSC", |f| {
            call(&f.accts[1], "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("credit still locked, pending or outstanding", |f| {
            f.open_on_credit(0);
            call(&f.accts[0], "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("MSC already closed", |f| {
            f.ok(0, "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO);
            call(&f.accts[0], "msc_close", args(&SidArgs { sid: f.sids[0] }), Amount::ZERO)
        }),
        ("cns has no method frobnicate", |f| call(&f.accts[0], "frobnicate", vec![], Amount::ZERO)),
    ];
    for (reason, make) in rows {
        let d = tempfile::tempdir().unwrap();
        let mut f = fixture(d.path(), 3);
        let c = make(&mut f);
        f.refused_by(&c.who, c.method, c.args, c.value, reason);
    }
}

const MAX_T: u64 = cns::MAX_T_DELTA_MS;

/// An `esc_open` between the fixture's MSCs, edited by `edit`, with side 1
/// signed by `side1` instead of its MSC key if given.
fn esc_call(f: &mut Fx, edit: fn(&mut EscInit), side1: Option<KeyPair>) -> Call {
    let mut init = EscInit {
        sids: f.sids,
        keys: [KeyPair::from_seed("e2").public(), KeyPair::from_seed("e3").public()],
        payouts: [f.accts[0].address(), f.accts[1].address()],
        n: 1,
        dispute_limit: 3,
    };
    edit(&mut init);
    let m1 = side1.unwrap_or_else(|| KeyPair::from_seed("m1"));
    let a = esc_open_args(&f.desk.domain, init, [&KeyPair::from_seed("m0"), &m1], 8);
    call(&f.accts[0], "esc_open", args(&a), Amount::ZERO)
}

#[test]
fn pool_deposit_and_withdraw_move_the_free_pool() {
    let d = tempfile::tempdir().unwrap();
    let mut f = fixture(d.path(), 3);
    let m = dev_key(0);
    let free = |f: &Fx| cns::read::merchant(f.dc.chain.state(), &m.address()).unwrap().unwrap().free;
    let before = free(&f);
    assert_eq!(f.dc.call(&m, CNS_ID, "pool_deposit", vec![], Amount(7_000)).unwrap().status, TxStatus::Success);
    assert_eq!(free(&f), Amount(before.0 + 7_000));
    let w = args(&PoolWithdraw { amount: Amount(2_000) });
    let bal = f.dc.chain.state().account(&m.address()).balance.0;
    let r = f.dc.call(&m, CNS_ID, "pool_withdraw", w, Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(free(&f), Amount(before.0 + 5_000));
    assert_eq!(f.dc.chain.state().account(&m.address()).balance.0, bal + 2_000 - r.fee.0);
}

#[test]
fn unknown_views_and_a_risky_applicant_are_refused_with_their_reason() {
    use gridledger_contracts::cns::credit::CreditRefusal;
    let d = tempfile::tempdir().unwrap();
    let f = fixture(d.path(), 3);
    let e = f.dc.chain.view(CNS_ID, "nope", &[]).unwrap_err();
    assert!(e.to_string().contains("cns has no view nope"), "{e}");
    // An applicant with an earlier default is refused by the risk function.
    let app = CreditApplication {
        participant: KeyPair::from_seed("risky").public(),
        documents: vec![Hash32([1; 32])],
        requested_credit: Amount(1_000),
        identity: "risky".into(),
    };
    let history = ApplicantHistory { disputes_at_fault: 0, defaults: 1 };
    assert!(matches!(f.desk.assess(&app, &history, f.dc.now, 1), Err(CreditRefusal::Risk(_))));
}
