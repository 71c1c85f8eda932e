//! Attacks on `gridledger fl train` (issue 16). Every test here FAILS on the
//! code it was written against and is `#[ignore]`d with the one-line
//! finding; run them with
//! `cargo test -p gridledger-cli --test attack_fl -- --ignored`.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// Finding 9 (`fl train --nodes`, panic on an accepted flag value): clap
/// accepts `--nodes 4..=256`, but the federation derives node `k`'s enclave
/// seed as `[k as u8 + 1; 32]`, which overflows for node 255: any
/// `--nodes 256` run panics (exit 101, "attempt to add with overflow" in
/// debug builds; release builds wrap and give node 255 the seed `[0; 32]`).
/// Expected: the run proceeds, or the value is refused up front with a
/// typed error (exit 1 or 2, no panic). Observed: exit 101 with a panic.
///
/// The full 256-node round costs ~50 s of a debug build (≈200 000 signature
/// checks: each of 256 nodes verifies every other's pre-vector and PBFT
/// votes), so by default this runs the same command at 32 nodes (~2 s) and
/// the 256-node setup — every enclave id, the coders, all 256 nodes built
/// and started — is proved by `gridledger-forecast`'s library test
/// `the_largest_accepted_node_count_sets_up_without_panicking`.
/// `GRIDLEDGER_FL_NODES=256` runs this command at the largest count.
#[test]
fn fl_train_with_the_largest_accepted_node_count_does_not_panic() {
    let nodes = std::env::var("GRIDLEDGER_FL_NODES").unwrap_or_else(|_| "32".into());
    let out = Command::new(BIN)
        .args(["fl", "train", "--rounds", "1", "--train-days", "2", "--validation-days", "1"])
        .args(["--clients", "4", "--nodes", &nodes, "--chains", "1", "--hidden", "1", "--levels", "1", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "exit {:?}: {}",
        out.status.code(),
        stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
    );
}
