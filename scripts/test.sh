#!/usr/bin/env bash
# Sets up everything the tests need and runs all of them:
# formatting, lints, unit and integration tests (SQLite and a real
# PostgreSQL, real headless Chromium), and an independent check of the demo
# FITS files with astropy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh test

# A throw-away PostgreSQL for the store and server tests.
pgdir=$(mktemp -d /tmp/insitu-test-pg.XXXXXX)
pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# A throw-away single-node Slurm cluster for the Slurm zone's tests (its own
# directory and node name; tests that stop slurmctld start one of their own).
slurmdir=$(mktemp -d /tmp/insitu-test-slurm.XXXXXX)
cleanup() {
  scripts/postgres.sh stop "$pgdir/data"; rm -rf "$pgdir"
  scripts/slurm.sh stop "$slurmdir" || true; rm -rf "$slurmdir"
}
trap cleanup EXIT
chmod 755 "$pgdir"
export INSITU_TEST_POSTGRES_URL=$(scripts/postgres.sh start "$pgdir/data" "$pgport")
export INSITU_REQUIRE_POSTGRES=1 INSITU_REQUIRE_BROWSER=1 INSITU_REQUIRE_SANDBOX=1 INSITU_REQUIRE_ISOLATION=1
echo "PostgreSQL for tests: $INSITU_TEST_POSTGRES_URL"
export INSITU_TEST_SLURM_CONF=$(scripts/slurm.sh start "$slurmdir" "insitu-test-$$")
export INSITU_REQUIRE_SLURM=1
echo "Slurm for tests: $INSITU_TEST_SLURM_CONF"

echo "== Python tools for labs (JupyterLab, astropy)"
scripts/venv.sh
export INSITU_REQUIRE_JUPYTER=1 INSITU_REQUIRE_DESKTOP=1

echo "== format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings

echo "== tests"
# The CWL engine is its own package; `insitu cwl` runs it (tested in it::cli).
cargo build --manifest-path crates/insitu-cwl/Cargo.toml --locked -q
export INSITU_REQUIRE_CWL=1
# Images for CWL tools' DockerRequirement (built once from Debian's packages).
scripts/cwl-images.sh
# The base image of the datalab templates (Python 3, venv, pip), once per machine.
scripts/devlab-images.sh
export INSITU_REQUIRE_CONTAINERS=1
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== CWL engine (crates/insitu-cwl, built on its own until it joins the workspace)"
cargo fmt --manifest-path crates/insitu-cwl/Cargo.toml --check
cargo clippy --manifest-path crates/insitu-cwl/Cargo.toml --all-targets --locked -q -- -D warnings
cargo test --manifest-path crates/insitu-cwl/Cargo.toml --locked -q
scripts/cwl-conformance.sh

echo "== demo FITS files checked by astropy"
demo=$(mktemp -d /tmp/insitu-demo-fits.XXXXXX)
cargo run -q --locked -p insitu-fits --example generate_demo -- "$demo" >/dev/null
.venv/bin/python crates/insitu-fits/tests/astropy_check.py "$demo"
rm -rf "$demo"
echo "all tests passed"
