#!/usr/bin/env bash
# A multi-host testnet on one machine: each validator in its own Linux network
# namespace with its own address (10.77.0.<i+1>), all joined by a bridge that
# lives in a further namespace (the "hub"), so nothing is added to the host's
# own network and no traffic leaves the machine. Needs root (or CAP_NET_ADMIN).
#
#   scripts/netns-testnet.sh GRIDLEDGER_BIN [VALIDATORS]
#
# Runs a partition scenario and prints one JSON line:
#   1. all validators commit a transfer;
#   2. validator N-1's link is taken down (`ip link set ... down` on its bridge
#      port): the other N-1 >= 2f+1 keep committing, N-1 falls behind;
#   3. the link comes back: N-1 catches up, and every validator holds the
#      same block hash at every height (agreement);
#   4. every validator's inbound peer lanes drain to zero (nothing leaked).
# Exit 0 on success, 1 on failure, 77 when namespaces cannot be created
# (the reason is printed). KEEP=1 leaves namespaces, processes and files.
set -euo pipefail

BIN=$(readlink -f "${1:?usage: $0 GRIDLEDGER_BIN [VALIDATORS]}")
N=${2:-4}
TAG=gl$$
HUB=$TAG-hub
DIR=$(mktemp -d -t netns-testnet.XXXXXX)
RPC_PORT=8645
P2P_PORT=9645
PIDS=()

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; tail -n 20 "$DIR"/validator-*/node.log >&2 || true; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
command -v curl >/dev/null || skip "curl is not installed"
command -v jq >/dev/null || skip "jq is not installed"
ip netns add "$HUB" 2>/dev/null || skip "cannot create a network namespace here"

cleanup() {
  [ "${KEEP:-0}" = 1 ] && { echo "kept: $DIR, namespaces $TAG-*" >&2; return; }
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in $(seq 0 $((N - 1))); do ip netns del "$TAG-v$i" 2>/dev/null || true; done
  ip netns del "$HUB" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

addr() { echo "10.77.0.$(($1 + 1))"; }
url() { echo "http://$(addr "$1"):$((RPC_PORT + $1))"; }
hub() { ip netns exec "$HUB" "$@"; }

ip -n "$HUB" link set lo up
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" addr add 10.77.0.254/24 dev br0
ip -n "$HUB" link set br0 up
for i in $(seq 0 $((N - 1))); do
  ns=$TAG-v$i
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  # Both ends are created inside their namespaces: nothing touches the host's.
  ip link add "h$i" netns "$HUB" type veth peer name eth0 netns "$ns"
  ip -n "$HUB" link set "h$i" master br0 up
  ip -n "$ns" addr add "$(addr "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
done

"$BIN" testnet --validators "$N" --dir "$DIR" --no-start --rpc-port $RPC_PORT --p2p-port $P2P_PORT >/dev/null
for i in $(seq 0 $((N - 1))); do
  cfg=$DIR/validator-$i/node.toml
  for j in $(seq 0 $((N - 1))); do
    sed -i "s/127\.0\.0\.1:$((P2P_PORT + j))\b/$(addr "$j"):$((P2P_PORT + j))/g; s/127\.0\.0\.1:$((RPC_PORT + j))\b/$(addr "$j"):$((RPC_PORT + j))/g" "$cfg"
  done
  grep -q "$(addr "$i"):$((RPC_PORT + i))" "$cfg" || fail "config $cfg was not rewritten"
  ip netns exec "$TAG-v$i" "$BIN" node --config "$cfg" >"$DIR/validator-$i/node.log" 2>&1 &
  PIDS+=($!)
done

rpc() { # rpc I METHOD PARAMS -> result JSON
  hub curl -s --max-time 5 -H 'content-type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "$(url "$1")" | jq -c '.result'
}
height() { rpc "$1" gl_chainInfo '[]' | jq -r '.height // empty' 2>/dev/null || true; }
wait_until() { # wait_until SECONDS CMD...
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}
all_up() { for i in $(seq 0 $((N - 1))); do [ -n "$(height "$i")" ] || return 1; done; }
at_least() { # at_least H I...
  local h=$1; shift
  for i in "$@"; do local x; x=$(height "$i"); [ -n "$x" ] && [ "$x" -ge "$h" ] || return 1; done
}
height_inside() { # the height as validator $1 sees it, asked from inside its own namespace
  ip netns exec "$TAG-v$1" curl -s --max-time 5 -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"}' "$(url "$1")" | jq -r '.result.height // empty'
}
LIVE=$(seq 0 $((N - 2)))
LAST=$((N - 1))

wait_until 60 all_up || fail "validators did not come up"
# An address to pay: any funded account's, read from the chain's genesis.
TO=$(grep -m1 -o 'address = "[0-9a-fx]*"' "$DIR/genesis.toml" | cut -d'"' -f2)
send() { hub "$BIN" transfer --rpc "$(url "$1")" --key "$DIR/keys/account-$2.key" --to "$TO" --amount 1 --no-wait >/dev/null; }

send 0 0
wait_until 60 at_least 1 $(seq 0 $LAST) || fail "the first block was not committed everywhere"

ip -n "$HUB" link set "h$LAST" down
# Read the cut-off validator from inside its own namespace: through the hub it
# is unreachable now, and an empty height would make the target below trivial.
before=$(height_inside "$LAST")
[ -n "$before" ] || fail "cannot read the cut-off validator's height from inside its namespace"
for k in 1 2 3; do send 0 0; done
target=$((before + 1))
wait_until 90 at_least "$target" $LIVE || fail "the connected majority stopped committing"
cut_off=$(height_inside "$LAST")
majority=$(height 0)
[ "$cut_off" -lt "$majority" ] || fail "the cut-off validator kept up ($cut_off >= $majority)"

ip -n "$HUB" link set "h$LAST" up
send 0 1
wait_until 120 at_least "$((majority + 1))" $(seq 0 $LAST) || fail "the healed validator did not catch up"

tip=$(for i in $(seq 0 $LAST); do height "$i"; done | sort -n | head -1)
for h in $(seq 1 "$tip"); do
  hashes=$(for i in $(seq 0 $LAST); do rpc "$i" gl_getBlock "[$h]" | jq -r '.hash'; done | sort -u | wc -l)
  [ "$hashes" = 1 ] || fail "validators disagree at height $h"
done
# Every message handed to a driver was also released from its peer lane.
lanes_empty() {
  for i in $(seq 0 $LAST); do
    held=$(hub curl -s --max-time 5 "$(url "$i")/metrics" | awk '/^gridledger_p2p_lane_messages/ {s += $2} END {print s + 0}')
    [ "$held" = 0 ] || return 1
  done
}
wait_until 30 lanes_empty || fail "peer lanes did not drain"
echo "{\"validators\":$N,\"cut_off_height\":$cut_off,\"majority_height\":$majority,\"agreed_heights\":$tip}"
