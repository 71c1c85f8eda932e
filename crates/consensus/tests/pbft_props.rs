//! Simulator property runs for the primary chain's PBFT replica (thesis
//! §3.3.2): safety, validity and post-GST liveness with f colluding
//! Byzantine validators under network chaos and crashes, over many seeds.
//!
//! Seeds follow `gridledger_sim::SeedPlan`: `GRIDLEDGER_SIM_SEEDS=N` runs N
//! fixed seeds per property plus rotating ones; `GRIDLEDGER_SIM_SEED=S`
//! replays one seed (with a trace in `replay_one_seed`).

use gridledger_consensus::pbft::sim::{run, run_built, Scenario, Violation};
use gridledger_sim::SeedPlan;
use std::time::Instant;

fn sweep(n: usize, base: u64, default: u64) {
    let plan = SeedPlan::from_env(base, default);
    let started = Instant::now();
    let mut failures: Vec<Violation> = Vec::new();
    let (mut events, mut faults, mut crashes, mut dropped, mut byz_seeds) = (0u64, 0usize, 0u64, 0u64, 0usize);
    for &seed in &plan.seeds {
        let sc = Scenario::random(seed, n);
        byz_seeds += usize::from(!sc.byzantine.is_empty());
        match run(&sc) {
            Ok(r) => {
                events += r.events;
                faults += r.faults.values().sum::<usize>();
                crashes += r.crashes;
                dropped += r.dropped;
            }
            Err(v) => failures.push(v),
        }
    }
    eprintln!(
        "n={n}: {} seeds in {:?}, {events} events, {faults} faults reported, {crashes} crashes, {dropped} dropped",
        plan.seeds.len(),
        started.elapsed()
    );
    for f in failures.iter().take(5) {
        eprintln!("{f:?}: {}", SeedPlan::replay_hint(f.seed()));
    }
    assert!(failures.is_empty(), "{} failing seeds, first: {:?}", failures.len(), failures.first());
    if plan.seeds.len() >= 20 {
        // The sweep really exercised what it claims to.
        assert!(byz_seeds > 0 && faults > 0, "no Byzantine fault was reported");
        assert!(crashes > 0, "no crash was injected");
        assert!(dropped > 0, "no message was dropped");
    }
}

#[test]
fn pbft_n4_safety_and_liveness() {
    sweep(4, 0, 200);
}

#[test]
fn pbft_n7_safety_and_liveness() {
    sweep(7, 1_000_000, 80);
}

#[test]
fn pbft_n10_safety_and_liveness() {
    sweep(10, 2_000_000, 20);
}

/// Replays one seed with a full trace: `GRIDLEDGER_SIM_SEED`, or a fixed
/// regression seed; the trace must reproduce exactly.
#[test]
fn replay_one_seed() {
    let seed = std::env::var("GRIDLEDGER_SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(17);
    for n in [4, 7] {
        let sc = Scenario::random(seed, n);
        let mut sim = sc.build();
        sim.record_trace();
        let r = run_built(&sc, &mut sim);
        let trace = sim.trace().unwrap_or_default().to_vec();
        if std::env::var("GRIDLEDGER_SIM_SEED").is_ok() {
            eprintln!("{sc:#?}");
            for line in &trace {
                eprintln!("{line}");
            }
        }
        eprintln!("n={n} seed={seed}: {r:?}");
        let r = r.unwrap_or_else(|v| panic!("{v:?}: {}", SeedPlan::replay_hint(seed)));
        assert!(r.heights.iter().any(|h| *h > 0), "nothing committed");
        assert!(trace.iter().any(|l| l.contains("output")), "the trace records commits");
        let mut again = sc.build();
        again.record_trace();
        let _ = run_built(&sc, &mut again);
        assert_eq!(again.trace().unwrap_or_default(), &trace[..], "replay diverged");
    }
}

#[test]
fn same_seed_same_trace() {
    for (seed, n) in [(3, 4), (1_000_017, 7)] {
        let sc = Scenario::random(seed, n);
        let traces: Vec<Vec<String>> = (0..2)
            .map(|_| {
                let mut sim = sc.build();
                sim.record_trace();
                run_built(&sc, &mut sim).expect("seed passes");
                sim.trace().unwrap_or_default().to_vec()
            })
            .collect();
        assert!(traces[0].len() > 100);
        assert_eq!(traces[0], traces[1]);
        // A different seed takes a different path.
        let other = Scenario::random(seed + 1, n);
        let mut sim = other.build();
        sim.record_trace();
        let _ = run_built(&other, &mut sim);
        assert_ne!(sim.trace().unwrap_or_default(), &traces[0][..]);
    }
}

#[test]
fn seed_plan_has_fixed_and_rotating_seeds() {
    let a = SeedPlan::new(100, 8, 1);
    let b = SeedPlan::new(100, 8, 2);
    assert_eq!(a.seeds[..8], (100..108).collect::<Vec<_>>()[..]);
    assert_eq!(a.seeds.len(), 10);
    assert_ne!(a.seeds[8..], b.seeds[8..], "rotating seeds change with the rotation");
}
