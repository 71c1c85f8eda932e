//! The threshold cryptography the leaderless broadcast needs, behind one
//! trait so the same protocol code runs with BLS12-381
//! ([`BlsCrypto`], `gridledger-threshold`) on real nodes and with a cheap
//! stand-in ([`SimCrypto`]) in the simulator's thousand-seed sweeps, where a
//! pairing per share would cost minutes per run. The simulator also runs a
//! smaller sweep with [`BlsCrypto`], so the real scheme is exercised too.
//!
//! Two thresholds: certificates need `2f + 1` shares (two certificates for
//! different batches of one proposer would need a correct replica to sign
//! both), the common coin `f + 1` (one correct share makes it
//! unpredictable, and replicas that stopped after deciding are not needed
//! to flip it).

use std::fmt::Debug;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::Hash32;
use gridledger_threshold::{KeyShare, PublicKeySet};

/// Which key a share or signature belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// Batch certificates (`2f + 1`).
    Cert,
    /// The common coin (`f + 1`).
    Coin,
}

/// Threshold signing as the protocol uses it. Shares are not verified by
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

/// BLS12-381 threshold signatures: one key set for certificates and one
/// for the coin, and this replica's share of each.
#[derive(Clone)]
pub struct BlsCrypto {
    pub cert_keys: Arc<PublicKeySet>,
    pub coin_keys: Arc<PublicKeySet>,
    cert_share: Arc<KeyShare>,
    coin_share: Arc<KeyShare>,
}

impl Debug for BlsCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlsCrypto").field("cert_keys", &self.cert_keys).finish_non_exhaustive()
    }
}

impl BlsCrypto {
    /// A replica's view: both public key sets and its share of each.
    pub fn new(
        cert_keys: Arc<PublicKeySet>,
        coin_keys: Arc<PublicKeySet>,
        cert_share: KeyShare,
        coin_share: KeyShare,
    ) -> Self {
        Self { cert_keys, coin_keys, cert_share: Arc::new(cert_share), coin_share: Arc::new(coin_share) }
    }

    /// Deals keys for `n = 3f + 1` replicas (trusted dealer, see
    /// `gridledger_threshold::deal`): one [`BlsCrypto`] per replica.
    pub fn deal<R: rand::RngCore + rand::CryptoRng>(
        n: usize,
        rng: &mut R,
    ) -> Result<Vec<Self>, gridledger_threshold::ThresholdError> {
        let f = n.saturating_sub(1) / 3;
        let (cert_pk, cert_sk) = gridledger_threshold::deal(n, 2 * f + 1, rng)?;
        let (coin_pk, coin_sk) = gridledger_threshold::deal(n, f + 1, rng)?;
        let (cert_pk, coin_pk) = (Arc::new(cert_pk), Arc::new(coin_pk));
        Ok(cert_sk.into_iter().zip(coin_sk).map(|(c, k)| Self::new(cert_pk.clone(), coin_pk.clone(), c, k)).collect())
    }

    fn keys(&self, key: KeyUse) -> &PublicKeySet {
        match key {
            KeyUse::Cert => &self.cert_keys,
            KeyUse::Coin => &self.coin_keys,
        }
    }
}

impl ThresholdCrypto for BlsCrypto {
    type Share = gridledger_threshold::SignatureShare;
    type Sig = gridledger_threshold::Signature;

    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> Self::Share {
        match key {
            KeyUse::Cert => self.cert_share.sign_share(DOMAIN, msg),
            KeyUse::Coin => self.coin_share.sign_share(DOMAIN, msg),
        }
    }

    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &Self::Share) -> bool {
        self.keys(key).verify_share(signer as usize, DOMAIN, msg, share).is_ok()
    }

    fn combine(&self, key: KeyUse, _msg: &[u8], shares: &[(u32, Self::Share)]) -> Option<Self::Sig> {
        let v: Vec<(usize, Self::Share)> = shares.iter().map(|(i, s)| (*i as usize, *s)).collect();
        self.keys(key).combine(&v).ok()
    }

    fn verify(&self, key: KeyUse, msg: &[u8], sig: &Self::Sig) -> bool {
        self.keys(key).verify(DOMAIN, msg, sig).is_ok()
    }

    fn coin(&self, sig: &Self::Sig) -> u64 {
        gridledger_threshold::coin(sig)
    }

    fn threshold(&self, key: KeyUse) -> usize {
        self.keys(key).threshold()
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
}

impl SimCrypto {
    pub fn new(seed: u64, n: usize, me: u32) -> Self {
        Self {
            seed: hash_parts(Tag("gridledger/lbft/sim-crypto/v1"), &[&seed.to_le_bytes()]),
            me,
            n,
            f: n.saturating_sub(1) / 3,
        }
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
            KeyUse::Cert => 2 * self.f + 1,
            KeyUse::Coin => self.f + 1,
        }
    }
}
