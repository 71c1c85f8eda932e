//! Π_CCTC late-lock refunds: a transfer to `TPK_Addr_i` that was not
//! claimed while the BoB kept its header is paid back to its sender out of
//! `TPK_Addr_i`, once and only once, and never as well as claimed.

mod common;

use common::{assert_refused, bob_only};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{SignedTransaction, TxStatus};
use gridledger_xchain::bob::{keys, Claim, RefundLock};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::XchainError;

/// The first external chain of the deployment (its own ids).
fn a(m: &BobMbs) -> u32 {
    m.chain_ids()[0]
}
const AMOUNT: u128 = 5_000;

/// Chains with SC_BG (TPK_Addr_i spendable by the group), κ_i = 4.
fn open(dir: &std::path::Path) -> BobMbs {
    BobMbs::open(dir, MbsSpec { chains: 2, ccdi: true, kappa: 4, ..MbsSpec::default() }).expect("open")
}

/// `who` locks `AMOUNT` in `TPK_Addr_A`; returns the lock and its height.
fn lock(m: &mut BobMbs, who: &KeyPair) -> (SignedTransaction, u64) {
    let ca = a(m);
    let tpk = m.config.tpk_address(ca);
    let nt = m.native_transfer(ca, who, tpk, AMOUNT).unwrap();
    m.external_mut(ca).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let (height, _) = m.external(ca).unwrap().tx_proof(&nt.hash()).unwrap().expect("lock landed");
    (nt, height)
}

fn claim_tx(m: &BobMbs, who: &KeyPair, nt: &SignedTransaction) -> SignedTransaction {
    let ca = a(m);
    let (height, proof) = m.external(ca).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
    m.bob_call(who, "claim", &Claim { chain: ca, height, nt: nt.clone(), proof }, Amount::ZERO)
}

/// Ticks until the BoB no longer keeps the header at `height` (the
/// stored tip reached `height + kept_headers`): the lock can no longer be claimed.
fn until_dropped(m: &mut BobMbs, height: u64) {
    let ca = a(m);
    while m.bob_tip(ca) < height + m.spec.kept_headers() {
        m.tick().unwrap();
    }
}

fn minted(m: &BobMbs, who: &KeyPair) -> u128 {
    let ca = a(m);
    m.bob_record(&keys::wrapped(ca, &who.address())).unwrap_or(0)
}

fn balance(m: &BobMbs, who: &gridledger_core::Address) -> u128 {
    let ca = a(m);
    m.external(ca).unwrap().account(who).balance.0
}

#[test]
fn a_lock_claimed_too_late_is_refunded_to_the_locker_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let ca = a(&m);
    let u = dev_key(2);
    let tpk = m.config.tpk_address(ca);
    let (tpk_before, u_before) = (balance(&m, &tpk), balance(&m, &u.address()));
    let (nt, height) = lock(&mut m, &u);
    assert_eq!(balance(&m, &tpk), tpk_before + AMOUNT);
    until_dropped(&mut m, height);
    // The claim can no longer be proved.
    let oldest_kept = m.bob_tip(ca) - m.spec.kept_headers();
    let late = claim_tx(&m, &u, &nt);
    assert_refused(&mut m, &late, XchainError::StaleHeader { chain: ca, height, oldest_kept });
    // The refund: an order on the BoB, paid by SC_BG on chain A.
    let release = m.refund_lock(&u, ca, &nt).unwrap();
    assert_eq!(release.status, TxStatus::Success);
    assert_eq!(balance(&m, &tpk), tpk_before, "TPK_Addr_A paid the lock back");
    let fee = nt.tx.max_cost().unwrap().0 - AMOUNT;
    assert!(
        balance(&m, &u.address()) + fee >= u_before && balance(&m, &u.address()) < u_before,
        "the locker has its {AMOUNT} back, less at most the lock's fee"
    );
    assert_eq!(minted(&m, &u), 0, "nothing was minted on the BoB");
    // A second refund and a claim after the refund are refused, changing nothing.
    let again = m.refund_lock_tx(&u, ca, &nt).unwrap();
    assert_refused(&mut m, &again, XchainError::AlreadyRefunded(nt.hash()));
    let claim = claim_tx(&m, &u, &nt);
    assert_refused(&mut m, &claim, XchainError::AlreadyRefunded(nt.hash()));
    assert_eq!(balance(&m, &tpk), tpk_before);
    // The coin on chain A is where it was before the lock, but for fees.
    assert_eq!(minted(&m, &u), 0);
}

