//! PBFT validators in one process over the in-process mesh: blocks commit
//! with quorum certificates and agree everywhere; a crashed leader is
//! replaced by a view change; a cut-off validator catches up; a restarted
//! validator resumes from disk.

use gridledger_consensus::pbft::{QuorumCert, ValidatorSet};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{ChainConfig, Seal};
use gridledger_node::config::write_key;
use gridledger_node::validator::{LocalMesh, PbftSettings};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Cluster {
    dirs: Vec<PathBuf>,
    mesh: LocalMesh,
    nodes: Vec<Option<NodeHandle>>,
    _root: tempfile::TempDir,
}

fn config(dir: &Path, n: usize, i: usize) -> NodeConfig {
    let validators: Vec<_> = (0..n).map(dev_validator).collect();
    let genesis = dev_genesis(1, 8, Amount(1_000_000_000), &validators);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    write_key(&dir.join("validator.key"), &validators[i]).unwrap();
    NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: 20,
        chain: ChainConfig::default(),
    }
}

fn settings() -> PbftSettings {
    PbftSettings { base_timeout_ms: 300, ..PbftSettings::default() }
}

impl Cluster {
    fn start(n: usize) -> Self {
        let root = tempfile::tempdir().unwrap();
        let (mesh, inboxes) = LocalMesh::new(n);
        let dirs: Vec<PathBuf> = (0..n).map(|i| root.path().join(format!("v{i}"))).collect();
        let nodes = inboxes
            .into_iter()
            .enumerate()
            .map(|(i, inbox)| {
                let node = Node::open(&config(&dirs[i], n, i), gridledger_contracts::default_registry()).unwrap();
                Some(
                    node.spawn_validator(
                        Box::new(mesh.transport(i as u32)),
                        inbox,
                        mesh.inbox(i as u32).unwrap(),
                        settings(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        Cluster { dirs, mesh, nodes, _root: root }
    }

    fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().unwrap()
    }

    fn height(&self, i: usize) -> u64 {
        self.node(i).shared.chain().tip().height
    }

    fn submit(&self, via: usize, from: usize, nonce: u64, count: u64) -> Vec<Hash32> {
        let shared = &self.node(via).shared;
        let txs: Vec<_> = (0..count)
            .map(|j| {
                let tx = transfer(&dev_key(from), 1, nonce + j, dev_key(7).address(), Amount(1), Amount(1));
                shared.rules.check(&tx.to_bytes())
            })
            .collect();
        shared.admit(txs).into_iter().map(|r| r.unwrap()).collect()
    }

    /// Waits until every running node in `which` has all `hashes` committed.
    fn wait_committed(&self, which: &[usize], hashes: &[Hash32], within: Duration) {
        let t = Instant::now();
        loop {
            let done = which.iter().all(|&i| {
                let c = self.node(i).shared.chain();
                hashes.iter().all(|h| c.receipt(h).ok().flatten().is_some())
            });
            if done {
                return;
            }
            assert!(
                t.elapsed() < within,
                "not committed in time; heights {:?}",
                which.iter().map(|&i| self.height(i)).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every pair of nodes in `which` holds identical blocks up to the
    /// lowest of their heights, each sealed by a valid quorum certificate.
    fn assert_agree(&self, which: &[usize]) {
        let set = {
            let c = self.node(which[0]).shared.chain();
            ValidatorSet::new(c.genesis().hash(), c.genesis().validators.clone()).unwrap()
        };
        let top = which.iter().map(|&i| self.height(i)).min().unwrap();
        for h in 1..=top {
            let blocks: Vec<_> = which.iter().map(|&i| self.node(i).shared.store.block(h).unwrap().unwrap()).collect();
            for b in &blocks[1..] {
                assert_eq!(b.hash(), blocks[0].hash(), "fork at height {h}");
            }
            let Seal::Quorum { view, signatures } = &blocks[0].seal else { panic!("block {h} not sealed by a quorum") };
            assert!(signatures.len() >= set.quorum());
            let cert = QuorumCert { view: *view, height: h, block: blocks[0].hash(), signatures: signatures.clone() };
            cert.verify(&set).unwrap();
        }
    }

    fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.shutdown();
        }
    }

    fn restart(&mut self, i: usize) {
        let n = self.nodes.len();
        let inbox = self.mesh.reconnect(i as u32).unwrap();
        let node = Node::open(&config(&self.dirs[i], n, i), gridledger_contracts::default_registry()).unwrap();
        self.nodes[i] = Some(
            node.spawn_validator(
                Box::new(self.mesh.transport(i as u32)),
                inbox,
                self.mesh.inbox(i as u32).unwrap(),
                settings(),
            )
            .unwrap(),
        );
    }
}

#[test]
fn four_validators_commit_and_agree() {
    let c = Cluster::start(4);
    let mut hashes = c.submit(0, 0, 0, 40);
    hashes.extend(c.submit(2, 1, 0, 40));
    c.wait_committed(&[0, 1, 2, 3], &hashes, Duration::from_secs(20));
    c.assert_agree(&[0, 1, 2, 3]);
    // Every validator verified and executed the blocks itself: same state.
    let roots: Vec<_> = (0..4).map(|i| c.node(i).shared.chain().state().root()).collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn crashed_leader_is_replaced_and_lagging_validator_catches_up() {
    let mut c = Cluster::start(4);
    let first = c.submit(1, 0, 0, 10);
    c.wait_committed(&[0, 1, 2, 3], &first, Duration::from_secs(20));
    // Crash the leader of the next height: the rest must change view.
    let next = c.height(1) + 1;
    let set = {
        let ch = c.node(1).shared.chain();
        ValidatorSet::new(ch.genesis().hash(), ch.genesis().validators.clone()).unwrap()
    };
    let leader = set.leader(1, next) as usize;
    c.mesh.set_down(leader as u32, true);
    c.stop(leader);
    let others: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    let second = c.submit(others[0], 2, 0, 10);
    c.wait_committed(&others, &second, Duration::from_secs(30));
    c.assert_agree(&others);
    // The crashed validator restarts from disk and catches up.
    c.mesh.set_down(leader as u32, false);
    c.restart(leader);
    let third = c.submit(others[1], 3, 0, 10);
    c.wait_committed(&[0, 1, 2, 3], &third, Duration::from_secs(30));
    c.assert_agree(&[0, 1, 2, 3]);
}
