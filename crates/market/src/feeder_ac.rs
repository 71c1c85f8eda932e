//! The AC check of a feeder's clearing and LinDistFlow's loss allowance.
//!
//! LinDistFlow ([`crate::distflow`]) neglects the feeder's losses: its
//! flow into a bus is the sum of the injections below it, and its voltage
//! drops are those of the lossless flows. Under the AC power flow the line
//! at the head of a loaded feeder carries the losses below it as well
//! (case33bw: 0.2 MW and 0.14 MVAr at its base load, 5 % of its flow), and
//! the voltages sag further. A rating or voltage row that binds in the
//! lossless model is then exceeded by the real network (attack round 24
//! [4]: case33bw's substation line rated 4.6 MVA carried 4.85 MVA).
//!
//! **Successive linearisation.** A feeder's network rows
//! ([`crate::network::MarketNetwork::distflow`]) carry this check
//! ([`FeederAc`]). [`crate::clearing::clear`] (and the framework's
//! interval) clears the central reference, runs the AC flow
//! ([`crate::acpf::run_pf`]) of the case's loads with the market's
//! dispatch, and compares it with the LinDistFlow state of the same
//! dispatch: per non-root bus the offset `δv_j = |V_j|²_AC − v_j`, per
//! rated line and per end `e` of it `δP_e = P_e,AC − P_lin` and
//! `δQ_e = Q_e,AC − Q_lin` (the flow from the parent towards the child
//! bus, at that end). Each row is then the lossless row shifted by its
//! offsets at that dispatch ([`FeederAc::allowance`]):
//!
//! - V max: `v_j + δv_j ≤ (V^max)²`, V min: `v_j + δv_j ≥ (V^min)²`;
//! - rating, each end: `|P_lin + δP_e| ≤ √(S² − Q_e²)`, with `Q_e` the
//!   largest `|Q_lin + δQ_e|` over the band LinDistFlow's reactive flow
//!   takes (the shunts below the line in their voltage bands).
//!
//! and the market is cleared again on the shifted rows, until the AC flow
//! of the reference's dispatch keeps every rating within
//! [`AC_RATING_MARGIN`] and every voltage within [`AC_VOLTAGE_MARGIN_PU`]
//! of its bounds, for at most [`MAX_AC_ROUNDS`] clearings; past that the
//! interval is refused ([`crate::clearing::ClearingError::AcLimits`]), never
//! reported as a clearing. The losses grow with the flow, so an allowance
//! taken at a dispatch over a limit is at least the one at the dispatch it
//! moves to: the rounds approach the limit from the safe side, and on
//! MATPOWER's feeders two or three clearings suffice. A dispatch whose AC
//! flow does not solve (the lossless rows let the feeder be loaded past
//! what it can carry) takes the allowance at the largest fraction `2⁻ᵏ` of
//! it that does ([`MAX_AC_BACKTRACKS`]).
//!
//! A limit the case's own loads already exceed under the AC flow (no
//! market: case33bw's substation line carries 4.61 MVA, its lossless flow
//! 4.37) is held where the loads put it: a row is never shifted past the
//! market's absence, so the market adds nothing to it, and the check
//! measures against that flow instead of the limit. Every algorithm clears
//! on the final rows (the distributed ones are compared with the reference
//! on them), and the dispatch each reports is checked under the AC flow
//! too. The allowance is the AC flow's own, not a fixed margin: a lightly
//! loaded feeder keeps its rows as LinDistFlow gives them.

use serde::Serialize;

use crate::acpf::{branch_flows, run_pf, PfOptions};
use crate::case::Case;
use crate::distflow::DistFlow;
use crate::ModelError;

