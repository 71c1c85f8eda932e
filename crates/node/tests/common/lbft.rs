//! Four in-process LBFT validators (`consensus = "lbft"`), each store on a
//! fault-injecting disk, links in memory: shared by `lbft_store_faults`,
//! the `attack_lbft_r*` tests and the LBFT scenarios of `mutants`; with
//! the Byzantine puppets of attack r5 [1] ([`copied_next_nonce`]) and
//! attack r6 [1] ([`early_next_nonce`]).

use gridledger_consensus::lbft::{Config, DeliveredEpoch, Durable, Message, Replica, Target};
use gridledger_core::codec::{decode, encode};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::{ChainConfig, Seal, SubmitError, Transaction, TxKind};
use gridledger_node::config::{write_key, ConsensusKind};
use gridledger_node::lbft::{deal_keys, epoch_key, load_crypto, LbftSettings, WIRE_LBFT};
use gridledger_node::validator::{Input, Transport};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The validators of every network here.
pub const N: usize = 4;

/// In-memory links: what validator `me` sends lands in the others'
/// inboxes; `sent` counts its messages. Once its disk crashed (the
/// process died at that sync) it sends nothing more.
pub struct Links {
    me: u32,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
    sent: Arc<AtomicU64>,
    disk: Arc<SimDisk>,
}

impl Transport for Links {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        if self.disk.crashed() {
            return;
        }
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
        self.start_with(i, disk, |_| {})
    }

    /// Starts validator `i` on `disk` with its `[lbft]` settings changed by `tweak`.
    pub fn start_with(&self, i: usize, disk: Arc<SimDisk>, tweak: impl FnOnce(&mut LbftSettings)) -> Validator {
        let home = self.dir.join(format!("validator-{i}"));
        let mut cfg = NodeConfig {
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
        tweak(&mut cfg.lbft);
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
        let links = Links { me: i as u32, inboxes: self.inboxes.clone(), sent: sent.clone(), disk: disk.clone() };
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

// ---- A Byzantine validator copying a client's next nonce (attack r5 [1]) ----------

/// A transfer of one unit from dev account `from` with gas limit `gas`.
pub fn tx(from: usize, nonce: u64, gas: u64) -> Vec<u8> {
    Transaction {
        chain_id: 1,
        sender: dev_key(from).public(),
        nonce,
        gas_limit: gas,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: dev_key(3).address(), amount: Amount(1) },
    }
    .sign(&dev_key(from))
    .to_bytes()
}

/// Admits `txs` at `v` in one call (so they reach its proposal queue
/// together and are cut into one batch).
pub fn admit(v: &Validator, txs: &[Vec<u8>]) -> Vec<Result<Hash32, SubmitError>> {
    let s = &v.node.shared;
    s.admit(txs.iter().map(|t| s.rules.check(t)).collect())
}

pub fn nonce_of(v: &Validator, from: usize) -> u64 {
    v.node.shared.chain().account(&dev_key(from).address()).nonce
}

pub type Msg = Message<gridledger_consensus::lbft::NodeShare, gridledger_consensus::lbft::NodeSig>;

pub fn wire(m: &Msg) -> Vec<u8> {
    let mut bytes = vec![WIRE_LBFT];
    bytes.extend(encode(m));
    bytes
}

/// Validator 0's replica configuration and threshold keys in the network
/// under `dir`, as the node would run it: what a puppet drives in its
/// place.
fn validator0_replica(dir: &std::path::Path) -> (Config, gridledger_consensus::lbft::NodeCrypto) {
    validator0_replica_dedup(dir, 64)
}

/// [`validator0_replica`] with its duplicate window across epochs set to
/// `dedup_epochs`.
pub fn validator0_replica_dedup(
    dir: &std::path::Path,
    dedup_epochs: u64,
) -> (Config, gridledger_consensus::lbft::NodeCrypto) {
    let keys: Vec<_> = (0..N).map(dev_validator).collect();
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), &keys);
    let settings = LbftSettings {
        key_shares: dir.join("validator-0").join("lbft.key"),
        public_keys: dir.join("lbft-public.hex"),
        ..LbftSettings::default()
    };
    let crypto = load_crypto(&settings, N, 0).expect("validator 0's shares");
    let chain = ChainConfig::default();
    let mut cfg = Config::new(N, 0, genesis.hash());
    cfg.tick = 100;
    cfg.retain = 64;
    cfg.dedup_epochs = dedup_epochs;
    cfg.max_batch_txs = chain.max_block_txs / N;
    cfg.max_tx_bytes = chain.max_tx_bytes;
    (cfg, crypto)
}

