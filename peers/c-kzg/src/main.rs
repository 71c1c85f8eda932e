//! c-kzg-4844's commitment and cell-proof timings on a 4096-element blob,
//! for `cargo bench -p gridledger-fl --bench kzg` to be read beside.
//!
//! `gridledger-peer-c-kzg [--runs N]` prints one JSON object: the median
//! milliseconds of `blob_to_kzg_commitment` and of
//! `compute_cells_and_kzg_proofs` (128 cells of 64 points, FK20), over the
//! same kind of data as our bench (31 random bytes per 32-byte element).

use c_kzg::{ethereum_kzg_settings, Blob};
use rand::{RngCore, SeedableRng};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
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
    let mut commit = Vec::new();
    let mut cells = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let c = settings.blob_to_kzg_commitment(&blob).expect("commit");
        commit.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(c);
        let t = Instant::now();
        let p = settings.compute_cells_and_kzg_proofs(&blob).expect("cells");
        cells.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(p);
    }
    println!(
        "{{\"peer\":\"c-kzg-4844\",\"elements\":4096,\"cells\":128,\"runs\":{runs},\"commit_ms_median\":{:.3},\"compute_cells_and_kzg_proofs_ms_median\":{:.3}}}",
        median(commit),
        median(cells)
    );
}
