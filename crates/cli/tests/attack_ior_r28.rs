//! Attack round 28 on the improved optimistic rollup (issue 11) through the
//! CLI: the settlement statements (`gridledger ior day --statements`) of a
//! day on a real node (`--rpc`) that was killed and resumed.
//!
//! Finding [1] (medium: an operator feature silently missing): the
//! resuming run of `ior day --rpc` settles what the stopped run left and
//! exits successfully, but writes no settlement statements (nor the HTML
//! report): `day` returns right after `print_resumed`, and the resume's
//! report (`ResumeReport`) holds no per-participant figures to write them
//! from. So the statements of exactly the days that needed recovery, whose
//! coin moved on chain, never exist; the operator's `--statements` file is
//! not created (or keeps a previous day's rows).
//!
//! Fixed: the resume writes the whole day's statements from the chain (its
//! settled batches' entries and verdicts, the funding queued and the
//! balances now); the HTML report is still written only by an
//! uninterrupted run.
//!
//! Held up (control): the same day run to its end without a kill writes
//! one statement row per participant, each closing balance the chain's.

mod common;

use common::ior::*;
use common::*;
use std::process::Stdio;
use std::time::Duration;

/// Every participant's row of `statements` holds its balance on the chain
/// at `url` as the closing balance.
fn statements_match_chain(url: &str, statements: &std::path::Path) {
    let text = std::fs::read_to_string(statements)
        .unwrap_or_else(|e| panic!("no settlement statements after the day ({e}); the chain moved coin"));
    let rows = balances_vs_trades(url, 15, 50_000_000);
    assert_eq!(text.lines().count(), 1 + rows.len(), "{text}");
    for (addr, have, _) in &rows {
        let row = text.lines().find(|l| l.contains(addr.as_str())).unwrap_or_else(|| panic!("no row of {addr}"));
        let balance_end: u128 = row.split(',').nth(9).unwrap().parse().unwrap();
        assert_eq!(balance_end, *have, "{addr}: the statement's closing balance is not the chain's");
    }
}

#[test]
fn a_day_on_a_node_writes_statements_matching_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let statements = dir.path().join("statements.csv");
    let s = d(&statements);
    let mut args = day_args(&c, &f, "24..27");
    args.extend(["--statements", s.as_str()]);
    let o = gl(&args);
    assert!(o.status.success(), "the day: {} {}", stdout(&o), stderr(&o));
    statements_match_chain(&url, &statements);
}

#[test]
fn a_resumed_day_writes_its_settlement_statements() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let statements = dir.path().join("statements.csv");
    let s = d(&statements);
    let mut args = day_args(&c, &f, "24..27");
    args.extend(["--statements", s.as_str()]);
    let mut run = bin().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_first_batch(&url);
    std::thread::sleep(Duration::from_millis(500));
    let ended = run.try_wait().unwrap();
    let _ = run.kill();
    let _ = run.wait();
    assert!(ended.is_none(), "the day ended before the kill: nothing to resume");
    assert!(!statements.exists(), "the killed run wrote statements before the day ended");
    let o = gl(&args);
    assert!(o.status.success(), "the resume: {} {}", stdout(&o), stderr(&o));
    let (next, fin, open, _, _) = after(&url);
    assert_eq!((fin, open), (next, 0), "the resume settled everything");
    statements_match_chain(&url, &statements);
}

/// Attack r28 (notes): `--days` above 365 repeated day numbers (report
/// files overwritten, the statements' `day` column ambiguous); refused
/// before anything runs.
#[test]
fn more_than_a_year_of_days_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = gl(&["ior", "day", "--no-report", "--days", "366", "--report-dir", &d(dir.path())]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("at most 365"), "{}", stderr(&o));
}
