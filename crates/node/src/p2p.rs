//! Real peer links for a validator: `gridledger-net`'s Noise-authenticated
//! TCP mesh as the PBFT [`Transport`], bridged to the driver's inbox.
//!
//! # Inbound lanes
//!
//! What a peer sends reaches the driver through two bounded lanes *per
//! peer*: consensus messages and transaction gossip. A lane counts the
//! messages and bytes handed to the driver and not yet processed (the
//! driver returns them through [`Shared::release_inbound`]):
//!
//! - a full **consensus** lane stops taking that peer's messages until the
//!   driver catches up: the peer's net queue fills and its socket is no
//!   longer read (TCP back-pressure on that peer only, none lost);
//! - a full **gossip** lane drops that peer's further gossip (counted in
//!   `gridledger_p2p_gossip_dropped_total`): gossip is best effort, each
//!   transaction also reaches the leader from its submitter, and dropping it
//!   keeps a gossip flood from delaying that peer's votes.
//!
//! So a Byzantine validator pushing 32 MiB frames can make this node hold at
//! most its lanes' bytes plus its net inbound budget, and cannot delay the
//! other validators' messages.
//!
//! Catch-up requests beyond a peer's [`CatchUpLimiter`] rate are dropped
//! here, before they take lane room; the driver checks the same rate again
//! before it reads a block (for transports without this path), and gossip is
//! verified off the driver thread (`gossip`), its lane released only then.

use gridledger_core::crypto::KeyPair;
use gridledger_ledger::Genesis;
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

use crate::config::NetworkSection;
use crate::service::Shared;
use crate::validator::{Input, Transport, MAX_FRAME, WIRE_TXS};

/// Bounds of one lane: messages and bytes in the driver's inbox and not
/// yet processed. One message is always admitted into an empty lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneLimits {
    pub messages: usize,
    pub bytes: usize,
}

/// Per-peer lane bounds (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneConfig {
    pub consensus: LaneLimits,
    pub gossip: LaneLimits,
}

impl Default for LaneConfig {
    fn default() -> Self {
        Self {
            // A catch-up response carries up to 32 full blocks (MAX_FRAME).
            consensus: LaneLimits { messages: 512, bytes: 2 * MAX_FRAME },
            gossip: LaneLimits { messages: 32, bytes: 16 << 20 },
        }
    }
}

#[derive(Default)]
struct Usage {
    messages: usize,
    bytes: usize,
}

struct Lane {
    limits: LaneLimits,
    used: Mutex<Usage>,
    freed: Notify,
}

impl Lane {
    fn new(limits: LaneLimits) -> Self {
        Self { limits, used: Mutex::new(Usage::default()), freed: Notify::new() }
    }

    fn try_take(&self, len: usize) -> bool {
        let mut u = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let fits =
            u.messages == 0 || (u.messages < self.limits.messages && u.bytes.saturating_add(len) <= self.limits.bytes);
        if fits {
            u.messages += 1;
            u.bytes = u.bytes.saturating_add(len);
        }
        fits
    }

    async fn take(&self, len: usize) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take(len) {
                return;
            }
            freed.await;
        }
    }

    fn release(&self, len: usize) {
        {
            let mut u = self.used.lock().unwrap_or_else(|p| p.into_inner());
            u.messages = u.messages.saturating_sub(1);
            u.bytes = u.bytes.saturating_sub(len);
        }
        self.freed.notify_waiters();
    }

    fn usage(&self) -> (usize, usize) {
        let u = self.used.lock().unwrap_or_else(|p| p.into_inner());
        (u.messages, u.bytes)
    }
}

/// Every peer's two lanes.
pub struct Lanes {
    peers: BTreeMap<u32, [Lane; 2]>,
    pub gossip_dropped: AtomicU64,
}

const CONSENSUS: usize = 0;
const GOSSIP: usize = 1;

fn lane_of(bytes: &[u8]) -> usize {
    if bytes.first() == Some(&WIRE_TXS) {
        GOSSIP
    } else {
        CONSENSUS
    }
}

impl Lanes {
    pub fn new(peers: impl IntoIterator<Item = u32>, cfg: LaneConfig) -> Self {
        Self {
            peers: peers.into_iter().map(|p| (p, [Lane::new(cfg.consensus), Lane::new(cfg.gossip)])).collect(),
            gossip_dropped: AtomicU64::new(0),
        }
    }

