pub mod lbft;
pub mod pbft;
