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

.PHONY: venv demo ablation-quick test test-slow bench bench-scale deploy server server-stop lake-server lake-server-stop sandbox browser screenshots lint clean-venv toyworld toyworld-evaluate

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

# Headless Chromium (Debian `chromium`) for the trace-viewer tests and screenshots; idempotent,
# skipped when present; without root the tests that need it are skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| { if [ "$$(id -u)" -eq 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
		else echo "browser: need root to install chromium (viewer tests will be skipped)" >&2; fi; }

# PNGs of the latest demo's report and trace viewer for the README (after `make demo`).
screenshots: venv browser
	$(PY) -c "from flows.report import screenshots; from warehouse import Warehouse; print(*screenshots(Warehouse(read_only=True), 'docs/img'), sep='\n')"

demo: venv sandbox
	$(VENV)/bin/potstill demo

# The README's measured selection-ablation table: the demo's warehouse (built first when missing),
# then `potstill experiment compare-selections --preset quick`, timed with the machine's load; writes
# <warehouse dir>/ablation-quick.md and the README block between the ablation-quick markers.
ABLATION_WAREHOUSE ?= runs/ablation-quick/lake
ablation-quick: venv sandbox
	$(PY) bench/ablation_quick.py --warehouse $(ABLATION_WAREHOUSE)

test: venv sandbox browser
	$(PY) -m pytest

test-slow: venv sandbox browser
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

# A local PostgreSQL catalog for a lake shared by several machines; prints the --warehouse DSN.
lake-server:
	bash deployments/lake_server.sh start

lake-server-stop:
	bash deployments/lake_server.sh stop

# Rebuild the toy world (data + models; deterministic, ~30+ CPU minutes) and re-measure its model cards.
toyworld: venv
	$(PY) -m toyworld.build

toyworld-evaluate: venv
	$(PY) -m toyworld.build --evaluate