    /// Admits a message from `from` into its lane: waits for room on the
    /// consensus lane; returns false (drop it) when the gossip lane is full.
    pub async fn admit(&self, from: u32, bytes: &[u8]) -> bool {
        let Some(lanes) = self.peers.get(&from) else { return false };
        let lane = lane_of(bytes);
        if lane == GOSSIP {
            let ok = lanes[GOSSIP].try_take(bytes.len());
            if !ok {
                self.gossip_dropped.fetch_add(1, Relaxed);
            }
            return ok;
        }
        lanes[CONSENSUS].take(bytes.len()).await;
        true
    }

    /// The driver has processed a message from `from`.
    pub fn release(&self, from: u32, bytes: &[u8]) {
        if let Some(lanes) = self.peers.get(&from) {
            lanes[lane_of(bytes)].release(bytes.len());
        }
    }

    /// Prometheus text: each peer's lanes (messages and bytes held now).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, pick) in [
            ("gridledger_p2p_lane_messages", (|u: (usize, usize)| u.0) as fn((usize, usize)) -> usize),
            ("gridledger_p2p_lane_bytes", |u| u.1),
        ] {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            for (peer, lanes) in &self.peers {
                for (lane, l) in [("consensus", &lanes[CONSENSUS]), ("gossip", &lanes[GOSSIP])] {
                    out.push_str(&format!("{name}{{peer=\"{peer}\",lane=\"{lane}\"}} {}\n", pick(l.usage())));
                }
            }
        }
        out
    }

    /// Messages and bytes now held for `from`: (consensus, gossip).
    pub fn usage(&self, from: u32) -> Option<((usize, usize), (usize, usize))> {
        self.peers.get(&from).map(|l| (l[CONSENSUS].usage(), l[GOSSIP].usage()))
    }
}

/// Sends through the mesh. A full queue drops the peer's oldest message
/// (PBFT's retransmission, view change and catch-up recover it). Catch-up
/// responses to each peer are rate-limited ([`CatchUpLimiter`]).
pub struct NetTransport {
    net: Arc<Network>,
    catch_up: Arc<CatchUpLimiter>,
}

/// Whether `bytes` (as the driver sends them) carry a PBFT catch-up response.
fn is_catch_up_response(bytes: &[u8]) -> bool {
    // Wire kind, then the message's enum tag (canonical encoding).
    bytes.first() == Some(&crate::validator::WIRE_PBFT) && bytes.get(1) == Some(&CATCH_UP_RESPONSE_TAG)
}

const CATCH_UP_RESPONSE_TAG: u8 = 6;
const CATCH_UP_REQUEST_TAG: u8 = 5;

/// Whether `bytes` (as they arrive from a peer) carry a PBFT catch-up request.
pub(crate) fn is_catch_up_request(bytes: &[u8]) -> bool {
    bytes.first() == Some(&crate::validator::WIRE_PBFT) && bytes.get(1) == Some(&CATCH_UP_REQUEST_TAG)
}

/// A token bucket per peer for catch-up responses: a peer that keeps asking
/// (or keeps sending stale view changes, which the replica answers with up
/// to `catch_up_batch` full blocks before any signature is checked) gets at
/// most `burst` responses at once and one per `interval` after that; the
/// rest are dropped (counted), and an honest laggard simply asks again.
pub struct CatchUpLimiter {
    interval: std::time::Duration,
    burst: u32,
    peers: Mutex<BTreeMap<u32, (u32, std::time::Instant)>>,
    pub limited: AtomicU64,
}

impl CatchUpLimiter {
    pub fn new(burst: u32, interval: std::time::Duration) -> Self {
        Self { interval, burst: burst.max(1), peers: Mutex::new(BTreeMap::new()), limited: AtomicU64::new(0) }
    }

    /// Takes a token for `peer` at `now`; false (and counted) when none is left.
    pub fn allow(&self, peer: u32, now: std::time::Instant) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, since) = peers.entry(peer).or_insert((self.burst, now));
        if !self.interval.is_zero() {
            let earned = now.saturating_duration_since(*since).as_nanos() / self.interval.as_nanos();
            if earned > 0 {
                *tokens = (u128::from(*tokens) + earned).min(u128::from(self.burst)) as u32;
                *since = now;
            }
        }
        if *tokens == 0 {
            self.limited.fetch_add(1, Relaxed);
            return false;
        }
        *tokens -= 1;
        true
    }
}

