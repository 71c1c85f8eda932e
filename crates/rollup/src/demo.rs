//! The 15-participant day of P2P energy trading of thesis §3.5.4, run
//! through the dual chain ([`DualChain`], §3.4 Steps 1–5).
//!
//! **Participants.** Numbers #1–#3 are pure consumers and #4–#15 are
//! prosumers: #4–#11 with PV (Eq 3.6), #12–#13 with a wind turbine
//! (Eqs 3.7–3.8), #14–#15 with both (so #14, the §3.5.5 misbehaver, is a
//! seller). Each household's load is a SimBench `H0-*` profile of the
//! chosen day ([`crate::data`]); the weather is TMY3 Greensboro of the same
//! day number. Seeded variation per participant (ChaCha8 from
//! [`DayConfig::seed`]): load profile type among H0-A/B/C/G/L (H0-H, an
//! electrically heated house of 17 MWh/a, is left out), load scale
//! 0.7–1.3, a shift of 0–2 slots, PV area 10–30 m², rotor diameter
//! 2.0–4.0 m, ask 0.12–0.20 coin/kWh and bid 0.20–0.26 coin/kWh.
//!
//! **Models and the rounding boundary.** Eqs 3.6–3.8 are evaluated in
//! `f64` per hour of weather: `P_pv = I × A × η` with `η` = 18 %;
//! `P_wind = ½ ρ A_bld v³` between cut-in 3 m/s and rated 12 m/s, the rated
//! value up to cut-out 25 m/s, with `ρ` = 1.3 kg/m³ as in the thesis. Eq 3.8
//! has no power coefficient, and we follow it as written (it overstates a
//! real rotor by the Betz factor and more); the 10 m wind speed is used
//! as hub-height wind. Both half-hour slots of an hour take that hour's
//! power. The only float→integer conversion is [`slot_wh`]: energy of a
//! 30-minute slot in Wh = `round(P[W] × 0.5)`, negative or non-finite → 0.
//! Everything after it (loads, surpluses, trades, money) is integer.
//!
//! **Market.** At each slot boundary a double auction clears the coming
//! slot ([`clear_slot_with`]): sellers sorted by ask, buyers by bid,
//! highest first; each buyer is filled from the cheapest sellers whose ask
//! does not exceed its bid, from as many sellers as it takes, so the slot
//! trades `min(Σ surplus, Σ deficit)` whenever prices allow (they always do
//! with the default asks ≤ 0.20 ≤ bids). The day clears under the
//! participants' budgets ([`clear_slot_within`]): an AT locks the buyer's
//! payment and `D_s` and the seller's `D_s` and undo reserve (1.5 coin), so
//! each participant can afford only so many agreements in a slot. The
//! budgeted rule is **largest fills first**: of the pairs whose prices
//! meet and whose parties can still lock an agreement, the one that moves
//! the most energy is matched next (ties by price priority), so a seller's
//! few locks and a buyer's few deposits go to the largest trades, never to
//! a high bidder's 1 Wh (attack r30 [1]–[3]); under the uniform rule the
//! slot's one price is fixed first (the merit-order crossing's) and a
//! buyer is filled with what it can pay at that price (attack r30 [5]).
//! The claim of at least 99 % of the bound
//! holds where the participants can pay for it (the default 50 coin each
//! covers the §3.5.4 community every day of the year); where they cannot
//! (too little collateral in total), the day trades what their budgets
//! allow, and the rest of the bound is not tradable. Prices are at most
//! [`MAX_PRICE_PER_KWH`]. The price follows the configured
//! [`ClearingRule`] (midpoint by default). Agreements are keyed by
//! `(ADDR_b, ADDR_s, DT)`, so a buyer holds one agreement per seller per
//! slot. The buyer submits the AT (Eq 3.1) countersigned by
//! the seller; after the slot the seller submits the ST (Eq 3.2) with its
//! meter's six 5-minute net-export readings and the buyer's signature on
//! `O_b` = 1. At each boundary one primary block records the previous slot's
//! STs and the next holds the coming slot's ATs; [`DualChain::process`]
//! settles both.

use std::collections::BTreeMap;
use std::time::Instant;

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy, Timestamp};
use gridledger_ledger::contract_address;
use gridledger_ledger::devnet::dev_key;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::data::{self, DataError, LoadTable, WeatherHour, SLOTS_PER_DAY};
use crate::driver::{meter_key, DriverConfig, DriverError, DualChain, GasRecord, Mode, RECORD_GAS_LIMIT};
use crate::roles::Target;
use crate::types::{
    checked_coins, coins, AgreementKey, AgreementTerms, AgreementTx, Effect, IorParams, IorTx, Outcome, SettlementTx,
    StSettlement, BLACK_HOLE, MINOR_PER_COIN,
};
use crate::IOR_PRIMARY_ID;
use gridledger_ledger::ChainClient;

/// One slot, ms.
pub const SLOT_MS: u64 = 30 * 60 * 1000;
/// A day, ms.
pub const DAY_MS: u64 = 24 * 3600 * 1000;
/// The demo day starts at this chain time (ms), after setup.
pub const DAY_START_MS: Timestamp = DAY_MS;
/// Smallest tradable surplus or deficit, Wh (1: every whole Wh trades).
pub const MIN_TRADE_WH: u64 = 1;
/// PV conversion efficiency `η` (Eq 3.6).
pub const PV_EFFICIENCY: f64 = 0.18;
/// Air density `ρ`, kg/m³ (§3.5.4).
pub const AIR_DENSITY: f64 = 1.3;
/// Cut-in, rated and cut-out wind speeds, m/s (Eq 3.8).
pub const V_IN: f64 = 3.0;
pub const V_RATE: f64 = 12.0;
pub const V_OUT: f64 = 25.0;
/// Meter recording interval `Δt`, s.
pub const METER_STEP_S: u32 = 300;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("temporary chain directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The day's last batch settled with some of the day's agreements
    /// still open on chain (their deposits and payments locked) or a batch
    /// unsettled: not a finished day (attack r12 [1]).
    #[error(
        "the day ended with {open} of its {recorded} agreements open and {pending} batches unsettled on chain: \
         the day is not finished (resume it to settle them)"
    )]
    Unfinished { open: usize, recorded: usize, pending: u64 },
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayConfig {
    pub seed: u64,
    /// Day of the year, 1..=365 (weather and load share the number).
    pub day: u16,
    pub prosumers: usize,
    pub consumers: usize,
    pub executors: usize,
    pub validators: usize,
    /// IOR dispute window, ms (block time).
    pub window_ms: u64,
    /// Coin each participant moves into its IOR account at the start.
    pub funding_coins: u128,
    /// How matched pairs are priced.
    pub clearing: ClearingRule,
    /// Grid fee, minor units per kWh: the network charge of a P2P trade.
    /// A pair trades only if the bid covers the (effective) ask plus the
    /// fee; the price on chain (EP) is what the seller receives, and the
    /// buyer owes the fee to the grid operator beside it (reported in
    /// [`DayReport::grid_fees_minor`], not moved on chain: the IOR contracts
    /// pay only buyer, seller and the black hole).
    pub grid_fee: u128,
    /// Feed-in tariff, minor units per kWh: what a seller gets from the
    /// grid instead, so no seller sells below it (its effective ask is
    /// `max(ask, feed_in_tariff)`).
    pub feed_in_tariff: u128,
    /// The participants, when given explicitly (a community file); `None`:
    /// derived from the seed, `consumers` + `prosumers` of them.
    pub participants: Option<Vec<ParticipantSpec>>,
    /// Metered net energy per participant and slot (Wh, export positive,
    /// 48 slots), e.g. from [`parse_meter_csv`]; replaces the simulated
    /// load and generation when given.
    pub metered: Option<Vec<Vec<i64>>>,
    /// The day on a chain whose clock cannot be moved (a running node):
    /// delivery slots on chain start at this block time (ms) and last
    /// [`Self::slot_ms`]; `None`: the simulated day, whose clock the driver
    /// sets (slot `k` at [`DAY_START_MS`] + `k` × [`SLOT_MS`]).
    pub start_ms: Option<Timestamp>,
    /// Length of a delivery slot on chain with [`Self::start_ms`] (ms, a
    /// whole number of seconds); each slot still carries its half hour of
    /// energy, metered as one reading over the slot. A slot starts no
    /// earlier than the previous one ended and never in the past.
    pub slot_ms: u64,
    /// Slots of the day to trade, `first..end` (of [`SLOTS_PER_DAY`]); the
    /// other slots' energy is neither traded nor counted in the bound.
    pub slots: (usize, usize),
}

impl Default for DayConfig {
    /// §3.5.4: 12 prosumers and 3 consumers, on 16 April (day 106, a
    /// sunny and windy day at the TMY3 site).
    fn default() -> Self {
        Self {
            seed: 1,
            day: 106,
            prosumers: 12,
            consumers: 3,
            executors: 2,
            validators: 3,
            window_ms: 5_000,
            funding_coins: 50,
            clearing: ClearingRule::Midpoint,
            grid_fee: 0,
            feed_in_tariff: 0,
            participants: None,
            metered: None,
            start_ms: None,
            slot_ms: SLOT_MS,
            slots: (0, SLOTS_PER_DAY),
        }
    }
}

/// A participant as derived from the data and the seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParticipantSpec {
    /// 1-based, as in the thesis.
    pub number: usize,
    pub address: Address,
    pub prosumer: bool,
    pub load_profile: String,
    pub load_scale_permille: u32,
    pub load_shift_slots: u32,
    /// PV area in dm² (0: no PV).
    pub pv_area_dm2: u32,
    /// Rotor diameter in cm (0: no turbine).
    pub rotor_diameter_cm: u32,
    /// Ask and bid, minor units per kWh.
    pub ask: u128,
    pub bid: u128,
}

/// `P_pv` of Eq 3.6 in W, for irradiance in W/m² and area in m².
pub fn pv_power_w(irradiance_w_m2: f64, area_m2: f64) -> f64 {
    // I [kW/m²] × A × η = kW; × 1000 for W.
    irradiance_w_m2 / 1000.0 * area_m2 * PV_EFFICIENCY * 1000.0
}

/// `P_wind` of Eqs 3.7–3.8 in W, for wind speed in m/s and rotor diameter in m.
pub fn wind_power_w(v: f64, diameter_m: f64) -> f64 {
    let a_bld = std::f64::consts::PI * diameter_m * diameter_m / 4.0;
    if !(V_IN..=V_OUT).contains(&v) {
        0.0
    } else if v <= V_RATE {
        0.5 * AIR_DENSITY * a_bld * v.powi(3)
    } else {
        0.5 * AIR_DENSITY * a_bld * V_RATE.powi(3)
    }
}

/// The documented rounding boundary: energy of a 30-minute slot in Wh at
/// constant power `p_w`, `round(P × 0.5 h)`; negative or non-finite → 0.
pub fn slot_wh(p_w: f64) -> u64 {
    let wh = (p_w * 0.5).round();
    if wh.is_finite() && wh > 0.0 {
        wh as u64
    } else {
        0
    }
}

/// Per-slot load and generation of one participant, Wh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub load_wh: Vec<u64>,
    pub generation_wh: Vec<u64>,
}

const LOAD_PROFILES: [&str; 5] = ["H0-A", "H0-B", "H0-C", "H0-G", "H0-L"];

