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
