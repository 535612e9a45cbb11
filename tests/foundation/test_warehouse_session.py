"""`Warehouse.session()`: one open connection for a block of work, same transactions and results as without it."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime

import polars as pl
import pytest

from warehouse import Warehouse


def _runs(ids):
    return pl.DataFrame({"run_id": ids, "flow_name": "f", "stage": "s", "status": "running",
                         "started_at": [datetime(2026, 1, 1)] * len(ids)})


def _count_opens(monkeypatch, wh: Warehouse) -> list[int]:
    opened = [0]
    real = wh._connect_once

    def counting():
        opened[0] += 1
        return real()

    monkeypatch.setattr(wh, "_connect_once", counting)
    return opened


def test_session_opens_the_file_once_for_many_reads_and_writes(wh, monkeypatch):
    wh.ensure()
    opened = _count_opens(monkeypatch, wh)
    with wh.session():
        for i in range(4):
            assert wh.load("meta.runs", _runs([f"r{i}"]), key=["run_id"]) == 1
            assert wh.scalar("select count(*) from meta.runs") == i + 1
        with wh.session():  # nested: the same session
            wh.query("select * from meta.runs")
    assert opened[0] == 1
    wh.scalar("select 1")  # outside a session: a connection per call again
    assert opened[0] == 2


def test_failed_transaction_in_a_session_rolls_back_only_itself(wh):
    with wh.session():
        wh.load("meta.runs", _runs(["kept"]), key=["run_id"])
        with pytest.raises(RuntimeError), wh.transaction() as con:
            wh.load("meta.runs", _runs(["lost"]), key=["run_id"], con=con)
            raise RuntimeError("boom")
        assert wh.query("select run_id from meta.runs")["run_id"].to_list() == ["kept"]
        with wh.transaction() as con:  # the session's connection is usable after the rollback
            wh.load("meta.runs", _runs(["after"]), key=["run_id"], con=con)
    assert sorted(wh.query("select run_id from meta.runs")["run_id"]) == ["after", "kept"]


def test_session_is_per_thread(wh, monkeypatch):
    wh.ensure()
    opened = _count_opens(monkeypatch, wh)
    with wh.session():
        worker = threading.Thread(target=lambda: wh.load("meta.runs", _runs(["other"]), key=["run_id"]))
        worker.start()
        worker.join()
        assert wh.scalar("select count(*) from meta.runs") == 1
    assert opened[0] == 2, "the other thread opened its own connection"


def test_file_is_released_when_the_session_ends(wh, wh_path):
    with wh.session():
        wh.load("meta.runs", _runs(["mine"]), key=["run_id"])
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1]); "
            "print(con.execute('select count(*) from meta.runs').fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", code, str(wh_path)], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "1"


def test_one_connection_shares_the_session_with_every_warehouse_of_the_file(wh, wh_path, monkeypatch):
    from warehouse import one_connection

    wh.ensure()
    opens = [0]
    real = Warehouse._connect_once

    def counting(self):
        opens[0] += 1
        return real(self)

    monkeypatch.setattr(Warehouse, "_connect_once", counting)

    @one_connection
    def shard(warehouse: str, ids: list[str]) -> int:
        inner = Warehouse(warehouse)  # a task builds its own instance
        inner.load("meta.runs", _runs(ids), key=["run_id"])
        return inner.scalar("select count(*) from meta.runs")

    assert shard(str(wh_path), ["a", "b"]) == 2
    assert opens[0] == 1
    assert shard.__name__ == "shard"