/// The participants of `cfg`: the explicit list, or derived from the seed.
pub fn participants(cfg: &DayConfig) -> Vec<ParticipantSpec> {
    if let Some(list) = &cfg.participants {
        return list.clone();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let n = cfg.consumers + cfg.prosumers;
    (0..n)
        .map(|i| {
            let prosumer = i >= cfg.consumers;
            let k = i.saturating_sub(cfg.consumers); // prosumer index
                                                     // 2/3 PV only, then 1/6 wind only, then 1/6 both (12 → 8, 2, 2).
            let (pv, wind) = match prosumer {
                false => (false, false),
                true if k < cfg.prosumers * 2 / 3 => (true, false),
                true if k < cfg.prosumers * 5 / 6 => (false, true),
                true => (true, true),
            };
            let profile = LOAD_PROFILES[rng.random_range(0..LOAD_PROFILES.len())];
            let load_scale_permille = rng.random_range(700..=1300);
            let load_shift_slots = rng.random_range(0..=2);
            let pv_area_dm2 = rng.random_range(1000..=3000);
            let rotor_diameter_cm = rng.random_range(200..=400);
            let ask = rng.random_range(120_000..=200_000);
            let bid = rng.random_range(200_000..=260_000);
            ParticipantSpec {
                number: i + 1,
                address: dev_key(i).address(),
                prosumer,
                load_profile: profile.to_string(),
                load_scale_permille,
                load_shift_slots,
                pv_area_dm2: if pv { pv_area_dm2 } else { 0 },
                rotor_diameter_cm: if wind { rotor_diameter_cm } else { 0 },
                ask,
                bid,
            }
        })
        .collect()
}

/// Load and generation of `p` over the day's 48 slots.
pub fn profile(
    p: &ParticipantSpec,
    day: u16,
    weather: &[WeatherHour],
    loads: &LoadTable,
) -> Result<Profile, DataError> {
    let series = loads.profile(&p.load_profile)?;
    let base = (usize::from(day) - 1) * SLOTS_PER_DAY;
    let mut load_wh = Vec::with_capacity(SLOTS_PER_DAY);
    let mut generation_wh = Vec::with_capacity(SLOTS_PER_DAY);
    for slot in 0..SLOTS_PER_DAY {
        // Shift back into the previous day where needed.
        let k = (base + slot).checked_sub(p.load_shift_slots as usize).unwrap_or(base + slot);
        let w = u64::from(*series.get(k).ok_or(DataError::MissingDay { file: "simbench_h0_load_30min.csv", day })?);
        // W over half an hour = W / 2 Wh, scaled; integer throughout.
        load_wh.push(w * u64::from(p.load_scale_permille) / 2000);
        let h = weather.get(slot / 2).ok_or(DataError::MissingDay { file: "tmy3_723170_hourly.csv", day })?;
        let mut watts = 0.0;
        if p.pv_area_dm2 > 0 {
            watts += pv_power_w(f64::from(h.ghi_w_m2), f64::from(p.pv_area_dm2) / 100.0);
        }
        if p.rotor_diameter_cm > 0 {
            watts += wind_power_w(f64::from(h.wind_cm_s) / 100.0, f64::from(p.rotor_diameter_cm) / 100.0);
        }
        generation_wh.push(slot_wh(watts));
    }
    Ok(Profile { load_wh, generation_wh })
}

/// One matched trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trade {
    pub slot: usize,
    /// Participant numbers (1-based).
    pub buyer: usize,
    pub seller: usize,
    pub em_wh: u64,
    /// Minor units per kWh.
    pub ep: u128,
    /// `floor(EP × EM / 1000)` minor units.
    pub payment: u128,
    /// `SC_EXE_AT`'s verdict, e.g. `AtAccepted`.
    pub at_outcome: String,
    /// `SC_EXE_ST`'s verdict, e.g. `StSettled(Agreed)`.
    pub st_outcome: String,
    /// Paid out (AT accepted and ST settled in the seller's favour).
    pub settled: bool,
}

/// How a matched pair's price is set (the thesis gives no clearing rule:
/// an AT carries whatever price the two parties agreed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClearingRule {
    /// Each pair at the midpoint of bid and ask, rounded down.
    #[default]
    Midpoint,
    /// Each pair at the buyer's bid.
    PayAsBid,
    /// One price for the slot: the midpoint of the marginal (last matched)
    /// pair's bid and ask, which every matched bid covers and every matched
    /// ask is covered by.
    Uniform,
}

/// The double auction of one slot at the midpoint rule; see
/// [`clear_slot_with`].
pub fn clear_slot(specs: &[ParticipantSpec], net: &[i64]) -> Vec<(usize, usize, u64, u128)> {
    clear_slot_with(specs, net, ClearingRule::Midpoint)
}

/// The market terms of a slot's auction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Market {
    pub rule: ClearingRule,
    /// Minor units per kWh, paid by the buyer to the grid operator.
    pub grid_fee: u128,
    /// Minor units per kWh, the floor of every ask.
    pub feed_in_tariff: u128,
}

/// [`clear_slot_with`] under a grid fee and a feed-in tariff: asks are
/// raised to the tariff, bids lowered by the fee, and the pairs priced on
/// those, so the seller receives EP ≥ max(ask, tariff) and the buyer pays
/// EP + fee ≤ bid.
pub fn clear_slot_market(specs: &[ParticipantSpec], net: &[i64], m: &Market) -> Vec<(usize, usize, u64, u128)> {
    match_slot(&market_specs(specs, m), net, m.rule, None)
}

/// The participants as the market prices them: asks raised to the feed-in
/// tariff, bids lowered by the grid fee.
fn market_specs(specs: &[ParticipantSpec], m: &Market) -> Vec<ParticipantSpec> {
    specs
        .iter()
        .map(|p| ParticipantSpec {
            ask: p.ask.max(m.feed_in_tariff),
            bid: p.bid.saturating_sub(m.grid_fee),
            ..p.clone()
        })
        .collect()
}

/// What each participant can put up for a slot's agreements: `free[i]` is
/// participant `i`'s free IOR balance, an AT locks `EP × EM / 1000 + D_s`
/// of its buyer's and `seller_lock` ([`IorParams::seller_lock`]) of its
/// seller's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budgets {
    pub free: Vec<u128>,
    pub ds: Amount,
    pub seller_lock: Amount,
}

/// The double auction of a slot under the participants' budgets
/// ([`clear_slot_market`] with the budgets as constraints; attack r28 [2],
/// [5], attack r30 [1]–[3], [5]): a seller takes part while it can lock
/// another AT's `seller_lock`, a buyer while it can put up `D_s` and pay
/// `EP × EM / 1000` for at least 1 Wh, and pairs are matched largest fill
/// first ([`match_within`], the documented rule), so the few agreements a
/// participant can afford move as much energy as they can. Under
/// [`ClearingRule::Uniform`] the slot's price is the merit-order
/// crossing's (as without budgets) and a buyer is filled with what it can
/// pay at that price. The slot trades `min(Σ surplus, Σ deficit)`
/// whenever prices and budgets allow it without binding. Every pair
/// returned passes [`affordable_pairs`] on `b.free`.
pub fn clear_slot_within(
    specs: &[ParticipantSpec],
    net: &[i64],
    m: &Market,
    b: &Budgets,
) -> Vec<(usize, usize, u64, u128)> {
    let budget =
        Some(b.clone()).filter(|_| !crate::mutants::active(crate::mutants::Mutation::SlotClearedWithoutBudgets));
    match_slot(&market_specs(specs, m), net, m.rule, budget)
}

/// The midpoint `floor((a + b) / 2)` without overflow (attack r28 [1]: a
/// bid near `u128::MAX` wrapped `bid + ask`).
pub fn midpoint(a: u128, b: u128) -> u128 {
    let (lo, hi) = (a.min(b), a.max(b));
    lo + (hi - lo) / 2
}

/// The double auction of one slot (see the module docs). Returns
/// `(buyer, seller, em_wh, ep)` by index. Buyers by bid (highest first)
/// are filled from sellers by ask (lowest first), a buyer from as many
/// sellers as it takes and a seller to as many buyers as its surplus
/// covers, while the ask does not exceed the bid; so when every ask is
/// below every bid the slot trades exactly `min(Σ surplus, Σ deficit)`.
/// Each (buyer, seller) pair trades at most once per slot, matching the
/// agreement key `(ADDR_b, ADDR_s, DT)`. This ignores what the
/// participants can pay; the day clears with [`clear_slot_within`].
pub fn clear_slot_with(specs: &[ParticipantSpec], net: &[i64], rule: ClearingRule) -> Vec<(usize, usize, u64, u128)> {
    match_slot(specs, net, rule, None)
}

/// [`clear_slot_with`], under `budget` when given ([`clear_slot_within`],
/// [`match_within`]).
fn match_slot(
    specs: &[ParticipantSpec],
    net: &[i64],
    rule: ClearingRule,
    budget: Option<Budgets>,
) -> Vec<(usize, usize, u64, u128)> {
    let min = MIN_TRADE_WH as i64;
    let n = specs.len().min(net.len());
    let mut sellers: Vec<(usize, u64)> =
        (0..n).filter(|&i| net[i] >= min).map(|i| (i, net[i].unsigned_abs())).collect();
    sellers.sort_by_key(|(i, _)| (specs[*i].ask, *i));
    let mut buyers: Vec<(usize, u64)> =
        (0..n).filter(|&i| net[i] <= -min).map(|i| (i, net[i].unsigned_abs())).collect();
    buyers.sort_by_key(|(i, _)| (std::cmp::Reverse(specs[*i].bid), *i));
    // The merit-order crossing: the unbudgeted clearing, and the marginal
    // pair that names the uniform price.
    let mut pairs: Vec<(usize, usize, u64)> = Vec::new();
    {
        let (mut buyers, mut sellers) = (buyers.clone(), sellers.clone());
        let (mut bi, mut si) = (0, 0);
        while bi < buyers.len() && si < sellers.len() {
            let (b, s) = (buyers[bi].0, sellers[si].0);
            if specs[s].ask > specs[b].bid {
                break;
            }
            let em = buyers[bi].1.min(sellers[si].1);
            pairs.push((b, s, em));
            buyers[bi].1 -= em;
            sellers[si].1 -= em;
            if buyers[bi].1 == 0 {
                bi += 1;
            }
            if sellers[si].1 == 0 {
                si += 1;
            }
        }
    }
    let uniform = pairs.last().map(|&(b, s, _)| midpoint(specs[b].bid, specs[s].ask));
    let price = |b: usize, s: usize| match rule {
        ClearingRule::Midpoint => midpoint(specs[b].bid, specs[s].ask),
        ClearingRule::PayAsBid => specs[b].bid,
        ClearingRule::Uniform => uniform.unwrap_or(0),
    };
    let matched = match budget {
        Some(bud) => match_within(specs, &buyers, &sellers, &bud, rule, uniform),
        None => pairs,
    };
    matched.into_iter().map(|(b, s, em)| (b, s, em, price(b, s))).collect()
}

/// The budgeted allocation of a slot ([`clear_slot_within`]; attack r30
/// [1]–[3], [5]). Each agreement costs its seller one `seller_lock` and its
/// buyer `D_s` plus `price × EM / 1000`, so a participant can afford only
/// so many agreements, and an agreement is worth the energy it moves.
/// **Largest fills first:** among the pairs not yet matched whose prices
/// meet and whose parties can still lock an agreement, the one that trades
/// the most is matched next (its fill: the least of the buyer's deficit
/// left, the seller's surplus left and what the buyer's free balance pays
/// for after `D_s` at the pair's price), ties going to the higher bid, then
/// the lower ask, then the lower participant numbers; until no pair can
/// trade. Prices meet where the ask does not exceed the bid; under
/// [`ClearingRule::Uniform`] every pair trades at the merit-order
/// crossing's price (`uniform`) and only bids at or above it and asks at or
/// below it take part, so the fill is what the buyer pays at the slot's
/// price, not at its bid. Without budgets binding every match exhausts its
/// buyer or its seller, so the slot trades `min(Σ surplus, Σ deficit)`
/// when prices allow; with them, a seller's few locks and a buyer's few
/// deposits go to the largest trades, not to the highest bidder's 1 Wh.
/// Returns `(buyer, seller, em)` in the order matched.
fn match_within(
    specs: &[ParticipantSpec],
    buyers: &[(usize, u64)],
    sellers: &[(usize, u64)],
    bud: &Budgets,
    rule: ClearingRule,
    uniform: Option<u128>,
) -> Vec<(usize, usize, u64)> {
    use std::cmp::Reverse;
    let (nb, ns) = (buyers.len(), sellers.len());
    let mut rem_b: Vec<u64> = buyers.iter().map(|x| x.1).collect();
    let mut rem_s: Vec<u64> = sellers.iter().map(|x| x.1).collect();
    let mut free = bud.free.clone();
    let mut used = vec![false; nb.saturating_mul(ns)];
    // A pair's price, where its prices meet (under the uniform rule: where
    // the slot's price lies between its ask and its bid).
    let price = |b: usize, s: usize| {
        let p = match rule {
            ClearingRule::Midpoint => Some(midpoint(specs[b].bid, specs[s].ask)),
            ClearingRule::PayAsBid => Some(specs[b].bid),
            ClearingRule::Uniform => uniform,
        };
        p.filter(|p| specs[s].ask <= *p && *p <= specs[b].bid)
    };
    // The planted mutant puts price priority before the fill (the merit
    // order, which spent a seller's locks on the highest bidders' slivers).
    let slivers_first = crate::mutants::active(crate::mutants::Mutation::SlotClearedBySliversFirst);
    // The fill of the buyer at position `x` with the seller at `y` (0 if
    // they cannot trade) and its rank.
    type Rank = (u64, u128, Reverse<u128>, Reverse<usize>, Reverse<usize>, u64);
    let best_of = |x: usize, free: &[u128], rem_b: &[u64], rem_s: &[u64], used: &[bool]| -> Option<(Rank, usize)> {
        let b = buyers[x].0;
        let free_b = free.get(b).copied()?.checked_sub(bud.ds.0)?;
        let mut best: Option<(Rank, usize)> = None;
        for y in 0..ns {
            let s = sellers[y].0;
            if used[x * ns + y] || free.get(s).is_none_or(|f| *f < bud.seller_lock.0) {
                continue;
            }
            let Some(p) = price(b, s) else { continue };
            let em = rem_b[x].min(rem_s[y]).min(affordable_wh(free_b, p));
            if em < MIN_TRADE_WH {
                continue;
            }
            let (bid, ask) = (specs[b].bid, Reverse(specs[s].ask));
            let rank = if slivers_first {
                (0, bid, ask, Reverse(b), Reverse(s), em)
            } else {
                (em, bid, ask, Reverse(b), Reverse(s), 0)
            };
            if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                best = Some((rank, y));
            }
        }
        best
    };
    // Each buyer's best pair; a match changes only its buyer's pairs and
    // its seller's, so only those buyers whose best was that seller (and
    // the buyer itself) are looked at again.
    let mut best: Vec<Option<(Rank, usize)>> = (0..nb).map(|x| best_of(x, &free, &rem_b, &rem_s, &used)).collect();
    let mut out = Vec::new();
    while let Some((x, y)) =
        best.iter().enumerate().filter_map(|(x, c)| c.as_ref().map(|(r, y)| (r, x, *y))).max().map(|(_, x, y)| (x, y))
    {
        let (b, s) = (buyers[x].0, sellers[y].0);
        let Some(p) = price(b, s) else { break };
        let Some(free_b) = free[b].checked_sub(bud.ds.0) else { break };
        let em = rem_b[x].min(rem_s[y]).min(affordable_wh(free_b, p));
        let pay = p.checked_mul(u128::from(em)).map(|v| v / 1000).filter(|v| *v <= free_b);
        let Some(pay) = pay.filter(|_| em >= MIN_TRADE_WH) else { break };
        free[b] = free_b - pay;
        free[s] -= bud.seller_lock.0;
        rem_b[x] -= em;
        rem_s[y] -= em;
        used[x * ns + y] = true;
        out.push((b, s, em));
        for (z, c) in best.iter_mut().enumerate() {
            if z == x || c.as_ref().is_some_and(|(_, w)| *w == y) {
                *c = best_of(z, &free, &rem_b, &rem_s, &used);
            }
        }
    }
    out
}

