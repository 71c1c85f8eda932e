//! The float → integer boundary between the physics and the ledger.
//!
//! Rounding rule: energy is rounded to the nearest whole Wh and money to the
//! nearest minor unit, ties to even (banker's rounding, so repeated
//! conversions carry no systematic bias). Non-finite or out-of-range values
//! are refused, never saturated.

/// Why a float could not cross into the ledger.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UnitError {
    #[error("value {0} is not finite")]
    NotFinite(f64),
    #[error("value {0} is out of range for the ledger's integers")]
    OutOfRange(f64),
}

fn round_i64(x: f64) -> Result<i64, UnitError> {
    if !x.is_finite() {
        return Err(UnitError::NotFinite(x));
    }
    let r = x.round_ties_even();
    if r < i64::MIN as f64 || r >= i64::MAX as f64 {
        return Err(UnitError::OutOfRange(x));
    }
    Ok(r as i64)
}

/// Energy of `mw` megawatts held for `seconds`, in Wh (ties to even).
pub fn mw_for_seconds_to_wh(mw: f64, seconds: u32) -> Result<i64, UnitError> {
    round_i64(mw * 1e6 * f64::from(seconds) / 3600.0)
}

/// An amount in major currency units (e.g. a price × energy) in minor units
/// given `minor_per_major` (100 for cents), ties to even.
pub fn to_minor_units(amount: f64, minor_per_major: u32) -> Result<i64, UnitError> {
    round_i64(amount * f64::from(minor_per_major))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_ties_to_even_and_refuses_nan() {
        assert_eq!(mw_for_seconds_to_wh(1.0, 3600), Ok(1_000_000));
        assert_eq!(to_minor_units(0.125, 100), Ok(12)); // 12.5 → 12
        assert_eq!(to_minor_units(0.375, 100), Ok(38)); // 37.5 → 38
        assert!(matches!(to_minor_units(f64::NAN, 100), Err(UnitError::NotFinite(_))));
        assert!(matches!(mw_for_seconds_to_wh(1e20, 3600), Err(UnitError::OutOfRange(_))));
    }
}
