//! Twelfth attack round on the cross-chain protocols (issue 14): the
//! wallet's release rule, voids of closed CCTs' nonces, gap filling and
//! the terms' expiry bound (attack R11's fixes).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r12 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::SignedTransaction;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, SideState};

// ------------------------------------------------------------------- [1]

/// Attack R10-2's scenario with a longer delay: the sender's earlier
/// payment (nonce `n`) is held back by a censoring chain i for `delay`
/// epochs, the sender posts NT_s (nonce `n + 1`) and relies on the BoB
/// nodes. Returns the CCT at its end (and 30 epochs later), whether NT_s
/// landed on chain i, and the sender's deposit before and after.
fn late_predecessor(delay: u64) -> (gridledger_xchain::CctRecord, Option<u64>, Option<u64>, u128, u128) {
    late_predecessor_in(MbsSpec::default(), delay)
}

fn late_predecessor_in(
    spec: MbsSpec,
    delay: u64,
) -> (gridledger_xchain::CctRecord, Option<u64>, Option<u64>, u128, u128) {
    let (end, landed, pre_at, before, after, _) = late_predecessor_nt(spec, delay);
    (end, landed, pre_at, before, after)
}

/// [`late_predecessor_in`], with NT_s as well.
#[allow(clippy::type_complexity)]
fn late_predecessor_nt(
    spec: MbsSpec,
    delay: u64,
) -> (gridledger_xchain::CctRecord, Option<u64>, Option<u64>, u128, u128, SignedTransaction) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let s = sender();
    let pre = m.native_transfer(ci, &s, dev_key(4).address(), 5).unwrap();
    m.external_mut(ci).unwrap().censor(pre.clone(), delay);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 41));
    assert_eq!(rec.terms.nonce_i, pre.tx.nonce + 1);
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    assert!(m.external_mut(ci).unwrap().submit(&nt_s).is_err(), "a nonce gap while the earlier payment is held");
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let end = settle_within(&mut m, id, 300);
    assert!(end.complete, "settled");
    // Whatever is still in flight lands now.
    m.ticks(30).unwrap();
    let after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    let pre_at = m.external(ci).unwrap().tx_proof(&pre.hash()).unwrap().map(|(h, _)| h);
    (end, landed, pre_at, before, after, nt_s)
}

/// A posted payment that lands at, or just after, its forwarding
/// deadline is taken from its payer twice: on its chain (it lands) and
/// from its deposit (the closing CCT_V penalises the side as withheld).
///
/// Attack R10-2's scenario (the sender's earlier payment, nonce `n`, held
/// back by a censoring chain i — issue item 6 — so the terms name `n + 1`
/// and NT_s waits behind it; the sender posts NT_s and relies on the BoB
/// nodes) with the earlier payment landing a little later. The BoB node
/// sends NT_s "at once when it became executable" (R10-2's fix) even when
/// that is too late for it to be proved, and the void the wallet duties
/// send for the closed CCT's unspent nonce (R11-3's fix) is refused: NT_s
/// already holds that nonce in chain i's mempool. With the forwarding
/// deadline at chain-i height 43:
/// - delay 34: the earlier payment lands at 42, NT_s at 43 — inside the
///   window — but its `prove` and the closing CCT_V go into the same BoB
///   block, the CCT_V first (the relayer's lower nonce): `Penalised`;
/// - delays 35, 36: NT_s is forwarded in the epoch of the closing CCT_V
///   (or the one before its block) and lands at 44, 45;
/// - delays 37 and up hold: the void gets the nonce first;
/// - on probabilistic chains (k = 3, forwarding deadline 49) NT_s landing
///   at any of 46..=49 — inside the window, but too late to be final at
///   the BoB before it closes — is penalised as well (delay 31: at 46).
///
/// Each time the sender paid x_i to the receiver on chain i *and* x_B of
/// its deposit (400 of 1,000,000 here).
///
/// Expected: the sender pays for the exchange once (atomicity, Theorem
/// 5.2): an NT that lands inside the window is proved before the window is
/// closed, and one that can no longer be proved is not sent (so the void
/// takes its nonce), or a landed NT is not penalised.
/// Observed: delays 34, 35 and 36 (and k = 3, delay 31) each end
/// `Penalised` with NT_s on chain i.
#[test]
fn a_payment_landing_at_the_forwarding_deadline_is_not_also_penalised() {
    let mut twice = Vec::new();
    for delay in 34..=36 {
        let (end, landed, pre_at, before, after) = late_predecessor(delay);
        eprintln!(
            "delay {delay}: earlier payment at {pre_at:?}, NT_s at {landed:?}, forward_i {}, sender {:?}, \
             deposit {before} -> {after}",
            end.forward_i, end.sender
        );
        if end.sender == SideState::Penalised && landed.is_some() {
            twice.push((delay, landed, end.forward_i, before - after));
        }
    }
    // With probabilistic chains (k = 3) the window's last k + 1 blocks are
    // lost the same way: NT_s lands at 46, three blocks before the
    // forwarding deadline 49, and cannot be proved before it closes.
    let spec = MbsSpec { finality: gridledger_xchain::Finality::Probabilistic { k: 3 }, ..MbsSpec::default() };
    let (end, landed, pre_at, before, after) = late_predecessor_in(spec, 31);
    eprintln!(
        "k 3, delay 31: earlier payment at {pre_at:?}, NT_s at {landed:?}, forward_i {}, sender {:?}",
        end.forward_i, end.sender
    );
    if end.sender == SideState::Penalised && landed.is_some() {
        twice.push((31, landed, end.forward_i, before - after));
    }
    assert!(twice.is_empty(), "paid on chain i and penalised (delay, NT_s height, forward_i, x_B taken): {twice:?}");
}

