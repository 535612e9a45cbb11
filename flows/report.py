"""Run reports: funnel, summary and plots as Prefect artifacts and as a file (`potstill report`)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from flows.common import in_flow
from tasks.report.core import Report, make_plots, markdown_table, to_html, to_markdown
from tasks.report.viewer import render_viewer
from warehouse import Warehouse, WarehouseError

QUERIES = Path(__file__).resolve().parent.parent / "warehouse" / "queries"
SECTIONS = ("verdicts", "lengths", "provenance", "datasets")


def _query(wh: Warehouse, name: str, params: dict | None = None) -> pl.DataFrame:
    return wh.query((QUERIES / f"report_{name}.sql").read_text(), params)


def build_report(wh: Warehouse, run_id: str) -> Report:
    """Collect a run's funnel and the warehouse-wide sections (those whose tables exist)."""
    run = wh.query("select * from meta.runs where run_id = ?", [run_id])
    if run.is_empty():
        raise WarehouseError(f"no run {run_id!r} in {wh.path}; list runs with `potstill status`")
    row = run.row(0, named=True)
    funnel = _query(wh, "funnel", {"run_id": run_id})
    notes = [f"run {run_id}: {row['flow_name']} ({row['status']}), started {row['started_at']}, finished {row['finished_at']}",
             f"config fingerprint {row['config_fingerprint']}", f"warehouse {wh.path}"]
    stats = json.loads(row["stats_json"] or "{}")
    for stage in stats.get("stages", []):
        extra = {k: v for k, v in stage.items()
                 if k in ("accuracy_before", "accuracy_after", "dataset", "checkpoint_path") and v is not None}
        if extra:
            notes.append(f"{stage.get('stage')}: {extra}")
    sections: dict[str, pl.DataFrame] = {}
    for name in SECTIONS:
        try:
            sections[name] = _query(wh, name)
        except (duckdb.CatalogException, WarehouseError) as exc:
            notes.append(f"{name}: not available yet ({str(exc).splitlines()[0][:120]})")
    report = Report(title=f"potstill report: {row['flow_name']} {run_id}", funnel=funnel, sections=sections, notes=notes)
    if "lengths" in sections:  # the histogram needs rows, the table a summary
        lengths = sections["lengths"]
        report.plots = make_plots(sections)
        sections["lengths"] = lengths.group_by("model_id").agg(
            pl.len().alias("n_traces"), pl.col("n_completion_tokens").mean().round(1).alias("mean_tokens"),
            pl.col("n_completion_tokens").median().alias("median_tokens"), pl.col("n_completion_tokens").max().alias("max_tokens"),
        ).sort("model_id")
    else:
        report.plots = make_plots(sections)
    return report


def write_report(report: Report, out: Path, fmt: str = "md") -> Path:
    """Write the report (markdown + PNG files beside it, or one self-contained HTML file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        out.write_text(to_html(report))
    elif fmt in ("md", "markdown"):
        for name, png in report.plots.items():
            (out.parent / f"{out.stem}_{name}.png").write_bytes(png)
        images = "".join(f"\n![{n}]({out.stem}_{n}.png)\n" for n in report.plots)
        out.write_text(to_markdown(report) + images)
    else:
        raise ValueError(f"report format {fmt!r}: choose md or html")
    return out


def publish_report(wh: Warehouse, run_id: str, out_dir: Path | None = None) -> str:
    """Write the report next to the warehouse and, inside a flow, as Prefect artifacts."""
    report = build_report(wh, run_id)
    base = Path(out_dir) if out_dir else Path(wh.path).parent / "reports"
    path = write_report(report, base / f"{run_id}.md", "md")
    if in_flow():
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        create_table_artifact(key="funnel", table=report.funnel.to_dicts(), description="rows in/out/rejected per stage")
        create_markdown_artifact(key="curate-summary", markdown=to_markdown(report, inline_images=True),
                                 description=f"report of {run_id}")
    return str(path)


def _report_query(wh: Warehouse, name: str, params: dict | None = None) -> pl.DataFrame:
    return wh.query((QUERIES / "report" / f"{name}.sql").read_text(), params)


def _viewer_page(wh: Warehouse, title: str, picked: pl.DataFrame, params: dict, facts: dict) -> str:
    ids = picked["trace_id"].to_list()
    traces = _report_query(wh, "viewer_traces", {"trace_ids": ids})
    rows = picked.join(traces, on="trace_id", how="left")
    student, splitter = params.get("student_model_id"), params.get("splitter")
    beta = float(params.get("beta") or 0.1)
    try:
        sentences = _report_query(wh, "viewer_sentences", {"trace_ids": ids, "student": student,
                                                           "splitter": splitter, "beta": beta})
    except duckdb.CatalogException:  # no sentence scores table yet: the traces, uncoloured
        sentences = pl.DataFrame()
    students = sorted(set(sentences["student_model_id"].to_list())) if sentences.height else []
    facts = {**facts, "student": ", ".join(students) or student or "none scored", "beta": beta,
             "warehouse": wh.path}
    return render_viewer(title, rows, sentences, facts=facts)


def dataset_viewer(wh: Warehouse, spec: str) -> str:
    """The trace viewer of a published dataset version (`NAME`, `NAME@latest`, `NAME@N`): one row per
    row of curated.cur_dataset_rows for that version."""
    from tasks.publish.versions import resolve_version

    v = resolve_version(wh, spec)
    picked = _report_query(wh, "viewer_dataset", {"dataset_name": v.dataset_name, "version": v.version})
    return _viewer_page(wh, v.spec, picked, v.params,
                        {"policy": v.policy, "rows": v.n_rows, "content hash": v.content_hash[:12]})


def run_viewer(wh: Warehouse, run_id: str) -> str:
    """The trace viewer of a curate run: the rows of the version it published and every trace a
    stage of its lineage rejected, with the reason codes."""
    run = wh.query("select * from meta.runs where run_id = ?", [run_id])
    if run.is_empty():
        raise WarehouseError(f"no run {run_id!r} in {wh.path}; list runs with `potstill status`")
    stats = json.loads(run["stats_json"][0] or "{}")
    spec = next((s.get("dataset") for s in stats.get("stages", []) if s.get("stage") == "publish" and s.get("dataset")), None)
    name, version, params = None, None, {}
    if spec:
        from tasks.publish.versions import resolve_version

        v = resolve_version(wh, spec)
        name, version, params = v.dataset_name, v.version, v.params
    picked = _report_query(wh, "viewer_run", {"run_id": run_id, "dataset_name": name, "version": version})
    return _viewer_page(wh, f"{run['flow_name'][0]} run {run_id}", picked, params,
                        {"dataset": spec or "none published", "recipe": stats.get("recipe")})


def write_viewer(page: str, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


__all__ = ["build_report", "dataset_viewer", "markdown_table", "publish_report", "run_viewer", "write_report",
           "write_viewer"]
