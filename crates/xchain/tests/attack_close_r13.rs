//! Thirteenth attack round on the cross-chain protocols (issue 14): the
//! closing CCT_V against a payment the BoB node may still forward
//! (`still_provable`, attack R12-1's fix) and one the payee forwards
//! itself, refused CCTs and terms stored at their expiry (R12-6), the
//! per-deployment bound on the
//! terms' expiry (R12-2's fix) and the epoch rule for another
//! deployment's terms (R12-5's fix).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r13 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::bob::{CctV, PostNt, Relay};
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Finality, Side, SideState};

// ------------------------------------------------------------------- [1]

/// What [`late_payment_closed_by`] saw: the CCT at its end, the height
/// NT_s landed at on chain i (if it did), the sender's forwarding
/// deadline, and the sender's deposit before and after.
struct Closed {
    end: gridledger_xchain::CctRecord,
    landed: Option<u64>,
    forward_i: u64,
    deposit_before: u128,
    deposit_after: u128,
}

/// Attack R12-1's scenario (the sender's earlier payment, nonce `n`, held
/// back `delay` epochs by a censoring chain i — issue item 6 — so NT_s
/// with nonce `n + 1` waits behind it; the sender posts NT_s and relies on
/// the BoB nodes), driven until the BoB stores chain i's header just below
/// the sender's forwarding deadline. Then, if `race` is set, the receiver
/// R — who gets x_B of the sender's deposit if the side is penalised —
/// acts as the protocol lets anyone: as soon as chain i seals the block at
/// the forwarding deadline, R relays that header itself and sends the
/// closing `cct_v` right behind it (its own nonces: one BoB block, in that
/// order). Otherwise the honest nodes go on alone.
fn late_payment_closed_by(spec: MbsSpec, delay: u64, race: bool) -> Closed {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    let pre = m.native_transfer(ci, &s, dev_key(4).address(), 5).unwrap();
    m.external_mut(ci).unwrap().censor(pre.clone(), delay);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1301));
    assert_eq!(rec.terms.nonce_i, pre.tx.nonce + 1);
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    assert!(m.external_mut(ci).unwrap().submit(&nt_s).is_err(), "a nonce gap while the earlier payment is held");
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let deposit_before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    // The honest BoB node (the harness's relayer) opens sub-situation 2
    // and forwards NT_s; stop one header short of the forwarding deadline.
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 400, "never reached the forwarding deadline");
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified {
            if m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
                let relayer = m.relayer.clone();
                let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            } else {
                m.tick().unwrap();
            }
            continue;
        }
        if m.bob_tip(ci) + 1 >= rec.forward_i {
            break;
        }
        m.tick().unwrap();
    }
    let forward_i = m.cct(&id).unwrap().forward_i;
    if race && !m.cct(&id).unwrap().complete {
        // Chain i seals up to the forwarding deadline; R sees it first.
        while m.external(ci).unwrap().height() < forward_i {
            m.external_mut(ci).unwrap().tick().unwrap();
        }
        let from = m.bob_tip(ci) + 1;
        let headers =
            (from..=forward_i).map(|h| m.external(ci).unwrap().sealed_header(h).unwrap().unwrap()).collect::<Vec<_>>();
        let relay = m.bob_call(&r, "relay", &Relay { chain: ci, headers }, Amount::ZERO);
        m.bob.submit(&relay).unwrap();
        let close = m.bob_call(&r, "cct_v", &CctV { cct: id }, Amount::ZERO);
        assert_eq!(close.tx.nonce, relay.tx.nonce + 1, "R's two calls go in this order");
        m.bob.submit(&close).unwrap();
        m.tick().unwrap();
    }
    let end = settle_within(&mut m, id, 400);
    assert!(end.complete, "settled");
    // Whatever is still in flight lands now.
    m.ticks(30).unwrap();
    let deposit_after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    Closed { end, landed, forward_i, deposit_before, deposit_after }
}

fn paid_twice(c: &Closed) -> bool {
    c.end.sender == SideState::Penalised && c.landed.is_some()
}

