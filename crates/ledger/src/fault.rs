//! A fault-injecting storage backend for the store, for tests and the
//! simulator (DESIGN principle 2): an in-memory disk that separates what
//! was written from what a sync made durable, so a crash can be placed
//! between any two syncs (optionally tearing the unsynced writes), and
//! that can refuse writes the way a full disk does.
//!
//! A "crash" here models the process dying at that instant: from the
//! crashing sync on, writes are silently discarded (the dead process never
//! learns of it) and [`SimDisk::crashed`] turns true, so the harness stops
//! delivering the node's messages and later restarts it from
//! [`SimDisk::restart`], which keeps only the durable image.

use redb::StorageBackend;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct DiskState {
    /// What reads see (written, maybe not yet durable).
    current: Vec<u8>,
    /// What survives a crash.
    durable: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Op>,
    syncs: u64,
    /// The sync with this number kills the process.
    crash_at: Option<u64>,
    /// Pending operations that still reach the disk when it crashes.
    tear: usize,
    crashed: bool,
    /// The sync with this number fails with an I/O error.
    fail_sync_at: Option<u64>,
    /// Every write and sync fails, as on a full disk.
    full: bool,
    errors: u64,
}

fn apply(img: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data } => {
            let end = *offset as usize + data.len();
            if img.len() < end {
                img.resize(end, 0);
            }
            img[*offset as usize..end].copy_from_slice(data);
        }
        Op::SetLen(n) => img.resize(*n as usize, 0),
    }
}

/// The simulated disk; share it with `Arc` between the store's backend
/// and the test that injects faults.
#[derive(Debug, Default)]
pub struct SimDisk {
    state: Mutex<DiskState>,
}

impl SimDisk {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A backend over this disk, for [`crate::store::Store::open_backend`].
    pub fn backend(self: &Arc<Self>) -> SimBackend {
        SimBackend(self.clone())
    }

    /// Syncs so far (each is one durable commit of the store).
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// The process dies at the `n`-th sync from now: that sync and all
    /// later writes never reach the durable image, except the first
    /// `tear` writes pending at that moment (a torn write).
    pub fn crash_at_sync(&self, n: u64, tear: usize) {
        let mut s = self.lock();
        s.crash_at = Some(s.syncs + n.max(1));
        s.tear = tear;
    }

    /// The process dies now: writes not yet synced are lost.
    pub fn kill(&self) {
        let mut s = self.lock();
        s.pending.clear();
        s.crashed = true;
    }

    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The `n`-th sync from now fails with an I/O error (nothing of it is durable).
    pub fn fail_sync_at(&self, n: u64) {
        let mut s = self.lock();
        s.fail_sync_at = Some(s.syncs + n.max(1));
    }

    /// While set, every write and sync fails like on a full disk.
    pub fn set_full(&self, full: bool) {
        self.lock().full = full;
    }

    /// I/O errors returned so far.
    pub fn errors(&self) -> u64 {
        self.lock().errors
    }

    /// After a crash: what a restarted process finds on disk.
    pub fn restart(&self) {
        let mut s = self.lock();
        s.current = s.durable.clone();
        s.pending.clear();
        s.crashed = false;
        s.crash_at = None;
        s.fail_sync_at = None;
    }

    /// An independent copy of the durable image (a disk to restart from).
    pub fn snapshot(&self) -> Arc<Self> {
        let s = self.lock();
        let state = DiskState { current: s.durable.clone(), durable: s.durable.clone(), ..DiskState::default() };
        Arc::new(Self { state: Mutex::new(state) })
    }
}

/// A redb [`StorageBackend`] on a [`SimDisk`].
#[derive(Debug)]
pub struct SimBackend(Arc<SimDisk>);

fn full() -> io::Error {
    io::Error::new(io::ErrorKind::StorageFull, "simulated disk full")
}

impl StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.lock().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let s = self.0.lock();
        let end = offset as usize + out.len();
        let src = s.current.get(offset as usize..end).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut s = self.0.lock();
        if s.crashed {
            return Ok(());
        }
        if s.full && len > s.current.len() as u64 {
            s.errors += 1;
            return Err(full());
        }
        let op = Op::SetLen(len);
        apply(&mut s.current, &op);
        s.pending.push(op);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut s = self.0.lock();
        if s.crashed {
            return Ok(());
        }
        if s.full {
            s.errors += 1;
            return Err(full());
        }
        s.syncs += 1;
        let n = s.syncs;
        let pending = std::mem::take(&mut s.pending);
        if s.fail_sync_at == Some(n) {
            s.fail_sync_at = None;
            s.errors += 1;
            // The failed commit never reached the disk.
            s.current = s.durable.clone();
            return Err(io::Error::other("simulated write error"));
        }
        if s.crash_at == Some(n) {
            s.crashed = true;
            let tear = s.tear;
            for op in pending.iter().take(tear) {
                apply(&mut s.durable, op);
            }
            return Ok(());
        }
        for op in &pending {
            apply(&mut s.durable, op);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut s = self.0.lock();
        if s.crashed {
            return Ok(());
        }
        if s.full {
            s.errors += 1;
            return Err(full());
        }
        let op = Op::Write { offset, data: data.to_vec() };
        apply(&mut s.current, &op);
        s.pending.push(op);
        Ok(())
    }
}
