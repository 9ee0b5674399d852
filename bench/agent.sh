#!/usr/bin/env bash
# The machine agent on the lab: memory against etcdctl watch, assignment to
# active against systemctl start, etcd requests of idle agents. See agent.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p unitgen -p fleetkit-tests --bin unitgen --bin fleetkit-lab
# The machines run clusterctl as `make install` builds it: for size, as announce.
cargo build -q --profile small -p clusterctl
mkdir -p target/agent-bench
cp target/small/clusterctl target/agent-bench/clusterctl
exec python3 bench/agent.py
