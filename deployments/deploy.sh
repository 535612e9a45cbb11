#!/usr/bin/env bash
# Register every deployment in deployments/prefect.yaml against the server at $PREFECT_API_URL
# (default: the local one from `make server`). Creates the work pools if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
export PREFECT_API_URL="${PREFECT_API_URL:-http://127.0.0.1:${POTSTILL_SERVER_PORT:-4200}/api}"
export POTSTILL_REPO="${POTSTILL_REPO:-$PWD}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
for pool in cpu gpu; do
  "$BIN/prefect" work-pool inspect "$pool" >/dev/null 2>&1 || "$BIN/prefect" work-pool create "$pool" --type process >/dev/null
done
"$BIN/prefect" concurrency-limit create gpu 1 >/dev/null 2>&1 || true  # one `gpu`-tagged shard at a time
"$BIN/prefect" --no-prompt deploy --all --prefect-file deployments/prefect.yaml
