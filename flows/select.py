"""Selection flow: build the candidate frame from whatever upstream tables exist, apply a policy,
record pool rejections, and publish the rows as a dataset version.

Eligibility (combined verdict, dedup representative, contamination, quality) is written once, in
the view `curated.cur_candidates` (`warehouse/views/curated/cur_candidates.sql`); the student's
signals (pass rate, provenance counts) come from `warehouse/queries/select/`. When a stage has not
written anything yet, its criterion is not applied and the run's stats and log say so
(`criteria_skipped`).
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.common import call_task
from tasks.divergence.provenance import DEFAULT_BETA, ProvenanceConfig
from tasks.divergence.sentences import SplitConfig
from tasks.select.policies import POLICIES, SelectionConfig, SelectionError, select_traces
from warehouse import Warehouse
from warehouse.runs import stage_run

STAGE = "select"
# eligibility columns of curated.cur_candidates, and the detail columns that go with them
ELIGIBILITY = {
    "verdict_status": (), "is_representative": (), "is_contaminated": ("contamination_detail",),
    "passes_quality": ("quality_detail",),
}
# the student's signals: column -> (query file, source object it needs, join key)
STUDENT_SIGNALS = {
    "student_pass_rate": ("select/prompt_stats", "staging.stg_prompt_stats", "prompt_id"),
    "n_teacher": ("select/provenance", "raw.raw_sentence_scores", "trace_id"),
    "student_mean_logprob": ("select/student_token_scores", "raw.raw_token_logprobs", "trace_id"),  # with rsr
}


def build_candidates(
    wh: Warehouse,
    *,
    student_model_id: str | None,
    split: str = "train",
    beta: float = DEFAULT_BETA,
    quality_preset: str = "default",
    splitter: str | None = None,
) -> tuple[pl.DataFrame, list[str]]:
    """(candidates, signals skipped because their stage has not run or has no rows for this student).

    Eligibility comes from the view `curated.cur_candidates`; an eligibility column whose stage
    wrote nothing yet is dropped, so the policy reports that criterion as not applied.
    """
    base = wh.run_file("select/candidates", {"split": split, "exclude_model": student_model_id,
                                             "quality_preset": quality_preset})
    judged = wh.run_file("select/signal_rows", {"quality_preset": quality_preset}).row(0, named=True)
    skipped = [column for column in ELIGIBILITY if not judged[column]]
    base = base.drop([c for column in skipped for c in (column, *ELIGIBILITY[column])])
    params = {
        "select/prompt_stats": {"student": student_model_id},
        "select/provenance": {"student": student_model_id, "beta": beta, "splitter": splitter or str(SplitConfig())},
        "select/student_token_scores": {"student": student_model_id},
    }
    for column, (name, source, key) in STUDENT_SIGNALS.items():
        if not student_model_id or not wh.has_table(source):
            skipped.append(column)
            continue
        signal = wh.run_file(name, params[name])
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
    if wh.has_table("raw.raw_sentence_scores"):
        found = wh.run_file("select/provenance_students")["student_model_id"].to_list()
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise SelectionError(f"several students have provenance scores ({found}); pass student_model_id")
    return None


@task(name="select-publish", cache_policy=NO_CACHE)
def publish_task(warehouse: str, dataset_name: str, rows: pl.DataFrame, policy: str, params: dict, fingerprint: str,
                 source_run_ids: list[str], run_id: str) -> dict:
    from flows.publish import gate_artifact
    from warehouse.datasets import publish_dataset

    version = publish_dataset(Warehouse(warehouse), dataset_name, rows, policy, params, fingerprint, source_run_ids,
                              publish_run_id=run_id, on_results=gate_artifact(dataset_name))
    return version.as_dict()


def _upstream_runs(wh: Warehouse) -> list[str]:
    """The latest completed run of each upstream stage: the dataset's source runs."""
    return wh.run_file("select/upstream_runs")["run_id"].to_list()


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
    splitter: str | None = None,
    pool: pl.DataFrame | None = None,
) -> dict:
    """Plain entry point: select, record rejections, publish when `dataset_name` is given.

    `cfg.beta` and `splitter` (default: the default splitter) pick the provenance counts read.
    `pool` (trace_id, n_completion_tokens) restricts the candidates to those traces with those token
    counts: the selection ablation's shared pool, identical for every arm.
    """
    if policy not in POLICIES:
        raise SelectionError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    config = {"policy": policy, **cfg.__dict__, "split": split, "dataset_name": dataset_name}
    with stage_run(Warehouse(warehouse), STAGE, config) as run:
        wh = run.wh
        sid = _student_id(wh, student, student_model_id)
        candidates, skipped = build_candidates(wh, student_model_id=sid, split=split, beta=cfg.beta,
                                               quality_preset=quality_preset, splitter=splitter)
        if pool is not None:
            candidates = candidates.drop("n_completion_tokens").join(
                pool.select("trace_id", "n_completion_tokens"), on="trace_id", how="inner", maintain_order="left")
        run.n_in = candidates.height
        result = select_traces(candidates, policy, cfg)
        params = {**result.params, "student_model_id": sid, "split": split, "quality_preset": quality_preset,
                  "signals_skipped": skipped, "select_run_id": run.run_id}
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
        run.record((t, code, detail, None) for t, code, detail in rej.iter_rows())
        version = None
        if dataset_name and publish and result.rows.height:
            version = call_task(publish_task, wh.path, dataset_name, result.rows, policy, params, str(cfg),
                                [*_upstream_runs(wh), run.run_id], run.run_id)
        stats = {"n_in": candidates.height, "n_out": result.rows.height, "n_rejected": rej.height, "params": params,
                 "dataset": version}
        run.n_out, run.n_rejected, run.stats = result.rows.height, rej.height, stats
    return {"run_id": run.run_id, **stats, "rows": result.rows}


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
    beta: float | None = None,
    split: str = "train",
    quality_preset: str = "default",
    require_verdict: str | None = "correct",
    max_per_prompt: int = 1,
    publish: bool = True,
    options: dict | None = None,
    provenance: ProvenanceConfig | None = None,
    oracle_pattern: str | None = None,
) -> dict:
    """Choose traces with `policy` at a fixed budget; publish them as `dataset_name` when given.

    `provenance` (the recipe's section) gives the student, the splitter and beta the provenance
    counts are read for; `student` and `beta` override it. `oracle_pattern` is the oracle policy's regex
    (a planted label; the toy recipe sets the world's strategy marker). `options` sets any other
    SelectionConfig field (e.g. {"pass_rate_low": 0.3, "diverse_per_prompt": 3}).
    Returns {"run_id", "n_in", "n_out", "n_rejected", "params", "dataset", "rows"}.
    """
    prov = provenance or ProvenanceConfig()
    cfg = SelectionConfig(budget=budget, budget_unit=budget_unit, seed=seed, beta=prov.beta if beta is None else beta,
                          require_verdict=require_verdict, max_per_prompt=max_per_prompt, oracle_pattern=oracle_pattern)
    if options:
        unknown = set(options) - set(cfg.__dataclass_fields__)
        if unknown:
            raise SelectionError(f"unknown selection option(s) {sorted(unknown)}; known: {sorted(cfg.__dataclass_fields__)}")
        cfg = replace(cfg, **options)
    out = run_select(policy, cfg, warehouse=warehouse, dataset_name=dataset_name, student=student or prov.student,
                     student_model_id=student_model_id, split=split, quality_preset=quality_preset, publish=publish,
                     splitter=str(prov.split))
    logger = get_run_logger()
    if out["params"]["criteria_skipped"]:
        logger.warning("select: eligibility criteria not applied (their stage has not run): %s",
                       out["params"]["criteria_skipped"])
    logger.info("selection %s: %d candidates, pool %d, selected %d (%d tokens), pool rejections %s; dataset %s",
                policy, out["n_in"], out["params"]["n_pool"], out["n_out"], out["params"]["n_tokens"],
                out["params"]["pool_rejections"], (out["dataset"] or {}).get("spec"))
    return out
