"""The selection-ablation flow on a tiny warehouse: two policies, tiny student, reproducible numbers."""

import json

import polars as pl
import pytest
import yaml

from warehouse.runs import utcnow


def _traces(wh):
    now = utcnow()
    problems = [(f"p{a}{b}", f"Compute {a} + {b}.", a + b) for a in range(4) for b in range(3)]
    wh.load("raw.raw_prompts", pl.DataFrame([
        {"prompt_id": pid, "source": "toy", "domain": "math", "problem_text": text, "reference_answer": str(ans),
         "split": "train", "ingested_at": now, "run_id": "ingest-1"} for pid, text, ans in problems]), key=["prompt_id"])
    rows = []
    for pid, text, ans in problems:
        for i, reasoning in enumerate([f"{text[8:-1]}={ans}.", f"{text[8:-1]}={ans}.\nCheck: {ans}={ans}."]):
            rows.append({"trace_id": f"t_{pid}_{i}", "prompt_id": pid, "model_id": "teacher-a", "origin": "imported", "sample_index": i,
                         "completion_text": f"<think>\n{reasoning}\n</think>\n\n\\boxed{{{ans}}}", "reasoning_text": reasoning,
                         "answer_text": f"\\boxed{{{ans}}}", "is_truncated": False, "n_completion_tokens": 20 + 15 * i,
                         "created_at": now, "run_id": "ingest-1"})
    wh.load("raw.raw_traces", pl.DataFrame(rows), key=["trace_id"])


def _recipe(tmp_path, tiny_lm, eval_set, **train):
    recipe = tmp_path / "train_tiny.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny", "version": 1, "base_model": str(tiny_lm), "output_root": str(tmp_path / "ckpt"),
        "train": {"max_steps": 3, "per_device_batch_size": 4, "learning_rate": 5e-3, "device": "cpu", **train},
        "evaluate": {"eval_set": str(eval_set), "k": 1, "max_new_tokens": 8, "device": "cpu"},
    }))
    return recipe


def _eval_set(tmp_path):
    eval_set = tmp_path / "eval.jsonl"
    eval_set.write_text("".join(json.dumps({"id": f"e{i}", "problem": f"Compute {i} + 2.", "answer": str(i + 2)}) + "\n" for i in range(4)))
    return eval_set


