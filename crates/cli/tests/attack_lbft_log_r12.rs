//! Attack round 12 on the `bench lbft` replicas' own log (format v2:
//! records `len ‖ crc32(len ‖ body) ‖ body`), after round 10's fix: a
//! damaged record with a whole record after it is refused, only a torn
//! last record is cut. Round 10's fix decides "a whole record follows" by
//! searching every later byte of the torn record for something that
//! parses as a record, and answers "found" once the search has spent a
//! budget (16 per byte + 1 MiB of CRC work). A torn last record is a
//! prefix of a record the replica itself wrote, whose bytes are mostly
//! transactions: the search reads their fields as record lengths.
//! (Fixed in format v3: every record starts with the log's random salt,
//! covered by its CRC; the search tries only where the salt occurs, so
//! content cannot make a record start. The records built here are v3.)
//!
//! The cluster harness is round 10's (the replica processes driven
//! directly, their configuration files written here).

use borsh::BorshSerialize;
use gridledger_consensus::lbft::txm::LbftTx;
use gridledger_consensus::lbft::{Batch, PersistOp};
use gridledger_core::bench_tx::{client_key, make_tx};

mod common;

use common::lbft_log::*;

/// The log's records as the replica writes them (`LogOp`, borsh: the
/// variant index is the tag), for a proposal record.
#[derive(BorshSerialize)]
enum LogOp {
    Op(PersistOp<gridledger_consensus::lbft::NodeSig>),
}

