//! Distributed primal–dual clearing of the PTDF market (seed's [232]), as
//! sans-IO iteration steps, and an exact reference for uncongested markets.
//!
//! Each buyer `m` keeps its copy `x_mn` of the trade with seller `n`, each
//! seller `n` its copy `y_mn`; the reciprocity constraint `x_mn = y_mn`
//! (Eq 6.4c) carries a price dual `λ_mn` held by the seller, and each network
//! row `r` of `G p ≤ h` ([`MarketNetwork`]: PTDF line limits, Eq 6.2, or the
//! LinDistFlow rows) carries a dual `μ_r ≥ 0` held by the grid operator. The
//! market's bus injections `p(x)` are the sellers' columns minus the buyers'
//! rows of the buyers' trade copies, in kW (a trade of `e` kWh over the
//! one-hour interval is `e` kW, which keeps the line duals on the same $/kWh
//! scale as the prices). One iteration `r → r+1`:
//!
//! ```text
//! operator:  μ̂ = max(0, μ + c_r (G p(x) − h))  per row r    (sent to buyers)
//!            π_mn = Σ_r μ̂_r (G_r,bus(n) − G_r,bus(m))
//! buyer m:   x_m ← Π_{X_m}( x_m + α [ U'_m(Σ_n x_mn) − λ_m· − ρ (x_m − y_m) − π_m· ] )
//! seller n:  y_n ← Π_{Y_n}( y_n + α [ −C'_n(Σ_m y_mn) + λ_·n + ρ (x_·n − y_·n) ] )
//!            λ_·n ← λ_·n + ρ (x_·n − y_·n)            (with the new x, y)
//! operator:  μ ← max(0, μ + γ_r (G p(x) − h))          (with the new x)
//! ```
//!
//! With steps per trade (a party beyond `E₀`, see "Scale") buyer `m` is
//! charged `π_mn + (w_mn − 1)(δ_bus(n) − δ_bus(m))` on trade `mn`, with the
//! operator's second per-bus vector `δ = Σ_r max(0, μ̂_r − μ_r) G_r` (the
//! overload part of the rows over their limit) and the trade's own damping
//! weight `w_mn ≥ 1` ([`TRADE_DAMPING_THETA`]); `δ = 0` at a fixed point.
//!
//! `Π_{X_m}` is the Euclidean projection onto `{x ≥ 0, e_min ≤ Σ x ≤ e_max}`
//! (Eq 6.4a; 6.4b for sellers). Every update uses only the values the party
//! owns or receives in the seed's exchange (bilateral trades, seller prices,
//! operator line duals), so each is a function a TEE can execute.
//!
//! **Congestion.** The plain dual ascent `μ ← max(0, μ + γ g)` with `π` built
//! from `μ` itself (the first version of this module) enters a limit cycle
//! once a line binds: the buyers see the line price only after the flow has
//! overshot, the operator raises `μ`, the buyers overshoot back. The fix is
//! the augmented-Lagrangian line price: the buyers are charged
//! `μ̂ = max(0, μ + c g)`, the gradient of `μᵀg + (c/2)‖max(0, g + μ/c)‖²`,
//! which responds to the current overload at once and damps the cycle; the
//! multiplier itself then moves with a small step `γ = c/4` (`c`, the
//! method of multipliers' own step, once the row has stayed priced and
//! overloaded for [`OVERLOAD_WAIT`] iterations: [`OVERLOAD_BOOST`],
//! doubled along the streak, [`OVERLOAD_DOUBLING`]; a
//! step down that doubles along the streak once it has stayed priced and
//! under its limit for [`SLACK_WAIT`]: [`SLACK_DOUBLING`]), with
//! `c = 1 / (4 (M + N))` (the flows sum over all buyers' rows, so the line
//! term's curvature grows with the market).
//!
//! **Step rule with binding lines.** `α = 1 / (a_max max(M, N) + 2ρ)` is the
//! inverse curvature of the prosumers' own terms only; the line term adds
//! `c ‖D_r‖²` along each priced row `r` (`D_r`: the row as a function of
//! the trades, [`PdParams::row_weights`]). Where that exceeds about `1/α`
//! the projected step overshoots and the iteration enters a limit cycle:
//! on congested case30, 2×2 seed 20 (all four prosumers on buses 25–28, so
//! every trade loads lines 25-26 and 25-27 with PTDF differences near 1)
//! had `α c ‖D_r‖² ≈ 0.8` on each of the two rows, which load the same
//! trades (≈ 1.6 together), and cycled with period 3 for 200 000
//! iterations, 82 % below the optimum. Each row's weight is therefore
//! preconditioned by its own sensitivity, `c_r = min(c, θ / (α ‖D_r‖²))`
//! with `θ = ½`, and its multiplier step scaled alike (`γ_r = c_r / 4`):
//! unchanged where the line term was already gentle, and a row's curvature
//! at most `θ / α` where it was not. A row on which the market's trades
//! see coefficients far below a PTDF share (a LinDistFlow voltage row, in
//! p.u.² per kW; a weak tie) is weighted in its own scale, up to `c / s_r²`
//! for the largest coefficient `s_r` a trade sees on it, continuously,
//! under the same bound ([`ROW_SCALE_REF`]). Seeds 0..40 of the congested 2×2 and
//! 4×4 markets then all clear within 10⁻⁴ of the Clarabel optimum (2×2:
//! 219 iterations on average).
//!
//! **Scale.** The penalty acts on the difference of a trade's two copies
//! only, so their sum moves by about `α δ` per iteration under a margin `δ`
//! between the two parties, with `α ≤ 1 / 2ρ`. With one `ρ` and `α` for the
//! market, a near-linear buyer and seller with 10 MWh each and 1 c/kWh
//! apart (within every admission limit; attack round 7) needed about 10⁶
//! iterations and stopped at the 200 000 cap. A trade between two parties
//! whose ranges exceed `E₀` (= [`SCALE_KWH`]) therefore carries its own
//! penalty `ρ_mn = ρ √(f_m f_n)`, `f_p = √(E₀ / e_max,p)`, and each of its
//! copies the step of its party's own curvature and that penalty,
//! `α_mn = 1 / (a_p max(M, N) + 2 ρ_mn)` ([`PdParams::party_steps`]): it
//! moves in proportion to the parties' ranges, and the pair clears in a few
//! thousand iterations. Every other trade (one with a party within `E₀`)
//! keeps the common `ρ` and `α` on both copies: shrunk by the large
//! party's scale (the rule before attack round 11), the sellers' prices of
//! a flat buyer's trades with small sellers, and the line multiplier they
//! hold up behind a binding line, moved at `ρ_mn / ρ ≈ 1/45` of the common
//! rate. A market whose every `e_max` is within `E₀` (every seeded market)
//! and with no tiny row (see "Tiny limits")
//! runs with the common `ρ` and `α` and the per-party kernels, exactly as
//! before. With steps per trade each party projects in the metric of its
//! own steps (`x = max(0, v − α_mn τ)`, [`weighted_tau`]), so a fixed
//! point is still a KKT point. Only trades that load some network row
//! (`G_r,bus(n) ≠ G_r,bus(m)` for some `r`) enter the line term, so the
//! line weights and multiplier steps are scaled by `α / α*`, `α*` the
//! largest buyer step of those trades, and the line term's curvature in
//! the steps' metric stays that of the common-step market over every set of
//! binding rows at once ([`PdParams::row_weights_for`]; bounding each row
//! against the buyers' own steps let one 50 kWh buyer behind a dozen
//! binding rows cycle, attack round 8). Once a line is priced, the buyers'
//! steps of those trades are capped at [`BUYER_STEP_CAP`]` · α` (and the
//! row weights recomputed for the capped steps), so one flat request can
//! scale the line weights by at most `1 / BUYER_STEP_CAP` (attack round 9:
//! uncapped, one flat 10 MWh buyer scaled them by ~1/120); a trade that
//! loads no row keeps its step (attack round 11: a flat pair's own trade at
//! one bus, capped, crawled behind a line that binds at the optimum); once
//! no line has been priced for [`CONGESTED_QUIET`] iterations the buyers'
//! own steps come back, with doubling waits and a bounded number of times
//! per run (attack round 10: a line priced in the first iterations only
//! kept a flat pair capped for good). This shortens, but cannot
//! bound, the iterations a margin needs: a margin tending to 0 with a
//! welfare share above the tolerance still needs ever more of them, so the
//! framework clears an interval whose run reaches the cap at the central
//! reference, with a record ([`crate::framework::IntervalOutcome::fallback`]).
//!
//! **Tiny limits.** A row whose limit is far below the flow the market's
//! trades could put on it (case30 with ratings × 10⁻¹⁰: µW against
//! kWh) is run in a larger scale: its weight and multiplier step raised by
//! a factor `F_r`, and the trades that load it run with both copies' steps
//! divided by it and the penalty multiplied by it ([`TINY_ROW_REF`]), so
//! a step moves their flow on the row by a share of its limit instead of
//! ~100 times it, and the line term's curvature keeps its bound. It
//! answers attack round 18's seeded 4 × 4 market, which reached the
//! 200 000 cap at every limit scale from 10⁻⁹ to 10⁻¹³; a market with no
//! such row is unchanged.
//!
//! **Stopping rule.** Cheap tests first, every iteration: a tenth of the
//! seed's tolerance, `10⁻⁴` per prosumer total (so `10⁻⁴ / max(M, N)` per
//! trade) on the reciprocity residual `max |x − y|`, on the largest trade
//! change of the iteration (over the buyer's own step `α_m`, or `α_mn`
//! with steps per trade: the projected gradient's size) and on the largest violation of a
//! network row (kW); and the settled trades (the smaller copy of each pair)
//! meeting every row within `clearing::clear`'s own per-row tolerance
//! (`1 mW + 10⁻⁴ |h_r|`, [`crate::network::MarketNetwork::row_excess`]):
//! on case30 with limits scaled by 10⁻⁵ the fixed `10⁻⁴ / max(M, N)` kW
//! passed rows allotted a few W, and `clear` refused the converged result
//! as `RowViolated`. These alone are no certificate: seed 14 of the same
//! markets met them 0.17 % below the optimum while a line price was still
//! moving. So once they pass, the iteration's own prices are checked by
//! weak duality ([`PrimalDual::certificate`]): the dual function
//! `d(λ, μ) ≥ W*` against the settled welfare `W`, converged only when
//! `|d − W| ≤ 10⁻⁴ |d|` and the line multipliers' value of any remaining
//! overload is as small (the first-order gain an infeasible clearing could
//! have over the optimum), and `d − W` small enough to put every party's
//! total within half its own tolerance of the optimum, the test
//! `clearing::clear` accepts by ([`scaled_gap`], floored at
//! [`SCALED_GAP_FLOOR`]` · |d|`). The certificate and the settled-rows
//! test cost one more (vectorised) pass over the trades, paid on every
//! iteration the cheap tests pass: with the per-party gap that is a large
//! share of a run (seeded 50 × 50 case30 market: 529 of 1 237 iterations;
//! [`PrimalDual::settled_rows_hold`]).
//!
//! Per-iteration cost: `O(M N + R K)` for `R` network rows over `K` buses.
//! The line price is formed per bus (`π_k = Σ_r μ̂_r G_rk`) and per trade as
//! a difference of two bus prices, never as an `R × M × N` tensor; all
//! working vectors are allocated once in [`PrimalDual::new`] (a market
//! with steps per trade, which runs plain scalar sweeps, allocates a few
//! row buffers per iteration).
//!
//! Layout and passes: every trade matrix (`x`, `y`, `λ` and the buyers'
//! view `q = λ − ρ y` of the seller's two values, which the seller writes
//! with them) is seller-major, so nothing is ever transposed or gathered.
//! Pass 1 sweeps the matrices column by column, element-wise over the
//! buyers (their statistics kept as arrays, structure of arrays), and forms every buyer's gradient step `v` (the update above, with
//! `−λ − ρ (x − y)` written `−ρ x − q`) together with what the
//! projection needs: the clamped sum and, against the support of the
//! buyer's previous row, that support's sum, size, smallest value and the
//! largest value outside it. From these [`warm_tau`] gives the projection's
//! threshold with no further sweep whenever the support is unchanged (the
//! common case near convergence); otherwise Michelot's sweeps run on that
//! buyer's row. Pass 2, per seller column, one sweep: each buyer's new
//! trade `max(0, v − τ_m)` in that column (change, totals, the column's
//! sum) and, on it at once, the seller's own gradient step with the same
//! statistics against the seller's previous support; then, after
//! [`warm_tau`] (or Michelot) on those, a second sweep of the column (in
//! L1 cache by then) for the seller's projection, the price update and the
//! residual. Reductions over a contiguous column keep partial sums per
//! lane; a buyer's sums run over the sellers in order. The column kernels
//! are compiled per vector unit (baseline, AVX2, AVX-512F; the two
//! column sweeps hand-written with AVX2 intrinsics) and chosen once per
//! state by CPU detection; every copy performs the same operations in the
//! same order (`kernels` module docs), and the sans-IO subproblems call
//! the baseline copies, so both paths agree bit for bit. A test-only copy
//! of the step before the fusion (`primal_dual/reference.rs`) checks that.
//! Measured with `cargo bench -p gridledger-market --bench step` (thread
//! CPU time per iteration and per whole clearing).

use serde::Serialize;

use crate::dc::DcModel;
use crate::mutants::{self, Mutation};
use crate::network::MarketNetwork;
use crate::problem::{Market, MarketError, Prosumer};
use kernels::Isa;

mod kernels;
#[cfg(test)]
mod reference;

/// `d[l][m][n]`, see [`trade_sensitivities`].
pub type Sensitivities = Vec<Vec<Vec<f64>>>;

/// Line sensitivities `d[l][m][n]` (kW of flow on line `l` per kWh that
/// seller `n` sells to buyer `m`) and line limits in kW (the case's rating
/// `rate_a` × `limit_scale`; unlimited lines get `f64::INFINITY`).
pub fn trade_sensitivities(
    dc: &DcModel,
    market: &Market,
    limit_scale: f64,
) -> Result<(Sensitivities, Vec<f64>), MarketError> {
    market.validate(&dc.bus_ids)?;
    let pos = |bus: u32| dc.bus_ids.iter().position(|&b| b == bus).unwrap_or(dc.ref_idx);
    let bm: Vec<usize> = market.buyers.iter().map(|p| pos(p.bus)).collect();
    let bn: Vec<usize> = market.sellers.iter().map(|p| pos(p.bus)).collect();
    let d =
        dc.ptdf.iter().map(|row| bm.iter().map(|&i| bn.iter().map(|&j| row[j] - row[i]).collect()).collect()).collect();
    // p.u. on baseMVA → kW
    let limits = dc.limits.iter().map(|l| l * dc.base_mva * 1000.0 * limit_scale).collect();
    Ok((d, limits))
}

/// Partial sums kept by the reductions below: independent accumulators let
/// the compiler use vector registers and hide the adder's latency (a single
/// running sum is bound by it). Every path of the iteration sums through
/// these helpers, so the sans-IO subproblems and [`PrimalDual::step`] agree
/// bit for bit.
const LANES: usize = 8;

