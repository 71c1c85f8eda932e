//! The recovery-based corruption model M^RC (thesis §4.3.2) reused against
//! the primary chain's PBFT: attacked replicas go down for their controlled
//! and recovering epochs and come back from what they persisted. Theorem
//! 4.1 keeps at most f of them down at once, so PBFT must stay safe and
//! live under maximal mobile attacks.

use gridledger_consensus::pbft::sim::{run, Scenario};
use gridledger_sim::adversary_mobile::{McParams, RecoveryCorruption};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn pbft_survives_maximal_mobile_corruption() {
    // N = 10, f = 3: ℓ = 1 attack per epoch, λ = 3, ε = 1 (⌈ελ⌉ = 3 > κ = 2), no static set.
    let params = McParams { replicas: 10, static_ppm: 0, ell: 1, lambda: 3, eps_num: 1, eps_den: 1, kappa: 2 };
    for seed in 0..6u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut m = RecoveryCorruption::new(params, &mut rng).expect("Eq 4.4 holds");
        let mut s = Scenario::random(seed, 10);
        s.byzantine.clear();
        s.disk_crashes.clear();
        s.write_failures.clear();
        let ticks_per_epoch = 400;
        let epochs = s.net.gst / ticks_per_epoch + 30;
        for e in 0..epochs {
            m.random_attacks(e, &mut rng);
            assert!(m.incorrect(e) as u64 <= params.f(), "Theorem 4.1");
        }
        s.net.crashes = m.crash_plan(ticks_per_epoch);
        assert!(!s.net.crashes.is_empty());
        // The mobile crashes go on after GST; allow the chain a longer window.
        s.liveness_window = 2_000_000;
        let report = run(&s).unwrap_or_else(|v| panic!("seed {seed}: {v:?}"));
        assert!(report.crashes > 0, "seed {seed}: the plan was applied");
    }
}
