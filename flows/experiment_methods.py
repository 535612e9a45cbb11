"""Training-methods ablation flow: `sft`, `sft+redi`, `sft+opd` and `schedule` as arms of one experiment.

Per seed: one draw of positives (one correct trace of the OPD teacher per prompt, `budget` prompts
that also have an incorrect trace) is published as three dataset versions (the positives; the
positives paired with a negative of the same prompt; the positives ordered low then high
temperature, `tasks.experiment.methods.method_datasets`), every arm is fine-tuned with
`finetune_flow` for the same total of optimiser steps (a two-stage arm: SFT steps + second-stage
steps = the total), checked stage by stage in `meta.training_runs`, and every checkpoint is evaluated
on the same problems. Statistics are those of the selection ablation (`tasks.experiment.stats`):
per arm pass@1 with a 95% bootstrap interval over problems x seeds, and a paired interval and
verdict against plain `sft`. Results go to `meta.experiment_results` (with `method` and
`stage_steps`), `meta.experiment_arm_stats` and `results.md|csv|png` under
`<warehouse dir>/experiments/<experiment_id>/`.

`compare_methods(wh, ...)` is the plain entry point (the CLI's `potstill experiment compare-methods`).
"""

from __future__ import annotations

import json

import polars as pl
from prefect import flow, get_run_logger

from flows.evaluate import evaluate_flow
from flows.experiment import write_results
from flows.finetune import finetune_flow
from tasks.evaluate.problems import eval_set_hash, load_eval_set
from tasks.experiment.ablation import (
    ExperimentError,
    candidates_fingerprint,
    check_equal_training,
    parse_seeds,
    render_markdown,
)
from tasks.experiment.methods import (
    DATASET_OF,
    POLICY_OF,
    PRESETS,
    REFERENCE_METHOD,
    SECOND_STAGE,
    check_same_positives,
    check_stage_steps,
    method_datasets,
    methods_experiment_id,
    parse_method_arms,
    second_stage_default,
    step_plan,
)
from tasks.experiment.stats import StatsConfig, compare_arms
from tasks.train.recipe import load_train_recipe, resolve_model_or_path
from warehouse import Warehouse
from warehouse.runs import stage_run, utcnow

DEFAULT_RECIPE = "methods_ablation"


def _publish(wh: Warehouse, name: str, rows: pl.DataFrame, policy: str, params: dict, run_id: str) -> dict:
    from flows.select import _upstream_runs
    from warehouse.datasets import publish_dataset

    version = publish_dataset(wh, name, rows, policy, params, None, [*_upstream_runs(wh), run_id], publish_run_id=run_id)
    return version.as_dict()


