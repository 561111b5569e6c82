#!/usr/bin/env bash
# Developed datalabs: a rebuild of an unchanged datalab, and the launch
# overhead of the container launcher against the sandbox launcher for the
# same tool (see devlabs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run >/dev/null
scripts/venv.sh
scripts/cwl-images.sh >/dev/null
scripts/devlab-images.sh >/dev/null
cargo build --release --locked -q -p insitu
exec python3 bench/devlabs.py "$@"
