//! Two-party state channels of seed 000 (Figs 6–9, 13–16; energy trades per
//! §7.2, Eqs 6–9) on the CNS adjudicator contract.
//!
//! - [`machine`]: one party's sans-IO state machine and its durable
//!   [`machine::ChannelStore`];
//! - [`driver`]: an in-memory driver that runs two machines against a
//!   [`gridledger_ledger::devnet::DevChain`], used by the tests;
//! - [`party`]: one party as its own process, over an authenticated network
//!   link, a durable snapshot file ([`disk`]) and a node's JSON-RPC
//!   ([`chainlink`]); [`spec`] prepares a channel on chain and describes it;
//! - [`watch`]: the watch service that answers stale closes;
//!   [`merchant`]: the merchant's service (approvals, billing).

pub mod chainlink;
pub mod devnode;
pub mod disk;
pub mod driver;
pub mod machine;
pub mod merchant;
pub mod party;
pub mod spec;
pub mod watch;

pub use machine::{
    ChainEvent, ChainTx, ChannelError, ChannelEvent, ChannelMachine, ChannelParams, ChannelStore, Input, Message,
    Phase, Request, Step, MAX_MESSAGE_BYTES, MAX_STORE_BYTES,
};
