//! The three phases of §6.3.2 on a development chain: prosumers commit
//! encrypted requests, the grid operator publishes admission rules and
//! records the admitted ids (§6.3.3), and the D-TASK enclaves clear exactly
//! the admitted requests with TEAR-DO.

use std::path::Path;
use std::sync::Arc;

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::TxStatus;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::contract::{
    AdmissionRules, AdmitArgs, IntervalArg, MarketContract, RequestArgs, StoredRequest, MARKET_ID, MAX_ADMIT_BATCH,
};
use crate::network::MarketNetwork;
use crate::problem::{Market, Prosumer, Side};
use crate::relief::{self, Group};
use crate::teardo::{Deployed, TearDoConfig, TearDoError, TearDoReport};
use crate::tee::{encrypt_request_for, request_binding, sha, Enclave};

/// Bytes of an encoded request.
pub const REQUEST_BYTES: usize = 1 + 4 + 4 * 8;

/// A request's plaintext: side, bus, `a`, `b`, `e_min`, `e_max` (LE).
pub fn encode_request(p: &Prosumer) -> Vec<u8> {
    let mut v = vec![match p.side {
        Side::Buyer => 0u8,
        Side::Seller => 1,
    }];
    v.extend(p.bus.to_le_bytes());
    for x in [p.a, p.b, p.e_min, p.e_max] {
        v.extend(x.to_le_bytes());
    }
    v
}

/// Largest linear coefficient `b` ($/kWh) of a request the enclaves admit
/// to an interval: a buyer's marginal utility at zero, a seller's marginal
/// cost at zero. 10 $/kWh (10 000 $/MWh) is of the order of the price caps
/// of wholesale electricity markets and some 30 times the seeded buyers'
/// largest (0.35). Nothing else bounds a hidden `b`: one request with
/// `b = 10¹²` made the interval's solves fail (`DualInfeasible`) after
/// admission, and `b = 10⁶` made TEAR-DO's welfare-relative stopping rule
/// stop with honest totals off the optimum.
pub const MAX_REQUEST_PRICE: f64 = 10.0;
/// Largest `e_max` (kWh per interval, so also the largest `e_min`) of a
/// request the enclaves admit: 10 MWh, a large industrial site or a
/// feeder's aggregator for one hour, some 2 000 times the seeded
/// prosumers' largest (5 kWh). `e_max = 10¹²` made the interval's solves
/// fail like a huge `b`. (`a` is bounded by
/// [`crate::problem::MAX_CURVATURE`] for every clearing.)
pub const MAX_REQUEST_KWH: f64 = 10_000.0;

/// Checks a decrypted request's numbers against the framework's admission
/// limits ([`MAX_REQUEST_PRICE`], [`MAX_REQUEST_KWH`]); its own validity
/// ([`Prosumer::check`]) is checked beside it.
pub fn check_request_limits(p: &Prosumer) -> Result<(), RequestError> {
    for (field, value, limit) in
        [("b", p.b, MAX_REQUEST_PRICE), ("e_max", p.e_max, MAX_REQUEST_KWH), ("e_min", p.e_min, MAX_REQUEST_KWH)]
    {
        if value > limit {
            return Err(RequestError::AboveLimit { field, value, limit });
        }
    }
    Ok(())
}

/// Why a decrypted request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("request of {0} bytes (want {REQUEST_BYTES})")]
    Length(usize),
    #[error("unknown side tag {0}")]
    Side(u8),
    #[error("the encrypted request does not match its public fields ({0})")]
    PublicFields(&'static str),
    #[error("{field} = {value} is above the admission limit of {limit}")]
    AboveLimit { field: &'static str, value: f64, limit: f64 },
}

/// Parses a request's plaintext (numbers are checked by [`Market::validate`]).
pub fn decode_request(b: &[u8]) -> Result<Prosumer, RequestError> {
    if b.len() != REQUEST_BYTES {
        return Err(RequestError::Length(b.len()));
    }
    let side = match b[0] {
        0 => Side::Buyer,
        1 => Side::Seller,
        t => return Err(RequestError::Side(t)),
    };
    let bus = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let f = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[5 + 8 * i..13 + 8 * i]);
        f64::from_le_bytes(a)
    };
    Ok(Prosumer { side, bus, a: f(0), b: f(1), e_min: f(2), e_max: f(3) })
}

