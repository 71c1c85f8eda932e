#!/usr/bin/env bash
# Runs `gridledger bench lbft` over policies, flooding and replica counts
# and writes one JSON array (per-replica digests dropped) to
# results/bench-lbft.json. Build first: cargo build --release -p gridledger-cli
# Usage: scripts/bench-lbft.sh [BIN] [SECONDS] [RATE] [FLOOD] [REPLICAS...]
set -euo pipefail
bin=${1:-target/release/gridledger}
secs=${2:-10}
rate=${3:-8000}
flood=${4:-8000}
shift $(( $# < 4 ? $# : 4 ))
replicas=("$@")
[ ${#replicas[@]} -eq 0 ] && replicas=(4 7)
out=${OUT:-results/bench-lbft.json}
tmp=$(mktemp)
for n in "${replicas[@]}"; do
  for policy in tbg hsm random; do
    for f in 0 "$flood"; do
      "$bin" bench lbft --replicas "$n" --policy "$policy" --rate "$rate" --flood "$f" --seconds "$secs" --json \
        | python3 -c 'import json,sys; v=json.load(sys.stdin); [r.pop("epoch_digests", None) for r in v["per_replica"]]; print(json.dumps(v))' \
        >> "$tmp"
      tail -1 "$tmp" | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["replicas"], v["policy"], "flood", v["flood_tx_per_s"], "tx/s", round(v["delivered_unique_tx_per_s"]), "p50", v["latency_ms"]["p50"], "p99", v["latency_ms"]["p99"], "B/tx", round(v["bytes_sent_per_delivered_tx"]), "load", v["load_average"])' >&2
    done
  done
done
python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in open(sys.argv[1])], indent=1))' "$tmp" > "$out"
rm -f "$tmp"
echo "wrote $out" >&2
