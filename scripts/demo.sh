#!/usr/bin/env bash
# fleetkit's main job, end to end: the "multiple instances" tutorial on a
# local etcd that this script starts itself (temp dir, loopback port).
#
# Four machines announce themselves, the tutorial's two templates are
# submitted, three instances start (each with its discovery sidekick), the
# scheduler places them, one machine dies, and the table shows the instance
# moved to the free machine. Everything started here is stopped on exit.
#
# Needs: etcd and etcdctl (Debian's etcd-server/etcd-client), and a release
# build of the workspace (`make demo` does it; or `cargo build --release`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FLEETKIT_BIN:-$ROOT/target/release}"
ANNOUNCE="$BIN/announce"
MACHINE_TTL=5

for tool in etcd etcdctl; do
    command -v "$tool" >/dev/null || { echo "demo: $tool not found: install Debian's etcd-server and etcd-client" >&2; exit 1; }
done
if [[ ! -x "$BIN/clusterctl" ]]; then
    echo "demo: $BIN/clusterctl not found: run 'cargo build --release' (or 'make demo') first" >&2
    exit 1
fi
export PATH="$BIN:$PATH"
CLUSTERCTL=clusterctl

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleetkit-demo.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() {
    printf '$ %s\n' "$*"
    "$@"
}

# --- etcd -----------------------------------------------------------------
CLIENT_PORT="$(free_port)"
PEER_PORT="$(free_port)"
while [[ "$PEER_PORT" == "$CLIENT_PORT" ]]; do PEER_PORT="$(free_port)"; done
etcd --name demo --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "demo=http://127.0.0.1:$PEER_PORT" >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)

export ETCDCTL_API=3
export ETCDCTL_ENDPOINTS="127.0.0.1:$CLIENT_PORT"
export FLEETKIT_PREFIX=/fleetkit
for _ in $(seq 1 100); do
    etcdctl endpoint health >/dev/null 2>&1 && break
    sleep 0.1
done
etcdctl endpoint health >/dev/null 2>&1 || { echo "demo: etcd did not start; its log:" >&2; tail "$WORK/etcd.log" >&2; exit 1; }
say "a local etcd on 127.0.0.1:$CLIENT_PORT (data in $WORK)"

# --- four machines ----------------------------------------------------------
declare -A MACHINE_PID
say "four machines announce themselves under /fleetkit/machines/ on ${MACHINE_TTL}s leases"
for i in 1 2 3 4; do
    id="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
    record="{\"id\":\"$id\",\"ip\":\"172.17.8.10$i\",\"metadata\":{}}"
    if [[ -x "$ANNOUNCE" ]]; then
        "$ANNOUNCE" --ttl "$MACHINE_TTL" "/fleetkit/machines/$id" "$record" >"$WORK/machine-$i.log" 2>&1 &
        MACHINE_PID[$id]=$!
        PIDS+=($!)
    else
        # Without announce: a lease kept alive by etcdctl does the same job.
        lease="$(etcdctl lease grant "$MACHINE_TTL" | awk '{print $2}')"
        etcdctl put --lease="$lease" "/fleetkit/machines/$id" "$record" >/dev/null
        etcdctl lease keep-alive "$lease" >/dev/null 2>&1 &
        MACHINE_PID[$id]=$!
        PIDS+=($!)
    fi
done
for _ in $(seq 1 100); do
    [[ "$("$CLUSTERCTL" list-machines --no-legend | wc -l)" -eq 4 ]] && break
    sleep 0.1
done
run "$CLUSTERCTL" list-machines

# --- the tutorial's unit files, with %i where the tutorial wrote %1 ---------
cat >"$WORK/node-etcd@.service" <<'EOF'
[Unit]
Description=Node.js app inside a docker container reading a value from etcd
After=etcd2.service
After=docker.service
Requires=node-etcd-discovery@%i.service

[Service]
TimeoutStartSec=0
KillMode=none
EnvironmentFile=/etc/environment
ExecStartPre=-/usr/bin/docker kill node-etcd%i
ExecStartPre=-/usr/bin/docker rm node-etcd%i
ExecStartPre=/usr/bin/docker pull marcuspoehls/node-etcd
ExecStart=/usr/bin/docker run --name node-etcd%i -p 3000:3000 \
-P -e COREOS_PRIVATE_IPV4=${COREOS_PRIVATE_IPV4} \
marcuspoehls/node-etcd \
/bin/sh -c "cd /src && npm i && node server.js" -D FOREGROUND
ExecStop=/usr/bin/docker stop node-etcd%i

[X-Fleet]
Conflicts=node-etcd@*.service
EOF
cat >"$WORK/node-etcd-discovery@.service" <<'EOF'
[Unit]
Description=Announce node-etcd@%i service
BindsTo=node-etcd@%i.service

[Service]
EnvironmentFile=/etc/environment
ExecStart=/bin/sh -c "while true; do etcdctl set /announce/services/node-etcd%i ${COREOS_PUBLIC_IPV4}:3000 --ttl 60; sleep 45; done"
ExecStop=/usr/bin/etcdctl rm /announce/services/node-etcd%i

[X-Fleet]
MachineOf=node-etcd@%i.service
EOF

cd "$WORK"
say "submit the two templates"
run "$CLUSTERCTL" submit node-etcd@.service node-etcd-discovery@.service
run "$CLUSTERCTL" list-unit-files

say "a scheduler runs (any number may; one leads)"
"$CLUSTERCTL" schedule --watch --ttl 5 >"$WORK/scheduler.log" 2>&1 &
PIDS+=($!)
echo '$ clusterctl schedule --watch --ttl 5 &'

say "start three instances: each brings its discovery sidekick along"
run "$CLUSTERCTL" start --block-attempts 60 node-etcd@{1..3}.service
run "$CLUSTERCTL" list-units
run "$CLUSTERCTL" list-unit-files

say "a fourth and fifth instance: only one machine is free, so start says so at once"
set +e
run "$CLUSTERCTL" start node-etcd@4.service node-etcd@5.service
echo "(exit status $?)"
set -e

machine_of() {
    "$CLUSTERCTL" list-units --json | grep "\"unit\":\"$1\"" | sed 's/.*"machine":"\([^"]*\)".*/\1/' | head -n1
}

BEFORE="$(machine_of node-etcd@1.service)"
say "machine ${BEFORE:0:8}... dies (its presence process is killed; its lease ends within ${MACHINE_TTL}s)"
{ kill -KILL "${MACHINE_PID[$BEFORE]}" && wait "${MACHINE_PID[$BEFORE]}"; } 2>/dev/null || true
START=$SECONDS
AFTER="$BEFORE"
while [[ "$AFTER" == "$BEFORE" || -z "$AFTER" ]]; do
    if ((SECONDS - START > 30)); then
        echo "demo: node-etcd@1.service did not move within 30s; scheduler log:" >&2
        cat "$WORK/scheduler.log" >&2
        exit 1
    fi
    sleep 0.2
    AFTER="$(machine_of node-etcd@1.service)"
done
echo "node-etcd@1.service moved to ${AFTER:0:8}... after $((SECONDS - START))s"
run "$CLUSTERCTL" list-machines
run "$CLUSTERCTL" list-units

say "what the scheduler said"
sed 's/^/  /' "$WORK/scheduler.log"
say "done: stopping etcd, the machines and the scheduler"
