//! An in-process chain with its own validator set: the embedded default of
//! a BoB-MBS (thesis §5.3.1), where the BoB and every external chain BC_i
//! is an independent `gridledger-ledger` [`Chain`] in its own directory.
//!
//! Each [`EmbeddedChain::tick`] is one epoch: the epoch's leader builds a
//! block from the mempool (possibly empty, so epochs advance as in the
//! seed's model) and seals it — with a quorum of commit votes signed exactly
//! as PBFT signs them (deterministic finality) or with the proposer's
//! signature alone (probabilistic finality, final after `k` confirmations).
//! The validators are in-process signers; consensus message exchange is the
//! node crate's business, not this protocol's.
//!
//! Censorship (thesis §5.3.2) is played by [`EmbeddedChain::censor`]: a
//! transaction is held back `D` epochs before it reaches the mempool.

use gridledger_consensus::pbft::{vote_digest, ValidatorSet, VoteKind};
use gridledger_core::crypto::KeyPair;
use gridledger_core::merkle::MerkleProof;
use gridledger_core::{Address, ChainId, Hash32, Height, PublicKey, Timestamp};
use gridledger_ledger::{
    Account, Block, Chain, ChainConfig, ChainError, ContractRegistry, Genesis, Receipt, Seal, SignedTransaction,
    StateProof, SubmitError,
};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::headers::{ChainRegistration, Finality, SealedHeader};

/// Milliseconds between two epochs of an embedded chain (the seed's 15 s block interval).
pub const EPOCH_MS: Timestamp = 15_000;

pub struct EmbeddedChain {
    chain: Chain,
    keys: Vec<KeyPair>,
    finality: Finality,
    now: Timestamp,
    /// Transactions held back by a censoring chain: (release height, tx).
    censored: Vec<(Height, SignedTransaction)>,
    /// The newest block time of any chain sharing this clock (see [`Self::share_clock`]).
    clock: Option<Arc<AtomicU64>>,
}

impl EmbeddedChain {
    /// Opens (or resumes) a chain in `dir` with the given validator keys.
    /// `genesis.validators` must list exactly `keys`' public keys.
    pub fn open(
        dir: &Path,
        genesis: Genesis,
        registry: ContractRegistry,
        keys: Vec<KeyPair>,
        finality: Finality,
    ) -> Result<Self, ChainError> {
        if genesis.validators != keys.iter().map(|k| k.public()).collect::<Vec<_>>() || keys.is_empty() {
            return Err(ChainError::Genesis("validator keys do not match the genesis validators".into()));
        }
        // Transactions sign over the chain's genesis hash as well: one signed
        // for another deployment's chain with the same numeric id is refused.
        let config = ChainConfig { signing_domain: Some(genesis.hash()), ..ChainConfig::default() };
        let chain = Chain::open(dir, genesis, registry, config)?;
        let now = chain.tip().timestamp + EPOCH_MS;
        Ok(Self { chain, keys, finality, now, censored: Vec::new(), clock: None })
    }

    /// The chain and validator `index`'s key alone (the other keys are
    /// dropped): what one validator's [`crate::replica::Replica`] keeps.
    pub fn into_parts(self, index: usize) -> Option<(Chain, KeyPair)> {
        let key = self.keys.into_iter().nth(index)?;
        Some((self.chain, key))
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain.genesis().chain_id
    }

    /// The chain's signing domain: its genesis hash, which every transaction
    /// signature on it covers ([`gridledger_ledger::Transaction::signing_digest`]).
    pub fn domain(&self) -> Hash32 {
        self.chain.config().signing_domain.unwrap_or_else(|| self.chain.genesis().hash())
    }

