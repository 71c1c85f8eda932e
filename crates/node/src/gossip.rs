//! Verification of other validators' transaction gossip, off the driver
//! thread.
//!
//! A gossip frame carries up to `MAX_FRAME` bytes of signed transactions.
//! Decoding it and checking every signature on the driver thread let one
//! Byzantine validator delay every vote behind its frames. Here the driver
//! only hands the frame over (a bounded queue; a full queue drops it, gossip
//! is best effort) and a verifier thread checks it:
//!
//! - in growing chunks (64, then doubling up to 128), stopping as soon as more than a
//!   quarter of the signatures checked so far fail: an honest validator only
//!   gossips transactions it verified itself, so a bad signature is proof of
//!   a faulty or Byzantine sender, and a frame of them costs at most a chunk;
//! - a peer caught this way has its gossip dropped undecoded for
//!   [`GOSSIP_BAN`] (its consensus messages are unaffected);
//! - frames that queued while the last batch was checked (up to 8) are
//!   checked together, in parallel, and admitted in arrival order (a
//!   sender's nonces split over two frames of one peer stay in order), so
//!   the verifier keeps up with bursts instead of working through the
//!   queue one frame at a time;
//! - proposal validation goes first: before each chunk the verifier waits
//!   while a proposal is being validated ([`Shared::yield_to_validation`]),
//!   so the signatures the next votes wait for are not queued on the rayon
//!   pool behind gossip's (which only pre-verifies what a later proposal
//!   may carry, and then skips what the validation admitted);
//! - transactions already verified here are skipped: pending in the
//!   mempool (admitted from a client, from gossip, or from a proposal this
//!   node validated, see [`crate::validator::validate_proposal`]) or
//!   already committed. Each signature is verified once per validator.
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
/// Queued frames verified together (in parallel, a thread each) at most.
const BATCH: usize = 8;
/// First chunk of signatures checked before the share of failures is judged.
const FIRST_CHUNK: usize = 64;
/// Largest chunk (chunks double from [`FIRST_CHUNK`]): between two chunks
/// verification yields to proposal validation, so this bounds how long a
/// validation's signature checks wait on the rayon pool behind gossip's.
const MAX_CHUNK: usize = 128;

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
    while let Ok(first) = rx.recv() {
        // Whatever queued meanwhile is verified together, in parallel.
        let queued: Vec<_> = std::iter::once(first).chain(rx.try_iter().take(BATCH - 1)).collect();
        let now = Instant::now();
        let mut batch = Vec::with_capacity(queued.len());
        for (from, bytes, queued) in queued {
            crate::timeline::record(
                "gossip_dequeued",
                || serde_json::json!({ "from": from, "bytes": bytes.len(), "wait_us": (now - queued).as_micros() as u64 }),
            );
            if banned.get(&from).is_some_and(|until| *until > now) {
                shared.release_inbound(from, &bytes);
            } else {
                batch.push((from, bytes));
            }
        }
        for from in verify_and_admit_batch(shared, &batch) {
            banned.insert(from, now + GOSSIP_BAN);
        }
        for (from, bytes) in &batch {
            shared.release_inbound(*from, bytes);
        }
    }
}

