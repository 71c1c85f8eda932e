//! Verification of other validators' transaction gossip, off the driver
//! thread.
//!
//! A gossip frame carries up to `MAX_FRAME` bytes of signed transactions.
//! Decoding it and checking every signature on the driver thread let one
//! Byzantine validator delay every vote behind its frames. Here the driver
//! only hands the frame over (a bounded queue; a full queue drops it, gossip
//! is best effort) and a verifier thread checks it:
//!
//! - in growing chunks (64, then doubling), stopping as soon as more than a
//!   quarter of the signatures checked so far fail: an honest validator only
//!   gossips transactions it verified itself, so a bad signature is proof of
//!   a faulty or Byzantine sender, and a frame of them costs at most a chunk;
//! - a peer caught this way has its gossip dropped undecoded for
//!   [`GOSSIP_BAN`] (its consensus messages are unaffected).
//!
//! The peer's inbound gossip lane (`p2p`) is released only once its frame is
//! verified or dropped, so the lanes still bound the memory held.

use gridledger_ledger::{SignedTransaction, SubmitError, VerifiedTx};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::service::Shared;
use crate::validator::MAX_FRAME;

/// How long a peer caught gossiping bad signatures has its gossip dropped.
pub const GOSSIP_BAN: Duration = Duration::from_secs(30);
/// Frames waiting for the verifier; further ones are dropped.
const QUEUE: usize = 64;
/// First chunk of signatures checked before the share of failures is judged.
const FIRST_CHUNK: usize = 64;

/// The driver's handle on the verifier thread; dropping it stops the thread.
pub(crate) struct GossipVerifier {
    tx: SyncSender<(u32, Vec<u8>, Instant)>,
    shared: Arc<Shared>,
}

impl GossipVerifier {
    pub fn spawn(shared: Arc<Shared>) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(QUEUE);
        let worker = shared.clone();
        std::thread::Builder::new().name("gossip-verify".into()).spawn(move || run(&worker, rx))?;
        Ok(Self { tx, shared })
    }

    /// Hands a gossip frame (wire kind byte included) to the verifier; never blocks.
    pub fn submit(&self, from: u32, bytes: Vec<u8>) {
        match self.tx.try_send((from, bytes, Instant::now())) {
            Ok(()) => {}
            Err(TrySendError::Full((from, bytes, _)) | TrySendError::Disconnected((from, bytes, _))) => {
                tracing::debug!(from, "gossip verifier busy: frame dropped");
                self.shared.release_inbound(from, &bytes);
            }
        }
    }
}

fn run(shared: &Shared, rx: Receiver<(u32, Vec<u8>, Instant)>) {
    let mut banned: HashMap<u32, Instant> = HashMap::new();
    while let Ok((from, bytes, queued)) = rx.recv() {
        let now = Instant::now();
        crate::timeline::record(
            "gossip_dequeued",
            || serde_json::json!({ "from": from, "bytes": bytes.len(), "wait_us": (now - queued).as_micros() as u64 }),
        );
        if banned.get(&from).is_some_and(|until| *until > now) {
            shared.release_inbound(from, &bytes);
            continue;
        }
        if verify_and_admit(shared, from, bytes.get(1..).unwrap_or_default()) {
            banned.insert(from, now + GOSSIP_BAN);
        }
        shared.release_inbound(from, &bytes);
    }
}

/// Decodes a gossip frame's body, checks it ([`check_frame`]) and admits
/// what passes; true if it was abandoned for bad signatures.
pub(crate) fn verify_and_admit(shared: &Shared, from: u32, body: &[u8]) -> bool {
    let t = Instant::now();
    let mut abandoned = false;
    match gridledger_core::codec::decode::<Vec<SignedTransaction>>(body, MAX_FRAME) {
        Ok(txs) => match check_frame(txs, |c| shared.unknown_txs(c), |t| shared.rules.check_decoded(t)) {
            Ok(checked) => {
                let n = checked.len();
                let admitted = shared.admit_gossiped(checked);
                crate::timeline::record("gossip_verified", || {
                    serde_json::json!({
                        "from": from, "checked": n, "admitted": admitted, "us": t.elapsed().as_micros() as u64,
                    })
                });
            }
            Err(Abandoned { checked, bad }) => {
                abandoned = true;
                shared.metrics.faults.fetch_add(1, Relaxed);
                tracing::warn!(
                    from,
                    checked,
                    bad,
                    "gossip with bad signatures: dropping this peer's gossip for {}s",
                    GOSSIP_BAN.as_secs()
                );
            }
        },
        Err(e) => tracing::warn!(from, "undecodable transaction gossip: {e}"),
    }
    crate::validator::add_us(&shared.metrics.pbft_gossip_us, t);
    abandoned
}

