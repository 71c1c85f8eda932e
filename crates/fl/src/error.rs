//! Typed errors for everything that can arrive from outside.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlError {
    /// A fragment, subfragment or byte string has the wrong length.
    #[error("wrong length: expected {expected}, got {got}")]
    WrongLength { expected: usize, got: usize },
    /// Bytes that are not a canonical field element or curve point.
    #[error("malformed encoding: {0}")]
    Malformed(&'static str),
    /// Not enough distinct, in-range positions to decode.
    #[error("undecodable: need {need} distinct positions, have {have}")]
    Undecodable { need: usize, have: usize },
    /// A share that does not lie on the polynomial the others decode to.
    #[error("share at position {index} is inconsistent with the decoded polynomial")]
    Inconsistent { index: usize },
    /// A position outside the codeword.
    #[error("position {index} out of range (codeword length {len})")]
    PositionOutOfRange { index: usize, len: usize },
    /// A per-position KZG proof does not verify.
    #[error("proof for position {index} does not verify")]
    ProofFailed { index: usize },
    /// Parameters the setup or code cannot serve.
    #[error("unsupported parameters: {0}")]
    Unsupported(&'static str),
    /// A degree proof that does not show `deg p < bound`.
    #[error("commitment not shown to have degree below {bound}")]
    DegreeTooHigh { bound: usize },
    /// A mini-fragment or global subfragment whose Merkle proofs do not lead
    /// to the agreed root (`client` is `None` for a node's own subfragment),
    /// or a mini-fragment that names someone other than its sender (then
    /// `node` is the sending node, or `client` the forwarding client). A
    /// client's record of a refused mini-fragment names its sender in
    /// [`crate::dissemination::AssemblyFault::Refused`]'s `from`.
    #[error("Merkle proof of node {node}'s (mini-)fragment (client {client:?}) does not reach the root")]
    MerkleProofFailed { node: usize, client: Option<usize> },
    /// A message for another chain or round.
    #[error("message for chain {chain}, round {round} is not for this one")]
    WrongContext { chain: u32, round: u32 },
    /// A bounded buffer is full; the input was dropped.
    #[error("buffer full, input dropped")]
    Overloaded,
    /// AEAD authentication failed (wrong key, nonce, associated data or tampered ciphertext).
    #[error("fragment decryption failed")]
    DecryptFailed,
    /// An upload record whose signature does not verify under its client's
    /// registered key (forged, unsigned or from an unknown client).
    #[error("upload record of client {client} is not signed by its registered key")]
    Unauthenticated { client: u32 },
    /// An upload record sent by someone other than its client: a client
    /// sends only its own upload (the record names `client`), so a relay of
    /// it is the sender's fault ([`crate::consensus::Fault::Relayed`]).
    #[error("upload of client {client} not sent by that client")]
    NotOwnUpload { client: u32 },
    /// A client that signed two different upload records for one round
    /// (the leader excludes it with equivocation evidence).
    #[error("client {client} signed two different upload records for the round")]
    Equivocated { client: u32 },
}
