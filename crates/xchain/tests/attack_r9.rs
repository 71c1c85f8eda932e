//! Ninth attack round on the cross-chain protocols (issue 14): the
//! round-8 fixes (`find_payment` skipping transfers a CCT cannot use, the
//! BoB node forwarding and proving posted NTs each tick, one scan of the
//! forwarding slots per tick) and the paths around them.
//!
//! Findings [1]–[4] asserted what a careful user would expect and failed
//! on the code they were written against; they are fixed (the BoB node's
//! `BobMbs::tick`: own refusals skipped, forwarding capped per tick and
//! served in turn, proves refused for good never sent, fee-bumped re-sends
//! proved). The tests after them pin the fixes down.

mod common;

use common::*;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::{SignedTransaction, TxKind, TxStatus};
use gridledger_xchain::bob::{CctTerms, CctV, PostNt, ProofTx};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, FORWARDING_PER_TICK};
use gridledger_xchain::{CctRecord, Side, SideState};

/// The relayer's `prove`/`prove_relayed` calls for `id` in BoB blocks
/// `from..=tip`, with their receipts' status.
fn relayer_proves(m: &BobMbs, id: Hash32, from: u64) -> Vec<TxStatus> {
    let relayer = m.relayer.address();
    let mut out = Vec::new();
    for h in from..=m.bob.height() {
        let Some(b) = m.bob.chain().block(h).unwrap() else { continue };
        for tx in &b.txs {
            if tx.sender() != relayer {
                continue;
            }
            let TxKind::Call { method, args, .. } = &tx.tx.kind else { continue };
            let cct = match method.as_str() {
                "prove" => borsh::from_slice::<ProofTx>(args).map(|p| p.cct).ok(),
                "prove_relayed" => {
                    borsh::from_slice::<gridledger_xchain::bob::ProveRelayed>(args).map(|p| p.pt.cct).ok()
                }
                _ => None,
            };
            if cct == Some(id) {
                out.push(m.bob.receipt(&tx.hash()).unwrap().expect("receipt").status);
            }
        }
    }
    out
}

/// The number of the relayer's transactions waiting in the BoB's mempool.
fn relayer_queue(m: &BobMbs) -> u64 {
    use gridledger_ledger::state::StateRead;
    let a = m.relayer.address();
    m.bob.next_nonce(&a) - m.bob.chain().state().account(&a).nonce
}

/// `n` exchanges of `x_j` agreed at once between the sender and the
/// receiver (salts `salt..salt + n`), expiring 64 blocks later than
/// usual; exchange `k` names the receiver's nonce `nonce_j + k` and, if
/// `sender_too`, the sender's `nonce_i + k` (the terms name both exactly,
/// so each side pays each CCT with its own nonce).
fn many_terms(m: &BobMbs, n: u64, x_j: u128, salt: u64, sender_too: bool) -> Vec<CctTerms> {
    let [ci, cj] = chains2(m);
    (0..n)
        .map(|k| {
            // Expiring `PRICE_WINDOW` blocks ahead, the most SC_T takes
            // (attack R11-5): they are stored within a few blocks.
            let mut t = m.try_terms(&request_between(ci, cj, x_j, salt + k)).unwrap();
            t.nonce_j += k;
            if sender_too {
                t.nonce_i += k;
            }
            t
        })
        .collect()
}

/// Stores every CCT of `terms` on the BoB; their records.
fn store_all(m: &mut BobMbs, terms: &[CctTerms]) -> Vec<CctRecord> {
    let (s, r) = (sender(), receiver());
    for t in terms {
        m.bob.submit(&m.cct_tx(&s, &r, t.clone())).unwrap();
    }
    while terms.iter().any(|t| m.cct(&t.id()).is_none()) {
        m.tick().unwrap();
    }
    terms.iter().map(|t| m.cct(&t.id()).expect("CCT executed")).collect()
}

/// Ticks until every side in `sides` of every CCT of `terms` has its NT
/// posted on the BoB.
fn wait_posted(m: &mut BobMbs, terms: &[CctTerms], sides: &[Side]) {
    let posted = |m: &BobMbs, t: &CctTerms, side: Side| {
        m.bob_record::<SignedTransaction>(&gridledger_xchain::bob::keys::posted(&t.id(), side)).is_some()
    };
    while !terms.iter().all(|t| sides.iter().all(|&side| posted(m, t, side))) {
        m.tick().unwrap();
    }
}

