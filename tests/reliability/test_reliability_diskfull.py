"""Disk full on the warehouse path (a 3 MB tmpfs): a clear error, committed rows intact afterwards."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest

from tests.conftest import REPO
from warehouse import Warehouse, WarehouseError
from warehouse.runs import utcnow


def _prompts(n: int, prefix: str, text_bytes: int = 8) -> pl.DataFrame:
    return pl.DataFrame({
        "prompt_id": [f"{prefix}{i:07d}" for i in range(n)],
        "source": "diskfull", "domain": "math", "split": "train",
        "problem_text": [os.urandom(text_bytes).hex() for _ in range(n)],  # incompressible
        "ingested_at": utcnow(), "run_id": "diskfull",
    }).with_columns(pl.col("ingested_at").cast(pl.Datetime("us")))


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs; skipped where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=False, capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({done.stderr.strip() or 'mount failed'}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(wh: Warehouse) -> BaseException:
    """Commit 50 rows, then try to load far more than the disk holds; returns what was raised."""
    assert wh.load("raw.raw_prompts", _prompts(50, "ok"), key=["prompt_id"]) == 50
    with pytest.raises(Exception) as raised:
        wh.load("raw.raw_prompts", _prompts(200_000, "big", 32), key=["prompt_id"])
    return raised.value


def _count_in_fresh_process(path: str) -> int:
    """Count from another process, read-only as `potstill sql`/`status` open it (a read-write open
    re-creates the views first, which cannot succeed while the disk is full)."""
    code = ("import sys; from warehouse import Warehouse; "
            f"print(Warehouse({path!r}, read_only=True).scalar('select count(*) from raw.raw_prompts'))")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_disk_full_leaves_committed_rows_intact_and_the_warehouse_usable(small_disk):
    path = str(small_disk / "w.duckdb")
    wh = Warehouse(path)
    _fill(wh)
    assert wh.scalar("select count(*) from raw.raw_prompts") == 50
    assert wh.scalar("select count(*) from raw.raw_prompts where prompt_id like 'big%'") == 0, "nothing half-written"
    assert _count_in_fresh_process(path) == 50, "the file on disk holds exactly the committed rows"
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert wh.load("raw.raw_prompts", _prompts(10, "after"), key=["prompt_id"]) == 10, "writable once space is back"
    assert _count_in_fresh_process(path) == 60


@pytest.mark.slow
def test_disk_full_raises_a_warehouse_error_naming_it(small_disk):
    raised = _fill(Warehouse(str(small_disk / "w.duckdb")))
    assert isinstance(raised, WarehouseError), f"{type(raised).__name__}: {raised}"
    assert "disk full" in str(raised) and "raw.raw_prompts" in str(raised)