fn fold_lanes(acc: [f64; LANES]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ v` with [`LANES`] partial sums.
pub fn lane_sum(v: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    rest.iter().fold(fold_lanes(acc), |s, x| s + x)
}

/// `Σ a_i b_i` with [`LANES`] partial sums.
pub fn lane_dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    ra.iter().zip(rb).fold(fold_lanes(acc), |s, (x, y)| s + x * y)
}

/// `Σ max(0, v − τ)` and the count of `v > τ`, branch-free.
fn lane_above(v: &[f64], tau: f64) -> (f64, f64) {
    let (mut sum, mut cnt) = ([0.0f64; LANES], [0.0f64; LANES]);
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let above = c[i] > tau;
            sum[i] += if above { c[i] } else { 0.0 };
            cnt[i] += if above { 1.0 } else { 0.0 };
        }
    }
    let (mut s, mut k) = (fold_lanes(sum), fold_lanes(cnt));
    for &x in rest {
        if x > tau {
            s += x;
            k += 1.0;
        }
    }
    (s, k)
}

/// Projection of `v` onto `{x ≥ 0, lo ≤ Σ x ≤ hi}`.
///
/// The simplex part (`Σ max(0, v − τ) = target`) uses Michelot's algorithm
/// (1986): start with every coordinate active, drop those at or below `τ`,
/// repeat until the active set is stable (`τ` only grows). No sort and no
/// allocation; each pass is one branch-free sweep ([`LANES`] partial sums).
/// Measured here faster than sorting (O(n log n)) and than Condat's online
/// variant on 100-trade rows.
pub fn project_capped(v: &mut [f64], lo: f64, hi: f64) {
    let (clamped, _) = lane_above(v, 0.0);
    let tau = capped_tau(v, lo, hi, clamped);
    for x in v.iter_mut() {
        *x = (*x - tau).max(0.0);
    }
}

/// The threshold `τ` of [`project_capped`] (the projection is
/// `max(0, v − τ)`), given `clamped = Σ max(0, v)`; `τ = 0` when the
/// clamped sum is within the bounds.
fn capped_tau(v: &[f64], lo: f64, hi: f64, clamped: f64) -> f64 {
    let target = if clamped > hi {
        hi
    } else if clamped < lo {
        lo
    } else {
        return 0.0;
    };
    let mut count = v.len() as f64;
    let mut tau = (lane_sum(v) - target) / count;
    loop {
        let (sum, k) = lane_above(v, tau);
        if k == 0.0 || k >= count {
            break;
        }
        count = k;
        tau = (sum - target) / k;
    }
    tau
}

/// Tuning of the primal–dual iteration.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PdParams {
    /// Reciprocity penalty and price step.
    pub rho: f64,
    /// Primal step.
    pub alpha: f64,
    /// Line multiplier step.
    pub gamma: f64,
    /// Augmented-Lagrangian weight of the line rows (the largest; see
    /// [`PdParams::row_weights`]).
    pub c: f64,
    /// Largest line-term curvature per row, in units of `1 / α`.
    pub line_theta: f64,
    pub tol: f64,
    /// Relative tolerance of the duality certificate ([`Certificate::holds`]).
    pub gap_tol: f64,
    pub max_iter: usize,
    /// Reference energy scale `E₀` of the per-trade penalties, kWh
    /// ([`PdParams::party_steps`]).
    pub scale_kwh: f64,
    /// The first wait of the congested mode's switch rule
    /// ([`CONGESTED_QUIET`]; `PrimalDual::update_mode`).
    pub congested_quiet: u32,
    /// The most exits from the congested mode per run ([`CONGESTED_EXITS`]).
    pub congested_exits: u32,
    /// Rows whose trade scale `s_r` is below this are weighted in their
    /// own scale ([`ROW_SCALE_REF`]; 0 weights every row with `c`).
    pub row_scale_ref: f64,
    /// Rows whose limit (with its tolerance) is below this share of the
    /// flow the market's trades could put on them are scaled to it
    /// ([`TINY_ROW_REF`]; 0 leaves every row alone).
    pub tiny_row_ref: f64,
}

/// The reference energy scale `E₀` of [`PdParams::party_steps`], kWh: the
/// top of the seeded markets' `e_max` range, so every party of a seeded
/// market keeps the common step and penalty the tuning was made with.
pub const SCALE_KWH: f64 = 5.0;

/// The largest buyer step, in units of the common `α`, once a line is
/// priced ([`PrimalDual`]'s congested mode): `α_m ≤ C α`.
///
/// The line price acts on the buyers' copies only, so
/// [`PdParams::row_weights_for`] scales every row's weight and multiplier
/// step by `α / max_m α_m`, keeping the line term's curvature in the steps'
/// metric that of the common market over every set of binding rows at
/// once. Uncapped, one flat 10 MWh buyer (`a = 10⁻⁶`, `α_m ≈ 446` against
/// `α ≈ 3.6`) scaled every row by about 1/120 and multiplied the rounds of
/// every congested interval by hundreds, up to the cap, whatever it bought
/// (attack round 9). Capped, one request changes the line weights by at
/// most `1 / C`. The rounds a congested interval needs grow about linearly
/// in `C` with such a buyer (seed-3 5 × 5 market on case30 at ratings ×
/// 10⁻⁴, flat buyer at bus 10: 296 rounds without it; with it 1 831 at
/// `C = 2`, 3 739 at 4, 7 514 at 8, 113 119 uncapped), so `C = 2`: the
/// round-8 buyer (`α_m ≈ 1.9 α`) keeps its own step. An uncongested market
/// (no row priced) keeps each buyer's own step, which the near-linear pair
/// of attack round 7 needs.
///
/// With steps per trade ([`PartySteps::per_trade`]) the cap applies to the
/// buyer's step of each trade that loads some network row only (a nonzero
/// PTDF difference on some row): the line term's curvature involves those
/// trades alone, so the bound above holds over them, and a trade that
/// loads no row (a flat pair's own trade at one bus) keeps its step. Capped
/// too, that trade crawled behind a line binding at the optimum, which
/// keeps the mode on for the whole run (attack round 11: 60 201 iterations
/// for seed 5's 3 × 3 market with a 10 MWh pair at bus 26 behind line
/// 25-26).
///
/// The mode is two-way (`PrimalDual::update_mode`): entered the first
/// time a row is priced; left once no row has been priced for
/// [`CONGESTED_QUIET`] iterations in a row; after `k` exits, entered again
/// only after a row has been priced for `Q · 2^(k−1)` iterations in a row
/// and left only after `Q · 2^k` quiet ones (`Q` = [`CONGESTED_QUIET`]);
/// never left more than [`CONGESTED_EXITS`] times. One-way (as first
/// written), a row priced only in the first iterations — one flat buyer's
/// first step trades thousands of kW across the grid — kept a flat pair
/// capped for the whole run of an interval where no row binds at the
/// optimum, and the pair crawled to the iteration cap (attack round 10:
/// 2 759 rounds at ratings × 1, over 55 000 at × 10⁻³). Left after a quiet
/// spell but entered again at once, the same markets cycled (seed 5's
/// 3 × 3 with such a pair, a = 10⁻⁴, at bus 10, ratings × 5·10⁻⁴: a switch
/// every ~110 iterations, 337 switches and no convergence in 20 000): the
/// buyers' own steps make the flat buyer's cross-grid trades overshoot a
/// line for a few dozen iterations after an exit, and that transient alone
/// re-entered the mode. With the entry wait it clears in 1 963 with two switches (the
/// round-10 pair at ratings × 10⁻³: 3 184 with a = 10⁻⁵, 30 507 with
/// a = 10⁻⁶, against 2 759 and 13 762 on the unconstrained grid).
///
/// Why this is sound: the iteration's fixed points are the KKT points for
/// ANY positive steps `α_m` and weights `c_r` (each projection is the
/// party's own Euclidean one; at a fixed point the multiplier update gives
/// `g_r ≤ 0` and `μ_r g_r = 0`, so `max(0, μ_r + c_r g_r) = μ_r` whatever
/// `c_r > 0`), so switching them by a rule every executor evaluates on the
/// same state (the mode and its counters are part of
/// [`PrimalDual::state_digest`]) changes the path but not the point it
/// converges to, and the capped step is still within the party's own
/// Lipschitz bound. The rule cannot cycle: every exit is counted and none
/// is taken after the [`CONGESTED_EXITS`]-th, and every entry but the
/// first follows an exit, so a run switches at most
/// `2 · CONGESTED_EXITS + 1` times, and from its last switch on it is the
/// iteration of one fixed step set; the doubling waits besides make a line
/// that oscillates with any fixed period switch the mode only a few times
/// (about `2 log₂(period / Q)`), not once per period.
pub const BUYER_STEP_CAP: f64 = 2.0;

/// The first wait of the congested mode's switch rule ([`BUYER_STEP_CAP`]):
/// iterations in a row with no network row priced before the mode is left
/// the first time (the later waits double). A multiplier that is 0 for this
/// long is not one a binding line needs; a much shorter wait spends the
/// bounded exits ([`CONGESTED_EXITS`]) on a line price passing through 0.
pub const CONGESTED_QUIET: u32 = 100;

/// The most times one run leaves the congested mode ([`BUYER_STEP_CAP`]:
/// what bounds the switches); the sixth exit already needs `32 Q` quiet
/// iterations in a row.
pub const CONGESTED_EXITS: u32 = 6;

/// Iterations in a row a network row must end priced and overloaded
/// before its multiplier takes the longer step [`OVERLOAD_BOOST`].
pub const OVERLOAD_WAIT: u32 = 500;

/// The multiplier step of a row that has ended [`OVERLOAD_WAIT`]
/// iterations in a row priced and overloaded, in units of its own `γ_r`:
/// `4 γ_r = c_r`, the method of multipliers' own step, doubled every
/// [`OVERLOAD_DOUBLING`] further iterations of the streak. Back to `γ_r` on the
/// first iteration the row ends unpriced or within its limit.
///
/// Why: where a binding line's multiplier must climb far (attack round 11:
/// seed 5's 3 × 3 market with a near-linear 10 MWh pair bidding 10 $/kWh
/// behind line 16-17, multiplier 16.4 $/kWh at the optimum), the sellers
/// sit at their `e_max` and the buyers' copies, pinned by their prices,
/// stay put while it climbs: the overload is constant, and the multiplier
/// rises by `γ_r` times it, a fixed amount, every iteration (≈ 8·10⁻⁴
/// $/kWh: 20 658 iterations). A row so overloaded for this long is not one
/// a short transient prices, and its multiplier step is still at most
/// `c_r`, the weight the buyers already see it with (`μ̂ = μ + c_r g`). The
/// iteration's fixed points are the same for any positive multiplier steps
/// (see [`BUYER_STEP_CAP`]), the counters are part of
/// [`PrimalDual::state_digest`] and updated on every path after the
/// multiplier update, so every executor steps alike.
pub const OVERLOAD_BOOST: f64 = 4.0;

/// Iterations of an overloaded-and-priced streak beyond [`OVERLOAD_WAIT`]
/// per doubling of the longer step: the step is
/// [`OVERLOAD_BOOST`]` · 2^d · γ_r` with
/// `d = min((streak − OVERLOAD_WAIT) / OVERLOAD_DOUBLING, OVERLOAD_MAX_DOUBLINGS)`,
/// back to `γ_r` on the first iteration the row ends unpriced or within
/// its limit (the streak resets).
///
/// Why: on the 33-bus feeder the V-min rows' coefficients are small
/// (a PTDF-like difference of about `2.4·10⁻⁵` per kW for a trade from
/// bus 27 to bus 9), so the multipliers the rows need are large, and the
/// fixed `4 γ_r` climb of a constant overload took over 200 000 iterations
/// (attack round 13: three large requests, bus 18's multiplier 23.4 at
/// iteration 190 000). Doubling along the streak reaches any multiplier in
/// a number of iterations logarithmic in `μ* / (γ_r · excess)`; an
/// overshoot ends the streak at once (the row falls within its limit) and
/// the step down of [`SLACK_DOUBLING`] unwinds it the same way. The
/// iteration's fixed points are the same for any positive multiplier steps
/// (see [`BUYER_STEP_CAP`]); the streaks are part of
/// [`PrimalDual::state_digest`], so every executor steps alike. Round 13's
/// mixed market clears in 11 699 iterations with the penalties of
/// `ρ f_m f_n` (a doubling every 50: 9 289; capped at 2^9 or fewer
/// doublings, not within the cap), 7 614 with [`PdParams::party_steps`]'s,
/// and 361 with the V-min rows weighted in their own scale
/// ([`ROW_SCALE_REF`], with which that market never takes the longer
/// step: the doubling is what a row weighted by the common `c` needs).
pub const OVERLOAD_DOUBLING: u32 = 100;

/// The most doublings of the longer step up ([`OVERLOAD_DOUBLING`]).
pub const OVERLOAD_MAX_DOUBLINGS: u32 = 40;

/// Iterations in a row a network row must end priced and under its limit
/// before its multiplier takes the growing step down ([`SLACK_DOUBLING`]).
/// Shorter than [`OVERLOAD_WAIT`]: as the multiplier falls the trades it
/// held back move, and the row touches its limit (which resets the streak)
/// every few hundred iterations on the way down (attack round 12's market
/// with `a = 10⁻⁴`: 500 took a reset at each ~0.5 $/kWh, past 3 000
/// iterations; 100 clears in about 1 700).
pub const SLACK_WAIT: u32 = 100;

/// The step down of a row that has ended [`SLACK_WAIT`] or more
/// iterations in a row priced (`μ_r > 0`) and under its limit
/// (`G_r p < h_r`): [`OVERLOAD_BOOST`]` · γ_r` at first, doubled every
/// `SLACK_DOUBLING` further iterations of the streak (at most
/// [`SLACK_MAX_DOUBLINGS`] times), projected at 0 as every multiplier
/// step; back to `γ_r` on the first iteration the row ends unpriced or at
/// or over its limit.
///
/// Why: a row that comes close to its limit but does not bind at the
/// optimum can be priced high by the first, overshooting steps (attack
/// round 12: seed 2's 3 × 3 market with a near-linear 10 MWh pair at model
/// bus 3, case30 at ratings × 2·10⁻⁴, line 15-23 with 21 W of slack at the
/// optimum, multiplier above 8 $/kWh after the flat buyer's first steps).
/// The base step moves it down by `γ_r` times the slack, a vanishing amount
/// as the slack shrinks (≈ 3.6·10⁻⁵ $/kWh per iteration there: over
/// 200 000 iterations), and while it stays positive the residual does not
/// close. The symmetric counterpart of [`OVERLOAD_BOOST`] alone (a fixed
/// `4 γ_r`) only divides that by 4; a step that doubles along the streak
/// unwinds any multiplier in a number of iterations logarithmic in
/// `μ_r / (γ_r · slack)`. A row that binds at the optimum ends under its
/// limit only while it is approached from below: the first iteration at or
/// over its limit resets the streak (and the step), and from there the
/// multiplier climbs back by the base step and [`OVERLOAD_BOOST`]. The
/// iteration's fixed points are the same for any positive multiplier steps
/// (see [`BUYER_STEP_CAP`]), and the streaks are part of
/// [`PrimalDual::state_digest`] and counted on every path after the
/// multiplier update, so every executor steps alike.
pub const SLACK_DOUBLING: u32 = 50;

/// The most doublings of the step down ([`SLACK_DOUBLING`]): `2^40 · 4 γ_r`
/// moves any multiplier the slack of one mW prices to 0 in one step.
pub const SLACK_MAX_DOUBLINGS: u32 = 40;

/// Relative floor of [`scaled_gap`]'s test (a party so flat that its own
/// bound asks for less is not certified by it: see [`scaled_gap`]).
pub const SCALED_GAP_FLOOR: f64 = 1e-9;

/// The duality gap, $, below which every party is certified to be within
/// half its own tolerance of the optimum
/// ([`crate::clearing::reference_excess`]: `tol_p = 1 Wh + 10⁻³ e_max`,
/// the test `clear` accepts a clearing by): the welfare is `a_p`-strongly
/// concave in each total, so for feasible trades
/// `d − W ≥ W* − W ≥ Σ_p (a_p / 2)(t_p − t_p*)²`, and
/// `d − W ≤ a_p (tol_p / 2)² / 2` keeps `|t_p − t_p*| ≤ tol_p / 2`. The
/// welfare-relative certificate ([`Certificate::holds`]) alone left a
/// near-flat 10 MWh party (`a = 10⁻⁶`) 25 kWh off its optimal total, which
/// `clear` refuses. First applied to the parties with `e_max` beyond `E₀`
/// only (`scale_kwh`; every party of a seeded market is within it): on
/// small congested markets (2 buyers, 4 sellers) the relative certificate
/// then stopped runs with a seeded seller 2.35 Wh off its optimal total
/// (tolerance 2.04 Wh) and a near-linear 5 kWh one 7.7 Wh off (6 Wh), and
/// `clear` refused a run primal-dual had reported converged (attack round
/// 12). Over every party the stop is the one `clear` accepts; the seeded
/// markets pay about 1.7 times the iterations of the relative certificate
/// for it (3 × 3 on case30: ~60 → ~110; 50 × 50: ~750 → ~1 300).
/// `scale_kwh` (`E₀`) is kept for the planted bug that restores the old
/// rule ([`Mutation::ScaledGapLargePartiesOnly`]). [`PrimalDual`]'s report
/// uses `max(this, SCALED_GAP_FLOOR · |d|)`, so a party flatter than
/// floating point can certify is not made unreachable.
pub fn scaled_gap(market: &Market, scale_kwh: f64) -> f64 {
    use crate::clearing::{PROSUMER_ABS_KWH, PROSUMER_REL};
    let large_only = mutants::active(Mutation::ScaledGapLargePartiesOnly);
    market
        .buyers
        .iter()
        .chain(&market.sellers)
        .filter(|p| !large_only || p.e_max > scale_kwh)
        .map(|p| {
            let half = 0.5 * (PROSUMER_ABS_KWH + PROSUMER_REL * p.e_max);
            0.5 * p.a * half * half
        })
        .fold(f64::INFINITY, f64::min)
}

/// Per-trade penalties and steps ([`PdParams::party_steps`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PartySteps {
    /// `ρ_mn`, seller-major (`[n·M + m]`).
    pub rho: Vec<f64>,
    /// `α_m` per buyer (the largest of its trades' steps), and `1 / α_m`.
    pub alpha_buyers: Vec<f64>,
    pub inv_alpha_buyers: Vec<f64>,
    /// `α_n` per seller (the largest of its trades' steps).
    pub alpha_sellers: Vec<f64>,
    /// Some party is beyond `E₀`: the steps are per trade
    /// (`trade_alpha_*`); otherwise every step is the common `α`.
    /// ([`PrimalDual::new`] makes them per trade, too, for a market with a
    /// tiny row: [`TINY_ROW_REF`].)
    pub per_trade: bool,
    /// The buyer's step `α^b_mn` and the seller's step `α^s_mn` of each
    /// trade, seller-major (empty unless `per_trade`).
    pub trade_alpha_buyers: Vec<f64>,
    pub trade_alpha_sellers: Vec<f64>,
}

impl PdParams {
    /// Step sizes from the market's curvature: `α = 1 / (a_max · max(M, N) + 2ρ)`
    /// keeps the gradient step below the inverse Lipschitz constant of the
    /// local objectives; the line weights are explained in the module docs.
    pub fn for_market(market: &Market) -> PdParams {
        let a_max = market.buyers.iter().chain(&market.sellers).map(|p| p.a).fold(0.0, f64::max);
        let k = market.buyers.len().max(market.sellers.len()) as f64;
        let rho = 0.05;
        let alpha = 1.0 / (a_max * k + 2.0 * rho);
        let c = 1.0 / (4.0 * (market.buyers.len() + market.sellers.len()) as f64);
        // a tenth of the seed's 1e-3 per prosumer total, i.e. 1e-4 / max(M, N)
        // per trade: with 1e-3 congested case30 markets stopped 0.17 % and
        // 0.20 % off the optimum (an overload of 2.5e-4 kW inside the
        // tolerance, priced by a high line dual); 1e-4 costs ~10 % more
        // iterations and brought those to 1e-4 and 2e-4 — an empirical
        // margin, so convergence also needs the duality certificate within
        // `gap_tol` (module docs; `clearing::clear` checks the gap to the
        // reference besides)
        PdParams {
            rho,
            alpha,
            gamma: 0.25 * c,
            c,
            line_theta: 0.5,
            tol: 1e-4 / k,
            gap_tol: 1e-4,
            max_iter: 200_000,
            scale_kwh: SCALE_KWH,
            congested_quiet: CONGESTED_QUIET,
            congested_exits: CONGESTED_EXITS,
            row_scale_ref: ROW_SCALE_REF,
            tiny_row_ref: TINY_ROW_REF,
        }
    }

    /// Per-trade penalties and steps, from each party's own bounds and
    /// curvature (module docs, "Scale"):
    ///
    /// ```text
    /// f_p     = min(1, √(E₀ / e_max,p))        (1 for a party within E₀)
    /// ρ_mn    = ρ √(f_m f_n) if both f_m, f_n < 1;   ρ otherwise
    /// α^p_mn  = 1 / (a_p max(M, N) + 2 ρ_mn)    if both f_m, f_n < 1
    ///           α                               otherwise
    /// ```
    ///
    /// The sum of a trade's two copies moves by about `α δ` per iteration
    /// under a margin `δ` between the parties (the penalty acts only on
    /// their difference), and `α ≤ 1 / 2ρ`: with the common `ρ` a
    /// near-linear 10 MWh pair 1 c/kWh apart needed ~10⁶ iterations. A
    /// trade between two parties beyond `E₀` gets a penalty shrunk to their
    /// scales and each of its copies the step of its party's own curvature
    /// and that penalty (never below the common `α`: `a_p ≤ a_max`,
    /// `ρ_mn ≤ ρ`), so it moves in proportion to their ranges. A trade with
    /// a party within `E₀` keeps the full `ρ` (attack round 11: shrunk by
    /// the large party's scale, `ρ_mn ≈ 1.1·10⁻³` for a 10 MWh buyer, the
    /// sellers' prices of its trades, and with them the line multiplier
    /// they hold up, moved 45× slower than in the common market) and the
    /// common `α` on both copies (`a_p ≤ a_max`), as in a seeded market.
    /// Every copy's step is bounded by its own trade's penalty, so
    /// `α^p_mn ρ_mn ≤ ½` on every trade as in the common market. A market whose every `e_max`
    /// is within `E₀` gets exactly the common `ρ` and `α`. The steps are
    /// per trade, and each party projects in the metric of its own steps
    /// (`x = max(0, v − α_mn τ)`, [`weighted_tau`]), so the iteration's
    /// fixed points are still the KKT points. The square root (`ρ f_m f_n`
    /// before): a pair split across a binding line (attack round 12, seed
    /// 5's 3 × 3 market at ratings × 5·10⁻⁴, pair at model buses 10 and 16)
    /// needed 25 170 iterations, 490 with it; attack round 13's mixed
    /// feeder market 11 699, 7 614 with it.
    pub fn party_steps(&self, market: &Market) -> PartySteps {
        let (mm, nn) = (market.buyers.len(), market.sellers.len());
        let k = mm.max(nn) as f64;
        let f = |p: &Prosumer| if p.e_max > self.scale_kwh { (self.scale_kwh / p.e_max).sqrt() } else { 1.0 };
        let fb: Vec<f64> = market.buyers.iter().map(f).collect();
        let fs: Vec<f64> = market.sellers.iter().map(f).collect();
        let per_trade = fb.iter().chain(&fs).any(|v| *v < 1.0);
        let mut rho = vec![self.rho; mm * nn];
        for (n, sn) in fs.iter().enumerate() {
            for (m, bm) in fb.iter().enumerate() {
                let both = *sn < 1.0 && *bm < 1.0;
                let shrunk = both || (mutants::active(Mutation::SmallPartyPenaltyShrunk) && (*sn < 1.0 || *bm < 1.0));
                if shrunk {
                    rho[n * mm + m] = self.rho * (sn * bm).sqrt();
                }
            }
        }
        let own = |p: &Prosumer, fp: f64, r: f64| if fp < 1.0 { 1.0 / (p.a * k + 2.0 * r) } else { self.alpha };
        let (mut tb, mut ts) = (Vec::new(), Vec::new());
        if per_trade {
            let both = |i: usize| fb[i % mm] < 1.0 && fs[i / mm] < 1.0;
            tb = (0..mm * nn).map(|i| own(&market.buyers[i % mm], if both(i) { 0.0 } else { 1.0 }, rho[i])).collect();
            ts = (0..mm * nn).map(|i| own(&market.sellers[i / mm], if both(i) { 0.0 } else { 1.0 }, rho[i])).collect();
        }
        let alpha_buyers: Vec<f64> = (0..mm)
            .map(|m| if per_trade { (0..nn).map(|n| tb[n * mm + m]).fold(self.alpha, f64::max) } else { self.alpha })
            .collect();
        let alpha_sellers: Vec<f64> = (0..nn)
            .map(|n| {
                if per_trade {
                    ts[n * mm..(n + 1) * mm].iter().copied().fold(self.alpha, f64::max)
                } else {
                    self.alpha
                }
            })
            .collect();
        let inv_alpha_buyers = alpha_buyers.iter().map(|a| 1.0 / a).collect();
        PartySteps {
            rho,
            alpha_buyers,
            inv_alpha_buyers,
            alpha_sellers,
            per_trade,
            trade_alpha_buyers: tb,
            trade_alpha_sellers: ts,
        }
    }

    /// Per-row augmented-Lagrangian weights and multiplier steps
    /// `(c_r, γ_r)`: `c_r = min(c f_r, θ / (α ‖D_r‖²))` (`f_r` the row's
    /// scale factor, [`PdParams::row_factor`]; 1 for a row the trades see
    /// at a PTDF share's scale; rows of a negligible scale get 0,
    /// [`ROW_SCALE_NEGLIGIBLE`]) with `θ` =
    /// [`PdParams::line_theta`], where `D_r` is row `r` as a function of
    /// the trades (`D_r,mn = G_r,bus(n) − G_r,bus(m)`, so
    /// `‖D_r‖² = M Σ_n G_r,bus(n)² + N Σ_m G_r,bus(m)² − 2 Σ_n G_r,bus(n) Σ_m G_r,bus(m)`),
    /// and `γ_r = γ c_r / c`. The line term's curvature along row `r` is
    /// `c_r ‖D_r‖²`; see the module docs for why it must stay below `1 / α`.
    pub fn row_weights(&self, net: &MarketNetwork, bm: &[usize], bn: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let (mm, nn) = (bm.len() as f64, bn.len() as f64);
        net.g
            .iter()
            .zip(&net.h)
            .map(|(row, h)| {
                let (sb, sb2) = bm.iter().fold((0.0, 0.0), |(s, q), k| (s + row[*k], q + row[*k] * row[*k]));
                let (ss, ss2) = bn.iter().fold((0.0, 0.0), |(s, q), k| (s + row[*k], q + row[*k] * row[*k]));
                let d2 = (mm * ss2 + nn * sb2 - 2.0 * ss * sb).max(0.0);
                if negligible_row(row, *h, bm, bn) {
                    // a row met at no injection that no trade moves by any
                    // physical amount: never priced (nor constrained by
                    // the central reference)
                    return (0.0, 0.0);
                }
                let c = self.c * self.row_factor(row, bm, bn);
                let c = if d2 > 0.0 { c.min(self.line_theta / (self.alpha * d2)) } else { c };
                let gamma = if self.c > 0.0 { self.gamma * c / self.c } else { self.gamma };
                (c, gamma)
            })
            .unzip()
    }

    /// The factor by which row `row`'s weight `c` is raised for its scale
    /// ([`ROW_SCALE_REF`]): `min(1 / s², (S / s)⁴)` for the row's trade
    /// scale `s` ([`trade_scale`], taken no smaller than
    /// [`ROW_SCALE_SPREAD`] times the row's largest coefficient) below `S`
    /// = [`PdParams::row_scale_ref`], else 1.
    pub fn row_factor(&self, row: &[f64], bm: &[usize], bn: &[usize]) -> f64 {
        let g = row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let s = trade_scale(row, bm, bn);
        if s > 0.0 {
            row_unit(s.max(ROW_SCALE_SPREAD * g), self.row_scale_ref)
        } else {
            1.0
        }
    }

    /// [`PdParams::row_weights`] under the buyers' own steps `α_m`
    /// ([`PdParams::party_steps`]): every row's weight and multiplier step
    /// scaled by `α / α*`, `α* = max_m α_m` (the line price acts on the
    /// buyers' copies only):
    ///
    /// ```text
    /// c_r = (α / α*) min(c, θ / (α ‖D_r‖²)),   γ_r = (α / α*) γ c_r / c
    /// ```
    ///
    /// Equal to [`PdParams::row_weights`] when every buyer has the common
    /// `α` (every seeded market). Why one common bound and not each
    /// buyer's own (attack round 8): the line term of the augmented
    /// Lagrangian has Hessian `H = Σ_r c_r D_r D_rᵀ` over the trades, and
    /// its curvature in the steps' metric is the largest eigenvalue of
    /// `A^{1/2} H A^{1/2}`, `A = diag(α_m)`, summed over every row that
    /// binds at once — not row by row: on congested case30 a single buyer
    /// loads a dozen binding rows with the same trades. That eigenvalue is
    /// at most `α* λ_max(H)`, and with the scaling `α* H = α H_common`
    /// (`H_common = Σ_r c_r^common D_r D_rᵀ`): never above the common-step
    /// market's `α λ_max(H_common)`, for every set of rows at once — a
    /// joint bound, not one per row — and the multiplier steps
    /// `γ_r` keep their ratio to `c_r` (so the operator's dual step is no
    /// larger relative to the fastest buyer's response than in the common
    /// market). The per-party steps therefore leave the line subsystem in
    /// the regime the common step was tuned and tested in (module docs,
    /// "Step rule with binding lines"); only the buyers' own terms get the
    /// longer step, and those are bounded by `α_m` itself. Weighting each
    /// row by `Σ_m α_m ‖D_r,m‖²` (the previous rule) bounded each row
    /// alone: one 50 kWh buyer (`α_m = 10.9` against `α = 5.69`) behind
    /// thirteen binding rows then had twice the common market's line
    /// curvature and cycled for 200 000 iterations; scaled, it clears in
    /// about 180, like the same market at 5 kWh.
    pub fn row_weights_for(
        &self,
        net: &MarketNetwork,
        bm: &[usize],
        bn: &[usize],
        alpha_buyers: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let (c, gamma) = self.row_weights(net, bm, bn);
        if alpha_buyers.iter().all(|a| *a == self.alpha) {
            return (c, gamma);
        }
        let top = alpha_buyers.iter().copied().fold(self.alpha, f64::max);
        let s = self.alpha / top;
        (c.into_iter().map(|v| v * s).collect(), gamma.into_iter().map(|v| v * s).collect())
    }
}

