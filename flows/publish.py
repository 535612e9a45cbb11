"""Publish flow: a selection → an immutable dataset version (contracts first), its views, an
optional export, and the `potstill.dataset.published` event that can trigger fine-tuning.

Two ways in:
- `selection=` a Parquet/JSONL/CSV file (or a list of records) of `(trace_id, rank, stage)` with
  `dataset_name` and `policy`: published here;
- `selection_run_id=` a select run that already published (select calls `publish_dataset` when it
  is given a dataset name): its version is looked up, re-hashed, and announced.

Also `validate_flow`: every data contract on the rows a stage run wrote (a stage boundary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task, publish_artifact
from tasks.contracts import ContractViolation, all_suites
from tasks.publish import DatasetVersion, PublishError
from warehouse import Warehouse
from warehouse.contracts import run_contracts, table_exists
from warehouse.datasets import list_versions, publish_dataset, verify_version
from warehouse.export import export_dataset
from warehouse.runs import stage_run

STAGE = "publish"
PUBLISHED_EVENT = "potstill.dataset.published"  # the event flows.finetune.on_publish listens for


def read_selection(selection: str | list[dict[str, Any]]) -> pl.DataFrame:
    """A selection file (.parquet, .jsonl/.ndjson, .csv) or records → DataFrame."""
    if isinstance(selection, list):
        return pl.DataFrame(selection)
    path = Path(selection)
    if not path.exists():
        raise PublishError(f"selection file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        if suffix == ".csv":
            return pl.read_csv(path)
    except pl.exceptions.PolarsError as exc:
        raise PublishError(f"selection file {path}: cannot read it: {exc}") from exc
    raise PublishError(f"selection file {path}: use .parquet, .jsonl or .csv")


def gate_artifact(dataset_name: str):
    """Publishes the publish gate's contract results as one markdown artifact."""
    key = f"dq-publish-{dataset_name}".replace("_", "-").replace(".", "-")
    return lambda results: publish_artifact(results, key=key)


def emit_published(version: DatasetVersion) -> None:
    """The Prefect event automations (and `flows.finetune.on_publish`) trigger on."""
    from prefect.events import emit_event

    emit_event(
        event=PUBLISHED_EVENT,
        resource={"prefect.resource.id": f"potstill.dataset.{version.dataset_name}.{version.version}",
                  "potstill.dataset.name": version.dataset_name, "potstill.dataset.version": str(version.version)},
        payload={"content_hash": version.content_hash, "n_rows": version.n_rows, "policy": version.policy},
    )


@task(name="publish-version", cache_policy=NO_CACHE)
def publish_task(warehouse: str, dataset_name: str, rows: pl.DataFrame, policy: str, params: dict,
                 config_fingerprint: str | None, source_run_ids: list[str], run_id: str) -> DatasetVersion:
    """Contracts + publish in one task (seconds: a few great-expectations suites and two transactions)."""
    return publish_dataset(Warehouse(warehouse), dataset_name, rows, policy, params, config_fingerprint,
                           source_run_ids, publish_run_id=run_id, on_results=gate_artifact(dataset_name))


@task(name="publish-export", cache_policy=NO_CACHE)
def export_task(warehouse: str, spec: str, fmt: str, out: str) -> str:
    return str(export_dataset(Warehouse(warehouse), spec, fmt, Path(out)))


def _published_by(wh: Warehouse, selection_run_id: str) -> DatasetVersion:
    found = [v for v in list_versions(wh) if v.status == "published" and (
        selection_run_id in v.source_run_ids or v.params.get("select_run_id") == selection_run_id)]
    if not found:
        raise PublishError(
            f"the select run {selection_run_id} published no dataset version: give the select stage a "
            "dataset_name, or pass selection=<file> and dataset_name to publish"
        )
    return found[-1]


