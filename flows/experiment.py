"""Selection-ablation experiment: same eligible pool and budget, one dataset + fine-tune + evaluation
per selection policy, the untrained student as the baseline; results in `meta.experiment_results`,
a markdown table and a PNG plot (also Prefect artifacts).

`compare_selections(wh, policies=["provenance", "random", "longest"], budget=N, seed=0)` is the
plain entry point (the CLI's `potstill experiment compare-selections`); `experiment_flow` the flow.
Re-running with the same seeds reuses the published versions (identical content), the completed
training runs and the cached evaluations, so it reproduces the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, get_run_logger

from flows.evaluate import evaluate_flow
from flows.finetune import default_output_root, finetune_flow
from tasks.evaluate.problems import eval_set_hash, load_eval_set
from tasks.experiment.ablation import (
    BASE,
    ExperimentError,
    experiment_id_for,
    plot_results,
    render_markdown,
    results_table,
)
from tasks.train.recipe import load_train_recipe, resolve_model_or_path
from warehouse import Warehouse
from warehouse.runs import stage_run, utcnow

DEFAULT_POLICIES = ("provenance", "random", "longest")


def _mean_trace_tokens(wh: Warehouse, dataset_name: str, version: int) -> float | None:
    return wh.scalar_file("experiment/mean_trace_tokens", {"dataset_name": dataset_name, "version": version})


@flow(name="experiment", flow_run_name="compare-selections-{budget}-seed{seed}")
def experiment_flow(
    warehouse: str | None = None,
    policies: list[str] | None = None,
    budget: int = 500,
    seed: int = 0,
    recipe: str | None = "toy_ablation",
    base_model: str | None = None,
    eval_set: str | None = None,
    student: str | None = None,
    student_model_id: str | None = None,
    dataset_prefix: str = "ablation",
    split: str = "train",
    limit: int | None = None,
    output_dir: str | None = None,
) -> dict:
    """Compare selection policies at a fixed budget by fine-tuning the student once per policy.

    Args:
        recipe: training recipe (train config + eval settings); default train_toy_ablation.yaml.
        student / student_model_id: the student whose provenance scores the selection reads (see select).
        limit: evaluate on the first N problems of the eval set only (quick runs).
    """
    from flows.select import run_select
    from tasks.select.policies import POLICIES, SelectionConfig

    log = get_run_logger()
    policies = list(DEFAULT_POLICIES) if policies is None else list(policies)
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ExperimentError(f"unknown or no policies {unknown or policies}; choose from {', '.join(POLICIES)}")
    spec = load_train_recipe(recipe)
    base = resolve_model_or_path(base_model) if base_model else spec.resolved_base_model()
    eval_cfg = spec.eval_config()
    set_path = resolve_model_or_path(eval_set) if eval_set else spec.eval_set_path()
    problems = load_eval_set(set_path, limit=limit or eval_cfg.limit)
    set_hash = eval_set_hash(problems)
    wh = Warehouse(warehouse)
    train_fp = str(spec.train_config())
    experiment_id = experiment_id_for(list(policies), budget, seed, base, train_fp, str(eval_cfg), set_hash)
    config = {"experiment_id": experiment_id, "policies": list(policies), "budget": budget, "seed": seed,
              "recipe": spec.model_dump(mode="json"), "base_model": base, "eval_set": set_path}
    with stage_run(wh, "experiment", config) as run:
        run_id, run.n_in = run.run_id, len(policies)
        arms = [{"policy": BASE}]
        for policy in policies:
            name = f"{dataset_prefix}-{policy.replace('_', '-')}-b{budget}-s{seed}"
            selected = run_select(policy, SelectionConfig(budget=budget, seed=seed), warehouse=wh.path, dataset_name=name,
                                  student=student, student_model_id=student_model_id, split=split)
            version = selected.get("dataset")
            if not version:
                raise ExperimentError(f"policy {policy!r} selected {selected['n_out']} traces and published no dataset "
                                      f"(pool rejections: {selected['params'].get('pool_rejections')})")
            ft = finetune_flow(warehouse=wh.path, dataset=version["spec"], base_model=base, recipe=spec.path)
            arms.append({"policy": policy, "dataset_name": version["dataset_name"], "dataset_version": version["version"],
                         "n_rows": version["n_rows"], "training_run_id": ft["training_run_id"], "checkpoint_path": ft["checkpoint_path"],
                         "mean_trace_tokens": _mean_trace_tokens(wh, version["dataset_name"], version["version"])})
            log.info("%s: %s (%d rows) → %s", policy, version["spec"], version["n_rows"], ft["checkpoint_path"])
        models = [base] + [a["checkpoint_path"] for a in arms[1:]]
        params = {k: v for k, v in eval_cfg.__dict__.items() if k != "limit"}
        ev = evaluate_flow(warehouse=wh.path, models=models, eval_set=set_path, limit=limit or eval_cfg.limit, **params)
        by_model = {e["model_id"]: e for e in ev["evals"]}
        for arm, model in zip(arms, models):
            arm["eval_id"] = by_model[model]["eval_id"]
        metrics = {e["eval_id"]: e["metrics"] for e in ev["evals"]}
        table = results_table(arms, metrics)
        rows = table.with_columns(experiment_id=pl.lit(experiment_id), budget=pl.lit(budget, pl.Int64), seed=pl.lit(seed, pl.Int64),
                                  run_id=pl.lit(run_id), created_at=pl.lit(utcnow()))
        wh.load("meta.experiment_results", rows, key=["experiment_id", "policy", "domain"], mode="replace")
        title = f"Selection ablation: {', '.join(policies)} at budget {budget}, seed {seed}"
        notes = [(f"experiment_id {experiment_id}; student {base}; training {train_fp}; eval {eval_cfg} on {set_path} "
                  f"({problems.height} problems, hash {set_hash})"),
                 "pass@1 is greedy; pass@k is sampled (unbiased estimator); length is reported next to every policy"]
        markdown = render_markdown(table, title=title, notes=notes)
        out_dir = Path(output_dir) if output_dir else default_output_root(wh).parent / "experiments" / experiment_id
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.md").write_text(markdown)
        table.write_csv(out_dir / "results.csv")
        png = plot_results(table, out_dir / "results.png", title=title)
        _artifacts(markdown, experiment_id)
        summary = table.filter(pl.col("domain") == "all").select("policy", "n_rows", "mean_trace_tokens", "pass_at_1", "pass_at_k",
                                                                   "delta_pass_at_1").to_dicts()
        stats = {"experiment_id": experiment_id, "summary": summary, "markdown": str(out_dir / "results.md"), "plot": str(png)}
        run.n_out, run.n_rejected, run.stats = len(arms) - 1, 0, stats
    return {"run_id": run_id, "stage": "experiment", "n_in": len(policies), "n_out": len(arms) - 1, "n_rejected": 0, **stats}


def _artifacts(markdown: str, experiment_id: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=f"selection-ablation-{experiment_id[3:13]}".lower(),
                             description="selection-ablation results")


def compare_selections(wh: Warehouse | str | None, policies: list[str] | None = None, budget: int = 500,
                       seed: int = 0, **kwargs) -> dict:
    """Run the selection-ablation experiment on `wh` (a Warehouse or its path); see `experiment_flow`."""
    path = wh.path if isinstance(wh, Warehouse) else wh
    return experiment_flow(warehouse=path, policies=list(policies or DEFAULT_POLICIES), budget=budget, seed=seed, **kwargs)
