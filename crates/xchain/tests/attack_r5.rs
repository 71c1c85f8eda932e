//! Fifth attack round on the cross-chain protocols (issue 14): the round-4
//! fixes (per-deployment chain ids, the BoB's view of the external chains)
//! and what is around them.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r5 -- --ignored`.

mod common;

use common::*;
use gridledger_core::{Amount, Height};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::SignedTransaction;
use gridledger_xchain::bob::{CctV, PostNt, ProofTx};
use gridledger_xchain::embedded::EmbeddedChain;
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::{CctRecord, Side, SideState};

// ------------------------------------------------------------------ R5-1

/// The chain holding id `id` in `m` (its BoB or one of its external chains).
fn chain_with_id(m: &mut BobMbs, id: u32) -> &mut EmbeddedChain {
    if m.bob.chain_id() == id {
        &mut m.bob
    } else {
        m.external_mut(id).expect("a chain of this deployment")
    }
}

/// Two deployments still share a chain id, by the birthday bound.
///
/// Round 4 made chain ids per deployment: `chain_base()` draws the BoB's id
/// from `genesis_time` and `committee_seed` in `[2^16, 2^31)` and the
/// external chains take the next ids. A deployment of N external chains
/// occupies N + 1 consecutive ids of a 31-bit space, so two deployments
/// overlap with probability about (2N + 1) / 2^31: among ~60,000 default
/// (N = 2) development deployments of one committee, a few pairs collide
/// (with N = 64, as `xchain up --chains 64` allows, ~5,000 deployments
/// suffice). The collision need not be role for role: deployment B's BoB
/// can carry deployment A's external chain 0's id. A transaction's
/// signature binds only its chain id and the development accounts are the
/// same keys everywhere, so a transfer signed for one deployment pays again
/// on the other (the attack R4-5 the fix was meant to close). Anyone who
/// can pick a genesis time (`--genesis-time`) can also grind a collision
/// with a given deployment in ~2^31 / (2N + 1) cheap ChaCha20 draws.
///
/// Expected: no transaction signed for one deployment executes on another.
/// Observed: the search below finds two genesis times whose id ranges
/// overlap, and a transfer signed on the first deployment's chain lands on
/// the second's.
///
/// Suggested fix: bind the deployment in what a transaction's signature
/// covers (the signed digest names the chain's genesis hash, as CCT terms
/// already name `deployment`), or derive 64-bit chain ids from the genesis
/// hash; a 31-bit random id only makes a collision rare.
#[test]
fn two_deployments_collide_on_a_chain_id_and_a_transfer_replays() {
    use std::collections::HashMap;
    let chains = MbsSpec::default().chains as u32;
    let spec = |t: u64| MbsSpec { genesis_time: t, committee_seed: 1, ..MbsSpec::default() };
    // id -> genesis time of the deployment that uses it.
    let mut used: HashMap<u32, u64> = HashMap::new();
    let mut pair = None;
    'search: for t in 1..200_000u64 {
        let base = spec(t).chain_base();
        for id in base..=base + chains {
            if let Some(&other) = used.get(&id) {
                pair = Some((other, t, id));
                break 'search;
            }
        }
        for id in base..=base + chains {
            used.insert(id, t);
        }
    }
    let (ta, tb, id) = pair.expect("no two of 200,000 deployments share a chain id");
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = BobMbs::open(da.path(), spec(ta)).unwrap();
    let mut b = BobMbs::open(db.path(), spec(tb)).unwrap();
    assert_ne!(gridledger_xchain::mbs::deployment(&a.spec), gridledger_xchain::mbs::deployment(&b.spec));
    // dev 0 pays dev 3 on deployment A's chain `id`.
    let payer = dev_key(0);
    let ca = chain_with_id(&mut a, id);
    // Fixed: a transaction is signed in its chain's signing domain (the
    // chain's genesis hash), as every driver and wallet of a deployment signs.
    let nt = transfer(&payer, id, ca.next_nonce(&payer.address()), dev_key(3).address(), Amount(777), Amount(1));
    let nt = ca.sign(&payer, nt);
    ca.submit(&nt).unwrap();
    a.tick().unwrap();
    assert!(chain_with_id(&mut a, id).tx_proof(&nt.hash()).unwrap().is_some(), "paid on deployment A");
    // Anyone replays it on deployment B's chain with the same id.
    let before = chain_with_id(&mut b, id).account(&dev_key(3).address()).balance;
    let admitted = chain_with_id(&mut b, id).submit(&nt);
    assert!(
        matches!(admitted, Err(gridledger_ledger::SubmitError::BadSignature)),
        "deployment B refuses A's transfer for its signature: {admitted:?}"
    );
    let admitted = admitted.is_ok();
    b.tick().unwrap();
    let after = chain_with_id(&mut b, id).account(&dev_key(3).address()).balance;
    assert!(
        !admitted && after == before,
        "genesis times {ta} and {tb} share chain id {id}: the transfer signed for deployment A paid {} again on deployment B",
        after.0 - before.0
    );
}

