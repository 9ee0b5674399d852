#!/usr/bin/env bash
# place's benchmark: generated clusters (anti-affine templates, MachineOf
# sidekicks, metadata-constrained and global units) at 100/1,000,
# 10,000/100,000 and 10,000/1,000,000 machines/units; place against a
# re-implementation of fleet's scheduler (kept in place/benches/placebench.rs)
# on the same inputs. Goals (issue 4): whole `place` process on 100k units
# and 10k machines < 1 s; placement of 1M units < 2 s with peak RSS < 1 GiB;
# >= 100x faster than fleet's algorithm at 10k machines; re-placing one lost
# machine's units < 10 ms.
#
# FLEET_LIMIT caps each reference run in seconds (default 30); a capped run
# is extrapolated linearly from the units it placed, which understates
# fleet's time (its cost per unit grows as machines fill up).
set -euo pipefail
cd "$(dirname "$0")/.."

FLEET_LIMIT=${FLEET_LIMIT:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release -q -p place
bench_bin=$(cargo bench -p place --bench placebench --no-run 2>&1 | grep -o 'target/release/deps/placebench-[0-9a-f]*' | head -n1)
if [[ -z "$bench_bin" ]]; then
    echo "bench/place.sh: could not find the placebench binary" >&2
    exit 2
fi
place_bin=target/release/place

# field KEY LINE: the value of KEY=VALUE in LINE.
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

declare -a rows
for size in "100 1000" "10000 100000" "10000 1000000"; do
    read -r m n <<<"$size"
    dir="$work/$m-$n"
    "$bench_bin" gen "$m" "$n" "$dir" >/dev/null

    # Whole place process (read JSON, plan, write JSON), three runs: the
    # median run's wall and CPU seconds, and its peak RSS.
    for _ in 1 2 3; do
        /usr/bin/time -f '%e %M %U %S' -o "$dir/time" "$place_bin" --machines "$dir/machines.json" "$dir/units.json" \
            >"$dir/out.json" || [[ $? == 1 ]]
        cat "$dir/time"
    done | sort -n | sed -n 2p >"$dir/median"
    read -r proc_secs proc_kib proc_user proc_sys <"$dir/median"
    proc_cpu=$(awk -v u="$proc_user" -v s="$proc_sys" 'BEGIN { printf "%.2f", u + s }')

    # Placement alone, in process, three runs: the median run's time and
    # CPU, and the highest peak RSS of the three processes.
    lib_runs=()
    lib_kib=0
    for _ in 1 2 3; do
        lib_line=$(/usr/bin/time -f '%M' -o "$dir/libtime" "$bench_bin" lib "$dir")
        lib_runs+=("$(field secs "$lib_line") $(field cpu_secs "$lib_line")")
        lib_kib=$(( $(cat "$dir/libtime") > lib_kib ? $(cat "$dir/libtime") : lib_kib ))
    done
    read -r lib_secs lib_cpu < <(printf '%s\n' "${lib_runs[@]}" | sort -n | sed -n 2p)
    unplaced=$(field unplaced "$lib_line")
    /usr/bin/time -f '%M' -o "$dir/readtime" "$bench_bin" read "$dir" >/dev/null
    input_kib=$(cat "$dir/readtime")

    # Re-placing one lost machine's units, given current placements.
    lost_line=$("$bench_bin" lost "$dir")
    lost_secs=$(field worst_secs "$lost_line")
    full_secs=$(field full_replan_secs "$lost_line")

    # fleet's algorithm on the same input.
    ref_line=$("$bench_bin" ref "$dir" "$FLEET_LIMIT")
    ref_est=$(field estimate_secs "$ref_line")
    ref_note=$([[ $(field complete "$ref_line") == true ]] && echo measured \
        || echo "extrapolated from $(field done "$ref_line")/$(field total "$ref_line") units in ${FLEET_LIMIT}s")
    ratio=$(awk -v r="$ref_est" -v l="$lib_secs" 'BEGIN { printf "%.0f", r / l }')

    rows+=("$(printf '%-14s %9.3f %9.2f %9.0f %9.3f %9.2f %9.0f %9.0f %9d %9.2f %9.3f %12.3f %8sx  %s' \
        "$m/$n" "$proc_secs" "$proc_cpu" "$((proc_kib / 1024))" "$lib_secs" "$lib_cpu" "$((lib_kib / 1024))" "$((input_kib / 1024))" "$unplaced" \
        "$(awk -v s="$lost_secs" 'BEGIN { printf "%.2f", s * 1000 }')" "$full_secs" "$ref_est" "$ratio" "$ref_note")")
    rm -rf "$dir"
done

printf '%-14s %9s %9s %9s %9s %9s %9s %9s %9s %9s %9s %12s %9s  %s\n' \
    machines/units proc_s proc_cpu proc_MiB plan_s plan_cpu plan_MiB input_MiB unplaced lost_ms replan_s fleet_s speedup fleet
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "proc_s/proc_MiB: whole \`place\` process (JSON in, plan, JSON out), median of 3 runs: wall time and peak RSS (goal at 10000/100000: < 1 s)"
echo "proc_cpu/plan_cpu: user+system CPU seconds of the same runs (the machine may be shared: compare these too)"
echo "plan_s/plan_MiB: place::Plan::new plus a walk over every placement it gives (Plan::for_each), median of 3 runs,"
echo "                 and the highest peak RSS of those processes incl. parsed input (goal at 10000/1000000: < 2 s, < 1024 MiB)"
echo "input_MiB: peak RSS of a process that only reads the same records (the input's share of plan_MiB)"
echo "lost_ms: worst of 5 machine losses re-placed in memory with Plan::remove_machine (goal < 10 ms); replan_s: the same loss planned from scratch with --current"
echo "fleet_s: fleet's least-loaded scan on the same units; speedup = fleet_s / plan_s (goal >= 100x at 10000 machines)"