/// The share `ε` of a row's flow scale below which its limit counts as
/// tiny: a row whose limit with its tolerance, `h_r + tol_r`, is far
/// below `ε Φ_r` (`Φ_r` the most flow the buyers' copies can put on it,
/// [`tiny_row_factors`]) is run in about the scale `ε Φ_r` instead, by the
/// factor `F_r = u_r − (K − 1)` for `u_r = ε Φ_r / (h_r + tol_r)` beyond
/// the onset `K` ([`TINY_ROW_ONSET`]): its weight and multiplier step
/// `F_r c_r`, `F_r γ_r`, and every trade that loads it (`G_r,bus(n) ≠
/// G_r,bus(m)`; `F_mn` the largest `F_r` over the rows it loads) both
/// copies' steps `α^b_mn / F_mn`, `α^s_mn / F_mn` and the penalty
/// `ρ_mn F_mn`, with steps per trade ([`PartySteps::per_trade`]).
///
/// Why (attack round 18, finding 5): the seeded 4 × 4 market on case30
/// with ratings × 10⁻¹⁰ (limits 1.6·10⁻⁶..1.3·10⁻⁵ kW, the trades' scale
/// a few kWh) reached the 200 000 cap, as at every scale from 10⁻⁹ to
/// 10⁻¹³ (10⁻⁸: 145 918 iterations, 10⁻⁷: 21 622, 10⁻⁶: 2 278). The
/// first steps trade kWh across rows allotted µW and price every row; a
/// priced row that is slack at the optimum unwinds by `γ_r (h_r − G_r p)`,
/// a step proportional to its limit, and the buyer at its `e_max` moves
/// ~10⁻⁴ kWh between sellers per step, 100 times the limits, which resets
/// the rows' slack streaks ([`SLACK_WAIT`]), while `c_r` (~0.03) gives
/// that overload no damping at this scale. The weights alone cannot be
/// raised (the curvature bound `θ / (α ‖D_r‖²)`); the buyers' steps
/// shrunk with them, but not the sellers' steps and the penalty, reached
/// the cap too (the loaded trades' two copies then meet at the rate
/// `ρ α / F`: the reciprocity residual stalled at 5.5·10⁻⁶ kWh). Scaled
/// together, the loaded trades, their prices `λ` and the rows'
/// multipliers run the iteration of the same market at limits `F_r` times
/// larger, in units of `1 / F` kWh: the line term's curvature in the
/// steps' metric is `F_r c_r Σ_mn (α^b_mn / F_mn) D²_r,mn ≤ c_r α ‖D_r‖² ≤
/// θ` as before (and jointly, [`PdParams::row_weights_for`]), and
/// `α_mn ρ_mn` is unchanged. Only the parties' own curvature is seen `F`
/// times weaker on those trades, which at this scale moves the welfare by
/// far less than the stopping test. The iteration's fixed points are the
/// same for any positive steps, penalties and weights (each party
/// projects in the metric of its own steps, [`weighted_tau`]; see
/// [`BUYER_STEP_CAP`]), and the factors are set once in
/// [`PrimalDual::new`] from the public placement, bounds and limits
/// (from [`TINY_ROW_ONSET`] on). With `ε = 10⁻³` the seeded 4 × 4 market
/// clears in 2 278 (× 10⁻⁶) and 21 622 (10⁻⁷) iterations as before (no
/// row past the onset), 119 716 at 10⁻⁸ (145 918 before), and where it
/// reached the cap: 19 826 (10⁻⁹), 12 010 (10⁻¹⁰), 17 089 (10⁻¹¹), 3 946
/// (10⁻¹²), 970 (10⁻¹³); 58 at 10⁻¹⁴ and 10⁻¹⁵ (84 before). `ε = 10⁻²`
/// (scaled from `u_r = 1`) was faster below 10⁻⁷ (4 746 at 10⁻¹⁰) but
/// reached the market at 10⁻⁶ (2 686). A market with no row past the
/// onset keeps its iteration bit for bit (every `F_r = 1`).
pub const TINY_ROW_REF: f64 = 1e-3;

/// Where [`TINY_ROW_REF`]'s rule sets in: a row is scaled once its ratio
/// `u_r = ε Φ_r / (h_r + tol_r)` exceeds this `K`, by `F_r = u_r − (K − 1)`
/// (continuous: 1 at the onset, about `u_r` far beyond it). Why not from
/// `u_r = 1`: the markets of attack rounds 9-12 with a 10 MWh party at
/// ratings × 10⁻³..2·10⁻⁴ have rows at `u_r` up to 4.5 (their limits are
/// kW, not µW: small beside 10 MWh, not beside the rows' tolerance);
/// scaled from `u_r = 1` they ran on other steps than the ones they were
/// tuned and tested with (their tests still passed), past this onset they
/// keep them bit for bit. Why not a smaller `ε` instead (10⁻⁴, scaled from
/// `u_r = 1`): the seeded 4 × 4 market then needed 174 391 iterations at
/// ratings × 10⁻⁸ and reached the cap at 10⁻¹³.
pub const TINY_ROW_ONSET: f64 = 10.0;

/// The largest factor [`TINY_ROW_REF`] scales a row by.
pub const TINY_ROW_MAX_FACTOR: f64 = 1e12;

/// Per network row, the factor `F_r ≥ 1` of [`TINY_ROW_REF`]:
/// `F_r = min(F_max, max(1, u_r − (K − 1)))`, `u_r = ε Φ_r / (h_r + tol_r)`
/// and `K` = [`TINY_ROW_ONSET`], for a row with a positive limit, with
/// `Φ_r = Σ_m e_max,m max(0, max_n D_r,mn)` the most flow the buyers'
/// copies can put on it and `tol_r` the row's own tolerance
/// ([`crate::network::ROW_TOL_ABS_KW`]` + `[`crate::network::ROW_TOL_REL`]` · h_r`);
/// 1 for every other row (exact).
pub fn tiny_row_factors(
    params: &PdParams,
    market: &Market,
    net: &MarketNetwork,
    bm: &[usize],
    bn: &[usize],
) -> Vec<f64> {
    net.g
        .iter()
        .zip(&net.h)
        .map(|(row, h)| {
            let live = params.tiny_row_ref > 0.0 && *h > 0.0 && h.is_finite() && !bn.is_empty();
            if !live {
                return 1.0;
            }
            let top = bn.iter().fold(f64::NEG_INFINITY, |t, k| t.max(row[*k]));
            let flow = bm.iter().zip(&market.buyers).fold(0.0, |f, (k, b)| f + b.e_max * (top - row[*k]).max(0.0));
            let room = h + crate::network::ROW_TOL_ABS_KW + crate::network::ROW_TOL_REL * h;
            // `u − (K − 1)` past the onset `K`: continuous, 1 at the onset
            let f = params.tiny_row_ref * flow / room - (TINY_ROW_ONSET - 1.0);
            if f.is_finite() && f > 1.0 {
                f.min(TINY_ROW_MAX_FACTOR)
            } else {
                1.0
            }
        })
        .collect()
}

