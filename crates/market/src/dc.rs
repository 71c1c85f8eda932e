//! DC power flow and power transfer distribution factors (PTDF) for meshed
//! networks.
//!
//! Lossless, flat-voltage, small-angle model: the flow on branch `l = (f, t)`
//! is `b_l (θ_f − θ_t)` with `b_l = 1 / (x_l τ_l)` (τ the tap ratio), and the
//! bus angles solve `B θ = p` with the reference bus's angle fixed at 0, so the
//! reference bus absorbs any imbalance of `p`. Phase-shifting transformers'
//! shift angles are not modelled (none of the shipped cases has one).
//! All quantities are per unit on the case's `baseMVA`.

use crate::case::Case;
use crate::linalg::LinalgError;
use crate::{ModelError, MAX_PTDF_ENTRIES};
use clarabel::algebra::CscMatrix;
use clarabel::qdldl::{QDLDLFactorisation, QDLDLSettingsBuilder};

/// Sparse LDLᵀ (Clarabel's QDLDL, AMD ordering, no regularisation) of the
/// symmetric `m × m` matrix whose upper triangle the triplets give; a pivot
/// at or below `10⁻¹³` of the largest entry is [`LinalgError::Singular`] (a
/// bus cut off from the reference), as the dense LU refused it.
fn factor_spd(m: usize, ti: Vec<usize>, tj: Vec<usize>, tv: Vec<f64>) -> Result<QDLDLFactorisation, ModelError> {
    let scale = tv.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(f64::MIN_POSITIVE);
    let a = CscMatrix::new_from_triplets(m, m, ti, tj, tv);
    let settings = QDLDLSettingsBuilder::default()
        .regularize_enable(false)
        .build()
        .map_err(|_| ModelError::Numerical { what: "the LDLᵀ settings" })?;
    let ldl = QDLDLFactorisation::new(&a, Some(settings))
        .map_err(|_| ModelError::Linalg(LinalgError::Singular { col: 0, pivot: 0.0 }))?;
    // D is in the factorisation's (permuted) order; name the bus's column
    if let Some((k, d)) = ldl.D.iter().enumerate().find(|(_, d)| d.is_nan() || d.abs() <= 1e-13 * scale) {
        return Err(ModelError::Linalg(LinalgError::Singular { col: ldl.perm[k], pivot: d.abs() }));
    }
    Ok(ldl)
}

/// The DC model of a case: branch susceptances and the PTDF matrix.
#[derive(Debug, Clone)]
pub struct DcModel {
    /// The case's power base, MVA.
    pub base_mva: f64,
    /// Bus ids, in model order (isolated buses excluded).
    pub bus_ids: Vec<u32>,
    /// Index of the reference bus.
    pub ref_idx: usize,
    /// In-service branches: (from, to, susceptance b_l in p.u., index into `Case::branches`).
    pub lines: Vec<(usize, usize, f64, usize)>,
    /// Branch ratings in p.u. (`f64::INFINITY` where the case has 0, i.e. unlimited).
    pub limits: Vec<f64>,
    /// `ptdf[l][k]`: flow on line `l` per unit injected at bus `k` and withdrawn at the reference bus.
    pub ptdf: Vec<Vec<f64>>,
}

/// Result of a DC power flow.
#[derive(Debug, Clone)]
pub struct DcFlow {
    /// Bus voltage angles in radians.
    pub theta: Vec<f64>,
    /// Branch flows from → to, p.u.
    pub flows: Vec<f64>,
    /// Injection the reference bus must supply to balance the network, p.u.
    pub ref_injection: f64,
}