/// Largest relative excess of a line's AC apparent power (the larger of its
/// two ends) over its rating that a clearing of a feeder may leave: 0.1 %.
pub const AC_RATING_MARGIN: f64 = 1e-3;
/// Largest excess of a bus's AC voltage magnitude beyond its bounds that a
/// clearing of a feeder may leave, p.u.: 0.001.
pub const AC_VOLTAGE_MARGIN_PU: f64 = 1e-3;
/// Newton iterations of the check's AC flow (MATPOWER's default is 10; a
/// feeder loaded towards its voltage limit from a flat start may need more).
pub const AC_MAX_ITER: usize = 30;
/// Most halvings of a dispatch whose AC flow does not solve before the
/// loss allowance is taken at the smaller dispatch that does
/// ([`crate::clearing::with_loss_allowance`]).
pub const MAX_AC_BACKTRACKS: usize = 8;
/// Most clearings of the successive linearisation (module docs) before an
/// interval whose AC flow is still beyond the margins is refused.
pub const MAX_AC_ROUNDS: usize = 8;

/// What a feeder row limits (module docs), with its model index.
#[derive(Debug, Clone, Copy)]
enum Row {
    VMax(usize),
    VMin(usize),
    /// Forward / reverse row of rated line `l` ([`FeederAc::lines`]).
    Forward(usize),
    Reverse(usize),
}

/// A rated parent line of the feeder.
#[derive(Debug, Clone)]
struct RatedLine {
    /// Model index of the line's child bus.
    bus: usize,
    /// Index in `Case::branches`.
    branch: usize,
    /// The parent is the branch's `from` bus.
    parent_is_from: bool,
    /// Rating, p.u.
    s: f64,
    /// The band of LinDistFlow's reactive flow into the child, p.u.
    q_lo: f64,
    q_hi: f64,
    /// The lossless row's `√(S² − Q_max²)`, p.u.
    pmax: f64,
}

/// The AC check of a feeder's market rows (module docs): the case the rows
/// were built around, its LinDistFlow model and what each row limits.
#[derive(Debug, Clone)]
pub struct FeederAc {
    case: Case,
    df: DistFlow,
    /// The case's injections, p.u., model order.
    p0: Vec<f64>,
    q0: Vec<f64>,
    /// p.u. per kW.
    kw: f64,
    rows: Vec<Row>,
    lines: Vec<RatedLine>,
    /// The AC flow of the case's own loads, no market ([`Self::base`]):
    /// the same for every clearing on these rows, so solved once.
    base: std::sync::OnceLock<AcState>,
}

/// The AC flow of a dispatch beside LinDistFlow's state of it.
#[derive(Debug, Clone)]
pub struct AcState {
    /// `|V|²` under AC and LinDistFlow, model order.
    v_ac: Vec<f64>,
    v_lin: Vec<f64>,
    /// Per rated line: `(P, Q)` at the parent and child ends, parent to
    /// child, p.u.; and LinDistFlow's `(P, Q)`.
    ends: Vec<[(f64, f64); 2]>,
    lin: Vec<(f64, f64)>,
    /// Per rated line: AC apparent power (larger end) over the rating.
    loading: Vec<f64>,
}

/// The AC flow of a cleared feeder dispatch against its limits (reported
/// with the clearing).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcCheck {
    /// Clearings of the successive linearisation (1: the lossless rows held).
    pub rounds: usize,
    /// Largest AC apparent power over rating of a rated line (0 if none).
    pub max_loading: f64,
    /// The line of `max_loading`, as the rows label it.
    pub max_loading_line: Option<String>,
    /// Lowest and highest AC voltage magnitude of a non-root bus, p.u.
    pub min_vm: f64,
    pub max_vm: f64,
    /// The worst excess beyond the margins, if any: what and by how much
    /// (relative for a rating, p.u. for a voltage).
    pub beyond: Option<(String, f64)>,
}

impl AcCheck {
    /// Every rating and voltage within the stated margins.
    pub fn within(&self) -> bool {
        self.beyond.is_none()
    }
}

