"""Data contracts: each planted bad row fails the matching expectation; clean rows pass."""

from __future__ import annotations

import json
from datetime import datetime

import polars as pl
import pytest

from tasks.contracts import ContractViolation, all_suites, load_suite, validate_frame
from tasks.contracts.suites import ContractError
from warehouse.contracts import run_contracts

NOW = datetime(2025, 1, 1)


def prompts(**over) -> pl.DataFrame:
    row = {"prompt_id": "p1", "source": "toy", "domain": "math", "problem_text": "1+1?", "split": "train",
           "ingested_at": NOW, "run_id": "ingest-1"}
    return pl.DataFrame([{**row, **over}])


def traces(n: int = 2, **over) -> pl.DataFrame:
    rows = [{"trace_id": f"t{i}", "prompt_id": "p1", "model_id": "teacher", "origin": "generated", "sample_index": i,
             "completion_text": "<think>\n1+1=2.\n</think>\n\n\\boxed{2}", "reasoning_text": "1+1=2.",
             "answer_text": "\\boxed{2}", "n_prompt_tokens": 5, "n_completion_tokens": 12, "finish_reason": "stop",
             "is_truncated": False, "temperature": 0.6, "top_p": 1.0, "created_at": NOW, "run_id": "gen-1"}
            for i in range(n)]
    rows[-1].update(over)
    return pl.DataFrame(rows)


def seed(wh, **trace_over):
    wh.load("raw.raw_prompts", prompts(), key=["prompt_id"])
    wh.load("raw.raw_traces", traces(**trace_over), key=["trace_id"])


def test_every_suite_file_parses_and_names_its_table():
    suites = all_suites()
    assert set(suites) == {"raw_prompts", "raw_traces", "raw_verifications", "raw_sentence_scores", "dataset_rows"}
    assert load_suite("raw.raw_traces").name == "raw_traces"
    assert all(s.expectations for s in suites.values())


def test_unknown_table_is_a_clear_error():
    with pytest.raises(ContractError, match="no expectation suite for 'raw.nope'"):
        load_suite("raw.nope")


def test_clean_rows_pass_and_are_recorded(wh):
    seed(wh)
    result = run_contracts(wh, "raw.raw_traces", "gen-1", checker_run_id="check-1")
    assert result.n_rows == 2
    assert result.success, result.failure_message()
    stored = wh.query("select * from meta.dq_results where validation_id = ?", [result.validation_id])
    assert stored.height == len(result.outcomes)
    assert stored["success"].all() and stored["checker_run_id"].unique().to_list() == ["check-1"]


@pytest.mark.parametrize(
    ("suite", "frame", "failing_type", "column"),
    [
        ("raw_prompts", prompts(prompt_id=None), "expect_column_values_to_not_be_null", "prompt_id"),
        ("raw_prompts", prompts(domain="poetry"), "expect_column_values_to_be_in_set", "domain"),
        ("raw_traces", traces(n_completion_tokens=-3), "expect_column_values_to_be_between", "n_completion_tokens"),
        ("raw_traces", traces(trace_id="t0"), "expect_column_values_to_be_unique", "trace_id"),
        ("raw_verifications", pl.DataFrame({"trace_id": ["t0"], "verifier": ["math"], "verifier_version": ["1"],
                                            "verdict_status": ["maybe"], "score": [1.0], "input_hash": ["h"]}),
         "expect_column_values_to_be_in_set", "verdict_status"),
        ("raw_verifications", pl.DataFrame({"trace_id": ["t0"], "verifier": ["math"], "verifier_version": ["1"],
                                            "verdict_status": ["correct"], "score": [1.3], "input_hash": ["h"]}),
         "expect_column_values_to_be_between", "score"),
        ("raw_sentence_scores", pl.DataFrame({"trace_id": ["t0"], "sentence_index": [0], "char_start": [0],
                                              "char_end": [5], "model_id": ["s"], "n_tokens": [3],
                                              "mean_logprob": [0.4], "splitter": ["v1"]}),
         "expect_column_values_to_be_between", "mean_logprob"),
    ],
    ids=["null_prompt_id", "unknown_domain", "negative_tokens", "duplicate_trace", "verdict_maybe",
         "probability_1_3", "positive_logprob"],
)
def test_planted_bad_row_fails_the_matching_expectation(suite, frame, failing_type, column):
    result = validate_frame(frame, load_suite(suite))
    failed = [(o.expectation_type, o.columns) for o in result.blocking_failures]
    assert failed == [(failing_type, (column,))]
    with pytest.raises(ContractViolation, match=failing_type) as info:
        result.raise_for_blocking()
    assert column in str(info.value)


def test_failure_message_names_example_rows(wh):
    seed(wh, n_completion_tokens=-7)
    result = run_contracts(wh, "raw_traces", "gen-1")
    assert not result.passed
    (failure,) = result.blocking_failures
    assert failure.examples == ({"trace_id": "t1", "n_completion_tokens": -7},)
    assert '"trace_id": "t1"' in result.failure_message()
    stored = wh.query("select unexpected_examples_json from meta.dq_results where validation_id = ? and not success",
                      [result.validation_id])
    assert json.loads(stored.item()) == [{"trace_id": "t1", "n_completion_tokens": -7}]


def test_referential_integrity_is_checked_in_sql(wh):
    wh.load("raw.raw_traces", traces(prompt_id="p_missing"), key=["trace_id"])
    wh.load("raw.raw_prompts", prompts(), key=["prompt_id"])
    result = run_contracts(wh, "raw.raw_traces", record=False)
    (failure,) = result.blocking_failures
    assert failure.expectation_type == "sql_referential_integrity"
    assert failure.examples == ({"trace_id": "t1", "prompt_id": "p_missing"},)


def test_run_filter_checks_only_that_runs_rows(wh):
    seed(wh, n_completion_tokens=0)
    wh.load("raw.raw_traces", traces(1).with_columns(trace_id=pl.lit("t9"), run_id=pl.lit("gen-2")), key=["trace_id"])
    assert run_contracts(wh, "raw.raw_traces", "gen-2", record=False).passed
    assert not run_contracts(wh, "raw.raw_traces", "gen-1", record=False).passed


def test_warning_severity_does_not_block():
    frame = traces(finish_reason="eos")
    result = validate_frame(frame, load_suite("raw_traces"))
    assert not result.success and result.passed


def test_missing_column_is_an_error_outcome_not_a_pass():
    result = validate_frame(pl.DataFrame({"trace_id": ["t0"]}), load_suite("raw_verifications"))
    errors = [o for o in result.outcomes if o.error_message]
    assert errors and not result.passed


def test_empty_rows_pass_vacuously_but_missing_columns_still_fail():
    suite = load_suite("raw_traces")
    empty = pl.DataFrame(schema={c: pl.String for c in suite.columns if c != "top_p"})
    result = validate_frame(empty, suite)
    assert result.n_rows == 0
    assert [o.columns for o in result.outcomes if not o.success] == [("top_p",)]
