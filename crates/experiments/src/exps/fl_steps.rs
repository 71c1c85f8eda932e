//! Thesis Figs 7-4 to 7-7 (§7.5.3–7.5.4): the measured computation of each
//! CTP-FL step on our code — a client's encryption, erasure encoding,
//! commitment and cell proofs (C2B), a node's proof check, the leader's
//! decoding and trimmed-mean aggregation, the leader's first coding with
//! its Merkle root and a node's second coding (B2C) — against the fragment
//! size (`S/B`), the number of nodes per chain `K` and of clients `C`.

use std::time::Instant;

use serde_json::json;

use crate::result::{num, ChartSpec, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};
use gridledger_fl::aead::{encrypt_fragment, FragmentContext};
use gridledger_fl::aggregate::trimmed_mean;
use gridledger_fl::coding::FragmentCoder;
use gridledger_fl::dissemination::GlobalCoder;
use gridledger_fl::field::BYTES_PER_ELEMENT;
use gridledger_fl::kzg::Kzg;

pub struct FlSteps;

const ID: &str = "fl-steps";

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// One row: fragment of `k` field elements, `nodes` nodes, `clients` clients.
fn measure(k: usize, nodes: usize, clients: usize) -> Result<Vec<f64>, String> {
    let e = |e: gridledger_fl::FlError| e.to_string();
    let f = (nodes - 1) / 3;
    let max_ct = k * BYTES_PER_ELEMENT;
    let plaintext: Vec<u8> = (0..max_ct - 16).map(|i| (i * 7 + 3) as u8).collect();
    let kzg = Kzg::insecure_from_seed(2 * k.next_power_of_two(), 3);
    let coder = FragmentCoder::new(kzg, max_ct, nodes, nodes - f).map_err(e)?;
    let key = [9u8; 32];
    let ctx = FragmentContext { instance: gridledger_core::Hash32::ZERO, chain: 0, round: 1, fragment: 0 };
    let t = Instant::now();
    let ct = encrypt_fragment(&key, &ctx, &gridledger_fl::aead::derive_nonce(&key, &ctx, &plaintext), &plaintext)
        .map_err(e)?;
    let encrypt = ms(t);
    let mut ct_padded = ct.clone();
    ct_padded.resize(coder.max_ciphertext_len(), 0);
    let padded = gridledger_fl::field::bytes_to_scalars(&ct_padded);
    let t = Instant::now();
    coder.code().encode(&padded).map_err(e)?;
    let erasure = ms(t);
    let t = Instant::now();
    coder.kzg().commit(&padded).map_err(e)?;
    let commit = ms(t);
    // The whole client step (encrypt, code, commit, degree proof, all cell proofs).
    let t = Instant::now();
    let signer = gridledger_fl::round::sim_client_signing_key(&key, 0);
    let coded = coder.encode(&key, &signer, &ctx, 0, &plaintext).map_err(e)?;
    let client_total = ms(t);
    let proofs = (client_total - encrypt - erasure - commit).max(0.0);
    let msg = coded.message(0).ok_or("no cell for node 0")?;
    let t = Instant::now();
    coder.verify_message(0, &msg).map_err(e)?;
    let verify = ms(t);
    let cells: Vec<_> = (0..nodes - f).filter_map(|i| coded.message(i).map(|m| m.cell)).collect();
    let t = Instant::now();
    let (r, _) = coder.decode(&key, &coded.record, &cells);
    r.map_err(e)?;
    let decode = ms(t);
    let dims = plaintext.len() / 4;
    let models: Vec<Vec<f32>> = (0..clients).map(|c| (0..dims).map(|d| ((c * 31 + d) % 97) as f32).collect()).collect();
    let t = Instant::now();
    trimmed_mean(&models, (clients - 1) / 3).map_err(e)?;
    let aggregate = ms(t);
    let global = GlobalCoder::new(dims * 4, nodes, nodes - f, clients, clients - (clients - 1) / 3).map_err(e)?;
    let bytes: Vec<u8> = plaintext[..dims * 4].to_vec();
    let t = Instant::now();
    let rel = global.release(gridledger_core::Hash32::ZERO, 0, 1, &bytes).map_err(e)?;
    let release = ms(t);
    let t = Instant::now();
    global.mini_fragments(0, &rel.root, &rel.subfragments[0]).map_err(e)?;
    let second = ms(t);
    Ok(vec![encrypt, erasure, commit, proofs, verify, decode, aggregate, release, second])
}

