//! Mutation sensitivity of the market (issue 15): each bug planted behind
//! the `mutants` feature ([`Mutation`]) must make at least one of these
//! scenarios fail, and every scenario must hold without a bug (the
//! control). Each scenario is what the defence or update rule exists for.
//!
//! Run with `cargo test -p gridledger-market --features mutants --test mutants`.

use std::collections::BTreeMap;

use gridledger_core::mutation::Scenario;
use gridledger_market::central::solve;
use gridledger_market::framework::relieve_minima;
use gridledger_market::mutants::{plant, Mutation};
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{uncongested_optimum, PdParams, PrimalDual};
use gridledger_market::problem::{Market, Prosumer, Side};
use gridledger_market::teardo::{Detection, Fault, Strategy, TearDo, TearDoConfig, SCRIPT};
use gridledger_market::tee::{run_dtask, Attester, SetupFault, SoftwareEnclave};
use gridledger_market::{Case, DcModel, CASE30};
use rand::SeedableRng;

/// Iteration cap of the scenarios (the seeded markets converge in a few
/// thousand; a planted bug may never converge).
const MAX_ITER: usize = 30_000;

fn case30() -> DcModel {
    DcModel::new(&Case::parse(CASE30).unwrap()).unwrap()
}

/// D-TASK eliminates a candidate that deployed another script.
fn dtask_eliminates_a_wrong_script() -> bool {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let (set, shares) = gridledger_threshold::deal(7, 5, &mut rng).unwrap();
    let mut es: Vec<SoftwareEnclave> = shares
        .into_iter()
        .enumerate()
        .map(|(i, s)| SoftwareEnclave::new(i, SCRIPT, s, set.clone(), &mut rng))
        .collect();
    let h = es[0].measurement();
    let mut faults = vec![None; 7];
    faults[3] = Some(SetupFault::WrongScript);
    match run_dtask(&mut es, &faults, b"v", h, &mut rng) {
        Ok(dep) => !dep.selected.contains(&3) && dep.eliminated.iter().any(|(i, _)| *i == 3),
        Err(_) => false,
    }
}