#[test]
fn a_refund_is_refused_while_the_lock_can_be_claimed_and_after_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let ca = a(&m);
    let u = dev_key(3);
    let (nt, height) = lock(&mut m, &u);
    // Still claimable: the header is kept (and final, after one more epoch).
    m.tick().unwrap();
    let kept = m.spec.kept_headers();
    let tip = m.bob_tip(ca);
    assert!(tip < height + kept, "the header is still kept");
    let early = m.refund_lock_tx(&u, ca, &nt).unwrap();
    assert_refused(
        &mut m,
        &early,
        XchainError::RefundTooEarly { chain: ca, height, tip, refundable_at: height + kept },
    );
    // The claim mints.
    let claim = claim_tx(&m, &u, &nt);
    assert_eq!(bob_only(&mut m, &claim).status, TxStatus::Success);
    assert_eq!(minted(&m, &u), AMOUNT);
    // After the deadline a refund of the claimed lock is refused.
    until_dropped(&mut m, height);
    let tpk = m.config.tpk_address(ca);
    let held = balance(&m, &tpk);
    let late = m.refund_lock_tx(&u, ca, &nt).unwrap();
    assert_refused(&mut m, &late, XchainError::AlreadyClaimed(nt.hash()));
    assert_eq!(minted(&m, &u), AMOUNT);
    assert_eq!(balance(&m, &tpk), held);
}

#[test]
fn forged_refunds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let ca = a(&m);
    let u = dev_key(4);
    let (nt, height) = lock(&mut m, &u);
    until_dropped(&mut m, height);
    let genuine = m.refund_lock_tx(&u, ca, &nt).unwrap();
    let gridledger_ledger::TxKind::Call { args, .. } = &genuine.tx.kind else { panic!("a call") };
    let args: RefundLock = borsh::from_slice(args).unwrap();
    // Someone else asks for the locker's refund.
    let thief = dev_key(5);
    let t = m.bob_call(&thief, "refund_lock", &args, Amount::ZERO);
    assert_refused(&mut m, &t, XchainError::NotClaimant);
    // A header the chain never made (its tx root holds a transfer that
    // never landed): not in the BoB's accumulator.
    let mut forged = args.clone();
    forged.header.tx_root = Hash32([9u8; 32]);
    let f = m.bob_call(&u, "refund_lock", &forged, Amount::ZERO);
    assert_refused(&mut m, &f, XchainError::BadHeaderProof { chain: ca, height });
    // The genuine header with a sibling of its path changed.
    let mut bad_path = args.clone();
    if let Some(first) = bad_path.header_proof.first_mut() {
        first.0[0] ^= 1;
    } else {
        bad_path.header_proof.push(Hash32([1u8; 32]));
    }
    let f = m.bob_call(&u, "refund_lock", &bad_path, Amount::ZERO);
    assert_refused(&mut m, &f, XchainError::BadHeaderProof { chain: ca, height });
    // The genuine header, but another transfer that is not in its block.
    let other = m.native_transfer(ca, &u, m.config.tpk_address(ca), AMOUNT).unwrap();
    let mut wrong_tx = args.clone();
    wrong_tx.nt = other;
    let f = m.bob_call(&u, "refund_lock", &wrong_tx, Amount::ZERO);
    assert_refused(&mut m, &f, XchainError::BadMerkleProof { chain: ca, height });
    // A transfer to someone other than TPK_Addr_A.
    let mut not_a_lock = args.clone();
    not_a_lock.nt = m.native_transfer(ca, &u, thief.address(), AMOUNT).unwrap();
    let f = m.bob_call(&u, "refund_lock", &not_a_lock, Amount::ZERO);
    assert_refused(&mut m, &f, XchainError::InstructionMismatch(format!("not a transfer to TPK_Addr_{ca}")));
    // The genuine refund still goes through.
    m.refund_lock(&u, ca, &nt).unwrap();
}

