//! The credit-note channel's I/O wiring (seed 000): the sans-IO
//! [`gridledger_channels::ChannelMachine`] as a party process over an
//! authenticated network link, a snapshot file and a node's JSON-RPC.
//! It lives here, beside the RPC client and the node, so the channel crate
//! itself never depends on `node` (DESIGN principle 3).
//!
//! - [`chainlink`]: signs and submits CNS calls, follows a channel's events;
//! - [`party`]: one party as its own process; [`spec`] prepares a channel on
//!   chain and describes it; [`watch`]: the watch service that answers
//!   stale closes; [`merchant`]: the merchant's service (approvals,
//!   billing); [`devnode`]: a single-validator node for tests and benches;
//! - [`manager`]: many channels in one process, one event stream;
//! - [`alert`]: alerts beyond logs (`--alert-exec`);
//! - [`control`]: the guarded loopback control ports (token, caps).

pub mod alert;
pub mod chainlink;
pub mod control;
pub mod devnode;
pub mod manager;
pub mod merchant;
pub mod party;
pub mod spec;
pub mod watch;
