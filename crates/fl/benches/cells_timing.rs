//! Commit plus every cell proof of one 4,096-element fragment, timed run by
//! run and printed as one JSON object in the form of `peers/c-kzg`'s
//! (`gridledger-peer-c-kzg`): the minimum and median milliseconds of our
//! `commit` and of `commit + prove_cells` (128 cells of 64 points, FK20 over
//! cells, tables built per setup outside the timing), as wall-clock time and
//! as the process's CPU time (all threads), for `peers/run-kzg-vs-c-kzg.sh`
//! to set beside c-kzg's `blob_to_kzg_commitment` and
//! `compute_cells_and_kzg_proofs`.
//!
//! With `--nodes K` the code is the one CTP-FL's coder uses for K nodes
//! (`CellCode::for_nodes` with threshold K − 2⌊(K−1)/3⌋: one cell per node,
//! rounded up to a power of two) instead of c-kzg's 128 cells of 64 points,
//! and the fragment's degree proof (part of every upload record) is timed
//! too: `commit_degree_and_all_cell_proofs_*` is what one client's fragment
//! costs in the protocol.
//!
//! `cargo bench -p gridledger-fl --bench cells_timing -- [--runs N] [--threads T] [--nodes K]`
//! (`--threads 1`: the FK20 steps on the calling thread only, as c-kzg runs;
//! the commitment's Pippenger is blst's and uses every core it is given —
//! run under `taskset -c 0` for one core throughout).

use blstrs::Scalar;
use gridledger_fl::cells::{CellCode, CellProver};
use gridledger_fl::kzg::Kzg;
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<usize> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|s| s.parse().ok())
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU time of the whole process in ms (`CLOCK_PROCESS_CPUTIME_ID`, Linux).
fn cpu_ms() -> f64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; clock 2 is CLOCK_PROCESS_CPUTIME_ID.
    unsafe { clock_gettime(2, &mut ts) };
    ts.sec as f64 * 1e3 + ts.nsec as f64 / 1e6
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = arg(&args, "--runs").unwrap_or(10).max(1);
    let threads = arg(&args, "--threads");
    let k = 4096;
    let kzg = Kzg::insecure_from_seed(k, 42);
    // 31 pseudo-random bytes per element, as the criterion bench and the peer.
    let bytes: Vec<u8> = {
        use rand::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let mut b = vec![0u8; k * gridledger_fl::field::BYTES_PER_ELEMENT];
        rng.fill_bytes(&mut b);
        b
    };
    let coeffs: Vec<Scalar> = gridledger_fl::field::bytes_to_scalars(&bytes);
    let nodes = arg(&args, "--nodes");
    let code = match nodes {
        Some(n) => CellCode::for_nodes(k, n, n - 2 * (n.saturating_sub(1) / 3)).expect("code"),
        None => CellCode::new(k, 2 * k, 128).expect("code"),
    };
    let mut prover = CellProver::new(&kzg, code.cell_size(), k).expect("prover");
    if let Some(t) = threads {
        prover.set_threads(t);
    }
    let (mut commit, mut commit_cpu, mut total, mut total_cpu) = (vec![], vec![], vec![], vec![]);
    let (mut with_degree, mut with_degree_cpu) = (vec![], vec![]);
    for _ in 0..runs {
        let (t, c0) = (Instant::now(), cpu_ms());
        let c = kzg.commit(&coeffs).expect("commit");
        let (tc, cc) = (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c0);
        let p = prover.prove_cells(&code, &coeffs).expect("cells");
        total.push(t.elapsed().as_secs_f64() * 1e3);
        total_cpu.push(cpu_ms() - c0);
        commit.push(tc);
        commit_cpu.push(cc);
        let (t2, c2) = (Instant::now(), cpu_ms());
        let d = kzg.prove_degree(&coeffs, k).expect("degree proof");
        with_degree.push(total.last().copied().unwrap_or(0.0) + t2.elapsed().as_secs_f64() * 1e3);
        with_degree_cpu.push(total_cpu.last().copied().unwrap_or(0.0) + cpu_ms() - c2);
        std::hint::black_box((c, p, d));
    }
    let (c, cc, t, tc) = (stats(commit), stats(commit_cpu), stats(total), stats(total_cpu));
    let (d, dc) = (stats(with_degree), stats(with_degree_cpu));
    println!(
        "{{\"side\":\"gridledger-fl\",\"elements\":{k},\"nodes\":{},\"cells\":{},\"cell_points\":{},\"commit_degree_and_all_cell_proofs_ms_median\":{:.3},\"commit_degree_and_all_cell_proofs_cpu_ms_median\":{:.3},\"runs\":{runs},\"fk20_threads\":{},\"commit_ms_min\":{:.3},\"commit_ms_median\":{:.3},\"commit_cpu_ms_min\":{:.3},\"commit_and_all_cell_proofs_ms_min\":{:.3},\"commit_and_all_cell_proofs_ms_median\":{:.3},\"commit_and_all_cell_proofs_cpu_ms_min\":{:.3},\"commit_and_all_cell_proofs_cpu_ms_median\":{:.3}}}",
        nodes.map_or("null".to_string(), |n| n.to_string()),
        code.cells(),
        code.cell_size(),
        d.1,
        dc.1,
        prover.threads(),
        c.0, c.1, cc.0, t.0, t.1, tc.0, tc.1
    );
}
