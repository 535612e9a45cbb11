"""Dedup flow: exact and near-duplicate clusters of prompts and traces, then benchmark decontamination.

Reads `staging.stg_prompts` / `staging.stg_traces`; writes `raw.raw_dedup`, `raw.raw_contamination`
and `raw.raw_rejections` (reasons `dup_exact`, `dup_near`, `contaminated`). Texts are read and
signed in shards (one Prefect task each); only signatures are held for the LSH step, and texts
are fetched again in batches for the candidate pairs. A re-run with nothing new does nothing;
with new items it re-clusters and appends only assignments that changed. Decontamination checks
each prompt once per benchmark version and config, one transaction per shard.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from flows.dedup_semantic import run_semantic
from tasks.dedup.decontam import BenchmarkIndex, DecontamConfig, find_contamination, load_benchmark
from tasks.dedup.minhash import MinhashConfig, NearDupIndex, NearDupResult
from tasks.dedup.pipeline import REASONS, DedupConfig, SignedTexts, cluster_signed, sign_texts
from tasks.dedup.semantic import SemanticConfig
from warehouse import Warehouse, one_connection
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

STAGE = "dedup"
CONTAMINATION_KEY = ["prompt_id", "benchmark_name", "benchmark_hash", "config_fingerprint"]
KINDS = ("prompt", "trace")


def _log():
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow run (plain call): fall back to the module logger
        import logging

        return logging.getLogger("potstill.dedup")


def fetch_texts(wh: Warehouse, kind: str, ids: Sequence[str]) -> dict[str, str]:
    """{item_id: text} for the ids asked."""
    frame = wh.run_file(f"dedup/texts_{kind}", {"ids": list(ids)})
    return dict(zip(frame["item_id"].to_list(), frame["text"].to_list()))


@task(name="dedup-sign-shard", cache_policy=NO_CACHE)
@one_connection
def sign_task(warehouse: str, kind: str, ids: list[str], cfg: DedupConfig) -> SignedTexts:
    """Read one shard of texts; return their exact-text hashes and MinHash signatures."""
    texts = fetch_texts(Warehouse(warehouse), kind, ids)
    return sign_texts(ids, [texts[i] for i in ids], cfg, kind)


@task(name="dedup-resolve", cache_policy=NO_CACHE)
@one_connection
def resolve_task(warehouse: str, kind: str, index: NearDupIndex) -> NearDupResult:
    """LSH candidates, exact-Jaccard verification (texts fetched in batches), union-find clusters."""
    wh = Warehouse(warehouse)
    return index.resolve(lambda ids: fetch_texts(wh, kind, ids))


@task(name="decontam-shard", cache_policy=NO_CACHE)
@one_connection
def decontam_task(warehouse: str, run_id: str, ids: list[str], index: BenchmarkIndex, fingerprint: str) -> dict:
    """Check one shard of prompts against one benchmark; commit every check and its rejections together."""
    wh = Warehouse(warehouse)
    texts = fetch_texts(wh, "prompt", ids)
    prompts = pl.DataFrame({"prompt_id": ids, "text": [texts[i] for i in ids]})
    hits = find_contamination(prompts, [index], index.cfg)
    checks = (
        prompts.select("prompt_id")
        .join(hits.drop("benchmark_name"), on="prompt_id", how="left")
        .with_columns(
            pl.col("benchmark_item_id").is_not_null().alias("is_contaminated"),
            pl.lit(index.benchmark.name).alias("benchmark_name"),
            pl.lit(index.benchmark.content_hash).alias("benchmark_hash"),
            pl.lit(fingerprint).alias("config_fingerprint"),
            pl.lit(utcnow()).cast(pl.Datetime("us")).alias("checked_at"),
            pl.lit(run_id).alias("run_id"),
        )
    )
    rejections = rejection_rows(
        run_id,
        STAGE,
        [
            (
                r["prompt_id"],
                "contaminated",
                f"benchmark {index.benchmark.name}: item {r['benchmark_item_id']} ({r['match_kind']}: {r['matched_ngram']!r})",
                None,
            )
            for r in hits.iter_rows(named=True)
        ],
    )
    with wh.transaction() as con:
        wh.load("raw.raw_contamination", checks, key=CONTAMINATION_KEY, con=con)
        record_rejections(wh, rejections, con=con)
    return {"checked": prompts.height, "contaminated": hits.height}


def _dedup_kind(wh: Warehouse, kind: str, cfg: DedupConfig, run_id: str, shard_size: int) -> dict:
    log = _log()
    fingerprint = str(cfg)
    pending = wh.scalar_file(f"dedup/pending_{kind}", {"fingerprint": fingerprint})
    if not pending:
        log.info("dedup %s: nothing new under config %s", kind, fingerprint)
        return {"kind": kind, "n_pending": 0, "n_items": 0, "n_written": 0, "n_duplicates": 0}
    meta = wh.run_file(f"dedup/items_{kind}")
    ids = meta["item_id"].to_list()
    shards = [call_task(sign_task, wh.path, kind, ids[i : i + shard_size], cfg) for i in range(0, len(ids), shard_size)]
    result = cluster_signed(meta, shards, cfg, kind, lambda index: call_task(resolve_task, wh.path, kind, index))
    rows, near_stats = result.rows, result.stats["near"]
    global_scope = kind == "trace" and cfg.trace_scope == "global"  # then no trace has a group
    group_of = dict(zip(ids, [None] * len(ids) if global_scope else meta["group_key"].to_list()))
    stamped = rows.with_columns(
        pl.lit(kind).alias("item_kind"),
        pl.col("item_id").replace_strict(group_of, default=None, return_dtype=pl.String).alias("group_id"),
        pl.lit(fingerprint).alias("config_fingerprint"),
        pl.lit(utcnow()).cast(pl.Datetime("us")).alias("decided_at"),
        pl.lit(run_id).alias("run_id"),
    )
    dups = rows.filter(~pl.col("is_representative"))
    rejections = rejection_rows(
        run_id,
        STAGE,
        [
            (r["item_id"], REASONS[r["method"]], f"{kind} {r['method']} duplicate of {r['cluster_id']} (similarity {r['similarity']})", None)
            for r in dups.iter_rows(named=True)
        ],
    )
    # append only assignments that differ from the current one (an item may move between clusters and back)
    current = wh.run_file("dedup/current_assignments", {"kind": kind})
    if current.height:
        stamped = stamped.join(current, on=["item_id", "method", "cluster_id", "is_representative", "config_fingerprint"], how="anti")
    with wh.transaction() as con:
        written = wh.load("raw.raw_dedup", stamped, mode="append", con=con)
        record_rejections(wh, rejections, con=con)
    summary = {k: v for k, v in result.stats.items() if k != "near"}
    log.info("dedup %s: %s items, %s kept, near %s", kind, summary["n_items"], summary["n_kept"], near_stats)
    return {"kind": kind, "n_pending": int(pending), "n_written": written, "n_duplicates": summary["n_items"] - summary["n_kept"],
            **summary, "near": near_stats}


def _decontaminate(wh: Warehouse, specs: Sequence[str], cfg: DecontamConfig, run_id: str, shard_size: int) -> dict:
    log = _log()
    fingerprint = str(cfg)
    out: dict = {"benchmarks": {}, "n_checked": 0, "n_contaminated": 0}
    for spec in specs:
        index = BenchmarkIndex(load_benchmark(spec), cfg)
        bench = index.benchmark
        ids = wh.run_file("dedup/pending_decontam", {"benchmark_name": bench.name, "benchmark_hash": bench.content_hash,
                                                      "fingerprint": fingerprint})["prompt_id"].to_list()
        checked = contaminated = 0
        for i in range(0, len(ids), shard_size):
            part = call_task(decontam_task, wh.path, run_id, ids[i : i + shard_size], index, fingerprint)
            checked += part["checked"]
            contaminated += part["contaminated"]
        log.info("decontaminate %s (%d items, %s): %d prompts checked, %d contaminated", bench.name, len(bench.items), bench.content_hash, checked, contaminated)
        out["benchmarks"][bench.name] = {"items": len(bench.items), "benchmark_hash": bench.content_hash, "checked": checked,
                                         "contaminated": contaminated, "template_ngrams_ignored": index.n_template_ngrams}
        out["n_checked"] += checked
        out["n_contaminated"] += contaminated
    return out


def run_dedup(
    *,
    warehouse: str | None = None,
    benchmarks: Sequence[str] | None = None,
    levels: Sequence[str] = ("prompt", "trace"),
    cfg: DedupConfig | None = None,
    decontam: DecontamConfig | None = None,
    shard_size: int = 20_000,
    semantic: SemanticConfig | None = None,
) -> dict:
    """Dedup then decontaminate what the warehouse holds; returns run stats. Works without Prefect."""
    cfg = cfg or DedupConfig()
    decontam = decontam or DecontamConfig()
    unknown = sorted(set(levels) - set(KINDS))
    if unknown:
        raise ValueError(f"dedup: levels must be 'prompt' and/or 'trace', got {unknown}")
    config = {"dedup": str(cfg), "decontam": str(decontam), "benchmarks": list(benchmarks or []),
              "semantic": str(semantic) if semantic and semantic.enabled else None}
    stats: dict = {}
    with stage_run(Warehouse(warehouse), STAGE, config) as run:
        run.stats = stats
        for kind in levels:
            stats[kind] = _dedup_kind(run.wh, kind, cfg, run.run_id, shard_size)
        stats["decontamination"] = _decontaminate(run.wh, benchmarks or [], decontam, run.run_id, shard_size)
        stats["semantic"] = run_semantic(run.wh, semantic, benchmarks or [], run.run_id,
                                         {k: cfg.casefold(k) for k in ("prompt", "trace")})
        run.n_in = sum(stats[k]["n_items"] for k in levels)
        n_dup = sum(stats[k]["n_duplicates"] for k in levels)
        n_contaminated = stats["decontamination"]["n_contaminated"] + stats["semantic"]["n_removed"]
        run.n_out, run.n_rejected = run.n_in - n_dup, n_dup + n_contaminated
    return {"run_id": run.run_id, "n_in": run.n_in, "n_out": run.n_out, "n_rejected": run.n_rejected,
            "config_fingerprint": str(cfg), **stats}


@flow(name="dedup", flow_run_name="dedup")
def dedup_flow(
    warehouse: str | None = None,
    benchmarks: list[str] | None = None,
    levels: list[str] | None = None,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle_size: int = 5,
    trace_scope: str = "prompt",
    ngram_size: int = 8,
    shard_size: int = 20_000,
    semantic: SemanticConfig | None = None,
) -> dict:
    """Exact + MinHash near-duplicate clusters (prompts, traces) and n-gram decontamination.

    Args:
        benchmarks: benchmark files as `[NAME=]PATH[#FIELD]` (JSONL or Parquet).
        levels: 'prompt' and/or 'trace' (default both).
        threshold, num_perm, shingle_size: MinHash LSH (docs/methods.md#deduplication-and-decontamination defaults).
        trace_scope: 'prompt' (traces duplicate only within their prompt) or 'global'.
        ngram_size: decontamination word n-gram size (Open-R1: 8).
        semantic: embedding dedup + decontamination (`{enabled: true, threshold: 0.72, ...}`; needs the semantic extra).
    """
    near = {"threshold": threshold, "num_perm": num_perm, "shingle_size": shingle_size}
    cfg = DedupConfig(prompt=MinhashConfig(**near, formula_match=True), trace=MinhashConfig(**near), trace_scope=trace_scope)
    return run_dedup(warehouse=warehouse, benchmarks=benchmarks, levels=tuple(levels or ("prompt", "trace")), cfg=cfg,
                     decontam=DecontamConfig(ngram_size=ngram_size), shard_size=shard_size, semantic=semantic)
