//! Attack round 21 on the market crate (issue 15), after the AC power
//! flow's rounding-floor cap became 0.001 MW on the case's base
//! (`acpf::max_mismatch_floor_pu` = `MAX_MISMATCH_FLOOR_MW / baseMVA`).
//!
//! Findings [1] and [2] (fixed since: the power flow's tolerance and its
//! floor cap hold in MW and in p.u. whatever the base) were `#[ignore]`d
//! until then. The others are attacks that held up.

use std::collections::BTreeMap;

use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::teardo::{Detection, Fault, Strategy, TearDo, TearDoConfig};
use gridledger_market::{run_pf, Case, DcModel, PfOptions, CASE30};

/// A three-bus feeder on a base of `base` MVA with a load at bus 3 of
/// `pd` + j`qd` MW/MVAr; `extra` rows are added to the branch table.
fn feeder(base: &str, pd: &str, qd: &str, extra: &str) -> Case {
    let text = format!(
        "function mpc = tiny\nmpc.version = '2';\nmpc.baseMVA = {base};\nmpc.bus = [\n \
         1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 1 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
         3 1 {pd} {qd} 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\n\
         mpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n{extra} 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n"
    );
    Case::parse(&text).unwrap()
}

/// Finding [1]: the floor cap is 0.001 MW / baseMVA, so on the smallest
/// base the parser accepts (10⁻⁶ MVA) it is 10³ p.u. (On 10⁻⁵ MVA the
/// pair x = ±3·10⁻¹⁶ is accepted with |Vm| off by 3.6·10⁻⁴; from 10⁻³ MVA
/// up every accepted pair leaves |Vm| within 10⁻⁵.) A resonant pair of
/// branches (x = ±2·10⁻¹⁷, whose cancellation leaves a floor of hundreds
/// of p.u., refused on a 10 MVA base) is then accepted: the flow is
/// reported converged with bus voltages that the rounding of the pair
/// decided, not the network's. Every MW figure of the case is below
/// 0.001 MW, so the cap's promise ("no printed MW figure moves") holds
/// vacuously while the printed voltages (p.u., independent of the base)
/// are wrong. Expected: refused (`MismatchFloor`), or the voltages of the
/// same feeder without the pair (the pair's net admittance is zero).
/// Fixed: the floor cap is also at most 10⁻⁴ p.u.
/// (`acpf::MAX_MISMATCH_FLOOR_PU`), so the pair is refused on any base.
#[test]
fn tiny_base_does_not_excuse_a_cancelling_pair() {
    // 0.5 + j0.3 p.u. at bus 3 on a 10^-6 MVA base
    let plain = run_pf(&feeder("1e-6", "5e-7", "3e-7", ""), PfOptions::default()).unwrap();
    assert!(plain.min_vm < 0.99, "{plain:?}");
    let pair = " 1 2 0 2e-17 0 0 0 0 0 0 1;\n 1 2 0 -2e-17 0 0 0 0 0 0 1;\n";
    match run_pf(&feeder("1e-6", "5e-7", "3e-7", pair), PfOptions::default()) {
        Err(_) => {}
        Ok(r) => {
            let worst = r
                .buses
                .iter()
                .zip(&plain.buses)
                .map(|(a, b)| (a.vm - b.vm).abs().max((a.va_deg - b.va_deg).abs() / 100.0))
                .fold(0.0f64, f64::max);
            assert!(
                worst < 1e-3,
                "reported converged (tol {:e} p.u.) with voltages off by {worst:e}: {:?} vs {:?}",
                r.mismatch_tol_pu,
                r.buses,
                plain.buses
            );
        }
    }
}

/// Held up: the same pair on the feeder's 10 MVA base is refused.
#[test]
fn cancelling_pair_on_ordinary_base_is_refused() {
    let pair = " 1 2 0 2e-17 0 0 0 0 0 0 1;\n 1 2 0 -2e-17 0 0 0 0 0 0 1;\n";
    assert!(run_pf(&feeder("10", "5", "3", pair), PfOptions::default()).is_err());
}

fn market() -> (Market, MarketNetwork) {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    (Market::generate(21, 4, 4, &dc.bus_ids), MarketNetwork::ptdf(&dc, 1.0).unwrap())
}

