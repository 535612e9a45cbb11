"""Runs whose process died become `abandoned`; NaN/inf/negative verify settings are refused naming the key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.verify.core import check_settings
from tasks.verify.verdicts import VerifyError

REPO = Path(__file__).resolve().parents[3]


def test_a_sigkilled_run_is_marked_abandoned_on_the_next_open(wh_path):
    from warehouse import Warehouse
    from warehouse.db import _migrated

    code = ("import os, time; from warehouse import Warehouse; from warehouse.runs import start_run\n"
            f"start_run(Warehouse({str(wh_path)!r}), flow_name='verify', stage='verify'); print('started', flush=True); "
            "time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "started"
    wh = Warehouse(wh_path)
    wh.ensure()
    assert wh.scalar("select status from meta.runs") == "running", "its process is alive"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _migrated.discard(wh.path)  # a new process opening the warehouse
    Warehouse(wh_path).ensure()
    status, finished, message = wh.query("select status, finished_at, error_message from meta.runs").row(0)
    assert status == "abandoned" and finished is not None
    assert f"process {proc.pid}" in message


@pytest.mark.parametrize(
    ("settings", "key"),
    [({"code_shard_size": -1}, "code_shard_size"), ({"code_wall_s": float("inf")}, "code_wall_s"),
     ({"math_deadline_s": float("nan")}, "math_deadline_s"), ({"shard_size": 0}, "shard_size"),
     ({"workers": 1.5}, "workers"), ({"limit": -3}, "limit")],
)
def test_bad_settings_are_refused_naming_the_key(settings, key):
    with pytest.raises(VerifyError, match=f"verify setting {key} "):
        check_settings(**settings)


def test_bad_sandbox_settings_are_refused():
    from tasks.verify.sandbox import SandboxConfig

    for bad in ({"wall_s": float("inf")}, {"memory_mb": -1}, {"cpu_s": 0}, {"scratch_mb": float("nan")}):
        with pytest.raises(ValueError, match=f"sandbox setting {next(iter(bad))} "):
            SandboxConfig(**bad)


def test_run_verify_refuses_before_starting_a_run(wh_path):
    from flows.verify import run_verify
    from warehouse import Warehouse

    with pytest.raises(VerifyError, match="code_shard_size"):
        run_verify(warehouse=str(wh_path), code_shard_size=-1)
    assert Warehouse(wh_path).scalar("select count(*) from meta.runs") == 0
