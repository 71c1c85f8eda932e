//! Mutation sensitivity of the CCDI checks: each bug planted behind the
//! `mutants` feature (SC_MPV / SC_C skip the Merkle proof, SC_C ignores
//! the deadline, SC_C forgets a claim, SC_BG skips the threshold signature,
//! SC_MPV takes the sender's or the receiver's agreed nonce as a floor, the
//! parties' driver gives a closed CCT's wallet nonces back unspent or signs
//! NTs without their deadline, SC_T closes sub-situation 2 in the block
//! that stored its deadline's header or counts a posted deadline NT's
//! forwarding window from the chain's tip, the BoB keeps only κ_i headers
//! of a small-κ chain whatever its relay cap, attack r16: the BoB names no
//! node duty, a complete CCT's posted slots stay, the driver never
//! re-prices an outbid NT; attack r26: the BoB node sends `settle` with a
//! fixed gas limit; SC_F opens a process whose outcome cannot fit one BoB
//! transaction)
//! must make at least one of these checks fail, while all pass on the real
//! code (the control, which runs without the feature too).
//!
//! Run with `cargo test -p gridledger-xchain --features mutants --test ccdi_mutants`.

use gridledger_core::{Amount, ChainId, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{SignedTransaction, TxStatus};
use gridledger_xchain::bob::{ProofTx, Side};
use gridledger_xchain::ccdi::{self, CcdiApp, CcdiCct, CcdiTerms};
use gridledger_xchain::ccdi_run::{CcdiCounts, CcdiUser, UserBehaviour};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest};
use gridledger_xchain::scbg::{Lock, Settle};

/// The deployment's external chains A and B (its own ids).
fn chains2(m: &BobMbs) -> [ChainId; 2] {
    let c = m.chain_ids();
    [c[0], c[1]]
}

type Check = fn(&mut BobMbs) -> Result<(), String>;

#[allow(unused_mut)]
fn spec(mutation: Option<&str>) -> MbsSpec {
    let mut s = MbsSpec { chains: 2, ccdi: true, kappa: 4, ..MbsSpec::default() };
    #[cfg(feature = "mutants")]
    {
        use gridledger_xchain::ccdi::Mutation;
        s.mutation = match mutation {
            Some("skip-proof") => Some(Mutation::SkipProof),
            Some("no-deadline") => Some(Mutation::NoDeadline),
            Some("forget-claims") => Some(Mutation::ForgetClaims),
            Some("skip-signature") => Some(Mutation::SkipSignature),
            Some("nonce-floor") => Some(Mutation::NonceFloor),
            Some("receiver-nonce-floor") => Some(Mutation::ReceiverNonceFloor),
            Some("release-before-spent") => Some(Mutation::ReleaseBeforeSpent),
            Some("close-at-tip") => Some(Mutation::CloseAtTip),
            Some("nt-without-deadline") => Some(Mutation::NtWithoutDeadline),
            Some("window-from-tip") => Some(Mutation::WindowFromTip),
            Some("keep-kappa") => Some(Mutation::KeepKappa),
            Some("no-duties") => Some(Mutation::NoDuties),
            Some("posted-kept") => Some(Mutation::PostedKept),
            Some("no-repricing") => Some(Mutation::NoRepricing),
            Some("fixed-settle-gas") => Some(Mutation::FixedSettleGas),
            Some("slots-past") => Some(Mutation::SlotsPast),
            _ => None,
        };
    }
    let _ = mutation;
    s
}

fn exec_bob(m: &mut BobMbs, tx: &SignedTransaction) -> TxStatus {
    let h = m.bob.submit(tx).unwrap();
    m.bob.tick().unwrap();
    m.bob.receipt(&h).unwrap().unwrap().status
}

fn exec_chain(m: &mut BobMbs, c: ChainId, tx: &SignedTransaction) -> gridledger_ledger::Receipt {
    let h = m.external_mut(c).unwrap().submit(tx).unwrap();
    m.external_mut(c).unwrap().tick().unwrap();
    m.external(c).unwrap().receipt(&h).unwrap().unwrap()
}

/// Two registered users with items on A and B, a process open, and the
/// first user's lock final on the BoB; returns its CCT.
fn locked(m: &mut BobMbs) -> (Hash32, CcdiTerms, Vec<CcdiUser>, CcdiCct) {
    locked_after(m, 0)
}

