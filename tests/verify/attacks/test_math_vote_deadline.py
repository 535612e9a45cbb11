"""Math majority vote: one pathological answer costs its own slot, not the whole prompt's vote."""

from __future__ import annotations

import time

import polars as pl

from tasks.verify.math import MathConfig, VoteConfig, majority_vote, math_pool


def test_one_hung_answer_among_eight_times_out_alone():
    answers = ["4", "4", "4", "9^{9^{9^{9}}}", "4", "5", "4", "4"]  # the 4th hangs sympy for minutes
    items = pl.DataFrame([{"trace_id": f"t{i}", "prompt_id": "q", "completion_text": f"<think>..</think>\\boxed{{{a}}}",
                           "is_truncated": False} for i, a in enumerate(answers)])
    cfg = MathConfig(deadline_s=2.0)
    with math_pool(cfg, workers=2) as pool:
        started = time.monotonic()
        verdicts, agreement = majority_vote(items, VoteConfig(min_answers=3), cfg, pool)
        elapsed = time.monotonic() - started
    statuses = verdicts["verdict_status"].to_list()
    assert statuses == ["correct"] * 3 + ["timeout", "correct", "incorrect", "correct", "correct"], statuses
    assert elapsed < 2.0 * 3, f"one hung answer held the vote for {elapsed:.1f} s"
    row = agreement.row(0, named=True)
    assert (row["n_answered"], row["majority_count"], row["has_majority"]) == (7, 6, True)