/// The most energy, Wh, that `free` minor units pay for at `price` per
/// kWh (`free × 1000 / price`; unbounded at price 0 or past `u128`).
fn affordable_wh(free: u128, price: u128) -> u64 {
    match free.checked_mul(1000) {
        Some(v) if price > 0 => u64::try_from(v / price).unwrap_or(u64::MAX),
        _ => u64::MAX,
    }
}

/// Keeps, in the auction's order, the pairs both parties can cover, and
/// skips the rest: an AT locks `EP × EM + D_s` of the buyer's IOR balance
/// and `seller_lock` of the seller's (`SC_EXE_AT` Step 3: `D_s` and the
/// undo reserve, [`IorParams::seller_lock`]), so a pair either cannot
/// cover would only be refused on chain and cost its buyer α of reputation.
/// `budget[i]` is what participant `i` holds free for the slot; it is
/// reduced by each kept pair. A buyer who cannot pay loses its trade, not
/// its reputation, and the day goes on. The day clears under the budgets
/// first ([`clear_slot_within`], so the volume a pair could not cover goes
/// to another buyer or seller); this is the check that nothing refused on
/// chain is sent ([`slot_agreements`]).
pub fn affordable_pairs(
    pairs: Vec<(usize, usize, u64, u128)>,
    budget: &mut [u128],
    ds: Amount,
    seller_lock: Amount,
) -> Vec<(usize, usize, u64, u128)> {
    pairs
        .into_iter()
        .filter(|&(b, s, em, ep)| {
            let pay = ep.checked_mul(u128::from(em)).map(|v| v / 1000);
            let need_b = pay.and_then(|p| p.checked_add(ds.0));
            let (Some(need_b), Some(&have_b), Some(&have_s)) = (need_b, budget.get(b), budget.get(s)) else {
                return false;
            };
            if have_b < need_b || have_s < seller_lock.0 {
                return false;
            }
            budget[b] = have_b - need_b;
            budget[s] = have_s - seller_lock.0;
            true
        })
        .collect()
}

/// The agreements of a slot as the day sends them: the auction under the
/// participants' free balances `budget` ([`clear_slot_within`]), each pair
/// then checked against them ([`affordable_pairs`], which keeps them all:
/// the auction reserved at least each pair's lock), `budget` reduced by
/// what they lock.
pub fn slot_agreements(
    specs: &[ParticipantSpec],
    net: &[i64],
    market: &Market,
    budget: &mut [u128],
    params: &IorParams,
) -> Vec<(usize, usize, u64, u128)> {
    let b = Budgets { free: budget.to_vec(), ds: params.ds, seller_lock: params.seller_lock() };
    let cleared = clear_slot_within(specs, net, market, &b);
    affordable_pairs(cleared, budget, params.ds, params.seller_lock())
}

/// Parses metered net energy, one column per meter: a header row (a time
/// label, then one name per meter) and either 96 quarter-hour or 24 hourly
/// rows of signed integer Wh (export positive; the first column is a label:
/// where it names a time of day, `HH:MM`, it must match the resolution,
/// [`check_time_labels`], else it is ignored). Returns per meter its 48 half-hour slots: quarter hours
/// are summed in pairs; an hour is split into `floor(v/2)` and the rest,
/// so no Wh is lost.
pub fn parse_meter_csv(text: &str) -> Result<Vec<Vec<i64>>, DemoError> {
    let bad = |why: String| DemoError::Config(format!("meter CSV: {why}"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or_else(|| bad("empty".into()))?;
    let meters = header.split(',').count().saturating_sub(1);
    if meters == 0 {
        return Err(bad("the header names no meter column".into()));
    }
    let mut rows: Vec<Vec<i64>> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != meters + 1 {
            return Err(bad(format!("row {} has {} columns, the header {}", i + 2, cells.len(), meters + 1)));
        }
        labels.push(cells[0].trim());
        let values = cells[1..]
            .iter()
            .map(|c| {
                let v =
                    c.trim().parse::<i64>().map_err(|_| bad(format!("row {}: {c:?} is not an integer Wh", i + 2)))?;
                if v.unsigned_abs() > MAX_METERED_WH {
                    return Err(bad(format!("row {}: {v} Wh is beyond ±{MAX_METERED_WH} Wh", i + 2)));
                }
                Ok(v)
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(values);
    }
    let per_slot = |m: usize| -> Vec<i64> {
        match rows.len() {
            96 => (0..SLOTS_PER_DAY).map(|s| rows[2 * s][m].saturating_add(rows[2 * s + 1][m])).collect(),
            _ => (0..SLOTS_PER_DAY)
                .map(|s| {
                    let v = rows[s / 2][m];
                    let first = v.div_euclid(2);
                    if s % 2 == 0 {
                        first
                    } else {
                        v - first
                    }
                })
                .collect(),
        }
    };
    if rows.len() != 96 && rows.len() != 24 {
        return Err(bad(format!("expected 96 quarter-hour or 24 hourly rows, got {}", rows.len())));
    }
    check_time_labels(&labels, 24 * 60 / rows.len() as u32).map_err(bad)?;
    Ok((0..meters).map(per_slot).collect())
}

/// The time of day a meter CSV label names, in minutes: its last `HH:MM`
/// or `HH:MM:SS` (after a date and a space or `T`, if any; seconds must be
/// 0), on the label's own clock: an ISO 8601 zone after it (`Z`, `+02:00`,
/// `-0500`; attack r30 [6]) is dropped; `None` for a label that names no
/// time (a row number, say).
fn label_minutes(label: &str) -> Option<u32> {
    let time = label.rsplit([' ', 'T']).next()?;
    let time = time.strip_suffix(['Z', 'z']).unwrap_or(time);
    let time = time.split(['+', '-']).next()?;
    let mut parts = time.split(':');
    let (h, m) = (parts.next()?, parts.next()?);
    let sec = parts.next();
    let digits = |x: &str| !x.is_empty() && x.len() <= 2 && x.bytes().all(|c| c.is_ascii_digit());
    if !digits(h) || !digits(m) || parts.next().is_some() || sec.is_some_and(|x| !digits(x)) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if sec.is_some_and(|x| x.parse::<u32>() != Ok(0)) || m >= 60 || h > 24 {
        return None;
    }
    Some(h * 60 + m)
}

/// A meter CSV's time labels match its resolution of `step` minutes (15
/// for 96 rows, 60 for 24; attack r28 [4]: six hours of quarter-hour rows
/// were read as a whole hourly day). Labels that name a time must all do,
/// and either each row's start (`00:00`, `00:15`, …) or each row's end
/// (`00:15`, …, `24:00` or `00:00`) in order; labels that name no time (row
/// numbers) are not checked.
fn check_time_labels(labels: &[&str], step: u32) -> Result<(), String> {
    let times: Vec<Option<u32>> = labels.iter().map(|l| label_minutes(l)).collect();
    if times.iter().all(Option::is_none) {
        return Ok(());
    }
    let day = 24 * 60;
    let first = times[0];
    let offset = match first {
        Some(0) => 0,
        Some(t) if t == step => step,
        _ => {
            return Err(format!(
                "row 2: time label {:?} is neither 00:00 nor {:02}:{:02}: the first row of {} rows of {step} minutes \
                 starts or ends there",
                labels[0],
                step / 60,
                step % 60,
                labels.len()
            ))
        }
    };
    for (i, (t, label)) in times.iter().zip(labels).enumerate() {
        let want = (i as u32 * step + offset) % day;
        if t.map(|t| t % day) != Some(want) {
            return Err(format!(
                "row {}: time label {label:?} is not {:02}:{:02}: {} rows are a day of {step}-minute readings, each \
                 labelled by its {}",
                i + 2,
                want / 60,
                want % 60,
                labels.len(),
                if offset == 0 { "start" } else { "end" }
            ));
        }
    }
    Ok(())
}

/// Largest metered value (Wh per row, either sign) a meter CSV or
/// [`DayConfig::metered`] may hold: 1 GWh, far beyond any household or
/// feeder, and small enough that sums over any community cannot overflow.
pub const MAX_METERED_WH: u64 = 1_000_000_000;

/// What a slot physically allows: `min(Σ surplus, Σ deficit)` in Wh
/// (sums saturate instead of overflowing).
pub fn slot_bound(net: &[i64]) -> u64 {
    let sum = |pos: bool| {
        net.iter().filter(|v| if pos { **v > 0 } else { **v < 0 }).fold(0u64, |a, v| a.saturating_add(v.unsigned_abs()))
    };
    sum(true).min(sum(false))
}

/// Net energy per slot (generation − load, Wh) of the default community on
/// `day`, one row per slot: what [`run_day`] clears.
pub fn day_net(cfg: &DayConfig) -> Result<Vec<Vec<i64>>, DemoError> {
    day_net_from(cfg, &data::parse_weather(data::WEATHER_CSV)?, &data::parse_loads(data::LOAD_CSV)?)
}

/// [`day_net`] on already parsed weather (the whole year) and loads.
pub fn day_net_from(cfg: &DayConfig, year: &[WeatherHour], loads: &LoadTable) -> Result<Vec<Vec<i64>>, DemoError> {
    let weather = data::weather_day(year, cfg.day)?;
    let specs = participants(cfg);
    let profiles = specs.iter().map(|p| profile(p, cfg.day, &weather, loads)).collect::<Result<Vec<_>, _>>()?;
    Ok((0..SLOTS_PER_DAY)
        .map(|slot| profiles.iter().map(|p| p.generation_wh[slot] as i64 - p.load_wh[slot] as i64).collect())
        .collect())
}

/// One participant of a community file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityParticipant {
    /// SimBench household profile: H0-A, H0-B, H0-C, H0-G or H0-L.
    pub load_profile: String,
    #[serde(default = "per_mille")]
    pub load_scale_permille: u32,
    #[serde(default)]
    pub load_shift_slots: u32,
    /// PV area, dm² (0: none).
    #[serde(default)]
    pub pv_area_dm2: u32,
    /// Wind rotor diameter, cm (0: none).
    #[serde(default)]
    pub rotor_diameter_cm: u32,
    /// Ask and bid, minor units per kWh (1 coin = 1,000,000 minor units).
    pub ask: u128,
    pub bid: u128,
}

fn per_mille() -> u32 {
    1000
}

/// Whether a run's node counts are usable: at least one executor and one
/// validator, at most [`crate::driver::MAX_EXECUTORS`] and
/// [`crate::driver::MAX_VALIDATORS`] (each is a genesis account and a
/// registration; issue 11, attack r9 [4]: a community file's counts were
/// taken unchecked, and `i64::MAX` of each overflowed the account count).
fn node_counts(executors: usize, validators: usize) -> Result<(), DemoError> {
    use crate::driver::{MAX_EXECUTORS, MAX_VALIDATORS};
    if executors == 0 || validators == 0 {
        return Err(DemoError::Config("need two traders, an executor and a validator".into()));
    }
    if executors > MAX_EXECUTORS || validators > MAX_VALIDATORS {
        return Err(DemoError::Config(format!(
            "{executors} executors and {validators} validators: at most {MAX_EXECUTORS} executors and \
             {MAX_VALIDATORS} validators"
        )));
    }
    Ok(())
}

/// Highest price (ask, bid, grid fee, feed-in tariff) a day takes, minor
/// units per kWh: 1,000 coin/kWh, thousands of times any retail tariff,
/// and small enough that a price times any slot's energy fits a `u128`
/// (attack r28 [1]: a community file's bid near `u128::MAX` overflowed the
/// midpoint).
pub const MAX_PRICE_PER_KWH: u128 = 1_000 * MINOR_PER_COIN;

/// Largest PV area a community file may give a participant, dm² (1 km²:
/// a utility plant, about 90 MWh a sunny half hour).
pub const MAX_PV_AREA_DM2: u32 = 100_000_000;

/// Largest rotor diameter a community file may give a participant, cm
/// (300 m, beyond any turbine built; attack r28 [3]: a rotor of
/// `u32::MAX` cm made a slot's generation ~8·10¹⁷ Wh and overflowed the
/// report's per-slot sums).
pub const MAX_ROTOR_DIAMETER_CM: u32 = 30_000;

/// Most participants a day takes. Each is a development account, and the
/// day's cost grows with them: a slot with 800 participants takes about
/// 110 s in a debug build (attack r28, notes), so 1,000 bounds a day's
/// run to hours, not weeks.
pub const MAX_PARTICIPANTS: usize = 1_000;

/// `price` (minor units per kWh, named `what`) within [`MAX_PRICE_PER_KWH`].
fn check_price(what: &str, price: u128) -> Result<(), DemoError> {
    if price > MAX_PRICE_PER_KWH {
        return Err(DemoError::Config(format!(
            "{what} {price} minor units per kWh is beyond the highest price {MAX_PRICE_PER_KWH} (1,000 coin/kWh)"
        )));
    }
    Ok(())
}

/// A participant's plant within [`MAX_PV_AREA_DM2`] and
/// [`MAX_ROTOR_DIAMETER_CM`].
fn check_plant(number: usize, pv_area_dm2: u32, rotor_diameter_cm: u32) -> Result<(), DemoError> {
    if pv_area_dm2 > MAX_PV_AREA_DM2 || rotor_diameter_cm > MAX_ROTOR_DIAMETER_CM {
        return Err(DemoError::Config(format!(
            "participant {number}: PV area {pv_area_dm2} dm² and rotor diameter {rotor_diameter_cm} cm: at most \
             {MAX_PV_AREA_DM2} dm² and {MAX_ROTOR_DIAMETER_CM} cm"
        )));
    }
    Ok(())
}

/// An energy community as a TOML file describes it (`gridledger ior day
/// --config community.toml`): the market terms, the chain sizes and the
/// participants with their load and generation and prices. Meters are the
/// participants' development meter keys, certified at start. Omitted
/// participants: the seeded §3.5.4 community.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Community {
    #[serde(default = "one")]
    pub seed: u64,
    /// First day of the year to run.
    #[serde(default = "default_day")]
    pub day: u16,
    #[serde(default)]
    pub clearing: ClearingRule,
    /// Minor units per kWh.
    #[serde(default)]
    pub grid_fee: u128,
    /// Minor units per kWh.
    #[serde(default)]
    pub feed_in_tariff: u128,
    /// 1..=[`crate::driver::MAX_EXECUTORS`].
    #[serde(default = "two")]
    pub executors: usize,
    /// 1..=[`crate::driver::MAX_VALIDATORS`].
    #[serde(default = "three")]
    pub validators: usize,
    #[serde(default = "fifty")]
    pub funding_coins: u128,
    #[serde(default)]
    pub participant: Vec<CommunityParticipant>,
}

fn one() -> u64 {
    1
}
fn default_day() -> u16 {
    106
}
fn two() -> usize {
    2
}
fn three() -> usize {
    3
}
fn fifty() -> u128 {
    50
}

impl Community {
    /// The day configuration for day `day` of the year, or why the file is
    /// unusable.
    pub fn day_config(&self, day: u16) -> Result<DayConfig, DemoError> {
        let mut cfg = DayConfig {
            seed: self.seed,
            day,
            executors: self.executors,
            validators: self.validators,
            funding_coins: self.funding_coins,
            clearing: self.clearing,
            grid_fee: self.grid_fee,
            feed_in_tariff: self.feed_in_tariff,
            ..DayConfig::default()
        };
        funding_of(self.funding_coins)?;
        node_counts(self.executors, self.validators)?;
        check_price("grid_fee", self.grid_fee)?;
        check_price("feed_in_tariff", self.feed_in_tariff)?;
        if self.participant.len() > MAX_PARTICIPANTS {
            return Err(DemoError::Config(format!(
                "{} participants: a community has at most {MAX_PARTICIPANTS}",
                self.participant.len()
            )));
        }
        if self.participant.is_empty() {
            return Ok(cfg);
        }
        if self.participant.len() < 2 {
            return Err(DemoError::Config("a community needs at least two participants".into()));
        }
        let mut list = Vec::with_capacity(self.participant.len());
        for (i, p) in self.participant.iter().enumerate() {
            if !LOAD_PROFILES.contains(&p.load_profile.as_str()) {
                return Err(DemoError::Config(format!(
                    "participant {}: load profile {:?} is not one of {LOAD_PROFILES:?}",
                    i + 1,
                    p.load_profile
                )));
            }
            if p.ask == 0 || p.bid == 0 || p.load_scale_permille == 0 {
                return Err(DemoError::Config(format!(
                    "participant {}: ask, bid and load scale must be positive",
                    i + 1
                )));
            }
            check_price(&format!("participant {}: ask", i + 1), p.ask)?;
            check_price(&format!("participant {}: bid", i + 1), p.bid)?;
            check_plant(i + 1, p.pv_area_dm2, p.rotor_diameter_cm)?;
            list.push(ParticipantSpec {
                number: i + 1,
                address: dev_key(i).address(),
                prosumer: p.pv_area_dm2 > 0 || p.rotor_diameter_cm > 0,
                load_profile: p.load_profile.clone(),
                load_scale_permille: p.load_scale_permille,
                load_shift_slots: p.load_shift_slots,
                pv_area_dm2: p.pv_area_dm2,
                rotor_diameter_cm: p.rotor_diameter_cm,
                ask: p.ask,
                bid: p.bid,
            });
        }
        cfg.consumers = list.iter().filter(|p| !p.prosumer).count();
        cfg.prosumers = list.len() - cfg.consumers;
        cfg.participants = Some(list);
        Ok(cfg)
    }
}

/// Per-participant results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParticipantReport {
    #[serde(flatten)]
    pub spec: ParticipantSpec,
    pub load_wh: u64,
    pub generation_wh: u64,
    pub bought_wh: u64,
    pub sold_wh: u64,
    /// IOR account, minor units, after funding and at the end of the day.
    pub balance_start: u128,
    pub balance_end: u128,
    pub reputation: u32,
}

