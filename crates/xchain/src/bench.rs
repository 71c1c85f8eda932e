//! `gridledger bench xchain`: the performance targets, measured
//! (never asserted in tests) and printed as JSON.
//!
//! - SC_MPV's Merkle-proof check (`Val_proof` against a stored header) on
//!   one core, over the proofs of a full 300-transaction block;
//! - one CCTE between two embedded external chains, wall time;
//! - one CCDI process (6 items on 3 chains) and one migration, wall time;
//! - 2f+1 of N threshold shares combined and the signature verified.

use gridledger_core::merkle::{MerkleProof, MerkleTree};
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::{BlockHeader, SignedTransaction};
use serde_json::{json, Value};
use std::time::Instant;

use crate::bob::verify_inclusion;
use crate::ccdi::CcdiApp;
use crate::ccdi_run::{CcdiAttack, CcdiUser, UserBehaviour};
use crate::mbs::{Behaviour, BobMbs, MbsError, MbsSpec, SwapRequest};
use crate::threshold::{BobCommittee, Statement, STATEMENT_DOMAIN};

#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Merkle proofs to check.
    pub proofs: usize,
    /// CCTEs to time (each on fresh chains).
    pub swaps: usize,
    /// Threshold committee size N (2f+1 shares combined).
    pub members: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self { proofs: 300_000, swaps: 5, members: 31 }
    }
}

/// CPU time this thread has run, in ns (Linux `schedstat`; `None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// CPU time all of this process's threads have run, in ns (Linux; `None`
/// elsewhere): blst spreads small multi-scalar multiplications over its
/// own thread pool, which the calling thread's figure does not see.
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let s = std::fs::read_to_string(path).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The 1-minute load average (Linux; `None` elsewhere): the figures of a
/// shared machine mean little without it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Wall and CPU milliseconds of `runs` calls of `f`.
struct Timing {
    median_ms: f64,
    min_ms: f64,
    /// Mean CPU time per call of the calling thread.
    cpu_ms: Option<f64>,
    /// Mean CPU time per call of every thread of the process: what the
    /// call costs, whatever the load.
    process_cpu_ms: Option<f64>,
}

impl Timing {
    fn json(&self) -> Value {
        json!({
            "median_ms": self.median_ms,
            "min_ms": self.min_ms,
            "thread_cpu_ms": self.cpu_ms,
            "process_cpu_ms": self.process_cpu_ms,
        })
    }
}

fn time_ms<E>(runs: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<Timing, E> {
    let mut wall = Vec::with_capacity(runs);
    let cpu0 = thread_cpu_ns();
    let all0 = process_cpu_ns();
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        wall.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6 / runs.max(1) as f64),
        _ => None,
    };
    let all = match (all0, process_cpu_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6 / runs.max(1) as f64),
        _ => None,
    };
    let min_ms = wall.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(Timing { median_ms: median(wall), min_ms, cpu_ms: cpu, process_cpu_ms: all })
}

