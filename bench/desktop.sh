#!/usr/bin/env bash
# VNC over WebSocket through the lab proxy against a direct connection, with
# the proxy's memory sampled (see desktop.py; --duration 600 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run >/dev/null
scripts/venv.sh
cargo build --release --locked -q -p insitu
exec python3 bench/desktop.py "$@"
