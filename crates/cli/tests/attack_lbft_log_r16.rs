//! Attack round 16 on the `bench lbft` replicas' log (format v4: a
//! self-checking 20-byte header, salted CRC-32 records, a torn tail cut,
//! damage before a whole record refused with both offsets, the header
//! written again only when all zeros or a prefix of one).
//!
//! Held up: replica 0 SIGKILLed again and again at pseudo-random instants
//! of its first few hundred milliseconds — while its log is created, its
//! header synced, its first records appended, and while a restarted
//! replica takes up its log and catches up — with the other three running
//! on; every restart takes up the log, and after a whole-cluster restart
//! its delivered epochs agree with replica 1's
//! (`a_replica_killed_again_and_again_early_restarts_and_agrees`).
//!
//! Run with `cargo test -p gridledger-cli --test attack_lbft_log_r16`.

mod common;

use common::lbft_log::*;
use std::process::Child;

#[test]
fn a_replica_killed_again_and_again_early_restarts_and_agrees() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::new(4, 400);
    let others: Vec<Child> = (1..c.files.len()).map(|i| c.spawn(i)).collect();
    // Kill points (ms after the spawn), from a fixed xorshift stream: the
    // first ones inside the log's creation, later ones among its records.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut kills = Vec::new();
    for round in 0..8u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let at = round * 50 + rng % 50;
        let mut r0 = c.spawn(0);
        std::thread::sleep(std::time::Duration::from_millis(at));
        // A replica that already failed (it could not take up its log)
        // has exited: its stderr says why.
        if let Some(status) = r0.try_wait().expect("poll replica 0") {
            let o = finish(r0);
            panic!(
                "replica 0 exited ({status}) before kill {round} at {at} ms (kills before: {kills:?}): {}",
                o.stderr
            );
        }
        r0.kill().expect("SIGKILL replica 0");
        let _ = r0.wait();
        kills.push(at);
    }
    // Once more, to the end of its run.
    let last = finish(c.spawn(0));
    assert!(last.ok, "replica 0 could not restart after kills at {kills:?} ms: {}", last.stderr);
    for (i, ch) in others.into_iter().enumerate() {
        let o = finish(ch);
        assert!(o.ok, "replica {} failed: {}", i + 1, o.stderr);
    }
    c.rerun(2);
    let second = run_all(&c);
    let (r0, r1) = (&second[0], &second[1]);
    assert!(r0.ok, "replica 0 could not take up its log: {}", r0.stderr);
    let (d0, d1) = (digests(&r0.report), digests(&r1.report));
    let common = d0.len().min(d1.len());
    assert!(common >= 1, "epochs delivered after the restart");
    assert_eq!(d0[..common], d1[..common], "replica 0 (killed at {kills:?} ms) forked");
}
