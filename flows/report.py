"""Run reports: funnel, summary and plots as Prefect artifacts and as a file (`potstill report`)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from flows.common import in_flow
from tasks.report.core import Report, make_plots, markdown_table, to_html, to_markdown
from warehouse import Warehouse, WarehouseError

SECTIONS = ("verdicts", "lengths", "provenance", "datasets", "semantic")


def _query(wh: Warehouse, name: str, params: dict | None = None) -> pl.DataFrame:
    return wh.run_file(f"report_{name}", params)


def build_report(wh: Warehouse, run_id: str) -> Report:
    """Collect a run's funnel and the warehouse-wide sections (those whose tables exist)."""
    run = wh.run_file("report/run", {"run_id": run_id})
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


__all__ = ["build_report", "markdown_table", "publish_report", "write_report"]
