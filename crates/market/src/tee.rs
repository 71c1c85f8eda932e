//! Enclaves and the D-TASK key deployment (thesis §6.3.1, §6.4, Eqs 6.8–6.16).
//!
//! [`Enclave`] is what the framework needs from a trusted execution
//! environment: a measurement of the loaded script, its own key pairs
//! (`sks_b/pks_b` for signatures, `skd_b/pke_b` for encryption), an
//! attestation, sealed storage, and the script's key-handling steps
//! (D-TASK) and output proofs (TEAR-DO, [`crate::teardo`]).
//!
//! **[`SoftwareEnclave`] offers no hardware isolation.** It is an ordinary
//! struct in the host's process: its host can read every key it holds,
//! change its code and forge its outputs. It exists so the protocols can run
//! and be tested end to end; its "attestation" is a self-signature that
//! proves nothing about the platform. A hardware backend (SGX, SEV-SNP, TDX,
//! …) implements the same trait; none is provided here.
//!
//! Primitives (the seed uses AES-128 and RSA-2048 from PyCryptodome; these
//! are the maintained equivalents already in the workspace):
//! - signatures: BIP-340 Schnorr over secp256k1 (`secp256k1` crate);
//! - public-key encryption: ECIES = secp256k1 ECDH + SHA-256 key derivation
//!   + ChaCha20-Poly1305 (`chacha20poly1305` crate);
//! - symmetric encryption of iteration outputs: ChaCha20-Poly1305;
//! - threshold signature of the secret-generation primitive: BLS
//!   (`gridledger-threshold`).
//!
//! D-TASK as built here (seed §6.4):
//! 1. *Secret generation* (6.8–6.13): each enclave signs the public value
//!    `v` with its threshold key share (6.8), encrypts the share to every
//!    other enclave (6.9); a receiver decrypts (6.10) and verifies it (6.11),
//!    and with `2f'+1` valid shares combines the unique threshold signature
//!    (6.12) and hashes it into the secret `s` (6.13). The threshold key
//!    shares are provisioned by the threshold crate's trusted dealer (it has
//!    no distributed key generation); the seed is silent on their origin.
//! 2. *Three rounds* (6.14–6.15): round 1 publishes `Sig_b = Sign((h^C,
//!    rv_b), s)`; round 2 reveals `rv_b`, `h^C`, `pks = g^s`, and everyone
//!    keeps the enclaves whose signature verifies under the majority `pks`
//!    and whose `h^C` is the agreed script's; round 3: a leader's
//!    certificate `𝔠`, encrypted to each selected enclave.
//! 3. *Keys* (6.16): `SKS = H(s ‖ 𝔠)` (the seed's "s mod 𝔠"; a hash of both
//!    gives the same property that neither alone determines SKS);
//!    `PKE = G_E(SKS)` a secp256k1 public key for ECIES (prosumers encrypt
//!    requests to it), `PVK = G_V(SKS)` the Schnorr verifying key of the
//!    output proofs, and an AEAD key for the iteration outputs.

use crate::mutants::{self, Mutation};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use gridledger_threshold::{KeyShare, PublicKeySet, SignatureShare};
use rand::RngCore;
use secp256k1::{ecdh::SharedSecret, schnorr, Keypair, PublicKey, SecretKey, XOnlyPublicKey, SECP256K1};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why an enclave refused or a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TeeError {
    #[error("ciphertext does not decrypt (wrong key, tampered or truncated)")]
    Decrypt,
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("share from enclave {0} does not verify")]
    BadShare(usize),
    #[error("only {got} valid shares, need {need}")]
    TooFewShares { got: usize, need: usize },
    #[error("the enclave has no {0} yet")]
    NotReady(&'static str),
    #[error("signature does not verify")]
    BadSignature,
}

/// The attestation trait and the isolation label are shared with CTP-FL
/// (`gridledger_core::enclave`); [`Enclave`] extends [`Attester`].
pub use gridledger_core::enclave::{Attester, Isolation};

