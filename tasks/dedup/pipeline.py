"""Exact then near-duplicate dedup of one item kind, as rows of `raw.raw_dedup`.

Exact clusters come first; only their representatives enter the near-duplicate index, and an
exact duplicate inherits the near cluster of its representative. An item is kept when it is the
representative under every method.

>>> items = pl.DataFrame({"item_id": ["a", "b", "c"], "text": ["Compute 7 + 5.", "compute 7 + 5.", "Work out 7+5."]})
>>> rows = dedup_items(items, DedupConfig(), "prompt").rows
>>> rows.filter(pl.col("method") == "near")["cluster_id"].to_list()
['a', 'a', 'a']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.dedup.exact import exact_duplicates
from tasks.dedup.minhash import DedupError, MinhashConfig, NearDupResult, find_near_duplicates

ROW_SCHEMA = {
    "item_id": pl.String,
    "method": pl.String,
    "cluster_id": pl.String,
    "is_representative": pl.Boolean,
    "similarity": pl.Float64,
    "text_hash": pl.String,
}
REASONS = {"exact": "dup_exact", "near": "dup_near"}


@dataclass(frozen=True)
class DedupConfig:
    """Dedup knobs for prompts and traces; `str(cfg)` is the fingerprint stored with every row."""

    prompt: MinhashConfig = field(
        default_factory=lambda: MinhashConfig(formula_match=True),
        metadata={"help": "near-duplicate config for prompts (formula identity on)"},
    )
    trace: MinhashConfig = field(default_factory=MinhashConfig, metadata={"help": "near-duplicate config for traces"})
    prompt_casefold: bool = field(default=True, metadata={"help": "exact prompt hashes ignore case (issue: case for prompts)"})
    trace_scope: str = field(
        default="prompt",
        metadata={"help": "'prompt': traces are duplicates only of traces of the same prompt; 'global': of any trace"},
    )

    def __post_init__(self) -> None:
        if self.trace_scope not in ("prompt", "global"):
            raise DedupError(f"DedupConfig.trace_scope must be 'prompt' or 'global', got {self.trace_scope!r}")

    def __str__(self) -> str:
        return f"dedup-{config_fingerprint(self)}"

    def near(self, kind: str) -> MinhashConfig:
        return self.prompt if kind == "prompt" else self.trace

    def casefold(self, kind: str) -> bool:
        return self.prompt_casefold if kind == "prompt" else False


@dataclass(frozen=True)
class DedupResult:
    rows: pl.DataFrame  # ROW_SCHEMA, two rows (exact, near) per item
    stats: dict


def combine(exact: pl.DataFrame, near: pl.DataFrame) -> pl.DataFrame:
    """Rows for both methods from exact clusters and near clusters of the exact representatives."""
    exact_rows = exact.select(
        "item_id", pl.lit("exact").alias("method"), "cluster_id", "is_representative", "similarity", "text_hash"
    )
    near_of_rep = near.select(
        pl.col("item_id").alias("exact_rep"),
        pl.col("cluster_id").alias("near_cluster"),
        pl.col("is_representative").alias("near_rep"),
        pl.col("similarity").alias("near_sim"),
    )
    joined = exact.select("item_id", "cluster_id", "is_representative", "text_hash").join(
        near_of_rep, left_on="cluster_id", right_on="exact_rep", how="left", maintain_order="left"
    )
    if joined["near_cluster"].null_count():
        raise DedupError("combine: an exact representative has no near-duplicate row")
    near_rows = joined.select(
        "item_id",
        pl.lit("near").alias("method"),
        pl.col("near_cluster").alias("cluster_id"),
        (pl.col("is_representative") & pl.col("near_rep")).alias("is_representative"),
        pl.when(pl.col("is_representative")).then(pl.col("near_sim")).otherwise(pl.lit(1.0)).alias("similarity"),
        "text_hash",
    )
    return pl.concat([exact_rows, near_rows]).cast(ROW_SCHEMA)


def summarize(rows: pl.DataFrame) -> dict:
    """Counts of duplicates per method and of items kept (representative under every method)."""
    dup = rows.filter(~pl.col("is_representative"))
    kept = rows.group_by("item_id").agg(pl.col("is_representative").all().alias("kept"))
    return {
        "n_items": kept.height,
        "n_kept": int(kept["kept"].sum()),
        "n_dup_exact": int((dup["method"] == "exact").sum()),
        "n_dup_near_only": int(dup.filter(pl.col("method") == "near")["item_id"].is_in(dup.filter(pl.col("method") == "exact")["item_id"].implode()).not_().sum()),
    }


def dedup_items(items: pl.DataFrame, cfg: DedupConfig, kind: str, *, shard_size: int = 10_000) -> DedupResult:
    """In-memory dedup of `items(item_id, text[, order_key][, group_key])` of one kind ('prompt' | 'trace')."""
    if kind not in ("prompt", "trace"):
        raise DedupError(f"dedup_items: kind must be 'prompt' or 'trace', got {kind!r}")
    if kind == "trace" and cfg.trace_scope == "global" and "group_key" in items.columns:
        items = items.drop("group_key")
    exact = exact_duplicates(items, casefold=cfg.casefold(kind))
    reps = items.join(exact.filter(pl.col("is_representative")).select("item_id"), on="item_id", how="semi", maintain_order="left")
    near: NearDupResult = find_near_duplicates(reps, cfg.near(kind), shard_size=shard_size)
    rows = combine(exact, near.rows)
    return DedupResult(rows, {**summarize(rows), "near": near.stats})
