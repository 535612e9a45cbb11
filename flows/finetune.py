"""Fine-tuning flow: a published dataset version + a base student + a training recipe → a checkpoint.

The recipe's `method` (sft | sft+redi | sft+opd | schedule, `tasks.train.methods`) decides the
stages and which rows of the version each reads (by the rows' selection `stage`); a method that
would train a dataset wrong (SFT on `redi_pairs` negatives) is refused in one line before anything
runs. Each stage records a `meta.training_runs` row (running → completed | failed, with method,
stage and parent run) and the flow one `meta.runs` row. Idempotent: a stage's id is a hash of the
dataset version's content, the base model, the resolved config, the method and its parent stage,
so re-running returns completed stages without training again.

`on_publish(dataset_name, version, recipe)` runs finetune then evaluate for a freshly published
version when the recipe asks for it: through the deployments the recipe names when they exist
(e.g. the GPU pool's), else in-process as subflows.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.common.ids import config_fingerprint, stable_hash
from tasks.generate.backend import model_id
from tasks.train.config import TrainConfig, TrainError
from tasks.train.methods import check_method, plan_stages, split_steps
from tasks.train.recipe import TrainRecipe, load_train_recipe, resolve_model_or_path
from warehouse import Warehouse
from warehouse.runs import record_rejections, rejection_rows, stage_run, utcnow


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


def training_run_id_for(dataset: dict, base_model_id: str, cfg: TrainConfig) -> str:
    """Content-keyed id: same dataset content + base model + training config → same run.
    `base_model_id` is the base model's `model_id`: a local folder counts by its weights, not its
    path, so the same student in another checkout or folder is the same run."""
    return "tr_" + stable_hash(dataset["dataset_name"], dataset["version"], dataset["content_hash"], base_model_id, str(cfg))


def stage_run_id_for(dataset: dict, base_model_id: str, cfg: TrainConfig, method: str, stage: str, parent: str | None,
                     method_fingerprint: str) -> str:
    """A stage of a multi-stage method: keyed by its config, its method section and the stage it continues."""
    if method == "sft" and stage == "sft":
        return training_run_id_for(dataset, base_model_id, cfg)  # plain SFT keeps the id it always had
    return "tr_" + stable_hash(dataset["dataset_name"], dataset["version"], dataset["content_hash"], base_model_id, str(cfg),
                               method, stage, parent, method_fingerprint)


def default_output_root(wh: Warehouse) -> Path:
    return wh.home / "checkpoints"


def _set_training_run(wh: Warehouse, row: dict) -> None:
    wh.load("meta.training_runs", pl.DataFrame([row]), key=["training_run_id"], mode="replace")


@dataclass
class StageRun:
    name: str
    training_run_id: str
    parent_training_run_id: str | None
    cfg: TrainConfig
    rows: pl.DataFrame


@dataclass
class TrainingPlan:
    method: str
    dataset: dict
    base_model: str
    rows: pl.DataFrame          # usable rows (with their selection stage)
    bad: list[tuple]            # (trace_id, reason, where, detail) of unusable rows
    stages: list[StageRun]


def plan_training(wh: Warehouse, spec: TrainRecipe, ds: dict, base: str, method: str) -> TrainingPlan:
    """Read the version's rows, check them against the method (one-line refusal) and key every stage.

    Deterministic: the same dataset version, recipe and method give the same stage ids, so a re-run
    (or on_publish looking for the result) finds them.
    """
    rows = wh.run_file("finetune/dataset_rows", {"dataset_name": ds["dataset_name"], "version": ds["version"]})
    stages = plan_stages(method, ds["policy"], rows["stage"].unique().sort().to_list())
    bad_rows = rows.filter(~pl.col("has_trace") | ~pl.col("has_prompt")
                           | ((pl.col("reasoning").fill_null("") == "") & (pl.col("answer").fill_null("") == "")))
    bad = []
    for r in bad_rows.to_dicts():
        reason = "trace_missing" if not r["has_trace"] else "prompt_missing" if not r["has_prompt"] else "empty_completion"
        bad.append((r["trace_id"], reason, f"dataset {ds['dataset_name']}@{ds['version']} rank {r['rank']}", json.dumps(r, default=str)))
    rows = rows.join(bad_rows.select("trace_id"), on="trace_id", how="anti")
    method_fp = config_fingerprint({"redi": spec.redi, "opd": spec.opd}) if method != "sft" else ""
    base_cfg = spec.train_config()
    counts = [rows.filter(pl.col("stage").is_in(list(s.row_stages))).height for s in stages]
    steps = split_steps(base_cfg.max_steps, counts) if method == "schedule" and base_cfg.max_steps > 0 else None
    out, parent, base_id = [], None, model_id(base)  # the weights are hashed once per plan
    for i, stage in enumerate(stages):
        cfg = spec.stage_config(stage.name)
        if steps:
            cfg = dataclasses.replace(cfg, max_steps=steps[i])
        run_id = stage_run_id_for(ds, base_id, cfg, method, stage.name, parent, method_fp)
        out.append(StageRun(stage.name, run_id, parent, cfg, rows.filter(pl.col("stage").is_in(list(stage.row_stages)))))
        parent = run_id
    return TrainingPlan(method, ds, base, rows, bad, out)


def _completed(wh: Warehouse, training_run_id: str) -> dict | None:
    done = wh.run_file("finetune/completed_run", {"training_run_id": training_run_id})
    if done.height and done["checkpoint_path"][0] and Path(done["checkpoint_path"][0]).exists():
        return done.row(0, named=True)
    return None


def _result_dict(result) -> dict:
    return {
        "checkpoint_path": result.checkpoint_path, "n_steps": result.n_steps, "n_train_tokens": result.n_train_tokens,
        "n_completion_tokens": result.n_completion_tokens, "final_loss": result.final_loss, "n_examples": result.n_examples,
        "examples_hash": result.examples_hash, "device": result.device, "precision": result.precision,
        "train_seconds": round(result.train_seconds, 2), "n_steps_planned": result.n_steps_planned,
        "stop_reason": result.stop_reason, "is_truncated": result.is_truncated,
        "truncation_reason": result.truncation_reason,
    }


def _progress(run_info: dict) -> list:
    """The training-progress callback: to the Prefect run logger (+ a progress artifact) inside a flow."""
    from flows.common import in_flow
    from tasks.train.progress import make_progress_callback

    if in_flow():
        return [make_progress_callback(get_run_logger(), on_progress=_progress_artifact(run_info.get("dataset")))]
    import logging

    return [make_progress_callback(logging.getLogger("potstill.train"))]


def _progress_artifact(dataset: str | None):
    """A callable updating one Prefect progress artifact (percent of planned steps done)."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    state: dict = {}

    def update(percent: float) -> None:
        if "id" not in state:
            state["id"] = create_progress_artifact(percent, key="training-progress",
                                                   description=f"fine-tuning on {dataset}: percent of planned steps")
        else:
            update_progress_artifact(state["id"], percent)

    return update


