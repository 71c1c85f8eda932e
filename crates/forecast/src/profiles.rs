//! Seeded hourly household loads for many clients (Wh, integers).
//!
//! No package ships metered household loads. Until the BDEW H0 table
//! (demandlib, MIT) or SimBench's household types (ODbL) are vendored, the
//! base shape here is a stand-in written to follow H0's published features
//! — a night trough near half the daily mean, a morning peak around 07–08 h,
//! a midday plateau, the evening peak around 18–20 h, and weekends with a
//! later, broader morning — scaled by a seasonal factor (±15 %, peak in
//! mid-winter of the southern hemisphere, as for the seed's NSW data).
//!
//! Per client, from `(seed, client)` through ChaCha20 (documented
//! variation, nothing from the wall clock):
//! - annual consumption uniform in 2,500–6,000 kWh;
//! - an archetype: commuter (stronger evening), at home (flatter, higher
//!   midday) or late (the whole day shifted two hours later);
//! - multiplicative noise uniform in ±12 % per hour, and a 2 % chance per
//!   hour of a spike of +50–150 % (an appliance).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Relative weekday load by hour (mean 1).
const WEEKDAY: [f64; 24] = [
    0.55, 0.48, 0.45, 0.44, 0.45, 0.55, 0.85, 1.10, 1.05, 0.90, 0.85, 0.88, 0.92, 0.88, 0.85, 0.90, 1.05, 1.35, 1.60,
    1.62, 1.45, 1.25, 1.00, 0.75,
];
/// Relative weekend load by hour (mean 1).
const WEEKEND: [f64; 24] = [
    0.62, 0.52, 0.47, 0.45, 0.45, 0.48, 0.60, 0.80, 1.05, 1.20, 1.22, 1.20, 1.18, 1.10, 1.02, 1.00, 1.08, 1.30, 1.48,
    1.50, 1.38, 1.20, 1.00, 0.80,
];

/// How a household uses its day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Archetype {
    Commuter,
    AtHome,
    Late,
}

/// One client's drawn parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Household {
    pub annual_kwh: f64,
    pub archetype: Archetype,
}

fn rng_for(seed: u64, client: u32, stream: u64) -> ChaCha20Rng {
    let mut r = ChaCha20Rng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.set_stream(stream);
    r
}

impl Household {
    /// Client `client`'s household under `seed`.
    pub fn draw(seed: u64, client: u32) -> Self {
        let mut r = rng_for(seed, client, 0);
        let annual_kwh = r.random_range(2_500.0..6_000.0);
        let archetype = match r.random_range(0..3) {
            0 => Archetype::Commuter,
            1 => Archetype::AtHome,
            _ => Archetype::Late,
        };
        Self { annual_kwh, archetype }
    }

    fn shape(&self, hour: usize, weekend: bool) -> f64 {
        let h = match self.archetype {
            Archetype::Late => (hour + 22) % 24,
            _ => hour,
        };
        let base = if weekend { WEEKEND[h] } else { WEEKDAY[h] };
        match self.archetype {
            Archetype::Commuter if (17..=21).contains(&hour) => base * 1.15,
            Archetype::Commuter if (9..=15).contains(&hour) => base * 0.8,
            Archetype::AtHome => 0.5 * base + 0.5 * 1.0 + if (10..=15).contains(&hour) { 0.15 } else { 0.0 },
            _ => base,
        }
    }
}

/// `hours` hourly loads in Wh from day-of-year `start_day` (0 = 1 January,
/// a Tuesday as in 2013), for client `client` under `seed`.
pub fn household_wh(seed: u64, client: u32, start_day: u32, hours: usize) -> Vec<u64> {
    let hh = Household::draw(seed, client);
    let mut noise = rng_for(seed, client, 1);
    let mean_wh = hh.annual_kwh * 1000.0 / 8760.0;
    (0..hours)
        .map(|t| {
            let day = start_day as usize + t / 24;
            let hour = t % 24;
            // 1 January 2013 was a Tuesday: weekday index 1 (Monday = 0).
            let weekend = (day + 1) % 7 >= 5;
            let season = 1.0 + 0.15 * (2.0 * std::f64::consts::PI * (day as f64 - 181.0) / 365.0).cos();
            let mut x = mean_wh * season * hh.shape(hour, weekend) * noise.random_range(0.88..1.12);
            if noise.random_bool(0.02) {
                x *= noise.random_range(1.5..2.5);
            }
            x.round().max(0.0) as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_reproducible_distinct_and_plausible() {
        let a = household_wh(7, 3, 0, 24 * 28);
        assert_eq!(a, household_wh(7, 3, 0, 24 * 28));
        assert_ne!(a, household_wh(7, 4, 0, 24 * 28));
        assert_ne!(a, household_wh(8, 3, 0, 24 * 28));
        let hh = Household::draw(7, 3);
        let mean = a.iter().sum::<u64>() as f64 / a.len() as f64;
        let expect = hh.annual_kwh * 1000.0 / 8760.0;
        assert!((mean / expect - 1.0).abs() < 0.25, "mean {mean} Wh vs {expect}");
        // The evening is busier than the small hours on most days.
        let evening_wins = (0..28).filter(|d| a[d * 24 + 19] > a[d * 24 + 3]).count();
        assert!(evening_wins >= 20, "{evening_wins}/28");
    }
}
