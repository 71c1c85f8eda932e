//! Durable, atomic storage of a party's [`ChannelStore`]: the "persist" of
//! persist-before-send (DESIGN principle 5: a crash at any instant loses no
//! committed data).
//!
//! A save appends one record to `store.log` — `[len: u32 LE][check: 8 bytes
//! of a tagged SHA-256 of the body][body]` — and, with
//! [`Durability::Fsync`], makes it durable with one `fdatasync`. (The
//! previous design rewrote a whole snapshot file per save: write, fsync,
//! rename, fsync the directory — two fsyncs and a rename per save.) Reading
//! takes the newest valid record; a torn tail (a crash mid-append) fails its
//! length or check and is ignored, and truncated when the file is next opened
//! for writing. When the log passes [`COMPACT_AFTER`] bytes the newest store
//! is written as an atomic snapshot (`store.bin`: tmp, fsync, rename, fsync
//! dir) and the log is emptied; the reader takes whichever of snapshot and
//! log has the higher `version`, so a crash between the two steps loses
//! nothing. Only after a save returns does the driver feed
//! `Input::Persisted`, releasing the signatures the store covers.

use crate::machine::{ChannelError, ChannelStore, MAX_STORE_BYTES};
use gridledger_core::codec::{hash_parts, Tag};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the compacted snapshot inside a party's directory.
pub const STORE_FILE: &str = "store.bin";
/// File name of the append-only log of stores.
pub const LOG_FILE: &str = "store.log";
/// Lock file inside a party's directory: an open [`StoreFile`] holds an
/// exclusive lock on it for its whole life, so two processes never write
/// (or cut) one store.
pub const LOCK_FILE: &str = "store.lock";
/// Log size (bytes) after which it is compacted into the snapshot.
pub const COMPACT_AFTER: u64 = 4 << 20;

const LOG_TAG: Tag = Tag("gridledger/channel-log/v1");
const HEADER: usize = 12;

/// Errors of the snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Corrupt { path: String, source: ChannelError },
    /// Another open [`StoreFile`] (another party process, or a second
    /// handle in this one) holds the directory's lock; nothing was read or
    /// changed.
    #[error("{dir}: the channel store is in use by another process (lock {LOCK_FILE} held)")]
    Locked { dir: String },
    /// An intact log record (its check holds, so it is not a torn write)
    /// whose body this build cannot decode: written by a newer build (a
    /// rolled-back deploy) or damaged in a way the check cannot see.
    /// Nothing is read past it and nothing is cut: opening refuses, so the
    /// party never restarts from an older store than the one it committed.
    #[error("{path}: record at byte {offset} is intact but not a store this build can read (written by a newer version?): {source}; refusing to open, nothing was changed")]
    UnknownRecord { path: String, offset: u64, source: ChannelError },
}

/// How hard a save tries to reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync every save: survives power loss (the default).
    Fsync,
    /// Write only: survives a process crash, not a power loss. For
    /// measurements that separate protocol cost from disk cost.
    ProcessCrashOnly,
}

/// One party's store log, with the time spent saving.
pub struct StoreFile {
    dir: PathBuf,
    durability: Durability,
    log: File,
    /// Holds the exclusive lock on [`LOCK_FILE`] while this store is open
    /// (released when dropped, or by the kernel when the process dies).
    _lock: File,
    /// Holds the exclusive lock on the directory itself: unlike the lock
    /// file, the directory cannot be removed or replaced by rename under
    /// the live party while it holds files, so deleting `store.lock` does
    /// not let a second open in.
    _dir_lock: File,
    log_len: u64,
    /// A lagging save is written but not yet synced.
    unsynced: bool,
    saves: u64,
    save_time: Duration,
    syncs: u64,
}

fn io_err(path: &Path, source: std::io::Error) -> DiskError {
    DiskError::Io { path: path.display().to_string(), source }
}

fn check_of(body: &[u8]) -> [u8; 8] {
    let h = hash_parts(LOG_TAG, &[body]);
    let mut c = [0u8; 8];
    c.copy_from_slice(&h.0[..8]);
    c
}

/// One encoded log record.
fn record(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&check_of(body));
    out.extend_from_slice(body);
    out
}

