//! Twenty-fifth attack round on `gridledger xchain serve-chain` (issue 14):
//! the wait for a database held by another process (`StoreError::Locked`,
//! `serve-chain` retries its open up to `--chain-timeout`).
//!
//! Each finding asserts what a careful user would expect. Finding [1] (a
//! validator waiting for its database ignored its driver's death for up to
//! `--chain-timeout`) is fixed: the wait checks that its driver lives
//! between tries, as the wait for the driver's connection does.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// The arguments of BoB validator 3's `serve-chain` in `dir` (the shape of
/// attack r8's driver test), waiting up to `timeout` seconds.
fn validator_args(dir: &Path, timeout: u64) -> String {
    format!(
        "xchain serve-chain --role bob --validator 3 --chains 2 --validators 4 --kappa 16 \
         --genesis-time 591274485258 --chain-timeout {timeout} --dir '{}'",
        dir.display()
    )
}

/// Whether process `pid` is gone (or a zombie nobody reaped).
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

fn kill9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// Kills the child it holds when dropped (a failed assertion leaves no
/// process behind).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------------- [1]

/// Attack R8-6's decision: a validator process "gives up at once when its
/// parent (the driver) is gone", so a killed driver leaves no process
/// behind. Commit 42813b8 added a wait before that check: `serve-chain`
/// retries opening its database every 100 ms for up to `--chain-timeout`
/// (up to 3,600 s) while another process holds it, and the driver-gone
/// check (`accept_driver`) runs only after the open succeeds. So a driver
/// killed while one of its validators waits (the very situation the wait
/// is for: `kill -9` of `up --processes` and a restart, or two runs on one
/// directory) leaves that validator running for the whole timeout; when
/// the holder exits it takes the database itself (and only then notices
/// its driver is gone), racing the next run's validator for the lock.
/// Each retry of a BoB process also builds every external chain's genesis
/// in a scratch directory (`open_chain`), ten times a second.
///
/// Here the holder is a `serve-chain` of the same replica started by the
/// test (alive, waiting for a driver); the second one is started by a
/// shell playing the driver, which is killed once the second one says it
/// waits.
///
/// Expected: the waiting validator exits once its driver is gone.
/// Observed: it still runs 40 s later (its timeout is 600 s).
#[test]
fn a_validator_waiting_for_its_database_exits_when_its_driver_dies() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("bob-v3");
    // The holder: opens the replica's database and waits for a driver.
    let mut holder = Command::new("sh")
        .args(["-c", &format!("exec '{BIN}' {}", validator_args(&replica, 600))])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(holder.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let holder = Reaped(holder);
    assert!(first.starts_with("listening "), "{first}");
    // The second validator, started by a driver (a shell) that then dies.
    let err = dir.path().join("second.err");
    let pidfile = dir.path().join("second.pid");
    let script = format!(
        "'{BIN}' {} </dev/null >/dev/null 2>'{}' & echo $! > '{}'; sleep 600",
        validator_args(&replica, 600),
        err.display(),
        pidfile.display()
    );
    let driver = Reaped(Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).spawn().unwrap());
    let mut pid = None;
    for _ in 0..600 {
        let waits = std::fs::read_to_string(&err).is_ok_and(|s| s.contains("waiting for the previous run"));
        if waits {
            pid = std::fs::read_to_string(&pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok());
            if pid.is_some() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(pid) = pid else {
        panic!("the second validator never waited: {}", std::fs::read_to_string(&err).unwrap_or_default());
    };
    // The driver dies (kill -9), the holder still holds the database.
    drop(driver);
    let mut exited = false;
    for _ in 0..400 {
        if gone(pid) {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !exited {
        kill9(pid);
    }
    drop(holder);
    assert!(exited, "validator process {pid} still waits for its database 40 s after its driver died");
}

// --------------------------------------------------------------- held up

/// Commit 42813b8's own case: a second `serve-chain` of one replica, its
/// driver alive, waits while the first holds the database and takes it
/// once the first is killed (`kill -9`): it answers `listening`, and
/// nothing of the first's is lost (the replica opens at the same height).
#[test]
fn a_validator_waiting_for_its_database_takes_it_when_the_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("bob-v3");
    let start = |timeout: u64| {
        Command::new("sh")
            .args(["-c", &format!("exec '{BIN}' {}", validator_args(&replica, timeout))])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = start(600);
    let mut line = String::new();
    BufReader::new(first.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("listening "), "{line}");
    let mut first = Reaped(first);
    let mut second = start(120);
    let err = BufReader::new(second.stderr.take().unwrap());
    let mut second_out = BufReader::new(second.stdout.take().unwrap());
    let second = Reaped(second);
    // Once the second says it waits, the holder is killed.
    // (The pipe is kept open to the end: a closed stderr would fail the
    // second's later messages.)
    let mut err_lines = err.lines();
    let mut said = false;
    for l in err_lines.by_ref() {
        if l.unwrap().contains("waiting for the previous run") {
            said = true;
            break;
        }
    }
    assert!(said, "the second serve-chain did not wait");
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let mut line = String::new();
    second_out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening "), "the second serve-chain never opened the database: {line:?}");
    drop(second);
    drop(err_lines);
}
