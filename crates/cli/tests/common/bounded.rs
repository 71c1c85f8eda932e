//! Runs a command for at most a given time (the attack tests of sizes that
//! must be refused up front rather than run until killed).

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::BIN;

/// `gridledger <args>` through `sh`, under a 3 GB address-space limit
/// (`ulimit -v`), for [`run_within`].
pub fn under_3gb(args: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("ulimit -v 3000000; exec '{BIN}' {args}"));
    c
}

/// Spawns `cmd` (stdout discarded, stderr captured) and waits at most
/// `limit` for it to exit, polling every 100 ms; kills it if it has not.
/// Returns its exit status (None: it was still running and was killed)
/// and its stderr.
pub fn run_within(cmd: &mut Command, limit: Duration) -> (Option<ExitStatus>, String) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// `gridledger` with `args` (each passed as one argument, no shell word
/// splitting) under a 4 GiB address-space limit, so a run that tries to
/// take tens of GB fails fast instead of taking the machine down.
pub fn under_4gib(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg("ulimit -v 4194304; exec \"$0\" \"$@\"").arg(BIN).args(args);
    c
}

/// [`run_within`] of [`under_4gib`]: `Some((exit code, stderr))` if it
/// exits within `secs`, `None` if it had to be killed.
pub fn run_for(args: &[&str], secs: u64) -> Option<(Option<i32>, String)> {
    let (status, err) = run_within(&mut under_4gib(args), Duration::from_secs(secs));
    status.map(|s| (s.code(), err))
}
