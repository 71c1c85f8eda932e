//! Tenth attack round on the cross-chain protocols (issue 14): the
//! sender's exact nonce with the receiver's wallet registry (attack R8-5)
//! and the bounded forwarding re-sends of sub-situation 2.
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r10 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::second_bob::SecondBob;
use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::SignedTransaction;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::{Side, SideState};

fn proved_by(st: SideState) -> Option<gridledger_core::Hash32> {
    match st {
        SideState::Proved { nt, .. } => Some(nt),
        _ => None,
    }
}

// ------------------------------------------------------------------- [1]

/// The mirror of attack R8-5, still open: one native payment of the
/// *receiver* proves the receiver's side of two CCTs on two BoB
/// deployments that follow the same chains. The honest sender pays `x_i`
/// twice (one NT_s per CCT, each with its terms' exact nonce) and is paid
/// `x_j` once.
///
/// The receiver's side keeps a nonce *floor* (`nonce_j`), and two
/// deployments do not share SC_MPV's used-transfer marks. A receiver that
/// trades with the same sender on two deployments agrees two exchanges of
/// the same size at once, one on each BoB. The sender's driver draws up
/// both terms the way `BobMbs::try_terms` does — the receiver's next
/// nonce `m` on chain j as its floor (it has not paid yet), its own
/// successive nonces `n` and `n + 1` for its two payments — and both pass
/// the sender's `check_floors`; nothing on the sender's side (no registry,
/// unlike the receiver's wallet) refuses the second. The receiver pays
/// one transfer (nonce `m`) and proves it on both BoBs.
///
/// Expected: the receiver is never paid twice for one payment: the second
/// deployment does not count, for its CCT, the receiver's transfer already
/// proved elsewhere (or the sender's side refuses to agree the second set
/// of terms naming the same receiver floor on the same chain).
/// Observed: both CCTs record the receiver's side proved by the same
/// transfer; the sender paid `x_i` on chain i twice.
///
/// Suggested fix: make the receiver's nonce exact as well (`nonce_j`) with
/// a sender-side registry of (receiver, chain, nonce) triples shared by
/// every deployment the sender trades on, as the receiver's wallet does
/// for `nonce_i`.
#[test]
fn one_receiver_payment_does_not_prove_ccts_on_two_deployments() {
    use gridledger_xchain::bob::{keys, CctArgs, CctTerms, ProofTx};
    use gridledger_xchain::wallet::TermsRegistry;
    use gridledger_xchain::CctRecord;
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let mut d2 = SecondBob::open(dir2.path(), &m);
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let bob = m.bob.chain_id();
    d2.fund(&mut m);
    // One receiver wallet for both deployments (it guards nonce_i only).
    let wallet = TermsRegistry::open(wdir.path()).unwrap();
    m.use_wallet(wallet.clone());
    let terms_a = m.try_terms(&request_between(ci, cj, 1_000, 1)).unwrap();
    m.check_floors(&terms_a).unwrap();
    m.bob_ok(&m.wallet_cct_tx(&s, &r, terms_a.clone()).unwrap()).unwrap();
    let rec_a = m.cct(&terms_a.id()).unwrap();
    m.wait_native_window(&rec_a).unwrap();
    // The honest sender pays A with its exact nonce n.
    let nt_s_a = m.native_tx(&rec_a, Side::Sender, &s).unwrap();
    let got_before = m.external(ci).unwrap().account(&r.address()).balance.0;
    m.external_mut(ci).unwrap().submit(&nt_s_a).unwrap();
    // Exchange B on the second deployment, drawn up as `try_terms` does:
    // the sender's next nonce (n + 1), the receiver's floor as its wallet
    // shows it (unchanged: the receiver has not paid A yet).
    let terms_b = CctTerms {
        deployment: d2.config.deployment,
        expires_at: d2.chain.height() + 16,
        ..m.try_terms(&request_between(ci, cj, 1_000, 2)).unwrap()
    };
    // Fixed: the receiver's nonce is exact as well, and the terms builder
    // skips the receiver nonce A holds in the parties' registry; terms B
    // naming it are refused by the registry (the sender's side keeps one
    // too), whatever the deployment.
    assert_eq!((terms_b.nonce_i, terms_b.nonce_j), (terms_a.nonce_i + 1, terms_a.nonce_j + 1));
    let same_j = CctTerms { nonce_j: terms_a.nonce_j, ..terms_b.clone() };
    // The receiver's driver on the second deployment tells the wallet its height.
    wallet.observe(d2.config.deployment, d2.chain.height());
    match wallet.agree(&same_j) {
        Err(gridledger_xchain::wallet::WalletError::NonceAlreadyAgreed { nonce, other, .. }) => {
            assert_eq!((nonce, other), (terms_a.nonce_j, Some(terms_a.id())))
        }
        got => panic!("terms naming the receiver nonce A holds were agreed: {got:?}"),
    }
    // Since attack R14-3 the parties' own checks refuse B outright: it
    // names the receiver's nonce above the one A, of another deployment,
    // holds (`ForeignTermsBelow`). B is stored anyway below, signed by
    // hand, to show one payment still proves one CCT only.
    match m.check_floors(&terms_b) {
        Err(gridledger_xchain::mbs::MbsError::Wallet(gridledger_xchain::wallet::WalletError::ForeignTermsBelow {
            held,
            ..
        })) => assert_eq!(held, terms_a.nonce_j),
        got => panic!("terms above another deployment's entry passed the checks: {got:?}"),
    }
    let sig_b = wallet.sign(&r, &terms_b, bob).expect("the receiver's wallet signs B (another sender nonce)");
    d2.catch_up(&m);
    d2.ok(&s, "cct", &CctArgs { terms: terms_b.clone(), receiver_sig: sig_b }, 0);
    let (id_a, id_b) = (terms_a.id(), terms_b.id());
    let rec_b: CctRecord = d2.record(&keys::cct(&id_b)).unwrap();
    assert_eq!(rec_a.instruction(Side::Receiver), rec_b.instruction(Side::Receiver));
    while m.external(ci).unwrap().height() < rec_b.e_i + 2 || m.external(cj).unwrap().height() < rec_b.e_j + 2 {
        m.tick().unwrap();
    }
    // ... and B with n + 1.
    let nt_s_b = m.native_tx(&rec_b, Side::Sender, &s).unwrap();
    assert_eq!(nt_s_b.tx.nonce, nt_s_a.tx.nonce + 1);
    m.external_mut(ci).unwrap().submit(&nt_s_b).unwrap();
    // The receiver pays once.
    let nt_r = m.native_tx(&rec_a, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt_r).unwrap();
    m.tick().unwrap();
    m.tick().unwrap();
    let pt =
        |m: &BobMbs, side, nt: &SignedTransaction| -> ProofTx { m.proof_for(id_a, side, nt).unwrap().expect("landed") };
    let (pt_s_a, pt_s_b, pt_r) =
        (pt(&m, Side::Sender, &nt_s_a), pt(&m, Side::Sender, &nt_s_b), pt(&m, Side::Receiver, &nt_r));
    m.wait_final(ci, pt_s_b.height).unwrap();
    m.wait_final(cj, pt_r.height).unwrap();
    let got = m.external(ci).unwrap().account(&r.address()).balance.0 - got_before;
    // The first deployment: both sides proved (A complete).
    m.bob_ok(&m.prove_call(&s, &pt_s_a).unwrap()).unwrap();
    m.bob_ok(&m.prove_call(&r, &pt_r).unwrap()).unwrap();
    // The second: the sender proves its own second payment; the receiver,
    // the transfer it already proved on the first.
    d2.catch_up(&m);
    d2.ok(&s, "prove", &ProofTx { cct: id_b, ..pt_s_b.clone() }, 0);
    let second = d2.call(&r, "prove", &ProofTx { cct: id_b, ..pt_r.clone() }, 0);
    let rec_a = m.cct(&id_a).unwrap();
    let rec_b: CctRecord = d2.record(&keys::cct(&id_b)).unwrap();
    assert_eq!(proved_by(rec_a.sender), Some(nt_s_a.hash()));
    assert_eq!(proved_by(rec_b.sender), Some(nt_s_b.hash()));
    assert!(
        !(proved_by(rec_a.receiver) == Some(nt_r.hash()) && proved_by(rec_b.receiver) == Some(nt_r.hash())),
        "one transfer of {} on chain j proved the receiver's side on both deployments (second prove: {:?}, \
         B complete: {}); the receiver got {got} on chain i for the two exchanges (x_i {} + {})",
        rec_a.terms.x_j,
        second.status,
        rec_b.complete,
        rec_a.x_i,
        rec_b.x_i
    );
}

