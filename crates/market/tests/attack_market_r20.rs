//! Attack round 20 on the market crate (issue 15), after the per-term
//! rounding floor of the AC power flow (`acpf::mismatch_floor` counting the
//! magnitudes summed into each Ybus entry and injection), MATPOWER's
//! `bustypes` slack hand-over, and TEAR-DO's rule that a message carries
//! exactly its sender's assigned outputs, each once.
//!
//! The `#[ignore]`d tests are findings (they fail on the code as it
//! stands): `cargo test -p gridledger-market --test attack_market_r20 -- --ignored`.
//! The others are attacks that held up.

use std::collections::BTreeMap;

use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::teardo::{Fault, Strategy, TearDo, TearDoConfig};
use gridledger_market::{run_pf, Case, DcModel, ModelError, PfOptions, PfResult, CASE30};

/// MATPOWER's `case16am` (MATPOWER 8.1, `data/case16am.m`; data from Das,
/// Kothari and Kalam, "Simple and efficient method for load flow solution
/// of radial distribution networks", Int. J. Electr. Power Energy Syst.
/// 17:335–346, 1995, doi:10.1016/0142-0615(95)00050-0; R. D. Zimmerman,
/// C. E. Murillo-Sánchez, R. J. Thomas, "MATPOWER: Steady-State
/// Operations, Planning and Analysis Tools for Power Systems Research and
/// Education", IEEE Trans. Power Systems 26(1):12–19, 2011), its tables
/// and unit conversions as shipped (kW/kVAr, ohms on 12.66 kV / 10 MVA).
/// Its first branch is MATPOWER's stand-in for a zero-impedance feeder
/// head: "original reactance of 0 set to 1e-8" (ohm, 6.2e-10 p.u.).
const CASE16AM: &str = "function mpc = case16am
mpc.version = '2';
mpc.baseMVA = 10;
mpc.bus = [
	1	3	0	0	0	0	1	1	0	12.66	1	1	1;
	2	1	0	0	0	0	1	1	0	12.66	1	1.1	0.9;
	3	1	2000	1600	0	0	1	1	0	12.66	1	1.1	0.9;
	4	1	3000	400	0	0	1	1	0	12.66	1	1.1	0.9;
	5	1	2000	-400	0	0	1	1	0	12.66	1	1.1	0.9;
	6	1	1500	1200	0	0	1	1	0	12.66	1	1.1	0.9;
	7	1	4000	2700	0	0	1	1	0	12.66	1	1.1	0.9;
	8	1	5000	1800	0	0	1	1	0	12.66	1	1.1	0.9;
	9	1	1000	900	0	0	1	1	0	12.66	1	1.1	0.9;
	10	1	600	-500	0	0	1	1	0	12.66	1	1.1	0.9;
	11	1	4500	-1700	0	0	1	1	0	12.66	1	1.1	0.9;
	12	1	1000	900	0	0	1	1	0	12.66	1	1.1	0.9;
	13	1	1000	-1100	0	0	1	1	0	12.66	1	1.1	0.9;
	14	1	1000	900	0	0	1	1	0	12.66	1	1.1	0.9;
	15	1	2100	-800	0	0	1	1	0	12.66	1	1.1	0.9;
];
mpc.gen = [
	1	0	0	10	-10	1	100	1	10	0	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
JUMPER	2	3	0.1202	0.1603	0	0	0	0	0	0	1	-360	360;
	3	4	0.1282	0.1763	0	0	0	0	0	0	1	-360	360;
	3	5	0.1442	0.2885	0	0	0	0	0	0	1	-360	360;
	5	6	0.0641	0.0641	0	0	0	0	0	0	1	-360	360;
	2	7	0.1763	0.1763	0	0	0	0	0	0	1	-360	360;
	7	8	0.1282	0.1763	0	0	0	0	0	0	1	-360	360;
	7	9	0.1763	0.1763	0	0	0	0	0	0	1	-360	360;
	8	10	0.1763	0.1763	0	0	0	0	0	0	1	-360	360;
	8	11	0.1282	0.1763	0	0	0	0	0	0	1	-360	360;
	2	12	0.1763	0.1763	0	0	0	0	0	0	1	-360	360;
	12	13	0.1442	0.1923	0	0	0	0	0	0	1	-360	360;
	12	14	0.1282	0.1763	0	0	0	0	0	0	1	-360	360;
	14	15	0.0641	0.0641	0	0	0	0	0	0	1	-360	360;
];
mpc.gencost = [
	2	0	0	3	0	20	0;
];
[PQ, PV, REF, NONE, BUS_I, BUS_TYPE, PD, QD, GS, BS, BUS_AREA, VM, ...
    VA, BASE_KV, ZONE, VMAX, VMIN, LAM_P, LAM_Q, MU_VMAX, MU_VMIN] = idx_bus;
