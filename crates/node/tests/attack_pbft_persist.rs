//! Attack reproductions for issue 9 items 1, 2 and 5 (crash-atomic
//! commits, the driver simulator, disk-full recovery). Each failing
//! reproduction is `#[ignore = "attack: ..."]` so the suite stays green;
//! run them with
//! `cargo test -p gridledger-node --test attack_pbft_persist -- --ignored`.
//! Tests without `ignore` are attacks that held up (kept as regressions).

mod common;
use common::{committed, start, submit, wait_until};
use gridledger_consensus::pbft::sim::{Behaviour, DiskCrash, Scenario, WriteFailure};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::ChainConfig;
use gridledger_node::sim::{run_driver, run_driver_with, DriverSimOptions};
use gridledger_sim::NetConfig;
use std::io::{Read, Write};
use std::time::Duration;

fn rpc(addr: std::net::SocketAddr, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let json = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {resp}"))
}

/// Disk full on a single-validator node, while the disk stays full.
///
/// Expected (secure): a block whose commit failed is not visible anywhere:
/// the node's tip, balances and nonces stay those of the last committed
/// block (the doc of `Shared::chain` promises "State, which is only
/// mutated after a successful commit"; `Chain::produce_blocks` promises to
/// "put state and tip back").
///
/// Observed: `produce_blocks` applies the block to the in-memory state and
/// tip *before* the store commit; on failure it restores them only if
/// reopening the store succeeds, which it does not while the disk is
/// full. Until the disk is freed `gl_chainInfo` reports a height and a
/// tip hash of a block that was never committed, and `gl_getAccount`
/// serves balances and nonces of transactions that are not on disk
/// (a wallet sees its payment "done" while `gl_getReceipt` says null).
/// Fixed: state and tip are put back before the reopen is attempted.
#[test]
fn attack_disk_full_serves_uncommitted_tip_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SimDisk::new();
    let node = start(dir.path(), &disk);
    let first: Vec<Hash32> = submit(&node, 0, 0, 5).into_iter().map(|r| r.unwrap()).collect();
    wait_until("the first block", || first.iter().all(|h| committed(&node, h)));
    wait_until("the mempool to drain", || node.shared.chain().pending() == 0);
    let committed_tip = node.shared.store.tip().unwrap().unwrap();
    let committed_hash = node.shared.store.block(committed_tip).unwrap().unwrap().hash();
    let sender = dev_key(1).address();
    let before = rpc(node.addr, "gl_getAccount", serde_json::json!([sender.to_string()]));

    disk.set_full(true);
    let kept: Vec<Hash32> = submit(&node, 1, 0, 10).into_iter().map(|r| r.unwrap()).collect();
    wait_until("the fault to be reported", || node.shared.fault().is_some());
    // A few more producer rounds while the disk stays full.
    std::thread::sleep(Duration::from_millis(100));
    assert!(node.shared.fault().is_some());
    // No receipt for them (null, or an error while the store is closed).
    for h in &kept {
        let r = rpc(node.addr, "gl_getReceipt", serde_json::json!([h]));
        assert!(r.get("result").is_none_or(|v| v.is_null()), "a receipt for an uncommitted transaction: {r}");
    }

    let info = rpc(node.addr, "gl_chainInfo", serde_json::json!([]));
    let after = rpc(node.addr, "gl_getAccount", serde_json::json!([sender.to_string()]));
    let height = info["result"]["height"].as_u64();
    let tip_hash = info["result"]["tip_hash"].clone();
    let chain_tip = node.shared.chain().tip().height;
    disk.set_full(false);
    node.shutdown();

    let mut wrong = Vec::new();
    if chain_tip != committed_tip {
        wrong.push(format!("in-memory tip {chain_tip}, store tip {committed_tip}"));
    }
    if height != Some(committed_tip) {
        wrong.push(format!("gl_chainInfo height {height:?}"));
    }
    if tip_hash != serde_json::json!(committed_hash) {
        wrong.push(format!("gl_chainInfo tip_hash {tip_hash} is not the stored tip {committed_hash}"));
    }
    if after["result"]["balance"] != before["result"]["balance"]
        || after["result"]["nonce"] != before["result"]["nonce"]
    {
        wrong.push(format!("gl_getAccount before {} after {}", before["result"], after["result"]));
    }
    assert!(wrong.is_empty(), "uncommitted block visible while the disk is full:\n{}", wrong.join("\n"));
}

/// The held-up attacks run a modest set by default and every case with
/// `GRIDLEDGER_ATTACK_FULL=1`.
fn full() -> bool {
    std::env::var_os("GRIDLEDGER_ATTACK_FULL").is_some()
}

