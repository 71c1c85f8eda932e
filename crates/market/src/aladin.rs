//! ALADIN (Houska, Frasch & Diehl 2016) for the network-constrained market
//! (Eqs 6.5–6.7), as sans-IO iteration steps.
//!
//! Blocks: one per prosumer (its bilateral trade copies `e_ℓ`, Eq 6.5a) and
//! one grid block (the market's bus injections `P^b`, kW, under the network
//! rows `G P^b ≤ h`: LinDistFlow Eqs 6.3a–d or PTDF Eq 6.2, see
//! [`MarketNetwork`]). Coupling `A u = 0`: reciprocity `x_mn − y_mn = 0`
//! (dual `λ^eq_mn`) and bus balance `P^in_k − P^b_k = 0` (dual `λ^b_k`), with
//! `P^in_k = Σ_{sellers at k} Σ_m y_mn − Σ_{buyers at k} Σ_n x_mn`.
//!
//! One iteration:
//!
//! 1. **Step 1 (parallel, Eqs 6.5b, 6.6).** Prosumer `ℓ`:
//!    `u_ℓ = argmin f_ℓ(e) + (A_ℓᵀλ)ᵀe + ρ/2 ‖e − z_ℓ‖²` over its bounds
//!    (6.4a/b), solved exactly: with `β_k = ρ z_k − (A_ℓᵀλ)_k` the solution
//!    is `e_k = max(0, (β_k − c)/ρ)` and the marginal `c` is found on the
//!    sorted breakpoints (no iterative solver). It reports `u_ℓ`, the
//!    gradient `g_ℓ = ∇f_ℓ(u_ℓ)` and its active bounds. Grid block:
//!    `P^b = argmin −λ^bᵀP + ρ/2 ‖P − z^b‖²` s.t. `G P ≤ h` (Clarabel), with
//!    `g^b = 0` and its active rows.
//! 2. **Step 2 (coordinator, Eq 6.7).** The QP
//!    `min Σ ½ Δᵀ(H_ℓ + δI)Δ + g_ℓᵀΔ + λᵀs + (μ/2)‖s‖²`
//!    s.t. `A(u + Δ) = s`, the active bounds one-sided (`C_ℓ Δ ≤ 0`, see
//!    below), every network row `G (P^b + ΔP) ≤ h` as an inequality, with the exact
//!    Hessians `H_ℓ = a_ℓ 𝟙𝟙ᵀ` (the grid block's is 0), a small proximal
//!    `δ` (the welfare does not see trades that keep every total, so the
//!    bare Hessian is singular on them) and the slack `s` of the original
//!    method (keeps the QP solvable when the active sets disagree). Then
//!    `z ← u + Δ` and `λ ← ` the QP's coupling multipliers.
//!
//! Stopping rule, per prosumer: every trade's coupling residual
//! `|x − y|` and step `|Δ|` within the tighter of its two parties' own
//! tolerances, `10⁻⁴ e_max` (a tenth of the seed's `10⁻³`, relative to the
//! prosumer's own request) but at least 1 Wh ([`prosumer_tol`]); every
//! bus's grid residual and step within the tightest tolerance of the
//! prosumers it hosts (1 Wh where none); *and* the settled trades primal
//! feasible ([`Aladin::feasible`]: each prosumer's total within its own
//! bounds to `1 Wh + 10⁻⁴ e_max`, each network row within
//! `1 mW + 10⁻⁴ |h_r|`). Relative because a feeder market with 400 kWh
//! requests otherwise iterates for hundreds of rounds on residuals of
//! 10⁻² kWh after the welfare has settled to 10⁻⁵. Per prosumer, not one
//! scale for the market: the largest request (round 1: one seller offering
//! 10⁶ kWh loosened everybody's tolerance to 100 kWh) and then the median
//! request (round 2: eight sybil sellers owned the median, and ALADIN
//! stopped "converged" with every honest buyer at 0 kWh; the upper median
//! of a 1×1 market was the large seller itself) both let one party loosen
//! the test of the others' trades. Now a large request only loosens its
//! own. The feasibility check stays because a small residual can still
//! overload a line allotted a few W, or leave a buyer short of its `e_min`.
//!
//! Active sets: the bounds a prosumer's step 1 found active enter the
//! coordinator as one-sided rows at the active point — a zero trade may
//! grow (`Δ ≥ 0`), a total on `e_max` may fall (`σ ≤ 0`), one on a
//! positive `e_min` may rise — not as equalities `C_ℓ Δ = 0`. Equalities
//! froze whatever the prosumers reported, and their reports can contradict
//! each other: on case33bw 4×4 seed 19, every buyer's and every seller's
//! step put its total on `e_max` although the two sides' maxima differ, so
//! the QP was feasible only through its slack; the coupling multipliers
//! `λ + μ s` jumped by tens of $/kWh and the iterates cycled with the
//! residual stuck at 3.64 kWh (1 in 9 seeded 4×4 markets). The one-sided
//! rows are the bounds themselves at the active points, so the central
//! optimum always gives a feasible `u + Δ` with zero slack; 200 of 200
//! seeded 4×4 case33bw markets now clear (3–7 iterations), and so do the
//! congested case30 4×4 markets that cycled before (4 of seeds 0..40).
//! `warmup` (iterations before zero bounds enter at all) was needed while
//! they were equalities — from the all-zero start they froze every seller
//! at zero — and now defaults to 0.
//!
//! Network rows in the coordinator: all of them, as inequalities, rather
//! than the grid block's active rows pinned as `G ΔP = 0`. The grid block's
//! Hessian is zero, so with the equalities alone the QP moved `P^b` freely
//! along the rows the grid step had not found active; on the meshed case30
//! with several binding lines the iterates cycled (gap to the optimum
//! ≈ 100 % after 60 iterations). With the inequalities the seeded congested
//! case30 markets converge in 4–6 iterations within 0.1 % of the Clarabel
//! optimum (`tests/aladin_ptdf.rs`), and case33bw in 5–6 iterations
//! (12×12 to 100×100, with the one-sided bound rows; the experiment
//! `market-fig-6-6`), within 10⁻⁴ with a binding voltage limit. The
//! QP has one inequality per network row more (a conic solve either way).

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};
use serde::Serialize;