// ------------------------------------------------------------------- [2]

/// One scenario of [2]: the sender's earlier payment (nonce `n`, made
/// before the exchange, so the terms name `nonce_i = n + 1` as its wallet
/// knows it) is held back by a censoring chain i for `delay` epochs; the
/// sender signs NT_s with `n + 1`, posts it to the BoB and goes offline
/// (chain i refuses the copy it sends: a nonce gap while `n` is held).
/// From then on only the BoB node acts, and `resend_every_epoch` plays a
/// BoB node that sends the posted NT to chain i at every epoch, as before
/// the bounded back-off. Returns the CCT at its end, the height `n`
/// landed at, the forwarding deadline and the chain-i heights of the
/// node's sends.
fn censored_predecessor(
    delay: u64,
    resend_every_epoch: bool,
) -> (gridledger_xchain::CctRecord, Option<u64>, u64, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let pre = m.native_transfer(ci, &s, dev_key(4).address(), 5).unwrap();
    m.external_mut(ci).unwrap().censor(pre.clone(), delay);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 41));
    assert_eq!(rec.terms.nonce_i, pre.tx.nonce + 1, "the terms name the nonce after the in-flight payment");
    m.check_floors(&rec.terms).unwrap();
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    assert!(m.external_mut(ci).unwrap().submit(&nt_s).is_err(), "a nonce gap while the earlier payment is held");
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let mut end = m.cct(&id).unwrap();
    let mut sends = Vec::new();
    for _ in 0..200 {
        end = m.cct(&id).unwrap();
        if end.complete {
            break;
        }
        if resend_every_epoch && end.verified && m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().is_none() {
            let _ = m.external_mut(ci).unwrap().submit(&nt_s);
        }
        let before = m.forward_sends(&nt_s.hash()).sent;
        end = settle_within(&mut m, id, 1);
        if m.forward_sends(&nt_s.hash()).sent > before {
            sends.push(m.external(ci).unwrap().height());
        }
    }
    let landed = m.external(ci).unwrap().tx_proof(&pre.hash()).unwrap().map(|(h, _)| h);
    let deadline = end.forward_i;
    (end, landed, deadline, sends)
}

