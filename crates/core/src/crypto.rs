//! secp256k1 ECDSA through libsecp256k1 (the `secp256k1` crate), and the
//! seed's off-chain state signatures.
//!
//! Seed 000 §5.1.2 defines `σ ← Sign(state, i)` and `Verify(state, i, σ)`
//! over the hashed state `hstate = H(state, N)`; [`state_hash`],
//! [`state_sign`] and [`state_verify`] are exactly those, with the counter
//! `i` bound into the signed digest so a signature for update `i` cannot be
//! presented as one for any other `i`.

use crate::codec::{hash_parts, hash_tagged, Tag};
use crate::types::{Address, Hash32};
pub use crate::types::{PublicKey, RecoverableSignature, Signature};
use borsh::BorshSerialize;
use rayon::prelude::*;
use secp256k1::ecdsa::{RecoverableSignature as SecpRecSig, RecoveryId, Signature as SecpSig};
use secp256k1::{Message, SecretKey, SECP256K1};

/// Signature and key failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed public key")]
    BadPublicKey,
    #[error("malformed signature encoding")]
    BadSignatureEncoding,
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid secret key")]
    BadSecretKey,
}

/// A secp256k1 signing key with its public key.
#[derive(Clone)]
pub struct KeyPair {
    sk: SecretKey,
    pk: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.pk)
    }
}

impl KeyPair {
    /// A fresh key from the given RNG (callers pass a seeded RNG in tests and
    /// simulations, the OS RNG otherwise).
    pub fn generate<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            if let Ok(k) = Self::from_secret_bytes(b) {
                return k;
            }
        }
    }

    pub fn from_secret_bytes(b: [u8; 32]) -> Result<Self, CryptoError> {
        let sk = SecretKey::from_byte_array(b).map_err(|_| CryptoError::BadSecretKey)?;
        let pk = PublicKey(secp256k1::PublicKey::from_secret_key_global(&sk).serialize());
        Ok(Self { sk, pk })
    }

    /// A deterministic key for tests, demos and simulations: `H(label)` as the secret.
    pub fn from_seed(label: &str) -> Self {
        let mut bytes = hash_parts(Tag("gridledger/dev-key/v1"), &[label.as_bytes()]).0;
        loop {
            match Self::from_secret_bytes(bytes) {
                Ok(k) => return k,
                Err(_) => bytes = hash_parts(Tag("gridledger/dev-key/v1"), &[&bytes]).0,
            }
        }
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.sk.secret_bytes()
    }

    pub fn public(&self) -> PublicKey {
        self.pk
    }

    pub fn address(&self) -> Address {
        self.pk.address()
    }

    /// ECDSA over a 32-byte digest (RFC 6979 nonces, low-S).
    pub fn sign(&self, digest: &Hash32) -> Signature {
        let sig = SECP256K1.sign_ecdsa(Message::from_digest(digest.0), &self.sk);
        Signature(sig.serialize_compact())
    }

    /// A recoverable signature: the public key can be recovered from it.
    pub fn sign_recoverable(&self, digest: &Hash32) -> RecoverableSignature {
        let sig = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(digest.0), &self.sk);
        let (rid, rs) = sig.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        out[64] = i32::from(rid) as u8;
        RecoverableSignature(out)
    }
}

impl PublicKey {
    /// The account address of this key.
    pub fn address(&self) -> Address {
        let h = hash_parts(Tag::ADDRESS, &[&self.0]);
        let mut a = [0u8; 20];
        a.copy_from_slice(&h.0[12..]);
        Address(a)
    }

    fn parse(&self) -> Result<secp256k1::PublicKey, CryptoError> {
        secp256k1::PublicKey::from_slice(&self.0).map_err(|_| CryptoError::BadPublicKey)
    }
}

/// Verifies an ECDSA signature over `digest`. High-S signatures are refused,
/// so signatures are not malleable.
pub fn verify(pk: &PublicKey, digest: &Hash32, sig: &Signature) -> Result<(), CryptoError> {
    let pk = pk.parse()?;
    let sig = SecpSig::from_compact(&sig.0).map_err(|_| CryptoError::BadSignatureEncoding)?;
    SECP256K1.verify_ecdsa(Message::from_digest(digest.0), &sig, &pk).map_err(|_| CryptoError::BadSignature)
}

/// Recovers the signer's public key from a recoverable signature.
pub fn recover(digest: &Hash32, sig: &RecoverableSignature) -> Result<PublicKey, CryptoError> {
    let rid = RecoveryId::try_from(sig.0[64] as i32).map_err(|_| CryptoError::BadSignatureEncoding)?;
    let rs = SecpRecSig::from_compact(&sig.0[..64], rid).map_err(|_| CryptoError::BadSignatureEncoding)?;
    // Refuse high-S here too, matching `verify`.
    let std_sig = rs.to_standard();
    let mut normal = std_sig;
    normal.normalize_s();
    if normal != std_sig {
        return Err(CryptoError::BadSignature);
    }
    let pk = SECP256K1.recover_ecdsa(Message::from_digest(digest.0), &rs).map_err(|_| CryptoError::BadSignature)?;
    Ok(PublicKey(pk.serialize()))
}

