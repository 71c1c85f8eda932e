//! The JSON-RPC API against a live in-process node: every malformed request
//! gets a JSON-RPC error and the node keeps serving; transactions, blocks,
//! accounts, proofs, events and metrics.

use gridledger_core::{Amount, Hash32, Signature};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::ChainConfig;
use gridledger_node::config::write_key;
use gridledger_node::{Node, NodeConfig, NodeHandle, RpcClient, RpcError};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

fn start(dir: &std::path::Path) -> NodeHandle {
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, Amount(1_000_000_000), std::slice::from_ref(&validator));
    std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
    write_key(&dir.join("validator.key"), &validator).unwrap();
    let cfg = NodeConfig {
        data_dir: dir.join("data"),
        genesis: dir.join("genesis.toml"),
        validator_key: dir.join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: 20,
        chain: ChainConfig::default(),
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
    };
    Node::open(&cfg, gridledger_contracts::default_registry()).unwrap().spawn().unwrap()
}

fn raw_post(addr: std::net::SocketAddr, body: &str) -> Value {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap()
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
