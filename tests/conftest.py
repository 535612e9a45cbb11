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


@pytest.fixture(scope="session")
def _lake_template(tmp_path_factory) -> Path | None:
    """One migrated lake per session; each test gets a copy of its catalog (migrating a fresh lake takes seconds)."""
    if os.environ.get("POTSTILL_TEST_WAREHOUSE", "lake") != "lake":
        return None
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("lake-template") / "lake"
    # in a process of its own: when it exits, SQLite folds the catalog's WAL into the file, so a copy is whole
    subprocess.run([sys.executable, "-c", "import sys; from warehouse import Warehouse; Warehouse(sys.argv[1]).ensure()",
                    str(root)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert not (root / "catalog.sqlite-wal").exists() or (root / "catalog.sqlite-wal").stat().st_size == 0
    return root


@pytest.fixture
def wh_path(tmp_path: Path, _lake_template: Path | None) -> Path:
    """The test's warehouse: a lake folder (default), or a single file with POTSTILL_TEST_WAREHOUSE=file."""
    if _lake_template is None:
        return tmp_path / "warehouse.duckdb"
    import shutil
    import sqlite3

    root = tmp_path / "lake"
    shutil.copytree(_lake_template / "data", root / "data")
    shutil.copyfile(_lake_template / "catalog.sqlite", root / "catalog.sqlite")
    with sqlite3.connect(root / "catalog.sqlite") as catalog:  # the copy keeps its files in its own folder
        catalog.execute("update ducklake_metadata set value = ? where key = 'data_path'", [f"{root / 'data'}/"])
    return root


@pytest.fixture
def file_wh_path(tmp_path: Path) -> Path:
    """A single-file warehouse (the earlier format; its own locking behaviour is tested on it)."""
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
