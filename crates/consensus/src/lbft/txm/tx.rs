//! The transaction of the transaction model (thesis §4.3.3, Eq 4.5), the
//! per-epoch eligibility of Rule-4 (Eq 4.6), the nonce value of Eq 4.7 and
//! the array function F^A of §4.4.1.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_parts, hash_tagged, Tag};
use gridledger_core::crypto::CryptoError;
use gridledger_core::ed25519::{verify, EdKeyPair, EdPublicKey, EdSignature};
use gridledger_core::Hash32;

/// What a client signs: `{e_c, PubK_c, Req_c, DN_c, e_c^new}`.
const TX_SIG: Tag = Tag("gridledger/lbft-tx/v1");
/// A transaction's identity (hash of the signed body and the signature).
const TX_ID: Tag = Tag("gridledger/lbft-tx-id/v1");
/// `H(PubK_c ‖ e_c)` of Eq 4.6.
const ELIG: Tag = Tag("gridledger/lbft-elig/v1");
/// `n^v = DN_c ‖ PubK_c ‖ h^(e_c−1)` of Eq 4.7.
const NONCE: Tag = Tag("gridledger/lbft-nonce/v1");
/// The draws of F^A.
const ARRAY: Tag = Tag("gridledger/lbft-array/v1");

/// Largest request a transaction may carry (bytes). The seed's experiments
/// use 300-byte transactions; this bound is the codec's, not the seed's.
pub const MAX_REQUEST: usize = 4096;

/// `tx_c = {e_c, PubK_c, Req_c, Sig, DN_c, e_c^new}` (Eq 4.5).
///
/// Clients sign with Ed25519 (the seed names no scheme): replicas check
/// signatures in batches (`gridledger_core::ed25519::verify_batch`, ZIP-215
/// rules, so a batch's verdict equals the single check's on every replica),
/// about 2–3× cheaper per transaction than a secp256k1 check.
///
/// The seed writes `Sig_{c,n}`; the client signs once and sends the same
/// bytes to each of its τ recipients, so that every copy has one identity
/// and duplicates are recognisable. Binding a signature to a recipient `n`
/// would give τ distinct transactions for one request.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LbftTx {
    /// `e_c`: the client's local epoch when it disseminated the transaction.
    pub epoch: u64,
    /// `PubK_c`.
    pub client: EdPublicKey,
    /// `Req_c`: the application request (opaque here; Rule-1 content checks
    /// belong to the application).
    pub request: Vec<u8>,
    /// `DN_c`: how many of this client's transactions were ABC-delivered before.
    pub delivery_number: u64,
    /// `e_c^new > e_c`: the client sends its next transaction no earlier.
    pub next_epoch: u64,
    pub signature: EdSignature,
}

#[derive(BorshSerialize)]
struct SignedBody<'a> {
    epoch: u64,
    client: &'a EdPublicKey,
    request: &'a [u8],
    delivery_number: u64,
    next_epoch: u64,
}

impl LbftTx {
    /// A signed transaction.
    pub fn sign(key: &EdKeyPair, epoch: u64, request: Vec<u8>, delivery_number: u64, next_epoch: u64) -> Self {
        let client = key.public();
        let digest = body_digest(epoch, &client, &request, delivery_number, next_epoch);
        Self { epoch, client, request, delivery_number, next_epoch, signature: key.sign(&digest.0) }
    }

    /// The digest the client signed.
    pub fn signing_digest(&self) -> Hash32 {
        body_digest(self.epoch, &self.client, &self.request, self.delivery_number, self.next_epoch)
    }

    /// Rule-1's signature part.
    pub fn verify_signature(&self) -> Result<(), CryptoError> {
        verify(&self.client, &self.signing_digest().0, &self.signature)
    }

    /// A stable identity for deduplication and deletion.
    pub fn id(&self) -> Hash32 {
        hash_tagged(TX_ID, self)
    }

    /// The nonce value `n^v` (Eq 4.7) given `h^(e_c−1)`.
    pub fn nonce(&self, prev_block: &Hash32) -> Hash32 {
        nonce_value(self.delivery_number, &self.client, prev_block)
    }
}

fn body_digest(epoch: u64, client: &EdPublicKey, request: &[u8], delivery_number: u64, next_epoch: u64) -> Hash32 {
    hash_tagged(TX_SIG, &SignedBody { epoch, client, request, delivery_number, next_epoch })
}

/// `n^v = DN_c ‖ PubK_c ‖ h^(e_c−1)` (Eq 4.7), hashed to a fixed width.
pub fn nonce_value(delivery_number: u64, client: &EdPublicKey, prev_block: &Hash32) -> Hash32 {
    hash_parts(NONCE, &[&delivery_number.to_le_bytes(), &client.0, &prev_block.0])
}

