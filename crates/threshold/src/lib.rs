//! BLS12-381 threshold signatures and a threshold common coin.
//!
//! The leaderless BFT of thesis Ch.4 (§4.2.1) needs two things from threshold
//! cryptography: certificates that `t` of `n` replicas signed a statement,
//! compressed into one constant-size signature, and a *common coin* whose
//! value nobody learns before `t` replicas have released their share. A
//! unique threshold signature gives both: any `t` valid shares interpolate to
//! the same signature, so its hash is the same coin at every replica.
//!
//! Scheme (Boldyreva's threshold BLS, "min-sig" placement):
//! - the secret `s = p(0)` of a random polynomial `p` of degree `t − 1` over
//!   the scalar field; replica `i` (0-based) holds `s_i = p(i + 1)`;
//! - group key `g2^s`, share keys `g2^{s_i}` (G2, 96 bytes compressed);
//! - a share on `(domain, msg)` is `H(domain, msg)^{s_i}` in G1 (48 bytes),
//!   `H` the RFC 9380 hash-to-curve (SSWU, SHA-256) with our own DST and the
//!   domain length-prefixed in front of the message, so a share for one
//!   domain is never a share for another;
//! - `combine` interpolates `t` shares in the exponent (Lagrange at 0, one
//!   multi-scalar multiplication; [`SignerSet`] keeps the coefficients of a
//!   fixed signer set); `verify` is one pairing-product check with the
//!   group key's Miller-loop lines computed once per key set;
//! - shares of unknown validity are checked together
//!   ([`PublicKeySet::verify_shares`]: one pairing check for the batch) or
//!   not at all when their combination verifies
//!   ([`PublicKeySet::combine_verified`]).
//!
//! Signatures sit in G1 because every replica verifies and combines many of
//! them while keys are fixed: G1 arithmetic is about 3× cheaper than G2.
//!
//! Curve arithmetic comes from `blstrs` (blst's assembly behind the
//! `ff`/`group`/`pairing` traits). Measured on the 2-core development
//! machine before choosing: `blstrs` 0.7 builds in ≈75 s from clean on one
//! job (most of it `ff_derive`/`num-bigint`, shared with other users of
//! `ff`), and combines + verifies 21 of 31 shares in ≈2.8–5.5 ms depending
//! on load; the pure-Rust `bls12_381` builds faster but has no
//! multi-scalar multiplication and pairs ≈2× slower. blst's own
//! multi-scalar multiplication runs fewer than 32 points as one scalar
//! multiplication per point on its thread pool, so the few-point sums here
//! use a serial Straus method over blst's group operations instead
//! (`msm_public`; public inputs only).
//!
//! **Key generation is a trusted dealer** ([`deal`]): whoever runs it learns
//! the secret and must erase it. A distributed key generation is left out;
//! the rest of the API does not depend on how the shares were made.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};

use blstrs::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Gt, Scalar};
use borsh::{BorshDeserialize, BorshSerialize};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// Hash-to-curve domain separation tag (RFC 9380 §3.1); the caller's
/// `domain` is bound inside the message on top of it.
const DST: &[u8] = b"GRIDLEDGER-THRESHOLD-V1_BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// Prefix of the coin hash, so the coin is not just "the hash of a signature".
const COIN_TAG: &[u8] = b"gridledger/threshold/coin/v1";
/// Largest committee the encodings accept (bounds decoding work).
pub const MAX_MEMBERS: usize = 1024;

/// Compressed sizes.
pub const SIGNATURE_BYTES: usize = 48;
pub const PUBLIC_KEY_BYTES: usize = 96;
pub const SECRET_BYTES: usize = 32;

/// Everything this crate refuses, with what it refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    #[error("invalid threshold: {t} of {n} (need 1 <= t <= n <= {max})", max = MAX_MEMBERS)]
    InvalidThreshold { n: usize, t: usize },
    #[error("too few signature shares: {got}, need {need}")]
    TooFewShares { got: usize, need: usize },
    #[error("signature share from index {0} given twice")]
    DuplicateShare(usize),
    #[error("index {index} is not a member of a {n}-member key set")]
    NotAMember { index: usize, n: usize },
    #[error("signature share from index {0} does not verify")]
    InvalidShare(usize),
    #[error("signature does not verify")]
    InvalidSignature,
    #[error("bad encoding of {what}: {why}")]
    BadEncoding { what: &'static str, why: &'static str },
    #[error("the key set's share keys do not lie on one polynomial of degree t - 1 through the group key")]
    InconsistentKeySet,
}

