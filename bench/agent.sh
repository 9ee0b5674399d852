#!/usr/bin/env bash
# The machine agent on the lab: memory against etcdctl watch, assignment to
# active against systemctl start, etcd requests of idle agents. See agent.py.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p clusterctl -p unitgen -p fleetkit-tests --bin clusterctl --bin unitgen --bin fleetkit-lab
exec python3 bench/agent.py