use crate::network::MarketNetwork;
use crate::problem::{Market, MarketError, Prosumer, Side};

/// Tuning of ALADIN.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AladinParams {
    /// Proximal weight of the local problems, $/kWh².
    pub rho: f64,
    /// Proximal regularisation of the coordinator's Hessian.
    pub delta: f64,
    /// Slack penalty of the coordinator QP.
    pub mu: f64,
    pub tol: f64,
    pub max_iter: usize,
    /// Iterations before the zero bounds `e_k ≥ 0` enter the coordinator
    /// (see the module docs; 0 by default).
    pub warmup: usize,
}

impl Default for AladinParams {
    fn default() -> Self {
        // 1e-4 relative: with the seed's 1e-3 a 1×1 market stopped after 3
        // iterations 0.25 % below the optimum; one more iteration reaches it
        AladinParams { rho: 0.05, delta: 1e-4, mu: 100.0, tol: 1e-4, max_iter: 200, warmup: 0 }
    }
}

/// What one prosumer's step-1 solve reports to the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalResult {
    /// New local trades `u_ℓ`, kWh.
    pub u: Vec<f64>,
    /// `∇f_ℓ(u_ℓ)` (every entry the same: the marginal of the total).
    pub grad: f64,
    /// Trades held at zero by the bound `e ≥ 0`.
    pub zero: Vec<bool>,
    /// The total sits on `e_max` (+1), on a positive `e_min` (−1) or neither (0).
    pub total_bound: i8,
}

/// `f_ℓ(S) = lin·S + ½ a S²`: minus the utility (buyers) or the cost (sellers).
fn local_coefficients(p: &Prosumer) -> f64 {
    match p.side {
        Side::Buyer => -p.b,
        Side::Seller => p.b,
    }
}

