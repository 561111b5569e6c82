#!/usr/bin/env bash
# Runs the CWL v1.2 conformance suite (../shared/cwl-v1.2, not copied into
# the repository) with cwltest from PyPI against our engine; fails when a
# test tagged `required` fails. Prints pass counts per tag.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
suite=${INSITU_CWL_SUITE:-$root/../shared/cwl-v1.2}
[ -f "$suite/conformance_tests.yaml" ] || { echo "error: no CWL conformance suite at $suite" >&2; exit 1; }
[ -x .venv/bin/python3 ] || scripts/venv.sh
.venv/bin/pip install -q --disable-pip-version-check cwltest
cargo build --locked -q --manifest-path crates/insitu-cwl/Cargo.toml
engine="${CARGO_TARGET_DIR:-$root/crates/insitu-cwl/target}/debug/insitu-cwl"
out=$(mktemp -d /tmp/insitu-cwltest.XXXXXX)
work=$(mktemp -d /tmp/insitu-cwl-suite.XXXXXX)
# cwltest runs from the suite's directory; a copy keeps ../shared untouched.
cp -r "$suite/." "$work/"
(cd "$work" && "$root/.venv/bin/cwltest" --test conformance_tests.yaml \
    --tool "$engine" -j2 --timeout 120 \
  --junit-xml "$out/junit.xml" > "$out/cwltest.log" 2>&1) || true
tail -n 3 "$out/cwltest.log"
python3 scripts/cwl_report.py "$out/junit.xml"
rm -rf "$work" "$out"
