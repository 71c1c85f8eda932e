//! Hostile-client reproductions for the HTTP API (issue 9, items 3, 4, 6).
//! Each test asserts the secure behaviour and fails on the code it was
//! written against.

mod common;

use gridledger_node::rpc::RpcLimits;
use gridledger_node::{Node, NodeHandle};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn start_with(dir: &std::path::Path, limits: RpcLimits) -> NodeHandle {
    let cfg = common::single_validator_config(dir);
    Node::open(&cfg, gridledger_contracts::default_registry()).unwrap().with_rpc_limits(limits).spawn().unwrap()
}

const CHAIN_INFO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"}"#;

/// Connects to `to` from the loopback address `from` (127.0.0.0/8 is all local).
fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind(SocketAddr::from((from, 0)))?;
        let s = sock.connect(to).await?.into_std()?;
        s.set_nonblocking(false)?;
        Ok(s)
    })
}

/// Posts a complete request; the HTTP status, or the I/O error (a read
/// timeout of `wait` means the request was not answered).
fn post_within(addr: SocketAddr, from: [u8; 4], wait: Duration) -> std::io::Result<u16> {
    let mut s = connect_from(from, addr)?;
    s.set_read_timeout(Some(wait))?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{CHAIN_INFO}",
        CHAIN_INFO.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    resp.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(std::io::ErrorKind::UnexpectedEof.into())
}

/// Slowloris on the body readers: clients that send a request head with a
/// Content-Length and then nothing take every body-reader permit for a whole
/// `body_timeout` each, and the requests queued behind them wait with no
/// deadline. A complete request from another client must not wait behind
/// bodies that have not arrived. (Against a real `gridledger node` with the
/// default limits, 40 such sockets from one address delayed every other
/// request by 8-10 s, 250 sockets by 60 s.)
#[test]
fn attack_clients_that_send_no_body_do_not_delay_a_complete_request() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits { max_body_readers: 2, body_timeout: Duration::from_secs(60), ..RpcLimits::default() };
    let node = start_with(d.path(), limits);
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from([127, 0, 0, 2], node.addr).unwrap();
        write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n").unwrap();
        stalled.push(s);
    }
    // The heads are in; a complete request from someone else.
    std::thread::sleep(Duration::from_millis(300));
    let r = post_within(node.addr, [127, 0, 0, 1], Duration::from_secs(10));
    assert!(matches!(r, Ok(200)), "a complete request waited behind two clients that never sent their body: {r:?}");
    drop(stalled);
    node.shutdown();
}

/// One source address may take every connection slot: idle keep-alive
/// sockets from 127.0.0.2 hold all `max_connections` (each for the idle
/// timeout, renewable by one cheap request), and every other client is
/// closed at once. A per-address cap below `max_connections` keeps room for
/// others.
#[test]
fn attack_one_address_cannot_take_every_connection_slot() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits { max_connections: 16, ..RpcLimits::default() };
    let node = start_with(d.path(), limits);
    let mut hog = Vec::new();
    for _ in 0..16 {
        hog.push(connect_from([127, 0, 0, 2], node.addr).unwrap());
    }
    std::thread::sleep(Duration::from_millis(300));
    let r = post_within(node.addr, [127, 0, 0, 1], Duration::from_secs(10));
    assert!(matches!(r, Ok(200)), "one address holding 16 idle sockets locked everyone else out: {r:?}");
    drop(hog);
    node.shutdown();
}

/// The same for event streams: a subscriber that never reads stays open
/// forever (the SSE keep-alive comments fit in its socket buffer, so bytes
/// keep "moving" and the idle timeout never fires), so one address with
/// `max_subscribers` sockets shuts every other subscriber out.
#[test]
fn attack_one_address_cannot_take_every_event_subscription() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits { max_subscribers: 4, ..RpcLimits::default() };
    let node = start_with(d.path(), limits);
    let mut hog = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from([127, 0, 0, 2], node.addr).unwrap();
        write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        hog.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut s = connect_from([127, 0, 0, 1], node.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "a subscriber from another address was refused: {head}");
    drop(hog);
    node.shutdown();
}
