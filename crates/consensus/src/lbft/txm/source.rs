//! The baselines as a [`BatchSource`] for P^ABC: any [`BatchPolicy`] over
//! signed transactions, with only Rule-1's signature check on admission —
//! HSM and random selection have no π^τ rules, which is what the TF and TM
//! attacks exploit (§4.3.4).

use std::sync::Arc;

use gridledger_core::Hash32;

use super::batch::{BatchPolicy, BatchSource, Placement};
use super::pi_tau::{Admitted, Invalid, Rejection};
use super::tx::{LbftTx, MAX_REQUEST};

/// A baseline policy fed with signed transactions.
pub struct PolicySource<P> {
    policy: P,
}

impl<P: BatchPolicy<Admitted>> PolicySource<P> {
    pub fn new(policy: P) -> Self {
        Self { policy }
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Admits `tx` at `at` (HSM: `slot` = [`super::hsm_space`] of the
    /// client's timestamp; random: any). The signature is checked once.
    pub fn admit(&mut self, tx: LbftTx, at: Placement) -> Result<(), Rejection> {
        self.admit_inner(tx, at, None)
    }

    /// [`PolicySource::admit`] for a transaction whose signature the caller
    /// has already checked (`signature_ok` is the verdict; not checked again).
    pub fn admit_checked(&mut self, tx: LbftTx, at: Placement, signature_ok: bool) -> Result<(), Rejection> {
        self.admit_inner(tx, at, Some(signature_ok))
    }

    fn admit_inner(&mut self, tx: LbftTx, at: Placement, checked: Option<bool>) -> Result<(), Rejection> {
        if tx.request.len() > MAX_REQUEST {
            return Err(Rejection::Invalid(Invalid::RequestTooLarge { len: tx.request.len(), max: MAX_REQUEST }));
        }
        if !checked.unwrap_or_else(|| tx.verify_signature().is_ok()) {
            return Err(Rejection::Invalid(Invalid::BadSignature));
        }
        let id = tx.id();
        self.policy.store(at, Admitted { id, tx: Arc::new(tx) }).map_err(Rejection::Store)
    }
}

impl<P: BatchPolicy<Admitted>> BatchSource for PolicySource<P> {
    type Tx = Arc<LbftTx>;

    fn next_batch(&mut self, epoch: u64) -> Vec<Arc<LbftTx>> {
        let batch = self.policy.next_batch(epoch);
        self.policy.end_epoch(epoch);
        batch.into_iter().map(|a| a.tx).collect()
    }

    fn delivered(&mut self, _epoch: u64, _block_hash: Hash32, txs: &[Arc<LbftTx>]) {
        for tx in txs {
            self.policy.delivered(&tx.id());
        }
    }
}
