//! Transactions against known-answer vectors computed outside the project
//! (`scripts/gen_vectors.py`, with a borsh encoder written from the borsh
//! specification): the canonical bytes, the hash that is signed and the
//! signature all match an independent implementation.

use gridledger_core::codec::{decode, encode};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{contract_address, BlockHeader, SignedTransaction, Transaction};

fn vectors() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/known_answers.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn transactions_encode_hash_and_sign_as_the_reference_says() {
    let v = vectors();
    let txs = v["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2);
    for (i, e) in txs.iter().enumerate() {
        let body: Transaction = decode(&hex(&e["body"]), 1 << 16).unwrap();
        assert_eq!(encode(&body), hex(&e["body"]));
        assert_eq!(body.hash().0.to_vec(), hex(&e["hash"]));
        // The reference signed with development key i.
        let signed = body.clone().sign(&dev_key(i));
        assert_eq!(signed.to_bytes(), hex(&e["signed"]));
        let back = SignedTransaction::from_bytes(&hex(&e["signed"]), 1 << 16).unwrap();
        assert!(back.check_stateless(body.chain_id, u64::MAX).is_ok());
    }
}

#[test]
fn block_headers_encode_and_hash_as_the_reference_says() {
    let v = vectors();
    let headers = v["block_headers"].as_array().unwrap();
    assert_eq!(headers.len(), 2);
    for e in headers {
        let h: BlockHeader = decode(&hex(&e["body"]), 1 << 16).unwrap();
        assert_eq!(encode(&h), hex(&e["body"]));
        assert_eq!(h.hash().0.to_vec(), hex(&e["hash"]));
    }
}

#[test]
fn contract_addresses_match_the_reference() {
    let v = vectors();
    let rows = v["contract_addresses"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for e in rows {
        let id = e["id"].as_u64().unwrap() as u32;
        assert_eq!(contract_address(id).0.to_vec(), hex(&e["address"]), "contract {id}");
    }
}
