//! Case parser, DC/PTDF, DistFlow and AC power flow against known properties
//! and MATPOWER's published results.

use gridledger_market::case::{BusType, CaseError};
use gridledger_market::{run_pf, Case, DcModel, DistFlow, ModelError, PfOptions, CASE30, CASE33BW};

fn case30() -> Case {
    Case::parse(CASE30).expect("case30 parses")
}
fn case33() -> Case {
    Case::parse(CASE33BW).expect("case33bw parses")
}

#[test]
fn case30_parses_as_shipped() {
    let c = case30();
    assert_eq!(c.base_mva, 100.0);
    assert_eq!((c.buses.len(), c.gens.len(), c.branches.len(), c.gencost.len()), (30, 6, 41, 6));
    assert_eq!(c.buses[0].kind, BusType::Ref);
    assert!(!c.converted_units);
    assert!(!c.is_radial());
    let load: f64 = c.buses.iter().map(|b| b.pd).sum();
    assert!((load - 189.2).abs() < 1e-9, "case30 total load {load}");
}

#[test]
fn case33bw_converts_kw_and_ohms() {
    let c = case33();
    assert!(c.converted_units);
    assert_eq!((c.buses.len(), c.branches.len()), (33, 37));
    assert_eq!(c.live_branches().count(), 32);
    assert!(c.is_radial());
    // 3715 kW / 2300 kVAr of load
    let p: f64 = c.buses.iter().map(|b| b.pd).sum();
    let q: f64 = c.buses.iter().map(|b| b.qd).sum();
    assert!((p - 3.715).abs() < 1e-9 && (q - 2.3).abs() < 1e-9, "{p} {q}");
    // branch 1-2: 0.0922 Ω on Zbase = 12.66² / 10 = 16.02756 Ω
    let zb = 12.66f64 * 12.66 / 10.0;
    assert!((c.branches[0].r - 0.0922 / zb).abs() < 1e-15);
}

const MINI: &str = "function mpc = mini\nmpc.version = '2';\nmpc.baseMVA = 100;\n\
mpc.bus = [\n 1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;\n 2 1 50 10 0 0 1 1 0 135 1 1.1 0.9;\n 3 1 50 10 0 0 1 1 0 135 1 1.1 0.9;\n];\n\
mpc.gen = [\n 1 0 0 100 -100 1 100 1 200 0;\n];\n\
mpc.branch = [\n 1 2 0.01 0.1 0 0 0 0 0 0 1;\n 2 3 0.01 0.1 0 0 0 0 0 0 1;\n 1 3 0.01 0.1 0 0 0 0 0 0 1;\n];\n";

#[test]
fn parser_skips_cell_arrays_and_trailing_code() {
    let text = format!("{MINI}mpc.bus_name = {{\n 'A';\n 'B'; 'C'\n}};\n[PQ, PV] = idx_bus;\nx = 3; % trailing code\n");
    let c = Case::parse(&text).unwrap();
    assert_eq!(c.buses.len(), 3);
    assert!(c.gencost.is_empty());
}

#[test]
fn malformed_cases_are_refused_with_typed_errors() {
    assert_eq!(
        Case::parse(&MINI.replace("mpc.version = '2';", "mpc.version = '1';")),
        Err(CaseError::NotVersion2("1".into()))
    );
    assert_eq!(Case::parse(&MINI.replace("mpc.version = '2';", "")), Err(CaseError::MissingVersion));
    assert_eq!(Case::parse(&MINI.replace("mpc.baseMVA = 100;", "")), Err(CaseError::MissingField("baseMVA")));
    assert!(matches!(Case::parse(&MINI.replace(" 2 1 50 10", " 2 1 abc 10")), Err(CaseError::Malformed { .. })));
    assert!(matches!(
        Case::parse(&MINI.replace(" 2 1 50 10", " 2 1 NaN 10")),
        Err(CaseError::Malformed { .. } | CaseError::BadValue { .. })
    ));
    assert!(matches!(
        Case::parse(&MINI.replace(" 1 2 0.01 0.1 0 0 0 0 0 0 1;", " 1 2 0.01;")),
        Err(CaseError::TooFewColumns { matrix: "branch", .. })
    ));
    assert_eq!(Case::parse(&MINI.replace(" 3 1 50 10", " 2 1 50 10")), Err(CaseError::DuplicateBus(2)));
    assert!(matches!(Case::parse(&MINI.replace(" 2 3 0.01", " 2 9 0.01")), Err(CaseError::UnknownBus { bus: 9, .. })));
    assert_eq!(Case::parse(&MINI.replace(" 1 3 0 0 0 0", " 1 1 0 0 0 0")), Err(CaseError::NoReferenceBus));
    assert!(matches!(Case::parse(&MINI.replace("];\nmpc.gen", "\nmpc.gen")), Err(CaseError::Malformed { .. })));
    assert!(matches!(Case::parse(&format!("{MINI}mpc.bus(:, 3) = 0;\n")), Err(CaseError::UnsupportedCode { .. })));
}