/// R12-1's fix lets the BoB node forward a posted NT as long as it lands
/// at or below `forward_i − k` — "proved no later than the epoch the
/// CCT_V falls due", since the node sends that epoch's `prove` before its
/// own closing CCT_V. But the closing CCT_V is not the node's alone: SC_T
/// takes it from anyone once the stored tip of chain i reaches `forward_i`,
/// and a header is relayed by anyone too. The header that makes NT_s
/// (landed at `forward_i − k`) final is the very header that makes the
/// CCT_V due, so the node's `prove` can go in at the earliest in the BoB
/// block *after* the one storing it; the payee R puts the relay of that
/// header and its `cct_v` into one block, in that order, and the sender —
/// whose payment landed inside the window, on the node's own forwarding —
/// is penalised x_B as well: it paid twice (x_i to R on chain i, x_B of
/// its deposit to R on the BoB). The same on deterministic chains (k = 0,
/// NT_s at `forward_i`) and probabilistic ones (k = 3, NT_s at
/// `forward_i − 3`).
///
/// Expected: a payment the BoB nodes forwarded inside the window costs
/// its payer once (atomicity, Theorem 5.2): the window closes only after
/// an NT final at its last header could be proved (e.g. the closing CCT_V
/// due one header later than the last provable one, or nodes stop
/// forwarding one block earlier), or a landed NT is not penalised.
/// Observed: the sender `Penalised` with NT_s on chain i, in both modes.
#[test]
fn a_payment_final_at_the_forwarding_deadline_is_not_closed_out_by_the_payee() {
    let mut twice = Vec::new();
    for (spec, delay) in
        [(MbsSpec::default(), 34), (MbsSpec { finality: Finality::Probabilistic { k: 3 }, ..MbsSpec::default() }, 31)]
    {
        let k = spec.finality.confirmations() as u64;
        let c = late_payment_closed_by(spec, delay, true);
        eprintln!(
            "k {k}, delay {delay}: NT_s at {:?}, forward_i {}, sender {:?}, deposit {} -> {}",
            c.landed, c.forward_i, c.end.sender, c.deposit_before, c.deposit_after
        );
        if paid_twice(&c) {
            twice.push((k, c.landed, c.forward_i, c.deposit_before - c.deposit_after));
        }
    }
    assert!(twice.is_empty(), "paid on chain i and penalised (k, NT_s height, forward_i, x_B taken): {twice:?}");
}

/// [1] without a censoring chain: Mallory stores terms A (R's nonce `n`)
/// at their `expires_at`, as SC_T lets her, while R's concurrent exchange
/// B with S (R's nonce `n + 1`) runs; R pays A as soon as A's window
/// opens and the BoB node forwards R's posted payment for B as soon as it
/// is executable — on a probabilistic deployment it lands exactly at
/// `forward_j − k` (see `terms_stored_at_their_expiry_do_not_penalise_a_concurrent_exchange`).
/// S, the payee of that payment (Mallory's accomplice), closes B as in
/// [1]: R — honest, paid both exchanges on time — is penalised on B and
/// its payment for B lands: R pays B twice.
///
/// Expected: R's side of B `Proved` (or at least not penalised with its
/// payment landed). Observed: `Penalised`, R's payment for B on chain j.
#[test]
fn a_payment_pushed_to_the_window_edge_by_late_stored_terms_is_not_closed_out() {
    let mut twice = Vec::new();
    for (kappa, finality) in [(4, Finality::Probabilistic { k: 3 }), (3, Finality::Probabilistic { k: 2 })] {
        let got = terms_stored_at_expiry(MbsSpec { kappa, finality, ..MbsSpec::default() }, true);
        eprintln!("κ {kappa} {finality:?}: {got:?}");
        if got.b_receiver == SideState::Penalised && got.r_paid_b_at.is_some() {
            twice.push((kappa, got.r_paid_b_at, got.b_forward_j, got.r_deposit.0 - got.r_deposit.1));
        }
    }
    assert!(twice.is_empty(), "R paid B on chain j and was penalised (κ, height, forward_j, x_B): {twice:?}");
}

/// Held up (the control of [1]): without the payee's race, the same NT_s
/// landing at `forward_i − k` is proved by the honest node before its own
/// closing CCT_V, in both modes.
#[test]
fn without_the_race_a_payment_final_at_the_forwarding_deadline_is_proved() {
    for (spec, delay) in
        [(MbsSpec::default(), 34), (MbsSpec { finality: Finality::Probabilistic { k: 3 }, ..MbsSpec::default() }, 31)]
    {
        let k = spec.finality.confirmations() as u64;
        let c = late_payment_closed_by(spec, delay, false);
        eprintln!("k {k}, delay {delay}: NT_s at {:?}, forward_i {}, sender {:?}", c.landed, c.forward_i, c.end.sender);
        assert!(!paid_twice(&c), "k {k}: NT_s at {:?} and penalised", c.landed);
        assert_eq!(c.end.sender == SideState::Penalised, c.deposit_before != c.deposit_after);
    }
}

/// R12-1's fix stops the *BoB node* from forwarding a posted NT that would
/// land too late to be proved (above `forward_i − k`), "so the void takes
/// its nonce". But a posted NT is public on the BoB, and the payee — who
/// is paid by it on chain i *and* gets x_B if the side is penalised — may
/// send it itself: in R12-1's scenario with the sender's earlier payment
/// landing at `forward_i − k` (delay 35 here; 32 with k = 3), R sends NT_s
/// to chain i at every block (refused while the nonce gap lasts). It lands
/// at `forward_i − k + 1`, cannot be final at the BoB before the closing
/// CCT_V, and the void the sender's wallet sends for the closed CCT's
/// nonce comes after it: the sender pays twice. This is not attack R12-4
/// (a penalised party's NT landing *after* its void was sent, which a
/// void-ordering fix addresses): here the NT lands before the CCT is even
/// closed, so no void can come first.
///
/// Expected: the sender pays for the exchange once (a landed NT that can
/// no longer be proved is not also penalised, or the window closes only
/// after every NT that can still land in it could be proved).
/// Observed: NT_s lands at `forward_i − k + 1` and the sender is
/// `Penalised`, in both modes.
/// Fixed by the NT's deadline (`TxKind::TransferUntil`, attack R12-4's
/// fix): past `forward_i − k` the chain refuses the payee's copy.
#[test]
fn a_posted_payment_the_payee_sends_late_is_not_also_penalised() {
    let mut twice = Vec::new();
    for (spec, delay) in
        [(MbsSpec::default(), 35), (MbsSpec { finality: Finality::Probabilistic { k: 3 }, ..MbsSpec::default() }, 32)]
    {
        let k = spec.finality.confirmations() as u64;
        let c = late_payment_sent_by_the_payee(spec, delay);
        eprintln!(
            "k {k}, delay {delay}: NT_s at {:?}, forward_i {}, sender {:?}, deposit {} -> {}",
            c.landed, c.forward_i, c.end.sender, c.deposit_before, c.deposit_after
        );
        if paid_twice(&c) {
            twice.push((k, c.landed, c.forward_i, c.deposit_before - c.deposit_after));
        }
    }
    assert!(twice.is_empty(), "paid on chain i and penalised (k, NT_s height, forward_i, x_B taken): {twice:?}");
}

