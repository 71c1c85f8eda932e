//! The linearised DistFlow model (Baran & Wu 1989, "LinDistFlow") for radial
//! feeders, the network model of the seed's Eqs 6.3a–d.
//!
//! With the feeder rooted at the reference bus, every bus `j` other than the
//! root has one parent line `(i, j)` carrying `P_ij = −Σ_{k ∈ sub(j)} p_k`
//! (and likewise `Q_ij`), `p_k` the net injection at `k` (generation
//! positive), losses neglected. Squared voltage magnitudes `v = |V|²` follow
//! `v_j = v_i − 2 (r_ij P_ij + x_ij Q_ij)`, so
//! `v = v_0 1 + 2 R p + 2 X q` with `R_jk = Σ r` over the lines common to
//! the root paths of `j` and `k` (and `X` the same with `x`).
//! All quantities are per unit on the case's `baseMVA`.
//!
//! **Shunts.** A bus's shunt (`Gs`, `Bs`) and half the charging `b` of each
//! line ending at it are constant-admittance injections, `−g v` and `+b v`
//! (MATPOWER: `Gs` MW demanded and `Bs` MVAr injected at 1 p.u.). They are
//! linear in LinDistFlow's own variable `v = |V|²`, so the model keeps them
//! exactly as LinDistFlow's equations give them, with the voltage they are
//! at, not frozen at nominal voltage: `v` solves
//! `v = D v_0 + 2 R (p − g∘v) + 2 X (q + b∘v)`, a tree-structured system
//! solved by one sweep up and one down the feeder ([`DistFlow::solve`]).
//! (Leaving them out put MATPOWER's case18, 9.45 MVAr of capacitors on a
//! 10 MVA base, 0.11 p.u. low at its far end, and the market cleared to an
//! AC voltage 8 % above V max.)
//!
//! **Taps.** A branch with an off-nominal ratio `τ` at its `from` end
//! (MATPOWER's ideal transformer: the series impedance sees `V_from / τ`)
//! gives `v_to = v_from / τ² − 2 (r P + x Q)`, the flows taken at the
//! impedance; with the feeder's parent at the `to` end that reads
//! `v_child = τ² v_parent − 2 τ² (r P + x Q)`. Along a root path the
//! factors multiply: `D_j` is the product of the tap factors on bus `j`'s
//! path, and `R_jk = D_j Σ r_e c_e / D_e` over the lines common to the root
//! paths of `j` and `k` (`c_e` 1 or `τ²` as above, `D_e` the factor of the
//! line's lower bus). The charging at a tapped branch's `from` end is
//! `b / (2τ²)` of `v_from`, as in MATPOWER's branch admittance. An ideal
//! transformer is lossless: taps change no flow, only voltages.
//!
//! **Phase shifters** are ignored, exactly: on a tree a shift rotates the
//! angles of the buses below it and changes no magnitude and no flow (there
//! is no loop for it to drive a flow around).

use crate::case::Case;
use crate::{ModelError, MAX_DISTFLOW_ENTRIES};

