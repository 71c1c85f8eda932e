//! Fifteenth attack round on the cross-chain protocols (issue 14): the NT
//! deadline bound `nt_deadline_bound` (`deadline + MAX_RATE_RATIO · (κ̄ +
//! κ_max) − k`) and SC_T's window `forward_deadline_for` at the edges the
//! fix documents: chains exactly `MAX_RATE_RATIO` apart (which the bound
//! claims to cover), chains further apart, and κ = 4 deployments — [2];
//! the first CCT_V, which no BoB node sends, sent late by the payee —
//! [1].
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r15 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_xchain::bob::{CctV, PostNt};
use gridledger_xchain::headers::Finality;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, SideState};

/// What [`offline_payer`] saw.
#[derive(Debug)]
#[allow(dead_code)]
struct Forwarded {
    sender: SideState,
    tip_i_at_cct_v: u64,
    real_i_at_cct_v: u64,
    valid_until: Option<u64>,
    forward_i: u64,
    landed: Option<u64>,
    deposit: (u128, u128),
}

/// Attack R14-1's scenario (the sender S posts its deadline NT on the BoB
/// in time and goes offline before it reaches chain i, trusting the BoB
/// nodes to forward it after the first CCT_V; R pays and proves honestly
/// on chain j) on a deployment `spec`, chain i sealing `i_per_epoch`
/// blocks for each block of chain j and the BoB. An honest BoB node sends
/// the first CCT_V as soon as both stored tips reached their deadlines.
fn offline_payer(spec: MbsSpec, i_per_epoch: u64) -> Forwarded {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1501));
    m.wait_native_window(&rec).unwrap();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let valid_until = nt_s.tx.kind.valid_until();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let (mut tip_i_at_cct_v, mut real_i_at_cct_v) = (0, 0);
    for _ in 0..800 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            tip_i_at_cct_v = m.bob_tip(ci);
            real_i_at_cct_v = m.external(ci).unwrap().height();
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
        real_i_at_cct_v,
        valid_until,
        forward_i: end.forward_i,
        landed,
        deposit: (before, after),
    }
}

fn assert_proved(f: &Forwarded) {
    assert!(matches!(f.sender, SideState::Proved { .. }), "S posted in time: {f:?}");
    assert_eq!(f.deposit.0, f.deposit.1, "S's deposit: {f:?}");
}

// ------------------------------------------------------------------- [1]

/// What [`late_first_cct_v`] saw.
#[derive(Debug)]
#[allow(dead_code)]
struct Late {
    sender: SideState,
    valid_until: Option<u64>,
    tip_i_at_cct_v: u64,
    forward_i: u64,
    landed: Option<u64>,
    s_deposit: (u128, u128),
    r_free: (u128, u128),
}

/// Attack R14-1's offline payer on chains of ONE speed (the default
/// deployment), but the first CCT_V is sent by the receiver R (Mallory,
/// the payee of S's payment, who gets x_B if S is penalised) — no BoB
/// node's tick sends a first CCT_V (`closing_txs` and the forwarding
/// duties skip unverified CCTs; only the swap drivers send it). R pays and
/// proves its own side at once, then waits until chain i passed the
/// deadline S's posted NT carries before it sends the first CCT_V.
/// `plain`: S's posted NT is an ordinary transfer (no deadline).
fn late_first_cct_v(plain: bool) -> Late {
    use gridledger_ledger::devnet::transfer;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1511));
    m.wait_native_window(&rec).unwrap();
    let nt_s = if plain {
        let c = m.external(ci).unwrap();
        let (_, _, to, amount) = rec.instruction(Side::Sender);
        c.sign(&s, transfer(&s, ci, rec.agreed_nonce(Side::Sender), to, Amount(amount), Amount(1)))
    } else {
        m.native_tx(&rec, Side::Sender, &s).unwrap()
    };
    let valid_until = nt_s.tx.kind.valid_until();
    // S posts its NT in time and goes offline before sending it to chain i.
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let s_before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let r_before = m.deposit(&r.address()).free;
    // The NT S would have signed (its deadline), whichever S posted.
    let cut = m.native_tx(&rec, Side::Sender, &s).unwrap().tx.kind.valid_until().unwrap();
    let mut tip_i_at_cct_v = 0;
    for _ in 0..800 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        // Mallory's first CCT_V: only once chain i's stored tip is past
        // the deadline of S's NT (both ln-08 deadlines long reached).
        if !rec.verified && m.bob_tip(ci) > cut && m.bob_tip(cj) >= rec.deadline_j {
            tip_i_at_cct_v = m.bob_tip(ci);
            let _ = m.bob_exec(&m.bob_call(&r, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            continue;
        }
        m.tick().unwrap();
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "settled: {end:?}");
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    Late {
        sender: end.sender,
        valid_until,
        tip_i_at_cct_v,
        forward_i: end.forward_i,
        landed,
        s_deposit: (s_before, m.deposit(&s.address()).free + m.deposit(&s.address()).locked),
        r_free: (r_before, m.deposit(&r.address()).free),
    }
}

