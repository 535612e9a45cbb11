"""Score flow: quality signals per trace, length relative to the prompt, filter flags, prompt difficulty.

Steps, each idempotent and resumable:
  1. per-trace signals for traces not yet scored by this scorer version (one task and one
     transaction per shard) -> `raw.raw_scores`;
  2. `length_ratio_to_prompt_median` for prompts whose set of traces changed -> `raw.raw_scores`;
  3. the filter preset's flags for traces whose scores changed (one task per shard) ->
     `raw.raw_quality_flags` + `raw.raw_rejections` (stage `quality`, reason per rule);
  4. pass rate, score CV and difficulty band per prompt and model from the verdicts ->
     `raw.raw_prompt_stats` (skipped, saying so, while `raw.raw_verifications` does not exist).
"""

from __future__ import annotations

import logging

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task, map_shards
from tasks.common.sharding import stage_shard_size
from tasks.quality.basis import length_basis, score_basis, verdict_basis
from tasks.quality.filters import FilterConfig, apply_filters
from tasks.quality.filters import preset as filter_preset
from tasks.quality.prompt_stats import PromptStatsConfig, prompt_stats
from tasks.quality.signals import GROUP_METRICS, SCORER, SCORER_VERSION, SignalConfig, length_ratios, trace_signals
from warehouse import Warehouse, one_connection
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

STAGE = "quality"
SCORE_KEY = ["trace_id", "metric", "scorer", "scorer_version", "basis_hash"]
FLAG_KEY = ["trace_id", "preset", "basis_hash"]
STATS_KEY = ["prompt_id", "model_id", "basis_hash", "config_fingerprint"]


def _log():
    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a flow run (plain call)
        return logging.getLogger("potstill.score")


def scorer_version(cfg: SignalConfig) -> str:
    return f"{SCORER_VERSION}-{cfg}"


def _stamp(df: pl.DataFrame, run_id: str, at: str) -> pl.DataFrame:
    return df.with_columns(pl.lit(utcnow()).cast(pl.Datetime("us")).alias(at), pl.lit(run_id).alias("run_id"))


@task(name="score-shard", cache_policy=NO_CACHE)
@one_connection
def score_task(warehouse: str, run_id: str, trace_ids: list[str], cfg: SignalConfig) -> int:
    """Per-trace signals of one shard, committed in one transaction; returns rows written."""
    wh = Warehouse(warehouse)
    traces = wh.run_file("score/shard_traces", {"trace_ids": trace_ids})
    scores = trace_signals(traces, cfg).with_columns(
        pl.lit(SCORER).alias("scorer"), pl.lit(scorer_version(cfg)).alias("scorer_version"), pl.lit("").alias("basis_hash")
    )
    with wh.transaction() as con:
        return wh.load("raw.raw_scores", _stamp(scores, run_id, "scored_at"), key=SCORE_KEY, con=con)


@task(name="flag-shard", cache_policy=NO_CACHE)
@one_connection
def flag_task(warehouse: str, run_id: str, trace_ids: list[str], cfg: FilterConfig) -> dict:
    """Filter flags of one shard of traces (one row per trace judged) and their rejections, in one transaction."""
    wh = Warehouse(warehouse)
    scores = wh.run_file("score/shard_scores", {"trace_ids": trace_ids})
    fingerprint = str(cfg)
    basis = score_basis(scores, fingerprint)
    flags = apply_filters(scores, cfg)
    per_trace = flags.group_by("trace_id").agg(
        pl.col("reason_code").alias("reason_codes"), pl.col("detail").str.join("; ").alias("detail")
    )
    rows = (
        basis.join(per_trace, on="trace_id", how="left")
        .with_columns(
            pl.col("reason_codes").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            (pl.col("reason_codes").list.len().fill_null(0) > 0).alias("is_flagged"),
            pl.lit(cfg.name).alias("preset"),
            pl.lit(fingerprint).alias("filter_fingerprint"),
        )
    )
    rejections = rejection_rows(
        run_id, STAGE, [(r["trace_id"], r["reason_code"], f"preset {cfg.name}: {r['detail']}", None) for r in flags.iter_rows(named=True)]
    )
    with wh.transaction() as con:
        written = wh.load("raw.raw_quality_flags", _stamp(rows, run_id, "flagged_at"), key=FLAG_KEY, con=con)
        if written:
            record_rejections(wh, rejections, con=con)
    by_reason = flags.group_by("reason_code").len().sort("reason_code")
    return {"judged": written, "flagged": int(rows["is_flagged"].sum()) if written else 0,
            "by_reason": dict(zip(by_reason["reason_code"].to_list(), by_reason["len"].to_list())) if written else {}}