@pytest.mark.slow
def test_compare_selections_equal_arms_seeds_intervals_and_reproduces(prefect_harness, wh, wh_path, tiny_lm, tmp_path):
    from flows.experiment import compare_selections

    _traces(wh)
    recipe = _recipe(tmp_path, tiny_lm, _eval_set(tmp_path))
    out = compare_selections(wh, arms=["random", "longest", "random#1"], budget=6, seeds=[0, 1], recipe=str(recipe),
                             output_dir=str(tmp_path / "exp"), n_bootstrap=200)
    table = wh.query("select arm, seed, n_rows, n_tokens, mean_trace_tokens, n_steps, is_training_truncated, n_problems "
                     "from meta.experiment_results order by arm, seed")
    assert table.height == 4 * 2  # base + 3 arms, 2 seeds
    trained = table.filter(pl.col("arm") != "base")
    assert set(trained["n_rows"]) == {6} and set(trained["n_steps"]) == {3} and not trained["is_training_truncated"].any()
    assert set(table["n_problems"]) == {4}  # the whole eval set
    assert trained.filter(pl.col("arm") == "longest")["mean_trace_tokens"].to_list() == [35.0, 35.0]
    # the seed reached training: one training run per arm and seed
    assert wh.scalar("select count(distinct training_run_id) from meta.experiment_results where arm <> 'base'") == 6
    stats = wh.query("select arm, n_seeds, verdict, pass_at_1_low, mean_pass_at_1 as pass_at_1, pass_at_1_high, min_rows, max_rows, "
                     "min_steps, max_steps from meta.experiment_summary order by arm")
    assert set(stats["n_seeds"]) == {2}
    trained_stats = stats.filter(pl.col("arm") != "base")
    assert set(trained_stats["min_rows"]) == set(trained_stats["max_rows"]) == {6} and set(trained_stats["max_steps"]) == {3}
    assert stats.select((pl.col("pass_at_1_low") <= pl.col("pass_at_1")) & (pl.col("pass_at_1") <= pl.col("pass_at_1_high"))).to_series().all()
    assert stats.filter(pl.col("arm") == "random")["verdict"][0] is None
    assert set(stats.filter(pl.col("arm") != "random")["verdict"]) <= {"better", "worse", "no detectable difference"}
    # every row carries what a reviewer checks in SQL alone (README, "Checking equality in SQL")
    check = wh.query("select seed, min(n_rows) = max(n_rows) as equal_rows, min(n_steps) = max(n_steps) as equal_steps, "
                     "bool_and(n_steps = planned_steps and not is_training_truncated) as at_step_bound "
                     "from meta.experiment_results where arm <> 'base' group by seed")
    assert check.height == 2 and check.select(pl.all_horizontal("equal_rows", "equal_steps", "at_step_bound")).to_series().all()
    per_row = wh.query("select r.arm, r.verdict, r.pass_at_1_low, r.pass_at_1_high, r.diff_low, r.diff_high, r.reference_arm, "
                       "s.verdict as s_verdict, s.pass_at_1_low as s_low, s.diff_high as s_diff_high "
                       "from meta.experiment_results r join meta.experiment_arm_stats s using (experiment_id, arm)")
    assert per_row.height == 8 and (per_row["reference_arm"] == "random").all()
    assert per_row.select((pl.col("pass_at_1_low") == pl.col("s_low")) & (pl.col("verdict").eq_missing(pl.col("s_verdict")))
                          & (pl.col("diff_high").eq_missing(pl.col("s_diff_high")))).to_series().all()
    assert per_row.filter(pl.col("arm") == "random")["verdict"].is_null().all()
    assert per_row.filter(pl.col("arm") != "random")["verdict"].is_not_null().all()
    md = (tmp_path / "exp" / "results.md").read_text()
    assert "| random#1 | 2 | 6 |" in md and "(reference)" in md
    assert out["by_domain"] == [] and "## By domain" not in md  # one domain: the overall table says it all
    assert (tmp_path / "exp" / "results.png").is_file()

    again = compare_selections(wh, arms=["longest", "random", "random#1"], budget=6, seeds=[1, 0], recipe=str(recipe),
                               output_dir=str(tmp_path / "exp2"), n_bootstrap=200)
    assert again["experiment_id"] == out["experiment_id"] and again["summary"] == out["summary"]
    assert wh.scalar("select count(*) from meta.training_runs") == 6
    # other selection settings on the same data: another experiment; the first one's results stay
    other = compare_selections(wh, arms=["random", "longest"], budget=6, seeds=[0], recipe=str(recipe), include_base=False,
                               oracle_pattern="→", output_dir=str(tmp_path / "exp3"), n_bootstrap=200)
    assert other["experiment_id"] != out["experiment_id"]
    assert wh.scalar("select count(*) from meta.experiment_results where experiment_id = ?", [out["experiment_id"]]) == 8
    assert wh.scalar("select count(*) from meta.experiment_results where experiment_id = ?", [other["experiment_id"]]) == 2


@pytest.mark.slow
def test_truncated_training_is_marked_and_the_comparison_refused(prefect_harness, wh, tiny_lm, tmp_path):
    from flows.experiment import compare_selections
    from tasks.experiment.ablation import ExperimentError

    _traces(wh)
    recipe = _recipe(tmp_path, tiny_lm, _eval_set(tmp_path), max_steps=500, max_train_minutes=0.0001)
    with pytest.raises(ExperimentError, match="training truncated \\(time_cap: train.max_train_minutes=0.0001 reached at step"):
        compare_selections(wh, arms=["random", "longest"], budget=6, recipe=str(recipe), output_dir=str(tmp_path / "exp"))
    runs = wh.query("select is_truncated, truncation_reason, max_steps from meta.training_runs")
    assert runs.height == 1, "the first truncated arm stops the experiment before the next one trains"
    assert runs["is_truncated"].all() and runs["max_steps"].to_list()[0] == 500
