//! The market's view of a network: linear limits on the market's net bus
//! injections, `G p ≤ h`.
//!
//! `p_k` is the market's net injection at bus `k` in kW (sellers' totals
//! minus buyers' totals placed there; a trade of `e` kWh over the one-hour
//! interval is `e` kW). Both network models of the seed reduce to such rows
//! because every prosumer injects active power only:
//!
//! - **PTDF** (meshed, Eq 6.2): `±Σ_k PTDF_lk p_k ≤ F_l^max`. The market's
//!   flows are its *incremental* flows; the limit is the line's rating
//!   `rate_a × limit_scale`, i.e. the share of each line the operator allots
//!   to the market for the interval (the seed is silent; this is the dynamic
//!   operating envelope reading of §6.3.3). Unrated lines give no row, and
//!   the DC model has no voltages: a meshed case is cleared under its line
//!   ratings only. [`crate::clearing::network_for`] refuses a meshed case
//!   with no rated line ([`NetworkError::NoRatedLines`]) rather than clear
//!   it with no network constraint at all (a feeder with a tie switch
//!   closed is meshed, unrated, and bound by its voltage limits).
//! - **LinDistFlow** (radial, Eqs 6.3a–d): the case's loads are the
//!   background; `v = v_base + 2 R p / (1000 · baseMVA)` with
//!   `(V^min)² ≤ v ≤ (V^max)²` (6.3d), and for rated lines, with `Q_ij` fixed
//!   by the loads (the market moves no reactive power), `P_ij² + Q_ij² ≤ S²`
//!   (6.3c) is exactly `|P_ij| ≤ √(S² − Q_ij²)`, linear in `p`.

use std::sync::Arc;

use serde::Serialize;

use crate::case::Case;
use crate::dc::DcModel;
use crate::distflow::DistFlow;
use crate::feeder_ac::FeederAc;
use crate::problem::{Market, MarketError};

/// Absolute part of the network rows' feasibility tolerance, kW (1 mW: the
/// rows of a tightly allotted line can be a few W, so not the 1 Wh of the
/// bounds).
pub const ROW_TOL_ABS_KW: f64 = 1e-6;
/// Relative part, of the row's own limit `|h_r|`.
pub const ROW_TOL_REL: f64 = 1e-4;

/// Linear limits `G p ≤ h` on the market's bus injections (kW).
#[derive(Debug, Clone, Serialize)]
pub struct MarketNetwork {
    /// Which model the rows come from.
    pub model: &'static str,
    /// Bus ids, in model order.
    pub bus_ids: Vec<u32>,
    /// `g[r][k]`: coefficient of bus `k`'s injection in row `r`.
    pub g: Vec<Vec<f64>>,
    /// Right-hand sides.
    pub h: Vec<f64>,
    /// What each row limits (for reports).
    pub labels: Vec<String>,
    /// A feeder's AC check and loss allowance ([`crate::feeder_ac`]): set
    /// by [`MarketNetwork::distflow`] and kept by [`crate::clearing::clear`]
    /// on the rows it shifts; `None` for the other models.
    #[serde(skip)]
    pub feeder: Option<Arc<FeederAc>>,
}

/// Why a network's market rows could not be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NetworkError {
    #[error("limit scale {0} must be a finite positive number")]
    BadScale(f64),
    #[error("the case's own loads already violate {0} (no market dispatch is feasible)")]
    BaseInfeasible(String),
    #[error(
        "the case is meshed and none of its in-service lines has a rating (rate_a): its PTDF model would \
         constrain nothing, and its bus voltage limits are not modelled on a meshed network; rate the lines, or \
         open a tie switch so that the feeder is radial (LinDistFlow keeps its voltage limits)"
    )]
    NoRatedLines,
}

impl MarketNetwork {
    /// No network constraints on the given buses.
    pub fn unconstrained(bus_ids: Vec<u32>) -> MarketNetwork {
        MarketNetwork { model: "none", bus_ids, g: Vec::new(), h: Vec::new(), labels: Vec::new(), feeder: None }
    }

    /// Refuses a PTDF model with no row ([`NetworkError::NoRatedLines`]):
    /// a meshed case none of whose lines is rated, whose market would
    /// otherwise clear with no network constraint at all and its voltage
    /// limits dropped without a word (case33bw with a tie switch closed:
    /// 1 111 kWh to the far end instead of LinDistFlow's 210, the AC voltage
    /// there 0.869 p.u. against its 0.90 limit). Called by
    /// [`crate::clearing::clear`] and by `gridledger market clear` before
    /// the framework; an explicitly [`MarketNetwork::unconstrained`] network
    /// (model `"none"`) passes.
    pub fn check_constrained(&self) -> Result<(), NetworkError> {
        if self.model == "ptdf" && self.g.is_empty() {
            return Err(NetworkError::NoRatedLines);
        }
        Ok(())
    }

