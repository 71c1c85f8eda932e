//! A feeder's clearing under the AC power flow (attack round 24 [4]):
//! LinDistFlow is lossless, so the market's rows carry the loss allowance
//! of the AC flow (`feeder_ac`), and a clearing reported optimal keeps
//! every rated line within `AC_RATING_MARGIN` of its rating and every bus
//! within `AC_VOLTAGE_MARGIN_PU` of its voltage bounds under `run_pf`.
//! Checked on MATPOWER's case33bw, case18, case141 and case16am, importing
//! to the far end (V min), exporting from it (V max) and through a rated
//! substation line; the distributed algorithms on the corrected rows; and
//! a dispatch the AC flow cannot carry refused with a typed error.
//!
//! `tests/data/case18.m`, `case141.m` and `case16am.m` are MATPOWER's case
//! files as shipped with MATPOWER 8.1; MATPOWER's case files are not under
//! its BSD licence.

mod common;

use gridledger_market::acpf::branch_flows;
use gridledger_market::clearing::{clear, network_for, Algorithm, Clearing, ClearingError};
use gridledger_market::feeder_ac::{AC_RATING_MARGIN, AC_VOLTAGE_MARGIN_PU, MAX_AC_ROUNDS};
use gridledger_market::problem::{Market, Side};
use gridledger_market::{run_pf, Case, PfOptions, PfResult};

fn feeders() -> Vec<(&'static str, Case)> {
    vec![
        ("case33bw", Case::parse(gridledger_market::CASE33BW).unwrap()),
        ("case18", Case::parse(include_str!("data/case18.m")).unwrap()),
        ("case141", Case::parse(include_str!("data/case141.m")).unwrap()),
        ("case16am", Case::parse(include_str!("data/case16am.m")).unwrap()),
    ]
}

/// The case's loads with the cleared dispatch on top.
fn dispatched(case: &Case, market: &Market, c: &Clearing) -> Case {
    let mut after = case.clone();
    for t in &c.trades {
        let (b, s) = (market.buyers[t.buyer].bus, market.sellers[t.seller].bus);
        for (id, d) in [(b, t.kwh), (s, -t.kwh)] {
            after.buses.iter_mut().find(|x| x.id == id).unwrap().pd += d / 1000.0;
        }
    }
    after
}

/// The AC flow of `after` against `case`'s limits, each widened to what
/// the case's own loads already put beyond it (`base`): `Err` names the
/// worst excess beyond the stated margins.
fn within_limits(case: &Case, base: &PfResult, after: &Case) -> Result<PfResult, String> {
    let r = run_pf(after, PfOptions::default()).map_err(|e| format!("AC flow: {e}"))?;
    let vm = |pf: &PfResult, id: u32| pf.buses.iter().find(|b| b.id == id).unwrap().vm;
    let ref_bus = case.buses[case.ref_index()].id;
    for b in case.buses.iter().filter(|b| b.id != ref_bus) {
        let (v, v0) = (vm(&r, b.id), vm(base, b.id));
        if v > b.vmax.max(v0) + AC_VOLTAGE_MARGIN_PU || v < b.vmin.min(v0) - AC_VOLTAGE_MARGIN_PU {
            return Err(format!("bus {}: |V| {v:.5} p.u., bounds {}-{} (base {v0:.5})", b.id, b.vmin, b.vmax));
        }
    }
    let (fb, fa) = (branch_flows(case, base), branch_flows(after, &r));
    for (k, br) in case.branches.iter().enumerate().filter(|(_, b)| b.rate_a > 0.0 && b.in_service) {
        let (s0, s) = (fb[k].unwrap().max_mva(), fa[k].unwrap().max_mva());
        if s > br.rate_a.max(s0) * (1.0 + AC_RATING_MARGIN) {
            return Err(format!("line {}-{}: {s:.5} MVA, rated {} (base {s0:.5})", br.from, br.to, br.rate_a));
        }
    }
    Ok(r)
}

/// A buyer and a seller of 20 MWh each at the given buses.
fn pair(buyer: u32, seller: u32) -> Market {
    Market {
        buyers: vec![common::p(Side::Buyer, buyer, 1e-6, 0.5, 0.0, 20_000.0)],
        sellers: vec![common::p(Side::Seller, seller, 1e-6, 0.01, 0.0, 20_000.0)],
    }
}

/// The lowest-voltage bus of the base flow (the feeder's far end) and the
/// reference bus.
fn ends(case: &Case, base: &PfResult) -> (u32, u32) {
    (base.min_vm_bus, case.buses[case.ref_index()].id)
}