// ------------------------------------------------------------------ R5-2

/// Ticks `m` until `nt` is in a block of its chain that the BoB holds as
/// final; returns the block's height and the transaction's Merkle proof.
fn landed(m: &mut BobMbs, nt: &SignedTransaction) -> (Height, gridledger_core::merkle::MerkleProof) {
    let chain = nt.tx.chain_id;
    for _ in 0..200 {
        if let Some(p) = m.external(chain).unwrap().tx_proof(&nt.hash()).unwrap() {
            m.wait_final(chain, p.0).unwrap();
            return p;
        }
        m.tick().unwrap();
    }
    panic!("transaction {} never landed", nt.hash());
}

/// Drives a CCT to its end as an honest BoB node does: CCT_V after the
/// deadlines and, in sub-situation 2, a proof of each posted NT once it is
/// final on its chain at the BoB.
fn settle(m: &mut BobMbs, id: gridledger_core::Hash32) -> CctRecord {
    for _ in 0..300 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            return rec;
        }
        if rec.verified {
            for side in [Side::Sender, Side::Receiver] {
                if rec.state(side) != SideState::Pending {
                    continue;
                }
                let Some(nt) = m.bob_record::<SignedTransaction>(&gridledger_xchain::bob::keys::posted(&id, side))
                else {
                    continue;
                };
                let Some(pt) = m.proof_for(id, side, &nt).unwrap() else { continue };
                if m.bob_tip(nt.tx.chain_id) >= pt.height + m.spec.finality.confirmations() as u64 {
                    let relayer = m.relayer.clone();
                    let _ = m.bob_exec(&m.prove_call(&relayer, &pt).unwrap()).unwrap();
                }
            }
        }
        if !rec.verified
            && m.bob_tip(rec.terms.chain_i) >= rec.deadline_i
            && m.bob_tip(rec.terms.chain_j) >= rec.deadline_j
        {
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
        } else {
            m.tick().unwrap();
        }
    }
    m.cct(&id).unwrap()
}

/// A relay catching up shrinks an honest payer's proof window from κ_i − k
/// BoB blocks to two, and the payer who paid is penalised.
///
/// Round 4 added `check_view`: parties agree on a CCT only while the BoB's
/// view of both chains is current. The view can fall behind after the CCT
/// too: chain j's relayer is down for a while (or the BoB is slow) while
/// chain j keeps producing blocks. The receiver pays IN_r at once, posts it
/// to the BoB, and waits for its block to be final at the BoB. When the
/// relay resumes, the BoB takes `relay_per_block = (κ_i − k)/2` headers of
/// chain j per block, so the NT's header is final at the BoB in one block
/// and gone from the κ_i kept headers two blocks later. `prove` only
/// checks against kept headers (`final_header`), with no accumulator path
/// as `refund_lock` and `ccdi_late_lock` have, so a receiver that needs two
/// BoB blocks to react (two blocks led by Byzantine BoB leaders omitting
/// its `prove`, or a 30-second outage) can never prove the payment it
/// made. Sub-situation 2 cannot help: the posted NT is on chain j already,
/// so the BoB node's forward never lands and the second-stage CCT_V
/// penalises the receiver. With the relay current, the same receiver had
/// κ_i − k = 16 BoB blocks.
///
/// Expected: a payer whose NT is on its chain in the window is never
/// penalised (its side ends Proved). Observed: `Penalised` — the receiver
/// paid x_j on chain j *and* lost x_B of its deposit to the sender.
///
/// Suggested fix: let `prove` (payer and BoB node alike) take an MMR path
/// to the NT's header once it left the κ_i window, as `refund_lock` does;
/// or keep a header until every CCT whose window covers it is closed.
#[test]
fn a_catching_up_relay_gets_the_receiver_who_paid_penalised() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (id, rec) = open_cct(&mut m, &request(1_000, 1));
    m.wait_native_window(&rec).unwrap();
    let (s, r) = (sender(), receiver());
    // Both pay at once and post their NTs.
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(I).unwrap().submit(&nt_s).unwrap();
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    for (side, key, nt) in [(Side::Sender, &s, &nt_s), (Side::Receiver, &r, &nt_r)] {
        let post = m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt: nt.clone() }, Amount::ZERO);
        assert_eq!(bob_only(&mut m, &post).status, gridledger_ledger::TxStatus::Success);
    }
    // Chain j's relay is down for 40 epochs; chain j goes on.
    for _ in 0..40 {
        m.external_mut(J).unwrap().tick().unwrap();
    }
    let (h_r, proof_r) = m.external(J).unwrap().tx_proof(&nt_r.hash()).unwrap().expect("NT_r is on chain j");
    assert!(m.bob_tip(J) < h_r, "the BoB has not seen NT_r's block yet");
    // The relay resumes; the receiver waits for its block to be final at the BoB.
    let mut blocks = 0;
    while m.bob_tip(J) < h_r + m.spec.finality.confirmations() as u64 {
        m.tick().unwrap();
        blocks += 1;
        assert!(blocks < 100);
    }
    // Two BoB blocks pass before its prove is included.
    m.ticks(2).unwrap();
    let pt = ProofTx { cct: id, side: Side::Receiver, nt: nt_r, height: h_r, proof: proof_r };
    // NT_r's header is gone from the kept ones; the receiver proves it
    // against the accumulator of relayed headers.
    assert!(h_r + m.spec.kept_headers() <= m.bob_tip(J), "the BoB no longer keeps NT_r's header");
    let stale = m.bob_call(&r, "prove", &pt, Amount::ZERO);
    let oldest_kept = m.bob_tip(J) - m.spec.kept_headers();
    assert_refused(&mut m, &stale, gridledger_xchain::XchainError::StaleHeader { chain: J, height: h_r, oldest_kept });
    let receipt = m.bob_exec(&m.prove_call(&r, &pt).unwrap()).unwrap();
    assert_eq!(receipt.status, gridledger_ledger::TxStatus::Success);
    // The sender proves as usual (its chain's relay never stopped).
    let (h, proof) = landed(&mut m, &nt_s);
    let pt = ProofTx { cct: id, side: Side::Sender, nt: nt_s, height: h, proof };
    m.bob_ok(&m.bob_call(&s, "prove", &pt, Amount::ZERO)).unwrap();
    let rec = settle(&mut m, id);
    assert!(rec.complete);
    assert_ne!(
        rec.receiver,
        SideState::Penalised,
        "the receiver paid IN_r on chain j (block {h_r}) and was penalised; its prove two BoB blocks after finality: {:?}",
        receipt.status
    );
}