/// Rule-4's θ as parts per million; `θ·2^k` with `k = 64` is compared with
/// the first 8 bytes (big-endian) of `H(PubK_c ‖ e_c)`.
///
/// The seed has θ ∈ (0, 1); we also accept θ = 1 (1,000,000 ppm), which
/// makes every epoch eligible — useful when a deployment bounds the load by
/// other means, and in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theta(u32);

impl Theta {
    pub const ALWAYS: Theta = Theta(1_000_000);

    /// `None` unless `0 < ppm ≤ 1,000,000`.
    pub fn from_ppm(ppm: u32) -> Option<Self> {
        (ppm > 0 && ppm <= 1_000_000).then_some(Theta(ppm))
    }

    pub fn ppm(self) -> u32 {
        self.0
    }

    /// `Elig_c(e_c)` (Eq 4.6).
    pub fn eligible(self, client: &EdPublicKey, epoch: u64) -> bool {
        let h = hash_parts(ELIG, &[&client.0, &epoch.to_le_bytes()]);
        let mut top = [0u8; 8];
        top.copy_from_slice(&h.0[..8]);
        let v = u64::from_be_bytes(top) as u128;
        v * 1_000_000 < (self.0 as u128) << 64
    }
}

/// The array function F^A (§4.4.1): τ distinct replica indices in `0..n`,
/// in order, drawn from `nonce`.
///
/// A partial Fisher–Yates shuffle whose j-th swap index is drawn by
/// rejection sampling from `H(nonce ‖ j ‖ attempt)`: fully specified by
/// SHA-256 (no RNG crate whose algorithm might change between versions), so
/// every replica computes the same array (determinism), and each ordered
/// τ-subset is equally likely before the nonce is known (uniformity).
/// `tau` is clamped to `n`.
pub fn array_function(nonce: &Hash32, n: u32, tau: u32) -> Vec<u32> {
    let tau = tau.min(n);
    let mut perm: Vec<u32> = (0..n).collect();
    for j in 0..tau {
        let range = u64::from(n - j);
        // Largest multiple of `range` below 2^64: draws above it are rejected.
        let zone = u64::MAX - (u64::MAX % range + 1) % range;
        let mut attempt = 0u32;
        let pick = loop {
            let h = hash_parts(ARRAY, &[&nonce.0, &j.to_le_bytes(), &attempt.to_le_bytes()]);
            let mut b = [0u8; 8];
            b.copy_from_slice(&h.0[..8]);
            let v = u64::from_le_bytes(b);
            if v <= zone {
                break (v % range) as u32;
            }
            attempt += 1;
        };
        perm.swap(j as usize, (j + pick) as usize);
    }
    perm.truncate(tau as usize);
    perm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_function_is_deterministic_distinct_and_in_range() {
        let n = hash_parts(Tag("t"), &[b"x"]);
        let a = array_function(&n, 100, 24);
        assert_eq!(a, array_function(&n, 100, 24));
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 24);
        assert!(a.iter().all(|&i| i < 100));
        assert_eq!(array_function(&n, 5, 9).len(), 5);
    }

    #[test]
    fn array_function_first_position_is_roughly_uniform() {
        let mut counts = [0u32; 7];
        for i in 0..7000u32 {
            let n = hash_parts(Tag("t"), &[&i.to_le_bytes()]);
            counts[array_function(&n, 7, 3)[0] as usize] += 1;
        }
        // Expected 1000 each; 5 sigma ≈ 160.
        assert!(counts.iter().all(|&c| (840..=1160).contains(&c)), "{counts:?}");
    }

    #[test]
    fn theta_bounds_eligibility_share() {
        assert!(Theta::from_ppm(0).is_none() && Theta::from_ppm(1_000_001).is_none());
        let k = EdKeyPair::from_seed("elig");
        assert!((0..100).all(|e| Theta::ALWAYS.eligible(&k.public(), e)));
        let quarter = Theta::from_ppm(250_000).unwrap();
        let hits = (0..4000).filter(|&e| quarter.eligible(&k.public(), e)).count();
        assert!((850..=1150).contains(&hits), "{hits}");
    }

    #[test]
    fn signature_binds_every_field() {
        let k = EdKeyPair::from_seed("c");
        let tx = LbftTx::sign(&k, 5, b"req".to_vec(), 2, 7);
        assert!(tx.verify_signature().is_ok());
        for f in [
            |t: &mut LbftTx| t.epoch += 1,
            |t: &mut LbftTx| t.request.push(0),
            |t: &mut LbftTx| t.delivery_number += 1,
            |t: &mut LbftTx| t.next_epoch += 1,
            |t: &mut LbftTx| t.client = EdKeyPair::from_seed("d").public(),
        ] {
            let mut t = tx.clone();
            f(&mut t);
            assert!(t.verify_signature().is_err());
        }
    }
}
