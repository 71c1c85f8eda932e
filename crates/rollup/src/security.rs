//! The economic condition of thesis Eq 3.5 (§3.3.4, Table 3-1): a rational
//! malicious executor profits only if it can bribe every one of the `n`
//! validators more than each would earn by disclosing it, and its total
//! gain still exceeds the bribes:
//!
//! ```text
//! z_i > ë × y + k_i × f          (each validator i prefers the bribe)
//! Σ_{j=1..m} x_j > Σ_{i=1..n} z_i (the executor still gains)
//! ```
//!
//! The seed writes the second line as `n × z_i` (one bribe for all); we sum
//! per-validator bribes, which reduces to it when all `k_i` are equal. All
//! amounts are minor units; `ë` is in thousandths, and the smallest bribe
//! that beats disclosure is one minor unit above `ë × y + k_i × f`.

use gridledger_core::Amount;

/// Table 3-1 quantities.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollusionEconomics {
    /// `x_j`: the executor's profit from each of its `m` transactions.
    pub profits: Vec<Amount>,
    /// `y`: each participant's deposit on the primary chain.
    pub deposit: Amount,
    /// `ë` in thousandths.
    pub bonus_permille: u32,
    /// `f`: fee each smart meter pays a delegated validator.
    pub delegation_fee: Amount,
    /// `k_i` for each of the `n` validators: smart meters that pick it.
    pub picks: Vec<u32>,
}

impl CollusionEconomics {
    /// The least bribe `z_i` validator `i` would accept: `ë×y + k_i×f + 1`.
    pub fn min_bribe(&self, i: usize) -> Option<Amount> {
        let k = u128::from(*self.picks.get(i)?);
        let disclose = self.deposit.0.checked_mul(u128::from(self.bonus_permille))? / 1000;
        disclose.checked_add(k.checked_mul(self.delegation_fee.0)?)?.checked_add(1).map(Amount)
    }

    /// Total bribes to buy all `n` validators; `None` on overflow.
    pub fn total_bribe(&self) -> Option<Amount> {
        (0..self.picks.len()).try_fold(Amount::ZERO, |acc, i| acc.checked_add(self.min_bribe(i)?))
    }

    /// Eq 3.5: can the malicious executor profit?
    pub fn executor_can_profit(&self) -> bool {
        let gain = self.profits.iter().try_fold(Amount::ZERO, |a, x| a.checked_add(*x));
        match (gain, self.total_bribe()) {
            (Some(g), Some(b)) => g > b,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}
