"""Run reports (Outcome, reconciling funnel, per-teacher and provenance sections, plots) as Prefect
artifacts and files, the provenance trace viewer (`potstill view`) and their screenshots."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from flows.common import in_flow
from tasks.report.core import (
    Report,
    build_funnel,
    make_plots,
    markdown_table,
    outcome_lines,
    outcome_table,
    per_teacher,
    to_html,
    to_markdown,
)
from tasks.report.viewer import render_viewer
from warehouse import Warehouse, WarehouseError


def _published(stats: dict) -> str | None:
    """The dataset version a curate run published (NAME@N), from its stage stats."""
    return next((s.get("dataset") for s in stats.get("stages", []) if s.get("stage") == "publish" and s.get("dataset")), None)


def _training(wh: Warehouse, name: str, version: int) -> dict | None:
    found = _report_query(wh, "outcome_training", {"dataset_name": name, "version": version})
    if found.is_empty():
        return None
    row = found.row(0, named=True)
    stats = json.loads(row.pop("stats_json") or "{}")
    training = {**row, **{k: stats.get(k) for k in ("n_steps_planned", "stop_reason", "train_seconds") if k in stats}}
    if training.get("n_steps_planned") is None and row.get("checkpoint_path"):
        # runs recorded before planned steps were stored: the checkpoint's sidecar has the recipe
        sidecar = Path(row["checkpoint_path"]).parent / f"{Path(row['checkpoint_path']).name}.json"
        if sidecar.is_file():
            train = json.loads(sidecar.read_text()).get("train_config") or {}
            if (train.get("max_steps") or 0) > 0:
                training["n_steps_planned"] = int(train["max_steps"])
                if row["n_steps"] is not None and row["n_steps"] < train["max_steps"] and train.get("max_train_minutes"):
                    training["stop_reason"] = f"truncated: time cap of {train['max_train_minutes']} min"
    return training


def build_report(wh: Warehouse, run_id: str) -> Report:
    """A run's report, every section limited to its lineage (the run and its child runs): Outcome,
    funnel with units, per-teacher table, provenance against length, before/after chart."""
    run = wh.run_file("report/run", {"run_id": run_id})
    if run.is_empty():
        raise WarehouseError(f"no run {run_id!r} in {wh.path}; list runs with `potstill status`")
    row = run.row(0, named=True)
    stats = json.loads(row["stats_json"] or "{}")
    funnel = build_funnel(_report_query(wh, "funnel_runs", {"run_id": run_id}),
                          _report_query(wh, "funnel_reasons", {"run_id": run_id}))
    seconds = (row["finished_at"] - row["started_at"]).total_seconds() if row["finished_at"] else None
    notes = [f"run {run_id}: {row['flow_name']} ({row['status']}), started {row['started_at']:%Y-%m-%d %H:%M:%S} UTC"
             + (f", took {seconds / 60:.1f} min" if seconds is not None else ""),
             f"recipe {stats.get('recipe', '?')}, fingerprint {row['config_fingerprint']}", f"warehouse {wh.path}"]
    if row["error_message"]:
        notes.append(f"error: {row['error_message'].splitlines()[0][:300]}")
    sections: dict[str, pl.DataFrame] = {}
    spec = _published(stats)
    training, traces = None, pl.DataFrame()
    outcome = outcome_table(pl.DataFrame())
    if spec:
        from tasks.publish.versions import resolve_version

        v = resolve_version(wh, spec)
        notes.append(f"published {v.spec}: {v.n_rows:,} rows, {v.n_tokens:,} completion tokens, policy {v.policy}")
        training = _training(wh, v.dataset_name, v.version)
        if training:
            outcome = outcome_table(_report_query(wh, "outcome", {"training_run_id": training["training_run_id"]}))
        traces = _report_query(wh, "run_traces", {"run_id": run_id, "dataset_name": v.dataset_name, "version": v.version,
                                                  "student": v.params.get("student_model_id"),
                                                  "beta": float(v.params.get("beta") or 0.1)})
    if outcome.height:
        sections["outcome"] = outcome
    if traces.height:
        sections["per teacher"] = per_teacher(traces)
        scored = traces.filter(pl.col("n_teacher").is_not_null())
        if scored.height:
            corr = scored.select(pl.corr("n_teacher", "n_completion_tokens")).item()
            sections["provenance"] = scored.group_by("selected").agg(
                pl.len().alias("traces"), pl.col("n_teacher").mean().round(2).alias("mean teacher sentences"),
                pl.col("n_sentences").mean().round(2).alias("mean sentences"),
                pl.col("n_completion_tokens").mean().round(1).alias("mean tokens"),
            ).sort("selected", descending=True)
            notes.append(f"teacher-sentence count vs length over {scored.height:,} scored traces: "
                         f"Pearson r = {corr:.2f}" if corr is not None else "teacher-sentence count vs length: n/a")
    semantic = _report_query(wh, "semantic", {"run_id": run_id})
    if semantic.height:
        sections["semantic dedup (examples)"] = semantic
    report = Report(title=f"potstill report: {row['flow_name']} {run_id}", funnel=funnel, sections=sections, notes=notes,
                    outcome=outcome_lines(outcome, training) if (outcome.height or training) else ["no evaluation in this run"])
    bad = funnel.filter(pl.col("reconciles") == False)
    if bad.height:
        report.notes.append("does not reconcile: " + ", ".join(bad["stage"].to_list()))
    report.plots = make_plots(traces, outcome)
    return report


def write_report(report: Report, out: Path, fmt: str = "md") -> Path:
    """Write the report (markdown + PNG files beside it, or one self-contained HTML file)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        out.write_text(to_html(report))
    elif fmt in ("md", "markdown"):
        files = {}
        for name, png in report.plots.items():
            (out.parent / f"{out.stem}_{name}.png").write_bytes(png)
            files[name] = f"{out.stem}_{name}.png"
        out.write_text(to_markdown(report, image_files=files))
    else:
        raise ValueError(f"report format {fmt!r}: choose md or html")
    return out


