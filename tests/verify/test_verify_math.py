"""Math verdicts: equivalent forms, false-positive traps, missing/multiple boxed answers, the pool's deadline."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.verify.math import MathConfig, VoteConfig, check_math, majority_vote, math_pool, verify_math

PARAMS = MathConfig().verify_params()


@pytest.mark.parametrize(
    ("answer", "reference", "status", "reason"),
    [
        # equivalent forms
        ("\\boxed{0.5}", "1/2", "correct", "answer_matches"),
        ("\\boxed{\\frac{1}{2}}", "0.5", "correct", "answer_matches"),
        ("\\boxed{1/2}", "\\frac{1}{2}", "correct", "answer_matches"),
        ("\\boxed{\\dfrac{2}{4}}", "1/2", "correct", "answer_matches"),
        ("\\boxed{18}", "18", "correct", "answer_matches"),
        ("\\boxed{18.0}", "18", "correct", "answer_matches"),
        ("The answer is $18$.", "18", "correct", "answer_matches"),
        ("\\boxed{x = 3}", "3", "correct", "answer_matches"),
        ("\\boxed{\\sqrt{4}}", "2", "correct", "answer_matches"),
        ("\\boxed{5!}", "120", "correct", "answer_matches"),
        ("\\boxed{2, -2}", "\\pm 2", "correct", "answer_matches"),
        ("\\boxed{[1,2]}", "[1,2]", "correct", "answer_matches"),
        ("\\boxed{18}", "$18$", "correct", "answer_matches"),
        # false-positive traps: a near miss is not a match
        ("\\boxed{\\pm 2}", "2", "incorrect", "answer_differs"),
        ("\\boxed{2}", "\\pm 2", "incorrect", "answer_differs"),
        ("\\boxed{5!}", "5", "incorrect", "answer_differs"),
        ("\\boxed{[1,2]}", "(1,2)", "incorrect", "answer_differs"),
        ("\\boxed{(1,2]}", "(1,2)", "incorrect", "answer_differs"),
        ("\\boxed{-18}", "18", "incorrect", "answer_differs"),
        ("\\boxed{17.9}", "18", "incorrect", "answer_differs"),
        ("\\boxed{0.51}", "1/2", "incorrect", "answer_differs"),
        # missing / multiple boxed
        ("\\boxed{3} or maybe \\boxed{18}", "18", "incorrect", "answer_differs"),  # hedging is not rewarded
        ("\\boxed{18} and again \\boxed{18}", "18", "correct", "answer_matches"),
        ("I could not solve it.", "18", "unverifiable", "answer_unparseable"),
        ("\\boxed{}", "18", "unverifiable", "answer_unparseable"),
        # the reference itself cannot be read: can't tell, never "incorrect"
        ("\\boxed{18}", "\\frac{1}{", "unverifiable", "reference_unparseable"),
        ("\\boxed{???}", "???", "unverifiable", "reference_unparseable"),
    ],
)
def test_check_math_regressions(answer, reference, status, reason):
    got = check_math(answer, reference, PARAMS)
    assert (got[0], got[1]) == (status, reason), got


def test_multiple_boxed_is_noted_in_detail():
    status, _, _, _, detail = check_math("\\boxed{3} then \\boxed{18}", "18", PARAMS)
    assert status == "incorrect" and "2 boxed" in detail


@pytest.fixture(scope="module")
def pool():
    with math_pool(MathConfig(deadline_s=2.0), workers=2) as p:
        yield p


def _traces(rows):
    return pl.DataFrame(
        [{"trace_id": f"t{i}", "prompt_id": p, "completion_text": c, "is_truncated": tr, "reference_answer": r}
         for i, (p, c, tr, r) in enumerate(rows)],
        schema={"trace_id": pl.String, "prompt_id": pl.String, "completion_text": pl.String,
                "is_truncated": pl.Boolean, "reference_answer": pl.String},
    )


def test_pathological_item_times_out_and_the_batch_goes_on(pool):
    items = _traces([
        ("p", "<think>5*3=15.</think>\\boxed{18}", False, "18"),
        ("p", "<think>..</think>\\boxed{9^{9^{9^{9}}}}", False, "18"),  # hangs sympy for minutes
        ("p", "<think>..</think>\\boxed{17}", False, "18"),
        ("p", "<think>..</think>\\boxed{1/2}", False, "0.5"),
    ])
    out = verify_math(items, MathConfig(deadline_s=2.0), pool)
    assert out["verdict_status"].to_list() == ["correct", "timeout", "incorrect", "correct"]
    hung = out.row(1, named=True)
    assert hung["verdict_reason"] == "deadline_exceeded"
    assert 2000 <= hung["elapsed_ms"] < 2000 + 3000, "the hung worker is killed at the deadline, not later"
    assert pool.n_killed >= 1
    # the replaced worker serves the next batch
    again = verify_math(items.slice(0, 1), MathConfig(deadline_s=2.0), pool)
    assert again["verdict_status"].to_list() == ["correct"]


def test_truncated_and_empty_answers_are_unverifiable_not_incorrect(pool):
    items = _traces([
        ("p", "<think>5*3=15. 15+", True, "18"),
        ("p", "<think>5*3=15.</think>", False, "18"),
        ("p", "<think>5*3=15.</think>\n", True, "18"),
    ])
    out = verify_math(items, MathConfig(), pool)
    assert out.select("verdict_status", "verdict_reason").rows() == [
        ("unverifiable", "truncated"), ("unverifiable", "answer_missing"), ("unverifiable", "truncated")]


def test_extracted_answer_is_stored(pool):
    out = verify_math(_traces([("p", "</think>so \\boxed{\\frac{3}{4}}", False, "0.75")]), MathConfig(), pool)
    assert out.row(0, named=True)["extracted_answer"] == "\\frac{3}{4}"


@pytest.mark.parametrize(
    ("answers", "statuses", "has_majority"),
    [
        (["18", "18.0", "17"], ["correct", "correct", "incorrect"], True),
        (["18", "17", "16"], ["unverifiable"] * 3, False),           # no clear majority
        (["18", "18"], ["unverifiable"] * 2, False),                 # fewer than min_answers answered
        (["1/2", "0.5", "\\frac{1}{2}", "2"], ["correct"] * 3 + ["incorrect"], True),
        (["18", "18", "17", "17"], ["unverifiable"] * 4, False),     # a tie is not a majority
    ],
)
def test_majority_vote(pool, answers, statuses, has_majority):
    items = _traces([("q", f"<think>..</think>\\boxed{{{a}}}", False, None) for a in answers])
    verdicts, agreement = majority_vote(items, VoteConfig(min_answers=3), MathConfig(), pool)
    assert verdicts["verdict_status"].to_list() == statuses
    assert set(verdicts["verifier"]) == {"majority_vote"}
    row = agreement.row(0, named=True)
    assert row["has_majority"] is has_majority and row["n_traces"] == len(answers)


def test_majority_vote_counts_unparseable_apart(pool):
    items = _traces([("q", "</think>\\boxed{4}", False, None), ("q", "</think>\\boxed{4}", False, None),
                     ("q", "</think>\\boxed{4}", False, None), ("q", "</think>no idea", False, None)])
    verdicts, agreement = majority_vote(items, VoteConfig(), MathConfig(), pool)
    assert verdicts["verdict_reason"].to_list() == ["agrees_with_majority"] * 3 + ["answer_unparseable"]
    assert agreement.row(0, named=True)["agreement_rate"] == 1.0