impl DcModel {
    pub fn new(case: &Case) -> Result<DcModel, ModelError> {
        let buses = case.live_buses()?;
        let pos = |id: u32| buses.pos(id);
        let ref_idx = buses.reference(case)?;
        let n = buses.ids.len();
        let mut lines = Vec::new();
        let mut limits = Vec::new();
        for (k, br) in case.branches.iter().enumerate() {
            if !br.in_service {
                continue;
            }
            let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) else { continue };
            if br.x == 0.0 {
                return Err(ModelError::ZeroReactance(k + 1));
            }
            lines.push((f, t, 1.0 / (br.x * br.tap), k));
            limits.push(if br.rate_a > 0.0 { br.rate_a / case.base_mva } else { f64::INFINITY });
        }
        // the dense PTDF is lines × buses: bounded before anything n²-sized
        let entries = lines.len().saturating_mul(n);
        if entries > MAX_PTDF_ENTRIES {
            return Err(ModelError::TooLargePtdf { lines: lines.len(), buses: n, entries, max: MAX_PTDF_ENTRIES });
        }
        // reduced B (reference row/column removed), sparse: its upper
        // triangle as triplets (repeated entries are summed), a zero on every
        // diagonal so that a bus without lines is a zero pivot, not a
        // malformed matrix
        let red: Vec<usize> = (0..n).filter(|&i| i != ref_idx).collect();
        let mut at = vec![usize::MAX; n];
        for (r, &i) in red.iter().enumerate() {
            at[i] = r;
        }
        let m = red.len();
        let (mut ti, mut tj, mut tv): (Vec<usize>, Vec<usize>, Vec<f64>) =
            ((0..m).collect(), (0..m).collect(), vec![0.0; m]);
        for &(f, t, bl, _) in &lines {
            // a branch from a bus to itself carries no DC flow
            if f == t {
                continue;
            }
            for (i, j, s) in [(f, f, bl), (t, t, bl), (f.min(t), f.max(t), -bl)] {
                if at[i] != usize::MAX && at[j] != usize::MAX {
                    ti.push(at[i]);
                    tj.push(at[j]);
                    tv.push(s);
                }
            }
        }
        // one sparse LDLᵀ factorisation of B_red (AMD ordering), then one
        // solve per line: PTDF_l = b_l B⁻¹ (e_f − e_t), with B⁻¹ symmetric
        // (the dense version formed B⁻¹ column by column, n dense solves of
        // O(n²): a 2 000-bus ring took minutes)
        let mut ldl = if m > 0 { Some(factor_spd(m, ti, tj, tv)?) } else { None };
        let mut z = vec![0.0; m];
        let mut ptdf = Vec::with_capacity(lines.len());
        for &(f, t, bl, _) in &lines {
            let mut row = vec![0.0; n];
            if let (Some(ldl), true) = (ldl.as_mut(), f != t) {
                z.iter_mut().for_each(|v| *v = 0.0);
                if at[f] != usize::MAX {
                    z[at[f]] += 1.0;
                }
                if at[t] != usize::MAX {
                    z[at[t]] -= 1.0;
                }
                ldl.solve(&mut z);
                for (r, &i) in red.iter().enumerate() {
                    row[i] = bl * z[r];
                }
            }
            ptdf.push(row);
        }
        Ok(DcModel { base_mva: case.base_mva, bus_ids: buses.ids, ref_idx, lines, limits, ptdf })
    }

    /// Net injections of the case's in-service generators minus loads and
    /// shunt conductances, p.u., in model bus order.
    pub fn case_injections(&self, case: &Case) -> Vec<f64> {
        let mut p = vec![0.0; self.bus_ids.len()];
        let pos = |id: u32| self.bus_ids.iter().position(|&b| b == id);
        for g in case.gens.iter().filter(|g| g.in_service) {
            if let Some(i) = pos(g.bus) {
                p[i] += g.pg / case.base_mva;
            }
        }
        for b in &case.buses {
            if let Some(i) = pos(b.id) {
                p[i] -= (b.pd + b.gs) / case.base_mva;
            }
        }
        p
    }

    /// Branch flows for injections `p` (p.u., model bus order) via the PTDF;
    /// the reference bus balances the network.
    pub fn flows(&self, p: &[f64]) -> Vec<f64> {
        self.ptdf.iter().map(|row| row.iter().zip(p).map(|(a, b)| a * b).sum()).collect()
    }

    /// Full DC power flow: angles from the flows on a spanning set of branches.
    pub fn power_flow(&self, p: &[f64]) -> DcFlow {
        let flows = self.flows(p);
        let n = self.bus_ids.len();
        let ref_injection = -p.iter().enumerate().filter(|(i, _)| *i != self.ref_idx).map(|(_, v)| v).sum::<f64>();
        // angles by breadth-first walk from the reference over the lines
        let mut theta = vec![f64::NAN; n];
        theta[self.ref_idx] = 0.0;
        let mut changed = true;
        while changed {
            changed = false;
            for (l, &(f, t, bl, _)) in self.lines.iter().enumerate() {
                if theta[f].is_nan() && !theta[t].is_nan() {
                    theta[f] = theta[t] + flows[l] / bl;
                    changed = true;
                } else if theta[t].is_nan() && !theta[f].is_nan() {
                    theta[t] = theta[f] - flows[l] / bl;
                    changed = true;
                }
            }
        }
        DcFlow { theta, flows, ref_injection }
    }
}
