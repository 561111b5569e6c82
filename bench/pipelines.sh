#!/usr/bin/env bash
# Pipelines through the platform: 100 concurrent small runs from 10 users
# (runs per minute), and a 1,000-job scatter through the platform against
# the CWL engine alone (see pipelines.py).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p insitu
(cd crates/insitu-cwl && cargo build --release --locked -q --bin insitu-cwl)
exec python3 bench/pipelines.py "$@"