fn bad(what: &'static str, why: &'static str) -> ThresholdError {
    ThresholdError::BadEncoding { what, why }
}

fn to_io(e: ThresholdError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Uniform scalar by rejection sampling, as `ff::Field::random` does, but
/// from the workspace's `rand` version.
pub fn random_scalar<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let mut raw = [0u64; 4];
        for limb in raw.iter_mut() {
            *limb = rng.next_u64();
        }
        // The modulus has 255 bits.
        raw[3] &= u64::MAX >> 1;
        if let Some(s) = Option::<Scalar>::from(Scalar::from_u64s_le(&raw)) {
            return s;
        }
    }
}

fn hash_point(domain: &[u8], msg: &[u8]) -> G1Projective {
    let mut input = Vec::with_capacity(8 + domain.len() + msg.len());
    input.extend_from_slice(&(domain.len() as u64).to_le_bytes());
    input.extend_from_slice(domain);
    input.extend_from_slice(msg);
    G1Projective::hash_to_curve(&input, DST, &[])
}

/// The G2 generator's Miller-loop lines, computed once per process.
fn g2_generator_prepared() -> &'static G2Prepared {
    static LINES: OnceLock<G2Prepared> = OnceLock::new();
    LINES.get_or_init(|| G2Prepared::from(G2Affine::generator()))
}

/// `e(sig, g2) == e(H(m), pk)` as one multi-Miller loop, with `−pk`'s lines
/// already computed.
fn pairing_check_prepared(sig: &G1Affine, hashed: &G1Affine, neg_pk: &G2Prepared) -> bool {
    if bool::from(sig.is_identity()) {
        return false;
    }
    Bls12::multi_miller_loop(&[(sig, g2_generator_prepared()), (hashed, neg_pk)]).final_exponentiation()
        == Gt::identity()
}

/// `e(sig, g2) == e(H(m), pk)`, as one multi-Miller loop.
fn pairing_check(sig: &G1Affine, hashed: &G1Affine, pk: &G2Affine) -> bool {
    pairing_check_prepared(sig, hashed, &G2Prepared::from(-*pk))
}

/// Domain of the weights of a batch share check.
const BATCH_TAG: &[u8] = b"gridledger/threshold/batch-weights/v1";

/// Weights of a batch share check: 128-bit, non-zero, derived by hashing
/// the message and every (index, share) of the batch, so whoever chose the
/// shares learns the weights only after fixing them (the random-oracle
/// form of the small-exponent batch test; a batch with an invalid share
/// passes with probability about 2^-128).
fn batch_weights(domain: &[u8], msg: &[u8], shares: &[(usize, SignatureShare)]) -> Vec<Scalar> {
    let mut h = Sha256::new();
    h.update(BATCH_TAG);
    h.update((domain.len() as u64).to_le_bytes());
    h.update(domain);
    h.update((msg.len() as u64).to_le_bytes());
    h.update(msg);
    for (i, s) in shares {
        h.update((*i as u64).to_le_bytes());
        h.update(s.to_bytes());
    }
    let seed = h.finalize();
    (0..shares.len() as u64)
        .map(|j| {
            let d = Sha256::new().chain_update(seed).chain_update(j.to_le_bytes()).finalize();
            let mut lo = [0u8; 8];
            let mut hi = [0u8; 8];
            lo.copy_from_slice(&d[..8]);
            hi.copy_from_slice(&d[8..16]);
            Scalar::from_u64s_le(&[u64::from_le_bytes(lo) | 1, u64::from_le_bytes(hi), 0, 0]).unwrap_or(Scalar::ONE)
        })
        .collect()
}

