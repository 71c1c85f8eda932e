//! Attack r18 on the receive path's frame cutter (`wire::FrameOpener`,
//! one scratch buffer per link, frames cut into exactly sized
//! allocations): frames whose lengths put the next frame's 4-byte header
//! at every offset around a Noise message boundary (split 1+3, 2+2, 3+1,
//! ending exactly at a message end), zero-length frames and frames
//! spanning several messages, sent back to back over a real link, all
//! arrive intact, each once. This held up: a passing test.

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Inbound, Network, NetworkConfig, PeerConfig};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(20);
/// Plaintext of one Noise transport message (65535 less the 16-byte tag).
const CHUNK: usize = 65535 - 16;

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-attack-r18-{i}"))
}

/// The frame numbered `idx` of `len` bytes: its number in the first four
/// bytes (when it has them), then a pattern of both.
fn frame(idx: u32, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|j| (j as u32).wrapping_mul(7).wrapping_add(idx.wrapping_mul(31)) as u8).collect();
    if len >= 4 {
        v[..4].copy_from_slice(&idx.to_le_bytes());
    }
    v
}

async fn start(set: &[PeerConfig], me: u32, l: TcpListener) -> (Network, Inbound) {
    let mut cfg = NetworkConfig::new(Hash32([18; 32]), me, set.to_vec());
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(300);
    cfg.inbound_bytes = 64 << 20;
    Network::start_with_listener(cfg, key(me), l).await.expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_with_headers_split_at_every_offset_arrive_intact_once() {
    let mut set = Vec::new();
    let mut ls = Vec::new();
    for i in 0..2u32 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        set.push(PeerConfig { index: i, public_key: key(i).public(), addr: l.local_addr().expect("addr") });
        ls.push(l);
    }
    let l1 = ls.pop().expect("l1");
    let l0 = ls.pop().expect("l0");
    let (n0, mut in0) = start(&set, 0, l0).await;
    let (n1, _in1) = start(&set, 1, l1).await;
    assert!(n1.wait_connected(&[0], T).await, "connected");
    // Lengths around one, two and three Noise messages' plaintext (less
    // the frame header), interleaved with tiny and empty frames.
    let mut lens = Vec::new();
    for base in [CHUNK - 4, 2 * CHUNK - 4, 3 * CHUNK - 8, CHUNK / 2] {
        for d in 0..=12usize {
            lens.push(base + d - 6);
            lens.push(d % 5);
            lens.push(0);
        }
    }
    let sent: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, l)| frame(i as u32, *l)).collect();
    for f in &sent {
        n1.send(0, f.clone()).expect("send");
    }
    // Frames of four bytes or more by their number; shorter ones by length.
    let mut want_big: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut want_small: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, f) in sent.iter().enumerate() {
        if f.len() >= 4 {
            want_big.insert(i as u32, f.clone());
        } else {
            *want_small.entry(f.len()).or_default() += 1;
        }
    }
    let mut got_big: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut got_small: BTreeMap<usize, usize> = BTreeMap::new();
    for _ in 0..sent.len() {
        let (from, m) = timeout(T, in0.recv()).await.expect("in time").expect("open");
        assert_eq!(from, 1);
        if m.len() >= 4 {
            let idx = u32::from_le_bytes(m[..4].try_into().expect("4 bytes"));
            assert!(got_big.insert(idx, m.to_vec()).is_none(), "frame {idx} twice");
        } else {
            *got_small.entry(m.len()).or_default() += 1;
        }
    }
    assert_eq!(got_small, want_small, "short and empty frames, each once");
    assert_eq!(got_big.len(), want_big.len());
    for (idx, f) in &want_big {
        assert!(got_big.get(idx) == Some(f), "frame {idx} ({} bytes) intact", f.len());
    }
    let st = n0.peer_stats(1).expect("peer");
    assert_eq!(st.protocol_errors, 0, "no link dropped for a protocol violation");
    n0.shutdown().await;
    n1.shutdown().await;
}
