//! Leaderless BFT (thesis Ch.4). Transaction management (π^τ) and batch
//! generation (TBG, HSM, random) live in [`txm`].
pub mod txm;
