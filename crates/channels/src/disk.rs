//! Durable, atomic storage of a party's [`ChannelStore`]: the "persist" of
//! persist-before-send (DESIGN principle 5: a crash at any instant loses no
//! committed data).
//!
//! A save writes `store.bin.tmp`, fsyncs it, renames it over `store.bin` and
//! fsyncs the directory, so after a crash the file is either the previous
//! snapshot or the new one, never a torn mix. Only then does the driver feed
//! `Input::Persisted`, releasing the signatures the snapshot covers.

use crate::machine::{ChannelError, ChannelStore};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the snapshot inside a party's directory.
pub const STORE_FILE: &str = "store.bin";

/// Errors of the snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Corrupt { path: String, source: ChannelError },
}

/// How hard a save tries to reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and the directory: survives power loss (the default).
    Fsync,
    /// Rename only: survives a process crash, not a power loss. For
    /// measurements that separate protocol cost from disk cost.
    ProcessCrashOnly,
}

/// One party's snapshot file, with the time spent saving.
pub struct StoreFile {
    dir: PathBuf,
    durability: Durability,
    saves: u64,
    save_time: Duration,
}

fn io_err(path: &Path, source: std::io::Error) -> DiskError {
    DiskError::Io { path: path.display().to_string(), source }
}

impl StoreFile {
    /// Uses (and creates) `dir`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, DiskError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        Ok(Self { dir: dir.to_path_buf(), durability, saves: 0, save_time: Duration::ZERO })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STORE_FILE)
    }

    /// The last saved snapshot, if any.
    pub fn load(&self) -> Result<Option<ChannelStore>, DiskError> {
        load_store(&self.dir)
    }

    /// Atomically replaces the snapshot.
    pub fn save(&mut self, store: &ChannelStore) -> Result<(), DiskError> {
        let t = Instant::now();
        let path = self.path();
        let tmp = self.dir.join(format!("{STORE_FILE}.tmp"));
        {
            let mut f =
                OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&store.to_bytes()).map_err(|e| io_err(&tmp, e))?;
            if self.durability == Durability::Fsync {
                f.sync_all().map_err(|e| io_err(&tmp, e))?;
            }
        }
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        if self.durability == Durability::Fsync {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io_err(&self.dir, e))?;
        }
        self.saves += 1;
        self.save_time += t.elapsed();
        Ok(())
    }

    /// Saves done and their total time.
    pub fn stats(&self) -> (u64, Duration) {
        (self.saves, self.save_time)
    }
}

/// Reads the snapshot in `dir` without opening it for writing (the watch
/// service reads the daemon's file this way).
pub fn load_store(dir: &Path) -> Result<Option<ChannelStore>, DiskError> {
    let path = dir.join(STORE_FILE);
    match fs::read(&path) {
        Ok(b) => ChannelStore::from_bytes(&b)
            .map(Some)
            .map_err(|source| DiskError::Corrupt { path: path.display().to_string(), source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, e)),
    }
}
