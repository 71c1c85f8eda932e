//! Replicas and π^τ instances built the same way by several attack rounds
//! on the leaderless BFT.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::sim::SimTx;
use gridledger_consensus::lbft::txm::{PiTau, PiTauConfig, TbgConfig, Theta};
use gridledger_consensus::lbft::{
    echo_statement, Batch, CertifiedBatch, Config, DeliveredEpoch, Durable, KeyUse, Message, Replica, SimCrypto,
    Target, ThresholdCrypto,
};
use gridledger_core::Hash32;

/// A replica (0 of 4) holding `epochs` delivered epochs, each with one
/// batch of `txs` distinct transactions of `bytes` bytes per proposer.
pub fn loaded_replica(epochs: u64, txs: usize, bytes: usize) -> Replica<SimCrypto> {
    let n = 4;
    let instance = Hash32([0x1b; 32]);
    let mut delivered = Vec::new();
    for e in 0..epochs {
        let mut batches = Vec::new();
        for p in 0..n as u32 {
            let txs: Vec<Vec<u8>> = (0..txs)
                .map(|c| {
                    let mut t = SimTx { origin: p, counter: e << 32 | c as u64 }.bytes();
                    t.resize(bytes, 0xab);
                    t
                })
                .collect();
            let batch = Batch::new(txs);
            let digest = batch.digest(&instance, e, p);
            // The replica restores its log without checking certificates
            // (its own store vouches for them); any signature does here.
            let sig = SimSig { tag: digest };
            batches.push(CertifiedBatch { proposer: p, digest, sig, batch });
        }
        delivered.push(DeliveredEpoch { epoch: e, batches });
    }
    let durable = Durable { delivered, ..Durable::default() };
    Replica::new(Config::new(n, 0, instance), SimCrypto::new(1, n, 0), durable)
}

/// The batch bytes of the `Sync` answers among `msgs`.
pub fn sync_bytes(msgs: &[(Target, Message<SimSig, SimSig>)]) -> usize {
    msgs.iter()
        .filter_map(|(_, m)| match m {
            Message::Sync { delivered } => Some(delivered.batches.iter().map(|b| b.batch.bytes()).sum::<usize>()),
            _ => None,
        })
        .sum()
}

/// π^τ at replica 0 of 10 with τ = 4 in two groups, κ = 2.
pub fn pi_tau(theta: Theta, max_pending: usize) -> PiTau {
    let tbg = TbgConfig { tau: 4, groups: 2, kappa: 2, batch: 100, max_stored: 1_000 };
    PiTau::new(PiTauConfig { replicas: 10, me: 0, theta, genesis: Hash32([7; 32]), max_pending, tbg })
        .expect("valid configuration")
}

/// [`SimCrypto`] counting the certificate (and coin) signatures verified.
#[derive(Clone, Debug)]
pub struct Counting {
    pub inner: SimCrypto,
    pub verified: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ThresholdCrypto for Counting {
    type Share = <SimCrypto as ThresholdCrypto>::Share;
    type Sig = SimSig;
    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> Self::Share {
        self.inner.sign_share(key, msg)
    }
    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &Self::Share) -> bool {
        self.inner.verify_share(key, signer, msg, share)
    }
    fn combine(&self, key: KeyUse, msg: &[u8], shares: &[(u32, Self::Share)]) -> Option<SimSig> {
        self.inner.combine(key, msg, shares)
    }
    fn verify(&self, key: KeyUse, msg: &[u8], sig: &SimSig) -> bool {
        self.verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.verify(key, msg, sig)
    }
    fn coin(&self, sig: &SimSig) -> u64 {
        self.inner.coin(sig)
    }
    fn threshold(&self, key: KeyUse) -> usize {
        self.inner.threshold(key)
    }
}

/// The simulated threshold keys of `n` replicas (seed `seed`) and the
/// instance whose batches they certify.
pub struct Keys {
    pub seed: u64,
    pub n: usize,
    pub instance: Hash32,
}

impl Keys {
    /// Replica `me`'s keys.
    pub fn crypto(&self, me: u32) -> SimCrypto {
        SimCrypto::new(self.seed, self.n, me)
    }

    /// A genuine certificate: `2f + 1` echo shares of replicas 0..3 combined.
    pub fn certify(&self, epoch: u64, proposer: u32, digest: &Hash32) -> SimSig {
        let msg = echo_statement(&self.instance, epoch, proposer, digest);
        let shares: Vec<(u32, SimSig)> =
            (0..3u32).map(|i| (i, self.crypto(i).sign_share(KeyUse::Cert, &msg))).collect();
        let sig = self.crypto(0).combine(KeyUse::Cert, &msg, &shares).expect("three shares combine");
        assert!(self.crypto(0).verify(KeyUse::Cert, &msg, &sig), "the certificate verifies");
        sig
    }
}