@flow(name="experiment-methods", flow_run_name="compare-methods")
def methods_experiment_flow(
    warehouse: str | None = None,
    arms: list[str] | None = None,
    budget: int | None = None,
    seeds: list[int] | None = None,
    preset: str | None = None,
    recipe: str | None = DEFAULT_RECIPE,
    total_steps: int | None = None,
    second_stage_steps: int | None = None,
    temperature_split: float = 0.8,
    eval_set: str | None = None,
    limit: int | None = None,
    split: str = "train",
    dataset_prefix: str = "methods",
    n_bootstrap: int = 10_000,
    output_dir: str | None = None,
) -> dict:
    """Compare training methods at equal optimiser steps on the same positives; reference: plain sft.

    Args:
        arms: methods (sft, sft+redi, sft+opd, schedule); default: the preset's, else all four.
        budget: prompts per arm (= SFT rows); default: the preset's, else the quick preset's.
        seeds: one full run of every arm per seed (the draw of positives, training, OPD rollouts, evaluation).
        preset: quick | paper; explicit arguments win.
        recipe: training recipe with train, redi and opd sections (default train_methods_ablation.yaml);
            opd.teacher is the teacher whose correct traces are the positives.
        total_steps: optimiser steps per arm, all stages together (default: the preset's, else train.max_steps).
        second_stage_steps: of those, the REDI / OPD stage's (default: the preset's, else a fifth).
        temperature_split: the schedule's low stage is the positives sampled at or below this temperature.
        limit: evaluate on the first N problems only (default: the whole eval set).
    """
    from flows.select import build_candidates
    from tasks.generate.backend import model_id

    log = get_run_logger()
    chosen = PRESETS.get(preset) if preset else None
    if preset and chosen is None:
        raise ExperimentError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    arms = parse_method_arms(list(arms or (chosen.arms if chosen else PRESETS["quick"].arms)))
    if REFERENCE_METHOD not in arms:
        raise ExperimentError(f"the reference arm {REFERENCE_METHOD!r} must be one of the arms {arms}")
    seeds = parse_seeds(seeds if seeds is not None else (chosen.seeds if chosen else (0,)))
    budget = budget if budget is not None else (chosen.budget if chosen else PRESETS["quick"].budget)
    spec = load_train_recipe(recipe)
    train_cfg = spec.train_config()
    total = total_steps if total_steps is not None else (chosen.total_steps if chosen and chosen.total_steps else train_cfg.max_steps)
    if total is None or total <= 0:
        raise ExperimentError(f"{spec.path}: the experiment needs step-bounded training (train.max_steps > 0 or --total-steps)")
    second = second_stage_steps if second_stage_steps is not None else (
        chosen.second_stage_steps if chosen and chosen.second_stage_steps else second_stage_default(total))
    plans = {arm: step_plan(arm, total, second) for arm in arms}
    opd = spec.opd_config()
    if not opd.teacher:
        raise ExperimentError(f"{spec.path}: opd.teacher names the teacher whose traces are every arm's positives; set it")
    teacher_path = resolve_model_or_path(opd.teacher)
    teacher_id = model_id(teacher_path)
    base = spec.resolved_base_model()
    eval_params = {k: v for k, v in spec.eval_config().__dict__.items() if k not in ("limit", "seed")}
    if chosen and chosen.eval_k:
        eval_params.update(k=chosen.eval_k, n_samples=None)
    set_path = resolve_model_or_path(eval_set) if eval_set else spec.eval_set_path()
    problems = load_eval_set(set_path, limit=limit)
    eval_fp = "-".join(f"{k}={v}" for k, v in sorted(eval_params.items()) if k not in ("batch_size", "device", "shard_size", "backend", "cpu_threads"))
    wh = Warehouse(warehouse)
    config = {"arms": arms, "budget": budget, "seeds": seeds, "preset": preset, "total_steps": total,
              "second_stage_steps": second, "step_plans": plans, "recipe": spec.model_dump(mode="json"), "teacher": teacher_id,
              "base_model": base, "eval_set": set_path, "n_problems": problems.height, "reference": REFERENCE_METHOD,
              "split": split, "temperature_split": temperature_split}
    with stage_run(wh, "experiment-methods", config, flow_name="experiment-methods") as run:
        run_id, run.n_in = run.run_id, len(arms) * len(seeds)
        candidates, _ = build_candidates(wh, student_model_id=None, split=split)
        experiment_id = methods_experiment_id(arms, budget, seeds, teacher_id, base, spec.fingerprint(), total, second, eval_fp,
                                              eval_set_hash(problems), candidates_fingerprint(candidates, split, temperature_split))
        run.stats["experiment_id"] = experiment_id  # in meta.runs even if the run fails
        results: list[dict] = []
        reports = {}
        for seed in seeds:
            datasets, report = method_datasets(candidates, teacher_model_id=teacher_id, budget=budget, seed=seed,
                                               temperature_split=temperature_split)
            check_same_positives(datasets)  # before any training time is spent
            reports[seed] = report
            log.info("seed %d positives: %s", seed, report)
            versions = {}
            for key in sorted({DATASET_OF[a] for a in arms}):
                name = f"{dataset_prefix}-{key}-b{budget}-s{seed}"
                versions[key] = _publish(wh, name, datasets[key], POLICY_OF[key],
                                         {"experiment_id": experiment_id, "seed": seed, "teacher": teacher_id, **report}, run_id)
            selected = []
            for arm in arms:
                v = versions[DATASET_OF[arm]]
                plan = plans[arm]
                ft = finetune_flow(warehouse=wh.path, dataset=v["spec"], base_model=base, recipe=spec.path, seed=seed, method=arm,
                                   max_steps=plan.get("sft", total), second_stage_steps=plan.get(SECOND_STAGE.get(arm, ""), None))
                stages = wh.run_file("experiment/method_stages", {"training_run_id": ft["training_run_id"]}).to_dicts()
                stage_steps = {s["stage"]: s["n_steps"] for s in stages}
                n_steps = sum(int(s["n_steps"] or 0) for s in stages)
                truncated = [s for s in stages if s["is_truncated"]]
                selected.append({"arm": arm, "method": arm, "policy": POLICY_OF[DATASET_OF[arm]], "seed": seed,
                                 "dataset_name": v["dataset_name"], "dataset_version": v["version"], "n_rows": report["n_sft_rows"],
                                 "n_tokens": report["n_sft_tokens"], "mean_trace_tokens": report["n_sft_tokens"] / report["n_sft_rows"],
                                 "training_run_id": ft["training_run_id"], "checkpoint_path": ft["checkpoint_path"], "n_steps": n_steps,
                                 "is_truncated": bool(truncated), "truncation_reason": truncated[0]["truncation_reason"] if truncated else None,
                                 "stages": stages, "stage_steps": json.dumps(stage_steps)})
                log.info("seed %d %s on %s: stages %s", seed, arm, v["spec"], stage_steps)
            check_stage_steps(selected + [r for r in results])
            check_equal_training(selected + [r for r in results])
            ev = evaluate_flow(warehouse=wh.path, models=[a["checkpoint_path"] for a in selected], eval_set=set_path, limit=limit,
                               seed=seed, **eval_params)
            by_model = {e["model_id"]: e for e in ev["evals"]}
            for a in selected:
                e = by_model[resolve_model_or_path(a["checkpoint_path"])]
                m = next(r for r in e["metrics"] if r["domain"] == "all")
                a.update(eval_id=e["eval_id"], n_problems=m["n_problems"], pass_at_1=m["pass_at_1"], pass_at_k=m["pass_at_k"], k=m["k"],
                         mean_completion_tokens=m["mean_completion_tokens"], truncation_rate=m["truncation_rate"])
            results += selected
        table = _results_frame(results, experiment_id, budget, run_id)
        wh.load("meta.experiment_results", table, key=["experiment_id", "arm", "seed"], mode="replace")
        outcomes = pl.concat([
            wh.run_file("experiment/greedy_outcomes", {"eval_id": r["eval_id"]}).with_columns(
                arm=pl.lit(r["arm"]), seed=pl.lit(r["seed"], pl.Int64)) for r in results])
        stats_cfg = StatsConfig(n_bootstrap=n_bootstrap)
        compared = compare_arms(outcomes, reference=REFERENCE_METHOD, cfg=stats_cfg)
        wh.load("meta.experiment_arm_stats", compared.with_columns(
            experiment_id=pl.lit(experiment_id), confidence=pl.lit(stats_cfg.confidence), run_id=pl.lit(run_id), created_at=pl.lit(utcnow())),
            key=["experiment_id", "arm"], mode="replace")
        sizes = table.group_by("arm").agg(pl.col("n_rows").mean(), pl.col("n_tokens").mean(), pl.col("mean_trace_tokens").mean(),
                                          pl.col("n_steps").max())
        summary = compared.join(sizes, on="arm", how="left", maintain_order="left")
        r0 = reports[seeds[0]]
        title = f"Training-methods ablation: {len(arms)} methods, {budget} prompts, {total} steps per arm, seeds {','.join(map(str, seeds))}"
        notes = [
            (f"experiment_id {experiment_id}; student {base}; recipe {spec.path}; eval {set_path}: {problems.height} problems, "
             "greedy pass@1"),
            (f"positives: one correct {teacher_id} trace per prompt, {budget} prompts drawn at random among the "
             f"{r0['n_prompts_with_both']} that also have an incorrect trace (seed {seeds[0]}: {r0['n_low_temp']} at T <= "
             f"{temperature_split}, {r0['n_high_temp']} above; REDI negatives from the same teacher: {r0['n_negatives_same_teacher']} "
             f"of {budget})"),
            "steps per arm (optimiser steps, all stages): " + "; ".join(f"{a} {json.dumps(p)}" for a, p in plans.items())
            + " (the schedule splits by rows; a REDI step sees a batch of pairs, an OPD step a batch of rollouts)",
            "every arm: the same positives, the same total steps, every stage at its planned steps, checked by the runner",
            (f"intervals: {stats_cfg.confidence:.0%} bootstrap over problems x seeds ({n_bootstrap} resamples); Δ is paired "
             f"(same problem and seed) against {REFERENCE_METHOD}; verdict 'no detectable difference' when its interval contains 0"),
        ]
        markdown = render_markdown(summary, title=title, notes=notes)
        out_dir, png = write_results(wh, output_dir, experiment_id, markdown, table, summary, title)
        from prefect.artifacts import create_markdown_artifact

        create_markdown_artifact(markdown=markdown, key=f"methods-ablation-{experiment_id[4:14]}".lower(),
                                 description="training-methods ablation: per-arm intervals and verdicts against sft")
        stats = {"experiment_id": experiment_id, "positives": {str(k): v for k, v in reports.items()}, "summary": summary.to_dicts(),
                 "markdown": str(out_dir / "results.md"), "plot": str(png)}
        run.n_out, run.n_rejected, run.stats = len(results), 0, stats
    return {"run_id": run_id, "stage": "experiment-methods", "n_in": len(arms) * len(seeds), "n_out": len(results), "n_rejected": 0,
            **stats}


