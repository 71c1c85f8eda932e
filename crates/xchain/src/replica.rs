//! One validator of an embedded chain, alone: its own replica of the chain
//! and its own key — what one validator process runs when a chain's
//! validators are separate processes (the step from "one process per
//! chain" to "one process per validator" of `xchain up --processes`).
//!
//! An epoch across replicas: the scheduled leader of the next height
//! ([`Replica::propose`]) builds a block from its mempool; on a
//! deterministic chain every replica re-executes it and, if it is valid
//! and from the scheduled leader, signs its PBFT commit vote
//! ([`Replica::vote`]); 2f+1 votes make the seal; every replica checks the
//! seal as the BoB does and commits the block ([`Replica::commit`]). On a
//! probabilistic chain the leader's own signature is the seal. Moving
//! proposals, votes and sealed blocks between replicas is the caller's
//! (a driver over loopback, or a test); no replica signs for another.

use gridledger_consensus::pbft::{vote_digest, ValidatorSet, VoteKind};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Hash32, Height, Signature, Timestamp};
use gridledger_ledger::{Block, Chain, ChainError, Seal, SignedTransaction, SubmitError};

use crate::embedded::{EmbeddedChain, EPOCH_MS};
use crate::error::XchainError;
use crate::headers::{ChainRegistration, Finality, SealedHeader};

/// Why a replica refused a step; it changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("validator {me} is not the scheduled leader of height {height} (validator {leader} is)")]
    NotLeader { height: Height, leader: usize, me: usize },
    #[error("block {height} was proposed by someone other than its scheduled leader {leader}")]
    WrongProposer { height: Height, leader: usize },
    #[error("a probabilistic chain's block is sealed by its leader alone; there is no vote")]
    NoVotes,
    #[error(transparent)]
    Seal(#[from] XchainError),
}

/// One validator's replica of a chain.
pub struct Replica {
    chain: Chain,
    key: KeyPair,
    index: usize,
    reg: ChainRegistration,
}

impl Replica {
    /// Validator `index` of `chain` (opened in this validator's own
    /// directory): keeps that validator's key only.
    pub fn new(chain: EmbeddedChain, index: usize) -> Result<Self, ChainError> {
        let reg = chain.registration(1)?;
        let (chain, key) = chain
            .into_parts(index)
            .ok_or_else(|| ChainError::Genesis(format!("no validator {index} in the chain's genesis")))?;
        Ok(Self { chain, key, index, reg })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn height(&self) -> Height {
        self.chain.tip().height
    }

    /// Commit votes that seal a block of a deterministic chain (2f+1).
    pub fn quorum(&self) -> usize {
        ValidatorSet::new(self.reg.instance, self.reg.validators.clone())
            .map_or(self.reg.validators.len(), |s| s.quorum())
    }

    /// The scheduled leader of `height`: validator `height mod n`.
    pub fn leader_of(&self, height: Height) -> usize {
        (height % self.reg.validators.len() as u64) as usize
    }

    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, ReplicaError> {
        Ok(self.chain.submit(&tx.to_bytes())?)
    }

    /// The next block, built from this replica's mempool, if this
    /// validator leads the next height; stamped one epoch after its parent
    /// or at `not_before`, whichever is later. A probabilistic chain's
    /// block comes sealed with the leader's signature; a deterministic
    /// chain's carries an empty quorum until the votes are in.
    pub fn propose(&mut self, not_before: Timestamp) -> Result<Block, ReplicaError> {
        let height = self.height() + 1;
        let leader = self.leader_of(height);
        if leader != self.index {
            return Err(ReplicaError::NotLeader { height, leader, me: self.index });
        }
        let at = (self.chain.tip().timestamp + EPOCH_MS).max(not_before);
        let (ex, _dropped) = self.chain.build_block(&self.key.public(), at);
        let mut block = ex.block;
        block.seal = match self.reg.finality {
            Finality::Probabilistic { .. } => Seal::Single { signature: self.key.sign(&block.hash()) },
            Finality::Deterministic => Seal::Quorum { view: 0, signatures: Vec::new() },
        };
        Ok(block)
    }

    /// This validator's commit vote for a proposed block of a
    /// deterministic chain: only for the next height, from its scheduled
    /// leader, and valid when re-executed on this replica's state.
    pub fn vote(&self, block: &Block) -> Result<(u32, Signature), ReplicaError> {
        if self.reg.finality != Finality::Deterministic {
            return Err(ReplicaError::NoVotes);
        }
        self.check_proposer(block)?;
        self.chain.validate_block(block)?;
        let digest = vote_digest(VoteKind::Commit, &self.reg.instance, 0, block.header.height, &block.hash());
        Ok((self.index as u32, self.key.sign(&digest)))
    }

    /// Commits a sealed block: the seal is checked as the BoB checks a
    /// relayed header (2f+1 commit votes, or the scheduled leader's
    /// signature), the block re-executed on this replica's state.
    pub fn commit(&mut self, block: &Block) -> Result<(), ReplicaError> {
        self.check_proposer(block)?;
        self.reg.check_seal(&SealedHeader { header: block.header.clone(), seal: block.seal.clone() })?;
        let ex = self.chain.validate_block(block)?;
        self.chain.commit(ex)?;
        Ok(())
    }

    fn check_proposer(&self, block: &Block) -> Result<(), ReplicaError> {
        let height = block.header.height;
        let leader = self.leader_of(height);
        if self.reg.validators.get(leader) != Some(&block.header.proposer) {
            return Err(ReplicaError::WrongProposer { height, leader });
        }
        Ok(())
    }
}
