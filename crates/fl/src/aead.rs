//! Fragment encryption (thesis §7.2, Eqs 7.9–7.10) with
//! XChaCha20-Poly1305.
//!
//! **Nonces** (decision). A fragment's 192-bit nonce is derived
//! ([`derive_nonce`]): HMAC-SHA256 under the client's fragment key over
//! the fragment context and the plaintext's hash, truncated to 192 bits
//! (a synthetic nonce, as in SIV). The client carries it in its signed
//! upload record (`UploadRecord::nonce`). So
//! - an encryption of the same plaintext in the same context (a retry
//!   after a crash) is the same ciphertext, and its record the same
//!   record: a retry is no equivocation;
//! - another plaintext in the same context gets another nonce (a PRF
//!   collision aside), so no keystream is ever reused and the ciphertexts
//!   of two models do not leak their XOR (a nonce from the context alone
//!   did, and the ciphertexts are no secret from the nodes: any `T` of
//!   them decode the cells);
//! - all a repeat shows is that the same model was sent again.
//!
//! The associated data binds the instance, chain, round and fragment the ciphertext
//! belongs to, so a ciphertext replayed into another chain, round, chain
//! history, run or federation does not decrypt.

use crate::error::FlError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use gridledger_core::Hash32;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

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

/// Domain label of the nonce derivation (the PRF's first input).
const NONCE_LABEL: &[u8] = b"gridledger/fl-fragment-nonce/v1";

/// The nonce of `plaintext` in `ctx` under the client's fragment `key`:
/// `HMAC-SHA256(key, label ‖ context ‖ SHA-256(plaintext))`, its first
/// 192 bits. Deterministic: one (key, context, plaintext) has one nonce,
/// and another plaintext another one.
pub fn derive_nonce(key: &[u8; 32], ctx: &FragmentContext, plaintext: &[u8]) -> [u8; NONCE_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(NONCE_LABEL);
    mac.update(&ctx.bytes());
    mac.update(&Sha256::digest(plaintext));
    let tag = mac.finalize().into_bytes();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&tag[..NONCE_LEN]);
    nonce
}

/// `Enc(key, fragment)` under `nonce` (the plaintext's [`derive_nonce`]):
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

    /// One plaintext in one context under one key has one nonce (a retry
    /// is the same ciphertext); another plaintext, context or key another
    /// nonce, so two models never share a keystream.
    #[test]
    fn derived_nonces_repeat_only_for_the_same_plaintext_context_and_key() {
        let a = derive_nonce(&[9; 32], &CTX, &[0u8; 64]);
        assert_eq!(a, derive_nonce(&[9; 32], &CTX, &[0u8; 64]));
        let ca = encrypt_fragment(&[9; 32], &CTX, &a, &[0u8; 64]).unwrap();
        assert_eq!(ca, encrypt_fragment(&[9; 32], &CTX, &a, &[0u8; 64]).unwrap());
        let mut other = [0u8; 64];
        other[63] = 1;
        let b = derive_nonce(&[9; 32], &CTX, &other);
        assert_ne!(a, b);
        let cb = encrypt_fragment(&[9; 32], &CTX, &b, &other).unwrap();
        assert_ne!(ca[..63], cb[..63], "another plaintext reused the keystream");
        assert_ne!(a, derive_nonce(&[8; 32], &CTX, &[0u8; 64]));
        assert_ne!(a, derive_nonce(&[9; 32], &FragmentContext { round: 3, ..CTX }, &[0u8; 64]));
        assert_ne!(a, derive_nonce(&[9; 32], &FragmentContext { instance: Hash32([8; 32]), ..CTX }, &[0u8; 64]));
    }
}
