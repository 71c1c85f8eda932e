//! External-chain headers as the BoB sees them (thesis §5.3.1, assumption
//! (ii)): the BoB validators keep only the latest κ_i headers of each
//! external chain BC_i (more on a small κ_i: [`crate::bob::kept_headers`]), fed by relayers, and accept a header only if it
//! extends the stored tip and carries the signatures of BC_i's validators.
//!
//! A deterministic chain's header carries a PBFT commit certificate
//! ([`Seal::Quorum`]: a quorum of commit votes over the header hash, the
//! digest [`vote_digest`] that `gridledger-consensus` signs), so a header is
//! final as soon as it is relayed. A probabilistic chain's header carries
//! its proposer's signature ([`Seal::Single`]) and is final once `k`
//! descendants are stored (the common-prefix parameter), and its proposer
//! must be the one the chain's round-robin schedule names for that height
//! ([`ChainRegistration::leader`]).
//!
//! Decision (fork choice, attack R6-5): the BoB stores one branch of each
//! external chain. Its final part (every header at or below the stored tip
//! less `k` confirmations, all of it on a deterministic chain) never
//! changes. Its non-final suffix is replaceable by the longest valid
//! branch: a `relay` whose first header is at or below the stored tip is a
//! competing branch from that header's parent; it is taken if its parent
//! is a stored header, it leaves every final header in place
//! ([`XchainError::ForkBelowFinality`]) and it ends above the stored tip
//! (otherwise [`XchainError::ForkNotLonger`]: of equally long branches the
//! first stays). It must come in one `relay` (at most `MAX_RELAY_BATCH`
//! headers, counted against the per-block relay cap by how far it moves
//! the tip), so the BoB never keeps competing branches side by side and
//! its storage stays bounded by [`crate::bob::kept_headers`] (κ_i, more
//! on a small κ_i) headers a chain. Without this, one equivocating
//! proposer relaying its own block first froze the BoB's view
//! of the chain for good (`ParentMismatch` for every honest header). The
//! accumulator of relayed headers ([`crate::mmr`]) takes a header only once
//! it is final, so a replaced suffix never entered it. Finality stays the
//! seed's `k`-confirmation rule; an attacker needs a longer valid branch,
//! i.e. the leader slots of `k + 1` consecutive heights, as before. A proof
//! of equivocation alone is not accepted: the longer honest branch makes it
//! unnecessary.
//!
//! Development deployments (`BobMbs`, `gridledger xchain up`) derive every
//! validator key from a public seed (`gridledger-xchain-<chain>-validator-<i>`):
//! anyone can sign such a chain's headers. They are for development and
//! tests only, never for a real setup, whose validators hold their own keys.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{vote_digest, ValidatorSet, VoteKind};
use gridledger_core::crypto::verify;
use gridledger_core::{ChainId, Hash32, Height, PublicKey, Timestamp};
use gridledger_ledger::{BlockHeader, Seal};
use serde::{Deserialize, Serialize};

use crate::error::XchainError;

/// How an external chain finalises blocks (thesis §5.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Finality {
    /// PBFT-style: a block with a quorum certificate is final.
    Deterministic,
    /// Longest-chain style: final after `k` confirmations.
    Probabilistic { k: u32 },
}

impl Finality {
    /// Descendants a header needs before it counts as final.
    pub fn confirmations(&self) -> u32 {
        match self {
            Finality::Deterministic => 0,
            Finality::Probabilistic { k } => *k,
        }
    }
}

/// What the BoB knows about an external chain: fixed in the BoB's contract
/// configuration (its genesis), never changed by a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainRegistration {
    pub chain_id: ChainId,
    /// The consensus instance bound into every vote (the chain's genesis hash).
    pub instance: Hash32,
    /// BC_i's validators in index order.
    pub validators: Vec<PublicKey>,
    pub finality: Finality,
    /// κ_i: how many of the latest headers the BoB keeps — at least; a
    /// small κ_i keeps [`ChainRegistration::kept`] (attack R15-3) — and
    /// the κ_i of Algorithm 5.1's deadlines.
    pub kappa: u32,
    /// The chain's state tree has `2^state_buckets_log2` buckets (for state proofs).
    pub state_buckets_log2: u32,
    /// The trusted starting point: the genesis header's height and hash.
    pub anchor_height: Height,
    pub anchor_hash: Hash32,
    /// The anchor header's timestamp: the first relayed header's time bound.
    #[serde(default)]
    pub anchor_timestamp: Timestamp,
}

/// The most a block's timestamp may run ahead of its parent's (ms): one
/// day, i.e. 5,760 epochs of 15 s.
///
/// Decision (attack R4-3): a block's time is its leader's choice, and
/// nothing else bounds it from above; one Byzantine leader stamping its
/// block near `u64::MAX` made every later block's time overflow and halted
/// the chain. Honest replicas refuse to vote for (and the BoB refuses to
/// store) a header stamped more than this past its parent, so reaching the
/// end of time takes ~2·10^11 blocks. A chain idle for longer than a day
/// restarts with blocks one day apart until it has caught up with its clock.
pub const MAX_BLOCK_GAP_MS: Timestamp = 86_400_000;