/// A network row whose trade scale `s_r` is below this reference `S` is
/// weighted in its own scale: `c_r = min(c f(s_r), θ / (α ‖D_r‖²))` in
/// [`PdParams::row_weights`] (and its multiplier step `γ_r = γ c_r / c`
/// with it), with
///
/// ```text
/// f(s) = min(1 / s², (S / s)⁴)   for s < S;   1 for s ≥ S
/// ```
///
/// so a row at or above `S` keeps `min(c, θ / (α ‖D_r‖²))` exactly. The
/// trade scale is the largest coefficient any of the market's trades sees
/// on the row, `s_r = max_mn |G_r,bus(n) − G_r,bus(m)|` ([`trade_scale`]):
/// what moves a trade's line price is the difference of its two buses'
/// coefficients, not the row's largest coefficient.
///
/// Why: `c = 1 / (4 (M + N))` was tuned for PTDF rows, whose coefficients
/// are shares of an injection. A row of a smaller scale — a LinDistFlow
/// voltage row in p.u.² per kW (the 33-bus feeder's coefficients
/// 1.2·10⁻⁶ to 1.4·10⁻⁴), a weak tie's PTDF row — gets from the same `c`
/// neither damping (`c_r s_r` moves a trade's price per kWh of overload)
/// nor a multiplier step of its scale. A near-linear pair whose trade
/// answers the price only slowly then cycles: the step up doubles along
/// each overloaded streak ([`OVERLOAD_DOUBLING`]) and overshoots, the step
/// down ([`SLACK_DOUBLING`]) unwinds it, to the 200 000 cap (attack round
/// 13's pair on the feeder's `bus 18 V min`). Weighted `c / s²` it clears
/// (5 822 iterations). The previous rule applied `c / g_r²` only below a
/// floor of 10⁻² on the row's largest coefficient `g_r`, a step of 10⁴ in
/// the weight: attack round 14's pair across a weak tie just above it
/// (`g_r` 0.26 → 827 iterations, 0.08 → 15 023, 0.044 and below the cap;
/// below the floor ~210). `f` is continuous: `1 / s²` (the row in its own
/// scale) below `S²` = 0.09, phased in as `(S / s)⁴` above it; the weak
/// tie then clears in 206-610 iterations at every reactance from 2 to
/// 100 p.u. Why not `c / s²` for every row (`S` = 1, the plain rule): a
/// PTDF row's trade scale is below 1, and the seeded 4 × 4 market of seed
/// 20 on congested case30 (`tests/attack.rs`) went back to its limit cycle
/// (the 200 000 cap; 297 iterations with `S` = 0.3); why not `(S / s)²`
/// (continuous, but weaker below `S`): with `S` = 0.3 round 13's feeder
/// pair reached a 30 000 cap. The rule is a property of the row and the
/// market's placement alone, chosen once in [`PrimalDual::new`] as every
/// row weight (the Shamir baseline reads the same weights), and the
/// iteration's fixed points are the same for any positive weights and
/// steps (see [`BUYER_STEP_CAP`]); the bound `θ / (α ‖D_r‖²)` still caps
/// the row's curvature.
///
/// A trade that sees a small difference on a row other trades see at PTDF
/// scale (attack round 14: a near-linear pair between buses 3 and 4, 0.017
/// apart on case30's line 2-5, with small parties at buses 29 and 5; a
/// pair between feeder buses 17 and 18) gets from the row's weight, which
/// is the other trades' and capped by `θ / (α ‖D_r‖²)` for their sake, no
/// damping of its own; with steps per trade its buyer weights the
/// overload damping by the trade's own coefficients
/// ([`TRADE_DAMPING_THETA`]).
///
/// A row whose trade scale is below [`ROW_SCALE_NEGLIGIBLE`] and whose
/// limit holds at zero injection (`h_r ≥ 0`) gets weight and step 0 and is
/// never priced ([`negligible_row`]): its weight `c / s_r²` would be
/// astronomical or, below `s_r ≈ 10⁻¹⁵⁴`, infinite.
pub const ROW_SCALE_REF: f64 = 0.3;

/// The smallest share of a row's largest coefficient its trade scale is
/// taken as ([`PdParams::row_factor`]): a difference of a few units in the
/// last place between buses a line cannot tell apart (two buses on one
/// spur of case30, whose PTDF differences are rounding noise) would
/// otherwise weight an unloaded row by `10³⁰` and more, past the fixed-point
/// range of the Shamir baseline. The smallest spreads the rule is meant
/// for are a few % (case30's line 2-5 between buses 3 and 4: 0.017 of
/// 0.558; feeder buses 17 and 18 on bus 18's voltage row).
pub const ROW_SCALE_SPREAD: f64 = 1e-2;

/// Trade scales below this (per kW) are no physical network row — the
/// 33-bus feeder's voltage rows are 10⁻⁶..10⁻⁴, the same feeder's thermal
/// rows at a base of 10⁹ MVA 10⁻¹² — and a row of such a scale whose limit
/// holds at zero injection is no constraint, for primal-dual and the
/// central reference alike ([`negligible_row`], the one test both apply:
/// weight and step 0 in [`PdParams::row_weights`], no coefficient in
/// [`crate::central::solve`]).
///
/// Why here: attack round 14 scaled the feeder's impedances by 10⁻¹⁰⁰ and
/// 10⁻¹⁷⁰ (V-max rows of 10⁻¹⁰³.. with no headroom): Clarabel treated those
/// rows as slack within its tolerance while primal-dual, weighting them
/// `c / s_r²`, enforced them exactly (99.99 % below it) or, with `s_r²`
/// underflowing, ran with infinite weights to the cap. The line was first
/// drawn at 10⁻³⁰, and attack round 15 found the same disagreement between
/// it and about 10⁻¹⁶ (impedances × 10⁻¹⁶..10⁻²⁶: `OffOptimum`), where the
/// reference stops seeing the rows by its own tolerances. Now both sides
/// decide by this one threshold, two decades below the smallest physical
/// row the tests exercise (10⁻¹², still enforced by both) and two above
/// the smallest the reference was seen to enforce (about 10⁻¹⁶, impedances
/// × 10⁻¹²): no disagreement is left between them, and a row dropped moves
/// by at most 10⁻¹⁴ of its unit per kW the market trades.
pub const ROW_SCALE_NEGLIGIBLE: f64 = 1e-14;

/// Whether network row `row` (limit `h`) is no constraint for the market
/// whose buyers and sellers sit at model buses `bm` and `bn`: its trade
/// scale ([`trade_scale`]) is positive and below [`ROW_SCALE_NEGLIGIBLE`]
/// and the limit holds at zero injection (`h ≥ 0`). Primal-dual never
/// prices such a row and the central reference drops its coefficients, so
/// both clear the same problem.
pub fn negligible_row(row: &[f64], h: f64, bm: &[usize], bn: &[usize]) -> bool {
    let s = trade_scale(row, bm, bn);
    s > 0.0 && s < ROW_SCALE_NEGLIGIBLE && h >= 0.0
}

/// With steps per trade ([`PartySteps::per_trade`]), each trade's buyer
/// sees the overload part of the line price with its own weight: the bus
/// prices of `μ̂ = max(0, μ + c_r g_r)` plus `(w_mn − 1)` times the
/// overload damping `δ = Σ_r max(0, μ̂_r − μ_r) G_r` (the rows over their
/// limit only), so on a row over its limit the trade is charged
/// `μ_r + w_mn c_r g_r` per unit of its coefficient difference, and on
/// every other row exactly what every trade is charged. `w_mn` is chosen
/// by the trade's owner from the coefficients its own trade sees and the
/// public row weights of the step set in use:
///
/// ```text
/// κ_mn = α^b_mn Σ_{r live} c_r (G_r,bus(n) − G_r,bus(m))²   (its line curvature)
/// σ_mn = α^b_mn a_m + α^s_mn a_n                            (its own curvature)
/// w_mn − 1 = min(max(0, L_mn − σ_mn − κ_mn), (W − 1) κ_mn) / κ_mn
/// ```
///
/// (`w_mn = 1` where `κ_mn = 0`; `T` = [`TRADE_DAMPING_THETA`], `W` =
/// [`TRADE_DAMPING_MAX`]), over the rows some iterate can overload (the
/// live rows; the others never enter `δ`), with the level `L_mn ≤ T θ`
/// the smallest of the live rows' levels that the trade sees, each set so
/// the row's extra curvature stays within `B θ` ([`TRADE_DAMPING_ROW`]):
/// a trade whose whole curvature in its step's metric, its own plus its
/// line term, is below the level is raised to it, and one already at or
/// above it is charged as before. The operator still keeps one price per
/// row and sends per-bus vectors (the bus prices and `δ`,
/// [`PrimalDual::bus_prices`]); the per-trade weight is the buyer's
/// (diagonal preconditioning of the damping term in the trade, as in Pock
/// & Chambolle 2011's per-variable steps). At a fixed point `μ̂ = μ`, so
/// `δ = 0` and the fixed points are unchanged (see [`BUYER_STEP_CAP`]).
///
/// Why: the row weights `c_r` ([`ROW_SCALE_REF`]) are per row, capped by
/// `θ / (α ‖D_r‖²)` for the sake of the trades that see the row at PTDF
/// scale; a near-linear pair whose two buses differ little on it gets the
/// damping `c_r (G_r,bus(n) − G_r,bus(m))²`, below its own (near-zero)
/// curvature, and cycled to the cap (attack round 14: buses 3 → 4, 0.017
/// apart on case30's line 2-5, with small parties at buses 5 and 29:
/// `NoConvergence` at 200 000; feeder buses 17 → 18 likewise). With `T =
/// ½` they clear in 3 611 and 883 iterations (a pair at 32 → 33: 935); `T
/// = 1`: 6 051, 1 439, 1 531; `T = 2`: the first beyond a 30 000 cap;
/// `T = ¼`: 4 494, 771, 1 000. Only markets with steps per trade (a party
/// beyond `E₀`) run it: every seeded market, and the Shamir baseline, keep
/// their iteration bit for bit.
pub const TRADE_DAMPING_THETA: f64 = 0.5;

/// The budget `B` of the per-trade overload damping on one row
/// ([`TRADE_DAMPING_THETA`]), in units of the line curvature bound `θ`: the
/// trades that see row `r` share `B θ` of extra curvature between them,
/// the neediest first.
///
/// **Which rows.** The buyers' copies stay in their own sets (`x_mn ≥ 0`,
/// `Σ_n x_mn ≤ e_max,m`), so row `r`'s flow `G_r p(x) = Σ_mn x_mn D_r,mn`
/// (`D_r,mn = G_r,bus(n) − G_r,bus(m)`) is never above
/// `F_r = Σ_m e_max,m max(0, max_n D_r,mn)`. A row with `F_r < h_r` (less
/// a rounding margin) is never over its limit, so `μ̂_r − μ_r ≤ 0` on every
/// iteration and it never enters `δ`: the weights do not act on it, and
/// neither `κ_mn` nor the levels count it (public data: the placement and
/// the requests' bounds). Counted (the rule before attack round 17), the
/// slack rows a near-linear pair sees at PTDF scale put its `κ_mn` at `T θ`
/// and left it no damping on the one row that binds.
///
/// **Which trades.** The line price moves a trade's amount, its two copies
/// tied by the penalty `ρ_mn`; per iteration the buyer's copy moves by
/// `α^b_mn` times its gradient and the seller's by `α^s_mn` times its own,
/// so the amount's curvature in the steps' metric is that of the buyer's
/// utility on the buyer's copy and of the seller's cost on the seller's,
/// `σ_mn = α^b_mn a_m + α^s_mn a_n` (the welfare along the trade alone,
/// `a_m + a_n`, each part in its copy's step), plus the line term on the
/// buyer's copy, `w_mn κ_mn`: the amount converges at the rate that whole
/// curvature gives it, and the overload damping only adds to it. A trade
/// whose own terms give it the level needs no damping: the seeded markets
/// run with none. So the row's budget is spent water-filling (the
/// allocation that maximises the smallest whole curvature under the
/// budget): row `r`'s level is
///
/// ```text
/// L_r = max { L ≤ T θ : Σ_mn e_mn(L) κ_r,mn / κ_mn ≤ B θ },
/// e_mn(L) = min(max(0, L − σ_mn − κ_mn), (W − 1) κ_mn)
/// ```
///
/// (`κ_r,mn = α^b_mn c_r D_r,mn²`, found by bisection from below), and
/// each trade takes `w_mn − 1 = e_mn(L_mn) / κ_mn` at the smallest level
/// `L_mn = min_r L_r` of the live rows it sees. Ordinary trades, whose own
/// terms already give them more than the level, draw nothing; a crowd of
/// near-linear trades of equal need shares the budget equally, as before.
///
/// **The joint bound.** `e_mn` grows with `L` and `L_mn ≤ L_r` on every
/// live row the trade sees, so on every live row
///
/// ```text
/// Σ_mn α^b_mn (w_mn − 1) c_r D_r,mn² = Σ_mn e_mn(L_mn) κ_r,mn / κ_mn ≤ B θ,
/// ```
///
/// and with the row's own part `c_r Σ_mn α^b_mn D_r,mn² ≤ θ` (the cap
/// `θ / (α ‖D_r‖²)` of [`PdParams::row_weights`], scaled to the largest
/// buyer step) the row's whole curvature, `D_r diag(α w) D_rᵀ c_r`, is at
/// most `(1 + B) θ` = 1.5 < 2 for `θ = ½`, `B = 2`: an explicit gradient
/// step on that rank-one term does not overshoot. Each trade's whole
/// curvature is raised to at most `T θ` (`σ_mn + w_mn κ_mn ≤ max(σ_mn +
/// κ_mn, T θ)`).
///
/// Why: without a budget every trade's weight aimed at `T θ` on the same
/// row and they added up: attack round 16's crowd of near-linear pairs
/// between case30 buses 3 and 4 (line 2-5) took 3 611 (one pair), 8 961
/// (three), 35 968 (five) iterations and reached the cap from six; the same
/// crowd on feeder buses 17 → 18 from six. Shared in proportion to each
/// trade's own need toward `T θ` (the rule of the first budget: six pairs
/// 13 131), the 144 ordinary trades of a seeded 12 × 12 market beside one
/// near-linear pair (attack round 17, line 2-5 the only rated line) each
/// needed almost `T θ` (their line share is small, the row weight being
/// capped for the crowd), filled the budget, and the pair went from 6 445
/// iterations (unshared) to the 200 000 cap. Water-filling with the own
/// curvature it clears in 7 027 (with 2, 4, 8, 12 ordinary parties a side:
/// 2 878, 3 164, 5 718, 10 527; 24 a side: 24 041-50 606), and the crowd
/// of pairs in 3 628 (one), 5 616 (two), 5 717 (four), 11 950 (six),
/// 16 813 (eight); twelve pairs still reach the cap (each of the 144
/// near-linear trades gets `B θ / 144`). The sum `a_m + a_n` in the
/// buyer's step alone: 7 047, and round 16's trade at the clamp 7 951
/// against 3 494 (5 651 with the first budget). `B = ½` (the row's budget one trade's `T θ`) left six
/// pairs at the cap (60 000), `B = 1`: 25 401; `B = 4`: 7 608 but a row
/// curvature above 2 (`(1 + B) θ = 2.5`). The weights are set once in
/// [`PrimalDual::new`] from the public placement, bounds, curvatures and
/// step set, so the fixed points and the sans-IO tasks' bit-identity are
/// untouched.
pub const TRADE_DAMPING_ROW: f64 = 2.0;

/// The largest per-trade damping weight `w_mn` ([`TRADE_DAMPING_THETA`]):
/// `1 / ROW_SCALE_SPREAD²`, the factor of a row at its spread floor, so a
/// trade whose buses differ only by rounding noise on every row (`κ_mn`
/// ≈ 0) is not weighted without bound.
pub const TRADE_DAMPING_MAX: f64 = 1.0 / (ROW_SCALE_SPREAD * ROW_SCALE_SPREAD);

/// The largest coefficient a trade of the market sees on `row`,
/// `max_mn |G_r,bus(n) − G_r,bus(m)|` (0 when a side is empty).
pub fn trade_scale(row: &[f64], bm: &[usize], bn: &[usize]) -> f64 {
    if mutants::active(Mutation::RowScaleFromCoefficients) {
        return row.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    }
    let range = |ks: &[usize]| {
        ks.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), k| (lo.min(row[*k]), hi.max(row[*k])))
    };
    if bm.is_empty() || bn.is_empty() {
        return 0.0;
    }
    let ((blo, bhi), (slo, shi)) = (range(bm), range(bn));
    (shi - blo).max(bhi - slo).max(0.0)
}

/// The factor `min(1 / s², (S / s)⁴)` by which a row's weight `c` is
/// raised when its trade scale `s` is below `S` = [`ROW_SCALE_REF`], else
/// 1 (exact: the weight is unchanged).
fn row_unit(s: f64, reference: f64) -> f64 {
    if s > 0.0 && s < reference && !mutants::active(Mutation::RowsNotNormalized) {
        let s = s.max(ROW_SCALE_NEGLIGIBLE);
        let q = reference / s;
        (1.0 / (s * s)).min(q * q * q * q)
    } else {
        1.0
    }
}

/// One set of buyer steps and the row weights and multiplier steps for
/// them: the buyers' own ([`PdParams::party_steps`]) or the capped ones of
/// the congested mode ([`BUYER_STEP_CAP`]).
#[derive(Debug, Clone)]
struct StepSet {
    alpha_b: Vec<f64>,
    ia_b: Vec<f64>,
    /// The per-trade buyer steps and their inverses (empty unless the
    /// steps are per trade, [`PartySteps::per_trade`]).
    ab_t: Vec<f64>,
    iab_t: Vec<f64>,
    c_row: Vec<f64>,
    gamma_row: Vec<f64>,
    /// The per-trade damping weights `w_mn − 1` (empty unless per trade).
    tw: Vec<f64>,
}

/// Which step set [`PrimalDual`] runs with, and what the switch rule
/// (`PrimalDual::update_mode`) counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepMode {
    /// The capped buyer steps are installed ([`BUYER_STEP_CAP`]).
    pub congested: bool,
    /// Consecutive iterations that ended with no network row priced
    /// (every `μ_r = 0`).
    pub quiet: u32,
    /// Consecutive iterations that ended with some row priced (`quiet` or
    /// this is 0).
    pub priced: u32,
    /// Times the congested mode was left ([`PdParams::congested_exits`] at
    /// most).
    pub exits: u32,
    /// Mode switches so far (entries and exits): at most `2 E + 1` for
    /// `E` = [`PdParams::congested_exits`].
    pub switches: u32,
}

/// Lanes of the per-column reductions: independent partial results, so
/// the compiler can keep them in vector registers.
const L: usize = 4;

/// What a gradient step's sweep learns about its values `v` for the
/// projection ([`warm_tau`]), against the support `S = {x_old > 0}` of the
/// party's previous iterate.
#[derive(Debug, Clone, Copy)]
struct Stats {
    /// `Σ max(0, v)`.
    clamped: f64,
    /// `Σ_{k∈S} v_k` and `|S|`.
    sum_s: f64,
    cnt_s: f64,
    /// `min_{k∈S} v_k` and `max_{k∉S} v_k`.
    min_s: f64,
    max_n: f64,
}

/// The projection's threshold `τ` without another sweep, when it can be
/// had from the sweep's [`Stats`]: `0` when the clamped sum is within
/// `[lo, hi]`; otherwise the root of `Σ max(0, v − τ) = target` if the
/// previous support `S` is still the support (`τ = (Σ_S v − target)/|S|`
/// with every `v` in `S` above `τ` and every other at or below it — then
/// `τ` is exactly Michelot's fixed point). Near convergence the support
/// rarely changes, so this replaces the projection's extra sweeps; `None`
/// asks for [`capped_tau`].
fn warm_tau(st: &Stats, lo: f64, hi: f64) -> Option<f64> {
    let target = if st.clamped > hi {
        hi
    } else if st.clamped < lo {
        lo
    } else {
        return Some(0.0);
    };
    if st.cnt_s == 0.0 {
        return None;
    }
    let tau = (st.sum_s - target) / st.cnt_s;
    (st.min_s > tau && st.max_n <= tau).then_some(tau)
}

