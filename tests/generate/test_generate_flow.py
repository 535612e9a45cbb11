"""The generate flow: rows land with log-probs, re-runs do only missing work, dry runs spend nothing,
and a SIGKILL loses at most the shard in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime

import polars as pl
import pytest

from flows.generate import SamplingParams, TeacherSpec, generate_flow, run_generate
from tests.conftest import REPO

SAMPLING = SamplingParams(n=2, temperatures=[1.0], max_tokens=16, logprobs_top_k=2)


def seed_prompts(wh, n: int, *, split: str = "train", long_text: str | None = None) -> list[str]:
    rows = [
        {"prompt_id": f"p_{i:04d}", "source": "test", "source_ref": f"test:{i}", "domain": "math",
         "problem_text": long_text or f"Compute {i % 10}+{(3 * i) % 10}*{(7 * i) % 10}", "reference_answer": None,
         "tests_json": None, "split": split, "metadata_json": None, "ingested_at": datetime(2026, 1, 1), "run_id": "seed"}
        for i in range(n)
    ]
    wh.load("raw.raw_prompts", pl.DataFrame(rows), key=["prompt_id"])
    return [r["prompt_id"] for r in rows]


def teacher(path, name="tiny", **kw) -> TeacherSpec:
    return TeacherSpec(model=str(path), name=name, batch_size=8, cpu_threads=1, **kw)


def test_flow_resumes_and_takes_plain_dict_parameters(wh, tiny_model_dir, prefect_harness):
    """What a recipe passes: dicts, validated into TeacherSpec / SamplingParams by the flow."""
    seed_prompts(wh, 3)
    params = {"warehouse": str(wh.path), "teachers": [{"model": str(tiny_model_dir), "name": "tiny", "cpu_threads": 1}],
              "sampling": {"n": 2, "temperatures": [1.0], "max_tokens": 8}, "shard_size": 8}
    assert generate_flow(**params, dry_run=True)["n_requests"] == 6
    first = generate_flow(**params, limit=2)
    assert (first["n_out"], first["n_already_done"]) == (4, 0)
    second = generate_flow(**params)
    assert (second["n_out"], second["n_already_done"]) == (2, 4)
    assert wh.scalar("select count(distinct trace_id) from raw.raw_traces") == 6
    assert wh.scalar("select count(*) from raw.raw_token_logprobs") == 6


@pytest.mark.slow
def test_flow_generates_resumes_and_accounts(wh, tiny_model_dir, tiny_model_dir_b, prefect_harness):
    seed_prompts(wh, 5)
    teachers = [teacher(tiny_model_dir, price_in_per_1m=1.0, price_out_per_1m=4.0), teacher(tiny_model_dir_b, "tiny-b")]

    plan = generate_flow(warehouse=str(wh.path), teachers=teachers, sampling=SAMPLING, dry_run=True)
    assert plan["dry_run"] and plan["n_requests"] == 20
    assert plan["max_completion_tokens"] == 20 * 16 and plan["est_cost_usd"] > 0
    assert wh.scalar("select count(*) from raw.raw_traces") == 0
    assert wh.scalar("select count(*) from meta.runs where stage = 'generate'") == 0

    first = generate_flow(warehouse=str(wh.path), teachers=teachers, sampling=SAMPLING, limit=3, shard_size=4)
    assert (first["n_in"], first["n_out"], first["n_already_done"]) == (12, 12, 0)
    second = generate_flow(warehouse=str(wh.path), teachers=teachers, sampling=SAMPLING, shard_size=4)
    assert (second["n_in"], second["n_out"], second["n_already_done"], second["n_requests"]) == (8, 8, 12, 20)

    traces = wh.query("select * from raw.raw_traces")
    assert traces.height == 20 and traces["trace_id"].n_unique() == 20
    assert (traces["trace_id"] == traces["request_key"]).all() and (traces["origin"] == "generated").all()
    assert set(traces["model_id"].str.split("@").list.first()) == {"tiny", "tiny-b"}
    lp = wh.query("select l.*, t.n_completion_tokens, t.completion_text from raw.raw_token_logprobs l join raw.raw_traces t using (trace_id)")
    assert lp.height == 20 and (lp["logprob_source"] == "sampled").all() and (lp["top_k"] == 2).all()
    assert (lp["n_tokens"] == lp["n_completion_tokens"]).all()
    assert (lp["logprobs"].list.len() == lp["char_starts"].list.len()).all()
    priced = traces.filter(pl.col("model_id").str.starts_with("tiny@"))
    assert priced["cost_usd"].is_not_null().all() and traces.filter(pl.col("model_id").str.starts_with("tiny-b"))["cost_usd"].is_null().all()
    expected_cost = (priced["n_prompt_tokens"].sum() * 1.0 + priced["n_completion_tokens"].sum() * 4.0) / 1e6
    assert first["cost_usd"] + second["cost_usd"] == pytest.approx(expected_cost)
    run = wh.query("select * from meta.runs where run_id = ?", [second["run_id"]]).row(0, named=True)
    assert run["status"] == "completed" and run["n_out"] == 8
    assert json.loads(run["stats_json"])["teachers"]["tiny"]["n_generated"] == 4
    shard_rows = wh.query("select sum(n_generated) as n from raw.raw_generation_shards")["n"][0]
    assert shard_rows == 20

    again = generate_flow(warehouse=str(wh.path), teachers=teachers, sampling=SAMPLING, shard_size=4)
    assert again["n_out"] == 0 and again["n_already_done"] == 20

    hotter = SAMPLING.model_copy(update={"temperatures": [1.3]})
    changed = run_generate(warehouse=str(wh.path), teachers=teachers[:1], sampling=hotter, shard_size=8)
    assert changed["n_out"] == 10 and wh.scalar("select count(*) from raw.raw_traces") == 30


def test_prompt_longer_than_the_context_is_rejected_with_a_reason(wh, tiny_model_dir):
    seed_prompts(wh, 1, long_text="Compute " + "1+" * 200 + "1")
    stats = run_generate(warehouse=str(wh.path), teachers=[teacher(tiny_model_dir)], sampling=SAMPLING)
    assert (stats["n_out"], stats["n_rejected"]) == (0, 2)
    assert stats["rejections"] == {"prompt_too_long": 2}
    rej = wh.query("select * from raw.raw_rejections where stage = 'generate'")
    assert rej.height == 2 and set(rej["reason_code"]) == {"prompt_too_long"}
    assert "context length 256" in rej["detail"][0]


KILL_SCRIPT = """
import sys
from flows.generate import SamplingParams, TeacherSpec, generate_flow
generate_flow(warehouse=sys.argv[1], teachers=[TeacherSpec(model=sys.argv[2], name="tiny", batch_size=4, cpu_threads=1)],
              sampling=SamplingParams(n=2, temperatures=[1.0], max_tokens=48), shard_size=4)
