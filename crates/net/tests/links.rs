//! Loopback tests of `Network`: full mesh, refusal of outsiders, restart and
//! reconnect, and a slow receiver that must not hold up the others. Every
//! wait is bounded; every test shuts its nodes down.

use bytes::Bytes;
use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{HandshakeError, Inbound, NetEvent, Network, NetworkConfig, PeerConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::timeout;

const NET_ID: Hash32 = Hash32([7; 32]);
const T: Duration = Duration::from_secs(10);

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-test-{i}"))
}

struct Cluster {
    set: Vec<PeerConfig>,
    listeners: Vec<Option<TcpListener>>,
}

async fn cluster(n: u32) -> Cluster {
    init_logs();
    let mut set = Vec::new();
    let mut listeners = Vec::new();
    for i in 0..n {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        set.push(PeerConfig { index: i, public_key: key(i).public(), addr: l.local_addr().expect("addr") });
        listeners.push(Some(l));
    }
    Cluster { set, listeners }
}

fn config(set: &[PeerConfig], me: u32) -> NetworkConfig {
    let mut cfg = NetworkConfig::new(NET_ID, me, set.to_vec());
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(300);
    cfg
}

impl Cluster {
    async fn start(&mut self, me: u32, tweak: impl FnOnce(&mut NetworkConfig)) -> (Network, Inbound) {
        let mut cfg = config(&self.set, me);
        tweak(&mut cfg);
        let l = self.listeners[me as usize].take().expect("listener unused");
        Network::start_with_listener(cfg, key(me), l).await.expect("start")
    }
}

async fn recv(inb: &mut Inbound) -> (u32, Bytes) {
    timeout(T, inb.recv()).await.expect("message in time").expect("network open")
}

