#!/usr/bin/env bash
# announce vs the etcd v3 equivalent of the tutorial's sidekick loop
# (`etcdctl lease grant` + `etcdctl put --lease` + a running
# `etcdctl lease keep-alive`), side by side against one local etcd:
#   - resident memory (VmRSS, and VmHWM as the peak) of the long-running process
#   - CPU seconds per hour (utime+stime over the window, scaled)
#   - etcd requests per hour, from etcd's /metrics deltas over the window:
#     grpc_server_handled_total (RPCs completed) and
#     grpc_server_msg_received_total (request messages, keep-alives included:
#     a keep-alive stream is one RPC that never completes)
# then the soak: SOAK_N announcers on the same etcd for SOAK_SECS, counting
# expired keys (DELETE events seen by a watch), with CPU and memory totals.
#
# Parameters (environment): TTL (60, the tutorial's), WINDOW (180 s per side:
# a multiple of TTL/3, long enough that whole renewal periods are counted),
# SOAK_N (500; 0 skips the soak), SOAK_SECS (600, the issue's 10 minutes),
# SOAK_TTL (10 s, so the soak renews often).
set -euo pipefail

TTL=${TTL:-60}
WINDOW=${WINDOW:-180}
SOAK_N=${SOAK_N:-500}
SOAK_SECS=${SOAK_SECS:-600}
SOAK_TTL=${SOAK_TTL:-10}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The size-optimised build that `make install` installs (see Cargo.toml).
cargo build --profile small -q -p announce
ANNOUNCE=$root/target/small/announce

work=$(mktemp -d /tmp/fk-bench-announce.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port)
pport=$(free_port)
EP=http://127.0.0.1:$cport
etcd --name bench --data-dir "$work/etcd" \
    --listen-client-urls "$EP" --advertise-client-urls "$EP" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "bench=http://127.0.0.1:$pport" \
    --logger zap --log-level error >"$work/etcd.log" 2>&1 &
ETCD_PID=$!
pids+=("$ETCD_PID")
export ETCDCTL_API=3
ctl() { etcdctl --endpoints="$EP" "$@"; }
for _ in $(seq 1 200); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
ctl endpoint health >/dev/null 2>&1

