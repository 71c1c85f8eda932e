//! Distributed primal–dual clearing of the PTDF market (seed's [232]), as
//! sans-IO iteration steps, and an exact reference for uncongested markets.
//!
//! Each buyer `m` keeps its copy `x_mn` of the trade with seller `n`, each
//! seller `n` its copy `y_mn`; the reciprocity constraint `x_mn = y_mn`
//! (Eq 6.4c) carries a price dual `λ_mn` held by the seller, and each line
//! `l` carries duals `μ⁺_l, μ⁻_l ≥ 0` for `±F_l ≤ F_l^max` (Eq 6.2) held by the
//! grid operator, with `F_l = Σ_mn D_l,mn x_mn` and
//! `D_l,mn = PTDF_l,bus(n) − PTDF_l,bus(m)`, flows in kW (a trade of `e` kWh
//! over the one-hour interval is `e` kW; kW keeps the line duals on the same
//! $/kWh scale as the prices, so one step size fits both). One iteration `r → r+1` (augmented Lagrangian,
//! penalty ρ, primal step α, dual step ρ, line step γ):
//!
//! ```text
//! buyer m:   x_m ← Π_{X_m}( x_m + α [ U'_m(Σ_n x_mn) − λ_m· − ρ (x_m − y_m) − D_·mᵀ (μ⁺ − μ⁻) ] )
//! seller n:  y_n ← Π_{Y_n}( y_n + α [ −C'_n(Σ_m y_mn) + λ_·n + ρ (x_·n − y_·n) ] )
//!            λ_·n ← λ_·n + ρ (x_·n − y_·n)            (with the new x, y)
//! operator:  μ⁺ ← max(0, μ⁺ + γ (F(x) − F^max)),  μ⁻ ← max(0, μ⁻ + γ (−F(x) − F^max))
//! ```
//!
//! `Π_{X_m}` is the Euclidean projection onto `{x ≥ 0, e_min ≤ Σ x ≤ e_max}`
//! (Eq 6.4a; 6.4b for sellers). Every update uses only the values the party
//! owns or receives in the seed's exchange (bilateral trades, seller prices,
//! operator line duals), so each is a function a TEE can execute.
//! Stopping rule: the seed's tolerance `10⁻³` on both the reciprocity
//! residual `max |x − y|` and the largest trade change of the iteration.
//!
//! Status: verified against the exact optimum for uncongested markets. With
//! a binding line the plain dual ascent on `μ` enters a limit cycle (seen on
//! case30, 12×12, one line capped at half its free flow); a damped or
//! augmented line update and a Clarabel reference for congested markets are
//! the next step.

use serde::Serialize;

use crate::dc::DcModel;
use crate::problem::{Market, MarketError, Prosumer};

/// `d[l][m][n]`, see [`trade_sensitivities`].
pub type Sensitivities = Vec<Vec<Vec<f64>>>;

/// Line sensitivities `d[l][m][n]` (kW of flow on line `l` per kWh that
/// seller `n` sells to buyer `m`) and line limits in kW (the case's rating
/// `rate_a` × `limit_scale`; unlimited lines get `f64::INFINITY`).
pub fn trade_sensitivities(
    dc: &DcModel,
    market: &Market,
    limit_scale: f64,
) -> Result<(Sensitivities, Vec<f64>), MarketError> {
    market.validate(&dc.bus_ids)?;
    let pos = |bus: u32| dc.bus_ids.iter().position(|&b| b == bus).unwrap_or(dc.ref_idx);
    let bm: Vec<usize> = market.buyers.iter().map(|p| pos(p.bus)).collect();
    let bn: Vec<usize> = market.sellers.iter().map(|p| pos(p.bus)).collect();
    let d =
        dc.ptdf.iter().map(|row| bm.iter().map(|&i| bn.iter().map(|&j| row[j] - row[i]).collect()).collect()).collect();
    // p.u. on baseMVA → kW
    let limits = dc.limits.iter().map(|l| l * dc.base_mva * 1000.0 * limit_scale).collect();
    Ok((d, limits))
}

