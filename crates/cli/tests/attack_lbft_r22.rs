//! Attack round 22 on `gridledger sim lbft` with hostile arguments.
//!
//! Findings:
//! - [1] low: `sim lbft --seeds N` builds the list of every seed before
//!   the first run (`seed_list` collects `FIRST..=FIRST+N-1` into a
//!   vector), so a large sweep is refused by a panic, not a typed error:
//!   `--seeds 18446744073709551615` panics ("capacity overflow", exit
//!   101), `--seeds 1000000000000` aborts ("memory allocation of
//!   8000000000000 bytes failed", SIGABRT), and `--seeds 2000000000` —
//!   a long sweep the "more seeds behind a flag" invites —
//!   takes 16 GB of memory before its first seed runs. `sim pbft` shares
//!   the function. (`sim_lbft_huge_seed_counts_are_no_panic`)
//!
//! Fixed: a sweep's seeds are a range, run one by one, never a list.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// Runs `args` for at most `secs` seconds: `Some((code, stderr))` if it
/// ended by itself (`code` is `None` when a signal ended it), `None` if it
/// was still running (then killed).
fn run_for(args: &[&str], secs: u64) -> Option<(Option<i32>, String)> {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("GRIDLEDGER_SIM_SEED")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gridledger");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("stderr");
            return Some((status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A seed count the sweep cannot run is refused with a typed error (exit
/// 1 and a message), or the sweep starts; it never panics or aborts.
#[test]
fn sim_lbft_huge_seed_counts_are_no_panic() {
    for seeds in ["18446744073709551615", "1000000000000"] {
        let args = ["sim", "lbft", "--seeds", seeds];
        match run_for(&args, 10) {
            // Still running after 10 s: the sweep started, nothing died.
            None => {}
            Some((code, stderr)) => {
                assert!(!stderr.contains("panicked"), "--seeds {seeds} panicked: {stderr}");
                assert!(!stderr.contains("memory allocation"), "--seeds {seeds} aborted: {stderr}");
                assert_eq!(code, Some(1), "--seeds {seeds}: ended by {code:?} (not a typed refusal): {stderr}");
            }
        }
    }
}