/// Gas of one method on one chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MethodGas {
    pub calls: u64,
    pub gas: u64,
}

/// Gas summed by chain and method, successful calls only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GasSummary {
    pub primary: u64,
    pub secondary: u64,
    pub by_method: BTreeMap<String, MethodGas>,
}

impl GasSummary {
    pub fn of(records: &[GasRecord]) -> Self {
        let mut s = Self::default();
        for g in records.iter().filter(|g| g.success) {
            let chain = match g.target {
                Target::Primary => {
                    s.primary += g.gas;
                    "primary"
                }
                Target::Secondary => {
                    s.secondary += g.gas;
                    "secondary"
                }
            };
            let m = s.by_method.entry(format!("{chain}/{}", g.method)).or_default();
            m.calls += 1;
            m.gas += g.gas;
        }
        s
    }
    pub fn total(&self) -> u64 {
        self.primary + self.secondary
    }
}

/// Coin on the primary chain before and after the day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoinCheck {
    /// Σ native balances of every account the run uses (participants,
    /// nodes, the block producer, the IOR contract, the black hole).
    pub chain_total_before: u128,
    pub chain_total_after: u128,
    /// Σ IOR accounts of the participants after funding and at the end.
    pub ior_total_start: u128,
    pub ior_total_end: u128,
    pub burned: u128,
}

/// Block-time settlement latency of the day's batches, ms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub batches: usize,
    pub mean_ms: u64,
    pub max_ms: u64,
    /// Each settled batch's latency, in settlement order.
    pub per_batch_ms: Vec<u64>,
}

/// Blocks and transactions each chain gained during the day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainCounts {
    pub primary_blocks: u64,
    pub primary_txs: u64,
    pub secondary_blocks: u64,
    pub secondary_txs: u64,
}

/// The thesis' figures for the day (§3.5.4), integers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThesisDay {
    pub trades: usize,
    pub energy_wh: u64,
    pub revenue_usd_cents: u64,
    pub processing_ms: u64,
}

pub const THESIS_DAY: ThesisDay =
    ThesisDay { trades: 194, energy_wh: 35_980, revenue_usd_cents: 760, processing_ms: 4_200 };

/// The Fig 3-9 series of one prosumer, Wh per slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TypicalProsumer {
    pub number: usize,
    pub load_wh: Vec<u64>,
    pub generation_wh: Vec<u64>,
    /// Sold (positive) or bought (negative) per slot.
    pub traded_wh: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayReport {
    pub config: DayConfig,
    pub weather: &'static str,
    pub loads: &'static str,
    pub trades_count: usize,
    pub settled_trades: usize,
    /// Σ EM of the settled trades, Wh.
    pub energy_traded_wh: u64,
    /// What the day physically allows, `Σ_slots min(Σ surplus, Σ deficit)`, Wh.
    pub bound_wh: u64,
    /// Grid fees the buyers owe the operator for the settled trades, minor
    /// units (`floor(fee × EM / 1000)` per trade).
    pub grid_fees_minor: u128,
    /// Σ payments to sellers, minor units and as a decimal coin string.
    pub revenue_minor: u128,
    pub revenue_coins: String,
    /// Trades per slot (Fig 3-8).
    pub trades_per_slot: Vec<usize>,
    /// Σ over participants of max(0, generation − load) per slot, Wh.
    pub supply_wh_per_slot: Vec<u64>,
    /// Σ over participants of max(0, load − generation) per slot, Wh.
    pub demand_wh_per_slot: Vec<u64>,
    pub chains: ChainCounts,
    pub participants: Vec<ParticipantReport>,
    pub typical_prosumer: TypicalProsumer,
    pub trades: Vec<Trade>,
    pub gas: GasSummary,
    pub settlement_latency: Latency,
    pub coins: CoinCheck,
    /// Wall-clock time to submit and settle the day's transactions, ms; the
    /// only field that differs between runs with the same seed.
    pub processing_ms: u64,
    pub thesis: ThesisDay,
}

/// Minor units as a decimal number of coins.
pub fn coins_string(minor: u128) -> String {
    format!("{}.{:06}", minor / MINOR_PER_COIN, minor % MINOR_PER_COIN)
}

fn chain_total<P: ChainClient, S: ChainClient>(d: &DualChain<P, S>, accounts: usize) -> u128 {
    let mut addrs: Vec<Address> = (0..accounts).map(|i| dev_key(i).address()).collect();
    // Fees go to whichever validator proposed each block.
    addrs.extend(d.primary.validators().iter().map(|k| k.address()));
    addrs.push(contract_address(IOR_PRIMARY_ID));
    addrs.push(BLACK_HOLE);
    addrs.iter().map(|a| d.primary.account(a).balance.0).sum()
}

/// Coin each development account of a day starts with on the primary chain.
pub const WALLET_COINS: u128 = 1_000_000;

/// `funding_coins` (outside input: a community file or the command line)
/// in minor units, or why not: it must fit a `u128` in minor units and
/// leave the wallet something for fees, so at most `WALLET_COINS − 1`.
fn funding_of(funding_coins: u128) -> Result<Amount, DemoError> {
    checked_coins(funding_coins).filter(|_| funding_coins < WALLET_COINS).ok_or_else(|| {
        DemoError::Config(format!(
            "funding_coins {funding_coins} is too large: each account's wallet holds {WALLET_COINS} coins"
        ))
    })
}

/// Runs the day (§3.5.4) on two temporary development chains.
pub fn run_day(cfg: DayConfig) -> Result<DayReport, DemoError> {
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    run_day_on(cfg, |dcfg| Ok(DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?))
}

/// Runs the day on the chains `open` returns (given the driver
/// configuration the day needs), e.g. a PBFT network as the primary chain.
pub fn run_day_on<P: ChainClient, S: ChainClient>(
    cfg: DayConfig,
    open: impl FnOnce(DriverConfig) -> Result<DualChain<P, S>, DemoError>,
) -> Result<DayReport, DemoError> {
    run_day_with_progress(cfg, open, &mut |_, _| Ok(()), &mut |_| Ok(()))
}

/// A day's gas hook ([`run_day_with_progress`], [`resume_day`]): given what
/// each trader's wallet must hold for the gas of the calls about to be
/// sent (`(development account index, minor units)`, [`gas_needs`]), it
/// tops the wallets up, or says why not (the day stops there).
pub type GasTopUp<'a> = dyn FnMut(&[(usize, u128)]) -> Result<(), DemoError> + 'a;

