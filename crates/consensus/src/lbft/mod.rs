//! Leaderless asynchronous BFT (thesis Ch.4, §4.2.1): the atomic broadcast
//! P^ABC as a sans-IO state machine, in the style of [`crate::pbft`].
//!
//! - [`admission`]: admission control at the edge (a bound on the
//!   transactions in flight, refusing offered load beyond it);
//! - [`batch`]: where batches come from: the replica's driver asks a
//!   [`BatchSource`] (FIFO here; π^τ with TBG, and the HSM and random
//!   baselines, in [`txm`]) for one batch per epoch;
//! - [`txm`]: transaction management (π^τ) and batch generation (TBG,
//!   HSM, random);
//! - [`crypto`]: batch certificates (Ed25519 multi-signatures of `2f + 1`
//!   signed echoes on nodes) and the common coin (a BLS12-381 threshold
//!   signature on nodes); a cheap stand-in for both in the simulator's
//!   large sweeps;
//! - [`messages`]: the wire messages and signed statements;
//! - [`aba`]: asynchronous binary agreement with a threshold coin;
//! - [`replica`]: the replica (certified broadcast, ACS, delivery,
//!   durability, catch-up);
//! - [`sim`]: the replica under `gridledger-sim`, Byzantine behaviours and
//!   the safety checks.
//!
//! Properties, for `n = 3f + 1` with at most `f` Byzantine replicas
//! (a replica that crashes counts as faulty while it is down):
//! agreement and total order (every correct replica delivers the same
//! epochs with the same transactions in the same order), integrity (each
//! transaction at most once, at its earliest occurrence, and only what a
//! replica proposed), strong validity (at least `n − 2f` of the accepted
//! batches per epoch come from correct replicas).

pub mod aba;
pub mod admission;
pub mod batch;
pub mod crypto;
pub mod messages;
mod replica;
pub mod sim;
pub mod txm;

pub use aba::Said;
pub use admission::{Admission, Backlog};
pub use batch::{tx_id, FifoPolicy, IdHasher, IdMap, IdSet, Refused, Tx};
pub use crypto::{KeyUse, MultiSig, NodeCrypto, NodeShare, NodeSig, SimCrypto, ThresholdCrypto};
pub use messages::*;
pub use replica::*;
pub use txm::BatchSource;

#[cfg(test)]
mod tests;
