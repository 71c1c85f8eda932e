//! SC_AMM's exchange-rate arithmetic (thesis §5.4.2, Eq. 5.2), in integers.
//!
//! Eq. 5.2 gives `E_{i,j} = (B_j / B_i) · (w_i / w_j)`, the number of
//! `Token_j` one `Token_i` is worth in a Balancer-style weighted pool with
//! balances `B` and weights `w` (`Σ w = 1`, here `Σ w = WEIGHT_ONE`). The
//! amount of `Token_i` worth `x_j Token_j` (Algorithm 5.1 ln 04) is then
//!
//! `x_i = x_j / E_{i,j} = x_j · B_i · w_j / (B_j · w_i)`
//!
//! computed exactly in `u128` and **rounded up**: whoever pays in `Token_i`
//! pays at least the pool's price, never a unit less, so rounding never
//! moves value from the pool's side (the liquidity it prices for) to the
//! payer. The same rounding makes the deposit requirement `x_B` (ln 04–05)
//! the stricter of the two neighbours. An intermediate product that does not
//! fit in `u128` is refused ([`XchainError::Overflow`]), never wrapped.

use crate::error::XchainError;
use gridledger_core::ChainId;

/// The weights' denominator: `Σ w_i = WEIGHT_ONE` stands for `Σ w_i = 1`.
pub const WEIGHT_ONE: u64 = 1_000_000;

/// `⌈a · b / c⌉` without overflow of the final result; `None` if an
/// intermediate product overflows or `c = 0`.
fn mul_div_ceil(a: u128, b: u128, c: u128) -> Option<u128> {
    if c == 0 {
        return None;
    }
    let p = a.checked_mul(b)?;
    Some(p.div_ceil(c))
}

/// `x_i = ⌈x_j · B_i · w_j / (B_j · w_i)⌉`: the `Token_i` worth `x_j Token_j`.
pub fn amount_in_for(
    x_j: u128,
    (token_i, b_i, w_i): (ChainId, u128, u64),
    (token_j, b_j, w_j): (ChainId, u128, u64),
) -> Result<u128, XchainError> {
    if x_j == 0 {
        return Err(XchainError::ZeroAmount);
    }
    if w_i == 0 {
        return Err(XchainError::UnknownToken(token_i));
    }
    if w_j == 0 {
        return Err(XchainError::UnknownToken(token_j));
    }
    if b_i == 0 {
        return Err(XchainError::NoLiquidity(token_i));
    }
    if b_j == 0 {
        return Err(XchainError::NoLiquidity(token_j));
    }
    let num = b_i.checked_mul(w_j as u128).ok_or(XchainError::Overflow)?;
    let den = b_j.checked_mul(w_i as u128).ok_or(XchainError::Overflow)?;
    mul_div_ceil(x_j, num, den).ok_or(XchainError::Overflow)
}

/// Checks a weight vector: every weight positive and the sum `WEIGHT_ONE`.
pub fn check_weights(weights: &[(ChainId, u64)]) -> Result<(), String> {
    let mut sum: u64 = 0;
    for (t, w) in weights {
        if *w == 0 {
            return Err(format!("token {t} has weight 0"));
        }
        sum = sum.checked_add(*w).ok_or("weights overflow")?;
    }
    if sum != WEIGHT_ONE {
        return Err(format!("weights sum to {sum}, not {WEIGHT_ONE}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_equal_balances_is_one_to_one() {
        assert_eq!(amount_in_for(100, (1, 1_000, 500_000), (2, 1_000, 500_000)), Ok(100));
    }

    #[test]
    fn rate_follows_eq_5_2_and_rounds_up() {
        // B_i = 3000, B_j = 1000, equal weights: E_{i,j} = 1/3, so x_i = 3·x_j.
        assert_eq!(amount_in_for(7, (1, 3_000, 500_000), (2, 1_000, 500_000)), Ok(21));
        // B_i = 1000, B_j = 3000: x_i = x_j / 3, 7/3 rounds up to 3.
        assert_eq!(amount_in_for(7, (1, 1_000, 500_000), (2, 3_000, 500_000)), Ok(3));
        // Weights: w_i = 0.75, w_j = 0.25, equal balances: E = 3, x_i = ⌈x_j/3⌉.
        assert_eq!(amount_in_for(10, (1, 1_000, 750_000), (2, 1_000, 250_000)), Ok(4));
    }

    #[test]
    fn rounding_never_favours_the_payer() {
        for x_j in 1..200u128 {
            for (bi, bj) in [(7u128, 13u128), (1_000, 999), (5, 1_000_000)] {
                let x_i = amount_in_for(x_j, (1, bi, 400_000), (2, bj, 600_000)).unwrap();
                // x_i · B_j · w_i ≥ x_j · B_i · w_j, and one unit less would not be.
                assert!(x_i * bj * 400_000 >= x_j * bi * 600_000);
                assert!((x_i - 1) * bj * 400_000 < x_j * bi * 600_000);
            }
        }
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(amount_in_for(0, (1, 1, 1), (2, 1, 1)), Err(XchainError::ZeroAmount));
        assert_eq!(amount_in_for(1, (1, 0, 1), (2, 1, 1)), Err(XchainError::NoLiquidity(1)));
        assert_eq!(amount_in_for(1, (1, 1, 0), (2, 1, 1)), Err(XchainError::UnknownToken(1)));
        assert_eq!(amount_in_for(u128::MAX, (1, u128::MAX, 1), (2, 1, 1)), Err(XchainError::Overflow));
        assert!(check_weights(&[(1, 500_000), (2, 500_000)]).is_ok());
        assert!(check_weights(&[(1, 500_000), (2, 400_000)]).is_err());
        assert!(check_weights(&[(1, 1_000_000), (2, 0)]).is_err());
    }
}
