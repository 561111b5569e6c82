#!/usr/bin/env bash
# Memory per idle WebSocket through the lab proxy: 1,000 (or N) WebSockets
# opened through the Insitu proxy and, in the same run, through nginx as a
# reverse proxy, to the same echo server; each checked with one echo, then
# held idle. The proxy's resident memory is read from /proc before and with
# the connections open. Usage: bench/websockets.sh [N] [hold seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; hold=${2:-5}
ulimit -n "$(ulimit -Hn)"
scripts/deps.sh test >/dev/null
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
cargo build --release --locked -q -p insitu-proxy --example bench_proxy --example ws_idle
work=$(mktemp -d /tmp/insitu-bench-ws.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(port); np=$(port); ip=$(port)
cat > "$work/nginx.conf" <<NGINX
worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err; daemon off;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server { listen 127.0.0.1:$np;
    location / { proxy_pass http://127.0.0.1:$up; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
      proxy_read_timeout 1h; } }
}
NGINX
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ex=target/release/examples
$ex/ws_idle serve "127.0.0.1:$up" & pids+=($!)
nginx -c "$work/nginx.conf" & pids+=($!)
$ex/bench_proxy "127.0.0.1:$up" "127.0.0.1:$ip" > "$work/cookie" & proxy=$!; pids+=($proxy)
for _ in $(seq 50); do [ -s "$work/cookie" ] && [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
cookie=$(cat "$work/cookie")
nginx_worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

measure() {
  local name=$1 pid=$2 url=$3; shift 3
  # Warm up with a few connections so one-off allocations are not counted.
  $ex/ws_idle hold "$url" 10 0 "$@" >/dev/null
  local before; before=$(rss "$pid")
  $ex/ws_idle hold "$url" "$n" "$hold" "$@" > "$work/hold.out" &
  local client=$!
  for _ in $(seq 600); do grep -q '^open' "$work/hold.out" 2>/dev/null && break; sleep 0.1; done
  grep -q '^open' "$work/hold.out" || { echo "$name: connections did not open" >&2; exit 1; }
  sleep 1
  local during; during=$(rss "$pid")
  wait "$client"
  printf '%-26s %6d idle WebSockets   RSS %7d KiB -> %7d KiB   %6.1f KiB per connection\n' \
    "$name" "$n" "$before" "$during" "$(awk -v a="$before" -v b="$during" -v n="$n" 'BEGIN { print (b - a) / n }')"
}
echo "$n idle WebSockets held ${hold}s, each checked with one echo; $(nproc) cores"
measure "nginx as reverse proxy" "$nginx_worker" "ws://127.0.0.1:$np/labs/bench/ws"
measure "insitu lab proxy" "$proxy" "ws://127.0.0.1:$ip/labs/bench/ws" "$cookie"
