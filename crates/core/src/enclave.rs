//! Remote attestation as the applications use it (thesis Eqs 7.14–7.15;
//! the enclaves of Ch.6 and Ch.7 share this trait).
//!
//! [`Attester`] is the part of a trusted execution environment that every
//! protocol needs: who the enclave is, what isolation it really offers,
//! the measurement of the code it runs, and `RA = RAG(E, GK)` — a signed
//! statement that this enclave, running that code, produced evidence `E`
//! (a 32-byte digest of its output). [`verify_evidence`] is `RAV(RA, VK)`.
//! The market's enclave (`gridledger_market::tee::Enclave`) extends it with
//! D-TASK and TEAR-DO; CTP-FL uses it for pre-vectors, deter-vectors and the
//! leader's aggregate.
//!
//! **[`SoftwareAttester`] offers no hardware isolation** ([`Isolation::None`]):
//! it is an ordinary struct in its host's process, whose host can read its
//! key and sign anything. Its attestations prove only that the holder of the
//! key signed; they exist so the protocols run and are tested end to end. A
//! hardware backend (SGX, SEV-SNP, TDX, …) implements the same trait and
//! reports [`Isolation::Hardware`]; none is provided here.

use crate::codec::{hash_bytes, Tag};
use secp256k1::{schnorr, Keypair, SecretKey, XOnlyPublicKey, SECP256K1};
use serde::Serialize;

/// Domain tag of the digest an attestation signs.
pub const ATTESTATION: Tag = Tag("gridledger/attestation/v1");

/// What isolation a backend offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Isolation {
    /// None: the host sees and controls everything (software enclaves).
    None,
    /// A hardware TEE (name of the technology).
    Hardware(String),
}

/// `RA`: enclave `index`, running `measurement`, vouches for `evidence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceAttestation {
    pub index: u32,
    pub measurement: [u8; 32],
    pub evidence: [u8; 32],
    pub signature: [u8; 64],
}

/// Why an attestation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    #[error("attestation from enclave {0} runs an unexpected measurement")]
    WrongMeasurement(u32),
    #[error("attestation from enclave {0} vouches for other evidence")]
    WrongEvidence(u32),
    #[error("attestation from enclave {0} is not signed by its key")]
    BadSignature(u32),
}

/// A trusted execution environment's identity and `RAG` (Eq 7.14).
pub trait Attester {
    /// This enclave's index among its peers.
    fn index(&self) -> usize;
    /// The isolation the backend really offers.
    fn isolation(&self) -> Isolation;
    /// `H(C)` of the loaded code.
    fn measurement(&self) -> [u8; 32];
    /// `VK`: the key its attestations verify under.
    fn attestation_key(&self) -> XOnlyPublicKey;
    /// `RA = RAG(E, GK)` for evidence digest `E`.
    fn attest_evidence(&self, evidence: &[u8; 32]) -> EvidenceAttestation;
}

/// The digest an attestation signs.
pub fn attestation_digest(index: u32, measurement: &[u8; 32], evidence: &[u8; 32]) -> [u8; 32] {
    let mut b = Vec::with_capacity(68);
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(measurement);
    b.extend_from_slice(evidence);
    hash_bytes(ATTESTATION, &b).0
}

/// Signs an attestation with `key` (for [`Attester`] implementations).
pub fn sign_evidence(key: &Keypair, index: u32, measurement: &[u8; 32], evidence: &[u8; 32]) -> EvidenceAttestation {
    let digest = attestation_digest(index, measurement, evidence);
    let signature = SECP256K1.sign_schnorr_no_aux_rand(&digest, key).to_byte_array();
    EvidenceAttestation { index, measurement: *measurement, evidence: *evidence, signature }
}

/// `RAV(RA, VK)` (Eq 7.15): `ra` is signed under `key`, runs `measurement`
/// and vouches for `evidence`.
pub fn verify_evidence(
    ra: &EvidenceAttestation,
    key: &XOnlyPublicKey,
    measurement: &[u8; 32],
    evidence: &[u8; 32],
) -> Result<(), AttestationError> {
    if &ra.measurement != measurement {
        return Err(AttestationError::WrongMeasurement(ra.index));
    }
    if &ra.evidence != evidence {
        return Err(AttestationError::WrongEvidence(ra.index));
    }
    let digest = attestation_digest(ra.index, &ra.measurement, &ra.evidence);
    let sig = schnorr::Signature::from_byte_array(ra.signature);
    SECP256K1.verify_schnorr(&sig, &digest, key).map_err(|_| AttestationError::BadSignature(ra.index))
}

/// An attester in the host's process. **No hardware isolation**: see the
/// module docs; for tests, demos and simulation only.
#[derive(Clone, Debug)]
pub struct SoftwareAttester {
    index: usize,
    measurement: [u8; 32],
    key: Keypair,
}

impl SoftwareAttester {
    /// Enclave `index` running `code`, with a key derived from `seed`.
    pub fn new(index: usize, code: &[u8], seed: [u8; 32]) -> Self {
        let measurement = hash_bytes(Tag("gridledger/enclave-code/v1"), code).0;
        let mut b = seed;
        let secret = loop {
            if let Ok(k) = SecretKey::from_byte_array(b) {
                break k;
            }
            b = hash_bytes(Tag("gridledger/enclave-rekey/v1"), &b).0;
        };
        Self { index, measurement, key: Keypair::from_secret_key(SECP256K1, &secret) }
    }
}

impl Attester for SoftwareAttester {
    fn index(&self) -> usize {
        self.index
    }
    fn isolation(&self) -> Isolation {
        Isolation::None
    }
    fn measurement(&self) -> [u8; 32] {
        self.measurement
    }
    fn attestation_key(&self) -> XOnlyPublicKey {
        self.key.x_only_public_key().0
    }
    fn attest_evidence(&self, evidence: &[u8; 32]) -> EvidenceAttestation {
        sign_evidence(&self.key, self.index as u32, &self.measurement, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_verify_and_refuse_what_they_should() {
        let a = SoftwareAttester::new(3, b"fl-script", [7; 32]);
        let b = SoftwareAttester::new(4, b"fl-script", [8; 32]);
        assert_eq!(a.isolation(), Isolation::None);
        assert_eq!(a.measurement(), b.measurement());
        let e = [1u8; 32];
        let ra = a.attest_evidence(&e);
        verify_evidence(&ra, &a.attestation_key(), &a.measurement(), &e).unwrap();
        assert_eq!(
            verify_evidence(&ra, &b.attestation_key(), &a.measurement(), &e),
            Err(AttestationError::BadSignature(3))
        );
        assert_eq!(
            verify_evidence(&ra, &a.attestation_key(), &a.measurement(), &[2; 32]),
            Err(AttestationError::WrongEvidence(3))
        );
        let other = SoftwareAttester::new(3, b"other-script", [7; 32]);
        assert_eq!(
            verify_evidence(&other.attest_evidence(&e), &other.attestation_key(), &a.measurement(), &e),
            Err(AttestationError::WrongMeasurement(3))
        );
        let mut forged = ra;
        forged.index = 4;
        assert_eq!(
            verify_evidence(&forged, &a.attestation_key(), &a.measurement(), &e),
            Err(AttestationError::BadSignature(4))
        );
    }
}
