//! Third attack round on `gridledger xchain … --processes` (one process
//! per validator). Every test here is a finding: it asserts what a careful
//! user would expect and fails on the code it was written against, so each
//! is marked `//! `cargo test -p gridledger-cli --test attack_xchain_r3 -- --ignored`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// The direct children of `pid` whose command line contains `needle`.
fn children_matching(pid: u32, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in tasks.flatten() {
        let Ok(list) = std::fs::read_to_string(t.path().join("children")) else { continue };
        for c in list.split_whitespace().filter_map(|c| c.parse::<i32>().ok()) {
            let cmd = std::fs::read(format!("/proc/{c}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(c);
            }
        }
    }
    out
}

/// kill -9 of one validator process (f = 1 of n = 4) in a running
/// `xchain up --processes --dir D`. The driver stops with an error naming
/// it — as documented (no view change) — but the deployment can then never
/// be resumed: the driver sends each sealed block to validators 0..3 in
/// order, so validators 0–2 committed a block the killed validator 3 never
/// received; on `up --processes --dir D` again, validator 3's replica is a
/// block behind and refuses every later block ("height N+2 does not follow
/// N"), and nothing lets it catch up from the sealed blocks its peers hold.
/// One crashed validator out of four bricks the deployment for good (the
/// driver docs say a later `up --dir` resumes the same deployment; the
/// house rule: a crash at any instant loses nothing committed).
///
/// Expected: the second `up --dir D` succeeds (the lagging replica catches
/// up on the sealed blocks, or the driver syncs it). Observed: it exits 1
/// with "chain-0 validator 3: invalid block: height … does not follow …".
#[test]
fn a_deployment_cannot_resume_after_one_validator_process_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let shape = ["--chains", "2", "--validators", "4", "--dir", d];
    let mut driver = Command::new(BIN)
        .args(["xchain", "up", "--processes", "--epochs", "10000", "--json"])
        .args(shape)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = driver.id();
    // Readiness: the last validator process of the last chain exists, so
    // every earlier one (chain-0's validator 3 among them) is connected.
    let guard = Instant::now() + Duration::from_secs(120);
    while children_matching(pid, "--role 1 --validator 3 ").is_empty() {
        assert!(Instant::now() < guard, "the validator processes never started");
        assert!(driver.try_wait().unwrap().is_none(), "the driver ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = children_matching(pid, "--role 0 --validator 3 ");
    assert_eq!(victim.len(), 1, "chain-0's validator 3");
    // SAFETY: kill(2) has no memory-safety preconditions; the id is a
    // process our own child started, found above.
    let rc = unsafe { libc::kill(victim[0], libc::SIGKILL) };
    assert_eq!(rc, 0);
    let out = driver.wait_with_output().unwrap();
    assert!(!out.status.success(), "the driver stops at the killed validator");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("validator 3"), "the error names the killed validator: {err}");
    // Resume the same deployment.
    let again = Command::new(BIN).args(["xchain", "up", "--processes", "--epochs", "3", "--json"]).args(shape).output();
    let again = again.unwrap();
    assert!(
        again.status.success(),
        "the deployment did not resume after one of four validators crashed: {}",
        String::from_utf8_lossy(&again.stderr)
    );
}