/// Step 1 for a prosumer: `argmin f(Σe) + wᵀe + ρ/2 ‖e − z‖²` over
/// `e ≥ 0, e_min ≤ Σe ≤ e_max`, exactly (sans-IO).
pub fn local_step(p: &Prosumer, w: &[f64], z: &[f64], rho: f64) -> LocalResult {
    let lin = local_coefficients(p);
    let n = z.len();
    let mut beta: Vec<f64> = (0..n).map(|k| rho * z[k] - w[k]).collect();
    let mut sorted = beta.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // S(c) = Σ max(0, β_k − c)/ρ, decreasing in c
    let total_at = |c: f64| beta.iter().map(|b| (b - c).max(0.0)).sum::<f64>() / rho;
    // unconstrained marginal: c = lin + a S(c)
    let mut c0 = lin; // j = 0 active: S = 0
    if sorted.first().is_some_and(|b0| *b0 > lin) {
        let mut acc = 0.0;
        for j in 1..=n {
            acc += sorted[j - 1];
            let c = (lin + p.a * acc / rho) / (1.0 + p.a * j as f64 / rho);
            let lo = sorted.get(j).copied().unwrap_or(f64::NEG_INFINITY);
            if c >= lo && c <= sorted[j - 1] {
                c0 = c;
                break;
            }
        }
    }
    let s0 = total_at(c0);
    // the c giving total `target` (> 0)
    let c_for = |target: f64| -> f64 {
        let mut acc = 0.0;
        for j in 1..=n {
            acc += sorted[j - 1];
            let c = (acc - rho * target) / j as f64;
            let lo = sorted.get(j).copied().unwrap_or(f64::NEG_INFINITY);
            if c >= lo && c < sorted[j - 1] {
                return c;
            }
        }
        sorted.last().copied().unwrap_or(0.0) - rho * target
    };
    let (c, total_bound) = if s0 > p.e_max {
        (c_for(p.e_max), 1)
    } else if s0 < p.e_min {
        (c_for(p.e_min), -1)
    } else {
        (c0, 0)
    };
    for b in beta.iter_mut() {
        *b = ((*b - c) / rho).max(0.0);
    }
    let s: f64 = beta.iter().sum();
    let zero = beta.iter().map(|v| *v <= 0.0).collect();
    LocalResult { grad: lin + p.a * s, u: beta, zero, total_bound }
}

/// State of the ALADIN iteration.
#[derive(Debug, Clone)]
pub struct Aladin {
    pub params: AladinParams,
    pub buyers: usize,
    pub sellers: usize,
    /// Coordinator's trade iterates: buyers' `z^x[m·N+n]`, sellers' `z^y[m·N+n]`.
    pub zx: Vec<f64>,
    pub zy: Vec<f64>,
    /// Coordinator's bus injections `z^b`, kW.
    pub zb: Vec<f64>,
    /// Reciprocity duals `λ^eq[m·N+n]` and bus duals `λ^b`, $/kWh.
    pub lam_eq: Vec<f64>,
    pub lam_b: Vec<f64>,
    /// Last step-1 trades (buyers' and sellers' copies).
    pub ux: Vec<f64>,
    pub uy: Vec<f64>,
    pub iterations: usize,
    bm: Vec<usize>,
    bn: Vec<usize>,
}

/// What one iteration changed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AladinReport {
    /// Coupling residual of the step-1 results, `‖A u‖_∞`.
    pub residual: f64,
    /// Largest coordinator step `‖Δ‖_∞`.
    pub step: f64,
    pub converged: bool,
}

/// Why an ALADIN step failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AladinError {
    #[error("the grid block's QP failed: {0}")]
    Grid(String),
    #[error("the coordinator QP failed: {0}")]
    Coordinator(String),
}

/// The coordinator's proximal weight on a prosumer's trades:
/// `δ · min(1, E₀ / e_max)` with `E₀` = [`crate::primal_dual::SCALE_KWH`].
/// The QP moves a prosumer's total by about `margin / (a + δ)` per
/// iteration, and `δ` only regularises the directions the welfare does
/// not see; scaled to the prosumer's own range, a near-linear pair with
/// 10 MWh each 1 c/kWh apart no longer needs ~10⁴ iterations, while every
/// prosumer within `E₀` keeps the common `δ`.
pub fn delta_for(delta: f64, p: &Prosumer) -> f64 {
    let e0 = crate::primal_dual::SCALE_KWH;
    if p.e_max > e0 {
        delta * (e0 / p.e_max)
    } else {
        delta
    }
}

