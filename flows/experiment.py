"""Selection-ablation experiment: which selection of teacher traces makes the better student?

For every seed and every arm (a selection policy), one dataset drawn from ONE shared eligible pool
at the same budget, one fine-tune bounded by the same number of steps, one evaluation on the whole
held-out set; the seed drives selection, training (data order, initialisation of new weights) and
evaluation sampling. The runner refuses arms of unequal size or unequal/truncated training. Per arm:
mean greedy pass@1 with a 95% bootstrap interval over problems x seeds; per arm against the
reference arm (random): a paired bootstrap interval of the difference and a verdict (`better`,
`worse`, `no detectable difference`). Results go to `meta.experiment_results` (one row per
experiment, arm and seed), `meta.experiment_arm_stats` and the view `meta.experiment_summary`; a
markdown table and a plot with error bars are written and published as Prefect artifacts.

`compare_selections(wh, arms=[...], budget=N, seeds=[0, 1, 2])` is the plain entry point (the CLI's
`potstill experiment compare-selections`); `experiment_flow` the flow. Re-running the same
experiment reuses published versions, completed training runs and cached evaluations.
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
    PRESETS,
    REFERENCE_ARM,
    ExperimentError,
    candidates_fingerprint,
    check_equal_data,
    check_equal_training,
    experiment_id_for,
    parse_arm,
    parse_seeds,
    plot_results,
    render_by_domain,
    render_markdown,
    selection_seed,
    shared_pool,
)
from tasks.experiment.stats import StatsConfig, compare_arms, compare_by_domain
from tasks.train.recipe import load_train_recipe, resolve_model_or_path
from warehouse import Warehouse
from warehouse.runs import stage_run, utcnow

DEFAULT_ARMS = ("random", "provenance", "longest", "length_matched_random")


def _token_counter(base_model: str):
    """Count completion tokens with the student's tokenizer (for traces imported without a count)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_model)
    return lambda texts: [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]


