//! Thesis Table 6-1 (§6.7.2): cost of the framework's cryptographic
//! operations on one 12×12 iteration's outputs.

use serde_json::json;

use super::market_model::crypto_costs;
use crate::result::{num, ratio, ChartKind, ChartSpec, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Table61;

const ID: &str = "market-table-6-1";
const SOURCE: &str = "seed 003, Table 6-1 (§6.7.2)";

impl Experiment for Table61 {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Table 6-1, §6.7.2"
    }
    fn measures(&self) -> &'static str {
        "seconds per encryption, decryption, signature and verification of one enclave's outputs (12×12 market)"
    }
    fn duration(&self) -> &'static str {
        "≈ 2 s full (release); --quick < 1 s"
    }
    fn why_differ(&self) -> &'static str {
        "The seed used 128-bit AES and 2048-bit RSA from PyCryptodome on an Apple M2; we use the workspace's \
         maintained equivalents (ChaCha20-Poly1305 for the outputs, BIP-340 Schnorr over secp256k1 for the \
         proofs) from Rust on this machine. Schnorr signs faster than RSA-2048 and verifies slower; the payload \
         is one 12×12 iteration's subproblem outputs (3·144 + rows values, 8 bytes each)."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let reps = if ctx.quick { 20 } else { 5_000 };
        let payload = 8 * (3 * 144 + 82 + 30);
        ctx.progress.start(1);
        let c = crypto_costs(payload, reps).map_err(|e| ExperimentError::run(ID, e))?;
        ctx.progress.done();
        ctx.progress.finish();
        let seed = [1.3e-5, 2.2e-5, 1.1e-3, 3.1e-4];
        let ours = [c.enc, c.dec, c.sign, c.verify];
        let names = ["encryption", "decryption", "signature generation", "signature verification"];
        let ours_prim = ["ChaCha20-Poly1305", "ChaCha20-Poly1305", "Schnorr secp256k1", "Schnorr secp256k1"];
        let seed_prim = ["AES-128", "AES-128", "RSA-2048", "RSA-2048"];
        let mut table = Table::new(&["operation", "primitive", "seconds"]);
        let mut seed_table = Table::new(&["operation", "primitive", "seconds", "source"]);
        let mut comparison = Table::new(&["operation", "ours (s)", "seed (s)", "ours / seed"]);
        for i in 0..4 {
            table.row(vec![names[i].into(), ours_prim[i].into(), format!("{:.2e}", ours[i])]);
            seed_table.row(vec![names[i].into(), seed_prim[i].into(), format!("{:.1e}", seed[i]), SOURCE.into()]);
            comparison.row(vec![
                names[i].into(),
                format!("{:.2e}", ours[i]),
                format!("{:.1e}", seed[i]),
                ratio(ours[i], seed[i]),
            ]);
        }
        let checks = vec![Check::new(
            "every operation measured",
            ours.iter().all(|v| v.is_finite() && *v > 0.0),
            format!("{reps} repetitions each"),
        )];
        let pts = |v: &[f64]| v.iter().enumerate().map(|(i, s)| (i as f64, s * 1e6)).collect::<Vec<_>>();
        Ok(ExperimentResult {
            params: json!({"payload_bytes": payload, "repetitions": reps}),
            chart: ChartSpec {
                title: "Table 6-1: cryptographic operation costs".into(),
                x_label: "encrypt, decrypt, sign, verify".into(),
                y_label: "µs per operation".into(),
                y_log: true,
                kind: ChartKind::Bars,
                ..Default::default()
            },
            ours: vec![Series::new("ours", pts(&ours))],
            seed: vec![Series::from_seed("seed", pts(&seed), SOURCE)],
            table,
            seed_table,
            comparison,
            checks,
            raw: json!({"ours_s": ours, "seed_s": seed, "digits": num(0.0, 0)}),
            ..Default::default()
        })
    }
}
