//! The cryptography the leaderless broadcast needs, behind one trait so the
//! same protocol code runs with the real scheme ([`NodeCrypto`]: Ed25519
//! multi-signature certificates, a BLS12-381 threshold coin from
//! `gridledger-threshold`) on real nodes and with a cheap stand-in
//! ([`SimCrypto`]) in the simulator's thousand-seed sweeps. The simulator
//! also runs a smaller sweep with [`NodeCrypto`], so the real scheme is
//! exercised too.
//!
//! Two thresholds: certificates need `n − f` echoes ([`super::quorum`]:
//! two certificates for different batches of one proposer share
//! `n − 2f ≥ f + 1` signers, so a correct replica would have to sign both;
//! that is `2f + 1` for `n = 3f + 1` and more for other `n`), the common
//! coin `f + 1` (one correct share makes it unpredictable, and replicas
//! that stopped after deciding are not needed to flip it).
//!
//! Certificates are multi-signatures — `n − f` signed echoes, one Ed25519
//! signature each — not threshold signatures: the certificate only has to
//! show that `n − f` replicas echoed the digest, which a list of their
//! signatures shows as well, at one Ed25519 check per echo (≈ 37 µs
//! singly, `gridledger_core::ed25519`) instead of pairings (with BLS
//! certificates the per-epoch BLS12-381 work was ≈ 4 ms of CPU per replica
//! with four replicas, nearly all of it certificates). The price: a
//! certificate is not unique (any `n − f` echoes make one) and is larger
//! (`(n − f) · 68` bytes). Nothing replicas must agree on reads a
//! certificate's bytes — the decision, the block hash `h^e`, the sync tally,
//! the node's blocks and state roots and the bench's epoch digests read
//! `(proposer, digest)` only. The coin stays a threshold signature: a
//! unique signature is what makes it common.

use std::fmt::Debug;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::ed25519::{self, EdKeyPair, EdPublicKey, EdSignature};
use gridledger_core::Hash32;
use gridledger_threshold::{KeyShare, PublicKeySet};

/// Which key a share or signature belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// Batch certificates (`n − f`).
    Cert,
    /// The common coin (`f + 1`).
    Coin,
}

/// Threshold signing as the protocol uses it (for certificates, a
/// multi-signature with the same interface). Shares are not verified by
/// `combine`; a bad share yields a signature that `verify` refuses.
pub trait ThresholdCrypto: Clone + Debug {
    type Share: Clone + Debug + PartialEq + Eq + BorshSerialize + BorshDeserialize;
    type Sig: Clone + Debug + PartialEq + Eq + BorshSerialize + BorshDeserialize;
    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> Self::Share;
    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &Self::Share) -> bool;
    /// `msg` is what the shares sign (BLS does not need it; the
    /// simulator's stand-in does).
    fn combine(&self, key: KeyUse, msg: &[u8], shares: &[(u32, Self::Share)]) -> Option<Self::Sig>;
    fn verify(&self, key: KeyUse, msg: &[u8], sig: &Self::Sig) -> bool;
    /// The common coin of a (verified, unique) coin signature.
    fn coin(&self, sig: &Self::Sig) -> u64;
    fn threshold(&self, key: KeyUse) -> usize;
}

const DOMAIN: &[u8] = b"gridledger/lbft/v1";

/// What an echo share signs ahead of the echo statement: the Ed25519 key
/// of an echo signs nothing else, and nothing else of this key's signs
/// under this prefix (the echo statement starts with its own tag too).
const ECHO_DOMAIN: &[u8] = b"gridledger/lbft/echo-ed25519/v1\x00";

/// A batch certificate of [`NodeCrypto`]: exactly `n − f` echoes,
/// `(signer, Ed25519 signature over the echo statement)`, signers in
/// strictly ascending order. Not unique — any `n − f` of the `n`
/// replicas' echoes make one — so nothing replicas must agree on reads its
/// bytes: what they agree on is the batch digest it certifies
/// ([`super::DeliveredEpoch::decision`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct MultiSig {
    pub echoes: Vec<(u32, EdSignature)>,
}

/// A [`NodeCrypto`] share: an Ed25519 echo (certificates) or a BLS12-381
/// threshold share (the coin).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum NodeShare {
    Echo(EdSignature),
    Coin(gridledger_threshold::SignatureShare),
}

