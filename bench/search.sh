#!/usr/bin/env bash
# Benchmark: the discovery index (tantivy + the zones spatial index) against
# PostgreSQL 15 holding the same synthetic dataset records (full-text search
# with a GIN index, cone search with Debian's q3c extension), in one run:
# build rate, then p50/p99 of a selective text query with a mission filter
# and instrument counts, a broad text query (~20% of records) with mission
# counts, and a 0.5 degree cone, from two client threads each; also the CPU
# seconds the index build used, which hold on a busy machine.
# Usage: bench/search.sh [records] [queries per client]   (1000000, 500)
# Starts its own PostgreSQL (installing postgresql and postgresql-15-q3c
# when missing) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
queries=${2:-500}
need=()
command -v /usr/lib/postgresql/15/bin/initdb >/dev/null || need+=(postgresql-15)
dpkg -s postgresql-15-q3c >/dev/null 2>&1 || need+=(postgresql-15-q3c)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q -p insitu-search --example search_bench
work=$(mktemp -d /tmp/insitu-search-bench.XXXXXX)
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { scripts/postgres.sh stop "$work/pg"; rm -rf "$work"; }
trap cleanup EXIT
url=$(scripts/postgres.sh start "$work/pg" "$port")
target/release/examples/search_bench "$records" "$url" "$queries"
