#!/usr/bin/env bash
# clusterctl at scale, on a local etcd this script starts (temp dir, loopback):
#  1. list-unit-files over 100,000 units against `etcdctl get --prefix` of the
#     same keys, in the same run (goal: within 1.5 times);
#  2. one schedule round for 10,000 machines and 100,000 units, including
#     every etcd write (goal: under 10 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS="${UNITS:-100000}"
MACHINES="${MACHINES:-10000}"
RUNS="${RUNS:-3}"

cd "$ROOT"
cargo build --release -q -p clusterctl --bin clusterctl --example populate
# CLUSTERCTL may name another build (e.g. target/small/clusterctl, what make install puts in place).
CLUSTERCTL="${CLUSTERCTL:-$ROOT/target/release/clusterctl}"
POPULATE="$ROOT/target/release/examples/populate"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleetkit-bench.XXXXXX")"
ETCD_PID=""
cleanup() {
    if [[ -n "$ETCD_PID" ]]; then
        kill "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    return 0
}
trap cleanup EXIT

# shellcheck source=lib/etcd.bash
source "$ROOT/bench/lib/etcd.bash"
start_etcd

echo "populating: $UNITS units, $MACHINES machines ..."
"$POPULATE" "$EP" /bench "$UNITS" "$MACHINES"

now() { date +%s.%N; }
# best of RUNS wall-clock seconds of a command (output discarded)
best() {
    local best="" t0 t1 t
    for _ in $(seq 1 "$RUNS"); do
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        t=$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')
        if [[ -z "$best" ]] || awk -v t="$t" -v b="$best" 'BEGIN { exit !(t < b) }'; then best=$t; fi
    done
    printf '%.3f' "$best"
}

rows=$("$CLUSTERCTL" list-unit-files --no-legend | wc -l)
[[ "$rows" -eq "$UNITS" ]] || { echo "bench: list-unit-files printed $rows rows, expected $UNITS" >&2; exit 1; }

echo "timing list-unit-files and etcdctl get ..."
LUF=$(best "$CLUSTERCTL" list-unit-files)
REF_UNITS=$(best etcdctl get --prefix /bench/units/)
REF_ALL=$(best etcdctl get --prefix /bench/)

echo "timing one schedule round ..."
t0=$(now)
ROUND_OUT=$("$CLUSTERCTL" schedule)
t1=$(now)
ROUND=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
assigned=$(etcdctl get --prefix --keys-only /bench/assign/ | grep -c '^/bench/assign/' || true)
# A round with nothing to change: what the scheduler spends on every change
# it reacts to (reading the cluster, planning) before it writes anything.
STEADY=$(best "$CLUSTERCTL" schedule)
LUF_AFTER=$(best "$CLUSTERCTL" list-unit-files)
REF_AFTER=$(best etcdctl get --prefix /bench/)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "clusterctl: $UNITS units, $MACHINES machines (best of $RUNS, seconds)"
printf '%-58s %10s %10s %7s\n' "measure" "clusterctl" "reference" "ratio"
# list-unit-files reads units/, desired/, machines/ and assign/: the same keys
# as one `etcdctl get --prefix` of the whole prefix (goal: within 1.5 times).
printf '%-58s %10s %10s %7s\n' "list-unit-files vs etcdctl get --prefix (same keys)" "$LUF" "$REF_ALL" "$(ratio "$LUF" "$REF_ALL")"
printf '%-58s %10s %10s %7s\n' "same, after scheduling (100,000 assign/ keys more)" "$LUF_AFTER" "$REF_AFTER" "$(ratio "$LUF_AFTER" "$REF_AFTER")"
printf '%-58s %10s %10s %7s\n' "list-unit-files vs etcdctl get units/ only (fewer keys)" "$LUF" "$REF_UNITS" "$(ratio "$LUF" "$REF_UNITS")"
printf '%-58s %10s %10s %7s\n' "schedule: one round incl. etcd writes (goal < 10 s)" "$ROUND" "10.000" "$(ratio "$ROUND" 10)"
printf '%-58s %10s\n' "schedule: a round with nothing to change" "$STEADY"
echo "  schedule said: $ROUND_OUT; assign/ keys now: $assigned"