/// A calm network with `byz` colluding equivocators, no planned faults.
fn calm(seed: u64, n: usize, byz: &[u32], min_height: u64) -> Scenario {
    let mut sc = Scenario::random(seed, n);
    sc.net = NetConfig::reliable(n, 20);
    sc.net.gst = 600;
    sc.byzantine = byz
        .iter()
        .map(|&b| {
            (b, vec![Behaviour::Equivocate, Behaviour::Collude, Behaviour::SplitCommits, Behaviour::HidePrepared])
        })
        .collect();
    sc.disk_crashes.clear();
    sc.write_failures.clear();
    sc.min_height = min_height;
    sc
}

fn opts(restart_after: u64) -> DriverSimOptions {
    #[allow(clippy::needless_update)]
    DriverSimOptions { restart_after: Some(restart_after), ..DriverSimOptions::default() }
}

/// A crash *inside recovery*: validator 1's write fails (it halts), and
/// the process dies at the next sync — the one of the store reopen
/// (`Store::init`'s write) or the first commit after it — torn or not.
/// Expected: no lost vote, no fork, liveness. (Held up when written.)
#[test]
fn attack_crash_inside_recovery_after_a_failed_write() {
    let (syncs, tears) = if full() { (4, &[0usize, 1, 1_000][..]) } else { (3, &[0, 1_000][..]) };
    for sync in 2..=syncs {
        for &tear in tears {
            let mut sc = calm(sync * 10 + tear as u64, 4, &[3], 10);
            sc.write_failures = vec![WriteFailure { node: 1, at: 150, sync: 1 }];
            sc.disk_crashes = vec![DiskCrash { node: 1, at: 150, sync, tear }];
            run_driver(&sc, &opts(5)).unwrap_or_else(|v| panic!("sync {sync} tear {tear}: {v:?}"));
        }
    }
}

/// f + 1 correct validators crash at the same instant (between two of
/// their writes), one of them with a torn store, while a Byzantine
/// equivocator (n = 4) or f of them (n = 7) collude. Expected: no lost
/// vote, no fork, liveness once they restart. (Held up when written.)
#[test]
fn attack_correlated_f_plus_1_crashes_with_one_torn_store() {
    let (s4, s7) = if full() { (4, 2) } else { (2, 1) };
    for (n, byz, seeds) in [(4usize, vec![3u32], 0..s4), (7, vec![5, 6], 0..s7)] {
        let f = (n - 1) / 3;
        for seed in seeds {
            let mut sc = calm(100 + seed, n, &byz, 10);
            let at = 100 + 97 * seed;
            sc.disk_crashes = (0..=f as u32)
                .map(|node| DiskCrash {
                    node,
                    at,
                    sync: 1 + seed % 3,
                    tear: if node == 0 { 2 + seed as usize } else { 0 },
                })
                .collect();
            run_driver(&sc, &opts(40)).unwrap_or_else(|v| panic!("n {n} seed {seed}: {v:?}"));
        }
    }
}

/// Crashes between two writes *late* in a run (the shipped test only arms
/// them at t = 0, i.e. within the first heights), at every one of the
/// next few syncs, torn at every write count, on a correct validator,
/// with a colluding equivocating leader. (Held up when written.)
#[test]
fn attack_late_crash_at_every_sync_and_tear() {
    let (syncs, tears) = if full() { (4, &[0usize, 1, 3, 1_000][..]) } else { (2, &[0, 1_000][..]) };
    for sync in 1..=syncs {
        for &tear in tears {
            let mut sc = calm(7_000 + sync, 4, &[3], 14);
            sc.disk_crashes = vec![DiskCrash { node: 0, at: 250 + 13 * sync, sync, tear }];
            let (r, sim) = run_driver_with(&sc, &opts(5));
            r.unwrap_or_else(|v| panic!("sync {sync} tear {tear}: {v:?}"));
            assert_eq!(sim.stats.crashes, 1, "sync {sync} tear {tear}: the planned crash happened");
        }
    }
}

/// [`run_driver`] with a hook called at every check (to inject faults
/// the scenario cannot express, e.g. a disk that stays full); validity
/// against a reference chain is left out (its builder is private).
fn run_with_hook(
    sc: &Scenario,
    o: &DriverSimOptions,
    mut hook: impl FnMut(&gridledger_sim::Simulation<gridledger_node::sim::DriverNode>),
) -> (
    Result<gridledger_consensus::pbft::sim::RunReport, gridledger_consensus::pbft::sim::Violation>,
    gridledger_sim::Simulation<gridledger_node::sim::DriverNode>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let (mut sim, ticks, clock, lost) = gridledger_node::sim::build(sc, o);
    let base = clock.load(Relaxed);
    sim.set_before_step(Box::new(move |now| {
        ticks.store(now, Relaxed);
        clock.store(base + now, Relaxed);
    }));
    let audit = move |s: &gridledger_sim::Simulation<gridledger_node::sim::DriverNode>| {
        hook(s);
        lost.lock().unwrap_or_else(|p| p.into_inner()).pop()
    };
    let r = gridledger_consensus::pbft::sim::check_run(sc, &mut sim, audit, |_, _| Ok(()));
    (r, sim)
}

