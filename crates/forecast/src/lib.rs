//! Load forecasting for CTP-FL (thesis Ch.7, §7.5.1).
//!
//! - [`tcn`]: the temporal convolutional network of the seed (residual
//!   dilated causal blocks; hidden 64, 8 levels, kernel 3, dropout 0.1;
//!   SGD with learning rate 0.001) on `candle`, with its parameters as one
//!   flat `f32` vector — what a CTP-FL client codes and sends;
//! - [`federated`]: training through CTP-FL on `B` chains in the simulator,
//!   with Byzantine clients and nodes, per-round losses and timings;
//! - [`profiles`]: many clients' hourly loads from SimBench's household
//!   profile types (shipped in `data/`) with seeded variation;
//! - [`sgsc`]: the loader for the Smart Grid Smart City interval-reading
//!   CSV layout the seed trained on (30-minute kWh → hourly averages);
//! - [`series`]: normalisation to `[0, 1]` and supervised windows.

pub mod federated;
pub mod profiles;
pub mod series;
pub mod sgsc;
pub mod tcn;

/// Why forecasting refused or failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ForecastError {
    /// An error from the tensor library.
    #[error("tensor error: {0}")]
    Tensor(String),
    /// A parameter vector of the wrong length.
    #[error("wrong parameter count: expected {expected}, got {got}")]
    WrongLength { expected: usize, got: usize },
    /// A non-finite value where a number is needed.
    #[error("non-finite value")]
    NonFinite,
    /// Too little data for the requested windows.
    #[error("not enough data: need {need} points, have {have}")]
    NotEnoughData { need: usize, have: usize },
    /// A federated run's settings that cannot work.
    #[error("configuration: {0}")]
    Config(String),
    /// A CTP-FL round that failed (no commit, no decode, a coding error).
    #[error("CTP-FL: {0}")]
    Protocol(String),
    /// A CSV line that does not parse.
    #[error("line {line}: {reason}")]
    Csv { line: usize, reason: String },
    /// An input past a cap of the loader (readings, customers).
    #[error("input too large: more than {limit} {what}")]
    TooLarge { what: &'static str, limit: usize },
}

impl From<candle_core::Error> for ForecastError {
    fn from(e: candle_core::Error) -> Self {
        ForecastError::Tensor(e.to_string())
    }
}