// ------------------------------------------------------------------ R5-3

/// x_B — the penalty a withholding sender pays the receiver who paid x_j —
/// is still set by whoever holds the Token_B pool's LP shares.
///
/// Round 4 (R4-2) priced x_B at the sender's worst case over the pool
/// states of the last `PRICE_WINDOW` = 16 BoB blocks, so draining the
/// Token_B pool *around* a CCT no longer shrinks it. The pool has no
/// trades (swaps settle by native transfers), so nothing pulls its price
/// back: an LP holding the Token_B pool (here the provider, colluding with
/// the sender, or the sender itself as the pool's LP) withdraws 99.9 % of
/// it and simply waits 17 BoB blocks (about four minutes). Every later CCT
/// is priced off the drained pool; the receiver signs bounds on x_i only,
/// never on x_B, and `BobMbs::swap` goes on to pay x_j regardless. The
/// sender withholds; the receiver, who paid x_j Token_j on chain j, is
/// compensated with a few units of Token_B.
///
/// Expected: the receiver's compensation is worth about x_j (as priced
/// before the drain), or the receiver can refuse: terms carry a `min_x_b`
/// it signs (checked by `cct` like `min_x_i`), and the receiver's client
/// refuses to pay when x_B is below its own valuation.
/// Observed: x_B ≈ x_j / 1000 of its pre-drain value; the receiver who paid
/// gets that much.
#[test]
fn a_token_b_pool_drained_for_17_blocks_makes_the_penalty_negligible() {
    let dir = tempfile::tempdir().unwrap();
    let x_j = 1_000;
    // The Token_B pool's LP takes 99.9 % of it out and waits out the window.
    let (mut m, fair) = drained(dir.path(), x_j, |m| m.bob.chain_id());
    m.ticks(gridledger_xchain::bob::PRICE_WINDOW + 1).unwrap();
    // The sender opens a CCT (the receiver signs x_i bounds only) and withholds.
    let (id, rec) = open_cct(&mut m, &request(x_j, 3));
    m.wait_native_window(&rec).unwrap();
    let r = receiver();
    let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    let (h, proof) = landed(&mut m, &nt_r);
    let pt = ProofTx { cct: id, side: Side::Receiver, nt: nt_r, height: h, proof };
    m.bob_ok(&m.bob_call(&r, "prove", &pt, Amount::ZERO)).unwrap();
    let before = m.deposit(&r.address()).free;
    let rec = settle(&mut m, id);
    assert_eq!(rec.sender, SideState::Penalised);
    // The receiver's free deposit grows by its own lock, released, and x_B.
    let got = m.deposit(&r.address()).free - before;
    assert!(
        rec.x_b >= fair / 2,
        "the receiver paid {x_j} Token_j (worth {fair} Token_B before the drain) and is compensated x_B = {} Token_B \
         (its free deposit grew by {got}, its own lock included)",
        rec.x_b
    );
}

