//! AC power flow by Newton–Raphson in polar coordinates (power mismatch), as
//! MATPOWER's `runpf` default. Generator reactive limits are not enforced
//! (MATPOWER's default `pf.enforce_q_lims = 0`). Branch model: MATPOWER's
//! π model with series admittance `1/(r + jx)`, total line charging `b`,
//! off-nominal tap τ and phase shift θ at the from end; bus shunts
//! `(Gs + jBs)/baseMVA`.
//!
//! Sizes: the bus admittance matrix is sparse and the Newton system is
//! solved by a sparse LU with partial pivoting (`rsparse`'s CSparse port,
//! [`SparseLu`]) in reverse Cuthill–McKee bus order, the two unknowns of a
//! bus side by side and the columns kept in that order, so the fill stays
//! within the band and a step costs at most `O(n β²)` for bus bandwidth `β`
//! (a radial feeder: `β` of a few buses) instead of the dense `O(n³)`. Up to [`MAX_MODEL_BUSES`](crate::MAX_MODEL_BUSES) buses are
//! accepted, and a case whose step would need more than [`MAX_AC_PF_WORK`]
//! multiply-adds (a large, densely meshed network) is refused with
//! [`ModelError::TooMuchAcWork`] before anything of its size is built.

use serde::Serialize;

use crate::case::{BusType, Case};
use crate::linalg::{band_lu_work, SparseLu, C64};
use crate::ModelError;

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

/// The bus admittance matrix, sparse: per bus its `(bus, Y)` entries,
/// the diagonal first.
struct Ybus {
    rows: Vec<Vec<(usize, C64)>>,
}

fn ybus(case: &Case, pos: &dyn Fn(u32) -> Option<usize>, n: usize) -> Ybus {
    let mut rows: Vec<Vec<(usize, C64)>> = (0..n).map(|i| vec![(i, C64::ZERO)]).collect();
    let mut add = |i: usize, j: usize, v: C64| {
        let row = &mut rows[i];
        match row.iter_mut().find(|(k, _)| *k == j) {
            Some(e) => e.1 = e.1 + v,
            None => row.push((j, v)),
        }
    };
    for br in case.live_branches() {
        let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) else { continue };
        let ys = C64::new(br.r, br.x).inv();
        let bc = C64::new(0.0, br.b / 2.0);
        let tap = C64::polar(br.tap, br.shift_deg.to_radians());
        let ytt = ys + bc;
        let yff = ytt.scale(1.0 / (br.tap * br.tap));
        let yft = -(ys * tap.conj().inv());
        let ytf = -(ys * tap.inv());
        add(f, f, yff);
        add(t, t, ytt);
        add(f, t, yft);
        add(t, f, ytf);
    }
    for b in &case.buses {
        if let Some(i) = pos(b.id) {
            add(i, i, C64::new(b.gs, b.bs).scale(1.0 / case.base_mva));
        }
    }
    Ybus { rows }
}

impl Ybus {
    fn current(&self, v: &[C64]) -> Vec<C64> {
        self.rows.iter().map(|row| row.iter().fold(C64::ZERO, |acc, (j, y)| acc + *y * v[*j])).collect()
    }
}

/// Most multiply-adds one Newton step's LU may take, by the banded bound
/// ([`band_lu_work`] of the Jacobian in reverse Cuthill–McKee order):
/// 2·10⁹, of the order of seconds per step in a release build (ten steps
/// at most). A radial feeder of the 5 000 buses [`MAX_MODEL_BUSES`](crate::MAX_MODEL_BUSES) allows
/// needs about 2·10⁵; a meshed case of `n` buses and ordered bandwidth `β`
/// about `16 n β²` (3 000 buses: `β` up to about 200). What needs more is
/// refused ([`ModelError::TooMuchAcWork`]) before anything of its size is
/// built.
pub const MAX_AC_PF_WORK: u64 = 2_000_000_000;

/// Reverse Cuthill–McKee order of the buses (`order[s]` = the bus at
/// position `s`), from each component's lowest-degree bus, and the
/// bandwidth `max |pos(f) − pos(t)|` over the branches in that order.
fn rcm(n: usize, adj: &[Vec<usize>]) -> (Vec<usize>, usize) {
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let mut starts: Vec<usize> = (0..n).collect();
    starts.sort_by_key(|&i| (adj[i].len(), i));
    for s in starts {
        if seen[s] {
            continue;
        }
        seen[s] = true;
        let mut head = order.len();
        order.push(s);
        while head < order.len() {
            let u = order[head];
            head += 1;
            let mut next: Vec<usize> = adj[u].iter().copied().filter(|v| !seen[*v]).collect();
            next.sort_by_key(|&v| (adj[v].len(), v));
            next.dedup();
            for v in next {
                if !seen[v] {
                    seen[v] = true;
                    order.push(v);
                }
            }
        }
    }
    order.reverse();
    let mut pos = vec![0; n];
    for (s, &i) in order.iter().enumerate() {
        pos[i] = s;
    }
    let band = (0..n).flat_map(|i| adj[i].iter().map(move |&j| (i, j))).map(|(i, j)| pos[i].abs_diff(pos[j])).max();
    (order, band.unwrap_or(0))
}

