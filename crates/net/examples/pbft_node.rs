//! Four PBFT validators (the thesis' improved PBFT, `gridledger-consensus`),
//! each driven by its own `Network` over real loopback sockets, commit three
//! blocks and check that they agree. Shows the wiring of a sans-IO core:
//!
//! * inbound `(from, bytes)` → decode (bounded) → `Replica::handle_message`;
//! * `Step.messages` → `Network::send` / `Network::broadcast`;
//! * `Step.timers` → a deadline table polled alongside the inbound queue;
//! * `need_proposal` / `validate` → the node's own block logic.
//!
//! Run: `cargo run -p gridledger-net --example pbft_node`

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{Config, Message, Payload, Replica, Step, Target, Timer, TimerCmd, ValidatorSet};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

const VALIDATORS: u32 = 4;
const BLOCKS: usize = 3;
/// One PBFT logical tick: `base_timeout` of 1000 ticks is one second.
const TICK: Duration = Duration::from_millis(1);
const MAX_MESSAGE: usize = 1 << 20;
const INSTANCE: Hash32 = Hash32([0x42; 32]);

/// A toy block: a real node would carry ledger transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Block {
    height: u64,
    proposer: u32,
    txs: Vec<u64>,
}

impl Payload for Block {
    fn digest(&self) -> Hash32 {
        hash_tagged(Tag("gridledger/example-block/v1"), self)
    }
    fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    fn well_formed(&self) -> Result<(), String> {
        Ok(())
    }
}

struct Node {
    me: u32,
    replica: Replica<Block>,
    net: Network,
    deadlines: BTreeMap<Timer, Instant>,
    committed: Vec<Hash32>,
}

impl Node {
    /// Carries out a step and everything it leads to, in order.
    fn apply(&mut self, first: Step<Block>) {
        let mut pending = VecDeque::from([first]);
        while let Some(mut s) = pending.pop_front() {
            // A real node writes `s.persist` to disk here, before sending.
            for e in s.committed.drain(..) {
                info!(me = self.me, height = e.cert.height, block = %e.cert.block, "committed");
                self.committed.push(e.cert.block);
            }
            for out in s.messages.drain(..) {
                let bytes = out.message.to_bytes();
                let sent = match out.to {
                    Target::All => self.net.broadcast(bytes),
                    Target::One(i) => self.net.send(i, bytes),
                };
                if let Err(e) = sent {
                    warn!(me = self.me, error = %e, "not sent");
                }
            }
            for t in s.timers.drain(..) {
                match t {
                    TimerCmd::Set { timer, after } => {
                        let at = Instant::now() + TICK * u32::try_from(after).unwrap_or(u32::MAX);
                        self.deadlines.insert(timer, at);
                    }
                    TimerCmd::Cancel(timer) => {
                        self.deadlines.remove(&timer);
                    }
                }
            }
            for f in s.faults.drain(..) {
                warn!(me = self.me, fault = ?f, "peer fault");
            }
            if let Some((height, view)) = s.need_proposal.take() {
                let block = Block { height, proposer: self.me, txs: vec![height * 100 + u64::from(self.me)] };
                pending.push_back(self.replica.propose(height, view, block));
            }
            for r in s.validate.drain(..) {
                // A real node executes the block against its ledger here.
                let digest = r.payload.digest();
                pending.push_back(self.replica.handle_validated(r.height, r.view, digest, Ok(())));
            }
        }
    }
}

async fn run_node(
    me: u32,
    key: KeyPair,
    set: Vec<PeerConfig>,
    listener: TcpListener,
    done: watch::Sender<u32>,
) -> Result<Vec<Hash32>, Box<dyn std::error::Error + Send + Sync>> {
    let validators = ValidatorSet::new(INSTANCE, set.iter().map(|p| p.public_key).collect())?;
    let cfg = NetworkConfig::new(INSTANCE, me, set);
    let (net, mut inbound) = Network::start_with_listener(cfg, key.clone(), listener).await?;
    let replica = Replica::new(Config::new(validators, me), key)?;
    let mut node = Node { me, replica, net, deadlines: BTreeMap::new(), committed: Vec::new() };
    let first = node.replica.start();
    node.apply(first);
    let mut all_done = done.subscribe();
    let mut reported = false;
    loop {
        if !reported && node.committed.len() >= BLOCKS {
            reported = true;
            done.send_modify(|d| *d += 1);
        }
        let next = node.deadlines.iter().min_by_key(|(_, at)| **at).map(|(t, at)| (*t, *at));
        let step = tokio::select! {
            m = inbound.recv() => {
                let Some((from, bytes)) = m else { break };
                match Message::<Block>::from_bytes(&bytes, MAX_MESSAGE, VALIDATORS as usize, 32) {
                    Ok(msg) => node.replica.handle_message(from, msg),
                    Err(e) => {
                        // Undecodable bytes from an authenticated peer: a fault of that peer.
                        warn!(me, from, error = %e, "undecodable message");
                        continue;
                    }
                }
            }
            _ = tokio::time::sleep_until(next.map_or_else(Instant::now, |(_, at)| at)), if next.is_some() => {
                let Some((timer, _)) = next else { continue };
                node.deadlines.remove(&timer);
                node.replica.handle_timer(timer)
            }
            // Keep serving the others until every validator has its blocks.
            _ = all_done.wait_for(|d| *d == VALIDATORS) => break,
        };
        node.apply(step);
    }
    node.net.shutdown().await;
    Ok(node.committed)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let keys: Vec<KeyPair> = (0..VALIDATORS).map(|i| KeyPair::from_seed(&format!("example-validator-{i}"))).collect();
    let mut listeners = Vec::new();
    let mut set = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        set.push(PeerConfig { index: i as u32, public_key: k.public(), addr: l.local_addr()? });
        listeners.push(l);
    }
    let (done, _) = watch::channel(0u32);
    let mut handles = Vec::new();
    for (i, (key, l)) in keys.into_iter().zip(listeners).enumerate() {
        handles.push(tokio::spawn(run_node(i as u32, key, set.clone(), l, done.clone())));
    }
    let mut chains = Vec::new();
    for h in handles {
        let chain = tokio::time::timeout(Duration::from_secs(30), h).await???;
        chains.push(chain);
    }
    let first: Vec<Hash32> = chains[0].iter().take(BLOCKS).copied().collect();
    for (i, c) in chains.iter().enumerate() {
        let prefix: Vec<Hash32> = c.iter().take(BLOCKS).copied().collect();
        if prefix != first {
            return Err(format!("validator {i} disagrees: {prefix:?} vs {first:?}").into());
        }
    }
    println!("{VALIDATORS} validators committed the same {BLOCKS} blocks over loopback links");
    Ok(())
}
