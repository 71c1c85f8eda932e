//! gridledger foundation: core types, the canonical codec, and cryptography
//! built on maintained crates (secp256k1 via libsecp256k1, SHA-256 via `sha2`).
//!
//! Everything that is hashed or signed anywhere in gridledger goes through
//! [`codec`]: one deterministic binary encoding (borsh) prefixed by a
//! domain-separation tag, so a signature made for one purpose can never be
//! replayed as another.

pub mod bench_tx;
pub mod codec;
pub mod crypto;
pub mod ed25519;
pub mod enclave;
pub mod merkle;
pub mod mutation;
pub mod types;

pub use codec::{decode, encode, hash_tagged, CodecError, Tag};
pub use crypto::{
    batch_verify, recover, state_hash, state_sign, state_verify, verify, CryptoError, KeyPair, PublicKey,
    RecoverableSignature, Signature,
};
pub use merkle::{merkle_root, MerkleProof, MerkleTree};
pub use types::{Address, Amount, ChainId, ContractId, Energy, Epoch, Hash32, Height, Timestamp};
