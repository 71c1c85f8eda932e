//! gridledger's blockchain of blockchains (thesis Ch.5).
//!
//! - [`headers`]: external-chain headers and their validator signatures, as
//!   the BoB checks them (§5.3.1, assumption (ii)).
//! - [`embedded`]: an in-process chain with its own validators, sealing
//!   blocks with deterministic or probabilistic finality.
//! - [`threshold`]: threshold accounts `TPK_Addr_i` (§5.2.6).
//! - [`amm`]: SC_AMM's integer rate arithmetic (Eq. 5.2) and the reference
//!   balances it prices from, which no liquidity provider can move by more
//!   than 2 % a BoB block (see its "Reference balances" decision).
//! - [`bob`]: the BoB's contracts — header store, SC_D, SC_AMM, Π_CCTC,
//!   SC_T and SC_MPV (Table 5-1, Algorithm 5.1).
//! - [`replica`]: one validator of an embedded chain with its own key.
//! - [`mmr`]: the accumulator of relayed headers: proofs against headers the
//!   BoB no longer keeps (late-lock refunds, and `prove_relayed`,
//!   `claim_relayed`, `ccdi_cct_relayed` when a relay catching up dropped
//!   a header before its proof was included).
//! - [`htlc`]: the hash time-locked atomic swap baseline (Π_AS family).
//! - [`mbs`]: a BoB-MBS of one BoB and N external chains with relayers,
//!   and the CCTE participants' side of Algorithm 5.1.
//! - [`wallet`]: the receiver's registry of the sender nonces it signed
//!   terms for, across deployments (one transfer pays one set of terms).
//!
//! External chains are plain ledgers with no contracts at all: a CCTE's
//! native transaction is an ordinary transfer (fungibility) checked only by
//! its signature (script-minimum), and nothing about any other chain is
//! stored on them (independence, §5.2.1). It carries a deadline (a
//! `TransferUntil`, [`bob::BobConfig::nt_valid_until`], attack R12-4): the
//! chain refuses it once its landing could no longer be proved.
//!
//! Every chain of a deployment signs in its own signing domain, its genesis
//! hash ([`embedded::EmbeddedChain::domain`]): a transaction's signature
//! covers the chain's genesis hash besides its body, so a transaction
//! signed on one deployment's chain is refused on every other deployment's,
//! even one whose numeric chain id collides with it. The numeric ids (for
//! display and routing) are per deployment too, derived from its genesis
//! time and committee seed ([`mbs::MbsSpec::chain_base`]): the BoB is
//! `base`, external chain `n` is `base + 1 + n` ([`mbs::BobMbs::chain_ids`]).
//! The BoB's genesis also commits to the deployment's shape (κ_i, finality,
//! chains, …: [`mbs::MbsSpec::shape`]), so the contract's rules cannot change
//! under a reopened deployment.
//! Only tests use the fixed ids [`mbs::BOB_CHAIN`] / [`mbs::FIRST_EXTERNAL`]
//! (`MbsSpec::fixed_ids`); on-disk chain directories are named by index
//! (`bob`, `chain-0`, `chain-1`, …).

pub mod amm;
pub mod bench;
pub mod bob;
pub mod ccdi;
pub mod ccdi_run;
pub mod embedded;
pub mod error;
pub mod headers;
pub mod htlc;
pub mod journal;
pub mod lmc;
pub mod mbs;
pub mod mmr;
pub mod replica;
pub mod scbg;
pub mod threshold;
pub mod wallet;

pub use bob::{BobConfig, BobContract, CctRecord, CctTerms, Side, SideState, BOB_CONTRACT_ID};
pub use embedded::EmbeddedChain;
pub use error::XchainError;
pub use headers::{ChainRegistration, Finality, SealedHeader};
pub use mbs::{BobMbs, MbsSpec, NodeKey};
