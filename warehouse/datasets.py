"""Dataset versions in the warehouse: publish (contracts first), list, resolve and re-verify them.

A version is the ordered set of (trace_id, rank, stage) a selection policy chose (see
`tasks.publish.versions` for the version record and its content hash).

Publishing: draft row → data contracts on the selection and on the upstream rows of its traces →
`published` (rows, status and the per-dataset views in one transaction) or `failed` (with the
blocking expectation in `status_reason`, and `ContractViolation` raised).

>>> v = publish_dataset(wh, "toy", selection, policy="random", params={"budget": 8},
...                     config_fingerprint="abc", source_run_ids=["select-1"])   # doctest: +SKIP
>>> resolve_version(wh, "toy@latest").version                                    # doctest: +SKIP
1
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import polars as pl

from tasks.contracts import ContractResult, ContractViolation
from tasks.contracts.runner import merge_results, validate_frame
from tasks.contracts.suites import load_suite
from tasks.publish.sql import check_name, create_views_sql
from tasks.publish.versions import (
    DatasetVersion,
    PublishError,
    content_hash,
    has_pairs,
    normalise_selection,
    parse_spec,
    row_to_version,
    utcnow,
)
from warehouse.contracts import check_references, load_rows, record_results, table_exists

DEFAULT_STAGE = "main"
# Upstream suites checked on the rows of the selected traces before publishing (skipped when the
# table does not exist yet, e.g. before any verification ran).
UPSTREAM_SUITES = (("raw_prompts", "prompt_ids"), ("raw_traces", "trace_ids"),
                   ("raw_verifications", "trace_ids"), ("raw_sentence_scores", "trace_ids"))
# Upstream rows are checked in chunks of this many trace/prompt ids (every key of those suites
# contains the scope column, so uniqueness holds across chunks).
GATE_CHUNK_IDS = 20_000


def enrich_selection(con, rows: pl.DataFrame) -> pl.DataFrame:
    """Join the selection to its traces and prompts: what the contracts check and the hash covers."""
    con.register("_pub_selection", rows.with_row_index("_pos").to_arrow())
    try:
        enriched = con.sql(
            """select s.trace_id, s.rank, s.stage, t.prompt_id, t.model_id, t.n_completion_tokens,
                      length(t.completion_text) as n_completion_chars,
                      sha256(t.completion_text) as completion_sha256, sha256(p.problem_text) as prompt_sha256
               from _pub_selection s
               left join staging.stg_traces t on t.trace_id = s.trace_id
               left join staging.stg_prompts p on p.prompt_id = t.prompt_id
               order by s._pos"""
        ).to_arrow_table()
    finally:
        con.unregister("_pub_selection")
    return pl.from_arrow(enriched)  # type: ignore[return-value]


def list_versions(wh, dataset_name: str | None = None) -> list[DatasetVersion]:
    sql = "select * from curated.cur_datasets"
    params: list[Any] = []
    if dataset_name is not None:
        sql += " where dataset_name = ?"
        params.append(dataset_name)
    df = wh.query(sql + " order by dataset_name, version", params)
    return [row_to_version(r) for r in df.to_dicts()]


def resolve_version(wh, spec: str) -> DatasetVersion:
    """`name`, `name@latest` → the newest published version; `name@N` → version N if published."""
    name, version = parse_spec(spec)
    published = [v for v in list_versions(wh, name) if v.status == "published"]
    if not published:
        raise PublishError(f"dataset {name!r} has no published version (run `potstill run publish` first)")
    if version is None:
        return published[-1]
    for v in published:
        if v.version == version:
            return v
    have = ", ".join(str(v.version) for v in published)
    raise PublishError(f"dataset {name!r} has no published version {version} (published: {have})")


def verify_version(wh, spec: str) -> bool:
    """Re-hash a stored version from its rows and the texts they point to; True if unchanged."""
    v = resolve_version(wh, spec)
    rows = wh.query(
        "select trace_id, rank, stage from curated.cur_dataset_rows where dataset_name = ? and version = ?",
        [v.dataset_name, v.version],
    )
    with wh.connect() as con:
        enriched = enrich_selection(con, rows)
    return content_hash(enriched) == v.content_hash


def _gate(con, enriched: pl.DataFrame, dataset_name: str, version: int) -> list[ContractResult]:
    """Contracts before publishing: the selection itself, then upstream rows of its traces."""
    results = []
    frame = enriched.with_columns(dataset_name=pl.lit(dataset_name), version=pl.lit(version, pl.Int32))
    suite = load_suite("dataset_rows")
    res = validate_frame(frame, suite)
    refs = check_references(con, suite, frame, start_index=len(suite.expectations))
    results.append(ContractResult(res.validation_id, res.suite_name, res.table, res.n_rows,
                                  res.outcomes + tuple(refs), None, res.checked_at))
    scopes = {
        "trace_ids": enriched["trace_id"].drop_nulls().unique().to_list(),
        "prompt_ids": enriched["prompt_id"].drop_nulls().unique().to_list(),
    }
    for name, scope in UPSTREAM_SUITES:
        suite = load_suite(name)
        if not table_exists(con, suite.table):
            continue
        ids = sorted(scopes[scope])
        chunks = []
        for start in range(0, max(len(ids), 1), GATE_CHUNK_IDS):  # bounded memory: ~GATE_CHUNK_IDS items at once
            rows = load_rows(con, suite, scope_ids=ids[start:start + GATE_CHUNK_IDS])
            res = validate_frame(rows, suite)
            refs = check_references(con, suite, rows, start_index=len(suite.expectations))
            chunks.append(ContractResult(res.validation_id, res.suite_name, res.table, res.n_rows,
                                         res.outcomes + tuple(refs), None, res.checked_at))
        results.append(merge_results(chunks))
    return results


def _next_version(con, dataset_name: str, chash: str) -> tuple[int, bool]:
    """(version, reuse): reuse the newest version when it is an unpublished attempt at the same content."""
    rows = con.execute(
        "select version, status, content_hash from curated.cur_datasets where dataset_name = ? "
        "order by version desc limit 1",
        [dataset_name],
    ).fetchall()
    if not rows:
        return 1, False
    version, status, existing_hash = rows[0]
    if status != "published" and existing_hash == chash:
        return int(version), True
    return int(version) + 1, False


def publish_dataset(
    wh,
    dataset_name: str,
    selection_rows: pl.DataFrame,
    policy: str,
    params: dict[str, Any],
    config_fingerprint: str | None,
    source_run_ids: list[str],
    *,
    publish_run_id: str | None = None,
    on_results: Callable[[list[ContractResult]], object] | None = None,
) -> DatasetVersion:
    """Publish `selection_rows` (trace_id, rank, stage) as the next version of `dataset_name`.

    Identical content (same rows and texts) returns the existing published version (`is_new=False`).
    Raises `ContractViolation` (the version is stored as `failed`) when a blocking expectation
    fails, and `PublishError` for malformed input. `on_results` receives the contract results
    (the flows publish them as a Prefect artifact).
    """
    check_name(dataset_name)
    if not policy:
        raise PublishError("publish: 'policy' is empty; name the selection policy that made the rows")
    rows = normalise_selection(selection_rows)
    if rows.height == 0:
        raise PublishError(f"publish {dataset_name}: the selection is empty; nothing to publish")
    with wh.connect() as con:
        enriched = enrich_selection(con, rows)
    chash = content_hash(enriched)
    n_tokens = int(enriched["n_completion_tokens"].fill_null(0).clip(lower_bound=0).sum())

    with wh.transaction() as con:
        found = con.execute(
            "select version from curated.cur_datasets where dataset_name = ? and content_hash = ? "
            "and status = 'published' order by version limit 1",
            [dataset_name, chash],
        ).fetchall()
        if found:
            existing = found[0][0]
        else:
            existing = None
            version, reuse = _next_version(con, dataset_name, chash)
            if reuse:
                con.execute("delete from curated.cur_datasets where dataset_name = ? and version = ?",
                            [dataset_name, version])
            draft = {
                "dataset_name": dataset_name, "version": version, "policy": policy,
                "params_json": json.dumps(params, sort_keys=True, default=str),
                "config_fingerprint": config_fingerprint, "source_run_ids": list(source_run_ids),
                "n_rows": rows.height, "n_tokens": n_tokens, "content_hash": chash, "status": "draft",
                "created_at": utcnow(), "published_at": None, "status_reason": None,
                "publish_run_id": publish_run_id,
            }
            wh.load("curated.cur_datasets", pl.DataFrame([draft], schema=_DATASET_SCHEMA), con=con)
    if existing is not None:
        return next(v for v in list_versions(wh, dataset_name) if v.version == existing)

    with wh.connect() as con:
        results = _gate(con, enriched, dataset_name, version)
    record_results(wh, results, checker_run_id=publish_run_id)
    if on_results is not None:
        on_results(results)
    failed = [r for r in results if not r.passed]
    if failed:
        reason = "; ".join(
            f"{r.suite_name}.{o.expectation_type}({','.join(o.columns)})" for r in failed for o in r.blocking_failures
        )
        wh.execute(
            "update curated.cur_datasets set status = 'failed', status_reason = ? where dataset_name = ? and version = ?",
            [reason, dataset_name, version],
        )
        raise ContractViolation(failed)

    table_rows = rows.with_columns(dataset_name=pl.lit(dataset_name), version=pl.lit(version, pl.Int32))
    with wh.transaction() as con:
        wh.load("curated.cur_dataset_rows", table_rows, key=["dataset_name", "version", "trace_id"], con=con)
        con.execute(
            "update curated.cur_datasets set status = 'published', published_at = ? where dataset_name = ? and version = ?",
            [utcnow(), dataset_name, version],
        )
        for statement in create_views_sql(dataset_name, with_pairs=has_pairs(rows)):
            con.execute(statement)
    if wh.is_lake and wh.last_snapshot is not None:  # time travel: `potstill sql --at NAME@VERSION`
        record_snapshot(wh, dataset_name, version, wh.last_snapshot)
    published = next(v for v in list_versions(wh, dataset_name) if v.version == version)
    return DatasetVersion(**{**published.__dict__, "is_new": True})


def record_snapshot(wh, dataset_name: str, version: int, snapshot_id: int) -> None:
    """Remember the lake snapshot that published `dataset_name@version` (kept by lake maintenance)."""
    row = pl.DataFrame({"dataset_name": [dataset_name], "version": [version], "snapshot_id": [snapshot_id],
                        "recorded_at": [utcnow()]},
                       schema={"dataset_name": pl.String, "version": pl.Int32, "snapshot_id": pl.Int64,
                               "recorded_at": pl.Datetime("us")})
    wh.load("curated.cur_dataset_snapshots", row, key=["dataset_name", "version"], mode="replace")


def snapshot_of(wh, spec: str) -> tuple[DatasetVersion, int]:
    """(the published version `spec` names, the lake snapshot it was published in)."""
    if not wh.is_lake:
        raise PublishError(f"{wh.path} is a single DuckDB file: reading as of a dataset version needs a lake "
                           "(potstill migrate-warehouse copies it into one)")
    version = resolve_version(wh, spec)
    found = wh.run_file("dataset_snapshot", {"dataset_name": version.dataset_name, "version": version.version})
    if found.height == 0:
        raise PublishError(f"{version.dataset_name}@{version.version} has no recorded snapshot "
                           "(published before the warehouse was a lake)")
    return version, int(found["snapshot_id"][0])


_DATASET_SCHEMA = {
    "dataset_name": pl.String, "version": pl.Int32, "policy": pl.String, "params_json": pl.String,
    "config_fingerprint": pl.String, "source_run_ids": pl.List(pl.String), "n_rows": pl.Int64, "n_tokens": pl.Int64,
    "content_hash": pl.String, "status": pl.String, "created_at": pl.Datetime("us"),
    "published_at": pl.Datetime("us"), "status_reason": pl.String, "publish_run_id": pl.String,
}

__all__ = ["enrich_selection", "list_versions", "publish_dataset", "record_snapshot", "resolve_version", "snapshot_of",
           "verify_version"]