/// An enclave's self-description, signed with its `sks_b`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attestation {
    pub index: usize,
    pub isolation: Isolation,
    pub measurement: [u8; 32],
    #[serde(with = "hex33")]
    pub pke: [u8; 33],
    pub pks: [u8; 32],
    pub nonce: [u8; 32],
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

mod hex33 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 33], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}
mod hex64 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

/// Round 1 of the three-round consensus: the signature on `(h^C, rv_b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    pub index: usize,
    pub signature: [u8; 64],
}

/// Round 2: the values that let anyone check round 1 (Eq 6.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reveal {
    pub index: usize,
    pub rv: [u8; 32],
    pub script_hash: [u8; 32],
    /// `pks = g^s` (x-only).
    pub pks: [u8; 32],
}

/// The keys every selected enclave derives (Eq 6.16); public parts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupKeys {
    /// Encryption key for prosumers' requests.
    pub pke: PublicKey,
    /// Verifying key of the output proofs.
    pub pvk: XOnlyPublicKey,
}

pub(crate) fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// A secret key from 32 bytes of hash output (re-hashed in the negligible
/// case that they are not a valid scalar).
fn secret_from(bytes: [u8; 32]) -> SecretKey {
    let mut b = bytes;
    loop {
        if let Ok(k) = SecretKey::from_byte_array(b) {
            return k;
        }
        b = sha(&[b"gridledger/market/rekey", &b]);
    }
}

/// ECIES encryption to `pk` (ephemeral ECDH, SHA-256 KDF, ChaCha20-Poly1305):
/// `epk (33) ‖ ciphertext`.
pub fn ecies_encrypt(pk: &PublicKey, plaintext: &[u8], aad: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let esk = secret_from(seed);
    let epk = PublicKey::from_secret_key(SECP256K1, &esk).serialize();
    let key = sha(&[b"gridledger/market/ecies", &SharedSecret::new(pk, &esk).secret_bytes(), &epk]);
    let ct = aead_seal(&key, 0, plaintext, aad);
    let mut out = epk.to_vec();
    out.extend(ct);
    out
}

/// ECIES decryption with `sk`.
pub fn ecies_decrypt(sk: &SecretKey, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, TeeError> {
    if blob.len() < 33 + 16 {
        return Err(TeeError::Decrypt);
    }
    let epk = PublicKey::from_slice(&blob[..33]).map_err(|_| TeeError::Decrypt)?;
    let key = sha(&[b"gridledger/market/ecies", &SharedSecret::new(&epk, sk).secret_bytes(), &blob[..33]]);
    aead_open(&key, 0, &blob[33..], aad)
}

/// ChaCha20-Poly1305 with a 64-bit message counter as nonce (each counter
/// value is used once per key by construction of the callers).
pub fn aead_seal(key: &[u8; 32], counter: u64, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    // encryption with a valid key and nonce cannot fail
    cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad }).unwrap_or_default()
}

pub fn aead_open(key: &[u8; 32], counter: u64, ciphertext: &[u8], aad: &[u8]) -> Result<Vec<u8>, TeeError> {
    let cipher = ChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    cipher.decrypt(Nonce::from_slice(&nonce), Payload { msg: ciphertext, aad }).map_err(|_| TeeError::Decrypt)
}

/// Schnorr signature of a 32-byte digest (deterministic: no auxiliary randomness).
pub fn schnorr_sign(kp: &Keypair, digest: &[u8; 32]) -> [u8; 64] {
    SECP256K1.sign_schnorr_no_aux_rand(digest, kp).to_byte_array()
}

pub fn schnorr_verify(pk: &XOnlyPublicKey, digest: &[u8; 32], sig: &[u8; 64]) -> Result<(), TeeError> {
    let sig = schnorr::Signature::from_byte_array(*sig);
    SECP256K1.verify_schnorr(&sig, digest, pk).map_err(|_| TeeError::BadSignature)
}

