//! Attack round 9 on the moved-aside database file (attack R8-4's fix):
//! `Store::open` moves a file holding only zero bytes aside and creates
//! the database again; any other file is opened as it is.
//!
//! Finding [5] failed on the code it was written against; it is fixed
//! (`Store::open` takes a file whose magic number is zero and that holds
//! redb's header, or only zeros, for uninitialised). The others held up.

use gridledger_ledger::store::Store;

/// The length of redb's magic number, at the start of every database file.
const MAGIC_LEN: usize = 9;

/// `redb::Database::create` on a new file writes the header *without* its
/// magic number, flushes it (an fsync), and only then writes the magic
/// number and flushes again ("written to disk to ensure that it's crash
/// safe"). A `kill -9` between the two flushes — the first fsync is the
/// widest window of the whole creation, far wider than the all-zero one
/// R8-4 closed — leaves a file whose header has data (page size, layout,
/// transaction slots) but no magic number. `Store::open` does not take it
/// for uninitialised (it is not all zeros), redb refuses it ("Not a redb
/// database: magic number mismatch"), and no command opens the deployment
/// again — R8-4's symptom, one instant later.
///
/// The file here is what `Database::create` leaves with its magic number
/// zeroed: no transaction was ever committed to it (redb writes the magic
/// number before the first commit), so it holds nothing to lose.
///
/// Expected: opened as a new database (the file moved aside, as for an
/// all-zero one). Observed: refused, on every open.
///
/// Suggested fix: take a file whose first `MAGICNUMBER.len()` bytes are
/// zero for uninitialised as well (redb writes them last and never
/// clears them), not only a file of zeros.
#[test]
fn a_file_killed_before_its_magic_number_is_created_again() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    drop(redb::Database::create(&path).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"redb", "a redb file starts with its magic number");
    bytes[..MAGIC_LEN].fill(0);
    assert!(bytes.iter().any(|b| *b != 0), "the header has data");
    std::fs::write(&path, &bytes).unwrap();
    let opened = Store::open(&path);
    assert!(opened.is_ok(), "a database never initialised is refused for ever: {:?}", opened.err());
    assert_eq!(opened.unwrap().tip().unwrap(), None, "the new database holds no block");
}

/// Held up: a live database (opened by a `Store`, blocks or not) always
/// starts with redb's magic number, so `Store::open` never takes it for
/// uninitialised; a second open is refused and the first keeps its file.
#[test]
fn a_live_database_is_never_moved_aside() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    let first = Store::open(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"redb");
    let second = Store::open(&path);
    assert!(second.is_err(), "a second open of a live database is refused");
    assert!(!d.path().join("chain.redb.uninitialised").exists(), "nothing was moved aside");
    drop(first);
    Store::open(&path).unwrap();
}

/// The fix of [5] stays narrow: a file with a zero magic number whose
/// header is not redb's (a page size redb never writes) is refused and
/// left as it is, like any other file of data.
#[test]
fn a_zero_magic_number_before_other_data_is_refused_and_left_as_it_is() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    drop(redb::Database::create(&path).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..MAGIC_LEN].fill(0);
    bytes[12..16].copy_from_slice(&1000u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(Store::open(&path).is_err(), "not a redb header");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is untouched");
    assert!(!d.path().join("chain.redb.uninitialised").exists());
}

/// The race the fix of [5] must not open: two opens of a new path at once.
/// One may see the file the other is creating (its header flushed, its
/// magic number not yet written); under `Store::open`'s lock it never
/// moves that file aside: exactly one open succeeds each time, nothing is
/// moved, and the database opens again afterwards.
#[test]
fn two_opens_at_once_never_move_a_file_being_created() {
    for _ in 0..40 {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("chain.redb");
        let barrier = std::sync::Barrier::new(2);
        let opened: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Store::open(&path).ok()
                    })
                })
                .collect();
            let stores: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            stores.iter().map(Option::is_some).collect()
        });
        assert_eq!(opened.iter().filter(|o| **o).count(), 1, "one open wins: {opened:?}");
        assert!(!d.path().join("chain.redb.uninitialised").exists(), "a file being created was moved aside");
        Store::open(&path).unwrap();
    }
}

/// The fix of [5] never moves a database that held data: a `Store`'s file
/// (its tables committed when it was opened) whose magic number
/// was lost is refused as redb refuses it and left where it is, so no
/// chain is silently replaced by an empty one.
#[test]
fn a_store_that_held_data_is_never_moved_aside_without_its_magic_number() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    drop(Store::open(&path).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[..MAGIC_LEN].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    assert!(Store::open(&path).is_err(), "redb refuses a file without its magic number");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is untouched");
    assert!(!d.path().join("chain.redb.uninitialised").exists(), "nothing was moved aside");
}
