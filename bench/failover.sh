#!/usr/bin/env bash
# Failover on real machines: `make demo`'s tutorial on the lab, a machine
# killed (docker kill), timed from the kill to its instance active and
# answering HTTP on another machine and its announcement pointing there.
# The goal is the agent's lease TTL (10 s) + 3 s; the recorded figure for
# fleet on the same tutorial is about 27 s. RUNS=N repeats the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-1}"
cargo build -q --release -p clusterctl -p announce -p dockrun -p fleetkit-tests \
    --bin clusterctl --bin announce --bin dockrun --bin fleetkit-lab
times=()
for run in $(seq 1 "$RUNS"); do
    echo "failover run $run of $RUNS (the demo, quietly) ..."
    ms=$(bash scripts/demo.sh 2>&1 | sed -n 's/^failover: \([0-9]*\) ms .*/\1/p')
    [[ -n "$ms" ]] || { echo "bench: the demo printed no failover time" >&2; exit 1; }
    times+=("$ms")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
echo
printf '%-62s %10s %10s %7s\n' "measure" "fleetkit" "reference" "ratio"
printf '%-62s %8.1f s %8.1f s %7.2f\n' "machine killed to instance answering and announced elsewhere" \
    "$(awk -v m="$median" 'BEGIN { print m / 1000 }')" 13 "$(awk -v m="$median" 'BEGIN { print m / 13000 }')"
printf '%-62s %10s %8.1f s %7.2f\n' "  (against fleet's recorded figure on the same tutorial)" "" 27 \
    "$(awk -v m="$median" 'BEGIN { print m / 27000 }')"
echo "runs (ms): ${times[*]}; reference 13 s is the goal: lease TTL 10 s + 3 s"