    /// PTDF line limits (Eq 6.2) with ratings scaled by `limit_scale`.
    /// Copies the model's rated rows; [`MarketNetwork::ptdf_from`] moves them.
    pub fn ptdf(dc: &DcModel, limit_scale: f64) -> Result<MarketNetwork, NetworkError> {
        MarketNetwork::ptdf_rows(dc, dc.ptdf.iter().cloned(), limit_scale)
    }

    /// [`MarketNetwork::ptdf`] taking the model: each rated PTDF row is moved
    /// into the forward row, and only the reverse row is a new allocation
    /// (the model's matrix is not held twice alongside the rows).
    pub fn ptdf_from(mut dc: DcModel, limit_scale: f64) -> Result<MarketNetwork, NetworkError> {
        let rows = std::mem::take(&mut dc.ptdf);
        MarketNetwork::ptdf_rows(&dc, rows.into_iter(), limit_scale)
    }

    fn ptdf_rows(
        dc: &DcModel,
        rows: impl Iterator<Item = Vec<f64>>,
        limit_scale: f64,
    ) -> Result<MarketNetwork, NetworkError> {
        if !limit_scale.is_finite() || limit_scale <= 0.0 {
            return Err(NetworkError::BadScale(limit_scale));
        }
        let mut net = MarketNetwork::unconstrained(dc.bus_ids.clone());
        net.model = "ptdf";
        for (l, row) in rows.enumerate() {
            let lim = dc.limits[l];
            if !lim.is_finite() {
                continue;
            }
            let kw = lim * dc.base_mva * 1000.0 * limit_scale;
            let (f, t, _, _) = dc.lines[l];
            let name = format!("line {}-{}", dc.bus_ids[f], dc.bus_ids[t]);
            let reverse = row.iter().map(|v| -v).collect();
            net.g.push(row);
            net.h.push(kw);
            net.labels.push(format!("{name} forward"));
            net.g.push(reverse);
            net.h.push(kw);
            net.labels.push(format!("{name} reverse"));
        }
        Ok(net)
    }

    /// LinDistFlow voltage (6.3d) and thermal (6.3c) limits around the
    /// case's loads, with the case's shunts and taps (see
    /// [`crate::distflow`]). Without shunts a voltage row is `2 R` and a
    /// flow row `−1` on the line's subtree; with them each column is a
    /// sweep of [`DistFlow::solve`] (the shunts' response to the market's
    /// injection at that bus). The reactive flow of a rated line moves with
    /// the voltages of the shunts below it, so its rating row takes the
    /// largest `|Q|` those shunts give anywhere in their voltage bands
    /// (which the V rows enforce): `|P| ≤ √(S² − Q_max²)`, linear and never
    /// looser than the line's real rating.
    pub fn distflow(df: &DistFlow, case: &Case) -> Result<MarketNetwork, NetworkError> {
        let n = df.bus_ids.len();
        let (p0, q0) = df.case_injections(case);
        let kw = 1.0 / (1000.0 * case.base_mva);
        let rated = |j: usize| df.parent_branch[j].is_some_and(|b| case.branches[b].rate_a > 0.0);
        // with shunts: the sensitivities of every voltage and rated flow to
        // each bus's injection, column by column (O(n) a column)
        let shunts = !df.shunt_free();
        let (mut sens_v, mut sens_p) = (Vec::new(), Vec::new());
        if shunts {
            sens_v = vec![vec![0.0; n]; n];
            sens_p = (0..n).map(|j| if rated(j) { vec![0.0; n] } else { Vec::new() }).collect();
            let zero = vec![0.0; n];
            let mut unit = vec![0.0; n];
            for k in 0..n {
                unit[k] = 1.0;
                let st = df.solve(&unit, &zero, 0.0);
                unit[k] = 0.0;
                for j in 0..n {
                    sens_v[j][k] = st.v[j];
                    if let Some(c) = sens_p[j].get_mut(k) {
                        *c = st.p_in[j];
                    }
                }
            }
        }
        let base = df.solve(&p0, &q0, df.v0_sq);
        let v_base = if shunts { base.v.clone() } else { df.voltages_sq(&p0, &q0) };
        let mut net = MarketNetwork::unconstrained(df.bus_ids.clone());
        net.model = "distflow";
        for j in 0..n {
            if j == df.root {
                continue;
            }
            let (vmin, vmax) = df.v_bounds[j];
            let row: Vec<f64> = if shunts {
                sens_v[j].iter().map(|v| v * kw).collect()
            } else {
                (0..n).map(|k| 2.0 * df.r_path[j * n + k] * kw).collect()
            };
            let (up, down) = (vmax * vmax - v_base[j], v_base[j] - vmin * vmin);
            if up < 0.0 || down < 0.0 {
                return Err(NetworkError::BaseInfeasible(format!("the voltage limits of bus {}", df.bus_ids[j])));
            }
            net.g.push(row.clone());
            net.h.push(up);
            net.labels.push(format!("bus {} V max", df.bus_ids[j]));
            net.g.push(row.iter().map(|v| -v).collect());
            net.h.push(down);
            net.labels.push(format!("bus {} V min", df.bus_ids[j]));
        }
        // thermal limits of rated parent lines
        let (flows_p, flows_q) =
            if shunts { (base.p_in, base.q_in) } else { (df.parent_flows(&p0), df.parent_flows(&q0)) };
        // the reactive flow into j over the shunts' voltage bands below it:
        // Q_j = −Σ_{k ∈ sub(j)} (q_k + b_k v_k), each b_k v_k in its band
        // (the band, signed: (lowest, highest))
        let q_band = |j: usize| -> (f64, f64) {
            if !shunts {
                return (flows_q[j], flows_q[j]);
            }
            let (mut lo, mut hi) = (0.0, 0.0);
            for k in (0..n).filter(|&k| df.in_subtree(k, j)) {
                let (vmin, vmax) = df.v_bounds[k];
                let (a, b) = (df.shunt_b[k] * vmin * vmin, df.shunt_b[k] * vmax * vmax);
                lo -= q0[k] + a.max(b);
                hi -= q0[k] + a.min(b);
            }
            let f: f64 = flows_q[j];
            (f64::min(lo, f), f64::max(hi, f))
        };
        let mut rated_lines = Vec::new();
        for j in 0..n {
            let Some(b) = df.parent_branch[j] else { continue };
            let s = case.branches[b].rate_a / case.base_mva;
            if s <= 0.0 {
                continue;
            }
            let (q_lo, q_hi) = q_band(j);
            let q_max = q_lo.abs().max(q_hi.abs());
            let room_sq = s * s - q_max * q_max;
            if room_sq < 0.0 {
                return Err(NetworkError::BaseInfeasible(format!("the rating of the line into bus {}", df.bus_ids[j])));
            }
            let pmax = room_sq.sqrt();
            // P into j = −Σ_{k ∈ sub(j)} p_k: row coefficient −1 on the
            // subtree (with shunts, the sweep's sensitivity: the conductances
            // below j move with the voltages)
            let sub: Vec<f64> = if shunts {
                sens_p[j].iter().map(|v| v * kw).collect()
            } else {
                (0..n).map(|k| if df.in_subtree(k, j) { -kw } else { 0.0 }).collect()
            };
            let (up, down) = (pmax - flows_p[j], pmax + flows_p[j]);
            if up < 0.0 || down < 0.0 {
                return Err(NetworkError::BaseInfeasible(format!("the rating of the line into bus {}", df.bus_ids[j])));
            }
            net.g.push(sub.clone());
            net.h.push(up);
            net.labels.push(format!("line into bus {} forward", df.bus_ids[j]));
            net.g.push(sub.iter().map(|v| -v).collect());
            net.h.push(down);
            net.labels.push(format!("line into bus {} reverse", df.bus_ids[j]));
            rated_lines.push((j, b, s, q_lo, q_hi, pmax));
        }
        net.feeder = Some(Arc::new(FeederAc::new(case, df, rated_lines)));
        Ok(net)
    }

