"""The ingestion core: records in, accepted prompt/trace frames and rejections out (no I/O).

Invariant: for every batch, accepted + rejected = records read. A row is accepted when it yields at
least one prompt or trace; parts of an accepted row that cannot be kept (one generation of several,
its token log-probs) are recorded as item rejections with their own source_ref (`file:line#generation[1]`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import polars as pl

from tasks.ingest.readers import RawRecord
from tasks.ingest.rows import (
    IngestConfig,
    ParsedRow,
    RowRejected,
    check_depth,
    parse_logprob_row,
    parse_prompt,
    parse_trace_row,
    sample_id_of,
)

PROMPT_SCHEMA = {
    "prompt_id": pl.String, "source": pl.String, "source_ref": pl.String, "domain": pl.String,
    "problem_text": pl.String, "reference_answer": pl.String, "tests_json": pl.String, "split": pl.String,
    "metadata_json": pl.String,
}
TRACE_SCHEMA = {
    "trace_id": pl.String, "prompt_id": pl.String, "model_id": pl.String, "origin": pl.String,
    "sample_index": pl.Int32, "completion_text": pl.String, "reasoning_text": pl.String, "answer_text": pl.String,
    "n_completion_tokens": pl.Int32, "finish_reason": pl.String, "is_truncated": pl.Boolean, "source_ref": pl.String,
    "source_sample_id": pl.String,
}
VERDICT_SCHEMA = {
    "trace_id": pl.String, "prompt_id": pl.String, "verifier": pl.String, "verifier_version": pl.String,
    "input_hash": pl.String, "verdict_status": pl.String, "verdict_reason": pl.String, "score": pl.Float64,
    "detail": pl.String,
}
LOGPROB_SCHEMA = {
    "trace_id": pl.String, "model_id": pl.String, "logprob_source": pl.String, "n_tokens": pl.Int32,
    "token_ids": pl.List(pl.Int32), "tokens": pl.List(pl.String), "logprobs": pl.List(pl.Float32),
    "char_starts": pl.List(pl.Int32), "top_k": pl.Int32,
}

Rejection = tuple[str, str, str, bytes | str | None]  # (source_ref, reason_code, detail, payload)


@dataclass
class IngestState:
    """What a run has seen so far (for in-file duplicates and sample indices)."""

    seen: dict[str, str] = field(default_factory=dict)  # key -> first source_ref
    next_sample: dict[str, int] = field(default_factory=dict)  # prompt_id -> next sample_index


@dataclass
class IngestBatch:
    prompts: pl.DataFrame
    traces: pl.DataFrame
    rejections: list[Rejection]  # whole rows
    n_read: int
    verdicts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=VERDICT_SCHEMA))
    logprobs: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LOGPROB_SCHEMA))
    item_rejections: list[Rejection] = field(default_factory=list)  # parts of accepted rows

    @property
    def n_accepted(self) -> int:
        return self.n_read - len(self.rejections)


def batched(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def ingest_batch(records: list[RawRecord], cfg: IngestConfig, kind: str, state: IngestState, decode=None) -> IngestBatch:
    """Parse one batch of records. `kind` is "prompts" or "traces"."""
    if kind not in ("prompts", "traces"):
        raise ValueError(f"kind must be prompts or traces, not {kind!r}")
    prompts: list[dict] = []
    traces: list[dict] = []
    verdicts: list[dict] = []
    logprobs: list[dict] = []
    rejections: list[Rejection] = []
    items: list[Rejection] = []
    for record in records:
        if record.row is None:
            rejections.append((record.source_ref, record.reason_code or "unreadable", record.detail or "", record.raw))
            continue
        try:
            if kind == "prompts":
                prompt = parse_prompt(record.row, cfg)
                check_depth(record.row)
            else:
                parsed = parse_trace_row(record.row, cfg, decode)
        except RowRejected as exc:
            rejections.append((record.source_ref, exc.reason_code, exc.detail, record.raw))
            continue
        except RecursionError:
            rejections.append((record.source_ref, "too_deep", "the row nests too deeply to read", record.raw))
            continue
        if kind == "prompts":
            first = state.seen.get(prompt["prompt_id"])
            if first is not None:
                rejections.append((record.source_ref, "duplicate", f"same content as {first}", record.raw))
                continue
            state.seen[prompt["prompt_id"]] = record.source_ref
            prompts.append({**prompt, "source_ref": record.source_ref})
            continue
        kept = _keep_traces(record, parsed, state, items)
        if not kept:
            first = state.seen.get(parsed.traces[0]["trace_id"])
            rejections.append((record.source_ref, "duplicate", f"same content as {first}", record.raw))
            continue
        items.extend((record.source_ref + suffix, reason, detail, record.raw) for suffix, reason, detail in parsed.item_rejections)
        prompts.append({**parsed.prompt, "source_ref": record.source_ref})
        traces.extend(kept)
        kept_ids = {t["trace_id"] for t in kept}
        verdicts.extend(v for v in parsed.verdicts if v["trace_id"] in kept_ids)
        logprobs.extend(lp for lp in parsed.logprobs if lp["trace_id"] in kept_ids)
    return IngestBatch(
        prompts=pl.DataFrame(prompts, schema=PROMPT_SCHEMA).unique("prompt_id", keep="first", maintain_order=True),
        traces=pl.DataFrame([{k: t[k] for k in TRACE_SCHEMA} for t in traces], schema=TRACE_SCHEMA),
        rejections=rejections,
        n_read=len(records),
        verdicts=pl.DataFrame(verdicts, schema=VERDICT_SCHEMA),
        logprobs=pl.DataFrame(logprobs, schema=LOGPROB_SCHEMA),
        item_rejections=items,
    )


def _keep_traces(record: RawRecord, parsed: ParsedRow, state: IngestState, items: list[Rejection]) -> list[dict]:
    """The row's traces not seen before, with sample indices; duplicates of earlier rows become item rejections."""
    prompt_id = parsed.prompt["prompt_id"]
    base = state.next_sample.get(prompt_id, 0)
    fresh = [t for t in parsed.traces if t["trace_id"] not in state.seen]
    if not fresh:
        return []
    kept = []
    for trace in parsed.traces:
        ref = record.source_ref + (f"#generation[{trace['_position']}]" if trace.get("_position") is not None else "")
        first = state.seen.get(trace["trace_id"])
        if first is not None:
            items.append((ref, "duplicate", f"same content as {first}", record.raw))
            continue
        state.seen[trace["trace_id"]] = ref
        if trace.get("_position") is not None:
            trace["sample_index"] = base + trace["_position"]
        elif trace["sample_index"] is None:
            trace["sample_index"] = state.next_sample.get(prompt_id, 0)
        state.next_sample[prompt_id] = max(state.next_sample.get(prompt_id, 0), trace["sample_index"] + 1)
        kept.append({**trace, "source_ref": ref})
    return kept


