//! Attack round 17 on the improved optimistic rollup (issue 11) through the
//! CLI: `gridledger ior day --rpc` killed (SIGKILL) at pseudo-random
//! instants, several times in one day, and resumed by the same command
//! each time: the resuming runs are killed too (round 12 killed a day
//! once at a random instant; round 13 at chosen protocol steps).
//!
//! Held up: after the last rerun nothing is pending or open, no one is
//! penalised, and each account's balance is its funding plus what it sold
//! minus what it bought, each agreement once (no double settlement,
//! nothing committed lost).

mod common;

use common::ior::*;
use common::*;
use std::process::Stdio;
use std::time::Duration;

/// Kills the day after its first batch is recorded (a random instant
/// later), then kills each of the
/// next two resuming runs at instants drawn from a fixed seed (0.3 s to
/// 3 s after its start: in the middle of its resume or of the day),
/// resumes it to the end, then checks every account.
#[test]
fn a_day_killed_at_random_instants_resumes_to_exact_balances() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let args = day_args(&c, &f, "24..27");
    // A small xorshift from a fixed seed: reproducible "random" instants.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ 17;
    let mut kills = Vec::new();
    for _ in 0..3 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ms = 300 + x % 2_700;
        let mut run = bin().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        if kills.is_empty() {
            wait_first_batch(&url);
        }
        std::thread::sleep(Duration::from_millis(ms));
        let ended = run.try_wait().unwrap();
        let _ = run.kill();
        let _ = run.wait();
        kills.push((ms, ended.is_some()));
    }
    let o = gl(&args);
    assert!(o.status.success(), "the last rerun after kills {kills:?}: {} {}", stdout(&o), stderr(&o));
    let (next, fin, open, reputations, rs) = after(&url);
    assert_eq!((fin, open), (next, 0), "something left pending or open after kills {kills:?}");
    assert!(reputations.iter().all(|r| *r == rs), "penalised after kills {kills:?}: {reputations:?}");
    let rows = balances_vs_trades(&url, 15, 50_000_000);
    let total: u128 = rows.iter().map(|r| r.1).sum();
    assert_eq!(total, 15 * 50_000_000, "IOR coin after kills {kills:?}");
    for (a, have, want) in rows {
        assert_eq!(have, want, "account {a} after kills {kills:?}");
    }
}
