//! The client side of C2B (thesis §7.3.1) and its checks at the node: a
//! local model fragment is encrypted (Eq 7.9), packed into field elements,
//! Reed–Solomon coded into `K` subfragments — one cell per node
//! ([`crate::cells`]) — committed (Eq 7.6) and proved cell by cell (Eq 7.7).
//! Node `N_k` receives `{e, c, VC, sf_k, π_k}` as a [`LocalMessage`] and
//! checks it (Eq 7.8); the leader decodes from any `T` verified cells
//! (Eq 7.3) and decrypts (Eq 7.10).
//!
//! **The upload record** ([`UploadRecord`]) is what the client authenticates
//! (it is the same in all `K` messages of a fragment and is what the
//! client's signature or the chain's transaction covers): the context, the
//! commitment, the ciphertext length and a degree proof for the code's `k`.
//! Without the degree proof a client could commit to a polynomial of
//! degree `≥ k` whose cells all verify but whose `T`-subsets decode to
//! different fragments; with it, any `T` verified cells decode to the one
//! committed fragment, which is what the leaderless filter relies on.
//!
//! **Keys** (decision, the seed's `Enc(m, PK)` with `SK` in every TEE): each
//! client encrypts with its own AEAD key `client_key(SK, c)`, derived from
//! the enclaves' shared secret inside the enclaves only; a client is given
//! its own key and nothing else ([`ClientSecrets`]), so only an enclave (or
//! the client) decrypts, and one client's ciphertext does not decrypt as
//! another's. A client signs its upload records with an independent
//! key pair whose public half the chain registers
//! (`ChainConfig::client_keys`): nothing a client signs with is derived
//! from a value another client (or the enclaves' secret) holds.

use crate::aead::{decrypt_fragment, derive_nonce, encrypt_fragment, FragmentContext, NONCE_LEN};
use crate::cells::{Cell, CellCode, CellProver, DegreeProof};
use crate::error::FlError;
use crate::field::{bytes_to_scalars, scalars_to_bytes, BYTES_PER_ELEMENT};
use crate::kzg::{Commitment, Kzg};
use blstrs::Scalar;
use ff::Field;
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::crypto::{KeyPair, PublicKey, Signature};
use gridledger_core::Hash32;

/// Domain tag for per-client fragment keys.
pub const CLIENT_KEY: Tag = Tag("gridledger/fl-client-key/v1");
/// Domain tag of a fragment coder's parameter digest.
pub const CODER_PARAMS: Tag = Tag("gridledger/fl-fragment-coder/v1");
/// Domain tag for the hash of an upload record.
pub const UPLOAD_RECORD: Tag = Tag("gridledger/fl-upload-record/v1");
/// What client `D_c` holds, and all it holds: its own fragment key (the
/// enclaves derive the same key from their shared secret, [`client_key`];
/// the client is handed only its own) and its own signing key pair, whose
/// public half the chain registers in `ChainConfig::client_keys`. A record
/// under another key (a Byzantine client squatting `D_c`'s id) does not
/// verify, and no client can derive another's keys.
#[derive(Clone)]
pub struct ClientSecrets {
    pub fragment_key: [u8; 32],
    pub signing: KeyPair,
}

/// Client `c`'s fragment key, derived from the enclaves' shared secret:
/// computed inside the enclaves, and once for the client's provisioning
/// (never by another client, which does not hold the secret).
pub fn client_key(shared_secret: &[u8; 32], client: u32) -> [u8; 32] {
    let mut b = shared_secret.to_vec();
    b.extend_from_slice(&client.to_le_bytes());
    hash_bytes(CLIENT_KEY, &b).0
}

/// What a client publishes once per fragment and every node checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub ctx: FragmentContext,
    pub client: u32,
    /// The AEAD nonce of this encryption, derived from the client's key,
    /// the context and the plaintext (`aead::derive_nonce`): a retry of
    /// the same model is the same record, another model another nonce.
    pub nonce: [u8; NONCE_LEN],
    pub commitment: Commitment,
    pub ciphertext_len: u32,
    pub degree_proof: DegreeProof,
    /// The client's signature over [`UploadRecord::digest`].
    pub signature: Signature,
}

impl UploadRecord {
    /// Checks the client's signature over the record against its
    /// registered key `pk`.
    pub fn verify_signature(&self, pk: &PublicKey) -> Result<(), FlError> {
        gridledger_core::crypto::verify(pk, &self.digest(), &self.signature)
            .map_err(|_| FlError::Unauthenticated { client: self.client })
    }