#[test]
fn disconnected_network_is_refused() {
    // take both branches touching bus 3 out of service
    let text = MINI
        .replace(" 2 3 0.01 0.1 0 0 0 0 0 0 1;", " 2 3 0.01 0.1 0 0 0 0 0 0 0;")
        .replace(" 1 3 0.01 0.1 0 0 0 0 0 0 1;", " 1 3 0.01 0.1 0 0 0 0 0 0 0;");
    assert_eq!(Case::parse(&text), Err(CaseError::Disconnected(3)));
    // an isolated (type 4) bus is allowed to be unconnected
    let iso = text.replace(" 3 1 50 10", " 3 4 50 10");
    assert!(Case::parse(&iso).is_ok());
}

#[test]
fn ptdf_reference_column_is_zero_and_flows_satisfy_kcl() {
    let c = case30();
    let dc = DcModel::new(&c).unwrap();
    for row in &dc.ptdf {
        assert!(row[dc.ref_idx].abs() < 1e-12);
    }
    let p = dc.case_injections(&c);
    let flow = dc.power_flow(&p);
    // KCL: net flow out of every non-reference bus equals its injection
    let n = dc.bus_ids.len();
    let mut out = vec![0.0; n];
    for (l, &(f, t, _, _)) in dc.lines.iter().enumerate() {
        out[f] += flow.flows[l];
        out[t] -= flow.flows[l];
    }
    for k in 0..n {
        let want = if k == dc.ref_idx { flow.ref_injection } else { p[k] };
        assert!((out[k] - want).abs() < 1e-9, "bus {} {} vs {}", dc.bus_ids[k], out[k], want);
    }
    // flows equal b (θf − θt) on every line, including the loop-closing ones
    for (l, &(f, t, b, _)) in dc.lines.iter().enumerate() {
        assert!((flow.flows[l] - b * (flow.theta[f] - flow.theta[t])).abs() < 1e-9);
    }
}

#[test]
fn ptdf_is_linear_and_a_transfer_splits_between_parallel_paths() {
    let c = case30();
    let dc = DcModel::new(&c).unwrap();
    let n = dc.bus_ids.len();
    // superposition: flows(p1 + p2) = flows(p1) + flows(p2)
    let p1: Vec<f64> = (0..n).map(|k| ((k * 7) % 5) as f64 * 0.01 - 0.02).collect();
    let p2: Vec<f64> = (0..n).map(|k| ((k * 3) % 4) as f64 * 0.02 - 0.03).collect();
    let sum: Vec<f64> = p1.iter().zip(&p2).map(|(a, b)| a + b).collect();
    let (f1, f2, fs) = (dc.flows(&p1), dc.flows(&p2), dc.flows(&sum));
    for l in 0..fs.len() {
        assert!((fs[l] - f1[l] - f2[l]).abs() < 1e-12);
    }
    // for a transfer between a line's own ends the line takes a share in (0, 1]
    for (l, &(f, t, _, _)) in dc.lines.iter().enumerate() {
        let share = dc.ptdf[l][f] - dc.ptdf[l][t];
        assert!(share > 0.0 && share <= 1.0 + 1e-12, "line {l}: {share}");
    }
}

#[test]
fn radial_ptdf_is_path_incidence() {
    // on a tree every unit injected at k flows fully over each line of k's root path
    let c = case33();
    let dc = DcModel::new(&c).unwrap();
    for row in &dc.ptdf {
        for v in row {
            assert!(v.abs() < 1e-9 || (v.abs() - 1.0).abs() < 1e-9, "{v}");
        }
    }
}

#[test]
fn distflow_is_refused_on_meshed_networks() {
    assert_eq!(DistFlow::new(&case30()).err(), Some(ModelError::NotRadial));
}