/// [`locked`], the lock sent `wait` epochs after the start.
fn locked_after(m: &mut BobMbs, wait: u64) -> (Hash32, CcdiTerms, Vec<CcdiUser>, CcdiCct) {
    let [ca, cb] = chains2(m);
    let mut us = Vec::new();
    for (i, c) in [ca, cb].into_iter().enumerate() {
        let key = dev_key(i);
        let item = m.create_item(c, &key, &format!("m{i}"), 5 + i as u64).unwrap();
        us.push(CcdiUser { key, chain: c, item, behaviour: UserBehaviour::Honest });
    }
    let t = m.ccdi_terms(CcdiApp::Battle, &us, 100, 1, 1);
    let id = m.ccdi_prepare(&t, &us, &mut CcdiCounts::default()).unwrap();
    m.ticks(wait).unwrap();
    let data = m.item(ca, us[0].item).unwrap().data;
    let tx = m.sc_bg_call(ca, &us[0].key, "lock", &Lock { process: id, item: us[0].item, data }).unwrap();
    m.external_mut(ca).unwrap().submit(&tx).unwrap();
    m.ticks(2).unwrap();
    let cct = m.ccdi_cct_for(id, &tx).unwrap().unwrap();
    (id, t, us, cct)
}

/// SC_C refuses a CCT whose receipt proof is forged.
fn forged_cct_proof_refused(m: &mut BobMbs) -> Result<(), String> {
    let (_, _, us, mut cct) = locked(m);
    cct.proof.siblings.reverse();
    cct.proof.siblings.push(Hash32([5; 32]));
    let tx = m.bob_call(&us[0].key, "ccdi_cct", &cct, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Reverted(_) => Ok(()),
        s => Err(format!("a forged receipt proof was accepted: {s:?}")),
    }
}

/// A CCTE from dev key 0 on A to dev key 1 on B, executed on the BoB and
/// past `e_* + κ̄`: its id and record.
fn open_ccte(m: &mut BobMbs) -> Result<(Hash32, gridledger_xchain::CctRecord), String> {
    let [ca, cb] = chains2(m);
    let (p, s, r) = (dev_key(7), dev_key(0), dev_key(1));
    for c in m.chain_ids() {
        m.provide_liquidity(&p, c, 1_000_000).map_err(|e| e.to_string())?;
    }
    m.provide_token_b(&p, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&s, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&r, 1_000_000).map_err(|e| e.to_string())?;
    let req = SwapRequest { sender: s, receiver: r, chain_i: ca, chain_j: cb, x_j: 100, salt: 1 };
    let terms = m.terms(&req).map_err(|e| e.to_string())?;
    let tx = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    m.bob_ok(&tx).map_err(|e| e.to_string())?;
    let id = terms.id();
    let rec = m.cct(&id).ok_or("record")?;
    m.wait_native_window(&rec).map_err(|e| e.to_string())?;
    Ok((id, rec))
}

/// SC_MPV refuses a CCTE proof transaction with a forged Merkle proof.
fn forged_ccte_proof_refused(m: &mut BobMbs) -> Result<(), String> {
    let [ca, _] = chains2(m);
    let s = dev_key(0);
    let (id, rec) = open_ccte(m)?;
    // A transaction that is not the NT, proved with the real NT's proof.
    let nt = m.native_tx(&rec, Side::Sender, &s).map_err(|e| e.to_string())?;
    m.external_mut(ca).unwrap().submit(&nt).map_err(|e| e.to_string())?;
    m.ticks(2).map_err(|e| e.to_string())?;
    let pt = m.proof_for(id, Side::Sender, &nt).map_err(|e| e.to_string())?.ok_or("nt included")?;
    let mut forged: ProofTx = pt;
    forged.proof.siblings.reverse();
    forged.proof.siblings.push(Hash32([3; 32]));
    let tx = m.bob_call(&s, "prove", &forged, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Reverted(_) => Ok(()),
        st => Err(format!("SC_MPV accepted a forged proof: {st:?}")),
    }
}

/// SC_MPV takes as the sender's payment only the nonce its terms name
/// (attack R8-5): a transfer paying the instruction with a later nonce —
/// the sender spent the agreed one on something else first — is refused.
fn later_sender_nonce_refused(m: &mut BobMbs) -> Result<(), String> {
    let [ca, _] = chains2(m);
    let s = dev_key(0);
    let (id, rec) = open_ccte(m)?;
    let filler = m.native_transfer(ca, &s, dev_key(7).address(), 1).map_err(|e| e.to_string())?;
    if filler.tx.nonce != rec.terms.nonce_i {
        return Err(format!("the filler has nonce {}, the terms {}", filler.tx.nonce, rec.terms.nonce_i));
    }
    m.external_mut(ca).unwrap().submit(&filler).map_err(|e| e.to_string())?;
    m.ticks(1).map_err(|e| e.to_string())?;
    let (_, _, to, amount) = rec.instruction(Side::Sender);
    let late = m.native_transfer(ca, &s, to, amount).map_err(|e| e.to_string())?;
    m.external_mut(ca).unwrap().submit(&late).map_err(|e| e.to_string())?;
    m.ticks(2).map_err(|e| e.to_string())?;
    let pt = m.proof_for(id, Side::Sender, &late).map_err(|e| e.to_string())?.ok_or("late transfer included")?;
    let tx = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Reverted(_) => Ok(()),
        st => Err(format!("SC_MPV took nonce {} for the terms' {}: {st:?}", late.tx.nonce, rec.terms.nonce_i)),
    }
}

