//! `bench_ior` at a size past the batch limits: more STs than one batch's
//! gas budget takes (about 238 half-hour STs) and more ATs than two
//! batches hold. Every ST must still settle in both rollups (issue 11: at
//! 400 STs 62 were refused by the batch gas budget, and from 601 the
//! challenge-window STs came after their agreements' expiry and none
//! settled). The challenge-window rollup posts its batches as a
//! conventional optimistic rollup does, their windows overlapping: its
//! last batch settles one window (a week) after it was posted, not a week
//! per batch before it.

use gridledger_rollup::bench::{bench_ior, IorBenchConfig};

#[test]
fn bench_ior_at_601_sts_settles_every_st_in_both_rollups() {
    let cfg = IorBenchConfig { sizes: vec![601], dispute_permille: vec![0], gas_txs: 10, ..IorBenchConfig::default() };
    let v = bench_ior(&cfg).expect("the workload records");
    let rows = v["ior_vs_challenge_window_or"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    for k in ["ior", "challenge_window_or"] {
        assert_eq!(r[k]["sts"], 601, "{k}: {r}");
        assert_eq!(r[k]["settled_sts"], 601, "{k}: {r}");
        // 601 STs do not fit two batches of the gas budget.
        assert!(r[k]["batches"].as_u64().unwrap() >= 3, "{k}: {r}");
    }
    let week = 7 * 24 * 3_600_000;
    let or_latency = r["challenge_window_or"]["latency_max_ms"].as_u64().unwrap();
    assert!(or_latency >= week, "{r}");
    // Three or more batches, windows overlapping: the last is final a week
    // (and a few block seconds) after it was recorded; settled one after
    // another it would be three weeks.
    assert!(or_latency < week + 3_600_000, "{r}");
    assert!(r["ior"]["latency_max_ms"].as_u64().unwrap() < week);
}
