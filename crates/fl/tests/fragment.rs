//! C2B for one fragment: encrypt → code into cells → commit (with degree
//! proof) → each node checks its cell → the leader decodes and decrypts,
//! with lost, forged, misplaced and over-degree subfragments.

use blstrs::Scalar;
use ff::Field;
use gridledger_fl::aead::FragmentContext;
use gridledger_fl::cells::{CellCode, DegreeProof};
use gridledger_fl::coding::{client_key, FragmentCoder};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::FlError;

const SK: [u8; 32] = [5; 32];
const CTX: FragmentContext =
    FragmentContext { instance: gridledger_core::Hash32([5; 32]), chain: 0, round: 1, fragment: 0 };

fn model_bytes(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 37 % 251) as u8).collect()
}

/// 7 nodes, f = 2, any 5 decode; fragments up to 400 bytes of ciphertext
/// (13 elements → cells of 4 points, 8 cells).
/// A client's signing key (these coder-level tests do not check it).
fn signer() -> gridledger_core::crypto::KeyPair {
    gridledger_fl::round::sim_client_signing_key(&[6; 32], 0)
}

fn coder() -> FragmentCoder {
    FragmentCoder::new(Kzg::insecure_from_seed(32, 3), 400, 7, 5).unwrap()
}

#[test]
fn every_node_accepts_its_cell_and_any_five_decode() {
    let c = coder();
    let key = client_key(&SK, 4);
    let f = c.encode(&key, &signer(), &CTX, 4, &model_bytes(300)).unwrap();
    assert_eq!(f.cells.len(), 7);
    for k in 0..7 {
        c.verify_message(k, &f.message(k).unwrap()).unwrap();
    }
    // Two nodes drop out (withhold): the other five decode.
    let kept: Vec<_> = f.cells.iter().filter(|x| x.index != 1 && x.index != 4).cloned().collect();
    let (r, faults) = c.decode(&key, &f.record, &kept);
    assert_eq!(r.unwrap(), model_bytes(300));
    assert!(faults.is_empty());
}

#[test]
fn forged_cells_are_filtered_with_typed_faults() {
    let c = coder();
    let key = client_key(&SK, 4);
    let f = c.encode(&key, &signer(), &CTX, 4, &model_bytes(300)).unwrap();
    let mut recv = f.cells.clone();
    recv[0].values[2] += Scalar::ONE;
    recv[3].proof = recv[5].proof;
    assert_eq!(
        c.verify_message(
            0,
            &f.message(0)
                .map(|mut m| {
                    m.cell = recv[0].clone();
                    m
                })
                .unwrap()
        ),
        Err(FlError::ProofFailed { index: 0 })
    );
    // A cell sent to the wrong node is refused by that node.
    assert_eq!(c.verify_message(1, &f.message(2).unwrap()), Err(FlError::PositionOutOfRange { index: 2, len: 7 }));
    let (r, faults) = c.decode(&key, &f.record, &recv);
    assert_eq!(r.unwrap(), model_bytes(300));
    assert_eq!(faults, vec![FlError::ProofFailed { index: 0 }, FlError::ProofFailed { index: 3 }]);
    // Four forged: three verified cells (12 positions) remain, not enough.
    recv[6].values[0] += Scalar::ONE;
    recv[1].values[3] += Scalar::ONE;
    let (r, faults) = c.decode(&key, &f.record, &recv);
    assert_eq!(r, Err(FlError::Undecodable { need: 13, have: 12 }));
    assert_eq!(faults.len(), 4);
}

