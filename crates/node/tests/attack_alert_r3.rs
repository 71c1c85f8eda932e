//! Round-3 attacks on `--alert-exec` (node::channel::alert) by an
//! independent reviewer. Tests marked `#[ignore = "attack: ..."]` reproduce
//! a finding and fail on the code they were written against (expected vs
//! observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-node --test attack_alert_r3 -- --ignored --test-threads 1`
//!
//! The tests change the process's working directory and `PATH`: they live
//! alone in this test binary.

#![cfg(unix)]

use gridledger_core::Hash32;
use gridledger_node::channel::alert::{Alert, ExecAlerter};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn alert() -> Alert {
    Alert::DisputeAgainstUs { cid: Hash32([9; 32]), counter: 4, by: 1, t_end_ms: Some(1) }
}

/// Finding: a bare program name (`--alert-exec notify`, a file in the
/// working directory) is *checked* as a path relative to the working
/// directory, but *run* through `Command::new`, which looks a name without
/// a slash up in `PATH`. So the check passes on `./notify` and each alert
/// runs whatever `notify` comes first in `PATH` — another program (one an
/// attacker who can write to a `PATH` directory placed there), or nothing
/// (the alert is lost at the first dispute, exactly what the up-front check
/// promises to prevent).
///
/// Expected: the program that ran is the one that was checked (`./notify`
/// wrote `checked`), or the bare name is refused up front. Observed: the
/// `PATH` program ran (`hijacked`), and with no such program in `PATH` the
/// run fails with NotFound although the check passed.
#[test]
fn a_bare_alert_program_name_runs_the_checked_file_not_one_from_path() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let evil = dir.path().join("evil-bin");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&evil).unwrap();
    let log = dir.path().join("ran.txt");
    script(&work.join("notify"), &format!("echo checked >> '{}'", log.display()));
    script(&evil.join("notify"), &format!("echo hijacked >> '{}'", log.display()));
    let home = std::env::current_dir().unwrap();
    std::env::set_current_dir(&work).unwrap();

    // No `notify` in PATH: the checked program must still run.
    let x = ExecAlerter::new(Path::new("notify")).expect("./notify exists and is executable");
    let first = x.run(&alert());
    // An attacker's directory first in PATH.
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![evil.clone()];
    paths.extend(std::env::split_paths(&old));
    std::env::set_var("PATH", std::env::join_paths(paths).unwrap());
    let second = x.run(&alert());
    std::env::set_var("PATH", old);
    std::env::set_current_dir(home).unwrap();
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        matches!(first, Ok(s) if s.success()) && ran.lines().all(|l| l == "checked") && ran.lines().count() == 2,
        "checked ./notify; without it in PATH the run gave {first:?}; with an attacker's dir in PATH: {second:?}; \
         programs that ran: {ran:?}"
    );
}

/// Finding: the alert is written to the program's stdin *before* the
/// `EXEC_TIMEOUT` clock starts, with a blocking write. An alert larger than
/// the pipe buffer (a `last_error` carrying a node's long error text) to a
/// program that does not read its input blocks the write until the program
/// exits by itself: the program is never killed after `EXEC_TIMEOUT` as the
/// module doc promises, and the alert thread hangs with it.
///
/// Expected: `run` returns (the program killed, `TimedOut`) within
/// `EXEC_TIMEOUT` plus a margin. Observed: it returns only when the program
/// exits on its own (here after 60 s; a program that never exits: never).
#[test]
fn an_alert_program_that_does_not_read_a_large_alert_is_killed_after_the_timeout() {
    use gridledger_node::channel::alert::EXEC_TIMEOUT;
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join("deaf.sh");
    script(&prog, "exec sleep 60");
    let x = ExecAlerter::new(&prog).unwrap();
    let big = Alert::ResolveFailing { cid: Hash32([1; 32]), attempts: 3, last_error: "e".repeat(1 << 20) };
    let (tx, rx) = std::sync::mpsc::channel();
    let start = std::time::Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(x.run(&big).map_err(|e| e.kind()));
    });
    let bound = EXEC_TIMEOUT + std::time::Duration::from_secs(10);
    let got = rx.recv_timeout(bound);
    assert!(got.is_ok(), "run still blocked {:?} after start (EXEC_TIMEOUT {EXEC_TIMEOUT:?})", start.elapsed());
}
