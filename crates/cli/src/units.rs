//! Amounts a person can type and read: coin with up to six decimals
//! (`1.5`, `1.5coin`) or minor units (`1500000`), printed as both.

/// Minor units per coin: amounts on chain are integers of 10⁻⁶ coin.
pub const MINOR_PER_COIN: u128 = 1_000_000;

/// Digits after the decimal point of one coin.
pub const COIN_DECIMALS: usize = 6;

/// clap value parser for amounts. A plain integer counts minor units
/// (scripts keep working); a number with a decimal point, or with the
/// suffix `coin`, counts coin (`1.5` = `1.5coin` = 1,500,000 minor units).
/// More than six decimals, negative numbers and overflow are refused.
pub fn parse_amount(s: &str) -> Result<u128, String> {
    let t = s.trim();
    let (num, coin) = match t.strip_suffix("coin") {
        Some(n) => (n.trim(), true),
        None => (t, t.contains('.')),
    };
    if num.is_empty() || num.starts_with('-') || num.starts_with('+') {
        return Err(format!("{s:?} is not an amount (use 1.5 or 1.5coin for coin, 1500000 for minor units)"));
    }
    if !coin {
        return num.parse::<u128>().map_err(|_| format!("{s:?} is not an amount in minor units"));
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if frac.len() > COIN_DECIMALS {
        return Err(format!("{s:?} has more than {COIN_DECIMALS} decimals (1 minor unit = 0.000001 coin)"));
    }
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(format!("{s:?} is not an amount in coin"));
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("{s:?} is too large"))? };
    let frac: u128 = format!("{frac:0<COIN_DECIMALS$}").parse().map_err(|_| format!("{s:?} is not an amount"))?;
    int.checked_mul(MINOR_PER_COIN).and_then(|v| v.checked_add(frac)).ok_or_else(|| format!("{s:?} is too large"))
}

/// clap value parser for energy: watt-hours, as a plain integer (`1500`)
/// or with a unit suffix `Wh`, `kWh` or `MWh` (`1.5kWh` = 1500 Wh; case of
/// the unit as a person writes it, `kwh` too). Energy is an integer of Wh
/// inside: fractions of a Wh, negatives and overflow are refused, naming
/// the unit.
pub fn parse_energy(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (num, scale, digits_max) = if let Some(n) = lower.strip_suffix("mwh") {
        (&t[..n.len()], 1_000_000u64, 6)
    } else if let Some(n) = lower.strip_suffix("kwh") {
        (&t[..n.len()], 1_000u64, 3)
    } else if let Some(n) = lower.strip_suffix("wh") {
        (&t[..n.len()], 1u64, 0)
    } else {
        (t, 1u64, 0)
    };
    let num = num.trim();
    let bad = || format!("{s:?} is not an energy: give whole Wh (1500), or 1500Wh, 1.5kWh, 0.0015MWh");
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
        return Err(bad());
    }
    if frac.len() > digits_max {
        return Err(format!("{s:?} is not a whole number of Wh (energy is counted in whole watt-hours)"));
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().map_err(|_| format!("{s:?} is too large"))? };
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<digits_max$}").parse().map_err(|_| bad())? };
    int.checked_mul(scale).and_then(|v| v.checked_add(frac)).ok_or_else(|| format!("{s:?} is too large"))
}

/// `1.500000 coin (1500000 minor units)`.
pub fn show(minor: u128) -> String {
    format!("{} coin ({minor} minor units)", coin(minor))
}

/// `1.500000`.
pub fn coin(minor: u128) -> String {
    format!("{}.{:0w$}", minor / MINOR_PER_COIN, minor % MINOR_PER_COIN, w = COIN_DECIMALS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_coin_and_minor_units() {
        assert_eq!(parse_amount("1.5"), Ok(1_500_000));
        assert_eq!(parse_amount("1.5coin"), Ok(1_500_000));
        assert_eq!(parse_amount("2 coin"), Ok(2_000_000));
        assert_eq!(parse_amount("0.000001"), Ok(1));
        assert_eq!(parse_amount(".5"), Ok(500_000));
        assert_eq!(parse_amount("1000"), Ok(1000));
        for bad in ["", "-1", "1.0000001", "abc", "1.2.3", "coin", ".", "340282366920938463463374607431768211455.0"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(show(1_500_000), "1.500000 coin (1500000 minor units)");
        assert_eq!(coin(21_000), "0.021000");
    }

    #[test]
    fn energy_in_wh_kwh_and_mwh() {
        assert_eq!(parse_energy("1500"), Ok(1500));
        assert_eq!(parse_energy("1500Wh"), Ok(1500));
        assert_eq!(parse_energy("1kWh"), Ok(1000));
        assert_eq!(parse_energy("1.5 kWh"), Ok(1500));
        assert_eq!(parse_energy("2MWh"), Ok(2_000_000));
        assert_eq!(parse_energy("0.0015MWh"), Ok(1500));
        for bad in ["", "-1", "1.5", "1.5Wh", "1.0005kWh", "kWh", "abc", "1kW", "99999999999999999999kWh"] {
            let e = parse_energy(bad).unwrap_err();
            assert!(e.contains("Wh"), "{bad}: {e}");
        }
    }
}