/// Validator 0 as a Byzantine puppet: a correct replica in every step but
/// one — its batch for the epoch in which validator 1 proposes `victim`
/// is `[victim]` alone (copied from validator 1's `Val`), proposed as soon
/// as that `Val` arrives. Runs until `stop` is set.
pub fn puppet(
    dir: &std::path::Path,
    net: Arc<Net>,
    victim: Vec<u8>,
    deviate: bool,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<bool> {
    let (cfg, crypto) = validator0_replica(dir);
    let inbox = net.take_inbox(0).expect("validator 0 never started");
    std::thread::spawn(move || {
        let mut r = Replica::new(cfg, crypto, Durable::default());
        let mut need: Option<u64> = None;
        let mut copied = false;
        let mut steps = vec![r.start()];
        let mut next_tick = Instant::now() + Duration::from_millis(100);
        while !stop.load(Ordering::Relaxed) {
            for s in steps.drain(..) {
                for (to, m) in &s.messages {
                    for t in targets(to) {
                        net.inject(t, 0, wire(m));
                    }
                }
                if let Some(e) = s.need_batch {
                    need = Some(e);
                }
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + Duration::from_millis(100);
                steps.push(r.handle_tick());
                continue;
            }
            let Some((from, m)) = puppet_recv(&inbox) else { continue };
            if let (1, Message::Val { epoch, batch }) = (from, &m) {
                // The one deviation: validator 1's pending transaction,
                // alone, in our batch of the same epoch (we come first).
                if deviate && need == Some(*epoch) && batch.txs.contains(&victim) {
                    need = None;
                    copied = true;
                    steps.push(r.propose_at(*epoch, vec![victim.clone()], now_ms()));
                } else if need == Some(*epoch) {
                    need = None;
                    steps.push(r.propose_at(*epoch, Vec::new(), now_ms()));
                }
            }
            steps.push(r.handle_message(from, m));
        }
        copied
    })
}

/// The validators a puppet's message to `to` goes to (never itself).
pub fn targets(to: &Target) -> Vec<usize> {
    match to {
        Target::All => (1..N).collect(),
        Target::One(i) => vec![*i as usize],
    }
}

/// The next LBFT message in a puppet's `inbox` within 20 ms, with its
/// sender; `None` on a timeout or anything else.
pub fn puppet_recv(inbox: &Receiver<Input>) -> Option<(u32, Msg)> {
    let Ok(Input::Peer { from, bytes }) = inbox.recv_timeout(Duration::from_millis(20)) else { return None };
    let (&WIRE_LBFT, body) = bytes.split_first()? else { return None };
    let m = decode::<Msg>(body, usize::MAX).ok()?;
    Some((from, m))
}

/// The block hashes of `v`'s chain, by height.
pub fn chain_of(v: &Validator) -> Vec<Hash32> {
    let c = v.node.shared.chain();
    (1..=c.tip().height).map(|h| c.block(h).unwrap().expect("a committed block").header.hash()).collect()
}

/// A xorshift64 stream from `seed`: each call gives the next value modulo
/// its argument (the tests' pseudo-random crash points).
pub fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed;
    move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// What [`copied_next_nonce`] saw.
pub struct CopiedNonce {
    /// The puppet saw validator 1's batch and copied nonce 1.
    pub copied: bool,
    pub second_done: bool,
    pub third_done: bool,
    /// Account 0's nonce at validator 1 at the end.
    pub nonce: u64,
    /// Nonces 0 and 1 committed in one block at validator 1.
    pub same_block: bool,
}

/// Runs the scenario of attack r5 [1]'s Byzantine trigger: validator 0 a
/// [`puppet`] (copying nonce 1 if `deviate`), validators 1..4 honest with
/// their `[lbft]` settings changed by `tweak`; an honest client sends
/// nonces 0 and 1 to validator 1, then nonce 2.
pub fn copied_next_nonce(deviate: bool, tweak: impl Fn(&mut LbftSettings)) -> CopiedNonce {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let first = tx(0, 0, TRANSFER_GAS);
    let second = tx(0, 1, TRANSFER_GAS);
    let stop = Arc::new(AtomicBool::new(false));
    let byz = puppet(dir.path(), net.clone(), second.clone(), deviate, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start_with(i, SimDisk::new(), &tweak)).collect();
    let got = admit(&vs[0], &[first, second]);
    assert!(got.iter().all(|r| r.is_ok()), "both admitted at validator 1: {got:?}");
    let hashes: Vec<Hash32> = got.into_iter().map(|r| r.unwrap()).collect();
    assert!(within(30, || committed(&vs[0], &hashes[0])), "nonce 0 commits");
    let second_done = within(15, || committed(&vs[0], &hashes[1]));
    let at = |h: &Hash32| vs[0].node.shared.store.tx_location(h).ok().flatten().map(|(height, _)| height);
    let same_block = second_done && at(&hashes[0]) == at(&hashes[1]);
    let third = admit(&vs[0], &[tx(0, 2, TRANSFER_GAS)]);
    let third_done = third[0].as_ref().ok().is_some_and(|h| within(15, || committed(&vs[0], h)));
    let nonce = nonce_of(&vs[0], 0);
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    for v in vs {
        v.node.shutdown();
    }
    CopiedNonce { copied, second_done, third_done, nonce, same_block }
}

// ---- A Byzantine validator proposing a client's next nonces early (attack r6 [1]) ----

/// Validator 0 as a puppet (attack r6): a correct replica that proposes as soon as it
/// is asked (so epochs keep running, with empty batches), except that its
/// batch for epoch `i` is `[early[i]]` alone (transactions the client also
/// sent it, proposed before the honest validator proposes them with their
/// predecessors). Runs until `stop` is set; returns how many of `early` it
/// proposed.
pub fn early_puppet(
    dir: &std::path::Path,
    net: Arc<Net>,
    early: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    let (cfg, crypto) = validator0_replica(dir);
    let inbox = net.take_inbox(0).expect("validator 0 never started");
    std::thread::spawn(move || {
        let mut r = Replica::new(cfg, crypto, Durable::default());
        let mut copied = 0;
        let mut steps = vec![r.start()];
        let mut next_tick = Instant::now() + Duration::from_millis(100);
        while !stop.load(Ordering::Relaxed) {
            let mut need = None;
            for s in steps.drain(..) {
                for (to, m) in &s.messages {
                    for t in targets(to) {
                        net.inject(t, 0, wire(m));
                    }
                }
                need = s.need_batch.or(need);
            }
            if let Some(e) = need {
                let batch = match early.get(copied) {
                    Some(t) => {
                        copied += 1;
                        vec![t.clone()]
                    }
                    None => Vec::new(),
                };
                steps.push(r.propose_at(e, batch, now_ms()));
                continue;
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + Duration::from_millis(100);
                steps.push(r.handle_tick());
                continue;
            }
            let Some((from, m)) = puppet_recv(&inbox) else { continue };
            steps.push(r.handle_message(from, m));
        }
        copied
    })
}

/// The delivered epoch records validator `v` stored, from epoch 0 on.
pub fn stored_epochs(v: &Validator) -> Vec<DeliveredEpoch<gridledger_consensus::lbft::NodeSig>> {
    let store = &v.node.shared.store;
    (0u64..)
        .map_while(|e| store.get_aux(&epoch_key(e)).ok().flatten())
        .map(|b| {
            decode::<DeliveredEpoch<gridledger_consensus::lbft::NodeSig>>(&b, usize::MAX)
                .expect("a stored epoch decodes")
        })
        .collect()
}

/// The first epoch whose accepted batches carry `raw`, at `v`.
pub fn first_delivered(v: &Validator, raw: &[u8]) -> Option<u64> {
    stored_epochs(v)
        .into_iter()
        .find(|d| d.batches.iter().any(|b| b.batch.txs.iter().any(|t| t == raw)))
        .map(|d| d.epoch)
}

/// The epoch whose block committed `h`, at `v`.
pub fn commit_epoch(v: &Validator, h: &Hash32) -> Option<u64> {
    let store = &v.node.shared.store;
    let (height, _) = store.tx_location(h).ok().flatten()?;
    match store.block(height).ok().flatten()?.seal {
        Seal::Epoch { epoch, .. } => Some(epoch),
        _ => None,
    }
}

/// What the scenario saw.
#[derive(Debug)]
pub struct EarlySeen {
    pub copied: bool,
    /// Epoch in which nonce 1 was first delivered (the puppet's copy).
    pub early_delivered: Option<u64>,
    /// Commit epochs of nonces 0, 1 and 2 (nonce 2 sent once nonce 0 committed).
    pub commits: [Option<u64>; 3],
    /// The last delivered epoch when nonce 2 was sent.
    pub sent_third_at: u64,
}

/// An honest client sends nonces 0 and 1 of dev account 0 to validator 1
/// and (for censorship resistance) to validator 0. Validator 0 (the puppet,
/// copying if `deviate`) proposes nonce 1 alone in epoch 0; validator 1
/// gets the pair once epoch 0 is delivered and proposes both in the next.
/// Once nonce 0 commits the client sends nonce 2 to validator 1.
/// Validators 1..4 run with their `[lbft]` settings changed by `tweak`.
pub fn early_next_nonce(deviate: bool, tweak: impl Fn(&mut LbftSettings)) -> EarlySeen {
    let dir = tempfile::tempdir().unwrap();
    let net = Arc::new(Net::new(dir.path()));
    let first = tx(0, 0, TRANSFER_GAS);
    let second = tx(0, 1, TRANSFER_GAS);
    let third = tx(0, 2, TRANSFER_GAS);
    let stop = Arc::new(AtomicBool::new(false));
    let early = if deviate { vec![second.clone()] } else { Vec::new() };
    let byz = early_puppet(dir.path(), net.clone(), early, stop.clone());
    let vs: Vec<Validator> = (1..N).map(|i| net.start_with(i, SimDisk::new(), &tweak)).collect();
    let h1 = &vs[0];
    assert!(within(60, || !stored_epochs(h1).is_empty()), "epoch 0 is delivered");
    let got = admit(h1, &[first, second.clone()]);
    assert!(got.iter().all(|r| r.is_ok()), "both admitted at validator 1: {got:?}");
    let hashes: Vec<Hash32> = got.into_iter().map(|r| r.unwrap()).collect();
    assert!(within(60, || committed(h1, &hashes[0])), "nonce 0 commits");
    let sent_third_at = stored_epochs(h1).last().map_or(0, |d| d.epoch);
    let third = admit(h1, &[third]);
    let h3 = *third[0].as_ref().expect("nonce 2 admitted");
    // Until both commit, or the delivered epochs are well past every
    // bound the tests check (nonce 1 by nonce 0's epoch + 1, nonce 2 by 4
    // epochs after it was sent), so a test fails without waiting out a
    // long hold-back. Generous cap (no outcome depends on timing): long
    // enough for a 64-epoch hold-back to pass, so the epochs can be compared.
    let last = || stored_epochs(h1).last().map_or(0, |d| d.epoch);
    let _ = within(240, || (committed(h1, &hashes[1]) && committed(h1, &h3)) || last() > sent_third_at + 8);
    let seen = EarlySeen {
        copied: false,
        early_delivered: first_delivered(h1, &second),
        commits: [commit_epoch(h1, &hashes[0]), commit_epoch(h1, &hashes[1]), commit_epoch(h1, &h3)],
        sent_third_at,
    };
    stop.store(true, Ordering::Relaxed);
    let copied = byz.join().expect("puppet runs");
    for v in vs {
        v.node.shutdown();
    }
    EarlySeen { copied: copied == 1, ..seen }
}

// ---- An unpayable share-sized transaction (attack r8 [2]) --------------------------

/// A transfer of `amount` from dev account `from` to dev account 3 with gas
/// limit `gas` at gas price 1.
pub fn transfer_of(from: usize, nonce: u64, gas: u64, amount: u128) -> Vec<u8> {
    Transaction {
        chain_id: 1,
        sender: dev_key(from).public(),
        nonce,
        gas_limit: gas,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: dev_key(3).address(), amount: Amount(amount) },
    }
    .sign(&dev_key(from))
    .to_bytes()
}

