//! Thesis Fig 5-5 (§5.6.2): the memory the BoB needs to verify CCTE
//! proofs — the latest κ_i headers of every external chain — against the
//! number of external chains N and κ, and what the external chains store
//! about other chains (nothing: the independence property).

use gridledger_ledger::state::contract_key;
use gridledger_xchain::bob::BOB_CONTRACT_ID;
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use serde_json::json;

use crate::result::{ratio, ChartSpec, Check, ExperimentResult, Series, Table};
use crate::{Experiment, ExperimentError, RunCtx};

pub struct Memory;

const ID: &str = "xchain-memory";
/// The seed's bytes per stored header (memory k × 510 × N).
const SEED_HEADER_BYTES: f64 = 510.0;

/// Bytes of the BoB contract's header store (keys and values).
fn header_store_bytes(m: &BobMbs) -> usize {
    let prefix = contract_key(BOB_CONTRACT_ID, b"h/");
    m.bob.chain().state().iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(k, v)| k.len() + v.len()).sum()
}

/// Bytes an external chain stores outside its own accounts.
fn foreign_bytes(m: &BobMbs) -> usize {
    m.externals
        .values()
        .flat_map(|c| {
            c.chain().state().iter().filter(|(k, _)| k.first() != Some(&0x01)).map(|(k, v)| k.len() + v.len())
        })
        .sum()
}

impl Experiment for Memory {
    fn id(&self) -> &'static str {
        ID
    }
    fn seed_ref(&self) -> &'static str {
        "seed 003 Fig 5-5, p. 139"
    }
    fn measures(&self) -> &'static str {
        "bytes the BoB keeps to verify external chains (latest κ headers each) against N and κ; bytes external chains keep about others"
    }
    fn duration(&self) -> &'static str {
        "full ≈ 30 s, quick ≈ 3 s"
    }
    fn why_differ(&self) -> &'static str {
        "Our header is 193 bytes (chain id, height, parent, timestamp, proposer key, three roots, gas, count) \
         stored under a 13-byte key plus a 4-byte tip record per chain, where the seed counts 510 bytes per \
         header; both grow as κ × N, ours with a smaller constant. The seals (quorum certificates) are checked \
         when a header is relayed and not kept. On κ = 4 the BoB keeps 8 headers a chain, not 4: its relay \
         takes up to 4 headers a block (chains up to 4 times its block rate) and keeps twice that, so every \
         header stays provable for a whole block."
    }

    fn run(&self, ctx: &RunCtx) -> Result<ExperimentResult, ExperimentError> {
        let ns: Vec<usize> = if ctx.quick { vec![2, 4] } else { vec![2, 4, 8, 16] };
        let kappas: Vec<u32> = if ctx.quick { vec![4] } else { vec![4, 16] };
        ctx.progress.start(ns.len() * kappas.len());
        let mut table =
            Table::new(&["N", "κ", "BoB header store (bytes)", "per header", "external chains' foreign state"]);
        let mut comparison = Table::new(&["N", "κ", "ours (bytes)", "seed 510κN", "ours / seed"]);
        let mut ours = Vec::new();
        let mut checks = Vec::new();
        let mut raw = Vec::new();
        for &kappa in &kappas {
            let mut pts = Vec::new();
            for &n in &ns {
                ctx.progress.step(format!("N = {n}, κ = {kappa}"));
                let dir = tempfile::tempdir().map_err(|e| ExperimentError::run(ID, e))?;
                let spec = MbsSpec { chains: n, kappa, ..MbsSpec::default() };
                let mut m = BobMbs::open(dir.path(), spec).map_err(|e| ExperimentError::run(ID, e))?;
                // The BoB keeps `kept_headers` ≥ κ headers a chain (more
                // on a small κ, attack R15-3): fill that window.
                let kept = m.spec.kept_headers();
                m.ticks(kept + 3).map_err(|e| ExperimentError::run(ID, e))?;
                let bytes = header_store_bytes(&m);
                let foreign = foreign_bytes(&m);
                let headers = kept as usize * n;
                table.row(vec![
                    n.to_string(),
                    kappa.to_string(),
                    bytes.to_string(),
                    format!("{:.1}", bytes as f64 / headers as f64),
                    foreign.to_string(),
                ]);
                let seed = SEED_HEADER_BYTES * kappa as f64 * n as f64;
                comparison.row(vec![
                    n.to_string(),
                    kappa.to_string(),
                    bytes.to_string(),
                    format!("{seed:.0}"),
                    ratio(bytes as f64, seed),
                ]);
                checks.push(Check::new(
                    format!("N = {n}, κ = {kappa}: external chains store nothing about other chains"),
                    foreign == 0,
                    format!("{foreign} bytes"),
                ));
                pts.push((n as f64, bytes as f64));
                raw.push(json!({ "n": n, "kappa": kappa, "bytes": bytes, "foreign_bytes": foreign }));
                ctx.progress.done();
            }
            checks.push(Check::new(
                format!("κ = {kappa}: the header store grows linearly in N"),
                pts.windows(2).all(|w| {
                    let per = |p: (f64, f64)| p.1 / p.0;
                    (per(w[0]) - per(w[1])).abs() <= 0.05 * per(w[0])
                }),
                format!("{pts:?}"),
            ));
            ours.push(Series::new(format!("BoB header store, κ = {kappa}"), pts));
        }
        ctx.progress.finish();
        let seed: Vec<Series> = kappas
            .iter()
            .map(|&k| {
                Series::from_seed(
                    format!("BoB memory 510κN, κ = {k}"),
                    ns.iter().map(|&n| (n as f64, SEED_HEADER_BYTES * k as f64 * n as f64)).collect(),
                    "seed 003 §5.6.2 p. 137 (memory k × 510 × N) and Fig 5-5",
                )
            })
            .collect();
        let mut seed_table = Table::new(&["quantity", "seed", "source"]);
        seed_table.row(vec!["BoB memory, CCTE".into(), "510 × κ × N bytes".into(), "seed 003 §5.6.2 p. 137".into()]);
        seed_table.row(vec![
            "memory on external chains".into(),
            "0 (independence)".into(),
            "seed 003 §5.6.4 p. 141".into(),
        ]);
        Ok(ExperimentResult {
            params: json!({ "ns": ns, "kappas": kappas, "validators": 4 }),
            chart: ChartSpec {
                title: "Fig 5-5: BoB memory for verification against N".into(),
                x_label: "external chains N".into(),
                y_label: "bytes of stored headers".into(),
                ..Default::default()
            },
            ours,
            seed,
            table,
            seed_table,
            comparison,
            checks,
            raw: json!({ "runs": raw }),
            ..Default::default()
        })
    }
}