/// R12-1's scenario (see [`late_payment_closed_by`]) where the receiver R
/// sends the posted NT_s to chain i itself at every block.
fn late_payment_sent_by_the_payee(spec: MbsSpec, delay: u64) -> Closed {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let s = sender();
    let pre = m.native_transfer(ci, &s, dev_key(4).address(), 5).unwrap();
    m.external_mut(ci).unwrap().censor(pre.clone(), delay);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1306));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let deposit_before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    for _ in 0..400 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        // R, the payee, sends the posted NT itself whenever it can.
        let _ = m.external_mut(ci).unwrap().submit(&nt_s);
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
        } else {
            m.tick().unwrap();
        }
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "settled");
    m.ticks(30).unwrap();
    let deposit_after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    Closed { forward_i: end.forward_i, end, landed, deposit_before, deposit_after }
}

// ------------------------------------------------------------------- [2]

/// What [`stale_rule_against_a_live_deployment`] saw.
#[derive(Debug)]
struct Foreign {
    /// R's triple (chain j, R, n) for A still held after the D1 blocks.
    held_after: bool,
    /// R's nonce `n` on chain j spent (by the void) before A was stored.
    voided_before_store: bool,
    /// D2's height when A was stored, and A's `expires_at`.
    stored_at: u64,
    expires_at: u64,
    /// A on D2 at its end: R's side, and R's deposit on D2 before and after.
    receiver: SideState,
    /// R's payment for A landed on chain j.
    r_landed: bool,
    r_deposit: (u128, u128),
}

