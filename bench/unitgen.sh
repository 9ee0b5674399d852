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

# Five runs for unitgen into a file (records batched, see unitgen/src/output.rs),
# best and median: wall clock, and CPU time (user+sys), which other load on
# the machine disturbs less. Then the same into a pipe, where unitgen flushes
# every record (one write call each) so the reader sees it at once.
RUNS=${RUNS:-5}
run_times() { # DEST: "file" or "pipe"; prints "wall cpu" per run
    for _ in $(seq 1 "$RUNS"); do
        if [ "$1" = file ]; then
            /usr/bin/time -f "%e %U %S" -o "$work/time" "$UNITGEN" -i "1..$N" "$TEMPLATE" >"$work/units.jsonl" 2>/dev/null
        else
            /usr/bin/time -f "%e %U %S" -o "$work/time" "$UNITGEN" -i "1..$N" "$TEMPLATE" 2>/dev/null | cat >/dev/null
        fi
        read -r t u s <"$work/time"
        echo "$t $(echo "$u + $s" | bc -l)"
    done
}
best() { sort -g | head -1; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
run_times file >"$work/file.times"
records=$(wc -l <"$work/units.jsonl")
[ "$records" -eq "$N" ] || { echo "unitgen wrote $records records, expected $N" >&2; exit 1; }
run_times pipe >"$work/pipe.times"
best_wall=$(cut -d' ' -f1 "$work/file.times" | best)
med_wall=$(cut -d' ' -f1 "$work/file.times" | median)
best_cpu=$(cut -d' ' -f2 "$work/file.times" | best)
med_cpu=$(cut -d' ' -f2 "$work/file.times" | median)
pipe_wall=$(cut -d' ' -f1 "$work/pipe.times" | best)
pipe_cpu=$(cut -d' ' -f2 "$work/pipe.times" | best)
best=$best_wall

mkdir "$work/sed"
t0=$(now)
for i in $(seq 1 "$SED_N"); do
    sed "s/%i/$i/g" "$TEMPLATE" >"$work/sed/node-etcd@$i.service"
done
t1=$(now)
sed_t=$(echo "$t1 - $t0" | bc -l)
sed_scaled=$(echo "$sed_t * $N / $SED_N" | bc -l)

printf '%-48s %10s %10s %10s\n' "method" "instances" "best s" "median s"
printf '%-48s %10d %10.3f %10.3f\n' "unitgen -i 1..$N > file (JSON Lines, wall)" "$N" "$best_wall" "$med_wall"
printf '%-48s %10d %10.3f %10.3f\n' "  same, CPU seconds (user+sys)" "$N" "$best_cpu" "$med_cpu"
printf '%-48s %10d %10.3f %10s\n' "unitgen ... | cat (flush per record, wall)" "$N" "$pipe_wall" ""
printf '%-48s %10d %10.3f %10s\n' "  same, CPU seconds (user+sys)" "$N" "$pipe_cpu" ""
printf '%-48s %10d %10.3f %10s\n' 'shell loop: sed "s/%i/$i/g" per instance' "$SED_N" "$sed_t" ""
printf '%-48s %10d %10.3f %10s\n' "  same, scaled to $N" "$N" "$sed_scaled" ""
printf '%-48s %31.1fx\n' "speed-up (scaled sed / unitgen best wall)" "$(echo "$sed_scaled / $best" | bc -l)"
printf '%-48s %32s\n' "load average during the run" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-48s %32s\n' "goal: $N instances under 0.5 s (best wall)" "$(if [ "$(echo "$best < 0.5" | bc -l)" = 1 ]; then echo met; else echo MISSED; fi)"
