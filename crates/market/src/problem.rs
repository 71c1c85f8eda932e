//! The P2P market-clearing problem of the seed's Eqs 6.1–6.4.
//!
//! `max F = Σ_m U_m(e_m) − Σ_n C_n(e_n)` over bilateral trades `e_mn ≥ 0`
//! (buyer `m` buys from seller `n`; Eq 6.4c's `e_mn = e_nm` is the coupling
//! the distributed algorithms enforce with price duals, and the centralised
//! view keeps one variable per pair), subject to the buyer/seller bounds
//! (Eqs 6.4a–b) and the network constraints (PTDF line limits, Eq 6.2).
//!
//! Units and conventions (the seed is silent on them):
//! - energy in kWh per clearing interval of one hour, so a trade of `e` kWh
//!   is a constant `e` kW (= `e / 1000` MW) for the interval;
//! - money in dollars (floats inside the optimisation only; see
//!   [`crate::units`] for the rounding into the ledger's minor units);
//! - utility `U_m(e) = b_m e − a_m e² / 2`, cost `C_n(e) = b_n e + a_n e² / 2`
//!   with `a > 0` (strictly concave welfare, unique optimum per prosumer total).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Buyer or seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buyer,
    Seller,
}

/// One prosumer's (plaintext) request: bus, bounds and quadratic coefficients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prosumer {
    pub side: Side,
    /// Bus id (as in the case file).
    pub bus: u32,
    /// Quadratic coefficient `a`, $/kWh².
    pub a: f64,
    /// Linear coefficient `b`, $/kWh.
    pub b: f64,
    /// Minimum total energy, kWh.
    pub e_min: f64,
    /// Maximum total energy, kWh.
    pub e_max: f64,
}

impl Prosumer {
    /// Utility (buyers) or minus cost (sellers) of a total `e`: the prosumer's
    /// contribution to the welfare.
    pub fn welfare(&self, e: f64) -> f64 {
        match self.side {
            Side::Buyer => self.b * e - 0.5 * self.a * e * e,
            Side::Seller => -(self.b * e + 0.5 * self.a * e * e),
        }
    }

    /// Marginal welfare of one more kWh at total `e`.
    pub fn marginal(&self, e: f64) -> f64 {
        match self.side {
            Side::Buyer => self.b - self.a * e,
            Side::Seller => -(self.b + self.a * e),
        }
    }
}

/// Why a market was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MarketError {
    #[error("{side:?} {index}: {field} = {value} is not a finite non-negative number")]
    BadParameter { side: Side, index: usize, field: &'static str, value: f64 },
    #[error("{side:?} {index}: quadratic coefficient a = {value} must be positive")]
    NotStrictlyConcave { side: Side, index: usize, value: f64 },
    #[error("{side:?} {index}: e_min {e_min} exceeds e_max {e_max}")]
    InfeasibleBounds { side: Side, index: usize, e_min: f64, e_max: f64 },
    #[error("buyers' minimum total {buy_min} kWh exceeds sellers' maximum {sell_max}, or sellers' minimum {sell_min} exceeds buyers' maximum {buy_max}")]
    InfeasibleTotals { buy_min: f64, buy_max: f64, sell_min: f64, sell_max: f64 },
    #[error("{side:?} {index}: bus {bus} is not in the network")]
    UnknownBus { side: Side, index: usize, bus: u32 },
    #[error("a market needs at least one buyer and one seller")]
    Empty,
    #[error("{listed:?} {index} is filed as a {side:?}")]
    WrongSide { listed: Side, index: usize, side: Side },
    #[error(
        "{side:?} {index}: quadratic coefficient a = {value} $/kWh² is above the admission limit of {limit} $/kWh²"
    )]
    TooSteep { side: Side, index: usize, value: f64, limit: f64 },
}

/// Largest quadratic coefficient `a` ($/kWh²) a request may carry
/// (admission rule). The primal–dual step is `α = 1 / (a_max · max(M, N) + 2ρ)`
/// for every party within the reference scale
/// ([`crate::primal_dual::PdParams::party_steps`]), so the
/// iteration count grows with the largest `a` of *any* request: one request
/// with `a = 10⁶` held an honest 3 × 3 market at the 200 000-iteration cap.
/// `1 $/kWh²` (a marginal cost rising by 1 $/kWh per kWh, about 30 times the
/// generator's largest, 0.03) bounds that lever at the price of refusing
/// curvatures no household tariff has; a request above it is refused
/// ([`MarketError::TooSteep`]) and, in the framework, excluded with a record.
pub const MAX_CURVATURE: f64 = 1.0;

impl Prosumer {
    /// Checks one prosumer's own parameters, listed as `listed` number
    /// `index`; `buses` are the network's bus ids.
    pub fn check(&self, listed: Side, index: usize, buses: &[u32]) -> Result<(), MarketError> {
        let p = self;
        let side = p.side;
        if side != listed {
            return Err(MarketError::WrongSide { listed, index, side });
        }
        for (field, value) in [("a", p.a), ("b", p.b), ("e_min", p.e_min), ("e_max", p.e_max)] {
            if !value.is_finite() || value < 0.0 {
                return Err(MarketError::BadParameter { side, index, field, value });
            }
        }
        if p.a <= 0.0 {
            return Err(MarketError::NotStrictlyConcave { side, index, value: p.a });
        }
        if p.a > MAX_CURVATURE {
            return Err(MarketError::TooSteep { side, index, value: p.a, limit: MAX_CURVATURE });
        }
        if p.e_min > p.e_max {
            return Err(MarketError::InfeasibleBounds { side, index, e_min: p.e_min, e_max: p.e_max });
        }
        if !buses.contains(&p.bus) {
            return Err(MarketError::UnknownBus { side, index, bus: p.bus });
        }
        Ok(())
    }
}

