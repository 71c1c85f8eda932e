//! One fragment end to end (thesis §7.3, the client side of C2B): encrypt,
//! pack into field elements, Reed–Solomon code into `K` subfragments, commit
//! and prove each position; and the receiving side: check a subfragment
//! against the commitment, decode from any `k` verified subfragments and
//! decrypt. The message flow between clients, chains and nodes builds on
//! these steps.
//!
//! Two things the commitment alone does not bind, and the caller must take
//! from an authenticated source (the client's signed upload record):
//! `ciphertext_len` (hence `k`), and the degree bound `deg p < k` — a
//! Byzantine client can commit to a higher-degree polynomial whose
//! per-position proofs all verify. Decoding then reports
//! [`FlError::Inconsistent`] when more than `k` verified positions are at
//! hand; a degree proof (shifted-power check) is still to be added.

use crate::aead::{decrypt_fragment, encrypt_fragment, FragmentContext};
use crate::error::FlError;
use crate::field::{bytes_to_scalars, scalars_to_bytes};
use crate::kzg::{Commitment, Kzg, Proof};
use crate::rs::RsCode;
use blstrs::Scalar;

/// Subfragment `index` of a coded fragment, with its opening proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subfragment {
    pub index: usize,
    pub value: Scalar,
    pub proof: Proof,
}

/// What a client publishes for one fragment: the commitment, the
/// ciphertext length (to strip padding on decode) and the `K` subfragments.
#[derive(Clone, Debug)]
pub struct CodedFragment {
    pub commitment: Commitment,
    pub ciphertext_len: usize,
    pub subfragments: Vec<Subfragment>,
}

/// The code for a ciphertext of `ciphertext_len` bytes spread over `n`
/// positions (`k` = number of 31-byte elements).
pub fn code_for(ciphertext_len: usize, n: usize) -> Result<RsCode, FlError> {
    RsCode::new(ciphertext_len.div_ceil(crate::field::BYTES_PER_ELEMENT).max(1), n)
}

/// Encrypt and code one fragment into `n` subfragments (`n` a power of two).
pub fn encode_fragment(
    kzg: &Kzg,
    key: &[u8; 32],
    ctx: &FragmentContext,
    plaintext: &[u8],
    n: usize,
) -> Result<CodedFragment, FlError> {
    let ct = encrypt_fragment(key, ctx, plaintext)?;
    let code = code_for(ct.len(), n)?;
    let coeffs = bytes_to_scalars(&ct);
    let codeword = code.encode(&coeffs)?;
    let commitment = kzg.commit(&coeffs)?;
    let proofs = kzg.prove_all(&code, &coeffs)?;
    let subfragments = codeword
        .into_iter()
        .zip(proofs)
        .enumerate()
        .map(|(index, (value, proof))| Subfragment { index, value, proof })
        .collect();
    Ok(CodedFragment { commitment, ciphertext_len: ct.len(), subfragments })
}

/// Check one received subfragment against the published commitment.
pub fn verify_subfragment(kzg: &Kzg, code: &RsCode, commitment: &Commitment, s: &Subfragment) -> Result<(), FlError> {
    kzg.verify_position(code, commitment, s.index, s.value, &s.proof)
}

/// Decode and decrypt from received subfragments. Subfragments whose proofs
/// fail are filtered out and returned as typed faults beside the result; the
/// fragment decodes as long as `k` verified positions remain.
pub fn decode_fragment(
    kzg: &Kzg,
    key: &[u8; 32],
    ctx: &FragmentContext,
    commitment: &Commitment,
    ciphertext_len: usize,
    n: usize,
    received: &[Subfragment],
) -> (Result<Vec<u8>, FlError>, Vec<FlError>) {
    let code = match code_for(ciphertext_len, n) {
        Ok(c) => c,
        Err(e) => return (Err(e), Vec::new()),
    };
    let mut faults = Vec::new();
    let mut shares = Vec::new();
    for s in received {
        match verify_subfragment(kzg, &code, commitment, s) {
            Ok(()) => shares.push((s.index, s.value)),
            Err(e) => faults.push(e),
        }
    }
    let result = code
        .decode(&shares)
        .and_then(|coeffs| scalars_to_bytes(&coeffs, ciphertext_len))
        .and_then(|ct| decrypt_fragment(key, ctx, &ct));
    (result, faults)
}
