//! `gridledger xchain up` and `gridledger xchain swap` end to end.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

fn run_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn up_relays_every_external_chain_to_the_bob() {
    let v = run_json(&["xchain", "up", "--chains", "3", "--epochs", "4", "--json"]);
    let ext = v["external"].as_array().unwrap();
    assert_eq!(ext.len(), 3);
    for c in ext {
        assert_eq!(c["height"], 4);
        assert_eq!(c["bob_stored_tip"], 4);
        assert_eq!(c["contracts"], 0);
    }
}

#[test]
fn up_with_processes_runs_each_validator_in_its_own_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args =
        ["xchain", "up", "--processes", "--chains", "2", "--validators", "4", "--epochs", "3", "--dir", d, "--json"];
    let v = run_json(&args);
    let driver = v["driver_pid"].as_u64().unwrap();
    let procs = v["processes"].as_array().unwrap();
    let pids: Vec<u64> = procs.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 12, "four validators each of the BoB and two external chains: {v}");
    let distinct: std::collections::BTreeSet<u64> = pids.iter().copied().chain([driver]).collect();
    assert_eq!(distinct.len(), 13, "each validator ran in a process of its own, none in the driver: {v}");
    for role in ["bob", "chain-0", "chain-1"] {
        let vs: std::collections::BTreeSet<u64> =
            procs.iter().filter(|p| p["role"] == role).map(|p| p["validator"].as_u64().unwrap()).collect();
        assert_eq!(vs, (0..4).collect(), "{role}: validators 0 to 3");
    }
    assert_eq!(v["bob"]["height"], 3);
    let ext = v["external"].as_array().unwrap();
    assert_eq!(ext.len(), 2);
    for c in ext {
        assert_eq!(c["height"], 3);
        assert_eq!(c["validator_heights"], serde_json::json!([3, 3, 3, 3]), "every replica committed: {c}");
        assert_eq!(c["bob_stored_tip"], 3, "the driver relayed every header across processes: {c}");
        assert_eq!(c["contracts"], 0);
    }
    // The driver generated the deployment's node key in its directory.
    let key = dir.path().join("node-key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // The same directory, embedded: the chains validator 0's processes
    // wrote resume, and the BoB's stored tips are the ones relayed across
    // processes (the BoB accepted the seals the validators made apart).
    let v = run_json(&["xchain", "up", "--chains", "2", "--epochs", "1", "--dir", d, "--json"]);
    assert_eq!(v["bob"]["height"], 4);
    for c in v["external"].as_array().unwrap() {
        assert_eq!((c["height"].as_u64(), c["bob_stored_tip"].as_u64()), (Some(4), Some(4)));
    }
    // Every validator process stopped with the driver.
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "validator process {pid} still running");
    }
}

#[test]
fn swap_over_validator_processes_settles_and_moves_both_payments() {
    let args = ["xchain", "swap", "--processes", "--chains", "2", "--validators", "4", "--amount", "500", "--json"];
    let v = run_json(&args);
    let pids: std::collections::BTreeSet<u64> =
        v["processes"].as_array().unwrap().iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), 12, "one process per validator: {v}");
    assert!(!pids.contains(&v["driver_pid"].as_u64().unwrap()));
    let r = &v["record"];
    assert_eq!(r["complete"], true, "{v}");
    assert!(r["sender"]["Proved"].is_object() && r["receiver"]["Proved"].is_object(), "both proved: {r}");
    let amount = |k: &str, i: usize| -> i128 { v["balances"][k][i].as_str().unwrap().parse().unwrap() };
    let x_i: i128 = v["x_i"].as_str().unwrap().parse().unwrap();
    assert_eq!(amount("receiver_i", 1) - amount("receiver_i", 0), x_i, "the receiver got x_i on chain i");
    assert_eq!(amount("sender_j", 1) - amount("sender_j", 0), 500, "the sender got x_j on chain j");
    assert!(amount("sender_i", 0) - amount("sender_i", 1) >= x_i, "the sender paid x_i (and a fee)");
    assert!(amount("receiver_j", 0) - amount("receiver_j", 1) >= 500, "the receiver paid x_j (and a fee)");
    // The validator processes stopped with the driver.
    for pid in pids {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "validator process {pid} still running");
    }
    let out =
        Command::new(BIN).args(["xchain", "swap", "--processes", "--attack", "withhold-sender"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("honest exchange only"));
}