@flow(name="experiment", flow_run_name="compare-selections-{budget}")
def experiment_flow(
    warehouse: str | None = None,
    arms: list[str] | None = None,
    budget: int = 500,
    budget_unit: str = "traces",
    seeds: list[int] | None = None,
    preset: str | None = None,
    recipe: str | None = "toy_ablation",
    max_steps: int | None = None,
    base_model: str | None = None,
    eval_set: str | None = None,
    limit: int | None = None,
    include_base: bool | None = None,
    reference: str = REFERENCE_ARM,
    student: str | None = None,
    student_model_id: str | None = None,
    dataset_prefix: str = "ablation",
    split: str = "train",
    n_bootstrap: int = 10_000,
    output_dir: str | None = None,
    oracle_pattern: str | None = None,
) -> dict:
    """Compare selection arms at an equal budget, fine-tuning the student once per arm and seed.

    Args:
        arms: selection policies (`random#1` = random drawn with another selection seed: an A/A arm);
            default: the preset's, else random, provenance, longest, length_matched_random.
        budget / budget_unit: traces per arm ("traces"), or completion tokens per arm ("tokens": token-matched).
        seeds: one full run of every arm per seed (default: the preset's, else [0]).
        preset: quick | paper (arms, seeds, step bound, k); explicit arguments win.
        recipe: training recipe (train config + eval settings); default train_toy_ablation.yaml.
        max_steps: overrides the recipe's step bound for every arm.
        limit: evaluate on the first N problems only (default: the whole eval set).
        include_base: also evaluate the untrained student (default: the preset's, else yes).
        student / student_model_id: the student whose scores (provenance, GRAPE, RSR) the selection reads.
        oracle_pattern: the oracle arm's regex (a label the data's maker planted; tasks/select/policies.py).
    """
    from flows.select import _student_id, build_candidates, run_select
    from tasks.select.policies import SelectionConfig

    log = get_run_logger()
    chosen = PRESETS.get(preset) if preset else None
    if preset and chosen is None:
        raise ExperimentError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    arms = list(arms or (chosen.arms if chosen else DEFAULT_ARMS))
    seeds = parse_seeds(seeds if seeds is not None else (chosen.seeds if chosen else (0,)))
    max_steps = max_steps if max_steps is not None else (chosen.max_steps if chosen else None)
    include_base = include_base if include_base is not None else (chosen.include_base if chosen else True)
    if len(set(arms)) != len(arms) or not arms:
        raise ExperimentError(f"arms must be distinct and non-empty, got {arms}")
    for arm in arms:
        parse_arm(arm)
    if reference not in arms:
        raise ExperimentError(f"the reference arm {reference!r} must be one of the arms {arms}")
    spec = load_train_recipe(recipe)
    train_cfg = spec.train_config()
    steps = max_steps if max_steps is not None else train_cfg.max_steps
    if steps is None or steps <= 0:
        raise ExperimentError(f"{spec.path}: the experiment needs step-bounded training (train.max_steps > 0 or --max-steps)")
    base = resolve_model_or_path(base_model) if base_model else spec.resolved_base_model()
    eval_cfg = spec.eval_config()
    eval_params = {k: v for k, v in eval_cfg.__dict__.items() if k not in ("limit", "seed")}
    if chosen and chosen.eval_k:
        eval_params["k"] = chosen.eval_k
        eval_params["n_samples"] = None
    set_path = resolve_model_or_path(eval_set) if eval_set else spec.eval_set_path()
    problems = load_eval_set(set_path, limit=limit)
    set_hash = eval_set_hash(problems)
    wh = Warehouse(warehouse)
    train_fp = f"{train_cfg}-steps{steps}"
    eval_fp = "-".join(f"{k}={v}" for k, v in sorted(eval_params.items()) if k not in ("batch_size", "device", "shard_size", "backend", "cpu_threads"))
    config = {"arms": arms, "budget": budget, "budget_unit": budget_unit, "seeds": seeds,
              "preset": preset, "max_steps": steps, "recipe": spec.model_dump(mode="json"), "base_model": base,
              "eval_set": set_path, "n_problems": problems.height, "reference": reference, "split": split,
              "student": student, "student_model_id": student_model_id, "oracle_pattern": oracle_pattern}
    with stage_run(wh, "experiment", config) as run:
        run_id, run.n_in = run.run_id, len(arms) * len(seeds)
        cfg = SelectionConfig(budget=budget, budget_unit=budget_unit)
        sid = _student_id(wh, student, student_model_id)
        candidates, skipped = build_candidates(wh, student_model_id=sid, split=split, beta=cfg.beta)
        experiment_id = experiment_id_for(arms, budget, budget_unit, seeds, base, train_fp, eval_fp, set_hash,
                                          candidates_fingerprint(candidates, sid, split, oracle_pattern))
        run.stats["experiment_id"] = experiment_id  # in meta.runs even if the run fails
        pool, pool_report = shared_pool(candidates, arms, cfg, count_tokens=_token_counter(base))
        pool_report["signals_skipped"] = skipped
        log.info("shared pool: %s", pool_report)
        max_trace_tokens = int(pool["n_completion_tokens"].max())
        results: list[dict] = []
        for seed in seeds:
            selected = []
            for arm in arms:
                policy, variant = parse_arm(arm)
                name = f"{dataset_prefix}-{arm.replace('_', '-').replace('#', '-v')}-b{budget}-s{seed}"
                sel = run_select(policy, SelectionConfig(budget=budget, budget_unit=budget_unit, seed=selection_seed(seed, variant),
                                                         oracle_pattern=oracle_pattern),
                                 warehouse=wh.path, dataset_name=name, student_model_id=sid, split=split, pool=pool)
                version = sel.get("dataset")
                n_rows, n_tokens = sel["n_out"], sel["params"]["n_tokens"]
                selected.append({"arm": arm, "policy": policy, "seed": seed, "n_rows": n_rows, "n_tokens": n_tokens,
                                 "version": version, "select_params": sel["params"]})
            check_equal_data(selected, budget_unit, max_trace_tokens)  # before any training time is spent
            for a in selected:
                v = a.pop("version")
                ft = finetune_flow(warehouse=wh.path, dataset=v["spec"], base_model=base, recipe=spec.path, seed=seed, max_steps=steps)
                a.update(dataset_name=v["dataset_name"], dataset_version=v["version"], training_run_id=ft["training_run_id"],
                         checkpoint_path=ft["checkpoint_path"], n_steps=ft["n_steps"], planned_steps=steps,
                         is_truncated=ft.get("is_truncated", False),
                         truncation_reason=ft.get("truncation_reason"), mean_trace_tokens=a["n_tokens"] / a["n_rows"])
                log.info("seed %d %s: %s (%d rows, %d tokens) → %d steps", seed, a["arm"], v["spec"], a["n_rows"], a["n_tokens"], a["n_steps"])
                check_equal_training([a], planned_steps=steps)  # a truncated arm stops the experiment before the next one trains
            check_equal_training(selected + [r for r in results if r["policy"] != BASE], planned_steps=steps)
            models = ([base] if include_base else []) + [a["checkpoint_path"] for a in selected]
            ev = evaluate_flow(warehouse=wh.path, models=models, eval_set=set_path, limit=limit, seed=seed, **eval_params)
            by_model = {e["model_id"]: e for e in ev["evals"]}
            if include_base:
                selected.insert(0, {"arm": BASE, "policy": BASE, "seed": seed, "n_rows": None, "n_tokens": None, "checkpoint_path": base,
                                    "n_steps": None, "is_truncated": None, "mean_trace_tokens": None})
            for a in selected:
                e = by_model[resolve_model_or_path(a["checkpoint_path"])]
                m = next(r for r in e["metrics"] if r["domain"] == "all")
                a.update(eval_id=e["eval_id"], n_problems=m["n_problems"], pass_at_1=m["pass_at_1"], pass_at_k=m["pass_at_k"], k=m["k"],
                         mean_completion_tokens=m["mean_completion_tokens"], truncation_rate=m["truncation_rate"])
            results += selected
        outcomes = pl.concat([
            wh.run_file("experiment/greedy_outcomes", {"eval_id": r["eval_id"]}).with_columns(
                arm=pl.lit(r["arm"]), seed=pl.lit(r["seed"], pl.Int64)) for r in results])
        stats_cfg = StatsConfig(n_bootstrap=n_bootstrap)
        compared = compare_arms(outcomes, reference=reference, cfg=stats_cfg)
        table = _results_frame(results, experiment_id, budget, budget_unit, run_id).join(
            compared.select(STAT_COLUMNS), on="arm", how="left", maintain_order="left")
        wh.load("meta.experiment_results", table, key=["experiment_id", "arm", "seed"], mode="replace")
        wh.load("meta.experiment_arm_stats", compared.with_columns(
            experiment_id=pl.lit(experiment_id), confidence=pl.lit(stats_cfg.confidence), run_id=pl.lit(run_id), created_at=pl.lit(utcnow())),
            key=["experiment_id", "arm"], mode="replace")
        summary = _summary(table, compared)
        got = sorted({r["n_rows"] for r in results if r["arm"] != BASE and r.get("n_rows") is not None})
        what = f"{got[0]} rows per arm" if len(got) == 1 else f"budget {budget} {budget_unit}"  # equal by construction
        title = f"Selection ablation: {len(arms)} arms, {what} (budget {budget} {budget_unit}), seeds {','.join(map(str, seeds))}"
        notes = [
            (f"experiment_id {experiment_id}; student {base}; {steps} training steps per arm ({spec.path}); "
            f"eval {set_path}: {problems.height} problems, greedy pass@1"),
            (f"shared pool: {pool_report['n_pool']} traces of {pool_report['n_pool_prompts']} prompts "
            f"(of {pool_report['n_candidates']} candidates; {pool_report['n_eligible']} eligible; excluded from every arm for a "
            f"missing score: {pool_report['n_excluded_missing_scores']}; token counts from the student tokenizer: "
            f"{pool_report['n_tokens_counted_with_student_tokenizer']})"),
            "every arm: the same rows (or tokens) and the same number of training steps, checked by the runner",
            (f"intervals: {stats_cfg.confidence:.0%} bootstrap over problems x seeds ({n_bootstrap} resamples); Δ is paired "
            f"(same problem and seed) against {reference}; verdict 'no detectable difference' when its interval contains 0"),
        ]
        by_domain = compare_by_domain(outcomes, reference=reference, cfg=stats_cfg)
        markdown = render_markdown(summary, title=title, notes=notes) + render_by_domain(by_domain)
        out_dir, png = write_results(wh, output_dir, experiment_id, markdown, table, summary, title)
        _artifacts(markdown, summary, png, experiment_id)
        stats = {"experiment_id": experiment_id, "pool": pool_report, "summary": summary.to_dicts(), "by_domain": by_domain.to_dicts(),
                 "markdown": str(out_dir / "results.md"), "plot": str(png)}
        run.n_out, run.n_rejected, run.stats = len(results), 0, stats
    return {"run_id": run_id, "stage": "experiment", "n_in": len(arms) * len(seeds), "n_out": len(results), "n_rejected": 0, **stats}


