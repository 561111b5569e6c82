#!/usr/bin/env bash
# Restart of the platform with running labs, to every lab answering through
# the proxy again (see restart.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run >/dev/null
cargo build --release --locked -q -p insitu
exec python3 bench/restart.py "$@"