/// The record the replica writes when it proposes `txs` for `epoch`, in
/// the format the log is in: `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖
/// body` (v3, `salt` the log's, its header's last 8 bytes).
fn proposal_record(salt: &[u8], epoch: u64, txs: Vec<Vec<u8>>) -> Vec<u8> {
    let body = borsh::to_vec(&vec![LogOp::Op(PersistOp::Proposed { epoch, batch: Batch::new(txs) })]).expect("encode");
    let len = (body.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(salt);
    h.update(&len);
    h.update(&body);
    let mut rec = salt.to_vec();
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&h.finalize().to_le_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// `count` benchmark transactions as the replicas' clients make them
/// (the bench's own generator, signed).
fn bench_txs(count: u64) -> Vec<Vec<u8>> {
    (0..count).map(|i| make_tx(&client_key((i % 8) as u32), (i % 8) as u32, i, false)).collect()
}

/// Runs the cluster once, writes `tail(salt)` after the last record of
/// replica 0's log (what a crash in the middle of writing a record leaves;
/// `salt` the log's): over the zeros its writer keeps there, extending the
/// file if they end first. Restarts the cluster and returns replica 0's
/// first run's delivered epochs and its restart, and what was written.
fn crash_with_tail(tail: impl Fn(&[u8]) -> Vec<u8>) -> (Vec<String>, usize, Outcome, String) {
    let mut c = Cluster::new(2, 400);
    let first = run_all(&c);
    for (i, o) in first.iter().enumerate() {
        assert!(o.ok, "replica {i} failed: {}", o.stderr);
    }
    let delivered = digests(&first[0].report);
    assert!(delivered.len() >= 3, "a few epochs delivered: {}", first[0].report);
    let path = c.log(0);
    let mut log = std::fs::read(&path).expect("read log");
    let whole = records(&log);
    // The first run left whole records only (then zeros).
    let end = records_then_zeros(&log);
    let (tail, what) = {
        let t = tail(&log[8..16]);
        let what = format!("{} bytes of a torn record", t.len());
        (t, what)
    };
    if log.len() < end + tail.len() {
        log.resize(end + tail.len(), 0);
    }
    log[end..end + tail.len()].copy_from_slice(&tail);
    std::fs::write(&path, &log).expect("write the torn record");
    c.rerun(1);
    let mut second = run_all(&c);
    (delivered, whole.len(), second.swap_remove(0), what)
}

fn assert_taken_up(delivered: &[String], records: usize, o: &Outcome, what: &str) {
    assert!(
        o.ok,
        "replica 0 refused its log ({records} whole records, then {what}): a torn last record must be cut, not \
         taken for a damaged middle one: {}",
        o.stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    );
    let restored = o.report["restored_epochs"].as_u64().unwrap_or(0) as usize;
    assert!(restored >= delivered.len(), "restored {restored} of {} delivered epochs", delivered.len());
}

/// [1] A torn last record is refused when it is big enough: a replica
/// that proposed a batch of a few hundred ordinary benchmark transactions
/// (≈ 60 KB; the bench's batches are thousands) and was killed while that
/// record was being appended (SIGKILL interrupts a multi-page `write`
/// between pages; a power cut leaves any prefix) cannot restart. The
/// search after the torn record's start reads the transactions' fields
/// (the high half of each µs timestamp, ≈ 410 000; their length prefixes,
/// 300) as record lengths, each within the bytes left, so it spends its
/// budget within the first few dozen transactions and answers "a whole
/// record follows": the log is refused as damaged in the middle. Should:
/// the torn record is cut and the replica takes up its log (as it does for
/// a record of a few transactions, below).
///
/// (Fixed: format v3 records start with the log's random salt; only where
/// the salt occurs is a record start tried.)
#[test]
fn a_torn_proposal_of_a_few_hundred_transactions_is_cut_and_the_replica_restarts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let txs = bench_txs(400);
    // Torn at nine tenths: its header and most of its body reached the disk.
    let (delivered, records, o, what) = crash_with_tail(|salt| {
        let rec = proposal_record(salt, 1_000, txs.clone());
        rec[..rec.len() * 9 / 10].to_vec()
    });
    assert_taken_up(&delivered, records, &o, &what);
}

/// [2] The search also takes bytes inside a transaction for a whole
/// record: a client's request (LbftTx `request`, opaque to the replica)
/// holding the 12 bytes `04 00 00 00 ‖ crc32 ‖ 00 00 00 00` (a record
/// whose body is an empty list of operations) makes any record that
/// carries the transaction, torn after it, refused as a damaged middle
/// record — however small. A client that gets such a transaction into
/// batches turns every crash during such a record's append into a replica
/// that cannot restart. Should: the torn record is cut.
///
/// (Fixed: a v3 record starts with the log's salt, which no client knows;
/// the request still holds the v2-shaped record and the search no longer
/// reads it.)
#[test]
fn a_torn_record_holding_record_shaped_transaction_bytes_is_cut() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // An empty `Vec<LogOp>` body and its record.
    let body = 0u32.to_le_bytes();
    let len = 4u32.to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&body);
    let mut inner = len.to_vec();
    inner.extend_from_slice(&h.finalize().to_le_bytes());
    inner.extend_from_slice(&body);
    let mut request = b"pay 12 to alice; memo: ".to_vec();
    request.extend_from_slice(&inner);
    // A signed π^τ transaction of an ordinary client key.
    let tx = LbftTx::sign(&client_key(1), 1, request, 0, 2);
    let mut txs = bench_txs(2);
    txs.insert(1, borsh::to_vec(&tx).expect("encode"));
    // Torn in the last transaction, after the request.
    let (delivered, records, o, what) = crash_with_tail(|salt| {
        let rec = proposal_record(salt, 1_000, txs.clone());
        rec[..rec.len() - 100].to_vec()
    });
    assert_taken_up(&delivered, records, &o, &what);
}

/// Held up: a torn record of a few ordinary transactions is cut and the
/// replica takes up its log.
#[test]
fn a_torn_proposal_of_a_few_transactions_is_cut_and_the_replica_restarts() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let txs = bench_txs(20);
    let (delivered, records, o, what) = crash_with_tail(|salt| {
        let rec = proposal_record(salt, 1_000, txs.clone());
        rec[..rec.len() * 9 / 10].to_vec()
    });
    assert_taken_up(&delivered, records, &o, &what);
}