/// Sellers' columns whose totals [`PrimalDual::certificate`]'s sweep
/// sums side by side.
const CERT_COLUMNS: usize = 8;

/// What one sweep over the trade matrices gives the duality certificate
/// ([`PrimalDual::certificate`]) and the settled-rows test
/// ([`PrimalDual::settled_rows_hold`]): the settled trades' totals per
/// buyer (`t`) and per seller (`s`), each buyer's cheapest seller and each
/// seller's highest price (line prices from `μ`), `Σ μ_r h_r` over the
/// priced rows, and the settled trades' bus injections from the totals.
#[derive(Debug, Clone)]
struct SettledSweep {
    dual_h: f64,
    t: Vec<f64>,
    s: Vec<f64>,
    cheapest: Vec<f64>,
    highest: Vec<f64>,
    inj: Vec<f64>,
    /// Every settled trade is `≥ 0` (none is NaN).
    nonneg: bool,
}

/// State of the primal–dual iteration.
///
/// Layout: every trade matrix is **seller-major** (`[n·M + m]`): the
/// sellers' columns are contiguous, and the buyers' pass sweeps the same
/// matrices column by column, each buyer's statistics kept in arrays over
/// the buyers. No matrix is ever transposed or gathered; one
/// iteration streams `x`, `q` and the buyers' steps `v` twice and `y`, `λ`
/// once (each seller column's second sweep finds it in L1 cache) and
/// allocates nothing.
#[derive(Debug, Clone)]
pub struct PrimalDual {
    pub params: PdParams,
    pub buyers: usize,
    pub sellers: usize,
    /// Buyers' trade copies `x[n·M + m]` (seller-major), kWh; see
    /// [`PrimalDual::x_at`] and [`PrimalDual::buyer_row`].
    x: Vec<f64>,
    /// Sellers' trade copies `y[n·M + m]` (seller-major), kWh.
    pub y: Vec<f64>,
    /// Reciprocity prices `λ[n·M + m]` (seller-major), $/kWh.
    pub lambda: Vec<f64>,
    /// What a buyer's step reads of the seller's two values:
    /// `q = λ − ρ y` (seller-major), written with them.
    q: Vec<f64>,
    /// Network-row multipliers `μ_r ≥ 0`, $/kWh.
    pub mu: Vec<f64>,
    /// Per-row augmented-Lagrangian weights `c_r` and multiplier steps
    /// `γ_r` ([`PdParams::row_weights_for`]).
    c_row: Vec<f64>,
    /// Per-trade penalties `ρ_mn` (seller-major) and per-party steps
    /// ([`PdParams::party_steps`]).
    rho_t: Vec<f64>,
    alpha_b: Vec<f64>,
    ia_b: Vec<f64>,
    alpha_s: Vec<f64>,
    /// The steps are per trade ([`PartySteps::per_trade`]): the buyers'
    /// steps `α^b_mn` of the current step set and their inverses, the
    /// sellers' `α^s_mn` (seller-major; empty otherwise), and which trades
    /// load some network row (`G_r,bus(n) ≠ G_r,bus(m)` for some `r`: the
    /// only ones the congested mode caps).
    per_trade: bool,
    ab_t: Vec<f64>,
    iab_t: Vec<f64>,
    as_t: Vec<f64>,
    /// The step set not in use: the capped one ([`BUYER_STEP_CAP`]) outside
    /// the congested mode, the buyers' own in it; `None` when the cap
    /// changes nothing (no buyer step above it, or no network row).
    other: Option<Box<StepSet>>,
    /// The congested mode and its switch rule's counters
    /// (`PrimalDual::update_mode`).
    mode: StepMode,
    /// Per network row: iterations in a row it has ended priced and
    /// overloaded ([`OVERLOAD_WAIT`]).
    overload: Vec<u32>,
    /// Per network row: iterations in a row it has ended priced and under
    /// its limit ([`SLACK_WAIT`]).
    slack: Vec<u32>,
    /// The largest duality gap, $, that still certifies every party to
    /// within its own tolerance ([`scaled_gap`]).
    scaled_gap: f64,
    gamma_row: Vec<f64>,
    /// Per trade (seller-major, steps per trade only): `w_mn − 1`, the
    /// extra weight of the overload damping the trade sees
    /// ([`trade_damping`]).
    tw: Vec<f64>,
    /// `G` restricted to the network's rows (row-major `R × K`) and `h`.
    g: Vec<f64>,
    /// `Σ_k |G_rk|` per row ([`PrimalDual::settled_rows_bound`]).
    g_abs: Vec<f64>,
    h: Vec<f64>,
    buses: usize,
    /// Model bus index of each buyer and seller.
    bm: Vec<usize>,
    bn: Vec<usize>,
    pub iterations: usize,
    /// The bus line prices were installed by [`PrimalDual::apply_operator`].
    prices_ready: bool,
    /// `excess[r] = G_r p(x) − h_r` is current for `x`.
    excess_valid: bool,
    // working vectors, allocated once
    excess: Vec<f64>,
    bus_price: Vec<f64>,
    inj: Vec<f64>,
    /// The buyers' gradient steps `v` (seller-major, `M × N`).
    v: Vec<f64>,
    /// `Σ_n x_mn` and `Σ_m y_mn` of the current iterate; `Σ_m x_mn`.
    xt: Vec<f64>,
    yt: Vec<f64>,
    xcol: Vec<f64>,
    /// Per buyer: the marginal, the own bus line price, the threshold.
    gb: Vec<f64>,
    own: Vec<f64>,
    tau: Vec<f64>,
    bstats: BuyerStats,
    /// Per seller: the bus line price.
    bp_col: Vec<f64>,
    /// A seller's gradient step, a buyer's gathered row (length `max(M, N)`).
    col: Vec<f64>,
    /// `x` before the round of buyer updates (sans-IO path only).
    old: Vec<f64>,
    /// The vector unit [`PrimalDual::step`]'s kernels run on.
    isa: Isa,
}

/// What one iteration changed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepReport {
    pub residual: f64,
    pub change: f64,
    /// Largest violation of a network row, kW.
    pub violation: f64,
    /// The duality certificate, when the residual tests passed (it is
    /// computed only then; see [`PrimalDual::certificate`]).
    pub certificate: Option<Certificate>,
    pub converged: bool,
}

/// A bound on the distance of the settled trades to the optimum, from the
/// iteration's own prices (weak duality; see [`PrimalDual::certificate`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Certificate {
    /// Welfare of the settled trades, $.
    pub welfare: f64,
    /// The dual function `d(λ, μ) ≥` the optimum welfare, $.
    pub dual: f64,
    /// The line multipliers' price of the settled trades' overload,
    /// `Σ_r μ_r max(0, G_r p − h_r)`, $ (what an infeasible clearing may
    /// have gained over the optimum, to first order).
    pub overload_value: f64,
}

impl Certificate {
    /// `(d − W) / max(|d|, |W|)`: the optimum is at most this far (relative)
    /// above the settled welfare.
    pub fn relative_gap(&self) -> f64 {
        (self.dual - self.welfare) / self.dual.abs().max(self.welfare.abs()).max(f64::MIN_POSITIVE)
    }

    /// Within the relative tolerance `eps` on both sides: the gap, and the
    /// overload's value (the other side, to first order). Below an
    /// absolute `1e-9` $ either counts as closed (a market with no gain
    /// from trade has welfare 0 and a dual of 0).
    pub fn holds(&self, eps: f64) -> bool {
        let scale = self.dual.abs().max(self.welfare.abs());
        let ok = |v: f64| v <= 1e-9 || v <= eps * scale;
        ok((self.dual - self.welfare).abs()) && ok(self.overload_value)
    }
}

/// Buyer `m`'s gradient step on trade `(m, n)`:
/// Every buyer's [`Stats`] as arrays over the buyers (structure of arrays),
/// updated column by column by [`buyer_column`].
#[derive(Debug, Clone)]
struct BuyerStats {
    clamped: Vec<f64>,
    sum_s: Vec<f64>,
    cnt_s: Vec<f64>,
    min_s: Vec<f64>,
    max_n: Vec<f64>,
}

impl BuyerStats {
    fn new(m: usize) -> Self {
        BuyerStats {
            clamped: vec![0.0; m],
            sum_s: vec![0.0; m],
            cnt_s: vec![0.0; m],
            min_s: vec![f64::INFINITY; m],
            max_n: vec![f64::NEG_INFINITY; m],
        }
    }

    fn reset(&mut self) {
        self.clamped.fill(0.0);
        self.sum_s.fill(0.0);
        self.cnt_s.fill(0.0);
        self.min_s.fill(f64::INFINITY);
        self.max_n.fill(f64::NEG_INFINITY);
    }

    fn get(&self, m: usize) -> Stats {
        Stats {
            clamped: self.clamped[m],
            sum_s: self.sum_s[m],
            cnt_s: self.cnt_s[m],
            min_s: self.min_s[m],
            max_n: self.max_n[m],
        }
    }
}

/// The buyers' pass on one seller's column ([`kernels::buyer_column`]
/// on the statistics' arrays); `al` the buyers' steps, `r` the column's
/// penalties.
#[allow(clippy::too_many_arguments)]
fn buyer_column(
    isa: Isa,
    x: &[f64],
    q: &[f64],
    v: &mut [f64],
    g: &[f64],
    own: &[f64],
    bp: f64,
    al: &[f64],
    r: &[f64],
    st: &mut BuyerStats,
) {
    let BuyerStats { clamped, sum_s, cnt_s, min_s, max_n } = st;
    kernels::buyer_column(isa, x, q, v, g, own, bp, al, r, clamped, sum_s, cnt_s, min_s, max_n);
}

/// The sign of the sellers' price step (the planted `WrongPriceUpdate`
/// flips it).
fn price_sign() -> f64 {
    if mutants::active(Mutation::WrongPriceUpdate) {
        -1.0
    } else {
        1.0
    }
}

/// `Σ v` in order (a buyer's total: the buyers' pass adds its trades one
/// seller after the other).
fn seq_sum(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |s, x| s + x)
}

/// [`TINY_ROW_REF`]'s steps: both copies' steps of every trade divided by
/// the largest factor `F_r` of the rows it loads (`G_r,bus(n) ≠
/// G_r,bus(m)`) and its penalty multiplied by it, the steps made per trade
/// where they were common.
fn tiny_row_steps(steps: &mut PartySteps, net: &MarketNetwork, bm: &[usize], bn: &[usize], tiny: &[f64]) {
    let (mm, nn) = (bm.len(), bn.len());
    if !steps.per_trade {
        steps.per_trade = true;
        steps.trade_alpha_buyers = (0..mm * nn).map(|i| steps.alpha_buyers[i % mm]).collect();
        steps.trade_alpha_sellers = (0..mm * nn).map(|i| steps.alpha_sellers[i / mm]).collect();
    }
    if mutants::active(Mutation::TinyRowStepsIgnored) {
        return;
    }
    for i in 0..mm * nn {
        let (kb, ks) = (bm[i % mm], bn[i / mm]);
        let f = net.g.iter().zip(tiny).filter(|(row, _)| row[ks] != row[kb]).fold(1.0f64, |m, (_, f)| m.max(*f));
        if f > 1.0 {
            steps.trade_alpha_buyers[i] /= f;
            steps.trade_alpha_sellers[i] /= f;
            steps.rho[i] *= f;
        }
    }
}

/// Which trades load some network row, seller-major: `G_r,bus(n) ≠
/// G_r,bus(m)` for some row `r` (a trade within one bus, or between buses
/// no row tells apart, loads none).
fn trade_loads(net: &MarketNetwork, bm: &[usize], bn: &[usize]) -> Vec<bool> {
    let mm = bm.len();
    (0..mm * bn.len()).map(|i| net.g.iter().any(|row| row[bn[i / mm]] != row[bm[i % mm]])).collect()
}