/// Held up: once the earlier payment lands after the CCT closed, the
/// sender's void takes the nonce first and NT_s never lands (R11-3's
/// rule); and one landing well inside the window is proved.
#[test]
fn a_late_enough_or_early_enough_predecessor_costs_the_sender_once() {
    for delay in [31, 38] {
        let (end, landed, _, before, after) = late_predecessor(delay);
        let penalised = end.sender == SideState::Penalised;
        assert!(penalised != landed.is_some(), "delay {delay}: penalised {penalised}, NT_s {landed:?}");
        assert_eq!(penalised, before != after, "delay {delay}");
    }
}

// ------------------------------------------------------------------- [2]

/// Attack R11-2's scenario on a deployment keeping `kappa` headers: Mallory
/// has the receiver R sign terms A and never submits them; an honest sender
/// S agrees B with R while A is open (B names R's nonce after A's), both
/// pay and post, S proves. Returns A's `expires_at`, B's deadlines and B's
/// record at its end, and R's deposit before and after.
fn withheld_terms_gap(kappa: u32) -> (u64, gridledger_xchain::CctRecord, u128, u128) {
    withheld_terms_gap_on(kappa, None)
}

/// [`withheld_terms_gap`] with A's terms drawn up for another deployment
/// `foreign` (one R's wallet saw the BoB height of) when given.
fn withheld_terms_gap_on(
    kappa: u32,
    foreign: Option<gridledger_core::Hash32>,
) -> (u64, gridledger_xchain::CctRecord, u128, u128) {
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa, ..MbsSpec::default() });
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_a = SwapRequest { sender: mallory, ..request_between(ci, cj, 500, 1201) };
    let mut terms_a = m.try_terms(&req_a).unwrap();
    m.check_floors(&terms_a).unwrap();
    if let Some(d) = foreign {
        // R's driver on that deployment told its wallet the BoB's height
        // there (it is as high as this one's).
        m.wallet.observe(d, m.bob.height());
        terms_a.deployment = d;
    }
    let _sig = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let req_b = request_between(ci, cj, 500, 1202);
    if let Some(d) = foreign {
        // Attack R13-2/3/5's fix: terms here are not named above a nonce
        // another deployment's terms hold (this driver cannot tell when
        // that deployment stores or expires them): B is refused until
        // that deployment's driver gives A back (its BoB passed A's
        // `expires_at` without a record of A); B then names that nonce.
        use gridledger_xchain::mbs::MbsError;
        use gridledger_xchain::wallet::WalletError;
        for _ in 0..2 * (terms_a.expires_at - m.bob.height()) {
            match m.try_terms(&req_b) {
                Err(MbsError::Wallet(WalletError::ForeignTermsBelow { held, deployment, .. })) => {
                    assert_eq!((held, deployment), (terms_a.nonce_j, d));
                }
                got => panic!("B named R's nonce above A's: {got:?}"),
            }
            m.tick().unwrap();
        }
        assert_eq!(m.wallet.release_unstored(d, terms_a.expires_at, |_| false).unwrap(), 2);
    }
    let (id, rec) = open_cct(&mut m, &req_b);
    let after_a = if foreign.is_some() { 0 } else { 1 };
    assert_eq!(rec.terms.nonce_j, terms_a.nonce_j + after_a, "B names the nonce after A's (or A's, given back)");
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    m.wait_native_window(&rec).unwrap();
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).unwrap();
        let _ = m.external_mut(rec.instruction(side).0).unwrap().submit(&nt);
        m.bob_ok(&m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt }, Amount::ZERO)).unwrap();
    }
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let pt = loop {
        if let Some(pt) = m.proof_for(id, Side::Sender, &nt_s).unwrap() {
            break pt;
        }
        m.tick().unwrap();
    };
    m.wait_final(ci, pt.height).unwrap();
    m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    // Every epoch runs R's wallet duties (release, void fill) as its driver
    // does; the BoB nodes forward R's posted NT.
    let end = settle_within(&mut m, id, 400);
    let after = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    (terms_a.expires_at, end, before, after)
}

