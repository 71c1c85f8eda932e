//! Eighth attack round on the cross-chain protocols (issue 14): the
//! round-7 fixes (the genesis price, no terms without a quote, open rate
//! bounds refused, the first 64 headers of a long fork branch relayed,
//! resume going on past an unreadable journal entry) and the paths around
//! them.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against; each is marked
//! `#[ignore = "attack r8 [k]: ..."]` until it is fixed.

mod common;

use common::second_bob::SecondBob;
use common::*;
use gridledger_core::Amount;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, SideState};

// ------------------------------------------------------------------- [1]

/// `BobMbs::find_payment` — what `xchain resume` falls back on when a
/// side's NT was neither posted nor readable from the journal (a driver
/// killed between paying and posting, its journal entry torn: attack R6-3,
/// R7-3) — returns the *first* transfer in the CCT's window that pays the
/// side's instruction, even one that can never prove this CCT: a payment
/// already used by another CCT with the same instruction. `resume` then
/// sends `prove` with it (reverted `NtAlreadyUsed` twice), gives up, and
/// CCT_V penalises the payer although its payment for this CCT is on the
/// chain a block later.
///
/// The setting is ordinary: the same two parties agree two exchanges of
/// the same size on the same chains at once (salts 1 and 2). Both terms
/// carry the receiver's next nonce `n` on chain j as its floor, so both
/// instructions are paid by either of its transfers `n` (for A) and
/// `n + 1` (for B). A is posted and proved with transfer `n`; B's driver
/// died before posting, and its journal entry did not read.
///
/// Expected: the payment found for B is one that proves B (transfer
/// `n + 1`), and proving it settles B's receiver side.
/// Observed: transfer `n`, already used by A; its proof for B is refused.
///
/// Suggested fix: `find_payment` skips transfers B cannot use — already
/// used (`u/<hash>`), posted for another CCT (`nc/…`), or at or below
/// `e_* + κ̄` (`TooEarly`) — and returns the first one left (or every
/// candidate, for the caller to try in turn).
#[test]

fn find_payment_skips_a_transfer_another_cct_already_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, r) = (sender(), receiver());
    // Two exchanges agreed at once: identical instructions, same floors.
    let req_a = request_between(ci, cj, 1_000, 1);
    let req_b = request_between(ci, cj, 1_000, 2);
    let terms_a = m.try_terms(&req_a).unwrap();
    // The receiver's nonce is exact (attack R10-1): B names the next one.
    let terms_b = gridledger_xchain::CctTerms { nonce_j: terms_a.nonce_j + 1, ..m.try_terms(&req_b).unwrap() };
    m.bob_ok(&m.cct_tx(&s, &r, terms_a.clone())).unwrap();
    m.bob_ok(&m.cct_tx(&s, &r, terms_b.clone())).unwrap();
    let (id_a, id_b) = (terms_a.id(), terms_b.id());
    let rec_a = m.cct(&id_a).unwrap();
    let rec_b = m.cct(&id_b).unwrap();
    assert_eq!(rec_a.instruction(Side::Receiver), rec_b.instruction(Side::Receiver));
    m.wait_native_window(&rec_a).unwrap();
    m.wait_native_window(&rec_b).unwrap();
    // The receiver pays A (nonce n), then B (nonce n + 1), a block apart.
    let nt_a = m.native_tx(&rec_a, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt_a).unwrap();
    m.tick().unwrap();
    let nt_b = m.native_tx(&rec_b, Side::Receiver, &r).unwrap();
    assert_eq!(nt_b.tx.nonce, nt_a.tx.nonce + 1);
    m.external_mut(cj).unwrap().submit(&nt_b).unwrap();
    m.tick().unwrap();
    // A: posted and proved with transfer n.
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id_a, side: Side::Receiver, nt: nt_a.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let pt_a = m.proof_for(id_a, Side::Receiver, &nt_a).unwrap().expect("transfer n landed");
    m.wait_final(cj, pt_a.height).unwrap();
    m.bob_ok(&m.prove_call(&r, &pt_a).unwrap()).unwrap();
    assert!(matches!(m.cct(&id_a).unwrap().receiver, SideState::Proved { .. }));
    let pt_b = m.proof_for(id_b, Side::Receiver, &nt_b).unwrap().expect("transfer n + 1 landed");
    m.wait_final(cj, pt_b.height).unwrap();
    assert!(pt_b.height < rec_b.deadline_j, "B's payment is inside B's window");
    // B: nothing posted, no journal entry — resume's fallback.
    let found = m.find_payment(&rec_b, Side::Receiver).unwrap().expect("a payment is found");
    let pt = m.proof_for(id_b, Side::Receiver, &found).unwrap().expect("found on its chain");
    let receipt = m.bob_exec(&m.prove_call(&r, &pt).unwrap()).unwrap();
    assert_eq!(
        (found.tx.nonce, receipt.status.clone()),
        (nt_b.tx.nonce, gridledger_ledger::TxStatus::Success),
        "find_payment returned transfer {} (A's, already used) instead of B's transfer {}",
        found.tx.nonce,
        nt_b.tx.nonce
    );
    assert!(matches!(m.cct(&id_b).unwrap().receiver, SideState::Proved { .. }));
}