/// R14's fix made SC_T's forwarding window of a side whose posted NT
/// carries a deadline close at `valid_until + k`, a fixed height of chain
/// i, whenever the first CCT_V runs (before, the window was counted from
/// chain i's tip at the first CCT_V, so a late first CCT_V still gave the
/// posted NT a full window — see the plain-NT control below). Sub-situation
/// 2 (the BoB nodes forwarding the posted NT) opens only with the first
/// CCT_V, and no BoB node sends that one: the counterparty does. So the
/// payee R, who gets x_B if S is penalised, simply waits with the first
/// CCT_V until S's NT expired: the nodes never forward it
/// (`still_provable` is false from the start), the closing CCT_V follows
/// at once and S — who posted in time and relied on the forwarding
/// R8-3's decision promises — pays x_B to R. Chains of one speed, the
/// default deployment: no rate assumption is broken. (R14's fix only
/// lengthened the wait: on the code before it the NT's deadline was
/// `deadline + κ̄ + κ − k`; the deadline NT of R12-4 is what makes a late
/// first CCT_V harmful, and R14's "penalised only once it can no longer
/// land" does not cover an NT never forwarded because sub-situation 2
/// opened after its deadline.)
///
/// Expected: S's side ends `Proved` (or at least not `Penalised`) and S's
/// deposit is untouched, as with a plain NT or with a timely first CCT_V.
/// Observed: S `Penalised`, NT_s never on chain i, x_B moved to R.
///
/// Fixed: BoB nodes forward (and prove) a posted deadline NT before the
/// first CCT_V as well, from an ln-08 window before its deadline on
/// (`BobMbs::early_forward_from`).
#[test]
fn a_late_first_cct_v_does_not_penalise_a_payer_who_posted_in_time() {
    let l = late_first_cct_v(false);
    eprintln!("{l:?}");
    assert!(l.valid_until.is_some(), "the driver's NT carries a deadline");
    assert!(matches!(l.sender, SideState::Proved { .. }), "S posted in time: {l:?}");
    assert_eq!(l.s_deposit.0, l.s_deposit.1, "S's deposit: {l:?}");
}

/// Held up (control of [1]): the same late first CCT_V with an ordinary
/// transfer posted as NT — the window counts from chain i's tip at the
/// first CCT_V, the nodes forward it, it lands and is proved.
#[test]
fn a_late_first_cct_v_with_a_plain_posted_nt_leaves_the_payer_proved() {
    let l = late_first_cct_v(true);
    eprintln!("{l:?}");
    assert!(l.valid_until.is_none());
    assert!(matches!(l.sender, SideState::Proved { .. }), "{l:?}");
    assert_eq!(l.s_deposit.0, l.s_deposit.1, "{l:?}");
}

// ------------------------------------------------------------------- [2]