/// `MAX_TERMS_AHEAD` (16 BoB blocks) is one constant for every deployment,
/// while the later exchange's window it must fit in is κ̄ + κ_j to the
/// deadline and as many again for forwarding — 2 · (2 + κ_j). The
/// decision (bob.rs, docs/operations.md) checks it only for the default
/// deployment (κ = 16: 36 > 16); `xchain up --kappa` takes any κ from 2,
/// and the CCDI deployments of this crate's own tests use κ = 4 (12 < 16).
/// There Mallory's withheld terms still hold R's nonce when B's
/// forwarding deadline passes: the void that fills it comes too late, R's
/// posted NT for B cannot land in time, and R — who paid B in full and in
/// time — is penalised x_B of its deposit (to S, who may be Mallory's
/// accomplice): attack R11-2 again.
///
/// Expected: R's side of B ends `Proved` on any deployment the CLI lets
/// one run (the bound on the terms' expiry follows the deployment's
/// windows, or the spec refuses a κ whose window is shorter than it).
/// Observed: with κ = 4, B's receiver side `Penalised`.
#[test]
fn withheld_terms_do_not_penalise_the_next_exchange_on_a_small_kappa_deployment() {
    let (a_expires, end, before, after) = withheld_terms_gap(4);
    eprintln!(
        "κ 4: A expires at BoB {a_expires}; B e_j {} deadline_j {} forward_j {}; receiver {:?}; R's deposit {before} -> {after}",
        end.e_j, end.deadline_j, end.forward_j, end.receiver
    );
    assert!(end.complete);
    assert!(matches!(end.receiver, SideState::Proved { .. }), "R paid B in full and in time: {:?}", end.receiver);
    assert_eq!(after, before);
}

/// Held up: on the default deployment (κ = 16) the fill lands in time.
#[test]
fn withheld_terms_do_not_penalise_the_next_exchange_on_the_default_deployment() {
    let (_, end, before, after) = withheld_terms_gap(16);
    assert!(matches!(end.receiver, SideState::Proved { .. }), "{:?}", end.receiver);
    assert_eq!(after, before);
}

// ------------------------------------------------------------------- [4]

/// Attack R11-3's set-up: R could not pay B (`Behaviour::Underfund`: its
/// account on chain j emptied while agreeing), its NT for B is posted on
/// the BoB for anyone to read, and B closed with R penalised. Returns the
/// deployment, R's NT for B and its nonce.
fn penalised_with_posted_nt(dir: &std::path::Path) -> (gridledger_xchain::BobMbs, SignedTransaction, u64) {
    use gridledger_xchain::mbs::Behaviour;
    let mut m = setup(dir, MbsSpec::default());
    let [ci, cj] = chains2(&m);
    m.wait_caught_up(&[ci, cj]).unwrap();
    let b = m.swap(&request_between(ci, cj, 500, 1401), Behaviour::Underfund(Side::Receiver)).unwrap();
    assert_eq!(b.record.receiver, SideState::Penalised, "R could not pay B");
    let nt: SignedTransaction = posted_nt_in_history(&m, &b.cct, Side::Receiver).expect("R posted its NT for B");
    assert_eq!(nt.tx.nonce, b.record.terms.nonce_j);
    let n = nt.tx.nonce;
    (m, nt, n)
}

