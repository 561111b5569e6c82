#!/usr/bin/env bash
# Lab launch through Slurm against the local zone, side by side in one run
# (see slurm_labs.py): a single-node cluster of its own (scripts/slurm.sh),
# `insitu demo` with that cluster as the zone `cluster`, JupyterLab launched
# alternately in `local` and in `cluster`. Goal: Slurm adds at most 1 s.
# Usage: bench/slurm_labs.sh [rounds] [debug|release]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}; profile=${2:-release}
scripts/deps.sh test >/dev/null
scripts/venv.sh >/dev/null
if [ "$profile" = release ]; then cargo build --release --locked -q -p insitu; else cargo build --locked -q -p insitu; fi
work=$(mktemp -d /tmp/insitu-bench-slurm.XXXXXX)
chmod 711 "$work"
cleanup() { kill "${server:-}" 2>/dev/null || true; wait "${server:-}" 2>/dev/null || true
  scripts/slurm.sh stop "$work/cluster" >/dev/null 2>&1 || true
  scripts/release-mounts.sh "$work"; rm -rf "$work"; }
trap cleanup EXIT
conf=$(scripts/slurm.sh start "$work/cluster" "insitu-bench-$$")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/insitu.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$work/data"
[proxy]
listen = "127.0.0.1:$pport"
public_url = "http://127.0.0.1:$pport"
[admin]
password = "bench-password-123"
[labs]
tool_path = ["$(pwd)/.venv/bin"]
expose = ["$(pwd)"]
[[zones]]
name = "cluster"
title = "Benchmark cluster"
kind = "slurm"
slurm_conf = "$conf"
partition = "main"
TOML
INSITU_LOG=warn "target/$profile/insitu" demo --config "$work/insitu.toml" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "insitu ($profile build), $(nproc) cores, Slurm $(SLURM_CONF=$conf sinfo -V | awk '{print $2}'), one node"
python3 bench/slurm_labs.py "http://127.0.0.1:$port" "$rounds"
