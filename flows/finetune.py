"""Fine-tuning flow: a published dataset version + a base student + a training recipe → a checkpoint.

Records `meta.training_runs` (running → completed | failed) and a `meta.runs` row. Idempotent: the
training run id is a hash of the dataset version's content, the base model and the resolved
training config, so re-running a completed run returns it without training again.

`on_publish(dataset_name, version, recipe)` runs finetune then evaluate for a freshly published
version when the recipe asks for it: through the deployments the recipe names when they exist
(e.g. the GPU pool's), else in-process as subflows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.common.ids import stable_hash
from tasks.train.config import TrainConfig, TrainError
from tasks.train.recipe import TrainRecipe, load_train_recipe, resolve_model_or_path
from warehouse import Warehouse
from warehouse.db import default_path
from warehouse.runs import stage_run, utcnow


def parse_dataset_spec(spec: str) -> tuple[str, int | None]:
    """`name@3` → ('name', 3); `name` or `name@latest` → ('name', None)."""
    name, _, version = spec.partition("@")
    if not name:
        raise TrainError(f"dataset {spec!r}: give name@version (e.g. toy-provenance@1) or name@latest")
    if version in ("", "latest"):
        return name, None
    if not version.isdigit():
        raise TrainError(f"dataset {spec!r}: version must be a positive integer or 'latest'")
    return name, int(version)


def resolve_dataset(wh: Warehouse, spec: str) -> dict:
    """The published version a spec names: dataset_name, version, content_hash, n_rows, policy."""
    name, version = parse_dataset_spec(spec)
    found = wh.run_file("finetune/published_version", {"name": name, "version": version})
    if found.height == 0:
        have = wh.run_file("finetune/versions", {"name": name})
        listing = ", ".join(f"{r['version']} ({r['status']})" for r in have.to_dicts()) or "none"
        raise TrainError(f"dataset {spec!r} has no published version to train on (versions: {listing}); publish it first")
    return found.row(0, named=True)


def training_run_id_for(dataset: dict, base_model: str, cfg: TrainConfig) -> str:
    """Content-keyed id: same dataset content + base model + training config → same run."""
    return "tr_" + stable_hash(dataset["dataset_name"], dataset["version"], dataset["content_hash"], base_model, str(cfg))


def default_output_root(wh: Warehouse) -> Path:
    base = Path(default_path() if wh.path == ":memory:" else wh.path).expanduser().resolve().parent
    return base / "checkpoints"


def _set_training_run(wh: Warehouse, row: dict) -> None:
    wh.load("meta.training_runs", pl.DataFrame([row]), key=["training_run_id"], mode="replace")


@task(name="sft-train", cache_policy=NO_CACHE)
def train_task(rows: pl.DataFrame, base_model: str, cfg: TrainConfig, output_dir: str, run_info: dict) -> dict:
    from tasks.train.sft import train_sft

    result = train_sft(rows, base_model, cfg, output_dir, run_info=run_info)
    return {
        "checkpoint_path": result.checkpoint_path, "n_steps": result.n_steps, "n_train_tokens": result.n_train_tokens,
        "n_completion_tokens": result.n_completion_tokens, "final_loss": result.final_loss, "n_examples": result.n_examples,
        "examples_hash": result.examples_hash, "device": result.device, "precision": result.precision,
        "train_seconds": round(result.train_seconds, 2), "is_truncated": result.is_truncated,
        "truncation_reason": result.truncation_reason,
    }


@flow(name="finetune", flow_run_name="finetune-{dataset}")
def finetune_flow(
    warehouse: str | None = None,
    dataset: str = "",
    base_model: str | None = None,
    recipe: str | None = None,
    output_dir: str | None = None,
    force: bool = False,
    seed: int | None = None,
    max_steps: int | None = None,
) -> dict:
    """Fine-tune `base_model` (default: the recipe's) on the published dataset version `name@version`.

    Args:
        recipe: training recipe path or name (`toy` → deployments/recipes/train_toy.yaml).
        output_dir: checkpoint folder (default: <warehouse dir>/checkpoints/<dataset>-v<N>/<training_run_id>).
        force: train again even if this exact run completed before.
        seed: overrides the recipe's train.seed (data order, initialisation of new weights, dropout).
        max_steps: overrides the recipe's train.max_steps (the step bound).
    """
    log = get_run_logger()
    spec = load_train_recipe(recipe)
    cfg = spec.train_config()
    if seed is not None:
        cfg = dataclasses.replace(cfg, seed=int(seed))
    if max_steps is not None:
        cfg = dataclasses.replace(cfg, max_steps=int(max_steps))
    base = resolve_model_or_path(base_model) if base_model else spec.resolved_base_model()
    wh = Warehouse(warehouse)
    ds = resolve_dataset(wh, dataset)
    training_run_id = training_run_id_for(ds, base, cfg)
    done = wh.run_file("finetune/completed_run", {"training_run_id": training_run_id})
    if done.height and not force and done["checkpoint_path"][0] and Path(done["checkpoint_path"][0]).exists():
        log.info("training run %s already completed: %s", training_run_id, done["checkpoint_path"][0])
        row = done.row(0, named=True)
        return {"run_id": None, "stage": "finetune", "training_run_id": training_run_id, "checkpoint_path": row["checkpoint_path"],
                "dataset": f"{ds['dataset_name']}@{ds['version']}", "base_model": base, "n_in": ds["n_rows"], "n_out": 0,
                "n_rejected": 0, "skipped": True, "final_loss": row["final_loss"], "n_steps": row["n_steps"],
                "is_truncated": bool(row.get("is_truncated")), "truncation_reason": row.get("truncation_reason")}

    config = {"dataset": dataset, "base_model": base, "recipe": spec.model_dump(mode="json"), "train": str(cfg)}
    with stage_run(wh, "finetune", config) as run:
        run_id, run.n_in = run.run_id, ds["n_rows"]
        started = utcnow()
        record = {"training_run_id": training_run_id, "dataset_name": ds["dataset_name"], "dataset_version": ds["version"],
                  "base_model": base, "recipe_fingerprint": str(cfg), "checkpoint_path": None, "n_steps": None,
                  "n_train_tokens": None, "final_loss": None, "started_at": started, "finished_at": None, "status": "running",
                  "max_steps": cfg.max_steps if cfg.max_steps > 0 else None, "is_truncated": None, "truncation_reason": None}
        _set_training_run(wh, record)
        try:
            rows = wh.run_file("finetune/dataset_rows", {"dataset_name": ds["dataset_name"], "version": ds["version"]})
            bad = rows.filter(~pl.col("has_trace") | ~pl.col("has_prompt")
                              | ((pl.col("reasoning").fill_null("") == "") & (pl.col("answer").fill_null("") == "")))
            rejected = 0
            if bad.height:
                items = []
                for r in bad.to_dicts():
                    reason = "trace_missing" if not r["has_trace"] else "prompt_missing" if not r["has_prompt"] else "empty_completion"
                    items.append((r["trace_id"], reason, f"dataset {ds['dataset_name']}@{ds['version']} rank {r['rank']}", json.dumps(r, default=str)))
                rejected = run.record(items)
                rows = rows.join(bad.select("trace_id"), on="trace_id", how="anti")
            root = Path(output_dir) if output_dir else (
                Path(resolve_model_or_path(spec.output_root)) if spec.output_root else default_output_root(wh)
            ) / f"{ds['dataset_name']}-v{ds['version']}" / training_run_id
            run_info = {"training_run_id": training_run_id, "run_id": run_id, "dataset": f"{ds['dataset_name']}@{ds['version']}",
                        "dataset_name": ds["dataset_name"], "dataset_version": ds["version"], "content_hash": ds["content_hash"],
                        "dataset_policy": ds["policy"], "recipe": spec.name, "recipe_version": spec.version,
                        "recipe_path": spec.path, "recipe_fingerprint_full": spec.fingerprint()}
            result = train_task(rows.select("prompt", "reasoning", "answer"), base, cfg, str(root), run_info)
        except BaseException:
            _set_training_run(wh, {**record, "status": "failed", "finished_at": utcnow()})
            raise
        _set_training_run(wh, {**record, "status": "completed", "finished_at": utcnow(), "checkpoint_path": result["checkpoint_path"],
                               "n_steps": result["n_steps"], "n_train_tokens": result["n_train_tokens"], "final_loss": result["final_loss"],
                               "is_truncated": result["is_truncated"], "truncation_reason": result["truncation_reason"]})
        if result["is_truncated"]:
            log.warning("training run %s is TRUNCATED: %s", training_run_id, result["truncation_reason"])
        stats = {**result, "training_run_id": training_run_id, "dataset": f"{ds['dataset_name']}@{ds['version']}", "base_model": base}
        run.n_out, run.n_rejected, run.stats = result["n_examples"], rejected, stats
    log.info("trained %s on %s: %d steps, final loss %s → %s", base, stats["dataset"], result["n_steps"], result["final_loss"], result["checkpoint_path"])
    return {"run_id": run_id, "stage": "finetune", "n_in": ds["n_rows"], "n_out": result["n_examples"], "n_rejected": rejected,
            "skipped": False, **stats}


# -- publish trigger -------------------------------------------------------------------------------

def _deployment_exists(name: str | None) -> bool:
    if not name:
        return False
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async def check() -> bool:
        async with get_client() as client:
            try:
                await client.read_deployment_by_name(name)
                return True
            except ObjectNotFound:
                return False

    from prefect.utilities.asyncutils import run_coro_as_sync

    return bool(run_coro_as_sync(check()))


def _run_stage(deployment: str | None, fn, params: dict, timeout_s: float) -> tuple[str, dict | None]:
    """Run via `run_deployment` when the deployment exists (waits up to `timeout_s`), else as an in-process subflow."""
    if _deployment_exists(deployment):
        from prefect.deployments import run_deployment

        flow_run = run_deployment(name=deployment, parameters=params, timeout=timeout_s)
        if not flow_run.state or not flow_run.state.is_completed():
            state = flow_run.state.name if flow_run.state else "without a state"
            raise TrainError(f"deployment {deployment} run {flow_run.id} is {state} after {timeout_s:.0f}s "
                             "(a Scheduled/Pending run means no worker is polling that deployment's work pool)")
        return f"deployment:{deployment}", None
    return "subflow", fn(**params)


@flow(name="on-publish", flow_run_name="on-publish-{dataset_name}-{version}")
def on_publish(dataset_name: str, version: int | str, recipe: str | None = None, warehouse: str | None = None) -> dict:
    """Fine-tune then evaluate a published dataset version, if the training recipe asks for it on publish."""
    from flows.evaluate import evaluate_flow

    log = get_run_logger()
    spec: TrainRecipe = load_train_recipe(recipe)
    if not spec.on_publish.finetune or not spec.applies_to(dataset_name):
        log.info("recipe %s does not fine-tune %s on publish", spec.name, dataset_name)
        return {"dataset": f"{dataset_name}@{version}", "recipe": spec.name, "finetune": None, "evaluate": None}
    wh = Warehouse(warehouse)
    ds = resolve_dataset(wh, f"{dataset_name}@{version}")
    base = spec.resolved_base_model()
    training_run_id = training_run_id_for(ds, base, spec.train_config())
    wait = spec.on_publish.deployment_timeout_s
    how, ft = _run_stage(spec.on_publish.finetune_deployment, finetune_flow,
                         {"warehouse": warehouse, "dataset": f"{dataset_name}@{ds['version']}", "base_model": base, "recipe": spec.path}, wait)
    run = wh.run_file("finetune/training_run", {"training_run_id": training_run_id})
    if run.height == 0 or run["status"][0] != "completed":
        raise TrainError(f"fine-tuning {dataset_name}@{ds['version']} ({how}) did not complete: see meta.training_runs {training_run_id}")
    checkpoint = run["checkpoint_path"][0]
    result = {"dataset": f"{dataset_name}@{ds['version']}", "recipe": spec.name, "training_run_id": training_run_id,
              "checkpoint_path": checkpoint, "finetune": {"via": how, **(ft or {})}, "evaluate": None}
    if spec.on_publish.evaluate:
        params = {"warehouse": warehouse, "models": [base, checkpoint], "eval_set": spec.eval_set_path(),
                  **spec.eval_config().__dict__}
        how_eval, ev = _run_stage(spec.on_publish.evaluate_deployment, evaluate_flow, params, wait)
        result["evaluate"] = {"via": how_eval, **(ev or {})}
    return result
