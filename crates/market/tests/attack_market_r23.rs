//! Attack round 23 on the market crate (issue 15), after the AC power
//! flow's tolerance and rounding-floor cap were made to hold in MW and in
//! p.u. whatever the base (`PfOptions::tol_mw`, `PfResult::tol_pu` =
//! min(10⁻⁸ p.u., 10⁻⁶ MW / baseMVA); `MAX_MISMATCH_FLOOR_PU`: the floor
//! cap is min(0.001 MW / baseMVA, 10⁻⁴ p.u.)).
//!
//! Findings [1] and [3] were `#[ignore]`d until fixed: the floor cap in
//! p.u. is now 10⁻³ (what 0.001 MW is on 1 MVA, so from 1 MVA up the MW
//! cap alone applies), and `NoConvergence` names the tolerance it missed
//! in p.u. and MW. The others are attacks that held up.
//!
//! Findings:
//! - [1] medium: the 10⁻⁴ p.u. floor cap makes a real case's acceptance
//!   depend on the base it is written on. MATPOWER's `case16am` (its
//!   feeder-head jumper of 10⁻⁸ ohm) with `mpc.baseMVA = 1` instead of 10
//!   — the base 14 of MATPOWER's distribution cases use; the file's own
//!   ohm and kW conversions make it the same network — used to solve (cap
//!   0.001 MW = 10⁻³ p.u. on 1 MVA) and is now refused with
//!   `MismatchFloor` (floor 1.07·10⁻⁴ p.u. > 10⁻⁴): the floor is
//!   1.07·10⁻⁴ MW, ten times under the 0.001 MW the cap is meant to
//!   protect, and the flow solves at 10, 100 and 1 000 MVA with the same
//!   voltages. A floor in p.u. scales as 1/baseMVA for a fixed network,
//!   so a p.u. cap refuses on small bases what it accepts on large ones.
//!   (The unit test `tolerance_and_floor_cap_hold_in_mw_and_in_pu` claims
//!   "the stiff jumper of case16am on 1 MVA ... is solved", but keeps the
//!   jumper's 10 MVA p.u. impedance: a jumper ten times stiffer than
//!   case16am's on that base.)
//! - [3] low: `NoConvergence`'s message names the mismatch reached, in
//!   p.u., but not the tolerance missed, which now depends on the base.
//!   MATPOWER's case18 on 1 000 MVA with `max_iter` 3 (`grid pf
//!   --max-iter 3`): "power flow did not converge in 3 iterations
//!   (mismatch 4.97e-9 p.u.)" — below MATPOWER's 10⁻⁸, the only p.u.
//!   tolerance an operator knows of; the 10⁻⁹ it missed (10⁻⁶ MW) is said
//!   nowhere.
//!
//! Held up (checked independently: each reported flow's bus mismatches
//! recomputed in MW from its printed voltages and the case's own data):
//! case30, case33bw, MATPOWER's case14, case18 and case16am rebased to
//! 1, 10, 100 and 1 000 MVA (r, x × base ratio, b ÷ it; MW figures
//! unchanged) solve within `max_iter` 10 with the same voltages to 10⁻⁶
//! p.u. and mismatches within `mismatch_tol_pu` × baseMVA MW (1 000 MVA:
//! 10⁻⁹ p.u. is reached in the same iteration count — Newton's last step
//! is quadratic), except case16am at 1 MVA ([1]). A sweep of the 60-odd
//! MATPOWER 8.1 cases up to 1 400 buses at their own base and at 1, 10,
//! 100 and 1 000 MVA gave no other refusal and no reported flow above its
//! stated tolerance.
//!
//! `tests/data/case16am.m` is MATPOWER's case file as shipped with
//! MATPOWER 8.1 (data from Das, Kothari and Kalam, Int. J. Electr. Power
//! Energy Syst. 17:335–346, 1995; MATPOWER's case files are not under its
//! BSD licence; R. D. Zimmerman et al., "MATPOWER", IEEE Trans. Power
//! Systems 26(1):12–19, 2011).

use gridledger_market::case::BusType;
use gridledger_market::{run_pf, Case, ModelError, PfOptions, PfResult, CASE30, CASE33BW};

const CASE16AM: &str = include_str!("data/case16am.m");
const CASE14: &str = include_str!("data/case14.m");
const CASE18: &str = include_str!("data/case18.m");