/// Projection of `v` onto `{x ≥ 0, lo ≤ Σ x ≤ hi}`.
pub fn project_capped(v: &mut [f64], lo: f64, hi: f64) {
    let clamped: f64 = v.iter().map(|x| x.max(0.0)).sum();
    let target = if clamped > hi {
        hi
    } else if clamped < lo {
        lo
    } else {
        for x in v.iter_mut() {
            *x = x.max(0.0);
        }
        return;
    };
    // find τ with Σ max(0, v − τ) = target (τ may be negative when raising the sum)
    let mut s: Vec<f64> = v.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    let mut tau = 0.0;
    let mut acc = 0.0;
    for (k, &sk) in s.iter().enumerate() {
        acc += sk;
        let t = (acc - target) / (k as f64 + 1.0);
        let next = s.get(k + 1).copied().unwrap_or(f64::NEG_INFINITY);
        if t >= next {
            tau = t;
            break;
        }
    }
    for x in v.iter_mut() {
        *x = (*x - tau).max(0.0);
    }
}

/// Tuning of the primal–dual iteration.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PdParams {
    pub rho: f64,
    pub alpha: f64,
    pub gamma: f64,
    pub tol: f64,
    pub max_iter: usize,
}

impl PdParams {
    /// Step sizes from the market's curvature: `α = 1 / (a_max · max(M, N) + 2ρ)`
    /// keeps the gradient step below the inverse Lipschitz constant of the
    /// local objectives.
    pub fn for_market(market: &Market) -> PdParams {
        let a_max = market.buyers.iter().chain(&market.sellers).map(|p| p.a).fold(0.0, f64::max);
        let k = market.buyers.len().max(market.sellers.len()) as f64;
        let rho = 0.05;
        let alpha = 1.0 / (a_max * k + 2.0 * rho);
        // the seed's 1e-3 per prosumer total, i.e. 1e-3 / max(M, N) per trade
        PdParams { rho, alpha, gamma: 0.1 * alpha, tol: 1e-3 / k, max_iter: 50_000 }
    }
}

/// State of the primal–dual iteration.
#[derive(Debug, Clone)]
pub struct PrimalDual {
    pub params: PdParams,
    /// Buyers' trade copies `x[m][n]`, kWh.
    pub x: Vec<Vec<f64>>,
    /// Sellers' trade copies `y[m][n]`, kWh.
    pub y: Vec<Vec<f64>>,
    /// Reciprocity prices `λ[m][n]`, $/kWh.
    pub lambda: Vec<Vec<f64>>,
    pub mu_plus: Vec<f64>,
    pub mu_minus: Vec<f64>,
    /// `d[l][m][n]`: flow on line `l` per kWh traded from `n` to `m`, kW.
    pub d: Vec<Vec<Vec<f64>>>,
    /// Line limits, kW.
    pub limits: Vec<f64>,
    pub iterations: usize,
}

/// What one iteration changed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    pub residual: f64,
    pub change: f64,
    pub converged: bool,
}

/// Buyer `m`'s update (sans-IO: inputs in, new trade row out).
pub fn buyer_step(p: &Prosumer, x: &[f64], y: &[f64], lambda: &[f64], line_price: &[f64], prm: &PdParams) -> Vec<f64> {
    let g = p.marginal(x.iter().sum());
    let mut v: Vec<f64> =
        (0..x.len()).map(|n| x[n] + prm.alpha * (g - lambda[n] - prm.rho * (x[n] - y[n]) - line_price[n])).collect();
    project_capped(&mut v, p.e_min, p.e_max);
    v
}

/// Seller `n`'s update: new trade column and prices.
pub fn seller_step(p: &Prosumer, x: &[f64], y: &[f64], lambda: &[f64], prm: &PdParams) -> (Vec<f64>, Vec<f64>) {
    let g = p.marginal(y.iter().sum());
    let mut v: Vec<f64> = (0..y.len()).map(|m| y[m] + prm.alpha * (g + lambda[m] + prm.rho * (x[m] - y[m]))).collect();
    project_capped(&mut v, p.e_min, p.e_max);
    let lam = (0..y.len()).map(|m| lambda[m] + prm.rho * (x[m] - v[m])).collect();
    (v, lam)
}

impl PrimalDual {
    /// A fresh iteration for `market` on lines with sensitivities `d` and limits (p.u.).
    pub fn new(market: &Market, d: Vec<Vec<Vec<f64>>>, limits: Vec<f64>, params: PdParams) -> PrimalDual {
        let (m, n) = (market.buyers.len(), market.sellers.len());
        let l = limits.len();
        PrimalDual {
            params,
            x: vec![vec![0.0; n]; m],
            y: vec![vec![0.0; n]; m],
            lambda: vec![vec![0.0; n]; m],
            mu_plus: vec![0.0; l],
            mu_minus: vec![0.0; l],
            d,
            limits,
            iterations: 0,
        }
    }