/// The mirror (attack R10-1): SC_MPV takes as the receiver's payment only
/// the nonce its terms name; a transfer paying the receiver's instruction
/// with a later nonce is refused.
fn later_receiver_nonce_refused(m: &mut BobMbs) -> Result<(), String> {
    let [_, cb] = chains2(m);
    let r = dev_key(1);
    let (id, rec) = open_ccte(m)?;
    let filler = m.native_transfer(cb, &r, dev_key(7).address(), 1).map_err(|e| e.to_string())?;
    if filler.tx.nonce != rec.terms.nonce_j {
        return Err(format!("the filler has nonce {}, the terms {}", filler.tx.nonce, rec.terms.nonce_j));
    }
    m.external_mut(cb).unwrap().submit(&filler).map_err(|e| e.to_string())?;
    m.ticks(1).map_err(|e| e.to_string())?;
    let (_, _, to, amount) = rec.instruction(Side::Receiver);
    let late = m.native_transfer(cb, &r, to, amount).map_err(|e| e.to_string())?;
    m.external_mut(cb).unwrap().submit(&late).map_err(|e| e.to_string())?;
    m.ticks(2).map_err(|e| e.to_string())?;
    let pt = m.proof_for(id, Side::Receiver, &late).map_err(|e| e.to_string())?.ok_or("late transfer included")?;
    let tx = m.bob_call(&r, "prove", &pt, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Reverted(_) => Ok(()),
        st => Err(format!("SC_MPV took nonce {} for the terms' {}: {st:?}", late.tx.nonce, rec.terms.nonce_j)),
    }
}

/// The parties' driver gives a closed CCT's wallet triples back only once
/// their nonces are spent on their chains (attack R11-3): a CCTE agreed
/// through the wallet in which neither side pays closes with both
/// penalised, and each payer's nonce is then still held, or spent (its
/// driver's void landed) — never free while a transfer with it could
/// still land.
fn closed_unpaid_nonce_stays_reserved(m: &mut BobMbs) -> Result<(), String> {
    let (id, rec) = open_ccte(m)?;
    m.wallet.agree(&rec.terms).map_err(|e| e.to_string())?;
    let relayer = m.relayer.clone();
    for _ in 0..200 {
        let now = m.cct(&id).ok_or("record")?;
        if now.complete {
            break;
        }
        if !now.verified
            && m.bob_tip(rec.terms.chain_i) >= rec.deadline_i
            && m.bob_tip(rec.terms.chain_j) >= rec.deadline_j
        {
            let tx = m.bob_call(&relayer, "cct_v", &gridledger_xchain::bob::CctV { cct: id }, Amount::ZERO);
            m.bob_exec(&tx).map_err(|e| e.to_string())?;
        } else {
            m.tick().map_err(|e| e.to_string())?;
        }
    }
    if !m.cct(&id).is_some_and(|r| r.complete) {
        return Err("the CCTE did not close".into());
    }
    let t = &rec.terms;
    for (chain, payer, nonce) in [(t.chain_i, t.sender_i, t.nonce_i), (t.chain_j, t.receiver_j, t.nonce_j)] {
        let held = m.wallet.entry(chain, &payer, nonce).map_err(|e| e.to_string())?.is_some_and(|e| e.id == id);
        let spent = m.external(chain).map_err(|e| e.to_string())?.account(&payer).nonce > nonce;
        if !held && !spent {
            return Err(format!("nonce {nonce} of {payer} on chain {chain} given back unspent"));
        }
    }
    Ok(())
}

