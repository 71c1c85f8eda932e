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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::embedded::{EmbeddedChain, EPOCH_MS};
use crate::error::XchainError;
use crate::headers::{check_timestamp, ChainRegistration, Finality, SealedHeader, MAX_BLOCK_GAP_MS};

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
    #[error("block {height} is not signed by its scheduled leader {leader}")]
    UnsignedProposal { height: Height, leader: usize },
    #[error("already voted for block {voted} at height {height}; refusing a second vote at that height")]
    AlreadyVoted { height: Height, voted: Hash32 },
    #[error("the logged vote at height {height} cannot be read back; refusing to vote at that height")]
    UnreadableVote { height: Height },
    #[error("block {height} stamped {timestamp}: not after its parent ({parent}) or more than {max_gap} ms past it")]
    BadTimestamp { height: Height, timestamp: Timestamp, parent: Timestamp, max_gap: Timestamp },
    #[error("vote log: {0}")]
    VoteLog(String),
    #[error(transparent)]
    Seal(#[from] XchainError),
}

/// One validator's replica of a chain.
pub struct Replica {
    chain: Chain,
    key: KeyPair,
    index: usize,
    reg: ChainRegistration,
    /// The block this validator signed a commit vote for, per height
    /// (PBFT's one vote per view and sequence; view 0 here).
    votes: Mutex<BTreeMap<Height, Hash32>>,
    /// Where the votes are persisted, if anywhere (see [`Replica::with_vote_log`]).
    vote_log: Option<PathBuf>,
    /// Heights whose logged vote cannot be read back: no vote there, ever.
    unreadable: BTreeSet<Height>,
}

impl Replica {
    /// Validator `index` of `chain` (opened in this validator's own
    /// directory): keeps that validator's key only.
    pub fn new(chain: EmbeddedChain, index: usize) -> Result<Self, ChainError> {
        let reg = chain.registration(1)?;
        let (chain, key) = chain
            .into_parts(index)
            .ok_or_else(|| ChainError::Genesis(format!("no validator {index} in the chain's genesis")))?;
        Ok(Self {
            chain,
            key,
            index,
            reg,
            votes: Mutex::new(BTreeMap::new()),
            vote_log: None,
            unreadable: BTreeSet::new(),
        })
    }

