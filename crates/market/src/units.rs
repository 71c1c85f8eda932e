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

/// Energy of `kwh` kilowatt-hours in whole Wh (ties to even); negative
/// energy is refused.
pub fn kwh_to_wh(kwh: f64) -> Result<u64, UnitError> {
    let wh = round_i64(kwh * 1000.0)?;
    u64::try_from(wh).map_err(|_| UnitError::OutOfRange(kwh))
}

/// `a / b` for `b > 0`, rounded to the nearest integer, ties to even.
fn div_round_ties_even(a: i128, b: i128) -> i128 {
    let (q, r) = (a.div_euclid(b), a.rem_euclid(b));
    match (2 * r).cmp(&b) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// One bilateral trade in the ledger's integers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SettledTrade {
    pub buyer: usize,
    pub seller: usize,
    /// Energy, whole Wh.
    pub wh: u64,
    /// The trade's price, minor units per MWh (integer).
    pub price_minor_per_mwh: i64,
    /// What the buyer pays the seller, minor units:
    /// `wh · price_minor_per_mwh / 10⁶`, ties to even.
    pub payment_minor: i64,
}

/// An interval's settlement: every trade, and each prosumer's net position.
///
/// Rounding rule (stated once, applied once per quantity): each trade's
/// energy is rounded to whole Wh and its price to whole minor units per MWh
/// (both ties to even, [`kwh_to_wh`], [`to_minor_units`]); the payment is
/// then integer arithmetic, `wh · price / 10⁶` rounded ties to even. One
/// integer payment per trade is debited to its buyer and credited to its
/// seller, so `Σ buyer_pays = Σ seller_receives` exactly, whatever the
/// rounding. Trades that round to 0 Wh are not settled (below the ledger's
/// resolution). Prices are the algorithm's bilateral prices (the network's
/// congestion rent, if any, is the operator's and not settled here).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Settlement {
    /// Minor units per major unit (100: cents).
    pub minor_per_major: u32,
    pub trades: Vec<SettledTrade>,
    /// Per buyer: total paid, minor units.
    pub buyer_pays: Vec<i64>,
    /// Per seller: total received, minor units.
    pub seller_receives: Vec<i64>,
    /// Per buyer and per seller: energy, Wh.
    pub buyer_wh: Vec<u64>,
    pub seller_wh: Vec<u64>,
    /// Σ payments (= Σ receipts), minor units.
    pub total_minor: i64,
    /// Σ energy, Wh.
    pub energy_wh: u64,
}

/// Why an interval could not be settled.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettlementError {
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("trade {index} names buyer {buyer} / seller {seller}, outside the market's {buyers} × {sellers}")]
    UnknownParty { index: usize, buyer: usize, seller: usize, buyers: usize, sellers: usize },
    #[error("a settlement total overflows the ledger's integers")]
    Overflow,
}

/// Settles `(buyer, seller, kWh, price $/kWh)` trades of a market with
/// `buyers × sellers` prosumers in integer Wh and minor units (see
/// [`Settlement`] for the rounding rule).
pub fn settle(
    trades: &[(usize, usize, f64, f64)],
    buyers: usize,
    sellers: usize,
    minor_per_major: u32,
) -> Result<Settlement, SettlementError> {
    let mut st = Settlement {
        minor_per_major,
        trades: Vec::new(),
        buyer_pays: vec![0; buyers],
        seller_receives: vec![0; sellers],
        buyer_wh: vec![0; buyers],
        seller_wh: vec![0; sellers],
        total_minor: 0,
        energy_wh: 0,
    };
    for (index, &(buyer, seller, kwh, price)) in trades.iter().enumerate() {
        if buyer >= buyers || seller >= sellers {
            return Err(SettlementError::UnknownParty { index, buyer, seller, buyers, sellers });
        }
        let wh = kwh_to_wh(kwh)?;
        if wh == 0 {
            continue;
        }
        // $/kWh × 1000 = $/MWh, in minor units
        let price_minor_per_mwh = to_minor_units(price * 1000.0, minor_per_major)?;
        let pay = div_round_ties_even(i128::from(wh) * i128::from(price_minor_per_mwh), 1_000_000);
        let payment_minor = i64::try_from(pay).map_err(|_| SettlementError::Overflow)?;
        let add = |a: i64| a.checked_add(payment_minor).ok_or(SettlementError::Overflow);
        st.buyer_pays[buyer] = add(st.buyer_pays[buyer])?;
        st.seller_receives[seller] = add(st.seller_receives[seller])?;
        st.total_minor = add(st.total_minor)?;
        let addw = |a: u64| a.checked_add(wh).ok_or(SettlementError::Overflow);
        st.buyer_wh[buyer] = addw(st.buyer_wh[buyer])?;
        st.seller_wh[seller] = addw(st.seller_wh[seller])?;
        st.energy_wh = addw(st.energy_wh)?;
        st.trades.push(SettledTrade { buyer, seller, wh, price_minor_per_mwh, payment_minor });
    }
    Ok(st)
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

    #[test]
    fn integer_division_rounds_ties_to_even_in_both_signs() {
        assert_eq!(div_round_ties_even(5, 2), 2);
        assert_eq!(div_round_ties_even(7, 2), 4);
        assert_eq!(div_round_ties_even(-5, 2), -2);
        assert_eq!(div_round_ties_even(-7, 2), -4);
        assert_eq!(div_round_ties_even(1_499_999, 1_000_000), 1);
        assert_eq!(div_round_ties_even(1_500_001, 1_000_000), 2);
    }
}