/// A radial feeder's LinDistFlow model.
#[derive(Debug, Clone)]
pub struct DistFlow {
    /// Bus ids, in model order (isolated buses excluded).
    pub bus_ids: Vec<u32>,
    /// Index of the root (reference) bus.
    pub root: usize,
    /// Parent of each bus (None for the root).
    pub parent: Vec<Option<usize>>,
    /// For each non-root bus: its parent line's index in `Case::branches`.
    pub parent_branch: Vec<Option<usize>>,
    /// Squared voltage magnitude at the root, p.u.
    pub v0_sq: f64,
    /// Path resistance matrix `R` (n × n, row-major), p.u., tap factors
    /// included (see the module docs): `v = D v_0 + 2 R p + 2 X q` with
    /// `p`, `q` the injections including the shunts' at `v`.
    pub r_path: Vec<f64>,
    /// Path reactance matrix `X` (n × n, row-major), p.u., as `r_path`.
    pub x_path: Vec<f64>,
    /// `D_j`: the product of the tap factors on each bus's root path (1
    /// without taps; the root's `v_0` reaches bus `j` as `D_j v_0`).
    pub tap_factor: Vec<f64>,
    /// Shunt conductance at each bus, p.u. at 1 p.u. voltage (`Gs`).
    pub shunt_g: Vec<f64>,
    /// Shunt susceptance at each bus, p.u. at 1 p.u. voltage (`Bs` and half
    /// the charging of each line ending at the bus, over `τ²` at a tapped
    /// `from` end).
    pub shunt_b: Vec<f64>,
    /// Per non-root bus: its parent line's voltage factor `a` (`1/τ²` or
    /// `τ²`), impedance factor `c` (1 or `τ²`), `r` and `x`.
    line: Vec<Line>,
    /// The sweep's precomputed coefficients ([`DistFlow::solve`]).
    beta: Vec<f64>,
    delta: Vec<f64>,
    den: Vec<f64>,
    /// Breadth-first order from the root.
    order: Vec<usize>,
    /// Voltage bounds (min, max) of each bus, p.u.
    pub v_bounds: Vec<(f64, f64)>,
    /// Euler-tour entry time of each bus (depth-first from the root): bus
    /// `k` lies in `j`'s subtree iff `tin[j] ≤ tin[k] < tout[j]`.
    pub tin: Vec<usize>,
    /// Euler-tour exit time of each bus (see `tin`).
    pub tout: Vec<usize>,
}

