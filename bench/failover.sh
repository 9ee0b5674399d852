#!/usr/bin/env bash
# The tutorial on real machines: `make demo` on the lab, RUNS times at each
# agent lease TTL in TTLS (default 5 runs at 10 s and at 5 s). From each run:
#  - failover: a machine killed (docker kill) to its instance active and
#    answering HTTP on another machine and its announcement pointing there
#    (goal: at most TTL + 2 s; fleet's recorded figure on the same tutorial
#    is about 27 s);
#  - start: `clusterctl start node-etcd@{1..3}` to three HTTP answers,
#    beside the same container started by hand with `docker run` on three
#    machines at once in the same run, each from no image as fleetkit's
#    start is (goal: at most 1 s more).
# Medians are reported.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
TTLS="${TTLS:-10 5}"
cargo build -q --release -p clusterctl -p announce -p dockrun -p fleetkit-tests \
    --bin clusterctl --bin announce --bin dockrun --bin fleetkit-lab
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
s() { awk -v m="$1" 'BEGIN { printf "%.1f", m / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rows=()
for ttl in $TTLS; do
    fail=() start=() hand=()
    for run in $(seq 1 "$RUNS"); do
        echo "TTL $ttl s: run $run of $RUNS (the demo, quietly) ..."
        out=$(AGENT_TTL=$ttl bash scripts/demo.sh 2>&1) || { echo "$out" | tail -20 >&2; exit 1; }
        f=$(sed -n 's/^failover: \([0-9]*\) ms .*/\1/p' <<<"$out")
        st=$(sed -n 's/^start: \([0-9]*\) ms .*/\1/p' <<<"$out")
        h=$(sed -n 's/^by hand: \([0-9]*\) ms .*/\1/p' <<<"$out")
        [[ -n "$f" && -n "$st" && -n "$h" ]] || { echo "bench: the demo printed no timings" >&2; exit 1; }
        echo "  failover $f ms, start $st ms, by hand $h ms"
        fail+=("$f") start+=("$st") hand+=("$h")
    done
    mf=$(median "${fail[@]}") ms=$(median "${start[@]}") mh=$(median "${hand[@]}")
    goal=$(( (ttl + 2) * 1000 ))
    rows+=("$(printf '%-58s %8s s %8s s %7s' "failover, TTL $ttl s, vs TTL + 2 s" "$(s "$mf")" "$(s "$goal")" "$(ratio "$mf" "$goal")")")
    rows+=("$(printf '%-58s %8s s %8s s %7s' "  the same vs fleet's recorded ~27 s" "" "27.0" "$(ratio "$mf" 27000)")")
    rows+=("$(printf '%-58s %8s s %8s s %7s' "start to 3 answers, TTL $ttl s, vs docker run + 1 s" "$(s "$ms")" "$(s $((mh + 1000)))" "$(ratio "$ms" $((mh + 1000)))")")
    rows+=("$(printf '%-58s   runs (ms): failover %s; start %s; by hand %s' "" "${fail[*]}" "${start[*]}" "${hand[*]}")")
done
echo
printf '%-58s %10s %10s %7s\n' "measure (median of $RUNS)" "fleetkit" "reference" "ratio"
printf '%s\n' "${rows[@]}"
