//! Who the validators are, where they listen, and the limits that keep one
//! peer from exhausting this node's memory.

use crate::error::ConfigError;
use gridledger_core::{Hash32, KeyPair, PublicKey};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

/// One validator: its index in the validator set (the index the sans-IO
/// protocols address), its secp256k1 key, and where it listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub index: u32,
    pub public_key: PublicKey,
    pub addr: SocketAddr,
}

/// Faults injected on the frames received from one peer, for experiments
/// on this machine (where tc/netem is unavailable); see
/// [`crate::Network::set_link_faults`]. Deterministic given the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFaults {
    /// Each received frame is delivered no earlier than this after it was
    /// read from the socket (latency, not a throughput cap: frames read
    /// together wait together).
    pub delay: Duration,
    /// Received frames dropped, per million (seeded, so a run repeats).
    pub loss_per_million: u32,
    /// Drop every received frame: a partition of this direction.
    pub blocked: bool,
}

/// Configuration of one node's [`crate::Network`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Names the chain / validator set. Bound into the Noise prologue and the
    /// identity signatures, so a validator key used on two chains cannot be
    /// made to vouch for a link of the other.
    pub network_id: Hash32,
    /// This node's validator index.
    pub me: u32,
    /// The whole validator set, this node included.
    pub validators: Vec<PeerConfig>,
    /// Where to accept connections; usually this node's entry in `validators`.
    pub listen: SocketAddr,
    /// Largest application message accepted or sent. A peer announcing a
    /// larger frame is disconnected before any of it is buffered.
    pub max_frame: usize,
    /// Messages queued per peer while its link is slow or down; beyond it the
    /// oldest queued message is dropped (see [`crate::Network::send`]).
    pub outbound_queue: usize,
    /// Received messages buffered per peer before that peer's socket is no
    /// longer read (TCP back-pressure on that peer only).
    pub inbound_queue: usize,
    /// Bytes of received messages buffered per peer (at least one frame of
    /// any size is admitted when nothing is buffered). A frame is admitted
    /// against it when its header arrives, before its body is buffered, and
    /// all links of the peer share it, so what one peer can make this node
    /// hold, however large its frames and however many links it opens, is
    /// about `max(inbound_bytes, max_frame)` plus the fixed read buffers of
    /// its at most two live links (one in use, one retired and draining).
    pub inbound_bytes: usize,
    /// First reconnect delay; doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Seeds the reconnect jitter so runs are reproducible.
    pub jitter_seed: u64,
    pub connect_timeout: Duration,
    /// A connection that has not authenticated by then is dropped.
    pub handshake_timeout: Duration,
    /// Unauthenticated inbound connections from strangers (IP addresses
    /// that are no other configured validator's) handled at once; more are
    /// closed at accept, so a connection flood cannot exhaust memory.
    ///
    /// Each IP address of the other configured validators has a pool of its
    /// own, of the same size, that only connections from that address draw
    /// from. So pending handshakes are bounded by this limit times one plus
    /// the number of distinct validator addresses, and what is guaranteed
    /// is: a validator at an address of its own (shared with no other
    /// party) can always get a handshake slot, whatever strangers and the
    /// other validators' addresses hold (it needs one at a time: an honest
    /// node has one dial to each peer in progress at a time). Validators
    /// sharing an address
    /// (a testnet on 127.0.0.1) share that address's pool, which anyone at
    /// that address can fill.
    pub max_pending_handshakes: usize,
    /// Unauthenticated inbound connections at once from one stranger's IP
    /// address (validators' addresses have their own pools instead, see
    /// `max_pending_handshakes`).
    pub max_pending_handshakes_per_addr: usize,
}