/// SC_T takes the closing CCT_V of sub-situation 2 only a whole BoB block
/// after the block that stored the forwarding deadline's header (attack
/// R13-1): the payee relays that header and sends `cct_v` right behind it
/// in one block — refused, and refused again in the next block (the one a
/// `prove` of an NT final at the header has) — and the CCT_V is taken in
/// the block after.
fn closing_waits_a_block_after_the_deadline_header(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_xchain::bob::{CctV, PostNt, Relay};
    let [ca, _] = chains2(m);
    let (s, r) = (dev_key(0), dev_key(1));
    let (id, rec) = open_ccte(m)?;
    // The sender posts an NT its chain never takes (gas price 0), the
    // receiver nothing: after the first CCT_V the sender's side waits in
    // sub-situation 2 until chain A's forwarding deadline.
    let (chain, _, to, amount) = rec.instruction(Side::Sender);
    let body = gridledger_ledger::devnet::transfer(&s, chain, rec.terms.nonce_i, to, Amount(amount), Amount::ZERO);
    let nt = m.external(chain).map_err(|e| e.to_string())?.sign(&s, body);
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt }, Amount::ZERO))
        .map_err(|e| e.to_string())?;
    let [ci, cj] = [rec.terms.chain_i, rec.terms.chain_j];
    while m.bob_tip(ci) < rec.deadline_i || m.bob_tip(cj) < rec.deadline_j {
        m.tick().map_err(|e| e.to_string())?;
    }
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).map_err(|e| e.to_string())?;
    let forward = m.cct(&id).ok_or("record")?.forward_i;
    while m.bob_tip(ca) + 1 < forward {
        m.tick().map_err(|e| e.to_string())?;
    }
    let ext = m.external_mut(ca).map_err(|e| e.to_string())?;
    while ext.height() < forward {
        ext.tick().map_err(|e| e.to_string())?;
    }
    let mut headers = Vec::new();
    for h in m.bob_tip(ca) + 1..=forward {
        headers.push(m.external(ca).unwrap().sealed_header(h).map_err(|e| e.to_string())?.ok_or("header")?);
    }
    m.bob.submit(&m.bob_call(&r, "relay", &Relay { chain: ca, headers }, Amount::ZERO)).map_err(|e| e.to_string())?;
    let close = m.bob_call(&r, "cct_v", &CctV { cct: id }, Amount::ZERO);
    let h = m.bob.submit(&close).map_err(|e| e.to_string())?;
    m.bob.tick().map_err(|e| e.to_string())?;
    let st = m.bob.receipt(&h).map_err(|e| e.to_string())?.ok_or("receipt")?.status;
    if m.bob_tip(ca) != forward || st == TxStatus::Success {
        return Err(format!("closed in the block that stored the deadline's header (tip {}): {st:?}", m.bob_tip(ca)));
    }
    let st = exec_bob(m, &m.bob_call(&r, "cct_v", &CctV { cct: id }, Amount::ZERO));
    if st == TxStatus::Success {
        return Err("closed in the block right after the one that stored the deadline's header".into());
    }
    match exec_bob(m, &m.bob_call(&r, "cct_v", &CctV { cct: id }, Amount::ZERO)) {
        TxStatus::Success => Ok(()),
        st => Err(format!("not closed a whole block after: {st:?}")),
    }
}

/// A penalised party's posted NT never lands afterwards (attack R12-4):
/// the receiver's account on B is empty when it agrees, its NT is posted
/// and cannot land, the CCTE closes with the receiver penalised; then the
/// receiver is paid on B and the payee sends the posted NT at once — the
/// chain must refuse it (its deadline passed).
fn penalised_nt_never_lands(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_xchain::bob::{CctV, PostNt};
    let [ca, cb] = chains2(m);
    let (p, s, r) = (dev_key(7), dev_key(0), dev_key(1));
    for c in m.chain_ids() {
        m.provide_liquidity(&p, c, 1_000_000).map_err(|e| e.to_string())?;
    }
    m.provide_token_b(&p, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&s, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&r, 1_000_000).map_err(|e| e.to_string())?;
    let bal = m.external(cb).map_err(|e| e.to_string())?.account(&r.address()).balance.0;
    let drain = m.native_transfer(cb, &r, dev_key(8).address(), bal - 21_000).map_err(|e| e.to_string())?;
    m.external_mut(cb).unwrap().submit(&drain).map_err(|e| e.to_string())?;
    m.ticks(1).map_err(|e| e.to_string())?;
    let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ca, chain_j: cb, x_j: 100, salt: 2 };
    let terms = m.terms(&req).map_err(|e| e.to_string())?;
    let tx = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    m.bob_ok(&tx).map_err(|e| e.to_string())?;
    let id = terms.id();
    let rec = m.cct(&id).ok_or("record")?;
    m.wait_native_window(&rec).map_err(|e| e.to_string())?;
    let mut nt_r = None;
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).map_err(|e| e.to_string())?;
        let _ = m.external_mut(rec.instruction(side).0).unwrap().submit(&nt);
        let post = m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt: nt.clone() }, Amount::ZERO);
        m.bob_ok(&post).map_err(|e| e.to_string())?;
        nt_r = Some(nt);
    }
    let nt_r = nt_r.ok_or("NT_r")?;
    let relayer = m.relayer.clone();
    for _ in 0..300 {
        let now = m.cct(&id).ok_or("record")?;
        if now.complete {
            break;
        }
        if !now.verified && m.bob_tip(ca) >= rec.deadline_i && m.bob_tip(cb) >= rec.deadline_j {
            m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).map_err(|e| e.to_string())?;
        } else {
            m.tick().map_err(|e| e.to_string())?;
        }
    }
    let end = m.cct(&id).ok_or("record")?;
    if !end.complete || end.receiver != gridledger_xchain::SideState::Penalised {
        return Err(format!("the CCTE did not close with the receiver penalised: {:?}", end.receiver));
    }
    // The receiver is paid on B; the payee sends the posted NT_r at once.
    let fund = m.native_transfer(cb, &p, r.address(), 100_000).map_err(|e| e.to_string())?;
    m.external_mut(cb).unwrap().submit(&fund).map_err(|e| e.to_string())?;
    m.external_mut(cb).unwrap().tick().map_err(|e| e.to_string())?;
    let _ = m.external_mut(cb).unwrap().submit(&nt_r);
    for _ in 0..2 {
        m.external_mut(cb).unwrap().tick().map_err(|e| e.to_string())?;
    }
    match m.external(cb).unwrap().tx_proof(&nt_r.hash()).map_err(|e| e.to_string())? {
        Some((h, _)) => Err(format!("the penalised receiver's NT landed at {h}: it paid twice")),
        None => Ok(()),
    }
}

