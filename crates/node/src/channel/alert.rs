//! Alerts beyond logs (issue 10 item 5): what an operator must hear about
//! while a watch service or party runs unattended.
//!
//! An [`Alert`] is one JSON object (`{"kind": …, "cid": …, …}`). Sinks:
//! [`ExecAlerter`] runs a program of the operator's (`--alert-exec
//! PROGRAM`) with the alert on its standard input, one run per alert; the
//! commands also print every alert as a JSON line (the watch on stderr,
//! `channel serve` in its event stream on stdout).
//!
//! Decisions (the issue names the cases, not the thresholds): an RPC,
//! resolve or settle failure alerts after [`ALERT_AFTER_ATTEMPTS`]
//! consecutive failures and again every further [`ALERT_AFTER_ATTEMPTS`]
//! (not on every retry); a dispute against us alerts once per dispute; the
//! deadline alert fires once per dispute when less than half of the time
//! that was left when the watch first saw it remains and no resolve landed.
//! The program runs detached from the watch loop (a slow or hanging
//! program never delays a resolve); it is killed after
//! [`EXEC_TIMEOUT`], and a failing program is logged, never fatal.

use gridledger_core::Hash32;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Consecutive failures before an alert (and between repeated alerts).
pub const ALERT_AFTER_ATTEMPTS: u32 = 3;

/// Longest an alert program may run before it is killed.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// One alert, serialised as `{"kind": "<snake_case>", ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// The peer (or anyone holding a state of it) raised a dispute: the
    /// channel is closing unilaterally, with `counter` on chain; `t_end_ms`
    /// is the dispute's deadline where known (the watch reads it from the
    /// event; a party's event does not carry it: null).
    DisputeAgainstUs { cid: Hash32, counter: u64, by: u8, t_end_ms: Option<u64> },
    /// `channel_resolve` has not landed after `attempts` tries.
    ResolveFailing { cid: Hash32, attempts: u32, last_error: String },
    /// `channel_settle` has not landed after `attempts` tries.
    SettleFailing { cid: Hash32, attempts: u32, last_error: String },
    /// The node did not answer `attempts` times in a row.
    NodeUnreachable { cid: Hash32, rpc: String, attempts: u32, last_error: String },
    /// A dispute against us is close to its deadline and no answer landed.
    DeadlineNear { cid: Hash32, t_end_ms: u64, left_ms: u64 },
    /// A party cannot bind a listening address of its spec (`what`: "peer"
    /// or "control"; e.g. another local process holds it). The party keeps
    /// guarding the channel (it dials its peer and watches the chain) and
    /// retries the bind with back-off; alerted at the first failure and
    /// every [`ALERT_AFTER_ATTEMPTS`]-th after.
    ListenFailing { cid: Hash32, what: String, addr: String, attempts: u32, last_error: String },
    /// The peer has not co-signed the allocation of our on-chain top-up
    /// (`amount` not yet in a state) within `t_Δ`: payments go on with the
    /// balance the channel had; the allocation is proposed again between
    /// them, and a close refunds it if it never is.
    TopUpDeferred { cid: Hash32, amount: u128 },
    /// A co-signed withdrawal (`counter`) stayed unpaid (`unpaid`) after
    /// its bounded `channel_withdraw` re-sends; the close pays it.
    WithdrawalUnpaid { cid: Hash32, counter: u64, unpaid: u128 },
    /// A close transaction (`method`: `channel_close` of the final state
    /// `counter`, or the timed-out close's `channel_dispute`) was sent its
    /// bounded number of times without the chain showing an outcome; the
    /// party stops re-sending it (fees) and the operator decides.
    CloseStalled { cid: Hash32, method: String, counter: u64 },
    /// The co-signed open's registration was re-sent `attempts` times and
    /// the chain still does not show the channel; `channel open` again
    /// re-sends it.
    OpenUnregistered { cid: Hash32, attempts: u32 },
    /// The party's own control channel could not be set up (`path`); the
    /// party runs on without it, guarding the channel (peer link, chain
    /// watch, disputes), and says so on stderr.
    ControlFailing { cid: Hash32, path: String, last_error: String },
}

