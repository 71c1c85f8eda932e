//! The gridledger ledger: blocks, state, mempool, native contracts with gas
//! metering, receipts and events, persisted in an embedded ACID store.

pub mod block;
pub mod chain;
pub mod client;
pub mod contract;
pub mod devnet;
pub mod error;
pub mod executor;
pub mod fault;
pub mod gas;
pub mod genesis;
pub mod mempool;
pub mod state;
pub mod store;
pub mod tx;

pub use block::{Block, BlockHeader, Event, Receipt, Seal, TxStatus};
pub use chain::{verify_block_signatures, Chain, ChainConfig, Committed, TxRules, DEFAULT_MIN_GAS_PRICE};
pub use client::{ChainClient, ClientError};
pub use contract::{
    decode_args, revert, BlockEnv, BlockHashes, BlockRoom, CallContext, ContractError, ContractRegistry,
    NativeContract, RecentBlock, StorageRead, ViewContext, BLOCK_HASH_WINDOW,
};
pub use error::{ChainError, StoreError, SubmitError};
pub use executor::{BlockBuilder, BuiltBody, ExecutedBlock, TxRejected};
pub use genesis::{Allocation, Genesis};
pub use state::{contract_address, Account, State, StateProof, StateRead};
pub use tx::{SignedTransaction, Transaction, TxKind, VerifiedTx};
