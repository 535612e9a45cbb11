"""The CLI talks: one-line errors for bad recipes and overrides, data printed literally (no rich
markup or ANSI escapes from data), `status` lists curate runs, `--json` is a flag."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from flows.cli import _safe
from tests.conftest import REPO


def _cli(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("recipe", "sets", "expected"), [
    ("name: x\nversion: 1\nbogus_key: 1\n", [], "bogus_key"),
    ("name: x\nversion: 1\nstages:\n  generate:\n    limitt: 3\n", [], "unknown key 'limitt'"),
    (None, ["--set", "generate.bogus=1"], "unknown key 'bogus'"),
    (None, ["--set", "nodot=1"], "STAGE.KEY"),
])
def test_bad_recipe_or_override_is_at_most_two_lines(tmp_path, recipe, sets, expected):
    args = ["--warehouse", str(tmp_path / "w.duckdb"), "run", "curate"]
    if recipe is not None:
        path = tmp_path / "bad.yaml"
        path.write_text(recipe)
        args += ["--recipe", str(path)]
    done = _cli(*args, *sets, tmp_path=tmp_path)
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode != 0 and len(lines) <= 2, lines
    assert expected in lines[-1] and "Traceback" not in done.stderr


def test_missing_recipe_file_is_one_line(tmp_path):
    done = _cli("run", "curate", "--recipe", str(tmp_path / "typo.yaml"), tmp_path=tmp_path)
    assert done.returncode != 0 and (done.stdout + done.stderr).strip() == f"error: --recipe {tmp_path / 'typo.yaml'}: no such file"


def test_data_is_printed_literally():
    buf = io.StringIO()
    console = Console(file=buf, width=200)
    console.print(f"value: {_safe('[/x] [bold]b[/bold] ' + chr(27) + '[31mred')}")  # [/x] alone would raise MarkupError
    assert buf.getvalue() == "value: [/x] [bold]b[/bold] \\x1b[31mred\n"


def test_status_json_is_a_flag_and_lists_curate_runs(tmp_path, wh):
    from warehouse.runs import finish_run, start_run

    run_id = start_run(wh, flow_name="curate", stage="curate", config={"x": 1})
    finish_run(wh, run_id, stats={"recipe": "toy", "stages": [{"stage": "publish", "dataset": "toy@1"}]})
    done = _cli("status", "--json", "--warehouse", str(wh.path), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["curate_runs"][0]["run_id"] == run_id and status["curate_runs"][0]["published"] == "toy@1"
    assert status["curate_runs"][0]["recipe"] == "toy"