impl NetworkConfig {
    /// Defaults sized for PBFT traffic: 4 MiB frames, 1024 queued messages
    /// per peer, reconnect backoff from 100 ms to 5 s.
    pub fn new(network_id: Hash32, me: u32, validators: Vec<PeerConfig>) -> Self {
        let listen = validators
            .iter()
            .find(|p| p.index == me)
            .map(|p| p.addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        Self {
            network_id,
            me,
            validators,
            listen,
            max_frame: 4 << 20,
            outbound_queue: 1024,
            inbound_queue: 256,
            inbound_bytes: 64 << 20,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            jitter_seed: u64::from(me),
            connect_timeout: Duration::from_secs(3),
            handshake_timeout: Duration::from_secs(5),
            max_pending_handshakes: 32,
            max_pending_handshakes_per_addr: 4,
        }
    }

    /// Checks the set and the limits against this node's key.
    pub fn validate(&self, key: &KeyPair) -> Result<(), ConfigError> {
        let mut indices = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for p in &self.validators {
            if !indices.insert(p.index) {
                return Err(ConfigError::DuplicateIndex(p.index));
            }
            if !keys.insert(p.public_key) {
                return Err(ConfigError::DuplicateKey(p.index));
            }
        }
        let mine = self.validators.iter().find(|p| p.index == self.me).ok_or(ConfigError::MeNotInSet(self.me))?;
        if mine.public_key != key.public() {
            return Err(ConfigError::KeyMismatch(self.me));
        }
        for (value, name) in [
            (self.max_frame, "max_frame"),
            (self.outbound_queue, "outbound_queue"),
            (self.inbound_queue, "inbound_queue"),
            (self.inbound_bytes, "inbound_bytes"),
            (self.max_pending_handshakes, "max_pending_handshakes"),
            (self.max_pending_handshakes_per_addr, "max_pending_handshakes_per_addr"),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if u32::try_from(self.max_frame).is_err() {
            return Err(ConfigError::FrameLimitTooLarge(self.max_frame));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> KeyPair {
        KeyPair::from_seed(&format!("cfg-{i}"))
    }

    fn set(n: u32) -> Vec<PeerConfig> {
        (0..n)
            .map(|i| PeerConfig {
                index: i,
                public_key: key(i).public(),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
            })
            .collect()
    }

    #[test]
    fn every_invalid_configuration_is_refused_with_its_reason() {
        let ok = NetworkConfig::new(Hash32([1; 32]), 0, set(3));
        assert_eq!(ok.validate(&key(0)), Ok(()));
        let mut dup_index = ok.clone();
        dup_index.validators[2].index = 1;
        assert_eq!(dup_index.validate(&key(0)), Err(ConfigError::DuplicateIndex(1)));
        let mut dup_key = ok.clone();
        dup_key.validators[2].public_key = key(1).public();
        assert_eq!(dup_key.validate(&key(0)), Err(ConfigError::DuplicateKey(2)));
        let absent = NetworkConfig { me: 7, ..ok.clone() };
        assert_eq!(absent.validate(&key(0)), Err(ConfigError::MeNotInSet(7)));
        assert_eq!(ok.validate(&key(1)), Err(ConfigError::KeyMismatch(0)));
        for (name, f) in [
            ("max_frame", (|c: &mut NetworkConfig| c.max_frame = 0) as fn(&mut NetworkConfig)),
            ("outbound_queue", |c| c.outbound_queue = 0),
            ("inbound_queue", |c| c.inbound_queue = 0),
            ("inbound_bytes", |c| c.inbound_bytes = 0),
            ("max_pending_handshakes", |c| c.max_pending_handshakes = 0),
            ("max_pending_handshakes_per_addr", |c| c.max_pending_handshakes_per_addr = 0),
        ] {
            let mut c = ok.clone();
            f(&mut c);
            assert_eq!(c.validate(&key(0)), Err(ConfigError::ZeroLimit(name)));
        }
        let huge = NetworkConfig { max_frame: u32::MAX as usize + 1, ..ok };
        assert_eq!(huge.validate(&key(0)), Err(ConfigError::FrameLimitTooLarge(u32::MAX as usize + 1)));
    }
}