/// SC_T's forwarding window for a posted NT with a deadline ends where its
/// last landing is final, `valid_until + k` (attack R14-1; k = 0 here):
/// chain A seals three blocks per BoB block, the sender posts its NT and
/// goes offline before sending it, the receiver pays; the first CCT_V runs
/// once both chains reached their deadlines (chain A far past its own),
/// the BoB nodes forward the NT and the sender's side ends proved.
fn posted_nt_window_is_its_deadline(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_xchain::bob::{CctV, PostNt};
    let [ca, cb] = chains2(m);
    let (s, r) = (dev_key(0), dev_key(1));
    let (id, rec) = open_ccte(m)?;
    let mut valid_until = None;
    for (side, key) in [(Side::Sender, &s), (Side::Receiver, &r)] {
        let nt = m.native_tx(&rec, side, key).map_err(|e| e.to_string())?;
        if side == Side::Receiver {
            m.external_mut(cb).unwrap().submit(&nt).map_err(|e| e.to_string())?;
        } else {
            valid_until = nt.tx.kind.valid_until();
        }
        let post = m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt }, Amount::ZERO);
        m.bob_ok(&post).map_err(|e| e.to_string())?;
    }
    let valid_until = valid_until.ok_or("the sender's NT has a deadline")?;
    let relayer = m.relayer.clone();
    for _ in 0..300 {
        let now = m.cct(&id).ok_or("record")?;
        if now.complete {
            break;
        }
        if !now.verified && m.bob_tip(ca) >= rec.deadline_i && m.bob_tip(cb) >= rec.deadline_j {
            m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).map_err(|e| e.to_string())?;
            let fwd = m.cct(&id).ok_or("record")?.forward_i;
            if fwd != valid_until {
                return Err(format!("forwarding deadline {fwd}, the NT's deadline {valid_until}"));
            }
            continue;
        }
        for _ in 0..2 {
            m.external_mut(ca).unwrap().tick().map_err(|e| e.to_string())?;
        }
        m.tick().map_err(|e| e.to_string())?;
    }
    let end = m.cct(&id).ok_or("record")?;
    match end.sender {
        gridledger_xchain::SideState::Proved { .. } if end.complete => Ok(()),
        st => Err(format!("the sender who posted in time ended {st:?}")),
    }
}

/// A CCT that arrives after the deadline (before anyone finished the
/// process) is stored for unlocking only, not in SC_F.
fn late_cct_is_unlock_only(m: &mut BobMbs) -> Result<(), String> {
    // κ · max κ_i = 4: the lock lands 3 epochs after the start, its CCT at the deadline.
    let (id, _, us, cct) = locked_after(m, 3);
    let deadline = m.process(&id).ok_or("process")?.deadline;
    while m.bob.height() < deadline {
        m.tick().unwrap();
    }
    let tx = m.bob_call(&us[0].key, "ccdi_cct", &cct, Amount::ZERO);
    if exec_bob(m, &tx) != TxStatus::Success {
        return Err("the late CCT was refused".into());
    }
    if m.bob_record::<ccdi::StoredItem>(&ccdi::keys::slot(&id, 0)).is_some() {
        return Err("a CCT after the deadline was stored in SC_F".into());
    }
    Ok(())
}

/// A second CCT for the same lock is refused (double claim).
fn double_claim_refused(m: &mut BobMbs) -> Result<(), String> {
    let (_, _, us, cct) = locked(m);
    let tx = m.bob_call(&us[0].key, "ccdi_cct", &cct, Amount::ZERO);
    if exec_bob(m, &tx) != TxStatus::Success {
        return Err("the first CCT was refused".into());
    }
    let tx = m.bob_call(&us[1].key, "ccdi_cct", &cct, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Reverted(_) => Ok(()),
        s => Err(format!("a double claim was accepted: {s:?}")),
    }
}

/// SC_BG refuses a settlement whose threshold signature is over other bytes.
fn forged_settlement_refused(m: &mut BobMbs) -> Result<(), String> {
    let [ca, _] = chains2(m);
    let (id, _, us, _) = locked(m);
    let item = m.item(ca, us[0].item).ok_or("item")?;
    let lock = item.lock.ok_or("locked")?;
    let mut boosted = m.sc_bg_state(ca).len() as u64;
    boosted += 1_000;
    let mut c = ccdi::settlement(m.bob.chain_id(), ca, id, vec![(lock, item.data.clone())]);
    let sig = m.sign_settlement(&c, 0).map_err(|e| e.to_string())?;
    c.entries[0].1.experience = boosted;
    let relayer = m.relayer.clone();
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: c, signature: sig }).unwrap();
    match exec_chain(m, ca, &tx).status {
        TxStatus::Reverted(_) => Ok(()),
        s => Err(format!("a settlement with a signature over other data was accepted: {s:?}")),
    }
}

