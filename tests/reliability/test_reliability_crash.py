"""SIGKILL mid-run and two runs at once on one warehouse: a re-run finishes the work with no
duplicate and no lost row; concurrent runs wait or fail with a clear error, nothing corrupt.

(SIGKILL during generation is covered by tests/generate/test_generate_flow.py
`test_sigkill_loses_at_most_the_shard_in_flight`.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.synth import SynthConfig, synth_batch, write_synthetic
from flows.ingest import SHARD_ROWS, run_ingest
from flows.score import SCORE_KEY, run_score
from flows.verify import VERDICT_KEY, run_verify
from tests.conftest import REPO
from warehouse import Warehouse
from warehouse.runs import REJECTION_KEY

pytestmark = pytest.mark.slow


def _spawn(code: str, log) -> subprocess.Popen:
    """A child python in its own session (so its worker processes die with it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_LOGGING_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _kill_when(proc: subprocess.Popen, wh: Warehouse, sql: str, at_least: int, timeout_s: float = 300) -> int:
    """SIGKILL the child's whole process group once `sql` counts at least `at_least`; returns that count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the child finished (exit {proc.returncode}) before it could be killed mid-run")
        if wh.path and os.path.exists(wh.path) and wh.scalar(sql) >= at_least:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"no progress within {timeout_s} s: {sql}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    return wh.scalar(sql)


def _duplicates(wh: Warehouse, table: str, key: list[str]) -> int:
    cols = ", ".join(key)
    return wh.scalar(f"select count(*) from (select {cols} from {table} group by all having count(*) > 1)")


def test_sigkill_during_verification_then_rerun_judges_every_trace_once(wh_path, tmp_path):
    wh = Warehouse(str(wh_path), busy_timeout_s=60)
    n_traces = write_synthetic(wh, 400, SynthConfig(exact_dup_rate=0, near_dup_rate=0))["traces"]
    shard = 20
    with open(tmp_path / "child.log", "w") as log:
        proc = _spawn(f"from flows.verify import run_verify; run_verify(warehouse={str(wh_path)!r}, workers=1, "
                      f"shard_size={shard})", log)
        done_before = _kill_when(proc, wh, "select count(*) from raw.raw_verifications", shard)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < done_before < n_traces, "killed mid-run"
    assert done_before % shard == 0, "a shard's verdicts commit together or not at all"
    assert wh.scalar("select status from meta.runs where stage = 'verify'") == "running", "the killed run never finished"

    stats = run_verify(warehouse=str(wh_path), workers=1, shard_size=shard)
    assert stats["n_in"] == n_traces - done_before, "the re-run does only the missing work"
    assert wh.scalar("select count(*) from raw.raw_verifications") == n_traces
    assert wh.scalar("select count(distinct trace_id) from raw.raw_verifications") == n_traces, "no trace lost"
    assert _duplicates(wh, "raw.raw_verifications", VERDICT_KEY) == 0
    assert _duplicates(wh, "raw.raw_rejections", REJECTION_KEY) == 0
    assert run_verify(warehouse=str(wh_path), workers=1)["n_in"] == 0, "nothing left"


def _prompt_file(path, n: int, bad: int) -> None:
    with open(path, "w") as handle:
        handle.writelines(json.dumps({"problem": f"Crash-test problem {i}: compute {i} + {i}.", "answer": str(2 * i)}) + "\n"
                          for i in range(n))
        # rejections last, so every full shard holds exactly SHARD_ROWS prompts
        handle.writelines('{"problem": "cut mid-line ' + str(i) + "\n" for i in range(bad))


def test_sigkill_during_a_warehouse_load_then_rerun_has_every_row_once(wh_path, tmp_path):
    n, bad = 6 * SHARD_ROWS, 7
    source = tmp_path / "prompts.jsonl"
    _prompt_file(source, n, bad)
    wh = Warehouse(str(wh_path), busy_timeout_s=60)
    wh.ensure()
    with open(tmp_path / "child.log", "w") as log:
        proc = _spawn(f"from flows.ingest import run_ingest; run_ingest({str(source)!r}, warehouse={str(wh_path)!r})", log)
        loaded = _kill_when(proc, wh, "select count(*) from raw.raw_prompts", SHARD_ROWS)
    assert 0 < loaded < n, "killed mid-run"
    assert loaded % SHARD_ROWS == 0, "a shard's rows commit together or not at all"

    stats = run_ingest(source, warehouse=str(wh_path))
    assert stats["read"] == n + bad and stats["accepted"] == n and stats["rejected"] == bad
    assert stats["new_prompts"] == n - loaded, "the re-run adds exactly the rows the kill lost"
    assert wh.scalar("select count(*) from raw.raw_prompts") == n
    assert _duplicates(wh, "raw.raw_prompts", ["prompt_id"]) == 0
    assert wh.scalar("select count(*) from raw.raw_rejections where reason_code = 'invalid_json'") == bad
    assert _duplicates(wh, "raw.raw_rejections", REJECTION_KEY) == 0


def _trace_file(path, n_prompts: int) -> int:
    """Synthetic traces in the chat layout; returns the number of rows."""
    prompts, traces, _ = synth_batch(0, n_prompts, SynthConfig(exact_dup_rate=0, near_dup_rate=0))
    problem = dict(zip(prompts["prompt_id"], zip(prompts["problem_text"], prompts["reference_answer"])))
    with open(path, "w") as handle:
        for row in traces.iter_rows(named=True):
            text, answer = problem[row["prompt_id"]]
            handle.write(json.dumps({"messages": [{"role": "user", "content": text},
                                                  {"role": "assistant", "content": row["completion_text"]}],
                                     "reference_answer": answer}) + "\n")
    return traces.height


CURATE_LIKE = """
import sys
from flows.ingest import run_ingest
from flows.score import run_score
from warehouse import WarehouseBusyError
try:
    run_ingest({source!r}, kind="traces", model="teacher", warehouse={wh!r})
    run_score(warehouse={wh!r}, shard_size=250)
except WarehouseBusyError as exc:
    print("BUSY:", exc)
    sys.exit(3)
"""


def test_two_runs_at_once_on_one_warehouse_wait_or_fail_clearly(wh_path, tmp_path):
    source = tmp_path / "traces.jsonl"
    n = _trace_file(source, 300)
    Warehouse(str(wh_path)).ensure()
    with open(tmp_path / "run0.log", "w") as log0, open(tmp_path / "run1.log", "w") as log1:
        procs = [_spawn(CURATE_LIKE.format(source=str(source), wh=str(wh_path)), log) for log in (log0, log1)]
        codes = [p.wait(timeout=900) for p in procs]
    outputs = [(tmp_path / f"run{i}.log").read_text() for i in range(2)]
    for code, out in zip(codes, outputs):
        assert code == 0 or (code == 3 and "warehouse is busy" in out), f"exit {code}: {out[-3000:]}"
    assert 0 in codes, "at least one run finishes"

    wh = Warehouse(str(wh_path))
    assert wh.scalar("select count(*) from raw.raw_traces") == n
    assert _duplicates(wh, "raw.raw_traces", ["trace_id"]) == 0
    assert _duplicates(wh, "raw.raw_prompts", ["prompt_id"]) == 0
    assert _duplicates(wh, "raw.raw_scores", SCORE_KEY) == 0
    assert _duplicates(wh, "raw.raw_rejections", REJECTION_KEY) == 0
    # nothing corrupt: the same work again finds nothing to do
    assert run_ingest(source, kind="traces", model="teacher", warehouse=str(wh_path))["new_traces"] == 0
    assert run_score(warehouse=str(wh_path))["n_in"] == 0
    assert wh.scalar("select count(distinct trace_id) from raw.raw_scores") == n