/// A frame given up on: more than a quarter of its checked signatures failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Abandoned {
    pub checked: usize,
    pub bad: usize,
}

/// Checks a frame in chunks of 64, 64, 128, 256, ... (in parallel within a
/// chunk), giving up once more than a quarter of those checked so far carry
/// a bad signature. Other refusals (fee, size) are not counted: honest
/// validators may disagree on those after a configuration change. Each
/// chunk first passes through `unknown`, which drops what need not be
/// checked (per chunk, so a frame abandoned early costs little).
pub(crate) fn check_frame(
    txs: Vec<SignedTransaction>,
    mut unknown: impl FnMut(Vec<SignedTransaction>) -> Vec<SignedTransaction>,
    check: impl Fn(SignedTransaction) -> Result<VerifiedTx, SubmitError> + Sync,
) -> Result<Vec<Result<VerifiedTx, SubmitError>>, Abandoned> {
    use rayon::prelude::*;
    let mut out = Vec::with_capacity(txs.len());
    let mut bad = 0usize;
    let mut rest = txs.into_iter();
    loop {
        let size = out.len().max(FIRST_CHUNK);
        let chunk: Vec<_> = rest.by_ref().take(size).collect();
        if chunk.is_empty() {
            return Ok(out);
        }
        let chunk = unknown(chunk);
        let results: Vec<_> = chunk.into_par_iter().with_min_len(16).map(&check).collect();
        bad += results.iter().filter(|r| matches!(r, Err(SubmitError::BadSignature))).count();
        out.extend(results);
        if bad * 4 > out.len() {
            return Err(Abandoned { checked: out.len(), bad });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_core::Amount;
    use gridledger_ledger::devnet::{dev_key, transfer};
    use std::sync::atomic::AtomicUsize;

    fn frame(good: usize, bad: usize) -> Vec<SignedTransaction> {
        let t = transfer(&dev_key(1), 1, 0, dev_key(2).address(), Amount(1), Amount(1));
        let mut v = Vec::new();
        for n in 0..good as u64 {
            v.push(transfer(&dev_key(1), 1, n, dev_key(2).address(), Amount(1), Amount(1)));
        }
        for n in 0..bad as u64 {
            let mut x = t.clone();
            x.tx.nonce = 1_000 + n; // signature no longer matches
            v.push(x);
        }
        v
    }

    #[test]
    fn a_frame_of_bad_signatures_is_abandoned_after_the_first_chunk() {
        let calls = AtomicUsize::new(0);
        let r = check_frame(
            frame(0, 5_000),
            |c| c,
            |t| {
                calls.fetch_add(1, Relaxed);
                t.check_stateless(1, u64::MAX)
            },
        );
        assert_eq!(r.unwrap_err(), Abandoned { checked: FIRST_CHUNK, bad: FIRST_CHUNK });
        assert_eq!(calls.load(Relaxed), FIRST_CHUNK, "only the first chunk was verified");
    }

    #[test]
    fn an_honest_frame_is_checked_entirely_and_a_few_bad_ones_are_tolerated() {
        let r = check_frame(frame(300, 0), |c| c, |t| t.check_stateless(1, u64::MAX)).unwrap();
        assert_eq!(r.len(), 300);
        assert!(r.iter().all(|r| r.is_ok()));
        // A bad tail longer than a quarter of what was checked is caught when reached.
        let r = check_frame(frame(192, 200), |c| c, |t| t.check_stateless(1, u64::MAX));
        assert!(r.is_err());
        let r = check_frame(frame(192, 10), |c| c, |t| t.check_stateless(1, u64::MAX)).unwrap();
        assert_eq!(r.iter().filter(|r| matches!(r, Err(SubmitError::BadSignature))).count(), 10);
    }

    /// Gossip that the blocks outran (already committed) or that is already
    /// pending here is not verified again; fresh transactions are.
    #[test]
    fn gossip_already_pending_or_committed_is_not_verified_again() {
        use gridledger_ledger::devnet::{dev_genesis, dev_validator};
        let shared = crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000), &[dev_validator(0)]));
        let txs = frame(4, 0);
        // Nonces 0 and 1 committed, 2 pending, 3 fresh.
        {
            let mut chain = shared.chain();
            for t in &txs[..2] {
                chain.admit(shared.rules.check_decoded(t.clone()).unwrap()).unwrap();
            }
            let (ex, _) = chain.build_block(&dev_validator(0).public(), u64::MAX / 2);
            assert_eq!(ex.block.txs.len(), 2);
            chain.commit(ex).unwrap();
            chain.admit(shared.rules.check_decoded(txs[2].clone()).unwrap()).unwrap();
        }
        let left = shared.unknown_txs(txs.clone());
        assert_eq!(left, vec![txs[3].clone()]);
    }
}
