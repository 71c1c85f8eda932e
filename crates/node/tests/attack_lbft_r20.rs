//! Attack round 20 on the LBFT node engine (`consensus = "lbft"`) after
//! batch certificates became Ed25519 multi-signatures (`2f + 1` signed
//! echoes).
//!
//! - [1] (critical): an LBFT chain of five validators forks under one
//!   Byzantine validator. Nothing refuses `n ≠ 3f + 1` (the node opens an
//!   LBFT engine for any number of genesis validators, `gridledger testnet
//!   --consensus lbft --validators 5` deals keys for five), and the
//!   certificate threshold is `2f + 1` with `f = ⌊(n − 1) / 3⌋`: 3 of 5,
//!   so two certificates of one slot meet in one validator, the Byzantine
//!   proposer itself. Validator 0 sends validators 1 and 2 a batch with
//!   dev account 0's nonce-0 transfer of 1 unit, validators 3 and 4 one
//!   with its nonce-0 transfer of 2 units, echoes both, and certifies each
//!   with its side's two echoes; every correct validator holds a
//!   certificate for validator 0's slot, the agreement accepts it, and
//!   validators 1, 2 commit one transfer while 3, 4 commit the other:
//!   different blocks, different state roots at height 1
//!   (`five_validators_one_byzantine_commit_the_same_blocks`). The
//!   consensus crate's `attack_lbft_r20` shows the same with bare replicas.
//!
//! Fixed: every quorum is `n − f` (`gridledger_consensus::lbft::quorum`),
//! certificates of 4 of 5 here, so neither side's two echoes and the
//! proposer's certify a batch. An honest transfer (dev account 1's, sent
//! to validator 1) gives the correct validators a block to commit; they
//! commit the same blocks with the same state roots.
//!
//! Run it with `cargo test -p gridledger-node --test attack_lbft_r20`.

mod common;
use common::lbft::{puppet_recv, transfer_of, wire, within, Msg};
use gridledger_consensus::lbft::{echo_statement, Batch, KeyUse, Message, ThresholdCrypto};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::store::Store;
use gridledger_ledger::ChainConfig;
use gridledger_node::config::{write_key, ConsensusKind};
use gridledger_node::lbft::{deal_keys, load_crypto, LbftSettings};
use gridledger_node::validator::{Input, Transport};
use gridledger_node::{Node, NodeConfig, NodeHandle};
use rand::SeedableRng;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Validators of the network: `f = 1`, certificates of `n − f = 4`
/// (`2f + 1 = 3` before the fix).
const N5: usize = 5;

/// In-memory links among the five validators.
struct Links5 {
    me: u32,
    inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
}