#[test]
fn distflow_flows_and_voltages_bound_the_ac_solution() {
    let c = case33();
    let df = DistFlow::new(&c).unwrap();
    let (p, q) = df.case_injections(&c);
    // the line into bus 2 carries the whole feeder load (lossless)
    let flows = df.parent_flows(&p);
    let b2 = df.bus_ids.iter().position(|&b| b == 2).unwrap();
    assert!((flows[b2] - 0.3715).abs() < 1e-12);
    let v = df.voltages_sq(&p, &q);
    let ac = run_pf(&c, PfOptions::default()).unwrap();
    for (k, bus) in ac.buses.iter().enumerate() {
        let lin = v[k].sqrt();
        // LinDistFlow neglects losses, so it overestimates voltages, but stays close
        assert!(lin >= bus.vm - 1e-9, "bus {}: {lin} < {}", bus.id, bus.vm);
        assert!(lin - bus.vm < 0.01, "bus {}: {lin} vs {}", bus.id, bus.vm);
    }
}

/// MATPOWER's runpf on case33bw (and Baran & Wu 1989): 202.7 kW and
/// 135.1 kVAr of losses, minimum voltage 0.913 p.u. at bus 18.
#[test]
fn acpf_case33bw_matches_published_runpf() {
    let r = run_pf(&case33(), PfOptions::default()).unwrap();
    assert!((r.loss_mw * 1e3 - 202.68).abs() < 0.05, "losses {} kW", r.loss_mw * 1e3);
    assert!((r.loss_mvar * 1e3 - 135.14).abs() < 0.05, "losses {} kVAr", r.loss_mvar * 1e3);
    assert_eq!(r.min_vm_bus, 18);
    assert!((r.min_vm - 0.9131).abs() < 1e-4, "{}", r.min_vm);
    assert!(r.iterations <= 10);
}

#[test]
fn acpf_case30_balances_and_converges() {
    let c = case30();
    let r = run_pf(&c, PfOptions::default()).unwrap();
    assert!(r.max_mismatch_pu <= 1e-8);
    // power balance: generation = load + series losses + shunt conductance (none here)
    assert!((r.total_gen_mw - r.total_load_mw - r.loss_mw).abs() < 1e-5, "{r:?}");
    // MATPOWER's runpf summary for case30: total losses 2.44 MW, 8.99 MVAr
    assert!((r.loss_mw - 2.44).abs() < 0.005, "{}", r.loss_mw);
    assert!((r.loss_mvar - 8.99).abs() < 0.005, "{}", r.loss_mvar);
    // PV buses hold their set-points
    for g in &c.gens {
        let b = r.buses.iter().find(|b| b.id == g.bus).unwrap();
        assert!((b.vm - g.vg).abs() < 1e-9);
    }
}

#[test]
fn acpf_reports_non_convergence() {
    // a tenfold load on the feeder has no power-flow solution
    let mut c = case33();
    for b in &mut c.buses {
        b.pd *= 10.0;
        b.qd *= 10.0;
    }
    assert!(matches!(run_pf(&c, PfOptions::default()), Err(ModelError::NoConvergence { .. })));
}

#[test]
fn bad_limits_and_oversized_files_are_typed_errors() {
    let inverted = MINI.replace(" 2 1 50 10 0 0 1 1 0 135 1 1.1 0.9;", " 2 1 50 10 0 0 1 1 0 135 1 0.9 1.1;");
    assert!(matches!(Case::parse(&inverted), Err(CaseError::BadValue { matrix: "bus", row: 2, col: 13, .. })));
    let neg_kv = MINI.replace(" 2 1 50 10 0 0 1 1 0 135 1 1.1 0.9;", " 2 1 50 10 0 0 1 1 0 -135 1 1.1 0.9;");
    assert!(matches!(Case::parse(&neg_kv), Err(CaseError::BadValue { matrix: "bus", row: 2, col: 10, .. })));
    let huge = MINI.replace("mpc.baseMVA = 100;", "mpc.baseMVA = 1e300;");
    assert!(matches!(Case::parse(&huge), Err(CaseError::BadValue { matrix: "baseMVA", .. })));
    let big = format!("{MINI}{}", "%".repeat(gridledger_market::case::MAX_CASE_BYTES));
    assert!(matches!(Case::parse(&big), Err(CaseError::TooLarge { .. })));
    // a local variable nobody reads is harmless; one the idioms read is not
    assert!(Case::parse(&format!("{MINI}n_extra = 3;\n")).is_ok());
    assert!(matches!(Case::parse(&format!("{MINI}BASE_KV = 3;\n")), Err(CaseError::UnsupportedCode { .. })));
    assert!(matches!(Case::parse(&format!("{MINI}mpc.baseMVA = 10;\n")), Err(CaseError::UnsupportedCode { .. })));
}