/// Per trade (seller-major), `w_mn − 1`: the extra weight of the overload
/// damping trade `(m, n)` sees under the buyer steps `ab` and the row
/// weights `c_row` of one step set ([`TRADE_DAMPING_THETA`]).
#[allow(clippy::too_many_arguments)]
fn trade_damping(
    params: &PdParams,
    market: &Market,
    net: &MarketNetwork,
    bm: &[usize],
    bn: &[usize],
    ab: &[f64],
    as_t: &[f64],
    c_row: &[f64],
) -> Vec<f64> {
    let (mm, nt) = (bm.len(), bm.len() * bn.len());
    let target = TRADE_DAMPING_THETA * params.line_theta;
    let budget = TRADE_DAMPING_ROW * params.line_theta;
    if mutants::active(Mutation::TradeDampingOff) {
        return vec![0.0; nt];
    }
    let diff = |i: usize, row: &[f64]| row[bn[i / mm]] - row[bm[i % mm]];
    // the rows some iterate can overload ([`overloadable_rows`]); only
    // they ever enter `δ`
    let live = overloadable_rows(market, net, bm, bn);
    // per trade: its line curvature `κ_mn` over those rows, its own
    // curvature `σ_mn`, and the most extra curvature `W` allows
    let kappa: Vec<f64> = (0..nt)
        .map(|i| {
            ab[i]
                * net
                    .g
                    .iter()
                    .zip(c_row)
                    .zip(&live)
                    .filter(|(_, l)| **l)
                    .map(|((row, c), _)| c * diff(i, row) * diff(i, row))
                    .sum::<f64>()
        })
        .collect();
    let own_curvature = !mutants::active(Mutation::TradeDampingOwnCurvatureIgnored);
    let sigma: Vec<f64> = (0..nt)
        .map(|i| {
            let (am, an) = (market.buyers[i % mm].a, market.sellers[i / mm].a);
            if own_curvature {
                ab[i] * am + as_t[i] * an
            } else {
                0.0
            }
        })
        .collect();
    // the extra curvature trade `i` takes at level `L`
    let extra = |i: usize, level: f64| -> f64 {
        if kappa[i] > 0.0 {
            (level - sigma[i] - kappa[i]).max(0.0).min((TRADE_DAMPING_MAX - 1.0) * kappa[i])
        } else {
            0.0
        }
    };
    // each live row's level `L_r`: `T θ` where the row's budget allows
    // it, else the level at which the trades' extra curvature on the row
    // fills `B θ` (bisection from below, so the budget holds)
    let unshared = mutants::active(Mutation::TradeDampingUnshared);
    let level: Vec<f64> = net
        .g
        .iter()
        .zip(c_row)
        .zip(&live)
        .map(|((row, c), l)| {
            let on_row: Vec<(usize, f64)> = (0..nt)
                .filter_map(|i| {
                    let k = ab[i] * c * diff(i, row) * diff(i, row);
                    (*l && k > 0.0 && kappa[i] > 0.0).then(|| (i, k / kappa[i]))
                })
                .collect();
            let load = |level: f64| on_row.iter().map(|(i, share)| extra(*i, level) * share).sum::<f64>();
            if unshared || load(target) <= budget {
                return target;
            }
            let (mut lo, mut hi) = (0.0f64, target);
            for _ in 0..LEVEL_BISECTIONS {
                let mid = 0.5 * (lo + hi);
                if load(mid) <= budget {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            lo
        })
        .collect();
    (0..nt)
        .map(|i| {
            if kappa[i] <= 0.0 {
                return 0.0;
            }
            let l = net
                .g
                .iter()
                .zip(c_row)
                .zip(&live)
                .zip(&level)
                .filter(|(((row, c), l), _)| **l && **c * diff(i, row) * diff(i, row) > 0.0)
                .fold(target, |m, (_, v)| m.min(*v));
            extra(i, l) / kappa[i]
        })
        .collect()
}

/// Bisections of a row's damping level ([`TRADE_DAMPING_ROW`]): the level
/// lies in `[0, T θ]`, and 60 halvings reach its last bits.
const LEVEL_BISECTIONS: u32 = 60;

/// Which network rows some iterate can overload: the buyers' copies stay
/// in their own sets (`x_mn ≥ 0`, `Σ_n x_mn ≤ e_max,m`), so the flow
/// `G_r p(x) = Σ_mn x_mn D_r,mn` of row `r` is at most
/// `Σ_m e_max,m max(0, max_n D_r,mn)`; a row whose limit exceeds that
/// (with a margin for rounding) is never over it, its `μ̂_r − μ_r` is never
/// positive, and it never enters the overload damping `δ`
/// ([`TRADE_DAMPING_ROW`]).
fn overloadable_rows(market: &Market, net: &MarketNetwork, bm: &[usize], bn: &[usize]) -> Vec<bool> {
    if mutants::active(Mutation::TradeDampingSlackRowsCounted) {
        return vec![true; net.h.len()];
    }
    net.g
        .iter()
        .zip(&net.h)
        .map(|(row, h)| {
            let top = bn.iter().fold(f64::NEG_INFINITY, |t, k| t.max(row[*k]));
            let g = row.iter().fold(0.0f64, |t, v| t.max(v.abs()));
            let (flow, size) = bm
                .iter()
                .zip(&market.buyers)
                .fold((0.0, 0.0), |(f, s), (k, b)| (f + b.e_max * (top - row[*k]).max(0.0), s + b.e_max * 2.0 * g));
            // a NaN bound counts as live
            let never = flow + OVERLOAD_MARGIN * size < *h;
            !never
        })
        .collect()
}

/// The relative margin of [`overloadable_rows`]' test, in units of the
/// largest flow the buyers' copies could carry by their bounds: far above
/// the rounding of the operator's flow sums.
const OVERLOAD_MARGIN: f64 = 1e-9;

/// The threshold `τ` of the projection of `v` onto `{x ≥ 0, lo ≤ Σ x ≤ hi}`
/// in the metric of the steps `w > 0` (`min Σ (x − v)² / w`):
/// `x = max(0, v − w τ)`, `τ = 0` when `Σ max(0, v)` is within the bounds,
/// otherwise the root of `Σ max(0, v − w τ) = target` by Michelot's sweeps
/// weighted (`τ = (Σ_S v − target) / Σ_S w` over the coordinates still
/// above their threshold; `τ` only grows). With every `w` equal this is
/// the Euclidean projection of [`project_capped`].
pub fn weighted_tau(v: &[f64], w: &[f64], lo: f64, hi: f64) -> f64 {
    let clamped = seq_sum_pos(v);
    let target = if clamped > hi {
        hi
    } else if clamped < lo {
        lo
    } else {
        return 0.0;
    };
    let wt = |k: usize| w[k];
    let mut count = v.len();
    let (mut sv, mut sw) = (0.0, 0.0);
    for k in 0..v.len() {
        sv += v[k];
        sw += wt(k);
    }
    let mut tau = (sv - target) / sw;
    loop {
        let (mut s, mut sw, mut c) = (0.0, 0.0, 0usize);
        for k in 0..v.len() {
            if v[k] > wt(k) * tau {
                s += v[k];
                sw += wt(k);
                c += 1;
            }
        }
        if c == 0 || c >= count {
            break;
        }
        count = c;
        tau = (s - target) / sw;
    }
    tau
}

/// `Σ max(0, v)` in order.
fn seq_sum_pos(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |s, x| s + x.max(0.0))
}

/// Buyer `m`'s update with per-trade steps `a` (`α^b_mn`) and penalties
/// `r`: the gradient step `v = x + α^b_mn (U' − ρ_mn x − q − π_mn)` on each
/// trade, then its projection in the metric of its steps,
/// `out = max(0, v − α^b_mn τ)` ([`weighted_tau`]). `x`, `q`, `bp`
/// (the sellers' bus line prices), `r`, `a` and `out` in seller order.
#[allow(clippy::too_many_arguments)]
fn buyer_update(
    x: &[f64],
    q: &[f64],
    bp: &[f64],
    own: f64,
    g: f64,
    r: &[f64],
    a: &[f64],
    damp: (&[f64], f64, &[f64]),
    lo: f64,
    hi: f64,
    out: &mut [f64],
) {
    let (dn, dm, tw) = damp;
    for n in 0..out.len() {
        let bpn = if tw[n] > 0.0 { bp[n] + tw[n] * (dn[n] - dm) } else { bp[n] };
        out[n] = kernels::buyer_value(x[n], q[n], g, bpn, own, a[n], r[n]);
    }
    let tau = weighted_tau(out, a, lo, hi);
    for n in 0..out.len() {
        out[n] = (out[n] - a[n] * tau).max(0.0);
    }
}

/// Seller `n`'s update with per-trade steps `a` (`α^s_mn`) and penalties
/// `r`, on the buyers' new copies `x` of its column: the gradient step
/// `w = y + α^s_mn (−C' + λ + ρ_mn (x − y))`, its projection in the metric
/// of its steps `y = max(0, w − α^s_mn τ)`, and the price update
/// `λ ← λ + ρ_mn (x − y)` (`sign` as in [`kernels::seller_finish`]), in
/// place; returns the reciprocity residual `max |x − y|`.
#[allow(clippy::too_many_arguments)]
fn seller_update(
    x: &[f64],
    y: &mut [f64],
    lambda: &mut [f64],
    r: &[f64],
    a: &[f64],
    g: f64,
    lo: f64,
    hi: f64,
    sign: f64,
) -> f64 {
    let v: Vec<f64> = (0..y.len()).map(|k| kernels::seller_value(x[k], y[k], lambda[k], g, a[k], r[k])).collect();
    let tau = weighted_tau(&v, a, lo, hi);
    let mut residual = 0.0f64;
    for k in 0..y.len() {
        let new = (v[k] - a[k] * tau).max(0.0);
        lambda[k] += (sign * r[k]) * (x[k] - new);
        residual = residual.max((x[k] - new).abs());
        y[k] = new;
    }
    residual
}

impl PrimalDual {
    /// A fresh iteration for `market` under the network's rows.
    pub fn new(market: &Market, net: &MarketNetwork, params: PdParams) -> Result<PrimalDual, MarketError> {
        let (bm, bn) = net.placement(market)?;
        let (m, n) = (market.buyers.len(), market.sellers.len());
        let buses = net.bus_ids.len();
        let g = net.g.iter().flatten().copied().collect();
        let mut steps = params.party_steps(market);
        // rows with tiny limits ([`TINY_ROW_REF`]): the steps of the trades
        // that load them shrunk, those trades' penalties and the rows'
        // weights and multiplier steps raised alike (steps per trade)
        let tiny = tiny_row_factors(&params, market, net, &bm, &bn);
        let scaled = tiny.iter().any(|f| *f > 1.0);
        if scaled {
            tiny_row_steps(&mut steps, net, &bm, &bn, &tiny);
        }
        let rescale = |(c, g): (Vec<f64>, Vec<f64>)| -> (Vec<f64>, Vec<f64>) {
            if !scaled {
                return (c, g);
            }
            let up = |v: Vec<f64>| v.into_iter().zip(&tiny).map(|(v, f)| if *f > 1.0 { v * f } else { v }).collect();
            (up(c), up(g))
        };
        let cap = BUYER_STEP_CAP * params.alpha;
        let (c_row, gamma_row, other);
        let mut tw = Vec::new();
        if steps.per_trade {
            // the line term acts on the trades that load a row only, so the
            // row weights are bounded by those trades' buyer steps, and
            // the congested mode caps those alone
            let loads = trade_loads(net, &bm, &bn);
            let ab = &steps.trade_alpha_buyers;
            let loaded =
                |ab: &[f64]| -> Vec<f64> { ab.iter().zip(&loads).filter(|(_, l)| **l).map(|(a, _)| *a).collect() };
            (c_row, gamma_row) = rescale(params.row_weights_for(net, &bm, &bn, &loaded(ab)));
            tw = trade_damping(&params, market, net, &bm, &bn, ab, &steps.trade_alpha_sellers, &c_row);
            let capped: Vec<f64> = ab
                .iter()
                .zip(&loads)
                .map(|(a, l)| if *l || mutants::active(Mutation::CapOnUnloadedTrades) { a.min(cap) } else { *a })
                .collect();
            other = if capped != *ab && !net.h.is_empty() {
                let (c_row, gamma_row) = rescale(params.row_weights_for(net, &bm, &bn, &loaded(&capped)));
                let tw = trade_damping(&params, market, net, &bm, &bn, &capped, &steps.trade_alpha_sellers, &c_row);
                let iab_t = capped.iter().map(|a| 1.0 / a).collect();
                let (alpha_b, ia_b) = (steps.alpha_buyers.clone(), steps.inv_alpha_buyers.clone());
                Some(Box::new(StepSet { alpha_b, ia_b, ab_t: capped, iab_t, c_row, gamma_row, tw }))
            } else {
                None
            };
        } else {
            (c_row, gamma_row) = params.row_weights_for(net, &bm, &bn, &steps.alpha_buyers);
            other = if steps.alpha_buyers.iter().any(|a| *a > cap) && !net.h.is_empty() {
                let alpha_b: Vec<f64> = steps.alpha_buyers.iter().map(|a| a.min(cap)).collect();
                let (c_row, gamma_row) = params.row_weights_for(net, &bm, &bn, &alpha_b);
                let ia_b = alpha_b.iter().map(|a| 1.0 / a).collect();
                Some(Box::new(StepSet {
                    alpha_b,
                    ia_b,
                    ab_t: Vec::new(),
                    iab_t: Vec::new(),
                    c_row,
                    gamma_row,
                    tw: Vec::new(),
                }))
            } else {
                None
            };
        }
        Ok(PrimalDual {
            tw,
            other,
            mode: StepMode::default(),
            overload: vec![0; net.h.len()],
            slack: vec![0; net.h.len()],
            c_row,
            gamma_row,
            rho_t: steps.rho,
            alpha_b: steps.alpha_buyers,
            ia_b: steps.inv_alpha_buyers,
            alpha_s: steps.alpha_sellers,
            per_trade: steps.per_trade,
            iab_t: steps.trade_alpha_buyers.iter().map(|a| 1.0 / a).collect(),
            ab_t: steps.trade_alpha_buyers,
            as_t: steps.trade_alpha_sellers,
            scaled_gap: scaled_gap(market, params.scale_kwh),
            params,
            buyers: m,
            sellers: n,
            x: vec![0.0; m * n],
            y: vec![0.0; m * n],
            lambda: vec![0.0; m * n],
            q: vec![0.0; m * n],
            mu: vec![0.0; net.h.len()],
            g_abs: net.g.iter().map(|row| row.iter().map(|v| v.abs()).sum()).collect(),
            g,
            h: net.h.clone(),
            buses,
            bm,
            bn,
            iterations: 0,
            prices_ready: false,
            excess_valid: false,
            excess: vec![0.0; net.h.len()],
            // steps per trade: the overload damping per bus follows the
            // bus prices ([`PrimalDual::bus_prices`])
            bus_price: vec![0.0; if steps.per_trade { 2 * buses } else { buses }],
            inj: vec![0.0; buses],
            v: vec![0.0; m * n],
            xt: vec![0.0; m],
            yt: vec![0.0; n],
            xcol: vec![0.0; n],
            gb: vec![0.0; m],
            own: vec![0.0; m],
            tau: vec![0.0; m],
            bstats: BuyerStats::new(m),
            bp_col: vec![0.0; n],
            col: vec![0.0; m.max(n)],
            old: vec![0.0; m * n],
            isa: Isa::detect(),
        })
    }

    /// The operator's bus line prices of the current round (model bus
    /// order); with steps per trade ([`PartySteps::per_trade`]) followed by
    /// the overload damping per bus, `δ_k = Σ_r max(0, μ̂_r − μ_r) G_rk`
    /// ([`TRADE_DAMPING_THETA`]): what [`PrimalDual::operator_task`] sends
    /// and [`PrimalDual::apply_operator`] installs.
    pub fn bus_prices(&self) -> &[f64] {
        &self.bus_price
    }

    /// The network rows' price at each bus, `ℓ_k = Σ_r μ_r G_rk` ($/kWh,
    /// model bus order), with the current multipliers `μ`: the nodal price
    /// of bus `k` is `λ₀ − ℓ_k`, so a trade from seller `n` to buyer `m`
    /// costs the buyer `λ_mn + ℓ_bus(n) − ℓ_bus(m)` (what its step is
    /// charged) while the seller receives `λ_mn`
    /// ([`crate::clearing`]'s settlement).
    pub fn line_prices(&self) -> Vec<f64> {
        let k = self.buses;
        let mut out = vec![0.0; k];
        for (r, mu) in self.mu.iter().enumerate() {
            if *mu > 0.0 {
                for (o, gv) in out.iter_mut().zip(&self.g[r * k..(r + 1) * k]) {
                    *o += mu * gv;
                }
            }
        }
        out
    }

    /// Buyer `m`'s copy of its trade with seller `n`.
    pub fn x_at(&self, m: usize, n: usize) -> f64 {
        self.x[n * self.buyers + m]
    }

    /// Buyer `m`'s trade copies, in seller order.
    pub fn buyer_row(&self, m: usize) -> Vec<f64> {
        (0..self.sellers).map(|n| self.x_at(m, n)).collect()
    }

    /// Seller `n`'s copy of its trade with buyer `m`.
    pub fn y_at(&self, m: usize, n: usize) -> f64 {
        self.y[n * self.buyers + m]
    }

    /// Seller `n`'s price for its trade with buyer `m`.
    pub fn lambda_at(&self, m: usize, n: usize) -> f64 {
        self.lambda[n * self.buyers + m]
    }

    /// The trades that settle, `[m][n]`: for each pair the smaller of the
    /// buyer's and the seller's copy, i.e. the amount both agreed to. Within
    /// the tolerance of convergence the copies agree; taking the smaller
    /// keeps every upper bound (Eqs 6.4a–b) exact rather than violated by up
    /// to the tolerance.
    pub fn settled(&self) -> Vec<Vec<f64>> {
        let n = self.sellers;
        (0..self.buyers).map(|m| (0..n).map(|j| self.x_at(m, j).min(self.y_at(m, j))).collect()).collect()
    }

    /// Buyer totals and seller totals of a trade matrix `[m][n]`.
    pub fn totals(trades: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let n = trades.first().map_or(0, |r| r.len());
        let t = trades.iter().map(|r| r.iter().sum()).collect();
        let s = (0..n).map(|j| trades.iter().map(|r| r[j]).sum()).collect();
        (t, s)
    }

    /// Bus injections (kW) of the buyers' copies into `self.inj`: every
    /// buyer's total `xt` is subtracted at its bus (buyer order), then every
    /// seller's column total added at its bus (seller order) — the order
    /// [`PrimalDual::step`] accumulates them in, so both paths agree bit
    /// for bit.
    fn injections(&mut self) {
        let mm = self.buyers;
        self.inj.iter_mut().for_each(|v| *v = 0.0);
        for m in 0..mm {
            self.inj[self.bm[m]] -= self.xt[m];
        }
        for j in 0..self.sellers {
            self.inj[self.bn[j]] += lane_sum(&self.x[j * mm..(j + 1) * mm]);
        }
    }

    /// Row `r`'s value `G_r p − h_r` for the current injections.
    fn row_excess(&self, r: usize) -> f64 {
        let k = self.buses;
        lane_dot(&self.g[r * k..(r + 1) * k], &self.inj) - self.h[r]
    }

    /// `self.excess` from `self.inj`; returns the largest.
    fn excesses(&mut self) -> f64 {
        let mut worst = 0.0f64;
        for r in 0..self.h.len() {
            let e = self.row_excess(r);
            self.excess[r] = e;
            worst = worst.max(e);
        }
        self.excess_valid = true;
        worst
    }

    /// The operator's step: line prices per bus from `μ̂ = max(0, μ + c g)`.
    fn operator_prices(&mut self) {
        if self.h.is_empty() || mutants::active(Mutation::LineLimitsIgnored) {
            return;
        }
        if !self.excess_valid {
            self.injections();
            self.excesses();
        }
        let k = self.buses;
        self.bus_price.iter_mut().for_each(|v| *v = 0.0);
        let (bus_price, damp) = self.bus_price.split_at_mut(k);
        for r in 0..self.h.len() {
            let hat = (self.mu[r] + self.c_row[r] * self.excess[r]).max(0.0);
            if hat > 0.0 {
                for (bp, gv) in bus_price.iter_mut().zip(&self.g[r * k..(r + 1) * k]) {
                    *bp += hat * gv;
                }
            }
            // steps per trade: the overload damping `δ` ([`TRADE_DAMPING_THETA`])
            let up = hat - self.mu[r];
            if !damp.is_empty() && up > 0.0 {
                for (d, gv) in damp.iter_mut().zip(&self.g[r * k..(r + 1) * k]) {
                    *d += up * gv;
                }
            }
        }
    }

    /// One synchronous iteration of every party's update (no allocation).
    pub fn step(&mut self, market: &Market) -> StepReport {
        let (mm, nn) = (self.buyers, self.sellers);
        if !self.prices_ready {
            self.operator_prices();
        }
        self.prices_ready = false;
        if self.per_trade {
            return self.step_per_trade(market);
        }
        // buyers (Jacobi: every buyer reads the previous iterate): pass 1,
        // the gradient steps and their statistics, column by column
        for m in 0..mm {
            self.gb[m] = market.buyers[m].marginal(self.xt[m]);
            self.own[m] = self.bus_price[self.bm[m]];
        }
        for n in 0..nn {
            self.bp_col[n] = self.bus_price[self.bn[n]];
        }
        self.bstats.reset();
        let isa = self.isa;
        // the columns in blocks (each buyer's statistics in registers across
        // a block), the last few one by one; each buyer's sums run over the
        // sellers in order either way
        let blocked = nn - nn % kernels::BLOCK;
        for n in (0..blocked).step_by(kernels::BLOCK) {
            let c = n * mm..(n + kernels::BLOCK) * mm;
            let (g, own, bp) = (&self.gb, &self.own, &self.bp_col[n..n + kernels::BLOCK]);
            let BuyerStats { clamped, sum_s, cnt_s, min_s, max_n } = &mut self.bstats;
            let (x, q, r, v) = (&self.x[c.clone()], &self.q[c.clone()], &self.rho_t[c.clone()], &mut self.v[c]);
            let al = &self.alpha_b;
            kernels::buyer_block(isa, x, q, v, g, own, bp, al, r, clamped, sum_s, cnt_s, min_s, max_n);
        }
        for n in blocked..nn {
            let c = n * mm..(n + 1) * mm;
            let (g, own, bp) = (&self.gb, &self.own, self.bp_col[n]);
            buyer_column(
                isa,
                &self.x[c.clone()],
                &self.q[c.clone()],
                &mut self.v[c.clone()],
                g,
                own,
                bp,
                &self.alpha_b,
                &self.rho_t[c],
                &mut self.bstats,
            );
        }
        for m in 0..mm {
            let st = self.bstats.get(m);
            self.tau[m] = self.buyer_tau(market, m, &st);
        }
        // pass 2, per seller column: the buyers' new trades in it and the
        // seller's gradient step on them in one sweep, then the seller's
        // projection and price update in a second (the projection's
        // threshold needs the whole column's step)
        self.xt.iter_mut().for_each(|v| *v = 0.0);
        let (mut change, mut residual) = (0.0f64, 0.0f64);
        let sign = price_sign();
        for n in 0..nn {
            let c = n * mm..(n + 1) * mm;
            let p = &market.sellers[n];
            let (chg, xsum, st) = kernels::column_pass(
                isa,
                &self.v[c.clone()],
                &self.tau,
                &self.ia_b,
                &mut self.x[c.clone()],
                &mut self.xt,
                &self.y[c.clone()],
                &self.lambda[c.clone()],
                &self.rho_t[c.clone()],
                &mut self.col,
                p.marginal(self.yt[n]),
                self.alpha_s[n],
            );
            change = change.max(chg);
            let tau = warm_tau(&st, p.e_min, p.e_max)
                .unwrap_or_else(|| capped_tau(&self.col[..mm], p.e_min, p.e_max, st.clamped));
            let (res, total) = kernels::seller_finish(
                isa,
                &self.col,
                tau,
                &self.x[c.clone()],
                &mut self.y[c.clone()],
                &mut self.lambda[c.clone()],
                &mut self.q[c.clone()],
                &self.rho_t[c],
                sign,
            );
            residual = residual.max(res);
            self.yt[n] = total;
            self.xcol[n] = xsum;
        }
        self.finish_step(market, residual, change)
    }

    /// [`PrimalDual::step`] with per-trade steps ([`PartySteps::per_trade`]):
    /// each buyer's row and each seller's column by [`buyer_update`] and
    /// [`seller_update`], the functions the sans-IO tasks run, so both
    /// paths agree bit for bit. Plain scalar sweeps (a market with a party
    /// beyond `E₀` only), with row buffers allocated per iteration.
    fn step_per_trade(&mut self, market: &Market) -> StepReport {
        let (mm, nn) = (self.buyers, self.sellers);
        let bp: Vec<f64> = (0..nn).map(|n| self.bus_price[self.bn[n]]).collect();
        let damp = &self.bus_price[self.buses..];
        let dn: Vec<f64> = (0..nn).map(|n| damp[self.bn[n]]).collect();
        let mut tw = vec![0.0; nn];
        let (mut x, mut q, mut r, mut a, mut out) =
            (vec![0.0; nn], vec![0.0; nn], vec![0.0; nn], vec![0.0; nn], vec![0.0; nn]);
        let mut change = 0.0f64;
        // buyers (Jacobi: buyer m reads only its own row, the sellers'
        // values and the prices, none of which another buyer writes)
        for m in 0..mm {
            for n in 0..nn {
                let i = n * mm + m;
                (x[n], q[n], r[n], a[n], tw[n]) = (self.x[i], self.q[i], self.rho_t[i], self.ab_t[i], self.tw[i]);
            }
            let p = &market.buyers[m];
            let own = self.bus_price[self.bm[m]];
            let damp = (&dn[..], self.bus_price[self.buses + self.bm[m]], &tw[..]);
            buyer_update(&x, &q, &bp, own, p.marginal(self.xt[m]), &r, &a, damp, p.e_min, p.e_max, &mut out);
            for n in 0..nn {
                let i = n * mm + m;
                change = change.max((out[n] - self.x[i]).abs() * self.iab_t[i]);
                self.x[i] = out[n];
            }
            self.xt[m] = seq_sum(&out);
        }
        let sign = price_sign();
        let mut residual = 0.0f64;
        for n in 0..nn {
            let c = n * mm..(n + 1) * mm;
            let p = &market.sellers[n];
            let res = seller_update(
                &self.x[c.clone()],
                &mut self.y[c.clone()],
                &mut self.lambda[c.clone()],
                &self.rho_t[c.clone()],
                &self.as_t[c.clone()],
                p.marginal(self.yt[n]),
                p.e_min,
                p.e_max,
                sign,
            );
            residual = residual.max(res);
            for ((q, l), (y, r)) in self.q[c.clone()]
                .iter_mut()
                .zip(&self.lambda[c.clone()])
                .zip(self.y[c.clone()].iter().zip(&self.rho_t[c.clone()]))
            {
                *q = l - r * y;
            }
            self.yt[n] = lane_sum(&self.y[c.clone()]);
            self.xcol[n] = lane_sum(&self.x[c]);
        }
        self.finish_step(market, residual, change)
    }

    /// The end of [`PrimalDual::step`]: the injections, the operator's
    /// multiplier step, the mode switch and the report.
    fn finish_step(&mut self, market: &Market, residual: f64, change: f64) -> StepReport {
        let (mm, nn) = (self.buyers, self.sellers);
        // injections in the order of [`PrimalDual::injections`]
        self.inj.iter_mut().for_each(|v| *v = 0.0);
        for m in 0..mm {
            self.inj[self.bm[m]] -= self.xt[m];
        }
        for n in 0..nn {
            self.inj[self.bn[n]] += self.xcol[n];
        }
        // operator's multiplier step on the new flows
        let violation = self.excesses();
        let mu_rows = if mutants::active(Mutation::LineLimitsIgnored) { 0 } else { self.h.len() };
        for r in 0..mu_rows {
            self.mu[r] = (self.mu[r] + self.gamma_row[r] * self.boost(r) * self.excess[r]).max(0.0);
        }
        self.track_overload();
        // the switch after the iteration's measurements (`change` is over
        // the steps the buyers took), as in [`PrimalDual::apply_operator`]
        self.update_mode();
        self.iterations += 1;
        self.report(market, residual, change, violation)
    }

    /// Whether the settled trades ([`PrimalDual::settled`]) meet every
    /// network row within the row's own tolerance, `ROW_TOL_ABS_KW +
    /// ROW_TOL_REL · |h_r|`, the test [`crate::clearing::clear`] applies,
    /// each row's value `G_r p − h_r` from the injections formed trade by
    /// trade ([`PrimalDual::settled_injections`]).
    ///
    /// That trade-by-trade sum is one chain of additions per bus through
    /// the whole market (at 50 × 50 it cost about half a step, on each of
    /// the 40-45 % of iterations the cheap tests pass). So each
    /// row is first decided from the sweep's injections
    /// ([`SettledSweep::inj`], the same trades summed per party first):
    /// both sums carry the same terms, so they differ by rounding alone,
    /// which [`PrimalDual::settled_rows_bound`] bounds; a row whose value
    /// is farther than that bound from its tolerance has the same answer
    /// either way. Only when some row is within it (or a value is not
    /// finite) are the trade-by-trade injections formed, so the answer is
    /// always exactly theirs.
    fn settled_rows_hold(&self, sw: &SettledSweep) -> bool {
        if self.h.is_empty() {
            return true;
        }
        if let Some(holds) = self.settled_rows_bound(sw) {
            return holds;
        }
        let k = self.buses;
        let inj = self.settled_injections();
        (0..self.h.len()).all(|r| {
            let v = lane_dot(&self.g[r * k..(r + 1) * k], &inj) - self.h[r];
            v <= crate::network::ROW_TOL_ABS_KW + crate::network::ROW_TOL_REL * self.h[r].abs()
        })
    }

    /// [`PrimalDual::settled_rows_hold`]'s answer from the sweep's
    /// injections, where rounding cannot change it; `None` where it could.
    ///
    /// Every settled trade `e ≥ 0` (checked: [`SettledSweep::nonneg`]) is
    /// in both sums with the same sign at the same buses, so both
    /// injections approximate the same exact value. With `u = 2⁻⁵³`,
    /// `γ = n u / (1 − n u)` for `n = 2MN + M + N + K + 4` (more than the
    /// additions either sum chains) and `P = Σ_n s_n ≥ Σ e` (up to a
    /// factor `1 + γ`): the trade-by-trade injection is within `γ · 2P` of
    /// the exact one (a trade adds at most twice to one bus), the sweep's
    /// within `γ · 2P` (the buyers' and sellers' totals) plus `γ · 2P`
    /// (summing them), so the two differ by at most `6 γ P` to first
    /// order, bounded here by `D = 16 γ P`. A row's
    /// value `G_r p − h_r`, formed alike from either (the same `lane_dot`,
    /// error at most `γ Σ_k |g_rk p_k|`), then differs by at most
    /// `Σ_k |g_rk| D + 2γ Σ_k |g_rk p_k| + 2u (|G_r p| + |h_r|)` (to first
    /// order), bounded here by eight times
    /// `Σ_k |g_rk| (D + γ max_k |p_k|) + u (|G_r p| + |h_r|)` plus `10⁻³⁰⁰`
    /// (products that underflow): a row whose value plus the bound is
    /// within its tolerance holds either way, and one whose value minus the
    /// bound is beyond it fails either way (then so does the market's
    /// test).
    fn settled_rows_bound(&self, sw: &SettledSweep) -> Option<bool> {
        let (mm, nn, k) = (self.buyers, self.sellers, self.buses);
        if !sw.nonneg {
            return None;
        }
        let u = f64::EPSILON / 2.0;
        let nu = (2 * mm * nn + mm + nn + k + 4) as f64 * u;
        let p: f64 = sw.s.iter().sum();
        // (a sum that is NaN or near overflow is left to the exact test)
        if nu >= 0.5 || p.is_nan() || p >= 1e300 {
            return None;
        }
        let gamma = nu / (1.0 - nu);
        let d = 16.0 * gamma * p;
        // `Σ_k |g_rk p_k| ≤ Σ_k |g_rk| · max_k |p_k|`
        let pmax = sw.inj.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for r in 0..self.h.len() {
            let h = self.h[r];
            let a = lane_dot(&self.g[r * k..(r + 1) * k], &sw.inj);
            let v = a - h;
            let tol = crate::network::ROW_TOL_ABS_KW + crate::network::ROW_TOL_REL * h.abs();
            let bound = 8.0 * (self.g_abs[r] * (d + gamma * pmax) + u * (a.abs() + h.abs())) + 1e-300;
            if !(v.is_finite() && bound.is_finite()) {
                return None;
            }
            if v - bound > tol {
                return Some(false);
            }
            if v + bound > tol {
                return None;
            }
        }
        Some(true)
    }

    /// The bus injections (kW) of the settled trades ([`PrimalDual::settled`])
    /// for [`PrimalDual::settled_rows_hold`].
    fn settled_injections(&self) -> Vec<f64> {
        let (mm, k) = (self.buyers, self.buses);
        let mut inj = vec![0.0; k];
        // per trade (seller by seller, each over the buyers in order): its
        // buyer's bus less the trade, then its seller's bus plus it. The
        // seller's bus is kept in a register across its column (its sum is
        // one chain of additions either way, through memory it also paid a
        // store-to-load forwarding per trade); a buyer at that bus subtracts
        // from the register, so every bus sees the same additions in the
        // same order as trade by trade in memory
        for j in 0..self.sellers {
            let c = j * mm..(j + 1) * mm;
            let sb = self.bn[j];
            let mut acc = inj[sb];
            for ((x, y), b) in self.x[c.clone()].iter().zip(&self.y[c]).zip(&self.bm) {
                let e = x.min(*y);
                if *b == sb {
                    acc -= e;
                } else {
                    inj[*b] -= e;
                }
                acc += e;
            }
            inj[sb] = acc;
        }
        inj
    }

    /// The step's report: the residual tests, and the duality certificate
    /// once they pass.
    fn report(&self, market: &Market, residual: f64, change: f64, violation: f64) -> StepReport {
        let prm = self.params;
        // the row test on the settled trades is the one `clearing::clear`
        // accepts by ([`MarketNetwork::row_excess`]'s per-row tolerance):
        // the buyers' copies meeting `violation ≤ tol` is no promise for
        // the smaller copy on a row allotted a few W
        // `change` is each buyer's largest trade change over its own step
        // (`|Δx| / α_m`, the projected gradient's size)
        let certificate = if residual <= prm.tol && change <= prm.tol && violation <= prm.tol {
            let sw = self.settled_sweep();
            self.settled_rows_hold(&sw).then(|| self.certificate_of(market, &sw))
        } else {
            None
        };
        let converged = certificate.is_some_and(|c| {
            let gap = c.dual - c.welfare;
            let floor = SCALED_GAP_FLOOR * c.dual.abs().max(c.welfare.abs());
            c.holds(prm.gap_tol) && gap <= self.scaled_gap.max(floor)
        });
        StepReport { residual, change, violation, certificate, converged }
    }

    /// The duality certificate of the current iterate: the settled trades'
    /// welfare `W`, and the dual function at the iteration's prices
    ///
    /// ```text
    /// d(λ, μ) = max_{x ∈ X, y ∈ Y}  Σ_m U_m(Σ_n x_mn) − Σ_n C_n(Σ_m y_mn)
    ///                               − Σ λ_mn (x_mn − y_mn) − μᵀ(G p(x) − h)
    ///         = Σ_m max_S [U_m(S) − c_m S] + Σ_n max_S [c_n S − C_n(S)] + μᵀh
    /// ```
    ///
    /// with `c_m = min_n (λ_mn + π_mn)` (the buyer's cheapest seller,
    /// line prices `π` from `μ`), `c_n = max_m λ_mn` and `S` over the
    /// prosumer's bounds. Weak duality gives `d ≥ W*` for every `λ` and
    /// `μ ≥ 0`, so `d − W` bounds how far the optimum lies above the
    /// settled welfare — a certificate, unlike the residuals, which can be
    /// small while a line price is still moving (seed 14 of the congested
    /// case30 2×2 markets stopped 0.17 % off). `O(M N + R K)`, one sweep
    /// over the trades; computed only when the residual tests pass (in a
    /// clearing run of a seeded market, on 40-45 % of the iterations: the
    /// tests pass well before the per-party gap, [`scaled_gap`], closes).
    pub fn certificate(&self, market: &Market) -> Certificate {
        self.certificate_of(market, &self.settled_sweep())
    }

    /// The one sweep over the trade matrices [`PrimalDual::certificate`]
    /// and [`PrimalDual::settled_rows_hold`] share.
    fn settled_sweep(&self) -> SettledSweep {
        let (mm, nn, k) = (self.buyers, self.sellers, self.buses);
        // line prices per bus from μ
        let mut bp = vec![0.0; k];
        let mut dual_h = 0.0;
        for r in 0..self.h.len() {
            let mu = self.mu[r];
            if mu > 0.0 {
                for (b, g) in bp.iter_mut().zip(&self.g[r * k..(r + 1) * k]) {
                    *b += mu * g;
                }
                dual_h += mu * self.h[r];
            }
        }
        // one sweep over the trade matrices (seller-major, no allocation
        // per trade): the settled trades' totals (each buyer's over the
        // sellers in order, each seller's over the buyers, as
        // [`PrimalDual::settled`] and [`Market::welfare`] form them), each
        // buyer's cheapest seller and each seller's highest price
        let own: Vec<f64> = self.bm.iter().map(|b| bp[*b]).collect();
        let (mut t, mut s) = (vec![0.0; mm], vec![0.0; nn]);
        let (mut cheapest, mut highest) = (vec![f64::INFINITY; mm], vec![f64::NEG_INFINITY; nn]);
        let mut nonneg = true;
        // seller by seller, the element-wise part (each settled trade, the
        // buyers' totals and cheapest offers, over the buyers as arrays)
        // and the column's highest price in a vectorised kernel
        // ([`kernels::settled_column`]), the settled trades kept; then each
        // seller's total over its column in order, [`CERT_COLUMNS`]
        // columns' chains of additions side by side (one column at a time,
        // the sweep waited on that chain at every trade). Every
        // accumulator sees its values in the order of a column-by-column
        // sweep (a seller's over the buyers, a buyer's over the sellers),
        // so the certificate is the same bit for bit.
        let mut settled = vec![0.0; CERT_COLUMNS * mm];
        for n0 in (0..nn).step_by(CERT_COLUMNS) {
            let cols = CERT_COLUMNS.min(nn - n0);
            for i in 0..cols {
                let n = n0 + i;
                let c = n * mm..(n + 1) * mm;
                let (high, ok) = kernels::settled_column(
                    self.isa,
                    &self.x[c.clone()],
                    &self.y[c.clone()],
                    &self.lambda[c],
                    bp[self.bn[n]],
                    &own,
                    &mut settled[i * mm..(i + 1) * mm],
                    &mut t,
                    &mut cheapest,
                );
                highest[n] = high;
                nonneg &= ok;
            }
            let mut total = [0.0f64; CERT_COLUMNS];
            if cols == CERT_COLUMNS {
                for m in 0..mm {
                    for (i, tot) in total.iter_mut().enumerate() {
                        *tot += settled[i * mm + m];
                    }
                }
            } else {
                for m in 0..mm {
                    for (i, tot) in total.iter_mut().enumerate().take(cols) {
                        *tot += settled[i * mm + m];
                    }
                }
            }
            s[n0..n0 + cols].copy_from_slice(&total[..cols]);
        }
        // the settled trades' injections, from the totals
        let mut inj = vec![0.0; k];
        for (m, v) in t.iter().enumerate() {
            inj[self.bm[m]] -= v;
        }
        for (n, v) in s.iter().enumerate() {
            inj[self.bn[n]] += v;
        }
        SettledSweep { dual_h, t, s, cheapest, highest, inj, nonneg }
    }

    /// [`PrimalDual::certificate`] from the sweep's values.
    fn certificate_of(&self, market: &Market, sw: &SettledSweep) -> Certificate {
        let k = self.buses;
        let SettledSweep { dual_h, t, s, cheapest, highest, inj, .. } = sw;
        let mut dual = *dual_h;
        let welfare = market.welfare_of_totals(t, s);
        // the settled trades' overload
        let mut overload_value = 0.0;
        for r in 0..self.h.len() {
            let mu = self.mu[r];
            if mu > 0.0 {
                let ex = lane_dot(&self.g[r * k..(r + 1) * k], inj) - self.h[r];
                overload_value += mu * ex.max(0.0);
            }
        }
        let best = |p: &Prosumer, c: f64| -> f64 {
            // max_S welfare(S) − c S for a buyer, c S + welfare(S) for a seller
            // (welfare(S) = −C(S)); S on the prosumer's bounds
            let s = match p.side {
                crate::problem::Side::Buyer => (p.b - c) / p.a,
                crate::problem::Side::Seller => (c - p.b) / p.a,
            };
            let s = s.clamp(p.e_min, p.e_max);
            match p.side {
                crate::problem::Side::Buyer => p.welfare(s) - c * s,
                crate::problem::Side::Seller => p.welfare(s) + c * s,
            }
        };
        for (p, c) in market.buyers.iter().zip(cheapest) {
            dual += best(p, *c);
        }
        for (p, c) in market.sellers.iter().zip(highest) {
            dual += best(p, *c);
        }
        Certificate { welfare, dual, overload_value }
    }

    /// Buyer `m`'s threshold from its pass-1 statistics; when the warm
    /// start does not hold, Michelot on its row of `v` (gathered).
    fn buyer_tau(&mut self, market: &Market, m: usize, st: &Stats) -> f64 {
        let p = &market.buyers[m];
        if let Some(t) = warm_tau(st, p.e_min, p.e_max) {
            return t;
        }
        let (mm, nn) = (self.buyers, self.sellers);
        for n in 0..nn {
            self.col[n] = self.v[n * mm + m];
        }
        capped_tau(&self.col[..nn], p.e_min, p.e_max, st.clamped)
    }

    // ---- the iteration as separately executable subproblems (TEAR-DO) ----
    //
    // One iteration is two exchange rounds: round 1, every buyer's update
    // (subproblem `m`); round 2, every seller's update (subproblem `M + n`,
    // on the new buyer rows) and the operator's (subproblem `M + N`: the new
    // multipliers and the next round's bus line prices). Applying every
    // output reproduces [`PrimalDual::step`] bit for bit: each task runs the
    // step's own kernels on its party's values.

    /// Subproblems per iteration: buyers, sellers and the operator.
    pub fn subproblems(&self) -> usize {
        self.buyers + self.sellers + 1
    }

    /// Buyer `m`'s new trade row (seller order) from the current state.
    pub fn buyer_task(&self, market: &Market, m: usize) -> Vec<f64> {
        let (mm, nn) = (self.buyers, self.sellers);
        let x = self.buyer_row(m);
        let q: Vec<f64> = (0..nn).map(|j| self.q[j * mm + m]).collect();
        let bp: Vec<f64> = (0..nn).map(|j| self.bus_price[self.bn[j]]).collect();
        let p = &market.buyers[m];
        if self.per_trade {
            let r: Vec<f64> = (0..nn).map(|j| self.rho_t[j * mm + m]).collect();
            let a: Vec<f64> = (0..nn).map(|j| self.ab_t[j * mm + m]).collect();
            let tw: Vec<f64> = (0..nn).map(|j| self.tw[j * mm + m]).collect();
            let dn: Vec<f64> = (0..nn).map(|j| self.bus_price[self.buses + self.bn[j]]).collect();
            let mut out = vec![0.0; nn];
            let own = self.bus_price[self.bm[m]];
            let damp = (&dn[..], self.bus_price[self.buses + self.bm[m]], &tw[..]);
            buyer_update(&x, &q, &bp, own, p.marginal(seq_sum(&x)), &r, &a, damp, p.e_min, p.e_max, &mut out);
            return out;
        }
        let g = [p.marginal(seq_sum(&x))];
        let own = [self.bus_price[self.bm[m]]];
        let mut v = vec![0.0; nn];
        // the pass-1 kernel on a one-buyer matrix, one seller at a time
        let mut bs = BuyerStats::new(1);
        let al = [self.alpha_b[m]];
        for j in 0..nn {
            let r = [self.rho_t[j * mm + m]];
            buyer_column(Isa::Base, &x[j..=j], &q[j..=j], &mut v[j..=j], &g, &own, bp[j], &al, &r, &mut bs);
        }
        let st = bs.get(0);
        let tau = warm_tau(&st, p.e_min, p.e_max).unwrap_or_else(|| capped_tau(&v, p.e_min, p.e_max, st.clamped));
        v.iter().map(|val| (val - tau).max(0.0)).collect()
    }

    /// Installs buyer `m`'s row (round 1).
    pub fn apply_buyer(&mut self, m: usize, row: &[f64]) {
        let mm = self.buyers;
        if m == 0 {
            self.old.copy_from_slice(&self.x);
        }
        self.excess_valid = false;
        for (n, v) in row.iter().enumerate().take(self.sellers) {
            self.x[n * mm + m] = *v;
        }
        self.xt[m] = seq_sum(row);
    }

    /// Seller `n`'s new column and prices, on the buyers' new rows.
    pub fn seller_task(&self, market: &Market, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mm = self.buyers;
        let col = n * mm..(n + 1) * mm;
        let xc = &self.x[col.clone()];
        let (mut y, mut l) = (self.y[col.clone()].to_vec(), self.lambda[col].to_vec());
        let mut q = vec![0.0; mm];
        let p = &market.sellers[n];
        if self.per_trade {
            let (r, a) = (&self.rho_t[n * mm..(n + 1) * mm], &self.as_t[n * mm..(n + 1) * mm]);
            let g = p.marginal(lane_sum(&y));
            seller_update(xc, &mut y, &mut l, r, a, g, p.e_min, p.e_max, price_sign());
            return (y, l);
        }
        let mut v = vec![0.0; mm];
        let (r, al) = (&self.rho_t[n * mm..(n + 1) * mm], self.alpha_s[n]);
        let st = kernels::seller_column(Isa::Base, xc, &y, &l, r, &mut v, p.marginal(lane_sum(&y)), al);
        let tau = warm_tau(&st, p.e_min, p.e_max).unwrap_or_else(|| capped_tau(&v, p.e_min, p.e_max, st.clamped));
        kernels::seller_finish(Isa::Base, &v, tau, xc, &mut y, &mut l, &mut q, r, price_sign());
        (y, l)
    }

    /// Installs seller `n`'s column (round 2).
    pub fn apply_seller(&mut self, n: usize, y: &[f64], lambda: &[f64]) {
        let mm = self.buyers;
        let c = n * mm..(n + 1) * mm;
        self.y[c.clone()].copy_from_slice(y);
        self.lambda[c.clone()].copy_from_slice(lambda);
        for (((q, l), y), r) in self.q[c.clone()].iter_mut().zip(lambda).zip(y).zip(&self.rho_t[c]) {
            *q = l - r * y;
        }
        self.yt[n] = lane_sum(y);
    }

    /// The operator's new multipliers and next bus line prices, on the
    /// buyers' new rows.
    pub fn operator_task(&self) -> (Vec<f64>, Vec<f64>) {
        let mut me = self.clone();
        if me.h.is_empty() {
            return (me.mu, vec![0.0; me.bus_price.len()]);
        }
        me.injections();
        me.excesses();
        let mu_rows = if mutants::active(Mutation::LineLimitsIgnored) { 0 } else { me.h.len() };
        for r in 0..mu_rows {
            me.mu[r] = (me.mu[r] + me.gamma_row[r] * me.boost(r) * me.excess[r]).max(0.0);
        }
        me.track_overload();
        me.update_mode();
        me.operator_prices();
        (me.mu, me.bus_price)
    }

    /// Installs the operator's output and closes the iteration; the report
    /// is the same as [`PrimalDual::step`]'s.
    pub fn apply_operator(&mut self, market: &Market, mu: &[f64], bus_price: &[f64]) -> StepReport {
        let violation = if self.h.is_empty() {
            0.0
        } else {
            self.injections();
            self.excesses()
        };
        self.mu.copy_from_slice(mu);
        self.bus_price.copy_from_slice(bus_price);
        self.prices_ready = true;
        self.iterations += 1;
        let mut residual = 0.0f64;
        let mut change = 0.0f64;
        let mm = self.buyers;
        for i in 0..self.x.len() {
            residual = residual.max((self.x[i] - self.y[i]).abs());
            let ia = if self.per_trade { self.iab_t[i] } else { self.ia_b[i % mm] };
            change = change.max((self.x[i] - self.old[i]).abs() * ia);
        }
        // `change` over the steps the buyers took: the switch after it, in
        // the order of [`PrimalDual::step`] (attack round 10 found the
        // capped steps measuring the uncapped move here)
        self.track_overload();
        self.update_mode();
        self.report(market, residual, change, violation)
    }

    /// Row `r`'s multiplier step factor: [`OVERLOAD_BOOST`] once it has
    /// ended [`OVERLOAD_WAIT`] iterations in a row priced and overloaded,
    /// else 1 (exact: the step is unchanged).
    fn boost(&self, r: usize) -> f64 {
        if self.overload[r] >= OVERLOAD_WAIT && !mutants::active(Mutation::OverloadNotBoosted) {
            let d = if mutants::active(Mutation::OverloadNotDoubled) {
                0
            } else {
                ((self.overload[r] - OVERLOAD_WAIT) / OVERLOAD_DOUBLING).min(OVERLOAD_MAX_DOUBLINGS)
            };
            // exact: a power of two times 4
            OVERLOAD_BOOST * 2f64.powi(d as i32)
        } else if self.slack[r] >= SLACK_WAIT && !mutants::active(Mutation::SlackNotUnwound) {
            let d = ((self.slack[r] - SLACK_WAIT) / SLACK_DOUBLING).min(SLACK_MAX_DOUBLINGS);
            // exact: a power of two (repeated squaring of 2.0) times 4
            OVERLOAD_BOOST * 2f64.powi(d as i32)
        } else {
            1.0
        }
    }

    /// Counts, after every multiplier update on every path (as
    /// `PrimalDual::update_mode`), the iterations in a row each row has
    /// ended priced (`μ_r > 0`) and overloaded (`G_r p(x) > h_r`).
    fn track_overload(&mut self) {
        for r in 0..self.h.len() {
            let on = self.excess[r] > 0.0 && self.mu[r] > 0.0;
            self.overload[r] = if on { self.overload[r].saturating_add(1) } else { 0 };
            let under = self.excess[r] < 0.0 && self.mu[r] > 0.0;
            self.slack[r] = if under { self.slack[r].saturating_add(1) } else { 0 };
        }
    }

    /// The congested mode's switch rule ([`BUYER_STEP_CAP`]), evaluated on
    /// the new multipliers right after every multiplier update, on every
    /// path ([`PrimalDual::step`], [`PrimalDual::operator_task`],
    /// [`PrimalDual::apply_operator`], each after the iteration's own
    /// measurements), so every executor switches on the same iteration and
    /// the paths agree bit for bit. With `k` exits so far, `Q` =
    /// [`PdParams::congested_quiet`] and `E` = [`PdParams::congested_exits`]:
    ///
    /// ```text
    /// own steps:  a row priced for w_in(k) iterations in a row   → congested
    /// congested:  no row priced for Q·2^k iterations in a row,
    ///             and k < E                                       → own steps, k += 1
    /// w_in(0) = 1,  w_in(k) = Q·2^(k−1)
    /// ```
    ///
    /// No switch when the cap changes nothing (no step set to switch to).
    fn update_mode(&mut self) {
        if self.other.is_none() {
            return;
        }
        let priced = self.mu.iter().any(|m| *m > 0.0);
        let (q, e) = (self.params.congested_quiet, self.params.congested_exits);
        let mode = &mut self.mode;
        if priced {
            mode.priced = mode.priced.saturating_add(1);
            mode.quiet = 0;
        } else {
            mode.quiet = mode.quiet.saturating_add(1);
            mode.priced = 0;
        }
        let k = mode.exits;
        let switch = if !mode.congested {
            mode.priced >= Self::entry_wait(q, k)
        } else {
            mode.quiet >= Self::exit_wait(q, k) && k < e && !mutants::active(Mutation::CongestedModeNeverLeft)
        };
        if !switch {
            return;
        }
        if mode.congested {
            mode.exits += 1;
        }
        mode.congested = !mode.congested;
        mode.switches += 1;
        if let Some(o) = self.other.as_deref_mut() {
            std::mem::swap(&mut self.alpha_b, &mut o.alpha_b);
            std::mem::swap(&mut self.ia_b, &mut o.ia_b);
            std::mem::swap(&mut self.ab_t, &mut o.ab_t);
            std::mem::swap(&mut self.iab_t, &mut o.iab_t);
            std::mem::swap(&mut self.c_row, &mut o.c_row);
            std::mem::swap(&mut self.gamma_row, &mut o.gamma_row);
            std::mem::swap(&mut self.tw, &mut o.tw);
        }
    }

    /// Iterations in a row with a row priced that enter the congested mode
    /// after `k` exits: 1, then `Q`, `2Q`, `4Q`, …
    fn entry_wait(q: u32, k: u32) -> u32 {
        if k == 0 {
            1
        } else {
            q.saturating_mul(1u32.checked_shl(k - 1).unwrap_or(u32::MAX)).max(1)
        }
    }

    /// Iterations in a row with no row priced that leave the congested
    /// mode after `k` exits: `Q`, `2Q`, `4Q`, …
    fn exit_wait(q: u32, k: u32) -> u32 {
        q.saturating_mul(1u32.checked_shl(k).unwrap_or(u32::MAX)).max(1)
    }

    /// Per network row: the iterations in a row it has ended priced and
    /// overloaded ([`OVERLOAD_WAIT`]).
    pub fn overload_streaks(&self) -> &[u32] {
        &self.overload
    }

    /// Per network row: the iterations in a row it has ended priced and
    /// under its limit ([`SLACK_WAIT`]).
    pub fn slack_streaks(&self) -> &[u32] {
        &self.slack
    }

    /// The step mode and its counters (`PrimalDual::update_mode`).
    pub fn mode(&self) -> StepMode {
        self.mode
    }

    /// A digest of the iteration's inputs (trades, prices, multipliers, and
    /// the step mode with its counters, which choose the steps and row
    /// weights the next outputs are computed with): what every executor of
    /// the next round must have started from.
    pub fn state_digest(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update((self.iterations as u64).to_le_bytes());
        let StepMode { congested, quiet, priced, exits, switches } = self.mode;
        h.update([u8::from(congested)]);
        for v in [quiet, priced, exits, switches] {
            h.update(v.to_le_bytes());
        }
        for v in self.overload.iter().chain(&self.slack) {
            h.update(v.to_le_bytes());
        }
        for v in self.x.iter().chain(&self.y).chain(&self.lambda).chain(&self.mu).chain(&self.bus_price) {
            h.update(v.to_le_bytes());
        }
        h.finalize().into()
    }

    /// Iterates until converged or `max_iter`; returns the iteration count.
    pub fn run(&mut self, market: &Market) -> Option<usize> {
        while self.iterations < self.params.max_iter {
            if self.step(market).converged {
                return Some(self.iterations);
            }
        }
        None
    }
}

/// Exact optimum of an uncongested market (no binding line limit): the
/// uniform price `p*` that balances `Σ_m d_m(p) = Σ_n s_n(p)` with
/// `d_m(p) = clamp((b_m − p)/a_m, e_min, e_max)` and
/// `s_n(p) = clamp((p − b_n)/a_n, e_min, e_max)`, found by bisection; returns
/// `(price, welfare, buyer totals, seller totals)`.
pub fn uncongested_optimum(market: &Market) -> (f64, f64, Vec<f64>, Vec<f64>) {
    let demand =
        |p: f64| -> Vec<f64> { market.buyers.iter().map(|b| ((b.b - p) / b.a).clamp(b.e_min, b.e_max)).collect() };
    let supply =
        |p: f64| -> Vec<f64> { market.sellers.iter().map(|s| ((p - s.b) / s.a).clamp(s.e_min, s.e_max)).collect() };
    let excess = |p: f64| demand(p).iter().sum::<f64>() - supply(p).iter().sum::<f64>();
    let all = market.buyers.iter().chain(&market.sellers);
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), q| {
        (lo.min(q.b - q.a * q.e_max), hi.max(q.b + q.a * q.e_max))
    });
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if excess(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let p = 0.5 * (lo + hi);
    let (d, s) = (demand(p), supply(p));
    let w = market.buyers.iter().zip(&d).map(|(q, e)| q.welfare(*e)).sum::<f64>()
        + market.sellers.iter().zip(&s).map(|(q, e)| q.welfare(*e)).sum::<f64>();
    (p, w, d, s)
}

