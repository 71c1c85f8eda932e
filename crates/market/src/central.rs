//! Centralised reference (Eqs 6.1–6.4) with the Clarabel interior-point
//! solver.
//!
//! The network limits see only each prosumer's total (both network models
//! reduce to rows on bus injections, see [`crate::network`]), so the
//! reference solves the QP in the totals: buyer totals `t_m`, seller totals
//! `s_n`,
//!
//! ```text
//! min  Σ_m (a_m t_m²/2 − b_m t_m) + Σ_n (b_n s_n + a_n s_n²/2)
//! s.t. Σ_m t_m − Σ_n s_n = 0            (every kWh bought is sold, 6.4c)
//!      e_min ≤ t_m, s_n ≤ e_max          (6.4a–b)
//!      G p(t, s) ≤ h                     (6.2 or 6.3a–d)
//! ```
//!
//! and every bilateral trade matrix with these margins is optimal: the
//! optimum welfare is unique, the trades are not. The reference reports the
//! proportional plan `e_mn = t_m s_n / Σ s`.
//!
//! Nodal prices: with `z₀` the dual of the balance row and `z_r ≥ 0` those
//! of the network rows, the price at bus `k` is `π_k = z₀ − Σ_r G_rk z_r`
//! (every interior buyer's marginal utility and every interior seller's
//! marginal cost equals its bus's price).
//!
//! Accuracy: interior-point tolerances of 1e-10 on the gap; on the seeded
//! case30 markets the welfare agrees with the exact bisection optimum of
//! uncongested markets to better than 2·10⁻⁵ relative (prosumers sitting on
//! a bound are reached only to the solver's tolerance), far inside the
//! 10⁻³ the distributed algorithms are held to.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};
use serde::Serialize;

use crate::network::MarketNetwork;
use crate::problem::{Market, MarketError};

/// Why the reference could not clear a market.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClearError {
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error("the market is infeasible under the network limits ({0})")]
    Infeasible(String),
    #[error("the solver stopped without a solution ({0})")]
    Solver(String),
    /// The solver reported a solution that breaks one of the network rows
    /// it was given by more than the rows' tolerance (its own tolerances are
    /// relative to the rows' scale: a row with coefficients near 1e20 was
    /// exceeded by 4e22 kW): no reference, rather than a wrong one.
    #[error("the solver's solution breaks network row {row} by {kw_beyond:e} kW")]
    RowBroken { row: String, kw_beyond: f64 },
}

/// The centralised optimum.
#[derive(Debug, Clone, Serialize)]
pub struct CentralSolution {
    /// Social welfare (Eq 6.1), $.
    pub welfare: f64,
    /// Buyer totals, kWh.
    pub buyer_totals: Vec<f64>,
    /// Seller totals, kWh.
    pub seller_totals: Vec<f64>,
    /// Nodal prices, $/kWh, in the network's bus order.
    pub bus_prices: Vec<f64>,
    /// Indices of the network rows that bind (dual > 0).
    pub binding: Vec<usize>,
    /// Interior-point iterations.
    pub iterations: u32,
}

impl CentralSolution {
    /// The proportional trade plan `e_mn = t_m s_n / Σ s` (kWh).
    pub fn trades(&self) -> Vec<Vec<f64>> {
        let total: f64 = self.seller_totals.iter().sum();
        self.buyer_totals
            .iter()
            .map(|t| self.seller_totals.iter().map(|s| if total > 0.0 { t * s / total } else { 0.0 }).collect())
            .collect()
    }
}

