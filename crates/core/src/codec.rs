//! The canonical codec: borsh (deterministic, length-prefixed, little-endian,
//! no floats in our types) plus domain-separation tags for hashing/signing.
//!
//! `decode` is strict: trailing bytes, non-canonical booleans/options and
//! oversize input are errors, so every value has exactly one encoding.

use crate::types::Hash32;
use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};

/// A domain-separation tag. Every hashed or signed structure has its own, so
/// bytes signed for one purpose can never verify as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tag(pub &'static str);

impl Tag {
    pub const TX: Tag = Tag("gridledger/tx/v1");
    pub const BLOCK_HEADER: Tag = Tag("gridledger/block-header/v1");
    pub const RECEIPT: Tag = Tag("gridledger/receipt/v1");
    pub const MERKLE_LEAF: Tag = Tag("gridledger/merkle-leaf/v1");
    pub const MERKLE_NODE: Tag = Tag("gridledger/merkle-node/v1");
    pub const STATE_ENTRY: Tag = Tag("gridledger/state-entry/v1");
    pub const STATE_BUCKET: Tag = Tag("gridledger/state-bucket/v1");
    pub const STATE_NODE: Tag = Tag("gridledger/state-node/v1");
    /// `hstate = H(state, nonce)`, seed 000 §5.1.2.
    pub const CHANNEL_STATE: Tag = Tag("gridledger/hstate/v1");
    /// `Sign(hstate, i)`: what is actually signed for an off-chain state.
    pub const STATE_SIGNATURE: Tag = Tag("gridledger/state-signature/v1");
    pub const ADDRESS: Tag = Tag("gridledger/address/v1");
    pub const CONTRACT_HASH: Tag = Tag("gridledger/contract-hash/v1");
}

/// Codec failures, all recoverable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("undecodable input: {0}")]
    Invalid(String),
}

/// Canonical bytes of a value.
pub fn encode<T: BorshSerialize + ?Sized>(v: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    borsh::to_vec(v).unwrap_or_default()
}

/// Strict decoding: the whole input must be consumed and be at most `max` bytes.
pub fn decode<T: BorshDeserialize>(bytes: &[u8], max: usize) -> Result<T, CodecError> {
    if bytes.len() > max {
        return Err(CodecError::TooLarge { len: bytes.len(), max });
    }
    borsh::from_slice(bytes).map_err(|e| CodecError::Invalid(e.to_string()))
}

/// `SHA-256(len(tag) ‖ tag ‖ bytes)`.
pub fn hash_bytes(tag: Tag, bytes: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([tag.0.len() as u8]);
    h.update(tag.0.as_bytes());
    h.update(bytes);
    Hash32(h.finalize().into())
}

/// Tagged hash of a value's canonical encoding.
pub fn hash_tagged<T: BorshSerialize + ?Sized>(tag: Tag, v: &T) -> Hash32 {
    hash_bytes(tag, &encode(v))
}

/// Tagged hash of several byte strings, each length-prefixed so the split
/// points are unambiguous.
pub fn hash_parts(tag: Tag, parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    h.update([tag.0.len() as u8]);
    h.update(tag.0.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    Hash32(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Address, Amount, Energy};
    use proptest::prelude::*;

    #[derive(BorshSerialize, BorshDeserialize, Debug, PartialEq, Clone)]
    struct Sample {
        a: Amount,
        e: Energy,
        to: Address,
        memo: Vec<u8>,
        flag: Option<bool>,
    }

    proptest! {
        #[test]
        fn round_trip(a in any::<u128>(), e in any::<u64>(), to in any::<[u8; 20]>(),
                      memo in proptest::collection::vec(any::<u8>(), 0..64), flag in any::<Option<bool>>()) {
            let s = Sample { a: Amount(a), e: Energy(e), to: Address(to), memo, flag };
            let bytes = encode(&s);
            prop_assert_eq!(decode::<Sample>(&bytes, 1 << 20).unwrap(), s.clone());
            // Canonical: re-encoding the decoded value gives the same bytes.
            prop_assert_eq!(encode(&decode::<Sample>(&bytes, 1 << 20).unwrap()), bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<Sample>(&bytes, 1 << 20);
        }
    }

    #[test]
    fn trailing_bytes_and_oversize_are_refused() {
        let s = Sample { a: Amount(1), e: Energy(2), to: Address::ZERO, memo: vec![], flag: None };
        let mut bytes = encode(&s);
        bytes.push(0);
        assert!(matches!(decode::<Sample>(&bytes, 1024), Err(CodecError::Invalid(_))));
        assert!(matches!(decode::<Sample>(&bytes, 4), Err(CodecError::TooLarge { .. })));
    }

    #[test]
    fn tags_separate_domains() {
        assert_ne!(hash_bytes(Tag::TX, b"x"), hash_bytes(Tag::RECEIPT, b"x"));
        assert_ne!(hash_parts(Tag::TX, &[b"ab", b"c"]), hash_parts(Tag::TX, &[b"a", b"bc"]));
    }
}
