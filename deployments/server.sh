#!/usr/bin/env bash
# Start a local Prefect server on 127.0.0.1 and one process worker per work pool (cpu, gpu).
# Usage: deployments/server.sh [start|stop|status]   (state and logs under $POTSTILL_SERVER_DIR, default .prefect-server/)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
DIR="${POTSTILL_SERVER_DIR:-.prefect-server}"
PORT="${POTSTILL_SERVER_PORT:-4200}"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/$DIR/home}"
export PREFECT_API_URL="http://127.0.0.1:${PORT}/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
mkdir -p "$DIR" "$PREFECT_HOME"

start() {
  if [ -f "$DIR/server.pid" ] && kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
    echo "server already running (PID $(cat "$DIR/server.pid")) at $PREFECT_API_URL"
  else
    nohup "$BIN/prefect" server start --host 127.0.0.1 --port "$PORT" >"$DIR/server.log" 2>&1 &
    echo $! >"$DIR/server.pid"
  fi
  for _ in $(seq 1 120); do
    if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen('$PREFECT_API_URL/health', timeout=2)" 2>/dev/null; then break; fi
    sleep 1
  done
  "$BIN/python" -c "import urllib.request; urllib.request.urlopen('$PREFECT_API_URL/health', timeout=2)" \
    || { echo "Prefect server did not come up; see $DIR/server.log" >&2; exit 1; }
  for pool in cpu gpu; do
    "$BIN/prefect" work-pool inspect "$pool" >/dev/null 2>&1 || "$BIN/prefect" work-pool create "$pool" --type process >/dev/null
    if ! { [ -f "$DIR/worker-$pool.pid" ] && kill -0 "$(cat "$DIR/worker-$pool.pid")" 2>/dev/null; }; then
      nohup "$BIN/prefect" worker start --pool "$pool" --type process >"$DIR/worker-$pool.log" 2>&1 &
      echo $! >"$DIR/worker-$pool.pid"
    fi
  done
  "$BIN/prefect" work-pool set-concurrency-limit gpu 1 >/dev/null  # one GPU flow run at a time
  "$BIN/prefect" concurrency-limit create gpu 1 >/dev/null 2>&1 || true  # one `gpu`-tagged task (shard) at a time
  echo "Prefect server at ${PREFECT_API_URL%/api} (UI); workers for pools cpu and gpu running; logs in $DIR/"
  echo "export PREFECT_API_URL=$PREFECT_API_URL"
}

stop() {
  for f in "$DIR"/worker-*.pid "$DIR/server.pid"; do
    [ -f "$f" ] && { kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; }
  done
  echo "stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) for f in "$DIR"/*.pid; do [ -f "$f" ] && echo "$(basename "$f" .pid): $(kill -0 "$(cat "$f")" 2>/dev/null && echo running || echo dead)"; done ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
