"""The verify flow end to end on a temp warehouse: one verdict per trace, resumable, idempotent."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

NOW = datetime(2025, 1, 1)
CODE_TESTS = json.dumps(["assert f(1) == 5", "assert f(0) == 2"])


def _prompt(pid, domain, ref=None, tests=None):
    return {"prompt_id": pid, "source": "unit", "domain": domain, "problem_text": f"problem {pid}",
            "reference_answer": ref, "tests_json": tests, "split": "train", "ingested_at": NOW, "run_id": "seed"}


def _trace(tid, pid, text, truncated=False):
    return {"trace_id": tid, "prompt_id": pid, "model_id": "teacher-a", "origin": "imported", "sample_index": 0,
            "completion_text": text, "is_truncated": truncated, "created_at": NOW, "run_id": "seed"}


@pytest.fixture(scope="module")
def pool():
    from tasks.verify.math import MathConfig, math_pool

    with math_pool(MathConfig(), workers=1) as p:
        yield p


@pytest.fixture
def seeded(wh, wh_path):
    wh.load("raw.raw_prompts", pl.DataFrame([
        _prompt("pm", "math", "18"), _prompt("pv", "math"), _prompt("pc", "code", tests=CODE_TESTS),
        _prompt("pp", "poetry"),
    ]), key=["prompt_id"])
    hostile = f"import os\ntry:\n    open({str(wh_path)!r}, 'ab').write(b'garbage')\nexcept OSError:\n    pass\n"
    wh.load("raw.raw_traces", pl.DataFrame([
        _trace("m1", "pm", "<think>5*3=15.</think>\n\\boxed{18}"),
        _trace("m2", "pm", "<think>5*3=16.</think>\n\\boxed{19}"),
        _trace("m3", "pm", "<think>5*3=15. 15", truncated=True),
        _trace("v1", "pv", "</think>\\boxed{4}"), _trace("v2", "pv", "</think>\\boxed{4}"),
        _trace("v3", "pv", "</think>\\boxed{5}"),
        _trace("c1", "pc", "<think>x</think>\n```python\ndef f(x):\n    return 3 * x + 2\n```"),
        _trace("c2", "pc", f"<think>x</think>\n```python\n{hostile}def f(x):\n    return x\n```"),
        _trace("x1", "pp", "roses are red"),
        _trace("o1", "p_not_ingested", "\\boxed{1}"),
    ]), key=["trace_id"])
    return wh


def test_verify_flow_judges_every_trace_once(prefect_harness, seeded, wh_path):
    from flows.verify import verify_flow

    stats = verify_flow(warehouse=str(wh_path), workers=2)
    assert (stats["n_in"], stats["n_out"], stats["n_rejected"]) == (10, 7, 3)  # all 10 judged; 3 rejected: in = out + rejected
    got = dict(seeded.query(
        "select trace_id, verifier || ':' || verdict_status || ':' || verdict_reason from staging.stg_verifications"
    ).rows())
    assert got == {
        "m1": "math_verify:correct:answer_matches", "m2": "math_verify:incorrect:answer_differs",
        "m3": "math_verify:unverifiable:truncated",
        "v1": "majority_vote:correct:agrees_with_majority", "v2": "majority_vote:correct:agrees_with_majority",
        "v3": "majority_vote:incorrect:disagrees_with_majority",
        "c1": "code_sandbox:correct:all_tests_passed", "c2": "code_sandbox:incorrect:tests_failed",
        "x1": "none:unverifiable:unsupported_domain", "o1": "none:unverifiable:prompt_missing",
    }
    rejected = seeded.query("select source_ref, reason_code from raw.raw_rejections where stage = 'verify' order by 1").rows()
    assert rejected == [("m3", "truncated"), ("o1", "prompt_missing"), ("x1", "unsupported_domain")]
    agreement = seeded.query(
        "select prompt_id, n_traces, majority_answer, agreement_rate, has_majority from raw.raw_prompt_agreement"
    )
    assert agreement.rows() == [("pv", 3, "4", pytest.approx(2 / 3), True)]
    run = seeded.query("select status, n_in, n_out, n_rejected from meta.runs where run_id = ?", [stats["run_id"]])
    assert run.rows() == [("completed", 10, 7, 3)]

    # new traces are the only work of the next run; one re-opens its prompt's vote
    seeded.load("raw.raw_traces", pl.DataFrame([_trace("m4", "pm", "</think>\\boxed{18.0}"),
                                               _trace("v4", "pv", "</think>\\boxed{5}")]), key=["trace_id"])
    third = verify_flow(warehouse=str(wh_path), workers=2)
    assert third["n_in"] == 1 + 4
    latest = dict(seeded.query("select trace_id, verdict_status from staging.stg_verifications").rows())
    assert latest["m4"] == "correct"
    assert {latest[t] for t in ("v1", "v2", "v3", "v4")} == {"unverifiable"}  # 2 vs 2: no clear majority
    assert seeded.scalar("select count(*) from raw.raw_verifications") == 10 + 1 + 4


def test_resume_rerun_and_new_verifier_version(seeded, wh_path, pool):
    from flows.verify import run_verify
    from tasks.verify.core import VerifyConfig
    from tasks.verify.math import MathConfig

    run_verify(warehouse=str(wh_path), workers=1, limit=2, pool=pool)  # as if killed after two shards
    assert seeded.scalar("select count(*) from raw.raw_verifications") == 2 + 3  # 2 traces + 1 vote of 3
    rest = run_verify(warehouse=str(wh_path), workers=1, pool=pool)
    assert rest["n_in"] == 10 - 5
    assert seeded.scalar("select count(*) from raw.raw_verifications") == 10
    assert seeded.scalar("select count(distinct trace_id) from raw.raw_verifications") == 10
    again = run_verify(warehouse=str(wh_path), workers=1, pool=pool)
    assert (again["n_in"], again["n_out"], again["n_rejected"]) == (0, 0, 0)
    changed = run_verify(warehouse=str(wh_path), workers=1, pool=pool,
                         cfg=VerifyConfig(math=MathConfig(float_rounding=4)))
    assert changed["n_in"] == 3 + 3  # math traces with a reference, and the vote (it uses math-verify too)
    assert seeded.scalar("select count(*) from raw.raw_rejections where stage = 'verify'") == 3  # not duplicated


def test_fallback_verdict_is_superseded_when_the_prompt_arrives(seeded, wh_path, pool):
    from flows.verify import run_verify

    run_verify(warehouse=str(wh_path), workers=1, pool=pool)
    seeded.load("raw.raw_prompts", pl.DataFrame([_prompt("p_not_ingested", "math", "1")]), key=["prompt_id"])
    stats = run_verify(warehouse=str(wh_path), workers=1, pool=pool)
    assert stats["n_in"] == 1
    rows = seeded.query("select verifier, verdict_status from staging.stg_verifications where trace_id = 'o1'").rows()
    assert rows == [("math_verify", "correct")]