/// A trusted execution environment as the framework uses it: an
/// [`Attester`] (index, isolation, measurement `H(C)` of the loaded script,
/// evidence attestations) with the market's keys and steps.
pub trait Enclave: Attester {
    /// `pke_b`, for messages to this enclave.
    fn pke(&self) -> PublicKey;
    /// `pks_b`, the verifying key of this enclave's own signatures.
    fn pks(&self) -> XOnlyPublicKey;
    /// A signed statement of index, isolation, measurement and keys.
    fn attest(&self, nonce: [u8; 32]) -> Attestation;
    /// Encrypts data so only this enclave can read it back.
    fn seal(&self, data: &[u8]) -> Vec<u8>;
    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, TeeError>;

    // ---- D-TASK (Eqs 6.8–6.16)
    /// Eqs 6.8–6.9: this enclave's share on `v`, encrypted to `recipient`.
    fn share_for(&self, v: &[u8], recipient: &PublicKey, rng: &mut dyn RngCore) -> Vec<u8>;
    /// Eqs 6.10–6.11: decrypts and verifies a share from enclave `from`;
    /// keeps it when valid.
    fn receive_share(&mut self, from: usize, v: &[u8], ciphertext: &[u8]) -> Result<(), TeeError>;
    /// Eqs 6.12–6.13: combines the stored shares into `s`.
    fn derive_secret(&mut self, v: &[u8]) -> Result<(), TeeError>;
    /// Round 1 (Eq 6.14).
    fn commit(&mut self, rng: &mut dyn RngCore) -> Result<Commitment, TeeError>;
    /// Round 2 values.
    fn reveal(&self) -> Result<Reveal, TeeError>;
    /// Round 3, leader: the certificate encrypted to `recipient`.
    fn certificate_for(&mut self, recipient: &PublicKey, rng: &mut dyn RngCore) -> Result<Vec<u8>, TeeError>;
    /// Round 3, everyone: installs the certificate and derives SKS (Eq 6.16).
    fn install_certificate(&mut self, ciphertext: &[u8]) -> Result<GroupKeys, TeeError>;
    /// The public group keys, once derived.
    fn group_keys(&self) -> Option<GroupKeys>;

    // ---- TEAR-DO (Eqs 6.19–6.22)
    /// Decrypts a prosumer's request (ECIES under PKE).
    fn open_request(&self, ciphertext: &[u8]) -> Result<Vec<u8>, TeeError> {
        self.open_request_for(ciphertext, &[])
    }
    /// Decrypts a request encrypted with [`encrypt_request_for`] under
    /// `binding` (see [`request_binding`]); a copy filed by another account,
    /// in another interval or on another chain does not open.
    fn open_request_for(&self, ciphertext: &[u8], binding: &[u8]) -> Result<Vec<u8>, TeeError>;
    /// Eq 6.20: encrypts outputs under the group's AEAD key.
    fn encrypt_outputs(&self, counter: u64, outputs: &[u8]) -> Result<Vec<u8>, TeeError>;
    /// Eq 6.22: decrypts another enclave's outputs.
    fn decrypt_outputs(&self, counter: u64, ciphertext: &[u8]) -> Result<Vec<u8>, TeeError>;
    /// Eq 6.19: signs `digest` (the hash of the computational context) with SKS.
    fn prove(&self, digest: &[u8; 32]) -> Result<[u8; 64], TeeError>;
    /// Signs `digest` with this enclave's own `sks_b` (verified with the
    /// attested `pks_b`): authenticates which node sent a message, which
    /// the group's shared SKS cannot.
    fn sign_as_node(&self, digest: &[u8; 32]) -> [u8; 64];
}

/// A software enclave: runs the script's steps in the host's process.
///
/// **No hardware isolation**: see the module docs. Use it for tests, demos
/// and simulation only.
pub struct SoftwareEnclave {
    index: usize,
    script_hash: [u8; 32],
    sign: Keypair,
    decrypt: SecretKey,
    seal_key: [u8; 32],
    share: KeyShare,
    public_set: PublicKeySet,
    shares: Vec<(usize, SignatureShare)>,
    secret: Option<[u8; 32]>,
    rv: Option<[u8; 32]>,
    certificate: Option<[u8; 32]>,
    sks: Option<[u8; 32]>,
    sks_sign: Option<Keypair>,
    sks_decrypt: Option<SecretKey>,
}

