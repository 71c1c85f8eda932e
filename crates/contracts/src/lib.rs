//! Native contracts shipped with every gridledger chain.
//!
//! - [`token::TokenContract`] (id [`TOKEN_ID`]): fungible tokens, ERC-20 style.
//! - [`escrow::EscrowContract`] (id [`ESCROW_ID`]): native-coin deposits with
//!   time-locks, used by channels (seed 000 collateral), the IOR deposits
//!   (thesis Ch.3) and CCTE deposits (thesis Ch.5).
//! - [`cns::CnsContract`] (id [`CNS_ID`]): the Credit-Note System of seed
//!   000 — MSC, ESC and the state-channel adjudicator.

use gridledger_core::ContractId;
use gridledger_ledger::ContractRegistry;
use std::sync::Arc;

pub mod cns;
pub mod escrow;
pub mod token;

pub const TOKEN_ID: ContractId = 1;
pub const ESCROW_ID: ContractId = 2;
pub const CNS_ID: ContractId = 3;

/// The registry every chain starts with.
pub fn default_registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(TOKEN_ID, Arc::new(token::TokenContract));
    r.register(ESCROW_ID, Arc::new(escrow::EscrowContract));
    r.register(CNS_ID, Arc::new(cns::CnsContract));
    r
}

/// Borsh-encodes call arguments.
pub fn args<T: borsh::BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).unwrap_or_default()
}