// ------------------------------------------------------------------ R5-4

/// The sender steals the receiver's posted NT for another CCT and gets the
/// receiver penalised in the first.
///
/// `prove` accepts, for a side of a CCT, any transfer that pays the side's
/// instruction above its floor and has not proved anything yet — also one
/// the payer *posted for another CCT* (`post_nt` reserves nothing). Two
/// CCTs between the same parties with the same x_j on the same chains
/// (a repeated purchase) have the same receiver instruction. The receiver
/// pays and posts NT_A for CCT A and NT_B for CCT B; the sender proves NT_A
/// for CCT B's receiver side before the receiver proves it for A. Now the
/// receiver's `prove(A, NT_A)` is `NtAlreadyUsed`, its `prove(B, NT_B)` is
/// `AlreadySettled`, and the BoB node's sub-situation 2 (forward and prove
/// the posted NT_A) can do no better. The second-stage CCT_V penalises the
/// receiver in A: it paid x_j twice and loses x_B to the sender, who paid
/// nothing extra.
///
/// Expected: an NT posted for one CCT counts for that CCT only, so the
/// receiver's posted payments prove its two obligations. Observed: the
/// receiver's side of A ends `Penalised`.
///
/// Suggested fix: `prove` refuses an NT posted for another CCT (record the
/// posted NT's hash → CCT in `post_nt`), or lets the receiver's posted
/// NT_B count for A once NT_A was taken (BoB node and `resume` included).
#[test]
fn the_sender_moves_the_receivers_posted_nt_to_another_cct() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r) = (sender(), receiver());
    // Two CCTs with the same x_j (a repeated purchase), agreed back to back.
    let (req_a, req_b) = (request(1_000, 1), request(1_000, 2));
    // The sender's NTs carry the terms' exact nonces (attack R8-5): two
    // open exchanges name successive ones.
    let terms_a = m.terms(&req_a).unwrap();
    // (The receiver's too, attack R10-1.)
    let terms_b = gridledger_xchain::CctTerms {
        nonce_i: terms_a.nonce_i + 1,
        nonce_j: terms_a.nonce_j + 1,
        ..m.terms(&req_b).unwrap()
    };
    let (tx_a, tx_b) = (m.cct_tx(&s, &r, terms_a.clone()), {
        let sig = r.sign(&terms_b.digest(m.bob.chain_id()));
        let args = gridledger_xchain::bob::CctArgs { terms: terms_b.clone(), receiver_sig: sig };
        let n = m.bob.next_nonce(&s.address()) + 1;
        gridledger_xchain::mbs::bob_call_signed(&s, m.bob.chain_id(), &m.bob.domain(), n, "cct", &args, Amount::ZERO)
    });
    m.bob.submit(&tx_a).unwrap();
    m.bob_ok(&tx_b).unwrap();
    let (a, b) = (terms_a.id(), terms_b.id());
    let (rec_a, rec_b) = (m.cct(&a).unwrap(), m.cct(&b).unwrap());
    assert_eq!(rec_a.instruction(Side::Receiver), rec_b.instruction(Side::Receiver), "the same receiver instruction");
    m.wait_native_window(&rec_a).unwrap();
    m.wait_native_window(&rec_b).unwrap();
    // Both parties pay and post both CCTs' NTs, in order.
    let mut nts = Vec::new();
    for (id, rec) in [(a, &rec_a), (b, &rec_b)] {
        for (side, key, chain) in [(Side::Sender, &s, I), (Side::Receiver, &r, J)] {
            let (c, _, to, amount) = rec.instruction(side);
            assert_eq!(c, chain);
            let n = m.external(chain).unwrap().wallet_next_nonce(&key.address());
            let nt = m.external(chain).unwrap().sign(key, transfer(key, chain, n, to, Amount(amount), Amount(1)));
            m.external_mut(chain).unwrap().submit(&nt).unwrap();
            m.bob_ok(&m.bob_call(key, "post_nt", &PostNt { cct: id, side, nt: nt.clone() }, Amount::ZERO)).unwrap();
            nts.push((id, side, key.clone(), nt));
        }
    }
    let nt_r_a = nts[1].3.clone();
    let (h, proof) = landed(&mut m, &nt_r_a);
    // The sender proves the receiver's NT_A for CCT B first.
    let steal = ProofTx { cct: b, side: Side::Receiver, nt: nt_r_a.clone(), height: h, proof };
    let steal = m.bob_call(&s, "prove", &steal, Amount::ZERO);
    assert_refused(&mut m, &steal, gridledger_xchain::XchainError::NtPostedForOtherCct { nt: nt_r_a.hash(), cct: a });
    // Nor can the sender post the receiver's payment for another CCT (B
    // names the receiver's next nonce exactly since attack R10-1, a check
    // `post_nt` makes before the payer's).
    let (chain, nonce) = (nt_r_a.tx.chain_id, nt_r_a.tx.nonce);
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: b, side: Side::Receiver, nt: nt_r_a }, Amount::ZERO);
    let floor = rec_b.terms.nonce_j;
    assert_refused(&mut m, &post, gridledger_xchain::XchainError::BeforeCct { chain, nonce, floor });
    // Every party proves its own posted NT for its own CCT.
    for (id, side, key, nt) in nts {
        let (h, proof) = landed(&mut m, &nt);
        let _ = m.bob_exec(&m.bob_call(&key, "prove", &ProofTx { cct: id, side, nt, height: h, proof }, Amount::ZERO));
    }
    let (rec_a, rec_b) = (settle(&mut m, a), settle(&mut m, b));
    assert!(matches!(rec_b.receiver, SideState::Proved { .. }));
    assert_ne!(
        rec_a.receiver,
        SideState::Penalised,
        "the receiver paid and posted NTs for both CCTs; A's receiver side: {:?}",
        rec_a.receiver
    );
}