/// R trades on two deployments that follow the same chains, with one
/// wallet (as the docs ask), a driver on each — both running. On D2, the
/// provider P (the counterparty) has R sign terms A (P pays on chain i, R
/// pays on chain j with its nonce `n`) expiring `ahead` D2 blocks after
/// D2's height as R's driver there last told the wallet; on D1, R agrees
/// an exchange B with S, which names R's nonce `n + 1`. D1 then seals
/// `d1_blocks` blocks while D2 seals none (D2 is another BoB with its own
/// validators: a slower block interval, a view change, or simply a driver
/// that polls it less often than D1 seals). Then P sends A's `cct` to D2
/// in its next block, P pays A on chain i and proves it, and D2 runs A to
/// its end.
fn stale_rule_against_a_live_deployment(ahead: u64, d1_blocks: u64) -> Foreign {
    use common::second_bob::SecondBob;
    use gridledger_xchain::bob::{keys, CctArgs, CctTerms, DepositAccount};
    use gridledger_xchain::mbs::SwapRequest;
    use gridledger_xchain::CctRecord;
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let mut d2 = SecondBob::open(dir2.path(), &m);
    let [ci, cj] = chains2(&m);
    let (r, p) = (receiver(), provider());
    let bob = m.bob.chain_id();
    d2.fund(&mut m);
    d2.ok(&p, "deposit", &(), 100_000);
    m.wait_caught_up(&[ci, cj]).unwrap();
    d2.catch_up(&m);
    let d2_id = d2.config.deployment;
    // R's driver on D2 tells the wallet D2's height and bound.
    let h2 = d2.chain.height();
    m.wallet.observe(d2_id, h2);
    m.wallet.observe_limit(d2_id, d2.config.max_terms_ahead());
    let terms_a = CctTerms {
        deployment: d2_id,
        expires_at: h2 + ahead,
        ..m.try_terms(&SwapRequest { sender: p.clone(), ..request_between(ci, cj, 1_000, 1321) }).unwrap()
    };
    let n = terms_a.nonce_j;
    let sig_a = m.wallet.sign(&r, &terms_a, bob).expect("R agrees A on D2");
    // Fix of [2], [3], [5]: B would name R's nonce n + 1 above A's, which
    // can land only once D2 stores or expires A — on D2's clock, not
    // D1's: D1's terms builder refuses B instead.
    refused_above_foreign(&m, &request_between(ci, cj, 1_000, 1322), cj, n, d2_id);
    for _ in 0..d1_blocks {
        m.tick().unwrap();
    }
    assert_eq!(d2.chain.height(), h2, "D2 sealed nothing meanwhile");
    let held_after = m.wallet.entry(cj, &r.address(), n).unwrap().is_some_and(|e| e.id == terms_a.id());
    // The void, if sent, is in chain j's mempool: it lands in the next block.
    m.external_mut(cj).unwrap().tick().unwrap();
    let voided_before_store = m.external(cj).unwrap().account(&r.address()).nonce > n;
    // P stores A on D2 in its next block, within `expires_at`.
    let stored_at = d2.chain.height() + 1;
    d2.ok(&p, "cct", &CctArgs { terms: terms_a.clone(), receiver_sig: sig_a }, 0);
    let id_a = terms_a.id();
    let rec_a: CctRecord = d2.record(&keys::cct(&id_a)).expect("A stored on D2");
    // R's driver on D2 follows it from here on (as it did before).
    m.wallet.observe(d2_id, d2.chain.height());
    let r_deposit = |d2: &SecondBob| {
        let d: DepositAccount = d2.record(&keys::deposit(&r.address())).unwrap_or_default();
        d.free + d.locked
    };
    let before = r_deposit(&d2);
    // R's driver on D2 pays A as soon as its window opens (and posts the
    // payment on D2 for the BoB nodes); P pays A on chain i and proves it.
    while m.external(ci).unwrap().height() <= rec_a.e_i + m.config.kappa_bar + 1
        || m.external(cj).unwrap().height() <= rec_a.e_j + m.config.kappa_bar + 1
    {
        m.tick().unwrap();
    }
    let nt_r = m.native_tx(&rec_a, Side::Receiver, &r).unwrap();
    let sent = m.external_mut(cj).unwrap().submit(&nt_r);
    eprintln!("R pays A with nonce {n}: {sent:?}");
    let nt_p = m.native_tx(&rec_a, Side::Sender, &p).unwrap();
    m.external_mut(ci).unwrap().submit(&nt_p).unwrap();
    m.tick().unwrap();
    d2.catch_up(&m);
    d2.ok(&r, "post_nt", &PostNt { cct: id_a, side: Side::Receiver, nt: nt_r.clone() }, 0);
    let pt = m.proof_for(id_a, Side::Sender, &nt_p).unwrap().expect("P's payment landed");
    d2.ok(&p, "prove", &pt, 0);
    // D2 runs A to its end; R's payment is proved on D2 once final.
    for _ in 0..200 {
        let rec: CctRecord = d2.record(&keys::cct(&id_a)).unwrap();
        if rec.complete {
            break;
        }
        m.tick().unwrap();
        d2.catch_up(&m);
        if rec.receiver == SideState::Pending {
            if let Some(pt) = m.proof_for(id_a, Side::Receiver, &nt_r).unwrap() {
                let _ = d2.call(&r, "prove", &pt, 0);
            }
        }
        let tip = |c| d2.record::<(u64, gridledger_core::Hash32)>(&keys::tip(c)).map_or(0, |t| t.0);
        if tip(ci) >= rec.deadline_i && tip(cj) >= rec.deadline_j {
            let _ = d2.call(&p, "cct_v", &CctV { cct: id_a }, 0);
        }
    }
    let r_landed = m.external(cj).unwrap().tx_proof(&nt_r.hash()).unwrap().is_some();
    let end: CctRecord = d2.record(&keys::cct(&id_a)).unwrap();
    Foreign {
        held_after,
        voided_before_store,
        stored_at,
        expires_at: terms_a.expires_at,
        receiver: end.receiver,
        r_landed,
        r_deposit: (before, r_deposit(&d2)),
    }
}

/// `release_stale_foreign_terms` (attack R12-5's fix) gives back another
/// deployment's triple once the wallet's view of that deployment's height
/// `h` has not moved while this BoB sealed `2 · (expires_at − h)` blocks,
/// taking a still view for a driver that is gone. It cannot tell a gone
/// driver from a deployment that is merely slower than this one, and the
/// counterparty picks `expires_at`: with `expires_at = h + 1` two D1
/// blocks without a D2 block suffice. R's driver on D1 then gives back
/// R's nonce `n` and voids it (B, above it, is owed), and P stores A on D2
/// in D2's very next block, at `expires_at` — SC_T takes it. A names R's
/// nonce `n`, already spent by R's own void: R cannot pay A at all, and D2
/// penalises R x_B of its deposit, to P. R followed the protocol on both
/// deployments, both drivers running.
///
/// Expected: an honest party that runs its drivers is never penalised
/// because one deployment is slower than another (a triple is given back
/// only once its terms can no longer be stored — e.g. the rule counts in
/// the other deployment's own blocks or waits for its height to pass
/// `expires_at`, or the wallet never agrees terms of a deployment whose
/// height it cannot follow).
/// Observed: R's nonce voided before A was stored (at D2 height
/// `expires_at`), A's receiver side `Penalised`, R's D2 deposit down 1,000.
///
/// Fixed: D1's driver never gives another deployment's entry back, and
/// D1's terms builder refuses B (`ForeignTermsBelow`) rather than name
/// R's nonce above A's; A is stored on D2 and R's payment proves it.
#[test]
fn a_slower_deployments_terms_are_not_given_back_while_they_can_still_be_stored() {
    let f = stale_rule_against_a_live_deployment(1, 2);
    eprintln!("{f:?}");
    assert!(f.stored_at <= f.expires_at, "A was stored within its expiry");
    assert!(
        f.held_after || !f.voided_before_store,
        "R's nonce for A given back and voided while A could still be stored: {f:?}"
    );
    assert!(!matches!(f.receiver, SideState::Penalised), "honest R penalised on D2: {f:?}");
    assert_eq!(f.r_deposit.0, f.r_deposit.1, "R's deposit on D2");
}

