#!/usr/bin/env bash
# The watching scheduler at scale, on a local etcd this script starts (temp
# dir, loopback): 10,000 machines and 100,000 units, plus two `pool=big`
# machines holding 1,000 units each. Measured from outside the scheduler
# (clusterctl's examples/react.rs watches assign/ from its own process):
#  1. reference: one full `clusterctl schedule` round answering one lost
#     machine (delete its presence key, run the round), in the same run;
#  2. a newly started leader's first round at that size, the cluster
#     needing one lost machine's units placed (goal under 2 s);
#  3. etcd requests the idle leader makes in IDLE seconds, by gRPC method
#     (goal: lease keep-alives only; the watch is one stream opened before);
#  4. a presence key deleted under the leader to the last of that
#     machine's units' new assignments, median of RUNS machines (goal: at
#     most 1/20 of the full round and under 100 ms);
#  5. the same for a machine holding 1,000 units (goal under 1 s);
# and, with no goals, a unit stopped (its assignment rewritten), unloaded
# and started again (planned again from memory, as every other change is).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UNITS="${UNITS:-100000}"
MACHINES="${MACHINES:-10000}"
BIG="${BIG:-2000}"
RUNS="${RUNS:-5}"
IDLE="${IDLE:-60}"

cd "$ROOT"
cargo build --release -q -p clusterctl --bin clusterctl --example populate --example react
CLUSTERCTL="${CLUSTERCTL:-$ROOT/target/release/clusterctl}"
POPULATE="$ROOT/target/release/examples/populate"
REACT="$ROOT/target/release/examples/react"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleetkit-bench.XXXXXX")"
ETCD_PID=""
LEADER_PID=""
cleanup() {
    for pid in "$LEADER_PID" "$ETCD_PID"; do
        if [[ -n "$pid" ]]; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
    return 0
}
trap cleanup EXIT

# shellcheck source=lib/etcd.bash
source "$ROOT/bench/lib/etcd.bash"
start_etcd

machine() { printf '%08x%024x' "$1" $(($1 * 7919)); }
now() { date +%s.%N; }
ms_since() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%d", (a - b) * 1000 }'; }

echo "populating: $UNITS units on $MACHINES machines, $BIG on 2 pool machines ..."
"$POPULATE" "$EP" /bench "$UNITS" "$MACHINES" "$BIG"
echo "placing everything with one round ..."
"$CLUSTERCTL" schedule >/dev/null

# 1. The reference: a full round answering one lost machine.
lost=$(machine 1)
held=$(etcdctl get --prefix --keys-only "/bench/assign/$lost/" | grep -c . || true)
etcdctl del "/bench/machines/$lost" >/dev/null
t0=$(now)
ROUND_OUT=$("$CLUSTERCTL" schedule)
FULL_MS=$(ms_since "$t0")
echo "  full round: ${FULL_MS} ms for machine $lost's $held units ($ROUND_OUT)"

# 2. A new leader's first round: the cluster needs another lost machine's units placed.
lost=$(machine 3)
etcdctl del "/bench/machines/$lost" >/dev/null
coproc WATCHER { "$REACT" "$EP" /bench "$lost" --deleted; }
read -r ready <&"${WATCHER[0]}"
[[ "$ready" == ready ]] || { echo "bench: react said '$ready'" >&2; exit 1; }
"$CLUSTERCTL" schedule --watch 2>"$WORK/leader.log" &
LEADER_PID=$!
read -r first_units FIRST_MS <&"${WATCHER[0]}"
wait "$WATCHER_PID" 2>/dev/null || true
echo "  new leader's first round: ${FIRST_MS} ms (machine $lost's $first_units units placed)"

# 3. Requests while nothing changes.
requests() {
    curl -s "http://$EP/metrics" | awk '
        /^grpc_server_msg_received_total\{/ {
            match($0, /grpc_method="[A-Za-z]+"/); m = substr($0, RSTART + 13, RLENGTH - 14)
            n[m] += $NF
        }
        END { for (m in n) printf "%s %d\n", m, n[m] }' | sort
}
requests >"$WORK/before"
echo "  idle for ${IDLE} s ..."
sleep "$IDLE"
requests >"$WORK/after"
IDLE_REQ=$(join -a 2 "$WORK/before" "$WORK/after" | awk 'NF == 3 && $3 > $2 { printf "%s %d, ", $1, $3 - $2 } NF == 2 && $2 > 0 { printf "%s %d, ", $1, $2 }')
IDLE_REQ="${IDLE_REQ%, }"
echo "  requests in ${IDLE} s: ${IDLE_REQ:-none}"

# 4. Reactions under the leader, one machine at a time.
times=()
for i in $(seq 1 "$RUNS"); do
    read -r n ms < <("$REACT" "$EP" /bench "$(machine $((MACHINES / (RUNS + 1) * i + 5)))")
    times+=("$ms")
    echo "  reaction $i: $ms ms ($n units)"
done
REACT_MS=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')

# No goals: a stop rewrites the unit's assignment; an unload and a start
# again (a unit leaving and joining the plan) are planned again from memory.
read -r _ STOP_MS < <("$REACT" "$EP" /bench --desired web@0.service loaded)
echo "  a unit stopped: $STOP_MS ms"
read -r _ UNLOAD_MS < <("$REACT" "$EP" /bench --desired web@2.service inactive)
read -r _ START_MS < <("$REACT" "$EP" /bench --desired web@2.service launched)
echo "  a unit unloaded: $UNLOAD_MS ms; started again: $START_MS ms"

# 5. A machine holding BIG / 2 units.
read -r BIG_N BIG_MS < <("$REACT" "$EP" /bench "$(machine "$MACHINES")")
echo "  pool machine: $BIG_MS ms ($BIG_N units)"
grep -q "gone at revision" "$WORK/leader.log" || { echo "bench: the leader logged no reaction" >&2; cat "$WORK/leader.log" >&2; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo
echo "schedule --watch: $MACHINES machines, $UNITS units (+$BIG on 2 pool machines), ms"
printf '%-60s %9s %9s %7s\n' "measure" "leader" "reference" "ratio"
printf '%-60s %9s %9s %7s\n' "lost machine, median of $RUNS, vs one full round (goal < 1/20)" "$REACT_MS" "$FULL_MS" "$(ratio "$REACT_MS" "$FULL_MS")"
printf '%-60s %9s %9s %7s\n' "same, against the goal of 100 ms" "$REACT_MS" "100" "$(ratio "$REACT_MS" 100)"
printf '%-60s %9s %9s %7s\n' "lost machine holding $BIG_N units (goal < 1 s)" "$BIG_MS" "1000" "$(ratio "$BIG_MS" 1000)"
printf '%-60s %9s %9s %7s\n' "new leader's first round (goal < 2 s)" "$FIRST_MS" "2000" "$(ratio "$FIRST_MS" 2000)"
printf '%-60s %9s\n' "a unit stopped: its assignment rewritten" "$STOP_MS"
printf '%-60s %9s\n' "a unit unloaded, then started again: planned from memory" "$UNLOAD_MS, $START_MS"
echo "idle leader, etcd requests in ${IDLE} s: ${IDLE_REQ:-none}"