#[cfg(test)]
mod mode_tests {
    use super::*;
    use crate::clearing::network_for;
    use crate::problem::Side;
    use crate::{Case, CASE30};

    // The projection in the metric of the steps: `max(0, v − w τ)` meets
    // the bound it was pushed to and keeps every coordinate's own KKT
    // condition (`x_k > 0` ⇒ `(v_k − x_k) / w_k = τ`, `x_k = 0` ⇒
    // `v_k / w_k ≤ τ`); with equal weights it is the Euclidean projection.
    #[test]
    fn the_weighted_projection_is_the_projection_in_the_steps_metric() {
        let v = [3.0, -1.0, 0.5, 7.0, 2.0];
        let w = [1.0, 4.0, 0.25, 10.0, 2.0];
        for (lo, hi) in [(0.0, 4.0), (0.0, 1.0), (14.0, 20.0), (0.0, 100.0)] {
            let tau = weighted_tau(&v, &w, lo, hi);
            let x: Vec<f64> = v.iter().zip(&w).map(|(v, w)| (v - w * tau).max(0.0)).collect();
            let s: f64 = x.iter().sum();
            assert!(s >= lo - 1e-12 && s <= hi + 1e-12, "({lo}, {hi}): Σ x = {s}");
            for k in 0..v.len() {
                if x[k] > 0.0 {
                    assert!(((v[k] - x[k]) / w[k] - tau).abs() <= 1e-12, "({lo}, {hi}) {k}");
                } else {
                    assert!(v[k] / w[k] <= tau + 1e-12, "({lo}, {hi}) {k}");
                }
            }
            let mut e = v;
            project_capped(&mut e, lo, hi);
            let t1 = weighted_tau(&v, &[1.0; 5], lo, hi);
            let x1: Vec<f64> = v.iter().map(|v| (v - t1).max(0.0)).collect();
            for k in 0..v.len() {
                assert!((x1[k] - e[k]).abs() <= 1e-12, "({lo}, {hi}) {k}: {x1:?} vs {e:?}");
            }
        }
    }

