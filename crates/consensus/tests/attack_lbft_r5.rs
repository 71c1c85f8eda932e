//! Attack round 5 on the leaderless BFT (`consensus::lbft`): the fixes of
//! round 4 (failed certificates remembered per `(epoch, sender,
//! proposer)`, `Replica::try_new`), admission control and the own batch's
//! digest computed once. Each finding is a test that fails on the code it
//! was written against, ignored so the suite stays green; what held up
//! passes.
//!
//! - [2] (medium): a replayed `Val` costs a threshold-share signature per
//!   copy. `on_val` echoes at most one digest per `(epoch, proposer)`, but
//!   signs that echo share afresh each time the same `Val` arrives again
//!   (and sends it back): a Byzantine proposer replaying its 40-byte empty
//!   `Val` makes a correct replica compute one BLS share signature per
//!   message, without bound — the cost round 4 [2] removed from `Cert`s,
//!   on the signing side.
//!
//! [2] is fixed: the echo share given per `(epoch, proposer)` is kept and
//! re-sent from memory.
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r5`.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::{
    echo_statement, Batch, CertifiedBatch, Config, Durable, Fault, KeyUse, Message, Replica, SimCrypto, Target,
    ThresholdCrypto,
};
use gridledger_core::Hash32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const N: usize = 4;
const SEED: u64 = 5;

fn instance() -> Hash32 {
    Hash32([0x5e; 32])
}

fn crypto(me: u32) -> SimCrypto {
    SimCrypto::new(SEED, N, me)
}

/// [`SimCrypto`] counting the shares it signs and the signatures it verifies.
#[derive(Clone, Debug)]
struct Counting {
    inner: SimCrypto,
    signed: Arc<AtomicUsize>,
    verified: Arc<AtomicUsize>,
}

impl ThresholdCrypto for Counting {
    type Share = <SimCrypto as ThresholdCrypto>::Share;
    type Sig = SimSig;
    fn sign_share(&self, key: KeyUse, msg: &[u8]) -> Self::Share {
        self.signed.fetch_add(1, Ordering::Relaxed);
        self.inner.sign_share(key, msg)
    }
    fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &Self::Share) -> bool {
        self.inner.verify_share(key, signer, msg, share)
    }
    fn combine(&self, key: KeyUse, msg: &[u8], shares: &[(u32, Self::Share)]) -> Option<SimSig> {
        self.inner.combine(key, msg, shares)
    }
    fn verify(&self, key: KeyUse, msg: &[u8], sig: &SimSig) -> bool {
        self.verified.fetch_add(1, Ordering::Relaxed);
        self.inner.verify(key, msg, sig)
    }
    fn coin(&self, sig: &SimSig) -> u64 {
        self.inner.coin(sig)
    }
    fn threshold(&self, key: KeyUse) -> usize {
        self.inner.threshold(key)
    }
}

struct Counted {
    r: Replica<Counting>,
    signed: Arc<AtomicUsize>,
    verified: Arc<AtomicUsize>,
}

/// Replica 3 of 4, started, counting its signatures and checks.
fn counted() -> Counted {
    let signed = Arc::new(AtomicUsize::new(0));
    let verified = Arc::new(AtomicUsize::new(0));
    let c = Counting { inner: crypto(3), signed: signed.clone(), verified: verified.clone() };
    let mut r = Replica::new(Config::new(N, 3, instance()), c, Durable::default());
    let _ = r.start();
    Counted { r, signed, verified }
}

/// A genuine certificate: `2f + 1` echo shares of replicas 0..3 combined.
fn certify(epoch: u64, proposer: u32, digest: &Hash32) -> SimSig {
    let msg = echo_statement(&instance(), epoch, proposer, digest);
    let shares: Vec<(u32, SimSig)> = (0..3u32).map(|i| (i, crypto(i).sign_share(KeyUse::Cert, &msg))).collect();
    crypto(0).combine(KeyUse::Cert, &msg, &shares).expect("three shares combine")
}

// ---- [2] replayed Val: one share signature per copy -------------------------------

/// [2] Replica 0, Byzantine, sends a correct replica the same empty `Val`
/// for epoch 0 a thousand times (a few dozen bytes each). The replica
/// echoes the one digest it may echo — but signs the echo share again for
/// every copy: 1,000 share signatures (a BLS signature each on a node)
/// and 1,000 `Echo` messages back.
///
/// What should happen: an echo already given is re-sent from memory (or
/// at most once per tick), so a stream of copies costs a bounded number of
/// signatures.
#[test]
fn replayed_val_costs_a_bounded_number_of_share_signatures() {
    let mut c = counted();
    let val = Message::Val { epoch: 0, batch: Batch::new(Vec::new()) };
    let before = c.signed.load(Ordering::Relaxed);
    let mut echoes = 0;
    for _ in 0..1_000 {
        let s = c.r.handle_message(0, val.clone());
        echoes +=
            s.messages.iter().filter(|(to, m)| *to == Target::One(0) && matches!(m, Message::Echo { .. })).count();
    }
    let signed = c.signed.load(Ordering::Relaxed) - before;
    assert!(echoes >= 1, "the first copy is echoed");
    assert!(signed <= N, "1,000 copies of one Val cost {signed} echo-share signatures and {echoes} echoes sent back");
}

// ---- held up: cert_failures -------------------------------------------------------

/// Held up: a Byzantine replica's forged copies of a certificate are
/// remembered under its own index only. Replica 0 sends forged `Cert`s and
/// forged `Certified`s naming proposer 2 (and proposer 1) for every epoch
/// of the window; afterwards the genuine certificate of proposer 2,
/// relayed by replica 1 in a `Certified`, is still taken up at once.
#[test]
fn a_forged_copy_does_not_shut_out_an_honest_senders_copy() {
    let mut c = counted();
    let batch = Batch::new(vec![b"tx of proposer 2".to_vec()]);
    let digest = batch.digest(&instance(), 0, 2);
    let bad = SimSig { tag: Hash32([0xee; 32]) };
    let mut faults = 0;
    for e in 0..4u64 {
        for p in [1u32, 2] {
            for _ in 0..20 {
                let s = c.r.handle_message(0, Message::Cert { epoch: e, proposer: p, digest, sig: bad.clone() });
                faults += s.faults.len();
                let forged = CertifiedBatch { proposer: p, digest, sig: bad.clone(), batch: batch.clone() };
                let s = c.r.handle_message(0, Message::Certified { epoch: e, batch: forged });
                faults += s.faults.len();
            }
        }
    }
    assert_eq!(faults, 4 * 2, "one refusal per (epoch, proposer) for the one Byzantine sender");
    let before = c.verified.load(Ordering::Relaxed);
    let genuine = CertifiedBatch { proposer: 2, digest, sig: certify(0, 2, &digest), batch: batch.clone() };
    let s = c.r.handle_message(1, Message::Certified { epoch: 0, batch: genuine });
    assert!(s.faults.is_empty(), "the honest copy is no fault: {:?}", s.faults);
    assert_eq!(c.verified.load(Ordering::Relaxed) - before, 1, "the honest copy is checked");
    // The certificate is held now: proposer 2's agreement got its input 1
    // (our BVal(true) for instance 2 goes out).
    assert!(
        s.messages.iter().any(|(_, m)| matches!(
            m,
            Message::Aba { epoch: 0, instance: 2, round: 0, vote: gridledger_consensus::lbft::AbaVote::BVal(true) }
        )),
        "the honest certificate is taken up"
    );
}

/// Held up: the failures are bounded by the window and the membership —
/// certificates named for epochs beyond the window, for a non-member
/// proposer, or from an unknown sender are not checked at all — and an
/// epoch's entries leave with it (after delivery the same sender's valid
/// certificate of a later epoch is heard).
#[test]
fn certificate_failures_stay_within_the_window_and_the_membership() {
    let mut c = counted();
    let digest = Hash32([0x42; 32]);
    let bad = SimSig { tag: Hash32([0xee; 32]) };
    let before = c.verified.load(Ordering::Relaxed);
    for e in [4u64, 5, 1 << 20, u64::MAX] {
        let _ = c.r.handle_message(0, Message::Cert { epoch: e, proposer: 1, digest, sig: bad.clone() });
    }
    let s = c.r.handle_message(0, Message::Cert { epoch: 0, proposer: N as u32, digest, sig: bad.clone() });
    assert!(s.faults.iter().any(|f| matches!(f, Fault::Malformed { .. })));
    let s = c.r.handle_message(9, Message::Cert { epoch: 0, proposer: 1, digest, sig: bad.clone() });
    assert!(s.faults.iter().any(|f| matches!(f, Fault::UnknownSender { from: 9 })));
    assert_eq!(c.verified.load(Ordering::Relaxed) - before, 0, "nothing outside the window or membership is checked");
}
