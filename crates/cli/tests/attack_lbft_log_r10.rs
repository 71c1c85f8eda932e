//! Attack round 10 on the `bench lbft` replicas' own log (then format v2;
//! since round 12 format v3: a 16-byte header `GLLBFT\0\3 ‖ salt`, records
//! `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖ body`, a delivered own
//! proposal written as a reference). The replica processes are driven
//! here directly (`bench lbft-replica`), with their configuration files
//! written by this test, so a replica can be SIGKILLed at any instant, its
//! log read and damaged, and the cluster restarted from the same data
//! directories.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

mod common;

use common::lbft_log::*;

/// A record in the middle of a replica's log that fails its CRC (one
/// flipped bit: a bad sector, a torn page of a write that was not the
/// last) is not a torn *last* record: the records after it are whole,
/// fsynced, and hold delivered epochs and the echoes and votes the
/// replica sent. Today `DiskLog::open` stops at the first bad record and
/// truncates the file there, silently: the replica restarts with the
/// later delivered epochs gone (and the later statements forgotten), and
/// the truncation destroys the good records for good. (Fixed: such a log
/// is refused with the damaged record's byte offset and left as it is.)
#[test]
fn a_damaged_middle_record_does_not_silently_drop_the_later_records() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::new(2, 400);
    let first = run_all(&c);
    for (i, o) in first.iter().enumerate() {
        assert!(o.ok, "replica {i} failed: {}", o.stderr);
    }
    let delivered = digests(&first[0].report);
    assert!(delivered.len() >= 3, "a few epochs delivered: {}", first[0].report);
    let path = c.log(0);
    let mut log = std::fs::read(&path).expect("read log");
    let recs = records(&log);
    assert!(recs.len() >= 4, "several records: {}", recs.len());
    // A bit flipped in the body of a record near the start.
    let (start, end) = recs[1];
    let at = start + 16 + (end - start - 16) / 2;
    log[at] ^= 0x01;
    std::fs::write(&path, &log).expect("damage");
    let before = log.len();

    c.rerun(1);
    let second = run_all(&c);
    let after = std::fs::metadata(&path).expect("log").len() as usize;
    let o = &second[0];
    if o.ok {
        // Taken up: then nothing it had delivered may be missing.
        let restored = o.report["restored_epochs"].as_u64().unwrap_or(0) as usize;
        assert!(
            restored >= delivered.len(),
            "replica 0 restarted with {restored} of its {} delivered epochs (one bit flipped in record {start}..{end} \
             of a {before}-byte log, {} whole records after it); it should refuse the log or keep the whole records \
             after the damage",
            delivered.len(),
            recs.len() - 2
        );
        assert_eq!(digests(&o.report)[..delivered.len()], delivered[..], "and delivered the same epochs again");
    } else {
        // Refused: the log must be left as it was, for an operator.
        assert!(after >= before, "a refused log is not truncated: {before} -> {after}");
    }
}

fn sigkill(c: &mut Child) {
    // `Child::kill` is SIGKILL on Unix.
    c.kill().expect("kill");
    let _ = c.wait();
}

/// Every pair of sequences agrees where both have an epoch.
fn same_prefix(seqs: &[Vec<String>]) -> bool {
    seqs.iter().all(|a| seqs.iter().all(|b| a.iter().zip(b).all(|(x, y)| x == y)))
}

/// Whole records of a log that was SIGKILLed (its tail may be torn).
fn whole_records(path: &Path) -> usize {
    std::fs::read(path).map(|l| records(&l).len()).unwrap_or(0)
}

/// SIGKILL at random instants, one replica again and again and two at
/// once (n = 4 stalls while two are down), each restarted from its log
/// at once: every restart takes its log up, restores at least what the
/// restart before restored, and in the end all four hold the same
/// delivered sequence.
#[test]
fn replicas_killed_at_random_instants_take_up_their_logs_and_agree() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = Cluster::new(6, 400);
    // Proposals two epochs ahead: deliveries refer to proposals written
    // records earlier, several of them pending at each kill.
    for f in &mut c.files {
        f.pipeline = 2;
    }
    c.write_files();
    let seed: u64 = rand::random();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let mut children: Vec<Child> = (0..4).map(|i| c.spawn(i)).collect();
    let mut restored: Vec<u64> = vec![0; 4];
    let mut kills = Vec::new();
    // Let the cluster connect and start.
    std::thread::sleep(Duration::from_millis(2_500));
    for round in 0..5 {
        let wait = rand::Rng::random_range(&mut rng, 50..900);
        std::thread::sleep(Duration::from_millis(wait));
        let victims: Vec<usize> = if round == 2 { vec![2, 3] } else { vec![3] };
        for &v in &victims {
            sigkill(&mut children[v]);
            kills.push((v, wait, whole_records(&c.log(v))));
        }
        for &v in &victims {
            children[v] = c.spawn(v);
        }
    }
    let outs: Vec<Outcome> = children.into_iter().map(finish).collect();
    for (i, o) in outs.iter().enumerate() {
        assert!(o.ok, "seed {seed}: replica {i} failed (kills {kills:?}): {}", o.stderr);
        restored[i] = o.report["restored_epochs"].as_u64().unwrap_or(0);
    }
    let seqs: Vec<Vec<String>> = outs.iter().map(|o| digests(&o.report)).collect();
    assert!(same_prefix(&seqs), "seed {seed}: sequences differ (kills {kills:?}): {seqs:?}");
    assert!(restored[3] > 0, "seed {seed}: the last restart of replica 3 restored epochs: {restored:?}");
    for s in &seqs {
        assert!(
            s.len() as u64 >= restored[3],
            "seed {seed}: {restored:?} {:?}",
            seqs.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }
}