impl SoftwareEnclave {
    /// An enclave loaded with `script`, with fresh key pairs and its
    /// provisioned threshold key share.
    pub fn new(index: usize, script: &[u8], share: KeyShare, public_set: PublicKeySet, rng: &mut dyn RngCore) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let sign = Keypair::from_secret_key(SECP256K1, &secret_from(sha(&[b"sign", &seed])));
        let decrypt = secret_from(sha(&[b"decrypt", &seed]));
        SoftwareEnclave {
            index,
            script_hash: sha(&[b"gridledger/market/script", script]),
            sign,
            decrypt,
            seal_key: sha(&[b"seal", &seed]),
            share,
            public_set,
            shares: Vec::new(),
            secret: None,
            rv: None,
            certificate: None,
            sks: None,
            sks_sign: None,
            sks_decrypt: None,
        }
    }

    fn s_keypair(&self) -> Result<Keypair, TeeError> {
        let s = self.secret.ok_or(TeeError::NotReady("secret s"))?;
        Ok(Keypair::from_secret_key(SECP256K1, &secret_from(sha(&[b"gridledger/market/pks", &s]))))
    }

    fn output_key(&self) -> Result<[u8; 32], TeeError> {
        let sks = self.sks.ok_or(TeeError::NotReady("SKS"))?;
        Ok(sha(&[b"gridledger/market/outputs", &sks]))
    }
}

/// The digest signed in round 1: `(h^C, rv)`.
pub fn commitment_digest(script_hash: &[u8; 32], rv: &[u8; 32]) -> [u8; 32] {
    sha(&[b"gridledger/market/dtask/commit", script_hash, rv])
}

const SHARE_DOMAIN: &[u8] = b"gridledger/market/dtask/share";

impl Attester for SoftwareEnclave {
    fn index(&self) -> usize {
        self.index
    }
    fn isolation(&self) -> Isolation {
        Isolation::None
    }
    fn measurement(&self) -> [u8; 32] {
        self.script_hash
    }
    fn attestation_key(&self) -> XOnlyPublicKey {
        self.pks()
    }
    fn attest_evidence(&self, evidence: &[u8; 32]) -> gridledger_core::enclave::EvidenceAttestation {
        gridledger_core::enclave::sign_evidence(&self.sign, self.index as u32, &self.script_hash, evidence)
    }
}

impl Enclave for SoftwareEnclave {
    fn pke(&self) -> PublicKey {
        PublicKey::from_secret_key(SECP256K1, &self.decrypt)
    }
    fn pks(&self) -> XOnlyPublicKey {
        self.sign.x_only_public_key().0
    }
    fn attest(&self, nonce: [u8; 32]) -> Attestation {
        let pke = self.pke().serialize();
        let pks = self.pks().serialize();
        let digest = sha(&[
            b"gridledger/market/attest",
            &(self.index as u64).to_le_bytes(),
            &self.script_hash,
            &pke,
            &pks,
            &nonce,
        ]);
        Attestation {
            index: self.index,
            isolation: Isolation::None,
            measurement: self.script_hash,
            pke,
            pks,
            nonce,
            signature: schnorr_sign(&self.sign, &digest),
        }
    }
    fn seal(&self, data: &[u8]) -> Vec<u8> {
        aead_seal(&self.seal_key, 0, data, b"seal")
    }
    fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, TeeError> {
        aead_open(&self.seal_key, 0, sealed, b"seal")
    }