/// R5-4's binding covers a fee-bumped re-send (attack R4-1's "the payment
/// with NT's nonce"): the receiver posts NT_A for CCT A and then re-sends
/// it with a higher fee; the re-send lands, was never posted, yet the
/// sender cannot prove it for CCT B (same instruction): it is refused with
/// `NtPostedForOtherCct` and changes nothing, and it proves A.
#[test]
fn a_fee_bumped_resend_of_a_posted_nt_cannot_be_moved_to_another_cct() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r) = (sender(), receiver());
    let (terms_a, terms_b) = (m.terms(&request(1_000, 11)).unwrap(), m.terms(&request(1_000, 12)).unwrap());
    let tx_a = m.cct_tx(&s, &r, terms_a.clone());
    let tx_b = {
        let sig = r.sign(&terms_b.digest(m.bob.chain_id()));
        let args = gridledger_xchain::bob::CctArgs { terms: terms_b.clone(), receiver_sig: sig };
        let n = m.bob.next_nonce(&s.address()) + 1;
        gridledger_xchain::mbs::bob_call_signed(&s, m.bob.chain_id(), &m.bob.domain(), n, "cct", &args, Amount::ZERO)
    };
    m.bob.submit(&tx_a).unwrap();
    m.bob_ok(&tx_b).unwrap();
    let (a, b) = (terms_a.id(), terms_b.id());
    let (rec_a, rec_b) = (m.cct(&a).unwrap(), m.cct(&b).unwrap());
    assert_eq!(rec_a.instruction(Side::Receiver), rec_b.instruction(Side::Receiver));
    m.wait_native_window(&rec_a).unwrap();
    m.wait_native_window(&rec_b).unwrap();
    let (_, _, to, amount) = rec_a.instruction(Side::Receiver);
    let n = m.external(J).unwrap().wallet_next_nonce(&r.address());
    let nt = m.external(J).unwrap().sign(&r, transfer(&r, J, n, to, Amount(amount), Amount(1)));
    m.bob_ok(&m.bob_call(&r, "post_nt", &PostNt { cct: a, side: Side::Receiver, nt }, Amount::ZERO)).unwrap();
    let bumped = m.external(J).unwrap().sign(&r, transfer(&r, J, n, to, Amount(amount), Amount(2)));
    m.external_mut(J).unwrap().submit(&bumped).unwrap();
    let (h, proof) = landed(&mut m, &bumped);
    let pt = ProofTx { cct: b, side: Side::Receiver, nt: bumped.clone(), height: h, proof };
    let steal = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    assert_refused(&mut m, &steal, gridledger_xchain::XchainError::NtPostedForOtherCct { nt: bumped.hash(), cct: a });
    let own = ProofTx { cct: a, ..pt };
    m.bob_ok(&m.prove_call(&r, &own).unwrap()).unwrap();
    assert!(matches!(m.cct(&a).unwrap().receiver, SideState::Proved { .. }));
}

// ------------------------------------------------------------------ R5-5

