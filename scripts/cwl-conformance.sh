#!/usr/bin/env bash
# Runs the CWL v1.2 conformance suite (../shared/cwl-v1.2, not copied into
# the repository) with cwltest from PyPI against `insitu cwl run`; fails
# when a test tagged `required` fails. Prints pass counts per tag.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
suite=${INSITU_CWL_SUITE:-$root/../shared/cwl-v1.2}
[ -f "$suite/conformance_tests.yaml" ] || { echo "error: no CWL conformance suite at $suite" >&2; exit 1; }
[ -x .venv/bin/python3 ] || scripts/venv.sh
.venv/bin/pip install -q --disable-pip-version-check cwltest
cargo build --locked -q --manifest-path crates/insitu-cwl/Cargo.toml
cargo build --locked -q -p insitu
insitu="${CARGO_TARGET_DIR:-$root/target}/debug/insitu"
out=$(mktemp -d /tmp/insitu-cwltest.XXXXXX)
# cwltest wants one program; this one is `insitu cwl run`, which finds the
# engine the way an installation does. Tools run sandboxed, as by default:
# where bubblewrap cannot make a sandbox every test fails with exit 69 (not
# 33, so a broken sandbox is never counted as an unsupported feature).
# INSITU_CWL_ARGS adds flags to every run (e.g. "--slurm-conf /work/slurm1/slurm.conf"
# for the suite on Slurm).
engine="$out/insitu-cwl-run"
printf '#!/bin/sh\nexec "%s" cwl run %s "$@"\n' "$insitu" "${INSITU_CWL_ARGS:-}" > "$engine"
chmod +x "$engine"
work=$(mktemp -d /tmp/insitu-cwl-suite.XXXXXX)
# cwltest runs from the suite's directory; a copy keeps ../shared untouched.
cp -r "$suite/." "$work/"
(cd "$work" && "$root/.venv/bin/cwltest" --test conformance_tests.yaml \
    --tool "$engine" -j2 --timeout 120 \
  --junit-xml "$out/junit.xml" > "$out/cwltest.log" 2>&1) || true
tail -n 3 "$out/cwltest.log"
python3 scripts/cwl_report.py "$out/junit.xml"
rm -rf "$work" "$out"
