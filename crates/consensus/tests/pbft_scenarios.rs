//! Targeted PBFT runs: each Byzantine behaviour is caught and survived,
//! partitions stop and heal progress, crashed validators catch up.

use gridledger_consensus::pbft::sim::{run, Behaviour, Scenario};
use gridledger_sim::{Crash, NetConfig, Partition};
use std::collections::BTreeMap;

fn calm(seed: u64, n: usize) -> Scenario {
    let mut sc = Scenario::random(seed, n);
    sc.net = NetConfig::reliable(n, 40);
    sc.byzantine.clear();
    sc.blocks_after_gst = 6;
    sc
}

#[test]
fn each_byzantine_behaviour_is_reported_and_survived() {
    let expect = [
        (Behaviour::Equivocate, "equivocation"),
        (Behaviour::BadSignatures, "bad-signature"),
        (Behaviour::ForgeCertificates, "forged-certificate"),
        (Behaviour::InvalidBlocks, "invalid-proposal"),
        (Behaviour::Replay, "bad-signature"),
    ];
    for (b, kind) in expect {
        let mut sc = calm(11, 4);
        sc.byzantine = BTreeMap::from([(1, vec![b])]);
        sc.blocks_after_gst = 12;
        let r = run(&sc).unwrap_or_else(|v| panic!("{b:?}: {v:?}"));
        assert!(r.faults.get(kind).copied().unwrap_or(0) > 0, "{b:?} not reported as {kind}: {:?}", r.faults);
    }
    let mut sc = calm(12, 7);
    sc.byzantine = BTreeMap::from([(0, vec![Behaviour::Withhold]), (4, vec![Behaviour::Withhold])]);
    run(&sc).expect("f withholding validators cannot stop the chain");
}

#[test]
fn no_quorum_while_partitioned_then_progress_after_heal() {
    let mut sc = calm(5, 4);
    sc.net.partitions = vec![Partition { from: 0, until: 5_000, side: vec![0, 1] }];
    sc.net.gst = 5_000;
    let mut sim = sc.build();
    sim.start();
    sim.run_until(4_999, |_| false);
    assert!(sim.outputs.is_empty(), "2 of 4 cannot commit");
    let r = run(&sc).expect("progress after the partition heals");
    assert!(r.heights.iter().all(|h| *h >= 6));
}

#[test]
fn crashed_validator_restarts_from_its_log_and_catches_up() {
    let mut sc = calm(9, 4);
    sc.net.crashes = vec![Crash { node: 2, at: 1_000, restart_at: Some(6_000) }];
    sc.net.gst = 6_000;
    let mut sim = sc.build();
    sim.start();
    sim.run_until(5_999, |_| false);
    let before: Vec<u64> = (0..4).map(|i| sim.outputs.iter().filter(|(_, n, _)| *n == i).count() as u64).collect();
    assert!(before[2] < before[0], "the crashed node fell behind: {before:?}");
    let r = run(&sc).expect("the restarted node catches up and the chain goes on");
    assert!(r.heights[2] > before[0], "{:?} vs {before:?}", r.heights);
}

/// Issue 9 item 9: with one validator down for good, every n-th height's
/// first leader is dead. Suspecting a leader whose view was abandoned, and
/// giving it a quarter of the deadline the next time it leads, skips its
/// turns faster. Measured in logical time (ticks), so the comparison is
/// deterministic: blocks committed by validator 0 in 20,000 ticks.
#[test]
fn a_known_dead_leader_is_skipped_faster() {
    let blocks = |divisor: u64| {
        let mut sc = calm(21, 4);
        sc.net.crashes = vec![Crash { node: 3, at: 0, restart_at: None }];
        sc.suspect_divisor = divisor;
        let mut sim = sc.build();
        sim.start();
        sim.run_until(20_000, |_| false);
        sim.outputs.iter().filter(|(_, n, _)| *n == 0).count()
    };
    let (before, after) = (blocks(1), blocks(4));
    eprintln!("one validator down, blocks in 20,000 ticks: {before} without suspicion, {after} with");
    assert!(before > 0);
    assert!(after > before, "{after} vs {before}");
}
