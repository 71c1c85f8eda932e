//! Transaction management for leaderless BFT (thesis Ch.4): the transaction
//! model and π^τ (§4.3.3, §4.4, Algorithm 4.1), TBG (§4.5, Algorithm 4.2),
//! and the HSM and random-selection baselines, all behind one batching
//! trait ([`BatchPolicy`]) and one P^ABC-facing source ([`BatchSource`]).
//!
//! The policies only choose batch contents; the batch broadcast and block
//! agreement primitives of P^ABC are untouched (Theorem 4.3).

pub mod batch;
pub mod hsm;
pub mod pi_tau;
pub mod source;
pub mod tbg;
pub mod tx;

pub use batch::{BatchItem, BatchPolicy, BatchSource, Placement, StoreError};
pub use hsm::{hsm_space, HsmBatcher, RandomBatcher};
pub use pi_tau::{
    Admitted, Applied, Invalid, Outcome, PiTau, PiTauConfig, PiTauConfigError, PiTauStats, Rejection, Undecided,
};
pub use source::PolicySource;
pub use tbg::{TbgBatcher, TbgConfig, TbgConfigError};
pub use tx::{array_function, nonce_value, LbftTx, Theta, MAX_REQUEST};

#[cfg(test)]
mod tests;