#[test]
fn a_far_end_import_keeps_the_ac_voltages() {
    for (name, case) in feeders() {
        let base = run_pf(&case, PfOptions::default()).unwrap();
        let (far, root) = ends(&case, &base);
        let market = pair(far, root);
        let c = clear(&market, &network_for(&case, 1.0).unwrap(), Algorithm::Central)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(c.energy_kwh > 1.0, "{name}: nothing traded");
        let r = within_limits(&case, &base, &dispatched(&case, &market, &c)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ac = c.ac.as_ref().expect("a feeder's clearing reports its AC check");
        assert!((ac.min_vm - r.min_vm).abs() < 1e-6, "{name}: {ac:?} vs {}", r.min_vm);
    }
}

#[test]
fn a_far_end_export_keeps_the_ac_voltages() {
    for (name, mut case) in feeders() {
        // V max tight enough for the export to meet it
        let base = run_pf(&case, PfOptions::default()).unwrap();
        let (far, root) = ends(&case, &base);
        for b in &mut case.buses {
            let v0 = base.buses.iter().find(|x| x.id == b.id).unwrap().vm;
            b.vmax = b.vmax.min(1.02f64.max(v0 + 0.03));
        }
        let market = pair(root, far);
        let c = clear(&market, &network_for(&case, 1.0).unwrap(), Algorithm::Central)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(c.energy_kwh > 1.0, "{name}: nothing traded");
        within_limits(&case, &base, &dispatched(&case, &market, &c)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Each feeder's line out of the substation rated 10 % above its lossless
/// base flow, a buyer below it: the rating row binds.
#[test]
fn a_rated_substation_line_keeps_its_ac_rating() {
    for (name, mut case) in feeders() {
        let base = run_pf(&case, PfOptions::default()).unwrap();
        let (far, root) = ends(&case, &base);
        let k = case.branches.iter().position(|b| b.in_service && (b.from == root || b.to == root)).unwrap();
        let lossless = case.buses.iter().map(|b| b.pd).sum::<f64>().hypot(case.buses.iter().map(|b| b.qd).sum());
        case.branches[k].rate_a = 1.1 * lossless;
        let market = pair(far, root);
        let c = match clear(&market, &network_for(&case, 1.0).unwrap(), Algorithm::Central) {
            Ok(c) => c,
            Err(e) => panic!("{name}: {e}"),
        };
        assert!(c.energy_kwh > 1.0, "{name}: nothing traded");
        within_limits(&case, &base, &dispatched(&case, &market, &c)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Primal-dual and ALADIN clear on the corrected rows, reach the reference
/// there (`clear` refuses them otherwise) and their own dispatch keeps the
/// AC rating.
#[test]
fn the_distributed_algorithms_keep_the_ac_rating() {
    let mut case = Case::parse(gridledger_market::CASE33BW).unwrap();
    case.branches.iter_mut().find(|b| b.from == 1 && b.to == 2).unwrap().rate_a = 4.8;
    let base = run_pf(&case, PfOptions::default()).unwrap();
    let net = network_for(&case, 1.0).unwrap();
    let p = common::p;
    let market = Market {
        buyers: vec![p(Side::Buyer, 3, 0.0002, 0.5, 0.0, 1000.0), p(Side::Buyer, 19, 0.0001, 0.4, 0.0, 1000.0)],
        sellers: vec![p(Side::Seller, 1, 0.0001, 0.05, 0.0, 1000.0), p(Side::Seller, 22, 0.0002, 0.08, 0.0, 1000.0)],
    };
    let reference = clear(&market, &net, Algorithm::Central).unwrap();
    assert!(
        reference.binding.iter().any(|r| r.starts_with("line into bus 2")),
        "{:?} {:?}",
        reference.binding,
        reference.ac
    );
    for alg in [Algorithm::PrimalDual, Algorithm::Aladin] {
        let c = clear(&market, &net, alg).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!((c.welfare - reference.welfare).abs() <= 1e-3 * reference.welfare.abs(), "{alg:?}");
        within_limits(&case, &base, &dispatched(&case, &market, &c)).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert!(c.ac.is_some(), "{alg:?}: no AC check reported");
    }
}

/// With V min taken off (0.05 p.u.) LinDistFlow sells far more to the end
/// of case33bw than the AC flow can carry (its Newton iteration fails at
/// every dispatch the rounds reach): the clearing is refused with the
/// typed error after the bounded rounds, not reported.
#[test]
fn a_dispatch_the_ac_flow_cannot_carry_is_refused() {
    let mut case = Case::parse(gridledger_market::CASE33BW).unwrap();
    for b in &mut case.buses {
        b.vmin = 0.05;
    }
    let market = pair(18, 1);
    match clear(&market, &network_for(&case, 1.0).unwrap(), Algorithm::Central) {
        Err(ClearingError::AcLimits { rounds, .. }) => assert_eq!(rounds, MAX_AC_ROUNDS),
        Err(e) => panic!("another error: {e}"),
        Ok(c) => panic!("reported: {:.1} kWh, {:?}", c.energy_kwh, c.ac),
    }
}
