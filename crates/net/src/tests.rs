//! Tests that need the crate's insides: a Byzantine validator that completes
//! the handshake and then breaks the framing, and the tie-break rule.

use crate::handshake::{self, Directory, LocalIdentity};
use crate::wire::FrameSealer;
use crate::{LinkError, NetEvent, Network, NetworkConfig, PeerConfig};
use gridledger_core::{Hash32, KeyPair};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NET_ID: Hash32 = Hash32([42; 32]);
const T: Duration = Duration::from_secs(10);

async fn listeners(n: usize) -> Vec<TcpListener> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpListener::bind("127.0.0.1:0").await.expect("bind loopback"));
    }
    v
}

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-unit-{i}"))
}

#[test]
fn tie_break_is_the_same_on_both_ends() {
    use crate::network::tests_support::install_outcome;
    // Same remote process: the link dialled by the lower index wins, on
    // either end and in either arrival order.
    for (me, peer) in [(0u32, 1u32), (1, 0)] {
        let lower_dials = me < peer;
        for first_dialled_by_me in [true, false] {
            let second = !first_dialled_by_me;
            let (first_kept, second_kept) =
                install_outcome(me, peer, [(first_dialled_by_me, [1; 32]), (second, [1; 32])]);
            assert!(first_kept);
            // The winner in use at the end is the lower index's dial.
            let winner_is_second = second == lower_dials;
            assert_eq!(second_kept, winner_is_second, "me {me} first {first_dialled_by_me}");
        }
    }
    // A new process of the peer (new Noise key) whose link began later
    // replaces the old link.
    let (_, kept) = install_outcome(0, 1, [(true, [1; 32]), (false, [2; 32])]);
    assert!(kept);
}

#[test]
fn a_link_of_an_older_process_that_completes_late_is_never_put_in_use() {
    use crate::network::tests_support::{in_use_after_the_newest_ended, roles_after_begun};
    // Process [1; 32]'s link began first (id 0) but completes after the
    // newer process [2; 32]'s (id 1): the newer stays in use, the stale one
    // drains in the empty draining place, in either direction.
    for dialled_by_me in [true, false] {
        assert_eq!(roles_after_begun(&[(1, false, [2; 32]), (0, dialled_by_me, [1; 32])]), vec![0, 1]);
    }
    // Retired like any other link: it takes the draining place, and the
    // link draining before is cut; the one in use stays.
    let draining = [(1, true, [2; 32]), (2, false, [2; 32]), (0, false, [1; 32])];
    assert_eq!(roles_after_begun(&draining), vec![0, 2, 1]);
    // Every older process's late link is refused, not only the one just
    // replaced: a second stale link drains, cutting the first.
    assert_eq!(roles_after_begun(&[(5, false, [2; 32]), (3, false, [1; 32]), (4, false, [3; 32])]), vec![0, 2, 1]);
    // Staleness is judged against the newest process ever put in use, even
    // once its link has ended and none is in use.
    assert!(!in_use_after_the_newest_ended((1, [2; 32]), (0, [1; 32])));
    assert!(in_use_after_the_newest_ended((1, [2; 32]), (2, [1; 32])));
    // A third process whose link began after the newest one replaces it.
    assert_eq!(roles_after_begun(&[(1, false, [2; 32]), (6, false, [3; 32])]), vec![1, 0]);
}

#[test]
fn a_peer_keeps_at_most_one_retired_link_draining() {
    use crate::network::tests_support::roles_after;
    // A new process each dial: each link replaces the one in use, which
    // drains; the one draining before is cut.
    let fresh: Vec<(bool, [u8; 32])> = (0..4u8).map(|k| (false, [k; 32])).collect();
    assert_eq!(roles_after(&fresh), vec![2, 2, 1, 0]);
    // The same process dialling again and losing the tie-break (for node 0
    // the link it dialled wins): each loser drains, cutting the loser before.
    let losers = [(true, [9; 32]), (false, [9; 32]), (false, [9; 32]), (false, [9; 32])];
    assert_eq!(roles_after(&losers), vec![0, 2, 2, 1]);
    // An honest duplicate dial: one in use, one draining, nothing cut.
    assert_eq!(roles_after(&[(false, [9; 32]), (true, [9; 32])]), vec![1, 0]);
}

