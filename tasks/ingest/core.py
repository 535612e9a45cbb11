"""The ingestion core: records in, accepted prompt/trace frames and rejections out (no I/O).

Invariant: for every batch, accepted + rejected = records read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

import polars as pl

from tasks.ingest.readers import RawRecord
from tasks.ingest.rows import IngestConfig, RowRejected, parse_prompt, parse_trace

PROMPT_SCHEMA = {
    "prompt_id": pl.String, "source": pl.String, "source_ref": pl.String, "domain": pl.String,
    "problem_text": pl.String, "reference_answer": pl.String, "tests_json": pl.String, "split": pl.String,
    "metadata_json": pl.String,
}
TRACE_SCHEMA = {
    "trace_id": pl.String, "prompt_id": pl.String, "model_id": pl.String, "origin": pl.String,
    "sample_index": pl.Int32, "completion_text": pl.String, "reasoning_text": pl.String, "answer_text": pl.String,
    "n_completion_tokens": pl.Int32, "finish_reason": pl.String, "is_truncated": pl.Boolean, "source_ref": pl.String,
}


@dataclass
class IngestState:
    """What a run has seen so far (for in-file duplicates and sample indices)."""

    seen: dict[str, str] = field(default_factory=dict)  # key -> first source_ref
    next_sample: dict[str, int] = field(default_factory=dict)  # prompt_id -> next sample_index


@dataclass
class IngestBatch:
    prompts: pl.DataFrame
    traces: pl.DataFrame
    rejections: list[tuple[str, str, str, bytes | str | None]]  # (source_ref, reason_code, detail, payload)
    n_read: int

    @property
    def n_accepted(self) -> int:
        return self.n_read - len(self.rejections)


def batched(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def ingest_batch(records: list[RawRecord], cfg: IngestConfig, kind: str, state: IngestState) -> IngestBatch:
    """Parse one batch of records. `kind` is "prompts" or "traces"."""
    if kind not in ("prompts", "traces"):
        raise ValueError(f"kind must be prompts or traces, not {kind!r}")
    prompts: list[dict] = []
    traces: list[dict] = []
    rejections: list[tuple[str, str, str, bytes | str | None]] = []
    for record in records:
        if record.row is None:
            rejections.append((record.source_ref, record.reason_code or "unreadable", record.detail or "", record.raw))
            continue
        try:
            if kind == "prompts":
                prompt = parse_prompt(record.row, cfg)
                key, trace = prompt["prompt_id"], None
            else:
                prompt, trace = parse_trace(record.row, cfg)
                key = trace["trace_id"]
        except RowRejected as exc:
            rejections.append((record.source_ref, exc.reason_code, exc.detail, record.raw))
            continue
        first = state.seen.get(key)
        if first is not None:
            rejections.append((record.source_ref, "duplicate", f"same content as {first}", record.raw))
            continue
        state.seen[key] = record.source_ref
        prompt["source_ref"] = record.source_ref
        prompts.append(prompt)
        if trace is not None:
            if trace["sample_index"] is None:
                trace["sample_index"] = state.next_sample.get(trace["prompt_id"], 0)
            state.next_sample[trace["prompt_id"]] = max(state.next_sample.get(trace["prompt_id"], 0), trace["sample_index"] + 1)
            trace["source_ref"] = record.source_ref
            traces.append(trace)
    return IngestBatch(
        prompts=pl.DataFrame(prompts, schema=PROMPT_SCHEMA).unique("prompt_id", keep="first", maintain_order=True),
        traces=pl.DataFrame(traces, schema=TRACE_SCHEMA),
        rejections=rejections,
        n_read=len(records),
    )