RESULT_COLUMNS = ("arm", "policy", "seed", "dataset_name", "dataset_version", "n_rows", "n_tokens", "mean_trace_tokens", "training_run_id",
                  "n_steps", "planned_steps", "is_truncated", "truncation_reason", "eval_id", "n_problems", "pass_at_1", "pass_at_k", "k", "mean_completion_tokens", "truncation_rate")


# the arm's statistics (over all its seeds) repeated on each of its rows of meta.experiment_results
STAT_COLUMNS = ("arm", "reference_arm", "pass_at_1_low", "pass_at_1_high", "diff_vs_reference", "diff_low", "diff_high", "verdict")


def write_results(wh: Warehouse, output_dir: str | None, experiment_id: str, markdown: str, table: pl.DataFrame,
                  summary: pl.DataFrame, title: str) -> tuple[Path, Path]:
    """An experiment's results.md / results.csv / results.png, in `output_dir` or next to the warehouse's
    checkpoints (`<root>/experiments/<experiment_id>/`); returns (folder, plot)."""
    out_dir = Path(output_dir) if output_dir else default_output_root(wh).parent / "experiments" / experiment_id
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(markdown)
    table.write_csv(out_dir / "results.csv")
    return out_dir, Path(plot_results(summary, out_dir / "results.png", title=title))