/// `hstate = H(state, N)` of seed 000 §5.1.2: the tagged hash of the state's
/// canonical encoding together with the nonce `N`.
pub fn state_hash<S: BorshSerialize + ?Sized>(state: &S, nonce: u64) -> Hash32 {
    let state_digest = hash_tagged(Tag::CHANNEL_STATE, state);
    hash_parts(Tag::CHANNEL_STATE, &[&state_digest.0, &nonce.to_le_bytes()])
}

fn state_sig_digest(hstate: &Hash32, i: u64) -> Hash32 {
    hash_parts(Tag::STATE_SIGNATURE, &[&hstate.0, &i.to_le_bytes()])
}

/// `σ := Sign(hstate, i)` (seed 000 §5.1.2).
pub fn state_sign(key: &KeyPair, hstate: &Hash32, i: u64) -> Signature {
    key.sign(&state_sig_digest(hstate, i))
}

/// `Verify(hstate, i, σ)` (seed 000 §5.1.2) against the signer's key.
pub fn state_verify(pk: &PublicKey, hstate: &Hash32, i: u64, sig: &Signature) -> Result<(), CryptoError> {
    verify(pk, &state_sig_digest(hstate, i), sig)
}

/// One signature to check.
#[derive(Clone, Copy, Debug)]
pub struct VerifyItem<'a> {
    pub pk: &'a PublicKey,
    pub digest: Hash32,
    pub sig: &'a Signature,
}

/// Verifies many signatures spread over all cores (rayon's global pool).
/// The result is in input order.
pub fn batch_verify(items: &[VerifyItem<'_>]) -> Vec<Result<(), CryptoError>> {
    items.par_iter().with_min_len(64).map(|it| verify(it.pk, &it.digest, it.sig)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::hash_bytes;

    #[test]
    fn sign_verify_recover() {
        let k = KeyPair::from_seed("alice");
        let d = hash_bytes(Tag::TX, b"hello");
        let s = k.sign(&d);
        assert_eq!(verify(&k.public(), &d, &s), Ok(()));
        let other = hash_bytes(Tag::TX, b"hellO");
        assert_eq!(verify(&k.public(), &other, &s), Err(CryptoError::BadSignature));
        let r = k.sign_recoverable(&d);
        assert_eq!(recover(&d, &r), Ok(k.public()));
        assert_ne!(recover(&other, &r), Ok(k.public()));
        assert_eq!(verify(&PublicKey([9u8; 33]), &d, &s), Err(CryptoError::BadPublicKey));
    }

    #[test]
    fn high_s_is_refused() {
        let k = KeyPair::from_seed("bob");
        let d = hash_bytes(Tag::TX, b"m");
        let s = k.sign(&d);
        // Negate s: n - s gives the malleated twin.
        let mut sig = SecpSig::from_compact(&s.0).unwrap();
        sig.normalize_s();
        let n: [u8; 32] = [
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xBA, 0xAE,
            0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
        ];
        let mut high = s.0;
        let mut borrow = 0i32;
        for i in (0..32).rev() {
            let v = n[i] as i32 - s.0[32 + i] as i32 - borrow;
            borrow = i32::from(v < 0);
            high[32 + i] = v.rem_euclid(256) as u8;
        }
        assert_eq!(verify(&k.public(), &d, &Signature(high)), Err(CryptoError::BadSignature));
    }

    #[test]
    fn state_signature_binds_counter_and_nonce() {
        let k = KeyPair::from_seed("p1");
        let state = (10u64, 20u64);
        let h = state_hash(&state, 7);
        assert_ne!(h, state_hash(&state, 8));
        let s = state_sign(&k, &h, 3);
        assert!(state_verify(&k.public(), &h, 3, &s).is_ok());
        assert!(state_verify(&k.public(), &h, 4, &s).is_err());
        assert!(state_verify(&KeyPair::from_seed("p2").public(), &h, 3, &s).is_err());
    }

    #[test]
    fn batch_verify_reports_each_item_in_order() {
        let keys: Vec<KeyPair> = (0..200).map(|i| KeyPair::from_seed(&i.to_string())).collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public()).collect();
        let digests: Vec<Hash32> = (0..200u32).map(|i| hash_bytes(Tag::TX, &i.to_le_bytes())).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&digests).map(|(k, d)| k.sign(d)).collect();
        sigs[17] = sigs[18];
        let items: Vec<VerifyItem> =
            (0..200).map(|i| VerifyItem { pk: &pks[i], digest: digests[i], sig: &sigs[i] }).collect();
        let res = batch_verify(&items);
        for (i, r) in res.iter().enumerate() {
            assert_eq!(r.is_ok(), i != 17, "item {i}");
        }
    }
}
