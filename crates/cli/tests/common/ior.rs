//! Helpers shared by the CLI tests of `gridledger ior day --rpc`.

use gridledger_rollup::driver::{primary_config, PrimaryReader};
use std::time::{Duration, Instant};

/// The arguments of a short `ior day --rpc` against `chain` funded by
/// `funder` over `slots` (2-s slots, 1-s windows, JSON, no report).
pub fn day_args<'a>(chain: &'a str, funder: &'a str, slots: &'a str) -> Vec<&'a str> {
    vec![
        "ior",
        "day",
        "--rpc",
        chain,
        "--from",
        funder,
        "--slots",
        slots,
        "--slot-ms",
        "2000",
        "--window-ms",
        "1000",
        "--no-report",
        "--json",
    ]
}

/// What the settled state of the chain at `url` holds: `(next batch,
/// next batch to settle, open agreements, reputations, rs)`.
pub fn after(url: &str) -> (u64, u64, usize, Vec<u32>, u32) {
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let cfg = primary_config(&rpc).unwrap();
    let reader = PrimaryReader { c: &rpc, params: &cfg.params };
    let (next, fin) = reader.progress().unwrap();
    let s = reader.settled_state().unwrap();
    (next, fin, s.agreements.len(), s.participants.values().map(|p| p.reputation).collect(), cfg.params.rs)
}

/// Waits until the IOR contracts of the chain at `url` recorded a batch.
pub fn wait_first_batch(url: &str) {
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let start = Instant::now();
    while !primary_config(&rpc)
        .is_ok_and(|cfg| PrimaryReader { c: &rpc, params: &cfg.params }.progress().is_ok_and(|(next, _)| next > 0))
    {
        assert!(start.elapsed() < Duration::from_secs(240), "no batch was recorded");
        std::thread::sleep(Duration::from_millis(5));
    }
}
