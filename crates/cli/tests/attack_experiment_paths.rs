//! Careless paths given to `gridledger experiment`: a mistyped
//! `--results-dir` must not overwrite the report with an empty one.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

#[test]
fn attack_report_from_a_missing_results_dir_is_refused_and_keeps_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("results.md");
    std::fs::write(&report, "the real report\n").unwrap();
    let out = Command::new(BIN)
        .args(["experiment", "report", "--results-dir"])
        .arg(dir.path().join("reslts"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a missing results directory is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("reslts"), "names the path");
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "the real report\n", "report untouched");
}

#[test]
fn attack_run_into_a_results_dir_that_is_a_file_fails_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results");
    std::fs::write(&file, "not a directory").unwrap();
    let out = Command::new(BIN)
        .args(["experiment", "run", "ior-fig-3-7", "--quick", "--no-report", "--results-dir"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("running ior-fig-3-7"), "refused before running anything: {err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

/// The chart links in the report resolve from where the report is written,
/// also when `--report` climbs out of the working directory.
#[test]
fn attack_report_outside_the_working_directory_links_charts_that_exist() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    let results = work.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results");
    for f in ["ior-fig-3-7.json", "ior-fig-3-7.svg"] {
        std::fs::copy(committed.join(f), results.join(f)).unwrap();
    }
    let out = Command::new(BIN)
        .current_dir(&work)
        .args(["experiment", "report", "--results-dir", "results", "--report", "../out/results.md"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(root.path().join("out/results.md")).unwrap();
    let link = md.split("![ior-fig-3-7 chart](").nth(1).and_then(|s| s.split(')').next()).unwrap();
    assert!(!link.starts_with('/'), "a relative link, no machine path: {link}");
    assert!(root.path().join("out").join(link).is_file(), "the link {link} resolves from the report");
}

/// A corrupted result is refused with its path and cause, said once.
#[test]
fn attack_corrupted_result_is_refused_naming_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ior-fig-3-5.json"), "{\"id\": 5").unwrap();
    let out = Command::new(BIN)
        .args(["experiment", "show", "ior-fig-3-5", "--results-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ior-fig-3-5.json"), "{err}");
    assert_eq!(err.matches("invalid type").count(), 1, "the cause once: {err}");
}
