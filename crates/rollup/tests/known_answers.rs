//! IOR agreement terms (thesis Eq 3.1) against a known-answer vector
//! computed outside the project (`scripts/gen_vectors.py`): the canonical
//! bytes of the agreed tuple, the digests the seller and the buyer sign, and
//! the seller's recoverable signature.

use gridledger_core::codec::{decode, encode};
use gridledger_core::{KeyPair, RecoverableSignature};
use gridledger_rollup::types::{AgreementTerms, AgreementTx, SigDomain};

#[test]
fn agreement_terms_encode_and_sign_as_the_reference_says() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/data/known_answers.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let e = &v["ior_terms"];
    let hex = |k: &str| hex::decode(e[k].as_str().unwrap()).unwrap();
    let terms: AgreementTerms = decode(&hex("terms"), 1 << 16).unwrap();
    assert_eq!(encode(&terms), hex("terms"));
    assert_eq!(terms.em.0, 24);
    let d = SigDomain {
        chain_id: e["domain"]["chain_id"].as_u64().unwrap() as u32,
        contract: e["domain"]["contract"].as_u64().unwrap() as u32,
    };
    assert_eq!(d, SigDomain::DEV);
    assert_eq!(terms.seller_digest(&d).0.to_vec(), hex("seller_digest"));
    assert_eq!(terms.buyer_digest(&d, true).0.to_vec(), hex("buyer_digest_agreed"));
    let seller = KeyPair::from_seed(e["seller"].as_str().unwrap());
    assert_eq!(terms.seller, seller.address());
    let at = AgreementTx::signed(terms, &seller);
    assert_eq!(at.seller_sig, Some(RecoverableSignature(hex("seller_signature").try_into().unwrap())));
}
