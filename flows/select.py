"""Select flow: build the candidate frame from whatever upstream tables exist, apply a policy,
record pool rejections, and publish the rows as a dataset version.

Each eligibility signal comes from one SQL file under `tasks/select/sql/`; when its source table
or view does not exist yet (that stage never ran), the criterion is not applied and the run's
stats and log say so (`criteria_skipped`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.divergence.sentences import SplitConfig
from tasks.select.policies import POLICIES, SelectionConfig, SelectionError, select_traces
from warehouse import Warehouse
from warehouse.runs import finish_run, record_rejections, rejection_rows, start_run

SQL_DIR = Path(__file__).resolve().parent.parent / "tasks" / "select" / "sql"
STAGE = "select"
# signal -> (sql file, source object it needs, join key)
SIGNALS = {
    "verdict_status": ("verdicts.sql", "staging.stg_verifications", "trace_id"),
    "is_representative": ("dedup.sql", "staging.stg_dedup", "trace_id"),
    "is_contaminated": ("contamination.sql", "staging.stg_contamination", "prompt_id"),
    "passes_quality": ("quality.sql", "staging.stg_quality_flags", "trace_id"),
    "student_pass_rate": ("prompt_stats.sql", "staging.stg_prompt_stats", "prompt_id"),
    "n_teacher": ("provenance.sql", "raw.raw_sentence_scores", "trace_id"),
}


def _sql(name: str) -> str:
    return (SQL_DIR / name).read_text()


def _exists(wh: Warehouse, obj: str) -> bool:
    schema, name = obj.split(".")
    return bool(wh.scalar(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ))


def build_candidates(
    wh: Warehouse,
    *,
    student_model_id: str | None,
    split: str = "train",
    beta: float = 0.1,
    quality_preset: str = "default",
    splitter: str | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """(candidates, signals skipped because their source does not exist or has no rows for this student)."""
    base = wh.query(_sql("candidates.sql"), {"split": split, "exclude_model": student_model_id})
    params = {
        "verdicts.sql": {}, "dedup.sql": {}, "contamination.sql": {}, "quality.sql": {"preset": quality_preset},
        "prompt_stats.sql": {"student": student_model_id},
        "provenance.sql": {"student": student_model_id, "beta": beta, "splitter": splitter or str(SplitConfig())},
    }
    skipped: list[str] = []
    for column, (file, source, key) in SIGNALS.items():
        if not _exists(wh, source) or (file in ("prompt_stats.sql", "provenance.sql") and not student_model_id):
            skipped.append(column)
            continue
        signal = wh.query(_sql(file), params[file])
        if signal.height == 0:
            skipped.append(column)
            continue
        base = base.join(signal, on=key, how="left")
    return base, skipped


def _student_id(wh: Warehouse, student: str | None, student_model_id: str | None) -> str | None:
    if student_model_id:
        return student_model_id
    if student:
        from flows.divergence import resolve_model_id

        return resolve_model_id(student)
    if _exists(wh, "raw.raw_sentence_scores"):
        found = wh.query("select distinct student_model_id from curated.cur_provenance_traces")["student_model_id"].to_list()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise SelectionError(f"several students have provenance scores ({found}); pass student_model_id")
    return None


@task(name="select-publish", cache_policy=NO_CACHE)
def publish_task(warehouse: str, dataset_name: str, rows: pl.DataFrame, policy: str, params: dict, fingerprint: str,
                 source_run_ids: list[str], run_id: str) -> dict:
    from tasks.publish.versions import publish_dataset

    version = publish_dataset(Warehouse(warehouse), dataset_name, rows, policy, params, fingerprint, source_run_ids,
                              publish_run_id=run_id)
    return version.as_dict()


def _upstream_runs(wh: Warehouse) -> list[str]:
    """The latest completed run of each upstream stage: the dataset's source runs."""
    df = wh.query(
        "select run_id from meta.runs where status = 'completed' and stage <> 'select'"
        " qualify row_number() over (partition by stage order by started_at desc) = 1 order by stage"
    )
    return df["run_id"].to_list()