    fn share_for(&self, v: &[u8], recipient: &PublicKey, rng: &mut dyn RngCore) -> Vec<u8> {
        let share = self.share.sign_share(SHARE_DOMAIN, v).to_bytes();
        ecies_encrypt(recipient, &share, &(self.index as u64).to_le_bytes(), rng)
    }
    fn receive_share(&mut self, from: usize, v: &[u8], ciphertext: &[u8]) -> Result<(), TeeError> {
        let bytes = ecies_decrypt(&self.decrypt, ciphertext, &(from as u64).to_le_bytes())?;
        let share = SignatureShare::from_bytes(&bytes).map_err(|_| TeeError::Malformed("share"))?;
        self.public_set.verify_share(from, SHARE_DOMAIN, v, &share).map_err(|_| TeeError::BadShare(from))?;
        if !self.shares.iter().any(|(i, _)| *i == from) {
            self.shares.push((from, share));
        }
        Ok(())
    }
    fn derive_secret(&mut self, v: &[u8]) -> Result<(), TeeError> {
        let own = self.share.sign_share(SHARE_DOMAIN, v);
        if !self.shares.iter().any(|(i, _)| *i == self.index) {
            self.shares.push((self.index, own));
        }
        let need = self.public_set.threshold();
        if self.shares.len() < need {
            return Err(TeeError::TooFewShares { got: self.shares.len(), need });
        }
        let ts = self.public_set.combine(&self.shares).map_err(|_| TeeError::BadShare(self.index))?;
        self.public_set.verify(SHARE_DOMAIN, v, &ts).map_err(|_| TeeError::BadSignature)?;
        self.secret = Some(sha(&[b"gridledger/market/dtask/s", &ts.to_bytes()]));
        Ok(())
    }
    fn commit(&mut self, rng: &mut dyn RngCore) -> Result<Commitment, TeeError> {
        let kp = self.s_keypair()?;
        let mut rv = [0u8; 32];
        rng.fill_bytes(&mut rv);
        self.rv = Some(rv);
        Ok(Commitment { index: self.index, signature: schnorr_sign(&kp, &commitment_digest(&self.script_hash, &rv)) })
    }
    fn reveal(&self) -> Result<Reveal, TeeError> {
        let kp = self.s_keypair()?;
        let rv = self.rv.ok_or(TeeError::NotReady("round-1 commitment"))?;
        Ok(Reveal { index: self.index, rv, script_hash: self.script_hash, pks: kp.x_only_public_key().0.serialize() })
    }
    fn certificate_for(&mut self, recipient: &PublicKey, rng: &mut dyn RngCore) -> Result<Vec<u8>, TeeError> {
        self.secret.ok_or(TeeError::NotReady("secret s"))?;
        let cert = match self.certificate {
            Some(c) => c,
            None => {
                let mut c = [0u8; 32];
                rng.fill_bytes(&mut c);
                self.certificate = Some(c);
                c
            }
        };
        Ok(ecies_encrypt(recipient, &cert, b"gridledger/market/dtask/certificate", rng))
    }
    fn install_certificate(&mut self, ciphertext: &[u8]) -> Result<GroupKeys, TeeError> {
        let s = self.secret.ok_or(TeeError::NotReady("secret s"))?;
        let cert = ecies_decrypt(&self.decrypt, ciphertext, b"gridledger/market/dtask/certificate")?;
        let cert: [u8; 32] = cert.try_into().map_err(|_| TeeError::Malformed("certificate"))?;
        let sks = sha(&[b"gridledger/market/dtask/SKS", &s, &cert]);
        let sign = Keypair::from_secret_key(SECP256K1, &secret_from(sha(&[b"G_V", &sks])));
        let dec = secret_from(sha(&[b"G_E", &sks]));
        self.certificate = Some(cert);
        self.sks = Some(sks);
        self.sks_sign = Some(sign);
        self.sks_decrypt = Some(dec);
        self.group_keys().ok_or(TeeError::NotReady("SKS"))
    }
    fn group_keys(&self) -> Option<GroupKeys> {
        Some(GroupKeys {
            pke: PublicKey::from_secret_key(SECP256K1, self.sks_decrypt.as_ref()?),
            pvk: self.sks_sign?.x_only_public_key().0,
        })
    }