    /// Persists this validator's votes in `path` (one `height hash` line
    /// each, appended and synced before the vote is handed out) and loads
    /// those already there, so a restarted validator process never votes
    /// for a second block at a height it voted at before the restart.
    ///
    /// A torn tail (bytes after the last newline: a crash mid-append, so
    /// that vote was never handed out) is cut off and the truncation synced
    /// before anything is appended, so the next vote's line cannot run into
    /// it. A complete line that does not parse is a vote that cannot be
    /// read back: if its height is readable, this validator refuses every
    /// vote at that height ([`ReplicaError::UnreadableVote`]) rather than
    /// risk a second one; if not even that is readable, loading fails.
    ///
    /// Safety over liveness: there is no view change, so if a crash falls
    /// after 2f+1 votes but before any validator committed the block, the
    /// voters refuse a different proposal at that height after a restart
    /// (`AlreadyVoted`) and that chain stalls until a view change exists.
    pub fn with_vote_log(mut self, path: &Path) -> Result<Self, ReplicaError> {
        let log = |e: std::io::Error| ReplicaError::VoteLog(format!("{}: {e}", path.display()));
        let mut votes = BTreeMap::new();
        let mut unreadable = BTreeSet::new();
        match std::fs::read(path) {
            Ok(bytes) => {
                let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                if complete < bytes.len() {
                    // A torn last record: never handed out. Cut it off (durably)
                    // so the next append starts on a line of its own.
                    let f = std::fs::OpenOptions::new().write(true).open(path).map_err(log)?;
                    f.set_len(complete as u64).map_err(log)?;
                    f.sync_all().map_err(log)?;
                }
                for (n, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let line = String::from_utf8_lossy(line);
                    let mut parts = line.split_whitespace();
                    let (h, x, rest) = (parts.next(), parts.next(), parts.next());
                    let height = h.and_then(|h| h.parse::<Height>().ok());
                    match (height, x.and_then(|x| Hash32::from_hex(x).ok()), rest) {
                        (Some(h), Some(x), None) => match votes.insert(h, x) {
                            Some(prev) if prev != x => {
                                unreadable.insert(h);
                            }
                            _ => {}
                        },
                        (Some(h), _, _) => {
                            unreadable.insert(h);
                        }
                        (None, _, _) => {
                            return Err(ReplicaError::VoteLog(format!(
                                "{}: line {} is unreadable; refusing to vote without knowing past votes",
                                path.display(),
                                n + 1
                            )))
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(log(e)),
        }
        self.votes = Mutex::new(votes);
        self.unreadable = unreadable;
        self.vote_log = Some(path.to_path_buf());
        Ok(self)
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
    /// or at `not_before`, whichever is later, but never more than
    /// [`MAX_BLOCK_GAP_MS`] past its parent (a `not_before` further ahead
    /// is clamped, so honest replicas still vote for the block). A probabilistic chain's
    /// block comes sealed with the leader's signature; a deterministic
    /// chain's carries the leader's signature on the proposal (its PBFT
    /// pre-prepare: a `Prepare`-kind digest, never usable as a commit vote
    /// in a seal), which [`vote`](Self::vote) checks, until the commit
    /// votes replace it.
    pub fn propose(&mut self, not_before: Timestamp) -> Result<Block, ReplicaError> {
        let height = self.height() + 1;
        let leader = self.leader_of(height);
        if leader != self.index {
            return Err(ReplicaError::NotLeader { height, leader, me: self.index });
        }
        let parent = self.chain.tip().timestamp;
        let latest = parent.saturating_add(MAX_BLOCK_GAP_MS);
        let at = parent.saturating_add(EPOCH_MS).max(not_before).min(latest);
        if at <= parent {
            return Err(ReplicaError::BadTimestamp { height, timestamp: at, parent, max_gap: MAX_BLOCK_GAP_MS });
        }
        let (ex, _dropped) = self.chain.build_block(&self.key.public(), at);
        let mut block = ex.block;
        block.seal = match self.reg.finality {
            Finality::Probabilistic { .. } => Seal::Single { signature: self.key.sign(&block.hash()) },
            Finality::Deterministic => {
                let digest = vote_digest(VoteKind::Prepare, &self.reg.instance, 0, height, &block.hash());
                Seal::Quorum { view: 0, signatures: vec![(self.index as u32, self.key.sign(&digest))] }
            }
        };
        Ok(block)
    }

    /// This validator's commit vote for a proposed block of a
    /// deterministic chain: only for the next height, from its scheduled
    /// leader **and signed by it** (the leader's proposal signature in the
    /// proposal's seal), valid when re-executed on this replica's state,
    /// and only if this validator has not voted for another block at that
    /// height (asked again for the same block, it hands out the same vote).
    /// The vote is recorded (and persisted, with a vote log) before it is
    /// handed out.
    pub fn vote(&self, block: &Block) -> Result<(u32, Signature), ReplicaError> {
        if self.reg.finality != Finality::Deterministic {
            return Err(ReplicaError::NoVotes);
        }
        self.check_proposer(block)?;
        let height = block.header.height;
        let leader = self.leader_of(height);
        let leader_signed = match &block.seal {
            Seal::Quorum { view: 0, signatures } => signatures.iter().any(|(i, sig)| {
                *i as usize == leader
                    && gridledger_core::crypto::verify(
                        &block.header.proposer,
                        &vote_digest(VoteKind::Prepare, &self.reg.instance, 0, height, &block.hash()),
                        sig,
                    )
                    .is_ok()
            }),
            _ => false,
        };
        if !leader_signed {
            return Err(ReplicaError::UnsignedProposal { height, leader });
        }
        self.check_time(block)?;
        self.chain.validate_block(block)?;
        self.record_vote(height, block.hash())
    }

    /// Signs the commit vote for `hash` at `height` unless this validator
    /// already voted for another block there; records it first.
    fn record_vote(&self, height: Height, hash: Hash32) -> Result<(u32, Signature), ReplicaError> {
        if self.unreadable.contains(&height) {
            return Err(ReplicaError::UnreadableVote { height });
        }
        let mut votes = self.votes.lock().map_err(|_| ReplicaError::VoteLog("vote record poisoned".into()))?;
        match votes.get(&height) {
            Some(v) if *v != hash => return Err(ReplicaError::AlreadyVoted { height, voted: *v }),
            Some(_) => {}
            None => {
                if let Some(path) = &self.vote_log {
                    let log = |e: std::io::Error| ReplicaError::VoteLog(format!("{}: {e}", path.display()));
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(log)?;
                    f.write_all(format!("{height} {hash}\n").as_bytes()).map_err(log)?;
                    f.sync_data().map_err(log)?;
                }
                votes.insert(height, hash);
            }
        }
        let digest = vote_digest(VoteKind::Commit, &self.reg.instance, 0, height, &hash);
        Ok((self.index as u32, self.key.sign(&digest)))
    }

    /// Commits a sealed block: the seal is checked as the BoB checks a
    /// relayed header (2f+1 commit votes, or the scheduled leader's
    /// signature), the block re-executed on this replica's state.
    pub fn commit(&mut self, block: &Block) -> Result<(), ReplicaError> {
        self.check_proposer(block)?;
        self.check_time(block)?;
        self.reg.check_seal(&SealedHeader { header: block.header.clone(), seal: block.seal.clone() })?;
        let ex = self.chain.validate_block(block)?;
        self.chain.commit(ex)?;
        Ok(())
    }

    /// A block's time must be after its parent's and at most
    /// [`MAX_BLOCK_GAP_MS`] past it (attack R4-3: one leader stamping the
    /// end of time halted the chain).
    fn check_time(&self, block: &Block) -> Result<(), ReplicaError> {
        let parent = self.chain.tip().timestamp;
        let (height, timestamp) = (block.header.height, block.header.timestamp);
        check_timestamp(self.reg.chain_id, height, parent, timestamp).map_err(|_| ReplicaError::BadTimestamp {
            height,
            timestamp,
            parent,
            max_gap: MAX_BLOCK_GAP_MS,
        })
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