/// Verifies several gossip frames (wire kind byte included) in parallel,
/// then admits what passed frame by frame in arrival order, so a sender's
/// consecutive nonces split over two frames of one peer are admitted in
/// order. Returns the peers caught gossiping bad signatures; their later
/// frames in the same batch are dropped unadmitted.
///
/// Each frame gets a scoped thread of its own, not a rayon task: checking
/// a frame takes the chain's lock (to skip what is known), and holders of
/// that lock run rayon jobs (block validation, commits), so rayon workers
/// waiting for the lock deadlocked the pool (found by the 10-process
/// bench). The signature checks themselves still run on rayon, unlocked.
pub(crate) fn verify_and_admit_batch(shared: &Shared, frames: &[(u32, Vec<u8>)]) -> Vec<u32> {
    let verdicts: Vec<(Verdict, Instant)> = std::thread::scope(|scope| {
        let handles: Vec<_> = frames
            .iter()
            .map(|(_, bytes)| {
                scope.spawn(move || {
                    let t = Instant::now();
                    (verify_frame(shared, bytes.get(1..).unwrap_or_default()), t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (Verdict::Undecodable("verifier panicked".into()), Instant::now())))
            .collect()
    });
    let mut caught = Vec::new();
    for ((from, _), (verdict, t)) in frames.iter().zip(verdicts) {
        if caught.contains(from) {
            continue;
        }
        if admit_verdict(shared, *from, verdict, t) {
            caught.push(*from);
        }
    }
    caught
}

/// What checking one gossip frame found.
pub(crate) enum Verdict {
    Checked(Vec<Result<VerifiedTx, SubmitError>>),
    Abandoned(Abandoned),
    Undecodable(String),
}

/// Decodes a gossip frame's body and checks it ([`check_frame`]), skipping
/// what this node already verified; admits nothing.
pub(crate) fn verify_frame(shared: &Shared, body: &[u8]) -> Verdict {
    debug_assert!(
        rayon::current_thread_index().is_none(),
        "the chain's lock must not be taken on a rayon worker (its holders wait for rayon)"
    );
    match gridledger_core::codec::decode::<Vec<SignedTransaction>>(body, MAX_FRAME) {
        Ok(txs) => {
            // Before each chunk: a proposal being validated goes first.
            let unknown = |c| {
                shared.yield_to_validation();
                shared.unknown_txs(c)
            };
            let r = check_frame(txs, unknown, |t| shared.rules.check_decoded(t));
            let checked = match &r {
                Ok(c) => c.len(),
                Err(a) => a.checked,
            };
            shared.metrics.pbft_gossip_signatures.fetch_add(checked as u64, Relaxed);
            match r {
                Ok(c) => Verdict::Checked(c),
                Err(a) => Verdict::Abandoned(a),
            }
        }
        Err(e) => Verdict::Undecodable(e.to_string()),
    }
}

/// Admits what a frame's check passed; true if the frame was abandoned for
/// bad signatures. `t`: when its check started.
fn admit_verdict(shared: &Shared, from: u32, verdict: Verdict, t: Instant) -> bool {
    let mut abandoned = false;
    match verdict {
        Verdict::Checked(checked) => {
            let n = checked.len();
            let admitted = shared.admit_gossiped(checked);
            crate::timeline::record("gossip_verified", || {
                serde_json::json!({
                    "from": from, "checked": n, "admitted": admitted, "us": t.elapsed().as_micros() as u64,
                })
            });
        }
        Verdict::Abandoned(Abandoned { checked, bad }) => {
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
        Verdict::Undecodable(e) => tracing::warn!(from, "undecodable transaction gossip: {e}"),
    }
    crate::validator::add_us(&shared.metrics.pbft_gossip_us, t);
    abandoned
}

/// Decodes a gossip frame's body, checks it ([`check_frame`]) and admits
/// what passes; true if it was abandoned for bad signatures.
pub(crate) fn verify_and_admit(shared: &Shared, from: u32, body: &[u8]) -> bool {
    let t = Instant::now();
    admit_verdict(shared, from, verify_frame(shared, body), t)
}

/// A frame given up on: more than a quarter of its checked signatures failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Abandoned {
    pub checked: usize,
    pub bad: usize,
}

/// Checks a frame in chunks of 64, 64, 128, 128, ... (in parallel within a
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
        let size = out.len().clamp(FIRST_CHUNK, MAX_CHUNK);
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

    /// A block of `n` transfers from account 1 (nonces from 0), as the
    /// leader (validator 0) proposes it on its own copy of the chain.
    fn proposal(n: u64) -> (Vec<SignedTransaction>, gridledger_ledger::Block) {
        use gridledger_ledger::devnet::{dev_genesis, dev_validator};
        let leader = crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000_000), &[dev_validator(0)]));
        let txs = frame(n as usize, 0);
        let mut chain = leader.chain();
        for t in &txs {
            chain.admit(leader.rules.check_decoded(t.clone()).unwrap()).unwrap();
        }
        let block = chain.build_block(&dev_validator(0).public(), 1_000).0.block;
        assert_eq!(block.txs.len(), n as usize);
        (txs, block)
    }

    fn follower() -> Arc<Shared> {
        use gridledger_ledger::devnet::{dev_genesis, dev_validator};
        crate::service::Shared::in_memory(dev_genesis(1, 4, Amount(1_000_000_000), &[dev_validator(0)]))
    }

    fn wire(txs: &[SignedTransaction]) -> Vec<u8> {
        let mut bytes = vec![crate::validator::WIRE_TXS];
        bytes.extend(gridledger_core::codec::encode(&txs.to_vec()));
        bytes
    }

    /// `t` with another transaction's signature: the same hash, a bad signature.
    fn forged(t: &SignedTransaction) -> SignedTransaction {
        let other = transfer(&dev_key(1), 1, 9_999, dev_key(3).address(), Amount(7), Amount(1));
        SignedTransaction { tx: t.tx.clone(), signature: other.signature }
    }

    /// Issue 9 item 10: validating a proposal verifies its signatures once;
    /// the same transactions arriving afterwards by gossip (the block not
    /// yet committed) and the same block proposed again are not verified a
    /// second time. Before, gossip re-verified every one of them.
    #[test]
    fn a_transaction_verified_by_validation_is_never_verified_again() {
        let (txs, block) = proposal(40);
        let shared = follower();
        let m = &shared.metrics;
        crate::validator::validate_proposal(&shared, &block).expect("a valid proposal");
        assert_eq!(m.pbft_validate_signatures.load(Relaxed), 40, "each signature verified once");
        assert_eq!(shared.chain().tip().height, 0, "validated, not committed");
        // The gossip that the proposal outran.
        let checks = AtomicUsize::new(0);
        let r = check_frame(
            txs.clone(),
            |c| shared.unknown_txs(c),
            |t| {
                checks.fetch_add(1, Relaxed);
                shared.rules.check_decoded(t)
            },
        )
        .unwrap();
        assert!(r.is_empty());
        assert_eq!(checks.load(Relaxed), 0, "gossip verified nothing already verified");
        assert!(!verify_and_admit(&shared, 1, &wire(&txs)[1..]));
        assert_eq!(m.pbft_gossip_signatures.load(Relaxed), 0);
        // The same block again (e.g. re-proposed after a view change).
        crate::validator::validate_proposal(&shared, &block).expect("still valid");
        assert_eq!(m.pbft_validate_signatures.load(Relaxed), 40, "nothing verified twice");
        // Transactions gossip verified first are not verified by validation either.
        let (txs2, block2) = proposal(50);
        let shared2 = follower();
        assert!(!verify_and_admit(&shared2, 1, &wire(&txs2[..30])[1..]));
        crate::validator::validate_proposal(&shared2, &block2).unwrap();
        assert_eq!(shared2.metrics.pbft_gossip_signatures.load(Relaxed), 30);
        assert_eq!(shared2.metrics.pbft_validate_signatures.load(Relaxed), 20);
    }

    /// A bad signature is refused on every path, also for a transaction
    /// whose valid twin (same hash) was verified before: a proposal
    /// carrying it (and nothing of that proposal is admitted), gossip
    /// carrying it after the valid twin was validated, a client submitting
    /// it, and a proposal carrying it after gossip admitted the valid twin.
    #[test]
    fn a_bad_signature_is_refused_on_every_path() {
        let (txs, block) = proposal(40);
        let bad = forged(&txs[7]);
        assert_eq!(bad.hash(), txs[7].hash());
        // Proposal path: refused, nothing admitted.
        let shared = follower();
        let mut poisoned = block.clone();
        poisoned.txs[7] = bad.clone();
        let err = crate::validator::validate_proposal(&shared, &poisoned).unwrap_err();
        assert!(err.to_string().contains(&txs[7].hash().to_string()), "{err}");
        assert_eq!(shared.chain().mempool().len(), 0, "a refused proposal admits nothing");
        // Gossip path, after the valid block was validated.
        crate::validator::validate_proposal(&shared, &block).unwrap();
        let before = shared.chain().mempool().len();
        assert!(verify_and_admit(&shared, 1, &wire(std::slice::from_ref(&bad))[1..]), "the forgery is caught");
        assert_eq!(shared.metrics.pbft_gossip_signatures.load(Relaxed), 1, "checked, not skipped");
        assert_eq!(shared.chain().mempool().len(), before);
        assert!(shared.chain().mempool().holds(&txs[7]), "the valid twin stays");
        // Client path.
        assert_eq!(shared.rules.check_decoded(bad.clone()).unwrap_err(), SubmitError::BadSignature);
        // Proposal path after gossip admitted the valid twin.
        let shared2 = follower();
        assert!(!verify_and_admit(&shared2, 1, &wire(&txs)[1..]));
        assert!(crate::validator::validate_proposal(&shared2, &poisoned).is_err());
        assert_eq!(shared2.metrics.pbft_validate_signatures.load(Relaxed), 1, "only the forgery needed a check");
    }

    /// Issue 9 item 10: gossip verification does not compete with a
    /// proposal's validation. While one is under way a gossip frame checks
    /// no signature (it waits before its first chunk); once the validation
    /// is done it goes on and admits the frame.
    #[test]
    fn gossip_verification_waits_while_a_proposal_is_validated() {
        let shared = follower();
        let txs = frame(10, 0);
        let validating = shared.validating();
        let verifier = {
            let shared = shared.clone();
            std::thread::spawn(move || verify_and_admit(&shared, 1, &wire(&txs)[1..]))
        };
        // Readiness signal: the verifier reached its first chunk and paused.
        while shared.metrics.pbft_gossip_yields.load(Relaxed) == 0 {
            assert!(!verifier.is_finished(), "gossip was verified without waiting for the validation");
            std::thread::yield_now();
        }
        assert_eq!(shared.metrics.pbft_gossip_signatures.load(Relaxed), 0, "nothing checked while validating");
        assert_eq!(shared.chain().mempool().len(), 0);
        drop(validating);
        assert!(!verifier.join().unwrap());
        assert_eq!(shared.metrics.pbft_gossip_signatures.load(Relaxed), 10);
        assert_eq!(shared.chain().mempool().len(), 10, "admitted once the validation was done");
        // With no validation under way it never waits.
        assert!(!verify_and_admit(&shared, 1, &wire(&frame(12, 0)[10..])[1..]));
        assert_eq!(shared.metrics.pbft_gossip_yields.load(Relaxed), 1);
    }

    /// Frames queued together are verified in parallel but admitted in
    /// arrival order: one sender's nonces split over two frames of one peer
    /// all get in. A peer caught with bad signatures has its later frames
    /// in the batch dropped; other peers' frames are unaffected.
    #[test]
    fn frames_verified_together_are_admitted_in_arrival_order() {
        let shared = follower();
        let txs = frame(200, 0);
        let bad = frame(0, 100);
        let other = |n: u64| transfer(&dev_key(2), 1, n, dev_key(3).address(), Amount(1), Amount(1));
        let frames = vec![
            (1, wire(&txs[..100])),
            (2, wire(&bad)),
            (1, wire(&txs[100..])),
            (2, wire(&[other(0)])),
            (3, wire(&[other(0), other(1)])),
        ];
        let caught = verify_and_admit_batch(&shared, &frames);
        assert_eq!(caught, vec![2]);
        let chain = shared.chain();
        assert_eq!(chain.next_nonce(&dev_key(1).address()), 200, "both frames of peer 1 admitted, in order");
        assert_eq!(chain.next_nonce(&dev_key(2).address()), 2, "peer 3's frame admitted, peer 2's dropped");
        assert_eq!(chain.mempool().len(), 202);
    }
}
