//! `ior-fig-3-6` pins the process to k cores. When it is the first thing
//! in a process to touch rayon (`gridledger experiment run ior-fig-3-6 …`
//! in a fresh process), rayon's global pool is sized under the limit
//! (available_parallelism follows the affinity mask) and stays at k
//! threads after the limit is lifted: every later measurement in the
//! process, the fig-3-6 points at more cores included, runs its parallel
//! signature checks on one thread. Alone in its own test binary: rayon's
//! pool is process-global.

#[cfg(target_os = "linux")]
#[test]
fn attack_rayon_pool_first_used_under_a_core_limit_keeps_every_core() {
    use gridledger_experiments::affinity::{available_cores, limit_cores};
    let all = available_cores();
    if all < 2 {
        return; // nothing to limit on a one-core machine
    }
    {
        let _limit = limit_cores(1).unwrap();
        // What a PBFT run under the limit does: parallel signature checks.
        let _ = gridledger_core::crypto::batch_verify(&[]);
    }
    assert_eq!(rayon::current_num_threads(), all, "rayon's pool sized by the limit, not the machine");
}
