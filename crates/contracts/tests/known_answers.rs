//! A CNS channel state against a known-answer vector computed outside the
//! project (`scripts/gen_vectors.py`, borsh written from its specification,
//! Python `hashlib` and `ecdsa`): the statement's canonical bytes, `hstate`
//! over the domain (chain, contract) and the statement, and the party's
//! signature over `(hstate, i)` (seed 000 §5.1.2).

use gridledger_contracts::cns::{Domain, Statement};
use gridledger_core::codec::{decode, encode};
use gridledger_core::{KeyPair, Signature};

#[test]
fn a_channel_state_encodes_hashes_and_signs_as_the_reference_says() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/known_answers.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let e = &v["cns_channel_state"];
    let hex = |k: &str| hex_decode(e[k].as_str().unwrap());
    let stmt: Statement = decode(&hex("statement"), 1 << 16).unwrap();
    let domain = Domain {
        chain_id: e["domain"]["chain_id"].as_u64().unwrap() as u32,
        contract: e["domain"]["contract"].as_u64().unwrap() as u32,
    };
    let Statement::Channel(state) = &stmt else { panic!("a channel state") };
    assert!(state.counter == 9 && state.last_trade.is_some() && state.domain == domain);
    assert_eq!(encode(&stmt), hex("statement"));
    let nonce = e["nonce"].as_u64().unwrap();
    assert_eq!(stmt.hstate_in(&domain, nonce).0.to_vec(), hex("hstate"));
    assert_eq!(state.hstate(nonce).0.to_vec(), hex("hstate"), "a state is hashed in its own domain");
    let key = KeyPair::from_seed(e["signer"].as_str().unwrap());
    let sig = Signature(hex("signature").try_into().unwrap());
    assert_eq!(stmt.sign(&key, &domain, nonce), sig);
    assert!(stmt.verify(&key.public(), &domain, nonce, &sig));
    assert!(!stmt.verify(&key.public(), &Domain { chain_id: 7, ..domain }, nonce, &sig), "bound to its chain");
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