/// The bounded forwarding back-off (commit "forwarding re-sends bounded")
/// lets an honest sender be penalised at the forwarding deadline although
/// one more send of its posted NT would have landed and been proved in
/// time.
///
/// The sender's NT must carry the terms' exact nonce `nonce_i`, which is
/// its wallet's next nonce *with payments in flight* (`try_terms`). Its
/// earlier payment (nonce `n`) is delayed by a censoring chain (issue
/// item 6) past the ln-08 deadline; the sender posts NT_s (nonce `n + 1`)
/// to the BoB, as sub-situation 2 lets it, and relies on the BoB nodes.
/// The node sends NT_s at once after CCT_V and after 1, 2, 4 and 8 epochs
/// (chain-i heights 27, 28, 30, 34 and 42 here, forwarding deadline 43):
/// each send while `n` is held is refused by chain i's mempool (a nonce
/// gap) and counts, and the fifth comes one block before the deadline,
/// too late to land and be proved. The censored payment reaches chain i
/// at height 38 — any height from 35 to 41 does the same — so NT_s is
/// never sent in time again, and the closing CCT_V penalises the sender
/// (`unproved_penalty`, x_B of its deposit to the receiver) though its
/// payment was never withheld. A node that sends at every epoch (the
/// control here, as before the back-off) lands and proves it.
///
/// Expected: a posted NT that becomes executable inside the forwarding
/// window is forwarded and proved; the sender ends `Proved`.
/// Observed: `Penalised`, with the NT refused 5 times and never sent after
/// its predecessor landed.
///
/// Suggested fix: count only sends the chain admitted (a refused one — a
/// nonce gap, a full mempool — is retried at the next epoch), or always
/// send again once the payer's nonce on the chain reaches the NT's; keep
/// the bound for NTs the chain can never take (below-minimum gas price).
#[test]
fn a_posted_nt_that_becomes_executable_inside_the_window_is_forwarded() {
    // The censored payment lands at chain-i height 38, five blocks before
    // the forwarding deadline (43); the node's sends are at 27, 28, 30, 34
    // and 42 (the last one too late to land and be proved by 43).
    let delay = 30;
    let (ctl, ctl_landed, ctl_deadline, _) = censored_predecessor(delay, true);
    assert!(
        matches!(ctl.sender, SideState::Proved { .. }),
        "control: sent every epoch, the NT lands and is proved (predecessor at {ctl_landed:?}, deadline \
         {ctl_deadline}), ended {:?}",
        ctl.sender
    );
    let (end, landed, deadline, sent) = censored_predecessor(delay, false);
    assert!(end.complete);
    assert!(
        matches!(end.sender, SideState::Proved { .. }),
        "the node sent the sender's posted NT at chain-i heights {sent:?}; its predecessor landed at \
         {landed:?}, the forwarding deadline was {deadline}; the sender ended {:?}",
        end.sender
    );
}