/// `Σ k_j · P_j` for **public** points and scalars of at most `bits` bits,
/// on the calling thread: Straus's interleaved method, 4-bit windows over
/// tables of each point's affine multiples (mixed additions).
///
/// Why not `multi_exp`: blst's multi-scalar multiplication runs fewer than
/// 32 points as one full scalar multiplication per point spread over its
/// thread pool — measured here about 3× the CPU of this for 21 points, and
/// on a loaded machine every call waits for the pool's threads to be
/// scheduled. The group operations are blst's; only their order is ours,
/// and the tests compare it with `multi_exp`. Not constant time: never pass
/// a secret scalar (shares, share keys, Lagrange coefficients and batch
/// weights are all public).
fn msm_public<G>(points: &[G], scalars: &[Scalar], bits: usize) -> G
where
    G: Curve + Group<Scalar = Scalar>,
    G::AffineRepr: Copy,
{
    const W: usize = 4;
    const T: usize = (1 << W) - 1;
    let n = points.len().min(scalars.len());
    if n == 0 {
        return G::identity();
    }
    let mut multiples = Vec::with_capacity(n * T);
    for p in &points[..n] {
        let mut m = *p;
        multiples.push(m);
        for _ in 1..T {
            m += p;
            multiples.push(m);
        }
    }
    let mut table = vec![points[0].to_affine(); n * T];
    G::batch_normalize(&multiples, &mut table);
    let digits: Vec<[u8; 32]> = scalars[..n].iter().map(|s| s.to_bytes_le()).collect();
    let mut acc = G::identity();
    for w in (0..bits.min(256).div_ceil(W)).rev() {
        for _ in 0..W {
            acc = acc.double();
        }
        for (j, d) in digits.iter().enumerate() {
            let byte = d[w / 2];
            let nibble = if w % 2 == 0 { byte & 0x0f } else { byte >> 4 } as usize;
            if nibble != 0 {
                acc += &table[j * T + nibble - 1];
            }
        }
    }
    acc
}

/// `Σ λ_j · share_j` (one multi-scalar multiplication in G1).
fn interpolate(shares: &[G1Projective], lambdas: &[Scalar]) -> Signature {
    Signature(msm_public(shares, lambdas, 255).to_affine())
}

/// Lagrange coefficients at 0 for the evaluation points `x_j = index_j + 1`.
fn lagrange_at_zero(indices: &[usize]) -> Vec<Scalar> {
    let xs: Vec<Scalar> = indices.iter().map(|&i| Scalar::from(i as u64 + 1)).collect();
    let mut dens = Vec::with_capacity(xs.len());
    let mut nums = Vec::with_capacity(xs.len());
    for (j, xj) in xs.iter().enumerate() {
        let mut num = Scalar::ONE;
        let mut den = Scalar::ONE;
        for (m, xm) in xs.iter().enumerate() {
            if m != j {
                num *= xm;
                den *= *xm - xj;
            }
        }
        nums.push(num);
        dens.push(den);
    }
    // One inversion for all denominators (non-zero: the x are distinct).
    let mut prefix = Vec::with_capacity(dens.len());
    let mut acc = Scalar::ONE;
    for d in &dens {
        prefix.push(acc);
        acc *= d;
    }
    let mut inv = Option::<Scalar>::from(acc.invert()).unwrap_or(Scalar::ZERO);
    let mut out = vec![Scalar::ZERO; xs.len()];
    for j in (0..xs.len()).rev() {
        // inv = (d_0 ⋯ d_j)^-1 here.
        out[j] = nums[j] * inv * prefix[j];
        inv *= dens[j];
    }
    out
}

fn decode_g1(bytes: &[u8], what: &'static str) -> Result<G1Affine, ThresholdError> {
    let arr: &[u8; SIGNATURE_BYTES] = bytes.try_into().map_err(|_| bad(what, "wrong length"))?;
    Option::<G1Affine>::from(G1Affine::from_compressed(arr)).ok_or_else(|| bad(what, "not a point of the G1 subgroup"))
}

fn decode_g2(bytes: &[u8], what: &'static str) -> Result<G2Affine, ThresholdError> {
    let arr: &[u8; PUBLIC_KEY_BYTES] = bytes.try_into().map_err(|_| bad(what, "wrong length"))?;
    Option::<G2Affine>::from(G2Affine::from_compressed(arr)).ok_or_else(|| bad(what, "not a point of the G2 subgroup"))
}

