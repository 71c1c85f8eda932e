//! Four in-process LBFT validators (`consensus = "lbft"`), each store on a
//! fault-injecting disk, links in memory: shared by `lbft_store_faults`
//! and `attack_lbft_r1`.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_validator};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{ChainConfig, SubmitError};
use gridledger_node::config::{write_key, ConsensusKind};
use gridledger_node::lbft::{deal_keys, LbftSettings};
use gridledger_node::validator::{Input, Transport};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// The validators of every network here.
pub const N: usize = 4;

/// In-memory links: what validator `me` sends lands in the others'
/// inboxes; `sent` counts its messages.
pub struct Links {
    me: u32,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
    sent: Arc<AtomicU64>,
}

impl Transport for Links {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        self.sent.fetch_add(1, Relaxed);
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

/// A running validator: its node, its disk and its count of sent messages.
pub struct Validator {
    pub node: NodeHandle,
    pub disk: Arc<SimDisk>,
    pub sent: Arc<AtomicU64>,
}

/// The network's shared parts: its directory (genesis, keys, dealt
/// threshold shares) and one inbox slot per validator. Every inbox exists
/// before any validator starts, so nothing sent to a validator not yet
/// started is lost; a restarted validator gets a fresh inbox in its slot.
pub struct Net {
    dir: PathBuf,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
    first: Vec<Mutex<Option<Receiver<Input>>>>,
}

impl Net {
    pub fn new(dir: &Path) -> Self {
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
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..N).map(|_| channel::<Input>()).unzip();
        Self {
            dir: dir.to_path_buf(),
            inboxes: Arc::new(senders.into_iter().map(Mutex::new).collect()),
            first: receivers.into_iter().map(|r| Mutex::new(Some(r))).collect(),
        }
    }

    /// Delivers `bytes` to validator `to` as if validator `from` had sent
    /// them (a Byzantine peer speaking in `from`'s place).
    pub fn inject(&self, to: usize, from: u32, bytes: Vec<u8>) {
        let _ = self.inboxes[to].lock().unwrap().send(Input::Peer { from, bytes });
    }

    /// Drops what was sent to validator `i` while it was never started (a
    /// validator that was down gets nothing it missed from its links).
    pub fn drop_queued(&self, i: usize) {
        if let Some(inbox) = self.first[i].lock().unwrap().as_ref() {
            while inbox.try_recv().is_ok() {}
        }
    }

    /// The inbox of validator `i` if it was never started: a test reads
    /// what the others send it (speaking as a Byzantine validator `i`).
    pub fn take_inbox(&self, i: usize) -> Option<Receiver<Input>> {
        self.first[i].lock().unwrap().take()
    }

    /// Starts validator `i` on `disk`.
    pub fn start(&self, i: usize, disk: Arc<SimDisk>) -> Validator {
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
        let inbox = match self.first[i].lock().unwrap().take() {
            Some(inbox) => inbox,
            None => {
                let (tx, inbox) = channel::<Input>();
                *self.inboxes[i].lock().unwrap() = tx;
                inbox
            }
        };
        let tx = self.inboxes[i].lock().unwrap().clone();
        let d = disk.clone();
        let store = Store::open_backend(move || d.backend()).unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let links = Links { me: i as u32, inboxes: self.inboxes.clone(), sent: sent.clone() };
        let node = Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store))
            .unwrap()
            .spawn_lbft(Box::new(links), inbox, tx)
            .unwrap();
        Validator { node, disk, sent }
    }
}

/// Admits `count` transfers of dev account `from` (nonces from `nonce`) at `v`.
pub fn submit(v: &Validator, from: usize, nonce: u64, count: u64) -> Vec<Result<Hash32, SubmitError>> {
    super::submit(&v.node, from, nonce, count)
}

/// Whether `h` is committed at `v`.
pub fn committed(v: &Validator, h: &Hash32) -> bool {
    super::committed(&v.node, h)
}

/// Whether `cond` holds within `secs` seconds.
pub fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while !cond() {
        if t.elapsed() > std::time::Duration::from_secs(secs) {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}