/// The void that keeps a penalised party's posted NT from landing (R11-3)
/// is a transaction in a mempool like any other: it protects the party
/// only if it gets there before the payee's copy of the old NT, and the
/// payee may send that copy as soon as the party's account can pay it.
/// Here R's driver is killed (`kill -9`) during `xchain resume`'s
/// `settle_wallet`, after R was paid on chain j and its void sent: an
/// embedded deployment's mempools die with the driver. When the
/// deployment is opened again, S — the payee, who reads R's NT for B from
/// the BoB — sends it before the resumed driver's first wallet duty; the
/// chain takes it (R's account can pay it now), `settle_wallet` sees the
/// nonce taken and sends no void, and the NT lands: R paid B twice (x_B of
/// its deposit, and x_j on chain j). The same happens without a kill
/// whenever the payee's copy reaches chain j's mempool first after the
/// block that funds R (see the next test): the driver sends the void only
/// once R's account can pay a fee, and by then it can pay the NT too.
///
/// Expected: R pays for B once (the penalty): once penalised, R's unspent
/// nonce cannot be spent by its old NT (e.g. voided before R's account can
/// pay the NT — the void needs only its fee — or the penalty not final
/// while a posted NT may still land).
/// Observed (before the fix): R's NT for B lands after the restart and S
/// is paid x_j again.
/// Fixed: R's NT carries a deadline (`TxKind::TransferUntil`,
/// `BobConfig::nt_valid_until`); balance evidence against it counts only
/// from that deadline on, so R is penalised only once the NT can no
/// longer land, and S's copy is refused (`SubmitError::Expired`).
#[test]
fn a_penalised_partys_old_nt_does_not_land_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, nt, n) = penalised_with_posted_nt(dir.path());
    let [_, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let spec = m.spec.clone();
    // R is paid on chain j; the wallet duties of that epoch send its void.
    let fund = m.native_transfer(cj, &provider(), r.address(), 100_000).unwrap();
    m.external_mut(cj).unwrap().submit(&fund).unwrap();
    m.tick().unwrap();
    let voided = m.external(cj).unwrap().next_nonce(&r.address()) > n;
    // kill -9: the process and the embedded chains' mempools are gone.
    drop(m);
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
    let s_before = m.external(cj).unwrap().account(&s.address()).balance;
    let replay = m.external_mut(cj).unwrap().submit(&nt);
    // `xchain resume`'s last step.
    m.settle_wallet(4).unwrap();
    m.ticks(2).unwrap();
    let landed = m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().map(|(h, _)| h);
    let s_after = m.external(cj).unwrap().account(&s.address()).balance;
    eprintln!(
        "void in the mempool before the kill: {voided}; S's replay after the restart: {replay:?}; \
         landed {landed:?}; S on chain j {s_before:?} -> {s_after:?}"
    );
    assert!(landed.is_none(), "R's NT for B, already penalised, paid S a second time");
    assert_eq!(s_after, s_before);
}

