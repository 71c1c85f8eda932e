//! Helpers shared by the consensus integration tests.
#![allow(dead_code)]

pub mod late_input;
pub mod lbft;
