//! The `bench lbft` replicas' log attacks' cluster harness (rounds 10,
//! 12, 13 and 14): the replica processes driven directly (`bench
//! lbft-replica`), their configuration files written here, so a replica can
//! be SIGKILLed at any instant, its log read and damaged, and the cluster
//! restarted from the same data directories.
//!
//! A replica's log is its records, then the zeros its writer keeps ahead
//! of them (see [`records`]); the tests that read or damage a log take
//! its records' end from the records, never from the file's length.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use borsh::{BorshDeserialize, BorshSerialize};

pub const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// One cluster at a time: four replica processes each (see `lbft.rs`).
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The replica's configuration file as `bench lbft` writes it (same
/// fields, same order: borsh).
#[derive(BorshSerialize, BorshDeserialize, Clone)]
pub struct ReplicaFile {
    pub index: u32,
    pub n: u32,
    pub ports: Vec<u16>,
    pub echo_keys: Vec<gridledger_core::ed25519::EdPublicKey>,
    pub coin_keys: Vec<u8>,
    pub echo_secret: [u8; 32],
    pub coin_share: Vec<u8>,
    pub rate: u64,
    pub flood: u64,
    pub seconds: u64,
    pub batch: u32,
    pub opaque: bool,
    pub policy: String,
    pub tau: u32,
    pub groups: u32,
    pub pipeline: u64,
    pub fsync: bool,
    pub max_in_flight: u64,
    pub log_append: bool,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub files: Vec<ReplicaFile>,
}

pub fn free_ports(n: usize) -> Vec<u16> {
    // Held together so the ports differ.
    let ls: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    ls.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

impl Cluster {
    /// Four replicas, opaque transactions and the FIFO source (the
    /// ordering layer and its log; no signing, so a debug build keeps up).
    pub fn new(seconds: u64, rate: u64) -> Self {
        let n = 4usize;
        let mut rng = rand::rng();
        let keys = gridledger_consensus::lbft::crypto::deal_keys(n, &mut rng).expect("deal");
        let ports = free_ports(n);
        let dir = tempfile::tempdir().expect("dir");
        let files: Vec<ReplicaFile> = (0..n)
            .map(|i| ReplicaFile {
                index: i as u32,
                n: n as u32,
                ports: ports.clone(),
                echo_keys: keys.echo_public.clone(),
                coin_keys: keys.coin_public.to_bytes(),
                echo_secret: keys.echo_secret[i],
                coin_share: keys.coin_shares[i].to_bytes(),
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
                log_append: false,
            })
            .collect();
        let c = Self { dir, files };
        for i in 0..n {
            std::fs::create_dir_all(c.data(i)).expect("data dir");
        }
        c.write_files();
        c
    }

    pub fn write_files(&self) {
        for (i, f) in self.files.iter().enumerate() {
            std::fs::write(self.config(i), borsh::to_vec(f).expect("encode")).expect("write config");
        }
    }

    /// New ports and run length for a restart of the whole cluster.
    pub fn rerun(&mut self, seconds: u64) {
        let ports = free_ports(self.files.len());
        for f in &mut self.files {
            f.ports = ports.clone();
            f.seconds = seconds;
        }
        self.write_files();
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("replica-{i}.bin"))
    }

    pub fn data(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("data-{i}"))
    }

    pub fn log(&self, i: usize) -> PathBuf {
        self.data(i).join("lbft.log")
    }

    pub fn spawn(&self, i: usize) -> Child {
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
pub struct Outcome {
    pub ok: bool,
    pub report: serde_json::Value,
    pub stderr: String,
}

pub fn finish(c: Child) -> Outcome {
    let out = c.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = text.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(serde_json::Value::Null);
    Outcome { ok: out.status.success(), report, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

pub fn digests(r: &serde_json::Value) -> Vec<String> {
    r["epoch_digests"]
        .as_array()
        .map(|v| v.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The log's first bytes (format v5).
pub const MAGIC: &[u8; 8] = b"GLLBFT\x00\x05";
/// The log's header: [`MAGIC`] ‖ salt ‖ crc32(magic ‖ salt).
pub const HEADER: usize = 20;

/// Where each whole record of a v5 log starts and ends (header included):
/// a 20-byte header `GLLBFT\0\5 ‖ salt ‖ crc32(magic ‖ salt)`, records
/// `salt ‖ len ‖ crc32(salt ‖ len ‖ body) ‖ body`, up to the first place
/// that does not hold a whole record. A replica's log writer keeps zeros
/// (written and synced) after its last record and writes each record over
/// them, so a log a replica left is its records, then zeros; a crash may
/// leave one torn record (some of its bytes, zeros for the rest) between
/// the two, and it is not whole.
pub fn records(log: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&log[..8], MAGIC, "a v5 log");
    let salt = &log[8..16];
    let mut out = Vec::new();
    let mut at = HEADER;
    while at + 16 <= log.len() && &log[at..at + 8] == salt {
        let len = u32::from_le_bytes(log[at + 8..at + 12].try_into().expect("4")) as usize;
        let end = at + 16 + len;
        if end > log.len() {
            break;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&log[at..at + 12]);
        h.update(&log[at + 16..end]);
        if h.finalize().to_le_bytes() != log[at + 12..at + 16] {
            break;
        }
        out.push((at, end));
        at = end;
    }
    out
}

/// Where the whole records of `log` end (the header's end if it has
/// none), asserting that only zeros follow them: the log of a replica
/// that ran to its end (the zeros its writer keeps ahead of the records,
/// if any). Returns that end.
pub fn records_then_zeros(log: &[u8]) -> usize {
    let end = records(log).last().map_or(HEADER, |r| r.1);
    assert!(
        log[end..].iter().all(|&b| b == 0),
        "the log holds whole records up to byte {end}, then zeros only (a {}-byte file)",
        log.len()
    );
    end
}

/// Runs the four replicas to their end.
pub fn run_all(c: &Cluster) -> Vec<Outcome> {
    let children: Vec<Child> = (0..c.files.len()).map(|i| c.spawn(i)).collect();
    children.into_iter().map(finish).collect()
}
