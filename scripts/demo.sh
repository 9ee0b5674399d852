#!/usr/bin/env bash
# fleetkit's main job, end to end: the "multiple instances" tutorial on real
# machines that this script starts (the machine lab: containers with systemd
# as PID 1, their own IPs and Docker engines, and a three-member etcd).
#
# Every machine runs the agent (fleetkit-agent.service), two of them the
# scheduler (fleetkit-scheduler.service, one leads). The tutorial's two units
# are submitted, three instances start, each answers HTTP on its machine's
# IP and is announced; then the machine of one instance is killed and the
# instance, its sidekick and its announcement move to the fourth machine.
# Each step says what it waited for and how long. Everything is removed on
# exit.
#
# Needs: a release build (`make demo` does it), Docker, and the lab's
# machine image (built on first use, about 2 minutes). AGENT_TTL sets the
# lease TTL of the agents, the schedulers and the announcements (default
# 10 s, as shipped).
set -euo pipefail
AGENT_TTL="${AGENT_TTL:-10}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FLEETKIT_BIN:-$ROOT/target/release}"
for tool in clusterctl dockrun announce fleetkit-lab; do
    [[ -x "$BIN/$tool" ]] || { echo "demo: $BIN/$tool not found: run 'make demo'" >&2; exit 1; }