@task(name="sft-train", cache_policy=NO_CACHE)
def train_task(rows: pl.DataFrame, base_model: str, cfg: TrainConfig, output_dir: str, run_info: dict) -> dict:
    from tasks.train.sft import train_sft

    return _result_dict(train_sft(rows, base_model, cfg, output_dir, run_info=run_info, callbacks=_progress(run_info)))


@task(name="redi-train", cache_policy=NO_CACHE)
def redi_task(rows: pl.DataFrame, base_model: str, cfg: TrainConfig, output_dir: str, alpha: float, run_info: dict) -> dict:
    from tasks.train.redi import train_redi

    return _result_dict(train_redi(rows, base_model, cfg, output_dir, alpha=alpha, run_info=run_info,
                                   callbacks=_progress(run_info)))


@task(name="opd-train", cache_policy=NO_CACHE)
def opd_task(examples: list[dict], base_model: str, cfg: TrainConfig, output_dir: str, run_info: dict) -> dict:
    from tasks.train.opd import train_opd

    return _result_dict(train_opd(examples, base_model, cfg, output_dir, run_info=run_info, callbacks=_progress(run_info)))


def opd_stage(wh: Warehouse, warehouse: str | None, spec: TrainRecipe, ds: dict, stage: StageRun, sft_checkpoint: str,
              root: Path, run_id: str, run_info: dict) -> tuple[dict, int]:
    """Lightning OPD after SFT: sample the SFT student → score its rollouts under the SFT teacher → train.

    Returns the training result and the number of rollouts rejected.
    """
    from flows.divergence import opd_export_flow
    from flows.generate import SamplingParams, TeacherSpec, generate_flow
    from tasks.generate.backend import local_model_id
    from tasks.train.opd import opd_examples
    from tasks.train.sft import load_student

    opd = spec.opd_config()
    ro = opd.rollouts
    device = stage.cfg.device
    student = TeacherSpec(model=sft_checkpoint, name=f"sft-{stage.parent_training_run_id}", backend="hf", device=device,
                          batch_size=ro.batch_size)
    student_model_id = local_model_id(student.to_config())
    generate_flow(warehouse=warehouse, teachers=[student], prompt_split=ro.split, limit=ro.limit,
                  sampling=SamplingParams(n=ro.n, temperatures=[ro.temperature], max_tokens=ro.max_tokens, seed=ro.seed,
                                          system_prompt=stage.cfg.system_prompt))
    export = opd_export_flow(warehouse=warehouse, dataset=f"{ds['dataset_name']}@{ds['version']}", student_model_id=student_model_id,
                             teacher=resolve_model_or_path(opd.teacher), split=ro.split, out_dir=str(root / "opd"), device=device)
    scored = pl.read_parquet(export["path"]).join(wh.run_file("finetune/opd_rollouts", {"student_model_id": student_model_id}),
                                                  on="trace_id", how="left", suffix="_rollout")
    tokenizer, _ = load_student(sft_checkpoint)
    examples, rejected = opd_examples(scored.to_dicts(), tokenizer, clip=opd.clip, max_tokens=opd.max_tokens,
                                      system_prompt=stage.cfg.system_prompt)
    n_rejected = len(rejected)  # this run's rejections (record_rejections counts only rows new to raw)
    if rejected:
        record_rejections(wh, rejection_rows(run_id, "finetune", [
            (tid, reason, f"OPD rollout of {student_model_id}", None) for tid, reason in rejected]))
    info = {**run_info, "opd_export_id": export["export_id"], "student_model_id": student_model_id,
            "opd_teacher_model_id": export["sft_teacher_model_id"], "opd_clip": opd.clip, "opd_max_tokens": opd.max_tokens,
            "n_rollouts": scored.height, "n_rollouts_rejected": len(rejected)}
    return opd_task(examples, sft_checkpoint, stage.cfg, str(root / stage.name), info), n_rejected


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
    method: str | None = None,
    second_stage_steps: int | None = None,
) -> dict:
    """Fine-tune `base_model` (default: the recipe's) on the published dataset version `name@version`.

    Args:
        recipe: training recipe path or name (`toy` → deployments/recipes/train_toy.yaml).
        method: sft | sft+redi | sft+opd | schedule (default: the recipe's `method`); a method that
            cannot train on the dataset's policy (e.g. sft on redi_pairs) is refused before training.
        output_dir: checkpoint folder (default: <warehouse dir>/checkpoints/<dataset>-v<N>/<final training_run_id>).
        force: train again even if this exact run completed before.
        seed: overrides the recipe's train.seed (data order, initialisation of new weights, dropout).
        max_steps: overrides the recipe's train.max_steps (the step bound).
        second_stage_steps: overrides the step bound of the REDI / OPD stage (redi.train.max_steps,
            opd.train.max_steps); the methods ablation sets max_steps + second_stage_steps = its total.
    """
    log = get_run_logger()
    spec = load_train_recipe(recipe)
    method = check_method(method or spec.method, where="finetune: method")
    if seed is not None or max_steps is not None:  # an experiment's arm: its seed and step bound reach every stage
        overrides = {k: int(v) for k, v in (("seed", seed), ("max_steps", max_steps)) if v is not None}
        spec = spec.model_copy(update={"train": {**spec.train, **overrides}})
    if seed is not None and spec.opd:  # ... and the OPD stage's rollouts
        spec = spec.model_copy(update={"opd": {**spec.opd, "rollouts": {**spec.opd.get("rollouts", {}), "seed": int(seed)}}})
    if second_stage_steps is not None:
        if second_stage_steps < 1:
            raise TrainError(f"finetune: second_stage_steps must be >= 1, not {second_stage_steps}")
        spec = spec.model_copy(update={section: {**getattr(spec, section), "train": {**getattr(spec, section).get("train", {}),
                                                                                       "max_steps": int(second_stage_steps)}}
                                       for section in ("redi", "opd")})
    base = resolve_model_or_path(base_model) if base_model else spec.resolved_base_model()
    wh = Warehouse(warehouse)
    ds = resolve_dataset(wh, dataset)
    plan = plan_training(wh, spec, ds, base, method)
    final = plan.stages[-1]
    name = f"{ds['dataset_name']}@{ds['version']}"
    done = _completed(wh, final.training_run_id)
    if done and not force:
        log.info("training run %s already completed: %s", final.training_run_id, done["checkpoint_path"])
        return {"run_id": None, "stage": "finetune", "method": method, "training_run_id": final.training_run_id,
                "checkpoint_path": done["checkpoint_path"], "dataset": name, "base_model": base, "n_in": ds["n_rows"], "n_out": 0,
                "n_rejected": 0, "skipped": True, "final_loss": done["final_loss"], "n_steps": done["n_steps"],
                "is_truncated": bool(done.get("is_truncated")), "truncation_reason": done.get("truncation_reason")}

    config = {"dataset": dataset, "base_model": base, "method": method, "recipe": spec.model_dump(mode="json"),
              "train": [str(s.cfg) for s in plan.stages]}
    with stage_run(wh, "finetune", config) as run:
        run_id, run.n_in = run.run_id, ds["n_rows"]
        if plan.bad:
            run.record(plan.bad)
        rejected = len(plan.bad)  # this run's rejections (record counts only rows new to raw)
        root = Path(output_dir) if output_dir else (
            Path(resolve_model_or_path(spec.output_root)) if spec.output_root else default_output_root(wh)
        ) / f"{ds['dataset_name']}-v{ds['version']}" / final.training_run_id
        checkpoint, stages_out, result = base, [], {}
        for stage in plan.stages:
            prev = _completed(wh, stage.training_run_id)
            if prev and not force:  # a completed earlier stage (e.g. the SFT of an interrupted sft+opd) is reused
                checkpoint = prev["checkpoint_path"]
                stages_out.append({"stage": stage.name, "training_run_id": stage.training_run_id, "reused": True, "checkpoint_path": checkpoint})
                continue
            record = {"training_run_id": stage.training_run_id, "dataset_name": ds["dataset_name"], "dataset_version": ds["version"],
                      "base_model": checkpoint, "recipe_fingerprint": str(stage.cfg), "checkpoint_path": None, "n_steps": None,
                      "n_train_tokens": None, "final_loss": None, "started_at": utcnow(), "finished_at": None, "status": "running",
                      "method": method, "stage": stage.name, "parent_training_run_id": stage.parent_training_run_id,
                      "max_steps": stage.cfg.max_steps if stage.cfg.max_steps > 0 else None, "is_truncated": None,
                      "truncation_reason": None}
            _set_training_run(wh, record)
            run_info = {"training_run_id": stage.training_run_id, "run_id": run_id, "dataset": name,
                        "dataset_name": ds["dataset_name"], "dataset_version": ds["version"], "content_hash": ds["content_hash"],
                        "dataset_policy": ds["policy"], "method": method, "stage": stage.name,
                        "parent_training_run_id": stage.parent_training_run_id, "root_base_model": base, "recipe": spec.name,
                        "recipe_version": spec.version, "recipe_path": spec.path, "recipe_fingerprint_full": spec.fingerprint()}
            out_dir = str(root if stage is final and len(plan.stages) == 1 else root / stage.name)
            try:
                if stage.name == "redi":
                    result = redi_task(stage.rows, checkpoint, stage.cfg, out_dir, spec.redi_config().alpha, run_info)
                elif stage.name == "opd":
                    result, n_bad = opd_stage(wh, warehouse, spec, ds, stage, checkpoint, root, run_id, run_info)
                    rejected += n_bad
                else:
                    result = train_task(stage.rows.select("prompt", "reasoning", "answer"), checkpoint, stage.cfg, out_dir, run_info)
            except BaseException:
                _set_training_run(wh, {**record, "status": "failed", "finished_at": utcnow()})
                raise
            _set_training_run(wh, {**record, "status": "completed", "finished_at": utcnow(), "checkpoint_path": result["checkpoint_path"],
                                   "n_steps": result["n_steps"], "n_train_tokens": result["n_train_tokens"], "final_loss": result["final_loss"],
                                   "is_truncated": result["is_truncated"], "truncation_reason": result["truncation_reason"]})
            if result["is_truncated"]:
                log.warning("training run %s (%s) is TRUNCATED: %s", stage.training_run_id, stage.name, result["truncation_reason"])
            checkpoint = result["checkpoint_path"]
            stages_out.append({"stage": stage.name, "training_run_id": stage.training_run_id, "reused": False, **result})
            log.info("%s stage %s: %d steps, final loss %s → %s", method, stage.name, result["n_steps"], result["final_loss"], checkpoint)
        last = stages_out[-1]
        stats = {**{k: v for k, v in last.items() if k not in ("stage", "reused")}, "method": method, "training_run_id": final.training_run_id,
                 "checkpoint_path": checkpoint, "dataset": name, "base_model": base,
                 "n_steps": sum(s.get("n_steps", 0) or 0 for s in stages_out), "stages": stages_out}
        n_out = plan.rows.height
        run.n_out, run.n_rejected, run.stats = n_out, rejected, stats
    log.info("trained %s on %s with %s: final loss %s → %s", base, name, method, last.get("final_loss"), checkpoint)
    return {"run_id": run_id, "stage": "finetune", "n_in": ds["n_rows"], "n_out": n_out, "n_rejected": rejected,
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
    training_run_id = plan_training(wh, spec, ds, base, spec.method).stages[-1].training_run_id
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
