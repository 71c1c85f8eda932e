//! A database file whose creation was killed before redb wrote its header
//! (only zero bytes) is moved aside and created afresh; a file with any
//! other data is never touched (attack R8-4; a header without its magic
//! number, attack R9-5, is in `attack_store_r9.rs`).

use gridledger_ledger::store::Store;

#[test]
fn a_file_of_zeros_is_moved_aside_and_created_again() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    std::fs::write(&path, vec![0u8; 1 << 20]).unwrap();
    let store = Store::open(&path).expect("an uninitialised file opens as a new database");
    assert_eq!(store.tip().unwrap(), None, "the new database holds no block");
    let aside = d.path().join("chain.redb.uninitialised");
    assert_eq!(std::fs::read(&aside).unwrap(), vec![0u8; 1 << 20], "the torn file is kept aside");
    drop(store);
    // The new file is a real database: opened again, nothing is moved.
    std::fs::remove_file(&aside).unwrap();
    Store::open(&path).unwrap();
    assert!(!aside.exists());
}

#[test]
fn a_file_with_any_data_is_refused_and_left_as_it_is() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    let mut bytes = vec![0u8; 1 << 20];
    bytes[(1 << 20) - 1] = 7;
    std::fs::write(&path, &bytes).unwrap();
    assert!(Store::open(&path).is_err(), "not a redb database");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file is untouched");
    assert!(!d.path().join("chain.redb.uninitialised").exists());
}
