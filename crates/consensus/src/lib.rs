pub mod pbft;
