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
from tasks.common.ids import stable_hash
from tasks.common.sharding import stage_shard_size
from tasks.quality.filters import FilterConfig, apply_filters
from tasks.quality.filters import preset as filter_preset
from tasks.quality.prompt_stats import PromptStatsConfig, prompt_stats
from tasks.quality.signals import SCORER, SCORER_VERSION, GROUP_METRICS, SignalConfig, length_ratios, trace_signals
from warehouse import Warehouse, one_connection
from warehouse.runs import finish_run, record_rejections, rejection_rows, start_run, utcnow

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
    traces = wh.query(
        "select t.trace_id, t.completion_text, t.n_completion_tokens, t.is_truncated, t.finish_reason, p.domain "
        "from staging.stg_traces t left join staging.stg_prompts p using (prompt_id) "
        "where t.trace_id in (select unnest(?::varchar[]))",
        [trace_ids],
    )
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
    scores = wh.query(
        "select trace_id, metric, score from staging.stg_scores where trace_id in (select unnest(?::varchar[])) order by trace_id, metric",
        [trace_ids],
    )
    basis = scores.group_by("trace_id", maintain_order=True).agg(
        pl.format("{}={}", pl.col("metric"), pl.col("score")).str.join(";").alias("_scores")
    )
    fingerprint = str(cfg)
    basis = basis.with_columns(
        pl.col("_scores").map_elements(lambda s: stable_hash(fingerprint, s), return_dtype=pl.String).alias("basis_hash")
    ).drop("_scores")
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
    lengths = wh.query(
        "select t.trace_id, t.prompt_id, s.score as completion_tokens from staging.stg_traces t "
        "join raw.raw_scores s on s.trace_id = t.trace_id and s.metric = 'completion_tokens' "
        "and s.scorer_version = ? and s.basis_hash = '' order by t.prompt_id, t.trace_id",
        [scorer_version(cfg)],
    )
    if lengths.is_empty():
        return 0
    basis = lengths.group_by("prompt_id", maintain_order=True).agg(
        pl.format("{}:{}", pl.col("trace_id"), pl.col("completion_tokens")).str.join(",").alias("_set")
    ).with_columns(pl.col("_set").map_elements(lambda s: stable_hash("lengths", s), return_dtype=pl.String).alias("basis_hash"))
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
    exists = wh.scalar(
        "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = 'raw_verifications'"
    )
    if not exists:
        log.info("prompt stats: skipped, raw.raw_verifications does not exist yet (run the verify stage's migrations)")
        return {"skipped": "raw.raw_verifications missing", "written": 0}
    traces = wh.query("select trace_id, prompt_id, model_id from staging.stg_traces")
    verdicts = wh.query(
        "select trace_id, verifier, verdict_status, score from raw.raw_verifications "
        "qualify row_number() over (partition by trace_id, verifier order by verified_at desc, run_id desc) = 1"
    )
    if traces.is_empty():
        return {"written": 0}
    stats = prompt_stats(traces, verdicts, cfg)
    basis = (
        traces.join(verdicts, on="trace_id", how="left")
        .sort("trace_id", "verifier", nulls_last=True)
        .group_by("prompt_id", "model_id", maintain_order=True)
        .agg(pl.format("{}:{}:{}:{}", "trace_id", "verifier", "verdict_status", "score").str.join(",").alias("_set"))
        .with_columns(pl.col("_set").map_elements(lambda s: stable_hash("verdicts", s), return_dtype=pl.String).alias("basis_hash"))
        .drop("_set")
    )
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
    wh = Warehouse(warehouse)
    run_id = start_run(wh, flow_name="score", stage=STAGE,
                       config={"signals": str(signals), "filters": str(filters), "prompt_stats": str(stats_cfg)})
    out: dict = {"scorer_version": scorer_version(signals), "preset": filters.name}
    log = _log()
    try:
        pending = wh.query(
            "select trace_id from staging.stg_traces t where not exists (select 1 from raw.raw_scores s where s.trace_id = t.trace_id "
            "and s.metric = 'completion_tokens' and s.scorer_version = ? and s.basis_hash = '') order by trace_id",
            [scorer_version(signals)],
        )["trace_id"].to_list()
        out["n_in"] = len(pending)
        size = stage_shard_size("score", len(pending), shard_size)  # None: Prefect's cost <= 2% of the work
        out["scores_written"] = sum(map_shards(
            score_task, [(wh.path, run_id, pending[i : i + size], signals) for i in range(0, len(pending), size)]
        ))
        out["length_ratios_written"] = _length_ratios(wh, run_id, signals)
        all_ids = wh.query("select trace_id from staging.stg_traces order by trace_id")["trace_id"].to_list()
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
    except BaseException as exc:
        finish_run(wh, run_id, status="failed", n_in=out.get("n_in"), stats=out, error_message=str(exc)[:2000])
        raise
    finish_run(wh, run_id, n_in=out["n_in"], n_out=out["n_in"], n_rejected=out["flags"]["flagged"], stats=out)
    return {"run_id": run_id, "n_in": out["n_in"], "n_out": out["n_in"], "n_rejected": out["flags"]["flagged"], **out}


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