/// A generator's voltage set-point is a magnitude (attack r20 [2]): zero, a
/// negative or a non-finite `Vg` is refused at parse naming the generator's
/// row, as a bus's `Vm` is, also for a second generator of the case.
#[test]
fn a_generator_voltage_set_point_must_be_positive() {
    for vg in ["-1", "0", "-0", "NaN", "Inf"] {
        let one = MINI.replace(" 1 0 0 100 -100 1 100 1 200 0;", &format!(" 1 0 0 100 -100 {vg} 100 1 200 0;"));
        let two = MINI.replace(
            " 1 0 0 100 -100 1 100 1 200 0;",
            &format!(" 1 0 0 100 -100 1 100 1 200 0;\n 2 0 0 100 -100 {vg} 100 0 200 0;"),
        );
        for (text, row) in [(one, 1), (two, 2)] {
            match Case::parse(&text) {
                Err(CaseError::BadValue { matrix: "gen", row: r, col: 6, .. }) if r == row => {}
                Err(CaseError::Malformed { .. }) if vg == "NaN" || vg == "Inf" => {}
                other => panic!("Vg = {vg} at generator {row}: {other:?}"),
            }
        }
    }
    assert!(Case::parse(&MINI.replace(" 1 0 0 100 -100 1 100", " 1 0 0 100 -100 0.95 100")).is_ok());
}

/// The dense PTDF is lines × buses: a case within the bus limit but with
/// more branches than `MAX_PTDF_ENTRIES / buses` is a typed refusal before
/// anything of that size is allocated (a 10 MB case of 300 000 branches on
/// 800 buses asked for 1.9 GB).
#[test]
fn a_case_with_too_many_branches_for_the_dense_ptdf_is_refused() {
    let mesh = |buses: usize, lines: usize| {
        let mut s = String::from("function mpc = mesh\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n");
        s.push_str(" 1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;\n");
        for k in 2..=buses {
            s.push_str(&format!(" {k} 1 0 0 0 0 1 1 0 135 1 1.1 0.9;\n"));
        }
        s.push_str("];\nmpc.gen = [\n 1 0 0 100 -100 1 100 1 200 0;\n];\nmpc.branch = [\n");
        let mut n = 0;
        'all: for i in 1..=buses {
            for j in i + 1..=buses {
                if n == lines {
                    break 'all;
                }
                s.push_str(&format!(" {i} {j} 0.01 0.1 0 100 0 0 0 0 1;\n"));
                n += 1;
            }
        }
        s.push_str("];\n");
        Case::parse(&s).unwrap()
    };
    let max = gridledger_market::MAX_PTDF_ENTRIES;
    let buses = 500;
    let over = max / buses + 1;
    match DcModel::new(&mesh(buses, over)) {
        Err(ModelError::TooLargePtdf { lines, buses: b, entries, max: m }) => {
            assert_eq!((lines, b, m), (over, buses, max));
            assert_eq!(entries, over * buses);
        }
        other => panic!("expected TooLargePtdf, got {:?}", other.map(|d| d.lines.len())),
    }
    // a small mesh of the same shape still builds
    assert!(DcModel::new(&mesh(20, 100)).is_ok());
}

