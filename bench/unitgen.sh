#!/usr/bin/env bash
# unitgen benchmark: expand 100,000 instances of the tutorial's node-etcd@.service
# template to JSON Lines, against the way it is done by hand today: a shell loop
# running `sed "s/%i/$i/g"` once per instance (measured on 1,000 instances here,
# in the same run, and scaled to 100,000). Goal: under 0.5 s for unitgen.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${N:-100000}
SED_N=${SED_N:-1000}
TEMPLATE=unitgen/tests/data/fixed/node-etcd@.service

cargo build --release -q -p unitgen
UNITGEN=target/release/unitgen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }

# Best of three runs for unitgen: wall clock, and CPU time (user+sys), which
# other load on the machine disturbs less.
best=""
best_cpu=""
for _ in 1 2 3; do
    /usr/bin/time -f "%e %U %S" -o "$work/time" "$UNITGEN" -i "1..$N" "$TEMPLATE" >"$work/units.jsonl" 2>/dev/null
    read -r t u s <"$work/time"
    cpu=$(echo "$u + $s" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    if [ -z "$best_cpu" ] || [ "$(echo "$cpu < $best_cpu" | bc -l)" = 1 ]; then best_cpu=$cpu; fi
done
records=$(wc -l <"$work/units.jsonl")
[ "$records" -eq "$N" ] || { echo "unitgen wrote $records records, expected $N" >&2; exit 1; }

mkdir "$work/sed"
t0=$(now)
for i in $(seq 1 "$SED_N"); do
    sed "s/%i/$i/g" "$TEMPLATE" >"$work/sed/node-etcd@$i.service"
done
t1=$(now)
sed_t=$(echo "$t1 - $t0" | bc -l)
sed_scaled=$(echo "$sed_t * $N / $SED_N" | bc -l)

printf '%-44s %12s %14s\n' "method" "instances" "seconds"
printf '%-44s %12d %14.3f\n' "unitgen -i 1..$N (JSON Lines, best of 3)" "$N" "$best"
printf '%-44s %12d %14.3f\n' "  same, CPU seconds (user+sys)" "$N" "$best_cpu"
printf '%-44s %12d %14.3f\n' 'shell loop: sed "s/%i/$i/g" per instance' "$SED_N" "$sed_t"
printf '%-44s %12d %14.3f\n' "  same, scaled to $N" "$N" "$sed_scaled"
printf '%-44s %27.1fx\n' "speed-up (scaled sed / unitgen)" "$(echo "$sed_scaled / $best" | bc -l)"
printf '%-44s %27s\n' "load average during the run" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %27s\n' "goal: $N instances under 0.5 s" "$(if [ "$(echo "$best < 0.5" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi)"