    fn open_request_for(&self, ciphertext: &[u8], binding: &[u8]) -> Result<Vec<u8>, TeeError> {
        let sk = self.sks_decrypt.as_ref().ok_or(TeeError::NotReady("SKS"))?;
        ecies_decrypt(sk, ciphertext, &request_aad(binding))
    }
    fn encrypt_outputs(&self, counter: u64, outputs: &[u8]) -> Result<Vec<u8>, TeeError> {
        Ok(aead_seal(&self.output_key()?, counter, outputs, b"gridledger/market/outputs"))
    }
    fn decrypt_outputs(&self, counter: u64, ciphertext: &[u8]) -> Result<Vec<u8>, TeeError> {
        aead_open(&self.output_key()?, counter, ciphertext, b"gridledger/market/outputs")
    }
    fn sign_as_node(&self, digest: &[u8; 32]) -> [u8; 64] {
        schnorr_sign(&self.sign, &sha(&[b"gridledger/market/node-message", digest]))
    }
    fn prove(&self, digest: &[u8; 32]) -> Result<[u8; 64], TeeError> {
        let kp = self.sks_sign.as_ref().ok_or(TeeError::NotReady("SKS"))?;
        Ok(schnorr_sign(kp, digest))
    }
}

/// Encrypts a prosumer's request to the group's PKE, bound to nothing
/// (see [`encrypt_request_for`], which the framework uses).
pub fn encrypt_request(keys: &GroupKeys, request: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    encrypt_request_for(keys, request, &[], rng)
}

/// Encrypts a prosumer's request to the group's PKE with `binding` (see
/// [`request_binding`]) as the ECIES associated data.
pub fn encrypt_request_for(keys: &GroupKeys, request: &[u8], binding: &[u8], rng: &mut dyn RngCore) -> Vec<u8> {
    ecies_encrypt(&keys.pke, request, &request_aad(binding), rng)
}

/// What a request ciphertext is bound to: the chain, the clearing interval
/// and the submitting account.
pub fn request_binding(chain_id: u32, interval: u64, submitter: &[u8]) -> Vec<u8> {
    let mut b = chain_id.to_le_bytes().to_vec();
    b.extend(interval.to_le_bytes());
    b.extend(submitter);
    b
}

fn request_aad(binding: &[u8]) -> Vec<u8> {
    let mut aad = b"gridledger/market/request".to_vec();
    if !binding.is_empty() {
        aad.push(0);
        aad.extend(binding);
    }
    aad
}

/// Eq 6.15: does round 1's signature verify under the revealed values?
pub fn verify_commitment(c: &Commitment, r: &Reveal) -> bool {
    let Ok(pk) = XOnlyPublicKey::from_byte_array(r.pks) else { return false };
    c.index == r.index && schnorr_verify(&pk, &commitment_digest(&r.script_hash, &r.rv), &c.signature).is_ok()
}

/// What D-TASK selected.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Indices of the selected enclaves (the `B` TEEs).
    pub selected: Vec<usize>,
    /// Candidates eliminated, with the reason.
    pub eliminated: Vec<(usize, String)>,
    pub keys: GroupKeys,
}

/// How a Byzantine candidate misbehaves during D-TASK (for simulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupFault {
    /// Sends no shares and no round-1 message.
    Silent,
    /// Sends garbage instead of its shares.
    GarbageShares,
    /// Deploys a different script (its `h^C` differs).
    WrongScript,
}