/// The sparse DC model (one LDLᵀ of B, one solve per line) gives the PTDF
/// of the definition, `b_l (X_f· − X_t·)` with `X = B_red⁻¹` formed densely
/// here column by column, on case30 (meshed, parallel paths, taps).
#[test]
fn sparse_ptdf_equals_the_dense_inverse_on_case30() {
    use gridledger_market::linalg::Lu;
    let case = case30();
    let dc = DcModel::new(&case).unwrap();
    let n = dc.bus_ids.len();
    let red: Vec<usize> = (0..n).filter(|&i| i != dc.ref_idx).collect();
    let m = red.len();
    let at = |i: usize| red.iter().position(|&r| r == i);
    let mut b = vec![0.0; m * m];
    for &(f, t, bl, _) in &dc.lines {
        for (i, j, s) in [(f, f, bl), (t, t, bl), (f, t, -bl), (t, f, -bl)] {
            if let (Some(i), Some(j)) = (at(i), at(j)) {
                b[i * m + j] += s;
            }
        }
    }
    let lu = Lu::new(m, b).unwrap();
    let mut x = vec![vec![0.0; n]; n];
    for (c, &j) in red.iter().enumerate() {
        let mut e = vec![0.0; m];
        e[c] = 1.0;
        for (r, v) in lu.solve(&e).into_iter().enumerate() {
            x[red[r]][j] = v;
        }
    }
    for (l, &(f, t, bl, _)) in dc.lines.iter().enumerate() {
        for (k, (xf, xt)) in x[f].iter().zip(&x[t]).enumerate() {
            let want = bl * (xf - xt);
            assert!((dc.ptdf[l][k] - want).abs() <= 1e-10, "line {l} bus {k}: {} vs {want}", dc.ptdf[l][k]);
        }
    }
}

/// A meshed case whose Newton step would need more than
/// `MAX_AC_PF_WORK` multiply-adds (random branches: no ordering gives it a
/// narrow band) is refused by its size, before anything of it is built;
/// a long feeder of the same bus count is solved (its band is narrow).
#[test]
fn the_ac_power_flow_refuses_a_case_beyond_its_work_budget() {
    let head = |n: usize| {
        let mut s =
            String::from("mpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n 1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;\n");
        for k in 2..=n {
            s.push_str(&format!(" {k} 1 0.01 0.005 0 0 1 1 0 135 1 1.1 0.9;\n"));
        }
        s.push_str("];\nmpc.gen = [\n 1 0 0 100 -100 1 100 1 200 0;\n];\nmpc.branch = [\n");
        s
    };
    let n = 1_500;
    let mut mesh = head(n);
    let mut feeder = head(n);
    let mut state = 12_345u64;
    for k in 2..=n {
        mesh.push_str(&format!(" {} {k} 0.0001 0.0002 0 0 0 0 0 0 1;\n", k - 1));
        feeder.push_str(&format!(" {} {k} 0.0001 0.0002 0 0 0 0 0 0 1;\n", k - 1));
        for _ in 0..2 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let other = 1 + (state >> 33) as usize % n;
            if other != k {
                mesh.push_str(&format!(" {k} {other} 0.0001 0.0002 0 0 0 0 0 0 1;\n"));
            }
        }
    }
    mesh.push_str("];\n");
    feeder.push_str("];\n");
    match run_pf(&Case::parse(&mesh).unwrap(), PfOptions::default()) {
        Err(ModelError::TooMuchAcWork { buses, work, max, .. }) => {
            assert_eq!(buses, n);
            assert!(work > max && max == gridledger_market::acpf::MAX_AC_PF_WORK);
        }
        other => panic!("expected TooMuchAcWork, got {:?}", other.map(|r| r.iterations)),
    }
    let r = run_pf(&Case::parse(&feeder).unwrap(), PfOptions::default()).unwrap();
    assert!(r.max_mismatch_pu <= 1e-8 && r.min_vm < 1.0 && r.min_vm > 0.9, "{r:?}");
    assert_eq!(r.buses.len(), n);
}

/// MATLAB block comments: the lines between a `%{` line and its `%}` line
/// are skipped, nested as MATLAB nests them (a second `mpc.bus` inside one
/// is no duplicate), and a `%{` inside a line is an ordinary comment.
#[test]
fn block_comments_are_skipped() {
    let text = CASE30.replacen(
        "mpc.bus = [",
        "%{\nmpc.bus = [\n 1 3 0 0 0 0 1 1 0 135 1 1.1 0.9;\n];\n  %{\nnested\n  %}\nstill a comment\n%}\nx = 1; %{ not a block\nmpc.bus = [",
        1,
    );
    let text = text.replace("x = 1; %{ not a block\n", "% %{ not a block either\n");
    let c = Case::parse(&text).unwrap();
    assert_eq!(c.buses.len(), case30().buses.len());
    // and an unclosed block comments out the rest (here: the data)
    assert!(Case::parse(&format!("{}\n%{{\n", &CASE30[..CASE30.find("mpc.bus = [").unwrap()])).is_err());
}
