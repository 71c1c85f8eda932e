//! Ed25519 signatures for clients' transactions, verified in batches.
//!
//! The leaderless BFT's replicas check every client transaction's signature
//! (thesis §4.3.3, π^τ's Rule-1), and on a few co-located cores those checks
//! set the latency. Ed25519 verifies in batches: one multi-scalar
//! multiplication for a whole batch, about 2–3× cheaper per signature than a
//! secp256k1 ECDSA check, which has no batch form.
//!
//! The crate is `ed25519-zebra` (ZIP-215 validation rules): its batch
//! verdict and its single-signature verdict agree on every input (cofactored
//! equations, no rejected encodings that the batch would accept), so every
//! replica reaches the same verdict on a transaction whichever batch it was
//! checked in. A cofactorless batch (ed25519-dalek's `verify_batch`) can pass
//! a crafted signature that the single check refuses, depending on the other
//! signatures in the batch — replicas would disagree about which ordered
//! transactions are valid.
//!
//! [`verify_batch`] checks chunks of [`CHUNK`] signatures in parallel; a
//! chunk that fails is checked again one signature at a time, only to find
//! which ones are bad, so one bad signature costs its chunk, not the batch.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_zebra::{batch, SigningKey, VerificationKey, VerificationKeyBytes};
use rayon::prelude::*;

use crate::codec::{hash_parts, Tag};
use crate::crypto::CryptoError;

/// Signatures per batch equation. Larger batches cost less per signature
/// (measured here: 17 µs at 256, 16 µs at 1,000 and 4,000, against 36 µs for
/// one secp256k1 check), but a bad signature makes its whole chunk be
/// checked singly (≈ 37 µs each).
pub const CHUNK: usize = 512;

/// An Ed25519 public key (32 bytes, as encoded; checked when verifying).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct EdPublicKey(pub [u8; 32]);

/// An Ed25519 signature (64 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EdSignature(pub [u8; 64]);

/// An Ed25519 signing key with its public key.
#[derive(Clone)]
pub struct EdKeyPair {
    sk: SigningKey,
    pk: EdPublicKey,
}

impl std::fmt::Debug for EdKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdKeyPair({})", hex::encode(self.pk.0))
    }
}

impl EdKeyPair {
    /// The key whose seed is `secret`.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        let sk = SigningKey::from(secret);
        let pk = EdPublicKey(VerificationKeyBytes::from(VerificationKey::from(&sk)).into());
        Self { sk, pk }
    }

    /// A deterministic key for tests, demos, benchmarks and simulations:
    /// `H(label)` as the seed.
    pub fn from_seed(label: &str) -> Self {
        Self::from_secret_bytes(hash_parts(Tag("gridledger/dev-ed25519-key/v1"), &[label.as_bytes()]).0)
    }

    pub fn public(&self) -> EdPublicKey {
        self.pk
    }

    /// Signs `msg` (callers sign a tagged digest).
    pub fn sign(&self, msg: &[u8]) -> EdSignature {
        EdSignature(self.sk.sign(msg).to_bytes())
    }
}

/// Checks one signature.
pub fn verify(pk: &EdPublicKey, msg: &[u8], sig: &EdSignature) -> Result<(), CryptoError> {
    let vk = VerificationKey::try_from(pk.0).map_err(|_| CryptoError::BadPublicKey)?;
    vk.verify(&ed25519_zebra::Signature::from(sig.0), msg).map_err(|_| CryptoError::BadSignature)
}

/// One signature to check in a batch.
#[derive(Clone, Copy, Debug)]
pub struct EdItem<'a> {
    pub pk: &'a EdPublicKey,
    pub msg: &'a [u8],
    pub sig: &'a EdSignature,
}

/// The verdicts of [`verify_batch`], in input order, and what they cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchVerdicts {
    /// `true` where the signature holds.
    pub ok: Vec<bool>,
    /// Batch equations evaluated (one per chunk).
    pub batches: u64,
    /// Signatures checked singly because their chunk's batch failed.
    pub single_checks: u64,
}