/// Absolute floor of every prosumer's stopping tolerance, kWh (1 Wh).
pub const STOP_FLOOR_KWH: f64 = 1e-3;

/// A prosumer's own stopping tolerance, kWh: `tol · e_max`, at least
/// [`STOP_FLOOR_KWH`]. Per prosumer, not a statistic over requests: one
/// party can file as many requests as it likes (the median of round 2 was
/// owned by eight sybil sellers offering 10⁶ kWh), but it only loosens the
/// test of its own trades.
pub fn prosumer_tol(tol: f64, p: &Prosumer) -> f64 {
    (tol * p.e_max).max(STOP_FLOOR_KWH)
}

fn qp_settings() -> clarabel::solver::DefaultSettings<f64> {
    DefaultSettingsBuilder::default().verbose(false).tol_gap_abs(1e-9).tol_gap_rel(1e-9).build().unwrap_or_default()
}

/// The grid block's step 1 (Eq 6.6): `argmin −λᵀP + ρ/2 ‖P − z‖²` s.t.
/// `G P ≤ h`; returns `P` and the rows that are active.
pub fn grid_step(
    net: &MarketNetwork,
    lam_b: &[f64],
    zb: &[f64],
    rho: f64,
) -> Result<(Vec<f64>, Vec<usize>), AladinError> {
    let k = zb.len();
    let p_mat = CscMatrix::new_from_triplets(k, k, (0..k).collect(), (0..k).collect(), vec![rho; k]);
    let q: Vec<f64> = (0..k).map(|i| -lam_b[i] - rho * zb[i]).collect();
    let (mut ai, mut aj, mut av) = (Vec::new(), Vec::new(), Vec::new());
    for (r, row) in net.g.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if *v != 0.0 {
                ai.push(r);
                aj.push(j);
                av.push(*v);
            }
        }
    }
    let rows = net.h.len();
    // the market is balanced (no net import through the substation or the
    // reference bus): Σ P = 0, the projection of the unconstrained target
    let mut target: Vec<f64> = (0..k).map(|i| zb[i] + lam_b[i] / rho).collect();
    let mean = target.iter().sum::<f64>() / k.max(1) as f64;
    target.iter_mut().for_each(|v| *v -= mean);
    if rows == 0 || net.violation(&target) <= 0.0 {
        return Ok((target, Vec::new()));
    }
    for j in 0..k {
        ai.push(rows);
        aj.push(j);
        av.push(1.0);
    }
    let a_mat = CscMatrix::new_from_triplets(rows + 1, k, ai, aj, av);
    let mut h = net.h.clone();
    h.push(0.0);
    let cones = [SupportedConeT::NonnegativeConeT(rows), SupportedConeT::ZeroConeT(1)];
    let mut solver = DefaultSolver::new(&p_mat, &q, &a_mat, &h, &cones, qp_settings())
        .map_err(|e| AladinError::Grid(e.to_string()))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        s => return Err(AladinError::Grid(format!("{s:?}"))),
    }
    let p = solver.solution.x.clone();
    let z = &solver.solution.z;
    let zmax = z.iter().fold(0.0f64, |m, v| m.max(*v)).max(1e-12);
    let active = (0..rows).filter(|r| z[*r] > 1e-7 * zmax.max(1e-3)).collect();
    Ok((p, active))
}

impl Aladin {
    pub fn new(market: &Market, net: &MarketNetwork, params: AladinParams) -> Result<Aladin, MarketError> {
        let (bm, bn) = net.placement(market)?;
        let (m, n) = (market.buyers.len(), market.sellers.len());
        let k = net.bus_ids.len();
        Ok(Aladin {
            params,
            buyers: m,
            sellers: n,
            zx: vec![0.0; m * n],
            zy: vec![0.0; m * n],
            zb: vec![0.0; k],
            lam_eq: vec![0.0; m * n],
            lam_b: vec![0.0; k],
            ux: vec![0.0; m * n],
            uy: vec![0.0; m * n],
            iterations: 0,
            bm,
            bn,
        })
    }