/// Held up (the control of [2]): one D1 block without a D2 block leaves
/// R's triple held; A is stored, R's payment lands and is proved on D2.
#[test]
fn a_slower_deployments_terms_held_while_the_rule_waits_are_paid() {
    let f = stale_rule_against_a_live_deployment(1, 1);
    eprintln!("{f:?}");
    assert!(f.held_after && !f.voided_before_store, "{f:?}");
    assert!(f.r_landed && matches!(f.receiver, SideState::Proved { .. }), "{f:?}");
    assert_eq!(f.r_deposit.0, f.r_deposit.1, "R's deposit on D2");
}

/// The fix of [2], [3] and [5]: the terms builder refuses terms naming
/// `held + 1` for the receiver on `chain` while another deployment's terms
/// hold its nonce `held` (`ForeignTermsBelow`), and changes nothing.
fn refused_above_foreign(
    m: &gridledger_xchain::BobMbs,
    req: &gridledger_xchain::mbs::SwapRequest,
    chain_j: gridledger_core::ChainId,
    held_nonce: u64,
    other: gridledger_core::Hash32,
) {
    use gridledger_xchain::mbs::MbsError;
    use gridledger_xchain::wallet::WalletError;
    let before = m.wallet.held().unwrap();
    match m.try_terms(req) {
        Err(MbsError::Wallet(WalletError::ForeignTermsBelow { chain, payer, held, named, deployment, .. })) => {
            assert_eq!(
                (chain, payer, held, named, deployment),
                (chain_j, req.receiver.address(), held_nonce, held_nonce + 1, other)
            );
        }
        got => panic!("terms named R's nonce above another deployment's held one: {got:?}"),
    }
    assert_eq!(m.wallet.held().unwrap(), before, "a refusal holds nothing");
}

// ------------------------------------------------------------------- [3]

/// R12-5's fix gives another deployment's triple back after this BoB
/// sealed `2 · (expires_at − h)` blocks with that deployment's height `h`
/// standing still, and its test runs only on the default deployment
/// (κ = 16: a later exchange's window 2 · (2 + 16) = 36 blocks). R12-2's
/// fix made this deployment's own bound `κ̄ + κ` (6 with `--kappa 4`,
/// the CCDI deployments' κ) because a window there is only
/// 2 · (2 + 4) = 12 blocks — but the foreign rule's wait is twice the
/// terms' lead: terms of another deployment as far ahead as this
/// deployment's own bound (6) hold R's nonce 12 blocks, the whole window,
/// and those at a default deployment's bound (16, which the wallet
/// accepts for another deployment) 32. Mallory's withheld terms on the
/// other deployment (R12-5's scenario) make R — paying B here in full and
/// in time — penalised on a κ = 4 deployment either way.
///
/// Expected: R's side of B ends `Proved` on every deployment the CLI lets
/// one run, whatever the lead of the other deployment's terms the wallet
/// accepted.
/// Observed: `Penalised` with leads 6 and 16.
///
/// Fixed: no rule on this deployment's clock gives the other deployment's
/// entry back any more; B is refused (`ForeignTermsBelow`) while A holds
/// R's nonce, and agreed — naming that nonce — once the other
/// deployment's driver gave A back (its BoB passed `expires_at` without a
/// record); R's side then ends `Proved`.
#[test]
fn another_deployments_withheld_terms_do_not_penalise_a_small_kappa_deployment() {
    let mut penalised = Vec::new();
    for ahead in [6, 16] {
        let (a_expires, end, before, after) = withheld_foreign_terms(4, ahead);
        eprintln!(
            "κ 4 here, A (other deployment, {ahead} ahead) expires at {a_expires}; B e_j {} deadline_j {} \
             forward_j {}; receiver {:?}; R's deposit {before} -> {after}",
            end.e_j, end.deadline_j, end.forward_j, end.receiver
        );
        assert!(end.complete);
        if !matches!(end.receiver, SideState::Proved { .. }) || after != before {
            penalised.push((ahead, end.receiver, before - after));
        }
    }
    assert!(penalised.is_empty(), "R paid B in full and in time (lead, R's side, x_B taken): {penalised:?}");
}

/// Held up: on the default deployment (κ = 16) another deployment's
/// withheld terms 16 ahead are given back and filled in time.
#[test]
fn another_deployments_withheld_terms_do_not_penalise_the_default_deployment() {
    let (_, end, before, after) = withheld_foreign_terms(16, 16);
    assert!(matches!(end.receiver, SideState::Proved { .. }), "{:?}", end.receiver);
    assert_eq!(after, before);
}

