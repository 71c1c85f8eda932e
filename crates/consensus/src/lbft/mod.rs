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
//! - [`crypto`]: batch certificates (Ed25519 multi-signatures of `n − f`
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
//! Quorums, for any `n ≥ 1` with `f = ⌊(n − 1) / 3⌋` ([`faults`]): every
//! quorum whose proof needs two quorums to share a correct replica is
//! `n − f` ([`quorum`]) — batch certificates, the agreement's `BVal`
//! acceptance and its `Aux` and `Conf` waits, and the ACS rule's `n − f`
//! agreements decided 1. Two such quorums intersect in at least
//! `n − 2f ≥ f + 1` replicas, so in a correct one, and the `n − f` correct
//! replicas make one alone (liveness). For `n = 3f + 1` that is the usual
//! `2f + 1`; for other `n` it is not: with `n = 5` (`f = 1`), `2f + 1 = 3`
//! echoes from each side of a split let a Byzantine proposer, the one
//! replica in both, certify two batches for one slot, while `n − f = 4`
//! cannot. The thresholds that only need one correct replica among them
//! stay `f + 1`: the agreement's `BVal` relay and `Term` decision, the
//! common coin, and the sync records a lagging replica adopts.
//!
//! Properties, for any `n` with at most `f` Byzantine replicas
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

/// The faults tolerated among `n` replicas: `f = ⌊(n − 1) / 3⌋`.
pub const fn faults(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The quorum among `n` replicas: `n − f` ([`faults`]). Any two quorums
/// share `n − 2f ≥ f + 1` replicas, at least one of them correct, and the
/// `n − f` correct replicas form one by themselves. `2f + 1` for
/// `n = 3f + 1`, and more for other `n` (see the module docs).
pub const fn quorum(n: usize) -> usize {
    n - faults(n)
}

#[cfg(test)]
mod tests;