/// The documented limit of R14's fix: chains more than `MAX_RATE_RATIO`
/// (4) apart in block rate. Nothing refuses such a deployment (neither
/// `BobMbs::open` nor the chains' registration know or check a rate), and
/// on the default deployment (κ = 16, κ̄ = 2, k = 0) with chain i 6 times
/// as fast as chain j and the BoB, an honest payer who posted in time and
/// went offline is penalised x_B: the first CCT_V, sent as soon as both
/// ln-08 deadlines are stored, already finds chain i past the NT's
/// deadline. (A probabilistic chain's block intervals vary: over the
/// κ̄ + κ_j blocks of chain j before the first CCT_V the ratio can exceed
/// 4 without any party misbehaving.)
///
/// Expected: either the deployment is refused / warned at set-up, or the
/// payer is not penalised. Observed: `Penalised`, its NT never on chain i.
///
/// Fixed with [1]: the early forwarding waits for the NT's own chain only,
/// not for the first CCT_V (which waits for both chains), so the NT lands
/// before its deadline. No rate check refuses such a deployment.
#[test]
fn chains_six_times_apart_do_not_penalise_an_honest_posted_payer() {
    let f = offline_payer(MbsSpec::default(), 6);
    eprintln!("{f:?}");
    assert_proved(&f);
}

/// Held up: at exactly `MAX_RATE_RATIO` (and at 5) the posted NT is still
/// forwarded, lands and is proved — on the default deployment, on κ = 4,
/// and with k = 3 / k = 6 confirmations.
#[test]
fn chains_up_to_four_times_apart_leave_a_posted_payer_proved() {
    for (kappa, k, ratio) in [(16, 0, 4), (16, 0, 5), (4, 0, 4), (4, 0, 8), (4, 3, 4), (16, 6, 4)] {
        let finality = if k == 0 { Finality::Deterministic } else { Finality::Probabilistic { k } };
        let f = offline_payer(MbsSpec { kappa, finality, ..MbsSpec::default() }, ratio);
        eprintln!("kappa {kappa} k {k} ratio {ratio}: {f:?}");
        assert_proved(&f);
        assert!(f.landed.is_some_and(|h| f.valid_until.is_some_and(|u| h <= u)), "{f:?}");
    }
}

// ------------------------------------------------ held: R14-2 on κ = 4

/// Held up: attack R14-2 (terms stored at their expiry push the
/// receiver's payment behind another nonce) on a κ = 4 deployment, which
/// the fix's documentation says is covered only for chains of about one
/// speed: with chain j up to `MAX_RATE_RATIO` times as fast the
/// receiver's payment for B still lands before its deadline and is proved
/// (at 4 times, 4 blocks of chain j to spare).
#[test]
fn terms_stored_at_expiry_on_kappa_4_up_to_four_times_apart_leave_the_payment_proved() {
    for (kappa, ratio) in [(4, 2), (4, 4), (16, 4)] {
        let got = stored_at_expiry(MbsSpec { kappa, ..MbsSpec::default() }, ratio);
        eprintln!("kappa {kappa} ratio {ratio}: {got:?}");
        assert!(matches!(got.b_receiver, SideState::Proved { .. }), "{got:?}");
        assert!(got.r_paid_b_at.is_some_and(|h| got.b_valid_until.is_some_and(|u| h <= u)), "{got:?}");
        assert_eq!(got.r_deposit.0, got.r_deposit.1, "{got:?}");
    }
}

// ------------------------------------------------------------------ held

