"""A small `potstill demo` (60 problems, a 3-step fine-tune) run twice: every funnel stage of both
curate runs reconciles (in = out + rejected, reasons sum to rejected), the Outcome comes first with
intervals and the training steps, and the trace viewer has one row per dataset row."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import polars as pl
import pytest
import yaml

from flows.report import build_report, dataset_viewer
from tests.conftest import REPO
from warehouse import Warehouse

pytestmark = pytest.mark.slow

SETS = ["generate.limit=60", "generate.shard_size=20", "select.budget=60"]


def _tiny_train_recipe(tmp_path, base_model: str | None = None, name: str = "train_tiny") -> str:
    spec = yaml.safe_load((REPO / "deployments" / "recipes" / "train_demo.yaml").read_text())
    spec["train"].update(max_steps=3, logging_steps=1, max_train_minutes=None)
    spec["evaluate"].update(limit=6, k=1)
    if base_model:
        spec["base_model"] = base_model
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _demo(wh_path, recipe, env) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "flows.cli", "--warehouse", str(wh_path), "demo"]
    for pair in [*SETS, f"finetune.recipe={recipe}"]:
        args += ["--set", pair]
    return subprocess.run(args, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def test_demo_report_reconciles_on_every_stage_and_run(tmp_path):
    wh_path = tmp_path / "w.duckdb"
    # the re-run trains "another checkout's" student: same weights in another folder is the same
    # training run (reused, not retrained), and its evaluation is found for the report
    moved = tmp_path / "elsewhere" / "student"
    shutil.copytree(REPO / "toyworld" / "models" / "student", moved)
    recipes = {"first": _tiny_train_recipe(tmp_path), "re-run": _tiny_train_recipe(tmp_path, str(moved), "train_moved")}
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
    for attempt in ("first", "re-run"):
        done = _demo(wh_path, recipes[attempt], env)
        assert done.returncode == 0, f"{attempt}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "Outcome" in done.stdout and "reconciles" in done.stdout
    wh = Warehouse(str(wh_path), read_only=True)
    runs = wh.query("select run_id from meta.runs where stage = 'curate' order by started_at")["run_id"].to_list()
    assert len(runs) == 2
    assert wh.scalar("select count(*) from meta.training_runs") == 1
    for run_id in runs:
        report = build_report(wh, run_id)
        funnel = report.funnel
        assert {"ingest (prompts)", "generate", "dedup (prompts)", "dedup (traces)", "select", "publish"} <= set(funnel["stage"])
        bad = funnel.filter(~pl.col("reconciles").fill_null(False))
        assert bad.is_empty(), f"{run_id}: {bad.to_dicts()}"
        assert report.outcome[0].startswith("student pass@1") and "95% CI" in report.outcome[0]
        assert report.outcome[1].startswith("training: 3 of 3 planned steps")
    # the re-run did only missing work, yet its select rejections are counted (once per trace)
    select = build_report(wh, runs[1]).funnel.filter(pl.col("stage") == "select").row(0, named=True)
    assert select["n_in"] == select["n_out"] + select["n_rejected"] and select["n_rejected"] > 0
    spec = wh.scalar("select dataset_name || '@' || version from curated.cur_datasets order by version desc limit 1")
    name, version = spec.split("@")
    n_rows = wh.scalar("select count(*) from curated.cur_dataset_rows where dataset_name = ? and version = ?", [name, int(version)])
    assert len(re.findall(r'<tr class="trace" ', dataset_viewer(wh, spec))) == n_rows