def _results_frame(results: list[dict], experiment_id: str, budget: int, budget_unit: str, run_id: str) -> pl.DataFrame:
    rows = [{c: r.get(c) for c in RESULT_COLUMNS} for r in results]
    schema = {"arm": pl.String, "policy": pl.String, "seed": pl.Int64, "dataset_name": pl.String, "dataset_version": pl.Int32,
              "n_rows": pl.Int64, "n_tokens": pl.Int64, "mean_trace_tokens": pl.Float64, "training_run_id": pl.String, "n_steps": pl.Int64,
              "planned_steps": pl.Int64, "is_truncated": pl.Boolean, "truncation_reason": pl.String, "eval_id": pl.String, "n_problems": pl.Int64, "pass_at_1": pl.Float64, "pass_at_k": pl.Float64,
              "k": pl.Int32, "mean_completion_tokens": pl.Float64, "truncation_rate": pl.Float64}
    return pl.DataFrame(rows, schema=schema).rename({"is_truncated": "is_training_truncated"}).with_columns(
        experiment_id=pl.lit(experiment_id), budget=pl.lit(budget, pl.Int64), budget_unit=pl.lit(budget_unit), run_id=pl.lit(run_id),
        created_at=pl.lit(utcnow()))


def _summary(table: pl.DataFrame, compared: pl.DataFrame) -> pl.DataFrame:
    """One row per arm (in comparison order): sizes averaged over seeds next to the statistics."""
    sizes = table.group_by("arm").agg(pl.col("n_rows").mean(), pl.col("n_tokens").mean(), pl.col("mean_trace_tokens").mean(),
                                      pl.col("n_steps").max())
    return compared.join(sizes, on="arm", how="left", maintain_order="left")


def _artifacts(markdown: str, summary: pl.DataFrame, png: Path, experiment_id: str) -> None:
    """The results as Prefect artifacts: the markdown table, the per-arm rows as a table, a link to the plot."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    key = f"selection-ablation-{experiment_id[3:13]}".lower()
    create_markdown_artifact(markdown=markdown, key=key, description="selection-ablation results: per-arm intervals and verdicts against random")
    create_table_artifact(table=summary.to_dicts(), key=f"{key}-arms", description="selection ablation, one row per arm")
    create_link_artifact(link=png.resolve().as_uri(), link_text=png.name, key=f"{key}-plot",
                         description="selection ablation: pass@1 per arm with 95% intervals (PNG)")


def compare_selections(wh: Warehouse | str | None, arms: list[str] | None = None, budget: int = 500,
                       seeds: list[int] | None = None, **kwargs) -> dict:
    """Run the selection-ablation experiment on `wh` (a Warehouse or its path); see `experiment_flow`."""
    path = wh.path if isinstance(wh, Warehouse) else wh
    return experiment_flow(warehouse=path, arms=list(arms) if arms else None, budget=budget, seeds=seeds, **kwargs)
