//! One clearing interval end to end: the network rows of a case, the
//! centralised reference, and the chosen algorithm's result beside it (what
//! `gridledger market clear`, the demo and the experiments print).
//!
//! **Settlement prices (nodal).** Only the prosumers' totals are unique at
//! the optimum, not the bilateral trade matrix (any matrix with the same
//! margins has the same welfare and the same network flows), so a trade's
//! price must not depend on which seller a buyer happens to be matched
//! with. Every buyer pays its own bus's nodal price on all its energy and
//! every seller receives its own bus's nodal price; across a congested
//! line the two differ and the difference, the congestion rent `Σ_r μ_r
//! h_r ≥ 0` at the optimum, is the network operator's
//! ([`crate::units::Settlement::operator_minor`]; a trade against the
//! congestion carries a negative share of it). The nodal price of bus `k`
//! is `π_k = λ₀ − Σ_r μ_r G_rk` (the balance dual less the network rows'
//! duals), and each algorithm settles on its own duals:
//!
//! - **Central**: Clarabel's duals, buyer `π_bus(m)`, seller `π_bus(n)`;
//! - **primal–dual**: seller `λ_mn` (its reciprocity price), buyer
//!   `λ_mn + Σ_r μ_r (G_r,bus(n) − G_r,bus(m))` (the line price of the
//!   trade it was charged while iterating, with the converged `μ`);
//! - **ALADIN**: seller `λ^eq_mn − λ^b_bus(n)`, buyer `λ^eq_mn − λ^b_bus(m)`
//!   (the coordinator's reciprocity and bus-balance multipliers).
//!
//! At each algorithm's fixed point these are the prices every prosumer's
//! own first-order condition sets, so the three agree up to their
//! convergence tolerances, and whatever the trade matrix, a buyer's
//! payment is its total times its bus price. Hence: a buyer whose total is
//! interior or at its `e_max` pays at most its marginal utility `b − a t`
//! per kWh (so at most its bid `b`, and less than its utility of the
//! energy), and a seller so placed receives at least its marginal cost. A
//! prosumer held at a positive `e_min` it filed is the exception by its
//! own request: its minimum settles at the bus price too, which may be
//! beyond its marginal valuation there (every prosumer at a bus faces one
//! price).

use std::time::Instant;

use serde::Serialize;

use crate::case::Case;
use crate::central::{self, CentralSolution, ClearError};
use crate::dc::DcModel;
use crate::distflow::DistFlow;
use crate::feeder_ac::{AcCheck, MAX_AC_BACKTRACKS, MAX_AC_ROUNDS};
use crate::network::{MarketNetwork, NetworkError};
use crate::primal_dual::{PdParams, PrimalDual};
use crate::problem::{Market, Side};
use crate::units::{cap_wh, settle_nodal, Settlement, SettlementError};
use crate::ModelError;

/// Which algorithm clears the market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Clarabel on the whole problem (the reference).
    Central,
    /// Distributed primal–dual over bilateral trades ([`crate::primal_dual`]).
    PrimalDual,
    /// ALADIN over prosumer and grid subproblems ([`crate::aladin`]).
    Aladin,
}

/// Why an interval could not be cleared.
#[derive(Debug, thiserror::Error)]
pub enum ClearingError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Clear(#[from] ClearError),
    #[error("{algorithm:?} did not converge in {iterations} iterations")]
    NoConvergence { algorithm: Algorithm, iterations: usize },
    #[error("ALADIN failed after {iterations} iterations: {source}")]
    AladinFailed { iterations: usize, source: crate::aladin::AladinError },
    #[error(
        "{algorithm:?} stopped after {iterations} iterations {gap:e} (relative) off the central optimum, beyond 1e-6 $ + 1e-3 of it (either sign)"
    )]
    OffOptimum { algorithm: Algorithm, iterations: usize, gap: f64 },
    #[error("{algorithm:?}'s settled trades put {side:?} {index}'s total {kwh_beyond:e} kWh outside its bounds")]
    BoundViolated { algorithm: Algorithm, side: Side, index: usize, kwh_beyond: f64 },
    #[error("{algorithm:?}'s settled trades exceed network row {row} by {kw_beyond:e} kW")]
    RowViolated { algorithm: Algorithm, row: String, kw_beyond: f64 },
    #[error(
        "{algorithm:?} stopped after {iterations} iterations with {side:?} {index}'s total {kwh_off:e} kWh off the central optimum's, beyond 1 Wh + 1e-3 of its own e_max"
    )]
    OffReference { algorithm: Algorithm, iterations: usize, side: Side, index: usize, kwh_off: f64 },
    #[error("settling the trades: {0}")]
    Settlement(#[from] SettlementError),
    #[error("the AC power flow of the feeder's cleared dispatch: {0}")]
    AcFlow(ModelError),
    #[error(
        "the feeder's AC flow of {algorithm:?}'s dispatch is beyond its limits after {rounds} clearing(s) with the loss allowance: {beyond}"
    )]
    AcLimits { algorithm: Algorithm, rounds: usize, beyond: String },
}