/// The same network on another base: series impedances in p.u. scale with
/// the base, charging inversely; loads, shunts and set-points are in MW.
fn rebase(c: &Case, base: f64) -> Case {
    let mut c = c.clone();
    let k = base / c.base_mva;
    for br in &mut c.branches {
        br.r *= k;
        br.x *= k;
        br.b /= k;
    }
    c.base_mva = base;
    c
}

/// independent max |mismatch| in MW of a reported flow, at non-ref P and PQ Q
fn indep(c: &Case, r: &PfResult) -> (f64, f64) {
    use std::collections::HashMap;
    let idx: HashMap<u32, usize> = r.buses.iter().enumerate().map(|(k, b)| (b.id, k)).collect();
    let n = r.buses.len();
    let v: Vec<(f64, f64)> = r
        .buses
        .iter()
        .map(|b| {
            let a = b.va_deg.to_radians();
            (b.vm * a.cos(), b.vm * a.sin())
        })
        .collect();
    let mut i = vec![(0.0f64, 0.0f64); n];
    let mul = |a: (f64, f64), b: (f64, f64)| (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0);
    let inv = |a: (f64, f64)| {
        let d = a.0 * a.0 + a.1 * a.1;
        (a.0 / d, -a.1 / d)
    };
    for br in c.branches.iter().filter(|b| b.in_service) {
        let (Some(&f), Some(&t)) = (idx.get(&br.from), idx.get(&br.to)) else { continue };
        let ys = inv((br.r, br.x));
        let tap = if br.tap == 0.0 { 1.0 } else { br.tap };
        let sh = br.shift_deg.to_radians();
        let tc = (tap * sh.cos(), tap * sh.sin());
        // i_f = (ys + jb/2)/tap^2 vf - ys/conj(tc) vt ; i_t = (ys+jb/2) vt - ys/tc vf
        let ytt = (ys.0, ys.1 + br.b / 2.0);
        let yff = (ytt.0 / (tap * tap), ytt.1 / (tap * tap));
        let yft = mul((-ys.0, -ys.1), inv((tc.0, -tc.1)));
        let ytf = mul((-ys.0, -ys.1), inv(tc));
        let a = mul(yff, v[f]);
        let b = mul(yft, v[t]);
        i[f] = (i[f].0 + a.0 + b.0, i[f].1 + a.1 + b.1);
        let a = mul(ytt, v[t]);
        let b = mul(ytf, v[f]);
        i[t] = (i[t].0 + a.0 + b.0, i[t].1 + a.1 + b.1);
    }
    let mut worst_p: f64 = 0.0;
    let mut worst_q: f64 = 0.0;
    for bus in c.buses.iter().filter(|b| b.kind != BusType::Isolated) {
        let k = idx[&bus.id];
        let sh = (bus.gs / c.base_mva, bus.bs / c.base_mva);
        let ish = mul(sh, v[k]);
        let it = (i[k].0 + ish.0, i[k].1 + ish.1);
        let s = mul(v[k], (it.0, -it.1));
        let mut pg = 0.0;
        let mut qg = 0.0;
        let mut has = false;
        for g in c.gens.iter().filter(|g| g.in_service && g.bus == bus.id) {
            pg += g.pg;
            qg += g.qg;
            has = true;
        }
        let p = s.0 * c.base_mva - (pg - bus.pd);
        let q = s.1 * c.base_mva - (qg - bus.qd);
        if bus.id == r.ref_bus {
            continue;
        }
        worst_p = worst_p.max(p.abs());
        let pv = has && bus.kind != BusType::Pq;
        if !pv {
            worst_q = worst_q.max(q.abs());
        }
    }
    (worst_p, worst_q)
}

