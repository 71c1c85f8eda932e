//! Attack round 13 on the `bench lbft` replicas' own log (format v3:
//! a 16-byte header `GLLBFT\0\3 ‖ salt`, records
//! `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖ body`). The salt is read from
//! the header alone and nothing checks it: a damaged header salt makes
//! every record look damaged, no later place holds the (wrong) salt, so
//! the whole log is taken for one torn last record and cut.
//!
//! The cluster harness is round 12's (the replica processes driven
//! directly, their configuration files written here).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use borsh::{BorshDeserialize, BorshSerialize};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// One cluster at a time: four replica processes each (see `lbft.rs`).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// The replica's configuration file as `bench lbft` writes it (same
/// fields, same order: borsh).
#[derive(BorshSerialize, BorshDeserialize, Clone)]
struct ReplicaFile {
    index: u32,
    n: u32,
    ports: Vec<u16>,
    cert_keys: Vec<u8>,
    coin_keys: Vec<u8>,
    cert_share: Vec<u8>,
    coin_share: Vec<u8>,
    rate: u64,
    flood: u64,
    seconds: u64,
    batch: u32,
    opaque: bool,
    policy: String,
    tau: u32,
    groups: u32,
    pipeline: u64,
    fsync: bool,
    max_in_flight: u64,
}

struct Cluster {
    dir: tempfile::TempDir,
    files: Vec<ReplicaFile>,
}

fn free_ports(n: usize) -> Vec<u16> {
    // Held together so the ports differ.
    let ls: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    ls.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

impl Cluster {
    /// Four replicas, opaque transactions and the FIFO source (the
    /// ordering layer and its log; no signing, so a debug build keeps up).
    fn new(seconds: u64, rate: u64) -> Self {
        let n = 4usize;
        let mut rng = rand::rng();
        let (cert_pk, cert_sk) = gridledger_threshold::deal(n, 3, &mut rng).expect("deal");
        let (coin_pk, coin_sk) = gridledger_threshold::deal(n, 2, &mut rng).expect("deal");
        let ports = free_ports(n);
        let dir = tempfile::tempdir().expect("dir");
        let files: Vec<ReplicaFile> = (0..n)
            .map(|i| ReplicaFile {
                index: i as u32,
                n: n as u32,
                ports: ports.clone(),
                cert_keys: cert_pk.to_bytes(),
                coin_keys: coin_pk.to_bytes(),
                cert_share: cert_sk[i].to_bytes(),
                coin_share: coin_sk[i].to_bytes(),
                rate: rate / n as u64,
                flood: 0,
                seconds,
                batch: 4_000,
                opaque: true,
                policy: "fifo".into(),
                tau: 3,
                groups: 1,
                pipeline: 0,
                fsync: true,
                max_in_flight: 0,
            })
            .collect();
        let c = Self { dir, files };
        for i in 0..n {
            std::fs::create_dir_all(c.data(i)).expect("data dir");
        }
        c.write_files();
        c
    }

    fn write_files(&self) {
        for (i, f) in self.files.iter().enumerate() {
            std::fs::write(self.config(i), borsh::to_vec(f).expect("encode")).expect("write config");
        }
    }

    /// New ports and run length for a restart of the whole cluster.
    fn rerun(&mut self, seconds: u64) {
        let ports = free_ports(self.files.len());
        for f in &mut self.files {
            f.ports = ports.clone();
            f.seconds = seconds;
        }
        self.write_files();
    }

    fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("replica-{i}.bin"))
    }

    fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("data-{i}"))
    }

    fn log(&self, i: usize) -> PathBuf {
        self.data(i).join("lbft.log")
    }

    fn spawn(&self, i: usize) -> Child {
        Command::new(BIN)
            .args(["bench", "lbft-replica", "--config"])
            .arg(self.config(i))
            .arg("--data-dir")
            .arg(self.data(i))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn replica")
    }
}

/// A replica's end: its exit, its report (the last stdout line) and stderr.
struct Outcome {
    ok: bool,
    report: serde_json::Value,
    stderr: String,
}

fn finish(c: Child) -> Outcome {
    let out = c.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = text.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null);
    Outcome { ok: out.status.success(), report, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn digests(r: &serde_json::Value) -> Vec<String> {
    r["epoch_digests"]
        .as_array()
        .map(|v| v.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Where each whole record of a v3 log starts and ends (header included):
/// a 16-byte header `GLLBFT\0\3 ‖ salt`, records
/// `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖ body`.
fn records(log: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&log[..8], b"GLLBFT\x00\x03", "a v3 log");
    let mut out = Vec::new();
    let mut at = 16usize;
    while at + 16 <= log.len() {
        assert_eq!(log[at..at + 8], log[8..16], "a record starts with the log's salt");
        let len = u32::from_le_bytes(log[at + 8..at + 12].try_into().expect("4")) as usize;
        if at + 16 + len > log.len() {
            break;
        }
        out.push((at, at + 16 + len));
        at += 16 + len;
    }
    out
}

/// Runs the four replicas to their end.
fn run_all(c: &Cluster) -> Vec<Outcome> {
    let children: Vec<Child> = (0..c.files.len()).map(|i| c.spawn(i)).collect();
    children.into_iter().map(finish).collect()
}

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
    assert_eq!(whole.last().map(|r| r.1), Some(before.len()), "the first run left whole records only");
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