/// Verifies many signatures: chunks of [`CHUNK`] as one batch equation
/// each, spread over rayon's global pool; a chunk whose batch fails is
/// checked one signature at a time to find the bad ones (the others keep
/// their `true`). Each verdict equals [`verify`]'s on the same input.
pub fn verify_batch(items: &[EdItem<'_>]) -> BatchVerdicts {
    let chunks: Vec<(Vec<bool>, u64)> = items.par_chunks(CHUNK).map(check_chunk).collect();
    let mut out = BatchVerdicts { ok: Vec::with_capacity(items.len()), batches: chunks.len() as u64, single_checks: 0 };
    for (ok, singles) in chunks {
        out.ok.extend(ok);
        out.single_checks += singles;
    }
    out
}

fn check_chunk(chunk: &[EdItem<'_>]) -> (Vec<bool>, u64) {
    let mut v = batch::Verifier::new();
    for it in chunk {
        v.queue((VerificationKeyBytes::from(it.pk.0), ed25519_zebra::Signature::from(it.sig.0), it.msg));
    }
    // The batch's random coefficients only make a forgery fail the equation
    // with overwhelming probability; they never turn a valid batch invalid.
    if v.verify(rand_core06::OsRng).is_ok() {
        return (vec![true; chunk.len()], 0);
    }
    (chunk.iter().map(|it| verify(it.pk, it.msg, it.sig).is_ok()).collect(), chunk.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(n: usize) -> (Vec<EdPublicKey>, Vec<Vec<u8>>, Vec<EdSignature>) {
        let keys: Vec<EdKeyPair> = (0..n).map(|i| EdKeyPair::from_seed(&format!("batch-{}", i % 37))).collect();
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| format!("message {i}").into_bytes()).collect();
        let sigs = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        (keys.iter().map(EdKeyPair::public).collect(), msgs, sigs)
    }

    fn items<'a>(pks: &'a [EdPublicKey], msgs: &'a [Vec<u8>], sigs: &'a [EdSignature]) -> Vec<EdItem<'a>> {
        pks.iter().zip(msgs).zip(sigs).map(|((pk, msg), sig)| EdItem { pk, msg, sig }).collect()
    }

    #[test]
    fn sign_verify_and_tampering() {
        let k = EdKeyPair::from_seed("alice");
        let s = k.sign(b"hello");
        assert_eq!(verify(&k.public(), b"hello", &s), Ok(()));
        assert_eq!(verify(&k.public(), b"hellO", &s), Err(CryptoError::BadSignature));
        assert_eq!(verify(&EdKeyPair::from_seed("bob").public(), b"hello", &s), Err(CryptoError::BadSignature));
        assert_eq!(EdKeyPair::from_seed("alice").public(), k.public(), "seeded keys are deterministic");
    }

    #[test]
    fn a_clean_batch_passes_without_single_checks() {
        let (pks, msgs, sigs) = signed(1_000);
        let v = verify_batch(&items(&pks, &msgs, &sigs));
        assert!(v.ok.iter().all(|&b| b));
        assert_eq!(v.ok.len(), 1_000);
        assert_eq!(v.batches, 1_000usize.div_ceil(CHUNK) as u64);
        assert_eq!(v.single_checks, 0);
    }

    #[test]
    fn one_bad_signature_in_a_thousand_is_found_and_refused_alone() {
        let (pks, msgs, mut sigs) = signed(1_000);
        let bad = 733;
        sigs[bad].0[5] ^= 1;
        let v = verify_batch(&items(&pks, &msgs, &sigs));
        let refused: Vec<usize> = v.ok.iter().enumerate().filter(|(_, &ok)| !ok).map(|(i, _)| i).collect();
        assert_eq!(refused, vec![bad]);
        // Only the failing chunk was checked singly.
        assert_eq!(v.single_checks, (1_000 - CHUNK) as u64);
    }

    #[test]
    fn batch_verdicts_equal_single_verdicts_on_odd_inputs() {
        let (mut pks, mut msgs, mut sigs) = signed(40);
        msgs[3].push(0); // tampered message
        pks[7] = EdKeyPair::from_seed("stranger").public(); // wrong key
        pks[11] = EdPublicKey([0xff; 32]); // not a curve point
        pks[13] = EdPublicKey([0; 32]); // small-order key
        sigs[17] = EdSignature([0; 64]); // zero signature
        sigs[19].0[63] = 0xff; // s not reduced
        let its = items(&pks, &msgs, &sigs);
        let v = verify_batch(&its);
        let single: Vec<bool> = its.iter().map(|it| verify(it.pk, it.msg, it.sig).is_ok()).collect();
        assert_eq!(v.ok, single);
        assert!(!v.ok[3] && !v.ok[7] && !v.ok[11] && !v.ok[17] && !v.ok[19]);
        assert!(v.ok[0] && v.ok[39]);
    }

    #[test]
    fn empty_batch_is_empty() {
        assert_eq!(verify_batch(&[]), BatchVerdicts::default());
    }
}