/// Whoever holds the Token_i pool's LP shares sets the rate every honest
/// receiver signs.
///
/// Round 4 (R4-6) bounded x_i by the receiver's quote ± slippage, so the
/// sender can no longer move the price *in the CCT's own block*. But the
/// pool never trades (swaps settle by native transfers), so nothing moves
/// its price back either: the Token_i pool's LP (colluding with the
/// sender, or the sender itself) withdraws 99.9 % of Token_i and leaves
/// it out. From then on every receiver's client (`BobMbs::terms`) quotes
/// off the drained pool, signs bounds around that quote, and the CCT
/// completes honestly on both sides — the receiver gives x_j Token_j for
/// about a thousandth of the Token_i the same x_j fetched a block earlier.
/// No waiting is needed: the receiver quotes after the drain.
///
/// Expected: a receiver does not agree to a rate an LP set at will — e.g.
/// the terms' bounds come from a reference the receiver trusts (its own
/// limit price, as `--slippage-bps` around a price it supplies), or
/// withdrawals that move the price beyond a bound are delayed/refused, or
/// the pool trades so arbitrage restores the price.
/// Observed: the honest `swap` completes with x_i ≈ fair / 1000.
#[test]
fn a_drained_token_i_pool_sets_the_rate_honest_receivers_sign() {
    use gridledger_xchain::mbs::Behaviour;
    let dir = tempfile::tempdir().unwrap();
    let x_j = 1_000;
    let (mut m, fair) = drained(dir.path(), x_j, |_| I);
    let rep = m.swap(&request(x_j, 5), Behaviour::Honest).unwrap();
    assert!(rep.record.complete && matches!(rep.record.receiver, SideState::Proved { .. }));
    assert!(
        rep.x_i >= fair / 2,
        "the receiver gave {x_j} Token_j for {} Token_i (the same {x_j} fetched {fair} Token_i one block before the drain)",
        rep.x_i
    );
}

// ------------------------------------------------------------------ R5-6

/// The BoB contract's rules are not part of the BoB's genesis: a deployment
/// reopened with another shape runs other rules on the same chain.
///
/// `BobConfig` is documented as "part of the BoB's genesis", but the BoB's
/// genesis (`bob_genesis`) holds only its id, validators, funded accounts
/// and time; the config — each external chain's registration (finality,
/// κ_i, validators), κ̄, the AMM weights — is rebuilt from the caller's
/// spec at every open. Reopening a deployment's directory with another
/// `--kappa`, `--probabilistic K` or `--chains` is accepted (only another
/// validator count is refused: "the data directory holds a different
/// chain"), and the same BoB chain, with CCTs recorded under κ_i = 16 and
/// deterministic seals, goes on under κ_i = 4 and probabilistic
/// registrations: headers of a chain whose blocks carry 2f+1 commit votes
/// are now accepted with its leader's signature alone, and the pool's
/// weights (prices) change because a chain was added. (`xchain up --dir D`
/// reproduces it from the command line.)
///
/// Expected: opening a deployment with a shape other than the one its BoB
/// was created with is refused with a typed error, as another validator
/// count is. Observed: `BobMbs::open` succeeds and the contract's config
/// differs.
///
/// Suggested fix: put `BobConfig` (or its hash) into the BoB's genesis
/// (e.g. as the contract's initial storage or in the genesis' extra data),
/// so a different config is a different chain; or record the spec in the
/// directory as `genesis-time` is and refuse a mismatch.
#[test]
fn a_deployment_reopened_with_another_shape_runs_other_rules() {
    use gridledger_xchain::{BobConfig, Finality};
    // (chain, κ_i, finality) of every registration, and the weights.
    let summary = |c: &BobConfig| {
        let regs: Vec<_> = c.chains.iter().map(|r| (r.chain_id, r.kappa, r.finality)).collect();
        format!("{regs:?} weights {:?}", c.weights)
    };
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { kappa: 16, ..MbsSpec::default() };
    let before = {
        let mut m = setup(dir.path(), spec.clone());
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        let req = gridledger_xchain::mbs::SwapRequest { chain_i: ci, chain_j: cj, ..request(1_000, 1) };
        let (id, _) = open_cct(&mut m, &req);
        assert!(m.cct(&id).is_some());
        summary(&m.config)
    };
    let other = MbsSpec {
        kappa: 4,
        finality: Finality::Probabilistic { k: 1 },
        chains: 3,
        genesis_time: spec.genesis_time,
        ..spec
    };
    match BobMbs::open(dir.path(), other) {
        Err(e) => assert!(matches!(e, gridledger_xchain::mbs::MbsError::ShapeMismatch { .. }), "{e}"),
        Ok(m) => {
            let after = summary(&m.config);
            assert_eq!(
                before,
                after,
                "the same BoB chain reopened under other contract rules (BoB height {})",
                m.bob.height()
            );
        }
    }
}