    /// The trades that settle `[m][n]`: the smaller of the two step-1 copies.
    pub fn settled(&self) -> Vec<Vec<f64>> {
        let n = self.sellers;
        (0..self.buyers).map(|m| (0..n).map(|j| self.ux[m * n + j].min(self.uy[m * n + j])).collect()).collect()
    }

    /// Bilateral prices `[m][n]`: the reciprocity duals (what the buyer pays
    /// the seller per kWh, before the network's share).
    pub fn trade_prices(&self) -> Vec<Vec<f64>> {
        let n = self.sellers;
        // the seller's step minimises its cost + wᵀe with w = λ^b(bus n) − λ^eq,
        // so at its optimum its marginal cost is −w: it receives
        // λ^eq − λ^b(bus n) per kWh (the sign was flipped before, and every
        // ALADIN price came out negative; the settlement exposed it)
        (0..self.buyers).map(|m| (0..n).map(|j| self.lam_eq[m * n + j] - self.lam_b[self.bn[j]]).collect()).collect()
    }

    /// Nodal prices of each trade `[m][n]`: `(buyer's, seller's)`, $/kWh.
    /// The buyer's step minimises `−U + wᵀe` with `w = λ^eq − λ^b(bus m)`,
    /// so at its optimum its marginal utility is `λ^eq_mn − λ^b(bus m)`:
    /// that is its bus price; the seller's is [`Aladin::trade_prices`]'s
    /// `λ^eq_mn − λ^b(bus n)` ([`crate::clearing`]'s settlement).
    pub fn nodal_trade_prices(&self) -> Vec<Vec<(f64, f64)>> {
        let n = self.sellers;
        (0..self.buyers)
            .map(|m| {
                (0..n)
                    .map(|j| {
                        let l = self.lam_eq[m * n + j];
                        (l - self.lam_b[self.bm[m]], l - self.lam_b[self.bn[j]])
                    })
                    .collect()
            })
            .collect()
    }

