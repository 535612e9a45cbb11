"""Shared fixtures: a temp warehouse per test, one ephemeral Prefect API per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Prefect must see these before it is imported anywhere.
_PREFECT_HOME = tempfile.mkdtemp(prefix="potstill-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_LOGGING_LEVEL"] = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
TOYWORLD = REPO / "toyworld"


@pytest.fixture
def wh_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def wh(wh_path: Path):
    from warehouse import Warehouse

    return Warehouse(wh_path)


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for the whole session (cold start is 7-12 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
