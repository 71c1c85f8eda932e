//! c-kzg-4844's commitment and cell-proof timings on a 4096-element blob,
//! for `cargo bench -p gridledger-fl --bench kzg` to be read beside.
//!
//! `gridledger-peer-c-kzg [--runs N]` prints one JSON object: the minimum
//! and median milliseconds of `blob_to_kzg_commitment` and of
//! `compute_cells_and_kzg_proofs` (128 cells of 64 points, FK20), over the
//! same kind of data as our bench (31 random bytes per 32-byte element),
//! both as wall-clock time and as the process's CPU time (which a machine
//! shared with other work inflates far less than the wall clock).

use c_kzg::{ethereum_kzg_settings, Blob};
use rand::{RngCore, SeedableRng};
use std::time::Instant;

/// `(min, median)`.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[0], v[v.len() / 2])
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

/// Wall and CPU milliseconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let (t, c) = (Instant::now(), cpu_ms());
    let out = f();
    (t.elapsed().as_secs_f64() * 1e3, cpu_ms() - c, out)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // Precomputation 0: c-kzg's default tables (as loaded by most clients).
    let settings = ethereum_kzg_settings(0);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let mut bytes = vec![0u8; 4096 * 32];
    for chunk in bytes.chunks_mut(32) {
        // Big-endian field elements with a zero top byte: always canonical.
        rng.fill_bytes(&mut chunk[1..]);
    }
    let blob = Blob::from_bytes(&bytes).expect("canonical blob");
    let (mut commit, mut commit_cpu, mut cells, mut cells_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (w, c, out) = timed(|| settings.blob_to_kzg_commitment(&blob).expect("commit"));
        std::hint::black_box(out);
        commit.push(w);
        commit_cpu.push(c);
        let (w, c, out) = timed(|| settings.compute_cells_and_kzg_proofs(&blob).expect("cells"));
        std::hint::black_box(out);
        cells.push(w);
        cells_cpu.push(c);
    }
    let (c, cc, p, pc) = (stats(commit), stats(commit_cpu), stats(cells), stats(cells_cpu));
    println!(
        "{{\"peer\":\"c-kzg-4844\",\"elements\":4096,\"cells\":128,\"runs\":{runs},\"commit_ms_min\":{:.3},\"commit_ms_median\":{:.3},\"commit_cpu_ms_min\":{:.3},\"compute_cells_and_kzg_proofs_ms_min\":{:.3},\"compute_cells_and_kzg_proofs_ms_median\":{:.3},\"compute_cells_and_kzg_proofs_cpu_ms_min\":{:.3},\"compute_cells_and_kzg_proofs_cpu_ms_median\":{:.3}}}",
        c.0, c.1, cc.0, p.0, p.1, pc.0, pc.1
    );
}