impl DistFlow {
    /// Builds the model; refuses meshed networks.
    pub fn new(case: &Case) -> Result<DistFlow, ModelError> {
        let tree = Tree::new(case)?;
        let n = tree.bus_ids.len();
        // The market's rows (`MarketNetwork::distflow`): a V max / V min pair
        // per non-root bus and a forward / reverse pair per rated parent
        // line, each a dense row over the buses — bounded like the PTDF.
        let rows = tree.row_pairs(case);
        let entries = rows.saturating_mul(n);
        if entries > MAX_DISTFLOW_ENTRIES {
            return Err(ModelError::TooLargeDistFlow { rows, buses: n, entries, max: MAX_DISTFLOW_ENTRIES });
        }
        let Tree { live, bus_ids, root, parent, parent_branch, order } = tree;
        let root_bus = &case.buses[case.ref_index()];
        // each non-root bus's parent line: tap factors (module docs), r, x
        let mut line = vec![Line { a: 1.0, c: 1.0, r: 0.0, x: 0.0 }; n];
        let (mut shunt_g, mut shunt_b) = (vec![0.0; n], vec![0.0; n]);
        for (k, &i) in live.iter().enumerate() {
            shunt_g[k] = case.buses[i].gs / case.base_mva;
            shunt_b[k] = case.buses[i].bs / case.base_mva;
        }
        for &u in order.iter().skip(1) {
            let (p, b) = (parent[u].unwrap_or(root), parent_branch[u].unwrap_or(0));
            let br = &case.branches[b];
            let tau_sq = br.tap * br.tap;
            let parent_is_from = br.from == bus_ids[p];
            line[u] = if parent_is_from {
                Line { a: 1.0 / tau_sq, c: 1.0, r: br.r, x: br.x }
            } else {
                Line { a: tau_sq, c: tau_sq, r: br.r, x: br.x }
            };
            // line charging: b/2 at each end, over τ² at the `from` end
            let (from, to) = if parent_is_from { (p, u) } else { (u, p) };
            shunt_b[from] += br.b / (2.0 * tau_sq);
            shunt_b[to] += br.b / 2.0;
        }
        if crate::mutants::active(crate::mutants::Mutation::DistFlowShuntsDropped) {
            shunt_g.iter_mut().chain(shunt_b.iter_mut()).for_each(|v| *v = 0.0);
        }
        // R_jk = D_j Σ r_e c_e / D_e over the lines common to the root paths
        // of j and k (module docs): rr'_u = rr'_parent + r c / D_u, and
        // R_jk = D_j rr'_lca. Row by row in BFS order: R_jk = D_j rr'_j when
        // k lies in j's subtree, else a_j R_{parent(j),k} — O(n²) with an
        // Euler tour. Without taps D = a = c = 1 and R_jk = rr_lca.
        let mut rr = vec![0.0; n];
        let mut xx = vec![0.0; n];
        let mut tap_factor = vec![1.0; n];
        for &u in order.iter().skip(1) {
            let p = parent[u].unwrap_or(root);
            let l = line[u];
            tap_factor[u] = tap_factor[p] * l.a;
            rr[u] = rr[p] + l.r * (l.c / tap_factor[u]);
            xx[u] = xx[p] + l.x * (l.c / tap_factor[u]);
            if !(tap_factor[u].is_finite() && rr[u].is_finite() && xx[u].is_finite()) {
                return Err(ModelError::Numerical { what: "a LinDistFlow tap factor" });
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &u in order.iter().skip(1) {
            children[parent[u].unwrap_or(root)].push(u);
        }
        let (mut tin, mut tout) = (vec![0usize; n], vec![0usize; n]);
        let mut clock = 0;
        let mut stack = vec![(root, false)];
        while let Some((u, done)) = stack.pop() {
            if done {
                tout[u] = clock;
                continue;
            }
            tin[u] = clock;
            clock += 1;
            stack.push((u, true));
            stack.extend(children[u].iter().map(|&c| (c, false)));
        }
        let mut r_path = vec![0.0; n * n];
        let mut x_path = vec![0.0; n * n];
        for &j in order.iter().skip(1) {
            let p = parent[j].unwrap_or(root);
            let (d, a) = (tap_factor[j], line[j].a);
            for k in 0..n {
                let inside = tin[j] <= tin[k] && tin[k] < tout[j];
                let (r, x) =
                    if inside { (d * rr[j], d * xx[j]) } else { (a * r_path[p * n + k], a * x_path[p * n + k]) };
                r_path[j * n + k] = r;
                x_path[j * n + k] = x;
            }
        }
        // the sweep's coefficients, leaves first: the flow into bus u is
        // `α_u + β_u v_u` (and `γ_u + δ_u v_u`), β and δ the shunts' share
        // of the subtree; `den_u = 1 + 2 c (r β_u + x δ_u)` divides v_u
        let (mut beta, mut delta, mut den) =
            (shunt_g.clone(), shunt_b.iter().map(|b| -b).collect::<Vec<_>>(), vec![1.0; n]);
        for &u in order.iter().rev() {
            let Some(p) = parent[u] else { continue };
            let l = line[u];
            den[u] = 1.0 + 2.0 * l.c * (l.r * beta[u] + l.x * delta[u]);
            // below 1/2 the shunts beneath u more than double its voltage's
            // response: an over-compensated feeder no linear model represents
            if !(den[u] >= 0.5 && den[u].is_finite()) {
                return Err(ModelError::DistFlowOutOfRange { bus: bus_ids[u], factor: den[u] });
            }
            beta[p] += beta[u] * l.a / den[u];
            delta[p] += delta[u] * l.a / den[u];
        }
        let v0 = case.gens.iter().find(|g| g.in_service && g.bus == root_bus.id).map(|g| g.vg).unwrap_or(root_bus.vm);
        let v_bounds = live.iter().map(|&i| (case.buses[i].vmin, case.buses[i].vmax)).collect();
        Ok(DistFlow {
            bus_ids,
            root,
            parent,
            parent_branch,
            v0_sq: v0 * v0,
            r_path,
            x_path,
            tap_factor,
            shunt_g,
            shunt_b,
            line,
            beta,
            delta,
            den,
            order,
            v_bounds,
            tin,
            tout,
        })
    }

    /// True when the model has no shunt (no `Gs`, `Bs` or line charging):
    /// its voltages are then `D v_0 + 2 R p + 2 X q` in closed form.
    pub fn shunt_free(&self) -> bool {
        self.shunt_g.iter().chain(&self.shunt_b).all(|v| *v == 0.0)
    }

    /// The LinDistFlow state of injections `p`, `q` (p.u., model order, the
    /// loads' and generators' and the market's; the shunts' are solved
    /// with the voltages) with `v0_sq` at the root: squared voltages and
    /// the flows into each bus from its parent (0 at the root), shunts
    /// included. O(n): one sweep from the leaves, one from the root. Linear
    /// in `(p, q, v0_sq)`: with `v0_sq = 0` it gives the sensitivities.
    pub fn solve(&self, p: &[f64], q: &[f64], v0_sq: f64) -> DistFlowState {
        let n = self.bus_ids.len();
        // α, γ: the parts of the flows into u not proportional to v_u
        let mut alpha: Vec<f64> = (0..n).map(|k| -p.get(k).copied().unwrap_or(0.0)).collect();
        let mut gamma: Vec<f64> = (0..n).map(|k| -q.get(k).copied().unwrap_or(0.0)).collect();
        let mut e = vec![0.0; n];
        for &u in self.order.iter().rev() {
            let Some(par) = self.parent[u] else { continue };
            let l = self.line[u];
            e[u] = 2.0 * l.c * (l.r * alpha[u] + l.x * gamma[u]);
            alpha[par] += alpha[u] - self.beta[u] * e[u] / self.den[u];
            gamma[par] += gamma[u] - self.delta[u] * e[u] / self.den[u];
        }
        let mut v = vec![0.0; n];
        let (mut p_in, mut q_in) = (vec![0.0; n], vec![0.0; n]);
        v[self.root] = v0_sq;
        for &u in &self.order {
            let Some(par) = self.parent[u] else { continue };
            v[u] = (self.line[u].a * v[par] - e[u]) / self.den[u];
            p_in[u] = alpha[u] + self.beta[u] * v[u];
            q_in[u] = gamma[u] + self.delta[u] * v[u];
        }
        DistFlowState { v, p_in, q_in }
    }

    /// Net injections `(p, q)` of the case's loads (and in-service generators
    /// other than at the root), p.u., model bus order.
    pub fn case_injections(&self, case: &Case) -> (Vec<f64>, Vec<f64>) {
        let n = self.bus_ids.len();
        let (mut p, mut q) = (vec![0.0; n], vec![0.0; n]);
        for (i, id) in self.bus_ids.iter().enumerate() {
            if let Some(b) = case.buses.iter().find(|b| b.id == *id) {
                p[i] -= b.pd / case.base_mva;
                q[i] -= b.qd / case.base_mva;
            }
            if i != self.root {
                for g in case.gens.iter().filter(|g| g.in_service && g.bus == *id) {
                    p[i] += g.pg / case.base_mva;
                    q[i] += g.qg / case.base_mva;
                }
            }
        }
        (p, q)
    }

    /// Squared voltage magnitudes for injections `p`, `q` (p.u.; the
    /// shunts' own injections are solved with them, [`DistFlow::solve`]).
    /// Without shunts, in closed form: `D v_0 + 2 R p + 2 X q`.
    pub fn voltages_sq(&self, p: &[f64], q: &[f64]) -> Vec<f64> {
        if !self.shunt_free() {
            return self.solve(p, q, self.v0_sq).v;
        }
        let n = self.bus_ids.len();
        (0..n)
            .map(|j| {
                self.tap_factor[j] * self.v0_sq
                    + 2.0 * (0..n).map(|k| self.r_path[j * n + k] * p[k] + self.x_path[j * n + k] * q[k]).sum::<f64>()
            })
            .collect()
    }

    /// True when bus `k` lies in the subtree rooted at bus `j` (model
    /// indices; false for indices out of range). O(1), from the Euler tour.
    pub fn in_subtree(&self, k: usize, j: usize) -> bool {
        match (self.tin.get(k), self.tin.get(j), self.tout.get(j)) {
            (Some(&tk), Some(&tj), Some(&oj)) => tj <= tk && tk < oj,
            _ => false,
        }
    }

    /// Active power flowing into each bus from its parent (0 at the root),
    /// p.u., of the injections `p` alone (the shunts' are in
    /// [`DistFlow::solve`]'s flows).
    pub fn parent_flows(&self, p: &[f64]) -> Vec<f64> {
        let n = self.bus_ids.len();
        let mut flow = vec![0.0; n];
        // sum of injections over each subtree, accumulated leaf to root:
        // the reverse of the Euler tour's preorder visits children first
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&j| std::cmp::Reverse(self.tin[j]));
        let mut sub = p.to_vec();
        for &j in &order {
            if let Some(pp) = self.parent[j] {
                flow[j] = -sub[j];
                sub[pp] += sub[j];
            }
        }
        flow
    }
}

/// A bus's parent line as the sweep reads it (module docs).
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Voltage factor: `v_child = a v_parent − c · 2 (r P + x Q)`.
    a: f64,
    /// Impedance factor.
    c: f64,
    r: f64,
    x: f64,
}