/// Why an interval could not be run.
#[derive(Debug, thiserror::Error)]
pub enum FrameworkError {
    #[error("chain: {0}")]
    Chain(String),
    #[error(transparent)]
    TearDo(#[from] TearDoError),
    #[error("request {index}: {err}")]
    Request { index: usize, err: RequestError },
    #[error(transparent)]
    Market(#[from] crate::problem::MarketError),
    #[error("the admitted market cannot be cleared: {0}")]
    Infeasible(#[from] crate::central::ClearError),
    #[error("TEAR-DO did not converge in {0} iterations")]
    NoConvergence(usize),
    #[error("the interval's clearing is refused: {0}")]
    Refused(#[from] crate::clearing::ClearingError),
}

/// An admitted request the enclaves excluded from the clearing, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Excluded {
    /// Index in the interval's submission order.
    pub index: usize,
    pub id: String,
    pub reason: String,
}

/// How [`run_interval`] relieved minima that could not be met jointly
/// ([`relieve_minima`]): `side` is the side whose minima were changed
/// (`None`: both), `factor` the fraction of that side's (both sides')
/// filed minima kept, `reason` the stages applied.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MinimaScaling {
    pub side: Option<Side>,
    pub factor: f64,
    pub reason: String,
    /// Solves the relief took (at most [`MAX_RELIEF_SOLVES`]).
    pub solves: usize,
}

/// An interval whose distributed run reached its iteration cap
/// unconverged, or stopped with a result [`crate::clearing::clear`] would
/// refuse, and was cleared at the enclaves' central reference instead
/// ([`run_interval`]).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Fallback {
    /// TEAR-DO's iterations when it stopped (its cap).
    pub iterations: usize,
    pub reason: String,
}

/// What one interval did.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalOutcome {
    pub submitted: usize,
    /// Admitted request ids, as recorded on chain.
    pub admitted: Vec<String>,
    /// Requests the operator deferred (index in submission order).
    pub deferred: Vec<usize>,
    /// Admitted requests the enclaves excluded (invalid, above the
    /// admission limits [`MAX_REQUEST_PRICE`] / [`MAX_REQUEST_KWH`], a
    /// hidden minimum above the other side's total maximum, or the request
    /// farthest from the medians when the central solver failed).
    pub excluded: Vec<Excluded>,
    /// Hidden minima that could not be met jointly, capped
    /// ([`relieve_minima`]); `None` when the admitted minima were feasible.
    pub minima_scaled: Option<MinimaScaling>,
    /// `Some` when TEAR-DO reached its iteration cap unconverged (or its
    /// result was refused against the reference) and the interval was
    /// cleared at the central reference the enclaves solved
    /// (`trades` and `welfare` are then the reference's); `None` when the
    /// trades are TEAR-DO's.
    pub fallback: Option<Fallback>,
    /// Chain height after the admission record.
    pub height: u64,
    pub teardo: TearDoReport,
    pub welfare: f64,
    pub trades: Vec<Vec<f64>>,
    /// The market the enclaves decrypted from the admitted requests.
    #[serde(skip)]
    pub market: Option<Market>,
}

fn chain_err(e: impl std::fmt::Display) -> FrameworkError {
    FrameworkError::Chain(e.to_string())
}

/// Runs one interval: D-TASK, encrypted requests on chain, admission under a
/// per-bus cap of `bus_cap_wh` (None: no cap), TEAR-DO over the admitted
/// requests. The chain lives in `dir`. Keys, `rn` and the prosumers'
/// encryption randomness come from the operating system.
pub fn run_interval(
    dir: &Path,
    requests: &Market,
    net: &MarketNetwork,
    config: TearDoConfig,
    bus_cap_wh: Option<u64>,
) -> Result<IntervalOutcome, FrameworkError> {
    let deployed = Deployed::deploy(config)?;
    interval_with(dir, requests, net, deployed, ChaCha20Rng::from_os_rng(), bus_cap_wh, None)
}

/// INSECURE, for tests and reproducible benchmarks only: [`run_interval`]
/// with every key, `rn` and the encryption randomness derived from the
/// public `config.seed` (anyone who knows it decrypts every request).
pub fn run_interval_insecure_seeded(
    dir: &Path,
    requests: &Market,
    net: &MarketNetwork,
    config: TearDoConfig,
    bus_cap_wh: Option<u64>,
) -> Result<IntervalOutcome, FrameworkError> {
    run_interval_insecure_seeded_capped(dir, requests, net, config, bus_cap_wh, None)
}

/// INSECURE, for tests only: [`run_interval_insecure_seeded`] with
/// TEAR-DO's iteration cap set to `max_iter` (`None`: the algorithm's own,
/// [`crate::primal_dual::PdParams::for_market`]), to exercise the
/// fallback of an unconverged run ([`IntervalOutcome::fallback`]).
pub fn run_interval_insecure_seeded_capped(
    dir: &Path,
    requests: &Market,
    net: &MarketNetwork,
    config: TearDoConfig,
    bus_cap_wh: Option<u64>,
    max_iter: Option<usize>,
) -> Result<IntervalOutcome, FrameworkError> {
    let rng = ChaCha20Rng::seed_from_u64(config.seed ^ 0x6d61726b6574);
    let deployed = Deployed::deploy_insecure_seeded(config)?;
    interval_with(dir, requests, net, deployed, rng, bus_cap_wh, max_iter)
}