/// A PBFT validator whose disk stays full for a while (every write and
/// sync fails, so the store cannot even be reopened), then is freed.
/// Expected: it halts (reports the fault), keeps retrying, recovers by
/// reopening once the disk is freed, catches up and the network never
/// forks or stalls. (Held up when written.)
#[test]
fn attack_pbft_validator_disk_full_for_a_while_then_freed() {
    let windows = [(1u64, 150u64, 900u64), (2, 400, 2_500)];
    for &(seed, from, until) in &windows[..if full() { 2 } else { 1 }] {
        let sc = calm(seed, 4, &[3], 20);
        let mut saw_fault = false;
        let mut freed = false;
        let (r, sim) = run_with_hook(&sc, &opts(5), |s| {
            let Some(node) = s.node(1) else { return };
            let now = s.now();
            if (from..until).contains(&now) {
                node.disk().set_full(true);
                saw_fault |= node.driver().shared().fault().is_some();
            } else if now >= until && !freed {
                node.disk().set_full(false);
                freed = true;
            }
        });
        let report = r.unwrap_or_else(|v| panic!("seed {seed}: {v:?}"));
        assert!(saw_fault, "seed {seed}: the full disk was reported while it lasted");
        assert!(freed, "seed {seed}: the run lasted past the full window");
        let node = sim.node(1).expect("validator 1 runs");
        assert!(node.disk().errors() > 0, "seed {seed}: writes were refused");
        assert!(node.driver().halted().is_none(), "seed {seed}: recovered");
        assert!(report.heights[1] >= 20, "seed {seed}: caught up: {:?}", report.heights);
    }
}

/// Drops every message (the restored driver is only inspected).
struct Mute;

impl gridledger_node::validator::Transport for Mute {
    fn send(&self, _: u32, _: Vec<u8>) {}
    fn broadcast(&self, _: Vec<u8>) {}
}

/// A validator's store whose committed block carries a `Seal::Quorum`
/// with no signatures at all (a store written by a buggy driver — the
/// simulator does not notice one, see scripts/attack-plant.sh with
/// attack-plant-weak-cert.patch — or damaged).
///
/// Expected (secure): restoring the validator from it is refused with a
/// typed error, as a store whose blocks have no quorum seal already is
/// ("not written by a PBFT validator"): the replica serves these
/// certificates to lagging peers (catch-up) and light clients read them.
///
/// Observed: `Driver::open` only checked that the seal is of the quorum
/// kind; the empty certificate was taken into the replica's committed log.
/// Fixed: restoring verifies every retained block's certificate (typed
/// `CertError`).
#[test]
fn attack_restore_accepts_a_stored_block_without_a_quorum_certificate() {
    use gridledger_ledger::{Chain, Seal};
    let validators: Vec<_> = (0..4).map(dev_validator).collect();
    let genesis = dev_genesis(7, 4, Amount(1_000_000_000), &validators);
    let disk = SimDisk::new();
    let d = disk.clone();
    let store = Store::open_backend(move || d.backend()).unwrap();
    let mut chain =
        Chain::open_store(store, genesis, gridledger_contracts::default_registry(), ChainConfig::default()).unwrap();
    let tx = transfer(&dev_key(0), 7, 0, dev_key(1).address(), Amount(1), Amount(1));
    chain.submit(&tx.to_bytes()).unwrap();
    let (mut ex, _) = chain.build_block(&validators[0].public(), chain.tip().timestamp + 1);
    assert_eq!(ex.block.txs.len(), 1);
    ex.block.seal = Seal::Quorum { view: 0, signatures: Vec::new() };
    chain.commit(ex).unwrap();
    let shared = gridledger_node::service::Shared::new(chain);
    let store = shared.store.clone();
    let opened = gridledger_node::validator::Driver::open(
        shared,
        dev_validator(1),
        Box::new(Mute),
        gridledger_node::validator::PbftSettings::default(),
    );
    let Err(e) = opened else { panic!("a block without a quorum certificate was restored as committed") };
    assert!(
        matches!(
            e.downcast_ref::<gridledger_consensus::pbft::CertError>(),
            Some(gridledger_consensus::pbft::CertError::NoQuorum { have: 0, need: 3 })
        ),
        "refused with a typed certificate error: {e:#}"
    );
    // Refusing changed nothing on disk.
    assert_eq!(store.tip().unwrap(), Some(1));
    assert_eq!(store.block(1).unwrap().unwrap().seal, Seal::Quorum { view: 0, signatures: Vec::new() });
}
