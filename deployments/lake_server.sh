#!/usr/bin/env bash
# A local PostgreSQL catalog for a DuckLake shared by several machines (or processes).
# Usage: deployments/lake_server.sh [start|stop|status|dsn]
#   state under $POTSTILL_LAKE_SERVER_DIR (default .lake-server/): pgdata/, socket/, server.log
#   $POTSTILL_LAKE_DATA: the lake's data path (default .lake-server/data; use shared storage or s3://...)
#   $POTSTILL_LAKE_PORT (default 5433); $POTSTILL_LAKE_LISTEN: also listen on TCP at this address
#   (e.g. 0.0.0.0 for other machines; add a pg_hba.conf line for their network).
# `start` installs Debian's postgresql package where initdb is missing, creates the cluster once,
# starts it and prints the --warehouse value: postgresql://...?data_path=...
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(mkdir -p "${POTSTILL_LAKE_SERVER_DIR:-.lake-server}" && cd "${POTSTILL_LAKE_SERVER_DIR:-.lake-server}" && pwd)"
PORT="${POTSTILL_LAKE_PORT:-5433}"
DATA="${POTSTILL_LAKE_DATA:-$DIR/data}"
USER_NAME=potstill
DB_NAME=potstill

find_bin() {
  local found; found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$found" ] && command -v initdb >/dev/null 2>&1; then found="$(dirname "$(readlink -f "$(command -v initdb)")")"; fi
  if [ -z "$found" ] && command -v apt-get >/dev/null 2>&1; then
    echo "initdb not found: installing Debian's postgresql package" >&2
    $( [ "$(id -u)" = 0 ] || echo sudo ) apt-get install -y -q postgresql >&2
    found="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  fi
  [ -n "$found" ] || { echo "no PostgreSQL server binaries (initdb, pg_ctl); install postgresql" >&2; exit 1; }
  echo "$found"
}

# PostgreSQL refuses to run as root: run its tools as the `postgres` user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dsn() {
  echo "postgresql://${USER_NAME}@/${DB_NAME}?host=${DIR}/socket&port=${PORT}&data_path=${DATA}"
}

start() {
  local bin; bin="$(find_bin)"
  mkdir -p "$DIR/socket" "$DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DIR" "$DIR/socket"; chmod 0755 "$DIR"; fi
  if [ ! -f "$DIR/pgdata/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$DIR/pgdata" -U "$USER_NAME" -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
      || { echo "initdb failed ($(tail -1 "$DIR/initdb.log")); see $DIR/initdb.log" >&2; exit 1; }
  fi
  if ! as_pg "$bin/pg_ctl" -D "$DIR/pgdata" status >/dev/null 2>&1; then
    local listen="${POTSTILL_LAKE_LISTEN:-}"
    as_pg "$bin/pg_ctl" -D "$DIR/pgdata" -l "$DIR/server.log" -w -t 60 \
      -o "-k $DIR/socket -p $PORT -c listen_addresses='$listen' -c max_connections=200" start >/dev/null \
      || { echo "PostgreSQL did not start; see $DIR/server.log" >&2; exit 1; }
  fi
  as_pg "$bin/psql" -h "$DIR/socket" -p "$PORT" -U "$USER_NAME" -d postgres -tAc \
    "select 1 from pg_database where datname = '$DB_NAME'" | grep -q 1 \
    || as_pg "$bin/createdb" -h "$DIR/socket" -p "$PORT" -U "$USER_NAME" "$DB_NAME"
  dsn
}

stop() {
  local bin; bin="$(find_bin)"
  if [ -f "$DIR/pgdata/PG_VERSION" ]; then as_pg "$bin/pg_ctl" -D "$DIR/pgdata" -m fast -w stop || true; fi
}

status() {
  local bin; bin="$(find_bin)"
  as_pg "$bin/pg_ctl" -D "$DIR/pgdata" status && dsn
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  dsn) dsn ;;
  *) echo "usage: $0 [start|stop|status|dsn]" >&2; exit 2 ;;
esac