/// Finding [1]: case16am written on 1 MVA (its own conversions make it the
/// same network) is refused, though its floor is 1.07·10⁻⁴ MW.
#[test]
fn case16am_on_a_one_mva_base_solves_as_on_ten() {
    let ten = run_pf(&Case::parse(CASE16AM).unwrap(), PfOptions::default()).expect("case16am as shipped solves");
    let text = CASE16AM.replace("mpc.baseMVA = 10;", "mpc.baseMVA = 1;");
    let one = Case::parse(&text).unwrap();
    assert_eq!(one.base_mva, 1.0);
    match run_pf(&one, PfOptions::default()) {
        Ok(r) => {
            for (a, b) in r.buses.iter().zip(&ten.buses) {
                assert!((a.vm - b.vm).abs() < 1e-6, "bus {}: {} vs {}", a.id, a.vm, b.vm);
            }
        }
        Err(ModelError::MismatchFloor { floor, max }) => panic!(
            "refused: floor {floor:e} p.u. = {:e} MW on 1 MVA (the MW cap is 1e-3), over the p.u. cap {max:e}",
            floor * 1.0
        ),
        Err(e) => panic!("refused: {e}"),
    }
}

/// Held up: the shipped and test-data cases on bases 1, 10, 100, 1 000 MVA
/// (the same networks) solve with the same voltages, within the stated
/// tolerance in MW by an independent recomputation, in no more iterations
/// than the default cap; case16am everywhere but at 1 MVA ([1]).
#[test]
fn cases_rebased_solve_alike_within_the_stated_tolerance() {
    let cases =
        [("case30", CASE30), ("case33bw", CASE33BW), ("case14", CASE14), ("case18", CASE18), ("case16am", CASE16AM)];
    for (name, text) in cases {
        let c = Case::parse(text).unwrap();
        let own = run_pf(&c, PfOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        for base in [1.0, 10.0, 100.0, 1000.0] {
            if name == "case16am" && base == 1.0 {
                continue;
            }
            let cc = rebase(&c, base);
            let r = run_pf(&cc, PfOptions::default()).unwrap_or_else(|e| panic!("{name} on {base} MVA: {e}"));
            let want = (1e-8f64).min(1e-6 / base);
            assert!((r.tol_pu - want).abs() <= 1e-12 * want, "{name} on {base} MVA: {}", r.tol_pu);
            assert!(r.mismatch_tol_pu >= r.tol_pu && r.max_mismatch_pu <= r.mismatch_tol_pu, "{name} on {base}: {r:?}");
            for (a, b) in r.buses.iter().zip(&own.buses) {
                assert!((a.vm - b.vm).abs() < 1e-6, "{name} on {base} MVA, bus {}: {} vs {}", a.id, a.vm, b.vm);
            }
            let (p, q) = indep(&cc, &r);
            // the recomputation from voltages printed through degrees adds
            // a rounding of its own, well under 10 % of these tolerances
            let allowed = 1.1 * r.mismatch_tol_pu * base + 1e-9;
            assert!(p <= allowed && q <= allowed, "{name} on {base} MVA: {p:e}/{q:e} MW over {allowed:e}");
            assert!((r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() <= 1e-3, "{name} on {base} MVA: {r:?}");
        }
    }
}

/// Held up: what the 1 000 MVA tolerance asks (10⁻⁹ p.u.) is reached by
/// MATPOWER's IEEE 14-bus case in as many Newton steps as 10⁻⁸ p.u., not
/// left to a rounding floor.
#[test]
fn a_thousand_mva_base_costs_no_extra_iteration() {
    let c = Case::parse(CASE14).unwrap();
    let own = run_pf(&c, PfOptions::default()).unwrap();
    let big = run_pf(&rebase(&c, 1000.0), PfOptions::default()).unwrap();
    assert!((big.tol_pu - 1e-9).abs() < 1e-20, "{}", big.tol_pu);
    assert_eq!(big.mismatch_tol_pu, big.tol_pu, "{big:?}");
    assert!(big.iterations <= own.iterations + 1, "{} vs {}", big.iterations, own.iterations);
}

/// Finding [3]: the refusal names the tolerance it missed.
#[test]
fn no_convergence_names_the_tolerance_it_missed() {
    let c = rebase(&Case::parse(CASE18).unwrap(), 1000.0);
    let e = run_pf(&c, PfOptions { max_iter: 3, ..PfOptions::default() }).unwrap_err();
    let ModelError::NoConvergence { mismatch, .. } = e else { panic!("another error: {e}") };
    assert!(mismatch < 1e-8 && mismatch > 1e-9, "the setting: {mismatch:e}");
    let msg = e.to_string();
    assert!(msg.contains("1e-9") || msg.contains("1e-6 MW") || msg.contains("1.00e-9"), "{msg}");
}