/// What the traders' calls of one slot (or of a resume) need of their
/// wallets for gas: per sender, `(its development account index, minor
/// units)` = its calls × [`RECORD_GAS_LIMIT`] at the driver's gas price 1.
/// A node admits a sender's call only while its balance covers the gas
/// limits of all its pending calls, and each block of the slot charges
/// at most the limits, so a wallet holding this before the slot's first
/// block can send all of the slot's calls. `keys[i]` is account `i`.
fn gas_needs(keys: &[KeyPair], blocks: &[&[(KeyPair, IorTx)]]) -> Vec<(usize, u128)> {
    let index: BTreeMap<Address, usize> = keys.iter().enumerate().map(|(i, k)| (k.address(), i)).collect();
    let mut calls: BTreeMap<usize, u128> = BTreeMap::new();
    for (k, _) in blocks.iter().flat_map(|b| b.iter()) {
        if let Some(&i) = index.get(&k.address()) {
            *calls.entry(i).or_insert(0) += 1;
        }
    }
    calls.into_iter().map(|(i, n)| (i, n.saturating_mul(u128::from(RECORD_GAS_LIMIT)))).collect()
}

/// The interval of the day's meter readings (s): five minutes on the
/// simulated clock, one compressed slot on a real one.
fn meter_step_s(cfg: &DayConfig) -> u32 {
    if cfg.start_ms.is_some() {
        u32::try_from(cfg.slot_ms / 1000).unwrap_or(u32::MAX)
    } else {
        METER_STEP_S
    }
}

/// The meter's readings of a slot's net export `surplus` (Wh): on the
/// simulated clock six 5-minute readings of its mean power (Wh × 2 = W
/// over half an hour); on a compressed slot one reading over the slot,
/// rounded up to the watt so it covers `surplus`.
fn slot_readings(cfg: &DayConfig, surplus: i64) -> Vec<i64> {
    if cfg.start_ms.is_some() {
        let step_s = u64::from(meter_step_s(cfg)).max(1);
        vec![i64::try_from((surplus.unsigned_abs() * 3600).div_ceil(step_s)).unwrap_or(i64::MAX)]
    } else {
        vec![surplus.saturating_mul(2); (SLOT_MS / 1000 / u64::from(METER_STEP_S)) as usize]
    }
}

/// The ST the day's seller `seller` sends for `terms`: its meter's signed
/// `readings` at `step_s`, and the buyer's signature agreeing (`O_b = 1`).
fn agreed_st(
    p: &IorParams,
    terms: AgreementTerms,
    now: Timestamp,
    step_s: u32,
    readings: Vec<i64>,
    buyer: &KeyPair,
    seller: &KeyPair,
) -> SettlementTx {
    SettlementTx { terms, stmp: now, buyer_sig: None, ob: true, dt_step_s: step_s, ps: readings, meter_sig: None }
        .sign_readings_in(&p.domain, &meter_key(&seller.address()))
        .sign_as_buyer_in(&p.domain, buyer)
}

/// What [`resume_day`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResumeReport {
    pub resumed: bool,
    /// Batches of the earlier run (and of this one) settled here.
    pub batches_settled: usize,
    /// Agreements the earlier run left open, settled here: by the STs it
    /// recorded (a day records a slot's STs before it starts the next
    /// slot, attack r30 [4], so a day stopped between slots has them all
    /// on chain, and they settle as agreed however late the resume), else
    /// by an ST by the seller with its meter's readings of the agreement's
    /// slot and the buyer's `O_b = 1`, as the day sends them, or, where the
    /// ST's time (`DL + expiry_ms`) has passed, the buyer's expiry.
    pub agreements_settled: usize,
    /// Of those, the agreements expired (a day stopped inside a slot and
    /// resumed after `DL + expiry_ms`): the chain refuses an ST that late,
    /// so each seller loses its `D_s` and α of reputation and its buyer
    /// gets the penalty, delivered or not. The statements show both (the
    /// seller's loss as paid, the buyer's compensation as received); the
    /// operator is warned.
    pub expired: usize,
    /// The settlement outcomes of those agreements (`Debug` text, counted).
    pub outcomes: BTreeMap<String, usize>,
    /// Batches recorded and settled on the chain, `(next, finalized)`:
    /// equal once nothing is pending.
    pub batches: (u64, u64),
    /// Open agreements left (none after a successful resume).
    pub open_agreements: usize,
    /// The participants' IOR balances, summed, after the resume.
    pub ior_total_end: u128,
    /// The whole day's settlement statements ([`statements_csv_of`]), from
    /// the chain: each participant's funding (its queued deposits) as the
    /// opening balance, its IOR balance now as the closing one, and what it
    /// bought, sold, paid and received in the agreements the settled
    /// batches accepted and settled (attack r28, cli [1]: a resumed day
    /// wrote no statements).
    pub statements: Vec<StatementRow>,
}

