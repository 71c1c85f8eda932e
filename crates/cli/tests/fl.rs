//! `gridledger fl train` end to end at tiny sizes: per-round losses and
//! timings as JSON, the loss curve as SVG, the progress bar on a terminal
//! only, and refused settings that write nothing.

use serde_json::Value;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");
/// A TCN of 1,057 parameters on two training weeks: seconds per round.
const SMALL: &[&str] = &[
    "fl",
    "train",
    "--clients",
    "6",
    "--chains",
    "2",
    "--nodes",
    "4",
    "--rounds",
    "3",
    "--hidden",
    "8",
    "--levels",
    "3",
    "--learning-rate",
    "0.05",
    "--train-days",
    "14",
];

fn gridledger(extra: &[&str]) -> std::process::Output {
    Command::new(BIN).args(SMALL).args(extra).output().expect("run gridledger")
}

#[test]
fn fl_train_reports_every_round_and_writes_the_loss_curve() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("loss.svg");
    let out = gridledger(&["--byzantine", "0.3", "--json", "--svg", svg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "--json keeps stderr quiet: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["command"], "fl train");
    assert_eq!((v["byzantine_clients"].as_u64(), v["byzantine_nodes_per_chain"].as_u64()), (Some(1), Some(1)));
    assert_eq!(v["aggregation"], "trimmed_mean");
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    let f = |x: &Value| x.as_f64().unwrap();
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r["round"].as_u64(), Some(i as u64 + 1));
        for k in ["train_mse", "val_mae", "val_rmse", "train_s_per_client", "protocol_s", "eval_s"] {
            assert!(f(&r[k]).is_finite() && f(&r[k]) >= 0.0, "round {i}: {k} = {}", r[k]);
        }
        assert!(f(&r["val_mae"]) <= f(&r["val_rmse"]) + 1e-6);
        // The withholding view-0 leader of each chain was replaced.
        assert_eq!(r["committed_view"], serde_json::json!([1, 1]));
    }
    assert!(f(&rounds[2]["val_rmse"]) < f(&v["initial"]["val_rmse"]), "the validation error fell: {v}");
    let curve = std::fs::read_to_string(&svg).unwrap();
    assert!(curve.starts_with("<svg") && curve.trim_end().ends_with("</svg>"));
    assert_eq!(curve.matches("<polyline").count(), 3, "training MSE, validation MAE and RMSE");
    // Three training points, four validation points (round 0 too).
    let points: Vec<usize> =
        curve.split("points=\"").skip(1).map(|p| p.split('"').next().unwrap().split_whitespace().count()).collect();
    assert_eq!(points, vec![3, 4, 4]);
}

#[test]
fn fl_train_refuses_settings_that_cannot_work_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("loss.svg");
    let missing = dir.path().join("no/such/dir/loss.svg");
    for (extra, why) in [
        (vec!["--byzantine", "0.5"], "--byzantine"),
        (vec!["--learning-rate", "0"], "--learning-rate"),
        (vec!["--svg", missing.to_str().unwrap()], "not found"),
    ] {
        let mut args = extra.clone();
        if why != "not found" {
            args.extend(["--svg", svg.to_str().unwrap()]);
        }
        let out = gridledger(&args);
        assert!(!out.status.success(), "{extra:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{extra:?}: {err}");
        assert!(out.stdout.is_empty(), "{extra:?}: nothing printed before refusing");
    }
    assert!(!svg.exists() && !missing.exists());
    // Three nodes cannot tolerate a fault (K ≥ 3f + 1 with f ≥ 1): refused by clap.
    let out = Command::new(BIN).args(["fl", "train", "--nodes", "3"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--nodes"));
}

/// On a terminal each round is drawn on a progress bar (stderr); under
/// `--json` nothing but the JSON document reaches the terminal.
#[test]
fn fl_train_draws_its_rounds_on_a_terminal_only() {
    let Some(script) = ["/usr/bin/script", "/bin/script"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        eprintln!("skipped: no `script` to run the command on a pseudo-terminal");
        return;
    };
    let tty = |extra: &str| {
        let cmd = format!("{BIN} {} --rounds 2 {extra}", SMALL.join(" ").replace("--rounds 3", ""));
        let o = Command::new(script).args(["-qec", &cmd, "/dev/null"]).output().expect("run script");
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = tty("");
    assert!(shown.contains("fl train") && shown.contains("round 1") && shown.contains("/2"), "{shown}");
    let quiet = tty("--json");
    assert!(!quiet.contains("round 1"), "progress drawn under --json: {quiet}");
}