/// Lets both deadlines of every record pass; a stranger then sends every
/// CCT's CCT_V (sub-situation 2 for every side not proved).
fn cct_v_after_deadlines(m: &mut BobMbs, recs: &[CctRecord], terms: &[CctTerms]) {
    let [ci, cj] = chains2(m);
    let last = recs.iter().map(|r| r.deadline_i.max(r.deadline_j)).max().unwrap();
    while m.bob_tip(ci) < last || m.bob_tip(cj) < last {
        m.tick().unwrap();
    }
    let a = dev_key(2);
    for t in terms {
        m.bob.submit(&m.bob_call(&a, "cct_v", &CctV { cct: t.id() }, Amount::ZERO)).unwrap();
    }
}

// ------------------------------------------------------------------- [1]

/// The BoB node's forwarding duty (attack R8-3's fix, `BobMbs::tick`)
/// proves only the *posted* NT's bytes. A payer whose wallet re-signed the
/// same payment with a higher fee (same nonce, same payee and amount: what
/// the contract itself calls "the payment, not fraud", attack R4-1) and
/// then went offline, trusting the BoB nodes as R8-3 lets it, has paid
/// `x_i` on chain i inside the window; the node never proves that
/// transfer (it re-sends the posted one, which the chain refuses: its
/// nonce is spent), nobody can prove fraud against it (`NotFraud`: the
/// transaction with NT's nonce pays the instruction), and the closing
/// CCT_V penalises the payer: it pays `x_i` to the receiver *and* loses
/// `x_B` of its deposit to it.
///
/// Expected: the node proves the payment that landed (`find_payment`
/// finds it) and the sender ends `Proved`.
/// Observed: `Penalised`.
///
/// Suggested fix: in the forwarding duty, when the posted NT is not on
/// its chain, look for a transfer that pays the side's instruction with
/// the posted NT's nonce (or `find_payment`) and prove that one.
#[test]
fn the_bob_node_proves_a_fee_bumped_resend_of_the_posted_nt() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 41));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    // The sender signs its NT (gas price 1) and posts it; the chain drops that copy.
    let s = sender();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    // Its wallet re-signs the same payment at gas price 2; that one lands.
    let (_, _, to, amount) = rec.instruction(Side::Sender);
    let c = m.external(ci).unwrap();
    let bumped = c.sign(&s, transfer(&s, ci, nt_s.tx.nonce, to, Amount(amount), Amount(2)));
    assert!(rec.pays_instruction(Side::Sender, &bumped), "the re-send pays IN_s");
    let paid_before = m.external(ci).unwrap().account(&s.address()).balance.0;
    m.external_mut(ci).unwrap().submit(&bumped).unwrap();
    m.tick().unwrap();
    let (height, _) = m.external(ci).unwrap().tx_proof(&bumped.hash()).unwrap().expect("the re-send landed");
    assert!(height > rec.e_i + m.config.kappa_bar && height < rec.deadline_i, "inside the CCT's window");
    let paid = paid_before - m.external(ci).unwrap().account(&s.address()).balance.0;
    assert!(paid >= rec.x_i, "the sender paid x_i on chain i");
    // From here on only BoB nodes act (CCT_V, then the node's duties).
    let free_before = m.deposit(&s.address()).free;
    let end = settle_within(&mut m, id, 400);
    assert!(end.complete, "the CCT ended");
    assert!(
        matches!(end.sender, SideState::Proved { .. }),
        "the sender paid {} on chain i (re-send at height {height}, deadline {}) and ended {:?}; \
         its deposit went {free_before} -> {} (x_B = {})",
        rec.x_i,
        rec.deadline_i,
        end.sender,
        m.deposit(&s.address()).free,
        rec.x_b
    );
}

// ------------------------------------------------------------------- [2]