fn interval_with(
    dir: &Path,
    requests: &Market,
    net: &MarketNetwork,
    deployed: Deployed,
    mut rng: ChaCha20Rng,
    bus_cap_wh: Option<u64>,
    max_iter: Option<usize>,
) -> Result<IntervalOutcome, FrameworkError> {
    let prosumers: Vec<&Prosumer> = requests.buyers.iter().chain(&requests.sellers).collect();
    let operator = dev_key(0);
    let mut registry = gridledger_ledger::ContractRegistry::new();
    registry.register(MARKET_ID, Arc::new(MarketContract { operator: operator.address() }));
    let mut chain = DevChain::open(dir, prosumers.len() + 1, Amount(1_000_000_000_000), registry).map_err(chain_err)?;
    let interval = 1u64;
    let chain_id = chain.chain.genesis().chain_id;
    // phase 1: encrypted requests
    let keys: Vec<KeyPair> = (1..=prosumers.len()).map(dev_key).collect();
    let mut ids = Vec::new();
    for (i, p) in prosumers.iter().enumerate() {
        let e_max_wh = (p.e_max * 1000.0).round_ties_even().clamp(0.0, u64::MAX as f64) as u64;
        let binding = request_binding(chain_id, interval, &keys[i].address().0);
        let ct = encrypt_request_for(&deployed.keys, &encode_request(p), &binding, &mut rng);
        let args = RequestArgs { interval, bus: p.bus, e_max_wh, ciphertext: ct };
        let r = chain.call(&keys[i], MARKET_ID, "request", borsh::to_vec(&args).unwrap_or_default(), Amount(0));
        let r = r.map_err(chain_err)?;
        if let TxStatus::Reverted(why) = r.status {
            return Err(FrameworkError::Chain(format!("request {i} reverted: {why}")));
        }
        let mut h = [0u8; 32];
        h.copy_from_slice(r.output.get(..32).unwrap_or(&[0; 32]));
        ids.push(Hash32(h));
    }
    // phase 1b: admission (§6.3.3), greedily in submission order under the cap
    let caps: Vec<(u32, u64)> = match bus_cap_wh {
        Some(c) => net.bus_ids.iter().map(|b| (*b, c)).collect(),
        None => Vec::new(),
    };
    let rules = AdmissionRules {
        interval,
        bus_caps_wh: caps.clone(),
        note: "per-bus cap on the admitted maximum energy (dynamic operating envelope)".into(),
    };
    let r = chain.call(&operator, MARKET_ID, "rules", borsh::to_vec(&rules).unwrap_or_default(), Amount(0));
    if let TxStatus::Reverted(why) = r.map_err(chain_err)?.status {
        return Err(FrameworkError::Chain(format!("rules reverted: {why}")));
    }
    let mut used: Vec<(u32, u64)> = Vec::new();
    let mut admitted = Vec::new();
    let mut deferred = Vec::new();
    for (i, p) in prosumers.iter().enumerate() {
        let e = (p.e_max * 1000.0).round_ties_even().clamp(0.0, u64::MAX as f64) as u64;
        let cap = caps.iter().find(|(b, _)| *b == p.bus).map(|(_, c)| *c).unwrap_or(u64::MAX);
        let now = used.iter().find(|(b, _)| *b == p.bus).map(|(_, u)| *u).unwrap_or(0);
        if now.saturating_add(e) <= cap {
            match used.iter_mut().find(|(b, _)| *b == p.bus) {
                Some((_, u)) => *u += e,
                None => used.push((p.bus, e)),
            }
            admitted.push(ids[i]);
        } else {
            deferred.push(i);
        }
    }
    // recorded in batches (each id is a storage write): `admit_part` for all
    // but the last batch, `admit` for the last, which seals the record
    let batches: Vec<&[Hash32]> =
        if admitted.is_empty() { vec![&[][..]] } else { admitted.chunks(MAX_ADMIT_BATCH).collect() };
    for (k, batch) in batches.iter().enumerate() {
        let method = if k + 1 == batches.len() { "admit" } else { "admit_part" };
        let args = AdmitArgs { interval, ids: batch.to_vec() };
        let r = chain.call(&operator, MARKET_ID, method, borsh::to_vec(&args).unwrap_or_default(), Amount(0));
        if let TxStatus::Reverted(why) = r.map_err(chain_err)?.status {
            return Err(FrameworkError::Chain(format!("admission reverted: {why}")));
        }
    }
    let height = chain.chain.tip().height;
    // phase 2→3: the enclaves read the admitted requests from the chain
    let arg = borsh::to_vec(&IntervalArg { interval }).unwrap_or_default();
    let listed = chain.chain.view(MARKET_ID, "requests", &arg).map_err(chain_err)?;
    let stored: Vec<StoredRequest> = serde_json::from_value(listed["requests"].clone()).unwrap_or_default();
    let adm = chain.chain.view(MARKET_ID, "admitted", &arg).map_err(chain_err)?;
    let admitted_hex: Vec<String> = serde_json::from_value(adm["admitted"].clone()).unwrap_or_default();
    let reader = deployed.selected.first().copied().unwrap_or(0);
    // the enclaves decrypt every admitted request; one that does not open,
    // does not match its public fields or whose own numbers are invalid is
    // excluded with a record instead of vetoing everyone's interval
    let mut excluded: Vec<Excluded> = Vec::new();
    let mut valid: Vec<(usize, Prosumer, &[u8])> = Vec::new();
    for (index, r) in stored.iter().enumerate() {
        if !admitted_hex.contains(&hex::encode(r.id.0)) {
            continue;
        }
        let checked = deployed.enclaves[reader]
            .open_request_for(&r.ciphertext, &request_binding(chain_id, interval, &r.submitter.0))
            .map_err(|e| format!("does not decrypt: {e}"))
            .and_then(|plain| decode_request(&plain).map_err(|e| e.to_string()))
            .and_then(|p| {
                if p.bus != r.bus {
                    return Err(RequestError::PublicFields("bus").to_string());
                }
                if !((p.e_max * 1000.0).round_ties_even() - r.e_max_wh as f64).abs().le(&0.5) {
                    return Err(RequestError::PublicFields("e_max").to_string());
                }
                p.check(p.side, index, &net.bus_ids).map_err(|e| e.to_string())?;
                check_request_limits(&p).map_err(|e| e.to_string())?;
                Ok(p)
            });
        match checked {
            Ok(p) => valid.push((index, p, &r.ciphertext)),
            Err(reason) => excluded.push(Excluded { index, id: hex::encode(r.id.0), reason }),
        }
    }
    // a hidden minimum no counterparty side could ever meet (more than the
    // other side offers at most, all together) is a lie or an error: excluded
    loop {
        let total = |side: Side| valid.iter().filter(|(_, p, _)| p.side == side).map(|(_, p, _)| p.e_max).sum::<f64>();
        let (buy_max, sell_max) = (total(Side::Buyer), total(Side::Seller));
        let bad = valid.iter().position(|(_, p, _)| match p.side {
            Side::Buyer => p.e_min > sell_max,
            Side::Seller => p.e_min > buy_max,
        });
        let Some(k) = bad else { break };
        let (index, p, _) = valid.remove(k);
        let other = if p.side == Side::Buyer { sell_max } else { buy_max };
        let id = stored.get(index).map(|r| hex::encode(r.id.0)).unwrap_or_default();
        let reason = format!("e_min {} kWh exceeds the other side's total e_max {other} kWh", p.e_min);
        excluded.push(Excluded { index, id, reason });
    }
    // hidden minima that cannot be met *jointly* (two buyers each below the
    // sellers' total but together above it, or a minimum behind a line
    // allotted less) must not veto everyone's interval, and no set of
    // requests may choose whom that hurts: a group infeasible on its own
    // is capped at what the network lets it take, then the groups loading
    // what is still violated are water-filled to one common level, nobody
    // excluded ([`relieve_minima`]). Only when no minimum at all is
    // feasible is the interval refused. The central reference is solved
    // here too (the result is checked against it below); should the
    // solver fail rather than answer (not "infeasible": no answer at all),
    // the request whose numbers lie farthest from the interval's is
    // excluded with a record and the solves are repeated, at most
    // [`MAX_SOLVER_EXCLUSIONS`] times, so one request cannot halt it.
    let mut solver_exclusions = 0;
    let (market, minima_scaled, reference, rows) = loop {
        let mut market = Market { buyers: Vec::new(), sellers: Vec::new() };
        for (_, p, _) in &valid {
            match p.side {
                Side::Buyer => market.buyers.push(p.clone()),
                Side::Seller => market.sellers.push(p.clone()),
            }
        }
        // on a feeder, the rows with the loss allowance of its AC flow
        // ([`crate::clearing::with_loss_allowance`]): TEAR-DO and the
        // reference clear on them, as `clear` does
        let solved = relieve_minima(&mut market, net).and_then(|scaled| {
            let (rows, reference, _) = crate::clearing::with_loss_allowance(&market, net).map_err(|e| match e {
                crate::clearing::ClearingError::Clear(e) => FrameworkError::Infeasible(e),
                e => FrameworkError::Refused(e),
            })?;
            Ok((scaled, reference, rows))
        });
        match solved {
            Ok((scaled, reference, rows)) => break (market, scaled, reference, rows),
            Err(FrameworkError::Infeasible(crate::central::ClearError::Solver(why)))
                if solver_exclusions < MAX_SOLVER_EXCLUSIONS =>
            {
                let prosumers: Vec<&Prosumer> = valid.iter().map(|(_, p, _)| p).collect();
                let Some(k) = farthest_from_median(&prosumers) else {
                    return Err(crate::central::ClearError::Solver(why).into());
                };
                let (index, p, _) = valid.remove(k);
                let id = stored.get(index).map(|r| hex::encode(r.id.0)).unwrap_or_default();
                let reason = format!(
                    "the central solver failed on the admitted market ({why}); this request's numbers (a {}, b {}, \
                     e_max {}) lie farthest from the interval's medians",
                    p.a, p.b, p.e_max
                );
                excluded.push(Excluded { index, id, reason });
                solver_exclusions += 1;
            }
            Err(e) => return Err(e),
        }
    };
    excluded.sort_by_key(|e| e.index);
    let mut digest_input = Vec::new();
    for (_, _, ct) in &valid {
        digest_input.extend(*ct);
    }
    let digest = sha(&[b"gridledger/market/admitted", &digest_input]);
    let net = &rows;
    let mut tear = deployed.start(&market, net, digest)?;
    if let Some(cap) = max_iter {
        tear.pd.params.max_iter = cap;
    }
    let teardo = tear.run(&market);
    // a run that reached its iteration cap unconverged must not halt the
    // interval for everyone (round 7: a near-linear 10 MWh pair 1 c/kWh
    // apart, within every admission limit, held primal-dual at the cap
    // before the per-party steps): the interval clears at the central
    // reference the enclaves already solved and check every distributed
    // result against, with a record. Not by excluding requests: a
    // non-converged run names no culprit (the slow trades may be honest
    // ones) and a rerun costs another cap of encrypted rounds. A run that
    // stopped short of its cap (every selected executor Byzantine) stays
    // an error: no honest enclave computed anything.
    let (trades, fallback) = if teardo.converged {
        let trades = tear.pd.settled();
        // TEAR-DO's stopping rule is no certificate: the enclaves hold the
        // admitted market and report only a clearing `clear` would accept
        // (bounds, network rows, welfare and every prosumer's total against
        // the central reference); a result `clear` would refuse (its typed
        // error in the record) is replaced by the reference, as above
        let alg = crate::clearing::Algorithm::PrimalDual;
        let checked =
            crate::clearing::check_against_reference(&market, net, &reference, alg, teardo.iterations, &trades)
                .and_then(|()| crate::clearing::ac_check(&market, net, alg, 0, &trades).map(|_| ()));
        match checked {
            Ok(()) => (trades, None),
            Err(e) => {
                let reason = format!("TEAR-DO's result was refused ({e}); cleared at the enclaves' central reference");
                (reference.trades(), Some(Fallback { iterations: teardo.iterations, reason }))
            }
        }
    } else if teardo.iterations >= tear.pd.params.max_iter {
        let reason = format!(
            "TEAR-DO did not converge in {} iterations; cleared at the enclaves' central reference",
            teardo.iterations
        );
        (reference.trades(), Some(Fallback { iterations: teardo.iterations, reason }))
    } else {
        return Err(FrameworkError::NoConvergence(teardo.iterations));
    };
    Ok(IntervalOutcome {
        submitted: prosumers.len(),
        admitted: admitted_hex,
        deferred,
        excluded,
        minima_scaled,
        fallback,
        height,
        teardo,
        welfare: market.welfare(&trades),
        trades,
        market: Some(market),
    })
}