/// TEAR-DO with silent, tampering, stale and forging hosts clears exactly
/// like the plain iteration.
fn teardo_clears_exactly_under_faults() -> bool {
    let dc = case30();
    let market = Market::generate(21, 4, 4, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.params.max_iter = MAX_ITER;
    let Some(iterations) = pd.run(&market) else { return false };
    let byz: BTreeMap<usize, Fault> =
        [(1, Fault::Silent), (4, Fault::TamperOutput), (6, Fault::WrongInputs), (8, Fault::BadSignature)].into();
    let cfg = TearDoConfig { enclaves: 10, kappa: 2, byzantine: byz, strategy: Strategy::Always, seed: 5 };
    let Ok(mut t) = TearDo::new_insecure_seeded(&market, &net, cfg, [1; 32]) else { return false };
    // a run that goes astray stops early instead of signing 200,000 rounds
    t.pd.params.max_iter = 2 * iterations;
    let r = t.run(&market);
    r.converged && t.pd.settled() == pd.settled()
}

/// A compromised enclave that sends `-0.0` where the script computes
/// `+0.0` (the operator's unpriced line multipliers) is flagged as an
/// output mismatch: executors' outputs are compared bit for bit.
fn a_sign_flipped_zero_is_caught() -> bool {
    let dc = case30();
    let market = Market::generate(21, 4, 4, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    let cfg = |byz| TearDoConfig { enclaves: 10, kappa: 2, byzantine: byz, strategy: Strategy::Always, seed: 5 };
    let Ok(clean) = TearDo::new_insecure_seeded(&market, &net, cfg(BTreeMap::new()), [1; 32]) else { return false };
    let node = clean.assigned(4 + 4)[0];
    let Ok(mut t) = TearDo::new_insecure_seeded(&market, &net, cfg([(node, Fault::SignFlippedZero)].into()), [1; 32])
    else {
        return false;
    };
    let mut prev = [0u8; 32];
    for _ in 0..3 {
        t.step(&market, &mut prev);
    }
    t.report(false).detected.iter().any(|(n, d, _)| *n == node && *d == Detection::OutputMismatch)
}

/// A compromised enclave that lists its wrong output twice beside a silent
/// co-executor (κ = 2) is one voice: the message is flagged
/// (`DuplicateOutput`) and the clearing is the attack-free one bit for bit.
fn a_repeated_output_is_one_voice() -> bool {
    let dc = case30();
    let market = Market::generate(21, 4, 4, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.params.max_iter = MAX_ITER;
    let Some(iterations) = pd.run(&market) else { return false };
    let want: Vec<u64> = pd.settled().into_iter().flatten().map(f64::to_bits).collect();
    let cfg = |byz| TearDoConfig { enclaves: 10, kappa: 2, byzantine: byz, strategy: Strategy::Always, seed: 5 };
    let Ok(clean) = TearDo::new_insecure_seeded(&market, &net, cfg(BTreeMap::new()), [1; 32]) else { return false };
    // a node whose only subproblem in its round is `sp`, and its co-executor
    let (buyers, all) = (4, 4 + 4 + 1);
    let round_of = |sp: usize| if sp < buyers { 0..buyers } else { buyers..all };
    let lone = (0..all).find_map(|sp| {
        let pair = clean.assigned(sp);
        [(pair[0], pair[1]), (pair[1], pair[0])]
            .into_iter()
            .find(|&(node, _)| round_of(sp).filter(|s| clean.assigned(*s).contains(&node)).eq([sp]))
    });
    let Some((node, co)) = lone else { return false };
    let byz: BTreeMap<usize, Fault> = [(node, Fault::DuplicateOutput), (co, Fault::Silent)].into();
    let Ok(mut t) = TearDo::new_insecure_seeded(&market, &net, cfg(byz), [1; 32]) else { return false };
    t.pd.params.max_iter = 2 * iterations;
    let r = t.run(&market);
    let got: Vec<u64> = t.pd.settled().into_iter().flatten().map(f64::to_bits).collect();
    r.converged && got == want && r.detected.iter().any(|(n, d, _)| *n == node && *d == Detection::DuplicateOutput)
}

/// A host replaying the other nodes' validly signed messages of the
/// previous round (beside its own) flags nobody, and the clearing is the
/// attack-free one bit for bit.
fn an_earlier_rounds_replay_flags_nobody() -> bool {
    let dc = case30();
    let market = Market::generate(21, 4, 4, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.params.max_iter = MAX_ITER;
    let Some(iterations) = pd.run(&market) else { return false };
    let want: Vec<u64> = pd.settled().into_iter().flatten().map(f64::to_bits).collect();
    let byz: BTreeMap<usize, Fault> = [(3, Fault::ReplayEarlier)].into();
    let cfg = TearDoConfig { enclaves: 10, kappa: 2, byzantine: byz, strategy: Strategy::Always, seed: 5 };
    let Ok(mut t) = TearDo::new_insecure_seeded(&market, &net, cfg, [1; 32]) else { return false };
    t.pd.params.max_iter = 2 * iterations;
    let r = t.run(&market);
    let got: Vec<u64> = t.pd.settled().into_iter().flatten().map(f64::to_bits).collect();
    r.converged && got == want && r.detected.is_empty()
}

/// The primal-dual method reaches the exact uncongested optimum.
fn primal_dual_reaches_the_uncongested_optimum() -> bool {
    let dc = case30();
    let market = Market::generate(1, 6, 6, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1.0).unwrap();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.params.max_iter = MAX_ITER;
    let converged = pd.run(&market).is_some();
    let w = market.welfare(&pd.settled());
    let (_, exact, _, _) = uncongested_optimum(&market);
    converged && ((w - exact) / exact).abs() < 1e-3
}

/// With binding lines the primal-dual method reaches the central optimum
/// and the settled trades respect the limits.
fn primal_dual_respects_line_limits() -> bool {
    let dc = case30();
    let market = Market::generate(1, 6, 6, &dc.bus_ids);
    let net = MarketNetwork::ptdf(&dc, 1e-4).unwrap();
    let Ok(c) = solve(&market, &net) else { return false };
    if c.binding.is_empty() {
        return false;
    }
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.params.max_iter = MAX_ITER;
    let converged = pd.run(&market).is_some();
    let w = market.welfare(&pd.settled());
    converged && ((w - c.welfare) / c.welfare).abs() < 1e-3
}

/// A feeder with shunt capacitors (MATPOWER's case18) is cleared against
/// its real voltages: a seller at the far end selling to the substation
/// clears no further than the AC flow's V max allows (attack round 22 [1]).
/// LinDistFlow's own rows are checked (the feeder's AC check, which would
/// correct a model error by its allowance, taken off).
fn a_feeder_with_capacitors_clears_within_v_max() -> bool {
    use gridledger_market::clearing::{clear, network_for, Algorithm};
    use gridledger_market::{run_pf, PfOptions};
    let case = Case::parse(include_str!("data/case18.m")).unwrap();
    let p = |side, bus, a, b| Prosumer { side, bus, a, b, e_min: 0.0, e_max: 20_000.0 };
    let m = Market { buyers: vec![p(Side::Buyer, 51, 1e-6, 0.5)], sellers: vec![p(Side::Seller, 26, 1e-6, 0.01)] };
    let lindistflow = network_for(&case, 1.0).map(|mut net| {
        net.feeder = None;
        net
    });
    let Ok(c) = lindistflow.and_then(|net| clear(&m, &net, Algorithm::Central)) else { return false };
    let mut after = case.clone();
    for b in &mut after.buses {
        b.pd += match b.id {
            26 => -c.energy_kwh / 1000.0,
            51 => c.energy_kwh / 1000.0,
            _ => 0.0,
        };
    }
    c.converged && c.energy_kwh > 1000.0 && run_pf(&after, PfOptions::default()).is_ok_and(|r| r.max_vm <= 1.11)
}

/// case33bw's substation line rated 4.8 MVA (its AC base flow 4.61 MVA), a
/// buyer at bus 3 buying from the substation: the clearing keeps the
/// line's AC flow within its rating and the stated margin, losses
/// included (attack round 24 [4]).
fn a_rated_substation_line_keeps_its_ac_rating() -> bool {
    use gridledger_market::clearing::{clear, network_for, Algorithm};
    use gridledger_market::feeder_ac::AC_RATING_MARGIN;
    use gridledger_market::{run_pf, PfOptions};
    let mut case = Case::parse(gridledger_market::CASE33BW).unwrap();
    case.branches.iter_mut().find(|b| b.from == 1 && b.to == 2).unwrap().rate_a = 4.8;
    let p = |side, bus, a, b| Prosumer { side, bus, a, b, e_min: 0.0, e_max: 20_000.0 };
    let m = Market { buyers: vec![p(Side::Buyer, 3, 1e-6, 0.5)], sellers: vec![p(Side::Seller, 1, 1e-6, 0.01)] };
    let Ok(c) = network_for(&case, 1.0).and_then(|net| clear(&m, &net, Algorithm::Central)) else { return false };
    for (id, d) in [(3u32, c.energy_kwh), (1, -c.energy_kwh)] {
        case.buses.iter_mut().find(|b| b.id == id).unwrap().pd += d / 1000.0;
    }
    let Ok(r) = run_pf(&case, PfOptions::default()) else { return false };
    // bus 1's only line carries the reference's output and the seller's export
    let s = (r.ref_p_mw + c.energy_kwh / 1000.0).hypot(r.ref_q_mvar);
    c.energy_kwh > 10.0 && s <= 4.8 * (1.0 + AC_RATING_MARGIN)
}

/// One huge minimum behind a congested line does not erase the honest
/// minima of both sides (it is capped on its own first).
fn a_huge_minimum_behind_a_line_leaves_honest_minima() -> bool {
    let net = MarketNetwork::ptdf(&case30(), 1e-4).unwrap();
    let p = |side, bus, b, e_min, e_max| Prosumer { side, bus, a: 0.02, b, e_min, e_max };
    let mut m = Market {
        buyers: vec![p(Side::Buyer, 2, 0.3, 5.0, 8.0), p(Side::Buyer, 11, 0.3, 10_000.0, 10_000.0)],
        sellers: vec![p(Side::Seller, 2, 0.1, 0.0, 20_000.0), p(Side::Seller, 2, 0.1, 2.0, 10.0)],
    };
    relieve_minima(&mut m, &net).is_ok() && m.buyers[0].e_min == 5.0 && m.sellers[1].e_min == 2.0
}

/// A minimum the network cannot carry even alone is capped at what it
/// can before any other is levelled beside it: on rows of their own (a
/// line of 1 kW into bus 2 alone, 10 kW into buses 2 and 3 together), a
/// 100 kWh minimum at bus 2 is capped at 1 kWh and the honest 5 kWh at
/// bus 3 fits beside it; levelled together without the first stage, the
/// common level is bus 2's 1 kWh for both.
fn a_minimum_infeasible_alone_is_capped_before_levelling() -> bool {
    let mut net = MarketNetwork::unconstrained(vec![1, 2, 3]);
    net.g = vec![vec![0.0, -1.0, 0.0], vec![0.0, -1.0, -1.0]];
    net.h = vec![1.0, 10.0];
    net.labels = vec!["into 2".into(), "into 2 and 3".into()];
    let p = |side, bus, b, e_min, e_max| Prosumer { side, bus, a: 0.02, b, e_min, e_max };
    let mut m = Market {
        buyers: vec![p(Side::Buyer, 2, 0.3, 100.0, 100.0), p(Side::Buyer, 3, 0.3, 5.0, 8.0)],
        sellers: vec![p(Side::Seller, 1, 0.1, 0.0, 200.0)],
    };
    relieve_minima(&mut m, &net).is_ok() && m.buyers[1].e_min == 5.0 && m.buyers[0].e_min <= 1.0 + 1e-6
}

/// Two minima behind case30's lines into buses 25 and 26 that cannot be
/// met together are levelled between themselves; an unrelated buyer at
/// bus 2, served at its own bus, keeps its 10 kWh.
fn a_congested_pair_leaves_an_unrelated_minimum() -> bool {
    let net = MarketNetwork::ptdf(&case30(), 1e-4).unwrap();
    let p = |side, bus, b, e_min, e_max| Prosumer { side, bus, a: 0.02, b, e_min, e_max };
    let mut m = Market {
        buyers: vec![
            p(Side::Buyer, 2, 0.3, 10.0, 12.0),
            p(Side::Buyer, 25, 0.3, 2.5, 3.0),
            p(Side::Buyer, 26, 0.3, 1.5, 2.0),
        ],
        sellers: vec![p(Side::Seller, 2, 0.05, 0.0, 20_000.0)],
    };
    let r = relieve_minima(&mut m, &net);
    matches!(r, Ok(Some(_))) && m.buyers[0].e_min == 10.0 && m.buyers[1].e_min < 2.5
}

/// Fifty sybil minima of 0.2 kWh at bus 11 facing 8 kWh of sellers beside
/// an honest 5 kWh buyer at bus 2 (the over-demanding side): per bus
/// group, bus 11's 10 kWh and bus 2's 5 kWh share the 8 kWh at one level
/// (4 kWh each); per request the honest buyer kept 8/51 kWh.
fn sybil_minima_on_the_over_demanding_side_are_levelled_per_bus() -> bool {
    let net = MarketNetwork::ptdf(&case30(), 1.0).unwrap();
    let p = |side, bus, b, e_min, e_max| Prosumer { side, bus, a: 0.02, b, e_min, e_max };
    let mut buyers = vec![p(Side::Buyer, 2, 0.3, 5.0, 8.0)];
    buyers.extend((0..50).map(|_| p(Side::Buyer, 11, 0.3, 0.2, 0.2)));
    let mut m = Market { buyers, sellers: vec![p(Side::Seller, 2, 0.1, 0.0, 8.0)] };
    relieve_minima(&mut m, &net).is_ok() && m.buyers[0].e_min > 3.99
}

/// Fifty sybil minima of 0.2 kWh behind a congested line, each feasible
/// alone, do not cut the honest minima at another bus (relief per bus
/// group: the sybils' bus is capped on its own first).
fn sybil_minima_behind_a_line_leave_honest_minima() -> bool {
    let net = MarketNetwork::ptdf(&case30(), 1e-4).unwrap();
    let p = |side, bus, b, e_min, e_max| Prosumer { side, bus, a: 0.02, b, e_min, e_max };
    let mut buyers = vec![p(Side::Buyer, 2, 0.3, 5.0, 8.0)];
    buyers.extend((0..50).map(|_| p(Side::Buyer, 11, 0.3, 0.2, 0.2)));
    let mut m =
        Market { buyers, sellers: vec![p(Side::Seller, 2, 0.1, 0.0, 20_000.0), p(Side::Seller, 2, 0.1, 2.0, 10.0)] };
    relieve_minima(&mut m, &net).is_ok() && m.buyers[0].e_min == 5.0 && m.sellers[1].e_min == 2.0
}

/// A buyer at the cheap end of a congested line (bid 0.20 $/kWh) is
/// charged its own bus's price, never the dearer bus's across the line
/// (the reference's proportional plan matches it with both sellers).
fn no_buyer_pays_above_its_bid_across_a_congested_line() -> bool {
    use gridledger_market::clearing::{clear, Algorithm};
    let net = MarketNetwork::ptdf(&case30(), 1e-4).unwrap();
    let p = |side, bus, b| Prosumer {
        side,
        bus,
        a: 0.02,
        b,
        e_min: 0.0,
        e_max: if side == Side::Buyer { 10.0 } else { 50.0 },
    };
    let m = Market {
        buyers: vec![p(Side::Buyer, 11, 0.2), p(Side::Buyer, 2, 0.5)],
        sellers: vec![p(Side::Seller, 11, 0.05), p(Side::Seller, 2, 0.25)],
    };
    let Ok(c) = clear(&m, &net, Algorithm::Central) else { return false };
    c.trades.iter().all(|t| t.price <= m.buyers[t.buyer].b + 1e-6)
}

/// Primal-dual leaves its congested mode (capped buyer steps) once no line
/// is priced: a near-linear 10 MWh pair split across buses 10 and 9, whose
/// first steps price the tightened lines of case30 for a few hundred
/// iterations only (no row binds at the optimum), clears within 3 000
/// iterations (about 700). The pair's own trade is the one the mode caps
/// (since attack round 11 a pair at one bus has none: its own trade loads
/// no row, its trades with the small parties keep the common step).
fn primal_dual_leaves_the_congested_mode_of_an_uncongested_interval() -> bool {
    use gridledger_market::clearing::{clear_with, Algorithm};
    let net = MarketNetwork::ptdf(&case30(), 1e-2).unwrap();
    let mut m = Market::generate(5, 3, 3, &net.bus_ids);
    let p = |side, bus, b| Prosumer { side, bus, a: 1e-5, b, e_min: 0.0, e_max: 10_000.0 };
    m.buyers.push(p(Side::Buyer, net.bus_ids[9], 10.0));
    m.sellers.push(p(Side::Seller, net.bus_ids[8], 9.99));
    clear_with(&m, &net, Algorithm::PrimalDual, Some(3_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.is_empty())
}

/// A near-linear 10 MWh pair at one bus in seed 5's 3 × 3 market on
/// case30 clears within 0.1 % of the optimum behind a line binding there:
/// at bus 26 behind line 25-26 (ratings × 5·10⁻⁴) within 5 000 iterations
/// (about 2 100), at bus 21 behind line 16-17 (ratings × 2·10⁻⁴,
/// multiplier ≈ 16 $/kWh) within 10 000 (about 6 800). The pair's own
/// trade loads no row and keeps its own step while the line is priced, the
/// flat buyer's trades with the small sellers keep the common penalty, and
/// a line's multiplier takes the longer step once it has stayed priced and
/// overloaded (attack round 11; each alone missing: the capped pair trade
/// not within 60 000 at either, the shrunk penalties about 33 500 at bus 26, the
/// base multiplier step about 20 700 at bus 21).
fn flat_pairs_at_one_bus_behind_binding_lines_clear() -> bool {
    use gridledger_market::clearing::{clear_with, Algorithm};
    [(26u32, 5e-4, "line 25-26 forward", 5_000usize), (21, 2e-4, "line 16-17 forward", 10_000)].into_iter().all(
        |(bus, scale, line, budget)| {
            let net = MarketNetwork::ptdf(&case30(), scale).unwrap();
            let mut m = Market::generate(5, 3, 3, &net.bus_ids);
            let p = |side, b| Prosumer { side, bus, a: 1e-5, b, e_min: 0.0, e_max: 10_000.0 };
            m.buyers.push(p(Side::Buyer, 10.0));
            m.sellers.push(p(Side::Seller, 9.99));
            clear_with(&m, &net, Algorithm::PrimalDual, Some(budget))
                .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == line))
        },
    )
}

/// A line that comes close to its limit but does not bind at the optimum
/// lets go of its multiplier: seed 2's 3 × 3 market with a near-linear
/// 10 MWh pair (`a = 10⁻⁴`) at model bus 3 on case30 at ratings × 2·10⁻⁴
/// (line 15-23 with 21 W of slack at the optimum, priced above 1 $/kWh by
/// the pair's first steps) clears within 3 000 iterations (about 1 700)
/// with no row binding. A row priced and under its limit for a streak takes
/// the growing step down (attack round 12; with the base step alone, over
/// 200 000 iterations).
fn a_row_with_a_little_slack_lets_go_of_its_price() -> bool {
    use gridledger_market::clearing::{clear_with, Algorithm};
    let net = MarketNetwork::ptdf(&case30(), 2e-4).unwrap();
    let mut m = Market::generate(2, 3, 3, &net.bus_ids);
    let bus = net.bus_ids[3];
    let p = |side, b| Prosumer { side, bus, a: 1e-4, b, e_min: 0.0, e_max: 10_000.0 };
    m.buyers.push(p(Side::Buyer, 10.0));
    m.sellers.push(p(Side::Seller, 9.99));
    clear_with(&m, &net, Algorithm::PrimalDual, Some(3_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.is_empty())
}

/// Primal-dual stops only on a clearing `clear` accepts: a small congested
/// case30 market (2 buyers, 4 seeded sellers, ratings × 10⁻³; attack round
/// 12's fuzz) clears by primal-dual with every party within its tolerance
/// of the reference. With the per-party stopping test over the parties
/// beyond `E₀` only, it stopped with a seller 2.35 Wh off its optimal total
/// (tolerance 2.04 Wh) and `clear` refused it as `OffReference`.
fn primal_dual_stops_only_where_clear_accepts() -> bool {
    use gridledger_market::clearing::{clear, Algorithm};
    let net = MarketNetwork::ptdf(&case30(), 1e-3).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let m = Market {
        buyers: vec![
            p(Side::Buyer, 22, 0.010983315542972138, 0.25651049289728667, 1.0162981659611816),
            p(Side::Buyer, 30, 0.01778239358370093, 0.33144195504836726, 1.2909677592015614),
        ],
        sellers: vec![
            p(Side::Seller, 20, 0.010295614518310474, 0.08772495837306853, 3.9203998730440865),
            p(Side::Seller, 22, 0.027325826045440274, 0.1136470214617988, 1.4771541254472824),
            p(Side::Seller, 23, 0.01163106311356299, 0.10529523274056778, 1.035012924843226),
            p(Side::Seller, 20, 0.01663931254976843, 0.10939143089266587, 4.8070291087691075),
        ],
    };
    clear(&m, &net, Algorithm::PrimalDual).is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3)
}

/// The seeded 4 × 4 market on case30 with ratings × 10⁻¹⁰ (every line
/// allots the market µW while the parties trade kWh; attack round 18)
/// clears by primal-dual within the scenarios' cap: the rows' weights are
/// raised and the steps of the trades that load them shrunk alike
/// (`TINY_ROW_REF`; 12 010 iterations). With the weights raised but the
/// steps left (the line term's curvature above its bound) it does not
/// settle; with neither it reached the 200 000 cap.
fn a_market_on_tiny_line_limits_clears() -> bool {
    use gridledger_market::clearing::{clear_with, Algorithm};
    let net = MarketNetwork::ptdf(&case30(), 1e-10).unwrap();
    let m = Market::generate(1, 4, 4, &net.bus_ids);
    clear_with(&m, &net, Algorithm::PrimalDual, Some(MAX_ITER)).is_ok_and(|c| c.converged)
}

/// A copy of a prosumer's request filed first by another account does not
/// revert the owner's own.
fn a_front_run_copy_does_not_lock_the_owner_out() -> bool {
    use gridledger_core::Amount;
    use gridledger_ledger::devnet::{dev_key, DevChain};
    use gridledger_ledger::{ContractRegistry, TxStatus};
    use gridledger_market::contract::{MarketContract, RequestArgs, MARKET_ID};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ContractRegistry::new();
    reg.register(MARKET_ID, Arc::new(MarketContract { operator: dev_key(0).address() }));
    let mut chain = DevChain::open(dir.path(), 4, Amount(1_000_000_000_000), reg).unwrap();
    // the contract stores ciphertexts opaquely: any bytes do
    let args = borsh::to_vec(&RequestArgs { interval: 1, bus: 7, e_max_wh: 3000, ciphertext: vec![7; 100] }).unwrap();
    let _copy = chain.call(&dev_key(2), MARKET_ID, "request", args.clone(), Amount(0)).unwrap();
    let own = chain.call(&dev_key(1), MARKET_ID, "request", args, Amount(0)).unwrap().status;
    own == TxStatus::Success
}

/// Large parties on the 33-bus feeder clear with every row weighted by
/// the common `c`: attack round 13's mixed market (four small seeded
/// parties a side, two large buyers of 546 and 733 kWh, one 4 051 kWh
/// seller; `bus 18 V min` binds) clears by primal-dual within 20 000
/// iterations (about 7 600) with `row_scale_ref` 0, the V-min rows not
/// weighted in their own scale (`ROW_SCALE_REF`, which the default tuning
/// does, and with which this market needs no longer step). Their
/// multipliers then must climb far behind a constant overload: the longer
/// step doubles along the streak (with the fixed `OVERLOAD_BOOST` alone,
/// past 200 000 iterations).
fn large_parties_on_the_feeder_clear() -> bool {
    use gridledger_market::clearing::{check_against_reference, network_for, Algorithm};
    let net = network_for(&Case::parse(gridledger_market::CASE33BW).unwrap(), 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    use Side::{Buyer, Seller};
    let m = Market {
        buyers: vec![
            p(Buyer, 19, 0.029691942238260452, 0.27110446926859166, 2.5473664427144076),
            p(Buyer, 8, 0.01567381182607475, 0.32106102236811085, 2.8443526928276626),
            p(Buyer, 14, 0.0004135887111162483, 4.658391493208839, 546.1918062245641),
            p(Buyer, 11, 4.6573615835797345e-5, 8.190435717007377, 732.944092342693),
        ],
        sellers: vec![
            p(Seller, 24, 0.010835380643385704, 0.06738343855540223, 1.1101235018173456),
            p(Seller, 16, 0.021544182742674153, 0.05994595228311095, 2.0556702725367852),
            p(Seller, 15, 0.01902874841100284, 0.05366854586825307, 3.8457760922527235),
            p(Seller, 31, 0.02894234953813949, 0.0633243912425308, 2.3747364450819157),
            p(Seller, 19, 0.011261015795547008, 1.6192015395529442, 4050.566789764301),
        ],
    };
    let prm = PdParams { row_scale_ref: 0.0, max_iter: 20_000, ..PdParams::for_market(&m) };
    let Ok(mut pd) = PrimalDual::new(&m, &net, prm) else { return false };
    let Some(iterations) = pd.run(&m) else { return false };
    let Ok(reference) = solve(&m, &net) else { return false };
    let binds = reference.binding.iter().any(|r| net.labels[*r] == "bus 18 V min");
    binds && check_against_reference(&m, &net, &reference, Algorithm::PrimalDual, iterations, &pd.settled()).is_ok()
}

/// A near-linear pair on the 33-bus feeder clears: attack round 13's
/// second market (seed 9's 3 × 3 on the feeder plus a 10 MWh buyer at bus
/// 9 bidding 10 $/kWh and a 2 MWh seller at bus 27 asking 9.99 $/kWh, both
/// with `a = 10⁻⁶`; `bus 18 V min` binds) clears by primal-dual within
/// 10 000 iterations (about 5 800). The V-min rows' coefficients are
/// ~10⁻⁴ p.u.² per kW: weighted with the common `c` (no
/// `ROW_SCALE_REF` normalisation) they have no damping, the doubling
/// climb overshoots the multiplier, and the run cycles to the cap.
fn a_near_linear_pair_on_the_feeder_clears() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let net = network_for(&Case::parse(gridledger_market::CASE33BW).unwrap(), 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    use Side::{Buyer, Seller};
    let m = Market {
        buyers: vec![
            p(Buyer, 17, 0.029040049398849355, 0.34665339206769147, 3.513741490751718),
            p(Buyer, 6, 0.021718335495608792, 0.2810102668051313, 3.327851171166073),
            p(Buyer, 32, 0.028044263214085964, 0.2980418294425408, 2.356731661997496),
            p(Buyer, 9, 1e-6, 10.0, 10_000.0),
        ],
        sellers: vec![
            p(Seller, 17, 0.013694480513831379, 0.10496441367212289, 3.4256565928511282),
            p(Seller, 16, 0.014231843738431303, 0.09967875117803648, 1.4962331312265462),
            p(Seller, 15, 0.019226457524872696, 0.13237394566342264, 4.716628433745903),
            p(Seller, 27, 1e-6, 9.99, 2_000.0),
        ],
    };
    clear_with(&m, &net, Algorithm::PrimalDual, Some(10_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "bus 18 V min"))
}

/// A near-linear pair across a small row difference clears: a 5 kWh
/// buyer at bus 4 bidding 10 $/kWh and a 5 kWh seller at bus 3 asking
/// 9 $/kWh (`a = 10⁻⁵`, within `E₀`: the common steps) on case30 with
/// only line 2-5 rated (50 W; the row binds at the optimum) clear by
/// primal-dual within 5 000 iterations (about 90). The row's largest
/// coefficient is 0.558, but buses 3 and 4 differ on it by 0.0171:
/// weighted by the largest coefficient instead of the trade's
/// (`trade_scale`), the row keeps the common `c` and the pair freezes to
/// the cap. (The same pair at 2 MWh runs with steps per trade, where the
/// trade's own damping weight, `TRADE_DAMPING_THETA`, also covers it.)
fn a_near_linear_pair_across_a_small_row_difference_clears() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let mut case = Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut case.branches {
        b.rate_a = if (b.from, b.to) == (2, 5) { 0.00005 } else { 0.0 };
    }
    let net = network_for(&case, 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let m =
        Market { buyers: vec![p(Side::Buyer, 4, 1e-5, 10.0, 5.0)], sellers: vec![p(Side::Seller, 3, 1e-5, 9.0, 5.0)] };
    clear_with(&m, &net, Algorithm::PrimalDual, Some(5_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "line 2-5 forward"))
}

/// A near-linear pair across a small row difference beside small parties
/// clears (attack round 14 [4]): the pair of the scenario above plus a
/// small buyer at bus 29 and a small seller at bus 5, whose trades see
/// line 2-5 at PTDF scale, so the row's weight is theirs. Primal-dual
/// clears within 0.1 % of the reference inside 10 000 iterations (about
/// 3 600) with the pair's buyer weighting the overload damping by its own
/// coefficients (`TRADE_DAMPING_THETA`); with every trade at the row's
/// weight the pair cycles to the cap.
fn a_near_linear_pair_beside_small_parties_clears() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let mut case = Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut case.branches {
        b.rate_a = if (b.from, b.to) == (2, 5) { 0.01 } else { 0.0 };
    }
    let net = network_for(&case, 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let m = Market {
        buyers: vec![p(Side::Buyer, 4, 1e-5, 10.0, 2000.0), p(Side::Buyer, 29, 0.02, 0.3, 3.0)],
        sellers: vec![p(Side::Seller, 3, 1e-5, 9.0, 2000.0), p(Side::Seller, 5, 0.015, 0.1, 3.0)],
    };
    clear_with(&m, &net, Algorithm::PrimalDual, Some(10_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "line 2-5 forward"))
}

/// A crowd of near-linear pairs sharing one overloaded row clears (attack
/// round 16 [1]): case30 with only line 2-5 rated, six near-linear buyers
/// at bus 4 and six sellers at bus 3 (36 trades that see 0.017 on the
/// row) beside two small parties. The trades share the row's damping
/// budget (`TRADE_DAMPING_ROW`) and clear in about 12 000 iterations; each
/// aiming at `T θ` on its own, their damping adds up and the run cycles to
/// the cap.
fn a_crowd_of_near_linear_pairs_on_one_row_clears() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let mut case = Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut case.branches {
        b.rate_a = if (b.from, b.to) == (2, 5) { 0.01 } else { 0.0 };
    }
    let net = network_for(&case, 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let mut m =
        Market { buyers: vec![p(Side::Buyer, 29, 0.02, 0.3, 3.0)], sellers: vec![p(Side::Seller, 5, 0.015, 0.1, 3.0)] };
    for i in 0..6 {
        m.buyers.push(p(Side::Buyer, 4, 1e-5, 10.0 - 0.05 * i as f64, 2000.0));
        m.sellers.push(p(Side::Seller, 3, 1e-5, 9.0 + 0.05 * i as f64, 2000.0));
    }
    clear_with(&m, &net, Algorithm::PrimalDual, Some(40_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "line 2-5 forward"))
}

/// case30 with line 2-5 rated 10 kW and every other line as shipped
/// (`slack`) or unrated.
fn case30_tight_2_5(slack: bool) -> Case {
    let mut case = Case::parse(gridledger_market::CASE30).unwrap();
    for b in &mut case.branches {
        if (b.from, b.to) == (2, 5) {
            b.rate_a = 0.01;
        } else if !slack {
            b.rate_a = 0.0;
        }
    }
    case
}

/// One near-linear pair beside an ordinary crowd clears (attack round 17
/// [1]): seed 2's seeded 12 × 12 market plus a near-linear pair from bus 3
/// to bus 4 (0.017 apart on line 2-5, the only rated line). The row's
/// damping budget goes to the trades whose whole curvature is smallest
/// (`TRADE_DAMPING_ROW`): the ordinary trades' own quadratic terms already
/// damp them, and the pair clears in about 7 000 iterations; drawing on
/// the budget by their line curvature alone, the 144 ordinary trades leave
/// the pair too little of it.
fn a_near_linear_pair_beside_an_ordinary_crowd_clears() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let net = network_for(&case30_tight_2_5(false), 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let mut m = Market::generate(2, 12, 12, &net.bus_ids);
    m.buyers.push(p(Side::Buyer, 4, 1e-5, 10.0, 2000.0));
    m.sellers.push(p(Side::Seller, 3, 1e-5, 9.0, 2000.0));
    clear_with(&m, &net, Algorithm::PrimalDual, Some(20_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "line 2-5 forward"))
}

/// A near-linear pair clears with case30's other lines rated as shipped
/// (attack round 17 [2]): those rows are far above any flow the parties'
/// bounds allow, so they never enter the overload damping and the pair's
/// weight is set by line 2-5 alone (about 3 600 iterations); counted, they
/// put the pair's line curvature at `T θ` and leave it no damping on the
/// row that binds.
fn a_near_linear_pair_clears_with_slack_lines_rated() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let net = network_for(&case30_tight_2_5(true), 1.0).unwrap();
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let m = Market {
        buyers: vec![p(Side::Buyer, 29, 0.02, 0.3, 3.0), p(Side::Buyer, 4, 1e-5, 10.0, 2000.0)],
        sellers: vec![p(Side::Seller, 5, 0.015, 0.1, 3.0), p(Side::Seller, 3, 1e-5, 9.0, 2000.0)],
    };
    clear_with(&m, &net, Algorithm::PrimalDual, Some(20_000))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3 && c.binding.iter().any(|b| b == "line 2-5 forward"))
}

/// A feeder whose rows are far below any physical scale clears alike
/// (attack round 15 [1]): case33bw with impedances scaled by 10⁻¹², no
/// loads and no voltage headroom (V-max rows of about 10⁻¹⁶ per kW, `h =
/// 0`, below `ROW_SCALE_NEGLIGIBLE`). Primal-dual and the central
/// reference both treat the rows as no constraint (`negligible_row`) and
/// agree within 0.1 %; kept by the reference alone (which enforces rows
/// of this scale), the two disagree and `clear` refuses the run.
fn a_feeder_with_vanishing_rows_clears_alike() -> bool {
    use gridledger_market::clearing::{clear_with, network_for, Algorithm};
    let mut case = Case::parse(gridledger_market::CASE33BW).unwrap();
    for b in &mut case.branches {
        b.r *= 1e-12;
        b.x *= 1e-12;
    }
    for b in &mut case.buses {
        b.pd = 0.0;
        b.qd = 0.0;
        b.vmax = 1.0;
    }
    let mut net = network_for(&case, 1.0).unwrap();
    // the scenario is about the rows' numerics: impedances of 10⁻¹² of
    // case33bw's are below what the AC flow resolves (its rounding floor),
    // so the feeder's AC check is taken off
    net.feeder = None;
    let p = |side, bus, a, b, e_max| Prosumer { side, bus, a, b, e_min: 0.0, e_max };
    let m = Market {
        buyers: vec![
            p(Side::Buyer, 17, 0.029, 0.35, 3.5),
            p(Side::Buyer, 6, 0.022, 0.28, 3.3),
            p(Side::Buyer, 9, 1e-3, 10.0, 500.0),
        ],
        sellers: vec![p(Side::Seller, 17, 0.0137, 0.105, 3.4), p(Side::Seller, 18, 1e-3, 1.0, 500.0)],
    };
    clear_with(&m, &net, Algorithm::PrimalDual, Some(MAX_ITER))
        .is_ok_and(|c| c.converged && c.relative_gap.abs() <= 1e-3)
}

/// A three-bus feeder on a base of `base` MVA with a load at bus 3 of
/// `pd` + j`qd` MW/MVAr; `extra` rows are added to the branch table.
fn pf_feeder(base: &str, pd: &str, qd: &str, extra: &str) -> Case {
    let text = format!(
        "function mpc = tiny\nmpc.version = '2';\nmpc.baseMVA = {base};\nmpc.bus = [\n \
         1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
         3 1 {pd} {qd} 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\n\
         mpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n{extra} 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n"
    );
    Case::parse(&text).unwrap()
}

/// The AC power flow's tolerance holds in MW on a huge base: a 5 MW load
/// on a 10⁹ MVA base is solved with generation = load + losses within
/// 0.001 MW (attack round 21 [2]).
fn a_power_flow_on_a_huge_base_balances_in_mw() -> bool {
    use gridledger_market::{run_pf, PfOptions};
    run_pf(&pf_feeder("1e9", "5", "3", ""), PfOptions::default())
        .is_ok_and(|r| (r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() <= 1e-3 && r.total_gen_mw > 4.9)
}

/// The AC power flow's rounding-floor cap holds in p.u. on a tiny base: a
/// resonant branch pair (x = ±2·10⁻¹⁷) on a 10⁻⁶ MVA base is refused
/// (attack round 21 [1]), while the plain feeder solves.
fn a_cancelling_pair_on_a_tiny_base_is_refused() -> bool {
    use gridledger_market::{run_pf, ModelError, PfOptions};
    let pair = " 1 2 0 2e-17 0 0 0 0 0 0 1;\n 1 2 0 -2e-17 0 0 0 0 0 0 1;\n";
    run_pf(&pf_feeder("1e-6", "5e-7", "3e-7", ""), PfOptions::default()).is_ok()
        && matches!(
            run_pf(&pf_feeder("1e-6", "5e-7", "3e-7", pair), PfOptions::default()),
            Err(ModelError::MismatchFloor { .. })
        )
}

/// MATPOWER's IEEE 14-bus case as shipped with MATPOWER 8.1 (its case
/// files are not under MATPOWER's BSD licence).
const CASE14: &str = include_str!("data/case14.m");

/// A `%` inside a MATLAB string (double-quoted, or single-quoted after a
/// transpose) is text, not a comment (attack round 25 [1]): case14 with
/// such cell arrays and a scalar string appended reads as case14.
fn a_percent_in_a_matlab_string_is_no_comment() -> bool {
    let Ok(plain) = Case::parse(CASE14) else { return false };
    let text = format!("{CASE14}\nmpc.bus_name = {{\"50%\"}};\nmpc.gentype = {{5', '%'}};\nmpc.note = \"100%\";\n");
    Case::parse(&text).is_ok_and(|c| c == plain)
}

/// A statement inside a cell array is refused, not skipped (attack round
/// 25 [1]): case14 with the loads doubled on a line between a cell
/// array's braces.
fn code_inside_a_cell_array_is_refused() -> bool {
    use gridledger_market::case::CaseError;
    let text = format!("{CASE14}\nmpc.gentype = {{\n 'a';\nmpc.bus(:, 3) = 2 * mpc.bus(:, 3);\n}};\n");
    matches!(Case::parse(&text), Err(CaseError::UnsupportedCode { line, .. }) if line == CASE14.lines().count() + 4)
}

/// Matrix numbers follow MATLAB's grammar (attack round 25 [3]): case14
/// with generator 2's Qmax written `infinity` is refused, written `Inf`,
/// `.5e2` or `50.` it is read.
fn numbers_follow_matlab_grammar() -> bool {
    let q = |tok: &str| {
        let row = "\t2\t40\t42.4\t50\t-40\t1.045";
        Case::parse(&CASE14.replace(row, &format!("\t2\t40\t42.4\t{tok}\t-40\t1.045")))
            .map(|c| c.gens.iter().find(|g| g.bus == 2).map_or(f64::NAN, |g| g.qmax))
    };
    q("infinity").is_err() && q("Inf") == Ok(f64::INFINITY) && q(".5e2") == Ok(50.0) && q("50.") == Ok(50.0)
}

const SCENARIOS: [Scenario; 34] = [
    ("a % in a MATLAB string is no comment", a_percent_in_a_matlab_string_is_no_comment),
    ("code inside a cell array is refused", code_inside_a_cell_array_is_refused),
    ("numbers follow MATLAB's grammar", numbers_follow_matlab_grammar),
    ("D-TASK eliminates a wrong script", dtask_eliminates_a_wrong_script),
    ("TEAR-DO clears exactly under faults", teardo_clears_exactly_under_faults),
    ("primal-dual reaches the uncongested optimum", primal_dual_reaches_the_uncongested_optimum),
    ("primal-dual respects line limits", primal_dual_respects_line_limits),
    ("a feeder with capacitors clears within V max", a_feeder_with_capacitors_clears_within_v_max),
    ("a huge minimum behind a line leaves honest minima", a_huge_minimum_behind_a_line_leaves_honest_minima),
    ("sybil minima behind a line leave honest minima", sybil_minima_behind_a_line_leave_honest_minima),
    ("a minimum infeasible alone is capped before levelling", a_minimum_infeasible_alone_is_capped_before_levelling),
    ("a congested pair leaves an unrelated minimum", a_congested_pair_leaves_an_unrelated_minimum),
    (
        "sybil minima on the over-demanding side are levelled per bus",
        sybil_minima_on_the_over_demanding_side_are_levelled_per_bus,
    ),
    ("no buyer pays above its bid across a congested line", no_buyer_pays_above_its_bid_across_a_congested_line),
    ("a front-run copy does not lock the owner out", a_front_run_copy_does_not_lock_the_owner_out),
    (
        "primal-dual leaves the congested mode of an uncongested interval",
        primal_dual_leaves_the_congested_mode_of_an_uncongested_interval,
    ),
    ("flat pairs at one bus behind binding lines clear", flat_pairs_at_one_bus_behind_binding_lines_clear),
    ("a row with a little slack lets go of its price", a_row_with_a_little_slack_lets_go_of_its_price),
    ("primal-dual stops only where clear accepts", primal_dual_stops_only_where_clear_accepts),
    ("large parties on the feeder clear", large_parties_on_the_feeder_clear),
    ("a near-linear pair on the feeder clears", a_near_linear_pair_on_the_feeder_clears),
    (
        "a near-linear pair across a small row difference clears",
        a_near_linear_pair_across_a_small_row_difference_clears,
    ),
    ("a near-linear pair beside small parties clears", a_near_linear_pair_beside_small_parties_clears),
    ("a feeder with vanishing rows clears alike", a_feeder_with_vanishing_rows_clears_alike),
    ("a crowd of near-linear pairs on one row clears", a_crowd_of_near_linear_pairs_on_one_row_clears),
    ("a near-linear pair beside an ordinary crowd clears", a_near_linear_pair_beside_an_ordinary_crowd_clears),
    ("a near-linear pair clears with slack lines rated", a_near_linear_pair_clears_with_slack_lines_rated),
    ("a sign-flipped zero is caught", a_sign_flipped_zero_is_caught),
    ("a repeated output is one voice", a_repeated_output_is_one_voice),
    ("an earlier round's replay flags nobody", an_earlier_rounds_replay_flags_nobody),
    ("a market on tiny line limits clears", a_market_on_tiny_line_limits_clears),
    ("a power flow on a huge base balances in MW", a_power_flow_on_a_huge_base_balances_in_mw),
    ("a cancelling pair on a tiny base is refused", a_cancelling_pair_on_a_tiny_base_is_refused),
    ("a rated substation line keeps its AC rating", a_rated_substation_line_keeps_its_ac_rating),
];

gridledger_core::mutation_check! {
    plant: plant,
    scenarios: SCENARIOS,
    naive_quote_pairing_is_caught: Mutation::QuotesPairedNaively => "a % in a MATLAB string is no comment",
    cell_skipped_to_any_brace_is_caught: Mutation::CellSkippedToAnyBrace => "code inside a cell array is refused",
    rust_number_grammar_is_caught: Mutation::RustNumberGrammar => "numbers follow MATLAB's grammar",
    skipped_dtask_detection_is_caught: Mutation::DTaskUnchecked => "D-TASK eliminates a wrong script",
    skipped_recompute_is_caught: Mutation::RecomputeSkipped => "TEAR-DO clears exactly under faults",
    wrong_price_update_is_caught: Mutation::WrongPriceUpdate => "primal-dual reaches the uncongested optimum",
    ignored_line_limits_are_caught: Mutation::LineLimitsIgnored => "primal-dual respects line limits",
    dropped_distflow_shunts_are_caught: Mutation::DistFlowShuntsDropped => "a feeder with capacitors clears within V max",
    skipped_minima_relief_alone_is_caught: Mutation::MinimaNotRelievedAlone => "a minimum infeasible alone is capped before levelling",
    per_request_minima_relief_is_caught: Mutation::MinimaRelievedPerRequest => "sybil minima on the over-demanding side are levelled per bus",
    minima_levelled_everywhere_is_caught: Mutation::MinimaLevelledEverywhere => "a congested pair leaves an unrelated minimum",
    seller_priced_trades_are_caught: Mutation::SellerPricedTrades => "no buyer pays above its bid across a congested line",
    chain_wide_ciphertext_dedup_is_caught: Mutation::CiphertextDedupChainWide => "a front-run copy does not lock the owner out",
    congested_mode_never_left_is_caught: Mutation::CongestedModeNeverLeft => "primal-dual leaves the congested mode of an uncongested interval",
    cap_on_unloaded_trades_is_caught: Mutation::CapOnUnloadedTrades => "flat pairs at one bus behind binding lines clear",
    small_party_penalty_shrunk_is_caught: Mutation::SmallPartyPenaltyShrunk => "flat pairs at one bus behind binding lines clear",
    overload_not_boosted_is_caught: Mutation::OverloadNotBoosted => "flat pairs at one bus behind binding lines clear",
    slack_not_unwound_is_caught: Mutation::SlackNotUnwound => "a row with a little slack lets go of its price",
    scaled_gap_large_parties_only_is_caught: Mutation::ScaledGapLargePartiesOnly => "primal-dual stops only where clear accepts",
    overload_not_doubled_is_caught: Mutation::OverloadNotDoubled => "large parties on the feeder clear",
    rows_not_normalized_is_caught: Mutation::RowsNotNormalized => "a near-linear pair on the feeder clears",
    row_scale_from_coefficients_is_caught: Mutation::RowScaleFromCoefficients => "a near-linear pair across a small row difference clears",
    trade_damping_off_is_caught: Mutation::TradeDampingOff => "a near-linear pair beside small parties clears",
    negligible_rows_kept_by_reference_is_caught: Mutation::NegligibleRowsKeptByReference => "a feeder with vanishing rows clears alike",
    trade_damping_unshared_is_caught: Mutation::TradeDampingUnshared => "a crowd of near-linear pairs on one row clears",
    trade_damping_own_curvature_ignored_is_caught: Mutation::TradeDampingOwnCurvatureIgnored => "a near-linear pair beside an ordinary crowd clears",
    trade_damping_slack_rows_counted_is_caught: Mutation::TradeDampingSlackRowsCounted => "a near-linear pair clears with slack lines rated",
    outputs_compared_as_floats_is_caught: Mutation::OutputsComparedAsFloats => "a sign-flipped zero is caught",
    duplicate_outputs_counted_is_caught: Mutation::DuplicateOutputsCounted => "a repeated output is one voice",
    other_round_flagged_is_caught: Mutation::OtherRoundFlagged => "an earlier round's replay flags nobody",
    tiny_row_steps_ignored_is_caught: Mutation::TinyRowStepsIgnored => "a market on tiny line limits clears",
    pf_tolerance_pu_only_is_caught: Mutation::PfTolerancePuOnly => "a power flow on a huge base balances in MW",
    pf_floor_cap_mw_only_is_caught: Mutation::PfFloorCapMwOnly => "a cancelling pair on a tiny base is refused",
    dropped_loss_allowance_is_caught: Mutation::FeederLossAllowanceDropped => "a rated substation line keeps its AC rating",
    skipped_feeder_ac_check_is_caught: Mutation::FeederAcCheckSkipped => "a rated substation line keeps its AC rating",
}
