//! Attack round 7 on the leaderless BFT (`consensus::lbft`): transaction
//! ids carried by `Txs` (hashed when a batch is decoded), batch digest
//! version 2 over the ids, and the seeded id hasher. Each finding is a test
//! that fails on the code it was written against, ignored so the suite
//! stays green; what held up passes.
//!
//! - [1] (medium): decoding a peer's message hashes every transaction of
//!   every batch in it, before any bound is checked. A Byzantine replica's
//!   `Val` (or `Certified`, or `Sync`) of one frame holding millions of
//!   empty transactions — far beyond `max_batch_txs`, refused by `on_val`
//!   only after decoding — now costs the receiver one SHA-256 and 32 bytes
//!   of ids per 4-byte entry on top of the list itself (the node decodes
//!   on its consensus thread; the bench on its socket task): the decode
//!   that refusing such a frame costs grew several-fold. The ids should be
//!   hashed once the batch passed its bounds (lazily, as for a locally
//!   built list), not while decoding.
//! - [2] (low): a log written before digest version 2 is restored
//!   silently (`Replica::try_new` and `new`; the bench's replica restores
//!   its log with `new`): the restarted replica serves its version-1
//!   records, and a lagging peer refuses each as `BadSync` from a correct
//!   replica. The node's `restore` refuses such a store, but its error
//!   blames a certificate that "does not hold", not the digest version.
//!
//! Both fixed: `Txs` hashes its ids on first use (after the bounds), and
//! `Replica::try_new` recomputes the log's digests
//! (`RestoreError::DigestVersion`).
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r7`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::{
    tx_id, Batch, CertifiedBatch, Config, Durable, Fault, MessageOf, Replica, RestoreError, SimCrypto, ThresholdCrypto,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::Hash32;

/// Counts the heap bytes live on a thread while it measures.
struct Counting;

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

fn measuring() -> bool {
    MEASURING.try_with(|m| m.get()).unwrap_or(false)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if measuring() {
            let now = LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed) + layout.size() as i64;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if measuring() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if measuring() {
            // Counted as a fresh allocation of the new size, then the old freed.
            let now = LIVE.fetch_add(new_size as i64, Ordering::Relaxed) + new_size as i64;
            PEAK.fetch_max(now, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

static MEASURE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Peak heap bytes `f` holds live at once (on this thread).
fn peak_of<T>(f: impl FnOnce() -> T) -> (i64, T) {
    let _g = MEASURE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    (PEAK.load(Ordering::Relaxed), out)
}

const N: usize = 4;

fn instance() -> Hash32 {
    Hash32([0x7e; 32])
}

type Msg = MessageOf<SimCrypto>;

/// [1]: a one-frame `Val` of a million empty transactions (4 MB), far
/// beyond `max_batch_txs` (10,000 by default): decoding it should cost
/// about what decoding the plain list costs, as it did before the ids
/// travelled with the batch. Today it also hashes a million ids (32 MB
/// more, a million SHA-256 runs) before `on_val` refuses the batch.
#[test]
fn decoding_an_oversized_batch_costs_no_more_than_the_list() {
    let entries = 1_000_000usize;
    let txs: Vec<Vec<u8>> = vec![Vec::new(); entries];
    let list = encode(&txs);
    let frame = encode(&Msg::Val { epoch: 0, batch: Batch::new(txs) });
    let (plain, l) = peak_of(|| decode::<Vec<Vec<u8>>>(&list, 64 << 20).expect("list decodes"));
    drop(l);
    let (msg, m) = peak_of(|| decode::<Msg>(&frame, 64 << 20).expect("message decodes"));
    // The replica refuses it as beyond bounds, as before.
    let mut r = Replica::new(Config::new(N, 0, instance()), SimCrypto::new(7, N, 0), Durable::default());
    let s = r.handle_message(1, m);
    assert!(s.faults.contains(&Fault::Malformed { from: 1, what: "batch beyond bounds" }), "{:?}", s.faults);
    assert!(
        msg <= plain + plain / 10,
        "decoding the Val held {msg} bytes at peak against {plain} for the plain list of {entries} entries: \
         the ids ({} bytes) were hashed before any bound",
        entries * 32
    );
}

/// Held: a decoded batch's ids are those of its transactions (recomputed
/// from the bytes received, not read from the wire), a clone shares them,
/// and a change through `make_mut` drops them without touching the
/// original's.
#[test]
fn carried_ids_follow_the_transactions() {
    let txs: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; i as usize]).collect();
    let batch = Batch::new(txs.clone());
    let back: Batch = decode(&encode(&batch), 1 << 20).expect("decodes");
    let ids: Vec<Hash32> = txs.iter().map(|t| tx_id(t)).collect();
    assert_eq!(back.txs.ids(), &ids[..]);
    let mut changed = back.clone();
    changed.txs.make_mut()[3] = b"other".to_vec();
    assert_eq!(changed.txs.ids()[3], tx_id(b"other"));
    assert_eq!(back.txs.ids()[3], ids[3]);
    assert_ne!(changed.digest(&instance(), 0, 1), back.digest(&instance(), 0, 1));
    // The id list is length-prefixed: splitting or joining transactions
    // changes the digest.
    let joined = Batch::new(vec![b"ab".to_vec()]);
    let split = Batch::new(vec![b"a".to_vec(), b"b".to_vec()]);
    assert_ne!(joined.digest(&instance(), 0, 1), split.digest(&instance(), 0, 1));
    let empty = Batch::new(Vec::new());
    let one_empty = Batch::new(vec![Vec::new()]);
    assert_ne!(empty.digest(&instance(), 0, 1), one_empty.digest(&instance(), 0, 1));
}

/// Held: a Byzantine replica's `Certified` answer carrying a real
/// certificate and digest but other transactions (decoded from the wire,
/// ids recomputed) is refused: the digest is checked against the batch it
/// holds.
#[test]
fn certified_batch_whose_transactions_disagree_with_its_digest_is_refused() {
    let honest = Batch::new(vec![b"pay 1".to_vec(), b"pay 2".to_vec()]);
    let digest = honest.digest(&instance(), 0, 2);
    let stmt = gridledger_consensus::lbft::echo_statement(&instance(), 0, 2, &digest);
    let shares: Vec<(u32, SimSig)> = (0..3u32)
        .map(|i| (i, SimCrypto::new(7, N, i).sign_share(gridledger_consensus::lbft::KeyUse::Cert, &stmt)))
        .collect();
    let sig = SimCrypto::new(7, N, 0).combine(gridledger_consensus::lbft::KeyUse::Cert, &stmt, &shares).expect("sig");
    let forged = Batch::new(vec![b"pay 1".to_vec(), b"steal".to_vec()]);
    let msg = Msg::Certified { epoch: 0, batch: CertifiedBatch { proposer: 2, digest, sig, batch: forged } };
    let msg: Msg = decode(&encode(&msg), 1 << 20).expect("decodes");
    let mut r = Replica::new(Config::new(N, 0, instance()), SimCrypto::new(7, N, 0), Durable::default());
    let s = r.handle_message(3, msg);
    assert!(s.faults.contains(&Fault::BadCertificate { from: 3, epoch: 0, proposer: 2 }), "{:?}", s.faults);
}

/// The digest version 1 (before the ids travelled with the batch):
/// `(instance, epoch, proposer, txs, time_ms)`.
fn digest_v1(batch: &Batch, epoch: u64, proposer: u32) -> Hash32 {
    gridledger_core::codec::hash_tagged(
        gridledger_core::codec::Tag("gridledger/lbft/batch/v1"),
        &(&instance(), epoch, proposer, &batch.txs, batch.time_ms),
    )
}

/// A durable state written by the previous version: `epochs` delivered
/// epochs whose records carry version-1 digests (certified under them).
fn v1_durable(epochs: u64) -> Durable<SimSig> {
    let mut delivered = Vec::new();
    for e in 0..epochs {
        let batches = (0..N as u32)
            .map(|p| {
                let batch = Batch::new(vec![format!("tx {e} {p}").into_bytes()]);
                let digest = digest_v1(&batch, e, p);
                let stmt = gridledger_consensus::lbft::echo_statement(&instance(), e, p, &digest);
                let shares: Vec<(u32, SimSig)> = (0..3u32)
                    .map(|i| (i, SimCrypto::new(7, N, i).sign_share(gridledger_consensus::lbft::KeyUse::Cert, &stmt)))
                    .collect();
                let sig = SimCrypto::new(7, N, 0)
                    .combine(gridledger_consensus::lbft::KeyUse::Cert, &stmt, &shares)
                    .expect("combines");
                CertifiedBatch { proposer: p, digest, sig, batch }
            })
            .collect();
        delivered.push(gridledger_consensus::lbft::DeliveredEpoch { epoch: e, batches });
    }
    Durable { delivered, ..Durable::default() }
}

/// [2]: a store written before digest version 2 (records whose digests
/// are version 1) is taken up silently by `Replica::try_new` (and `new`,
/// which the bench's replica uses on its log): the restarted replica then
/// serves those records to a lagging peer, which refuses every one as a
/// `BadSync` — a correct replica blamed, and no catch-up from it. (The
/// node's `restore` does refuse, but says "the certificate of proposer …
/// does not hold", naming a damaged store, not an older digest version.)
/// A restore should refuse such a log with a typed error that says so.
#[test]
fn a_log_with_version_1_digests_is_refused_on_restore() {
    let cfg = Config::new(N, 0, instance());
    // What happens once it is taken up: a peer at epoch 0 asks to sync.
    let mut old = Replica::new(cfg.clone(), SimCrypto::new(7, N, 0), v1_durable(3));
    let mut lagging = Replica::new(Config::new(N, 1, instance()), SimCrypto::new(7, N, 1), Durable::default());
    let answer = old.handle_message(1, Msg::SyncRequest { next: 0 });
    let mut faults = Vec::new();
    for (_, m) in answer.messages {
        if matches!(m, Msg::Sync { .. }) {
            faults.extend(lagging.handle_message(0, m).faults);
        }
    }
    assert!(faults.contains(&Fault::BadSync { from: 0, epoch: 0 }), "{faults:?}");
    // Refused on restore, with an error that names the digest version.
    let refused = Replica::try_new(cfg.clone(), SimCrypto::new(7, N, 0), v1_durable(3)).err();
    assert_eq!(refused, Some(RestoreError::DigestVersion { epoch: 0, proposer: 0 }), "a v1 log restored");
    assert!(refused.is_some_and(|e| e.to_string().contains("digest version")));
    // The same log under this version's digests is taken up.
    let mut current = v1_durable(3);
    for d in &mut current.delivered {
        for b in &mut d.batches {
            b.digest = b.batch.digest(&instance(), d.epoch, b.proposer);
        }
    }
    assert!(Replica::try_new(cfg, SimCrypto::new(7, N, 0), current).is_ok());
}
