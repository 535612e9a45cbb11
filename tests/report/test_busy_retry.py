"""A WarehouseBusyError inside a flow's task is retried by Prefect with backoff, naming the holder;
any other error is not retried."""

from __future__ import annotations

import logging

import pytest
from prefect import flow, task

from flows import common
from warehouse import WarehouseBusyError

CALLS: list[str] = []


@task
def sometimes_busy(kind: str) -> str:
    CALLS.append(kind)
    if kind == "busy" and CALLS.count("busy") < 3:
        raise WarehouseBusyError("warehouse is busy: held by PID 4242; retry or point --warehouse elsewhere (w.duckdb)")
    if kind == "broken":
        raise ValueError("not a lock problem")
    return kind


@flow
def uses_the_warehouse(kind: str) -> str:
    return common.call_task(sometimes_busy, kind)


def test_busy_warehouse_is_retried_with_backoff_and_named(prefect_harness, monkeypatch, caplog):
    monkeypatch.setattr(common, "BUSY_BACKOFF_S", 0.1)
    CALLS.clear()
    with caplog.at_level(logging.WARNING):
        assert uses_the_warehouse("busy") == "busy"
    assert CALLS.count("busy") == 3
    lines = [r.getMessage() for r in caplog.records if "held by PID 4242" in r.getMessage()]
    assert len(lines) == 2 and "Prefect retry 1 of 4" in lines[0], lines
    CALLS.clear()
    with pytest.raises(ValueError, match="not a lock problem"):
        uses_the_warehouse("broken")
    assert CALLS == ["broken"]
