//! Fragment encryption (thesis §7.2, Eqs 7.9–7.10) with ChaCha20-Poly1305.
//!
//! The nonce is derived from `(chain instance, chain, round, fragment
//! index)` — a 96-bit hash prefix — so a key is used for one model upload
//! per round of one chain history: the same chain and round numbers in
//! another chain history (another `prev_block`, hence another instance)
//! get another nonce. The associated data binds the instance, chain, round
//! and fragment the ciphertext belongs to, so a ciphertext replayed into
//! another chain, round or chain history does not decrypt.

use crate::error::FlError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::Hash32;

/// Domain tag of a fragment's nonce derivation.
pub const FRAGMENT_NONCE: Tag = Tag("gridledger/fl-fragment-nonce/v1");

/// Where a fragment belongs; bound into nonce and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentContext {
    /// The chain instance (`ChainConfig::instance`: a hash of chain, round
    /// and the previous block) — which history of the chain this is.
    pub instance: Hash32,
    pub chain: u32,
    pub round: u32,
    pub fragment: u32,
}

impl FragmentContext {
    /// The context's bytes: instance, chain, round, fragment.
    pub fn bytes(&self) -> [u8; 44] {
        let mut a = [0u8; 44];
        a[..32].copy_from_slice(&self.instance.0);
        a[32..36].copy_from_slice(&self.chain.to_le_bytes());
        a[36..40].copy_from_slice(&self.round.to_le_bytes());
        a[40..44].copy_from_slice(&self.fragment.to_le_bytes());
        a
    }

    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n.copy_from_slice(&hash_bytes(FRAGMENT_NONCE, &self.bytes()).0[..12]);
        n
    }

    fn aad(&self) -> [u8; 60] {
        let mut a = [0u8; 60];
        a[..16].copy_from_slice(b"gridledger/fl/v2");
        a[16..].copy_from_slice(&self.bytes());
        a
    }
}

/// `Enc(key, fragment)`: ciphertext with a 16-byte tag appended.
pub fn encrypt_fragment(key: &[u8; 32], ctx: &FragmentContext, plaintext: &[u8]) -> Result<Vec<u8>, FlError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let aad = ctx.aad();
    cipher
        .encrypt(Nonce::from_slice(&ctx.nonce()), Payload { msg: plaintext, aad: &aad })
        .map_err(|_| FlError::Unsupported("fragment too long to encrypt"))
}

/// `Dec(key, ciphertext)`; any tampering, wrong key or wrong context is refused.
pub fn decrypt_fragment(key: &[u8; 32], ctx: &FragmentContext, ciphertext: &[u8]) -> Result<Vec<u8>, FlError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let aad = ctx.aad();
    cipher
        .decrypt(Nonce::from_slice(&ctx.nonce()), Payload { msg: ciphertext, aad: &aad })
        .map_err(|_| FlError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: FragmentContext = FragmentContext { instance: Hash32([7; 32]), chain: 1, round: 2, fragment: 3 };

    #[test]
    fn roundtrip() {
        let ct = encrypt_fragment(&[9; 32], &CTX, b"model weights").unwrap();
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &ct).unwrap(), b"model weights");
    }

    #[test]
    fn tamper_wrong_key_or_context_refused() {
        let mut ct = encrypt_fragment(&[9; 32], &CTX, b"model weights").unwrap();
        assert_eq!(decrypt_fragment(&[8; 32], &CTX, &ct), Err(FlError::DecryptFailed));
        let other = FragmentContext { chain: 2, ..CTX };
        assert_eq!(decrypt_fragment(&[9; 32], &other, &ct), Err(FlError::DecryptFailed));
        let history = FragmentContext { instance: Hash32([8; 32]), ..CTX };
        assert_eq!(decrypt_fragment(&[9; 32], &history, &ct), Err(FlError::DecryptFailed));
        assert_ne!(CTX.nonce(), history.nonce(), "another chain history reuses no nonce");
        ct[0] ^= 1;
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &ct), Err(FlError::DecryptFailed));
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &[0u8; 3]), Err(FlError::DecryptFailed));
    }
}
