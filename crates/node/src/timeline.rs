//! An opt-in event timeline for finding where a batch's time goes
//! (`gridledger bench pbft --processes --timeline`).
//!
//! With `GRIDLEDGER_TIMELINE=<file>` in its environment a node appends one
//! JSON line per event to that file: admissions from clients, gossip sent
//! and verified, proposals, pre-prepares received, validations, vote-state
//! and block writes, commits, view changes. Each line carries `t_us`
//! (microseconds since the Unix epoch, so files of processes on one machine
//! line up) and `ev`. Without the variable every call is a relaxed load and
//! a branch; the closure building the event is never run.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the file to append to.
pub const ENV: &str = "GRIDLEDGER_TIMELINE";

static SINK: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

fn sink() -> Option<&'static Mutex<std::fs::File>> {
    SINK.get_or_init(|| {
        let path = std::env::var_os(ENV)?;
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok().map(Mutex::new)
    })
    .as_ref()
}

/// Whether events are being recorded.
pub fn enabled() -> bool {
    sink().is_some()
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Records the event `event()` builds (a JSON object; `t_us` and `ev` are
/// added), if recording. Write errors are ignored: this is diagnostics.
pub fn record(ev: &str, event: impl FnOnce() -> serde_json::Value) {
    let Some(file) = sink() else { return };
    let mut v = event();
    if let Some(o) = v.as_object_mut() {
        o.insert("t_us".into(), now_us().into());
        o.insert("ev".into(), ev.into());
    }
    let mut line = v.to_string();
    line.push('\n');
    let _ = file.lock().unwrap_or_else(|p| p.into_inner()).write_all(line.as_bytes());
}