/// The forwarding duty re-sends a `prove` as soon as the previous one is
/// in a block, whether it succeeded or was refused for a reason that can
/// never change. A posted NT that landed at or below `e_i + κ̄` (its payer
/// sent it right after the CCT) is `TooEarly` for good; the BoB node
/// sends a reverted `prove` for it in every BoB block until the
/// forwarding deadline closes the CCT — κ̄ + κ_i of them per side, each
/// paid by the node — for one `post_nt` of the payer. Any number of CCTs
/// (between two accounts of one attacker, who pays its own penalties to
/// itself) multiply it.
///
/// Expected: a `prove` SC_MPV refused for a lasting reason (`TooEarly`,
/// `NtAlreadyUsed`, `NtPostedForOtherCct`, `BeforeCct`) is not sent again
/// (or the node checks them before sending): at most a couple per side.
/// Observed: one reverted `prove` a block until the CCT closes.
#[test]
fn the_bob_node_does_not_resend_a_prove_refused_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 42));
    let from = m.bob.height();
    // The sender pays at once (its NT lands at or below e_i + κ̄) and posts it.
    let s = sender();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    m.external_mut(ci).unwrap().submit(&nt_s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let (height, _) = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().expect("landed");
    assert!(height <= rec.e_i + m.config.kappa_bar, "the NT is TooEarly for this CCT (height {height})");
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let end = settle_within(&mut m, id, 400);
    assert!(end.complete && end.sender == SideState::Penalised, "the sender's early NT never proves: {end:?}");
    let proves = relayer_proves(&m, id, from);
    let reverted = proves.iter().filter(|s| **s != TxStatus::Success).count();
    assert!(
        reverted <= 2,
        "the BoB node sent {} proves of a TooEarly NT, {reverted} reverted (first: {:?})",
        proves.len(),
        proves.first()
    );
}

// ------------------------------------------------------------------- [3]

/// The forwarding duty sends one `prove` for every posted, pending side
/// of every CCT in sub-situation 2 in the same tick, with no cap — unlike
/// the closing CCT_Vs (`CLOSING_PER_TICK`, attack R6-1) — and (finding 2)
/// re-sends each refused one every block. All of them come from the one
/// relayer key, whose relays and closing CCT_Vs queue behind them in
/// nonce order; a BoB block takes 300 transactions. With a few hundred
/// such sides the node's relays wait several blocks (the BoB's view of
/// every chain lags, and with it every CCT's deadline); at 4,096 pending
/// transactions the BoB mempool refuses the relayer's next one
/// (`SenderQueueFull`), `BobMbs::tick` returns that error before sealing
/// the BoB's block, and every later tick fails the same way: the BoB
/// never seals a block again. The attacker needs about 2,050 CCTs between
/// two of its own accounts, each with both NTs posted and landed too
/// early; it pays the penalties to itself.
///
/// This test runs 400 such CCTs (800 sides): after their CCT_Vs, one tick
/// of the node sends all 800 proves at once.
///
/// Expected: the node never queues more than a BoB block's worth of its
/// own transactions (its duties are capped per tick, as the closing
/// CCT_Vs are), so its relays keep getting into the next block.
/// Observed: 400+ of the relayer's transactions wait in the mempool.
#[test]
fn the_forwarding_duty_is_capped_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa: 32, ..MbsSpec::default() });
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    const N: u64 = 400;
    let x_j = 10u128;
    let x_i = m.quote(x_j, ci, cj).unwrap();
    // N exchanges agreed at once between the attacker's two accounts.
    let terms = many_terms(&m, N, x_j, 9_000, true);
    let (fi, fj) = (terms[0].nonce_i, terms[0].nonce_j);
    // Both sides pay every CCT at once, before the CCTs execute (TooEarly for good).
    let mut nts: Vec<(SignedTransaction, SignedTransaction)> = Vec::new();
    for k in 0..N {
        let t = &terms[k as usize];
        let nt_s = m.external(ci).unwrap().sign(&s, transfer(&s, ci, fi + k, t.receiver_i, Amount(x_i), Amount(1)));
        let nt_r = m.external(cj).unwrap().sign(&r, transfer(&r, cj, fj + k, t.sender_j, Amount(x_j), Amount(1)));
        m.external_mut(ci).unwrap().submit(&nt_s).unwrap();
        m.external_mut(cj).unwrap().submit(&nt_r).unwrap();
        nts.push((nt_s, nt_r));
    }
    while nts.iter().any(|(a, b)| {
        m.external(ci).unwrap().tx_proof(&a.hash()).unwrap().is_none()
            || m.external(cj).unwrap().tx_proof(&b.hash()).unwrap().is_none()
    }) {
        m.tick().unwrap();
    }
    let recs = store_all(&mut m, &terms);
    assert!(recs.iter().all(|r| r.x_i == x_i));
    for (k, t) in terms.iter().enumerate() {
        let id = t.id();
        let (nt_s, nt_r) = &nts[k];
        m.bob
            .submit(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO))
            .unwrap();
        m.bob
            .submit(&m.bob_call(
                &r,
                "post_nt",
                &PostNt { cct: id, side: Side::Receiver, nt: nt_r.clone() },
                Amount::ZERO,
            ))
            .unwrap();
    }
    wait_posted(&mut m, &terms, &[Side::Sender, Side::Receiver]);
    // Both deadlines pass; the attacker sends every CCT_V itself.
    cct_v_after_deadlines(&mut m, &recs, &terms);
    // Each tick: how many transactions the node sends, and how many wait after its block.
    let (mut most_sent, mut most_queued, mut lag) = (0, 0, 0);
    for _ in 0..6 {
        let before = m.bob.next_nonce(&m.relayer.address());
        m.tick().unwrap();
        most_sent = most_sent.max(m.bob.next_nonce(&m.relayer.address()) - before);
        most_queued = most_queued.max(relayer_queue(&m));
        lag = lag.max(m.external(ci).unwrap().height() - m.bob_tip(ci));
    }
    assert!(terms.iter().all(|t| m.cct(&t.id()).unwrap().verified), "every CCT is in sub-situation 2");
    assert!(
        most_sent <= 300 && most_queued <= 300,
        "the BoB node sent up to {most_sent} transactions in one tick and left up to {most_queued} \
         waiting after its block (a BoB block takes 300; the BoB's view of chain i fell up to {lag} \
         blocks behind); at 4096 its next submit is refused and BobMbs::tick fails for good"
    );
}