/// A LinDistFlow solution ([`DistFlow::solve`]), model order.
#[derive(Debug, Clone, PartialEq)]
pub struct DistFlowState {
    /// Squared voltage magnitudes, p.u.
    pub v: Vec<f64>,
    /// Active power into each bus from its parent (0 at the root), p.u.
    pub p_in: Vec<f64>,
    /// Reactive power into each bus from its parent, p.u.
    pub q_in: Vec<f64>,
}

/// The size of the market rows [`DistFlow::new`] would build for `case`
/// ([`crate::network::MarketNetwork::distflow`]): `(row pairs, buses)`, one
/// V max / V min pair per non-root bus and a forward / reverse pair per
/// rated parent line, each a dense row over the buses. Costs O(buses +
/// branches) and allocates nothing n²-sized, so a caller can budget the
/// model (and what an algorithm does with its rows) before building it.
/// Refuses meshed networks and more than [`MAX_MODEL_BUSES`](crate::MAX_MODEL_BUSES) buses as
/// [`DistFlow::new`] does; does not apply [`MAX_DISTFLOW_ENTRIES`].
pub fn row_pairs(case: &Case) -> Result<(usize, usize), ModelError> {
    let tree = Tree::new(case)?;
    Ok((tree.row_pairs(case), tree.bus_ids.len()))
}