    /// The trades that settle: for each pair the smaller of the buyer's and
    /// the seller's copy, i.e. the amount both agreed to. Within the
    /// tolerance of convergence the copies agree; taking the smaller keeps
    /// every upper bound (Eqs 6.4a–b) exact rather than violated by up to the
    /// tolerance.
    pub fn settled(&self) -> Vec<Vec<f64>> {
        self.x.iter().zip(&self.y).map(|(xr, yr)| xr.iter().zip(yr).map(|(a, b)| a.min(*b)).collect()).collect()
    }

    /// Line flows of the buyers' trades, kW.
    pub fn flows(&self) -> Vec<f64> {
        self.d
            .iter()
            .map(|dl| dl.iter().zip(&self.x).map(|(dr, xr)| dr.iter().zip(xr).map(|(a, b)| a * b).sum::<f64>()).sum())
            .collect()
    }

    /// One synchronous iteration of every party's update.
    pub fn step(&mut self, market: &Market) -> StepReport {
        let (mm, nn) = (market.buyers.len(), market.sellers.len());
        let prm = self.params;
        let old = self.x.clone();
        // buyers
        for m in 0..mm {
            let line_price: Vec<f64> = (0..nn)
                .map(|n| (0..self.limits.len()).map(|l| self.d[l][m][n] * (self.mu_plus[l] - self.mu_minus[l])).sum())
                .collect();
            self.x[m] = buyer_step(&market.buyers[m], &self.x[m], &self.y[m], &self.lambda[m], &line_price, &prm);
        }
        // sellers
        for n in 0..nn {
            let xc: Vec<f64> = (0..mm).map(|m| self.x[m][n]).collect();
            let yc: Vec<f64> = (0..mm).map(|m| self.y[m][n]).collect();
            let lc: Vec<f64> = (0..mm).map(|m| self.lambda[m][n]).collect();
            let (yn, ln) = seller_step(&market.sellers[n], &xc, &yc, &lc, &prm);
            for m in 0..mm {
                self.y[m][n] = yn[m];
                self.lambda[m][n] = ln[m];
            }
        }
        // operator
        let f = self.flows();
        for l in 0..self.limits.len() {
            if self.limits[l].is_finite() {
                self.mu_plus[l] = (self.mu_plus[l] + prm.gamma * (f[l] - self.limits[l])).max(0.0);
                self.mu_minus[l] = (self.mu_minus[l] + prm.gamma * (-f[l] - self.limits[l])).max(0.0);
            }
        }
        self.iterations += 1;
        let mut residual = 0.0f64;
        let mut change = 0.0f64;
        for m in 0..mm {
            for n in 0..nn {
                residual = residual.max((self.x[m][n] - self.y[m][n]).abs());
                change = change.max((self.x[m][n] - old[m][n]).abs());
            }
        }
        StepReport { residual, change, converged: residual <= prm.tol && change <= prm.tol * prm.alpha }
    }

    /// Iterates until converged or `max_iter`; returns the iteration count.
    pub fn run(&mut self, market: &Market) -> Option<usize> {
        while self.iterations < self.params.max_iter {
            if self.step(market).converged {
                return Some(self.iterations);
            }
        }
        None
    }
}

/// Exact optimum of an uncongested market (no binding line limit): the
/// uniform price `p*` that balances `Σ_m d_m(p) = Σ_n s_n(p)` with
/// `d_m(p) = clamp((b_m − p)/a_m, e_min, e_max)` and
/// `s_n(p) = clamp((p − b_n)/a_n, e_min, e_max)`, found by bisection; returns
/// `(price, welfare, buyer totals, seller totals)`.
pub fn uncongested_optimum(market: &Market) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let demand =
        |p: f64| -> Vec<f64> { market.buyers.iter().map(|b| ((b.b - p) / b.a).clamp(b.e_min, b.e_max)).collect() };
    let supply =
        |p: f64| -> Vec<f64> { market.sellers.iter().map(|s| ((p - s.b) / s.a).clamp(s.e_min, s.e_max)).collect() };
    let excess = |p: f64| demand(p).iter().sum::<f64>() - supply(p).iter().sum::<f64>();
    let all = market.buyers.iter().chain(&market.sellers);
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), q| {
        (lo.min(q.b - q.a * q.e_max), hi.max(q.b + q.a * q.e_max))
    });
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if excess(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let p = 0.5 * (lo + hi);
    let (d, s) = (demand(p), supply(p));
    let w = market.buyers.iter().zip(&d).map(|(q, e)| q.welfare(*e)).sum::<f64>()
        + market.sellers.iter().zip(&s).map(|(q, e)| q.welfare(*e)).sum::<f64>();
    (p, w, d, s)
}