/// R5-6, field by field: reopening a deployment with any one other value of
/// its shape is refused with a typed error naming that field, and changes
/// nothing (the deployment reopens with its own shape at the same height).
#[test]
fn a_reopen_with_one_other_field_is_refused_naming_it() {
    use gridledger_xchain::mbs::MbsError;
    use gridledger_xchain::Finality;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { kappa: 16, ..MbsSpec::default() };
    let height = {
        let mut m = BobMbs::open(dir.path(), spec.clone()).unwrap();
        m.ticks(2).unwrap();
        m.bob.height()
    };
    let others: Vec<(&str, MbsSpec)> = vec![
        ("kappa", MbsSpec { kappa: 4, ..spec.clone() }),
        ("kappa_bar", MbsSpec { kappa_bar: spec.kappa_bar + 1, ..spec.clone() }),
        ("finality", MbsSpec { finality: Finality::Probabilistic { k: 1 }, ..spec.clone() }),
        ("chains", MbsSpec { chains: 3, ..spec.clone() }),
        ("committee_seed", MbsSpec { committee_seed: 2, ..spec.clone() }),
    ];
    for (field, other) in others {
        match BobMbs::open(dir.path(), other) {
            Err(MbsError::ShapeMismatch { field: f, .. }) => assert_eq!(f, field),
            Err(e) => panic!("{field}: refused, but not naming the field: {e}"),
            Ok(_) => panic!("{field}: reopened with another {field}"),
        }
    }
    let m = BobMbs::open(dir.path(), spec.clone()).unwrap();
    assert_eq!(m.bob.height(), height, "the refusals changed the deployment");
    // Two shapes are two BoB genesis, so two deployment hashes.
    let other = MbsSpec { kappa: 4, ..spec.clone() };
    assert_ne!(gridledger_xchain::mbs::deployment(&spec), gridledger_xchain::mbs::deployment(&other));
}

// ------------------------------------------------------------------ R5-7

/// Balance fraud evidence may come from a header before the payer funded
/// its account, so a payer whose NT lands after CCT_V is penalised.
///
/// `fraud` with `FraudEvidence::Balance` is accepted only after CCT_V
/// ("until the deadline the payer may still fund its account", says its
/// decision), but the header the evidence is taken at may be any kept,
/// final header after `e_* + κ̄` — also one from *before* the payer funded
/// its account. A sender who is short on chain i early in the window,
/// tops up before the deadline (as the decision allows) and whose posted NT
/// the chain holds back until after the deadline (the censorship the issue
/// names: a chain delaying a transaction by D epochs) is honest: its NT
/// lands, pays the receiver x_i, and sub-situation 2 would prove it. The
/// receiver — who gains x_B by it — instead sends the balance of a header
/// from before the top-up right after CCT_V, and the sender is penalised
/// (x_B of its deposit to the receiver) on top of having paid x_i.
///
/// Expected: balance evidence counts only from a header at or after the
/// deadline (CCT_V's stored tip), when the payer's chance to fund has
/// passed; the sender ends Proved. Observed: `fraud` succeeds with the
/// early header and the sender ends `Penalised` although its NT is on
/// chain i.
///
/// Suggested fix: in `fraud`, require `a.height >= rec.deadline(side)` (or
/// ≥ the tip stored at CCT_V) for `FraudEvidence::Balance`.
#[test]
fn balance_evidence_from_before_the_top_up_penalises_a_payer_who_pays() {
    use gridledger_ledger::state::{account_key, StateRead};
    use gridledger_xchain::bob::{Fraud, FraudEvidence};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r, friend) = (sender(), receiver(), dev_key(4));
    // The sender is short on chain i for a while (its coin is with a
    // friend): it lent it just before the exchange (its NT carries the
    // terms' exact nonce, attack R8-5, so nothing of its own comes between).
    let bal = m.external(I).unwrap().account(&s.address()).balance.0;
    let lend = m.native_transfer(I, &s, friend.address(), bal - 21_000).unwrap();
    m.external_mut(I).unwrap().submit(&lend).unwrap();
    m.tick().unwrap();
    let (id, rec) = open_cct(&mut m, &request(1_000, 1));
    m.wait_native_window(&rec).unwrap();
    // It signs and posts NT_s; chain i holds NT_s back until after the deadline.
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    m.bob_ok(&m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO))
        .unwrap();
    let land = rec.deadline_i + 3;
    let delay = land - m.external(I).unwrap().height();
    m.external_mut(I).unwrap().censor(nt_s.clone(), delay);
    m.ticks(3).unwrap();
    // The receiver keeps the sender's account proof at this (short) header.
    let (h_ev, proof) = m.external(I).unwrap().state_proof(&account_key(&s.address()));
    let raw = m.external(I).unwrap().chain().state().get(&account_key(&s.address())).unwrap();
    let account: gridledger_ledger::Account = borsh::from_slice(&raw).unwrap();
    assert!(account.nonce <= nt_s.tx.nonce && account.balance < nt_s.tx.max_cost().unwrap());
    assert!(h_ev > rec.e_i + m.config.kappa_bar);
    // The friend pays the coin back well before the deadline.
    let back = m.native_transfer(I, &friend, s.address(), bal - 200).unwrap();
    m.external_mut(I).unwrap().submit(&back).unwrap();
    m.tick().unwrap();
    // The receiver pays and proves its side.
    let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    let (h, p) = landed(&mut m, &nt_r);
    m.bob_ok(&m.bob_call(
        &r,
        "prove",
        &ProofTx { cct: id, side: Side::Receiver, nt: nt_r, height: h, proof: p },
        Amount::ZERO,
    ))
    .unwrap();
    // CCT_V once both deadlines passed; right after it, the receiver's fraud proof.
    while !(m.bob_tip(I) >= rec.deadline_i && m.bob_tip(J) >= rec.deadline_j) {
        m.tick().unwrap();
    }
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
    let f = Fraud {
        cct: id,
        side: Side::Sender,
        height: h_ev,
        evidence: FraudEvidence::Balance { account: Some(account), proof },
    };
    let fr = m.bob_exec(&m.bob_call(&r, "fraud", &f, Amount::ZERO)).unwrap();
    assert_eq!(
        fr.status,
        gridledger_ledger::TxStatus::Reverted(
            gridledger_xchain::XchainError::EvidenceBeforeDeadline { chain: I, height: h_ev, deadline: rec.deadline_i }
                .as_revert()
        )
    );
    let rec = settle(&mut m, id);
    while m.external(I).unwrap().height() <= land + 1 {
        m.tick().unwrap();
    }
    let paid = m.external(I).unwrap().tx_proof(&nt_s.hash()).unwrap().is_some();
    assert!(paid, "NT_s landed on chain i");
    assert_ne!(
        rec.sender,
        SideState::Penalised,
        "the sender funded its account before the deadline and its NT paid the receiver, yet fraud evidence from \
         header {h_ev} (before the top-up) penalised it: {:?}",
        fr.status
    );
}

