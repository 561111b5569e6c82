#!/usr/bin/env bash
# Benchmark: CWL steps on Slurm, side by side in one run: a 200-job scatter
# of a trivial tool on the local engine, on Slurm with jobs grouped in
# allocations (the default), and on Slurm with one batch job per step
# (`--slurm-grouping none`, on 20 steps and extrapolated, since it takes
# seconds a step); then the cost of one job in a held allocation against one
# `srun` step inside an allocation. bench/slurm_cwl.py does the timing.
#
# Usage: bench/slurm_cwl.sh [SLURM_CONF] [extra slurm_cwl.py flags, e.g. --runs 5 --n 1000]
# The cluster: SLURM_CONF (argument or environment), default
# /work/slurm1/slurm.conf; `scripts/slurm.sh start DIR` starts one.
set -euo pipefail
cd "$(dirname "$0")/.."
conf=${1:-${SLURM_CONF:-/work/slurm1/slurm.conf}}
[ $# -gt 0 ] && shift
[ -f "$conf" ] || { echo "no slurm.conf at $conf (scripts/slurm.sh start DIR)" >&2; exit 2; }

echo "== building insitu-cwl (release)" >&2
(cd crates/insitu-cwl && cargo build --release --locked -q --bin insitu-cwl)
engine=$(pwd)/crates/insitu-cwl/target/release/insitu-cwl

echo "== cluster" >&2
SLURM_CONF=$conf sinfo -N -o "%N %c cpus %m MiB %G" >&2
SLURM_CONF=$conf sinfo --version >&2
exec python3 bench/slurm_cwl.py --engine "$engine" --slurm-conf "$conf" "$@"
