//! Two-party state channels of seed 000 (Figs 6–9, 13–16; energy trades per
//! §7.2, Eqs 6–9) on the CNS adjudicator contract.
//!
//! - [`machine`]: one party's sans-IO state machine and its durable
//!   [`machine::ChannelStore`];
//! - [`driver`]: an in-memory driver that runs two machines against a
//!   [`gridledger_ledger::devnet::DevChain`], used by the tests;
//! - [`disk`]: the durable snapshot file of a party.
//!
//! This crate does not depend on the node: the party process, the watch
//! service, the merchant service and the RPC wiring live in
//! `gridledger_node::channel`.

pub mod disk;
pub mod driver;
pub mod machine;

#[cfg(feature = "mutants")]
pub use machine::{mutants, Mutation};
pub use machine::{
    ChainEvent, ChainTx, ChannelError, ChannelEvent, ChannelMachine, ChannelParams, ChannelStore, Input, Message,
    Phase, Request, Step, MAX_MESSAGE_BYTES, MAX_STORE_BYTES, MAX_WITHDRAW_RESENDS,
};