/// Attack R12-5's scenario on a deployment keeping `kappa` headers, the
/// other deployment's terms A expiring `ahead` of its height (R's driver
/// there told the wallet the height and a default deployment's bound).
fn withheld_foreign_terms(kappa: u32, ahead: u64) -> (u64, gridledger_xchain::CctRecord, u128, u128) {
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa, ..MbsSpec::default() });
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.wait_caught_up(&[ci, cj]).unwrap();
    let foreign = gridledger_core::Hash32([0xd3; 32]);
    m.wallet.observe(foreign, m.bob.height());
    m.wallet.observe_limit(foreign, gridledger_xchain::bob::MAX_TERMS_AHEAD);
    let req_a = SwapRequest { sender: mallory, ..request_between(ci, cj, 500, 1331) };
    let mut terms_a = m.try_terms(&req_a).unwrap();
    terms_a.deployment = foreign;
    terms_a.expires_at = m.bob.height() + ahead;
    let _sig = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let req_b = request_between(ci, cj, 500, 1332);
    for _ in 0..2 * ahead {
        refused_above_foreign(&m, &req_b, cj, terms_a.nonce_j, foreign);
        m.tick().unwrap();
    }
    assert!(m.wallet.entry(cj, &r.address(), terms_a.nonce_j).unwrap().is_some(), "this driver never gives A back");
    // The other deployment's driver gives A back: its BoB passed A's
    // `expires_at` without a record of A.
    assert_eq!(m.wallet.release_unstored(foreign, terms_a.expires_at, |_| false).unwrap(), 2);
    let (id, rec) = open_cct(&mut m, &req_b);
    assert_eq!(rec.terms.nonce_j, terms_a.nonce_j, "B names the nonce A gave back");
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
    let end = settle_within(&mut m, id, 400);
    let after = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    (terms_a.expires_at, end, before, after)
}

// ------------------------------------------------------------------- [5]

/// R12-5's epoch rule needs the other deployment's BoB height as the
/// wallet last saw it (`TermsRegistry::observed`), and that view lives in
/// memory only (`heights`, shared by clones of one registry). R12-5's
/// scenario is a party that signed terms once for a deployment it runs no
/// driver on any more; once R's driver here is restarted (a crash, an
/// upgrade, `xchain resume`), the wallet has never been told that
/// deployment's height, `release_stale_foreign_terms` skips the entry for
/// good (`observed` is `None`), and every later exchange R agrees here on
/// chain j names the nonce above the held one: R, paying in full and in
/// time, is penalised each time — R12-5 again after one restart.
///
/// Expected: R's side of B ends `Proved` after a restart as before it.
/// Observed: `Penalised`.
///
/// Fixed: nothing here depends on the other deployment's height any more.
/// After the restart B is refused (`ForeignTermsBelow`) while A holds R's
/// nonce, and agreed once the other deployment's driver gave A back; R's
/// side then ends `Proved`.
#[test]
fn another_deployments_withheld_terms_do_not_penalise_after_a_restart() {
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::default();
    let mut m = setup(dir.path(), spec.clone());
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.wait_caught_up(&[ci, cj]).unwrap();
    let foreign = gridledger_core::Hash32([0xd5; 32]);
    m.wallet.observe(foreign, m.bob.height());
    let req_a = SwapRequest { sender: mallory, ..request_between(ci, cj, 500, 1351) };
    let mut terms_a = m.try_terms(&req_a).unwrap();
    terms_a.deployment = foreign;
    let _sig = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    // R's driver here restarts; it runs none on the other deployment.
    drop(m);
    let mut m = gridledger_xchain::BobMbs::open(dir.path(), spec).unwrap();
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_b = request_between(ci, cj, 500, 1352);
    for _ in 0..40 {
        refused_above_foreign(&m, &req_b, cj, terms_a.nonce_j, foreign);
        m.tick().unwrap();
    }
    // The other deployment's driver, run again, gives A back: its BoB
    // passed A's `expires_at` without a record of A.
    assert_eq!(m.wallet.release_unstored(foreign, terms_a.expires_at, |_| false).unwrap(), 2);
    let (id, rec) = open_cct(&mut m, &req_b);
    assert_eq!(rec.terms.nonce_j, terms_a.nonce_j, "B names the nonce A gave back");
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    m.wait_native_window(&rec).unwrap();
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).unwrap();
        let _ = m.external_mut(rec.instruction(side).0).unwrap().submit(&nt);
        m.bob_ok(&m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt }, Amount::ZERO)).unwrap();
    }
    let end = settle_within(&mut m, id, 400);
    let after = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    eprintln!(
        "A (other deployment) expires at {}; B forward_j {}; receiver {:?}; R's deposit {before} -> {after}",
        terms_a.expires_at, end.forward_j, end.receiver
    );
    assert!(end.complete);
    assert!(matches!(end.receiver, SideState::Proved { .. }), "R paid B in full and in time: {:?}", end.receiver);
    assert_eq!(after, before);
}

// ------------------------------------------------------------------ held

/// What [`terms_stored_at_expiry`] saw: B's and A's records at their end,
/// R's deposit before and after, and where R's payments landed.
#[derive(Debug)]
struct LastMoment {
    a_stored_at: Option<u64>,
    a_receiver: Option<SideState>,
    b_forward_j: u64,
    b_receiver: SideState,
    r_paid_a_at: Option<u64>,
    r_paid_b_at: Option<u64>,
    r_deposit: (u128, u128),
}