/// A [`NodeCrypto`] signature: a certificate ([`MultiSig`]) or the coin's
/// BLS12-381 threshold signature (unique: what makes the coin common).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum NodeSig {
    Cert(MultiSig),
    Coin(gridledger_threshold::Signature),
}

/// The scheme nodes run: batch certificates are multi-signatures of
/// Ed25519 signed echoes (`n − f` of them, each one Ed25519 check, no
/// pairing), the common coin a BLS12-381 threshold signature (`f + 1`
/// shares; its uniqueness is what makes the coin common, which a
/// multi-signature is not).
#[derive(Clone)]
pub struct NodeCrypto {
    /// Every replica's Ed25519 echo key, by index.
    pub echo_keys: Arc<Vec<EdPublicKey>>,
    pub coin_keys: Arc<PublicKeySet>,
    me: u32,
    echo_key: Arc<EdKeyPair>,
    coin_share: Arc<KeyShare>,
    /// Certificates of `2f + 1` echoes whatever `n` is (mutation testing
    /// only, [`super::Mutation::ThirdsQuorum`]).
    #[cfg(feature = "mutants")]
    thirds_quorum: bool,
}

impl Debug for NodeCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCrypto")
            .field("me", &self.me)
            .field("echo_keys", &self.echo_keys)
            .field("coin_keys", &self.coin_keys)
            .finish_non_exhaustive()
    }
}

/// Why [`NodeCrypto::try_new`] refuses a replica's keys.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{got} echo public keys for {n} replicas")]
    EchoKeyCount { n: usize, got: usize },
    #[error("coin key set for {got} replicas, expected {n}")]
    CoinMembers { n: usize, got: usize },
    #[error("coin threshold {got}, expected f + 1 = {expected}")]
    CoinThreshold { expected: usize, got: usize },
    #[error("replica index {me} out of range for {n} replicas")]
    Index { me: u32, n: usize },
    #[error("the echo key is not replica {me}'s (its public key differs from the list's)")]
    EchoKeyMismatch { me: u32 },
    #[error("the coin share belongs to replica {got}, this is replica {me}")]
    CoinShareIndex { me: u32, got: usize },
    #[error("the coin share does not match the coin key set")]
    CoinShareMismatch,
    #[error("dealing the coin keys: {0}")]
    Deal(#[from] gridledger_threshold::ThresholdError),
}

/// The keys of `n` replicas as a trusted dealer hands them out: every
/// replica's Ed25519 echo public key and the coin's public key set (for
/// everyone), and per replica its echo secret (the 32-byte Ed25519 seed)
/// and coin share.
pub struct DealtKeys {
    pub echo_public: Vec<EdPublicKey>,
    pub echo_secret: Vec<[u8; 32]>,
    pub coin_public: PublicKeySet,
    pub coin_shares: Vec<KeyShare>,
}

/// Deals keys for `n` replicas (trusted dealer, see
/// `gridledger_threshold::deal` for the coin's).
pub fn deal_keys<R: rand::RngCore + rand::CryptoRng>(
    n: usize,
    rng: &mut R,
) -> Result<DealtKeys, gridledger_threshold::ThresholdError> {
    let f = super::faults(n);
    let (coin_public, coin_shares) = gridledger_threshold::deal(n, f + 1, rng)?;
    let echo_secret: Vec<[u8; 32]> = (0..n)
        .map(|_| {
            let mut b = [0u8; 32];
            rng.fill_bytes(&mut b);
            b
        })
        .collect();
    let echo_public = echo_secret.iter().map(|s| EdKeyPair::from_secret_bytes(*s).public()).collect();
    Ok(DealtKeys { echo_public, echo_secret, coin_public, coin_shares })
}

