//! Progress of long commands on stderr: a bar of named steps, drawn only
//! when stderr is a terminal and never under `--json` (whose stdout is one
//! JSON document and whose stderr stays quiet for scripts).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A bar over a fixed number of named steps.
pub struct Steps {
    bar: ProgressBar,
    started: bool,
}

impl Steps {
    /// `total` steps of `what`; hidden under `--json` or off a terminal.
    pub fn new(what: &str, total: u64, json: bool) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return Self { bar: ProgressBar::hidden(), started: false };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, started: false }
    }

    /// Starts the step `name`; the one before it is done.
    pub fn step(&mut self, name: &str) {
        if self.started {
            self.bar.inc(1);
        }
        self.started = true;
        self.bar.set_message(name.to_string());
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
