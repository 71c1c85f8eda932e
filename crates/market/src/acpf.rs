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
///
/// The physical tolerance holds in both units whatever the case's base:
/// a bus's mismatch must be within `tol` p.u. *and* within `tol_mw`
/// MW/MVAr, i.e. within [`PfOptions::tol_pu`]`(baseMVA)` =
/// `min(tol, tol_mw / baseMVA)` p.u. On MATPOWER's bases (1 to 1 000 MVA,
/// 100 for most) the defaults give MATPOWER's 10⁻⁸ p.u. up to 100 MVA and
/// 10⁻⁶ MW above; on an absurd base neither unit is left loose (attack
/// round 21: on a base of 10⁹ MVA, 10⁻⁸ p.u. alone is 10 MW, and a 5 MW
/// load was "converged" at the flat start with no generation).
#[derive(Debug, Clone, Copy)]
pub struct PfOptions {
    /// Maximum mismatch (p.u.) at convergence. A bus's equations whose
    /// computed mismatch cannot be resolved that finely in double
    /// precision are held to their rounding floor instead
    /// ([`mismatch_floor`]), up to [`max_mismatch_floor_pu`] (0.001 MW and
    /// 10⁻³ p.u.).
    pub tol: f64,
    /// Maximum mismatch (MW/MVAr) at convergence: the same tolerance in
    /// physical units.
    pub tol_mw: f64,
    pub max_iter: usize,
}

impl Default for PfOptions {
    /// MATPOWER's defaults: 1e-8 p.u., 10 iterations; and 1e-6 MW, what
    /// 1e-8 p.u. is on MATPOWER's usual 100 MVA base.
    fn default() -> Self {
        PfOptions { tol: 1e-8, tol_mw: 1e-6, max_iter: 10 }
    }
}

impl PfOptions {
    /// The tolerance in p.u. of a case with base `base_mva`:
    /// `min(tol, tol_mw / baseMVA)`, so that it holds in p.u. and in MW.
    pub fn tol_pu(&self, base_mva: f64) -> f64 {
        if crate::mutants::active(crate::mutants::Mutation::PfTolerancePuOnly) {
            return self.tol;
        }
        self.tol.min(self.tol_mw / base_mva)
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
    /// The physical tolerance on the case's base ([`PfOptions::tol_pu`]).
    pub tol_pu: f64,
    /// The largest tolerance a bus's mismatch was held to: the physical
    /// tolerance ([`PfResult::tol_pu`]) or, where larger, that bus's
    /// rounding floor ([`mismatch_floor`]).
    pub mismatch_tol_pu: f64,
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
    /// The bus the flow took as its reference (slack): the case's reference
    /// bus, or where that has no in-service generator the first PV bus with
    /// one (MATPOWER's `bustypes`).
    pub ref_bus: u32,
    /// Active and reactive output of the reference bus's generation, MW/MVAr.
    pub ref_p_mw: f64,
    pub ref_q_mvar: f64,
}

/// The complex power entering a branch at each end, MW/MVAr: `from`
/// (`S_f = V_f conj(I_f)` at the from bus) and `to` (at the to bus), by
/// MATPOWER's π model as the flow uses it (series admittance, charging,
/// tap and shift at the from end). `from.re + to.re` is the branch's loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BranchFlow {
    pub from_mw: f64,
    pub from_mvar: f64,
    pub to_mw: f64,
    pub to_mvar: f64,
}

impl BranchFlow {
    /// The larger apparent power of the two ends, MVA (what a rating bounds).
    pub fn max_mva(&self) -> f64 {
        self.from_mw.hypot(self.from_mvar).max(self.to_mw.hypot(self.to_mvar))
    }
}

/// A branch's π model as MATPOWER builds it (series admittance `ys`,
/// half the line charging `bc`, tap and shift at the from end): the four
/// entries it adds to the bus admittance matrix.
struct PiModel {
    ys: C64,
    bc: C64,
    yff: C64,
    ytt: C64,
    yft: C64,
    ytf: C64,
}

impl PiModel {
    fn of(br: &crate::case::Branch) -> Self {
        let ys = C64::new(br.r, br.x).inv();
        let bc = C64::new(0.0, br.b / 2.0);
        let tap = C64::polar(br.tap, br.shift_deg.to_radians());
        let ytt = ys + bc;
        let yff = ytt.scale(1.0 / (br.tap * br.tap));
        let yft = -(ys * tap.conj().inv());
        let ytf = -(ys * tap.inv());
        PiModel { ys, bc, yff, ytt, yft, ytf }
    }
}