/// What validator 2 did with the unpayable transaction.
#[derive(Debug)]
pub struct Unpayable {
    /// It left validator 2's mempool.
    pub left: bool,
    /// Validator 2's delivered batches carrying it.
    pub proposals: usize,
}

/// Dev account 1 sends nonce 0 (a drain: nearly its whole balance) to
/// validator 1, and nonce 0 (a transfer of 1) plus nonce 1 (gas limit =
/// the share) to validator 2, both admitted before the network runs
/// (validators run with their `[lbft]` settings changed by `tweak`).
/// Batches are delivered in proposer order, so the drain executes first:
/// validator 2's nonce 0 is stale, and its nonce 1 can no longer pay.
/// Waits (up to two minutes) until nonce 1 left validator 2's mempool or
/// more than two of validator 2's delivered batches carried it.
pub fn unpayable_share_sized(tweak: impl Fn(&mut LbftSettings)) -> Unpayable {
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let budget = ChainConfig::default().block_gas_limit / N as u64;
    let v1 = net.start_with(1, SimDisk::new(), &tweak);
    let v2 = net.start_with(2, SimDisk::new(), &tweak);
    // Dev accounts hold 1e9; a transfer costs TRANSFER_GAS at price 1.
    let drain = transfer_of(1, 0, TRANSFER_GAS, 1_000_000_000 - u128::from(TRANSFER_GAS) - 10);
    let r = admit(&v1, std::slice::from_ref(&drain));
    assert!(r[0].is_ok(), "{r:?}");
    let stuck = transfer_of(1, 1, budget, 1);
    let r = admit(&v2, &[transfer_of(1, 0, TRANSFER_GAS, 1), stuck.clone()]);
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    let stuck_hash = r[1].clone().unwrap();
    let drain_hash = v1.node.shared.rules.check(&drain).unwrap().hash;
    let v0 = net.start_with(0, SimDisk::new(), &tweak);
    let v3 = net.start_with(3, SimDisk::new(), &tweak);
    assert!(within(60, || committed(&v2, &drain_hash)), "the drain commits");
    let pending = || v2.node.shared.chain().mempool().contains(&stuck_hash);
    let proposals = || {
        stored_epochs(&v2)
            .iter()
            .filter(|d| d.batches.iter().any(|b| b.proposer == 2 && b.batch.txs.contains(&stuck)))
            .count()
    };
    let _ = within(120, || !pending() || proposals() > 2);
    let seen = Unpayable { left: !pending(), proposals: proposals() };
    for v in [v0, v1, v2, v3] {
        v.node.shutdown();
    }
    seen
}

