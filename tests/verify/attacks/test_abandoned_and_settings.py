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

    code = ("import os, time; from warehouse import Warehouse; from warehouse.runs import stage_run\n"
            f"with stage_run(Warehouse({str(wh_path)!r}), 'verify'):\n"
            "    print('started', flush=True); time.sleep(60)")
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


def test_without_bubblewrap_code_verification_refuses_in_one_line(monkeypatch, wh_path):
    import json

    import polars as pl

    from flows.verify import run_verify
    from tasks.verify import sandbox
    from warehouse import Warehouse

    monkeypatch.setattr(sandbox, "_probe", lambda tier: tier != "bwrap")
    wh = Warehouse(wh_path)
    now = pl.datetime(2025, 1, 1)
    wh.load("raw.raw_prompts", pl.DataFrame([{
        "prompt_id": "pc", "source": "t", "domain": "code", "problem_text": "f", "reference_answer": None,
        "tests_json": json.dumps(["assert f(1) == 2"]), "split": "train", "run_id": "seed"}]).with_columns(
        now.alias("ingested_at")), key=["prompt_id"])
    wh.load("raw.raw_traces", pl.DataFrame([{
        "trace_id": "t1", "prompt_id": "pc", "model_id": "m", "origin": "imported", "sample_index": 0,
        "completion_text": "```python\ndef f(x):\n    return x + 1\n```", "is_truncated": False, "run_id": "seed"}]).with_columns(
        now.alias("created_at")), key=["trace_id"])
    with pytest.raises(VerifyError) as err:
        run_verify(warehouse=str(wh_path), workers=1)
    message = str(err.value)
    assert "\n" not in message and "bubblewrap" in message and "apt-get install bubblewrap" in message
    assert "committed before the failure: 0 verdicts" in message
    assert wh.scalar("select count(*) from raw.raw_verifications") == 0
    assert wh.scalar("select status from meta.runs") == "failed"


@pytest.mark.parametrize(
    ("pair", "key"),
    [("code_shard_size=-1", "code_shard_size"), ("code_wall_s=.inf", "code_wall_s"), ("math_deadline_s=.nan", "math_deadline_s"),
     ("isolation=bogus", "isolation"), ("workers=0", "workers")],
)
def test_recipe_validation_refuses_bad_verify_settings_naming_the_key(pair, key):
    import yaml

    from flows.recipe import RecipeError, validate_stage_params

    name, value = pair.split("=", 1)
    with pytest.raises(RecipeError, match=f"{key}: "):
        validate_stage_params("verify", {name: yaml.safe_load(value)}, where="run verify")
