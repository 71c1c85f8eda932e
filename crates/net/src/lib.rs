//! Real-socket links between validators: the `net` runtime that drives
//! gridledger's sans-IO protocol cores (DESIGN.md, "runtime" layer).
//!
//! A [`Network`] keeps one TCP connection to every other validator of a
//! configured set, each encrypted and mutually authenticated with Noise
//! (`Noise_XX_25519_ChaChaPoly_SHA256` from `snow`) and bound to the peer's
//! secp256k1 validator key by a signature in the handshake (see
//! [`handshake`]). Protocols address peers by validator index, exactly as
//! their `Step`s do: [`Network::send`] / [`Network::broadcast`] take bytes
//! for an index, [`Inbound::recv`] yields `(from_index, bytes)`.
//!
//! Bounds: a frame limit (`max_frame`), a per-peer outbound queue that drops
//! its oldest message when full, and a per-peer inbound queue bounded in
//! messages and bytes, served round-robin, whose back-pressure stalls only
//! the peer that fills it. [`Inbound::into_peers`] hands out the per-peer
//! queues for callers that keep their own per-peer lanes.
//!
//! For experiments, [`Network::set_link_faults`] injects delay, seeded loss
//! or a full block on what arrives from a peer.
//!
//! Delivery is best effort, like the network the simulator models: each
//! message arrives at most once, in order per link; a message written in
//! the instant its link's far end dies is lost (TCP cannot tell the
//! sender), and while a duplicate-dial tie-break settles (at connect time
//! only) messages of two links may interleave. The protocol cores already
//! tolerate loss and reordering (PBFT: retransmitted view changes,
//! catch-up), so the links add no acknowledgements of their own.
//!
//! Wiring a protocol (`gridledger-node`'s validator does this for PBFT;
//! `net` carries opaque bytes and knows no protocol):
//!
//! ```no_run
//! # use gridledger_net::{Network, NetworkConfig, Inbound};
//! # async fn drive(net: Network, mut inbound: Inbound) {
//! while let Some((from, bytes)) = inbound.recv().await {
//!     // let msg = Message::from_bytes(&bytes, ..)?;      // decode, bounded
//!     // let step = replica.handle_message(from, msg);    // sans-IO core
//!     // for out in step.messages {
//!     //     match out.to {
//!     //         Target::All => net.broadcast(out.message.to_bytes()),
//!     //         Target::One(i) => net.send(i, out.message.to_bytes()),
//!     //     };
//!     // }
//!     let _ = (from, bytes);
//! }
//! # }
//! ```

mod backoff;
pub mod config;
pub mod error;
pub mod handshake;
mod network;
mod stats;
mod wire;

pub use config::{LinkFaults, NetworkConfig, PeerConfig};
pub use error::{ConfigError, HandshakeError, LinkError, NetError, SendError};
pub use network::{Inbound, NetEvent, Network, PeerInbound};
pub use stats::{NetworkStats, PeerStats};

#[cfg(test)]
mod tests;
