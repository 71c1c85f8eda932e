//! The §3.5.4 demonstration day shared by Figs 3-8 and 3-9, and the
//! conservation checks every run of it must pass.

use gridledger_rollup::demo::{run_day, DayConfig, DayReport};

use crate::result::Check;
use crate::ExperimentError;

/// Runs the day of `gridledger ior day` (seed 1, day 106, single-validator
/// chains). The day has a fixed size (15 participants, 48 slots), so
/// `--quick` runs the same day.
pub fn day(id: &'static str) -> Result<DayReport, ExperimentError> {
    run_day(DayConfig::default()).map_err(|e| ExperimentError::run(id, e))
}

/// Coin, energy and count checks on a finished day.
pub fn checks(r: &DayReport) -> Vec<Check> {
    let sold: u64 = r.participants.iter().map(|p| p.sold_wh).sum();
    let bought: u64 = r.participants.iter().map(|p| p.bought_wh).sum();
    let per_slot: usize = r.trades_per_slot.iter().sum();
    vec![
        Check::new(
            "coin conserved on the primary chain",
            r.coins.chain_total_before == r.coins.chain_total_after,
            format!("{} before, {} after (minor units)", r.coins.chain_total_before, r.coins.chain_total_after),
        ),
        Check::new(
            "energy sold = energy bought = energy traded",
            sold == bought && bought == r.energy_traded_wh,
            format!("sold {sold} Wh, bought {bought} Wh, traded {} Wh", r.energy_traded_wh),
        ),
        Check::new(
            "trades per slot add up to the day's trades",
            per_slot == r.trades_count,
            format!("{per_slot} over the slots, {} in the day", r.trades_count),
        ),
        Check::new(
            "every trade settled",
            r.settled_trades == r.trades_count,
            format!("{} of {}", r.settled_trades, r.trades_count),
        ),
    ]
}

/// Wh as kWh with three decimals.
pub fn kwh(wh: u64) -> String {
    format!("{}.{:03}", wh / 1000, wh % 1000)
}