/// Minor units per major unit the settlement uses (cents).
pub const MINOR_PER_MAJOR: u32 = 100;

/// Largest relative welfare gap to the central optimum [`clear`] accepts
/// from a distributed algorithm (the 0.1 %), in either sign.
pub const MAX_RELATIVE_GAP: f64 = 1e-3;
/// Absolute floor of the gap test, $: `|optimum − welfare| ≤
/// MAX_ABSOLUTE_GAP + MAX_RELATIVE_GAP · |optimum|`. Without it a market
/// with no gain from trade (optimum 0 up to solver noise) was refused even
/// for the reference against itself.
pub const MAX_ABSOLUTE_GAP: f64 = 1e-6;

/// Per-prosumer tolerance of [`clear`]'s comparison with the reference,
/// kWh: each prosumer's cleared total within `PROSUMER_ABS_KWH +
/// PROSUMER_REL · e_max` of the central optimum's (unique: `a > 0`). The
/// welfare gap alone is dominated by the largest trader: a forced 10⁴ kWh
/// pair made 0.1 % of the welfare larger than an honest market's whole.
pub const PROSUMER_ABS_KWH: f64 = 1e-3;
/// See [`PROSUMER_ABS_KWH`].
pub const PROSUMER_REL: f64 = 1e-3;

/// The prosumer whose total in `trades` is farthest beyond the per-prosumer
/// tolerance off `reference`'s totals, with how far (kWh), if any.
pub fn reference_excess(
    market: &Market,
    reference: &CentralSolution,
    trades: &[Vec<f64>],
) -> Option<(Side, usize, f64)> {
    let (t, s) = PrimalDual::totals(trades);
    let mut worst: Option<(Side, usize, f64, f64)> = None;
    let sides = [
        (Side::Buyer, &market.buyers, &reference.buyer_totals, &t),
        (Side::Seller, &market.sellers, &reference.seller_totals, &s),
    ];
    for (side, ps, rt, got) in sides {
        for (i, p) in ps.iter().enumerate() {
            let off = (got.get(i).copied().unwrap_or(0.0) - rt.get(i).copied().unwrap_or(0.0)).abs();
            let beyond = off - (PROSUMER_ABS_KWH + PROSUMER_REL * p.e_max);
            if beyond > 0.0 && worst.is_none_or(|w| beyond > w.3) {
                worst = Some((side, i, off, beyond));
            }
        }
    }
    worst.map(|(side, i, off, _)| (side, i, off))
}

/// Whether welfare `w` is within the accepted gap of `optimum` (both signs:
/// welfare above the optimum is only reachable by an infeasible point).
pub fn within_gap(optimum: f64, w: f64) -> bool {
    (optimum - w).abs() <= MAX_ABSOLUTE_GAP + MAX_RELATIVE_GAP * optimum.abs()
}

/// The network rows the market of `case` clears under: LinDistFlow for a
/// radial feeder, PTDF line limits (ratings × `limit_scale`) otherwise. A
/// meshed case with no rated line gets a PTDF model with no row, which
/// [`clear`] refuses ([`MarketNetwork::check_constrained`]).
pub fn network_for(case: &Case, limit_scale: f64) -> Result<MarketNetwork, ClearingError> {
    // refused for every case, also where LinDistFlow has no line ratings to scale
    if !limit_scale.is_finite() || limit_scale <= 0.0 {
        return Err(NetworkError::BadScale(limit_scale).into());
    }
    if case.is_radial() {
        let df = DistFlow::new(case)?;
        Ok(MarketNetwork::distflow(&df, case)?)
    } else {
        Ok(MarketNetwork::ptdf_from(DcModel::new(case)?, limit_scale)?)
    }
}

