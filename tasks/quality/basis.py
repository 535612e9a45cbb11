"""Basis hashes: what a score, a flag or a prompt statistic was computed from, so a re-run
recomputes exactly the rows whose inputs changed (the hash is part of each row's key).

>>> scores = pl.DataFrame({"trace_id": ["t1", "t1"], "metric": ["a", "b"], "score": [1.0, 2.0]})
>>> score_basis(scores, "default-1").columns
['trace_id', 'basis_hash']
"""

from __future__ import annotations

import polars as pl

from tasks.common.ids import stable_hash


def _hashed(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("_set").map_elements(lambda s: stable_hash(label, s), return_dtype=pl.String).alias("basis_hash")
    ).drop("_set")


def score_basis(scores: pl.DataFrame, fingerprint: str) -> pl.DataFrame:
    """(trace_id, basis_hash) over each trace's scores (trace_id, metric, score, sorted by trace and metric)
    under a filter config `fingerprint`."""
    per_trace = scores.group_by("trace_id", maintain_order=True).agg(
        pl.format("{}={}", pl.col("metric"), pl.col("score")).str.join(";").alias("_set")
    )
    return _hashed(per_trace, fingerprint)


def length_basis(lengths: pl.DataFrame) -> pl.DataFrame:
    """(prompt_id, basis_hash) over the set of (trace_id, completion_tokens) of each prompt."""
    per_prompt = lengths.group_by("prompt_id", maintain_order=True).agg(
        pl.format("{}:{}", pl.col("trace_id"), pl.col("completion_tokens")).str.join(",").alias("_set")
    )
    return _hashed(per_prompt, "lengths")


def verdict_basis(traces: pl.DataFrame, verdicts: pl.DataFrame) -> pl.DataFrame:
    """(prompt_id, model_id, basis_hash) over every trace's verdicts, per prompt and model."""
    per_group = (
        traces.join(verdicts, on="trace_id", how="left")
        .sort("trace_id", "verifier", nulls_last=True)
        .group_by("prompt_id", "model_id", maintain_order=True)
        .agg(pl.format("{}:{}:{}:{}", "trace_id", "verifier", "verdict_status", "score").str.join(",").alias("_set"))
    )
    return _hashed(per_group, "verdicts")