/// Each branch's end flows in the solved flow `pf` of `case` (indexed as
/// `case.branches`; `None` for a branch out of service or at a bus the flow
/// does not cover).
pub fn branch_flows(case: &Case, pf: &PfResult) -> Vec<Option<BranchFlow>> {
    let index: std::collections::HashMap<u32, C64> =
        pf.buses.iter().map(|b| (b.id, C64::polar(b.vm, b.va_deg.to_radians()))).collect();
    case.branches
        .iter()
        .map(|br| {
            if !br.in_service {
                return None;
            }
            let (vf, vt) = (*index.get(&br.from)?, *index.get(&br.to)?);
            let PiModel { yff, ytt, yft, ytf, .. } = PiModel::of(br);
            let sf = (vf * (yff * vf + yft * vt).conj()).scale(case.base_mva);
            let st = (vt * (ytf * vf + ytt * vt).conj()).scale(case.base_mva);
            Some(BranchFlow { from_mw: sf.re, from_mvar: sf.im, to_mw: st.re, to_mvar: st.im })
        })
        .collect()
}

/// The bus admittance matrix, sparse: per bus its `(bus, Y)` entries,
/// the diagonal first, and beside each entry (same place in `parts`) the
/// sum of the magnitudes of the terms that were added into it and their
/// number. Rounding loses up to about that many ulps *of the sum of the
/// magnitudes*, not of the entry: two branches of admittance `+j5·10¹⁶`
/// and `−j5·10¹⁶` in parallel leave an entry of a few p.u. from which a
/// line of 10 p.u. beside them was rounded away (attack r19 [1]).
struct Ybus {
    rows: Vec<Vec<(usize, C64)>>,
    parts: Vec<Vec<(f64, usize)>>,
}

fn ybus(case: &Case, pos: &dyn Fn(u32) -> Option<usize>, n: usize) -> Ybus {
    let mut rows: Vec<Vec<(usize, C64)>> = (0..n).map(|i| vec![(i, C64::ZERO)]).collect();
    let mut parts: Vec<Vec<(f64, usize)>> = (0..n).map(|_| vec![(0.0, 0)]).collect();
    // `mag`: the sum of the magnitudes of what went into the term `v`
    // (the series admittance and the charging of a branch end: they can
    // cancel within the term itself)
    let mut add = |i: usize, j: usize, v: C64, mag: f64| {
        let row = &mut rows[i];
        match row.iter().position(|(k, _)| *k == j) {
            Some(e) => {
                row[e].1 = row[e].1 + v;
                let p = &mut parts[i][e];
                *p = (p.0 + mag, p.1 + 1);
            }
            None => {
                row.push((j, v));
                parts[i].push((mag, 1));
            }
        }
    };
    for br in case.live_branches() {
        let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) else { continue };
        let PiModel { ys, bc, yff, ytt, yft, ytf } = PiModel::of(br);
        let end = ys.abs() + bc.abs();
        add(f, f, yff, end / (br.tap * br.tap));
        add(t, t, ytt, end);
        add(f, t, yft, yft.abs());
        add(t, f, ytf, ytf.abs());
    }
    for b in &case.buses {
        if let Some(i) = pos(b.id) {
            let sh = C64::new(b.gs, b.bs).scale(1.0 / case.base_mva);
            add(i, i, sh, sh.abs());
        }
    }
    Ybus { rows, parts }
}

impl Ybus {
    fn current(&self, v: &[C64]) -> Vec<C64> {
        self.rows.iter().map(|row| row.iter().fold(C64::ZERO, |acc, (j, y)| acc + *y * v[*j])).collect()
    }

    /// Per bus `Σ_k A_ik |V_k|`, `A_ik` the sum of the magnitudes of the
    /// terms summed into `Y_ik`, and the number of terms of the row's
    /// rounding: its length plus the most terms summed into one entry.
    fn abs_current(&self, v: &[C64]) -> Vec<(f64, usize)> {
        self.rows
            .iter()
            .zip(&self.parts)
            .map(|(row, parts)| {
                let sum = row.iter().zip(parts).map(|((j, _), (a, _))| a * v[*j].abs()).sum();
                (sum, row.len() + parts.iter().map(|p| p.1).max().unwrap_or(0))
            })
            .collect()
    }
}

/// Largest uncertainty, in MW, that the rounding floor ([`mismatch_floor`])
/// of a solved power flow may leave in its injections: 0.001 MW, the last
/// digit `gridledger grid pf` prints, so no floor a flow is reported on
/// can move a printed figure. The cap in p.u. follows from the case's base
/// ([`max_mismatch_floor_pu`]).
pub const MAX_MISMATCH_FLOOR_MW: f64 = 1e-3;

