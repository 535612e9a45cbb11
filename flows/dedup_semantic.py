"""The dedup stage's semantic step (recipe `dedup.semantic: {enabled: true, ...}`): warehouse I/O
around tasks/dedup/semantic.py.

Runs after exact + MinHash dedup and n-gram decontamination, in the same dedup run:
- prompts (and traces, when `levels` says so) get `raw.raw_dedup` rows with method 'semantic';
  items that only semantic dedup removes are rejected with reason `dup_semantic`;
- every benchmark is checked by embedding similarity: `raw.raw_contamination` rows with method
  'embedding'; prompts the n-gram method did not already flag are rejected with
  `contaminated_embedding`.
Embeddings are cached in `raw.raw_embeddings` per (text hash, model), one commit per shard, so a
re-run (or a crash followed by a re-run) embeds only texts it has not embedded before.
Without the semantic extra the step logs one line saying how to install it and does nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.dedup.decontam import load_benchmark
from tasks.dedup.exact import cluster_exact, text_hash
from tasks.dedup.semantic import (
    CONTAMINATION_REASON,
    REASON,
    Embedder,
    SemanticConfig,
    embed_cached,
    missing_extra,
    model_id,
    semantic_clusters,
    semantic_contamination,
    semantic_rows,
)
from warehouse import Warehouse
from warehouse.runs import record_rejections, rejection_rows, utcnow

QUERIES = Path(__file__).resolve().parent.parent / "warehouse" / "queries"
STAGE = "dedup"
CONTAMINATION_KEY = ["prompt_id", "benchmark_name", "benchmark_hash", "config_fingerprint"]
EMBEDDING_KEY = ["text_hash", "model_id"]


def _log():
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow run (plain call): fall back to the module logger
        return logging.getLogger("potstill.dedup")


def _query(wh: Warehouse, name: str, params: dict | None = None) -> pl.DataFrame:
    return wh.query((QUERIES / f"semantic_{name}.sql").read_text(), params)


class CachedEncoder:
    """Encodes through the warehouse cache; the model is loaded only when a text is missing from it."""

    def __init__(self, wh: Warehouse, cfg: SemanticConfig, run_id: str, shard_size: int = 4096) -> None:
        self.wh, self.cfg, self.run_id, self.shard_size = wh, cfg, run_id, shard_size
        self.model_id = model_id(cfg.model)
        self._embedder: Embedder | None = None
        self.n_encoded = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._embedder is None:
            self._embedder = Embedder(self.cfg)
            _log().info("semantic dedup: model %s on %s", self._embedder.model_id, self._embedder.device)
        return self._embedder.encode(texts)

    def _lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        frame = _query(self.wh, "embeddings", {"model_id": self.model_id, "hashes": hashes})
        return {h: np.asarray(v, dtype=np.float32) for h, v in zip(frame["text_hash"].to_list(), frame["embedding"].to_list())}

    def _store(self, hashes: list[str], vectors: np.ndarray) -> None:
        frame = pl.DataFrame({
            "text_hash": hashes,
            "model_id": self.model_id,
            "n_dims": vectors.shape[1],
            "embedding": pl.Series([v for v in vectors], dtype=pl.List(pl.Float32)),
            "created_at": utcnow(),
            "run_id": self.run_id,
        }).with_columns(pl.col("created_at").cast(pl.Datetime("us")), pl.col("n_dims").cast(pl.Int32))
        self.wh.load("raw.raw_embeddings", frame, key=EMBEDDING_KEY, mode="ignore")

    def embed(self, texts: Sequence[str | None]) -> np.ndarray:
        """Embeddings of `texts`, one cached shard (a Prefect task in a flow) at a time."""
        parts = []
        for lo in range(0, len(texts), self.shard_size):
            emb, n_new = call_task(embed_shard, self, list(texts[lo : lo + self.shard_size]))
            self.n_encoded += n_new
            parts.append(emb)
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


@task(name="dedup-semantic-embed", cache_policy=NO_CACHE)
def embed_shard(encoder: CachedEncoder, texts: list[str | None]) -> tuple[np.ndarray, int]:
    """Embed one shard: cached rows are read back, new ones encoded and committed to the cache."""
    return embed_cached(texts, encoder._encode, encoder._lookup, encoder._store)


def _semantic_kind(wh: Warehouse, kind: str, cfg: SemanticConfig, encoder: CachedEncoder, run_id: str, casefold: bool) -> dict:
    fingerprint = str(cfg)
    items = _query(wh, f"items_{kind}")
    judged = set(_query(wh, "judged", {"kind": kind, "fingerprint": fingerprint})["item_id"].to_list())
    pending = sum(1 for i in items["item_id"].to_list() if i not in judged)
    if not pending:
        _log().info("semantic dedup %s: nothing new under config %s", kind, fingerprint)
        return {"kind": kind, "n_pending": 0, "n_items": items.height, "n_written": 0, "n_removed": 0}
    hashed = items.with_columns(pl.Series("text_hash", [text_hash(t, casefold=casefold) for t in items["text"].to_list()],
                                          dtype=pl.String))
    exact = cluster_exact(hashed.drop("text", *(["group_key"] if kind == "prompt" else [])))
    reps = items.filter(pl.Series(exact["is_representative"].to_list()))
    texts = reps["text"].to_list()
    emb = encoder.embed(texts)
    result = semantic_clusters(reps["item_id"].to_list(), texts, emb, cfg, order_keys=reps["order_key"].to_list(),
                               groups=reps["group_key"].to_list() if kind == "trace" else None)
    rows = semantic_rows(exact, result.rows)
    group_of = dict(zip(items["item_id"].to_list(), items["group_key"].to_list()))
    stamped = rows.with_columns(
        pl.lit(kind).alias("item_kind"),
        pl.col("item_id").replace_strict(group_of, default=None, return_dtype=pl.String).alias("group_id"),
        pl.lit(fingerprint).alias("config_fingerprint"),
        pl.lit(utcnow()).cast(pl.Datetime("us")).alias("decided_at"),
        pl.lit(run_id).alias("run_id"),
    )
    current = _query(wh, "current", {"kind": kind})
    removed_before = set(current.filter(~pl.col("is_representative") & (pl.col("method") != "semantic"))["item_id"].to_list())
    if current.height:
        stamped = stamped.join(current, on=["item_id", "method", "cluster_id", "is_representative", "config_fingerprint"], how="anti")
    text_of = dict(zip(items["item_id"].to_list(), items["text"].to_list()))
    removed = rows.filter(~pl.col("is_representative") & ~pl.col("item_id").is_in(list(removed_before)))
    rejections = rejection_rows(run_id, STAGE, [
        (r["item_id"], REASON, (f"{kind} semantic duplicate of {r['cluster_id']} (cosine {r['similarity']:.3f}): "
                               f"{_clip(text_of[r['item_id']])!r} ~ {_clip(text_of[r['cluster_id']])!r}"), None)
        for r in removed.iter_rows(named=True)
    ])
    with wh.transaction() as con:
        written = wh.load("raw.raw_dedup", stamped, mode="append", con=con)
        record_rejections(wh, rejections, con=con)
    examples = [{"item_id": r["item_id"], "duplicate_of": r["cluster_id"], "cosine": round(r["similarity"], 3),
                 "text": _clip(text_of[r["item_id"]]), "kept_text": _clip(text_of[r["cluster_id"]])}
                for r in removed.head(5).iter_rows(named=True)]
    _log().info("semantic dedup %s: %d items, %d removed by semantic dedup alone (%s)", kind, items.height, removed.height,
             {k: v for k, v in result.stats.items() if k.startswith("n_")})
    return {"kind": kind, "n_pending": pending, "n_items": items.height, "n_written": written,
            "n_duplicates": int((~rows["is_representative"]).sum()), "n_removed": removed.height, "examples": examples,
            **{f"cluster_{k}": v for k, v in result.stats.items()}}


def _semantic_decontam(wh: Warehouse, specs: Sequence[str], cfg: SemanticConfig, encoder: CachedEncoder, run_id: str) -> dict:
    fingerprint = str(cfg)
    out: dict = {"benchmarks": {}, "n_checked": 0, "n_contaminated": 0, "n_removed": 0, "examples": []}
    for spec in specs:
        bench = load_benchmark(spec)
        pending = _query(wh, "decontam_pending", {"benchmark_name": bench.name, "benchmark_hash": bench.content_hash,
                                                   "fingerprint": fingerprint})
        if not pending.height:
            out["benchmarks"][bench.name] = {"checked": 0, "contaminated": 0}
            continue
        ids, texts = pending["prompt_id"].to_list(), pending["text"].to_list()
        hits = semantic_contamination(ids, texts, encoder.embed(texts), bench, encoder.embed([t for _, t in bench.items]), cfg)
        checks = (
            pending.select("prompt_id")
            .join(hits.drop("benchmark_name"), on="prompt_id", how="left")
            .with_columns(
                pl.col("benchmark_item_id").is_not_null().alias("is_contaminated"),
                pl.lit("embedding").alias("method"),
                pl.lit(bench.name).alias("benchmark_name"),
                pl.lit(bench.content_hash).alias("benchmark_hash"),
                pl.lit(fingerprint).alias("config_fingerprint"),
                pl.lit(utcnow()).cast(pl.Datetime("us")).alias("checked_at"),
                pl.lit(run_id).alias("run_id"),
            )
        )
        flagged_by_ngram = set(_query(wh, "ngram_contaminated", {"benchmark_name": bench.name})["prompt_id"].to_list())
        text_of = dict(zip(ids, texts))
        new = hits.filter(~pl.col("prompt_id").is_in(list(flagged_by_ngram)))
        rejections = rejection_rows(run_id, STAGE, [
            (r["prompt_id"], CONTAMINATION_REASON,
             (f"benchmark {bench.name}: item {r['benchmark_item_id']} (embedding, cosine {r['similarity']:.3f}): "
             f"{_clip(text_of[r['prompt_id']])!r} ~ {_clip(r['matched_ngram'])!r}"), None)
            for r in new.iter_rows(named=True)
        ])
        with wh.transaction() as con:
            wh.load("raw.raw_contamination", checks, key=CONTAMINATION_KEY, con=con)
            record_rejections(wh, rejections, con=con)
        out["examples"] += [{"prompt_id": r["prompt_id"], "benchmark_item_id": r["benchmark_item_id"], "cosine": r["similarity"],
                             "text": _clip(text_of[r["prompt_id"]]), "benchmark_text": _clip(r["matched_ngram"])}
                            for r in new.head(5).iter_rows(named=True)]
        _log().info("semantic decontamination %s: %d prompts checked, %d contaminated (%d not flagged by n-grams)",
                 bench.name, len(ids), hits.height, new.height)
        out["benchmarks"][bench.name] = {"checked": len(ids), "contaminated": hits.height, "removed": new.height}
        out["n_checked"] += len(ids)
        out["n_contaminated"] += hits.height
        out["n_removed"] += new.height
    return out


def _clip(text: str | None, n: int = 120) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def run_semantic(wh: Warehouse, cfg: SemanticConfig | Mapping | None, benchmarks: Sequence[str], run_id: str,
                 casefold: dict[str, bool] | None = None) -> dict:
    """Semantic dedup and decontamination of what the warehouse holds, inside the dedup run `run_id`.

    Returns stats; `n_removed` counts items this step alone rejected (the run's extra rejections).
    """
    if isinstance(cfg, Mapping):  # a plain call with the recipe's mapping (Prefect validates it into the dataclass)
        cfg = SemanticConfig(**cfg)
    if cfg is None or not cfg.enabled:
        return {"enabled": False, "n_removed": 0}
    problem = missing_extra()
    if problem:
        _log().warning("dedup: semantic step skipped: %s", problem)
        return {"enabled": True, "skipped": problem, "n_removed": 0}
    encoder = CachedEncoder(wh, cfg, run_id)
    stats: dict = {"enabled": True, "config_fingerprint": str(cfg), "model_id": encoder.model_id}
    for kind in cfg.levels:
        stats[kind] = _semantic_kind(wh, kind, cfg, encoder, run_id, (casefold or {}).get(kind, kind == "prompt"))
    stats["decontamination"] = _semantic_decontam(wh, benchmarks, cfg, encoder, run_id)
    stats["n_encoded"] = encoder.n_encoded
    stats["n_removed"] = sum(stats[k]["n_removed"] for k in cfg.levels) + stats["decontamination"]["n_removed"]
    return stats
