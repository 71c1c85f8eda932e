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
//!
//! **The directory is held by handle.** [`StoreFile::open`] opens the party
//! directory once (`O_DIRECTORY`), `flock`s that descriptor, and does every
//! later open, rename and directory fsync *relative to it* (`openat`,
//! `renameat`), so the log, the snapshot and the compaction always land in
//! the one directory that holds the store's files, even if that directory is
//! renamed while the store is open. A rename must not let a second store in,
//! nor let the live one write where nobody will look, so, in addition:
//!
//! * a second lock, on `.NAME.lock` in the directory that holds the party
//!   directory `NAME` (by name, so a directory put back at the old path — a
//!   restore, `cp -a p0.old p0` — is still refused while the live store
//!   runs; removed when the store closes);
//! * before every append and again after it (before the save is
//!   acknowledged), the path the store was opened by must still name the
//!   held directory (same device and inode). If it does not, the save is
//!   refused with [`DiskError::Moved`] and so is every later one: the store
//!   never acknowledges a state that was written after its path stopped
//!   naming its directory. Any copy taken from the moved directory after the
//!   rename therefore holds every acknowledged state (nothing the live store
//!   acknowledged is missing from it), and the live store signs nothing more.
//!
//! Not prevented (no file lock can): copying a *running* party's directory
//! to another place and running the copy (a clone of the channel's keys and
//! an older state). Stop the party before copying its directory.

#[cfg(not(unix))]
compile_error!("the channel store holds its directory by handle (openat, renameat, flock): Unix only");

use crate::machine::{ChannelError, ChannelStore, MAX_STORE_BYTES};
use gridledger_core::codec::{hash_parts, Tag};
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
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

const TMP_FILE: &str = "store.bin.tmp";
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
    /// The path the store was opened by no longer names the directory it
    /// holds (renamed, removed or replaced while the store was open, or
    /// between the lock and the check at open). The save was not
    /// acknowledged, and the store refuses every later one: restart the
    /// party on the directory that holds its files.
    #[error(
        "{dir}: the party directory was moved, removed or replaced while its store was open; \
         nothing more is saved (restart the party on the directory that holds its files)"
    )]
    Moved { dir: String },
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
    /// The directory as the caller named it (for messages).
    shown: PathBuf,
    /// Absolute paths that must keep naming the held directory: the one
    /// the caller gave and its canonical form (they differ through a
    /// symlink).
    places: Vec<PathBuf>,
    /// The directory itself, opened once: holds its `flock` for the store's
    /// life, and every file operation is relative to it.
    dir: File,
    /// `(device, inode)` of `dir`.
    dir_id: (u64, u64),
    durability: Durability,
    log: File,
    /// Holds the exclusive lock on [`LOCK_FILE`] while this store is open
    /// (released when dropped, or by the kernel when the process dies).
    _lock: File,
    /// The lock by name in the parent directory (none where the parent is
    /// not writable: then nobody without privileges can rename the party
    /// directory out of it either).
    _name_lock: Option<NameLock>,
    /// A save found the directory moved: every later save is refused.
    moved: bool,
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

/// Refuses anything but a regular file of at most `max` bytes.
fn check_kind(path: &Path, is_file: bool, len: u64, max: u64) -> Result<(), DiskError> {
    let refuse = |why: String| io_err(path, std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    if !is_file {
        return Err(refuse("not a regular file".into()));
    }
    if len > max {
        return Err(refuse(format!("{len} bytes, more than the {max} a store may hold")));
    }
    Ok(())
}

/// Checks the opened file again, then reads at most `max` bytes of it.
fn read_opened(path: &Path, f: File, max: u64) -> Result<Vec<u8>, DiskError> {
    let m = f.metadata().map_err(|e| io_err(path, e))?;
    check_kind(path, m.is_file(), m.len(), max)?;
    let mut b = vec![];
    f.take(max.saturating_add(1)).read_to_end(&mut b).map_err(|e| io_err(path, e))?;
    if b.len() as u64 > max {
        return Err(io_err(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("more than the {max} bytes a store may hold")),
        ));
    }
    Ok(b)
}