def publish_report(wh: Warehouse, run_id: str, out_dir: Path | None = None) -> str:
    """Write the report (markdown and HTML) and the run's trace viewer next to the warehouse and,
    inside a flow, as Prefect artifacts (the summary, the funnel table, a link to the viewer)."""
    report = build_report(wh, run_id)
    base = Path(out_dir) if out_dir else Path(wh.path).parent / "reports"
    viewers = {}
    try:
        viewers["trace viewer of this run"] = write_viewer(run_viewer(wh, run_id), base / f"{run_id}.traces.html")
        spec = _published(json.loads(_report_query(wh, "run", {"run_id": run_id})["stats_json"].first() or "{}"))
        if spec:
            viewers[f"trace viewer of {spec}"] = write_viewer(dataset_viewer(wh, spec), base / f"{spec.replace('@', '-v')}.traces.html")
    except (duckdb.Error, WarehouseError) as exc:  # the report still stands without its viewer
        report.notes.append(f"trace viewer not written: {str(exc).splitlines()[0][:200]}")
    report.links = {label: path.name for label, path in viewers.items()}
    path = write_report(report, base / f"{run_id}.md", "md")
    write_report(report, base / f"{run_id}.html", "html")
    if in_flow():
        from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

        create_table_artifact(key="funnel", table=report.funnel.drop("run_id").to_dicts(),
                              description="per stage: unit, rows in / out / rejected, reasons, reconciles")
        artifact = Report(**{**report.__dict__, "links": {k: str(v.resolve()) for k, v in viewers.items()}})
        create_markdown_artifact(key="curate-summary", markdown=to_markdown(artifact, inline_images=True),
                                 description=f"report of {run_id}")
        for label, viewer in viewers.items():
            create_link_artifact(key="trace-viewer", link=viewer.resolve().as_uri(), link_text=label,
                                 description="self-contained HTML: sentences coloured by provenance class")
    return str(path)


def _report_query(wh: Warehouse, name: str, params: dict | None = None) -> pl.DataFrame:
    return wh.run_file(f"report/{name}", params)


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
    run = wh.run_file("report/run", {"run_id": run_id})
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


def chromium() -> str | None:
    """The headless browser used for screenshots and viewer tests (Debian `chromium`), if installed."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html_file: Path, png: Path, *, width: int = 1280, height: int = 900) -> Path:
    """A PNG of an HTML file rendered by headless Chromium (a fresh profile, no network)."""
    import subprocess
    import tempfile

    browser = chromium()
    if browser is None:
        raise WarehouseError("screenshots need Chromium: apt-get install chromium (make browser)")
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
                        Path(html_file).resolve().as_uri()], check=True, capture_output=True, timeout=180)
    return png


def screenshots(wh: Warehouse, out_dir: Path, run_id: str | None = None) -> list[Path]:
    """Screenshots of the latest (or given) curate run's HTML report and of its dataset's trace
    viewer, for the README (`make screenshots` → docs/img/)."""
    import tempfile

    run_id = run_id or wh.scalar_file("report/latest_curate_run")
    if not run_id:
        raise WarehouseError(f"no completed curate run in {wh.path}: run `make demo` first")
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        report_html = write_report(build_report(wh, run_id), Path(tmp) / "report.html", "html")
        shots = [screenshot(report_html, out_dir / "report.png", height=1500)]
        spec = _published(json.loads(_report_query(wh, "run", {"run_id": run_id})["stats_json"].first() or "{}"))
        if spec:
            viewer = write_viewer(dataset_viewer(wh, spec), Path(tmp) / "viewer.html")
            shots.append(screenshot(viewer, out_dir / "viewer.png", height=1000))
    return shots
