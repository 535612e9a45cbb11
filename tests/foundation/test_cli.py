"""The potstill CLI, run as a user runs it (a subprocess of the installed entry point's module)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.foundation.test_warehouse import _hold_lock


def potstill(*args: str, wh_path=None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "flows.cli"]
    if wh_path is not None:
        cmd += ["--warehouse", str(wh_path)]
    proc = subprocess.run(cmd + list(args), check=False, capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def loaded(tmp_path, wh_path):
    data = tmp_path / "p.jsonl"
    data.write_text("\n".join(json.dumps({"problem": f"Compute {i} + 1.", "answer": str(i + 1)}) for i in range(3)) + "\n{bad\n")
    out = potstill("ingest", "prompts", str(data), wh_path=wh_path)
    assert "read 4, accepted 3" in out.stdout and "invalid_json=1" in out.stdout
    return wh_path


def test_sql_in_three_formats(loaded):
    query = "select count(*) as n from raw.raw_prompts"
    assert "3" in potstill("sql", query, wh_path=loaded).stdout
    assert list(csv.DictReader(io.StringIO(potstill("sql", query, "--format", "csv", wh_path=loaded).stdout))) == [{"n": "3"}]
    assert json.loads(potstill("sql", query, "--format", "json", wh_path=loaded).stdout) == [{"n": 3}]


def test_status_json(loaded):
    status = json.loads(potstill("status", "--json", wh_path=loaded).stdout)
    assert status["tables"]["raw.raw_prompts"] == 3 and status["tables"]["raw.raw_rejections"] == 1
    assert status["recent_runs"][0]["stage"] == "ingest"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sql", "select * from no_such_table"), "no_such_table"),
        (("sql", "select 1", "--format", "xml"), "--format 'xml'"),
        (("ingest", "prompts", "/no/such/file.jsonl"), "no such file"),
        (("ingest", "prompts", "x.jsonl", "--map", "nonsense"), "expected FIELD=COLUMN"),
    ],
)
def test_errors_are_one_line_without_traceback(loaded, args, message):
    proc = potstill(*args, wh_path=loaded, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_debug_shows_traceback(loaded):
    proc = potstill("--debug", "sql", "select * from no_such_table", wh_path=loaded, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_warehouse_is_a_clear_error(tmp_path):
    proc = potstill("sql", "select 1", wh_path=tmp_path / "none.duckdb", check=False)
    assert proc.returncode == 1 and "potstill init" in proc.stderr


def test_busy_warehouse_is_a_clear_error(loaded, monkeypatch):
    proc_holder = _hold_lock(loaded, 20)
    try:
        script = ("import warehouse.db as d; d.Warehouse.__init__.__defaults__; "
                  "import sys; sys.argv=['potstill','--warehouse',sys.argv[1],'sql','select 1']; "
                  "import flows.cli as c; c.main()")
        proc = subprocess.run([sys.executable, "-c", script, str(loaded)], check=False, capture_output=True, text=True,
                              timeout=60)
    finally:
        proc_holder.kill()
        proc_holder.wait()
    assert proc.returncode == 1
    assert f"warehouse is busy: held by PID {proc_holder.pid}; retry or point --warehouse elsewhere" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_command_has_help():
    top = potstill("--help").stdout
    for command in ("init", "ingest", "sql", "status"):
        assert command in top
    for path in (["init"], ["ingest", "prompts"], ["ingest", "traces"], ["sql"], ["status"]):
        assert "--help" in potstill(*path, "--help").stdout or "Usage" in potstill(*path, "--help").stdout


def test_init_is_idempotent(tmp_path):
    path = tmp_path / "w.duckdb"
    assert "migration(s) applied" in potstill("init", wh_path=path).stdout
    assert "up to date" in potstill("init", wh_path=path).stdout
