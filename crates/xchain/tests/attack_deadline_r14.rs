//! Fourteenth attack round on the cross-chain protocols (issue 14): the
//! NTs' own deadline (`TxKind::TransferUntil`, `BobConfig::nt_valid_until`,
//! attack R12-4's fix) against sub-situation 2's forwarding window, which
//! SC_T still counts from the chains' stored tips when the first CCT_V
//! runs (`forward_*`) — [1], [2]; R13's `ForeignTermsBelow` against terms
//! the counterparty builds — [3]; a far NT deadline against balance fraud
//! (held).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r14 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::transfer;
use gridledger_xchain::bob::{CctV, PostNt};
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, SideState};

// ------------------------------------------------------------------- [1]

/// What [`offline_payer`] saw.
#[derive(Debug)]
struct Forwarded {
    /// The sender's side at the end.
    sender: SideState,
    /// Chain i's height when the first CCT_V ran, the NT's deadline (if
    /// it has one) and the sender's forwarding deadline `forward_i`.
    tip_i_at_cct_v: u64,
    valid_until: Option<u64>,
    forward_i: u64,
    /// Where NT_s landed on chain i, if it did.
    landed: Option<u64>,
    /// The sender's deposit (free + locked) before and after.
    deposit: (u128, u128),
}

/// Sub-situation 2 as attack R8-3's decision describes it: the sender S
/// posts its NT on the BoB in time and goes offline before it reaches
/// chain i (a driver killed between posting and sending, a validator that
/// crashed holding it), trusting the BoB nodes to forward it after CCT_V.
/// Chain i seals `i_per_epoch` blocks for each block of chain j and the
/// BoB (heterogeneous chains: chain i has the shorter block interval).
/// The receiver R pays and proves honestly on chain j. `plain`: S's NT is
/// an ordinary transfer (as NTs were before deadlines; SC_MPV still takes
/// them) instead of the driver's deadline NT.
fn offline_payer(i_per_epoch: u64, plain: bool) -> Forwarded {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1401));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = if plain {
        let c = m.external(ci).unwrap();
        let (_, _, to, amount) = rec.instruction(Side::Sender);
        c.sign(&s, transfer(&s, ci, rec.agreed_nonce(Side::Sender), to, Amount(amount), Amount(1)))
    } else {
        m.native_tx(&rec, Side::Sender, &s).unwrap()
    };
    let valid_until = nt_s.tx.kind.valid_until();
    // Posted on the BoB; it never reached chain i (S is offline now).
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let mut tip_i_at_cct_v = 0;
    for _ in 0..400 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            // An honest BoB node's first CCT_V, as soon as both deadlines passed.
            tip_i_at_cct_v = m.bob_tip(ci);
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            continue;
        }
        for _ in 1..i_per_epoch {
            m.external_mut(ci).unwrap().tick().unwrap();
        }
        m.tick().unwrap();
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "settled: {end:?}");
    let after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    Forwarded {
        sender: end.sender,
        tip_i_at_cct_v,
        valid_until,
        forward_i: end.forward_i,
        landed,
        deposit: (before, after),
    }
}

/// R12-4's fix gives each NT the deadline `nt_valid_until`: the last
/// provable landing for "the earliest forwarding deadline the CCT can
/// get", `deadline_i + κ̄ + κ − k`. But SC_T sets the forwarding deadline
/// from chain i's stored tip *when the first CCT_V runs*, and that CCT_V
/// waits for both chains' deadlines: when chain i is the faster chain
/// (here 3 blocks per block of chain j), chain i is far past `deadline_i`
/// when it runs. The BoB nodes forward S's posted NT for sub-situation 2
/// (their `still_provable` still counts to `forward_i − k`), but chain i
/// refuses it (`Expired`): its deadline passed even before CCT_V opened
/// sub-situation 2. S — who posted in time and relied on the forwarding
/// the protocol promises (R8-3) — is penalised x_B at the closing CCT_V.
/// With an ordinary transfer as NT (the rule before R12-4's fix, still
/// taken by SC_MPV, see the control below) the same payment is forwarded,
/// lands and is proved.
///
/// Expected: a posted NT the BoB nodes forward inside SC_T's forwarding
/// window can land (its deadline is at least `forward_i − k`, e.g. the
/// window counted from the NT's deadline, or CCT_V refused / forwarding
/// closed once the NT's deadline passed) and S's side ends `Proved`.
/// Observed: S `Penalised`, NT_s never on chain i, `valid_until` below
/// chain i's height at CCT_V.
#[test]
fn a_posted_payment_on_the_faster_chain_is_still_landable_when_sub_situation_2_opens() {
    let f = offline_payer(3, false);
    eprintln!("{f:?}");
    assert!(f.valid_until.is_some(), "the driver's NT carries a deadline");
    // SC_T's window was still open for it when sub-situation 2 began.
    assert!(f.tip_i_at_cct_v < f.forward_i, "{f:?}");
    assert!(matches!(f.sender, SideState::Proved { .. }), "S posted in time and the BoB nodes forwarded its NT: {f:?}");
    assert_eq!(f.deposit.0, f.deposit.1, "S's deposit: {f:?}");
}