impl FeederAc {
    /// The check of the market rows of `df` for `case`, in the order
    /// [`crate::network::MarketNetwork::distflow`] builds them: a V max / V
    /// min pair per non-root bus, then a forward / reverse pair per rated
    /// line with its rating `s`, reactive band and lossless `pmax`.
    pub(crate) fn new(case: &Case, df: &DistFlow, rated: Vec<(usize, usize, f64, f64, f64, f64)>) -> FeederAc {
        let (p0, q0) = df.case_injections(case);
        let mut rows = Vec::new();
        for j in (0..df.bus_ids.len()).filter(|&j| j != df.root) {
            rows.extend([Row::VMax(j), Row::VMin(j)]);
        }
        let mut lines = Vec::with_capacity(rated.len());
        for (l, (bus, branch, s, q_lo, q_hi, pmax)) in rated.into_iter().enumerate() {
            rows.extend([Row::Forward(l), Row::Reverse(l)]);
            let parent_is_from = df.parent[bus].is_some_and(|p| case.branches[branch].from == df.bus_ids[p]);
            lines.push(RatedLine { bus, branch, parent_is_from, s, q_lo, q_hi, pmax });
        }
        // the sweep is all the check needs of the model: the n × n path
        // matrices are not kept twice beside the rows
        let mut df = df.clone();
        df.r_path = Vec::new();
        df.x_path = Vec::new();
        let kw = 1.0 / (1000.0 * case.base_mva);
        FeederAc { case: case.clone(), df, p0, q0, kw, rows, lines, base: std::sync::OnceLock::new() }
    }

    /// The AC state of the case's own loads, no market (what
    /// [`Self::check`] widens the limits to), solved on first use and kept:
    /// the rows of one network share it ([`crate::clearing::with_loss_allowance`]
    /// clones the network with this check behind an `Arc`).
    pub fn base(&self) -> Result<&AcState, ModelError> {
        if let Some(b) = self.base.get() {
            return Ok(b);
        }
        let st = self.state(&vec![0.0; self.df.bus_ids.len()])?;
        Ok(self.base.get_or_init(|| st))
    }

