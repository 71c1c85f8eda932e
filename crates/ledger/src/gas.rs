//! The gas schedule and meter.
//!
//! One schedule, mirroring Ethereum's (Berlin/London) costs for the operations
//! our native contracts perform, so gas figures stand beside the seeds'
//! Solidity measurements (thesis Tables 3-2, 3-3):
//!
//! | operation | gas | Ethereum counterpart |
//! |---|---|---|
//! | transaction base | 21,000 | `G_transaction` |
//! | calldata, per zero / non-zero byte | 4 / 16 | `G_txdatazero` / `G_txdatanonzero` (EIP-2028) |
//! | contract call overhead | 2,600 | cold `CALL` (EIP-2929) |
//! | storage read | 2,100 | cold `SLOAD` (EIP-2929) |
//! | storage write, new slot | 20,000 | `G_sset` |
//! | storage write, existing slot / delete | 2,900 | `G_sreset` − cold surcharge (EIP-2929) |
//! | storage, per 32-byte word beyond the first | same as one slot | values are laid out in 32-byte slots |
//! | hashing | 30 + 6 per word | `KECCAK256` |
//! | signature recovery / verification | 3,000 | `ecrecover` precompile |
//! | value transfer out of a contract | 9,000 | `G_callvalue` |
//! | balance read | 2,600 | cold `BALANCE` |
//! | event | 375 + 375 per topic + 8 per byte | `LOG` |
//!
//! Storage deletes earn no refund (EIP-3529 removed most of them).

use thiserror::Error;

pub const TX_BASE: u64 = 21_000;
pub const CALLDATA_ZERO: u64 = 4;
pub const CALLDATA_NONZERO: u64 = 16;
pub const CALL: u64 = 2_600;
pub const SLOAD: u64 = 2_100;
/// A recent block's hash (`BLOCKHASH`).
pub const BLOCK_HASH: u64 = 20;
pub const SSTORE_SET: u64 = 20_000;
pub const SSTORE_RESET: u64 = 2_900;
pub const HASH_BASE: u64 = 30;
pub const HASH_WORD: u64 = 6;
pub const ECRECOVER: u64 = 3_000;
pub const CALL_VALUE: u64 = 9_000;
pub const BALANCE: u64 = 2_600;
pub const LOG_BASE: u64 = 375;
pub const LOG_TOPIC: u64 = 375;
pub const LOG_BYTE: u64 = 8;

/// 32-byte words needed for `len` bytes (at least one).
pub fn words(len: usize) -> u64 {
    (len as u64).div_ceil(32).max(1)
}

/// Calldata cost of a byte string.
pub fn calldata(bytes: &[u8]) -> u64 {
    bytes.iter().map(|b| if *b == 0 { CALLDATA_ZERO } else { CALLDATA_NONZERO }).sum()
}

/// The meter ran dry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("out of gas: limit {limit}, needed {needed}")]
pub struct OutOfGas {
    pub limit: u64,
    pub needed: u64,
}

/// Counts gas against a limit.
#[derive(Debug, Clone, Copy)]
pub struct GasMeter {
    limit: u64,
    used: u64,
}

impl GasMeter {
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    pub fn charge(&mut self, gas: u64) -> Result<(), OutOfGas> {
        let needed = self.used.saturating_add(gas);
        if needed > self.limit {
            self.used = self.limit;
            return Err(OutOfGas { limit: self.limit, needed });
        }
        self.used = needed;
        Ok(())
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_stops_at_limit() {
        let mut m = GasMeter::new(100);
        assert!(m.charge(60).is_ok());
        assert_eq!(m.charge(50), Err(OutOfGas { limit: 100, needed: 110 }));
        assert_eq!(m.used(), 100);
    }

    #[test]
    fn calldata_prices_zero_bytes_lower() {
        assert_eq!(calldata(&[0, 1, 0, 2]), 2 * CALLDATA_ZERO + 2 * CALLDATA_NONZERO);
        assert_eq!(words(0), 1);
        assert_eq!(words(33), 2);
    }
}
