//! Small linear programs for [`crate::framework::relieve_minima`], on the
//! market *aggregated by bus group* (one side's requests at one bus).
//!
//! The network rows see only bus injections, so whether a set of minima is
//! feasible depends only on each group's summed bounds `[Σ e_min, Σ e_max]`:
//! the programs here have one variable per group (at most two per bus,
//! whatever the number of requests) and no objective from the requests'
//! utilities, so a request's `a` or `b` cannot make them fail. Each is one
//! Clarabel solve.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT};

use crate::central::ClearError;
use crate::network::MarketNetwork;
use crate::problem::Side;

/// One bus group: its side, model bus index and summed maximum (kWh).
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub side: Side,
    pub bus: usize,
    pub hi: f64,
}

/// A linear program `min cᵀx` s.t. equality rows `a x = b` and inequality
/// rows `a x ≤ b`, assembled for Clarabel.
struct Lp {
    n: usize,
    c: Vec<f64>,
    eq: Vec<(Vec<(usize, f64)>, f64)>,
    le: Vec<(Vec<(usize, f64)>, f64)>,
}

/// A solved LP: primal `x` and the duals of the `≤` rows (in order).
struct Solved {
    x: Vec<f64>,
    z_le: Vec<f64>,
}

impl Lp {
    fn new(n: usize) -> Lp {
        Lp { n, c: vec![0.0; n], eq: Vec::new(), le: Vec::new() }
    }

    /// The rows of one copy of the aggregated market, its group variables
    /// at `off..off + groups.len()` with lower bounds `lo`: bounds, the
    /// balance (bought = sold) and the network rows. Returns the index of
    /// the first `≤` row of each group's lower bound.
    fn copy(&mut self, net: &MarketNetwork, groups: &[Group], lo: &[f64], off: usize) -> usize {
        let first = self.le.len();
        for (g, l) in lo.iter().enumerate() {
            self.le.push((vec![(off + g, -1.0)], -l));
        }
        for (g, gr) in groups.iter().enumerate() {
            self.le.push((vec![(off + g, 1.0)], gr.hi));
        }
        let sign = |g: &Group| if g.side == Side::Seller { 1.0 } else { -1.0 };
        self.eq.push((groups.iter().enumerate().map(|(g, gr)| (off + g, -sign(gr))).collect(), 0.0));
        for (row, h) in net.g.iter().zip(&net.h) {
            let a: Vec<(usize, f64)> = groups
                .iter()
                .enumerate()
                .filter(|(_, gr)| row[gr.bus] != 0.0)
                .map(|(g, gr)| (off + g, sign(gr) * row[gr.bus]))
                .collect();
            if !a.is_empty() {
                self.le.push((a, *h));
            } else if *h < 0.0 {
                // a row no group touches, violated by the background alone
                self.le.push((vec![(off, 0.0)], *h));
            }
        }
        first
    }

    /// `None` when the LP is (primal) infeasible.
    fn solve(self) -> Result<Option<Solved>, ClearError> {
        let (mut ai, mut aj, mut av, mut b) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, (a, rhs)) in self.eq.iter().chain(&self.le).enumerate() {
            for (j, v) in a {
                ai.push(row);
                aj.push(*j);
                av.push(*v);
            }
            b.push(*rhs);
        }
        let rows = b.len();
        let a_mat = CscMatrix::new_from_triplets(rows, self.n, ai, aj, av);
        let p_mat = CscMatrix::zeros((self.n, self.n));
        let cones = [SupportedConeT::ZeroConeT(self.eq.len()), SupportedConeT::NonnegativeConeT(self.le.len())];
        let settings =
            DefaultSettingsBuilder::default().verbose(false).build().map_err(|e| ClearError::Solver(e.to_string()))?;
        let mut solver = DefaultSolver::new(&p_mat, &self.c, &a_mat, &b, &cones, settings)
            .map_err(|e| ClearError::Solver(e.to_string()))?;
        solver.solve();
        let sol = &solver.solution;
        match sol.status {
            SolverStatus::Solved | SolverStatus::AlmostSolved => {}
            SolverStatus::PrimalInfeasible | SolverStatus::AlmostPrimalInfeasible => return Ok(None),
            s => return Err(ClearError::Solver(format!("{s:?}"))),
        }
        Ok(Some(Solved { x: sol.x.clone(), z_le: sol.z[self.eq.len()..].to_vec() }))
    }
}

/// Whether the groups' minima `lo` can be met together.
pub(crate) fn feasible(net: &MarketNetwork, groups: &[Group], lo: &[f64]) -> Result<bool, ClearError> {
    let mut lp = Lp::new(groups.len());
    lp.copy(net, groups, lo, 0);
    Ok(lp.solve()?.is_some())
}

