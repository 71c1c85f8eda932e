//! Typed errors of the ledger.

use gridledger_core::{Amount, ChainId};
use thiserror::Error;

/// Why a submitted transaction was refused. Each refusal leaves the node's
/// state and mempool exactly as they were.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    #[error("transaction of {size} bytes exceeds the maximum of {max}")]
    Oversize { size: usize, max: usize },
    #[error("undecodable transaction: {0}")]
    Undecodable(String),
    #[error("transaction is for chain {got}, this is chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("bad signature")]
    BadSignature,
    #[error("gas limit {limit} below the intrinsic cost {intrinsic}")]
    GasLimitTooLow { limit: u64, intrinsic: u64 },
    #[error("gas limit {limit} above the block gas limit {max}")]
    GasLimitTooHigh { limit: u64, max: u64 },
    /// Under the leaderless BFT every validator proposes its own batch
    /// of at most its share of a block's gas (`block_gas_limit / n`): a
    /// transaction above that share could never be proposed, so the
    /// validator refuses it instead of holding it for ever.
    #[error("gas limit {limit} above this validator's share of a block ({share})")]
    GasLimitAboveShare { limit: u64, share: u64 },
    #[error("gas price {price} below the minimum {min}")]
    GasPriceTooLow { price: Amount, min: Amount },
    #[error("amount overflow")]
    Overflow,
    #[error("nonce too low: expected at least {expected}, got {got}")]
    NonceTooLow { expected: u64, got: u64 },
    #[error("nonce gap: next acceptable nonce is {expected}, got {got}")]
    NonceGap { expected: u64, got: u64 },
    #[error("insufficient balance: need {needed}, have {available}")]
    InsufficientBalance { needed: Amount, available: Amount },
    /// The transaction's deadline ([`crate::TxKind::TransferUntil`]) is
    /// below the chain's next height: it can never go into a block.
    #[error("transaction valid until height {valid_until}, the chain's next height is {next_height}")]
    Expired { valid_until: u64, next_height: u64 },
    #[error("transaction already known")]
    AlreadyKnown,
    /// A transaction with the sender's nonce of a pending one replaces it
    /// only at a gas price at least [`crate::mempool::REPLACE_BUMP_PERCENT`]
    /// per cent above the pending one's (and strictly above it).
    #[error("replacement underpriced: the pending transaction pays {pending}, a replacement needs at least {min}")]
    ReplacementUnderpriced { pending: Amount, min: Amount },
    #[error("mempool full ({capacity} transactions)")]
    MempoolFull { capacity: usize },
    #[error("too many pending transactions from this sender (limit {limit})")]
    SenderQueueFull { limit: usize },
    /// The node cannot commit blocks (e.g. its disk refuses writes): it
    /// takes no new transactions until it recovers.
    #[error("node unavailable, cannot commit blocks: {reason}")]
    Unavailable { reason: String },
}

impl SubmitError {
    /// A stable machine-readable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Oversize { .. } => "oversize",
            SubmitError::Undecodable(_) => "undecodable",
            SubmitError::WrongChain { .. } => "wrong_chain",
            SubmitError::BadSignature => "bad_signature",
            SubmitError::GasLimitTooLow { .. } => "gas_limit_too_low",
            SubmitError::GasLimitTooHigh { .. } => "gas_limit_too_high",
            SubmitError::GasLimitAboveShare { .. } => "gas_limit_above_share",
            SubmitError::GasPriceTooLow { .. } => "gas_price_too_low",
            SubmitError::Overflow => "overflow",
            SubmitError::NonceTooLow { .. } => "nonce_too_low",
            SubmitError::NonceGap { .. } => "nonce_gap",
            SubmitError::InsufficientBalance { .. } => "insufficient_balance",
            SubmitError::Expired { .. } => "expired",
            SubmitError::AlreadyKnown => "already_known",
            SubmitError::ReplacementUnderpriced { .. } => "replacement_underpriced",
            SubmitError::MempoolFull { .. } => "mempool_full",
            SubmitError::SenderQueueFull { .. } => "sender_queue_full",
            SubmitError::Unavailable { .. } => "unavailable",
        }
    }
}

/// Storage-layer failures.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(String),
    /// The database file is held open by another process (or another
    /// handle in this one): nothing was read or written. A caller that
    /// expects the holder to exit soon (a killed run's leftover process)
    /// may retry.
    #[error("database: {0}")]
    Locked(String),
    #[error("corrupt record in {table}: {detail}")]
    Corrupt { table: &'static str, detail: String },
    #[error("block {height} does not extend tip {tip}")]
    NotNext { height: u64, tip: u64 },
    /// A reopen after a write error failed; nothing can be read or written
    /// until one succeeds.
    #[error("the store is closed after a failed reopen")]
    Closed,
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked(e.to_string()),
            e => StoreError::Db(e.to_string()),
        }
    }
}

db_err!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

/// Why a block could not be applied or produced.
#[derive(Debug, Error)]
pub enum ChainError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid block: {0}")]
    InvalidBlock(String),
    #[error("invalid genesis: {0}")]
    Genesis(String),
}
