//! `gridledger testnet --consensus lbft`: four validators as separate OS
//! processes run the leaderless BFT over real links on loopback. They
//! deliver submitted transfers into the same blocks; a validator killed
//! with SIGKILL while the others run more epochs than anyone keeps in
//! memory restarts, catches up from its peers' stores and holds the same
//! blocks. Progress is read from the chain (receipts, heights, block
//! hashes), never from sleeps.

use serde_json::json;
use std::time::{Duration, Instant};

mod common;
use common::held_net::HeldNet as Net;

/// Delivered epochs each validator keeps in memory in this test (the
/// default is 64): a validator down for more epochs than this is served
/// from its peers' stores.
const RETAIN: i64 = 4;

/// `testnet --consensus lbft` on held listeners, with a small in-memory
/// epoch window.
fn lbft_net(n: usize) -> Net {
    Net::new(n, &["--consensus", "lbft"], |_, dir, cfg| {
        assert!(dir.parent().unwrap().join("lbft-public.hex").exists());
        assert_eq!(cfg["consensus"].as_str(), Some("lbft"), "testnet --consensus lbft writes it");
        assert!(dir.join("lbft.key").exists());
        let lbft = cfg.get_mut("lbft").and_then(|v| v.as_table_mut()).expect("[lbft] section");
        lbft.insert("retain_epochs".into(), RETAIN.into());
    })
}

impl Net {
    /// Every validator of `on` holds the same block at every height up to
    /// the highest tip, and the same tip.
    fn assert_same_chain(&self, on: &[usize]) {
        let heights = self.heights(on);
        assert!(heights.windows(2).all(|w| w[0] == w[1]), "tips differ: {heights:?}");
        for h in 1..=heights[0] {
            let blocks: Vec<_> = on.iter().map(|&i| self.client(i).call("gl_getBlock", json!([h])).unwrap()).collect();
            let hashes: Vec<_> = blocks.iter().map(|b| b["hash"].clone()).collect();
            assert!(hashes.windows(2).all(|w| w[0] == w[1]), "fork at height {h}: {hashes:?}");
            assert_eq!(blocks[0]["seal"]["type"], "epoch", "an LBFT block: {}", blocks[0]);
        }
    }

    fn metric(&self, i: usize, name: &str) -> u64 {
        let text = self.client(i).get_text("/metrics").unwrap();
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

#[test]
fn four_lbft_processes_agree_and_a_killed_validator_catches_up_from_stores() {
    let mut net = lbft_net(4);
    let all = [0, 1, 2, 3];
    let t = Duration::from_secs(90);
    // Transfers submitted through different validators are delivered by all.
    let mut hashes = net.submit(0, 0, 1, 3);
    hashes.extend(net.submit(2, 1, 2, 2));
    net.wait_committed(&all, &hashes, t);
    net.assert_same_chain(&all);
    let before = net.height(0);
    assert!(before >= 1);

    // SIGKILL validator 3; the other three (n − f) keep delivering, one
    // epoch (at least) per round, well beyond what peers keep in memory.
    net.kill(3);
    let live = [0, 1, 2];
    let rounds = 3 * RETAIN as usize;
    let mut later = Vec::new();
    for r in 0..rounds {
        let h = net.submit(r % 3, r % 3, (r + 1) % 3, 1);
        net.wait_committed(&live, &h, t);
        later.extend(h);
    }
    assert!(net.height(0) >= before + rounds as u64, "one block per round at least");

    // Restarted from its store, it catches up (from the peers' stores:
    // the epochs it missed left their memory) and holds the same chain.
    net.start(3);
    net.wait_committed(&[3], &later, t);
    let fresh = net.submit(3, 3, 0, 2);
    net.wait_committed(&all, &fresh, t);
    let t0 = Instant::now();
    while net.heights(&all).windows(2).any(|w| w[0] != w[1]) {
        assert!(t0.elapsed() < t, "tips differ: {:?}", net.heights(&all));
        std::thread::sleep(Duration::from_millis(20));
    }
    net.assert_same_chain(&all);
    let served: u64 = live.iter().map(|&i| net.metric(i, "gridledger_pbft_catch_up_from_store_total")).sum();
    assert!(served > 0, "catch-up beyond the in-memory window came from the stores");
}
