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
    /// Path resistance matrix `R` (n × n, row-major), p.u.
    pub r_path: Vec<f64>,
    /// Path reactance matrix `X` (n × n, row-major), p.u.
    pub x_path: Vec<f64>,
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
        // R_jk = resistance from the root to the lowest common ancestor of
        // j and k. Row by row in BFS order: R_jk = rr_j when k lies in j's
        // subtree, else R_{parent(j),k} — O(n²) with an Euler tour.
        let mut rr = vec![0.0; n];
        let mut xx = vec![0.0; n];
        for &u in order.iter().skip(1) {
            let (p, b) = (parent[u].unwrap_or(root), parent_branch[u].unwrap_or(0));
            rr[u] = rr[p] + case.branches[b].r;
            xx[u] = xx[p] + case.branches[b].x;
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
            for k in 0..n {
                let inside = tin[j] <= tin[k] && tin[k] < tout[j];
                let (r, x) = if inside { (rr[j], xx[j]) } else { (r_path[p * n + k], x_path[p * n + k]) };
                r_path[j * n + k] = r;
                x_path[j * n + k] = x;
            }
        }
        let v0 = case.gens.iter().find(|g| g.in_service && g.bus == root_bus.id).map(|g| g.vg).unwrap_or(root_bus.vm);
        let v_bounds = live.iter().map(|&i| (case.buses[i].vmin, case.buses[i].vmax)).collect();
        Ok(DistFlow { bus_ids, root, parent, parent_branch, v0_sq: v0 * v0, r_path, x_path, v_bounds, tin, tout })
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

    /// Squared voltage magnitudes for injections `p`, `q` (p.u.).
    pub fn voltages_sq(&self, p: &[f64], q: &[f64]) -> Vec<f64> {
        let n = self.bus_ids.len();
        (0..n)
            .map(|j| {
                self.v0_sq
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

    /// Active power flowing into each bus from its parent (0 at the root), p.u.
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