/// Deals a fresh `t`-of-`n` key: a [`PublicKeySet`] for everyone and one
/// [`KeyShare`] per member (`shares[i].index() == i`).
///
/// This is a **trusted dealer**: the caller sees every share and the secret
/// in passing, and must hand each share to its owner only and forget the
/// rest. `t` is the number of shares [`PublicKeySet::combine`] needs; a BFT
/// committee of `n = 3f + 1` uses `t = 2f + 1` for certificates and
/// `t = f + 1` for a common coin.
pub fn deal<R: RngCore + CryptoRng + ?Sized>(
    n: usize,
    t: usize,
    rng: &mut R,
) -> Result<(PublicKeySet, Vec<KeyShare>), ThresholdError> {
    if t == 0 || t > n || n > MAX_MEMBERS {
        return Err(ThresholdError::InvalidThreshold { n, t });
    }
    let coeffs: Vec<Scalar> = (0..t).map(|_| random_scalar(rng)).collect();
    let eval = |x: u64| {
        let x = Scalar::from(x);
        coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
    };
    let secrets: Vec<Scalar> = (0..n as u64).map(|i| eval(i + 1)).collect();
    let g2 = G2Projective::generator();
    let share_keys: Vec<G2Projective> = secrets.iter().map(|s| g2 * s).collect();
    let mut share_affine = vec![G2Affine::identity(); n];
    G2Projective::batch_normalize(&share_keys, &mut share_affine);
    let pks = PublicKeySet::new(t, (g2 * coeffs[0]).to_affine(), share_affine);
    let shares = secrets.into_iter().enumerate().map(|(index, secret)| KeyShare { index, secret }).collect();
    Ok((pks, shares))
}

/// One member's secret share. `Debug` does not print the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    index: usize,
    secret: Scalar,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare").field("index", &self.index).finish_non_exhaustive()
    }
}

impl KeyShare {
    /// The member's 0-based index in its [`PublicKeySet`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// This member's share of the threshold signature on `(domain, msg)`.
    pub fn sign_share(&self, domain: &[u8], msg: &[u8]) -> SignatureShare {
        SignatureShare((hash_point(domain, msg) * self.secret).to_affine())
    }

    /// `index` (u32 LE) ‖ secret (32 bytes, big-endian scalar).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + SECRET_BYTES);
        out.extend_from_slice(&(self.index as u32).to_le_bytes());
        out.extend_from_slice(&self.secret.to_bytes_be());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ThresholdError> {
        if bytes.len() != 4 + SECRET_BYTES {
            return Err(bad("key share", "wrong length"));
        }
        let index = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if index >= MAX_MEMBERS {
            return Err(bad("key share", "index out of range"));
        }
        let mut arr = [0u8; SECRET_BYTES];
        arr.copy_from_slice(&bytes[4..]);
        let secret = Option::<Scalar>::from(Scalar::from_bytes_be(&arr))
            .ok_or_else(|| bad("key share", "secret not below the group order"))?;
        if bool::from(secret.is_zero()) {
            return Err(bad("key share", "zero secret"));
        }
        Ok(KeyShare { index, secret })
    }
}

/// What everyone knows about a dealt key: the threshold, the group key and
/// each member's share key.
#[derive(Clone)]
pub struct PublicKeySet {
    threshold: usize,
    group_key: G2Affine,
    share_keys: Vec<G2Affine>,
    /// `−group_key`'s Miller-loop lines, computed once per key set: every
    /// [`verify`](PublicKeySet::verify) reuses them.
    neg_group_prepared: Arc<G2Prepared>,
}

impl PartialEq for PublicKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.threshold == other.threshold && self.group_key == other.group_key && self.share_keys == other.share_keys
    }
}

impl Eq for PublicKeySet {}

impl PublicKeySet {
    fn new(threshold: usize, group_key: G2Affine, share_keys: Vec<G2Affine>) -> Self {
        let neg_group_prepared = Arc::new(G2Prepared::from(-group_key));
        PublicKeySet { threshold, group_key, share_keys, neg_group_prepared }
    }
}

/// A fixed set of `threshold` signers with its Lagrange coefficients
/// computed once ([`PublicKeySet::signer_set`]): a committee whose usual
/// signers are the same members combines each signature with one
/// multi-scalar multiplication and no field inversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerSet {
    indices: Vec<usize>,
    lambdas: Vec<Scalar>,
}

impl SignerSet {
    /// The members, in the order [`combine`](Self::combine) takes their shares.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Interpolates the signature from the members' shares, given in the
    /// order of [`indices`](Self::indices). Not verified (see
    /// [`PublicKeySet::combine`]).
    pub fn combine(&self, shares: &[SignatureShare]) -> Result<Signature, ThresholdError> {
        if shares.len() != self.indices.len() {
            return Err(ThresholdError::TooFewShares { got: shares.len(), need: self.indices.len() });
        }
        let points: Vec<G1Projective> = shares.iter().map(|s| G1Projective::from(s.0)).collect();
        Ok(interpolate(&points, &self.lambdas))
    }
}