// ------------------------------------------------------------------- [4]

/// `BobMbs::tick` — the BoB node's epoch: external blocks, relays, closing
/// CCT_Vs, forwarding, then the BoB's own block — returns the first
/// mempool refusal of one of the node's own transactions (`?` on
/// `bob.submit`), *before* the BoB seals its block. Any BoB user can make
/// the mempool refuse it: two accounts queue 60 KB calls at the minimum
/// gas price until the mempool's byte budget is spent (the relayer's
/// transactions, at the same price, evict nothing). The relayer's next
/// `relay` is refused `MempoolFull`, `tick` fails, the BoB seals no block,
/// so the mempool never drains, and every later tick fails the same way:
/// the BoB is frozen for good (the external chains go on). The attacker
/// pays nothing: none of its transactions is ever included.
///
/// The same `?` follows every submission of the node's duties: the
/// closing CCT_Vs, the forwarding proves (attack R8-3's fix, see finding
/// 3: its own queue reaching 4,096 fails it the same way) and CCDI's
/// late-lock settlements on an *external* chain (`ccdi_late_lock_duties`:
/// a full mempool there stops the BoB too).
///
/// Expected: a refused submission of the node's own transaction is
/// skipped (retried next epoch) and the BoB keeps sealing blocks, which
/// drain the attacker's calls.
/// Observed: `tick` fails with `MempoolFull` and the BoB's height stops.
#[test]
fn a_full_mempool_does_not_freeze_the_bob() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let before = m.bob.height();
    // Large calls first, then ever smaller ones, until not even the
    // smallest fits: what is left of the byte budget is below any relay.
    let senders = [dev_key(2), dev_key(3), dev_key(4), dev_key(5)];
    let mut queued = 0usize;
    for size in [60_000usize, 16_000, 4_000, 1_000, 250, 1] {
        let junk = vec![0u8; size];
        'size: loop {
            for k in &senders {
                let tx = m.bob_call(k, "deposit", &junk, Amount(1));
                match m.bob.submit(&tx) {
                    Ok(_) => {
                        queued += 1;
                        continue 'size;
                    }
                    Err(gridledger_ledger::SubmitError::SenderQueueFull { .. }) => continue,
                    Err(gridledger_ledger::SubmitError::MempoolFull { .. }) => break 'size,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }
            panic!("every sender's queue is full");
        }
    }
    assert!(queued > 4_000, "{queued} calls queued");
    let mut failures = Vec::new();
    for _ in 0..3 {
        if let Err(e) = m.tick() {
            failures.push(e.to_string());
        }
    }
    assert!(
        failures.is_empty() && m.bob.height() > before,
        "BobMbs::tick failed {} times ({:?}); BoB height {before} -> {}",
        failures.len(),
        failures.first(),
        m.bob.height()
    );
}

