//! Fragment encryption (thesis §7.2, Eqs 7.9–7.10) with ChaCha20-Poly1305.
//!
//! The nonce is derived from `(round, fragment index)`, so a key must be
//! used for one model upload per round only; the associated data binds the
//! chain and round the fragment belongs to, so a ciphertext replayed into
//! another chain or round does not decrypt.

use crate::error::FlError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Where a fragment belongs; bound into nonce and associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentContext {
    pub chain: u32,
    pub round: u32,
    pub fragment: u32,
}

impl FragmentContext {
    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.round.to_le_bytes());
        n[4..8].copy_from_slice(&self.fragment.to_le_bytes());
        n
    }

    fn aad(&self) -> [u8; 28] {
        let mut a = [0u8; 28];
        a[..16].copy_from_slice(b"gridledger/fl/v1");
        a[16..20].copy_from_slice(&self.chain.to_le_bytes());
        a[20..24].copy_from_slice(&self.round.to_le_bytes());
        a[24..28].copy_from_slice(&self.fragment.to_le_bytes());
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

    const CTX: FragmentContext = FragmentContext { chain: 1, round: 2, fragment: 3 };

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
        ct[0] ^= 1;
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &ct), Err(FlError::DecryptFailed));
        assert_eq!(decrypt_fragment(&[9; 32], &CTX, &[0u8; 3]), Err(FlError::DecryptFailed));
    }
}
