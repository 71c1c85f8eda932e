//! The BoB node's key (attack r18 [2], second half): every deployment
//! generates its own at random when its directory is created, stores it
//! there (`node-key`, mode 0600) and loads it on every open; the old public
//! development seed ([`dev_node_key`]) signs as nobody in particular.

mod common;

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_xchain::mbs::{
    bob_call_signed, deployment, dev_node_key, BobMbs, MbsError, MbsSpec, NodeKey, NODE_KEY_FILE,
};
use std::os::unix::fs::PermissionsExt;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn two_deployments_get_different_node_keys_none_the_public_seed() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = BobMbs::open(da.path(), MbsSpec::default()).unwrap();
    let b = BobMbs::open(db.path(), MbsSpec::default()).unwrap();
    let (na, nb) = (a.relayer.address(), b.relayer.address());
    assert_ne!(na, nb, "each deployment has a node key of its own");
    assert_ne!(na, dev_node_key().address());
    assert_ne!(nb, dev_node_key().address());
    for (m, dir) in [(&a, da.path()), (&b, db.path())] {
        let node = m.relayer.address();
        // The BoB registers and funds the generated key, and the deployment
        // hash every CCT's terms bind is the one of that genesis.
        assert_eq!(m.config.nodes, vec![node]);
        assert!(m.bob.account(&node).balance > Amount::ZERO);
        assert_eq!(m.bob.account(&dev_node_key().address()).balance, Amount::ZERO);
        assert_eq!(deployment(&m.spec), m.config.deployment);
        assert_eq!(m.config.deployment, m.bob.chain().genesis().hash());
        assert_eq!(m.spec.node_key.address(), node);
        // Stored, readable by its owner only.
        assert_eq!(mode(&dir.join(NODE_KEY_FILE)), 0o600);
    }
}

#[test]
fn a_restart_keeps_the_node_key() {
    let dir = tempfile::tempdir().unwrap();
    let (node, dep) = {
        let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
        m.tick().unwrap();
        (m.relayer.address(), m.config.deployment)
    };
    let stored = std::fs::read(dir.path().join(NODE_KEY_FILE)).unwrap();
    // A new default spec carries another fresh key: the stored one wins.
    let spec = MbsSpec::default();
    assert_ne!(spec.node_key.address(), node);
    let mut m = BobMbs::open(dir.path(), spec).unwrap();
    assert_eq!(m.relayer.address(), node);
    assert_eq!(m.config.deployment, dep);
    assert_eq!(std::fs::read(dir.path().join(NODE_KEY_FILE)).unwrap(), stored, "the file is not rewritten");
    // And it still relays as the BoB's node.
    let before = m.bob.account(&node).nonce;
    m.tick().unwrap();
    assert!(m.bob.account(&node).nonce > before, "the restarted node's relays executed");
}

#[test]
fn a_transaction_signed_with_the_old_public_seed_cannot_act_as_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    m.tick().unwrap();
    let node = m.relayer.address();
    let seed = dev_node_key();
    assert!(!m.config.nodes.contains(&seed.address()), "the seed is no registered node (no duty lane)");
    // Give the seed's account funds, so its calls are not refused for fees alone.
    let (bob, funder) = (m.bob.chain_id(), dev_key(5));
    let fund = m.bob.sign(
        &funder,
        transfer(&funder, bob, m.bob.next_nonce(&funder.address()), seed.address(), Amount(1 << 36), Amount(1)),
    );
    m.bob_ok(&fund).unwrap();
    // r18 [2]'s move: a call at the node's next nonce, at a higher price.
    let nonce = m.bob.next_nonce(&node);
    let committed = m.bob.account(&node).nonce;
    let mut forged = bob_call_signed(&seed, bob, &m.bob.domain(), nonce, "ccdi_finish", &Hash32([7; 32]), Amount::ZERO);
    forged.tx.gas_price = Amount(50);
    let forged = forged.tx.sign_in(&seed, Some(&m.bob.domain()));
    assert_ne!(forged.tx.sender.address(), node, "signed by the seed, the call is the seed's, not the node's");
    let _ = m.bob.submit(&forged);
    assert_eq!(m.bob.next_nonce(&node), nonce, "the node's nonces are not spent by it");
    for _ in 0..3 {
        m.tick().unwrap();
    }
    assert!(m.bob.account(&node).nonce >= committed + 3, "the node's relays kept executing");
    for c in m.chain_ids() {
        assert_eq!(m.bob_tip(c), m.external(c).unwrap().height(), "chain {c}: every header relayed");
    }
}

