//! The drivers' journal of native transfers (NTs).
//!
//! A driver (the embedded [`BobMbs::swap`](crate::mbs::BobMbs::swap), the
//! CLI's multi-process swap) records each side's NT here, durably (written
//! to a temporary file, `fsync`ed, renamed, the directory `fsync`ed),
//! **before** it sends the NT to its chain (attack R6-3). A driver killed
//! between paying and posting then leaves a payment the deployment knows
//! about: `xchain resume` reads the journal, finds the NT on its chain and
//! proves it before the deadline (or, if it never left, sends it while the
//! window is open), instead of leaving the payer to CCT_V's penalty.
//!
//! One file per CCT and side: `nt-journal/<cct>-<side>.nt` under the
//! deployment's directory, holding the signed transaction's bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use gridledger_core::Hash32;
use gridledger_ledger::SignedTransaction;

use crate::bob::Side;

/// The journal's directory under a deployment's directory.
pub const JOURNAL_DIR: &str = "nt-journal";

/// Largest journal entry read back (a transfer is a few hundred bytes).
const MAX_ENTRY: usize = 64 * 1024;

/// A journal that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("NT journal {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("NT journal {path}: not a signed transaction: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Sender => "sender",
        Side::Receiver => "receiver",
    }
}

/// The journal file of `side`'s NT of CCT `cct`.
pub fn entry_path(dir: &Path, cct: &Hash32, side: Side) -> PathBuf {
    dir.join(JOURNAL_DIR).join(format!("{}-{}.nt", cct.to_hex(), side_name(side)))
}

/// Records `nt` as `side`'s NT of `cct`, durably, replacing an earlier
/// entry (a re-signed payment supersedes the one before). Returns once the
/// entry is on disk: only then may the driver send `nt`.
pub fn record(dir: &Path, cct: &Hash32, side: Side, nt: &SignedTransaction) -> Result<(), JournalError> {
    let path = entry_path(dir, cct, side);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| JournalError::Io { path, source }
    };
    let jdir = dir.join(JOURNAL_DIR);
    std::fs::create_dir_all(&jdir).map_err(io(&jdir))?;
    let tmp = path.with_extension("nt.tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&nt.to_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    // The rename itself is durable once the directory is synced.
    std::fs::File::open(&jdir).and_then(|d| d.sync_all()).map_err(io(&jdir))?;
    Ok(())
}

/// `side`'s journaled NT of `cct`, if a driver recorded one.
pub fn read(dir: &Path, cct: &Hash32, side: Side) -> Result<Option<SignedTransaction>, JournalError> {
    let path = entry_path(dir, cct, side);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(JournalError::Io { path, source }),
    };
    SignedTransaction::from_bytes(&bytes, MAX_ENTRY)
        .map(Some)
        .map_err(|e| JournalError::Corrupt { path, reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_core::types::{Address, Amount};
    use gridledger_ledger::devnet::dev_key;
    use gridledger_ledger::devnet::transfer;

    fn nt(amount: u128) -> SignedTransaction {
        let k = dev_key(0);
        transfer(&k, 5, 3, Address::default(), Amount(amount), Amount(1))
    }

    #[test]
    fn a_recorded_nt_reads_back_and_a_later_one_replaces_it() {
        let d = tempfile::tempdir().unwrap();
        let id = Hash32::default();
        assert_eq!(read(d.path(), &id, Side::Sender).unwrap(), None);
        record(d.path(), &id, Side::Sender, &nt(7)).unwrap();
        assert_eq!(read(d.path(), &id, Side::Sender).unwrap(), Some(nt(7)));
        assert_eq!(read(d.path(), &id, Side::Receiver).unwrap(), None, "per side");
        record(d.path(), &id, Side::Sender, &nt(8)).unwrap();
        assert_eq!(read(d.path(), &id, Side::Sender).unwrap(), Some(nt(8)));
    }

    #[test]
    fn a_corrupt_entry_is_a_typed_error() {
        let d = tempfile::tempdir().unwrap();
        let id = Hash32::default();
        let p = entry_path(d.path(), &id, Side::Receiver);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"not a transaction").unwrap();
        assert!(matches!(read(d.path(), &id, Side::Receiver), Err(JournalError::Corrupt { .. })));
    }
}