/// Largest rounding floor in p.u. whatever the base: 10⁻³ p.u., what
/// [`MAX_MISMATCH_FLOOR_MW`] is on a 1 MVA base, the smallest base
/// MATPOWER's cases use. So on bases of 1 MVA and above the cap is
/// 0.001 MW alone (a fixed network's floor in p.u. scales as 1/baseMVA,
/// and so does that cap: MATPOWER's `case16am` is accepted alike on 1,
/// 10 and 100 MVA, attack round 23), and only on smaller bases, where
/// 0.001 MW is more than 10⁻³ p.u., the p.u. bound takes over: an
/// uncertainty of 10⁻³ p.u. in a bus's injection moves its voltage by
/// about 10⁻³ times the impedance behind it (attack round 21's probe:
/// from a cap of 1 p.u. down, no accepted cancelling pair moved |Vm| by
/// 10⁻⁵).
pub const MAX_MISMATCH_FLOOR_PU: f64 = 1e-3;

/// Largest rounding floor ([`mismatch_floor`]) a solved power flow may
/// rest on, p.u. of a case with base `base_mva`: the smaller of
/// [`MAX_MISMATCH_FLOOR_MW`]` / baseMVA` and [`MAX_MISMATCH_FLOOR_PU`]
/// (10⁻³ p.u. on a 1 MVA base and below, 10⁻⁴ on a 10 MVA feeder, 10⁻⁶ on
/// a 1 000 MVA base), so that what the floor leaves uncertain in the
/// injections stays within the printed 0.001 MW *and* within 10⁻³ p.u. —
/// the p.u. bound is what keeps
/// the voltages (p.u., independent of the base) honest on a tiny base,
/// where 0.001 MW alone is thousands of p.u. (attack round 21: on a base
/// of 10⁻⁶ MVA a resonant branch pair was solved with the voltages its
/// rounding decided). A case whose floor is higher (an impedance so small
/// that double precision cannot resolve its bus's power balance that
/// finely, or large terms that cancel) is refused with
/// [`ModelError::MismatchFloor`] rather than reported as converged.
/// (MATPOWER's `case16am`, whose 6.2·10⁻¹⁰ p.u. feeder-head jumper gives
/// a floor of about 10⁻⁵ p.u., 0.0001 MW on its 10 MVA base, is solved.)
pub fn max_mismatch_floor_pu(base_mva: f64) -> f64 {
    let mw = MAX_MISMATCH_FLOOR_MW / base_mva;
    if crate::mutants::active(crate::mutants::Mutation::PfFloorCapMwOnly) {
        return mw;
    }
    mw.min(MAX_MISMATCH_FLOOR_PU)
}

/// The rounding floor of one equation of bus `i`'s computed mismatch
/// `V_i conj(Σ_k Y_ik V_k) − S_i` in double precision:
///
/// `(m + 4) ε (|V_i| Σ_k A_ik |V_k| + |S|_i)`,
///
/// `ε` = [`f64::EPSILON`] (twice the unit roundoff `u`). `A_ik` is the sum
/// of the magnitudes of the branch and shunt terms that were added into
/// `Y_ik` (a branch end's series admittance and charging counted apart,
/// as they can cancel within its term), and `|S|_i` the sum of the magnitudes of the parts (the load,
/// each generator) that were added into the equation's specified injection:
/// its real parts for the P equation, its reactive parts for the Q
/// equation (a PV bus's `Qg` is in no equation the flow checks). `m`
/// counts the terms of the rounding: the row's entries, the most terms
/// summed into one entry and the parts of the injection.
///
/// Building `Y_ik` from terms of magnitudes summing to `A_ik` rounds it
/// by up to about `(t + c) u A_ik` (`t` terms, a few `u` per term's own
/// product and inverse), and the parts of `S_i` likewise; the standard
/// bound on the computed row sum `Σ_k Y_ik V_k` of `r` products is
/// `γ_r Σ |Y_ik||V_k|` with `γ_r ≈ r u` and `|Y_ik| ≤ A_ik`; each complex
/// product adds at most `√5 u` relative, the product with `V_i` and the
/// subtraction of `S_i` a few `u` more; `(m + 4) ε` covers these with a
/// factor of about two to spare. So the floor bounds how far the computed
/// mismatch can be from the true mismatch *of the case's own data*: a
/// computed mismatch below it is indistinguishable from zero, and terms
/// that cancel when summed (two parallel branches of admittance `±j5·10¹⁶`
/// p.u., generators of `±10¹⁷` MW at one bus) keep the floor of their
/// magnitudes, so the case is refused ([`ModelError::MismatchFloor`])
/// rather than solved as the network rounding left. The floor depends only
/// on the data and `V`, never on the iterates' progress, so it cannot
/// excuse a mismatch above the physical tolerance for any reason other
/// than rounding; for the shipped cases it is below 10⁻¹² p.u.
pub fn mismatch_floor(vm_i: f64, abs_current_i: f64, terms: usize, s_parts_i: f64) -> f64 {
    (terms as f64 + 4.0) * f64::EPSILON * (vm_i * abs_current_i + s_parts_i)
}