/// Held up: the posted NT decides its side's window (`forward_deadline_for`
/// reads it), so who may post, and how often, matters: the payee cannot
/// post the payer's NT (`NotPayer`), and the payer cannot replace its
/// posted NT by one with another deadline (`AlreadyPosted`); neither
/// refusal changes the BoB contract's state.
#[test]
fn only_the_payer_posts_its_nt_and_only_once() {
    use gridledger_ledger::devnet::transfer_until;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1521));
    m.wait_native_window(&rec).unwrap();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    // R (the payee, who gains x_B from a penalty) posts S's NT for S.
    let by_payee = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    assert_refused(&mut m, &by_payee, XchainError::NotPayer);
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s }, Amount::ZERO)).unwrap();
    // A second NT of S with a tiny deadline (it would close S's side early).
    let (_, _, to, amount) = rec.instruction(Side::Sender);
    let tiny = m
        .external(ci)
        .unwrap()
        .sign(&s, transfer_until(&s, ci, rec.agreed_nonce(Side::Sender), (to, Amount(amount), rec.e_i + 1), Amount(2)));
    let again = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: tiny }, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadyPosted(Side::Sender.name()));
}

// ------------------------------------------------------------------- [3]

/// R14's fix assumes chains up to `MAX_RATE_RATIO` (4) apart in block
/// rate, "the BoB counted among them". But the relay is capped at
/// `relay_per_block(κ, k) = max((κ − k) / 2, 1)` headers per BoB block:
/// 2 on a κ = 4 deployment, 1 with κ − k < 4 (κ = 4 with k = 3, κ = 16
/// with k = 15). An external chain faster than that — 3 blocks per BoB
/// block on κ = 4, k = 0; 2 per BoB block on κ = 16, k = 15 — outruns the
/// BoB's stored tip by one block or more every BoB block, for good. Once
/// it lags `MAX_VIEW_LAG` (2) blocks, every exchange on that chain is
/// refused (`BobLagging` from `check_view`, which `BobMbs::swap` checks
/// before agreeing; its `wait_caught_up` never gets there), with no party misbehaving; nothing refuses the deployment at
/// set-up either.
///
/// Expected: the BoB keeps up with a chain within `MAX_RATE_RATIO` of it
/// (or such a deployment is refused at set-up). Observed: after 60 BoB
/// blocks the stored tip lags 60 blocks and `check_view` refuses the
/// chain (`BobLagging`).
///
/// Fixed: the relay cap is never below `MAX_RATE_RATIO`
/// (`relay_per_block`), and a small-κ chain keeps `kept_headers(κ, k) =
/// max(κ, 2 · cap + k)` headers instead of κ, so every stored header is
/// still final and kept throughout a whole BoB block (R2-1); the stale
/// rules and the refunds count from that window. Also checked at exactly
/// `MAX_RATE_RATIO` times the BoB's rate.
#[test]
fn the_bob_keeps_up_with_a_chain_within_max_rate_ratio() {
    let max = gridledger_xchain::bob::MAX_RATE_RATIO;
    for (kappa, k, ratio) in [(4u32, 0u32, 3u64), (16, 15, 2), (4, 0, max), (4, 3, max), (16, 15, max)] {
        let dir = tempfile::tempdir().unwrap();
        let finality = if k == 0 { Finality::Deterministic } else { Finality::Probabilistic { k } };
        let mut m = setup(dir.path(), MbsSpec { kappa, finality, ..MbsSpec::default() });
        let [ci, cj] = chains2(&m);
        assert!(ratio <= gridledger_xchain::bob::MAX_RATE_RATIO);
        for _ in 0..60 {
            for _ in 1..ratio {
                m.external_mut(ci).unwrap().tick().unwrap();
            }
            m.tick().unwrap();
        }
        let lag = m.external(ci).unwrap().height() - m.bob_tip(ci);
        // The check an honest swap driver makes before agreeing (`swap`
        // waits for it with `wait_caught_up`, which never returns Ok here).
        let view = m.check_view(&[ci, cj]);
        eprintln!("kappa {kappa} k {k} ratio {ratio}: lag {lag}, view {:?}", view.as_ref().err());
        assert!(lag <= gridledger_xchain::BobMbs::MAX_VIEW_LAG, "kappa {kappa} k {k} ratio {ratio}: lag {lag}");
        assert!(view.is_ok(), "kappa {kappa} k {k} ratio {ratio}: {:?}", view.err());
    }
}