def ingest_logprob_batch(
    records: list[RawRecord], cfg: IngestConfig, state: IngestState, traces_by_sample: dict[str, list[dict]], decode=None
) -> IngestBatch:
    """Parse one batch of a released log-prob file; `traces_by_sample` maps sample ids to their traces."""
    logprobs: list[dict] = []
    rejections: list[Rejection] = []
    for record in records:
        if record.row is None:
            rejections.append((record.source_ref, record.reason_code or "unreadable", record.detail or "", record.raw))
            continue
        try:
            sample_id = sample_id_of(record.row, cfg)
            row = parse_logprob_row(record.row, cfg, traces_by_sample.get(sample_id or "", []), decode)
        except RowRejected as exc:
            rejections.append((record.source_ref, exc.reason_code, exc.detail, record.raw))
            continue
        key = f"logprobs:{row['trace_id']}:{row['model_id']}"
        first = state.seen.get(key)
        if first is not None:
            rejections.append((record.source_ref, "duplicate", f"same trace and model as {first}", record.raw))
            continue
        state.seen[key] = record.source_ref
        logprobs.append(row)
    return IngestBatch(
        prompts=pl.DataFrame(schema=PROMPT_SCHEMA), traces=pl.DataFrame(schema=TRACE_SCHEMA), rejections=rejections,
        n_read=len(records), logprobs=pl.DataFrame(logprobs, schema=LOGPROB_SCHEMA),
    )