    /// One iteration (step 1 for every block, then the coordinator).
    pub fn step(&mut self, market: &Market, net: &MarketNetwork) -> Result<AladinReport, AladinError> {
        let (mm, nn) = (self.buyers, self.sellers);
        let k = self.zb.len();
        let rho = self.params.rho;
        // ---- step 1: prosumers
        let mut buyer_res = Vec::with_capacity(mm);
        let mut w = vec![0.0; nn.max(mm)];
        let mut zl = vec![0.0; nn.max(mm)];
        for m in 0..mm {
            for j in 0..nn {
                w[j] = self.lam_eq[m * nn + j] - self.lam_b[self.bm[m]];
                zl[j] = self.zx[m * nn + j];
            }
            let r = local_step(&market.buyers[m], &w[..nn], &zl[..nn], rho);
            self.ux[m * nn..(m + 1) * nn].copy_from_slice(&r.u);
            buyer_res.push(r);
        }
        let mut seller_res = Vec::with_capacity(nn);
        for j in 0..nn {
            for m in 0..mm {
                w[m] = -self.lam_eq[m * nn + j] + self.lam_b[self.bn[j]];
                zl[m] = self.zy[m * nn + j];
            }
            let r = local_step(&market.sellers[j], &w[..mm], &zl[..mm], rho);
            for m in 0..mm {
                self.uy[m * nn + j] = r.u[m];
            }
            seller_res.push(r);
        }
        // grid block
        let (pb, _active_rows) = grid_step(net, &self.lam_b, &self.zb, rho)?;
        // coupling residual of u
        let mut residual = 0.0f64;
        for i in 0..mm * nn {
            residual = residual.max((self.ux[i] - self.uy[i]).abs());
        }
        let mut pin = vec![0.0; k];
        for m in 0..mm {
            pin[self.bm[m]] -= buyer_res[m].u.iter().sum::<f64>();
        }
        for j in 0..nn {
            pin[self.bn[j]] += seller_res[j].u.iter().sum::<f64>();
        }
        for i in 0..k {
            residual = residual.max((pin[i] - pb[i]).abs());
        }
        // ---- step 2: coordinator QP
        let d = self.coordinate(market, net, &buyer_res, &seller_res, &pb, &pin)?;
        let mut step = 0.0f64;
        let nx = mm * nn;
        // the stopping test, per prosumer: each trade's coupling residual
        // and step within the tighter of its two parties' own tolerances,
        // each bus's within the tightest of the prosumers it hosts (1 Wh
        // where it hosts none)
        let tb: Vec<f64> = market.buyers.iter().map(|p| prosumer_tol(self.params.tol, p)).collect();
        let ts: Vec<f64> = market.sellers.iter().map(|p| prosumer_tol(self.params.tol, p)).collect();
        let mut bus_tol = vec![f64::INFINITY; k];
        for m in 0..mm {
            bus_tol[self.bm[m]] = bus_tol[self.bm[m]].min(tb[m]);
        }
        for j in 0..nn {
            bus_tol[self.bn[j]] = bus_tol[self.bn[j]].min(ts[j]);
        }
        let mut within = true;
        for i in 0..nx {
            self.zx[i] = self.ux[i] + d[i];
            self.zy[i] = self.uy[i] + d[nx + i];
            step = step.max(d[i].abs()).max(d[nx + i].abs());
            let t = tb[i / nn.max(1)].min(ts[i % nn.max(1)]);
            within &= (self.ux[i] - self.uy[i]).abs() <= t && d[i].abs() <= t && d[nx + i].abs() <= t;
        }
        for i in 0..k {
            self.zb[i] = pb[i] + d[2 * nx + i];
            step = step.max(d[2 * nx + i].abs());
            let t = if bus_tol[i].is_finite() { bus_tol[i] } else { STOP_FLOOR_KWH };
            within &= (pin[i] - pb[i]).abs() <= t && d[2 * nx + i].abs() <= t;
        }
        self.iterations += 1;
        let converged = within && self.feasible(market, net);
        Ok(AladinReport { residual, step, converged })
    }

    /// Whether the settled trades are primal feasible within the stated
    /// tolerances: every prosumer's total within its own bounds
    /// ([`Market::bound_excess`]) and every network row within its own limit
    /// ([`MarketNetwork::row_excess`]); balance holds by construction (each
    /// settled trade is one bilateral quantity).
    pub fn feasible(&self, market: &Market, net: &MarketNetwork) -> bool {
        let settled = self.settled();
        if market.bound_excess(&settled).is_some() {
            return false;
        }
        let (t, s) = crate::primal_dual::PrimalDual::totals(&settled);
        net.row_excess(&net.injections(&self.bm, &self.bn, &t, &s)).is_none()
    }

