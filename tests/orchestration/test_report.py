"""Run reports: funnel with reason codes, sections, plots, markdown and HTML files."""

from __future__ import annotations

import json

import polars as pl

from flows.ingest import run_ingest
from flows.report import build_report, write_report
from tasks.report.core import make_plots, markdown_table


def test_funnel_names_reason_codes_and_files_are_written(wh, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text(json.dumps({"problem": "Compute 1 + 1.", "answer": "2"}) + "\n{broken\n\n")
    run_id = run_ingest(data, warehouse=wh.path)["run_id"]
    report = build_report(wh, run_id)
    row = report.funnel.row(0, named=True)
    assert (row["stage"], row["n_in"], row["n_out"], row["n_rejected"]) == ("ingest", 3, 1, 2)
    assert row["reasons"] == "empty_row=1, invalid_json=1"
    md = write_report(report, tmp_path / "r.md", "md").read_text()
    assert "| ingest |" in md and "invalid_json=1" in md
    html = write_report(report, tmp_path / "r.html", "html").read_text()
    assert html.startswith("<html>") and "invalid_json=1" in html


def test_plots_accept_duckdb_decimal_sums():
    provenance = pl.DataFrame({"teacher_model_id": ["a", "b"], "n_teacher": [3, 0], "n_common": [2, 0], "n_student": [1, 0]})
    provenance = provenance.with_columns(pl.col("n_teacher", "n_common", "n_student").cast(pl.Decimal(38, 0)))
    verdicts = pl.DataFrame({"verifier": ["math_verify"] * 2, "verdict_status": ["correct", "incorrect"], "n_traces": [5, 2]})
    plots = make_plots({"provenance": provenance, "verdicts": verdicts})
    assert set(plots) == {"provenance", "verdicts"}
    assert all(png.startswith(b"\x89PNG") for png in plots.values())


def test_markdown_table_truncates():
    text = markdown_table(pl.DataFrame({"a": list(range(5))}), max_rows=2)
    assert text.splitlines()[-1] == "_… 3 more rows_"
