//! Attack round 21 on the market crate (issue 15), after the AC power
//! flow's rounding-floor cap became 0.001 MW on the case's base
//! (`acpf::max_mismatch_floor_pu` = `MAX_MISMATCH_FLOOR_MW / baseMVA`).
//!
//! The `#[ignore]`d tests are findings (they fail on the code as it
//! stands): `cargo test -p gridledger-market --test attack_market_r21 -- --ignored`.
//! The others are attacks that held up.

use gridledger_market::{run_pf, Case, PfOptions};

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
/// base the parser accepts (10⁻⁶ MVA) it is 10³ p.u. A resonant pair of
/// branches (x = ±2·10⁻¹⁷, whose cancellation leaves a floor of hundreds
/// of p.u., refused on a 10 MVA base) is then accepted: the flow is
/// reported converged with bus voltages that the rounding of the pair
/// decided, not the network's. Every MW figure of the case is below
/// 0.001 MW, so the cap's promise ("no printed MW figure moves") holds
/// vacuously while the printed voltages (p.u., independent of the base)
/// are wrong. Expected: refused (`MismatchFloor`), or the voltages of the
/// same feeder without the pair (the pair's net admittance is zero).
#[test]
#[ignore = "attack r21: on baseMVA 1e-6 the floor cap is 1e3 p.u.; a cancelling branch pair is solved with wrong voltages"]
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