impl NodeCrypto {
    /// Replica `me`'s view: every echo public key, the coin's key set, its
    /// echo secret and its coin share, checked against each other.
    pub fn try_new(
        echo_keys: Arc<Vec<EdPublicKey>>,
        coin_keys: Arc<PublicKeySet>,
        me: u32,
        echo_secret: [u8; 32],
        coin_share: KeyShare,
    ) -> Result<Self, KeyError> {
        let n = echo_keys.len();
        let f = super::faults(n);
        if coin_keys.members() != n {
            return Err(KeyError::CoinMembers { n, got: coin_keys.members() });
        }
        if coin_keys.threshold() != f + 1 {
            return Err(KeyError::CoinThreshold { expected: f + 1, got: coin_keys.threshold() });
        }
        let echo_key = EdKeyPair::from_secret_bytes(echo_secret);
        match echo_keys.get(me as usize) {
            None => return Err(KeyError::Index { me, n }),
            Some(pk) if *pk != echo_key.public() => return Err(KeyError::EchoKeyMismatch { me }),
            Some(_) => {}
        }
        if coin_share.index() != me as usize {
            return Err(KeyError::CoinShareIndex { me, got: coin_share.index() });
        }
        let probe = b"gridledger/lbft/key-check";
        if coin_keys.verify_share(me as usize, DOMAIN, probe, &coin_share.sign_share(DOMAIN, probe)).is_err() {
            return Err(KeyError::CoinShareMismatch);
        }
        Ok(Self {
            echo_keys,
            coin_keys,
            me,
            echo_key: Arc::new(echo_key),
            coin_share: Arc::new(coin_share),
            #[cfg(feature = "mutants")]
            thirds_quorum: false,
        })
    }

    /// One [`NodeCrypto`] per replica from dealt keys.
    pub fn from_dealt(keys: DealtKeys) -> Result<Vec<Self>, KeyError> {
        let echo = Arc::new(keys.echo_public);
        let coin = Arc::new(keys.coin_public);
        keys.echo_secret
            .into_iter()
            .zip(keys.coin_shares)
            .enumerate()
            .map(|(i, (e, c))| Self::try_new(echo.clone(), coin.clone(), i as u32, e, c))
            .collect()
    }

    /// Deals keys for `n` replicas: one [`NodeCrypto`] per replica.
    pub fn deal<R: rand::RngCore + rand::CryptoRng>(n: usize, rng: &mut R) -> Result<Vec<Self>, KeyError> {
        Self::from_dealt(deal_keys(n, rng)?)
    }

    fn n(&self) -> usize {
        self.echo_keys.len()
    }

    /// `n − f` ([`super::quorum`]).
    fn cert_threshold(&self) -> usize {
        #[cfg(feature = "mutants")]
        if self.thirds_quorum {
            return 2 * super::faults(self.n()) + 1;
        }
        super::quorum(self.n())
    }

    /// Plants [`super::Mutation::ThirdsQuorum`] (certificates of `2f + 1`
    /// echoes); any other mutation leaves the scheme as it is.
    #[cfg(feature = "mutants")]
    pub fn with_mutation(mut self, m: Option<super::Mutation>) -> Self {
        self.thirds_quorum = m == Some(super::Mutation::ThirdsQuorum);
        self
    }

    fn echo_bytes(msg: &[u8]) -> Vec<u8> {
        let mut b = Vec::with_capacity(ECHO_DOMAIN.len() + msg.len());
        b.extend_from_slice(ECHO_DOMAIN);
        b.extend_from_slice(msg);
        b
    }

    fn echo_ok(&self, signer: u32, signed: &[u8], sig: &EdSignature) -> bool {
        self.echo_keys.get(signer as usize).is_some_and(|pk| ed25519::verify(pk, signed, sig).is_ok())
    }
}