// ------------------------------------------------------- fixes, pinned

/// Fills the BoB's mempool with cheap calls of four users, as finding [4]
/// does: large ones first, then ever smaller ones until none fits.
fn flood(m: &mut BobMbs) -> usize {
    let senders = [dev_key(2), dev_key(3), dev_key(4), dev_key(5)];
    let mut queued = 0usize;
    for size in [60_000usize, 16_000, 4_000, 1_000, 250, 1] {
        let junk = vec![0u8; size];
        'size: loop {
            for k in &senders {
                let tx = m.bob_call(k, "deposit", &junk, Amount(1));
                match m.bob.submit(&tx) {
                    Ok(_) => {
                        queued += 1;
                        continue 'size;
                    }
                    Err(gridledger_ledger::SubmitError::SenderQueueFull { .. }) => continue,
                    Err(gridledger_ledger::SubmitError::MempoolFull { .. }) => break 'size,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }
            panic!("every sender's queue is full");
        }
    }
    queued
}

/// Fix of [4], the priority half: in a mempool full of calls at the
/// minimum gas price the node's relays (at `NODE_GAS_PRICE`) take the
/// place of the cheapest ones, so the BoB's view of every chain follows
/// in the same tick: no own submission is refused.
#[test]
fn the_nodes_relays_take_the_place_of_cheap_calls_in_a_full_mempool() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    assert!(flood(&mut m) > 4_000);
    let chains = m.chain_ids();
    let before: Vec<u64> = chains.iter().map(|c| m.bob_tip(*c)).collect();
    m.tick().unwrap();
    assert_eq!(m.own_refused, 0, "the node's relays were refused");
    for (c, b) in chains.iter().zip(before) {
        assert!(m.bob_tip(*c) > b, "the BoB's view of chain {c} stayed at {b}");
    }
}

/// Fix of [3], the cap itself: 300 CCTs whose receivers' NTs landed in
/// the window are in sub-situation 2 at once (the senders withheld), so
/// 300 proves fall due in one tick. The node sends at most
/// `FORWARDING_PER_TICK` (128) a tick plus its relays, half a BoB block,
/// and, served in turn, every receiver ends `Proved` within a few ticks.
#[test]
fn the_forwarding_duty_serves_every_due_prove_within_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa: 32, ..MbsSpec::default() });
    let [_, cj] = chains2(&m);
    let r = receiver();
    const N: u64 = 300;
    // The receiver pays each CCT with its own nonce (the terms name it exactly).
    let terms = many_terms(&m, N, 10, 20_000, false);
    let fj = terms[0].nonce_j;
    let recs = store_all(&mut m, &terms);
    for rec in &recs {
        m.wait_native_window(rec).unwrap();
    }
    // Each receiver pays on chain j inside the window and posts its NT.
    let mut nts = Vec::new();
    for (k, t) in terms.iter().enumerate() {
        let nt = m.external(cj).unwrap().sign(&r, transfer(&r, cj, fj + k as u64, t.sender_j, Amount(10), Amount(1)));
        m.external_mut(cj).unwrap().submit(&nt).unwrap();
        let post =
            m.bob_call(&r, "post_nt", &PostNt { cct: t.id(), side: Side::Receiver, nt: nt.clone() }, Amount::ZERO);
        m.bob.submit(&post).unwrap();
        nts.push(nt);
    }
    wait_posted(&mut m, &terms, &[Side::Receiver]);
    while nts.iter().any(|nt| m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().is_none()) {
        m.tick().unwrap();
    }
    for (rec, nt) in recs.iter().zip(&nts) {
        let (h, _) = m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
        assert!(h > rec.e_j + m.config.kappa_bar && h < rec.deadline_j, "NT inside the window");
    }
    // The deadlines pass; CCT_V opens sub-situation 2 for every receiver.
    cct_v_after_deadlines(&mut m, &recs, &terms);
    m.bob.tick().unwrap();
    assert!(terms.iter().all(|t| m.cct(&t.id()).unwrap().verified), "every CCT in sub-situation 2");
    let mut most = 0;
    for _ in 0..8 {
        let before = m.bob.next_nonce(&m.relayer.address());
        m.tick().unwrap();
        most = most.max(m.bob.next_nonce(&m.relayer.address()) - before);
    }
    assert!(most > 64, "the proves fell due together (the node sent at most {most} in a tick)");
    assert!(
        most <= 150,
        "the node sent {most} transactions in one tick (cap {FORWARDING_PER_TICK} proves; a BoB block takes 300)"
    );
    for t in &terms {
        let rec = m.cct(&t.id()).unwrap();
        assert!(
            matches!(rec.receiver, SideState::Proved { .. }),
            "a receiver not served within 8 ticks: {:?}",
            rec.receiver
        );
    }
}