[F_BUS, T_BUS, BR_R, BR_X, BR_B, RATE_A, RATE_B, RATE_C, ...
    TAP, SHIFT, BR_STATUS, PF, QF, PT, QT, MU_SF, MU_ST, ...
    ANGMIN, ANGMAX, MU_ANGMIN, MU_ANGMAX] = idx_brch;
Vbase = mpc.bus(1, BASE_KV) * 1e3;      %% in Volts
Sbase = mpc.baseMVA * 1e6;              %% in VA
mpc.branch(:, [BR_R BR_X]) = mpc.branch(:, [BR_R BR_X]) / (Vbase^2 / Sbase);
mpc.bus(:, [PD, QD]) = mpc.bus(:, [PD, QD]) / 1e3;
";

/// `case16am` as shipped (the 1e-8 ohm jumper 1-2 in place).
fn case16am() -> Case {
    Case::parse(&CASE16AM.replace("JUMPER", "\t1\t2\t0\t1e-8\t0\t0\t0\t0\t0\t0\t1\t-360\t360;\n\t")).unwrap()
}

/// `case16am` with the jumper closed: bus 2 folded into bus 1 (the
/// network the 6.2e-10 p.u. jumper stands for, to within its voltage drop
/// of about 2e-9 p.u.).
fn case16am_merged() -> Case {
    let text = CASE16AM
        .replace("\t2\t1\t0\t0\t0\t0\t1\t1\t0\t12.66\t1\t1.1\t0.9;\n", "")
        .replace("JUMPER\t2\t3", "\t1\t3")
        .replace("\t2\t7\t", "\t1\t7\t")
        .replace("\t2\t12\t", "\t1\t12\t");
    Case::parse(&text).unwrap()
}

fn vm_of(r: &PfResult, id: u32) -> f64 {
    r.buses.iter().find(|b| b.id == id).map(|b| b.vm).unwrap_or(f64::NAN)
}

// Finding [1] (medium). Expected: MATPOWER's own `case16am` (shipped in the
// same `matpower` package as case30 and case33bw, 15 load buses on a
// 12.66 kV feeder) solves as it does in MATPOWER — Newton–Raphson with
// MATPOWER's algorithm and tolerance converges in 3 iterations to a
// mismatch of 3e-10 p.u. (checked with a dense re-implementation of
// `newtonpf` in double precision), minimum voltage 0.96927 p.u. — and
// matches the case with the jumper closed. Observed: `run_pf` (and so
// `gridledger grid pf --case case16am.m`) refuses it with
// `ModelError::MismatchFloor { floor: 1.07e-5, max: 1e-6 }`: the jumper's
// admittance (1.6e9 p.u.) times the (m + 4)·ε worst-case factor puts the
// floor of bus 2 above the cap, although the iterates' computed mismatch
// meets the physical 1e-8 p.u. everywhere (the refusal is decided by the
// floor alone, after convergence, not by any equation that needed it).
// The cap's own rationale (`MAX_MISMATCH_FLOOR_PU`: "what the floor leaves
// uncertain stays below the printed 0.001 MW up to a 1 000 MVA base") is
// met here a hundred times over: 1.07e-5 p.u. on this case's 10 MVA base
// is 0.0001 MW. Of the 62 MATPOWER 8.1 cases of up to 3 400 buses that parse,
// this is the only one refused by the floor.
// Fixed: the cap is what its reason says, in MW: floor × baseMVA within
// 0.001 MW (`acpf::max_mismatch_floor_pu`, 10⁻⁴ p.u. on this base).
#[test]
fn matpower_case16am_solves_like_the_closed_jumper() {
    let merged = run_pf(&case16am_merged(), PfOptions::default()).unwrap();
    assert!(merged.max_mismatch_pu <= 1e-8 && (merged.min_vm - 0.96927).abs() < 1e-5, "{merged:?}");
    match run_pf(&case16am(), PfOptions::default()) {
        Ok(r) => {
            for b in &merged.buses {
                assert!((vm_of(&r, b.id) - b.vm).abs() < 1e-6, "bus {}: {} vs {}", b.id, vm_of(&r, b.id), b.vm);
            }
            assert!((r.loss_mw - merged.loss_mw).abs() < 1e-6, "{} vs {}", r.loss_mw, merged.loss_mw);
        }
        Err(e) => panic!(
            "MATPOWER's case16am refused: {e:?}; with the jumper closed it solves (min V {} at bus {}, losses {} MW)",
            merged.min_vm, merged.min_vm_bus, merged.loss_mw
        ),
    }
}