impl ThresholdCrypto for NodeCrypto {
    type Share = NodeShare;
    type Sig = NodeSig;

    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> NodeShare {
        match key {
            KeyUse::Cert => NodeShare::Echo(self.echo_key.sign(&Self::echo_bytes(msg))),
            KeyUse::Coin => NodeShare::Coin(self.coin_share.sign_share(DOMAIN, msg)),
        }
    }

    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &NodeShare) -> bool {
        match (key, share) {
            (KeyUse::Cert, NodeShare::Echo(s)) => self.echo_ok(signer, &Self::echo_bytes(msg), s),
            (KeyUse::Coin, NodeShare::Coin(s)) => self.coin_keys.verify_share(signer as usize, DOMAIN, msg, s).is_ok(),
            _ => false,
        }
    }

    /// A certificate: the echoes of the `n − f` lowest distinct signers,
    /// in ascending order (shares of the wrong kind or out of range are
    /// skipped; fewer than `n − f` left: `None`). Not verified here.
    fn combine(&self, key: KeyUse, _msg: &[u8], shares: &[(u32, NodeShare)]) -> Option<NodeSig> {
        match key {
            KeyUse::Cert => {
                let mut by: BTreeMap<u32, EdSignature> = BTreeMap::new();
                for (i, s) in shares {
                    if let NodeShare::Echo(s) = s {
                        if (*i as usize) < self.n() {
                            by.entry(*i).or_insert(*s);
                        }
                    }
                }
                let t = self.cert_threshold();
                (by.len() >= t).then(|| NodeSig::Cert(MultiSig { echoes: by.into_iter().take(t).collect() }))
            }
            KeyUse::Coin => {
                let v: Vec<(usize, gridledger_threshold::SignatureShare)> = shares
                    .iter()
                    .filter_map(|(i, s)| match s {
                        NodeShare::Coin(s) => Some((*i as usize, *s)),
                        NodeShare::Echo(_) => None,
                    })
                    .collect();
                self.coin_keys.combine(&v).ok().map(NodeSig::Coin)
            }
        }
    }

    /// A certificate holds iff it has exactly `n − f` echoes, its signers
    /// are in range and strictly ascending (so distinct), and every echo
    /// is its signer's Ed25519 signature over `msg`.
    fn verify(&self, key: KeyUse, msg: &[u8], sig: &NodeSig) -> bool {
        match (key, sig) {
            (KeyUse::Cert, NodeSig::Cert(m)) => {
                if m.echoes.len() != self.cert_threshold()
                    || !m.echoes.windows(2).all(|w| w[0].0 < w[1].0)
                    || m.echoes.iter().any(|(i, _)| *i as usize >= self.n())
                {
                    return false;
                }
                let signed = Self::echo_bytes(msg);
                m.echoes.iter().all(|(i, s)| self.echo_ok(*i, &signed, s))
            }
            (KeyUse::Coin, NodeSig::Coin(s)) => self.coin_keys.verify(DOMAIN, msg, s).is_ok(),
            _ => false,
        }
    }

    fn coin(&self, sig: &NodeSig) -> u64 {
        match sig {
            NodeSig::Coin(s) => gridledger_threshold::coin(s),
            // Never asked: only the coin's signature is flipped.
            NodeSig::Cert(_) => 0,
        }
    }

    fn threshold(&self, key: KeyUse) -> usize {
        match key {
            KeyUse::Cert => self.cert_threshold(),
            KeyUse::Coin => self.coin_keys.threshold(),
        }
    }
}

/// **Insecure, simulator only.** Hash-based stand-in with the same
/// interface and the properties the protocol relies on (a share verifies
/// only for its signer and message; a signature exists only from
/// `threshold` distinct valid shares; the coin is common), at a hash's
/// cost. Every replica can compute every share from the public seed, so it
/// must never protect anything real; the simulator's adversaries use only
/// their own node's share.
#[derive(Clone, Debug)]
pub struct SimCrypto {
    seed: Hash32,
    me: u32,
    n: usize,
    f: usize,
    /// Certificates of `2f + 1` shares whatever `n` is (mutation testing
    /// only, [`super::Mutation::ThirdsQuorum`]).
    #[cfg(feature = "mutants")]
    thirds_quorum: bool,
}

impl SimCrypto {
    pub fn new(seed: u64, n: usize, me: u32) -> Self {
        Self {
            seed: hash_parts(Tag("gridledger/lbft/sim-crypto/v1"), &[&seed.to_le_bytes()]),
            me,
            n,
            f: super::faults(n),
            #[cfg(feature = "mutants")]
            thirds_quorum: false,
        }
    }

    /// Plants [`super::Mutation::ThirdsQuorum`] (certificates of `2f + 1`
    /// shares); any other mutation leaves the scheme as it is.
    #[cfg(feature = "mutants")]
    pub fn with_mutation(mut self, m: Option<super::Mutation>) -> Self {
        self.thirds_quorum = m == Some(super::Mutation::ThirdsQuorum);
        self
    }

    /// Certificates: `n − f` shares ([`super::quorum`]).
    fn cert_threshold(&self) -> usize {
        #[cfg(feature = "mutants")]
        if self.thirds_quorum {
            return 2 * self.f + 1;
        }
        self.n - self.f
    }

    fn share_of(&self, key: KeyUse, signer: u32, msg: &[u8]) -> Hash32 {
        let k = [key as u8];
        hash_parts(Tag("gridledger/lbft/sim-share/v1"), &[&self.seed.0, &k, &signer.to_le_bytes(), msg])
    }

