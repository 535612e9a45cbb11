"""Verify flow: a verdict for every trace not yet judged by the current verifier version.

Math traces with a reference go through math-verify in hard-killable workers, code traces through
the sandbox, math traces without a reference through a majority vote per prompt. Each shard's
verdicts (and votes, and rejections for non-decisive verdicts) commit in one transaction, so a
killed run loses at most its in-flight shard and a re-run does only the missing work.
"""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from typing import Annotated, Literal

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from flows.common import call_task
from tasks.verify.code import CodeConfig
from tasks.verify.core import VerifyConfig, check_settings, summarize, verify_traces, vote_traces
from tasks.verify.math import MathConfig, VoteConfig, math_pool
from tasks.verify.pool import DeadlinePool
from tasks.verify.sandbox import SandboxConfig, available_tier
from tasks.verify.verdicts import DECISIVE, VerifyError
from warehouse import Warehouse, one_connection
from warehouse.db import WarehouseError
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow

VERDICT_KEY = ["trace_id", "verifier", "verifier_version", "input_hash"]
AGREEMENT_KEY = ["prompt_id", "verifier_version", "input_hash"]
log = logging.getLogger("potstill.verify")


def _write(wh: Warehouse, run_id: str, verdicts: pl.DataFrame, agreement: pl.DataFrame | None = None) -> dict:
    """Verdicts (+ votes) and rejections for non-decisive verdicts, in one transaction."""
    now = utcnow()
    stamped = verdicts.with_columns(pl.lit(now).cast(pl.Datetime("us")).alias("verified_at"), pl.lit(run_id).alias("run_id"))
    undecided = verdicts.filter(~pl.col("verdict_status").is_in(list(DECISIVE)))
    rejections = rejection_rows(
        run_id,
        "verify",
        [
            (r["trace_id"], r["verdict_reason"], f"{r['verifier']} {r['verdict_status']}: {r['detail'] or ''}"[:2000], None)
            for r in undecided.to_dicts()
        ],
    )
    with wh.transaction() as con:
        written = wh.load("raw.raw_verifications", stamped, key=VERDICT_KEY, con=con)
        if agreement is not None and agreement.height:
            wh.load(
                "raw.raw_prompt_agreement",
                agreement.with_columns(pl.lit(now).cast(pl.Datetime("us")).alias("computed_at"), pl.lit(run_id).alias("run_id")),
                key=AGREEMENT_KEY, con=con,
            )
        record_rejections(wh, rejections, con=con)
    return {"written": written, "rejected": undecided.height, **summarize(verdicts)}


@task(name="verify-shard", cache_policy=NO_CACHE)
@one_connection
def verify_shard(warehouse: str, run_id: str, trace_ids: list[str], cfg: VerifyConfig, pool: DeadlinePool, workers: int) -> dict:
    """Verify one shard of traces (reference answer or tests) and commit its verdicts."""
    wh = Warehouse(warehouse)
    items = wh.run_file("verify/shard_traces", {**cfg.versions(), "trace_ids": trace_ids})
    return _write(wh, run_id, verify_traces(items, cfg, pool, workers))


@task(name="vote-shard", cache_policy=NO_CACHE)
@one_connection
def vote_shard(warehouse: str, run_id: str, prompts: pl.DataFrame, cfg: VerifyConfig, pool: DeadlinePool) -> dict:
    """Majority-vote one shard of prompts without a reference answer and commit verdicts + agreement."""
    wh = Warehouse(warehouse)
    items = wh.run_file("verify/shard_votes", {**cfg.versions(), "prompt_ids": prompts["prompt_id"].to_list()})
    group_hash = dict(zip(prompts["prompt_id"].to_list(), prompts["input_hash"].to_list()))
    items = items.with_columns(pl.col("prompt_id").replace_strict(group_hash, default=None).alias("input_hash"))
    verdicts, agreement = vote_traces(items, cfg, pool)
    agreement = agreement.with_columns(pl.col("prompt_id").replace_strict(group_hash, default=None).alias("input_hash"))
    return _write(wh, run_id, verdicts, agreement)


def _shards(ids: list, size: int) -> list[list]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _merge(total: dict, part: dict) -> None:
    total["shards"] = total.get("shards", 0) + 1
    for key in ("written", "rejected", "n_decisive"):
        total[key] = total.get(key, 0) + part.get(key, 0)
    for key in ("by_status", "by_reason"):
        bucket = total.setdefault(key, {})
        for name, count in part.get(key, {}).items():
            bucket[name] = bucket.get(name, 0) + count