/// Runs the AC power flow of a case as given (generator set-points and loads).
pub fn run_pf(case: &Case, opts: PfOptions) -> Result<PfResult, ModelError> {
    let buses = case.live_buses()?;
    let (live, ids) = (&buses.live, &buses.ids);
    let pos = |id: u32| buses.pos(id);
    let n = ids.len();
    // the Newton system's size, before anything of it is built: two
    // unknowns per bus interleaved in reverse Cuthill–McKee order, so the
    // Jacobian is banded (bus bandwidth β: 2β + 1 sub- and super-diagonals)
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); n];
    for br in case.live_branches() {
        if let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) {
            if f != t {
                adj[f].push(t);
                adj[t].push(f);
            }
        }
    }
    let (order, beta) = rcm(n, &adj);
    let (dim, bw) = (2 * n, 2 * beta + 1);
    let work = band_lu_work(dim, bw, bw);
    if work > MAX_AC_PF_WORK {
        return Err(ModelError::TooMuchAcWork { buses: n, bandwidth: beta, work, max: MAX_AC_PF_WORK });
    }
    let mut slot = vec![0; n];
    for (s, &i) in order.iter().enumerate() {
        slot[i] = s;
    }
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
    // unknowns: bus k's angle at 2·slot[k] (not at the reference) and its
    // magnitude at 2·slot[k] + 1 (PQ buses only); equations: its P mismatch
    // and Q mismatch in the same places. A fixed unknown keeps an identity
    // row (its step is 0), so the system is MATPOWER's reduced one.
    let free_va: Vec<bool> = (0..n).map(|k| kind[k] != BusType::Ref).collect();
    let free_vm: Vec<bool> = (0..n).map(|k| kind[k] == BusType::Pq).collect();

    let mut v: Vec<C64> = (0..n).map(|k| C64::polar(vm[k], va[k])).collect();
    let mismatch = |v: &[C64]| -> (Vec<C64>, Vec<f64>, f64) {
        let ib = yb.current(v);
        let mut f = vec![0.0; dim];
        for k in 0..n {
            let mis = v[k] * ib[k].conj() - sbus[k];
            if free_va[k] {
                f[2 * slot[k]] = mis.re;
            }
            if free_vm[k] {
                f[2 * slot[k] + 1] = mis.im;
            }
        }
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
        // the Jacobian from dS/dVa and dS/dVm, entry by entry of Ybus:
        // dS_dVm = diag(V) conj(Y diag(Vn)) + conj(diag(I)) diag(Vn),
        // dS_dVa = j diag(V) conj(diag(I) − Y diag(V))
        let vn: Vec<C64> = v.iter().map(|x| x.scale(1.0 / x.abs())).collect();
        let mut jac = SparseLu::zeros(dim);
        for i in 0..n {
            let (rp, rq) = (2 * slot[i], 2 * slot[i] + 1);
            for &(j, y) in &yb.rows[i] {
                let mut dm = v[i] * (y * vn[j]).conj();
                let mut inner = -(y * v[j]);
                if i == j {
                    dm = dm + ib[i].conj() * vn[i];
                    inner = inner + ib[i];
                }
                let da = C64::new(0.0, 1.0) * v[i] * inner.conj();
                let (ca, cm) = (2 * slot[j], 2 * slot[j] + 1);
                if free_va[i] && free_va[j] {
                    jac.add(rp, ca, da.re);
                }
                if free_va[i] && free_vm[j] {
                    jac.add(rp, cm, dm.re);
                }
                if free_vm[i] && free_va[j] {
                    jac.add(rq, ca, da.im);
                }
                if free_vm[i] && free_vm[j] {
                    jac.add(rq, cm, dm.im);
                }
            }
            if !free_va[i] {
                jac.add(rp, rp, 1.0);
            }
            if !free_vm[i] {
                jac.add(rq, rq, 1.0);
            }
        }
        let lu = jac.factor()?;
        let neg: Vec<f64> = f.iter().map(|x| -x).collect();
        let dx = lu.solve(&neg);
        for k in 0..n {
            if free_va[k] {
                va[k] += dx[2 * slot[k]];
            }
            if free_vm[k] {
                vm[k] += dx[2 * slot[k] + 1];
            }
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
