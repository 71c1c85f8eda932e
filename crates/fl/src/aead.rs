//! Fragment encryption (thesis §7.2, Eqs 7.9–7.10) with
//! XChaCha20-Poly1305.
//!
//! **Nonces** (decision). Every encryption draws a fresh random 192-bit
//! nonce ([`fresh_nonce`]), which the client carries in its signed upload
//! record (`UploadRecord::nonce`). A nonce derived from the context alone
//! repeated whenever a client encrypted twice in one round (a retry after
//! a crash, a rerun with other settings) under its long-term key, and the
//! ciphertexts are no secret from the nodes (any `T` of them decode the
//! cells), so two uploads leaked the XOR of the two models. 192 random bits
//! make a repeat negligible however often a key is used. The associated
//! data binds the instance, chain, round and fragment the ciphertext
//! belongs to, so a ciphertext replayed into another chain, round, chain
//! history or federation does not decrypt.

use crate::error::FlError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use gridledger_core::Hash32;

/// Bytes of a fragment nonce (XChaCha20's 192 bits).
pub const NONCE_LEN: usize = 24;

/// Where a fragment belongs; bound into the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentContext {
    /// The chain instance (`ChainConfig::instance`: a hash of the round's
    /// whole agreed configuration) — which history and federation this is.
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

    fn aad(&self) -> [u8; 60] {
        let mut a = [0u8; 60];
        a[..16].copy_from_slice(b"gridledger/fl/v3");
        a[16..].copy_from_slice(&self.bytes());
        a
    }
}

/// A fresh random nonce from the operating system's generator (through
/// `rand`'s thread-local generator, reseeded from it).
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// `Enc(key, fragment)` under `nonce` (a [`fresh_nonce`] per encryption):
/// ciphertext with a 16-byte tag appended.
pub fn encrypt_fragment(
    key: &[u8; 32],
    ctx: &FragmentContext,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, FlError> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let aad = ctx.aad();
    cipher
        .encrypt(XNonce::from_slice(nonce), Payload { msg: plaintext, aad: &aad })
        .map_err(|_| FlError::Unsupported("fragment too long to encrypt"))
}

/// `Dec(key, ciphertext)`; any tampering, wrong key, nonce or context is refused.
pub fn decrypt_fragment(
    key: &[u8; 32],
    ctx: &FragmentContext,
    nonce: &[u8; NONCE_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, FlError> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let aad = ctx.aad();
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad })
        .map_err(|_| FlError::DecryptFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: FragmentContext = FragmentContext { instance: Hash32([7; 32]), chain: 1, round: 2, fragment: 3 };

    const N: [u8; NONCE_LEN] = [5; NONCE_LEN];

    #[test]
    fn roundtrip() {
        let ct = encrypt_fragment(&[9; 32], &CTX, &N, b"model weights").unwrap();
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &N, &ct).unwrap(), b"model weights");
    }

    #[test]
    fn tamper_wrong_key_nonce_or_context_refused() {
        let mut ct = encrypt_fragment(&[9; 32], &CTX, &N, b"model weights").unwrap();
        assert_eq!(decrypt_fragment(&[8; 32], &CTX, &N, &ct), Err(FlError::DecryptFailed));
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &[6; NONCE_LEN], &ct), Err(FlError::DecryptFailed));
        let other = FragmentContext { chain: 2, ..CTX };
        assert_eq!(decrypt_fragment(&[9; 32], &other, &N, &ct), Err(FlError::DecryptFailed));
        let history = FragmentContext { instance: Hash32([8; 32]), ..CTX };
        assert_eq!(decrypt_fragment(&[9; 32], &history, &N, &ct), Err(FlError::DecryptFailed));
        ct[0] ^= 1;
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &N, &ct), Err(FlError::DecryptFailed));
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &N, &[0u8; 3]), Err(FlError::DecryptFailed));
    }

    /// Two encryptions of one plaintext in one context draw two nonces, so
    /// their keystreams differ (no XOR of plaintexts from the ciphertexts).
    #[test]
    fn fresh_nonces_differ() {
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert_ne!(a, b);
        let ca = encrypt_fragment(&[9; 32], &CTX, &a, &[0u8; 64]).unwrap();
        let cb = encrypt_fragment(&[9; 32], &CTX, &b, &[0u8; 64]).unwrap();
        assert_ne!(ca[..64], cb[..64]);
    }
}
