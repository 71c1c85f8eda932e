#!/usr/bin/env bash
# Runs our leaderless BFT (`gridledger bench lbft`) and aleph-bft (the
# driver in peers/aleph-bft) one after the other on this machine, with the
# same replicas, offered load, duration and 300-byte transactions, and
# prints both JSON reports and the ratios (ours / aleph-bft).
#
#   peers/run-lbft-vs-aleph.sh [--replicas 4] [--rate 400000] [--seconds 10] [--opaque] [--batch 4000] [--pipeline K]
#
# --pipeline K goes to ours only (epochs proposed ahead; aleph-bft's DAG
# has no such knob).
#
# Ours runs twice: as it is (each log record fsynced before its messages
# leave: crash-safe) and, as an extra line, with --no-fsync (the same
# records, never synced: NOT crash-safe), because the aleph-bft driver
# keeps no durable state and syncs nothing; "ours_no_fsync" and its ratio
# compare on those equal terms. The first is the one to quote.
#
# Builds both in release first (the peer is its own Cargo workspace and
# is never built by the project's test suite).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
replicas=4 rate=400000 seconds=10 batch=4000 opaque="" pipeline=()
while [ $# -gt 0 ]; do
  case "$1" in
    --replicas) replicas="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --opaque) opaque="--opaque"; shift ;;
    --pipeline) pipeline=(--pipeline "$2"); shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
(cd "$root" && cargo build --release -q -p gridledger-cli)
(cd "$here/aleph-bft" && cargo build --release -q)
common=(--replicas "$replicas" --rate "$rate" --seconds "$seconds" --batch "$batch" $opaque --json)
# Ours with the FIFO batch source and τ = 1: each transaction goes to one
# replica, which proposes it, as the aleph-bft driver feeds each member its
# own clients' transactions (τ > 1 would make ours order each one τ times).
load() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo null; }
l0="$(load)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$root/target/release/gridledger" bench lbft --policy fifo --tau 1 "${pipeline[@]}" "${common[@]}" >"$tmp/ours.json"
l1="$(load)"
"$here/aleph-bft/target/release/gridledger-peer-aleph" bench "${common[@]}" >"$tmp/theirs.json"
l2="$(load)"
# The extra line: ours without fsync (NOT crash-safe), as aleph-bft's driver.
"$root/target/release/gridledger" bench lbft --policy fifo --tau 1 --no-fsync "${pipeline[@]}" "${common[@]}" >"$tmp/ours_nofsync.json"
l3="$(load)"
# The reports go through files: a long run's JSON (per-epoch digests) is
# larger than one command-line argument may be.
python3 - "$tmp/ours.json" "$tmp/theirs.json" "$l0" "$l1" "$l2" "$tmp/ours_nofsync.json" "$l3" <<'PY'
import json, sys
def read(path):
    with open(path) as f:
        return json.load(f)
ours, theirs, ours_nofsync = read(sys.argv[1]), read(sys.argv[2]), read(sys.argv[6])
assert ours.get("crash_safe") is True and ours_nofsync.get("crash_safe") is False
loads = {"before_ours": sys.argv[3], "after_ours": sys.argv[4], "after_aleph": sys.argv[5],
         "after_ours_no_fsync": sys.argv[7]}
# Per-replica figures stay (CPU split, fsyncs, signature checks), without
# the long per-epoch digest lists.
for r in (ours, theirs, ours_nofsync):
    r["per_replica"] = [
        {k: v for k, v in p.items() if k not in ("epoch_digests", "batch_digests")}
        for p in r.get("per_replica", [])
    ]
def ratio(a, b):
    return None if not b else round(a / b, 3)
def ratios(a, b):
    return {
        "delivered_unique_tx_per_s": ratio(a["delivered_unique_tx_per_s"], b["delivered_unique_tx_per_s"]),
        "latency_p50": ratio(a["latency_ms"]["p50"], b["latency_ms"]["p50"]),
        "latency_p99": ratio(a["latency_ms"]["p99"], b["latency_ms"]["p99"]),
        "bytes_sent_per_delivered_tx": ratio(a["bytes_sent_per_delivered_tx"], b["bytes_sent_per_delivered_tx"]),
    }
load = open("/proc/loadavg").read().split()[0] if __import__("os").path.exists("/proc/loadavg") else None
print(json.dumps({
    "load_average_after": load,
    "load_average": loads,
    "ours": ours,
    "aleph_bft": theirs,
    "ratio_ours_over_aleph": ratios(ours, theirs),
    # Comparison mode: ours without fsync, NOT crash-safe (aleph-bft's
    # driver syncs nothing either). Not the figure to quote as ours.
    "ours_no_fsync": ours_nofsync,
    "ratio_ours_no_fsync_over_aleph": ratios(ours_nofsync, theirs),
}, indent=2))
PY
