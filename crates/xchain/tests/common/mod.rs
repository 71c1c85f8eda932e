#![allow(dead_code)]

use gridledger_core::crypto::KeyPair;
use gridledger_core::Hash32;
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{Receipt, SignedTransaction, TxStatus};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest, FIRST_EXTERNAL};
use gridledger_xchain::{CctRecord, XchainError};

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

/// Phase 1 only: the CCT executed on the BoB.
pub fn open_cct(m: &mut BobMbs, req: &SwapRequest) -> (Hash32, CctRecord) {
    let terms = m.terms(req);
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