    /// `tx`'s body signed by `key` for this chain (its signing domain): a
    /// transaction built by the ledger's helpers (signed without a domain),
    /// made valid here and nowhere else.
    pub fn sign(&self, key: &KeyPair, tx: SignedTransaction) -> SignedTransaction {
        tx.tx.sign_in(key, Some(&self.domain()))
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn finality(&self) -> Finality {
        self.finality
    }

    /// The current epoch: the height of the last block.
    pub fn height(&self) -> Height {
        self.chain.tip().height
    }

    pub fn account(&self, a: &Address) -> Account {
        self.chain.account(a)
    }

    pub fn next_nonce(&self, a: &Address) -> u64 {
        self.chain.next_nonce(a)
    }

    /// What the BoB must know to follow this chain, keeping `kappa` headers.
    pub fn registration(&self, kappa: u32) -> Result<ChainRegistration, ChainError> {
        let genesis_header =
            self.chain.block(0)?.ok_or_else(|| ChainError::Genesis("genesis block missing".into()))?.header;
        Ok(ChainRegistration {
            chain_id: self.chain_id(),
            instance: self.chain.genesis().hash(),
            validators: self.chain.genesis().validators.clone(),
            finality: self.finality,
            kappa,
            state_buckets_log2: self.chain.genesis().state_buckets_log2,
            anchor_height: 0,
            anchor_timestamp: genesis_header.timestamp,
            anchor_hash: genesis_header.hash(),
        })
    }

    /// Makes this chain keep time with the others holding `clock`: a block
    /// is stamped one epoch after this chain's last block or at the newest
    /// block time of any of them, whichever is later. Chains that tick in
    /// lockstep keep equal times; a chain that ticked alone (its blocks
    /// took that time) pulls the others' next blocks up to its time, as a
    /// shared wall clock would.
    pub fn share_clock(&mut self, clock: Arc<AtomicU64>) {
        clock.fetch_max(self.chain.tip().timestamp, Ordering::SeqCst);
        self.clock = Some(clock);
    }

    /// Submits a transaction to the mempool.
    pub fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, SubmitError> {
        self.chain.submit(&tx.to_bytes())
    }

    /// `a`'s next nonce as its own wallet knows it: past every transaction
    /// it signed, including those the chain has not seen yet (here: held
    /// back by a censoring chain, [`censor`](Self::censor)).
    pub fn wallet_next_nonce(&self, a: &Address) -> u64 {
        let held = self.censored.iter().filter(|(_, tx)| tx.sender() == *a).map(|(_, tx)| tx.tx.nonce + 1).max();
        self.next_nonce(a).max(held.unwrap_or(0))
    }

    /// A censoring chain: `tx` reaches the mempool only `delay` epochs from now.
    pub fn censor(&mut self, tx: SignedTransaction, delay: u64) {
        self.censored.push((self.height() + delay, tx));
    }

    /// One epoch: releases censored transactions that are due, then builds,
    /// seals and commits the next block (empty if nothing is pending).
    pub fn tick(&mut self) -> Result<Block, ChainError> {
        let next = self.height() + 1;
        let (due, held): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.censored).into_iter().partition(|(h, _)| *h < next);
        self.censored = held;
        for (_, tx) in due {
            // A released transaction that is no longer valid is dropped, as
            // any mempool would.
            let _ = self.submit(&tx);
        }
        let n = self.keys.len();
        let leader = &self.keys[(next % n as u64) as usize];
        let at = self.clock.as_ref().map_or(self.now, |c| self.now.max(c.load(Ordering::SeqCst)));
        let (mut ex, _dropped) = self.chain.build_block(&leader.public(), at);
        let hash = ex.block.hash();
        ex.block.seal = match self.finality {
            Finality::Deterministic => {
                let set = ValidatorSet::new(self.chain.genesis().hash(), self.chain.genesis().validators.clone())
                    .map_err(|e| ChainError::Genesis(e.to_string()))?;
                let digest = vote_digest(VoteKind::Commit, &set.instance, 0, next, &hash);
                let signatures =
                    self.keys.iter().take(set.quorum()).enumerate().map(|(i, k)| (i as u32, k.sign(&digest))).collect();
                Seal::Quorum { view: 0, signatures }
            }
            Finality::Probabilistic { .. } => Seal::Single { signature: leader.sign(&hash) },
        };
        let block = ex.block.clone();
        self.chain.commit(ex)?;
        self.now = block.header.timestamp + EPOCH_MS;
        if let Some(c) = &self.clock {
            c.fetch_max(block.header.timestamp, Ordering::SeqCst);
        }
        Ok(block)
    }

    /// The committed header at `height` with its seal, as a relayer ships it.
    pub fn sealed_header(&self, height: Height) -> Result<Option<SealedHeader>, ChainError> {
        Ok(self.chain.block(height)?.map(|b| SealedHeader { header: b.header, seal: b.seal }))
    }

    pub fn receipt(&self, tx: &Hash32) -> Result<Option<Receipt>, ChainError> {
        self.chain.receipt(tx)
    }

    /// The current height and a proof of `key`'s value under its state root.
    pub fn state_proof(&self, key: &[u8]) -> (Height, StateProof) {
        (self.height(), self.chain.state().prove(key))
    }

    /// A committed transaction of `sender` with `nonce`, searched from
    /// height `from` to the tip (what a BoB node looks for in sub-situation 3).
    pub fn find_by_nonce(
        &self,
        sender: &PublicKey,
        nonce: u64,
        from: Height,
    ) -> Result<Option<SignedTransaction>, ChainError> {
        for h in from.max(1)..=self.height() {
            if let Some(b) = self.chain.block(h)? {
                if let Some(t) = b.txs.into_iter().find(|t| t.tx.sender == *sender && t.tx.nonce == nonce) {
                    return Ok(Some(t));
                }
            }
        }
        Ok(None)
    }

    /// The receipt of `tx`, its height and its Merkle proof under the
    /// header's receipt root (CCDI's `P_x`: the transaction executed).
    pub fn receipt_proof(&self, tx: &Hash32) -> Result<Option<(Height, Receipt, MerkleProof)>, ChainError> {
        let Some((height, index)) = self.chain.store().tx_location(tx)? else {
            return Ok(None);
        };
        let Some(block) = self.chain.block(height)? else {
            return Ok(None);
        };
        let mut hashes = Vec::with_capacity(block.txs.len());
        let mut mine = None;
        for (i, t) in block.txs.iter().enumerate() {
            let Some(r) = self.chain.receipt(&t.hash())? else {
                return Ok(None);
            };
            hashes.push(r.hash());
            if i == index as usize {
                mine = Some(r);
            }
        }
        let Some(r) = mine else {
            return Ok(None);
        };
        let proof = gridledger_core::merkle::MerkleTree::new(&hashes).proof(index as usize);
        Ok(proof.map(|p| (height, r, p)))
    }

    /// `Gen_proof(Tx, BH)` (§5.2.5): the height of the block holding `tx`
    /// and the Merkle proof against its header's `tx_root`.
    pub fn tx_proof(&self, tx: &Hash32) -> Result<Option<(Height, MerkleProof)>, ChainError> {
        let Some((height, index)) = self.chain.store().tx_location(tx)? else {
            return Ok(None);
        };
        let Some(block) = self.chain.block(height)? else {
            return Ok(None);
        };
        Ok(block.tx_proof(index as usize).map(|p| (height, p)))
    }
}
