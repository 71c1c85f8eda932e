//! The native contract runtime: contracts are Rust modules behind one trait,
//! addressed by id, executed deterministically against a metered, revertible
//! view of state.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::crypto::{recover, verify};
use gridledger_core::{
    Address, Amount, ChainId, ContractId, Hash32, Height, PublicKey, RecoverableSignature, Signature, Timestamp,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;

use crate::block::Event;
use crate::gas::{self, GasMeter, OutOfGas};
use crate::state::{account_key, contract_address, contract_key, Account, Overlay, StateRead};

/// Why a contract call failed. Either way its effects are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractError {
    #[error("reverted: {0}")]
    Revert(String),
    #[error(transparent)]
    OutOfGas(#[from] OutOfGas),
}

/// Shorthand for reverting with a reason.
pub fn revert<T>(reason: impl Into<String>) -> Result<T, ContractError> {
    Err(ContractError::Revert(reason.into()))
}

/// Decodes call arguments, reverting on malformed input.
pub fn decode_args<T: BorshDeserialize>(args: &[u8]) -> Result<T, ContractError> {
    borsh::from_slice(args).map_err(|e| ContractError::Revert(format!("bad arguments: {e}")))
}

/// A native contract.
pub trait NativeContract: Send + Sync {
    /// Human-readable name, for the API and logs.
    fn name(&self) -> &'static str;

    /// Executes `method`. Everything it writes through `ctx` is applied only
    /// if it returns `Ok`.
    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError>;

    /// A read-only query for the API (no gas, no writes).
    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError>;

    /// Whether a call of `method` by `sender` is a duty of the chain's
    /// protocol that must not be outbid by ordinary traffic (e.g. a
    /// registered node's header relay): such a transaction is offered to
    /// the block's duty lane ([`crate::ChainConfig::duty_lane_percent`])
    /// before the gas-price order. Decided from the contract's fixed
    /// configuration and the call alone (never from state, nor from
    /// anything the sender claims), so every validator classifies a
    /// transaction alike. None by default.
    fn duty(&self, _sender: &Address, _method: &str) -> bool {
        false
    }
}

/// Contracts deployed on a chain, by id.
#[derive(Clone, Default)]
pub struct ContractRegistry {
    contracts: BTreeMap<ContractId, Arc<dyn NativeContract>>,
}

impl ContractRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, id: ContractId, c: Arc<dyn NativeContract>) -> &mut Self {
        self.contracts.insert(id, c);
        self
    }

    pub fn get(&self, id: ContractId) -> Option<&Arc<dyn NativeContract>> {
        self.contracts.get(&id)
    }

    pub fn list(&self) -> impl Iterator<Item = (ContractId, &'static str)> + '_ {
        self.contracts.iter().map(|(id, c)| (*id, c.name()))
    }
}

/// Block-level facts a contract may read.
#[derive(Clone, Copy, Debug)]
pub struct BlockEnv {
    /// The chain this block belongs to: contracts bind signed statements to
    /// it so they cannot be replayed on another chain.
    pub chain_id: ChainId,
    pub height: Height,
    pub timestamp: Timestamp,
    pub proposer: Address,
    /// Hash of the parent block: randomness no transaction sender controls
    /// (contracts that assign roles by lot read it).
    pub parent: Hash32,
}

/// The most recent blocks by height: their hashes
/// ([`CallContext::block_hash`]) and the room each left
/// ([`CallContext::block_room`]).
pub type BlockHashes = std::collections::BTreeMap<Height, RecentBlock>;

/// A recent block as contracts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecentBlock {
    pub hash: Hash32,
    /// What the block left of the chain's per-block limits; `None` where
    /// the block itself was not at hand when the window was read back.
    pub room: Option<BlockRoom>,
}

/// What a committed block left unused of the chain's per-block limits
/// ([`crate::ChainConfig::max_block_txs`],
/// [`crate::ChainConfig::block_gas_limit`]). A block that left room for a
/// transaction took every pending one of that size it could execute (the
/// block builder stops early only when the block is full), so a contract
/// may read a full block as one a pending call may have been crowded out
/// of, and a block with room as one it was not (attack r29 [2] [3] on the
/// rollup: junk calls filled the blocks of a dispute window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRoom {
    /// Transactions the block could still have held.
    pub txs_left: u64,
    /// Gas the block left unused.
    pub gas_left: u64,
}

/// How many blocks below the current one a contract may read the hash of
/// ([`CallContext::block_hash`]), as the EVM's `BLOCKHASH`.
pub const BLOCK_HASH_WINDOW: u64 = 256;

