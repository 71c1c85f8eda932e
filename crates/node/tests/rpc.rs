//! The JSON-RPC API against a live in-process node: every malformed request
//! gets a JSON-RPC error and the node keeps serving; transactions, blocks,
//! accounts, proofs, events and metrics.

use gridledger_core::{Amount, Hash32, Signature};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::ChainConfig;
use gridledger_node::config::write_key;
use gridledger_node::rpc::RpcLimits;
use gridledger_node::{Node, NodeConfig, NodeHandle, RpcClient, RpcError};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path) -> NodeHandle {
    start_with(dir, RpcLimits::default())
}

fn start_with(dir: &std::path::Path, limits: RpcLimits) -> NodeHandle {
    start_full(dir, limits, ChainConfig::default(), 20)
}

fn start_full(dir: &std::path::Path, limits: RpcLimits, chain: ChainConfig, block_interval_ms: u64) -> NodeHandle {
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), std::slice::from_ref(&validator));
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    write_key(&dir.join("validator.key"), &validator).unwrap();
    let cfg = NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms,
        chain,
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
        consensus: Default::default(),
        lbft: Default::default(),
    };
    Node::open(&cfg, gridledger_contracts::default_registry()).unwrap().with_rpc_limits(limits).spawn().unwrap()
}

/// Posts `body` on a fresh connection; the HTTP status and the JSON answer.
fn try_post(addr: SocketAddr, body: &str) -> std::io::Result<(u16, Value)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn raw_post(addr: SocketAddr, body: &str) -> Value {
    try_post(addr, body).unwrap().1
}

const CHAIN_INFO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"}"#;