/// Absolute part of the bound tolerance: 1 Wh, the ledger's resolution.
pub const BOUND_TOL_ABS_KWH: f64 = 1e-3;
/// Relative part of the bound tolerance, of the prosumer's *own* `e_max`
/// (never of anybody else's request, so one huge request loosens nothing).
pub const BOUND_TOL_REL: f64 = 1e-4;

/// How far a settled total may sit outside `[e_min, e_max]` and still count
/// as meeting the bounds: `1 Wh + 10⁻⁴ · e_max` (kWh).
pub fn bound_tolerance(p: &Prosumer) -> f64 {
    BOUND_TOL_ABS_KWH + BOUND_TOL_REL * p.e_max.abs()
}

/// The prosumers of one clearing interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Market {
    pub buyers: Vec<Prosumer>,
    pub sellers: Vec<Prosumer>,
}

impl Market {
    /// Checks every parameter; `buses` are the network's bus ids.
    pub fn validate(&self, buses: &[u32]) -> Result<(), MarketError> {
        if self.buyers.is_empty() || self.sellers.is_empty() {
            return Err(MarketError::Empty);
        }
        for (index, p) in self.buyers.iter().enumerate() {
            p.check(Side::Buyer, index, buses)?;
        }
        for (index, p) in self.sellers.iter().enumerate() {
            p.check(Side::Seller, index, buses)?;
        }
        let sum = |v: &[Prosumer], f: fn(&Prosumer) -> f64| v.iter().map(f).sum::<f64>();
        let (buy_min, buy_max) = (sum(&self.buyers, |p| p.e_min), sum(&self.buyers, |p| p.e_max));
        let (sell_min, sell_max) = (sum(&self.sellers, |p| p.e_min), sum(&self.sellers, |p| p.e_max));
        if buy_min > sell_max || sell_min > buy_max {
            return Err(MarketError::InfeasibleTotals { buy_min, buy_max, sell_min, sell_max });
        }
        Ok(())
    }

    /// Social welfare (Eq 6.1) of a trade matrix `trades[m][n]` (kWh).
    pub fn welfare(&self, trades: &[Vec<f64>]) -> f64 {
        let buy: f64 = self.buyers.iter().enumerate().map(|(m, p)| p.welfare(trades[m].iter().sum())).sum();
        let sell: f64 =
            self.sellers.iter().enumerate().map(|(n, p)| p.welfare(trades.iter().map(|row| row[n]).sum())).sum();
        buy + sell
    }

    /// The largest excursion of a prosumer's settled total outside its own
    /// bounds beyond [`bound_tolerance`]: `Some((side, index, kWh beyond the
    /// bound))`, `None` when every total is within tolerance.
    pub fn bound_excess(&self, trades: &[Vec<f64>]) -> Option<(Side, usize, f64)> {
        let mut worst: Option<(Side, usize, f64)> = None;
        let mut check = |p: &Prosumer, index: usize, total: f64| {
            let beyond = (p.e_min - total).max(total - p.e_max);
            let excess = beyond - bound_tolerance(p);
            if excess > 0.0 && worst.is_none_or(|w| beyond > w.2) {
                worst = Some((p.side, index, beyond));
            }
        };
        for (m, p) in self.buyers.iter().enumerate() {
            check(p, m, trades.get(m).map(|r| r.iter().sum()).unwrap_or(0.0));
        }
        for (n, p) in self.sellers.iter().enumerate() {
            check(p, n, trades.iter().map(|r| r.get(n).copied().unwrap_or(0.0)).sum());
        }
        worst
    }

    /// Welfare of the buyers' and the sellers' totals (kWh, one per
    /// prosumer in order), summed buyers first, each side in order: what
    /// [`Market::welfare`] gives for trades with these totals.
    pub fn welfare_of_totals(&self, buyers: &[f64], sellers: &[f64]) -> f64 {
        let buy: f64 = self.buyers.iter().zip(buyers).map(|(p, e)| p.welfare(*e)).sum();
        let sell: f64 = self.sellers.iter().zip(sellers).map(|(p, e)| p.welfare(*e)).sum();
        buy + sell
    }

    /// Seeded market in the parameter ranges of the seed's references
    /// ([232], [241]): buyers `b ∈ [0.25, 0.35]` $/kWh, sellers
    /// `b ∈ [0.05, 0.15]` $/kWh, all `a ∈ [0.01, 0.03]` $/kWh²,
    /// `e_max ∈ [1, 5]` kWh, `e_min = 0`; prosumers placed uniformly on the
    /// given buses. (These ranges give welfare of the order of the seed's
    /// Table 6-2: about $0.6 per buyer–seller pair.)
    pub fn generate(seed: u64, buyers: usize, sellers: usize, buses: &[u32]) -> Market {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut make = |side: Side, lo: f64, hi: f64| Prosumer {
            side,
            bus: buses.get(rng.random_range(0..buses.len().max(1))).copied().unwrap_or(1),
            a: rng.random_range(0.01..0.03),
            b: rng.random_range(lo..hi),
            e_min: 0.0,
            e_max: rng.random_range(1.0..5.0),
        };
        let buyers = (0..buyers).map(|_| make(Side::Buyer, 0.25, 0.35)).collect();
        let sellers = (0..sellers).map(|_| make(Side::Seller, 0.05, 0.15)).collect();
        Market { buyers, sellers }
    }
}
