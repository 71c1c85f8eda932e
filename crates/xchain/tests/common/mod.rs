#![allow(dead_code)]

pub mod second_bob;

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{Receipt, SignedTransaction, TxStatus};
use gridledger_xchain::bob::{CctV, PostNt, WithdrawLiquidity};
use gridledger_xchain::ccdi::{CcdiApp, ProcessRecord};
use gridledger_xchain::ccdi_run::{CcdiCounts, CcdiUser, UserBehaviour};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest, FIRST_EXTERNAL};
use gridledger_xchain::{CctRecord, Side, SideState, XchainError};

pub const I: u32 = FIRST_EXTERNAL;
pub const J: u32 = FIRST_EXTERNAL + 1;
pub const LIQUIDITY: u128 = 1_000_000;
pub const DEPOSIT: u128 = 1_000_000;

pub fn sender() -> KeyPair {
    dev_key(0)
}
pub fn receiver() -> KeyPair {
    dev_key(1)
}
pub fn provider() -> KeyPair {
    dev_key(7)
}

/// A BoB-MBS with a filled pool (Π_CCTC on every chain) and both parties'
/// deposits in SC_D.
pub fn setup(dir: &std::path::Path, spec: MbsSpec) -> BobMbs {
    let mut m = BobMbs::open(dir, spec).expect("open");
    for c in m.chain_ids() {
        m.provide_liquidity(&provider(), c, LIQUIDITY).expect("liquidity");
    }
    m.provide_token_b(&provider(), LIQUIDITY).expect("token B liquidity");
    m.deposit_token_b(&sender(), DEPOSIT).expect("deposit");
    m.deposit_token_b(&receiver(), DEPOSIT).expect("deposit");
    m
}

/// The deployment's first two external chains (its own ids).
pub fn chains2(m: &BobMbs) -> [u32; 2] {
    let c = m.chain_ids();
    [c[0], c[1]]
}

/// [`request`] between chains `chain_i` and `chain_j`.
pub fn request_between(chain_i: u32, chain_j: u32, x_j: u128, salt: u64) -> SwapRequest {
    SwapRequest { chain_i, chain_j, ..request(x_j, salt) }
}

pub fn request(x_j: u128, salt: u64) -> SwapRequest {
    SwapRequest { sender: sender(), receiver: receiver(), chain_i: I, chain_j: J, x_j, salt }
}

/// Phase 1 only: the CCT executed on the BoB, its terms agreed through the
/// parties' wallet registry as their drivers do (attack R10-5).
pub fn open_cct(m: &mut BobMbs, req: &SwapRequest) -> (Hash32, CctRecord) {
    let terms = m.terms(req).unwrap();
    m.wallet.agree(&terms).expect("the wallet agrees");
    let tx = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    m.bob_ok(&tx).expect("cct");
    let id = terms.id();
    (id, m.cct(&id).expect("record"))
}

/// Runs one BoB block holding `tx` without advancing the external chains
/// (so no relay changes the BoB contract's state meanwhile).
pub fn bob_only(m: &mut BobMbs, tx: &SignedTransaction) -> Receipt {
    let h = m.bob.submit(tx).expect("admitted");
    m.bob.tick().expect("bob block");
    m.bob.receipt(&h).expect("store").expect("included")
}

/// `tx` is refused with `err` and the BoB contract's state is unchanged.
pub fn assert_refused(m: &mut BobMbs, tx: &SignedTransaction, err: XchainError) {
    let before = m.bob_contract_state();
    let r = bob_only(m, tx);
    assert_eq!(r.status, TxStatus::Reverted(err.as_revert()), "expected refusal: {err}");
    assert_eq!(m.bob_contract_state(), before, "a refused transaction changed the BoB contract's state");
}

/// The receiver of `rec` pays its side honestly on the CCT's chain j and
/// proves it (the proof from [`BobMbs::proof_for`]).
pub fn receiver_pays_and_proves(m: &mut BobMbs, id: Hash32, rec: &CctRecord) {
    let cj = rec.terms.chain_j;
    let r = receiver();
    let nt_r = m.native_tx(rec, Side::Receiver, &r).unwrap();
    m.external_mut(cj).unwrap().submit(&nt_r).unwrap();
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let pt = loop {
        if let Some(pt) = m.proof_for(id, Side::Receiver, &nt_r).unwrap() {
            break pt;
        }
        m.tick().unwrap();
    };
    m.wait_final(cj, pt.height).unwrap();
    let prove = m.prove_call_next(&r, &pt).unwrap();
    m.bob_ok(&prove).unwrap();
}