// ------------------------------------------------------------------- [3]

/// The receiver's wallet gives a sender nonce back only once the CCT of the
/// terms it signed is *complete*; terms whose CCT was never stored hold the
/// nonce for ever. Here the receiver signs terms A through its wallet, the
/// BoB is slow and A's `cct` lands after `expires_at` (`CctExpired`: SC_T
/// can never store A now, so no proof can ever count for it). The parties
/// try again with fresh terms B: `BobMbs::swap` draws them up with the
/// sender's nonce `n`, still unspent, and the wallet refuses
/// (`NonceAlreadyAgreed`, naming A). Every later exchange of this sender
/// with this receiver on chain i is refused the same way until the sender
/// spends `n` on something else; the same holds after a driver killed
/// between the wallet's signature and the `cct` (`xchain swap
/// --processes`, whose terms' `expires_at` moves with the BoB's height),
/// or a CCT refused for a price that moved.
///
/// Expected: once terms can never be stored (their `expires_at` is past
/// and no CCT record exists), the wallet lets the receiver sign other terms
/// naming the same nonce; the retry completes.
/// Observed: `Wallet(NonceAlreadyAgreed { other: Some(A) })`.
///
/// Suggested fix: `TermsRegistry::release` (or `agree`) also frees a
/// triple whose terms expired without a CCT record on their deployment —
/// the wallet stores `expires_at` and the deployment beside the id, and
/// the driver checks the record before re-signing.
#[test]
fn terms_that_expired_unstored_give_the_sender_nonce_back() {
    use gridledger_xchain::mbs::Behaviour;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let terms_a = m.try_terms(&request_between(ci, cj, 500, 51)).unwrap();
    m.check_floors(&terms_a).unwrap();
    let cct_a = m.wallet_cct_tx(&s, &r, terms_a.clone()).unwrap();
    // The BoB is slow: A's cct lands after its terms expired.
    while m.bob.height() <= terms_a.expires_at {
        m.tick().unwrap();
    }
    let late = m.bob_exec(&cct_a).unwrap();
    let refusal = XchainError::CctExpired { expires_at: terms_a.expires_at, now: m.bob.height() };
    assert_eq!(late.status, gridledger_ledger::TxStatus::Reverted(refusal.as_revert()));
    assert!(m.cct(&terms_a.id()).is_none(), "A is not stored and never can be");
    // The retry: fresh terms with the sender's nonce, which is still unspent.
    let retry = m.swap(&request_between(ci, cj, 500, 52), Behaviour::Honest);
    assert!(
        retry.is_ok(),
        "the retry after terms that expired unstored was refused: {:?} (A's nonce {})",
        retry.err(),
        terms_a.nonce_i
    );
}

