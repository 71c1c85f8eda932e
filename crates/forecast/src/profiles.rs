//! Seeded hourly household loads for many clients (Wh, integers), from the
//! SimBench household profile types shipped in `data/` (ODbL 1.0, see
//! `data/README.md`): six measured-shape `H0-*` profiles of 2016 at 30
//! minutes, embedded in the binary through `gridledger-rollup`'s
//! `data::LOAD_CSV` and its parser.
//!
//! No package ships metered loads of many households, so each client is
//! derived from one profile type with documented, seeded variation (from
//! `(seed, client)` through ChaCha20, nothing from the wall clock):
//! - a profile type, uniform over the six `H0-*` columns;
//! - a shift of whole weeks (0–51), so clients of one type see different
//!   days of the year with the weekday pattern kept (days wrap within the
//!   first 364 days);
//! - annual consumption uniform in 2,500–6,000 kWh (the profile is scaled
//!   to it);
//! - multiplicative noise uniform in ±12 % per hour, and a 2 % chance per
//!   hour of a spike of +50–150 % (an appliance).
//!
//! Day 0 is 1 January 2016 (a Friday); the seasons are those of Germany,
//! where SimBench's profiles come from (the seed's households are in New
//! South Wales).

use crate::ForecastError;
use gridledger_rollup::data::{parse_loads, LoadTable, LOAD_CSV};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::OnceLock;

/// Days the profiles are read over (whole weeks, so a shift keeps weekdays).
const YEAR_DAYS: usize = 364;
const SLOTS_PER_DAY: usize = 48;

/// One client's drawn parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Household {
    pub annual_kwh: f64,
    /// Index into the `H0-*` columns of the shipped profiles.
    pub profile: usize,
    /// Weeks the client's calendar is shifted by.
    pub week_shift: u32,
}

fn rng_for(seed: u64, client: u32, stream: u64) -> ChaCha20Rng {
    let mut r = ChaCha20Rng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.set_stream(stream);
    r
}

/// The shipped profiles, parsed once.
pub fn table() -> Result<&'static LoadTable, ForecastError> {
    static TABLE: OnceLock<Result<LoadTable, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| parse_loads(LOAD_CSV).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ForecastError::Csv { line: 0, reason: e.clone() })
}

impl Household {
    /// Client `client`'s household under `seed`, over `profiles` profile types.
    pub fn draw(seed: u64, client: u32, profiles: usize) -> Self {
        let mut r = rng_for(seed, client, 0);
        let annual_kwh = r.random_range(2_500.0..6_000.0);
        let profile = r.random_range(0..profiles.max(1));
        let week_shift = r.random_range(0..52);
        Self { annual_kwh, profile, week_shift }
    }
}

/// `hours` hourly loads in Wh from day `start_day` (0 = 1 January 2016),
/// for client `client` under `seed`.
pub fn household_wh(seed: u64, client: u32, start_day: u32, hours: usize) -> Result<Vec<u64>, ForecastError> {
    let t = table()?;
    let hh = Household::draw(seed, client, t.watts.len());
    let watts = t.watts.get(hh.profile).ok_or(ForecastError::NotEnoughData { need: 1, have: 0 })?;
    if watts.len() < YEAR_DAYS * SLOTS_PER_DAY {
        return Err(ForecastError::NotEnoughData { need: YEAR_DAYS * SLOTS_PER_DAY, have: watts.len() });
    }
    // Wh of an hour = the two half-hours' mean W × 0.5 h each.
    let hour_wh =
        |d: usize, h: usize| (watts[d * SLOTS_PER_DAY + 2 * h] + watts[d * SLOTS_PER_DAY + 2 * h + 1]) as f64 / 2.0;
    let year_wh: f64 = (0..YEAR_DAYS).flat_map(|d| (0..24).map(move |h| (d, h))).map(|(d, h)| hour_wh(d, h)).sum();
    let scale = hh.annual_kwh * 1000.0 * (YEAR_DAYS as f64 / 365.0) / year_wh.max(1.0);
    let mut noise = rng_for(seed, client, 1);
    Ok((0..hours)
        .map(|i| {
            let d = (start_day as usize + i / 24 + 7 * hh.week_shift as usize) % YEAR_DAYS;
            let mut x = hour_wh(d, i % 24) * scale * noise.random_range(0.88..1.12);
            if noise.random_bool(0.02) {
                x *= noise.random_range(1.5..2.5);
            }
            x.round().max(0.0) as u64
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_reproducible_distinct_and_plausible() {
        let year = household_wh(7, 3, 0, 24 * YEAR_DAYS).unwrap();
        assert_eq!(year, household_wh(7, 3, 0, 24 * YEAR_DAYS).unwrap());
        assert_ne!(year, household_wh(7, 4, 0, 24 * YEAR_DAYS).unwrap());
        assert_ne!(year, household_wh(8, 3, 0, 24 * YEAR_DAYS).unwrap());
        let hh = Household::draw(7, 3, 6);
        let total_kwh = year.iter().sum::<u64>() as f64 / 1000.0;
        let expect = hh.annual_kwh * YEAR_DAYS as f64 / 365.0;
        assert!((total_kwh / expect - 1.0).abs() < 0.05, "{total_kwh} kWh vs {expect}");
        // The evening is busier than the small hours on most days, for every client.
        for c in 0..12 {
            let a = household_wh(7, c, 0, 24 * 28).unwrap();
            let evening: u64 = (0..28).map(|d| a[d * 24 + 17..d * 24 + 22].iter().sum::<u64>()).sum();
            let night: u64 = (0..28).map(|d| a[d * 24 + 1..d * 24 + 6].iter().sum::<u64>()).sum();
            assert!(evening > night, "client {c}: evening {evening} Wh, night {night} Wh");
        }
    }

    #[test]
    fn the_shipped_table_has_six_profiles_over_the_year() {
        let t = table().unwrap();
        assert_eq!(t.watts.len(), 6);
        assert!(t.watts.iter().all(|w| w.len() == 366 * SLOTS_PER_DAY));
    }
}