impl Experiment for FlSteps {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Figs 7-4 to 7-7, §7.5.3–7.5.4"
    }
    fn measures(&self) -> &'static str {
        "measured ms per step (encrypt, erasure-encode, commit, cell proofs, verify, decode, trimmed mean, B2C codings) vs fragment size, K and C"
    }
    fn duration(&self) -> &'static str {
        "full: 7 rows (fragments of 256, 1,024 and 4,096 elements at K = 16, C = 50; K = 4 and 64; C = 10 and 200), \
         ≈ 30 s in a debug build on 2 cores (the seed's fragments of S/B up to \
         16 MB are not attempted, see why_differ); --quick: two small rows (64 and 256 elements, K = 4, C = 10), \
         ≈ 1 s"
    }
    fn why_differ(&self) -> &'static str {
        "The seed measured its steps with separate libraries (klauspost EC, PyCryptodome, PyMerkle, a custom PBPC) \
         on an Apple M2, for fragments of S/B with S up to 800 MB; we measure our own Rust implementation, one \
         thread, on this machine, for fragments of up to 4,096 field elements (127 kB) — the seed's fragments are \
         far larger, so only the growth with size, K and C is comparable. 'cell proofs' is the whole client \
         step minus its other parts (degree proof and FK20 over cells)."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        // Quick: two fragment sizes at one (K, C), so the growth it reports
        // is measured, not a row compared with itself.
        let (chart_k, chart_c) = if ctx.quick { (4, 10) } else { (16, 50) };
        let grid: Vec<(usize, usize, usize)> = if ctx.quick {
            vec![(64, chart_k, chart_c), (256, chart_k, chart_c)]
        } else {
            let mut g = Vec::new();
            for k in [256, 1024, 4096] {
                g.push((k, 16, 50));
            }
            for nodes in [4, 64] {
                g.push((1024, nodes, 50));
            }
            for clients in [10, 200] {
                g.push((1024, 16, clients));
            }
            g
        };
        ctx.progress.start(grid.len());
        let names = [
            "encrypt",
            "erasure encode",
            "commit",
            "cell proofs",
            "verify cell",
            "decode",
            "trimmed mean",
            "B2C first coding + root",
            "B2C second coding",
        ];
        let cols: Vec<&str> = ["elements", "kB", "K", "C"].into_iter().chain(names).collect();
        let mut table = Table::new(&cols);
        let mut by_size: Vec<Vec<(f64, f64)>> = vec![Vec::new(); names.len()];
        let mut rows = Vec::new();
        for &(k, nodes, clients) in &grid {
            ctx.progress.step(format!("{k} elements, K = {nodes}, C = {clients}"));
            let v = measure(k, nodes, clients).map_err(|e| ExperimentError::run(ID, e))?;
            let mut row = vec![
                k.to_string(),
                num((k * BYTES_PER_ELEMENT) as f64 / 1e3, 1),
                nodes.to_string(),
                clients.to_string(),
            ];
            row.extend(v.iter().map(|x| num(*x, 3)));
            table.row(row);
            if nodes == chart_k && clients == chart_c {
                for (i, x) in v.iter().enumerate() {
                    by_size[i].push((k as f64, *x));
                }
            }
            rows.push(json!({"elements": k, "nodes": nodes, "clients": clients, "ms": v}));
            ctx.progress.done();
        }
        ctx.progress.finish();
        let mut seed_table = Table::new(&["quantity", "seed", "source"]);
        seed_table.row(vec![
            "EC encoding at S = 800 MB, K = 200".into(),
            "≈ 0.3 s".into(),
            "§7.5.3, Fig 7-4(b)".into(),
        ]);
        seed_table.row(vec![
            "proof generation vs local training".into(),
            "≥ 8× smaller".into(),
            "§7.5.3, Fig 7-4(c, d)".into(),
        ]);
        seed_table.row(vec!["C3 dominated by".into(), "the trimmed mean".into(), "§7.5.4, Fig 7-7".into()]);
        let mut comparison = Table::new(&["quantity", "ours", "seed"]);
        let growth = |i: usize| {
            let s = &by_size[i];
            match (s.first(), s.last()) {
                (Some(a), Some(b)) if a.1 > 0.0 => b.1 / a.1,
                _ => f64::NAN,
            }
        };
        // The size ratio the growth is over (16× full, 4× quick).
        let ratio = match (by_size[0].first(), by_size[0].last()) {
            (Some(a), Some(b)) if a.0 > 0.0 => b.0 / a.0,
            _ => f64::NAN,
        };
        comparison.row(vec![
            format!("cell proofs: {}× the fragment → × time", num(ratio, 0)),
            num(growth(3), 1),
            "grows with S/B".into(),
        ]);
        comparison.row(vec![
            format!("erasure encode: {}× the fragment → × time", num(ratio, 0)),
            num(growth(1), 1),
            "small, grows with S".into(),
        ]);
        let all_positive = table.rows.iter().all(|r| r[4..].iter().all(|c| c.parse::<f64>().is_ok_and(|x| x >= 0.0)));
        let mut checks =
            vec![Check::new("every step ran and was timed", all_positive, format!("{} rows", table.rows.len()))];
        // A comparison of two timings: made on the full run (a release build),
        // not on --quick, whose debug timings on a loaded machine can order
        // two steps of similar cost either way.
        if !ctx.quick {
            checks.push(Check::new(
                "the commitment and proofs dominate the client's coding",
                by_size[3]
                    .iter()
                    .zip(&by_size[1])
                    .all(|(p, e)| p.1 + by_size[2].iter().find(|c| c.0 == p.0).map_or(0.0, |c| c.1) >= e.1),
                "commit + proofs ≥ erasure encoding at every size",
            ));
        }
        Ok(ExperimentResult {
            params: json!({"grid": grid, "one_thread": true}),
            chart: ChartSpec {
                title: format!("Figs 7-4 to 7-7: computation per step vs fragment size (K = {chart_k}, C = {chart_c})"),
                x_label: "fragment size (field elements of 31 bytes)".into(),
                y_label: "ms".into(),
                y_log: true,
                ..Default::default()
            },
            ours: names.iter().zip(by_size).map(|(n, p)| Series::new(*n, p)).collect(),
            seed: Vec::new(),
            table,
            seed_table,
            comparison,
            checks,
            raw: json!({ "rows": rows }),
            ..Default::default()
        })
    }
}