// ------------------------------------------------------------------- [5]

/// The sender's exact nonce (attack R8-5) against the same party's payment
/// as a *receiver* in another open exchange on the same chain. Party P is
/// the sender of A (pays on chain i, `nonce_i = n`) and the receiver of C
/// (pays on chain i as well, floor `nonce_j = n`: both terms drawn up
/// before either payment, each honestly). P's driver for C pays first, with
/// `BobMbs::native_tx` — the payer's next nonce, `n` — which is a valid
/// NT_r for C (paid and posted, as the driver does). A's NT_s must carry
/// `n` itself, now spent: chain i refuses it (nonce too low), the BoB
/// takes it at `post_nt`, it can never land, and P's side of A ends
/// penalised (x_B of its deposit to Q) although P paid both exchanges in
/// full and in time. (In a variant where A's driver posts before C's, the
/// first post binds nonce `n` to A — attack R5-4 — and C's valid, landed
/// payment is refused for C as well: `NtPostedForOtherCct`.) With the earlier nonce floor, NT_s with
/// `n + 1` proved A. The operations notes tell a sender with two open
/// exchanges to pay them in the order of their nonces; nothing keeps the
/// receiver-side payment (whose nonce is free above its floor) off a nonce
/// the same party reserved as a sender, and `check_floors` accepts C's
/// floor `n` though A reserves `n`.
///
/// Expected: P, paying both exchanges with the drivers' own NTs, ends
/// `Proved` on both — e.g. the receiver-side NT takes the payer's next
/// nonce not named by one of its open CCTs as `nonce_i`.
/// Observed: A's sender side `Penalised`.
///
/// Fixed: both nonces are exact, the parties' registry holds both triples
/// of every set of terms agreed (here through `open_cct`, which agrees
/// through the wallet as the drivers do) and refuses one nonce of P's in
/// two roles; the terms builder names P's next nonce A does not hold
/// (`n + 1`) for C. P pays its open exchanges on chain i in nonce order:
/// C's payment sent first is refused by the chain (a nonce gap), sent again
/// once A's is in, and both end `Proved`.
#[test]
fn a_receiver_side_payment_does_not_spend_a_nonce_reserved_as_sender() {
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (p, q) = (sender(), receiver());
    // A: P sends on chain i, Q pays on chain j.
    let (id_a, rec_a) = open_cct(&mut m, &request_between(ci, cj, 400, 71));
    // C: Q sends on chain j, P pays on chain i (roles swapped).
    let req_c = SwapRequest { sender: q.clone(), receiver: p.clone(), chain_i: cj, chain_j: ci, x_j: 300, salt: 72 };
    let terms_c = m.try_terms(&req_c).unwrap();
    m.check_floors(&terms_c).unwrap();
    // C naming the nonce A reserves for P is refused by the registry.
    let same = gridledger_xchain::bob::CctTerms { nonce_j: rec_a.terms.nonce_i, ..terms_c.clone() };
    assert!(matches!(
        m.wallet.agree(&same),
        Err(gridledger_xchain::wallet::WalletError::NonceAlreadyAgreed { other: Some(o), .. }) if o == id_a
    ));
    m.bob_ok(&m.wallet_cct_tx(&q, &p, terms_c.clone()).unwrap()).unwrap();
    let id_c = terms_c.id();
    let rec_c = m.cct(&id_c).unwrap();
    assert_eq!(rec_c.terms.nonce_j, rec_a.terms.nonce_i + 1, "C names P's next nonce A does not hold");
    m.wait_native_window(&rec_a).unwrap();
    m.wait_native_window(&rec_c).unwrap();
    // P's driver for C pays (and posts) first: refused by the chain (a
    // nonce gap) until A's payment is in; then P's driver for A.
    let p_for_c = m.native_tx(&rec_c, Side::Receiver, &p).unwrap();
    assert!(m.external_mut(ci).unwrap().submit(&p_for_c).is_err(), "a nonce gap while A's payment is not in");
    let post_c =
        m.bob_call(&p, "post_nt", &PostNt { cct: id_c, side: Side::Receiver, nt: p_for_c.clone() }, Amount::ZERO);
    m.bob_ok(&post_c).unwrap();
    m.tick().unwrap();
    let p_for_a = m.native_tx(&rec_a, Side::Sender, &p).unwrap();
    let sent_a = m.external_mut(ci).unwrap().submit(&p_for_a);
    let post = m.bob_call(&p, "post_nt", &PostNt { cct: id_a, side: Side::Sender, nt: p_for_a.clone() }, Amount::ZERO);
    let posted = m.bob_exec(&post).unwrap().status;
    // In nonce order: C's payment again.
    m.external_mut(ci).unwrap().submit(&p_for_c).unwrap();
    // Q pays A honestly and proves it; P proves C's side.
    receiver_pays_and_proves(&mut m, id_a, &rec_a);
    let pt_c = m.proof_for(id_c, Side::Receiver, &p_for_c).unwrap().expect("landed");
    m.wait_final(ci, pt_c.height).unwrap();
    m.bob_ok(&m.prove_call(&p, &pt_c).unwrap()).unwrap();
    let end_a = settle_within(&mut m, id_a, 300);
    assert!(
        matches!(end_a.sender, SideState::Proved { .. }),
        "P paid A's x_i with nonce {} (chain i: {:?}; post_nt: {:?}) after paying C with nonce {}; \
         A's sender side ended {:?} (complete {})",
        p_for_a.tx.nonce,
        sent_a.map(|_| ()),
        posted,
        p_for_c.tx.nonce,
        end_a.sender,
        end_a.complete
    );
}