/// Relieves minima that cannot be met jointly, in place, by rules that
/// splitting, reordering or inflating requests cannot steer onto others,
/// in three stages (each only while the market is still infeasible).
///
/// The unit of relief is a **bus group**: the minima of one side at one
/// bus, taken together. A group is relieved by its aggregate minimum (the
/// sum of its members'), and what it keeps is shared among its members by
/// water-filling (`min(e_min, ℓ)` with one level `ℓ` in the group). So a
/// party that splits a minimum into many requests at a bus changes nothing
/// for the requests at other buses: fifty sybil buyers of 0.2 kWh behind a
/// congested line are relieved as one 10 kWh request at their bus would be
/// (per request, each one passed the first stage, and the common level of
/// the last fell to 0.2 kWh for every honest minimum of the interval).
/// Within a bus, requests share by water-filling, so splitting there can
/// still take from a co-located request's share of that bus's allotment.
///
/// Feasibility depends only on the groups' aggregate bounds (the network
/// rows see bus injections), so every test below is a linear program over
/// the groups (the crate's `relief` module: at most two variables per bus, no
/// request's utility in it), solved exactly rather than bisected:
///
/// 1. **Each group alone.** A group whose aggregate minimum exceeds the
///    largest total it can take with every other minimum at zero (buyers
///    behind a line allotted less, a minimum above what the other side can
///    deliver to its bus) is water-filled to that total. One LP finds a
///    dispatch meeting as much of every group's minimum as it can (a group
///    met there is feasible alone); the totals alone of the groups it does
///    not meet come from **one** more LP (an independent copy of the
///    aggregated market per such group, each maximising its own group). Such a group
///    cannot make anyone else's minimum smaller than it would be had it
///    filed what the network lets it take.
/// 2. **Water-filling on the over-demanding side** (the side whose minima
///    exceed the other side's total maximum; no solve): every group of
///    that side keeps `min(M_g, c)` of its aggregate `M_g`, with one level
///    `c` for all groups, the largest that fits the other side's total
///    (just below it). Filing more than the level gains nothing, so
///    inflating one's own minimum cannot cut an honest group that is below
///    the level.
/// 3. **Water-filling over the groups that load the violated rows** when
///    the network is what remains infeasible. The groups relieved are
///    those whose minimum has a positive dual in the LP minimising the
///    rows' summed violation (lowering it would relieve a violated row); a
///    group whose energy crosses no violated row keeps its minimum as
///    filed. (Should levelling those groups to zero still be infeasible,
///    every group with a minimum is levelled.) The common level `c` is
///    found on the groups' own aggregates, not on a fixed grid: a search
///    over the sorted distinct aggregates finds the two consecutive ones
///    it lies between, and one LP then gives the largest feasible `c`
///    there exactly. A feasible positive level is therefore never rounded
///    down to zero, whatever one group's aggregate.
///
/// Work: at most [`MAX_RELIEF_SOLVES`] solves per interval (the first
/// feasibility test and the LPs above; the search takes ⌈log₂ D⌉ for D ≤
/// 2 × buses distinct aggregates), independent of how many requests are
/// relieved and of their numbers; the count is in the returned reason.
///
/// Round 4's rule scaled every minimum by one factor set by the worst
/// request (one minimum behind a congested line scaled everyone's to ~1%,
/// or to 0), and scaled only one side when the totals were infeasible (a
/// seller's network-infeasible minimum then vetoed the interval). Round 6
/// found that the last stage levelled every minimum of the interval (also
/// behind no congested line), that its bisection on a grid relative to
/// the largest minimum could end at 0, and that the first stage cost 11
/// central solves per request. The returned [`MinimaScaling`] names the
/// side(s) changed and the fraction of their filed minima kept. Returns
/// `None` when the market is already feasible; an error when it is
/// infeasible even with no minimum at all, or for any other reason.
pub fn relieve_minima(market: &mut Market, net: &MarketNetwork) -> Result<Option<MinimaScaling>, FrameworkError> {
    let why = match market.validate(&net.bus_ids) {
        Err(e @ crate::problem::MarketError::InfeasibleTotals { .. }) => e.to_string(),
        Err(e) => return Err(e.into()),
        Ok(()) => match crate::central::solve(market, net) {
            Ok(_) => return Ok(None),
            Err(e @ crate::central::ClearError::Infeasible(_)) => e.to_string(),
            Err(e) => return Err(e.into()),
        },
    };
    let solves = std::cell::Cell::new(1usize);
    let original = market.clone();
    let groups = bus_groups(&original);
    let pos = |bus: u32| net.bus_ids.iter().position(|b| *b == bus).unwrap_or(0);
    let agg: Vec<Group> = groups
        .iter()
        .map(|g| {
            let p = party(&original, g[0]);
            Group { side: p.side, bus: pos(p.bus), hi: g.iter().map(|&i| party(&original, i).e_max).sum() }
        })
        .collect();
    let sums = |m: &Market| groups.iter().map(|g| group_minima(m, g).iter().sum::<f64>()).collect::<Vec<f64>>();
    let feasible = |lo: &[f64]| {
        solves.set(solves.get() + 1);
        relief::feasible(net, &agg, lo)
    };
    if !feasible(&vec![0.0; groups.len()])? {
        // infeasible even without the minima: the interval itself is
        let mut none = original.clone();
        for p in none.buyers.iter_mut().chain(none.sellers.iter_mut()) {
            p.e_min = 0.0;
        }
        none.validate(&net.bus_ids)?;
        crate::central::solve(&none, net)?;
        return Err(crate::central::ClearError::Infeasible("even with every minimum at zero".into()).into());
    }
    let mut m = original.clone();
    let mut stages = Vec::new();
    // 1: each bus group alone, every other minimum at zero (one LP for all)
    let filed = sums(&original);
    let targets: Vec<usize> = (0..groups.len()).filter(|&g| filed[g] > 0.0).collect();
    if !targets.is_empty() && !crate::mutants::active(crate::mutants::Mutation::MinimaNotRelievedAlone) {
        // a group met in full by one dispatch meeting as much as it can is
        // feasible alone; only the others get a copy in the LP of totals alone
        let zero_err = || crate::central::ClearError::Infeasible("even with every minimum at zero".into());
        solves.set(solves.get() + 1);
        let want: Vec<f64> = targets.iter().map(|&g| filed[g]).collect();
        let met = relief::met_together(net, &agg, &targets, &want)?.ok_or_else(zero_err)?;
        let targets: Vec<usize> = targets
            .iter()
            .zip(met)
            .filter(|(&g, met)| filed[g] - met > 1e-7 * filed[g].max(1.0))
            .map(|(&g, _)| g)
            .collect();
        let alone = if targets.is_empty() {
            Vec::new()
        } else {
            solves.set(solves.get() + 1);
            relief::max_alone(net, &agg, &targets)?.ok_or_else(zero_err)?
        };
        let mut capped = 0;
        for (&g, v) in targets.iter().zip(alone) {
            if filed[g] > v * (1.0 + LEVEL_MARGIN) + 1e-9 {
                set_group(&mut m, &groups[g], &fill(&group_minima(&original, &groups[g]), v * (1.0 - LEVEL_MARGIN)));
                capped += 1;
            }
        }
        if capped > 0 {
            stages.push(format!("{capped} bus group(s) of minima infeasible alone capped"));
        }
    }
    // 2: water-filling over the bus groups of the over-demanding side
    let sum = |v: &[Prosumer], f: fn(&Prosumer) -> f64| v.iter().map(f).sum::<f64>();
    let (bmin, bmax) = (sum(&m.buyers, |p| p.e_min), sum(&m.buyers, |p| p.e_max));
    let (smin, smax) = (sum(&m.sellers, |p| p.e_min), sum(&m.sellers, |p| p.e_max));
    // just below the totals' bound, so rounding in the sums cannot refuse it
    let over = if bmin > smax {
        Some((Side::Buyer, smax * (1.0 - 1e-9)))
    } else if smin > bmax {
        Some((Side::Seller, bmax * (1.0 - 1e-9)))
    } else {
        None
    };
    if let Some((side, total)) = over {
        let side_groups: Vec<&Vec<usize>> = groups.iter().filter(|g| party(&m, g[0]).side == side).collect();
        let aggregates: Vec<f64> = side_groups.iter().map(|g| group_minima(&m, g).iter().sum()).collect();
        let c = water_level(&aggregates, total);
        for (g, agg) in side_groups.iter().zip(&aggregates) {
            let kept = fill(&group_minima(&m, g), agg.min(c));
            set_group(&mut m, g, &kept);
        }
        stages.push(format!("the {side:?}s' bus groups of minima capped at a common {c:.6} kWh"));
    }
    // 3: water-filling over the groups loading what the network still refuses
    let lo = sums(&m);
    if !feasible(&lo)? {
        let positive: Vec<bool> = lo.iter().map(|v| *v > 0.0).collect();
        solves.set(solves.get() + 1);
        let mut relieved: Vec<bool> = match relief::loading(net, &agg, &lo)? {
            Some(d) => {
                let top = d.iter().zip(&positive).filter(|(_, p)| **p).map(|(d, _)| *d).fold(0.0, f64::max);
                d.iter().zip(&positive).map(|(d, p)| *p && top > 0.0 && *d > LOADING_TOL * top).collect()
            }
            None => positive.clone(),
        };
        if crate::mutants::active(crate::mutants::Mutation::MinimaLevelledEverywhere) {
            relieved = positive.clone();
        }
        let at = |c: f64, which: &[bool]| -> Vec<f64> {
            lo.iter().zip(which).map(|(v, x)| if *x { v.min(c) } else { *v }).collect()
        };
        if relieved != positive && (!relieved.contains(&true) || !feasible(&at(0.0, &relieved))?) {
            relieved = positive.clone();
        }
        let mut levels: Vec<f64> = lo.iter().zip(&relieved).filter(|(_, x)| **x).map(|(v, _)| *v).collect();
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        // feasible at level `levels[a]` (a = -1: level 0), infeasible at `levels[b]`
        let (mut a, mut b) = (-1isize, levels.len() as isize - 1);
        while b - a > 1 {
            let mid = (a + b).div_euclid(2);
            if feasible(&at(levels[mid as usize], &relieved))? {
                a = mid;
            } else {
                b = mid;
            }
        }
        let c_lo = if a < 0 { 0.0 } else { levels[a as usize] };
        let c_hi = levels.get(b.max(0) as usize).copied().unwrap_or(0.0);
        let capped: Vec<bool> = lo.iter().zip(&relieved).map(|(v, x)| *x && *v >= c_hi).collect();
        solves.set(solves.get() + 1);
        let best = relief::max_level(net, &agg, &lo, &capped, c_lo, c_hi)?.unwrap_or(c_lo);
        let c = (best * (1.0 - LEVEL_MARGIN)).max(c_lo);
        let mut count = 0;
        for (g, x) in relieved.iter().enumerate() {
            if *x && lo[g] > c {
                let kept = fill(&group_minima(&m, &groups[g]), c);
                set_group(&mut m, &groups[g], &kept);
                count += 1;
            }
        }
        stages.push(format!(
            "{count} bus group(s) of minima loading the violated network rows capped at a common {c:.6} kWh"
        ));
    }
    // which side(s) changed, and the fraction of their filed minima kept
    let changed = |a: &[Prosumer], b: &[Prosumer]| a.iter().zip(b).any(|(x, y)| x.e_min != y.e_min);
    let (cb, cs) = (changed(&original.buyers, &m.buyers), changed(&original.sellers, &m.sellers));
    let side = match (cb, cs) {
        (true, false) => Some(Side::Buyer),
        (false, true) => Some(Side::Seller),
        _ => None,
    };
    let mins = |mk: &Market| {
        let pick = |p: &&Prosumer| side.is_none_or(|x| x == p.side);
        mk.buyers.iter().chain(mk.sellers.iter()).filter(pick).map(|p| p.e_min).sum::<f64>()
    };
    let filed = mins(&original);
    let factor = if filed > 0.0 { (mins(&m) / filed).clamp(0.0, 1.0) } else { 0.0 };
    *market = m;
    let reason = format!(
        "the admitted minima cannot be met jointly ({why}); {}; {factor:.6} of the filed minima kept ({} solves)",
        stages.join(", "),
        solves.get()
    );
    Ok(Some(MinimaScaling { side, factor, reason, solves: solves.get() }))
}