RESULT_COLUMNS = ("arm", "method", "policy", "seed", "dataset_name", "dataset_version", "n_rows", "n_tokens", "mean_trace_tokens",
                  "training_run_id", "n_steps", "stage_steps", "is_truncated", "eval_id", "n_problems", "pass_at_1", "pass_at_k", "k",
                  "mean_completion_tokens", "truncation_rate")


def _results_frame(results: list[dict], experiment_id: str, budget: int, run_id: str) -> pl.DataFrame:
    rows = [{c: r.get(c) for c in RESULT_COLUMNS} for r in results]
    schema = {"arm": pl.String, "method": pl.String, "policy": pl.String, "seed": pl.Int64, "dataset_name": pl.String,
              "dataset_version": pl.Int32, "n_rows": pl.Int64, "n_tokens": pl.Int64, "mean_trace_tokens": pl.Float64,
              "training_run_id": pl.String, "n_steps": pl.Int64, "stage_steps": pl.String, "is_truncated": pl.Boolean, "eval_id": pl.String,
              "n_problems": pl.Int64, "pass_at_1": pl.Float64, "pass_at_k": pl.Float64, "k": pl.Int32, "mean_completion_tokens": pl.Float64,
              "truncation_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema).rename({"is_truncated": "is_training_truncated"}).with_columns(
        experiment_id=pl.lit(experiment_id), budget=pl.lit(budget, pl.Int64), budget_unit=pl.lit("traces"), run_id=pl.lit(run_id),
        created_at=pl.lit(utcnow()))


def compare_methods(wh: Warehouse | str | None, arms: list[str] | None = None, **kwargs) -> dict:
    """Run the training-methods ablation on `wh` (a Warehouse or its path); see `methods_experiment_flow`."""
    path = wh.path if isinstance(wh, Warehouse) else wh
    return methods_experiment_flow(warehouse=path, arms=list(arms) if arms else None, **kwargs)