/// Finishes a day an earlier run started on the chains `attach` returns
/// (connected to the IOR contracts that run initialised, given the same
/// configuration, [`DualChain::attach`]) and was stopped in: executes,
/// validates and finalizes every batch it recorded ([`DualChain::process`]
/// reads all it needs from the chains), then settles every agreement
/// still open as the day would have (the seller's ST with its meter's
/// readings of the agreement's slot, the buyer agreeing), so no deposit or
/// payment stays locked. `slot_starts` maps each slot's start (block time,
/// the `t0` [`run_day_with_progress`] passed to `on_slot`) to its index in
/// the day: an open agreement's readings are its seller's net export in
/// that slot. No new slot is traded. `gas` is called before the settling
/// calls are sent, with what each trader's wallet needs for their gas
/// (as in [`run_day_with_progress`]).
pub fn resume_day<P: ChainClient, S: ChainClient>(
    cfg: &DayConfig,
    slot_starts: &BTreeMap<Timestamp, usize>,
    attach: impl FnOnce(DriverConfig) -> Result<DualChain<P, S>, DemoError>,
    gas: &mut GasTopUp<'_>,
) -> Result<ResumeReport, DemoError> {
    let DaySetup { specs, profiles, params, dcfg, .. } = day_setup(cfg)?;
    let keys: Vec<KeyPair> = (0..specs.len()).map(dev_key).collect();
    let index: BTreeMap<Address, usize> = specs.iter().enumerate().map(|(i, p)| (p.address, i)).collect();
    let mut d = attach(dcfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x2e_50_4e);
    // What closes here: the STs the earlier run recorded (each slot's
    // before the next slot's start, attack r30 [4]) and then those sent
    // below; the last verdict per agreement counts.
    let mut closed: BTreeMap<AgreementKey, String> = BTreeMap::new();
    let first = d.process(&mut rng)?;
    let mut batches_settled = first.len();
    for sb in &first {
        let input = d.batch_input(sb.batch)?;
        for (e, o) in input.entries.iter().zip(&sb.outcomes) {
            if matches!(e.tx, IorTx::St(_) | IorTx::StReach(..) | IorTx::Expire(_)) {
                closed.insert(e.tx.terms().key(), format!("{o:?}"));
            }
        }
    }
    // Agreements left open: each needs its slot and both parties' keys.
    let mut left = Vec::new();
    for ag in d.settled_state()?.agreements.into_values() {
        let t = ag.terms;
        let (Some(&b), Some(&s)) = (index.get(&t.buyer), index.get(&t.seller)) else {
            return Err(DemoError::Config(format!(
                "an open agreement of {} with {} names an account that is not one of the day's participants",
                t.buyer, t.seller
            )));
        };
        let Some(&slot) = slot_starts.get(&t.dt_start) else {
            return Err(DemoError::Config(format!(
                "an open agreement delivering from {} ms starts no slot the earlier run recorded",
                t.dt_start
            )));
        };
        // The slot index comes from the caller's journal (outside input):
        // one beyond the day's profiles is refused, not indexed.
        let in_day = |pr: &Profile| slot < pr.generation_wh.len() && slot < pr.load_wh.len();
        if !in_day(&profiles[s]) {
            return Err(DemoError::Config(format!(
                "the journal names slot {slot} for the open agreement delivering from {} ms, but the day has {} \
                 slots",
                t.dt_start,
                profiles[s].generation_wh.len().min(profiles[s].load_wh.len())
            )));
        }
        left.push((t, b, s, slot));
    }
    let keys_of: std::collections::BTreeSet<AgreementKey> = left.iter().map(|(t, ..)| t.key()).collect();
    if let Some(end) = left.iter().map(|(t, ..)| t.dt_end).max() {
        // Every delivery period must be over before its ST.
        d.set_time(end.max(d.now()));
        let step_s = meter_step_s(cfg);
        // An ST recorded after `DL + expiry` is refused: past (or about to
        // pass) that, the buyer expires the agreement instead.
        const MARGIN_MS: u64 = 60_000;
        let now = d.now();
        let mut txs = Vec::new();
        let mut expire_from = 0;
        for (t, b, s, slot) in left {
            let from = t.dl.saturating_add(params.expiry_ms);
            if now.saturating_add(MARGIN_MS) >= from {
                expire_from = expire_from.max(from.saturating_add(1));
                txs.push((keys[b].clone(), IorTx::Expire(t)));
            } else {
                let (g, l) = (profiles[s].generation_wh[slot], profiles[s].load_wh[slot]);
                let surplus = i64::try_from(g.saturating_sub(l)).unwrap_or(i64::MAX);
                let st = agreed_st(&d.cfg.params, t, now, step_s, slot_readings(cfg, surplus), &keys[b], &keys[s]);
                txs.push((keys[s].clone(), IorTx::St(st)));
            }
        }
        if expire_from > 0 {
            d.set_time(expire_from.max(d.now()));
        }
        gas(&gas_needs(&keys, &[&txs]))?;
        d.record_packed(&txs)?;
        for sb in d.process(&mut rng)? {
            batches_settled += 1;
            let input = d.batch_input(sb.batch)?;
            for (e, o) in input.entries.iter().zip(&sb.outcomes) {
                if keys_of.contains(&e.tx.terms().key()) {
                    closed.insert(e.tx.terms().key(), format!("{o:?}"));
                }
            }
        }
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for o in closed.into_values() {
        *outcomes.entry(o).or_insert(0) += 1;
    }
    let state = d.settled_state()?;
    let mut ior_total_end = 0u128;
    for p in &specs {
        ior_total_end = ior_total_end.saturating_add(d.participant(&p.address)?.balance.0);
    }
    let statements = chain_statements(cfg, &specs, &d)?;
    Ok(ResumeReport {
        statements,
        resumed: true,
        batches_settled,
        agreements_settled: outcomes.values().sum(),
        expired: outcomes.get(&format!("{:?}", Outcome::Expired)).copied().unwrap_or(0),
        outcomes,
        batches: d.reader().progress()?,
        open_agreements: state.agreements.len(),
        ior_total_end,
    })
}

/// The day's statement rows as the chain holds them ([`ResumeReport::statements`]):
/// every settled batch's entries with the chain's verdicts. An agreement's
/// energy counts once its AT was accepted and its ST settled it as agreed
/// or delivered, as in [`run_day_with_progress`]; its money, for every
/// agreement its AT opened and a later entry closed, is what the close
/// paid each party less what the AT locked of it: a payment or a penalty
/// (`paid`), a sale's price or a compensation (`received`). So every row
/// adds up, `balance_end + paid = balance_start + received`, also where a
/// late resume expired agreements (attack r30 [4]).
fn chain_statements<P: ChainClient, S: ChainClient>(
    cfg: &DayConfig,
    specs: &[ParticipantSpec],
    d: &DualChain<P, S>,
) -> Result<Vec<StatementRow>, DemoError> {
    let index: BTreeMap<Address, usize> = specs.iter().enumerate().map(|(i, p)| (p.address, i)).collect();
    let reader = d.reader();
    let (_, fin) = reader.progress()?;
    let mut rows: Vec<StatementRow> = specs
        .iter()
        .map(|p| StatementRow {
            day: cfg.day,
            participant: p.number,
            address: p.address,
            bought_wh: 0,
            sold_wh: 0,
            paid_minor: 0,
            received_minor: 0,
            grid_fee_minor: 0,
            balance_start_minor: 0,
            balance_end_minor: 0,
            reputation: 0,
        })
        .collect();
    // What each accepted AT locked, per party; its closing TCR's payments
    // less those locks is what the party paid or received.
    let mut locked: BTreeMap<AgreementKey, Vec<(Address, u128)>> = BTreeMap::new();
    for k in 0..fin {
        let h = reader.batch_header(k)?;
        let entries = crate::driver::batch_entries(&d.primary, &h)?;
        let tcrs = reader.settled_tcrs_of(&h, &entries)?;
        for tcr in &tcrs {
            let Some(e) = usize::try_from(tcr.index).ok().and_then(|i| entries.get(i)) else { continue };
            let t = e.tx.terms();
            if e.tx.is_at() {
                if tcr.outcome == Outcome::AtAccepted {
                    let locks = tcr
                        .effects
                        .iter()
                        .filter_map(|f| match f {
                            Effect::Lock { who, amount } => Some((*who, amount.0)),
                            _ => None,
                        })
                        .collect();
                    locked.insert(t.key(), locks);
                }
                continue;
            }
            if !tcr.effects.iter().any(|f| matches!(f, Effect::Close)) {
                continue;
            }
            let Some(locks) = locked.remove(&t.key()) else { continue };
            let (Some(&b), Some(&s)) = (index.get(&t.buyer), index.get(&t.seller)) else { continue };
            // Each party's net: what the close paid it less what the AT
            // locked of it. A settled sale pays the seller `EP × EM` and
            // costs the buyer as much; an expired one (attack r30 [4])
            // costs the seller its `D_s` and pays the buyer the penalty.
            for (i, who) in [(b, t.buyer), (s, t.seller)] {
                let got: u128 = tcr
                    .effects
                    .iter()
                    .filter_map(|f| match f {
                        Effect::Pay { to, amount } if *to == who => Some(amount.0),
                        _ => None,
                    })
                    .fold(0, u128::saturating_add);
                let gave: u128 = locks.iter().filter(|(w, _)| *w == who).map(|(_, a)| *a).fold(0, u128::saturating_add);
                if got >= gave {
                    rows[i].received_minor = rows[i].received_minor.saturating_add(got - gave);
                } else {
                    rows[i].paid_minor = rows[i].paid_minor.saturating_add(gave - got);
                }
            }
            let agreed = matches!(
                tcr.outcome,
                Outcome::StSettled(StSettlement::Agreed) | Outcome::StSettled(StSettlement::SellerDelivered)
            );
            if agreed {
                rows[b].bought_wh = rows[b].bought_wh.saturating_add(t.em.0);
                rows[b].grid_fee_minor =
                    rows[b].grid_fee_minor.saturating_add(cfg.grid_fee.saturating_mul(u128::from(t.em.0)) / 1000);
                rows[s].sold_wh = rows[s].sold_wh.saturating_add(t.em.0);
            }
        }
    }
    // Opening balances: what was moved into each IOR account.
    for item in reader.queue(0, u64::MAX)? {
        if let crate::state::QueueItem::In { who, amount } = item {
            if let Some(&i) = index.get(&who) {
                rows[i].balance_start_minor = rows[i].balance_start_minor.saturating_add(amount.0);
            }
        }
    }
    for (row, p) in rows.iter_mut().zip(specs) {
        let acct = d.participant(&p.address)?;
        row.balance_end_minor = acct.balance.0;
        row.reputation = acct.reputation;
    }
    Ok(rows)
}

/// What a day derives from its configuration before anything is sent.
struct DaySetup {
    specs: Vec<ParticipantSpec>,
    profiles: Vec<Profile>,
    params: IorParams,
    dcfg: DriverConfig,
    funding: Amount,
}

/// Checks `cfg` and derives the participants, their profiles and the
/// driver's configuration ([`run_day_with_progress`], [`resume_day`]).
fn day_setup(cfg: &DayConfig) -> Result<DaySetup, DemoError> {
    if !(1..=365).contains(&cfg.day) {
        return Err(DemoError::Config(format!("day {} is not in 1..=365", cfg.day)));
    }
    node_counts(cfg.executors, cfg.validators)?;
    if cfg.consumers.saturating_add(cfg.prosumers) < 2 {
        return Err(DemoError::Config("need two traders, an executor and a validator".into()));
    }
    let (first_slot, end_slot) = cfg.slots;
    if first_slot >= end_slot || end_slot > SLOTS_PER_DAY {
        return Err(DemoError::Config(format!(
            "slots {first_slot}..{end_slot} are not a non-empty range within 0..{SLOTS_PER_DAY}"
        )));
    }
    if cfg.start_ms.is_some() && (cfg.slot_ms < 1_000 || !cfg.slot_ms.is_multiple_of(1_000)) {
        return Err(DemoError::Config(format!("slot_ms {} is not a whole number of seconds", cfg.slot_ms)));
    }
    let weather = data::weather_day(&data::parse_weather(data::WEATHER_CSV)?, cfg.day)?;
    let loads = data::parse_loads(data::LOAD_CSV)?;
    let specs = participants(cfg);
    if specs.len() > MAX_PARTICIPANTS {
        return Err(DemoError::Config(format!("{} participants: a day has at most {MAX_PARTICIPANTS}", specs.len())));
    }
    check_price("grid_fee", cfg.grid_fee)?;
    check_price("feed_in_tariff", cfg.feed_in_tariff)?;
    for p in &specs {
        check_price(&format!("participant {}: ask", p.number), p.ask)?;
        check_price(&format!("participant {}: bid", p.number), p.bid)?;
        check_plant(p.number, p.pv_area_dm2, p.rotor_diameter_cm)?;
    }
    let profiles = match &cfg.metered {
        None => specs.iter().map(|p| profile(p, cfg.day, &weather, &loads)).collect::<Result<Vec<_>, _>>()?,
        Some(m) => {
            if m.iter().flatten().any(|v| v.unsigned_abs() > MAX_METERED_WH) {
                return Err(DemoError::Config(format!("metered data holds a value beyond ±{MAX_METERED_WH} Wh")));
            }
            if m.len() != specs.len() || m.iter().any(|row| row.len() != SLOTS_PER_DAY) {
                return Err(DemoError::Config(format!(
                    "metered data has {} meters for {} participants (each needs {SLOTS_PER_DAY} slots)",
                    m.len(),
                    specs.len()
                )));
            }
            m.iter()
                .map(|row| Profile {
                    load_wh: row.iter().map(|v| if *v < 0 { v.unsigned_abs() } else { 0 }).collect(),
                    generation_wh: row.iter().map(|v| if *v > 0 { v.unsigned_abs() } else { 0 }).collect(),
                })
                .collect()
        }
    };
    // Simulated generation and load within what a meter may report, so the
    // day's sums cannot overflow (attack r28 [3]).
    for (p, pr) in specs.iter().zip(&profiles) {
        if pr.generation_wh.iter().chain(&pr.load_wh).any(|v| *v > MAX_METERED_WH) {
            return Err(DemoError::Config(format!(
                "participant {}: a slot's generation or load is beyond {MAX_METERED_WH} Wh",
                p.number
            )));
        }
    }
    let n = specs.len();
    let mut params = IorParams::case_study();
    // A compressed real-clock slot is one metering interval: its single
    // reading covers the slot, and slots start on that grid.
    if cfg.start_ms.is_some() {
        params.meter_step_s = u32::try_from(cfg.slot_ms / 1000).unwrap_or(u32::MAX);
    }
    // Every AT locks D_s from each side plus the price from the buyer: an
    // account funded with D_s or less can never trade, and every AT it is
    // matched into would only cost reputation.
    let funding = funding_of(cfg.funding_coins)?;
    if funding <= params.ds {
        return Err(DemoError::Config(format!(
            "funding_coins {} must exceed the deposit D_s ({} minor units) each AT locks",
            cfg.funding_coins, params.ds
        )));
    }
    let dcfg = DriverConfig {
        params: params.clone(),
        mode: Mode::Ior,
        ior_window_ms: cfg.window_ms,
        node_deposit: coins(100),
        bonus_permille: 500,
        participants: n,
        executors: cfg.executors,
        validators: cfg.validators,
        wallet: coins(WALLET_COINS),
        delegates: 2,
        challenge_bond: coins(10),
        delegation_fee: Amount(10_000),
    };
    Ok(DaySetup { specs, profiles, params, dcfg, funding })
}

/// [`run_day_on`], calling `on_slot(k, t0)` as slot `k` (of the traded
/// [`DayConfig::slots`], then `end` for the last settlement) starts at
/// block time `t0`, before anything of the slot is sent: a day on a
/// running node takes minutes of real time, and a caller that records the
/// slots' start times can resume a day killed part way ([`resume_day`]).
/// An error from `on_slot` (the caller could not record the slot's start)
/// stops the day there, before anything of the slot is sent (attack r11
/// [5]): what was sent is what the caller recorded.
///
/// `gas(needs)` is called once a slot's calls are known and before any is
/// sent, with what each trader's wallet must hold for their gas limits
/// (`(account index, minor units)`, [`gas_needs`]): a caller on a running
/// node tops the wallets up, so a day of any length does not run out of
/// gas part way (attack r11 [1]); an error stops the day there.
pub fn run_day_with_progress<P: ChainClient, S: ChainClient>(
    cfg: DayConfig,
    open: impl FnOnce(DriverConfig) -> Result<DualChain<P, S>, DemoError>,
    on_slot: &mut dyn FnMut(usize, Timestamp) -> Result<(), DemoError>,
    gas: &mut GasTopUp<'_>,
) -> Result<DayReport, DemoError> {
    let DaySetup { specs, profiles, params, dcfg, funding } = day_setup(&cfg)?;
    let (first_slot, end_slot) = cfg.slots;
    let n = specs.len();
    let keys: Vec<KeyPair> = (0..n).map(dev_key).collect();
    let accounts = dcfg.accounts()?;
    let mut d = open(dcfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x10_5e_ed);
    let total_before = chain_total(&d, accounts);
    let heights_before = (d.primary.tip().height, d.secondary.tip().height);
    d.fund_many(&keys.iter().map(|k| (k.clone(), funding)).collect::<Vec<_>>())?;
    d.register_meters(&keys)?;
    let balance_start: Vec<u128> =
        specs.iter().map(|p| d.participant(&p.address).map(|x| x.balance.0)).collect::<Result<_, _>>()?;
    let gas_from = d.gas.len();

    let started = Instant::now();
    let mut open: Vec<(AgreementTerms, usize)> = Vec::new(); // terms, trade index
    let mut trades: Vec<Trade> = Vec::new();
    let mut by_key: BTreeMap<AgreementKey, usize> = BTreeMap::new();
    let mut net_by_slot: Vec<Vec<i64>> = Vec::with_capacity(SLOTS_PER_DAY);
    // Slot `end_slot` only settles the last traded slot.
    let active = |slot: usize| (first_slot..=end_slot).contains(&slot);
    let slot_len = if cfg.start_ms.is_some() { cfg.slot_ms } else { SLOT_MS };
    let mut next_t0 = cfg.start_ms;
    for slot in 0..=SLOTS_PER_DAY {
        if !active(slot) {
            if slot < SLOTS_PER_DAY {
                net_by_slot.push(vec![0; n]);
            }
            continue;
        }
        let t0 = match next_t0 {
            None => DAY_START_MS + slot as u64 * SLOT_MS,
            // A real clock: the slot starts once the last one ended, and not
            // before now (processing the last batch may have taken longer),
            // on the metering grid (`IorParams::meter_step_s`).
            Some(t) => t.max(d.now()).div_ceil(slot_len) * slot_len,
        };
        next_t0 = next_t0.map(|_| t0 + slot_len);
        d.set_time(t0);
        // STs of the slot that just ended, by the sellers, then in a later
        // block (the batch order is the block order, and a buyer's ST must
        // close its agreement before its next AT opens one) the ATs.
        // The meter's readings of a slot's net export `surplus` (Wh): on
        // the simulated clock six 5-minute readings of its mean power (Wh ×
        // 2 = W over half an hour); on a compressed slot one reading over
        // the slot, rounded up to the watt so it covers `surplus`.
        let step_s = meter_step_s(&cfg);
        let readings = |surplus: i64| slot_readings(&cfg, surplus);
        let mut sts: Vec<(KeyPair, IorTx)> = Vec::new();
        let mut ats: Vec<(KeyPair, IorTx)> = Vec::new();
        let mut settling: Vec<usize> = Vec::new();
        for (terms, ti) in open.drain(..) {
            if trades[ti].at_outcome == "AtAccepted" {
                settling.push(ti);
            }
            let (b, s) = (trades[ti].buyer - 1, trades[ti].seller - 1);
            let surplus = net_by_slot[trades[ti].slot][s].max(0);
            let st = agreed_st(&d.cfg.params, terms, d.now(), step_s, readings(surplus), &keys[b], &keys[s]);
            sts.push((keys[s].clone(), IorTx::St(st)));
        }
        // The ended slot's STs are recorded before the journal names the
        // coming slot (attack r30 [4]): a day stopped between slots leaves
        // every delivered sale's ST on chain, recorded before its `DL`, and
        // a resume however late settles it as agreed instead of expiring it
        // (an ST recorded after `DL + expiry_ms` is refused).
        if !sts.is_empty() {
            gas(&gas_needs(&keys, &[&sts]))?;
            d.record_packed(&sts)?;
        }
        on_slot(slot, t0)?;
        // ATs of the coming slot, by the buyers.
        if slot < end_slot {
            let net: Vec<i64> =
                profiles.iter().map(|p| p.generation_wh[slot] as i64 - p.load_wh[slot] as i64).collect();
            let market = Market { rule: cfg.clearing, grid_fee: cfg.grid_fee, feed_in_tariff: cfg.feed_in_tariff };
            // Free IOR balance once the STs above settle as agreed (each
            // returns both deposits, the seller's undo reserve, and pays
            // the seller): the ATs' batch is
            // executed after theirs.
            let mut budget: Vec<u128> =
                specs.iter().map(|p| d.participant(&p.address).map(|x| x.balance.0)).collect::<Result<_, _>>()?;
            for ti in settling.drain(..) {
                let t: &Trade = &trades[ti];
                budget[t.buyer - 1] = budget[t.buyer - 1].saturating_add(params.ds.0);
                budget[t.seller - 1] =
                    budget[t.seller - 1].saturating_add(params.seller_lock().0).saturating_add(t.payment);
            }
            for (b, s, em, ep) in slot_agreements(&specs, &net, &market, &mut budget, &params) {
                let terms = AgreementTerms {
                    ep: Amount(ep),
                    em: Energy(em),
                    buyer: specs[b].address,
                    seller: specs[s].address,
                    dt_start: t0,
                    dt_end: t0 + slot_len,
                    dl: t0 + slot_len + 15 * 60 * 1000,
                };
                let payment = terms.payment().map(|a| a.0).unwrap_or(0);
                by_key.insert(terms.key(), trades.len());
                open.push((terms.clone(), trades.len()));
                trades.push(Trade {
                    slot,
                    buyer: b + 1,
                    seller: s + 1,
                    em_wh: em,
                    ep,
                    payment,
                    at_outcome: String::new(),
                    st_outcome: String::new(),
                    settled: false,
                });
                ats.push((keys[b].clone(), IorTx::At(AgreementTx::signed_in(terms, &d.cfg.params.domain, &keys[s]))));
            }
            net_by_slot.push(net);
        }
        gas(&gas_needs(&keys, &[&ats]))?;
        // Each over as many blocks as `SC_DS_*` records whole (per sender,
        // per batch gas: a seller with 40 sales in a slot, attack r12
        // [1]); a refused record stops the day ([`DriverError::Refused`]).
        d.record_packed(&ats)?;
        for sb in d.process(&mut rng)? {
            let input = d.batch_input(sb.batch)?;
            for (e, o) in input.entries.iter().zip(&sb.outcomes) {
                let t = e.tx.terms();
                let Some(&ti) = by_key.get(&t.key()) else { continue };
                let text = match o {
                    Outcome::AtAccepted => "AtAccepted".to_string(),
                    other => format!("{other:?}"),
                };
                if e.tx.is_at() {
                    trades[ti].at_outcome = text;
                } else {
                    trades[ti].settled = matches!(
                        o,
                        Outcome::StSettled(StSettlement::Agreed) | Outcome::StSettled(StSettlement::SellerDelivered)
                    ) && trades[ti].at_outcome == "AtAccepted";
                    trades[ti].st_outcome = text;
                }
            }
        }
    }
    let processing_ms = started.elapsed().as_millis() as u64;
    // Every agreement the day recorded closes by its last batch (each ST
    // recorded, none refused): one still open is not a finished day.
    let (next, fin) = d.reader().progress()?;
    let open = d.settled_state()?.agreements.keys().filter(|k| by_key.contains_key(*k)).count();
    if open > 0 || fin < next {
        return Err(DemoError::Unfinished { open, recorded: by_key.len(), pending: next.saturating_sub(fin) });
    }

    let settled: Vec<&Trade> = trades.iter().filter(|t| t.settled).collect();
    let energy_traded_wh = settled.iter().map(|t| t.em_wh).sum();
    let revenue_minor = settled.iter().map(|t| t.payment).sum();
    let bound_wh = net_by_slot.iter().map(|n| slot_bound(n)).sum();
    let grid_fees_minor = settled.iter().map(|t| cfg.grid_fee * u128::from(t.em_wh) / 1000).sum();
    let mut trades_per_slot = vec![0; SLOTS_PER_DAY];
    for t in &trades {
        trades_per_slot[t.slot] += 1;
    }
    let mut reports = Vec::with_capacity(n);
    for (i, p) in specs.iter().enumerate() {
        let acct = d.participant(&p.address)?;
        reports.push(ParticipantReport {
            spec: p.clone(),
            load_wh: profiles[i].load_wh.iter().sum(),
            generation_wh: profiles[i].generation_wh.iter().sum(),
            bought_wh: settled.iter().filter(|t| t.buyer == i + 1).map(|t| t.em_wh).sum(),
            sold_wh: settled.iter().filter(|t| t.seller == i + 1).map(|t| t.em_wh).sum(),
            balance_start: balance_start[i],
            balance_end: acct.balance.0,
            reputation: acct.reputation,
        });
    }
    // Fig 3-9: the prosumer that sold most.
    let typical = reports
        .iter()
        .filter(|r| r.spec.prosumer)
        .max_by_key(|r| (r.sold_wh, r.spec.number))
        .map_or(0, |r| r.spec.number - 1);
    let traded_wh = (0..SLOTS_PER_DAY)
        .map(|s| {
            settled
                .iter()
                .filter(|t| t.slot == s)
                .map(|t| {
                    if t.seller == typical + 1 {
                        t.em_wh as i64
                    } else if t.buyer == typical + 1 {
                        -(t.em_wh as i64)
                    } else {
                        0
                    }
                })
                .sum()
        })
        .collect();
    let lat: Vec<u64> = d.settled.iter().map(|s| s.latency_ms).collect();
    let black_hole = d.primary.account(&BLACK_HOLE).balance.0;
    let per_slot = |f: fn(i64) -> i64| -> Vec<u64> {
        (0..SLOTS_PER_DAY)
            .map(|s| {
                profiles
                    .iter()
                    .map(|p| f(p.generation_wh[s] as i64 - p.load_wh[s] as i64).max(0) as u64)
                    .fold(0u64, u64::saturating_add)
            })
            .collect()
    };
    // Every transaction the driver sent, successful or not.
    let tx_count = |primary: bool| -> u64 {
        d.gas[gas_from..].iter().filter(|g| matches!(g.target, Target::Primary) == primary).count() as u64
    };
    let chains = ChainCounts {
        primary_blocks: d.primary.tip().height - heights_before.0,
        primary_txs: tx_count(true),
        secondary_blocks: d.secondary.tip().height - heights_before.1,
        secondary_txs: tx_count(false),
    };
    Ok(DayReport {
        weather: "TMY3 723170 Greensboro NC (NREL, via pvlib 0.16.1)",
        loads: "SimBench 1.6.3 H0 household profiles (ODbL 1.0)",
        trades_count: trades.len(),
        settled_trades: settled.len(),
        energy_traded_wh,
        bound_wh,
        grid_fees_minor,
        revenue_minor,
        revenue_coins: coins_string(revenue_minor),
        trades_per_slot,
        supply_wh_per_slot: per_slot(|x| x),
        demand_wh_per_slot: per_slot(|x| -x),
        chains,
        typical_prosumer: TypicalProsumer {
            number: typical + 1,
            load_wh: profiles[typical].load_wh.clone(),
            generation_wh: profiles[typical].generation_wh.clone(),
            traded_wh,
        },
        coins: CoinCheck {
            chain_total_before: total_before,
            chain_total_after: chain_total(&d, accounts),
            ior_total_start: balance_start.iter().sum(),
            ior_total_end: reports.iter().map(|r| r.balance_end).sum(),
            burned: black_hole,
        },
        participants: reports,
        trades,
        gas: GasSummary::of(&d.gas[gas_from..]),
        settlement_latency: Latency {
            batches: lat.len(),
            mean_ms: lat.iter().sum::<u64>().checked_div(lat.len() as u64).unwrap_or(0),
            max_ms: lat.iter().copied().max().unwrap_or(0),
            per_batch_ms: lat,
        },
        processing_ms,
        thesis: THESIS_DAY,
        config: cfg,
    })
}

/// Per-participant settlement statements of one or more days as CSV, one
/// row per participant per day: energy bought and sold, what it paid and
/// received on chain (settled trades), the grid fee it owes the operator,
/// its IOR balance at the start and end of the day and its reputation. For
/// every row `balance_end + paid = balance_start + received` (an honest day
/// burns nothing).
pub fn statements_csv(days: &[DayReport]) -> String {
    statements_csv_of(&days.iter().flat_map(statement_rows).collect::<Vec<_>>())
}

/// One row of the settlement statements ([`statements_csv`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementRow {
    pub day: u16,
    pub participant: usize,
    pub address: Address,
    pub bought_wh: u64,
    pub sold_wh: u64,
    pub paid_minor: u128,
    pub received_minor: u128,
    pub grid_fee_minor: u128,
    pub balance_start_minor: u128,
    pub balance_end_minor: u128,
    pub reputation: u32,
}

