//! Typed refusals of `Network::start` and `Network::send`, table-driven:
//! each invalid configuration is refused with its `ConfigError` before any
//! socket is bound, an occupied listen address is a `NetError::Bind`, and
//! an oversize message is a `SendError::TooLarge` that queues nothing.

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{ConfigError, NetError, Network, NetworkConfig, PeerConfig, SendError};
use std::net::SocketAddr;
use tokio::net::TcpListener;

const NET_ID: Hash32 = Hash32([9; 32]);

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-errors-{i}"))
}

fn set(addrs: &[SocketAddr]) -> Vec<PeerConfig> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| PeerConfig { index: i as u32, public_key: key(i as u32).public(), addr: *a })
        .collect()
}

#[tokio::test]
async fn invalid_configurations_are_refused_before_binding() {
    // Every node's address is a listener this test holds, so a start that
    // got as far as binding would fail with `Bind` instead of the config error.
    let held = [TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap()];
    let addrs: Vec<SocketAddr> = held.iter().map(|l| l.local_addr().unwrap()).collect();
    let good = || {
        let mut c = NetworkConfig::new(NET_ID, 0, set(&addrs));
        c.listen = addrs[0];
        c
    };
    let with = |f: &dyn Fn(&mut NetworkConfig)| {
        let mut c = good();
        f(&mut c);
        c
    };
    let rows: Vec<(NetworkConfig, KeyPair, ConfigError)> = vec![
        (with(&|c| c.validators[1].index = 0), key(0), ConfigError::DuplicateIndex(0)),
        (with(&|c| c.validators[1].public_key = key(0).public()), key(0), ConfigError::DuplicateKey(1)),
        (with(&|c| c.me = 5), key(0), ConfigError::MeNotInSet(5)),
        (good(), key(1), ConfigError::KeyMismatch(0)),
        (with(&|c| c.max_frame = 0), key(0), ConfigError::ZeroLimit("max_frame")),
        (with(&|c| c.outbound_queue = 0), key(0), ConfigError::ZeroLimit("outbound_queue")),
        (with(&|c| c.inbound_queue = 0), key(0), ConfigError::ZeroLimit("inbound_queue")),
        (with(&|c| c.inbound_bytes = 0), key(0), ConfigError::ZeroLimit("inbound_bytes")),
        (with(&|c| c.max_pending_handshakes = 0), key(0), ConfigError::ZeroLimit("max_pending_handshakes")),
        (
            with(&|c| c.max_frame = u32::MAX as usize + 1),
            key(0),
            ConfigError::FrameLimitTooLarge(u32::MAX as usize + 1),
        ),
    ];
    for (cfg, k, want) in rows {
        match Network::start(cfg, k).await {
            Err(NetError::Config(got)) => assert_eq!(got, want),
            Err(e) => panic!("expected NetError::Config({want:?}), got {e}"),
            Ok(_) => panic!("expected NetError::Config({want:?}), the network started"),
        }
    }
    // The same holds with a listener handed over.
    let extra = TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Network::start_with_listener(with(&|c| c.me = 5), key(0), extra).await {
        Err(NetError::Config(got)) => assert_eq!(got, ConfigError::MeNotInSet(5)),
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected a config error, the network started"),
    }
    // The held listeners were never contested: both still accept.
    for (l, a) in held.iter().zip(&addrs) {
        let (c, s) = tokio::join!(tokio::net::TcpStream::connect(a), l.accept());
        c.unwrap();
        s.unwrap();
    }

    // A valid configuration on an occupied address is a typed bind error
    // naming the address.
    match Network::start(good(), key(0)).await {
        Err(NetError::Bind { addr, .. }) => assert_eq!(addr, addrs[0]),
        Err(e) => panic!("expected NetError::Bind, got {e}"),
        Ok(_) => panic!("expected NetError::Bind, the network started"),
    }
}

#[tokio::test]
async fn oversize_and_misaddressed_messages_are_refused_and_queue_nothing() {
    let l0 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Peer 1 is configured but never started: messages for it stay queued.
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = [l0.local_addr().unwrap(), l1.local_addr().unwrap()];
    let mut cfg = NetworkConfig::new(NET_ID, 0, set(&addrs));
    cfg.max_frame = 16;
    let (net, _inbound) = Network::start_with_listener(cfg, key(0), l0).await.unwrap();
    let queued = |n: &Network| n.peer_stats(1).unwrap().queued;
    assert_eq!(queued(&net), 0);

    assert_eq!(net.send(1, vec![0u8; 17]), Err(SendError::TooLarge { len: 17, max: 16 }));
    assert_eq!(net.broadcast(vec![0u8; 1000]), Err(SendError::TooLarge { len: 1000, max: 16 }));
    assert_eq!(net.send(7, vec![0u8; 3]), Err(SendError::UnknownPeer(7)));
    assert_eq!(queued(&net), 0, "a refused message is not queued");

    // At the limit the message is accepted (the refusal is not vacuous).
    assert_eq!(net.send(1, vec![0u8; 16]), Ok(()));
    assert_eq!(queued(&net), 1);
    net.shutdown().await;
    drop(l1);
}