/// The rows a market clears on, with a feeder's loss allowance
/// ([`crate::feeder_ac`]): for a network without a feeder check, `net`
/// itself and its central reference; for a feeder, the successive
/// linearisation — clear the reference, run the AC flow of its dispatch,
/// shift every row by its offset at that dispatch, clear again — until the
/// AC flow keeps every rating and voltage within the margins
/// ([`crate::feeder_ac::AC_RATING_MARGIN`],
/// [`crate::feeder_ac::AC_VOLTAGE_MARGIN_PU`]), at most
/// [`crate::feeder_ac::MAX_AC_ROUNDS`] clearings, else
/// [`ClearingError::AcLimits`]. Returns the rows, the reference on them and
/// the AC check of its dispatch.
pub fn with_loss_allowance(
    market: &Market,
    net: &MarketNetwork,
) -> Result<(MarketNetwork, CentralSolution, Option<AcCheck>), ClearingError> {
    let skipped = crate::mutants::active(crate::mutants::Mutation::FeederAcCheckSkipped);
    let Some(fa) = net.feeder.as_ref().filter(|_| !skipped) else {
        return Ok((net.clone(), central::solve(market, net)?, None));
    };
    if fa.rows() != net.h.len() {
        return Err(ClearingError::AcLimits {
            algorithm: Algorithm::Central,
            rounds: 0,
            beyond: format!("the feeder has {} rows, the network {}", fa.rows(), net.h.len()),
        });
    }
    let (bm, bn) = net.placement(market).map_err(ClearError::from)?;
    let base = fa.base().map_err(ClearingError::AcFlow)?;
    let mut cur = net.clone();
    let mut last = String::new();
    for round in 1..=MAX_AC_ROUNDS {
        let reference = central::solve(market, &cur)?;
        let p = cur.injections(&bm, &bn, &reference.buyer_totals, &reference.seller_totals);
        // a dispatch the AC flow does not solve (the lossless rows let a
        // feeder be loaded past what it can carry) is no clearing; the
        // allowance is taken at the largest fraction 2⁻ᵏ of it that solves
        let st = match fa.state(&p) {
            Ok(st) => {
                let check = fa.check(&st, base, &cur.labels, round);
                match &check.beyond {
                    None => return Ok((cur, reference, Some(check))),
                    Some((what, _)) => last = what.clone(),
                }
                st
            }
            Err(e) => {
                last = format!("the AC flow of the dispatch failed ({e})");
                let mut scaled = p.clone();
                let mut found = None;
                for _ in 0..MAX_AC_BACKTRACKS {
                    scaled.iter_mut().for_each(|x| *x *= 0.5);
                    if let Ok(st) = fa.state(&scaled) {
                        found = Some(st);
                        break;
                    }
                }
                found.ok_or(ClearingError::AcFlow(e))?
            }
        };
        if round == MAX_AC_ROUNDS {
            break;
        }
        let shift = fa.allowance(&st).map_err(|beyond| ClearingError::AcLimits {
            algorithm: Algorithm::Central,
            rounds: round,
            beyond,
        })?;
        // a row the allowance would close beyond the market's absence (the
        // case's own loads at or over the limit under AC) is held there:
        // the market adds nothing to it
        cur.h = net.h.iter().zip(&shift).map(|(h, d)| (h + d).max(h.min(0.0))).collect();
    }
    Err(ClearingError::AcLimits { algorithm: Algorithm::Central, rounds: MAX_AC_ROUNDS, beyond: last })
}

/// The AC check ([`crate::feeder_ac`]) of an algorithm's settled trades on
/// `net` (rows from [`with_loss_allowance`]); `None` for a network without
/// a feeder check. A dispatch beyond the margins is
/// [`ClearingError::AcLimits`].
pub fn ac_check(
    market: &Market,
    net: &MarketNetwork,
    algorithm: Algorithm,
    rounds: usize,
    settled: &[Vec<f64>],
) -> Result<Option<AcCheck>, ClearingError> {
    if crate::mutants::active(crate::mutants::Mutation::FeederAcCheckSkipped) {
        return Ok(None);
    }
    let Some(fa) = net.feeder.as_ref() else { return Ok(None) };
    let (bm, bn) = net.placement(market).map_err(ClearError::from)?;
    let (t, s) = PrimalDual::totals(settled);
    let st = fa.state(&net.injections(&bm, &bn, &t, &s)).map_err(ClearingError::AcFlow)?;
    let base = fa.base().map_err(ClearingError::AcFlow)?;
    let check = fa.check(&st, base, &net.labels, rounds);
    match &check.beyond {
        Some((what, _)) => Err(ClearingError::AcLimits { algorithm, rounds, beyond: what.clone() }),
        None => Ok(Some(check)),
    }
}