impl Alert {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"kind\":\"unserialisable\",\"error\":\"{e}\"}}"))
    }
}

/// Where alerts go.
pub trait AlertSink: Send + Sync {
    fn alert(&self, a: &Alert);
}

/// An optional alert sink for a party ([`super::party::PartyOptions`]).
#[derive(Clone, Default)]
pub struct AlertHook(pub Option<std::sync::Arc<dyn AlertSink>>);

impl AlertHook {
    pub fn alert(&self, a: &Alert) {
        match &self.0 {
            Some(s) => s.alert(a),
            None => tracing::error!("alert: {}", a.to_json()),
        }
    }
}

impl std::fmt::Debug for AlertHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "AlertHook(sink)" } else { "AlertHook(none)" })
    }
}

/// Drops alerts (the library default; the log still has them).
pub struct NoAlerts;

impl AlertSink for NoAlerts {
    fn alert(&self, _: &Alert) {}
}

/// Why an alert program is refused up front.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AlertError {
    #[error("--alert-exec {0}: no such file")]
    Missing(PathBuf),
    #[error("--alert-exec {0}: not a regular file (a directory or device cannot be run)")]
    NotAFile(PathBuf),
    #[error("--alert-exec {0}: not executable (chmod +x it)")]
    NotExecutable(PathBuf),
}

/// Runs `program` with each alert's JSON (one line) on its stdin.
#[derive(Clone, Debug)]
pub struct ExecAlerter {
    program: PathBuf,
}

