#!/usr/bin/env bash
# Launch overhead of a lab against the tool's bare start-up (see launch.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run >/dev/null
scripts/venv.sh
cargo build --release --locked -q -p insitu
exec python3 bench/launch.py "$@"