/// [4]'s fix: an NT carries a deadline (`TxKind::TransferUntil`), the
/// last height of its chain at which its landing can still be proved
/// before the closing CCT_V (`BobConfig::nt_valid_until`, the rule of the
/// BoB nodes' forwarding cut-off). One landing at exactly that height —
/// NT_s held behind its payer's censored earlier payment until then — is
/// proved, and its payer pays once (no penalty).
#[test]
fn an_nt_landing_at_exactly_its_deadline_is_proved_and_not_penalised() {
    let mut at_deadline = Vec::new();
    // The deadline is `deadline_i + MAX_RATE_RATIO · (κ̄ + κ)` (attack
    // R14-1): chain-i height 97 here.
    for delay in 84..=93 {
        let (end, landed, _, before, after, nt_s) = late_predecessor_nt(MbsSpec::default(), delay);
        let Some(valid_until) = nt_s.tx.kind.valid_until() else {
            panic!("NT_s carries no deadline: {:?}", nt_s.tx.kind)
        };
        eprintln!("delay {delay}: NT_s valid until {valid_until}, landed {landed:?}, sender {:?}", end.sender);
        assert!(landed.is_none_or(|h| h <= valid_until), "NT_s landed past its deadline");
        if landed == Some(valid_until) {
            assert!(
                matches!(end.sender, SideState::Proved { nt, height } if nt == nt_s.hash() && height == valid_until),
                "delay {delay}: {:?}",
                end.sender
            );
            assert_eq!(after, before, "delay {delay}: the sender's deposit");
            at_deadline.push(delay);
        }
    }
    assert!(!at_deadline.is_empty(), "no delay of 84..=93 made NT_s land at its deadline");
}

/// The deadline NT is checked by `post_nt` (and SC_MPV, which shares the
/// check) like a plain transfer: the chain, payer, payee and amount of the
/// side's instruction; a mismatch of any is refused and changes nothing.
/// Its deadline is the one `BobConfig::nt_valid_until` gives.
#[test]
fn a_deadline_nt_is_checked_against_the_instruction_like_a_plain_transfer() {
    use gridledger_core::Address;
    use gridledger_ledger::devnet::transfer_until;
    use gridledger_ledger::TxKind;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1402));
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let valid_until = m.config.nt_valid_until(&rec, Side::Sender).unwrap();
    let kb = m.config.kappa_bar;
    let kappa = m.config.chains.iter().find(|c| c.chain_id == ci).unwrap().kappa as u64;
    // Attack R14-1: the deadline covers the first CCT_V on chains up to
    // `MAX_RATE_RATIO` times apart (both chains have this κ here).
    let ratio = gridledger_xchain::bob::MAX_RATE_RATIO;
    assert_eq!(valid_until, rec.deadline_i + ratio * (kb + kappa), "deterministic chains: k = 0");
    let TxKind::TransferUntil { to, amount, valid_until: v } = nt.tx.kind.clone() else {
        panic!("NT_s is not a deadline transfer: {:?}", nt.tx.kind)
    };
    assert_eq!(v, valid_until);
    let n = rec.terms.nonce_i;
    let c = m.external(ci).unwrap();
    let wrong = [
        c.sign(&s, transfer_until(&s, ci, n, (to, Amount(amount.0 + 1), v), Amount(1))),
        c.sign(&s, transfer_until(&s, ci, n, (Address([7; 20]), amount, v), Amount(1))),
    ];
    let other_chain = m.external(cj).unwrap().sign(&s, transfer_until(&s, cj, n, (to, amount, v), Amount(1)));
    for bad in wrong.iter().chain([&other_chain]) {
        let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: bad.clone() }, Amount::ZERO);
        let before = m.bob_contract_state();
        let r = bob_only(&mut m, &post);
        let gridledger_ledger::TxStatus::Reverted(why) = &r.status else { panic!("a mismatching NT was posted") };
        let expect = XchainError::InstructionMismatch(String::new()).as_revert();
        assert!(why.starts_with(expect.trim_end_matches([':', ' '])), "{why}");
        assert_eq!(m.bob_contract_state(), before);
    }
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &post).status, gridledger_ledger::TxStatus::Success);
}