    fn sig_of(&self, key: KeyUse, msg: &[u8]) -> Hash32 {
        let k = [key as u8];
        hash_parts(Tag("gridledger/lbft/sim-sig/v1"), &[&self.seed.0, &k, msg])
    }
}

/// A [`SimCrypto`] share or signature (a hash).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SimSig {
    pub tag: Hash32,
}

impl ThresholdCrypto for SimCrypto {
    type Share = SimSig;
    type Sig = SimSig;

    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> SimSig {
        SimSig { tag: self.share_of(key, self.me, msg) }
    }

    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &SimSig) -> bool {
        (signer as usize) < self.n && share.tag == self.share_of(key, signer, msg)
    }

    fn combine(&self, key: KeyUse, msg: &[u8], shares: &[(u32, SimSig)]) -> Option<SimSig> {
        let mut seen = std::collections::BTreeSet::new();
        if shares.iter().any(|(i, _)| *i as usize >= self.n || !seen.insert(*i)) || shares.len() < self.threshold(key) {
            return None;
        }
        // Like interpolation: the unique signature if the shares used are
        // valid, something that does not verify otherwise.
        let used = &shares[..self.threshold(key)];
        if used.iter().all(|(i, s)| self.verify_share(key, *i, msg, s)) {
            Some(SimSig { tag: self.sig_of(key, msg) })
        } else {
            let parts: Vec<&[u8]> = used.iter().map(|(_, s)| &s.tag.0[..]).collect();
            Some(SimSig { tag: hash_parts(Tag("gridledger/lbft/sim-bad/v1"), &parts) })
        }
    }

    fn verify(&self, key: KeyUse, msg: &[u8], sig: &SimSig) -> bool {
        sig.tag == self.sig_of(key, msg)
    }

    fn coin(&self, sig: &SimSig) -> u64 {
        u64::from_le_bytes(sig.tag.0[..8].try_into().unwrap_or([0; 8]))
    }

    fn threshold(&self, key: KeyUse) -> usize {
        match key {
            KeyUse::Cert => self.cert_threshold(),
            KeyUse::Coin => self.f + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lbft::echo_statement;
    use rand::SeedableRng;

    const INST: Hash32 = Hash32([0x42; 32]);

    fn dealt(seed: u64) -> Vec<NodeCrypto> {
        NodeCrypto::deal(4, &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed)).expect("dealt")
    }

    fn stmt(epoch: u64, digest: u8) -> Vec<u8> {
        echo_statement(&INST, epoch, 0, &Hash32([digest; 32]))
    }

    fn echoes(cs: &[NodeCrypto], signers: &[u32], msg: &[u8]) -> Vec<(u32, NodeShare)> {
        signers.iter().map(|&i| (i, cs[i as usize].sign_share(KeyUse::Cert, msg))).collect()
    }

    fn cert_of(cs: &[NodeCrypto], signers: &[u32], msg: &[u8]) -> MultiSig {
        let echoes = signers
            .iter()
            .map(|&i| match cs[i as usize].sign_share(KeyUse::Cert, msg) {
                NodeShare::Echo(s) => (i, s),
                NodeShare::Coin(_) => unreachable!("a Cert share is an echo"),
            })
            .collect();
        MultiSig { echoes }
    }

    #[test]
    fn a_certificate_of_two_f_plus_one_echoes_verifies_and_combine_makes_it_canonical() {
        let cs = dealt(1);
        let msg = stmt(3, 7);
        // Given out of order and with one more echo than needed: the three
        // lowest signers, ascending.
        let sig = cs[0].combine(KeyUse::Cert, &msg, &echoes(&cs, &[3, 1, 2, 0], &msg)).expect("combines");
        assert_eq!(sig, NodeSig::Cert(cert_of(&cs, &[0, 1, 2], &msg)));
        for c in &cs {
            assert!(c.verify(KeyUse::Cert, &msg, &sig), "every replica accepts it");
        }
        // Another subset is another (equally valid) certificate.
        let other = NodeSig::Cert(cert_of(&cs, &[1, 2, 3], &msg));
        assert_ne!(other, sig);
        assert!(cs[3].verify(KeyUse::Cert, &msg, &other));
        assert_eq!(cs[0].combine(KeyUse::Cert, &msg, &echoes(&cs, &[0, 1], &msg)), None, "two echoes are too few");
        // Each share verifies for its signer and message only.
        let share = cs[2].sign_share(KeyUse::Cert, &msg);
        assert!(cs[0].verify_share(KeyUse::Cert, 2, &msg, &share));
        assert!(!cs[0].verify_share(KeyUse::Cert, 1, &msg, &share));
        assert!(!cs[0].verify_share(KeyUse::Cert, 9, &msg, &share));
        assert!(!cs[0].verify_share(KeyUse::Cert, 2, &stmt(3, 8), &share));
        assert!(!cs[0].verify_share(KeyUse::Coin, 2, &msg, &share), "an echo is no coin share");
    }

    #[test]
    fn a_certificate_with_a_repeated_signer_is_refused() {
        let cs = dealt(2);
        let msg = stmt(1, 1);
        let mut m = cert_of(&cs, &[0, 1, 2], &msg);
        m.echoes[2] = m.echoes[1];
        assert!(!cs[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(m.clone())));
        // Repeated and out of order alike.
        m.echoes = vec![m.echoes[1], m.echoes[0], m.echoes[1]];
        assert!(!cs[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(m)));
        // Not in ascending order (distinct signers, all valid): not canonical.
        let mut swapped = cert_of(&cs, &[0, 1, 2], &msg);
        swapped.echoes.swap(0, 1);
        assert!(!cs[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(swapped)));
    }

    #[test]
    fn a_certificate_with_fewer_or_more_than_two_f_plus_one_signers_is_refused() {
        let cs = dealt(3);
        let msg = stmt(1, 1);
        for signers in [&[][..], &[0], &[0, 1], &[0, 1, 2, 3]] {
            let m = cert_of(&cs, signers, &msg);
            assert!(!cs[0].verify(KeyUse::Cert, &msg, &NodeSig::Cert(m)), "{signers:?}");
        }
    }

    /// Certificates need `n − f` echoes for every `n` (attack r20 [1]):
    /// with `n = 5` or `6` (`f = 1`) three echoes (`2f + 1`) are refused,
    /// and two certificates of one slot share a correct signer.
    #[test]
    fn certificates_need_n_minus_f_echoes_for_every_n() {
        for (n, want) in [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (8, 6), (10, 7), (16, 11)] {
            assert_eq!(crate::lbft::quorum(n), want, "n = {n}");
            let f = crate::lbft::faults(n);
            assert!(2 * want - n > f, "two quorums of {n} share more than f replicas, so a correct one");
        }
        for n in [5usize, 6] {
            let cs = NodeCrypto::deal(n, &mut rand_chacha::ChaCha20Rng::seed_from_u64(n as u64)).expect("dealt");
            let msg = stmt(1, 1);
            assert_eq!(cs[0].threshold(KeyUse::Cert), n - 1);
            assert_eq!(cs[0].threshold(KeyUse::Coin), 2, "the coin stays f + 1");
            let three = cert_of(&cs, &[0, 1, 2], &msg);
            assert!(!cs[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(three)), "n = {n}: 2f + 1 echoes");
            assert!(cs[0].combine(KeyUse::Cert, &msg, &echoes(&cs, &[0, 1, 2], &msg)).is_none());
            let all: Vec<u32> = (0..n as u32).collect();
            let sig = cs[0].combine(KeyUse::Cert, &msg, &echoes(&cs, &all, &msg)).expect("n echoes");
            assert!(cs[n - 1].verify(KeyUse::Cert, &msg, &sig), "n = {n}: n − f echoes");
            let sim = SimCrypto::new(3, n, 0);
            assert_eq!(sim.threshold(KeyUse::Cert), n - 1);
            assert_eq!(sim.threshold(KeyUse::Coin), 2);
        }
    }

    #[test]
    fn a_certificate_with_an_out_of_range_signer_is_refused() {
        let cs = dealt(4);
        let msg = stmt(1, 1);
        let mut m = cert_of(&cs, &[0, 1, 2], &msg);
        // Signer 2's valid echo, claimed by index 4 (n = 4) and u32::MAX.
        for bad in [4, u32::MAX] {
            m.echoes[2].0 = bad;
            assert!(!cs[0].verify(KeyUse::Cert, &msg, &NodeSig::Cert(m.clone())), "{bad}");
        }
    }

    #[test]
    fn a_certificate_over_another_batch_or_epoch_is_refused() {
        let cs = dealt(5);
        let msg = stmt(6, 1);
        let sig = NodeSig::Cert(cert_of(&cs, &[0, 1, 2], &msg));
        assert!(cs[3].verify(KeyUse::Cert, &msg, &sig));
        assert!(!cs[3].verify(KeyUse::Cert, &stmt(6, 2), &sig), "another batch's digest");
        assert!(!cs[3].verify(KeyUse::Cert, &stmt(7, 1), &sig), "another epoch");
        assert!(!cs[3].verify(KeyUse::Cert, &echo_statement(&INST, 6, 1, &Hash32([1; 32])), &sig), "another proposer");
        // One echo of the three over another batch spoils the certificate.
        let mut mixed = cert_of(&cs, &[0, 1, 2], &msg);
        mixed.echoes[1] = cert_of(&cs, &[1], &stmt(6, 2)).echoes[0];
        assert!(!cs[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(mixed)));
        // A certificate is not a coin signature, nor the other way round.
        assert!(!cs[3].verify(KeyUse::Coin, &msg, &sig));
    }

    #[test]
    fn a_certificate_from_another_key_set_is_refused() {
        let ours = dealt(6);
        let theirs = dealt(7);
        let msg = stmt(1, 1);
        let foreign = NodeSig::Cert(cert_of(&theirs, &[0, 1, 2], &msg));
        assert!(theirs[3].verify(KeyUse::Cert, &msg, &foreign));
        assert!(!ours[3].verify(KeyUse::Cert, &msg, &foreign));
        // Two of ours and one of theirs: refused too.
        let mut mixed = cert_of(&ours, &[0, 1, 2], &msg);
        mixed.echoes[2] = cert_of(&theirs, &[2], &msg).echoes[0];
        assert!(!ours[3].verify(KeyUse::Cert, &msg, &NodeSig::Cert(mixed)));
    }

    #[test]
    fn the_coin_is_still_a_unique_threshold_signature() {
        let cs = dealt(8);
        let msg = b"coin statement";
        let shares = |who: &[u32]| -> Vec<(u32, NodeShare)> {
            who.iter().map(|&i| (i, cs[i as usize].sign_share(KeyUse::Coin, msg))).collect()
        };
        let a = cs[0].combine(KeyUse::Coin, msg, &shares(&[0, 1])).expect("f + 1 shares");
        let b = cs[1].combine(KeyUse::Coin, msg, &shares(&[2, 3])).expect("f + 1 shares");
        assert_eq!(a, b, "any f + 1 shares give the same signature");
        assert!(cs[3].verify(KeyUse::Coin, msg, &a));
        assert!(!cs[3].verify(KeyUse::Cert, msg, &a), "a coin signature is no certificate");
        assert_eq!(cs[2].coin(&a), cs[3].coin(&b));
    }

    #[test]
    fn keys_that_do_not_fit_are_refused_by_name() {
        let keys = deal_keys(4, &mut rand_chacha::ChaCha20Rng::seed_from_u64(9)).expect("dealt");
        let echo = Arc::new(keys.echo_public.clone());
        let coin = Arc::new(keys.coin_public.clone());
        let share = |i: usize| keys.coin_shares[i].clone();
        assert!(NodeCrypto::try_new(echo.clone(), coin.clone(), 1, keys.echo_secret[1], share(1)).is_ok());
        assert_eq!(
            NodeCrypto::try_new(echo.clone(), coin.clone(), 1, keys.echo_secret[2], share(1)).err(),
            Some(KeyError::EchoKeyMismatch { me: 1 })
        );
        assert_eq!(
            NodeCrypto::try_new(echo.clone(), coin.clone(), 1, keys.echo_secret[1], share(2)).err(),
            Some(KeyError::CoinShareIndex { me: 1, got: 2 })
        );
        assert_eq!(
            NodeCrypto::try_new(echo.clone(), coin.clone(), 4, keys.echo_secret[1], share(1)).err(),
            Some(KeyError::Index { me: 4, n: 4 })
        );
        let short = Arc::new(keys.echo_public[..3].to_vec());
        assert_eq!(
            NodeCrypto::try_new(short, coin, 1, keys.echo_secret[1], share(1)).err(),
            Some(KeyError::CoinMembers { n: 3, got: 4 })
        );
    }
}
