#!/usr/bin/env bash
# GPU check at real model sizes: bash bench/gpu_check.sh --size 0.5b|1.5b [--checks generation,scoring,sft]
# Random-init Qwen2-shaped models built by the script (nothing downloaded); hf generation backend vs bare
# generate and vs the decode roofline, teacher-forced scoring vs a bare batched forward, SFT vs a plain loop.
# Prints ratios, writes bench/results/gpu_check-SIZE.json. `--size tiny` runs the same code on CPU in seconds.
# Runs under .venv/bin/python if present, else python3 (POTSTILL_PYTHON overrides); killed after 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${POTSTILL_PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TOKENIZERS_PARALLELISM=false
exec timeout "${GPU_CHECK_TIMEOUT_S:-480}" "$PY" bench/gpu_check.py "$@"
