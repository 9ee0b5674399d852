#!/usr/bin/env python3
"""The machine agent's benchmark, on the machine lab (real machines, real
systemd, a three-member etcd), each number beside its reference in the same
run:

1. resident memory of `clusterctl agent` against `etcdctl watch --prefix` on
   the same machine (goal: at most 1/3);
2. from an assignment written to etcd to the machine reporting the unit
   active, against `systemctl start` of the same kind of unit run directly
   on that machine (goal: under 100 ms more, median);
3. etcd requests made by four idle agents over a minute, read from every
   member's metrics (goal: lease keep-alives only).

Run by bench/agent.sh (`make bench`), which builds the release binaries.
Talks to etcd through its JSON gateway with Python's standard library, so the
client's own start-up is not in the timings.
"""

import base64
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.join(ROOT, "target", "release", "fleetkit-lab")
BIN = os.path.join(ROOT, "target", "release")
# What the machines run: clusterctl as `make install` builds it (AGENT_BIN overrides).
AGENT_BIN = os.environ.get("AGENT_BIN", os.path.join(ROOT, "target", "agent-bench"))
AGENT_UNIT = os.path.join(ROOT, "clusterctl", "units", "fleetkit-agent.service")
TRIALS = int(os.environ.get("TRIALS", "20"))
IDLE_SECS = int(os.environ.get("IDLE_SECS", "60"))