def run_verify(
    *,
    warehouse: str | None = None,
    workers: int | None = None,
    cfg: VerifyConfig | None = None,
    shard_size: int = 1000,
    code_shard_size: int = 32,
    limit: int | None = None,
    pool: DeadlinePool | None = None,
) -> dict:
    """Verify every pending trace; returns run stats. Usable without Prefect (tasks run as plain calls).

    `pool` lets a caller reuse a started math pool across runs (it is not closed here).
    """
    check_settings(workers=workers, shard_size=shard_size, code_shard_size=code_shard_size, limit=limit)
    cfg = cfg or VerifyConfig()
    workers = max(1, workers or os.cpu_count() or 1)
    params = cfg.versions()
    totals: dict = {"n_in": 0}
    with stage_run(Warehouse(warehouse), "verify", cfg) as run:
        try:
            wh, run.stats = run.wh, totals
            pending = wh.run_file("verify/pending_traces", params)
            votes = wh.run_file("verify/pending_votes", params)
            if limit is not None:
                pending, votes = pending.head(limit), votes.head(limit)
            totals["n_in"] = run.n_in = pending.height + int(votes["n_traces"].sum() if votes.height else 0)
            run.n_out, run.n_rejected = 0, 0  # nothing pending (a re-run): 0 in, 0 out, 0 rejected
            has_code = (pending["verifier"] == "code_sandbox").any()
            totals["sandbox_tier"] = available_tier(cfg.code.sandbox.isolation) if has_code else None
            if totals["sandbox_tier"] not in (None, "bwrap"):
                log.warning("code sandbox tier is %r, not bwrap: no read-only filesystem%s; install it with "
                            "`sh tasks/verify/install_sandbox.sh`", totals["sandbox_tier"],
                            "" if totals["sandbox_tier"] == "unshare" else " and no network isolation")

            def merge(part: dict) -> None:
                _merge(totals, part)
                # a rejected trace keeps its (unverifiable) verdict but does not pass: in = out + rejected
                run.n_out, run.n_rejected = totals.get("written", 0) - totals.get("rejected", 0), totals.get("rejected", 0)

            with (nullcontext(pool) if pool is not None else math_pool(cfg.math, workers)) as active:
                for verifier, size in (("none", shard_size), ("math_verify", shard_size), ("code_sandbox", code_shard_size)):
                    ids = pending.filter(pl.col("verifier") == verifier)["trace_id"].to_list()
                    for shard in _shards(ids, size):
                        merge(call_task(verify_shard, wh.path, run.run_id, shard, cfg, active, workers))
                prompt_rows = votes.select("prompt_id", "input_hash")
                for start in range(0, prompt_rows.height, max(1, shard_size // 8)):
                    merge(call_task(vote_shard, wh.path, run.run_id, prompt_rows.slice(start, max(1, shard_size // 8)), cfg, active))
                totals["workers_killed"] = active.n_killed
                totals["workers_crashed"] = active.n_crashed
        except BaseException as exc:
            committed = (f"committed before the failure: {totals.get('written', 0)} verdicts in {totals.get('shards', 0)} "
                         f"shard(s) of run {run.run_id}; a re-run does only the rest")
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            run.error_message = f"{first[:1500]}; {committed}"
            if isinstance(exc, (WarehouseError, VerifyError)):
                raise type(exc)(f"{first}; {committed}") from exc
            raise
        n_out, n_rejected = run.n_out or 0, run.n_rejected or 0
    return {"run_id": run.run_id, "n_in": totals["n_in"], "n_out": n_out, "n_rejected": n_rejected,
            "n_decisive": totals.get("n_decisive", 0), "by_status": totals.get("by_status", {}),
            "by_reason": totals.get("by_reason", {}), "sandbox_tier": totals.get("sandbox_tier"),
            "workers_killed": totals.get("workers_killed", 0), "verifier_versions": params}


@flow(name="verify", flow_run_name="verify")
def verify_flow(
    warehouse: str | None = None,
    workers: Annotated[int | None, Field(ge=1)] = None,
    shard_size: Annotated[int, Field(ge=1)] = 1000,
    code_shard_size: Annotated[int, Field(ge=1)] = 32,
    math_deadline_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0,
    code_wall_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 10.0,
    isolation: Literal["auto", "bwrap", "unshare", "none"] = "auto",
    min_vote_answers: Annotated[int, Field(ge=1)] = 3,
    limit: Annotated[int | None, Field(ge=0)] = None,
) -> dict:
    """Verify every trace without a verdict for the current verifier versions.

    Args:
        warehouse: DuckDB path (default: POTSTILL_WAREHOUSE or the user data dir).
        workers: math worker processes and concurrent sandboxes (default: CPU count).
        shard_size / code_shard_size: traces per Prefect task for math / code (each shard re-reads the
            staging views, ~0.2 s at 200k traces, so math shards are large).
        math_deadline_s: hard per-item deadline of math-verify (worker killed after it).
        code_wall_s: wall-clock deadline of one sandboxed program.
        isolation: sandbox tier, auto | bwrap | unshare | none.
        min_vote_answers: answered traces a prompt needs before its majority vote counts.
        limit: verify at most this many pending traces (and vote at most this many prompts).
    """
    check_settings(workers=workers, shard_size=shard_size, code_shard_size=code_shard_size, limit=limit,
                   math_deadline_s=math_deadline_s, code_wall_s=code_wall_s, min_vote_answers=min_vote_answers)
    cfg = VerifyConfig(
        math=MathConfig(deadline_s=math_deadline_s),
        code=CodeConfig(sandbox=SandboxConfig(wall_s=code_wall_s, isolation=isolation)),
        vote=VoteConfig(min_answers=min_vote_answers),
    )
    stats = run_verify(warehouse=warehouse, workers=workers, cfg=cfg, shard_size=shard_size,
                       code_shard_size=code_shard_size, limit=limit)
    get_run_logger().info("verify: %d in, %d verdicts, %d undecided (%s); sandbox=%s; workers killed %d",
                          stats["n_in"], stats["n_out"], stats["n_rejected"], stats["by_status"],
                          stats["sandbox_tier"], stats["workers_killed"])
    return stats
