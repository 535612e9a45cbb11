"""Ingest flow: stream a prompt or trace file into raw.raw_prompts / raw.raw_traces, rejections kept.

Trace files also bring the source's own verdicts (raw.raw_verifications, verifier `source:<column>`)
and token log-probs (raw.raw_token_logprobs); kind="logprobs" joins a separately released log-prob
file to traces imported earlier, by sample id.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.ingest.core import IngestBatch, IngestState, batched, ingest_batch, ingest_logprob_batch
from tasks.ingest.readers import DEFAULT_MAX_ROW_BYTES, HUB_PREFIX, detect_format, iter_records, parse_hub_spec
from tasks.ingest.rows import IngestConfig, sample_id_of
from warehouse import Warehouse
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

SHARD_ROWS = 5_000
KINDS = ("prompts", "traces", "logprobs")
LOGPROB_MAX_ROW_BYTES = 50_000_000
MAX_EXAMPLES = 5  # rejections shown as one line each (file:row: reason: detail naming the field)
VERDICT_KEY = ["trace_id", "verifier", "verifier_version", "input_hash"]


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
        new_verdicts = wh.load(
            "raw.raw_verifications",
            batch.verdicts.with_columns(stamp[0].alias("verified_at"), stamp[1].alias("run_id")),
            key=VERDICT_KEY, con=con,
        )
        new_logprobs = wh.load(
            "raw.raw_token_logprobs",
            batch.logprobs.with_columns(stamp[0].alias("created_at"), stamp[1].alias("run_id")),
            key=["trace_id", "model_id"], con=con,
        )
        record_rejections(wh, rejection_rows(run_id, "ingest", batch.rejections + batch.item_rejections), con=con)
    return {"new_prompts": new_prompts, "new_traces": new_traces, "new_verdicts": new_verdicts, "new_logprobs": new_logprobs}


def _tokenizer_decoder(name: str | None):
    """`decode(token_ids) -> (text, char_starts)` from a local tokenizer, or None."""
    if not name:
        return None
    from transformers import AutoTokenizer

    from tasks.generate.offsets import token_char_starts

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--tokenizer {name}: cannot load it ({str(exc).splitlines()[0][:200]})") from exc
    return lambda ids: token_char_starts(tokenizer, ids)


def _traces_by_sample(wh: Warehouse, records, cfg: IngestConfig, source: str | None) -> dict[str, list[dict]]:
    ids = sorted({i for r in records if (i := sample_id_of(r.row, cfg)) is not None})
    if not ids:
        return {}
    found = wh.run_file("ingest/traces_by_sample_id", {"ids": ids, "source": source})
    out: dict[str, list[dict]] = {}
    for row in found.iter_rows(named=True):
        out.setdefault(row["source_sample_id"], []).append(row)
    return out


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
    max_row_bytes: int | None = None,
    on_shard=None,
    shape: str = "auto",
    markers: str | None = None,
    verdict_fields: list[str] | tuple[str, ...] = (),
    logprob_model: str | None = None,
    tokenizer: str | None = None,
) -> dict:
    """Ingest one file, folder or `hf://` dataset; returns counts (read = accepted + rejected).

    kind: "prompts", "traces" (needs `model`), or "logprobs" (a released log-prob file joined to
    imported traces by sample id; `model` names the model the log-probs belong to).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if max_row_bytes is None:  # a log-prob row carries two numbers per token: 16k tokens are ~0.5 MB of JSON
        max_row_bytes = LOGPROB_MAX_ROW_BYTES if kind == "logprobs" else DEFAULT_MAX_ROW_BYTES
    hub = str(path).startswith(HUB_PREFIX)
    path = str(path) if hub else Path(path)
    fmt = "hub" if hub else fmt or detect_format(path)
    if kind == "traces" and not model:
        raise ValueError("ingesting traces needs --model NAME (the model that wrote them)")
    default_source = parse_hub_spec(path)[0].split("/")[1] if hub else (path.stem if path.is_file() else path.name)
    cfg = IngestConfig(
        source=source or default_source,
        domain=domain, split=split, mapping=tuple(sorted((mapping or {}).items())),
        max_row_bytes=max_row_bytes, model_id=model, shape=shape, markers=markers,
        verdict_fields=tuple(verdict_fields), logprob_model=logprob_model,
    )
    decode = _tokenizer_decoder(tokenizer)
    counts = {"read": 0, "accepted": 0, "rejected": 0, "new_prompts": 0, "new_traces": 0,
              "new_verdicts": 0, "new_logprobs": 0, "logprobs_unplaced": 0, "items_rejected": 0}
    reasons: dict[str, int] = {}
    examples: list[str] = []
    state = IngestState()
    with stage_run(Warehouse(warehouse), "ingest", cfg) as run:
        wh, run_id = run.wh, run.run_id
        run.n_in, run.n_out, run.n_rejected, run.stats = 0, 0, 0, {**counts, "reasons": reasons}
        for records in batched(iter_records(path, None if hub else fmt, max_row_bytes=max_row_bytes), SHARD_ROWS):
            if kind == "logprobs":
                batch = ingest_logprob_batch(records, cfg, state, _traces_by_sample(wh, records, cfg, source), decode)
            else:
                batch = ingest_batch(records, cfg, kind, state, decode)
            written = call_task(load_shard, wh.path, batch, run_id)
            counts["read"] += batch.n_read
            counts["accepted"] += batch.n_accepted
            counts["rejected"] += len(batch.rejections)
            counts["items_rejected"] += len(batch.item_rejections)
            for key in ("new_prompts", "new_traces", "new_verdicts", "new_logprobs"):
                counts[key] += written[key]
            counts["logprobs_unplaced"] += batch.logprobs["char_starts"].null_count()
            for ref, reason, detail, _ in batch.rejections + batch.item_rejections:
                reasons[reason] = reasons.get(reason, 0) + 1
                if len(examples) < MAX_EXAMPLES:
                    examples.append(f"{ref}: {reason}: {detail}")
            run.n_in, run.n_out, run.n_rejected = counts["read"], counts["accepted"], counts["rejected"]
            run.stats = {**counts, "reasons": reasons}
            if on_shard is not None:
                on_shard(batch.n_read)
    return {"run_id": run_id, "path": str(path), "format": fmt, "kind": kind, **counts, "reasons": reasons,
            "examples": examples}


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
    shape: str = "auto",
    markers: str | None = None,
    verdict_fields: list[str] | None = None,
    logprob_model: str | None = None,
) -> dict:
    """Ingest prompts (kind="prompts"), an existing trace dataset (kind="traces", needs model) or a
    released log-prob file (kind="logprobs")."""
    stats = run_ingest(path, kind=kind, warehouse=warehouse, source=source, model=model, domain=domain,
                       split=split, mapping=mapping, max_row_bytes=max_row_bytes, shape=shape, markers=markers,
                       verdict_fields=verdict_fields or (), logprob_model=logprob_model)
    get_run_logger().info("ingest %s: read %d, accepted %d (%d new prompts, %d new traces), rejected %d %s",
                          path, stats["read"], stats["accepted"], stats["new_prompts"], stats["new_traces"],
                          stats["rejected"], stats["reasons"])
    return stats