impl Transport for Links5 {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        if let Some(tx) = self.inboxes.get(to as usize) {
            let _ = tx.lock().unwrap().send(Input::Peer { from: self.me, bytes });
        }
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        for to in (0..N5 as u32).filter(|&i| i != self.me) {
            self.send(to, bytes.clone());
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[test]
fn five_validators_one_byzantine_commit_the_same_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let keys: Vec<_> = (0..N5).map(dev_validator).collect();
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), &keys);
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    let dealt = deal_keys(N5, &mut rand_chacha::ChaCha20Rng::seed_from_u64(20)).unwrap();
    std::fs::write(dir.join("lbft-public.hex"), &dealt.public).unwrap();
    let settings = |i: usize| LbftSettings {
        key_shares: dir.join(format!("validator-{i}")).join("lbft.key"),
        public_keys: dir.join("lbft-public.hex"),
        tick_ms: 100,
        ..LbftSettings::default()
    };
    for (i, key) in keys.iter().enumerate() {
        let home = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        write_key(&home.join("validator.key"), key).unwrap();
        std::fs::write(home.join("lbft.key"), &dealt.shares[i]).unwrap();
    }
    let (senders, receivers): (Vec<_>, Vec<Receiver<Input>>) = (0..N5).map(|_| channel::<Input>()).unzip();
    let inboxes = Arc::new(senders.into_iter().map(Mutex::new).collect::<Vec<_>>());
    let mut receivers: Vec<Option<Receiver<Input>>> = receivers.into_iter().map(Some).collect();
    let puppet_inbox = receivers[0].take().expect("validator 0's inbox");

    // Validators 1..=4: correct nodes.
    let nodes: Vec<NodeHandle> = (1..N5)
        .map(|i| {
            let home = dir.join(format!("validator-{i}"));
            let cfg = NodeConfig {
                data_dir: home.join("data"),
                genesis: dir.join("genesis.toml"),
                validator_key: home.join("validator.key"),
                rpc_listen: "127.0.0.1:0".into(),
                block_interval_ms: 20,
                chain: ChainConfig::default(),
                network: None,
                pbft: Default::default(),
                consensus: ConsensusKind::Lbft,
                lbft: settings(i),
            };
            let disk = SimDisk::new();
            let d = disk.clone();
            let store = Store::open_backend(move || d.backend()).unwrap();
            let inbox = receivers[i].take().expect("inbox");
            let tx = inboxes[i].lock().unwrap().clone();
            let links = Links5 { me: i as u32, inboxes: inboxes.clone() };
            Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store))
                .unwrap()
                .spawn_lbft(Box::new(links), inbox, tx)
                .unwrap()
        })
        .collect();

    // An honest transfer at validator 1, so the correct validators have a
    // block to commit whatever becomes of validator 0's slot.
    let honest = common::submit(&nodes[0], 1, 0, 1).pop().expect("one submitted").expect("admitted");

    // Validator 0: Byzantine. Two batches for its epoch-0 slot, each with
    // dev account 0's nonce 0 (a transfer of 1 unit, or of 2).
    let crypto = load_crypto(&settings(0), N5, 0).expect("validator 0's keys");
    let instance = genesis.hash();
    let t = now_ms();
    let a = Batch { txs: vec![transfer_of(0, 0, TRANSFER_GAS, 1)].into(), time_ms: t };
    let b = Batch { txs: vec![transfer_of(0, 0, TRANSFER_GAS, 2)].into(), time_ms: t };
    let (da, db) = (a.digest(&instance, 0, 0), b.digest(&instance, 0, 0));
    let (sa, sb) = (echo_statement(&instance, 0, 0, &da), echo_statement(&instance, 0, 0, &db));
    let mut echoes: [Vec<(u32, _)>; 2] =
        [vec![(0, crypto.sign_share(KeyUse::Cert, &sa))], vec![(0, crypto.sign_share(KeyUse::Cert, &sb))]];
    let side = |j: usize| usize::from(j > 2);
    let send = |to: usize, m: &Msg| {
        let _ = inboxes[to].lock().unwrap().send(Input::Peer { from: 0, bytes: wire(m) });
    };
    for j in 1..N5 {
        send(j, &Message::Val { epoch: 0, batch: if side(j) == 0 { a.clone() } else { b.clone() } });
    }
    let mut certified = [false, false];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Until both batches are certified or every correct validator's echo
    // came back (its own two and four more).
    while certified != [true, true]
        && echoes[0].len() + echoes[1].len() < N5 + 1
        && std::time::Instant::now() < deadline
    {
        let Some((from, Message::Echo { epoch: 0, proposer: 0, digest, share })) = puppet_recv(&puppet_inbox) else {
            continue;
        };
        let k = if digest == da {
            0
        } else if digest == db {
            1
        } else {
            continue;
        };
        if echoes[k].iter().any(|(i, _)| *i == from) {
            continue; // a re-sent echo
        }
        echoes[k].push((from, share));
        let (stmt, d) = if k == 0 { (&sa, da) } else { (&sb, db) };
        if !certified[k] {
            if let Some(sig) = crypto.combine(KeyUse::Cert, stmt, &echoes[k]) {
                if crypto.verify(KeyUse::Cert, stmt, &sig) {
                    certified[k] = true;
                    for j in (1..N5).filter(|&j| side(j) == k) {
                        send(j, &Message::Cert { epoch: 0, proposer: 0, digest: d, sig: sig.clone() });
                    }
                }
            }
        }
    }
    let heights = || nodes.iter().map(|n| n.shared.chain().tip().height).collect::<Vec<u64>>();
    let committed =
        within(60, || heights().iter().all(|&h| h >= 1) && nodes.iter().all(|n| common::committed(n, &honest)));
    let chains: Vec<Vec<Hash32>> = nodes.iter().map(chain_of_node).collect();
    let roots: Vec<Hash32> = nodes.iter().map(|n| n.shared.chain().tip().state_root).collect();
    for n in nodes {
        n.shutdown();
    }
    assert!(committed, "every correct validator committed the honest transfer: heights {:?}", heights_of(&chains));
    assert!(
        chains.windows(2).all(|w| w[0] == w[1]) && roots.windows(2).all(|w| w[0] == w[1]),
        "validator 0 certified {} batches for its one slot; the four correct validators' \
         block hashes: {chains:?}, state roots: {roots:?}",
        certified.iter().filter(|c| **c).count()
    );
}

fn chain_of_node(n: &NodeHandle) -> Vec<Hash32> {
    let c = n.shared.chain();
    (1..=c.tip().height).map(|h| c.block(h).unwrap().expect("a committed block").header.hash()).collect()
}

fn heights_of(chains: &[Vec<Hash32>]) -> Vec<usize> {
    chains.iter().map(|c| c.len()).collect()
}