/// Runs D-TASK over `enclaves` (B' = 3f'+1 candidates; `faults[i]` for
/// Byzantine hosts), the public value `v`, and the agreed script hash.
/// Message passing is in-process; Δ-synchrony is modelled by "a message is
/// either delivered in the round or not at all".
pub fn run_dtask(
    enclaves: &mut [SoftwareEnclave],
    faults: &[Option<SetupFault>],
    v: &[u8],
    script_hash: [u8; 32],
    rng: &mut dyn RngCore,
) -> Result<Deployment, TeeError> {
    let n = enclaves.len();
    if n == 0 {
        return Err(TeeError::Malformed("enclave set (no enclaves)"));
    }
    if faults.len() != n {
        return Err(TeeError::Malformed("fault list (one entry per enclave)"));
    }
    let pkes: Vec<PublicKey> = enclaves.iter().map(|e| e.pke()).collect();
    // secret generation: all-to-all encrypted shares
    let mut inbox: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); n];
    for a in 0..n {
        for (b, pke) in pkes.iter().enumerate() {
            if a == b {
                continue;
            }
            match faults[a] {
                Some(SetupFault::Silent) => {}
                Some(SetupFault::GarbageShares) => {
                    let mut junk = vec![0u8; 48];
                    rng.fill_bytes(&mut junk);
                    inbox[b].push((a, ecies_encrypt(pke, &junk, &(a as u64).to_le_bytes(), rng)));
                }
                _ => inbox[b].push((a, enclaves[a].share_for(v, pke, rng))),
            }
        }
    }
    for (b, msgs) in inbox.into_iter().enumerate() {
        for (a, ct) in msgs {
            // invalid shares are dropped (Eq 6.11 outputs 0)
            let _ = enclaves[b].receive_share(a, v, &ct);
        }
    }
    let mut eliminated = Vec::new();
    let mut commits = Vec::new();
    for (b, e) in enclaves.iter_mut().enumerate() {
        if faults[b] == Some(SetupFault::Silent) {
            eliminated.push((b, "silent in round 1".to_string()));
            continue;
        }
        match e.derive_secret(v).and_then(|_| e.commit(rng)) {
            Ok(c) => commits.push(c),
            Err(err) => eliminated.push((b, format!("no secret: {err}"))),
        }
    }
    // round 2: reveals; the majority pks is the honest one
    let reveals: Vec<Reveal> = commits
        .iter()
        .filter_map(|c| {
            let mut r = enclaves[c.index].reveal().ok()?;
            if faults[c.index] == Some(SetupFault::WrongScript) {
                r.script_hash = sha(&[b"some other script"]);
            }
            Some(r)
        })
        .collect();
    let mut counts: Vec<([u8; 32], usize)> = Vec::new();
    for r in &reveals {
        match counts.iter_mut().find(|(k, _)| *k == r.pks) {
            Some((_, c)) => *c += 1,
            None => counts.push((r.pks, 1)),
        }
    }
    let majority = counts.iter().max_by_key(|(_, c)| *c).map(|(k, _)| *k);
    let mut selected = Vec::new();
    for (c, r) in commits.iter().zip(&reveals) {
        if Some(r.pks) != majority {
            eliminated.push((c.index, "pks differs from the majority's".into()));
        } else if r.script_hash != script_hash && !mutants::active(Mutation::DTaskUnchecked) {
            eliminated.push((c.index, "deployed another script".into()));
        } else if !verify_commitment(c, r) && !mutants::active(Mutation::DTaskUnchecked) {
            eliminated.push((c.index, "round-1 signature does not verify (Eq 6.15)".into()));
        } else {
            selected.push(c.index);
        }
    }
    let need = 2 * ((n.saturating_sub(1)) / 3) + 1;
    if selected.len() < need {
        return Err(TeeError::TooFewShares { got: selected.len(), need });
    }
    // round 3: the first selected enclave leads; certificate to every selected one
    let leader = selected[0];
    let mut keys = None;
    for &b in &selected {
        let ct = enclaves[leader].certificate_for(&pkes[b], rng)?;
        let k = enclaves[b].install_certificate(&ct)?;
        if keys.is_some_and(|prev| prev != k) {
            return Err(TeeError::Malformed("group keys differ between enclaves"));
        }
        keys = Some(k);
    }
    eliminated.sort();
    Ok(Deployment { selected, eliminated, keys: keys.ok_or(TeeError::NotReady("SKS"))? })
}
