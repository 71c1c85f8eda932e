//! Validators as separate OS processes over real authenticated, encrypted
//! links on loopback (`gridledger testnet` + `gridledger node`): normal
//! commit, f crashed, the next leader killed mid-round, a killed validator
//! restarted and caught up, and a partition (SIGSTOP) healed (SIGCONT).

use gridledger_node::config::read_key;
use serde_json::json;
use std::time::Duration;

mod common;
use common::held_net::HeldNet as Net;

impl Net {
    /// Same block hash at every height up to the lowest tip among `on`.
    fn assert_agree(&self, on: &[usize]) {
        let top = self.heights(on).into_iter().min().unwrap();
        assert!(top > 0);
        for h in 1..=top {
            let hashes: Vec<_> =
                on.iter().map(|&i| self.client(i).call("gl_getBlock", json!([h])).unwrap()["hash"].clone()).collect();
            assert!(hashes.windows(2).all(|w| w[0] == w[1]), "fork at height {h}: {hashes:?}");
        }
    }

    /// Index of the validator that proposed block `h`.
    fn proposer(&self, via: usize, h: u64) -> usize {
        let b = self.client(via).call("gl_getBlock", json!([h])).unwrap();
        let pk = b["header"]["proposer"].as_str().unwrap().to_string();
        (0..self.procs.len())
            .find(|&i| {
                let k = read_key(&self.dir.path().join(format!("validator-{i}/validator.key"))).unwrap();
                k.public().to_string() == pk
            })
            .unwrap()
    }
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[test]
fn four_processes_commit_survive_crashes_and_heal_partitions() {
    let mut net = Net::new(4, &[], |_, _, _| {});
    let t = Duration::from_secs(60);
    // Normal commit on every validator.
    let a = net.submit(0, 0, 0, 30);
    net.wait_committed(&all(4), &a, t);
    net.assert_agree(&all(4));

    // The next leader is killed mid-round: the rest change view and commit.
    let tip = net.height(0);
    let next_leader = (net.proposer(0, tip) + 1) % 4;
    let via = (next_leader + 1) % 4;
    let b = net.submit(via, 1, 1, 20);
    net.kill(next_leader);
    let live: Vec<usize> = (0..4).filter(|&i| i != next_leader).collect();
    net.wait_committed(&live, &b, t);
    net.assert_agree(&live);

    // f = 1 crashed: still committing.
    let c = net.submit(live[0], 2, 2, 20);
    net.wait_committed(&live, &c, t);

    // The killed validator restarts from disk and catches up.
    net.start(next_leader);
    let d = net.submit(live[1], 3, 3, 10);
    net.wait_committed(&all(4), &[a.clone(), b, c, d].concat(), t);
    net.assert_agree(&all(4));

    // Partition one validator away (stopped), commit without it, then heal.
    net.signal(live[2], "-STOP");
    let others: Vec<usize> = (0..4).filter(|&i| i != live[2]).collect();
    let e = net.submit(others[0], 0, 0, 10);
    net.wait_committed(&others, &e, t);
    net.signal(live[2], "-CONT");
    let f = net.submit(others[1], 1, 1, 10);
    net.wait_committed(&all(4), &[e, f].concat(), t);
    net.assert_agree(&all(4));
}

#[test]
fn seven_processes_commit_with_two_crashed() {
    let mut net = Net::new(7, &[], |_, _, _| {});
    let t = Duration::from_secs(60);
    let a = net.submit(0, 0, 0, 20);
    net.wait_committed(&all(7), &a, t);
    net.kill(3);
    net.kill(6);
    let live = vec![0, 1, 2, 4, 5];
    let b = net.submit(1, 1, 1, 20);
    net.wait_committed(&live, &b, t);
    net.assert_agree(&live);
}