impl ExecAlerter {
    /// Checks `program` is an existing, executable regular file, so a typo
    /// is refused when the service starts, not discovered at the first
    /// dispute. The path is resolved once, here, to an absolute one
    /// (`canonicalize`), and each alert runs exactly that file: a bare name
    /// (`notify`) means `./notify` as checked, never a `notify` looked up in
    /// `PATH`, and a later change of the working directory changes nothing.
    pub fn new(program: &Path) -> Result<Self, AlertError> {
        let resolved = std::fs::canonicalize(program).map_err(|_| AlertError::Missing(program.to_path_buf()))?;
        let meta = std::fs::metadata(&resolved).map_err(|_| AlertError::Missing(program.to_path_buf()))?;
        if !meta.is_file() {
            return Err(AlertError::NotAFile(program.to_path_buf()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o111 == 0 {
                return Err(AlertError::NotExecutable(program.to_path_buf()));
            }
        }
        Ok(Self { program: resolved })
    }

    /// Runs the program once with `a` on stdin and waits for it (bounded by
    /// [`EXEC_TIMEOUT`]). Used by [`AlertSink::alert`] on its own thread.
    ///
    /// The clock starts before the alert is written, and the write runs on
    /// its own thread: a program that does not read a large alert (more
    /// than the pipe holds) is still killed after [`EXEC_TIMEOUT`] (the
    /// kill closes the pipe, which ends the blocked write).
    pub fn run(&self, a: &Alert) -> Result<std::process::ExitStatus, std::io::Error> {
        let start = Instant::now();
        let mut child =
            Command::new(&self.program).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            let line = a.to_json();
            // A program that does not read its input still runs.
            std::thread::spawn(move || {
                let _ = writeln!(stdin, "{line}");
            });
        }
        loop {
            if let Some(s) = child.try_wait()? {
                return Ok(s);
            }
            if start.elapsed() >= EXEC_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "alert program timed out"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl AlertSink for ExecAlerter {
    fn alert(&self, a: &Alert) {
        let me = self.clone();
        let a = a.clone();
        std::thread::spawn(move || match me.run(&a) {
            Ok(s) if s.success() => {}
            Ok(s) => tracing::error!("alert program {} exited with {s} for {}", me.program.display(), a.to_json()),
            Err(e) => tracing::error!("alert program {} failed ({e}) for {}", me.program.display(), a.to_json()),
        });
    }
}

/// Prints each alert as one JSON line on stderr (`{"alert": {...}}`) and
/// passes it on to an optional program.
pub struct StderrAndExec(pub Option<ExecAlerter>);

impl AlertSink for StderrAndExec {
    fn alert(&self, a: &Alert) {
        tracing::warn!("alert: {}", a.to_json());
        eprintln!("{{\"alert\":{}}}", a.to_json());
        if let Some(x) = &self.0 {
            x.alert(a);
        }
    }
}

/// The alert a party's event calls for, if any: a dispute raised by the
/// other side than `our_side`, a top-up allocation deferred, a withdrawal
/// left unpaid after its re-sends, a close transaction given up, an open
/// whose registration never showed.
pub fn alert_of_event(cid: Hash32, our_side: u8, e: &gridledger_channels::ChannelEvent) -> Option<Alert> {
    match *e {
        gridledger_channels::ChannelEvent::DisputeSeen { counter, by } if by != our_side => {
            Some(Alert::DisputeAgainstUs { cid, counter, by, t_end_ms: None })
        }
        gridledger_channels::ChannelEvent::TopUpDeferred { amount } => {
            Some(Alert::TopUpDeferred { cid, amount: amount.0 })
        }
        gridledger_channels::ChannelEvent::WithdrawalUnpaid { counter, unpaid } => {
            Some(Alert::WithdrawalUnpaid { cid, counter, unpaid: unpaid.0 })
        }
        gridledger_channels::ChannelEvent::CloseStalled { ref method, counter } => {
            Some(Alert::CloseStalled { cid, method: method.clone(), counter })
        }
        gridledger_channels::ChannelEvent::OpenUnregistered { attempts } => {
            Some(Alert::OpenUnregistered { cid, attempts })
        }
        _ => None,
    }
}

/// Counts consecutive failures of one duty and says when to alert.
#[derive(Default, Debug)]
pub struct FailureCount(u32);

impl FailureCount {
    /// Records a failure; `Some(attempts)` when an alert is due.
    pub fn failed(&mut self) -> Option<u32> {
        self.0 = self.0.saturating_add(1);
        self.0.is_multiple_of(ALERT_AFTER_ATTEMPTS).then_some(self.0)
    }
    pub fn succeeded(&mut self) {
        self.0 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_and_non_executable_programs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert_eq!(ExecAlerter::new(&missing).unwrap_err(), AlertError::Missing(missing));
        assert_eq!(ExecAlerter::new(dir.path()).unwrap_err(), AlertError::NotAFile(dir.path().to_path_buf()));
        let plain = dir.path().join("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        assert_eq!(ExecAlerter::new(&plain).unwrap_err(), AlertError::NotExecutable(plain));
    }

    #[cfg(unix)]
    #[test]
    fn the_program_gets_the_alert_json_on_stdin() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got.jsonl");
        let prog = dir.path().join("record.sh");
        std::fs::write(&prog, format!("#!/bin/sh\ncat >> '{}'\n", out.display())).unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let x = ExecAlerter::new(&prog).unwrap();
        let a = Alert::DisputeAgainstUs { cid: Hash32([7; 32]), counter: 3, by: 0, t_end_ms: Some(99) };
        assert!(x.run(&a).unwrap().success());
        let got: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
        assert_eq!(got["kind"], "dispute_against_us");
        assert_eq!(got["counter"], 3);
        assert_eq!(got["by"], 0);
        assert_eq!(got["cid"], serde_json::to_value(Hash32([7; 32])).unwrap());
    }

    #[test]
    fn failures_alert_every_third_attempt_and_reset_on_success() {
        let mut f = FailureCount::default();
        assert_eq!((f.failed(), f.failed(), f.failed()), (None, None, Some(3)));
        assert_eq!((f.failed(), f.failed(), f.failed()), (None, None, Some(6)));
        f.succeeded();
        assert_eq!((f.failed(), f.failed()), (None, None));
    }
}