"""


@pytest.mark.slow
def test_sigkill_loses_at_most_the_shard_in_flight(wh, tiny_model_dir, prefect_harness):
    from prefect.settings import PREFECT_API_URL

    seed_prompts(wh, 20)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_LOGGING_LEVEL": "INFO"}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(wh.path), str(tiny_model_dir)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    committed, deadline = 0, time.monotonic() + 240
    try:
        for line in proc.stdout:
            committed += "committed:" in line
            if committed >= 2 or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert committed >= 2, "the flow never committed two shards"
    before = wh.query("select trace_id, run_id from raw.raw_traces")
    n_shards = wh.scalar("select count(*) from raw.raw_generation_shards")
    assert 0 < before.height < 40 and before.height == n_shards * 4  # whole shards only
    assert wh.scalar("select count(*) from raw.raw_token_logprobs") == before.height

    stats = generate_flow(warehouse=str(wh.path), teachers=[teacher(tiny_model_dir)],
                          sampling=SamplingParams(n=2, temperatures=[1.0], max_tokens=48), shard_size=4)
    assert stats["n_already_done"] == before.height and stats["n_out"] == 40 - before.height
    after = wh.query("select trace_id, run_id from raw.raw_traces")
    assert after.height == 40 and after["trace_id"].n_unique() == 40
    kept = after.join(before, on="trace_id", suffix="_before")
    assert kept.height == before.height and (kept["run_id"] == kept["run_id_before"]).all()  # not regenerated
