"""DeadlinePool: per-item outcomes, hard kill at the deadline, crashed workers replaced, order kept."""

from __future__ import annotations

import os
import time

import pytest

from tasks.verify.pool import DeadlinePool, PoolError


@pytest.fixture(scope="module")
def pool():
    with DeadlinePool(2, deadline_s=1.5, memory_limit_mb=512) as p:
        yield p


def test_outcomes_in_input_order(pool):
    out = pool.map(pow, [(2, 10), (3, 3), (5, 0)])
    assert [(o.kind, o.value) for o in out] == [("ok", 1024), ("ok", 27), ("ok", 1)]


def test_hung_item_is_killed_at_the_deadline_and_the_batch_goes_on(pool):
    killed_before = pool.n_killed
    started = time.monotonic()
    out = pool.map(time.sleep, [(60,), (0,), (60,), (0,)])
    elapsed = time.monotonic() - started
    assert [o.kind for o in out] == ["timeout", "ok", "timeout", "ok"]
    assert pool.n_killed == killed_before + 2
    assert elapsed < 30, f"two 60 s sleeps under a 1.5 s deadline took {elapsed:.0f} s"
    assert pool.map(pow, [(2, 2)])[0].value == 4  # the replacements work


def test_dead_worker_is_an_outcome_not_an_exception(pool):
    out = pool.map(os._exit, [(3,)])
    assert out[0].kind == "crashed"
    assert pool.map(abs, [(-1,)])[0].value == 1


def test_exceptions_and_memory_bombs_are_reported_per_item(pool):
    out = pool.map(int, [("not a number",), ("12",)])
    assert (out[0].kind, out[1].value) == ("raised", 12)
    assert out[0].detail.startswith("ValueError")
    bomb = pool.map(bytearray, [(4 * 1024**3,)])[0]
    assert bomb.kind == "raised" and "MemoryError" in bomb.detail


def test_per_call_deadline_overrides_the_default(pool):
    out = pool.map(time.sleep, [(0.3,)], deadline_s=0.1)
    assert out[0].kind == "timeout"


def test_invalid_settings_and_broken_preload_are_clear_errors():
    with pytest.raises(ValueError, match="deadline_s"):
        DeadlinePool(1, deadline_s=0)
    with pytest.raises(PoolError, match="no_such_module_xyz"):
        DeadlinePool(1, preload=("no_such_module_xyz",), start_timeout_s=30).start()