/// Whether the server closed `s` (end of stream or reset) rather than
/// leaving it open until the read timed out.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 408 before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Retries `CHAIN_INFO` until it is answered (a readiness loop, not a timing assumption).
fn eventually_served(addr: SocketAddr) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok((200, v)) = try_post(addr, CHAIN_INFO) {
            if v["result"]["chain_id"] == 1 {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or(0)
}

#[test]
fn malformed_requests_get_errors_and_the_node_keeps_serving() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let a = node.addr;
    assert_eq!(code(&raw_post(a, "{not json")), -32700);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"1.0","id":1,"method":"gl_chainInfo"}"#)), -32600);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":7}"#)), -32600);
    assert_eq!(code(&raw_post(a, "[]")), -32600);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_nope"}"#)), -32601);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_getReceipt","params":["0x12"]}"#)), -32602);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_getReceipt","params":{"a":1}}"#)), -32602);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_getBlock","params":[-1]}"#)), -32602);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_getEvents","params":[5,1]}"#)), -32602);
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_sendTransaction","params":["zz"]}"#)), -32602);
    // Extra positional parameters are refused, not silently ignored.
    let v = raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_getBlock","params":["latest", true]}"#);
    assert_eq!(code(&v), -32602, "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or("").contains("at most 1"), "{v}");
    assert_eq!(code(&raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo","params":[1]}"#)), -32602);
    let v = raw_post(a, r#"{"jsonrpc":"2.0","id":1,"method":"gl_sendTransaction","params":["00ff"]}"#);
    assert_eq!(code(&v), -32000);
    assert_eq!(v["error"]["data"]["kind"], "undecodable");
    // A batch answers each member.
    let v = raw_post(a, r#"[{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"},{"jsonrpc":"2.0","id":2,"method":"x"}]"#);
    assert_eq!(v[0]["result"]["chain_id"], 1);
    assert_eq!(v[1]["error"]["code"], -32601);
    let c = RpcClient::new(&node.url());
    assert_eq!(c.get_text("/health").unwrap(), "ok");
    assert!(c.height().is_ok());
}

#[test]
fn transactions_flow_through_the_api() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let c = RpcClient::new(&node.url());
    let (k, to) = (dev_key(0), dev_key(1).address());

    let mut bad = transfer(&k, 1, 0, to, Amount(5), Amount(1));
    bad.signature = Signature([1u8; 64]);
    match c.send(&bad) {
        Err(RpcError::Remote { code: -32000, kind: Some(k), .. }) => assert_eq!(k, "bad_signature"),
        other => panic!("{other:?}"),
    }
    match c.send(&transfer(&k, 1, 3, to, Amount(5), Amount(1))) {
        Err(RpcError::Remote { kind: Some(k), .. }) => assert_eq!(k, "nonce_gap"),
        other => panic!("{other:?}"),
    }

    let h = c.send(&transfer(&k, 1, 0, to, Amount(5), Amount(1))).unwrap();
    let r = c.wait_receipt(&h, Duration::from_secs(10)).unwrap();
    assert_eq!(r["status"], "success");
    let height = r["height"].as_u64().unwrap();
    let acct = c.account(&to).unwrap();
    assert_eq!(acct["balance"], "1000000005");
    assert_eq!(c.account(&k.address()).unwrap()["nonce"], 1);

    let tx = c.call("gl_getTransaction", json!([h])).unwrap();
    assert_eq!(tx["height"].as_u64(), Some(height));
    let b = c.call("gl_getBlock", json!([height])).unwrap();
    assert!(b["transactions"].as_array().unwrap().iter().any(|x| x == &json!(h)));
    let p = c.call("gl_getTxProof", json!([h])).unwrap();
    let proof: gridledger_core::MerkleProof = serde_json::from_value(p["proof"].clone()).unwrap();
    assert!(proof.verify(&h, &Hash32::from_hex(p["tx_root"].as_str().unwrap()).unwrap()));
    assert!(c.call("gl_getReceipt", json!([Hash32([3u8; 32])])).unwrap().is_null());

    let ev = c.call("gl_getEvents", json!([height, height])).unwrap();
    assert_eq!(ev[0]["events"][0]["event"]["name"], "transfer");

    let m = c.get_text("/metrics").unwrap();
    assert!(m.contains("gridledger_txs_committed_total 1"), "{m}");
    assert!(m.contains("gridledger_txs_rejected_total 2"), "{m}");
}

#[test]
fn event_stream_replays_and_follows_blocks() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let c = RpcClient::new(&node.url());
    let h = c.send(&transfer(&dev_key(2), 1, 0, dev_key(3).address(), Amount(9), Amount(1))).unwrap();
    c.wait_receipt(&h, Duration::from_secs(10)).unwrap();

    let mut s = std::net::TcpStream::connect(node.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /events?from=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut lines = BufReader::new(s).lines();
    let mut seen = Vec::new();
    // The replayed block, then a live one after another transfer.
    let mut sent_live = false;
    while seen.len() < 2 {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).unwrap();
            seen.push(v["events"][0]["tx_hash"].as_str().unwrap().to_string());
            if !sent_live {
                sent_live = true;
                c.send(&transfer(&dev_key(2), 1, 1, dev_key(3).address(), Amount(9), Amount(1))).unwrap();
            }
        }
    }
    assert_eq!(seen[0], h.to_string());
    assert_ne!(seen[1], seen[0]);
}

#[test]
fn a_two_megabyte_batch_of_a_million_entries_is_refused_unparsed() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let body = format!("[{}1]", "1,".repeat(999_999));
    assert!(body.len() < 2_100_000);
    let v = raw_post(node.addr, &body);
    assert_eq!(code(&v), -32600, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON values"), "{v}");
    assert_eq!(code(&raw_post(node.addr, CHAIN_INFO)), 0);
    let m = RpcClient::new(&node.url()).get_text("/metrics").unwrap();
    assert!(m.contains("gridledger_rpc_requests_refused_total 1"), "{m}");
    // Nothing was dispatched: only the chain-info call and the metrics count.
    assert!(m.contains("gridledger_rpc_requests_total 1\n"), "{m}");
}

#[test]
fn batches_are_answered_up_to_the_entry_limit_and_refused_beyond() {
    let d = tempfile::tempdir().unwrap();
    let node = start_with(d.path(), RpcLimits { max_batch: 20, ..RpcLimits::default() });
    let batch = |n: usize| format!("[{}]", vec![CHAIN_INFO; n].join(","));
    let v = raw_post(node.addr, &batch(20));
    assert_eq!(v.as_array().map(Vec::len), Some(20));
    assert!(v.as_array().unwrap().iter().all(|r| r["result"]["chain_id"] == 1));
    let v = raw_post(node.addr, &batch(21));
    assert_eq!(code(&v), -32600, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("batch exceeds 20"), "{v}");
}

#[test]
fn a_response_over_the_size_limit_is_an_error_not_a_huge_answer() {
    let d = tempfile::tempdir().unwrap();
    let node = start_with(d.path(), RpcLimits { max_response: 4_000, ..RpcLimits::default() });
    let one = raw_post(node.addr, CHAIN_INFO);
    let size = one.to_string().len();
    assert!(size < 4_000);
    let n = 4_000 / size + 2;
    let v = raw_post(node.addr, &format!("[{}]", vec![CHAIN_INFO; n].join(",")));
    assert_eq!(code(&v), -32008, "{v}");
}

#[test]
fn a_body_over_the_limit_gets_413_and_a_json_rpc_error() {
    let d = tempfile::tempdir().unwrap();
    let node = start_with(d.path(), RpcLimits { max_body: 1_024, ..RpcLimits::default() });
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo","pad":"{}"}}"#, "x".repeat(2_000));
    let (status, v) = try_post(node.addr, &big).unwrap();
    assert_eq!(status, 413);
    assert_eq!(code(&v), -32600, "{v}");
    assert_eq!(try_post(node.addr, CHAIN_INFO).unwrap().0, 200);
}

#[test]
fn send_transactions_answers_per_item_and_bounds_the_list() {
    let d = tempfile::tempdir().unwrap();
    let node = start_with(d.path(), RpcLimits { max_send_txs: 3, ..RpcLimits::default() });
    let c = RpcClient::new(&node.url());
    let (k, to) = (dev_key(0), dev_key(1).address());
    let good = transfer(&k, 1, 0, to, Amount(5), Amount(1));
    let mut bad = transfer(&k, 1, 1, to, Amount(5), Amount(1));
    bad.signature = Signature([1u8; 64]);
    let hexes = |txs: &[&gridledger_ledger::SignedTransaction]| -> Vec<String> {
        txs.iter().map(|t| hex::encode(t.to_bytes())).collect()
    };
    let mut items = hexes(&[&good, &bad]);
    items.push("zz".into());
    let v = c.call("gl_sendTransactions", json!([items])).unwrap();
    assert_eq!(v[0]["hash"], json!(good.hash()));
    assert_eq!(v[1]["error"]["kind"], "bad_signature");
    assert_eq!(v[2]["error"]["kind"], "undecodable");
    // The same good transaction again: already known; over the list limit: refused whole.
    let v = c.call("gl_sendTransactions", json!([hexes(&[&good])])).unwrap();
    assert_eq!(v[0]["error"]["kind"], "already_known");
    let four = hexes(&[&good, &good, &good, &good]);
    match c.call("gl_sendTransactions", json!([four])) {
        Err(RpcError::Remote { code: -32602, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.account(&k.address()).unwrap()["next_nonce"], 1);
}

#[test]
fn view_failures_event_ranges_and_latest() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let c = RpcClient::new(&node.url());
    match c.call("gl_callView", json!([4_000_000, "nope"])) {
        Err(RpcError::Remote { code: -32001, .. }) => {}
        other => panic!("{other:?}"),
    }
    match c.call("gl_getEvents", json!([1, 1_001])) {
        Err(RpcError::Remote { code: -32602, message, .. }) => assert!(message.contains("1000"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.call("gl_getEvents", json!([1, 1_000])).unwrap(), json!([]));
    let h = c.send(&transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(5), Amount(1))).unwrap();
    let height = c.wait_receipt(&h, Duration::from_secs(10)).unwrap()["height"].as_u64().unwrap();
    let tip = c.height().unwrap();
    assert!(tip >= height);
    let latest = c.call("gl_getBlock", json!(["latest"])).unwrap();
    assert_eq!(latest["header"]["height"].as_u64(), Some(tip));
    match c.call("gl_getBlock", json!(["earliest"])) {
        Err(RpcError::Remote { code: -32602, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn connections_beyond_the_cap_are_closed_and_slots_come_back() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits {
        max_connections: 4,
        // Every connection here comes from one address: let it have them all.
        max_connections_per_addr: Some(4),
        idle_timeout: Duration::from_secs(120),
        header_timeout: Duration::from_secs(120),
        ..RpcLimits::default()
    };
    let node = start_with(d.path(), limits);
    // Four connections hold every slot (each answers a request, so it was accepted).
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(node.addr).unwrap();
            write!(s, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            assert!(s.read(&mut buf).unwrap() > 0);
            s
        })
        .collect();
    let mut fifth = TcpStream::connect(node.addr).unwrap();
    assert!(closed_by_server(&mut fifth), "a fifth connection must be closed at once");
    held.pop();
    assert!(eventually_served(node.addr));
    let m = RpcClient::new(&node.url()).get_text("/metrics");
    // The metrics call itself may be refused while the slots are full again; only check when served.
    if let Ok(m) = m {
        assert!(!m.contains("gridledger_rpc_connections_refused_total 0\n"), "{m}");
    }
}

#[test]
fn three_hundred_idle_and_half_sent_connections_time_out_and_do_not_starve_the_node() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits { idle_timeout: Duration::from_millis(300), ..RpcLimits::default() };
    let node = start_with(d.path(), limits);
    let mut idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(node.addr).unwrap()).collect();
    // Half-sent: a head without its end, and a body cut short.
    let mut head = TcpStream::connect(node.addr).unwrap();
    write!(head, "POST / HTTP/1.1\r\nHost: x\r\nContent-Len").unwrap();
    let mut body = TcpStream::connect(node.addr).unwrap();
    write!(body, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\"").unwrap();
    assert!(eventually_served(node.addr), "the node must keep serving");
    assert!(closed_by_server(&mut head));
    assert!(closed_by_server(&mut body));
    for s in &mut idle {
        assert!(closed_by_server(s));
    }
    let m = RpcClient::new(&node.url()).get_text("/metrics").unwrap();
    let timed_out: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("gridledger_rpc_connections_timed_out_total "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(timed_out >= 2, "{m}");
}

fn open_events(addr: SocketAddr, from: Option<u64>) -> (u16, std::io::Lines<BufReader<TcpStream>>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let q = from.map(|h| format!("?from={h}")).unwrap_or_default();
    write!(s, "GET /events{q} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut lines = BufReader::new(s).lines();
    let status = lines.next().unwrap().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    (status, lines)
}

fn next_block(lines: &mut std::io::Lines<BufReader<TcpStream>>) -> Value {
    loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str(data).unwrap();
        }
    }
}

#[test]
fn event_subscribers_are_capped() {
    let d = tempfile::tempdir().unwrap();
    let node = start_with(
        d.path(),
        RpcLimits { max_subscribers: 2, max_subscribers_per_addr: Some(2), ..RpcLimits::default() },
    );
    let (a, _la) = open_events(node.addr, None);
    let (b, _lb) = open_events(node.addr, None);
    assert_eq!((a, b), (200, 200));
    let (c, _lc) = open_events(node.addr, None);
    assert_eq!(c, 503);
    drop((_la, _lb));
}

#[test]
fn events_from_above_the_tip_wait_for_that_height_and_arrive_in_order() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let c = RpcClient::new(&node.url());
    let tip = c.height().unwrap();
    let target = tip + 3;
    let (status, mut far) = open_events(node.addr, Some(target));
    assert_eq!(status, 200);
    let (_, mut all) = open_events(node.addr, Some(1));
    let k = dev_key(2);
    let mut last = 0;
    for nonce in 0..3 {
        let h = c.send(&transfer(&k, 1, nonce, dev_key(3).address(), Amount(9), Amount(1))).unwrap();
        last = c.wait_receipt(&h, Duration::from_secs(10)).unwrap()["height"].as_u64().unwrap();
    }
    assert!(last >= target);
    assert_eq!(next_block(&mut far)["height"].as_u64(), Some(target));
    // The replaying subscriber sees every height from 1, without gaps.
    for h in 1..=last {
        assert_eq!(next_block(&mut all)["height"].as_u64(), Some(h));
    }
}

#[test]
fn a_half_sent_body_gets_408_and_does_not_hold_up_other_requests() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits {
        max_in_flight: 1,
        body_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(120),
        ..RpcLimits::default()
    };
    let node = start_with(d.path(), limits);
    let mut slow = TcpStream::connect(node.addr).unwrap();
    write!(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\"").unwrap();
    // With the only dispatch slot free, another client is served at once.
    assert_eq!(try_post(node.addr, CHAIN_INFO).unwrap().0, 200);
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut resp = String::new();
    let _ = slow.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
}

#[test]
fn a_full_mempool_takes_a_higher_paying_transaction_and_refuses_an_equal_one() {
    let d = tempfile::tempdir().unwrap();
    // Blocks wait a minute, so the pool stays full while the test runs.
    let chain = ChainConfig { mempool_capacity: 2, ..ChainConfig::default() };
    let node = start_full(d.path(), RpcLimits::default(), chain, 60_000);
    let c = RpcClient::new(&node.url());
    let to = dev_key(3).address();
    let cheap = c.send(&transfer(&dev_key(0), 1, 0, to, Amount(1), Amount(1))).unwrap();
    c.send(&transfer(&dev_key(1), 1, 0, to, Amount(1), Amount(2))).unwrap();
    match c.send(&transfer(&dev_key(2), 1, 0, to, Amount(1), Amount(1))) {
        Err(RpcError::Remote { code: -32000, kind: Some(k), .. }) => assert_eq!(k, "mempool_full"),
        other => panic!("{other:?}"),
    }
    match c.send(&transfer(&dev_key(2), 1, 0, to, Amount(1), Amount(0))) {
        Err(RpcError::Remote { kind: Some(k), .. }) => assert_eq!(k, "gas_price_too_low"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.call("gl_chainInfo", json!([])).unwrap()["mempool"], 2);
    let dear = c.send(&transfer(&dev_key(2), 1, 0, to, Amount(1), Amount(5))).unwrap();
    assert_ne!(dear, cheap);
    assert_eq!(c.call("gl_chainInfo", json!([])).unwrap()["mempool"], 2);
    assert_eq!(c.account(&dev_key(0).address()).unwrap()["next_nonce"], 0, "the cheapest was evicted");
    let m = c.get_text("/metrics").unwrap();
    assert!(m.contains("gridledger_mempool_evicted_total 1\n"), "{m}");
}

#[test]
fn a_client_whose_pooled_connection_was_closed_for_idleness_still_gets_answers() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits {
        idle_timeout: Duration::from_millis(200),
        header_timeout: Duration::from_millis(200),
        ..RpcLimits::default()
    };
    let node = start_with(d.path(), limits);
    let c = RpcClient::new(&node.url());
    for _ in 0..3 {
        assert!(c.height().is_ok());
        // Longer than both timeouts: the server has closed the kept-alive connection.
        std::thread::sleep(Duration::from_millis(600));
        let h = c.send(&transfer(
            &dev_key(0),
            1,
            c.next_nonce(&dev_key(0).address()).unwrap(),
            dev_key(1).address(),
            Amount(1),
            Amount(1),
        ));
        assert!(h.is_ok(), "{h:?}");
    }
}

/// Bodies being read and bodies waiting to be processed share one memory
/// budget: while a started 4,000-byte body holds the whole 4 KiB budget, a
/// complete request is not read (no answer), and it is answered once the
/// first body has arrived and been processed.
#[test]
fn bodies_share_one_memory_budget_across_reading_and_waiting() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits {
        max_body_memory: 4_096,
        body_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(120),
        ..RpcLimits::default()
    };
    let node = start_with(d.path(), limits);
    let padded = format!("{CHAIN_INFO:<4000}");
    let mut first = TcpStream::connect(node.addr).unwrap();
    write!(first, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\nConnection: close\r\n\r\n{}", &padded[..1])
        .unwrap();
    // Give the first request's byte time to reserve the budget before the second head arrives.
    std::thread::sleep(Duration::from_millis(300));
    let mut second = TcpStream::connect(node.addr).unwrap();
    write!(
        second,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{CHAIN_INFO}",
        CHAIN_INFO.len()
    )
    .unwrap();
    second.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 64];
    let waited = second.read(&mut buf);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the second request was read although the budget was taken: {waited:?}"
    );
    first.write_all(&padded.as_bytes()[1..]).unwrap();
    for s in [&mut first, &mut second] {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
}