/// [4]'s fix, sub-situation 3: balance evidence against an underfunded
/// deadline NT from after the ln-08 deadline but before the NT's own
/// deadline is refused (`EvidenceBeforeNtDeadline`, nothing changes) — the
/// payer may still be funded and the NT land — and an honest BoB node
/// builds none; the side is penalised once the NT can no longer land, and
/// it never lands.
#[test]
fn balance_evidence_before_the_nts_deadline_is_refused() {
    use gridledger_ledger::state::{account_key, StateRead};
    use gridledger_xchain::bob::{CctV, Fraud, FraudEvidence};
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    // The sender empties its account on chain i, then agrees.
    let bal = m.external(ci).unwrap().account(&s.address()).balance.0;
    let drain = m.native_transfer(ci, &s, dev_key(4).address(), bal - 21_000).unwrap();
    m.external_mut(ci).unwrap().submit(&drain).unwrap();
    m.tick().unwrap();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1403));
    m.wait_native_window(&rec).unwrap();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let valid_until = nt_s.tx.kind.valid_until().expect("a deadline NT");
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO))
        .unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    while m.bob_tip(ci) < rec.deadline_i || m.bob_tip(cj) < rec.deadline_j {
        m.tick().unwrap();
    }
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
    // The sender's account at a header after the ln-08 deadline, before NT_s's own.
    let key = account_key(&s.address());
    let (height, proof) = m.external(ci).unwrap().state_proof(&key);
    assert!(height >= rec.deadline_i && height < valid_until, "{height} in {}..{valid_until}", rec.deadline_i);
    let raw = m.external(ci).unwrap().chain().state().get(&key).unwrap();
    let account: gridledger_ledger::Account = borsh::from_slice(&raw).unwrap();
    assert!(account.balance < nt_s.tx.max_cost().unwrap(), "NT_s cannot be paid now");
    assert!(m.fraud_evidence(id, &m.cct(&id).unwrap(), Side::Sender, &nt_s).unwrap().is_none(), "an honest node waits");
    m.wait_final(ci, height).unwrap();
    let f = Fraud {
        cct: id,
        side: Side::Sender,
        height,
        evidence: FraudEvidence::Balance { account: Some(account), proof },
    };
    let tx = m.bob_call(&relayer, "fraud", &f, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::EvidenceBeforeNtDeadline { chain: ci, height, valid_until });
    assert_eq!(m.cct(&id).unwrap().sender, SideState::Pending);
    // Penalised once NT_s can no longer land; it never does.
    let end = settle_within(&mut m, id, 200);
    assert!(end.complete);
    assert_eq!(end.sender, SideState::Penalised);
    assert!(m.external(ci).unwrap().height() > valid_until);
    assert!(m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().is_none());
}

/// [4] without a kill: the payee's copy of the old NT reaches chain j's
/// mempool in the block after the one that pays R, before R's driver runs
/// its wallet duties (a faster link, or a driver one block late).
#[test]
fn a_penalised_partys_old_nt_does_not_win_the_race_with_its_void() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, nt, n) = penalised_with_posted_nt(dir.path());
    let [_, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let fund = m.native_transfer(cj, &provider(), r.address(), 100_000).unwrap();
    m.external_mut(cj).unwrap().submit(&fund).unwrap();
    // Chain j's block with R's funding; S sees it first.
    m.external_mut(cj).unwrap().tick().unwrap();
    let s_before = m.external(cj).unwrap().account(&s.address()).balance;
    let replay = m.external_mut(cj).unwrap().submit(&nt);
    m.ticks(3).unwrap();
    let landed = m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().map(|(h, _)| h);
    let s_after = m.external(cj).unwrap().account(&s.address()).balance;
    eprintln!("nonce {n}; S's copy: {replay:?}; landed {landed:?}; S on chain j {s_before:?} -> {s_after:?}");
    assert!(landed.is_none(), "R's NT for B, already penalised, paid S a second time");
    assert_eq!(s_after, s_before);
}

// ------------------------------------------------------------------- [5]