#[test]
fn an_exposed_corrupt_or_missing_node_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(BobMbs::open(dir.path(), MbsSpec::default()).unwrap());
    let file = dir.path().join(NODE_KEY_FILE);
    let good = std::fs::read(&file).unwrap();
    let refused = |why: &str| match BobMbs::open(dir.path(), MbsSpec::default()) {
        Err(e @ MbsError::NodeKey { .. }) => e.to_string(),
        Err(e) => panic!("{why}: another error {e}"),
        Ok(_) => panic!("{why}: opened"),
    };
    for m in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(m)).unwrap();
        let e = refused(&format!("mode {m:o}"));
        assert!(e.contains("600") && e.contains(NODE_KEY_FILE), "{e}");
    }
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, "not a key").unwrap();
    refused("corrupt");
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    refused("a directory");
    std::fs::remove_dir(&file).unwrap();
    let e = refused("missing");
    assert!(e.contains("missing"), "{e}");
    // Restored, it opens again.
    std::fs::write(&file, &good).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
}

#[test]
fn the_development_seed_is_an_explicit_choice_and_not_mixed_with_a_generated_key() {
    let (dd, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dev = MbsSpec { node_key: NodeKey::DevSeed, ..MbsSpec::default() };
    let m = BobMbs::open(dd.path(), dev.clone()).unwrap();
    assert_eq!(m.relayer.address(), dev_node_key().address());
    assert!(!dd.path().join(NODE_KEY_FILE).exists(), "a public seed is not stored as a secret");
    drop(m);
    // A dev-seed deployment does not reopen as one with its own key, nor the reverse.
    assert!(matches!(BobMbs::open(dd.path(), MbsSpec::default()), Err(MbsError::ShapeMismatch { .. })));
    drop(BobMbs::open(dg.path(), MbsSpec::default()).unwrap());
    let mut back = dev;
    back.genesis_time = 1;
    assert!(matches!(BobMbs::open(dg.path(), back), Err(MbsError::ShapeMismatch { .. })));
}

#[test]
fn a_node_address_alone_opens_no_bob_node() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { node_key: NodeKey::Address(dev_key(1).address()), ..MbsSpec::default() };
    assert!(matches!(BobMbs::open(dir.path(), spec), Err(MbsError::NodeKey { .. })));
}

/// A deployment pinned before the node's address was recorded
/// (`node-address`, attack r20 [3]) opens with its stored key, which is then
/// recorded; one that holds chain data and lost its key is refused as
/// missing and nothing is recorded for another key.
#[test]
fn a_deployment_without_a_recorded_node_address_opens_with_its_stored_key() {
    use gridledger_xchain::mbs::{NODE_ADDRESS_FILE, PIN_LOCK_FILE};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = common::opened_once(d);
    let recorded = std::fs::read_to_string(d.join(NODE_ADDRESS_FILE)).unwrap();
    assert_eq!(recorded.trim(), node.to_hex());
    // What a directory made before this change holds.
    std::fs::remove_file(d.join(NODE_ADDRESS_FILE)).unwrap();
    std::fs::remove_file(d.join(PIN_LOCK_FILE)).unwrap();
    let m = BobMbs::open(d, MbsSpec::default()).unwrap();
    assert_eq!(m.relayer.address(), node);
    assert!(m.bob.height() >= 1, "the same chains resumed");
    drop(m);
    assert_eq!(std::fs::read_to_string(d.join(NODE_ADDRESS_FILE)).unwrap(), recorded);
    // The old layout with its key lost: refused, no other key stored.
    std::fs::remove_file(d.join(NODE_ADDRESS_FILE)).unwrap();
    std::fs::remove_file(d.join(NODE_KEY_FILE)).unwrap();
    match BobMbs::open(d, MbsSpec::default()) {
        Err(e @ MbsError::NodeKey { .. }) => assert!(e.to_string().contains("missing"), "{e}"),
        Err(e) => panic!("another error: {e}"),
        Ok(m) => panic!("opened with another key {:?}", m.relayer.address()),
    }
    assert!(!d.join(NODE_KEY_FILE).exists() && !d.join(NODE_ADDRESS_FILE).exists());
}

