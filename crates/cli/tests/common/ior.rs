//! Helpers shared by the CLI tests of `gridledger ior day --rpc`.

use gridledger_rollup::driver::{primary_config, PrimaryReader};
use std::process::{Command, Output, Stdio};
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

/// Each of the first `n` day accounts' IOR balance in the settled state of
/// the chain at `url`, beside what the recorded ATs make it: `funding`,
/// plus the payment of every agreement it sold, minus that of every one it
/// bought (each agreement key counted once: a slot traded twice or an AT
/// sent twice would show). Holds when every AT was accepted and settled
/// as agreed, which no penalty (every reputation at `rs`) implies.
pub fn balances_vs_trades(url: &str, n: usize, funding: u128) -> Vec<(String, u128, u128)> {
    use gridledger_ledger::devnet::dev_key;
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let cfg = primary_config(&rpc).unwrap();
    let reader = PrimaryReader { c: &rpc, params: &cfg.params };
    let (next, _) = reader.progress().unwrap();
    let mut want: std::collections::BTreeMap<gridledger_core::Address, i128> =
        (0..n).map(|i| (dev_key(i).address(), funding as i128)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for b in 0..next {
        let h = reader.batch_header(b).unwrap();
        for e in gridledger_rollup::driver::batch_entries(&rpc, &h).unwrap() {
            let t = e.tx.terms();
            if e.tx.is_at() && seen.insert(t.key()) {
                let pay = t.payment().unwrap().0 as i128;
                *want.get_mut(&t.buyer).unwrap() -= pay;
                *want.get_mut(&t.seller).unwrap() += pay;
            }
        }
    }
    let s = reader.settled_state().unwrap();
    want.into_iter()
        .map(|(a, w)| (a.to_string(), s.participants.get(&a).map_or(0, |p| p.balance.0), w as u128))
        .collect()
}

/// Starts `live` (an `ior day --rpc` command, its output captured), waits
/// until the chain at `url` recorded its first batch, stops the live run
/// (SIGSTOP), runs `while_stopped`, lets the live run go on (SIGCONT) and
/// waits for it to end. Returns what `while_stopped` returned and the live
/// run's output. The live run is killed if anything panics on the way.
pub fn while_live_day_stopped<T>(live: &mut Command, url: &str, while_stopped: impl FnOnce() -> T) -> (T, Output) {
    let run = live.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut run = super::Procs(vec![run]);
    wait_first_batch(url);
    let pid = run.0[0].id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let got = while_stopped();
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let first = run.0.pop().unwrap().wait_with_output().unwrap();
    (got, first)
}
