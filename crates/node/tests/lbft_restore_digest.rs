//! A validator whose stored LBFT log carries batch digests of another
//! version (a store written before batch digest v2, or damaged) is refused
//! at start with an error that says so — not reported as a bad certificate.

mod common;
use common::lbft::{committed, submit, within, Net, Validator, N};
use gridledger_consensus::lbft::DeliveredEpoch;
use gridledger_core::codec::{decode, encode};
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_node::lbft::epoch_key;

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

#[test]
fn a_log_with_another_digest_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let vs: Vec<Validator> = (0..N).map(|i| net.start(i, SimDisk::new())).collect();
    let txs: Vec<Hash32> = submit(&vs[0], 0, 0, 2).into_iter().map(|r| r.expect("admitted")).collect();
    assert!(within(60, || vs.iter().all(|v| txs.iter().all(|h| committed(v, h)))), "the transfers commit");
    let mut vs = vs.into_iter();
    let v0 = vs.next().unwrap();
    for v in vs {
        v.node.shutdown();
    }
    let disk = v0.disk.clone();
    v0.node.shutdown();
    // Control: the untouched store opens again.
    let control = disk.snapshot();
    net.start(0, control).node.shutdown();
    // Epoch 0's first batch digest rewritten, as a log of another digest
    // version would carry it.
    let image = disk.snapshot();
    {
        let d = image.clone();
        let store = Store::open_backend(move || d.backend()).unwrap();
        let bytes = store.get_aux(&epoch_key(0)).unwrap().expect("epoch 0 stored");
        let mut rec: DeliveredEpoch<gridledger_consensus::lbft::NodeSig> = decode(&bytes, usize::MAX).unwrap();
        assert!(!rec.batches.is_empty());
        rec.batches[0].digest = Hash32([7; 32]);
        store.put_aux(&epoch_key(0), &encode(&rec)).unwrap();
    }
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.start(0, image)));
    let text = match started {
        Ok(v) => {
            v.node.shutdown();
            panic!("a store with a foreign batch digest opened");
        }
        Err(e) => panic_text(&*e),
    };
    assert!(text.contains("digest v2"), "the refusal names the digest version: {text}");
    assert!(!text.contains("certificate"), "the refusal blames a certificate: {text}");
}