    // Two executors with the same trades, prices and multipliers but in
    // different step modes compute different outputs (the flat buyer's
    // step differs), so the digest they sign their inputs by must differ
    // too (attack round 10: it covered the iterates only).
    #[test]
    fn the_state_digest_covers_the_step_mode() {
        let net = network_for(&Case::parse(CASE30).unwrap(), 1e-3).unwrap();
        let mut m = Market::generate(5, 3, 3, &net.bus_ids);
        let flat = Prosumer { side: Side::Buyer, bus: net.bus_ids[2], a: 1e-5, b: 10.0, e_min: 0.0, e_max: 10_000.0 };
        m.buyers.push(flat.clone());
        // a flat seller at another bus: the pair's own trade is the one the
        // congested mode caps (the buyer's trades with small sellers keep
        // the common step)
        m.sellers.push(Prosumer { side: Side::Seller, bus: net.bus_ids[3], b: 9.0, ..flat });
        // (the first iteration already prices a row here: compare fresh states)
        let a = PrimalDual::new(&m, &net, PdParams::for_market(&m)).unwrap();
        let mut b = a.clone();
        b.mu[0] = 1.0;
        b.update_mode();
        b.mu[0] = 0.0;
        assert!(b.mode().congested && !a.mode().congested);
        let flat = m.buyers.len() - 1;
        assert_ne!(a.buyer_task(&m, flat), b.buyer_task(&m, flat), "the modes must give different outputs");
        assert_ne!(a.state_digest(), b.state_digest());
        // and every counter of the rule is covered, not only the flag
        let mut c = a.clone();
        c.mode.quiet += 1;
        assert_ne!(a.state_digest(), c.state_digest());
        let mut c = a.clone();
        c.mode.exits += 1;
        assert_ne!(a.state_digest(), c.state_digest());
        // and the rows' overload counters, which choose the multiplier steps
        let mut c = a.clone();
        c.overload[0] = OVERLOAD_WAIT;
        assert_ne!(a.state_digest(), c.state_digest());
        let mut c = a.clone();
        c.slack[0] = SLACK_WAIT;
        assert_ne!(a.state_digest(), c.state_digest());
    }
}