    /// Solves the coordinator QP; returns `Δ = [Δx, Δy, ΔP]` and stores the new duals.
    #[allow(clippy::too_many_arguments)]
    fn coordinate(
        &mut self,
        market: &Market,
        net: &MarketNetwork,
        buyer_res: &[LocalResult],
        seller_res: &[LocalResult],
        pb: &[f64],
        pin: &[f64],
    ) -> Result<Vec<f64>, AladinError> {
        let (mm, nn) = (self.buyers, self.sellers);
        let k = pb.len();
        let nx = mm * nn;
        let prm = self.params;
        let zero_active = self.iterations >= prm.warmup;
        // variables: Δx (nx), Δy (nx), ΔP (k), σ_m (mm), σ_n (nn), s_eq (nx), s_b (k)
        let off_p = 2 * nx;
        let off_sig_b = off_p + k;
        let off_sig_s = off_sig_b + mm;
        let off_seq = off_sig_s + nn;
        let off_sb = off_seq + nx;
        let nv = off_sb + k;
        let mut pd = vec![prm.delta; nv];
        // each prosumer's trades take the proximal weight of its own scale
        // (`delta_for`): a near-linear 10 MWh pair's step is otherwise
        // bounded by its margin / δ per iteration
        for m in 0..mm {
            let dm = delta_for(prm.delta, &market.buyers[m]);
            pd[m * nn..(m + 1) * nn].iter_mut().for_each(|v| *v = dm);
        }
        for j in 0..nn {
            let dj = delta_for(prm.delta, &market.sellers[j]);
            for m in 0..mm {
                pd[nx + m * nn + j] = dj;
            }
        }
        // and each bus's injection the weight of the largest prosumer it
        // hosts (its injection moves with that prosumer's total)
        for (m, p) in market.buyers.iter().enumerate() {
            let v = &mut pd[off_p + self.bm[m]];
            *v = v.min(delta_for(prm.delta, p));
        }
        for (j, p) in market.sellers.iter().enumerate() {
            let v = &mut pd[off_p + self.bn[j]];
            *v = v.min(delta_for(prm.delta, p));
        }
        let mut q = vec![0.0; nv];
        for m in 0..mm {
            // ½ a σ² with σ = Σ_n Δx_mn: the exact Hessian a 𝟙𝟙ᵀ, kept sparse
            pd[off_sig_b + m] = market.buyers[m].a;
            for j in 0..nn {
                q[m * nn + j] = buyer_res[m].grad;
            }
        }
        for j in 0..nn {
            pd[off_sig_s + j] = market.sellers[j].a;
            for m in 0..mm {
                q[nx + m * nn + j] = seller_res[j].grad;
            }
        }
        for i in 0..nx {
            pd[off_seq + i] = prm.mu;
            q[off_seq + i] = self.lam_eq[i];
        }
        for i in 0..k {
            pd[off_sb + i] = prm.mu;
            q[off_sb + i] = self.lam_b[i];
        }
        let p_mat = CscMatrix::new_from_triplets(nv, nv, (0..nv).collect(), (0..nv).collect(), pd);
        let (mut ai, mut aj, mut av, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut row = 0;
        // coupling: reciprocity  (x + Δx) − (y + Δy) − s_eq = 0
        for i in 0..nx {
            ai.extend([row, row, row]);
            aj.extend([i, nx + i, off_seq + i]);
            av.extend([1.0, -1.0, -1.0]);
            b.push(self.uy[i] - self.ux[i]);
            row += 1;
        }
        // coupling: bus balance  P^in(u + Δ) − (P^b + ΔP) − s_b = 0, with
        // P^in = Σ σ-sums: −Σ_{m at k} σ_m + Σ_{n at k} σ_n
        for bus in 0..k {
            for m in (0..mm).filter(|m| self.bm[*m] == bus) {
                ai.push(row);
                aj.push(off_sig_b + m);
                av.push(-1.0);
            }
            for j in (0..nn).filter(|j| self.bn[*j] == bus) {
                ai.push(row);
                aj.push(off_sig_s + j);
                av.push(1.0);
            }
            ai.extend([row, row]);
            aj.extend([off_p + bus, off_sb + bus]);
            av.extend([-1.0, -1.0]);
            b.push(pb[bus] - pin[bus]);
            row += 1;
        }
        let coupling_rows = row;
        // definitions σ_m = Σ_n Δx_mn, σ_n = Σ_m Δy_mn
        for m in 0..mm {
            for j in 0..nn {
                ai.push(row);
                aj.push(m * nn + j);
                av.push(1.0);
            }
            ai.push(row);
            aj.push(off_sig_b + m);
            av.push(-1.0);
            b.push(0.0);
            row += 1;
        }
        for j in 0..nn {
            for m in 0..mm {
                ai.push(row);
                aj.push(nx + m * nn + j);
                av.push(1.0);
            }
            ai.push(row);
            aj.push(off_sig_s + j);
            av.push(-1.0);
            b.push(0.0);
            row += 1;
        }
        // the grid block's balance Σ P = 0 always holds: 𝟙ᵀΔP = 0
        for c in 0..k {
            ai.push(row);
            aj.push(off_p + c);
            av.push(1.0);
        }
        b.push(0.0);
        row += 1;
        let eq_rows = row;
        // active local bounds as one-sided rows `sign·Δ_col ≤ 0`: a zero
        // trade may grow but not go negative, a total on `e_max` may fall
        // but not rise, one on a positive `e_min` may rise but not fall.
        // (Pinned as equalities `Δ_col = 0`, the active sets the prosumers
        // reported could contradict each other — every buyer's and every
        // seller's total "on e_max" while the two sides' maxima differ — and
        // the QP was infeasible but for the slack; its multipliers
        // `λ + μ s` then jumped by tens of $/kWh and the iterates cycled,
        // seen on case33bw 4×4 seed 19. One-sided rows are the bounds
        // themselves at the active points, so the central optimum is always
        // a feasible `u + Δ` with zero slack.)
        let mut bound = |col: usize, sign: f64, row: &mut usize| {
            ai.push(*row);
            aj.push(col);
            av.push(sign);
            b.push(0.0);
            *row += 1;
        };
        for m in 0..mm {
            for j in 0..nn {
                if zero_active && buyer_res[m].zero[j] {
                    bound(m * nn + j, -1.0, &mut row);
                }
            }
            if buyer_res[m].total_bound != 0 {
                bound(off_sig_b + m, f64::from(buyer_res[m].total_bound), &mut row);
            }
        }
        for j in 0..nn {
            for m in 0..mm {
                if zero_active && seller_res[j].zero[m] {
                    bound(nx + m * nn + j, -1.0, &mut row);
                }
            }
            if seller_res[j].total_bound != 0 {
                bound(off_sig_s + j, f64::from(seller_res[j].total_bound), &mut row);
            }
        }
        // every network row as an inequality, G (P^b + ΔP) ≤ h (not only the
        // grid block's active rows pinned as G ΔP = 0): the grid block's
        // Hessian is zero, so with equalities alone the QP moved P^b freely
        // along the rows the grid step had not yet found active, and on
        // meshed PTDF markets with several binding lines the iterates cycled
        for (r, g_row) in net.g.iter().enumerate() {
            let mut lhs = 0.0;
            for (c, v) in g_row.iter().enumerate() {
                if *v != 0.0 {
                    ai.push(row);
                    aj.push(off_p + c);
                    av.push(*v);
                    lhs += v * pb[c];
                }
            }
            // slack for rounding: the grid step's P^b is feasible to the
            // solver's tolerance only
            b.push((net.h[r] - lhs).max(0.0));
            row += 1;
        }
        let a_mat = CscMatrix::new_from_triplets(row, nv, ai, aj, av);
        let cones = [SupportedConeT::ZeroConeT(eq_rows), SupportedConeT::NonnegativeConeT(row - eq_rows)];
        let mut solver = DefaultSolver::new(&p_mat, &q, &a_mat, &b, &cones, qp_settings())
            .map_err(|e| AladinError::Coordinator(e.to_string()))?;
        solver.solve();
        match solver.solution.status {
            SolverStatus::Solved | SolverStatus::AlmostSolved => {}
            s => return Err(AladinError::Coordinator(format!("{s:?}"))),
        }
        let z = &solver.solution.z;
        self.lam_eq.copy_from_slice(&z[..nx]);
        self.lam_b.copy_from_slice(&z[nx..coupling_rows]);
        Ok(solver.solution.x[..off_p + k].to_vec())
    }

    /// Iterates until converged or `max_iter`; returns the iteration count.
    pub fn run(&mut self, market: &Market, net: &MarketNetwork) -> Option<usize> {
        self.try_run(market, net).ok().flatten()
    }

    /// As [`Aladin::run`], keeping why a step failed: `Ok(Some(k))` when
    /// it converged in `k` iterations, `Ok(None)` at the cap, `Err` with
    /// the failing step's reason (what [`crate::clearing::clear_with`]
    /// reports as [`crate::clearing::ClearingError::AladinFailed`]).
    pub fn try_run(&mut self, market: &Market, net: &MarketNetwork) -> Result<Option<usize>, AladinError> {
        while self.iterations < self.params.max_iter {
            if self.step(market, net)?.converged {
                return Ok(Some(self.iterations));
            }
        }
        Ok(None)
    }
}