/// The size of the network rows [`network_for`] builds for a case, known
/// before it builds them ([`network_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NetworkSize {
    /// `"distflow"` (radial) or `"ptdf"` (meshed), as [`MarketNetwork::model`].
    pub model: &'static str,
    /// Row pairs: LinDistFlow's V max / V min pair per non-root bus and
    /// thermal pair per rated parent line, or one PTDF pair per rated
    /// in-service line. Each row is dense over the buses.
    pub row_pairs: usize,
    /// Buses of the model (non-isolated).
    pub buses: usize,
}

impl NetworkSize {
    /// Row pairs × buses: the entries of one row of every pair (what
    /// [`ModelError::TooLargeDistFlow`] and [`ModelError::TooLargePtdf`]
    /// count), half the market rows' entries.
    pub fn entries(&self) -> u64 {
        (self.row_pairs as u64).saturating_mul(self.buses as u64)
    }
}

/// The size of the rows [`network_for`] builds for `case`, in O(buses +
/// branches) and without anything n²-sized: a caller can refuse a model
/// (or an algorithm's work over its rows) before building it. Refuses what
/// the models refuse on the bus count; the entry limits
/// ([`crate::MAX_DISTFLOW_ENTRIES`], [`crate::MAX_PTDF_ENTRIES`]) stay with
/// the models.
pub fn network_size(case: &Case) -> Result<NetworkSize, ModelError> {
    if case.is_radial() {
        let (row_pairs, buses) = crate::distflow::row_pairs(case)?;
        return Ok(NetworkSize { model: "distflow", row_pairs, buses });
    }
    use crate::case::BusType;
    let live: std::collections::HashSet<u32> =
        case.buses.iter().filter(|b| b.kind != BusType::Isolated).map(|b| b.id).collect();
    if live.len() > crate::MAX_MODEL_BUSES {
        return Err(ModelError::TooLarge { buses: live.len(), max: crate::MAX_MODEL_BUSES });
    }
    // `MarketNetwork::ptdf`: a pair per in-service line between live buses
    // with a rating
    let row_pairs = case
        .branches
        .iter()
        .filter(|b| b.in_service && b.rate_a > 0.0 && live.contains(&b.from) && live.contains(&b.to))
        .count();
    Ok(NetworkSize { model: "ptdf", row_pairs, buses: live.len() })
}

/// One bilateral trade of the result.
#[derive(Debug, Clone, Serialize)]
pub struct Trade {
    pub buyer: usize,
    pub seller: usize,
    pub kwh: f64,
    /// The buyer's price of the trade, $/kWh: its bus's nodal price (the
    /// module docs).
    pub price: f64,
    /// The seller's price of the trade, $/kWh: its own bus's nodal price.
    pub seller_price: f64,
}

/// The result of one interval.
#[derive(Debug, Clone, Serialize)]
pub struct Clearing {
    pub algorithm: Algorithm,
    pub network: &'static str,
    /// Welfare of the settled trades, $.
    pub welfare: f64,
    /// Welfare of the centralised optimum, $.
    pub optimum: f64,
    /// `(optimum − welfare) / optimum`.
    pub relative_gap: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Wall time of the algorithm's iterations (not the reference), s.
    pub seconds: f64,
    /// Nodal prices of the optimum, $/kWh: `(bus, price)`.
    pub bus_prices: Vec<(u32, f64)>,
    /// Volume-weighted mean price the buyers pay on the settled trades,
    /// $/kWh (their nodal prices, the module docs).
    pub mean_trade_price: f64,
    /// Volume-weighted mean price the sellers receive, $/kWh.
    pub mean_seller_price: f64,
    pub energy_kwh: f64,
    /// Trades above 1 mWh (the settlement counts every trade, however small).
    pub trades: Vec<Trade>,
    /// Network rows binding at the optimum.
    pub binding: Vec<String>,
    /// Largest violation of a network row by the settled trades, kW.
    pub violation_kw: f64,
    /// A feeder's AC flow of the settled trades ([`crate::feeder_ac`]):
    /// the clearings the loss allowance took, the largest line loading and
    /// the voltage range; `None` for a meshed network.
    pub ac: Option<AcCheck>,
    /// The trades in the ledger's integers (Wh, cents), each prosumer's
    /// cleared total rounded once, Σ payments = Σ receipts exactly
    /// ([`crate::units::Settlement`]).
    pub settlement: Settlement,
}