def sh(*args, check=True):
    out = subprocess.run(args, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"bench/agent: {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Gateway:
    """etcd's v3 JSON gateway over one kept-alive HTTP connection."""

    def __init__(self, hostport):
        host, port = hostport.split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def call(self, path, body):
        self.conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            sys.exit(f"bench/agent: etcd {path}: {resp.status} {data[:200]!r}")
        return json.loads(data or b"{}")

    def put(self, key, value):
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def get(self, key):
        r = self.call("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def delete(self, key):
        return self.call("/v3/kv/deleterange", {"key": b64(key)})


def watch_states(hostport, prefix, seen, stop):
    """Streams PUTs under `prefix` into `seen` (key -> time the report said active)."""
    host, port = hostport.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=None)
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = {"create_request": {"key": b64(prefix), "range_end": b64(end)}}
    conn.request("POST", "/v3/watch", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    buf = b""
    try:
        follow(resp, buf, seen, stop)
    except (http.client.HTTPException, OSError):
        pass  # the lab went away under the stream: the benchmark is over


def follow(resp, buf, seen, stop):
    while not stop.is_set():
        chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(1)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                events = json.loads(line).get("result", {}).get("events", [])
            except ValueError:
                continue
            now = time.monotonic()
            for ev in events:
                kv = ev.get("kv", {})
                key = base64.b64decode(kv.get("key", "")).decode()
                value = base64.b64decode(kv.get("value", "") or "").decode()
                if '"active":"active"' in value and key not in seen:
                    seen[key] = now


def rss_kib(machine, pid):
    status = sh("docker", "exec", machine, "cat", f"/proc/{pid}/status")
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def metrics(endpoints):
    """Requests etcd has served, by gRPC method, summed over the members."""
    counts = {}
    for ep in endpoints:
        host = ep.split("://")[-1]
        conn = http.client.HTTPConnection(*host.split(":"), timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        for m in re.finditer(r'^grpc_server_msg_received_total\{grpc_method="(\w+)",grpc_service="([\w.]+)",grpc_type="\w+"\} (\S+)', text, re.M):
            key = f"{m.group(2).split('.')[-1]}.{m.group(1)}"
            counts[key] = counts.get(key, 0) + float(m.group(3))
    return counts


def main():
    env = dict(line.split("=", 1) for line in sh(LAB, "up", "--machines", "4", "--etcd", "3", "--bin", AGENT_BIN).splitlines())
    env = {k: v.strip("'") for k, v in env.items()}
    lab = env["LAB"]
    try:
        run(env)
    finally:
        sh(LAB, "down", lab, check=False)


def run(env):
    machines = env["LAB_MACHINES"].split()
    ids = env["LAB_IDS"].split()
    endpoints = env["ETCDCTL_ENDPOINTS"].split(",")
    gw = Gateway(endpoints[0].split("://")[-1])
    for m in machines:
        sh("docker", "cp", AGENT_UNIT, f"{m}:/etc/systemd/system/fleetkit-agent.service")
        sh("docker", "exec", m, "systemctl", "daemon-reload")
        sh("docker", "exec", m, "systemctl", "enable", "--now", "fleetkit-agent.service")
    m, mid = machines[0], ids[0]

    # 2. Assignment to active, against systemctl start on the machine.
    units = []
    with tempfile.TemporaryDirectory() as tmp:
        template = os.path.join(tmp, "bench@.service")
        with open(template, "w") as f:
            f.write("[Service]\nExecStart=/bin/sleep infinity\n")
        records = sh(os.path.join(BIN, "unitgen"), "-i", f"1..{TRIALS}", template)
    for line in records.splitlines():
        record = json.loads(line)
        gw.put(f"/fleetkit/units/{record['name']}", line)
        units.append((record["name"], record["hash"]))
    seen, stop = {}, threading.Event()
    t = threading.Thread(target=watch_states, args=(endpoints[1].split("://")[-1], f"/fleetkit/states/{mid}/", seen, stop), daemon=True)
    t.start()
    time.sleep(1)
    agent_ms = []
    for name, digest in units:
        key = f"/fleetkit/states/{mid}/{name}"
        t0 = time.monotonic()
        gw.put(f"/fleetkit/assign/{mid}/{name}", json.dumps({"hash": digest, "state": "launched"}))
        deadline = t0 + 10
        while key not in seen and time.monotonic() < deadline:
            time.sleep(0.0005)
        if key not in seen:
            sys.exit(f"bench/agent: {name} was not reported active within 10 s")
        agent_ms.append((seen[key] - t0) * 1000)
    stop.set()
    # The reference, on the same machine: systemctl start of a unit whose file
    # is in place and loaded; and, as a person would do it for a new unit,
    # writing the file, daemon-reload, then systemctl start.
    ref_ms, ref_new_ms = [], []
    for i in range(TRIALS):
        name = f"ref-{i}.service"
        out = sh("docker", "exec", m, "sh", "-c",
                 f"printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /run/systemd/system/{name} && systemctl daemon-reload && "
                 f"a=$(date +%s%N); systemctl start {name}; b=$(date +%s%N); echo $((b-a))")
        ref_ms.append(int(out.splitlines()[-1]) / 1e6)
        name = f"refnew-{i}.service"
        out = sh("docker", "exec", m, "sh", "-c",
                 f"a=$(date +%s%N); printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /run/systemd/system/{name} && "
                 f"systemctl daemon-reload && systemctl start {name}; b=$(date +%s%N); echo $((b-a))")
        ref_new_ms.append(int(out.splitlines()[-1]) / 1e6)
    agent_med, ref_med, ref_new_med = statistics.median(agent_ms), statistics.median(ref_ms), statistics.median(ref_new_ms)

    # 1. Memory, once the agent has its units and is idle.
    agent_pid = sh("docker", "exec", m, "systemctl", "show", "-p", "MainPID", "--value", "fleetkit-agent.service")
    agent_rss = rss_kib(m, agent_pid)
    watcher = subprocess.Popen(["docker", "exec", m, "sh", "-c",
                                f"set -a; . /etc/environment; exec etcdctl watch --prefix /fleetkit/assign/{mid}/"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    watch_pid = sh("docker", "exec", m, "pgrep", "-f", "etcdctl watch --prefix")
    watch_rss = rss_kib(m, watch_pid.split()[0])
    watcher.kill()
    sh("docker", "exec", m, "pkill", "-f", "etcdctl watch --prefix", check=False)

    # 3. Requests of four idle agents over a minute.
    time.sleep(2)
    before = metrics(endpoints)
    time.sleep(IDLE_SECS)
    after = metrics(endpoints)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: int(v) for k, v in delta.items() if v > 0}
    others = {k: v for k, v in delta.items() if k != "Lease.LeaseKeepAlive"}

    print(f"agent resident memory: {agent_rss} KiB; etcdctl watch --prefix: {watch_rss} KiB; ratio {agent_rss / watch_rss:.2f} (goal <= 0.33)")
    print(f"assignment to active, median of {TRIALS}: agent {agent_med:.1f} ms; systemctl start on the machine {ref_med:.1f} ms; "
          f"difference {agent_med - ref_med:.1f} ms (goal < 100 ms)")
    print(f"  agent p90 {statistics.quantiles(agent_ms, n=10)[-1]:.1f} ms; systemctl p90 {statistics.quantiles(ref_ms, n=10)[-1]:.1f} ms")
    print(f"  a new unit by hand (write the file, daemon-reload, systemctl start): median {ref_new_med:.1f} ms; agent/that {agent_med / ref_new_med:.2f}")
    print(f"etcd requests by 4 idle agents in {IDLE_SECS} s: {delta or 'none'}; other than keep-alives: {others or 'none'}")


if __name__ == "__main__":
    main()
