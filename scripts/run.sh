#!/usr/bin/env bash
# Sets up and runs Insitu on its embedded default (SQLite, demo data volumes).
# Prints the URL to open and the administrator's login.
# Settings: INSITU_LISTEN (default 127.0.0.1:8080), INSITU_DATA_DIR (default var).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
echo "installing JupyterLab and astropy into .venv..."
scripts/venv.sh
echo "building insitu (release; the first build takes several minutes)..."
cargo build --release --locked -q -p insitu
cargo build --release --locked -q --manifest-path crates/insitu-cwl/Cargo.toml
exec target/release/insitu demo "$@"