/// A chain's directory pinned with the node's address alone (a
/// validator's process) refuses another address, naming the recorded one.
#[test]
fn a_chain_directory_refuses_another_node_address() {
    use gridledger_xchain::mbs::{pin_genesis_time, NODE_ADDRESS_FILE};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dev_key(1).address(), dev_key(2).address());
    let spec = |n| MbsSpec { node_key: NodeKey::Address(n), genesis_time: 7, ..MbsSpec::default() };
    assert_eq!(pin_genesis_time(dir.path(), spec(a)).unwrap().node_key.address(), a);
    match pin_genesis_time(dir.path(), spec(b)) {
        Err(e @ MbsError::NodeKey { .. }) => {
            let e = e.to_string();
            assert!(e.contains(NODE_ADDRESS_FILE) && e.contains(&a.to_hex()), "{e}");
        }
        Err(e) => panic!("another error: {e}"),
        Ok(s) => panic!("pinned for {:?}", s.node_key.address()),
    }
    assert_eq!(pin_genesis_time(dir.path(), spec(a)).unwrap().node_key.address(), a);
}

/// A wrong key in an older deployment (chain data, no `node-address`,
/// attack r22 [2]) is refused before anything is recorded, by an error
/// that names `node-key`; so is a chain's own directory opened by a
/// validator's process with the address of another node. The right key
/// then opens and is recorded.
#[test]
fn a_wrong_key_in_an_older_deployment_is_refused_by_name_and_not_recorded() {
    use gridledger_xchain::mbs::{open_chain, Role, NODE_ADDRESS_FILE};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = BobMbs::open(d, MbsSpec::default()).unwrap().relayer.address();
    let own = std::fs::read(d.join(NODE_KEY_FILE)).unwrap();
    std::fs::remove_file(d.join(NODE_ADDRESS_FILE)).unwrap();
    let wrong: String = dev_key(3).secret_bytes().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(d.join(NODE_KEY_FILE), format!("{wrong}\n")).unwrap();
    match BobMbs::open(d, MbsSpec::default()) {
        Err(MbsError::NodeKey { file, reason }) => {
            assert!(file.ends_with(NODE_KEY_FILE), "names {file}: {reason}");
            assert!(reason.contains("not the deployment's key"), "{reason}");
        }
        Err(e) => panic!("another error: {e}"),
        Ok(m) => panic!("opened with {:?}", m.relayer.address()),
    }
    assert!(!d.join(NODE_ADDRESS_FILE).exists(), "the wrong key's address was recorded");
    std::fs::write(d.join(NODE_KEY_FILE), &own).unwrap();
    assert_eq!(BobMbs::open(d, MbsSpec::default()).unwrap().relayer.address(), node);
    assert_eq!(std::fs::read_to_string(d.join(NODE_ADDRESS_FILE)).unwrap().trim(), node.to_hex());

    // A BoB validator's own directory (chain data at its top), older: no node-address.
    let spec = |a| MbsSpec { node_key: NodeKey::Address(a), ..MbsSpec::default() };
    let v = tempfile::tempdir().unwrap();
    let pinned = {
        let (_, config) = open_chain(v.path(), &spec(node), Role::Bob).unwrap();
        assert_eq!(config.nodes, vec![node]);
        std::fs::read_to_string(v.path().join(NODE_ADDRESS_FILE)).unwrap()
    };
    std::fs::remove_file(v.path().join(NODE_ADDRESS_FILE)).unwrap();
    let other = dev_key(4).address();
    match open_chain(v.path(), &spec(other), Role::Bob) {
        Err(MbsError::NodeKey { file, .. }) => assert!(file.ends_with(NODE_KEY_FILE), "names {file}"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("a BoB validator's chain opened for another node"),
    }
    assert!(!v.path().join(NODE_ADDRESS_FILE).exists());
    open_chain(v.path(), &spec(node), Role::Bob).unwrap();
    assert_eq!(std::fs::read_to_string(v.path().join(NODE_ADDRESS_FILE)).unwrap(), pinned);
}