fn others(n: u32, me: u32) -> Vec<u32> {
    (0..n).filter(|i| *i != me).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_form_a_mesh_and_exchange_messages() {
    let n = 4u32;
    let mut c = cluster(n).await;
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(c.start(i, |_| {}).await);
    }
    for (i, (net, _)) in nodes.iter().enumerate() {
        assert!(net.wait_connected(&others(n, i as u32), T).await, "node {i} meshed");
    }
    const PER_PAIR: u32 = 50;
    for (i, (net, _)) in nodes.iter().enumerate() {
        for j in others(n, i as u32) {
            for k in 0..PER_PAIR {
                net.send(j, format!("{i}->{j}#{k}").into_bytes()).expect("send");
            }
        }
        net.broadcast(format!("bcast from {i}").into_bytes()).expect("broadcast");
    }
    // A message spanning many Noise messages (64 KiB limit each).
    let big: Vec<u8> = (0..1_000_000u32).map(|x| x as u8).collect();
    nodes[3].0.send(0, big.clone()).expect("send big");

    for (i, (_, inb)) in nodes.iter_mut().enumerate() {
        let expect = (n - 1) * (PER_PAIR + 1) + u32::from(i == 0);
        let mut seqs: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for _ in 0..expect {
            let (from, m) = recv(inb).await;
            if m.len() == big.len() {
                assert_eq!((i, from), (0, 3));
                assert!(m.as_ref() == big.as_slice(), "big message intact");
                continue;
            }
            let s = String::from_utf8(m.to_vec()).expect("utf8");
            if let Some(rest) = s.strip_prefix("bcast from ") {
                assert_eq!(rest, from.to_string());
                continue;
            }
            let (head, seq) = s.split_once('#').expect("numbered");
            assert_eq!(head, format!("{from}->{i}"));
            seqs.entry(from).or_default().push(seq.parse().expect("seq"));
        }
        // Each message exactly once. (Order holds per link; only while a
        // duplicate-dial tie-break settles may two links interleave.)
        for s in seqs.values_mut() {
            s.sort_unstable();
            assert_eq!(*s, (0..PER_PAIR).collect::<Vec<_>>());
        }
    }
    let st = nodes[1].0.peer_stats(0).expect("peer 0");
    assert_eq!(st.received_messages, u64::from(PER_PAIR) + 1);
    assert_eq!(st.dropped_outbound, 0);
    assert!(nodes[1]
        .0
        .stats()
        .to_prometheus()
        .contains("gridledger_net_peer_sent_messages_total{me=\"1\",peer=\"0\"} 51"));
    for (net, _) in nodes {
        net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsider_identity_is_refused() {
    let mut c = cluster(3).await;
    let a = c.start(0, |_| {}).await;
    let b = c.start(1, |_| {}).await;
    let mut events = a.0.events();
    // The outsider believes in a set that includes itself as index 2 with
    // its own key; node 0 and 1 know index 2 by another key.
    let outsider_key = KeyPair::from_seed("outsider");
    let mut fake_set = c.set.clone();
    fake_set[2].public_key = outsider_key.public();
    let l = c.listeners[2].take().expect("listener");
    let mut cfg = config(&fake_set, 2);
    cfg.backoff_initial = Duration::from_millis(50);
    let (outsider, _) = Network::start_with_listener(cfg, outsider_key, l).await.expect("start");
    // And a node claiming an index the set does not have at all.
    let stranger_key = KeyPair::from_seed("stranger");
    let mut stranger_set = c.set[..2].to_vec();
    stranger_set.push(PeerConfig {
        index: 9,
        public_key: stranger_key.public(),
        addr: "127.0.0.1:1".parse().expect("addr"),
    });
    let mut cfg = config(&stranger_set, 9);
    cfg.listen = "127.0.0.1:0".parse().expect("addr");
    let (stranger, _) = Network::start(cfg, stranger_key).await.expect("start");

    let (mut mismatch, mut unknown) = (false, false);
    timeout(T, async {
        while !(mismatch && unknown) {
            match events.recv().await {
                Ok(NetEvent::Refused { error, .. }) => match error {
                    HandshakeError::KeyMismatch { index: 2 } => mismatch = true,
                    HandshakeError::UnknownValidator { index: 9 } => unknown = true,
                    _ => {}
                },
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .expect("both refusals reported");
    // (An initiator finishes XX before the responder has checked it, so the
    // outsiders may briefly think they are linked; the validators never do.)
    assert_eq!(a.0.peer_stats(2).expect("peer 2").connections, 0);
    assert_eq!(b.0.peer_stats(2).expect("peer 2").connections, 0);
    // The stranger can only be refused inbound (nobody dials index 9).
    assert!(a.0.stats().refused_inbound >= 1);
    // The honest pair is unaffected.
    assert!(a.0.wait_connected(&[1], T).await);
    for net in [a.0, b.0, outsider, stranger] {
        net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_peer_is_reconnected_after_restart() {
    let n = 4u32;
    let mut c = cluster(n).await;
    // The test keeps a second handle on node 3's listening socket, so the
    // port stays bound while node 3 is down and the restarted node is handed
    // the same socket: no re-binding, no window for another process.
    let kept = {
        let l = c.listeners[3].take().expect("listener").into_std().expect("std listener");
        let kept = l.try_clone().expect("dup listener");
        c.listeners[3] = Some(TcpListener::from_std(l).expect("tokio listener"));
        kept
    };
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(Some(c.start(i, |_| {}).await));
    }
    for i in 0..n {
        let net = &nodes[i as usize].as_ref().expect("node").0;
        assert!(net.wait_connected(&others(n, i), T).await);
    }
    // Kill node 3.
    let (net3, _) = nodes[3].take().expect("node 3");
    net3.shutdown().await;
    let down = timeout(T, async {
        loop {
            if (0..3).all(|i| !nodes[i].as_ref().expect("node").0.is_connected(3)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(down.is_ok(), "peers noticed node 3 is gone");
    // Messages for the dead node wait in its (bounded) queue.
    nodes[0].as_ref().expect("node").0.send(3, b"queued while down".to_vec()).expect("send");

    // Restart node 3 on the same socket, with the same key.
    let mut cfg = config(&c.set, 3);
    cfg.listen = c.set[3].addr;
    let listener = TcpListener::from_std(kept).expect("tokio listener");
    assert_eq!(listener.local_addr().expect("addr"), c.set[3].addr);
    let (net3, mut inb3) = Network::start_with_listener(cfg, key(3), listener).await.expect("restart");
    assert!(net3.wait_connected(&[0, 1, 2], T).await);
    for (net, _) in nodes.iter().flatten() {
        assert!(net.wait_connected(&[3], T).await);
    }
    // Messages flow again. A message written in the instant its link's far
    // end dies is lost (TCP cannot tell the sender), e.g. on a link the old
    // process of node 3 finished dialling as it was killed, so send until
    // heard, bounded.
    let mut heard = BTreeSet::new();
    let flowing = timeout(T, async {
        while heard.len() < 3 {
            for i in 0..3u32 {
                if !heard.contains(&i) {
                    let net = &nodes[i as usize].as_ref().expect("node").0;
                    net.send(3, b"hello again".to_vec()).expect("send");
                }
            }
            let until = tokio::time::Instant::now() + Duration::from_millis(100);
            while let Ok(Some((from, m))) = tokio::time::timeout_at(until, inb3.recv()).await {
                if m.as_ref() == b"hello again" {
                    heard.insert(from);
                }
            }
        }
    })
    .await;
    assert!(flowing.is_ok(), "node 3 heard only from {heard:?}");
    // What was queued while node 3 was down has left the queue.
    assert_eq!(nodes[0].as_ref().expect("node").0.peer_stats(3).expect("peer").queued, 0);
    net3.broadcast(b"back".to_vec()).expect("broadcast");
    for (i, (net, inb)) in nodes.iter_mut().flatten().enumerate() {
        let (from, m) = recv(inb).await;
        assert_eq!((from, m.as_ref()), (3, &b"back"[..]), "node {i}");
        assert!(net.peer_stats(3).expect("peer").reconnects >= 1);
    }
    net3.shutdown().await;
    for (net, _) in nodes.into_iter().flatten() {
        net.shutdown().await;
    }
}

/// Node 2 never reads. Node 0 floods it with far more than the socket
/// buffers hold while sending a paced stream to node 1: node 1 gets every
/// message, node 2's queue at node 0 stays at its bound and drops the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_receiver_does_not_block_the_others() {
    const QUEUE: usize = 64;
    const ROUNDS: usize = 800;
    let mut c = cluster(3).await;
    let tweak = |cfg: &mut NetworkConfig| {
        cfg.outbound_queue = QUEUE;
        cfg.inbound_queue = 8;
    };
    let (a, _ia) = c.start(0, tweak).await;
    let (_b, mut ib) = c.start(1, tweak).await;
    let (slow, _slow_inbound_never_read) = c.start(2, tweak).await;
    assert!(a.wait_connected(&[1, 2], T).await);

    let chunk = vec![0xAB; 64 * 1024];
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < ROUNDS {
            let (from, m) = recv(&mut ib).await;
            assert_eq!(from, 0);
            let m: [u8; 4] = m.as_ref().try_into().expect("4 bytes");
            seen.push(u32::from_be_bytes(m));
        }
        seen.sort_unstable();
        seen == (0..ROUNDS as u32).collect::<Vec<_>>()
    });
    let mut max_queued = 0;
    let flood = timeout(T, async {
        for r in 0..ROUNDS {
            a.send(2, chunk.clone()).expect("send to slow");
            a.send(1, (r as u32).to_be_bytes().to_vec()).expect("send to 1");
            max_queued = max_queued.max(a.peer_stats(2).expect("peer").queued);
            // Pace the healthy stream so only the slow peer's queue overflows.
            while a.peer_stats(1).expect("peer").queued > QUEUE / 2 {
                tokio::task::yield_now().await;
            }
        }
    })
    .await;
    assert!(flood.is_ok(), "sending never blocks on the slow peer");
    assert!(timeout(T, reader).await.expect("in time").expect("reader"), "node 1 got every message exactly once");
    let st2 = a.peer_stats(2).expect("peer 2");
    let st1 = a.peer_stats(1).expect("peer 1");
    assert!(max_queued <= QUEUE && st2.queued <= QUEUE);
    assert!(st2.dropped_outbound > 0, "the slow peer's overflow was dropped: {st2:?}");
    assert_eq!(st1.dropped_outbound, 0);
    assert!(st2.sent_bytes < (ROUNDS * chunk.len()) as u64);
    slow.shutdown().await;
    a.shutdown().await;
}

/// A peer that sends faster than this node reads can make it buffer at
/// most `inbound_bytes` (plus the frame each link reader is admitting),
/// however many messages the queue would take; nothing is lost once
/// reading resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_buffered_inbound_bytes_are_bounded() {
    let mut c = cluster(2).await;
    let (n0, mut in0) = c
        .start(0, |cfg| {
            cfg.inbound_queue = 1_000;
            cfg.inbound_bytes = 1 << 20;
        })
        .await;
    let (n1, _in1) = c.start(1, |_| {}).await;
    assert!(n1.wait_connected(&[0], T).await);
    const FRAMES: usize = 40;
    const SIZE: usize = 256 << 10;
    for k in 0..FRAMES {
        n1.send(0, vec![k as u8; SIZE]).expect("send");
    }
    // Wait until the budget is used up (4 frames queued).
    let started = tokio::time::Instant::now();
    while n0.peer_stats(1).expect("peer").received_messages < 4 {
        assert!(started.elapsed() < T, "frames arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Reading stops: 4 frames fill the budget, and a frame is admitted
    // against it before its body is read, so no link of the peer (two while
    // a duplicate dial settles) holds one more.
    for _ in 0..30 {
        let got = n0.peer_stats(1).expect("peer").received_messages;
        assert!(got <= 4, "{got} of {FRAMES} frames read while the budget holds 4 of {SIZE} bytes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every frame arrives once (two links may interleave while a duplicate
    // dial settles, so compare as a set).
    let mut got = Vec::new();
    for _ in 0..FRAMES {
        let (from, m) = recv(&mut in0).await;
        assert_eq!((from, m.len()), (1, SIZE));
        got.push(m[0]);
    }
    got.sort_unstable();
    assert_eq!(got, (0..FRAMES as u8).collect::<Vec<_>>());
    n0.shutdown().await;
    n1.shutdown().await;
}

/// Injected faults: a blocked link drops what arrives, seeded loss drops a
/// share, delay holds frames back; healing restores delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_link_faults_block_drop_and_delay() {
    use gridledger_net::LinkFaults;
    let mut c = cluster(2).await;
    let (n0, mut in0) = c.start(0, |_| {}).await;
    let (n1, _in1) = c.start(1, |_| {}).await;
    assert!(n0.wait_connected(&[1], T).await);
    assert!(matches!(n0.set_link_faults(9, LinkFaults::default()), Err(gridledger_net::SendError::UnknownPeer(9))));

    n0.set_link_faults(1, LinkFaults { blocked: true, ..LinkFaults::default() }).expect("peer");
    for k in 0..10u8 {
        n1.send(0, vec![k]).expect("send");
    }
    let started = tokio::time::Instant::now();
    while n0.peer_stats(1).expect("peer").dropped_inbound < 10 {
        assert!(started.elapsed() < T, "blocked frames are read and dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    n0.set_link_faults(1, LinkFaults { loss_per_million: 500_000, ..LinkFaults::default() }).expect("peer");
    for k in 0..200u8 {
        n1.send(0, vec![1, k]).expect("send");
    }
    n1.send(0, b"end".to_vec()).expect("send");
    let mut got = 0;
    // The marker itself may be lost: resend it until it arrives.
    loop {
        match timeout(Duration::from_millis(200), in0.recv()).await {
            Ok(Some((_, m))) if m.as_ref() == b"end" => break,
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("network closed"),
            Err(_) => n1.send(0, b"end".to_vec()).expect("send"),
        }
    }
    assert!(got > 0 && got < 200, "about half of 200 arrive, got {got}");

    let delay = Duration::from_millis(150);
    n0.set_link_faults(1, LinkFaults { delay, ..LinkFaults::default() }).expect("peer");
    let sent = tokio::time::Instant::now();
    n1.send(0, b"late".to_vec()).expect("send");
    loop {
        let (_, m) = recv(&mut in0).await;
        if m.as_ref() == b"late" {
            break;
        }
    }
    assert!(sent.elapsed() >= delay);

    n0.set_link_faults(1, LinkFaults::default()).expect("peer");
    n1.send(0, b"healed".to_vec()).expect("send");
    assert_eq!(recv(&mut in0).await.1.as_ref(), b"healed");
    n0.shutdown().await;
    n1.shutdown().await;
}

/// 300 sockets that connect and say nothing: each is refused or times out
/// in the handshake, and a real validator still links up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_unauthenticated_sockets_time_out_and_do_not_starve_validator_links() {
    let mut c = cluster(2).await;
    let (n0, _in0) = c
        .start(0, |cfg| {
            cfg.handshake_timeout = Duration::from_millis(300);
            cfg.max_pending_handshakes = 8;
        })
        .await;
    let mut events = n0.events();
    let addr = n0.local_addr();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    // A timeout is reported as such, with no peer (inbound).
    let timed_out = timeout(T, async {
        loop {
            match events.recv().await {
                Ok(NetEvent::Refused { peer: None, error: HandshakeError::Timeout, .. }) => return,
                Ok(_) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await;
    assert!(timed_out.is_ok(), "an idle handshake times out");
    let (n1, _in1) = c.start(1, |_| {}).await;
    assert!(n1.wait_connected(&[0], T).await, "a validator links up despite 300 idle sockets");
    assert!(n0.stats().refused_inbound >= 292, "beyond 8 pending, sockets are refused at once");
    drop(idle);
    n0.shutdown().await;
    n1.shutdown().await;
}

/// One stranger's address holding never-handshaking sockets (with a long
/// handshake timeout) cannot take the pending-handshake slots: it is capped
/// per address, and a validator's address draws from its own pool, so a
/// validator still links up at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_strangers_address_cannot_keep_a_validator_from_rejoining() {
    let mut c = cluster(2).await;
    let (n0, _in0) = c
        .start(0, |cfg| {
            cfg.handshake_timeout = Duration::from_secs(120);
            cfg.max_pending_handshakes = 8;
            cfg.max_pending_handshakes_per_addr = 3;
        })
        .await;
    let addr = n0.local_addr();
    let mut hog = Vec::new();
    for _ in 0..50 {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(std::net::SocketAddr::from(([127, 0, 0, 2], 0))).expect("bind 127.0.0.2");
        hog.push(s.connect(addr).await.expect("connect"));
    }
    // Every socket beyond the per-address cap is closed at once.
    let refused = timeout(T, async {
        while n0.stats().refused_inbound < 47 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "beyond 3 pending from one address, sockets are refused: {}", n0.stats().refused_inbound);
    let (n1, _in1) = c.start(1, |_| {}).await;
    assert!(n1.wait_connected(&[0], T).await, "a validator links up while a stranger holds its pending handshakes");
    assert_eq!(n0.stats().refused_inbound, 47, "the validator's own connection was not refused");
    drop(hog);
    n0.shutdown().await;
    n1.shutdown().await;
}