/// A three-bus feeder (10 MVA base) with two generators whose voltage
/// set-points are `VG1` (reference bus 1) and `VG2` (PV bus 2).
const PV_FEEDER: &str = "function mpc = vg\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n \
    1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 2 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
    3 1 1 0.6 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 10 -10 VG1 100 1 10 0;\n \
    2 0.3 0 10 -10 VG2 100 1 10 0;\n];\n\
    mpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n];\n";

// Finding [2] (low). Expected (issue 15, bad input: "NaN/negative
// parameters: typed errors"): a generator's voltage set-point `Vg` is a
// magnitude, so a negative one is refused when the case is read, as a
// negative bus `Vm` already is (`CaseError::BadValue`, "Vm must be
// positive"). Observed: `Case::parse` takes `Vg = -1` at the reference
// bus, and `run_pf` reports a converged flow with every angle turned by
// 180° (bus 1 at -180°, bus 3 at 179.09°) as if the reference were
// 1.0∠180°; a `Vg` of -1 at the PV bus instead ends in NoConvergence
// (mismatch 21.8 p.u.), and `Vg = 0` in a singular-matrix error — three
// different outcomes for one bad parameter, none naming it.
// Fixed: `Vg ≤ 0` is `CaseError::BadValue` naming the generator's row.
#[test]
fn a_negative_generator_voltage_is_refused() {
    let text = PV_FEEDER.replace("VG1", "-1").replace("VG2", "1");
    match Case::parse(&text) {
        Err(_) => {}
        Ok(c) => match run_pf(&c, PfOptions::default()) {
            Err(ModelError::Numerical { .. }) => {}
            other => panic!("a negative Vg was taken: {other:?}"),
        },
    }
}

/// A radial feeder (10 MVA base, 12.66 kV): `laterals` laterals of `len`
/// buses each (0.002 MW + 0.001 MVAr per bus, 0.01 + j0.01 p.u. per
/// section) from the substation bus 1.
fn comb_feeder(laterals: usize, len: usize) -> Case {
    let mut bus = String::from(" 1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n");
    let mut branch = String::new();
    let mut id = 1;
    for _ in 0..laterals {
        let mut prev = 1;
        for _ in 0..len {
            id += 1;
            bus += &format!(" {id} 1 0.002 0.001 0 0 1 1 0 12.66 1 1.1 0.9;\n");
            branch += &format!(" {prev} {id} 0.01 0.01 0 0 0 0 0 0 1;\n");
            prev = id;
        }
    }
    Case::parse(&format!(
        "function mpc = comb\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n{bus}];\n\
         mpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\nmpc.branch = [\n{branch}];\n"
    ))
    .unwrap()
}