/// 2f+1 of N threshold shares combined and the signature verified, four
/// ways: `combine` + `verify` (Lagrange coefficients per call, one G1
/// multi-scalar multiplication, one pairing check with the group key's
/// lines cached); the same with the coefficients precomputed for the
/// signer set; what a relay node runs on shares of unknown validity
/// (`combine_raw`: optimistic combine, one verification); and one batch
/// check of the 2f+1 shares (the fallback when the optimistic path fails),
/// beside checking them one by one.
fn threshold_bench(members: usize) -> Result<Value, MbsError> {
    let err = |e: gridledger_threshold::ThresholdError| MbsError::Spec(e.to_string());
    let c = BobCommittee::dev(members, 9).map_err(err)?;
    let st = Statement {
        instance: Default::default(),
        purpose: "bench".into(),
        chain: 101,
        sequence: 0,
        payload: vec![7; 64],
    };
    let msg = st.bytes();
    let t_needed = c.set.threshold();
    let idx: Vec<usize> = (0..t_needed).collect();
    let shares = c.shares_from(&idx, &st);
    let runs = 40;
    let load_before = load_average();
    let combine_verify = time_ms(runs, || {
        let sig = c.set.combine(&shares)?;
        c.set.verify(STATEMENT_DOMAIN, &msg, &sig)
    })
    .map_err(err)?;
    // As before the group key's lines were cached: `GroupKey::verify`
    // computes the Miller-loop lines of −pk on every call.
    let uncached = time_ms(runs, || {
        let sig = c.set.combine(&shares)?;
        c.set.group_key().verify(STATEMENT_DOMAIN, &msg, &sig)
    })
    .map_err(err)?;
    let set = c.set.signer_set(&idx).map_err(err)?;
    let only: Vec<_> = shares.iter().map(|(_, s)| *s).collect();
    let precomputed = time_ms(runs, || {
        let sig = set.combine(&only)?;
        c.set.verify(STATEMENT_DOMAIN, &msg, &sig)
    })
    .map_err(err)?;
    let raw = time_ms(runs, || c.combine_raw(STATEMENT_DOMAIN, &msg, &shares).map(|_| ())).map_err(err)?;
    let batch = time_ms(runs, || c.set.verify_shares(STATEMENT_DOMAIN, &msg, &shares)).map_err(err)?;
    let each = time_ms(4, || shares.iter().try_for_each(|(i, s)| c.set.verify_share(*i, STATEMENT_DOMAIN, &msg, s)))
        .map_err(err)?;
    Ok(json!({
        "members": members,
        "shares_combined": t_needed,
        "combine_and_verify_median_ms": combine_verify.median_ms,
        "combine_and_verify": combine_verify.json(),
        "combine_and_verify_uncached_key_lines": uncached.json(),
        "precomputed_lagrange_combine_and_verify": precomputed.json(),
        "combine_raw": raw.json(),
        "batch_verify_shares": batch.json(),
        "verify_shares_one_by_one": each.json(),
        "load_average_1m": [load_before, load_average()],
        "target_ms": 5.0,
    }))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A full block's transactions, its header fields and every proof.
fn block_of(n: usize) -> (BlockHeader, Vec<SignedTransaction>, Vec<MerkleProof>) {
    let txs: Vec<SignedTransaction> = (0..n)
        .map(|i| transfer(&dev_key(i % 16), 101, i as u64, dev_key(99).address(), Amount(1), Amount(1)))
        .collect();
    let tree = MerkleTree::new(&txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
    let proofs = (0..n).filter_map(|i| tree.proof(i)).collect();
    let header = BlockHeader {
        chain_id: 101,
        height: 1,
        parent: Default::default(),
        timestamp: 0,
        proposer: dev_key(0).public(),
        tx_root: tree.root(),
        receipt_root: Default::default(),
        state_root: Default::default(),
        gas_used: 0,
        tx_count: n as u32,
    };
    (header, txs, proofs)
}

pub fn run(cfg: &BenchConfig) -> Result<Value, MbsError> {
    // SC_MPV on one core.
    let (header, txs, proofs) = block_of(300);
    let t = Instant::now();
    let mut ok = 0usize;
    for i in 0..cfg.proofs {
        let k = i % txs.len();
        ok += usize::from(verify_inclusion(&header, &txs[k], &proofs[k]));
    }
    let secs = t.elapsed().as_secs_f64();
    let mpv = json!({
        "proofs": cfg.proofs,
        "valid": ok,
        "block_txs": txs.len(),
        "proofs_per_s_one_core": cfg.proofs as f64 / secs,
        "target_proofs_per_s": 20_000,
    });
    // One CCTE between two embedded chains.
    let mut swap_s = Vec::new();
    let mut setup_s = Vec::new();
    for n in 0..cfg.swaps {
        let dir = tempfile::tempdir().map_err(|e| MbsError::Missing(format!("temporary directory: {e}")))?;
        let t = Instant::now();
        let mut m = BobMbs::open(dir.path(), MbsSpec::default())?;
        let p = dev_key(7);
        for c in m.chain_ids() {
            m.provide_liquidity(&p, c, 1_000_000)?;
        }
        m.provide_token_b(&p, 1_000_000)?;
        m.deposit_token_b(&dev_key(0), 1_000_000)?;
        m.deposit_token_b(&dev_key(1), 1_000_000)?;
        setup_s.push(t.elapsed().as_secs_f64());
        let req = SwapRequest {
            sender: dev_key(0),
            receiver: dev_key(1),
            chain_i: m.chain_ids()[0],
            chain_j: m.chain_ids()[1],
            x_j: 1_000,
            salt: n as u64,
        };
        let t = Instant::now();
        let r = m.swap(&req, Behaviour::Honest)?;
        swap_s.push(t.elapsed().as_secs_f64());
        if !r.record.complete {
            return Err(MbsError::Missing("a benchmark swap did not settle".into()));
        }
    }
    let swap = json!({
        "swaps": cfg.swaps,
        "median_s": median(swap_s.clone()),
        "max_s": swap_s.iter().copied().fold(0.0, f64::max),
        "setup_median_s": median(setup_s),
        "target_s": 1.0,
        "what": "CCT to BoB confirmation: Phase 1, κ̄ wait, Phase 2, proofs; every epoch seals a block on 2 external chains and the BoB",
    });
    // One CCDI process (6 items on 3 chains, Case 1) and one migration.
    let mut ccdi_s = Vec::new();
    let mut migrate_s = Vec::new();
    for n in 0..cfg.swaps {
        let dir = tempfile::tempdir().map_err(|e| MbsError::Missing(format!("temporary directory: {e}")))?;
        let mut m = BobMbs::open(dir.path(), MbsSpec { chains: 3, ccdi: true, kappa: 4, ..MbsSpec::default() })?;
        let ids = m.chain_ids();
        let mut users = Vec::new();
        for i in 0..6 {
            let (key, chain) = (dev_key(i), ids[i % 3]);
            let item = m.create_item(chain, &key, &format!("b{i}"), 3 * i as u64)?;
            users.push(CcdiUser { key, chain, item, behaviour: UserBehaviour::Honest });
        }
        let t = Instant::now();
        let r = m.run_ccdi(CcdiApp::Battle, &users, &CcdiAttack::default(), 1_000, 1, n as u64)?;
        ccdi_s.push(t.elapsed().as_secs_f64());
        if !r.case1 {
            return Err(MbsError::Missing("a benchmark CCDI process did not finish in Case 1".into()));
        }
        let t = Instant::now();
        m.migrate(&dev_key(0), ids[0], users[0].item, ids[1], 1_000, 100 + n as u64)?;
        migrate_s.push(t.elapsed().as_secs_f64());
    }
    let ccdi = json!({
        "processes": cfg.swaps,
        "items": 6,
        "chains": 3,
        "median_s": median(ccdi_s),
        "migration_median_s": median(migrate_s),
        "what": "registration, Phase 1 locks, Phase 2 CCTs, Phase 3 one threshold-signed settlement per chain, until final",
    });
    let threshold = threshold_bench(cfg.members)?;
    Ok(json!({ "sc_mpv": mpv, "ccte_swap": swap, "ccdi_process": ccdi, "threshold": threshold }))
}