    /// Hash of the record without its signature (what a client signs).
    pub fn digest(&self) -> Hash32 {
        let mut b = Vec::with_capacity(44 + 4 + NONCE_LEN + 48 + 4 + 48);
        b.extend_from_slice(&self.ctx.bytes());
        b.extend_from_slice(&self.client.to_le_bytes());
        b.extend_from_slice(&self.nonce);
        b.extend_from_slice(&self.commitment.to_bytes());
        b.extend_from_slice(&self.ciphertext_len.to_le_bytes());
        b.extend_from_slice(&self.degree_proof.to_bytes());
        hash_bytes(UPLOAD_RECORD, &b)
    }
}

/// `{e, c, VC, sf_k, π_k}`: subfragment (cell) `k` of a fragment, for node `N_k`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMessage {
    pub record: UploadRecord,
    pub cell: Cell,
}

/// A coded fragment: its record and one cell per node.
#[derive(Clone, Debug)]
pub struct CodedFragment {
    pub record: UploadRecord,
    pub cells: Vec<Cell>,
}

impl CodedFragment {
    /// The message for node `k`.
    pub fn message(&self, k: usize) -> Option<LocalMessage> {
        self.cells.get(k).map(|cell| LocalMessage { record: self.record, cell: cell.clone() })
    }
}

/// The code, setup and FK20 tables for fragments of one chain.
#[derive(Clone, Debug)]
pub struct FragmentCoder {
    kzg: Kzg,
    code: CellCode,
    prover: CellProver,
    nodes: usize,
}

impl FragmentCoder {
    /// Fragments whose ciphertext is at most `max_ciphertext_len` bytes, coded
    /// for `nodes` nodes of which any `threshold` decode.
    pub fn new(kzg: Kzg, max_ciphertext_len: usize, nodes: usize, threshold: usize) -> Result<Self, FlError> {
        let k = max_ciphertext_len.div_ceil(BYTES_PER_ELEMENT).max(1);
        let code = CellCode::for_nodes(k, nodes, threshold)?;
        let prover = CellProver::new(&kzg, code.cell_size(), k)?;
        Ok(Self { kzg, code, prover, nodes })
    }

    pub fn code(&self) -> &CellCode {
        &self.code
    }