// Finding [3] (low). Expected (acpf module docs and `MAX_AC_PF_WORK`: "Up
// to MAX_MODEL_BUSES buses are accepted", "a radial feeder of the 5 000
// buses MAX_MODEL_BUSES allows needs about 2·10⁵" multiply-adds per step):
// a radial feeder of 4 001 buses solves — its Newton system is a tree's,
// which factorises without fill. Observed: a substation bus with 400
// laterals of 10 buses is refused with `ModelError::TooMuchAcWork`
// (bandwidth 399 in reverse Cuthill–McKee order, 1.02e10 multiply-adds
// "per step", over the 2e9 limit): the bound `n p (p + q)` takes the
// widest BFS level (the laterals side by side) as the band of every row.
// The bound is far from the work: 250 laterals of 8 (2 001 buses, bound
// just under the limit) solve in 2 steps in about 30 ms in a debug build.
// The same bound refuses every MATPOWER 8.1 case from 2 000 to 3 400 buses
// that parses (case_ACTIVSg2000 at 2.008e9, case2869pegase at 2.2e9,
// case2383wp, case2736sp, case2737sop, case2746wop/wp, case2848rte,
// case2868rte, case3012wp, case3120sp, case3375wp: 3.6e9 to 1.2e10), so no
// meshed case of "a few thousand buses" (lib.rs, `MAX_MODEL_BUSES`)
// MATPOWER ships gets an AC power flow.
// Not fixed: a documented limitation (`acpf::MAX_AC_PF_WORK`), as the
// banded sparse LU's work is bounded by the RCM band, not by the fill, and
// a bound that follows the fill would need another solver.
#[test]
#[ignore = "attack r20: a 4 001-bus radial feeder (400 laterals of 10 from one bus) is refused with TooMuchAcWork; the band bound counts the widest BFS level"]
fn a_radial_feeder_with_many_laterals_is_not_refused() {
    let small = run_pf(&comb_feeder(250, 8), PfOptions::default()).unwrap();
    assert!(small.max_mismatch_pu <= 1e-8);
    match run_pf(&comb_feeder(400, 10), PfOptions::default()) {
        Ok(r) => assert!(r.max_mismatch_pu <= 1e-8 && r.min_vm > 0.9, "{} {}", r.max_mismatch_pu, r.min_vm),
        Err(e) => panic!("a 4 001-bus radial feeder refused: {e}"),
    }
}

// Finding [4] (low). Expected: a case with two substations, each a
// reference bus with a generator (MATPOWER 8.1 ships two: `case70da`,
// references 1 and 70, and `case16ci`, references 1, 2 and 3), runs
// through the AC power flow as MATPOWER's `runpf` runs it (`bustypes`
// keeps every reference bus with an in-service generator; `newtonpf` holds
// each one's angle and magnitude; `pfsoln` gives each its generation), or
// the AC path alone says why not. Observed: `Case::parse` refuses every
// such case (`CaseError::SeveralReferenceBuses`), so `gridledger grid pf`
// cannot read either shipped case, though the rule that a case has one
// reference is the DC/market models' need, not the power flow's.
// Not fixed: a documented limitation (`case` module docs), as the single
// reference is the model the DC, PTDF and market code share with the AC
// power flow through one `Case`.
#[test]
#[ignore = "attack r20: a case with two reference buses (MATPOWER's case70da, case16ci) is refused at parse, though runpf solves it"]
fn two_substations_run_through_the_power_flow() {
    let text = PV_FEEDER
        .replace("VG1", "1")
        .replace("VG2", "1")
        .replace(" 2 2 0 0 0 0 1 1 0 12.66", " 2 3 0 0 0 0 1 1 0 12.66");
    let case = Case::parse(&text).unwrap_or_else(|e| panic!("two reference buses refused: {e}"));
    let r = run_pf(&case, PfOptions::default()).unwrap();
    assert!(r.buses.iter().take(2).all(|b| b.vm == 1.0 && b.va_deg == 0.0), "{r:?}");
    assert!(r.max_mismatch_pu <= 1e-8, "{r:?}");
}

