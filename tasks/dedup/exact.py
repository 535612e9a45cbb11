"""Exact duplicates: hash of the normalised text (NFKC, whitespace; case too for prompts).

>>> df = pl.DataFrame({"item_id": ["b", "a"], "text": ["Compute 7 + 5.", "compute  7 +\\u00a05."]})
>>> exact_duplicates(df, casefold=True)["cluster_id"].to_list()
['a', 'a']
"""

from __future__ import annotations

import hashlib

import polars as pl

from tasks.common.text import normalize_text


def text_hash(text: str | None, *, casefold: bool) -> str:
    """sha256 (32 hex) of the normalised text; the exact-duplicate key.

    >>> text_hash("A  b", casefold=True) == text_hash("a b", casefold=True)
    True
    """
    return hashlib.sha256(normalize_text(text or "", casefold=casefold).encode()).hexdigest()[:32]


def with_text_hash(items: pl.DataFrame, *, casefold: bool) -> pl.DataFrame:
    """`items` with a `text_hash` column computed from `text` (the text column is kept)."""
    hashes = [text_hash(t, casefold=casefold) for t in items["text"].to_list()]
    return items.with_columns(pl.Series("text_hash", hashes, dtype=pl.String))


def cluster_exact(hashed: pl.DataFrame) -> pl.DataFrame:
    """Clusters of equal `text_hash` (within `group_key` when present).

    Args:
        hashed: item_id, text_hash, optional order_key (first ingested first) and group_key.
    Returns:
        item_id, text_hash, cluster_id (the representative's id), is_representative, similarity
        (1.0 for members of a cluster of two or more, null for singletons), in the input's order.
    """
    frame = hashed.with_row_index("_pos")
    if "order_key" not in frame.columns:
        frame = frame.with_columns(pl.lit(None).alias("order_key"))
    part = ["group_key", "text_hash"] if "group_key" in frame.columns else ["text_hash"]
    ranked = frame.sort(["order_key", "item_id"], nulls_last=True).with_columns(
        pl.col("item_id").first().over(part).alias("cluster_id"),
        pl.len().over(part).alias("_size"),
    )
    return (
        ranked.with_columns(
            (pl.col("cluster_id") == pl.col("item_id")).alias("is_representative"),
            pl.when(pl.col("_size") > 1).then(pl.lit(1.0)).otherwise(pl.lit(None, dtype=pl.Float64)).alias("similarity"),
        )
        .sort("_pos")
        .select("item_id", "text_hash", "cluster_id", "is_representative", "similarity")
    )


def exact_duplicates(items: pl.DataFrame, *, casefold: bool) -> pl.DataFrame:
    """Exact-duplicate clusters of `items(item_id, text[, order_key][, group_key])`."""
    keep = [c for c in ("item_id", "text", "order_key", "group_key") if c in items.columns]
    return cluster_exact(with_text_hash(items.select(keep), casefold=casefold).drop("text"))