impl fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("threshold", &self.threshold)
            .field("members", &self.share_keys.len())
            .field("group_key", &self.group_key().to_hex())
            .finish()
    }
}

impl PublicKeySet {
    /// Number of valid shares [`combine`](Self::combine) needs.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Number of members `n`.
    pub fn members(&self) -> usize {
        self.share_keys.len()
    }

    /// The key every combined [`Signature`] verifies under.
    pub fn group_key(&self) -> GroupKey {
        GroupKey(self.group_key)
    }

    /// Member `index`'s share key.
    pub fn share_key(&self, index: usize) -> Result<GroupKey, ThresholdError> {
        self.share_keys.get(index).copied().map(GroupKey).ok_or(ThresholdError::NotAMember { index, n: self.members() })
    }

    /// Checks member `index`'s share on `(domain, msg)`.
    pub fn verify_share(
        &self,
        index: usize,
        domain: &[u8],
        msg: &[u8],
        share: &SignatureShare,
    ) -> Result<(), ThresholdError> {
        let pk = self.share_keys.get(index).ok_or(ThresholdError::NotAMember { index, n: self.members() })?;
        if pairing_check(&share.0, &hash_point(domain, msg).to_affine(), pk) {
            Ok(())
        } else {
            Err(ThresholdError::InvalidShare(index))
        }
    }

    /// Refuses an index that is not a member (`NotAMember`) or comes twice
    /// (`DuplicateShare`), in the order given.
    fn distinct_members(&self, indices: impl Iterator<Item = usize>) -> Result<(), ThresholdError> {
        let n = self.members();
        let mut seen = BTreeSet::new();
        for index in indices {
            if index >= n {
                return Err(ThresholdError::NotAMember { index, n });
            }
            if !seen.insert(index) {
                return Err(ThresholdError::DuplicateShare(index));
            }
        }
        Ok(())
    }

    /// Interpolates a signature from shares. Refuses a duplicate index, an
    /// index that is not a member and fewer than `threshold` shares; beyond
    /// that the first `threshold` shares are used.
    ///
    /// Shares are **not** verified here (that costs a pairing each): pass
    /// shares checked with [`verify_share`](Self::verify_share), or
    /// [`verify`](Self::verify) the result — a bad share yields a signature
    /// that does not verify, never a wrong one that does.
    pub fn combine(&self, shares: &[(usize, SignatureShare)]) -> Result<Signature, ThresholdError> {
        self.distinct_members(shares.iter().map(|(i, _)| *i))?;
        if shares.len() < self.threshold {
            return Err(ThresholdError::TooFewShares { got: shares.len(), need: self.threshold });
        }
        let used = &shares[..self.threshold];
        let indices: Vec<usize> = used.iter().map(|(i, _)| *i).collect();
        let lambdas = lagrange_at_zero(&indices);
        let points: Vec<G1Projective> = used.iter().map(|(_, s)| G1Projective::from(s.0)).collect();
        Ok(interpolate(&points, &lambdas))
    }

    /// Precomputes the Lagrange coefficients of one set of exactly
    /// `threshold` distinct members (see [`SignerSet`]).
    pub fn signer_set(&self, indices: &[usize]) -> Result<SignerSet, ThresholdError> {
        self.distinct_members(indices.iter().copied())?;
        if indices.len() != self.threshold {
            return Err(ThresholdError::TooFewShares { got: indices.len(), need: self.threshold });
        }
        Ok(SignerSet { indices: indices.to_vec(), lambdas: lagrange_at_zero(indices) })
    }

    /// Checks a combined signature on `(domain, msg)` under the group key.
    pub fn verify(&self, domain: &[u8], msg: &[u8], sig: &Signature) -> Result<(), ThresholdError> {
        if pairing_check_prepared(&sig.0, &hash_point(domain, msg).to_affine(), &self.neg_group_prepared) {
            Ok(())
        } else {
            Err(ThresholdError::InvalidSignature)
        }
    }