/// Held up (control of [1]): with chains of one speed, the posted NT the
/// BoB nodes forward after CCT_V lands and is proved.
#[test]
fn a_posted_payment_forwarded_on_chains_of_one_speed_is_proved() {
    let f = offline_payer(1, false);
    eprintln!("{f:?}");
    assert!(matches!(f.sender, SideState::Proved { .. }), "{f:?}");
    assert!(f.landed.is_some_and(|h| f.valid_until.is_some_and(|u| h <= u)), "{f:?}");
    assert_eq!(f.deposit.0, f.deposit.1);
}

/// Held up (control of [1]): the same scenario on the faster chain with an
/// ordinary transfer as NT (no deadline): forwarded after CCT_V, it lands
/// inside `forward_i − k` and is proved — the deadline alone makes [1]
/// penalise.
#[test]
fn a_plain_posted_payment_on_the_faster_chain_is_proved() {
    let f = offline_payer(3, true);
    eprintln!("{f:?}");
    assert!(f.valid_until.is_none());
    assert!(matches!(f.sender, SideState::Proved { .. }), "{f:?}");
    assert!(f.landed.is_some_and(|h| h <= f.forward_i), "{f:?}");
    assert_eq!(f.deposit.0, f.deposit.1);
}

// ------------------------------------------------------------------- [2]

/// [1] driven by the payee's side, with R online throughout: on a chain j
/// with the shorter block interval (3 blocks per block of chain i and the
/// BoB; with 2 it still holds), Mallory's
/// terms A stored at their `expires_at` (the R13 scenario that held on
/// chains of one speed) put R's nonce `n` ahead of its payment for B, so
/// that payment can land only after R's payment for A, at
/// `e_j(A) + κ̄ + 2` — past the deadline R's NT for B carries
/// (`deadline_j(B) + κ̄ + κ`), though well inside B's forwarding window
/// (`forward_j`, counted from chain j's tip when B's first CCT_V ran,
/// which waited for the slower chain i). Chain j refuses it (`Expired`)
/// however often R sends it, and S — Mallory's accomplice and the payee —
/// gets x_B of R's deposit at the closing CCT_V.
///
/// Expected: R, who agreed both exchanges and paid each as soon as it
/// could, ends B `Proved` (its payment lands inside SC_T's window).
/// Observed: `Penalised`, R's payment for B never on chain j.
#[test]
fn terms_stored_at_expiry_do_not_expire_a_concurrent_payment_on_a_faster_chain() {
    let got = stored_at_expiry(MbsSpec::default(), 3);
    eprintln!("{got:?}");
    assert!(got.a_stored && got.r_paid_a_at.is_some(), "A stored and paid by R: {got:?}");
    // R's payment for B could land right after A's: inside B's forwarding
    // window. (On the code attacked, past the NT's own deadline, which lay
    // below `forward_j`; since the fix the window ends where the NT's
    // deadline makes its landing final, `valid_until + k`, k = 0 here.)
    assert!(got.r_paid_a_at.is_some_and(|h| h < got.b_forward_j), "{got:?}");
    assert!(got.b_valid_until.is_some_and(|u| u <= got.b_forward_j), "{got:?}");
    assert!(matches!(got.b_receiver, SideState::Proved { .. }), "honest R on B: {got:?}");
    assert!(got.r_paid_b_at.is_some(), "R's payment for B landed: {got:?}");
    assert_eq!(got.r_deposit.0, got.r_deposit.1, "R's deposit: {got:?}");
}

