#!/usr/bin/env bash
# Proxy benchmark: requests/s and latency at 50 connections to one backend
# (nginx serving a 1 KiB file), directly, through nginx as a reverse proxy,
# through configurable-http-proxy (npm, when it installs) and through the
# Insitu lab proxy, in one run. Usage: bench/proxy.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
scripts/deps.sh test >/dev/null
command -v nginx >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
cargo build --release --locked -q -p insitu-proxy --example bench_proxy
work=$(mktemp -d /tmp/insitu-bench-proxy.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(port); np=$(port); ip=$(port); cp=$(port)
mkdir -p "$work/www/labs/bench"; head -c 1024 /dev/zero | tr '\0' 'x' > "$work/www/labs/bench/index.html"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err; daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server 127.0.0.1:$up; keepalive 64; }
  server { listen 127.0.0.1:$up; root $work/www; }
  server { listen 127.0.0.1:$np; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
NGINX
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
nginx -c "$work/nginx.conf" & pids+=($!)
sleep 0.5
target/release/examples/bench_proxy "127.0.0.1:$up" "127.0.0.1:$ip" > "$work/cookie" & pids+=($!)
for _ in $(seq 50); do [ -s "$work/cookie" ] && break; sleep 0.1; done
cookie=$(cat "$work/cookie")
chp=""
if command -v npm >/dev/null && (cd "$work" && npm install --silent --no-audit --no-fund configurable-http-proxy >/dev/null 2>&1); then
  "$work/node_modules/.bin/configurable-http-proxy" --ip 127.0.0.1 --port "$cp" --api-port "$(port)" \
    --default-target "http://127.0.0.1:$up" --log-level error & pids+=($!)
  sleep 1.5; chp=1
fi

run() {
  local name=$1 url=$2; shift 2
  local out; out=$(wrk -t2 -c50 -d"${secs}s" --latency "$@" "$url")
  printf '%-34s %10s req/s   p50 %-9s p99 %s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")"
}
echo "wrk, 2 threads, 50 connections, ${secs}s each, $(nproc) cores, 1 KiB body"
run "direct (nginx static)" "http://127.0.0.1:$up/labs/bench/index.html"
run "nginx as reverse proxy" "http://127.0.0.1:$np/labs/bench/index.html"
[ -n "$chp" ] && run "configurable-http-proxy" "http://127.0.0.1:$cp/labs/bench/index.html"
run "insitu lab proxy" "http://127.0.0.1:$ip/labs/bench/index.html" -H "Cookie: $cookie"