/// The statement rows of one day's report, one per participant.
pub fn statement_rows(r: &DayReport) -> Vec<StatementRow> {
    r.participants
        .iter()
        .map(|p| {
            let n = p.spec.number;
            let settled = r.trades.iter().filter(|t| t.settled);
            let paid: u128 = settled.clone().filter(|t| t.buyer == n).map(|t| t.payment).sum();
            let received: u128 = settled.clone().filter(|t| t.seller == n).map(|t| t.payment).sum();
            let fee: u128 =
                settled.filter(|t| t.buyer == n).map(|t| r.config.grid_fee * u128::from(t.em_wh) / 1000).sum();
            StatementRow {
                day: r.config.day,
                participant: n,
                address: p.spec.address,
                bought_wh: p.bought_wh,
                sold_wh: p.sold_wh,
                paid_minor: paid,
                received_minor: received,
                grid_fee_minor: fee,
                balance_start_minor: p.balance_start,
                balance_end_minor: p.balance_end,
                reputation: p.reputation,
            }
        })
        .collect()
}

/// Statement rows as CSV ([`statements_csv`]'s columns).
pub fn statements_csv_of(rows: &[StatementRow]) -> String {
    let mut out = String::from(
        "day,participant,address,bought_wh,sold_wh,paid_minor,received_minor,grid_fee_minor,balance_start_minor,balance_end_minor,reputation\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.day,
            r.participant,
            r.address,
            r.bought_wh,
            r.sold_wh,
            r.paid_minor,
            r.received_minor,
            r.grid_fee_minor,
            r.balance_start_minor,
            r.balance_end_minor,
            r.reputation
        ));
    }
    out
}

/// The §3.5.5 case study as run on the dual chain, beside the thesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseStudyReport {
    /// `rs`, `α`, `β`, `D_s` (minor units), `F_p` (per mille).
    pub params: IorParams,
    /// Participant #14's reputation after each misbehaviour (8:00, 13:00).
    pub reputation_after: Vec<u32>,
    /// What #14 lost, minor units (thesis: 2 × D_s = 2 coins).
    pub loss_minor: u128,
    /// What each of its two counterparties gained, minor units (thesis:
    /// F_p × D_s = 0.5 coin).
    pub compensation_minor: Vec<u128>,
    /// Burned to the black hole, minor units.
    pub burned_minor: u128,
    /// Whether #14's AT after 13:30 was refused, and why.
    pub barred: Option<String>,
    /// Coin on the primary chain unchanged.
    pub coin_conserved: bool,
}