def _length_ratios(wh: Warehouse, run_id: str, cfg: SignalConfig) -> int:
    lengths = wh.run_file("score/completion_lengths", {"scorer_version": scorer_version(cfg)})
    if lengths.is_empty():
        return 0
    basis = length_basis(lengths)
    ratios = (
        length_ratios(lengths)
        .join(lengths.select("trace_id", "prompt_id"), on="trace_id")
        .join(basis.select("prompt_id", "basis_hash"), on="prompt_id")
        .drop("prompt_id")
        .with_columns(pl.lit(SCORER).alias("scorer"), pl.lit(scorer_version(cfg)).alias("scorer_version"))
    )
    with wh.transaction() as con:
        return wh.load("raw.raw_scores", _stamp(ratios, run_id, "scored_at"), key=SCORE_KEY, con=con)


def _prompt_stats(wh: Warehouse, run_id: str, cfg: PromptStatsConfig) -> dict:
    log = _log()
    if not wh.has_table("raw.raw_verifications"):
        log.info("prompt stats: skipped, raw.raw_verifications does not exist yet (run the verify stage's migrations)")
        return {"skipped": "raw.raw_verifications missing", "written": 0}
    traces = wh.run_file("score/trace_models")
    verdicts = wh.run_file("score/latest_verdicts")
    if traces.is_empty():
        return {"written": 0}
    stats = prompt_stats(traces, verdicts, cfg)
    basis = verdict_basis(traces, verdicts)
    rows = stats.join(basis, on=["prompt_id", "model_id"]).with_columns(pl.lit(str(cfg)).alias("config_fingerprint"))
    with wh.transaction() as con:
        written = wh.load("raw.raw_prompt_stats", _stamp(rows, run_id, "computed_at"), key=STATS_KEY, con=con)
    bands = stats.group_by("difficulty_band").len().sort("difficulty_band")
    return {"written": written, "prompts_models": stats.height,
            "by_band": dict(zip(bands["difficulty_band"].to_list(), bands["len"].to_list()))}


def run_score(
    *,
    warehouse: str | None = None,
    filters: FilterConfig | str = "default",
    signals: SignalConfig | None = None,
    stats_cfg: PromptStatsConfig | None = None,
    shard_size: int | None = None,
) -> dict:
    """Score, flag and compute prompt stats for what the warehouse holds; returns run stats. Works without Prefect."""
    signals = signals or SignalConfig()
    filters = filter_preset(filters) if isinstance(filters, str) else filters
    stats_cfg = stats_cfg or PromptStatsConfig()
    config = {"signals": str(signals), "filters": str(filters), "prompt_stats": str(stats_cfg)}
    out: dict = {"scorer_version": scorer_version(signals), "preset": filters.name}
    log = _log()
    with stage_run(Warehouse(warehouse), STAGE, config, flow_name="score") as run:
        wh, run_id, run.stats = run.wh, run.run_id, out
        pending = wh.run_file("score/pending_traces", {"scorer_version": scorer_version(signals)})["trace_id"].to_list()
        out["n_in"] = run.n_in = len(pending)
        size = stage_shard_size("score", len(pending), shard_size)  # None: Prefect's cost <= 2% of the work
        out["scores_written"] = sum(map_shards(
            score_task, [(wh.path, run_id, pending[i : i + size], signals) for i in range(0, len(pending), size)]
        ))
        out["length_ratios_written"] = _length_ratios(wh, run_id, signals)
        all_ids = wh.run_file("score/trace_ids")["trace_id"].to_list()
        flagged = {"judged": 0, "flagged": 0, "by_reason": {}}
        size = stage_shard_size("score", len(all_ids), shard_size)
        for i in range(0, len(all_ids), size):
            part = call_task(flag_task, wh.path, run_id, all_ids[i : i + size], filters)
            flagged["judged"] += part["judged"]
            flagged["flagged"] += part["flagged"]
            for reason, n in part["by_reason"].items():
                flagged["by_reason"][reason] = flagged["by_reason"].get(reason, 0) + n
        out["flags"] = flagged
        out["prompt_stats"] = _prompt_stats(wh, run_id, stats_cfg)
        log.info("score: %d traces scored, %d judged, %d flagged %s", len(pending), flagged["judged"], flagged["flagged"], flagged["by_reason"])
        run.n_out, run.n_rejected = out["n_in"] - flagged["flagged"], flagged["flagged"]  # flagged: kept, with a reason
    return {"run_id": run_id, "n_in": out["n_in"], "n_out": out["n_in"] - out["flags"]["flagged"], "n_rejected": out["flags"]["flagged"], **out}


@flow(name="score", flow_run_name="score")
def score_flow(
    warehouse: str | None = None,
    preset: str = "default",
    shard_size: int | None = None,
    hard_below: float = 0.2,
    easy_above: float = 0.8,
) -> dict:
    """Quality signals, filter flags (preset: none | format | default | strict) and prompt difficulty.

    Args:
        preset: the filter preset whose reason codes flag traces (nothing is deleted).
        shard_size: traces per task; None sizes shards so Prefect's per-task cost is <= 2% of the work.
        hard_below, easy_above: pass-rate edges of the difficulty bands (Open-R1 keeps 20-80%).
    """
    return run_score(warehouse=warehouse, filters=preset, stats_cfg=PromptStatsConfig(hard_below, easy_above),
                     shard_size=shard_size)


__all__ = ["GROUP_METRICS", "run_score", "score_flow"]
