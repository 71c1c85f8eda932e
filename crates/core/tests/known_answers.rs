//! Known-answer vectors computed outside the project (`scripts/gen_vectors.py`:
//! Python's hashlib and the pure-Python `ecdsa` package), so the tagged
//! hashes, addresses, signatures and Merkle roots are checked against an
//! independent implementation rather than against themselves.

use gridledger_core::codec::{hash_bytes, hash_parts, Tag};
use gridledger_core::crypto::{recover, state_hash, state_sign, state_verify, verify, KeyPair};
use gridledger_core::{merkle_root, Hash32, PublicKey, RecoverableSignature, Signature};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/known_answers.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("vector JSON")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn h32(v: &Value) -> Hash32 {
    Hash32(hex(v).try_into().expect("32 bytes"))
}

fn tag(v: &Value) -> Tag {
    Tag(Box::leak(v.as_str().expect("tag").to_owned().into_boxed_str()))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    let l = v[key].as_array().unwrap_or_else(|| panic!("{key} missing"));
    assert!(!l.is_empty(), "{key} is empty");
    l
}

#[test]
fn tagged_hashes_match_hashlib() {
    let v = vectors();
    for e in list(&v, "hash_bytes") {
        assert_eq!(hash_bytes(tag(&e["tag"]), &hex(&e["data"])), h32(&e["hash"]), "{e}");
    }
    for e in list(&v, "hash_parts") {
        let parts: Vec<Vec<u8>> = e["parts"].as_array().unwrap().iter().map(hex).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        assert_eq!(hash_parts(tag(&e["tag"]), &refs), h32(&e["hash"]), "{e}");
    }
}

#[test]
fn keys_and_addresses_match_the_reference_curve() {
    let v = vectors();
    for e in list(&v, "keys") {
        let k = KeyPair::from_seed(e["label"].as_str().unwrap());
        assert_eq!(k.secret_bytes().to_vec(), hex(&e["secret"]), "{e}");
        assert_eq!(k.public().0.to_vec(), hex(&e["public"]), "{e}");
        assert_eq!(k.address().0.to_vec(), hex(&e["address"]), "{e}");
        let pk = PublicKey(hex(&e["public"]).try_into().unwrap());
        assert_eq!(pk.address().0.to_vec(), hex(&e["address"]));
    }
}

#[test]
fn signatures_match_rfc6979_low_s_and_verify() {
    let v = vectors();
    for e in list(&v, "signatures") {
        let k = KeyPair::from_seed(e["label"].as_str().unwrap());
        let d = h32(&e["digest"]);
        let want = Signature(hex(&e["signature"]).try_into().unwrap());
        assert_eq!(k.sign(&d), want, "{e}");
        assert_eq!(verify(&k.public(), &d, &want), Ok(()));
        let rec = RecoverableSignature(hex(&e["recoverable"]).try_into().unwrap());
        assert_eq!(k.sign_recoverable(&d), rec, "{e}");
        assert_eq!(recover(&d, &rec), Ok(k.public()));
    }
}

#[test]
fn state_signature_matches() {
    let v = vectors();
    let e = &v["state_signature"];
    let k = KeyPair::from_seed(e["label"].as_str().unwrap());
    let (a, b) = (e["state"][0].as_u64().unwrap(), e["state"][1].as_u64().unwrap());
    let h = state_hash(&(a, b), e["nonce"].as_u64().unwrap());
    assert_eq!(h, h32(&e["hstate"]));
    let i = e["i"].as_u64().unwrap();
    let sig = Signature(hex(&e["signature"]).try_into().unwrap());
    assert_eq!(state_sign(&k, &h, i), sig);
    assert!(state_verify(&k.public(), &h, i, &sig).is_ok());
}

#[test]
fn merkle_roots_match() {
    let v = vectors();
    for e in list(&v, "merkle") {
        let leaves: Vec<Hash32> = e["leaves"].as_array().unwrap().iter().map(h32).collect();
        assert_eq!(merkle_root(&leaves), h32(&e["root"]), "{} leaves", leaves.len());
    }
}