#[test]
fn swap_settles_honestly_and_under_withholding() {
    let v = run_json(&["xchain", "swap", "--chains", "2", "--amount", "500", "--json"]);
    assert_eq!(v["report"]["exchange_phases"], 2);
    assert_eq!(v["report"]["record"]["complete"], true);
    assert_eq!(v["report"]["x_i"], "500");
    let v = run_json(&["xchain", "swap", "--attack", "withhold-receiver", "--json"]);
    assert_eq!(v["report"]["record"]["receiver"], "Penalised");
    assert_eq!(v["report"]["record"]["complete"], true);
    // A posted NT that can never execute is closed at the forwarding deadline.
    let v = run_json(&["xchain", "swap", "--attack", "unlandable-sender", "--json"]);
    assert_eq!(v["report"]["record"]["sender"], "Penalised");
    assert_eq!(v["report"]["record"]["complete"], true);
    assert!(v["report"]["record"]["forward_i"].as_u64().unwrap() > 0, "the forwarding deadline was set");
}

#[test]
fn swap_refuses_the_same_chain_on_both_sides() {
    let out = Command::new(BIN).args(["xchain", "swap", "--from", "1", "--to", "1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be different chains"));
}

#[test]
fn migrate_moves_an_item_to_another_chain_in_three_phases() {
    let v =
        run_json(&["xchain", "migrate", "--chains", "3", "--from", "2", "--to", "0", "--attack-value", "77", "--json"]);
    let mg = &v["migration"];
    // Chain ids are the deployment's own: external chain n is base + 1 + n.
    let (from, to) = (mg["from_chain"].as_u64().unwrap(), mg["to_chain"].as_u64().unwrap());
    assert_eq!(from, to + 2, "from chain 2 to chain 0: {mg}");
    assert_eq!(mg["phases"], 3);
    assert_eq!(mg["transactions"], 6, "2 locks, 2 CCTs, one settlement per chain");
    assert_eq!(mg["migrated"], mg["before"], "the item arrives as it left");
    assert_eq!(mg["migrated"]["attack"], 77);
    assert_eq!(mg["left_on_from"]["experience"], 0, "a fresh version stays behind");
    assert_ne!(mg["before"]["experience"], 0, "the migrated item had fought before");
}