/// Reads a store file of at most `max` bytes; `Ok(None)` if it is absent.
/// A party directory may be damaged or hostile: anything but a regular file
/// (a FIFO would block the reader forever, `/dev/zero` would fill memory)
/// or a file over the bound is refused with a typed error at once, never
/// waited on. The kind is checked before opening (opening a FIFO blocks)
/// and again on the opened file, and the read itself is bounded.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>, DiskError> {
    match fs::metadata(path) {
        Ok(m) => check_kind(path, m.is_file(), m.len(), max)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    }
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    read_opened(path, f, max).map(Some)
}

/// Opens `name` relative to the directory handle `dir` (never following a
/// symlink at `name` when creating or writing).
fn open_at(dir: &File, name: &str, flags: OFlags) -> std::io::Result<File> {
    rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::from_raw_mode(0o666))
        .map(File::from)
        .map_err(std::io::Error::from)
}

/// [`read_bounded`] of `name` relative to the directory handle `dir`
/// (`shown` names it in errors).
fn read_bounded_at(dir: &File, shown: &Path, name: &str, max: u64) -> Result<Option<Vec<u8>>, DiskError> {
    let path = shown.join(name);
    match rustix::fs::statat(dir, name, AtFlags::empty()) {
        Ok(st) => {
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode as rustix::fs::RawMode);
            check_kind(&path, kind.is_file(), u64::try_from(st.st_size).unwrap_or(u64::MAX), max)?
        }
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(io_err(&path, e.into())),
    }
    // Non-blocking: should a FIFO replace the file since the check, the
    // open returns at once and the check of the opened file refuses it.
    let f = match open_at(dir, name, OFlags::RDONLY | OFlags::NONBLOCK) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, e)),
    };
    read_opened(&path, f, max).map(Some)
}

/// Where a store is read from: a path (the watch service, the CLI) or an
/// open store's directory handle.
enum Source<'a> {
    Path(&'a Path),
    Handle(&'a File, &'a Path),
}

impl Source<'_> {
    fn read(&self, name: &str, max: u64) -> Result<(PathBuf, Option<Vec<u8>>), DiskError> {
        match self {
            Source::Path(dir) => {
                let path = dir.join(name);
                let b = read_bounded(&path, max)?;
                Ok((path, b))
            }
            Source::Handle(dir, shown) => Ok((shown.join(name), read_bounded_at(dir, shown, name, max)?)),
        }
    }

    fn snapshot(&self) -> Result<Option<ChannelStore>, DiskError> {
        let (path, b) = self.read(STORE_FILE, MAX_STORE_BYTES as u64)?;
        let Some(b) = b else { return Ok(None) };
        ChannelStore::from_bytes(&b)
            .map(Some)
            .map_err(|source| DiskError::Corrupt { path: path.display().to_string(), source })
    }

    /// The newest store in the log and the length of its valid prefix
    /// (`None` when there is no log file).
    fn log(&self) -> Result<(Option<ChannelStore>, Option<usize>), DiskError> {
        let (path, b) = self.read(LOG_FILE, MAX_LOG_BYTES)?;
        Ok(match b {
            Some(b) => {
                let (s, valid) = scan(&b).map_err(|(offset, source)| DiskError::UnknownRecord {
                    path: path.display().to_string(),
                    offset: offset as u64,
                    source,
                })?;
                (s, Some(valid))
            }
            None => (None, None),
        })
    }

    fn newest(&self) -> Result<Option<ChannelStore>, DiskError> {
        let snap = self.snapshot()?;
        let (log, _) = self.log()?;
        Ok(newer(snap, log))
    }
}

#[cfg(test)]
fn read_snapshot(dir: &Path) -> Result<Option<ChannelStore>, DiskError> {
    Source::Path(dir).snapshot()
}

fn file_id(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

fn stat_id(st: &rustix::fs::Stat) -> (u64, u64) {
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    (st.st_dev as u64, st.st_ino as u64)
}

/// An exclusive `flock` on `.NAME.lock` in the directory holding the party
/// directory `NAME`: a lock by *name*, which a directory renamed away and
/// another put in its place cannot dodge. Taken only on a file that the
/// name still names once locked (else retried: the previous holder removed
/// it meanwhile); removed by its holder on close, while still locked.
struct NameLock {
    parent: File,
    name: OsString,
    file: File,
}

/// Whether `name` in `parent` still names `file` (same device and inode).
fn still_named(parent: &File, name: &OsStr, file: &File) -> bool {
    match (rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW), file.metadata()) {
        (Ok(st), Ok(m)) => stat_id(&st) == file_id(&m),
        _ => false,
    }
}