impl Default for CatchUpLimiter {
    /// 4 at once, then 4 per second: 128 blocks/s to one laggard.
    fn default() -> Self {
        Self::new(4, std::time::Duration::from_millis(250))
    }
}

impl Transport for NetTransport {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        if is_catch_up_response(&bytes) && !self.catch_up.allow(to, std::time::Instant::now()) {
            tracing::debug!(to, "catch-up response rate-limited");
            return;
        }
        if let Err(e) = self.net.send(to, bytes) {
            tracing::debug!(to, "send: {e}");
        }
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        if let Err(e) = self.net.broadcast(bytes) {
            tracing::debug!("broadcast: {e}");
        }
    }
}

/// The running links; dropping it closes them.
pub struct P2p {
    pub net: Arc<Network>,
    pub catch_up: Arc<CatchUpLimiter>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for P2p {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("address {addr}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("address {addr} resolves to nothing"))
}

/// Checks the configured peers against the genesis validator set and
/// starts the mesh; inbound messages go to `inbox` through per-peer lanes
/// whose use the driver returns via [`Shared::release_inbound`].
pub fn start(
    shared: &Shared,
    section: &NetworkSection,
    genesis: &Genesis,
    key: &KeyPair,
    inbox: Sender<Input>,
) -> anyhow::Result<(P2p, NetTransport)> {
    let me = genesis
        .validators
        .iter()
        .position(|k| *k == key.public())
        .ok_or_else(|| anyhow::anyhow!("this key is not a genesis validator"))? as u32;
    let mut peers = Vec::with_capacity(section.peers.len());
    for p in &section.peers {
        let expected = genesis
            .validators
            .get(p.index as usize)
            .ok_or_else(|| anyhow::anyhow!("peer index {} is not a genesis validator", p.index))?;
        if *expected != p.public_key {
            anyhow::bail!("peer {} has key {}, genesis says {}", p.index, p.public_key, expected);
        }
        peers.push(PeerConfig { index: p.index, public_key: p.public_key, addr: resolve(&p.address)? });
    }
    if peers.len() != genesis.validators.len() {
        anyhow::bail!("the network section lists {} validators, genesis has {}", peers.len(), genesis.validators.len());
    }
    let mut cfg = NetworkConfig::new(genesis.hash(), me, peers);
    cfg.listen = resolve(&section.listen)?;
    cfg.max_frame = MAX_FRAME;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("p2p").build()?;
    let inherited = crate::listen::inherited(crate::listen::P2P_FD)?;
    let (net, inbound) = rt.block_on(async {
        match inherited {
            Some(l) => {
                l.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(l)?;
                Network::start_with_listener(cfg, key.clone(), l).await.map_err(anyhow::Error::from)
            }
            None => Network::start(cfg, key.clone()).await.map_err(anyhow::Error::from),
        }
    })?;
    let peers = inbound.into_peers();
    let lanes = Arc::new(Lanes::new(peers.iter().map(|(i, _)| *i), LaneConfig::default()));
    shared.set_inbound_lanes(lanes.clone());
    // Catch-up requests beyond a peer's rate are dropped here, before they
    // take lane room or reach the driver (which checks again, for other
    // transports).
    let requests = Arc::new(CatchUpLimiter::default());
    for (from, mut rx) in peers {
        let (lanes, inbox, requests) = (lanes.clone(), inbox.clone(), requests.clone());
        rt.spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if is_catch_up_request(&bytes) && !requests.allow(from, std::time::Instant::now()) {
                    continue;
                }
                if !lanes.admit(from, &bytes).await {
                    continue;
                }
                if inbox.send(Input::Peer { from, bytes: bytes.to_vec() }).is_err() {
                    break;
                }
            }
        });
    }
    let net = Arc::new(net);
    let catch_up = Arc::new(CatchUpLimiter::default());
    Ok((P2p { net: net.clone(), catch_up: catch_up.clone(), rt: Some(rt) }, NetTransport { net, catch_up }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::WIRE_TXS;

    fn consensus(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[0] = 0;
        v
    }

    fn gossip(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[0] = WIRE_TXS;
        v
    }

    fn lanes() -> Lanes {
        let l = LaneLimits { messages: 3, bytes: 1_000 };
        Lanes::new([1, 2], LaneConfig { consensus: l, gossip: l })
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_full_gossip_lane_drops_that_peers_gossip_only() {
        let l = lanes();
        let rt = rt();
        for _ in 0..3 {
            assert!(rt.block_on(l.admit(1, &gossip(10))));
        }
        assert!(!rt.block_on(l.admit(1, &gossip(10))), "a fourth gossip message is dropped");
        assert_eq!(l.gossip_dropped.load(Relaxed), 1);
        // Peer 2's gossip and peer 1's consensus lane are unaffected.
        assert!(rt.block_on(l.admit(2, &gossip(10))));
        assert!(rt.block_on(l.admit(1, &consensus(10))));
        assert_eq!(l.usage(1), Some(((1, 10), (3, 30))));
        let text = l.render();
        assert!(text.contains("gridledger_p2p_lane_messages{peer=\"1\",lane=\"gossip\"} 3\n"), "{text}");
        assert!(text.contains("gridledger_p2p_lane_bytes{peer=\"1\",lane=\"consensus\"} 10\n"), "{text}");
        l.release(1, &gossip(10));
        assert!(rt.block_on(l.admit(1, &gossip(10))));
        // An unknown peer gets nothing through.
        assert!(!rt.block_on(l.admit(9, &consensus(10))));
    }

    #[test]
    fn a_full_consensus_lane_waits_for_the_driver_and_loses_nothing() {
        let l = Arc::new(lanes());
        let rt = rt();
        // Bytes bound: 600 + 600 would exceed 1,000.
        assert!(rt.block_on(l.admit(1, &consensus(600))));
        let waiting = {
            let l = l.clone();
            rt.spawn(async move { l.admit(1, &consensus(600)).await })
        };
        rt.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        assert!(!waiting.is_finished(), "the second message waits while the lane is full");
        assert_eq!(l.usage(1), Some(((1, 600), (0, 0))));
        l.release(1, &consensus(600));
        assert!(rt.block_on(waiting).unwrap());
        assert_eq!(l.usage(1), Some(((1, 600), (0, 0))));
    }

    #[test]
    fn catch_up_responses_are_recognised_and_rate_limited_per_peer() {
        use gridledger_consensus::pbft::Message;
        let mut resp = vec![crate::validator::WIRE_PBFT];
        resp.extend(Message::<crate::validator::PbftBlock>::CatchUpResponse { entries: vec![] }.to_bytes());
        assert!(is_catch_up_response(&resp));
        let mut req = vec![crate::validator::WIRE_PBFT];
        req.extend(Message::<crate::validator::PbftBlock>::CatchUpRequest { from_height: 3 }.to_bytes());
        assert!(!is_catch_up_response(&req));
        assert!(is_catch_up_request(&req) && !is_catch_up_request(&resp) && !is_catch_up_request(&gossip(8)));
        assert!(!is_catch_up_response(&gossip(8)));

        let l = CatchUpLimiter::new(2, std::time::Duration::from_millis(100));
        let t0 = std::time::Instant::now();
        assert!(l.allow(1, t0) && l.allow(1, t0));
        assert!(!l.allow(1, t0), "the burst is spent");
        assert!(l.allow(2, t0), "another peer has its own bucket");
        assert!(!l.allow(1, t0 + std::time::Duration::from_millis(99)));
        assert!(l.allow(1, t0 + std::time::Duration::from_millis(100)), "one token per interval");
        assert!(!l.allow(1, t0 + std::time::Duration::from_millis(150)));
        // A long pause refills up to the burst, not beyond.
        let later = t0 + std::time::Duration::from_secs(60);
        assert!(l.allow(1, later) && l.allow(1, later));
        assert!(!l.allow(1, later));
        assert_eq!(l.limited.load(Relaxed), 4);
    }

    #[test]
    fn one_oversized_message_passes_an_empty_lane() {
        let l = lanes();
        let rt = rt();
        assert!(rt.block_on(l.admit(1, &consensus(5_000))));
        assert_eq!(l.usage(1), Some(((1, 5_000), (0, 0))));
        assert!(rt.block_on(l.admit(1, &gossip(5_000))), "lanes are separate: the gossip lane is empty");
        assert!(!rt.block_on(l.admit(1, &gossip(1))), "the gossip lane is over its byte bound now");
    }
}