#[test]
fn migrate_refuses_the_same_chain_and_bad_names() {
    let out = Command::new(BIN).args(["xchain", "migrate", "--from", "1", "--to", "1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be different chains"));
    let out = Command::new(BIN).args(["xchain", "migrate", "--name", ""]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name"));
}

#[test]
fn ccdi_updates_the_honest_and_eliminates_the_withholding() {
    let v = run_json(&["xchain", "ccdi", "--chains", "2", "--users", "4", "--json"]);
    assert_eq!(v["report"]["case1"], true);
    assert_eq!(v["report"]["phases"], 3);
    assert!(v["report"]["items"].as_array().unwrap().iter().all(|o| o["fate"] == "Updated"));
    let v = run_json(&["xchain", "ccdi", "--chains", "2", "--users", "4", "--withhold", "1", "--json"]);
    assert_eq!(v["report"]["case1"], false);
    assert_eq!(v["report"]["eliminated"], 1);
    let items = v["report"]["items"].as_array().unwrap();
    assert_eq!(items.iter().filter(|o| o["fate"] == "Updated").count(), 3);
    let out = Command::new(BIN).args(["xchain", "ccdi", "--users", "3", "--withhold", "3"]).output().unwrap();
    assert!(!out.status.success());
}

/// Copies the deployment directory `from` to `to` (both relayers then
/// start from the same chains).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The relayer of `xchain up --processes` meets a stored fork whose
/// replacement is longer than one relay (`MAX_RELAY_BATCH`, 64 headers):
/// an equivocating proposer relayed its own block first, then the BoB
/// fell 70 headers behind chain J (κ_i = 160, k = 2: 79 headers a BoB
/// block). Like the library's relayer it sends the chain's branch from
/// the fork point, its first 64 headers in one relay, and goes on from
/// their end: one epoch of each, from copies of one deployment, leaves
/// the BoB with the same stored tip of chain J (64 headers up, on the
/// chain's own branch), the next epoch with the chain's own tip.
#[test]
fn processes_relay_a_fork_branch_longer_than_one_relay_as_the_library_does() {
    use gridledger_core::crypto::KeyPair;
    use gridledger_core::{Amount, Hash32};
    use gridledger_ledger::devnet::dev_key;
    use gridledger_ledger::{BlockHeader, Seal, TxStatus};
    use gridledger_xchain::bob::{keys, Relay};
    use gridledger_xchain::mbs::{BobMbs, MbsSpec};
    use gridledger_xchain::{Finality, SealedHeader};

    let dir = tempfile::tempdir().unwrap();
    let (procs, lib) = (dir.path().join("procs"), dir.path().join("lib"));
    let shape = ["--chains", "2", "--validators", "4", "--probabilistic", "2", "--kappa", "160", "--json", "--dir"];
    let up = |d: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["xchain", "up", "--epochs", "1"];
        args.extend(extra);
        args.extend(shape);
        args.push(d.to_str().unwrap());
        run_json(&args)
    };
    up(&procs, &[]);
    let spec = MbsSpec {
        chains: 2,
        validators: 4,
        bob_validators: 4,
        finality: Finality::Probabilistic { k: 2 },
        kappa: 160,
        ..MbsSpec::default()
    };
    let stored = |d: &std::path::Path, j| -> (u64, Hash32) {
        BobMbs::open(d, spec.clone()).unwrap().bob_record(&keys::tip(j)).unwrap()
    };
    let (j, tip) = {
        let mut m = BobMbs::open(&procs, spec.clone()).unwrap();
        let j = m.chain_ids()[1];
        m.wait_caught_up(&[j]).unwrap();
        let tip = m.bob_tip(j);
        // The proposer scheduled for tip + 1 relays a block of its own there.
        let parent = m.external(j).unwrap().sealed_header(tip).unwrap().unwrap().header;
        let leader = KeyPair::from_seed(&format!("gridledger-xchain-{j}-validator-{}", (tip + 1) % 4));
        let header = BlockHeader {
            chain_id: j,
            height: tip + 1,
            parent: parent.hash(),
            timestamp: parent.timestamp + 1,
            proposer: leader.public(),
            tx_root: Hash32([9; 32]),
            receipt_root: Hash32([9; 32]),
            state_root: parent.state_root,
            gas_used: 0,
            tx_count: 0,
        };
        let forged = SealedHeader { seal: Seal::Single { signature: leader.sign(&header.hash()) }, header };
        let tx = m.bob_call(&dev_key(5), "relay", &Relay { chain: j, headers: vec![forged] }, Amount::ZERO);
        let h = m.bob.submit(&tx).unwrap();
        m.bob.tick().unwrap();
        assert_eq!(m.bob.receipt(&h).unwrap().unwrap().status, TxStatus::Success, "the forged header is stored");
        // Chain J goes on along its own block; the BoB falls 70 headers behind.
        for _ in 0..70 {
            m.external_mut(j).unwrap().tick().unwrap();
        }
        (j, tip)
    };
    assert_eq!(stored(&procs, j).0, tip + 1, "the forged header is the stored tip");
    copy_dir(&procs, &lib);
    let own = |d: &std::path::Path, h| {
        BobMbs::open(d, spec.clone()).unwrap().external(j).unwrap().sealed_header(h).unwrap().map(|s| s.header.hash())
    };
    // One epoch: the library's relayer, then the processes' on the copy.
    BobMbs::open(&lib, spec.clone()).unwrap().tick().unwrap();
    up(&procs, &["--processes"]);
    let (by_lib, by_procs) = (stored(&lib, j), stored(&procs, j));
    assert_eq!(by_lib.0, tip + 64, "the library relayed the branch's first 64 headers from the fork point");
    assert_eq!(Some(by_lib.1), own(&lib, tip + 64), "on chain J's own branch");
    assert_eq!(by_procs, by_lib, "the processes' relayer stored another tip of chain J than the library's");
    // The next epoch goes on from there to the chain's own tip.
    BobMbs::open(&lib, spec.clone()).unwrap().tick().unwrap();
    up(&procs, &["--processes"]);
    for d in [&lib, &procs] {
        let (h, hash) = stored(d, j);
        let height = BobMbs::open(d, spec.clone()).unwrap().external(j).unwrap().height();
        assert_eq!((h, Some(hash)), (height, own(d, height)), "{}: the BoB follows chain J", d.display());
    }
}

/// Attack r18 [2]: `xchain up` generates a node key of its own for each
/// deployment (no public seed), keeps it across runs and refuses to run
/// with a key that group or others can read.
#[test]
fn up_keeps_a_node_key_of_its_own_and_refuses_an_exposed_one() {
    use std::os::unix::fs::PermissionsExt;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let up = |d: &std::path::Path| {
        Command::new(BIN)
            .args(["xchain", "up", "--chains", "2", "--epochs", "1", "--json", "--dir"])
            .arg(d)
            .output()
            .unwrap()
    };
    for d in [a.path(), b.path()] {
        assert!(up(d).status.success());
    }
    let (ka, kb) = (a.path().join("node-key"), b.path().join("node-key"));
    let key_a = std::fs::read(&ka).unwrap();
    assert_ne!(key_a, std::fs::read(&kb).unwrap(), "two deployments, two node keys");
    let out = up(a.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&ka).unwrap(), key_a, "a restart keeps the key");
    std::fs::set_permissions(&ka, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = up(a.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("node key") && err.contains("600"), "{err}");
}