# Sum of one metric family over all label sets.
metric() { curl -s "$EP/metrics" | awk -v m="$1" '$1 ~ "^"m"[{ ]" || $1 == m { s += $2 } END { printf "%d\n", s }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
pss_kb() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup"; }
HZ=$(getconf CLK_TCK)
wait_key() { for _ in $(seq 1 100); do [ -n "$(ctl get --print-value-only "$1")" ] && return 0; sleep 0.1; done; return 1; }

# measure NAME PID KEY: steady-state numbers of PID over WINDOW seconds.
measure() {
    local name=$1 pid=$2 key=$3
    wait_key "$key"
    local h0 m0 c0 h1 m1 c1
    h0=$(metric grpc_server_handled_total); m0=$(metric grpc_server_msg_received_total); c0=$(cpu_ticks "$pid")
    sleep "$WINDOW"
    h1=$(metric grpc_server_handled_total); m1=$(metric grpc_server_msg_received_total); c1=$(cpu_ticks "$pid")
    kill -0 "$pid"
    wait_key "$key"
    local rss hwm anon
    rss=$(status_kb "$pid" VmRSS); hwm=$(status_kb "$pid" VmHWM); anon=$(status_kb "$pid" RssAnon)
    # The metric scrapes themselves are HTTP, not gRPC: they do not count.
    python3 - "$name" "$rss" "$hwm" "$anon" "$((c1 - c0))" "$HZ" "$((h1 - h0))" "$((m1 - m0))" "$WINDOW" <<'EOF' >>"$work/rows"
import sys
name, rss, hwm, anon, ticks, hz, handled, msgs, window = sys.argv[1], *map(int, sys.argv[2:])
scale = 3600 / window
print(f"{name}\t{rss}\t{hwm}\t{anon}\t{ticks / hz * scale:.2f}\t{handled * scale:.0f}\t{msgs * scale:.0f}")
EOF
}

echo "announce vs etcdctl lease grant + put --lease + lease keep-alive (TTL ${TTL}s, ${WINDOW}s window each, etcd $(etcd --version | awk 'NR==1{print $3}'))"
: >"$work/rows"

# announce
"$ANNOUNCE" --endpoints "$EP" --ttl "$TTL" /bench/announce v 2>"$work/announce.log" &
A_PID=$!
pids+=("$A_PID")
measure announce "$A_PID" /bench/announce
kill -TERM "$A_PID"; wait "$A_PID"

# etcdctl: the etcd v3 equivalent, run the way a unit would
lease=$(ctl lease grant "$TTL" | awk '{ print $2 }')
ctl put --lease="$lease" /bench/etcdctl v >/dev/null
# Not through the ctl function: $! must be etcdctl itself, not a subshell.
etcdctl --endpoints="$EP" lease keep-alive "$lease" >/dev/null 2>&1 &
K_PID=$!
pids+=("$K_PID")
measure "etcdctl keep-alive" "$K_PID" /bench/etcdctl
kill -TERM "$K_PID"; wait "$K_PID" || true
ctl lease revoke "$lease" >/dev/null

python3 - "$work/rows" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
hdr = ("", "RSS KiB", "peak RSS KiB", "anon KiB", "CPU s/hour", "RPCs/hour", "request msgs/hour")
print("%-20s %8s %13s %8s %11s %10s %18s" % hdr)
for r in rows:
    print("%-20s %8s %13s %8s %11s %10s %18s" % tuple(r))
a, e = rows[0], rows[1]
print("announce / etcdctl: RSS %.2f (goal: at most 0.25), private anonymous memory %.2f"
      % (int(a[1]) / int(e[1]), int(a[3]) / int(e[3])))
print("(RSS includes file pages of the binary and of libc, which all instances share; anon is each process's own)")
print("etcdctl side also spends 2 short-lived processes (grant, put) at start, not counted above")
EOF

[ "$SOAK_N" -gt 0 ] || exit 0

# The soak: SOAK_N announcers for SOAK_SECS, a watch counting DELETEs.
echo
echo "soak: $SOAK_N announcers, TTL ${SOAK_TTL}s, ${SOAK_SECS}s, one local etcd"
# etcdctl itself, not the ctl function: a function in the background is a
# subshell, and killing that would leave etcdctl running.
etcdctl --endpoints="$EP" watch --prefix /bench/soak/ >"$work/watch.out" 2>/dev/null &
W_PID=$!
pids+=("$W_PID")
soak=()
for i in $(seq 1 "$SOAK_N"); do
    "$ANNOUNCE" --endpoints "$EP" --ttl "$SOAK_TTL" "/bench/soak/$i" "v$i" 2>>"$work/soak.log" &
    soak+=("$!")
    pids+=("$!")
done
present() { ctl get --prefix --keys-only /bench/soak/ | grep -c . || true; }
for _ in $(seq 1 300); do
    [ "$(present)" = "$SOAK_N" ] && break
    sleep 0.2
done
echo "keys present after start: $(present)"
deletes_before=$(grep -c '^DELETE$' "$work/watch.out" || true)
c0=0; for p in "${soak[@]}"; do c0=$((c0 + $(cpu_ticks "$p"))); done
e0=$(cpu_ticks "$ETCD_PID")
m0=$(metric grpc_server_msg_received_total)
min_present=$SOAK_N
end=$((SECONDS + SOAK_SECS))
while [ "$SECONDS" -lt "$end" ]; do
    sleep 5
    n=$(present)
    [ "$n" -lt "$min_present" ] && min_present=$n
done
c1=0; rss=0; pss=0; alive=0
for p in "${soak[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
        alive=$((alive + 1))
        c1=$((c1 + $(cpu_ticks "$p")))
        rss=$((rss + $(status_kb "$p" VmRSS)))
        pss=$((pss + $(pss_kb "$p")))
    fi
done
e1=$(cpu_ticks "$ETCD_PID")
m1=$(metric grpc_server_msg_received_total)
deletes=$(( $(grep -c '^DELETE$' "$work/watch.out" || true) - deletes_before ))
python3 - "$SOAK_N" "$alive" "$(present)" "$min_present" "$deletes" "$((c1 - c0))" "$((e1 - e0))" "$HZ" "$rss" "$pss" \
    "$(status_kb "$ETCD_PID" VmRSS)" "$((m1 - m0))" "$SOAK_SECS" <<'EOF'
import sys
n, alive, present, minp, deletes, ticks, eticks, hz, rss, pss, erss, msgs, secs = map(int, sys.argv[1:])
print(f"announcers alive at end     {alive}/{n}")
print(f"keys present at end         {present}/{n} (lowest seen, every 5 s: {minp})")
print(f"expired/deleted keys        {deletes}")
print(f"announce CPU, all {n}      {ticks / hz:.1f} s in {secs} s ({ticks / hz / secs * 100:.2f}% of one core)")
print(f"etcd CPU                    {eticks / hz:.1f} s in {secs} s ({eticks / hz / secs * 100:.2f}% of one core)")
print(f"announce memory, all {n}   RSS {rss / 1024:.0f} MiB, PSS {pss / 1024:.0f} MiB ({rss / max(alive, 1):.0f} KiB RSS each)")
print(f"etcd RSS                    {erss / 1024:.0f} MiB")
print(f"etcd request msgs           {msgs} ({msgs / secs:.0f}/s)")
EOF
for p in "${soak[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${soak[@]}"; do wait "$p" 2>/dev/null || true; done
echo "keys left after SIGTERM to all: $(present)"
[ "$deletes" -eq 0 ] && [ "$alive" -eq "$SOAK_N" ]