/// Held up: hosts that always send the previous round's (validly signed)
/// message — dropped unflagged since other-round messages accuse nobody —
/// are still each flagged silent past Δ in the first round they have work,
/// removed, and their subproblems taken over, so the clearing is the
/// attack-free one and the wait for Δ is paid in the first iteration only
/// (no stall), under both strategies and κ = 1, 2, 3; nobody honest is
/// flagged.
#[test]
fn stale_round_hosts_are_flagged_silent_and_cannot_stall_the_clearing() {
    let (market, net) = market();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.run(&market).unwrap();
    let want = pd.settled();
    let byz: BTreeMap<usize, Fault> = [(1, Fault::StaleRound), (4, Fault::StaleRound), (8, Fault::StaleRound)].into();
    for strategy in [Strategy::Always, Strategy::Optimal] {
        for kappa in [1, 2, 3] {
            let cfg = TearDoConfig { enclaves: 10, kappa, byzantine: byz.clone(), strategy, seed: 5 };
            let mut t = TearDo::new_insecure_seeded(&market, &net, cfg, [1; 32]).unwrap();
            let r = t.run(&market);
            assert!(r.converged, "κ = {kappa}, {strategy:?}");
            assert_eq!(t.pd.settled(), want, "κ = {kappa}, {strategy:?}");
            for (n, d, round) in &r.detected {
                assert!(byz.contains_key(n), "κ = {kappa}, {strategy:?}: honest {n} flagged");
                assert_eq!(*d, Detection::SilentPastDelta, "κ = {kappa}, {strategy:?}");
                assert!(*round <= 2, "κ = {kappa}, {strategy:?}: flagged late, round {round}");
            }
            if strategy == Strategy::Always {
                let working: Vec<usize> =
                    byz.keys().copied().filter(|n| (0..9).any(|sp| t.assigned(sp).contains(n))).collect();
                let flagged: Vec<usize> = r.detected.iter().map(|(n, _, _)| *n).collect();
                assert_eq!(flagged, working, "κ = {kappa}: every stale host with work is flagged");
            }
            assert!(r.delayed_rounds <= 2, "κ = {kappa}, {strategy:?}: {} delayed rounds", r.delayed_rounds);
        }
    }
}

/// Held up: extreme but positive generator set-points (accepted at parse
/// since only Vg <= 0 is refused) give a typed error or a flow whose
/// figures are finite, never a panic or a NaN reported as converged.
#[test]
fn extreme_positive_vg_is_refused_or_finite() {
    for vg in ["1e-300", "1e-20", "1e20", "1e200", "1.7e308"] {
        let text = format!(
            "function mpc = vg\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n \
             1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 2 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
             3 1 1 0.6 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n \
             2 0.5 0 10 -10 {vg} 100 1 10 0;\n];\n\
             mpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n"
        );
        let Ok(case) = Case::parse(&text) else { continue };
        if let Ok(r) = run_pf(&case, PfOptions::default()) {
            assert!(
                r.buses.iter().all(|b| b.vm.is_finite() && b.va_deg.is_finite())
                    && r.loss_mw.is_finite()
                    && r.min_vm.is_finite(),
                "Vg {vg}: {r:?}"
            );
        }
    }
}

/// Finding [2]: the physical tolerance is 10⁻⁸ p.u. on every base, so on
/// the largest base the parser accepts (10⁹ MVA) it is 10 MW — ten
/// thousand times the 0.001 MW the floor cap was sized to. A feeder whose
/// only load is 5 MW (5·10⁻⁹ p.u.) is "converged" at the flat start in
/// zero iterations: it reports 0 MW of generation against 5 MW of load (the
/// balance off by the whole load) and no losses. Expected: a flow whose
/// printed MW figures balance within 0.001 MW (generation = load +
/// losses), i.e. a tolerance no larger than 0.001 MW / baseMVA, or a
/// refusal. Fixed: the tolerance holds in MW too
/// (`PfOptions::tol_pu` = min(10⁻⁸ p.u., 10⁻⁶ MW / baseMVA)).
#[test]
fn huge_base_tolerance_does_not_leave_the_balance_open() {
    let r = run_pf(&feeder("1e9", "5", "3", ""), PfOptions::default()).unwrap();
    assert!(
        (r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() <= 1e-3,
        "generation {} MW, load {} MW, losses {} MW after {} iterations (tol {:e} p.u. = {} MW)",
        r.total_gen_mw,
        r.total_load_mw,
        r.loss_mw,
        r.iterations,
        r.mismatch_tol_pu,
        r.mismatch_tol_pu * 1e9
    );
}

/// Held up: the same feeder on an ordinary base balances.
#[test]
fn ordinary_base_balances() {
    let r = run_pf(&feeder("10", "5", "3", ""), PfOptions::default()).unwrap();
    assert!((r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() <= 1e-3, "{r:?}");
}
