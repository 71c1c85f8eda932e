//! AC power flow by Newton–Raphson in polar coordinates (power mismatch), as
//! MATPOWER's `runpf` default. Generator reactive limits are not enforced
//! (MATPOWER's default `pf.enforce_q_lims = 0`). Branch model: MATPOWER's
//! π model with series admittance `1/(r + jx)`, total line charging `b`,
//! off-nominal tap τ and phase shift θ at the from end; bus shunts
//! `(Gs + jBs)/baseMVA`.

use serde::Serialize;

use crate::case::{BusType, Case};
use crate::linalg::{Lu, C64};
use crate::{ModelError, MAX_MODEL_BUSES};

/// Options of the Newton–Raphson solve.
#[derive(Debug, Clone, Copy)]
pub struct PfOptions {
    /// Maximum mismatch (p.u.) at convergence.
    pub tol: f64,
    pub max_iter: usize,
}

impl Default for PfOptions {
    /// MATPOWER's defaults: 1e-8 p.u., 10 iterations.
    fn default() -> Self {
        PfOptions { tol: 1e-8, max_iter: 10 }
    }
}

/// One bus of a solved power flow.
#[derive(Debug, Clone, Serialize)]
pub struct BusResult {
    pub id: u32,
    pub vm: f64,
    pub va_deg: f64,
}

/// A solved AC power flow (MW/MVAr, p.u. voltages, degrees).
#[derive(Debug, Clone, Serialize)]
pub struct PfResult {
    pub iterations: usize,
    pub max_mismatch_pu: f64,
    pub buses: Vec<BusResult>,
    pub min_vm: f64,
    pub min_vm_bus: u32,
    pub max_vm: f64,
    pub max_vm_bus: u32,
    /// Series branch losses, MW (MATPOWER's "Total losses" real part).
    pub loss_mw: f64,
    /// Series branch reactive losses `|I|² x`, MVAr.
    pub loss_mvar: f64,
    pub total_gen_mw: f64,
    pub total_load_mw: f64,
    /// Active and reactive output of the reference bus's generation, MW/MVAr.
    pub ref_p_mw: f64,
    pub ref_q_mvar: f64,
}

struct Ybus {
    n: usize,
    y: Vec<C64>,
}

fn ybus(case: &Case, pos: &dyn Fn(u32) -> Option<usize>, n: usize) -> Ybus {
    let mut y = vec![C64::ZERO; n * n];
    for br in case.live_branches() {
        let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) else { continue };
        let ys = C64::new(br.r, br.x).inv();
        let bc = C64::new(0.0, br.b / 2.0);
        let tap = C64::polar(br.tap, br.shift_deg.to_radians());
        let ytt = ys + bc;
        let yff = ytt.scale(1.0 / (br.tap * br.tap));
        let yft = -(ys * tap.conj().inv());
        let ytf = -(ys * tap.inv());
        y[f * n + f] = y[f * n + f] + yff;
        y[t * n + t] = y[t * n + t] + ytt;
        y[f * n + t] = y[f * n + t] + yft;
        y[t * n + f] = y[t * n + f] + ytf;
    }
    for b in &case.buses {
        if let Some(i) = pos(b.id) {
            y[i * n + i] = y[i * n + i] + C64::new(b.gs, b.bs).scale(1.0 / case.base_mva);
        }
    }
    Ybus { n, y }
}

impl Ybus {
    fn current(&self, v: &[C64]) -> Vec<C64> {
        (0..self.n).map(|i| (0..self.n).fold(C64::ZERO, |acc, j| acc + self.y[i * self.n + j] * v[j])).collect()
    }
}

