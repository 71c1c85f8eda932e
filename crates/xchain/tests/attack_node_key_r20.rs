//! Twentieth attack round on the cross-chain protocols (issue 14): the
//! BoB node's key of each deployment (`NodeKey`, the `node-key` file of a
//! deployment's directory: generated at random when the directory is
//! created, stored mode 0600, loaded on every later open).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r20 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use gridledger_xchain::mbs::{
    pin_genesis_time, BobMbs, MbsError, MbsSpec, NodeKey, GENESIS_TIME_FILE, NODE_KEY_FILE, SHAPE_FILE,
};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Attack r20 [1]: the first open of a directory writes the genesis time,
/// then the shape, then the node key (`pin_genesis_time`); the directory
/// counts as "fresh" only while its genesis time is missing. Anything that
/// stops the first open between the two writes — a `kill -9` (the window
/// holds the key file's `fsync`), a full disk, a leftover `node-key.tmp`
/// that cannot be removed — leaves a directory with a genesis time and no
/// node key, and no chain data at all (a `kill -9` of the first `xchain
/// up --dir D` 2 to 40 ms after its start did so in 19 of 60 runs, see
/// `crates/cli/tests/attack_xchain_r20.rs`). Every later open of it is refused
/// for ever with "missing: the deployment was created before and its node
/// key is gone (restore the file, or start a new deployment in a new
/// directory)": there is no file to restore (none was ever written) and
/// nothing was created before but two small files. `gridledger xchain up
/// --dir D` (embedded or `--processes`) and every other `xchain` command on
/// D fail until the user deletes D by hand. Before the node key, the same
/// interrupted first open resumed (the genesis time was read back and the
/// shape written).
///
/// Here the first open is stopped by a `node-key.tmp` that is a non-empty
/// directory (what a crash leaves is the same: `genesis-time` and
/// `deployment-shape`, no `node-key`); the obstacle is then removed.
///
/// Expected: a directory that holds no chain data yet is still new: the
/// next open generates and stores the node key and opens the deployment.
#[test]
fn an_interrupted_first_open_does_not_brick_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let obstacle = d.join(format!("{NODE_KEY_FILE}.tmp"));
    std::fs::create_dir_all(obstacle.join("x")).unwrap();
    match BobMbs::open(d, MbsSpec::default()) {
        Err(MbsError::NodeKey { .. }) => {}
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("the key could not be written, yet the deployment opened"),
    }
    // What an interrupted first open leaves: the genesis time and the
    // shape, no node key, no chain.
    assert!(d.join(GENESIS_TIME_FILE).exists() && d.join(SHAPE_FILE).exists());
    assert!(!d.join(NODE_KEY_FILE).exists());
    assert!(!d.join("bob").exists() && !d.join("chain-0").exists(), "no chain was created");
    std::fs::remove_dir_all(&obstacle).unwrap();
    let m = BobMbs::open(d, MbsSpec::default());
    let m = m.unwrap_or_else(|e| panic!("a directory with no chain in it stays unusable: {e}"));
    assert_eq!(mode(&d.join(NODE_KEY_FILE)), 0o600);
    assert_eq!(m.spec.node_key.address(), m.relayer.address());
}

/// Attack r20 [1], second way in: a library caller that opens a
/// `BobMbs` with a node's address alone (`NodeKey::Address`, what a
/// validator's process holds) is refused — after its genesis time and
/// shape were written. The directory is then refused to its rightful
/// opener with its own key for ever, though nothing else was created.
#[test]
fn a_refused_address_only_open_leaves_the_directory_usable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec =
        MbsSpec { node_key: NodeKey::Address(gridledger_ledger::devnet::dev_key(1).address()), ..Default::default() };
    assert!(matches!(BobMbs::open(d, spec), Err(MbsError::NodeKey { .. })));
    assert!(!d.join("bob").exists(), "no chain was created");
    BobMbs::open(d, MbsSpec::default()).unwrap_or_else(|e| panic!("the directory stays unusable: {e}"));
}

/// Held: a symlink planted at `node-key` before the first open (pointing
/// at a file the attacker wants read as the key, or overwritten) is
/// refused as "not a regular file", and its target is neither read as the
/// key nor written.
#[test]
fn a_symlink_at_the_key_path_is_refused_and_its_target_untouched() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let target = other.path().join("victim");
    // A valid key the attacker knows, mode 0600, behind the link.
    std::fs::write(&target, format!("{}\n", "11".repeat(32))).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(NODE_KEY_FILE)).unwrap();
    match BobMbs::open(dir.path(), MbsSpec::default()) {
        Err(MbsError::NodeKey { reason, .. }) => assert!(reason.contains("regular"), "{reason}"),
        Err(e) => panic!("another error: {e}"),
        Ok(m) => panic!("opened with the planted key of {:?}", m.relayer.address()),
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), format!("{}\n", "11".repeat(32)));
}

/// Held: a symlink planted at `node-key.tmp` (the temporary file the key
/// is written to) pointing at a file elsewhere: the link is removed and
/// the key written to a new file (O_EXCL, mode 0600), never through the
/// link.
#[test]
fn a_symlink_at_the_temporary_key_path_is_not_written_through() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let target = other.path().join("victim");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(format!("{NODE_KEY_FILE}.tmp"))).unwrap();
    let m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(mode(&target), 0o644);
    let key = dir.path().join(NODE_KEY_FILE);
    assert!(std::fs::symlink_metadata(&key).unwrap().file_type().is_file());
    assert_eq!(mode(&key), 0o600);
    assert_ne!(m.relayer.address(), MbsSpec::default().node_key.address());
}