// ------------------------------------------------------------------- [3]

/// Sub-situation 2's forwarding (Algorithm 5.1 lns 26–27: f+1 BoB nodes
/// forward a posted NT to its chain and prove it) is done only inside
/// `BobMbs::swap`'s own loop, never by the BoB node's duties
/// (`BobMbs::tick`: relays, the closing CCT_V, CCDI's late locks) that
/// `xchain up` and `xchain resume` run. A payer whose NT reached the BoB
/// (`post_nt`) but not its chain — held in the mempool of an external
/// validator that crashed, a driver killed between posting and the
/// chain's inclusion, a chain that dropped it — goes offline trusting the
/// BoB nodes, as the thesis lets it. Nobody forwards the NT; at the
/// forwarding deadline the closing CCT_V penalises the payer
/// (`unproved_penalty`) although its signed payment sat on the BoB the
/// whole time. (`resume` does not send it either: it re-sends a journaled
/// NT only when none was posted.)
///
/// Expected: after CCT_V the BoB node forwards the posted NT to chain i,
/// it lands, the node proves it, and the sender ends `Proved`.
/// Observed: `Penalised`.
///
/// Suggested fix: make forwarding a BoB-node duty of `tick` (for each
/// `fw/<id>` CCT: submit each posted, still unproved NT to its chain and
/// prove it once final, as `swap`'s loop does), and have `resume` send a
/// posted NT that is not on its chain as well.
#[test]

fn the_bob_node_forwards_a_posted_nt_that_never_reached_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 31));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    // The sender signs its NT and posts it; the copy sent to chain i is lost.
    let s = sender();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let paid_before = m.external(ci).unwrap().account(&s.address()).balance.0;
    // From here on only BoB nodes act (CCT_V, then the node's duties).
    let end = settle_within(&mut m, id, 400);
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    assert!(
        matches!(end.sender, SideState::Proved { .. }),
        "the posted NT was never forwarded (on chain i: {landed:?}; sender's balance there {paid_before} -> {}); \
         the sender ended {:?}, CCT complete {}",
        m.external(ci).unwrap().account(&s.address()).balance.0,
        end.sender,
        end.complete
    );
}

// ------------------------------------------------------------ held up

/// Probe (held up): LP joins and withdrawals of three LPs in a random
/// order, with CCTs between them, never move SC_AMM's price, never create
/// or lose a unit of any `Token_i` (pool + claimed balances are constant),
/// keep the share supply equal to the locked shares plus every LP's, and
/// never pay an LP more of a token than the pool's pro-rata part.
#[test]
fn lp_joins_and_withdrawals_around_ccts_conserve_tokens_and_keep_the_price() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::bob::{keys, Provide, WithdrawLiquidity, LOCKED_SHARES};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let bob = m.bob.chain_id();
    let lps = [provider(), dev_key(2), dev_key(3), dev_key(4)];
    for k in &lps[1..] {
        for c in m.chain_ids() {
            m.provide_liquidity(k, c, 50_000 + 7 * c as u128).unwrap();
        }
    }
    let tokens = m.chain_ids();
    let rec = |m: &gridledger_xchain::mbs::BobMbs, key: Vec<u8>| m.bob_record::<u128>(&key).unwrap_or(0);
    let held = |m: &gridledger_xchain::mbs::BobMbs, t: u32| -> u128 {
        rec(m, keys::pool(t)) + lps.iter().map(|k| rec(m, keys::wrapped(t, &k.address()))).sum::<u128>()
    };
    let supply: Vec<u128> = tokens.iter().map(|t| held(&m, *t)).collect();
    let price = m.quote(1_000, ci, cj).unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n.max(1)
    };
    let (mut joins, mut withdrawals, mut ccts) = (0, 0, 0);
    for round in 0..36u64 {
        let k = &lps[next(lps.len() as u64) as usize];
        match next(3) {
            0 => {
                let mut amounts = Vec::new();
                for t in &tokens {
                    let h = rec(&m, keys::wrapped(*t, &k.address()));
                    amounts.push((*t, 1 + next(h.max(1) as u64) as u128));
                }
                let v = 1 + next(40_000) as u128;
                amounts.push((bob, v));
                let tx = m.bob_call(k, "provide", &Provide { amounts }, Amount(v));
                if m.bob_exec(&tx).unwrap().status == gridledger_ledger::TxStatus::Success {
                    joins += 1;
                }
            }
            1 => {
                let lp = rec(&m, keys::lp(&k.address()));
                if lp == 0 {
                    continue;
                }
                let s = 1 + next(lp as u64) as u128;
                let total = rec(&m, keys::lp_total());
                let before: Vec<u128> = tokens.iter().map(|t| rec(&m, keys::pool(*t))).collect();
                let got: Vec<u128> = tokens.iter().map(|t| rec(&m, keys::wrapped(*t, &k.address()))).collect();
                let tx = m.bob_call(k, "withdraw_liquidity", &WithdrawLiquidity { shares: s }, Amount::ZERO);
                assert_eq!(m.bob_exec(&tx).unwrap().status, gridledger_ledger::TxStatus::Success);
                withdrawals += 1;
                for (n, t) in tokens.iter().enumerate() {
                    let paid = rec(&m, keys::wrapped(*t, &k.address())) - got[n];
                    assert!(paid * total <= s * before[n], "round {round}: withdrawal paid more than its part");
                }
            }
            _ => {
                let (_, r) = open_cct(&mut m, &request_between(ci, cj, 1_000, 1_000 + round));
                assert_eq!(r.x_i, price, "round {round}: the CCT's price moved");
                ccts += 1;
            }
        }
        let shares: u128 = lps.iter().map(|k| rec(&m, keys::lp(&k.address()))).sum();
        assert_eq!(rec(&m, keys::lp_total()), LOCKED_SHARES + shares, "round {round}: share supply");
        for (n, t) in tokens.iter().enumerate() {
            assert_eq!(held(&m, *t), supply[n], "round {round}: Token_{t} created or lost");
        }
        assert_eq!(m.quote(1_000, ci, cj).unwrap(), price, "round {round}: the quote moved");
    }
    assert!(joins > 0 && withdrawals > 0 && ccts > 0, "{joins} joins, {withdrawals} withdrawals, {ccts} CCTs");
}

