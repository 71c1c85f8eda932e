//! Signed transactions.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{decode, encode, hash_tagged, Tag};
use gridledger_core::crypto::{verify, KeyPair};
use gridledger_core::{Address, Amount, ChainId, ContractId, Hash32, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::error::SubmitError;
use crate::gas;

/// Domain tag of [`Transaction::signing_digest`] with a signing domain.
pub const TX_DOMAIN: Tag = Tag("gridledger/tx-in-domain/v1");

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    /// Move native coin between accounts.
    Transfer { to: Address, amount: Amount },
    /// Call a native contract; `value` moves from the sender to the contract
    /// account before the call and back if it reverts.
    Call {
        contract: ContractId,
        method: String,
        #[serde(with = "hex_bytes")]
        args: Vec<u8>,
        value: Amount,
    },
    /// A [`TxKind::Transfer`] with a deadline: valid only in a block at
    /// height `valid_until` or below. A chain refuses it once its next
    /// height is above (`SubmitError::Expired` on submission,
    /// `TxRejected::Expired` in a block, so a block holding it is
    /// invalid), and its mempool drops it then. Appended last, so the
    /// encodings of the other kinds are unchanged.
    ///
    /// A payment that must not land after some point — a cross-chain
    /// exchange's native transfer, whose landing is worth nothing (and
    /// costs its payer twice) once it can no longer be proved — carries
    /// one.
    TransferUntil { to: Address, amount: Amount, valid_until: u64 },
}

impl TxKind {
    /// The payee and amount of a native transfer, with or without a
    /// deadline; `None` for a call.
    pub fn transfer_parts(&self) -> Option<(Address, Amount)> {
        match self {
            TxKind::Transfer { to, amount } | TxKind::TransferUntil { to, amount, .. } => Some((*to, *amount)),
            TxKind::Call { .. } => None,
        }
    }

    /// The last block height the transaction is valid in, if it has a deadline.
    pub fn valid_until(&self) -> Option<u64> {
        match self {
            TxKind::TransferUntil { valid_until, .. } => Some(*valid_until),
            TxKind::Transfer { .. } | TxKind::Call { .. } => None,
        }
    }

    /// Whether it can no longer go into a block at `height` (its deadline passed).
    pub fn expired_at(&self, height: u64) -> bool {
        self.valid_until().is_some_and(|u| height > u)
    }
}

/// The signed body of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    pub chain_id: ChainId,
    /// The sender's public key; its address is the sender.
    pub sender: PublicKey,
    /// Per-account sequence number: replay protection and ordering.
    pub nonce: u64,
    pub gas_limit: u64,
    /// Fee per unit of gas, in minor units.
    pub gas_price: Amount,
    pub kind: TxKind,
}

/// A transaction with the sender's signature over `H(TX, body)`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signature: Signature,
}

impl Transaction {
    /// The digest that is signed, which is also the transaction hash.
    pub fn hash(&self) -> Hash32 {
        hash_tagged(Tag::TX, self)
    }

    pub fn sign(self, key: &KeyPair) -> SignedTransaction {
        let signature = key.sign(&self.hash());
        SignedTransaction { tx: self, signature }
    }

    /// The digest the sender signs for a chain with signing domain
    /// `domain` ([`crate::ChainConfig::signing_domain`]): the transaction
    /// hash itself without one, else `H(TX_DOMAIN, domain ‖ hash)`. A chain
    /// with a domain (e.g. its genesis hash) accepts only signatures over
    /// its own, so a transaction signed for one chain never executes on
    /// another that shares its numeric chain id. The transaction hash (its
    /// id, and the Merkle leaf) stays `H(TX, body)` either way.
    pub fn signing_digest(&self, domain: Option<&Hash32>) -> Hash32 {
        let hash = self.hash();
        match domain {
            None => hash,
            Some(d) => gridledger_core::codec::hash_parts(TX_DOMAIN, &[&d.0, &hash.0]),
        }
    }

    /// Signs for a chain with signing domain `domain` (see [`Self::signing_digest`]).
    pub fn sign_in(self, key: &KeyPair, domain: Option<&Hash32>) -> SignedTransaction {
        let signature = key.sign(&self.signing_digest(domain));
        SignedTransaction { tx: self, signature }
    }

    /// Gas charged before any execution: base cost plus calldata.
    pub fn intrinsic_gas(&self) -> u64 {
        match &self.kind {
            TxKind::Transfer { .. } | TxKind::TransferUntil { .. } => gas::TX_BASE,
            TxKind::Call { method, args, .. } => gas::TX_BASE + gas::calldata(method.as_bytes()) + gas::calldata(args),
        }
    }

    /// The most the sender can be charged: value plus the full gas limit.
    pub fn max_cost(&self) -> Option<Amount> {
        let fee = self.gas_price.0.checked_mul(self.gas_limit as u128)?;
        let value = match &self.kind {
            TxKind::Transfer { amount, .. } | TxKind::TransferUntil { amount, .. } => *amount,
            TxKind::Call { value, .. } => *value,
        };
        Amount(fee).checked_add(value)
    }
}

impl SignedTransaction {
    pub fn hash(&self) -> Hash32 {
        self.tx.hash()
    }

    pub fn sender(&self) -> Address {
        self.tx.sender.address()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes with a size bound; never panics on arbitrary bytes.
    pub fn from_bytes(bytes: &[u8], max: usize) -> Result<Self, SubmitError> {
        if bytes.len() > max {
            return Err(SubmitError::Oversize { size: bytes.len(), max });
        }
        decode(bytes, max).map_err(|e| SubmitError::Undecodable(e.to_string()))
    }

    /// Checks that depend on nothing but the transaction itself, for a
    /// chain without a signing domain.
    pub fn check_stateless(&self, chain_id: ChainId, max_gas: u64) -> Result<VerifiedTx, SubmitError> {
        self.check_stateless_in(chain_id, None, max_gas)
    }

    /// Whether the signature is the sender's over [`Transaction::signing_digest`] in `domain`.
    pub fn signature_valid_in(&self, domain: Option<&Hash32>) -> bool {
        verify(&self.tx.sender, &self.tx.signing_digest(domain), &self.signature).is_ok()
    }

    /// [`Self::check_stateless`] for a chain with signing domain `domain`.
    pub fn check_stateless_in(
        &self,
        chain_id: ChainId,
        domain: Option<&Hash32>,
        max_gas: u64,
    ) -> Result<VerifiedTx, SubmitError> {
        if self.tx.chain_id != chain_id {
            return Err(SubmitError::WrongChain { expected: chain_id, got: self.tx.chain_id });
        }
        let intrinsic = self.tx.intrinsic_gas();
        if self.tx.gas_limit < intrinsic {
            return Err(SubmitError::GasLimitTooLow { limit: self.tx.gas_limit, intrinsic });
        }
        if self.tx.gas_limit > max_gas {
            return Err(SubmitError::GasLimitTooHigh { limit: self.tx.gas_limit, max: max_gas });
        }
        let max_cost = self.tx.max_cost().ok_or(SubmitError::Overflow)?;
        let hash = self.hash();
        if !self.signature_valid_in(domain) {
            return Err(SubmitError::BadSignature);
        }
        Ok(VerifiedTx { sender: self.sender(), hash, max_cost, tx: self.clone() })
    }
}

/// A transaction whose signature and static fields have been checked.
#[derive(Clone, Debug)]
pub struct VerifiedTx {
    pub tx: SignedTransaction,
    pub hash: Hash32,
    pub sender: Address,
    pub max_cost: Amount,
}

/// Hex strings for byte vectors in JSON.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <String as Deserialize>::deserialize(d)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}
