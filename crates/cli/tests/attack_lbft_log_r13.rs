//! Attack round 13 on the `bench lbft` replicas' own log (format v3:
//! a 16-byte header `GLLBFT\0\3 ‖ salt`, records
//! `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖ body`). The salt is read from
//! the header alone and nothing checks it: a damaged header salt makes
//! every record look damaged, no later place holds the (wrong) salt, so
//! the whole log is taken for one torn last record and cut.
//!
//! The cluster harness is round 12's (the replica processes driven
//! directly, their configuration files written here).

use std::process::Child;

mod common;

use common::lbft_log::*;

/// Runs the cluster once, changes replica 0's log with `damage`, restarts
/// the cluster and returns replica 0's first run's delivered epochs, its
/// log before the damage, its restart and its log after the restart.
fn damaged_restart(damage: impl Fn(&mut Vec<u8>)) -> (Vec<String>, Vec<u8>, Outcome, Vec<u8>) {
    let mut c = Cluster::new(2, 400);
    let first = run_all(&c);
    for (i, o) in first.iter().enumerate() {
        assert!(o.ok, "replica {i} failed: {}", o.stderr);
    }
    let delivered = digests(&first[0].report);
    assert!(delivered.len() >= 3, "a few epochs delivered: {}", first[0].report);
    let path = c.log(0);
    let before = std::fs::read(&path).expect("read log");
    let whole = records(&before);
    assert!(whole.len() >= 3, "a few records");
    // The first run left whole records only (then zeros).
    records_then_zeros(&before);
    let mut log = before.clone();
    damage(&mut log);
    std::fs::write(&path, &log).expect("write the damaged log");
    c.rerun(1);
    let mut second = run_all(&c);
    let after = std::fs::read(&path).expect("read log after");
    (delivered, before, second.swap_remove(0), after)
}

/// [1] One flipped bit in the header's salt (byte 8 of the log) wipes the
/// replica's whole log: the salt is taken from the header unchecked, the
/// first record does not start with it, no later place holds it, so the
/// first record is "the torn last record" and the log is cut to its
/// 16-byte header. The replica starts with nothing restored (every
/// delivered epoch, its proposals, echoes and votes forgotten: it may
/// sign a different batch for an epoch it proposed in before) and
/// appends after the cut. The log's own doc says damage with whole
/// records after it is refused and the log left as it is, never cut
/// silently. Should: the replica refuses the log with the reason (the
/// header's salt matches no record while records follow) and leaves it
/// as it is.
///
/// Fixed: a FIRST record that fails and has nothing whole after it is cut
/// only if it is a torn append (it starts with the salt or a prefix of it)
/// or a zero-filled tail; otherwise the log is refused and left as it is.
#[test]
fn a_damaged_header_salt_is_refused_not_taken_for_a_torn_log() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (delivered, before, o, after) = damaged_restart(|log| log[8] ^= 0x01);
    let restored = o.report["restored_epochs"].as_u64().unwrap_or(0) as usize;
    let mut damaged = before.clone();
    damaged[8] ^= 0x01;
    assert!(
        after.get(..damaged.len()) == Some(&damaged[..]),
        "replica 0 (exit ok: {}) rewrote a log whose header salt is damaged: restored {restored} of {} delivered \
         epochs; its records are gone (log of {} bytes, {} now, first {} bytes differ)",
        o.ok,
        delivered.len(),
        before.len(),
        after.len(),
        before.len()
    );
    assert!(!o.ok || restored >= delivered.len(), "restored {restored} of {} delivered epochs", delivered.len());
}

/// Held up: a flipped bit in a middle record's salt is refused (a whole
/// record with the header's salt follows it), the log left as it is.
#[test]
fn a_damaged_middle_record_salt_is_refused() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_, before, o, after) = damaged_restart(|log| {
        let whole = records(log);
        let (at, _) = whole[whole.len() / 2];
        log[at] ^= 0x01;
    });
    assert!(!o.ok, "a damaged middle record is refused");
    assert!(o.stderr.contains("damaged"), "the reason is given: {}", o.stderr);
    assert_eq!(after.len(), before.len(), "the log is left as it is");
}

/// Held up: a flipped bit in the header's magic is refused (unknown
/// header), the log left as it is.
#[test]
fn a_damaged_header_magic_is_refused() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_, before, o, after) = damaged_restart(|log| log[3] ^= 0x01);
    assert!(!o.ok, "a log with a damaged magic is refused");
    assert_eq!(after.len(), before.len(), "the log is left as it is");
}

/// Held up: replica 0 killed with SIGKILL at a random instant of its run
/// (the others run on), then the cluster restarted: replica 0 takes up its
/// log (a torn last record is cut) and its delivered epochs agree with
/// replica 1's, epoch by epoch.
#[test]
fn a_replica_killed_at_a_random_instant_restarts_and_agrees() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    use rand::Rng;
    let mut rng = rand::rng();
    for round in 0..2 {
        let mut c = Cluster::new(3, 400);
        let mut children: Vec<Child> = (0..c.files.len()).map(|i| c.spawn(i)).collect();
        let at = rng.random_range(300..2_500u64);
        std::thread::sleep(std::time::Duration::from_millis(at));
        children[0].kill().expect("SIGKILL replica 0");
        let _ = children.remove(0).wait();
        for (i, ch) in children.into_iter().enumerate() {
            let o = finish(ch);
            assert!(o.ok, "round {round}: replica {} failed: {}", i + 1, o.stderr);
        }
        c.rerun(2);
        let second = run_all(&c);
        let (r0, r1) = (&second[0], &second[1]);
        assert!(
            r0.ok,
            "round {round}: replica 0 killed after {at} ms could not restart: {}",
            r0.stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        );
        let (d0, d1) = (digests(&r0.report), digests(&r1.report));
        let common = d0.len().min(d1.len());
        assert!(common >= 1, "round {round}: epochs delivered after the restart");
        assert_eq!(d0[..common], d1[..common], "round {round}: replica 0 (killed after {at} ms) forked");
    }
}