    pub fn kzg(&self) -> &Kzg {
        &self.kzg
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// A digest of this coder's parameters (code, node count and setup),
    /// bound into the chain instance (`ChainConfig::instance`).
    pub fn params_digest(&self) -> Hash32 {
        let mut b = Vec::new();
        for n in [self.nodes, self.code.k(), self.code.n(), self.code.cells(), self.code.cell_size()] {
            b.extend_from_slice(&(n as u64).to_le_bytes());
        }
        b.extend_from_slice(&self.kzg.setup_id());
        hash_bytes(CODER_PARAMS, &b)
    }

    /// Bytes of this coder's set-up in memory: the KZG setup and the FK20
    /// prover's tables.
    pub fn setup_bytes(&self) -> u64 {
        Kzg::bytes_for(self.kzg.capacity()).saturating_add(self.prover.table_bytes())
    }

    /// Largest ciphertext this coder takes.
    pub fn max_ciphertext_len(&self) -> usize {
        self.code.k() * BYTES_PER_ELEMENT
    }

    /// Steps 2)–5) of §7.3.1 for one fragment: encrypt under the client's
    /// fragment key `key` under the plaintext's derived nonce, code, commit,
    /// and sign the record (nonce included) with `signer`. Deterministic:
    /// encoding the same plaintext in the same context again (a retry after
    /// a crash) gives the same record and cells (the signature is RFC 6979
    /// ECDSA), so a retry is never two records of one client.
    pub fn encode(
        &self,
        key: &[u8; 32],
        signer: &KeyPair,
        ctx: &FragmentContext,
        client: u32,
        plaintext: &[u8],
    ) -> Result<CodedFragment, FlError> {
        let nonce = if crate::mutants::active(crate::mutants::Mutation::RandomNonce) {
            rand::random()
        } else {
            derive_nonce(key, ctx, plaintext)
        };
        let ct = encrypt_fragment(key, ctx, &nonce, plaintext)?;
        if ct.len() > self.max_ciphertext_len() {
            return Err(FlError::WrongLength { expected: self.max_ciphertext_len(), got: ct.len() });
        }
        let mut coeffs = bytes_to_scalars(&ct);
        coeffs.resize(self.code.k(), Scalar::ZERO);
        let commitment = self.kzg.commit(&coeffs)?;
        let degree_proof = self.kzg.prove_degree(&coeffs, self.code.k())?;
        let mut cells = self.kzg.cells(&self.prover, &self.code, &coeffs)?;
        cells.truncate(self.nodes);
        let mut record = UploadRecord {
            ctx: *ctx,
            client,
            nonce,
            commitment,
            ciphertext_len: ct.len() as u32,
            degree_proof,
            signature: Signature([0; 64]),
        };
        record.signature = signer.sign(&record.digest());
        Ok(CodedFragment { record, cells })
    }

    /// The record's own checks: a length this code carries and the degree bound.
    pub fn check_record(&self, record: &UploadRecord) -> Result<(), FlError> {
        let len = record.ciphertext_len as usize;
        if len == 0 || len > self.max_ciphertext_len() {
            return Err(FlError::WrongLength { expected: self.max_ciphertext_len(), got: len });
        }
        self.kzg.verify_degree(&record.commitment, self.code.k(), &record.degree_proof)
    }

    /// What node `k` checks on a local message (Eq 7.8 on its cell): the
    /// cell is its own, the record holds, and the cell proof verifies.
    pub fn verify_message(&self, node: usize, msg: &LocalMessage) -> Result<(), FlError> {
        if msg.cell.index != node {
            return Err(FlError::PositionOutOfRange { index: msg.cell.index, len: self.nodes });
        }
        self.check_record(&msg.record)?;
        self.kzg.verify_cell(&self.code, &msg.record.commitment, &msg.cell)
    }

    /// Decode and decrypt from received cells of one record. Cells that do
    /// not verify (or belong to no node) are filtered and returned as
    /// typed faults beside the result.
    pub fn decode(
        &self,
        key: &[u8; 32],
        record: &UploadRecord,
        received: &[Cell],
    ) -> (Result<Vec<u8>, FlError>, Vec<FlError>) {
        let (coeffs, faults) = self.decode_cells(record, received);
        (coeffs.and_then(|c| self.open(key, record, &c)), faults)
    }

    /// The first half of [`FragmentCoder::decode`]: the record's checks,
    /// the cells' proofs and the Reed–Solomon decoding to the committed
    /// polynomial's `k` coefficients. An `Ok` here is the one polynomial the
    /// client committed to (the degree proof binds it), whoever decodes it.
    pub fn decode_cells(
        &self,
        record: &UploadRecord,
        received: &[Cell],
    ) -> (Result<Vec<Scalar>, FlError>, Vec<FlError>) {
        if let Err(e) = self.check_record(record) {
            return (Err(e), Vec::new());
        }
        let mut faults = Vec::new();
        let mut ok: Vec<&Cell> = Vec::new();
        for c in received {
            if c.index >= self.nodes {
                faults.push(FlError::PositionOutOfRange { index: c.index, len: self.nodes });
            } else if c.values.len() != self.code.cell_size() {
                faults.push(FlError::WrongLength { expected: self.code.cell_size(), got: c.values.len() });
            } else {
                ok.push(c);
            }
        }
        let items: Vec<(Commitment, &Cell)> = ok.iter().map(|c| (record.commitment, *c)).collect();
        let bad: Vec<usize> = match self.kzg.verify_cells_batch(&self.code, &items) {
            Ok(()) => Vec::new(),
            Err(errs) => {
                let idx = errs
                    .iter()
                    .filter_map(|e| if let FlError::ProofFailed { index } = e { Some(*index) } else { None })
                    .collect();
                faults.extend(errs);
                idx
            }
        };
        let good: Vec<(usize, &[Scalar])> =
            ok.iter().filter(|c| !bad.contains(&c.index)).map(|c| (c.index, c.values.as_slice())).collect();
        (self.code.decode(&good), faults)
    }

    /// The second half of [`FragmentCoder::decode`]: the committed
    /// coefficients to the ciphertext (nothing beyond its length), then
    /// decrypted. An error here is the client's own fault: its signed
    /// record commits to these coefficients.
    pub fn open(&self, key: &[u8; 32], record: &UploadRecord, coeffs: &[Scalar]) -> Result<Vec<u8>, FlError> {
        let len = record.ciphertext_len as usize;
        let used = len.div_ceil(BYTES_PER_ELEMENT);
        if used > coeffs.len() {
            return Err(FlError::WrongLength { expected: coeffs.len() * BYTES_PER_ELEMENT, got: len });
        }
        if coeffs[used..].iter().any(|c| !bool::from(c.is_zero())) {
            return Err(FlError::Malformed("coefficients beyond the ciphertext length"));
        }
        let ct = scalars_to_bytes(&coeffs[..used], len)?;
        decrypt_fragment(key, &record.ctx, &record.nonce, &ct)
    }
}
