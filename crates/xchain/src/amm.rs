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

//!
//! ## Price-neutral liquidity (attack R6-5, R6-4)
//!
//! The pool never trades: swaps settle by native transfers, so nothing but
//! its liquidity providers moved its balances, and no arbitrage pulled a
//! moved price back. While an LP could add or take out one token alone
//! (one pool and one LP share per token), it set the price at will: a
//! 99.9 % withdrawal of Token_i set the rate every receiver signs (R5-5,
//! R6-5), of Token_B the withholding penalty (R5-3, R6-4); the reference
//! below only delayed it.
//!
//! Decision: one LP share is a part of the *whole* pool (Uniswap v2's rule,
//! extended to every token of the weighted pool, as Balancer's all-asset
//! join/exit):
//! - the opening join (share supply 0) brings every token of the pool; its
//!   amounts are the balances (not the price, below), and it mints one share per
//!   unit of Token_B, of which `bob::LOCKED_SHARES` are locked for ever (the
//!   supply never returns to 0, so nobody opens the pool again at a price
//!   of its choosing);
//! - a later join of `s` shares pays `⌈s · B_t / S⌉` of *every* token `t`
//!   (it names at most how much of each it brings; `s` is the most those
//!   amounts pay for; the rest stays with it), a withdrawal of `s` shares
//!   receives `⌊s · B_t / S⌋` of every token — exact integers, rounded so
//!   the pool never pays for rounding, and the shares and balances always
//!   add up;
//! - the price is the genesis's reference balances ([`PriceRef`], set
//!   once by the opening join from `BobConfig::reference_balances`) and no
//!   join or withdrawal moves it — not even by its rounding dust, which
//!   only stays with the pool's LPs. A price moves only by trades, which an
//!   arbitrageur would correct; SC_AMM has none (Eq. 5.2 prices CCTs that
//!   settle natively), so its price is the deployment's for its life.
//!   Traded: a deployment whose market moves needs a trading pool (future
//!   work); a CCT's receiver still signs its own bounds on `x_i` and `x_B`.
//!
//! ## The genesis price (attack R7-1)
//!
//! Decision: the price comes from the genesis (`BobConfig`, like the
//! penalty floor), not from the opening join. `provide` is open to anyone;
//! with the opening join's amounts as the price, whoever joined first (a
//! stranger with 1,001 Token_B, 1 Token_i and 1,000 Token_j) fixed the
//! rate for the deployment's life, or opened at 10^6 Token_B per Token_j
//! and withdrew at once so that every CCT was refused for its deposits.
//! Letting only an operator key make the opening join was the other
//! option; it keeps a privileged key in the protocol and a price no party
//! can check before the join, whereas the genesis price is fixed and
//! readable with the rest of the deployment's rules, and the opening join
//! only brings liquidity. The pool still has no price (and no CCT can be
//! priced) until it is open.
//!
//! ## Reference balances (attack R5-5, R5-8, R5-3)
//!
//! SC_AMM prices (`x_i` and `x_B`, Algorithm 5.1 ln 03–04) from each
//! token's **reference balance** ([`PriceRef`]), not its spot balance. The
//! reference follows a balance *at BoB block boundaries* and moves by at
//! most 1/[`PRICE_STEP_DIV`] (2 %) of itself per BoB block toward it (a
//! 1000:1 move takes ~350 blocks). Since R7-1 only the opening join sets it,
//! to the genesis's reference balance (0 during the opening block, the
//! genesis's from the next one), and nothing moves it afterwards; the step
//! bound stays for any future trade path.

use crate::error::XchainError;
use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::{ChainId, Height};

/// A reference balance moves by at most `1/PRICE_STEP_DIV` of itself per
/// BoB block (rounded up, so it reaches its target).
pub const PRICE_STEP_DIV: u128 = 50;

/// A pool's reference balance: `value` during BoB block `at`; from the
/// end of block `at` on the pool's balance has been `target` (its latest
/// change), and each later block boundary moves the reference one step
/// toward it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PriceRef {
    pub value: u128,
    pub at: Height,
    pub target: u128,
}

/// One block's step of a reference `v` toward `t`.
fn step(v: u128, t: u128) -> u128 {
    if v == 0 {
        return t;
    }
    let d = v.div_ceil(PRICE_STEP_DIV);
    if t > v {
        v.saturating_add(d).min(t)
    } else {
        v.saturating_sub(d).max(t)
    }
}

impl PriceRef {
    /// The reference during BoB block `h` (≥ `at`): what a CCT executing
    /// in block `h` is priced at.
    pub fn value_at(&self, h: Height) -> u128 {
        let mut v = self.value;
        let mut n = h.saturating_sub(self.at);
        // Converges in a few thousand steps whatever the ratio (2 % a step).
        while n > 0 && v != self.target {
            v = step(v, self.target);
            n -= 1;
        }
        v
    }

    /// The reference after the pool's balance changed to `balance` in
    /// block `h` (its latest change in that block counts).
    pub fn changed(&self, h: Height, balance: u128) -> PriceRef {
        if h == self.at {
            PriceRef { target: balance, ..*self }
        } else {
            PriceRef { value: self.value_at(h), at: h, target: balance }
        }
    }
}

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
    fn a_reference_moves_at_most_one_step_per_block() {
        // First liquidity: 0 in its own block, the balance from the next.
        let r = PriceRef::default().changed(5, 1_000_000);
        assert_eq!((r.value_at(5), r.value_at(6), r.value_at(100)), (0, 1_000_000, 1_000_000));
        // Drained and refilled within block 10: no move at all.
        let r = r.changed(10, 1).changed(10, 1_000_000);
        assert_eq!(r.value_at(11), 1_000_000);
        // A drain of 99.9 %: 2 % a block, never below the pool.
        let r = r.changed(20, 1_000);
        assert_eq!(r.value_at(21), 980_000);
        assert_eq!(r.value_at(22), 980_000 - 19_600);
        for h in 21..2_000 {
            let (a, b) = (r.value_at(h), r.value_at(h + 1));
            assert!(b <= a && b >= 1_000 && a - b <= a.div_ceil(PRICE_STEP_DIV), "block {h}: {a} -> {b}");
        }
        assert_eq!(r.value_at(10_000), 1_000, "it reaches a balance that stays");
        // A spike held across one boundary: one step up, then back down.
        let r = PriceRef { value: 1_000_000, at: 30, target: 1_000_000 }.changed(30, 1_000_000_000);
        let r = r.changed(31, 1_000_000);
        assert_eq!(r.value_at(31), 1_020_000);
        assert!(r.value_at(32) < 1_020_000);
        // Up from a large value does not overflow.
        let r = PriceRef { value: u128::MAX / 2, at: 0, target: u128::MAX };
        assert!(r.value_at(1) > u128::MAX / 2);
        assert_eq!(r.value_at(1_000), u128::MAX);
    }

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