/// Validators 0..3 run real nodes; validator 3 is Byzantine: it holds its
/// real key, completes the handshake with node 0, then sends an oversize
/// frame, then (second link) bytes that do not decrypt. Node 0 drops each
/// link and reports it; its links to 1 and 2 keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byzantine_framing_drops_only_that_link() {
    let ls = listeners(4).await;
    let set: Vec<PeerConfig> = ls
        .iter()
        .enumerate()
        .map(|(i, l)| PeerConfig {
            index: i as u32,
            public_key: key(i as u32).public(),
            addr: l.local_addr().expect("addr"),
        })
        .collect();
    let mut ls = ls.into_iter();
    let mut nodes = Vec::new();
    for i in 0..3u32 {
        let mut cfg = NetworkConfig::new(NET_ID, i, set.clone());
        cfg.max_frame = 1024;
        cfg.handshake_timeout = Duration::from_millis(500);
        cfg.backoff_max = Duration::from_millis(300);
        let l = ls.next().expect("listener");
        nodes.push(Network::start_with_listener(cfg, key(i), l).await.expect("start"));
    }
    // Nobody listens for validator 3: its own node is the attacker below.
    drop(ls);
    let mut events = nodes[0].0.events();
    assert!(nodes[0].0.wait_connected(&[1, 2], T).await);

    let attacker = LocalIdentity::new(NET_ID, 3, key(3)).expect("noise key");
    let dir: Directory = set.iter().map(|p| (p.index, p.public_key)).collect();
    let node0 = set[0].addr;

    // Link 1: an authenticated oversize frame.
    let mut s = TcpStream::connect(node0).await.expect("connect");
    let auth = handshake::initiate(&mut s, &attacker, &dir, 0).await.expect("a real validator key authenticates");
    let mut sealer = FrameSealer::new(Arc::new(auth.transport));
    sealer.push_frame(&vec![7u8; 4096]);
    let wire = sealer.seal().expect("seal").to_vec();
    let _ = s.write_all(&wire).await;
    expect_link_failed(&mut events, |e| matches!(e, LinkError::FrameTooLarge { len: 4096, max: 1024 })).await;
    expect_closed(&mut s).await;

    // Link 2: authenticated, then garbage in a well-sized Noise message.
    let mut s = TcpStream::connect(node0).await.expect("connect");
    handshake::initiate(&mut s, &attacker, &dir, 0).await.expect("authenticates");
    let mut garbage = vec![0u8, 100];
    garbage.extend_from_slice(&[0x5a; 100]);
    let _ = s.write_all(&garbage).await;
    expect_link_failed(&mut events, |e| matches!(e, LinkError::Decrypt)).await;
    expect_closed(&mut s).await;

    // Unauthenticated garbage never gets a link at all.
    let mut s = TcpStream::connect(node0).await.expect("connect");
    let _ = s.write_all(&[0xff; 300]).await;
    expect_closed(&mut s).await;
    assert!(nodes[0].0.stats().refused_inbound >= 1);

    let st = nodes[0].0.peer_stats(3).expect("peer 3");
    assert_eq!(st.protocol_errors, 2);
    assert!(!st.connected);

    // The honest links are unaffected, both ways.
    for (from, to) in [(0usize, 1u32), (0, 2), (1, 0), (2, 0)] {
        nodes[from].0.send(to, vec![from as u8; 100]).expect("send");
    }
    let mut got0 = Vec::new();
    for _ in 0..2 {
        let (from, m) = tokio::time::timeout(T, nodes[0].1.recv()).await.expect("in time").expect("open");
        assert_eq!(m.as_ref(), &[from as u8; 100][..]);
        got0.push(from);
    }
    got0.sort();
    assert_eq!(got0, vec![1, 2]);
    for i in [1usize, 2] {
        let (from, _) = tokio::time::timeout(T, nodes[i].1.recv()).await.expect("in time").expect("open");
        assert_eq!(from, 0);
    }
    for (n, _) in nodes {
        n.shutdown().await;
    }
}

async fn expect_link_failed(
    events: &mut tokio::sync::broadcast::Receiver<NetEvent>,
    want: impl Fn(&LinkError) -> bool,
) {
    let found = tokio::time::timeout(T, async {
        loop {
            match events.recv().await {
                Ok(NetEvent::LinkFailed { peer: 3, error }) if want(&error) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(found, Ok(true), "expected a LinkFailed event");
}

/// The node closed the connection: reads end (EOF or reset) in time.
async fn expect_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(T, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection was not closed");
}