/// Most multiply-adds one Newton step's LU may take, by the banded bound
/// ([`band_lu_work`] of the Jacobian in reverse Cuthill–McKee order):
/// 2·10⁹, of the order of seconds per step in a release build (ten steps
/// at most). A radial feeder of the 5 000 buses [`MAX_MODEL_BUSES`](crate::MAX_MODEL_BUSES) allows
/// needs about 2·10⁵; a meshed case of `n` buses and ordered bandwidth `β`
/// about `16 n β²` (3 000 buses: `β` up to about 200). What needs more is
/// refused ([`ModelError::TooMuchAcWork`]) before anything of its size is
/// built. A known limitation: the bound is the band's, not the fill's, so
/// a radial feeder whose widest breadth-first level is wide (hundreds of
/// laterals from one bus), though its LU has no fill, and MATPOWER's meshed
/// cases from about 2 000 buses up are refused.
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

    // specified injections and initial voltages; beside each bus's
    // injection the sums of the magnitudes of its real and reactive parts
    // and their number (for the rounding floor: [`mismatch_floor`])
    let mut sbus = vec![C64::ZERO; n];
    let mut s_parts = vec![(0.0f64, 0.0f64, 0usize); n];
    let mut vm = vec![1.0; n];
    let mut va = vec![0.0; n];
    let mut kind = vec![BusType::Pq; n];
    for (k, &i) in live.iter().enumerate() {
        let b = &case.buses[i];
        sbus[k] = C64::new(-b.pd, -b.qd).scale(1.0 / case.base_mva);
        s_parts[k] = (sbus[k].re.abs(), sbus[k].im.abs(), 1);
        vm[k] = b.vm;
        va[k] = b.va_deg.to_radians();
        kind[k] = b.kind;
    }
    let mut has_gen = vec![false; n];
    for g in case.gens.iter().filter(|g| g.in_service) {
        if let Some(k) = pos(g.bus) {
            let sg = C64::new(g.pg, g.qg).scale(1.0 / case.base_mva);
            sbus[k] = sbus[k] + sg;
            let p = &mut s_parts[k];
            *p = (p.0 + sg.re.abs(), p.1 + sg.im.abs(), p.2 + 1);
            has_gen[k] = true;
            if kind[k] != BusType::Pq {
                vm[k] = g.vg;
            }
        }
    }
    // MATPOWER's `bustypes`: a PV or reference bus without an in-service
    // generator is a PQ bus; with no reference bus left, the first PV bus
    // (in the case's bus order) becomes the reference, and with none
    // either the case has no slack and is refused
    for k in 0..n {
        if kind[k] != BusType::Pq && !has_gen[k] {
            kind[k] = BusType::Pq;
        }
    }
    if !kind.contains(&BusType::Ref) {
        let first_pv = (0..n).find(|&k| kind[k] == BusType::Pv).ok_or(ModelError::NoSlackGenerator)?;
        kind[first_pv] = BusType::Ref;
    }
    // unknowns: bus k's angle at 2·slot[k] (not at the reference) and its
    // magnitude at 2·slot[k] + 1 (PQ buses only); equations: its P mismatch
    // and Q mismatch in the same places. A fixed unknown keeps an identity
    // row (its step is 0), so the system is MATPOWER's reduced one.
    let free_va: Vec<bool> = (0..n).map(|k| kind[k] != BusType::Ref).collect();
    let free_vm: Vec<bool> = (0..n).map(|k| kind[k] == BusType::Pq).collect();

    // the physical tolerance, in p.u. and in MW on this base
    let tol = opts.tol_pu(case.base_mva);
    let mut v: Vec<C64> = (0..n).map(|k| C64::polar(vm[k], va[k])).collect();
    let mismatch = |v: &[C64]| -> (Vec<C64>, Vec<f64>, f64, bool, f64) {
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
        // each bus's equations are held to the physical tolerance or, where
        // larger, their rounding floor; a NaN mismatch never passes
        let (mut within, mut floor) = (true, 0.0f64);
        // (each equation by the magnitudes of what it contains: P parts for
        // the P equation, Q parts for the Q equation of a PQ bus)
        for (k, (sum, terms)) in yb.abs_current(v).into_iter().enumerate() {
            let (p_parts, q_parts, count) = s_parts[k];
            let eqs = [(free_va[k], 2 * slot[k], p_parts), (free_vm[k], 2 * slot[k] + 1, q_parts)];
            for (free, e, parts) in eqs {
                if !free {
                    continue;
                }
                let fl = mismatch_floor(v[k].abs(), sum, terms + count, parts);
                floor = if fl.is_nan() { f64::INFINITY } else { floor.max(fl) };
                within &= f[e].abs() <= tol.max(fl);
            }
        }
        (ib, f, norm, within, floor)
    };
    let (mut ib, mut f, mut norm, mut within, mut floor) = mismatch(&v);
    let mut it = 0;
    while !within {
        if it >= opts.max_iter || !norm.is_finite() {
            return Err(ModelError::NoConvergence { iterations: it, mismatch: norm, tol, tol_mw: tol * case.base_mva });
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
        (ib, f, norm, within, floor) = mismatch(&v);
    }
    let max_floor = max_mismatch_floor_pu(case.base_mva);
    if floor.is_nan() || floor > max_floor {
        return Err(ModelError::MismatchFloor { floor, max: max_floor });
    }

    // results
    let sinj: Vec<C64> = (0..n).map(|k| (v[k] * ib[k].conj()).scale(case.base_mva)).collect();
    let total_load_mw: f64 = live.iter().map(|&i| case.buses[i].pd).sum();
    let refk = (0..n).find(|&k| kind[k] == BusType::Ref).ok_or(ModelError::NoReference)?;
    let ref_load = &case.buses[live[refk]];
    let ref_p_mw = sinj[refk].re + ref_load.pd;
    let ref_q_mvar = sinj[refk].im + ref_load.qd;
    // the reference bus's generation is what the flow finds there; every
    // other in-service generator at a bus of the flow's network adds its
    // set-point (one at an isolated bus is in no network: MATPOWER's
    // `ext2int` drops it with its bus)
    let mut total_gen_mw = ref_p_mw;
    for g in case.gens.iter().filter(|g| g.in_service) {
        if pos(g.bus).is_some_and(|k| k != refk) {
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
        tol_pu: tol,
        mismatch_tol_pu: tol.max(floor),
        min_vm: buses[min_k].vm,
        min_vm_bus: buses[min_k].id,
        max_vm: buses[max_k].vm,
        max_vm_bus: buses[max_k].id,
        buses,
        loss_mw,
        loss_mvar,
        total_gen_mw,
        total_load_mw,
        ref_bus: ids[refk],
        ref_p_mw,
        ref_q_mvar,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor bounds the rounding of a computed mismatch: the same sum
    /// of a stiff row (a 10⁸ p.u. jumper beside ordinary lines) evaluated
    /// in every order of its terms spreads by less than twice the floor,
    /// while the spread is far above the absolute 10⁻⁸ p.u. the
    /// Newton–Raphson iterates could otherwise never meet.
    #[test]
    fn mismatch_floor_bounds_the_rounding_of_a_stiff_row() {
        let big = C64::new(5.8e-9, 2.9e-9).inv();
        let small = C64::new(0.0575, 0.0293).inv();
        let y = [big + small, -big, -small];
        let v = [C64::polar(0.99970001, -0.0000123), C64::polar(1.0, 0.0), C64::polar(0.99700003, 0.0011)];
        let s = C64::new(-0.01, -0.006);
        let abs_sum: f64 = y.iter().zip(&v).map(|(a, b)| a.abs() * b.abs()).sum();
        let floor = mismatch_floor(v[0].abs(), abs_sum, 3, s.abs());
        let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let mis: Vec<C64> = perms
            .iter()
            .map(|p| {
                let i = p.iter().fold(C64::ZERO, |acc, &k| acc + y[k] * v[k]);
                v[0] * i.conj() - s
            })
            .collect();
        let spread = mis
            .iter()
            .flat_map(|a| mis.iter().map(move |b| (a.re - b.re).abs().max((a.im - b.im).abs())))
            .fold(0.0f64, f64::max);
        assert!(spread > 0.0 && spread < 2.0 * floor, "spread {spread:e}, floor {floor:e}");
        assert!(floor > 1e-8 && floor < max_mismatch_floor_pu(1000.0), "{floor:e}");
        // an ordinary row's floor is far below the physical tolerance
        let ordinary = mismatch_floor(1.0, 2.0 * small.abs(), 3, 0.01);
        assert!(ordinary < 1e-12, "{ordinary:e}");
    }

    const FEEDER: &str = "function mpc = jumper\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n \
        1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
        3 1 1 0.6 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\n\
        mpc.branch = [\n 1 2 R X 0 0 0 0 0 0 1;\n 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n";

    fn feeder(r: &str, x: &str) -> Case {
        Case::parse(&FEEDER.replace("R X", &format!("{r} {x}"))).unwrap()
    }

    /// The rule end to end: an ordinary jumper is held to the physical
    /// tolerance; a near-zero one to its rounding floor (reported, and the
    /// same voltages); one whose floor passes [`max_mismatch_floor_pu`] is
    /// refused, never reported as converged.
    #[test]
    fn jumpers_are_held_to_the_tolerance_their_rounding_allows() {
        let plain = run_pf(&feeder("0.0922", "0.0470"), PfOptions::default()).unwrap();
        assert_eq!(plain.mismatch_tol_pu, 1e-8);
        assert!(plain.max_mismatch_pu <= 1e-8);
        let near = run_pf(&feeder("5.8e-9", "2.9e-9"), PfOptions::default()).unwrap();
        assert!(near.mismatch_tol_pu > 1e-8 && near.mismatch_tol_pu <= max_mismatch_floor_pu(10.0), "{near:?}");
        assert!(near.max_mismatch_pu <= near.mismatch_tol_pu, "{near:?}");
        // the jumper ties bus 2 to the reference: bus 3's voltage is the one
        // behind the 2-3 line alone
        let lone = run_pf(
            &Case::parse(
                &FEEDER
                    .replace(" 2 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n", "")
                    .replace(" 1 2 R X 0 0 0 0 0 0 1;\n 2 3", " 1 3"),
            )
            .unwrap(),
            PfOptions::default(),
        )
        .unwrap();
        assert!((near.min_vm - lone.min_vm).abs() < 1e-9, "{} vs {}", near.min_vm, lone.min_vm);
        assert!(lone.min_vm < 0.995, "{}", lone.min_vm);
        match run_pf(&feeder("5.8e-13", "2.9e-13"), PfOptions::default()) {
            Err(ModelError::MismatchFloor { floor, max }) => {
                assert!(floor > max && max == max_mismatch_floor_pu(10.0), "{floor:e}")
            }
            other => panic!("expected MismatchFloor, got {other:?}"),
        }
    }

    /// The cap on the floor is 0.001 MW on the case's base (attack r20
    /// [1]): a jumper of 6.2·10⁻¹⁰ p.u. (MATPOWER's `case16am` head) leaves
    /// a floor of about 10⁻⁵ p.u., 0.0001 MW on a 10 MVA base, and solves as
    /// the feeder without it; the same network on a 1 000 MVA base, where
    /// that floor is 0.01 MW, is refused.
    #[test]
    fn the_floor_is_capped_at_a_thousandth_of_a_megawatt_on_the_case_base() {
        assert_eq!(max_mismatch_floor_pu(10.0), 1e-4);
        assert_eq!(max_mismatch_floor_pu(1000.0), 1e-6);
        let lone = |base: &str| {
            Case::parse(
                &FEEDER
                    .replace("baseMVA = 10;", &format!("baseMVA = {base};"))
                    .replace(" 2 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n", "")
                    .replace(" 1 2 R X 0 0 0 0 0 0 1;\n 2 3", " 1 3"),
            )
            .unwrap()
        };
        let at = |base: &str| {
            Case::parse(&FEEDER.replace("baseMVA = 10;", &format!("baseMVA = {base};")).replace("R X", "0 6.2e-10"))
                .unwrap()
        };
        let r = run_pf(&at("10"), PfOptions::default()).unwrap();
        assert!(r.mismatch_tol_pu > 1e-6 && r.mismatch_tol_pu <= 1e-4, "{r:?}");
        assert!(r.mismatch_tol_pu * 10.0 <= MAX_MISMATCH_FLOOR_MW, "{r:?}");
        let plain = run_pf(&lone("10"), PfOptions::default()).unwrap();
        assert!((r.min_vm - plain.min_vm).abs() < 1e-8 && (r.loss_mw - plain.loss_mw).abs() < 1e-6, "{r:?}");
        // the same data on a 1 000 MVA base (the load is a hundredth in
        // p.u., the jumper's floor the same): 0.01 MW uncertain, refused
        assert!(run_pf(&lone("1000"), PfOptions::default()).is_ok());
        match run_pf(&at("1000"), PfOptions::default()) {
            Err(ModelError::MismatchFloor { floor, max }) => {
                assert!(max == 1e-6 && floor > max && floor * 1000.0 > MAX_MISMATCH_FLOOR_MW, "{floor:e}")
            }
            other => panic!("expected MismatchFloor, got {other:?}"),
        }
    }

    /// The tolerance and the floor cap hold in both units whatever the
    /// base (attack r21): on a huge base the tolerance is 10⁻⁶ MW, not
    /// 10⁻⁸ p.u. (10 MW on 10⁹ MVA), and on a tiny base the floor cap is
    /// 10⁻³ p.u., not 0.001 MW (10³ p.u. on 10⁻⁶ MVA); from 1 MVA up the
    /// cap is 0.001 MW alone (attack r23).
    #[test]
    fn tolerance_and_floor_cap_hold_in_mw_and_in_pu() {
        let o = PfOptions::default();
        assert_eq!(o.tol_pu(100.0), 1e-8);
        assert_eq!(o.tol_pu(10.0), 1e-8);
        assert_eq!(o.tol_pu(1e-6), 1e-8);
        assert!((o.tol_pu(1e9) - 1e-15).abs() < 1e-30, "{:e}", o.tol_pu(1e9));
        assert_eq!(max_mismatch_floor_pu(1.0), 1e-3);
        assert_eq!(max_mismatch_floor_pu(10.0), 1e-4);
        assert_eq!(max_mismatch_floor_pu(1e-6), 1e-3);
        assert!((max_mismatch_floor_pu(1e9) - 1e-12).abs() < 1e-27);
        // a 5 MW load on 10⁹ MVA is solved, not passed at the flat start
        let huge = FEEDER.replace("baseMVA = 10;", "baseMVA = 1e9;").replace("R X", "0.0922 0.0470");
        let huge = Case::parse(&huge.replace(" 3 1 1 0.6 ", " 3 1 5 3 ")).unwrap();
        let r = run_pf(&huge, PfOptions::default()).unwrap();
        assert!(r.iterations >= 1 && (r.total_gen_mw - 5.0).abs() < 1e-3, "{r:?}");
        assert!((r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() <= MAX_MISMATCH_FLOOR_MW, "{r:?}");
        assert!(r.mismatch_tol_pu * 1e9 <= MAX_MISMATCH_FLOOR_MW, "{r:?}");
        // a jumper of 6.2·10⁻¹⁰ p.u. on 1 MVA: a floor of about 10⁻⁵ p.u.
        // is within both caps and solved (case16am's own jumper on 1 MVA,
        // 6.2·10⁻¹¹ p.u., is tests/attack_market_r23.rs)
        let one = Case::parse(&FEEDER.replace("baseMVA = 10;", "baseMVA = 1;").replace("R X", "0 6.2e-10")).unwrap();
        let r = run_pf(&one, PfOptions::default()).unwrap();
        assert!(r.mismatch_tol_pu <= MAX_MISMATCH_FLOOR_PU, "{r:?}");
    }

    /// Terms that cancel when summed keep the floor of their magnitudes
    /// (attack r19 [1], [2]): a resonant pair of branches (`x = ±2·10⁻¹⁷`)
    /// beside line 1-2, or generators of `±10¹⁷` MW at the load bus, are
    /// refused with `MismatchFloor` instead of solved as the network and
    /// injections rounding left; a pair of ordinary size that cancels
    /// (`x = ±0.1`) still solves as the plain feeder.
    #[test]
    fn terms_that_cancel_keep_the_floor_of_their_magnitudes() {
        let plain = run_pf(&feeder("0.0922", "0.0470"), PfOptions::default()).unwrap();
        let lc = Case::parse(&FEEDER.replace(
            " 1 2 R X 0 0 0 0 0 0 1;\n",
            " 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 1 2 0 2e-17 0 0 0 0 0 0 1;\n 1 2 0 -2e-17 0 0 0 0 0 0 1;\n",
        ))
        .unwrap();
        match run_pf(&lc, PfOptions::default()) {
            Err(ModelError::MismatchFloor { floor, max }) => assert!(floor > 1.0 && max == max_mismatch_floor_pu(10.0)),
            other => panic!("expected MismatchFloor, got {other:?}"),
        }
        let gens = Case::parse(
            &FEEDER.replace("R X", "0.0922 0.0470").replace(
                " 1 0 0 10 -10 1 100 1 10 0;\n",
                " 1 0 0 10 -10 1 100 1 10 0;\n 3 1e17 0 10 -10 1 100 1 1e30 -1e30;\n 3 -1e17 0 10 -10 1 100 1 1e30 -1e30;\n",
            ),
        )
        .unwrap();
        match run_pf(&gens, PfOptions::default()) {
            Err(ModelError::MismatchFloor { floor, .. }) => assert!(floor > 1.0, "{floor:e}"),
            other => panic!("expected MismatchFloor, got {other:?}"),
        }
        // the same within one branch end: a series admittance of −j3.3·10¹⁶
        // p.u. and a charging of +j3.3·10¹⁶ at bus 2, behind a tap of 10²⁰
        // that leaves the branch's coupling at 3·10⁻⁴ p.u.
        let charged = Case::parse(&FEEDER.replace(
            " 1 2 R X 0 0 0 0 0 0 1;\n",
            " 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 1 2 0 3e-17 6.6666666666666667e16 0 0 0 1e20 0 1;\n",
        ))
        .unwrap();
        match run_pf(&charged, PfOptions::default()) {
            Err(ModelError::MismatchFloor { floor, .. }) => assert!(floor > 1.0, "{floor:e}"),
            other => panic!("expected MismatchFloor, got {other:?}"),
        }
        let ordinary = Case::parse(&FEEDER.replace(
            " 1 2 R X 0 0 0 0 0 0 1;\n",
            " 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 1 2 0 0.1 0 0 0 0 0 0 1;\n 1 2 0 -0.1 0 0 0 0 0 0 1;\n",
        ))
        .unwrap();
        let r = run_pf(&ordinary, PfOptions::default()).unwrap();
        assert_eq!(r.mismatch_tol_pu, 1e-8);
        assert!((r.min_vm - plain.min_vm).abs() < 1e-9 && (r.loss_mw - plain.loss_mw).abs() < 1e-9, "{r:?}");
    }

    /// The shipped cases are held to the physical tolerance: their rounding
    /// floors (below 10⁻¹² p.u.) never loosen it, so their flows are the
    /// ones MATPOWER's criterion gives.
    #[test]
    fn shipped_cases_are_held_to_the_physical_tolerance() {
        for text in [crate::CASE30, crate::CASE33BW] {
            let r = run_pf(&Case::parse(text).unwrap(), PfOptions::default()).unwrap();
            assert_eq!(r.mismatch_tol_pu, 1e-8);
            assert!(r.max_mismatch_pu <= 1e-8);
            assert_eq!(r.ref_bus, 1);
        }
    }

    /// MATPOWER's `bustypes` (attack r19 [5]): a reference bus without an
    /// in-service generator is a PQ bus and the first PV bus with one
    /// takes its place — the flow is that of the case with the two types
    /// swapped; with no such PV bus the case is refused.
    #[test]
    fn a_reference_bus_without_a_generator_hands_over_to_the_first_pv_bus() {
        let text = FEEDER.replace("R X", "0.0922 0.0470").replace(
            " 1 0 0 10 -10 1 100 1 10 0;\n",
            " 1 0 0 10 -10 1 100 0 10 0;\n 2 0.2 0 10 -10 1.01 100 1 10 0;\n",
        );
        let handed = text.replace(" 2 1 0 0 0 0 1 1 0 12.66", " 2 2 0 0 0 0 1 1 0 12.66");
        let swapped = handed
            .replace(" 1 3 0 0 0 0 1 1 0 12.66", " 1 1 0 0 0 0 1 1 0 12.66")
            .replace(" 2 2 0 0 0 0 1 1 0 12.66", " 2 3 0 0 0 0 1 1 0 12.66");
        let a = run_pf(&Case::parse(&handed).unwrap(), PfOptions::default()).unwrap();
        let b = run_pf(&Case::parse(&swapped).unwrap(), PfOptions::default()).unwrap();
        assert_eq!((a.ref_bus, b.ref_bus), (2, 2));
        for (x, y) in a.buses.iter().zip(&b.buses) {
            assert!((x.vm - y.vm).abs() < 1e-12 && (x.va_deg - y.va_deg).abs() < 1e-10, "{x:?} vs {y:?}");
        }
        assert!((a.ref_p_mw - b.ref_p_mw).abs() < 1e-9 && (a.total_gen_mw - b.total_gen_mw).abs() < 1e-9);
        assert!((a.total_gen_mw - a.total_load_mw - a.loss_mw).abs() < 1e-6, "{a:?}");
        // bus 2 as a PQ bus: no slack left
        assert_eq!(
            run_pf(&Case::parse(&text).unwrap(), PfOptions::default()).unwrap_err(),
            ModelError::NoSlackGenerator
        );
    }
}
