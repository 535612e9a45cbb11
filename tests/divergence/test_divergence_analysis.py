"""Distilled-model provenance classes, position shares, teacher comparison and OPD cores."""

from __future__ import annotations

import math

import polars as pl
import pytest

from tasks.divergence.analysis import (
    classify_distilled,
    compare_teachers,
    overthinking_markers,
    perplexity,
    plot_shares,
    shares_by_position,
)
from tasks.divergence.opd import OPDConsistencyError, build_opd_rows, check_teacher_consistency, export_id_for


def _long(rows):
    """rows: (trace, sentence, p_T, p_S, p_D) -> long sentence scores."""
    out = []
    for tid, idx, *ps in rows:
        for model, p in zip(("T", "S", "D"), ps):
            out.append({"trace_id": tid, "sentence_index": idx, "splitter": "s", "model_id": model, "mean_logprob": math.log(p)})
    return pl.DataFrame(out)


@pytest.mark.parametrize(
    "p_t, p_s, p_d, expected",
    [
        (0.50, 0.52, 0.51, "shared"),   # all within alpha
        (0.90, 0.50, 0.85, "teacher"),  # p_T - p_S > beta
        (0.30, 0.70, 0.68, "student"),  # p_S - p_T > beta
        (0.40, 0.45, 0.90, "boosted"),  # T ~ S, D differs
        (0.50, 0.58, 0.50, "boosted"),  # not shared (|T-S| > alpha) but |T-S| <= beta
    ],
)
def test_distilled_classes_follow_the_papers_order(p_t, p_s, p_d, expected):
    got = classify_distilled(_long([("x", 0, p_t, p_s, p_d)]), "T", "S", "D", alpha=0.05, beta=0.1)
    assert got["provenance_class"].to_list() == [expected]


def test_shares_by_position_and_correctness_sum_to_one_and_plot(tmp_path):
    scores = _long([("a", 0, 0.9, 0.5, 0.9), ("a", 1, 0.5, 0.5, 0.5), ("b", 0, 0.3, 0.7, 0.7), ("b", 1, 0.9, 0.2, 0.8)])
    classified = classify_distilled(scores, "T", "S", "D")
    assert classified["relative_position"].to_list() == [0.0, 0.5, 0.0, 0.5]
    answers = pl.DataFrame({"trace_id": ["a"], "answer_status": ["correct"]})
    shares = shares_by_position(classified, answers, n_bins=2)
    assert set(shares["answer_status"]) == {"correct", "unknown"}
    sums = shares.group_by("answer_status", "position_bin").agg(pl.col("share").sum())
    assert sums["share"].to_list() == pytest.approx([1.0] * sums.height)
    row = shares.filter((pl.col("answer_status") == "correct") & (pl.col("position_bin") == 0) & (pl.col("provenance_class") == "teacher"))
    assert row["n_sentences"].to_list() == [1] and row["share"].to_list() == [1.0]
    png = plot_shares(shares, tmp_path / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_teacher_comparison_on_common_prompts():
    df = pl.DataFrame({
        "trace_id": ["a1", "a2", "b1", "b2", "b3"], "prompt_id": ["p1", "p2", "p1", "p2", "p3"],
        "model_id": ["A", "A", "B", "B", "B"],
        "completion_text": ["x=1.", "y=2.", "Wait, maybe x=1.\nBut check.", "y=3.", "only B"],
        "n_completion_tokens": [10, 20, 40, 20, 5],
        "verdict_status": ["correct", "correct", "correct", "incorrect", "correct"],
        "ppl_reference": [1.5, 2.5, 4.0, 6.0, 1.0],
    })
    rep = compare_teachers(df).to_dicts()
    a, b = rep
    assert (a["teacher_model_id"], a["n_prompts"], a["n_traces"], a["pass_rate"]) == ("A", 2, 2, 1.0)
    assert (b["n_traces"], b["pass_rate"], b["mean_ppl_reference"]) == (2, 0.5, 5.0)  # p3 is not common
    assert b["hesitation_per_1k_tokens"] > a["hesitation_per_1k_tokens"] == 0
    assert overthinking_markers("Wait. Maybe.\nBut", 1000) == (3.0, 2.0)
    assert perplexity([math.log(0.5)] * 3) == pytest.approx(2.0) and perplexity([]) is None


@pytest.mark.parametrize(
    "sft, scorer, message",
    [
        (["teacher-a"], "teacher-b", "written by teacher-a, but the rollouts would be scored by teacher-b"),
        (["teacher-a", "teacher-b"], "teacher-a", "several teachers"),
        ([], "teacher-a", "no traces"),
    ],
)
def test_opd_refuses_a_teacher_other_than_the_sft_teacher(sft, scorer, message):
    with pytest.raises(OPDConsistencyError, match=message):
        check_teacher_consistency("toy@1", sft, scorer)


def test_opd_rows_advantage_only_with_the_same_tokenization():
    assert check_teacher_consistency("toy@1", ["T", "T"], "T") == "T"
    rollouts = pl.DataFrame({"trace_id": ["r1", "r2"], "prompt_id": ["p", "p"], "problem_text": ["q", "q"],
                             "completion_text": ["abc", "abc"]})
    teacher = pl.DataFrame({"trace_id": ["r1", "r2"], "token_ids": [[1, 2, 3], [1, 2, 3]],
                            "logprobs": [[-0.1, -0.2, -0.3], [-0.1, -0.2, -0.3]], "char_starts": [[0, 1, 2], [0, 1, 2]]})
    student = pl.DataFrame({"trace_id": ["r1", "r2"], "token_ids": [[7, 8, 9], [5, 6]],
                            "logprobs": [[-1.0, -1.0, -1.0], [-1.0, -1.0]], "char_starts": [[0, 1, 2], [0, 2]]})
    rows = build_opd_rows(rollouts, teacher, student, teacher_model_id="T", student_model_id="S", max_tokens=2)
    r1, r2 = rows.to_dicts()
    assert r1["advantage"] == pytest.approx([0.9, 0.8]) and r1["is_truncated"] and r1["n_tokens"] == 2
    assert r2["advantage"] is None and r2["same_tokenization"] is False
    assert export_id_for(rows) == export_id_for(rows.clone()) != export_id_for(rows.head(1))