/// The feeder's spanning tree from the reference bus (breadth first).
struct Tree {
    /// Case indices of the non-isolated buses, model order.
    live: Vec<usize>,
    bus_ids: Vec<u32>,
    root: usize,
    parent: Vec<Option<usize>>,
    parent_branch: Vec<Option<usize>>,
    /// Breadth-first order from the root.
    order: Vec<usize>,
}

impl Tree {
    /// The tree (the bus limit checked first; nothing n²-sized).
    fn new(case: &Case) -> Result<Tree, ModelError> {
        if !case.is_radial() {
            return Err(ModelError::NotRadial);
        }
        let buses = case.live_buses()?;
        let pos = |id: u32| buses.pos(id);
        let root = buses.reference(case)?;
        let n = buses.ids.len();
        let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
        for (k, br) in case.branches.iter().enumerate().filter(|(_, b)| b.in_service) {
            let (Some(f), Some(t)) = (pos(br.from), pos(br.to)) else { continue };
            adj[f].push((t, k));
            adj[t].push((f, k));
        }
        let mut parent = vec![None; n];
        let mut parent_branch = vec![None; n];
        let mut order = vec![root];
        let mut seen = vec![false; n];
        seen[root] = true;
        let mut head = 0;
        while head < order.len() {
            let u = order[head];
            head += 1;
            for &(v, k) in &adj[u] {
                if !seen[v] {
                    seen[v] = true;
                    parent[v] = Some(u);
                    parent_branch[v] = Some(k);
                    order.push(v);
                }
            }
        }
        if order.len() != n {
            return Err(ModelError::NotRadial);
        }
        Ok(Tree { live: buses.live, bus_ids: buses.ids, root, parent, parent_branch, order })
    }

    /// Row pairs of the market rows (see [`row_pairs`]).
    fn row_pairs(&self, case: &Case) -> usize {
        let rated = self.parent_branch.iter().filter(|b| b.is_some_and(|b| case.branches[b].rate_a > 0.0)).count();
        self.bus_ids.len().saturating_sub(1) + rated
    }
}
