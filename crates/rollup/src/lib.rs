//! The dual blockchain with the Improved Optimistic Rollup (IOR) of thesis
//! Chapter 3.
//!
//! - [`types`]: agreement and settlement transactions (Eq 3.1, 3.2), TCRs,
//!   the reputation/deposit parameters and the units (1 coin = 1,000,000
//!   minor units, energy in Wh, meter readings in W over `Δt` seconds).
//! - [`exec`]: `SC_EXE_AT` / `SC_EXE_ST` (§3.3.5) as one pure function that
//!   executors, validators (`SC_VERIFY`), the primary chain's arbitration and
//!   the single-chain baseline all run.
//! - [`primary`]: the primary chain's contract (`SC_DS_*`, `SC_CR_*`,
//!   arbitration, node registry with certificates and deposits, the bridge
//!   of coin in and out). It stores commitments, not settlement state.
//! - [`state`]: the settlement state off the primary chain (balances,
//!   reputation, agreements, claims) and its per-batch state root: what the
//!   primary chain stores, what executors publish, how anyone rebuilds the
//!   state from chain data (design note in its module docs).
//! - [`secondary`]: the secondary chain's contract (`sc_exe`, `sc_verify`).
//! - [`single`]: the single-chain baseline; the conventional optimistic
//!   rollup baseline is the primary contract with a long window
//!   ([`driver::Mode::ConventionalOr`]).
//! - [`roles`]: sans-IO executor, validator and smart meter (§3.3.3–3.3.4).
//! - [`driver`]: an in-process driver running the roles over two chains.
//! - [`security`]: the economic condition of Eq 3.5.
//! - [`data`], [`demo`]: the §3.5.4 day of 15 traders on embedded real
//!   weather and load data ([`demo::run_day`]).
//! - [`bench`]: gas and settlement-time benchmarks against the
//!   challenge-window rollup and the single chain ([`bench::bench_ior`],
//!   §3.5.3, Figs 3-5 and 3-7, Tables 3-2 to 3-6).
//!
//! The IOR contracts live in this crate, with their own registries
//! ([`primary_registry`], [`secondary_registry`], [`single_chain_registry`]),
//! rather than in `gridledger-contracts`: they share the execution code and
//! types with the roles that must reproduce their results bit for bit, and
//! only the chains of this application deploy them.

use std::sync::Arc;

use gridledger_core::ContractId;
use gridledger_ledger::ContractRegistry;

pub mod bench;
pub mod data;
pub mod demo;
pub mod driver;
pub mod exec;
pub mod mutants;
pub mod primary;
pub mod roles;
pub mod secondary;
pub mod security;
pub mod single;
pub mod smt;
pub mod state;
mod store;
pub mod types;

/// Contract id of [`primary::IorPrimaryContract`] on the primary chain.
pub const IOR_PRIMARY_ID: ContractId = 20;
/// Contract id of [`secondary::IorSecondaryContract`] on the secondary chain.
pub const IOR_SECONDARY_ID: ContractId = 21;
/// Contract id of [`single::SingleChainContract`] on the baseline chain.
pub const IOR_SINGLE_ID: ContractId = 22;

/// Registry of a primary chain.
pub fn primary_registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(IOR_PRIMARY_ID, Arc::new(primary::IorPrimaryContract));
    r
}

/// Registry of a secondary chain.
pub fn secondary_registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(IOR_SECONDARY_ID, Arc::new(secondary::IorSecondaryContract));
    r
}

/// Registry of the single-chain baseline.
pub fn single_chain_registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(IOR_SINGLE_ID, Arc::new(single::SingleChainContract));
    r
}

/// Borsh-encodes call arguments.
pub fn args<T: borsh::BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).unwrap_or_default()
}
