"""Evaluation flow: models × one eval set → pass@1 (greedy), pass@k (sampled), tokens, truncation.

Evaluating the base student and its fine-tuned checkpoint on the same set is one call
(`models=[base, checkpoint]`). Every completion and verdict goes to `meta.eval_samples`, one
transaction per shard of problems (a re-run does only the missing shards); the metrics per domain
go to `meta.eval_results` once a model's evaluation is complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.common.ids import stable_hash
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.core import evaluate_problems
from tasks.evaluate.metrics import summarize
from tasks.evaluate.problems import eval_set_hash, load_eval_set
from tasks.generate.backend import model_id
from tasks.train.recipe import resolve_model_or_path
from tasks.train.sft import read_sidecar
from warehouse import Warehouse
from warehouse.runs import stage_run, utcnow

DEFAULT_EVAL_SET = "toyworld/data/eval.jsonl"
DEFAULT_MODEL = "toyworld/models/student"


def eval_id_for(model: str, set_hash: str, cfg: EvalConfig) -> str:
    return "ev_" + stable_hash(model_id(model), set_hash, str(cfg))


@task(name="eval-shard", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def eval_shard(wh_path: str | None, generator, problems: pl.DataFrame, cfg: EvalConfig, eval_id: str, shard_index: int, run_id: str) -> dict:
    """Generate + verify one shard of problems; its rows are committed in one transaction."""
    samples = evaluate_problems(problems, generator, cfg, seed_offset=shard_index)
    rows = samples.with_columns(
        eval_id=pl.lit(eval_id), shard_index=pl.lit(shard_index, pl.Int32), run_id=pl.lit(run_id), created_at=pl.lit(utcnow()),
    )
    wh = Warehouse(wh_path)
    with wh.transaction() as con:
        wh.load("meta.eval_samples", rows, key=["eval_id", "problem_id", "mode", "sample_index"], mode="replace", con=con)
    counts = samples.group_by("verdict_status").len()
    return {"n_problems": problems.height, "n_samples": samples.height, **{r["verdict_status"]: r["len"] for r in counts.to_dicts()}}


def _generator(model: str, cfg: EvalConfig):
    from tasks.evaluate.backend import StageGenerator

    return StageGenerator(model, backend=cfg.backend, device=cfg.device, batch_size=cfg.batch_size, cpu_threads=cfg.cpu_threads)


@flow(name="evaluate", flow_run_name="evaluate-{eval_set}")
def evaluate_flow(
    warehouse: str | None = None,
    models: list[str] | None = None,
    eval_set: str = DEFAULT_EVAL_SET,
    k: int = 4,
    n_samples: int | None = None,
    temperature: float = 0.8,
    top_p: float = 1.0,
    max_new_tokens: int = 256,
    system_prompt: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    backend: str = "hf",
    batch_size: int = 64,
    device: str = "auto",
    shard_size: int = 64,
    cpu_threads: int | None = None,
    extra_models: list[str] | None = None,
    force: bool = False,
) -> dict:
    """Evaluate each model (local folder or hub id) on `eval_set`; `extra_models` are appended (the
    curate flow passes the fresh checkpoint there). Returns per-model metrics and deltas vs the first model."""
    log = get_run_logger()
    cfg = EvalConfig(k=k, n_samples=n_samples, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                     system_prompt=system_prompt, limit=limit, seed=seed, backend=backend, batch_size=batch_size, device=device, shard_size=shard_size,
                     cpu_threads=cpu_threads)
    names = list(dict.fromkeys([*(models or [DEFAULT_MODEL]), *(extra_models or [])]))
    resolved = [resolve_model_or_path(m) for m in names]
    set_path = resolve_model_or_path(eval_set)
    problems = load_eval_set(set_path, limit=limit)
    set_hash = eval_set_hash(problems)
    wh = Warehouse(warehouse)
    config = {"eval": cfg.result_params(), "models": resolved, "eval_set": set_path, "eval_set_hash": set_hash}
    evals, n_samples_written = [], 0
    with stage_run(wh, "evaluate", config) as run:
        run_id, run.n_in = run.run_id, problems.height * len(resolved)
        for model in resolved:
            eval_id = eval_id_for(model, set_hash, cfg)
            if force:
                wh.execute_file("evaluate/delete_results", {"eval_id": eval_id})
                wh.execute_file("evaluate/delete_samples", {"eval_id": eval_id})
            cached = wh.run_file("evaluate/results", {"eval_id": eval_id})
            if cached.height:
                log.info("%s: evaluation %s already complete", model, eval_id)
                evals.append({"model_id": model, "eval_id": eval_id, "cached": True, "metrics": cached.to_dicts()})
                continue
            done = set(wh.run_file("evaluate/done_problems", {"eval_id": eval_id})["problem_id"].to_list())
            shards = [(i, problems.slice(start, cfg.shard_size)) for i, start in enumerate(range(0, problems.height, cfg.shard_size))]
            todo = [(i, s) for i, s in shards if not set(s["problem_id"].to_list()) <= done]
            shard_stats = []
            if todo:
                generator = _generator(model, cfg)
                for i, shard in todo:
                    shard_stats.append(eval_shard(wh.path, generator, shard, cfg, eval_id, i, run_id))
                generator.close()
            samples = wh.run_file("evaluate/samples", {"eval_id": eval_id})
            n_samples_written += sum(s["n_samples"] for s in shard_stats)
            metrics = summarize(samples, cfg.k)
            sidecar = read_sidecar(model) if Path(model).is_dir() else None
            rows = metrics.with_columns(
                eval_id=pl.lit(eval_id), model_id=pl.lit(model),
                checkpoint_path=pl.lit(str(Path(model).resolve()) if Path(model).is_dir() else None, pl.String),
                training_run_id=pl.lit((sidecar or {}).get("training_run_id"), pl.String),
                eval_set=pl.lit(set_path), eval_set_hash=pl.lit(set_hash), temperature=pl.lit(cfg.temperature),
                eval_config_fingerprint=pl.lit(str(cfg)), eval_config_json=pl.lit(json.dumps(cfg.result_params(), sort_keys=True)),
                run_id=pl.lit(run_id), created_at=pl.lit(utcnow()),
            )
            wh.load("meta.eval_results", rows, key=["eval_id", "domain"], mode="replace")
            log.info("%s: pass@1 %.3f pass@%d %.3f on %d problems", model, rows["pass_at_1"][0], cfg.k, rows["pass_at_k"][0], rows["n_problems"][0])
            evals.append({"model_id": model, "eval_id": eval_id, "cached": False, "shards": shard_stats, "metrics": rows.drop("created_at").to_dicts()})
        summary = comparison(evals)
        stats = {"eval_set": set_path, "eval_set_hash": set_hash, "eval_config": str(cfg), "comparison": summary,
                 "evals": [{"model_id": e["model_id"], "eval_id": e["eval_id"], "cached": e["cached"]} for e in evals]}
        run.n_out, run.n_rejected, run.stats = n_samples_written, 0, stats
    return {"run_id": run_id, "stage": "evaluate", "n_in": problems.height * len(resolved), "n_out": n_samples_written,
            "n_rejected": 0, **stats, "evals": evals}


def comparison(evals: list[dict]) -> list[dict]:
    """Domain 'all' per model with the pass@1 / pass@k delta against the first model (the base)."""
    rows = []
    base = None
    for e in evals:
        m = next(r for r in e["metrics"] if r["domain"] == "all")
        base = base or m
        rows.append({"model_id": e["model_id"], "eval_id": e["eval_id"], "pass_at_1": m["pass_at_1"], "pass_at_k": m["pass_at_k"],
                     "delta_pass_at_1": m["pass_at_1"] - base["pass_at_1"], "delta_pass_at_k": m["pass_at_k"] - base["pass_at_k"],
                     "mean_completion_tokens": m["mean_completion_tokens"], "truncation_rate": m["truncation_rate"]})
    return rows