#[test]
fn a_chain_without_a_group_account_refunds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec { chains: 2, kappa: 4, ..MbsSpec::default() }).unwrap();
    let ca = a(&m);
    let u = dev_key(2);
    let (nt, height) = lock(&mut m, &u);
    until_dropped(&mut m, height);
    let tx = m.refund_lock_tx(&u, ca, &nt).unwrap();
    assert_refused(&mut m, &tx, XchainError::BadTerms(format!("chain {ca} has no group account to pay from")));
}

/// A refund whose accumulator path a relay made stale (the header's
/// mountain merged into a larger one) is refused with BadHeaderProof and
/// changes nothing; the path built again goes through.
#[test]
fn a_refund_path_made_stale_by_a_relay_is_refused_then_rebuilt() {
    use gridledger_xchain::mmr::Mmr;
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let ca = a(&m);
    let u = dev_key(2);
    let (nt, height) = lock(&mut m, &u);
    until_dropped(&mut m, height);
    let leaf = height - 1;
    let header_hash = m.external(ca).unwrap().sealed_header(height).unwrap().unwrap().header.hash();
    let mut stale = None;
    for _ in 0..64 {
        let tx = m.refund_lock_tx(&u, ca, &nt).unwrap();
        let gridledger_ledger::TxKind::Call { args, .. } = &tx.tx.kind else { panic!("a call") };
        let args: RefundLock = borsh::from_slice(args).unwrap();
        m.tick().unwrap();
        let acc: Mmr = m.bob_record(&keys::mmr(ca)).unwrap();
        if !acc.verify(leaf, &header_hash, &args.header_proof) {
            stale = Some(tx);
            break;
        }
    }
    let stale = stale.expect("a relay merged the header's mountain within 64 epochs");
    assert_refused(&mut m, &stale, XchainError::BadHeaderProof { chain: ca, height });
    let tpk = m.config.tpk_address(ca);
    let held = balance(&m, &tpk);
    m.refund_lock(&u, ca, &nt).unwrap();
    assert_eq!(balance(&m, &tpk), held - AMOUNT, "the rebuilt path refunds the lock");
}

/// `claim_relayed` (attack R5-2): a lock whose header the BoB no longer
/// keeps — dropped two BoB blocks after it became final when a relay
/// catches up — can still be claimed against the accumulator of relayed
/// headers, once: a refund or another claim after it is refused, as is a
/// forged header or someone else's claim, changing nothing.
#[test]
fn a_lock_whose_header_was_dropped_is_claimed_by_its_accumulator_path_once() {
    use gridledger_xchain::bob::ClaimRelayed;
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let ca = a(&m);
    let u = dev_key(2);
    let (nt, height) = lock(&mut m, &u);
    until_dropped(&mut m, height);
    let (_, proof) = m.external(ca).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
    let (header, header_proof) = m.header_path(ca, height).unwrap();
    let args = ClaimRelayed { claim: Claim { chain: ca, height, nt: nt.clone(), proof }, header, header_proof };
    let mut forged = args.clone();
    forged.header.tx_root = Hash32([9; 32]);
    let tx = m.bob_call(&u, "claim_relayed", &forged, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::BadHeaderProof { chain: ca, height });
    let thief = dev_key(3);
    let tx = m.bob_call(&thief, "claim_relayed", &args, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::NotClaimant);
    let tx = m.bob_call(&u, "claim_relayed", &args, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    assert_eq!(minted(&m, &u), AMOUNT);
    let again = m.bob_call(&u, "claim_relayed", &args, Amount::ZERO);
    assert_refused(&mut m, &again, XchainError::AlreadyClaimed(nt.hash()));
    let refund = m.refund_lock_tx(&u, ca, &nt).unwrap();
    assert_refused(&mut m, &refund, XchainError::AlreadyClaimed(nt.hash()));
}
