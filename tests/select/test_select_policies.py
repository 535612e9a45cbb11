"""Selection policies over literal candidate frames."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.select.policies import (
    POLICIES,
    SelectionConfig,
    SelectionError,
    eligible_pool,
    farthest_point,
    select_traces,
)

# trace, prompt, tokens, verdict, representative, contaminated, quality, temperature, n_teacher, pass_rate, text
ROWS = [
    ("a1", "A", 30, "correct", True, False, True, 0.6, 5, 0.5, "5*3=15. 7+15=22. Check: ok."),
    ("a2", "A", 20, "correct", True, False, True, 1.0, 5, 0.5, "5*3=15. 7+15=22."),
    ("a3", "A", 50, "correct", True, False, True, 1.0, 2, 0.5, "Wait, let me re-check everything again slowly."),
    ("a4", "A", 25, "incorrect", True, False, True, 1.0, 7, 0.5, "5*3=16."),
    ("b1", "B", 40, "correct", True, False, True, 0.6, 1, 0.9, "2+2=4."),
    ("b2", "B", 60, "correct", True, False, True, 1.0, 3, 0.9, "2+2=4. 4*3=12."),
    ("b3", "B", 10, "incorrect", True, False, True, 0.6, 0, 0.9, "2+2=5."),
    ("c1", "C", 35, "correct", False, False, True, 0.6, 9, 0.3, "dup"),
    ("c2", "C", 45, "correct", True, False, True, 0.6, 4, 0.3, "1+1=2. 2*2=4."),
    ("d1", "D", 15, "correct", True, True, True, 0.6, 8, 0.5, "leaked"),
    ("e1", "E", 15, "correct", True, False, False, 0.6, 8, 0.5, "truncated"),
    ("f1", "F", 12, None, True, False, True, 0.6, 8, 0.5, "unverified"),
    ("g1", "G", 22, "timeout", True, False, True, 1.0, 1, 0.0, "timeout"),
]
COLS = ["trace_id", "prompt_id", "n_completion_tokens", "verdict_status", "is_representative", "is_contaminated",
        "passes_quality", "temperature", "n_teacher", "student_pass_rate", "completion_text"]
CANDIDATES = pl.DataFrame(ROWS, schema=COLS, orient="row").with_columns(pl.lit("teacher-a").alias("model_id"))


def ids(res):
    return res.rows["trace_id"].to_list()


def test_eligible_pool_rejects_with_reason_codes():
    pool, rejected, skipped = eligible_pool(CANDIDATES, SelectionConfig())
    assert sorted(pool["trace_id"]) == ["a1", "a2", "a3", "b1", "b2", "c2"]
    assert dict(zip(rejected["trace_id"], rejected["reason_code"])) == {
        "a4": "verdict_not_correct", "b3": "verdict_not_correct", "c1": "dedup_not_representative",
        "d1": "contaminated", "e1": "quality_failed", "f1": "unverified", "g1": "verdict_not_correct",
    }
    assert rejected.filter(pl.col("trace_id") == "g1")["detail"][0] == "verdict_status = timeout"
    assert skipped == []


def test_missing_column_means_criterion_not_applied_and_reported():
    pool, _, skipped = eligible_pool(CANDIDATES.drop("is_contaminated", "passes_quality"), SelectionConfig())
    assert skipped == ["is_contaminated", "passes_quality"]
    assert {"d1", "e1"} <= set(pool["trace_id"])


@pytest.mark.parametrize(
    "policy, budget, expected",
    [
        # most teacher sentences per prompt; A ties a1/a2 at 5 -> fewer tokens (a2); prompts in seeded random order
        ("provenance", 10, ["a2", "b2", "c2"]),
        ("longest", 10, ["a3", "b2", "c2"]),
        ("shortest_correct", 10, ["a2", "b1", "c2"]),
    ],
)
def test_deterministic_policies(policy, budget, expected):
    res = select_traces(CANDIDATES, policy, SelectionConfig(budget=budget))
    assert sorted(ids(res)) == expected
    assert res.rows["rank"].to_list() == list(range(1, len(expected) + 1))
    assert set(res.rows["stage"]) == {"main"}
    assert res.params["policy"] == policy and res.params["n_selected"] == len(expected)


def test_token_budget_stops_before_exceeding():
    res = select_traces(CANDIDATES, "provenance", SelectionConfig(budget=70, budget_unit="tokens"))
    assert res.params["n_tokens"] <= 70 and res.params["n_tokens"] + 60 > 70  # the next trace (<= 60 tokens) would not fit


def test_random_is_seeded_one_per_prompt_and_differs_from_provenance():
    cfg = SelectionConfig(budget=3, seed=7)
    r1, r2 = select_traces(CANDIDATES, "random", cfg), select_traces(CANDIDATES, "random", cfg)
    assert ids(r1) == ids(r2)
    picked = CANDIDATES.filter(pl.col("trace_id").is_in(ids(r1)))
    assert picked["prompt_id"].n_unique() == 3
    seeds = {tuple(ids(select_traces(CANDIDATES, "random", SelectionConfig(budget=3, seed=s)))) for s in range(8)}
    assert len(seeds) > 1


def test_pass_rate_band_keeps_prompts_the_student_solves_20_to_80_percent():
    res = select_traces(CANDIDATES, "pass_rate_band", SelectionConfig(budget=10))
    prompts = set(CANDIDATES.filter(pl.col("trace_id").is_in(ids(res)))["prompt_id"])
    assert prompts == {"A", "C"} and res.params["n_prompts_out_of_band"] == 1


def test_diverse_picks_farthest_apart_traces():
    assert farthest_point(["aaaa", "aaab", "zzzz"], 2, start=0) == [0, 2]
    res = select_traces(CANDIDATES, "diverse", SelectionConfig(budget=10, diverse_per_prompt=2))
    a = [t for t in ids(res) if t.startswith("a")]
    assert len(a) == 2 and "a3" in a  # the hesitant trace is far from both others


def test_redi_pairs_pair_a_correct_with_an_incorrect_trace():
    res = select_traces(CANDIDATES, "redi_pairs", SelectionConfig(budget=10))
    rows = res.rows
    assert set(rows["stage"]) == {"positive", "negative"}
    neg = set(rows.filter(pl.col("stage") == "negative")["trace_id"])
    assert neg == {"a4", "b3"} and res.params["n_pairs"] == 2
    by_rank = rows.group_by("rank").agg(pl.col("trace_id").str.slice(0, 1).n_unique().alias("n_prompts"), pl.len())
    assert (by_rank["n_prompts"] == 1).all() and (by_rank["len"] == 2).all()


def test_temperature_schedule_low_stage_first():
    res = select_traces(CANDIDATES, "temperature_schedule", SelectionConfig(budget=4, schedule_per_prompt=2))
    stages = res.rows["stage"].to_list()
    assert stages == ["low_temp", "low_temp", "high_temp", "high_temp"]
    temps = dict(zip(CANDIDATES["trace_id"], CANDIDATES["temperature"]))
    assert all(temps[t] <= 0.8 for t in ids(res)[:2]) and all(temps[t] > 0.8 for t in ids(res)[2:])


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_respects_the_budget_and_pool(policy):
    scored = CANDIDATES.with_columns(n_sentences=pl.lit(10), student_mean_logprob=-pl.col("n_teacher"), rsr=pl.col("n_teacher") + 1.0)
    res = select_traces(scored, policy, SelectionConfig(budget=2, oracle_pattern=r"\d=\d"))
    assert 0 < res.rows.height <= 2
    assert not set(ids(res)) & {"c1", "d1", "e1", "f1", "g1"}
    assert res.rows.columns == ["trace_id", "rank", "stage"]


def test_oracle_keeps_per_prompt_the_trace_with_most_pattern_matches():
    # A: a1/a2 have two "=" steps each, a3 none; B: b2 (two) over b1 (one); C: c2
    for seed in range(6):
        cfg = SelectionConfig(budget=10, oracle_pattern=r"\d=\d", seed=seed)
        res = select_traces(CANDIDATES, "oracle", cfg)
        picked = ids(res)
        assert {"b2", "c2"} <= set(picked) and len(picked) == 3 and res.params["oracle_pattern"] == r"\d=\d"
        # the a1/a2 tie goes as the random policy draws at the same seed (not to the shorter one): oracle vs
        # random differs only where the label tells traces apart
        rand_a = [t for t in ids(select_traces(CANDIDATES.filter(pl.col("trace_id").is_in(["a1", "a2"])), "random", cfg))]
        assert [t for t in picked if t.startswith("a")] == rand_a
        assert res.params["n_prompts_label_decides"] == 2
    res = select_traces(CANDIDATES, "oracle", SelectionConfig(budget=10, oracle_pattern="Check:"))
    assert "a1" in ids(res)
    with pytest.raises(SelectionError, match="oracle_pattern"):
        select_traces(CANDIDATES, "oracle", SelectionConfig())
    with pytest.raises(SelectionError, match="completion_text"):
        select_traces(CANDIDATES.drop("completion_text"), "oracle", SelectionConfig(oracle_pattern="x"))
    with pytest.raises(SelectionError, match="not a valid regex"):
        SelectionConfig(oracle_pattern="(")


@pytest.mark.parametrize(
    "kwargs, message",
    [({"budget": 0}, "budget"), ({"budget_unit": "rows"}, "budget_unit"), ({"pass_rate_low": 0.9, "pass_rate_high": 0.1}, "pass_rate")],
)
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(SelectionError, match=message):
        SelectionConfig(**kwargs)


def test_policy_needing_a_missing_column_says_which():
    with pytest.raises(SelectionError, match="n_teacher"):
        select_traces(CANDIDATES.drop("n_teacher"), "provenance", SelectionConfig())
    with pytest.raises(SelectionError, match="unknown policy"):
        select_traces(CANDIDATES, "best", SelectionConfig())
