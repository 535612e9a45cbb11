#!/usr/bin/env bash
# GPU check: hf backend vs bare generate on CUDA, teacher-forced scoring vs bare forward, SFT steps/s,
# and vLLM when POTSTILL_VLLM_PYTHON is set. Runs under .venv/bin/python if present, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${POTSTILL_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec timeout "${GPU_CHECK_TIMEOUT_S:-300}" "$PY" bench/gpu_check.py "$@"
