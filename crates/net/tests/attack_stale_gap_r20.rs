//! Attack r20 on the stale-dial rule (`Peer::install`: a link of another
//! process whose handshake began before the newest link put in use is
//! never put in use), in the order its docs name as the one it cannot
//! see: a dial of this node waiting in a listening socket that outlives
//! the peer's process (a listener handed over by a parent, as
//! `GRIDLEDGER_P2P_FD` does), answered by the peer's next process after the
//! old one dialled here.
//!
//! Held up (passing test): the answered dial is taken for stale, but the
//! cut lasts only until this node's next dial — every dial draws a new,
//! higher link id — even when the new process's own dials never get
//! through: node 0's message reaches the new process
//! (`a_dial_answered_from_a_handed_over_listener_links_up_on_the_next_dial`).
//!
//! Run it with `cargo test -p gridledger-net --test attack_stale_gap_r20`.

mod common;
use common::*;

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const NET: Hash32 = Hash32([21; 32]);
const T: Duration = Duration::from_secs(20);

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-attack-r20-gap-{i}"))
}

/// Validator `me`'s process with a fresh Noise static key dials `to` and
/// completes the handshake; the stream is returned (dropping it is the
/// process dying).
async fn raw_dial(to: SocketAddr, me: u32) -> TcpStream {
    Raw::dial(to, NET, me, key, &noise_static()).await.s
}

fn config(me: u32, a0: SocketAddr, a1: SocketAddr) -> NetworkConfig {
    let mut cfg = NetworkConfig::new(NET, me, peer_set(key, &[a0, a1]));
    // A pending dial outlives the old process and waits for the new one.
    cfg.handshake_timeout = Duration::from_secs(20);
    cfg.backoff_initial = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(200);
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dial_answered_from_a_handed_over_listener_links_up_on_the_next_dial() {
    // Validator 1's listening socket, held across its processes.
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a1 = l1.local_addr().expect("addr");
    let l0 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a0 = l0.local_addr().expect("addr");
    // Node 0 starts and dials validator 1: the dial waits in l1's backlog.
    let (n0, _in0) = Network::start_with_listener(config(0, a0, a1), key(0), l0).await.expect("start");
    settle().await;
    // Validator 1's old process dials node 0 (a link that began later than
    // node 0's pending dial), links up, and dies.
    let old = raw_dial(a0, 1).await;
    assert!(n0.wait_connected(&[1], T).await, "the old process linked up");
    drop(old);
    settle().await;
    // Its new process serves the same listener: it answers node 0's pending
    // dial (taken for stale at node 0). Its own dials go to an address
    // that never answers, so only node 0's next dial can link them.
    let nowhere = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cfg1 = config(1, nowhere.local_addr().expect("addr"), a1);
    let (n1, mut in1) = Network::start_with_listener(cfg1, key(1), l1).await.expect("start the new process");
    n0.send(1, b"after the restart".to_vec()).expect("queued");
    let got = timeout(T, in1.recv()).await.expect("node 0's message reaches the new process in time");
    assert_eq!(got.map(|(from, m)| (from, m.to_vec())), Some((0, b"after the restart".to_vec())));
    // The order under test did happen: the new process put two links from
    // node 0 in use — the answered pending dial (stale at node 0) and node
    // 0's next dial, which carried the message.
    assert_eq!(
        n1.peer_stats(0).map(|s| s.connections),
        Some(2),
        "the pending dial was answered, then node 0 dialled again"
    );
    n0.shutdown().await;
    n1.shutdown().await;
}
