#!/usr/bin/env bash
# CTP-FL commitment costs beside c-kzg-4844, in one go on one machine
# (issue 16 item 6). First the two sides' run-by-run timings as JSON (min
# and median, wall clock and process CPU time): c-kzg's
# blob_to_kzg_commitment and compute_cells_and_kzg_proofs, then our commit
# and commit + all 128 cell proofs with FK20 shared among the machine's
# cores, then on the calling thread alone (--threads 1, as c-kzg runs);
# then our criterion bench for the same shapes (4096 elements; 128 cells of
# 64 points).
# Usage: peers/run-kzg-vs-c-kzg.sh [RUNS]   (taskset -c 0 for one core)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
(cd "$root/peers/c-kzg" && cargo build --release -q)
cd "$root"
cargo bench -p gridledger-fl --bench cells_timing --no-run -q
"$root/peers/c-kzg/target/release/gridledger-peer-c-kzg" --runs "$runs"
cargo bench -q -p gridledger-fl --bench cells_timing -- --runs "$runs"
cargo bench -q -p gridledger-fl --bench cells_timing -- --runs "$runs" --threads 1
"$root/peers/c-kzg/target/release/gridledger-peer-c-kzg" --runs "$runs"
cargo bench -p gridledger-fl --bench kzg -- 'kzg_commit_4096|kzg_open_one_4096|k4096_cells128$'