/// Drives `id` to its end as an honest BoB node does, for at most `rounds`
/// steps: CCT_V once both deadlines passed, then ticks (the harness's
/// relayer sends the closing CCT_V). Returns the record as it then stands.
pub fn settle_within(m: &mut BobMbs, id: Hash32, rounds: usize) -> CctRecord {
    for _ in 0..rounds {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            return rec;
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

/// A [`setup`] deployment with the fixed chain ids; `x_j` of chain J is
/// quoted in `token(&m)` (I, or the BoB's own Token_B), then the pool's only
/// LP ([`provider`]) withdraws all but 1,000 of its shares. Returns the
/// deployment and that quote from before the drain.
pub fn drained(dir: &std::path::Path, x_j: u128, token: impl Fn(&BobMbs) -> u32) -> (BobMbs, u128) {
    let mut m = setup(dir, MbsSpec::fixed_ids());
    let fair = m.quote(x_j, token(&m), J).unwrap();
    let p = provider();
    let w = m.bob_call(&p, "withdraw_liquidity", &WithdrawLiquidity { shares: LIQUIDITY - 1_000 }, Amount::ZERO);
    m.bob_ok(&w).unwrap();
    (m, fair)
}

/// A two-chain CCDI deployment (κ_i = 4) and a Battle process (κ = 5: its
/// deadline is 5 · κ_i BoB blocks after the start) prepared between
/// development accounts 0 and 1 on its first chain, each an honest user
/// with a fresh item (`hero-0`, `hero-1`) and `deposit`; `salt` tells
/// processes apart. Returns the deployment, the chain, the users, the
/// process and its record.
pub fn ccdi_battle(
    dir: &std::path::Path,
    deposit: u128,
    salt: u64,
) -> (BobMbs, u32, Vec<CcdiUser>, Hash32, ProcessRecord) {
    let mut m = BobMbs::open(dir, MbsSpec { chains: 2, ccdi: true, kappa: 4, ..MbsSpec::default() }).unwrap();
    let ca = m.chain_ids()[0];
    let mut us = Vec::new();
    for (x, key) in [dev_key(0), dev_key(1)].into_iter().enumerate() {
        let item = m.create_item(ca, &key, &format!("hero-{x}"), 10 + 7 * x as u64).unwrap();
        us.push(CcdiUser { key, chain: ca, item, behaviour: UserBehaviour::Honest });
    }
    let terms = m.ccdi_terms(CcdiApp::Battle, &us, deposit, 5, salt);
    let pid = m.ccdi_prepare(&terms, &us, &mut CcdiCounts::default()).unwrap();
    let rec = m.process(&pid).unwrap();
    (m, ca, us, pid, rec)
}

/// What [`stored_at_expiry`] saw.
#[derive(Debug)]
pub struct Pushed {
    /// A stored on the BoB (Mallory's terms, R's nonce `n`).
    pub a_stored: bool,
    /// R's side of B at its end, B's forwarding deadline on chain j and
    /// the deadline R's NT for B carries.
    pub b_receiver: SideState,
    pub b_forward_j: u64,
    pub b_valid_until: Option<u64>,
    /// Where R's payments for A and B landed on chain j.
    pub r_paid_a_at: Option<u64>,
    pub r_paid_b_at: Option<u64>,
    /// R's deposit (free + locked) before and after.
    pub r_deposit: (u128, u128),
}

/// Attack R13's "terms stored at their expiry" (held on chains of one
/// speed) where chain j seals `j_per_epoch` blocks for each block of chain
/// i and the BoB. Mallory has the receiver R sign terms A (R's nonce `n` on
/// chain j) and sends them to be stored at their `expires_at`; S (Mallory's
/// accomplice, the payee of R's payment for B) agrees B with R meanwhile
/// (R's nonce `n + 1`). Everyone else is honest: R pays B as soon as its
/// window opens and posts it, pays A as soon as A's window opens, and
/// sends its payment for B again at every block; an honest BoB node sends
/// each first CCT_V when due and forwards posted NTs.
pub fn stored_at_expiry(spec: MbsSpec, j_per_epoch: u64) -> Pushed {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::bob::CctArgs;
    use gridledger_xchain::mbs::SwapRequest;
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), spec);
    let [ci, cj] = chains2(&m);
    let (s, r, mallory) = (sender(), receiver(), dev_key(2));
    m.deposit_token_b(&mallory, DEPOSIT).unwrap();
    m.wait_caught_up(&[ci, cj]).unwrap();
    let req_a = SwapRequest { sender: mallory.clone(), ..request_between(ci, cj, 500, 1421) };
    let terms_a = m.try_terms(&req_a).unwrap();
    let sig_a = m.wallet.sign(&r, &terms_a, m.bob.chain_id()).unwrap();
    let id_a = terms_a.id();
    let (id_b, rec_b) = open_cct(&mut m, &request_between(ci, cj, 500, 1422));
    assert_eq!(rec_b.terms.nonce_j, terms_a.nonce_j + 1, "B names the nonce after A's");
    let before = m.deposit(&r.address()).free + m.deposit(&r.address()).locked;
    let kb = m.config.kappa_bar;
    let (mut a_sent, mut b_paid, mut a_paid) = (false, false, false);
    let (mut nt_ra, mut nt_rb) = (None, None);
    for _ in 0..600 {
        let h = m.bob.height();
        if !a_sent && h + 1 >= terms_a.expires_at {
            let tx =
                m.bob_call(&mallory, "cct", &CctArgs { terms: terms_a.clone(), receiver_sig: sig_a }, Amount::ZERO);
            m.bob.submit(&tx).unwrap();
            a_sent = true;
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
        // R sends its payment for B again whenever it can.
        if let Some(nt) = &nt_rb {
            let _ = m.external_mut(cj).unwrap().submit(nt);
        }
        let done = |m: &gridledger_xchain::BobMbs, id: &gridledger_core::Hash32| m.cct(id).is_some_and(|c| c.complete);
        if done(&m, &id_b) && (done(&m, &id_a) || (a_sent && m.cct(&id_a).is_none() && h > terms_a.expires_at)) {
            break;
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
        for _ in 1..j_per_epoch {
            m.external_mut(cj).unwrap().tick().unwrap();
        }
        m.tick().unwrap();
    }
    let at = |m: &gridledger_xchain::BobMbs, nt: &Option<gridledger_ledger::SignedTransaction>| {
        nt.as_ref().and_then(|nt| m.external(cj).unwrap().tx_proof(&nt.hash()).unwrap().map(|(h, _)| h))
    };
    let end_b = m.cct(&id_b).unwrap();
    assert!(end_b.complete, "B settled: {end_b:?}");
    Pushed {
        a_stored: m.cct(&id_a).is_some(),
        b_receiver: end_b.receiver,
        b_forward_j: end_b.forward_j,
        b_valid_until: nt_rb.as_ref().and_then(|nt| nt.tx.kind.valid_until()),
        r_paid_a_at: at(&m, &nt_ra),
        r_paid_b_at: at(&m, &nt_rb),
        r_deposit: (before, m.deposit(&r.address()).free + m.deposit(&r.address()).locked),
    }
}

/// The NT `side` posted for CCT `id`, as anyone reads it from the BoB's
/// blocks (its `post_nt` call): the posted slot itself is deleted once the
/// CCT completes (attack r16 [4]).
pub fn posted_nt_in_history(m: &BobMbs, id: &Hash32, side: Side) -> Option<SignedTransaction> {
    use gridledger_ledger::TxKind;
    use gridledger_xchain::bob::BOB_CONTRACT_ID;
    for h in 1..=m.bob.height() {
        let block = m.bob.chain().block(h).ok()??;
        for tx in block.txs {
            let TxKind::Call { contract: BOB_CONTRACT_ID, method, args, .. } = &tx.tx.kind else { continue };
            let Ok(p) = borsh::from_slice::<PostNt>(args) else { continue };
            let ok = m.bob.receipt(&tx.hash()).ok().flatten().is_some_and(|r| r.status == TxStatus::Success);
            if method == "post_nt" && p.cct == *id && p.side == side && ok {
                return Some(p.nt);
            }
        }
    }
    None
}

/// Keeps two blocks' worth of `key`'s plain BoB transfers at gas price
/// `price` pending on the BoB.
pub fn keep_bob_busy(m: &mut BobMbs, key: &KeyPair, price: u128) {
    let per_block = gridledger_ledger::ChainConfig::default().max_block_txs as u64;
    let bob = m.bob.chain_id();
    let committed = m.bob.account(&key.address()).nonce;
    let mut next = m.bob.next_nonce(&key.address());
    while next - committed < 2 * per_block {
        let tx = m
            .bob
            .sign(key, gridledger_ledger::devnet::transfer(key, bob, next, key.address(), Amount(1), Amount(price)));
        m.bob.submit(&tx).unwrap();
        next += 1;
    }
}

/// `who`'s deposit on the BoB, free and locked together.
pub fn held_deposit(m: &BobMbs, who: &KeyPair) -> u128 {
    let d = m.deposit(&who.address());
    d.free + d.locked
}

/// The opening of the flood-the-BoB attacks (r16 [3] and the lane rounds):
/// S opens a CCT from chain `ci` to `cj` (`x_j` 400, `salt`), posts its
/// deadline NT on the BoB in time (relying on the BoB node to forward it;
/// S does not send it to chain i itself), and R pays and proves its side
/// at once. Returns the CCT's id and S's NT.
pub fn post_sender_nt(m: &mut BobMbs, ci: u32, cj: u32, salt: u64) -> (Hash32, SignedTransaction) {
    let s = sender();
    let (id, rec) = open_cct(m, &request_between(ci, cj, 400, salt));
    m.wait_native_window(&rec).unwrap();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    receiver_pays_and_proves(m, id, &rec);
    (id, nt_s)
}

/// Opens a default deployment in `d`, runs one step of it and closes it;
/// returns its node's address (the key the deployment generated).
pub fn opened_once(d: &std::path::Path) -> gridledger_core::Address {
    let mut m = BobMbs::open(d, MbsSpec::default()).unwrap();
    m.tick().unwrap();
    m.relayer.address()
}
