#!/usr/bin/env bash
# dockrun vs the attached `docker run` client, side by side in one run:
#   - resident memory (VmRSS) of the supervising process while the container runs;
#   - time from starting the process to the container answering HTTP on its
#     published port.
# Same image (busybox built locally from Debian's busybox-static, no pulls),
# same command (busybox httpd), same flags; runs alternate, medians reported.
# Goals (issue 6): RSS at most a third of docker's; start no slower than docker run's.
set -euo pipefail

RUNS=${RUNS:-7}
cd "$(dirname "$0")/.."

cargo build --release -q -p dockrun
DOCKRUN=$PWD/target/release/dockrun
DOCKER=$(command -v docker)

# The image: busybox and the two applets used, imported under a content tag.
BUSYBOX=/bin/busybox
TAG="fleetkit-bench-busybox:$( (sha256sum "$BUSYBOX"; echo v1) | sha256sum | cut -c1-12)"
if ! docker image inspect "$TAG" >/dev/null 2>&1; then
    ROOT=$(mktemp -d)
    mkdir -p "$ROOT/rootfs/bin" "$ROOT/rootfs/www" "$ROOT/rootfs/tmp"
    cp "$BUSYBOX" "$ROOT/rootfs/bin/busybox"
    for applet in sh httpd; do ln -s busybox "$ROOT/rootfs/bin/$applet"; done
    echo "fleetkit bench" >"$ROOT/rootfs/www/index.html"
    tar --numeric-owner --owner=0 --group=0 -C "$ROOT/rootfs" -cf "$ROOT/rootfs.tar" .
    docker import --change 'CMD ["/bin/sh"]' "$ROOT/rootfs.tar" "$TAG" >/dev/null
    rm -rf "$ROOT"
fi

LABEL="fleetkit.bench=dockrun-$$"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    ids=$(docker ps -aq --filter "label=$LABEL")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }

# run_one TOOL NAME: starts TOOL's process serving on a free port, prints
# "<ms to first HTTP 200> <VmRSS KiB>", then stops it and waits for the end.
run_one() {
    local tool=$1 name=$2 port pid start answered rss deadline
    port=$(free_port)
    local args=(--name "$name" --label "$LABEL" --init -p "127.0.0.1:$port:80" "$TAG" httpd -f -p 80 -h /www)
    start=$(now_ms)
    if [ "$tool" = dockrun ]; then
        "$DOCKRUN" "${args[@]}" </dev/null >/dev/null 2>&1 &
    else
        "$DOCKER" run --rm "${args[@]}" </dev/null >/dev/null 2>&1 &
    fi
    pid=$!
    PIDS+=("$pid")
    deadline=$((start + 30000))
    until [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port/")" = 200 ]; do
        if [ "$(now_ms)" -gt "$deadline" ]; then echo "$tool: no answer on port $port" >&2; exit 1; fi
    done
    answered=$(now_ms)
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" || true
    # docker run --rm removes asynchronously; wait until the name is free.
    while docker inspect "$name" >/dev/null 2>&1; do :; done
    echo "$((answered - start)) $rss"
}

: >"${TMPDIR:-/tmp}/fk-bench-dr.$$"
: >"${TMPDIR:-/tmp}/fk-bench-dc.$$"
for i in $(seq "$RUNS"); do
    run_one dockrun "fk-bench-dr-$$-$i" >>"${TMPDIR:-/tmp}/fk-bench-dr.$$"
    run_one docker "fk-bench-dc-$$-$i" >>"${TMPDIR:-/tmp}/fk-bench-dc.$$"
done

dr_ms=$(cut -d' ' -f1 "${TMPDIR:-/tmp}/fk-bench-dr.$$" | median)
dc_ms=$(cut -d' ' -f1 "${TMPDIR:-/tmp}/fk-bench-dc.$$" | median)
dr_rss=$(cut -d' ' -f2 "${TMPDIR:-/tmp}/fk-bench-dr.$$" | median)
dc_rss=$(cut -d' ' -f2 "${TMPDIR:-/tmp}/fk-bench-dc.$$" | median)
rm -f "${TMPDIR:-/tmp}/fk-bench-dr.$$" "${TMPDIR:-/tmp}/fk-bench-dc.$$"

echo "dockrun vs docker run ($("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null || echo '?') client, engine $(docker version --format '{{.Server.Version}}')), median of $RUNS runs"
printf '%-34s %12s %12s %8s\n' "metric" "dockrun" "docker run" "ratio"
printf '%-34s %12s %12s %8s\n' "RSS while supervising (KiB)" "$dr_rss" "$dc_rss" "$(awk -v a="$dr_rss" -v b="$dc_rss" 'BEGIN {printf "%.2f", a/b}')"
printf '%-34s %12s %12s %8s\n' "start to HTTP 200 (ms)" "$dr_ms" "$dc_ms" "$(awk -v a="$dr_ms" -v b="$dc_ms" 'BEGIN {printf "%.2f", a/b}')"