/// Mallory has the receiver R sign terms A (R's nonce `n` on chain j) and
/// holds them; an honest S agrees B with R meanwhile (R's nonce `n + 1`),
/// both pay B in its window and post. Mallory sends A's `cct` so that it
/// is stored in the BoB block at A's `expires_at` — the last one SC_T
/// takes it in (R11-1, R12-6: the signed terms are Mallory's to send until
/// then). R pays A honestly as soon as A's window opens (an NT landing at
/// or below `e_j(A) + κ̄` proves nothing, `TooEarly`), and only then can
/// R's payment for B (nonce `n + 1`) land.
fn terms_stored_at_expiry(spec: MbsSpec, race: bool) -> LastMoment {
    use gridledger_xchain::bob::CctArgs;
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.deposit_token_b(&mallory, DEPOSIT).unwrap();
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_a = SwapRequest { sender: mallory.clone(), ..request_between(ci, cj, 500, 1361) };
    let terms_a = m.try_terms(&req_a).unwrap();
    let sig_a = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let id_a = terms_a.id();
    let (id_b, rec_b) = open_cct(&mut m, &request_between(ci, cj, 500, 1362));
    assert_eq!(rec_b.terms.nonce_j, terms_a.nonce_j + 1, "B names the nonce after A's");
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    let kb = m.config.kappa_bar;
    let (mut a_sent, mut b_paid, mut a_paid, mut raced) = (false, false, false, false);
    let mut a_stored_at = None;
    let (mut nt_ra, mut nt_rb) = (None, None);
    for _ in 0..600 {
        let h = m.bob.height();
        if !a_sent && h + 1 >= terms_a.expires_at {
            let tx =
                m.bob_call(&mallory, "cct", &CctArgs { terms: terms_a.clone(), receiver_sig: sig_a }, Amount::ZERO);
            m.bob.submit(&tx).unwrap();
            a_sent = true;
        }
        if a_stored_at.is_none() && m.cct(&id_a).is_some() {
            a_stored_at = Some(h);
        }
        let window = |m: &gridledger_xchain::BobMbs, rec: &gridledger_xchain::CctRecord| {
            m.external(ci).unwrap().height() >= rec.e_i + kb && m.external(cj).unwrap().height() >= rec.e_j + kb
        };
        if !b_paid && window(&m, &rec_b) {
            for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
                let nt = m.native_tx(&rec_b, side, key).unwrap();
                let _ = m.external_mut(rec_b.instruction(side).0).unwrap().submit(&nt);
                m.bob
                    .submit(&m.bob_call(key, "post_nt", &PostNt { cct: id_b, side, nt: nt.clone() }, Amount::ZERO))
                    .unwrap();
                if side == Side::Receiver {
                    nt_rb = Some(nt);
                }
            }
            b_paid = true;
        }
        if let Some(rec_a) = m.cct(&id_a) {
            if !a_paid && window(&m, &rec_a) {
                for (side, key) in [(Side::Sender, &mallory), (Side::Receiver, &r)] {
                    let nt = m.native_tx(&rec_a, side, key).unwrap();
                    let _ = m.external_mut(rec_a.instruction(side).0).unwrap().submit(&nt);
                    m.bob
                        .submit(&m.bob_call(key, "post_nt", &PostNt { cct: id_a, side, nt: nt.clone() }, Amount::ZERO))
                        .unwrap();
                    if side == Side::Receiver {
                        nt_ra = Some(nt);
                    }
                }
                a_paid = true;
            }
        }
        let done = |m: &gridledger_xchain::BobMbs, id: &gridledger_core::Hash32| m.cct(id).is_some_and(|c| c.complete);
        if done(&m, &id_b) && (done(&m, &id_a) || (a_sent && a_stored_at.is_none() && h > terms_a.expires_at)) {
            break;
        }
        // S, B's sender and the payee of R's payment for B, closes B as in
        // [1]: the header at B's forwarding deadline and `cct_v`, one block.
        let rec_b_now = m.cct(&id_b).unwrap();
        if race && !raced && rec_b_now.verified && !rec_b_now.complete && m.bob_tip(cj) + 1 >= rec_b_now.forward_j {
            while m.external(cj).unwrap().height() < rec_b_now.forward_j {
                m.external_mut(cj).unwrap().tick().unwrap();
            }
            let from = m.bob_tip(cj) + 1;
            let headers = (from..=rec_b_now.forward_j)
                .map(|h| m.external(cj).unwrap().sealed_header(h).unwrap().unwrap())
                .collect::<Vec<_>>();
            m.bob.submit(&m.bob_call(&s, "relay", &Relay { chain: cj, headers }, Amount::ZERO)).unwrap();
            m.bob.submit(&m.bob_call(&s, "cct_v", &CctV { cct: id_b }, Amount::ZERO)).unwrap();
            raced = true;
        }
        // An honest BoB node sends the first CCT_V of each once due.
        for id in [id_a, id_b] {
            if let Some(rec) = m.cct(&id) {
                if !rec.verified && !rec.complete && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j
                {
                    let relayer = m.relayer.clone();
                    m.bob.submit(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
                }
            }
        }
        m.tick().unwrap();
    }
    let at = |m: &gridledger_xchain::BobMbs, nt: &Option<gridledger_ledger::SignedTransaction>| {
        nt.as_ref().and_then(|nt| m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().map(|(h, _)| h))
    };
    let end_b = m.cct(&id_b).unwrap();
    LastMoment {
        a_stored_at,
        a_receiver: m.cct(&id_a).map(|c| c.receiver),
        b_forward_j: end_b.forward_j,
        b_receiver: end_b.receiver,
        r_paid_a_at: at(&m, &nt_ra),
        r_paid_b_at: at(&m, &nt_rb),
        r_deposit: (before, m.deposit(&r.address()).free + m.deposit(&r.address()).locked),
    }
}

