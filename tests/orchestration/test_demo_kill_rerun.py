"""`potstill demo`, SIGKILLed while it generates, then run again: it completes, with no duplicate
row, without regenerating the shards that had committed, and publishes, fine-tunes and evaluates.

A smaller demo (`--set` overrides: 60 problems, shards of 20 requests, a 3-step fine-tune) keeps
it to a few minutes; the code path is the one `make demo` runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest
import yaml

from tests.conftest import REPO
from warehouse import Warehouse, WarehouseError

pytestmark = pytest.mark.slow

SETS = ["generate.limit=60", "generate.shard_size=20", "select.budget=60"]


def _demo(wh_path, recipe, log, env) -> subprocess.Popen:
    args = [sys.executable, "-m", "flows.cli", "--warehouse", str(wh_path), "demo"]
    for pair in [*SETS, f"finetune.recipe={recipe}"]:
        args += ["--set", pair]
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _tiny_train_recipe(tmp_path) -> str:
    spec = yaml.safe_load((REPO / "deployments" / "recipes" / "train_demo.yaml").read_text())
    spec["train"].update(max_steps=3, logging_steps=1, max_train_minutes=None)
    spec["evaluate"].update(limit=6, k=1)
    path = tmp_path / "train_tiny.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_demo_killed_mid_generation_then_rerun(tmp_path):
    wh_path = tmp_path / "w.duckdb"
    recipe = _tiny_train_recipe(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
    wh = Warehouse(str(wh_path), busy_timeout_s=60)
    shards_sql = "select count(*) from raw.raw_generation_shards"
    with open(tmp_path / "first.log", "w") as log:
        proc = _demo(wh_path, recipe, log, env)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the demo ended (exit {proc.returncode}) before it was killed: {(tmp_path / 'first.log').read_text()[-3000:]}"
            try:
                if wh_path.exists() and wh.scalar(shards_sql) >= 1:
                    break
            except (WarehouseError, duckdb.Error):  # no schema yet, or the writer holds the file: poll again
                pass
            time.sleep(0.3)
        else:
            pytest.fail("generation committed no shard within 600 s")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    shards_before = wh.query("select shard_id, run_id from raw.raw_generation_shards")
    generated_before = wh.scalar("select count(*) from raw.raw_traces where origin = 'generated'")
    assert 0 < generated_before < 120, "killed in the middle of generation (60 problems x 2 teachers)"

    with open(tmp_path / "second.log", "w") as log:
        rerun = _demo(wh_path, recipe, log, env)
        assert rerun.wait(timeout=1200) == 0, (tmp_path / "second.log").read_text()[-3000:]
    output = (tmp_path / "second.log").read_text()
    assert "accuracy_before" in output and "accuracy_after" in output

    assert wh.scalar("select count(*) from raw.raw_traces where origin = 'generated'") == 120
    assert wh.scalar("select count(*) - count(distinct trace_id) from raw.raw_traces") == 0, "no duplicate trace"
    after = wh.query("select shard_id, run_id from raw.raw_generation_shards")
    kept = after.join(shards_before, on=["shard_id", "run_id"], how="inner")
    assert kept.height == shards_before.height, "shards committed before the kill are still the killed run's"
    assert after["shard_id"].n_unique() == after.height, "no shard generated twice"
    regenerated = wh.scalar("select n_out from meta.runs where stage = 'generate' and status = 'completed'")
    assert regenerated == 120 - generated_before, "the re-run generated only what was missing"
    for table, key in [("raw.raw_verifications", "trace_id, verifier, verifier_version, input_hash"), ("raw.raw_prompts", "prompt_id")]:
        assert wh.scalar(f"select count(*) from (select {key} from {table} group by all having count(*) > 1)") == 0, table
    assert wh.scalar("select count(*) from curated.cur_datasets") == 1
    assert wh.scalar("select count(*) from meta.training_runs where status = 'completed'") == 1