/// Checks that `timestamp` (of the block at `height`) is after `parent`
/// and at most [`MAX_BLOCK_GAP_MS`] past it.
pub fn check_timestamp(
    chain: ChainId,
    height: Height,
    parent: Timestamp,
    timestamp: Timestamp,
) -> Result<(), XchainError> {
    if timestamp <= parent || timestamp - parent > MAX_BLOCK_GAP_MS {
        return Err(XchainError::BadTimestamp { chain, height, timestamp, parent, max_gap: MAX_BLOCK_GAP_MS });
    }
    Ok(())
}

/// A header with the seal that makes it valid on its chain: what a relayer ships.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SealedHeader {
    pub header: BlockHeader,
    pub seal: Seal,
}

impl ChainRegistration {
    /// How many of this chain's latest headers the BoB keeps:
    /// [`crate::bob::kept_headers`] of its κ_i and confirmations.
    pub fn kept(&self) -> u64 {
        crate::bob::kept_headers(self.kappa, self.finality.confirmations())
    }

    /// Signature verifications a header's seal costs the BoB (for gas).
    pub fn seal_checks(&self, seal: &Seal) -> u64 {
        match seal {
            Seal::Quorum { signatures, .. } => signatures.len() as u64,
            Seal::Single { .. } => 1,
            Seal::Genesis | Seal::Epoch { .. } => 0,
        }
    }

    /// Checks that `sh` is the next header after the stored tip
    /// `(tip_height, tip_hash)` and is signed by this chain's validators.
    ///
    /// The header's time is checked against the anchor's when it follows
    /// the anchor; use [`check_next_after`](Self::check_next_after) with
    /// the stored tip's time otherwise.
    pub fn check_next(&self, tip_height: Height, tip_hash: &Hash32, sh: &SealedHeader) -> Result<(), XchainError> {
        let parent = (tip_height == self.anchor_height).then_some(self.anchor_timestamp);
        self.check_next_after(tip_height, tip_hash, parent, sh)
    }

    /// [`check_next`](Self::check_next) with the parent's timestamp, when
    /// known: the header must be after it and at most
    /// [`MAX_BLOCK_GAP_MS`] past it.
    pub fn check_next_after(
        &self,
        tip_height: Height,
        tip_hash: &Hash32,
        parent_timestamp: Option<Timestamp>,
        sh: &SealedHeader,
    ) -> Result<(), XchainError> {
        let h = &sh.header;
        if h.chain_id != self.chain_id {
            return Err(XchainError::WrongChain { expected: self.chain_id, got: h.chain_id });
        }
        if h.height != tip_height + 1 {
            return Err(XchainError::NotNext { tip: tip_height, got: h.height });
        }
        if h.parent != *tip_hash {
            return Err(XchainError::ParentMismatch(h.height));
        }
        if let Some(parent) = parent_timestamp {
            check_timestamp(self.chain_id, h.height, parent, h.timestamp)?;
        }
        self.check_seal(sh)
    }

    /// The scheduled proposer of `height` on a probabilistic chain:
    /// validator `height mod n` in index order (the round-robin schedule
    /// the embedded chains and the ledger's solo producers follow).
    ///
    /// Decision: a probabilistic chain registers with the BoB together
    /// with this schedule. Without it one validator could sign a `k`-deep
    /// branch alone and the BoB would take it as final; with it a private
    /// branch of `k + 1` blocks needs `min(k + 1, n)` colluding validators.
    pub fn leader(&self, height: Height) -> Option<&PublicKey> {
        if self.validators.is_empty() {
            return None;
        }
        self.validators.get((height % self.validators.len() as u64) as usize)
    }

    /// The seal check alone: a quorum certificate for deterministic chains,
    /// the scheduled proposer's signature for probabilistic ones.
    pub fn check_seal(&self, sh: &SealedHeader) -> Result<(), XchainError> {
        let h = &sh.header;
        let hash = h.hash();
        let bad = |reason: String| XchainError::BadSeal { chain: self.chain_id, height: h.height, reason };
        match (&sh.seal, self.finality) {
            (Seal::Genesis, _) => Err(XchainError::Unsigned(h.height)),
            // Its certificates are BLS threshold signatures the BoB does not
            // register (yet): such a chain is not a BoB member.
            (Seal::Epoch { .. }, _) => {
                Err(bad("an LBFT chain's headers carry no certificate the BoB can check".into()))
            }
            (Seal::Quorum { view, signatures }, Finality::Deterministic) => {
                let set = ValidatorSet::new(self.instance, self.validators.clone()).map_err(|e| bad(e.to_string()))?;
                let digest = vote_digest(VoteKind::Commit, &self.instance, *view, h.height, &hash);
                set.verify_quorum(&digest, signatures).map_err(|e| bad(e.to_string()))
            }
            (Seal::Single { signature }, Finality::Probabilistic { .. }) => {
                if !self.validators.contains(&h.proposer) {
                    return Err(bad("the proposer is not a validator".into()));
                }
                let Some(leader) = self.leader(h.height) else {
                    return Err(bad("the chain has no validators".into()));
                };
                if h.proposer != *leader {
                    let turn = h.height % self.validators.len() as u64;
                    return Err(bad(format!("proposed out of turn: height {} belongs to validator {turn}", h.height)));
                }
                verify(&h.proposer, &hash, signature).map_err(|e| bad(e.to_string()))
            }
            (Seal::Single { .. }, Finality::Deterministic) => {
                Err(bad("a deterministic chain's header needs a quorum certificate".into()))
            }
            (Seal::Quorum { .. }, Finality::Probabilistic { .. }) => {
                Err(bad("a probabilistic chain's header carries its proposer's signature".into()))
            }
        }
    }
}