// ------------------------------------------------------------ held up

fn wallet_terms(m: &BobMbs, salt: u64) -> gridledger_xchain::bob::CctTerms {
    let [ci, cj] = chains2(m);
    m.try_terms(&request_between(ci, cj, 500, salt)).unwrap()
}

/// Probe (held up): eight threads race to agree eight different sets of
/// terms naming one sender nonce in one registry; exactly one wins, the
/// others are refused naming it, and the entry holds the winner's id.
#[test]
fn racing_agreements_on_one_nonce_leave_exactly_one() {
    use gridledger_xchain::wallet::{TermsRegistry, WalletError};
    let dir = tempfile::tempdir().unwrap();
    let m = setup(dir.path(), MbsSpec::default());
    let wdir = tempfile::tempdir().unwrap();
    let wallet = TermsRegistry::open(wdir.path()).unwrap();
    wallet.observe(m.config.deployment, m.bob.height());
    let all: Vec<_> = (0..8).map(|k| wallet_terms(&m, 100 + k)).collect();
    assert!(all.iter().all(|t| t.nonce_i == all[0].nonce_i && t.sender_i == all[0].sender_i));
    let results: Vec<_> = std::thread::scope(|sc| {
        let hs: Vec<_> = all
            .iter()
            .map(|t| {
                let w = wallet.clone();
                sc.spawn(move || w.agree(t))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(k, _)| k).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let won = all[winners[0]].id();
    for r in &results {
        match r {
            Ok(()) => {}
            Err(WalletError::NonceAlreadyAgreed { other, .. }) => assert_eq!(*other, Some(won)),
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
    // Only the winner's release frees it; the others hold nothing.
    for (k, t) in all.iter().enumerate() {
        assert_eq!(wallet.release(t).unwrap(), k == winners[0]);
    }
    wallet.agree(&all[(winners[0] + 1) % 8]).unwrap();
}

/// Probe (held up): a registry left by a crash — a temporary file written
/// but never linked (killed before the link), or one of another set of
/// terms — blocks nothing; a foreign or torn entry (not a 32-byte id) at a
/// triple refuses that triple (`other: None`) and is never released by
/// terms that do not hold it, and the same terms signed again after a
/// crash are signed again.
#[test]
fn crash_leftovers_in_the_wallet_registry() {
    use gridledger_xchain::wallet::{TermsRegistry, WalletError};
    let dir = tempfile::tempdir().unwrap();
    let m = setup(dir.path(), MbsSpec::default());
    let wdir = tempfile::tempdir().unwrap();
    let wallet = TermsRegistry::open(wdir.path()).unwrap();
    wallet.observe(m.config.deployment, m.bob.height());
    let (a, b) = (wallet_terms(&m, 200), wallet_terms(&m, 201));
    // Killed after writing A's temporary file, before the link.
    std::fs::write(wdir.path().join(format!(".tmp-{}", a.id().to_hex())), [1u8; 5]).unwrap();
    let r = receiver();
    let bob = m.bob.chain_id();
    let sig = wallet.sign(&r, &a, bob).unwrap();
    assert_eq!(sig, wallet.sign(&r, &a, bob).unwrap(), "a restarted driver signs the same terms again");
    match wallet.agree(&b) {
        Err(WalletError::NonceAlreadyAgreed { other, .. }) => assert_eq!(other, Some(a.id())),
        got => panic!("{got:?}"),
    }
    // A torn entry: refused, never released by other terms.
    assert!(wallet.release(&a).unwrap());
    let entry = std::fs::read_dir(wdir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with(".tmp-"));
    assert!(entry.is_none(), "released: no entry left");
    wallet.agree(&a).unwrap();
    let entry = std::fs::read_dir(wdir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.file_name().unwrap().to_string_lossy().starts_with(".tmp-"))
        .unwrap();
    std::fs::write(&entry, &a.id().0[..7]).unwrap();
    assert!(matches!(wallet.agree(&b), Err(WalletError::NonceAlreadyAgreed { other: None, .. })));
    assert!(matches!(wallet.agree(&a), Err(WalletError::NonceAlreadyAgreed { other: None, .. })));
    assert!(!wallet.release(&b).unwrap());
    assert!(!wallet.release(&a).unwrap());
}

// ------------------------------------------------------------------- [4]

/// Two drivers of one receiver that sign the *same* terms at once (a
/// driver restarted while the old one still runs, or `xchain swap` started
/// twice) share one temporary file name, `.tmp-<id>`: one removes the
/// temporary file before the other links it, and that signature is refused
/// with an I/O error (`No such file or directory` on the entry's link),
/// although signing the same terms again is allowed by design. Observed:
/// about 500 of 800 racing signatures (4 threads, 200 rounds) refused; the
/// entry left always held the id. (One driver also truncates, through
/// `File::create`, the very file the other has just linked into place: a
/// crash in that instant would leave an empty entry that refuses the
/// triple for ever and that no `release` removes — not reproduced here.)
///
/// Expected: every one of the racing signatures of the same terms succeeds.
/// Suggested fix: a temporary name unique per call (process id and a
/// counter, or `tempfile::NamedTempFile::new_in`).
#[test]
fn racing_signatures_of_the_same_terms_all_succeed() {
    use gridledger_xchain::wallet::TermsRegistry;
    let dir = tempfile::tempdir().unwrap();
    let m = setup(dir.path(), MbsSpec::default());
    let terms = wallet_terms(&m, 300);
    let mut failures = Vec::new();
    for round in 0..200 {
        let wdir = tempfile::tempdir().unwrap();
        let wallet = TermsRegistry::open(wdir.path()).unwrap();
        wallet.observe(m.config.deployment, m.bob.height());
        let results: Vec<_> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let (w, t) = (wallet.clone(), &terms);
                    sc.spawn(move || w.agree(t))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            if let Err(e) = r {
                failures.push(format!("round {round}: {e}"));
            }
        }
        // Whatever the refusals, the entry left holds the terms' id.
        assert!(wallet.release(&terms).unwrap(), "round {round}: the entry does not hold the terms' id");
    }
    assert!(
        failures.is_empty(),
        "{} of 800 racing signatures of the same terms refused, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
}

/// Probe (held up; revised for attack R11-3): a sender nonce left unspent
/// by a CCT that completed with the sender's side withheld is never given
/// back unspent. A completes on the first deployment (the sender never
/// paid: penalised); the wallet keeps `n` reserved, the sender's driver
/// spends it with a void, and only then is it given back — so terms on
/// the second deployment naming `n` again are refused (`StaleFloor`), and
/// no transfer with `n` is left to prove anything. (Before R11-3 the
/// wallet released `n` unspent, B named it again and one transfer with
/// `n` proved B, refused for A as `AlreadyComplete`.)
#[test]
fn a_released_nonce_pays_one_set_of_terms_only() {
    use gridledger_xchain::bob::CctTerms;
    use gridledger_xchain::mbs::MbsError;
    use gridledger_xchain::wallet::TermsRegistry;
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let mut d2 = SecondBob::open(dir2.path(), &m);
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    d2.fund(&mut m);
    let wallet = TermsRegistry::open(wdir.path()).unwrap();
    m.use_wallet(wallet.clone());
    let terms_a = m.try_terms(&request_between(ci, cj, 1_000, 61)).unwrap();
    m.bob_ok(&m.wallet_cct_tx(&s, &r, terms_a.clone()).unwrap()).unwrap();
    let id_a = terms_a.id();
    let rec_a = m.cct(&id_a).unwrap();
    m.wait_native_window(&rec_a).unwrap();
    receiver_pays_and_proves(&mut m, id_a, &rec_a);
    let end_a = settle_within(&mut m, id_a, 200);
    assert!(end_a.complete && end_a.sender == SideState::Penalised);
    let n = terms_a.nonce_i;
    let spent = |m: &BobMbs| m.external(ci).unwrap().account(&s.address()).nonce > n;
    let held = wallet.entry(ci, &s.address(), n).unwrap().map(|e| e.id);
    assert!(held == Some(id_a) || spent(&m), "n given back unspent");
    m.ticks(2).unwrap();
    assert!(spent(&m), "the sender's driver voided n");
    assert!(wallet.entry(ci, &s.address(), n).unwrap().is_none(), "spent: given back");
    // B on the second deployment naming `n` again is refused.
    let terms_b = CctTerms {
        deployment: d2.config.deployment,
        expires_at: d2.chain.height() + 16,
        nonce_i: n,
        ..m.try_terms(&request_between(ci, cj, 1_000, 62)).unwrap()
    };
    match m.check_floors(&terms_b) {
        Err(MbsError::StaleFloor { chain, floor, .. }) => assert_eq!((chain, floor), (ci, n)),
        got => panic!("terms naming the voided nonce {n}: {got:?}"),
    }
    assert_eq!(m.cct(&id_a).unwrap().sender, SideState::Penalised);
}