/// A header stays kept for a whole BoB block once it is final (attack
/// R2-1, with attack R15-3's relay cap of `MAX_RATE_RATIO` on κ = 4): a
/// lock's block relayed first of a full batch, then a claim sent for the
/// next block, which runs after that block's full batch of relays — the
/// header is still kept and the claim mints.
fn kept_header_outlasts_the_next_relays(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_xchain::bob::{relay_per_block, Claim};
    let [ca, _] = chains2(m);
    let u = dev_key(5);
    let cap = relay_per_block(m.spec.kappa, m.spec.finality.confirmations());
    for _ in 0..10 {
        if m.bob_tip(ca) == m.external(ca).map_err(|e| e.to_string())?.height() {
            break;
        }
        m.tick().map_err(|e| e.to_string())?;
    }
    let tpk = m.config.tpk_address(ca);
    let nt = m.native_transfer(ca, &u, tpk, 5_000).map_err(|e| e.to_string())?;
    if exec_chain(m, ca, &nt).status != TxStatus::Success {
        return Err("the lock failed".into());
    }
    let (height, proof) = m.external(ca).map_err(|e| e.to_string())?.tx_proof(&nt.hash()).unwrap().ok_or("lock")?;
    if height != m.bob_tip(ca) + 1 {
        return Err(format!("the lock's block {height} is not the next to relay ({})", m.bob_tip(ca)));
    }
    // Chain A runs 2 · cap blocks ahead of the stored tip: the next two
    // BoB blocks take a full batch each, the lock's header first.
    for _ in 0..2 * cap {
        m.external_mut(ca).map_err(|e| e.to_string())?.tick().map_err(|e| e.to_string())?;
    }
    m.tick().map_err(|e| e.to_string())?;
    let claim = m.bob_call(&u, "claim", &Claim { chain: ca, height, nt, proof }, Amount::ZERO);
    let h = m.bob.submit(&claim).map_err(|e| e.to_string())?;
    m.tick().map_err(|e| e.to_string())?;
    if m.bob_tip(ca) != height + 2 * cap - 1 {
        return Err(format!("two full batches did not end at {} but {}", height + 2 * cap - 1, m.bob_tip(ca)));
    }
    match m.bob.receipt(&h).map_err(|e| e.to_string())?.ok_or("receipt")?.status {
        TxStatus::Success => Ok(()),
        st => Err(format!("the claim after the next block's relays was refused: {st:?}")),
    }
}

/// Attack r16 [3]/[6]: with two BoB blocks' worth of transfers at gas
/// price 3 pending (more than the nodes pay), the nodes' relays still
/// advance the BoB's stored tip of chain A (the duty lane).
fn relays_not_outbid(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_ledger::devnet::transfer;
    let [ca, _] = chains2(m);
    m.ticks(1).map_err(|e| e.to_string())?;
    let start = m.bob_tip(ca);
    let flood = dev_key(5);
    let bob = m.bob.chain_id();
    let per_block = gridledger_ledger::ChainConfig::default().max_block_txs as u64;
    for _ in 0..2 {
        let committed = m.bob.account(&flood.address()).nonce;
        let mut next = m.bob.next_nonce(&flood.address());
        while next - committed < 2 * per_block {
            let tx = m.bob.sign(&flood, transfer(&flood, bob, next, flood.address(), Amount(1), Amount(3)));
            m.bob.submit(&tx).map_err(|e| e.to_string())?;
            next += 1;
        }
        m.tick().map_err(|e| e.to_string())?;
    }
    if m.bob_tip(ca) > start {
        Ok(())
    } else {
        Err(format!("the stored tip of chain A stayed at {start} under price-3 traffic"))
    }
}

/// Attack r16 [4]: a complete CCT leaves no posted slot for the nodes'
/// per-epoch scan.
fn completed_cct_leaves_no_posted_slot(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_ledger::state::contract_key;
    use gridledger_xchain::bob::{keys, BOB_CONTRACT_ID};
    let [ca, cb] = chains2(m);
    let (p, s, r) = (dev_key(7), dev_key(0), dev_key(1));
    for c in m.chain_ids() {
        m.provide_liquidity(&p, c, 1_000_000).map_err(|e| e.to_string())?;
    }
    m.provide_token_b(&p, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&s, 1_000_000).map_err(|e| e.to_string())?;
    m.deposit_token_b(&r, 1_000_000).map_err(|e| e.to_string())?;
    let req = SwapRequest { sender: s, receiver: r, chain_i: ca, chain_j: cb, x_j: 100, salt: 5 };
    let rep = m.swap(&req, gridledger_xchain::mbs::Behaviour::Honest).map_err(|e| e.to_string())?;
    if !m.cct(&rep.cct).is_some_and(|rec| rec.complete) {
        return Err("the swap did not complete".into());
    }
    let prefix = contract_key(BOB_CONTRACT_ID, &keys::posted_prefix());
    match m.bob_contract_state().iter().filter(|(k, _)| k.starts_with(&prefix)).count() {
        0 => Ok(()),
        n => Err(format!("{n} posted slots of a complete CCT left")),
    }
}