done
export PATH="$BIN:$PATH"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/fleetkit-demo.XXXXXX")"
LAB=""
cleanup() {
    [[ -n "$LAB" ]] && fleetkit-lab down "$LAB" || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() {
    printf '$ %s\n' "$*"
    "$@"
}
now_ms() { date +%s%3N; }
took() { echo "($(( $(now_ms) - $1 )) ms)"; }

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, saying how long it took.
wait_for() {
    local what=$1 limit=$2 t0
    shift 2
    t0=$(now_ms)
    until "$@" >/dev/null 2>&1; do
        if (( $(now_ms) - t0 > limit * 1000 )); then
            echo "demo: gave up after ${limit}s waiting for $what" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "waited $(( $(now_ms) - t0 )) ms for $what"
}

# http IP: one GET to IP:3000, the status line and body.
http() {
    exec 3<>"/dev/tcp/$1/3000" || return 1
    printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" >&3
    local reply
    reply="$(timeout 3 cat <&3)"
    exec 3<&-
    [[ "$reply" == HTTP/1.?\ 200* ]] && printf '%s\n' "$reply" | sed -n '1p;$p'
}

machine_of() {
    clusterctl list-units --json | grep "\"unit\":\"$1\"" | sed 's/.*"machine":"\([^"]*\)".*/\1/' | head -n1
}
ip_of() {
    clusterctl list-machines --json | grep "\"machine\":\"$1\"" | sed 's/.*"ip":"\([^"]*\)".*/\1/'
}
active() { clusterctl list-units --json | grep "\"unit\":\"$1\"" | grep -q '"active":"active"'; }
machines_are() { [[ "$(clusterctl list-machines --no-legend | wc -l)" -eq $1 ]]; }

# --- the lab ------------------------------------------------------------------
say "the machine image (built once per recipe; later runs reuse it)"
t0=$(now_ms)
run fleetkit-lab image
took "$t0"

say "four machines and a three-member etcd on a network of their own"
t0=$(now_ms)
eval "$(fleetkit-lab up --machines 4 --etcd 3 --bin "$BIN" --owner $$)"
export ETCDCTL_ENDPOINTS
echo "lab $LAB: machines at $LAB_IPS; etcd at $ETCDCTL_ENDPOINTS $(took "$t0")"
read -r -a MACHINES <<<"$LAB_MACHINES"

say "every machine runs the agent; two of them the scheduler (one leads)"
t0=$(now_ms)
for i in "${!MACHINES[@]}"; do
    m=${MACHINES[$i]}
    docker cp "$ROOT/clusterctl/units/fleetkit-agent.service" "$m:/etc/systemd/system/"
    docker cp "$ROOT/clusterctl/units/fleetkit-scheduler.service" "$m:/etc/systemd/system/"
    if [[ "$AGENT_TTL" != 10 ]]; then
        for svc in agent:agent scheduler:"schedule --watch"; do
            docker exec "$m" sh -c "mkdir -p /etc/systemd/system/fleetkit-${svc%%:*}.service.d && printf \
                '[Service]\nExecStart=\nExecStart=/usr/local/bin/clusterctl ${svc#*:} --ttl $AGENT_TTL\n' \
                >/etc/systemd/system/fleetkit-${svc%%:*}.service.d/ttl.conf"
        done
    fi
    docker exec "$m" systemctl daemon-reload
    docker exec "$m" systemctl enable --now fleetkit-agent.service 2>/dev/null
    (( i < 2 )) && docker exec "$m" systemctl enable --now fleetkit-scheduler.service 2>/dev/null
done
echo "\$ systemctl enable --now fleetkit-agent        # on each machine (lease TTL $AGENT_TTL s); and fleetkit-scheduler on two"
wait_for "four agents in list-machines" 30 machines_are 4
run clusterctl list-machines

# --- the tutorial's units ------------------------------------------------------
# No image can be pulled from outside here: the app is the lab registry's
# busybox httpd instead of marcuspoehls/node-etcd; everything else is the
# README's unit as it stands.
sed -e "s|marcuspoehls/node-etcd \\\\|$LAB_IMAGE httpd -f -p 3000 -h /www|" -e '/npm i && node server.js/d' \
    -e 's|--stop-timeout 10|--stop-timeout 10 --init|' \
    "$ROOT/dockrun/units/node-etcd@.service" >"$WORK/node-etcd@.service"
# The sidekick's announcement outlives a dead machine by its own lease TTL:
# it follows the agents' (the unit as shipped says 10 s, their default).
sed -e "s|--ttl 10 |--ttl $AGENT_TTL |" "$ROOT/announce/units/node-etcd-discovery@.service" \
    >"$WORK/node-etcd-discovery@.service"
cd "$WORK"
say "the app's unit (its image from the lab registry, pulled by each machine's engine)"
sed -n '/ExecStart/,/www/p' node-etcd@.service

say "for comparison: the same container by hand on three machines at once (docker run, no fleetkit)"
# Each from no image, as fleetkit's start below: the image goes again after.
IPS=()
for i in 0 1 2; do IPS+=("$(ip_of "$(docker exec "${MACHINES[$i]}" cat /etc/machine-id)")"); done
by_hand() {
    local ip
    for ip in "${IPS[@]}"; do
        exec 3<>"/dev/tcp/$ip/3001" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && timeout 3 cat <&3 | grep -q '^HTTP/1.. 200' || return 1
    done
}
t0=$(now_ms)
for i in 0 1 2; do
    docker exec "${MACHINES[$i]}" docker run -d --rm --pull always --name by-hand -p 3001:3000 "$LAB_IMAGE" \
        httpd -f -p 3000 -h /www >/dev/null &
done
wait
wait_for "three containers started by hand to answer" 20 by_hand
echo "by hand: $(( $(now_ms) - t0 )) ms from docker run to three containers answering HTTP"
for i in 0 1 2; do
    docker exec "${MACHINES[$i]}" sh -c "docker rm -f by-hand && docker rmi $LAB_IMAGE" >/dev/null
done

say "submit the two templates, start three instances: start returns when all six units are active"
run clusterctl submit node-etcd@.service node-etcd-discovery@.service
t0=$(now_ms)
run clusterctl start node-etcd@{1..3}.service
took "$t0"
IPS=()
for i in 1 2 3; do IPS+=("$(ip_of "$(machine_of "node-etcd@$i.service")")"); done
answering() { local ip; for ip in "${IPS[@]}"; do http "$ip" || return 1; done; }
wait_for "three HTTP answers" 20 answering
echo "start: $(( $(now_ms) - t0 )) ms from start to three instances answering HTTP"
run clusterctl list-units

say "each instance answers on its own machine's IP, port 3000, and is announced"
for i in 1 2 3; do
    printf 'node-etcd@%s on %s: ' "$i" "${IPS[$((i - 1))]}"
    http "${IPS[$((i - 1))]}" | tr '\n' ' '
    echo
done
wait_for "three announcements" 15 bash -c '[[ $(clusterctl list-announcements --no-legend /announce/services/ | wc -l) -eq 3 ]]'
run clusterctl list-announcements /announce/services/

say "a fourth and fifth instance: only one machine is free, so start says so at once"
set +e
run clusterctl start node-etcd@4.service node-etcd@5.service
echo "(exit status $?)"
set -e

# --- failover --------------------------------------------------------------------
BEFORE="$(machine_of node-etcd@1.service)"
DEAD_IP="$(ip_of "$BEFORE")"
DEAD=""
for i in "${!MACHINES[@]}"; do
    [[ "$(docker exec "${MACHINES[$i]}" cat /etc/machine-id)" == "$BEFORE" ]] && DEAD=${MACHINES[$i]}
done
say "machine $DEAD_IP (node-etcd@1's) loses power: docker kill"
run docker kill "$DEAD" >/dev/null
t0=$(now_ms)
moved() { local m; m="$(machine_of node-etcd@1.service)"; [[ -n "$m" && "$m" != "$BEFORE" ]] && active node-etcd@1.service && active node-etcd-discovery@1.service; }
wait_for "node-etcd@1 and its sidekick active on another machine (its lease TTL is $AGENT_TTL s)" 60 moved
NEW_IP="$(ip_of "$(machine_of node-etcd@1.service)")"
wait_for "node-etcd@1 to answer on $NEW_IP" 20 http "$NEW_IP"
wait_for "its announcement to point at $NEW_IP" 20 bash -c "clusterctl list-announcements --no-legend /announce/services/ | grep node-etcd1 | grep -q '$NEW_IP:3000'"
echo "failover: $(( $(now_ms) - t0 )) ms from the kill to the announcement pointing at $NEW_IP"
printf 'node-etcd@1 on %s: ' "$NEW_IP"
http "$NEW_IP" | tr '\n' ' '
echo
run clusterctl list-machines
run clusterctl list-units
run clusterctl list-announcements /announce/services/

say "done: removing the lab (machines, etcd, registry, network)"