#[test]
fn wrong_length_records_and_cells_are_refused() {
    let c = coder();
    let key = client_key(&SK, 4);
    let f = c.encode(&key, &signer(), &CTX, 4, &model_bytes(300)).unwrap();
    // Ciphertext too long for the chain's code: refused before coding.
    assert_eq!(
        c.encode(&key, &signer(), &CTX, 4, &model_bytes(400)).err(),
        Some(FlError::WrongLength { expected: 403, got: 416 })
    );
    let mut rec = f.record;
    rec.ciphertext_len = 0;
    assert!(matches!(c.decode(&key, &rec, &f.cells).0, Err(FlError::WrongLength { .. })));
    rec.ciphertext_len = 10_000;
    let mut m = f.message(2).unwrap();
    m.record = rec;
    assert!(matches!(c.verify_message(2, &m), Err(FlError::WrongLength { .. })));
    // A shorter claimed length: the coefficients beyond it are not zero.
    let mut rec = f.record;
    rec.ciphertext_len -= 40;
    assert_eq!(c.decode(&key, &rec, &f.cells).0, Err(FlError::Malformed("coefficients beyond the ciphertext length")));
    // A wrong-length cell and a cell of no node are faults, not panics.
    let mut recv = f.cells.clone();
    recv[1].values.pop();
    recv[2].index = 9;
    let (r, faults) = c.decode(&key, &f.record, &recv);
    assert_eq!(r.unwrap(), model_bytes(300));
    assert_eq!(
        faults,
        vec![FlError::WrongLength { expected: 4, got: 3 }, FlError::PositionOutOfRange { index: 9, len: 7 }]
    );
}

#[test]
fn another_clients_key_or_context_does_not_decrypt() {
    let c = coder();
    let f = c.encode(&client_key(&SK, 4), &signer(), &CTX, 4, &model_bytes(100)).unwrap();
    assert_eq!(c.decode(&client_key(&SK, 5), &f.record, &f.cells).0, Err(FlError::DecryptFailed));
    let mut rec = f.record;
    rec.ctx.round = 9;
    assert_eq!(c.decode(&client_key(&SK, 4), &rec, &f.cells).0, Err(FlError::DecryptFailed));
}

#[test]
fn an_over_degree_commitment_is_refused_by_every_node() {
    // A Byzantine client commits to a polynomial of degree k (one too many):
    // every cell proof verifies, but the degree proof cannot.
    let c = coder();
    let kzg = c.kzg();
    let code: &CellCode = c.code();
    let k = code.k();
    let coeffs: Vec<Scalar> = (0..=k as u64).map(|i| Scalar::from(i + 1)).collect();
    let commitment = kzg.commit(&coeffs).unwrap();
    let honest = c.encode(&client_key(&SK, 1), &signer(), &CTX, 1, &model_bytes(300)).unwrap();
    let mut record = honest.record;
    record.commitment = commitment;
    // Best forgery available without τ: the honest proof of another polynomial.
    record.degree_proof = DegreeProof(honest.record.degree_proof.0);
    for j in 0..7 {
        let proof = kzg.prove_cell_naive(code, &coeffs, j).unwrap();
        let values = {
            let mut all = coeffs.clone();
            all.resize(code.n(), Scalar::ZERO);
            let cw = gridledger_fl::rs::RsCode::new(code.n(), code.n()).unwrap().encode(&all).unwrap();
            (0..code.cell_size()).map(|m| cw[j + m * code.cells()]).collect::<Vec<_>>()
        };
        let cell = gridledger_fl::cells::Cell { index: j, values, proof };
        kzg.verify_cell(code, &commitment, &cell).unwrap();
        let msg = gridledger_fl::coding::LocalMessage { record, cell };
        assert_eq!(c.verify_message(j, &msg), Err(FlError::DegreeTooHigh { bound: k }));
    }
}

#[test]
fn every_length_roundtrips_from_the_last_five_cells() {
    let c = coder();
    let key = client_key(&SK, 2);
    for len in (0..=380).step_by(29) {
        let msg = model_bytes(len);
        let f = c.encode(&key, &signer(), &CTX, 2, &msg).unwrap();
        let (r, faults) = c.decode(&key, &f.record, &f.cells[2..]);
        assert_eq!(r.unwrap(), msg, "len={len}");
        assert!(faults.is_empty());
    }
}