/// Runs the AC power flow of a case as given (generator set-points and loads).
pub fn run_pf(case: &Case, opts: PfOptions) -> Result<PfResult, ModelError> {
    let live: Vec<usize> = (0..case.buses.len()).filter(|&i| case.buses[i].kind != BusType::Isolated).collect();
    let ids: Vec<u32> = live.iter().map(|&i| case.buses[i].id).collect();
    let n = ids.len();
    if n > MAX_MODEL_BUSES {
        return Err(ModelError::TooLarge { buses: n, max: MAX_MODEL_BUSES });
    }
    let at: std::collections::HashMap<u32, usize> = ids.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let pos = |id: u32| at.get(&id).copied();
    let yb = ybus(case, &pos, n);

    // specified injections and initial voltages
    let mut sbus = vec![C64::ZERO; n];
    let mut vm = vec![1.0; n];
    let mut va = vec![0.0; n];
    let mut kind = vec![BusType::Pq; n];
    for (k, &i) in live.iter().enumerate() {
        let b = &case.buses[i];
        sbus[k] = C64::new(-b.pd, -b.qd).scale(1.0 / case.base_mva);
        vm[k] = b.vm;
        va[k] = b.va_deg.to_radians();
        kind[k] = b.kind;
    }
    let mut has_gen = vec![false; n];
    for g in case.gens.iter().filter(|g| g.in_service) {
        if let Some(k) = pos(g.bus) {
            sbus[k] = sbus[k] + C64::new(g.pg, g.qg).scale(1.0 / case.base_mva);
            has_gen[k] = true;
            if kind[k] != BusType::Pq {
                vm[k] = g.vg;
            }
        }
    }
    // a PV bus without an in-service generator is a PQ bus (as in MATPOWER)
    for k in 0..n {
        if kind[k] == BusType::Pv && !has_gen[k] {
            kind[k] = BusType::Pq;
        }
    }
    let pvpq: Vec<usize> = (0..n).filter(|&k| kind[k] != BusType::Ref).collect();
    let pq: Vec<usize> = (0..n).filter(|&k| kind[k] == BusType::Pq).collect();
    let (npv, npq) = (pvpq.len(), pq.len());
    let dim = npv + npq;

    let mut v: Vec<C64> = (0..n).map(|k| C64::polar(vm[k], va[k])).collect();
    let mismatch = |v: &[C64]| -> (Vec<C64>, Vec<f64>, f64) {
        let ib = yb.current(v);
        let mis: Vec<C64> = (0..n).map(|k| v[k] * ib[k].conj() - sbus[k]).collect();
        let mut f = Vec::with_capacity(dim);
        f.extend(pvpq.iter().map(|&k| mis[k].re));
        f.extend(pq.iter().map(|&k| mis[k].im));
        let norm = f.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (ib, f, norm)
    };
    let (mut ib, mut f, mut norm) = mismatch(&v);
    let mut it = 0;
    while norm > opts.tol {
        if it >= opts.max_iter || !norm.is_finite() {
            return Err(ModelError::NoConvergence { iterations: it, mismatch: norm });
        }
        it += 1;
        // dS/dVa and dS/dVm (dense)
        let vn: Vec<C64> = v.iter().map(|x| x.scale(1.0 / x.abs())).collect();
        let mut ds_dva = vec![C64::ZERO; n * n];
        let mut ds_dvm = vec![C64::ZERO; n * n];
        for i in 0..n {
            for j in 0..n {
                let y = yb.y[i * n + j];
                // dS_dVm = diag(V) conj(Y diag(Vn)) + conj(diag(I)) diag(Vn)
                let mut dm = v[i] * (y * vn[j]).conj();
                // dS_dVa = j diag(V) conj(diag(I) - Y diag(V))
                let mut inner = -(y * v[j]);
                if i == j {
                    dm = dm + ib[i].conj() * vn[i];
                    inner = inner + ib[i];
                }
                let da = C64::new(0.0, 1.0) * v[i] * inner.conj();
                ds_dvm[i * n + j] = dm;
                ds_dva[i * n + j] = da;
            }
        }
        let mut jac = vec![0.0; dim * dim];
        for (r, &i) in pvpq.iter().enumerate() {
            for (c, &j) in pvpq.iter().enumerate() {
                jac[r * dim + c] = ds_dva[i * n + j].re;
            }
            for (c, &j) in pq.iter().enumerate() {
                jac[r * dim + npv + c] = ds_dvm[i * n + j].re;
            }
        }
        for (r, &i) in pq.iter().enumerate() {
            for (c, &j) in pvpq.iter().enumerate() {
                jac[(npv + r) * dim + c] = ds_dva[i * n + j].im;
            }
            for (c, &j) in pq.iter().enumerate() {
                jac[(npv + r) * dim + npv + c] = ds_dvm[i * n + j].im;
            }
        }
        let lu = Lu::new(dim, jac)?;
        let neg: Vec<f64> = f.iter().map(|x| -x).collect();
        let dx = lu.solve(&neg);
        for (c, &k) in pvpq.iter().enumerate() {
            va[k] += dx[c];
        }
        for (c, &k) in pq.iter().enumerate() {
            vm[k] += dx[npv + c];
        }
        v = (0..n).map(|k| C64::polar(vm[k], va[k])).collect();
        (ib, f, norm) = mismatch(&v);
    }

    // results
    let sinj: Vec<C64> = (0..n).map(|k| (v[k] * ib[k].conj()).scale(case.base_mva)).collect();
    let total_load_mw: f64 = live.iter().map(|&i| case.buses[i].pd).sum();
    let refk = (0..n).find(|&k| kind[k] == BusType::Ref).ok_or(ModelError::NoReference)?;
    let ref_load = &case.buses[live[refk]];
    let ref_p_mw = sinj[refk].re + ref_load.pd;
    let ref_q_mvar = sinj[refk].im + ref_load.qd;
    let mut total_gen_mw = ref_p_mw;
    for g in case.gens.iter().filter(|g| g.in_service) {
        if pos(g.bus) != Some(refk) {
            total_gen_mw += g.pg;
        }
    }
    let (mut loss_mw, mut loss_mvar) = (0.0, 0.0);
    for br in case.live_branches() {
        let (Some(fb), Some(tb)) = (pos(br.from), pos(br.to)) else { continue };
        let tap = C64::polar(br.tap, br.shift_deg.to_radians());
        let dv = v[fb] * tap.inv() - v[tb];
        // |ΔV|² / conj(z)
        let loss = C64::new(br.r, br.x).conj().inv().scale(dv.norm_sqr() * case.base_mva);
        loss_mw += loss.re;
        loss_mvar += loss.im;
    }
    let buses: Vec<BusResult> =
        (0..n).map(|k| BusResult { id: ids[k], vm: v[k].abs(), va_deg: v[k].arg().to_degrees() }).collect();
    let (mut min_k, mut max_k) = (0, 0);
    for k in 0..n {
        if buses[k].vm < buses[min_k].vm {
            min_k = k;
        }
        if buses[k].vm > buses[max_k].vm {
            max_k = k;
        }
    }
    // never an Ok with NaN/inf in it: a "converged" flow whose voltages or
    // losses are not finite is a numerical failure, not a result
    if !buses.iter().all(|b| b.vm.is_finite() && b.va_deg.is_finite()) {
        return Err(ModelError::Numerical { what: "a bus voltage" });
    }
    for (what, x) in [
        ("the mismatch", norm),
        ("the losses", loss_mw),
        ("the reactive losses", loss_mvar),
        ("the generation", total_gen_mw),
        ("the reference injection", ref_p_mw + ref_q_mvar),
    ] {
        if !x.is_finite() {
            return Err(ModelError::Numerical { what });
        }
    }
    Ok(PfResult {
        iterations: it,
        max_mismatch_pu: norm,
        min_vm: buses[min_k].vm,
        min_vm_bus: buses[min_k].id,
        max_vm: buses[max_k].vm,
        max_vm_bus: buses[max_k].id,
        buses,
        loss_mw,
        loss_mvar,
        total_gen_mw,
        total_load_mw,
        ref_p_mw,
        ref_q_mvar,
    })
}