/// Attack r16 [1]: the payer's posted NT at price 1, left out of a block
/// full of price-2 transfers, is re-priced by its driver.
fn outbid_nt_is_repriced(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_ledger::devnet::transfer;
    use gridledger_xchain::bob::PostNt;
    let [ca, _] = chains2(m);
    let s = dev_key(0);
    let (id, rec) = open_ccte(m)?;
    let flood = dev_key(5);
    let per_block = gridledger_ledger::ChainConfig::default().max_block_txs as u64;
    {
        let c = m.external_mut(ca).unwrap();
        let from = c.next_nonce(&flood.address());
        for n in from..from + 2 * per_block + 10 {
            let tx = c.sign(&flood, transfer(&flood, ca, n, flood.address(), Amount(1), Amount(2)));
            c.submit(&tx).map_err(|e| e.to_string())?;
        }
    }
    let nt = m.native_tx(&rec, Side::Sender, &s).map_err(|e| e.to_string())?;
    m.external_mut(ca).unwrap().submit(&nt).map_err(|e| e.to_string())?;
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt.clone() }, Amount::ZERO);
    // Two epochs (chain A's blocks take the price-2 transfers; the NT is
    // posted in the first), then the driver's duties.
    m.bob_ok(&post).map_err(|e| e.to_string())?;
    m.tick().map_err(|e| e.to_string())?;
    if m.external(ca).unwrap().tx_proof(&nt.hash()).map_err(|e| e.to_string())?.is_some() {
        return Err("the NT was not outbid".into());
    }
    let c = m.external(ca).unwrap();
    let pending = c.chain().mempool().pending_at(&s.address(), nt.tx.nonce).map(|p| p.tx.gas_price);
    let landed = c.find_by_nonce(&nt.tx.sender, nt.tx.nonce, 0).map_err(|e| e.to_string())?.map(|t| t.tx.gas_price);
    match pending.or(landed) {
        Some(p) if p > nt.tx.gas_price => Ok(()),
        p => Err(format!("the outbid NT was not re-priced: {p:?}")),
    }
}

/// Attack r26 [2]: the BoB node's `settle` of 200 items on one chain (32-byte
/// names; within SC_BG's bounds) pays for its entries and unlocks them all.
fn large_settlement_settles(m: &mut BobMbs) -> Result<(), String> {
    use gridledger_ledger::devnet::call;
    use gridledger_xchain::scbg::{Create, SC_BG_ID};
    const N: u64 = 200;
    let [ca, _] = chains2(m);
    let owner = dev_key(0);
    let process = Hash32([0x62; 32]);
    let send = |m: &mut BobMbs, txs: Vec<(&str, Vec<u8>)>| -> Result<Vec<Vec<u8>>, String> {
        let c = m.external(ca).unwrap();
        let n0 = c.next_nonce(&owner.address());
        let signed: Vec<_> = txs
            .into_iter()
            .enumerate()
            .map(|(k, (method, args))| {
                c.sign(&owner, call(&owner, ca, n0 + k as u64, SC_BG_ID, method, args, Amount::ZERO, 200_000))
            })
            .collect();
        let mut hs = Vec::new();
        for t in &signed {
            hs.push(m.external_mut(ca).unwrap().submit(t).map_err(|e| e.to_string())?);
        }
        m.external_mut(ca).unwrap().tick().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for h in hs {
            let r = m.external(ca).unwrap().receipt(&h).map_err(|e| e.to_string())?.ok_or("not included")?;
            if r.status != TxStatus::Success {
                return Err(format!("{:?}", r.status));
            }
            out.push(r.output);
        }
        Ok(out)
    };
    let creates =
        (0..N).map(|k| ("create", borsh::to_vec(&Create { name: format!("{k:z>32}"), attack: 10 }).unwrap())).collect();
    let items: Vec<u64> =
        send(m, creates)?.into_iter().map(|o| u64::from_le_bytes(o.try_into().unwrap_or_default())).collect();
    let locks = items
        .iter()
        .map(|id| ("lock", borsh::to_vec(&Lock { process, item: *id, data: m.item(ca, *id).unwrap().data }).unwrap()))
        .collect();
    let entries = send(m, locks)?
        .into_iter()
        .zip(&items)
        .map(|(o, id)| (Hash32(o.try_into().unwrap_or_default()), m.item(ca, *id).unwrap().data))
        .collect();
    let s = ccdi::settlement(m.bob.chain_id(), ca, process, entries);
    let signature = m.sign_settlement(&s, 0).map_err(|e| e.to_string())?;
    let relayer = m.relayer.clone();
    let tx = m.settle_call(ca, &relayer, &Settle { settlement: s, signature }).map_err(|e| e.to_string())?;
    let r = m.chain_run(ca, &tx).map_err(|e| e.to_string())?;
    if r.status != TxStatus::Success || items.iter().any(|id| m.item(ca, *id).is_none_or(|i| i.lock.is_some())) {
        return Err(format!("the node's settle of {N} items: {:?} ({} gas)", r.status, r.gas_used));
    }
    Ok(())
}