    /// Checks many members' shares on one `(domain, msg)` with one pairing
    /// check instead of one each: `e(Σ r_j σ_j, g2) = e(H(m), Σ r_j pk_j)`
    /// with 128-bit weights `r_j` bound to the batch (two multi-scalar
    /// multiplications, one in G1 and one in G2). If the batch fails, the
    /// shares are checked one by one and the first invalid one is named.
    /// Refuses non-members and duplicates like [`combine`](Self::combine).
    pub fn verify_shares(
        &self,
        domain: &[u8],
        msg: &[u8],
        shares: &[(usize, SignatureShare)],
    ) -> Result<(), ThresholdError> {
        self.distinct_members(shares.iter().map(|(i, _)| *i))?;
        if shares.is_empty() {
            return Ok(());
        }
        let hashed = hash_point(domain, msg).to_affine();
        let weights = batch_weights(domain, msg, shares);
        let sigs: Vec<G1Projective> = shares.iter().map(|(_, s)| G1Projective::from(s.0)).collect();
        let keys: Vec<G2Projective> = shares.iter().map(|(i, _)| G2Projective::from(self.share_keys[*i])).collect();
        let sum_sig = msm_public(&sigs, &weights, 128).to_affine();
        let sum_key = msm_public(&keys, &weights, 128).to_affine();
        if pairing_check(&sum_sig, &hashed, &sum_key) {
            return Ok(());
        }
        for (index, share) in shares {
            if !pairing_check(&share.0, &hashed, &self.share_keys[*index]) {
                return Err(ThresholdError::InvalidShare(*index));
            }
        }
        // Unreachable for a batch of valid shares (their weighted sums
        // verify); refuse rather than accept what the batch refused.
        Err(ThresholdError::InvalidShare(shares[0].0))
    }

    /// The group signature from shares of unknown validity — what a relay
    /// node holds after collecting them from the network. Shares from
    /// non-members are dropped. Optimistic: the first share of each index,
    /// up to `threshold` of them, are combined and the result verified (one
    /// pairing check). Only if that fails is every share checked on its own
    /// — **repeats of an index included** — and the first *valid* share of
    /// each index kept: anyone can send a share that merely claims an
    /// honest member's index, so a repeat must never displace a share
    /// before both were checked (else `f` spoofers would censor the
    /// `2f + 1` honest members).
    pub fn combine_verified(
        &self,
        domain: &[u8],
        msg: &[u8],
        shares: &[(usize, SignatureShare)],
    ) -> Result<Signature, ThresholdError> {
        let n = self.members();
        let mut seen = BTreeSet::new();
        let first: Vec<(usize, SignatureShare)> =
            shares.iter().filter(|(i, _)| *i < n && seen.insert(*i)).copied().collect();
        if first.len() < self.threshold {
            return Err(ThresholdError::TooFewShares { got: first.len(), need: self.threshold });
        }
        let sig = self.combine(&first)?;
        if self.verify(domain, msg, &sig).is_ok() {
            return Ok(sig);
        }
        // Per-share check over all candidates (a batch would fail here,
        // as at least one combined share is bad): keep the first valid
        // share per index; stop once `threshold` indices have one.
        let valid: Vec<(usize, SignatureShare)> = {
            let hashed = hash_point(domain, msg).to_affine();
            let mut chosen: BTreeMap<usize, SignatureShare> = BTreeMap::new();
            for (i, s) in shares.iter().filter(|(i, _)| *i < n) {
                if chosen.len() >= self.threshold {
                    break;
                }
                if chosen.contains_key(i) {
                    continue;
                }
                if pairing_check(&s.0, &hashed, &self.share_keys[*i]) {
                    chosen.insert(*i, *s);
                }
            }
            chosen.into_iter().collect()
        };
        if valid.len() < self.threshold {
            return Err(ThresholdError::TooFewShares { got: valid.len(), need: self.threshold });
        }
        let sig = self.combine(&valid)?;
        self.verify(domain, msg, &sig)?;
        Ok(sig)
    }

    /// Checks that the share keys are the dealt polynomial's: every member's
    /// key and the group key interpolate from the first `threshold` share
    /// keys. Costs `n − t + 1` multi-scalar multiplications in G2; run it
    /// once when a key set arrives from outside.
    pub fn check_consistency(&self) -> Result<(), ThresholdError> {
        let t = self.threshold;
        let base: Vec<usize> = (0..t).collect();
        let points: Vec<G2Projective> = self.share_keys[..t].iter().map(|p| G2Projective::from(*p)).collect();
        let at = |x: Scalar| -> G2Projective {
            // Lagrange basis at x over the points 1..=t.
            let xs: Vec<Scalar> = base.iter().map(|&i| Scalar::from(i as u64 + 1)).collect();
            let coeffs: Vec<Scalar> = (0..t)
                .map(|j| {
                    let mut num = Scalar::ONE;
                    let mut den = Scalar::ONE;
                    for m in 0..t {
                        if m != j {
                            num *= x - xs[m];
                            den *= xs[j] - xs[m];
                        }
                    }
                    num * Option::<Scalar>::from(den.invert()).unwrap_or(Scalar::ZERO)
                })
                .collect();
            G2Projective::multi_exp(&points, &coeffs)
        };
        if at(Scalar::ZERO).to_affine() != self.group_key {
            return Err(ThresholdError::InconsistentKeySet);
        }
        for (i, key) in self.share_keys.iter().enumerate().skip(t) {
            if at(Scalar::from(i as u64 + 1)).to_affine() != *key {
                return Err(ThresholdError::InconsistentKeySet);
            }
        }
        Ok(())
    }

