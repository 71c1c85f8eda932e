//! A fragment through encrypt → code → commit/prove → verify → decode → decrypt,
//! with lost and forged subfragments.

use blstrs::Scalar;
use ff::Field;
use gridledger_fl::aead::FragmentContext;
use gridledger_fl::coding::{decode_fragment, encode_fragment};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::FlError;

const KEY: [u8; 32] = [5; 32];
const CTX: FragmentContext = FragmentContext { chain: 0, round: 1, fragment: 2 };

fn model_bytes() -> Vec<u8> {
    (0..150u32).map(|i| (i * 37 % 251) as u8).collect()
}

#[test]
fn fragment_survives_losing_half_its_subfragments() {
    let kzg = Kzg::insecure_from_seed(16, 3);
    let f = encode_fragment(&kzg, &KEY, &CTX, &model_bytes(), 16).unwrap();
    // 166 bytes of ciphertext = 6 elements: any 6 of 16 positions decode.
    let kept: Vec<_> = f.subfragments.iter().filter(|s| s.index % 2 == 1).cloned().collect();
    let (r, faults) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, f.ciphertext_len, 16, &kept);
    assert_eq!(r.unwrap(), model_bytes());
    assert!(faults.is_empty());
}

#[test]
fn forged_subfragments_are_filtered_with_typed_faults() {
    let kzg = Kzg::insecure_from_seed(16, 3);
    let f = encode_fragment(&kzg, &KEY, &CTX, &model_bytes(), 16).unwrap();
    let mut recv = f.subfragments.clone();
    recv[0].value += Scalar::ONE;
    recv[4].proof = recv[5].proof;
    let (r, faults) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, f.ciphertext_len, 16, &recv);
    assert_eq!(r.unwrap(), model_bytes());
    assert_eq!(faults, vec![FlError::ProofFailed { index: 0 }, FlError::ProofFailed { index: 4 }]);
}

#[test]
fn too_few_verified_subfragments_is_undecodable() {
    let kzg = Kzg::insecure_from_seed(16, 3);
    let f = encode_fragment(&kzg, &KEY, &CTX, &model_bytes(), 16).unwrap();
    let mut recv: Vec<_> = f.subfragments[..6].to_vec();
    recv[2].value += Scalar::ONE;
    let (r, faults) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, f.ciphertext_len, 16, &recv);
    assert_eq!(r, Err(FlError::Undecodable { need: 6, have: 5 }));
    assert_eq!(faults, vec![FlError::ProofFailed { index: 2 }]);
}

#[test]
fn wrong_context_or_length_is_refused() {
    let kzg = Kzg::insecure_from_seed(16, 3);
    let f = encode_fragment(&kzg, &KEY, &CTX, &model_bytes(), 16).unwrap();
    let other = FragmentContext { round: 9, ..CTX };
    let (r, _) = decode_fragment(&kzg, &KEY, &other, &f.commitment, f.ciphertext_len, 16, &f.subfragments);
    assert_eq!(r, Err(FlError::DecryptFailed));
    // A claimed length needing more elements than were coded: the code has a
    // different k, so the original proofs do not bind and nothing decodes.
    let (r, _) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, f.ciphertext_len + 31, 16, &f.subfragments);
    assert!(r.is_err());
    // More elements than positions.
    let (r, _) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, 31 * 17, 16, &f.subfragments);
    assert!(matches!(r, Err(FlError::Unsupported(_))));
}

#[test]
fn over_degree_commitment_is_caught_as_inconsistent_by_decoding() {
    use gridledger_fl::rs::RsCode;
    let kzg = Kzg::insecure_from_seed(16, 3);
    let code = RsCode::new(6, 16).unwrap();
    // A Byzantine client commits to a degree-6 polynomial for a k = 6 code.
    let coeffs: Vec<Scalar> = (0..7u64).map(|i| Scalar::from(i + 1)).collect();
    let c = kzg.commit(&coeffs).unwrap();
    let mut shares = Vec::new();
    for i in 0..16 {
        let z = code.point(i).unwrap();
        let (y, pi) = kzg.open_at(&coeffs, z).unwrap();
        kzg.verify_position(&code, &c, i, y, &pi).unwrap();
        shares.push((i, y));
    }
    assert!(matches!(code.decode(&shares), Err(FlError::Inconsistent { .. })));
}

#[test]
fn every_length_roundtrips_from_the_last_k_positions() {
    let kzg = Kzg::insecure_from_seed(16, 4);
    for len in (0..=300).step_by(23) {
        let msg: Vec<u8> = (0..len as u32).map(|i| (i * 7 + len as u32) as u8).collect();
        let f = encode_fragment(&kzg, &KEY, &CTX, &msg, 16).unwrap();
        let k = f.ciphertext_len.div_ceil(31);
        let tail = &f.subfragments[16 - k..];
        let (r, faults) = decode_fragment(&kzg, &KEY, &CTX, &f.commitment, f.ciphertext_len, 16, tail);
        assert_eq!(r.unwrap(), msg, "len={len}");
        assert!(faults.is_empty());
    }
}