/// Held up (control of [2]): on chains of one speed the same attack leaves
/// R's side of B `Proved`.
#[test]
fn terms_stored_at_expiry_on_chains_of_one_speed_leave_a_concurrent_payment_proved() {
    let got = stored_at_expiry(MbsSpec::default(), 1);
    eprintln!("{got:?}");
    assert!(matches!(got.b_receiver, SideState::Proved { .. }), "{got:?}");
    assert!(got.r_paid_b_at.is_some_and(|h| got.b_valid_until.is_some_and(|u| h <= u)), "{got:?}");
    assert_eq!(got.r_deposit.0, got.r_deposit.1);
}

// ------------------------------------------------------------------- [3]

/// What [`foreign_terms_bypassed`] saw.
#[derive(Debug)]
struct Bypassed {
    /// R's own builder refused B (`ForeignTermsBelow`).
    builder_refused: bool,
    /// R's checks before agreeing (`check_floors`, `check_view`) and its
    /// wallet's signature took the counterparty's terms naming `n + 1`.
    agreed: bool,
    /// B's receiver side at its end and R's deposit before and after.
    receiver: Option<SideState>,
    r_deposit: (u128, u128),
}

/// Attack R13-3's scenario (a κ = 4 deployment D1; terms A of another
/// deployment D2, 16 D2 blocks ahead, hold R's nonce `n` on chain j and are
/// never stored there; R's driver on D2 runs and gives A back once D2,
/// as fast as D1, passes A's `expires_at`), which R13's fix answers with
/// `ForeignTermsBelow` from the *terms builder*. Here the counterparty S
/// builds B's terms (the sender proposes them; the receiver checks and
/// signs, `check_floors` being "what each party checks before
/// agreeing") and names R's next free nonce `n + 1`.
fn foreign_terms_bypassed() -> Bypassed {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::mbs::{MbsError, SwapRequest};
    use gridledger_xchain::wallet::WalletError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa: 4, ..MbsSpec::default() });
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_b = request_between(ci, cj, 500, 1432);
    // S's terms for B as S's builder makes them, before A.
    let mut terms_b = m.try_terms(&req_b).unwrap();
    let foreign = gridledger_core::Hash32([0xd7; 32]);
    let h0 = m.bob.height();
    m.wallet.observe(foreign, h0);
    m.wallet.observe_limit(foreign, gridledger_xchain::bob::MAX_TERMS_AHEAD);
    let req_a = SwapRequest { sender: mallory, ..request_between(ci, cj, 500, 1431) };
    let mut terms_a = m.try_terms(&req_a).unwrap();
    terms_a.deployment = foreign;
    terms_a.expires_at = h0 + 16;
    let n = terms_a.nonce_j;
    let _sig = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let builder_refused =
        matches!(m.try_terms(&req_b), Err(MbsError::Wallet(WalletError::ForeignTermsBelow { held, .. })) if held == n);
    // S names R's next free nonce in B (the one above A's).
    assert_eq!(terms_b.nonce_j, n);
    terms_b.nonce_j = n + 1;
    let agreed = m.check_floors(&terms_b).is_ok()
        && m.check_view(&[ci, cj]).is_ok()
        && m.wallet_cct_tx(&s, &r, terms_b.clone())
            .is_ok_and(|tx| m.wallet.agree(&terms_b).is_ok() && m.bob_ok(&tx).is_ok());
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    if !agreed {
        return Bypassed { builder_refused, agreed, receiver: None, r_deposit: (before, before) };
    }
    let id = terms_b.id();
    let rec = m.cct(&id).unwrap();
    m.wait_native_window(&rec).unwrap();
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).unwrap();
        let _ = m.external_mut(rec.instruction(side).0).unwrap().submit(&nt);
        m.bob_ok(&m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt }, Amount::ZERO)).unwrap();
    }
    let mut released = false;
    for _ in 0..400 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        // R's driver on D2 (as fast as D1) gives A back once D2 passed
        // A's `expires_at` without a record of A.
        if !released && m.bob.height() > terms_a.expires_at {
            m.wallet.release_unstored(foreign, m.bob.height(), |_| false).unwrap();
            released = true;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
        } else {
            m.tick().unwrap();
        }
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "B settled: {end:?}");
    let after = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    Bypassed { builder_refused, agreed, receiver: Some(end.receiver), r_deposit: (before, after) }
}