/// Held up: terms a counterparty stores at their `expires_at` (the last
/// block SC_T takes them in) do not push R's payment for a concurrent
/// exchange B past B's window, on the default, small-κ and probabilistic
/// deployments (R12-2's bound `κ̄ + κ`). On the probabilistic ones R's
/// payment for B lands exactly at `forward_j − k`, where [1]'s race
/// penalises it.
#[test]
fn terms_stored_at_their_expiry_do_not_penalise_a_concurrent_exchange() {
    for (kappa, finality) in [
        (16, Finality::Deterministic),
        (4, Finality::Deterministic),
        (4, Finality::Probabilistic { k: 3 }),
        (3, Finality::Probabilistic { k: 2 }),
        (2, Finality::Deterministic),
        (2, Finality::Probabilistic { k: 1 }),
    ] {
        let k = finality.confirmations() as u64;
        let got = terms_stored_at_expiry(MbsSpec { kappa, finality, ..MbsSpec::default() }, false);
        eprintln!("κ {kappa} {finality:?}: {got:?}");
        assert!(got.a_stored_at.is_some(), "κ {kappa}: A stored at its expiry");
        assert!(matches!(got.a_receiver, Some(SideState::Proved { .. })), "κ {kappa}: {got:?}");
        assert!(got.r_paid_a_at.is_some(), "κ {kappa}: {got:?}");
        assert!(matches!(got.b_receiver, SideState::Proved { .. }), "κ {kappa}: {got:?}");
        assert!(got.r_paid_b_at.is_some_and(|h| h + k <= got.b_forward_j), "κ {kappa}: {got:?}");
        assert_eq!(got.r_deposit.0, got.r_deposit.1, "κ {kappa}");
    }
}

// ------------------------------------------------------------------ held

/// Attack R11-2's scenario (this deployment's withheld terms) on `spec`.
fn withheld_own_terms(spec: MbsSpec) -> (u64, gridledger_xchain::CctRecord, u128, u128) {
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_a = SwapRequest { sender: mallory, ..request_between(ci, cj, 500, 1341) };
    let terms_a = m.try_terms(&req_a).unwrap();
    let _sig = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 500, 1342));
    assert_eq!(rec.terms.nonce_j, terms_a.nonce_j + 1, "B names the nonce after A's");
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    m.wait_native_window(&rec).unwrap();
    // Both post in the same epoch: the BoB node's relays of an epoch come
    // first in its BoB block (they pay `NODE_GAS_PRICE`), and on κ = 2 the
    // window left after `wait_native_window` holds one epoch of posts.
    let mut posts = Vec::new();
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).unwrap();
        let _ = m.external_mut(rec.instruction(side).0).unwrap().submit(&nt);
        posts.push(m.bob.submit(&m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt }, Amount::ZERO)).unwrap());
    }
    m.tick().unwrap();
    for h in posts {
        let status = m.bob.receipt(&h).unwrap().map(|r| r.status);
        assert_eq!(status, Some(gridledger_ledger::TxStatus::Success), "post_nt");
    }
    let end = settle_within(&mut m, id, 400);
    let after = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    (terms_a.expires_at, end, before, after)
}

/// Held up: this deployment's own withheld terms (R11-2, R12-2's bound)
/// do not penalise the next exchange on small-κ and probabilistic
/// deployments either (R's payment lands at `forward_j − k` at the latest
/// here, so [1]'s race applies to it as well).
#[test]
fn own_withheld_terms_do_not_penalise_small_kappa_or_probabilistic_deployments() {
    for (kappa, finality) in [
        (4, Finality::Probabilistic { k: 3 }),
        (2, Finality::Deterministic),
        (3, Finality::Probabilistic { k: 2 }),
        (2, Finality::Probabilistic { k: 1 }),
    ] {
        let spec = MbsSpec { kappa, finality, ..MbsSpec::default() };
        let (a, end, before, after) = withheld_own_terms(spec);
        eprintln!(
            "κ {kappa} {finality:?}: A expires {a}; B forward_j {}; R {:?}; R {before} -> {after}",
            end.forward_j, end.receiver
        );
        assert!(matches!(end.receiver, SideState::Proved { .. }), "κ {kappa} {finality:?}: {:?}", end.receiver);
        assert_eq!(after, before);
    }
}
