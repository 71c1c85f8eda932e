//! `bench pbft --processes --timeline`: reads the validators' event files
//! (`gridledger_node::timeline`) and condenses the latency batch into a
//! timeline: per height, when it was proposed (and with how many
//! transactions), when the pre-prepare reached the other validators, when
//! they had validated it, prepared (synced) it and committed it; per
//! validator, how its gossip verification kept up.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// One validator's events, parsed.
fn read(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn ms(t_us: u64, t0: u64) -> f64 {
    ((t_us as f64 - t0 as f64) / 100.0).round() / 10.0
}

/// Minimum, median and maximum of `v` (ms), or null.
fn spread(mut v: Vec<f64>) -> Value {
    if v.is_empty() {
        return Value::Null;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    json!({ "min": v[0], "median": v[v.len() / 2], "max": v[v.len() - 1], "n": v.len() })
}

fn u(e: &Value, k: &str) -> u64 {
    e[k].as_u64().unwrap_or(0)
}

/// The timeline of events between `t0` and `t1` (µs since the epoch) in
/// the validators' files (index = validator).
pub fn summarize(files: &[std::path::PathBuf], t0: u64, t1: u64) -> Value {
    let all: Vec<Vec<Value>> = files.iter().map(|f| read(f)).collect();
    let window = |e: &&Value| (t0..=t1).contains(&u(e, "t_us"));
    // Height → (event kind → per-validator times), and proposal facts.
    let mut heights: BTreeMap<u64, BTreeMap<&'static str, Vec<f64>>> = BTreeMap::new();
    let mut proposals: BTreeMap<u64, Value> = BTreeMap::new();
    let mut validate_us: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    let mut committed_txs: BTreeMap<u64, u64> = BTreeMap::new();
    let mut timeouts = Vec::new();
    let mut gossip = Vec::new();
    for (i, evs) in all.iter().enumerate() {
        let (mut frames, mut checked, mut admitted, mut verify_us, mut wait_max, mut last) = (0, 0, 0, 0, 0, 0.0);
        let mut admitted_rpc = 0;
        let mut sent = 0;
        // First event of each kind per height on this validator.
        let mut first: BTreeMap<(u64, &'static str), f64> = BTreeMap::new();
        for e in evs.iter().filter(window) {
            let t = ms(u(e, "t_us"), t0);
            let h = u(e, "h");
            let kind: Option<&'static str> = match e["ev"].as_str().unwrap_or("") {
                "propose" => {
                    proposals.insert(
                        h,
                        json!({"leader": i, "view": u(e, "v"), "txs": u(e, "txs"), "mempool": u(e, "mempool"), "at_ms": t, "build_us": u(e, "build_us")}),
                    );
                    Some("proposed")
                }
                "pre_prepare" => Some("pre_prepare"),
                "validated" => {
                    validate_us.entry(h).or_default().push(u(e, "us") as f64 / 1e3);
                    Some("validated")
                }
                "persist" if e["prepared"].as_bool() == Some(true) && e["sync"].as_bool() == Some(true) => {
                    Some("prepared_synced")
                }
                "commit" => {
                    committed_txs.insert(h, u(e, "txs"));
                    Some("committed")
                }
                "timeout" => {
                    timeouts.push(json!({"validator": i, "h": h, "v": u(e, "v"), "at_ms": t}));
                    None
                }
                "gossip_dequeued" => {
                    wait_max = wait_max.max(u(e, "wait_us"));
                    None
                }
                "gossip_verified" => {
                    frames += 1;
                    checked += u(e, "checked");
                    admitted += u(e, "admitted");
                    verify_us += u(e, "us");
                    last = t;
                    None
                }
                "gossip_out" => {
                    sent += u(e, "n");
                    None
                }
                "admit" => {
                    admitted_rpc += u(e, "n");
                    None
                }
                _ => None,
            };
            if let Some(k) = kind {
                first.entry((h, k)).or_insert(t);
            }
        }
        for ((h, k), t) in first {
            heights.entry(h).or_default().entry(k).or_default().push(t);
        }
        gossip.push(json!({
            "validator": i,
            "from_clients": admitted_rpc,
            "gossiped_out": sent,
            "frames_verified": frames,
            "signatures_checked": checked,
            "admitted": admitted,
            "verify_ms_total": verify_us as f64 / 1e3,
            "queue_wait_ms_max": wait_max as f64 / 1e3,
            "last_verified_ms": last,
        }));
    }
    let rows: Vec<Value> = heights
        .into_iter()
        .map(|(h, kinds)| {
            let mut row = Map::new();
            row.insert("h".into(), json!(h));
            if let Some(p) = proposals.get(&h) {
                row.insert("proposal".into(), p.clone());
            }
            if let Some(n) = committed_txs.get(&h) {
                row.insert("txs".into(), json!(n));
            }
            for (k, v) in kinds {
                row.insert(format!("{k}_ms"), spread(v));
            }
            if let Some(v) = validate_us.remove(&h) {
                row.insert("validate_ms".into(), spread(v));
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "t0": "batch submission start; times in ms after it; *_ms = {min, median, max, n} over validators",
        "batch_end_ms": ms(t1, t0),
        "heights": rows,
        "timeouts": timeouts,
        "gossip": gossip,
    })
}

/// CPU time (ms) a process's threads have used so far, by thread name
/// (`/proc/<pid>/task/*/stat`; empty where there is no `/proc`). Unnamed
/// threads carry the process name: in a validator those are rayon's
/// workers (signature checks of gossip and of proposals) and the idle main
/// thread.
pub fn thread_cpu_ms(pid: u32) -> BTreeMap<String, f64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (name) state ppid ..." — the name may hold spaces; fields
        // after it: utime and stime are the 12th and 13th.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let cpu: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
        *out.entry(name).or_insert(0.0) += cpu * 1e3 / ticks;
    }
    out
}

/// Sum over processes of `thread_cpu_ms`.
pub fn cpu_snapshot(pids: &[u32]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for &p in pids {
        for (k, v) in thread_cpu_ms(p) {
            *out.entry(k).or_insert(0.0) += v;
        }
    }
    out
}

/// CPU µs per transaction per validator, by thread, between two snapshots
/// of `validators` processes that committed `txs` transactions.
pub fn cpu_per_tx(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    validators: usize,
    txs: usize,
) -> Value {
    let per = (validators.max(1) * txs.max(1)) as f64;
    let mut m = Map::new();
    let mut total = 0.0;
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        total += d;
        m.insert(k.clone(), json!((d * 1e3 / per).round()));
    }
    m.insert("total".into(), json!((total * 1e3 / per).round()));
    Value::Object(m)
}

/// Share of the machine's cores the validator processes kept busy between
/// two snapshots `secs` apart.
pub fn utilisation(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, secs: f64) -> Value {
    let used_ms: f64 = after.iter().map(|(k, v)| v - before.get(k).copied().unwrap_or(0.0)).sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    json!({
        "validators_cpu_s": used_ms / 1e3,
        "wall_s": secs,
        "cores": cores,
        "share_of_all_cores": ((used_ms / 1e3 / (secs * cores)) * 1e3).round() / 1e3,
    })
}

/// The 1-minute load average, if known.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}