/// What a contract sees while it runs.
pub struct CallContext<'o, 'b> {
    pub(crate) overlay: &'o mut Overlay<'b>,
    pub(crate) meter: &'o mut GasMeter,
    pub(crate) events: &'o mut Vec<Event>,
    pub(crate) caller: Address,
    pub(crate) value: Amount,
    pub(crate) contract: ContractId,
    pub(crate) env: BlockEnv,
    /// Recent blocks' hashes, where the block builder was given them.
    pub(crate) block_hashes: Option<&'o BlockHashes>,
}

impl CallContext<'_, '_> {
    pub fn caller(&self) -> Address {
        self.caller
    }
    /// Native coin attached to this call, already credited to [`Self::self_address`].
    pub fn value(&self) -> Amount {
        self.value
    }
    pub fn contract_id(&self) -> ContractId {
        self.contract
    }
    /// The id of the chain this call executes on.
    pub fn chain_id(&self) -> ChainId {
        self.env.chain_id
    }
    pub fn self_address(&self) -> Address {
        contract_address(self.contract)
    }
    pub fn height(&self) -> Height {
        self.env.height
    }
    /// The block's timestamp (ms): the only clock a contract has.
    pub fn timestamp(&self) -> Timestamp {
        self.env.timestamp
    }
    pub fn gas_used(&self) -> u64 {
        self.meter.used()
    }
    /// Hash of the parent block (see [`BlockEnv::parent`]).
    pub fn parent_hash(&self) -> Hash32 {
        self.env.parent
    }

    /// Hash of the committed block at `height`, one of the
    /// [`BLOCK_HASH_WINDOW`] blocks below this one: a value fixed once that
    /// block was made, the same whichever later block reads it (a lot
    /// drawn from the parent hash is chosen by whoever picks the block it
    /// calls in). `None` outside the window, and beyond the parent where
    /// the block builder was given no history
    /// ([`crate::BlockBuilder::with_block_hashes`]).
    pub fn block_hash(&mut self, height: Height) -> Result<Option<Hash32>, ContractError> {
        self.charge(crate::gas::BLOCK_HASH)?;
        let below = self.env.height.saturating_sub(height);
        if below == 0 || below > BLOCK_HASH_WINDOW {
            return Ok(None);
        }
        if below == 1 {
            return Ok(Some(self.env.parent));
        }
        Ok(self.block_hashes.and_then(|m| m.get(&height)).map(|b| b.hash))
    }

    /// The room the committed block at `height` left ([`BlockRoom`]), one
    /// of the [`BLOCK_HASH_WINDOW`] blocks below this one. `None` outside
    /// the window, where the block builder was given no history
    /// ([`crate::BlockBuilder::with_block_hashes`]), or where the block was
    /// not at hand when the history was read back. Charged as
    /// [`Self::block_hash`].
    pub fn block_room(&mut self, height: Height) -> Result<Option<BlockRoom>, ContractError> {
        self.charge(crate::gas::BLOCK_HASH)?;
        let below = self.env.height.saturating_sub(height);
        if below == 0 || below > BLOCK_HASH_WINDOW {
            return Ok(None);
        }
        Ok(self.block_hashes.and_then(|m| m.get(&height)).and_then(|b| b.room))
    }

    pub fn charge(&mut self, gas: u64) -> Result<(), ContractError> {
        Ok(self.meter.charge(gas)?)
    }

    /// Reads a storage slot: `SLOAD` per 32-byte word.
    pub fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, ContractError> {
        let v = self.overlay.get(&contract_key(self.contract, key));
        self.charge(gas::SLOAD * gas::words(v.as_ref().map_or(0, Vec::len)))?;
        Ok(v)
    }

