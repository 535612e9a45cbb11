"""Ingest flow: stream a prompt or trace file into raw.raw_prompts / raw.raw_traces, rejections kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.ingest.core import IngestBatch, IngestState, batched, ingest_batch
from tasks.ingest.readers import DEFAULT_MAX_ROW_BYTES, detect_format, iter_records
from tasks.ingest.rows import IngestConfig
from warehouse import Warehouse
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

SHARD_ROWS = 5_000


@task(name="ingest-shard", cache_policy=NO_CACHE)
def load_shard(warehouse: str, batch: IngestBatch, run_id: str) -> dict[str, int]:
    """Commit one shard's prompts, traces and rejections in one transaction."""
    wh = Warehouse(warehouse)
    now = utcnow()
    stamp = [pl.lit(now).cast(pl.Datetime("us")), pl.lit(run_id)]
    with wh.transaction() as con:
        new_prompts = wh.load(
            "raw.raw_prompts",
            batch.prompts.with_columns(stamp[0].alias("ingested_at"), stamp[1].alias("run_id")),
            key=["prompt_id"], con=con,
        )
        new_traces = wh.load(
            "raw.raw_traces",
            batch.traces.with_columns(stamp[0].alias("created_at"), stamp[1].alias("run_id")),
            key=["trace_id"], con=con,
        )
        record_rejections(wh, rejection_rows(run_id, "ingest", batch.rejections), con=con)
    return {"new_prompts": new_prompts, "new_traces": new_traces}


def run_ingest(
    path: str | Path,
    *,
    kind: str = "prompts",
    warehouse: str | None = None,
    source: str | None = None,
    model: str | None = None,
    domain: str | None = None,
    split: str = "train",
    mapping: dict[str, str] | None = None,
    fmt: str | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    on_shard=None,
) -> dict:
    """Ingest one file or datasets folder; returns counts (read = accepted + rejected)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if kind == "traces" and not model:
        raise ValueError("ingesting traces needs --model NAME (the model that wrote them)")
    cfg = IngestConfig(
        source=source or (path.stem if path.is_file() else path.name),
        domain=domain, split=split, mapping=tuple(sorted((mapping or {}).items())),
        max_row_bytes=max_row_bytes, model_id=model,
    )
    counts = {"read": 0, "accepted": 0, "rejected": 0, "new_prompts": 0, "new_traces": 0}
    state = IngestState()
    with stage_run(Warehouse(warehouse), "ingest", cfg) as run:
        run.n_in, run.n_out, run.n_rejected, run.stats = 0, 0, 0, counts
        for records in batched(iter_records(path, fmt, max_row_bytes=max_row_bytes), SHARD_ROWS):
            batch = ingest_batch(records, cfg, kind, state)
            written = call_task(load_shard, run.wh.path, batch, run.run_id)
            run.count(Counter(reason for _, reason, _, _ in batch.rejections))
            counts["read"] += batch.n_read
            counts["accepted"] += batch.n_accepted
            counts["rejected"] += len(batch.rejections)
            counts["new_prompts"] += written["new_prompts"]
            counts["new_traces"] += written["new_traces"]
            run.n_in, run.n_out, run.n_rejected = counts["read"], counts["accepted"], counts["rejected"]
            if on_shard is not None:
                on_shard(batch.n_read)
        reasons = dict(sorted(run.reasons.items()))
        run.stats = {**counts, "reasons": reasons}
    return {"run_id": run.run_id, "path": str(path), "format": fmt, "kind": kind, **counts, "reasons": reasons}


@flow(name="ingest", flow_run_name="ingest-{kind}")
def ingest_flow(
    path: str,
    kind: str = "prompts",
    warehouse: str | None = None,
    source: str | None = None,
    model: str | None = None,
    domain: str | None = None,
    split: str = "train",
    mapping: dict[str, str] | None = None,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
) -> dict:
    """Ingest prompts (kind="prompts") or an existing trace dataset (kind="traces", needs model)."""
    stats = run_ingest(path, kind=kind, warehouse=warehouse, source=source, model=model, domain=domain,
                       split=split, mapping=mapping, max_row_bytes=max_row_bytes)
    get_run_logger().info("ingest %s: read %d, accepted %d (%d new prompts, %d new traces), rejected %d %s",
                          path, stats["read"], stats["accepted"], stats["new_prompts"], stats["new_traces"],
                          stats["rejected"], stats["reasons"])
    return stats
