//! Attack round 1 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators on fault-injecting disks, links in memory.
//!
//! Run the findings with
//! `cargo test -p gridledger-node --test attack_lbft_r1 -- --ignored`.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::ChainConfig;
use gridledger_node::config::{write_key, ConsensusKind};
use gridledger_node::lbft::{deal_keys, LbftSettings};
use gridledger_node::validator::{Input, Transport};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use rand::SeedableRng;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N: usize = 4;

/// In-memory links: what validator `me` sends lands in the others' inboxes.
struct Links {
    me: u32,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
}

impl Transport for Links {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        if let Some(tx) = self.inboxes.get(to as usize) {
            let _ = tx.lock().unwrap().send(Input::Peer { from: self.me, bytes });
        }
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        for to in (0..N as u32).filter(|&i| i != self.me) {
            self.send(to, bytes.clone());
        }
    }
}

struct Validator {
    node: NodeHandle,
    disk: Arc<SimDisk>,
}

/// The network's shared parts: its directory, keys and inboxes (a
/// restarted validator gets a fresh inbox in its slot).
struct Net {
    dir: std::path::PathBuf,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
}

impl Net {
    fn new(dir: &std::path::Path) -> Self {
        let keys: Vec<_> = (0..N).map(dev_validator).collect();
        let genesis = dev_genesis(1, 4, Amount(1_000_000_000), &keys);
        std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
        let dealt = deal_keys(N, &mut rand_chacha::ChaCha20Rng::seed_from_u64(13)).unwrap();
        std::fs::write(dir.join("lbft-public.hex"), &dealt.public).unwrap();
        for (i, key) in keys.iter().enumerate() {
            let home = dir.join(format!("validator-{i}"));
            std::fs::create_dir_all(&home).unwrap();
            write_key(&home.join("validator.key"), key).unwrap();
            std::fs::write(home.join("lbft.key"), &dealt.shares[i]).unwrap();
        }
        let inboxes = Arc::new((0..N).map(|_| Mutex::new(channel::<Input>().0)).collect::<Vec<_>>());
        Self { dir: dir.to_path_buf(), inboxes }
    }

    /// Starts validator `i` on `disk`.
    fn start(&self, i: usize, disk: Arc<SimDisk>) -> Validator {
        let home = self.dir.join(format!("validator-{i}"));
        let cfg = NodeConfig {
            data_dir: home.join("data"),
            genesis: self.dir.join("genesis.toml"),
            validator_key: home.join("validator.key"),
            rpc_listen: "127.0.0.1:0".into(),
            block_interval_ms: 20,
            chain: ChainConfig::default(),
            network: None,
            pbft: Default::default(),
            consensus: ConsensusKind::Lbft,
            lbft: LbftSettings {
                key_shares: home.join("lbft.key"),
                public_keys: self.dir.join("lbft-public.hex"),
                tick_ms: 100,
                ..LbftSettings::default()
            },
        };
        let (tx, inbox) = channel::<Input>();
        *self.inboxes[i].lock().unwrap() = tx.clone();
        let d = disk.clone();
        let store = Store::open_backend(move || d.backend()).unwrap();
        let links = Links { me: i as u32, inboxes: self.inboxes.clone() };
        let node = Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store))
            .unwrap()
            .spawn_lbft(Box::new(links), inbox, tx)
            .unwrap();
        Validator { node, disk }
    }
}

fn submit(v: &Validator, from: usize, nonce: u64, count: u64) -> Vec<Hash32> {
    let s = &v.node.shared;
    let txs = (0..count)
        .map(|j| {
            s.rules
                .check(&transfer(&dev_key(from), 1, nonce + j, dev_key(3).address(), Amount(1), Amount(1)).to_bytes())
        })
        .collect();
    s.admit(txs).into_iter().map(|r| r.expect("admitted")).collect()
}

fn committed(v: &Validator, h: &Hash32) -> bool {
    v.node.shared.store.tx_location(h).ok().flatten().is_some()
}

/// Whether `cond` holds within `secs` seconds.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while !cond() {
        if t.elapsed() > Duration::from_secs(secs) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Commits a few transfers, stops the validators in `restart` (their
/// durable images kept, as after a power loss) while the others keep
/// running, and starts them again; then reports whether new transfers
/// still commit everywhere.
fn live_after_restarting(restart: &[usize]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let mut vs: Vec<Option<Validator>> = (0..N).map(|i| Some(net.start(i, SimDisk::new()))).collect();
    let first = submit(vs[0].as_ref().unwrap(), 0, 0, 3);
    assert!(
        within(60, || vs.iter().flatten().all(|v| first.iter().all(|h| committed(v, h)))),
        "first transfers commit"
    );
    let mut images = Vec::new();
    for &i in restart {
        let v = vs[i].take().expect("running");
        let d = v.disk.clone();
        v.node.shutdown();
        images.push((i, d.snapshot()));
    }
    for (i, image) in images {
        vs[i] = Some(net.start(i, image));
    }
    let vs: Vec<Validator> = vs.into_iter().flatten().collect();
    let next = submit(&vs[0], 0, 3, 3);
    let live = within(20, || vs.iter().all(|v| next.iter().all(|h| committed(v, h))));
    for v in vs {
        v.node.shutdown();
    }
    live
}

/// [1] (node) Every validator of a 4-validator LBFT network restarts with
/// its records intact (a site power loss, an upgrade): each restores its
/// `VotedIn` bound — the epoch after its last delivered one — and only
/// observes that epoch, so nobody echoes another's batch or votes, and no
/// transfer commits again, ever.
#[test]
fn lbft_network_commits_after_every_validator_restarts() {
    assert!(live_after_restarting(&[0, 1, 2, 3]), "no transfer committed within 20 s of restarting all validators");
}

/// [1] (node) Two of four validators restart (f + 1 at once, records
/// intact): both are mute in the same epoch and the network never
/// commits again, although all four are up and correct.
#[test]
fn lbft_network_commits_after_two_validators_restart() {
    assert!(live_after_restarting(&[0, 1]), "no transfer committed within 20 s of restarting validators 0 and 1");
}

/// Control: restarting one validator (f) keeps the network live.
#[test]
fn lbft_network_commits_after_one_validator_restarts() {
    assert!(live_after_restarting(&[1]), "one restart: live");
}