impl NameLock {
    /// `Ok(None)` where the lock cannot be created because the parent
    /// directory is read-only or not writable by this user (a mount point,
    /// a root-owned parent): then this user cannot rename the party
    /// directory out of it either.
    fn acquire(canonical: &Path, shown: &Path) -> Result<Option<NameLock>, DiskError> {
        let (Some(parent), Some(base)) = (canonical.parent(), canonical.file_name()) else { return Ok(None) };
        let mut name = OsString::from(".");
        name.push(base);
        name.push(".lock");
        let path = parent.join(&name);
        let parent =
            rustix::fs::openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map(File::from)
                .map_err(|e| io_err(parent, e.into()))?;
        for _ in 0..16 {
            let file = match rustix::fs::openat(
                &parent,
                name.as_os_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(f) => File::from(f),
                Err(e) if matches!(e, Errno::ACCESS | Errno::PERM | Errno::ROFS) => {
                    tracing::warn!("{}: no lock by name ({e}); relying on the directory's own locks", path.display());
                    return Ok(None);
                }
                Err(e) => return Err(io_err(&path, e.into())),
            };
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => return Err(DiskError::Locked { dir: shown.display().to_string() }),
                Err(e) => return Err(io_err(&path, e.into())),
            }
            if still_named(&parent, &name, &file) {
                return Ok(Some(NameLock { parent, name, file }));
            }
            // Removed by its previous holder between our open and our lock:
            // that file is no lock any more; unlock it (drop) and retry.
        }
        Err(io_err(&path, std::io::Error::other("the lock file kept being replaced while it was taken")))
    }
}

impl Drop for NameLock {
    fn drop(&mut self) {
        // Still locked here: a waiting opener that locks the removed file
        // next finds the name gone (or another file) and retries.
        if still_named(&self.parent, &self.name, &self.file) {
            let _ = rustix::fs::unlinkat(&self.parent, self.name.as_os_str(), AtFlags::empty());
        }
    }
}