/// Attack R13-1, the node's side: a `prove` the forwarding duty puts off
/// (its budget is spent while `NODE_QUEUE_MAX` of the node's own
/// transactions wait: here 256 of its deposits queued before each tick)
/// is not followed by the node's own closing CCT_V of that CCT. The
/// receivers paid in their windows and posted; their senders withheld.
/// While the node's queue stays full its budget stays 0 past every
/// forwarding deadline; once it drains, every receiver ends `Proved` —
/// none is penalised by the node's CCT_V for a payment it holds the proof
/// of.
#[test]
fn the_node_sends_no_closing_cct_v_for_a_prove_it_put_off() {
    use gridledger_xchain::mbs::NODE_QUEUE_MAX;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec { kappa: 32, ..MbsSpec::default() });
    let [_, cj] = chains2(&m);
    let r = receiver();
    const N: u64 = 8;
    let terms = many_terms(&m, N, 10, 31_000, false);
    let fj = terms[0].nonce_j;
    let recs = store_all(&mut m, &terms);
    for rec in &recs {
        m.wait_native_window(rec).unwrap();
    }
    let mut nts = Vec::new();
    for (k, t) in terms.iter().enumerate() {
        let nt = m.external(cj).unwrap().sign(&r, transfer(&r, cj, fj + k as u64, t.sender_j, Amount(10), Amount(1)));
        m.external_mut(cj).unwrap().submit(&nt).unwrap();
        let post =
            m.bob_call(&r, "post_nt", &PostNt { cct: t.id(), side: Side::Receiver, nt: nt.clone() }, Amount::ZERO);
        m.bob.submit(&post).unwrap();
        nts.push(nt);
    }
    wait_posted(&mut m, &terms, &[Side::Receiver]);
    while nts.iter().any(|nt| m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().is_none()) {
        m.tick().unwrap();
    }
    cct_v_after_deadlines(&mut m, &recs, &terms);
    m.bob.tick().unwrap();
    let verified: Vec<CctRecord> = terms.iter().map(|t| m.cct(&t.id()).unwrap()).collect();
    assert!(verified.iter().all(|rec| rec.verified && rec.receiver == SideState::Pending));
    let last = verified.iter().map(|rec| rec.forward_j).max().unwrap();
    // The node's own deposits fill its queue before each tick, past every
    // forwarding deadline and the block SC_T waits after it.
    let relayer = m.relayer.clone();
    let mut filled = 0;
    while m.bob_tip(cj) < last + 3 {
        for _ in 0..NODE_QUEUE_MAX {
            m.bob.submit(&m.bob_call(&relayer, "deposit", &(), Amount(1))).unwrap();
        }
        m.tick().unwrap();
        filled += 1;
        assert!(filled < 100, "the BoB's view of chain j stalled at {}", m.bob_tip(cj));
    }
    assert!(
        terms.iter().all(|t| m.cct(&t.id()).unwrap().receiver == SideState::Pending),
        "a receiver settled while the node's queue was full"
    );
    for _ in 0..8 {
        m.tick().unwrap();
    }
    for t in &terms {
        let rec = m.cct(&t.id()).unwrap();
        assert!(rec.complete);
        assert!(matches!(rec.receiver, SideState::Proved { .. }), "paid in the window, then {:?}", rec.receiver);
    }
}