/// The bus groups of [`relieve_minima`]: the requests (indices as in
/// [`party`], buyers first) of one side at one bus, in order of first
/// appearance.
fn bus_groups(m: &Market) -> Vec<Vec<usize>> {
    let count = m.buyers.len() + m.sellers.len();
    if crate::mutants::active(crate::mutants::Mutation::MinimaRelievedPerRequest) {
        return (0..count).map(|i| vec![i]).collect();
    }
    let mut keys: Vec<(Side, u32)> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..count {
        let p = party(m, i);
        match keys.iter().position(|k| *k == (p.side, p.bus)) {
            Some(g) => groups[g].push(i),
            None => {
                keys.push((p.side, p.bus));
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// The minima of group `g` in `m`.
fn group_minima(m: &Market, g: &[usize]) -> Vec<f64> {
    g.iter().map(|&i| party(m, i).e_min).collect()
}

/// Sets the minima of group `g` in `m` to `e`.
fn set_group(m: &mut Market, g: &[usize], e: &[f64]) {
    for (&i, v) in g.iter().zip(e) {
        party_mut(m, i).e_min = *v;
    }
}

/// `e` water-filled to a total of at most `allot`: unchanged when it fits,
/// else `min(e_i, ℓ)` with the level `ℓ` of [`water_level`].
fn fill(e: &[f64], allot: f64) -> Vec<f64> {
    if e.iter().sum::<f64>() <= allot {
        return e.to_vec();
    }
    let level = water_level(e, allot);
    e.iter().map(|v| v.min(level)).collect()
}

/// The `i`-th request of `m`, buyers first.
fn party(m: &Market, i: usize) -> &Prosumer {
    let nb = m.buyers.len();
    if i < nb {
        &m.buyers[i]
    } else {
        &m.sellers[i - nb]
    }
}

fn party_mut(m: &mut Market, i: usize) -> &mut Prosumer {
    let nb = m.buyers.len();
    if i < nb {
        &mut m.buyers[i]
    } else {
        &mut m.sellers[i - nb]
    }
}

/// The water level `c` with `Σ min(e_i, c) = total` (for `Σ e_i > total ≥
/// 0`; the largest `e_i` when everything fits).
fn water_level(e: &[f64], total: f64) -> f64 {
    let mut sorted: Vec<f64> = e.iter().map(|x| x.max(0.0)).collect();
    sorted.sort_by(f64::total_cmp);
    let mut left = total.max(0.0);
    for (k, x) in sorted.iter().enumerate() {
        let rest = (sorted.len() - k) as f64;
        if x * rest > left {
            return left / rest;
        }
        left -= x;
    }
    sorted.last().copied().unwrap_or(0.0)
}

/// How many requests the framework excludes, one at a time, when the
/// central solver fails on the admitted market (no answer, not
/// "infeasible"): the request farthest from the interval's medians each
/// time, with a record; after that the failure is the interval's error.
pub const MAX_SOLVER_EXCLUSIONS: usize = 3;

/// The request whose `a`, `b` or `e_max` lies farthest from the median of
/// the same number over `ps`, on a log scale (the first such on ties);
/// `None` for no requests.
fn farthest_from_median(ps: &[&Prosumer]) -> Option<usize> {
    let log = |x: f64| x.max(1e-12).ln();
    let fields: [fn(&Prosumer) -> f64; 3] = [|p| p.a, |p| p.b, |p| p.e_max];
    let medians: Vec<f64> = fields
        .iter()
        .map(|f| {
            let mut v: Vec<f64> = ps.iter().map(|p| log(f(p))).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        })
        .collect();
    let score = |p: &Prosumer| fields.iter().zip(&medians).map(|(f, m)| (log(f(p)) - m).abs()).fold(0.0, f64::max);
    let mut best: Option<(usize, f64)> = None;
    for (i, p) in ps.iter().enumerate() {
        let s = score(p);
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// Relative margin by which [`relieve_minima`] keeps an exact LP bound
/// (a group's total alone, the common level) inside the feasible set, so
/// the clearing's own solve does not meet it on the boundary.
pub const LEVEL_MARGIN: f64 = 1e-9;

/// A group's minimum "loads" the violated rows when its dual in
/// the violation LP of the network stage exceeds this fraction of the largest one
/// (the interior-point duals of an exactly zero sensitivity are ~1e-9 of it).
pub const LOADING_TOL: f64 = 1e-6;

/// The most solves [`relieve_minima`] makes in one interval: one central
/// solve to see whether relief is needed, one LP with every minimum at zero,
/// one dispatch meeting as much of every group's minimum as it can, one for
/// the groups it does not meet in full alone, one feasibility test of the network stage,
/// one for the loading duals, one with the loading groups at zero,
/// ⌈log₂(2 × [`crate::MAX_MODEL_BUSES`])⌉ = 14 for the search over the
/// distinct group aggregates (at most two groups per bus), and one for the
/// exact level (a market infeasible even without minima costs one more
/// central solve, for its typed error).
pub const MAX_RELIEF_SOLVES: usize = 8 + 14;

#[cfg(test)]
mod tests {
    use super::{farthest_from_median, water_level};
    use crate::problem::{Prosumer, Side};

    #[test]
    fn the_request_farthest_from_the_medians_is_the_one_with_extreme_numbers() {
        let p = |a: f64, b: f64, e_max: f64| Prosumer { side: Side::Buyer, bus: 1, a, b, e_min: 0.0, e_max };
        let honest = [p(0.02, 0.3, 5.0), p(0.01, 0.25, 3.0), p(0.03, 0.35, 1.0), p(0.02, 0.1, 4.0)];
        for (odd, at) in [(p(0.02, 9.9, 5.0), 2), (p(1e-9, 0.3, 5.0), 0), (p(0.02, 0.3, 9_999.0), 4)] {
            let mut v: Vec<&Prosumer> = honest.iter().collect();
            v.insert(at, &odd);
            assert_eq!(farthest_from_median(&v), Some(at), "{odd:?}");
        }
        assert_eq!(farthest_from_median(&[]), None);
    }

    #[test]
    fn the_water_level_caps_only_what_is_above_it() {
        // 5 + 9.99 over 10: both at 5
        assert_eq!(water_level(&[5.0, 9.99], 10.0), 5.0);
        // 1 + 10.5 over 11: the small one whole, the large one 10
        assert_eq!(water_level(&[10.5, 1.0], 11.0), 10.0);
        // three inflated beside an honest 2: the honest one whole
        assert_eq!(water_level(&[2.0, 9.0, 9.0, 9.0], 11.0), 3.0);
        // everything fits: the largest
        assert_eq!(water_level(&[1.0, 2.0], 10.0), 2.0);
        assert_eq!(water_level(&[], 10.0), 0.0);
        assert_eq!(water_level(&[4.0, 4.0], 0.0), 0.0);
    }
}