/// Held up: the slack hand-over keeps the totals consistent. The case's
/// reference bus 1 has only an out-of-service generator (50 MW set-point),
/// the PV bus 2 an in-service one and an out-of-service one (90 MW), the
/// PV bus 3 one of 3 MW: bus 2 becomes the reference, neither
/// out-of-service set-point is counted, and with no shunts or charging the
/// generation is the load plus the series losses.
#[test]
fn the_hand_over_counts_what_is_in_service_once() {
    let text = "function mpc = ho\nmpc.version = '2';\nmpc.baseMVA = 10;\nmpc.bus = [\n \
        1 3 0.4 0.1 0 0 1 1 0 12.66 1 1.1 0.9;\n 2 2 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n \
        3 2 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n 4 1 2 0.6 0 0 1 1 0 12.66 1 1.1 0.9;\n];\nmpc.gen = [\n \
        1 50 0 10 -10 1.0 100 0 60 0;\n 2 0.2 0 10 -10 1.01 100 1 10 0;\n 2 90 0 10 -10 1.01 100 0 90 0;\n \
        3 0.3 0 10 -10 1.0 100 1 10 0;\n];\n\
        mpc.branch = [\n 1 2 0.0922 0.0470 0 0 0 0 0 0 1;\n 2 3 0.0575 0.0293 0 0 0 0 0 0 1;\n \
        3 4 0.0493 0.0251 0 0 0 0 0 0 1;\n 1 4 0.0819 0.0707 0 0 0 0 0 0 1;\n];\n";
    let r = run_pf(&Case::parse(text).unwrap(), PfOptions::default()).unwrap();
    assert_eq!(r.ref_bus, 2);
    assert!((r.total_load_mw - 2.4).abs() < 1e-12, "{r:?}");
    assert!((r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() < 1e-7, "{r:?}");
    assert!((r.total_gen_mw - (r.ref_p_mw + 0.3)).abs() < 1e-9, "{r:?}");
    // bus 3 keeps its set-point, bus 1 (now PQ) does not hold 1.0
    assert!((vm_of(&r, 3) - 1.0).abs() < 1e-12 && (vm_of(&r, 2) - 1.01).abs() < 1e-12, "{r:?}");
    assert!((vm_of(&r, 1) - 1.0).abs() > 1e-6, "{r:?}");
}

/// A meshed three-bus case whose branch 1-2 is `BR12` (extra rows allowed).
const MESH: &str = "function mpc = m\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n \
    1 3 0 0 0 0 1 1.02 0 135 1 1.1 0.9;\n 2 1 60 20 3 -15 1 1 0 135 1 1.1 0.9;\n \
    3 1 80 30 0 10 1 1 0 135 1 1.1 0.9;\n];\nmpc.gen = [\n 1 0 0 300 -300 1.02 100 1 300 0;\n];\n\
    mpc.branch = [\nBR12 2 3 0.02 0.08 0.04 0 0 0 0 0 1;\n 1 3 0.01 0.05 0.03 0 0 0 0 0 1;\n];\n";

/// Held up: Ybus sums parallel phase-shifting transformers, charging and
/// shunts as one equivalent. Two identical transformers (tap 1.05, shift
/// 4°, r + jx = 0.02 + j0.10, charging 0.06) in parallel are one of half
/// the impedance and twice the charging; an out-of-service branch of
/// impedance 1e-300 beside them is in no sum (no floor, no flow).
#[test]
fn parallel_phase_shifters_and_out_of_service_branches_sum_as_their_equivalent() {
    let two = MESH.replace(
        "BR12",
        " 1 2 0.02 0.10 0.06 0 0 0 1.05 4 1;\n 1 2 0.02 0.10 0.06 0 0 0 1.05 4 1;\n 1 2 0 1e-300 0 0 0 0 0 0 0;\n",
    );
    let one = MESH.replace("BR12", " 1 2 0.01 0.05 0.12 0 0 0 1.05 4 1;\n");
    let a = run_pf(&Case::parse(&two).unwrap(), PfOptions::default()).unwrap();
    let b = run_pf(&Case::parse(&one).unwrap(), PfOptions::default()).unwrap();
    assert_eq!(a.mismatch_tol_pu, 1e-8);
    for (x, y) in a.buses.iter().zip(&b.buses) {
        assert!((x.vm - y.vm).abs() < 1e-9 && (x.va_deg - y.va_deg).abs() < 1e-7, "{x:?} vs {y:?}");
    }
    assert!((a.loss_mw - b.loss_mw).abs() < 1e-6 && (a.ref_p_mw - b.ref_p_mw).abs() < 1e-6, "{a:?} {b:?}");
}

/// Held up: many parallel branches of ordinary impedance (a 40-branch
/// bundle, each 40 times the impedance of one line) are held to the
/// physical tolerance and solve as the single line.
#[test]
fn a_bundle_of_parallel_lines_is_not_refused() {
    let bundle: String = (0..40).map(|_| " 1 2 0.4 1.6 0 0 0 0 0 0 1;\n").collect();
    let a = run_pf(&Case::parse(&MESH.replace("BR12", &bundle)).unwrap(), PfOptions::default()).unwrap();
    let b =
        run_pf(&Case::parse(&MESH.replace("BR12", " 1 2 0.01 0.04 0 0 0 0 0 0 1;\n")).unwrap(), PfOptions::default())
            .unwrap();
    assert_eq!(a.mismatch_tol_pu, 1e-8);
    for (x, y) in a.buses.iter().zip(&b.buses) {
        assert!((x.vm - y.vm).abs() < 1e-9, "{x:?} vs {y:?}");
    }
}

fn teardo_setup() -> (Market, MarketNetwork) {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    (Market::generate(21, 4, 4, &dc.bus_ids), MarketNetwork::ptdf(&dc, 1.0).unwrap())
}

fn bits(a: &[Vec<f64>]) -> Vec<Vec<u64>> {
    a.iter().map(|r| r.iter().map(|x| x.to_bits()).collect()).collect()
}

/// Held up: every compromised fault of the new rule (a repeated output, an
/// omitted one) beside every host fault (κ = 2, both strategies): the clearing is the attack-free one bit for bit, no
/// honest enclave is flagged, and every Byzantine host that was assigned
/// something and attacked is flagged.
#[test]
fn repeated_and_omitted_outputs_beside_host_faults_never_flag_the_honest() {
    let (market, net) = teardo_setup();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.run(&market).unwrap();
    let want = bits(&pd.settled());
    let hosts = [
        Fault::Silent,
        Fault::TamperOutput,
        Fault::WrongInputs,
        Fault::BadSignature,
        Fault::StaleRound,
        Fault::Impersonate,
    ];
    let (a, b) = (2usize, 7usize);
    for comp in [Fault::DuplicateOutput, Fault::OmitOutput] {
        for host in hosts {
            for strategy in [Strategy::Always, Strategy::Optimal] {
                let byz: BTreeMap<usize, Fault> = [(a, comp), (b, host)].into();
                let config = TearDoConfig { enclaves: 10, kappa: 2, byzantine: byz.clone(), strategy, seed: 5 };
                let mut t = TearDo::new_insecure_seeded(&market, &net, config, [1; 32]).unwrap();
                let r = t.run(&market);
                let what = format!("{comp:?}@{a} + {host:?}@{b}, {strategy:?}: {:?}", r.detected);
                assert!(r.converged, "{what}");
                assert_eq!(bits(&t.pd.settled()), want, "{what}");
                assert!(r.detected.iter().all(|(n, _, _)| byz.contains_key(n)), "{what}: an honest enclave flagged");
                if strategy == Strategy::Always && (0..9).any(|sp| t.assigned(sp).contains(&a)) {
                    assert!(r.detected.iter().any(|(n, _, _)| *n == a), "{what}: the compromised enclave unflagged");
                }
            }
        }
    }
}

/// A SplitMix64 stream with a pick from a palette.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }
    fn one_in(&mut self, k: u64) -> bool {
        self.next().is_multiple_of(k)
    }
    fn pick<'a>(&mut self, v: &'a [&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Complex numbers for the independent evaluation.
type C = (f64, f64);
fn cm(a: C, b: C) -> C {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}
fn ca(a: C, b: C) -> C {
    (a.0 + b.0, a.1 + b.1)
}
fn cinv(a: C) -> C {
    let d = a.0 * a.0 + a.1 * a.1;
    (a.0 / d, -a.1 / d)
}

/// Held up: random four-bus cases (taps, phase shifts, charging, shunts,
/// parallel and out-of-service branches, near-zero and negative
/// impedances, out-of-service generators so that the slack hands over)
/// never panic, and every flow reported converged meets an independent
/// evaluation of its mismatch (MATPOWER's Ybus and Sbus, summed here in
/// another order from the reported voltages) within three times the
/// tolerance it reports.
#[test]
fn random_cases_converge_only_to_flows_an_independent_mismatch_confirms() {
    let mut m = Rng(7);
    let imp = ["0.01", "0.02", "0.05", "0.1", "0.03", "0.01", "1e-4", "1e-7", "-0.05", "3e-9", "0", "2e-8", "1e-6"];
    let pw = ["0", "10", "-10", "20", "50", "0.5", "5", "30"];
    let taps = ["0", "0", "0", "1.05", "0.9", "0.97", "1.1"];
    let sh = ["0", "0", "0", "0.3", "-0.2", "0.05", "19"];
    let vgs = ["1", "1.05", "0.95", "1.1"];
    let types = ["1", "1", "2", "2"];
    let (mut ok, mut err, mut bad) = (0, 0, 0);
    let mut errs = std::collections::BTreeMap::<String, usize>::new();
    for it in 0..12000 {
        let n = 4;
        let mut s = String::from("function mpc = f\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n");
        for b in 1..=n {
            let t = if b == 1 { "3" } else { m.pick(&types) };
            s += &format!(
                "{b} {t} {} {} {} {} 1 1 0 135 1 1.1 0.9;\n",
                m.pick(&pw),
                m.pick(&pw),
                m.pick(&sh),
                m.pick(&sh)
            );
        }
        s += "];\nmpc.gen = [\n";
        for b in 1..=n {
            if !m.one_in(3) || b == 1 {
                s += &format!(
                    "{b} {} {} 1e30 -1e30 {} 100 {} 1e30 -1e30;\n",
                    m.pick(&pw),
                    m.pick(&pw),
                    m.pick(&vgs),
                    if m.one_in(6) { 0 } else { 1 }
                );
            }
        }
        s += "];\nmpc.branch = [\n";
        let nb = 4 + (m.next() % 4) as usize;
        for k in 0..nb {
            let (f, t) =
                if k < 3 { (k + 1, k + 2) } else { (1 + (m.next() % 4) as usize, 1 + (m.next() % 4) as usize) };
            if f == t {
                continue;
            }
            let (r, x) = (m.pick(&imp), m.pick(&imp));
            if r == "0" && x == "0" {
                continue;
            }
            s += &format!(
                "{f} {t} {r} {x} {} 0 0 0 {} {} {};\n",
                m.pick(&sh),
                m.pick(&taps),
                if m.one_in(3) { "7" } else { "0" },
                if k >= 3 && m.one_in(4) { 0 } else { 1 }
            );
        }
        s += "];\n";
        let Ok(case) = Case::parse(&s) else { continue };
        let res = std::panic::catch_unwind(|| run_pf(&case, PfOptions::default()));
        let Ok(res) = res else { panic!("run_pf panicked on case {it}:\n{s}") };
        let r = match res {
            Ok(r) => r,
            Err(e) => {
                *errs
                    .entry(format!("{e:?}").chars().take_while(|c| c.is_alphanumeric()).collect::<String>())
                    .or_insert(0) += 1;
                err += 1;
                continue;
            }
        };
        ok += 1;
        // independent mismatch
        let idx = |id: u32| r.buses.iter().position(|b| b.id == id).unwrap();
        let v: Vec<C> = r
            .buses
            .iter()
            .map(|b| {
                let a = b.va_deg.to_radians();
                (b.vm * a.cos(), b.vm * a.sin())
            })
            .collect();
        let mut y = vec![vec![(0.0, 0.0); n]; n];
        for br in case.branches.iter().filter(|b| b.in_service) {
            let (f, t) = (idx(br.from), idx(br.to));
            let ys = cinv((br.r, br.x));
            let sd = br.shift_deg.to_radians();
            let tap = (br.tap * sd.cos(), br.tap * sd.sin());
            let ytt = ca(ys, (0.0, br.b / 2.0));
            let t2 = br.tap * br.tap;
            y[f][f] = ca(y[f][f], (ytt.0 / t2, ytt.1 / t2));
            y[t][t] = ca(y[t][t], ytt);
            let yft = cm(ys, cinv((tap.0, -tap.1)));
            let ytf = cm(ys, cinv(tap));
            y[f][t] = ca(y[f][t], (-yft.0, -yft.1));
            y[t][f] = ca(y[t][f], (-ytf.0, -ytf.1));
        }
        let mut sb = vec![(0.0, 0.0); n];
        for (k, b) in case.buses.iter().enumerate() {
            y[k][k] = ca(y[k][k], (b.gs / 100.0, b.bs / 100.0));
            sb[k] = (-b.pd / 100.0, -b.qd / 100.0);
        }
        let mut hasg = vec![false; n];
        for g in case.gens.iter().filter(|g| g.in_service) {
            let k = idx(g.bus);
            sb[k] = ca(sb[k], (g.pg / 100.0, g.qg / 100.0));
            hasg[k] = true;
        }
        let refk = idx(r.ref_bus);
        let mut worst: f64 = 0.0;
        for i in 0..n {
            if i == refk {
                continue;
            }
            let mut cur = (0.0, 0.0);
            for j in 0..n {
                cur = ca(cur, cm(y[i][j], v[j]));
            }
            let si = cm(v[i], (cur.0, -cur.1));
            let mis = (si.0 - sb[i].0, si.1 - sb[i].1);
            let pv = case.buses[i].kind == gridledger_market::case::BusType::Pv && hasg[i];
            worst = worst.max(mis.0.abs());
            if !pv {
                worst = worst.max(mis.1.abs());
            }
        }
        if worst > 3.0 * r.mismatch_tol_pu + 1e-9 || !r.loss_mw.is_finite() {
            bad += 1;
            if bad < 4 {
                eprintln!(
                    "case {it}: independent mismatch {worst:e}, reported {:e} within {:e}\n{s}",
                    r.max_mismatch_pu, r.mismatch_tol_pu
                );
            }
        }
    }
    eprintln!("{ok} converged, {err} refused: {errs:?}");
    assert_eq!(bad, 0, "converged flows whose independently evaluated mismatch exceeds 3x their tolerance");
    assert!(ok > 1000, "precondition: enough converged flows ({ok})");
}

/// Held up: random TEAR-DO configurations (4 to 10 enclaves, κ from 1 to
/// 4, random Byzantine hosts with any fault, the repeated and omitted
/// outputs among them, either strategy; those beyond the collusion bound
/// are refused at deployment) clear exactly as the attack-free iteration
/// and flag no honest enclave. (200 draws of this generator, 160 deployed,
/// held up the same way; a few are kept here.)
#[test]
fn random_byzantine_configurations_never_flag_the_honest_or_move_the_clearing() {
    let (market, net) = teardo_setup();
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.run(&market).unwrap();
    let want = bits(&pd.settled());
    let faults = [
        Fault::Silent,
        Fault::TamperOutput,
        Fault::WrongInputs,
        Fault::BadSignature,
        Fault::StaleRound,
        Fault::ExtraOutput,
        Fault::WrongOutput,
        Fault::Impersonate,
        Fault::SignFlippedZero,
        Fault::DuplicateOutput,
        Fault::OmitOutput,
    ];
    let mut m = Rng(99);
    let mut deployed = 0;
    for _ in 0..14 {
        let enclaves = 4 + (m.next() % 7) as usize;
        let kappa = 1 + (m.next() % 4) as usize;
        let mut byz = BTreeMap::new();
        for _ in 0..m.next() % enclaves as u64 {
            byz.insert((m.next() % enclaves as u64) as usize, faults[(m.next() % faults.len() as u64) as usize]);
        }
        let strategy = if m.one_in(2) { Strategy::Always } else { Strategy::Optimal };
        let seed = m.next();
        let config = TearDoConfig { enclaves, kappa, byzantine: byz.clone(), strategy, seed };
        let Ok(mut t) = TearDo::new_insecure_seeded(&market, &net, config, [1; 32]) else { continue };
        deployed += 1;
        let r = t.run(&market);
        if t.selected.iter().all(|n| byz.contains_key(n)) {
            assert!(!r.converged);
            continue;
        }
        let what = format!("B = {enclaves}, κ = {kappa}, {byz:?}, {strategy:?}, seed {seed}: {:?}", r.detected);
        assert!(r.converged, "{what}");
        assert_eq!(bits(&t.pd.settled()), want, "{what}");
        assert!(r.detected.iter().all(|(n, _, _)| byz.contains_key(n)), "{what}: an honest enclave flagged");
    }
    assert!(deployed >= 8, "precondition: enough deployed configurations ({deployed})");
}
