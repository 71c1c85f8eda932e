#!/usr/bin/env bash
# CTP-FL commitment costs beside c-kzg-4844, in one go on one machine
# (issue 16 item 6): c-kzg's blob_to_kzg_commitment and
# compute_cells_and_kzg_proofs (JSON, medians), then our criterion bench for
# the same shapes (4096 elements; 128 cells of 64 points).
# Usage: peers/run-kzg-vs-c-kzg.sh [RUNS]   (taskset -c 0 for one core)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
(cd "$root/peers/c-kzg" && cargo build --release -q)
"$root/peers/c-kzg/target/release/gridledger-peer-c-kzg" --runs "$runs"
cd "$root"
cargo bench -p gridledger-fl --bench kzg -- 'kzg_commit_4096|kzg_open_one_4096|k4096_cells128$'
