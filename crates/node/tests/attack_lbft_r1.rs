//! Attack round 1 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators on fault-injecting disks, links in memory.
//!
//! Run the findings with
//! `cargo test -p gridledger-node --test attack_lbft_r1 -- --ignored`.

mod common;
use common::lbft::{committed, submit, within, Net, Validator, N};
use gridledger_core::Hash32;
use gridledger_ledger::fault::SimDisk;

/// Commits a few transfers, stops the validators in `restart` (their
/// durable images kept, as after a power loss) while the others keep
/// running, and starts them again; then reports whether new transfers
/// still commit everywhere.
fn live_after_restarting(restart: &[usize]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let mut vs: Vec<Option<Validator>> = (0..N).map(|i| Some(net.start(i, SimDisk::new()))).collect();
    let first: Vec<Hash32> =
        submit(vs[0].as_ref().unwrap(), 0, 0, 3).into_iter().map(|r| r.expect("admitted")).collect();
    assert!(
        within(60, || vs.iter().flatten().all(|v| first.iter().all(|h| committed(v, h)))),
        "first transfers commit"
    );
    let mut images = Vec::new();
    for &i in restart {
        let v = vs[i].take().expect("running");
        let d = v.disk.clone();
        v.node.shutdown();
        images.push((i, d.snapshot()));
    }
    for (i, image) in images {
        vs[i] = Some(net.start(i, image));
    }
    let vs: Vec<Validator> = vs.into_iter().flatten().collect();
    let next: Vec<Hash32> = submit(&vs[0], 0, 3, 3).into_iter().map(|r| r.expect("admitted")).collect();
    let live = within(20, || vs.iter().all(|v| next.iter().all(|h| committed(v, h))));
    for v in vs {
        v.node.shutdown();
    }
    live
}

/// [1] (node) Every validator of a 4-validator LBFT network restarts with
/// its records intact (a site power loss, an upgrade): each restores its
/// `VotedIn` bound — the epoch after its last delivered one — and only
/// observes that epoch, so nobody echoes another's batch or votes, and no
/// transfer commits again, ever.
#[test]
fn lbft_network_commits_after_every_validator_restarts() {
    assert!(live_after_restarting(&[0, 1, 2, 3]), "no transfer committed within 20 s of restarting all validators");
}

/// [1] (node) Two of four validators restart (f + 1 at once, records
/// intact): both are mute in the same epoch and the network never
/// commits again, although all four are up and correct.
#[test]
fn lbft_network_commits_after_two_validators_restart() {
    assert!(live_after_restarting(&[0, 1]), "no transfer committed within 20 s of restarting validators 0 and 1");
}

/// Control: restarting one validator (f) keeps the network live.
#[test]
fn lbft_network_commits_after_one_validator_restarts() {
    assert!(live_after_restarting(&[1]), "one restart: live");
}