/// Clears `market` on `net` with `algorithm`, beside the central reference.
pub fn clear(market: &Market, net: &MarketNetwork, algorithm: Algorithm) -> Result<Clearing, ClearingError> {
    clear_with(market, net, algorithm, None)
}

/// [`clear`] with an iteration cap for the distributed algorithms (`None`:
/// their own, [`PdParams::for_market`] and
/// [`crate::aladin::AladinParams::default`]); a run that reaches the cap
/// unconverged is [`ClearingError::NoConvergence`]. The reference ignores it.
pub fn clear_with(
    market: &Market,
    net: &MarketNetwork,
    algorithm: Algorithm,
    max_iter: Option<usize>,
) -> Result<Clearing, ClearingError> {
    // a PTDF model with no row (a meshed case with no rated line) would
    // clear with no network constraint at all: refused
    net.check_constrained()?;
    // a feeder's rows with the loss allowance of its AC flow, and the
    // reference on them: every algorithm clears on these rows
    let (net, reference, ac) = with_loss_allowance(market, net)?;
    let net = &net;
    let (bm, bn) = net.placement(market).map_err(ClearError::from)?;
    let t0 = Instant::now();
    // per trade: (buyer's price, seller's price), the module docs
    let (trades, iterations, converged, prices) = match algorithm {
        Algorithm::Central => {
            let pi = &reference.bus_prices;
            let pr = bm.iter().map(|km| bn.iter().map(|kn| (pi[*km], pi[*kn])).collect()).collect();
            (reference.trades(), reference.iterations as usize, true, pr)
        }
        Algorithm::PrimalDual => {
            let mut prm = PdParams::for_market(market);
            prm.max_iter = max_iter.unwrap_or(prm.max_iter);
            let mut pd = PrimalDual::new(market, net, prm).map_err(ClearError::from)?;
            let converged = pd.run(market).is_some();
            let line = pd.line_prices();
            let pr = (0..pd.buyers)
                .map(|m| {
                    (0..pd.sellers)
                        .map(|j| {
                            let l = pd.lambda_at(m, j);
                            (l + line[bn[j]] - line[bm[m]], l)
                        })
                        .collect()
                })
                .collect();
            (pd.settled(), pd.iterations, converged, pr)
        }
        Algorithm::Aladin => {
            let mut prm = crate::aladin::AladinParams::default();
            prm.max_iter = max_iter.unwrap_or(prm.max_iter);
            let mut al = crate::aladin::Aladin::new(market, net, prm).map_err(ClearError::from)?;
            let converged = match al.try_run(market, net) {
                Ok(done) => done.is_some(),
                // a failed step is no clearing, and its reason is kept
                Err(source) => return Err(ClearingError::AladinFailed { iterations: al.iterations, source }),
            };
            let pr = al.nodal_trade_prices();
            (al.settled(), al.iterations, converged, pr)
        }
    };
    let mut prices: Vec<Vec<(f64, f64)>> = prices;
    if crate::mutants::active(crate::mutants::Mutation::SellerPricedTrades) {
        prices.iter_mut().flatten().for_each(|(pb, ps)| *pb = *ps);
    }
    if !converged {
        // a result that did not reach the stopping criterion is no clearing
        return Err(ClearingError::NoConvergence { algorithm, iterations });
    }
    let seconds = t0.elapsed().as_secs_f64();
    let settled = trades.clone();
    let mut c =
        summarise(market, net, &reference, algorithm, trades, prices, iterations, converged, seconds, &bm, &bn)?;
    // the stopping rules are empirical, not certificates: a distributed
    // result that stopped off the reference by more than the 0.1 %
    // is refused rather than reported as a clearing
    check_against_reference(market, net, &reference, algorithm, iterations, &settled)?;
    // and on a feeder its own dispatch is held to the AC flow's limits too
    // (the reference's was, by `with_loss_allowance`)
    let rounds = ac.as_ref().map_or(0, |a| a.rounds);
    c.ac = match algorithm {
        Algorithm::Central => ac,
        _ => ac_check(market, net, algorithm, rounds, &settled)?,
    };
    Ok(c)
}

