# potstill: every target creates .venv idempotently, then acts.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.potstill-installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: venv demo test test-slow bench bench-scale deploy server server-stop sandbox lint clean-venv toyworld toyworld-evaluate

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,semantic]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the code sandbox uses (bubblewrap); idempotent, skipped when present. Code
# verification refuses to run without a working bubblewrap unless a weaker tier is chosen explicitly.
sandbox:
	@if [ -x tasks/verify/install_sandbox.sh ] || [ -f tasks/verify/install_sandbox.sh ]; then bash tasks/verify/install_sandbox.sh; fi

demo: venv sandbox
	$(VENV)/bin/potstill demo

test: venv sandbox
	$(PY) -m pytest

test-slow: venv sandbox
	$(PY) -m pytest -m slow

bench: venv sandbox
	$(PY) bench/run_all.py

bench-scale: venv
	$(PY) bench/bench_scale.py

lint: venv
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)

server: venv
	bash deployments/server.sh start

server-stop:
	bash deployments/server.sh stop

deploy: venv
	bash deployments/deploy.sh

# Rebuild the toy world (data + models; deterministic, ~30+ CPU minutes) and re-measure its model cards.
toyworld: venv
	$(PY) -m toyworld.build

toyworld-evaluate: venv
	$(PY) -m toyworld.build --evaluate
