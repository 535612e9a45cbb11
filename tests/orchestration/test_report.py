"""Run reports: funnel with reason codes, sections, plots, markdown and HTML files."""

from __future__ import annotations

import json

import polars as pl

from flows.ingest import run_ingest
from flows.report import build_report, write_report
from tasks.report.core import build_funnel, make_plots, markdown_table, outcome_lines, outcome_table


def test_funnel_names_reason_codes_and_files_are_written(wh, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"problem": "Compute 1 + 1.", "answer": "2"}) + "\n{broken\n\n")
    run_id = run_ingest(data, warehouse=wh.path)["run_id"]
    report = build_report(wh, run_id)
    row = report.funnel.row(0, named=True)
    assert (row["stage"], row["unit"], row["n_in"], row["n_out"], row["n_rejected"]) == ("ingest (prompts)", "prompts", 3, 1, 2)
    assert row["reasons"] == "empty_row=1, invalid_json=1" and row["reconciles"] is True
    md = write_report(report, tmp_path / "r.md", "md").read_text()
    assert md.index("## Outcome") < md.index("## Funnel")
    assert "| ingest (prompts) | prompts | 3 | 1 | 2 | empty_row=1, invalid_json=1 | yes |" in md
    html = write_report(report, tmp_path / "r.html", "html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "invalid_json=1" in html


def test_funnel_splits_dedup_by_unit_and_flags_what_does_not_reconcile():
    runs = pl.DataFrame({
        "run_id": ["d", "s"], "stage": ["dedup", "select"], "n_in": [15, 10], "n_out": [12, 4], "n_rejected": [4, 5],
        "stats_json": [json.dumps({"prompt": {"n_items": 5, "n_duplicates": 1}, "trace": {"n_items": 10, "n_duplicates": 2},
                                   "decontamination": {"n_checked": 5, "benchmarks": {"b": {}}}}), "{}"],
        "config_json": ["{}", "{}"],
    })
    reasons = pl.DataFrame({
        "run_id": ["d", "d", "d", "s"], "is_contamination": [False, False, True, False],
        "unit": ["prompts", "traces", "prompts", "traces"], "reason_code": ["dup_exact", "dup_near", "contaminated", "x"],
        "n": [1, 2, 1, 5],
    })
    funnel = build_funnel(runs, reasons)
    assert funnel.select("stage", "unit", "n_in", "n_out", "n_rejected", "reconciles").rows() == [
        ("dedup (prompts)", "prompts", 5, 4, 1, True), ("dedup (traces)", "traces", 10, 8, 2, True),
        ("decontaminate", "prompts", 5, 4, 1, True), ("select", "traces", 10, 4, 5, False),  # 10 != 4 + 5
    ]


def test_outcome_has_intervals_and_says_truncated():
    evals = pl.DataFrame({"model_id": ["/m/student", "/c/step-000043"], "training_run_id": [None, "tr_1"],
                          "n_problems": [120, 120], "pass_at_1": [17 / 120, 4 / 120]})
    table = outcome_table(evals)
    assert table["solved"].to_list() == [17, 4] and table["95% CI"][0] == "0.090–0.215"
    lines = outcome_lines(table, {"n_steps": 43, "n_steps_planned": 1000, "stop_reason": "truncated: time cap of 3 min"})
    assert lines[0].startswith("student pass@1 0.142 (95% CI 0.090–0.215) → 0.033") and "-10.8 points" in lines[0]
    assert "TRUNCATED (time cap of 3 min)" in lines[1] and "43 of 1,000" in lines[1]
    plots = make_plots(pl.DataFrame({"teacher": ["a", "b"], "n_completion_tokens": [10, 20], "n_teacher": [1, 3],
                                     "selected": [True, False]}), table)
    assert set(plots) == {"outcome", "lengths", "provenance"} and all(p.startswith(b"\x89PNG") for p in plots.values())


def test_markdown_table_truncates_and_rounds():
    text = markdown_table(pl.DataFrame({"a": list(range(5))}), max_rows=2)
    assert text.splitlines()[-1] == "_… 3 more rows_"
    assert markdown_table(pl.DataFrame({"x": [0.14166666, 1234567.0]})).splitlines()[2:] == ["| 0.142 |", "| 1,234,567 |"]


def test_funnel_counts_prompts_only_semantic_dedup_removed():
    # 10 prompts: 2 exact/near duplicates, 3 more that only semantic dedup removed (reason dup_semantic)
    runs = pl.DataFrame({
        "run_id": ["d"], "stage": ["dedup"], "n_in": [10], "n_out": [8], "n_rejected": [5],
        "stats_json": [json.dumps({"prompt": {"n_items": 10, "n_duplicates": 2},
                                   "semantic": {"prompt": {"n_items": 10, "n_duplicates": 4, "n_removed": 3}}})],
        "config_json": ["{}"],
    })
    reasons = pl.DataFrame({"run_id": ["d", "d"], "is_contamination": [False, False], "unit": ["prompts", "prompts"],
                            "reason_code": ["dup_exact", "dup_semantic"], "n": [2, 3]})
    assert build_funnel(runs, reasons).select("stage", "n_in", "n_out", "n_rejected", "reconciles").rows() == [
        ("dedup (prompts)", 10, 5, 5, True)
    ]


def test_outcome_query_is_empty_for_a_training_run_without_evaluation(wh):
    """A training run with no evaluation of its own yields no outcome rows (DuckDB 1.5.5 gave one
    all-null row for `where ... qualify row_number() over (order by ...) = 1` on an empty match)."""
    from datetime import UTC, datetime

    base = {"eval_set": "e.jsonl", "eval_set_hash": "h", "eval_config_fingerprint": "f", "eval_config_json": "{}", "domain": "all",
            "n_problems": 10, "pass_at_1": 0.5, "pass_at_k": 0.5, "k": 1, "n_samples": 1, "temperature": 0.8,
            "mean_completion_tokens": 9.0, "truncation_rate": 0.0, "run_id": "evaluate-1",
            "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
    rows = pl.DataFrame([{**base, "eval_id": "ev_base", "model_id": "student", "training_run_id": None},
                         {**base, "eval_id": "ev_tuned", "model_id": "ckpt", "training_run_id": "tr_1", "pass_at_1": 0.7}])
    wh.load("meta.eval_results", rows, key=["eval_id", "domain"], mode="replace")
    assert wh.run_file("report/outcome", {"training_run_id": "tr_other"}).is_empty()
    found = wh.run_file("report/outcome", {"training_run_id": "tr_1"})
    assert found["pass_at_1"].to_list() == [0.5, 0.7] and found["n_problems"].to_list() == [10, 10]
