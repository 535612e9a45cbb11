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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tasks.common.ids import config_fingerprint
from tasks.dedup.exact import cluster_exact, text_hash
from tasks.dedup.minhash import DedupError, MinhashConfig, NearDupIndex, NearDupResult, SignedShard, sign_shard

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


@dataclass(frozen=True)
class SignedTexts:
    """One shard of items, signed: ids, exact-text hashes and MinHash signatures (no texts kept)."""

    ids: list[str]
    hashes: list[str]
    signed: SignedShard


def sign_texts(ids: Sequence[str], texts: Sequence[str | None], cfg: DedupConfig, kind: str) -> SignedTexts:
    """Exact-text hashes and MinHash signatures of one shard of `kind` ('prompt' | 'trace')."""
    return SignedTexts(list(ids), [text_hash(t, casefold=cfg.casefold(kind)) for t in texts],
                       sign_shard(list(texts), cfg.near(kind)))


def cluster_signed(
    meta: pl.DataFrame,
    shards: Sequence[SignedTexts],
    cfg: DedupConfig,
    kind: str,
    resolve: Callable[[NearDupIndex], NearDupResult],
) -> DedupResult:
    """Exact clusters, then near clusters of the exact representatives, as rows of `raw.raw_dedup`.

    Args:
        meta: item_id, order_key, group_key, one row per item, in the order of the shards' ids.
        shards: the items signed by `sign_texts` (the texts themselves are not needed here).
        resolve: verifies the index's candidate pairs and clusters them; it fetches texts, e.g.
            `lambda index: index.resolve(fetch_texts)`.
    """
    if kind not in ("prompt", "trace"):
        raise DedupError(f"dedup: kind must be 'prompt' or 'trace', got {kind!r}")
    if kind == "trace" and cfg.trace_scope == "global":
        meta = meta.with_columns(pl.lit(None, dtype=pl.String).alias("group_key"))
    hashed = meta.with_columns(pl.Series("text_hash", [h for s in shards for h in s.hashes], dtype=pl.String))
    if kind == "prompt":
        hashed = hashed.drop("group_key")
    exact = cluster_exact(hashed)
    is_rep = exact["is_representative"].to_numpy()
    orders, groups = meta["order_key"].to_list(), meta["group_key"].to_list()
    index = NearDupIndex(cfg.near(kind))
    start = 0
    for shard in shards:
        stop = start + len(shard.ids)
        keep = np.flatnonzero(is_rep[start:stop])
        index.add_signed(
            [shard.ids[k] for k in keep],
            SignedShard(shard.signed.sigs[keep], [shard.signed.empty[k] for k in keep],
                        [shard.signed.formulas[k] for k in keep]),
            [orders[start + k] for k in keep],
            [groups[start + k] for k in keep],
        )
        start = stop
    near = resolve(index)
    rows = combine(exact, near.rows)
    return DedupResult(rows, {**summarize(rows), "near": near.stats})


def dedup_items(items: pl.DataFrame, cfg: DedupConfig, kind: str, *, shard_size: int = 10_000) -> DedupResult:
    """In-memory dedup of `items(item_id, text[, order_key][, group_key])` of one kind ('prompt' | 'trace')."""
    for col in ("item_id", "text"):
        if col not in items.columns:
            raise DedupError(f"dedup_items: input has no column {col!r} (columns: {items.columns})")
    meta = items.select(
        "item_id",
        pl.col("order_key") if "order_key" in items.columns else pl.lit(None).alias("order_key"),
        pl.col("group_key").cast(pl.String) if "group_key" in items.columns else pl.lit(None, dtype=pl.String).alias("group_key"),
    )
    ids, texts = items["item_id"].to_list(), items["text"].to_list()
    shards = [sign_texts(ids[i : i + shard_size], texts[i : i + shard_size], cfg, kind) for i in range(0, len(ids), shard_size)]
    lookup = dict(zip(ids, texts))
    return cluster_signed(meta, shards, cfg, kind, lambda index: index.resolve(lambda want: {i: lookup[i] for i in want}))