    /// The AC flow of the case's loads with the market's net injections `p`
    /// (kW per model bus) beside LinDistFlow's state of them.
    pub fn state(&self, p: &[f64]) -> Result<AcState, ModelError> {
        let mut case = self.case.clone();
        for (id, kw) in self.df.bus_ids.iter().zip(p) {
            if let Some(b) = case.buses.iter_mut().find(|b| b.id == *id) {
                b.pd -= kw / 1000.0;
            }
        }
        let pf = run_pf(&case, PfOptions { max_iter: AC_MAX_ITER, ..PfOptions::default() })?;
        let flows = branch_flows(&case, &pf);
        let pu: Vec<f64> = self.p0.iter().zip(p).map(|(a, b)| a + b * self.kw).collect();
        let lin = self.df.solve(&pu, &self.q0, self.df.v0_sq);
        let mut v_ac = vec![f64::NAN; self.df.bus_ids.len()];
        for b in &pf.buses {
            if let Some(k) = self.df.bus_ids.iter().position(|id| *id == b.id) {
                v_ac[k] = b.vm * b.vm;
            }
        }
        if v_ac.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::Numerical { what: "a feeder's AC voltage" });
        }
        let base = self.case.base_mva;
        let (mut ends, mut lines, mut loading) = (Vec::new(), Vec::new(), Vec::new());
        for l in &self.lines {
            let f = flows
                .get(l.branch)
                .copied()
                .flatten()
                .ok_or(ModelError::Numerical { what: "a rated line's AC flow" })?;
            let (from, to) = ((f.from_mw / base, f.from_mvar / base), (f.to_mw / base, f.to_mvar / base));
            // parent to child at each end: what enters at the parent's end,
            // what leaves at the child's (the negated flow entering there)
            let (par, child) = if l.parent_is_from { (from, to) } else { (to, from) };
            ends.push([par, (-child.0, -child.1)]);
            lines.push((lin.p_in[l.bus], lin.q_in[l.bus]));
            loading.push(f.max_mva() / (l.s * base));
        }
        Ok(AcState { v_ac, v_lin: lin.v, ends, lin: lines, loading })
    }

    /// The check of an AC state `st` against the limits and margins, the
    /// limits widened to what `base` (the AC flow of the case's own loads,
    /// no market) already puts beyond them; `labels` are the rows' labels
    /// (for the report), `rounds` the clearings so far.
    pub fn check(&self, st: &AcState, base: &AcState, labels: &[String], rounds: usize) -> AcCheck {
        let mut c = AcCheck {
            rounds,
            max_loading: 0.0,
            max_loading_line: None,
            min_vm: f64::INFINITY,
            max_vm: f64::NEG_INFINITY,
            beyond: None,
        };
        let mut worst = 0.0;
        let mut note = |what: String, by: f64, c: &mut AcCheck| {
            if by > worst || by.is_nan() {
                worst = by;
                c.beyond = Some((what, by));
            }
        };
        for (r, row) in self.rows.iter().enumerate() {
            let label = labels.get(r).cloned().unwrap_or_default();
            match *row {
                Row::VMax(j) => {
                    let vm = st.v_ac[j].sqrt();
                    c.max_vm = c.max_vm.max(vm);
                    c.min_vm = c.min_vm.min(vm);
                    let by = vm - self.df.v_bounds[j].1.max(base.v_ac[j].sqrt());
                    if by > AC_VOLTAGE_MARGIN_PU {
                        note(format!("{label}: AC |V| {vm:.5} p.u."), by, &mut c);
                    }
                }
                Row::VMin(j) => {
                    let vm = st.v_ac[j].sqrt();
                    let by = self.df.v_bounds[j].0.min(base.v_ac[j].sqrt()) - vm;
                    if by > AC_VOLTAGE_MARGIN_PU {
                        note(format!("{label}: AC |V| {vm:.5} p.u."), by, &mut c);
                    }
                }
                Row::Forward(l) => {
                    let load = st.loading[l];
                    if load > c.max_loading {
                        c.max_loading = load;
                        c.max_loading_line = Some(label.trim_end_matches(" forward").to_string());
                    }
                    if load - base.loading[l].max(1.0) > AC_RATING_MARGIN {
                        let name = label.trim_end_matches(" forward");
                        note(format!("{name}: AC flow {:.2} % of its rating", 100.0 * load), load - 1.0, &mut c);
                    }
                }
                Row::Reverse(_) => {}
            }
        }
        c
    }

    /// The loss allowance of the AC state `st` (module docs): per row, the
    /// shift of its lossless limit (negative: tighter). Refuses a line
    /// whose reactive flow alone, losses included, exceeds its rating.
    pub fn allowance(&self, st: &AcState) -> Result<Vec<f64>, String> {
        if crate::mutants::active(crate::mutants::Mutation::FeederLossAllowanceDropped) {
            return Ok(vec![0.0; self.rows.len()]);
        }
        // per rated line: the tightest (forward, reverse) P limits of its ends
        let mut caps = Vec::with_capacity(self.lines.len());
        for (l, line) in self.lines.iter().enumerate() {
            let (p_lin, q_lin) = st.lin[l];
            let (mut fwd, mut rev) = (f64::INFINITY, f64::INFINITY);
            for (p, q) in st.ends[l] {
                let (dp, dq) = (p - p_lin, q - q_lin);
                let q_eff = (line.q_lo + dq).abs().max((line.q_hi + dq).abs());
                let room = line.s * line.s - q_eff * q_eff;
                if room.is_nan() || room < 0.0 {
                    return Err(format!(
                        "the reactive flow of the line into bus {} ({:.4} p.u. with the losses) exceeds its rating",
                        self.df.bus_ids[line.bus], q_eff
                    ));
                }
                let m = room.sqrt();
                fwd = fwd.min(m - dp);
                rev = rev.min(m + dp);
            }
            caps.push((fwd - line.pmax, rev - line.pmax));
        }
        Ok(self
            .rows
            .iter()
            .map(|row| match *row {
                Row::VMax(j) => -(st.v_ac[j] - st.v_lin[j]),
                Row::VMin(j) => st.v_ac[j] - st.v_lin[j],
                Row::Forward(l) => caps[l].0,
                Row::Reverse(l) => caps[l].1,
            })
            .collect())
    }

    /// Rows of the feeder's market model (the length of
    /// [`FeederAc::allowance`]).
    pub fn rows(&self) -> usize {
        self.rows.len()
    }
}
