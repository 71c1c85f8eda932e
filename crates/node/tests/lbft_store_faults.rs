//! The LBFT node engine on a failing disk: four in-process validators
//! (`consensus = "lbft"`, each store on a fault-injecting disk, links in
//! memory). When validator 1's disk refuses writes, its engine halts: it
//! delivers nothing beyond what its store holds durably (its chain never
//! runs ahead of the durable image), says nothing more to its peers, and
//! reports the fault; the other three keep committing (n − f = 3). Once
//! the disk works again it reopens its store, catches up and ends with the
//! same chain as its peers, block for block.

mod common;
use common::lbft::{chain_of, committed, submit, Net, Validator, N};
use common::wait_until;
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{Chain, ChainConfig, SubmitError};
use std::sync::atomic::Ordering::Relaxed;

/// The four validators, each on a fresh disk.
fn network(dir: &std::path::Path) -> Vec<Validator> {
    let net = Net::new(dir);
    (0..N).map(|i| net.start(i, SimDisk::new())).collect()
}

fn height(v: &Validator) -> u64 {
    v.node.shared.chain().tip().height
}

/// The tip of the chain a process restarted from `disk`'s durable image would find.
fn durable_tip(disk: &SimDisk, genesis: &std::path::Path) -> u64 {
    let image = disk.snapshot();
    let store = Store::open_backend(move || image.backend()).unwrap();
    let genesis = toml::from_str(&std::fs::read_to_string(genesis).unwrap()).unwrap();
    let chain =
        Chain::open_store(store, genesis, gridledger_contracts::default_registry(), ChainConfig::default()).unwrap();
    chain.tip().height
}

#[test]
fn an_lbft_validator_whose_writes_fail_halts_at_its_durable_chain_and_recovers_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.toml");
    let vs = network(dir.path());

    let first: Vec<Hash32> = submit(&vs[0], 0, 0, 5).into_iter().map(|r| r.unwrap()).collect();
    wait_until("the first transfers on every validator", || vs.iter().all(|v| first.iter().all(|h| committed(v, h))));

    // Validator 1's disk fills up. Transfers keep arriving at validator 0;
    // the other three (n − f) keep committing them.
    vs[1].disk.set_full(true);
    let mut nonce = 5;
    let mut during = Vec::new();
    while vs[1].node.shared.fault().is_none() || during.len() < 15 {
        let batch: Vec<Hash32> = submit(&vs[0], 0, nonce, 5).into_iter().map(|r| r.unwrap()).collect();
        nonce += 5;
        wait_until("the others to commit", || [0, 2, 3].iter().all(|&i| batch.iter().all(|h| committed(&vs[i], h))));
        during.extend(batch);
    }
    assert!(vs[1].disk.errors() > 0, "the full disk refused a write");
    assert!(vs[1].node.shared.fault().is_some_and(|r| r.contains("LBFT") || r.contains("epoch")));
    // Halted: nothing new is admitted, nothing more is said, and nothing
    // is delivered beyond the durable image.
    let refused = submit(&vs[1], 1, 0, 2);
    assert!(refused.iter().all(|r| matches!(r, Err(SubmitError::Unavailable { .. }))), "{refused:?}");
    let (halted_at, said) = (height(&vs[1]), vs[1].sent.load(Relaxed));
    let more: Vec<Hash32> = submit(&vs[0], 0, nonce, 5).into_iter().map(|r| r.unwrap()).collect();
    nonce += 5;
    wait_until("the others to commit more", || [0, 2, 3].iter().all(|&i| more.iter().all(|h| committed(&vs[i], h))));
    assert_eq!(height(&vs[1]), halted_at, "a halted validator delivered an epoch");
    assert_eq!(vs[1].sent.load(Relaxed), said, "a halted validator sent messages");
    assert!(height(&vs[0]) > halted_at, "the others went on without it");
    assert_eq!(durable_tip(&vs[1].disk, &genesis), halted_at, "its chain ran ahead of its durable image");
    assert!(during.iter().chain(&more).all(|h| !committed(&vs[1], h)));

    // The disk works again: it reopens its store, catches up, and its chain
    // is its peers' chain.
    vs[1].disk.set_full(false);
    wait_until("validator 1 to recover", || vs[1].node.shared.fault().is_none());
    let after: Vec<Hash32> = submit(&vs[1], 1, 0, 3).into_iter().map(|r| r.unwrap()).collect();
    let last: Vec<Hash32> = submit(&vs[0], 0, nonce, 3).into_iter().map(|r| r.unwrap()).collect();
    wait_until("everything on every validator", || {
        vs.iter().all(|v| during.iter().chain(&more).chain(&after).chain(&last).all(|h| committed(v, h)))
    });
    wait_until("equal tips", || vs.iter().all(|v| height(v) == height(&vs[0])));
    let reference = chain_of(&vs[0]);
    for (i, v) in vs.iter().enumerate() {
        assert_eq!(chain_of(v), reference, "validator {i}'s chain differs");
    }
    let m = &vs[1].node.shared.metrics;
    assert!(m.store_faults.load(Relaxed) >= 1);
    assert!(m.recoveries.load(Relaxed) >= 1, "it recovered by reopening its store");
    assert_eq!(durable_tip(&vs[1].disk, &genesis), height(&vs[1]));
    for v in vs {
        v.node.shutdown();
    }
}

#[test]
fn batch_bounds_whose_epoch_record_exceeds_the_frame_limit_are_refused_at_start() {
    use gridledger_node::lbft::check_frame_bound;
    let max_tx = ChainConfig::default().max_tx_bytes;
    let per_block = ChainConfig::default().max_block_txs;
    // The default (the chain's max_block_txs / n) fits for every size.
    for n in [4usize, 7, 10, 16, 31] {
        check_frame_bound(n, (per_block / n).max(1), max_tx).unwrap_or_else(|e| panic!("n = {n}: {e}"));
    }
    // A batch bound that would make a Sync record too large to send is
    // refused, naming the setting and a bound that fits.
    let err = check_frame_bound(4, 10_000, max_tx).unwrap_err().to_string();
    assert!(err.contains("max_batch_txs = 10000"), "{err}");
    let fits: usize = err.rsplit(' ').next().and_then(|w| w.parse().ok()).expect("a suggested bound");
    check_frame_bound(4, fits, max_tx).unwrap();
    assert!(check_frame_bound(4, fits + 1, max_tx).is_err(), "the suggestion is the largest that fits");
}