/// A process one slot above `ccdi::MAX_SLOTS` (whose worst-case outcome
/// would not fit one BoB transaction) is refused at open.
fn oversized_process_refused(m: &mut BobMbs) -> Result<(), String> {
    let [ca, _] = chains2(m);
    let slots = (0..ccdi::MAX_SLOTS + 1)
        .map(|k| {
            let mut a = [0x33u8; 20];
            a[..8].copy_from_slice(&(k as u64).to_le_bytes());
            ccdi::Slot { chain: ca, owner: gridledger_core::Address(a), participant: gridledger_core::Address(a) }
        })
        .collect();
    let t = CcdiTerms { app: CcdiApp::Battle, slots, deposit: 10, kappa: 1, start: m.bob.height() + 5, salt: 7 };
    let relayer = m.relayer.clone();
    let tx = m.bob_call(&relayer, "ccdi_open", &t, Amount::ZERO);
    match exec_bob(m, &tx) {
        TxStatus::Success => Err(format!("a process of {} slots opened", ccdi::MAX_SLOTS + 1)),
        TxStatus::Reverted(_) => Ok(()),
    }
}

const CHECKS: [(&str, Check); 17] = [
    ("oversized process refused", oversized_process_refused),
    ("large settlement settles", large_settlement_settles),
    ("kept header outlasts the next relays", kept_header_outlasts_the_next_relays),
    ("relays not outbid", relays_not_outbid),
    ("posted slots removed", completed_cct_leaves_no_posted_slot),
    ("outbid NT re-priced", outbid_nt_is_repriced),
    ("closed nonce reserved", closed_unpaid_nonce_stays_reserved),
    ("closing waits a block", closing_waits_a_block_after_the_deadline_header),
    ("penalised NT never lands", penalised_nt_never_lands),
    ("posted NT window is its deadline", posted_nt_window_is_its_deadline),
    ("forged CCT proof", forged_cct_proof_refused),
    ("forged CCTE proof", forged_ccte_proof_refused),
    ("later sender nonce", later_sender_nonce_refused),
    ("later receiver nonce", later_receiver_nonce_refused),
    ("late CCT unlock-only", late_cct_is_unlock_only),
    ("double claim", double_claim_refused),
    ("forged settlement", forged_settlement_refused),
];

/// Runs every check on a fresh BoB-MBS with `mutation`; the names of those that failed.
fn failing(mutation: Option<&str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (name, check) in CHECKS {
        let dir = tempfile::tempdir().unwrap();
        let mut m = BobMbs::open(dir.path(), spec(mutation)).unwrap();
        if let Err(e) = check(&mut m) {
            eprintln!("{mutation:?}: {name}: {e}");
            out.push(name);
        }
    }
    out
}

#[test]
fn control_every_check_passes_on_the_real_code() {
    assert_eq!(failing(None), Vec::<&str>::new());
}

#[cfg(feature = "mutants")]
#[test]
fn each_planted_bug_is_caught() {
    for (mutation, caught_by) in [
        ("skip-proof", vec!["forged CCT proof", "forged CCTE proof"]),
        ("no-deadline", vec!["late CCT unlock-only"]),
        ("forget-claims", vec!["double claim"]),
        ("skip-signature", vec!["forged settlement"]),
        ("nonce-floor", vec!["later sender nonce"]),
        ("receiver-nonce-floor", vec!["later receiver nonce"]),
        ("release-before-spent", vec!["closed nonce reserved"]),
        ("close-at-tip", vec!["closing waits a block"]),
        ("nt-without-deadline", vec!["penalised NT never lands", "posted NT window is its deadline"]),
        ("window-from-tip", vec!["penalised NT never lands", "posted NT window is its deadline"]),
        ("keep-kappa", vec!["kept header outlasts the next relays"]),
        ("no-duties", vec!["relays not outbid"]),
        ("posted-kept", vec!["posted slots removed"]),
        ("no-repricing", vec!["outbid NT re-priced"]),
        ("fixed-settle-gas", vec!["large settlement settles"]),
        ("slots-past", vec!["oversized process refused"]),
    ] {
        let failed = failing(Some(mutation));
        assert_eq!(failed, caught_by, "mutant {mutation} must be caught by exactly its checks");
    }
}