/// Held: a restart with another valid key than the one the genesis
/// funds (a wrong backup restored, mode 0600) is refused, and the
/// directory opens again once the right key is back.
#[test]
fn a_restart_with_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = common::opened_once(d);
    let file = d.join(NODE_KEY_FILE);
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, format!("{}\n", "22".repeat(32))).unwrap();
    assert_eq!(mode(&file), 0o600);
    let e = match BobMbs::open(d, MbsSpec::default()) {
        Err(e) => e.to_string(),
        Ok(m) => panic!("opened with another node key {:?} than {node:?}", m.relayer.address()),
    };
    eprintln!("refused: {e}");
    std::fs::write(&file, &good).unwrap();
    let m = BobMbs::open(d, MbsSpec::default()).unwrap();
    assert_eq!(m.relayer.address(), node);
}

/// Held: `pin_genesis_time` with the node's address alone on a
/// directory that stores another node's key is refused (a validator's
/// process pointed at another node).
#[test]
fn an_address_other_than_the_stored_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = pin_genesis_time(d, MbsSpec::default()).unwrap().node_key.address();
    let other = gridledger_ledger::devnet::dev_key(2).address();
    assert_ne!(node, other);
    let spec = MbsSpec { node_key: NodeKey::Address(other), ..Default::default() };
    assert!(matches!(pin_genesis_time(d, spec), Err(MbsError::NodeKey { .. })));
    let spec = MbsSpec { node_key: NodeKey::Address(node), ..Default::default() };
    assert_eq!(pin_genesis_time(d, spec).unwrap().node_key.address(), node);
}

/// What a directory stores: its genesis time and its node key's address.
fn stored(d: &Path) -> (Option<u64>, Option<gridledger_core::Address>) {
    let time = std::fs::read_to_string(d.join(GENESIS_TIME_FILE)).ok().and_then(|s| s.trim().parse().ok());
    let node = pin_genesis_time(d, MbsSpec::default()).ok().map(|s| s.node_key.address());
    (time, node)
}

/// Attack r20 [2]: two first opens of one new directory at once (two
/// `gridledger xchain` commands started on the same new `--dir`, say `up
/// --processes` and `swap`) each see it "fresh" and each pins the genesis
/// time and the node key with no lock: fixed temporary names, then a
/// rename, so the last writer's file wins while the first goes on with
/// its own value in memory. The one that then opens the chains (the other
/// stops at the chains' database lock) runs a deployment its directory
/// does not describe, and everything it does (blocks, deposits, swaps) is
/// frozen once it exits: every later open rebuilds another genesis ("the
/// data directory holds a different chain").
///
/// Observed here (two threads, up to 40 rounds; a hit within 20 rounds in
/// each of six runs): the survivor's genesis time differs from the
/// directory's; its node key was the stored one (the second opener loaded
/// the first one's key), so the deployment could be rescued by writing its
/// old genesis time back by hand. The genesis-time half of the race
/// predates the node key; the node key's write (`node-key.tmp`, removed
/// and created by both, then renamed) has the same race, and where it
/// loses, the survivor's key is in no file and nothing rescues it.
///
/// Expected: a deployment that opened runs with the genesis time and the
/// node key its directory stores (the first open pins them under an
/// exclusive lock on the directory, or with `O_EXCL` on the final names).
#[test]
fn two_first_opens_at_once_never_leave_a_deployment_without_its_key() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let opens: Vec<_> = (0..2)
            .map(|_| {
                let (d, barrier) = (d.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let spec = MbsSpec::default();
                    barrier.wait();
                    BobMbs::open(&d, spec).ok().map(|m| (m.spec.genesis_time, m.relayer.address()))
                })
            })
            .collect();
        let ran: Vec<_> = opens.into_iter().filter_map(|t| t.join().unwrap()).collect();
        let (time, node) = stored(&d);
        for (t, n) in &ran {
            if (Some(*t), Some(*n)) != (time, node) {
                let again = BobMbs::open(&d, MbsSpec::default()).err().map(|e| e.to_string());
                panic!(
                    "round {round}: a deployment ran with genesis time {t} and node {n:?}, the directory stores \
                     {time:?} and {node:?}; reopening it: {again:?}"
                );
            }
        }
    }
}

/// Attack r20 [3] (low): a restart with another valid key than the one
/// the deployment's genesis funds (a wrong backup restored, mode 0600) is
/// refused, but the error names neither the node key nor its file:
/// "invalid genesis: the data directory holds a different chain" (and with
/// `xchain up --processes`: "opening bob in D/bob: invalid genesis: …" then
/// "the process of bob validator 0 exited before listening"). The user is
/// sent after the chain data, the one thing that is fine. The shape file
/// records the key's mode ("own") but not its address, so nothing can name
/// the mismatch.
///
/// Expected: a `MbsError::NodeKey` naming `node-key` (the directory
/// records the node's address when the key is created).
#[test]
fn a_restart_with_another_key_names_the_node_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    drop(BobMbs::open(d, MbsSpec::default()).unwrap());
    let file = d.join(NODE_KEY_FILE);
    std::fs::write(&file, format!("{}\n", "22".repeat(32))).unwrap();
    match BobMbs::open(d, MbsSpec::default()) {
        Err(e @ MbsError::NodeKey { .. }) => assert!(e.to_string().contains(NODE_KEY_FILE), "{e}"),
        Err(e) => panic!("refused without naming the node key: {e}"),
        Ok(m) => panic!("opened with another node key {:?}", m.relayer.address()),
    }
}