// ---- the proposal queue driven alone (attack rounds r9 and r11) ----------

/// A verified transfer of dev account `from` (to dev account 3, one minor
/// unit) with the given nonce, gas limit and gas price.
pub fn verified(from: usize, nonce: u64, gas: u64, price: u128) -> gridledger_ledger::VerifiedTx {
    Transaction {
        chain_id: 1,
        sender: dev_key(from).public(),
        nonce,
        gas_limit: gas,
        gas_price: Amount(price),
        kind: TxKind::Transfer { to: dev_key(3).address(), amount: Amount(1) },
    }
    .sign(&dev_key(from))
    .check_stateless(1, u64::MAX)
    .unwrap()
}

/// One validator's gas share of a block with the default chain settings.
pub fn share() -> u64 {
    ChainConfig::default().block_gas_limit / N as u64
}

/// An account rich enough for any queue test, at committed nonce `nonce`.
pub fn rich(nonce: u64) -> gridledger_ledger::state::Account {
    gridledger_ledger::state::Account { balance: Amount(1_000_000_000_000), nonce }
}

/// Keeps `k` transfers (gas price 1, gas limit `gas`) of sender `from`
/// queued in `pool`, given the next nonce to admit per sender and the
/// committed nonces.
pub fn keep_queued(
    pool: &mut gridledger_ledger::mempool::Mempool,
    next: &mut std::collections::HashMap<usize, u64>,
    committed: &std::collections::HashMap<usize, u64>,
    from: usize,
    k: u64,
    gas: u64,
) {
    let done = committed.get(&from).copied().unwrap_or(0);
    let n = next.entry(from).or_default();
    while *n < done + k {
        pool.admit(verified(from, *n, gas, 1), &rich(done)).unwrap();
        *n += 1;
    }
}