// ------------------------------------------------------------------- [5]

/// One native payment proves the sender's side of two CCTs on two BoB
/// deployments that follow the same chain: the sender pays `x_i` once and
/// is paid `x_j` twice.
///
/// Within one deployment SC_MPV marks a proved NT used (`u/<hash>`), so a
/// payment counts for one CCT only; with a nonce *floor* in the terms,
/// two deployments did not share that mark. A sender agreed with the same
/// receiver on two exchanges of the same size at once, one on each BoB
/// (both with the sender's next nonce `n` on chain i as floor, as the
/// receiver's `check_floors` accepts), paid one transfer and proved it on
/// both: the honest receiver paid `x_j` twice and received `x_i` once.
///
/// Fixed: the terms name the sender's exact nonce (`CctTerms::nonce_i`)
/// and SC_MPV takes no other (a nonce is spent once on its chain), and the
/// receiver signs through a wallet registry shared by every deployment it
/// trades on (`wallet::TermsRegistry`), which refuses a second set of
/// terms naming the same (sender, chain, nonce). So the second terms must
/// name another nonce (`n + 1`), and the one transfer the sender makes —
/// nonce `n + 1`, after spending `n` on something else — pays one CCT only.
///
/// Expected: the receiver's wallet refuses the second terms with the same
/// nonce; with the next nonce the sender's one transfer proves B and is
/// refused for A (`NonceNotAgreed`): never both.
#[test]
fn one_payment_does_not_prove_ccts_on_two_deployments() {
    use gridledger_xchain::bob::{keys, CctArgs, CctTerms, ProofTx};
    use gridledger_xchain::wallet::{TermsRegistry, WalletError};
    use gridledger_xchain::{CctRecord, XchainError};
    let dir = tempfile::tempdir().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let mut d2 = SecondBob::open(dir2.path(), &m);
    let [ci, cj] = chains2(&m);
    let (s, r, p) = (sender(), receiver(), provider());
    let bob = m.bob.chain_id();
    for c in m.chain_ids() {
        assert_ne!(d2.config.tpk_address(c), m.config.tpk_address(c), "R4-7: each deployment has its own TPK_Addr_i");
    }
    // The second BoB's pool (Π_CCTC claims on its own TPK_Addr_i) and deposits.
    d2.fund(&mut m);
    // The receiver's one wallet for both deployments.
    let wallet = TermsRegistry::open(wdir.path()).unwrap();
    m.use_wallet(wallet.clone());
    // Exchange A on the first deployment, signed through the wallet.
    let terms_a = m.try_terms(&request_between(ci, cj, 1_000, 1)).unwrap();
    m.check_floors(&terms_a).unwrap();
    m.bob_ok(&m.wallet_cct_tx(&s, &r, terms_a.clone()).unwrap()).unwrap();
    // The same terms for the second deployment pass the chain checks, but
    // name the sender's nonce A names: the wallet does not sign them.
    let same = CctTerms { deployment: d2.config.deployment, expires_at: d2.chain.height() + 16, ..terms_a.clone() };
    m.check_floors(&same).unwrap();
    let n = terms_a.nonce_i;
    // The receiver's driver on the second deployment tells the wallet its height.
    wallet.observe(d2.config.deployment, d2.chain.height());
    match wallet.sign(&r, &same, bob) {
        Err(WalletError::NonceAlreadyAgreed { chain, payer, nonce, other }) => {
            assert_eq!((chain, payer, nonce, other), (ci, s.address(), n, Some(terms_a.id())));
        }
        got => panic!("the wallet signed a second set of terms naming nonce {n}: {got:?}"),
    }
    // Exchange B names the sender's next nonce but one; the wallet signs it.
    // (And the receiver's next nonce: both are exact, attack R10-1.)
    let terms_b = CctTerms { nonce_i: n + 1, nonce_j: same.nonce_j + 1, ..same };
    let sig_b = wallet.sign(&r, &terms_b, bob).unwrap();
    d2.catch_up(&m);
    d2.ok(&s, "cct", &CctArgs { terms: terms_b.clone(), receiver_sig: sig_b }, 0);
    let (id_a, id_b) = (terms_a.id(), terms_b.id());
    let rec_a = m.cct(&id_a).unwrap();
    let rec_b: CctRecord = d2.record(&keys::cct(&id_b)).unwrap();
    assert_eq!(rec_a.instruction(Side::Sender), rec_b.instruction(Side::Sender));
    m.wait_native_window(&rec_a).unwrap();
    while m.external(ci).unwrap().height() < rec_b.e_i + 2 || m.external(cj).unwrap().height() < rec_b.e_j + 2 {
        m.tick().unwrap();
    }
    // The sender spends nonce n on something else and pays once, with
    // nonce n + 1; the receiver pays each CCT.
    let filler = m.native_transfer(ci, &s, p.address(), 1).unwrap();
    assert_eq!(filler.tx.nonce, n);
    m.external_mut(ci).unwrap().submit(&filler).unwrap();
    let nt_s = m.native_tx(&rec_b, Side::Sender, &s).unwrap();
    assert_eq!(nt_s.tx.nonce, n + 1);
    m.external_mut(ci).unwrap().submit(&nt_s).unwrap();
    let nt_r_a = m.native_tx(&rec_a, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt_r_a).unwrap();
    m.tick().unwrap();
    let nt_r_b = m.native_tx(&rec_b, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt_r_b).unwrap();
    m.tick().unwrap();
    let pt = |m: &gridledger_xchain::mbs::BobMbs, cct, side, nt: &gridledger_ledger::SignedTransaction| -> ProofTx {
        m.proof_for(cct, side, nt).unwrap().expect("landed")
    };
    let (pt_s, pt_r_a) = (pt(&m, id_a, Side::Sender, &nt_s), pt(&m, id_a, Side::Receiver, &nt_r_a));
    let pt_r_b = pt(&m, id_b, Side::Receiver, &nt_r_b);
    m.wait_final(cj, pt_r_b.height).unwrap();
    // The first deployment: the receiver's side proved; the sender's
    // transfer (nonce n + 1, not A's n) refused.
    let first = m.bob_exec(&m.prove_call(&s, &pt_s).unwrap()).unwrap();
    m.bob_ok(&m.prove_call(&r, &pt_r_a).unwrap()).unwrap();
    // The second: both sides proved, the sender's with the same transfer.
    d2.catch_up(&m);
    d2.ok(&r, "prove", &pt_r_b, 0);
    let second = d2.call(&s, "prove", &ProofTx { cct: id_b, ..pt_s.clone() }, 0);
    let rec_a = m.cct(&id_a).unwrap();
    let rec_b: CctRecord = d2.record(&keys::cct(&id_b)).unwrap();
    let proved_by = |st: SideState| match st {
        SideState::Proved { nt, .. } => Some(nt),
        _ => None,
    };
    assert!(
        !(proved_by(rec_a.sender) == Some(nt_s.hash()) && proved_by(rec_b.sender) == Some(nt_s.hash())),
        "one transfer of {} on chain i proved the sender's side on both deployments (first prove: {:?}, \
         second: {:?}); the receiver paid {} twice on chain j",
        rec_a.x_i,
        first.status,
        second.status,
        rec_a.terms.x_j
    );
    let refusal = XchainError::NonceNotAgreed { chain: ci, nonce: n + 1, agreed: n };
    assert_eq!(first.status, gridledger_ledger::TxStatus::Reverted(refusal.as_revert()));
    assert_eq!(rec_a.sender, SideState::Pending);
    assert_eq!(proved_by(rec_b.sender), Some(nt_s.hash()), "B's own payment proves B");
}
