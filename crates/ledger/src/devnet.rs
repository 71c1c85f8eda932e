//! Deterministic development keys, genesis and transaction builders, used by
//! the demo, the benchmarks and the tests.

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, ChainId, ContractId};

use crate::genesis::{Allocation, Genesis};
use crate::tx::{SignedTransaction, Transaction, TxKind};

/// Gas limit for a plain transfer.
pub const TRANSFER_GAS: u64 = crate::gas::TX_BASE;

/// The `i`-th development key (a deterministic secret; never use for value).
pub fn dev_key(i: usize) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-dev-account-{i}"))
}

/// The development validator key of validator `i`.
pub fn dev_validator(i: usize) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-dev-validator-{i}"))
}

/// A genesis funding `accounts` development keys with `balance` each.
pub fn dev_genesis(chain_id: ChainId, accounts: usize, balance: Amount, validators: &[KeyPair]) -> Genesis {
    Genesis {
        chain_id,
        timestamp: 0,
        state_buckets_log2: 14,
        allocations: (0..accounts).map(|i| Allocation { address: dev_key(i).address(), balance }).collect(),
        validators: validators.iter().map(|k| k.public()).collect(),
    }
}

/// A signed native transfer.
pub fn transfer(
    key: &KeyPair,
    chain_id: ChainId,
    nonce: u64,
    to: Address,
    amount: Amount,
    gas_price: Amount,
) -> SignedTransaction {
    Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit: TRANSFER_GAS,
        gas_price,
        kind: TxKind::Transfer { to, amount },
    }
    .sign(key)
}

/// A signed native transfer valid only in blocks up to height
/// `valid_until` ([`TxKind::TransferUntil`]).
pub fn transfer_until(
    key: &KeyPair,
    chain_id: ChainId,
    nonce: u64,
    (to, amount, valid_until): (Address, Amount, u64),
    gas_price: Amount,
) -> SignedTransaction {
    Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit: TRANSFER_GAS,
        gas_price,
        kind: TxKind::TransferUntil { to, amount, valid_until },
    }
    .sign(key)
}

/// A signed contract call.
#[allow(clippy::too_many_arguments)]
pub fn call(
    key: &KeyPair,
    chain_id: ChainId,
    nonce: u64,
    contract: ContractId,
    method: &str,
    args: Vec<u8>,
    value: Amount,
    gas_limit: u64,
) -> SignedTransaction {
    Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit,
        gas_price: Amount(1),
        kind: TxKind::Call { contract, method: method.into(), args, value },
    }
    .sign(key)
}

/// A single-validator chain with development accounts and a logical clock:
/// submit, produce a block, read the receipt. For tests, demos and benches.
pub struct DevChain {
    pub chain: crate::chain::Chain,
    pub validator: KeyPair,
    /// Block timestamp to use next (ms); advance it to pass time-locks.
    pub now: gridledger_core::Timestamp,
}

impl DevChain {
    pub const CHAIN_ID: ChainId = 1;

    pub fn open(
        dir: &std::path::Path,
        accounts: usize,
        balance: Amount,
        registry: crate::contract::ContractRegistry,
    ) -> Result<Self, crate::error::ChainError> {
        Self::open_with_id(dir, Self::CHAIN_ID, accounts, balance, registry)
    }

    /// [`Self::open`] with another chain id (cross-chain tests: the same
    /// accounts and contracts on two chains).
    pub fn open_with_id(
        dir: &std::path::Path,
        chain_id: ChainId,
        accounts: usize,
        balance: Amount,
        registry: crate::contract::ContractRegistry,
    ) -> Result<Self, crate::error::ChainError> {
        let validator = dev_validator(0);
        let genesis = dev_genesis(chain_id, accounts, balance, std::slice::from_ref(&validator));
        let chain = crate::chain::Chain::open(dir, genesis, registry, crate::chain::ChainConfig::default())?;
        let now = chain.tip().timestamp + 1_000;
        Ok(Self { chain, validator, now })
    }

    /// Next nonce of a key, counting pending transactions.
    pub fn nonce(&self, key: &KeyPair) -> u64 {
        self.chain.next_nonce(&key.address())
    }

    /// Submits one transaction and commits a block holding it.
    pub fn exec(&mut self, tx: SignedTransaction) -> Result<crate::block::Receipt, crate::error::SubmitError> {
        let h = self.chain.submit(&tx.to_bytes())?;
        self.seal();
        Ok(self.chain.receipt(&h).ok().flatten().expect("an admitted transaction is included in the next block"))
    }

    /// Commits whatever is pending as one block, advancing the clock by 1 s.
    pub fn seal(&mut self) -> Option<crate::chain::Committed> {
        self.try_seal().expect("dev chain commit")
    }

    /// [`Self::seal`] with the store's error instead of a panic.
    pub fn try_seal(&mut self) -> Result<Option<crate::chain::Committed>, crate::error::ChainError> {
        let c = self.chain.produce_block(&self.validator, self.now)?;
        self.now += 1_000;
        Ok(c)
    }

    /// A contract call from `key` with its next nonce and a generous gas limit.
    pub fn call(
        &mut self,
        key: &KeyPair,
        contract: ContractId,
        method: &str,
        args: Vec<u8>,
        value: Amount,
    ) -> Result<crate::block::Receipt, crate::error::SubmitError> {
        let tx = call(key, self.chain.genesis().chain_id, self.nonce(key), contract, method, args, value, 1_000_000);
        self.exec(tx)
    }
}
