//! Transactions against known-answer vectors computed outside the project
//! (`scripts/gen_vectors.py`, with a borsh encoder written from the borsh
//! specification): the canonical bytes, the hash that is signed and the
//! signature all match an independent implementation.

use gridledger_core::codec::{decode, encode};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{SignedTransaction, Transaction};

#[test]
fn transactions_encode_hash_and_sign_as_the_reference_says() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/known_answers.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let txs = v["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 2);
    let hex = |k: &serde_json::Value| hex::decode(k.as_str().unwrap()).unwrap();
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