    /// threshold (u32 LE) ‖ n (u32 LE) ‖ group key ‖ n share keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + PUBLIC_KEY_BYTES * (1 + self.share_keys.len()));
        out.extend_from_slice(&(self.threshold as u32).to_le_bytes());
        out.extend_from_slice(&(self.share_keys.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.group_key.to_compressed());
        for k in &self.share_keys {
            out.extend_from_slice(&k.to_compressed());
        }
        out
    }

    /// Decodes and checks every point; does not run the (costlier)
    /// [`check_consistency`](Self::check_consistency).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ThresholdError> {
        if bytes.len() < 8 {
            return Err(bad("public key set", "too short"));
        }
        let t = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let n = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        if t == 0 || t > n || n > MAX_MEMBERS {
            return Err(ThresholdError::InvalidThreshold { n, t });
        }
        if bytes.len() != 8 + PUBLIC_KEY_BYTES * (n + 1) {
            return Err(bad("public key set", "wrong length"));
        }
        let mut chunks = bytes[8..].chunks_exact(PUBLIC_KEY_BYTES);
        let group_key = decode_g2(chunks.next().unwrap_or_default(), "public key set")?;
        let share_keys = chunks.map(|c| decode_g2(c, "public key set")).collect::<Result<Vec<_>, _>>()?;
        if bool::from(group_key.is_identity()) || share_keys.iter().any(|k| bool::from(k.is_identity())) {
            return Err(bad("public key set", "identity key"));
        }
        Ok(PublicKeySet::new(t, group_key, share_keys))
    }
}

/// A public key in G2: a group key or a member's share key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GroupKey(G2Affine);

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey({})", self.to_hex())
    }
}

impl GroupKey {
    pub fn verify(&self, domain: &[u8], msg: &[u8], sig: &Signature) -> Result<(), ThresholdError> {
        if pairing_check(&sig.0, &hash_point(domain, msg).to_affine(), &self.0) {
            Ok(())
        } else {
            Err(ThresholdError::InvalidSignature)
        }
    }

    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_BYTES] {
        self.0.to_compressed()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ThresholdError> {
        let p = decode_g2(bytes, "public key")?;
        if bool::from(p.is_identity()) {
            return Err(bad("public key", "identity key"));
        }
        Ok(GroupKey(p))
    }

    fn to_hex(self) -> String {
        self.0.to_compressed().iter().take(8).map(|b| format!("{b:02x}")).collect::<String>() + "…"
    }
}

/// One member's share of a threshold signature (G1, 48 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare(G1Affine);

/// A combined threshold signature (G1, 48 bytes). Unique: every set of
/// `threshold` valid shares combines to the same one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(G1Affine);

macro_rules! g1_wrapper {
    ($ty:ident, $what:literal) => {
        impl $ty {
            pub fn to_bytes(&self) -> [u8; SIGNATURE_BYTES] {
                self.0.to_compressed()
            }

            /// Refuses bytes that are not a compressed point of the prime
            /// order subgroup, and the identity.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, ThresholdError> {
                let p = decode_g1(bytes, $what)?;
                if bool::from(p.is_identity()) {
                    return Err(bad($what, "identity point"));
                }
                Ok($ty(p))
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hex: String = self.to_bytes().iter().take(8).map(|b| format!("{b:02x}")).collect();
                write!(f, "{}({hex}…)", stringify!($ty))
            }
        }

        impl BorshSerialize for $ty {
            fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
                writer.write_all(&self.to_bytes())
            }
        }

        impl BorshDeserialize for $ty {
            fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
                let mut buf = [0u8; SIGNATURE_BYTES];
                reader.read_exact(&mut buf)?;
                Self::from_bytes(&buf).map_err(to_io)
            }
        }
    };
}