/// For each group in `targets`, the largest total it can take with every
/// minimum at zero (one LP: one independent copy of the aggregated market
/// per target, each maximising its target). `None` when the market is
/// infeasible even without minima.
pub(crate) fn max_alone(
    net: &MarketNetwork,
    groups: &[Group],
    targets: &[usize],
) -> Result<Option<Vec<f64>>, ClearError> {
    let n = groups.len();
    let mut lp = Lp::new(n * targets.len());
    let zero = vec![0.0; n];
    for (q, t) in targets.iter().enumerate() {
        lp.copy(net, groups, &zero, q * n);
        lp.c[q * n + t] = -1.0;
    }
    Ok(lp.solve()?.map(|s| targets.iter().enumerate().map(|(q, t)| s.x[q * n + t].clamp(0.0, groups[*t].hi)).collect()))
}

/// One dispatch meeting as much of the groups' minima as it can: for each
/// group in `targets` with minimum `want`, its total `min(x_g, want)` in a
/// dispatch (every minimum at zero) maximising the sum of these. A target
/// met in full there is feasible alone; only the others need
/// [`max_alone`]. `None` when the market is infeasible even without minima.
pub(crate) fn met_together(
    net: &MarketNetwork,
    groups: &[Group],
    targets: &[usize],
    want: &[f64],
) -> Result<Option<Vec<f64>>, ClearError> {
    let n = groups.len();
    let mut lp = Lp::new(n + targets.len());
    lp.copy(net, groups, &vec![0.0; n], 0);
    for (q, (&t, w)) in targets.iter().zip(want).enumerate() {
        lp.le.push((vec![(n + q, 1.0)], *w));
        lp.le.push((vec![(n + q, 1.0), (t, -1.0)], 0.0));
        lp.c[n + q] = -1.0;
    }
    Ok(lp.solve()?.map(|s| (0..targets.len()).map(|q| s.x[n + q]).collect()))
}

/// How much each group's minimum loads the rows the minima `lo` violate:
/// the duals of the minima in the LP that minimises the rows' summed
/// violation (each row scaled to unit largest coefficient). A group whose
/// dual is zero could lower its minimum without relieving any violated
/// row. `None` when even the bounds and balance cannot be met.
pub(crate) fn loading(net: &MarketNetwork, groups: &[Group], lo: &[f64]) -> Result<Option<Vec<f64>>, ClearError> {
    let n = groups.len();
    let rows = net.g.len();
    let mut lp = Lp::new(n + rows);
    let first = lp.copy(net, groups, lo, 0);
    // add a violation variable to every network row of the copy
    let net_first = first + 2 * n;
    let mut k = 0;
    for (r, row) in net.g.iter().enumerate() {
        let touched = groups.iter().any(|gr| row[gr.bus] != 0.0);
        if !touched && net.h[r] >= 0.0 {
            continue;
        }
        let scale = groups.iter().map(|gr| row[gr.bus].abs()).fold(0.0, f64::max).max(1e-300);
        lp.le[net_first + k].0.push((n + r, -scale));
        k += 1;
    }
    for r in 0..rows {
        lp.le.push((vec![(n + r, -1.0)], 0.0));
        lp.c[n + r] = 1.0;
    }
    Ok(lp.solve()?.map(|s| (0..n).map(|g| s.z_le[first + g].max(0.0)).collect()))
}

/// The largest common level `c ∈ [c_lo, c_hi]` such that the groups marked
/// `capped` taking at least `c` and every other group its minimum `lo` is
/// feasible; `None` when even `c_lo` is not.
pub(crate) fn max_level(
    net: &MarketNetwork,
    groups: &[Group],
    lo: &[f64],
    capped: &[bool],
    c_lo: f64,
    c_hi: f64,
) -> Result<Option<f64>, ClearError> {
    let n = groups.len();
    let mut lp = Lp::new(n + 1);
    let fixed: Vec<f64> = lo.iter().zip(capped).map(|(l, c)| if *c { 0.0 } else { *l }).collect();
    lp.copy(net, groups, &fixed, 0);
    for (g, c) in capped.iter().enumerate() {
        if *c {
            lp.le.push((vec![(n, 1.0), (g, -1.0)], 0.0));
        }
    }
    lp.le.push((vec![(n, 1.0)], c_hi));
    lp.le.push((vec![(n, -1.0)], -c_lo));
    lp.c[n] = -1.0;
    Ok(lp.solve()?.map(|s| s.x[n].clamp(c_lo, c_hi)))
}