// ------------------------------------------------------------------ R5-8

/// One block of borrowed Token_B liquidity blocks every CCT for the next
/// 16 BoB blocks.
///
/// The R4-2 fix prices x_B at the *largest* Token_B pool of the last
/// `PRICE_WINDOW` = 16 BoB blocks, and `cct` needs each party's free
/// deposit above κ̄ · x_B. Anyone holding Token_B can provide a huge
/// amount, keep it in the pool across one block boundary and withdraw it
/// (nothing locks LP shares): the pool, and the spot price, are back to
/// normal a block later, but for 16 blocks every CCT is priced as if the
/// spike were still there and is refused for `InsufficientDeposit`
/// (or locks a thousand times the deposit it needs). Repeating it every
/// 16 blocks costs the attacker two transactions and never any coin, and
/// stops the CCTE of the whole BoB.
///
/// Expected: a CCT agreed after the liquidity left is priced from pool
/// states that held for longer than one block (or the worst case is
/// bounded by a time-weighted price / LP lock-up), and the honest swap
/// succeeds. Observed: `InsufficientDeposit` for the sender.
#[test]
fn one_block_of_borrowed_token_b_liquidity_blocks_every_cct() {
    use gridledger_xchain::bob::Provide;
    use gridledger_xchain::mbs::Behaviour;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let token_b = m.bob.chain_id();
    let attacker = dev_key(6);
    let spike = LIQUIDITY * 1_000;
    // Since R6-5 a join brings every token pro rata: a Token_B-only spike
    // is refused (and a pro-rata one would not move the price).
    let tx = m.bob_call(&attacker, "provide", &Provide { amounts: vec![(token_b, spike)] }, Amount(spike));
    let status = m.bob_exec(&tx).unwrap().status;
    assert_eq!(
        status,
        gridledger_ledger::TxStatus::Reverted(gridledger_xchain::XchainError::JoinMissingToken(I).as_revert())
    );
    let pool: u128 = m.bob_record(&gridledger_xchain::bob::keys::pool(token_b)).unwrap();
    assert_eq!(pool, LIQUIDITY, "the spike is gone");
    let r = m.swap(&request(1_000, 7), Behaviour::Honest);
    assert!(r.is_ok(), "an honest swap two blocks after the liquidity left: {:?}", r.err());
}
