//! CTP-FL (thesis Ch.7): federated load forecasting over many chains.
//!
//! Coding primitives (§7.2), the message coding protocol (§7.3) and the
//! dual consensus (§7.4):
//! - [`rs`]: Reed–Solomon over the BLS12-381 scalar field, evaluated on a
//!   multiplicative subgroup so FFTs apply (Eqs 7.1–7.4);
//! - [`kzg`]: KZG polynomial commitments, per-position proofs and
//!   verification (Eqs 7.5–7.8) on `blstrs`;
//! - [`cells`]: subfragments as cells — one multi-point proof per cell,
//!   all cell proofs with FK20, batched verification, degree-bound proofs;
//! - [`aead`]: fragment encryption (Eqs 7.9–7.10) with ChaCha20-Poly1305;
//! - [`coding`]: C2B — a fragment encrypted, coded into one cell per node,
//!   committed with a degree proof; the nodes' checks and the leader's decoding;
//! - [`dissemination`]: B2C and C2C — double erasure coding of the global
//!   fragment bound by one Merkle root, and the clients' double decoding;
//! - [`aggregate`]: trimmed mean (Eqs 7.19–7.20) and FedAvg;
//! - [`consensus`]: the dual consensus of one chain (§7.4), sans-IO, with
//!   its omission rule (a client every node named is left out only with
//!   [`consensus::Exclusion`] evidence that it is faulty) and its
//!   root agreement accepting a PBFT block only for an aggregation view
//!   whose attested proposal the node verified (a node asked to validate a
//!   block of a view it never saw fetches that proposal from its peers,
//!   checks it in full and rebuilds its own subfragment from `f + 1`
//!   others', so leaders that skip `f` nodes cannot halt a chain);
//! - [`round`]: a chain's nodes and clients in the seeded simulator;
//! - [`byzantine`]: Byzantine node behaviours for those runs;
//! - [`mutants`]: planted bugs for the mutation-sensitivity check;
//! - [`merkle`]: Merkle roots and proofs over commitments (Eqs 7.11–7.13),
//!   reusing the project's Merkle tree.

pub mod aead;
pub mod aggregate;
pub mod byzantine;
pub mod cells;
pub mod coding;
pub mod consensus;
pub mod dissemination;
pub mod error;
pub mod field;
pub mod kzg;
pub mod merkle;
pub mod mutants;
pub mod round;
pub mod rs;

pub use error::FlError;