/// The newest valid store in a log's bytes, and where the valid prefix ends
/// (a record whose check fails ends it: a torn write at the tail, cut on
/// open). A record whose check holds but whose body does not decode is no
/// torn write: its offset and the decode error come back instead, and the
/// caller refuses the log.
fn scan(bytes: &[u8]) -> Result<(Option<ChannelStore>, usize), (usize, ChannelError)> {
    let (mut at, mut newest) = (0usize, None);
    while bytes.len() >= at + HEADER {
        let mut l = [0u8; 4];
        l.copy_from_slice(&bytes[at..at + 4]);
        let len = u32::from_le_bytes(l) as usize;
        let Some(end) = (at + HEADER).checked_add(len).filter(|e| *e <= bytes.len()) else { break };
        let body = &bytes[at + HEADER..end];
        if bytes[at + 4..at + HEADER] != check_of(body) {
            break;
        }
        match ChannelStore::from_bytes(body) {
            Ok(s) => newest = Some(s),
            Err(e) => return Err((at, e)),
        }
        at = end;
    }
    Ok((newest, at))
}

fn newer(a: Option<ChannelStore>, b: Option<ChannelStore>) -> Option<ChannelStore> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.version >= a.version { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Largest `store.log` read back: compaction empties it once it passes
/// [`COMPACT_AFTER`], so it never holds more than that and one record.
pub const MAX_LOG_BYTES: u64 = COMPACT_AFTER + (HEADER + MAX_STORE_BYTES) as u64;

/// Reads a store file of at most `max` bytes; `Ok(None)` if it is absent.
/// A party directory may be damaged or hostile: anything but a regular file
/// (a FIFO would block the reader forever, `/dev/zero` would fill memory)
/// or a file over the bound is refused with a typed error at once, never
/// waited on. The kind is checked before opening (opening a FIFO blocks)
/// and again on the opened file, and the read itself is bounded.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, DiskError> {
    let refuse = |why: String| io_err(path, std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    let check = |m: &fs::Metadata| -> Result<(), DiskError> {
        if !m.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if m.len() > max {
            return Err(refuse(format!("{} bytes, more than the {max} a store may hold", m.len())));
        }
        Ok(())
    };
    match fs::metadata(path) {
        Ok(m) => check(&m)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    }
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    check(&f.metadata().map_err(|e| io_err(path, e))?)?;
    let mut b = vec![];
    f.take(max.saturating_add(1)).read_to_end(&mut b).map_err(|e| io_err(path, e))?;
    if b.len() as u64 > max {
        return Err(refuse(format!("more than the {max} bytes a store may hold")));
    }
    Ok(Some(b))
}

fn read_snapshot(dir: &Path) -> Result<Option<ChannelStore>, DiskError> {
    let path = dir.join(STORE_FILE);
    let Some(b) = read_bounded(&path, MAX_STORE_BYTES as u64)? else { return Ok(None) };
    ChannelStore::from_bytes(&b)
        .map(Some)
        .map_err(|source| DiskError::Corrupt { path: path.display().to_string(), source })
}

fn read_log(dir: &Path) -> Result<(Option<ChannelStore>, usize), DiskError> {
    let path = dir.join(LOG_FILE);
    match read_bounded(&path, MAX_LOG_BYTES)? {
        None => Ok((None, 0)),
        Some(b) => scan(&b).map_err(|(offset, source)| DiskError::UnknownRecord {
            path: path.display().to_string(),
            offset: offset as u64,
            source,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), DiskError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_err(dir, e))
}

impl StoreFile {
    /// Uses (and creates) `dir`; takes the directory's exclusive locks
    /// (an `flock` on the directory itself, then on [`LOCK_FILE`]), then
    /// cuts a torn tail off the log. The directory lock is what makes the
    /// store exclusive even when `store.lock` is deleted or replaced while
    /// the party runs (a "stale lock" cleanup); the lock file stays so
    /// that outside tools (`flock(1)` on it) can still hold the store. A directory whose
    /// lock another open store holds is refused with [`DiskError::Locked`]
    /// before anything is read or cut (a second party process on one
    /// directory would otherwise cut off records the live one appended).
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, DiskError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let dir_lock = File::open(dir).map_err(|e| io_err(dir, e))?;
        match dir_lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DiskError::Locked { dir: dir.display().to_string() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(dir, e)),
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DiskError::Locked { dir: dir.display().to_string() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, e)),
        }
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let (_, valid) = read_log(dir)?;
        let mut log = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        log.set_len(valid as u64).map_err(|e| io_err(&path, e))?;
        log.seek(SeekFrom::End(0)).map_err(|e| io_err(&path, e))?;
        if durability == Durability::Fsync {
            log.sync_all().map_err(|e| io_err(&path, e))?;
            if !existed {
                sync_dir(dir)?;
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            durability,
            log,
            _lock: lock,
            _dir_lock: dir_lock,
            log_len: valid as u64,
            unsynced: false,
            saves: 0,
            save_time: Duration::ZERO,
            syncs: 0,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// The last saved store, if any.
    pub fn load(&self) -> Result<Option<ChannelStore>, DiskError> {
        load_store(&self.dir)
    }

    /// Durably appends `store` (one write, one fdatasync).
    pub fn save(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        let t = Instant::now();
        let path = self.path();
        let rec = record(&store.to_bytes());
        self.log.write_all(&rec).map_err(|e| io_err(&path, e))?;
        if self.durability == Durability::Fsync {
            self.log.sync_data().map_err(|e| io_err(&path, e))?;
            self.syncs += 1;
        }
        self.unsynced = false;
        self.log_len += rec.len() as u64;
        if self.log_len > COMPACT_AFTER {
            self.compact(store)?;
        }
        self.saves += 1;
        self.save_time += t.elapsed();
        Ok(())
    }

    /// Appends `store` without waiting for the disk: a process crash keeps
    /// it (the kernel has it), a power cut may not. The next [`Self::save`]
    /// or [`Self::flush`] makes it durable too (same file, in order).
    pub fn save_lagging(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        let t = Instant::now();
        let path = self.path();
        let rec = record(&store.to_bytes());
        self.log.write_all(&rec).map_err(|e| io_err(&path, e))?;
        self.log_len += rec.len() as u64;
        self.unsynced = true;
        if self.log_len > COMPACT_AFTER {
            self.compact(store)?;
        }
        self.saves += 1;
        self.save_time += t.elapsed();
        Ok(())
    }

    /// Makes lagging saves durable.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if self.unsynced && self.durability == Durability::Fsync {
            let path = self.path();
            self.log.sync_data().map_err(|e| io_err(&path, e))?;
            self.syncs += 1;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Writes `store` as the atomic snapshot, then empties the log.
    fn compact(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        let path = self.dir.join(STORE_FILE);
        let tmp = self.dir.join(format!("{STORE_FILE}.tmp"));
        {
            let mut f =
                OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&store.to_bytes()).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        sync_dir(&self.dir)?;
        let log = self.path();
        self.log.set_len(0).map_err(|e| io_err(&log, e))?;
        self.log.seek(SeekFrom::Start(0)).map_err(|e| io_err(&log, e))?;
        self.log.sync_all().map_err(|e| io_err(&log, e))?;
        self.log_len = 0;
        Ok(())
    }

    /// Saves done and their total time.
    pub fn stats(&self) -> (u64, Duration) {
        (self.saves, self.save_time)
    }

    /// fdatasyncs done by saves and flushes (compaction not counted).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }
}

/// Reads the newest store in `dir` (snapshot or log, whichever is newer)
/// without opening it for writing (the watch service reads the daemon's
/// files this way).
pub fn load_store(dir: &Path) -> Result<Option<ChannelStore>, DiskError> {
    let snap = read_snapshot(dir)?;
    let (log, _) = read_log(dir)?;
    Ok(newer(snap, log))
}

/// Test support, not for a real channel: the store of a fresh side-0,
/// deposit-funded channel with tiny capacities, keyed by `seed` and
/// relabelled `version`, for tests of store files and persisters (here and
/// in the node's party process).
pub fn test_store(seed: &str, version: u64) -> ChannelStore {
    use crate::machine::{ChannelMachine, ChannelParams};
    use gridledger_contracts::cns::{Domain, Funding};
    use gridledger_core::{Amount, Hash32, KeyPair};
    let k = KeyPair::from_seed(seed);
    let params = ChannelParams {
        domain: Domain::cns(1),
        side: 0,
        peer_key: k.public(),
        scid: Hash32([1; 32]),
        cid: Hash32([2; 32]),
        t_delta_ms: 10_000,
        capacity: [Amount(1), Amount(1)],
        funding: Funding::Deposit,
        retry_ms: 1,
        close_timeout_ms: 1,
        min_t_delta_ms: 1,
        policy: None,
        auto_pay: None,
        window: 1,
    };
    let mut s = ChannelMachine::new(k, [0; 32], params).store().clone();
    s.version = version;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(version: u64) -> ChannelStore {
        test_store("disk", version)
    }

    #[test]
    fn the_newest_record_wins_and_a_torn_tail_is_ignored_then_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        for v in 1..=3 {
            f.save(&store(v)).unwrap();
        }
        drop(f);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 3);
        // A crash mid-append: half of record 4 on disk.
        let rec = record(&store(4).to_bytes());
        let mut raw = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).unwrap();
        raw.write_all(&rec[..rec.len() / 2]).unwrap();
        drop(raw);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 3, "torn record ignored");
        // A flipped byte in the last whole record fails its check.
        let len = fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        let mut f = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        assert!(fs::metadata(dir.path().join(LOG_FILE)).unwrap().len() < len, "torn tail cut on open");
        f.save(&store(5)).unwrap();
        drop(f);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 5, "appends after the cut are read");
        let mut bytes = fs::read(dir.path().join(LOG_FILE)).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 3, "corrupt record rejected");
    }

    #[test]
    fn a_lagging_save_is_read_back_and_flushed_by_the_next_save() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        f.save(&store(1)).unwrap();
        f.save_lagging(&store(2)).unwrap();
        assert!(f.unsynced);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 2, "written (a process crash keeps it)");
        f.save(&store(3)).unwrap();
        assert!(!f.unsynced, "the synced save covers the lagging one");
        f.save_lagging(&store(4)).unwrap();
        f.flush().unwrap();
        assert!(!f.unsynced);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, 4);
    }

    #[test]
    fn unreadable_and_corrupt_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STORE_FILE), b"not a store").unwrap();
        assert!(matches!(load_store(dir.path()), Err(DiskError::Corrupt { .. })));
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(LOG_FILE)).unwrap();
        assert!(matches!(load_store(dir.path()), Err(DiskError::Io { .. })));
        assert!(matches!(StoreFile::open(dir.path(), Durability::Fsync), Err(DiskError::Io { .. })));
        // A link to an endless device is refused before anything is read.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(LOG_FILE)).unwrap();
        let e = load_store(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // A snapshot over the bound is refused, not read.
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join(STORE_FILE)).unwrap();
        f.set_len(MAX_STORE_BYTES as u64 + 1).unwrap();
        let e = load_store(dir.path()).unwrap_err().to_string();
        assert!(e.contains("more than"), "{e}");
    }

    #[test]
    fn a_second_open_of_a_locked_store_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        f.save(&store(1)).unwrap();
        let len = fs::metadata(dir.path().join(LOG_FILE)).unwrap().len();
        // A torn tail the second open would cut if it got that far.
        let mut raw = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).unwrap();
        raw.write_all(&[7u8; 5]).unwrap();
        drop(raw);
        let e = StoreFile::open(dir.path(), Durability::Fsync).err().expect("second open refused");
        assert!(matches!(&e, DiskError::Locked { dir: d } if d == &dir.path().display().to_string()), "{e}");
        assert_eq!(fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(), len + 5, "nothing cut");
        drop(f);
        // Released with the handle.
        let f = StoreFile::open(dir.path(), Durability::Fsync).unwrap();
        assert_eq!(fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(), len, "torn tail cut by the owner");
        drop(f);
    }

    #[test]
    fn compaction_keeps_the_newest_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = StoreFile::open(dir.path(), Durability::ProcessCrashOnly).unwrap();
        let per = record(&store(1).to_bytes()).len() as u64;
        let n = COMPACT_AFTER / per + 2;
        for v in 1..=n {
            f.save(&store(v)).unwrap();
        }
        assert!(dir.path().join(STORE_FILE).exists(), "compacted into the snapshot");
        assert!(fs::metadata(dir.path().join(LOG_FILE)).unwrap().len() < COMPACT_AFTER);
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, n);
        // An older log (a crash before the log was emptied) loses to the
        // newer snapshot, and the reverse.
        let snap = read_snapshot(dir.path()).unwrap().unwrap().version;
        assert!(snap < n, "the snapshot holds the store of the compaction");
        fs::write(dir.path().join(LOG_FILE), record(&store(2).to_bytes())).unwrap();
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, snap);
        fs::write(dir.path().join(LOG_FILE), record(&store(n + 1).to_bytes())).unwrap();
        assert_eq!(load_store(dir.path()).unwrap().unwrap().version, n + 1);
    }
}
