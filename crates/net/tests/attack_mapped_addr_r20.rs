//! Attack r20 on the pending-handshake pools (one per configured validator
//! IP address, the strangers' pool with a cap per address).
//!
//! Finding (ignored test): a node whose listening socket is an IPv6 one
//! that also takes IPv4 (a dual-stack `[::]` listener, or one bound to an
//! IPv4-mapped address) sees an IPv4 peer's address as `::ffff:a.b.c.d`,
//! and the pool lookup compares it with the configured `a.b.c.d` as it
//! is: no match, so the validator is served as a stranger — out of the
//! strangers' pool, under the strangers' per-address cap. Whatever holds
//! that cap or fills that pool keeps the validator out, though its own
//! pool has free slots: the guarantee that a validator can always get a
//! handshake slot does not hold for such a listener
//! (`a_validator_reaching_a_dual_stack_listener_draws_from_its_own_pool`).
//! The address wants `to_canonical()` before the lookup.
//!
//! Held up (passing tests): a dual-stack listener with no slot held
//! answers the dial (`a_dual_stack_listener_answers_a_dial_when_no_slot_is_held`,
//! the control); the same node listening on the plain IPv4
//! address gives the validator a slot of its own pool beside the same
//! silent connection (`a_validator_reaching_an_ipv4_listener_draws_from_its_own_pool`).
//!
//! Run them with `cargo test -p gridledger-net --test attack_mapped_addr_r20`
//! (`-- --ignored` for the finding).

mod common;
use common::*;

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const NET: Hash32 = Hash32([20; 32]);
const T: Duration = Duration::from_secs(20);

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-attack-r20-{i}"))
}

/// Node 0 on `listener`; validator 1 is configured at 127.0.0.1 (its
/// listener bound and never served). Four pending handshakes per pool,
/// one per stranger address; handshakes wait far longer than the test.
async fn node(listener: TcpListener) -> (Network, SocketAddr, TcpListener) {
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a0 = listener.local_addr().expect("addr");
    let set = peer_set(key, &[a0, l1.local_addr().expect("addr")]);
    let mut cfg = NetworkConfig::new(NET, 0, set);
    cfg.max_pending_handshakes = 4;
    cfg.max_pending_handshakes_per_addr = 1;
    cfg.handshake_timeout = Duration::from_secs(120);
    cfg.backoff_initial = Duration::from_secs(60);
    cfg.backoff_max = Duration::from_secs(60);
    let (n, _inbound) = Network::start_with_listener(cfg, key(0), listener).await.expect("start");
    (n, a0, l1)
}

/// Whether node 0 at `to` answers the first Noise message of a dial from
/// 127.0.0.1 — validator 1's address — with the second (it took the dial
/// into a handshake slot) rather than closing the connection (no slot).
async fn answers_a_dial(to: SocketAddr) -> bool {
    let mut hs = initiator(NET, &noise_static());
    let mut s = TcpStream::connect(to).await.expect("connect");
    let mut out = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut out).expect("msg 1");
    // A refused connection may already be closed: a failed write is a "no".
    if s.write_all(&(n as u16).to_be_bytes()).await.is_err() || s.write_all(&out[..n]).await.is_err() {
        return false;
    }
    let mut len = [0u8; 2];
    timeout(T, s.read_exact(&mut len)).await.expect("an answer or a close in time").is_ok()
}

async fn silent_connection_then_validator_dial(listener: TcpListener) -> bool {
    let (n0, a0, _l1) = node(listener).await;
    // A silent connection from 127.0.0.1 takes one pending slot.
    let _silent = TcpStream::connect(a0).await.expect("connect");
    let answered = answers_a_dial(a0).await;
    n0.shutdown().await;
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_reaching_an_ipv4_listener_draws_from_its_own_pool() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    assert!(
        silent_connection_then_validator_dial(l).await,
        "validator 1's address has a pool of 4: one silent connection leaves it room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_reaching_a_dual_stack_listener_draws_from_its_own_pool() {
    // An IPv6 socket taking IPv4 connections to 127.0.0.1, as a `[::]`
    // listener takes them on any address.
    let l = TcpListener::bind("[::ffff:127.0.0.1]:0").await.expect("bind an IPv4-mapped listener");
    assert!(
        silent_connection_then_validator_dial(l).await,
        "validator 1 (configured at 127.0.0.1) dialled node 0 and was closed at accept: its address, seen as \
         ::ffff:127.0.0.1, was served from the strangers' pool, whose per-address cap of 1 the silent connection \
         holds, not from its own pool of 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_listener_answers_a_dial_when_no_slot_is_held() {
    // The control for the finding: the mapped listener itself handshakes.
    let l = TcpListener::bind("[::ffff:127.0.0.1]:0").await.expect("bind an IPv4-mapped listener");
    let (n0, a0, _l1) = node(l).await;
    assert!(answers_a_dial(a0).await, "nothing holds a slot: the dial is answered");
    n0.shutdown().await;
}