@flow(name="publish")
def publish_flow(
    warehouse: str | None = None,
    dataset_name: str | None = None,
    selection: str | list[dict[str, Any]] | None = None,
    selection_run_id: str | None = None,
    policy: str | None = None,
    params: dict[str, Any] | None = None,
    config_fingerprint: str | None = None,
    source_run_ids: list[str] | None = None,
    export_format: str | None = None,
    export_dir: str | None = None,
    emit_event: bool = True,
) -> dict:
    """Publish a selection as the next version of `dataset_name` (or confirm a select run's version).

    Returns {"run_id", "n_in", "n_out", "n_rejected", "dataset", "dataset_spec", "version", "is_new",
    "content_hash", "n_rows", "n_tokens", "export_path"}. A blocking contract failure fails the run
    (the version is stored as `failed`) and raises `ContractViolation`.
    """
    log = get_run_logger()
    wh = Warehouse(warehouse)
    config = {"dataset_name": dataset_name, "selection": selection if isinstance(selection, str) else "records",
              "selection_run_id": selection_run_id, "policy": policy, "params": params or {},
              "config_fingerprint": config_fingerprint, "export_format": export_format}
    with stage_run(wh, STAGE, config) as run:
        run_id, run.n_in = run.run_id, 0
        try:
            if selection is not None:
                if not dataset_name or not policy:
                    raise PublishError("publish: a selection needs dataset_name and policy")
                rows = read_selection(selection)
                n_in = run.n_in = rows.height
                sources = list(source_run_ids or ([selection_run_id] if selection_run_id else []))
                version = call_task(publish_task, wh.path, dataset_name, rows, policy, params or {},
                                    config_fingerprint, sources, run_id)
            elif selection_run_id is not None:
                version = _published_by(wh, selection_run_id)
                n_in = run.n_in = version.n_rows
                if not verify_version(wh, version.spec):
                    raise PublishError(f"dataset {version.spec}: stored rows no longer hash to {version.content_hash}")
            else:
                raise PublishError("publish: pass selection=<file or records> or selection_run_id=<select run>")
            log.info("dataset %s: %s rows, %s tokens (%s)", version.spec, version.n_rows, version.n_tokens,
                     "new version" if version.is_new else "existing version")
            export_path = None
            if export_format:
                out = export_dir or str(Path(wh.path).parent / "exports" / f"{version.dataset_name}-v{version.version}")
                export_path = call_task(export_task, wh.path, version.spec, export_format, out)
            if emit_event:
                emit_published(version)
        except ContractViolation:
            run.n_out, run.n_rejected = 0, run.n_in
            raise
        stats = {"dataset": version.spec, "dataset_spec": version.spec, "version": version.version,
                 "is_new": version.is_new, "content_hash": version.content_hash, "n_rows": version.n_rows,
                 "n_tokens": version.n_tokens, "export_path": export_path}
        run.n_out, run.n_rejected, run.stats = version.n_rows, 0, stats
    return {"run_id": run_id, "n_in": n_in, "n_out": version.n_rows, "n_rejected": 0, **stats}


@flow(name="validate")
def validate_flow(warehouse: str | None = None, run_id: str | None = None, tables: list[str] | None = None,
                  fail_on_blocking: bool = True) -> dict:
    """Run the data contracts of `tables` (default: every suite whose table exists) on the rows
    `run_id` wrote (all rows when None); results in meta.dq_results and one markdown artifact."""
    wh = Warehouse(warehouse)
    with stage_run(wh, "validate", {"run_id": run_id, "tables": tables}) as run:
        check_run = run.run_id
        suites = all_suites()
        names = tables or [n for n, s in suites.items() if s.run_id_column or run_id is None]
        results = []
        with wh.connect() as con:
            present = [n for n in names if table_exists(con, suites[n].table if n in suites else n)]
        for name in present:
            results.append(run_contracts(wh, name, run_id, checker_run_id=check_run))
        publish_artifact(results, key="dq-validate")
        failed = [r for r in results if not r.passed]
        n_rows = sum(r.n_rows for r in results)
        run.n_in, run.stats = n_rows, {"suites": {r.suite_name: {"n_rows": r.n_rows, "passed": r.passed, "success": r.success}
                                                 for r in results}}
        stats = run.stats
        if failed and fail_on_blocking:
            run.error_message = failed[0].failure_message()
            raise ContractViolation(failed)
        run.n_out, run.n_rejected = n_rows, 0
    return {"run_id": check_run, "n_in": n_rows, "n_out": n_rows, "n_rejected": 0, **stats,
            "n_blocking_failures": len(failed)}