/// The checks a result must pass before it is reported as a clearing (by
/// [`clear`], and by the framework for TEAR-DO's result): it is primal
/// feasible — every prosumer's bounds (1 Wh + 1e-4 of its own e_max) and
/// every network row (1 mW + 1e-4 of its own limit), whatever the
/// algorithm's stopping rule said — its welfare is within
/// [`MAX_RELATIVE_GAP`] of the reference's, and (for the distributed
/// algorithms) each prosumer's own total is near the reference's (the
/// welfare gap cannot see a small honest market beside a large forced pair).
pub fn check_against_reference(
    market: &Market,
    net: &MarketNetwork,
    reference: &CentralSolution,
    algorithm: Algorithm,
    iterations: usize,
    settled: &[Vec<f64>],
) -> Result<(), ClearingError> {
    let (bm, bn) = net.placement(market).map_err(ClearError::from)?;
    if let Some((side, index, kwh_beyond)) = market.bound_excess(settled) {
        return Err(ClearingError::BoundViolated { algorithm, side, index, kwh_beyond });
    }
    let (t, s) = PrimalDual::totals(settled);
    if let Some((r, kw_beyond)) = net.row_excess(&net.injections(&bm, &bn, &t, &s)) {
        return Err(ClearingError::RowViolated { algorithm, row: net.labels[r].clone(), kw_beyond });
    }
    let welfare = market.welfare(settled);
    if !within_gap(reference.welfare, welfare) {
        let gap = (reference.welfare - welfare) / reference.welfare.abs().max(1e-12);
        return Err(ClearingError::OffOptimum { algorithm, iterations, gap });
    }
    if algorithm != Algorithm::Central {
        if let Some((side, index, kwh_off)) = reference_excess(market, reference, settled) {
            return Err(ClearingError::OffReference { algorithm, iterations, side, index, kwh_off });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    market: &Market,
    net: &MarketNetwork,
    reference: &CentralSolution,
    algorithm: Algorithm,
    trades: Vec<Vec<f64>>,
    prices: Vec<Vec<(f64, f64)>>,
    iterations: usize,
    converged: bool,
    seconds: f64,
    bm: &[usize],
    bn: &[usize],
) -> Result<Clearing, ClearingError> {
    let welfare = market.welfare(&trades);
    let (t, s) = PrimalDual::totals(&trades);
    let violation_kw = net.violation(&net.injections(bm, bn, &t, &s));
    let energy_kwh: f64 = t.iter().sum();
    let mut volume = 0.0;
    let (mut paid, mut received) = (0.0, 0.0);
    let mut list = Vec::new();
    let mut all = Vec::new();
    for (m, row) in trades.iter().enumerate() {
        for (n, e) in row.iter().enumerate() {
            let (pb, ps) = prices[m][n];
            volume += e;
            paid += e * pb;
            received += e * ps;
            // solver noise below zero is no trade; a real negative trade is
            // refused by the settlement (and by the bound check)
            let e = if *e < 0.0 && *e > -1e-6 { 0.0 } else { *e };
            if e != 0.0 {
                all.push((m, n, e, pb, ps));
            }
            if e > 1e-6 {
                list.push(Trade { buyer: m, seller: n, kwh: e, price: pb, seller_price: ps });
            }
        }
    }
    let caps = |ps: &[crate::problem::Prosumer]| ps.iter().map(|p| cap_wh(p.e_max)).collect::<Vec<_>>();
    // every trade, however small: the settlement rounds per prosumer
    let settlement = settle_nodal(&all, &caps(&market.buyers), &caps(&market.sellers), MINOR_PER_MAJOR)?;
    Ok(Clearing {
        algorithm,
        network: net.model,
        welfare,
        optimum: reference.welfare,
        relative_gap: (reference.welfare - welfare) / reference.welfare.abs().max(1e-12),
        iterations,
        converged,
        seconds,
        bus_prices: net.bus_ids.iter().copied().zip(reference.bus_prices.iter().copied()).collect(),
        mean_trade_price: if volume > 0.0 { paid / volume } else { 0.0 },
        mean_seller_price: if volume > 0.0 { received / volume } else { 0.0 },
        energy_kwh,
        trades: list,
        binding: reference.binding.iter().map(|r| net.labels[*r].clone()).collect(),
        violation_kw,
        ac: None,
        settlement,
    })
}