    /// Model index of each buyer's and seller's bus (the market must have
    /// been validated against `bus_ids`).
    pub fn placement(&self, market: &Market) -> Result<(Vec<usize>, Vec<usize>), MarketError> {
        market.validate(&self.bus_ids)?;
        let pos = |bus: u32| self.bus_ids.iter().position(|&b| b == bus).unwrap_or(0);
        Ok((market.buyers.iter().map(|p| pos(p.bus)).collect(), market.sellers.iter().map(|p| pos(p.bus)).collect()))
    }

    /// Net bus injections (kW) of buyer totals `t` and seller totals `s`.
    pub fn injections(&self, bm: &[usize], bn: &[usize], t: &[f64], s: &[f64]) -> Vec<f64> {
        let mut p = vec![0.0; self.bus_ids.len()];
        for (k, v) in bm.iter().zip(t) {
            p[*k] -= v;
        }
        for (k, v) in bn.iter().zip(s) {
            p[*k] += v;
        }
        p
    }

    /// Largest violation `max(0, G p − h)` of injections `p`.
    /// The network row the injections `p` exceed most beyond
    /// [`ROW_TOL_ABS_KW`]` + `[`ROW_TOL_REL`]` · |h_r|` (each row against its
    /// own limit): `Some((row, kW beyond h_r))`, `None` when all rows hold.
    pub fn row_excess(&self, p: &[f64]) -> Option<(usize, f64)> {
        let mut worst: Option<(usize, f64)> = None;
        for (r, (row, h)) in self.g.iter().zip(&self.h).enumerate() {
            let beyond = row.iter().zip(p).map(|(a, b)| a * b).sum::<f64>() - h;
            // a NaN row value is an excess too
            let holds = beyond <= ROW_TOL_ABS_KW + ROW_TOL_REL * h.abs();
            if !holds && worst.is_none_or(|w| beyond.is_nan() || beyond > w.1) {
                worst = Some((r, beyond));
            }
        }
        worst
    }

    pub fn violation(&self, p: &[f64]) -> f64 {
        self.g
            .iter()
            .zip(&self.h)
            .map(|(row, h)| row.iter().zip(p).map(|(a, b)| a * b).sum::<f64>() - h)
            .fold(0.0, f64::max)
    }
}