/// The value of a counter in `/metrics`.
fn metric(c: &RpcClient, name: &str) -> u64 {
    let m = c.get_text("/metrics").unwrap();
    let prefix = format!("{name} ");
    m.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// An event subscriber that stops reading (it takes a byte now and then,
/// so the idle timeout never fires) is dropped once the bytes queued for
/// it stay above `max_unsent_bytes` for longer than `unsent_timeout`: its
/// subscriber slot frees up, and a subscriber that reads keeps its stream.
#[test]
fn a_subscriber_that_stops_reading_is_dropped_after_the_unsent_bytes_deadline() {
    let d = tempfile::tempdir().unwrap();
    let limits = RpcLimits {
        max_subscribers: 2,
        max_subscribers_per_addr: Some(2),
        idle_timeout: Duration::from_secs(120),
        max_unsent_bytes: 4 << 10,
        unsent_timeout: Duration::from_secs(1),
        ..RpcLimits::default()
    };
    let node = start_with(d.path(), limits);
    let c = RpcClient::new(&node.url());
    // A history whose events are far more than the bound and the client's buffer.
    let k = dev_key(2);
    let txs: Vec<_> = (0..300).map(|n| transfer(&k, 1, n, dev_key(3).address(), Amount(1), Amount(1))).collect();
    let hashes: Vec<Hash32> = c.send_many(&txs).unwrap().into_iter().map(Result::unwrap).collect();
    let last = c.wait_receipt(hashes.last().unwrap(), Duration::from_secs(60)).unwrap()["height"].as_u64().unwrap();

    // The slow subscriber: a small receive buffer, one byte read every 50 ms.
    let mut slow = TcpStream::connect(node.addr).unwrap();
    {
        use std::os::fd::AsRawFd;
        let size: libc::c_int = 2048;
        // SAFETY: SO_RCVBUF takes a c_int; the socket is open.
        let r = unsafe {
            libc::setsockopt(
                slow.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
    }
    write!(slow, "GET /events?from=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    slow.set_nonblocking(true).unwrap();
    // One byte now and then: progress enough for any idle timeout.
    let trickle = |slow: &mut TcpStream| {
        let _ = slow.read(&mut [0u8; 1]);
    };

    // A subscriber that reads everything.
    let (status, mut reader) = open_events(node.addr, Some(1));
    assert_eq!(status, 200);
    for h in 1..=last {
        assert_eq!(next_block(&mut reader)["height"].as_u64(), Some(h));
    }

    let started = Instant::now();
    while metric(&c, "gridledger_rpc_slow_readers_dropped_total") == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "the slow subscriber was never dropped");
        trickle(&mut slow);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(&c, "gridledger_rpc_connections_timed_out_total"), 0, "not the idle timeout");
    // Its slot is free again: a new subscriber is admitted (the cap is 2).
    let (status, _again) = open_events(node.addr, None);
    assert_eq!(status, 200);
    // The reading subscriber was not dropped: it gets the next block.
    let h = c.send(&transfer(&k, 1, 300, dev_key(3).address(), Amount(1), Amount(1))).unwrap();
    let next = c.wait_receipt(&h, Duration::from_secs(10)).unwrap()["height"].as_u64().unwrap();
    for want in last + 1..=next {
        assert_eq!(next_block(&mut reader)["height"].as_u64(), Some(want));
    }
    assert_eq!(metric(&c, "gridledger_rpc_slow_readers_dropped_total"), 1, "only the slow subscriber");
}