/// One validator's batch size with the default chain settings.
pub fn max_txs() -> usize {
    ChainConfig::default().max_block_txs / N
}

/// One cut batch: its senders (dev key indices, one per transaction) and
/// its gas.
pub struct Proposed {
    pub senders: Vec<usize>,
    pub gas: u64,
}

/// Runs the proposal queue as the engine runs it (pipeline 0): each epoch `load`
/// admits what it wants (given the next nonce to admit per sender and the
/// committed nonces), a batch is cut, delivered and executed whole, and
/// the queue hears of the delivery. Stops after `epochs` or once `stop`
/// holds for the batch just cut.
pub fn run(
    epochs: u64,
    budget: u64,
    senders: usize,
    mut load: impl FnMut(
        u64,
        &mut gridledger_ledger::mempool::Mempool,
        &mut std::collections::HashMap<usize, u64>,
        &std::collections::HashMap<usize, u64>,
    ),
    mut stop: impl FnMut(&Proposed) -> bool,
) -> Vec<Proposed> {
    let mut pool = gridledger_ledger::mempool::Mempool::new(10_000, 4_096);
    let mut q = gridledger_node::lbft::ProposalQueue::new(64);
    let mut committed: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let mut next: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let who: std::collections::HashMap<gridledger_core::Address, usize> =
        (0..senders).map(|i| (dev_key(i).address(), i)).collect();
    let mut out = Vec::new();
    for epoch in 0..epochs {
        load(epoch, &mut pool, &mut next, &committed);
        let cut = q.cut(epoch, &pool, max_txs(), budget);
        assert!(cut.give_up.is_empty());
        let mut p = Proposed { senders: Vec::new(), gas: 0 };
        let mut addrs = Vec::new();
        for t in &cut.txs {
            let stx = gridledger_ledger::SignedTransaction::from_bytes(t, 1 << 16).unwrap();
            let i = who[&stx.sender()];
            let n = committed.entry(i).or_default();
            assert_eq!(*n, stx.tx.nonce, "a batch keeps each sender's nonce order");
            *n += 1;
            p.senders.push(i);
            p.gas += stx.tx.gas_limit;
            addrs.push(stx.sender());
        }
        pool.prune(addrs, |a| rich(committed.get(&who[a]).copied().unwrap_or(0)));
        q.delivered(epoch, &pool);
        let done = stop(&p);
        out.push(p);
        if done {
            break;
        }
    }
    out
}
