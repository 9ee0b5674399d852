# Sourced by the bench scripts that need a local etcd: starts one member on
# free loopback ports with its data in $WORK (the caller's temp dir), exports
# ETCDCTL_API, ETCDCTL_ENDPOINTS and FLEETKIT_PREFIX=/bench, sets EP to its
# client address and ETCD_PID, and returns once it is healthy. The caller's
# EXIT trap kills $ETCD_PID.

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

start_etcd() {
    local cp pp
    cp="$(free_port)"
    pp="$(free_port)"
    while [[ "$pp" == "$cp" ]]; do pp="$(free_port)"; done
    etcd --name bench --data-dir "$WORK/etcd" --quota-backend-bytes 8589934592 \
        --listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
        --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
        --initial-cluster "bench=http://127.0.0.1:$pp" >"$WORK/etcd.log" 2>&1 &
    ETCD_PID=$!
    EP="127.0.0.1:$cp"
    export ETCDCTL_API=3 ETCDCTL_ENDPOINTS="$EP" FLEETKIT_PREFIX=/bench
    for _ in $(seq 1 100); do etcdctl endpoint health >/dev/null 2>&1 && return; sleep 0.1; done
    echo "bench: etcd did not become healthy (see $WORK/etcd.log)" >&2
    return 1
}