def run_select(
    policy: str,
    cfg: SelectionConfig,
    *,
    warehouse: str | None = None,
    dataset_name: str | None = None,
    student: str | None = None,
    student_model_id: str | None = None,
    split: str = "train",
    quality_preset: str = "default",
    publish: bool = True,
) -> dict:
    """Plain entry point: select, record rejections, publish when `dataset_name` is given."""
    if policy not in POLICIES:
        raise SelectionError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    wh = Warehouse(warehouse)
    run_id = start_run(wh, flow_name="select", stage=STAGE, config={"policy": policy, **cfg.__dict__, "split": split,
                                                                  "dataset_name": dataset_name})
    try:
        sid = _student_id(wh, student, student_model_id)
        candidates, skipped = build_candidates(wh, student_model_id=sid, split=split, beta=cfg.beta,
                                               quality_preset=quality_preset)
        result = select_traces(candidates, policy, cfg)
        params = {**result.params, "student_model_id": sid, "split": split, "quality_preset": quality_preset,
                  "signals_skipped": skipped, "select_run_id": run_id}
        params["criteria_skipped"] = sorted(set(params["criteria_skipped"]) | {s for s in skipped if s in (
            "verdict_status", "is_representative", "is_contaminated", "passes_quality")})
        rej = result.rejections.select("trace_id", "reason_code", "detail")
        # eligible but not chosen (per-prompt cap or budget): rejected too, so in = out + rejected
        unchosen = (candidates.select("trace_id").unique(maintain_order=True)
                    .join(result.rows.select("trace_id"), on="trace_id", how="anti")
                    .join(rej.select("trace_id"), on="trace_id", how="anti"))
        rej = pl.concat([rej, unchosen.with_columns(
            reason_code=pl.lit("not_selected"),
            detail=pl.lit(f"eligible, not chosen by {policy}: ranked below the per-prompt cap or the budget"))])
        record_rejections(wh, rejection_rows(run_id, STAGE, [
            (t, code, detail, None) for t, code, detail in rej.iter_rows()
        ]))
        version = None
        if dataset_name and publish and result.rows.height:
            try:
                import tasks.publish.versions  # noqa: F401 - the [Datasets & contracts] module
            except ImportError:
                version = None
            else:
                version = call_task(publish_task, wh.path, dataset_name, result.rows, policy, params, str(cfg),
                                    [*_upstream_runs(wh), run_id], run_id)
    except BaseException as exc:
        finish_run(wh, run_id, status="failed", error_message=str(exc)[:2000])
        raise
    stats = {"n_in": candidates.height, "n_out": result.rows.height, "n_rejected": rej.height, "params": params,
             "dataset": version}
    finish_run(wh, run_id, n_in=candidates.height, n_out=result.rows.height, n_rejected=rej.height, stats=stats)
    return {"run_id": run_id, **stats, "rows": result.rows}


@flow(name="select", flow_run_name="select-{policy}")
def select_flow(
    warehouse: str | None = None,
    policy: str = "provenance",
    budget: int = 1000,
    budget_unit: str = "traces",
    seed: int = 0,
    dataset_name: str | None = None,
    student: str | None = None,
    student_model_id: str | None = None,
    beta: float = 0.1,
    split: str = "train",
    quality_preset: str = "default",
    require_verdict: str | None = "correct",
    max_per_prompt: int = 1,
    publish: bool = True,
    options: dict | None = None,
) -> dict:
    """Select traces with `policy` at a fixed budget; publish them as `dataset_name` when given.

    `options` sets any other SelectionConfig field (e.g. {"pass_rate_low": 0.3, "diverse_per_prompt": 3}).
    Returns {"run_id", "n_in", "n_out", "n_rejected", "params", "dataset", "rows"}.
    """
    cfg = SelectionConfig(budget=budget, budget_unit=budget_unit, seed=seed, beta=beta, require_verdict=require_verdict,
                          max_per_prompt=max_per_prompt)
    if options:
        unknown = set(options) - set(cfg.__dataclass_fields__)
        if unknown:
            raise SelectionError(f"unknown selection option(s) {sorted(unknown)}; known: {sorted(cfg.__dataclass_fields__)}")
        cfg = replace(cfg, **options)
    out = run_select(policy, cfg, warehouse=warehouse, dataset_name=dataset_name, student=student,
                     student_model_id=student_model_id, split=split, quality_preset=quality_preset, publish=publish)
    logger = get_run_logger()
    if out["params"]["criteria_skipped"]:
        logger.warning("select: eligibility criteria not applied (their stage has not run): %s",
                       out["params"]["criteria_skipped"])
    logger.info("select %s: %d candidates, pool %d, selected %d (%d tokens), pool rejections %s; dataset %s",
                policy, out["n_in"], out["params"]["n_pool"], out["n_out"], out["params"]["n_tokens"],
                out["params"]["pool_rejections"], (out["dataset"] or {}).get("spec"))
    return out
