//! Unit tests of the LBFT replica and the simulator sweep.

use super::sim::{run_seed, SchemeKind};
use gridledger_sim::SeedPlan;

#[test]
fn simulator_sweep_holds_agreement_order_integrity_and_liveness() {
    let plan = SeedPlan::from_env(0x1bf7_0000, 1_000);
    let mut failures = Vec::new();
    for &seed in &plan.seeds {
        if let Err(e) = run_seed(seed, SchemeKind::Sim, None) {
            failures.push(format!("{e}; {}", SeedPlan::replay_hint(seed)));
        }
    }
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), plan.seeds.len(), failures.join("\n"));
}

#[test]
#[ignore]
fn profile_seeds() {
    for seed in 0x1bf7_0000..0x1bf7_0000 + 30 {
        let t = std::time::Instant::now();
        let s = super::sim::scenario(seed);
        let r = super::sim::run(&s, SchemeKind::Sim, None);
        let ok = super::sim::check(&s, &r);
        eprintln!(
            "seed {seed} n={} byz={:?} crash={:?} live={} end={} msgs={} faults={} epochs={:?} {:?} {:?}",
            s.n,
            s.byzantine,
            s.crashed,
            s.expect_liveness,
            r.end_time,
            r.messages,
            r.faults,
            r.deliveries.values().map(|v| v.len()).collect::<Vec<_>>(),
            t.elapsed(),
            ok.err()
        );
    }
}