    /// Writes a storage slot: `SSTORE` set or reset per 32-byte word.
    pub fn write(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ContractError> {
        let k = contract_key(self.contract, key);
        let per_word = if self.overlay.get(&k).is_some() { gas::SSTORE_RESET } else { gas::SSTORE_SET };
        self.charge(per_word * gas::words(value.len()))?;
        self.overlay.set(k, value);
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<(), ContractError> {
        self.charge(gas::SSTORE_RESET)?;
        self.overlay.delete(contract_key(self.contract, key));
        Ok(())
    }

    pub fn read_typed<T: BorshDeserialize>(&mut self, key: &[u8]) -> Result<Option<T>, ContractError> {
        match self.read(key)? {
            None => Ok(None),
            Some(v) => {
                borsh::from_slice(&v).map(Some).map_err(|_| ContractError::Revert("corrupt contract storage".into()))
            }
        }
    }

    pub fn write_typed<T: BorshSerialize>(&mut self, key: &[u8], v: &T) -> Result<(), ContractError> {
        self.write(key, borsh::to_vec(v).unwrap_or_default())
    }

    /// Native balance of any account.
    pub fn balance(&mut self, who: &Address) -> Result<Amount, ContractError> {
        self.charge(gas::BALANCE)?;
        Ok(self.overlay.account(who).balance)
    }

    /// Pays native coin out of this contract's account.
    pub fn pay(&mut self, to: &Address, amount: Amount) -> Result<(), ContractError> {
        self.charge(gas::CALL_VALUE)?;
        if amount.is_zero() {
            return Ok(());
        }
        let from = self.self_address();
        let mut src = self.overlay.account(&from);
        src.balance = match src.balance.checked_sub(amount) {
            Some(b) => b,
            None => return revert("contract balance too low"),
        };
        self.overlay.set_account(&from, &src);
        let mut dst: Account = self.overlay.account(to);
        dst.balance =
            dst.balance.checked_add(amount).ok_or_else(|| ContractError::Revert("balance overflow".into()))?;
        self.overlay.set_account(to, &dst);
        Ok(())
    }

    /// Emits an event: `LOG` with one topic (the name) plus data bytes.
    pub fn emit(&mut self, name: &str, attributes: Vec<(String, String)>) -> Result<(), ContractError> {
        let bytes: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.charge(gas::LOG_BASE + gas::LOG_TOPIC + gas::LOG_BYTE * bytes as u64)?;
        self.events.push(Event { emitter: self.contract, name: name.to_string(), attributes });
        Ok(())
    }

    /// SHA-256 with a domain tag, priced like `KECCAK256`.
    pub fn hash(&mut self, tag: Tag, data: &[u8]) -> Result<Hash32, ContractError> {
        self.charge(gas::HASH_BASE + gas::HASH_WORD * gas::words(data.len()))?;
        Ok(hash_bytes(tag, data))
    }

    /// ECDSA verification, priced like `ecrecover`.
    pub fn verify_signature(
        &mut self,
        pk: &PublicKey,
        digest: &Hash32,
        sig: &Signature,
    ) -> Result<bool, ContractError> {
        self.charge(gas::ECRECOVER)?;
        Ok(verify(pk, digest, sig).is_ok())
    }

    /// Public key recovery, priced like `ecrecover`.
    pub fn recover_signer(
        &mut self,
        digest: &Hash32,
        sig: &RecoverableSignature,
    ) -> Result<Option<PublicKey>, ContractError> {
        self.charge(gas::ECRECOVER)?;
        Ok(recover(digest, sig).ok())
    }

    /// Raw account record, for contracts that need nonces (no extra gas
    /// beyond a balance read).
    pub fn account(&mut self, who: &Address) -> Result<Account, ContractError> {
        self.charge(gas::BALANCE)?;
        Ok(self.overlay.get(&account_key(who)).and_then(|v| borsh::from_slice(&v).ok()).unwrap_or_default())
    }
}

/// Typed storage reads shared by calls (metered) and views (free), so
/// contract code that only reads can serve both.
pub trait StorageRead {
    fn read_typed<T: BorshDeserialize>(&mut self, key: &[u8]) -> Result<Option<T>, ContractError>;
}

impl StorageRead for CallContext<'_, '_> {
    fn read_typed<T: BorshDeserialize>(&mut self, key: &[u8]) -> Result<Option<T>, ContractError> {
        CallContext::read_typed(self, key)
    }
}

impl StorageRead for &ViewContext<'_> {
    fn read_typed<T: BorshDeserialize>(&mut self, key: &[u8]) -> Result<Option<T>, ContractError> {
        ViewContext::read_typed(self, key)
    }
}

/// Read-only access for views.
pub struct ViewContext<'a> {
    pub(crate) state: &'a dyn StateRead,
    pub(crate) contract: ContractId,
    pub(crate) env: BlockEnv,
}

impl<'a> ViewContext<'a> {
    pub fn new(state: &'a dyn StateRead, contract: ContractId, env: BlockEnv) -> Self {
        Self { state, contract, env }
    }
    pub fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(&contract_key(self.contract, key))
    }
    pub fn read_typed<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, ContractError> {
        match self.read(key) {
            None => Ok(None),
            Some(v) => {
                borsh::from_slice(&v).map(Some).map_err(|_| ContractError::Revert("corrupt contract storage".into()))
            }
        }
    }
    pub fn balance(&self, who: &Address) -> Amount {
        self.state.account(who).balance
    }
    pub fn timestamp(&self) -> Timestamp {
        self.env.timestamp
    }
    pub fn height(&self) -> Height {
        self.env.height
    }
    pub fn chain_id(&self) -> ChainId {
        self.env.chain_id
    }
    pub fn self_address(&self) -> Address {
        contract_address(self.contract)
    }
}
