//! Typed refusals of the BoB contracts (thesis §5.4, the ⊥ cases of
//! Algorithm 5.1 and the bad input of issue item 9).
//!
//! A contract refuses by reverting with the error's `Display` text, so a
//! receipt's status is exactly `Reverted("reverted: <error>")`: the driver
//! and the tests compare against the typed value, never a free-form string.

use gridledger_core::{ChainId, Hash32, Height};
use thiserror::Error;

/// Why the BoB refused a relayed header, a cross-chain transaction or a proof.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XchainError {
    #[error("chain {0} is not registered with the BoB")]
    UnknownChain(ChainId),
    #[error("header is for chain {got}, relayed as chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("header {got} does not extend the stored tip {tip}")]
    NotNext { tip: Height, got: Height },
    #[error("header {0}'s parent is not the stored tip")]
    ParentMismatch(Height),
    /// A competing branch that would replace a final header (at or below
    /// the stored tip less the chain's confirmations).
    #[error("chain {chain}: a branch from height {height} would replace final headers (final up to {final_height})")]
    ForkBelowFinality { chain: ChainId, height: Height, final_height: Height },
    /// A competing branch no longer than the stored one (fork choice keeps
    /// the first of equally long branches).
    #[error("chain {chain}: a branch ending at {branch_tip} is not longer than the stored one (tip {tip})")]
    ForkNotLonger { chain: ChainId, branch_tip: Height, tip: Height },
    #[error("header {height} of chain {chain} is stamped {timestamp}: not after its parent ({parent}) or more than {max_gap} ms past it")]
    BadTimestamp { chain: ChainId, height: Height, timestamp: u64, parent: u64, max_gap: u64 },
    #[error("header {0} carries no validator signature")]
    Unsigned(Height),
    #[error("header {height} is not signed by chain {chain}'s validators: {reason}")]
    BadSeal { chain: ChainId, height: Height, reason: String },
    #[error("header {height} of chain {chain} is no longer kept (stale: the BoB keeps heights above {oldest_kept})")]
    StaleHeader { chain: ChainId, height: Height, oldest_kept: Height },
    #[error("chain {chain}: at most {max} headers per BoB block ({already} already relayed in this block)")]
    RelayTooFast { chain: ChainId, max: u64, already: u64 },
    #[error("header {height} of chain {chain} is unknown (tip {tip})")]
    UnknownHeader { chain: ChainId, height: Height, tip: Height },
    #[error("header {height} of chain {chain} needs {needed} confirmations, has {have}")]
    NotFinal { chain: ChainId, height: Height, needed: u32, have: u64 },
    #[error("Merkle proof does not show the transaction in block {height} of chain {chain}")]
    BadMerkleProof { chain: ChainId, height: Height },
    #[error("the native transaction does not match the instruction: {0}")]
    InstructionMismatch(String),
    #[error("native transaction signature does not verify")]
    BadNativeSignature,
    #[error("native transaction {0} was already used as evidence")]
    NtAlreadyUsed(Hash32),
    #[error(
        "native transaction {nt} was posted by its payer for cross-chain transaction {cct}; it proves that one only"
    )]
    NtPostedForOtherCct { nt: Hash32, cct: Hash32 },
    #[error("only the payer of a native transaction may post it to the BoB")]
    NotPayer,
    #[error("cross-chain transaction {0} is unknown")]
    UnknownCct(Hash32),
    #[error("cross-chain transaction {0} already exists")]
    DuplicateCct(Hash32),
    #[error("cross-chain transaction terms are invalid: {0}")]
    BadTerms(String),
    #[error("the receiver's signature over the terms does not verify")]
    BadReceiverSignature,
    #[error("only the sender named in the terms may submit the cross-chain transaction")]
    NotSender,
    #[error("the cross-chain transaction expired at BoB height {expires_at}, now {now}")]
    CctExpired { expires_at: Height, now: Height },
    /// Terms expiring more than [`crate::bob::MAX_TERMS_AHEAD`] blocks
    /// after the height their CCT executes at (attack R11-5).
    #[error("the terms expire at BoB height {expires_at}, more than {max} blocks after now ({now})")]
    ExpiryTooFar { expires_at: Height, now: Height, max: u64 },
    #[error("insufficient deposit: {who} needs more than {needed} free Token_B, has {free}")]
    InsufficientDeposit { who: &'static str, needed: u128, free: u128 },
    #[error("proof for epoch {height} is not after the CCT's epoch {after} (+κ̄)")]
    TooEarly { height: Height, after: Height },
    #[error("balance evidence at header {height} of chain {chain} predates the deadline {deadline}: the payer may fund its account until then")]
    EvidenceBeforeDeadline { chain: ChainId, height: Height, deadline: Height },
    /// Balance evidence against an NT with a deadline
    /// (`TxKind::TransferUntil`) from before it: the payer may still be
    /// funded and the NT land (attack R12-4).
    #[error("balance evidence at header {height} of chain {chain} predates the NT's own deadline {valid_until}: it may still land")]
    EvidenceBeforeNtDeadline { chain: ChainId, height: Height, valid_until: Height },
    #[error("side {0} of the exchange is already settled")]
    AlreadySettled(&'static str),
    #[error("the {0} native transaction is already posted to the BoB")]
    AlreadyPosted(&'static str),
    #[error("the deadline has passed (chain {chain} at {tip}, deadline {deadline})")]
    DeadlineExpired { chain: ChainId, tip: Height, deadline: Height },
    #[error("the deadline has not been reached (chain {chain} at {tip}, deadline {deadline})")]
    DeadlineNotReached { chain: ChainId, tip: Height, deadline: Height },
    #[error("the BoB nodes still forward posted native transactions (chain {chain} at {tip}, forwarding deadline {deadline})")]
    ForwardingOpen { chain: ChainId, tip: Height, deadline: Height },
    /// The stored tip reached the forwarding deadline, but not yet a whole
    /// BoB block ago: a `prove` of an NT the deadline's header made final
    /// still has that block to get in (attack R13-1).
    #[error("the forwarding deadline {deadline} of chain {chain} was stored less than a whole BoB block ago (tip {settled} as of the block before this one)")]
    ForwardingGrace { chain: ChainId, settled: Height, deadline: Height },
    #[error("the native transaction's nonce {nonce} on chain {chain} is below the floor {floor} the CCT's terms bind: it was signed before the exchange was agreed")]
    BeforeCct { chain: ChainId, nonce: u64, floor: u64 },
    /// The sender's native transaction must carry exactly the nonce its
    /// terms name (attack R8-5; the receiver's too, R10-1): one transfer
    /// pays one set of terms.
    #[error("the native transaction on chain {chain} has nonce {nonce}, not the nonce {agreed} its terms name")]
    NonceNotAgreed { chain: ChainId, nonce: u64, agreed: u64 },
    #[error("the cross-chain transaction is already complete")]
    AlreadyComplete,
    #[error("transfer {0} was already claimed")]
    AlreadyClaimed(Hash32),
    #[error("lock {0} was already refunded")]
    AlreadyRefunded(Hash32),
    #[error("the lock in block {height} of chain {chain} can still be claimed: refundable once the stored tip reaches {refundable_at} (now {tip})")]
    RefundTooEarly { chain: ChainId, height: Height, tip: Height, refundable_at: Height },
    #[error("header {height} of chain {chain} is not in the BoB's accumulator of relayed headers")]
    BadHeaderProof { chain: ChainId, height: Height },
    #[error("only the sender of the locking transfer may claim it")]
    NotClaimant,
    #[error("insufficient {what}: have {have}, need {need}")]
    Insufficient { what: &'static str, have: u128, need: u128 },
    #[error("the pool has no liquidity for token {0}")]
    NoLiquidity(ChainId),
    #[error("the pool has no weight for token {0}")]
    UnknownToken(ChainId),
    #[error("a join brings every token of the pool pro rata; token {0} is missing")]
    JoinMissingToken(ChainId),
    #[error("a fraud proof needs CCT_V to have run (Situation 2)")]
    NotVerified,
    #[error("the {0} native transaction was never posted to the BoB (sub-situation 1 applies)")]
    NotPosted(&'static str),
    #[error("state proof does not verify against header {height} of chain {chain}")]
    BadStateProof { chain: ChainId, height: Height },
    #[error("no fraud: {0}")]
    NotFraud(String),
    #[error("exchange amount overflows")]
    Overflow,
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("the exchange needs {x_i} Token_i, outside the agreed bounds [{min}, {max}]")]
    RateOutOfBounds { x_i: u128, min: u128, max: u128 },
    /// Rate bounds that bound nothing (`min_x_i = 0` or `max_x_i =
    /// u128::MAX`): terms built without a quote (attack R7-4).
    #[error("the agreed x_i bounds [{min}, {max}] are open: terms must bound the rate from a quote")]
    OpenRateBounds { min: u128, max: u128 },
    #[error("the exchange's penalty unit x_B = {x_b} Token_B is below the {min} the receiver agreed to")]
    PenaltyOutOfBounds { x_b: u128, min: u128 },
    // ------------------------------------------------- CCDI (§5.5), SC_BG, SC_C, SC_F
    #[error("state data item {0} does not exist")]
    UnknownItem(u64),
    #[error("state data item {item} is owned by {owner}, not the caller")]
    NotOwner { item: u64, owner: gridledger_core::Address },
    #[error("state data item {0} is locked")]
    ItemLocked(u64),
    #[error("the locked item's metadata differs from the stored item")]
    ItemMismatch,
    #[error("invalid item: {0}")]
    BadItem(String),
    #[error("lock {0} is unknown (never made, or already settled)")]
    UnknownLock(Hash32),
    #[error("the settlement names lock {0} twice")]
    DuplicateLock(Hash32),
    #[error("the threshold signature does not verify under the group key: {0}")]
    BadThresholdSignature(String),
    #[error("the settlement is for chain {got}, this is chain {expected}")]
    SettlementWrongChain { expected: ChainId, got: ChainId },
    #[error("CCDI process {0} is unknown")]
    UnknownProcess(Hash32),
    #[error("CCDI process {0} already exists")]
    DuplicateProcess(Hash32),
    #[error("CCDI process terms are invalid: {0}")]
    BadProcess(String),
    #[error("a CCDI process may have at most {max} slots (its outcome must fit one BoB transaction), got {slots}")]
    TooManySlots { slots: usize, max: usize },
    #[error("registration of the CCDI process closed at BoB height {start}, now {now}")]
    RegistrationClosed { start: Height, now: Height },
    #[error("the CCDI process starts taking cross-chain transactions at BoB height {start}, now {now}")]
    ProcessNotStarted { start: Height, now: Height },
    #[error("{0} is not a participant of the CCDI process")]
    NotParticipant(gridledger_core::Address),
    #[error("{0} already registered its deposit")]
    AlreadyRegistered(gridledger_core::Address),
    #[error("the deposit must be exactly {need}, got {got}")]
    WrongDeposit { need: u128, got: u128 },
    #[error("the transaction is not a successful SC_BG lock for this process: {0}")]
    NotALock(String),
    #[error("state data item {item} of chain {chain} is already stored for this process (double claim)")]
    AlreadyStored { chain: ChainId, item: u64 },
    #[error("receipt proof does not show the lock executed in block {height} of chain {chain}")]
    BadReceiptProof { chain: ChainId, height: Height },
    #[error("the CCDI deadline {deadline} has not been reached (BoB at {now})")]
    CcdiDeadlineNotReached { deadline: Height, now: Height },
    #[error("the CCDI process is already finished")]
    ProcessFinished,
    #[error(
        "the baseline's step 3 must name each of the process's {minted} minted items exactly once (named {named})"
    )]
    PartialRun { minted: usize, named: usize },
    #[error("replayed or out-of-order group statement: sequence {got}, expected {expected}")]
    ReplayedStatement { expected: u64, got: u64 },
}

impl XchainError {
    /// The receipt status a transaction refused with this error carries.
    pub fn as_revert(&self) -> String {
        format!("reverted: {self}")
    }
}

impl From<XchainError> for gridledger_ledger::ContractError {
    fn from(e: XchainError) -> Self {
        gridledger_ledger::ContractError::Revert(e.to_string())
    }
}
