#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the storage tests; prints the URL to use.
# Installs the Debian packages if they are missing. The server runs as the `postgres` user
# (PostgreSQL refuses root) in a fresh data folder, on localhost only, and is stopped by
# `.ci/postgres.sh stop DATA_DIR`.
set -euo pipefail
PORT="${EFFSEARCH_PG_PORT:-55432}"
if [[ "${1:-}" == "stop" ]]; then
  runuser -u postgres -- "$(ls -d /usr/lib/postgresql/*/bin | tail -1)/pg_ctl" -D "$2" -m fast stop >/dev/null
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(ls -d /usr/lib/postgresql/*/bin | tail -1)"
DATA="$(mktemp -d /tmp/effsearch-pg.XXXXXX)"
chown postgres "$DATA"
as_postgres() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
as_postgres "$BIN/initdb" -D "$DATA/data" -A trust -U postgres >/dev/null
as_postgres "$BIN/pg_ctl" -D "$DATA/data" -l "$DATA/log" -w \
  -o "-p $PORT -k $DATA -c listen_addresses=localhost" start >/dev/null
psql -h localhost -p "$PORT" -U postgres -qc "create database effsearch_test" >/dev/null
echo "$DATA/data postgresql+psycopg://postgres@localhost:$PORT/effsearch_test"