g1_wrapper!(SignatureShare, "signature share");
g1_wrapper!(Signature, "signature");

impl std::hash::Hash for SignatureShare {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state)
    }
}

impl std::hash::Hash for Signature {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_bytes().hash(state)
    }
}

impl BorshSerialize for GroupKey {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(&self.to_bytes())
    }
}

impl BorshDeserialize for GroupKey {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let mut buf = [0u8; PUBLIC_KEY_BYTES];
        reader.read_exact(&mut buf)?;
        Self::from_bytes(&buf).map_err(to_io)
    }
}

/// Borsh: a `Vec<u8>` holding [`PublicKeySet::to_bytes`].
impl BorshSerialize for PublicKeySet {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        BorshSerialize::serialize(&self.to_bytes(), writer)
    }
}

impl BorshDeserialize for PublicKeySet {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let bytes = read_bounded(reader, 8 + PUBLIC_KEY_BYTES * (MAX_MEMBERS + 1))?;
        Self::from_bytes(&bytes).map_err(to_io)
    }
}

/// Borsh: a `Vec<u8>` holding [`KeyShare::to_bytes`].
impl BorshSerialize for KeyShare {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        BorshSerialize::serialize(&self.to_bytes(), writer)
    }
}

impl BorshDeserialize for KeyShare {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        let bytes = read_bounded(reader, 4 + SECRET_BYTES)?;
        Self::from_bytes(&bytes).map_err(to_io)
    }
}

/// A borsh `Vec<u8>` whose declared length is checked before allocating.
fn read_bounded<R: io::Read>(reader: &mut R, max: usize) -> io::Result<Vec<u8>> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > max {
        return Err(to_io(bad("length prefix", "longer than any valid encoding")));
    }
    let mut bytes = vec![0u8; len];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// The common coin of a combined signature: the first 8 bytes (LE) of
/// SHA-256 over a tag and the signature. Because the threshold signature is
/// unique, every replica that combines any `threshold` valid shares of the
/// same `(domain, msg)` gets the same value, and nobody can predict it
/// before `threshold` members have released their share.
pub fn coin(sig: &Signature) -> u64 {
    let mut h = Sha256::new();
    h.update(COIN_TAG);
    h.update(sig.to_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msm_public_equals_blst_multi_exp() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        for n in [0usize, 1, 2, 7, 21, 33] {
            let scalars: Vec<Scalar> = (0..n).map(|_| random_scalar(&mut rng)).collect();
            let g1: Vec<G1Projective> = (0..n).map(|_| G1Projective::generator() * random_scalar(&mut rng)).collect();
            let g2: Vec<G2Projective> = (0..n).map(|_| G2Projective::generator() * random_scalar(&mut rng)).collect();
            if n > 0 {
                assert_eq!(msm_public(&g1, &scalars, 255), G1Projective::multi_exp(&g1, &scalars), "G1, n = {n}");
                assert_eq!(msm_public(&g2, &scalars, 255), G2Projective::multi_exp(&g2, &scalars), "G2, n = {n}");
            } else {
                assert_eq!(msm_public(&g1, &scalars, 255), G1Projective::identity());
            }
            // 128-bit scalars with 128 bits, the identity among the points,
            // and the scalars 0, 1 and −1.
            let small: Vec<Scalar> =
                (0..n as u64).map(|i| Scalar::from(u64::MAX - i) * Scalar::from(u64::MAX)).collect();
            let mut pts = g1.clone();
            if let Some(p) = pts.first_mut() {
                *p = G1Projective::identity();
            }
            let expect: G1Projective = pts.iter().zip(&small).map(|(p, k)| p * k).sum();
            assert_eq!(msm_public(&pts, &small, 128), expect, "128-bit, n = {n}");
            let edge: Vec<Scalar> = (0..n).map(|i| [Scalar::ZERO, Scalar::ONE, -Scalar::ONE][i % 3]).collect();
            let expect: G1Projective = g1.iter().zip(&edge).map(|(p, k)| p * k).sum();
            assert_eq!(msm_public(&g1, &edge, 255), expect, "0, 1, −1; n = {n}");
        }
    }

    #[test]
    fn lagrange_coefficients_sum_to_one() {
        // Interpolating the constant polynomial 1 at 0 gives 1.
        let l = lagrange_at_zero(&[0, 3, 5, 9]);
        assert_eq!(l.iter().sum::<Scalar>(), Scalar::ONE);
    }
}
