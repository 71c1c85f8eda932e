//! Third attack round on the cross-chain protocols (issue 14): SC_MPV nonce
//! floors, Π_CCTC late-lock refunds and the header accumulator.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r3 -- --ignored`.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, XchainError};

/// Floor too HIGH, set by the counterparty. The sender draws up the terms
/// and so chooses `nonce_floor_j`, the floor of the *receiver's* payment.
/// `BobMbs::check_floors` — documented as what each party checks before
/// agreeing (the receiver runs it before signing) — only refuses a floor
/// *below* the payer's next nonce. A sender who sets `nonce_floor_j` one
/// above the receiver's next nonce passes that check; the receiver signs,
/// pays its NT honestly (`native_tx`: its next nonce) on chain j, and the
/// BoB refuses the NT as `BeforeCct`: the payee got x_j natively while the
/// honest payer's NT can never count (it will be penalised as withholding
/// at CCT_V).
///
/// Expected: terms whose floor for a payer lies above that payer's next
/// nonce are refused by `check_floors` (the payer's honest NT could never
/// satisfy them) — or the honest NT is accepted. Observed: `check_floors`
/// returns `Ok(())` and `post_nt` reverts with `BeforeCct { nonce: n,
/// floor: n + 1 }`.
#[test]
#[ignore = "attack: a floor set above the payer's next nonce by the counterparty passes check_floors and makes the honest NT BeforeCct"]
fn a_floor_above_the_payers_next_nonce_is_accepted_and_traps_the_honest_payer() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let (s, r) = (sender(), receiver());
    let req = request(700, 3301);
    let mut terms = m.terms(&req);
    let next_j = m.external(J).unwrap().next_nonce(&r.address());
    assert_eq!(terms.nonce_floor_j, next_j);
    // The sender raises the receiver's floor by one.
    terms.nonce_floor_j = next_j + 1;
    let agreed = m.check_floors(&terms);
    // The receiver signs (its check passed), the sender submits.
    let cct = m.cct_tx(&s, &r, terms.clone());
    assert_eq!(bob_only(&mut m, &cct).status, TxStatus::Success, "the CCT is stored");
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    m.wait_native_window(&rec).unwrap();
    // The receiver pays honestly on chain j and posts its NT.
    let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    assert_eq!(nt_r.tx.nonce, next_j, "the honest NT uses the payer's next nonce");
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r.clone() }, Amount::ZERO);
    let receipt = bob_only(&mut m, &post);
    let trapped = receipt.status
        == TxStatus::Reverted(XchainError::BeforeCct { chain: J, nonce: next_j, floor: next_j + 1 }.as_revert());
    assert!(
        agreed.is_err() || !trapped,
        "check_floors accepted terms ({agreed:?}) under which the receiver's honest NT is refused: {:?}",
        receipt.status
    );
}
