#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server for the tests and prints its admin URL.
# Usage: scripts/postgres.sh start DIR PORT | stop DIR
# The server runs as the `postgres` system user, listens on 127.0.0.1 only and
# trusts local connections: it holds nothing but test databases.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?data directory}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
case "$cmd" in
start)
  port=${3:-54329}
  if [ -f "$dir/postmaster.pid" ] && "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "postgres://postgres@127.0.0.1:$port/postgres"; exit 0
  fi
  rm -rf "$dir"; mkdir -p "$dir"; chown postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir" -A trust -U postgres >"$dir.init.log" 2>&1
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
    start >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
  ;;
esac