/// Runs the §3.5.5 case study (15 participants, rs = 30, α = 10, β = 10,
/// D_s = 1, F_p = 0.5): #14 sells at 8:00–8:30 and 13:00–13:30 and
/// delivers nothing; its buyers disagree and arbitration finds the
/// shortfall on #14's own meter-signed readings; after 13:30 #14's next AT
/// is refused.
pub fn case_study() -> Result<CaseStudyReport, DemoError> {
    const N: usize = 15;
    const HOUR: u64 = 3_600_000;
    const MIN: u64 = 60_000;
    let dirs = (tempfile::tempdir()?, tempfile::tempdir()?);
    let params = IorParams::case_study();
    let dcfg = DriverConfig {
        params: params.clone(),
        mode: Mode::Ior,
        ior_window_ms: 5_000,
        node_deposit: coins(100),
        bonus_permille: 500,
        participants: N,
        executors: 1,
        validators: 2,
        wallet: coins(1_000),
        delegates: 2,
        challenge_bond: coins(10),
        delegation_fee: Amount(10_000),
    };
    let mut d = DualChain::open(dirs.0.path(), dirs.1.path(), dcfg)?;
    let keys: Vec<KeyPair> = (0..N).map(dev_key).collect();
    d.fund_many(&keys.iter().map(|k| (k.clone(), coins(10))).collect::<Vec<_>>())?;
    d.register_meters(&keys)?;
    let accounts = N + 3;
    let total0 = chain_total(&d, accounts);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let p14 = keys[13].clone();
    let terms_at = |buyer: &KeyPair, start: u64| AgreementTerms {
        ep: Amount(200_000),
        em: Energy(500),
        buyer: buyer.address(),
        seller: p14.address(),
        dt_start: start,
        dt_end: start + 30 * MIN,
        dl: start + 45 * MIN,
    };
    let mut reputation_after = Vec::new();
    let buyers = [keys[2].clone(), keys[4].clone()];
    for (buyer, hour) in buyers.iter().zip([8u64, 13]) {
        let t = terms_at(buyer, hour * HOUR);
        d.set_time(t.dt_start - 30 * MIN);
        d.submit(buyer, &IorTx::At(AgreementTx::signed_in(t.clone(), &d.cfg.params.domain, &p14)))?;
        d.process(&mut rng)?;
        d.set_time(t.dt_end + 5 * MIN);
        // #14 outputs nothing; its meter says so; the buyer disagrees.
        let st = SettlementTx {
            terms: t.clone(),
            stmp: t.dt_end + 5 * MIN,
            buyer_sig: None,
            ob: false,
            dt_step_s: 300,
            ps: vec![0; 6],
            meter_sig: None,
        }
        .sign_readings_in(&d.cfg.params.domain, &meter_key(&p14.address()))
        .sign_as_buyer_in(&d.cfg.params.domain, buyer);
        d.submit(&p14, &IorTx::St(st))?;
        d.process(&mut rng)?;
        reputation_after.push(d.participant(&p14.address())?.reputation);
    }
    let later = terms_at(&keys[6], 14 * HOUR + 30 * MIN);
    d.set_time(14 * HOUR);
    d.submit(&keys[6], &IorTx::At(AgreementTx::signed_in(later, &d.cfg.params.domain, &p14)))?;
    let barred = d.process(&mut rng)?.first().and_then(|s| match s.outcomes.first() {
        Some(Outcome::AtRejected(why)) => Some(why.to_string()),
        _ => None,
    });
    let ten = coins(10).0;
    Ok(CaseStudyReport {
        params,
        reputation_after,
        loss_minor: ten.saturating_sub(d.participant(&p14.address())?.balance.0),
        compensation_minor: buyers
            .iter()
            .map(|b| d.participant(&b.address()).map(|p| p.balance.0.saturating_sub(ten)))
            .collect::<Result<_, _>>()?,
        burned_minor: d.primary.account(&BLACK_HOLE).balance.0,
        barred,
        coin_conserved: chain_total(&d, accounts) == total0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funding_from_outside_is_bounded_by_the_wallet() {
        assert_eq!(funding_of(50).unwrap(), coins(50));
        assert_eq!(funding_of(WALLET_COINS - 1).unwrap(), coins(WALLET_COINS - 1));
        for huge in [WALLET_COINS, u128::MAX / MINOR_PER_COIN + 1, u128::MAX] {
            assert!(matches!(funding_of(huge), Err(DemoError::Config(_))), "{huge}");
        }
        let c = Community { funding_coins: u128::MAX, ..toml::from_str("").unwrap() };
        assert!(matches!(c.day_config(c.day), Err(DemoError::Config(_))));
    }

    #[test]
    fn physical_models_follow_eqs_3_6_to_3_8() {
        // 1 kW/m² on 10 m² at 18 %: 1.8 kW, 900 Wh per slot.
        assert_eq!(slot_wh(pv_power_w(1000.0, 10.0)), 900);
        // Below cut-in and above cut-out: nothing; above rated: capped.
        assert_eq!(wind_power_w(2.9, 3.0), 0.0);
        assert_eq!(wind_power_w(25.1, 3.0), 0.0);
        assert_eq!(wind_power_w(20.0, 3.0), wind_power_w(12.0, 3.0));
        // ½ × 1.3 × π × 2²/4 × 5³ = 255.25 W → 128 Wh per slot.
        assert_eq!(slot_wh(wind_power_w(5.0, 2.0)), 128);
        assert_eq!(slot_wh(f64::NAN), 0);
        assert_eq!(slot_wh(-5.0), 0);
    }

    #[test]
    fn auction_fills_deficits_from_several_sellers_within_prices() {
        let cfg = DayConfig::default();
        let specs = participants(&cfg);
        assert_eq!(specs.iter().filter(|p| p.prosumer).count(), 12);
        assert!(specs[13].pv_area_dm2 > 0 && specs[13].rotor_diameter_cm > 0, "#14 has PV and wind");
        // Sellers of 200 Wh, buyers of 220 Wh: every buyer needs two sellers.
        let net: Vec<i64> = (0..15).map(|i| if i % 2 == 0 { 200 } else { -220 }).collect();
        for rule in [ClearingRule::Midpoint, ClearingRule::PayAsBid, ClearingRule::Uniform] {
            let m = clear_slot_with(&specs, &net, rule);
            let mut pairs: Vec<(usize, usize)> = m.iter().map(|t| (t.0, t.1)).collect();
            pairs.sort_unstable();
            pairs.dedup();
            assert_eq!(pairs.len(), m.len(), "each (buyer, seller) pair at most once");
            assert_eq!(m.iter().map(|t| t.2).sum::<u64>(), slot_bound(&net));
            assert_eq!(slot_bound(&net), 7 * 220);
            for b in (0..15).filter(|i| i % 2 == 1) {
                assert_eq!(m.iter().filter(|t| t.0 == b).map(|t| t.2).sum::<u64>(), 220, "buyer {b} filled");
                assert!(m.iter().filter(|t| t.0 == b).count() >= 2, "buyer {b} buys from several sellers");
            }
            for s in (0..15).filter(|i| i % 2 == 0) {
                assert!(m.iter().filter(|t| t.1 == s).map(|t| t.2).sum::<u64>() <= 200);
            }
            for &(b, s, em, ep) in &m {
                assert!(net[b] < 0 && net[s] > 0 && em > 0);
                assert!(specs[s].ask <= ep && ep <= specs[b].bid, "{rule:?}");
                if rule == ClearingRule::PayAsBid {
                    assert_eq!(ep, specs[b].bid);
                }
            }
            if rule == ClearingRule::Uniform {
                assert!(m.iter().all(|t| t.3 == m[0].3));
            }
        }
    }

    /// Issue 11: at least 99 % of what each day physically allows,
    /// `Σ_slots min(Σ surplus, Σ deficit)`, is matched on every day of
    /// the year.
    #[test]
    fn meter_csv_quarter_hours_and_hours_become_half_hour_slots() {
        let mut q = String::from("time,m1,m2\n");
        for i in 0..96 {
            q.push_str(&format!("t{i},{},{}\n", i, -(i as i64) - 1));
        }
        let m = parse_meter_csv(&q).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0][0], 1, "0 + 1");
        assert_eq!(m[0][47], 94 + 95);
        assert_eq!(m[1][0], -3);
        assert_eq!(m[0].iter().sum::<i64>(), (0..96).sum::<i64>(), "no Wh lost");
        let mut h = String::from("hour,m1\n");
        for i in 0..24 {
            h.push_str(&format!("{i},{}\n", 2 * i + 1 - 24));
        }
        let m = parse_meter_csv(&h).unwrap();
        assert_eq!((m[0][0], m[0][1]), (-12, -11), "-23 split as floor(-23/2) and the rest");
        assert_eq!(m[0].iter().sum::<i64>(), (0..24).map(|i| 2 * i + 1 - 24).sum::<i64>());
        for (text, why) in [
            ("", "empty"),
            ("time\n1\n", "names no meter"),
            ("time,m1\nx,1,2\n", "row 2 has 3 columns"),
            ("time,m1\nx,1.5\n", "not an integer"),
            ("time,m1\nx,1\n", "got 1"),
        ] {
            match parse_meter_csv(text) {
                Err(DemoError::Config(msg)) => assert!(msg.contains(why), "{msg} lacks {why}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    /// A day run on metered data trades what the meters say is tradable.
    #[test]
    fn a_day_runs_on_metered_data() {
        let mut csv = String::from("time,a,b,c\n");
        for h in 0..24 {
            let sun = if (8..16).contains(&h) { 400 } else { 0 };
            csv.push_str(&format!("{h},{},-150,-120\n", sun - 100));
        }
        let metered = parse_meter_csv(&csv).unwrap();
        let cfg = DayConfig { prosumers: 1, consumers: 2, metered: Some(metered.clone()), ..DayConfig::default() };
        let r = run_day(cfg).unwrap();
        let bound: u64 =
            (0..SLOTS_PER_DAY).map(|s| slot_bound(&metered.iter().map(|m| m[s]).collect::<Vec<_>>())).sum();
        assert_eq!(r.bound_wh, bound);
        assert_eq!(r.energy_traded_wh, bound);
        assert!(bound > 0);
        let wrong = DayConfig { metered: Some(vec![vec![0; SLOTS_PER_DAY]]), ..DayConfig::default() };
        assert!(matches!(run_day(wrong), Err(DemoError::Config(m)) if m.contains("1 meters for 15 participants")));
    }

    /// A seller funded for fewer deposits than the auction matches it to is
    /// skipped for the trades it cannot cover: every AT submitted is
    /// accepted, nobody loses reputation, and the day goes on trading
    /// (before, the extra ATs were refused on chain for the balance and
    /// each cost its buyer α, until the buyers were barred).
    #[test]
    fn unaffordable_trades_are_skipped_not_refused() {
        let mut csv = String::from("time,seller,b1,b2,b3\n");
        for h in 0..24 {
            let sun = if (8..16).contains(&h) { 900 } else { 0 };
            csv.push_str(&format!("{h},{},-150,-120,-130\n", sun - 50));
        }
        let metered = parse_meter_csv(&csv).unwrap();
        // An AT locks 1.5 coin of its seller (D_s = 1 coin and the undo
        // reserve): with 2 coins the seller covers one deposit, not the
        // three buyers the auction matches it to in a sunny slot.
        let cfg =
            DayConfig { prosumers: 1, consumers: 3, funding_coins: 2, metered: Some(metered), ..DayConfig::default() };
        let r = run_day(cfg).unwrap();
        assert!(r.energy_traded_wh > 0, "the day trades");
        assert!(r.energy_traded_wh < r.bound_wh, "some matched trades were unaffordable and skipped");
        for t in &r.trades {
            assert_eq!(t.at_outcome, "AtAccepted", "no AT is refused on chain: {t:?}");
        }
        let rs = IorParams::case_study().rs;
        for p in &r.participants {
            assert_eq!(p.reputation, rs, "nobody is penalised for a trade it could not pay");
        }
        // The pure rule: a buyer with too little is skipped, the next served.
        let mut budget = vec![coins(1).0, coins(5).0, coins(2).0];
        let kept = affordable_pairs(vec![(0, 2, 500, 200_000), (1, 2, 500, 200_000)], &mut budget, coins(1), coins(1));
        assert_eq!(kept, vec![(1, 2, 500, 200_000)]);
        assert_eq!(budget, vec![coins(1).0, coins(5).0 - coins(1).0 - 100_000, coins(1).0]);
    }

    /// Issue 11: at least 99 % of what each day physically allows,
    /// `Σ_slots min(Σ surplus, Σ deficit)`, is traded on every day of the
    /// year, by the auction alone and through the path the day sends
    /// ([`slot_agreements`]: the auction under the participants' budgets,
    /// then the affordability check), with each slot's budgets the funding
    /// moved by the payments of the slots before (what the chain holds
    /// once they settle as agreed). The bound is reached only where the
    /// participants can pay for it: here every account is funded with the
    /// default 50 coin, which covers it.
    #[test]
    fn every_day_of_the_year_trades_at_least_99_percent_of_the_bound() {
        let mut worst = (u64::MAX, 1u64, 0u16);
        let year = data::parse_weather(data::WEATHER_CSV).unwrap();
        let loads = data::parse_loads(data::LOAD_CSV).unwrap();
        let params = IorParams::case_study();
        for day in 1..=365u16 {
            let cfg = DayConfig { day, ..DayConfig::default() };
            let specs = participants(&cfg);
            let market = Market { rule: cfg.clearing, grid_fee: cfg.grid_fee, feed_in_tariff: cfg.feed_in_tariff };
            let mut balance = vec![coins(cfg.funding_coins).0; specs.len()];
            let (mut pure, mut traded, mut bound) = (0u64, 0u64, 0u64);
            for net in day_net_from(&cfg, &year, &loads).unwrap() {
                pure += clear_slot_with(&specs, &net, cfg.clearing).iter().map(|t| t.2).sum::<u64>();
                let mut budget = balance.clone();
                for (b, s, em, ep) in slot_agreements(&specs, &net, &market, &mut budget, &params) {
                    let pay = ep * u128::from(em) / 1000;
                    balance[b] -= pay;
                    balance[s] += pay;
                    traded += em;
                }
                bound += slot_bound(&net);
            }
            assert!(pure * 100 >= bound * 99, "day {day}: the auction trades {pure} of {bound} Wh");
            assert!(traded * 100 >= bound * 99, "day {day}: the day's agreements trade {traded} of {bound} Wh");
            if bound > 0 && u128::from(traded) * u128::from(worst.1) < u128::from(worst.0) * u128::from(bound) {
                worst = (traded, bound, day);
            }
        }
        println!("worst day {}: {} of {} Wh", worst.2, worst.0, worst.1);
    }

    /// What [`run_day`] settles on chain, on a spread of days (one a
    /// season, the twelve slots around noon, 9:00 to 15:00, where most
    /// is traded; a whole year of chain days, or even four whole days,
    /// is too slow for the suite): at least 99 % of the bound, each day's
    /// participants funded with the default 50 coin (attack r28 [5]: the
    /// year test checked only the auction).
    #[test]
    fn run_day_settles_at_least_99_percent_of_the_bound_on_a_spread_of_days() {
        for day in [15u16, 106, 197, 288] {
            let r = run_day(DayConfig { day, slots: (18, 30), ..DayConfig::default() }).unwrap();
            assert!(r.bound_wh > 0, "day {day}");
            assert!(
                r.energy_traded_wh * 100 >= r.bound_wh * 99,
                "day {day}: settled {} of {} Wh",
                r.energy_traded_wh,
                r.bound_wh
            );
        }
    }
}
