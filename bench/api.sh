#!/usr/bin/env bash
# Benchmark: API listing endpoints at 50 concurrent connections (wrk), on a
# release build of the embedded default (SQLite), side by side with nginx
# serving a static file of the same size on the same machine.
# Usage: bench/api.sh [seconds]   Prints requests/s and latency percentiles.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
scripts/deps.sh test >/dev/null
command -v nginx >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
cargo build --release --locked -q -p insitu
work=$(mktemp -d /tmp/insitu-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
INSITU_LISTEN=127.0.0.1:$port INSITU_DATA_DIR=$work/data INSITU_ADMIN__PASSWORD=bench-password-123 INSITU_LOG=warn \
  target/release/insitu demo >"$work/server.log" 2>&1 &
server=$!
nginx_pid=""
cleanup() { kill $server 2>/dev/null || true; [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
token=$(curl -sf "http://127.0.0.1:$port/api/v1/auth/token" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"bench-password-123","token_name":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

run() { # name url [header]
  local name=$1 url=$2; shift 2
  local out; out=$(wrk -t2 -c50 -d"${secs}s" --latency "$@" "$url")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-28s %10s req/s   p50 %-9s p99 %s\n' "$name" "$rps" "$p50" "$p99"
}

# nginx baseline: a static file the size of the datalab listing.
body=$(curl -sf "http://127.0.0.1:$port/api/v1/datalabs" -H "authorization: Bearer $token")
mkdir -p "$work/www"; printf '%s' "$body" > "$work/www/datalabs.json"
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/nginx.conf" <<NGINX
worker_processes 2; pid $work/nginx.pid; error_log $work/nginx.err; daemon off;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$nport; root $work/www; } }
NGINX
nginx -c "$work/nginx.conf" & nginx_pid=$!
sleep 0.5

echo "wrk, 2 threads, 50 connections, ${secs}s each, $(nproc) cores"
run "nginx static (baseline)" "http://127.0.0.1:$nport/datalabs.json"
run "GET /api/v1/datalabs" "http://127.0.0.1:$port/api/v1/datalabs" -H "authorization: Bearer $token"
run "GET /api/v1/datalabs?(filtered)" "http://127.0.0.1:$port/api/v1/datalabs?kind=desktop&q=fits" -H "authorization: Bearer $token"
run "GET /api/v1/volumes" "http://127.0.0.1:$port/api/v1/volumes" -H "authorization: Bearer $token"
run "GET /healthz" "http://127.0.0.1:$port/healthz"
