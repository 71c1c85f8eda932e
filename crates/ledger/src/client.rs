//! One client interface to a chain (DESIGN.md principle 3): an application
//! submits transactions, makes them final, and reads receipts, views and
//! state through [`ChainClient`], so it cannot tell a single-validator
//! development chain from a PBFT network.

use gridledger_core::{Address, ChainId, ContractId, Hash32, PublicKey, Timestamp};
use thiserror::Error;

use crate::block::{Block, BlockHeader, Receipt};
use crate::devnet::DevChain;
use crate::error::SubmitError;
use crate::state::Account;
use crate::tx::SignedTransaction;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error("chain: {0}")]
    Chain(String),
    #[error("transaction {0} was not included")]
    NotIncluded(Hash32),
}

pub trait ChainClient {
    fn chain_id(&self) -> ChainId;
    /// Hands a signed transaction to the chain's mempool.
    fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, ClientError>;
    /// Returns once everything submitted so far is committed.
    fn seal(&mut self) -> Result<(), ClientError>;
    /// Commits at most one block; where a client cannot, as [`Self::seal`].
    fn seal_block(&mut self) -> Result<(), ClientError> {
        self.seal()
    }
    fn receipt(&self, h: &Hash32) -> Result<Option<Receipt>, ClientError>;
    /// A contract's read-only view on committed state.
    fn view(&self, contract: ContractId, method: &str, args: &[u8]) -> Result<serde_json::Value, ClientError>;
    fn tip(&self) -> BlockHeader;
    /// The chain's validators (who collect fees), from its genesis.
    fn validators(&self) -> Vec<PublicKey>;
    /// Next nonce of `a`, counting its pending transactions.
    fn next_nonce(&self, a: &Address) -> u64;
    fn account(&self, a: &Address) -> Account;
    /// The block clock: the timestamp the next block gets (ms).
    fn now(&self) -> Timestamp;
    /// Moves the block clock forward (never back).
    fn set_now(&mut self, t: Timestamp);

    /// A contract's raw storage entry under `key` on committed state, for
    /// typed reads of its records. Clients that cannot serve it say so.
    fn contract_state(&self, contract: ContractId, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        let _ = (contract, key);
        Err(ClientError::Chain("this client does not serve raw contract state".into()))
    }

    /// The committed block at `height` with its transactions, or `None`
    /// above the tip: the block data an application recorded (an IOR
    /// batch's entries are read back from here). Clients that cannot serve
    /// it say so.
    fn block(&self, height: u64) -> Result<Option<Block>, ClientError> {
        let _ = height;
        Err(ClientError::Chain("this client does not serve blocks".into()))
    }

    /// Submits one transaction, seals, and returns its receipt.
    fn exec(&mut self, tx: &SignedTransaction) -> Result<Receipt, ClientError> {
        let h = self.submit(tx)?;
        self.seal()?;
        self.receipt(&h)?.ok_or(ClientError::NotIncluded(h))
    }
}

impl ChainClient for DevChain {
    fn chain_id(&self) -> ChainId {
        self.chain.genesis().chain_id
    }

    fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, ClientError> {
        Ok(self.chain.submit(&tx.to_bytes())?)
    }

    /// One block per [`DevChain::seal`] (≤ 300 transactions, clock + 1 s)
    /// until the mempool is empty.
    fn seal(&mut self) -> Result<(), ClientError> {
        while !self.chain.mempool().is_empty() {
            if self.try_seal().map_err(|e| ClientError::Chain(e.to_string()))?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// One block (≤ 300 transactions, clock + 1 s).
    fn seal_block(&mut self) -> Result<(), ClientError> {
        self.try_seal().map_err(|e| ClientError::Chain(e.to_string()))?;
        Ok(())
    }

    fn receipt(&self, h: &Hash32) -> Result<Option<Receipt>, ClientError> {
        self.chain.receipt(h).map_err(|e| ClientError::Chain(e.to_string()))
    }

    fn view(&self, contract: ContractId, method: &str, args: &[u8]) -> Result<serde_json::Value, ClientError> {
        self.chain.view(contract, method, args).map_err(|e| ClientError::Chain(e.to_string()))
    }

    fn tip(&self) -> BlockHeader {
        self.chain.tip().clone()
    }

    fn validators(&self) -> Vec<PublicKey> {
        self.chain.genesis().validators.clone()
    }

    fn next_nonce(&self, a: &Address) -> u64 {
        self.chain.next_nonce(a)
    }

    fn account(&self, a: &Address) -> Account {
        self.chain.account(a)
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    fn set_now(&mut self, t: Timestamp) {
        self.now = self.now.max(t);
    }

    fn block(&self, height: u64) -> Result<Option<Block>, ClientError> {
        self.chain.block(height).map_err(|e| ClientError::Chain(e.to_string()))
    }

    fn contract_state(&self, contract: ContractId, key: &[u8]) -> Result<Option<Vec<u8>>, ClientError> {
        use crate::state::StateRead;
        Ok(self.chain.state().get(&crate::state::contract_key(contract, key)))
    }
}
