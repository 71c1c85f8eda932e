//! Per-peer counters, read without locks and exported as a snapshot (and as
//! Prometheus text for the node's metrics endpoint).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) sent_messages: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) received_messages: AtomicU64,
    pub(crate) received_bytes: AtomicU64,
    pub(crate) dropped_outbound: AtomicU64,
    pub(crate) dropped_inbound: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) dial_failures: AtomicU64,
}

pub(crate) fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// One peer's link, as seen from this node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub index: u32,
    pub connected: bool,
    /// Messages waiting in the outbound queue now.
    pub queued: usize,
    pub sent_messages: u64,
    pub sent_bytes: u64,
    pub received_messages: u64,
    pub received_bytes: u64,
    /// Messages dropped because the outbound queue was full (the oldest
    /// queued go first) or were lost with a failing connection.
    pub dropped_outbound: u64,
    /// Received messages dropped by injected link faults
    /// ([`crate::Network::set_link_faults`]).
    pub dropped_inbound: u64,
    /// Authenticated links established (either direction), duplicates that
    /// lost the tie-break not counted.
    pub connections: u64,
    /// `connections - 1`: links re-established after a loss.
    pub reconnects: u64,
    /// Links dropped for a protocol violation (oversize frame, bytes that do
    /// not decrypt).
    pub protocol_errors: u64,
    /// Outbound dials or handshakes that failed.
    pub dial_failures: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self, index: u32, connected: bool, queued: usize) -> PeerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let connections = get(&self.connections);
        PeerStats {
            index,
            connected,
            queued,
            sent_messages: get(&self.sent_messages),
            sent_bytes: get(&self.sent_bytes),
            received_messages: get(&self.received_messages),
            received_bytes: get(&self.received_bytes),
            dropped_outbound: get(&self.dropped_outbound),
            dropped_inbound: get(&self.dropped_inbound),
            connections,
            reconnects: connections.saturating_sub(1),
            protocol_errors: get(&self.protocol_errors),
            dial_failures: get(&self.dial_failures),
        }
    }
}

/// A metric: name, Prometheus type, and how to read it from a peer.
type Series = (&'static str, &'static str, fn(&PeerStats) -> u64);

/// All links of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub me: u32,
    pub peers: Vec<PeerStats>,
    /// Inbound connections refused before authenticating (unknown identity,
    /// bad signature, garbage, timeout, too many pending handshakes).
    pub refused_inbound: u64,
}

impl NetworkStats {
    /// Prometheus text exposition of these counters.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let series: [Series; 10] = [
            ("connected", "gauge", |p| u64::from(p.connected)),
            ("queued_messages", "gauge", |p| p.queued as u64),
            ("sent_messages_total", "counter", |p| p.sent_messages),
            ("sent_bytes_total", "counter", |p| p.sent_bytes),
            ("received_messages_total", "counter", |p| p.received_messages),
            ("received_bytes_total", "counter", |p| p.received_bytes),
            ("dropped_messages_total", "counter", |p| p.dropped_outbound),
            ("fault_dropped_messages_total", "counter", |p| p.dropped_inbound),
            ("reconnects_total", "counter", |p| p.reconnects),
            ("protocol_errors_total", "counter", |p| p.protocol_errors),
        ];
        for (name, kind, get) in series {
            let _ = writeln!(out, "# TYPE gridledger_net_peer_{name} {kind}");
            for p in &self.peers {
                let _ =
                    writeln!(out, "gridledger_net_peer_{name}{{me=\"{}\",peer=\"{}\"}} {}", self.me, p.index, get(p));
            }
        }
        let _ = writeln!(out, "# TYPE gridledger_net_refused_inbound_total counter");
        let _ = writeln!(out, "gridledger_net_refused_inbound_total{{me=\"{}\"}} {}", self.me, self.refused_inbound);
        out
    }
}
