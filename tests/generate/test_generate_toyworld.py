"""Acceptance on the toy world: 4 samples x 500 prompts from teacher-a and teacher-b, with log-probs,
visible through `potstill sql`. Needs the built toy models (toyworld/build.py); slow on CPU."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TOYWORLD

MODELS = [TOYWORLD / "models" / name for name in ("teacher-a", "teacher-b")]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all((m / "config.json").exists() for m in MODELS), reason="toy-world teachers not built"),
]


def test_toy_teachers_fill_the_warehouse_with_traces_and_logprobs(wh, prefect_harness):
    from typer.testing import CliRunner

    from flows.cli import app
    from flows.generate import SamplingParams, TeacherSpec, generate_flow
    from flows.ingest import run_ingest

    run_ingest(TOYWORLD / "data" / "train.jsonl", warehouse=str(wh.path), source="toy-train", split="train")
    teachers = [TeacherSpec(model=str(m), name=m.name, batch_size=128, cpu_threads=1) for m in MODELS]
    sampling = SamplingParams(n=4, temperatures=[0.8], max_tokens=160)
    stats = generate_flow(warehouse=str(wh.path), teachers=teachers, sampling=sampling, limit=500)
    assert stats["n_out"] + stats["n_already_done"] == 4000 and stats["n_rejected"] == 0

    counts = wh.query(
        "select t.model_id, count(*) as n_traces, count(distinct t.prompt_id) as n_prompts, count(l.trace_id) as n_logprobs,"
        " avg(case when t.finish_reason = 'stop' then 1 else 0 end) as stop_rate"
        " from raw.raw_traces t left join raw.raw_token_logprobs l on l.trace_id = t.trace_id and l.model_id = t.model_id"
        " group by 1 order by 1"
    )
    assert counts["n_traces"].to_list() == [2000, 2000] and counts["n_prompts"].to_list() == [500, 500]
    assert counts["n_logprobs"].to_list() == [2000, 2000]
    assert all(rate > 0.9 for rate in counts["stop_rate"])  # trained teachers finish their traces
    assert wh.scalar("select count(*) from raw.raw_traces where reasoning_text is not null") > 3600

    result = CliRunner().invoke(app, ["sql", "select model_id, count(*) as n from raw.raw_traces group by 1 order by 1",
                                      "--format", "json", "--warehouse", str(wh.path)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["n"] for r in rows] == [2000, 2000]
