//! Blocks, receipts and events.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::{verify, KeyPair};
use gridledger_core::merkle::{MerkleProof, MerkleTree};
use gridledger_core::{Address, Amount, ChainId, ContractId, Hash32, Height, PublicKey, Signature, Timestamp};
use serde::{Deserialize, Serialize};

use crate::tx::SignedTransaction;

/// A block header. Its hash identifies the block; light clients keep only
/// headers and check transaction inclusion against `tx_root` (thesis §5.2.5).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub chain_id: ChainId,
    pub height: Height,
    pub parent: Hash32,
    pub timestamp: Timestamp,
    pub proposer: PublicKey,
    /// Merkle root over the transaction hashes in block order.
    pub tx_root: Hash32,
    /// Merkle root over the receipt hashes in block order.
    pub receipt_root: Hash32,
    /// State root after applying this block.
    pub state_root: Hash32,
    pub gas_used: u64,
    pub tx_count: u32,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash32 {
        hash_tagged(Tag::BLOCK_HEADER, self)
    }
}

/// How a block was agreed. A single validator signs the header hash;
/// multi-validator consensus adds its own certificates.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Seal {
    /// Genesis needs no seal.
    Genesis,
    /// The proposer's signature over the header hash.
    Single { signature: Signature },
    /// A PBFT commit certificate: a quorum of validators' commit votes for
    /// this block in `view`, as `(validator index, signature)`.
    Quorum { view: u64, signatures: Vec<(u32, Signature)> },
    /// A leaderless-BFT (LBFT) block: the transactions that epoch `epoch`
    /// delivered, whose decision hashes to `decision` (`h^e`, thesis
    /// §4.2.1). The evidence, each accepted batch's certificate (`2f + 1`
    /// Ed25519 signed echoes; not unique, so not part of the block), is in
    /// the validator's store with the epoch.
    Epoch { epoch: u64, decision: Hash32 },
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
    pub seal: Seal,
}

impl Block {
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    pub fn tx_hashes(&self) -> Vec<Hash32> {
        self.txs.iter().map(|t| t.hash()).collect()
    }

    /// `Gen_proof(Tx, BH)`: inclusion proof for the transaction at `index`.
    pub fn tx_proof(&self, index: usize) -> Option<MerkleProof> {
        MerkleTree::new(&self.tx_hashes()).proof(index)
    }

    pub fn seal_single(&mut self, key: &KeyPair) {
        self.seal = Seal::Single { signature: key.sign(&self.hash()) };
    }

    /// Checks a single-validator seal against the header's proposer.
    pub fn verify_single_seal(&self) -> bool {
        match &self.seal {
            Seal::Single { signature } => verify(&self.header.proposer, &self.hash(), signature).is_ok(),
            _ => false,
        }
    }
}

/// An event emitted by a transaction (a contract log).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    /// Emitting contract; 0 for the native transfer.
    pub emitter: ContractId,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// Outcome of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum TxStatus {
    Success,
    /// The body's effects were dropped; the fee was still charged.
    Reverted(String),
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub tx_hash: Hash32,
    pub height: Height,
    pub index: u32,
    pub sender: Address,
    #[serde(flatten)]
    pub status: TxStatus,
    pub gas_used: u64,
    pub fee: Amount,
    pub events: Vec<Event>,
    #[serde(with = "crate::tx::hex_bytes")]
    pub output: Vec<u8>,
}

impl Receipt {
    pub fn hash(&self) -> Hash32 {
        hash_tagged(Tag::RECEIPT, self)
    }
}