/// Finding R11-2 across deployments: Mallory's withheld terms are of
/// *another* BoB deployment D2 (one that follows the same chain j; R points
/// both at one wallet, as the docs ask). The wallet duties of this
/// deployment release and fill only its own entries
/// (`release_unstored_terms` and `void_nonces` stop at an entry of another
/// deployment), and nothing here can tell that D2's terms expired: R's
/// nonce stays held for as long as R runs no driver on D2 — R does not
/// trade there; it signed one set of terms once. Every exchange R agrees
/// here on chain j names the nonce after the held one, its NT is refused
/// as a nonce gap, and R — paying in full and in time — is penalised x_B
/// each time.
///
/// Expected: R's side of B ends `Proved` (a nonce held by another
/// deployment's never-stored terms comes back once their `expires_at` can
/// no longer be met, or terms are not named above a nonce this driver
/// cannot release or fill).
/// Observed: B's receiver side `Penalised`.
///
/// Since attack R13-2/3/5: B is refused while A holds R's nonce and
/// agreed once A's own deployment gave it back.
#[test]
fn withheld_terms_of_another_deployment_do_not_penalise_exchanges_here() {
    let (a_expires, end, before, after) = withheld_terms_gap_on(16, Some(gridledger_core::Hash32([0xd2; 32])));
    eprintln!(
        "A (other deployment) expires at {a_expires}; B e_j {} deadline_j {} forward_j {}; receiver {:?}; \
         R's deposit {before} -> {after}",
        end.e_j, end.deadline_j, end.forward_j, end.receiver
    );
    assert!(end.complete);
    assert!(matches!(end.receiver, SideState::Proved { .. }), "R paid B in full and in time: {:?}", end.receiver);
    assert_eq!(after, before);
}

// ------------------------------------------------------------------- [6]

/// The sender's driver (`BobMbs::swap`, and `xchain swap --processes`)
/// gives both parties' triples back as soon as SC_T *refuses* the CCT
/// (a reverted receipt), "since the driver is the sender and never sends
/// it again". The receiver's wallet thus trusts the sender — yet the
/// module's own rule says "a refused one may be sent again, signed terms
/// and all, until `expires_at`", and the reverted transaction, with the
/// terms and the receiver's signature, is public in the BoB's block.
/// Mallory, as sender, lets her first `cct` fail (no deposit yet:
/// `InsufficientDeposit`); the receiver R's triple (chain j, R, n) is given
/// back; an honest S agrees B with R, which names n again; Mallory
/// deposits and sends A's `cct` again, within `expires_at`, and SC_T
/// stores it. Two stored CCTs now name R's one nonce n: R's one payment
/// can pay only one of them and R is penalised on the other (R10-1/R11-1
/// again).
///
/// Expected: terms whose CCT may still be stored keep their triples until
/// `expires_at` passed without a record (`release_unstored`), refused or
/// not — or SC_T refuses a second CCT naming a stored one's payer nonce.
/// Observed: A stored after B, both naming R's nonce n on chain j.
#[test]
fn a_refused_cct_sent_again_does_not_share_the_receivers_nonce() {
    use gridledger_ledger::TxKind;
    use gridledger_xchain::bob::CctArgs;
    use gridledger_xchain::mbs::{Behaviour, MbsError, SwapRequest};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let mallory = dev_key(2);
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_a = SwapRequest { sender: mallory.clone(), ..request_between(ci, cj, 500, 1601) };
    let got = m.swap(&req_a, Behaviour::Honest);
    assert!(matches!(got, Err(MbsError::Refused { .. })), "Mallory's first CCT is refused: {got:?}");
    // The reverted CCT transaction is in the BoB's last block for anyone.
    let block = m.bob.chain().block(m.bob.height()).unwrap().expect("the BoB's last block");
    let args: CctArgs = block
        .txs
        .iter()
        .find_map(|t| match &t.tx.kind {
            TxKind::Call { method, args, .. } if method == "cct" => borsh::from_slice(args).ok(),
            _ => None,
        })
        .expect("A's reverted cct in the block");
    let n = args.terms.nonce_j;
    let held = m.wallet.entry(cj, &receiver().address(), n).unwrap();
    // An honest sender agrees B with R.
    let (_, rec_b) = open_cct(&mut m, &request_between(ci, cj, 500, 1602));
    // Mallory deposits and sends A again, before `expires_at`.
    m.deposit_token_b(&mallory, DEPOSIT).unwrap();
    assert!(m.bob.height() < args.terms.expires_at);
    let again = m.bob_call(&mallory, "cct", &args, Amount::ZERO);
    let stored_a = m.bob_ok(&again).is_ok() && m.cct(&args.terms.id()).is_some();
    eprintln!(
        "R's entry for A's nonce {n} after the refusal: {held:?}; B names {}; A stored on the second send: {stored_a}",
        rec_b.terms.nonce_j
    );
    assert!(
        !(stored_a && rec_b.terms.nonce_j == n),
        "two stored CCTs name R's nonce {n} on chain j: A (sent again) and B"
    );
}