impl StoreFile {
    /// Uses (and creates) `dir`. Opens the directory once and takes its
    /// locks — an `flock` on the directory itself, one on `.NAME.lock`
    /// beside it (see the module doc), one on [`LOCK_FILE`] inside it (so
    /// that outside tools, `flock(1)` on it, can still hold the store) — and
    /// checks that `dir` still names the directory locked; then cuts a torn
    /// tail off the log. The directory lock is what makes the store
    /// exclusive even when `store.lock` is deleted or replaced while the
    /// party runs (a "stale lock" cleanup); the lock by name, even when the
    /// directory is renamed away and a copy put back. A store whose lock
    /// another open store holds is refused with [`DiskError::Locked`] before
    /// anything is read or cut (a second party process on one directory
    /// would otherwise cut off records the live one appended).
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, DiskError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let handle = rustix::fs::openat(CWD, dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map(File::from)
            .map_err(|e| io_err(dir, e.into()))?;
        match handle.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DiskError::Locked { dir: dir.display().to_string() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(dir, e)),
        }
        let dir_id = file_id(&handle.metadata().map_err(|e| io_err(dir, e))?);
        let absolute = std::path::absolute(dir).map_err(|e| io_err(dir, e))?;
        let canonical = fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
        let mut places = vec![absolute];
        if canonical != places[0] {
            places.push(canonical.clone());
        }
        let moved = || DiskError::Moved { dir: dir.display().to_string() };
        if !places.iter().all(|p| fs::metadata(p).is_ok_and(|m| file_id(&m) == dir_id)) {
            return Err(moved());
        }
        let name_lock = NameLock::acquire(&canonical, dir)?;
        let lock = open_at(&handle, LOCK_FILE, OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW)
            .map_err(|e| io_err(&dir.join(LOCK_FILE), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(DiskError::Locked { dir: dir.display().to_string() }),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&dir.join(LOCK_FILE), e)),
        }
        let path = dir.join(LOG_FILE);
        let (_, valid) = Source::Handle(&handle, dir).log()?;
        let existed = valid.is_some();
        let valid = valid.unwrap_or(0);
        let mut log = open_at(&handle, LOG_FILE, OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW)
            .map_err(|e| io_err(&path, e))?;
        log.set_len(valid as u64).map_err(|e| io_err(&path, e))?;
        log.seek(SeekFrom::End(0)).map_err(|e| io_err(&path, e))?;
        if durability == Durability::Fsync {
            log.sync_all().map_err(|e| io_err(&path, e))?;
            if !existed {
                handle.sync_all().map_err(|e| io_err(dir, e))?;
            }
        }
        let mut s = Self {
            shown: dir.to_path_buf(),
            places,
            dir: handle,
            dir_id,
            durability,
            log,
            _lock: lock,
            _name_lock: name_lock,
            moved: false,
            log_len: valid as u64,
            unsynced: false,
            saves: 0,
            save_time: Duration::ZERO,
            syncs: 0,
        };
        // Renamed while it was being opened: refused like a later save.
        s.check_place()?;
        Ok(s)
    }

    pub fn path(&self) -> PathBuf {
        self.shown.join(LOG_FILE)
    }

    /// The last saved store, if any (read through the held directory).
    pub fn load(&self) -> Result<Option<ChannelStore>, DiskError> {
        Source::Handle(&self.dir, &self.shown).newest()
    }

    /// Refuses (now and for good) once a path the store was opened by no
    /// longer names the held directory.
    fn check_place(&mut self) -> Result<(), DiskError> {
        if !self.moved && !self.places.iter().all(|p| fs::metadata(p).is_ok_and(|m| file_id(&m) == self.dir_id)) {
            self.moved = true;
            tracing::error!(
                "{}: the party directory was moved or replaced while its store was open; refusing to save",
                self.shown.display()
            );
        }
        if self.moved {
            return Err(DiskError::Moved { dir: self.shown.display().to_string() });
        }
        Ok(())
    }

    /// Appends one record (checked in place before and after: see the
    /// module doc), compacting past [`COMPACT_AFTER`]; `sync` makes it
    /// durable.
    fn append(&mut self, store: &ChannelStore, sync: bool) -> Result<(), DiskError> {
        let t = Instant::now();
        self.check_place()?;
        let path = self.path();
        let rec = record(&store.to_bytes());
        self.log.write_all(&rec).map_err(|e| io_err(&path, e))?;
        self.log_len += rec.len() as u64;
        if sync {
            if self.durability == Durability::Fsync {
                self.log.sync_data().map_err(|e| io_err(&path, e))?;
                self.syncs += 1;
            }
            self.unsynced = false;
        } else {
            self.unsynced = true;
        }
        if self.log_len > COMPACT_AFTER {
            self.compact(store)?;
        }
        // Written where the path named: a copy taken from here after any
        // later rename holds it. Written after a rename: not acknowledged.
        self.check_place()?;
        self.saves += 1;
        self.save_time += t.elapsed();
        Ok(())
    }

    /// Durably appends `store` (one write, one fdatasync).
    pub fn save(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        self.append(store, true)
    }

    /// Appends `store` without waiting for the disk: a process crash keeps
    /// it (the kernel has it), a power cut may not. The next [`Self::save`]
    /// or [`Self::flush`] makes it durable too (same file, in order).
    pub fn save_lagging(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        self.append(store, false)
    }

    /// Makes lagging saves durable (in the held directory, wherever it is
    /// now: they were acknowledged there).
    pub fn flush(&mut self) -> Result<(), DiskError> {
        if self.unsynced && self.durability == Durability::Fsync {
            let path = self.path();
            self.log.sync_data().map_err(|e| io_err(&path, e))?;
            self.syncs += 1;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Writes `store` as the atomic snapshot, then empties the log: every
    /// step relative to the held directory, so snapshot and log stay
    /// together whatever the directory is called now.
    fn compact(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        let tmp = self.shown.join(TMP_FILE);
        {
            let mut f =
                open_at(&self.dir, TMP_FILE, OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW)
                    .map_err(|e| io_err(&tmp, e))?;
            f.write_all(&store.to_bytes()).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        let path = self.shown.join(STORE_FILE);
        rustix::fs::renameat(&self.dir, TMP_FILE, &self.dir, STORE_FILE).map_err(|e| io_err(&path, e.into()))?;
        self.dir.sync_all().map_err(|e| io_err(&self.shown, e))?;
        let log = self.path();
        self.log.set_len(0).map_err(|e| io_err(&log, e))?;
        self.log.seek(SeekFrom::Start(0)).map_err(|e| io_err(&log, e))?;
        self.log.sync_all().map_err(|e| io_err(&log, e))?;
        self.log_len = 0;
        self.unsynced = false;
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
    Source::Path(dir).newest()
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
    use std::fs::OpenOptions;

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

    fn name_lock(dir: &Path) -> PathBuf {
        let name = dir.file_name().unwrap().to_str().unwrap();
        dir.parent().unwrap().join(format!(".{name}.lock"))
    }

    #[test]
    fn the_lock_by_name_is_held_while_open_and_removed_on_close() {
        let root = tempfile::tempdir().unwrap();
        let p0 = root.path().join("p0");
        let f = StoreFile::open(&p0, Durability::ProcessCrashOnly).unwrap();
        assert!(name_lock(&p0).exists(), "held beside the party directory");
        // A second directory in the same parent has its own lock.
        let p1 = StoreFile::open(&root.path().join("p1"), Durability::ProcessCrashOnly).unwrap();
        drop(f);
        assert!(!name_lock(&p0).exists(), "removed on close");
        drop(StoreFile::open(&p0, Durability::ProcessCrashOnly).unwrap());
        drop(p1);
        // A lock file left behind unlocked (its holder was killed) does
        // not keep the store shut.
        fs::write(name_lock(&p0), b"").unwrap();
        drop(StoreFile::open(&p0, Durability::ProcessCrashOnly).unwrap());
    }

    #[test]
    fn a_store_opened_through_a_symlink_is_locked_by_its_real_name() {
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("real");
        fs::create_dir_all(&real).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut f = StoreFile::open(&link, Durability::ProcessCrashOnly).unwrap();
        f.save(&store(1)).unwrap();
        assert!(name_lock(&real).exists() && !name_lock(&link).exists());
        assert!(matches!(StoreFile::open(&real, Durability::ProcessCrashOnly), Err(DiskError::Locked { .. })));
        assert!(matches!(StoreFile::open(&link, Durability::ProcessCrashOnly), Err(DiskError::Locked { .. })));
        assert_eq!(f.load().unwrap().unwrap().version, 1);
    }

    #[test]
    fn a_save_after_the_directory_is_renamed_is_refused_for_good_and_changes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let p0 = root.path().join("p0");
        let moved = root.path().join("p0.old");
        let mut f = StoreFile::open(&p0, Durability::Fsync).unwrap();
        f.save(&store(1)).unwrap();
        f.save_lagging(&store(2)).unwrap();
        fs::rename(&p0, &moved).unwrap();
        let len = fs::metadata(moved.join(LOG_FILE)).unwrap().len();
        let e = f.save(&store(3)).unwrap_err();
        assert!(matches!(&e, DiskError::Moved { dir } if dir == &p0.display().to_string()), "{e}");
        assert!(matches!(f.save_lagging(&store(3)), Err(DiskError::Moved { .. })));
        assert_eq!(fs::metadata(moved.join(LOG_FILE)).unwrap().len(), len, "nothing appended");
        // The lagging save acknowledged before the rename is made durable
        // where it lies.
        f.flush().unwrap();
        assert_eq!(load_store(&moved).unwrap().unwrap().version, 2);
        // Put back: still refused (a copy may have run meanwhile).
        fs::rename(&moved, &p0).unwrap();
        assert!(matches!(f.save(&store(3)), Err(DiskError::Moved { .. })));
        assert_eq!(load_store(&p0).unwrap().unwrap().version, 2);
        assert_eq!(f.stats().0, 2, "two saves acknowledged");
    }

    #[test]
    fn a_save_after_the_symlink_it_was_opened_by_is_repointed_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let link = root.path().join("current");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let mut f = StoreFile::open(&link, Durability::ProcessCrashOnly).unwrap();
        f.save(&store(1)).unwrap();
        fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&b, &link).unwrap();
        assert!(matches!(f.save(&store(2)), Err(DiskError::Moved { .. })));
        assert_eq!(load_store(&a).unwrap().unwrap().version, 1);
        assert_eq!(load_store(&b).unwrap(), None);
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