/// Solves the clearing problem centrally.
pub fn solve(market: &Market, net: &MarketNetwork) -> Result<CentralSolution, ClearError> {
    let (bm, bn) = net.placement(market)?;
    let (mm, nn) = (market.buyers.len(), market.sellers.len());
    let nv = mm + nn;
    // objective
    let mut pi = Vec::with_capacity(nv);
    let mut pv = Vec::with_capacity(nv);
    let mut q = Vec::with_capacity(nv);
    for (i, p) in market.buyers.iter().enumerate() {
        pi.push(i);
        pv.push(p.a);
        q.push(-p.b);
    }
    for (j, p) in market.sellers.iter().enumerate() {
        pi.push(mm + j);
        pv.push(p.a);
        q.push(p.b);
    }
    let p_mat = CscMatrix::new_from_triplets(nv, nv, pi.clone(), pi, pv);
    // constraints A x + s = b
    let (mut ai, mut aj, mut av, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut row = 0;
    for v in 0..nv {
        ai.push(row);
        aj.push(v);
        av.push(if v < mm { 1.0 } else { -1.0 });
    }
    b.push(0.0);
    row += 1;
    let bounds: Vec<(f64, f64)> = market.buyers.iter().chain(&market.sellers).map(|p| (p.e_min, p.e_max)).collect();
    for (v, (lo, hi)) in bounds.iter().enumerate() {
        ai.extend([row, row + 1]);
        aj.extend([v, v]);
        av.extend([1.0, -1.0]);
        b.extend([*hi, -*lo]);
        row += 2;
    }
    let first_net_row = row;
    for (g, h) in net.g.iter().zip(&net.h) {
        let kept = crate::mutants::active(crate::mutants::Mutation::NegligibleRowsKeptByReference);
        if !kept && crate::primal_dual::negligible_row(g, *h, &bm, &bn) {
            // no constraint, for primal-dual alike (`ROW_SCALE_NEGLIGIBLE`):
            // the row stays, empty (`0 ≤ h`), so the rows keep their indices
            b.push(*h);
            row += 1;
            continue;
        }
        // p_k = Σ_{n at k} s_n − Σ_{m at k} t_m
        for (i, &k) in bm.iter().enumerate() {
            if g[k] != 0.0 {
                ai.push(row);
                aj.push(i);
                av.push(-g[k]);
            }
        }
        for (j, &k) in bn.iter().enumerate() {
            if g[k] != 0.0 {
                ai.push(row);
                aj.push(mm + j);
                av.push(g[k]);
            }
        }
        b.push(*h);
        row += 1;
    }
    let a_mat = CscMatrix::new_from_triplets(row, nv, ai, aj, av);
    let cones = [SupportedConeT::ZeroConeT(1), SupportedConeT::NonnegativeConeT(row - 1)];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-10)
        .tol_gap_rel(1e-10)
        .build()
        .map_err(|e| ClearError::Solver(e.to_string()))?;
    let mut solver =
        DefaultSolver::new(&p_mat, &q, &a_mat, &b, &cones, settings).map_err(|e| ClearError::Solver(e.to_string()))?;
    solver.solve();
    let sol = &solver.solution;
    match sol.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => {
            return Err(ClearError::Infeasible(format!("{:?}", sol.status)))
        }
        s => return Err(ClearError::Solver(format!("{s:?}"))),
    }
    let x = &sol.x;
    let clamp = |v: f64, (lo, hi): (f64, f64)| v.clamp(lo, hi);
    let buyer_totals: Vec<f64> = (0..mm).map(|i| clamp(x[i], bounds[i])).collect();
    let seller_totals: Vec<f64> = (0..nn).map(|j| clamp(x[mm + j], bounds[mm + j])).collect();
    // Clarabel's dual of A x + s = b: stationarity P x + q + Aᵀ z = 0.
    // For a buyer: a t − b + z₀ − Σ_r G_rk z_r = 0 ⇒ U'(t) = z₀ − Σ G z.
    let z = &sol.z;
    let z0 = z[0];
    let zn = &z[first_net_row..];
    let bus_prices =
        (0..net.bus_ids.len()).map(|k| z0 - net.g.iter().zip(zn).map(|(g, zr)| g[k] * zr).sum::<f64>()).collect();
    let scale = zn.iter().fold(z0.abs(), |m, v| m.max(v.abs())).max(1e-12);
    let binding = zn.iter().enumerate().filter(|(_, v)| **v > 1e-6 * scale).map(|(r, _)| r).collect();
    // the answer is checked against every row the solver was given, with
    // the rows' own tolerance (the test `clearing::clear` applies)
    let inj = net.injections(&bm, &bn, &buyer_totals, &seller_totals);
    for (r, (g, h)) in net.g.iter().zip(&net.h).enumerate() {
        let kept = crate::mutants::active(crate::mutants::Mutation::NegligibleRowsKeptByReference);
        if !kept && crate::primal_dual::negligible_row(g, *h, &bm, &bn) {
            continue;
        }
        let beyond = g.iter().zip(&inj).map(|(a, p)| a * p).sum::<f64>() - h;
        // a NaN row value is a break too
        let holds = beyond <= crate::network::ROW_TOL_ABS_KW + crate::network::ROW_TOL_REL * h.abs();
        if !holds {
            return Err(ClearError::RowBroken { row: net.labels[r].clone(), kw_beyond: beyond });
        }
    }
    let welfare = market.buyers.iter().zip(&buyer_totals).map(|(p, e)| p.welfare(*e)).sum::<f64>()
        + market.sellers.iter().zip(&seller_totals).map(|(p, e)| p.welfare(*e)).sum::<f64>();
    Ok(CentralSolution { welfare, buyer_totals, seller_totals, bus_prices, binding, iterations: sol.iterations })
}
