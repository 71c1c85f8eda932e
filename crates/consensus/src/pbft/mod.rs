//! The primary chain's consensus: the improved PBFT of thesis §3.3.2
//! (Fig. 3-3) as a sans-IO state machine.
//!
//! Thesis steps and where they live:
//! 1. *Request*: the leader of block `BN` in `view` is
//!    `ID = (view + BN) mod |R|` ([`ValidatorSet::leader`], Eq. 3.4); the
//!    replica asks its caller for a block through [`Step::need_proposal`].
//! 2. *Pre-prepare*: the leader's signed [`PrePrepare`]; replicas check the
//!    leader identity, view, sequence number, block hash, signature and the
//!    block's own consistency ([`Payload::well_formed`], e.g. transaction
//!    hashes), then ask the caller to execute it ([`ValidateRequest`]).
//! 3. *Prepare*: a quorum (`2f + 1`) of matching prepare votes.
//! 4. *Commit*: commit votes; an empty block gets a "view update" instead.
//! 5. *Reply*: a quorum of commits appends the block ([`Step::committed`]
//!    with its [`QuorumCert`]); a quorum of view updates increments `view`.
//!
//! Beyond the thesis, for production use: the "view update" is a full PBFT
//! view change ([`ViewChange`] carrying the sender's [`PreparedCert`], and a
//! [`NewView`] with a quorum of them that must re-propose the highest
//! prepared block), so no committed block is lost or forked across views;
//! deadlines with exponential backoff; catch-up of committed blocks with
//! their commit certificates; durable vote state ([`Durable`]) so a
//! restarted replica never equivocates; and a fault log instead of panics.

mod messages;
mod replica;
pub mod sim;

pub use messages::*;
pub use replica::*;

#[cfg(test)]
mod tests;
