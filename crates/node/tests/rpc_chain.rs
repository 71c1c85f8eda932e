//! [`RpcChain`]: the `ChainClient` trait over a live node's JSON-RPC gives
//! the same answers as the node (chain id, validators, receipts, views,
//! whole blocks), refuses invalid transactions with an error and leaves
//! nothing pending, and waits for the wall clock instead of moving it.

mod common;

use gridledger_core::{Amount, Signature};
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer};
use gridledger_ledger::{ChainClient, ChainConfig, ClientError, TxStatus};
use gridledger_node::client::{wall_clock_ms, RpcChain};
use gridledger_node::{Node, NodeHandle};

fn start(dir: &std::path::Path) -> NodeHandle {
    let cfg = common::single_validator_config(dir);
    Node::open(&cfg, gridledger_contracts::default_registry()).unwrap().spawn().unwrap()
}

#[test]
fn rpc_chain_serves_the_chain_client_trait() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let mut c = RpcChain::connect(&node.url()).unwrap();
    assert_eq!(c.chain_id(), 1);
    assert_eq!(c.validators(), vec![dev_validator(0).public()]);
    assert_eq!(c.max_tx_bytes(), ChainConfig::default().max_tx_bytes);

    let (k, to) = (dev_key(0), dev_key(1).address());
    let before = c.account(&to).balance;
    let r = c.exec(&transfer(&k, 1, c.next_nonce(&k.address()), to, Amount(5), Amount(1))).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(c.account(&to).balance, Amount(before.0 + 5));
    assert_eq!(c.next_nonce(&k.address()), 1);
    assert!(c.tip().height >= r.height);

    // The whole block, transactions included, as the node committed it.
    let b = c.block(r.height).unwrap().expect("committed block");
    assert_eq!(b.header.height, r.height);
    assert!(b.txs.iter().any(|t| t.hash() == r.tx_hash), "the transaction is in its block");
    assert!(c.block(c.tip().height + 1_000).unwrap().is_none());

    // A contract view answers through gl_callView; an unknown one is an error.
    assert!(c.view(4_000_000, "nope", &[]).is_err());
}

#[test]
fn an_invalid_transaction_is_refused_and_leaves_nothing_pending() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let mut c = RpcChain::connect(&node.url()).unwrap();
    let (k, to) = (dev_key(0), dev_key(1).address());
    let before = c.account(&to);
    let mut bad = transfer(&k, 1, 0, to, Amount(5), Amount(1));
    bad.signature = Signature([1u8; 64]);
    assert!(
        matches!(c.submit(&bad), Err(ClientError::Chain(m)) if m.contains("bad_signature") || m.contains("signature"))
    );
    // Nothing is waited for, nothing changed.
    c.seal().unwrap();
    assert_eq!(c.account(&to), before);
    assert_eq!(c.next_nonce(&k.address()), 0);
}

#[test]
fn set_now_waits_for_the_wall_clock_and_now_follows_it() {
    let d = tempfile::tempdir().unwrap();
    let node = start(d.path());
    let mut c = RpcChain::connect(&node.url()).unwrap();
    let target = wall_clock_ms() + 150;
    c.set_now(target);
    assert!(wall_clock_ms() >= target);
    assert!(c.now() >= target);
}