/// R13's fix of [2], [3], [5] refuses terms naming a payer's nonce above
/// another deployment's unspent entry only in this driver's *terms
/// builder* (`try_terms`); neither the receiver's checks before agreeing
/// (`check_floors`, which takes exactly `next_free`, the nonce above the
/// held one) nor its wallet's `sign` / `agree` refuse them. The sender
/// proposes the terms, so S names R's nonce `n + 1`, R's checks pass and
/// its wallet signs: R13-3 again — R pays B in full and in time, the
/// payment waits for nonce `n`, which R's other driver gives back only
/// once D2 passed A's `expires_at` (after B's NT deadline on κ = 4), and
/// R is penalised x_B on B.
///
/// Expected: the receiver's own checks (or its wallet, which holds the
/// foreign entry) refuse terms naming its nonce above another
/// deployment's unspent entry, as the builder does — or R is not
/// penalised. Observed: B agreed and stored; R `Penalised`.
#[test]
fn terms_the_counterparty_builds_above_a_foreign_entry_are_refused_by_the_receiver() {
    let b = foreign_terms_bypassed();
    eprintln!("{b:?}");
    assert!(b.builder_refused, "the builder refuses them: {b:?}");
    assert!(
        !b.agreed || (matches!(b.receiver, Some(SideState::Proved { .. })) && b.r_deposit.0 == b.r_deposit.1),
        "R agreed terms above another deployment's entry and was penalised: {b:?}"
    );
}

// ------------------------------------------------------------------ held

/// Held up: a payer that cannot pay names a far deadline in its posted NT
/// (`valid_until = u64::MAX`, which neither `post_nt` nor SC_MPV checks)
/// so that balance fraud is refused for good (`EvidenceBeforeNtDeadline`);
/// it still does not escape: the closing CCT_V penalises its side x_B, to
/// the honest receiver who paid.
#[test]
fn a_far_nt_deadline_does_not_let_an_underfunded_payer_escape_the_penalty() {
    use gridledger_ledger::devnet::transfer_until;
    use gridledger_xchain::mbs::SINK;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    // S empties its account on chain i before agreeing.
    let all = m.external(ci).unwrap().account(&s.address()).balance.0 - gridledger_xchain::mbs::TRANSFER_FEE;
    let drain = m.native_transfer(ci, &s, SINK, all).unwrap();
    m.external_mut(ci).unwrap().submit(&drain).unwrap();
    m.tick().unwrap();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1441));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let (_, _, to, amount) = rec.instruction(Side::Sender);
    let nt_s = m
        .external(ci)
        .unwrap()
        .sign(&s, transfer_until(&s, ci, rec.agreed_nonce(Side::Sender), (to, Amount(amount), u64::MAX), Amount(1)));
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO))
        .unwrap();
    let r_before = m.deposit(&r.address()).free;
    // After CCT_V, balance evidence against the far deadline is refused.
    let mut refused = false;
    for _ in 0..400 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            continue;
        }
        if rec.verified && !refused {
            // Evidence at a kept, final header at or past deadline_i.
            let c = m.external(ci).unwrap();
            let (height, proof) = c.state_proof(&gridledger_ledger::state::account_key(&s.address()));
            if height >= rec.deadline_i {
                m.wait_final(ci, height).unwrap();
                let account = Some(m.external(ci).unwrap().account(&s.address()));
                let f = gridledger_xchain::bob::Fraud {
                    cct: id,
                    side: Side::Sender,
                    height,
                    evidence: gridledger_xchain::bob::FraudEvidence::Balance { account, proof },
                };
                let tx = m.bob_call(&r, "fraud", &f, Amount::ZERO);
                assert_refused(
                    &mut m,
                    &tx,
                    XchainError::EvidenceBeforeNtDeadline { chain: ci, height, valid_until: u64::MAX },
                );
                refused = true;
                continue;
            }
        }
        m.tick().unwrap();
    }
    let end = m.cct(&id).unwrap();
    assert!(refused, "balance fraud was tried");
    assert!(end.complete, "{end:?}");
    assert_eq!(end.sender, SideState::Penalised, "the closing CCT_V penalises the payer");
    assert!(matches!(end.receiver, SideState::Proved { .. }));
    assert_eq!(m.deposit(&r.address()).free, r_before + end.lock + end.x_b, "R's lock back and x_B of S's");
}
